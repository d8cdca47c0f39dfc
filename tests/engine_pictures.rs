// SPDX-License-Identifier: MPL-2.0
//! The whole engine on the public-domain sample pictures: one frontal face each, roll that follows
//! an in-plane rotation, a mirror that negates yaw and roll, no faces in blank or noisy frames, and
//! the same faces from every pixel format and stride.

mod support;

use std::path::Path;

use gstfacepose::engine::geometry::RotatedRect;
use gstfacepose::engine::{
    DetectConfig, Detector, Engine, Face, ImageView, Landmarker, PixelFormat, Plane, RuntimeOptions,
};
use support::{Picture, angle_diff};

/// The engine with the default models; panics with the fix when they are missing.
fn engine() -> Engine {
    let mut config = support::config().unwrap_or_else(|e| panic!("{e}"));
    // The sample pictures are crops of portraits taken with unknown lenses: their angles are
    // judged along each face's line of sight, as a viewer of the picture sees them.
    config.camera_fov = 0.0;
    Engine::new(config)
        .unwrap_or_else(|e| panic!("cannot start the engine ({e}); run `make models`"))
}

/// Both sample pictures, by file name; panics with the fix when they are missing.
fn pictures() -> Vec<(String, Picture)> {
    support::sample_pictures()
        .iter()
        .map(|p| {
            if !p.exists() {
                panic!("{} is missing: run `make models`", p.display());
            }
            let picture = Picture::load(p).unwrap_or_else(|e| panic!("{e}; run `make models`"));
            (name(p), picture)
        })
        .collect()
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn run(engine: &mut Engine, view: &ImageView, what: &str) -> Vec<Face> {
    engine
        .process(view)
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The only face in `faces`; panics naming `what` when there is not exactly one.
fn single<'a>(faces: &'a [Face], what: &str) -> &'a Face {
    assert_eq!(
        faces.len(),
        1,
        "{what}: expected exactly one face, found {}: {:?}",
        faces.len(),
        faces.iter().map(|f| (f.bbox, f.score)).collect::<Vec<_>>()
    );
    &faces[0]
}

fn pose_text(f: &Face) -> String {
    format!(
        "yaw {:+.2} pitch {:+.2} roll {:+.2}",
        f.pose.yaw, f.pose.pitch, f.pose.roll
    )
}

#[test]
fn each_sample_picture_has_one_frontal_face_with_landmarks_in_its_box() {
    let mut engine = engine();
    for (name, picture) in pictures() {
        let faces = run(&mut engine, &picture.view(), &name);
        let face = single(&faces, &name);
        let b = face.bbox;
        println!(
            "{name} {}×{}: box ({:.1}, {:.1})-({:.1}, {:.1}) score {:.3} presence {:.3} {}",
            picture.width,
            picture.height,
            b.x0,
            b.y0,
            b.x1,
            b.y1,
            face.score,
            face.presence,
            pose_text(face)
        );

        // The box holds the nose key point and has the size of a portrait's face.
        let nose = face.keypoints[2];
        assert!(
            nose.x > b.x0 && nose.x < b.x1 && nose.y > b.y0 && nose.y < b.y1,
            "{name}: nose key point {nose:?} outside the box {b:?}"
        );
        let share = b.width() / picture.width as f32;
        assert!(
            (0.15..=0.70).contains(&share),
            "{name}: box width {:.1} is {:.0}% of the picture width, expected 15-70%",
            b.width(),
            share * 100.0
        );
        assert!(
            (0.5..=2.0).contains(&(b.height() / b.width())),
            "{name}: box {b:?} is not face-shaped"
        );

        // All 468 landmarks inside the box grown by 25% on each side.
        assert_eq!(face.landmarks.len(), 468, "{name}: landmark count");
        let (gx, gy) = (b.width() * 0.25, b.height() * 0.25);
        for (i, p) in face.landmarks.iter().enumerate() {
            assert!(
                p.iter().all(|v| v.is_finite()),
                "{name}: landmark {i} is not finite: {p:?}"
            );
            assert!(
                p[0] >= b.x0 - gx && p[0] <= b.x1 + gx && p[1] >= b.y0 - gy && p[1] <= b.y1 + gy,
                "{name}: landmark {i} at ({:.1}, {:.1}) lies outside the box {b:?} grown by 25%",
                p[0],
                p[1]
            );
        }

        assert!(face.presence > 0.9, "{name}: presence {}", face.presence);
        assert!(face.score > 0.5, "{name}: detection score {}", face.score);
        assert!(
            face.fit_error.is_finite(),
            "{name}: fit error {}",
            face.fit_error
        );
        let p = face.pose;
        assert!(
            p.yaw.abs() < 15.0 && p.pitch.abs() < 15.0 && p.roll.abs() < 15.0,
            "{name}: expected a near-frontal pose (|angles| < 15°), got {}",
            pose_text(face)
        );
    }
}

#[test]
fn roll_follows_an_in_plane_rotation() {
    let mut engine = engine();
    for (name, picture) in pictures() {
        let base_faces = run(&mut engine, &picture.view(), &name);
        let base = single(&base_faces, &name);
        let c = base.bbox.centre();
        for degrees in [15.0f32, -15.0, 30.0, -30.0] {
            let what = format!("{name} turned {degrees:+}° clockwise");
            let (turned, _) = picture.rotated(degrees, (c.x, c.y));
            let faces = run(&mut engine, &turned.view(), &what);
            let face = single(&faces, &what);
            let change = angle_diff(face.pose.roll, base.pose.roll);
            println!(
                "{what}: roll {:+.2} → {:+.2} (change {change:+.2}), {}",
                base.pose.roll,
                face.pose.roll,
                pose_text(face)
            );
            // Clockwise on screen moves the top of the head to the image's right: roll grows by
            // the angle (module documentation of `engine::pose`).
            assert!(
                (change - degrees).abs() <= 3.0,
                "{what}: roll changed by {change:+.2}°, expected {degrees:+}° ± 3°"
            );
        }
    }
}

/// How far the mirror image's yaw may miss the negation of the original's, and its pitch the
/// original pitch. The landmark model on its own is not mirror-symmetric (about 4° of yaw on a
/// sample picture); the engine averages each face with a pass on its mirrored crop, which brings
/// the upright pictures within 2°. The pictures turned 30° keep a little more (measured 1.96° of
/// yaw), so they get 3°.
const MIRROR_YAW_TOLERANCE: f32 = 2.0;
const MIRROR_YAW_TOLERANCE_TURNED: f32 = 3.0;
const MIRROR_PITCH_TOLERANCE: f32 = 2.0;
const MIRROR_ROLL_TOLERANCE: f32 = 2.0;

#[test]
fn a_mirror_image_negates_yaw_and_roll() {
    let mut engine = engine();
    for (name, picture) in pictures() {
        let faces = run(&mut engine, &picture.view(), &name);
        let c = single(&faces, &name).bbox.centre();
        // Upright, and turned 30° clockwise so that roll is large and its negation is a real test.
        let turned = picture.rotated(30.0, (c.x, c.y)).0;
        for (what, original) in [
            (name.clone(), &picture),
            (format!("{name} turned 30°"), &turned),
        ] {
            let faces = run(&mut engine, &original.view(), &what);
            let face = single(&faces, &what);
            let what_m = format!("{what}, mirrored");
            let mirrored = original.mirrored();
            let mirror_faces = run(&mut engine, &mirrored.view(), &what_m);
            let m = single(&mirror_faces, &what_m);
            println!("{what}: {} | mirrored: {}", pose_text(face), pose_text(m));
            let (p, q) = (face.pose, m.pose);
            let yaw_tolerance = if what == name {
                MIRROR_YAW_TOLERANCE
            } else {
                MIRROR_YAW_TOLERANCE_TURNED
            };
            assert!(
                (q.yaw + p.yaw).abs() <= yaw_tolerance,
                "{what_m}: yaw {:+.2} is not the negation of {:+.2} (± {yaw_tolerance}°)",
                q.yaw,
                p.yaw
            );
            assert!(
                angle_diff(q.roll, -p.roll).abs() <= MIRROR_ROLL_TOLERANCE,
                "{what_m}: roll {:+.2} is not the negation of {:+.2} (± {MIRROR_ROLL_TOLERANCE}°)",
                q.roll,
                p.roll
            );
            assert!(
                (q.pitch - p.pitch).abs() <= MIRROR_PITCH_TOLERANCE,
                "{what_m}: pitch {:+.2} differs from {:+.2} by more than {MIRROR_PITCH_TOLERANCE}°",
                q.pitch,
                p.pitch
            );
            // The box mirrors too (within 5% of its width: boxes of turned faces are loose).
            let w = original.width as f32;
            let tolerance = (0.05 * face.bbox.width()).max(4.0);
            let corners = [
                (m.bbox.x0, w - face.bbox.x1),
                (m.bbox.x1, w - face.bbox.x0),
                (m.bbox.y0, face.bbox.y0),
                (m.bbox.y1, face.bbox.y1),
            ];
            assert!(
                corners.iter().all(|(a, b)| (a - b).abs() <= tolerance),
                "{what_m}: box {:?} is not the mirror of {:?} (± {tolerance:.1} px)",
                m.bbox,
                face.bbox
            );
        }
    }
}

#[test]
fn blank_and_noise_frames_have_no_face() {
    let mut engine = engine();
    let grey = Picture::uniform(640, 480, [128, 128, 128]);
    let faces = run(&mut engine, &grey.view(), "grey frame");
    assert!(
        faces.is_empty(),
        "uniform grey 640×480: expected no face, found {faces:?}"
    );
    for seed in [1u64, 0x5eed] {
        let noise = Picture::noise(640, 480, seed);
        let faces = run(&mut engine, &noise.view(), "noise frame");
        assert!(
            faces.is_empty(),
            "noise 640×480 (seed {seed}): expected no face, found {:?}",
            faces.iter().map(|f| (f.bbox, f.score)).collect::<Vec<_>>()
        );
    }
}

/// Bytes of padding after each row, and junk in it (and before each plane) that must not be read
/// as pixels.
const PAD: usize = 64;
const JUNK: u8 = 0xa5;

/// A plane of `rows` rows of `row_bytes` at `stride`, starting at an odd `offset` in its Vec.
struct PaddedPlane {
    bytes: Vec<u8>,
    offset: usize,
    stride: usize,
}

impl PaddedPlane {
    fn new(row_bytes: usize, rows: usize, offset: usize) -> Self {
        let stride = row_bytes + PAD;
        PaddedPlane {
            bytes: vec![JUNK; offset + stride * rows],
            offset,
            stride,
        }
    }

    fn row(&mut self, y: usize) -> &mut [u8] {
        let start = self.offset + y * self.stride;
        &mut self.bytes[start..start + self.stride - PAD]
    }

    fn plane(&self) -> Plane<'_> {
        Plane {
            data: &self.bytes[self.offset..],
            stride: self.stride,
        }
    }
}

/// Packed copy of `p` in `format` (3 or 4 bytes a pixel, x bytes = 0xff) with padded rows.
fn packed(
    p: &Picture,
    format: PixelFormat,
    order: [usize; 3],
    bpp: usize,
) -> (PaddedPlane, PixelFormat) {
    let mut plane = PaddedPlane::new(p.width * bpp, p.height, 1);
    for y in 0..p.height {
        let row = plane.row(y);
        for x in 0..p.width {
            let src = &p.data[(y * p.width + x) * 3..][..3];
            let dst = &mut row[x * bpp..x * bpp + bpp];
            dst.fill(0xff);
            for k in 0..3 {
                dst[order[k]] = src[k];
            }
        }
    }
    (plane, format)
}

fn clamp_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// BT.601 limited-range Y of one pixel.
fn luma(rgb: &[u8]) -> u8 {
    let [r, g, b] = [rgb[0] as f32, rgb[1] as f32, rgb[2] as f32];
    clamp_u8(16.0 + 0.257 * r + 0.504 * g + 0.098 * b)
}

/// BT.601 limited-range U and V of the 2×2 block at chroma position (cx, cy), averaged.
fn chroma(p: &Picture, cx: usize, cy: usize) -> (u8, u8) {
    let (mut u, mut v, mut n) = (0.0f32, 0.0f32, 0.0f32);
    for y in 2 * cy..(2 * cy + 2).min(p.height) {
        for x in 2 * cx..(2 * cx + 2).min(p.width) {
            let px = &p.data[(y * p.width + x) * 3..][..3];
            let [r, g, b] = [px[0] as f32, px[1] as f32, px[2] as f32];
            u += 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
            v += 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
            n += 1.0;
        }
    }
    (clamp_u8(u / n), clamp_u8(v / n))
}

fn luma_plane(p: &Picture) -> PaddedPlane {
    let mut y_plane = PaddedPlane::new(p.width, p.height, 3);
    for y in 0..p.height {
        let source = &p.data[y * p.width * 3..(y + 1) * p.width * 3];
        for (dst, px) in y_plane.row(y).iter_mut().zip(source.chunks_exact(3)) {
            *dst = luma(px);
        }
    }
    y_plane
}

/// Y, U and V planes, each in its own Vec at an odd offset with padded rows.
fn to_i420(p: &Picture) -> [PaddedPlane; 3] {
    let (cw, ch) = (p.width.div_ceil(2), p.height.div_ceil(2));
    let y_plane = luma_plane(p);
    let mut u_plane = PaddedPlane::new(cw, ch, 5);
    let mut v_plane = PaddedPlane::new(cw, ch, 7);
    for cy in 0..ch {
        for cx in 0..cw {
            let (u, v) = chroma(p, cx, cy);
            u_plane.row(cy)[cx] = u;
            v_plane.row(cy)[cx] = v;
        }
    }
    [y_plane, u_plane, v_plane]
}

/// Y and interleaved UV planes, each in its own Vec at an odd offset with padded rows.
fn to_nv12(p: &Picture) -> [PaddedPlane; 2] {
    let (cw, ch) = (p.width.div_ceil(2), p.height.div_ceil(2));
    let y_plane = luma_plane(p);
    let mut uv_plane = PaddedPlane::new(cw * 2, ch, 9);
    for cy in 0..ch {
        for cx in 0..cw {
            let (u, v) = chroma(p, cx, cy);
            let row = uv_plane.row(cy);
            row[cx * 2] = u;
            row[cx * 2 + 1] = v;
        }
    }
    [y_plane, uv_plane]
}

fn assert_same_faces(reference: &[Face], faces: &[Face], what: &str) {
    assert_eq!(
        faces.len(),
        reference.len(),
        "{what}: {} faces, the RGB frame gave {}",
        faces.len(),
        reference.len()
    );
    for (f, r) in faces.iter().zip(reference) {
        let corners = [
            (f.bbox.x0, r.bbox.x0),
            (f.bbox.y0, r.bbox.y0),
            (f.bbox.x1, r.bbox.x1),
            (f.bbox.y1, r.bbox.y1),
        ];
        assert!(
            corners.iter().all(|(a, b)| (a - b).abs() <= 3.0),
            "{what}: box {:?} differs from the RGB frame's {:?} by more than 3 px",
            f.bbox,
            r.bbox
        );
        let (p, q) = (f.pose, r.pose);
        assert!(
            (p.yaw - q.yaw).abs() <= 2.0
                && (p.pitch - q.pitch).abs() <= 2.0
                && angle_diff(p.roll, q.roll).abs() <= 2.0,
            "{what}: {} differs from the RGB frame's {} by more than 2°",
            pose_text(f),
            pose_text(r)
        );
    }
}

#[test]
fn every_pixel_format_and_stride_gives_the_same_faces() {
    let mut engine = engine();
    for (name, picture) in pictures() {
        let reference = run(&mut engine, &picture.view(), &name);
        assert!(!reference.is_empty(), "{name}: no face in the RGB frame");
        let (w, h) = (picture.width, picture.height);

        for (format, order, bpp) in [
            (PixelFormat::Rgb, [0, 1, 2], 3),
            (PixelFormat::Bgrx, [2, 1, 0], 4),
            (PixelFormat::Rgba, [0, 1, 2], 4),
            (PixelFormat::Bgr, [2, 1, 0], 3),
        ] {
            let what = format!("{name} as {format:?} with stride {} + {PAD}", w * bpp);
            let (plane, format) = packed(&picture, format, order, bpp);
            let p = plane.plane();
            let view = ImageView::packed(format, w, h, p.data, p.stride)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let faces = run(&mut engine, &view, &what);
            assert_same_faces(&reference, &faces, &what);
        }

        let [y, u, v] = to_i420(&picture);
        let what = format!("{name} as I420 with padded strides");
        let view = ImageView::i420(w, h, y.plane(), u.plane(), v.plane())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let faces = run(&mut engine, &view, &what);
        println!(
            "{what}: {}",
            faces.iter().map(pose_text).collect::<Vec<_>>().join("; ")
        );
        assert_same_faces(&reference, &faces, &what);

        let [y, uv] = to_nv12(&picture);
        let what = format!("{name} as NV12 with padded strides");
        let view =
            ImageView::nv12(w, h, y.plane(), uv.plane()).unwrap_or_else(|e| panic!("{what}: {e}"));
        let faces = run(&mut engine, &view, &what);
        println!(
            "{what}: {}",
            faces.iter().map(pose_text).collect::<Vec<_>>().join("; ")
        );
        assert_same_faces(&reference, &faces, &what);
        println!(
            "{name} RGB: {}",
            reference
                .iter()
                .map(pose_text)
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}

/// Largest distance in pixels between corresponding points of two landmark sets.
fn largest_gap(a: &[[f32; 3]], b: &[[f32; 3]]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(p, q)| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt())
        .fold(0.0, f32::max)
}

#[test]
fn a_batch_on_the_pool_gives_the_landmarks_each_crop_gives_alone_on_the_calling_thread() {
    let config = support::config().unwrap_or_else(|e| panic!("{e}"));
    let mut detector = Detector::load(&config.detector_model, None, &config.runtime)
        .unwrap_or_else(|e| panic!("{e}; run `make models`"));
    let inline = RuntimeOptions {
        threads: 1,
        ..config.runtime.clone()
    };
    let mut landmarker = Landmarker::load(&config.landmark_model, None, &inline)
        .unwrap_or_else(|e| panic!("{e}; run `make models`"));
    // The same options as the first session load nothing more.
    landmarker.model_mut().add_batch_session(&inline).unwrap();
    assert!(!landmarker.model().has_batch_session());
    let pooled = RuntimeOptions {
        threads: 2,
        ..config.runtime.clone()
    };
    landmarker.model_mut().add_batch_session(&pooled).unwrap();
    assert!(landmarker.model().has_batch_session());
    for (name, picture) in pictures() {
        let view = picture.view();
        let detections = detector.detect(&view, &DetectConfig::default()).unwrap();
        let straight = landmarker.crop_from_detection(&detections[0]);
        let tilted = RotatedRect {
            angle: straight.angle - 0.4,
            ..straight
        };
        let batch = landmarker.run(&view, &[straight, tilted]).unwrap();
        for (i, crop) in [straight, tilted].into_iter().enumerate() {
            let alone = landmarker.run(&view, &[crop]).unwrap();
            let gap = largest_gap(&batch[i].points, &alone[0].points);
            assert!(
                gap < 0.01,
                "{name}: crop {i} moved {gap} px in a batch on the pool"
            );
            assert!((batch[i].presence - alone[0].presence).abs() < 1e-4);
        }
    }
}

#[test]
fn the_mirror_pass_runs_on_the_flagged_crops_only() {
    let config = support::config().unwrap_or_else(|e| panic!("{e}"));
    let mut detector = Detector::load(&config.detector_model, None, &config.runtime)
        .unwrap_or_else(|e| panic!("{e}; run `make models`"));
    let mut landmarker = Landmarker::load(&config.landmark_model, None, &config.runtime)
        .unwrap_or_else(|e| panic!("{e}; run `make models`"));
    let (name, picture) = pictures().remove(0);
    let view = picture.view();
    let detections = detector.detect(&view, &DetectConfig::default()).unwrap();
    let straight = landmarker.crop_from_detection(&detections[0]);
    let tilted = RotatedRect {
        angle: straight.angle + 0.3,
        ..straight
    };
    let crops = [straight, tilted, straight];
    let (plain, mirrored) = landmarker
        .run_with_mirror_where(&view, &crops, &[false, true, false])
        .unwrap();
    assert!(
        mirrored[0].is_none() && mirrored[2].is_none(),
        "{name}: crops not flagged got a mirror pass"
    );
    // The plain results are those of a batch without mirrored crops.
    let alone = landmarker.run(&view, &crops).unwrap();
    for (i, (p, a)) in plain.iter().zip(&alone).enumerate() {
        let gap = largest_gap(&p.points, &a.points);
        assert!(
            gap < 0.01,
            "{name}: crop {i} moved {gap} px with the mirror pass in the batch"
        );
    }
    // The flagged crop's mirror pass is the one it gets alone, and really is mirrored: its point
    // for the image-left eye's outer corner (33) lands on the plain pass's other eye (263).
    let flagged = mirrored[1]
        .as_ref()
        .expect("the flagged crop got no mirror pass");
    let (_, single) = landmarker
        .run_with_mirror_where(&view, &[tilted], &[true])
        .unwrap();
    let gap = largest_gap(&flagged.points, &single[0].as_ref().unwrap().points);
    assert!(
        gap < 0.01,
        "{name}: the mirror pass moved {gap} px in a batch"
    );
    let eye_width = largest_gap(&plain[1].points[33..34], &plain[1].points[263..264]);
    let swapped = largest_gap(&flagged.points[33..34], &plain[1].points[263..264]);
    assert!(
        swapped < 0.1 * eye_width,
        "{name}: mirrored point 33 is {swapped:.1} px from plain point 263 (eyes {eye_width:.1} px apart)"
    );
}
