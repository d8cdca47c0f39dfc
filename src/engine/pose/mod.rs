// SPDX-License-Identifier: MPL-2.0
//! Head pose from landmarks.
//!
//! # The angle convention (one for every solver)
//! Angles are in degrees, in the camera's view, for a face whose rotation from the frontal pose is
//! `R = Rx(-pitch) · Ry(-yaw) · Rz(roll_sign · roll)` in a frame with x to the image's right, y up
//! and z towards the camera:
//! - **yaw > 0**: the face turns towards the image's left (the subject looks to their right);
//! - **pitch > 0**: the chin goes up (the subject looks up);
//! - **roll > 0**: the head tilts so that the top of the face moves towards the image's right
//!   (clockwise on screen). Checked on the AFLW2000-3D labels, whose convention this is.
//!
//! A frontal face looking into the camera is (0, 0, 0).

pub mod canonical;
pub mod fusion;
pub mod perspective;
pub mod rigid;
pub mod seed;
pub mod solver;

/// How a face's angles are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoseMethod {
    /// The rigid fit and the head-pose regressor, blended by how turned the face is (see
    /// [`fusion`]); the default when a regressor is loaded.
    #[default]
    Fused,
    /// The head-pose regressor alone.
    Regression,
    /// Rigid fit of a 3-D reference face (the whole canonical face for FaceMesh; 14 matching
    /// points for 98-point WFLW landmarks, fitted on x and y since PFLD gives no depth); the
    /// default without a regressor.
    Rigid,
    /// The seed project's linear formula on 98 WFLW landmarks (see [`seed`]).
    SeedLinear,
}

impl PoseMethod {
    pub const ALL: [PoseMethod; 4] = [
        PoseMethod::Fused,
        PoseMethod::Regression,
        PoseMethod::Rigid,
        PoseMethod::SeedLinear,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PoseMethod::Fused => "fused",
            PoseMethod::Regression => "regression",
            PoseMethod::Rigid => "rigid",
            PoseMethod::SeedLinear => "seed-linear",
        }
    }

    /// The method named `name`.
    pub fn from_name(name: &str) -> Option<PoseMethod> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether the method needs a head-pose regressor.
    pub fn needs_regressor(self) -> bool {
        matches!(self, PoseMethod::Fused | PoseMethod::Regression)
    }

    /// Whether the method fits the landmarks.
    pub fn uses_landmarks(self) -> bool {
        !matches!(self, PoseMethod::Regression)
    }
}

/// Yaw, pitch and roll in degrees (see the module documentation for the convention).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pose {
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
}

/// A 3×3 rotation matrix, row-major, in the camera frame (x right, y up, z towards the camera).
pub type Rotation = [[f32; 3]; 3];

/// The sign that turns the z-axis angle of the decomposition into our roll.
const ROLL_SIGN: f32 = -1.0;

impl Pose {
    /// Angles of a rotation matrix, decomposed as `Rx(a) · Ry(b) · Rz(c)`.
    ///
    /// Every rotation has two such decompositions, (yaw, pitch, roll) and (180° - yaw, pitch +
    /// 180°, roll + 180°) up to wrapping. The one with the smaller pitch and roll is chosen: a
    /// head turns all the way round in yaw but hardly nods or tilts past 90°, so a face seen from
    /// behind one shoulder reads yaw 120° rather than yaw 60° upside down. (AFLW2000-3D labels
    /// and WHENet's outputs use this form.)
    pub fn from_rotation(r: &Rotation) -> Pose {
        let b = r[0][2].clamp(-1.0, 1.0).asin();
        let (a, c) = if r[0][2].abs() < 0.9999 {
            ((-r[1][2]).atan2(r[2][2]), (-r[0][1]).atan2(r[0][0]))
        } else {
            // Gimbal lock: put everything in a.
            (r[2][1].atan2(r[1][1]), 0.0)
        };
        let first = Pose {
            yaw: -b.to_degrees(),
            pitch: -a.to_degrees(),
            roll: ROLL_SIGN * c.to_degrees(),
        };
        let second = Pose {
            yaw: wrap_degrees(-180.0 - first.yaw),
            pitch: wrap_degrees(first.pitch + 180.0),
            roll: wrap_degrees(first.roll + 180.0),
        };
        let tilt = |p: &Pose| p.pitch.abs() + p.roll.abs();
        if tilt(&second) + 1e-3 < tilt(&first) {
            second
        } else {
            first
        }
    }

    /// The rotation of these angles (inverse of [`Pose::from_rotation`]).
    pub fn to_rotation(&self) -> Rotation {
        let a = -self.pitch.to_radians();
        let b = -self.yaw.to_radians();
        let c = ROLL_SIGN * self.roll.to_radians();
        let rx = [
            [1.0, 0.0, 0.0],
            [0.0, a.cos(), -a.sin()],
            [0.0, a.sin(), a.cos()],
        ];
        let ry = [
            [b.cos(), 0.0, b.sin()],
            [0.0, 1.0, 0.0],
            [-b.sin(), 0.0, b.cos()],
        ];
        let rz = [
            [c.cos(), -c.sin(), 0.0],
            [c.sin(), c.cos(), 0.0],
            [0.0, 0.0, 1.0],
        ];
        mat_mul(&mat_mul(&rx, &ry), &rz)
    }

    pub fn is_finite(&self) -> bool {
        self.yaw.is_finite() && self.pitch.is_finite() && self.roll.is_finite()
    }
}

/// An angle in degrees brought into (-180, 180].
pub fn wrap_degrees(v: f32) -> f32 {
    let w = v.rem_euclid(360.0);
    if w > 180.0 { w - 360.0 } else { w }
}

pub fn mat_mul(a: &Rotation, b: &Rotation) -> Rotation {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles_round_trip_through_the_rotation() {
        for (yaw, pitch, roll) in [
            (0.0, 0.0, 0.0),
            (30.0, -10.0, 5.0),
            (-70.0, 25.0, -40.0),
            (10.0, 60.0, 80.0),
        ] {
            let p = Pose { yaw, pitch, roll };
            let q = Pose::from_rotation(&p.to_rotation());
            assert!(
                (p.yaw - q.yaw).abs() < 1e-3
                    && (p.pitch - q.pitch).abs() < 1e-3
                    && (p.roll - q.roll).abs() < 1e-3,
                "{p:?} {q:?}"
            );
        }
    }

    #[test]
    fn yaw_past_ninety_degrees_keeps_pitch_and_roll_small() {
        for (yaw, pitch, roll) in [
            (95.0, 10.0, 5.0),
            (-120.0, -20.0, 30.0),
            (170.0, 5.0, -8.0),
            (-99.0, 31.0, -31.0),
        ] {
            let p = Pose { yaw, pitch, roll };
            let q = Pose::from_rotation(&p.to_rotation());
            assert!(
                (p.yaw - q.yaw).abs() < 1e-2
                    && (p.pitch - q.pitch).abs() < 1e-2
                    && (p.roll - q.roll).abs() < 1e-2,
                "{p:?} {q:?}"
            );
        }
        assert_eq!(wrap_degrees(190.0), -170.0);
        assert_eq!(wrap_degrees(-180.0), 180.0);
    }

    #[test]
    fn positive_yaw_turns_the_nose_to_the_image_left_and_positive_pitch_lifts_it() {
        let nose = |p: Pose| {
            let r = p.to_rotation();
            [r[0][2], r[1][2]]
        };
        assert!(
            nose(Pose {
                yaw: 30.0,
                ..Default::default()
            })[0]
                < -0.4
        );
        assert!(
            nose(Pose {
                pitch: 30.0,
                ..Default::default()
            })[1]
                > 0.4
        );
    }

    #[test]
    fn positive_roll_moves_the_top_of_the_face_to_the_image_right() {
        let r = Pose {
            roll: 20.0,
            ..Default::default()
        }
        .to_rotation();
        // The face's up vector (0, 1, 0) after rotation.
        assert!(r[0][1] > 0.3);
    }
}
