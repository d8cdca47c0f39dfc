// SPDX-License-Identifier: MPL-2.0
//! The pose step of the engine: each face's landmark fit, the head-pose regressor where the
//! method needs it (one batch per frame, on tracking frames only for turned faces whose
//! remembered estimate is old), and the combination into the reported angles.

use super::detect::Detection;
use super::face::Face;
use super::headpose;
use super::image::ImageView;
use super::landmark::Landmarks;
use super::pose::fusion::turn;
use super::pose::perspective::Camera;
use super::pose::solver::{Estimate, Fitted, Regressed, RegressorMemory, Seen, TRACKING_TURN};
use super::track::landmark_keypoints;
use super::{Engine, Result};

/// What the pose step knows of the faces it solves.
#[derive(Debug, Clone, Copy)]
pub(super) enum Past<'a> {
    /// A still picture: the regressor on every face, and on the mirrored crop too for turned
    /// faces (the two estimates averaged).
    Still,
    /// Faces new to a stream (found by an in-line detection, or on its first frame), with
    /// landmarks from the still-picture passes: the regressor on every face, without the mirrored
    /// crop, as the refreshes that follow run it: the mirrored crop doubled the first frame's
    /// regressor work and made the angles no better (docs/performance.md, "Why the design is as
    /// it is").
    New,
    /// Tracked faces with their remembered regressor estimates (see [`Engine::solve`]).
    Tracked(&'a [Option<RegressorMemory>]),
}

impl Engine {
    /// The faces of `detections` with their `landmarks`: the landmark fit of each, the regressor
    /// (in one batch) where the method needs it, and their combination; ids are 0.
    ///
    /// With [`Past::Tracked`], each face's remembered regressor estimate: a fresh one (or any
    /// one, for a nearly frontal face) is carried along by the fit instead of running the
    /// regressor, and a nearly frontal face without one skips it (see
    /// [`super::pose::solver::Solver::wants_regressor`]). Otherwise the regressor runs on every
    /// face. Returns each face's new memory too.
    pub(super) fn solve(
        &mut self,
        image: &ImageView,
        detections: &[Detection],
        landmarks: Vec<Landmarks>,
        past: Past,
    ) -> Result<(Vec<Face>, Vec<Option<RegressorMemory>>)> {
        let camera = Camera::from_fov(image.width(), image.height(), self.config.camera_fov);
        let fits: Vec<_> = landmarks
            .iter()
            .map(|l| self.solver.fit(&l.points, &l.crop, camera.as_ref()))
            .collect();
        let n = detections.len();
        let mut regressed: Vec<Option<Regressed>> = vec![None; n];
        let mut memories: Vec<Option<RegressorMemory>> = vec![None; n];
        let mut to_run = Vec::new();
        let tracked = matches!(past, Past::Tracked(_));
        if self.regressor.is_some() {
            for i in 0..n {
                let remembered = match past {
                    Past::Tracked(m) => m.get(i).copied().flatten(),
                    Past::Still | Past::New => None,
                };
                match (remembered, &fits[i]) {
                    (Some(m), Some(fit)) => {
                        let carried = m.carried(fit, &self.solver.fusion);
                        let now = seen(&detections[i], &landmarks[i], fit);
                        // The fit's share of the angles (see RegressorMemory::is_still),
                        // worked out only where a rule needs it.
                        let fusion = &self.solver.fusion;
                        let trust = || 1.0 - fusion.weight(&fit.along_ray, &carried.along_ray);
                        let jumped = now.is_some_and(|now| m.jumped(&now, trust));
                        if jumped {
                            // Another face: as if none were remembered.
                            if self.solver.wants_regressor(Some(fit), None) {
                                to_run.push(i);
                            }
                        } else if m.is_fresh(fit)
                            || now.is_some_and(|now| m.is_still(&now, trust()))
                            || !self.solver.wants_regressor(Some(fit), Some(&carried))
                        {
                            regressed[i] = Some(carried);
                            memories[i] = Some(m.advanced(fit, carried, now));
                        } else {
                            to_run.push(i);
                        }
                    }
                    _ if !tracked || self.solver.wants_regressor(fits[i].as_ref(), None) => {
                        to_run.push(i)
                    }
                    _ => {}
                }
            }
        }
        let mut unusable = false;
        if let (Some(regressor), false) = (self.regressor.as_mut(), to_run.is_empty()) {
            // Only still pictures run the mirrored crop (see [`Past`]): in a stream the estimates
            // are refreshed and fused with carried ones anyway, and it would double their cost.
            let mirror = self.config.pose_mirror_average && matches!(past, Past::Still);
            let inputs: Vec<_> = to_run
                .iter()
                .map(|&i| {
                    let turned = fits[i].is_none_or(|f| turn(&f.along_ray) >= TRACKING_TURN);
                    (
                        detections[i].bbox,
                        &landmarks[i].points[..],
                        mirror && turned,
                    )
                })
                .collect();
            self.regressor_crops += inputs.iter().map(|f| 1 + f.2 as u64).sum::<u64>();
            let poses = regressor.run(image, &inputs)?;
            for (&i, pose) in to_run.iter().zip(poses) {
                let Some(pose) = pose else {
                    unusable = true;
                    continue;
                };
                let centre = regressor
                    .crop_rule()
                    .region(&detections[i].bbox, &landmarks[i].points)
                    .centre();
                let r = Regressed::new(pose, camera.as_ref(), centre.x, centre.y);
                regressed[i] = Some(r);
                let now = fits[i]
                    .as_ref()
                    .and_then(|fit| seen(&detections[i], &landmarks[i], fit));
                memories[i] = Some(RegressorMemory::measured(
                    r,
                    fits[i].as_ref(),
                    !tracked,
                    now,
                ));
            }
        }
        if unusable && !self.warned_unusable_regression {
            self.warned_unusable_regression = true;
            let name = self.regressor.as_ref().map(|r| r.model().name());
            self.pending_warnings.push(format!(
                "head-pose model {} gave an unusable output (NaN, or beyond ±{} degrees) for a \
                 face; such faces keep their landmark-fit angles",
                name.unwrap_or_default(),
                headpose::ANGLE_LIMIT
            ));
        }
        let faces = detections
            .iter()
            .zip(landmarks)
            .enumerate()
            .map(|(i, (d, l))| {
                let skipped = regressed[i].is_none() && !to_run.contains(&i);
                let e = self.solver.combine(fits[i], regressed[i], skipped);
                face(d, l, e)
            })
            .collect();
        Ok((faces, memories))
    }

    /// Forgets the regressor estimates of tracks that are gone.
    pub(super) fn prune_regressor_memory(&mut self) {
        let tracker = &self.tracker;
        self.regressor_memory
            .retain(|id, _| tracker.position(*id).is_some());
    }
}

/// The face as this frame shows it, for telling whether it moved since its regressor ran:
/// `None` for a landmark model whose points do not give the five key points.
fn seen(d: &Detection, l: &Landmarks, fit: &Fitted) -> Option<Seen> {
    landmark_keypoints(&l.points).map(|k| Seen::new(&k, &d.bbox, fit))
}

/// A face from its detection, landmarks and angles.
fn face(d: &Detection, l: Landmarks, e: Estimate) -> Face {
    Face {
        id: 0,
        bbox: d.bbox,
        score: d.score,
        keypoints: d.keypoints,
        landmarks: l.points,
        presence: l.presence,
        pose: e.pose,
        rotation: e.rotation,
        method: e.method,
        fit_pose: e.fit_pose,
        regressed_pose: e.regressed_pose,
        regressor_weight: e.regressor_weight,
        scale: e.scale,
        fit_error: e.fit_error,
        attention: None,
    }
}
