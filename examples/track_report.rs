// SPDX-License-Identifier: MPL-2.0
//! How tracking compares with detection on every frame, on a real video.
//!
//! `cargo run --release --example track_report -- [VIDEO] [--interval N] [--smoothing S]
//! [--input-size N] [--frames N] [--mode pipelined|background|inline] [--no-async-detection]
//! [--realtime]`
//!
//! Decodes the video (default `../shared/videos/multiface_1080p.mp4`) and runs every frame through
//! two engines: one running the detector on every frame (the still-picture path), then one
//! tracking (`--interval`, default 0 = automatic; `--mode`: the detector pipelined, as the element
//! runs files (default), in the background, or in line, as `--no-async-detection`), its frames back to back or, with `--realtime`, at the video's own pace
//! as from a live camera (background detections then join after fewer frames). Prints, for both, the distinct ids and the id switches (a
//! face whose box overlaps a face of the previous frame with IoU ≥ 0.5 but carries another id), and
//! for the tracked faces: how many of the every-frame detections they cover, extra faces, and the
//! mean absolute angle difference to the every-frame result for the same face.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use gstfacepose::engine::pipeline::PIPELINE_DEPTH;
use gstfacepose::engine::{
    DetectionMode, Engine, EngineConfig, Face, ImageView, PixelFormat, TrackConfig,
};

#[path = "support/frames.rs"]
#[allow(dead_code)]
mod frames;

struct Options {
    video: PathBuf,
    interval: u32,
    smoothing: f32,
    input_size: Option<usize>,
    frames: usize,
    mode: DetectionMode,
    realtime: bool,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        video: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/videos/multiface_1080p.mp4"
        )),
        interval: 0,
        smoothing: 0.0,
        input_size: None,
        frames: usize::MAX,
        mode: DetectionMode::Pipelined,
        realtime: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--interval" => {
                o.interval = value("--interval")?
                    .parse()
                    .map_err(|_| "--interval needs a whole number")?
            }
            "--smoothing" => {
                o.smoothing = value("--smoothing")?
                    .parse()
                    .map_err(|_| "--smoothing needs a number")?
            }
            "--input-size" => {
                o.input_size = Some(
                    value("--input-size")?
                        .parse()
                        .map_err(|_| "--input-size needs a whole number")?,
                )
            }
            "--frames" => {
                o.frames = value("--frames")?
                    .parse()
                    .map_err(|_| "--frames needs a whole number")?
            }
            "--no-async-detection" => o.mode = DetectionMode::InLine,
            "--mode" => {
                o.mode = match value("--mode")?.as_str() {
                    "pipelined" => DetectionMode::Pipelined,
                    "background" => DetectionMode::Background { bound: None },
                    "inline" => DetectionMode::InLine,
                    m => return Err(format!("--mode {m}: pipelined, background or inline")),
                }
            }
            "--realtime" => o.realtime = true,
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => o.video = PathBuf::from(a),
        }
    }
    Ok(o)
}

#[derive(Default)]
struct IdStats {
    ids: std::collections::BTreeSet<u64>,
    switches: usize,
    continued: usize,
    /// Sum of |yaw, pitch, roll change| of a continued face from one frame to the next.
    change: [f64; 3],
}

/// Pairs faces of two frames greedily by IoU ≥ `min_iou`.
fn pairs<'a>(a: &'a [Face], b: &'a [Face], min_iou: f32) -> Vec<(&'a Face, &'a Face)> {
    let mut all: Vec<(f32, usize, usize)> = Vec::new();
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            let iou = x.bbox.iou(&y.bbox);
            if iou >= min_iou {
                all.push((iou, i, j));
            }
        }
    }
    all.sort_by(|p, q| q.0.total_cmp(&p.0));
    let (mut used_a, mut used_b) = (vec![false; a.len()], vec![false; b.len()]);
    let mut out = Vec::new();
    for (_, i, j) in all {
        if !used_a[i] && !used_b[j] {
            used_a[i] = true;
            used_b[j] = true;
            out.push((&a[i], &b[j]));
        }
    }
    out
}

impl IdStats {
    fn add(&mut self, previous: &[Face], current: &[Face]) {
        self.ids.extend(current.iter().map(|f| f.id));
        for (p, c) in pairs(previous, current, 0.5) {
            if p.id == c.id {
                self.continued += 1;
                self.change[0] += (c.pose.yaw - p.pose.yaw).abs() as f64;
                self.change[1] += (c.pose.pitch - p.pose.pitch).abs() as f64;
                self.change[2] += (c.pose.roll - p.pose.roll).abs() as f64;
            } else {
                self.switches += 1;
            }
        }
    }
}

fn run() -> Result<(), String> {
    let o = parse()?;
    eprintln!("decoding {} …", o.video.display());
    gst::init().map_err(|e| e.to_string())?;
    let (width, height, frames) = frames::decoded(&o.video, o.frames)?;
    let mut config = EngineConfig {
        detection_mode: o.mode,
        ..EngineConfig::default()
    };
    if let Some(s) = o.input_size {
        config.detect.input_size = s;
    }
    let engine = |interval: u32, smoothing: f32| -> Result<Engine, String> {
        let mut e = Engine::new(config.clone()).map_err(|e| e.to_string())?;
        e.set_track_config(TrackConfig {
            detection_interval: interval,
            smoothing,
            ..TrackConfig::default()
        })
        .map_err(|e| e.to_string())?;
        Ok(e)
    };
    let mut tracked = engine(o.interval, o.smoothing)?;
    let mut every = engine(1, 0.0)?;
    let (mut stats_t, mut stats_e) = (IdStats::default(), IdStats::default());
    let (mut prev_t, mut prev_e) = (Vec::new(), Vec::new());
    let (mut ms_t, mut ms_e) = (0.0, 0.0);
    let (mut covered, mut reference, mut extra, mut detections) = (0usize, 0usize, 0usize, 0usize);
    let mut angle_error = [0.0f64; 3];
    // Detection on every frame first, then the tracker alone (so that the two engines do not
    // share the cores), frame after frame or, with --realtime, at the video's own pace.
    let mut every_faces = Vec::with_capacity(frames.len());
    for (t, rgb) in &frames {
        let view = ImageView::packed(PixelFormat::Rgb, width, height, rgb, width * 3)
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        every_faces.push(every.track(&view, Some(*t)).map_err(|e| e.to_string())?);
        ms_e += start.elapsed().as_secs_f64() * 1e3;
    }
    drop(every);
    let clock = Instant::now();
    let first = frames.first().map_or(0.0, |f| f.0);
    let views = frames
        .iter()
        .map(|(t, rgb)| {
            ImageView::packed(PixelFormat::Rgb, width, height, rgb, width * 3)
                .map(|v| (v, Some(*t)))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    // Pipelined: the frames held as the element holds them, finished once PIPELINE_DEPTH
    // frames came after them.
    let pipelined = o.mode == DetectionMode::Pipelined;
    let mut held = std::collections::VecDeque::new();
    let mut tracked_faces = Vec::with_capacity(frames.len());
    for (k, (view, t)) in views.iter().enumerate() {
        if o.realtime {
            let due = std::time::Duration::from_secs_f64((t.unwrap_or(0.0) - first).max(0.0));
            if let Some(wait) = due.checked_sub(clock.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let start = Instant::now();
        if pipelined {
            if held.len() >= PIPELINE_DEPTH {
                let (i, scheduled): (usize, bool) = held.pop_front().expect("not empty");
                let (v, ti) = &views[i];
                tracked_faces.push(
                    tracked
                        .track_scheduled(v, *ti, scheduled)
                        .map_err(|e| e.to_string())?,
                );
                detections += tracked.last_frame_detected() as usize;
            }
            held.push_back((k, tracked.schedule(view).map_err(|e| e.to_string())?));
        } else {
            tracked_faces.push(tracked.track(view, *t).map_err(|e| e.to_string())?);
            detections += tracked.last_frame_detected() as usize;
        }
        ms_t += start.elapsed().as_secs_f64() * 1e3;
    }
    let start = Instant::now();
    for (i, scheduled) in held {
        let (v, ti) = &views[i];
        tracked_faces.push(
            tracked
                .track_scheduled(v, *ti, scheduled)
                .map_err(|e| e.to_string())?,
        );
        detections += tracked.last_frame_detected() as usize;
    }
    ms_t += start.elapsed().as_secs_f64() * 1e3;
    for (((t, _), faces_e), faces_t) in frames.iter().zip(every_faces).zip(tracked_faces) {
        if std::env::var_os("TRACK_REPORT_VERBOSE").is_some() {
            let presence: Vec<String> = faces_t
                .iter()
                .map(|f| format!("{}:{:.2}", f.id, f.presence))
                .collect();
            eprintln!(
                "t={t:.2} tracked={} every={} {}",
                faces_t.len(),
                faces_e.len(),
                presence.join(" ")
            );
        }
        stats_t.add(&prev_t, &faces_t);
        stats_e.add(&prev_e, &faces_e);
        let matched = pairs(&faces_e, &faces_t, 0.5);
        reference += faces_e.len();
        covered += matched.len();
        extra += faces_t.len() - matched.len();
        for (e, t) in matched {
            angle_error[0] += (e.pose.yaw - t.pose.yaw).abs() as f64;
            angle_error[1] += (e.pose.pitch - t.pose.pitch).abs() as f64;
            angle_error[2] += (e.pose.roll - t.pose.roll).abs() as f64;
        }
        prev_t = faces_t;
        prev_e = faces_e;
    }
    let n = frames.len() as f64;
    println!(
        "{}: {} frames {width}×{height}; tracking: detection-interval {}, smoothing {}, detection {}",
        o.video.display(),
        frames.len(),
        o.interval,
        o.smoothing,
        match o.mode {
            DetectionMode::Pipelined => "pipelined",
            DetectionMode::Background { .. } => "in the background",
            DetectionMode::InLine => "in line",
        }
    );
    println!("| | detector runs | distinct ids | id switches | continued | ms/frame (engine) |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| detection every frame | {} | {} | {} | {} | {:.1} |",
        frames.len(),
        stats_e.ids.len(),
        stats_e.switches,
        stats_e.continued,
        ms_e / n
    );
    println!(
        "| tracking | {detections} | {} | {} | {} | {:.1} |",
        stats_t.ids.len(),
        stats_t.switches,
        stats_t.continued,
        ms_t / n
    );
    let m = covered.max(1) as f64;
    println!(
        "tracked faces cover {covered} of {reference} every-frame detections ({:.1} %), {extra} extra; \
         mean |difference| to the every-frame angles: yaw {:.2}°, pitch {:.2}°, roll {:.2}°",
        100.0 * covered as f64 / reference.max(1) as f64,
        angle_error[0] / m,
        angle_error[1] / m,
        angle_error[2] / m
    );
    let change = |s: &IdStats| {
        let n = s.continued.max(1) as f64;
        format!(
            "yaw {:.2}°, pitch {:.2}°, roll {:.2}°",
            s.change[0] / n,
            s.change[1] / n,
            s.change[2] / n
        )
    };
    println!(
        "mean |change| of a continued face's angles from one frame to the next: every frame {}; \
         tracking {}",
        change(&stats_e),
        change(&stats_t)
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("track_report: {e}");
            ExitCode::FAILURE
        }
    }
}
