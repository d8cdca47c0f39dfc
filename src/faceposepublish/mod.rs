// SPDX-License-Identifier: MPL-2.0
//! The `faceposepublish` element.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FacePosePublish(ObjectSubclass<imp::FacePosePublish>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// The MQTT version spoken (the `protocol` property); the values are the protocol levels of the
/// CONNECT packet.
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFacePosePublishProtocol")]
pub enum Protocol {
    #[default]
    #[enum_value(name = "MQTT 3.1.1", nick = "3.1.1")]
    V311 = 4,
    #[enum_value(
        name = "MQTT 5 (source and frame timestamps also as user properties)",
        nick = "5"
    )]
    V5 = 5,
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    Protocol::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "faceposepublish",
        gst::Rank::NONE,
        FacePosePublish::static_type(),
    )
}
