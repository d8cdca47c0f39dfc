// SPDX-License-Identifier: MPL-2.0
//! # faceposeestimator
//!
//! Finds faces in raw video, their 468 landmarks and their head pose (yaw, pitch, roll in degrees),
//! and attaches them to each buffer: one `GstVideoRegionOfInterestMeta` per face (roi type `face`,
//! parameters `detection` and `head-pose`) and one `FacePoseMeta` custom meta per frame (built
//! with the `analytics` feature, also a `GstAnalyticsRelationMeta`: see `crate::analytics`). It can
//! also post a `facepose` element message per frame, write JSON Lines, and draw an overlay.
//!
//! ```text
//! gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! faceposeestimator draw=true ! videoconvert ! autovideosink
//! ```
//!
//! Every face keeps a stable id while it stays in view (tracking between detector runs), and
//! per face the element judges whether it looks at the camera or at `attention-target`. The
//! properties in full, with what each default does: docs/element.md.
//!
//! This file is GObject glue only: the work happens in `crate::engine`, `crate::meta`,
//! `crate::overlay` and `crate::json`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;
use gst_video::{VideoFrameRef, VideoInfo};

use super::{AsyncDetection, ExecutionProvider, PoseMethod, Preprocess};
use crate::engine::attention::{Attention, AttentionConfig, AttentionEvent, FrameGeometry, Target};
use crate::engine::{self, DetectConfig, Engine, EngineConfig, Error as EngineError, TrackConfig};
use crate::{frame_view, json, meta, overlay};

mod held;

const DEFAULT_EXECUTION_PROVIDER: ExecutionProvider = ExecutionProvider::Auto;
const DEFAULT_POSE_METHOD: PoseMethod = PoseMethod::Fused;
const DEFAULT_CAMERA_FOV: f32 = engine::pose::perspective::DEFAULT_CAMERA_FOV;
const DEFAULT_DEVICE_ID: i32 = 0;
const DEFAULT_FALLBACK: bool = true;
const DEFAULT_PREPROCESS: Preprocess = Preprocess::Auto;
const DEFAULT_INFERENCE_THREADS: u32 = 0;
const DEFAULT_DETECTION_THRESHOLD: f32 = engine::detect::DEFAULT_SCORE_THRESHOLD;
const DEFAULT_NMS_THRESHOLD: f32 = engine::detect::DEFAULT_NMS_IOU;
const DEFAULT_DETECTOR_INPUT_SIZE: u32 = engine::detect::DEFAULT_INPUT_SIZE as u32;
const DEFAULT_MAX_FACES: u32 = engine::detect::DEFAULT_MAX_FACES as u32;
const DEFAULT_MIN_FACE_SIZE: u32 = 0;
const DEFAULT_DRAW: bool = false;
const DEFAULT_POST_MESSAGES: bool = false;
const DEFAULT_DETECTION_INTERVAL: u32 = 0;
const DEFAULT_ASYNC_DETECTION: AsyncDetection = AsyncDetection::Auto;
/// `async-detection=auto` on a live source: a frame this many frames after the one the
/// background detector started on waits for it.
const LIVE_DETECTION_BOUND: u32 = 2;
const DEFAULT_DETECTION_LOOKAHEAD: bool = false;
const DEFAULT_SMOOTHING: f64 = 0.0;
const DEFAULT_PRESENCE_THRESHOLD: f32 = engine::track::DEFAULT_PRESENCE_THRESHOLD;
const DEFAULT_QOS: bool = true;
const DEFAULT_ATTENTION_ANGLE: f32 = engine::attention::DEFAULT_ATTENTION_ANGLE;
const DEFAULT_ATTENTION_FRAMES: u32 = engine::attention::DEFAULT_ATTENTION_FRAMES;
/// Frames over which the processing latency is taken (the slowest of them is reported).
const LATENCY_WINDOW: usize = 60;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "faceposeestimator",
        gst::DebugColorFlags::empty(),
        Some("Face detection, landmarks and head pose"),
    )
});

#[derive(Debug, Clone)]
struct Settings {
    detector_model: Option<String>,
    detector_descriptor: Option<String>,
    landmark_model: Option<String>,
    landmark_descriptor: Option<String>,
    /// `None`: the default regressor; `Some("")`: none.
    pose_model: Option<String>,
    pose_descriptor: Option<String>,
    pose_method: PoseMethod,
    camera_fov: f32,
    ort_library: Option<String>,
    execution_provider: ExecutionProvider,
    device_id: i32,
    fallback: bool,
    preprocess: Preprocess,
    inference_threads: u32,
    tensorrt_cache: Option<String>,
    detection_threshold: f32,
    nms_threshold: f32,
    detector_input_size: u32,
    max_faces: u32,
    min_face_size: u32,
    draw: bool,
    post_messages: bool,
    json_location: Option<String>,
    detection_interval: u32,
    async_detection: AsyncDetection,
    detection_lookahead: bool,
    smoothing: f64,
    presence_threshold: f32,
    attention_angle: f32,
    attention_target: Option<String>,
    attention_frames: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            detector_model: None,
            detector_descriptor: None,
            landmark_model: None,
            landmark_descriptor: None,
            pose_model: None,
            pose_descriptor: None,
            pose_method: DEFAULT_POSE_METHOD,
            camera_fov: DEFAULT_CAMERA_FOV,
            ort_library: None,
            execution_provider: DEFAULT_EXECUTION_PROVIDER,
            device_id: DEFAULT_DEVICE_ID,
            fallback: DEFAULT_FALLBACK,
            preprocess: DEFAULT_PREPROCESS,
            inference_threads: DEFAULT_INFERENCE_THREADS,
            tensorrt_cache: None,
            detection_threshold: DEFAULT_DETECTION_THRESHOLD,
            nms_threshold: DEFAULT_NMS_THRESHOLD,
            detector_input_size: DEFAULT_DETECTOR_INPUT_SIZE,
            max_faces: DEFAULT_MAX_FACES,
            min_face_size: DEFAULT_MIN_FACE_SIZE,
            draw: DEFAULT_DRAW,
            post_messages: DEFAULT_POST_MESSAGES,
            json_location: None,
            detection_interval: DEFAULT_DETECTION_INTERVAL,
            async_detection: DEFAULT_ASYNC_DETECTION,
            detection_lookahead: DEFAULT_DETECTION_LOOKAHEAD,
            smoothing: DEFAULT_SMOOTHING,
            presence_threshold: DEFAULT_PRESENCE_THRESHOLD,
            attention_angle: DEFAULT_ATTENTION_ANGLE,
            attention_target: None,
            attention_frames: DEFAULT_ATTENTION_FRAMES,
        }
    }
}

impl Settings {
    fn detect_config(&self) -> DetectConfig {
        DetectConfig {
            input_size: self.detector_input_size as usize,
            score_threshold: self.detection_threshold,
            nms_iou: self.nms_threshold,
            max_faces: self.max_faces as usize,
            min_face_size: self.min_face_size as f32,
        }
    }

    /// What attention is judged against; an error names the property that is wrong.
    fn attention_config(&self) -> engine::Result<AttentionConfig> {
        let target = self
            .attention_target
            .as_deref()
            .map(|t| Target::parse(t, "attention-target"))
            .transpose()?;
        let config = AttentionConfig {
            angle: self.attention_angle,
            target,
            frames: self.attention_frames,
        };
        config.check(self.camera_fov)?;
        Ok(config)
    }

    fn track_config(&self) -> TrackConfig {
        TrackConfig {
            detection_interval: self.detection_interval,
            presence_threshold: self.presence_threshold,
            smoothing: self.smoothing as f32,
        }
    }

    fn engine_config(&self) -> EngineConfig {
        let dir = engine::default_model_dir();
        let mut c = EngineConfig::with_model_dir(&dir);
        if let Some(p) = &self.detector_model {
            c.detector_model = PathBuf::from(p);
        }
        if let Some(p) = &self.landmark_model {
            c.landmark_model = PathBuf::from(p);
        }
        c.detector_descriptor = self.detector_descriptor.as_ref().map(PathBuf::from);
        c.landmark_descriptor = self.landmark_descriptor.as_ref().map(PathBuf::from);
        match self.pose_model.as_deref() {
            Some("") => c.pose_model = None,
            Some(p) => c.pose_model = Some(PathBuf::from(p)),
            None => {}
        }
        c.pose_descriptor = self.pose_descriptor.as_ref().map(PathBuf::from);
        c.pose_method = self.pose_method.into();
        c.camera_fov = self.camera_fov;
        c.runtime.library = self.ort_library.as_ref().map(PathBuf::from);
        c.runtime.provider = self.execution_provider.into();
        c.runtime.device_id = self.device_id;
        c.runtime.fallback = self.fallback;
        c.runtime.preprocess = self.preprocess.into();
        c.runtime.threads = self.inference_threads as usize;
        c.runtime.tensorrt_cache = self.tensorrt_cache.as_ref().map(PathBuf::from);
        c.detect = self.detect_config();
        // `auto` is settled per stream, once it is known whether the source is live.
        c.detection_mode = self.detection_mode(false);
        c
    }

    /// Where the detector runs while tracking, for a stream from a `live` source.
    fn detection_mode(&self, live: bool) -> engine::DetectionMode {
        use engine::DetectionMode as M;
        match self.async_detection {
            AsyncDetection::Auto if live => M::Background {
                bound: Some(LIVE_DETECTION_BOUND),
            },
            AsyncDetection::Auto | AsyncDetection::Pipelined => M::Pipelined,
            AsyncDetection::Background => M::Background { bound: None },
            AsyncDetection::InLine => M::InLine,
        }
    }
}

struct State {
    engine: Engine,
    info: Option<VideoInfo>,
    /// The JSON Lines output and where it goes (a path, or "standard output").
    json: Option<(Box<dyn Write + Send>, String)>,
    detector: String,
    landmarker: String,
    pose_model: String,
    warned_draw: bool,
    /// The last buffer could not be analysed (it did not hold the negotiated frame).
    bad_run: bool,
    /// Why the first buffer of a run of bad ones could not be analysed, to report once the
    /// state's lock is released.
    bad_buffer: Option<String>,
    /// Processing times of the last frames, milliseconds (for the latency query).
    recent_ms: std::collections::VecDeque<f64>,
    /// Frames held back while the detector works on them (see `held`).
    held: std::collections::VecDeque<held::Held>,
    /// Whether this stream's source is live (asked at its first frame).
    live: Option<bool>,
    /// Who looks where, and the tracks' attention episodes.
    attention: Attention,
    #[cfg(feature = "analytics")]
    first_seen: crate::analytics::FirstSeen,
}

/// The processing latency reported to the pipeline.
#[derive(Debug, Default, Clone, Copy)]
struct Latency {
    /// What the last latency query answered.
    reported: gst::ClockTime,
    /// The slowest recent frame.
    measured: gst::ClockTime,
    /// A latency message is posted and not yet answered by a query.
    pending: bool,
}

#[derive(Default)]
pub struct FacePoseEstimator {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    latency: Mutex<Latency>,
}

impl FacePoseEstimator {
    /// Keeps the slowest recent frame as our latency; when it grows past what the pipeline was
    /// told by more than a quarter (and a millisecond), asks for a new latency configuration.
    fn update_latency(&self, recent_ms: &std::collections::VecDeque<f64>) {
        let slowest = recent_ms.iter().copied().fold(0.0, f64::max);
        let measured = gst::ClockTime::from_nseconds((slowest * 1e6).ceil() as u64);
        let renegotiate = {
            let mut l = self.latency.lock().unwrap();
            l.measured = measured;
            let grew = !l.pending
                && measured > l.reported + gst::ClockTime::MSECOND
                && measured.nseconds() > l.reported.nseconds() * 5 / 4;
            l.pending |= grew;
            grew
        };
        if renegotiate {
            gst::debug!(CAT, imp = self, "Processing latency now {measured}");
            let _ = self
                .obj()
                .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
        }
    }

    /// Writes out what the JSON Lines output holds; an error names the output and the OS error.
    /// After an error the output is dropped (what it held is lost either way), so that it is
    /// reported once.
    fn flush_json(&self, state: &mut State) -> Result<(), gst::ErrorMessage> {
        let result = match state.json.as_mut() {
            Some((out, name)) => out.flush().map_err(|e| json_error(name, &e)),
            None => Ok(()),
        };
        if result.is_err() {
            state.json = None;
        }
        result
    }

    fn post_faces(&self, buffer: &gst::BufferRef, faces: &[engine::Face], width: u32, height: u32) {
        let segment = self.obj().segment();
        let pts = buffer.pts();
        let (stream_time, running_time) = match segment.downcast_ref::<gst::ClockTime>() {
            Some(s) => (s.to_stream_time(pts), s.to_running_time(pts)),
            None => (None, None),
        };
        let s = gst::Structure::builder("facepose")
            .field("timestamp", pts)
            .field("stream-time", stream_time)
            .field("running-time", running_time)
            .field("duration", buffer.duration())
            .field("faces", meta::faces_array(faces, width, height))
            .build();
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }
}

impl FacePoseEstimator {
    /// The negotiated video info, with the engine set to the current settings.
    fn configure(
        &self,
        state: &mut State,
        settings: &Settings,
    ) -> Result<VideoInfo, gst::FlowError> {
        let info = state.info.clone().ok_or_else(|| {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("No caps before the first buffer")
            );
            gst::FlowError::NotNegotiated
        })?;
        state
            .engine
            .set_detect_config(settings.detect_config())
            .and_then(|()| state.engine.set_track_config(settings.track_config()))
            .and_then(|()| state.engine.set_camera_fov(settings.camera_fov))
            .and_then(|()| {
                let config = settings.attention_config()?;
                state.attention.set_config(config);
                Ok(())
            })
            .map_err(|e| {
                gst::element_imp_error!(self, gst::LibraryError::Settings, ("{e}"));
                gst::FlowError::Error
            })?;
        Ok(info)
    }

    /// Runs `run` on the engine and a view of the frame in `buffer`. `None` for a buffer that
    /// does not hold a frame of `info`: as GstVideoFilter does, one bad buffer must not stop a
    /// stream that runs for weeks; it goes on unanalysed, without metadata, and the first of a
    /// run of bad buffers is reported on the bus (by [`Self::report_bad_buffer`], once the
    /// caller has let go of the state).
    fn analyse<T>(
        &self,
        state: &mut State,
        buffer: &gst::BufferRef,
        info: &VideoInfo,
        run: impl FnOnce(&mut Engine, &engine::ImageView) -> engine::Result<T>,
    ) -> Result<Option<T>, gst::FlowError> {
        match self.with_view(state, buffer, info, run)? {
            Ok(done) => {
                state.bad_run = false;
                Ok(Some(done))
            }
            Err(why) => {
                if !state.bad_run {
                    state.bad_buffer = Some(why);
                } else {
                    gst::debug!(CAT, imp = self, "Buffer passed on without analysis: {why}");
                }
                state.bad_run = true;
                Ok(None)
            }
        }
    }

    /// Runs `run` on the engine and a view of the frame in `buffer`; `Err` says why `buffer`
    /// does not hold a frame of `info`. An engine error is posted and stops the stream.
    fn with_view<T>(
        &self,
        state: &mut State,
        buffer: &gst::BufferRef,
        info: &VideoInfo,
        run: impl FnOnce(&mut Engine, &engine::ImageView) -> engine::Result<T>,
    ) -> Result<Result<T, String>, gst::FlowError> {
        let frame = VideoFrameRef::from_buffer_ref_readable(buffer, info);
        let view = match &frame {
            Ok(frame) => frame_view::image_view(frame).map_err(|e| format!("bad frame: {e}")),
            Err(_) => Err(format!(
                "{} bytes cannot hold a {} {}x{} frame ({} bytes expected)",
                buffer.size(),
                info.format(),
                info.width(),
                info.height(),
                info.size()
            )),
        };
        let view = match view {
            Ok(view) => view,
            Err(why) => return Ok(Err(why)),
        };
        run(&mut state.engine, &view).map(Ok).map_err(|e| {
            gst::element_imp_error!(self, gst::StreamError::Failed, ("{e}"));
            gst::FlowError::Error
        })
    }

    /// Posts the warning for the first of a run of bad buffers that [`Self::analyse`] left (the
    /// state's lock released: an application's synchronous bus handler may read properties).
    fn report_bad_buffer(&self, why: Option<String>) {
        if let Some(why) = why {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                ("Buffer passed on without analysis: {why}")
            );
        }
    }

    /// Everything a frame's `faces` give (processing began at `started`): their attention, the
    /// latency figures, the engine's warnings, the metas, the JSON line and the overlay. Gives the
    /// attention episodes and tracks that ended on this frame, for the caller to post with the
    /// frame's bus message, without the state's lock.
    fn annotate(
        &self,
        state: &mut State,
        settings: &Settings,
        buffer: &mut gst::BufferRef,
        info: &VideoInfo,
        faces: &mut [engine::Face],
        started: Instant,
    ) -> Result<Vec<AttentionEvent>, gst::FlowError> {
        let (width, height) = (info.width(), info.height());
        let events = state.attention.update(
            faces,
            FrameGeometry {
                width: width as usize,
                height: height as usize,
                camera_fov: settings.camera_fov,
            },
            buffer.pts().map(|t| t.nseconds()),
            buffer.duration().map(|t| t.nseconds()),
        );
        let inference_ms = started.elapsed().as_secs_f64() * 1e3;
        for w in state.engine.take_warnings() {
            gst::element_imp_warning!(self, gst::StreamError::Decode, ("{w}"));
        }
        if state.recent_ms.len() == LATENCY_WINDOW {
            state.recent_ms.pop_front();
        }
        state.recent_ms.push_back(inference_ms);
        self.update_latency(&state.recent_ms);
        let times = state.engine.stage_times();
        gst::log!(
            CAT,
            imp = self,
            "{} face(s) in {inference_ms:.1} ms",
            faces.len()
        );
        meta::add_metas(
            buffer,
            faces,
            &meta::FrameInfo {
                width,
                height,
                detector: &state.detector,
                landmarker: &state.landmarker,
                pose_model: &state.pose_model,
                provider: state.engine.provider(),
                inference_ms,
                detected: state.engine.last_frame_detected(),
                times,
                events: &events,
            },
        );
        #[cfg(feature = "analytics")]
        if let Err(e) =
            crate::analytics::add_faces(buffer, faces, width, height, &mut state.first_seen)
        {
            gst::warning!(CAT, imp = self, "Cannot add the analytics meta: {e}");
        }
        if let Some((out, name)) = state.json.as_mut() {
            let pts = buffer.pts().map(|t| t.nseconds());
            let line = json::frame_line(pts, width, height, faces, &events);
            if let Err(e) = writeln!(out, "{line}") {
                let error = json_error(name, &e);
                state.json = None;
                self.post_error_message(error);
                return Err(gst::FlowError::Error);
            }
        }
        if settings.draw && !faces.is_empty() {
            let mut frame =
                VideoFrameRef::from_buffer_ref_writable(buffer, info).map_err(|_| {
                    gst::element_imp_error!(
                        self,
                        gst::CoreError::Failed,
                        ("Cannot map the buffer for drawing")
                    );
                    gst::FlowError::Error
                })?;
            if !overlay::draw_on_frame(&mut frame, faces) && !state.warned_draw {
                state.warned_draw = true;
                gst::warning!(CAT, imp = self, "Cannot draw on {:?}", info.format());
            }
        }
        Ok(events)
    }

    /// Ends every track's attention (end of stream, a flush, a new stream: `why`): writes the
    /// events to the JSON Lines and gives them, for the caller to post without the state's lock.
    fn end_attention(
        &self,
        state: &mut State,
        why: &str,
    ) -> Result<Vec<AttentionEvent>, gst::ErrorMessage> {
        let events = state.attention.finish();
        if events.is_empty() {
            return Ok(events);
        }
        if let Some((out, name)) = state.json.as_mut() {
            let line = json::tracks_ended_line(why, &events);
            if let Err(e) = writeln!(out, "{line}") {
                let error = json_error(name, &e);
                state.json = None;
                return Err(error);
            }
        }
        Ok(events)
    }

    /// Posts each ended episode or track as a `facepose-attention` element message.
    fn post_attention(&self, events: &[AttentionEvent]) {
        for e in events {
            let s = meta::event_structure(meta::EVENT_MESSAGE, e);
            let _ = self
                .obj()
                .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for FacePoseEstimator {
    const NAME: &'static str = "GstFacePoseEstimator";
    type Type = super::FacePoseEstimator;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for FacePoseEstimator {
    fn constructed(&self) {
        self.parent_constructed();
        // Late frames of a live stream are dropped (with QoS messages) rather than queued.
        self.obj().set_qos(DEFAULT_QOS);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("detector-model")
                    .nick("Detector model")
                    .blurb("Face detector ONNX file, with its .descriptor beside it (default: retinaface_mbv2.onnx from FACEPOSE_MODEL_DIR, the installed share/gst-plugin-facepose or the source tree's models)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("landmark-model")
                    .nick("Landmark model")
                    .blurb("Face landmark ONNX file, with its .descriptor beside it (default: face_landmark.onnx, found as the detector is)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("detector-descriptor")
                    .nick("Detector descriptor")
                    .blurb("Descriptor of the detector model (default: the model's path with the extension .descriptor)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("landmark-descriptor")
                    .nick("Landmark descriptor")
                    .blurb("Descriptor of the landmark model (default: the model's path with the extension .descriptor)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("pose-model")
                    .nick("Head-pose model")
                    .blurb("Head-pose regressor ONNX file, with its .descriptor beside it (default: whenet.onnx, found as the detector is). An empty string: none, angles from the landmarks alone")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("pose-descriptor")
                    .nick("Head-pose descriptor")
                    .blurb("Descriptor of the head-pose model (default: the model's path with the extension .descriptor)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("pose-method", DEFAULT_POSE_METHOD)
                    .nick("Pose method")
                    .blurb("How yaw, pitch and roll are found: fused (landmark fit and regressor blended by how turned the face is; rigid without a pose model), regression, rigid or seed-linear")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecFloat::builder("camera-fov")
                    .nick("Camera field of view")
                    .blurb("The camera's horizontal field of view in degrees, used to give angles in the camera's frame for faces away from the image centre (0 = off: angles relative to each face's line of sight)")
                    .minimum(0.0)
                    .maximum(engine::pose::perspective::CAMERA_FOV_MAX)
                    .default_value(DEFAULT_CAMERA_FOV)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("ort-library")
                    .nick("ONNX Runtime library")
                    .blurb("Path of libonnxruntime.so (default: ORT_DYLIB_PATH, then lib/gst-plugin-facepose beside the installed plugin, then the source tree's set-up folder, then the system)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("execution-provider", DEFAULT_EXECUTION_PROVIDER)
                    .nick("Execution provider")
                    .blurb("Hardware that runs the models; unavailable accelerators fall back to the CPU with a warning")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("device-id")
                    .nick("Device id")
                    .blurb("GPU index for CUDA and TensorRT")
                    .minimum(0)
                    .maximum(64)
                    .default_value(DEFAULT_DEVICE_ID)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("fallback")
                    .nick("Fallback")
                    .blurb("Run on the CPU, with a warning, when the requested accelerator cannot be used (false: fail to start)")
                    .default_value(DEFAULT_FALLBACK)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("preprocess", DEFAULT_PREPROCESS)
                    .nick("Pre-processing")
                    .blurb("Where model inputs are sampled: host (the element's warp) or graph (the models' frame graphs, on the provider's device). auto: graph on CUDA and TensorRT when the frame graphs exist")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("active-async-detection")
                    .nick("Active detection mode")
                    .blurb("Where the detector runs for this stream, as auto settled it at its first frame: pipelined, background, background with a 2-frame bound or in line (null before start)")
                    .read_only()
                    .build(),
                glib::ParamSpecString::builder("active-preprocess")
                    .nick("Active pre-processing")
                    .blurb("Where the pre-processing runs once started: host, graph or mixed (null before start)")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt::builder("inference-threads")
                    .nick("Inference threads")
                    .blurb("CPU threads per model (0: automatic, about one per core; single landmark crops run on the streaming thread itself)")
                    .maximum(256)
                    .default_value(DEFAULT_INFERENCE_THREADS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("tensorrt-cache")
                    .nick("TensorRT cache")
                    .blurb("Folder where TensorRT keeps its built engines (default: no cache)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("active-execution-provider")
                    .nick("Active execution provider")
                    .blurb("What actually runs the models once started: cpu, cuda or tensorrt (null before start)")
                    .read_only()
                    .build(),
                glib::ParamSpecFloat::builder("detection-threshold")
                    .nick("Detection threshold")
                    .blurb("Lowest detector score kept")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_DETECTION_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("nms-threshold")
                    .nick("NMS threshold")
                    .blurb("Overlap (IoU) above which the weaker of two detections is dropped")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_NMS_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("detector-input-size")
                    .nick("Detector input size")
                    .blurb("Long side in pixels of the detector input (models with a dynamic size); smaller is faster, larger finds smaller faces")
                    .minimum(32)
                    .maximum(4096)
                    .default_value(DEFAULT_DETECTOR_INPUT_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-faces")
                    .nick("Maximum faces")
                    .blurb("Most faces reported per frame, best first")
                    .minimum(1)
                    .maximum(256)
                    .default_value(DEFAULT_MAX_FACES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-face-size")
                    .nick("Minimum face size")
                    .blurb("Faces whose box is smaller than this many pixels on its longer side are dropped")
                    .maximum(8192)
                    .default_value(DEFAULT_MIN_FACE_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("draw")
                    .nick("Draw")
                    .blurb("Draw boxes, landmarks and pose axes into the video")
                    .default_value(DEFAULT_DRAW)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post a 'facepose' element message per frame")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("json-location")
                    .nick("JSON location")
                    .blurb("Write one JSON object per frame to this file ('-' for standard output)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("detection-interval")
                    .nick("Detection interval")
                    .blurb("Run the detector every N frames and follow faces by their landmarks between (1 = every frame; 0 = automatic: when no face is tracked or one is lost, else every few frames)")
                    .maximum(10_000)
                    .default_value(DEFAULT_DETECTION_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("async-detection", DEFAULT_ASYNC_DETECTION)
                    .nick("Detection on its own thread")
                    .blurb("Where the detector runs while tracking: auto = pipelined for files, background with a 2-frame bound for live sources; true = background, frames never wait; false = in line")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("detection-lookahead")
                    .nick("Detection one frame ahead")
                    .blurb("With the detector on every frame, run it on the next frame on a thread of its own while this one is finished. The same faces, one frame later (one frame more latency)")
                    .default_value(DEFAULT_DETECTION_LOOKAHEAD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("smoothing")
                    .nick("Smoothing")
                    .blurb("One-Euro smoothing of angles, boxes and landmarks per face (0 = off; 0.5 = 1 Hz cut-off at rest; 1 = strongest); fast turns pass with little lag")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_SMOOTHING)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("presence-threshold")
                    .nick("Presence threshold")
                    .blurb("A tracked face whose landmark face-presence score falls below this is dropped")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_PRESENCE_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("attention-angle")
                    .nick("Attention angle")
                    .blurb("Degrees between a head's forward axis and the direction to the camera under which it looks at the camera; in (0, 90)")
                    .minimum(0.0)
                    .maximum(90.0)
                    .default_value(DEFAULT_ATTENTION_ANGLE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("attention-target")
                    .nick("Attention target")
                    .blurb("A rectangle in the camera's plane that attention follows instead of the camera: \"x,y,width,height\" in cm, its top-left corner from the camera (x right, y down); needs camera-fov > 0")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("attention-frames")
                    .nick("Attention frames")
                    .blurb("Frames in a row that start or end an attention episode (a shorter run changes nothing)")
                    .minimum(1)
                    .maximum(engine::attention::MAX_ATTENTION_FRAMES)
                    .default_value(DEFAULT_ATTENTION_FRAMES)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        let string = || {
            value
                .get::<Option<String>>()
                .expect("type checked upstream")
                .filter(|v| !v.is_empty())
        };
        match pspec.name() {
            "detector-model" => s.detector_model = string(),
            "landmark-model" => s.landmark_model = string(),
            "detector-descriptor" => s.detector_descriptor = string(),
            "landmark-descriptor" => s.landmark_descriptor = string(),
            "pose-model" => {
                // An empty string is kept: it turns the regressor off.
                s.pose_model = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
            }
            "pose-descriptor" => s.pose_descriptor = string(),
            "pose-method" => s.pose_method = value.get().expect("type checked upstream"),
            "camera-fov" => s.camera_fov = value.get().expect("type checked upstream"),
            "ort-library" => s.ort_library = string(),
            "execution-provider" => {
                s.execution_provider = value.get().expect("type checked upstream")
            }
            "device-id" => s.device_id = value.get().expect("type checked upstream"),
            "fallback" => s.fallback = value.get().expect("type checked upstream"),
            "preprocess" => s.preprocess = value.get().expect("type checked upstream"),
            "inference-threads" => {
                s.inference_threads = value.get().expect("type checked upstream")
            }
            "tensorrt-cache" => s.tensorrt_cache = string(),
            "detection-threshold" => {
                s.detection_threshold = value.get().expect("type checked upstream")
            }
            "nms-threshold" => s.nms_threshold = value.get().expect("type checked upstream"),
            "detector-input-size" => {
                s.detector_input_size = value.get().expect("type checked upstream")
            }
            "max-faces" => s.max_faces = value.get().expect("type checked upstream"),
            "min-face-size" => s.min_face_size = value.get().expect("type checked upstream"),
            "draw" => s.draw = value.get().expect("type checked upstream"),
            "post-messages" => s.post_messages = value.get().expect("type checked upstream"),
            "json-location" => s.json_location = string(),
            "async-detection" => s.async_detection = value.get().expect("type checked upstream"),
            "detection-lookahead" => {
                s.detection_lookahead = value.get().expect("type checked upstream")
            }
            "detection-interval" => {
                s.detection_interval = value.get().expect("type checked upstream")
            }
            "smoothing" => s.smoothing = value.get().expect("type checked upstream"),
            "presence-threshold" => {
                s.presence_threshold = value.get().expect("type checked upstream")
            }
            "attention-angle" => s.attention_angle = value.get().expect("type checked upstream"),
            "attention-target" => s.attention_target = string(),
            "attention-frames" => s.attention_frames = value.get().expect("type checked upstream"),
            _ => unimplemented!(),
        }
        // A value the element cannot use is reported now, and again (as the error that stops
        // it) when it starts.
        if pspec.name().starts_with("attention-")
            && let Err(e) = s.attention_config()
        {
            gst::error!(CAT, imp = self, "{e}");
        }
        drop(s);
        let running = self.state.lock().unwrap().is_some();
        if running && !pspec.flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING) {
            gst::warning!(
                CAT,
                imp = self,
                "{} changed while running: the running models and outputs carry on; the new value applies at the next start (READY → PAUSED)",
                pspec.name()
            );
        } else {
            gst::info!(CAT, imp = self, "{} set", pspec.name());
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        match pspec.name() {
            "detector-model" => s.detector_model.to_value(),
            "landmark-model" => s.landmark_model.to_value(),
            "detector-descriptor" => s.detector_descriptor.to_value(),
            "landmark-descriptor" => s.landmark_descriptor.to_value(),
            "pose-model" => s.pose_model.to_value(),
            "pose-descriptor" => s.pose_descriptor.to_value(),
            "pose-method" => s.pose_method.to_value(),
            "camera-fov" => s.camera_fov.to_value(),
            "ort-library" => s.ort_library.to_value(),
            "execution-provider" => s.execution_provider.to_value(),
            "device-id" => s.device_id.to_value(),
            "fallback" => s.fallback.to_value(),
            "preprocess" => s.preprocess.to_value(),
            "active-async-detection" => {
                drop(s);
                let state = self.state.lock().unwrap();
                state
                    .as_ref()
                    .map(|st| st.engine.detection_mode().to_string())
                    .to_value()
            }
            "active-preprocess" => {
                drop(s);
                let state = self.state.lock().unwrap();
                state.as_ref().map(|st| st.engine.preprocess()).to_value()
            }
            "inference-threads" => s.inference_threads.to_value(),
            "tensorrt-cache" => s.tensorrt_cache.to_value(),
            "active-execution-provider" => {
                drop(s);
                let state = self.state.lock().unwrap();
                state.as_ref().map(|st| st.engine.provider()).to_value()
            }
            "detection-threshold" => s.detection_threshold.to_value(),
            "nms-threshold" => s.nms_threshold.to_value(),
            "detector-input-size" => s.detector_input_size.to_value(),
            "max-faces" => s.max_faces.to_value(),
            "min-face-size" => s.min_face_size.to_value(),
            "draw" => s.draw.to_value(),
            "post-messages" => s.post_messages.to_value(),
            "json-location" => s.json_location.to_value(),
            "detection-interval" => s.detection_interval.to_value(),
            "async-detection" => s.async_detection.to_value(),
            "detection-lookahead" => s.detection_lookahead.to_value(),
            "smoothing" => s.smoothing.to_value(),
            "presence-threshold" => s.presence_threshold.to_value(),
            "attention-angle" => s.attention_angle.to_value(),
            "attention-target" => s.attention_target.to_value(),
            "attention-frames" => s.attention_frames.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for FacePoseEstimator {}

impl ElementImpl for FacePoseEstimator {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face pose estimator",
                "Filter/Analyzer/Video",
                "Finds faces, their landmarks, head pose (yaw, pitch, roll) and attention, and attaches them to each buffer as metadata; can also draw them, post messages and write JSON Lines",
                "gst-plugin-facepose developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(frame_view::FORMATS)
                .build();
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }
}

fn start_error(e: &EngineError) -> gst::ErrorMessage {
    match e {
        EngineError::Runtime { .. } => gst::error_msg!(gst::LibraryError::Init, ("{e}")),
        EngineError::Config(_) => gst::error_msg!(gst::LibraryError::Settings, ("{e}")),
        _ => gst::error_msg!(gst::ResourceError::OpenRead, ("{e}")),
    }
}

/// The error for JSON Lines that cannot be written to `name`.
fn json_error(name: &str, e: &std::io::Error) -> gst::ErrorMessage {
    gst::error_msg!(
        gst::ResourceError::Write,
        ("Cannot write the JSON Lines to {name}: {e}")
    )
}

impl BaseTransformImpl for FacePoseEstimator {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let attention = settings.attention_config().map_err(|e| start_error(&e))?;
        let config = settings.engine_config();
        let mut engine = Engine::new(config.clone()).map_err(|e| start_error(&e))?;
        // The first run of each session, here rather than on the first frames.
        engine.warm_up().map_err(|e| start_error(&e))?;
        // Tracking with detection in the background: its session loads now, with the others.
        if settings.track_config().detection_interval != 1 {
            engine
                .prepare_background_detection()
                .map_err(|e| start_error(&e))?;
        }
        // Detection one frame ahead: its thread's sessions too.
        if settings.detection_lookahead && engine.lookahead_helps(settings.detection_interval) {
            engine
                .prepare_ahead_detection()
                .map_err(|e| start_error(&e))?;
        }
        for w in engine.warnings() {
            gst::element_imp_warning!(self, gst::LibraryError::Init, ("{w}"));
        }
        for n in engine.notices() {
            gst::element_imp_info!(self, gst::LibraryError::Init, ("{n}"));
        }
        let json: Option<(Box<dyn Write + Send>, String)> = match settings.json_location.as_deref()
        {
            None => None,
            Some("-") => {
                // Its own descriptor, so that a closed standard output is an error here (Rust's
                // stdout would discard every line silently).
                use std::os::fd::AsFd;
                if json::standard_output_closed() {
                    return Err(gst::error_msg!(
                        gst::ResourceError::OpenWrite,
                        ("Cannot write the JSON Lines to standard output: it is closed (descriptor 1 belongs to something else of this process)")
                    ));
                }
                let fd = std::io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| {
                        gst::error_msg!(
                            gst::ResourceError::OpenWrite,
                            ("Cannot write the JSON Lines to standard output: {e}")
                        )
                    })?;
                let out = std::io::LineWriter::new(std::fs::File::from(fd));
                Some((
                    Box::new(out) as Box<dyn Write + Send>,
                    "standard output".into(),
                ))
            }
            Some(path) => {
                let file = std::fs::File::create(path).map_err(|e| {
                    gst::error_msg!(
                        gst::ResourceError::OpenWrite,
                        ("Cannot create the JSON file {path}: {e}")
                    )
                })?;
                let out = std::io::BufWriter::new(file);
                Some((Box::new(out) as Box<dyn Write + Send>, path.to_owned()))
            }
        };
        let name = |p: &std::path::Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        gst::info!(
            CAT,
            imp = self,
            "Loaded {} and {} on {}",
            config.detector_model.display(),
            config.landmark_model.display(),
            engine.provider()
        );
        *self.state.lock().unwrap() = Some(State {
            detector: name(&config.detector_model),
            landmarker: name(&config.landmark_model),
            pose_model: engine
                .regressor()
                .map(|r| r.model().name())
                .unwrap_or_default(),
            engine,
            info: None,
            json,
            warned_draw: false,
            bad_run: false,
            bad_buffer: None,
            recent_ms: std::collections::VecDeque::with_capacity(LATENCY_WINDOW),
            held: Default::default(),
            live: None,
            attention: Attention::new(attention),
            #[cfg(feature = "analytics")]
            first_seen: Default::default(),
        });
        *self.latency.lock().unwrap() = Latency::default();
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let state = self.state.lock().unwrap().take();
        // An error here would fail the pads' deactivation: it is posted, and the element stops.
        if let Some(Err(e)) = state.map(|mut s| self.flush_json(&mut s)) {
            self.post_error_message(e);
        }
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        // Nothing overtakes a frame held back by the look-ahead; a flush drops it.
        if let gst::EventView::FlushStop(_) = event.view() {
            if let Some(state) = self.state.lock().unwrap().as_mut() {
                Self::discard_held(state);
            }
        } else if event.is_serialized() {
            self.drain_held();
        }
        // The tracks end with the stream, a flushing seek or a new stream: the faces of before are
        // no guide to what comes.
        let ended = match event.view() {
            // Every frame's JSON reaches its file before EOS goes on, or the stream fails.
            gst::EventView::Eos(_) => self.state.lock().unwrap().as_mut().map(|state| {
                self.end_attention(state, "eos")
                    .and_then(|events| self.flush_json(state).map(|()| events))
            }),
            gst::EventView::FlushStop(_) | gst::EventView::StreamStart(_) => {
                let new_stream = matches!(event.view(), gst::EventView::StreamStart(_));
                self.state.lock().unwrap().as_mut().map(|state| {
                    state.engine.reset_tracking();
                    // A new stream may come from another source: asked again at its first
                    // frame.
                    if new_stream {
                        state.live = None;
                    }
                    self.end_attention(state, if new_stream { "stream-start" } else { "flush" })
                })
            }
            _ => None,
        };
        match ended {
            Some(Ok(events)) => self.post_attention(&events),
            Some(Err(e)) => {
                self.post_error_message(e);
                return false;
            }
            None => {}
        }
        self.parent_sink_event(event)
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        if direction != gst::PadDirection::Src {
            if let gst::QueryViewMut::Drain(_) = query.view_mut() {
                self.drain_held();
            }
            return BaseTransformImplExt::parent_query(self, direction, query);
        }
        match query.view_mut() {
            gst::QueryViewMut::Latency(q) => {
                let sinkpad = self.obj().static_pad("sink").expect("always present");
                let mut upstream = gst::query::Latency::new();
                if !sinkpad.peer_query(&mut upstream) {
                    return false;
                }
                let (live, min, max) = upstream.result();
                let ours = {
                    let mut l = self.latency.lock().unwrap();
                    l.reported = l.measured;
                    l.pending = false;
                    l.reported
                } + self.held_latency();
                gst::debug!(
                    CAT,
                    imp = self,
                    "Latency: upstream {min}-{}, ours {ours}",
                    max.display()
                );
                q.set(live, min + ours, max.map(|m| m + ours));
                true
            }
            _ => BaseTransformImplExt::parent_query(self, direction, query),
        }
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "Cannot read video caps {incaps}"))?;
        if frame_view::pixel_format(info.format()).is_none() {
            return Err(gst::loggable_error!(CAT, "Unsupported format in {incaps}"));
        }
        gst::debug!(CAT, imp = self, "Configured for {incaps}");
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            let same_size = state
                .info
                .as_ref()
                .is_some_and(|old| (old.width(), old.height()) == (info.width(), info.height()));
            if !same_size {
                state.engine.reset_tracking();
            }
            state.info = Some(info);
        }
        Ok(())
    }

    fn transform_ip(
        &self,
        buffer: &mut gst::BufferRef,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.settings.lock().unwrap().clone();
        let mut guard = self.state.lock().unwrap();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let info = self.configure(state, &settings)?;
        let time = buffer.pts().map(|t| t.nseconds() as f64 * 1e-9);
        let started = Instant::now();
        let Some(mut faces) = self.analyse(state, buffer, &info, |engine, view| {
            engine.track(view, time)
        })?
        else {
            let bad = state.bad_buffer.take();
            drop(guard);
            self.report_bad_buffer(bad);
            return Ok(gst::FlowSuccess::Ok);
        };
        let events = self.annotate(state, &settings, buffer, &info, &mut faces, started)?;
        drop(guard);
        if settings.post_messages {
            self.post_faces(buffer, &faces, info.width(), info.height());
        }
        self.post_attention(&events);
        Ok(gst::FlowSuccess::Ok)
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        let holding = self.holding();
        if holding == held::Holding::None {
            // Frames held back before holding stopped go first; the queued one waits for the
            // next call.
            if let Some(held) = self.finish_held()? {
                return Ok(GenerateOutputSuccess::Buffer(held));
            }
            return self.parent_generate_output();
        }
        let Some(next) = self.take_queued_buffer() else {
            return Ok(GenerateOutputSuccess::NoOutput);
        };
        Ok(match self.hold(holding, next)? {
            Some(previous) => GenerateOutputSuccess::Buffer(previous),
            None => GenerateOutputSuccess::NoOutput,
        })
    }
}
