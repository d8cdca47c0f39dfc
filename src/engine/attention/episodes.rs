// SPDX-License-Identifier: MPL-2.0
//! Attention episodes per track: stretches of frames a track looks (at the camera or the
//! target), debounced so that a run of fewer than `frames` frames neither starts nor ends one,
//! and the track's totals.
//!
//! An episode starts at the timestamp of the first frame of the run of looking frames that
//! started it and ends at the timestamp of the first frame of the run of frames that ended it
//! (frames where the track is out of sight count as not looking; the end of the track's last
//! frame stands for them). A track ends once it has been out of sight for longer than the
//! tracker remembers a lost face ([`KEEP_LOST_FRAMES`]), at the end of stream, a flush or a new
//! stream. Times are nanoseconds of the buffers' timestamps; a frame's duration is its buffer's,
//! else the gap to the next frame's timestamp, else 0.

use std::collections::BTreeMap;

use super::super::face::Face;
use super::super::track::KEEP_LOST_FRAMES;

/// What ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An attention episode.
    Episode,
    /// A track (with its totals).
    TrackEnd,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Episode => "episode",
            EventKind::TrackEnd => "track-end",
        }
    }

    pub fn from_name(name: &str) -> Option<EventKind> {
        [EventKind::Episode, EventKind::TrackEnd]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// An episode or a track that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionEvent {
    pub kind: EventKind,
    /// The track id.
    pub id: u64,
    /// The episode's (or the track's) first timestamp, nanoseconds; `None` without timestamps.
    pub start: Option<u64>,
    /// Where it ended, nanoseconds.
    pub end: Option<u64>,
    /// The track's totals when the event happened: nanoseconds on screen, nanoseconds looking
    /// (its episodes), and its episodes.
    pub visible_ns: u64,
    pub looking_ns: u64,
    pub episodes: u32,
}

impl AttentionEvent {
    /// `end - start`, nanoseconds (0 without timestamps).
    pub fn duration_ns(&self) -> u64 {
        span(self.start, self.end)
    }
}

/// `end - start`, nanoseconds; 0 without both.
fn span(start: Option<u64>, end: Option<u64>) -> u64 {
    match (start, end) {
        (Some(s), Some(e)) => e.saturating_sub(s),
        _ => 0,
    }
}

#[derive(Debug, Default)]
struct Track {
    /// Timestamp of its first frame.
    first: Option<u64>,
    /// End of its last frame in sight (timestamp + duration).
    last_end: Option<u64>,
    /// Frames out of sight since then.
    absent: u32,
    /// In an episode (the debounced state), since `episode_start`.
    attending: bool,
    episode_start: Option<u64>,
    /// Frames in a row that disagree with `attending`, and where that run began.
    run: u32,
    run_start: Option<u64>,
    visible_ns: u64,
    /// Looking time of the episodes that ended.
    looked_ns: u64,
    episodes: u32,
}

impl Track {
    /// One frame's verdict (`looking`; out of sight counts as not looking) at `at` (where a
    /// change that this frame starts would be dated), with `frames` frames in a row to change the
    /// state.
    fn step(
        &mut self,
        id: u64,
        looking: bool,
        at: Option<u64>,
        frames: u32,
    ) -> Option<AttentionEvent> {
        if looking == self.attending {
            self.run = 0;
            return None;
        }
        if self.run == 0 {
            self.run_start = at;
        }
        self.run += 1;
        if self.run < frames {
            return None;
        }
        self.run = 0;
        self.attending = looking;
        if looking {
            self.episode_start = self.run_start;
            self.episodes += 1;
            return None;
        }
        Some(self.close_episode(id, self.run_start))
    }

    /// Ends the open episode at `end`, adds it to the looking time, and gives its event.
    fn close_episode(&mut self, id: u64, end: Option<u64>) -> AttentionEvent {
        let start = self.episode_start.take();
        self.looked_ns += span(start, end);
        AttentionEvent {
            kind: EventKind::Episode,
            id,
            start,
            end,
            visible_ns: self.visible_ns,
            looking_ns: self.looked_ns,
            episodes: self.episodes,
        }
    }

    /// Looking time so far, counting an open episode up to `now`.
    fn looking_ns(&self, now: Option<u64>) -> u64 {
        let open = if self.attending {
            span(self.episode_start, now)
        } else {
            0
        };
        self.looked_ns + open
    }

    /// Ends the track: its open episode (ending where the track was last seen), then the track.
    fn end(mut self, id: u64) -> Vec<AttentionEvent> {
        let mut events = Vec::with_capacity(2);
        if self.attending {
            events.push(self.close_episode(id, self.last_end));
        }
        events.push(AttentionEvent {
            kind: EventKind::TrackEnd,
            id,
            start: self.first,
            end: self.last_end,
            visible_ns: self.visible_ns,
            looking_ns: self.looked_ns,
            episodes: self.episodes,
        });
        events
    }
}

/// Every track's episode state.
#[derive(Debug, Default)]
pub struct Tracks {
    tracks: BTreeMap<u64, Track>,
    /// A frame without a duration, waiting for the next timestamp: (its timestamp, the ids on
    /// it), so its time on screen is added when the gap is known.
    undated: Option<(u64, Vec<u64>)>,
}

impl Tracks {
    /// Updates every track with a frame's faces (whose `attention` is set) and fills their
    /// episode fields; gives what ended.
    pub fn update(
        &mut self,
        faces: &mut [Face],
        pts: Option<u64>,
        duration: Option<u64>,
        frames: u32,
    ) -> Vec<AttentionEvent> {
        // A previous frame without a duration lasted until this one.
        if let (Some((then, ids)), Some(now)) = (self.undated.take(), pts) {
            let gap = now.saturating_sub(then);
            for id in ids {
                if let Some(t) = self.tracks.get_mut(&id) {
                    t.visible_ns += gap;
                    t.last_end = Some(then + gap);
                }
            }
        }
        let end = pts.zip(duration).map(|(p, d)| p + d);
        let mut events = Vec::new();
        for face in faces.iter_mut() {
            let Some(a) = face.attention.as_mut() else {
                continue;
            };
            let t = self.tracks.entry(face.id).or_default();
            if t.first.is_none() {
                t.first = pts;
            }
            t.absent = 0;
            t.visible_ns += duration.unwrap_or(0);
            t.last_end = end.or(pts);
            events.extend(t.step(face.id, a.looking, pts, frames));
            a.episode_start = if t.attending { t.episode_start } else { None };
            a.visible_ns = t.visible_ns;
            a.looking_ns = t.looking_ns(t.last_end);
            a.episodes = t.episodes;
        }
        if duration.is_none()
            && let Some(p) = pts
        {
            self.undated = Some((p, faces.iter().map(|f| f.id).collect()));
        }
        let seen: Vec<u64> = faces.iter().map(|f| f.id).collect();
        let mut ended = Vec::new();
        for (&id, t) in self.tracks.iter_mut() {
            if seen.contains(&id) {
                continue;
            }
            t.absent += 1;
            let at = t.last_end;
            events.extend(t.step(id, false, at, frames));
            if t.absent > KEEP_LOST_FRAMES {
                ended.push(id);
            }
        }
        for id in ended {
            if let Some(t) = self.tracks.remove(&id) {
                events.extend(t.end(id));
            }
        }
        events
    }

    /// Ends every track.
    pub fn finish(&mut self) -> Vec<AttentionEvent> {
        self.undated = None;
        std::mem::take(&mut self.tracks)
            .into_iter()
            .flat_map(|(id, t)| t.end(id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::attention::{AttentionConfig, FaceAttention};
    use crate::engine::geometry::{BBox, Point};
    use crate::engine::pose::{Pose, PoseMethod};

    const FRAME: u64 = 40_000_000;

    fn face(id: u64, looking: bool) -> Face {
        Face {
            id,
            bbox: BBox::new(0.0, 0.0, 10.0, 10.0),
            score: 1.0,
            keypoints: [Point::default(); 5],
            landmarks: Vec::new(),
            presence: 1.0,
            pose: Pose::default(),
            rotation: Pose::default().to_rotation(),
            method: PoseMethod::Rigid,
            fit_pose: None,
            regressed_pose: None,
            regressor_weight: 0.0,
            scale: 0.0,
            fit_error: 0.0,
            attention: Some(FaceAttention {
                position: None,
                position_source: None,
                gaze: [0.0, 0.0, -1.0],
                camera_angle: 0.0,
                looking_at_camera: looking,
                target_point: None,
                looking,
                episode_start: None,
                visible_ns: 0,
                looking_ns: 0,
                episodes: 0,
            }),
        }
    }

    /// Runs a pattern ('1' looking, '0' not, '.' out of sight) for track 7 at 25 fps.
    fn run(pattern: &str, frames: u32, with_duration: bool) -> (Vec<AttentionEvent>, Vec<Face>) {
        let mut tracks = Tracks::default();
        let mut events = Vec::new();
        let mut seen = Vec::new();
        for (i, c) in pattern.chars().enumerate() {
            let mut faces = match c {
                '1' => vec![face(7, true)],
                '0' => vec![face(7, false)],
                _ => vec![],
            };
            let duration = with_duration.then_some(FRAME);
            events.extend(tracks.update(&mut faces, Some(i as u64 * FRAME), duration, frames));
            seen.extend(faces);
        }
        events.extend(tracks.finish());
        (events, seen)
    }

    fn episodes(events: &[AttentionEvent]) -> Vec<(u64, u64)> {
        events
            .iter()
            .filter(|e| e.kind == EventKind::Episode)
            .map(|e| (e.start.unwrap() / FRAME, e.end.unwrap() / FRAME))
            .collect()
    }

    #[test]
    fn jitter_shorter_than_the_hysteresis_neither_starts_nor_ends_an_episode() {
        // Looking from frame 3 with a one-frame dip at 7 and a two-frame one at 9..=10 (both
        // shorter than 3 frames), not looking from 14; blips of one and two frames at 17 and
        // 20..=21; looking 23..=28.
        let pattern = "000111101001110001001101111110000";
        let (events, faces) = run(pattern, AttentionConfig::default().frames, true);
        assert_eq!(episodes(&events), [(3, 14), (23, 29)], "{events:#?}");
        let end = events.last().unwrap();
        assert_eq!(end.kind, EventKind::TrackEnd);
        assert_eq!(end.start, Some(0));
        assert_eq!(end.end, Some(pattern.len() as u64 * FRAME));
        assert_eq!(end.visible_ns, pattern.len() as u64 * FRAME);
        assert_eq!(end.looking_ns, (11 + 6) * FRAME);
        assert_eq!(end.episodes, 2);
        // Per face: the episode it is in, from the frame that confirmed it.
        let a = |i: usize| faces[i].attention.unwrap();
        assert_eq!(a(4).episode_start, None, "not confirmed yet");
        assert_eq!(a(5).episode_start, Some(3 * FRAME));
        assert_eq!(a(5).looking_ns, 3 * FRAME);
        assert_eq!(a(9).episode_start, Some(3 * FRAME), "a dip does not end it");
        assert_eq!(a(15).episode_start, Some(3 * FRAME), "not ended yet");
        assert_eq!(a(16).episode_start, None);
        assert_eq!(a(16).looking_ns, 11 * FRAME);
        assert_eq!(a(16).episodes, 1);
    }

    #[test]
    fn one_frame_hysteresis_follows_every_frame() {
        let (events, _) = run("0110100", 1, true);
        assert_eq!(episodes(&events), [(1, 3), (4, 5)]);
    }

    #[test]
    fn out_of_sight_ends_an_episode_where_the_face_was_last_seen_and_keeps_the_track() {
        // Out of sight for 4 frames: the episode ends at the end of frame 4; the track goes on.
        let pattern = "11111....111";
        let (events, _) = run(pattern, 3, true);
        assert_eq!(episodes(&events), [(0, 5), (9, 12)]);
        let ends: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::TrackEnd)
            .collect();
        assert_eq!(ends.len(), 1, "one track: {events:#?}");
        assert_eq!(ends[0].visible_ns, 8 * FRAME);
        assert_eq!(ends[0].looking_ns, 8 * FRAME);
    }

    #[test]
    fn a_track_out_of_sight_longer_than_the_tracker_remembers_ends() {
        let gone = ".".repeat(KEEP_LOST_FRAMES as usize + 1);
        let pattern = format!("1111{gone}11");
        let (events, _) = run(&pattern, 2, true);
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        use EventKind::*;
        assert_eq!(kinds, [Episode, TrackEnd, Episode, TrackEnd], "{events:#?}");
        assert_eq!(events[1].end, Some(4 * FRAME));
        assert_eq!(events[1].visible_ns, 4 * FRAME);
    }

    #[test]
    fn without_durations_a_frame_lasts_until_the_next_timestamp() {
        let pattern = "0011110000";
        let (with, _) = run(pattern, 2, true);
        let (without, _) = run(pattern, 2, false);
        assert_eq!(episodes(&with), episodes(&without));
        let total = |e: &[AttentionEvent]| e.last().unwrap().visible_ns;
        // The last frame's length is unknown without a duration.
        assert_eq!(total(&without), total(&with) - FRAME);
    }
}
