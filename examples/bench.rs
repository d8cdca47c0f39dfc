// SPDX-License-Identifier: MPL-2.0
//! `make bench`: the speed of `faceposeestimator` on the CPU, and of its peers on the same frames
//! in the same run: upstream's `facedetect` (Debian's gstreamer1.0-opencv) and MediaPipe's legacy
//! FaceMesh; beside each speed, how many faces each found.
//!
//! ```text
//! cargo run --release --example bench [-- --quick] [--case shots|crop|1080p|all] [--runs N]
//!     [--stills N] [--crop-frames N] [--video-frames N] [--images DIR] [--video PATH]
//!     [--out DIR] [--in-process] [--no-mediapipe]
//! ```
//!
//! Cases (real faces, all from `../shared`):
//! - `shots`: "AFLW2000 shots": the first `--stills` (30) of `../shared/data/aflw2000/images/*.jpg`
//!   in file-name order, each 450×450 still scaled to 480×480 and centred on a 640×480 mid-grey
//!   canvas, each held for 10 frames, 30 fps (300 frames): a scene cut every 10 frames, a new face
//!   each time, many turned far (profiles);
//! - `crop`: a 640×480 window of `../shared/videos/multiface_1080p.mp4` (105 frames, 25 fps, a
//!   crowd walking toward the camera) at left [`CROP_LEFT`] = 168, top [`CROP_TOP`] = 440, cut by
//!   GStreamer's `videocrop` in the decoding pipeline. The window follows one walking person (the
//!   red-haired young man, tracked as face 2 by `detection-interval=1`): his face (73 → 118 px
//!   wide as he comes closer, moving from x 745 to 338 of the 1080p frame) is inside it on all
//!   105 frames; beside him a woman's face is inside it on most frames, two more faces for the
//!   first 25 frames, and part of one at the right edge for the last 25 (on the 105 cropped frames
//!   the every-frame reference finds 1 to 4 faces, 2.4 a frame). Chosen from the every-frame
//!   reference's boxes (`faceposeestimator detection-interval=1 json-location=…` on the whole
//!   video): of the windows that hold one face whole on every frame, the one with the fewest
//!   faces cut by an edge (a window holding a single face throughout exists only around distant,
//!   standing faces);
//! - `1080p`: several faces: every frame of the same video.
//!
//! When `../shared` (the stills, the video) is missing, the case is skipped with a printed note;
//! with `CI=true` the bench fails instead.
//!
//! Our configurations: the element's defaults (only the input set: `detection-interval=0`,
//! `async-detection=auto`, which for this non-live appsrc is the pipelined mode): the row that
//! matters; detection on every frame (`detection-interval=1`) at detector input 640: the
//! every-frame reference that the faces of every row are compared with; on `shots` and `crop`
//! the same at input 320; and tracking (`detection-interval=0`) with `async-detection=false`
//! (in line: detection frames wait for the detector) and `async-detection=true` (the detector in
//! the background, frames never wait: faces join late, and how late depends on the speed). On
//! `shots` and `crop` two more rows ask both tools for the same faces: ours with `max-faces=1`
//! (MediaPipe's row asks for one face there), and MediaPipe with `max_num_faces` equal to our
//! default `max-faces` (16; its detector then runs on every frame with fewer faces). A table after
//! the comparison pairs them (one face: ours `max-faces=1` and MediaPipe's row; every face: our
//! defaults and MediaPipe at 16); the targets stay on the defaults against MediaPipe's row.
//!
//! Every frame is made (or decoded) into memory first, as I420, so no decoding is measured;
//! then `appsrc ! faceposeestimator ! fakesink sync=false` (for facedetect, which takes RGB only:
//! `appsrc ! videoconvert ! facedetect ! fakesink sync=false`, the conversion counted in its
//! time). fps = frames / wall time from the first push to EOS. Each configuration runs `--runs`
//! times (3), each run in a fresh process (this program re-executed with a hidden argument), and
//! the median is reported; per-stage milliseconds are the median per frame of the `FacePoseMeta`
//! fields `detect-ms` (frames where the detector ran), `landmarks-ms` and `pose-ms`; peak memory is
//! the run's process VmHWM (reset once the input frames are in memory, so it holds them, the
//! models and the pipeline; the input's size in brackets). The report is printed and written to
//! `<out>/bench.md` (`out/`).
//!
//! Faces, beside the fps of every row: "frames with a face" (frames with at least one face, of
//! all frames) and "faces/frame" (the mean number of faces per frame; medians over the runs).
//! Ours counts the faces of each output buffer's `FacePoseMeta` (`face-count`; the face ROI metas
//! where it has none), facedetect the `faces` list of its `facedetect` element message of each
//! frame, MediaPipe the length of `multi_face_landmarks` of each frame. A row whose faces, over
//! all its frames, fall short of the every-frame reference's on the same frames by more than 2 %
//! ([`SHORT_OF_REFERENCE`]) is marked `short` in its faces/frame cell, with its share of the
//! reference's faces (a footnote under the table says so). After the tables, the targets:
//! on `shots` and `crop`, the defaults' fps ÷ MediaPipe's (goal ≥ 1.0×, stretch 1.5×) and
//! whether the defaults find a face on at least as many frames as MediaPipe; on `1080p`, the
//! defaults' fps (goal ≥ 80) and their faces as a share of the reference's (goal ≥ 95 %). Figures
//! only: a target missed never fails the run.
//!
//! The MediaPipe row: `mediapipe.solutions.face_mesh.FaceMesh` of PyPI's `mediapipe==0.10.21`
//! (python, TFLite with XNNPACK on the CPU, `static_image_mode=False`: its own tracking, the
//! detector running only while it has fewer faces than `max_num_faces`, 1 for `shots` and `crop`
//! and [`MEDIAPIPE_VIDEO_MAX_FACES`] for `1080p`; `refine_landmarks=False`, detection and tracking
//! confidence 0.5). The bench converts the very I420 frames it feeds our element to packed RGB
//! (GStreamer's video converter), writes them into one raw file in a temporary folder, and runs
//! `scripts/bench_mediapipe.py` on it `--runs` times, each a fresh python process that reads every
//! frame into memory, then times `process()` over them (graph set-up not counted, as our model
//! loading is not); it also counts the faces FaceMesh found on each frame. Its python is
//! `.cache/bench-venv/bin/python`, a bench-only virtual environment that `scripts/bench.sh`
//! (`make bench`) makes from `scripts/bench-requirements.txt`; it is not part of the product nor
//! of `make test`. Without it (or with `--in-process` or `--no-mediapipe`) the row is skipped
//! with a printed note, like facedetect's.
//!
//! `--quick`: one run, 3 stills (30 frames), 20 crop frames and 10 of the video (a smoke test).
//! `--in-process`: runs everything in this process (peak memory is then the whole process's;
//! MediaPipe, which needs a process of its own, is skipped); the smoke test uses it. `--case vga`
//! is still taken, as `shots` (the 640×480 case before the real faces).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::Instant;

use gst::prelude::*;
use gst_video::{VideoFrameExt, VideoFrameRef, VideoInfo};
use gstfacepose::engine::detect::DEFAULT_MAX_FACES;

#[path = "support/frames.rs"]
#[allow(dead_code)]
mod frames;

/// The canvas of `shots` and the window of `crop`.
const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
/// Side of each AFLW2000 still on the canvas, centred.
const STILL_SIDE: u32 = 480;
/// The canvas around the stills (RGB).
const GREY: u8 = 128;
const SHOTS_FPS: i32 = 30;
const STILLS: usize = 30;
/// Frames each still is held for.
const HOLD_FRAMES: usize = 10;
/// The `crop` window's top-left corner in the 1080p video (see the module docs).
const CROP_LEFT: u32 = 168;
const CROP_TOP: u32 = 440;
const RUNS: usize = 3;
const QUICK_STILLS: usize = 3;
const QUICK_CROP_FRAMES: usize = 20;
const QUICK_VIDEO_FRAMES: usize = 10;
/// Relative to the project.
const DEFAULT_VIDEO: &str = "../shared/videos/multiface_1080p.mp4";
const DEFAULT_IMAGES: &str = "../shared/data/aflw2000/images";
/// Frames appsrc may queue ahead of the element.
const QUEUED_FRAMES: u64 = 4;

const CHILD_ARG: &str = "--bench-child";
const RESULT_PREFIX: &str = "BENCH-RESULT";
const NOTE_PREFIX: &str = "BENCH-NOTE";
const FACEDETECT_PACKAGES: &str = "gstreamer1.0-opencv opencv-data";
/// The bench-only virtual environment's python (relative to the project; `scripts/bench.sh`).
const MEDIAPIPE_PYTHON: &str = ".cache/bench-venv/bin/python";
const MEDIAPIPE_SCRIPT: &str = "scripts/bench_mediapipe.py";
/// FaceMesh's `max_num_faces` on the 1080p crowd video (1 on `shots` and `crop`).
const MEDIAPIPE_VIDEO_MAX_FACES: u32 = 10;

/// A row is `short` when its faces fall below the every-frame reference's by more than this.
const SHORT_OF_REFERENCE: f64 = 0.02;
/// Targets on the CPU, from the speed-against-MediaPipe and real-time issues: on `shots` and
/// `crop`, the defaults' fps against MediaPipe FaceMesh's (with at least as many frames with a
/// face), and the stretch goal.
const TARGET_VS_MEDIAPIPE: f64 = 1.0;
const STRETCH_VS_MEDIAPIPE: f64 = 1.5;
/// On `1080p`: the defaults' fps, and their faces as a share of the every-frame reference's.
const TARGET_1080P_FPS: f64 = 80.0;
const TARGET_1080P_FACES: f64 = 0.95;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// AFLW2000 stills, each held for [`HOLD_FRAMES`] frames.
    Shots,
    /// A 640×480 window of the 1080p video.
    Crop,
    /// The 1080p video.
    Video,
}

impl Case {
    const ALL: [Case; 3] = [Case::Shots, Case::Crop, Case::Video];

    fn id(self) -> &'static str {
        match self {
            Case::Shots => "shots",
            Case::Crop => "crop",
            Case::Video => "1080p",
        }
    }

    fn parse(s: &str) -> Option<Case> {
        match s {
            // `vga`: the 640×480 case's name before the real faces.
            "shots" | "vga" => Some(Case::Shots),
            "crop" => Some(Case::Crop),
            "1080p" | "video" => Some(Case::Video),
            _ => None,
        }
    }

    fn configs(self) -> Vec<Config> {
        let mut configs = vec![Config::Defaults, Config::REFERENCE];
        if self != Case::Video {
            configs.push(Config::EveryFrame { input_size: 320 });
        }
        configs.extend([
            Config::Tracking {
                async_detection: AsyncMode::InLine,
            },
            Config::Tracking {
                async_detection: AsyncMode::Background,
            },
            Config::FaceDetect,
            Config::MediaPipe,
        ]);
        // The same work as MediaPipe's row (one face) and as ours (every face).
        if self != Case::Video {
            configs.insert(configs.len() - 2, Config::OneFace);
            configs.push(Config::MediaPipeAll);
        }
        configs
    }

    /// MediaPipe FaceMesh's `max_num_faces` for this case.
    fn mediapipe_max_faces(self) -> u32 {
        match self {
            Case::Shots | Case::Crop => 1,
            Case::Video => MEDIAPIPE_VIDEO_MAX_FACES,
        }
    }

    /// What the case reads from `../shared`, when it is missing.
    fn missing_input(self, o: &Options) -> Option<String> {
        match self {
            Case::Shots => still_paths(&o.images, 1).err(),
            Case::Crop | Case::Video => {
                (!o.video.exists()).then(|| format!("{} is missing", o.video.display()))
            }
        }
    }

    /// One line on the case for the report.
    fn description(self) -> String {
        match self {
            Case::Shots => format!(
                "shots: AFLW2000 stills in file-name order, each 450×450 scaled to \
                 {STILL_SIDE}×{STILL_SIDE} on a {WIDTH}×{HEIGHT} mid-grey canvas and held for \
                 {HOLD_FRAMES} frames ({SHOTS_FPS} fps): a new face every {HOLD_FRAMES} frames"
            ),
            Case::Crop => format!(
                "crop: the {WIDTH}×{HEIGHT} window at ({CROP_LEFT}, {CROP_TOP}) of the 1080p crowd \
                 video (videocrop), around one person walking toward the camera, others beside"
            ),
            Case::Video => "1080p: every frame of the crowd video, several faces".into(),
        }
    }
}

/// `async-detection` values the bench sets explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsyncMode {
    /// `false`: detection frames wait for the detector.
    InLine,
    /// `true`: the detector in the background, frames never wait (the old race).
    Background,
}

impl AsyncMode {
    fn nick(self) -> &'static str {
        match self {
            AsyncMode::InLine => "false",
            AsyncMode::Background => "true",
        }
    }
}

/// What runs on the frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config {
    /// `faceposeestimator` with no property set.
    Defaults,
    /// `faceposeestimator detection-interval=1 detector-input-size=<input_size>`.
    EveryFrame { input_size: u32 },
    /// `faceposeestimator detection-interval=0 async-detection=<async_detection>`.
    Tracking { async_detection: AsyncMode },
    /// `videoconvert ! facedetect` with facedetect's defaults.
    FaceDetect,
    /// MediaPipe's legacy FaceMesh (python, XNNPACK, tracking) on the same frames in RGB, with
    /// the case's `max_num_faces` ([`Case::mediapipe_max_faces`]).
    MediaPipe,
    /// `faceposeestimator max-faces=1`: one face, as MediaPipe's row on `shots` and `crop`.
    OneFace,
    /// MediaPipe's FaceMesh asked for as many faces as our default `max-faces`.
    MediaPipeAll,
}

impl Config {
    /// The every-frame reference whose faces every row is compared with.
    const REFERENCE: Config = Config::EveryFrame { input_size: 640 };

    fn id(self) -> String {
        match self {
            Config::Defaults => "defaults".into(),
            Config::EveryFrame { input_size } => format!("every-{input_size}"),
            Config::Tracking { async_detection } => format!("async-{}", async_detection.nick()),
            Config::FaceDetect => "facedetect".into(),
            Config::MediaPipe => "mediapipe".into(),
            Config::OneFace => "one-face".into(),
            Config::MediaPipeAll => "mediapipe-all".into(),
        }
    }

    /// One of our element's configurations (not a peer).
    fn is_ours(self) -> bool {
        matches!(
            self,
            Config::Defaults
                | Config::EveryFrame { .. }
                | Config::Tracking { .. }
                | Config::OneFace
        )
    }

    /// MediaPipe FaceMesh's `max_num_faces` on `case`, for its rows (`None`: not MediaPipe).
    fn mediapipe_max_faces(self, case: Case) -> Option<u32> {
        match self {
            Config::MediaPipe => Some(case.mediapipe_max_faces()),
            Config::MediaPipeAll => Some(DEFAULT_MAX_FACES as u32),
            _ => None,
        }
    }

    fn parse(s: &str) -> Option<Config> {
        match s {
            "defaults" => return Some(Config::Defaults),
            "facedetect" => return Some(Config::FaceDetect),
            "mediapipe" => return Some(Config::MediaPipe),
            "mediapipe-all" => return Some(Config::MediaPipeAll),
            "one-face" => return Some(Config::OneFace),
            "async-false" => {
                return Some(Config::Tracking {
                    async_detection: AsyncMode::InLine,
                });
            }
            "async-true" => {
                return Some(Config::Tracking {
                    async_detection: AsyncMode::Background,
                });
            }
            _ => {}
        }
        let input_size = s.strip_prefix("every-")?.parse().ok()?;
        Some(Config::EveryFrame { input_size })
    }

    /// The element's properties this configuration sets (name, value as a string).
    fn properties(self) -> Vec<(&'static str, String)> {
        match self {
            Config::EveryFrame { input_size } => vec![
                ("detection-interval", "1".into()),
                ("detector-input-size", input_size.to_string()),
            ],
            Config::Tracking { async_detection } => vec![
                ("detection-interval", "0".into()),
                ("async-detection", async_detection.nick().into()),
            ],
            Config::OneFace => vec![("max-faces", "1".into())],
            Config::Defaults | Config::FaceDetect | Config::MediaPipe | Config::MediaPipeAll => {
                Vec::new()
            }
        }
    }

    fn label(self) -> String {
        match self {
            Config::Defaults => {
                "faceposeestimator, defaults (interval 0, async-detection auto)".into()
            }
            Config::EveryFrame { input_size } => format!(
                "faceposeestimator, detection every frame, input {input_size}{}",
                if self == Config::REFERENCE {
                    " (reference)"
                } else {
                    ""
                }
            ),
            Config::Tracking {
                async_detection: AsyncMode::InLine,
            } => "faceposeestimator, interval 0, async-detection=false (in line)".into(),
            Config::Tracking {
                async_detection: AsyncMode::Background,
            } => "faceposeestimator, interval 0, async-detection=true (background)".into(),
            Config::FaceDetect => "facedetect (videoconvert → RGB, defaults)".into(),
            Config::MediaPipe => "MediaPipe FaceMesh (python, XNNPACK, tracking)".into(),
            Config::OneFace => "faceposeestimator, max-faces=1 (MediaPipe's one face)".into(),
            Config::MediaPipeAll => {
                format!("MediaPipe FaceMesh, max_num_faces {DEFAULT_MAX_FACES} (our max-faces)")
            }
        }
    }
}

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Options {
    cases: Vec<Case>,
    runs: usize,
    /// AFLW2000 stills in `shots`.
    stills: usize,
    crop_frames: Option<usize>,
    video_frames: Option<usize>,
    images: PathBuf,
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

const USAGE: &str = "usage: bench [--quick] [--case shots|crop|1080p|all] [--runs N] [--stills N] \
                     [--crop-frames N] [--video-frames N] [--images DIR] [--video PATH] \
                     [--out DIR] [--in-process] [--no-mediapipe]";

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        cases: Case::ALL.to_vec(),
        runs: RUNS,
        stills: STILLS,
        crop_frames: None,
        video_frames: None,
        images: project_dir().join(DEFAULT_IMAGES),
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
                o.stills = QUICK_STILLS;
                o.crop_frames = Some(QUICK_CROP_FRAMES);
                o.video_frames = Some(QUICK_VIDEO_FRAMES);
            }
            "--case" => {
                o.cases = match it.next().map(String::as_str) {
                    Some("all") => Case::ALL.to_vec(),
                    Some(c) => vec![Case::parse(c).ok_or_else(|| format!("unknown case {c}"))?],
                    None => return Err("--case needs shots, crop, 1080p or all".into()),
                }
            }
            "--runs" => o.runs = number("--runs", it.next())?,
            "--stills" => o.stills = number("--stills", it.next())?,
            "--crop-frames" => o.crop_frames = Some(number("--crop-frames", it.next())?),
            "--video-frames" => o.video_frames = Some(number("--video-frames", it.next())?),
            "--images" => {
                o.images = it.next().ok_or("--images needs a folder")?.into();
            }
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
            "-h" | "--help" => return Err(USAGE.into()),
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

/// The first `n` JPEGs of `dir` in file-name order (fewer when it has fewer; an error when none).
fn still_paths(dir: &Path, n: usize) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("jpg") || x.eq_ignore_ascii_case("jpeg"))
        })
        .collect();
    if paths.is_empty() {
        return Err(format!("{} holds no JPEG", dir.display()));
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    paths.truncate(n);
    Ok(paths)
}

/// `shots`: each of the first `stills` AFLW2000 stills scaled to [`STILL_SIDE`]² and centred on a
/// mid-grey 640×480 canvas, held for [`HOLD_FRAMES`] frames (each frame a buffer of its own).
fn shots_frames(dir: &Path, stills: usize) -> Result<Frames, String> {
    let info = VideoInfo::builder(gst_video::VideoFormat::I420, WIDTH, HEIGHT)
        .fps(gst::Fraction::new(SHOTS_FPS, 1))
        .build()
        .map_err(|e| e.to_string())?;
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let side = STILL_SIDE as usize;
    let (x0, y0) = ((w - side) / 2, (h - side) / 2);
    let mut buffers = Vec::with_capacity(stills * HOLD_FRAMES);
    for path in still_paths(dir, stills)? {
        let still = image::open(&path)
            .map_err(|e| format!("cannot decode {}: {e}", path.display()))?
            .to_rgb8();
        let still = image::imageops::resize(
            &still,
            STILL_SIDE,
            STILL_SIDE,
            image::imageops::FilterType::Triangle,
        );
        let mut canvas = vec![GREY; w * h * 3];
        for (row, src) in still.as_raw().chunks_exact(side * 3).enumerate() {
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
        for _ in 1..HOLD_FRAMES {
            buffers.push(buffer.copy_deep().map_err(|e| e.to_string())?);
        }
        buffers.push(buffer);
    }
    Ok(Frames { info, buffers })
}

/// Every frame of a video file (or the first `limit`), decoded to I420 and copied into plain
/// memory; with `crop`, only the 640×480 window whose top-left corner it is (`videocrop` in the
/// decoding pipeline).
fn video_frames(
    path: &Path,
    limit: Option<usize>,
    crop: Option<(u32, u32)>,
) -> Result<Frames, String> {
    let filter = crop.map_or(String::new(), |(left, top)| {
        format!(
            "videocrop left={left} top={top} right=-1 bottom=-1 ! \
             video/x-raw,width={WIDTH},height={HEIGHT} !"
        )
    });
    let (pipeline, sink) = frames::play_decoder_through(path, &filter, "I420")?;
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
            .map(|m| match m.view() {
                gst::MessageView::Error(e) => {
                    format!("{} ({})", e.error(), e.debug().unwrap_or_default())
                }
                _ => format!("{m:?}"),
            })
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

/// The faces on one of our output buffers: the `FacePoseMeta`'s `face-count`, else the number of
/// face ROI metas.
fn buffer_faces(buffer: &gst::BufferRef, stat: Option<&FrameStat>) -> usize {
    match stat.and_then(|s| s.faces) {
        Some(n) => n as usize,
        None => buffer
            .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
            .filter(|m| m.roi_type() == gstfacepose::meta::ROI_TYPE)
            .count(),
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
    /// Faces found over all frames.
    pub faces: Option<usize>,
    /// Frames on which at least one face was found.
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
             pose_ms={} detect_frame_ms={} tracked_frame_ms={} faces_per_frame={} faces={} \
             face_frames={} peak_kib={} input_bytes={} provider={} ort_version={}",
            self.frames,
            self.seconds,
            self.detect_frames.map_or("-".into(), |v| v.to_string()),
            f(self.detect_ms),
            f(self.landmarks_ms),
            f(self.pose_ms),
            f(self.detect_frame_ms),
            f(self.tracked_frame_ms),
            f(self.faces_per_frame),
            self.faces.map_or("-".into(), |v| v.to_string()),
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
                "faces" => r.faces = opt.and_then(|v| v.parse().ok()),
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
        Case::Shots => shots_frames(&o.images, o.stills),
        Case::Crop => video_frames(&o.video, o.crop_frames, Some((CROP_LEFT, CROP_TOP))),
        Case::Video => video_frames(&o.video, o.video_frames, None),
    }
}

/// Makes the frames of `case`, then pushes them once through `config` and measures.
pub fn run_once(case: Case, config: Config, o: &Options) -> Result<RunResult, String> {
    init();
    if config.mediapipe_max_faces(case).is_some() {
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
    let mut ours = None;
    match config {
        Config::Defaults
        | Config::EveryFrame { .. }
        | Config::Tracking { .. }
        | Config::OneFace => {
            let e = make("faceposeestimator")?;
            for (name, value) in config.properties() {
                set_if_present(&e, name, &value, &mut notes);
            }
            ours = Some(e.clone());
            chain.push(e);
        }
        Config::FaceDetect => {
            chain.push(make("videoconvert")?);
            chain.push(make("facedetect")?);
        }
        Config::MediaPipe | Config::MediaPipeAll => {
            unreachable!("MediaPipe was turned away above")
        }
    }
    chain.push(sink.clone());
    pipeline
        .add_many(&chain)
        .map_err(|e| format!("cannot build the pipeline: {e}"))?;
    gst::Element::link_many(&chain).map_err(|e| format!("cannot link the pipeline: {e}"))?;

    // Each output buffer's meta and faces.
    let stats = Arc::new(Mutex::new(
        Vec::<(Option<FrameStat>, usize)>::with_capacity(frames.buffers.len()),
    ));
    let collected = stats.clone();
    sink.connect("handoff", false, move |args| {
        if let Ok(buffer) = args[1].get::<gst::Buffer>() {
            let stat = FrameStat::from_buffer(&buffer);
            let faces = buffer_faces(&buffer, stat.as_ref());
            collected.lock().unwrap().push((stat, faces));
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
    // facedetect's messages: one per frame, with the faces it found.
    let (mut facedetect_frames, mut facedetect_face_frames, mut facedetect_faces) = (0, 0, 0);
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
                    let faces = s.get::<gst::List>("faces").map_or(0, |l| l.len());
                    facedetect_frames += 1;
                    facedetect_face_frames += usize::from(faces > 0);
                    facedetect_faces += faces;
                }
            }
            _ => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak_kib = status_kib("VmHWM");
    // What `auto` chose here, read while the element still runs.
    if config == Config::Defaults
        && let Some(mode) = ours
            .as_ref()
            .and_then(|e| e.property::<Option<String>>("active-async-detection"))
    {
        notes.push(format!(
            "defaults: async-detection auto ran the detector {mode} (its choice for this \
             source: docs/element.md, `async-detection`)"
        ));
    }
    let _ = pipeline.set_state(gst::State::Null);
    let _ = pusher.join();
    if let Some(e) = error {
        return Err(e);
    }

    let stats = std::mem::take(&mut *stats.lock().unwrap());
    let metas: Vec<FrameStat> = stats.iter().filter_map(|(m, _)| m.clone()).collect();
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
    if config.is_ours() {
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
        let faces: usize = stats.iter().map(|(_, n)| n).sum();
        r.faces = Some(faces);
        r.face_frames = Some(stats.iter().filter(|(_, n)| *n > 0).count());
        if !stats.is_empty() {
            r.faces_per_frame = Some(faces as f64 / stats.len() as f64);
        }
        r.provider = metas.iter().find_map(|f| f.provider.clone());
        r.ort_version = ort_version();
    } else if facedetect_frames > 0 {
        if facedetect_frames != r.frames {
            r.notes.push(format!(
                "facedetect posted {facedetect_frames} messages for {} frames",
                r.frames
            ));
        }
        r.faces = Some(facedetect_faces);
        r.face_frames = Some(facedetect_face_frames);
        r.faces_per_frame = Some(facedetect_faces as f64 / r.frames.max(1) as f64);
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
        .arg("--stills")
        .arg(o.stills.to_string())
        .arg("--images")
        .arg(&o.images)
        .arg("--video")
        .arg(&o.video)
        .stdin(Stdio::null());
    if let Some(n) = o.crop_frames {
        cmd.arg("--crop-frames").arg(n.to_string());
    }
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
fn run_mediapipe(max_faces: u32, rgb: &RgbFile) -> Result<RunResult, String> {
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
            max_faces.to_string(),
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

    /// Faces over all frames (median over the runs).
    fn faces(&self) -> Option<f64> {
        self.stat(|x| x.faces.map(|n| n as f64))
    }

    /// Mean faces per frame (median over the runs).
    fn faces_per_frame(&self) -> Option<f64> {
        self.stat(|x| x.faces_per_frame)
    }

    /// Frames with at least one face (median over the runs) and the frames of a run.
    fn face_frames(&self) -> Option<(f64, usize)> {
        let frames = self.runs.first()?.frames;
        Some((self.stat(|x| x.face_frames.map(|n| n as f64))?, frames))
    }

    /// This row's faces as a share of the every-frame reference's on the same case, when they
    /// fall short of it by more than [`SHORT_OF_REFERENCE`] (`None`: not short, or no reference).
    fn short_of_reference(&self, rows: &[Row]) -> Option<f64> {
        if self.config == Config::REFERENCE || self.error.is_some() {
            return None;
        }
        let reference = rows
            .iter()
            .find(|r| r.case == self.case && r.config == Config::REFERENCE && r.error.is_none())?
            .faces()?;
        let share = self.faces()? / reference;
        (reference > 0.0 && share < 1.0 - SHORT_OF_REFERENCE).then_some(share)
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
        Case::Shots => format!("640×480 AFLW2000 shots{n}"),
        Case::Crop => format!("640×480 crop of the 1080p video{n}"),
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
    // The cases that ran (a case whose input is missing has no rows).
    let cases: Vec<Case> = o
        .cases
        .iter()
        .copied()
        .filter(|c| rows.iter().any(|r| r.case == *c))
        .collect();
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
    for case in &cases {
        s += &format!("- case {}\n", case.description());
    }
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
    s += "- faces: frames with a face = frames with at least one face / all frames; faces/frame \
          = the mean faces per frame (medians over the runs); ours counts each output buffer's \
          FacePoseMeta face-count, facedetect the faces of its element message per frame, \
          MediaPipe the faces FaceMesh returned per frame\n";
    s += "- per-stage ms: median per frame of the FacePoseMeta fields (detect: frames where the \
          detector ran); frame ms: `inference-ms` on detection / tracked frames; peak: VmHWM of \
          the run's process, which holds the input frames (their size in brackets)\n";
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
                 than max_num_faces faces), max_num_faces 1 (shots, crop) and {} (1080p), \
                 refine_landmarks=False, min detection and tracking confidence 0.5. The same \
                 frames, converted to RGB by GStreamer's video converter (not timed), read into \
                 memory by scripts/bench_mediapipe.py; fps = frames / wall time of `process()` \
                 over them (graph set-up not timed), each run a fresh python process; peak: the \
                 python process's VmHWM\n",
                MEDIAPIPE_VIDEO_MAX_FACES
            )
        }
        Err(e) => s += &format!("- {e}\n"),
    }
    s += "\n";

    let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
    let mut cells = Vec::new();
    let mut marked = false;
    for r in rows {
        let runs: Vec<String> = r.runs.iter().map(|x| format!("{:.1}", x.fps())).collect();
        let mut faces = cell(r.faces_per_frame(), 2);
        if let Some(share) = r.short_of_reference(rows) {
            faces += &format!(" short ({:.0} %)", 100.0 * share);
            marked = true;
        }
        let mut c = vec![
            case_label(r.case, rows),
            r.config.label(),
            cell(r.fps(), 1),
            r.face_frames()
                .map_or("–".into(), |(k, n)| format!("{k:.0}/{n}")),
            faces,
            runs.join(" "),
        ];
        if let Some(e) = &r.error {
            c[2] = "failed".into();
            c[5] = e.lines().next().unwrap_or_default().to_string();
        }
        let detect_frames = r
            .runs
            .first()
            .and_then(|x| x.detect_frames.map(|d| format!("{d}/{}", x.frames)));
        let peak = r
            .runs
            .iter()
            .filter_map(|x| x.peak_kib)
            .max()
            .map(|k| mib(k as f64 * 1024.0));
        let input = r.runs.first().map(|x| mib(x.input_bytes as f64));
        c.extend([
            detect_frames.unwrap_or_else(|| "–".into()),
            cell(r.stat(|x| x.detect_ms), 1),
            cell(r.stat(|x| x.landmarks_ms), 1),
            cell(r.stat(|x| x.pose_ms), 2),
            cell(r.stat(|x| x.detect_frame_ms), 1),
            cell(r.stat(|x| x.tracked_frame_ms), 1),
            match (peak, input) {
                (Some(p), Some(i)) => format!("{p:.0} ({i:.0})"),
                (p, _) => cell(p, 0),
            },
        ]);
        cells.push(c);
    }
    s += "## Results\n\n";
    s += &table(
        &[
            "case",
            "configuration",
            "fps",
            "frames with a face",
            "faces/frame",
            "fps of each run",
            "detector ran",
            "detect ms",
            "landmarks ms",
            "pose ms",
            "frame ms (detect)",
            "frame ms (tracked)",
            "peak MiB (input)",
        ],
        &cells,
    );
    s += &format!(
        "\n`short`: the row's faces over all frames fall more than {:.0} % below the every-frame \
         reference's (ours, detection every frame at input 640) on the same frames; in brackets, \
         its faces as a share of the reference's{}.\n",
        100.0 * SHORT_OF_REFERENCE,
        if marked { "" } else { " (no row is short)" }
    );

    let row_of = |case: Case, config: Config| {
        rows.iter()
            .find(|r| r.case == case && r.config == config && r.error.is_none())
    };
    let fps_of = |case: Case, config: Config| row_of(case, config).and_then(Row::fps);
    let ratio = |a: Option<f64>, b: Option<f64>| {
        a.zip(b)
            .map_or("–".into(), |(a, b)| format!("{:.2}×", a / b))
    };
    let mut ratios = Vec::new();
    for case in &cases {
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

    // Ours and MediaPipe asked for the same faces: one (MediaPipe's row on `shots` and `crop`) and
    // every face (our defaults). The targets below stay on the defaults against MediaPipe's row.
    let work = |r: Option<&Row>| {
        r.map_or("–".into(), |r| {
            let frames = r
                .face_frames()
                .map_or("–".into(), |(a, n)| format!("{a:.0}/{n}"));
            format!(
                "{} fps, a face on {frames}, {} faces/frame",
                cell(r.fps(), 1),
                cell(r.faces_per_frame(), 2)
            )
        })
    };
    let mut same_work = Vec::new();
    for case in cases.iter().filter(|c| **c != Case::Video) {
        for (asked, ours, peer) in [
            ("one face", Config::OneFace, Config::MediaPipe),
            ("every face", Config::Defaults, Config::MediaPipeAll),
        ] {
            let (a, b) = (row_of(*case, ours), row_of(*case, peer));
            same_work.push(vec![
                case_label(*case, rows),
                asked.into(),
                work(a),
                work(b),
                ratio(a.and_then(Row::fps), b.and_then(Row::fps)),
            ]);
        }
    }
    if !same_work.is_empty() {
        s += "\n## Asked for the same faces (same frames, same run)\n\n";
        s += &format!(
            "One face: ours with `max-faces=1` against MediaPipe's row (`max_num_faces` 1); every \
             face: our defaults against MediaPipe with `max_num_faces` {DEFAULT_MAX_FACES} (our \
             default `max-faces`), whose detector then runs on every frame with fewer faces.\n\n"
        );
        s += &table(
            &["case", "asked for", "ours", "MediaPipe", "ours / MediaPipe"],
            &same_work,
        );
    }

    let met = |ok: bool| if ok { "met" } else { "below" };
    let mut targets = Vec::new();
    for case in &cases {
        let defaults = row_of(*case, Config::Defaults);
        let name = case_label(*case, rows);
        match case {
            Case::Shots | Case::Crop => {
                let mediapipe = row_of(*case, Config::MediaPipe);
                targets.push(vec![
                    format!(
                        "{name}: defaults ≥ {TARGET_VS_MEDIAPIPE:.1}× MediaPipe FaceMesh's fps \
                         (stretch {STRETCH_VS_MEDIAPIPE:.1}×)"
                    ),
                    match (defaults.and_then(Row::fps), mediapipe.and_then(Row::fps)) {
                        (Some(a), Some(b)) => format!(
                            "{:.2}× ({a:.1} against {b:.1} fps): {}{}",
                            a / b,
                            met(a / b >= TARGET_VS_MEDIAPIPE),
                            if a / b >= STRETCH_VS_MEDIAPIPE {
                                ", stretch met"
                            } else {
                                ""
                            }
                        ),
                        _ => "not measured".into(),
                    },
                ]);
                targets.push(vec![
                    format!("{name}: defaults find a face on at least as many frames as MediaPipe"),
                    match (
                        defaults.and_then(Row::face_frames),
                        mediapipe.and_then(Row::face_frames),
                    ) {
                        (Some((a, n)), Some((b, _))) => format!(
                            "{a:.0}/{n} against {b:.0}/{n}: {}",
                            if a >= b { "yes" } else { "no" }
                        ),
                        _ => "not measured".into(),
                    },
                ]);
            }
            Case::Video => {
                targets.push(vec![
                    format!("{name}: defaults ≥ {TARGET_1080P_FPS:.0} fps"),
                    defaults
                        .and_then(Row::fps)
                        .map_or("not measured".into(), |v| {
                            format!("{v:.1}: {}", met(v >= TARGET_1080P_FPS))
                        }),
                ]);
                let reference = row_of(*case, Config::REFERENCE).and_then(Row::faces);
                targets.push(vec![
                    format!(
                        "{name}: defaults find ≥ {:.0} % of the every-frame reference's faces",
                        100.0 * TARGET_1080P_FACES
                    ),
                    match (defaults.and_then(Row::faces), reference) {
                        (Some(a), Some(b)) if b > 0.0 => format!(
                            "{a:.0} of {b:.0} faces, {:.1} %: {}",
                            100.0 * a / b,
                            met(a / b >= TARGET_1080P_FACES)
                        ),
                        _ => "not measured".into(),
                    },
                ]);
            }
        }
    }
    s += "\n## Targets (CPU; figures only, the run never fails on them)\n\n";
    s += &table(&["target", "measured"], &targets);

    let mut notes: Vec<String> = Vec::new();
    for r in rows {
        for n in r.runs.iter().flat_map(|x| &x.notes) {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
        if r.config.mediapipe_max_faces(r.case).is_some()
            && r.runs.iter().any(|x| x.face_frames == Some(0))
        {
            notes.push(format!(
                "{}: MediaPipe FaceMesh found no face: its detector (BlazeFace's short-range \
                 model, for faces within about 2 m of the camera) finds none of these faces, so \
                 it runs only that detector on every frame",
                case_label(r.case, rows)
            ));
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
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let mut cases = Vec::new();
    for &case in &o.cases {
        match case.missing_input(&o) {
            None => cases.push(case),
            Some(why) if ci => {
                return Err(format!(
                    "{why}: the {} case cannot run (CI=true needs ../shared)",
                    case.id()
                ));
            }
            Some(why) => writeln!(out, "[bench] {why}: the {} case is skipped", case.id())
                .map_err(|e| e.to_string())?,
        }
    }
    let started = Instant::now();
    let mut rows = Vec::new();
    for &case in &cases {
        for config in case.configs() {
            if (config == Config::FaceDetect && facedetect.is_err())
                || (config.mediapipe_max_faces(case).is_some() && mediapipe.is_err())
            {
                continue;
            }
            let mut row = Row {
                case,
                config,
                runs: Vec::new(),
                error: None,
            };
            let mediapipe_faces = config.mediapipe_max_faces(case);
            let rgb = if mediapipe_faces.is_some() {
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
                    Some(f) => run_mediapipe(mediapipe_faces.unwrap_or(1), f),
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
