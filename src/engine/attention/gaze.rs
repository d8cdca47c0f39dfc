// SPDX-License-Identifier: MPL-2.0
//! Where a head is and where it points, in the camera's frame.
//!
//! Output frame (what users read): x to the image's right, y down, z forward from the camera
//! into the scene, in centimetres, the camera's centre at the origin. The pose module's frame (x
//! right, y up, z towards the camera) differs from it by the signs of y and z.

use super::super::Face;
use super::super::pose::perspective::Camera;
use super::Target;

/// Width in centimetres of a RetinaFace box around a face at the reference face's scale: box
/// width in pixels divided by the rigid fit's pixels per centimetre, the median over the faces
/// of a crowd video (the tenth and ninetieth percentiles are 13.4 and 18.2: a box-only position
/// is rough, about ±15 % in distance).
pub const BOX_WIDTH_CM: f64 = 15.4;

pub use super::super::face::PositionSource;

fn norm(v: [f64; 3]) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The angle between two unit vectors, degrees.
fn angle_between(a: [f64; 3], b: [f64; 3]) -> f64 {
    dot(a, b).clamp(-1.0, 1.0).acos().to_degrees()
}

/// The position of `face`'s head in centimetres (output frame), through `camera`.
///
/// The distance along the face's viewing ray is the focal length over the face's scale: a
/// reference-face centimetre at distance `d` spans `focal / d` pixels. The rigid fit measures
/// that scale in the image of a virtual camera turned to look along the ray (see
/// `pose::perspective`), so the distance is along the ray; the ray is the one through the mean of
/// the landmarks (the image of the reference face's centre). Without a usable fit, the box width
/// against [`BOX_WIDTH_CM`] gives the scale and the box centre the ray.
pub fn head_position(face: &Face, camera: &Camera) -> Option<([f64; 3], PositionSource)> {
    let fitted = face.scale.is_finite() && face.scale > 0.0 && !face.landmarks.is_empty();
    let (scale, (x, y), source) = if fitted {
        let n = face.landmarks.len() as f64;
        let (sx, sy) = face.landmarks.iter().fold((0.0, 0.0), |(sx, sy), p| {
            (sx + p[0] as f64, sy + p[1] as f64)
        });
        (face.scale as f64, (sx / n, sy / n), PositionSource::Fit)
    } else {
        let w = (face.bbox.x1 - face.bbox.x0) as f64;
        let centre = (
            (face.bbox.x0 + face.bbox.x1) as f64 * 0.5,
            (face.bbox.y0 + face.bbox.y1) as f64 * 0.5,
        );
        (w / BOX_WIDTH_CM, centre, PositionSource::Box)
    };
    if !(scale.is_finite() && scale > 0.0 && x.is_finite() && y.is_finite()) {
        return None;
    }
    let distance = camera.focal / scale;
    // The ray through (x, y) in the output frame: x right, y down, z forward.
    let ray = [x - camera.cx, y - camera.cy, camera.focal];
    let n = norm(ray);
    let p = ray.map(|v| v / n * distance);
    p.iter().all(|v| v.is_finite()).then_some((p, source))
}

/// The head's forward axis (where the face points) for the face's reported angles, a unit vector
/// in the output frame.
pub fn forward_axis(face: &Face) -> [f64; 3] {
    // The frontal face looks along +z (towards the camera in the pose frame): its forward axis
    // is the rotation's third column, in a frame with y up and z towards the camera.
    let r = face.pose.to_rotation();
    let v = [r[0][2] as f64, -(r[1][2] as f64), -(r[2][2] as f64)];
    let n = norm(v);
    if n > 0.0 && n.is_finite() {
        v.map(|c| c / n)
    } else {
        [0.0, 0.0, -1.0]
    }
}

/// The angle in degrees between the forward axis and the direction from the head at `position`
/// to the camera; without a position (no field of view: the angles are relative to each face's
/// own line of sight), between the forward axis and that line of sight.
pub fn camera_angle(forward: [f64; 3], position: Option<[f64; 3]>) -> f64 {
    let to_camera = match position {
        Some(p) if norm(p) > 0.0 => p.map(|v| -v / norm(p)),
        _ => [0.0, 0.0, -1.0],
    };
    angle_between(forward, to_camera)
}

/// Where the ray from `position` along `forward` meets the camera's plane (z = 0, where the
/// target lies), in centimetres from the target's top-left corner (x right, y down); `None` when
/// it points away from the plane or lands outside the rectangle.
pub fn target_point(position: [f64; 3], forward: [f64; 3], target: &Target) -> Option<[f64; 2]> {
    if forward[2].abs() < 1e-9 {
        return None;
    }
    let t = -position[2] / forward[2];
    if !(t > 0.0 && t.is_finite()) {
        return None;
    }
    let u = position[0] + t * forward[0] - target.x;
    let v = position[1] + t * forward[1] - target.y;
    let inside = (0.0..=target.width).contains(&u) && (0.0..=target.height).contains(&v);
    inside.then_some([u, v])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gaze_ray_meets_a_screen_below_the_camera_when_the_head_looks_down() {
        // A 52 × 32 cm screen whose top edge is 2 cm below the camera, centred under it.
        let screen = Target::parse("-26,2,52,32", "attention-target").unwrap();
        let head = [0.0, 0.0, 60.0];
        // Straight at the camera: above the screen.
        assert_eq!(target_point(head, [0.0, 0.0, -1.0], &screen), None);
        // 20° down: 60 · tan 20° = 21.8 cm below the camera.
        let down = 20f64.to_radians();
        let p = target_point(head, [0.0, down.sin(), -down.cos()], &screen).unwrap();
        assert!((p[0] - 26.0).abs() < 1e-9 && (p[1] - (60.0 * down.tan() - 2.0)).abs() < 1e-9);
        // Away from the screen's plane: no hit.
        assert_eq!(target_point(head, [0.0, 0.3, 0.95], &screen), None);
        // The camera angle of a head straight ahead of the camera, looking at it: 0.
        assert!(camera_angle([0.0, 0.0, -1.0], Some(head)) < 1e-9);
    }
}
