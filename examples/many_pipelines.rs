// SPDX-License-Identifier: MPL-2.0
//! Many cameras in one process: N pipelines `appsrc ! faceposeestimator ! fakesink sync=false`
//! run at the same time, each on the same 640×480 frames of one moving face (the astronaut sample
//! picture on a gradient, RGB, made in memory first), with the element's defaults. Prints the
//! process's resident memory before the pipelines start and once they have all finished (VmRSS,
//! and the peak VmHWM), the memory each pipeline added, and the total frames per second.
//!
//! ```text
//! cargo run --release --example many_pipelines [-- --pipelines N] [--frames N] [--compare A,B]
//! ```
//!
//! `--compare 1,8` (the default) runs each count in a fresh process of its own and prints a table
//! with the memory per extra pipeline.

use std::process::Command;

#[path = "support/frames.rs"]
#[allow(dead_code)]
mod frames;
use std::time::Instant;

use gst::prelude::*;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
const SIDE: u32 = 352;
const FRAMES: usize = 200;
const RESULT_PREFIX: &str = "MANY-RESULT";

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn frames(n: usize) -> Result<Vec<gst::Buffer>, String> {
    let rgb = frames::moving_face(n, WIDTH as usize, HEIGHT as usize, SIDE as usize)?;
    Ok(rgb.into_iter().map(gst::Buffer::from_mut_slice).collect())
}

/// Runs `pipelines` pipelines on `frames` frames each; prints one result line.
fn run(pipelines: usize, n: usize) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstfacepose::plugin_register_static().map_err(|e| e.to_string())?;
    let buffers = frames(n)?;
    let base_rss = status_kib("VmRSS:").unwrap_or(0);
    let mut running = Vec::new();
    for _ in 0..pipelines {
        let element = gst::ElementFactory::make("faceposeestimator")
            .build()
            .map_err(|e| e.to_string())?;
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .build()
            .map_err(|e| e.to_string())?;
        let (pipeline, src) =
            frames::rgb_pipeline(WIDTH as usize, HEIGHT as usize, &element, &sink)?;
        pipeline
            .set_state(gst::State::Paused)
            .map_err(|e| format!("cannot start a pipeline: {e}"))?;
        running.push((pipeline, src));
    }
    let started = Instant::now();
    let mut pushers = Vec::new();
    for (pipeline, src) in &running {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("cannot play a pipeline: {e}"))?;
        let src = src.clone();
        let buffers = buffers.clone();
        pushers.push(std::thread::spawn(move || {
            let d = gst::ClockTime::SECOND / 30;
            for (i, buffer) in buffers.into_iter().enumerate() {
                // A copy of its own for each pipeline (the element writes metadata to it).
                let mut buffer = buffer.copy();
                let b = buffer.make_mut();
                b.set_pts(d * i as u64);
                b.set_duration(d);
                if src.push_buffer(buffer).is_err() {
                    break;
                }
            }
            let _ = src.end_of_stream();
        }));
    }
    for (pipeline, _) in &running {
        let bus = pipeline.bus().ok_or("no bus")?;
        for msg in bus.iter_timed(gst::ClockTime::NONE) {
            match msg.view() {
                gst::MessageView::Eos(..) => break,
                gst::MessageView::Error(e) => return Err(format!("{}", e.error())),
                _ => {}
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    for p in pushers {
        let _ = p.join();
    }
    let rss = status_kib("VmRSS:").unwrap_or(0);
    let peak = status_kib("VmHWM:").unwrap_or(0);
    for (pipeline, _) in &running {
        let _ = pipeline.set_state(gst::State::Null);
    }
    println!(
        "{RESULT_PREFIX} pipelines={pipelines} frames={n} seconds={seconds:.3} base_kib={base_rss} \
         rss_kib={rss} peak_kib={peak} total_fps={:.1}",
        (pipelines * n) as f64 / seconds
    );
    Ok(())
}

fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

fn compare(counts: &[usize], n: usize) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for &count in counts {
        let out = Command::new(&exe)
            .args([
                "--pipelines",
                &count.to_string(),
                "--frames",
                &n.to_string(),
            ])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with(RESULT_PREFIX))
            .ok_or_else(|| {
                format!(
                    "{count} pipelines gave no result: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })?
            .to_string();
        rows.push((count, line));
    }
    println!(
        "{n} frames of 640×480 RGB per pipeline, element defaults; memory in MB (resident after the run, \
         less the process before the pipelines)"
    );
    println!("| pipelines | total fps | resident MB | added by the pipelines MB | peak MB |");
    println!("|---|---|---|---|---|");
    let mut added = Vec::new();
    for (count, line) in &rows {
        let mb = |k: &str| field(line, k).unwrap_or(0.0) / 1024.0;
        let extra = mb("rss_kib") - mb("base_kib");
        added.push((*count, extra));
        println!(
            "| {count} | {:.1} | {:.0} | {:.0} | {:.0} |",
            field(line, "total_fps").unwrap_or(0.0),
            mb("rss_kib"),
            extra,
            mb("peak_kib")
        );
    }
    if let (Some(&(a, ma)), Some(&(b, mb))) = (added.first(), added.last())
        && b > a
    {
        println!(
            "memory per extra pipeline: {:.1} MB",
            (mb - ma) / (b - a) as f64
        );
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pipelines = None;
    let mut n = FRAMES;
    let mut counts = vec![1, 8];
    let mut it = args.iter();
    let parse = |v: Option<&String>, what: &str| -> usize {
        match v.and_then(|v| v.parse().ok()) {
            Some(x) if x > 0 => x,
            _ => {
                eprintln!("{what} needs a positive whole number");
                std::process::exit(2)
            }
        }
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--pipelines" => pipelines = Some(parse(it.next(), "--pipelines")),
            "--frames" => n = parse(it.next(), "--frames"),
            "--compare" => {
                counts = it
                    .next()
                    .map(|v| v.split(',').filter_map(|c| c.parse().ok()).collect())
                    .unwrap_or_default();
                if counts.is_empty() || counts.contains(&0) {
                    eprintln!("--compare needs counts like 1,8");
                    std::process::exit(2);
                }
            }
            other => {
                eprintln!(
                    "unknown argument {other}; usage: many_pipelines [--pipelines N] [--frames N] [--compare A,B]"
                );
                std::process::exit(2);
            }
        }
    }
    let result = match pipelines {
        Some(p) => run(p, n),
        None => compare(&counts, n),
    };
    if let Err(e) = result {
        eprintln!("many_pipelines: {e}");
        std::process::exit(1);
    }
}
