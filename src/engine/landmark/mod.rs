// SPDX-License-Identifier: MPL-2.0
//! Face landmark models on square face crops, one file per family for what differs (descriptor
//! keys, the crop from a detection, output decoding):
//! - [`facemesh`]: MediaPipe FaceMesh, 468 3-D points and a face-presence score;
//! - [`pfld`]: PFLD-style 2-D points (e.g. the 98 WFLW points), no presence, no depth.
//!
//! What they share is here: the [`Landmarker`] the engine uses (loading, the crop from earlier
//! landmarks, the warp of crops and mirrored crops into a batch, the mapping back to the frame)
//! and the [`Landmarks`] it returns.

pub mod facemesh;
pub mod pfld;

use std::path::Path;

use super::descriptor::{Family, InputSize};
use super::detect::Detection;
use super::error::Result;
use super::geometry::{Affine, Point, RotatedRect};
use super::image::ImageView;
use super::model::Model;
use super::runtime::RuntimeOptions;

/// Landmarks of one face in frame coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Landmarks {
    /// x, y in frame pixels; z in pixels on the x scale, negative towards the camera.
    pub points: Vec<[f32; 3]>,
    /// Face-presence probability, 0..1.
    pub presence: f32,
    /// The crop the points came from.
    pub crop: RotatedRect,
}

/// A landmark model with its reusable input buffer.
pub struct Landmarker {
    model: Model,
    family: Family,
    size: usize,
    points: usize,
    crop_scale: f32,
    axis_points: (usize, usize),
}

impl Landmarker {
    /// Loads a landmark model and its descriptor (default: beside the model).
    pub fn load(
        path: &Path,
        descriptor: Option<&Path>,
        options: &RuntimeOptions,
    ) -> Result<Landmarker> {
        let model = Model::load(path, descriptor, &[Family::FaceMesh, Family::Pfld], options)?;
        let d = &model.descriptor;
        let family = d.family;
        let size = match d.size {
            InputSize::Fixed { width, height } if width == height => width,
            _ => return Err(d.error("size", "a landmark model needs a fixed square input".into())),
        };
        let points = d.integer("points", 1..=10_000)?;
        let crop_scale = match d.numbers("crop-scale")?.as_slice() {
            [s] if (0.5..=4.0).contains(s) => *s,
            _ => return Err(d.error("crop-scale", "expected one number in 0.5..=4".into())),
        };
        let (axis_points, outputs) = match family {
            Family::Pfld => ((0, 0), pfld::OUTPUTS),
            _ => (facemesh::axis_points(d, points)?, facemesh::OUTPUTS),
        };
        if d.outputs.len() != outputs {
            return Err(d.error(
                "outputs",
                format!("{} needs {outputs} output name(s)", family.name()),
            ));
        }
        Ok(Landmarker {
            family,
            model,
            size,
            points,
            crop_scale,
            axis_points,
        })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model, to share its frame store (see [`Model::share_frame_store`]) or give it a batch
    /// session ([`Model::add_batch_session`]).
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    /// Side of the square model input, pixels.
    pub fn input_size(&self) -> usize {
        self.size
    }

    pub fn point_count(&self) -> usize {
        self.points
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// Whether re-cropping from landmarks and mirror averaging apply (FaceMesh only).
    pub fn refines(&self) -> bool {
        self.family == Family::FaceMesh
    }

    /// The crop for a fresh detection: the box centre, the longer side times the crop scale,
    /// upright (PFLD) or turned so the face is upright (FaceMesh: by the eye line, or by the axis
    /// from the eyes to the mouth for turned faces).
    pub fn crop_from_detection(&self, d: &Detection) -> RotatedRect {
        match self.family {
            Family::Pfld => pfld::crop_from_detection(d, self.crop_scale),
            _ => facemesh::crop_from_detection(d, self.crop_scale),
        }
    }

    /// The crop around earlier landmarks, turned so the face's vertical axis (from the top point
    /// to the bottom point of `axis-points`) points down; this axis stays visible in profile.
    pub fn crop_from_landmarks(&self, points: &[[f32; 3]]) -> Option<RotatedRect> {
        let pts: Vec<Point> = points.iter().map(|p| Point::new(p[0], p[1])).collect();
        let (top, bottom) = (*pts.get(self.axis_points.0)?, *pts.get(self.axis_points.1)?);
        // The crop's x axis is the face's downward axis turned a quarter back: (dx, dy) → (dy, -dx),
        // which is (1, 0) for an upright face.
        let from = Point::new(0.0, 0.0);
        let to = Point::new(bottom.y - top.y, -(bottom.x - top.x));
        RotatedRect::around_points(&pts, from, to, self.crop_scale)
    }

    /// The crops of the next refining pass after a pass gave `landmarks`: each around its
    /// landmarks ([`Landmarker::crop_from_landmarks`]), or its own crop again when they give none.
    pub fn refined_crops(&self, landmarks: &[Landmarks]) -> Vec<RotatedRect> {
        landmarks
            .iter()
            .map(|l| self.crop_from_landmarks(&l.points).unwrap_or(l.crop))
            .collect()
    }

    /// Runs the model on every crop, in one batch when the model allows it.
    pub fn run(&mut self, image: &ImageView, crops: &[RotatedRect]) -> Result<Vec<Landmarks>> {
        self.run_flagged(image, crops, &vec![false; crops.len()])
    }

    /// Runs the model on every crop, and on the mirror image of those flagged in `mirror`, in one
    /// batch when the model allows it (`None` for the crops not flagged). The mirrored results
    /// are mapped back to the frame but keep the model's point order: point `i` of a mirrored
    /// result describes the face's mirror point of `i`.
    pub fn run_with_mirror_where(
        &mut self,
        image: &ImageView,
        crops: &[RotatedRect],
        mirror: &[bool],
    ) -> Result<(Vec<Landmarks>, Vec<Option<Landmarks>>)> {
        let flagged: Vec<usize> = (0..crops.len()).filter(|&i| mirror[i]).collect();
        let all: Vec<RotatedRect> = crops
            .iter()
            .copied()
            .chain(flagged.iter().map(|&i| crops[i]))
            .collect();
        let flags: Vec<bool> = (0..all.len()).map(|i| i >= crops.len()).collect();
        let mut out = self.run_flagged(image, &all, &flags)?;
        let mut mirrored: Vec<Option<Landmarks>> = vec![None; crops.len()];
        for (&i, m) in flagged.iter().zip(out.split_off(crops.len())) {
            mirrored[i] = Some(m);
        }
        Ok((out, mirrored))
    }

    fn run_flagged(
        &mut self,
        image: &ImageView,
        crops: &[RotatedRect],
        mirrored: &[bool],
    ) -> Result<Vec<Landmarks>> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        if self.model.dynamic_batch {
            self.run_batch(image, crops, mirrored)
        } else {
            let mut out = Vec::with_capacity(crops.len());
            for (c, m) in crops.iter().zip(mirrored) {
                out.extend(self.run_batch(
                    image,
                    std::slice::from_ref(c),
                    std::slice::from_ref(m),
                )?);
            }
            Ok(out)
        }
    }

    fn run_batch(
        &mut self,
        image: &ImageView,
        crops: &[RotatedRect],
        mirrored: &[bool],
    ) -> Result<Vec<Landmarks>> {
        let (size, n) = (self.size, crops.len());
        let maps: Vec<Affine> = crops
            .iter()
            .zip(mirrored)
            .map(|(crop, &flip)| {
                let map = Affine::from_rotated_rect(crop, size as f32);
                if flip {
                    // Tensor column u samples the crop's column size - u.
                    Affine {
                        a: -map.a,
                        c: -map.c,
                        tx: map.tx + map.a * size as f32,
                        ty: map.ty + map.c * size as f32,
                        ..map
                    }
                } else {
                    map
                }
            })
            .collect();
        let points = self.points;
        let family = self.family;
        let path = self.model.path.clone();
        let read = |outputs: &[super::output::Output]| match family {
            Family::Pfld => pfld::decode(outputs, n, points, size, &path),
            _ => facemesh::decode(outputs, n, points, &path),
        };
        let (coords, flags) = self.model.run_maps(image, &maps, (size, size), read)?;
        let scale = 1.0 / size as f32;
        Ok(crops
            .iter()
            .enumerate()
            .map(|(i, crop)| {
                let map = Affine::from_rotated_rect(crop, size as f32);
                let flip = mirrored[i];
                let z_scale = crop.side * scale;
                let points = coords[i * points * 3..(i + 1) * points * 3]
                    .chunks_exact(3)
                    .map(|c| {
                        let u = if flip { size as f32 - c[0] } else { c[0] };
                        let p = map.apply(Point::new(u, c[1]));
                        [p.x, p.y, c[2] * z_scale]
                    })
                    .collect();
                let logit = flags[i].clamp(-80.0, 80.0);
                Landmarks {
                    points,
                    presence: if logit.is_nan() {
                        0.0
                    } else {
                        1.0 / (1.0 + (-logit).exp())
                    },
                    crop: *crop,
                }
            })
            .collect())
    }
}
