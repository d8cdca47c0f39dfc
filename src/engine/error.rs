// SPDX-License-Identifier: MPL-2.0
//! The engine's error type: every variant names the thing that is wrong.

use std::fmt;
use std::path::PathBuf;

/// Errors raised while loading models or processing frames.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The ONNX Runtime shared library could not be found or loaded.
    Runtime {
        path: Option<PathBuf>,
        message: String,
    },
    /// A model file is missing, unreadable or not a usable ONNX model.
    Model { path: PathBuf, message: String },
    /// A model descriptor is missing or malformed.
    Descriptor {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// A data file (such as the canonical face) is missing or malformed.
    Data { path: PathBuf, message: String },
    /// The frame handed to the engine is not valid.
    Image(String),
    /// A configuration value is out of range.
    Config(String),
    /// Running a model failed.
    Inference { model: String, message: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Runtime {
                path: Some(path),
                message,
            } => write!(f, "ONNX Runtime library {}: {message}", path.display()),
            Error::Runtime {
                path: None,
                message,
            } => write!(f, "ONNX Runtime library: {message}"),
            Error::Model { path, message } => write!(f, "model {}: {message}", path.display()),
            Error::Descriptor {
                path,
                line: Some(line),
                message,
            } => write!(f, "descriptor {} line {line}: {message}", path.display()),
            Error::Descriptor {
                path,
                line: None,
                message,
            } => write!(f, "descriptor {}: {message}", path.display()),
            Error::Data { path, message } => write!(f, "data file {}: {message}", path.display()),
            Error::Image(message) => write!(f, "frame: {message}"),
            Error::Config(message) => write!(f, "configuration: {message}"),
            Error::Inference { model, message } => write!(f, "running {model}: {message}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
