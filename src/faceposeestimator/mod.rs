// SPDX-License-Identifier: MPL-2.0
//! The `faceposeestimator` element.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FacePoseEstimator(ObjectSubclass<imp::FacePoseEstimator>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Which hardware runs the models (the `execution-provider` property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFacePoseExecutionProvider")]
pub enum ExecutionProvider {
    #[default]
    #[enum_value(
        name = "The best available: TensorRT, CUDA, then the CPU",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(name = "CPU", nick = "cpu")]
    Cpu = 1,
    #[enum_value(name = "CUDA", nick = "cuda")]
    Cuda = 2,
    #[enum_value(name = "TensorRT", nick = "tensorrt")]
    TensorRt = 3,
}

impl From<ExecutionProvider> for crate::engine::ExecutionProvider {
    fn from(p: ExecutionProvider) -> Self {
        match p {
            ExecutionProvider::Auto => Self::Auto,
            ExecutionProvider::Cpu => Self::Cpu,
            ExecutionProvider::Cuda => Self::Cuda,
            ExecutionProvider::TensorRt => Self::TensorRt,
        }
    }
}

/// Where the pre-processing runs (the `preprocess` property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFacePosePreprocess")]
pub enum Preprocess {
    #[default]
    #[enum_value(
        name = "graph on CUDA and TensorRT when the frame graphs exist, else host",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(name = "The engine's warp on the host", nick = "host")]
    Host = 1,
    #[enum_value(
        name = "The models' frame graphs (the frame uploaded once, crops sampled by the provider)",
        nick = "graph"
    )]
    Graph = 2,
}

impl From<Preprocess> for crate::engine::Preprocess {
    fn from(p: Preprocess) -> Self {
        match p {
            Preprocess::Auto => Self::Auto,
            Preprocess::Host => Self::Host,
            Preprocess::Graph => Self::Graph,
        }
    }
}

/// Where the detector runs while tracking (the `async-detection` property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFacePoseAsyncDetection")]
pub enum AsyncDetection {
    #[default]
    #[enum_value(
        name = "Pipelined for a source that is not live, background with a 2-frame bound for a live one",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(
        name = "Frames held, the detector a few frames ahead on its own thread: the same faces at any speed",
        nick = "pipelined"
    )]
    Pipelined = 1,
    #[enum_value(
        name = "Background, frames never wait: faces join late and depend on the speed",
        nick = "true"
    )]
    Background = 2,
    #[enum_value(
        name = "In line: detection frames wait for the detector",
        nick = "false"
    )]
    InLine = 3,
}

/// How a face's angles are found (the `pose-method` property).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFacePosePoseMethod")]
pub enum PoseMethod {
    #[enum_value(
        name = "Rigid fit of a 3-D reference face (all 468 points, or 14 for 98-point landmarks)",
        nick = "rigid"
    )]
    Rigid = 0,
    #[enum_value(
        name = "The seed project's linear formula (98-point WFLW landmarks only)",
        nick = "seed-linear"
    )]
    SeedLinear = 1,
    #[default]
    #[enum_value(
        name = "Rigid fit and head-pose regressor blended by how turned the face is (rigid without a pose model)",
        nick = "fused"
    )]
    Fused = 2,
    #[enum_value(
        name = "The head-pose regressor alone (needs pose-model)",
        nick = "regression"
    )]
    Regression = 3,
}

impl From<PoseMethod> for crate::engine::PoseMethod {
    fn from(p: PoseMethod) -> Self {
        match p {
            PoseMethod::Rigid => Self::Rigid,
            PoseMethod::SeedLinear => Self::SeedLinear,
            PoseMethod::Fused => Self::Fused,
            PoseMethod::Regression => Self::Regression,
        }
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    ExecutionProvider::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    AsyncDetection::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    PoseMethod::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Preprocess::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "faceposeestimator",
        gst::Rank::NONE,
        FacePoseEstimator::static_type(),
    )
}
