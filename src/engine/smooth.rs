// SPDX-License-Identifier: MPL-2.0
//! Temporal smoothing of one face's results: a One-Euro filter (Casiez, Roussel and Vogel, CHI
//! 2012) per value. Each value goes through a first-order low-pass whose cut-off frequency rises
//! with the value's own (smoothed) speed, so a still face is steadied and a fast turn passes with
//! little lag.
//!
//! One knob, `strength` in 0..=1, sets the cut-off at rest: `10^(1 - 2·strength)` Hz, i.e. 10 Hz
//! (barely filtered) at 0, 1 Hz at 0.5, 0.1 Hz at 1. The speed coefficient is fixed per kind of
//! value (angles in degrees per second; positions in face widths per second).

use super::face::Face;
use super::geometry::{BBox, Point};
use super::pose::{Pose, wrap_degrees};

/// Cut-off of the speed estimate, Hz.
const SPEED_CUTOFF_HZ: f32 = 2.0;
/// Extra cut-off per degree per second of turning.
const ANGLE_BETA: f32 = 0.2;
/// Extra cut-off per face width per second of movement.
const POSITION_BETA: f32 = 20.0;
/// Frame interval assumed when the stream gives no usable timestamps.
pub const DEFAULT_FRAME_SECONDS: f64 = 1.0 / 30.0;

/// The resting cut-off frequency for a smoothing strength in 0..=1.
pub fn rest_cutoff_hz(strength: f32) -> f32 {
    10f32.powf(1.0 - 2.0 * strength.clamp(0.0, 1.0))
}

fn alpha(cutoff_hz: f32, dt: f32) -> f32 {
    let tau = 1.0 / (2.0 * std::f32::consts::PI * cutoff_hz);
    1.0 / (1.0 + tau / dt)
}

/// One value's filter state.
#[derive(Debug, Clone, Copy, Default)]
struct OneEuro {
    value: f32,
    speed: f32,
}

impl OneEuro {
    fn new(value: f32) -> Self {
        OneEuro { value, speed: 0.0 }
    }

    /// Filters `x` taken `dt` seconds after the previous value. `scale` divides the speed before
    /// it raises the cut-off (the face width for positions, 1 for angles). `delta` is `x` minus the
    /// previous value, given separately so angles can take the short way round.
    fn step(&mut self, delta: f32, dt: f32, rest_hz: f32, beta: f32, scale: f32) -> f32 {
        if !delta.is_finite() {
            return self.value;
        }
        let raw_speed = delta / dt;
        self.speed += alpha(SPEED_CUTOFF_HZ, dt) * (raw_speed - self.speed);
        let cutoff = rest_hz + beta * self.speed.abs() / scale.max(1e-6);
        self.value += alpha(cutoff, dt) * delta;
        self.value
    }
}

/// Smoothing state of one tracked face: angles, box, key points and landmarks.
#[derive(Debug, Clone)]
pub struct FaceSmoother {
    angles: [OneEuro; 3],
    bbox: [OneEuro; 4],
    keypoints: [OneEuro; 10],
    landmarks: Vec<OneEuro>,
}

impl FaceSmoother {
    pub fn new(face: &Face) -> Self {
        FaceSmoother {
            angles: [face.pose.yaw, face.pose.pitch, face.pose.roll].map(OneEuro::new),
            bbox: bbox_values(&face.bbox).map(OneEuro::new),
            keypoints: keypoint_values(&face.keypoints).map(OneEuro::new),
            landmarks: face
                .landmarks
                .iter()
                .flat_map(|p| p.iter().copied())
                .map(OneEuro::new)
                .collect(),
        }
    }

    /// Replaces the face's angles, box, key points and landmarks by their filtered values, `dt`
    /// seconds after the previous call. Non-finite inputs keep the previous value.
    pub fn apply(&mut self, face: &mut Face, dt: f32, strength: f32) {
        let rest = rest_cutoff_hz(strength);
        let dt = if dt.is_finite() && dt > 0.0 {
            dt
        } else {
            DEFAULT_FRAME_SECONDS as f32
        };
        let raw = [face.pose.yaw, face.pose.pitch, face.pose.roll];
        let mut out = [0.0f32; 3];
        for ((f, x), o) in self.angles.iter_mut().zip(raw).zip(out.iter_mut()) {
            let v = f.step(wrap_degrees(x - f.value), dt, rest, ANGLE_BETA, 1.0);
            *o = wrap_degrees(v);
            f.value = *o;
        }
        let pose = Pose {
            yaw: out[0],
            pitch: out[1],
            roll: out[2],
        };
        if pose != face.pose {
            face.pose = pose;
            face.rotation = pose.to_rotation();
        }

        let width = face.bbox.width().max(1.0);
        let position =
            |f: &mut OneEuro, x: f32| f.step(x - f.value, dt, rest, POSITION_BETA, width);
        let b: Vec<f32> = self
            .bbox
            .iter_mut()
            .zip(bbox_values(&face.bbox))
            .map(|(f, x)| position(f, x))
            .collect();
        face.bbox = BBox::new(b[0], b[1], b[2], b[3]);
        let k: Vec<f32> = self
            .keypoints
            .iter_mut()
            .zip(keypoint_values(&face.keypoints))
            .map(|(f, x)| position(f, x))
            .collect();
        for (i, p) in face.keypoints.iter_mut().enumerate() {
            *p = Point::new(k[2 * i], k[2 * i + 1]);
        }
        if self.landmarks.len() == face.landmarks.len() * 3 {
            for (p, f) in face
                .landmarks
                .iter_mut()
                .zip(self.landmarks.chunks_exact_mut(3))
            {
                for (v, fc) in p.iter_mut().zip(f.iter_mut()) {
                    *v = position(fc, *v);
                }
            }
        } else {
            *self = FaceSmoother::new(face);
        }
    }
}

fn bbox_values(b: &BBox) -> [f32; 4] {
    [b.x0, b.y0, b.x1, b.y1]
}

fn keypoint_values(k: &[Point; 5]) -> [f32; 10] {
    std::array::from_fn(|i| if i % 2 == 0 { k[i / 2].x } else { k[i / 2].y })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(yaw: f32, x: f32) -> Face {
        Face {
            id: 0,
            bbox: BBox::new(x, 100.0, x + 100.0, 220.0),
            score: 1.0,
            keypoints: [Point::new(x + 30.0, 140.0); 5],
            landmarks: vec![[x + 50.0, 160.0, -3.0]; 4],
            presence: 1.0,
            pose: Pose {
                yaw,
                pitch: 0.0,
                roll: 0.0,
            },
            rotation: Pose::default().to_rotation(),
            scale: 1.0,
            fit_error: 0.0,
            attention: None,
            method: crate::engine::PoseMethod::Rigid,
            fit_pose: None,
            regressed_pose: None,
            regressor_weight: 0.0,
        }
    }

    /// A deterministic ±amplitude jitter.
    fn jitter(i: usize, amplitude: f32) -> f32 {
        let s = ((i as f32 * 12.9898).sin() * 43_758.547).rem_euclid(1.0);
        (s * 2.0 - 1.0) * amplitude
    }

    #[test]
    fn rest_cutoff_spans_ten_to_a_tenth_hertz() {
        assert!((rest_cutoff_hz(0.0) - 10.0).abs() < 1e-4);
        assert!((rest_cutoff_hz(0.5) - 1.0).abs() < 1e-4);
        assert!((rest_cutoff_hz(1.0) - 0.1).abs() < 1e-5);
    }

    #[test]
    fn a_still_face_is_steadied() {
        let mut s = FaceSmoother::new(&face(10.0, 200.0));
        let (mut raw_dev, mut out_dev) = (0.0f32, 0.0f32);
        for i in 1..300 {
            let mut f = face(10.0 + jitter(i, 1.0), 200.0 + jitter(i + 7, 1.0));
            raw_dev += (f.pose.yaw - 10.0).abs();
            s.apply(&mut f, 1.0 / 30.0, 0.5);
            if i > 30 {
                out_dev += (f.pose.yaw - 10.0).abs();
            }
            assert!(f.pose.yaw.is_finite() && f.bbox.is_finite());
        }
        assert!(
            out_dev < 0.5 * raw_dev,
            "jitter not reduced: {out_dev} vs {raw_dev}"
        );
    }

    #[test]
    fn a_fast_turn_passes_with_little_lag_at_moderate_strength() {
        // 300 degrees per second for half a second, then still.
        let mut s = FaceSmoother::new(&face(-60.0, 200.0));
        let mut worst = 0.0f32;
        let mut last = 0.0;
        for i in 1..=40 {
            let truth = (-60.0 + 10.0 * i as f32).min(60.0);
            let mut f = face(truth, 200.0);
            s.apply(&mut f, 1.0 / 30.0, 0.5);
            worst = worst.max((f.pose.yaw - truth).abs());
            last = f.pose.yaw;
        }
        assert!(worst < 3.0, "lag during the turn: {worst} degrees");
        assert!(
            (last - 60.0).abs() < 0.5,
            "settles on the new angle: {last}"
        );
    }

    #[test]
    fn angles_take_the_short_way_round() {
        let mut s = FaceSmoother::new(&face(179.0, 200.0));
        let mut f = face(-179.0, 200.0);
        s.apply(&mut f, 1.0 / 30.0, 1.0);
        assert!(
            f.pose.yaw.abs() > 178.0,
            "went the long way: {}",
            f.pose.yaw
        );
    }

    #[test]
    fn non_finite_values_keep_the_previous_value() {
        let mut s = FaceSmoother::new(&face(5.0, 200.0));
        let mut f = face(f32::NAN, 200.0);
        f.landmarks[0][0] = f32::INFINITY;
        s.apply(&mut f, 1.0 / 30.0, 0.5);
        assert_eq!(f.pose.yaw, 5.0);
        assert_eq!(f.landmarks[0][0], 250.0);
    }
}
