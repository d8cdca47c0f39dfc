// SPDX-License-Identifier: MPL-2.0
//! Live sources. An RTSP server on loopback (`pipelines/rtsp-serve.py`, serving the astronaut
//! picture) is killed, hung and restarted under `examples/rtsp_reconnect.rs` (included here as a
//! module), which must report each loss cleanly and reconnect with back-off. A live source faster
//! than the element keeps a bounded latency behind a leaky queue, and an unbounded one without.

#[path = "support/mod.rs"]
mod support;

#[path = "../examples/rtsp_reconnect.rs"]
#[allow(dead_code)]
mod rtsp_reconnect;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gst::prelude::*;
use rtsp_reconnect::{Backoff, Event, Options};

/// The longest the server may take to listen.
const SERVER_START: Duration = Duration::from_secs(30);
/// The longest the first frames with faces may take (model loading, RTSP set-up, decoding).
const FIRST_FACES: Duration = Duration::from_secs(90);
/// The longest from killing the server to the app reporting the loss.
const LOSS_NOTICED: Duration = Duration::from_secs(10);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `pipelines/rtsp-serve.py` serving the astronaut as 320x320 H.264 at 10 frames/s; killed when
/// dropped.
struct Server {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server on `port`; retries for a few seconds while the port is still held.
    fn start(port: u16) -> Server {
        let python = support::python_with(&[
            ("Gst", "gir1.2-gstreamer-1.0"),
            ("GstRtspServer", "gir1.2-gst-rtsp-server-1.0"),
        ]);
        let picture = &support::sample_pictures()[0];
        assert!(
            picture.exists(),
            "{} is missing: run `make models`",
            picture.display()
        );
        let launch = format!(
            "( filesrc location=\"{}\" ! pngdec ! imagefreeze is-live=true ! videoscale ! videoconvert ! video/x-raw,format=I420,width=320,height=320,framerate=10/1 ! x264enc tune=zerolatency key-int-max=10 ! rtph264pay name=pay0 pt=96 )",
            picture.display()
        );
        let deadline = Instant::now() + SERVER_START;
        loop {
            let mut child = Command::new(&python)
                .arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/pipelines/rtsp-serve.py"
                ))
                .args(["--address", "127.0.0.1", "--port", &port.to_string()])
                .args(["--launch", &launch])
                .env("GST_PLUGIN_PATH", support::test_plugin_dir())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starting pipelines/rtsp-serve.py");
            let (tx, rx) = mpsc::channel();
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            let log = Arc::new(Mutex::new(String::new()));
            let mut stderr = child.stderr.take().unwrap();
            let sink = log.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
            let server = Server { child, log };
            let wait = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(line) => {
                    assert_eq!(line.trim(), url(port));
                    return server;
                }
                // The script exits at once when it cannot listen: try again while time is left.
                Err(mpsc::RecvTimeoutError::Disconnected) if Instant::now() < deadline => {
                    drop(server);
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(_) => panic!(
                    "rtsp-serve.py did not listen on port {port} within {SERVER_START:?}:\n{}",
                    server.log()
                ),
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends a signal (STOP, CONT) to the server process.
    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{name} {}", self.child.id());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn url(port: u16) -> String {
    format!("rtsp://127.0.0.1:{port}/faces")
}

/// `rtsp_reconnect::run` on a thread, with its events timestamped.
struct App {
    stop: Arc<AtomicBool>,
    events: mpsc::Receiver<(Instant, Event)>,
    /// Every event seen so far, for failure messages.
    seen: Vec<(Instant, Event)>,
    handle: Option<JoinHandle<Result<u64, String>>>,
    started: Instant,
}

impl App {
    fn start(opts: Options) -> App {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, events) = mpsc::channel();
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            rtsp_reconnect::run(&opts, &flag, |e| {
                if let Some(line) = rtsp_reconnect::event_line(e) {
                    eprintln!("  app: {line}");
                }
                let _ = tx.send((Instant::now(), e.clone()));
            })
        });
        App {
            stop,
            events,
            seen: Vec::new(),
            handle: Some(handle),
            started: Instant::now(),
        }
    }

    /// Waits up to `timeout` for an event that `want` accepts; panics with the history if none.
    fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut want: impl FnMut(&Event) -> bool,
    ) -> (Instant, Event) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((t, e)) => {
                    self.seen.push((t, e.clone()));
                    if want(&e) {
                        return (t, e);
                    }
                }
                Err(_) => panic!(
                    "no {what} within {timeout:?}; events so far:\n{}",
                    self.history()
                ),
            }
        }
    }

    fn history(&self) -> String {
        self.seen
            .iter()
            .filter(|(_, e)| !matches!(e, Event::Frame(f) if f.index > 3 && f.index % 20 != 0))
            .map(|(t, e)| format!("  {:6.2} s {e:?}", (*t - self.started).as_secs_f64()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits for `n` frames with faces from connection `connection` or later.
    fn wait_for_faces(&mut self, n: usize, connection: u32, timeout: Duration) -> Instant {
        let mut count = 0;
        let (t, _) = self.wait_for(
            &format!("{n} frames with faces on connection {connection}+"),
            timeout,
            |e| {
                if let Event::Frame(f) = e {
                    assert!(f.has_meta, "frame {} without FacePoseMeta", f.index);
                    if f.connection >= connection && !f.faces.is_empty() {
                        count += 1;
                    }
                }
                count >= n
            },
        );
        t
    }

    /// Stops the app and returns what `run` returned; panics if it does not stop within 20 s.
    fn finish(mut self) -> Result<u64, String> {
        self.stop.store(true, Ordering::SeqCst);
        let handle = self.handle.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !handle.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the app did not stop within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        handle.join().expect("the app thread panicked")
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn options(port: u16) -> Options {
    Options {
        latency_ms: 100,
        max_retries: 30,
        stall_timeout: Duration::from_secs(6),
        backoff: Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(2),
        },
        ..Options::new(&url(port))
    }
}

/// The tests below run one at a time: each loads the models and runs at full speed, and their
/// time bounds assume they have the machine to themselves.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let b = Backoff::default();
    let ms: Vec<u128> = (1..=7).map(|r| b.delay(r).as_millis()).collect();
    assert_eq!(ms, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
    assert_eq!(b.delay(u32::MAX), b.max);
}

#[test]
fn pipeline_file_gets_faces_and_reports_a_killed_server_as_an_error() {
    let _serial = serial();
    rtsp_reconnect::init();
    let port = free_port();
    let server = Server::start(port);
    let pipeline = gst::parse::launch(&rtsp_reconnect::description())
        .expect("pipelines/rtsp-reconnect.txt parses")
        .downcast::<gst::Pipeline>()
        .unwrap();
    pipeline
        .by_name("src")
        .expect("an element named src")
        .set_property("location", url(port));
    let faces = Arc::new(Mutex::new(0usize));
    let count = faces.clone();
    pipeline
        .by_name("sink")
        .expect("an element named sink")
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let n = info
                .buffer()
                .and_then(|b| gstfacepose::meta::frame_structure(b))
                .and_then(|s| s.get::<u32>("face-count").ok())
                .unwrap_or(0);
            if n > 0 {
                *count.lock().unwrap() += 1;
            }
            gst::PadProbeReturn::Ok
        });
    let bus = pipeline.bus().unwrap();
    let started = Instant::now();
    pipeline.set_state(gst::State::Playing).unwrap();
    while *faces.lock().unwrap() < 3 {
        assert!(
            started.elapsed() < FIRST_FACES,
            "fewer than 3 frames with faces in {FIRST_FACES:?}\nserver:\n{}",
            server.log()
        );
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(100),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        ) {
            panic!(
                "{msg:?} before the server was killed\nserver:\n{}",
                server.log()
            );
        }
    }
    let before = *faces.lock().unwrap();
    drop(server);
    let killed = Instant::now();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(LOSS_NOTICED.as_secs()),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )
        .unwrap_or_else(|| panic!("no error within {LOSS_NOTICED:?} of killing the server"));
    let noticed = killed.elapsed();
    let text = match msg.view() {
        gst::MessageView::Error(e) => format!(
            "{}: {} ({:?})",
            e.src().map(|s| s.path_string()).unwrap_or_default(),
            e.error(),
            e.debug()
        ),
        other => panic!("expected an error, got {other:?}"),
    };
    let stopping = Instant::now();
    pipeline.set_state(gst::State::Null).unwrap();
    let teardown = stopping.elapsed();
    eprintln!(
        "{before} frames with faces; server killed; error after {:.2} s: {text}; teardown {:.2} s",
        noticed.as_secs_f64(),
        teardown.as_secs_f64()
    );
    assert!(text.contains("rtspsrc"), "{text}");
    assert!(
        teardown < Duration::from_secs(5),
        "teardown took {teardown:?}"
    );
}

#[test]
fn example_reconnects_after_the_server_dies_and_comes_back() {
    let _serial = serial();
    let port = free_port();
    let server = Server::start(port);
    let mut app = App::start(options(port));
    app.wait_for_faces(3, 0, FIRST_FACES);

    drop(server);
    let killed = Instant::now();
    let (t, lost) = app.wait_for("the loss", LOSS_NOTICED, |e| {
        matches!(e, Event::Lost { .. })
    });
    let Event::Lost {
        connection, reason, ..
    } = lost
    else {
        unreachable!()
    };
    eprintln!(
        "loss noticed {:.2} s after the kill: {reason}",
        (t - killed).as_secs_f64()
    );
    assert_eq!(connection, 0);
    assert!(reason.starts_with("src:"), "{reason}");

    // With nobody listening each attempt fails at once, and the waits double: 0.5, 1, 2 s.
    let mut delays = Vec::new();
    while delays.len() < 3 {
        let (_, e) = app.wait_for("a retry", Duration::from_secs(20), |e| {
            matches!(e, Event::Retry { .. })
        });
        if let Event::Retry { delay, .. } = e {
            delays.push(delay.as_millis());
        }
    }
    assert_eq!(delays, [500, 1000, 2000]);

    let server = Server::start(port);
    let restarted = Instant::now();
    let t = app.wait_for_faces(3, 1, FIRST_FACES);
    eprintln!(
        "faces again {:.1} s after the restart",
        (t - restarted).as_secs_f64()
    );
    // The back-off starts again once frames flow: the next loss waits 0.5 s again.
    drop(server);
    let (_, e) = app.wait_for("a retry after the second kill", LOSS_NOTICED, |e| {
        matches!(e, Event::Retry { .. })
    });
    assert!(
        matches!(e, Event::Retry { retry: 1, delay, .. } if delay == Duration::from_millis(500)),
        "{e:?}"
    );
    let history = app.history();
    let total = app.finish().unwrap_or_else(|e| panic!("{e}\n{history}"));
    eprintln!("{total} frames in all");
}

#[test]
fn example_gives_up_after_max_retries_with_the_last_error() {
    let _serial = serial();
    // Nothing listens on the port.
    let opts = Options {
        max_retries: 2,
        backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(200),
        },
        ..options(free_port())
    };
    let started = Instant::now();
    let mut events = Vec::new();
    let result = rtsp_reconnect::run(&opts, &AtomicBool::new(false), |e| events.push(e.clone()));
    let elapsed = started.elapsed();
    let err = result.expect_err("no server, so the app must give up");
    eprintln!("gave up after {:.2} s: {err}", elapsed.as_secs_f64());
    assert!(err.contains("gave up after 2"), "{err}");
    assert!(err.contains("src:"), "{err}");
    let count = |f: fn(&Event) -> bool| events.iter().filter(|e| f(e)).count();
    assert_eq!(
        count(|e| matches!(e, Event::Connecting { .. })),
        3,
        "{events:#?}"
    );
    assert_eq!(count(|e| matches!(e, Event::Lost { .. })), 3, "{events:#?}");
    assert_eq!(
        count(|e| matches!(e, Event::Retry { .. })),
        2,
        "{events:#?}"
    );
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}

#[test]
fn example_reconnects_after_the_server_hangs() {
    let _serial = serial();
    let port = free_port();
    let server = Server::start(port);
    let opts = options(port);
    let stall = opts.stall_timeout;
    let mut app = App::start(opts);
    app.wait_for_faces(3, 0, FIRST_FACES);

    // A hung server keeps its connections open: only a timeout can notice.
    server.signal("STOP");
    let hung = Instant::now();
    let (t, lost) = app.wait_for("the loss", stall + LOSS_NOTICED, |e| {
        matches!(e, Event::Lost { .. })
    });
    eprintln!(
        "hang noticed after {:.1} s: {lost:?}",
        (t - hung).as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(2));
    server.signal("CONT");
    let resumed = Instant::now();
    let t = app.wait_for_faces(3, 1, FIRST_FACES);
    eprintln!(
        "faces again {:.1} s after the server resumed",
        (t - resumed).as_secs_f64()
    );
    let history = app.history();
    app.finish().unwrap_or_else(|e| panic!("{e}\n{history}"));
    drop(server);
}

/// `filesrc ! pngdec ! imagefreeze` of the astronaut, with `extra` imagefreeze properties.
fn picture_source(extra: &str) -> String {
    let picture = &support::sample_pictures()[0];
    assert!(
        picture.exists(),
        "{} is missing: run `make models`",
        picture.display()
    );
    format!(
        "filesrc location=\"{}\" ! pngdec ! imagefreeze {extra}",
        picture.display()
    )
}

/// Feeds the appsrc `src` the astronaut at `fps` frames/s like a camera: each buffer is stamped
/// with the running time at which it is pushed, and the appsrc queues without limit.
fn feed(appsrc: gst_app::AppSrc, fps: u32, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    let picture = support::Picture::load(&support::sample_pictures()[0]).unwrap();
    // GStreamer's default RGB stride is the row rounded up to 4 bytes.
    assert_eq!(picture.width * 3 % 4, 0, "the astronaut's rows are padded");
    let caps = gst_video::VideoInfo::builder(
        gst_video::VideoFormat::Rgb,
        picture.width as u32,
        picture.height as u32,
    )
    .fps(gst::Fraction::new(fps as i32, 1))
    .build()
    .unwrap()
    .to_caps()
    .unwrap();
    appsrc.set_caps(Some(&caps));
    appsrc.set_property("is-live", true);
    appsrc.set_property("format", gst::Format::Time);
    appsrc.set_property("max-bytes", 0u64);
    let frame = gst::Buffer::from_slice(picture.data);
    let period = Duration::from_secs_f64(1.0 / fps as f64);
    std::thread::spawn(move || {
        let mut next = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            let now = appsrc
                .clock()
                .zip(appsrc.base_time())
                .and_then(|(clock, base)| clock.time().checked_sub(base));
            if let Some(now) = now {
                let mut buffer = frame.copy();
                {
                    let b = buffer.get_mut().unwrap();
                    b.set_pts(now);
                    b.set_duration(gst::ClockTime::from_nseconds(period.as_nanos() as u64));
                }
                if appsrc.push_buffer(buffer).is_err() {
                    break;
                }
            }
            next += period;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    })
}

/// Runs `description` (with a sink named `sink`, and an appsrc named `src` that `feed` drives
/// at `fps` when given) for `run_for` after its first frame, or to its end, and returns for each
/// frame reaching the sink (seconds since the first one, latency in seconds): the pipeline's
/// running time on arrival minus the buffer's running time.
fn latencies(description: &str, fps: Option<u32>, run_for: Duration) -> Vec<(f64, f64)> {
    rtsp_reconnect::init();
    let pipeline = gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let first = Arc::new(Mutex::new(None::<Instant>));
    let (store, start) = (samples.clone(), first.clone());
    pipeline
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let element = pad.parent_element();
            let segment = pad.sticky_event::<gst::event::Segment>(0);
            let running = info.buffer().and_then(|b| b.pts()).and_then(|pts| {
                segment?
                    .segment()
                    .downcast_ref::<gst::ClockTime>()?
                    .to_running_time(pts)
            });
            let now = element
                .as_ref()
                .and_then(|e| e.clock()?.time().checked_sub(e.base_time()?));
            if let (Some(running), Some(now)) = (running, now) {
                let latency = now.nseconds() as f64 / 1e9 - running.nseconds() as f64 / 1e9;
                let t0 = *start.lock().unwrap().get_or_insert_with(Instant::now);
                store
                    .lock()
                    .unwrap()
                    .push((t0.elapsed().as_secs_f64(), latency));
            }
            gst::PadProbeReturn::Ok
        });
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = fps.map(|fps| {
        let appsrc = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .expect("an appsrc named src");
        feed(appsrc, fps, stop.clone())
    });
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + FIRST_FACES;
    loop {
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(50),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        ) {
            match msg.view() {
                gst::MessageView::Eos(_) => break,
                _ => panic!("{msg:?} in {description}"),
            }
        }
        let started = *first.lock().unwrap();
        match started {
            Some(t) if t.elapsed() >= run_for => break,
            None => assert!(Instant::now() < deadline, "no frame from {description}"),
            _ => {}
        }
    }
    stop.store(true, Ordering::SeqCst);
    pipeline.set_state(gst::State::Null).unwrap();
    if let Some(f) = feeder {
        f.join().unwrap();
    }
    samples.lock().unwrap().clone()
}

/// The element as the latency test runs it: the detector on every frame, so that each frame costs
/// the same and the element is surely slower than the source (with tracking, a still picture
/// takes a few milliseconds a frame).
const ANALYSIS: &str = "faceposeestimator detection-interval=1";

/// Seconds per frame of `ANALYSIS` on the astronaut, after five warm-up frames.
fn seconds_per_frame() -> f64 {
    let samples = latencies(
        &format!(
            "{} ! videoconvert ! {ANALYSIS} ! fakesink name=sink sync=false",
            picture_source("num-buffers=25")
        ),
        None,
        Duration::from_secs(600),
    );
    let (a, b) = (samples[5].0, samples[samples.len() - 1].0);
    (b - a) / (samples.len() - 6) as f64
}

/// (frames, largest latency, median latency) of the samples from `from` seconds on.
fn summary(samples: &[(f64, f64)], from: f64) -> (usize, f64, f64) {
    let mut l: Vec<f64> = samples
        .iter()
        .filter(|(t, _)| *t >= from)
        .map(|(_, l)| *l)
        .collect();
    l.sort_by(f64::total_cmp);
    let max = l.last().copied().unwrap_or(f64::NAN);
    let median = l.get(l.len() / 2).copied().unwrap_or(f64::NAN);
    (l.len(), max, median)
}

#[test]
fn a_leaky_queue_bounds_latency_behind_a_fast_live_source() {
    let _serial = serial();
    let per_frame = seconds_per_frame();
    // Three times faster than the element: without dropping, a frame waits longer each time.
    let fps = ((3.0 / per_frame).ceil() as u32).clamp(10, 240);
    assert!(
        per_frame > 2.0 / fps as f64,
        "the element ({:.1} ms/frame) keeps up with {fps} frames/s: no backlog to bound",
        per_frame * 1e3
    );
    let source = "appsrc name=src";
    let run_for = Duration::from_secs(6);
    let cases = [
        (
            "leaky queue",
            "queue leaky=downstream max-size-buffers=1 max-size-bytes=0 max-size-time=0 ! ANALYSIS ! fakesink name=sink sync=false",
        ),
        ("no queue", "ANALYSIS ! fakesink name=sink sync=false"),
        (
            "element QoS",
            "ANALYSIS ! fakesink name=sink sync=true qos=true",
        ),
    ];
    let mut results = Vec::new();
    for (name, tail) in cases {
        let tail = tail.replace("ANALYSIS", ANALYSIS);
        let samples = latencies(&format!("{source} ! {tail}"), Some(fps), run_for);
        let (n, first_max, _) = summary(
            &samples
                .iter()
                .copied()
                .filter(|(t, _)| *t < 2.0)
                .collect::<Vec<_>>(),
            0.0,
        );
        let (m, last_max, last_median) = summary(&samples, run_for.as_secs_f64() - 1.0);
        eprintln!(
            "{name}: {:.1} ms/frame, source {fps} frames/s; {} frames in {:.0} s; \
             latency max {:.3} s in the first 2 s ({n} frames), max {:.3} s median {:.3} s in \
             the last second ({m} frames)",
            per_frame * 1e3,
            samples.len(),
            run_for.as_secs_f64(),
            first_max,
            last_max,
            last_median
        );
        results.push((name, summary(&samples, 1.0).1, last_median, samples));
    }
    // A frame waits for at most the frame in progress, then takes its own turn: about two frame
    // times. The bound leaves room for a busy machine.
    let bound = (6.0 * per_frame).max(1.5);
    let (_, leaky_max, _, _) = &results[0];
    assert!(
        *leaky_max < bound,
        "leaky queue: latency reached {leaky_max:.3} s (bound {bound:.3} s)"
    );
    // Without the queue the backlog grows by about two thirds of a second per second.
    let (_, _, plain_last, plain) = &results[1];
    let plain_first = summary(&plain[..plain.len().min(5)], 0.0).2;
    assert!(
        *plain_last > plain_first + 1.0 && *plain_last > bound,
        "no queue: latency went from {plain_first:.3} s to {plain_last:.3} s; expected it to grow"
    );
}
