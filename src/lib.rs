// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]
// `!(x >= t)` is used on purpose: unlike `x < t` it is true for NaN, which must be rejected.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

//! # gst-plugin-facepose
//!
//! Face detection, face landmarks and head pose (yaw, pitch, roll) for GStreamer video.
//!
//! The [`engine`] module is the GStreamer-free core (frame in, faces out); the GStreamer element
//! is a thin adapter over it.

use gst::glib;

#[cfg(feature = "analytics")]
pub mod analytics;
pub mod engine;
mod faceposeestimator;
mod faceposepublish;
mod font;
pub mod frame_view;
pub mod json;
pub mod meta;
pub mod mqtt;
pub mod overlay;

pub use faceposeestimator::{ExecutionProvider, FacePoseEstimator, PoseMethod};
pub use faceposepublish::FacePosePublish;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // Loaded from a file (not registered statically): when that file lies in a GStreamer plugin
    // folder of some prefix, the models and ONNX Runtime are looked for in that prefix.
    if let Some(installation) = plugin
        .filename()
        .and_then(|file| engine::locate::Installation::from_plugin_file(&file))
    {
        engine::locate::set_installation(Some(installation));
    }
    meta::register();
    faceposeestimator::register(plugin)?;
    faceposepublish::register(plugin)
}

gst::plugin_define!(
    facepose,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
