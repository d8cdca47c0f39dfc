// SPDX-License-Identifier: MPL-2.0
//! Eight samples at once with AVX2 gathers (x86-64 CPUs that have it, detected at run time).
//!
//! Each tap pair of a row is read as one 32-bit word from the tap's byte, so the reads reach up
//! to three bytes (packed: one pixel and three bytes) past the left tap: samples must lie at least
//! [`MARGIN_X`] pixels from the right edge and [`MARGIN_Y`] from the bottom, which keeps every
//! read inside its row (chroma rows included) and so inside the plane the view checked.

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

/// A frame as the gathers read it.
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
            if _mm256_movemask_ps(_mm256_and_ps(inside(x, limits[0]), inside(y, limits[1]))) != 0xff
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
                    let cy1 = _mm256_srli_epi32::<1>(_mm256_add_epi32(y0, _mm256_set1_epi32(1)));
                    let cx0 = _mm256_srli_epi32::<1>(x0);
                    let odd = _mm256_and_si256(x0, _mm256_set1_epi32(1));
                    let (uu, vv) = if *interleaved {
                        // U, V, U, V from the pair's left sample.
                        let col = _mm256_slli_epi32::<1>(cx0);
                        let s = stride(u);
                        let t = gather(u.data, _mm256_add_epi32(_mm256_mullo_epi32(cy0, s), col));
                        let b = gather(u.data, _mm256_add_epi32(_mm256_mullo_epi32(cy1, s), col));
                        let right = _mm256_slli_epi32::<4>(odd);
                        let right_v = _mm256_add_epi32(right, eight);
                        (
                            blend([byte(t, zero), byte(t, right), byte(b, zero), byte(b, right)]),
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
                            let t =
                                gather(p.data, _mm256_add_epi32(_mm256_mullo_epi32(cy0, s), cx0));
                            let b =
                                gather(p.data, _mm256_add_epi32(_mm256_mullo_epi32(cy1, s), cx0));
                            blend([byte(t, zero), byte(t, right), byte(b, zero), byte(b, right)])
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
                        _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(255.0)), _mm256_setzero_ps())
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
