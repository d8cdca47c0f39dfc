// SPDX-License-Identifier: MPL-2.0
//! What the engine reports for each face.

use super::attention::FaceAttention;
use super::geometry::{BBox, Point};
use super::pose::{Pose, PoseMethod, Rotation};

/// One face in frame pixel coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    /// Track id: stable across the frames of a stream in [`super::Engine::track`]; the index
    /// in the frame from [`super::Engine::process`].
    pub id: u64,
    /// Box from the detector.
    pub bbox: BBox,
    /// Detector confidence, 0..1.
    pub score: f32,
    /// Five key points from the detector (see [`crate::engine::detect::KEYPOINT_NAMES`]).
    pub keypoints: [Point; 5],
    /// Landmarks: x, y in pixels, z in pixels on the x scale (negative towards the camera).
    pub landmarks: Vec<[f32; 3]>,
    /// Face-presence probability from the landmark model, 0..1.
    pub presence: f32,
    /// Head pose in degrees, in the camera's frame (unless the camera's field of view is 0).
    pub pose: Pose,
    /// The rotation behind `pose` (camera frame: x right, y up, z towards the camera).
    pub rotation: Rotation,
    /// The method that produced `pose`: the configured one, or `rigid` for a face whose
    /// regressor output was unusable.
    pub method: PoseMethod,
    /// The landmark fit's own estimate (same frame as `pose`), when it ran.
    pub fit_pose: Option<Pose>,
    /// The regressor's own estimate (same frame as `pose`), when it ran and gave usable angles.
    pub regressed_pose: Option<Pose>,
    /// The regressor's share of `pose`, 0..=1 (1 for `regression`, 0 for landmark methods).
    pub regressor_weight: f32,
    /// Pixels per reference-face unit (centimetres for FaceMesh's canonical face).
    pub scale: f32,
    /// RMS residual of the rigid fit, in pixels.
    pub fit_error: f32,
    /// Where the face looks and its track's attention (see [`super::attention`]); `None` until
    /// [`super::attention::Attention::update`] judged it.
    pub attention: Option<FaceAttention>,
}
