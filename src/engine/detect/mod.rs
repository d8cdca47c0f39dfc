// SPDX-License-Identifier: MPL-2.0
//! Face detectors: one file per model family, sharing the input fitting, the mapping back to the
//! frame, non-maximum suppression and the filters of [`DetectConfig`].

pub mod background;
pub mod blazeface;
pub mod retinaface;

use std::path::Path;

use super::descriptor::{Descriptor, Family, InputSize, Resize};
use super::error::{Error, Result};
use super::geometry::{Affine, BBox, Point};
use super::image::ImageView;
use super::model::Model;
use super::output::Output;
use super::runtime::RuntimeOptions;

/// Default long side of the detector input for models with a dynamic input size.
pub const DEFAULT_INPUT_SIZE: usize = 640;
pub const DEFAULT_SCORE_THRESHOLD: f32 = 0.5;
pub const DEFAULT_NMS_IOU: f32 = 0.4;
pub const DEFAULT_MAX_FACES: usize = 16;
pub const DEFAULT_MIN_FACE_SIZE: f32 = 0.0;

/// Detector settings that may change between frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectConfig {
    /// Long side of the input tensor (models with a dynamic input size only).
    pub input_size: usize,
    pub score_threshold: f32,
    pub nms_iou: f32,
    pub max_faces: usize,
    /// Faces whose box is smaller than this many pixels on its longer side are dropped.
    pub min_face_size: f32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            input_size: DEFAULT_INPUT_SIZE,
            score_threshold: DEFAULT_SCORE_THRESHOLD,
            nms_iou: DEFAULT_NMS_IOU,
            max_faces: DEFAULT_MAX_FACES,
            min_face_size: DEFAULT_MIN_FACE_SIZE,
        }
    }
}

impl DetectConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if !(32..=4096).contains(&self.input_size) {
            return bad(format!(
                "detector input size {} is outside 32..=4096",
                self.input_size
            ));
        }
        if !(0.0..=1.0).contains(&self.score_threshold) {
            return bad(format!(
                "detection threshold {} is outside 0..=1",
                self.score_threshold
            ));
        }
        if !(0.0..=1.0).contains(&self.nms_iou) {
            return bad(format!("NMS threshold {} is outside 0..=1", self.nms_iou));
        }
        if !(self.min_face_size >= 0.0 && self.min_face_size.is_finite()) {
            return bad(format!(
                "minimum face size {} is not ≥ 0",
                self.min_face_size
            ));
        }
        Ok(())
    }
}

/// Index of each key point in [`Detection::keypoints`].
pub const KEYPOINT_NAMES: [&str; 5] =
    ["left-eye", "right-eye", "nose", "mouth-left", "mouth-right"];

/// One detected face in frame pixels. Key points, in order: the eye on the image's left, the eye on
/// the image's right, the nose tip, the mouth corner on the image's left, the one on the right
/// (detectors that give only the mouth centre repeat it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    pub keypoints: [Point; 5],
}

/// Raw candidates in tensor pixels, before NMS and the mapping back.
pub(crate) type Candidates = Vec<Detection>;

enum Decoder {
    RetinaFace(retinaface::RetinaFace),
    BlazeFace(blazeface::BlazeFace),
}

impl Decoder {
    fn from_descriptor(d: &Descriptor) -> Result<Decoder> {
        Ok(match d.family {
            Family::RetinaFace => Decoder::RetinaFace(retinaface::RetinaFace::from_descriptor(d)?),
            Family::BlazeFace => Decoder::BlazeFace(blazeface::BlazeFace::from_descriptor(d)?),
            other => {
                return Err(d.error("family", format!("{} is not a detector", other.name())));
            }
        })
    }

    fn decode(
        &self,
        path: &Path,
        outputs: &[Output],
        fit: &Fit,
        threshold: f32,
    ) -> Result<Candidates> {
        match self {
            Decoder::RetinaFace(r) => r.decode(path, outputs, fit.width, fit.height, threshold),
            Decoder::BlazeFace(b) => b.decode(path, outputs, fit.width, fit.height, threshold),
        }
    }

    /// Whether candidates are merged by weighted NMS (BlazeFace) rather than plain NMS.
    fn weighted(&self) -> bool {
        matches!(self, Decoder::BlazeFace(_))
    }
}

/// A face detector of any supported family.
pub struct Detector {
    model: Model,
    decoder: Decoder,
}

/// Where the frame sits in the tensor: tensor = frame · scale + offset. Public so that tests can
/// size synthetic detector outputs (see [`decode_outputs`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub width: usize,
    pub height: usize,
    pub scale: f32,
    pub offset: Point,
}

impl Fit {
    pub fn new(
        frame_w: usize,
        frame_h: usize,
        size: InputSize,
        resize: Resize,
        long_side: usize,
    ) -> Fit {
        let (fw, fh) = (frame_w as f32, frame_h as f32);
        let (width, height, scale, rw, rh) = match size {
            InputSize::Fixed { width, height } => {
                let s = (width as f32 / fw).min(height as f32 / fh);
                (width, height, s, fw * s, fh * s)
            }
            InputSize::Dynamic { multiple } => {
                let s = long_side as f32 / fw.max(fh);
                let rw = (fw * s).round().max(1.0);
                let rh = (fh * s).round().max(1.0);
                let w = (rw as usize).div_ceil(multiple) * multiple;
                let h = (rh as usize).div_ceil(multiple) * multiple;
                (w, h, s, rw, rh)
            }
        };
        let offset = match resize {
            Resize::Letterbox => Point::new(0.0, 0.0),
            Resize::LetterboxCentre => {
                Point::new((width as f32 - rw) * 0.5, (height as f32 - rh) * 0.5)
            }
        };
        Fit {
            width,
            height,
            scale,
            offset,
        }
    }

    /// Tensor pixel → frame pixel.
    pub fn to_frame(self) -> Affine {
        let inv = 1.0 / self.scale;
        Affine::scale_translate(inv, -self.offset.x * inv, -self.offset.y * inv)
    }
}

impl Detector {
    /// Loads a detector model and its descriptor (default: beside the model).
    pub fn load(
        path: &Path,
        descriptor: Option<&Path>,
        options: &RuntimeOptions,
    ) -> Result<Detector> {
        let model = Model::load(
            path,
            descriptor,
            &[Family::RetinaFace, Family::BlazeFace],
            options,
        )?;
        let decoder = Decoder::from_descriptor(&model.descriptor)?;
        Ok(Detector { model, decoder })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model, to share its frame store (see [`Model::share_frame_store`]).
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    pub fn descriptor(&self) -> &Descriptor {
        &self.model.descriptor
    }

    /// Width and height of the detector's input for a `width` × `height` frame.
    pub fn input_dimensions(
        &self,
        width: usize,
        height: usize,
        config: &DetectConfig,
    ) -> (usize, usize) {
        let d = &self.model.descriptor;
        let fit = Fit::new(width, height, d.size, d.resize, config.input_size);
        (fit.width, fit.height)
    }

    /// Finds faces in `image`, best first.
    pub fn detect(&mut self, image: &ImageView, config: &DetectConfig) -> Result<Vec<Detection>> {
        let whole = BBox::new(0.0, 0.0, image.width() as f32, image.height() as f32);
        self.detect_in(image, &whole, config)
    }

    /// Finds faces in the `region` of `image` (frame pixels; the detector's input fits the
    /// region, whose long side becomes `config.input_size` for models with a dynamic input),
    /// best first, in frame pixels. Faces that reach past the region keep their whole box.
    pub fn detect_in(
        &mut self,
        image: &ImageView,
        region: &BBox,
        config: &DetectConfig,
    ) -> Result<Vec<Detection>> {
        config.validate()?;
        let region = region.clamp_to(image.width() as f32, image.height() as f32);
        if !(region.width() >= 1.0 && region.height() >= 1.0) {
            return Ok(Vec::new());
        }
        let d = &self.model.descriptor;
        let fit = Fit::new(
            region.width().round() as usize,
            region.height().round() as usize,
            d.size,
            d.resize,
            config.input_size,
        );
        let inner = fit.to_frame();
        let to_frame = Affine::scale_translate(inner.a, inner.tx + region.x0, inner.ty + region.y0);
        let threshold = config.score_threshold;
        let decoder = &self.decoder;
        let path = self.model.path.clone();
        let read = |outputs: &[Output]| decoder.decode(&path, outputs, &fit, threshold);
        let candidates = self
            .model
            .run_maps(image, &[to_frame], (fit.width, fit.height), read)?;
        let (w, h) = (image.width() as f32, image.height() as f32);
        Ok(finish(
            candidates,
            &to_frame,
            w,
            h,
            config,
            decoder.weighted(),
        ))
    }
}

/// Everything [`Detector::detect`] does after inference, without a session: decodes the outputs
/// (in descriptor order) of the detector described by `descriptor` for a `frame_width` ×
/// `frame_height` frame, then runs NMS, the mapping back to the frame and the filters. The
/// tensor size the outputs must match is `Fit::new(frame_width, frame_height, descriptor.size,
/// descriptor.resize, config.input_size)`. Public for the robustness tests (tests/hardening.rs).
pub fn decode_outputs(
    descriptor: &Descriptor,
    model: &Path,
    outputs: &[Output],
    frame_width: usize,
    frame_height: usize,
    config: &DetectConfig,
) -> Result<Vec<Detection>> {
    config.validate()?;
    if frame_width == 0 || frame_height == 0 {
        return Err(Error::Image(format!(
            "a {frame_width}×{frame_height} frame has no pixels"
        )));
    }
    let decoder = Decoder::from_descriptor(descriptor)?;
    let fit = Fit::new(
        frame_width,
        frame_height,
        descriptor.size,
        descriptor.resize,
        config.input_size,
    );
    let candidates = decoder.decode(model, outputs, &fit, config.score_threshold)?;
    Ok(finish(
        candidates,
        &fit.to_frame(),
        frame_width as f32,
        frame_height as f32,
        config,
        decoder.weighted(),
    ))
}

/// NMS in tensor space, mapping to a `width` × `height` frame, clipping and the size and count
/// filters. Every detection returned has a score in 0..=1 and a box and key points that are finite
/// and inside the frame.
fn finish(
    candidates: Candidates,
    to_frame: &Affine,
    width: f32,
    height: f32,
    config: &DetectConfig,
    weighted: bool,
) -> Vec<Detection> {
    let kept = if weighted {
        weighted_nms(candidates, config.nms_iou)
    } else {
        nms(candidates, config.nms_iou)
    };
    let (w, h) = (width, height);
    kept.into_iter()
        .filter_map(|d| {
            let p0 = to_frame.apply(Point::new(d.bbox.x0, d.bbox.y0));
            let p1 = to_frame.apply(Point::new(d.bbox.x1, d.bbox.y1));
            let bbox = BBox::new(p0.x, p0.y, p1.x, p1.y).clamp_to(w, h);
            // The mapping can overflow huge (finite) tensor coordinates, and clamping keeps NaN.
            let mapped = d.keypoints.map(|k| to_frame.apply(k));
            let keypoints_ok = mapped.iter().all(|p| p.x.is_finite() && p.y.is_finite());
            let keypoints = mapped.map(|p| Point::new(p.x.clamp(0.0, w), p.y.clamp(0.0, h)));
            let ok = keypoints_ok
                && bbox.is_finite()
                && bbox.area() > 0.0
                && bbox.width().max(bbox.height()) >= config.min_face_size
                && d.score.is_finite();
            ok.then_some(Detection {
                bbox,
                score: d.score.clamp(0.0, 1.0),
                keypoints,
            })
        })
        .take(config.max_faces)
        .collect()
}

/// Keeps the candidates whose score, box and key points are finite, best score first.
fn sort_by_score(c: &mut Candidates) {
    c.retain(|d| {
        d.score.is_finite()
            && d.bbox.is_finite()
            && d.keypoints
                .iter()
                .all(|k| k.x.is_finite() && k.y.is_finite())
    });
    c.sort_by(|a, b| b.score.total_cmp(&a.score));
}

/// Greedy non-maximum suppression: keeps the best box of every group overlapping more than `iou`.
pub fn nms(mut candidates: Candidates, iou: f32) -> Candidates {
    sort_by_score(&mut candidates);
    let mut kept: Candidates = Vec::new();
    for c in candidates {
        if kept.iter().all(|k| k.bbox.iou(&c.bbox) <= iou) {
            kept.push(c);
        }
    }
    kept
}

/// Weighted non-maximum suppression (BlazeFace): each group's boxes and points are averaged,
/// weighted by score (negative scores weigh nothing); the group keeps its best score. The sums run
/// in f64, so averaging huge finite coordinates cannot overflow to infinity.
pub fn weighted_nms(mut candidates: Candidates, iou: f32) -> Candidates {
    sort_by_score(&mut candidates);
    let mut out = Vec::new();
    let mut used = vec![false; candidates.len()];
    for i in 0..candidates.len() {
        if used[i] {
            continue;
        }
        let top = candidates[i];
        let mut total = 0.0f64;
        // x0, y0, x1, y1, then x, y of each key point.
        let mut sums = [0.0f64; 14];
        for j in i..candidates.len() {
            if used[j] || top.bbox.iou(&candidates[j].bbox) <= iou && j != i {
                continue;
            }
            used[j] = true;
            let c = &candidates[j];
            let weight = c.score.max(0.0) as f64;
            total += weight;
            let b = &c.bbox;
            let values = [b.x0, b.y0, b.x1, b.y1]
                .into_iter()
                .chain(c.keypoints.iter().flat_map(|p| [p.x, p.y]));
            for (acc, v) in sums.iter_mut().zip(values) {
                *acc += v as f64 * weight;
            }
        }
        if total > 0.0 {
            let avg = sums.map(|v| (v / total) as f32);
            out.push(Detection {
                bbox: BBox::new(avg[0], avg[1], avg[2], avg[3]),
                score: top.score,
                keypoints: std::array::from_fn(|k| Point::new(avg[4 + 2 * k], avg[5 + 2 * k])),
            });
        } else {
            out.push(top);
        }
    }
    out
}

/// Checks that the model gave one output per name in `names` (the roles, in descriptor order).
pub(crate) fn expect_outputs(path: &Path, outputs: &[Output], names: &[&str]) -> Result<()> {
    if outputs.len() != names.len() {
        return Err(Error::Model {
            path: path.to_owned(),
            message: format!(
                "gave {} outputs with shapes {:?}; expected {} ({})",
                outputs.len(),
                outputs.iter().map(|o| &o.shape).collect::<Vec<_>>(),
                names.len(),
                names.join(", ")
            ),
        });
    }
    Ok(())
}

/// The strides of a detector descriptor: whole numbers in 1..=512.
pub(crate) fn strides(d: &Descriptor) -> Result<Vec<usize>> {
    let numbers = d.numbers("strides")?;
    if numbers.is_empty()
        || numbers
            .iter()
            .any(|s| s.fract() != 0.0 || !(1.0..=512.0).contains(s))
    {
        return Err(d.error("strides", "expected whole numbers in 1..=512".into()));
    }
    Ok(numbers.into_iter().map(|s| s as usize).collect())
}

/// Checks that an output has `rows` rows of `cols` values (any leading ones).
pub(crate) fn expect_rows(
    path: &Path,
    name: &str,
    output: &Output,
    rows: usize,
    cols: usize,
) -> Result<()> {
    if output.data.len() != rows * cols {
        return Err(Error::Model {
            path: path.to_owned(),
            message: format!(
                "output `{name}` has shape {:?} ({} values); expected {rows}×{cols} for this input \
                 (check the descriptor's priors/anchors)",
                output.shape,
                output.data.len()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0),
            score,
            keypoints: [Point::new(x, 0.0); 5],
        }
    }

    #[test]
    fn nms_keeps_the_best_of_each_overlapping_group() {
        let kept = nms(
            vec![
                det(0.0, 0.6),
                det(1.0, 0.9),
                det(50.0, 0.7),
                det(f32::NAN, 1.0),
            ],
            0.4,
        );
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].bbox.x0, 50.0);
    }

    #[test]
    fn weighted_nms_averages_a_group() {
        let kept = weighted_nms(vec![det(0.0, 0.5), det(2.0, 0.5), det(100.0, 0.2)], 0.3);
        assert_eq!(kept.len(), 2);
        assert!((kept[0].bbox.x0 - 1.0).abs() < 1e-5);
        assert_eq!(kept[0].score, 0.5);
    }

    #[test]
    fn dynamic_fit_scales_the_long_side_and_pads_to_the_multiple() {
        let f = Fit::new(
            1920,
            1080,
            InputSize::Dynamic { multiple: 32 },
            Resize::Letterbox,
            640,
        );
        assert_eq!((f.width, f.height), (640, 384));
        assert!((f.scale - 1.0 / 3.0).abs() < 1e-6);
        let p = f.to_frame().apply(Point::new(320.0, 180.0));
        assert!((p.x - 960.0).abs() < 1e-3 && (p.y - 540.0).abs() < 1e-3);
    }

    #[test]
    fn centred_fixed_fit_pads_both_sides() {
        let f = Fit::new(
            200,
            100,
            InputSize::Fixed {
                width: 128,
                height: 128,
            },
            Resize::LetterboxCentre,
            0,
        );
        assert_eq!((f.width, f.height), (128, 128));
        assert!((f.offset.y - 32.0).abs() < 1e-4 && f.offset.x.abs() < 1e-4);
        let p = f.to_frame().apply(Point::new(64.0, 64.0));
        assert!((p.x - 100.0).abs() < 1e-3 && (p.y - 50.0).abs() < 1e-3);
    }

    #[test]
    fn finish_clips_filters_and_limits() {
        let data = vec![0u8; 100 * 100 * 3];
        let img =
            ImageView::packed(super::super::image::PixelFormat::Rgb, 100, 100, &data, 300).unwrap();
        let mut c = vec![det(95.0, 0.9), det(20.0, 0.8), det(40.0, 0.7)];
        c[0].bbox.x1 = 150.0;
        let cfg = DetectConfig {
            max_faces: 2,
            min_face_size: 8.0,
            ..Default::default()
        };
        let out = finish(
            c,
            &Affine::IDENTITY,
            img.width() as f32,
            img.height() as f32,
            &cfg,
            false,
        );
        assert_eq!(out.len(), 2);
        // The first box was clipped to 5 px wide but is 10 px tall, so it stays.
        assert_eq!(out[0].bbox.x1, 100.0);
    }
}
