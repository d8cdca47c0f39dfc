// SPDX-License-Identifier: MPL-2.0
//! Read-only views of video frames (packed RGB-family and planar/semi-planar YUV, any stride) and the
//! sampling that turns a region of a frame into a model's input tensor.

use super::error::{Error, Result};
use super::geometry::Affine;

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
    fn packed_layout(self) -> Option<(usize, [usize; 3])> {
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
    fn coefficients(self) -> [f32; 4] {
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

/// Fills `out` (one `width` × `height` × 3 image of the tensor) by sampling the frame at `map(u, v)`
/// for each tensor pixel centre; samples outside the frame get black.
///
/// The pixel format and the tensor layout are dispatched once per call, so the per-pixel loop is
/// specialised for each; YUV frames are interpolated in Y'CbCr and converted once per sample.
/// Where the CPU has AVX2, runs of eight samples well inside the frame are computed together
/// ([`wide`]), with the same arithmetic as the one-by-one path.
pub fn warp_into(
    image: &ImageView,
    map: &Affine,
    width: usize,
    height: usize,
    format: &TensorFormat,
    out: &mut [f32],
) {
    warp_with_paths(image, map, width, height, format, out, true)
}

/// [`warp_into`], with the eight-wide path allowed or not (the tests compare the two).
fn warp_with_paths(
    image: &ImageView,
    map: &Affine,
    width: usize,
    height: usize,
    format: &TensorFormat,
    out: &mut [f32],
    allow_wide: bool,
) {
    debug_assert_eq!(out.len(), width * height * 3);
    let w = Warp {
        image,
        map,
        width,
        height,
        format,
        allow_wide,
    };
    match image.format {
        PixelFormat::I420 | PixelFormat::Nv12 => w.run(&Yuv::new(image), out),
        packed => {
            let (bpp, rgb) = packed.packed_layout().expect("packed format");
            let plane = image.planes[0];
            if bpp == 3 {
                w.run(&Packed::<3> { plane, rgb }, out)
            } else {
                w.run(&Packed::<4> { plane, rgb }, out)
            }
        }
    }
}

/// One warp's parameters.
struct Warp<'a, 'b> {
    image: &'a ImageView<'b>,
    map: &'a Affine,
    width: usize,
    height: usize,
    format: &'a TensorFormat,
    allow_wide: bool,
}

impl Warp<'_, '_> {
    fn run(&self, taps: &impl Taps, out: &mut [f32]) {
        match self.format.layout {
            Layout::Nhwc => warp_with::<false>(taps, self, out),
            Layout::Nchw => warp_with::<true>(taps, self, out),
        }
    }
}

/// Reads the four taps of a bilinear sample and blends them into R, G, B (0..255).
trait Taps {
    /// Taps (x0, y0), (x1, y0), (x0, y1), (x1, y1) blended with weights `w` in that order.
    fn blend(&self, x: [usize; 2], y: [usize; 2], w: [f32; 4]) -> [f32; 3];
    /// The same for taps known to lie inside the frame with x1 = x0 + 1 and y1 = y0 + 1.
    fn blend_inside(&self, x0: usize, y0: usize, w: [f32; 4]) -> [f32; 3] {
        self.blend([x0, x0 + 1], [y0, y0 + 1], w)
    }
    /// The frame for the eight-wide AVX2 path.
    #[cfg(target_arch = "x86_64")]
    fn wide(&self) -> Option<wide::Wide<'_>>;
}

/// A packed frame of `BPP` bytes per pixel with R, G, B at byte offsets `rgb`.
struct Packed<'a, const BPP: usize> {
    plane: Plane<'a>,
    rgb: [usize; 3],
}

impl<const BPP: usize> Packed<'_, BPP> {
    #[inline(always)]
    fn accumulate(&self, acc: &mut [f32; 3], px: &[u8], weight: f32) {
        let [r, g, b] = self.rgb;
        acc[0] += px[r] as f32 * weight;
        acc[1] += px[g] as f32 * weight;
        acc[2] += px[b] as f32 * weight;
    }
}

impl<const BPP: usize> Taps for Packed<'_, BPP> {
    #[cfg(target_arch = "x86_64")]
    fn wide(&self) -> Option<wide::Wide<'_>> {
        wide::Wide::packed(self.plane.data, self.plane.stride, BPP, self.rgb)
    }

    #[inline(always)]
    fn blend(&self, x: [usize; 2], y: [usize; 2], w: [f32; 4]) -> [f32; 3] {
        let mut acc = [0.0f32; 3];
        let data = self.plane.data;
        for (k, weight) in w.into_iter().enumerate() {
            let i = y[k / 2] * self.plane.stride + x[k % 2] * BPP;
            self.accumulate(&mut acc, &data[i..i + BPP], weight);
        }
        acc
    }

    #[inline(always)]
    fn blend_inside(&self, x0: usize, y0: usize, w: [f32; 4]) -> [f32; 3] {
        let i = y0 * self.plane.stride + x0 * BPP;
        let j = i + self.plane.stride;
        let data = self.plane.data;
        #[cfg(target_arch = "x86_64")]
        if let (Some(top), Some(bottom)) = (data.get(i..i + 8), data.get(j..j + 8)) {
            let lanes = simd::blend_packed::<BPP>(top, bottom, w);
            let [r, g, b] = self.rgb;
            return [lanes[r], lanes[g], lanes[b]];
        }
        // Two pixels of each row, bounds-checked once per row.
        let top = &data[i..i + 2 * BPP];
        let bottom = &data[j..j + 2 * BPP];
        let mut acc = [0.0f32; 3];
        self.accumulate(&mut acc, &top[..BPP], w[0]);
        self.accumulate(&mut acc, &top[BPP..], w[1]);
        self.accumulate(&mut acc, &bottom[..BPP], w[2]);
        self.accumulate(&mut acc, &bottom[BPP..], w[3]);
        acc
    }
}

/// A planar (I420) or semi-planar (NV12) Y'CbCr frame with 2×2 subsampled chroma.
struct Yuv<'a> {
    luma: Plane<'a>,
    u: Plane<'a>,
    v: Plane<'a>,
    /// Bytes from one chroma sample to the next in a row (1 for I420, 2 for NV12) and the byte
    /// offset of V from U's plane start (NV12: V follows U).
    step: usize,
    interleaved: bool,
    matrix: YuvMatrix,
}

impl<'a> Yuv<'a> {
    fn new(image: &ImageView<'a>) -> Yuv<'a> {
        let interleaved = image.format == PixelFormat::Nv12;
        Yuv {
            luma: image.planes[0],
            u: image.planes[1],
            v: image.planes[2],
            step: if interleaved { 2 } else { 1 },
            interleaved,
            matrix: image.matrix,
        }
    }

    /// U and V of the chroma sample covering luma pixel (x, y).
    #[inline(always)]
    fn chroma(&self, x: usize, y: usize) -> (f32, f32) {
        let i = (y / 2) * self.u.stride + (x / 2) * self.step;
        if self.interleaved {
            let uv = &self.u.data[i..i + 2];
            (uv[0] as f32, uv[1] as f32)
        } else {
            let j = (y / 2) * self.v.stride + x / 2;
            (self.u.data[i] as f32, self.v.data[j] as f32)
        }
    }
}

impl Taps for Yuv<'_> {
    #[cfg(target_arch = "x86_64")]
    fn wide(&self) -> Option<wide::Wide<'_>> {
        wide::Wide::yuv(
            [self.luma, self.u, self.v],
            self.interleaved,
            self.matrix.coefficients(),
        )
    }

    #[inline(always)]
    fn blend(&self, x: [usize; 2], y: [usize; 2], w: [f32; 4]) -> [f32; 3] {
        let (mut yy, mut uu, mut vv) = (0.0, 0.0, 0.0);
        for (k, weight) in w.into_iter().enumerate() {
            let (tx, ty) = (x[k % 2], y[k / 2]);
            yy += self.luma.data[ty * self.luma.stride + tx] as f32 * weight;
            let (cu, cv) = self.chroma(tx, ty);
            uu += cu * weight;
            vv += cv * weight;
        }
        self.matrix.to_rgb(yy, uu, vv)
    }

    #[inline(always)]
    fn blend_inside(&self, x0: usize, y0: usize, w: [f32; 4]) -> [f32; 3] {
        let i = y0 * self.luma.stride + x0;
        let top = &self.luma.data[i..i + 2];
        let j = i + self.luma.stride;
        let bottom = &self.luma.data[j..j + 2];
        let luma = [top[0], top[1], bottom[0], bottom[1]];
        let (mut yy, mut uu, mut vv) = (0.0, 0.0, 0.0);
        for (k, weight) in w.into_iter().enumerate() {
            yy += luma[k] as f32 * weight;
            let (cu, cv) = self.chroma(x0 + k % 2, y0 + k / 2);
            uu += cu * weight;
            vv += cv * weight;
        }
        self.matrix.to_rgb(yy, uu, vv)
    }
}

/// The blend of four taps with all channels of a tap in one SSE2 register (x86-64 always has
/// SSE2). The sums run in the same order as the scalar code's, so the results are identical.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    // SAFETY (every `unsafe` block below): SSE2 is part of the x86-64 baseline, so its
    // intrinsics are always available; the only memory they touch is named at each load and
    // store.

    /// Σ tap_k · w_k over the four tap vectors.
    #[inline(always)]
    fn weighted(taps: [__m128; 4], w: [f32; 4]) -> [f32; 4] {
        let mut lanes = [0.0f32; 4];
        unsafe {
            let mut acc = _mm_mul_ps(taps[0], _mm_set1_ps(w[0]));
            for k in 1..4 {
                acc = _mm_add_ps(acc, _mm_mul_ps(taps[k], _mm_set1_ps(w[k])));
            }
            // `lanes` holds the four f32 the unaligned store writes.
            _mm_storeu_ps(lanes.as_mut_ptr(), acc);
        }
        lanes
    }

    /// The blend of two pixels of `BPP` (3 or 4) bytes from the first bytes of each row; lane `c`
    /// holds byte `c` of the pixels.
    #[inline(always)]
    pub(super) fn blend_packed<const BPP: usize>(
        top: &[u8],
        bottom: &[u8],
        w: [f32; 4],
    ) -> [f32; 4] {
        let load = |row: &[u8]| {
            assert!(row.len() >= 8, "a row slice of 8 bytes");
            unsafe {
                // The row holds at least the 8 bytes the unaligned load reads.
                let bytes = _mm_loadl_epi64(row.as_ptr().cast());
                let zero = _mm_setzero_si128();
                let wide = _mm_unpacklo_epi8(bytes, zero);
                // The second pixel starts BPP bytes (2·BPP bytes of 16-bit lanes) further.
                let second = if BPP == 3 {
                    _mm_srli_si128::<6>(wide)
                } else {
                    _mm_srli_si128::<8>(wide)
                };
                (
                    _mm_cvtepi32_ps(_mm_unpacklo_epi16(wide, zero)),
                    _mm_cvtepi32_ps(_mm_unpacklo_epi16(second, zero)),
                )
            }
        };
        let (p00, p10) = load(top);
        let (p01, p11) = load(bottom);
        weighted([p00, p10, p01, p11], w)
    }
}

/// The affine warp loop over tensor pixels, writing NCHW when `NCHW` (else NHWC). Where the CPU
/// has AVX2, runs of eight samples well inside the frame go through [`wide`]; the rest, one by
/// one, through the scalar path. Both compute the same values in the same order.
#[inline(always)]
fn warp_with<const NCHW: bool>(taps: &impl Taps, warp: &Warp, out: &mut [f32]) {
    let Warp {
        image,
        map,
        width,
        height,
        format,
        allow_wide,
    } = *warp;
    let order = match format.colour {
        ColourOrder::Rgb => [0, 1, 2],
        ColourOrder::Bgr => [2, 1, 0],
    };
    // value = channel * scale + offset, in tensor channel order.
    let scale = format.scale;
    let offset: [f32; 3] = std::array::from_fn(|c| -format.mean[c] * format.scale[c]);
    let (fw, fh) = (image.width as f32, image.height as f32);
    // Inside these bounds all four taps are in the frame without clamping.
    let (inner_w, inner_h) = (fw - 0.5, fh - 0.5);
    let (xmax, ymax) = (image.width - 1, image.height - 1);
    let weights = |ax: f32, ay: f32| {
        [
            (1.0 - ax) * (1.0 - ay),
            ax * (1.0 - ay),
            (1.0 - ax) * ay,
            ax * ay,
        ]
    };
    let sample = |x: f32, y: f32| -> [f32; 3] {
        if x >= 0.5 && y >= 0.5 && x < inner_w && y < inner_h {
            let (fx, fy) = (x - 0.5, y - 0.5);
            let (x0, y0) = (fx as usize, fy as usize);
            let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
            let rgb = taps.blend_inside(x0, y0, weights(ax, ay));
            std::array::from_fn(|c| rgb[order[c]] * scale[c] + offset[c])
        } else if x >= 0.0 && y >= 0.0 && x < fw && y < fh {
            let fx = (x - 0.5).max(0.0);
            let fy = (y - 0.5).max(0.0);
            let x0 = (fx as usize).min(xmax);
            let y0 = (fy as usize).min(ymax);
            let x1 = (x0 + 1).min(xmax);
            let y1 = (y0 + 1).min(ymax);
            let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
            let rgb = taps.blend([x0, x1], [y0, y1], weights(ax, ay));
            std::array::from_fn(|c| rgb[order[c]] * scale[c] + offset[c])
        } else {
            offset
        }
    };
    #[cfg(target_arch = "x86_64")]
    let wide = taps.wide().filter(|_| allow_wide && wide::available());
    #[cfg(not(target_arch = "x86_64"))]
    let _ = allow_wide;
    // Eight-wide runs read whole 32-bit words beside each tap: they stay off the last rows and
    // columns (see `wide`).
    #[cfg(target_arch = "x86_64")]
    let wide_limits = [fw - wide::MARGIN_X, fh - wide::MARGIN_Y];
    let plane = width * height;
    let (head, rest) = out.split_at_mut(if NCHW { plane } else { out.len() });
    let (mid, tail) = rest.split_at_mut(if NCHW { plane } else { 0 });
    let store = |head: &mut [f32], mid: &mut [f32], tail: &mut [f32], i: usize, value: [f32; 3]| {
        if NCHW {
            head[i] = value[0];
            mid[i] = value[1];
            tail[i] = value[2];
        } else {
            head[i * 3..i * 3 + 3].copy_from_slice(&value);
        }
    };
    for v in 0..height {
        let vc = v as f32 + 0.5;
        // The map at the row's first pixel centre; along the row, start + step · u.
        let start = [
            map.a * 0.5 + map.b * vc + map.tx,
            map.c * 0.5 + map.d * vc + map.ty,
        ];
        let row = v * width;
        let mut u = 0;
        #[cfg(target_arch = "x86_64")]
        if let Some(wide) = &wide {
            let norm = wide::Norm {
                order,
                scale,
                offset,
            };
            while u + 8 <= width {
                // SAFETY: AVX2 was detected.
                let eight = unsafe { wide.sample8(start, [map.a, map.c], u, wide_limits, &norm) };
                let i = row + u;
                match eight {
                    Some(value) if NCHW => {
                        head[i..i + 8].copy_from_slice(&value[0]);
                        mid[i..i + 8].copy_from_slice(&value[1]);
                        tail[i..i + 8].copy_from_slice(&value[2]);
                    }
                    Some(value) => {
                        for (k, px) in head[i * 3..(i + 8) * 3].chunks_exact_mut(3).enumerate() {
                            px.copy_from_slice(&[value[0][k], value[1][k], value[2][k]]);
                        }
                    }
                    None => {
                        for k in u..u + 8 {
                            let (x, y) = (start[0] + map.a * k as f32, start[1] + map.c * k as f32);
                            store(head, mid, tail, row + k, sample(x, y));
                        }
                    }
                }
                u += 8;
            }
        }
        for u in u..width {
            let (x, y) = (start[0] + map.a * u as f32, start[1] + map.c * u as f32);
            store(head, mid, tail, row + u, sample(x, y));
        }
    }
}

/// Eight samples at once with AVX2 gathers (x86-64 CPUs that have it, detected at run time).
///
/// Each tap pair of a row is read as one 32-bit word from the tap's byte, so the reads reach up
/// to three bytes (packed: one pixel and three bytes) past the left tap: samples must lie at least
/// [`MARGIN_X`] pixels from the right edge and [`MARGIN_Y`] from the bottom, which keeps every
/// read inside its row (chroma rows included) and so inside the plane the view checked.
#[cfg(target_arch = "x86_64")]
mod wide {
    use std::arch::x86_64::*;

    use super::Plane;

    pub(super) const MARGIN_X: f32 = 8.5;
    pub(super) const MARGIN_Y: f32 = 1.5;

    /// value = channel · scale + offset, channels in tensor order (`order`: frame channel of each).
    pub(super) struct Norm {
        pub order: [usize; 3],
        pub scale: [f32; 3],
        pub offset: [f32; 3],
    }

    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    pub(super) enum Wide<'a> {
        Packed {
            data: &'a [u8],
            stride: i32,
            bpp: i32,
            rgb: [i32; 3],
        },
        Yuv {
            planes: [Plane<'a>; 3],
            interleaved: bool,
            coefficients: [f32; 4],
        },
    }

    /// Offsets must fit the gathers' 32-bit indices.
    fn fits(planes: &[&[u8]]) -> bool {
        planes.iter().all(|p| p.len() < i32::MAX as usize / 2)
    }

    impl<'a> Wide<'a> {
        pub(super) fn packed(
            data: &'a [u8],
            stride: usize,
            bpp: usize,
            rgb: [usize; 3],
        ) -> Option<Wide<'a>> {
            fits(&[data]).then(|| Wide::Packed {
                data,
                stride: stride as i32,
                bpp: bpp as i32,
                rgb: rgb.map(|c| c as i32),
            })
        }

        pub(super) fn yuv(
            planes: [Plane<'a>; 3],
            interleaved: bool,
            coefficients: [f32; 4],
        ) -> Option<Wide<'a>> {
            fits(&[planes[0].data, planes[1].data, planes[2].data]).then_some(Wide::Yuv {
                planes,
                interleaved,
                coefficients,
            })
        }

        /// The tensor values (channel by channel, in tensor order, normalised by `norm`) of the
        /// eight samples at `start + step · (u + k)`, k = 0..8, with the same arithmetic as the
        /// scalar path; `None` when one of them lies outside [0.5, `limits`) (the caller then
        /// takes the scalar path).
        ///
        /// # Safety
        /// The CPU has AVX2, and `limits` are the frame's width and height less [`MARGIN_X`] and
        /// [`MARGIN_Y`].
        #[target_feature(enable = "avx2")]
        pub(super) unsafe fn sample8(
            &self,
            start: [f32; 2],
            step: [f32; 2],
            u: usize,
            limits: [f32; 2],
            norm: &Norm,
        ) -> Option<[[f32; 8]; 3]> {
            // SAFETY (the gathers): every sample is checked to lie inside the margins, so each
            // 32-bit read starts at a tap inside the frame and ends inside the same row.
            unsafe {
                let k = _mm256_cvtepi32_ps(_mm256_add_epi32(
                    _mm256_set1_epi32(u as i32),
                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                ));
                let along = |i: usize| {
                    _mm256_add_ps(
                        _mm256_set1_ps(start[i]),
                        _mm256_mul_ps(_mm256_set1_ps(step[i]), k),
                    )
                };
                let (x, y) = (along(0), along(1));
                let half = _mm256_set1_ps(0.5);
                let inside = |p: __m256, limit: f32| {
                    _mm256_and_ps(
                        _mm256_cmp_ps::<_CMP_GE_OQ>(p, half),
                        _mm256_cmp_ps::<_CMP_LT_OQ>(p, _mm256_set1_ps(limit)),
                    )
                };
                if _mm256_movemask_ps(_mm256_and_ps(inside(x, limits[0]), inside(y, limits[1])))
                    != 0xff
                {
                    return None;
                }
                let fx = _mm256_sub_ps(x, half);
                let fy = _mm256_sub_ps(y, half);
                let x0 = _mm256_cvttps_epi32(fx);
                let y0 = _mm256_cvttps_epi32(fy);
                let ax = _mm256_sub_ps(fx, _mm256_cvtepi32_ps(x0));
                let ay = _mm256_sub_ps(fy, _mm256_cvtepi32_ps(y0));
                let one = _mm256_set1_ps(1.0);
                let (bx, by) = (_mm256_sub_ps(one, ax), _mm256_sub_ps(one, ay));
                let w = [
                    _mm256_mul_ps(bx, by),
                    _mm256_mul_ps(ax, by),
                    _mm256_mul_ps(bx, ay),
                    _mm256_mul_ps(ax, ay),
                ];
                let byte_mask = _mm256_set1_epi32(0xff);
                // Byte `shift / 8` of each lane as f32; `shift` per lane.
                let byte = |v: __m256i, shift: __m256i| {
                    _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srlv_epi32(v, shift), byte_mask))
                };
                let blend = |taps: [__m256; 4]| {
                    let mut acc = _mm256_mul_ps(taps[0], w[0]);
                    for k in 1..4 {
                        acc = _mm256_add_ps(acc, _mm256_mul_ps(taps[k], w[k]));
                    }
                    acc
                };
                let gather = |data: &[u8], index: __m256i| {
                    _mm256_i32gather_epi32::<1>(data.as_ptr().cast(), index)
                };
                let rgb: [__m256; 3] = match self {
                    Wide::Packed {
                        data,
                        stride,
                        bpp,
                        rgb,
                    } => {
                        let (stride, bpp) = (_mm256_set1_epi32(*stride), _mm256_set1_epi32(*bpp));
                        let top = _mm256_add_epi32(
                            _mm256_mullo_epi32(y0, stride),
                            _mm256_mullo_epi32(x0, bpp),
                        );
                        let bottom = _mm256_add_epi32(top, stride);
                        let words = [
                            gather(data, top),
                            gather(data, _mm256_add_epi32(top, bpp)),
                            gather(data, bottom),
                            gather(data, _mm256_add_epi32(bottom, bpp)),
                        ];
                        rgb.map(|offset| {
                            let shift = _mm256_set1_epi32(8 * offset);
                            blend(words.map(|word| byte(word, shift)))
                        })
                    }
                    Wide::Yuv {
                        planes,
                        interleaved,
                        coefficients,
                    } => {
                        let [luma, u, v] = planes;
                        let stride = |p: &Plane| _mm256_set1_epi32(p.stride as i32);
                        let zero = _mm256_setzero_si256();
                        let eight = _mm256_set1_epi32(8);
                        let top = _mm256_add_epi32(_mm256_mullo_epi32(y0, stride(luma)), x0);
                        let bottom = _mm256_add_epi32(top, stride(luma));
                        let (ytop, ybottom) = (gather(luma.data, top), gather(luma.data, bottom));
                        let yy = blend([
                            byte(ytop, zero),
                            byte(ytop, eight),
                            byte(ybottom, zero),
                            byte(ybottom, eight),
                        ]);
                        // Chroma of the taps: rows y0/2 and (y0+1)/2, columns x0/2 and
                        // (x0+1)/2 = x0/2 + (x0 & 1).
                        let cy0 = _mm256_srli_epi32::<1>(y0);
                        let cy1 =
                            _mm256_srli_epi32::<1>(_mm256_add_epi32(y0, _mm256_set1_epi32(1)));
                        let cx0 = _mm256_srli_epi32::<1>(x0);
                        let odd = _mm256_and_si256(x0, _mm256_set1_epi32(1));
                        let (uu, vv) = if *interleaved {
                            // U, V, U, V from the pair's left sample.
                            let col = _mm256_slli_epi32::<1>(cx0);
                            let s = stride(u);
                            let t =
                                gather(u.data, _mm256_add_epi32(_mm256_mullo_epi32(cy0, s), col));
                            let b =
                                gather(u.data, _mm256_add_epi32(_mm256_mullo_epi32(cy1, s), col));
                            let right = _mm256_slli_epi32::<4>(odd);
                            let right_v = _mm256_add_epi32(right, eight);
                            (
                                blend([
                                    byte(t, zero),
                                    byte(t, right),
                                    byte(b, zero),
                                    byte(b, right),
                                ]),
                                blend([
                                    byte(t, eight),
                                    byte(t, right_v),
                                    byte(b, eight),
                                    byte(b, right_v),
                                ]),
                            )
                        } else {
                            let right = _mm256_slli_epi32::<3>(odd);
                            let chroma = |p: &Plane| {
                                let s = stride(p);
                                let t = gather(
                                    p.data,
                                    _mm256_add_epi32(_mm256_mullo_epi32(cy0, s), cx0),
                                );
                                let b = gather(
                                    p.data,
                                    _mm256_add_epi32(_mm256_mullo_epi32(cy1, s), cx0),
                                );
                                blend([
                                    byte(t, zero),
                                    byte(t, right),
                                    byte(b, zero),
                                    byte(b, right),
                                ])
                            };
                            (chroma(u), chroma(v))
                        };
                        // YuvMatrix::to_rgb, lane by lane.
                        let [rv, gu, gv, bu] = coefficients.map(|c| _mm256_set1_ps(c));
                        let l = _mm256_mul_ps(
                            _mm256_set1_ps(1.164),
                            _mm256_sub_ps(yy, _mm256_set1_ps(16.0)),
                        );
                        let c128 = _mm256_set1_ps(128.0);
                        let (cu, cv) = (_mm256_sub_ps(uu, c128), _mm256_sub_ps(vv, c128));
                        let clamp = |x: __m256| {
                            _mm256_max_ps(
                                _mm256_min_ps(x, _mm256_set1_ps(255.0)),
                                _mm256_setzero_ps(),
                            )
                        };
                        let r = clamp(_mm256_add_ps(l, _mm256_mul_ps(rv, cv)));
                        let g = clamp(_mm256_sub_ps(
                            _mm256_sub_ps(l, _mm256_mul_ps(gu, cu)),
                            _mm256_mul_ps(gv, cv),
                        ));
                        let b = clamp(_mm256_add_ps(l, _mm256_mul_ps(bu, cu)));
                        [r, g, b]
                    }
                };
                let mut out = [[0.0f32; 8]; 3];
                for (c, lanes) in out.iter_mut().enumerate() {
                    let value = _mm256_add_ps(
                        _mm256_mul_ps(rgb[norm.order[c]], _mm256_set1_ps(norm.scale[c])),
                        _mm256_set1_ps(norm.offset[c]),
                    );
                    _mm256_storeu_ps(lanes.as_mut_ptr(), value);
                }
                Some(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The warp as it was before the fast path (one clamped path for every sample), kept as the
    // reference the fast one must match bit for bit.
    fn reference_warp_into(
        image: &ImageView,
        map: &Affine,
        width: usize,
        height: usize,
        format: &TensorFormat,
        out: &mut [f32],
    ) {
        debug_assert_eq!(out.len(), width * height * 3);
        let p = image.planes;
        match image.format {
            PixelFormat::I420 | PixelFormat::Nv12 => {
                let y = p[0];
                reference_warp_with(image, map, width, height, format, out, |taps, w| {
                    let (mut yy, mut uu, mut vv) = (0.0, 0.0, 0.0);
                    for ((x, row), weight) in taps.into_iter().zip(w) {
                        yy += y.data[row * y.stride + x] as f32 * weight;
                        let (cu, cv) = image.chroma(x, row);
                        uu += cu as f32 * weight;
                        vv += cv as f32 * weight;
                    }
                    image.matrix.to_rgb(yy, uu, vv)
                })
            }
            packed => {
                let (bpp, rgb) = packed.packed_layout().expect("packed format");
                if bpp == 3 {
                    reference_warp_packed::<3>(image, map, width, height, format, out, rgb)
                } else {
                    reference_warp_packed::<4>(image, map, width, height, format, out, rgb)
                }
            }
        }
    }

    fn reference_warp_packed<const BPP: usize>(
        image: &ImageView,
        map: &Affine,
        width: usize,
        height: usize,
        format: &TensorFormat,
        out: &mut [f32],
        [r, g, b]: [usize; 3],
    ) {
        let plane = image.planes[0];
        reference_warp_with(image, map, width, height, format, out, |taps, w| {
            let mut acc = [0.0f32; 3];
            for ((x, row), weight) in taps.into_iter().zip(w) {
                let i = row * plane.stride + x * BPP;
                let px: &[u8; BPP] = plane.data[i..i + BPP].try_into().expect("BPP bytes");
                acc[0] += px[r] as f32 * weight;
                acc[1] += px[g] as f32 * weight;
                acc[2] += px[b] as f32 * weight;
            }
            acc
        })
    }

    #[inline(always)]
    fn reference_warp_with(
        image: &ImageView,
        map: &Affine,
        width: usize,
        height: usize,
        format: &TensorFormat,
        out: &mut [f32],
        fetch: impl Fn([(usize, usize); 4], [f32; 4]) -> [f32; 3],
    ) {
        let order = match format.colour {
            ColourOrder::Rgb => [0, 1, 2],
            ColourOrder::Bgr => [2, 1, 0],
        };
        // value = channel * scale + offset, in tensor channel order.
        let scale = format.scale;
        let offset: [f32; 3] = std::array::from_fn(|c| -format.mean[c] * format.scale[c]);
        let (fw, fh) = (image.width as f32, image.height as f32);
        let (xmax, ymax) = (image.width - 1, image.height - 1);
        let plane = width * height;
        for v in 0..height {
            let vc = v as f32 + 0.5;
            // Incremental evaluation of the affine map along the row.
            let mut x = map.a * 0.5 + map.b * vc + map.tx;
            let mut y = map.c * 0.5 + map.d * vc + map.ty;
            for u in 0..width {
                let value: [f32; 3] = if x >= 0.0 && y >= 0.0 && x < fw && y < fh {
                    let fx = (x - 0.5).max(0.0);
                    let fy = (y - 0.5).max(0.0);
                    let x0 = (fx as usize).min(xmax);
                    let y0 = (fy as usize).min(ymax);
                    let x1 = (x0 + 1).min(xmax);
                    let y1 = (y0 + 1).min(ymax);
                    let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
                    let rgb = fetch(
                        [(x0, y0), (x1, y0), (x0, y1), (x1, y1)],
                        [
                            (1.0 - ax) * (1.0 - ay),
                            ax * (1.0 - ay),
                            (1.0 - ax) * ay,
                            ax * ay,
                        ],
                    );
                    std::array::from_fn(|c| rgb[order[c]] * scale[c] + offset[c])
                } else {
                    offset
                };
                let i = v * width + u;
                match format.layout {
                    Layout::Nhwc => out[i * 3..i * 3 + 3].copy_from_slice(&value),
                    Layout::Nchw => {
                        out[i] = value[0];
                        out[plane + i] = value[1];
                        out[2 * plane + i] = value[2];
                    }
                }
                x += map.a;
                y += map.c;
            }
        }
    }

    /// A frame of `format` with bytes from a small generator, odd sizes and padded strides.
    fn noisy_frame(
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
            let p = |i: usize| Plane {
                data: &data[i],
                stride: strides[i],
            };
            let view = match format {
                PixelFormat::I420 => ImageView::i420(w, h, p(0), p(1), p(2)),
                PixelFormat::Nv12 => ImageView::nv12(w, h, p(0), p(1)),
                f => ImageView::packed(f, w, h, p(0).data, p(0).stride),
            }
            .unwrap()
            .with_matrix(YuvMatrix::Bt709);
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

    /// Frames of every format (odd sizes, padded strides) warped by rotated, scaled and shifted
    /// maps, some reaching past every edge: `check(pixel format, map index, layout, output,
    /// reference output, scale)` for each.
    fn compare_warps(
        warp: impl Fn(&ImageView, &Affine, usize, usize, &TensorFormat, &mut [f32]),
        reference: impl Fn(&ImageView, &Affine, usize, usize, &TensorFormat, &mut [f32]),
        check: impl Fn(PixelFormat, usize, Layout, &[f32], &[f32], [f32; 3]),
    ) {
        let formats = [
            PixelFormat::Rgb,
            PixelFormat::Bgr,
            PixelFormat::Rgba,
            PixelFormat::Bgra,
            PixelFormat::Rgbx,
            PixelFormat::Bgrx,
            PixelFormat::I420,
            PixelFormat::Nv12,
        ];
        let (w, h) = (101, 67);
        for (n, &pixel_format) in formats.iter().enumerate() {
            let (data, strides) = noisy_frame(pixel_format, w, h, n as u32 + 1);
            let p = |i: usize| Plane {
                data: &data[i],
                stride: strides[i],
            };
            let view = match pixel_format {
                PixelFormat::I420 => ImageView::i420(w, h, p(0), p(1), p(2)),
                PixelFormat::Nv12 => ImageView::nv12(w, h, p(0), p(1)),
                f => ImageView::packed(f, w, h, p(0).data, p(0).stride),
            }
            .unwrap()
            .with_matrix(YuvMatrix::Bt709);
            for k in 0..12 {
                let angle = k as f32 * 0.55;
                let scale = 0.6 + 0.25 * k as f32;
                let map = Affine {
                    a: scale * angle.cos(),
                    b: -scale * angle.sin(),
                    c: scale * angle.sin(),
                    d: scale * angle.cos(),
                    tx: -6.0 + 9.3 * k as f32,
                    ty: 40.0 - 3.1 * k as f32,
                };
                for layout in [Layout::Nhwc, Layout::Nchw] {
                    let format = TensorFormat {
                        layout,
                        colour: if k % 2 == 0 {
                            ColourOrder::Rgb
                        } else {
                            ColourOrder::Bgr
                        },
                        mean: [127.5, 120.0, 100.0],
                        scale: [1.0 / 127.5, 0.01, 1.0],
                    };
                    let (ow, oh) = (43, 29);
                    let mut fast = vec![0.0; ow * oh * 3];
                    let mut slow = vec![1.0; ow * oh * 3];
                    warp(&view, &map, ow, oh, &format, &mut fast);
                    reference(&view, &map, ow, oh, &format, &mut slow);
                    check(pixel_format, k, layout, &fast, &slow, format.scale);
                }
            }
        }
    }

    #[test]
    fn the_warp_stays_within_a_tenth_of_a_grey_level_of_the_old_one() {
        // The old warp stepped along each row by repeated addition; this one evaluates the map
        // at each pixel: the sample positions differ by rounding only.
        compare_warps(
            warp_into,
            reference_warp_into,
            |f, k, layout, new, old, scale| {
                let plane = new.len() / 3;
                let worst = new
                    .iter()
                    .zip(old)
                    .enumerate()
                    .map(|(i, (a, b))| {
                        let c = if layout == Layout::Nchw {
                            i / plane
                        } else {
                            i % 3
                        };
                        (a - b).abs() / scale[c]
                    })
                    .fold(0.0f32, f32::max);
                assert!(
                    worst < 0.1,
                    "{f:?} map {k} {layout:?}: {worst} grey levels from the old warp"
                );
            },
        );
    }

    #[test]
    fn the_eight_wide_path_gives_the_scalar_paths_bits() {
        let scalar = |i: &ImageView, m: &Affine, w, h, f: &TensorFormat, o: &mut [f32]| {
            warp_with_paths(i, m, w, h, f, o, false)
        };
        compare_warps(warp_into, scalar, |f, k, layout, wide, scalar, _| {
            let same = wide
                .iter()
                .zip(scalar)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{f:?} map {k} {layout:?}: the two paths differ");
        });
    }

    fn rgb_frame(w: usize, h: usize, stride: usize) -> Vec<u8> {
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

    #[test]
    fn identity_warp_copies_pixels_into_nchw_bgr() {
        let data = rgb_frame(4, 3, 12);
        let view = ImageView::packed(PixelFormat::Rgb, 4, 3, &data, 12).unwrap();
        let fmt = TensorFormat {
            layout: Layout::Nchw,
            colour: ColourOrder::Bgr,
            mean: [0.0; 3],
            scale: [1.0; 3],
        };
        let mut out = vec![0.0; 4 * 3 * 3];
        warp_into(&view, &Affine::IDENTITY, 4, 3, &fmt, &mut out);
        // Channel 0 is blue (7), channel 2 is red (x * 10).
        assert_eq!(out[0], 7.0);
        assert_eq!(out[2 * 12 + 5], 10.0);
        assert_eq!(out[12 + 5], 10.0);
    }

    #[test]
    fn samples_outside_the_frame_get_the_padding_value() {
        let data = rgb_frame(2, 2, 6);
        let view = ImageView::packed(PixelFormat::Rgb, 2, 2, &data, 6).unwrap();
        let fmt = TensorFormat {
            layout: Layout::Nhwc,
            colour: ColourOrder::Rgb,
            mean: [10.0; 3],
            scale: [0.5; 3],
        };
        let mut out = vec![0.0; 4 * 4 * 3];
        warp_into(&view, &Affine::IDENTITY, 4, 4, &fmt, &mut out);
        assert_eq!(out[(3 * 4 + 3) * 3], -5.0);
    }
}
