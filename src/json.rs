// SPDX-License-Identifier: MPL-2.0
//! JSON Lines output: one object per frame, pixel coordinates, angles in degrees.

use std::fmt::Write as _;

use crate::engine::Face;
use crate::engine::pose::Pose;

fn number(out: &mut String, v: f32) {
    if v.is_finite() {
        let _ = write!(out, "{}", (v as f64 * 1000.0).round() / 1000.0);
    } else {
        out.push_str("null");
    }
}

/// `"key":{"yaw":…,"pitch":…,"roll":…}`, or `"key":null`.
fn angles(out: &mut String, key: &str, pose: Option<Pose>) {
    let _ = write!(out, ",\"{key}\":");
    match pose {
        Some(p) => {
            out.push_str("{\"yaw\":");
            number(out, p.yaw);
            out.push_str(",\"pitch\":");
            number(out, p.pitch);
            out.push_str(",\"roll\":");
            number(out, p.roll);
            out.push('}');
        }
        None => out.push_str("null"),
    }
}

/// One frame as a JSON object on one line (no trailing newline).
pub fn frame_line(pts: Option<u64>, width: u32, height: u32, faces: &[Face]) -> String {
    let mut s = String::with_capacity(256 + faces.len() * 468 * 24);
    s.push_str("{\"pts\":");
    match pts {
        Some(p) => {
            let _ = write!(s, "{p}");
        }
        None => s.push_str("null"),
    }
    let _ = write!(s, ",\"width\":{width},\"height\":{height},\"faces\":[");
    for (i, f) in faces.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{{\"id\":{},\"box\":[", f.id);
        for (k, v) in [f.bbox.x0, f.bbox.y0, f.bbox.x1, f.bbox.y1]
            .into_iter()
            .enumerate()
        {
            if k > 0 {
                s.push(',');
            }
            number(&mut s, v);
        }
        s.push_str("],\"score\":");
        number(&mut s, f.score);
        s.push_str(",\"presence\":");
        number(&mut s, f.presence);
        s.push_str(",\"yaw\":");
        number(&mut s, f.pose.yaw);
        s.push_str(",\"pitch\":");
        number(&mut s, f.pose.pitch);
        s.push_str(",\"roll\":");
        number(&mut s, f.pose.roll);
        let _ = write!(s, ",\"method\":\"{}\"", f.method.name());
        angles(&mut s, "fit", f.fit_pose);
        angles(&mut s, "regression", f.regressed_pose);
        s.push_str(",\"regression_weight\":");
        number(&mut s, f.regressor_weight);
        s.push_str(",\"landmarks\":[");
        for (k, p) in f.landmarks.iter().enumerate() {
            if k > 0 {
                s.push(',');
            }
            s.push('[');
            number(&mut s, p[0]);
            s.push(',');
            number(&mut s, p[1]);
            s.push(',');
            number(&mut s, p[2]);
            s.push(']');
        }
        s.push_str("]}");
    }
    s.push_str("]}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::geometry::{BBox, Point};
    use crate::engine::pose::PoseMethod;

    #[test]
    fn a_frame_line_holds_every_field_and_nulls_for_non_finite_values() {
        let face = Face {
            id: 3,
            bbox: BBox::new(1.0, 2.0, 3.5, 4.0),
            score: 0.9,
            keypoints: [Point::default(); 5],
            landmarks: vec![[1.0, 2.0, f32::NAN]],
            presence: 1.0,
            pose: Pose {
                yaw: 10.0,
                pitch: -5.25,
                roll: 0.0,
            },
            rotation: Pose::default().to_rotation(),
            method: PoseMethod::Fused,
            fit_pose: Some(Pose {
                yaw: 8.0,
                pitch: -5.0,
                roll: 0.5,
            }),
            regressed_pose: None,
            regressor_weight: 0.25,
            scale: 1.0,
            fit_error: 0.0,
        };
        let line = frame_line(Some(42), 640, 480, &[face]);
        assert_eq!(
            line,
            "{\"pts\":42,\"width\":640,\"height\":480,\"faces\":[{\"id\":3,\"box\":[1,2,3.5,4],\"score\":0.9,\
             \"presence\":1,\"yaw\":10,\"pitch\":-5.25,\"roll\":0,\"method\":\"fused\",\
             \"fit\":{\"yaw\":8,\"pitch\":-5,\"roll\":0.5},\"regression\":null,\
             \"regression_weight\":0.25,\"landmarks\":[[1,2,null]]}]}"
        );
        assert_eq!(
            frame_line(None, 1, 1, &[]),
            "{\"pts\":null,\"width\":1,\"height\":1,\"faces\":[]}"
        );
    }
}
