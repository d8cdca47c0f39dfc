// SPDX-License-Identifier: MPL-2.0
//! Runs the engine on pictures and prints every face; writes an annotated PNG per picture.
//!
//! `cargo run --release --example demo -- [--out DIR] [--repeat N] [--input-size N] [PICTURE ...]`
//! Without pictures it uses the public-domain samples that `make models` extracts. `--repeat N`
//! processes each picture N more times and prints the median time of each stage.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::ExitCode;

use gstfacepose::engine::Engine;
use gstfacepose::overlay::{RgbCanvas, draw_faces};
use support::Picture;

fn main() -> ExitCode {
    let mut out_dir = PathBuf::from("out");
    let mut inputs = Vec::new();
    let mut repeat = 0usize;
    let mut input_size = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => match args.next() {
                Some(d) => out_dir = PathBuf::from(d),
                None => {
                    eprintln!("--out needs a folder");
                    return ExitCode::FAILURE;
                }
            },
            "--repeat" | "--input-size" => {
                match args.next().and_then(|v| v.parse::<usize>().ok()) {
                    Some(n) if a == "--repeat" => repeat = n,
                    Some(n) => input_size = Some(n),
                    None => {
                        eprintln!("{a} needs a whole number");
                        return ExitCode::FAILURE;
                    }
                }
            }
            "-h" | "--help" => {
                println!("usage: demo [--out DIR] [--repeat N] [--input-size N] [PICTURE ...]");
                return ExitCode::SUCCESS;
            }
            _ => inputs.push(PathBuf::from(a)),
        }
    }
    if inputs.is_empty() {
        inputs = support::sample_pictures();
    }
    match run(&inputs, &out_dir, repeat, input_size) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(
    inputs: &[PathBuf],
    out_dir: &std::path::Path,
    repeat: usize,
    input_size: Option<usize>,
) -> Result<(), String> {
    let mut config = support::config()?;
    if let Some(n) = input_size {
        config.detect.input_size = n;
    }
    let mut engine = Engine::new(config).map_err(|e| e.to_string())?;
    for w in engine.warnings() {
        eprintln!("warning: {w}");
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    println!("execution provider: {}", engine.provider());
    for path in inputs {
        let mut picture = Picture::load(path)?;
        let faces = engine.process(&picture.view()).map_err(|e| e.to_string())?;
        let t = engine.stage_times();
        println!(
            "{}: {}×{}, {} face(s)  [detect {:.1} ms, landmarks {:.1} ms, pose {:.2} ms]",
            path.display(),
            picture.width,
            picture.height,
            faces.len(),
            t.detect,
            t.landmarks,
            t.pose
        );
        for (i, f) in faces.iter().enumerate() {
            println!(
                "  face {i}: box ({:.0}, {:.0})-({:.0}, {:.0}) score {:.3} presence {:.3}  yaw {:+.1}°  pitch {:+.1}°  roll {:+.1}°",
                f.bbox.x0,
                f.bbox.y0,
                f.bbox.x1,
                f.bbox.y1,
                f.score,
                f.presence,
                f.pose.yaw,
                f.pose.pitch,
                f.pose.roll
            );
        }
        if repeat > 0 {
            let mut times = Vec::with_capacity(repeat);
            for _ in 0..repeat {
                let start = std::time::Instant::now();
                engine.process(&picture.view()).map_err(|e| e.to_string())?;
                let t = engine.stage_times();
                times.push([
                    t.detect,
                    t.landmarks,
                    t.pose,
                    start.elapsed().as_secs_f64() * 1e3,
                ]);
            }
            let median = |k: usize| {
                let mut v: Vec<f64> = times.iter().map(|t| t[k]).collect();
                v.sort_by(|a, b| a.total_cmp(b));
                v[v.len() / 2]
            };
            println!(
                "  median of {repeat}: detect {:.1} ms, landmarks {:.1} ms, pose {:.2} ms, total {:.1} ms",
                median(0),
                median(1),
                median(2),
                median(3)
            );
        }
        let (w, h) = (picture.width, picture.height);
        let mut canvas =
            RgbCanvas::new(&mut picture.data, w, h, w * 3, 3, false).ok_or("bad canvas")?;
        draw_faces(&mut canvas, &faces);
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "picture".into());
        let out = out_dir.join(format!("{stem}_annotated.png"));
        picture.save_png(&out)?;
        println!("  wrote {}", out.display());
    }
    Ok(())
}
