// SPDX-License-Identifier: MPL-2.0
//! Head-pose regressors: networks that read yaw, pitch and roll straight off a crop of the face
//! (WHENet, the lightweight network of Li et al., FSA-Net). Unlike a fit to landmarks they keep
//! working on profiles, where landmark models place their points badly.
//!
//! Everything model-specific is in the descriptor (family `headpose`):
//!
//! ```text
//! input, layout, colour, size, mean, scale   # as for every model
//! outputs = yaw pitch roll     # one tensor per axis (decode = bins) or one tensor (decode = angles)
//! decode = bins                # bins: per-axis bins, decoded as step · E[bin] + offset
//!                              # angles: the values are degrees
//! axes = yaw pitch roll        # which angle each output (bins) or each value (angles) holds
//! bins = 120 66 66             # bins only: count per axis, in `axes` order
//! bin-step = 3 3 3             # bins only: degrees per bin
//! bin-offset = -180 -99 -99    # bins only: the angle of bin 0
//! bin-values = logits          # bins only: logits (softmax applied here) | probabilities
//! crop = box                   # box: the detector's box | landmarks: the landmarks' extent
//! crop-shape = square          # square: side = crop-scale · the longer side | rect: each side · crop-scale
//! crop-scale = 1.2
//! ```
//! Every decoded angle is in the convention of [`crate::engine::pose`] (the AFLW2000-3D labels'),
//! relative to the crop's viewing ray; [`crate::engine::pose::perspective`] turns it into the
//! camera's frame.

mod decode;

use std::path::Path;

pub use decode::{Axis, Decode};

use super::descriptor::{Descriptor, Family, InputSize};
use super::error::Result;
use super::geometry::{Affine, BBox};
use super::image::ImageView;
use super::model::Model;
use super::pose::Pose;
use super::runtime::RuntimeOptions;

/// The file name of the default regressor in the models folder.
pub const DEFAULT_POSE_MODEL: &str = "whenet.onnx";

/// Which region of the face the crop is built around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CropSource {
    /// The detector's box.
    Box,
    /// The bounding box of the landmarks (falls back to the detector's box without them).
    Landmarks,
}

/// How the region becomes the crop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropRule {
    pub source: CropSource,
    /// Square crops use `scale` × the longer side; others scale each side.
    pub square: bool,
    pub scale: f32,
}

impl CropRule {
    /// Whether the crop depends on the landmarks (else only on the detector's box).
    pub fn needs_landmarks(&self) -> bool {
        self.source == CropSource::Landmarks
    }

    /// The crop (frame pixels, axis-aligned, may extend past the frame: padded with black) for a
    /// face with detector box `bbox` and optional `landmarks`.
    pub fn region(&self, bbox: &BBox, landmarks: &[[f32; 3]]) -> BBox {
        let base = match self.source {
            CropSource::Box => *bbox,
            CropSource::Landmarks => BBox::enclosing(
                landmarks
                    .iter()
                    .map(|p| super::geometry::Point::new(p[0], p[1])),
            )
            .filter(|b| b.is_finite() && b.area() > 0.0)
            .unwrap_or(*bbox),
        };
        let c = base.centre();
        let (w, h) = if self.square {
            let side = base.width().max(base.height()) * self.scale;
            (side, side)
        } else {
            (base.width() * self.scale, base.height() * self.scale)
        };
        BBox::new(c.x - w * 0.5, c.y - h * 0.5, c.x + w * 0.5, c.y + h * 0.5)
    }
}

/// A head-pose regressor with its reusable input buffer.
pub struct Regressor {
    model: Model,
    width: usize,
    height: usize,
    decode: Decode,
    crop: CropRule,
}

/// The largest magnitude an angle may have; anything beyond is a broken output.
pub const ANGLE_LIMIT: f32 = 180.0;

impl Regressor {
    /// Loads a regressor and its descriptor (default: beside the model), checking the outputs
    /// against the decoding the descriptor asks for.
    pub fn load(
        path: &Path,
        descriptor: Option<&Path>,
        options: &RuntimeOptions,
    ) -> Result<Regressor> {
        let model = Model::load(path, descriptor, &[Family::HeadPose], options)?;
        let d = &model.descriptor;
        let (width, height) = match d.size {
            InputSize::Fixed { width, height } => (width, height),
            InputSize::Dynamic { .. } => {
                return Err(d.error("size", "a head-pose regressor needs a fixed input".into()));
            }
        };
        let decode = Decode::from_descriptor(d)?;
        decode.check_outputs(d, |name| model.output_shape(name))?;
        let crop = crop_rule(d)?;
        Ok(Regressor {
            model,
            width,
            height,
            decode,
            crop,
        })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model, to share its frame store (see [`Model::share_frame_store`]).
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    pub fn crop_rule(&self) -> CropRule {
        self.crop
    }

    /// The angles of each face (detector box, landmarks (may be empty), and whether to average
    /// with the mirrored crop), in one batch when the model allows it. Mirror averaging runs the
    /// crop flipped left to right too (in the same batch) and averages the two estimates, the
    /// mirrored one with yaw and roll negated: this cancels the network's left-right bias at
    /// twice the cost. `None` for a face whose output is not a usable angle (NaN, or beyond
    /// ±[`ANGLE_LIMIT`]).
    pub fn run(
        &mut self,
        image: &ImageView,
        faces: &[(BBox, &[[f32; 3]], bool)],
    ) -> Result<Vec<Option<Pose>>> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let regions: Vec<BBox> = faces
            .iter()
            .map(|(b, l, _)| self.crop.region(b, l))
            .collect();
        let mut crops: Vec<(BBox, bool)> = regions.iter().map(|r| (*r, false)).collect();
        let mirrored: Vec<usize> = (0..faces.len()).filter(|&i| faces[i].2).collect();
        crops.extend(mirrored.iter().map(|&i| (regions[i], true)));
        let mut out = self.run_crops(image, &crops)?;
        let flipped = out.split_off(regions.len());
        Ok(average_flagged(out, &mirrored, flipped))
    }

    /// Runs the model on `crops`, in one batch when the model allows it.
    fn run_crops(
        &mut self,
        image: &ImageView,
        crops: &[(BBox, bool)],
    ) -> Result<Vec<Option<Pose>>> {
        if self.model.dynamic_batch {
            self.run_batch(image, crops)
        } else {
            let mut out = Vec::with_capacity(crops.len());
            for c in crops {
                out.extend(self.run_batch(image, std::slice::from_ref(c))?);
            }
            Ok(out)
        }
    }

    /// Runs the model on axis-aligned crops, each mirrored left to right when flagged.
    fn run_batch(
        &mut self,
        image: &ImageView,
        crops: &[(BBox, bool)],
    ) -> Result<Vec<Option<Pose>>> {
        let (w, h, n) = (self.width, self.height, crops.len());
        let maps: Vec<Affine> = crops
            .iter()
            .map(|(r, flip)| {
                let sx = r.width() / w as f32;
                // Mirrored: tensor column u samples the crop's column w - u.
                Affine {
                    a: if *flip { -sx } else { sx },
                    b: 0.0,
                    c: 0.0,
                    d: r.height() / h as f32,
                    tx: if *flip { r.x1 } else { r.x0 },
                    ty: r.y0,
                }
            })
            .collect();
        let decode = &self.decode;
        let path = self.model.path.clone();
        let read = |outputs: &[super::output::Output]| decode.decode(&path, outputs, n);
        self.model.run_maps(image, &maps, (w, h), read)
    }
}

/// `plain` with the estimates of the faces `mirrored` averaged with their mirrored-crop estimates
/// `flipped` (in the same order).
fn average_flagged(
    mut plain: Vec<Option<Pose>>,
    mirrored: &[usize],
    flipped: Vec<Option<Pose>>,
) -> Vec<Option<Pose>> {
    for (&i, m) in mirrored.iter().zip(flipped) {
        plain[i] = match (plain[i], m) {
            (Some(p), Some(m)) => Some(average_with_mirror(p, m)),
            _ => None,
        };
    }
    plain
}

/// The mean of an estimate and the estimate on the mirrored crop (whose yaw and roll have the
/// opposite sign), taken on the circle so that ±180° of yaw average to 180°.
fn average_with_mirror(p: Pose, m: Pose) -> Pose {
    let circular = |a: f32, b: f32| {
        let (a, b) = (a.to_radians(), b.to_radians());
        (a.sin() + b.sin()).atan2(a.cos() + b.cos()).to_degrees()
    };
    Pose {
        yaw: circular(p.yaw, -m.yaw),
        pitch: (p.pitch + m.pitch) * 0.5,
        roll: circular(p.roll, -m.roll),
    }
}

/// The checks [`Regressor::load`] makes of a descriptor before it looks at the model: decoding
/// and crop rule.
pub fn check_descriptor(d: &Descriptor) -> Result<()> {
    Decode::from_descriptor(d)?;
    crop_rule(d).map(drop)
}

fn crop_rule(d: &Descriptor) -> Result<CropRule> {
    let source = match d.required("crop")?.as_str() {
        "box" => CropSource::Box,
        "landmarks" => CropSource::Landmarks,
        other => return Err(d.error("crop", format!("`{other}` is not box or landmarks"))),
    };
    let square = match d.required("crop-shape")?.as_str() {
        "square" => true,
        "rect" => false,
        other => return Err(d.error("crop-shape", format!("`{other}` is not square or rect"))),
    };
    let scale = match d.numbers("crop-scale")?.as_slice() {
        [s] if (0.5..=4.0).contains(s) => *s,
        _ => return Err(d.error("crop-scale", "expected one number in 0.5..=4".into())),
    };
    Ok(CropRule {
        source,
        square,
        scale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_averaging_negates_yaw_and_roll_and_wraps() {
        let p = Pose {
            yaw: 40.0,
            pitch: 10.0,
            roll: 6.0,
        };
        let m = Pose {
            yaw: -36.0,
            pitch: 12.0,
            roll: -4.0,
        };
        let a = average_with_mirror(p, m);
        assert!((a.yaw - 38.0).abs() < 1e-4 && (a.pitch - 11.0).abs() < 1e-4);
        assert!((a.roll - 5.0).abs() < 1e-4);
        let back = average_with_mirror(Pose { yaw: 178.0, ..p }, Pose { yaw: 178.0, ..m });
        assert!((back.yaw.abs() - 180.0).abs() < 1e-3, "{back:?}");
    }

    #[test]
    fn square_crops_use_the_longer_side_and_rect_crops_scale_each_side() {
        let b = BBox::new(10.0, 20.0, 30.0, 60.0);
        let square = CropRule {
            source: CropSource::Box,
            square: true,
            scale: 1.5,
        };
        assert_eq!(square.region(&b, &[]), BBox::new(-10.0, 10.0, 50.0, 70.0));
        let rect = CropRule {
            source: CropSource::Landmarks,
            square: false,
            scale: 2.0,
        };
        // Without landmarks the detector box stands in.
        assert_eq!(rect.region(&b, &[]), BBox::new(0.0, 0.0, 40.0, 80.0));
        let pts = [[0.0, 0.0, 0.0], [10.0, 4.0, 1.0]];
        assert_eq!(rect.region(&b, &pts), BBox::new(-5.0, -2.0, 15.0, 6.0));
    }
}
