// SPDX-License-Identifier: MPL-2.0
//! `examples/bench.rs` (`make bench`) with `--quick` on the AFLW2000 shots case: it completes,
//! prints an fps figure and the faces it found (frames with a face, faces per frame) for every
//! configuration of our element and writes its Markdown report. Behaviour only, no timing. Without
//! upstream's `facedetect` the bench says how to install it and goes on. The case reads
//! `../shared/data/aflw2000`: without it the bench skips the case with a note (and fails under
//! `CI=true`), so these tests then skip too.

#[path = "support/mod.rs"]
mod support;

#[path = "../examples/bench.rs"]
#[allow(dead_code)]
mod bench;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One results row of ours: fps, frames with a face (found, of), faces per frame.
type Row = (Option<f64>, Option<(usize, usize)>, Option<f64>);

/// The results rows of the report for our element on the shots case.
fn our_rows(report: &str) -> Vec<Row> {
    report
        .lines()
        .filter(|l| l.starts_with("| 640×480 AFLW2000 shots") && l.contains("faceposeestimator"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            // Results rows have 13 columns; the ratio table's rows have 7.
            (cells.len() == 15).then(|| {
                let fps = cells[3].parse::<f64>().ok();
                let frames = cells[4]
                    .split_once('/')
                    .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
                let per_frame = cells[5]
                    .split_whitespace()
                    .next()
                    .and_then(|f| f.parse().ok());
                (fps, frames, per_frame)
            })
        })
        .collect()
}

fn shared_images() -> bool {
    support::shared_or_skip("data/aflw2000/images", "bench_smoke").is_some()
}

fn check_report(text: &str, out_dir: &Path) {
    let rows = our_rows(text);
    assert_eq!(rows.len(), 6, "six configurations of ours:\n{text}");
    for (fps, frames, per_frame) in &rows {
        assert!(
            fps.is_some_and(|f| f > 0.0 && f.is_finite()),
            "an fps figure per row:\n{text}"
        );
        let (found, of) = frames.unwrap_or_else(|| panic!("frames with a face per row:\n{text}"));
        assert!(of == 30 && found <= of, "30 frames in --quick:\n{text}");
        // Every still of the first three holds a face that every configuration finds.
        assert!(found > 0, "faces found:\n{text}");
        assert!(
            per_frame.is_some_and(|f| f > 0.0),
            "faces per frame per row:\n{text}"
        );
    }
    // The row asked for one face, as MediaPipe's row, reports at most one a frame.
    let one_face = text
        .lines()
        .find(|l| l.starts_with("| 640×480 AFLW2000 shots") && l.contains("max-faces=1"))
        .unwrap_or_else(|| panic!("a max-faces=1 row:\n{text}"));
    let per_frame: f64 = one_face
        .split('|')
        .map(str::trim)
        .nth(5)
        .and_then(|c| c.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("faces per frame in {one_face}"));
    assert!(per_frame > 0.0 && per_frame <= 1.0, "{one_face}");
    assert!(text.contains("## Against facedetect"), "{text}");
    assert!(text.contains("## Asked for the same faces"), "{text}");
    let facedetect_ran = text.contains("| facedetect (videoconvert");
    assert!(
        facedetect_ran || text.contains("facedetect is not installed"),
        "facedetect either runs or the bench says how to install it:\n{text}"
    );
    let md = std::fs::read_to_string(out_dir.join("bench.md")).expect("bench.md is written");
    assert!(md.contains("## Results"), "{md}");
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("facepose-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn quick_bench_prints_fps_and_writes_its_report() {
    if !shared_images() {
        return;
    }
    let dir = scratch_dir("bench-smoke");
    let args: Vec<String> = ["--quick", "--case", "shots", "--in-process", "--out"]
        .iter()
        .map(|s| s.to_string())
        .chain([dir.to_string_lossy().into_owned()])
        .collect();
    let mut out = Vec::new();
    let result = bench::run(&args, &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(result.is_ok(), "{result:?}\n{text}");
    check_report(&text, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_rejects_unknown_arguments() {
    let mut out = Vec::new();
    let e = bench::run(&["--nonsense".to_string()], &mut out).expect_err("unknown argument");
    assert!(e.contains("--nonsense"), "{e}");
}

/// The built example binary, which runs every configuration in a child process of its own, when
/// it is there and newer than its source (`cargo build --examples`, `make bench`).
#[test]
fn built_bench_runs_its_children() {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().unwrap().parent().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bench.rs");
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let fresh = ["examples/bench", "../release/examples/bench"]
        .iter()
        .map(|p| profile.join(p))
        .find(|p| modified(p).is_some_and(|built| Some(built) >= modified(&source)));
    let Some(bench) = fresh else {
        eprintln!(
            "SKIPPED: no examples/bench newer than its source under {} (cargo build --examples)",
            profile.display()
        );
        return;
    };
    if !shared_images() {
        return;
    }
    let dir = scratch_dir("bench-child");
    let output = Command::new(&bench)
        .args(["--quick", "--case", "shots", "--out"])
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bench.display()));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{}\n{text}\n{}",
        bench.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    check_report(&text, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}
