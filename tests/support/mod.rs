// SPDX-License-Identifier: MPL-2.0
//! Helpers shared by the tests and the example tools: decoding pictures and finding the set-up's
//! models and sample pictures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use gstfacepose::engine::{self, EngineConfig, ImageView, PixelFormat};

/// A decoded RGB picture.
pub struct Picture {
    pub data: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

impl Picture {
    pub fn load(path: &Path) -> Result<Picture, String> {
        let img = image::open(path).map_err(|e| format!("cannot decode {}: {e}", path.display()))?;
        let rgb = img.to_rgb8();
        Ok(Picture {
            width: rgb.width() as usize,
            height: rgb.height() as usize,
            data: rgb.into_raw(),
        })
    }

    pub fn view(&self) -> ImageView<'_> {
        ImageView::packed(PixelFormat::Rgb, self.width, self.height, &self.data, self.width * 3)
            .expect("a decoded picture is a valid frame")
    }

    pub fn save_png(&self, path: &Path) -> Result<(), String> {
        image::save_buffer(path, &self.data, self.width as u32, self.height as u32, image::ExtendedColorType::Rgb8)
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
    for p in [&c.detector_model, &c.landmark_model, &c.reference_face] {
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
    let ci = std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false);
    if ci {
        panic!("{test}: {} is missing, and CI must run this test", p.display());
    }
    eprintln!("SKIPPED {test}: {} is missing (this test needs ../shared)", p.display());
    None
}
