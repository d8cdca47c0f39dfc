// SPDX-License-Identifier: MPL-2.0
//! Who is looking where: each face's head position and forward axis in the camera's frame,
//! whether it looks at the camera (or at a target such as a screen), and per track the episodes
//! of attention and their totals.
//!
//! [`Attention::update`] runs on every frame's faces, in stream order, after the tracker. Time
//! comes from the frames' timestamps only (never the wall clock), so a file gives the same
//! episodes at any speed.

pub mod episodes;
pub mod gaze;

use super::error::{Error, Result};
use super::face::Face;
use super::pose::perspective::Camera;

pub use super::face::FaceAttention;
pub use episodes::{AttentionEvent, EventKind};
pub use gaze::PositionSource;

/// Default `attention-angle`: degrees between the forward axis and the direction to the camera
/// under which a face looks at the camera.
pub const DEFAULT_ATTENTION_ANGLE: f32 = 25.0;
/// Default `attention-frames`: frames in a row that start or end an episode.
pub const DEFAULT_ATTENTION_FRAMES: u32 = 3;
pub const MAX_ATTENTION_FRAMES: u32 = 1000;

/// A rectangle in the camera's plane (z = 0), facing the same way as the camera: a screen with
/// the camera on its bezel. Centimetres, output frame (x right, y down from the camera's centre).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// Top-left corner.
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Target {
    /// Parses `x,y,width,height` (centimetres; commas or spaces between). `name` names the
    /// property in the error.
    pub fn parse(text: &str, name: &str) -> Result<Target> {
        let values: Vec<&str> = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect();
        let numbers: Option<Vec<f64>> = values.iter().map(|v| v.parse::<f64>().ok()).collect();
        let bad = |why: &str| {
            Error::Config(format!(
                "{name} \"{text}\": {why} (expected `x,y,width,height` in centimetres: the \
                 target's top-left corner from the camera, x right, y down, then its size)"
            ))
        };
        let Some(n) = numbers.filter(|n| n.len() == 4) else {
            return Err(bad("not four numbers"));
        };
        if n.iter().any(|v| !v.is_finite()) {
            return Err(bad("a value is not finite"));
        }
        if !(n[2] > 0.0 && n[3] > 0.0) {
            return Err(bad("width and height must be positive"));
        }
        Ok(Target {
            x: n[0],
            y: n[1],
            width: n[2],
            height: n[3],
        })
    }
}

/// What attention is judged against, and how episodes are debounced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionConfig {
    /// Degrees; a face looks at the camera when its forward axis is within this of the direction
    /// to the camera. In (0, 90).
    pub angle: f32,
    /// When set, episodes follow looks at the target instead of the camera.
    pub target: Option<Target>,
    /// Frames in a row that start (or end) an episode: a run shorter than this changes nothing.
    pub frames: u32,
}

impl Default for AttentionConfig {
    fn default() -> Self {
        AttentionConfig {
            angle: DEFAULT_ATTENTION_ANGLE,
            target: None,
            frames: DEFAULT_ATTENTION_FRAMES,
        }
    }
}

impl AttentionConfig {
    /// Checks the configuration against the camera's field of view (0: none), naming the
    /// property that is wrong.
    pub fn check(&self, camera_fov: f32) -> Result<()> {
        if !(self.angle > 0.0 && self.angle < 90.0) {
            return Err(Error::Config(format!(
                "attention-angle {} is outside (0, 90) degrees",
                self.angle
            )));
        }
        if !(1..=MAX_ATTENTION_FRAMES).contains(&self.frames) {
            return Err(Error::Config(format!(
                "attention-frames {} is outside 1..={MAX_ATTENTION_FRAMES}",
                self.frames
            )));
        }
        if self.target.is_some() && camera_fov <= 0.0 {
            return Err(Error::Config(
                "attention-target needs the head's position, which needs camera-fov > 0 \
                 (camera-fov is 0)"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// The frame's geometry attention needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameGeometry {
    pub width: usize,
    pub height: usize,
    /// Horizontal field of view in degrees; 0: unknown (no positions).
    pub camera_fov: f32,
}

/// Attention across a stream: per-face geometry and per-track episodes.
#[derive(Debug, Default)]
pub struct Attention {
    config: AttentionConfig,
    tracks: episodes::Tracks,
}

impl Attention {
    pub fn new(config: AttentionConfig) -> Attention {
        Attention {
            config,
            tracks: Default::default(),
        }
    }

    pub fn config(&self) -> &AttentionConfig {
        &self.config
    }

    /// Takes a new configuration; episodes go on (a change of target or angle applies from the
    /// next frame).
    pub fn set_config(&mut self, config: AttentionConfig) {
        self.config = config;
    }

    /// Judges each face of a frame (timestamp `pts`, `duration` in nanoseconds; `None` when the
    /// buffer has none), fills its [`Face::attention`], and gives the episodes and tracks that
    /// ended with this frame.
    pub fn update(
        &mut self,
        faces: &mut [Face],
        frame: FrameGeometry,
        pts: Option<u64>,
        duration: Option<u64>,
    ) -> Vec<AttentionEvent> {
        let camera = Camera::from_fov(frame.width, frame.height, frame.camera_fov);
        for face in faces.iter_mut() {
            face.attention = Some(judge(face, camera.as_ref(), &self.config));
        }
        self.tracks
            .update(faces, pts, duration, self.config.frames.max(1))
    }

    /// Ends every track (end of stream, a flush, a new stream): the events of the episodes
    /// still open and of the tracks.
    pub fn finish(&mut self) -> Vec<AttentionEvent> {
        self.tracks.finish()
    }
}

/// One face's geometry against the configuration.
fn judge(face: &Face, camera: Option<&Camera>, config: &AttentionConfig) -> FaceAttention {
    let located = camera.and_then(|c| gaze::head_position(face, c));
    let position = located.map(|(p, _)| p);
    let forward = gaze::forward_axis(face);
    let camera_angle = gaze::camera_angle(forward, position);
    let looking_at_camera = camera_angle < config.angle as f64;
    let target_point = match (config.target, position) {
        (Some(t), Some(p)) => gaze::target_point(p, forward, &t),
        _ => None,
    };
    let looking = match config.target {
        Some(_) => target_point.is_some(),
        None => looking_at_camera,
    };
    FaceAttention {
        position: position.map(|p| p.map(|v| v as f32)),
        position_source: located.map(|(_, s)| s),
        gaze: forward.map(|v| v as f32),
        camera_angle: camera_angle as f32,
        looking_at_camera,
        target_point: target_point.map(|p| p.map(|v| v as f32)),
        looking,
        episode_start: None,
        visible_ns: 0,
        looking_ns: 0,
        episodes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_four_positive_finite_numbers() {
        let t = Target::parse("-26, 2, 52,32", "attention-target").unwrap();
        assert_eq!((t.x, t.y, t.width, t.height), (-26.0, 2.0, 52.0, 32.0));
        for bad in [
            "1,2,3",
            "1,2,0,4",
            "1,2,3,-4",
            "nan,0,1,1",
            "1,2,inf,4",
            "a,b,c,d",
            "",
        ] {
            let e = Target::parse(bad, "attention-target")
                .unwrap_err()
                .to_string();
            assert!(e.contains("attention-target"), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_settings_name_their_property() {
        let c = |angle, frames, target| AttentionConfig {
            angle,
            frames,
            target,
        };
        let target = Target::parse("0,0,10,10", "t").ok();
        assert!(c(15.0, 3, None).check(0.0).is_ok());
        assert!(c(15.0, 3, target).check(60.0).is_ok());
        for (config, fov, name) in [
            (c(0.0, 3, None), 60.0, "attention-angle"),
            (c(90.0, 3, None), 60.0, "attention-angle"),
            (c(f32::NAN, 3, None), 60.0, "attention-angle"),
            (c(15.0, 0, None), 60.0, "attention-frames"),
            (c(15.0, 3, target), 0.0, "camera-fov"),
        ] {
            let e = config.check(fov).unwrap_err().to_string();
            assert!(e.contains(name), "{config:?}: {e}");
        }
    }
}
