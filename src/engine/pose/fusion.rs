// SPDX-License-Identifier: MPL-2.0
//! Fusing the landmark fit with a head-pose regressor.
//!
//! The fit to landmarks is the more exact of the two on faces that look roughly at the camera
//! (AFLW2000-3D: 2.4° below 30° of yaw) but falls apart on profiles, where the landmark model
//! places its points badly and its yaw saturates near 50°; regressors keep 9-13° there. Each face
//! gets a weight for the regressor from how far the face is turned from the camera (the angle
//! between its forward axis and the viewing ray), judged from both estimates: none below
//! [`Fusion::start`], all above [`Fusion::full`], a smooth step between. The two rotations are
//! blended by spherical interpolation of their quaternions, so nothing wraps around or locks near
//! ±90° of yaw the way averaging Euler angles would.
//!
//! The turn is the larger of the two estimates' turns: the fit's saturates on profiles (FaceMesh
//! reads about 50° for a face turned 80°), so a face counts as turned when either says so. Start
//! and full were chosen on a fifth of AFLW2000-3D (docs/accuracy.md, "How the fusion was chosen").

use super::Rotation;

/// When the regressor takes over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fusion {
    /// Turn (degrees) up to which the landmark fit alone counts.
    pub start: f32,
    /// Turn (degrees) from which the regressor alone counts.
    pub full: f32,
}

/// Chosen on a fifth of AFLW2000-3D (every fifth image) and checked on the rest; see docs/accuracy.md.
pub const DEFAULT_FUSION: Fusion = Fusion {
    start: 0.0,
    full: 80.0,
};

impl Default for Fusion {
    fn default() -> Self {
        DEFAULT_FUSION
    }
}

/// The angle (degrees) between the face's forward axis and the line of sight: 0 for a face
/// looking into the camera, 90 in profile.
pub fn turn(r: &Rotation) -> f32 {
    r[2][2].clamp(-1.0, 1.0).acos().to_degrees()
}

impl Fusion {
    /// The regressor's weight, 0..=1, for a face whose fit says `fit` and regressor says `reg`.
    pub fn weight(&self, fit: &Rotation, reg: &Rotation) -> f32 {
        let t = turn(reg).max(turn(fit));
        if !t.is_finite() {
            return 0.0;
        }
        if self.full <= self.start {
            return if t >= self.full { 1.0 } else { 0.0 };
        }
        let x = ((t - self.start) / (self.full - self.start)).clamp(0.0, 1.0);
        x * x * (3.0 - 2.0 * x)
    }

    /// The fused rotation and the regressor's weight in it.
    pub fn fuse(&self, fit: &Rotation, reg: &Rotation) -> (Rotation, f32) {
        let w = self.weight(fit, reg);
        (slerp(fit, reg, w), w)
    }
}

/// A unit quaternion (w, x, y, z).
pub type Quaternion = [f64; 4];

/// The quaternion of a rotation matrix (Shepperd's method: the largest diagonal term first).
pub fn quaternion(r: &Rotation) -> Quaternion {
    let m = |i: usize, j: usize| r[i][j] as f64;
    let trace = m(0, 0) + m(1, 1) + m(2, 2);
    let q = if trace > 0.0 {
        let s = (trace + 1.0).sqrt() * 2.0;
        [
            0.25 * s,
            (m(2, 1) - m(1, 2)) / s,
            (m(0, 2) - m(2, 0)) / s,
            (m(1, 0) - m(0, 1)) / s,
        ]
    } else if m(0, 0) > m(1, 1) && m(0, 0) > m(2, 2) {
        let s = (1.0 + m(0, 0) - m(1, 1) - m(2, 2)).sqrt() * 2.0;
        [
            (m(2, 1) - m(1, 2)) / s,
            0.25 * s,
            (m(0, 1) + m(1, 0)) / s,
            (m(0, 2) + m(2, 0)) / s,
        ]
    } else if m(1, 1) > m(2, 2) {
        let s = (1.0 + m(1, 1) - m(0, 0) - m(2, 2)).sqrt() * 2.0;
        [
            (m(0, 2) - m(2, 0)) / s,
            (m(0, 1) + m(1, 0)) / s,
            0.25 * s,
            (m(1, 2) + m(2, 1)) / s,
        ]
    } else {
        let s = (1.0 + m(2, 2) - m(0, 0) - m(1, 1)).sqrt() * 2.0;
        [
            (m(1, 0) - m(0, 1)) / s,
            (m(0, 2) + m(2, 0)) / s,
            (m(1, 2) + m(2, 1)) / s,
            0.25 * s,
        ]
    };
    normalise(q)
}

fn normalise(q: Quaternion) -> Quaternion {
    let n = q.iter().map(|v| v * v).sum::<f64>().sqrt();
    if n > 0.0 && n.is_finite() {
        q.map(|v| v / n)
    } else {
        [1.0, 0.0, 0.0, 0.0]
    }
}

/// The rotation matrix of a unit quaternion.
pub fn rotation(q: &Quaternion) -> Rotation {
    super::rigid::quaternion_to_rotation(*q).map(|row| row.map(|v| v as f32))
}

/// Spherical interpolation from `a` (t = 0) to `b` (t = 1) along the shorter arc.
pub fn slerp(a: &Rotation, b: &Rotation, t: f32) -> Rotation {
    if t <= 0.0 {
        return *a;
    }
    if t >= 1.0 {
        return *b;
    }
    let qa = quaternion(a);
    let mut qb = quaternion(b);
    let mut dot: f64 = qa.iter().zip(&qb).map(|(x, y)| x * y).sum();
    if dot < 0.0 {
        qb = qb.map(|v| -v);
        dot = -dot;
    }
    let t = t as f64;
    let q = if dot > 0.9995 {
        normalise(std::array::from_fn(|i| qa[i] + t * (qb[i] - qa[i])))
    } else {
        let theta = dot.clamp(-1.0, 1.0).acos();
        let (sa, sb) = (((1.0 - t) * theta).sin(), (t * theta).sin());
        let s = theta.sin();
        normalise(std::array::from_fn(|i| (sa * qa[i] + sb * qb[i]) / s))
    };
    rotation(&q)
}

/// The angle (degrees) of the rotation that takes `a` to `b`.
pub fn angle_between(a: &Rotation, b: &Rotation) -> f32 {
    let (qa, qb) = (quaternion(a), quaternion(b));
    let dot: f64 = qa.iter().zip(&qb).map(|(x, y)| x * y).sum();
    (2.0 * dot.abs().clamp(0.0, 1.0).acos()).to_degrees() as f32
}

#[cfg(test)]
mod tests {
    use super::super::Pose;
    use super::*;

    fn rot(yaw: f32, pitch: f32, roll: f32) -> Rotation {
        Pose { yaw, pitch, roll }.to_rotation()
    }

    #[test]
    fn quaternions_round_trip_every_branch() {
        for (y, p, r) in [
            (0.0, 0.0, 0.0),
            (170.0, 0.0, 0.0),
            (0.0, 175.0, 0.0),
            (0.0, 0.0, 179.0),
            (89.0, 30.0, -60.0),
            (-120.0, -45.0, 100.0),
        ] {
            let m = rot(y, p, r);
            let back = rotation(&quaternion(&m));
            for i in 0..3 {
                for j in 0..3 {
                    assert!((m[i][j] - back[i][j]).abs() < 1e-5, "{y} {p} {r}");
                }
            }
        }
    }

    #[test]
    fn halfway_between_two_yaws_is_their_mean_even_across_the_back() {
        let h = Pose::from_rotation(&slerp(&rot(10.0, 0.0, 0.0), &rot(50.0, 0.0, 0.0), 0.5));
        assert!((h.yaw - 30.0).abs() < 1e-3 && h.pitch.abs() < 1e-3, "{h:?}");
        // 170° and -170° are 20° apart: halfway is 180°, not 0° as averaging the numbers gives.
        let back = slerp(&rot(170.0, 0.0, 0.0), &rot(-170.0, 0.0, 0.0), 0.5);
        assert!(angle_between(&back, &rot(180.0, 0.0, 0.0)) < 1e-2);
        // Near the ±90° yaw where Euler angles lock, the blend stays on the arc between the two.
        let (a, b) = (rot(85.0, 20.0, -10.0), rot(95.0, -15.0, 30.0));
        let m = slerp(&a, &b, 0.5);
        let (da, db) = (angle_between(&a, &m), angle_between(&m, &b));
        assert!((da - db).abs() < 1e-2 && (da + db - angle_between(&a, &b)).abs() < 1e-2);
    }

    #[test]
    fn the_regressor_counts_more_the_more_the_face_is_turned() {
        let f = DEFAULT_FUSION;
        let w = |yaw: f32| f.weight(&rot(yaw, 0.0, 0.0), &rot(yaw, 0.0, 0.0));
        assert_eq!(w(0.0), 0.0);
        assert!(w(5.0) < 0.02);
        assert_eq!(w(-(f.full + 1.0)), 1.0);
        assert!(w(30.0) < w(40.0) && w(40.0) < w(50.0));
        // Either estimate can tell that the face is turned: a fit saturated at 50° with a
        // regressor at 80° counts as 80°, and the other way round.
        let mixed = f.weight(&rot(50.0, 0.0, 0.0), &rot(80.0, 0.0, 0.0));
        assert_eq!(mixed, w(80.0));
        assert_eq!(
            f.weight(&rot(80.0, 0.0, 0.0), &rot(50.0, 0.0, 0.0)),
            w(80.0)
        );
        let (fused, weight) = f.fuse(&rot(0.0, 0.0, 1.0), &rot(0.0, 0.0, 0.0));
        assert_eq!(weight, 0.0);
        assert_eq!(fused, rot(0.0, 0.0, 1.0));
        let late = Fusion {
            start: 20.0,
            full: 60.0,
        };
        assert_eq!(late.weight(&rot(15.0, 0.0, 0.0), &rot(18.0, 0.0, 0.0)), 0.0);
        assert_eq!(turn(&rot(0.0, 90.0, 0.0)).round(), 90.0);
    }
}
