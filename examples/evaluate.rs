// SPDX-License-Identifier: MPL-2.0
//! Head-pose accuracy on a labelled set (AFLW2000-3D's labels.csv layout).
//!
//! `cargo run --release --example evaluate -- ../shared/data/aflw2000/labels.csv [options]`
//!
//! Options: `--all` (also the rows with within_99deg = 0), `--limit N` (first N rows), `--every K`
//! (every K-th row), `--out DIR` (default `out/eval`), `--input-size N`, `--refine N`,
//! `--detector PATH` (ONNX model with its descriptor beside it), `--threads N`, `--no-mirror`
//! (no mirror averaging), `--track-frames N` (each picture as a still video of N frames through
//! the tracker; the last frame is scored), `--smoothing S` (with `--track-frames`).
//! Prints detection rate, MAE per axis and mean, mean signed error, median time per image, and
//! MAE by |yaw| band; writes `per_image.csv` and `error_vs_yaw.png` to the output folder.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use gstfacepose::engine::geometry::BBox;
use gstfacepose::engine::{Engine, EngineConfig, PoseMethod, TrackConfig};
use support::Picture;

struct Options {
    labels: PathBuf,
    all: bool,
    limit: Option<usize>,
    every: usize,
    out: PathBuf,
    input_size: Option<usize>,
    refine: Option<usize>,
    detector: Option<PathBuf>,
    detector_descriptor: Option<PathBuf>,
    landmarker: Option<PathBuf>,
    landmark_descriptor: Option<PathBuf>,
    pose_method: PoseMethod,
    threads: Option<usize>,
    matrix: bool,
    no_mirror: bool,
    track_frames: usize,
    smoothing: f32,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        labels: PathBuf::new(),
        all: false,
        limit: None,
        every: 1,
        out: PathBuf::from("out/eval"),
        input_size: None,
        refine: None,
        detector: None,
        detector_descriptor: None,
        landmarker: None,
        landmark_descriptor: None,
        pose_method: PoseMethod::Rigid,
        threads: None,
        matrix: false,
        no_mirror: false,
        track_frames: 0,
        smoothing: 0.0,
    };
    let mut args = std::env::args().skip(1);
    let number = |name: &str, v: Option<String>| -> Result<usize, String> {
        v.ok_or(format!("{name} needs a value"))?
            .parse()
            .map_err(|_| format!("{name} needs a whole number"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--all" => o.all = true,
            "--limit" => o.limit = Some(number("--limit", args.next())?),
            "--every" => o.every = number("--every", args.next())?.max(1),
            "--out" => o.out = PathBuf::from(args.next().ok_or("--out needs a folder")?),
            "--input-size" => o.input_size = Some(number("--input-size", args.next())?),
            "--refine" => o.refine = Some(number("--refine", args.next())?),
            "--threads" => o.threads = Some(number("--threads", args.next())?),
            "--detector" => {
                o.detector = Some(PathBuf::from(args.next().ok_or("--detector needs a path")?))
            }
            "--detector-descriptor" => {
                o.detector_descriptor = Some(PathBuf::from(
                    args.next().ok_or("--detector-descriptor needs a path")?,
                ))
            }
            "--landmarker" => {
                o.landmarker = Some(PathBuf::from(
                    args.next().ok_or("--landmarker needs a path")?,
                ))
            }
            "--landmark-descriptor" => {
                o.landmark_descriptor = Some(PathBuf::from(
                    args.next().ok_or("--landmark-descriptor needs a path")?,
                ))
            }
            "--pose-method" => {
                o.pose_method = match args.next().as_deref() {
                    Some("rigid") => PoseMethod::Rigid,
                    Some("seed-linear") => PoseMethod::SeedLinear,
                    _ => return Err("--pose-method needs rigid or seed-linear".into()),
                }
            }
            "--matrix" => o.matrix = true,
            "--no-mirror" => o.no_mirror = true,
            "--track-frames" => o.track_frames = number("--track-frames", args.next())?,
            "--smoothing" => {
                o.smoothing = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|v| (0.0..=1.0).contains(v))
                    .ok_or("--smoothing needs a number in 0..=1")?
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ => o.labels = PathBuf::from(a),
        }
    }
    if o.labels.as_os_str().is_empty() {
        return Err("usage: evaluate LABELS.csv [--all] [--limit N] [--every K] [--out DIR] [--input-size N] [--refine N] [--detector PATH] [--threads N]".into());
    }
    Ok(o)
}

/// One labelled row.
struct Row {
    file: String,
    truth: [f32; 3],
    gt_box: BBox,
}

fn read_labels(path: &Path, all: bool) -> Result<Vec<Row>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or("empty labels file")?
        .split(',')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or(format!("{}: no column `{name}`", path.display()))
    };
    let (cf, cy, cp, cr) = (
        col("file")?,
        col("yaw_deg")?,
        col("pitch_deg")?,
        col("roll_deg")?,
    );
    let cb = [
        col("lmk68_xmin")?,
        col("lmk68_ymin")?,
        col("lmk68_xmax")?,
        col("lmk68_ymax")?,
    ];
    let cw = col("within_99deg")?;
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let num = |c: usize| -> Result<f32, String> {
            f.get(c)
                .and_then(|v| v.trim().parse::<f32>().ok())
                .ok_or(format!(
                    "{} line {}: bad number in column {}",
                    path.display(),
                    i + 2,
                    c + 1
                ))
        };
        if !all && num(cw)? != 1.0 {
            continue;
        }
        rows.push(Row {
            file: f.get(cf).ok_or("missing file column")?.trim().to_string(),
            truth: [num(cy)?, num(cp)?, num(cr)?],
            gt_box: BBox::new(num(cb[0])?, num(cb[1])?, num(cb[2])?, num(cb[3])?),
        });
    }
    Ok(rows)
}

struct Result_ {
    row: usize,
    pred: Option<[f32; 3]>,
    ms: f64,
    score: f32,
    presence: f32,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let o = parse_args()?;
    let mut rows = read_labels(&o.labels, o.all)?;
    rows = rows.into_iter().step_by(o.every).collect();
    if let Some(n) = o.limit {
        rows.truncate(n);
    }
    let base = o.labels.parent().unwrap_or(Path::new("."));
    let mut config = support::config()?;
    if let Some(s) = o.input_size {
        config.detect.input_size = s;
    }
    if let Some(r) = o.refine {
        config.refine_passes = r;
    }
    if let Some(t) = o.threads {
        config.runtime.threads = t;
    }
    if let Some(d) = &o.detector {
        config.detector_model = d.clone();
    }
    config.detector_descriptor = o.detector_descriptor.clone();
    if let Some(l) = &o.landmarker {
        config.landmark_model = l.clone();
    }
    config.landmark_descriptor = o.landmark_descriptor.clone();
    config.pose_method = o.pose_method;
    config.mirror_average = !o.no_mirror;
    std::fs::create_dir_all(&o.out)
        .map_err(|e| format!("cannot create {}: {e}", o.out.display()))?;
    if o.matrix {
        return matrix(&config, &rows, base);
    }
    let mut engine = Engine::new(config).map_err(|e| e.to_string())?;
    engine
        .set_track_config(TrackConfig {
            smoothing: o.smoothing,
            ..TrackConfig::default()
        })
        .map_err(|e| e.to_string())?;

    let mut results = Vec::with_capacity(rows.len());
    let start = Instant::now();
    for (i, row) in rows.iter().enumerate() {
        let picture = Picture::load(&base.join(&row.file))?;
        let t = Instant::now();
        let faces = if o.track_frames == 0 {
            engine.process(&picture.view())
        } else {
            engine.reset_tracking();
            let mut faces = Ok(Vec::new());
            for frame in 0..o.track_frames {
                faces = engine.track(&picture.view(), Some(frame as f64 / 30.0));
            }
            faces
        }
        .map_err(|e| format!("{}: {e}", row.file))?;
        let ms = t.elapsed().as_secs_f64() * 1e3 / o.track_frames.max(1) as f64;
        let face = support::matching_face(&faces, &row.gt_box);
        results.push(Result_ {
            row: i,
            pred: face.map(|f| [f.pose.yaw, f.pose.pitch, f.pose.roll]),
            ms,
            score: face.map_or(0.0, |f| f.score),
            presence: face.map_or(0.0, |f| f.presence),
        });
        progress(i + 1, rows.len(), start);
    }
    eprintln!();

    // Per-image CSV.
    let csv_path = o.out.join("per_image.csv");
    let mut csv = std::fs::File::create(&csv_path)
        .map_err(|e| format!("cannot write {}: {e}", csv_path.display()))?;
    let mut text = String::from(
        "file,yaw_true,pitch_true,roll_true,detected,yaw,pitch,roll,err_yaw,err_pitch,err_roll,err_mean,score,presence,ms\n",
    );
    for r in &results {
        let row = &rows[r.row];
        let [ty, tp, tr] = row.truth;
        match r.pred {
            Some(p) => {
                let e = [(p[0] - ty).abs(), (p[1] - tp).abs(), (p[2] - tr).abs()];
                text += &format!(
                    "{},{ty},{tp},{tr},1,{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.4},{:.4},{:.2}\n",
                    row.file,
                    p[0],
                    p[1],
                    p[2],
                    e[0],
                    e[1],
                    e[2],
                    (e[0] + e[1] + e[2]) / 3.0,
                    r.score,
                    r.presence,
                    r.ms
                );
            }
            None => text += &format!("{},{ty},{tp},{tr},0,,,,,,,,,,{:.2}\n", row.file, r.ms),
        }
    }
    csv.write_all(text.as_bytes()).map_err(|e| e.to_string())?;

    // Summary.
    let detected: Vec<(&Row, [f32; 3])> = results
        .iter()
        .filter_map(|r| r.pred.map(|p| (&rows[r.row], p)))
        .collect();
    let n = results.len();
    let stats = |filter: &dyn Fn(&Row) -> bool| {
        let mut abs = [0.0f64; 3];
        let mut signed = [0.0f64; 3];
        let mut count = 0usize;
        for (row, p) in detected.iter().filter(|(r, _)| filter(r)) {
            for k in 0..3 {
                let d = (p[k] - row.truth[k]) as f64;
                abs[k] += d.abs();
                signed[k] += d;
            }
            count += 1;
        }
        let c = count.max(1) as f64;
        (count, abs.map(|v| v / c), signed.map(|v| v / c))
    };
    let (count, mae, bias) = stats(&|_| true);
    let mut times: Vec<f64> = results.iter().map(|r| r.ms).collect();
    println!("images: {n}  (labels {})", o.labels.display());
    println!(
        "detection rate: {:.2}% ({count}/{n})",
        100.0 * count as f64 / n.max(1) as f64
    );
    println!(
        "MAE  yaw {:.2}  pitch {:.2}  roll {:.2}  mean {:.2}  (degrees)",
        mae[0],
        mae[1],
        mae[2],
        (mae[0] + mae[1] + mae[2]) / 3.0
    );
    println!(
        "mean signed error  yaw {:+.2}  pitch {:+.2}  roll {:+.2}",
        bias[0], bias[1], bias[2]
    );
    println!(
        "median time per image: {:.1} ms ({})",
        median(&mut times),
        engine.provider()
    );
    for (lo, hi) in [(0.0, 30.0), (30.0, 60.0), (60.0, 100.0)] {
        let (c, m, _) = stats(&|r: &Row| r.truth[0].abs() >= lo && r.truth[0].abs() < hi);
        println!(
            "  |yaw| {lo:>2}-{hi:<3}: {c:>4} faces  MAE yaw {:.2} pitch {:.2} roll {:.2} mean {:.2}",
            m[0],
            m[1],
            m[2],
            (m[0] + m[1] + m[2]) / 3.0
        );
    }
    println!("wrote {}", csv_path.display());
    let plot = o.out.join("error_vs_yaw.png");
    let points: Vec<(f32, f32)> = detected
        .iter()
        .map(|(r, p)| {
            (
                r.truth[0].abs(),
                (0..3).map(|k| (p[k] - r.truth[k]).abs()).sum::<f32>() / 3.0,
            )
        })
        .collect();
    plot_errors(&plot, &points)?;
    println!("wrote {}", plot.display());
    Ok(())
}

fn progress(done: usize, total: usize, start: Instant) {
    if done != total && !done.is_multiple_of(10) {
        return;
    }
    let width = 40;
    let filled = width * done / total.max(1);
    let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let eta = (total - done) as f64 / rate.max(1e-9);
    eprint!(
        "\r[{}{}] {done}/{total}  {rate:.1} img/s  eta {eta:.0} s ",
        "#".repeat(filled),
        "-".repeat(width - filled)
    );
}

fn plot_errors(path: &Path, points: &[(f32, f32)]) -> Result<(), String> {
    use plotters::prelude::*;
    let font = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
        .map_err(|e| format!("cannot read the DejaVu font (apt install fonts-dejavu-core): {e}"))?;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| "cannot register the font".to_string())?;
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    let e = |err: DrawingAreaErrorKind<_>| format!("plot: {err:?}");
    root.fill(&WHITE).map_err(e)?;
    let ymax = points.iter().map(|p| p.1).fold(10.0f32, f32::max).min(60.0);
    let mut chart = ChartBuilder::on(&root)
        .caption("Mean absolute error vs |yaw|", ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f32..100f32, 0f32..ymax)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("|yaw| label (degrees)")
        .y_desc("mean of |error| over yaw, pitch, roll (degrees)")
        .draw()
        .map_err(e)?;
    chart
        .draw_series(
            points
                .iter()
                .map(|&(x, y)| Circle::new((x, y.min(ymax)), 2, BLUE.mix(0.35).filled())),
        )
        .map_err(e)?;
    // Binned mean, 10° bins.
    let bins: Vec<(f32, f32)> = (0..10)
        .filter_map(|b| {
            let (lo, hi) = (b as f32 * 10.0, b as f32 * 10.0 + 10.0);
            let v: Vec<f32> = points
                .iter()
                .filter(|p| p.0 >= lo && p.0 < hi)
                .map(|p| p.1)
                .collect();
            (!v.is_empty()).then(|| (lo + 5.0, v.iter().sum::<f32>() / v.len() as f32))
        })
        .collect();
    chart
        .draw_series(LineSeries::new(bins.iter().copied(), RED.stroke_width(3)))
        .map_err(e)?
        .label("mean per 10° bin")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(3)));
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Every detector × landmarker × pose method available: detection rate, MAE per axis and mean,
/// and milliseconds per image, as a Markdown table.
fn matrix(base_config: &EngineConfig, rows: &[Row], base: &Path) -> Result<(), String> {
    let models = gstfacepose::engine::default_model_dir();
    let shared = support::shared_dir().join("models");
    let detectors = [
        (
            "RetinaFace MobileNetV2",
            models.join("retinaface_mbv2.onnx"),
            None,
        ),
        (
            "BlazeFace full range",
            models.join("blazeface_full.onnx"),
            None,
        ),
        (
            "RetinaFace MobileNet-0.25 (seed)",
            shared.join("retinaface_mnet025/FaceDetector.onnx"),
            Some(models.join("retinaface_mnet025.descriptor")),
        ),
    ];
    let landmarkers = [
        (
            "FaceMesh 468",
            models.join("face_landmark.onnx"),
            None,
            vec![PoseMethod::Rigid],
        ),
        (
            "PFLD 98 (seed)",
            shared.join("pfld_98/PFLD_GhostOne_112_1_opt_sim.onnx"),
            Some(models.join("pfld_98.descriptor")),
            vec![PoseMethod::Rigid, PoseMethod::SeedLinear],
        ),
    ];
    let pictures: Vec<Picture> = rows
        .iter()
        .map(|r| Picture::load(&base.join(&r.file)))
        .collect::<Result<_, _>>()?;
    println!("images: {}", rows.len());
    println!("| detector | landmarks | pose | detected | yaw | pitch | roll | mean | ms/image |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (dname, dpath, ddesc) in &detectors {
        for (lname, lpath, ldesc, methods) in &landmarkers {
            for method in methods {
                let mut config = base_config.clone();
                config.detector_model = dpath.clone();
                config.detector_descriptor = ddesc.clone();
                config.landmark_model = lpath.clone();
                config.landmark_descriptor = ldesc.clone();
                config.pose_method = *method;
                let mut engine = match Engine::new(config) {
                    Ok(e) => e,
                    Err(e) => {
                        println!(
                            "| {dname} | {lname} | {} | not available: {e} | | | | | |",
                            method.name()
                        );
                        continue;
                    }
                };
                let mut abs = [0.0f64; 3];
                let mut detected = 0usize;
                let mut times = Vec::with_capacity(rows.len());
                for (row, picture) in rows.iter().zip(&pictures) {
                    let t = Instant::now();
                    let faces = engine
                        .process(&picture.view())
                        .map_err(|e| format!("{}: {e}", row.file))?;
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                    if let Some(f) = support::matching_face(&faces, &row.gt_box) {
                        detected += 1;
                        let p = [f.pose.yaw, f.pose.pitch, f.pose.roll];
                        for k in 0..3 {
                            abs[k] += (p[k] - row.truth[k]).abs() as f64;
                        }
                    }
                }
                let m = abs.map(|v| v / detected.max(1) as f64);
                println!(
                    "| {dname} | {lname} | {} | {:.1}% | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
                    method.name(),
                    100.0 * detected as f64 / rows.len().max(1) as f64,
                    m[0],
                    m[1],
                    m[2],
                    (m[0] + m[1] + m[2]) / 3.0,
                    median(&mut times)
                );
            }
        }
    }
    Ok(())
}
