// SPDX-License-Identifier: MPL-2.0
//! Soak test: pushes many frames with a face through `faceposeestimator` (default properties)
//! and watches the process's resident memory.
//!
//! ```text
//! make soak                                   # 100 000 frames
//! cargo run --release --example soak -- [--frames N] [--warmup N] [--every N] [--max-growth PCT]
//! ```
//!
//! The astronaut sample picture, scaled to 240x240 on a 320x240 RGB frame and swaying a few
//! pixels left and right, goes through `appsrc ! faceposeestimator ! fakesink sync=false`. After
//! `--warmup` frames (500) the app reads VmRSS from /proc/self/status as the baseline, then again
//! every `--every` frames (10 000) and at the end, and prints the growth, frames/s, the frames with
//! faces and every bus error or warning. It exits 1 when the growth reaches `--max-growth` (5 %)
//! or the bus had an error.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;

const WIDTH: u32 = 320;
const HEIGHT: u32 = 240;
const FPS: i32 = 30;
/// Frames in one sway cycle (pre-rendered).
const SWAY_FRAMES: usize = 32;
/// Largest sideways offset from the centre, in pixels.
const SWAY_PIXELS: f64 = 6.0;

struct Args {
    frames: u64,
    warmup: u64,
    every: u64,
    max_growth: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        frames: 100_000,
        warmup: 500,
        every: 10_000,
        max_growth: 5.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<f64, String> {
            let v = args.next().ok_or(format!("{name} needs a number"))?;
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or(format!("{name} {v:?} is not a number >= 0"))
        };
        match arg.as_str() {
            "--frames" => a.frames = value("--frames")? as u64,
            "--warmup" => a.warmup = value("--warmup")? as u64,
            "--every" => a.every = (value("--every")? as u64).max(1),
            "--max-growth" => a.max_growth = value("--max-growth")?,
            "-h" | "--help" => {
                return Err(
                    "usage: soak [--frames N] [--warmup N] [--every N] [--max-growth PCT]".into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if a.warmup >= a.frames {
        return Err(format!(
            "--warmup ({}) must be below --frames ({})",
            a.warmup, a.frames
        ));
    }
    Ok(a)
}

/// A `/proc/self/status` value in kB (`VmRSS`, `VmHWM`).
fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(str::to_owned))
        })
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The sway cycle: the picture scaled to `HEIGHT` square on a grey frame, shifted sideways.
fn frames() -> Result<Vec<gst::Buffer>, String> {
    let path = gstfacepose::engine::default_model_dir().join("samples/astronaut.png");
    let picture = image::open(&path)
        .map_err(|e| format!("cannot read {}: {e} (run `make models`)", path.display()))?
        .to_rgb8();
    let face = image::imageops::resize(
        &picture,
        HEIGHT,
        HEIGHT,
        image::imageops::FilterType::Triangle,
    );
    let row = (WIDTH * 3) as usize;
    Ok((0..SWAY_FRAMES)
        .map(|k| {
            let phase = k as f64 / SWAY_FRAMES as f64 * std::f64::consts::TAU;
            let left = ((WIDTH - HEIGHT) as f64 / 2.0 + SWAY_PIXELS * phase.sin()).round() as usize;
            let mut data = vec![96u8; row * HEIGHT as usize];
            for (y, src) in face.rows().enumerate() {
                let dst = &mut data[y * row + left * 3..][..HEIGHT as usize * 3];
                for (d, p) in dst.chunks_exact_mut(3).zip(src) {
                    d.copy_from_slice(&p.0);
                }
            }
            gst::Buffer::from_mut_slice(data)
        })
        .collect())
}

/// Prints an error or warning message and adds it to its list; ignores other messages.
fn record(msg: &gst::Message, errors: &mut Vec<String>, warnings: &mut Vec<String>) {
    let (list, kind, error, debug) = match msg.view() {
        gst::MessageView::Error(e) => (errors, "error", e.error(), e.debug()),
        gst::MessageView::Warning(w) => (warnings, "warning", w.error(), w.debug()),
        _ => return,
    };
    let line = format!(
        "{kind} from {}: {error} ({})",
        msg.src().map(|s| s.path_string()).unwrap_or_default(),
        debug.map(|d| d.to_string()).unwrap_or_default()
    );
    println!("soak: {line}");
    list.push(line);
}

/// Records the errors and warnings posted so far.
fn drain_bus(bus: &gst::Bus, errors: &mut Vec<String>, warnings: &mut Vec<String>) {
    while let Some(msg) = bus.pop() {
        record(&msg, errors, warnings);
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the soak; `Ok(false)` when it failed its checks.
fn run(args: &Args) -> Result<bool, String> {
    gst::init().map_err(|e| format!("initialising GStreamer: {e}"))?;
    gstfacepose::plugin_register_static()
        .map_err(|e| format!("registering the facepose plugin: {e}"))?;
    let sway = frames()?;
    let frame_size = sway[0].size() as u64;

    let pipeline = gst::parse::launch(
        "appsrc name=src format=time block=true ! faceposeestimator ! fakesink name=sink sync=false",
    )
    .map_err(|e| format!("cannot build the pipeline: {e}"))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let appsrc = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or("no appsrc")?;
    let caps = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, WIDTH, HEIGHT)
        .fps(gst::Fraction::new(FPS, 1))
        .build()
        .map_err(|e| e.to_string())?
        .to_caps()
        .map_err(|e| e.to_string())?;
    appsrc.set_caps(Some(&caps));
    // Two frames queued at most: the count at the sink follows the count pushed closely.
    appsrc.set_max_bytes(2 * frame_size);

    let seen = Arc::new(AtomicU64::new(0));
    let with_faces = Arc::new(AtomicU64::new(0));
    let (s, f) = (seen.clone(), with_faces.clone());
    pipeline
        .by_name("sink")
        .and_then(|e| e.static_pad("sink"))
        .ok_or("no sink pad")?
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buffer) = info.buffer() {
                s.fetch_add(1, Ordering::Relaxed);
                let faces = gstfacepose::meta::frame_structure(buffer)
                    .and_then(|st| st.get::<u32>("face-count").ok())
                    .unwrap_or(0);
                if faces > 0 {
                    f.fetch_add(1, Ordering::Relaxed);
                }
            }
            gst::PadProbeReturn::Ok
        });

    let bus = pipeline.bus().expect("a pipeline has a bus");
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    println!(
        "soak: {} frames of {WIDTH}x{HEIGHT} RGB (the astronaut, swaying ±{SWAY_PIXELS} px), \
         faceposeestimator with default properties, warm-up {}, VmRSS every {}",
        args.frames, args.warmup, args.every
    );
    if pipeline.set_state(gst::State::Playing).is_err() {
        drain_bus(&bus, &mut errors, &mut warnings);
        return Err("the pipeline cannot start".into());
    }

    // Waits until the sink has seen `n` frames (or the bus has an error).
    let wait_for = |n: u64, errors: &mut Vec<String>, warnings: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.load(Ordering::Relaxed) < n && Instant::now() < deadline {
            drain_bus(&bus, errors, warnings);
            if !errors.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    };

    let frame_duration = gst::ClockTime::from_nseconds(1_000_000_000 / FPS as u64);
    let started = Instant::now();
    let mut baseline: Option<(u64, Instant)> = None;
    let mut pushed = 0u64;
    while pushed < args.frames {
        let mut buffer = sway[pushed as usize % SWAY_FRAMES].copy();
        {
            let b = buffer.get_mut().expect("a fresh copy is writable");
            b.set_pts(frame_duration * pushed);
            b.set_duration(frame_duration);
        }
        if let Err(e) = appsrc.push_buffer(buffer) {
            drain_bus(&bus, &mut errors, &mut warnings);
            errors.push(format!("push_buffer at frame {pushed}: {e:?}"));
            break;
        }
        pushed += 1;
        let milestone =
            pushed == args.warmup || (pushed > args.warmup && pushed.is_multiple_of(args.every));
        if milestone && pushed < args.frames {
            wait_for(pushed, &mut errors, &mut warnings);
            if !errors.is_empty() {
                break;
            }
            let rss = status_kb("VmRSS");
            let faces = with_faces.load(Ordering::Relaxed);
            match baseline {
                None => {
                    println!(
                        "soak: frame {pushed} (start): VmRSS {rss} kB, {:.1} frames/s in the \
                         warm-up, faces in {faces}/{pushed}",
                        pushed as f64 / started.elapsed().as_secs_f64()
                    );
                    baseline = Some((rss, Instant::now()));
                }
                Some((start_rss, t0)) => println!(
                    "soak: frame {pushed}: VmRSS {rss} kB ({:+.2} %), {:.1} frames/s, faces in \
                     {faces}/{pushed}, {} error(s), {} warning(s)",
                    growth(start_rss, rss),
                    (pushed - args.warmup) as f64 / t0.elapsed().as_secs_f64(),
                    errors.len(),
                    warnings.len()
                ),
            }
        }
    }

    if errors.is_empty() {
        let _ = appsrc.end_of_stream();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64))
            else {
                errors.push("no EOS within 60 s of the last frame".into());
                break;
            };
            record(&msg, &mut errors, &mut warnings);
            if matches!(
                msg.view(),
                gst::MessageView::Eos(_) | gst::MessageView::Error(_)
            ) {
                break;
            }
        }
    }
    drain_bus(&bus, &mut errors, &mut warnings);
    let end_rss = status_kb("VmRSS");
    let peak = status_kb("VmHWM");
    let elapsed = baseline.map(|(_, t0)| t0.elapsed().as_secs_f64());
    let processed = seen.load(Ordering::Relaxed);
    let faces = with_faces.load(Ordering::Relaxed);
    let _ = pipeline.set_state(gst::State::Null);

    let Some((start_rss, _)) = baseline else {
        println!("soak: FAIL: stopped before the end of the warm-up; errors: {errors:?}");
        return Ok(false);
    };
    let g = growth(start_rss, end_rss);
    let fps = elapsed.map_or(0.0, |s| processed.saturating_sub(args.warmup) as f64 / s);
    println!(
        "soak: end: {processed} frames, {faces} with faces, VmRSS start {start_rss} kB end \
         {end_rss} kB ({g:+.2} %), peak {peak} kB, {fps:.1} frames/s after the warm-up, {:.0} s in \
         all, {} error(s), {} warning(s)",
        started.elapsed().as_secs_f64(),
        errors.len(),
        warnings.len()
    );
    let mut failures = Vec::new();
    if g >= args.max_growth {
        failures.push(format!(
            "memory grew {g:.2} % (limit {} %)",
            args.max_growth
        ));
    }
    if !errors.is_empty() {
        failures.push(format!("{} error(s)", errors.len()));
    }
    if processed < args.frames && errors.is_empty() {
        failures.push(format!(
            "only {processed} of {} frames arrived",
            args.frames
        ));
    }
    if failures.is_empty() {
        println!("soak: PASS");
        Ok(true)
    } else {
        println!("soak: FAIL: {}", failures.join("; "));
        Ok(false)
    }
}

fn growth(start: u64, now: u64) -> f64 {
    (now as f64 - start as f64) / start.max(1) as f64 * 100.0
}
