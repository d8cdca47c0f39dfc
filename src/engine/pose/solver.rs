// SPDX-License-Identifier: MPL-2.0
//! One face's angles from everything the engine measured of it: the landmark fit (rigid or the
//! seed's formula), the regressor's estimate, their fusion, and the turn into the camera's frame.

use super::fusion::{Fusion, angle_between, turn};
use super::perspective::{Camera, Ray};
use super::rigid::{self, RigidFit};
use super::{Pose, PoseMethod, Rotation, mat_mul, seed};
use crate::engine::geometry::{BBox, Point, RotatedRect};

/// What the solver makes of one face. Every pose is in the camera's frame when a camera is
/// given, else relative to the face's line of sight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub pose: Pose,
    pub rotation: Rotation,
    /// The method behind `pose`.
    pub method: PoseMethod,
    pub fit_pose: Option<Pose>,
    pub regressed_pose: Option<Pose>,
    pub regressor_weight: f32,
    pub scale: f32,
    pub fit_error: f32,
}

/// A landmark fit: the rotation in the camera's frame and as seen along the face's ray.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fitted {
    pub camera: Rotation,
    pub along_ray: Rotation,
    pub scale: f32,
    pub rms: f32,
}

/// A regressor's estimate in both frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regressed {
    pub camera: Rotation,
    pub along_ray: Rotation,
}

impl Regressed {
    /// Angles read off a crop centred at (x, y).
    pub fn new(pose: Pose, camera: Option<&Camera>, x: f32, y: f32) -> Regressed {
        let along_ray = pose.to_rotation();
        Regressed {
            camera: ray_at(camera, x, y).to_camera(&along_ray),
            along_ray,
        }
    }
}

/// Tracking frames of a face turned [`HELD_TURN`] or more reuse the regressor's last estimate for
/// at most this many frames, then run it again.
pub const REGRESSOR_REFRESH_FRAMES: u32 = 5;
/// Tracking frames of a face turned between [`TRACKING_TURN`] and [`HELD_TURN`] reuse the
/// regressor's last estimate for at most this many frames (carried along by how the landmark fit
/// moved since), then run it again.
pub const SLIGHT_TURN_REFRESH_FRAMES: u32 = 10;
/// From this turn (degrees, by either estimate) the regressor has half or more of a face's
/// angles (with the default fusion), and the fit's motion carries its estimate only in part: the
/// estimate goes stale faster, and is refreshed every [`REGRESSOR_REFRESH_FRAMES`] frames. Below
/// it the fit's motion carries most of the estimate and the regressor's share is small (0.16 at
/// 20°, 0.5 at 40°). Two refresh intervals split at this turn run fewer regressor crops than
/// one short interval for all faces, for a small change of the angles, where one long interval
/// for all faces drifts much further (docs/performance.md, "Why the design is as it is").
pub const HELD_TURN: f32 = 40.0;
/// On tracking frames, faces turned less than this (degrees, by both estimates) carry their last
/// regressor estimate however old it is, or go without one: the regressor's share of their
/// angles is small (about 0.16 at 20°).
pub const TRACKING_TURN: f32 = 20.0;

/// A face whose five key points and landmark fit stay within [`STILL_SHAPE`] and [`STILL_TURN`]
/// of where they were when its estimate was measured skips the refreshes: the regressor would see
/// the same head (moved, or nearer, perhaps, which does not turn it). At most this many frames,
/// then it runs again.
pub const STILL_HOLD_FRAMES: u32 = 30;
/// How far a still face's key points may move against each other: the mean movement left once
/// the shift and the change of scale are taken out, as a share of the face's size. A tracked
/// still face's points jitter by up to 1.5 % (AFLW2000 stills as videos, profiles included).
pub const STILL_SHAPE: f32 = 0.02;
/// How far a still face's landmark fit may turn (degrees), where the fit is trusted in full; where
/// it is trusted less (turned faces: the fusion's share of the fit), further in proportion, up
/// to twice as far: a tracked still profile's fit jitters by up to 6°. (With no bound, holding
/// more profiles, the 1080p crowd video's yaw moved from 3.71° to 3.90° off the every-frame
/// angles; with the bound, 3.70°: docs/performance.md.)
pub const STILL_TURN: f32 = 4.0;

/// How far a face's key points may move against each other between two frames (as for
/// [`STILL_SHAPE`]) before it counts as another face, one a scene cut put where the face was:
/// on faces with a remembered estimate, a tracked face's points moved by more on 1 % of the
/// tracking frames of AFLW2000's stills held as videos and on 2 % of the 1080p crowd video's,
/// the next still's by more on 63 % of the cuts the tracker followed (docs/head-pose.md).
pub const JUMP_SHAPE: f32 = 0.05;
/// How far (degrees) a face's landmark fit may turn between two frames, where the fit is
/// trusted in full, before it counts as another face (see [`RegressorMemory::jumped`]).
pub const JUMP_TURN: f32 = 15.0;

/// A face as tracking frames saw it when its regressor estimate was measured: its five key
/// points, the size of its box and its landmark fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    pub keypoints: [Point; 5],
    pub size: f32,
    pub fit_camera: Rotation,
}

impl Seen {
    pub fn new(keypoints: &[Point; 5], bbox: &BBox, fit: &Fitted) -> Seen {
        Seen {
            keypoints: *keypoints,
            size: bbox.width().max(bbox.height()),
            fit_camera: fit.camera,
        }
    }

    /// Whether `now` shows the same head: the key points in the same shape, whatever the shift
    /// and the scale (within [`STILL_SHAPE`] of this face's size), and the fit turned no more
    /// than `turn_limit` degrees.
    pub fn same_as(&self, now: &Seen, turn_limit: f32) -> bool {
        shape_change(&self.keypoints, &now.keypoints, self.size)
            .is_some_and(|shape| shape <= STILL_SHAPE)
            && angle_between(&self.fit_camera, &now.fit_camera) <= turn_limit
    }
}

/// How far five key points moved against each other from `then` to `now`: their mean movement
/// once the shift and the change of scale are taken out, as a share of `size` (the face's size
/// then). `None` when either has no spread, or `size` is not positive.
pub fn shape_change(then: &[Point; 5], now: &[Point; 5], size: f32) -> Option<f32> {
    let (then, spread_then) = centred(then);
    let (now, spread_now) = centred(now);
    if !(size > 0.0 && spread_then > 0.0 && spread_now > 0.0) {
        return None;
    }
    // Now's points at the scale they had then.
    let k = spread_then / spread_now;
    let moved = then
        .iter()
        .zip(&now)
        .map(|(p, q)| (q.0 * k - p.0).hypot(q.1 * k - p.1))
        .sum::<f32>()
        / 5.0;
    Some(moved / size)
}

/// The key points less their mean, and their root-mean-square distance from it.
fn centred(k: &[Point; 5]) -> ([(f32, f32); 5], f32) {
    let (x, y) = k.iter().fold((0.0, 0.0), |a, p| (a.0 + p.x, a.1 + p.y));
    let (mx, my) = (x / 5.0, y / 5.0);
    let c = k.map(|p| (p.x - mx, p.y - my));
    let spread = (c.iter().map(|p| p.0 * p.0 + p.1 * p.1).sum::<f32>() / 5.0).sqrt();
    (c, if spread.is_finite() { spread } else { 0.0 })
}

/// A face's regressor estimate (measured, or carried since) and the landmark fit of the frame
/// it belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegressorMemory {
    pub fit_camera: Rotation,
    pub regressed: Regressed,
    /// Frames since the regressor ran.
    pub age: u32,
    /// Whether `fit_camera` came from the still-picture landmark passes (re-crops and a mirror
    /// pass) rather than from a tracking frame's single pass.
    pub still_fit: bool,
    /// The face when the estimate was measured, as a tracking frame saw it (after a still-picture
    /// measurement: the first tracking frame after it, as the still path's landmarks differ from
    /// a tracking frame's by more than a still face moves).
    pub seen: Option<Seen>,
    /// The face on the last frame (after a still-picture measurement: as the still path saw it).
    pub last: Option<Seen>,
}

impl RegressorMemory {
    /// A fresh measurement.
    /// `seen`: the face on this frame, for a tracking frame's measurement.
    pub fn measured(
        regressed: Regressed,
        fit: Option<&Fitted>,
        still_fit: bool,
        seen: Option<Seen>,
    ) -> Self {
        RegressorMemory {
            fit_camera: fit.map_or(regressed.camera, |f| f.camera),
            regressed,
            age: 0,
            still_fit,
            seen: seen.filter(|_| !still_fit),
            last: seen,
        }
    }

    /// Whether the face still looks as when the estimate was measured (`now`: as this frame
    /// sees it; `fit_trust`: the fit's share of its angles, 0..=1), for at most
    /// [`STILL_HOLD_FRAMES`] frames: then the estimate may stand in for a new one however turned
    /// the face is.
    pub fn is_still(&self, now: &Seen, fit_trust: f32) -> bool {
        let turn_limit = STILL_TURN / fit_trust.clamp(0.5, 1.0);
        self.age + 1 < STILL_HOLD_FRAMES && self.seen.is_some_and(|s| s.same_as(now, turn_limit))
    }

    /// Whether the face's fit turned further since the last frame than a head turns in a frame
    /// (`now`: as this frame sees it; `fit_trust` as for [`RegressorMemory::is_still`]): more
    /// than [`JUMP_TURN`], or further in proportion where the fit is trusted less, up to twice
    /// as far. That is a scene cut the tracker followed onto another face, whose estimate is no
    /// use here. Never just after a still-picture measurement: the still path's fit differs
    /// from a tracking frame's by as much on profiles. (A jump of the key points' shape is
    /// caught before, by the landmark pass: [`super::super::track::Track::jumped_to`].)
    /// `fit_trust` is asked only for a fit that turned more than [`JUMP_TURN`].
    pub fn jumped(&self, now: &Seen, fit_trust: impl FnOnce() -> f32) -> bool {
        let turned = match (self.still_fit, self.last) {
            (false, Some(last)) => angle_between(&last.fit_camera, &now.fit_camera),
            _ => return false,
        };
        turned > JUMP_TURN && turned > JUMP_TURN / fit_trust().clamp(0.5, 1.0)
    }

    /// Whether the estimate may still stand in for a new one on a frame whose fit is `fit`: for
    /// [`REGRESSOR_REFRESH_FRAMES`] frames on a face turned [`HELD_TURN`] or more by either
    /// estimate, [`SLIGHT_TURN_REFRESH_FRAMES`] on a less turned one.
    pub fn is_fresh(&self, fit: &Fitted) -> bool {
        let turned = turn(&self.regressed.along_ray).max(turn(&fit.along_ray)) >= HELD_TURN;
        let limit = if turned {
            REGRESSOR_REFRESH_FRAMES
        } else {
            SLIGHT_TURN_REFRESH_FRAMES
        };
        self.age + 1 < limit
    }

    /// The estimate carried to a tracking frame whose fit is `fit`: turned by the fit's motion
    /// since the last frame (`R_fit,now · R_fit,then⁻¹ · R_regressed,then`), as far as the fit is
    /// trusted (`1 −` the regressor's fusion weight: on a profile the fit's motion is as unreliable
    /// as the fit, and the estimate is held), in the camera frame and along the face's ray now.
    /// After a still-picture fit the estimate is held: the still path's fit differs from a
    /// tracking frame's by more than any motion (on profiles especially), and that difference is
    /// not the head's.
    pub fn carried(&self, fit: &Fitted, fusion: &Fusion) -> Regressed {
        let along = |camera: &Rotation| {
            // The ray's turn now: R_ray⁻¹ = R_along · R_camera⁻¹.
            mat_mul(&mat_mul(&fit.along_ray, &transpose(&fit.camera)), camera)
        };
        let held = self.regressed.camera;
        let camera = if self.still_fit {
            held
        } else {
            let motion = mat_mul(&fit.camera, &transpose(&self.fit_camera));
            let moved = mat_mul(&motion, &held);
            let trust = 1.0 - fusion.weight(&fit.along_ray, &along(&held));
            super::fusion::slerp(&held, &moved, trust)
        };
        Regressed {
            camera,
            along_ray: along(&camera),
        }
    }

    /// The memory of a tracking frame whose fit is `fit` and to which the estimate was carried.
    /// `now`: the face on this frame, kept as where the estimate was measured when none is yet.
    pub fn advanced(&self, fit: &Fitted, carried: Regressed, now: Option<Seen>) -> RegressorMemory {
        RegressorMemory {
            fit_camera: fit.camera,
            regressed: carried,
            age: self.age + 1,
            still_fit: false,
            seen: self.seen.or(now),
            last: now,
        }
    }
}

fn transpose(r: &Rotation) -> Rotation {
    std::array::from_fn(|i| std::array::from_fn(|j| r[j][i]))
}

fn ray_at(camera: Option<&Camera>, x: f32, y: f32) -> Ray {
    match camera {
        Some(c) if x.is_finite() && y.is_finite() => c.ray_rotation(x, y),
        _ => Ray::IDENTITY,
    }
}

/// The reference face and how to fit it.
#[derive(Debug, Clone)]
pub struct Solver {
    /// The landmark index each reference point corresponds to.
    pub indices: Vec<usize>,
    pub reference: Vec<[f64; 3]>,
    pub weights: Vec<f64>,
    /// Whether the landmarks carry depth (FaceMesh); without it the fit uses x and y only.
    pub depth: bool,
    pub method: PoseMethod,
    pub fusion: Fusion,
}

impl Solver {
    /// The landmark fit of one face, `None` when it fails (too few usable points) or the method
    /// does not use landmarks.
    pub fn fit(
        &self,
        points: &[[f32; 3]],
        crop: &RotatedRect,
        camera: Option<&Camera>,
    ) -> Option<Fitted> {
        if !self.method.uses_landmarks() || points.is_empty() {
            return None;
        }
        let n = points.len() as f32;
        let (mx, my) = points
            .iter()
            .fold((0.0, 0.0), |a, p| (a.0 + p[0] / n, a.1 + p[1] / n));
        let ray = ray_at(camera, mx, my);
        let fitted = if self.method == PoseMethod::SeedLinear {
            // The formula reads crop pixels: it keeps the frame's own points.
            seed::pose(points, crop).map(|p| RigidFit {
                rotation: p.to_rotation(),
                scale: 0.0,
                translation: [0.0; 3],
                rms: 0.0,
            })
        } else {
            let rectified;
            let seen = match camera {
                Some(c) if ray != Ray::IDENTITY => {
                    rectified = c.rectify(&ray, points);
                    &rectified[..]
                }
                _ => points,
            };
            let observed: Option<Vec<[f64; 3]>> = self
                .indices
                .iter()
                .map(|&i| seen.get(i).map(rigid::to_camera_frame))
                .collect();
            observed.and_then(|observed| {
                let f = rigid::fit(&self.reference, &observed, &self.weights)?;
                Some(if self.depth {
                    f
                } else {
                    rigid::refine_2d(&self.reference, &observed, &self.weights, &f, 30)
                })
            })
        }?;
        let camera_rotation = ray.to_camera(&fitted.rotation);
        Pose::from_rotation(&camera_rotation)
            .is_finite()
            .then_some(Fitted {
                camera: camera_rotation,
                along_ray: fitted.rotation,
                scale: fitted.scale,
                rms: fitted.rms,
            })
    }

    /// Whether a tracking frame needs a fresh regressor estimate for a face whose fit is `fit`
    /// and whose remembered estimate, carried to this frame, is `regressed` (either may be
    /// missing): always for `regression`; when fusing, only for faces turned
    /// [`TRACKING_TURN`] or more by either estimate, since the regressor's share of a nearly
    /// frontal face is small.
    pub fn wants_regressor(&self, fit: Option<&Fitted>, regressed: Option<&Regressed>) -> bool {
        match self.method {
            PoseMethod::Regression => true,
            PoseMethod::Fused => match fit {
                Some(f) => {
                    let t = regressed.map_or(0.0, |r| turn(&r.along_ray));
                    turn(&f.along_ray).max(t) >= TRACKING_TURN
                }
                None => true,
            },
            PoseMethod::Rigid | PoseMethod::SeedLinear => false,
        }
    }

    /// The face's angles from its fit and regressor estimate, by the configured method. A
    /// method whose estimate is missing falls back to the other one (and says so), except when
    /// fusing skipped the regressor because the face did not need it (`skipped`); with neither
    /// estimate, the angles are 0 and `fit_error` is infinite.
    pub fn combine(
        &self,
        fit: Option<Fitted>,
        regressed: Option<Regressed>,
        skipped: bool,
    ) -> Estimate {
        let fit_pose = fit.map(|f| Pose::from_rotation(&f.camera));
        let regressed_pose = regressed.map(|r| Pose::from_rotation(&r.camera));
        let (scale, fit_error) = fit.map_or((0.0, f32::INFINITY), |f| (f.scale, f.rms));
        let (rotation, method, weight) = match (self.method, fit, regressed) {
            (PoseMethod::Fused, Some(f), Some(r)) => {
                let w = self.fusion.weight(&f.along_ray, &r.along_ray);
                (
                    super::fusion::slerp(&f.camera, &r.camera, w),
                    PoseMethod::Fused,
                    w,
                )
            }
            (PoseMethod::Fused | PoseMethod::Regression, _, Some(r)) => {
                (r.camera, PoseMethod::Regression, 1.0)
            }
            (PoseMethod::Fused, Some(f), None) if skipped => (f.camera, PoseMethod::Fused, 0.0),
            (PoseMethod::Fused | PoseMethod::Regression, Some(f), None) => {
                (f.camera, PoseMethod::Rigid, 0.0)
            }
            (m @ (PoseMethod::Rigid | PoseMethod::SeedLinear), Some(f), _) => (f.camera, m, 0.0),
            (m, _, _) => (Pose::default().to_rotation(), m, 0.0),
        };
        Estimate {
            pose: Pose::from_rotation(&rotation),
            rotation,
            method,
            fit_pose,
            regressed_pose,
            regressor_weight: weight,
            scale,
            fit_error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pose::fusion::DEFAULT_FUSION;

    fn solver(method: PoseMethod) -> Solver {
        Solver {
            indices: vec![],
            reference: vec![],
            weights: vec![],
            depth: true,
            method,
            fusion: DEFAULT_FUSION,
        }
    }

    /// A regressor estimate of `yaw` for a face on the optical axis.
    fn regressed(yaw: f32) -> Regressed {
        Regressed::new(
            Pose {
                yaw,
                ..Default::default()
            },
            None,
            0.0,
            0.0,
        )
    }

    fn fitted(yaw: f32) -> Fitted {
        let r = Pose {
            yaw,
            ..Default::default()
        }
        .to_rotation();
        Fitted {
            camera: r,
            along_ray: r,
            scale: 1.0,
            rms: 0.5,
        }
    }

    #[test]
    fn each_method_reports_what_produced_its_angles() {
        let reg = regressed(80.0);
        let fused = solver(PoseMethod::Fused).combine(Some(fitted(50.0)), Some(reg), false);
        assert_eq!(fused.method, PoseMethod::Fused);
        assert!(
            fused.regressor_weight > 0.5 && fused.pose.yaw > 65.0,
            "{fused:?}"
        );
        assert_eq!(fused.fit_pose.unwrap().yaw.round(), 50.0);
        assert_eq!(fused.regressed_pose.unwrap().yaw.round(), 80.0);
        // A frontal face keeps (almost only) the fit.
        let near = regressed(6.0);
        let frontal = solver(PoseMethod::Fused).combine(Some(fitted(3.0)), Some(near), false);
        assert!(frontal.regressor_weight < 0.02);
        assert!((frontal.pose.yaw - 3.0).abs() < 0.1);
        // No usable regressor output: the fit, said so.
        let lone = solver(PoseMethod::Fused).combine(Some(fitted(40.0)), None, false);
        assert_eq!(
            (lone.method, lone.regressed_pose),
            (PoseMethod::Rigid, None)
        );
        // Not needed (a frontal face on a tracking frame): still fused, with no regressor share.
        let skipped = solver(PoseMethod::Fused).combine(Some(fitted(4.0)), None, true);
        assert_eq!(
            (skipped.method, skipped.regressor_weight),
            (PoseMethod::Fused, 0.0)
        );
        let reg_only = solver(PoseMethod::Regression).combine(None, Some(reg), false);
        assert_eq!(reg_only.method, PoseMethod::Regression);
        assert_eq!(reg_only.regressor_weight, 1.0);
        let nothing = solver(PoseMethod::Rigid).combine(None, None, false);
        assert!(nothing.pose.is_finite() && nothing.fit_error.is_infinite());
    }

    #[test]
    fn a_slightly_turned_face_keeps_its_estimate_longer_than_a_turned_one() {
        let age = |m: RegressorMemory, frames: u32, fit: &Fitted| {
            (0..frames).fold(m, |m, _| m.advanced(fit, m.regressed, None))
        };
        // 30° by both estimates: stale after SLIGHT_TURN_REFRESH_FRAMES frames.
        let slight = RegressorMemory::measured(regressed(30.0), Some(&fitted(25.0)), false, None);
        let fit = fitted(28.0);
        assert!(age(slight, REGRESSOR_REFRESH_FRAMES - 1, &fit).is_fresh(&fit));
        assert!(age(slight, SLIGHT_TURN_REFRESH_FRAMES - 2, &fit).is_fresh(&fit));
        assert!(!age(slight, SLIGHT_TURN_REFRESH_FRAMES - 1, &fit).is_fresh(&fit));
        // Turned HELD_TURN or more by either estimate: stale after REGRESSOR_REFRESH_FRAMES.
        let turned_fit = fitted(HELD_TURN + 1.0);
        assert!(age(slight, REGRESSOR_REFRESH_FRAMES - 2, &turned_fit).is_fresh(&turned_fit));
        assert!(!age(slight, REGRESSOR_REFRESH_FRAMES - 1, &turned_fit).is_fresh(&turned_fit));
        let profile = RegressorMemory::measured(regressed(70.0), Some(&fitted(45.0)), false, None);
        assert!(!age(profile, REGRESSOR_REFRESH_FRAMES - 1, &fit).is_fresh(&fit));
    }

    #[test]
    fn a_remembered_estimate_follows_the_fit() {
        let then = fitted(30.0);
        let reg = regressed(70.0);
        let memory = RegressorMemory::measured(reg, Some(&then), false, None);
        // The fit turned 10° further: so does the remembered estimate.
        let now = fitted(40.0);
        let all_fit = Fusion {
            start: 170.0,
            full: 180.0,
        };
        let carried = memory.carried(&now, &all_fit);
        let p = Pose::from_rotation(&carried.camera);
        assert!((p.yaw - 80.0).abs() < 1e-3 && p.pitch.abs() < 1e-3, "{p:?}");
        // With the default fusion a profile holds its estimate (the fit's motion is not
        // trusted), and a face turned 30° follows most of its fit's motion.
        let profile = Pose::from_rotation(&memory.carried(&now, &DEFAULT_FUSION).camera);
        assert!(profile.yaw > 70.0 && profile.yaw < 71.0, "{profile:?}");
        let reg30 = regressed(30.0);
        let moderate = RegressorMemory::measured(reg30, Some(&fitted(20.0)), false, None);
        let p = Pose::from_rotation(&moderate.carried(&fitted(30.0), &DEFAULT_FUSION).camera);
        assert!(p.yaw > 35.0 && p.yaw < 39.0, "{p:?}");
        assert!(memory.is_fresh(&now));
        // Step by step it goes the same way, and grows old.
        let next = memory.advanced(&now, carried, None);
        let p = Pose::from_rotation(&next.carried(&fitted(45.0), &all_fit).camera);
        assert!((p.yaw - 85.0).abs() < 1e-3, "{p:?}");
        let old =
            (0..REGRESSOR_REFRESH_FRAMES - 1).fold(memory, |m, _| m.advanced(&now, carried, None));
        assert!(!old.is_fresh(&now));
        // After the still-picture path the estimate is held: the change of fit is not motion.
        let still = RegressorMemory::measured(reg, Some(&then), true, None);
        let p = Pose::from_rotation(&still.carried(&now, &all_fit).camera);
        assert!((p.yaw - 70.0).abs() < 1e-3, "{p:?}");
    }

    #[test]
    fn the_regressor_is_wanted_only_for_turned_faces_when_fusing() {
        let s = solver(PoseMethod::Fused);
        assert!(!s.wants_regressor(Some(&fitted(5.0)), None));
        assert!(s.wants_regressor(Some(&fitted(45.0)), None));
        // A remembered estimate that says the face is turned counts too.
        let turned = regressed(60.0);
        assert!(s.wants_regressor(Some(&fitted(15.0)), Some(&turned)));
        assert!(s.wants_regressor(None, None));
        assert!(solver(PoseMethod::Regression).wants_regressor(Some(&fitted(0.0)), None));
        assert!(!solver(PoseMethod::Rigid).wants_regressor(Some(&fitted(80.0)), None));
    }

    /// A face seen with its key points at `keypoints` (a 100-pixel face) and fit `fit`.
    fn seen_at(keypoints: [(f32, f32); 5], size: f32, fit: &Fitted) -> Seen {
        let k = keypoints.map(|(x, y)| Point::new(x, y));
        Seen::new(&k, &BBox::new(0.0, 0.0, size, size), fit)
    }

    const FACE: [(f32, f32); 5] = [
        (30.0, 40.0),
        (70.0, 40.0),
        (50.0, 60.0),
        (35.0, 80.0),
        (65.0, 80.0),
    ];

    #[test]
    fn a_still_face_keeps_its_estimate_and_a_moving_one_does_not() {
        let fit = fitted(60.0);
        let then = seen_at(FACE, 100.0, &fit);
        let memory = RegressorMemory::measured(regressed(70.0), Some(&fit), false, Some(then));
        let aged =
            (0..REGRESSOR_REFRESH_FRAMES).fold(memory, |m, _| m.advanced(&fit, m.regressed, None));
        // Stale by age (a profile), but the same head: held.
        assert!(!aged.is_fresh(&fit));
        assert!(aged.is_still(&then, 1.0));
        // The whole face shifted by 20 pixels and the fit jittered by a degree: still the same.
        let shifted = FACE.map(|(x, y)| (x + 20.0, y - 5.0));
        assert!(aged.is_still(&seen_at(shifted, 100.5, &fitted(61.0)), 1.0));
        // The nose moved against the eyes (a turn the fit missed): not still.
        let mut turned = FACE;
        turned[2].0 += 12.0;
        assert!(!aged.is_still(&seen_at(turned, 100.0, &fit), 1.0));
        // Nearer the camera (the points spread as the face grew): still the same.
        let nearer = FACE.map(|(x, y)| (x * 1.2, y * 1.2));
        assert!(aged.is_still(&seen_at(nearer, 120.0, &fit), 1.0));
        // The fit turned: not still.
        let turned_fit = seen_at(FACE, 100.0, &fitted(60.0 + 2.0 * STILL_TURN));
        assert!(!aged.is_still(&turned_fit, 1.0));
        // Unless the fit is trusted little (a profile, whose fit jitters): then only further.
        assert!(aged.is_still(&turned_fit, 0.25));
        assert!(!aged.is_still(
            &seen_at(FACE, 100.0, &fitted(60.0 + 5.0 * STILL_TURN)),
            0.25
        ));
        // However still, it runs again after STILL_HOLD_FRAMES.
        let old = (0..STILL_HOLD_FRAMES).fold(memory, |m, _| m.advanced(&fit, m.regressed, None));
        assert!(!old.is_still(&then, 1.0));
    }

    #[test]
    fn after_a_still_picture_measurement_the_first_tracking_frame_is_the_reference() {
        let fit = fitted(50.0);
        let still_seen = seen_at(FACE, 100.0, &fit);
        // The still path's landmarks are not a tracking frame's: no reference yet.
        let memory = RegressorMemory::measured(regressed(55.0), Some(&fit), true, Some(still_seen));
        assert!(memory.seen.is_none() && !memory.is_still(&still_seen, 1.0));
        let moved = FACE.map(|(x, y)| (x * 1.05, y));
        let first = seen_at(moved, 100.0, &fitted(52.0));
        let next = memory.advanced(&fitted(52.0), memory.regressed, Some(first));
        assert_eq!(next.seen, Some(first));
        assert!(next.is_still(&first, 1.0));
        // A later frame does not move the reference.
        let later = next.advanced(&fit, next.regressed, Some(still_seen));
        assert_eq!(later.seen, Some(first));
    }

    #[test]
    fn a_fit_that_turns_further_than_a_head_in_a_frame_is_another_face() {
        let fit = fitted(40.0);
        let then = seen_at(FACE, 100.0, &fit);
        let memory = RegressorMemory::measured(regressed(45.0), Some(&fit), false, Some(then));
        assert_eq!(memory.last, Some(then));
        // The comparison is with the last frame, not with the measurement: a steady turn,
        // frame after frame, never jumps.
        let mut m = memory;
        for k in 1..=6 {
            let f = fitted(40.0 + k as f32 * 0.5 * JUMP_TURN);
            let now = seen_at(FACE.map(|(x, y)| (x + k as f32, y)), 100.0, &f);
            assert!(!m.jumped(&now, || 1.0), "frame {k}");
            m = m.advanced(&f, m.regressed, Some(now));
            assert_eq!(m.last, Some(now));
        }
        // Turned further than a head turns in a frame.
        let far = seen_at(FACE, 100.0, &fitted(40.0 + 1.5 * JUMP_TURN));
        assert!(memory.jumped(&far, || 1.0));
        // Unless the fit is trusted little (a profile): then only twice as far.
        assert!(!memory.jumped(&far, || 0.25));
        assert!(memory.jumped(
            &seen_at(FACE, 100.0, &fitted(40.0 + 2.5 * JUMP_TURN)),
            || 0.25
        ));
        // Never against the still path's fit.
        let still = RegressorMemory::measured(regressed(45.0), Some(&fit), true, Some(then));
        assert!(!still.jumped(&far, || 1.0));
    }

    #[test]
    fn the_shape_change_leaves_out_shift_and_scale() {
        let k = |p: [(f32, f32); 5]| p.map(|(x, y)| Point::new(x, y));
        let face = k(FACE);
        let moved = k(FACE.map(|(x, y)| (1.3 * x + 40.0, 1.3 * y - 10.0)));
        assert!(shape_change(&face, &moved, 100.0).unwrap() < 1e-5);
        // Another face: turned away, its eyes closer together and the nose out.
        let other = k([
            (45.0, 40.0),
            (70.0, 40.0),
            (80.0, 62.0),
            (50.0, 82.0),
            (68.0, 82.0),
        ]);
        let change = shape_change(&face, &other, 100.0).unwrap();
        assert!(change > JUMP_SHAPE, "{change}");
        // The same movement on a face twice the size is half the share.
        assert!((shape_change(&face, &other, 200.0).unwrap() - 0.5 * change).abs() < 1e-5);
        let point = k([(50.0, 50.0); 5]);
        assert_eq!(shape_change(&face, &point, 100.0), None);
        assert_eq!(shape_change(&face, &face, 0.0), None);
    }
}
