// SPDX-License-Identifier: MPL-2.0
//! The warp that turns a region of a frame into a model's input tensor: bilinear sampling along an
//! affine map, specialised per pixel format and tensor layout, eight samples at a time where the
//! CPU allows ([`super::wide`]).

use super::{ColourOrder, ImageView, Layout, PixelFormat, Plane, TensorFormat, YuvMatrix};
use crate::engine::geometry::Affine;

#[cfg(target_arch = "x86_64")]
use super::wide;

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
    /// Bytes from one chroma sample to the next in a row: 1 for I420, 2 for NV12.
    step: usize,
    /// NV12: U and V interleaved in `u` (V one byte after U).
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

#[cfg(test)]
mod tests {
    use super::super::tests::{noisy_frame, rgb_frame, view_of};
    use super::*;
    use crate::engine::image::{ColourOrder, ImageView, Layout, PixelFormat};

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
            let view = view_of(pixel_format, w, h, &data, &strides);
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
