// SPDX-License-Identifier: MPL-2.0
//! Watches an RTSP stream with `faceposeestimator` and keeps watching when the server goes away:
//! on an error, an end of stream or a stall it tears the pipeline down and reconnects with
//! exponential back-off (0.5 s doubling to 8 s by default, reset once frames flow again).
//!
//! ```text
//! cargo run --release --example rtsp_reconnect -- rtsp://127.0.0.1:8554/faces
//! cargo run --release --example rtsp_reconnect -- URL [--frames N] [--max-retries N] [--latency MS]
//!     [--stall-timeout S] [--backoff-initial MS] [--backoff-max MS] [--tcp]
//! ```
//!
//! Each connection runs `pipelines/rtsp-reconnect.txt` (compiled in) with the URL set on its
//! `rtspsrc`. The app prints a line per frame with faces (from the `FacePoseMeta`), one per lost
//! stream and one per reconnect attempt; it exits 0 after `--frames` frames and 1 with the last
//! error once `--max-retries` consecutive attempts brought no frame. `tests/live.rs` includes
//! this file as a module and runs `run()` against a loopback server that it kills and restarts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Once, mpsc};
use std::time::{Duration, Instant};

use gst::prelude::*;

/// The pipeline run for each connection; its `rtspsrc` is named `src`, its sink `sink`.
pub const PIPELINE_FILE: &str = include_str!("../pipelines/rtsp-reconnect.txt");

/// How long to wait before each reconnect attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(8),
        }
    }
}

impl Backoff {
    /// The wait before retry `retry` (1 for the first): `initial` doubled per retry, capped at
    /// `max`.
    pub fn delay(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// What to watch and how hard to try.
#[derive(Debug, Clone)]
pub struct Options {
    pub url: String,
    /// Stop after this many frames (all frames, with or without faces); `None`: never.
    pub frames: Option<u64>,
    /// Give up after this many consecutive reconnect attempts that brought no frame.
    pub max_retries: u32,
    /// rtspsrc `latency` (jitter buffer), in milliseconds.
    pub latency_ms: u32,
    /// Reconnect when no frame arrives for this long (a hung server, a dead network).
    pub stall_timeout: Duration,
    pub backoff: Backoff,
    /// RTP over the RTSP TCP connection (`protocols=tcp`) instead of UDP.
    pub tcp: bool,
}

impl Options {
    pub fn new(url: &str) -> Self {
        Options {
            url: url.to_string(),
            frames: None,
            max_retries: 10,
            latency_ms: 200,
            stall_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            tcp: false,
        }
    }
}

/// One face's pose, from the `FacePoseMeta`.
#[derive(Debug, Clone, PartialEq)]
pub struct FacePose {
    pub confidence: f64,
    pub yaw: f64,
    pub pitch: f64,
    pub roll: f64,
}

/// One frame that reached the sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Counts every frame of every connection.
    pub index: u64,
    /// Which connection (0 for the first).
    pub connection: u32,
    pub pts: Option<gst::ClockTime>,
    /// Whether the buffer carried a `FacePoseMeta`.
    pub has_meta: bool,
    pub faces: Vec<FacePose>,
}

/// What happens, in order, for the caller to print or check.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A pipeline is starting; `retry` is 0 for the first try and after frames flowed.
    Connecting {
        connection: u32,
        retry: u32,
    },
    Frame(Frame),
    /// A warning on the bus (rtspsrc's "The server closed the connection.", for one).
    Warning(String),
    /// The stream ended: an error, an end of stream or a stall. The pipeline is torn down.
    Lost {
        connection: u32,
        frames: u64,
        reason: String,
    },
    /// About to wait `delay` before retry `retry` of at most `max_retries`.
    Retry {
        retry: u32,
        max_retries: u32,
        delay: Duration,
    },
}

/// Initialises GStreamer and registers the facepose plugin, once per process.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("initialising GStreamer");
        gstfacepose::plugin_register_static().expect("registering the facepose plugin");
    });
}

/// The description in `PIPELINE_FILE`: its lines without the `#` comments.
pub fn description() -> String {
    PIPELINE_FILE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The faces of one buffer, from its `FacePoseMeta`.
fn read_frame(index: u64, connection: u32, buffer: &gst::BufferRef) -> Frame {
    let s = gstfacepose::meta::frame_structure(buffer);
    let faces = s
        .as_ref()
        .and_then(|s| s.get::<gst::Array>("faces").ok())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.get::<gst::Structure>().ok())
                .map(|f| {
                    let num = |k: &str| f.get::<f64>(k).unwrap_or(f64::NAN);
                    FacePose {
                        confidence: num("confidence"),
                        yaw: num("yaw"),
                        pitch: num("pitch"),
                        roll: num("roll"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Frame {
        index,
        connection,
        pts: buffer.pts(),
        has_meta: s.is_some(),
        faces,
    }
}

fn error_text(e: &gst::message::Error) -> String {
    let mut text = format!(
        "{}: {}",
        e.src()
            .map(|s| s.name().to_string())
            .unwrap_or_else(|| "pipeline".into()),
        e.error()
    );
    if let Some(debug) = e.debug() {
        // The last line of the debug text is the useful one ("Could not connect to server.").
        if let Some(last) = debug.lines().map(str::trim).rfind(|l| !l.is_empty()) {
            text.push_str(&format!(" ({last})"));
        }
    }
    text
}

fn warning_text(w: &gst::message::Warning) -> String {
    let detail = w
        .debug()
        .and_then(|d| {
            d.lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty())
                .map(String::from)
        })
        .unwrap_or_default();
    format!(
        "{}: {} {detail}",
        w.src()
            .map(|s| s.name().to_string())
            .unwrap_or_else(|| "pipeline".into()),
        w.error()
    )
}

/// The pipeline of `PIPELINE_FILE` for `opts`, and a receiver of its frames.
fn build(
    opts: &Options,
    connection: u32,
    first_index: u64,
) -> Result<(gst::Pipeline, mpsc::Receiver<Frame>), String> {
    let pipeline = gst::parse::launch(&description())
        .map_err(|e| format!("cannot build the pipeline: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the description is not a pipeline".to_string())?;
    let src = pipeline.by_name("src").ok_or("no element named src")?;
    src.set_property("location", &opts.url);
    src.set_property("latency", opts.latency_ms);
    if opts.tcp {
        src.set_property_from_str("protocols", "tcp");
    }
    let sink = pipeline.by_name("sink").ok_or("no element named sink")?;
    let pad = sink.static_pad("sink").ok_or("the sink has no sink pad")?;
    let (tx, rx) = mpsc::channel();
    let index = AtomicU64::new(first_index);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer() {
            let i = index.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(read_frame(i, connection, buffer));
        }
        gst::PadProbeReturn::Ok
    });
    Ok((pipeline, rx))
}

/// How one connection ended.
enum End {
    /// `--frames` reached or `stop` set.
    Done,
    Lost(String),
}

/// Runs one connection until it ends; counts its frames into `frames` and `total`.
fn session(
    opts: &Options,
    connection: u32,
    stop: &AtomicBool,
    frames: &mut u64,
    total: &mut u64,
    on_event: &mut impl FnMut(&Event),
) -> Result<End, String> {
    let (pipeline, rx) = build(opts, connection, *total)?;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let end = (|| {
        if pipeline.set_state(gst::State::Playing).is_err() {
            let reason = bus
                .pop_filtered(&[gst::MessageType::Error])
                .and_then(|m| match m.view() {
                    gst::MessageView::Error(e) => Some(error_text(e)),
                    _ => None,
                })
                .unwrap_or_else(|| "the pipeline cannot start".into());
            return End::Lost(reason);
        }
        let mut last_progress = Instant::now();
        loop {
            for frame in rx.try_iter() {
                *frames += 1;
                *total += 1;
                last_progress = Instant::now();
                on_event(&Event::Frame(frame));
                if opts.frames.is_some_and(|n| *total >= n) {
                    return End::Done;
                }
            }
            if stop.load(Ordering::SeqCst) {
                return End::Done;
            }
            let msg = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(50),
                &[
                    gst::MessageType::Error,
                    gst::MessageType::Eos,
                    gst::MessageType::Warning,
                ],
            );
            match msg.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::Error(e)) => return End::Lost(error_text(e)),
                Some(gst::MessageView::Eos(_)) => return End::Lost("end of stream".into()),
                Some(gst::MessageView::Warning(w)) => on_event(&Event::Warning(warning_text(w))),
                _ => {}
            }
            if last_progress.elapsed() > opts.stall_timeout {
                return End::Lost(format!(
                    "no frame for {:.1} s",
                    opts.stall_timeout.as_secs_f64()
                ));
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    Ok(end)
}

/// Watches `opts.url`, reconnecting as needed, until `opts.frames` frames arrived (`Ok` with the
/// count), `stop` is set (`Ok`), the pipeline cannot be built or `opts.max_retries` consecutive
/// attempts failed (`Err` with the last reason). `on_event` sees everything that happens.
pub fn run(
    opts: &Options,
    stop: &AtomicBool,
    mut on_event: impl FnMut(&Event),
) -> Result<u64, String> {
    init();
    let mut total = 0u64;
    let mut retry = 0u32;
    for connection in 0.. {
        on_event(&Event::Connecting { connection, retry });
        let mut frames = 0u64;
        let reason = match session(
            opts,
            connection,
            stop,
            &mut frames,
            &mut total,
            &mut on_event,
        )? {
            End::Done => return Ok(total),
            End::Lost(reason) => reason,
        };
        on_event(&Event::Lost {
            connection,
            frames,
            reason: reason.clone(),
        });
        // Frames flowed: the server was fine until now, so start the back-off again.
        if frames > 0 {
            retry = 0;
        }
        retry += 1;
        if retry > opts.max_retries {
            return Err(format!(
                "gave up after {} retries without a frame; last error: {reason}",
                opts.max_retries
            ));
        }
        let delay = opts.backoff.delay(retry);
        on_event(&Event::Retry {
            retry,
            max_retries: opts.max_retries,
            delay,
        });
        let until = Instant::now() + delay;
        while Instant::now() < until {
            if stop.load(Ordering::SeqCst) {
                return Ok(total);
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
    }
    unreachable!("the connection counter is unbounded")
}

/// One line per event, as the app prints them.
pub fn event_line(event: &Event) -> Option<String> {
    Some(match event {
        Event::Connecting { connection, retry } => {
            if *retry == 0 {
                format!("connecting (connection {connection})")
            } else {
                format!("reconnecting (connection {connection}, retry {retry})")
            }
        }
        Event::Frame(f) if f.faces.is_empty() => return None,
        Event::Frame(f) => {
            let pts = f
                .pts
                .map(|t| t.to_string())
                .unwrap_or_else(|| "none".into());
            let faces: Vec<String> = f
                .faces
                .iter()
                .map(|p| {
                    format!(
                        "[{:.2}: yaw {:+.1} pitch {:+.1} roll {:+.1}]",
                        p.confidence, p.yaw, p.pitch, p.roll
                    )
                })
                .collect();
            format!(
                "frame {} pts {pts}: {} face(s) {}",
                f.index,
                f.faces.len(),
                faces.join(" ")
            )
        }
        Event::Warning(w) => format!("warning: {w}"),
        Event::Lost {
            connection,
            frames,
            reason,
        } => format!("connection {connection} lost after {frames} frame(s): {reason}"),
        Event::Retry {
            retry,
            max_retries,
            delay,
        } => format!(
            "retry {retry} of {max_retries} in {:.1} s",
            delay.as_secs_f64()
        ),
    })
}

const USAGE: &str = "usage: rtsp_reconnect <rtsp-url> [--frames N] [--max-retries N] [--latency MS] \
[--stall-timeout S] [--backoff-initial MS] [--backoff-max MS] [--tcp]";

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut url = None;
    let mut opts = Options::new("");
    let mut args = args;
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            let v = args.next().ok_or(format!("{name} needs a number"))?;
            v.parse::<u64>().map_err(|e| format!("{name} {v:?}: {e}"))
        };
        match a.as_str() {
            "--frames" => opts.frames = Some(value("--frames")?),
            "--max-retries" => {
                opts.max_retries = value("--max-retries")?.min(u32::MAX as u64) as u32
            }
            "--latency" => opts.latency_ms = value("--latency")?.min(u32::MAX as u64) as u32,
            "--stall-timeout" => {
                opts.stall_timeout = Duration::from_secs(value("--stall-timeout")?.max(1))
            }
            "--backoff-initial" => {
                opts.backoff.initial = Duration::from_millis(value("--backoff-initial")?)
            }
            "--backoff-max" => opts.backoff.max = Duration::from_millis(value("--backoff-max")?),
            "--tcp" => opts.tcp = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other if other.starts_with("--") => {
                return Err(format!("unknown option {other:?}\n{USAGE}"));
            }
            other if url.is_none() => url = Some(other.to_string()),
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
        }
    }
    opts.url = url.ok_or(USAGE)?;
    if !opts.url.starts_with("rtsp") {
        return Err(format!("{:?} is not an rtsp:// URL\n{USAGE}", opts.url));
    }
    Ok(opts)
}

#[allow(dead_code)] // Unused where tests include this file as a module.
fn main() -> std::process::ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let stop = AtomicBool::new(false);
    let result = run(&opts, &stop, |event| {
        if let Some(line) = event_line(event) {
            match event {
                Event::Frame(_) => println!("{line}"),
                _ => eprintln!("rtsp_reconnect: {line}"),
            }
        }
    });
    match result {
        Ok(n) => {
            eprintln!("rtsp_reconnect: {n} frame(s)");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rtsp_reconnect: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
