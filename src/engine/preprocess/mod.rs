// SPDX-License-Identifier: MPL-2.0
//! Where the pre-processing runs: on the host ([`crate::engine::image::warp_into`] into each
//! model's input tensor) or inside the model's frame graph (the network with the sampling and
//! normalisation folded in by the models recipe, `models/convert/frame_graph.py`).
//!
//! In graph mode each frame becomes its input tensors once ([`frame::FrameStore`]: the packed
//! pixels, or the Y and CbCr planes), uploaded once to the device on CUDA and TensorRT, and bound
//! with ONNX Runtime's I/O binding to every run of that frame ([`graph::FrameGraph`]); each run
//! adds only the crop maps, and only the network's outputs come back.

pub mod frame;
pub mod graph;

use super::error::{Error, Result};

/// The descriptor key naming a model's frame graph for packed RGB-family frames.
pub const PACKED_KEY: &str = "frame-graph";
/// The descriptor key naming a model's frame graph for I420 and NV12 frames.
pub const YUV_KEY: &str = "frame-graph-yuv";

/// Where the pre-processing runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preprocess {
    /// `graph` when the models run on CUDA or TensorRT and their frame graphs exist, else `host`.
    #[default]
    Auto,
    /// The engine's warp on the host, into each model's input tensor.
    Host,
    /// The frame graphs (an error at start when a model has none).
    Graph,
}

impl Preprocess {
    pub fn name(self) -> &'static str {
        match self {
            Preprocess::Auto => "auto",
            Preprocess::Host => "host",
            Preprocess::Graph => "graph",
        }
    }
}

impl std::str::FromStr for Preprocess {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "host" => Ok(Self::Host),
            "graph" => Ok(Self::Graph),
            _ => Err(Error::Config(format!(
                "pre-processing `{s}` is not auto, host or graph"
            ))),
        }
    }
}

/// Whether `auto` picks the frame graphs for models running on `provider`: on the accelerators,
/// where the upload of a whole frame is cheaper than an upload per crop and the sampling is
/// nearly free; never on the CPU, where the host warp is faster.
pub fn auto_picks_graph(provider: &str) -> bool {
    matches!(provider, "cuda" | "tensorrt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_auto_keeps_the_cpu_on_the_host() {
        for p in [Preprocess::Auto, Preprocess::Host, Preprocess::Graph] {
            assert_eq!(p.name().parse::<Preprocess>().unwrap(), p);
        }
        let e = "device".parse::<Preprocess>().unwrap_err().to_string();
        assert!(
            e.contains("`device`") && e.contains("auto, host or graph"),
            "{e}"
        );
        assert!(!auto_picks_graph("cpu"));
        assert!(auto_picks_graph("cuda") && auto_picks_graph("tensorrt"));
    }
}
