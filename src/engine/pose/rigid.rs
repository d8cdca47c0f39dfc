// SPDX-License-Identifier: MPL-2.0
//! Rigid fit: the similarity transform (scale, rotation, translation) that best maps the reference
//! face onto the observed 3-D landmarks in the weighted least-squares sense, found with Horn's
//! closed-form unit-quaternion method (largest eigenvector of a symmetric 4×4 matrix).

use super::{Pose, Rotation};

/// A fitted similarity transform: observed ≈ scale · rotation · reference + translation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RigidFit {
    pub rotation: Rotation,
    pub scale: f32,
    pub translation: [f32; 3],
    /// Weighted RMS distance between the fitted reference and the observations (observed units).
    pub rms: f32,
}

impl RigidFit {
    pub fn pose(&self) -> Pose {
        Pose::from_rotation(&self.rotation)
    }

    /// Whether every field is finite.
    pub fn is_finite(&self) -> bool {
        self.rotation.iter().flatten().all(|v| v.is_finite())
            && self.scale.is_finite()
            && self.translation.iter().all(|v| v.is_finite())
            && self.rms.is_finite()
    }
}

/// Converts frame landmarks (x right, y down, z away from the camera) into the solver's frame
/// (x right, y up, z towards the camera).
pub fn to_camera_frame(p: &[f32; 3]) -> [f64; 3] {
    [p[0] as f64, -(p[1] as f64), -(p[2] as f64)]
}

/// Whether a correspondence takes part in a fit: finite positive weight, finite coordinates.
fn usable(reference: &[f64; 3], observed: &[f64; 3], weight: f64) -> bool {
    weight > 0.0 && weight.is_finite() && reference.iter().chain(observed).all(|v| v.is_finite())
}

/// Fits `reference` to `observed` (both already in the camera frame) with `weights`. Returns `None`
/// when the problem is degenerate (fewer than three usable points, see [`usable`]; a cloud
/// collapsed to a point; values so large that the sums overflow, or a result that does not fit
/// in f32).
pub fn fit(reference: &[[f64; 3]], observed: &[[f64; 3]], weights: &[f64]) -> Option<RigidFit> {
    let pairs: Vec<([f64; 3], [f64; 3], f64)> = reference
        .iter()
        .zip(observed)
        .zip(weights)
        .filter(|((r, o), w)| usable(r, o, **w))
        .map(|((r, o), w)| (*r, *o, *w))
        .collect();
    if pairs.len() < 3 {
        return None;
    }
    let total: f64 = pairs.iter().map(|p| p.2).sum();
    let mut cr = [0.0f64; 3];
    let mut co = [0.0f64; 3];
    // Σ w |p|² before centring: the yardstick for "collapsed" below.
    let (mut ref_raw, mut obs_raw) = (0.0f64, 0.0f64);
    for (r, o, w) in &pairs {
        for k in 0..3 {
            cr[k] += w * r[k] / total;
            co[k] += w * o[k] / total;
        }
        ref_raw += w * r.iter().map(|v| v * v).sum::<f64>();
        obs_raw += w * o.iter().map(|v| v * v).sum::<f64>();
    }
    // Cross-covariance s[a][b] = Σ w · ref_a · obs_b over centred points.
    let mut s = [[0.0f64; 3]; 3];
    let mut ref_norm = 0.0;
    let mut obs_norm = 0.0;
    for (r, o, w) in &pairs {
        let r = [r[0] - cr[0], r[1] - cr[1], r[2] - cr[2]];
        let o = [o[0] - co[0], o[1] - co[1], o[2] - co[2]];
        for a in 0..3 {
            for b in 0..3 {
                s[a][b] += w * r[a] * o[b];
            }
        }
        ref_norm += w * (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
        obs_norm += w * (o[0] * o[0] + o[1] * o[1] + o[2] * o[2]);
    }
    // Either cloud collapsed to a point: no rotation can be told. Centring a cloud of equal
    // points far from the origin leaves rounding noise, so the spread is measured against the
    // cloud's distance from the origin as well as against the other cloud.
    let spread = |centred: f64, raw: f64| centred > 0.0 && centred > 1e-12 * raw;
    if !(spread(ref_norm, ref_raw) && spread(obs_norm, obs_raw) && obs_norm > 1e-12 * ref_norm) {
        return None;
    }
    let [[sxx, sxy, sxz], [syx, syy, syz], [szx, szy, szz]] = s;
    let m = [
        [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
        [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
        [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
        [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
    ];
    let q = largest_eigenvector(m)?;
    let r = quaternion_to_rotation(q);
    // Scale: Σ w · o · (R r) / Σ w |r|².
    let mut dot = 0.0;
    for a in 0..3 {
        for b in 0..3 {
            dot += r[b][a] * s[a][b];
        }
    }
    let scale = dot / ref_norm;
    if !(scale.is_finite() && scale > 0.0) {
        return None;
    }
    let rc = mat_vec(&r, cr);
    let t = [
        co[0] - scale * rc[0],
        co[1] - scale * rc[1],
        co[2] - scale * rc[2],
    ];
    let err: f64 = pairs
        .iter()
        .map(|(rp, o, w)| {
            let p = mat_vec(&r, *rp);
            w * (0..3)
                .map(|k| (scale * p[k] + t[k] - o[k]).powi(2))
                .sum::<f64>()
        })
        .sum();
    let rotation: Rotation = std::array::from_fn(|i| std::array::from_fn(|j| r[i][j] as f32));
    let fitted = RigidFit {
        rotation,
        scale: scale as f32,
        translation: t.map(|v| v as f32),
        rms: (err / total).sqrt() as f32,
    };
    fitted.is_finite().then_some(fitted)
}

fn mat_vec(r: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|i| r[i][0] * v[0] + r[i][1] * v[1] + r[i][2] * v[2])
}

/// The rotation matrix of a unit quaternion (w, x, y, z).
pub(super) fn quaternion_to_rotation(q: [f64; 4]) -> [[f64; 3]; 3] {
    let [w, x, y, z] = q;
    [
        [
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y - z * w),
            2.0 * (x * z + y * w),
        ],
        [
            2.0 * (x * y + z * w),
            1.0 - 2.0 * (x * x + z * z),
            2.0 * (y * z - x * w),
        ],
        [
            2.0 * (x * z - y * w),
            2.0 * (y * z + x * w),
            1.0 - 2.0 * (x * x + y * y),
        ],
    ]
}

/// Unit eigenvector of the largest eigenvalue of a symmetric 4×4 matrix (cyclic Jacobi).
fn largest_eigenvector(mut a: [[f64; 4]; 4]) -> Option<[f64; 4]> {
    if !a.iter().flatten().all(|v| v.is_finite()) {
        return None;
    }
    let mut v = [[0.0f64; 4]; 4];
    for (i, row) in v.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for _sweep in 0..50 {
        let off: f64 = (0..4)
            .flat_map(|i| (0..4).map(move |j| (i, j)))
            .filter(|(i, j)| i != j)
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-24 {
            break;
        }
        for p in 0..3 {
            for q in p + 1..4 {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (row_p, row_q) = (a[p], a[q]);
                a[p] = std::array::from_fn(|k| c * row_p[k] - s * row_q[k]);
                a[q] = std::array::from_fn(|k| s * row_p[k] + c * row_q[k]);
                for row in v.iter_mut() {
                    let (vkp, vkq) = (row[p], row[q]);
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let best = (0..4).max_by(|&i, &j| a[i][i].total_cmp(&a[j][j]))?;
    let q = [v[0][best], v[1][best], v[2][best], v[3][best]];
    let norm = q.iter().map(|x| x * x).sum::<f64>().sqrt();
    (norm > 0.0 && norm.is_finite()).then(|| q.map(|x| x / norm))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud() -> Vec<[f64; 3]> {
        vec![
            [0.0, 0.0, 0.0],
            [3.0, 0.5, -1.0],
            [-2.0, 1.0, 0.5],
            [0.5, -3.0, 2.0],
            [1.0, 2.0, 3.0],
            [-1.5, -1.0, -2.0],
        ]
    }

    #[test]
    fn recovers_a_known_similarity_transform() {
        let truth = Pose {
            yaw: 35.0,
            pitch: -20.0,
            roll: 12.0,
        };
        let r = truth.to_rotation();
        let reference = cloud();
        let observed: Vec<[f64; 3]> = reference
            .iter()
            .map(|p| {
                let q: [f64; 3] =
                    std::array::from_fn(|i| (0..3).map(|k| r[i][k] as f64 * p[k]).sum());
                [2.5 * q[0] + 10.0, 2.5 * q[1] - 4.0, 2.5 * q[2] + 1.0]
            })
            .collect();
        let f = fit(&reference, &observed, &[1.0; 6]).unwrap();
        let p = f.pose();
        assert!(
            (p.yaw - 35.0).abs() < 1e-3
                && (p.pitch + 20.0).abs() < 1e-3
                && (p.roll - 12.0).abs() < 1e-3,
            "{p:?}"
        );
        assert!((f.scale - 2.5).abs() < 1e-4);
        assert!((f.translation[0] - 10.0).abs() < 1e-3);
        assert!(f.rms < 1e-4);
    }

    #[test]
    fn zero_weight_points_are_ignored_and_degenerate_input_is_refused() {
        let reference = cloud();
        let mut observed = reference.clone();
        observed[5] = [100.0, 100.0, 100.0];
        let f = fit(&reference, &observed, &[1.0, 1.0, 1.0, 1.0, 1.0, 0.0]).unwrap();
        assert!(f.pose().yaw.abs() < 1e-3 && f.rms < 1e-6);
        assert!(fit(&reference, &observed, &[1.0, 1.0, 0.0, 0.0, 0.0, 0.0]).is_none());
        let mut nan = reference.clone();
        nan.iter_mut().for_each(|p| p[0] = f64::NAN);
        assert!(fit(&reference, &nan, &[1.0; 6]).is_none());
        assert!(fit(&reference, &[[1.0, 1.0, 1.0]; 6], &[1.0; 6]).is_none());
    }
}

/// Refines `init` by Gauss-Newton (Levenberg damping) on the 2-D reprojection error under weak
/// perspective: the reference, rotated and scaled, projected orthographically onto the image
/// plane, against the observed x, y. For landmark models that give no depth (PFLD), whose z is 0.
/// Correspondences that [`fit`] would skip are skipped here too. Returns `init` unchanged when it
/// is not finite or the refined fit would not be.
pub fn refine_2d(
    reference: &[[f64; 3]],
    observed: &[[f64; 3]],
    weights: &[f64],
    init: &RigidFit,
    iterations: usize,
) -> RigidFit {
    if !init.is_finite() {
        return *init;
    }
    let n = reference.len().min(observed.len()).min(weights.len());
    // Skipped correspondences weigh nothing.
    let weights: Vec<f64> = (0..n)
        .map(|i| {
            if usable(&reference[i], &observed[i], weights[i]) {
                weights[i]
            } else {
                0.0
            }
        })
        .collect();
    let mut r: [[f64; 3]; 3] =
        std::array::from_fn(|i| std::array::from_fn(|j| init.rotation[i][j] as f64));
    let mut s = init.scale as f64;
    let mut t = [init.translation[0] as f64, init.translation[1] as f64];
    let cost = |r: &[[f64; 3]; 3], s: f64, t: [f64; 2]| -> f64 {
        (0..n)
            .filter(|&i| weights[i] > 0.0)
            .map(|i| {
                let p = mat_vec(r, reference[i]);
                let dx = s * p[0] + t[0] - observed[i][0];
                let dy = s * p[1] + t[1] - observed[i][1];
                weights[i] * (dx * dx + dy * dy)
            })
            .sum()
    };
    let mut current = cost(&r, s, t);
    let mut lambda = 1e-3;
    for _ in 0..iterations {
        // Normal equations for (ω, s, tx, ty), with R ← R · exp([ω]×).
        let mut jtj = [[0.0f64; 6]; 6];
        let mut jtr = [0.0f64; 6];
        for i in (0..n).filter(|&i| weights[i] > 0.0) {
            let w = weights[i];
            let c = reference[i];
            let p = mat_vec(&r, c);
            let res = [
                s * p[0] + t[0] - observed[i][0],
                s * p[1] + t[1] - observed[i][1],
            ];
            let cx = [[0.0, -c[2], c[1]], [c[2], 0.0, -c[0]], [-c[1], c[0], 0.0]];
            for (row, residual) in res.iter().enumerate() {
                let mut j = [0.0f64; 6];
                for (k, jk) in j.iter_mut().take(3).enumerate() {
                    *jk = -s * (0..3).map(|m| r[row][m] * cx[m][k]).sum::<f64>();
                }
                j[3] = p[row];
                j[4 + row] = 1.0;
                for a in 0..6 {
                    jtr[a] += w * j[a] * residual;
                    for b in 0..6 {
                        jtj[a][b] += w * j[a] * j[b];
                    }
                }
            }
        }
        let mut improved = false;
        for _ in 0..8 {
            let mut m = jtj;
            for (a, row) in m.iter_mut().enumerate() {
                row[a] *= 1.0 + lambda;
            }
            let Some(delta) = solve6(m, jtr.map(|v| -v)) else {
                break;
            };
            let nr = mat_mul3(&r, &exp_so3([delta[0], delta[1], delta[2]]));
            let (ns, nt) = (s + delta[3], [t[0] + delta[4], t[1] + delta[5]]);
            let c = cost(&nr, ns, nt);
            if c.is_finite() && c < current && ns > 0.0 {
                (r, s, t, current) = (nr, ns, nt, c);
                lambda = (lambda * 0.3).max(1e-9);
                improved = true;
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    let total: f64 = weights.iter().sum();
    let refined = RigidFit {
        rotation: std::array::from_fn(|i| std::array::from_fn(|j| r[i][j] as f32)),
        scale: s as f32,
        translation: [t[0] as f32, t[1] as f32, init.translation[2]],
        rms: (current / total.max(1e-12)).sqrt() as f32,
    };
    if refined.is_finite() { refined } else { *init }
}

fn mat_mul3(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum()))
}

/// Rotation matrix of the rotation vector `w` (Rodrigues).
fn exp_so3(w: [f64; 3]) -> [[f64; 3]; 3] {
    let theta = (w[0] * w[0] + w[1] * w[1] + w[2] * w[2]).sqrt();
    if theta < 1e-12 {
        return [[1.0, -w[2], w[1]], [w[2], 1.0, -w[0]], [-w[1], w[0], 1.0]];
    }
    let k = w.map(|v| v / theta);
    let (sin, cos) = theta.sin_cos();
    let v = 1.0 - cos;
    [
        [
            cos + k[0] * k[0] * v,
            k[0] * k[1] * v - k[2] * sin,
            k[0] * k[2] * v + k[1] * sin,
        ],
        [
            k[1] * k[0] * v + k[2] * sin,
            cos + k[1] * k[1] * v,
            k[1] * k[2] * v - k[0] * sin,
        ],
        [
            k[2] * k[0] * v - k[1] * sin,
            k[2] * k[1] * v + k[0] * sin,
            cos + k[2] * k[2] * v,
        ],
    ]
}

/// Solves a 6×6 linear system by Gaussian elimination with partial pivoting.
fn solve6(mut a: [[f64; 6]; 6], mut b: [f64; 6]) -> Option<[f64; 6]> {
    for col in 0..6 {
        let pivot = (col..6).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if !(a[pivot][col].abs() > 1e-12) {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col];
        for row in col + 1..6 {
            let f = a[row][col] / pivot_row[col];
            for (x, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; 6];
    for row in (0..6).rev() {
        let s: f64 = (row + 1..6).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

#[cfg(test)]
mod refine_tests {
    use super::*;

    #[test]
    fn refine_2d_recovers_a_turned_pose_from_x_and_y_alone() {
        let reference: Vec<[f64; 3]> = (0..14)
            .map(|i| {
                let a = i as f64 * 0.7;
                [4.0 * a.cos(), 5.0 * a.sin(), 2.0 * (a * 1.3).cos()]
            })
            .collect();
        let truth = Pose {
            yaw: 40.0,
            pitch: -15.0,
            roll: 10.0,
        }
        .to_rotation();
        let observed: Vec<[f64; 3]> = reference
            .iter()
            .map(|p| {
                let q: [f64; 3] =
                    std::array::from_fn(|i| (0..3).map(|k| truth[i][k] as f64 * p[k]).sum());
                [3.0 * q[0] + 50.0, 3.0 * q[1] + 20.0, 0.0]
            })
            .collect();
        let w = vec![1.0; 14];
        let init = fit(&reference, &observed, &w).unwrap();
        let refined = refine_2d(&reference, &observed, &w, &init, 50);
        let p = refined.pose();
        assert!(
            (p.yaw - 40.0).abs() < 0.5
                && (p.pitch + 15.0).abs() < 0.5
                && (p.roll - 10.0).abs() < 0.5,
            "{p:?}"
        );
    }
}
