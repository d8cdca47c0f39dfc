// SPDX-License-Identifier: MPL-2.0
//! `make bench`: the speed of `faceposeestimator` on the CPU, and of its peers on the same frames
//! in the same run: upstream's `facedetect` (Debian's gstreamer1.0-opencv) and MediaPipe's legacy
//! FaceMesh.
//!
//! ```text
//! cargo run --release --example bench [-- --quick] [--case vga|1080p|all] [--runs N]
//!     [--frames N] [--video PATH] [--video-frames N] [--out DIR] [--in-process] [--no-mediapipe]
//! ```
//!
//! Cases:
//! - `vga`: 640×480, one face: the astronaut sample picture, scaled to 352×352, moving 3 px
//!   right and 2 px down per frame (bouncing at the edges) over a gradient, 300 frames;
//! - `1080p`: several faces: every frame of `../shared/videos/multiface_1080p.mp4`.
//!
//! Our configurations: detection on every frame (`detection-interval=1`) at detector input 640
//! and 320 (the latter also with `detection-lookahead=true`), and tracking
//! (`detection-interval=0`) at 640 and 320 (1080p: 640 only, both).
//!
//! Every frame is made (or decoded) into memory first, as I420, so no decoding is measured;
//! then `appsrc ! faceposeestimator ! fakesink sync=false` (for facedetect, which takes RGB only:
//! `appsrc ! videoconvert ! facedetect ! fakesink sync=false`, the conversion counted in its
//! time). fps = frames / wall time from the first push to EOS. Each configuration runs `--runs`
//! times (3), each run in a fresh process (this program re-executed with a hidden argument), and
//! the median is reported; per-stage milliseconds are the median per frame of the `FacePoseMeta`
//! fields `detect-ms` (frames where the detector ran), `landmarks-ms` and `pose-ms`; peak memory is
//! the run's process VmHWM (reset once the input frames are in memory, so it holds them, the
//! models and the pipeline). The report is printed and written to `<out>/bench.md` (`out/`).
//!
//! The MediaPipe row: `mediapipe.solutions.face_mesh.FaceMesh` of PyPI's `mediapipe==0.10.21`
//! (python, TFLite with XNNPACK on the CPU, `static_image_mode=False`: its own tracking, the
//! detector running only while it has fewer faces than `max_num_faces`, 1 for `vga` and
//! [`MEDIAPIPE_VIDEO_MAX_FACES`] for `1080p`; `refine_landmarks=False`, detection and tracking
//! confidence 0.5). The bench converts the very I420 frames it feeds our element to packed RGB
//! (GStreamer's video converter), writes them into one raw file in a temporary folder, and runs
//! `scripts/bench_mediapipe.py` on it `--runs` times, each a fresh python process that reads every
//! frame into memory, then times `process()` over them (graph set-up not counted, as our model
//! loading is not); it also counts the frames on which FaceMesh found a face. Its python is
//! `.cache/bench-venv/bin/python`, a bench-only virtual environment that `scripts/bench.sh`
//! (`make bench`) makes from `scripts/bench-requirements.txt`; it is not part of the product nor
//! of `make test`. Without it (or with `--in-process` or `--no-mediapipe`) the row is skipped
//! with a printed note, like facedetect's.
//!
//! `--quick`: one run, 30 frames of 640×480 and 10 of the video (a smoke test). `--in-process`:
//! runs everything in this process (peak memory is then the whole process's; MediaPipe, which
//! needs a process of its own, is skipped); the smoke test uses it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::Instant;

use gst::prelude::*;
use gst_video::{VideoFrameExt, VideoFrameRef, VideoInfo};

#[path = "support/frames.rs"]
#[allow(dead_code)]
mod frames;

const VGA_WIDTH: u32 = 640;
const VGA_HEIGHT: u32 = 480;
const VGA_FPS: i32 = 30;
const VGA_FRAMES: usize = 300;
/// Side of the sample picture on the 640×480 canvas.
const PICTURE_SIDE: u32 = 352;
/// Pixels per frame the picture moves, right and down.
const STEP: (u32, u32) = (3, 2);
const RUNS: usize = 3;
const QUICK_VGA_FRAMES: usize = 30;
const QUICK_VIDEO_FRAMES: usize = 10;
/// Relative to the project.
const DEFAULT_VIDEO: &str = "../shared/videos/multiface_1080p.mp4";
const SAMPLE_PICTURE: &str = "samples/astronaut.png";
/// Frames appsrc may queue ahead of the element.
const QUEUED_FRAMES: u64 = 4;

const CHILD_ARG: &str = "--bench-child";
const RESULT_PREFIX: &str = "BENCH-RESULT";
const NOTE_PREFIX: &str = "BENCH-NOTE";
const FACEDETECT_PACKAGES: &str = "gstreamer1.0-opencv opencv-data";
/// The bench-only virtual environment's python (relative to the project; `scripts/bench.sh`).
const MEDIAPIPE_PYTHON: &str = ".cache/bench-venv/bin/python";
const MEDIAPIPE_SCRIPT: &str = "scripts/bench_mediapipe.py";
/// FaceMesh's `max_num_faces` on the 1080p crowd video (1 on 640×480).
const MEDIAPIPE_VIDEO_MAX_FACES: u32 = 10;

/// Targets on the CPU (640×480 one face unless said otherwise), from the real-time, the
/// full-range head-pose and the speed-against-MediaPipe issues.
const TARGET_VGA_TRACKING_FPS: f64 = 250.0;
const TARGET_VGA_DETECT_320_FPS: f64 = 70.0;
const TARGET_1080P_TRACKING_FPS: f64 = 80.0;
/// 640×480 default tracking against MediaPipe's FaceMesh (the goal is 1.5×).
const TARGET_VGA_VS_MEDIAPIPE: f64 = 1.1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Vga,
    Video,
}

impl Case {
    fn id(self) -> &'static str {
        match self {
            Case::Vga => "vga",
            Case::Video => "1080p",
        }
    }

    fn parse(s: &str) -> Option<Case> {
        match s {
            "vga" | "640x480" => Some(Case::Vga),
            "1080p" | "video" => Some(Case::Video),
            _ => None,
        }
    }

    fn configs(self) -> Vec<Config> {
        let ours = |interval, input_size| Config::Ours {
            interval,
            input_size,
            lookahead: false,
        };
        match self {
            Case::Vga => vec![
                ours(1, 640),
                ours(1, 320),
                Config::Ours {
                    interval: 1,
                    input_size: 320,
                    lookahead: true,
                },
                ours(0, 640),
                ours(0, 320),
                Config::FaceDetect,
                Config::MediaPipe,
            ],
            Case::Video => vec![
                ours(1, 640),
                ours(0, 640),
                Config::FaceDetect,
                Config::MediaPipe,
            ],
        }
    }

    /// MediaPipe FaceMesh's `max_num_faces` for this case.
    fn mediapipe_max_faces(self) -> u32 {
        match self {
            Case::Vga => 1,
            Case::Video => MEDIAPIPE_VIDEO_MAX_FACES,
        }
    }
}

/// What runs on the frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config {
    /// `faceposeestimator detection-interval=<interval> detector-input-size=<input_size>
    /// detection-lookahead=<lookahead>`.
    Ours {
        interval: u32,
        input_size: u32,
        lookahead: bool,
    },
    /// `videoconvert ! facedetect` with facedetect's defaults.
    FaceDetect,
    /// MediaPipe's legacy FaceMesh (python, XNNPACK, tracking) on the same frames in RGB.
    MediaPipe,
}

impl Config {
    fn id(self) -> String {
        match self {
            Config::Ours {
                interval,
                input_size,
                lookahead,
            } => format!(
                "ours-{interval}-{input_size}{}",
                if lookahead { "-ahead" } else { "" }
            ),
            Config::FaceDetect => "facedetect".into(),
            Config::MediaPipe => "mediapipe".into(),
        }
    }

    /// One of our element's configurations (not a peer).
    fn is_ours(self) -> bool {
        matches!(self, Config::Ours { .. })
    }

    fn parse(s: &str) -> Option<Config> {
        match s {
            "facedetect" => return Some(Config::FaceDetect),
            "mediapipe" => return Some(Config::MediaPipe),
            _ => {}
        }
        let mut parts = s.strip_prefix("ours-")?.split('-');
        let interval = parts.next()?.parse().ok()?;
        let input_size = parts.next()?.parse().ok()?;
        let lookahead = match parts.next() {
            None => false,
            Some("ahead") => true,
            Some(_) => return None,
        };
        Some(Config::Ours {
            interval,
            input_size,
            lookahead,
        })
    }

    fn label(self) -> String {
        match self {
            Config::Ours {
                interval: 1,
                input_size,
                lookahead,
            } => format!(
                "faceposeestimator, detection every frame, input {input_size}{}",
                if lookahead {
                    ", detection one frame ahead (detection-lookahead)"
                } else {
                    ""
                }
            ),
            Config::Ours {
                interval: 0,
                input_size,
                ..
            } => format!("faceposeestimator, tracking (interval 0), input {input_size}"),
            Config::Ours {
                interval,
                input_size,
                ..
            } => {
                format!("faceposeestimator, detection every {interval} frames, input {input_size}")
            }
            Config::FaceDetect => "facedetect (videoconvert → RGB, defaults)".into(),
            Config::MediaPipe => "MediaPipe FaceMesh (python, XNNPACK, tracking)".into(),
        }
    }
}

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Options {
    cases: Vec<Case>,
    runs: usize,
    vga_frames: usize,
    video_frames: Option<usize>,
    video: PathBuf,
    out_dir: PathBuf,
    in_process: bool,
    /// Skip the MediaPipe row.
    no_mediapipe: bool,
    /// Set in a re-executed child: run this once and print the result.
    child: Option<(Case, Config)>,
}

fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        cases: vec![Case::Vga, Case::Video],
        runs: RUNS,
        vga_frames: VGA_FRAMES,
        video_frames: None,
        video: project_dir().join(DEFAULT_VIDEO),
        out_dir: project_dir().join("out"),
        in_process: false,
        no_mediapipe: false,
        child: None,
    };
    let mut it = args.iter();
    let number = |name: &str, v: Option<&String>| -> Result<usize, String> {
        v.and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{name} needs a positive number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => {
                o.runs = 1;
                o.vga_frames = QUICK_VGA_FRAMES;
                o.video_frames = Some(QUICK_VIDEO_FRAMES);
            }
            "--case" => {
                o.cases = match it.next().map(String::as_str) {
                    Some("all") => vec![Case::Vga, Case::Video],
                    Some(c) => vec![Case::parse(c).ok_or_else(|| format!("unknown case {c}"))?],
                    None => return Err("--case needs vga, 1080p or all".into()),
                }
            }
            "--runs" => o.runs = number("--runs", it.next())?,
            "--frames" => o.vga_frames = number("--frames", it.next())?,
            "--video-frames" => o.video_frames = Some(number("--video-frames", it.next())?),
            "--video" => {
                o.video = it.next().ok_or("--video needs a path")?.into();
            }
            "--out" => {
                o.out_dir = it.next().ok_or("--out needs a folder")?.into();
            }
            "--in-process" => o.in_process = true,
            "--no-mediapipe" => o.no_mediapipe = true,
            CHILD_ARG => {
                let case = it.next().and_then(|c| Case::parse(c));
                let config = it.next().and_then(|c| Config::parse(c));
                match (case, config) {
                    (Some(case), Some(config)) => o.child = Some((case, config)),
                    _ => return Err(format!("{CHILD_ARG} needs a case and a configuration")),
                }
            }
            "-h" | "--help" => {
                return Err(
                    "usage: bench [--quick] [--case vga|1080p|all] [--runs N] [--frames N] \
                     [--video PATH] [--video-frames N] [--out DIR] [--in-process] \
                     [--no-mediapipe]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other} (--help)")),
        }
    }
    Ok(o)
}

/// Initialises GStreamer and registers the facepose plugin, once per process.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("initialising GStreamer");
        gstfacepose::plugin_register_static().expect("registering the facepose plugin");
    });
}

// ---------------------------------------------------------------------------------------------
// Input frames

/// Frames in memory, ready to push.
struct Frames {
    info: VideoInfo,
    buffers: Vec<gst::Buffer>,
}

impl Frames {
    fn bytes(&self) -> u64 {
        self.buffers.iter().map(|b| b.size() as u64).sum()
    }
}

/// Position along a line bouncing between 0 and `range`.
fn bounce(t: u32, range: u32) -> u32 {
    if range == 0 {
        return 0;
    }
    let p = t % (2 * range);
    if p <= range { p } else { 2 * range - p }
}

/// Fills an I420 frame from packed RGB (BT.601, limited range; chroma averaged over 2×2).
fn rgb_to_i420(
    rgb: &[u8],
    width: usize,
    height: usize,
    frame: &mut VideoFrameRef<&mut gst::BufferRef>,
) {
    let strides: Vec<usize> = frame.plane_stride().iter().map(|s| *s as usize).collect();
    let px = |x: usize, y: usize| {
        let i = (y * width + x) * 3;
        (rgb[i] as i32, rgb[i + 1] as i32, rgb[i + 2] as i32)
    };
    {
        let y_plane = frame.plane_data_mut(0).expect("I420 has a luma plane");
        for y in 0..height {
            for x in 0..width {
                let (r, g, b) = px(x, y);
                y_plane[y * strides[0] + x] = (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8;
            }
        }
    }
    let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
    let mut u = vec![0u8; cw * ch];
    let mut v = vec![0u8; cw * ch];
    for cy in 0..ch {
        for cx in 0..cw {
            let (mut r, mut g, mut b, mut n) = (0, 0, 0, 0);
            for (x, y) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (x, y) = (2 * cx + x, 2 * cy + y);
                if x < width && y < height {
                    let p = px(x, y);
                    (r, g, b, n) = (r + p.0, g + p.1, b + p.2, n + 1);
                }
            }
            let (r, g, b) = (r / n, g / n, b / n);
            u[cy * cw + cx] = (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8;
            v[cy * cw + cx] = (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8;
        }
    }
    for (plane, data) in [(1u32, &u), (2, &v)] {
        let stride = strides[plane as usize];
        let dst = frame.plane_data_mut(plane).expect("I420 has chroma planes");
        for row in 0..ch {
            dst[row * stride..row * stride + cw].copy_from_slice(&data[row * cw..(row + 1) * cw]);
        }
    }
}

/// `n` frames of 640×480 I420: the astronaut picture moving over a gradient.
fn vga_frames(n: usize) -> Result<Frames, String> {
    let path = gstfacepose::engine::default_model_dir().join(SAMPLE_PICTURE);
    let picture = image::open(&path)
        .map_err(|e| format!("cannot decode {}: {e} (run `make models`)", path.display()))?
        .to_rgb8();
    let picture = image::imageops::resize(
        &picture,
        PICTURE_SIDE,
        PICTURE_SIDE,
        image::imageops::FilterType::Triangle,
    );
    let (w, h) = (VGA_WIDTH as usize, VGA_HEIGHT as usize);
    let side = PICTURE_SIDE as usize;
    let background: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).flat_map(move |x| [(40 + x / 8) as u8, (60 + y / 8) as u8, 90]))
        .collect();
    let info = VideoInfo::builder(gst_video::VideoFormat::I420, VGA_WIDTH, VGA_HEIGHT)
        .fps(gst::Fraction::new(VGA_FPS, 1))
        .build()
        .map_err(|e| e.to_string())?;
    let mut buffers = Vec::with_capacity(n);
    let mut canvas = background.clone();
    for i in 0..n as u32 {
        canvas.copy_from_slice(&background);
        let x0 = bounce(i * STEP.0, VGA_WIDTH - PICTURE_SIDE) as usize;
        let y0 = bounce(i * STEP.1, VGA_HEIGHT - PICTURE_SIDE) as usize;
        for (row, src) in picture.as_raw().chunks_exact(side * 3).enumerate() {
            let start = ((y0 + row) * w + x0) * 3;
            canvas[start..start + side * 3].copy_from_slice(src);
        }
        let mut buffer = gst::Buffer::with_size(info.size()).map_err(|e| e.to_string())?;
        {
            let b = buffer.get_mut().expect("a new buffer is writable");
            let mut frame =
                VideoFrameRef::from_buffer_ref_writable(b, &info).map_err(|e| e.to_string())?;
            rgb_to_i420(&canvas, w, h, &mut frame);
        }
        buffers.push(buffer);
    }
    Ok(Frames { info, buffers })
}

/// Every frame of a video file (or the first `limit`), decoded to I420 and copied into plain
/// memory.
fn video_frames(path: &Path, limit: Option<usize>) -> Result<Frames, String> {
    let (pipeline, sink) = frames::play_decoder(path, "I420")?;
    let mut info = None;
    let mut buffers = Vec::new();
    while limit.is_none_or(|l| buffers.len() < l) {
        let Ok(sample) = sink.pull_sample() else {
            break;
        };
        if info.is_none() {
            let caps = sample.caps().ok_or("a sample without caps")?;
            info = Some(VideoInfo::from_caps(caps).map_err(|e| e.to_string())?);
        }
        let buffer = sample.buffer().ok_or("a sample without a buffer")?;
        buffers.push(buffer.copy_deep().map_err(|e| e.to_string())?);
    }
    let error = pipeline.bus().and_then(|bus| {
        bus.pop_filtered(&[gst::MessageType::Error])
            .map(|m| format!("{m:?}"))
    });
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(e) = error {
        return Err(format!("decoding {}: {e}", path.display()));
    }
    match info {
        Some(info) if !buffers.is_empty() => Ok(Frames { info, buffers }),
        _ => Err(format!("no frames decoded from {}", path.display())),
    }
}

// ---------------------------------------------------------------------------------------------
// One run

/// What the element's `FacePoseMeta` says about one frame (fields absent in older builds are
/// `None`).
#[derive(Debug, Clone, Default)]
struct FrameStat {
    detected: Option<bool>,
    detect_ms: Option<f64>,
    landmarks_ms: Option<f64>,
    pose_ms: Option<f64>,
    inference_ms: Option<f64>,
    faces: Option<u32>,
    provider: Option<String>,
}

impl FrameStat {
    fn from_buffer(buffer: &gst::BufferRef) -> Option<FrameStat> {
        let meta =
            gst::meta::CustomMeta::from_buffer(buffer, gstfacepose::meta::FRAME_META).ok()?;
        let s = meta.structure();
        let f = |name: &str| s.get::<f64>(name).ok();
        let detect_ms = f("detect-ms");
        Some(FrameStat {
            // Without the `detected` field, a frame where the detector took time was detected.
            detected: s
                .get::<bool>("detected")
                .ok()
                .or(detect_ms.map(|ms| ms > 0.0)),
            detect_ms,
            landmarks_ms: f("landmarks-ms"),
            pose_ms: f("pose-ms"),
            inference_ms: f("inference-ms"),
            faces: s.get::<u32>("face-count").ok(),
            provider: s.get::<String>("execution-provider").ok(),
        })
    }
}

/// What one run measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunResult {
    pub frames: usize,
    pub seconds: f64,
    /// Frames on which the detector ran (`None`: the meta does not say).
    pub detect_frames: Option<usize>,
    /// Medians per frame; detect over the frames the detector ran on.
    pub detect_ms: Option<f64>,
    pub landmarks_ms: Option<f64>,
    pub pose_ms: Option<f64>,
    /// Median `inference-ms` of the frames with and without detection.
    pub detect_frame_ms: Option<f64>,
    pub tracked_frame_ms: Option<f64>,
    pub faces_per_frame: Option<f64>,
    /// Frames on which a face was found (MediaPipe's row).
    pub face_frames: Option<usize>,
    /// VmHWM of the process at the end of the run, KiB.
    pub peak_kib: Option<u64>,
    pub input_bytes: u64,
    pub provider: Option<String>,
    pub ort_version: Option<String>,
    pub notes: Vec<String>,
}

impl RunResult {
    pub fn fps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.frames as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// One line of `key=value` pairs (`-` for none).
    fn to_line(&self) -> String {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v}"));
        let s = |v: &Option<String>| {
            v.as_deref()
                .map_or("-".to_string(), |v| v.replace(char::is_whitespace, "_"))
        };
        format!(
            "{RESULT_PREFIX} frames={} seconds={} detect_frames={} detect_ms={} landmarks_ms={} \
             pose_ms={} detect_frame_ms={} tracked_frame_ms={} faces_per_frame={} face_frames={} \
             peak_kib={} input_bytes={} provider={} ort_version={}",
            self.frames,
            self.seconds,
            self.detect_frames.map_or("-".into(), |v| v.to_string()),
            f(self.detect_ms),
            f(self.landmarks_ms),
            f(self.pose_ms),
            f(self.detect_frame_ms),
            f(self.tracked_frame_ms),
            f(self.faces_per_frame),
            self.face_frames.map_or("-".into(), |v| v.to_string()),
            self.peak_kib.map_or("-".into(), |v| v.to_string()),
            self.input_bytes,
            s(&self.provider),
            s(&self.ort_version),
        )
    }

    fn from_line(line: &str) -> Option<RunResult> {
        let rest = line.strip_prefix(RESULT_PREFIX)?;
        let mut r = RunResult::default();
        for pair in rest.split_whitespace() {
            let (key, value) = pair.split_once('=')?;
            let opt = (value != "-").then_some(value);
            let f = || opt.and_then(|v| v.parse::<f64>().ok());
            match key {
                "frames" => r.frames = value.parse().ok()?,
                "seconds" => r.seconds = value.parse().ok()?,
                "detect_frames" => r.detect_frames = opt.and_then(|v| v.parse().ok()),
                "detect_ms" => r.detect_ms = f(),
                "landmarks_ms" => r.landmarks_ms = f(),
                "pose_ms" => r.pose_ms = f(),
                "detect_frame_ms" => r.detect_frame_ms = f(),
                "tracked_frame_ms" => r.tracked_frame_ms = f(),
                "faces_per_frame" => r.faces_per_frame = f(),
                "face_frames" => r.face_frames = opt.and_then(|v| v.parse().ok()),
                "peak_kib" => r.peak_kib = opt.and_then(|v| v.parse().ok()),
                "input_bytes" => r.input_bytes = value.parse().ok()?,
                "provider" => r.provider = opt.map(String::from),
                "ort_version" => r.ort_version = opt.map(String::from),
                _ => {}
            }
        }
        Some(r)
    }
}

fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// A `kB` line of /proc/self/status, in KiB.
fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets the process's peak resident size (VmHWM) to its current size.
fn reset_peak() -> Result<(), String> {
    std::fs::write("/proc/self/clear_refs", "5").map_err(|e| e.to_string())
}

/// The ONNX Runtime this process loaded: the version in the library's file name (its build
/// information says only `git-branch=HEAD` for the PyPI build) and the commit.
fn ort_version() -> Option<String> {
    let (_, path) = gstfacepose::engine::runtime::environment(None).ok()?;
    let path = path.canonicalize().unwrap_or(path);
    let name = path.file_name()?.to_string_lossy().into_owned();
    let version = name
        .split_once(".so.")
        .map_or(name.clone(), |(_, v)| v.to_string());
    let commit = ort::info()
        .split([',', ' '])
        .find_map(|p| p.strip_prefix("git-commit-id="))
        .map(String::from);
    Some(match commit {
        Some(c) => format!("{version}_(commit_{c})"),
        None => version,
    })
}

/// Sets a property from its string form when the element has it; otherwise notes that it was
/// skipped.
fn set_if_present(element: &gst::Element, name: &str, value: &str, notes: &mut Vec<String>) {
    if element.find_property(name).is_some() {
        element.set_property_from_str(name, value);
    } else {
        notes.push(format!(
            "{} has no property `{name}` in this build: not set (its default applies)",
            element
                .factory()
                .map_or("element".into(), |f| f.name().to_string())
        ));
    }
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| format!("cannot make {factory}: {e}"))
}

/// The input frames of `case`.
fn case_frames(case: Case, o: &Options) -> Result<Frames, String> {
    match case {
        Case::Vga => vga_frames(o.vga_frames),
        Case::Video => video_frames(&o.video, o.video_frames),
    }
}

/// Makes the frames of `case`, then pushes them once through `config` and measures.
pub fn run_once(case: Case, config: Config, o: &Options) -> Result<RunResult, String> {
    init();
    if config == Config::MediaPipe {
        return Err("MediaPipe runs in a python process of its own, not in this one".into());
    }
    let frames = case_frames(case, o)?;
    let mut notes = Vec::new();
    if let Err(e) = reset_peak() {
        notes.push(format!(
            "cannot reset the peak memory ({e}): it includes the preparation of the frames"
        ));
    }
    let input_bytes = frames.bytes();
    let frame_size = frames.buffers.first().map_or(0, |b| b.size() as u64);
    let caps = frames.info.to_caps().map_err(|e| e.to_string())?;
    let fps = frames.info.fps();
    let duration = (fps.numer() > 0)
        .then(|| gst::ClockTime::SECOND.mul_div_floor(fps.denom() as u64, fps.numer() as u64))
        .flatten();
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder()
        .caps(&caps)
        .format(gst::Format::Time)
        .block(true)
        .max_bytes(QUEUED_FRAMES * frame_size.max(1))
        .build();
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("signal-handoffs", true)
        .build()
        .map_err(|e| format!("cannot make fakesink: {e}"))?;
    let mut chain: Vec<gst::Element> = vec![src.clone().upcast()];
    match config {
        Config::Ours {
            interval,
            input_size,
            lookahead,
        } => {
            let e = make("faceposeestimator")?;
            set_if_present(&e, "detection-interval", &interval.to_string(), &mut notes);
            if lookahead {
                set_if_present(&e, "detection-lookahead", "true", &mut notes);
            }
            set_if_present(
                &e,
                "detector-input-size",
                &input_size.to_string(),
                &mut notes,
            );
            chain.push(e);
        }
        Config::FaceDetect => {
            chain.push(make("videoconvert")?);
            chain.push(make("facedetect")?);
        }
        Config::MediaPipe => unreachable!("MediaPipe was turned away above"),
    }
    chain.push(sink.clone());
    pipeline
        .add_many(&chain)
        .map_err(|e| format!("cannot build the pipeline: {e}"))?;
    gst::Element::link_many(&chain).map_err(|e| format!("cannot link the pipeline: {e}"))?;

    let stats = Arc::new(Mutex::new(Vec::<Option<FrameStat>>::with_capacity(
        frames.buffers.len(),
    )));
    let collected = stats.clone();
    sink.connect("handoff", false, move |args| {
        if let Ok(buffer) = args[1].get::<gst::Buffer>() {
            collected
                .lock()
                .unwrap()
                .push(FrameStat::from_buffer(&buffer));
        }
        None
    });

    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        let why = pipeline
            .bus()
            .and_then(|bus| bus.pop_filtered(&[gst::MessageType::Error]))
            .map_or(String::new(), |m| match m.view() {
                gst::MessageView::Error(err) => format!(": {}", err.error()),
                _ => String::new(),
            });
        let _ = pipeline.set_state(gst::State::Null);
        return Err(format!("cannot start the pipeline ({e}){why}"));
    }
    // Models load on the way to PAUSED, inside set_state: the clock starts after it.
    let started = Instant::now();
    let buffers = frames.buffers;
    let pusher = std::thread::spawn(move || {
        for (i, mut buffer) in buffers.into_iter().enumerate() {
            if let Some(d) = duration {
                let b = buffer.make_mut();
                b.set_pts(d * i as u64);
                b.set_duration(d);
            }
            if src.push_buffer(buffer).is_err() {
                break;
            }
        }
        let _ = src.end_of_stream();
    });

    let bus = pipeline.bus().ok_or("a pipeline without a bus")?;
    let mut error = None;
    let (mut facedetect_frames, mut facedetect_faces) = (0usize, 0usize);
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(..) => break,
            gst::MessageView::Error(e) => {
                error = Some(format!(
                    "{}: {} ({})",
                    e.src()
                        .map_or("pipeline".into(), |s| s.path_string().to_string()),
                    e.error(),
                    e.debug().unwrap_or_default()
                ));
                break;
            }
            gst::MessageView::Element(m) => {
                if let Some(s) = m.structure()
                    && s.name() == "facedetect"
                {
                    facedetect_frames += 1;
                    facedetect_faces += s.get::<gst::List>("faces").map_or(0, |l| l.len());
                }
            }
            _ => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak_kib = status_kib("VmHWM");
    let _ = pipeline.set_state(gst::State::Null);
    let _ = pusher.join();
    if let Some(e) = error {
        return Err(e);
    }

    let stats = std::mem::take(&mut *stats.lock().unwrap());
    let metas: Vec<FrameStat> = stats.iter().flatten().cloned().collect();
    let detected = |f: &FrameStat| f.detected.unwrap_or(true);
    let known = metas.iter().any(|f| f.detected.is_some());
    let mut r = RunResult {
        frames: stats.len(),
        seconds,
        peak_kib,
        input_bytes,
        notes,
        ..Default::default()
    };
    if let Config::Ours { .. } = config {
        if metas.is_empty() {
            r.notes
                .push("no FacePoseMeta on the buffers: no per-stage figures".into());
        }
        r.detect_frames = known.then(|| metas.iter().filter(|f| detected(f)).count());
        r.detect_ms = median(
            metas
                .iter()
                .filter(|f| detected(f))
                .filter_map(|f| f.detect_ms),
        );
        r.landmarks_ms = median(metas.iter().filter_map(|f| f.landmarks_ms));
        r.pose_ms = median(metas.iter().filter_map(|f| f.pose_ms));
        r.detect_frame_ms = median(
            metas
                .iter()
                .filter(|f| detected(f))
                .filter_map(|f| f.inference_ms),
        );
        r.tracked_frame_ms = median(
            metas
                .iter()
                .filter(|f| !detected(f))
                .filter_map(|f| f.inference_ms),
        );
        let faces: Vec<f64> = metas
            .iter()
            .filter_map(|f| f.faces.map(f64::from))
            .collect();
        if !faces.is_empty() {
            r.faces_per_frame = Some(faces.iter().sum::<f64>() / faces.len() as f64);
        }
        r.provider = metas.iter().find_map(|f| f.provider.clone());
        r.ort_version = ort_version();
    } else if facedetect_frames > 0 {
        r.faces_per_frame = Some(facedetect_faces as f64 / facedetect_frames as f64);
    }
    Ok(r)
}

/// Runs once in a fresh process (this program with [`CHILD_ARG`]); its notes come back too.
fn run_child(case: Case, config: Config, o: &Options) -> Result<RunResult, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.arg(CHILD_ARG)
        .arg(case.id())
        .arg(config.id())
        .arg("--frames")
        .arg(o.vga_frames.to_string())
        .arg("--video")
        .arg(&o.video)
        .stdin(Stdio::null());
    if let Some(n) = o.video_frames {
        cmd.arg("--video-frames").arg(n.to_string());
    }
    child_result(&mut cmd)
}

/// Runs `cmd` and reads its [`RESULT_PREFIX`] line and [`NOTE_PREFIX`] notes.
fn child_result(cmd: &mut Command) -> Result<RunResult, String> {
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let result = stdout.lines().find_map(RunResult::from_line);
    match result {
        Some(mut r) if output.status.success() => {
            r.notes.extend(
                stdout
                    .lines()
                    .filter_map(|l| l.strip_prefix(NOTE_PREFIX))
                    .map(|n| n.trim().to_string()),
            );
            Ok(r)
        }
        _ => {
            let tail: Vec<&str> = stderr
                .lines()
                .chain(stdout.lines())
                .filter(|l| !l.trim().is_empty())
                .collect();
            let tail = tail[tail.len().saturating_sub(8)..].join("\n    ");
            Err(format!("the run failed ({}):\n    {tail}", output.status))
        }
    }
}

/// MediaPipe's version as its python reports it, or why it cannot run (then its row is skipped).
fn mediapipe_setup(o: &Options) -> Result<String, String> {
    if o.no_mediapipe {
        return Err("MediaPipe: skipped (--no-mediapipe)".into());
    }
    if o.in_process {
        return Err(
            "MediaPipe: skipped with --in-process (it runs in a python process of its own)".into(),
        );
    }
    let not_set_up = |why: String| {
        format!(
            "MediaPipe is not set up ({why}): the comparison is skipped (`make bench` runs \
             scripts/bench.sh, which makes the bench-only virtual environment .cache/bench-venv \
             from scripts/bench-requirements.txt, mediapipe==0.10.21)"
        )
    };
    let python = project_dir().join(MEDIAPIPE_PYTHON);
    if !python.exists() {
        return Err(not_set_up(format!("no {MEDIAPIPE_PYTHON}")));
    }
    let output = Command::new(&python)
        .arg(project_dir().join(MEDIAPIPE_SCRIPT))
        .arg("--check")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| not_set_up(format!("cannot run {}: {e}", python.display())))?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() || stdout.is_empty() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        return Err(not_set_up(format!(
            "{MEDIAPIPE_SCRIPT} --check: {}",
            last.unwrap_or("no output")
        )));
    }
    Ok(stdout)
}

/// A case's frames as packed RGB, one after the other in a raw file, for MediaPipe; the file
/// is removed when this is dropped.
struct RgbFile {
    path: PathBuf,
    width: u32,
    height: u32,
    count: usize,
}

impl Drop for RgbFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Makes the frames of `case` as our element gets them (I420), converts them to RGB with
/// GStreamer's video converter (as videoconvert would) and writes them into a temporary file.
fn write_rgb(case: Case, o: &Options) -> Result<RgbFile, String> {
    let frames = case_frames(case, o)?;
    let (width, height) = (frames.info.width(), frames.info.height());
    let rgb_info = VideoInfo::builder(gst_video::VideoFormat::Rgb, width, height)
        .fps(frames.info.fps())
        .interlace_mode(frames.info.interlace_mode())
        .build()
        .map_err(|e| e.to_string())?;
    let converter = gst_video::VideoConverter::new(&frames.info, &rgb_info, None)
        .map_err(|e| format!("cannot convert to RGB: {e}"))?;
    let dir = std::env::temp_dir().join(format!("facepose-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file = RgbFile {
        path: dir.join(format!("{}.rgb", case.id())),
        width,
        height,
        count: frames.buffers.len(),
    };
    let cannot_write = |e: std::io::Error| format!("cannot write {}: {e}", file.path.display());
    let mut writer =
        std::io::BufWriter::new(std::fs::File::create(&file.path).map_err(cannot_write)?);
    let mut rgb = gst::Buffer::with_size(rgb_info.size()).map_err(|e| e.to_string())?;
    let row_bytes = width as usize * 3;
    for buffer in &frames.buffers {
        let input = VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), &frames.info)
            .map_err(|e| e.to_string())?;
        let b = rgb.get_mut().expect("the RGB buffer is ours alone");
        let mut output =
            VideoFrameRef::from_buffer_ref_writable(b, &rgb_info).map_err(|e| e.to_string())?;
        converter.frame_ref(&input, &mut output);
        let stride = output.plane_stride()[0] as usize;
        let data = output.plane_data(0).map_err(|e| e.to_string())?;
        for row in 0..height as usize {
            writer
                .write_all(&data[row * stride..row * stride + row_bytes])
                .map_err(cannot_write)?;
        }
    }
    writer.flush().map_err(cannot_write)?;
    Ok(file)
}

/// One run of `scripts/bench_mediapipe.py` on the RGB frames, in a fresh python process.
fn run_mediapipe(case: Case, rgb: &RgbFile) -> Result<RunResult, String> {
    let mut cmd = Command::new(project_dir().join(MEDIAPIPE_PYTHON));
    cmd.arg(project_dir().join(MEDIAPIPE_SCRIPT))
        .arg("--frames")
        .arg(&rgb.path)
        .args([
            "--width".to_string(),
            rgb.width.to_string(),
            "--height".to_string(),
            rgb.height.to_string(),
            "--count".to_string(),
            rgb.count.to_string(),
            "--max-faces".to_string(),
            case.mediapipe_max_faces().to_string(),
        ])
        .stdin(Stdio::null());
    child_result(&mut cmd)
}

// ---------------------------------------------------------------------------------------------
// The report

/// A configuration's runs.
struct Row {
    case: Case,
    config: Config,
    runs: Vec<RunResult>,
    error: Option<String>,
}

impl Row {
    fn fps(&self) -> Option<f64> {
        median(self.runs.iter().map(RunResult::fps))
    }

    fn stat(&self, f: impl Fn(&RunResult) -> Option<f64>) -> Option<f64> {
        median(self.runs.iter().filter_map(f))
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// facedetect's settings as this machine has them, or why it cannot run.
fn facedetect_defaults() -> Result<String, String> {
    let install = format!(
        "facedetect is not installed: the comparison is skipped (Debian 12, as root: \
         apt-get install -y --no-install-recommends {FACEDETECT_PACKAGES}; `make bench` does it)"
    );
    let e = gst::ElementFactory::make("facedetect")
        .build()
        .map_err(|_| install)?;
    let profile: String = e.property("profile");
    if !Path::new(&profile).exists() {
        return Err(format!(
            "facedetect's face cascade {profile} is missing: the comparison is skipped (Debian \
             package opencv-data: apt-get install -y --no-install-recommends opencv-data)"
        ));
    }
    let int = |name: &str| e.property::<i32>(name);
    let missing: Vec<String> = ["nose-profile", "mouth-profile", "eyes-profile"]
        .iter()
        .map(|p| e.property::<String>(p))
        .filter(|p| !Path::new(p).exists())
        .map(|p| {
            Path::new(&p)
                .file_name()
                .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
        })
        .collect();
    let missing = if missing.is_empty() {
        String::new()
    } else {
        format!(
            "; the nose, mouth and eye-pair cascades it also loads by default are not installed \
             ({}; OpenCV prints an error for each), so it detects faces only",
            missing.join(", ")
        )
    };
    Ok(format!(
        "profile {}, min-size {}×{}, scale-factor {}, min-neighbors {}, min-stddev {}, \
         display {}, updates {}",
        Path::new(&profile)
            .file_name()
            .map_or(profile.clone(), |n| n.to_string_lossy().into_owned()),
        int("min-size-width"),
        int("min-size-height"),
        e.property::<f64>("scale-factor"),
        int("min-neighbors"),
        int("min-stddev"),
        e.property::<bool>("display"),
        e.property_value("updates")
            .serialize()
            .map_or("?".into(), |s| s.to_string()),
    ) + &missing)
}

fn case_label(case: Case, rows: &[Row]) -> String {
    let frames = rows
        .iter()
        .filter(|r| r.case == case)
        .flat_map(|r| r.runs.first())
        .map(|r| r.frames)
        .next();
    let n = frames.map_or(String::new(), |n| format!(", {n} frames"));
    match case {
        Case::Vga => format!("640×480, 1 face{n}"),
        Case::Video => format!("1080p, several faces{n}"),
    }
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

/// A Markdown table with padded columns.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut s = line(header.iter().map(|h| h.to_string()).collect());
    s += &line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        s += &line(r.clone());
    }
    s
}

fn report(
    rows: &[Row],
    o: &Options,
    facedetect: &Result<String, String>,
    mediapipe: &Result<String, String>,
) -> String {
    let mut s = String::new();
    let ours = rows
        .iter()
        .filter(|r| r.config.is_ours())
        .flat_map(|r| &r.runs)
        .find(|r| r.provider.is_some() || r.ort_version.is_some());
    s += "# faceposeestimator benchmark\n\n";
    s += &format!(
        "- machine: {}, {} logical CPUs, load average {} at the end\n",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    s += &format!(
        "- GStreamer {}.{}.{}; ONNX Runtime {} ({} execution provider)\n",
        gst::version().0,
        gst::version().1,
        gst::version().2,
        ours.and_then(|r| r.ort_version.as_deref())
            .map_or("?".into(), |v| v.replace('_', " ")),
        ours.and_then(|r| r.provider.clone())
            .unwrap_or_else(|| "?".into()),
    );
    s += &format!(
        "- input: I420 frames in memory pushed through appsrc (no decoding measured) to \
         fakesink sync=false; fps = frames / wall time from the first push to EOS, median of {} \
         run(s), each in a fresh process{}\n",
        o.runs,
        if o.in_process {
            " (here: all in this process)"
        } else {
            ""
        }
    );
    s += "- per-stage ms: median per frame of the FacePoseMeta fields (detect: frames where the \
          detector ran); frame ms: `inference-ms` on detection / tracked frames; peak: VmHWM of \
          the run's process, which holds the input frames (input MiB)\n";
    match facedetect {
        Ok(d) => {
            s += &format!(
                "- facedetect (OpenCV Haar cascade) takes RGB only: appsrc ! videoconvert ! \
                 facedetect, the conversion counted; its defaults: {d}\n"
            )
        }
        Err(e) => s += &format!("- {e}\n"),
    }
    match mediapipe {
        Ok(v) => {
            s += &format!(
                "- MediaPipe: the legacy FaceMesh solution of {v}, in the bench-only virtual \
                 environment .cache/bench-venv; TFLite with XNNPACK on the CPU; \
                 static_image_mode=False (its own tracking: its detector runs while it has fewer \
                 than max_num_faces faces), max_num_faces 1 (640×480) and {} (1080p), \
                 refine_landmarks=False, min detection and tracking confidence 0.5. The same \
                 frames, converted to RGB by GStreamer's video converter (not timed), read into \
                 memory by scripts/bench_mediapipe.py; fps = frames / wall time of `process()` \
                 over them (graph set-up not timed), each run a fresh python process; faces/frame: \
                 the faces FaceMesh returned; peak: the python process's VmHWM\n",
                MEDIAPIPE_VIDEO_MAX_FACES
            )
        }
        Err(e) => s += &format!("- {e}\n"),
    }
    s += "\n";

    let mib = |kib: f64| kib / 1024.0;
    let mut cells = Vec::new();
    for r in rows {
        let runs: Vec<String> = r.runs.iter().map(|x| format!("{:.1}", x.fps())).collect();
        let mut c = vec![
            case_label(r.case, rows),
            r.config.label(),
            cell(r.fps(), 1),
            runs.join(" "),
        ];
        if let Some(e) = &r.error {
            c[2] = "failed".into();
            c[3] = e.lines().next().unwrap_or_default().to_string();
        }
        let detect_frames = r
            .runs
            .first()
            .and_then(|x| x.detect_frames.map(|d| format!("{d}/{}", x.frames)));
        c.extend([
            detect_frames.unwrap_or_else(|| "–".into()),
            cell(r.stat(|x| x.detect_ms), 1),
            cell(r.stat(|x| x.landmarks_ms), 1),
            cell(r.stat(|x| x.pose_ms), 2),
            cell(r.stat(|x| x.detect_frame_ms), 1),
            cell(r.stat(|x| x.tracked_frame_ms), 1),
            cell(r.stat(|x| x.faces_per_frame), 2),
            cell(
                r.runs
                    .iter()
                    .filter_map(|x| x.peak_kib)
                    .max()
                    .map(|k| mib(k as f64)),
                0,
            ),
            cell(
                r.runs
                    .first()
                    .map(|x| x.input_bytes as f64 / (1024.0 * 1024.0)),
                0,
            ),
        ]);
        cells.push(c);
    }
    s += "## Results\n\n";
    s += &table(
        &[
            "case",
            "configuration",
            "fps",
            "fps of each run",
            "detector ran",
            "detect ms",
            "landmarks ms",
            "pose ms",
            "frame ms (detect)",
            "frame ms (tracked)",
            "faces/frame",
            "peak MiB",
            "input MiB",
        ],
        &cells,
    );

    let fps_of = |case: Case, config: Config| {
        rows.iter()
            .find(|r| r.case == case && r.config == config && r.error.is_none())
            .and_then(Row::fps)
    };
    let ratio = |a: Option<f64>, b: Option<f64>| {
        a.zip(b)
            .map_or("–".into(), |(a, b)| format!("{:.2}×", a / b))
    };
    let mut ratios = Vec::new();
    for case in &o.cases {
        let facedetect = fps_of(*case, Config::FaceDetect);
        let mediapipe = fps_of(*case, Config::MediaPipe);
        for r in rows
            .iter()
            .filter(|r| r.case == *case && r.config.is_ours())
        {
            let ours = fps_of(*case, r.config);
            ratios.push(vec![
                case_label(*case, rows),
                r.config.label(),
                cell(ours, 1),
                cell(facedetect, 1),
                ratio(ours, facedetect),
                cell(mediapipe, 1),
                ratio(ours, mediapipe),
            ]);
        }
    }
    s += "\n## Against facedetect and MediaPipe (same frames, same run)\n\n";
    s += &table(
        &[
            "case",
            "ours",
            "ours fps",
            "facedetect fps",
            "ours / facedetect",
            "MediaPipe fps",
            "ours / MediaPipe",
        ],
        &ratios,
    );
    let mut found = String::new();
    for r in rows
        .iter()
        .filter(|r| r.config == Config::MediaPipe && r.error.is_none())
    {
        if let Some(x) = r.runs.first() {
            let ours = rows
                .iter()
                .find(|t| {
                    t.case == r.case
                        && t.config
                            == Config::Ours {
                                interval: 0,
                                input_size: 640,
                                lookahead: false,
                            }
                })
                .and_then(|t| t.stat(|x| x.faces_per_frame));
            found += &format!(
                "- {}: MediaPipe FaceMesh (max_num_faces {}) found faces on {} of {} frames, {} \
                 faces per frame (our default tracking: {}){}\n",
                case_label(r.case, rows),
                r.case.mediapipe_max_faces(),
                x.face_frames.map_or("?".into(), |n| n.to_string()),
                x.frames,
                cell(x.faces_per_frame, 2),
                cell(ours, 2),
                if x.face_frames == Some(0) {
                    ": its detector (BlazeFace's short-range model, for faces within about 2 m \
                     of the camera) finds none of these faces, so it runs only that detector on \
                     every frame"
                } else {
                    ""
                }
            );
        }
    }
    if !found.is_empty() {
        s += "\n";
        s += &found;
    }

    let verdict = |v: Option<f64>, target: f64| match v {
        Some(v) if v >= target => format!("{v:.1}: met"),
        Some(v) => format!("{v:.1}: below"),
        None => "not measured".into(),
    };
    let tracking = |case, input_size| {
        fps_of(
            case,
            Config::Ours {
                interval: 0,
                input_size,
                lookahead: false,
            },
        )
    };
    let versus =
        |case: Case, peer: Config, target: f64| match (tracking(case, 640), fps_of(case, peer)) {
            (Some(a), Some(b)) => format!(
                "{:.2}×: {}",
                a / b,
                if a / b >= target { "met" } else { "below" }
            ),
            _ => "not measured".into(),
        };
    let faster = |case: Case| versus(case, Config::FaceDetect, 1.0);
    let every_frame_320 = |lookahead| {
        fps_of(
            Case::Vga,
            Config::Ours {
                interval: 1,
                input_size: 320,
                lookahead,
            },
        )
    };
    let targets = vec![
        vec![
            format!("640×480 tracking (input 640) ≥ {TARGET_VGA_TRACKING_FPS} fps"),
            verdict(tracking(Case::Vga, 640), TARGET_VGA_TRACKING_FPS),
        ],
        vec![
            format!("640×480 detection every frame at input 320 ≥ {TARGET_VGA_DETECT_320_FPS} fps"),
            verdict(every_frame_320(false), TARGET_VGA_DETECT_320_FPS),
        ],
        vec![
            format!(
                "the same with detection-lookahead=true (one frame more latency) ≥ \
                 {TARGET_VGA_DETECT_320_FPS} fps"
            ),
            verdict(every_frame_320(true), TARGET_VGA_DETECT_320_FPS),
        ],
        vec![
            format!("1080p several faces, tracking ≥ {TARGET_1080P_TRACKING_FPS} fps"),
            verdict(tracking(Case::Video, 640), TARGET_1080P_TRACKING_FPS),
        ],
        vec![
            "640×480 tracking faster than facedetect".into(),
            faster(Case::Vga),
        ],
        vec![
            "1080p tracking faster than facedetect".into(),
            faster(Case::Video),
        ],
        vec![
            format!(
                "640×480 tracking (input 640) ≥ {TARGET_VGA_VS_MEDIAPIPE}× MediaPipe FaceMesh's fps"
            ),
            versus(Case::Vga, Config::MediaPipe, TARGET_VGA_VS_MEDIAPIPE),
        ],
    ];
    s += "\n## Targets (CPU)\n\n";
    s += &table(&["target", "measured"], &targets);

    let mut notes: Vec<String> = Vec::new();
    for r in rows {
        for n in r.runs.iter().flat_map(|x| &x.notes) {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
        if let Some(e) = &r.error {
            notes.push(format!(
                "{} / {}: {e}",
                case_label(r.case, rows),
                r.config.label()
            ));
        }
    }
    if !notes.is_empty() {
        s += "\n## Notes\n\n";
        for n in notes {
            s += &format!("- {n}\n");
        }
    }
    s
}

/// The whole benchmark (or, with [`CHILD_ARG`], one run). Progress and the report go to `out`;
/// returns an error when a run of our element failed or the arguments are wrong.
pub fn run(args: &[String], out: &mut dyn Write) -> Result<(), String> {
    let o = parse_args(args)?;
    init();
    if let Some((case, config)) = o.child {
        let r = run_once(case, config, &o)?;
        for n in &r.notes {
            writeln!(out, "{NOTE_PREFIX} {n}").map_err(|e| e.to_string())?;
        }
        writeln!(out, "{}", r.to_line()).map_err(|e| e.to_string())?;
        return Ok(());
    }

    let facedetect = facedetect_defaults();
    if let Err(e) = &facedetect {
        writeln!(out, "[bench] {e}").map_err(|e| e.to_string())?;
    }
    let mediapipe = mediapipe_setup(&o);
    if let Err(e) = &mediapipe {
        writeln!(out, "[bench] {e}").map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    let mut rows = Vec::new();
    for &case in &o.cases {
        if case == Case::Video && !o.video.exists() {
            writeln!(
                out,
                "[bench] {} is missing: the 1080p case is skipped",
                o.video.display()
            )
            .map_err(|e| e.to_string())?;
            continue;
        }
        for config in case.configs() {
            if (config == Config::FaceDetect && facedetect.is_err())
                || (config == Config::MediaPipe && mediapipe.is_err())
            {
                continue;
            }
            let mut row = Row {
                case,
                config,
                runs: Vec::new(),
                error: None,
            };
            let rgb = if config == Config::MediaPipe {
                match write_rgb(case, &o) {
                    Ok(f) => {
                        writeln!(
                            out,
                            "[bench] {} | {}: {} frames written as RGB to {}",
                            case.id(),
                            config.label(),
                            f.count,
                            f.path.display()
                        )
                        .map_err(|e| e.to_string())?;
                        Some(f)
                    }
                    Err(e) => {
                        writeln!(out, "[bench] {} | {}: {e}", case.id(), config.label())
                            .map_err(|e| e.to_string())?;
                        row.error = Some(e);
                        rows.push(row);
                        continue;
                    }
                }
            } else {
                None
            };
            for i in 0..o.runs {
                let t = Instant::now();
                let result = match &rgb {
                    Some(f) => run_mediapipe(case, f),
                    None if o.in_process => run_once(case, config, &o),
                    None => run_child(case, config, &o),
                };
                match result {
                    Ok(r) => {
                        writeln!(
                            out,
                            "[bench] {} | {} | run {}/{}: {:.1} fps ({} frames in {:.1} s; {:.0} s with set-up)",
                            case.id(),
                            config.label(),
                            i + 1,
                            o.runs,
                            r.fps(),
                            r.frames,
                            r.seconds,
                            t.elapsed().as_secs_f64()
                        )
                        .map_err(|e| e.to_string())?;
                        row.runs.push(r);
                    }
                    Err(e) => {
                        writeln!(out, "[bench] {} | {}: {e}", case.id(), config.label())
                            .map_err(|e| e.to_string())?;
                        row.error = Some(e);
                        break;
                    }
                }
                out.flush().map_err(|e| e.to_string())?;
            }
            rows.push(row);
        }
    }

    let text = report(&rows, &o, &facedetect, &mediapipe);
    writeln!(out, "\n{text}").map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&o.out_dir)
        .map_err(|e| format!("cannot create {}: {e}", o.out_dir.display()))?;
    let md = o.out_dir.join("bench.md");
    std::fs::write(&md, &text).map_err(|e| format!("cannot write {}: {e}", md.display()))?;
    writeln!(
        out,
        "[bench] written {} ({:.0} s in all)",
        md.display(),
        started.elapsed().as_secs_f64()
    )
    .map_err(|e| e.to_string())?;

    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.error.is_some() && r.config.is_ours())
        .map(|r| format!("{} / {}", r.case.id(), r.config.label()))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failed.join(", ")))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut stdout = std::io::stdout();
    if let Err(e) = run(&args, &mut stdout) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}
