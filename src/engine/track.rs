// SPDX-License-Identifier: MPL-2.0
//! Video: stable face ids, a detection interval, landmark-driven re-cropping and smoothing.
//!
//! [`Engine::track`] processes frames of one stream in order. On a detection frame it runs the same
//! path as [`Engine::process`] (detector, landmark passes, pose) and gives each face the id of the
//! track whose last box overlaps it most (intersection over union ≥ [`MATCH_IOU`]), or a new id.
//! Between detection frames each track's crop comes from its own previous landmarks and one
//! landmark pass runs for all tracks in one batch; a face-presence score below
//! [`TrackConfig::presence_threshold`] drops the track. Dropped and unmatched tracks are kept out
//! of sight for [`KEEP_LOST_FRAMES`] frames so that a face the detector misses once keeps its id.
//!
//! The detection interval: 1 runs the detector on every frame (the faces are exactly those of
//! [`Engine::process`], plus ids); N > 1 every N-th frame; 0 (automatic) when there is no track,
//! right after a track was lost, and otherwise every [`AUTO_INTERVAL`] frames so that new faces are
//! found. Landmark models without a presence score (PFLD) cannot track: every frame is a
//! detection frame for them.

use super::detect::Detection;
use super::face::Face;
use super::geometry::{BBox, Point};
use super::image::ImageView;
use super::smooth::{DEFAULT_FRAME_SECONDS, FaceSmoother};
use super::{Engine, MirrorCorrection, Result, StageTimes, apply_mirror_correction};
use std::time::Instant;

/// Automatic mode: the longest run of frames without detection.
pub const AUTO_INTERVAL: u32 = 10;
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
    smoother: Option<FaceSmoother>,
    /// Frames since the face was last seen; 0 for a visible track.
    missed: u32,
    /// The last mirror correction and the frames since it was measured.
    correction: Option<(MirrorCorrection, u32)>,
}

/// Every track of one stream and when the detector last ran.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    tracks: Vec<Track>,
    next_id: u64,
    since_detection: Option<u32>,
    lost_last_frame: bool,
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

    fn should_detect(&self, config: &TrackConfig, can_track: bool) -> bool {
        let Some(since) = self.since_detection else {
            return true;
        };
        let since = since + 1;
        match config.detection_interval {
            _ if !can_track => true,
            0 => self.visible().next().is_none() || self.lost_last_frame || since >= AUTO_INTERVAL,
            n => since >= n,
        }
    }

    /// Gives each face of a detection frame an id: greedy by overlap with the tracks' last boxes.
    fn assign_ids(&mut self, faces: &mut [Face]) -> Vec<Option<usize>> {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (fi, f) in faces.iter().enumerate() {
            for (ti, t) in self.tracks.iter().enumerate() {
                let iou = f.bbox.iou(&t.bbox);
                if iou >= MATCH_IOU {
                    pairs.push((iou, fi, ti));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut face_track = vec![None; faces.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, fi, ti) in pairs {
            if face_track[fi].is_none() && !taken[ti] {
                face_track[fi] = Some(ti);
                taken[ti] = true;
            }
        }
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

        let detect = self.tracker.should_detect(&config, can_track);
        let (mut faces, corrections) = if detect {
            let faces = self.process(image)?;
            self.tracker.since_detection = Some(0);
            (faces, std::mem::take(&mut self.last_corrections))
        } else {
            self.tracker.since_detection = self.tracker.since_detection.map(|s| s + 1);
            self.follow(image)?
        };
        self.tracker.detected = detect;
        self.tracker.lost_last_frame = false;

        let t0 = Instant::now();
        let matched: Vec<Option<usize>> = if detect {
            self.tracker.assign_ids(&mut faces)
        } else {
            // `follow` returns faces in the order of the visible tracks it kept.
            faces
                .iter()
                .map(|f| self.tracker.tracks.iter().position(|t| t.id == f.id))
                .collect()
        };
        self.update_tracks(&mut faces, &matched, &corrections, detect, dt as f32);
        self.times.pose += t0.elapsed().as_secs_f64() * 1e3;
        Ok(faces)
    }

    /// One landmark pass for every visible track, cropped from its previous landmarks, corrected
    /// by the track's mirror correction (or with a mirror pass for all when a correction is
    /// missing or old; those corrections are returned). Tracks whose face-presence score falls
    /// below the threshold are marked lost.
    fn follow(&mut self, image: &ImageView) -> Result<(Vec<Face>, Vec<MirrorCorrection>)> {
        let t0 = Instant::now();
        let mut visible = Vec::new();
        let mut crops = Vec::new();
        for (i, t) in self.tracker.tracks.iter_mut().enumerate() {
            if t.missed > 0 {
                continue;
            }
            match self.landmarker.crop_from_landmarks(&t.landmarks) {
                Some(crop) => {
                    visible.push(i);
                    crops.push(crop);
                }
                None => {
                    // No usable landmarks to crop from: lost; the detector takes over.
                    t.missed = 1;
                    self.tracker.lost_last_frame = true;
                }
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
        let mut kept_corrections = Vec::new();
        let t1 = Instant::now();
        let threshold = self.track_config.presence_threshold;
        let mut faces = Vec::with_capacity(landmarks.len());
        let mut lost = false;
        for (k, (&ti, l)) in visible.iter().zip(landmarks).enumerate() {
            let track = &self.tracker.tracks[ti];
            let lbox = landmark_box(&l.points);
            let (Some(lbox), true) = (lbox, l.presence >= threshold) else {
                lost = true;
                continue;
            };
            let previous = Detection {
                bbox: track.bbox,
                score: track.score,
                keypoints: [Point::new(0.0, 0.0); 5],
            };
            let detection = Detection {
                bbox: absolute_box(&track.box_from_landmarks, &lbox)
                    .clamp_to(image.width() as f32, image.height() as f32),
                score: track.score,
                keypoints: keypoints_from_landmarks(&l.points, &previous.keypoints),
            };
            let mut face = self.solve(&detection, l);
            face.id = track.id;
            faces.push(face);
            if let Some(c) = corrections.get(k) {
                kept_corrections.push(c.clone());
            }
        }
        // Tracks not in `faces` were lost this frame.
        let kept: Vec<u64> = faces.iter().map(|f| f.id).collect();
        for &ti in &visible {
            let t = &mut self.tracker.tracks[ti];
            if !kept.contains(&t.id) {
                t.missed = 1;
                t.smoother = None;
                lost = true;
            }
        }
        self.tracker.lost_last_frame |= lost;
        self.times = StageTimes {
            detect: 0.0,
            landmarks: (t1 - t0).as_secs_f64() * 1e3,
            pose: t1.elapsed().as_secs_f64() * 1e3,
        };
        Ok((faces, kept_corrections))
    }

    /// Stores this frame's faces in their tracks, drops duplicates and old lost tracks, and
    /// smooths the reported faces.
    fn update_tracks(
        &mut self,
        faces: &mut Vec<Face>,
        matched: &[Option<usize>],
        corrections: &[MirrorCorrection],
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
                    });
                    fresh.last_mut().expect("just pushed")
                }
            };
            if detect {
                if let Some(lbox) = lbox {
                    track.box_from_landmarks = relative_box(&raw_box, &lbox);
                }
                track.score = face.score;
            }
            track.landmarks = raw_landmarks;
            track.bbox = raw_box;
            track.correction = match (corrections.get(fi), track.correction.take()) {
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
    fn detection_schedule_follows_the_interval() {
        let can_track = true;
        let mut t = Tracker::default();
        let every = |n| TrackConfig {
            detection_interval: n,
            ..TrackConfig::default()
        };
        assert!(t.should_detect(&every(5), can_track), "first frame");
        t.since_detection = Some(0);
        assert!(!t.should_detect(&every(5), can_track));
        t.since_detection = Some(4);
        assert!(t.should_detect(&every(5), can_track));
        t.since_detection = Some(0);
        assert!(t.should_detect(&every(1), can_track));
        assert!(
            t.should_detect(&every(5), false),
            "no presence score: always"
        );
        // Automatic: without a visible track, every frame.
        assert!(t.should_detect(&every(0), can_track));
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
        let matched = tracker.assign_ids(&mut faces);
        assert_eq!(
            faces.iter().map(|f| f.id).collect::<Vec<_>>(),
            [5, 7, 3],
            "{matched:?}"
        );
        assert_eq!(tracker.next_id, 8);
    }
}
