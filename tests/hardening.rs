// SPDX-License-Identifier: MPL-2.0
//! Property tests for the parts of the engine that read untrusted numbers: the descriptor parser,
//! the detector decoders (with NMS and the mapping back to the frame), the pose solvers and the
//! geometry helpers. Inputs are arbitrary: random text, output tensors of any length holding NaN,
//! infinities and huge values, degenerate point sets. None may panic, and nothing that reaches the
//! metadata may be out of range: detection scores in 0..=1, boxes and key points finite and inside
//! the frame, angles finite and within ±180°.
//!
//! No model runs here: the detector outputs are handed straight to
//! [`gstfacepose::engine::detect::decode_outputs`], which is what `Detector::detect` does after
//! inference. Failing cases are written to `tests/hardening.proptest-regressions` by proptest.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::select;

use gstfacepose::engine::Error;
use gstfacepose::engine::descriptor::{Descriptor, Family};
use gstfacepose::engine::detect::blazeface::BlazeFace;
use gstfacepose::engine::detect::retinaface::RetinaFace;
use gstfacepose::engine::detect::{
    DetectConfig, Detection, Fit, decode_outputs, nms, weighted_nms,
};
use gstfacepose::engine::geometry::{Affine, BBox, Point, RotatedRect};
use gstfacepose::engine::output::Output;
use gstfacepose::engine::pose::rigid::{self, RigidFit};
use gstfacepose::engine::pose::{Pose, Rotation, seed};

/// Cases per property: enough to hit the odd values often, few enough for a quick run.
const CASES: u32 = 256;

/// The model path handed to the decoders; errors must name it.
const MODEL: &str = "hardening/detector.onnx";

/// Every key the descriptor parser knows.
const KEYS: &[&str] = gstfacepose::engine::descriptor::KNOWN_KEYS;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Value strategies

/// Mostly ordinary values, often in 0..1 (scores), sometimes anything a float can hold.
fn wild_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -10.0f32..10.0,
        3 => 0.0f32..=1.0,
        1 => -1e4f32..1e4,
        2 => prop::num::f32::ANY,
        1 => select(vec![
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            -0.0,
            1e30,
            -1e30,
            1e-30,
        ]),
    ]
}

/// The f64 counterpart for the pose solver.
fn wild_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => -10.0f64..10.0,
        1 => -1e4f64..1e4,
        2 => prop::num::f64::ANY,
        1 => select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            0.0,
            1e300,
            -1e300,
            1e-300,
        ]),
    ]
}

fn wild_point() -> impl Strategy<Value = Point> {
    (wild_f32(), wild_f32()).prop_map(|(x, y)| Point::new(x, y))
}

fn wild_bbox() -> impl Strategy<Value = BBox> {
    (wild_f32(), wild_f32(), wild_f32(), wild_f32())
        .prop_map(|(x0, y0, x1, y1)| BBox::new(x0, y0, x1, y1))
}

fn wild_detection() -> impl Strategy<Value = Detection> {
    (wild_bbox(), wild_f32(), prop::array::uniform5(wild_point())).prop_map(
        |(bbox, score, keypoints)| Detection {
            bbox,
            score,
            keypoints,
        },
    )
}

/// A valid detector configuration (invalid ones are refused by `validate`, tested apart).
fn detect_config() -> impl Strategy<Value = DetectConfig> {
    (
        32usize..=96,
        0.0f32..=1.0,
        0.0f32..=1.0,
        0usize..=20,
        0.0f32..=30.0,
    )
        .prop_map(
            |(input_size, score_threshold, nms_iou, max_faces, min_face_size)| DetectConfig {
                input_size,
                score_threshold,
                nms_iou,
                max_faces,
                min_face_size,
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Checks shared by several properties

/// A detection as it may reach the metadata of a `width` × `height` frame.
fn assert_detection_in_frame(d: &Detection, width: f32, height: f32) -> Result<(), TestCaseError> {
    prop_assert!(
        d.score.is_finite() && (0.0..=1.0).contains(&d.score),
        "score {} outside 0..=1: {d:?}",
        d.score
    );
    let b = d.bbox;
    prop_assert!(b.is_finite(), "non-finite box {d:?}");
    prop_assert!(
        0.0 <= b.x0
            && b.x0 <= b.x1
            && b.x1 <= width
            && 0.0 <= b.y0
            && b.y0 <= b.y1
            && b.y1 <= height,
        "box outside the {width}×{height} frame: {d:?}"
    );
    for k in &d.keypoints {
        prop_assert!(
            k.x.is_finite() && k.y.is_finite(),
            "non-finite key point {d:?}"
        );
        prop_assert!(
            (0.0..=width).contains(&k.x) && (0.0..=height).contains(&k.y),
            "key point outside the {width}×{height} frame: {d:?}"
        );
    }
    Ok(())
}

/// Angles that may go into the metadata: finite, yaw within ±90° (asin), the others within ±180°.
fn assert_pose_in_range(p: &Pose) -> Result<(), TestCaseError> {
    prop_assert!(p.is_finite(), "non-finite pose {p:?}");
    prop_assert!(
        p.yaw.abs() <= 180.0 && p.pitch.abs() <= 180.0 && p.roll.abs() <= 180.0,
        "pose out of range {p:?}"
    );
    Ok(())
}

/// A finite 3×3 matrix with orthonormal rows (within float rounding).
fn assert_rotation(r: &Rotation) -> Result<(), TestCaseError> {
    prop_assert!(
        r.iter().flatten().all(|v| v.is_finite()),
        "non-finite rotation {r:?}"
    );
    for i in 0..3 {
        for j in 0..3 {
            let dot: f32 = (0..3).map(|k| r[i][k] * r[j][k]).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            prop_assert!((dot - want).abs() < 1e-3, "rotation not orthonormal {r:?}");
        }
    }
    Ok(())
}

/// A successful rigid fit as the engine would use it.
fn assert_fit(f: &RigidFit) -> Result<(), TestCaseError> {
    assert_rotation(&f.rotation)?;
    prop_assert!(f.scale.is_finite() && f.scale > 0.0, "bad scale {f:?}");
    prop_assert!(
        f.translation.iter().all(|v| v.is_finite()) && !f.rms.is_nan(),
        "non-finite fit {f:?}"
    );
    assert_pose_in_range(&f.pose())
}

/// Whether a descriptor error message names `key` (as `key: …` or in backticks).
fn names_key(message: &str, key: &str) -> bool {
    message.starts_with(&format!("{key}:")) || message.contains(&format!("`{key}`"))
}

// ---------------------------------------------------------------------------------------------
// Descriptor parser

fn real_descriptors() -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut found: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "descriptor"))
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (p, text)
        })
        .collect();
    found.sort();
    assert!(
        found.len() >= 4,
        "expected the descriptors of models/, found {found:?}"
    );
    found
}

/// Runs what model loading runs on a parsed descriptor: the family's own checks (decoders) or the
/// generic accessors the landmark loader uses.
fn validate_family(d: &Descriptor) -> Result<(), Error> {
    match d.family {
        Family::RetinaFace => RetinaFace::from_descriptor(d).map(drop),
        Family::BlazeFace => BlazeFace::from_descriptor(d).map(drop),
        Family::FaceMesh | Family::Pfld => {
            d.integer("points", 1..=10_000)?;
            d.numbers("crop-scale")?;
            if d.family == Family::FaceMesh {
                d.numbers("axis-points")?;
            }
            Ok(())
        }
        Family::HeadPose => gstfacepose::engine::headpose::check_descriptor(d),
    }
}

/// Values a descriptor might hold, well-formed or not.
fn descriptor_value() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "",
            " ",
            "0",
            "1",
            "-1",
            "0.5",
            "8.5",
            "nan",
            "inf",
            "-inf",
            "1e40",
            "1e-40",
            "99999999999999999999999",
            "retinaface",
            "blazeface",
            "facemesh",
            "pfld",
            "headpose",
            "bins",
            "angles",
            "yaw pitch roll",
            "roll yaw pitch",
            "120 66 66",
            "3 3 3",
            "-180 -99 -99",
            "box",
            "landmarks",
            "square",
            "rect",
            "nhwc",
            "nchw",
            "rgb",
            "bgr",
            "letterbox",
            "letterbox-centre",
            "probability",
            "logits",
            "dynamic",
            "dynamic 0",
            "dynamic 32",
            "dynamic 257",
            "dynamic -1",
            "0x0",
            "1x1",
            "192x192",
            "8193x1",
            "x",
            "12x",
            "x12",
            "1 2",
            "1 2 3",
            "1 2 3 4",
            "0 0 0",
            "1;",
            ";",
            "16 32; 64 128; 256 512",
            "16 32;;",
            "0.1 0.2",
            "0 0.2",
            "a b c",
            "a b",
            "a",
            "=",
            "==",
            "#",
            "\u{0}",
            "\u{fffd}\u{1f600}",
            "8 16 32",
            "4",
            "4 4 4",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,24}",
        any::<String>(),
        prop::collection::vec(wild_f32(), 0..5)
            .prop_map(|v| { v.iter().map(f32::to_string).collect::<Vec<_>>().join(" ") }),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Give key `line`'s value a new value.
    Replace(usize, String),
    Delete(usize),
    Duplicate(usize),
    Insert(usize, String),
    /// Cut the text after this many characters.
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), descriptor_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        1 => any::<usize>().prop_map(Mutation::Delete),
        1 => any::<usize>().prop_map(Mutation::Duplicate),
        1 => (
            any::<usize>(),
            (select(KEYS.to_vec()), descriptor_value()).prop_map(|(k, v)| format!("{k} = {v}")),
        )
            .prop_map(|(i, l)| Mutation::Insert(i, l)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// Applies `m` to the `key = value` lines of `text`; returns the text and the key it touched
/// (none when it touched more than one line).
fn apply(text: &str, m: &Mutation) -> (String, Option<String>) {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let keyed: Vec<usize> = (0..lines.len())
        .filter(|&i| !lines[i].trim_start().starts_with('#') && lines[i].contains('='))
        .collect();
    let key_of = |line: &str| line.split('=').next().unwrap_or("").trim().to_string();
    match m {
        Mutation::Replace(i, value) => {
            let at = keyed[i % keyed.len()];
            let key = key_of(&lines[at]);
            lines[at] = format!("{key} = {value}");
            // A value with a line break spills into a line of its own.
            let single = !value.contains('\n');
            (lines.join("\n"), Some(key).filter(|_| single))
        }
        Mutation::Delete(i) => {
            let at = keyed[i % keyed.len()];
            let key = key_of(&lines[at]);
            lines.remove(at);
            (lines.join("\n"), Some(key))
        }
        Mutation::Duplicate(i) => {
            let at = keyed[i % keyed.len()];
            let key = key_of(&lines[at]);
            lines.insert(at, lines[at].clone());
            (lines.join("\n"), Some(key))
        }
        Mutation::Insert(i, line) => {
            lines.insert(i % (lines.len() + 1), line.clone());
            (lines.join("\n"), None)
        }
        Mutation::Truncate(n) => {
            let count = text.chars().count();
            (text.chars().take(n % (count + 1)).collect(), None)
        }
    }
}

/// Keys whose checks look at another key too: an error about one may name the other.
fn related(key: &str) -> &'static [&'static str] {
    match key {
        // The family decides which keys are required and checked.
        "family" => KEYS,
        "strides" => &["min-sizes"],
        "min-sizes" => &["strides"],
        // A head-pose regressor's decoding decides which keys it reads and how many outputs.
        "decode" => &[
            "outputs",
            "axes",
            "bins",
            "bin-step",
            "bin-offset",
            "bin-values",
        ],
        _ => &[],
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any text at all: no panic, and an error always names the file.
    #[test]
    fn descriptor_parser_survives_arbitrary_text(text in any::<String>()) {
        let path = Path::new("fuzz/any-text.descriptor");
        if let Err(e) = Descriptor::parse(path, &text) {
            prop_assert!(e.to_string().contains("fuzz/any-text.descriptor"), "{e}");
        }
    }

    /// Lines of known or unknown keys with odd values: no panic; an error names the file and
    /// either the line or a key.
    #[test]
    fn descriptor_parser_survives_arbitrary_key_value_lines(
        lines in prop::collection::vec(
            (
                prop_oneof![3 => select(KEYS.to_vec()).prop_map(str::to_string), 1 => "[a-z-]{0,12}"],
                descriptor_value(),
                select(vec!["=", " = ", "==", "", " # x = y"]),
            ),
            0..24,
        ),
    ) {
        let text: String = lines
            .iter()
            .map(|(k, v, sep)| format!("{k}{sep}{v}\n"))
            .collect();
        let path = Path::new("fuzz/lines.descriptor");
        match Descriptor::parse(path, &text) {
            Ok(d) => {
                // What a loader would run next must not panic either.
                if let Err(Error::Descriptor { path: p, message, .. }) = validate_family(&d) {
                    prop_assert_eq!(p.as_path(), path);
                    prop_assert!(KEYS.iter().any(|k| names_key(&message, k)), "{message}");
                }
            }
            Err(Error::Descriptor { path: p, line, message }) => {
                prop_assert_eq!(p.as_path(), path);
                prop_assert!(
                    line.is_some() || KEYS.iter().any(|k| names_key(&message, k)),
                    "neither a line nor a key in: {message}"
                );
            }
            Err(other) => prop_assert!(false, "not a descriptor error: {other}"),
        }
    }

    /// One mutation of a shipped descriptor (a value replaced, a line deleted, duplicated or
    /// inserted, the text cut short): no panic, and a failure names the file and the key that
    /// was touched (or one whose check reads it).
    #[test]
    fn mutated_real_descriptors_fail_cleanly_naming_the_key(
        which in any::<prop::sample::Index>(),
        m in mutation(),
    ) {
        let all = real_descriptors();
        let (path, text) = &all[which.index(all.len())];
        let (mutated, key) = apply(text, &m);
        let result = Descriptor::parse(path, &mutated).and_then(|d| validate_family(&d));
        if let Err(e) = result {
            let shown = e.to_string();
            prop_assert!(shown.contains(&path.display().to_string()), "{shown}");
            let Error::Descriptor { message, line, .. } = &e else {
                return Err(TestCaseError::fail(format!("not a descriptor error: {e}")));
            };
            if let Some(key) = key.filter(|k| KEYS.contains(&k.as_str())) {
                let touched = names_key(message, &key)
                    || related(&key).iter().any(|k| names_key(message, k));
                prop_assert!(touched, "{m:?} on `{key}` gave: {shown} (line {line:?})");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Detector decoders

/// A detector descriptor drawn from the shapes the two decoders accept.
#[derive(Debug, Clone)]
enum DetectorSpec {
    Retina {
        /// `None`: `size = dynamic <multiple>`.
        fixed: Option<(usize, usize)>,
        multiple: usize,
        centre: bool,
        strides: Vec<usize>,
        min_sizes: Vec<Vec<f32>>,
        variances: (f32, f32),
        logits: bool,
    },
    Blaze {
        size: (usize, usize),
        centre: bool,
        strides: Vec<usize>,
        anchors: usize,
        keypoints: usize,
    },
}

impl DetectorSpec {
    fn text(&self) -> String {
        let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(" ");
        let resize = |centre: bool| {
            if centre {
                "letterbox-centre"
            } else {
                "letterbox"
            }
        };
        let common = "input = input\nlayout = nhwc\ncolour = rgb\nmean = 0\nscale = 1\n";
        match self {
            DetectorSpec::Retina {
                fixed,
                multiple,
                centre,
                strides,
                min_sizes,
                variances,
                logits,
            } => {
                let size = match fixed {
                    Some((w, h)) => format!("{w}x{h}"),
                    None => format!("dynamic {multiple}"),
                };
                let groups = min_sizes
                    .iter()
                    .map(|g| g.iter().map(f32::to_string).collect::<Vec<_>>().join(" "))
                    .collect::<Vec<_>>()
                    .join("; ");
                format!(
                    "family = retinaface\n{common}size = {size}\nresize = {}\n\
                     outputs = boxes scores landmarks\nscore = {}\nstrides = {}\n\
                     min-sizes = {groups}\nvariances = {} {}\n",
                    resize(*centre),
                    if *logits { "logits" } else { "probability" },
                    join(strides),
                    variances.0,
                    variances.1,
                )
            }
            DetectorSpec::Blaze {
                size,
                centre,
                strides,
                anchors,
                keypoints,
            } => format!(
                "family = blazeface\n{common}size = {}x{}\nresize = {}\n\
                 outputs = regressors classificators\nstrides = {}\nanchors-per-cell = {anchors}\n\
                 keypoints = {keypoints}\n",
                size.0,
                size.1,
                resize(*centre),
                join(strides),
            ),
        }
    }

    fn descriptor(&self) -> Descriptor {
        let text = self.text();
        Descriptor::parse(Path::new("hardening/detector.descriptor"), &text)
            .unwrap_or_else(|e| panic!("generated descriptor rejected: {e}\n{text}"))
    }

    /// The value count of each output the decoder expects for a tensor of `fit`'s size.
    fn expected_lengths(&self, fit: &Fit) -> Vec<usize> {
        let d = self.descriptor();
        match self {
            DetectorSpec::Retina { .. } => {
                let n = RetinaFace::from_descriptor(&d)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .priors(fit.width, fit.height)
                    .len();
                vec![n * 4, n * 2, n * 10]
            }
            DetectorSpec::Blaze { keypoints, .. } => {
                let n = BlazeFace::from_descriptor(&d)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .anchors(fit.width, fit.height)
                    .len();
                vec![n * (4 + 2 * keypoints), n]
            }
        }
    }
}

fn detector_spec() -> impl Strategy<Value = DetectorSpec> {
    let strides = prop::collection::vec(select(vec![4usize, 8, 16, 32, 64]), 1..=3);
    let retina = (
        prop::option::weighted(0.5, (8usize..=96, 8usize..=96)),
        select(vec![1usize, 8, 32]),
        any::<bool>(),
        strides.clone(),
        prop::collection::vec(
            prop::collection::vec(prop_oneof![4 => 1.0f32..600.0, 1 => Just(1e30f32)], 1..=2),
            3,
        ),
        (0.01f32..1.0, 0.01f32..1.0),
        any::<bool>(),
    )
        .prop_map(
            |(fixed, multiple, centre, strides, mut min_sizes, variances, logits)| {
                min_sizes.truncate(strides.len());
                DetectorSpec::Retina {
                    fixed,
                    multiple,
                    centre,
                    strides,
                    min_sizes,
                    variances,
                    logits,
                }
            },
        );
    let blaze = (
        (8usize..=96, 8usize..=96),
        any::<bool>(),
        strides,
        1usize..=2,
        4usize..=6,
    )
        .prop_map(
            |(size, centre, strides, anchors, keypoints)| DetectorSpec::Blaze {
                size,
                centre,
                strides,
                anchors,
                keypoints,
            },
        );
    prop_oneof![retina, blaze]
}

/// Everything one decoding case needs: the detector, the frame, the settings and the outputs
/// (the right number of the right lengths most of the time, any number of any length otherwise).
#[derive(Debug, Clone)]
struct DecodeCase {
    spec: DetectorSpec,
    config: DetectConfig,
    frame: (usize, usize),
    expected: Vec<usize>,
    outputs: Vec<Vec<f32>>,
}

fn decode_case() -> impl Strategy<Value = DecodeCase> {
    (
        detector_spec(),
        detect_config(),
        (1usize..=1920, 1usize..=1920),
    )
        .prop_flat_map(|(spec, config, frame)| {
            let d = spec.descriptor();
            let fit = Fit::new(frame.0, frame.1, d.size, d.resize, config.input_size);
            let expected = spec.expected_lengths(&fit);
            let lengths: Vec<BoxedStrategy<usize>> = expected
                .iter()
                .map(|&n| prop_oneof![5 => Just(n), 1 => 0..=2 * n + 3].boxed())
                .collect();
            let k = expected.len();
            let count = prop_oneof![12 => Just(k), 1 => 0..=k + 1];
            (lengths, count).prop_flat_map(move |(mut lengths, count)| {
                lengths.resize(count, 5);
                let outputs: Vec<_> = lengths
                    .iter()
                    .map(|&n| prop::collection::vec(wild_f32(), n))
                    .collect();
                let (spec, expected) = (spec.clone(), expected.clone());
                outputs.prop_map(move |outputs| DecodeCase {
                    spec: spec.clone(),
                    config,
                    frame,
                    expected: expected.clone(),
                    outputs,
                })
            })
        })
}

/// The shape reported for output `k` of `len` values (distinct per output, to find it in errors).
fn shape_of(k: usize, len: usize) -> Vec<i64> {
    vec![k as i64 + 1, len as i64]
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary outputs of a RetinaFace or BlazeFace detector: no panic; outputs of the wrong
    /// number or size give an error naming the model and the offending shape; otherwise every
    /// detection is in the frame with a score in 0..=1, best first, within `max-faces` and
    /// `min-face-size`.
    #[test]
    fn decoders_survive_arbitrary_outputs_and_keep_detections_in_the_frame(case in decode_case()) {
        let d = case.spec.descriptor();
        let views: Vec<Output> = case
            .outputs
            .iter()
            .enumerate()
            .map(|(k, data)| Output { shape: shape_of(k, data.len()), data })
            .collect();
        let (w, h) = case.frame;
        let result = decode_outputs(&d, Path::new(MODEL), &views, w, h, &case.config);
        let lengths: Vec<usize> = case.outputs.iter().map(Vec::len).collect();
        match result {
            Ok(detections) => {
                prop_assert_eq!(&lengths, &case.expected, "wrong outputs were accepted");
                prop_assert!(detections.len() <= case.config.max_faces);
                for det in &detections {
                    assert_detection_in_frame(det, w as f32, h as f32)?;
                    prop_assert!(
                        det.bbox.width().max(det.bbox.height()) >= case.config.min_face_size,
                        "{det:?} is below the minimum size"
                    );
                }
                prop_assert!(
                    detections.windows(2).all(|p| p[0].score >= p[1].score),
                    "not best first: {detections:?}"
                );
            }
            Err(e) => {
                prop_assert_ne!(&lengths, &case.expected, "right outputs refused: {}", e);
                let text = e.to_string();
                prop_assert!(matches!(e, Error::Model { .. }), "{text}");
                prop_assert!(text.contains(MODEL), "model not named: {text}");
                if lengths.len() == case.expected.len() {
                    let bad = (0..lengths.len())
                        .find(|&k| lengths[k] != case.expected[k])
                        .unwrap_or(0);
                    let shape = format!("{:?}", shape_of(bad, lengths[bad]));
                    prop_assert!(text.contains(&shape), "shape {shape} not named: {text}");
                } else {
                    prop_assert!(text.contains("outputs"), "count not named: {text}");
                }
            }
        }
    }

    /// The decoders alone, on any tensor size (0 included), any threshold (NaN included) and
    /// outputs of any length: no panic, and any candidate has a finite score in 0..=1.
    #[test]
    fn raw_decoders_survive_any_tensor_size_and_threshold(
        spec in detector_spec(),
        width in 0usize..=80,
        height in 0usize..=80,
        threshold in wild_f32(),
        outputs in prop::collection::vec(prop::collection::vec(wild_f32(), 0..400), 0..4),
    ) {
        let d = spec.descriptor();
        let views: Vec<Output> = outputs
            .iter()
            .map(|data| Output { shape: vec![data.len() as i64], data })
            .collect();
        let path = Path::new(MODEL);
        let result = match spec {
            DetectorSpec::Retina { .. } => RetinaFace::from_descriptor(&d)
                .and_then(|r| r.decode(path, &views, width, height, threshold)),
            DetectorSpec::Blaze { .. } => BlazeFace::from_descriptor(&d)
                .and_then(|b| b.decode(path, &views, width, height, threshold)),
        };
        match result {
            Ok(candidates) => {
                for c in candidates {
                    prop_assert!((0.0..=1.0).contains(&c.score), "{c:?}");
                }
            }
            Err(e) => prop_assert!(e.to_string().contains(MODEL), "{e}"),
        }
    }

    /// Strides are whole numbers in 1..=512: a fractional, out-of-range or odd one is refused
    /// with an error naming the key, by both decoders (it used to be truncated silently).
    #[test]
    fn strides_must_be_whole_numbers_in_range(
        spec in detector_spec(),
        stride in prop_oneof![0.01f32..600.0, wild_f32()],
    ) {
        let text = spec.text();
        let line = text.lines().find(|l| l.starts_with("strides")).unwrap_or_default().to_string();
        let text = text.replace(&line, &format!("{line} {stride}"));
        let d = Descriptor::parse(Path::new("fuzz/strides.descriptor"), &text);
        let result = d.and_then(|d| match spec {
            DetectorSpec::Retina { .. } => RetinaFace::from_descriptor(&d).map(drop),
            DetectorSpec::Blaze { .. } => BlazeFace::from_descriptor(&d).map(drop),
        });
        let whole = stride.fract() == 0.0 && (1.0..=512.0).contains(&stride);
        match result {
            Ok(()) => prop_assert!(whole, "stride {stride} accepted"),
            Err(Error::Descriptor { message, .. }) => {
                prop_assert!(
                    names_key(&message, "strides") || names_key(&message, "min-sizes"),
                    "{message}"
                );
                // Retinaface may refuse a whole stride for want of its min-sizes group.
                prop_assert!(!whole || matches!(spec, DetectorSpec::Retina { .. }), "{message}");
            }
            Err(e) => prop_assert!(false, "not a descriptor error: {e}"),
        }
    }

    /// Settings outside their ranges (NaN included) are refused, never a panic.
    #[test]
    fn out_of_range_settings_are_refused(
        input_size in any::<usize>(),
        score_threshold in wild_f32(),
        nms_iou in wild_f32(),
        min_face_size in wild_f32(),
        frame in (0usize..=64, 0usize..=64),
    ) {
        let config = DetectConfig { input_size, score_threshold, nms_iou, max_faces: 4, min_face_size };
        let valid = (32..=4096).contains(&input_size)
            && (0.0..=1.0).contains(&score_threshold)
            && (0.0..=1.0).contains(&nms_iou)
            && min_face_size >= 0.0
            && min_face_size.is_finite();
        prop_assert_eq!(config.validate().is_ok(), valid);
        let spec = DetectorSpec::Blaze {
            size: (16, 16),
            centre: false,
            strides: vec![8],
            anchors: 1,
            keypoints: 6,
        };
        let (reg, cls) = (vec![0.5f32; 4 * 16], vec![0.0f32; 4]);
        let views = [
            Output { shape: vec![1, 4, 16], data: &reg },
            Output { shape: vec![1, 4, 1], data: &cls },
        ];
        let result = decode_outputs(&spec.descriptor(), Path::new(MODEL), &views, frame.0, frame.1, &config);
        if !valid || frame.0 == 0 || frame.1 == 0 {
            prop_assert!(result.is_err());
        }
    }

    /// Plain NMS on arbitrary candidates: only finite candidates survive, best first, and no two
    /// kept boxes overlap by more than the threshold.
    #[test]
    fn nms_keeps_only_finite_non_overlapping_candidates(
        candidates in prop::collection::vec(wild_detection(), 0..40),
        iou in wild_f32(),
    ) {
        let kept = nms(candidates.clone(), iou);
        prop_assert!(kept.len() <= candidates.len());
        for k in &kept {
            prop_assert!(candidates.contains(k));
            prop_assert!(k.score.is_finite() && k.bbox.is_finite(), "{k:?}");
            prop_assert!(k.keypoints.iter().all(|p| p.x.is_finite() && p.y.is_finite()), "{k:?}");
        }
        prop_assert!(kept.windows(2).all(|p| p[0].score >= p[1].score));
        for (i, a) in kept.iter().enumerate() {
            for b in &kept[i + 1..] {
                prop_assert!(a.bbox.iou(&b.bbox) <= iou, "{a:?} and {b:?} overlap");
            }
        }
    }

    /// Weighted NMS on arbitrary candidates: every group average is finite (no overflow, no
    /// 0 · ∞), best first, and keeps a score it was given.
    #[test]
    fn weighted_nms_averages_stay_finite(
        candidates in prop::collection::vec(wild_detection(), 0..40),
        iou in wild_f32(),
    ) {
        let kept = weighted_nms(candidates.clone(), iou);
        prop_assert!(kept.len() <= candidates.len());
        for k in &kept {
            prop_assert!(candidates.iter().any(|c| c.score == k.score));
            prop_assert!(k.score.is_finite() && k.bbox.is_finite(), "{k:?}");
            prop_assert!(k.keypoints.iter().all(|p| p.x.is_finite() && p.y.is_finite()), "{k:?}");
        }
        prop_assert!(kept.windows(2).all(|p| p[0].score >= p[1].score));
    }
}

// ---------------------------------------------------------------------------------------------
// Pose solvers

fn wild_points3(max: usize) -> impl Strategy<Value = Vec<[f64; 3]>> {
    prop_oneof![
        // Anything.
        3 => prop::collection::vec(prop::array::uniform3(wild_f64()), 0..max),
        // All equal.
        1 => (prop::array::uniform3(wild_f64()), 0..max).prop_map(|(p, n)| vec![p; n]),
        // Collinear.
        1 => (prop::array::uniform3(-10.0f64..10.0), prop::array::uniform3(-10.0f64..10.0), 0..max)
            .prop_map(|(a, d, n)| (0..n).map(|i| {
                let t = i as f64;
                [a[0] + t * d[0], a[1] + t * d[1], a[2] + t * d[2]]
            }).collect()),
        // Huge.
        1 => prop::collection::vec(prop::array::uniform3(-1e300f64..1e300), 0..max),
    ]
}

fn wild_weights(max: usize) -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        2 => (1usize..max).prop_map(|n| vec![1.0; n]),
        1 => prop::collection::vec(wild_f64(), 0..max),
    ]
}

/// Reference, observed points and weights for the rigid fit: unrelated wild sets, or a cloud and
/// its image under a random similarity with up to three coordinates or weights spoilt.
fn fit_input() -> impl Strategy<Value = (Vec<[f64; 3]>, Vec<[f64; 3]>, Vec<f64>)> {
    let unrelated = (wild_points3(16), wild_points3(16), wild_weights(16));
    let spoilt = (
        cloud(),
        prop::array::uniform3(-180.0f32..180.0),
        prop_oneof![0.1f64..10.0, Just(1e-9), Just(1e9)],
        prop::collection::vec((any::<prop::sample::Index>(), 0usize..7, wild_f64()), 0..4),
    )
        .prop_map(|(reference, [yaw, pitch, roll], scale, spoil)| {
            let r = Pose { yaw, pitch, roll }.to_rotation();
            let mut observed: Vec<[f64; 3]> = reference
                .iter()
                .map(|p| rotate(&r, p).map(|v| v * scale + 3.0))
                .collect();
            let mut reference = reference;
            let mut weights = vec![1.0; reference.len()];
            for (i, what, v) in spoil {
                let at = i.index(reference.len());
                match what {
                    0..=2 => observed[at][what] = v,
                    3..=5 => reference[at][what - 3] = v,
                    _ => weights[at] = v,
                }
            }
            (reference, observed, weights)
        });
    prop_oneof![unrelated, spoilt]
}

fn wild_rotation() -> impl Strategy<Value = Rotation> {
    prop::array::uniform3(prop::array::uniform3(wild_f32()))
}

/// A non-degenerate cloud of 4..16 points (the first three not collinear).
fn cloud() -> impl Strategy<Value = Vec<[f64; 3]>> {
    prop::collection::vec(prop::array::uniform3(-10.0f64..10.0), 4..16).prop_filter(
        "the first three points are (nearly) collinear",
        |p| {
            let (u, v) = (
                [p[1][0] - p[0][0], p[1][1] - p[0][1], p[1][2] - p[0][2]],
                [p[2][0] - p[0][0], p[2][1] - p[0][1], p[2][2] - p[0][2]],
            );
            let c = [
                u[1] * v[2] - u[2] * v[1],
                u[2] * v[0] - u[0] * v[2],
                u[0] * v[1] - u[1] * v[0],
            ];
            (c[0] * c[0] + c[1] * c[1] + c[2] * c[2]).sqrt() > 1.0
        },
    )
}

/// Landmarks and a crop for the seed formula: anything, or 98 points inside (or around) a crop
/// with a few of them made odd.
fn seed_input() -> impl Strategy<Value = (Vec<[f32; 3]>, RotatedRect)> {
    let wild_crop =
        (wild_point(), wild_f32(), wild_f32()).prop_map(|(centre, side, angle)| RotatedRect {
            centre,
            side,
            angle,
        });
    let anything = (
        prop::collection::vec(prop::array::uniform3(wild_f32()), 0..120),
        wild_crop,
    );
    let plausible = (
        prop::collection::vec(prop::array::uniform3(-0.2f32..1.2), 98..=110),
        (0.0f32..2000.0, 0.0f32..2000.0, 1.0f32..800.0),
        prop::collection::vec((any::<prop::sample::Index>(), wild_f32()), 0..3),
    )
        .prop_map(|(unit, (cx, cy, side), odd)| {
            let mut points: Vec<[f32; 3]> = unit
                .iter()
                .map(|u| {
                    [
                        cx + (u[0] - 0.5) * side,
                        cy + (u[1] - 0.5) * side,
                        u[2] * side,
                    ]
                })
                .collect();
            for (i, v) in odd {
                let at = i.index(points.len());
                points[at][0] = v;
            }
            let crop = RotatedRect {
                centre: Point::new(cx, cy),
                side,
                angle: 0.0,
            };
            (points, crop)
        });
    prop_oneof![anything, plausible]
}

fn rotate(r: &Rotation, p: &[f64; 3]) -> [f64; 3] {
    std::array::from_fn(|i| (0..3).map(|k| r[i][k] as f64 * p[k]).sum())
}

proptest! {
    #![proptest_config(config())]

    /// Any 3×3 matrix decomposes without a panic; a finite one always gives finite angles in
    /// range (even when it is not a rotation), yaw over the full circle and pitch plus roll no
    /// larger than in the other decomposition.
    #[test]
    fn angles_of_any_finite_matrix_are_finite_and_in_range(r in wild_rotation()) {
        let p = Pose::from_rotation(&r);
        if r.iter().flatten().all(|v| v.is_finite()) {
            assert_pose_in_range(&p)?;
            prop_assert!(p.yaw.abs() <= 180.0, "{p:?}");
            let other = [p.pitch + 180.0, p.roll + 180.0].map(|v| {
                let w = v.rem_euclid(360.0);
                if w > 180.0 { w - 360.0 } else { w }
            });
            prop_assert!(
                p.pitch.abs() + p.roll.abs() <= other[0].abs() + other[1].abs() + 1e-2,
                "{p:?}"
            );
        }
    }

    /// Any angles give a matrix without a panic; finite ones a proper rotation.
    #[test]
    fn any_finite_angles_give_a_rotation(yaw in wild_f32(), pitch in wild_f32(), roll in wild_f32()) {
        let r = Pose { yaw, pitch, roll }.to_rotation();
        if yaw.is_finite() && pitch.is_finite() && roll.is_finite() {
            assert_rotation(&r)?;
        }
    }

    /// Angles → rotation → angles → rotation lands on the same rotation (away from gimbal lock).
    #[test]
    fn rotations_round_trip_through_the_angles(
        yaw in -85.0f32..85.0,
        pitch in -180.0f32..180.0,
        roll in -180.0f32..180.0,
    ) {
        let r = Pose { yaw, pitch, roll }.to_rotation();
        let p = Pose::from_rotation(&r);
        assert_pose_in_range(&p)?;
        let back = p.to_rotation();
        for i in 0..3 {
            for j in 0..3 {
                prop_assert!((r[i][j] - back[i][j]).abs() < 1e-3, "{r:?} vs {back:?} via {p:?}");
            }
        }
    }

    /// The rigid fit on arbitrary point sets (empty, mismatched lengths, all equal, collinear,
    /// NaN, infinite, huge, odd weights, or a real correspondence with a few points spoilt): no
    /// panic; a fit, when there is one, is a proper rotation with a positive scale and finite
    /// angles in range.
    #[test]
    fn rigid_fit_survives_arbitrary_point_sets((reference, observed, weights) in fit_input()) {
        if let Some(f) = rigid::fit(&reference, &observed, &weights) {
            assert_fit(&f)?;
        }
    }

    /// A cloud collapsed to one point has no rotation.
    #[test]
    fn rigid_fit_refuses_a_collapsed_cloud(
        reference in cloud(),
        point in prop::array::uniform3(-1e6f64..1e6),
    ) {
        let observed = vec![point; reference.len()];
        let weights = vec![1.0; reference.len()];
        prop_assert!(rigid::fit(&reference, &observed, &weights).is_none());
        prop_assert!(rigid::fit(&observed, &reference, &weights).is_none());
    }

    /// The rigid fit recovers a known similarity transform of a non-degenerate cloud.
    #[test]
    fn rigid_fit_recovers_a_known_transform(
        reference in cloud(),
        yaw in -80.0f32..80.0,
        pitch in -80.0f32..80.0,
        roll in -170.0f32..170.0,
        scale in 0.1f64..10.0,
        shift in prop::array::uniform3(-100.0f64..100.0),
    ) {
        let r = Pose { yaw, pitch, roll }.to_rotation();
        let observed: Vec<[f64; 3]> = reference
            .iter()
            .map(|p| {
                let q = rotate(&r, p);
                [scale * q[0] + shift[0], scale * q[1] + shift[1], scale * q[2] + shift[2]]
            })
            .collect();
        let f = rigid::fit(&reference, &observed, &vec![1.0; reference.len()]);
        prop_assert!(f.is_some());
        let f = f.unwrap();
        assert_fit(&f)?;
        for i in 0..3 {
            for j in 0..3 {
                prop_assert!((f.rotation[i][j] - r[i][j]).abs() < 1e-3, "{f:?} vs {r:?}");
            }
        }
        prop_assert!((f.scale as f64 - scale).abs() < 1e-3 * scale, "{f:?}");
    }

    /// The 2-D refinement from arbitrary starts on arbitrary point sets: no panic; a finite
    /// start gives a finite fit with angles in range.
    #[test]
    fn refine_2d_survives_arbitrary_point_sets_and_starts(
        (reference, observed, weights) in fit_input(),
        start in (wild_rotation(), wild_f32(), prop::array::uniform3(wild_f32()), wild_f32()),
        from_fit in any::<bool>(),
        iterations in 0usize..40,
    ) {
        let init = match rigid::fit(&reference, &observed, &weights) {
            Some(f) if from_fit => f,
            _ => RigidFit { rotation: start.0, scale: start.1, translation: start.2, rms: start.3 },
        };
        let refined = rigid::refine_2d(&reference, &observed, &weights, &init, iterations);
        let finite_start = init.rotation.iter().flatten().all(|v| v.is_finite())
            && init.scale.is_finite()
            && init.translation.iter().all(|v| v.is_finite())
            && init.rms.is_finite();
        if finite_start {
            prop_assert!(refined.rotation.iter().flatten().all(|v| v.is_finite()), "{refined:?}");
            prop_assert!(refined.scale.is_finite() && refined.rms.is_finite(), "{refined:?}");
            assert_pose_in_range(&refined.pose())?;
        }
    }

    /// A non-finite landmark among good ones is skipped by the 2-D refinement exactly as if its
    /// weight were 0 (before, one NaN made every cost NaN and stopped the refinement at its
    /// start), and the refinement never ends worse than its start on the other points.
    #[test]
    fn refine_2d_skips_non_finite_points(
        reference in cloud(),
        yaw in -40.0f32..40.0,
        pitch in -30.0f32..30.0,
        roll in -60.0f32..60.0,
        bad in any::<prop::sample::Index>(),
        value in select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY]),
    ) {
        let r = Pose { yaw, pitch, roll }.to_rotation();
        let clean: Vec<[f64; 3]> = reference
            .iter()
            .map(|p| {
                let q = rotate(&r, p);
                [2.0 * q[0] + 30.0, 2.0 * q[1] - 10.0, 0.0]
            })
            .collect();
        let at = bad.index(clean.len());
        let mut observed = clean.clone();
        observed[at][0] = value;
        let weights = vec![1.0; reference.len()];
        let mut without = weights.clone();
        without[at] = 0.0;
        // A rough start: the true pose turned by 10° of yaw.
        let start = Pose { yaw: yaw + 10.0, pitch, roll };
        let init = RigidFit {
            rotation: start.to_rotation(),
            scale: 2.0,
            translation: [30.0, -10.0, 0.0],
            rms: 1.0,
        };
        let refined = rigid::refine_2d(&reference, &observed, &weights, &init, 30);
        let reference_run = rigid::refine_2d(&reference, &clean, &without, &init, 30);
        prop_assert_eq!(refined, reference_run);
        // Residual over the good points only.
        let rms = |f: &RigidFit| -> f64 {
            let err: f64 = (0..reference.len())
                .filter(|&i| i != at)
                .map(|i| {
                    let q = rotate(&f.rotation, &reference[i]);
                    let dx = f.scale as f64 * q[0] + f.translation[0] as f64 - clean[i][0];
                    let dy = f.scale as f64 * q[1] + f.translation[1] as f64 - clean[i][1];
                    dx * dx + dy * dy
                })
                .sum();
            (err / (reference.len() - 1) as f64).sqrt()
        };
        prop_assert!(
            rms(&refined) < rms(&init) * (1.0 + 1e-6),
            "worse than the start: {} → {}",
            rms(&init),
            rms(&refined)
        );
        assert_pose_in_range(&refined.pose())?;
    }

    /// The seed's linear formula on arbitrary landmarks and crops: no panic, and angles, when
    /// there are any, finite and within ±180°.
    #[test]
    fn seed_pose_survives_arbitrary_landmarks((landmarks, crop) in seed_input()) {
        if let Some(p) = seed::pose(&landmarks, &crop) {
            assert_pose_in_range(&p)?;
        }
        let points: Vec<Point> = landmarks.iter().map(|l| Point::new(l[0], l[1])).collect();
        if let Some((yaw, pitch, roll)) = seed::seed_angles(&points) {
            assert_pose_in_range(&Pose { yaw, pitch, roll })?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Geometry helpers

proptest! {
    #![proptest_config(config())]

    /// Clipping any box to any frame size does not panic; a box clipped to a real frame lies in
    /// it (NaN coordinates stay NaN, so that `is_finite` still tells).
    #[test]
    fn clamp_to_never_panics_and_clips_into_the_frame(
        b in wild_bbox(),
        width in wild_f32(),
        height in wild_f32(),
    ) {
        let c = b.clamp_to(width, height);
        if width.is_finite() && width >= 0.0 && height.is_finite() && height >= 0.0 {
            for (v, max) in [(c.x0, width), (c.x1, width), (c.y0, height), (c.y1, height)] {
                prop_assert!(v.is_nan() || (0.0..=max).contains(&v), "{c:?} in {width}×{height}");
            }
        }
        for (before, after) in [(b.x0, c.x0), (b.y0, c.y0), (b.x1, c.x1), (b.y1, c.y1)] {
            prop_assert_eq!(before.is_nan(), after.is_nan());
        }
    }

    /// IoU of any two boxes is a number in 0..=1.
    #[test]
    fn iou_is_always_in_0_to_1(a in wild_bbox(), b in wild_bbox()) {
        let v = a.iou(&b);
        prop_assert!((0.0..=1.0 + 1e-6).contains(&v), "iou {v} of {a:?} and {b:?}");
    }

    /// The square around any points either is refused or is finite with a positive side.
    #[test]
    fn rect_around_points_is_finite_or_none(
        points in prop::collection::vec(wild_point(), 0..20),
        from in wild_point(),
        to in wild_point(),
        scale in wild_f32(),
    ) {
        if let Some(r) = RotatedRect::around_points(&points, from, to, scale) {
            prop_assert!(r.side.is_finite() && r.side > 0.0, "{r:?}");
            prop_assert!(r.centre.x.is_finite() && r.centre.y.is_finite(), "{r:?}");
            prop_assert!(r.angle.is_finite(), "{r:?}");
        }
        let _ = BBox::enclosing(points.iter().copied());
    }

    /// Affine maps built from any rotated square and applied to any point do not panic; for
    /// ordinary values the tensor centre lands on the square's centre.
    #[test]
    fn affine_maps_never_panic(
        centre in wild_point(),
        side in wild_f32(),
        angle in wild_f32(),
        size in wild_f32(),
        p in wild_point(),
        s in wild_f32(),
        tx in wild_f32(),
    ) {
        let rect = RotatedRect { centre, side, angle };
        let m = Affine::from_rotated_rect(&rect, size);
        let _ = m.apply(p);
        let _ = Affine::scale_translate(s, tx, tx).apply(p);
        let ordinary = |v: f32| v.is_finite() && v.abs() < 1e4;
        if ordinary(centre.x) && ordinary(centre.y) && ordinary(angle)
            && side > 1.0 && side < 1e4 && size > 1.0 && size < 1e4
        {
            let c = m.apply(Point::new(size * 0.5, size * 0.5));
            let tolerance = 1e-3 * (1.0 + centre.x.abs() + centre.y.abs() + side);
            prop_assert!(
                (c.x - centre.x).abs() < tolerance && (c.y - centre.y).abs() < tolerance,
                "{c:?} vs {rect:?}"
            );
        }
    }
}
