// SPDX-License-Identifier: MPL-2.0
//! Seed compatibility: the PyTorch-layout RetinaFace MobileNet-0.25, PFLD 98-point landmarks and
//! the seed's linear pose formula, with the models in ../shared/models (research licences: used
//! from there, never copied). Under CI (CI=true) a missing ../shared fails these tests.

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;

use gstfacepose::engine::{Engine, EngineConfig, PoseMethod, default_model_dir};
use support::Picture;

struct Seed {
    detector: PathBuf,
    landmarker: PathBuf,
}

fn seed(test: &str) -> Option<Seed> {
    let detector = support::shared_or_skip("models/retinaface_mnet025/FaceDetector.onnx", test)?;
    let landmarker =
        support::shared_or_skip("models/pfld_98/PFLD_GhostOne_112_1_opt_sim.onnx", test)?;
    Some(Seed {
        detector,
        landmarker,
    })
}

fn seed_detector(config: &mut EngineConfig, s: &Seed) {
    config.detector_model = s.detector.clone();
    config.detector_descriptor = Some(default_model_dir().join("retinaface_mnet025.descriptor"));
}

fn pfld(config: &mut EngineConfig, s: &Seed, method: PoseMethod) {
    config.landmark_model = s.landmarker.clone();
    config.landmark_descriptor = Some(default_model_dir().join("pfld_98.descriptor"));
    config.pose_method = method;
}

#[test]
fn both_retinaface_layouts_find_the_same_faces() {
    let Some(s) = seed("both_retinaface_layouts_find_the_same_faces") else {
        return;
    };
    let mut ours = Engine::new(support::config().unwrap()).unwrap();
    let mut config = support::config().unwrap();
    seed_detector(&mut config, &s);
    let mut theirs = Engine::new(config).unwrap();
    for path in support::sample_pictures() {
        let picture = Picture::load(&path).unwrap();
        let a = ours.process(&picture.view()).unwrap();
        let b = theirs.process(&picture.view()).unwrap();
        assert_eq!((a.len(), b.len()), (1, 1), "{}", path.display());
        let (p, q) = (a[0].bbox, b[0].bbox);
        let tolerance = 0.05 * p.width().max(p.height());
        for (u, v) in [(p.x0, q.x0), (p.y0, q.y0), (p.x1, q.x1), (p.y1, q.y1)] {
            assert!(
                (u - v).abs() <= tolerance,
                "{}: {p:?} vs {q:?}",
                path.display()
            );
        }
        println!("{}: mbv2 {p:?} / mnet025 {q:?}", path.display());
    }
}

#[test]
fn pfld_landmarks_fall_inside_the_face_box() {
    let Some(s) = seed("pfld_landmarks_fall_inside_the_face_box") else {
        return;
    };
    let mut config = support::config().unwrap();
    pfld(&mut config, &s, PoseMethod::Rigid);
    let mut engine = Engine::new(config).unwrap();
    for path in support::sample_pictures() {
        let picture = Picture::load(&path).unwrap();
        let faces = engine.process(&picture.view()).unwrap();
        assert_eq!(faces.len(), 1);
        let f = &faces[0];
        assert_eq!(f.landmarks.len(), 98);
        let (w, h) = (f.bbox.width() * 0.15, f.bbox.height() * 0.15);
        for p in &f.landmarks {
            assert!(
                p[0] >= f.bbox.x0 - w
                    && p[0] <= f.bbox.x1 + w
                    && p[1] >= f.bbox.y0 - h
                    && p[1] <= f.bbox.y1 + h,
                "{}: landmark {p:?} outside {:?}",
                path.display(),
                f.bbox
            );
        }
        assert!(
            f.pose.yaw.abs() < 15.0 && f.pose.roll.abs() < 15.0,
            "{:?}",
            f.pose
        );
    }
}

#[test]
fn both_pose_methods_agree_in_sign_on_turned_faces() {
    let Some(s) = seed("both_pose_methods_agree_in_sign_on_turned_faces") else {
        return;
    };
    let Some(labels) =
        support::shared_or_skip("data/aflw2000/labels.csv", "both_pose_methods_agree")
    else {
        return;
    };
    // The first six images turned more than 35° each way (yaw label, within 99°).
    let text = std::fs::read_to_string(&labels).unwrap();
    let mut picks: Vec<(PathBuf, f32)> = Vec::new();
    let (mut left, mut right) = (0, 0);
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let yaw: f32 = f[1].parse().unwrap();
        if f[10].trim() != "1" || yaw.abs() < 35.0 || yaw.abs() > 60.0 {
            continue;
        }
        if yaw > 0.0 && left < 3 {
            left += 1;
        } else if yaw < 0.0 && right < 3 {
            right += 1;
        } else {
            continue;
        }
        picks.push((labels.parent().unwrap().join(f[0]), yaw));
    }
    assert_eq!(picks.len(), 6);
    let mut engines: Vec<Engine> = [PoseMethod::Rigid, PoseMethod::SeedLinear]
        .into_iter()
        .map(|m| {
            let mut c = support::config().unwrap();
            pfld(&mut c, &s, m);
            Engine::new(c).unwrap()
        })
        .collect();
    for (path, yaw) in picks {
        let picture = Picture::load(&path).unwrap();
        let yaws: Vec<f32> = engines
            .iter_mut()
            .map(|e| {
                e.process(&picture.view())
                    .unwrap()
                    .first()
                    .map_or(f32::NAN, |f| f.pose.yaw)
            })
            .collect();
        println!(
            "{}: label {yaw:+.1}, rigid {:+.1}, seed-linear {:+.1}",
            path.display(),
            yaws[0],
            yaws[1]
        );
        for y in &yaws {
            assert!(
                y.signum() == yaw.signum() && y.abs() > 5.0,
                "{}: {yaws:?} vs label {yaw}",
                path.display()
            );
        }
    }
}

#[test]
fn a_pfld_model_with_the_facemesh_descriptor_is_refused() {
    let Some(s) = seed("a_pfld_model_with_the_facemesh_descriptor_is_refused") else {
        return;
    };
    let mut config = support::config().unwrap();
    config.landmark_model = s.landmarker.clone();
    config.landmark_descriptor = Some(default_model_dir().join("face_landmark.descriptor"));
    let e = Engine::new(config).err().expect("refused").to_string();
    assert!(
        e.contains("PFLD_GhostOne_112_1_opt_sim.onnx") && e.contains("shape"),
        "{e}"
    );
}

#[test]
fn seed_linear_needs_98_points() {
    let mut config = support::config().unwrap();
    config.pose_method = PoseMethod::SeedLinear;
    let e = Engine::new(config).err().expect("refused").to_string();
    assert!(
        e.contains("seed-linear") && e.contains("98") && e.contains("468"),
        "{e}"
    );
}

#[test]
fn the_seed_pipeline_runs_in_the_element_by_properties_alone() {
    use gst::prelude::*;
    let Some(s) = seed("the_seed_pipeline_runs_in_the_element_by_properties_alone") else {
        return;
    };
    gst::init().unwrap();
    gstfacepose::plugin_register_static().unwrap();
    let json = std::env::temp_dir().join(format!("facepose-seed-{}.jsonl", std::process::id()));
    let models = default_model_dir();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! pngdec ! videoconvert ! faceposeestimator \
         detector-model={} detector-descriptor={} landmark-model={} landmark-descriptor={} \
         pose-method=seed-linear json-location={} ! fakesink",
        support::sample_pictures()[0].display(),
        s.detector.display(),
        models.join("retinaface_mnet025.descriptor").display(),
        s.landmarker.display(),
        models.join("pfld_98.descriptor").display(),
        json.display()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS or an error");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    let text = std::fs::read_to_string(&json).unwrap();
    std::fs::remove_file(&json).ok();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("{\"pts\"")).count(),
        1
    );
    assert_eq!(
        text.matches("\"method\":\"seed-linear\"").count(),
        1,
        "one face: {}",
        &text[..200.min(text.len())]
    );
    assert_eq!(text.matches("],[").count(), 97, "98 landmarks");
}
