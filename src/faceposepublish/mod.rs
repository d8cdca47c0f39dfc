// SPDX-License-Identifier: MPL-2.0
//! The `faceposepublish` element.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FacePosePublish(ObjectSubclass<imp::FacePosePublish>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "faceposepublish",
        gst::Rank::NONE,
        FacePosePublish::static_type(),
    )
}
