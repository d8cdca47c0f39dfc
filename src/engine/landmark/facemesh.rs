// SPDX-License-Identifier: MPL-2.0
//! MediaPipe FaceMesh (`facemesh`): 468 3-D points in crop pixels from a crop rotated so the face
//! is upright, plus a face-presence logit. The crop comes from a detection (box centre, eye line)
//! or, on a second pass or in tracking, from the previous landmarks (see
//! [`Landmarker::crop_from_landmarks`](super::Landmarker::crop_from_landmarks)).

use std::path::Path;

use super::super::descriptor::Descriptor;
use super::super::detect::Detection;
use super::super::error::{Error, Result};
use super::super::geometry::{Point, RotatedRect};
use super::super::output::Output;

/// Output tensors: the landmarks and the face flag.
pub(super) const OUTPUTS: usize = 2;

/// The `axis-points` of the descriptor: the top and bottom points of the face's vertical axis.
pub(super) fn axis_points(d: &Descriptor, points: usize) -> Result<(usize, usize)> {
    match d.numbers("axis-points")?.as_slice() {
        [a, b]
            if [a, b].iter().all(|v| v.fract() == 0.0 && **v >= 0.0)
                && (*a as usize) < points
                && (*b as usize) < points
                && a != b =>
        {
            Ok((*a as usize, *b as usize))
        }
        _ => Err(d.error(
            "axis-points",
            format!("expected two different point indices (top, bottom) below {points}"),
        )),
    }
}

/// The crop for a fresh detection: the box centre, the longer side times the crop scale, turned
/// so the face is upright: by the eye line when the eyes are well apart, else (turned faces,
/// where the two eye points nearly meet) by the axis from the eyes' midpoint to the mouth's.
pub(super) fn crop_from_detection(d: &Detection, crop_scale: f32) -> RotatedRect {
    let [left, right, _, mouth_l, mouth_r] = d.keypoints;
    let eye_dist = ((right.x - left.x).powi(2) + (right.y - left.y).powi(2)).sqrt();
    let eyes = Point::new((left.x + right.x) * 0.5, (left.y + right.y) * 0.5);
    let mouth = Point::new((mouth_l.x + mouth_r.x) * 0.5, (mouth_l.y + mouth_r.y) * 0.5);
    let (dx, dy) = (mouth.x - eyes.x, mouth.y - eyes.y);
    let axis_len = (dx * dx + dy * dy).sqrt();
    let angle = if eye_dist >= 0.5 * axis_len {
        (right.y - left.y).atan2(right.x - left.x)
    } else {
        dy.atan2(dx) - std::f32::consts::FRAC_PI_2
    };
    RotatedRect {
        centre: d.bbox.centre(),
        side: d.bbox.width().max(d.bbox.height()) * crop_scale,
        angle: if angle.is_finite() { angle } else { 0.0 },
    }
}

/// The model's outputs for `n` crops of `points` points: x, y, z per point in crop pixels, and
/// one face-presence logit per crop.
pub(super) fn decode(
    outputs: &[Output],
    n: usize,
    points: usize,
    path: &Path,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let (lm, flag) = (&outputs[0], &outputs[1]);
    if lm.data.len() != n * points * 3 || flag.data.len() != n {
        return Err(Error::Model {
            path: path.to_path_buf(),
            message: format!(
                "outputs have shapes {:?} and {:?}; expected {n}×{} landmark values and {n} face flags",
                lm.shape,
                flag.shape,
                points * 3
            ),
        });
    }
    Ok((lm.data.to_vec(), flag.data.to_vec()))
}
