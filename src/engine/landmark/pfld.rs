// SPDX-License-Identifier: MPL-2.0
//! PFLD (`pfld`, e.g. the 98 WFLW points of the seed project): 2-D points in 0..1 of an
//! axis-aligned square crop around the detector box (side = the box's longer side times
//! `crop-scale`, zero padding); no presence output (reported as 1) and no depth (z = 0). Without
//! a presence score these models neither re-crop from their landmarks nor track.

use std::path::Path;

use super::super::detect::Detection;
use super::super::error::{Error, Result};
use super::super::geometry::RotatedRect;
use super::super::output::Output;

/// Output tensors: the landmarks only.
pub(super) const OUTPUTS: usize = 1;

/// Face-presence logit reported for every crop (a probability of 1 once squashed).
const PRESENCE_LOGIT: f32 = 80.0;

/// The crop for a fresh detection: the box centre, the longer side times the crop scale, upright.
pub(super) fn crop_from_detection(d: &Detection, crop_scale: f32) -> RotatedRect {
    RotatedRect {
        centre: d.bbox.centre(),
        side: d.bbox.width().max(d.bbox.height()) * crop_scale,
        angle: 0.0,
    }
}

/// The model's output for `n` crops of `points` points: 2-D points in 0..1 of the crop, scaled
/// to crop pixels of a `size`-pixel input, no depth; and a presence logit per crop.
pub(super) fn decode(
    outputs: &[Output],
    n: usize,
    points: usize,
    size: usize,
    path: &Path,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let lm = &outputs[0];
    if lm.data.len() != n * points * 2 {
        return Err(Error::Model {
            path: path.to_path_buf(),
            message: format!(
                "output has shape {:?}; expected {n}×{} values ({points} points × 2)",
                lm.shape,
                points * 2
            ),
        });
    }
    let coords = lm
        .data
        .chunks_exact(2)
        .flat_map(|c| [c[0] * size as f32, c[1] * size as f32, 0.0])
        .collect();
    Ok((coords, vec![PRESENCE_LOGIT; n]))
}
