// SPDX-License-Identifier: MPL-2.0
//! The GStreamer-free core: frame in, faces out.
//!
//! [`Engine::process`] runs a face detector, then a landmark model on a crop of every face (once
//! from the detection, then again from the landmarks themselves), then fits a 3-D reference face to
//! the landmarks to get yaw, pitch and roll.

pub mod descriptor;
pub mod detect;
pub mod error;
pub mod face;
pub mod geometry;
pub mod image;
pub mod landmark;
pub mod model;
pub mod pose;
pub mod runtime;
pub mod smooth;
pub mod track;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use detect::{DetectConfig, Detection, Detector};
pub use error::{Error, Result};
pub use face::Face;
pub use image::{ImageView, PixelFormat, Plane, YuvMatrix};
pub use landmark::{Landmarker, Landmarks};
pub use pose::{Pose, PoseMethod};
pub use runtime::{ExecutionProvider, RuntimeOptions};
pub use track::TrackConfig;

use geometry::RotatedRect;
use pose::canonical::{ReferenceFace, WFLW_TO_CANONICAL};
use pose::rigid;
use pose::seed;

/// Environment variable naming the folder of default models.
pub const MODEL_DIR_ENV: &str = "FACEPOSE_MODEL_DIR";
/// The models folder of the source tree, where `make models` builds them.
pub const BUILD_MODEL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models");
pub const DEFAULT_DETECTOR: &str = "retinaface_mbv2.onnx";
pub const DEFAULT_LANDMARKER: &str = "face_landmark.onnx";
pub const FAST_DETECTOR: &str = "blazeface_full.onnx";
pub const REFERENCE_FACE: &str = "canonical_face.txt";
/// Landmark passes after the first: each re-crops from the previous landmarks.
pub const DEFAULT_REFINE_PASSES: usize = 2;

/// The folder of default models: `FACEPOSE_MODEL_DIR`, else the build-time models folder.
pub fn default_model_dir() -> PathBuf {
    match std::env::var_os(MODEL_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(BUILD_MODEL_DIR),
    }
}

/// Everything the engine needs to start.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    pub detector_model: PathBuf,
    /// Descriptor of the detector (default: beside the model, extension `.descriptor`).
    pub detector_descriptor: Option<PathBuf>,
    pub landmark_model: PathBuf,
    pub landmark_descriptor: Option<PathBuf>,
    pub reference_face: PathBuf,
    pub runtime: RuntimeOptions,
    pub detect: DetectConfig,
    pub refine_passes: usize,
    /// Weight the rigid fit with the reference face's own per-point weights (MediaPipe's
    /// Procrustes basis, 33 points) instead of all points equally. Off by default: equal weights
    /// measured better on AFLW2000.
    pub reference_weights: bool,
    /// Average the last landmark pass with a pass on the mirrored crop (cancels the landmark
    /// model's left-right bias; one more landmark inference per face).
    pub mirror_average: bool,
    pub pose_method: PoseMethod,
}

impl EngineConfig {
    /// The default models found in `dir`.
    pub fn with_model_dir(dir: &Path) -> Self {
        Self {
            detector_model: dir.join(DEFAULT_DETECTOR),
            detector_descriptor: None,
            landmark_model: dir.join(DEFAULT_LANDMARKER),
            landmark_descriptor: None,
            reference_face: dir.join(REFERENCE_FACE),
            runtime: RuntimeOptions::default(),
            detect: DetectConfig::default(),
            refine_passes: DEFAULT_REFINE_PASSES,
            reference_weights: false,
            mirror_average: true,
            pose_method: PoseMethod::Rigid,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self::with_model_dir(&default_model_dir())
    }
}

/// Milliseconds spent in each stage of the last frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StageTimes {
    pub detect: f64,
    pub landmarks: f64,
    pub pose: f64,
}

/// Detector, landmarker and pose solver, loaded once and run per frame.
pub struct Engine {
    detector: Detector,
    landmarker: Landmarker,
    /// The landmark index each reference point corresponds to.
    indices: Vec<usize>,
    reference: Vec<[f64; 3]>,
    weights: Vec<f64>,
    /// Whether the landmarks carry depth (FaceMesh); without it the rigid fit uses x and y only.
    depth: bool,
    /// For each reference point, the index of its left-right mirror point (empty if the reference
    /// face is not symmetric enough to tell).
    mirror: Vec<usize>,
    config: EngineConfig,
    times: StageTimes,
    track_config: TrackConfig,
    tracker: track::Tracker,
    /// For each face of the last `process` call, what mirror averaging moved each landmark by
    /// (see [`MirrorCorrection`]); empty without mirror averaging.
    last_corrections: Vec<MirrorCorrection>,
}

/// What averaging with the mirrored crop moved each landmark by, in crop units (the crop's own
/// axes, one unit per model input pixel; z in the same units). Tracking frames run the plain crop
/// only and add the correction of the last frame that ran both, which keeps most of the mirror
/// pass's accuracy at half the cost.
pub type MirrorCorrection = Vec<[f32; 3]>;

impl Engine {
    /// Loads every model and the reference face.
    pub fn new(config: EngineConfig) -> Result<Engine> {
        config.detect.validate()?;
        let detector = Detector::load(
            &config.detector_model,
            config.detector_descriptor.as_deref(),
            &config.runtime,
        )?;
        let landmarker = Landmarker::load(
            &config.landmark_model,
            config.landmark_descriptor.as_deref(),
            &config.runtime,
        )?;
        let reference = ReferenceFace::load(&config.reference_face)?;
        let count = landmarker.point_count();
        let (indices, points, mut weights): (Vec<usize>, Vec<[f32; 3]>, Vec<f32>) = if reference
            .len()
            == count
        {
            (
                (0..count).collect(),
                reference.points.clone(),
                reference.weights.clone(),
            )
        } else if count == seed::POINTS && reference.len() == 468 {
            WFLW_TO_CANONICAL
                .iter()
                .map(|&(w, c)| (w, reference.points[c], 1.0))
                .fold(
                    (Vec::new(), Vec::new(), Vec::new()),
                    |mut acc, (i, p, w)| {
                        acc.0.push(i);
                        acc.1.push(p);
                        acc.2.push(w);
                        acc
                    },
                )
        } else {
            return Err(Error::Data {
                path: reference.path.clone(),
                message: format!(
                    "holds {} points, and there is no correspondence for the {count} landmarks of {} \
                     (supported: the same count, or 98 WFLW points with the 468-point canonical face)",
                    reference.len(),
                    config.landmark_model.display(),
                ),
            });
        };
        if config.pose_method == PoseMethod::SeedLinear && count != seed::POINTS {
            return Err(Error::Config(format!(
                "pose method seed-linear needs 98-point WFLW landmarks, but {} gives {count}",
                config.landmark_model.display()
            )));
        }
        if !config.reference_weights || weights.iter().filter(|w| **w > 0.0).count() < 3 {
            weights = vec![1.0; points.len()];
        }
        let mirror = if landmarker.refines() {
            mirror_pairs(&points)
        } else {
            Vec::new()
        };
        Ok(Engine {
            mirror,
            depth: landmarker.family() == descriptor::Family::FaceMesh,
            detector,
            landmarker,
            indices,
            reference: points.iter().map(|p| p.map(|v| v as f64)).collect(),
            weights: weights.iter().map(|&w| w as f64).collect(),
            config,
            times: StageTimes::default(),
            track_config: TrackConfig::default(),
            tracker: track::Tracker::default(),
            last_corrections: Vec::new(),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Detector settings take effect on the next frame.
    pub fn set_detect_config(&mut self, detect: DetectConfig) -> Result<()> {
        detect.validate()?;
        self.config.detect = detect;
        Ok(())
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    pub fn landmarker(&self) -> &Landmarker {
        &self.landmarker
    }

    /// Warnings raised while loading (execution-provider fallbacks).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = self.detector.model().warnings.clone();
        w.extend(self.landmarker.model().warnings.iter().cloned());
        w
    }

    /// The execution provider that runs the models.
    pub fn provider(&self) -> &'static str {
        self.detector.model().provider
    }

    /// Stage timings of the last processed frame.
    pub fn stage_times(&self) -> StageTimes {
        self.times
    }

    /// Faces in `image`, best detection score first.
    pub fn process(&mut self, image: &ImageView) -> Result<Vec<Face>> {
        let t0 = Instant::now();
        let detections = self.detector.detect(image, &self.config.detect)?;
        let t1 = Instant::now();
        let crops: Vec<RotatedRect> = detections
            .iter()
            .map(|d| self.landmarker.crop_from_detection(d))
            .collect();
        let (landmarks, corrections) =
            self.landmark_passes(image, crops, self.config.refine_passes, true)?;
        self.last_corrections = corrections;
        let t2 = Instant::now();
        let faces = detections
            .iter()
            .zip(landmarks)
            .enumerate()
            .map(|(i, (d, l))| Face {
                id: i as u64,
                ..self.solve(d, l)
            })
            .collect();
        let t3 = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        self.times = StageTimes {
            detect: ms(t0, t1),
            landmarks: ms(t1, t2),
            pose: ms(t2, t3),
        };
        Ok(faces)
    }

    /// Landmarks for each crop, re-cropped from the landmarks `refine_passes` times; with
    /// `mirror_average`, the last pass also runs on the mirrored crop and averages the two.
    pub fn landmarks(
        &mut self,
        image: &ImageView,
        crops: Vec<RotatedRect>,
    ) -> Result<Vec<Landmarks>> {
        Ok(self
            .landmark_passes(image, crops, self.config.refine_passes, true)?
            .0)
    }

    /// [`Engine::landmarks`] with `refine_passes` re-crops; `mirror` allows the mirror pass (when
    /// configured). Also returns the mirror corrections of the last pass (empty without it).
    fn landmark_passes(
        &mut self,
        image: &ImageView,
        crops: Vec<RotatedRect>,
        refine_passes: usize,
        mirror: bool,
    ) -> Result<(Vec<Landmarks>, Vec<MirrorCorrection>)> {
        let mut crops = crops;
        let passes = if self.landmarker.refines() {
            refine_passes + 1
        } else {
            1
        };
        for pass in 0..passes {
            let last = pass + 1 == passes;
            if last && mirror && self.mirror_enabled() {
                let (plain, mirrored) = self.landmarker.run_with_mirror(image, &crops)?;
                let size = self.landmarker.input_size() as f32;
                let mut corrections = Vec::with_capacity(plain.len());
                let averaged = plain
                    .into_iter()
                    .zip(mirrored)
                    .map(|(p, m)| {
                        let a = average_with_mirror(&p, &m, &self.mirror);
                        corrections.push(mirror_correction(&p, &a, size));
                        a
                    })
                    .collect();
                return Ok((averaged, corrections));
            }
            let result = self.landmarker.run(image, &crops)?;
            if last {
                return Ok((result, Vec::new()));
            }
            crops = result
                .iter()
                .map(|l| {
                    self.landmarker
                        .crop_from_landmarks(&l.points)
                        .unwrap_or(l.crop)
                })
                .collect();
        }
        Ok((Vec::new(), Vec::new()))
    }

    /// Whether landmark passes end with a mirror pass.
    fn mirror_enabled(&self) -> bool {
        self.config.mirror_average && self.landmarker.refines() && !self.mirror.is_empty()
    }

    /// One face's pose from its landmarks, by the configured method.
    fn solve(&self, d: &Detection, l: Landmarks) -> Face {
        let fitted = match self.config.pose_method {
            PoseMethod::SeedLinear => seed::pose(&l.points, &l.crop).map(|p| rigid::RigidFit {
                rotation: p.to_rotation(),
                scale: 0.0,
                translation: [0.0; 3],
                rms: 0.0,
            }),
            PoseMethod::Rigid => {
                let observed: Option<Vec<[f64; 3]>> = self
                    .indices
                    .iter()
                    .map(|&i| l.points.get(i).map(rigid::to_camera_frame))
                    .collect();
                observed.and_then(|observed| {
                    let f = rigid::fit(&self.reference, &observed, &self.weights)?;
                    Some(if self.depth {
                        f
                    } else {
                        rigid::refine_2d(&self.reference, &observed, &self.weights, &f, 30)
                    })
                })
            }
        };
        let (pose, rotation, scale, fit_error) = match fitted {
            Some(f) if f.pose().is_finite() => (f.pose(), f.rotation, f.scale, f.rms),
            _ => (
                Pose::default(),
                Pose::default().to_rotation(),
                0.0,
                f32::INFINITY,
            ),
        };
        Face {
            id: 0,
            bbox: d.bbox,
            score: d.score,
            keypoints: d.keypoints,
            landmarks: l.points,
            presence: l.presence,
            pose,
            rotation,
            scale,
            fit_error,
        }
    }
}

/// The crop's linear map (model input pixels → frame pixels) and its inverse.
fn crop_linear(crop: &RotatedRect, size: f32) -> (geometry::Affine, geometry::Affine) {
    let m = geometry::Affine::from_rotated_rect(crop, size);
    let det = m.a * m.d - m.b * m.c;
    let inv = geometry::Affine {
        a: m.d / det,
        b: -m.b / det,
        c: -m.c / det,
        d: m.a / det,
        tx: 0.0,
        ty: 0.0,
    };
    (
        geometry::Affine {
            tx: 0.0,
            ty: 0.0,
            ..m
        },
        inv,
    )
}

/// What averaging moved each landmark by, in crop units (see [`MirrorCorrection`]).
fn mirror_correction(plain: &Landmarks, averaged: &Landmarks, size: f32) -> MirrorCorrection {
    let (_, inv) = crop_linear(&plain.crop, size);
    let z_scale = plain.crop.side / size;
    plain
        .points
        .iter()
        .zip(&averaged.points)
        .map(|(p, a)| {
            let d = inv.apply(geometry::Point::new(a[0] - p[0], a[1] - p[1]));
            [d.x, d.y, (a[2] - p[2]) / z_scale]
        })
        .collect()
}

/// Adds a mirror correction to landmarks found on a plain crop.
fn apply_mirror_correction(l: &mut Landmarks, correction: &MirrorCorrection, size: f32) {
    if correction.len() != l.points.len() {
        return;
    }
    let (linear, _) = crop_linear(&l.crop, size);
    let z_scale = l.crop.side / size;
    for (p, c) in l.points.iter_mut().zip(correction) {
        let d = linear.apply(geometry::Point::new(c[0], c[1]));
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
fn average_with_mirror(plain: &Landmarks, mirrored: &Landmarks, pairs: &[usize]) -> Landmarks {
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
            centre: geometry::Point::new(100.0, 100.0),
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
            centre: geometry::Point::new(0.0, 0.0),
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
