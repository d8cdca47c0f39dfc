// SPDX-License-Identifier: MPL-2.0
//! The GStreamer-free core: frame in, faces out.
//!
//! [`Engine::process`] runs a face detector, then a landmark model on a crop of every face (once
//! from the detection, then again from the landmarks themselves), then fits a 3-D reference face to
//! the landmarks to get yaw, pitch and roll.
//!
//! [`Engine::track`] does the same for the frames of a video stream, with stable face ids: the
//! per-frame flow is in [`stream`], the tracks and their policy (detection schedule, matching,
//! dropping, smoothing) in [`track`]. Mirror averaging of the landmark passes is in [`mirror`].

pub mod attention;
pub mod descriptor;
pub mod detect;
pub mod error;
mod estimate;
pub mod face;
pub mod geometry;
pub mod headpose;
pub mod image;
pub mod landmark;
pub mod locate;
pub mod lookahead;
pub mod mirror;
pub mod model;
pub mod output;
pub mod pipeline;
pub mod pose;
pub mod preprocess;
pub mod runtime;
pub mod smooth;
pub mod stream;
pub mod track;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use detect::{DetectConfig, Detection, Detector};
pub use error::{Error, Result};
pub use face::Face;
pub use image::{ImageView, PixelFormat, Plane, YuvMatrix};
pub use landmark::{Landmarker, Landmarks};
pub use mirror::{MirrorCorrection, mirror_pairs};
pub use pose::{Pose, PoseMethod};
pub use preprocess::Preprocess;
pub use runtime::{ExecutionProvider, RuntimeOptions};
pub use track::TrackConfig;

use std::collections::HashMap;

use detect::background::{BackgroundDetector, DetectorSource};
use geometry::RotatedRect;
use headpose::Regressor;
use mirror::{average_with_mirror, mirror_correction};
use pose::canonical::{ReferenceFace, WFLW_TO_CANONICAL};
use pose::fusion::DEFAULT_FUSION;

use pose::perspective::CAMERA_FOV_MAX;
use pose::seed;
use pose::solver::{RegressorMemory, Solver};
use track::{TrackSnapshot, Tracker};

/// Environment variable naming the folder of default models.
pub const MODEL_DIR_ENV: &str = "FACEPOSE_MODEL_DIR";
/// The models folder of the source tree, where `make models` builds them (the last fallback of
/// [`locate::model_dirs`], used while it exists).
pub const BUILD_MODEL_DIR: &str = locate::SOURCE_MODEL_DIR;
pub const DEFAULT_DETECTOR: &str = "retinaface_mbv2.onnx";
pub const DEFAULT_LANDMARKER: &str = "face_landmark.onnx";
pub const FAST_DETECTOR: &str = "blazeface_full.onnx";
pub const REFERENCE_FACE: &str = "canonical_face.txt";
/// Landmark passes after the first: each re-crops from the previous landmarks.
pub const DEFAULT_REFINE_PASSES: usize = 2;

/// The folder of default models: `FACEPOSE_MODEL_DIR`, else the installed plugin's data folder
/// (see [`locate`]), else the source tree's models folder.
pub fn default_model_dir() -> PathBuf {
    locate::model_dir()
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
    /// Head-pose regressor (`None`: angles from the landmarks alone).
    pub pose_model: Option<PathBuf>,
    pub pose_descriptor: Option<PathBuf>,
    /// Average the regressor's estimate with its estimate on the mirrored crop (one more run per
    /// face, in the same batch) for faces turned [`pose::solver::TRACKING_TURN`] or more by the
    /// landmark fit (or without one): nearly frontal faces, where the fit dominates, skip it, and
    /// so do the regressor's refreshes on tracking frames.
    pub pose_mirror_average: bool,
    /// Horizontal field of view of the camera in degrees, to give angles in the camera's frame
    /// (0: relative to each face's line of sight; see [`pose::perspective`]).
    pub camera_fov: f32,
    /// Where the detector runs while tracking (a detection interval other than 1): see
    /// [`DetectionMode`].
    pub detection_mode: DetectionMode,
}

/// Where the detector runs while tracking (a detection interval other than 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectionMode {
    /// Detection frames wait for the detector, on the streaming thread ([`Engine::track`]).
    InLine,
    /// The detector runs on a thread of its own on a copy of the frame where it was due, and
    /// its new faces join later, brought forward by their landmarks ([`Engine::track`]). With
    /// `bound` N, a frame N frames after the one the detector started on waits for it, so that
    /// no face stays unreported longer because the detector is busy; without one, frames never
    /// wait and what joins, and when, depends on how fast frames arrive.
    Background { bound: Option<u32> },
    /// The caller holds [`pipeline::PIPELINE_DEPTH`] frames: the detector works on a frame on a
    /// thread of its own from its arrival ([`Engine::schedule`]), and the frame is finished with
    /// its detections later ([`Engine::track_scheduled`]); the same faces at any speed.
    /// [`Engine::track`] runs this mode in line.
    Pipelined,
}

impl std::fmt::Display for DetectionMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DetectionMode::InLine => f.write_str("in line"),
            DetectionMode::Background { bound: None } => f.write_str("background"),
            DetectionMode::Background { bound: Some(n) } => {
                write!(f, "background with a {n}-frame bound")
            }
            DetectionMode::Pipelined => f.write_str("pipelined"),
        }
    }
}

impl DetectionMode {
    /// Whether the mode uses the detection thread.
    pub fn uses_thread(self) -> bool {
        !matches!(self, DetectionMode::InLine)
    }
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
            pose_method: PoseMethod::Fused,
            pose_model: Some(dir.join(headpose::DEFAULT_POSE_MODEL)),
            pose_descriptor: None,
            pose_mirror_average: true,
            camera_fov: pose::perspective::DEFAULT_CAMERA_FOV,
            detection_mode: DetectionMode::Pipelined,
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
    /// The detection thread, started on the first background detection.
    background: Option<BackgroundDetector>,
    /// The detection thread of detection one frame ahead (see [`ahead`]), started by its first
    /// frame.
    ahead: Option<BackgroundDetector>,
    /// Whether the landmark model and the regressor run with the threads of the streaming side
    /// of detection one frame ahead.
    ahead_threads: bool,
    /// The visible tracks when the background detection in flight was started.
    background_snapshot: Option<Vec<TrackSnapshot>>,
    /// Moves on with every reset of the stream; background results of older generations are
    /// dropped.
    generation: u64,
    landmarker: Landmarker,
    /// Head-pose regressor (when one is configured and the method uses it).
    regressor: Option<Regressor>,
    solver: Solver,
    /// For each reference point, the index of its left-right mirror point (empty if the reference
    /// face is not symmetric enough to tell).
    mirror: Vec<usize>,
    config: EngineConfig,
    times: StageTimes,
    track_config: TrackConfig,
    tracker: Tracker,
    /// For each face of the last `process` call, what mirror averaging moved each landmark by
    /// (see [`MirrorCorrection`]); empty without mirror averaging.
    last_corrections: Vec<MirrorCorrection>,
    /// Each track's last regressor estimate, by track id (see [`RegressorMemory`]).
    regressor_memory: HashMap<u64, RegressorMemory>,
    /// Where the detector runs while tracking, for this stream (see [`Engine::set_detection_mode`]).
    detection_mode: DetectionMode,
    /// Frames since the background detection in flight started.
    background_age: u32,
    /// The pipelined schedule (see [`pipeline`]).
    pipeline: pipeline::Schedule,
    /// Warnings raised while processing, not yet taken by [`Engine::take_warnings`].
    pending_warnings: Vec<String>,
    warned_unusable_regression: bool,
    /// Crops the regressor has run on (mirrored ones included) since the engine started.
    regressor_crops: u64,
}

/// The runtime options of the landmark model: with `threads` 0 (automatic) a single crop runs on
/// the calling thread, without a pool, and batches of crops on a pool with a thread per core (see
/// [`model::Model::add_batch_session`]). The head-pose regressor and the detector, which gain
/// from a second thread (docs/performance.md, "Measurements behind the code"), keep ONNX
/// Runtime's choice, a thread per core.
fn inline_runtime(runtime: &RuntimeOptions) -> RuntimeOptions {
    RuntimeOptions {
        threads: if runtime.threads > 0 {
            runtime.threads
        } else {
            1
        },
        ..runtime.clone()
    }
}

/// The detector's runtime options: with `threads` 0 (automatic), one thread per core in line and
/// in the pipelined mode, and one fewer in the background mode, which leaves a core to the
/// streaming thread (with every core, a pool thread took the landmark model's core each time the
/// detector ran). The pipelined mode takes every core because the streaming thread ends up
/// waiting for each detection that outlasts the held frames' tracking, and a session on one
/// core makes that wait longer than the in-line detection (docs/performance.md).
fn detector_runtime(runtime: &RuntimeOptions, mode: DetectionMode) -> RuntimeOptions {
    RuntimeOptions {
        threads: match runtime.threads {
            0 => detector_threads(mode),
            n => n,
        },
        ..runtime.clone()
    }
}

/// The automatic thread count of the detector's session in `mode` (see [`detector_runtime`]).
fn detector_threads(mode: DetectionMode) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match mode {
        DetectionMode::Background { .. } => cores.saturating_sub(1).max(1),
        DetectionMode::InLine | DetectionMode::Pipelined => cores,
    }
}

/// Width and height of the black picture the sessions' first runs take (see [`Engine::warm_up`]).
const WARM_UP_SIZE: (usize, usize) = (64, 48);
static WARM_UP_PIXELS: [u8; WARM_UP_SIZE.0 * WARM_UP_SIZE.1 * 3] =
    [0; WARM_UP_SIZE.0 * WARM_UP_SIZE.1 * 3];

/// The black RGB picture of [`Engine::warm_up`].
fn warm_up_picture() -> Result<ImageView<'static>> {
    let (w, h) = WARM_UP_SIZE;
    ImageView::packed(PixelFormat::Rgb, w, h, &WARM_UP_PIXELS, w * 3)
}

/// Runs `detector` once on the black picture (see [`Engine::warm_up`]).
fn warm_up_detector(detector: &mut Detector, config: &DetectConfig) -> Result<()> {
    detector.detect(&warm_up_picture()?, config).map(drop)
}

/// The detector of `source`, loaded and run once (for a detection thread: the caller, not the
/// first frames, waits for both).
fn load_warm_detector(source: &DetectorSource, config: &DetectConfig) -> Result<Detector> {
    let mut detector =
        Detector::load(&source.model, source.descriptor.as_deref(), &source.runtime)?;
    warm_up_detector(&mut detector, config)?;
    Ok(detector)
}

/// The texts in order, each once.
fn once_each<'a>(texts: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in texts {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// Checks a camera field of view (degrees, 0 = off).
fn check_camera_fov(fov: f32) -> Result<()> {
    if (0.0..=CAMERA_FOV_MAX).contains(&fov) {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "camera field of view {fov} is outside 0..={CAMERA_FOV_MAX} degrees (0 = off)"
        )))
    }
}

impl Engine {
    /// Loads every model and the reference face.
    pub fn new(mut config: EngineConfig) -> Result<Engine> {
        config.detect.validate()?;
        check_camera_fov(config.camera_fov)?;
        let inline = inline_runtime(&config.runtime);
        let mut regressor = match (&config.pose_model, config.pose_method) {
            (Some(path), m) if m.needs_regressor() => Some(Regressor::load(
                path,
                config.pose_descriptor.as_deref(),
                &config.runtime,
            )?),
            (None, PoseMethod::Regression) => {
                return Err(Error::Config(
                    "pose method regression needs a head-pose model (pose-model is empty)".into(),
                ));
            }
            // Fused without a regressor is the landmark fit.
            (None, PoseMethod::Fused) => {
                config.pose_method = PoseMethod::Rigid;
                None
            }
            _ => None,
        };
        let mut detector = Detector::load(
            &config.detector_model,
            config.detector_descriptor.as_deref(),
            &detector_runtime(&config.runtime, DetectionMode::InLine),
        )?;
        let mut landmarker = Landmarker::load(
            &config.landmark_model,
            config.landmark_descriptor.as_deref(),
            &inline,
        )?;
        if config.runtime.threads == 0 {
            landmarker.model_mut().add_batch_session(&config.runtime)?;
        }
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
        let solver = Solver {
            indices,
            reference: points.iter().map(|p| p.map(|v| v as f64)).collect(),
            weights: weights.iter().map(|&w| w as f64).collect(),
            depth: landmarker.family() == descriptor::Family::FaceMesh,
            method: config.pose_method,
            fusion: DEFAULT_FUSION,
        };
        // One frame store for the in-line models: a frame becomes tensors once for all of them.
        let store = preprocess::graph::SharedFrameStore::default();
        detector.model_mut().share_frame_store(&store);
        landmarker.model_mut().share_frame_store(&store);
        if let Some(r) = &mut regressor {
            r.model_mut().share_frame_store(&store);
        }
        Ok(Engine {
            mirror,
            detector,
            background: None,
            ahead: None,
            ahead_threads: false,
            background_snapshot: None,
            generation: 0,
            landmarker,
            regressor,
            solver,
            detection_mode: config.detection_mode,
            background_age: 0,
            pipeline: pipeline::Schedule::default(),
            config,
            times: StageTimes::default(),
            track_config: TrackConfig::default(),
            tracker: Tracker::default(),
            last_corrections: Vec::new(),
            regressor_memory: HashMap::new(),
            pending_warnings: Vec::new(),
            warned_unusable_regression: false,
            regressor_crops: 0,
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

    /// The detector that runs in line (the background thread loads a session of its own).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Runs the detector on `image` on this thread.
    fn detect_now(&mut self, image: &ImageView) -> Result<Vec<Detection>> {
        self.detector.detect(image, &self.config.detect)
    }

    /// What the detection thread loads for the stream's detection mode: the same detector, with
    /// the threads of [`detector_runtime`].
    fn background_source(&self) -> DetectorSource {
        DetectorSource {
            model: self.config.detector_model.clone(),
            descriptor: self.config.detector_descriptor.clone(),
            runtime: detector_runtime(&self.config.runtime, self.detection_mode),
        }
    }

    pub fn landmarker(&self) -> &Landmarker {
        &self.landmarker
    }

    /// The head-pose regressor, when one is loaded.
    pub fn regressor(&self) -> Option<&Regressor> {
        self.regressor.as_ref()
    }

    /// The pose method in use (`fused` becomes `rigid` without a regressor).
    pub fn pose_method(&self) -> PoseMethod {
        self.solver.method
    }

    /// The camera's horizontal field of view (degrees; 0 = off) takes effect on the next frame.
    pub fn set_camera_fov(&mut self, fov: f32) -> Result<()> {
        check_camera_fov(fov)?;
        self.config.camera_fov = fov;
        Ok(())
    }

    /// The models loaded at start.
    fn models(&self) -> Vec<&model::Model> {
        let mut m = vec![self.detector.model(), self.landmarker.model()];
        m.extend(self.regressor.as_ref().map(|r| r.model()));
        m
    }

    /// Warnings raised while loading (a requested execution provider that could not be used and
    /// the fallback), each once however many models it concerned.
    pub fn warnings(&self) -> Vec<String> {
        once_each(self.models().iter().flat_map(|m| m.warnings.iter()))
    }

    /// What loading found worth saying once: `execution-provider=auto` found an accelerator's
    /// provider it could not use, and runs on the CPU.
    pub fn notices(&self) -> Vec<String> {
        once_each(self.models().iter().flat_map(|m| m.notices.iter()))
    }

    /// How many crops the head-pose regressor has run on since the engine started (mirrored
    /// crops included): what tracking saves shows here.
    pub fn regressor_crops(&self) -> u64 {
        self.regressor_crops
    }

    /// Warnings raised while processing since the last call (each kind once per engine).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.pending_warnings)
    }

    /// The execution provider that runs the models.
    pub fn provider(&self) -> &'static str {
        self.detector.model().provider
    }

    /// Where the pre-processing runs: "graph" when every model runs its frame graphs, "host"
    /// when none does, "mixed" otherwise (auto with frame graphs for some models only).
    pub fn preprocess(&self) -> &'static str {
        let modes: Vec<&str> = self.models().iter().map(|m| m.preprocess()).collect();
        if modes.iter().all(|m| *m == "graph") {
            "graph"
        } else if modes.iter().all(|m| *m == "host") {
            "host"
        } else {
            "mixed"
        }
    }

    /// How many frames were turned into frame-graph tensors (0 in host mode): one per frame
    /// processed in graph mode, however many model runs read it.
    pub fn frame_uploads(&self) -> u64 {
        self.detector
            .model()
            .frame_store()
            .map_or(0, |s| s.lock().unwrap_or_else(|e| e.into_inner()).frames())
    }

    /// Stage timings of the last processed frame.
    pub fn stage_times(&self) -> StageTimes {
        self.times
    }

    /// Runs every loaded model once on a black picture, so that the first frames of a stream do
    /// not pay for ONNX Runtime's first run of a session (its memory, its threads), which takes
    /// several times longer than the runs after it (docs/performance.md, "Why the design is as
    /// it is"). The element calls this at start, with the model loading; results
    /// are not affected.
    pub fn warm_up(&mut self) -> Result<()> {
        let image = warm_up_picture()?;
        let (w, h) = (WARM_UP_SIZE.0 as f32, WARM_UP_SIZE.1 as f32);
        warm_up_detector(&mut self.detector, &self.config.detect)?;
        let crop = RotatedRect {
            centre: geometry::Point::new(w * 0.5, h * 0.5),
            side: h,
            angle: 0.0,
        };
        // One crop (the single-crop session) and two (the batch session, when there is one).
        self.landmarker.run(&image, &[crop])?;
        self.landmarker.run(&image, &[crop, crop])?;
        if let Some(r) = self.regressor.as_mut() {
            let bbox = geometry::BBox::new(w * 0.125, h * 0.08, w * 0.875, h * 0.92);
            r.run(&image, &[(bbox, &[][..], false)])?;
        }
        Ok(())
    }

    /// Faces in `image`, best detection score first.
    pub fn process(&mut self, image: &ImageView) -> Result<Vec<Face>> {
        let t0 = Instant::now();
        let detections = self.detect_now(image)?;
        self.process_detected(image, detections, t0.elapsed().as_secs_f64() * 1e3, None)
    }

    /// [`Engine::process`] for `image` once the detector found `detections` on it (in
    /// `detect_ms`); `next_crops`: the crops of the second landmark pass, when the first ran
    /// already (on the look-ahead thread: see [`ahead`]).
    fn process_detected(
        &mut self,
        image: &ImageView,
        detections: Vec<Detection>,
        detect_ms: f64,
        next_crops: Option<Vec<RotatedRect>>,
    ) -> Result<Vec<Face>> {
        let t1 = Instant::now();
        let refine = self.config.refine_passes;
        let (crops, refine) = match next_crops {
            Some(crops) if crops.len() == detections.len() && refine > 0 => (crops, refine - 1),
            _ => (
                detections
                    .iter()
                    .map(|d| self.landmarker.crop_from_detection(d))
                    .collect(),
                refine,
            ),
        };
        let (landmarks, corrections) = self.landmark_passes(image, crops, refine, true)?;
        self.last_corrections = corrections;
        let t2 = Instant::now();
        let (mut faces, _) = self.solve(image, &detections, landmarks, estimate::Past::Still)?;
        for (i, f) in faces.iter_mut().enumerate() {
            f.id = i as u64;
        }
        let t3 = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        self.times = StageTimes {
            detect: detect_ms,
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
                let all = vec![true; crops.len()];
                let (averaged, corrections) = self.pass_with_mirror_where(image, &crops, &all)?;
                return Ok((averaged, corrections.into_iter().flatten().collect()));
            }
            let result = self.landmarker.run(image, &crops)?;
            if last {
                return Ok((result, Vec::new()));
            }
            crops = self.landmarker.refined_crops(&result);
        }
        Ok((Vec::new(), Vec::new()))
    }

    /// One landmark pass on `crops`, averaged with a pass on the mirrored crop for those flagged
    /// in `mirror` (one batch); returns the landmarks and, for the flagged ones, what the
    /// averaging moved each landmark by.
    fn pass_with_mirror_where(
        &mut self,
        image: &ImageView,
        crops: &[RotatedRect],
        mirror: &[bool],
    ) -> Result<(Vec<Landmarks>, Vec<Option<MirrorCorrection>>)> {
        let (plain, mirrored) = self
            .landmarker
            .run_with_mirror_where(image, crops, mirror)?;
        let size = self.landmarker.input_size() as f32;
        Ok(plain
            .into_iter()
            .zip(mirrored)
            .map(|(p, m)| match m {
                Some(m) => {
                    let a = average_with_mirror(&p, &m, &self.mirror);
                    let c = mirror_correction(&p, &a, size);
                    (a, Some(c))
                }
                None => (p, None),
            })
            .unzip())
    }

    /// Whether landmark passes end with a mirror pass.
    fn mirror_enabled(&self) -> bool {
        self.config.mirror_average && self.landmarker.refines() && !self.mirror.is_empty()
    }
}
