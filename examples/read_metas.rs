// SPDX-License-Identifier: MPL-2.0
//! Reads what `faceposeestimator` attaches to each buffer: one `GstVideoRegionOfInterestMeta` per
//! face (parameters `detection`, `head-pose` and `attention`) and the per-frame `FacePoseMeta`,
//! and prints each face's box, pose and attention from both.
//!
//! ```text
//! cargo run --example read_metas
//! cargo run --example read_metas -- --pipeline "filesrc location=in.mp4 ! decodebin ! videoconvert ! faceposeestimator ! appsink name=sink"
//! ```
//!
//! The default pipeline runs the astronaut sample picture five times. A `--pipeline` must end in
//! an `appsink` named `sink`. The plugin is registered statically, so no GST_PLUGIN_PATH is
//! needed. `tests/examples.rs` uses this file's functions as the Rust reading of the metas.

use std::sync::{Mutex, Once, mpsc};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_video::VideoRegionOfInterestMeta;

/// Name of the per-frame custom meta (`gstfacepose::meta::FRAME_META`).
pub const FRAME_META: &str = gstfacepose::meta::FRAME_META;

/// One face, from a ROI meta or from the `faces` array of the `FacePoseMeta`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceReport {
    /// The ROI meta's id (for faces from `FacePoseMeta`: the index in `faces`).
    pub id: i32,
    pub confidence: f64,
    /// x_min, y_min, x_max, y_max, normalised to 0..1 of the frame.
    pub bbox: [f64; 4],
    /// The ROI rectangle in pixels (x, y, w, h); zero for faces from `FacePoseMeta`.
    pub rect: (u32, u32, u32, u32),
    pub yaw: f64,
    pub pitch: f64,
    pub roll: f64,
    /// What produced the angles: fused, regression, rigid or seed-linear.
    pub method: String,
    pub presence: f64,
    /// From the `attention` parameter: whether the face looks at the camera (or the target),
    /// the degrees between its forward axis and the direction to the camera, and its distance
    /// along z in cm (`None` without a field of view).
    pub looking: Option<bool>,
    pub camera_angle: f64,
    pub z_cm: Option<f64>,
}

/// What the `FacePoseMeta` says about the frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameInfo {
    pub width: u32,
    pub height: u32,
    pub detector: String,
    pub landmarker: String,
    pub provider: String,
    pub inference_ms: f64,
    pub face_count: u32,
    pub faces: Vec<FaceReport>,
}

/// One buffer's faces.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameReport {
    pub index: usize,
    pub pts: Option<gst::ClockTime>,
    /// Faces from the ROI metas with roi_type `face`, by id.
    pub faces: Vec<FaceReport>,
    /// `None` when the buffer carries no `FacePoseMeta`.
    pub info: Option<FrameInfo>,
}

/// Initialises GStreamer and registers the facepose plugin, once per process.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("initialising GStreamer");
        gstfacepose::plugin_register_static().expect("registering the facepose plugin");
    });
}

/// The default pipeline: the astronaut sample picture as five frames.
pub fn default_pipeline() -> String {
    let picture = gstfacepose::engine::default_model_dir().join("samples/astronaut.png");
    format!(
        "filesrc location=\"{}\" ! pngdec ! imagefreeze num-buffers=5 ! videoconvert ! faceposeestimator ! appsink name=sink sync=false",
        picture.display()
    )
}

fn double(s: &gst::StructureRef, field: &str) -> f64 {
    s.get::<f64>(field).unwrap_or(f64::NAN)
}

/// A face from its `detection`, `head-pose` and `attention` structures (or one `face` structure
/// for the first two, holding the third).
fn face_from(
    id: i32,
    detection: &gst::StructureRef,
    pose: &gst::StructureRef,
    attention: Option<&gst::StructureRef>,
) -> FaceReport {
    FaceReport {
        id,
        confidence: double(detection, "confidence"),
        bbox: ["x_min", "y_min", "x_max", "y_max"].map(|f| double(detection, f)),
        rect: (0, 0, 0, 0),
        yaw: double(pose, "yaw"),
        pitch: double(pose, "pitch"),
        roll: double(pose, "roll"),
        method: pose.get::<String>("method").unwrap_or_default(),
        presence: double(pose, "presence"),
        looking: attention.and_then(|a| a.get::<bool>("looking").ok()),
        camera_angle: attention.map_or(f64::NAN, |a| double(a, "camera-angle")),
        z_cm: attention.and_then(|a| a.get::<f64>("z").ok()),
    }
}

/// Reads the faces of one buffer.
pub fn frame_report(index: usize, buffer: &gst::BufferRef) -> FrameReport {
    let mut faces: Vec<FaceReport> = buffer
        .iter_meta::<VideoRegionOfInterestMeta>()
        .filter(|m| m.roi_type() == gstfacepose::meta::ROI_TYPE)
        .filter_map(|m| {
            let detection = m.param("detection")?;
            let pose = m.param("head-pose")?;
            Some(FaceReport {
                rect: m.rect(),
                ..face_from(m.id(), detection, pose, m.param("attention"))
            })
        })
        .collect();
    faces.sort_by_key(|f| f.id);

    let info = gst::meta::CustomMeta::from_buffer(buffer, FRAME_META)
        .ok()
        .map(|meta| {
            let s = meta.structure();
            let string = |f: &str| s.get::<String>(f).unwrap_or_default();
            let faces = s
                .get::<gst::Array>("faces")
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.get::<gst::Structure>().ok())
                        .enumerate()
                        .map(|(i, f)| {
                            let attention = f.get::<gst::Structure>("attention").ok();
                            face_from(i as i32, &f, &f, attention.as_deref())
                        })
                        .collect()
                })
                .unwrap_or_default();
            FrameInfo {
                width: s.get("width").unwrap_or(0),
                height: s.get("height").unwrap_or(0),
                detector: string("detector"),
                landmarker: string("landmarker"),
                provider: string("execution-provider"),
                inference_ms: double(s, "inference-ms"),
                face_count: s.get("face-count").unwrap_or(0),
                faces,
            }
        });
    FrameReport {
        index,
        pts: buffer.pts(),
        faces,
        info,
    }
}

/// Runs `description` to EOS and calls `on_frame` for each buffer its appsink `sink` receives.
/// Returns the number of buffers. Fails on a pipeline error or, with `timeout`, when it runs
/// longer.
pub fn run(
    description: &str,
    timeout: Option<Duration>,
    mut on_frame: impl FnMut(FrameReport),
) -> Result<usize, String> {
    init();
    let element = gst::parse::launch(description).map_err(|e| format!("bad pipeline: {e}"))?;
    let pipeline = element
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the description must be a pipeline of several elements".to_string())?;
    let sink = pipeline
        .by_name("sink")
        .filter(|s| s.factory().is_some_and(|f| f.name() == "appsink"))
        .ok_or("the pipeline needs an appsink named sink")?;

    let (tx, rx) = mpsc::channel::<FrameReport>();
    let tx = Mutex::new((tx, 0usize));
    sink.set_property("emit-signals", true);
    sink.connect("new-sample", false, move |args| {
        let appsink = args[0].get::<gst::Element>().expect("appsink");
        let sample = appsink.emit_by_name::<Option<gst::Sample>>("pull-sample", &[]);
        if let Some(buffer) = sample.as_ref().and_then(|s| s.buffer()) {
            let mut guard = tx.lock().unwrap();
            let report = frame_report(guard.1, buffer);
            guard.1 += 1;
            let _ = guard.0.send(report);
        }
        Some(gst::FlowReturn::Ok.to_value())
    });

    let bus = pipeline.bus().expect("a pipeline has a bus");
    let started = Instant::now();
    let outcome = (|| {
        pipeline.set_state(gst::State::Playing).map_err(|_| {
            first_error(&bus).unwrap_or_else(|| "the pipeline cannot start".to_string())
        })?;
        let mut count = 0;
        loop {
            for report in rx.try_iter() {
                count += 1;
                on_frame(report);
            }
            let msg = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(20),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            );
            match msg.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::Eos(_)) => break,
                Some(gst::MessageView::Error(e)) => return Err(error_text(e)),
                _ => {}
            }
            if timeout.is_some_and(|t| started.elapsed() > t) {
                return Err(format!("no EOS after {:?}", timeout.unwrap()));
            }
        }
        for report in rx.try_iter() {
            count += 1;
            on_frame(report);
        }
        Ok(count)
    })();
    let _ = pipeline.set_state(gst::State::Null);
    outcome
}

/// Runs `description` and returns every buffer's faces.
pub fn collect(description: &str, timeout: Option<Duration>) -> Result<Vec<FrameReport>, String> {
    let mut frames = Vec::new();
    run(description, timeout, |f| frames.push(f))?;
    Ok(frames)
}

fn error_text(e: &gst::message::Error) -> String {
    format!(
        "error from {}: {} ({})",
        e.src()
            .map(|s| s.path_string().to_string())
            .unwrap_or_default(),
        e.error(),
        e.debug().map(|d| d.to_string()).unwrap_or_default()
    )
}

fn first_error(bus: &gst::Bus) -> Option<String> {
    let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(error_text(e)),
        _ => None,
    }
}

fn print_face(prefix: &str, f: &FaceReport) {
    let [x0, y0, x1, y1] = f.bbox;
    print!(
        "  {prefix} face {}: confidence {:.3}, box [{x0:.3}, {y0:.3}, {x1:.3}, {y1:.3}]",
        f.id, f.confidence
    );
    if f.rect != (0, 0, 0, 0) {
        let (x, y, w, h) = f.rect;
        print!(" = {w}x{h} px at ({x}, {y})");
    }
    print!(
        ", yaw {:+.2}° pitch {:+.2}° roll {:+.2}° ({}), presence {:.2}",
        f.yaw, f.pitch, f.roll, f.method, f.presence
    );
    if let Some(looking) = f.looking {
        print!(
            ", {} ({:.1}° off the camera",
            if looking { "looking" } else { "looking away" },
            f.camera_angle
        );
        match f.z_cm {
            Some(z) => println!(", {z:.0} cm away)"),
            None => println!(")"),
        }
    } else {
        println!();
    }
}

/// Prints one frame: the `FacePoseMeta` summary, then each face from the ROI metas and from the
/// `FacePoseMeta`.
pub fn print_frame(frame: &FrameReport) {
    let pts = frame
        .pts
        .map(|t| t.to_string())
        .unwrap_or_else(|| "none".into());
    match &frame.info {
        Some(i) => println!(
            "frame {} pts {pts}: {}x{}, {} face(s), {} + {} on {}, {:.1} ms",
            frame.index,
            i.width,
            i.height,
            i.face_count,
            i.detector,
            i.landmarker,
            i.provider,
            i.inference_ms
        ),
        None => println!(
            "frame {} pts {pts}: no {FRAME_META} (is faceposeestimator upstream?)",
            frame.index
        ),
    }
    for f in &frame.faces {
        print_face("roi ", f);
    }
    for f in frame.info.iter().flat_map(|i| &i.faces) {
        print_face("meta", f);
    }
}

#[allow(dead_code)] // Unused where tests include this file as a module.
fn main() {
    let mut args = std::env::args().skip(1);
    let mut description = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--pipeline" => description = args.next(),
            "-h" | "--help" => {
                println!("usage: read_metas [--pipeline \"... ! appsink name=sink\"]");
                return;
            }
            other => {
                eprintln!("read_metas: unknown argument {other:?} (try --help)");
                std::process::exit(2);
            }
        }
    }
    let description = description.unwrap_or_else(default_pipeline);
    match run(&description, None, |f| print_frame(&f)) {
        Ok(n) => println!("{n} buffer(s)"),
        Err(e) => {
            eprintln!("read_metas: {e}");
            std::process::exit(1);
        }
    }
}
