// SPDX-License-Identifier: MPL-2.0
//! Tracking on synthetic video made from the sample pictures: stable ids on a moving face, a lost
//! face dropped and a new one found within the detection interval, interval 1 equal to the
//! still-image path, and the same through the element. The schedule tests run the detector in
//! line (`async_detection` off, deterministic); the background detector has tests of its own: new
//! faces join and resets drop answers in flight (the thread's end: tests/detection_thread.rs).

#[path = "support/mod.rs"]
mod support;

use gstfacepose::engine::{DetectionMode, Engine, Face, TrackConfig};
use support::Picture;

/// `picture` scaled to `side` pixels wide, pasted with its top-left corner at (x, y) on a grey
/// `width` × `height` canvas.
fn placed(picture: &Picture, side: u32, width: usize, height: usize, x: i64, y: i64) -> Picture {
    let src = image::RgbImage::from_raw(
        picture.width as u32,
        picture.height as u32,
        picture.data.clone(),
    )
    .expect("a whole picture");
    let h = (side as f32 * picture.height as f32 / picture.width as f32).round() as u32;
    let scaled = image::imageops::resize(&src, side, h, image::imageops::FilterType::Triangle);
    let mut canvas = Picture::uniform(width, height, [128, 128, 128]);
    for (sx, sy, p) in scaled.enumerate_pixels() {
        let (cx, cy) = (x + sx as i64, y + sy as i64);
        if (0..width as i64).contains(&cx) && (0..height as i64).contains(&cy) {
            let i = (cy as usize * width + cx as usize) * 3;
            canvas.data[i..i + 3].copy_from_slice(&p.0);
        }
    }
    canvas
}

/// `picture` turned by `degrees` about its centre (nearest pixels, mid-grey where nothing maps).
fn rotated(picture: &Picture, degrees: f32) -> Picture {
    let (w, h) = (picture.width, picture.height);
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let mut out = Picture::uniform(w, h, [128, 128, 128]);
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let sx = (cos * dx + sin * dy + cx).floor();
            let sy = (-sin * dx + cos * dy + cy).floor();
            if sx >= 0.0 && sy >= 0.0 && (sx as usize) < w && (sy as usize) < h {
                let (i, o) = (((sy as usize) * w + sx as usize) * 3, (y * w + x) * 3);
                out.data[o..o + 3].copy_from_slice(&picture.data[i..i + 3]);
            }
        }
    }
    out
}

fn pictures() -> Option<(Picture, Picture)> {
    let paths = support::sample_pictures();
    Some((
        Picture::load(&paths[0]).ok()?,
        Picture::load(&paths[1]).ok()?,
    ))
}

/// An engine with the detector in line (deterministic detection frames).
fn engine(interval: u32) -> Engine {
    engine_with(interval, false)
}

fn engine_with(interval: u32, async_detection: bool) -> Engine {
    let mut config = support::config().expect("run `make models`");
    config.detection_mode = if async_detection {
        DetectionMode::Background { bound: None }
    } else {
        DetectionMode::InLine
    };
    // The test videos slide a flat picture across the frame: in the camera's frame that face
    // would turn as it moves; its angles along the line of sight stay put.
    config.camera_fov = 0.0;
    let mut e = Engine::new(config).expect("engine");
    e.set_track_config(TrackConfig {
        detection_interval: interval,
        ..TrackConfig::default()
    })
    .unwrap();
    e
}

/// The astronaut 320 px wide, moving 4 px right and 2 px down per frame.
fn moving_astronaut(astronaut: &Picture, frame: usize) -> Picture {
    placed(
        astronaut,
        320,
        640,
        480,
        60 + 4 * frame as i64,
        40 + 2 * frame as i64,
    )
}

#[test]
fn ids_stay_stable_and_the_detector_rests_on_a_moving_face() {
    let (astronaut, _) = pictures().expect("run `make models`");
    let mut e = engine(0);
    let mut ids = Vec::new();
    let mut detections = 0;
    let mut yaw = Vec::new();
    for frame in 0..40 {
        let picture = moving_astronaut(&astronaut, frame);
        let faces = e.track(&picture.view(), Some(frame as f64 / 30.0)).unwrap();
        assert_eq!(faces.len(), 1, "frame {frame}: {faces:?}");
        let f = &faces[0];
        // The face moves with the picture: its box centre follows the offset.
        let expected_x = 60.0 + 4.0 * frame as f32 + 0.44 * 320.0;
        assert!(
            (f.bbox.centre().x - expected_x).abs() < 25.0,
            "frame {frame}: box {:?} drifted from x {expected_x}",
            f.bbox
        );
        ids.push(f.id);
        yaw.push(f.pose.yaw);
        detections += e.last_frame_detected() as usize;
    }
    assert!(ids.iter().all(|&id| id == ids[0]), "ids changed: {ids:?}");
    // Automatic mode: the first frame, then searches for new faces every 10 to 60 frames.
    assert!(
        (1..=4).contains(&detections),
        "detector runs over 40 frames: {detections}"
    );
    let (lo, hi) = yaw
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &y| (a.min(y), b.max(y)));
    assert!(hi - lo < 6.0, "yaw wandered from {lo} to {hi}");
    // A frontal face needs the head-pose regressor on its detection frames only (its share of a
    // frontal face's angles is small): one crop per detection, no mirrored crop.
    assert_eq!(e.regressor_crops(), detections as u64);
}

#[test]
fn a_turned_face_keeps_fused_angles_and_refreshes_the_regressor_only_when_it_moves() {
    use gstfacepose::engine::PoseMethod;
    use gstfacepose::engine::pose::solver::{REGRESSOR_REFRESH_FRAMES, STILL_HOLD_FRAMES};
    // AFLW2000-3D image00599: labelled yaw -75.3°, a profile the landmark fit alone gets wrong.
    let Some(path) = support::shared_or_skip(
        "data/aflw2000/images/image00599.jpg",
        "a_turned_face_keeps_fused_angles_and_refreshes_the_regressor_only_when_it_moves",
    ) else {
        return;
    };
    let picture = Picture::load(&path).unwrap();
    let mut still = engine(1);
    let reference = still.process(&picture.view()).unwrap();
    assert_eq!(reference.len(), 1);
    let truth = -75.3;
    assert!(
        (reference[0].pose.yaw - truth).abs() < 8.0,
        "{:?}",
        reference[0].pose
    );
    // The still picture above ran the mirrored crop too (the face is turned).
    assert_eq!(still.regressor_crops(), 2);

    // The face on a 640x480 frame: held still, or (`rolling`) tilting 1.5° further each frame,
    // as a head does when it turns.
    let placed_still = placed(&picture, 300, 640, 480, 170, 40);
    let run = |rolling: bool, frames: usize| {
        let mut e = engine(0);
        for frame in 0..frames {
            let roll = if rolling { 1.5 * frame as f32 } else { 0.0 };
            let shown = rotated(&placed_still, roll);
            let faces = e.track(&shown.view(), Some(frame as f64 / 30.0)).unwrap();
            assert_eq!(faces.len(), 1, "frame {frame}");
            let f = &faces[0];
            assert_eq!(f.method, PoseMethod::Fused, "frame {frame}");
            assert!(
                f.regressed_pose.is_some() && f.fit_pose.is_some(),
                "frame {frame}"
            );
            assert!(
                f.regressor_weight > 0.8,
                "frame {frame}: {}",
                f.regressor_weight
            );
            assert!(
                (f.pose.yaw - truth).abs() < 10.0,
                "frame {frame}: yaw {} against the label {truth}",
                f.pose.yaw
            );
        }
        e.regressor_crops()
    };
    // Turning, the head changes: the first frame and a refresh every REGRESSOR_REFRESH_FRAMES
    // frames, one crop each (in a stream the regressor skips the mirrored crop, on the first
    // frame too).
    let frames = 3 * REGRESSOR_REFRESH_FRAMES as usize;
    let refreshes = (frames as u64 - 1) / REGRESSOR_REFRESH_FRAMES as u64;
    assert_eq!(
        run(true, frames),
        1 + refreshes,
        "{refreshes} refreshes expected"
    );
    // Held still, the regressor would see the same head: it runs on the first frame, then only
    // after STILL_HOLD_FRAMES frames.
    let frames = STILL_HOLD_FRAMES as usize + 1;
    assert_eq!(
        run(false, frames),
        2,
        "the first frame and one after {STILL_HOLD_FRAMES}"
    );
}

/// `picture` mirrored left to right.
fn mirrored(picture: &Picture) -> Picture {
    let w = picture.width;
    let mut out = Picture::uniform(w, picture.height, [0, 0, 0]);
    for y in 0..picture.height {
        for x in 0..w {
            let (i, o) = ((y * w + x) * 3, (y * w + w - 1 - x) * 3);
            out.data[o..o + 3].copy_from_slice(&picture.data[i..i + 3]);
        }
    }
    out
}

#[test]
fn a_scene_cut_to_another_face_where_the_face_was_starts_that_face_afresh() {
    use gstfacepose::engine::PoseMethod;
    // AFLW2000-3D image00599 (labelled yaw -75.3°) for some frames, then the same picture
    // mirrored (a face turned +75.3°) with its face where the first one was: the crop from the
    // last landmarks lands on the new face and the tracker follows it. That face must not
    // inherit the first one's regressor estimate (nor its crop, nor its mirror correction).
    let name = "a_scene_cut_to_another_face_where_the_face_was_starts_that_face_afresh";
    let Some(path) = support::shared_or_skip("data/aflw2000/images/image00599.jpg", name) else {
        return;
    };
    let picture = Picture::load(&path).unwrap();
    let (side, x, y) = (300, 170, 40);
    let before = placed(&picture, side, 640, 480, x, y);
    let truth = -75.3;
    let mut e = engine(0);
    let first = e.track(&before.view(), Some(0.0)).unwrap();
    assert_eq!(first.len(), 1);
    // The mirrored picture, shifted to bring its face's centre where the first face's was.
    let u = (first[0].bbox.centre().x - x as f32).round() as i64;
    let after = placed(
        &mirrored(&picture),
        side,
        640,
        480,
        x + 2 * u - side as i64,
        y,
    );
    let cut = 3;
    for frame in 1..cut + 4 {
        let shown = if frame < cut { &before } else { &after };
        let crops = e.regressor_crops();
        let faces = e.track(&shown.view(), Some(frame as f64 / 30.0)).unwrap();
        assert_eq!(faces.len(), 1, "frame {frame}");
        let f = &faces[0];
        let expected = if frame < cut { truth } else { -truth };
        if frame == cut {
            // The case under test: followed, not detected, and the regressor measured the
            // new face.
            assert!(
                !e.last_frame_detected(),
                "the cut frame was a detection frame"
            );
            assert_eq!(f.id, first[0].id, "followed across the cut");
            assert_eq!(
                e.regressor_crops(),
                crops + 1,
                "the regressor ran at the cut"
            );
        }
        assert_eq!(f.method, PoseMethod::Fused, "frame {frame}");
        assert!(
            (f.pose.yaw - expected).abs() < 12.0,
            "frame {frame}: yaw {} against the label {expected}",
            f.pose.yaw
        );
    }
}

#[test]
fn a_lost_face_is_dropped_and_a_new_one_found_within_the_interval() {
    let (astronaut, grace) = pictures().expect("run `make models`");
    let interval = 5;
    let mut e = engine(interval);
    let blank = Picture::uniform(640, 480, [128, 128, 128]);
    let grace_frame = placed(&grace, 280, 640, 480, 300, 60);
    let mut first_id = None;
    let mut grace_seen_at = None;
    for frame in 0..36usize {
        let moving;
        let picture = match frame {
            0..=11 => {
                moving = moving_astronaut(&astronaut, frame);
                &moving
            }
            12..=20 => &blank,
            _ => &grace_frame,
        };
        let faces = e.track(&picture.view(), Some(frame as f64 / 30.0)).unwrap();
        match frame {
            0..=11 => {
                assert_eq!(faces.len(), 1, "frame {frame}");
                first_id.get_or_insert(faces[0].id);
                assert_eq!(Some(faces[0].id), first_id);
            }
            12..=20 => {
                // Frame 12 is not a detection frame (those are 0, 5, 10, 15, 20): the track must
                // go by its face-presence score.
                assert!(
                    faces.is_empty(),
                    "frame {frame}: a face on a blank frame: {faces:?}"
                );
                if frame == 12 {
                    assert!(!e.last_frame_detected());
                }
            }
            _ => {
                if let Some(f) = faces.first() {
                    assert_ne!(Some(f.id), first_id, "the new face got the old id");
                    grace_seen_at.get_or_insert(frame);
                } else {
                    assert!(grace_seen_at.is_none(), "frame {frame}: face lost again");
                }
            }
        }
    }
    let seen = grace_seen_at.expect("the new face was never found");
    assert!(
        seen < 21 + interval as usize,
        "new face found at frame {seen}, interval {interval}"
    );
}

/// Tracks `picture` until a face other than `old_id` shows up (giving the background detector
/// time between frames); returns it and the frames it took.
fn track_until_new_face(
    e: &mut Engine,
    picture: &Picture,
    old_id: Option<u64>,
    first_frame: usize,
) -> Option<(Face, usize)> {
    for k in 0..300 {
        let frame = first_frame + k;
        let faces = e.track(&picture.view(), Some(frame as f64 / 30.0)).unwrap();
        if let Some(f) = faces.into_iter().find(|f| Some(f.id) != old_id) {
            return Some((f, k));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    None
}

#[test]
fn background_detection_brings_a_new_face_in_and_keeps_ids() {
    let (astronaut, grace) = pictures().expect("run `make models`");
    let mut e = engine_with(5, true);
    let mut first_id = None;
    // The first frame waits for the detector (nothing to follow yet); then the astronaut is
    // followed while detections run in the background.
    for frame in 0..12usize {
        let picture = moving_astronaut(&astronaut, frame);
        let faces = e.track(&picture.view(), Some(frame as f64 / 30.0)).unwrap();
        assert_eq!(faces.len(), 1, "frame {frame}: {faces:?}");
        assert_eq!(*first_id.get_or_insert(faces[0].id), faces[0].id);
    }
    // Another face where there was none: it joins once the background detector has seen it,
    // brought to the current frame, with an id of its own and its detection's box.
    let grace_frame = placed(&grace, 280, 640, 480, 300, 60);
    let (face, _) = track_until_new_face(&mut e, &grace_frame, first_id, 12)
        .expect("the new face never joined");
    assert!(e.last_frame_detected() || face.id != first_id.unwrap());
    let c = face.bbox.centre();
    assert!(
        (300.0..580.0).contains(&c.x) && (60.0..420.0).contains(&c.y),
        "the new face's box {:?} is not where the face is",
        face.bbox
    );
    assert!(face.pose.yaw.is_finite() && face.landmarks.len() == 468);
    // And it is followed from then on under the same id.
    for frame in 0..5 {
        let faces = e
            .track(&grace_frame.view(), Some((400 + frame) as f64 / 30.0))
            .unwrap();
        assert_eq!(faces.len(), 1, "{faces:?}");
        assert_eq!(faces[0].id, face.id);
    }
}

#[test]
fn a_reset_drops_the_background_detection_in_flight() {
    let (astronaut, grace) = pictures().expect("run `make models`");
    let mut e = engine_with(2, true);
    for frame in 0..6usize {
        let picture = moving_astronaut(&astronaut, frame);
        e.track(&picture.view(), Some(frame as f64 / 30.0)).unwrap();
    }
    // A detection of the astronaut is (most likely) in flight: a flush forgets the stream, and
    // its answer must not bring the astronaut into the new one.
    e.reset_tracking();
    let grace_frame = placed(&grace, 280, 640, 480, 300, 60);
    let mut ids = std::collections::BTreeSet::new();
    for frame in 0..40usize {
        let faces = e
            .track(&grace_frame.view(), Some(frame as f64 / 30.0))
            .unwrap();
        assert_eq!(faces.len(), 1, "frame {frame}: {faces:?}");
        assert!(
            faces[0].bbox.centre().x > 300.0,
            "frame {frame}: a face where the astronaut was: {:?}",
            faces[0].bbox
        );
        ids.insert(faces[0].id);
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    assert_eq!(ids.len(), 1, "one face, one id: {ids:?}");
}

fn same_face(a: &Face, b: &Face) -> bool {
    a.bbox == b.bbox && a.landmarks == b.landmarks && a.pose == b.pose && a.score == b.score
}

#[test]
fn interval_one_gives_the_faces_of_the_still_path() {
    let (astronaut, _) = pictures().expect("run `make models`");
    let mut tracked = engine(1);
    let mut still = engine(1);
    for frame in 0..4 {
        let picture = moving_astronaut(&astronaut, 3 * frame);
        let a = tracked
            .track(&picture.view(), Some(frame as f64 / 30.0))
            .unwrap();
        let b = still.process(&picture.view()).unwrap();
        assert!(tracked.last_frame_detected());
        assert_eq!(a.len(), b.len());
        assert!(
            a.iter().zip(&b).all(|(x, y)| same_face(x, y)),
            "frame {frame}"
        );
        assert_eq!(a[0].id, 0, "one face, one id");
    }
}

#[test]
fn smoothing_keeps_a_still_face_where_it_is() {
    let (astronaut, _) = pictures().expect("run `make models`");
    let picture = moving_astronaut(&astronaut, 0);
    let mut raw = engine(0);
    let mut smooth = engine(0);
    smooth
        .set_track_config(TrackConfig {
            smoothing: 0.7,
            ..TrackConfig::default()
        })
        .unwrap();
    for frame in 0..12 {
        let t = Some(frame as f64 / 30.0);
        let a = raw.track(&picture.view(), t).unwrap();
        let b = smooth.track(&picture.view(), t).unwrap();
        assert_eq!((a.len(), b.len()), (1, 1));
        let d = (a[0].pose.yaw - b[0].pose.yaw).abs()
            + (a[0].pose.pitch - b[0].pose.pitch).abs()
            + (a[0].pose.roll - b[0].pose.roll).abs();
        assert!(d < 3.0, "frame {frame}: smoothed pose {d} degrees away");
        assert!(b[0].pose.yaw.is_finite() && b[0].bbox.is_finite());
    }
}

/// Frames through the element: every frame's FacePoseMeta, in order.
fn through_element(frames: &[Picture], properties: &[(&str, &str)]) -> Vec<gst::Structure> {
    let mut out = Vec::new();
    for result in support::through_harness(frames, properties).0 {
        let s = gstfacepose::meta::frame_structure(&result).expect("a FacePoseMeta");
        // The ROI metas carry the same ids.
        let roi_ids: Vec<i32> = result
            .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
            .map(|m| m.id())
            .collect();
        let meta_ids: Vec<i32> = s
            .get::<gst::Array>("faces")
            .unwrap()
            .iter()
            .map(|v| {
                gstfacepose::meta::roi_id(
                    v.get::<gst::Structure>().unwrap().get::<u64>("id").unwrap(),
                )
            })
            .collect();
        assert_eq!(roi_ids, meta_ids);
        out.push(s);
    }
    out
}

#[test]
fn the_element_tracks_with_stable_ids_and_reports_detection_frames() {
    let (astronaut, _) = pictures().expect("run `make models`");
    let frames: Vec<Picture> = (0..12).map(|i| moving_astronaut(&astronaut, i)).collect();
    let metas = through_element(
        &frames,
        &[
            ("detection-interval", "4"),
            ("smoothing", "0.3"),
            ("async-detection", "false"),
        ],
    );
    let mut ids = Vec::new();
    for (i, s) in metas.iter().enumerate() {
        assert_eq!(s.get::<u32>("face-count").unwrap(), 1, "frame {i}");
        let detected = s.get::<bool>("detected").unwrap();
        assert_eq!(detected, i % 4 == 0, "frame {i}");
        let detect_ms = s.get::<f64>("detect-ms").unwrap();
        assert_eq!(
            detect_ms > 0.0,
            detected,
            "frame {i}: detect-ms {detect_ms}"
        );
        assert!(s.get::<f64>("landmarks-ms").unwrap() > 0.0);
        let faces = s.get::<gst::Array>("faces").unwrap();
        ids.push(
            faces.as_slice()[0]
                .get::<gst::Structure>()
                .unwrap()
                .get::<u64>("id")
                .unwrap(),
        );
    }
    assert!(ids.iter().all(|&id| id == ids[0]), "{ids:?}");
}

#[test]
fn a_provider_fallback_gives_the_cpu_result() {
    let (astronaut, _) = pictures().expect("run `make models`");
    let frames: Vec<Picture> = (0..3).map(|i| moving_astronaut(&astronaut, i)).collect();
    let faces = |metas: &[gst::Structure]| -> Vec<String> {
        metas
            .iter()
            .map(|s| s.get::<gst::Array>("faces").unwrap())
            .map(|a| format!("{a:?}"))
            .collect()
    };
    let cpu = through_element(&frames, &[("execution-provider", "cpu")]);
    let asked_cuda = through_element(&frames, &[("execution-provider", "cuda")]);
    let provider = asked_cuda[0].get::<String>("execution-provider").unwrap();
    if provider == "cuda" {
        eprintln!("this machine runs CUDA; the fallback is not exercised");
        return;
    }
    assert_eq!(provider, "cpu");
    assert_eq!(
        faces(&cpu),
        faces(&asked_cuda),
        "fallback changed the faces"
    );
    assert_eq!(cpu[0].get::<u32>("face-count").unwrap(), 1);
}
