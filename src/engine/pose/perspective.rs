// SPDX-License-Identifier: MPL-2.0
//! Angles in the camera's frame.
//!
//! A face away from the image centre is seen along a slanted ray. A fit to its landmarks, or a
//! network reading its crop, measures the pose relative to that ray: a face that looks straight
//! into the lens from the corner of the picture looks "turned" in its crop. Users (and the
//! AFLW2000-3D labels) mean the camera's frame. With the camera's field of view known, each face
//! is handled as if a virtual camera, turned from the real one by the smallest rotation that
//! takes the optical axis to the face's ray ([`Camera::ray_rotation`]), looked at it:
//! - landmarks are first carried into that virtual camera's image ([`Camera::rectify`]: each
//!   pixel's ray turned back, then projected again; depth undoes the perspective enlargement of
//!   near points), so the rigid fit sees the face as if it were centred;
//! - the pose found there is then turned into the real camera's frame: `R = R_ray · R_virtual`.
//!
//! Frames: x to the image's right, y up, z towards the viewer (the scene lies at z < 0), as in
//! [`super`].

use super::{Rotation, mat_mul};

/// Horizontal field of view, degrees, assumed when none is given: about what common webcams
/// (a 1080p USB webcam, a laptop's built-in camera) see.
pub const DEFAULT_CAMERA_FOV: f32 = 60.0;
/// The accepted range of `camera-fov` (0 turns the correction off).
pub const CAMERA_FOV_MAX: f32 = 170.0;

type Mat = [[f64; 3]; 3];

/// A pinhole camera: focal length in pixels, principal point at the image centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    pub focal: f64,
    pub cx: f64,
    pub cy: f64,
}

/// What [`Camera::ray_rotation`] and [`Camera::rectify`] need for one face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ray {
    /// The rotation from the real camera to the virtual camera that looks at the face.
    pub rotation: Mat,
}

impl Camera {
    /// The camera of a `width` × `height` image with a horizontal field of view of `fov`
    /// degrees; `None` when `fov` is 0 (the correction is off) or out of range.
    pub fn from_fov(width: usize, height: usize, fov: f32) -> Option<Camera> {
        if !(fov > 0.0 && fov <= CAMERA_FOV_MAX) || width == 0 || height == 0 {
            return None;
        }
        let half = (fov as f64 * 0.5).to_radians();
        Some(Camera {
            focal: width as f64 * 0.5 / half.tan(),
            cx: width as f64 * 0.5,
            cy: height as f64 * 0.5,
        })
    }

    /// The direction (not normalised) of the ray through pixel (x, y).
    pub fn ray(&self, x: f64, y: f64) -> [f64; 3] {
        [x - self.cx, -(y - self.cy), -self.focal]
    }

    /// The smallest rotation that takes the optical axis (0, 0, -1) onto the ray through pixel
    /// (x, y).
    pub fn ray_rotation(&self, x: f32, y: f32) -> Ray {
        let d = self.ray(x as f64, y as f64);
        let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        let d = d.map(|v| v / n);
        // axis = (0, 0, -1) × d, angle = acos(-d_z).
        let axis = [d[1], -d[0], 0.0];
        let s = (axis[0] * axis[0] + axis[1] * axis[1]).sqrt();
        let c = -d[2];
        if !(s > 1e-12) || !s.is_finite() {
            return Ray { rotation: IDENTITY };
        }
        let k = [axis[0] / s, axis[1] / s, 0.0];
        // Rodrigues: R = I + sin·K + (1 - cos)·K².
        let kx: Mat = [[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]];
        let kk = mul(&kx, &kx);
        let rotation = std::array::from_fn(|i| {
            std::array::from_fn(|j| IDENTITY[i][j] + s * kx[i][j] + (1.0 - c) * kk[i][j])
        });
        Ray { rotation }
    }

    /// Landmarks (frame pixels, y down; z in pixels, positive away from the camera) as the virtual
    /// camera of `ray` would see them, in the same convention, with the perspective of depth taken
    /// out: x and y are the virtual image's pixels relative to its centre, scaled by `1 + z / f`
    /// (a point nearer the camera looks larger by that much); z is scaled like x and y near the
    /// face.
    pub fn rectify(&self, ray: &Ray, points: &[[f32; 3]]) -> Vec<[f32; 3]> {
        let r = &ray.rotation;
        // Rᵀ · d for a ray d: the ray in the virtual camera.
        let back = |d: [f64; 3]| -> [f64; 3] {
            std::array::from_fn(|i| r[0][i] * d[0] + r[1][i] * d[1] + r[2][i] * d[2])
        };
        let project = |x: f64, y: f64| -> Option<(f64, f64)> {
            let v = back(self.ray(x, y));
            (v[2] < 0.0).then(|| (self.focal * v[0] / -v[2], self.focal * v[1] / -v[2]))
        };
        // The local magnification of the virtual image against the real one, from the centre of
        // the landmarks: z is scaled by it so that it stays in step with x and y.
        let n = points.len().max(1) as f64;
        let (mx, my) = points.iter().fold((0.0, 0.0), |(sx, sy), p| {
            (sx + p[0] as f64 / n, sy + p[1] as f64 / n)
        });
        let magnification = match (
            project(mx, my),
            project(mx + 1.0, my),
            project(mx, my + 1.0),
        ) {
            (Some(o), Some(a), Some(b)) => {
                let det = (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0);
                det.abs().sqrt()
            }
            _ => 1.0,
        };
        points
            .iter()
            .map(|p| {
                let z = p[2] as f64 * magnification;
                match project(p[0] as f64, p[1] as f64) {
                    Some((x, y)) => {
                        let grow = 1.0 + z / self.focal;
                        [(x * grow) as f32, (-y * grow) as f32, z as f32]
                    }
                    None => [f32::NAN; 3],
                }
            })
            .collect()
    }
}

impl Ray {
    /// No turn: the face is on the optical axis, or the correction is off.
    pub const IDENTITY: Ray = Ray { rotation: IDENTITY };

    /// A pose measured by the virtual camera, in the real camera's frame.
    pub fn to_camera(&self, virtual_pose: &Rotation) -> Rotation {
        let r: Rotation = self.rotation.map(|row| row.map(|v| v as f32));
        mat_mul(&r, virtual_pose)
    }

    /// A pose in the real camera's frame, as the virtual camera sees it.
    pub fn to_virtual(&self, camera_pose: &Rotation) -> Rotation {
        let rt: Rotation =
            std::array::from_fn(|i| std::array::from_fn(|j| self.rotation[j][i] as f32));
        mat_mul(&rt, camera_pose)
    }
}

impl Camera {
    /// Synthetic landmarks, for tests and evaluation tools: the 3-D `reference` points
    /// (centimetres, relative to the face's centre; x right, y up, z out of the face) turned by
    /// `pose` and placed with that centre at `centre` (camera frame: x right, y up, z towards the
    /// camera, the scene at z < 0), as a landmark model reports them: x, y in pixels and, as
    /// depth, the distance from the centre along the viewing ray (positive away from the camera)
    /// on the image's local pixel scale there (the magnification of a small patch facing the
    /// camera along the ray, which is what a model sees in its crop).
    pub fn project_face(
        &self,
        pose: super::Pose,
        centre: [f64; 3],
        reference: &[[f64; 3]],
    ) -> Vec<[f32; 3]> {
        let r = pose.to_rotation();
        let dist = (centre[0].powi(2) + centre[1].powi(2) + centre[2].powi(2)).sqrt();
        let ray = centre.map(|v| v / dist);
        let pixel = |p: [f64; 3]| {
            (
                self.cx + self.focal * p[0] / -p[2],
                self.cy - self.focal * p[1] / -p[2],
            )
        };
        // Two unit steps across the ray, and the area they span in the image.
        let across = {
            let a = [ray[1], -ray[0], 0.0];
            let n = (a[0] * a[0] + a[1] * a[1]).sqrt();
            if n > 1e-12 {
                [a[0] / n, a[1] / n, 0.0]
            } else {
                [1.0, 0.0, 0.0]
            }
        };
        let up = [
            ray[1] * across[2] - ray[2] * across[1],
            ray[2] * across[0] - ray[0] * across[2],
            ray[0] * across[1] - ray[1] * across[0],
        ];
        let step = |d: [f64; 3]| pixel([centre[0] + d[0], centre[1] + d[1], centre[2] + d[2]]);
        let (c, a, b) = (pixel(centre), step(across), step(up));
        let scale = ((a.0 - c.0) * (b.1 - c.1) - (a.1 - c.1) * (b.0 - c.0))
            .abs()
            .sqrt();
        reference
            .iter()
            .map(|s| {
                let rs: [f64; 3] =
                    std::array::from_fn(|i| (0..3).map(|k| r[i][k] as f64 * s[k]).sum());
                let p = [centre[0] + rs[0], centre[1] + rs[1], centre[2] + rs[2]];
                let (u, v) = pixel(p);
                let depth = rs[0] * ray[0] + rs[1] * ray[1] + rs[2] * ray[2];
                [u as f32, v as f32, (depth * scale) as f32]
            })
            .collect()
    }
}

const IDENTITY: Mat = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

fn mul(a: &Mat, b: &Mat) -> Mat {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

#[cfg(test)]
mod tests {
    use super::super::rigid;
    use super::super::{Pose, Rotation};
    use super::*;

    /// A face-like cloud (centimetres; x right, y up, z out of the face): an oval of contour
    /// points bulging forward, eyes, brows, a nose ridge and tip, lips and a chin.
    fn face() -> Vec<[f64; 3]> {
        let mut pts = Vec::new();
        for i in 0..24 {
            let a = i as f64 / 24.0 * std::f64::consts::TAU;
            let (x, y) = (7.0 * a.cos(), 9.0 * a.sin());
            pts.push([x, y, -4.0 + 1.5 * (1.0 - (x / 7.0).powi(2))]);
        }
        for row in -2..=2 {
            for col in -3..=3 {
                let (x, y) = (col as f64 * 1.8, row as f64 * 2.2);
                let z = 3.0 - 0.06 * (x * x + y * y);
                pts.push([x, y, z]);
            }
        }
        for s in [-1.0, 1.0] {
            pts.push([3.0 * s, 2.5, 1.0]);
            pts.push([2.0 * s, 2.6, 1.4]);
            pts.push([3.0 * s, 4.2, 1.3]);
            pts.push([2.2 * s, -4.0, 1.6]);
        }
        pts.extend([
            [0.0, 1.0, 4.0],
            [0.0, -1.0, 5.5],
            [0.0, -2.0, 4.0],
            [0.0, -7.5, 1.5],
        ]);
        pts
    }

    fn solve(cam: Option<&Camera>, landmarks: &[[f32; 3]], reference: &[[f64; 3]]) -> Rotation {
        let weights = vec![1.0; reference.len()];
        match cam {
            Some(cam) => {
                let n = landmarks.len() as f32;
                let (mx, my) = landmarks
                    .iter()
                    .fold((0.0, 0.0), |a, p| (a.0 + p[0] / n, a.1 + p[1] / n));
                let ray = cam.ray_rotation(mx, my);
                let observed: Vec<[f64; 3]> = cam
                    .rectify(&ray, landmarks)
                    .iter()
                    .map(rigid::to_camera_frame)
                    .collect();
                ray.to_camera(&rigid::fit(reference, &observed, &weights).unwrap().rotation)
            }
            None => {
                let observed: Vec<[f64; 3]> =
                    landmarks.iter().map(rigid::to_camera_frame).collect();
                rigid::fit(reference, &observed, &weights).unwrap().rotation
            }
        }
    }

    fn error(a: Pose, b: Pose) -> f32 {
        (a.yaw - b.yaw)
            .abs()
            .max((a.pitch - b.pitch).abs())
            .max((a.roll - b.roll).abs())
    }

    #[test]
    fn off_centre_faces_give_back_their_camera_frame_angles() {
        let reference = face();
        let (w, h) = (1280usize, 720usize);
        let fov = 70.0;
        let cam = Camera::from_fov(w, h, fov).unwrap();
        let distance = 80.0;
        let mut worst_uncorrected = 0.0f32;
        for (fx, fy) in [
            (0.5, 0.5),
            (0.05, 0.5),
            (0.95, 0.5),
            (0.5, 0.05),
            (0.5, 0.95),
            (0.05, 0.05),
            (0.95, 0.92),
            (0.1, 0.8),
        ] {
            // The face's centre on the ray through that point of the image.
            let d = cam.ray(fx * w as f64, fy * h as f64);
            let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
            let centre = d.map(|v| v / n * distance);
            for (yaw, pitch, roll) in [
                (0.0, 0.0, 0.0),
                (30.0, -10.0, 5.0),
                (-55.0, 15.0, -12.0),
                (70.0, 5.0, 20.0),
                (10.0, 35.0, 0.0),
            ] {
                let truth = Pose { yaw, pitch, roll };
                let lm = cam.project_face(truth, centre, &reference);
                let got = Pose::from_rotation(&solve(Some(&cam), &lm, &reference));
                assert!(
                    error(got, truth) < 0.5,
                    "at ({fx}, {fy}) {truth:?}: {got:?}"
                );
                let plain = Pose::from_rotation(&solve(None, &lm, &reference));
                worst_uncorrected = worst_uncorrected.max(error(plain, truth));
            }
        }
        // Without the correction the corners are several degrees off: the test can tell.
        assert!(worst_uncorrected > 5.0, "{worst_uncorrected}");
    }

    #[test]
    fn the_ray_rotation_points_the_optical_axis_at_the_pixel() {
        let cam = Camera::from_fov(640, 480, 60.0).unwrap();
        assert!((cam.focal - 320.0 / 30f64.to_radians().tan()).abs() < 1e-9);
        let ray = cam.ray_rotation(600.0, 50.0);
        let axis = [
            -ray.rotation[0][2],
            -ray.rotation[1][2],
            -ray.rotation[2][2],
        ];
        let d = cam.ray(600.0, 50.0);
        let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        for k in 0..3 {
            assert!((axis[k] - d[k] / n).abs() < 1e-12);
        }
        // The centre needs no turn; fov 0 or out of range gives no camera.
        assert_eq!(cam.ray_rotation(320.0, 240.0).rotation, IDENTITY);
        assert!(Camera::from_fov(640, 480, 0.0).is_none());
        assert!(Camera::from_fov(640, 480, 200.0).is_none());
        assert!(Camera::from_fov(640, 480, f32::NAN).is_none());
        // A face straight at the lens from the right of the picture turns its nose to the
        // camera: towards the image's left, which is positive yaw in our convention.
        let frontal_in_crop = Pose::default().to_rotation();
        let ray = cam.ray_rotation(620.0, 240.0);
        let p = Pose::from_rotation(&ray.to_camera(&frontal_in_crop));
        assert!(p.yaw > 20.0 && p.pitch.abs() < 1e-3, "{p:?}");
        let back = ray.to_virtual(&ray.to_camera(&frontal_in_crop));
        assert!(Pose::from_rotation(&back).yaw.abs() < 1e-4);
    }
}
