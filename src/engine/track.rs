// SPDX-License-Identifier: MPL-2.0
//! Video: stable face ids, a detection interval, landmark-driven re-cropping and smoothing.
//!
//! [`Engine::track`] processes frames of one stream in order. On a detection frame it runs the same
//! path as [`Engine::process`] (detector, landmark passes, pose) and gives each face the id of the
//! track whose last box overlaps it most (intersection over union ≥ [`MATCH_IOU`]), or a new id.
//! Between detection frames each track's crop comes from its own previous landmarks and one
//! landmark pass runs for all tracks in one batch; a face-presence score below
//! [`TrackConfig::presence_threshold`] (or below half the track's score on its last detection
//! frame, when that is lower: FaceMesh scores some blurred, occluded or turned faces near 0) or
//! a box that jumps or changes size more than twofold drops the track. Dropped and unmatched tracks are kept out
//! of sight for [`KEEP_LOST_FRAMES`] frames so that a face the detector misses once keeps its id.
//!
//! The detection interval: 1 runs the detector on every frame (the faces are exactly those of
//! [`Engine::process`], plus ids); N > 1 every N-th frame; 0 (automatic): every
//! [`AUTO_EMPTY_INTERVAL`] frames while no face is tracked, [`AUTO_LOST_GAP`] frames after the last
//! detection when a face was lost, never while `max_faces` faces are tracked, and otherwise every
//! 10 to 60 frames ([`AUTO_SEARCH_INTERVAL`]) to find new faces: as often as keeps detection
//! frames to about a fifth of the time, from the measured cost of both kinds of frame. Landmark
//! models without a presence score (PFLD) cannot track: every frame is a detection frame for them.

use super::detect::Detection;
use super::face::Face;
use super::geometry::{BBox, Point};
use super::image::ImageView;
use super::smooth::{DEFAULT_FRAME_SECONDS, FaceSmoother};
use super::{Engine, MirrorCorrection, Result, StageTimes, apply_mirror_correction};
use std::time::Instant;

/// Automatic mode: detection frames when no face is tracked.
pub const AUTO_EMPTY_INTERVAL: u32 = 3;
/// Automatic mode: the fewest frames between a detection and one for a lost face.
pub const AUTO_LOST_GAP: u32 = 3;
/// Automatic mode: the bounds of the interval of searches for new faces.
pub const AUTO_SEARCH_INTERVAL: std::ops::RangeInclusive<u32> = 10..=60;
/// Automatic mode: the share of the time that searches for new faces may take.
pub const AUTO_SEARCH_SHARE: f64 = 0.2;
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

/// Faces of a frame, the track each continues (`None`: a new track), and their new mirror
/// corrections.
type Followed = (Vec<Face>, Vec<Option<usize>>, Vec<Option<MirrorCorrection>>);
/// Followed faces, their new mirror corrections, and the tracks that could not be followed.
type FollowResult = (Vec<Face>, Vec<Option<MirrorCorrection>>, Vec<usize>);

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
            return Err(super::Error::Config(format!(
                "presence threshold {} is outside 0..=1",
                self.presence_threshold
            )));
        }
        if !(0.0..=1.0).contains(&self.smoothing) {
            return Err(super::Error::Config(format!(
                "smoothing {} is outside 0..=1",
                self.smoothing
            )));
        }
        Ok(())
    }
}

/// One followed face.
#[derive(Debug, Clone)]
struct Track {
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

/// Every track of one stream and when the detector last ran.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    tracks: Vec<Track>,
    next_id: u64,
    since_detection: Option<u32>,
    lost_last_frame: bool,
    /// A track was lost since the last detection frame.
    lost_pending: bool,
    /// Running means of a detection frame's and a tracking frame's cost, milliseconds.
    detect_ms: Option<f64>,
    follow_ms: Option<f64>,
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

    fn should_detect(&self, config: &TrackConfig, can_track: bool, max_faces: usize) -> bool {
        let Some(since) = self.since_detection else {
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
                    since >= self.search_interval()
                }
            }
            n => since >= n,
        }
    }

    /// Automatic mode: frames between searches for new faces, so that detection frames take about
    /// [`AUTO_SEARCH_SHARE`] of the time, within [`AUTO_SEARCH_INTERVAL`].
    pub fn search_interval(&self) -> u32 {
        let (lo, hi) = (*AUTO_SEARCH_INTERVAL.start(), *AUTO_SEARCH_INTERVAL.end());
        match (self.detect_ms, self.follow_ms) {
            (Some(d), Some(f)) if f > 0.0 => {
                let n = (d * (1.0 - AUTO_SEARCH_SHARE) / (AUTO_SEARCH_SHARE * f)).ceil();
                (n.clamp(lo as f64, hi as f64)) as u32
            }
            _ => lo,
        }
    }

    /// Folds a frame's cost into the running means.
    fn record_cost(&mut self, detected: bool, ms: f64) {
        let slot = if detected {
            &mut self.detect_ms
        } else {
            &mut self.follow_ms
        };
        *slot = Some(match *slot {
            Some(m) => m + 0.1 * (ms - m),
            None => ms,
        });
    }

    /// Gives each face of a detection frame an id: greedy by overlap with the last boxes of the
    /// tracks not `taken` already (all when `taken` is empty), else a new id.
    fn assign_ids(&mut self, faces: &mut [Face], taken: &[bool]) -> Vec<Option<usize>> {
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
fn match_by_overlap(a: &[BBox], b: &[BBox], min_iou: f32) -> Vec<Option<usize>> {
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
    let p = |i: usize| Point::new(points[i][0], points[i][1]);
    let mid = |[a, b]: [usize; 2]| {
        let (pa, pb) = (p(a), p(b));
        Point::new((pa.x + pb.x) * 0.5, (pa.y + pb.y) * 0.5)
    };
    if points.len() == 468 {
        [
            mid(FACEMESH_EYES[0]),
            mid(FACEMESH_EYES[1]),
            p(FACEMESH_NOSE_TIP),
            p(FACEMESH_MOUTH[0]),
            p(FACEMESH_MOUTH[1]),
        ]
    } else {
        *previous
    }
}

impl Engine {
    /// Tracking settings take effect on the next frame.
    pub fn set_track_config(&mut self, track: TrackConfig) -> Result<()> {
        track.validate()?;
        self.track_config = track;
        Ok(())
    }

    pub fn track_config(&self) -> TrackConfig {
        self.track_config
    }

    /// Forgets every track (call after a seek or a flush, or between streams).
    pub fn reset_tracking(&mut self) {
        self.tracker.reset();
    }

    /// Whether the last [`Engine::track`] call ran the detector.
    pub fn last_frame_detected(&self) -> bool {
        self.tracker.detected
    }

    /// The faces of the next frame of a video stream, with stable ids. `time` is the frame's
    /// timestamp in seconds (used for smoothing; `None` assumes 30 frames per second).
    pub fn track(&mut self, image: &ImageView, time: Option<f64>) -> Result<Vec<Face>> {
        let config = self.track_config;
        let can_track = self.landmarker.refines();
        let dt = match (time, self.tracker.last_time) {
            (Some(now), Some(before)) if now > before => now - before,
            (Some(_), Some(_)) => {
                // Time went backwards (a seek without a flush): start the filters afresh.
                for t in &mut self.tracker.tracks {
                    t.smoother = None;
                }
                DEFAULT_FRAME_SECONDS
            }
            _ => DEFAULT_FRAME_SECONDS,
        };
        self.tracker.last_time = time.or(self.tracker.last_time.map(|t| t + dt));

        let detect = self
            .tracker
            .should_detect(&config, can_track, self.config.detect.max_faces);
        self.tracker.lost_last_frame = false;
        let started = Instant::now();
        let (mut faces, matched, corrections) = if !detect {
            self.tracker.since_detection = self.tracker.since_detection.map(|s| s + 1);
            self.follow_all(image)?
        } else if config.detection_interval == 1 || !can_track {
            self.tracker.since_detection = Some(0);
            let mut faces = self.process(image)?;
            let corrections = std::mem::take(&mut self.last_corrections);
            let matched = self.tracker.assign_ids(&mut faces, &[]);
            let corrections = (0..faces.len())
                .map(|i| corrections.get(i).cloned())
                .collect();
            (faces, matched, corrections)
        } else {
            self.tracker.since_detection = Some(0);
            self.detect_and_follow(image)?
        };
        self.tracker.detected = detect;
        if detect {
            self.tracker.lost_pending = false;
        }
        self.tracker.lost_pending |= self.tracker.lost_last_frame;
        self.tracker
            .record_cost(detect, started.elapsed().as_secs_f64() * 1e3);

        let t0 = Instant::now();
        self.update_tracks(&mut faces, &matched, &corrections, detect, dt as f32);
        self.times.pose += t0.elapsed().as_secs_f64() * 1e3;
        Ok(faces)
    }

    /// A tracking frame: every visible track followed by its landmarks; tracks that fail are
    /// marked lost.
    fn follow_all(&mut self, image: &ImageView) -> Result<Followed> {
        let t0 = Instant::now();
        let visible: Vec<usize> = (0..self.tracker.tracks.len())
            .filter(|&i| self.tracker.tracks[i].missed == 0)
            .collect();
        let (faces, corrections, failed) = self.follow(image, &visible)?;
        for ti in failed {
            let t = &mut self.tracker.tracks[ti];
            t.missed = 1;
            t.smoother = None;
            self.tracker.lost_last_frame = true;
        }
        let matched = faces
            .iter()
            .map(|f| self.tracker.tracks.iter().position(|t| t.id == f.id))
            .collect();
        self.times = StageTimes {
            detect: 0.0,
            landmarks: t0.elapsed().as_secs_f64() * 1e3,
            pose: 0.0,
        };
        Ok((faces, matched, corrections))
    }

    /// A detection frame while tracking: faces the detector finds where a track is are followed
    /// by their landmarks (one pass, with the detector's fresh box); the others (new faces, and
    /// tracks that fail to follow) go through the full still-picture passes and get ids by
    /// overlap, which also brings back remembered lost tracks.
    fn detect_and_follow(&mut self, image: &ImageView) -> Result<Followed> {
        let t0 = Instant::now();
        let detections = self.detector.detect(image, &self.config.detect)?;
        let t1 = Instant::now();
        let visible: Vec<usize> = (0..self.tracker.tracks.len())
            .filter(|&i| self.tracker.tracks[i].missed == 0)
            .collect();
        let boxes: Vec<BBox> = visible
            .iter()
            .map(|&i| self.tracker.tracks[i].bbox)
            .collect();
        let det_boxes: Vec<BBox> = detections.iter().map(|d| d.bbox).collect();
        let det_track: Vec<Option<usize>> = match_by_overlap(&det_boxes, &boxes, MATCH_IOU)
            .into_iter()
            .map(|m| m.map(|k| visible[k]))
            .collect();
        let to_follow: Vec<usize> = det_track.iter().flatten().copied().collect();
        let (mut followed, mut corrections, failed) = self.follow(image, &to_follow)?;
        let mut matched = Vec::with_capacity(detections.len());
        let mut taken = vec![false; self.tracker.tracks.len()];
        for face in &mut followed {
            let ti = self
                .tracker
                .tracks
                .iter()
                .position(|t| t.id == face.id)
                .expect("followed faces come from tracks");
            let di = det_track
                .iter()
                .position(|m| *m == Some(ti))
                .expect("followed tracks were matched");
            let d = &detections[di];
            face.bbox = d.bbox;
            face.score = d.score;
            face.keypoints = d.keypoints;
            taken[ti] = true;
            matched.push(Some(ti));
        }
        let fresh: Vec<&Detection> = detections
            .iter()
            .zip(&det_track)
            .filter(|(_, m)| m.is_none_or(|ti| failed.contains(&ti)))
            .map(|(d, _)| d)
            .collect();
        let crops = fresh
            .iter()
            .map(|d| self.landmarker.crop_from_detection(d))
            .collect();
        let (landmarks, fresh_corrections) =
            self.landmark_passes(image, crops, self.config.refine_passes, true)?;
        let t2 = Instant::now();
        let mut new_faces: Vec<Face> = fresh
            .iter()
            .zip(landmarks)
            .map(|(d, l)| self.solve(d, l))
            .collect();
        matched.extend(self.tracker.assign_ids(&mut new_faces, &taken));
        corrections.extend((0..new_faces.len()).map(|i| fresh_corrections.get(i).cloned()));
        followed.extend(new_faces);
        self.times = StageTimes {
            detect: (t1 - t0).as_secs_f64() * 1e3,
            landmarks: (t2 - t1).as_secs_f64() * 1e3,
            pose: t2.elapsed().as_secs_f64() * 1e3,
        };
        Ok((followed, matched, corrections))
    }

    /// One landmark pass for the tracks `which`, each cropped from its previous landmarks and
    /// corrected by its mirror correction (or with a mirror pass for all when a correction is
    /// missing or old). Returns the faces (with the tracks' ids), their new mirror corrections
    /// (`None` where none was measured) and the tracks that could not be followed: no usable
    /// landmarks, a face-presence score below the floor, or a box that jumps.
    fn follow(&mut self, image: &ImageView, which: &[usize]) -> Result<FollowResult> {
        let mut visible = Vec::new();
        let mut crops = Vec::new();
        let mut failed = Vec::new();
        for &i in which {
            match self
                .landmarker
                .crop_from_landmarks(&self.tracker.tracks[i].landmarks)
            {
                Some(crop) => {
                    visible.push(i);
                    crops.push(crop);
                }
                None => failed.push(i),
            }
        }
        let refresh = self.mirror_enabled()
            && visible.iter().any(|&i| {
                self.tracker.tracks[i]
                    .correction
                    .as_ref()
                    .is_none_or(|(_, age)| *age + 1 >= MIRROR_REFRESH_FRAMES)
            });
        let (mut landmarks, corrections) = self.landmark_passes(image, crops, 0, refresh)?;
        if !refresh && self.mirror_enabled() {
            let size = self.landmarker.input_size() as f32;
            for (l, &ti) in landmarks.iter_mut().zip(&visible) {
                if let Some((c, _)) = &self.tracker.tracks[ti].correction {
                    apply_mirror_correction(l, c, size);
                }
            }
        }
        let threshold = self.track_config.presence_threshold;
        let mut faces = Vec::with_capacity(landmarks.len());
        let mut kept_corrections = Vec::with_capacity(landmarks.len());
        for (k, (&ti, l)) in visible.iter().zip(landmarks).enumerate() {
            let track = &self.tracker.tracks[ti];
            let lbox = landmark_box(&l.points);
            // FaceMesh scores some real faces (blurred, occluded, turned away) near 0 from the
            // start; those are judged against their own level, and checked by the detector.
            let floor = threshold.min(0.5 * track.detected_presence);
            let plausible = lbox.is_some_and(|b| {
                follows(&track.bbox, &absolute_box(&track.box_from_landmarks, &b))
            });
            let (Some(lbox), true) = (lbox, l.presence >= floor && plausible) else {
                failed.push(ti);
                continue;
            };
            let detection = Detection {
                bbox: absolute_box(&track.box_from_landmarks, &lbox)
                    .clamp_to(image.width() as f32, image.height() as f32),
                score: track.score,
                keypoints: keypoints_from_landmarks(&l.points, &track.keypoints),
            };
            let mut face = self.solve(&detection, l);
            face.id = track.id;
            faces.push(face);
            kept_corrections.push(corrections.get(k).cloned());
        }
        Ok((faces, kept_corrections, failed))
    }

    /// Stores this frame's faces in their tracks, drops duplicates and old lost tracks, and
    /// smooths the reported faces.
    fn update_tracks(
        &mut self,
        faces: &mut Vec<Face>,
        matched: &[Option<usize>],
        corrections: &[Option<MirrorCorrection>],
        detect: bool,
        dt: f32,
    ) {
        let strength = self.track_config.smoothing;
        let tracker = &mut self.tracker;
        let mut seen = vec![false; tracker.tracks.len()];
        let mut fresh = Vec::new();
        for (fi, (face, m)) in faces.iter_mut().zip(matched).enumerate() {
            let lbox = landmark_box(&face.landmarks);
            let raw_landmarks = face.landmarks.clone();
            let raw_box = face.bbox;
            let track = match m {
                Some(ti) => {
                    seen[*ti] = true;
                    let t = &mut tracker.tracks[*ti];
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
            if detect {
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
        for (t, seen) in tracker.tracks.iter_mut().zip(&seen) {
            if !seen && t.missed > 0 {
                t.missed += 1;
            } else if !seen && detect {
                // The detector did not find this face: remember it for a while, out of sight.
                t.missed = 1;
                t.smoother = None;
            }
        }
        tracker.tracks.extend(fresh);
        tracker.tracks.retain(|t| t.missed <= KEEP_LOST_FRAMES);

        // Two visible tracks on one face: keep the older id.
        let mut drop_ids = Vec::new();
        let visible: Vec<&Track> = tracker.visible().collect();
        for (i, a) in visible.iter().enumerate() {
            for b in &visible[i + 1..] {
                if a.bbox.iou(&b.bbox) > DUPLICATE_IOU {
                    drop_ids.push(a.id.max(b.id));
                }
            }
        }
        if !drop_ids.is_empty() {
            tracker.tracks.retain(|t| !drop_ids.contains(&t.id));
            faces.retain(|f| !drop_ids.contains(&f.id));
        }
    }
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
        let mut t = Tracker::default();
        let every = |n| TrackConfig {
            detection_interval: n,
            ..TrackConfig::default()
        };
        assert!(t.should_detect(&every(5), can_track, 16), "first frame");
        t.since_detection = Some(0);
        assert!(!t.should_detect(&every(5), can_track, 16));
        t.since_detection = Some(4);
        assert!(t.should_detect(&every(5), can_track, 16));
        t.since_detection = Some(0);
        assert!(t.should_detect(&every(1), can_track, 16));
        assert!(
            t.should_detect(&every(5), false, 16),
            "no presence score: always"
        );
        // Automatic without a visible track: every third frame.
        assert!(!t.should_detect(&every(0), can_track, 16));
        t.since_detection = Some(2);
        assert!(t.should_detect(&every(0), can_track, 16));

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
        assert_eq!(t.search_interval(), 10, "before any measurement");
        t.record_cost(true, 80.0);
        t.record_cost(false, 5.0);
        assert_eq!(t.search_interval(), 60, "80 ms detections vs 5 ms frames");
        t.record_cost(true, 10.0);
        t.record_cost(true, 10.0);
        let n = t.search_interval();
        assert!((10..60).contains(&n), "{n}");
        t.since_detection = Some(n - 2);
        assert!(!t.should_detect(&every(0), can_track, 16));
        t.since_detection = Some(n - 1);
        assert!(t.should_detect(&every(0), can_track, 16));
        assert!(
            !t.should_detect(&every(0), can_track, 1),
            "max faces tracked"
        );
        t.since_detection = Some(1);
        t.lost_pending = true;
        assert!(!t.should_detect(&every(0), can_track, 16));
        t.since_detection = Some(2);
        assert!(t.should_detect(&every(0), can_track, 16), "a lost face");
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
