// SPDX-License-Identifier: MPL-2.0
//! The background detection thread starts with a tracking element (its model loads before the
//! first frame) and ends with its engine and its element: dropped mid-detection,
//! at EOS with a detection in flight, and after a caps change (whose stale answer must not put a
//! face on the new frames). One test in its own binary, so that no other test's thread is
//! counted.

#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;
use gstfacepose::engine::{Engine, TrackConfig};
use support::Picture;

const THREAD: &str = "facepose-detect";

/// Threads of this process named `name`.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|comm| comm.trim() == name)
                })
                .count()
        })
        .unwrap_or(0)
}

/// The astronaut on a 640×480 grey canvas.
fn astronaut_frame() -> Picture {
    let astronaut = Picture::load(&support::sample_pictures()[0]).expect("run `make models`");
    let mut canvas = Picture::uniform(640, 480, [128, 128, 128]);
    for y in 0..astronaut.height.min(480) {
        let w = astronaut.width.min(640) * 3;
        let src = &astronaut.data[y * astronaut.width * 3..][..w];
        canvas.data[y * 640 * 3..][..w].copy_from_slice(src);
    }
    canvas
}

fn rgb_caps(w: usize, h: usize) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", w as i32)
        .field("height", h as i32)
        .field("framerate", gst::Fraction::new(30, 1))
        .build()
}

/// Engine part: a detection starts in the background (the face is lost on blank frames, and the
/// automatic interval asks for one), then the engine is dropped at once.
fn engine_dropped_mid_detection(face: &Picture) -> usize {
    let mut config = support::config().expect("run `make models`");
    config.detection_mode = gstfacepose::engine::DetectionMode::Background { bound: None };
    let mut e = Engine::new(config).expect("engine");
    e.set_track_config(TrackConfig::default()).unwrap();
    e.track(&face.view(), Some(0.0)).unwrap();
    let blank = Picture::uniform(640, 480, [128, 128, 128]);
    for frame in 1..8 {
        e.track(&blank.view(), Some(frame as f64 / 30.0)).unwrap();
    }
    // A new thread names itself as it starts: give it a moment to show up.
    let mut running = 0;
    for _ in 0..100 {
        running = threads_named(THREAD);
        if running > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(e);
    running
}

/// Element part: the astronaut, blank frames (a detection starts in the background), then a caps
/// change to blank 320×240 frames and EOS. Returns the face counts of the 320×240 frames.
fn element_with_caps_change_and_eos(face: &Picture) -> Vec<usize> {
    let pipeline = gst::parse::launch(
        "appsrc name=src format=time ! faceposeestimator name=fp ! appsink name=sink sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let small_counts = Arc::new(Mutex::new(Vec::new()));
    let counts = small_counts.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let width = sample
                    .caps()
                    .and_then(|c| c.structure(0).and_then(|s| s.get::<i32>("width").ok()));
                if width == Some(320) {
                    let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                    let s =
                        gstfacepose::meta::frame_structure(buffer).ok_or(gst::FlowError::Error)?;
                    counts
                        .lock()
                        .unwrap()
                        .push(s.get::<u32>("face-count").unwrap() as usize);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    src.set_caps(Some(&rgb_caps(640, 480)));
    pipeline.set_state(gst::State::Playing).unwrap();
    let d = gst::ClockTime::SECOND / 30;
    let push = |picture: &Picture, i: u64| {
        let mut buffer = gst::Buffer::from_mut_slice(picture.data.clone());
        buffer.get_mut().unwrap().set_pts(d * i);
        src.push_buffer(buffer).unwrap();
    };
    push(face, 0);
    let blank = Picture::uniform(640, 480, [128, 128, 128]);
    for i in 1..8 {
        push(&blank, i);
    }
    src.set_caps(Some(&rgb_caps(320, 240)));
    let small = Picture::uniform(320, 240, [90, 90, 90]);
    for i in 8..40 {
        push(&small, i);
        std::thread::sleep(Duration::from_millis(2));
    }
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Eos(..) => break,
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    small_counts.lock().unwrap().clone()
}

/// Detection threads running while an element with `detection-interval` `interval` is paused
/// before any frame, and after it is set back to NULL.
fn threads_of_a_started_element(interval: u32) -> (usize, usize) {
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc ! faceposeestimator detection-interval={interval} ! fakesink"
    ))
    .unwrap();
    pipeline.set_state(gst::State::Paused).unwrap();
    // A new thread names itself as it starts: give it a moment to show up.
    let mut started = 0;
    for _ in 0..100 {
        started = threads_named(THREAD);
        if started > 0 || interval == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    (started, threads_named(THREAD))
}

#[test]
fn the_detection_thread_never_outlives_its_engine_or_element() {
    gst::init().unwrap();
    gstfacepose::plugin_register_static().ok();
    let face = astronaut_frame();

    // Tracking: the detector's session is loaded, and its thread started, with the other models
    // (before the first frame); every frame in line: none.
    assert_eq!(
        threads_of_a_started_element(0),
        (1, 0),
        "a tracking element's detection thread before the first frame and after NULL"
    );
    assert_eq!(
        threads_of_a_started_element(1),
        (0, 0),
        "detection threads of an element that detects on every frame"
    );

    let (tx, rx) = std::sync::mpsc::channel();
    let engine_face = Picture {
        data: face.data.clone(),
        width: face.width,
        height: face.height,
    };
    std::thread::spawn(move || {
        let _ = tx.send(engine_dropped_mid_detection(&engine_face));
    });
    let running = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("dropping the engine hung");
    assert!(running >= 1, "no detection thread ran");
    assert_eq!(
        threads_named(THREAD),
        0,
        "a detection thread outlived its engine"
    );

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(element_with_caps_change_and_eos(&face));
    });
    let counts = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the pipeline hung at EOS or on the way to NULL");
    assert_eq!(counts.len(), 32, "every 320×240 frame came out");
    assert!(
        counts.iter().all(|&n| n == 0),
        "a face on blank frames after the caps change: {counts:?}"
    );
    assert_eq!(
        threads_named(THREAD),
        0,
        "a detection thread outlived its element"
    );
}
