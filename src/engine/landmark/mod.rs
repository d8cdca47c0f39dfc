// SPDX-License-Identifier: MPL-2.0
//! Face landmark models: one file per family.

pub mod facemesh;

pub use facemesh::{Landmarker, Landmarks};
