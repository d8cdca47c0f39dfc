// SPDX-License-Identifier: MPL-2.0
//! Tracks: stable face ids, a detection interval, landmark-driven re-cropping and smoothing.
//!
//! A [`Tracker`] holds every track of one video stream and decides, frame by frame, what the
//! engine does (the engine drives it from [`super::stream`]; this module knows nothing of the
//! engine). On a detection frame the engine runs the same path as a still picture (detector,
//! landmark passes, pose) and each face gets the id of the track whose last box overlaps it most
//! (intersection over union ≥ [`MATCH_IOU`]), or a new id.
//! Between detection frames each track's crop comes from its own previous landmarks and one
//! landmark pass runs for all tracks in one batch; a face-presence score below
//! [`TrackConfig::presence_threshold`] (or below half the track's score on its last detection
//! frame, when that is lower: FaceMesh scores some blurred, occluded or turned faces near 0) or
//! a box that jumps or changes size more than twofold drops the track. Dropped and unmatched tracks are kept out
//! of sight for [`KEEP_LOST_FRAMES`] frames so that a face the detector misses once keeps its id.
//!
//! The detection interval: 1 runs the detector on every frame (the faces are exactly those of a
//! still picture, plus ids); N > 1 every N-th frame; 0 (automatic): every
//! [`AUTO_EMPTY_INTERVAL`] frames while no face is tracked, [`AUTO_LOST_GAP`] frames after the last
//! detection when a face was lost, never while `max_faces` faces are tracked, and otherwise, to
//! find new faces, every [`search_interval`] frames: a number that comes from the sizes of the
//! models' inputs and the faces tracked, never from a clock, so that a stream's faces do not
//! depend on how fast its frames arrive. Landmark models without a presence score (PFLD) cannot
//! track: every frame is a detection frame for them.
//!
//! A track that fails to follow is searched for at once, on the same frame, by the detector on
//! the region around its last box (see `Engine::track`); only a face that is not there counts as
//! lost.
//!
//! Detection in the background (the default when the interval is not 1): the detector runs on its
//! own thread on a copy of the frame where it was due, with a [`TrackSnapshot`] of the visible
//! tracks then, while the streaming thread keeps following. When its faces come back a few frames
//! later, [`Tracker::apply_background_detection`] judges them against that snapshot, exactly as a
//! detection frame would have (the tracks it matched take its box and score, the tracks it missed
//! are lost), and the faces no track had are brought to the current frame
//! ([`forward_detection`]) and join as new tracks.

use super::detect::Detection;
use super::error::{Error, Result};
use super::face::Face;
use super::geometry::{BBox, Point};
use super::landmark::Landmarks;
use super::mirror::MirrorCorrection;
use super::pose::solver::{JUMP_SHAPE, shape_change};
use super::smooth::{DEFAULT_FRAME_SECONDS, FaceSmoother};

/// Automatic mode: detection frames when no face is tracked.
pub const AUTO_EMPTY_INTERVAL: u32 = 3;
/// Automatic mode: the fewest frames between a detection and one for a lost face.
pub const AUTO_LOST_GAP: u32 = 3;
/// Automatic mode: the bounds of the interval of searches for new faces when the detector runs
/// in line.
pub const AUTO_SEARCH_INTERVAL: std::ops::RangeInclusive<u32> = 10..=60;
/// Automatic mode: the bounds when the detector runs on a thread of its own, pipelined.
pub const AUTO_PIPELINED_SEARCH_INTERVAL: std::ops::RangeInclusive<u32> = 2..=60;
/// Automatic mode: the share of the work that searches for new faces may take in line.
pub const AUTO_SEARCH_SHARE: f64 = 0.2;
/// What one pixel of the detector's input costs against one of a landmark crop (both models on
/// one thread: RetinaFace MobileNetV2 has the deeper network per pixel); only the ratio matters.
pub const DETECTOR_PIXEL_COST: f64 = 3.0;
/// Least overlap for a detection to continue a track.
pub const MATCH_IOU: f32 = 0.3;
/// Overlap above which two tracks are taken for the same face (the newer one goes).
pub const DUPLICATE_IOU: f32 = 0.5;
/// Frames a lost or unmatched track is remembered for re-identification.
pub const KEEP_LOST_FRAMES: u32 = 30;
/// Tracking frames reuse a track's mirror correction for at most this many frames, then run the
/// mirror pass again.
pub const MIRROR_REFRESH_FRAMES: u32 = 10;
/// Default face-presence score below which a track is dropped.
pub const DEFAULT_PRESENCE_THRESHOLD: f32 = 0.5;

/// FaceMesh indices of the detector's five key points: the eye on the image's left (mean of two
/// corners), the other eye, the nose tip, the mouth corner on the image's left, the other corner.
const FACEMESH_EYES: [[usize; 2]; 2] = [[33, 133], [362, 263]];
const FACEMESH_NOSE_TIP: usize = 1;
const FACEMESH_MOUTH: [usize; 2] = [61, 291];

/// Tracking settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackConfig {
    /// 0 = automatic, 1 = every frame, N = every N-th frame.
    pub detection_interval: u32,
    /// Tracks whose face-presence score falls below this are dropped.
    pub presence_threshold: f32,
    /// One-Euro smoothing strength, 0 (off) ..= 1 (see [`super::smooth`]).
    pub smoothing: f32,
}

impl Default for TrackConfig {
    fn default() -> Self {
        TrackConfig {
            detection_interval: 0,
            presence_threshold: DEFAULT_PRESENCE_THRESHOLD,
            smoothing: 0.0,
        }
    }
}

impl TrackConfig {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.presence_threshold) {
            return Err(Error::Config(format!(
                "presence threshold {} is outside 0..=1",
                self.presence_threshold
            )));
        }
        if !(0.0..=1.0).contains(&self.smoothing) {
            return Err(Error::Config(format!(
                "smoothing {} is outside 0..=1",
                self.smoothing
            )));
        }
        Ok(())
    }
}

/// One followed face.
#[derive(Debug, Clone)]
pub(super) struct Track {
    id: u64,
    /// Unsmoothed landmarks of the last frame the face was seen (the next crop comes from them).
    landmarks: Vec<[f32; 3]>,
    /// The detector's box relative to the landmarks' bounding box (x0, y0, x1, y1 in units of
    /// its width and height), kept from the last detection.
    box_from_landmarks: [f32; 4],
    score: f32,
    /// Last reported box (for matching).
    bbox: BBox,
    /// Last key points (kept when the landmarks cannot give them).
    keypoints: [Point; 5],
    smoother: Option<FaceSmoother>,
    /// Frames since the face was last seen; 0 for a visible track.
    missed: u32,
    /// The last mirror correction and the frames since it was measured.
    correction: Option<(MirrorCorrection, u32)>,
    /// Face-presence score on the last detection frame.
    detected_presence: f32,
}

/// A visible track as it was on the frame a background detection ran on.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackSnapshot {
    id: u64,
    bbox: BBox,
    landmark_box: Option<BBox>,
}

/// What a background detection did to the tracks (see [`Tracker::apply_background_detection`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackgroundOutcome {
    /// Ids of the followed tracks it found.
    pub confirmed: Vec<u64>,
    /// Faces to bring forward, each with the id of the track it continued on the detector's
    /// frame when that track has been lost since (`None`: a new face).
    pub fresh: Vec<(Detection, Option<u64>)>,
}

/// Every track of one stream and when the detector last ran.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    tracks: Vec<Track>,
    next_id: u64,
    since_detection: Option<u32>,
    lost_last_frame: bool,
    /// A track was lost since the last detection frame.
    lost_pending: bool,
    last_time: Option<f64>,
    /// Whether the last frame ran the detector.
    pub detected: bool,
}

impl Tracker {
    /// Forgets every track (after a seek, a flush or a new stream). Ids keep counting up.
    pub fn reset(&mut self) {
        let next_id = self.next_id;
        *self = Tracker {
            next_id,
            ..Tracker::default()
        };
    }

    fn visible(&self) -> impl Iterator<Item = &Track> {
        self.tracks.iter().filter(|t| t.missed == 0)
    }

    /// Seconds since the previous frame, from this frame's timestamp `time` (`None` assumes 30
    /// frames per second). Time going backwards (a seek without a flush) starts the smoothing
    /// filters afresh.
    pub(super) fn advance_clock(&mut self, time: Option<f64>) -> f64 {
        let dt = match (time, self.last_time) {
            (Some(now), Some(before)) if now > before => now - before,
            (Some(_), Some(_)) => {
                // Time went backwards (a seek without a flush): start the filters afresh.
                for t in &mut self.tracks {
                    t.smoother = None;
                }
                DEFAULT_FRAME_SECONDS
            }
            _ => DEFAULT_FRAME_SECONDS,
        };
        self.last_time = time.or(self.last_time.map(|t| t + dt));
        dt
    }

    /// Starts a frame that runs the detector (`detect`) or only follows the tracks.
    pub(super) fn start_frame(&mut self, detect: bool) {
        self.lost_last_frame = false;
        self.since_detection = if detect {
            Some(0)
        } else {
            self.since_detection.map(|s| s + 1)
        };
    }

    /// Ends a frame: remembers whether it ran the detector and whether a track was lost.
    pub(super) fn finish_frame(&mut self, detect: bool) {
        self.detected = detect;
        if detect {
            self.lost_pending = false;
        }
        self.lost_pending |= self.lost_last_frame;
    }

    /// Frames since the last detection frame (`None` before the first).
    pub(super) fn since_detection(&self) -> Option<u32> {
        self.since_detection
    }

    /// The number of visible tracks.
    pub(super) fn visible_count(&self) -> usize {
        self.visible().count()
    }

    /// Every track, visible or remembered; indices into this are track indices.
    pub(super) fn track_count(&self) -> usize {
        self.tracks.len()
    }

    pub(super) fn track(&self, index: usize) -> &Track {
        &self.tracks[index]
    }

    /// The index of the track with id `id`.
    pub(super) fn position(&self, id: u64) -> Option<usize> {
        self.tracks.iter().position(|t| t.id == id)
    }

    /// The indices of the visible tracks.
    pub(super) fn visible_indices(&self) -> Vec<usize> {
        (0..self.tracks.len())
            .filter(|&i| self.tracks[i].missed == 0)
            .collect()
    }

    /// Marks a track that could not be followed as lost (out of sight, remembered a while).
    pub(super) fn lose(&mut self, index: usize) {
        let t = &mut self.tracks[index];
        t.missed = 1;
        t.smoother = None;
        self.lost_last_frame = true;
    }

    /// For each detected box, the visible track it continues: greedy by overlap with the tracks'
    /// last boxes, IoU ≥ [`MATCH_IOU`].
    pub(super) fn match_visible(&self, boxes: &[BBox]) -> Vec<Option<usize>> {
        let visible = self.visible_indices();
        let track_boxes: Vec<BBox> = visible.iter().map(|&i| self.tracks[i].bbox).collect();
        match_by_overlap(boxes, &track_boxes, MATCH_IOU)
            .into_iter()
            .map(|m| m.map(|k| visible[k]))
            .collect()
    }

    /// Whether this stream has run the detector since it started (or was reset).
    pub(super) fn has_detected(&self) -> bool {
        self.since_detection.is_some()
    }

    /// The faces of the frame a background detection starts on (as followed there, before
    /// smoothing), to judge its answer against: the same frame the detector sees.
    pub(super) fn snapshot(faces: &[Face]) -> Vec<TrackSnapshot> {
        faces
            .iter()
            .map(|f| TrackSnapshot {
                id: f.id,
                bbox: f.bbox,
                landmark_box: landmark_box(&f.landmarks),
            })
            .collect()
    }

    /// A detection was started in the background on this frame: the interval counts from here.
    pub(super) fn background_detection_started(&mut self) {
        self.since_detection = Some(0);
        self.lost_pending = false;
    }

    /// Applies the `detections` of a background detection on the frame of `snapshot`: the tracks
    /// of the snapshot it found take its box (as their relation to their landmarks then) and
    /// score; the tracks it missed are lost, as on a detection frame, if they are still visible.
    /// Returns the tracks it confirmed (to be stored as on a detection frame once followed on the
    /// current frame: their face-presence score there becomes their reference) and the
    /// detections that continue no track still followed and overlap no visible track now: the
    /// faces to bring forward (new faces, and faces whose track was lost since the snapshot: they
    /// get their id back by overlap).
    pub(super) fn apply_background_detection(
        &mut self,
        snapshot: &[TrackSnapshot],
        detections: &[Detection],
    ) -> BackgroundOutcome {
        let det_boxes: Vec<BBox> = detections.iter().map(|d| d.bbox).collect();
        let snap_boxes: Vec<BBox> = snapshot.iter().map(|t| t.bbox).collect();
        let matched = match_by_overlap(&det_boxes, &snap_boxes, MATCH_IOU);
        let mut found = vec![false; snapshot.len()];
        // Detections whose track is still followed; the others (no track then, or a track lost
        // since) are brought forward, which also brings a lost track back by overlap.
        let mut continued = vec![false; detections.len()];
        for (k, (d, m)) in detections.iter().zip(&matched).enumerate() {
            let Some(j) = *m else { continue };
            found[j] = true;
            let then = &snapshot[j];
            if let Some(t) = self
                .tracks
                .iter_mut()
                .find(|t| t.id == then.id && t.missed == 0)
            {
                if let Some(lbox) = then.landmark_box {
                    t.box_from_landmarks = relative_box(&d.bbox, &lbox);
                }
                t.score = d.score;
                continued[k] = true;
            }
        }
        for (then, found) in snapshot.iter().zip(found) {
            if found {
                continue;
            }
            if let Some(i) = self
                .tracks
                .iter()
                .position(|t| t.id == then.id && t.missed == 0)
            {
                self.lose(i);
            }
        }
        let confirmed = detections
            .iter()
            .zip(&matched)
            .zip(&continued)
            .filter(|(_, c)| **c)
            .filter_map(|((_, m), _)| m.map(|j| snapshot[j].id))
            .collect();
        let now: Vec<BBox> = self.visible().map(|t| t.bbox).collect();
        let fresh = detections
            .iter()
            .zip(&matched)
            .zip(continued)
            .filter(|((d, _), continued)| {
                !continued && now.iter().all(|b| b.iou(&d.bbox) < MATCH_IOU)
            })
            .map(|((d, m), _)| (*d, m.map(|j| snapshot[j].id)))
            .collect();
        BackgroundOutcome { confirmed, fresh }
    }

    /// Ends a frame with detection in the background: `joined` when a detection's faces joined
    /// on this frame.
    pub(super) fn finish_background_frame(&mut self, joined: bool) {
        self.detected = joined;
        self.lost_pending |= self.lost_last_frame;
    }

    /// Automatic mode: whether the next frame must run the detector now because no face is
    /// tracked or a face was lost (the cases of [`AUTO_EMPTY_INTERVAL`] and [`AUTO_LOST_GAP`]),
    /// judged by this tracker's own state: for a pipelined schedule, whose decisions are some
    /// frames old, so that a lost face is looked for as soon as in line.
    pub(super) fn detection_urgent(&self, config: &TrackConfig) -> bool {
        let Some(since) = self.since_detection else {
            return true;
        };
        let since = since + 1;
        config.detection_interval == 0
            && if self.visible().count() == 0 {
                since >= AUTO_EMPTY_INTERVAL
            } else {
                self.lost_pending && since >= AUTO_LOST_GAP
            }
    }

    /// Whether the next frame runs the detector, `since` frames after the last one that did
    /// (`None`: none yet), with searches for new faces every `search_interval` frames in
    /// automatic mode (see [`search_interval`]).
    pub(super) fn should_detect(
        &self,
        config: &TrackConfig,
        can_track: bool,
        max_faces: usize,
        since: Option<u32>,
        search_interval: u32,
    ) -> bool {
        let Some(since) = since else {
            return true;
        };
        let since = since + 1;
        match config.detection_interval {
            _ if !can_track => true,
            0 => {
                let visible = self.visible().count();
                if visible == 0 {
                    since >= AUTO_EMPTY_INTERVAL
                } else if self.lost_pending && since >= AUTO_LOST_GAP {
                    true
                } else if visible >= max_faces {
                    false
                } else {
                    since >= search_interval
                }
            }
            n => since >= n,
        }
    }

    /// Gives each face of a detection frame an id: greedy by overlap with the last boxes of the
    /// tracks not `taken` already (all when `taken` is empty), else a new id.
    pub(super) fn assign_ids(&mut self, faces: &mut [Face], taken: &[bool]) -> Vec<Option<usize>> {
        let free: Vec<usize> = (0..self.tracks.len())
            .filter(|&i| !taken.get(i).copied().unwrap_or(false))
            .collect();
        let boxes: Vec<BBox> = free.iter().map(|&i| self.tracks[i].bbox).collect();
        let face_boxes: Vec<BBox> = faces.iter().map(|f| f.bbox).collect();
        let face_track: Vec<Option<usize>> = match_by_overlap(&face_boxes, &boxes, MATCH_IOU)
            .into_iter()
            .map(|m| m.map(|k| free[k]))
            .collect();
        for (f, t) in faces.iter_mut().zip(&face_track) {
            f.id = match t {
                Some(ti) => self.tracks[*ti].id,
                None => {
                    let id = self.next_id;
                    self.next_id += 1;
                    id
                }
            };
        }
        face_track
    }

    /// Stores this frame's faces in their tracks, drops duplicates and old lost tracks, and
    /// smooths the reported faces with `strength` (0 = off, see [`TrackConfig::smoothing`]).
    /// `from_detector[i]`: face `i`'s box and score come from the detector on this frame (its
    /// track takes them as the new relation to its landmarks); `lose_unseen`: visible tracks with
    /// no face here are lost (a detection frame that missed them).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn update_tracks(
        &mut self,
        faces: &mut Vec<Face>,
        matched: &[Option<usize>],
        corrections: &[Option<MirrorCorrection>],
        from_detector: &[bool],
        lose_unseen: bool,
        dt: f32,
        strength: f32,
    ) {
        let mut seen = vec![false; self.tracks.len()];
        let mut fresh = Vec::new();
        for (fi, (face, m)) in faces.iter_mut().zip(matched).enumerate() {
            let lbox = landmark_box(&face.landmarks);
            let raw_landmarks = face.landmarks.clone();
            let raw_box = face.bbox;
            let track = match m {
                Some(ti) => {
                    seen[*ti] = true;
                    let t = &mut self.tracks[*ti];
                    t.missed = 0;
                    t
                }
                None => {
                    fresh.push(Track {
                        id: face.id,
                        landmarks: Vec::new(),
                        box_from_landmarks: [0.0, 0.0, 1.0, 1.0],
                        score: face.score,
                        bbox: face.bbox,
                        smoother: None,
                        missed: 0,
                        correction: None,
                        detected_presence: face.presence,
                        keypoints: face.keypoints,
                    });
                    fresh.last_mut().expect("just pushed")
                }
            };
            if from_detector.get(fi).copied().unwrap_or(false) {
                if let Some(lbox) = lbox {
                    track.box_from_landmarks = relative_box(&raw_box, &lbox);
                }
                track.score = face.score;
                track.detected_presence = face.presence;
            }
            track.landmarks = raw_landmarks;
            track.bbox = raw_box;
            track.keypoints = face.keypoints;
            track.correction = match (
                corrections.get(fi).and_then(|c| c.as_ref()),
                track.correction.take(),
            ) {
                (Some(c), _) => Some((c.clone(), 0)),
                (None, Some((c, age))) => Some((c, age + 1)),
                (None, None) => None,
            };
            if strength > 0.0 {
                match &mut track.smoother {
                    Some(s) => s.apply(face, dt, strength),
                    None => track.smoother = Some(FaceSmoother::new(face)),
                }
            }
        }
        for (t, seen) in self.tracks.iter_mut().zip(&seen) {
            if !seen && t.missed > 0 {
                t.missed += 1;
            } else if !seen && lose_unseen {
                // The detector did not find this face: remember it for a while, out of sight.
                t.missed = 1;
                t.smoother = None;
            }
        }
        self.tracks.extend(fresh);
        self.tracks.retain(|t| t.missed <= KEEP_LOST_FRAMES);

        // Two visible tracks on one face: keep the older id.
        let mut drop_ids = Vec::new();
        let visible: Vec<&Track> = self.visible().collect();
        for (i, a) in visible.iter().enumerate() {
            for b in &visible[i + 1..] {
                if a.bbox.iou(&b.bbox) > DUPLICATE_IOU {
                    drop_ids.push(a.id.max(b.id));
                }
            }
        }
        if !drop_ids.is_empty() {
            self.tracks.retain(|t| !drop_ids.contains(&t.id));
            faces.retain(|f| !drop_ids.contains(&f.id));
        }
    }
}

impl Track {
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// The last reported box.
    pub(super) fn bbox(&self) -> BBox {
        self.bbox
    }

    /// Unsmoothed landmarks of the last frame the face was seen.
    pub(super) fn landmarks(&self) -> &[[f32; 3]] {
        &self.landmarks
    }

    /// The last mirror correction, if one was measured.
    pub(super) fn correction(&self) -> Option<&MirrorCorrection> {
        self.correction.as_ref().map(|(c, _)| c)
    }

    /// Whether the mirror correction is missing or too old to reuse on the next frame.
    pub(super) fn correction_due(&self) -> bool {
        self.correction
            .as_ref()
            .is_none_or(|(_, age)| *age + 1 >= MIRROR_REFRESH_FRAMES)
    }

    /// Whether landmarks `l`, found on a crop from this track's landmarks, show another face: its
    /// key points' shape changed by more than [`JUMP_SHAPE`] of its size since the last frame,
    /// further than a face's own points move between two frames. A scene cut put another face
    /// where this one was and the crop followed it: that face needs a crop of its own, its own
    /// mirror correction and its own regressor estimate. Never for a landmark model without the
    /// key points (PFLD).
    pub(super) fn jumped_to(&self, l: &Landmarks) -> bool {
        let size = self.bbox.width().max(self.bbox.height());
        match (
            landmark_keypoints(&self.landmarks),
            landmark_keypoints(&l.points),
        ) {
            (Some(then), Some(now)) => {
                shape_change(&then, &now, size).is_some_and(|moved| moved > JUMP_SHAPE)
            }
            _ => false,
        }
    }

    /// The detection that landmarks `l`, found on a crop from this track's landmarks, stand for
    /// in a `width` × `height` frame: the box from the landmarks' box, the score of the last
    /// detection, key points from the landmarks. `None` when the track cannot be followed: no
    /// usable landmarks, a face-presence score below the floor (`threshold`, or half the score on
    /// the last detection frame when that is lower), or a box that jumps.
    pub(super) fn followed_detection(
        &self,
        l: &Landmarks,
        threshold: f32,
        width: f32,
        height: f32,
    ) -> Option<Detection> {
        let lbox = landmark_box(&l.points);
        // FaceMesh scores some real faces (blurred, occluded, turned away) near 0 from the
        // start; those are judged against their own level, and checked by the detector.
        let floor = threshold.min(0.5 * self.detected_presence);
        let plausible =
            lbox.is_some_and(|b| follows(&self.bbox, &absolute_box(&self.box_from_landmarks, &b)));
        let (Some(lbox), true) = (lbox, l.presence >= floor && plausible) else {
            return None;
        };
        Some(Detection {
            bbox: absolute_box(&self.box_from_landmarks, &lbox).clamp_to(width, height),
            score: self.score,
            keypoints: keypoints_from_landmarks(&l.points, &self.keypoints),
        })
    }
}

/// A face found by a background detection (`detection`, with `then` its landmarks on that frame)
/// brought to the current frame, where a landmark pass on a crop from `then` gave `now`: its box
/// keeps the detector's relation to the landmarks, its key points come from the new landmarks.
/// `None` when the new landmarks are no plausible next position (see [`follows`]).
pub(super) fn forward_detection(
    detection: &Detection,
    then: &[[f32; 3]],
    now: &Landmarks,
    width: f32,
    height: f32,
) -> Option<Detection> {
    let relation = relative_box(&detection.bbox, &landmark_box(then)?);
    let bbox = absolute_box(&relation, &landmark_box(&now.points)?);
    follows(&detection.bbox, &bbox).then(|| Detection {
        bbox: bbox.clamp_to(width, height),
        score: detection.score,
        keypoints: keypoints_from_landmarks(&now.points, &detection.keypoints),
    })
}

/// Automatic mode: frames between searches for new faces while `visible` faces are tracked, for
/// a detector whose input has `detector_pixels` pixels and a landmark model whose crop has
/// `landmark_pixels`: the detector's cost counted in landmark passes ([`DETECTOR_PIXEL_COST`]).
///
/// In line (`beside` `None`) the searches take about [`AUTO_SEARCH_SHARE`] of the work, within
/// [`AUTO_SEARCH_INTERVAL`]. With the detector on a core of its own while the streaming thread
/// tracks `beside` frames (pipelined: the frames held before the detection frame; `u32::MAX`
/// for the background detector, which nothing waits for), within
/// [`AUTO_PIPELINED_SEARCH_INTERVAL`]: no more often than that core keeps up with, and, where a
/// detection outlasts the tracking it overlaps, the streaming thread's wait for it takes about
/// [`AUTO_SEARCH_SHARE`] of the work, as in line. One face at 640×480 is thus searched for about
/// as often as in line (its tracking is too quick to hide a detection), a crowd far more often.
/// Sizes only, never a clock: the schedule is the same at any speed.
pub fn search_interval(
    detector_pixels: usize,
    landmark_pixels: usize,
    visible: usize,
    beside: Option<u32>,
) -> u32 {
    let passes = detector_pixels as f64 * DETECTOR_PIXEL_COST / landmark_pixels.max(1) as f64;
    let per_frame = visible.max(1) as f64;
    let share = |waited: f64| waited * (1.0 - AUTO_SEARCH_SHARE) / (AUTO_SEARCH_SHARE * per_frame);
    let (n, range) = match beside {
        None => (share(passes), AUTO_SEARCH_INTERVAL),
        Some(frames) => {
            let waited = (passes - frames as f64 * per_frame).max(0.0);
            (
                (passes / per_frame).max(share(waited)),
                AUTO_PIPELINED_SEARCH_INTERVAL,
            )
        }
    };
    (n.ceil() as u32).clamp(*range.start(), *range.end())
}

/// Whether a followed box is a plausible next position of `previous`: its size within a factor of
/// two and its centre within one face width.
fn follows(previous: &BBox, next: &BBox) -> bool {
    let ratio = next.area() / previous.area().max(1e-6);
    let (a, b) = (previous.centre(), next.centre());
    let shift = ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt();
    next.is_finite()
        && (0.25..=4.0).contains(&ratio)
        && shift <= previous.width().max(previous.height())
}

/// For each box of `a`, the index of the box of `b` it is paired with: greedy by overlap, best
/// first, IoU ≥ `min_iou`, each box used once.
pub(super) fn match_by_overlap(a: &[BBox], b: &[BBox], min_iou: f32) -> Vec<Option<usize>> {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            let iou = x.iou(y);
            if iou >= min_iou {
                pairs.push((iou, i, j));
            }
        }
    }
    pairs.sort_by(|p, q| q.0.total_cmp(&p.0));
    let mut out = vec![None; a.len()];
    let mut used = vec![false; b.len()];
    for (_, i, j) in pairs {
        if out[i].is_none() && !used[j] {
            out[i] = Some(j);
            used[j] = true;
        }
    }
    out
}

/// The landmarks' bounding box.
fn landmark_box(points: &[[f32; 3]]) -> Option<BBox> {
    BBox::enclosing(points.iter().map(|p| Point::new(p[0], p[1]))).filter(|b| b.area() > 0.0)
}

fn relative_box(bbox: &BBox, reference: &BBox) -> [f32; 4] {
    let (w, h) = (reference.width(), reference.height());
    [
        (bbox.x0 - reference.x0) / w,
        (bbox.y0 - reference.y0) / h,
        (bbox.x1 - reference.x0) / w,
        (bbox.y1 - reference.y0) / h,
    ]
}

fn absolute_box(rel: &[f32; 4], reference: &BBox) -> BBox {
    let (w, h) = (reference.width(), reference.height());
    BBox::new(
        reference.x0 + rel[0] * w,
        reference.y0 + rel[1] * h,
        reference.x0 + rel[2] * w,
        reference.y0 + rel[3] * h,
    )
}

/// The five key points from FaceMesh landmarks, or `previous` moved with the box.
fn keypoints_from_landmarks(points: &[[f32; 3]], previous: &[Point; 5]) -> [Point; 5] {
    landmark_keypoints(points).unwrap_or(*previous)
}

/// The detector's five key points as the landmarks place them (FaceMesh's 468 points); `None`
/// for a landmark model without that mapping.
pub(super) fn landmark_keypoints(points: &[[f32; 3]]) -> Option<[Point; 5]> {
    let p = |i: usize| Point::new(points[i][0], points[i][1]);
    let mid = |[a, b]: [usize; 2]| {
        let (pa, pb) = (p(a), p(b));
        Point::new((pa.x + pb.x) * 0.5, (pa.y + pb.y) * 0.5)
    };
    (points.len() == 468).then(|| {
        [
            mid(FACEMESH_EYES[0]),
            mid(FACEMESH_EYES[1]),
            p(FACEMESH_NOSE_TIP),
            p(FACEMESH_MOUTH[0]),
            p(FACEMESH_MOUTH[1]),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_round_trip_through_landmark_relative_form() {
        let lbox = BBox::new(100.0, 50.0, 200.0, 170.0);
        let det = BBox::new(90.0, 30.0, 210.0, 180.0);
        let rel = relative_box(&det, &lbox);
        let back = absolute_box(&rel, &lbox);
        for (a, b) in [
            (back.x0, det.x0),
            (back.y0, det.y0),
            (back.x1, det.x1),
            (back.y1, det.y1),
        ] {
            assert!((a - b).abs() < 1e-3, "{back:?} vs {det:?}");
        }
        // The same relative box follows the landmarks when they move and grow.
        let moved = absolute_box(&rel, &BBox::new(300.0, 50.0, 500.0, 290.0));
        assert!((moved.x0 - 280.0).abs() < 1e-3 && (moved.y1 - 310.0).abs() < 1e-3);
    }

    #[test]
    fn followed_boxes_may_not_jump_or_change_size_wildly() {
        let b = BBox::new(100.0, 100.0, 200.0, 220.0);
        assert!(follows(&b, &BBox::new(110.0, 95.0, 215.0, 230.0)));
        assert!(!follows(&b, &BBox::new(400.0, 100.0, 500.0, 220.0)), "jump");
        assert!(
            !follows(&b, &BBox::new(100.0, 100.0, 130.0, 130.0)),
            "shrink"
        );
        assert!(!follows(&b, &BBox::new(0.0, 0.0, 400.0, 400.0)), "growth");
        assert!(!follows(&b, &BBox::new(f32::NAN, 0.0, 1.0, 1.0)));
    }

    #[test]
    fn detection_schedule_follows_the_interval() {
        let can_track = true;
        const SEARCH: u32 = 12;
        let mut t = Tracker::default();
        let every = |n| TrackConfig {
            detection_interval: n,
            ..TrackConfig::default()
        };
        assert!(
            t.should_detect(&every(5), can_track, 16, t.since_detection, SEARCH),
            "first frame"
        );
        t.since_detection = Some(0);
        assert!(!t.should_detect(&every(5), can_track, 16, t.since_detection, SEARCH));
        t.since_detection = Some(4);
        assert!(t.should_detect(&every(5), can_track, 16, t.since_detection, SEARCH));
        t.since_detection = Some(0);
        assert!(t.should_detect(&every(1), can_track, 16, t.since_detection, SEARCH));
        assert!(
            t.should_detect(&every(5), false, 16, t.since_detection, SEARCH),
            "no presence score: always"
        );
        // Automatic without a visible track: every third frame.
        assert!(!t.should_detect(&every(0), can_track, 16, t.since_detection, SEARCH));
        t.since_detection = Some(2);
        assert!(t.should_detect(&every(0), can_track, 16, t.since_detection, SEARCH));

        // Automatic with a track: searches spaced by cost, losses soon after.
        t.tracks.push(Track {
            id: 0,
            landmarks: Vec::new(),
            box_from_landmarks: [0.0, 0.0, 1.0, 1.0],
            score: 1.0,
            bbox: BBox::new(0.0, 0.0, 10.0, 10.0),
            keypoints: [Point::new(0.0, 0.0); 5],
            smoother: None,
            missed: 0,
            correction: None,
            detected_presence: 1.0,
        });
        let n = search_interval(640 * 480, 192 * 192, 1, None);
        assert_eq!(
            n, 60,
            "a 640×480 detector input against one 192×192 crop, in line"
        );
        let n = search_interval(640 * 480, 192 * 192, 1, Some(8));
        assert_eq!(n, 60, "one face, pipelined: too quick to hide a detection");
        let n = search_interval(640 * 480, 192 * 192, 1, Some(u32::MAX));
        assert_eq!(
            n, 25,
            "one face, in the background: as often as its core keeps up"
        );
        let n = search_interval(640 * 384, 192 * 192, 6, Some(8));
        assert!((2..10).contains(&n), "six faces, pipelined: {n}");
        assert_eq!(
            search_interval(32 * 32, 192 * 192, 4, Some(8)),
            2,
            "the least"
        );
        let n = SEARCH;
        t.since_detection = Some(n - 2);
        assert!(!t.should_detect(&every(0), can_track, 16, t.since_detection, SEARCH));
        t.since_detection = Some(n - 1);
        assert!(t.should_detect(&every(0), can_track, 16, t.since_detection, SEARCH));
        assert!(
            !t.should_detect(&every(0), can_track, 1, t.since_detection, SEARCH),
            "max faces tracked"
        );
        t.since_detection = Some(1);
        t.lost_pending = true;
        assert!(!t.should_detect(&every(0), can_track, 16, t.since_detection, SEARCH));
        t.since_detection = Some(2);
        assert!(
            t.should_detect(&every(0), can_track, 16, t.since_detection, SEARCH),
            "a lost face"
        );
    }

    #[test]
    fn ids_follow_overlap_and_new_faces_get_new_ids() {
        let mut tracker = Tracker {
            next_id: 7,
            ..Tracker::default()
        };
        let track = |id, x: f32| Track {
            id,
            landmarks: Vec::new(),
            box_from_landmarks: [0.0, 0.0, 1.0, 1.0],
            score: 1.0,
            bbox: BBox::new(x, 0.0, x + 100.0, 100.0),
            smoother: None,
            missed: 0,
            correction: None,
            detected_presence: 1.0,
            keypoints: [Point::new(0.0, 0.0); 5],
        };
        tracker.tracks = vec![track(3, 0.0), track(5, 300.0)];
        let face = |x: f32| Face {
            id: 0,
            bbox: BBox::new(x, 0.0, x + 100.0, 100.0),
            score: 1.0,
            keypoints: [Point::new(0.0, 0.0); 5],
            landmarks: Vec::new(),
            presence: 1.0,
            pose: Default::default(),
            rotation: Default::default(),
            scale: 1.0,
            fit_error: 0.0,
            attention: None,
            method: crate::engine::PoseMethod::Rigid,
            fit_pose: None,
            regressed_pose: None,
            regressor_weight: 0.0,
        };
        let mut faces = vec![face(310.0), face(700.0), face(5.0)];
        let matched = tracker.assign_ids(&mut faces, &[]);
        assert_eq!(
            faces.iter().map(|f| f.id).collect::<Vec<_>>(),
            [5, 7, 3],
            "{matched:?}"
        );
        assert_eq!(tracker.next_id, 8);
    }
}
