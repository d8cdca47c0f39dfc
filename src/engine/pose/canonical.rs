// SPDX-License-Identifier: MPL-2.0
//! The 3-D reference face the rigid solver fits: MediaPipe's canonical face mesh, stored by the
//! models recipe as text (`x y z weight` per landmark, centimetres, x to the face's left as seen by
//! the camera, y up, z towards the camera).

use std::path::{Path, PathBuf};

use super::super::error::{Error, Result};

/// A sparse 3-D reference for 98-point WFLW landmarks: the 14 points the seed project's pose
/// utilities use (brow corners, eye corners, nose wings, mouth corners, lower lip, chin), each
/// paired with the canonical face vertex at the same anatomical place.
/// (WFLW index, canonical face index).
pub const WFLW_TO_CANONICAL: [(usize, usize); 14] = [
    (33, 46),  // brow, outer end, image left
    (38, 55),  // brow, inner end, image left
    (50, 285), // brow, inner end, image right
    (46, 276), // brow, outer end, image right
    (60, 33),  // eye, outer corner, image left
    (64, 133), // eye, inner corner, image left
    (68, 362), // eye, inner corner, image right
    (72, 263), // eye, outer corner, image right
    (55, 64),  // nose wing, image left
    (59, 294), // nose wing, image right
    (76, 61),  // mouth corner, image left
    (82, 291), // mouth corner, image right
    (85, 17),  // lower lip, centre of its lower edge
    (16, 152), // chin
];

/// Reference points and their fitting weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceFace {
    pub path: PathBuf,
    pub points: Vec<[f32; 3]>,
    pub weights: Vec<f32>,
}

impl ReferenceFace {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Data {
            path: path.to_owned(),
            message: format!(
                "cannot read it ({e}); {}",
                super::super::locate::missing_file_hint(path, "run `make models`")
            ),
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let mut points = Vec::new();
        let mut weights = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let v: Vec<f32> = line
                .split_whitespace()
                .map(|w| w.parse::<f32>().ok().filter(|x| x.is_finite()))
                .collect::<Option<Vec<f32>>>()
                .filter(|v| v.len() == 4 && v[3] >= 0.0)
                .ok_or_else(|| Error::Data {
                    path: path.to_owned(),
                    message: format!(
                        "line {}: expected `x y z weight` (finite, weight ≥ 0), found `{line}`",
                        i + 1
                    ),
                })?;
            points.push([v[0], v[1], v[2]]);
            weights.push(v[3]);
        }
        if points.len() < 3 {
            return Err(Error::Data {
                path: path.to_owned(),
                message: format!("holds {} points, at least 3 needed", points.len()),
            });
        }
        Ok(Self {
            path: path.to_owned(),
            points,
            weights,
        })
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points_and_rejects_bad_lines() {
        let f =
            ReferenceFace::parse(Path::new("c.txt"), "# c\n0 0 0 1\n1 0 0 0\n0 1 0 0.5\n").unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f.weights, [1.0, 0.0, 0.5]);
        let e = ReferenceFace::parse(Path::new("c.txt"), "0 0 0 1\n1 0 nan 0\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(ReferenceFace::parse(Path::new("c.txt"), "0 0 0 1\n").is_err());
    }
}
