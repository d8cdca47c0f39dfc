// SPDX-License-Identifier: MPL-2.0
//! Mirror averaging: cancelling the landmark model's left-right bias.
//!
//! With `mirror_average`, the last landmark pass also runs on the mirrored crop; this module holds
//! what that needs: [`mirror_pairs`] finds each reference point's left-right mirror point,
//! [`average_with_mirror`] averages a plain pass with a mirrored one, and a
//! [`MirrorCorrection`] records what the averaging moved each landmark by, in the crop's own
//! units ([`mirror_correction`]), so that tracking frames can run the plain crop only and add the
//! last measured correction ([`apply_mirror_correction`]).

use super::geometry::{Affine, Point, RotatedRect};
use super::landmark::Landmarks;

/// What averaging with the mirrored crop moved each landmark by, in crop units (the crop's own
/// axes, one unit per model input pixel; z in the same units). Tracking frames run the plain crop
/// only and add the correction of the last frame that ran both, which keeps most of the mirror
/// pass's accuracy at half the cost.
pub type MirrorCorrection = Vec<[f32; 3]>;

/// The crop's linear map (model input pixels → frame pixels) and its inverse.
fn crop_linear(crop: &RotatedRect, size: f32) -> (Affine, Affine) {
    let m = Affine::from_rotated_rect(crop, size);
    let det = m.a * m.d - m.b * m.c;
    let inv = Affine {
        a: m.d / det,
        b: -m.b / det,
        c: -m.c / det,
        d: m.a / det,
        tx: 0.0,
        ty: 0.0,
    };
    (
        Affine {
            tx: 0.0,
            ty: 0.0,
            ..m
        },
        inv,
    )
}

/// What averaging moved each landmark by, in crop units (see [`MirrorCorrection`]).
pub fn mirror_correction(plain: &Landmarks, averaged: &Landmarks, size: f32) -> MirrorCorrection {
    let (_, inv) = crop_linear(&plain.crop, size);
    let z_scale = plain.crop.side / size;
    plain
        .points
        .iter()
        .zip(&averaged.points)
        .map(|(p, a)| {
            let d = inv.apply(Point::new(a[0] - p[0], a[1] - p[1]));
            [d.x, d.y, (a[2] - p[2]) / z_scale]
        })
        .collect()
}

/// Adds a mirror correction to landmarks found on a plain crop.
pub fn apply_mirror_correction(l: &mut Landmarks, correction: &MirrorCorrection, size: f32) {
    if correction.len() != l.points.len() {
        return;
    }
    let (linear, _) = crop_linear(&l.crop, size);
    let z_scale = l.crop.side / size;
    for (p, c) in l.points.iter_mut().zip(correction) {
        let d = linear.apply(Point::new(c[0], c[1]));
        let moved = [p[0] + d.x, p[1] + d.y, p[2] + c[2] * z_scale];
        if moved.iter().all(|v| v.is_finite()) {
            *p = moved;
        }
    }
}

/// For each point, its mirror across the reference face's x = 0 plane: the nearest point to
/// (-x, y, z). Empty when some point has no mirror within 2 % of the face's width, or when the
/// pairing is not an involution.
pub fn mirror_pairs(points: &[[f32; 3]]) -> Vec<usize> {
    let width = points.iter().map(|p| p[0]).fold(f32::MIN, f32::max)
        - points.iter().map(|p| p[0]).fold(f32::MAX, f32::min);
    let tolerance = (0.02 * width).powi(2);
    let mut pairs = Vec::with_capacity(points.len());
    for p in points {
        let target = [-p[0], p[1], p[2]];
        let best = points
            .iter()
            .enumerate()
            .map(|(j, q)| (j, (0..3).map(|k| (q[k] - target[k]).powi(2)).sum::<f32>()))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((j, d)) if d <= tolerance => pairs.push(j),
            _ => return Vec::new(),
        }
    }
    let involution = pairs.iter().enumerate().all(|(i, &j)| pairs[j] == i);
    if involution { pairs } else { Vec::new() }
}

/// Averages landmarks with those found on the mirrored crop (whose point `i` is the mirror point
/// of `i`), and the two presence scores.
pub fn average_with_mirror(plain: &Landmarks, mirrored: &Landmarks, pairs: &[usize]) -> Landmarks {
    let points = plain
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let q = mirrored.points[pairs[i]];
            [
                (p[0] + q[0]) * 0.5,
                (p[1] + q[1]) * 0.5,
                (p[2] + q[2]) * 0.5,
            ]
        })
        .collect();
    Landmarks {
        points,
        presence: (plain.presence + mirrored.presence) * 0.5,
        crop: plain.crop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_pairs_match_symmetric_points_and_refuse_asymmetric_sets() {
        let pts = [
            [0.0, 1.0, 0.0],
            [-2.0, 0.0, 1.0],
            [2.0, 0.0, 1.0],
            [-1.0, -1.0, 0.5],
            [1.0, -1.0, 0.5],
        ];
        assert_eq!(mirror_pairs(&pts), [0, 2, 1, 4, 3]);
        let lopsided = [[0.0, 1.0, 0.0], [-2.0, 0.0, 1.0], [1.0, 0.0, 1.0]];
        assert!(mirror_pairs(&lopsided).is_empty());
    }

    #[test]
    fn a_mirror_correction_moves_landmarks_with_their_crop() {
        let crop = RotatedRect {
            centre: Point::new(100.0, 100.0),
            side: 96.0,
            angle: 0.3,
        };
        let plain = Landmarks {
            points: vec![[90.0, 95.0, -4.0], [120.0, 110.0, 2.0]],
            presence: 1.0,
            crop,
        };
        let averaged = Landmarks {
            points: vec![[91.0, 94.0, -3.0], [119.5, 110.5, 2.0]],
            ..plain.clone()
        };
        let c = mirror_correction(&plain, &averaged, 192.0);
        let mut again = plain.clone();
        apply_mirror_correction(&mut again, &c, 192.0);
        for (a, b) in again.points.iter().zip(&averaged.points) {
            assert!((0..3).all(|k| (a[k] - b[k]).abs() < 1e-4), "{a:?} vs {b:?}");
        }
        // The same correction on a crop twice as large, turned a quarter more, moves twice as far
        // along the turned axes.
        let turned = RotatedRect {
            side: 192.0,
            angle: 0.3 + std::f32::consts::FRAC_PI_2,
            ..crop
        };
        let mut moved = Landmarks {
            crop: turned,
            ..plain.clone()
        };
        apply_mirror_correction(&mut moved, &c, 192.0);
        let d0 = [averaged.points[0][0] - 90.0, averaged.points[0][1] - 95.0];
        let d1 = [moved.points[0][0] - 90.0, moved.points[0][1] - 95.0];
        assert!((d1[0] + 2.0 * d0[1]).abs() < 1e-3 && (d1[1] - 2.0 * d0[0]).abs() < 1e-3);
        assert!((moved.points[0][2] - (-4.0 + 2.0)).abs() < 1e-4);
    }

    #[test]
    fn averaging_with_the_mirror_pass_uses_the_mirror_index() {
        let crop = RotatedRect {
            centre: Point::new(0.0, 0.0),
            side: 1.0,
            angle: 0.0,
        };
        let plain = Landmarks {
            points: vec![[0.0, 0.0, 0.0], [10.0, 0.0, 2.0]],
            presence: 1.0,
            crop,
        };
        let mirrored = Landmarks {
            points: vec![[12.0, 2.0, 4.0], [2.0, 0.0, 0.0]],
            presence: 0.5,
            crop,
        };
        let avg = average_with_mirror(&plain, &mirrored, &[1, 0]);
        assert_eq!(avg.points, vec![[1.0, 0.0, 0.0], [11.0, 1.0, 3.0]]);
        assert_eq!(avg.presence, 0.75);
    }
}
