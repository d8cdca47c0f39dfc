// SPDX-License-Identifier: MPL-2.0
//! An installed layout in a temporary prefix: the models are taken from `<prefix>/share/
//! gst-plugin-facepose` before the source tree's, and a file missing there fails the engine and the
//! element's start with an error naming the file and the package to reinstall.
//!
//! One test in its own binary: the installation is process-wide state (set by `plugin_init` for a
//! plugin loaded from a file; here by hand, as the plugin is registered statically).

use std::path::{Path, PathBuf};

use gst::prelude::*;
use gstfacepose::engine::locate::{self, Installation, PACKAGE_NAME};
use gstfacepose::engine::{self, Engine, EngineConfig};

const MODEL_FILES: [&str; 9] = [
    "retinaface_mbv2.onnx",
    "retinaface_mbv2.descriptor",
    "face_landmark.onnx",
    "face_landmark.descriptor",
    "whenet.onnx",
    "whenet.descriptor",
    "blazeface_full.onnx",
    "blazeface_full.descriptor",
    "canonical_face.txt",
];

/// A prefix whose data folder links to the source tree's models (all but `leave_out`).
fn installed_prefix(name: &str, leave_out: Option<&str>) -> (PathBuf, Installation) {
    let root =
        std::env::temp_dir().join(format!("facepose-installed-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let installation = Installation::under_prefix(&root.join("usr"));
    std::fs::create_dir_all(&installation.data_dir).unwrap();
    std::fs::create_dir_all(&installation.library_dir).unwrap();
    let source = Path::new(engine::BUILD_MODEL_DIR);
    for file in MODEL_FILES {
        if Some(file) != leave_out {
            let from = source.join(file);
            assert!(
                from.exists(),
                "{} is missing: run `make models`",
                from.display()
            );
            std::os::unix::fs::symlink(&from, installation.data_dir.join(file)).unwrap();
        }
    }
    (root, installation)
}

fn start_error(description: &str) -> String {
    let pipeline = gst::parse::launch(description).unwrap();
    let bus = pipeline.bus().unwrap();
    assert!(pipeline.set_state(gst::State::Paused).is_err());
    let error = bus
        .iter_timed(gst::ClockTime::from_seconds(30))
        .find_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .expect("an error on the bus");
    pipeline.set_state(gst::State::Null).unwrap();
    error
}

#[test]
fn installed_models_come_first_and_a_missing_one_names_the_package() {
    if std::env::var_os(engine::MODEL_DIR_ENV).is_some_and(|v| !v.is_empty()) {
        eprintln!(
            "skipped: {} is set and overrides the installation",
            engine::MODEL_DIR_ENV
        );
        return;
    }
    gst::init().unwrap();
    gstfacepose::plugin_register_static().unwrap();

    // A complete installation: its folder is the default, and the engine starts from it.
    let (root, installation) = installed_prefix("complete", None);
    locate::set_installation(Some(installation.clone()));
    assert_eq!(engine::default_model_dir(), installation.data_dir);
    let config = EngineConfig::default();
    assert!(config.detector_model.starts_with(&installation.data_dir));
    Engine::new(config).expect("the engine starts from the installed models");
    std::fs::remove_dir_all(&root).unwrap();

    // A damaged one: the engine's error and the element's start error name the file and the
    // package; the source tree's copy is not used behind the user's back.
    let (root, installation) = installed_prefix("damaged", Some("whenet.onnx"));
    locate::set_installation(Some(installation.clone()));
    let missing = installation.data_dir.join("whenet.onnx");
    let error = Engine::new(EngineConfig::default())
        .err()
        .expect("no whenet.onnx")
        .to_string();
    assert!(error.contains(&missing.display().to_string()), "{error}");
    assert!(error.contains(PACKAGE_NAME), "{error}");
    let error = start_error("videotestsrc num-buffers=1 ! faceposeestimator ! fakesink");
    assert!(error.contains(&missing.display().to_string()), "{error}");
    assert!(error.contains(PACKAGE_NAME), "{error}");

    // A missing descriptor and reference face say the same.
    std::os::unix::fs::symlink(
        Path::new(engine::BUILD_MODEL_DIR).join("whenet.onnx"),
        &missing,
    )
    .unwrap();
    for file in ["face_landmark.descriptor", "canonical_face.txt"] {
        let path = installation.data_dir.join(file);
        std::fs::remove_file(&path).unwrap();
        let error = start_error("videotestsrc num-buffers=1 ! faceposeestimator ! fakesink");
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains(PACKAGE_NAME), "{error}");
        std::os::unix::fs::symlink(Path::new(engine::BUILD_MODEL_DIR).join(file), &path).unwrap();
    }

    // The library search starts in the installation's private folder.
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        let candidates = engine::runtime::library_candidates(None);
        assert_eq!(
            candidates[0].0,
            installation
                .library_dir
                .join(engine::runtime::BUNDLED_LIBRARY_NAME)
        );
    }

    // Outside an installation, a missing model keeps the source tree's advice.
    locate::set_installation(None);
    let config = EngineConfig {
        detector_model: root.join("elsewhere/detector.onnx"),
        ..EngineConfig::default()
    };
    let error = Engine::new(config)
        .err()
        .expect("no such detector")
        .to_string();
    assert!(error.contains("make models"), "{error}");
    assert!(!error.contains(PACKAGE_NAME), "{error}");
    std::fs::remove_dir_all(&root).unwrap();
}
