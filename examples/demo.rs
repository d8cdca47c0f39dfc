// SPDX-License-Identifier: MPL-2.0
//! Runs the engine on pictures and prints every face; writes an annotated PNG per picture.
//!
//! `cargo run --release --example demo -- [--out DIR] [PICTURE ...]`
//! Without pictures it uses the public-domain samples that `make models` extracts.

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
            "-h" | "--help" => {
                println!("usage: demo [--out DIR] [PICTURE ...]");
                return ExitCode::SUCCESS;
            }
            _ => inputs.push(PathBuf::from(a)),
        }
    }
    if inputs.is_empty() {
        inputs = support::sample_pictures();
    }
    match run(&inputs, &out_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(inputs: &[PathBuf], out_dir: &std::path::Path) -> Result<(), String> {
    let config = support::config()?;
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
