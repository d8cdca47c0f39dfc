// SPDX-License-Identifier: MPL-2.0
//! Model descriptors: small `key = value` text files beside each model that say how to feed it and
//! how to read it, so that a new model of a known family needs a descriptor and no code.
//!
//! ```text
//! # comment
//! family = retinaface          # retinaface | blazeface | facemesh | pfld | headpose
//! input = input                # name of the image input
//! layout = nhwc                # nhwc | nchw
//! colour = rgb                 # rgb | bgr
//! size = dynamic 32            # "dynamic <multiple>" or "<width>x<height>"
//! resize = letterbox           # letterbox (pad right/bottom) | letterbox-centre
//! mean = 0 0 0                 # value = (pixel - mean) * scale, per channel in model order
//! scale = 1 1 1
//! outputs = bbox landmark conf # family-specific order
//! frame-graph = m.frame.onnx   # optional: the frame graphs of graph pre-processing (packed and
//! frame-graph-yuv = m.frame-yuv.onnx  # I420/NV12 frames; see crate::engine::preprocess)
//! ```
//! Family parameters (priors, strides, point counts …) follow as further keys.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::image::{ColourOrder, Layout, TensorFormat};

/// The model families the engine can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    RetinaFace,
    BlazeFace,
    FaceMesh,
    /// PFLD-style 2-D landmarks (e.g. the 98 WFLW points), coordinates in 0..1 of the crop.
    Pfld,
    /// Head-pose regressors: a face crop in, yaw, pitch and roll out (see
    /// [`crate::engine::headpose`]).
    HeadPose,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::RetinaFace => "retinaface",
            Family::BlazeFace => "blazeface",
            Family::FaceMesh => "facemesh",
            Family::Pfld => "pfld",
            Family::HeadPose => "headpose",
        }
    }

    pub fn is_detector(self) -> bool {
        matches!(self, Family::RetinaFace | Family::BlazeFace)
    }
}

/// Spatial size rule of the image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputSize {
    Fixed {
        width: usize,
        height: usize,
    },
    /// Any size that is a multiple of `multiple` on both axes.
    Dynamic {
        multiple: usize,
    },
}

/// How a detector's input is fitted into the tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// Keep the aspect ratio, image at the top left, pad right and bottom.
    Letterbox,
    /// Keep the aspect ratio, image centred, pad both sides.
    LetterboxCentre,
}

/// A parsed descriptor.
#[derive(Debug, Clone)]
pub struct Descriptor {
    pub path: PathBuf,
    pub family: Family,
    pub input: String,
    pub tensor: TensorFormat,
    pub size: InputSize,
    pub resize: Resize,
    pub outputs: Vec<String>,
    values: HashMap<String, (usize, String)>,
}

/// Every key a descriptor may hold.
pub const KNOWN_KEYS: &[&str] = &[
    "family",
    "input",
    "layout",
    "colour",
    "size",
    "resize",
    "mean",
    "scale",
    "outputs",
    // family parameters
    "strides",
    "min-sizes",
    "variances",
    "score",
    "anchors-per-cell",
    "keypoints",
    "points",
    "crop-scale",
    "axis-points",
    "description",
    // head-pose regressors
    "decode",
    "bin-values",
    "axes",
    "bins",
    "bin-step",
    "bin-offset",
    "crop",
    "crop-shape",
    // the model with its pre-processing folded in (see crate::engine::preprocess)
    "frame-graph",
    "frame-graph-yuv",
];

impl Descriptor {
    /// Reads and validates a descriptor file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Descriptor {
            path: path.to_owned(),
            line: None,
            message: match e.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "cannot read it: {e}; {}",
                    super::locate::missing_file_hint(
                        path,
                        "expected beside its model (run `make models`, or set the descriptor path)"
                    )
                ),
                _ => format!("cannot read it: {e}"),
            },
        })?;
        Self::parse(path, &text)
    }

    /// Parses descriptor text; `path` is used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let err = |line: Option<usize>, message: String| Error::Descriptor {
            path: path.to_owned(),
            line,
            message,
        };
        let mut values: HashMap<String, (usize, String)> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (key, value) = line.split_once('=').ok_or_else(|| {
                err(
                    Some(line_no),
                    format!("expected `key = value`, found `{line}`"),
                )
            })?;
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim().to_string();
            if !KNOWN_KEYS.contains(&key.as_str()) {
                return Err(err(Some(line_no), format!("unknown key `{key}`")));
            }
            if value.is_empty() {
                return Err(err(Some(line_no), format!("`{key}` has no value")));
            }
            if values.insert(key.clone(), (line_no, value)).is_some() {
                return Err(err(Some(line_no), format!("`{key}` is given twice")));
            }
        }

        let mut d = Descriptor {
            path: path.to_owned(),
            family: Family::RetinaFace,
            input: String::new(),
            tensor: TensorFormat {
                layout: Layout::Nhwc,
                colour: ColourOrder::Rgb,
                mean: [0.0; 3],
                scale: [1.0; 3],
            },
            size: InputSize::Dynamic { multiple: 1 },
            resize: Resize::Letterbox,
            outputs: Vec::new(),
            values,
        };
        d.family = match d.required("family")?.as_str() {
            "retinaface" => Family::RetinaFace,
            "blazeface" => Family::BlazeFace,
            "facemesh" => Family::FaceMesh,
            "pfld" => Family::Pfld,
            "headpose" => Family::HeadPose,
            other => {
                return Err(d.error(
                    "family",
                    format!(
                        "unknown family `{other}` (expected retinaface, blazeface, facemesh, pfld \
                         or headpose)"
                    ),
                ));
            }
        };
        d.input = d.required("input")?;
        d.tensor.layout = match d.required("layout")?.as_str() {
            "nhwc" => Layout::Nhwc,
            "nchw" => Layout::Nchw,
            other => return Err(d.error("layout", format!("`{other}` is not nhwc or nchw"))),
        };
        d.tensor.colour = match d.required("colour")?.as_str() {
            "rgb" => ColourOrder::Rgb,
            "bgr" => ColourOrder::Bgr,
            other => return Err(d.error("colour", format!("`{other}` is not rgb or bgr"))),
        };
        d.tensor.mean = d.triple("mean")?;
        d.tensor.scale = d.triple("scale")?;
        if d.tensor.scale.contains(&0.0) {
            return Err(d.error("scale", "a scale of 0 erases the image".into()));
        }
        d.size = d.parse_size()?;
        d.resize = match d.optional("resize").as_deref() {
            None | Some("letterbox") => Resize::Letterbox,
            Some("letterbox-centre") => Resize::LetterboxCentre,
            Some(other) => {
                return Err(d.error(
                    "resize",
                    format!("`{other}` is not letterbox or letterbox-centre"),
                ));
            }
        };
        d.outputs = d
            .required("outputs")?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        Ok(d)
    }

    fn parse_size(&self) -> Result<InputSize> {
        let value = self.required("size")?;
        let words: Vec<&str> = value.split_whitespace().collect();
        let size = match words.as_slice() {
            ["dynamic", m] => m
                .parse::<usize>()
                .ok()
                .filter(|m| (1..=256).contains(m))
                .map(|multiple| InputSize::Dynamic { multiple }),
            [wh] => wh.split_once('x').and_then(|(w, h)| {
                let (w, h) = (w.parse::<usize>().ok()?, h.parse::<usize>().ok()?);
                ((1..=8192).contains(&w) && (1..=8192).contains(&h)).then_some(InputSize::Fixed {
                    width: w,
                    height: h,
                })
            }),
            _ => None,
        };
        size.ok_or_else(|| {
            self.error(
                "size",
                format!(
                    "`{value}` is not `<width>x<height>` (1..8192) or `dynamic <multiple>` (1..256)"
                ),
            )
        })
    }

    /// An error about `key`, with its line when it is present.
    pub fn error(&self, key: &str, message: String) -> Error {
        Error::Descriptor {
            path: self.path.clone(),
            line: self.values.get(key).map(|(l, _)| *l),
            message: format!("{key}: {message}"),
        }
    }

    pub fn optional(&self, key: &str) -> Option<String> {
        self.values.get(key).map(|(_, v)| v.clone())
    }

    pub fn required(&self, key: &str) -> Result<String> {
        self.optional(key).ok_or_else(|| Error::Descriptor {
            path: self.path.clone(),
            line: None,
            message: format!("required key `{key}` is missing"),
        })
    }

    /// A list of finite numbers.
    pub fn numbers(&self, key: &str) -> Result<Vec<f32>> {
        let value = self.required(key)?;
        value
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .filter(|w| !w.is_empty())
            .map(|w| {
                w.parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| self.error(key, format!("`{w}` is not a finite number")))
            })
            .collect()
    }

    /// Groups separated by `;`, each a list of numbers.
    pub fn groups(&self, key: &str) -> Result<Vec<Vec<f32>>> {
        let value = self.required(key)?;
        value
            .split(';')
            .map(|g| {
                g.split(|c: char| c.is_whitespace() || c == ',')
                    .filter(|w| !w.is_empty())
                    .map(|w| {
                        w.parse::<f32>()
                            .ok()
                            .filter(|v| v.is_finite() && *v > 0.0)
                            .ok_or_else(|| {
                                self.error(key, format!("`{w}` is not a positive number"))
                            })
                    })
                    .collect::<Result<Vec<f32>>>()
            })
            .collect()
    }

    /// A whole number within `range`.
    pub fn integer(&self, key: &str, range: std::ops::RangeInclusive<usize>) -> Result<usize> {
        let value = self.required(key)?;
        value
            .parse::<usize>()
            .ok()
            .filter(|v| range.contains(v))
            .ok_or_else(|| {
                self.error(
                    key,
                    format!(
                        "`{value}` is not a whole number in {}..={}",
                        range.start(),
                        range.end()
                    ),
                )
            })
    }

    fn triple(&self, key: &str) -> Result<[f32; 3]> {
        let v = self.numbers(key)?;
        match v.as_slice() {
            [a] => Ok([*a; 3]),
            [a, b, c] => Ok([*a, *b, *c]),
            _ => Err(self.error(key, format!("expected 1 or 3 numbers, found {}", v.len()))),
        }
    }

    /// The output name at `index`, or an error naming the role expected there.
    pub fn output(&self, index: usize, role: &str) -> Result<&str> {
        self.outputs.get(index).map(String::as_str).ok_or_else(|| {
            self.error(
                "outputs",
                format!("output {} ({role}) is not named", index + 1),
            )
        })
    }

    /// The descriptor beside a model: same folder and stem, extension `.descriptor`.
    pub fn path_for_model(model: &Path) -> PathBuf {
        model.with_extension("descriptor")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# test\nfamily = facemesh\ninput = input\nlayout = nhwc\ncolour = rgb\n\
        size = 192x192\nmean = 0\nscale = 0.00392157\noutputs = landmarks face_flag\npoints = 468\n";

    #[test]
    fn parses_a_complete_descriptor() {
        let d = Descriptor::parse(Path::new("x.descriptor"), GOOD).unwrap();
        assert_eq!(d.family, Family::FaceMesh);
        assert_eq!(
            d.size,
            InputSize::Fixed {
                width: 192,
                height: 192
            }
        );
        assert_eq!(d.outputs, ["landmarks", "face_flag"]);
        assert_eq!(d.integer("points", 1..=1000).unwrap(), 468);
        assert!((d.tensor.scale[2] - 1.0 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        let bad = GOOD.replace("size = 192x192", "size = big");
        let e = Descriptor::parse(Path::new("m.descriptor"), &bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m.descriptor") && e.contains("line 6") && e.contains("size"),
            "{e}"
        );
        let e = Descriptor::parse(
            Path::new("m.descriptor"),
            &GOOD.replace("family = facemesh\n", ""),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`family` is missing"), "{e}");
        let e = Descriptor::parse(Path::new("m"), &format!("{GOOD}bogus = 1\n")).unwrap_err();
        assert!(e.to_string().contains("unknown key `bogus`"));
        let e = Descriptor::parse(Path::new("m"), &GOOD.replace("mean = 0", "mean = nan"));
        assert!(e.unwrap_err().to_string().contains("not a finite number"));
        let e = Descriptor::parse(
            Path::new("m"),
            &GOOD.replace("scale = 0.00392157", "scale = 0"),
        );
        assert!(e.unwrap_err().to_string().contains("erases"));
    }

    #[test]
    fn arbitrary_text_never_panics() {
        let samples = [
            "",
            "=",
            "==",
            "family",
            "family=",
            "size = dynamic 0",
            "size = 0x0",
            "size = 99999x1",
            "size = dynamic",
            "mean = 1 2",
            "\u{0}\u{ffff}=\u{1}",
            "family = facemesh\nfamily = x",
        ];
        for s in samples {
            let _ = Descriptor::parse(Path::new("fuzz"), s);
            let _ = Descriptor::parse(Path::new("fuzz"), &format!("{GOOD}{s}"));
        }
    }
}
