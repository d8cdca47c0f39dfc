// SPDX-License-Identifier: MPL-2.0
//! Helpers shared by the tests and the example tools: decoding pictures and finding the set-up's
//! models and sample pictures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use gstfacepose::engine::geometry::BBox;
use gstfacepose::engine::{self, EngineConfig, Face, ImageView, PixelFormat};

/// A decoded RGB picture.
pub struct Picture {
    pub data: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

impl Picture {
    pub fn load(path: &Path) -> Result<Picture, String> {
        let img =
            image::open(path).map_err(|e| format!("cannot decode {}: {e}", path.display()))?;
        let rgb = img.to_rgb8();
        Ok(Picture {
            width: rgb.width() as usize,
            height: rgb.height() as usize,
            data: rgb.into_raw(),
        })
    }

    pub fn view(&self) -> ImageView<'_> {
        ImageView::packed(
            PixelFormat::Rgb,
            self.width,
            self.height,
            &self.data,
            self.width * 3,
        )
        .expect("a decoded picture is a valid frame")
    }

    pub fn save_png(&self, path: &Path) -> Result<(), String> {
        image::save_buffer(
            path,
            &self.data,
            self.width as u32,
            self.height as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// The public-domain sample pictures the set-up extracts from registry packages.
pub fn sample_pictures() -> Vec<PathBuf> {
    let dir = engine::default_model_dir().join("samples");
    vec![dir.join("astronaut.png"), dir.join("grace_hopper.jpg")]
}

/// The default configuration, checked for the files it needs.
pub fn config() -> Result<EngineConfig, String> {
    let c = EngineConfig::default();
    let pose = c.pose_model.iter();
    for p in [&c.detector_model, &c.landmark_model, &c.reference_face]
        .into_iter()
        .chain(pose)
    {
        if !p.exists() {
            return Err(format!("{} is missing: run `make models`", p.display()));
        }
    }
    Ok(c)
}

/// Folder of the shared evaluation data, relative to the project.
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// `Some(path)` when `../shared/<rel>` exists. Without it: panics under CI (CI=true), otherwise
/// prints why the test is skipped and returns `None`.
pub fn shared_or_skip(rel: &str, test: &str) -> Option<PathBuf> {
    let p = shared_dir().join(rel);
    if p.exists() {
        return Some(p);
    }
    let ci = std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false);
    if ci {
        panic!(
            "{test}: {} is missing, and CI must run this test",
            p.display()
        );
    }
    eprintln!(
        "SKIPPED {test}: {} is missing (this test needs ../shared)",
        p.display()
    );
    None
}

impl Picture {
    /// A `width` × `height` picture of one colour.
    pub fn uniform(width: usize, height: usize, rgb: [u8; 3]) -> Picture {
        Picture {
            data: rgb
                .iter()
                .copied()
                .cycle()
                .take(width * height * 3)
                .collect(),
            width,
            height,
        }
    }

    /// A `width` × `height` picture of deterministic pseudo-random noise (a 64-bit LCG).
    pub fn noise(width: usize, height: usize, seed: u64) -> Picture {
        let mut state = seed;
        let data = (0..width * height * 3)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect();
        Picture {
            data,
            width,
            height,
        }
    }

    /// The picture flipped left to right.
    pub fn mirrored(&self) -> Picture {
        let mut data = Vec::with_capacity(self.data.len());
        for row in self.data.chunks_exact(self.width * 3) {
            for px in row.chunks_exact(3).rev() {
                data.extend_from_slice(px);
            }
        }
        Picture {
            data,
            width: self.width,
            height: self.height,
        }
    }

    /// The picture turned CLOCKWISE on screen by `degrees` (negative: anticlockwise) about `centre`
    /// (pixels, edges on integers), with bilinear sampling, on a canvas grown to hold every corner;
    /// uncovered pixels are black. Returns the picture and where `centre` lies in it.
    pub fn rotated(&self, degrees: f32, centre: (f32, f32)) -> (Picture, (f32, f32)) {
        let (s, c) = (degrees as f64).to_radians().sin_cos();
        let (cx, cy) = (centre.0 as f64, centre.1 as f64);
        // Screen clockwise with y pointing down: (dx, dy) → (c·dx − s·dy, s·dx + c·dy).
        let forward = |x: f64, y: f64| {
            (
                cx + c * (x - cx) - s * (y - cy),
                cy + s * (x - cx) + c * (y - cy),
            )
        };
        let (w, h) = (self.width as f64, self.height as f64);
        let corners = [
            forward(0.0, 0.0),
            forward(w, 0.0),
            forward(0.0, h),
            forward(w, h),
        ];
        let x_min = corners
            .iter()
            .map(|p| p.0)
            .fold(f64::INFINITY, f64::min)
            .floor();
        let y_min = corners
            .iter()
            .map(|p| p.1)
            .fold(f64::INFINITY, f64::min)
            .floor();
        let x_max = corners
            .iter()
            .map(|p| p.0)
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil();
        let y_max = corners
            .iter()
            .map(|p| p.1)
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil();
        let (out_w, out_h) = ((x_max - x_min) as usize, (y_max - y_min) as usize);
        let mut data = vec![0u8; out_w * out_h * 3];
        let pixel = |x: i64, y: i64| -> [f64; 3] {
            if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
                return [0.0; 3];
            }
            let i = (y as usize * self.width + x as usize) * 3;
            [
                self.data[i] as f64,
                self.data[i + 1] as f64,
                self.data[i + 2] as f64,
            ]
        };
        for oy in 0..out_h {
            for ox in 0..out_w {
                // Output pixel centre in the rotated frame, then back through the inverse rotation.
                let (px, py) = (ox as f64 + 0.5 + x_min - cx, oy as f64 + 0.5 + y_min - cy);
                let (sx, sy) = (cx + c * px + s * py, cy - s * px + c * py);
                let (fx, fy) = (sx - 0.5, sy - 0.5);
                let (x0, y0) = (fx.floor(), fy.floor());
                let (ax, ay) = (fx - x0, fy - y0);
                let (x0, y0) = (x0 as i64, y0 as i64);
                let (p00, p10, p01, p11) = (
                    pixel(x0, y0),
                    pixel(x0 + 1, y0),
                    pixel(x0, y0 + 1),
                    pixel(x0 + 1, y0 + 1),
                );
                let i = (oy * out_w + ox) * 3;
                for k in 0..3 {
                    let top = p00[k] + (p10[k] - p00[k]) * ax;
                    let bottom = p01[k] + (p11[k] - p01[k]) * ax;
                    data[i + k] = (top + (bottom - top) * ay).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        let picture = Picture {
            data,
            width: out_w,
            height: out_h,
        };
        (picture, ((cx - x_min) as f32, (cy - y_min) as f32))
    }
}

/// Signed difference `a − b` of two angles in degrees, wrapped into (−180, 180].
pub fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(360.0);
    if d > 180.0 { d - 360.0 } else { d }
}

/// The detected face that belongs to a labelled one (AFLW2000's box of the 68 landmarks): the
/// best overlap with the labelled box, accepted when the overlap is real or the labelled centre
/// lies inside the detection.
pub fn matching_face<'a>(faces: &'a [Face], gt: &BBox) -> Option<&'a Face> {
    let c = gt.centre();
    faces
        .iter()
        .filter(|f| f.bbox.iou(gt) >= 0.25 || f.bbox.contains(c))
        .max_by(|a, b| a.bbox.iou(gt).total_cmp(&b.bbox.iou(gt)))
}

/// A folder holding only the plugin built with this test, for GST_PLUGIN_PATH. Cargo writes the
/// cdylib to `<target>/<profile>/deps` and copies it up to `<target>/<profile>` only when the
/// library itself is built (`cargo build`), not when tests are, so the newer of the two is
/// copied to `<target>/facepose-test-plugin-<profile>/` (a stable path, so the GStreamer
/// registry updates its entry rather than growing; outside `<target>/<profile>`, which users put
/// in GST_PLUGIN_PATH and GStreamer scans with its subfolders, so that a test's copy never
/// shadows the plugin they built).
pub fn test_plugin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This test binary lives in `<target>/<profile>/deps`.
        let exe = std::env::current_exe().unwrap();
        let profile = exe.parent().unwrap().parent().unwrap().to_path_buf();
        let built = [
            profile.join("deps/libgstfacepose.so"),
            profile.join("libgstfacepose.so"),
        ];
        let newest = built
            .iter()
            .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
            .max_by_key(|(t, _)| *t)
            .map(|(_, p)| p)
            .unwrap_or_else(|| {
                panic!("no libgstfacepose.so in {}: cargo build", profile.display())
            });
        let name = profile
            .file_name()
            .map_or("profile".into(), |n| n.to_string_lossy().into_owned());
        let dir = profile
            .parent()
            .unwrap_or(&profile)
            .join(format!("facepose-test-plugin-{name}"));
        // Earlier test runs left their copy inside the profile folder, where it shadows the
        // plugin being built.
        let _ = std::fs::remove_dir_all(profile.join("facepose-test-plugin"));
        std::fs::create_dir_all(&dir).unwrap();
        let partial = dir.join(format!(".libgstfacepose.so.{}", std::process::id()));
        std::fs::copy(newest, &partial)
            .unwrap_or_else(|e| panic!("copying {}: {e}", newest.display()));
        std::fs::rename(&partial, dir.join("libgstfacepose.so")).unwrap();
        dir
    })
    .clone()
}

/// A Python interpreter that can import the given GObject introspection namespaces; panics
/// naming the Debian packages otherwise. FACEPOSE_PYTHON overrides the choice.
pub fn python_with(namespaces: &[(&str, &str)]) -> PathBuf {
    let code = format!(
        "import gi\n{}",
        namespaces
            .iter()
            .map(|(ns, _)| format!(
                "gi.require_version('{ns}', '1.0')\nfrom gi.repository import {ns}\n"
            ))
            .collect::<String>()
    );
    let candidates: Vec<PathBuf> = match std::env::var_os("FACEPOSE_PYTHON") {
        Some(p) => vec![p.into()],
        // Debian's python3-gi is for the system interpreter; `python3` may be a venv or pyenv.
        None => vec!["/usr/bin/python3".into(), "python3".into()],
    };
    for py in &candidates {
        let ok = Command::new(py)
            .args(["-c", &code])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return py.clone();
        }
    }
    let packages: Vec<&str> = ["python3-gi", "python3-gst-1.0"]
        .into_iter()
        .chain(namespaces.iter().map(|(_, pkg)| *pkg))
        .collect();
    panic!(
        "no Python among {candidates:?} imports gi with {:?}: apt-get install -y {} \
         (scripts/setup-system.sh installs them)",
        namespaces.iter().map(|(ns, _)| *ns).collect::<Vec<_>>(),
        packages.join(" ")
    );
}

/// `frames` (RGB, all of one size, 30 fps) pushed one by one through a `faceposeestimator` with
/// `properties` in a test harness: the buffer that came out for each, and the harness (still
/// holding the started element).
pub fn through_harness(
    frames: &[Picture],
    properties: &[(&str, &str)],
) -> (Vec<gst::Buffer>, gst_check::Harness) {
    use gst_video::prelude::*;
    gst::init().unwrap();
    gstfacepose::plugin_register_static().ok();
    let (w, h) = (frames[0].width as u32, frames[0].height as u32);
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, w, h)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .unwrap();
    let mut element = gst::ElementFactory::make("faceposeestimator");
    for (k, v) in properties {
        element = element.property_from_str(k, v);
    }
    let element = element.build().unwrap();
    let mut harness = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    harness.set_src_caps(info.to_caps().unwrap());
    let mut out = Vec::new();
    for (i, p) in frames.iter().enumerate() {
        let mut buffer = gst::Buffer::with_size(info.size()).unwrap();
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(i as u64 * 33));
            let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(b, &info).unwrap();
            let stride = frame.plane_stride()[0] as usize;
            let data = frame.plane_data_mut(0).unwrap();
            for y in 0..p.height {
                let row = &p.data[y * p.width * 3..(y + 1) * p.width * 3];
                data[y * stride..y * stride + row.len()].copy_from_slice(row);
            }
        }
        out.push(harness.push_and_pull(buffer).expect("a buffer out"));
    }
    (out, harness)
}

/// Plays a pipeline to its end (EOS or an error, within two minutes) and gives its bus messages;
/// when it cannot start, the error that says why.
pub fn run_to_end(description: &str) -> Vec<gst::Message> {
    use gst::prelude::*;
    let pipeline = gst::parse::launch(description).unwrap();
    let bus = pipeline.bus().unwrap();
    let mut messages = Vec::new();
    if pipeline.set_state(gst::State::Playing).is_ok() {
        for msg in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
            let done = matches!(
                msg.view(),
                gst::MessageView::Eos(_) | gst::MessageView::Error(_)
            );
            messages.push(msg);
            if done {
                break;
            }
        }
    } else {
        // The state change failed: the reason is on the bus.
        messages.extend(
            bus.timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error]),
        );
    }
    pipeline.set_state(gst::State::Null).unwrap();
    messages
}
