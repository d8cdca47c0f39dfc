// SPDX-License-Identifier: MPL-2.0
//! The faces as GStreamer's analytics meta (`GstAnalyticsRelationMeta`, GStreamer >= 1.24; cargo
//! feature `analytics`), for upstream readers such as `objectdetectionoverlay`. Per face:
//!
//! - an object-detection Mtd: type `face`, the box in pixels, the detector's confidence;
//! - a tracking Mtd: the face's track id, first seen / last seen (buffer timestamps);
//! - a classification Mtd with three classes whose labels carry the head pose in degrees,
//!   `yaw:+12.3`, `pitch:-4.0`, `roll:+0.5` (levels: the landmark model's face presence);
//! - once attention is judged, a second classification Mtd with one class, `looking` or
//!   `not-looking` (at the camera, or at the target when one is set; level: the face presence).
//!
//! The detection relates to the others (`RELATE_TO`, from the detection), and they are part of it
//! (`IS_PART_OF`, towards the detection). See docs/metadata.md.

use std::collections::HashMap;

use gst::glib;
use gst_analytics::prelude::*;
use gst_analytics::{AnalyticsRelationMeta, RelTypes};

use crate::engine::Face;

/// Object type of every face's detection Mtd.
pub const FACE_TYPE: &str = "face";

/// The three classification labels of a pose, e.g. `yaw:+12.3`.
pub fn pose_labels(face: &Face) -> [String; 3] {
    let label = |name: &str, v: f32| {
        let v = if v.is_finite() { v } else { 0.0 };
        format!("{name}:{v:+.1}")
    };
    [
        label("yaw", face.pose.yaw),
        label("pitch", face.pose.pitch),
        label("roll", face.pose.roll),
    ]
}

/// The attention classification's label of a face, when attention was judged.
pub fn attention_label(face: &Face) -> Option<&'static str> {
    face.attention
        .map(|a| if a.looking { "looking" } else { "not-looking" })
}

/// When each track was first seen (pruned to the faces of the last frame).
#[derive(Debug, Default)]
pub struct FirstSeen(HashMap<u64, gst::ClockTime>);

impl FirstSeen {
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

fn pixels(v: f32) -> i32 {
    if v.is_finite() { v.round() as i32 } else { 0 }
}

/// Adds (or extends) the buffer's relation meta with the faces.
pub fn add_faces(
    buffer: &mut gst::BufferRef,
    faces: &[Face],
    width: u32,
    height: u32,
    first_seen: &mut FirstSeen,
) -> Result<(), glib::BoolError> {
    let now = buffer.pts().unwrap_or(gst::ClockTime::ZERO);
    first_seen
        .0
        .retain(|id, _| faces.iter().any(|f| f.id == *id));
    if buffer.meta::<AnalyticsRelationMeta>().is_none() {
        AnalyticsRelationMeta::add(buffer);
    }
    let mut meta = buffer
        .meta_mut::<AnalyticsRelationMeta>()
        .ok_or_else(|| glib::bool_error!("no analytics relation meta"))?;
    let face_type = glib::Quark::from_str(FACE_TYPE);
    let mut tracks = Vec::with_capacity(faces.len());
    for face in faces {
        let b = face.bbox.clamp_to(width as f32, height as f32);
        let (x, y) = (pixels(b.x0), pixels(b.y0));
        let od = meta
            .add_od_mtd(
                face_type,
                x,
                y,
                pixels(b.x1) - x,
                pixels(b.y1) - y,
                face.score,
            )?
            .id();
        let first = *first_seen.0.entry(face.id).or_insert(now);
        let track = meta.add_tracking_mtd(face.id, first)?.id();
        tracks.push(track);
        let labels = pose_labels(face).map(|l| glib::Quark::from_str(&l));
        let presence = if face.presence.is_finite() {
            face.presence
        } else {
            0.0
        };
        let cls = meta.add_cls_mtd(&[presence; 3], &labels)?.id();
        let mut related = vec![track, cls];
        if let Some(label) = attention_label(face) {
            let quark = glib::Quark::from_str(label);
            related.push(meta.add_cls_mtd(&[presence], &[quark])?.id());
        }
        for other in related {
            meta.set_relation(RelTypes::RELATE_TO, od, other)?;
            meta.set_relation(RelTypes::IS_PART_OF, other, od)?;
        }
    }
    // A Mtd borrowed for changing holds the meta for as long as the meta itself: one each.
    for track in tracks {
        let mut meta = buffer
            .meta_mut::<AnalyticsRelationMeta>()
            .ok_or_else(|| glib::bool_error!("no analytics relation meta"))?;
        if let Some(mut t) = meta.mtd_mut::<gst_analytics::AnalyticsTrackingMtd>(track) {
            t.update_last_seen(now)?;
        }
    }
    Ok(())
}

/// What a reader finds for one face: box (x, y, w, h), confidence, track id, the labels of its
/// classifications (the pose's three, then `looking` or `not-looking`).
#[derive(Debug, Clone, PartialEq)]
pub struct FaceRecord {
    pub bbox: (i32, i32, i32, i32),
    pub confidence: f32,
    pub track_id: Option<u64>,
    pub labels: Vec<String>,
}

/// Reads the faces back through the analytics API, as any reader would (tests, examples).
pub fn read_faces(buffer: &gst::BufferRef) -> Vec<FaceRecord> {
    let Some(meta) = buffer.meta::<AnalyticsRelationMeta>() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for od in meta.iter::<gst_analytics::AnalyticsODMtd>() {
        if od.obj_type().is_none_or(|q| q.as_str() != FACE_TYPE) {
            continue;
        }
        let Ok(loc) = od.location() else { continue };
        let track_id = meta
            .iter_direct_related::<gst_analytics::AnalyticsTrackingMtd>(
                od.id(),
                RelTypes::RELATE_TO,
            )
            .next()
            .map(|t| t.info().0);
        let labels = meta
            .iter_direct_related::<gst_analytics::AnalyticsClassificationMtd>(
                od.id(),
                RelTypes::RELATE_TO,
            )
            .flat_map(|c| {
                c.iterate()
                    .map(|(q, _)| q.as_str().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        out.push(FaceRecord {
            bbox: (loc.x, loc.y, loc.w, loc.h),
            confidence: loc.loc_conf_lvl,
            track_id,
            labels,
        });
    }
    out
}
