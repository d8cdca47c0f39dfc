// SPDX-License-Identifier: MPL-2.0
//! A loaded model: its ONNX Runtime session checked against its descriptor, and one call to run it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ort::value::TensorRef;

use super::descriptor::{Descriptor, Family, InputSize};
use super::error::{Error, Result};
use super::geometry::Affine;
use super::image::ImageView;
use super::image::{Layout, warp_into};
use super::output::Output;
use super::preprocess::graph::{self, FrameGraph, SharedFrameStore};
use super::preprocess::{self as pre, Preprocess};
use super::runtime::{self, RuntimeOptions, SharedSession};

/// A session whose inputs and outputs match its descriptor. The session itself is shared with
/// every other model loaded from the same file with the same options (see
/// [`runtime::shared_session`]).
pub struct Model {
    pub path: PathBuf,
    pub descriptor: Descriptor,
    pub provider: &'static str,
    pub warnings: Vec<String>,
    pub notices: Vec<String>,
    /// True when the batch dimension of the input is dynamic.
    pub dynamic_batch: bool,
    /// The network (host pre-processing), or the packed frame graph's session (graph mode).
    session: Arc<SharedSession>,
    /// The same network with a thread pool, for inputs of two or more crops (see
    /// [`Model::add_batch_session`]).
    batch_session: Option<Arc<SharedSession>>,
    /// The network with the threads of the streaming side of detection one frame ahead (see
    /// [`Model::set_ahead`]).
    ahead_session: Option<Arc<SharedSession>>,
    /// Whether every run uses `ahead_session` (else the first session, or the batch session).
    ahead: bool,
    /// The frame graphs, when the pre-processing runs in them.
    frame: Option<FrameGraph>,
    /// The input tensor of host pre-processing, kept between runs.
    input: Vec<f32>,
}

impl Model {
    /// Loads `path` with the descriptor at `descriptor` (default: beside the model) and checks that
    /// the model is of family `expected`.
    pub fn load(
        path: &Path,
        descriptor: Option<&Path>,
        expected: &[Family],
        options: &RuntimeOptions,
    ) -> Result<Model> {
        runtime::check_model_file(path)?;
        let descriptor_path = descriptor
            .map(Path::to_owned)
            .unwrap_or_else(|| Descriptor::path_for_model(path));
        let descriptor = Descriptor::load(&descriptor_path)?;
        if !expected.contains(&descriptor.family) {
            let names: Vec<&str> = expected.iter().map(|f| f.name()).collect();
            return Err(descriptor.error(
                "family",
                format!(
                    "is {}, but {} needs one of: {}",
                    descriptor.family.name(),
                    path.display(),
                    names.join(", ")
                ),
            ));
        }
        // Graph mode loads the frame graphs only; auto starts like host mode and moves to them
        // when the network runs on an accelerator and they exist.
        let frame = match options.preprocess {
            Preprocess::Graph => Some(FrameGraph::load(&descriptor, options)?),
            _ => None,
        };
        let session = match &frame {
            Some(f) => f.session().clone(),
            None => runtime::shared_session(path, options)?,
        };
        let frame = match frame {
            None if options.preprocess == Preprocess::Auto
                && pre::auto_picks_graph(session.provider)
                && graph::variants_exist(&descriptor) =>
            {
                Some(FrameGraph::load(&descriptor, options)?)
            }
            f => f,
        };
        let session = frame.as_ref().map_or(session, |f| f.session().clone());
        let mut model = Model {
            path: path.to_owned(),
            descriptor,
            provider: session.provider,
            warnings: session.warnings.clone(),
            notices: session.notices.clone(),
            dynamic_batch: false,
            session,
            batch_session: None,
            ahead_session: None,
            ahead: false,
            frame,
            input: Vec::new(),
        };
        if model.frame.is_some() {
            model.check_frame_batch();
        } else {
            model.check_io()?;
        }
        Ok(model)
    }

    /// Loads the network a second time with `options` for runs of two or more crops (batches);
    /// single crops keep the first session. For a small model on the calling thread (FaceMesh),
    /// a pool saves little on one crop but about half the time of each crop in a batch
    /// (docs/performance.md, "Measurements behind the code"); and one-crop runs stay off the pool, which 8 concurrent pipelines of one face each
    /// would contend for. Does nothing in graph mode, on an accelerator, for a model without a
    /// dynamic batch, or when `options` are those of the first session.
    pub fn add_batch_session(&mut self, options: &RuntimeOptions) -> Result<()> {
        if self.frame.is_none() && self.provider == "cpu" && self.dynamic_batch {
            let batch = runtime::shared_session(&self.path, options)?;
            if !Arc::ptr_eq(&batch, &self.session) {
                self.batch_session = Some(batch);
            }
        }
        Ok(())
    }

    /// Switches every run to a session with `threads` threads (`Some`: loaded on first use,
    /// shared like the others) or back to the usual sessions (`None`). For the models that run
    /// on the streaming thread while the detector works one frame ahead on a thread of its own
    /// (see [`crate::engine::lookahead`]): both then share the cores. Only on the CPU, in host
    /// mode, and when the model's threads are automatic (`options.threads` 0); otherwise the
    /// model keeps its sessions.
    pub fn set_ahead(&mut self, threads: Option<usize>, options: &RuntimeOptions) -> Result<()> {
        self.ahead = false;
        let Some(threads) = threads else {
            return Ok(());
        };
        if self.frame.is_some() || self.provider != "cpu" || options.threads != 0 {
            return Ok(());
        }
        if self.ahead_session.is_none() {
            let options = RuntimeOptions {
                threads,
                ..options.clone()
            };
            self.ahead_session = Some(runtime::shared_session(&self.path, &options)?);
        }
        self.ahead = true;
        Ok(())
    }

    /// Whether runs of several crops use a session of their own ([`Model::add_batch_session`]).
    pub fn has_batch_session(&self) -> bool {
        self.batch_session.is_some()
    }

    /// Whether the pre-processing runs in the model's frame graphs.
    pub fn uses_frame_graph(&self) -> bool {
        self.frame.is_some()
    }

    /// Where the pre-processing runs: "host" or "graph".
    pub fn preprocess(&self) -> &'static str {
        if self.frame.is_some() {
            "graph"
        } else {
            "host"
        }
    }

    /// Shares `store` as the frame tensors of this model's frame graphs (no-op in host mode).
    pub fn share_frame_store(&mut self, store: &SharedFrameStore) {
        if let Some(f) = &mut self.frame {
            f.share_store(store.clone());
        }
    }

    /// The frame store of the frame graphs (`None` in host mode).
    pub fn frame_store(&self) -> Option<&SharedFrameStore> {
        self.frame.as_ref().map(|f| f.store())
    }

    /// A frame graph's network is batched when its first output's leading dimension is dynamic.
    fn check_frame_batch(&mut self) {
        let first = self.descriptor.outputs.first().cloned().unwrap_or_default();
        self.dynamic_batch = self
            .output_shape(&first)
            .and_then(|s| s.first().copied())
            .is_some_and(|d| d < 0);
    }

    /// Runs the model on the crops `maps` (tensor pixel → frame pixel) of a `size` (width,
    /// height) tensor of `image`, one batch, and hands the named outputs, in descriptor order, to
    /// `read`: in the frame graph when the pre-processing runs there, else warped on the host into
    /// the model's input layout.
    pub fn run_maps<T>(
        &mut self,
        image: &ImageView,
        maps: &[Affine],
        size: (usize, usize),
        read: impl FnOnce(&[Output]) -> Result<T>,
    ) -> Result<T> {
        if let Some(frame) = &self.frame {
            return frame.run(
                &self.name(),
                image,
                maps,
                size,
                &self.descriptor.outputs,
                read,
            );
        }
        let ((w, h), n) = (size, maps.len());
        let per = w * h * 3;
        let format = self.descriptor.tensor;
        self.input.resize(per * n, 0.0);
        for (map, chunk) in maps.iter().zip(self.input.chunks_mut(per)) {
            warp_into(image, map, w, h, &format, chunk);
        }
        let shape = match format.layout {
            Layout::Nhwc => [n, h, w, 3],
            Layout::Nchw => [n, 3, h, w],
        };
        self.run(&self.input, shape, read)
    }

    fn error(&self, message: String) -> Error {
        Error::Model {
            path: self.path.clone(),
            message,
        }
    }

    /// Compares the session's inputs and outputs with the descriptor.
    fn check_io(&mut self) -> Result<()> {
        let d = &self.descriptor;
        let session = self.session.clone();
        let session = session.lock();
        let inputs: Vec<String> = session
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .collect();
        let input = session
            .inputs()
            .iter()
            .find(|i| i.name() == d.input)
            .ok_or_else(|| {
                self.error(format!(
                    "has no input named `{}` (descriptor {}); its inputs are {inputs:?}",
                    d.input,
                    d.path.display()
                ))
            })?;
        let shape: Vec<i64> = input
            .dtype()
            .tensor_shape()
            .map(|s| s.iter().copied().collect())
            .ok_or_else(|| self.error(format!("input `{}` is not a tensor", d.input)))?;
        if input.dtype().tensor_type() != Some(ort::value::TensorElementType::Float32) {
            return Err(self.error(format!("input `{}` is not float32", d.input)));
        }
        let layout_name = match d.tensor.layout {
            Layout::Nhwc => "[N, H, W, 3] (nhwc)",
            Layout::Nchw => "[N, 3, H, W] (nchw)",
        };
        let (c, h, w) = match d.tensor.layout {
            Layout::Nhwc if shape.len() == 4 => (shape[3], shape[1], shape[2]),
            Layout::Nchw if shape.len() == 4 => (shape[1], shape[2], shape[3]),
            _ => {
                return Err(self.error(format!(
                    "input `{}` has shape {shape:?}, expected {layout_name} as descriptor {} says",
                    d.input,
                    d.path.display()
                )));
            }
        };
        if c != 3 {
            return Err(self.error(format!(
                "input `{}` has shape {shape:?}: expected 3 colour channels in {layout_name}",
                d.input
            )));
        }
        match d.size {
            InputSize::Fixed { width, height } => {
                if (h > 0 && h as usize != height) || (w > 0 && w as usize != width) {
                    return Err(self.error(format!(
                        "input `{}` has shape {shape:?}, but descriptor {} expects {width}×{height}",
                        d.input,
                        d.path.display()
                    )));
                }
            }
            InputSize::Dynamic { .. } => {
                if h > 0 || w > 0 {
                    return Err(self.error(format!(
                        "input `{}` has fixed shape {shape:?}, but descriptor {} says `size = dynamic`; \
                         give the fixed size instead",
                        d.input,
                        d.path.display()
                    )));
                }
            }
        }
        if shape[0] > 1 {
            return Err(self.error(format!(
                "input `{}` has batch {} (expected 1 or dynamic)",
                d.input, shape[0]
            )));
        }
        self.dynamic_batch = shape[0] < 0;
        let outputs: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        for name in &d.outputs {
            if !outputs.contains(name) {
                return Err(self.error(format!(
                    "has no output named `{name}` (descriptor {}); its outputs are {outputs:?}",
                    d.path.display()
                )));
            }
        }
        Ok(())
    }

    /// The declared shape of output `name` (negative for dynamic dimensions), when it has one.
    pub fn output_shape(&self, name: &str) -> Option<Vec<i64>> {
        self.session
            .lock()
            .outputs()
            .iter()
            .find(|o| o.name() == name)
            .and_then(|o| {
                o.dtype()
                    .tensor_shape()
                    .map(|s| s.iter().copied().collect())
            })
    }

    /// A short name for messages: the file name.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    /// Runs the model on `input` of `shape` (in the model's layout) and hands the named outputs, in
    /// descriptor order, to `read`.
    pub fn run<T>(
        &self,
        input: &[f32],
        shape: [usize; 4],
        read: impl FnOnce(&[Output]) -> Result<T>,
    ) -> Result<T> {
        let fail = |message: String| Error::Inference {
            model: self.name(),
            message,
        };
        let tensor = TensorRef::from_array_view((shape.map(|d| d as i64), input))
            .map_err(|e| fail(format!("cannot wrap the input tensor: {e}")))?;
        let (input_name, output_names) = (&self.descriptor.input, &self.descriptor.outputs);
        let shared = match (&self.ahead_session, &self.batch_session) {
            (Some(a), _) if self.ahead => a,
            (_, Some(b)) if shape[0] > 1 => b,
            _ => &self.session,
        };
        let mut session = shared.lock();
        let outputs = session
            .run(ort::inputs![input_name.as_str() => tensor])
            .map_err(|e| fail(e.to_string()))?;
        let mut views = Vec::with_capacity(output_names.len());
        for n in output_names {
            let value = outputs
                .get(n.as_str())
                .ok_or_else(|| fail(format!("output `{n}` missing from the results")))?;
            let (s, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| fail(format!("output `{n}` is not a float32 tensor: {e}")))?;
            views.push(Output {
                shape: s.iter().copied().collect(),
                data,
            });
        }
        read(&views)
    }
}
