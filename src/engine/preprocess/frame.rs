// SPDX-License-Identifier: MPL-2.0
//! A frame as the input tensors of the frame graphs, made once per frame and kept for every model
//! run on it: packed frames as `frame` uint8 [1, H, W, C] with `channels` (the bytes of R, G and
//! B), I420 and NV12 frames as `luma` uint8 [1, H, W] and `chroma` uint8 [1, ⌈H/2⌉, ⌈W/2⌉, 2]
//! (Cb, Cr interleaved, as NV12 stores them) with `yuv_matrix`. Rows are copied without their
//! stride padding. On CUDA the tensors are then copied once into device memory from the session's
//! device allocator, and the runs read them there.

use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use std::sync::Arc;

use ort::session::{IoBinding, Session, SharedSessionInner};
use ort::value::Tensor;

use crate::engine::image::{ImageView, PixelFormat, YuvMatrix};

/// Where the runs read the frame tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(i32),
}

impl Device {
    /// The device of sessions on `provider` ("cpu", "cuda", "tensorrt").
    pub fn of_provider(provider: &str, device_id: i32) -> Device {
        match provider {
            "cuda" | "tensorrt" => Device::Cuda(device_id),
            _ => Device::Cpu,
        }
    }
}

/// What else than the pixels the graph needs to read a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// The byte offsets of R, G and B within a pixel.
    Packed([i64; 3]),
    /// Rows R, G, B over the columns Y' − 16, Cb − 128, Cr − 128.
    Yuv([f32; 9]),
}

/// Frame tensors by input name.
type Named = Vec<(&'static str, Tensor<u8>)>;

/// The host tensors of one frame and, on a device, their copies there.
struct Tensors {
    host: Named,
    device: Named,
    /// The session whose device allocator holds `device`, kept alive as long as they are.
    allocator_owner: Option<Arc<SharedSessionInner>>,
}

/// The frame tensors of the last frame prepared, reused (storage too) while the frames keep
/// coming in the same size and format.
#[derive(Default)]
pub struct FrameStore {
    /// [`ImageView::id`] of the frame the tensors hold.
    view: Option<u64>,
    kind: Option<Kind>,
    tensors: Option<Tensors>,
    /// Where the tensors were copied to.
    device: Option<Device>,
    /// How many frames were turned into tensors (uploaded, on a device).
    frames: u64,
}

impl std::fmt::Debug for FrameStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameStore")
            .field("view", &self.view)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

/// The 3×3 matrix of the graphs' `yuv_matrix` input for `matrix`.
pub fn yuv_matrix(matrix: YuvMatrix) -> [f32; 9] {
    let [rv, gu, gv, bu] = matrix.coefficients();
    [1.164, 0.0, rv, 1.164, -gu, -gv, 1.164, bu, 0.0]
}

/// Copies `rows` rows of `row` bytes, `stride` apart in `src`, into `dst` without padding.
fn copy_rows(dst: &mut [u8], src: &[u8], row: usize, rows: usize, stride: usize) {
    for (r, out) in dst.chunks_exact_mut(row).take(rows).enumerate() {
        out.copy_from_slice(&src[r * stride..r * stride + row]);
    }
}

/// A host tensor of `shape`: `reuse` when it has that shape, else a new one.
fn host_tensor(reuse: Option<Tensor<u8>>, shape: &[usize]) -> Result<Tensor<u8>, String> {
    match reuse {
        Some(t) if same_shape(&t, shape) => Ok(t),
        _ => Tensor::<u8>::new(&Allocator::default(), shape.to_vec())
            .map_err(|e| format!("cannot allocate the frame tensor {shape:?}: {e}")),
    }
}

fn same_shape(t: &Tensor<u8>, shape: &[usize]) -> bool {
    t.shape()
        .iter()
        .copied()
        .eq(shape.iter().map(|&d| d as i64))
}

impl FrameStore {
    /// How many frames were turned into tensors since the store was made.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Makes the tensors of `image` (nothing to do when they already hold it) on `device`, using
    /// `session`'s device allocator there.
    pub fn prepare(
        &mut self,
        image: &ImageView,
        device: Device,
        session: &Session,
    ) -> Result<(), String> {
        if self.view == Some(image.id()) && self.device == Some(device) {
            return Ok(());
        }
        self.view = None;
        let (previous, previous_device, previous_owner) = self
            .tensors
            .take()
            .map(|t| (t.host, t.device, t.allocator_owner))
            .unwrap_or_default();
        let mut previous = previous.into_iter().map(|(_, t)| t);
        let (w, h) = (image.width(), image.height());
        let (kind, host) = match image.format() {
            PixelFormat::I420 | PixelFormat::Nv12 => {
                let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
                let mut luma = host_tensor(previous.next(), &[1, h, w])?;
                let mut chroma = host_tensor(previous.next(), &[1, ch, cw, 2])?;
                let y = image.plane(0);
                copy_rows(luma.extract_tensor_mut().1, y.data, w, h, y.stride);
                let out = chroma.extract_tensor_mut().1;
                if image.format() == PixelFormat::Nv12 {
                    let uv = image.plane(1);
                    copy_rows(out, uv.data, cw * 2, ch, uv.stride);
                } else {
                    let (u, v) = (image.plane(1), image.plane(2));
                    for (r, row) in out.chunks_exact_mut(cw * 2).take(ch).enumerate() {
                        let us = &u.data[r * u.stride..r * u.stride + cw];
                        let vs = &v.data[r * v.stride..r * v.stride + cw];
                        for ((pair, &cb), &cr) in row.chunks_exact_mut(2).zip(us).zip(vs) {
                            pair[0] = cb;
                            pair[1] = cr;
                        }
                    }
                }
                (
                    Kind::Yuv(yuv_matrix(image.matrix())),
                    vec![("luma", luma), ("chroma", chroma)],
                )
            }
            packed => {
                let (bpp, rgb) = packed
                    .packed_layout()
                    .ok_or_else(|| format!("{packed:?} is not a packed format"))?;
                let mut frame = host_tensor(previous.next(), &[1, h, w, bpp])?;
                let p = image.plane(0);
                copy_rows(frame.extract_tensor_mut().1, p.data, w * bpp, h, p.stride);
                (Kind::Packed(rgb.map(|c| c as i64)), vec![("frame", frame)])
            }
        };
        let (device_copies, allocator_owner) = match device {
            Device::Cpu => (Vec::new(), None),
            Device::Cuda(id) => {
                let (copies, reused) = upload(&host, previous_device, session, id)?;
                let owner = if reused {
                    previous_owner
                } else {
                    Some(session.inner())
                };
                (copies, owner)
            }
        };
        self.tensors = Some(Tensors {
            host,
            device: device_copies,
            allocator_owner,
        });
        self.kind = Some(kind);
        self.device = Some(device);
        self.view = Some(image.id());
        self.frames += 1;
        Ok(())
    }

    /// Binds the prepared frame's tensors (on the device when uploaded) and their companion input
    /// to `binding`.
    pub fn bind(&self, binding: &mut IoBinding) -> Result<(), String> {
        let (Some(tensors), Some(kind)) = (&self.tensors, self.kind) else {
            return Err("no frame was prepared".into());
        };
        let list = if tensors.device.is_empty() {
            &tensors.host
        } else {
            &tensors.device
        };
        for (name, t) in list {
            binding
                .bind_input(*name, t)
                .map_err(|e| format!("cannot bind `{name}`: {e}"))?;
        }
        match kind {
            Kind::Packed(channels) => {
                let t = Tensor::from_array(([3usize], channels.to_vec()))
                    .map_err(|e| format!("cannot make `channels`: {e}"))?;
                binding
                    .bind_input("channels", &t)
                    .map_err(|e| format!("cannot bind `channels`: {e}"))?;
            }
            Kind::Yuv(m) => {
                let t = Tensor::from_array(([3usize, 3], m.to_vec()))
                    .map_err(|e| format!("cannot make `yuv_matrix`: {e}"))?;
                binding
                    .bind_input("yuv_matrix", &t)
                    .map_err(|e| format!("cannot bind `yuv_matrix`: {e}"))?;
            }
        }
        Ok(())
    }
}

/// Device copies of the host tensors, in `previous` when its tensors have their shapes (then
/// `true`), else allocated with `session`'s allocator on CUDA device `id`.
fn upload(
    host: &[(&'static str, Tensor<u8>)],
    previous: Named,
    session: &Session,
    id: i32,
) -> Result<(Named, bool), String> {
    let fits = previous.len() == host.len()
        && previous.iter().zip(host).all(|((a, d), (b, h))| {
            let shape: Vec<usize> = h.shape().iter().map(|&x| x as usize).collect();
            a == b && same_shape(d, &shape)
        });
    if fits {
        let mut out = previous;
        for ((name, device), (_, t)) in out.iter_mut().zip(host) {
            t.copy_into(&mut *device)
                .map_err(|e| format!("cannot upload `{name}` to CUDA device {id}: {e}"))?;
        }
        return Ok((out, true));
    }
    let info = MemoryInfo::new(
        AllocationDevice::CUDA,
        id,
        AllocatorType::Device,
        MemoryType::Default,
    )
    .map_err(|e| format!("no CUDA memory info for device {id}: {e}"))?;
    let allocator = Allocator::new(session, info)
        .map_err(|e| format!("no device allocator on CUDA device {id}: {e}"))?;
    let copies = host
        .iter()
        .map(|(name, t)| {
            let shape: Vec<usize> = t.shape().iter().map(|&d| d as usize).collect();
            let mut device = Tensor::<u8>::new(&allocator, shape)
                .map_err(|e| format!("cannot allocate `{name}` on CUDA device {id}: {e}"))?;
            t.copy_into(&mut device)
                .map_err(|e| format!("cannot upload `{name}` to CUDA device {id}: {e}"))?;
            Ok((*name, device))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((copies, false))
}
