// SPDX-License-Identifier: MPL-2.0
//! The analytics meta (feature `analytics`, GStreamer >= 1.24), from the reader's side: the faces
//! read back through the analytics API match the FacePoseMeta, and upstream's
//! `objectdetectionoverlay` draws our boxes. `make test-analytics` runs this in a Debian 13
//! environment; without the feature there is nothing to test.
#![cfg(feature = "analytics")]

use std::path::Path;
use std::sync::{Arc, Mutex, Once};

use gst::prelude::*;
use gst_video::prelude::*;

const FRAMES: u32 = 3;

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfacepose::plugin_register_static().expect("registering the facepose plugin");
    });
}

fn picture() -> String {
    let p = gstfacepose::engine::default_model_dir().join("samples/astronaut.png");
    assert!(p.exists(), "{} is missing: run `make models`", p.display());
    p.display().to_string()
}

/// Runs `description` (ending in `appsink name=sink`) and returns its buffers with their caps.
fn run(description: &str) -> Vec<gst::Sample> {
    init();
    let pipeline = gst::parse::launch(description)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    sink.set_property("sync", false);
    pipeline.set_state(gst::State::Playing).expect("playing");
    let mut samples = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        samples.push(s);
    }
    let bus = pipeline.bus().unwrap();
    if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        panic!("pipeline error: {msg:?}");
    }
    pipeline.set_state(gst::State::Null).unwrap();
    samples
}

#[test]
fn faces_read_back_through_the_analytics_api_match_the_frame_meta() {
    let samples = run(&format!(
        "filesrc location=\"{}\" ! pngdec ! imagefreeze num-buffers={FRAMES} ! videoconvert ! \
         faceposeestimator ! appsink name=sink",
        picture()
    ));
    assert_eq!(samples.len(), FRAMES as usize);
    for sample in &samples {
        let buffer = sample.buffer().unwrap();
        let frame = gstfacepose::meta::frame_structure(buffer).expect("FacePoseMeta");
        let (width, height, faces) = gstfacepose::meta::faces_from_frame(&frame);
        assert_eq!(faces.len(), 1, "the astronaut has one face");
        let read = gstfacepose::analytics::read_faces(buffer);
        assert_eq!(read.len(), faces.len());
        for (r, f) in read.iter().zip(&faces) {
            let b = f.bbox.clamp_to(width as f32, height as f32);
            let (x, y, w, h) = r.bbox;
            for (got, want) in [
                (x as f32, b.x0),
                (y as f32, b.y0),
                ((x + w) as f32, b.x1),
                ((y + h) as f32, b.y1),
            ] {
                assert!((got - want).abs() <= 1.5, "box {:?} vs {b:?}", r.bbox);
            }
            assert!((r.confidence - f.score).abs() < 1e-3);
            assert_eq!(r.track_id, Some(f.id));
            let mut want: Vec<String> = gstfacepose::analytics::pose_labels(f).into();
            let looking = gstfacepose::analytics::attention_label(f).expect("attention judged");
            want.push(looking.into());
            assert_eq!(r.labels, want);
            assert!(r.labels[0].starts_with("yaw:") && r.labels[2].starts_with("roll:"));
        }
    }
}

/// Pixels of one RGBA frame, row-major.
fn rgba(caps: &gst::CapsRef, buffer: &gst::BufferRef) -> (u32, u32, Vec<u8>) {
    let info = gst_video::VideoInfo::from_caps(caps).unwrap();
    assert_eq!(info.format(), gst_video::VideoFormat::Rgba);
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).unwrap();
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).unwrap();
    let mut out = Vec::with_capacity((info.width() * info.height() * 4) as usize);
    for row in 0..info.height() as usize {
        out.extend_from_slice(&data[row * stride..row * stride + info.width() as usize * 4]);
    }
    (info.width(), info.height(), out)
}

#[test]
fn objectdetectionoverlay_draws_our_boxes() {
    init();
    if gst::ElementFactory::find("objectdetectionoverlay").is_none() {
        panic!("objectdetectionoverlay (gstreamer1.0-plugins-bad >= 1.24) is missing");
    }
    // The same frame before the overlay (tee branch) and after it.
    let before: Arc<Mutex<Vec<gst::Buffer>>> = Arc::default();
    let samples = {
        let description = format!(
            "filesrc location=\"{}\" ! pngdec ! imagefreeze num-buffers=1 ! videoconvert ! \
             video/x-raw,format=RGBA ! faceposeestimator name=est ! objectdetectionoverlay ! \
             video/x-raw,format=RGBA ! appsink name=sink",
            picture()
        );
        init();
        let pipeline = gst::parse::launch(&description)
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let est = pipeline.by_name("est").unwrap();
        let b = before.clone();
        est.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(buffer) = info.buffer() {
                    // A deep copy: the overlay draws into the buffer in place.
                    b.lock().unwrap().push(buffer.copy_deep().unwrap());
                }
                gst::PadProbeReturn::Ok
            });
        let sink = pipeline
            .by_name("sink")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        sink.set_property("sync", false);
        pipeline.set_state(gst::State::Playing).unwrap();
        let mut samples = Vec::new();
        while let Ok(s) = sink.pull_sample() {
            samples.push(s);
        }
        pipeline.set_state(gst::State::Null).unwrap();
        samples
    };
    let before = before.lock().unwrap();
    assert_eq!((samples.len(), before.len()), (1, 1));
    let faces = gstfacepose::analytics::read_faces(samples[0].buffer().unwrap());
    assert_eq!(faces.len(), 1);
    let (x, y, w, h) = faces[0].bbox;
    let caps = samples[0].caps().unwrap();
    let (width, height, drawn) = rgba(caps, samples[0].buffer().unwrap());
    let (_, _, plain) = rgba(caps, &before[0]);
    let changed = |px: i32, py: i32| {
        let (px, py) = (
            px.clamp(0, width as i32 - 1),
            py.clamp(0, height as i32 - 1),
        );
        let i = (py as usize * width as usize + px as usize) * 4;
        drawn[i..i + 3] != plain[i..i + 3]
    };
    // Along each side of the box, within two pixels of it, the overlay changed the picture.
    let near = |px: i32, py: i32| (-2..=2).any(|d| changed(px + d, py) || changed(px, py + d));
    let mut on_edges = 0;
    let mut total = 0;
    for t in (0..=100).map(|k| k as f32 / 100.0) {
        for (px, py) in [
            (x + (t * w as f32) as i32, y),
            (x + (t * w as f32) as i32, y + h),
            (x, y + (t * h as f32) as i32),
            (x + w, y + (t * h as f32) as i32),
        ] {
            total += 1;
            on_edges += near(px, py) as u32;
        }
    }
    // Inside the box, away from its edges and label, the face is left as it was.
    let mut inside_changed = 0;
    let mut inside = 0;
    for py in (y + h / 3)..(y + 2 * h / 3) {
        for px in (x + w / 4)..(x + 3 * w / 4) {
            inside += 1;
            inside_changed += changed(px, py) as u32;
        }
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("out");
    std::fs::create_dir_all(&out).unwrap();
    image::RgbaImage::from_raw(width, height, drawn.clone())
        .unwrap()
        .save(out.join("analytics-overlay.png"))
        .unwrap();
    eprintln!(
        "objectdetectionoverlay: box {:?}; {on_edges}/{total} edge points drawn; {inside_changed}/{inside} pixels changed inside; out/analytics-overlay.png",
        faces[0].bbox
    );
    assert!(
        on_edges * 10 >= total * 9,
        "only {on_edges} of {total} points along the box were drawn"
    );
    assert!(
        inside_changed * 100 <= inside,
        "{inside_changed} of {inside} pixels inside the box changed"
    );
}
