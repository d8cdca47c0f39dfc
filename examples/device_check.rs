// SPDX-License-Identifier: MPL-2.0
//! The measuring half of `scripts/device-check.sh`: the element on each execution provider, at
//! 640×480 and 1280×720 with one moving face and on the 1080p crowd video, with the detector on
//! every frame and with tracking; fps and per-stage milliseconds per case, and how far each
//! provider's angles are from the CPU's on the same frames (detector on every frame, so that each
//! frame's faces depend on that frame alone). Writes a Markdown report.
//!
//! ```text
//! cargo run --release --example device_check -- --out out/device-report.md
//!     [--providers cpu:host,cuda:graph,tensorrt] [--frames N] [--video-frames N] [--video PATH]
//! ```
//! A provider may carry where the pre-processing runs (`:host` or `:graph`, else the element's
//! `auto`); the first cpu entry is the reference the angle differences are measured against.
//!
//! Every provider runs with `fallback=false`: a provider that cannot run is reported as such, with
//! the element's error, never measured on the CPU by mistake.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gst::prelude::*;

#[path = "support/frames.rs"]
#[allow(dead_code)]
mod frames;

/// One input: a name, its frames (RGB) and size.
struct Input {
    name: String,
    width: usize,
    height: usize,
    frames: Vec<Vec<u8>>,
}

/// What one run through the element gave.
#[derive(Default)]
struct Run {
    fps: f64,
    /// Medians per frame (ms): detect (frames where it ran), landmarks, pose.
    stages: [Option<f64>; 3],
    /// Per frame, the faces' boxes and angles.
    faces: Vec<Vec<([f64; 4], [f64; 3])>>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

/// A provider of `--providers`, with where the pre-processing runs: `cuda:graph`, `cpu:host`,
/// or `cuda` (the element's choice, `preprocess=auto`).
fn split_provider(entry: &str) -> (&str, &str) {
    entry.split_once(':').unwrap_or((entry, "auto"))
}

/// Runs `input` through `appsrc ! faceposeestimator ! fakesink` on `entry` (a provider, with
/// `:host` or `:graph` for where the pre-processing runs).
fn run(input: &Input, entry: &str, interval: u32) -> Result<Run, String> {
    let (provider, preprocess) = split_provider(entry);
    let element = gst::ElementFactory::make("faceposeestimator")
        .property_from_str("execution-provider", provider)
        .property_from_str("preprocess", preprocess)
        .property("fallback", false)
        .property("detection-interval", interval)
        .build()
        .map_err(|e| e.to_string())?;
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("signal-handoffs", true)
        .build()
        .map_err(|e| e.to_string())?;
    let (pipeline, src) = frames::rgb_pipeline(input.width, input.height, &element, &sink)?;
    let metas = Arc::new(Mutex::new(Vec::<gst::Structure>::new()));
    let collected = metas.clone();
    sink.connect("handoff", false, move |args| {
        if let Ok(buffer) = args[1].get::<gst::Buffer>()
            && let Some(s) = gstfacepose::meta::frame_structure(&buffer)
        {
            collected.lock().unwrap().push(s);
        }
        None
    });
    let bus = pipeline.bus().ok_or("no bus")?;
    let fail = |pipeline: &gst::Pipeline| {
        let why =
            bus.pop_filtered(&[gst::MessageType::Error])
                .map_or("no error message".into(), |m| match m.view() {
                    gst::MessageView::Error(e) => e.error().to_string(),
                    _ => String::new(),
                });
        let _ = pipeline.set_state(gst::State::Null);
        why
    };
    if pipeline.set_state(gst::State::Paused).is_err() {
        return Err(fail(&pipeline));
    }
    let active = element.property::<Option<String>>("active-execution-provider");
    if active.as_deref() != Some(provider) {
        let _ = pipeline.set_state(gst::State::Null);
        return Err(format!("runs on {active:?}, not {provider}"));
    }
    let pre = element.property::<Option<String>>("active-preprocess");
    if preprocess != "auto" && pre.as_deref() != Some(preprocess) {
        let _ = pipeline.set_state(gst::State::Null);
        return Err(format!("pre-processing runs in {pre:?}, not {preprocess}"));
    }
    let started = Instant::now();
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| fail(&pipeline))?;
    let d = gst::ClockTime::SECOND / 30;
    for (i, rgb) in input.frames.iter().enumerate() {
        let mut buffer = gst::Buffer::from_mut_slice(rgb.clone());
        buffer.get_mut().unwrap().set_pts(d * i as u64);
        if src.push_buffer(buffer).is_err() {
            break;
        }
    }
    let _ = src.end_of_stream();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(600)) {
        match msg.view() {
            gst::MessageView::Eos(..) => break,
            gst::MessageView::Error(e) => {
                let _ = pipeline.set_state(gst::State::Null);
                return Err(e.error().to_string());
            }
            _ => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = pipeline.set_state(gst::State::Null);
    let metas = metas.lock().unwrap();
    let stage = |key: &str, only_detected: bool| {
        median(
            metas
                .iter()
                .filter(|s| !only_detected || s.get::<bool>("detected").unwrap_or(false))
                .filter_map(|s| s.get::<f64>(key).ok())
                .collect(),
        )
    };
    let faces = metas
        .iter()
        .map(|s| {
            s.get::<gst::Array>("faces")
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.get::<gst::Structure>().ok())
                        .map(|f| {
                            let g = |k: &str| f.get::<f64>(k).unwrap_or(f64::NAN);
                            // The box corners (0..1 of the frame): the faces of two runs
                            // are paired by them.
                            let b = ["x_min", "y_min", "x_max", "y_max"].map(g);
                            (b, [g("yaw"), g("pitch"), g("roll")])
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    Ok(Run {
        fps: input.frames.len() as f64 / seconds,
        stages: [
            stage("detect-ms", true),
            stage("landmarks-ms", false),
            stage("pose-ms", false),
        ],
        faces,
    })
}

/// Largest and mean absolute angle difference between the faces of two runs, face by face
/// (paired by the nearest box centre on the same frame).
fn angle_difference(a: &Run, b: &Run) -> Option<(f64, f64)> {
    let mut diffs = Vec::new();
    for (fa, fb) in a.faces.iter().zip(&b.faces) {
        for (ba, pa) in fa {
            let centre = |b: &[f64; 4]| ((b[0] + b[2]) * 0.5, (b[1] + b[3]) * 0.5);
            let (cx, cy) = centre(ba);
            let nearest = fb.iter().min_by(|(x, _), (y, _)| {
                let d = |b: &[f64; 4]| {
                    let (x, y) = centre(b);
                    (x - cx).powi(2) + (y - cy).powi(2)
                };
                d(x).total_cmp(&d(y))
            });
            if let Some((_, pb)) = nearest {
                for k in 0..3 {
                    let mut d = (pa[k] - pb[k]).abs() % 360.0;
                    if d > 180.0 {
                        d = 360.0 - d;
                    }
                    diffs.push(d);
                }
            }
        }
    }
    let max = diffs.iter().copied().fold(f64::NAN, f64::max);
    (!diffs.is_empty()).then(|| (max, diffs.iter().sum::<f64>() / diffs.len() as f64))
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = PathBuf::from("out/device-report.md");
    let mut providers = vec!["cpu".to_string(), "cuda".into(), "tensorrt".into()];
    let mut n = 300;
    let mut video_frames = 105;
    let mut video = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/videos/multiface_1080p.mp4"
    ));
    let mut title = "device check".to_string();
    let mut it = args.iter();
    let number = |v: Option<&String>, what: &str| -> usize {
        v.and_then(|v| v.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or_else(|| {
                eprintln!("{what} needs a positive whole number");
                std::process::exit(2)
            })
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = it.next().map(PathBuf::from).unwrap_or(out),
            "--providers" => {
                providers = it
                    .next()
                    .map(|v| v.split(',').map(str::to_string).collect())
                    .unwrap_or_default()
            }
            "--frames" => n = number(it.next(), "--frames"),
            "--video-frames" => video_frames = number(it.next(), "--video-frames"),
            "--video" => video = it.next().map(PathBuf::from).unwrap_or(video),
            "--title" => title = it.next().cloned().unwrap_or(title),
            other => {
                eprintln!(
                    "unknown argument {other}; usage: device_check [--out FILE] [--providers LIST] \
                     [--frames N] [--video-frames N] [--video PATH] [--title TEXT]"
                );
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = main_with(&out, &providers, n, video_frames, &video, &title) {
        eprintln!("device_check: {e}");
        std::process::exit(1);
    }
}

fn main_with(
    out: &std::path::Path,
    providers: &[String],
    n: usize,
    video_frames: usize,
    video: &std::path::Path,
    title: &str,
) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstfacepose::plugin_register_static().map_err(|e| e.to_string())?;
    let mut inputs = vec![
        Input {
            name: "640×480, 1 face".into(),
            width: 640,
            height: 480,
            frames: frames::moving_face(n, 640, 480, 352)?,
        },
        Input {
            name: "1280×720, 1 face".into(),
            width: 1280,
            height: 720,
            frames: frames::moving_face(n, 1280, 720, 528)?,
        },
    ];
    match frames::decoded(video, video_frames) {
        Ok((width, height, frames)) => inputs.push(Input {
            name: format!("{width}×{height}, several faces (the crowd video)"),
            width,
            height,
            frames: frames.into_iter().map(|(_, rgb)| rgb).collect(),
        }),
        Err(e) => eprintln!("[device-check] the crowd video is left out: {e}"),
    }
    let mut report = format!("# {title}\n\n");
    let mut table = String::from(
        "| case | mode | provider | fps | detect ms | landmarks ms | pose ms | faces/frame | max / mean angle difference to the CPU (°) |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut failures = Vec::new();
    for input in &inputs {
        for (mode, interval) in [("detection every frame", 1u32), ("tracking", 0)] {
            let mut cpu: Option<Run> = None;
            for provider in providers {
                eprintln!("[device-check] {} | {mode} | {provider} …", input.name);
                match run(input, provider, interval) {
                    Ok(r) => {
                        let faces = r.faces.iter().map(Vec::len).sum::<usize>() as f64
                            / r.faces.len().max(1) as f64;
                        // The first cpu run (host pre-processing) is the reference of the
                        // others.
                        let diff = match (&cpu, interval) {
                            (Some(c), 1) => angle_difference(c, &r)
                                .map_or("–".into(), |(m, a)| format!("{m:.3} / {a:.3}")),
                            (None, 1) if split_provider(provider).0 == "cpu" => {
                                "(reference)".into()
                            }
                            _ => "–".into(),
                        };
                        let _ = writeln!(
                            table,
                            "| {} | {mode} | {provider} | {:.1} | {} | {} | {} | {faces:.2} | {diff} |",
                            input.name,
                            r.fps,
                            cell(r.stages[0], 2),
                            cell(r.stages[1], 2),
                            cell(r.stages[2], 2),
                        );
                        if cpu.is_none() && split_provider(provider).0 == "cpu" {
                            cpu = Some(r);
                        }
                    }
                    Err(e) => {
                        let _ = writeln!(
                            table,
                            "| {} | {mode} | {provider} | did not run | – | – | – | – | – |",
                            input.name
                        );
                        failures.push(format!("{} | {mode} | {provider}: {e}", input.name));
                    }
                }
            }
        }
    }
    report.push_str(&table);
    if !failures.is_empty() {
        report.push_str("\nProviders that did not run (fallback=false):\n\n");
        for f in &failures {
            let _ = writeln!(report, "- {f}");
        }
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(out, &report).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("{report}");
    eprintln!("[device-check] written {}", out.display());
    Ok(())
}
