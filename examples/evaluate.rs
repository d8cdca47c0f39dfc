// SPDX-License-Identifier: MPL-2.0
//! Head-pose accuracy on a labelled set (AFLW2000-3D's labels.csv layout).
//!
//! `cargo run --release --example evaluate -- ../shared/data/aflw2000/labels.csv [options]`
//!
//! Options:
//! - which images: `--all` (also the rows with within_99deg = 0), `--limit N` (first N rows),
//!   `--every K` (every K-th row);
//! - models: `--detector PATH` / `--landmarker PATH` (ONNX model with its descriptor beside it, or
//!   given by `--detector-descriptor PATH` / `--landmark-descriptor PATH`), `--pose-model PATH`
//!   (head-pose regressor; descriptor beside it or `--pose-descriptor PATH`), `--no-pose-model`
//!   (landmarks alone);
//! - pose: `--pose-method NAME` (fused, regression, rigid, seed-linear; default: the engine's),
//!   `--camera-fov DEG` (0: angles relative to each face's line of sight), `--no-mirror` (no mirror
//!   averaging);
//! - engine: `--input-size N`, `--refine N`, `--threads N`, `--track-frames N` (each picture as a
//!   still video of N frames through the tracker; the last frame is scored), `--shots N` (the
//!   pictures as one stream, each held N frames, scene cuts between them, without a reset; frame
//!   `--shot-frame K` of each is scored, default 0: the cut), `--smoothing S` and
//!   `--no-async-detection` (with `--track-frames` or `--shots`: detection in line, as
//!   `async-detection=false`; by default the pipelined schedule, as the element runs files);
//! - `--out DIR` (default `out/eval`);
//! - `--tune-fusion`: grid-search the fusion's parameters on the tuning fifth (see below) from each
//!   face's landmark-fit and regressor estimates, and report the best with their held-out errors;
//! - `--matrix`: every detector × landmarker × pose method × pose model available instead (a
//!   Markdown table of detection rate, MAE and time).
//!
//! Prints detection rate, MAE per axis and mean, mean signed error, median time per image and MAE
//! by |yaw| band of the final angles; then, for all images, the tuning fifth (images whose index in
//! the label list, after the within_99deg filter, is a multiple of 5) and the held-out rest, a
//! table of each estimate the engine gave (final angles, landmark fit, regressor): faces, MAE per
//! axis and mean, and mean MAE per |yaw| band of the label. Writes `per_image.csv`, `summary.md`
//! (those tables, and the fusion search) and `error_vs_yaw.png` to the output folder.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use gstfacepose::engine::geometry::BBox;
use gstfacepose::engine::pose::fusion::{DEFAULT_FUSION, Fusion};
use gstfacepose::engine::{Engine, EngineConfig, Pose, PoseMethod, TrackConfig};
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
    pose_method: Option<PoseMethod>,
    pose_model: Option<PathBuf>,
    pose_descriptor: Option<PathBuf>,
    no_pose_model: bool,
    camera_fov: Option<f32>,
    threads: Option<usize>,
    async_detection: bool,
    matrix: bool,
    tune_fusion: bool,
    no_mirror: bool,
    no_pose_mirror: bool,
    track_frames: usize,
    /// Each picture held this many frames, all in one stream (`--shots N`), and the frame of each
    /// scored (`--shot-frame K`).
    shots: usize,
    shot_frame: usize,
    smoothing: f32,
}

const USAGE: &str = "usage: evaluate LABELS.csv [--all] [--limit N] [--every K] [--out DIR] \
    [--input-size N] [--refine N] [--threads N] [--detector PATH] [--detector-descriptor PATH] \
    [--landmarker PATH] [--landmark-descriptor PATH] [--pose-method fused|regression|rigid|seed-linear] \
    [--pose-model PATH] [--pose-descriptor PATH] [--no-pose-model] [--camera-fov DEG] [--no-mirror] \
    [--track-frames N | --shots N [--shot-frame K]] [--smoothing S] [--no-async-detection] \
    [--tune-fusion] [--matrix]";

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
        pose_method: None,
        pose_model: None,
        pose_descriptor: None,
        no_pose_model: false,
        camera_fov: None,
        threads: None,
        async_detection: true,
        matrix: false,
        tune_fusion: false,
        no_mirror: false,
        no_pose_mirror: false,
        track_frames: 0,
        shots: 0,
        shot_frame: 0,
        smoothing: 0.0,
    };
    let mut args = std::env::args().skip(1);
    let number = |name: &str, v: Option<String>| -> Result<usize, String> {
        v.ok_or(format!("{name} needs a value"))?
            .parse()
            .map_err(|_| format!("{name} needs a whole number"))
    };
    let path = |name: &str, v: Option<String>| -> Result<Option<PathBuf>, String> {
        Ok(Some(PathBuf::from(
            v.ok_or(format!("{name} needs a path"))?,
        )))
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
            "--no-async-detection" => o.async_detection = false,
            "--detector" => o.detector = path(&a, args.next())?,
            "--detector-descriptor" => o.detector_descriptor = path(&a, args.next())?,
            "--landmarker" => o.landmarker = path(&a, args.next())?,
            "--landmark-descriptor" => o.landmark_descriptor = path(&a, args.next())?,
            "--pose-model" => o.pose_model = path(&a, args.next())?,
            "--pose-descriptor" => o.pose_descriptor = path(&a, args.next())?,
            "--no-pose-model" => o.no_pose_model = true,
            "--pose-method" => {
                o.pose_method = Some(
                    args.next()
                        .as_deref()
                        .and_then(PoseMethod::from_name)
                        .ok_or_else(|| {
                            let names: Vec<&str> = PoseMethod::ALL.map(|m| m.name()).to_vec();
                            format!("--pose-method needs one of {}", names.join(", "))
                        })?,
                )
            }
            "--camera-fov" => {
                o.camera_fov = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .filter(|v| (0.0..180.0).contains(v))
                        .ok_or("--camera-fov needs degrees in 0..180")?,
                )
            }
            "--matrix" => o.matrix = true,
            "--tune-fusion" => o.tune_fusion = true,
            "--no-mirror" => o.no_mirror = true,
            "--no-pose-mirror" => o.no_pose_mirror = true,
            "--track-frames" => o.track_frames = number("--track-frames", args.next())?,
            "--shots" => o.shots = number("--shots", args.next())?,
            "--shot-frame" => o.shot_frame = number("--shot-frame", args.next())?,
            "--smoothing" => {
                o.smoothing = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|v| (0.0..=1.0).contains(v))
                    .ok_or("--smoothing needs a number in 0..=1")?
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}")),
            _ => o.labels = PathBuf::from(a),
        }
    }
    if o.labels.as_os_str().is_empty() {
        return Err(USAGE.into());
    }
    if o.no_pose_model && (o.pose_model.is_some() || o.pose_descriptor.is_some()) {
        return Err("--no-pose-model goes with neither --pose-model nor --pose-descriptor".into());
    }
    Ok(o)
}

/// The engine's configuration: the defaults with the options applied.
fn engine_config(o: &Options) -> Result<EngineConfig, String> {
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
    config.detection_mode = if o.async_detection {
        gstfacepose::engine::DetectionMode::Pipelined
    } else {
        gstfacepose::engine::DetectionMode::InLine
    };
    if let Some(d) = &o.detector {
        config.detector_model = d.clone();
    }
    config.detector_descriptor = o.detector_descriptor.clone();
    if let Some(l) = &o.landmarker {
        config.landmark_model = l.clone();
    }
    config.landmark_descriptor = o.landmark_descriptor.clone();
    if let Some(m) = o.pose_method {
        config.pose_method = m;
    }
    if o.no_pose_model {
        config.pose_model = None;
    } else if let Some(p) = &o.pose_model {
        config.pose_model = Some(p.clone());
    }
    config.pose_descriptor = o.pose_descriptor.clone();
    if let Some(fov) = o.camera_fov {
        config.camera_fov = fov;
    }
    config.mirror_average = !o.no_mirror;
    config.pose_mirror_average = !o.no_pose_mirror;
    Ok(config)
}

/// One labelled row.
struct Row {
    /// Position in the label list after the within_99deg filter (decides the split).
    index: usize,
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
            index: rows.len(),
            file: f.get(cf).ok_or("missing file column")?.trim().to_string(),
            truth: [num(cy)?, num(cp)?, num(cr)?],
            gt_box: BBox::new(num(cb[0])?, num(cb[1])?, num(cb[2])?, num(cb[3])?),
        });
    }
    Ok(rows)
}

/// What the engine said about one labelled face.
#[derive(Clone, Copy)]
struct Found {
    /// The final angles and the method that produced them.
    pose: Pose,
    method: PoseMethod,
    /// The landmark fit's and the regressor's own estimates, when they ran.
    fit: Option<Pose>,
    reg: Option<Pose>,
    /// The regressor's share of `pose`.
    weight: f32,
    score: f32,
    presence: f32,
}

/// One labelled image's result (same order as the rows).
struct Outcome {
    found: Option<Found>,
    ms: f64,
}

fn angles(p: &Pose) -> [f32; 3] {
    [p.yaw, p.pitch, p.roll]
}

/// The |yaw| bands of the label, degrees, lower bound included.
const BANDS: [(f32, f32); 3] = [(0.0, 30.0), (30.0, 60.0), (60.0, 100.0)];

/// Error sums over a set of faces.
#[derive(Clone, Copy, Default)]
struct Errors {
    count: usize,
    abs: [f64; 3],
    signed: [f64; 3],
}

impl Errors {
    fn add(&mut self, truth: [f32; 3], pred: [f32; 3]) {
        for k in 0..3 {
            let d = (pred[k] - truth[k]) as f64;
            self.abs[k] += d.abs();
            self.signed[k] += d;
        }
        self.count += 1;
    }

    /// MAE per axis (NaN without faces).
    fn mae(&self) -> [f64; 3] {
        self.abs.map(|v| v / self.count as f64)
    }

    /// Mean of the three MAEs.
    fn mean(&self) -> f64 {
        self.mae().iter().sum::<f64>() / 3.0
    }

    fn bias(&self) -> [f64; 3] {
        self.signed.map(|v| v / self.count as f64)
    }
}

/// Errors over all faces and per |yaw| band of the label.
#[derive(Clone, Copy, Default)]
struct Scores {
    all: Errors,
    bands: [Errors; 3],
}

impl Scores {
    fn add(&mut self, truth: [f32; 3], pred: [f32; 3]) {
        self.all.add(truth, pred);
        let yaw = truth[0].abs();
        if let Some(b) = BANDS.iter().position(|&(lo, hi)| yaw >= lo && yaw < hi) {
            self.bands[b].add(truth, pred);
        }
    }
}

/// Which images count.
#[derive(Clone, Copy)]
enum Split {
    All,
    /// Label index a multiple of 5: where the fusion is tuned.
    Tuning,
    HeldOut,
}

impl Split {
    const ALL: [Split; 3] = [Split::All, Split::Tuning, Split::HeldOut];

    fn name(self) -> &'static str {
        match self {
            Split::All => "all",
            Split::Tuning => "tuning fifth (label index a multiple of 5)",
            Split::HeldOut => "held-out rest",
        }
    }

    fn contains(self, index: usize) -> bool {
        match self {
            Split::All => true,
            Split::Tuning => index.is_multiple_of(5),
            Split::HeldOut => !index.is_multiple_of(5),
        }
    }
}

/// The errors of the angles `pose` gives, over the detected faces of `split`.
fn scores(
    rows: &[Row],
    results: &[Outcome],
    split: Split,
    pose: impl Fn(&Found) -> Option<Pose>,
) -> Scores {
    let mut s = Scores::default();
    for (row, r) in rows.iter().zip(results) {
        if let Some(p) = r
            .found
            .as_ref()
            .filter(|_| split.contains(row.index))
            .and_then(&pose)
        {
            s.add(row.truth, angles(&p));
        }
    }
    s
}

/// The estimates each face may carry.
#[derive(Clone, Copy)]
enum Estimate {
    Final,
    Fit,
    Regression,
}

impl Estimate {
    const ALL: [Estimate; 3] = [Estimate::Final, Estimate::Fit, Estimate::Regression];

    fn of(self, f: &Found) -> Option<Pose> {
        match self {
            Estimate::Final => Some(f.pose),
            Estimate::Fit => f.fit,
            Estimate::Regression => f.reg,
        }
    }

    /// Row label; the final angles name the method(s) that produced them.
    fn label(self, results: &[Outcome]) -> String {
        match self {
            Estimate::Final => {
                let mut counts: Vec<(usize, PoseMethod)> = PoseMethod::ALL
                    .into_iter()
                    .map(|m| {
                        let n = results
                            .iter()
                            .filter(|r| r.found.as_ref().is_some_and(|f| f.method == m))
                            .count();
                        (n, m)
                    })
                    .filter(|c| c.0 > 0)
                    .collect();
                counts.sort_by_key(|c| std::cmp::Reverse(c.0));
                let names: Vec<String> = counts
                    .iter()
                    .enumerate()
                    .map(|(i, (n, m))| match i {
                        0 => m.name().to_string(),
                        _ => format!("{} on {n}", m.name()),
                    })
                    .collect();
                format!("final ({})", names.join("; "))
            }
            Estimate::Fit => "rigid fit".into(),
            Estimate::Regression => "regression".into(),
        }
    }
}

/// Two decimals, or `-` for a mean over nothing.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "-".into()
    }
}

const BAND_HEADER: &str = "0-30° | 30-60° | 60-100°";

/// Mean MAE per band with the band's face count, as table cells.
fn band_cells(s: &Scores) -> String {
    s.bands
        .iter()
        .map(|b| format!("{} ({})", num(b.mean()), b.count))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Markdown table of each estimate on `split`.
fn estimate_table(rows: &[Row], results: &[Outcome], split: Split) -> String {
    let images = rows.iter().filter(|r| split.contains(r.index)).count();
    let mut t = format!("\n### {}: {images} images\n\n", split.name());
    if images == 0 {
        return t + "no images\n";
    }
    t += &format!(
        "| estimate | faces | yaw | pitch | roll | mean | {BAND_HEADER} |\n\
         |---|---|---|---|---|---|---|---|---|\n"
    );
    for e in Estimate::ALL {
        let s = scores(rows, results, split, |f| e.of(f));
        if s.all.count == 0 {
            continue;
        }
        let m = s.all.mae();
        t += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            e.label(results),
            s.all.count,
            num(m[0]),
            num(m[1]),
            num(m[2]),
            num(s.all.mean()),
            band_cells(&s)
        );
    }
    t
}

/// The angles `fusion` gives a face from its fit and regressor estimates (either alone when the
/// other is missing, the final angles when both are).
fn fused(f: &Found, fusion: &Fusion) -> Pose {
    match (f.fit, f.reg) {
        (Some(fit), Some(reg)) => {
            Pose::from_rotation(&fusion.fuse(&fit.to_rotation(), &reg.to_rotation()).0)
        }
        (fit, reg) => fit.or(reg).unwrap_or(f.pose),
    }
}

/// Grid search of the fusion's parameters on the tuning fifth; Markdown report of the best few
/// and the default, each on the tuning fifth and the held-out rest.
fn tune_fusion(rows: &[Row], results: &[Outcome]) -> String {
    const SHOWN: usize = 5;
    let mut t = String::from("\n## Fusion search\n\n");
    let both = |split: Split| {
        rows.iter()
            .zip(results)
            .filter(|(row, r)| {
                split.contains(row.index)
                    && r.found
                        .as_ref()
                        .is_some_and(|f| f.fit.is_some() && f.reg.is_some())
            })
            .count()
    };
    if both(Split::Tuning) == 0 {
        return t + "no face of the tuning fifth has both a landmark fit and a regressor estimate \
                    (run with --pose-method fused and a pose model)\n";
    }
    let mut grid = Vec::new();
    for start in (0..=40).step_by(5) {
        for full in (start + 5..=80).step_by(5) {
            grid.push(Fusion {
                start: start as f32,
                full: full as f32,
            });
        }
    }
    let score =
        |fusion: &Fusion, split: Split| scores(rows, results, split, |f| Some(fused(f, fusion)));
    let mut ranked: Vec<(Fusion, f64)> = grid
        .iter()
        .map(|f| (*f, score(f, Split::Tuning).all.mean()))
        .collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    t += &format!(
        "{} settings (start 0-40, full start+5-80, step 5), ranked \
         by mean MAE on the tuning fifth ({} faces with both estimates; held-out: {}). Cells: mean \
         MAE, per |yaw| band with its face count.\n\n\
         | fusion | start | full | tuning mean | {BAND_HEADER} | held-out mean | {BAND_HEADER} |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
        grid.len(),
        both(Split::Tuning),
        both(Split::HeldOut),
    );
    let shown = std::iter::once(("default".to_string(), DEFAULT_FUSION)).chain(
        ranked
            .iter()
            .take(SHOWN)
            .enumerate()
            .map(|(i, (f, _))| (format!("#{}", i + 1), *f)),
    );
    for (name, f) in shown {
        let (tune, held) = (score(&f, Split::Tuning), score(&f, Split::HeldOut));
        t += &format!(
            "| {name} | {} | {} | {} | {} | {} | {} |\n",
            f.start,
            f.full,
            num(tune.all.mean()),
            band_cells(&tune),
            num(held.all.mean()),
            band_cells(&held)
        );
    }
    t
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The pictures as one stream of shots (`--shots N`): each held `o.shots` frames, back to back
/// through one tracker (scene cuts between them: a face may be followed onto the next picture's),
/// pipelined as the element runs a file (or in line, `--no-async-detection`); the faces of frame
/// `o.shot_frame` of each picture are scored, and its time is the mean over its frames.
fn shots(
    engine: &mut Engine,
    rows: &[Row],
    base: &Path,
    o: &Options,
    start: Instant,
) -> Result<Vec<Outcome>, String> {
    use gstfacepose::engine::pipeline::PIPELINE_DEPTH;
    use std::collections::{HashMap, VecDeque};
    if o.shot_frame >= o.shots {
        return Err(format!(
            "--shot-frame {} is not below --shots {}",
            o.shot_frame, o.shots
        ));
    }
    engine.reset_tracking();
    let mut pictures: HashMap<usize, Picture> = HashMap::new();
    let mut held: VecDeque<(usize, usize, bool)> = VecDeque::new();
    let mut found: Vec<Option<Found>> = vec![None; rows.len()];
    let mut ms = vec![0.0; rows.len()];
    let mut finish = |engine: &mut Engine,
                      pictures: &mut HashMap<usize, Picture>,
                      (i, frame, scheduled): (usize, usize, bool)|
     -> Result<(), String> {
        let view = pictures[&i].view();
        let time = Some((i * o.shots + frame) as f64 / 30.0);
        let t = Instant::now();
        let faces = if o.async_detection {
            engine.track_scheduled(&view, time, scheduled)
        } else {
            engine.track(&view, time)
        }
        .map_err(|e| format!("{}: {e}", rows[i].file))?;
        ms[i] += t.elapsed().as_secs_f64() * 1e3 / o.shots as f64;
        if frame == o.shot_frame {
            found[i] = support::matching_face(&faces, &rows[i].gt_box).map(found_of);
        }
        if frame + 1 == o.shots {
            pictures.remove(&i);
            progress(i + 1, rows.len(), start);
        }
        Ok(())
    };
    for (i, row) in rows.iter().enumerate() {
        pictures.insert(i, Picture::load(&base.join(&row.file))?);
        for frame in 0..o.shots {
            if !o.async_detection {
                finish(engine, &mut pictures, (i, frame, false))?;
                continue;
            }
            if held.len() >= PIPELINE_DEPTH {
                let oldest = held.pop_front().expect("not empty");
                finish(engine, &mut pictures, oldest)?;
            }
            let scheduled = engine
                .schedule(&pictures[&i].view())
                .map_err(|e| format!("{}: {e}", row.file))?;
            held.push_back((i, frame, scheduled));
        }
    }
    while let Some(oldest) = held.pop_front() {
        finish(engine, &mut pictures, oldest)?;
    }
    Ok(found
        .into_iter()
        .zip(ms)
        .map(|(found, ms)| Outcome { found, ms })
        .collect())
}

fn found_of(f: &gstfacepose::engine::Face) -> Found {
    Found {
        pose: f.pose,
        method: f.method,
        fit: f.fit_pose,
        reg: f.regressed_pose,
        weight: f.regressor_weight,
        score: f.score,
        presence: f.presence,
    }
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
    let config = engine_config(&o)?;
    std::fs::create_dir_all(&o.out)
        .map_err(|e| format!("cannot create {}: {e}", o.out.display()))?;
    if o.matrix {
        return matrix(&config, &rows, base);
    }
    let setup = format!(
        "pose method {}, pose model {}, camera fov {}°",
        config.pose_method.name(),
        config
            .pose_model
            .as_ref()
            .map_or("none".into(), |p| p.display().to_string()),
        config.camera_fov
    );
    let mut engine = Engine::new(config).map_err(|e| e.to_string())?;
    engine
        .set_track_config(TrackConfig {
            smoothing: o.smoothing,
            ..TrackConfig::default()
        })
        .map_err(|e| e.to_string())?;

    let mut results = Vec::with_capacity(rows.len());
    let start = Instant::now();
    if o.shots > 0 {
        results = shots(&mut engine, &rows, base, &o, start)?;
    }
    for (i, row) in rows.iter().enumerate().skip(results.len()) {
        let picture = Picture::load(&base.join(&row.file))?;
        let t = Instant::now();
        let faces = if o.track_frames == 0 {
            engine.process(&picture.view())
        } else {
            engine.reset_tracking();
            let view = picture.view();
            if o.async_detection {
                // As the element runs a file: the pipelined schedule.
                let frames: Vec<_> = (0..o.track_frames)
                    .map(|frame| (view, Some(frame as f64 / 30.0)))
                    .collect();
                engine
                    .track_pipelined(&frames)
                    .map(|mut all| all.pop().unwrap_or_default())
            } else {
                let mut faces = Ok(Vec::new());
                for frame in 0..o.track_frames {
                    faces = engine.track(&view, Some(frame as f64 / 30.0));
                }
                faces
            }
        }
        .map_err(|e| format!("{}: {e}", row.file))?;
        let ms = t.elapsed().as_secs_f64() * 1e3 / o.track_frames.max(1) as f64;
        let found = support::matching_face(&faces, &row.gt_box).map(found_of);
        results.push(Outcome { found, ms });
        progress(i + 1, rows.len(), start);
    }
    eprintln!();

    let csv_path = o.out.join("per_image.csv");
    write_csv(&csv_path, &rows, &results)?;

    // Summary of the final angles.
    let summary = scores(&rows, &results, Split::All, |f| Some(f.pose));
    let (n, count) = (rows.len(), summary.all.count);
    let mut times: Vec<f64> = results.iter().map(|r| r.ms).collect();
    println!("images: {n}  (labels {})", o.labels.display());
    println!("{setup}");
    println!(
        "detection rate: {:.2}% ({count}/{n})",
        100.0 * count as f64 / n.max(1) as f64
    );
    let (mae, bias) = (summary.all.mae(), summary.all.bias());
    println!(
        "MAE  yaw {:.2}  pitch {:.2}  roll {:.2}  mean {:.2}  (degrees)",
        mae[0],
        mae[1],
        mae[2],
        summary.all.mean()
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
    for ((lo, hi), band) in BANDS.iter().zip(&summary.bands) {
        let m = band.mae();
        println!(
            "  |yaw| {lo:>2}-{hi:<3}: {:>4} faces  MAE yaw {:.2} pitch {:.2} roll {:.2} mean {:.2}",
            band.count,
            m[0],
            m[1],
            m[2],
            band.mean()
        );
    }

    // Each estimate on all images, the tuning fifth and the held-out rest; the fusion search.
    let mut md = format!(
        "# Head-pose evaluation\n\n{n} images ({}), {count} detected; {setup}. MAE in degrees; the \
         band columns give the mean MAE over the faces whose label has that |yaw| (face count in \
         brackets).\n",
        o.labels.display()
    );
    for split in Split::ALL {
        md += &estimate_table(&rows, &results, split);
    }
    if o.tune_fusion {
        md += &tune_fusion(&rows, &results);
    }
    println!("{md}");
    let md_path = o.out.join("summary.md");
    std::fs::write(&md_path, &md)
        .map_err(|e| format!("cannot write {}: {e}", md_path.display()))?;
    println!("wrote {}", csv_path.display());
    println!("wrote {}", md_path.display());

    let plot = o.out.join("error_vs_yaw.png");
    let points: Vec<(f32, f32)> = rows
        .iter()
        .zip(&results)
        .filter_map(|(row, r)| {
            let p = angles(&r.found.as_ref()?.pose);
            let err = (0..3).map(|k| (p[k] - row.truth[k]).abs()).sum::<f32>() / 3.0;
            Some((row.truth[0].abs(), err))
        })
        .collect();
    plot_errors(&plot, &points)?;
    println!("wrote {}", plot.display());
    Ok(())
}

/// One line per image: labels, final angles and errors, then each estimate.
fn write_csv(path: &Path, rows: &[Row], results: &[Outcome]) -> Result<(), String> {
    let cells = |p: Option<Pose>| {
        p.map_or(",,".into(), |p| {
            format!("{:.3},{:.3},{:.3}", p.yaw, p.pitch, p.roll)
        })
    };
    let mut text = String::from(
        "file,yaw_true,pitch_true,roll_true,detected,yaw,pitch,roll,err_yaw,err_pitch,err_roll,err_mean,score,presence,ms,\
         method,fit_yaw,fit_pitch,fit_roll,reg_yaw,reg_pitch,reg_roll,reg_weight\n",
    );
    for (row, r) in rows.iter().zip(results) {
        let [ty, tp, tr] = row.truth;
        text += &format!("{},{ty},{tp},{tr},", row.file);
        match &r.found {
            Some(f) => {
                let p = angles(&f.pose);
                let e = [0, 1, 2].map(|k| (p[k] - row.truth[k]).abs());
                text += &format!(
                    "1,{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.4},{:.4},{:.2},{},{},{},{:.3}\n",
                    p[0],
                    p[1],
                    p[2],
                    e[0],
                    e[1],
                    e[2],
                    (e[0] + e[1] + e[2]) / 3.0,
                    f.score,
                    f.presence,
                    r.ms,
                    f.method.name(),
                    cells(f.fit),
                    cells(f.reg),
                    f.weight
                );
            }
            None => text += &format!("0,,,,,,,,,,{:.2},,,,,,,,\n", r.ms),
        }
    }
    let mut csv =
        std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    csv.write_all(text.as_bytes()).map_err(|e| e.to_string())
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

/// A model file with its descriptor (`None`: beside it).
struct Model {
    name: &'static str,
    path: PathBuf,
    descriptor: Option<PathBuf>,
}

impl Model {
    fn new(name: &'static str, path: PathBuf, descriptor: Option<PathBuf>) -> Model {
        Model {
            name,
            path,
            descriptor,
        }
    }
}

/// Every detector × landmarker × pose method available (and, for the default detector with
/// FaceMesh, regression and fusion with each head-pose regressor found): detection rate, MAE per
/// axis and mean, and milliseconds per image, as a Markdown table.
fn matrix(base_config: &EngineConfig, rows: &[Row], base: &Path) -> Result<(), String> {
    let models = gstfacepose::engine::default_model_dir();
    let shared = support::shared_dir().join("models");
    let detectors = [
        Model::new(
            "RetinaFace MobileNetV2",
            models.join("retinaface_mbv2.onnx"),
            None,
        ),
        Model::new(
            "BlazeFace full range",
            models.join("blazeface_full.onnx"),
            None,
        ),
        Model::new(
            "RetinaFace MobileNet-0.25 (seed)",
            shared.join("retinaface_mnet025/FaceDetector.onnx"),
            Some(models.join("retinaface_mnet025.descriptor")),
        ),
    ];
    let landmarkers = [
        (
            Model::new("FaceMesh 468", models.join("face_landmark.onnx"), None),
            vec![PoseMethod::Rigid],
        ),
        (
            Model::new(
                "PFLD 98 (seed)",
                shared.join("pfld_98/PFLD_GhostOne_112_1_opt_sim.onnx"),
                Some(models.join("pfld_98.descriptor")),
            ),
            vec![PoseMethod::Rigid, PoseMethod::SeedLinear],
        ),
    ];
    let regressors: Vec<Model> = [
        Model::new("WHENet", models.join("whenet.onnx"), None),
        Model::new(
            "Lightweight b66",
            shared.join("headpose_lightweight/lightweight_b66.onnx"),
            Some(models.join("headpose_lightweight.descriptor")),
        ),
        Model::new(
            "FSA-Net capsule 1x1",
            shared.join("fsanet/fsanet_capsule_1x1.onnx"),
            Some(models.join("fsanet_capsule_1x1.descriptor")),
        ),
    ]
    .into_iter()
    .filter(|m| {
        let found = m.path.exists();
        if !found {
            println!(
                "skipping pose model {}: {} is missing",
                m.name,
                m.path.display()
            );
        }
        found
    })
    .collect();
    // (detector, landmarker, method, regressor); the landmark methods run without a regressor.
    let mut runs: Vec<(&Model, &Model, PoseMethod, Option<&Model>)> = Vec::new();
    for (di, detector) in detectors.iter().enumerate() {
        for (li, (landmarker, methods)) in landmarkers.iter().enumerate() {
            runs.extend(methods.iter().map(|&m| (detector, landmarker, m, None)));
            if di == 0 && li == 0 {
                for r in &regressors {
                    for m in [PoseMethod::Regression, PoseMethod::Fused] {
                        runs.push((detector, landmarker, m, Some(r)));
                    }
                }
            }
        }
    }
    let pictures: Vec<Picture> = rows
        .iter()
        .map(|r| Picture::load(&base.join(&r.file)))
        .collect::<Result<_, _>>()?;
    println!("images: {}", rows.len());
    println!(
        "| detector | landmarks | pose | pose model | detected | yaw | pitch | roll | mean | ms/image |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (detector, landmarker, method, regressor) in runs {
        let mut config = base_config.clone();
        config.detector_model = detector.path.clone();
        config.detector_descriptor = detector.descriptor.clone();
        config.landmark_model = landmarker.path.clone();
        config.landmark_descriptor = landmarker.descriptor.clone();
        config.pose_method = method;
        config.pose_model = regressor.map(|r| r.path.clone());
        config.pose_descriptor = regressor.and_then(|r| r.descriptor.clone());
        let head = format!(
            "| {} | {} | {} | {} |",
            detector.name,
            landmarker.name,
            method.name(),
            regressor.map_or("none", |r| r.name)
        );
        let mut engine = match Engine::new(config) {
            Ok(e) => e,
            Err(e) => {
                println!("{head} not available: {e} | | | | | |");
                continue;
            }
        };
        let mut errors = Errors::default();
        let mut times = Vec::with_capacity(rows.len());
        for (row, picture) in rows.iter().zip(&pictures) {
            let t = Instant::now();
            let faces = engine
                .process(&picture.view())
                .map_err(|e| format!("{}: {e}", row.file))?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            if let Some(f) = support::matching_face(&faces, &row.gt_box) {
                errors.add(row.truth, angles(&f.pose));
            }
        }
        let m = errors.mae();
        println!(
            "{head} {:.1}% | {} | {} | {} | {} | {:.0} |",
            100.0 * errors.count as f64 / rows.len().max(1) as f64,
            num(m[0]),
            num(m[1]),
            num(m[2]),
            num(errors.mean()),
            median(&mut times)
        );
    }
    Ok(())
}
