// SPDX-License-Identifier: MPL-2.0
//! Host against graph pre-processing on this machine's CPU provider: milliseconds per frame for
//! the detector (one 640×480 frame, input long side 640) and the landmark model (one face: its
//! crop and the mirrored crop in one batch), each frame a new view, so that graph mode pays for
//! turning the frame into tensors every time, as in a stream. Prints figures; asserts nothing.
//!
//! cargo run --release --example preprocess_bench [-- runs]

use std::time::Instant;

use gstfacepose::engine::{
    DetectConfig, Detector, ExecutionProvider, ImageView, Landmarker, PixelFormat, Preprocess,
    RuntimeOptions, default_model_dir,
};

fn options(preprocess: Preprocess, threads: usize) -> RuntimeOptions {
    RuntimeOptions {
        provider: ExecutionProvider::Cpu,
        preprocess,
        threads,
        ..RuntimeOptions::default()
    }
}

/// The astronaut scaled to 300 px wide on a grey 640×480 frame (RGB).
fn frame() -> Result<(Vec<u8>, usize, usize), String> {
    let path = default_model_dir().join("samples/astronaut.png");
    let img = image::open(&path)
        .map_err(|e| format!("{}: {e}; run `make models`", path.display()))?
        .to_rgb8();
    let scaled = image::imageops::resize(&img, 300, 300, image::imageops::FilterType::Triangle);
    let (w, h) = (640usize, 480usize);
    let mut data = vec![128u8; w * h * 3];
    for (x, y, p) in scaled.enumerate_pixels() {
        let i = ((y as usize + 90) * w + x as usize + 170) * 3;
        data[i..i + 3].copy_from_slice(&p.0);
    }
    Ok((data, w, h))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(30);
    let (data, w, h) = frame()?;
    let view = || ImageView::packed(PixelFormat::Rgb, w, h, &data, w * 3).expect("a frame");
    let dir = default_model_dir();
    let config = DetectConfig::default();
    println!("{runs} frames each, median ms per frame (CPU provider)");
    let mut crops = None;
    for mode in [Preprocess::Host, Preprocess::Graph] {
        let mut d = Detector::load(&dir.join("retinaface_mbv2.onnx"), None, &options(mode, 0))?;
        let mut times = Vec::new();
        for _ in 0..runs + 2 {
            let v = view();
            let t = Instant::now();
            let found = d.detect(&v, &config)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            crops.get_or_insert(found);
        }
        println!(
            "detector   {:<5}: {:7.2} ms",
            mode.name(),
            median(times.split_off(2))
        );
    }
    let detection = crops
        .and_then(|c| c.into_iter().next())
        .ok_or("no face found")?;
    for mode in [Preprocess::Host, Preprocess::Graph] {
        let mut l = Landmarker::load(&dir.join("face_landmark.onnx"), None, &options(mode, 1))?;
        let crop = l.crop_from_detection(&detection);
        let mut times = Vec::new();
        for _ in 0..runs + 2 {
            let v = view();
            let t = Instant::now();
            l.run_with_mirror_where(&v, &[crop], &[true])?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "landmarks  {:<5}: {:7.2} ms (crop + mirrored crop, one batch, 1 thread)",
            mode.name(),
            median(times.split_off(2))
        );
    }
    Ok(())
}
