// SPDX-License-Identifier: MPL-2.0
//! The metadata readers in `examples/`: `read_metas.py` (PyGObject, with the built plugin) prints
//! the same faces and angles as `read_metas.rs` (included here as a module) reads in-process,
//! and the built `read_metas` example runs.

#[path = "support/mod.rs"]
mod support;

#[path = "../examples/read_metas.rs"]
#[allow(dead_code)]
mod read_metas;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use read_metas::FrameReport;

const TIMEOUT: Duration = Duration::from_secs(120);
/// Largest allowed difference between the Python and the Rust reading, in degrees.
const ANGLE_TOLERANCE: f64 = 0.01;

fn project() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `<target>/<profile>`: this test binary lives in its `deps` folder.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// Runs a command to its end, killing it after `timeout`; returns (success, stdout, stderr).
fn run_bounded(cmd: &mut Command, timeout: Duration) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(s) => (s.success(), out, err),
        None => panic!("{cmd:?} did not finish within {timeout:?}\n{out}\n{err}"),
    }
}

/// The numbers (or `None` for null) that follow `"key": ` in a JSON line, in order.
fn values(line: &str, key: &str) -> Vec<Option<f64>> {
    let pattern = format!("\"{key}\": ");
    line.match_indices(&pattern)
        .map(|(i, _)| {
            let rest = &line[i + pattern.len()..];
            let end = rest.find([',', '}', ']']).unwrap_or(rest.len());
            match rest[..end].trim() {
                "null" => None,
                v => Some(
                    v.parse::<f64>()
                        .unwrap_or_else(|e| panic!("{key}: {v:?}: {e} in {line}")),
                ),
            }
        })
        .collect()
}

/// Runs `examples/read_metas.py` (with `--pipeline` when given) and returns its JSON lines.
fn python_lines(pipeline: Option<&str>) -> Vec<String> {
    let mut cmd = Command::new(support::python_with(&[
        ("Gst", "gir1.2-gstreamer-1.0"),
        ("GstVideo", "gir1.2-gst-plugins-base-1.0"),
    ]));
    cmd.arg(project().join("examples/read_metas.py"))
        .args(["--timeout", &TIMEOUT.as_secs().to_string()])
        .env("GST_PLUGIN_PATH", support::test_plugin_dir());
    if let Some(p) = pipeline {
        cmd.args(["--pipeline", p]);
    }
    let (ok, out, err) = run_bounded(&mut cmd, TIMEOUT + Duration::from_secs(10));
    assert!(ok, "read_metas.py failed:\n{out}\n{err}");
    out.lines().map(str::to_owned).collect()
}

/// Checks the Python lines against the Rust reading of the same pipeline.
fn compare(python: &[String], rust: &[FrameReport], expected_frames: usize) {
    assert_eq!(rust.len(), expected_frames, "Rust frames");
    assert_eq!(python.len(), expected_frames, "Python lines:\n{python:#?}");
    for (line, frame) in python.iter().zip(rust) {
        let info = frame.info.as_ref().expect("a FacePoseMeta on every buffer");
        // The two readings of the Rust side agree: ROI metas and FacePoseMeta.
        assert_eq!(info.face_count as usize, frame.faces.len());
        for (roi, meta) in frame.faces.iter().zip(&info.faces) {
            assert_eq!(
                [roi.yaw, roi.pitch, roi.roll],
                [meta.yaw, meta.pitch, meta.roll]
            );
            assert_eq!(roi.method, meta.method);
            assert_eq!(roi.method, "fused");
            assert_eq!(roi.bbox, meta.bbox);
            assert!(roi.looking.is_some(), "the attention parameter");
            assert_eq!(
                (roi.looking, roi.camera_angle, roi.z_cm),
                (meta.looking, meta.camera_angle, meta.z_cm)
            );
            assert!(roi.z_cm.is_some_and(|z| z > 0.0), "{roi:?}");
        }
        assert!(!frame.faces.is_empty(), "no face in frame {}", frame.index);

        assert_eq!(values(line, "frame"), [Some(frame.index as f64)], "{line}");
        assert_eq!(
            values(line, "face_count"),
            [Some(info.face_count as f64)],
            "{line}"
        );
        assert_eq!(
            values(line, "pts"),
            [frame.pts.map(|t| t.nseconds() as f64)],
            "{line}"
        );
        assert_eq!(
            line.matches("\"method\": \"fused\"").count(),
            frame.faces.len(),
            "{line}"
        );
        let ids = values(line, "id");
        assert_eq!(ids.len(), frame.faces.len(), "{line}");
        for (k, f) in frame.faces.iter().enumerate() {
            assert_eq!(ids[k], Some(f.id as f64), "{line}");
            for (key, rust_value) in [
                ("yaw", f.yaw),
                ("pitch", f.pitch),
                ("roll", f.roll),
                ("camera_angle", f.camera_angle),
                ("z_cm", f.z_cm.unwrap_or(f64::NAN)),
            ] {
                let py = values(line, key)[k].unwrap_or(f64::NAN);
                assert!(
                    (py - rust_value).abs() <= ANGLE_TOLERANCE,
                    "frame {} face {k} {key}: Python {py}, Rust {rust_value}",
                    frame.index
                );
            }
            for (key, rust_value) in ["x_min", "y_min", "x_max", "y_max"].iter().zip(f.bbox) {
                let py = values(line, key)[k].unwrap_or(f64::NAN);
                assert!(
                    (py - rust_value).abs() <= 1e-6,
                    "frame {} face {k} {key}: Python {py}, Rust {rust_value}",
                    frame.index
                );
            }
        }
    }
}

#[test]
fn python_reader_matches_the_rust_reader_on_the_default_pipeline() {
    let started = Instant::now();
    let rust = read_metas::collect(&read_metas::default_pipeline(), Some(TIMEOUT))
        .expect("the Rust reader");
    let python = python_lines(None);
    compare(&python, &rust, 5);
    eprintln!(
        "default pipeline: {} frames, yaw {:+.2} pitch {:+.2} roll {:+.2}, {:.1} s",
        rust.len(),
        rust[0].faces[0].yaw,
        rust[0].faces[0].pitch,
        rust[0].faces[0].roll,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn python_reader_matches_the_rust_reader_on_a_given_pipeline() {
    let picture = &support::sample_pictures()[1];
    assert!(
        picture.exists(),
        "{} is missing: run `make models`",
        picture.display()
    );
    // NV12 exercises the element's YUV path; both readers get the same frames.
    let description = format!(
        "filesrc location=\"{}\" ! jpegdec ! imagefreeze num-buffers=2 ! videoconvert ! video/x-raw,format=NV12 ! faceposeestimator ! appsink name=sink sync=false",
        picture.display()
    );
    let rust = read_metas::collect(&description, Some(TIMEOUT)).expect("the Rust reader");
    let python = python_lines(Some(&description));
    compare(&python, &rust, 2);
}

#[test]
fn python_reader_reports_frames_without_the_element() {
    let python = python_lines(Some(
        "videotestsrc num-buffers=2 ! appsink name=sink sync=false",
    ));
    assert_eq!(python.len(), 2, "{python:#?}");
    for line in &python {
        assert_eq!(values(line, "face_count"), [None], "{line}");
        assert!(line.ends_with("\"faces\": []}"), "{line}");
    }
}

#[test]
fn rust_reader_rejects_a_pipeline_without_an_appsink() {
    let e = read_metas::collect("videotestsrc num-buffers=1 ! fakesink", Some(TIMEOUT))
        .expect_err("no appsink");
    assert!(e.contains("appsink named sink"), "{e}");
}

/// The built example binary runs, when it is there and newer than its source and the library's
/// sources: plain `cargo test` and `cargo build --examples` build it; `cargo test --all-targets`
/// builds only its test-harness variant, and the in-process tests above cover the same code.
#[test]
fn built_rust_example_prints_faces() {
    let exe = profile_dir().join("examples/read_metas");
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    // The example links the library: it is stale when any of the library's sources is newer.
    fn newest_under(dir: &Path) -> Option<std::time::SystemTime> {
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                if p.is_dir() {
                    newest_under(&p)
                } else {
                    p.metadata().and_then(|m| m.modified()).ok()
                }
            })
            .max()
    }
    let newest_input = modified(&project().join("examples/read_metas.rs"))
        .into_iter()
        .chain(newest_under(&project().join("src")))
        .max();
    if modified(&exe).is_none_or(|built| Some(built) < newest_input) {
        eprintln!(
            "SKIPPED: {} is missing or older than its source or the library's (cargo build \
             --examples builds it)",
            exe.display()
        );
        return;
    }
    let (ok, out, err) = run_bounded(&mut Command::new(&exe), TIMEOUT);
    assert!(ok, "{}:\n{out}\n{err}", exe.display());
    assert_eq!(out.matches("roi  face 0:").count(), 5, "{out}");
    assert_eq!(out.matches("meta face 0:").count(), 5, "{out}");
    assert!(out.trim_end().ends_with("5 buffer(s)"), "{out}");
}

/// The Python snippet of README.md ("Reading the faces from an app") runs as written, on the
/// astronaut picture instead of `in.mp4`, and prints the face.
#[test]
fn the_readme_python_snippet_reads_the_faces() {
    let readme = std::fs::read_to_string(project().join("README.md")).unwrap();
    let start = readme
        .find("```python\n")
        .expect("a Python block in README.md")
        + 10;
    let code = &readme[start..start + readme[start..].find("```").unwrap()];
    let picture = support::sample_pictures()[0].clone();
    let source = format!(
        "filesrc location={} ! pngdec ! imagefreeze num-buffers=2",
        picture.display()
    );
    let original = "filesrc location=in.mp4 ! decodebin";
    assert!(code.contains(original), "the snippet reads in.mp4:\n{code}");
    let code = code.replace(original, &source);
    let script = std::env::temp_dir().join(format!("facepose-readme-{}.py", std::process::id()));
    std::fs::write(&script, code).unwrap();
    let mut cmd = Command::new(support::python_with(&[
        ("Gst", "gir1.2-gstreamer-1.0"),
        ("GstVideo", "gir1.2-gst-plugins-base-1.0"),
    ]));
    cmd.arg(&script)
        .env("GST_PLUGIN_PATH", support::test_plugin_dir());
    let (ok, out, err) = run_bounded(&mut cmd, TIMEOUT);
    let _ = std::fs::remove_file(&script);
    assert!(ok, "the README snippet failed:\n{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    // Two frames, one face each: its id, yaw, pitch and verdict, then its box.
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("0 ") && (lines[0].ends_with("looking") || lines[0].ends_with("away")),
        "{out}"
    );
    assert!(lines[1].starts_with("  box "), "{out}");
}
