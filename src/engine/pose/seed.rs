// SPDX-License-Identifier: MPL-2.0
//! The seed project's (FacePose_pytorch) linear head-pose formula on 98 WFLW landmarks, in the
//! seed's crop coordinates (a 112 × 112 square crop around the detector box), converted to this
//! project's angle convention:
//! - F is the foot of point 51 (top of the nose bridge) on the line from point 1 to point 31 (the
//!   face contour near the ears);
//! - yaw = ((|p1 p31| / 2 − |p1 F|) / (|p1 p31| / 2)) · 71.58 + 0.7037;
//! - pitch = 1.497 · |p51 F| · (−1 when p51 is above F) + 18.97 (pixels of the 112-pixel crop);
//! - roll = atan(|Δy| / |Δx|) between points 60 and 72 (outer eye corners), negative when point
//!   60 is the lower one.
//!
//! Signs: the seed's yaw and roll already follow this project's convention (yaw > 0 when the face
//! turns to the image's left, roll > 0 when the face turns clockwise on screen); its pitch is
//! positive when the chin goes down, so it is negated here (checked on AFLW2000-3D).

use super::Pose;
use crate::engine::geometry::{Point, RotatedRect};

/// The crop size the formula's constants were fitted for.
pub const CROP_SIZE: f32 = 112.0;
/// Number of landmarks the formula reads.
pub const POINTS: usize = 98;

/// The seed's angles from 98 landmarks given in crop pixels (112 × 112), in the seed's own signs.
/// `None` for degenerate landmarks, and when an angle is not finite or outside ±180° (the linear
/// formula is unbounded: landmarks far outside the crop give any number of degrees).
pub fn seed_angles(p: &[Point]) -> Option<(f32, f32, f32)> {
    if p.len() < POINTS {
        return None;
    }
    let (a, b, n) = (p[1], p[31], p[51]);
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len2 = dx * dx + dy * dy;
    if !(len2 > 0.0) {
        return None;
    }
    let t = ((n.x - a.x) * dx + (n.y - a.y) * dy) / len2;
    let foot = Point::new(a.x + t * dx, a.y + t * dy);
    let dist = |u: Point, v: Point| ((u.x - v.x).powi(2) + (u.y - v.y).powi(2)).sqrt();
    let half = len2.sqrt() / 2.0;
    let yaw = (half - dist(a, foot)) / half * 71.58 + 0.7037;
    let above = n.y < foot.y;
    let pitch = 1.497 * dist(n, foot) * if above { -1.0 } else { 1.0 } + 18.97;
    let (e0, e1) = (p[60], p[72]);
    let roll_mag = ((e1.y - e0.y).abs() / (e1.x - e0.x).abs())
        .atan()
        .to_degrees();
    let roll = if e0.y > e1.y { -roll_mag } else { roll_mag };
    [yaw, pitch, roll]
        .iter()
        .all(|v| v.is_finite() && v.abs() <= 180.0)
        .then_some((yaw, pitch, roll))
}

/// Pose from frame landmarks and the axis-aligned square crop they came from.
pub fn pose(landmarks: &[[f32; 3]], crop: &RotatedRect) -> Option<Pose> {
    if !(crop.side > 0.0) {
        return None;
    }
    let k = CROP_SIZE / crop.side;
    let x0 = crop.centre.x - crop.side * 0.5;
    let y0 = crop.centre.y - crop.side * 0.5;
    let pts: Vec<Point> = landmarks
        .iter()
        .map(|l| Point::new((l[0] - x0) * k, (l[1] - y0) * k))
        .collect();
    let (yaw, pitch, roll) = seed_angles(&pts)?;
    Some(Pose {
        yaw,
        pitch: -pitch,
        roll,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Vec<Point> {
        let mut p = vec![Point::new(56.0, 56.0); POINTS];
        p[1] = Point::new(10.0, 50.0);
        p[31] = Point::new(102.0, 50.0);
        p[51] = Point::new(56.0, 40.0);
        p[60] = Point::new(30.0, 45.0);
        p[72] = Point::new(82.0, 45.0);
        p
    }

    #[test]
    fn hand_computed_values_on_a_symmetric_face() {
        // F = (56, 50): |p1 F| = 46 = half of 92, so yaw = 0.7037; p51 is 10 px above F, so
        // pitch = -14.97 + 18.97 = 4.0; level eyes give roll 0.
        let (yaw, pitch, roll) = seed_angles(&layout()).unwrap();
        assert!((yaw - 0.7037).abs() < 1e-4, "{yaw}");
        assert!((pitch - 4.0).abs() < 1e-4, "{pitch}");
        assert!(roll.abs() < 1e-6);
    }

    #[test]
    fn hand_computed_values_on_a_turned_tilted_face() {
        let mut p = layout();
        p[51] = Point::new(33.0, 60.0); // F = (33, 50), |p1 F| = 23, below the line by 10
        p[60] = Point::new(30.0, 50.0);
        p[72] = Point::new(82.0, 45.0); // p60 lower: negative roll
        let (yaw, pitch, roll) = seed_angles(&p).unwrap();
        assert!((yaw - (0.5 * 71.58 + 0.7037)).abs() < 1e-3, "{yaw}");
        assert!((pitch - (14.97 + 18.97)).abs() < 1e-3, "{pitch}");
        assert!(
            (roll + (5.0f32 / 52.0).atan().to_degrees()).abs() < 1e-4,
            "{roll}"
        );
    }

    #[test]
    fn degenerate_input_gives_none() {
        assert!(seed_angles(&[Point::default(); 10]).is_none());
        assert!(seed_angles(&vec![Point::default(); POINTS]).is_none());
    }
}
