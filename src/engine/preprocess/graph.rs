// SPDX-License-Identifier: MPL-2.0
//! A model's frame graphs (one for packed frames, one for I420/NV12; see
//! `models/convert/frame_graph.py`) and one run of them: the frame tensors of the shared
//! [`FrameStore`], the crop maps (and, for a dynamic-size model, the tensor size) bound with I/O
//! binding; the outputs come back to the host.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::value::Tensor;

use super::frame::{Device, FrameStore};
use super::{PACKED_KEY, YUV_KEY};
use crate::engine::descriptor::{Descriptor, InputSize};
use crate::engine::error::{Error, Result};
use crate::engine::geometry::Affine;
use crate::engine::image::{ImageView, PixelFormat};
use crate::engine::output::Output;
use crate::engine::runtime::{self, RuntimeOptions, SharedSession};

/// A frame store shared by the models that run on the same frames.
pub type SharedFrameStore = Arc<Mutex<FrameStore>>;

/// One frame graph file and its session.
struct Variant {
    path: PathBuf,
    session: Arc<SharedSession>,
}

/// The frame graphs of one model.
pub struct FrameGraph {
    packed: Variant,
    yuv: Variant,
    dynamic_size: bool,
    device: Device,
    store: SharedFrameStore,
}

/// The path of the frame graph that `key` of `d` names (relative to the descriptor's folder).
pub fn variant_path(d: &Descriptor, key: &str) -> Result<PathBuf> {
    let name = d.optional(key).ok_or_else(|| Error::Descriptor {
        path: d.path.clone(),
        line: None,
        message: format!(
            "`{key}` is missing: graph pre-processing (preprocess=graph) needs the model's frame \
             graphs (made by `make models` for the default models)"
        ),
    })?;
    let folder = d.path.parent().unwrap_or(Path::new("."));
    Ok(folder.join(name))
}

/// Whether both frame graphs of `d` are named and present (what `auto` needs to pick them).
pub fn variants_exist(d: &Descriptor) -> bool {
    [PACKED_KEY, YUV_KEY]
        .iter()
        .all(|k| variant_path(d, k).is_ok_and(|p| p.is_file()))
}

impl FrameGraph {
    /// Loads both frame graphs of the model described by `d`, each checked for the inputs the
    /// engine binds and the outputs the descriptor names.
    pub fn load(d: &Descriptor, options: &RuntimeOptions) -> Result<FrameGraph> {
        let dynamic_size = matches!(d.size, InputSize::Dynamic { .. });
        let load = |key: &str, inputs: &[&str]| -> Result<Variant> {
            let path = variant_path(d, key)?;
            let session = runtime::shared_session(&path, options).map_err(|e| match e {
                Error::Model { path, message } => Error::Model {
                    path,
                    message: format!(
                        "frame graph ({key} in {}; needed by preprocess=graph): {message}",
                        d.path.display()
                    ),
                },
                other => other,
            })?;
            check_io(&path, &session, inputs, &d.outputs, dynamic_size)?;
            Ok(Variant { path, session })
        };
        let packed = load(PACKED_KEY, &["frame", "channels", "maps"])?;
        let yuv = load(YUV_KEY, &["luma", "chroma", "yuv_matrix", "maps"])?;
        let device = Device::of_provider(packed.session.provider, options.device_id);
        Ok(FrameGraph {
            packed,
            yuv,
            dynamic_size,
            device,
            store: SharedFrameStore::default(),
        })
    }

    /// The session of the packed-frame graph (its outputs are the network's).
    pub fn session(&self) -> &Arc<SharedSession> {
        &self.packed.session
    }

    /// Uses `store` for the frame tensors (the engine gives its models one store, so a frame is
    /// turned into tensors once for all of them).
    pub fn share_store(&mut self, store: SharedFrameStore) {
        self.store = store;
    }

    pub fn store(&self) -> &SharedFrameStore {
        &self.store
    }

    /// Runs the graph for `image`'s format on the crops `maps` (tensor pixel → frame pixel) of a
    /// `size` (width, height) tensor, and hands the outputs named `outputs` to `read`.
    pub fn run<T>(
        &self,
        name: &str,
        image: &ImageView,
        maps: &[Affine],
        size: (usize, usize),
        outputs: &[String],
        read: impl FnOnce(&[Output]) -> Result<T>,
    ) -> Result<T> {
        let fail = |message: String| Error::Inference {
            model: name.to_string(),
            message,
        };
        let variant = match image.format() {
            PixelFormat::I420 | PixelFormat::Nv12 => &self.yuv,
            _ => &self.packed,
        };
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let mut session = variant.session.lock();
        store
            .prepare(image, self.device, &session)
            .map_err(|m| fail(format!("frame tensors: {m}")))?;
        let mut binding = session
            .create_binding()
            .map_err(|e| fail(format!("cannot create an I/O binding: {e}")))?;
        store.bind(&mut binding).map_err(fail)?;
        let values: Vec<f32> = maps
            .iter()
            .flat_map(|m| [m.a, m.b, m.tx, m.c, m.d, m.ty])
            .collect();
        let maps_tensor = Tensor::from_array(([maps.len(), 2, 3], values))
            .map_err(|e| fail(format!("cannot make `maps`: {e}")))?;
        binding
            .bind_input("maps", &maps_tensor)
            .map_err(|e| fail(format!("cannot bind `maps`: {e}")))?;
        if self.dynamic_size {
            let t = Tensor::from_array(([2usize], vec![size.1 as i64, size.0 as i64]))
                .map_err(|e| fail(format!("cannot make `size`: {e}")))?;
            binding
                .bind_input("size", &t)
                .map_err(|e| fail(format!("cannot bind `size`: {e}")))?;
        }
        let host = MemoryInfo::new(
            AllocationDevice::CPU,
            0,
            AllocatorType::Device,
            MemoryType::Default,
        )
        .map_err(|e| fail(format!("no host memory info: {e}")))?;
        for n in outputs {
            binding
                .bind_output_to_device(n.as_str(), &host)
                .map_err(|e| fail(format!("cannot bind output `{n}`: {e}")))?;
        }
        let results = session.run_binding(&binding).map_err(|e| {
            fail(format!(
                "{} ({}): {e}",
                variant.path.display(),
                "frame graph"
            ))
        })?;
        let mut views = Vec::with_capacity(outputs.len());
        for n in outputs {
            let value = results
                .get(n.as_str())
                .ok_or_else(|| fail(format!("output `{n}` missing from the results")))?;
            let (s, data) = value.try_extract_tensor::<f32>().map_err(|e| {
                fail(format!(
                    "output `{n}` is not a float32 tensor on the host: {e}"
                ))
            })?;
            views.push(Output {
                shape: s.iter().copied().collect(),
                data,
            });
        }
        read(&views)
    }
}

/// Checks that the frame graph at `path` has the inputs the engine binds and the network's
/// outputs.
fn check_io(
    path: &Path,
    session: &SharedSession,
    inputs: &[&str],
    outputs: &[String],
    dynamic_size: bool,
) -> Result<()> {
    let session = session.lock();
    let have: Vec<String> = session
        .inputs()
        .iter()
        .map(|i| i.name().to_string())
        .collect();
    let size: &[&str] = if dynamic_size { &["size"] } else { &[] };
    for name in inputs.iter().chain(size) {
        if !have.iter().any(|h| h == name) {
            return Err(Error::Model {
                path: path.to_owned(),
                message: format!(
                    "has no input named `{name}`; its inputs are {have:?} (not a frame graph of \
                     this recipe? run `make models`)"
                ),
            });
        }
    }
    let have: Vec<String> = session
        .outputs()
        .iter()
        .map(|o| o.name().to_string())
        .collect();
    for name in outputs {
        if !have.contains(name) {
            return Err(Error::Model {
                path: path.to_owned(),
                message: format!("has no output named `{name}`; its outputs are {have:?}"),
            });
        }
    }
    Ok(())
}
