// SPDX-License-Identifier: MPL-2.0
//! The metadata contract: faces as `GstVideoRegionOfInterestMeta` (one per face, with `detection`
//! and `head-pose` parameters), as one per-frame custom meta `FacePoseMeta`, and as the `facepose`
//! element message. Coordinates in structures are normalised to 0..1 of the frame; angles are in
//! degrees (see `engine::pose`).

use gst::glib;
use gst::prelude::*;

use crate::engine::Face;
use crate::engine::attention::{AttentionEvent, EventKind, FaceAttention, PositionSource};
use crate::engine::pose::Pose;

/// Name of the per-frame custom meta.
pub const FRAME_META: &str = "FacePoseMeta";
/// ROI type of every face.
pub const ROI_TYPE: &str = "face";
/// Name of each ended episode's or track's structure in the frame meta's `attention-events`.
pub const EVENT_STRUCTURE: &str = "attention-event";
/// Name of the bus message of an ended episode or track.
pub const EVENT_MESSAGE: &str = "facepose-attention";

/// Registers the custom meta once per process. Its structure holds only normalised coordinates,
/// so it survives every transform (scaling, conversion, copies) unchanged. GStreamer 1.22 drops
/// the parameters of ROI metas when it copies or scales them (videoconvert, videoscale); since
/// the frame meta is transformed after the ROI metas it follows, its transform puts the
/// `detection` and `head-pose` parameters back on the destination's face ROIs.
pub fn register() {
    if !gst::meta::CustomMeta::is_registered(FRAME_META) {
        gst::meta::CustomMeta::register_with_transform(
            FRAME_META,
            &[],
            |dest, meta, _src, _kind| {
                match gst::meta::CustomMeta::add(dest, FRAME_META) {
                    Ok(mut copy) => copy_fields(meta.structure(), copy.mut_structure()),
                    Err(_) => return false,
                }
                if let Ok(faces) = meta.structure().get::<gst::Array>("faces") {
                    restore_roi_params(dest, &faces);
                }
                true
            },
        );
    }
}

/// Gives face ROIs without parameters the parameters of their face (the ROI id is the face's
/// index in the frame meta).
fn restore_roi_params(buffer: &mut gst::BufferRef, faces: &gst::Array) {
    for mut roi in buffer.iter_meta_mut::<gst_video::VideoRegionOfInterestMeta>() {
        if roi.roi_type() != ROI_TYPE || roi.params().next().is_some() {
            continue;
        }
        let face = faces
            .as_slice()
            .iter()
            .filter_map(|v| v.get::<gst::Structure>().ok())
            .find(|f| f.get::<u64>("id").is_ok_and(|id| roi_id(id) == roi.id()));
        if let Some(face) = face {
            for p in roi_params(&face) {
                roi.add_param(p);
            }
        }
    }
}

/// The `detection`, `head-pose` and (when judged) `attention` parameters of a face ROI, from the
/// face's structure.
fn roi_params(face: &gst::StructureRef) -> Vec<gst::Structure> {
    let f = |name: &str| face.get::<f64>(name).unwrap_or(0.0);
    let detection = gst::Structure::builder("detection")
        .field("confidence", f("confidence"))
        .field("x_min", f("x_min"))
        .field("y_min", f("y_min"))
        .field("x_max", f("x_max"))
        .field("y_max", f("y_max"))
        .field("label", "face")
        .build();
    let mut pose = gst::Structure::builder("head-pose")
        .field("id", face.get::<u64>("id").unwrap_or(0))
        .field("yaw", f("yaw"))
        .field("pitch", f("pitch"))
        .field("roll", f("roll"))
        .field("presence", f("presence"))
        .field(
            "landmark-count",
            face.get::<u32>("landmark-count").unwrap_or(0),
        )
        .build();
    if let Ok(k) = face.get::<gst::Array>("keypoints") {
        pose.set("keypoints", k);
    }
    if let Ok(m) = face.get::<&str>("method") {
        pose.set("method", m);
    }
    let mut params = vec![detection, pose];
    if let Ok(mut a) = face.get::<gst::Structure>("attention") {
        a.set("id", face.get::<u64>("id").unwrap_or(0));
        params.push(a);
    }
    params
}

fn clock_time(ns: Option<u64>) -> Option<gst::ClockTime> {
    ns.map(gst::ClockTime::from_nseconds)
}

/// One face's attention as a structure named `attention`: centimetres in the camera's frame (x
/// right, y down, z forward), degrees, nanoseconds. `position-source` is `none` (and x, y, z
/// absent) without a field of view; `target-x`/`target-y` are present when the gaze ray meets
/// the target; `episode-start` while the face is in an episode.
pub fn attention_structure(a: &FaceAttention) -> gst::Structure {
    let mut s = gst::Structure::builder("attention")
        .field(
            "position-source",
            a.position_source.map_or("none", PositionSource::name),
        )
        .field("gaze-x", a.gaze[0] as f64)
        .field("gaze-y", a.gaze[1] as f64)
        .field("gaze-z", a.gaze[2] as f64)
        .field("camera-angle", finite(a.camera_angle))
        .field("looking-at-camera", a.looking_at_camera)
        .field("looking", a.looking)
        .field("on-target", a.target_point.is_some())
        .field("in-episode", a.episode_start.is_some())
        .field("visible-time", gst::ClockTime::from_nseconds(a.visible_ns))
        .field("looking-time", gst::ClockTime::from_nseconds(a.looking_ns))
        .field("episodes", a.episodes)
        .build();
    if let Some(p) = a.position {
        s.set("x", finite(p[0]));
        s.set("y", finite(p[1]));
        s.set("z", finite(p[2]));
    }
    if let Some(t) = a.target_point {
        s.set("target-x", finite(t[0]));
        s.set("target-y", finite(t[1]));
    }
    if let Some(start) = a.episode_start {
        s.set("episode-start", gst::ClockTime::from_nseconds(start));
    }
    s
}

/// An `attention` structure back as a face's attention.
pub fn attention_from_structure(s: &gst::StructureRef) -> FaceAttention {
    let f = |name: &str| s.get::<f64>(name).unwrap_or(0.0) as f32;
    let ns = |name: &str| {
        s.get::<gst::ClockTime>(name)
            .map(|t| t.nseconds())
            .unwrap_or(0)
    };
    let position_source = s
        .get::<&str>("position-source")
        .ok()
        .and_then(PositionSource::from_name);
    FaceAttention {
        position: position_source.map(|_| [f("x"), f("y"), f("z")]),
        position_source,
        gaze: [f("gaze-x"), f("gaze-y"), f("gaze-z")],
        camera_angle: f("camera-angle"),
        looking_at_camera: s.get::<bool>("looking-at-camera").unwrap_or(false),
        target_point: s
            .get::<bool>("on-target")
            .unwrap_or(false)
            .then(|| [f("target-x"), f("target-y")]),
        looking: s.get::<bool>("looking").unwrap_or(false),
        episode_start: s
            .get::<gst::ClockTime>("episode-start")
            .ok()
            .map(|t| t.nseconds()),
        visible_ns: ns("visible-time"),
        looking_ns: ns("looking-time"),
        episodes: s.get::<u32>("episodes").unwrap_or(0),
    }
}

/// An ended episode or track as a structure named `name` (`attention-event` in the frame meta,
/// `facepose-attention` on the bus): `event` (`episode` or `track-end`), `id`, `start`, `end`
/// and `duration` (clock times, none without timestamps), and the track's totals
/// `visible-time`, `looking-time` and `episodes`.
pub fn event_structure(name: &str, e: &AttentionEvent) -> gst::Structure {
    gst::Structure::builder(name)
        .field("event", e.kind.name())
        .field("id", e.id)
        .field("start", clock_time(e.start))
        .field("end", clock_time(e.end))
        .field(
            "duration",
            clock_time(e.start.and(e.end).map(|_| e.duration_ns())),
        )
        .field("visible-time", gst::ClockTime::from_nseconds(e.visible_ns))
        .field("looking-time", gst::ClockTime::from_nseconds(e.looking_ns))
        .field("episodes", e.episodes)
        .build()
}

/// An event structure back as an event; `None` when it names no known event.
pub fn event_from_structure(s: &gst::StructureRef) -> Option<AttentionEvent> {
    let kind = EventKind::from_name(s.get::<&str>("event").ok()?)?;
    let time = |name: &str| {
        s.get::<Option<gst::ClockTime>>(name)
            .ok()
            .flatten()
            .map(|t| t.nseconds())
    };
    Some(AttentionEvent {
        kind,
        id: s.get::<u64>("id").unwrap_or(0),
        start: time("start"),
        end: time("end"),
        visible_ns: time("visible-time").unwrap_or(0),
        looking_ns: time("looking-time").unwrap_or(0),
        episodes: s.get::<u32>("episodes").unwrap_or(0),
    })
}

/// Events as an array of `attention-event` structures.
pub fn events_array(events: &[AttentionEvent]) -> gst::Array {
    structures_array(
        events
            .iter()
            .map(|e| event_structure(EVENT_STRUCTURE, e))
            .collect(),
    )
}

/// The events of a `FacePoseMeta` structure.
pub fn events_from_frame(s: &gst::StructureRef) -> Vec<AttentionEvent> {
    s.get::<gst::Array>("attention-events")
        .map(|a| {
            a.as_slice()
                .iter()
                .filter_map(|v| v.get::<gst::Structure>().ok())
                .filter_map(|e| event_from_structure(&e))
                .collect()
        })
        .unwrap_or_default()
}

fn copy_fields(from: &gst::StructureRef, to: &mut gst::StructureRef) {
    for (name, value) in from.iter() {
        to.set_value(name, value.clone());
    }
}

/// The ROI meta id of a face: its track id (wrapping past `i32::MAX`, which no stream reaches).
pub fn roi_id(id: u64) -> i32 {
    (id % i32::MAX as u64) as i32
}

fn normalised(v: f32, size: u32) -> f64 {
    if !v.is_finite() {
        return 0.0;
    }
    (v as f64 / size.max(1) as f64).clamp(0.0, 1.0)
}

fn finite(v: f32) -> f64 {
    if v.is_finite() { v as f64 } else { 0.0 }
}

/// One estimate's angles as a structure named `name` (fields yaw, pitch, roll, degrees), or an
/// empty `name` structure with `valid = false` when the estimate is missing.
fn pose_structure(name: &str, pose: Option<Pose>) -> gst::Structure {
    match pose {
        Some(p) => gst::Structure::builder(name)
            .field("valid", true)
            .field("yaw", finite(p.yaw))
            .field("pitch", finite(p.pitch))
            .field("roll", finite(p.roll))
            .build(),
        None => gst::Structure::builder(name).field("valid", false).build(),
    }
}

/// One face as a structure named `face` (normalised box and landmarks, angles in degrees).
pub fn face_structure(face: &Face, width: u32, height: u32) -> gst::Structure {
    let landmarks: Vec<glib::SendValue> = face
        .landmarks
        .iter()
        .flat_map(|p| {
            [
                normalised(p[0], width),
                normalised(p[1], height),
                finite(p[2]) / width.max(1) as f64,
            ]
        })
        .map(|v| v.to_send_value())
        .collect();
    let builder = gst::Structure::builder("face")
        .field("id", face.id)
        .field("x_min", normalised(face.bbox.x0, width))
        .field("y_min", normalised(face.bbox.y0, height))
        .field("x_max", normalised(face.bbox.x1, width))
        .field("y_max", normalised(face.bbox.y1, height))
        .field("confidence", finite(face.score))
        .field("presence", finite(face.presence))
        .field("yaw", finite(face.pose.yaw))
        .field("pitch", finite(face.pose.pitch))
        .field("roll", finite(face.pose.roll))
        .field("method", face.method.name())
        .field("fit", pose_structure("fit", face.fit_pose))
        .field(
            "regression",
            pose_structure("regression", face.regressed_pose),
        )
        .field("regression-weight", finite(face.regressor_weight))
        .field("keypoints", keypoints(face, width, height))
        .field("landmark-count", face.landmarks.len() as u32)
        .field("landmarks", gst::Array::from_values(landmarks));
    let builder = match &face.attention {
        Some(a) => builder.field("attention", attention_structure(a)),
        None => builder,
    };
    builder.build()
}

fn keypoints(face: &Face, width: u32, height: u32) -> gst::Array {
    gst::Array::new(
        face.keypoints
            .iter()
            .flat_map(|k| [normalised(k.x, width), normalised(k.y, height)]),
    )
}

/// Every face of a frame as an array of `face` structures.
pub fn faces_array(faces: &[Face], width: u32, height: u32) -> gst::Array {
    structures_array(face_structures(faces, width, height))
}

/// Each face's `face` structure.
fn face_structures(faces: &[Face], width: u32, height: u32) -> Vec<gst::Structure> {
    faces
        .iter()
        .map(|f| face_structure(f, width, height))
        .collect()
}

/// The structures as an array, moved in (not copied: a face's 468 landmarks are 1404 values).
fn structures_array(structures: Vec<gst::Structure>) -> gst::Array {
    gst::Array::from_values(structures.into_iter().map(glib::SendValue::from_owned))
}

/// Adds one ROI meta per face (id = the face's index), with the `detection` and `head-pose`
/// parameters.
pub fn add_roi_metas(buffer: &mut gst::BufferRef, faces: &[Face], width: u32, height: u32) {
    add_rois(
        buffer,
        faces,
        &face_structures(faces, width, height),
        width,
        height,
    );
}

/// The ROI metas of `faces`, their parameters read from the faces' `structures`.
fn add_rois(
    buffer: &mut gst::BufferRef,
    faces: &[Face],
    structures: &[gst::Structure],
    width: u32,
    height: u32,
) {
    for (f, structure) in faces.iter().zip(structures) {
        let b = f.bbox.clamp_to(width as f32, height as f32);
        let x = b.x0.max(0.0).round() as u32;
        let y = b.y0.max(0.0).round() as u32;
        let w = (b.x1.round() as u32).saturating_sub(x);
        let h = (b.y1.round() as u32).saturating_sub(y);
        let mut meta = gst_video::VideoRegionOfInterestMeta::add(buffer, ROI_TYPE, (x, y, w, h));
        meta.set_id(roi_id(f.id));
        for p in roi_params(structure) {
            meta.add_param(p);
        }
    }
}

/// Adds a frame's metadata: the ROI metas ([`add_roi_metas`]), then the frame meta
/// ([`add_frame_meta`]), each face's structure built once for both.
pub fn add_metas(buffer: &mut gst::BufferRef, faces: &[Face], info: &FrameInfo) {
    let structures = face_structures(faces, info.width, info.height);
    add_rois(buffer, faces, &structures, info.width, info.height);
    add_frame_structures(buffer, structures, info);
}

/// What the per-frame meta says about how the faces were found.
pub struct FrameInfo<'a> {
    pub width: u32,
    pub height: u32,
    pub detector: &'a str,
    pub landmarker: &'a str,
    /// The head-pose regressor's file name; empty without one.
    pub pose_model: &'a str,
    pub provider: &'a str,
    pub inference_ms: f64,
    /// Whether the detector ran on this frame (else faces were followed by their landmarks).
    pub detected: bool,
    pub times: crate::engine::StageTimes,
    /// The attention episodes and tracks that ended on this frame.
    pub events: &'a [AttentionEvent],
}

/// Adds the per-frame `FacePoseMeta` (present with zero faces too).
pub fn add_frame_meta(buffer: &mut gst::BufferRef, faces: &[Face], info: &FrameInfo) {
    add_frame_structures(
        buffer,
        face_structures(faces, info.width, info.height),
        info,
    );
}

/// The frame meta with the faces' `structures`, written into the meta's own structure.
fn add_frame_structures(
    buffer: &mut gst::BufferRef,
    structures: Vec<gst::Structure>,
    info: &FrameInfo,
) {
    // Only the fields count: a custom meta's structure carries the meta's name.
    let Ok(mut meta) = gst::meta::CustomMeta::add(buffer, FRAME_META) else {
        return;
    };
    let s = meta.mut_structure();
    s.set("width", info.width);
    s.set("height", info.height);
    s.set("detector", info.detector);
    s.set("landmarker", info.landmarker);
    s.set("pose-model", info.pose_model);
    s.set("execution-provider", info.provider);
    s.set("inference-ms", info.inference_ms);
    s.set("detected", info.detected);
    s.set("detect-ms", info.times.detect);
    s.set("landmarks-ms", info.times.landmarks);
    s.set("pose-ms", info.times.pose);
    s.set("face-count", structures.len() as u32);
    s.set("faces", structures_array(structures));
    s.set("attention-events", events_array(info.events));
}

/// The per-frame structure of a buffer, if the element attached one.
pub fn frame_structure(buffer: &gst::BufferRef) -> Option<gst::Structure> {
    gst::meta::CustomMeta::from_buffer(buffer, FRAME_META)
        .ok()
        .map(|m| m.structure().to_owned())
}

/// A pose structure (`fit` or `regression`) back as angles; `None` when it says `valid = false`.
fn pose_from_structure(s: &gst::StructureRef) -> Option<Pose> {
    if !s.get::<bool>("valid").unwrap_or(false) {
        return None;
    }
    let f = |name: &str| s.get::<f64>(name).unwrap_or(0.0) as f32;
    Some(Pose {
        yaw: f("yaw"),
        pitch: f("pitch"),
        roll: f("roll"),
    })
}

/// One `face` structure back as a face in pixel coordinates (what the structure does not hold,
/// the rotation, scale and fit error, is derived or zero).
pub fn face_from_structure(s: &gst::StructureRef, width: u32, height: u32) -> Face {
    use crate::engine::geometry::{BBox, Point};
    let (w, h) = (width as f32, height as f32);
    let f = |name: &str| s.get::<f64>(name).unwrap_or(0.0) as f32;
    let numbers = |name: &str| -> Vec<f32> {
        s.get::<gst::Array>(name)
            .map(|a| {
                a.as_slice()
                    .iter()
                    .map(|v| v.get::<f64>().unwrap_or(0.0) as f32)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut keypoints = [Point::default(); 5];
    for (k, xy) in keypoints
        .iter_mut()
        .zip(numbers("keypoints").chunks_exact(2))
    {
        *k = Point {
            x: xy[0] * w,
            y: xy[1] * h,
        };
    }
    let landmarks = numbers("landmarks")
        .chunks_exact(3)
        .map(|p| [p[0] * w, p[1] * h, p[2] * w])
        .collect();
    let pose = Pose {
        yaw: f("yaw"),
        pitch: f("pitch"),
        roll: f("roll"),
    };
    let sub = |name: &str| {
        s.get::<gst::Structure>(name)
            .ok()
            .and_then(|p| pose_from_structure(&p))
    };
    Face {
        id: s.get::<u64>("id").unwrap_or(0),
        bbox: BBox::new(
            f("x_min") * w,
            f("y_min") * h,
            f("x_max") * w,
            f("y_max") * h,
        ),
        score: f("confidence"),
        keypoints,
        landmarks,
        presence: f("presence"),
        pose,
        rotation: pose.to_rotation(),
        method: s
            .get::<&str>("method")
            .ok()
            .and_then(crate::engine::pose::PoseMethod::from_name)
            .unwrap_or_default(),
        fit_pose: sub("fit"),
        regressed_pose: sub("regression"),
        regressor_weight: f("regression-weight"),
        scale: 0.0,
        fit_error: 0.0,
        attention: s
            .get::<gst::Structure>("attention")
            .ok()
            .map(|a| attention_from_structure(&a)),
    }
}

/// The frame size and faces of a `FacePoseMeta` structure.
pub fn faces_from_frame(s: &gst::StructureRef) -> (u32, u32, Vec<Face>) {
    let width = s.get::<u32>("width").unwrap_or(0);
    let height = s.get::<u32>("height").unwrap_or(0);
    let faces = s
        .get::<gst::Array>("faces")
        .map(|a| {
            a.as_slice()
                .iter()
                .filter_map(|v| v.get::<gst::Structure>().ok())
                .map(|f| face_from_structure(&f, width, height))
                .collect()
        })
        .unwrap_or_default();
    (width, height, faces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::geometry::{BBox, Point};
    use crate::engine::pose::PoseMethod;

    fn face(id: u64) -> Face {
        let pose = Pose {
            yaw: 12.5,
            pitch: -3.0,
            roll: 1.0,
        };
        Face {
            id,
            bbox: BBox::new(10.0, 20.0, 110.0, 140.0),
            score: 0.875,
            keypoints: [Point { x: 32.0, y: 48.0 }; 5],
            landmarks: vec![[64.0, 96.0, -16.0]],
            presence: 0.5,
            pose,
            rotation: pose.to_rotation(),
            method: PoseMethod::Regression,
            fit_pose: None,
            regressed_pose: Some(pose),
            regressor_weight: 1.0,
            scale: 0.0,
            fit_error: 0.0,
            attention: None,
        }
    }

    #[test]
    fn a_face_comes_back_from_its_structure() {
        gst::init().unwrap();
        let face = face(7);
        let back = face_from_structure(&face_structure(&face, 640, 480), 640, 480);
        assert_eq!(back, face);
    }

    /// A ROI meta as its id, its box and its parameters.
    type Roi = (i32, (u32, u32, u32, u32), String);

    /// The ROI metas and the frame meta of a buffer (as text).
    fn metas_of(buffer: &gst::BufferRef) -> (Vec<Roi>, String) {
        let rois = buffer
            .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
            .map(|m| {
                let params: Vec<String> = m.params().map(|p| p.to_string()).collect();
                (m.id(), m.rect(), params.join(" | "))
            })
            .collect();
        (rois, frame_structure(buffer).unwrap().to_string())
    }

    #[test]
    fn add_metas_gives_what_the_two_metas_give_added_one_by_one() {
        gst::init().unwrap();
        register();
        let faces = [face(3), face(9)];
        let info = FrameInfo {
            width: 640,
            height: 480,
            detector: "d.onnx",
            landmarker: "l.onnx",
            pose_model: "p.onnx",
            provider: "cpu",
            inference_ms: 4.5,
            detected: true,
            times: Default::default(),
            events: &[],
        };
        let mut together = gst::Buffer::new();
        add_metas(together.get_mut().unwrap(), &faces, &info);
        let mut apart = gst::Buffer::new();
        add_roi_metas(apart.get_mut().unwrap(), &faces, 640, 480);
        add_frame_meta(apart.get_mut().unwrap(), &faces, &info);
        let (rois, frame) = metas_of(&together);
        assert_eq!((rois.clone(), frame.clone()), metas_of(&apart));
        assert_eq!(rois.len(), 2);
        assert!(rois[1].2.contains("head-pose") && rois[1].2.contains("id=(guint64)9"));
        let faces_back = frame_structure(&together)
            .unwrap()
            .get::<gst::Array>("faces")
            .unwrap();
        assert_eq!(faces_back.len(), 2);
        assert!(frame.contains("face-count=(uint)2"), "{frame}");
    }
}
