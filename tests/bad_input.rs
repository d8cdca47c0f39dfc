// SPDX-License-Identifier: MPL-2.0
//! Broken set-ups give an error that names the offending file and says what was expected, never a
//! panic: missing, empty and non-ONNX model files, a model that does not fit its descriptor,
//! descriptors with a missing key or an absurd value, and a missing reference face.

mod support;

use std::path::{Path, PathBuf};

use gstfacepose::engine::{Engine, EngineConfig};

fn models() -> PathBuf {
    let config = support::config().unwrap_or_else(|e| panic!("{e}"));
    config.detector_model.parent().unwrap().to_owned()
}

/// A fresh, empty folder for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("facepose-bad-input-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        Scratch(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", from.display(), to.display()));
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Starts the engine, which must fail (without panicking); returns the error's text.
fn load_error(config: EngineConfig, case: &str) -> String {
    let outcome = std::panic::catch_unwind(|| Engine::new(config));
    match outcome {
        Err(_) => panic!("{case}: Engine::new panicked instead of returning an error"),
        Ok(Ok(_)) => panic!("{case}: Engine::new succeeded, expected an error"),
        Ok(Err(e)) => {
            let text = e.to_string();
            println!("{case}: {text}");
            text
        }
    }
}

fn assert_mentions(text: &str, words: &[&str], case: &str) {
    for w in words {
        assert!(
            text.contains(w),
            "{case}: the error does not mention `{w}`: {text}"
        );
    }
}

/// The default configuration with the detector replaced.
fn with_detector(model: &Path) -> EngineConfig {
    EngineConfig {
        detector_model: model.to_owned(),
        ..EngineConfig::default()
    }
}

#[test]
fn a_missing_detector_model_is_named() {
    let _ = models();
    let dir = Scratch::new("missing");
    let path = dir.join("nowhere.onnx");
    let text = load_error(with_detector(&path), "missing model");
    assert_mentions(
        &text,
        &[&path.display().to_string(), "no such file"],
        "missing model",
    );
}

#[test]
fn a_file_that_is_not_onnx_is_named() {
    let m = models();
    let dir = Scratch::new("garbage");
    let path = dir.join("x.onnx");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    write(&path, &garbage);
    copy(
        &m.join("retinaface_mbv2.descriptor"),
        &dir.join("x.descriptor"),
    );
    let text = load_error(with_detector(&path), "garbage model");
    assert_mentions(
        &text,
        &[&path.display().to_string(), "not an ONNX model"],
        "garbage model",
    );
}

#[test]
fn an_empty_model_file_is_named() {
    let m = models();
    let dir = Scratch::new("empty");
    let path = dir.join("x.onnx");
    write(&path, b"");
    copy(
        &m.join("retinaface_mbv2.descriptor"),
        &dir.join("x.descriptor"),
    );
    let text = load_error(with_detector(&path), "empty model");
    assert_mentions(
        &text,
        &[&path.display().to_string(), "empty", "ONNX"],
        "empty model",
    );
}

#[test]
fn a_model_with_the_wrong_input_shape_is_named() {
    let m = models();
    let dir = Scratch::new("shape");
    let path = dir.join("wrong.onnx");
    copy(&m.join("face_landmark.onnx"), &path);
    copy(
        &m.join("retinaface_mbv2.descriptor"),
        &dir.join("wrong.descriptor"),
    );
    let text = load_error(
        with_detector(&path),
        "FaceMesh model as the RetinaFace detector",
    );
    assert_mentions(
        &text,
        &[&path.display().to_string(), "shape", "192", "dynamic"],
        "FaceMesh model as the RetinaFace detector",
    );
}

#[test]
fn a_descriptor_of_the_wrong_family_is_named() {
    let m = models();
    let descriptor = m.join("blazeface_full.descriptor");
    let config = EngineConfig {
        landmark_descriptor: Some(descriptor.clone()),
        ..EngineConfig::default()
    };
    let case = "FaceMesh model with the BlazeFace descriptor";
    let text = load_error(config, case);
    assert_mentions(
        &text,
        &[
            &descriptor.display().to_string(),
            "family",
            "blazeface",
            "facemesh",
        ],
        case,
    );
}

/// A copy of the descriptor `file` of `models/` changed by `edit`, in a fresh folder.
fn edited_copy(test: &str, file: &str, edit: impl Fn(&str) -> String) -> (PathBuf, Scratch) {
    let m = models();
    let dir = Scratch::new(test);
    let original = std::fs::read_to_string(m.join(file)).unwrap();
    let descriptor = dir.join(file);
    let edited = edit(&original);
    assert_ne!(edited, original, "the edit changed nothing");
    write(&descriptor, edited.as_bytes());
    (descriptor, dir)
}

/// The default set-up with the detector's descriptor changed by `edit`.
fn edited_descriptor(
    test: &str,
    edit: impl Fn(&str) -> String,
) -> (EngineConfig, PathBuf, Scratch) {
    let (descriptor, dir) = edited_copy(test, "retinaface_mbv2.descriptor", edit);
    let config = EngineConfig {
        detector_descriptor: Some(descriptor.clone()),
        ..EngineConfig::default()
    };
    (config, descriptor, dir)
}

#[test]
fn a_descriptor_with_a_missing_key_is_named() {
    let (config, descriptor, _dir) = edited_descriptor("missing-key", |text| {
        text.lines()
            .filter(|l| !l.trim_start().starts_with("outputs"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let text = load_error(config, "descriptor without `outputs`");
    assert_mentions(
        &text,
        &[&descriptor.display().to_string(), "outputs", "missing"],
        "descriptor without `outputs`",
    );
}

#[test]
fn a_descriptor_with_an_absurd_size_is_named() {
    let (config, descriptor, _dir) = edited_descriptor("absurd-size", |text| {
        text.lines()
            .map(|l| {
                if l.trim_start().starts_with("size") {
                    "size = 0x0\n".to_string()
                } else {
                    format!("{l}\n")
                }
            })
            .collect()
    });
    let text = load_error(config, "descriptor with `size = 0x0`");
    assert_mentions(
        &text,
        &[
            &descriptor.display().to_string(),
            "size",
            "0x0",
            "<width>x<height>",
        ],
        "descriptor with `size = 0x0`",
    );
}

#[test]
fn a_missing_reference_face_is_named() {
    let _ = models();
    let dir = Scratch::new("canonical");
    let path = dir.join("canonical_face.txt");
    let config = EngineConfig {
        reference_face: path.clone(),
        ..EngineConfig::default()
    };
    let text = load_error(config, "missing reference face");
    assert_mentions(
        &text,
        &[&path.display().to_string(), "cannot read", "make models"],
        "missing reference face",
    );
}

/// The default set-up with the head-pose regressor's descriptor changed by `edit` (the default
/// WHENet model stays).
fn edited_pose_descriptor(
    test: &str,
    edit: impl Fn(&str) -> String,
) -> (EngineConfig, PathBuf, Scratch) {
    let (descriptor, dir) = edited_copy(test, "whenet.descriptor", edit);
    let config = EngineConfig {
        pose_descriptor: Some(descriptor.clone()),
        ..EngineConfig::default()
    };
    (config, descriptor, dir)
}

/// `text` with the line of `key` replaced by `key = value`.
fn set_key(text: &str, key: &str, value: &str) -> String {
    text.lines()
        .map(|l| {
            if l.split('=').next().is_some_and(|k| k.trim() == key) {
                format!("{key} = {value}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

#[test]
fn a_head_pose_model_with_the_wrong_input_size_is_named() {
    // WHENet takes 224×224: a descriptor saying 64×64 does not fit it.
    let (config, _descriptor, _dir) =
        edited_pose_descriptor("pose-size", |t| set_key(t, "size", "64x64"));
    let model = config.pose_model.clone().unwrap();
    let text = load_error(config, "WHENet with a 64x64 descriptor");
    assert_mentions(
        &text,
        &[&model.display().to_string(), "shape", "224", "64×64"],
        "WHENet with a 64x64 descriptor",
    );
}

#[test]
fn a_head_pose_descriptor_naming_a_missing_output_is_named() {
    let (config, _descriptor, _dir) =
        edited_pose_descriptor("pose-output", |t| set_key(t, "outputs", "yaw pitch tilt"));
    let model = config.pose_model.clone().unwrap();
    let text = load_error(config, "an output WHENet lacks");
    assert_mentions(
        &text,
        &[&model.display().to_string(), "no output named `tilt`"],
        "an output WHENet lacks",
    );
}

#[test]
fn head_pose_bins_that_do_not_fit_the_outputs_are_named() {
    let (config, descriptor, _dir) =
        edited_pose_descriptor("pose-bins", |t| set_key(t, "bins", "120 66 60"));
    let text = load_error(config, "60 roll bins for a 66-wide output");
    assert_mentions(
        &text,
        &[&descriptor.display().to_string(), "bins", "`roll`", "66"],
        "60 roll bins for a 66-wide output",
    );
}

#[test]
fn a_missing_head_pose_model_is_named_and_regression_needs_one() {
    let _ = models();
    let dir = Scratch::new("pose-missing");
    let path = dir.join("whenet.onnx");
    let config = EngineConfig {
        pose_model: Some(path.clone()),
        ..EngineConfig::default()
    };
    let text = load_error(config, "missing head-pose model");
    assert_mentions(
        &text,
        &[&path.display().to_string(), "no such file"],
        "missing head-pose model",
    );
    let config = EngineConfig {
        pose_model: None,
        pose_method: gstfacepose::engine::PoseMethod::Regression,
        ..EngineConfig::default()
    };
    let text = load_error(config, "regression without a model");
    assert_mentions(
        &text,
        &["regression", "pose-model"],
        "regression without a model",
    );
}

#[test]
fn unusable_regressor_outputs_keep_the_fit_angles_and_warn_once() {
    // WHENet's outputs are logits; read as probabilities, the negative ones make no
    // distribution, so every face's regressor output is unusable.
    let (config, _descriptor, _dir) = edited_pose_descriptor("pose-unusable", |t| {
        set_key(t, "bin-values", "probabilities")
    });
    let mut engine = Engine::new(config).unwrap_or_else(|e| panic!("{e}"));
    let picture = support::Picture::load(&support::sample_pictures()[0]).unwrap();
    for round in 0..2 {
        let faces = engine.process(&picture.view()).unwrap();
        assert_eq!(faces.len(), 1);
        let f = &faces[0];
        assert_eq!(f.method, gstfacepose::engine::PoseMethod::Rigid, "{f:?}");
        assert_eq!(f.regressed_pose, None);
        assert!(f.pose.is_finite() && f.fit_pose == Some(f.pose), "{f:?}");
        let warnings = engine.take_warnings();
        if round == 0 {
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert_mentions(
                &warnings[0],
                &["whenet.onnx", "unusable", "landmark-fit"],
                "unusable output",
            );
        } else {
            assert!(warnings.is_empty(), "warned again: {warnings:?}");
        }
    }
}
