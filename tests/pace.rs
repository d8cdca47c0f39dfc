// SPDX-License-Identifier: MPL-2.0
//! A source that is not live gives the same faces however fast its frames come: the 1080p crowd
//! video and AFLW2000 shots (stills held for ten frames each: scene cuts, profiles, new faces)
//! through `faceposeestimator` with its defaults and with each mode documented as deterministic
//! (`async-detection=pipelined` and `false`), taken as fast as the element goes and slowed down
//! upstream: the JSON Lines must be identical, byte for byte. The shots also keep (nearly) every
//! still that the detector on every frame finds. A live source with the defaults keeps the
//! bound on how long the busy detector may keep a face unreported.

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gst::prelude::*;
use gst_video::prelude::*;
use support::Picture;

/// Frames per AFLW2000 still in the shots.
const FRAMES_PER_SHOT: usize = 10;
/// Stills in the shots.
const SHOTS: usize = 20;
/// Side of a still on the shots' canvas.
const SHOT_SIDE: usize = 480;
const SHOT_WIDTH: usize = 640;
const SHOT_HEIGHT: usize = 480;
/// Microseconds `identity` sleeps per frame on the slow runs: slower than the element.
const SLOW_US: u32 = 40_000;

fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfacepose::plugin_register_static().expect("registering the facepose plugin");
    });
}

/// A file in the test's own temporary folder.
fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("facepose-pace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `launch` (ending in `faceposeestimator … ! fakesink`, with `{json}` for the JSON
/// Lines file) to EOS, and gives the JSON Lines.
fn run(launch: &str, name: &str, stills: Option<&Arc<Vec<Vec<u8>>>>) -> String {
    let json = temp(name);
    let launch = launch.replace("{json}", &json.display().to_string());
    let pipeline = gst::parse::launch(&launch)
        .unwrap_or_else(|e| panic!("{launch}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let feeder = stills.map(|stills| {
        let src = pipeline
            .by_name("shots")
            .expect("an appsrc named shots")
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        let stills = stills.clone();
        std::thread::spawn(move || feed_shots(&src, &stills))
    });
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(600)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{launch}: {} ({:?})", e.error(), e.debug()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    if let Some(f) = feeder {
        f.join().unwrap();
    }
    std::fs::read_to_string(&json).unwrap()
}

/// Pushes each still [`FRAMES_PER_SHOT`] times at 30 frames per second, then EOS.
fn feed_shots(src: &gst_app::AppSrc, stills: &[Vec<u8>]) {
    let mut i = 0u64;
    for still in stills {
        for _ in 0..FRAMES_PER_SHOT {
            let mut b = gst::Buffer::from_slice(still.clone());
            {
                let b = b.get_mut().unwrap();
                b.set_pts(gst::ClockTime::SECOND.mul_div_floor(i, 30));
                b.set_duration(gst::ClockTime::SECOND.mul_div_floor(1, 30));
            }
            i += 1;
            if src.push_buffer(b).is_err() {
                return;
            }
        }
    }
    let _ = src.end_of_stream();
}

/// Frames with at least one face in JSON Lines, and the number of lines.
fn frames_with_faces(json: &str) -> (usize, usize) {
    // Frame lines: the one that ends the open tracks at EOS is no frame.
    let lines: Vec<&str> = json.lines().filter(|l| l.starts_with("{\"pts\"")).collect();
    let with = lines.iter().filter(|l| !l.contains("\"faces\":[]")).count();
    (with, lines.len())
}

/// The stills of the shots: the first [`SHOTS`] AFLW2000 images in name order, each scaled to
/// [`SHOT_SIDE`] and centred on a grey [`SHOT_WIDTH`] × [`SHOT_HEIGHT`] canvas, as packed RGB.
fn shot_stills(images: &Path) -> Arc<Vec<Vec<u8>>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files.iter().take(SHOTS) {
        let p = Picture::load(f).unwrap();
        let scaled = image::imageops::resize(
            &image::RgbImage::from_raw(p.width as u32, p.height as u32, p.data).unwrap(),
            SHOT_SIDE as u32,
            SHOT_SIDE as u32,
            image::imageops::FilterType::Triangle,
        );
        let mut canvas = image::RgbImage::from_pixel(
            SHOT_WIDTH as u32,
            SHOT_HEIGHT as u32,
            image::Rgb([128, 128, 128]),
        );
        let left = (SHOT_WIDTH - SHOT_SIDE) / 2;
        image::imageops::replace(&mut canvas, &scaled, left as i64, 0);
        out.push(canvas.into_raw());
    }
    Arc::new(out)
}

/// The shots as a source that is not live (fed by [`feed_shots`]), each still for
/// [`FRAMES_PER_SHOT`] frames at 30 frames per second, as I420.
fn shots_source() -> String {
    format!(
        "appsrc name=shots format=time block=true max-buffers=4 \
         caps=video/x-raw,format=RGB,width={SHOT_WIDTH},height={SHOT_HEIGHT},framerate=30/1 \
         ! videoconvert ! video/x-raw,format=I420"
    )
}

fn video_source(video: &Path) -> String {
    format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=I420",
        video.display()
    )
}

/// Runs `source` through the element with `props` fast and slowed down, and checks that both
/// give the same JSON Lines; gives them.
fn same_at_both_speeds(
    source: &str,
    props: &str,
    name: &str,
    stills: Option<&Arc<Vec<Vec<u8>>>>,
) -> String {
    let fast = run(
        &format!(
            "{source} ! faceposeestimator {props} json-location={{json}} ! fakesink sync=false"
        ),
        &format!("{name}-fast.jsonl"),
        stills,
    );
    let slow = run(
        &format!(
            "{source} ! identity sleep-time={SLOW_US} ! faceposeestimator {props} \
             json-location={{json}} ! fakesink sync=false"
        ),
        &format!("{name}-slow.jsonl"),
        stills,
    );
    let (with, frames) = frames_with_faces(&fast);
    eprintln!("{name}: {with} of {frames} frames with a face");
    assert!(frames > 0, "{name}: no frames");
    if fast != slow {
        let first = fast
            .lines()
            .zip(slow.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(fast.lines().count().min(slow.lines().count()));
        panic!(
            "{name} ({props}): the faces depend on the speed: first difference on frame {first} \
             ({} and {} lines)",
            fast.lines().count(),
            slow.lines().count()
        );
    }
    fast
}

#[test]
fn the_crowd_video_gives_the_same_faces_at_any_speed() {
    let Some(video) = support::shared_or_skip(
        "videos/multiface_1080p.mp4",
        "the_crowd_video_gives_the_same_faces_at_any_speed",
    ) else {
        return;
    };
    init();
    let source = video_source(&video);
    for (props, name) in [
        ("", "video-defaults"),
        ("async-detection=false", "video-inline"),
    ] {
        same_at_both_speeds(&source, props, name, None);
    }
}

#[test]
fn aflw2000_shots_give_the_same_faces_at_any_speed_and_keep_the_stills() {
    let Some(images) = support::shared_or_skip(
        "data/aflw2000/images",
        "aflw2000_shots_give_the_same_faces_at_any_speed_and_keep_the_stills",
    ) else {
        return;
    };
    init();
    let stills = shot_stills(&images);
    let source = shots_source();
    // Stills on which the detector on every frame finds a face on one frame at least.
    let reference = run(
        &format!(
            "{source} ! faceposeestimator detection-interval=1 json-location={{json}} ! \
             fakesink sync=false"
        ),
        "shots-every-frame.jsonl",
        Some(&stills),
    );
    let stills_found = |json: &str| -> usize {
        let lines: Vec<&str> = json.lines().filter(|l| l.starts_with("{\"pts\"")).collect();
        lines
            .chunks(FRAMES_PER_SHOT)
            .filter(|shot| shot.iter().any(|l| !l.contains("\"faces\":[]")))
            .count()
    };
    let found = stills_found(&reference);
    for (props, name) in [
        ("", "shots-defaults"),
        ("async-detection=pipelined", "shots-pipelined"),
        ("async-detection=false", "shots-inline"),
    ] {
        let json = same_at_both_speeds(&source, props, name, Some(&stills));
        let (with, frames) = frames_with_faces(&json);
        let (with_ref, _) = frames_with_faces(&reference);
        assert_eq!(
            frames,
            SHOTS * FRAMES_PER_SHOT,
            "{name}: every frame comes out"
        );
        assert_eq!(
            stills_found(&json),
            found,
            "{name}: every still the detector on every frame finds"
        );
        // A scene cut may cost the first frame of a shot, no more.
        assert!(
            with + SHOTS >= with_ref,
            "{name}: {with} frames with a face against {with_ref} with the detector on every frame"
        );
    }
}

/// Blank frames, then the sample face on every frame, through a live appsrc (frames pushed as
/// fast as they can be) with `props`: the index of the first frame with a face.
fn first_face_from_live_source(props: &str, blank: usize, frames: usize) -> Option<usize> {
    let face = Picture::load(&support::sample_pictures()[0]).expect("run `make models`");
    let (w, h) = (face.width, face.height);
    let grey = Picture::uniform(w, h, [128, 128, 128]);
    let json = temp(&format!("live-{}.jsonl", props.replace(['=', ' '], "_")));
    let launch = format!(
        "appsrc name=src is-live=true format=time ! faceposeestimator {props} json-location={} \
         ! fakesink sync=false",
        json.display()
    );
    let pipeline = gst::parse::launch(&launch)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, w as u32, h as u32)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .unwrap();
    src.set_caps(Some(&info.to_caps().unwrap()));
    pipeline.set_state(gst::State::Playing).unwrap();
    for i in 0..frames {
        let p = if i < blank { &grey } else { &face };
        let mut b = gst::Buffer::with_size(info.size()).unwrap();
        {
            let b = b.get_mut().unwrap();
            b.set_pts(gst::ClockTime::SECOND.mul_div_floor(i as u64, 30));
            let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(b, &info).unwrap();
            let stride = frame.plane_stride()[0] as usize;
            let data = frame.plane_data_mut(0).unwrap();
            for y in 0..h {
                data[y * stride..y * stride + w * 3]
                    .copy_from_slice(&p.data[y * w * 3..(y + 1) * w * 3]);
            }
        }
        src.push_buffer(b).unwrap();
    }
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{launch}: {}", e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let text = std::fs::read_to_string(&json).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("{\"pts\"")).count(),
        frames,
        "every frame comes out"
    );
    text.lines()
        .filter(|l| l.starts_with("{\"pts\""))
        .position(|l| !l.contains("\"faces\":[]"))
}

#[test]
fn a_live_source_sees_a_new_face_within_the_bound() {
    init();
    const BLANK: usize = 3;
    // While no face is tracked the detector is due every third frame; a detection started in
    // the background is waited for two frames after it started.
    let bound = BLANK + gstfacepose::engine::track::AUTO_EMPTY_INTERVAL as usize - 1 + 2;
    let first = first_face_from_live_source("", BLANK, 40)
        .expect("the face is found on a live source with the defaults");
    assert!(
        first <= bound,
        "the face appeared on frame {BLANK}, was first reported on frame {first}; the bound is \
         {bound}"
    );
}

/// The mode `active-async-detection` reads after a few frames of `launch` (ending in a
/// `faceposeestimator name=fp`), and what it read before the pipeline started.
fn active_mode(launch: &str) -> (Option<String>, Option<String>) {
    let pipeline = gst::parse::launch(launch)
        .unwrap_or_else(|e| panic!("{launch}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    let element = pipeline.by_name("fp").expect("an element named fp");
    let before = element.property::<Option<String>>("active-async-detection");
    // The first frame settles the mode; a handoff shows that one has gone through.
    let sink = pipeline.by_name("sink").expect("a fakesink named sink");
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    sink.connect("handoff", false, move |_| {
        let _ = tx.try_send(());
        None
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let seen = rx.recv_timeout(std::time::Duration::from_secs(60)).is_ok();
    let errors: Vec<String> = bus
        .iter_filtered(&[gst::MessageType::Error])
        .map(|m| format!("{m:?}"))
        .collect();
    let after = element.property::<Option<String>>("active-async-detection");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(seen, "{launch}: no frame came out within 60 s ({errors:?})");
    (before, after)
}

#[test]
fn the_element_says_where_auto_runs_the_detector() {
    init();
    let tail = "! videoconvert ! faceposeestimator name=fp \
                ! fakesink name=sink signal-handoffs=true sync=false";
    let file = format!("videotestsrc num-buffers=30 {tail}");
    assert_eq!(active_mode(&file), (None, Some("pipelined".into())));
    let live = format!("videotestsrc is-live=true num-buffers=30 {tail}");
    assert_eq!(
        active_mode(&live).1.as_deref(),
        Some("background with a 2-frame bound")
    );
    let in_line = tail.replace("name=fp", "name=fp async-detection=false");
    let in_line = format!("videotestsrc num-buffers=30 {in_line}");
    assert_eq!(active_mode(&in_line).1.as_deref(), Some("in line"));
    let race = tail.replace("name=fp", "name=fp async-detection=true");
    let race = format!("videotestsrc is-live=true num-buffers=30 {race}");
    assert_eq!(active_mode(&race).1.as_deref(), Some("background"));
}
