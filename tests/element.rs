// SPDX-License-Identifier: MPL-2.0
//! The faceposeestimator element: properties, the metadata contract, overlay, JSON Lines and
//! start-up failures, with the real models.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::Once;

use gst::glib;
use gst::prelude::*;
use gst_video::VideoRegionOfInterestMeta;
use gst_video::prelude::*;
use gstfacepose::engine::Engine;

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfacepose::plugin_register_static().expect("registering the facepose plugin");
    });
}

/// The astronaut as one RGB buffer with its caps.
fn astronaut() -> (gst::Buffer, gst::Caps, support::Picture) {
    let picture =
        support::Picture::load(&support::sample_pictures()[0]).expect("run `make models`");
    let info = gst_video::VideoInfo::builder(
        gst_video::VideoFormat::Rgb,
        picture.width as u32,
        picture.height as u32,
    )
    .fps(gst::Fraction::new(30, 1))
    .build()
    .unwrap();
    let mut buffer = gst::Buffer::with_size(info.size()).unwrap();
    {
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::ZERO);
        let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(b, &info).unwrap();
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data_mut(0).unwrap();
        for y in 0..picture.height {
            let row = &picture.data[y * picture.width * 3..(y + 1) * picture.width * 3];
            data[y * stride..y * stride + row.len()].copy_from_slice(row);
        }
    }
    (buffer, info.to_caps().unwrap(), picture)
}

fn harness(properties: &[(&str, glib::Value)]) -> gst_check::Harness {
    let mut builder = gst::ElementFactory::make("faceposeestimator");
    for (k, v) in properties {
        builder = builder.property(k, v.clone());
    }
    let element = builder.build().unwrap();
    gst_check::Harness::with_element(&element, Some("sink"), Some("src"))
}

#[test]
fn properties_have_their_defaults_and_round_trip() {
    init();
    let e = gst::ElementFactory::make("faceposeestimator")
        .build()
        .unwrap();
    assert_eq!(e.property::<f32>("detection-threshold"), 0.5);
    assert_eq!(e.property::<f32>("nms-threshold"), 0.4);
    assert_eq!(e.property::<u32>("detector-input-size"), 640);
    assert_eq!(e.property::<u32>("max-faces"), 16);
    assert!(!e.property::<bool>("draw"));
    assert_eq!(e.property::<Option<String>>("detector-model"), None);
    assert_eq!(e.property::<Option<String>>("pose-model"), None);
    assert_eq!(
        e.property::<gstfacepose::PoseMethod>("pose-method"),
        gstfacepose::PoseMethod::Fused
    );
    assert_eq!(e.property::<f32>("camera-fov"), 60.0);
    e.set_property("detection-threshold", 0.7f32);
    // An empty pose model is kept (it turns the regressor off), unlike other empty paths.
    e.set_property("pose-model", "");
    assert_eq!(
        e.property::<Option<String>>("pose-model").as_deref(),
        Some("")
    );
    e.set_property("camera-fov", 0.0f32);
    assert_eq!(e.property::<f32>("camera-fov"), 0.0);
    e.set_property("detector-input-size", 320u32);
    e.set_property("draw", true);
    e.set_property("detector-model", "/x/y.onnx");
    e.set_property_from_str("execution-provider", "cuda");
    assert_eq!(e.property::<f32>("detection-threshold"), 0.7);
    assert_eq!(e.property::<u32>("detector-input-size"), 320);
    assert!(e.property::<bool>("draw"));
    assert_eq!(
        e.property::<Option<String>>("detector-model").as_deref(),
        Some("/x/y.onnx")
    );
    assert_eq!(
        e.property::<gstfacepose::ExecutionProvider>("execution-provider"),
        gstfacepose::ExecutionProvider::Cuda
    );
}

#[test]
fn metas_carry_the_face_and_its_pose_as_the_engine_sees_it() {
    init();
    let (buffer, caps, picture) = astronaut();
    let expected = Engine::new(support::config().unwrap())
        .unwrap()
        .process(&picture.view())
        .unwrap();
    assert_eq!(expected.len(), 1);
    let mut h = harness(&[]);
    h.set_src_caps(caps);
    let out = h.push_and_pull(buffer).unwrap();

    let rois: Vec<_> = out.iter_meta::<VideoRegionOfInterestMeta>().collect();
    assert_eq!(rois.len(), 1);
    let roi = &rois[0];
    assert_eq!(roi.roi_type(), "face");
    let (x, y, w, hgt) = roi.rect();
    let b = expected[0].bbox;
    assert!(
        (x as f32 - b.x0).abs() <= 1.0 && (y as f32 - b.y0).abs() <= 1.0,
        "{:?} vs {b:?}",
        roi.rect()
    );
    assert!((w as f32 - b.width()).abs() <= 2.0 && (hgt as f32 - b.height()).abs() <= 2.0);
    let det = roi.param("detection").expect("detection param");
    assert!(det.get::<f64>("confidence").unwrap() > 0.9);
    let x_min = det.get::<f64>("x_min").unwrap();
    assert!((x_min - b.x0 as f64 / picture.width as f64).abs() < 1e-3);
    let pose = roi.param("head-pose").expect("head-pose param");
    let yaw = pose.get::<f64>("yaw").unwrap();
    assert!(
        (yaw - expected[0].pose.yaw as f64).abs() < 0.5,
        "yaw {yaw} vs {:?}",
        expected[0].pose
    );
    assert!((pose.get::<f64>("roll").unwrap() - expected[0].pose.roll as f64).abs() < 0.5);
    assert_eq!(pose.get::<u32>("landmark-count").unwrap(), 468);
    assert_eq!(pose.get::<gst::Array>("keypoints").unwrap().len(), 10);

    let frame = gstfacepose::meta::frame_structure(&out).expect("FacePoseMeta on the buffer");
    assert_eq!(frame.get::<u32>("face-count").unwrap(), 1);
    assert_eq!(
        frame.get::<String>("detector").unwrap(),
        "retinaface_mbv2.onnx"
    );
    assert_eq!(frame.get::<String>("pose-model").unwrap(), "whenet.onnx");
    let faces = frame.get::<gst::Array>("faces").unwrap();
    let face = faces.as_slice()[0].get::<gst::Structure>().unwrap();
    assert_eq!(face.get::<gst::Array>("landmarks").unwrap().len(), 468 * 3);
    assert!((face.get::<f64>("pitch").unwrap() - expected[0].pose.pitch as f64).abs() < 0.5);
    // Both estimates ride along with the method that produced the angles.
    assert_eq!(face.get::<String>("method").unwrap(), "fused");
    let fit = face.get::<gst::Structure>("fit").unwrap();
    let reg = face.get::<gst::Structure>("regression").unwrap();
    assert!(fit.get::<bool>("valid").unwrap() && reg.get::<bool>("valid").unwrap());
    let e = &expected[0];
    let (f, r) = (e.fit_pose.unwrap(), e.regressed_pose.unwrap());
    assert!((fit.get::<f64>("yaw").unwrap() - f.yaw as f64).abs() < 0.5);
    assert!((reg.get::<f64>("pitch").unwrap() - r.pitch as f64).abs() < 0.5);
    let w = face.get::<f64>("regression-weight").unwrap();
    assert!((w - e.regressor_weight as f64).abs() < 1e-3);
}

#[test]
fn an_empty_pose_model_gives_landmark_fit_angles_and_says_so() {
    init();
    let (buffer, caps, _) = astronaut();
    let mut h = harness(&[("pose-model", "".to_value())]);
    h.set_src_caps(caps);
    let out = h.push_and_pull(buffer).unwrap();
    let frame = gstfacepose::meta::frame_structure(&out).expect("FacePoseMeta on the buffer");
    assert_eq!(frame.get::<String>("pose-model").unwrap(), "");
    let faces = frame.get::<gst::Array>("faces").unwrap();
    let face = faces.as_slice()[0].get::<gst::Structure>().unwrap();
    assert_eq!(face.get::<String>("method").unwrap(), "rigid");
    let reg = face.get::<gst::Structure>("regression").unwrap();
    assert!(!reg.get::<bool>("valid").unwrap());
}

#[test]
fn camera_fov_turns_an_off_centre_face_into_the_camera_frame() {
    init();
    // The astronaut's face is above the picture's centre: seen with a wide lens, a face there
    // that looks along its line of sight looks down at the camera's axis, so the camera-frame
    // pitch is lower than the line-of-sight pitch by about the ray's elevation.
    let pitch = |fov: f32| {
        let (buffer, caps, _) = astronaut();
        let mut h = harness(&[("camera-fov", fov.to_value())]);
        h.set_src_caps(caps);
        let out = h.push_and_pull(buffer).unwrap();
        let roi = out
            .iter_meta::<VideoRegionOfInterestMeta>()
            .next()
            .expect("a face");
        let (_, y, _, hgt) = roi.rect();
        let p = roi.param("head-pose").unwrap().get::<f64>("pitch").unwrap();
        (p, y as f64 + hgt as f64 / 2.0)
    };
    let (along_ray, centre_y) = pitch(0.0);
    let (camera, _) = pitch(60.0);
    let focal = 256.0 / 30f64.to_radians().tan();
    let elevation = ((256.0 - centre_y) / focal).atan().to_degrees();
    assert!(elevation > 10.0, "{elevation}");
    assert!(
        (along_ray - camera - elevation).abs() < 2.0,
        "pitch {along_ray:.1} along the ray, {camera:.1} in the camera frame, ray elevation {elevation:.1}"
    );
}

#[test]
fn draw_false_leaves_pixels_untouched_and_draw_true_changes_them() {
    init();
    let (buffer, caps, _) = astronaut();
    let original = buffer.map_readable().unwrap().to_vec();
    let mut plain = harness(&[]);
    plain.set_src_caps(caps.clone());
    let out = plain.push_and_pull(buffer.copy()).unwrap();
    assert_eq!(out.map_readable().unwrap().as_slice(), original.as_slice());
    let mut drawn = harness(&[("draw", true.to_value())]);
    drawn.set_src_caps(caps);
    let out = drawn.push_and_pull(buffer).unwrap();
    let changed = out
        .map_readable()
        .unwrap()
        .iter()
        .zip(&original)
        .filter(|(a, b)| a != b)
        .count();
    assert!(changed > 1000, "only {changed} bytes changed");
}

/// The text of the first error among `messages`.
fn bus_error(messages: &[gst::Message]) -> String {
    messages
        .iter()
        .find_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .expect("an error on the bus")
}

fn run_pipeline(description: &str) -> Vec<gst::Message> {
    support::run_to_end(description)
}

#[test]
fn test_pattern_gives_frames_without_faces_messages_and_json_lines() {
    init();
    let dir = std::env::temp_dir().join(format!("facepose-json-lines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("faces.jsonl");
    let messages = run_pipeline(&format!(
        "videotestsrc num-buffers=4 ! video/x-raw,format=I420,width=320,height=240 ! \
         faceposeestimator post-messages=true json-location={} ! fakesink",
        json.display()
    ));
    assert!(
        messages
            .iter()
            .any(|m| matches!(m.view(), gst::MessageView::Eos(_))),
        "{messages:?}"
    );
    let facepose: Vec<_> = messages
        .iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Element(e) => e
                .structure()
                .filter(|s| s.name() == "facepose")
                .map(|s| s.to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(facepose.len(), 4);
    assert_eq!(facepose[0].get::<gst::Array>("faces").unwrap().len(), 0);
    assert!(
        facepose[1]
            .get::<Option<gst::ClockTime>>("running-time")
            .unwrap()
            .is_some()
    );
    let text = std::fs::read_to_string(&json).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with(
            "{\"pts\":0,\"width\":320,\"height\":240,\"faces\":[],\"attention_events\":[]}"
        ),
        "{}",
        lines[0]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn json_lines_that_cannot_be_written_are_an_error_naming_the_file() {
    init();
    // A full disk: the lines are buffered, and the error comes when they are written out, at
    // the latest at EOS, before EOS reaches the sink.
    let messages = run_pipeline(
        "videotestsrc num-buffers=4 ! video/x-raw,format=I420,width=320,height=240 ! \
         faceposeestimator json-location=/dev/full ! fakesink",
    );
    assert!(
        !messages
            .iter()
            .any(|m| matches!(m.view(), gst::MessageView::Eos(_))),
        "the stream must not end as if the lines were written: {messages:?}"
    );
    let error = bus_error(&messages);
    assert!(
        error.contains("/dev/full") && error.contains("No space left on device"),
        "{error}"
    );
    // A folder that does not exist: the element does not start.
    let error = bus_error(&run_pipeline(
        "videotestsrc num-buffers=2 ! faceposeestimator json-location=/nonexistent/facepose/out.jsonl ! fakesink",
    ));
    assert!(error.contains("/nonexistent/facepose/out.jsonl"), "{error}");
}

/// `gst-launch-1.0` with the built plugin, standard output closed in the child (`… >&-`);
/// its exit status and standard error.
fn launch_with_stdout_closed(args: &[&str]) -> (Option<i32>, String) {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("gst-launch-1.0");
    cmd.args(args)
        .env("GST_PLUGIN_PATH", support::test_plugin_dir())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: only close(2) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(1);
            Ok(())
        });
    }
    let out = cmd.output().expect("running gst-launch-1.0");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn json_lines_to_a_closed_standard_output_are_an_error() {
    // With descriptor 1 closed, the first descriptors the process opens take its place (a socket
    // of GStreamer's own): lines must not go there.
    let (code, stderr) = launch_with_stdout_closed(&[
        "-q",
        "videotestsrc",
        "num-buffers=3",
        "!",
        "faceposeestimator",
        "json-location=-",
        "!",
        "fakesink",
    ]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("Cannot write the JSON Lines to standard output: it is closed"),
        "{stderr}"
    );
}

#[test]
fn a_missing_model_fails_the_state_change_with_the_path_on_the_bus() {
    init();
    let missing = Path::new("/nonexistent/facepose/detector.onnx");
    let messages = run_pipeline(&format!(
        "videotestsrc num-buffers=2 ! faceposeestimator detector-model={} ! fakesink",
        missing.display()
    ));
    let error = bus_error(&messages);
    assert!(
        error.contains("/nonexistent/facepose/detector.onnx"),
        "{error}"
    );
}

/// Runs the astronaut through `faceposeestimator ! <chain> ! appsink` and returns the first buffer.
fn through(chain: &str) -> gst::Buffer {
    let picture = &support::sample_pictures()[0];
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! pngdec ! imagefreeze num-buffers=2 ! videoconvert ! \
         faceposeestimator ! {chain} ! appsink name=sink sync=false",
        picture.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(60))
        .expect("a buffer through the chain");
    pipeline.set_state(gst::State::Null).unwrap();
    sample.buffer_owned().unwrap()
}

#[test]
fn metas_survive_queue_and_videoconvert_whole() {
    init();
    let buffer = through("queue ! videoconvert ! video/x-raw,format=I420 ! queue");
    let rois: Vec<_> = buffer.iter_meta::<VideoRegionOfInterestMeta>().collect();
    assert_eq!(rois.len(), 1, "the ROI meta did not survive");
    assert!(rois[0].param("detection").is_some() && rois[0].param("head-pose").is_some());
    let frame = gstfacepose::meta::frame_structure(&buffer).expect("FacePoseMeta survived");
    assert_eq!(frame.get::<u32>("face-count").unwrap(), 1);
}

#[test]
fn videoscale_rescales_the_roi_box_and_keeps_the_frame_meta() {
    init();
    let buffer = through("videoscale ! video/x-raw,width=256,height=256");
    let rois: Vec<_> = buffer.iter_meta::<VideoRegionOfInterestMeta>().collect();
    assert_eq!(rois.len(), 1, "the ROI meta did not survive");
    // The 512×512 picture was scaled to 256×256: the box (179, 59)-(270, 179) halves.
    let (x, y, w, h) = rois[0].rect();
    assert!(
        (85..=95).contains(&x) && (25..=35).contains(&y),
        "{:?}",
        rois[0].rect()
    );
    assert!(
        (40..=52).contains(&w) && (54..=66).contains(&h),
        "{:?}",
        rois[0].rect()
    );
    // GStreamer 1.22's scale transform drops ROI parameters; the frame meta's transform puts them
    // back.
    let pose = rois[0].param("head-pose").expect("head-pose restored");
    assert!(pose.get::<f64>("yaw").unwrap().abs() < 15.0);
    let frame = gstfacepose::meta::frame_structure(&buffer).expect("FacePoseMeta survived");
    let faces = frame.get::<gst::Array>("faces").unwrap();
    let face = faces.as_slice()[0].get::<gst::Structure>().unwrap();
    assert!((face.get::<f64>("x_min").unwrap() - 179.0 / 512.0).abs() < 0.01);
}

#[test]
fn a_broken_model_fails_the_state_change_with_the_path_on_the_bus() {
    init();
    let dir = std::env::temp_dir().join(format!("facepose-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("broken.onnx");
    std::fs::write(&model, b"this is not an onnx model").unwrap();
    let descriptor = gstfacepose::engine::default_model_dir().join("retinaface_mbv2.descriptor");
    std::fs::copy(descriptor, dir.join("broken.descriptor")).unwrap();
    let messages = run_pipeline(&format!(
        "videotestsrc num-buffers=2 ! faceposeestimator detector-model={} ! fakesink",
        model.display()
    ));
    std::fs::remove_dir_all(&dir).ok();
    let error = bus_error(&messages);
    assert!(
        error.contains("broken.onnx") && error.contains("not an ONNX model"),
        "{error}"
    );
}

#[test]
fn cuda_without_cuda_falls_back_to_the_cpu_with_a_warning_or_fails_without_fallback() {
    init();
    let pipeline = gst::parse::launch(
        "videotestsrc num-buffers=1 ! faceposeestimator name=f execution-provider=cuda ! fakesink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let element = pipeline.by_name("f").unwrap();
    assert_eq!(
        element.property::<Option<String>>("active-execution-provider"),
        None
    );
    pipeline.set_state(gst::State::Paused).unwrap();
    let (result, _, _) = pipeline.state(gst::ClockTime::from_seconds(60));
    result.unwrap();
    // This machine's ONNX Runtime has no CUDA provider: the CPU runs, and the bus says why.
    let active = element.property::<Option<String>>("active-execution-provider");
    let warning = pipeline
        .bus()
        .unwrap()
        .pop_filtered(&[gst::MessageType::Warning])
        .map(|m| match m.view() {
            gst::MessageView::Warning(w) => w.error().to_string(),
            _ => unreachable!(),
        });
    pipeline.set_state(gst::State::Null).unwrap();
    if active.as_deref() == Some("cuda") {
        eprintln!("this machine runs CUDA; the fallback is not exercised");
        return;
    }
    assert_eq!(active.as_deref(), Some("cpu"));
    let warning = warning.expect("a warning about the fallback");
    assert!(
        warning.contains("cuda") && warning.contains("CPU"),
        "{warning}"
    );

    let messages = run_pipeline(
        "videotestsrc num-buffers=1 ! faceposeestimator execution-provider=cuda fallback=false ! fakesink",
    );
    let error = bus_error(&messages);
    assert!(
        error.contains("cuda") && error.contains("unavailable"),
        "{error}"
    );
}

#[test]
fn unusable_regressor_outputs_post_one_warning_and_the_stream_goes_on() {
    init();
    // WHENet's logits read as probabilities: every regressor output is unusable.
    let models = support::config()
        .unwrap()
        .detector_model
        .parent()
        .unwrap()
        .to_owned();
    let text = std::fs::read_to_string(models.join("whenet.descriptor")).unwrap();
    let edited = text.replace("bin-values = logits", "bin-values = probabilities");
    assert_ne!(edited, text);
    let dir = std::env::temp_dir().join(format!("facepose-unusable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let descriptor = dir.join("whenet.descriptor");
    std::fs::write(&descriptor, edited).unwrap();
    let picture = support::sample_pictures()[0].clone();
    let messages = run_pipeline(&format!(
        "filesrc location={} ! pngdec ! imagefreeze num-buffers=3 ! videoconvert ! \
         faceposeestimator detection-interval=1 pose-descriptor={} ! fakesink",
        picture.display(),
        descriptor.display()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let warnings: Vec<String> = messages
        .iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Warning(w) => Some(w.error().to_string()),
            _ => None,
        })
        .filter(|w| w.contains("unusable"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("whenet.onnx"), "{}", warnings[0]);
    assert!(
        messages
            .iter()
            .any(|m| matches!(m.view(), gst::MessageView::Eos(_))),
        "the stream did not reach EOS"
    );
}
