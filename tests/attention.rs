// SPDX-License-Identifier: MPL-2.0
//! Head position, gaze and "looking at the camera" from the element's own solver: the reference
//! face (the canonical face the rigid fit uses, built by `make models`) projected through pinhole
//! cameras of several fields of view, at positions in every corner of the picture, 40 to 400 cm
//! away, turned up to 60°, gives back its position within 3 % of its distance and its looking
//! flag exactly wherever the true angle is 2° or more from the threshold.

#[path = "support/mod.rs"]
mod support;

use gstfacepose::engine::Face;
use gstfacepose::engine::attention::{Attention, AttentionConfig, FrameGeometry};
use gstfacepose::engine::geometry::{BBox, Point, RotatedRect};
use gstfacepose::engine::pose::canonical::ReferenceFace;
use gstfacepose::engine::pose::fusion::DEFAULT_FUSION;
use gstfacepose::engine::pose::perspective::Camera;
use gstfacepose::engine::pose::solver::Solver;
use gstfacepose::engine::pose::{Pose, PoseMethod};

/// The reference face the rigid fit uses (`make models` builds it).
fn reference() -> ReferenceFace {
    let config = support::config().expect("run `make models`");
    ReferenceFace::load(&config.reference_face).unwrap()
}

fn face_of(points: Vec<[f32; 3]>, pose: Pose, scale: f32) -> Face {
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in &points {
        x0 = x0.min(p[0]);
        y0 = y0.min(p[1]);
        x1 = x1.max(p[0]);
        y1 = y1.max(p[1]);
    }
    Face {
        id: 1,
        bbox: BBox::new(x0, y0, x1, y1),
        score: 1.0,
        keypoints: [Point::default(); 5],
        landmarks: points,
        presence: 1.0,
        pose,
        rotation: pose.to_rotation(),
        method: PoseMethod::Rigid,
        fit_pose: Some(pose),
        regressed_pose: None,
        regressor_weight: 0.0,
        scale,
        fit_error: 0.0,
        attention: None,
    }
}

fn angle_deg(a: [f64; 3], b: [f64; 3]) -> f64 {
    let n = |v: [f64; 3]| (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    let d = (a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) / (n(a) * n(b));
    d.clamp(-1.0, 1.0).acos().to_degrees()
}

#[test]
fn the_projected_reference_face_gives_back_its_position_and_whether_it_looks_at_the_camera() {
    let reference = reference();
    let points: Vec<[f64; 3]> = reference
        .points
        .iter()
        .map(|p| p.map(|v| v as f64))
        .collect();
    // The head's position is that of the reference points' centre.
    let n = points.len() as f64;
    let middle: [f64; 3] = std::array::from_fn(|k| points.iter().map(|p| p[k]).sum::<f64>() / n);
    let centred: Vec<[f64; 3]> = points
        .iter()
        .map(|p| std::array::from_fn(|k| p[k] - middle[k]))
        .collect();
    let solver = Solver {
        indices: (0..points.len()).collect(),
        reference: points.clone(),
        weights: reference.weights.iter().map(|&w| w as f64).collect(),
        depth: true,
        method: PoseMethod::Rigid,
        fusion: DEFAULT_FUSION,
    };
    let config = AttentionConfig::default();
    let crop = RotatedRect {
        centre: Point::default(),
        side: 1.0,
        angle: 0.0,
    };
    let (w, h) = (1280usize, 720usize);
    let (mut worst, mut checked, mut looking, mut away) = (0.0f64, 0, 0, 0);
    for fov in [40.0f32, 60.0, 90.0] {
        let cam = Camera::from_fov(w, h, fov).unwrap();
        for (fx, fy) in [
            (0.5, 0.5),
            (0.1, 0.1),
            (0.9, 0.1),
            (0.1, 0.9),
            (0.9, 0.9),
            (0.5, 0.15),
        ] {
            for distance in [40.0, 70.0, 150.0, 400.0] {
                let d = cam.ray(fx * w as f64, fy * h as f64);
                let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
                let centre = d.map(|v| v / len * distance);
                for (yaw, pitch, roll) in [
                    (0.0, 0.0, 0.0),
                    (12.0, -5.0, 3.0),
                    (-20.0, 8.0, -6.0),
                    (35.0, -15.0, 10.0),
                    (-60.0, 10.0, 5.0),
                    (5.0, 45.0, 0.0),
                    (40.0, -40.0, -15.0),
                ] {
                    let truth = Pose { yaw, pitch, roll };
                    let landmarks = cam.project_face(truth, centre, &centred);
                    let fit = solver
                        .fit(&landmarks, &crop, Some(&cam))
                        .expect("the fit succeeds");
                    let pose = Pose::from_rotation(&fit.camera);
                    let mut faces = [face_of(landmarks, pose, fit.scale)];
                    let geometry = FrameGeometry {
                        width: w,
                        height: h,
                        camera_fov: fov,
                    };
                    Attention::new(config).update(&mut faces, geometry, Some(0), Some(1));
                    let a = faces[0].attention.unwrap();
                    let got = a.position.expect("a position with a field of view");
                    // Truth in the output frame: x right, y down, z forward.
                    let want = [centre[0], -centre[1], -centre[2]];
                    let error = (0..3)
                        .map(|k| (got[k] as f64 - want[k]).powi(2))
                        .sum::<f64>()
                        .sqrt();
                    worst = worst.max(error / distance);
                    assert!(
                        error < 0.03 * distance,
                        "fov {fov}, at ({fx}, {fy}), {distance} cm, {truth:?}: {got:?} for \
                         {want:?}"
                    );
                    // The true angle between the forward axis and the way to the camera.
                    let r = truth.to_rotation();
                    let forward = [r[0][2] as f64, -(r[1][2] as f64), -(r[2][2] as f64)];
                    let true_angle = angle_deg(forward, want.map(|v| -v));
                    if (true_angle - config.angle as f64).abs() >= 2.0 {
                        checked += 1;
                        let truly = true_angle < config.angle as f64;
                        looking += truly as usize;
                        away += !truly as usize;
                        assert_eq!(
                            a.looking_at_camera, truly,
                            "fov {fov}, at ({fx}, {fy}), {distance} cm, {truth:?}: true angle \
                             {true_angle:.1}, got {:.1}",
                            a.camera_angle
                        );
                    }
                }
            }
        }
    }
    eprintln!(
        "worst position error {:.2} % of the distance; {checked} looking flags checked \
         ({looking} looking, {away} not)",
        worst * 100.0
    );
    // Both answers occur: the check can tell a wrong flag either way.
    assert!(looking > 20 && away > 20, "{looking} looking, {away} not");
}

#[test]
fn without_a_field_of_view_there_is_no_position_and_looking_is_judged_on_the_line_of_sight() {
    let mut faces = [face_of(
        vec![[100.0, 100.0, 0.0], [140.0, 150.0, 0.0]],
        Pose {
            yaw: 10.0,
            pitch: -5.0,
            roll: 30.0,
        },
        3.0,
    )];
    let geometry = FrameGeometry {
        width: 640,
        height: 480,
        camera_fov: 0.0,
    };
    Attention::new(AttentionConfig::default()).update(&mut faces, geometry, None, None);
    let a = faces[0].attention.unwrap();
    assert_eq!(a.position, None);
    assert_eq!(a.position_source, None);
    // acos(cos 10° · cos 5°): roll does not turn the forward axis.
    let want = (10f64.to_radians().cos() * 5f64.to_radians().cos())
        .acos()
        .to_degrees();
    assert!((a.camera_angle as f64 - want).abs() < 1e-3, "{a:?}");
    assert!(a.looking_at_camera && a.looking);
}

fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfacepose::plugin_register_static().expect("registering the facepose plugin");
    });
}

/// Runs a pipeline to its end; the bus messages.
fn run(description: &str) -> Vec<gst::Message> {
    support::run_to_end(description)
}

fn error_of(messages: &[gst::Message]) -> Option<String> {
    messages.iter().find_map(|m| match m.view() {
        gst::MessageView::Error(e) => Some(e.error().to_string()),
        _ => None,
    })
}

#[test]
fn bad_attention_settings_stop_the_element_with_an_error_naming_the_property() {
    init();
    for (props, name) in [
        ("attention-target=\"1,2,3\"", "attention-target"),
        ("attention-target=\"0,0,-5,10\"", "attention-target"),
        ("attention-target=\"nan,0,5,10\"", "attention-target"),
        ("attention-target=\"0,0,50,30\" camera-fov=0", "camera-fov"),
        ("attention-angle=90", "attention-angle"),
        ("attention-angle=0", "attention-angle"),
    ] {
        let messages = run(&format!(
            "videotestsrc num-buffers=2 ! faceposeestimator {props} ! fakesink"
        ));
        let error = error_of(&messages).unwrap_or_else(|| panic!("{props}: no error"));
        assert!(error.contains(name), "{props}: {error}");
    }
}

#[test]
fn a_face_held_still_gives_attention_on_every_frame_and_its_track_ends_at_eos() {
    init();
    let picture = support::sample_pictures()[0].clone();
    assert!(
        picture.exists(),
        "{} is missing: run `make models`",
        picture.display()
    );
    let dir = std::env::temp_dir().join(format!("facepose-attention-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("faces.jsonl");
    const FRAMES: u64 = 12;
    let messages = run(&format!(
        "filesrc location={} ! pngdec ! videoconvert ! imagefreeze num-buffers={FRAMES} ! \
         video/x-raw,framerate=25/1 ! faceposeestimator json-location={} ! fakesink",
        picture.display(),
        json.display()
    ));
    assert_eq!(error_of(&messages), None);
    let events: Vec<gst::Structure> = messages
        .iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Element(e) => e
                .structure()
                .filter(|s| s.name() == gstfacepose::meta::EVENT_MESSAGE)
                .map(|s| s.to_owned()),
            _ => None,
        })
        .collect();
    let text = std::fs::read_to_string(&json).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, FRAMES + 1, "{text}");
    let frame = 40_000_000u64;
    let mut looking = Vec::new();
    for (i, l) in lines[..FRAMES as usize].iter().enumerate() {
        let faces = l["faces"].as_array().unwrap();
        assert_eq!(faces.len(), 1, "{l}");
        let a = &faces[0]["attention"];
        assert_eq!(
            a["visible_ns"].as_u64(),
            Some((i as u64 + 1) * frame),
            "{a}"
        );
        let p = a["position"]
            .as_array()
            .expect("a position at camera-fov 60");
        assert!(p[2].as_f64().unwrap() > 10.0, "{a}");
        assert_eq!(a["position_source"], "fit");
        looking.push(a["looking"].as_bool().unwrap());
    }
    // The end of the stream ends the track: on the bus and as the last JSON line.
    let last = &lines[FRAMES as usize];
    assert_eq!(last["tracks_ended"], "eos", "{last}");
    let ended = last["attention_events"].as_array().unwrap();
    let track_end = ended.last().unwrap();
    assert_eq!(track_end["event"], "track-end");
    assert_eq!(track_end["visible_ns"].as_u64(), Some(FRAMES * frame));
    assert_eq!(track_end["start"].as_u64(), Some(0));
    assert_eq!(track_end["end"].as_u64(), Some(FRAMES * frame));
    assert_eq!(events.len(), ended.len(), "{events:?}");
    let bus_end = events.last().unwrap();
    assert_eq!(bus_end.get::<&str>("event").unwrap(), "track-end");
    assert_eq!(
        bus_end.get::<gst::ClockTime>("visible-time").unwrap(),
        gst::ClockTime::from_nseconds(FRAMES * frame)
    );
    // The same picture on every frame: the same verdict on every frame, and so one episode
    // for the whole stream or none.
    assert!(looking.iter().all(|&l| l == looking[0]), "{looking:?}");
    let episodes = track_end["episodes"].as_u64().unwrap();
    if looking[0] {
        assert_eq!(episodes, 1);
        assert_eq!(track_end["looking_ns"].as_u64(), Some(FRAMES * frame));
    } else {
        assert_eq!(episodes, 0);
    }
    std::fs::remove_dir_all(&dir).ok();
}
