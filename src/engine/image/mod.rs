// SPDX-License-Identifier: MPL-2.0
//! Read-only views of video frames (packed RGB-family and planar/semi-planar YUV, any stride), owned
//! copies of them, and the sampling that turns a region of a frame into a model's input tensor
//! ([`warp`]; eight samples at a time in [`wide`] where the CPU has AVX2).

mod warp;
#[cfg(target_arch = "x86_64")]
mod wide;

pub use warp::warp_into;

use super::error::{Error, Result};

/// Pixel layouts the engine reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    Rgb,
    Bgr,
    Rgba,
    Bgra,
    Rgbx,
    Bgrx,
    /// Planar Y, U, V; chroma subsampled 2×2.
    I420,
    /// Planar Y, interleaved UV; chroma subsampled 2×2.
    Nv12,
}

impl PixelFormat {
    /// Bytes per pixel and the byte offsets of R, G and B for packed formats.
    pub fn packed_layout(self) -> Option<(usize, [usize; 3])> {
        match self {
            PixelFormat::Rgb => Some((3, [0, 1, 2])),
            PixelFormat::Bgr => Some((3, [2, 1, 0])),
            PixelFormat::Rgba | PixelFormat::Rgbx => Some((4, [0, 1, 2])),
            PixelFormat::Bgra | PixelFormat::Bgrx => Some((4, [2, 1, 0])),
            PixelFormat::I420 | PixelFormat::Nv12 => None,
        }
    }
}

/// The matrix that turns Y'CbCr into R'G'B'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YuvMatrix {
    /// ITU-R BT.601, limited range (SD video).
    #[default]
    Bt601,
    /// ITU-R BT.709, limited range (HD video).
    Bt709,
}

impl YuvMatrix {
    /// R, G, B (0..255) of limited-range Y', Cb, Cr (0..255).
    #[inline]
    fn to_rgb(self, y: f32, u: f32, v: f32) -> [f32; 3] {
        let [rv, gu, gv, bu] = self.coefficients();
        let l = 1.164 * (y - 16.0);
        let (u, v) = (u - 128.0, v - 128.0);
        [
            (l + rv * v).clamp(0.0, 255.0),
            (l - gu * u - gv * v).clamp(0.0, 255.0),
            (l + bu * u).clamp(0.0, 255.0),
        ]
    }

    /// (R from V, G from U, G from V, B from U) for limited-range input.
    pub fn coefficients(self) -> [f32; 4] {
        match self {
            YuvMatrix::Bt601 => [1.596, 0.392, 0.813, 2.017],
            YuvMatrix::Bt709 => [1.793, 0.213, 0.533, 2.112],
        }
    }
}

/// One plane of a frame: its bytes and the distance in bytes between rows.
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    pub data: &'a [u8],
    pub stride: usize,
}

/// A borrowed video frame.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    format: PixelFormat,
    width: usize,
    height: usize,
    planes: [Plane<'a>; 3],
    matrix: YuvMatrix,
    /// Unique to the view and its copies (see [`ImageView::id`]).
    id: u64,
}

/// A number no view made before has: two views with the same one are copies of each other, so
/// they show the same pixels (the bytes are borrowed, hence unchanged, while either lives).
fn next_view_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn check_plane(name: &str, plane: &Plane, row_bytes: usize, rows: usize) -> Result<()> {
    if plane.stride < row_bytes {
        return Err(Error::Image(format!(
            "{name} stride {} is smaller than a row ({row_bytes} bytes)",
            plane.stride
        )));
    }
    let needed = plane.stride * (rows - 1) + row_bytes;
    if plane.data.len() < needed {
        return Err(Error::Image(format!(
            "{name} holds {} bytes, {needed} needed for {rows} rows of stride {}",
            plane.data.len(),
            plane.stride
        )));
    }
    Ok(())
}

impl<'a> ImageView<'a> {
    /// A packed RGB-family frame (RGB, BGR, RGBA, BGRA, RGBx, BGRx).
    pub fn packed(
        format: PixelFormat,
        width: usize,
        height: usize,
        data: &'a [u8],
        stride: usize,
    ) -> Result<Self> {
        let (bpp, _) = format
            .packed_layout()
            .ok_or_else(|| Error::Image(format!("{format:?} is not a packed format")))?;
        Self::check_size(width, height)?;
        let plane = Plane { data, stride };
        check_plane("packed plane", &plane, width * bpp, height)?;
        Ok(Self {
            format,
            width,
            height,
            planes: [plane; 3],
            matrix: YuvMatrix::default(),
            id: next_view_id(),
        })
    }

    /// A planar I420 frame: full-size Y and half-size U and V planes.
    pub fn i420(
        width: usize,
        height: usize,
        y: Plane<'a>,
        u: Plane<'a>,
        v: Plane<'a>,
    ) -> Result<Self> {
        Self::check_size(width, height)?;
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        check_plane("Y plane", &y, width, height)?;
        check_plane("U plane", &u, cw, ch)?;
        check_plane("V plane", &v, cw, ch)?;
        Ok(Self {
            format: PixelFormat::I420,
            width,
            height,
            planes: [y, u, v],
            matrix: YuvMatrix::default(),
            id: next_view_id(),
        })
    }

    /// A semi-planar NV12 frame: full-size Y and a half-size interleaved UV plane.
    pub fn nv12(width: usize, height: usize, y: Plane<'a>, uv: Plane<'a>) -> Result<Self> {
        Self::check_size(width, height)?;
        check_plane("Y plane", &y, width, height)?;
        check_plane("UV plane", &uv, width.div_ceil(2) * 2, height.div_ceil(2))?;
        Ok(Self {
            format: PixelFormat::Nv12,
            width,
            height,
            planes: [y, uv, uv],
            matrix: YuvMatrix::default(),
            id: next_view_id(),
        })
    }

    /// The same view with another YUV matrix (ignored for RGB formats).
    pub fn with_matrix(mut self, matrix: YuvMatrix) -> Self {
        self.matrix = matrix;
        self
    }

    fn check_size(width: usize, height: usize) -> Result<()> {
        if width == 0 || height == 0 {
            return Err(Error::Image(format!("empty frame {width}×{height}")));
        }
        Ok(())
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// The matrix of a YUV frame.
    pub fn matrix(&self) -> YuvMatrix {
        self.matrix
    }

    /// The plane `i` (0: the packed plane or Y; 1: U or NV12's UV; 2: V).
    pub fn plane(&self, i: usize) -> Plane<'a> {
        self.planes[i]
    }

    /// Identifies the pixels: equal for a view and its copies, different for every other view
    /// (a per-frame cache, such as the frame tensors of graph pre-processing, keys on it).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// R, G, B (0..255) of pixel (x, y); the caller keeps x and y in range.
    #[inline]
    pub fn rgb(&self, x: usize, y: usize) -> [f32; 3] {
        match self.format.packed_layout() {
            Some((bpp, [r, g, b])) => {
                let row = &self.planes[0].data[y * self.planes[0].stride..];
                let px = &row[x * bpp..x * bpp + bpp];
                [px[r] as f32, px[g] as f32, px[b] as f32]
            }
            None => {
                let luma = self.planes[0].data[y * self.planes[0].stride + x] as f32;
                let (u, v) = self.chroma(x, y);
                self.matrix.to_rgb(luma, u as f32, v as f32)
            }
        }
    }

    /// U and V of pixel (x, y) of a YUV frame (2×2 subsampled chroma).
    #[inline]
    fn chroma(&self, x: usize, y: usize) -> (u8, u8) {
        let (cx, cy) = (x / 2, y / 2);
        let (u, v) = (&self.planes[1], &self.planes[2]);
        if self.format == PixelFormat::Nv12 {
            let i = cy * u.stride + cx * 2;
            (u.data[i], u.data[i + 1])
        } else {
            (u.data[cy * u.stride + cx], v.data[cy * v.stride + cx])
        }
    }

    /// Bilinear sample at continuous coordinates (pixel edges on integers); `None` outside the frame.
    #[inline]
    pub fn sample(&self, x: f32, y: f32) -> Option<[f32; 3]> {
        if !(x >= 0.0 && y >= 0.0 && x < self.width as f32 && y < self.height as f32) {
            return None;
        }
        let fx = (x - 0.5).max(0.0);
        let fy = (y - 0.5).max(0.0);
        let x0 = (fx as usize).min(self.width - 1);
        let y0 = (fy as usize).min(self.height - 1);
        let x1 = (x0 + 1).min(self.width - 1);
        let y1 = (y0 + 1).min(self.height - 1);
        let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
        let p00 = self.rgb(x0, y0);
        let p10 = self.rgb(x1, y0);
        let p01 = self.rgb(x0, y1);
        let p11 = self.rgb(x1, y1);
        let mut out = [0.0; 3];
        for c in 0..3 {
            let top = p00[c] + (p10[c] - p00[c]) * ax;
            let bottom = p01[c] + (p11[c] - p01[c]) * ax;
            out[c] = top + (bottom - top) * ay;
        }
        Some(out)
    }
}

/// A frame copied out of its buffer (for work on another thread), planes packed without padding.
/// Its storage is kept for the next copy.
#[derive(Debug, Clone, Default)]
pub struct OwnedImage {
    format: Option<PixelFormat>,
    width: usize,
    height: usize,
    matrix: YuvMatrix,
    data: Vec<u8>,
    /// Start, stride and length of each plane in `data`.
    planes: [(usize, usize, usize); 3],
    /// The id of the views of this copy (new with every copy).
    id: u64,
}

impl OwnedImage {
    /// Copies `view` into this image's storage.
    pub fn copy_from(&mut self, view: &ImageView) {
        let (w, h) = (view.width, view.height);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        // Bytes per row and rows of each distinct plane.
        let shapes: Vec<(usize, usize)> = match view.format {
            PixelFormat::I420 => vec![(w, h), (cw, ch), (cw, ch)],
            PixelFormat::Nv12 => vec![(w, h), (cw * 2, ch)],
            f => vec![(w * f.packed_layout().expect("packed").0, h)],
        };
        self.data.clear();
        let mut planes = [(0, 0, 0); 3];
        for (i, &(row, rows)) in shapes.iter().enumerate() {
            let plane = view.planes[i];
            let start = self.data.len();
            for r in 0..rows {
                let from = r * plane.stride;
                self.data.extend_from_slice(&plane.data[from..from + row]);
            }
            planes[i] = (start, row, row * rows);
        }
        // Single-plane formats repeat their plane, NV12 its UV plane, as the views do.
        for i in shapes.len()..3 {
            planes[i] = planes[shapes.len() - 1];
        }
        self.planes = planes;
        self.format = Some(view.format);
        self.width = w;
        self.height = h;
        self.matrix = view.matrix;
        self.id = next_view_id();
    }

    /// A view of the copy (`None` before the first copy).
    pub fn view(&self) -> Option<ImageView<'_>> {
        let format = self.format?;
        let plane = |i: usize| {
            let (start, stride, len) = self.planes[i];
            Plane {
                data: &self.data[start..start + len],
                stride,
            }
        };
        Some(ImageView {
            format,
            width: self.width,
            height: self.height,
            planes: [plane(0), plane(1), plane(2)],
            matrix: self.matrix,
            id: self.id,
        })
    }
}

/// Memory order of a model's image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Nhwc,
    Nchw,
}

/// Channel order of a model's image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColourOrder {
    Rgb,
    Bgr,
}

/// How pixels become tensor values: `(value - mean[c]) * scale[c]`, in the model's channel order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorFormat {
    pub layout: Layout,
    pub colour: ColourOrder,
    pub mean: [f32; 3],
    pub scale: [f32; 3],
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of `format` with bytes from a small generator, odd sizes and padded strides.
    /// A BT.709 view of planes made by [`noisy_frame`].
    pub(super) fn view_of<'a>(
        format: PixelFormat,
        w: usize,
        h: usize,
        data: &'a [Vec<u8>],
        strides: &[usize],
    ) -> ImageView<'a> {
        let p = |i: usize| Plane {
            data: &data[i],
            stride: strides[i],
        };
        match format {
            PixelFormat::I420 => ImageView::i420(w, h, p(0), p(1), p(2)),
            PixelFormat::Nv12 => ImageView::nv12(w, h, p(0), p(1)),
            f => ImageView::packed(f, w, h, p(0).data, p(0).stride),
        }
        .unwrap()
        .with_matrix(YuvMatrix::Bt709)
    }

    pub(super) fn noisy_frame(
        format: PixelFormat,
        w: usize,
        h: usize,
        seed: u32,
    ) -> (Vec<Vec<u8>>, Vec<usize>) {
        let mut state = seed;
        let mut byte = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        };
        let mut plane = |row: usize, rows: usize| {
            let stride = row + 5;
            (
                (0..stride * rows).map(|_| byte()).collect::<Vec<u8>>(),
                stride,
            )
        };
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let planes: Vec<(Vec<u8>, usize)> = match format {
            PixelFormat::I420 => vec![plane(w, h), plane(cw, ch), plane(cw, ch)],
            PixelFormat::Nv12 => vec![plane(w, h), plane(cw * 2, ch)],
            f => vec![plane(w * f.packed_layout().unwrap().0, h)],
        };
        planes.into_iter().unzip()
    }

    #[test]
    fn owned_copies_read_like_their_frames() {
        for (n, format) in [
            PixelFormat::Rgb,
            PixelFormat::Bgrx,
            PixelFormat::I420,
            PixelFormat::Nv12,
        ]
        .into_iter()
        .enumerate()
        {
            let (w, h) = (13, 7);
            let (data, strides) = noisy_frame(format, w, h, 40 + n as u32);
            let view = view_of(format, w, h, &data, &strides);
            let mut owned = OwnedImage::default();
            assert!(owned.view().is_none());
            owned.copy_from(&view);
            let copy = owned.view().unwrap();
            assert_eq!((copy.width(), copy.height(), copy.format()), (w, h, format));
            for y in 0..h {
                for x in 0..w {
                    assert_eq!(copy.rgb(x, y), view.rgb(x, y), "{format:?} ({x}, {y})");
                }
            }
        }
    }

    pub(super) fn rgb_frame(w: usize, h: usize, stride: usize) -> Vec<u8> {
        let mut data = vec![0u8; stride * h];
        for y in 0..h {
            for x in 0..w {
                let p = y * stride + x * 3;
                data[p] = (x * 10) as u8;
                data[p + 1] = (y * 10) as u8;
                data[p + 2] = 7;
            }
        }
        data
    }

    #[test]
    fn packed_view_honours_stride_and_channel_order() {
        let data = rgb_frame(4, 3, 16);
        let view = ImageView::packed(PixelFormat::Rgb, 4, 3, &data, 16).unwrap();
        assert_eq!(view.rgb(2, 1), [20.0, 10.0, 7.0]);
        let bgr = ImageView::packed(PixelFormat::Bgr, 4, 3, &data, 16).unwrap();
        assert_eq!(bgr.rgb(2, 1), [7.0, 10.0, 20.0]);
    }

    #[test]
    fn short_buffers_and_small_strides_are_refused() {
        let data = vec![0u8; 10];
        let err = ImageView::packed(PixelFormat::Rgb, 4, 3, &data, 12).unwrap_err();
        assert!(err.to_string().contains("needed"), "{err}");
        let err = ImageView::packed(PixelFormat::Rgbx, 4, 1, &data, 8).unwrap_err();
        assert!(err.to_string().contains("stride"), "{err}");
        assert!(ImageView::packed(PixelFormat::Rgb, 0, 3, &data, 12).is_err());
    }

    #[test]
    fn grey_yuv_converts_to_grey_rgb() {
        let y = vec![126u8; 4 * 4];
        let uv = vec![128u8; 4 * 2];
        let view = ImageView::nv12(
            4,
            4,
            Plane {
                data: &y,
                stride: 4,
            },
            Plane {
                data: &uv,
                stride: 4,
            },
        )
        .unwrap();
        let [r, g, b] = view.rgb(3, 3);
        assert!((r - 128.0).abs() < 1.0 && (g - r).abs() < 1e-3 && (b - r).abs() < 1e-3);
    }
}
