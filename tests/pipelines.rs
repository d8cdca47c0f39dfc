// SPDX-License-Identifier: MPL-2.0
//! The documented pipelines in `pipelines/*.txt` run, with their sources and sinks swapped for
//! test ones, and `pipelines/rtsp-serve.py` serves frames that a client can analyse.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once, mpsc};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_video::prelude::*;

/// Frames each test source sends.
const FRAMES: usize = 3;
/// The longest a pipeline may take to reach EOS.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(120);
/// Words that must not survive the substitutions: placeholders, devices, windows, network.
const FORBIDDEN: [&str; 7] = [
    "INPUT",
    "OUTPUT",
    "CAMERA",
    "v4l2src",
    "rtspsrc",
    "autovideosink",
    "rtsp://",
];

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfacepose::plugin_register_static().expect("registering the facepose plugin");
    });
}

fn project() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The pipeline description of a `pipelines/*.txt` file: its lines without the `#` comments.
fn description(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A source of `FRAMES` frames of the astronaut (one face).
fn face_source() -> String {
    let picture = &support::sample_pictures()[0];
    assert!(
        picture.exists(),
        "{} is missing: run `make models`",
        picture.display()
    );
    format!(
        "filesrc location=\"{}\" ! pngdec ! imagefreeze num-buffers={FRAMES}",
        picture.display()
    )
}

fn test_source() -> String {
    format!("videotestsrc num-buffers={FRAMES}")
}

/// How one pipeline file is made runnable here.
struct Case {
    /// (from, to) replacements, applied in order; each `from` must occur in the description.
    replacements: Vec<(&'static str, String)>,
    /// Whether the source shows a face, so that every frame must have one.
    faces: bool,
    /// Fewest frames that must reach the element (fewer than `FRAMES` past a leaky queue).
    min_frames: usize,
    /// A check of the files the pipeline wrote, after EOS.
    check: Option<fn(&Path)>,
}

/// The substitutions for each pipeline file. A new `pipelines/*.txt` needs an entry here.
fn case(file: &str, tmp: &Path) -> Option<Case> {
    let out = |name: &str| tmp.join(name).display().to_string();
    Some(match file {
        "file-to-annotated-mp4.txt" => Case {
            replacements: vec![
                ("filesrc location=INPUT.mp4 ! decodebin", face_source()),
                ("OUTPUT.mp4", out("annotated.mp4")),
            ],
            faces: true,
            min_frames: FRAMES,
            check: Some(check_annotated_mp4),
        },
        "attention-screen.txt" => Case {
            replacements: vec![
                ("v4l2src device=/dev/video0", face_source()),
                ("video/x-raw,width=640,height=480 ! ", String::new()),
                ("attention.jsonl", out("faces.jsonl")),
                ("autovideosink sync=false", "fakesink".into()),
            ],
            faces: true,
            min_frames: FRAMES,
            check: Some(check_attention_lines),
        },
        "webcam-to-screen.txt" => Case {
            // The caps filter asks for 640x480, which the picture is not: a test pattern then.
            replacements: vec![
                ("v4l2src device=/dev/video0", test_source()),
                ("autovideosink sync=false", "fakesink".into()),
            ],
            faces: false,
            min_frames: FRAMES,
            check: None,
        },
        "rtsp-reconnect.txt" => Case {
            replacements: vec![(
                "rtspsrc name=src location=rtsp://CAMERA/stream latency=200 tcp-timeout=5000000 ! decodebin",
                face_source(),
            )],
            faces: true,
            // The leaky queue drops frames while the element is busy, as it should.
            min_frames: 1,
            check: None,
        },
        "rtsp-camera.txt" => Case {
            replacements: vec![
                (
                    "rtspsrc location=rtsp://CAMERA/stream latency=200 ! decodebin",
                    face_source(),
                ),
                ("autovideosink sync=false", "fakesink".into()),
            ],
            faces: true,
            // The leaky queue drops frames while the element is busy, as it should.
            min_frames: 1,
            check: None,
        },
        "rtsp-annotated-out.txt" => Case {
            replacements: vec![
                (
                    "videotestsrc is-live=true ! video/x-raw,width=640,height=480,framerate=10/1",
                    face_source(),
                ),
                (
                    "rtph264pay name=pay0 pt=96",
                    "rtph264pay name=pay0 pt=96 ! fakesink".into(),
                ),
            ],
            faces: true,
            min_frames: FRAMES,
            check: None,
        },
        // gpu-json-export.txt: no GPU here, so it runs on the CPU (with its warning), as documented.
        "json-export.txt" | "gpu-json-export.txt" | "every-frame-json.txt" => Case {
            replacements: vec![
                ("filesrc location=INPUT.mp4 ! decodebin", face_source()),
                ("OUTPUT.jsonl", out("faces.jsonl")),
            ],
            faces: true,
            min_frames: FRAMES,
            check: Some(check_json_lines),
        },
        "mqtt-publish.txt" => Case {
            // No broker here (tests/publish.rs runs this file against one): the video plays on.
            replacements: vec![
                ("filesrc location=INPUT.mp4 ! decodebin", face_source()),
                (
                    "address=127.0.0.1:1883",
                    format!("address=127.0.0.1:{}", free_port()),
                ),
            ],
            faces: true,
            min_frames: FRAMES,
            check: None,
        },
        _ => return None,
    })
}

/// What the `faceposeestimator` of a run saw.
#[derive(Default)]
struct Counts {
    buffers: AtomicUsize,
    with_meta: AtomicUsize,
    with_faces: AtomicUsize,
}

/// Counts the buffers leaving every `faceposeestimator` in `bin`, with and without faces.
fn watch_estimators(bin: &gst::Bin) -> Arc<Counts> {
    let counts = Arc::new(Counts::default());
    let mut found = 0;
    let mut it = bin.iterate_recurse();
    while let Ok(Some(e)) = it.next() {
        if e.factory().is_none_or(|f| f.name() != "faceposeestimator") {
            continue;
        }
        found += 1;
        let c = counts.clone();
        e.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(buffer) = info.buffer() {
                    c.buffers.fetch_add(1, Ordering::SeqCst);
                    if let Some(s) = gstfacepose::meta::frame_structure(buffer) {
                        c.with_meta.fetch_add(1, Ordering::SeqCst);
                        if s.get::<u32>("face-count").unwrap_or(0) > 0 {
                            c.with_faces.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                gst::PadProbeReturn::Ok
            });
    }
    assert_eq!(found, 1, "expected one faceposeestimator in the pipeline");
    counts
}

/// Runs a description to EOS; the top level may be a bin in parentheses (a factory line).
fn run_to_eos(description: &str) -> Result<Arc<Counts>, String> {
    init();
    let element = gst::parse::launch(description).map_err(|e| format!("parse error: {e}"))?;
    let pipeline = match element.downcast::<gst::Pipeline>() {
        Ok(p) => p,
        Err(element) => {
            let p = gst::Pipeline::new();
            p.add(&element).unwrap();
            p
        }
    };
    let counts = watch_estimators(pipeline.upcast_ref());
    let bus = pipeline.bus().unwrap();
    let result = pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("cannot start: {e}"))
        .and_then(|_| {
            let msg = bus
                .timed_pop_filtered(
                    gst::ClockTime::from_seconds(PIPELINE_TIMEOUT.as_secs()),
                    &[gst::MessageType::Eos, gst::MessageType::Error],
                )
                .ok_or(format!("no EOS within {PIPELINE_TIMEOUT:?}"))?;
            match msg.view() {
                gst::MessageView::Eos(_) => Ok(()),
                gst::MessageView::Error(e) => Err(format!(
                    "error from {}: {} ({:?})",
                    e.src().map(|s| s.path_string()).unwrap_or_default(),
                    e.error(),
                    e.debug()
                )),
                _ => unreachable!(),
            }
        });
    pipeline.set_state(gst::State::Null).unwrap();
    result.map(|_| counts)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("facepose-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pipeline_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(project().join("pipelines"))
        .expect("the pipelines folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
}

/// Decodes the first frame of a video file to packed RGB.
fn first_frame_rgb(path: &Path) -> (Vec<u8>, usize, usize) {
    init();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGB ! fakesink name=sink signal-handoffs=true num-buffers=1",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    pipeline
        .by_name("sink")
        .unwrap()
        .connect("handoff", false, move |args| {
            let buffer = args[1].get::<gst::Buffer>().unwrap();
            let pad = args[2].get::<gst::Pad>().unwrap();
            let info = gst_video::VideoInfo::from_caps(&pad.current_caps().unwrap()).unwrap();
            let frame = gst_video::VideoFrame::from_buffer_readable(buffer, &info).unwrap();
            let (w, h) = (info.width() as usize, info.height() as usize);
            let stride = frame.plane_stride()[0] as usize;
            let data = frame.plane_data(0).unwrap();
            let rgb: Vec<u8> = (0..h)
                .flat_map(|y| data[y * stride..y * stride + w * 3].iter().copied())
                .collect();
            let _ = tx.lock().unwrap().send((rgb, w, h));
            None
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    let frame = rx.recv_timeout(Duration::from_secs(60));
    pipeline.set_state(gst::State::Null).unwrap();
    frame.unwrap_or_else(|_| panic!("no frame decoded from {}", path.display()))
}

/// The MP4 holds `FRAMES` frames with a face (found by the detector on every frame: the drawn
/// landmarks cover the face, and FaceMesh's presence score, which tracking relies on, drops), and
/// differs from the same frames encoded without
/// `draw` around the face only: the overlay is there.
fn check_annotated_mp4(tmp: &Path) {
    let mp4 = tmp.join("annotated.mp4");
    let counts = run_to_eos(&format!(
        "filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 ! videoconvert ! faceposeestimator detection-interval=1 ! fakesink",
        mp4.display()
    ))
    .unwrap_or_else(|e| panic!("decoding {}: {e}", mp4.display()));
    assert_eq!(counts.buffers.load(Ordering::SeqCst), FRAMES);
    assert_eq!(counts.with_faces.load(Ordering::SeqCst), FRAMES);

    let plain = tmp.join("plain.mp4");
    let description = description(&project().join("pipelines/file-to-annotated-mp4.txt"))
        .replace("filesrc location=INPUT.mp4 ! decodebin", &face_source())
        .replace("OUTPUT.mp4", &plain.display().to_string())
        .replace("draw=true", "draw=false");
    run_to_eos(&description).expect("encoding without draw");
    let (a, w, h) = first_frame_rgb(&mp4);
    let (b, w2, h2) = first_frame_rgb(&plain);
    assert_eq!((w, h), (w2, h2));
    // The astronaut's face is in the top third; the bottom 40 % has no drawing.
    let (mut near, mut far) = (0usize, 0usize);
    for (i, (pa, pb)) in a.chunks_exact(3).zip(b.chunks_exact(3)).enumerate() {
        let changed = pa.iter().zip(pb).any(|(x, y)| x.abs_diff(*y) > 64);
        if changed {
            if i / w < h * 6 / 10 {
                near += 1;
            } else {
                far += 1;
            }
        }
    }
    eprintln!("overlay: {near} pixels changed near the face, {far} far from it");
    assert!(near > 300, "only {near} pixels changed by the overlay");
    assert!(
        far * 20 < near,
        "{far} pixels changed far from the face (vs {near} near it)"
    );
}

/// One JSON object per frame, each with one face and its angles.
/// The frame lines of the JSON Lines the pipeline wrote; any other line must be the one that
/// ends the open tracks at EOS.
fn frame_lines(tmp: &Path) -> Vec<String> {
    let path = tmp.join("faces.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let (frames, others): (Vec<&str>, Vec<&str>) =
        text.lines().partition(|l| l.starts_with("{\"pts\":"));
    assert_eq!(frames.len(), FRAMES, "{text}");
    assert!(
        others.len() <= 1
            && others
                .iter()
                .all(|l| l.starts_with("{\"tracks_ended\":\"eos\"")),
        "{text}"
    );
    frames.into_iter().map(String::from).collect()
}

/// Every face says where it looks, and whether its gaze meets the screen.
fn check_attention_lines(tmp: &Path) {
    for l in frame_lines(tmp) {
        for key in [
            "\"attention\":{\"position\":[",
            "\"target_point\":",
            "\"looking\":",
        ] {
            assert_eq!(l.matches(key).count(), 1, "{key} in {l}");
        }
    }
}

fn check_json_lines(tmp: &Path) {
    for l in frame_lines(tmp) {
        let l = l.as_str();
        assert!(l.starts_with("{\"pts\":") && l.ends_with('}'), "{l}");
        // One face: one box, one method, one set of each estimate (the reported angles, the
        // landmark fit's and the regressor's each have a yaw, pitch and roll).
        for key in ["\"box\":", "\"method\":", "\"fit\":", "\"regression\":"] {
            assert_eq!(l.matches(key).count(), 1, "{key} in {l}");
        }
        for key in ["\"yaw\":", "\"pitch\":", "\"roll\":"] {
            assert_eq!(l.matches(key).count(), 3, "{key} in {l}");
        }
    }
}

#[test]
fn every_pipeline_file_has_a_case() {
    let tmp = temp_dir("cases");
    let files = pipeline_files();
    assert!(files.len() >= 5, "pipelines/*.txt: {files:?}");
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(
            case(name, &tmp).is_some(),
            "pipelines/{name} has no entry in case() in tests/pipelines.rs: add its substitutions"
        );
    }
}

#[test]
fn every_pipeline_file_runs_with_test_sources() {
    let tmp = temp_dir("pipelines");
    let mut failures = Vec::new();
    for path in pipeline_files() {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(case) = case(&name, &tmp) else {
            failures.push(format!("{name}: no entry in case()"));
            continue;
        };
        let original = description(&path);
        let mut d = original.clone();
        for (from, to) in &case.replacements {
            assert!(
                d.contains(from),
                "{name}: the substitution {from:?} does not occur in: {original}"
            );
            d = d.replace(from, to);
        }
        if let Some(w) = FORBIDDEN.iter().find(|w| d.contains(**w)) {
            failures.push(format!("{name}: {w:?} is left after substitutions: {d}"));
            continue;
        }
        let started = Instant::now();
        match run_to_eos(&d) {
            Err(e) => failures.push(format!("{name}: {e}\n  pipeline: {d}")),
            Ok(counts) => {
                let buffers = counts.buffers.load(Ordering::SeqCst);
                let meta = counts.with_meta.load(Ordering::SeqCst);
                let faces = counts.with_faces.load(Ordering::SeqCst);
                eprintln!(
                    "{name}: {buffers} buffers, {faces} with faces, {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                if !(case.min_frames..=FRAMES).contains(&buffers) || meta != buffers {
                    failures.push(format!(
                        "{name}: {buffers} buffers, {meta} with FacePoseMeta (want {}..={FRAMES})",
                        case.min_frames
                    ));
                } else if case.faces && faces != buffers {
                    failures.push(format!("{name}: faces in {faces} of {buffers} frames"));
                } else if let Some(check) = case.check {
                    check(&tmp);
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A child process that is killed when dropped, so that a failing test leaves none behind.
struct Server {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    fn stderr(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn rtsp_serve_script_serves_frames_a_client_can_analyse() {
    let python = support::python_with(&[
        ("Gst", "gir1.2-gstreamer-1.0"),
        ("GstRtspServer", "gir1.2-gst-rtsp-server-1.0"),
    ]);
    init();
    for element in ["x264enc", "rtspsrc", "avdec_h264"] {
        assert!(
            gst::ElementFactory::find(element).is_some(),
            "no {element}: apt-get install -y gstreamer1.0-plugins-ugly gstreamer1.0-plugins-good gstreamer1.0-libav"
        );
    }
    let port = free_port();
    let started = Instant::now();
    let mut child = Command::new(&python)
        .arg(project().join("pipelines/rtsp-serve.py"))
        .args(["--address", "127.0.0.1", "--port", &port.to_string()])
        .env("GST_PLUGIN_PATH", support::test_plugin_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting pipelines/rtsp-serve.py");
    let (out_tx, out_rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    let (err_tx, err_rx) = mpsc::channel();
    let mut stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            let _ = err_tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    let mut server = Server {
        child,
        stderr: err_rx,
    };

    let url = format!("rtsp://127.0.0.1:{port}/faces");
    match out_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(line) => assert_eq!(line.trim(), url),
        Err(_) => panic!(
            "rtsp-serve.py did not start within 30 s:\n{}",
            server.stderr()
        ),
    }

    let pipeline = gst::parse::launch(&format!(
        "rtspsrc location={url} latency=0 ! decodebin ! videoconvert ! faceposeestimator ! fakesink name=sink"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let counts = watch_estimators(pipeline.upcast_ref());
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut error = None;
    while counts.with_meta.load(Ordering::SeqCst) < FRAMES && Instant::now() < deadline {
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(100),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        ) {
            error = Some(format!("{msg:?}"));
            break;
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let alive = server.child.try_wait().unwrap().is_none();
    let with_meta = counts.with_meta.load(Ordering::SeqCst);
    let log = server.stderr();
    drop(server);
    eprintln!(
        "rtsp: {with_meta} frames with FacePoseMeta in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(alive, "rtsp-serve.py exited during the test:\n{log}");
    assert!(
        error.is_none(),
        "client: {}\nserver:\n{log}",
        error.unwrap()
    );
    assert!(
        with_meta >= FRAMES,
        "only {with_meta} frames with FacePoseMeta in 60 s\nserver:\n{log}"
    );
}
