// SPDX-License-Identifier: MPL-2.0
//! BlazeFace decoding (MediaPipe face detection): one or two anchors per cell at the cell centres,
//! regressions in input pixels relative to the anchor, a sigmoid score, weighted NMS afterwards.

use std::path::Path;

use super::super::descriptor::{Descriptor, InputSize};
use super::super::error::Result;
use super::super::geometry::{BBox, Point};
use super::super::output::Output;
use super::{Candidates, Detection, expect_outputs, expect_rows};

/// Decoder parameters read from the descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct BlazeFace {
    strides: Vec<usize>,
    anchors_per_cell: usize,
    keypoints: usize,
}

impl BlazeFace {
    pub fn from_descriptor(d: &Descriptor) -> Result<Self> {
        let strides = super::strides(d)?;
        let anchors_per_cell = d.integer("anchors-per-cell", 1..=16)?;
        let keypoints = d.integer("keypoints", 4..=32)?;
        if !matches!(d.size, InputSize::Fixed { .. }) {
            return Err(d.error("size", "BlazeFace models have a fixed input size".into()));
        }
        if d.outputs.len() != 2 {
            return Err(d.error(
                "outputs",
                "expected two names: regressors, classificators".into(),
            ));
        }
        Ok(Self {
            strides,
            anchors_per_cell,
            keypoints,
        })
    }

    /// Anchor centres in tensor pixels; consecutive layers with the same stride share one grid.
    pub fn anchors(&self, width: usize, height: usize) -> Vec<Point> {
        let mut anchors = Vec::new();
        let mut layer = 0;
        while layer < self.strides.len() {
            let stride = self.strides[layer];
            let mut repeats = 0;
            while layer < self.strides.len() && self.strides[layer] == stride {
                repeats += 1;
                layer += 1;
            }
            let (gw, gh) = (width.div_ceil(stride), height.div_ceil(stride));
            for i in 0..gh {
                for j in 0..gw {
                    for _ in 0..repeats * self.anchors_per_cell {
                        anchors.push(Point::new(
                            (j as f32 + 0.5) * stride as f32,
                            (i as f32 + 0.5) * stride as f32,
                        ));
                    }
                }
            }
        }
        anchors
    }

    /// Decodes (regressors, classificators) into candidates in tensor pixels.
    pub fn decode(
        &self,
        path: &Path,
        outputs: &[Output],
        width: usize,
        height: usize,
        threshold: f32,
    ) -> Result<Candidates> {
        let anchors = self.anchors(width, height);
        let n = anchors.len();
        let cols = 4 + 2 * self.keypoints;
        expect_outputs(path, outputs, &["regressors", "classificators"])?;
        expect_rows(path, "regressors", &outputs[0], n, cols)?;
        expect_rows(path, "classificators", &outputs[1], n, 1)?;
        let (reg, cls) = (outputs[0].data, outputs[1].data);
        let mut out = Vec::new();
        for (i, a) in anchors.iter().enumerate() {
            let logit = cls[i].clamp(-80.0, 80.0);
            let score = 1.0 / (1.0 + (-logit).exp());
            if !(score >= threshold) {
                continue;
            }
            let r = &reg[i * cols..(i + 1) * cols];
            let (cx, cy, w, h) = (a.x + r[0], a.y + r[1], r[2], r[3]);
            let kp = |k: usize| Point::new(a.x + r[4 + 2 * k], a.y + r[5 + 2 * k]);
            // MediaPipe order: the eye on the image's left, the other eye, nose tip, mouth centre.
            let mouth = kp(3);
            out.push(Detection {
                bbox: BBox::new(cx - w * 0.5, cy - h * 0.5, cx + w * 0.5, cy + h * 0.5),
                score,
                keypoints: [kp(0), kp(1), kp(2), mouth, mouth],
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_grids_match_both_published_layouts() {
        let full = BlazeFace {
            strides: vec![4],
            anchors_per_cell: 1,
            keypoints: 6,
        };
        let a = full.anchors(192, 192);
        assert_eq!(a.len(), 2304);
        assert_eq!(a[1], Point::new(6.0, 2.0));
        let short = BlazeFace {
            strides: vec![8, 16, 16, 16],
            anchors_per_cell: 2,
            keypoints: 6,
        };
        assert_eq!(short.anchors(128, 128).len(), 896);
    }

    #[test]
    fn regressions_are_offsets_from_the_anchor_in_pixels() {
        let d = BlazeFace {
            strides: vec![64],
            anchors_per_cell: 1,
            keypoints: 6,
        };
        let mut reg = vec![0.0; 4 * 16];
        let mut cls = vec![-10.0; 4];
        cls[3] = 3.0; // anchor (96, 96)
        reg[3 * 16..3 * 16 + 4].copy_from_slice(&[2.0, -4.0, 40.0, 50.0]);
        reg[3 * 16 + 4] = -10.0;
        let out = vec![
            Output {
                shape: vec![1, 4, 16],
                data: &reg,
            },
            Output {
                shape: vec![1, 4, 1],
                data: &cls,
            },
        ];
        let c = d.decode(Path::new("b"), &out, 128, 128, 0.5).unwrap();
        assert_eq!(c.len(), 1);
        assert!(
            (c[0].bbox.centre().x - 98.0).abs() < 1e-4
                && (c[0].bbox.centre().y - 92.0).abs() < 1e-4
        );
        assert!((c[0].bbox.height() - 50.0).abs() < 1e-4);
        assert_eq!(c[0].keypoints[0], Point::new(86.0, 96.0));
        assert!((c[0].score - 0.9526).abs() < 1e-3);
    }
}
