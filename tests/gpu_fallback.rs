// SPDX-License-Identifier: MPL-2.0
//! GPU mode on a machine without an NVIDIA device: with the GPU build of ONNX Runtime set up
//! (`make setup-gpu`), the element finds and loads it by itself (no environment variables), and
//! `execution-provider=auto` runs on the CPU and says so once (a bus info message with the
//! cause), `cuda` runs on the CPU with one warning naming the cause ONNX Runtime or the loader
//! gave, and `cuda` with `fallback=false` fails to start with that cause. One test in its own
//! binary: a process holds one ONNX Runtime library. Needs the set-up: under CI=true its absence
//! fails the test, elsewhere it is skipped with the reason.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;

use gst::prelude::*;
use gstfacepose::engine::locate::SOURCE_GPU_LIBRARY_DIR;
use gstfacepose::engine::runtime::BUNDLED_LIBRARY_NAME;

/// The messages of a one-frame pipeline through the element with `properties`, the element's
/// active provider once it started (`None` if it did not), and whether it reached EOS.
fn run(properties: &str) -> (Vec<gst::Message>, Option<String>) {
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=1 ! faceposeestimator name=f {properties} ! fakesink"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let element = pipeline.by_name("f").unwrap();
    let _ = pipeline.set_state(gst::State::Playing);
    let bus = pipeline.bus().unwrap();
    let mut messages = Vec::new();
    let mut active = None;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        if active.is_none() {
            active = element.property::<Option<String>>("active-execution-provider");
        }
        let end = matches!(
            msg.view(),
            gst::MessageView::Eos(..) | gst::MessageView::Error(..)
        );
        messages.push(msg);
        if end {
            break;
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    (messages, active)
}

/// The texts of the element's messages of one kind.
fn texts(messages: &[gst::Message], kind: gst::MessageType) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.type_() == kind)
        .filter_map(|m| match m.view() {
            gst::MessageView::Info(i) => Some(i.error().to_string()),
            gst::MessageView::Warning(w) => Some(w.error().to_string()),
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_gpu_build_without_a_device_runs_on_the_cpu_and_says_why() {
    let library = Path::new(SOURCE_GPU_LIBRARY_DIR).join(BUNDLED_LIBRARY_NAME);
    if !library.is_file() {
        let why = format!(
            "{} is missing: run `make setup-gpu` (the GPU build of ONNX Runtime)",
            library.display()
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why}");
        }
        eprintln!("SKIPPED: {why}");
        return;
    }
    // Nothing points at the set-up (cargo sets LD_LIBRARY_PATH to its own folders).
    let pointing = |var: &str| {
        std::env::var(var).is_ok_and(|v| v.contains("onnxruntime-gpu") || v.contains("nvidia"))
    };
    assert!(
        std::env::var_os("ORT_DYLIB_PATH").is_none() && !pointing("LD_LIBRARY_PATH"),
        "this test checks that nothing needs to be set: run it without ORT_DYLIB_PATH, and \
         without LD_LIBRARY_PATH naming the GPU set-up"
    );
    gst::init().unwrap();
    gstfacepose::plugin_register_static().ok();

    // auto: the CPU, and one message per accelerator provider found in the build, with its cause.
    let (messages, active) = run("execution-provider=auto");
    if matches!(active.as_deref(), Some("cuda" | "tensorrt")) {
        eprintln!(
            "this machine runs {}: the fallback is not exercised (scripts/device-check.sh covers the device)",
            active.unwrap()
        );
        return;
    }
    assert_eq!(active.as_deref(), Some("cpu"), "{messages:?}");
    // The GPU build was the one loaded, found by the element itself.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(
        maps.contains("onnxruntime-gpu/lib/libonnxruntime.so"),
        "the GPU build of ONNX Runtime was not the one loaded"
    );
    let infos = texts(&messages, gst::MessageType::Info);
    // TensorRT and CUDA fail for the same reason here (no driver): one notice for both.
    assert_eq!(infos.len(), 1, "one notice: {infos:?}");
    let notice = &infos[0];
    assert!(
        notice.contains("auto")
            && notice.contains("tensorrt and cuda")
            && notice.contains("CPU")
            && notice.contains("libcuda.so.1"),
        "the notice names the mode, the providers, the fallback and the cause: {notice}"
    );
    let warnings = texts(&messages, gst::MessageType::Warning);
    assert!(
        warnings.iter().all(|w| !w.contains("execution provider")),
        "auto falls back without warnings: {warnings:?}"
    );
    assert!(texts(&messages, gst::MessageType::Error).is_empty());

    // cuda: the CPU, with one warning that names the cause (not "no CUDA provider": it is there).
    let (messages, active) = run("execution-provider=cuda");
    assert_eq!(active.as_deref(), Some("cpu"));
    let warnings = texts(&messages, gst::MessageType::Warning);
    assert_eq!(
        warnings.len(),
        1,
        "one warning for the three models: {warnings:?}"
    );
    let w = &warnings[0];
    assert!(
        w.contains("cuda") && w.contains("CPU") && w.contains("no NVIDIA driver"),
        "{w}"
    );
    assert!(!w.contains("has no CUDA provider"), "{w}");
    assert!(texts(&messages, gst::MessageType::Error).is_empty());

    // cuda without fallback: the start fails with the same cause.
    let (messages, active) = run("execution-provider=cuda fallback=false");
    assert_eq!(active, None, "the element must not start");
    let errors = texts(&messages, gst::MessageType::Error);
    assert_eq!(errors.len(), 1, "{messages:?}");
    assert!(
        errors[0].contains("cuda") && errors[0].contains("libcuda.so.1"),
        "{}",
        errors[0]
    );
}
