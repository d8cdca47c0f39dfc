// SPDX-License-Identifier: MPL-2.0
//! What the engine reports for each face, its attention included (computed in
//! [`super::attention`], which reads faces; this module imports nothing of it).

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

/// One face's attention on one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceAttention {
    /// Head position in centimetres (x right, y down, z forward from the camera); `None`
    /// without a field of view (`camera-fov=0`), never a made-up one.
    pub position: Option<[f32; 3]>,
    pub position_source: Option<PositionSource>,
    /// The head's forward axis, a unit vector in the same frame (with `camera-fov=0`, relative
    /// to the face's own line of sight, which is then the z axis).
    pub gaze: [f32; 3],
    /// Degrees between the forward axis and the direction to the camera.
    pub camera_angle: f32,
    /// `camera_angle` below the configured angle.
    pub looking_at_camera: bool,
    /// Where the gaze ray meets the target, centimetres from its top-left corner; `None` without
    /// a target or when it misses.
    pub target_point: Option<[f32; 2]>,
    /// Looking at what episodes follow (the target when one is set, else the camera), this frame.
    pub looking: bool,
    /// In an attention episode (debounced over `frames`): since when (the timestamp of its first
    /// frame, nanoseconds).
    pub episode_start: Option<u64>,
    /// The track's totals so far, nanoseconds of stream time: on screen, and looking (episodes).
    pub visible_ns: u64,
    pub looking_ns: u64,
    /// Completed and current episodes of the track.
    pub episodes: u32,
}

/// How a head's position was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionSource {
    /// The rigid fit's scale (pixels per centimetre of the reference face).
    Fit,
    /// The detector's box width against [`BOX_WIDTH_CM`](super::attention::gaze::BOX_WIDTH_CM) (no usable fit).
    Box,
}

impl PositionSource {
    pub fn name(self) -> &'static str {
        match self {
            PositionSource::Fit => "fit",
            PositionSource::Box => "box",
        }
    }

    pub fn from_name(name: &str) -> Option<PositionSource> {
        [PositionSource::Fit, PositionSource::Box]
            .into_iter()
            .find(|s| s.name() == name)
    }
}
