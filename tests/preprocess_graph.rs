// SPDX-License-Identifier: MPL-2.0
//! Graph pre-processing (the models' frame graphs, `preprocess=graph`) against the host warp, on
//! the CPU provider: the landmark model, the detector and the head-pose regressor give the same
//! results from the same crops (landmarks and boxes within 0.5 px, angles within 0.5°) on the
//! sample pictures and a 640×480 frame of a moving face, as RGB, BGRx, I420 and NV12 frames, for
//! upright, rotated, mirrored and partly outside crops; the engine turns a frame into tensors once
//! for all its model runs; the element plays with `preprocess=graph` and attaches the same faces;
//! a missing frame graph is a start error naming the file and `make models`.

mod support;

use std::path::PathBuf;

use gst_video::prelude::*;

use gstfacepose::engine::geometry::{BBox, Point, RotatedRect};
use gstfacepose::engine::headpose::Regressor;
use gstfacepose::engine::{
    DetectConfig, Detector, Engine, ExecutionProvider, ImageView, Landmarker, PixelFormat, Plane,
    Preprocess, RuntimeOptions,
};
use support::{Picture, angle_diff};

const PX: f32 = 0.5;
const DEGREES: f32 = 0.5;

fn options(preprocess: Preprocess) -> RuntimeOptions {
    RuntimeOptions {
        provider: ExecutionProvider::Cpu,
        preprocess,
        ..RuntimeOptions::default()
    }
}

fn model_dir() -> PathBuf {
    gstfacepose::engine::default_model_dir()
}

/// The sample pictures and a 640×480 frame with the astronaut moved off-centre.
fn frames() -> Vec<(String, Picture)> {
    let mut out: Vec<(String, Picture)> = support::sample_pictures()
        .iter()
        .map(|p| {
            let pic = Picture::load(p).unwrap_or_else(|e| panic!("{e}; run `make models`"));
            (p.file_name().unwrap().to_string_lossy().into_owned(), pic)
        })
        .collect();
    let astronaut = &out[0].1;
    out.push((
        "moving face 640×480".into(),
        placed(astronaut, 300, 640, 480, 250, 150),
    ));
    out
}

/// `picture` scaled to `side` px wide on a grey `width` × `height` canvas at (x, y).
fn placed(
    picture: &Picture,
    side: u32,
    width: usize,
    height: usize,
    x: usize,
    y: usize,
) -> Picture {
    let src = image::RgbImage::from_raw(
        picture.width as u32,
        picture.height as u32,
        picture.data.clone(),
    )
    .unwrap();
    let h = (side as f32 * picture.height as f32 / picture.width as f32).round() as u32;
    let scaled = image::imageops::resize(&src, side, h, image::imageops::FilterType::Triangle);
    let mut canvas = Picture::uniform(width, height, [128, 128, 128]);
    for (sx, sy, p) in scaled.enumerate_pixels() {
        let (cx, cy) = (x + sx as usize, y + sy as usize);
        if cx < width && cy < height {
            let i = (cy * width + cx) * 3;
            canvas.data[i..i + 3].copy_from_slice(&p.0);
        }
    }
    canvas
}

/// A frame in one pixel format, with padded rows.
struct Frame {
    format: PixelFormat,
    width: usize,
    height: usize,
    planes: Vec<(Vec<u8>, usize)>,
}

impl Frame {
    fn view(&self) -> ImageView<'_> {
        let p = |i: usize| Plane {
            data: &self.planes[i].0,
            stride: self.planes[i].1,
        };
        match self.format {
            PixelFormat::I420 => ImageView::i420(self.width, self.height, p(0), p(1), p(2)),
            PixelFormat::Nv12 => ImageView::nv12(self.width, self.height, p(0), p(1)),
            f => ImageView::packed(f, self.width, self.height, p(0).data, p(0).stride),
        }
        .expect("a valid frame")
    }
}

fn ycbcr(px: &[u8]) -> [f32; 3] {
    let [r, g, b] = [px[0] as f32, px[1] as f32, px[2] as f32];
    [
        16.0 + 0.257 * r + 0.504 * g + 0.098 * b,
        128.0 - 0.148 * r - 0.291 * g + 0.439 * b,
        128.0 + 0.439 * r - 0.368 * g - 0.071 * b,
    ]
}

fn byte(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Every test picture in every format of [`FORMATS`], with its name.
fn every_frame() -> Vec<(String, PixelFormat, Frame)> {
    let mut out = Vec::new();
    for (name, picture) in frames() {
        for format in FORMATS {
            out.push((name.clone(), format, convert(&picture, format)));
        }
    }
    out
}

/// `p` as `format` (RGB, BGRx, I420 or NV12), rows padded by a few bytes.
fn convert(p: &Picture, format: PixelFormat) -> Frame {
    let (w, h) = (p.width, p.height);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let px = |x: usize, y: usize| &p.data[(y * w + x) * 3..(y * w + x) * 3 + 3];
    let planes = match format {
        PixelFormat::Rgb => {
            let stride = w * 3 + 5;
            let mut d = vec![0u8; stride * h];
            for y in 0..h {
                d[y * stride..y * stride + w * 3]
                    .copy_from_slice(&p.data[y * w * 3..(y + 1) * w * 3]);
            }
            vec![(d, stride)]
        }
        PixelFormat::Bgrx => {
            let stride = w * 4 + 8;
            let mut d = vec![0u8; stride * h];
            for y in 0..h {
                for x in 0..w {
                    let s = px(x, y);
                    d[y * stride + x * 4..y * stride + x * 4 + 4]
                        .copy_from_slice(&[s[2], s[1], s[0], 255]);
                }
            }
            vec![(d, stride)]
        }
        PixelFormat::I420 | PixelFormat::Nv12 => {
            let ys = w + 3;
            let mut luma = vec![0u8; ys * h];
            for y in 0..h {
                for x in 0..w {
                    luma[y * ys + x] = byte(ycbcr(px(x, y))[0]);
                }
            }
            // Chroma: the mean over each 2×2 block.
            let block = |cx: usize, cy: usize| {
                let mut acc = [0.0f32; 2];
                let mut n = 0.0;
                for y in cy * 2..(cy * 2 + 2).min(h) {
                    for x in cx * 2..(cx * 2 + 2).min(w) {
                        let c = ycbcr(px(x, y));
                        acc[0] += c[1];
                        acc[1] += c[2];
                        n += 1.0;
                    }
                }
                [byte(acc[0] / n), byte(acc[1] / n)]
            };
            if format == PixelFormat::Nv12 {
                let s = cw * 2 + 6;
                let mut uv = vec![0u8; s * ch];
                for cy in 0..ch {
                    for cx in 0..cw {
                        uv[cy * s + cx * 2..cy * s + cx * 2 + 2].copy_from_slice(&block(cx, cy));
                    }
                }
                vec![(luma, ys), (uv, s)]
            } else {
                let s = cw + 1;
                let (mut u, mut v) = (vec![0u8; s * ch], vec![0u8; s * ch]);
                for cy in 0..ch {
                    for cx in 0..cw {
                        let [cb, cr] = block(cx, cy);
                        u[cy * s + cx] = cb;
                        v[cy * s + cx] = cr;
                    }
                }
                vec![(luma, ys), (u, s), (v, s)]
            }
        }
        other => panic!("{other:?} is not converted here"),
    };
    Frame {
        format,
        width: w,
        height: h,
        planes,
    }
}

const FORMATS: [PixelFormat; 4] = [
    PixelFormat::Rgb,
    PixelFormat::Bgrx,
    PixelFormat::I420,
    PixelFormat::Nv12,
];

fn detector(preprocess: Preprocess) -> Detector {
    let dir = model_dir();
    Detector::load(
        &dir.join("retinaface_mbv2.onnx"),
        None,
        &options(preprocess),
    )
    .unwrap_or_else(|e| panic!("{e}; run `make models`"))
}

fn landmarker(preprocess: Preprocess) -> Landmarker {
    let dir = model_dir();
    Landmarker::load(&dir.join("face_landmark.onnx"), None, &options(preprocess))
        .unwrap_or_else(|e| panic!("{e}; run `make models`"))
}

fn regressor(preprocess: Preprocess) -> Regressor {
    let dir = model_dir();
    Regressor::load(&dir.join("whenet.onnx"), None, &options(preprocess))
        .unwrap_or_else(|e| panic!("{e}; run `make models`"))
}

fn box_diff(a: &BBox, b: &BBox) -> f32 {
    [a.x0 - b.x0, a.y0 - b.y0, a.x1 - b.x1, a.y1 - b.y1]
        .iter()
        .fold(0.0f32, |m, d| m.max(d.abs()))
}

#[test]
fn the_detector_finds_the_same_boxes_in_graph_mode() {
    let (mut host, mut graph) = (detector(Preprocess::Host), detector(Preprocess::Graph));
    assert!(graph.model().uses_frame_graph() && !host.model().uses_frame_graph());
    let config = DetectConfig::default();
    for (name, format, frame) in every_frame() {
        let what = format!("{name} as {format:?}");
        let a = host.detect(&frame.view(), &config).unwrap();
        let b = graph.detect(&frame.view(), &config).unwrap();
        assert!(!a.is_empty(), "{what}: no face on the host");
        assert_eq!(
            a.len(),
            b.len(),
            "{what}: {} faces on the host, {} in the graph",
            a.len(),
            b.len()
        );
        for (x, y) in a.iter().zip(&b) {
            let d = box_diff(&x.bbox, &y.bbox);
            let k = x
                .keypoints
                .iter()
                .zip(&y.keypoints)
                .fold(0.0f32, |m, (p, q)| {
                    m.max((p.x - q.x).abs()).max((p.y - q.y).abs())
                });
            println!(
                "{what}: box {d:.4} px, key points {k:.4} px, score {:.5} / {:.5}",
                x.score, y.score
            );
            assert!(
                d <= PX && k <= PX,
                "{what}: box {d} px, key points {k} px apart"
            );
        }
    }
}

/// The crops the landmark test uses on a face: the detection's, turned by 30°, and shifted so
/// that a third of it lies left of the frame.
fn landmark_crops(l: &Landmarker, frame: &ImageView, d: &mut Detector) -> Vec<RotatedRect> {
    let dets = d.detect(frame, &DetectConfig::default()).unwrap();
    let first = l.crop_from_detection(&dets[0]);
    let turned = RotatedRect {
        angle: first.angle + 30f32.to_radians(),
        ..first
    };
    let outside = RotatedRect {
        centre: Point::new(first.side / 6.0, first.centre.y),
        ..first
    };
    vec![first, turned, outside]
}

#[test]
fn the_landmarks_match_within_half_a_pixel_in_graph_mode() {
    let (mut host, mut graph) = (landmarker(Preprocess::Host), landmarker(Preprocess::Graph));
    assert!(graph.model().uses_frame_graph() && !host.model().uses_frame_graph());
    let mut d = detector(Preprocess::Host);
    for (name, format, frame) in every_frame() {
        let view = frame.view();
        let crops = landmark_crops(&host, &view, &mut d);
        // The second crop (turned) also runs mirrored.
        let mirror = [false, true, false];
        let (a, am) = host.run_with_mirror_where(&view, &crops, &mirror).unwrap();
        let (b, bm) = graph.run_with_mirror_where(&view, &crops, &mirror).unwrap();
        let pairs = a.iter().zip(&b).chain(
            am.iter()
                .zip(&bm)
                .filter_map(|(x, y)| Some((x.as_ref()?, y.as_ref()?))),
        );
        for (i, (x, y)) in pairs.enumerate() {
            let what = format!(
                "{name} as {format:?}, crop {i} ({})",
                ["upright", "turned", "partly outside", "turned, mirrored"][i]
            );
            let worst = x.points.iter().zip(&y.points).fold(0.0f32, |m, (p, q)| {
                m.max((p[0] - q[0]).abs()).max((p[1] - q[1]).abs())
            });
            println!(
                "{what}: landmarks within {worst:.4} px, presence {:.4} / {:.4}",
                x.presence, y.presence
            );
            assert!(worst <= PX, "{what}: landmarks {worst} px apart");
            assert!(
                (x.presence - y.presence).abs() < 0.01,
                "{what}: presence {} / {}",
                x.presence,
                y.presence
            );
        }
    }
}

#[test]
fn the_regressor_gives_the_same_angles_in_graph_mode() {
    let (mut host, mut graph) = (regressor(Preprocess::Host), regressor(Preprocess::Graph));
    assert!(graph.model().uses_frame_graph() && !host.model().uses_frame_graph());
    let mut d = detector(Preprocess::Host);
    for (name, format, frame) in every_frame() {
        let view = frame.view();
        let b = d.detect(&view, &DetectConfig::default()).unwrap()[0].bbox;
        // The face's box, and the same box moved past the top edge.
        let up = BBox::new(b.x0, -b.height() * 0.4, b.x1, b.height() * 0.6);
        let faces: Vec<(BBox, &[[f32; 3]], bool)> =
            vec![(b, &[], false), (b, &[], true), (up, &[], false)];
        let x = host.run(&view, &faces).unwrap();
        let y = graph.run(&view, &faces).unwrap();
        for (i, (p, q)) in x.iter().zip(&y).enumerate() {
            let what = format!(
                "{name} as {format:?}, crop {i} ({})",
                ["box", "box with mirror", "partly outside"][i]
            );
            let (p, q) = (p.expect("an angle"), q.expect("an angle"));
            let worst = [
                angle_diff(p.yaw, q.yaw),
                angle_diff(p.pitch, q.pitch),
                angle_diff(p.roll, q.roll),
            ]
            .iter()
            .fold(0.0f32, |m, v| m.max(v.abs()));
            println!("{what}: angles within {worst:.4}°");
            assert!(worst <= DEGREES, "{what}: {p:?} against {q:?}");
        }
    }
}

#[test]
fn the_engine_makes_the_frame_tensors_once_per_frame() {
    let mut config = support::config().unwrap_or_else(|e| panic!("{e}"));
    config.runtime = options(Preprocess::Graph);
    config.camera_fov = 0.0;
    let mut graph =
        Engine::new(config.clone()).unwrap_or_else(|e| panic!("{e}; run `make models`"));
    config.runtime = options(Preprocess::Host);
    let mut host = Engine::new(config).unwrap();
    assert_eq!((graph.preprocess(), host.preprocess()), ("graph", "host"));
    let frames = frames();
    for (n, (name, picture)) in frames.iter().enumerate() {
        let a = host.process(&picture.view()).unwrap();
        let b = graph.process(&picture.view()).unwrap();
        // Detector, three landmark passes (the last mirrored) and the regressor: one upload.
        assert_eq!(graph.frame_uploads(), n as u64 + 1, "{name}");
        assert_eq!(host.frame_uploads(), 0);
        assert_eq!(a.len(), b.len(), "{name}");
        for (x, y) in a.iter().zip(&b) {
            let worst = [
                angle_diff(x.pose.yaw, y.pose.yaw),
                angle_diff(x.pose.pitch, y.pose.pitch),
                angle_diff(x.pose.roll, y.pose.roll),
            ]
            .iter()
            .fold(0.0f32, |m, v| m.max(v.abs()));
            println!(
                "{name}: engine angles within {worst:.4}°, box within {:.4} px",
                box_diff(&x.bbox, &y.bbox)
            );
            assert!(
                worst <= DEGREES && box_diff(&x.bbox, &y.bbox) <= PX,
                "{name}: {:?} against {:?}",
                x.pose,
                y.pose
            );
        }
    }
}

/// A models folder holding `stem`'s network and descriptor, without its frame graphs.
fn folder_without_frame_graphs(stem: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("facepose-nograph-{}-{stem}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for ext in ["onnx", "descriptor"] {
        let name = format!("{stem}.{ext}");
        std::fs::copy(model_dir().join(&name), dir.join(&name))
            .unwrap_or_else(|e| panic!("{name}: {e}; run `make models`"));
    }
    dir
}

#[test]
fn a_missing_frame_graph_fails_the_start_naming_the_file_and_make_models() {
    let dir = folder_without_frame_graphs("face_landmark");
    let model = dir.join("face_landmark.onnx");
    let err = Landmarker::load(&model, None, &options(Preprocess::Graph))
        .err()
        .expect("graph mode without the frame graph must fail")
        .to_string();
    assert!(
        err.contains("face_landmark.frame.onnx") && err.contains("make models"),
        "{err}"
    );
    // Host and auto (on the CPU) do without.
    assert!(Landmarker::load(&model, None, &options(Preprocess::Host)).is_ok());
    let auto = Landmarker::load(&model, None, &options(Preprocess::Auto)).unwrap();
    assert!(!auto.model().uses_frame_graph());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn auto_keeps_the_cpu_on_the_host_warp() {
    let l = landmarker(Preprocess::Auto);
    assert_eq!(l.model().provider, "cpu");
    assert!(
        !l.model().uses_frame_graph(),
        "auto on the CPU must keep the host warp"
    );
}

/// Frames through the element with `properties`: each frame's FacePoseMeta.
fn through_element(
    frames: &[Picture],
    properties: &[(&str, &str)],
) -> (Vec<gst::Structure>, Option<String>) {
    let (buffers, harness) = support::through_harness(frames, properties);
    let out = buffers
        .iter()
        .map(|b| gstfacepose::meta::frame_structure(b).expect("a FacePoseMeta"))
        .collect();
    let active = harness
        .element()
        .expect("the harness's element")
        .property::<Option<String>>("active-preprocess");
    (out, active)
}

fn faces_of(s: &gst::Structure) -> Vec<gst::Structure> {
    s.get::<gst::Array>("faces")
        .unwrap()
        .iter()
        .map(|v| v.get::<gst::Structure>().unwrap())
        .collect()
}

#[test]
fn the_element_with_preprocess_graph_attaches_the_same_faces() {
    let astronaut = &frames()[0].1;
    let moving: Vec<Picture> = (0..4)
        .map(|i| placed(astronaut, 300, 640, 480, 60 + 8 * i, 40 + 4 * i))
        .collect();
    let common = [
        ("execution-provider", "cpu"),
        ("async-detection", "false"),
        ("detection-interval", "2"),
    ];
    let with = |p: &'static str| {
        let mut props = common.to_vec();
        props.push(("preprocess", p));
        through_element(&moving, &props)
    };
    let (host, host_active) = with("host");
    let (graph, graph_active) = with("graph");
    assert_eq!(host_active.as_deref(), Some("host"));
    assert_eq!(graph_active.as_deref(), Some("graph"));
    for (i, (a, b)) in host.iter().zip(&graph).enumerate() {
        let (fa, fb) = (faces_of(a), faces_of(b));
        assert_eq!(fa.len(), 1, "frame {i}: {a:?}");
        assert_eq!(fa.len(), fb.len(), "frame {i}");
        for key in ["yaw", "pitch", "roll"] {
            let (x, y) = (
                fa[0].get::<f64>(key).unwrap() as f32,
                fb[0].get::<f64>(key).unwrap() as f32,
            );
            assert!(
                angle_diff(x, y).abs() <= DEGREES,
                "frame {i}: {key} {x} (host) against {y} (graph)"
            );
        }
        // Box corners are in 0..1 of the frame.
        for (key, side) in [
            ("x_min", 640.0),
            ("y_min", 480.0),
            ("x_max", 640.0),
            ("y_max", 480.0),
        ] {
            let (x, y) = (
                fa[0].get::<f64>(key).unwrap() * side,
                fb[0].get::<f64>(key).unwrap() * side,
            );
            assert!(
                (x - y).abs() <= PX as f64,
                "frame {i}: box {key} {x} px (host) against {y} px (graph)"
            );
        }
    }
}

#[test]
fn the_element_fails_to_start_in_graph_mode_without_the_frame_graph() {
    gst::init().unwrap();
    gstfacepose::plugin_register_static().ok();
    let dir = folder_without_frame_graphs("face_landmark");
    let element = gst::ElementFactory::make("faceposeestimator")
        .property_from_str("preprocess", "graph")
        .property_from_str("execution-provider", "cpu")
        .property(
            "landmark-model",
            dir.join("face_landmark.onnx").to_str().unwrap(),
        )
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    assert!(element.set_state(gst::State::Paused).is_err());
    let text = bus
        .iter()
        .find_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(format!("{} {:?}", e.error(), e.debug())),
            _ => None,
        })
        .expect("an error message");
    assert!(
        text.contains("face_landmark.frame.onnx") && text.contains("make models"),
        "{text}"
    );
    let _ = element.set_state(gst::State::Null);
    let _ = std::fs::remove_dir_all(&dir);
}
