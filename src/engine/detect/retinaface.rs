// SPDX-License-Identifier: MPL-2.0
//! RetinaFace decoding: SSD-style priors over several strides, box and five-point offsets scaled by
//! the variances. Serves every export of the family whose outputs are (boxes, scores, landmarks)
//! per prior, whatever the layout of the input.

use std::path::Path;

use super::super::descriptor::Descriptor;
use super::super::error::Result;
use super::super::geometry::{BBox, Point};
use super::super::output::Output;
use super::{Candidates, Detection, expect_outputs, expect_rows};

/// Prior boxes of one input size: centre and size in tensor pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prior {
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
}

/// How the second score column is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Score {
    /// Already softmaxed: column 1 is the face probability.
    Probability,
    /// Two logits per prior: softmax is applied here.
    Logits,
}

/// Decoder parameters read from the descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct RetinaFace {
    strides: Vec<usize>,
    min_sizes: Vec<Vec<f32>>,
    variances: [f32; 2],
    score: Score,
}

impl RetinaFace {
    pub fn from_descriptor(d: &Descriptor) -> Result<Self> {
        let strides = super::strides(d)?;
        let min_sizes = d.groups("min-sizes")?;
        if min_sizes.len() != strides.len() || min_sizes.iter().any(Vec::is_empty) {
            return Err(d.error(
                "min-sizes",
                format!(
                    "expected {} non-empty groups separated by `;`, one per stride",
                    strides.len()
                ),
            ));
        }
        let variances = match d.numbers("variances")?.as_slice() {
            [a, b] if *a > 0.0 && *b > 0.0 => [*a, *b],
            _ => return Err(d.error("variances", "expected two positive numbers".into())),
        };
        let score = match d.optional("score").as_deref() {
            None | Some("probability") => Score::Probability,
            Some("logits") => Score::Logits,
            Some(other) => {
                return Err(d.error("score", format!("`{other}` is not probability or logits")));
            }
        };
        if d.outputs.len() != 3 {
            return Err(d.error(
                "outputs",
                "expected three names: boxes, scores, landmarks".into(),
            ));
        }
        Ok(Self {
            strides,
            min_sizes,
            variances,
            score,
        })
    }

    /// Priors for a `width` × `height` input, ordered level → row → column → size.
    pub fn priors(&self, width: usize, height: usize) -> Vec<Prior> {
        let mut priors = Vec::new();
        for (stride, sizes) in self.strides.iter().zip(&self.min_sizes) {
            let (gw, gh) = (width.div_ceil(*stride), height.div_ceil(*stride));
            for i in 0..gh {
                for j in 0..gw {
                    for &m in sizes {
                        priors.push(Prior {
                            cx: (j as f32 + 0.5) * *stride as f32,
                            cy: (i as f32 + 0.5) * *stride as f32,
                            w: m,
                            h: m,
                        });
                    }
                }
            }
        }
        priors
    }

    /// Decodes the outputs (boxes, scores, landmarks) of a `width` × `height` input into candidates
    /// in tensor pixels with a score of at least `threshold`.
    pub fn decode(
        &self,
        path: &Path,
        outputs: &[Output],
        width: usize,
        height: usize,
        threshold: f32,
    ) -> Result<Candidates> {
        let priors = self.priors(width, height);
        let n = priors.len();
        let names = ["boxes", "scores", "landmarks"];
        expect_outputs(path, outputs, &names)?;
        for (k, cols) in [4, 2, 10].into_iter().enumerate() {
            expect_rows(path, names[k], &outputs[k], n, cols)?;
        }
        let (boxes, scores, marks) = (outputs[0].data, outputs[1].data, outputs[2].data);
        let [v0, v1] = self.variances;
        let mut out = Vec::new();
        for (i, p) in priors.iter().enumerate() {
            let score = match self.score {
                // A probability a hair outside 0..=1 (rounding, or a broken export) is clipped.
                Score::Probability => scores[i * 2 + 1].clamp(0.0, 1.0),
                Score::Logits => {
                    let (a, b) = (scores[i * 2], scores[i * 2 + 1]);
                    1.0 / (1.0 + (a - b).exp())
                }
            };
            if !(score >= threshold) {
                continue;
            }
            let l = &boxes[i * 4..i * 4 + 4];
            let cx = p.cx + l[0] * v0 * p.w;
            let cy = p.cy + l[1] * v0 * p.h;
            let w = p.w * (l[2] * v1).clamp(-20.0, 20.0).exp();
            let h = p.h * (l[3] * v1).clamp(-20.0, 20.0).exp();
            let m = &marks[i * 10..i * 10 + 10];
            let keypoints: [Point; 5] = std::array::from_fn(|k| {
                Point::new(p.cx + m[2 * k] * v0 * p.w, p.cy + m[2 * k + 1] * v0 * p.h)
            });
            out.push(Detection {
                bbox: BBox::new(cx - w * 0.5, cy - h * 0.5, cx + w * 0.5, cy + h * 0.5),
                score,
                keypoints,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> RetinaFace {
        RetinaFace {
            strides: vec![8, 16, 32],
            min_sizes: vec![vec![16.0, 32.0], vec![64.0, 128.0], vec![256.0, 512.0]],
            variances: [0.1, 0.2],
            score: Score::Probability,
        }
    }

    #[test]
    fn prior_count_and_order_match_the_published_layout() {
        let p = decoder().priors(640, 640);
        assert_eq!(p.len(), 16800);
        assert_eq!(
            p[0],
            Prior {
                cx: 4.0,
                cy: 4.0,
                w: 16.0,
                h: 16.0
            }
        );
        assert_eq!(
            p[1],
            Prior {
                cx: 4.0,
                cy: 4.0,
                w: 32.0,
                h: 32.0
            }
        );
        assert_eq!(p[2].cx, 12.0);
        // First prior of the second level.
        assert_eq!(
            p[80 * 80 * 2],
            Prior {
                cx: 8.0,
                cy: 8.0,
                w: 64.0,
                h: 64.0
            }
        );
        // Sizes that are not multiples of the stride round up.
        assert_eq!(
            decoder().priors(100, 36).len(),
            13 * 5 * 2 + 7 * 3 * 2 + 4 * 2 * 2
        );
    }

    #[test]
    fn zero_offsets_decode_to_the_prior_and_scale_by_the_variances() {
        let d = decoder();
        let n = d.priors(32, 32).len();
        let mut boxes = vec![0.0; n * 4];
        let mut scores = vec![0.0; n * 2];
        let mut marks = vec![0.0; n * 10];
        // Prior 3: centre (12, 4), size 32.
        scores[3 * 2 + 1] = 0.9;
        boxes[3 * 4] = 1.0; // moves the centre by 0.1 · 32
        boxes[3 * 4 + 2] = (2.0f32).ln() / 0.2; // doubles the width
        marks[3 * 10 + 4] = -1.0; // nose x moves left by 3.2
        let out = vec![
            Output {
                shape: vec![1, n as i64, 4],
                data: &boxes,
            },
            Output {
                shape: vec![1, n as i64, 2],
                data: &scores,
            },
            Output {
                shape: vec![1, n as i64, 10],
                data: &marks,
            },
        ];
        let c = d.decode(Path::new("m.onnx"), &out, 32, 32, 0.5).unwrap();
        assert_eq!(c.len(), 1);
        let b = c[0].bbox;
        assert!((b.centre().x - 15.2).abs() < 1e-4, "{b:?}");
        assert!((b.width() - 64.0).abs() < 1e-3 && (b.height() - 32.0).abs() < 1e-3);
        assert!((c[0].keypoints[2].x - 8.8).abs() < 1e-4);
    }

    #[test]
    fn wrong_output_length_names_the_output() {
        let d = decoder();
        let short = vec![0.0; 8];
        let out = vec![
            Output {
                shape: vec![1, 2, 4],
                data: &short,
            },
            Output {
                shape: vec![1, 2, 4],
                data: &short,
            },
            Output {
                shape: vec![1, 2, 4],
                data: &short,
            },
        ];
        let e = d
            .decode(Path::new("m.onnx"), &out, 64, 64, 0.5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.onnx") && e.contains("boxes"), "{e}");
    }

    #[test]
    fn nan_scores_and_boxes_never_reach_the_output() {
        let d = decoder();
        let n = d.priors(32, 32).len();
        let boxes = vec![f32::NAN; n * 4];
        let scores = vec![f32::NAN; n * 2];
        let marks = vec![f32::INFINITY; n * 10];
        let out = vec![
            Output {
                shape: vec![],
                data: &boxes,
            },
            Output {
                shape: vec![],
                data: &scores,
            },
            Output {
                shape: vec![],
                data: &marks,
            },
        ];
        assert!(
            d.decode(Path::new("m"), &out, 32, 32, 0.5)
                .unwrap()
                .is_empty()
        );
    }
}
