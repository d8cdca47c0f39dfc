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

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use detect::{DetectConfig, Detection, Detector};
pub use error::{Error, Result};
pub use face::Face;
pub use image::{ImageView, PixelFormat, Plane, YuvMatrix};
pub use landmark::{Landmarker, Landmarks};
pub use pose::Pose;
pub use runtime::{ExecutionProvider, RuntimeOptions};

use geometry::RotatedRect;
use pose::canonical::ReferenceFace;
use pose::rigid;

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
    reference: Vec<[f64; 3]>,
    weights: Vec<f64>,
    config: EngineConfig,
    times: StageTimes,
}

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
        if reference.len() != landmarker.point_count() {
            return Err(Error::Data {
                path: reference.path.clone(),
                message: format!(
                    "holds {} points but the landmark model {} gives {}",
                    reference.len(),
                    config.landmark_model.display(),
                    landmarker.point_count()
                ),
            });
        }
        let mut weights: Vec<f64> = reference.weights.iter().map(|&w| w as f64).collect();
        if !config.reference_weights || weights.iter().filter(|w| **w > 0.0).count() < 3 {
            weights = vec![1.0; reference.len()];
        }
        Ok(Engine {
            detector,
            landmarker,
            reference: reference
                .points
                .iter()
                .map(|p| p.map(|v| v as f64))
                .collect(),
            weights,
            config,
            times: StageTimes::default(),
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
        let landmarks = self.landmarks(image, crops)?;
        let t2 = Instant::now();
        let faces = detections
            .iter()
            .zip(landmarks)
            .map(|(d, l)| self.solve(d, l))
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

    /// Landmarks for each crop, re-cropped from the landmarks `refine_passes` times.
    pub fn landmarks(
        &mut self,
        image: &ImageView,
        crops: Vec<RotatedRect>,
    ) -> Result<Vec<Landmarks>> {
        let mut result = self.landmarker.run(image, &crops)?;
        for _ in 0..self.config.refine_passes {
            let next: Vec<RotatedRect> = result
                .iter()
                .map(|l| {
                    self.landmarker
                        .crop_from_landmarks(&l.points)
                        .unwrap_or(l.crop)
                })
                .collect();
            result = self.landmarker.run(image, &next)?;
        }
        Ok(result)
    }

    /// Fits the reference face to one face's landmarks.
    fn solve(&self, d: &Detection, l: Landmarks) -> Face {
        let observed: Vec<[f64; 3]> = l.points.iter().map(rigid::to_camera_frame).collect();
        let fitted = rigid::fit(&self.reference, &observed, &self.weights);
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
