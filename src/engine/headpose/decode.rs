// SPDX-License-Identifier: MPL-2.0
//! Turning a regressor's outputs into angles: degrees as they are, or per-axis bins read by their
//! softmax expectation.

use std::path::Path;

use super::ANGLE_LIMIT;
use crate::engine::descriptor::Descriptor;
use crate::engine::error::{Error, Result};
use crate::engine::output::Output;
use crate::engine::pose::Pose;

/// One of the three angles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Yaw,
    Pitch,
    Roll,
}

impl Axis {
    fn parse(word: &str) -> Option<Axis> {
        match word {
            "yaw" => Some(Axis::Yaw),
            "pitch" => Some(Axis::Pitch),
            "roll" => Some(Axis::Roll),
            _ => None,
        }
    }

    fn set(self, pose: &mut Pose, value: f32) {
        match self {
            Axis::Yaw => pose.yaw = value,
            Axis::Pitch => pose.pitch = value,
            Axis::Roll => pose.roll = value,
        }
    }
}

/// How the outputs become angles.
#[derive(Debug, Clone, PartialEq)]
pub enum Decode {
    /// One output of N × 3 degrees, in `axes` order.
    Angles { axes: [Axis; 3] },
    /// One output per axis (in `axes` order) of N × `bins` scores; the angle is
    /// `step · Σ p_i · i + offset` with p the softmax of the scores (or the scores themselves when
    /// they are already probabilities).
    Bins {
        axes: [Axis; 3],
        bins: [usize; 3],
        step: [f32; 3],
        offset: [f32; 3],
        logits: bool,
    },
}

/// Three numbers for the three axes.
fn three(d: &Descriptor, key: &str) -> Result<[f32; 3]> {
    match d.numbers(key)?.as_slice() {
        [a, b, c] => Ok([*a, *b, *c]),
        other => Err(d.error(
            key,
            format!("expected 3 numbers (one per axis), found {}", other.len()),
        )),
    }
}

impl Decode {
    pub fn from_descriptor(d: &Descriptor) -> Result<Decode> {
        let words: Vec<String> = d
            .required("axes")?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let parsed: Option<Vec<Axis>> = words.iter().map(|w| Axis::parse(w)).collect();
        let axes: [Axis; 3] = match parsed.as_deref() {
            Some(&[a, b, c]) if a != b && b != c && a != c => [a, b, c],
            _ => {
                return Err(d.error(
                    "axes",
                    format!(
                        "`{}` is not yaw, pitch and roll in some order",
                        words.join(" ")
                    ),
                ));
            }
        };
        match d.required("decode")?.as_str() {
            "angles" => {
                if d.outputs.len() != 1 {
                    return Err(d.error(
                        "outputs",
                        format!(
                            "decode = angles reads one output of 3 values per face, but {} are named",
                            d.outputs.len()
                        ),
                    ));
                }
                for key in ["bins", "bin-step", "bin-offset", "bin-values"] {
                    if d.optional(key).is_some() {
                        return Err(d.error(key, "only applies with decode = bins".into()));
                    }
                }
                Ok(Decode::Angles { axes })
            }
            "bins" => {
                if d.outputs.len() != 3 {
                    return Err(d.error(
                        "outputs",
                        format!(
                            "decode = bins reads one output per axis, but {} are named",
                            d.outputs.len()
                        ),
                    ));
                }
                let counts = three(d, "bins")?;
                let mut bins = [0usize; 3];
                for (b, c) in bins.iter_mut().zip(counts) {
                    if c.fract() != 0.0 || !(2.0..=10_000.0).contains(&c) {
                        return Err(d.error(
                            "bins",
                            format!("`{c}` is not a whole number of bins in 2..=10000"),
                        ));
                    }
                    *b = c as usize;
                }
                let step = three(d, "bin-step")?;
                if step.iter().any(|s| *s <= 0.0) {
                    return Err(d.error("bin-step", "steps must be positive".into()));
                }
                let offset = three(d, "bin-offset")?;
                for k in 0..3 {
                    let top = offset[k] + step[k] * (bins[k] - 1) as f32;
                    if offset[k] < -ANGLE_LIMIT - 1e-3 || top > ANGLE_LIMIT + 1e-3 {
                        // The span comes from all three keys: the message names each.
                        return Err(d.error(
                            "bin-offset",
                            format!(
                                "with `bins` and `bin-step`, axis {} spans {}..{} degrees, beyond \
                                 ±{ANGLE_LIMIT} (`bin-offset` + `bin-step` × (`bins` − 1) must stay \
                                 within it)",
                                k + 1,
                                offset[k],
                                top
                            ),
                        ));
                    }
                }
                let logits = match d.optional("bin-values").as_deref() {
                    None | Some("logits") => true,
                    Some("probabilities") => false,
                    Some(other) => {
                        return Err(d.error(
                            "bin-values",
                            format!("`{other}` is not logits or probabilities"),
                        ));
                    }
                };
                Ok(Decode::Bins {
                    axes,
                    bins,
                    step,
                    offset,
                    logits,
                })
            }
            other => Err(d.error("decode", format!("`{other}` is not angles or bins"))),
        }
    }

    /// Values per face in output `k`.
    fn width(&self, k: usize) -> usize {
        match self {
            Decode::Angles { .. } => 3,
            Decode::Bins { bins, .. } => bins[k],
        }
    }

    /// Checks the outputs' declared shapes (where the model states them) against the decoding.
    pub fn check_outputs(
        &self,
        d: &Descriptor,
        shape_of: impl Fn(&str) -> Option<Vec<i64>>,
    ) -> Result<()> {
        for (k, name) in d.outputs.iter().enumerate() {
            let Some(shape) = shape_of(name) else {
                continue;
            };
            let expected = self.width(k);
            let last = shape.last().copied().unwrap_or(-1);
            let per_face: i64 = shape.iter().skip(1).product();
            let fixed = shape.iter().skip(1).all(|v| *v > 0);
            if (last > 0 && last as usize != expected) || (fixed && per_face as usize != expected) {
                let key = if matches!(self, Decode::Bins { .. }) {
                    "bins"
                } else {
                    "outputs"
                };
                return Err(d.error(
                    key,
                    format!(
                        "output `{name}` has shape {shape:?}, but the descriptor reads {expected} \
                         values per face from it"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The angles of `n` faces; `None` where the output is NaN or out of range.
    pub fn decode(&self, model: &Path, outputs: &[Output], n: usize) -> Result<Vec<Option<Pose>>> {
        for (k, o) in outputs.iter().enumerate() {
            if o.data.len() != n * self.width(k) {
                return Err(Error::Model {
                    path: model.to_owned(),
                    message: format!(
                        "output {} has shape {:?}; expected {n}×{} values",
                        k + 1,
                        o.shape,
                        self.width(k)
                    ),
                });
            }
        }
        Ok((0..n)
            .map(|i| {
                let mut pose = Pose::default();
                match self {
                    Decode::Angles { axes } => {
                        let v = &outputs[0].data[i * 3..i * 3 + 3];
                        for (axis, value) in axes.iter().zip(v) {
                            axis.set(&mut pose, *value);
                        }
                    }
                    Decode::Bins {
                        axes,
                        bins,
                        step,
                        offset,
                        logits,
                    } => {
                        for k in 0..3 {
                            let scores = &outputs[k].data[i * bins[k]..(i + 1) * bins[k]];
                            let e = expectation(scores, *logits);
                            axes[k].set(&mut pose, step[k] * e + offset[k]);
                        }
                    }
                }
                let usable = [pose.yaw, pose.pitch, pose.roll]
                    .iter()
                    .all(|v| v.is_finite() && v.abs() <= ANGLE_LIMIT);
                usable.then_some(pose)
            })
            .collect())
    }
}

/// Σ p_i · i over the bins, with p the softmax of `scores` (or `scores` normalised, for
/// probabilities). NaN when the scores are not usable.
pub fn expectation(scores: &[f32], logits: bool) -> f32 {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return f32::NAN;
    }
    let (mut total, mut weighted) = (0.0f64, 0.0f64);
    for (i, &s) in scores.iter().enumerate() {
        let p = if logits {
            ((s - max) as f64).exp()
        } else {
            s as f64
        };
        if !(p.is_finite() && p >= 0.0) {
            return f32::NAN;
        }
        total += p;
        weighted += p * i as f64;
    }
    if total > 0.0 {
        (weighted / total) as f32
    } else {
        f32::NAN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(extra: &str) -> Result<Descriptor> {
        Descriptor::parse(
            Path::new("r.descriptor"),
            &format!(
                "family = headpose\ninput = input\nlayout = nhwc\ncolour = rgb\nsize = 224x224\n\
                 mean = 0\nscale = 1\ncrop = box\ncrop-shape = square\ncrop-scale = 1.2\n{extra}"
            ),
        )
    }

    const BINS: &str = "outputs = y p r\ndecode = bins\naxes = yaw pitch roll\nbins = 120 66 66\n\
        bin-step = 3 3 3\nbin-offset = -180 -99 -99\n";

    #[test]
    fn expectation_of_one_hot_and_uniform_scores() {
        assert_eq!(expectation(&[0.0, 0.0, 1.0, 0.0], false), 2.0);
        assert!((expectation(&[5.0; 5], true) - 2.0).abs() < 1e-6);
        assert!(expectation(&[f32::NAN, 1.0], true).is_nan());
        assert!(expectation(&[0.0, 0.0], false).is_nan());
        // Large logits do not overflow.
        assert!((expectation(&[1000.0, 0.0, 1000.0], true) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn bins_decode_to_degrees_in_axis_order() {
        let d = descriptor(&BINS.replace("yaw pitch roll", "pitch yaw roll")).unwrap();
        let decode = Decode::from_descriptor(&d).unwrap();
        // Bin 60 of the first axis (pitch here: 120 bins would not fit, so use 66-bin axes).
        let d = descriptor(
            "outputs = y p r\ndecode = bins\naxes = roll pitch yaw\nbins = 66 66 120\n\
             bin-step = 3 3 3\nbin-offset = -99 -99 -180\n",
        )
        .unwrap();
        let decode2 = Decode::from_descriptor(&d).unwrap();
        let mut roll = vec![0.0f32; 66];
        roll[40] = 1.0;
        let mut pitch = vec![0.0f32; 66];
        pitch[30] = 1.0;
        let mut yaw = vec![0.0f32; 120];
        yaw[70] = 1.0;
        let outs = [
            Output {
                shape: vec![1, 66],
                data: &roll,
            },
            Output {
                shape: vec![1, 66],
                data: &pitch,
            },
            Output {
                shape: vec![1, 120],
                data: &yaw,
            },
        ];
        let Decode::Bins { logits, .. } = decode2 else {
            panic!("bins")
        };
        assert!(logits);
        let probabilities = Decode::Bins {
            axes: [Axis::Roll, Axis::Pitch, Axis::Yaw],
            bins: [66, 66, 120],
            step: [3.0; 3],
            offset: [-99.0, -99.0, -180.0],
            logits: false,
        };
        let p = probabilities.decode(Path::new("m"), &outs, 1).unwrap()[0].unwrap();
        assert_eq!((p.yaw, p.pitch, p.roll), (30.0, -9.0, 21.0));
        assert!(matches!(
            decode,
            Decode::Bins {
                axes: [Axis::Pitch, Axis::Yaw, Axis::Roll],
                ..
            }
        ));
    }

    #[test]
    fn angles_out_of_range_or_nan_are_dropped_per_face() {
        let decode = Decode::Angles {
            axes: [Axis::Roll, Axis::Yaw, Axis::Pitch],
        };
        let data = [1.0, 2.0, 3.0, f32::NAN, 0.0, 0.0, 0.0, 500.0, 0.0];
        let outs = [Output {
            shape: vec![3, 3],
            data: &data,
        }];
        let r = decode.decode(Path::new("m"), &outs, 3).unwrap();
        assert_eq!(
            r[0],
            Some(Pose {
                yaw: 2.0,
                pitch: 3.0,
                roll: 1.0
            })
        );
        assert_eq!((r[1], r[2]), (None, None));
        let e = decode.decode(Path::new("m.onnx"), &outs, 2).unwrap_err();
        assert!(e.to_string().contains("m.onnx"), "{e}");
    }

    #[test]
    fn descriptors_that_do_not_fit_name_the_key() {
        let cases = [
            (BINS.replace("bins = 120 66 66", "bins = 120 66"), "bins"),
            (BINS.replace("bins = 120 66 66", "bins = 200 66 66"), "bins"),
            (
                BINS.replace("bin-step = 3 3 3", "bin-step = 3 0 3"),
                "bin-step",
            ),
            (
                BINS.replace("axes = yaw pitch roll", "axes = yaw yaw roll"),
                "axes",
            ),
            (BINS.replace("outputs = y p r", "outputs = y p"), "outputs"),
            (BINS.replace("decode = bins", "decode = magic"), "decode"),
            (BINS.replace("bins = 120 66 66\n", ""), "`bins` is missing"),
            (
                "outputs = a\ndecode = angles\naxes = yaw pitch roll\nbins = 1 2 3\n".into(),
                "bins",
            ),
            (format!("{BINS}bin-values = maybe\n"), "bin-values"),
        ];
        for (text, key) in cases {
            let e = descriptor(&text)
                .and_then(|d| Decode::from_descriptor(&d))
                .unwrap_err()
                .to_string();
            assert!(e.contains("r.descriptor") && e.contains(key), "{key}: {e}");
        }
        let d = descriptor(BINS).unwrap();
        let decode = Decode::from_descriptor(&d).unwrap();
        let e = decode
            .check_outputs(&d, |n| {
                Some(if n == "p" {
                    vec![-1, 62]
                } else {
                    vec![-1, 120]
                })
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("bins") && e.contains("`p`"), "{e}");
    }
}
