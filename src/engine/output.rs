// SPDX-License-Identifier: MPL-2.0
//! A model's output tensor as the decoders read it, shared by the host path ([`super::model`])
//! and the frame graphs ([`super::preprocess::graph`]) so that neither imports the other.

/// One output tensor, borrowed for the duration of a callback.
pub struct Output<'a> {
    pub shape: Vec<i64>,
    pub data: &'a [f32],
}
