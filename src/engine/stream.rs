// SPDX-License-Identifier: MPL-2.0
//! Video: the engine across the frames of one stream.
//!
//! [`Engine::track`] processes frames of one stream in order, asking the engine's
//! [`Tracker`](super::track::Tracker) what to do (see [`super::track`] for the policy): on a
//! tracking frame every visible track is followed by one landmark pass on a crop from its own
//! landmarks (`follow_all`); on a detection frame with the detector on every frame, or
//! with a landmark model that cannot track, it runs [`Engine::process`] and gives ids by overlap;
//! on other detection frames the faces the detector finds where a track is are followed, the
//! others go through the still-picture path (`detect_and_follow`). The tracker then
//! stores the faces in their tracks and smooths them.

use std::time::Instant;

use super::detect::DetectConfig;
use super::detect::Detection;
use super::detect::background::BackgroundDetector;
use super::estimate::Past;
use super::face::Face;
use super::geometry::BBox;
use super::image::{ImageView, OwnedImage};
use super::landmark::Landmarks;
use super::mirror::{MirrorCorrection, apply_mirror_correction};
use super::pose::solver::RegressorMemory;
use super::track::{MATCH_IOU, TrackConfig, Tracker, forward_detection, search_interval};
use super::{DetectionMode, Engine, Result, StageTimes};

/// For each detection, the index of the failed track's box it continues (greedy by overlap).
fn match_failed(found: &[Detection], failed_boxes: &[BBox]) -> Vec<Option<usize>> {
    let boxes: Vec<BBox> = found.iter().map(|d| d.bbox).collect();
    super::track::match_by_overlap(&boxes, failed_boxes, MATCH_IOU)
}

/// A lost face is searched for in a square this many times its last box's longer side.
pub const SEARCH_REGION_SCALE: f32 = 2.5;
/// The detector's input for that search (long side, models with a dynamic input): the face fills
/// about 40 % of it.
pub const SEARCH_INPUT_SIZE: usize = 160;

/// Faces of a frame, the track each continues (`None`: a new track), their new mirror
/// corrections and regressor memories.
pub(super) type Followed = (
    Vec<Face>,
    Vec<Option<usize>>,
    Vec<Option<MirrorCorrection>>,
    Vec<Option<RegressorMemory>>,
);
/// Followed faces, their new mirror corrections and regressor memories, and the tracks that
/// could not be followed.
type FollowResult = (
    Vec<Face>,
    Vec<Option<MirrorCorrection>>,
    Vec<Option<RegressorMemory>>,
    Vec<usize>,
);

/// Faces a background detection brought forward, with their new mirror corrections, regressor
/// memories and the detector's boxes on the frame it ran on.
#[derive(Default)]
struct Joined {
    faces: Vec<Face>,
    corrections: Vec<Option<MirrorCorrection>>,
    memories: Vec<Option<RegressorMemory>>,
    boxes_then: Vec<BBox>,
}

impl Engine {
    /// Tracking settings take effect on the next frame.
    pub fn set_track_config(&mut self, track: TrackConfig) -> Result<()> {
        track.validate()?;
        self.track_config = track;
        Ok(())
    }

    /// Loads the background detector's session, runs it once (see [`Engine::warm_up`]) and
    /// starts its thread now (call before the stream when frames will be tracked with the
    /// detector on its own thread: see [`DetectionMode`]), so that neither the load nor its CPU
    /// time falls on the first frames; a model that fails to load fails here. Without this call the thread starts, and loads
    /// the session itself, at the first background detection. Does nothing when the thread runs
    /// already or the detection mode is in line.
    pub fn prepare_background_detection(&mut self) -> Result<()> {
        if self.detection_mode.uses_thread() {
            self.start_detection_thread()?;
        }
        Ok(())
    }

    /// Loads, warms and starts the detection thread when it does not run.
    pub(super) fn start_detection_thread(&mut self) -> Result<()> {
        if self.background.is_none() {
            let detector =
                super::load_warm_detector(&self.background_source(), &self.config.detect)?;
            self.background = Some(BackgroundDetector::with_detector(detector)?);
        }
        Ok(())
    }

    pub fn track_config(&self) -> TrackConfig {
        self.track_config
    }

    /// Where the detector runs while tracking, from the next frame (see [`DetectionMode`]); the
    /// engine starts with its configuration's. Changing it forgets the tracks.
    pub fn set_detection_mode(&mut self, mode: DetectionMode) {
        if mode != self.detection_mode {
            self.reset_tracking();
            // The detection thread's session has the threads of the mode it was loaded for
            // (see `detector_runtime`): one loaded for another count is replaced now, on this
            // thread, so that its load never falls inside a detection that a frame waits for
            // (a live source's first frame pays for it once). A load that fails here is tried
            // again, and its error returned, by the next detection.
            let reload = self.background.is_some()
                && self.config.runtime.threads == 0
                && super::detector_threads(mode) != super::detector_threads(self.detection_mode);
            self.detection_mode = mode;
            if reload {
                self.background = None;
                drop(self.prepare_background_detection());
            }
        }
    }

    pub fn detection_mode(&self) -> DetectionMode {
        self.detection_mode
    }

    /// Frames between searches for new faces in automatic mode on `image`, with the detector in
    /// line (`beside` `None`) or on a thread of its own beside that many frames of tracking: see
    /// [`search_interval`].
    pub(super) fn search_interval_on(&self, image: &ImageView, beside: Option<u32>) -> u32 {
        let (w, h) =
            self.detector
                .input_dimensions(image.width(), image.height(), &self.config.detect);
        let side = self.landmarker.input_size();
        search_interval(w * h, side * side, self.tracker.visible_count(), beside)
    }

    /// Forgets every track (call after a seek or a flush, or between streams); a detection still
    /// running in the background is disregarded when it finishes.
    pub fn reset_tracking(&mut self) {
        self.discard_scheduled();
        self.tracker.reset();
        self.regressor_memory.clear();
        self.generation += 1;
        self.background_snapshot = None;
        self.pipeline = Default::default();
    }

    /// Whether the last [`Engine::track`] call ran the detector.
    pub fn last_frame_detected(&self) -> bool {
        self.tracker.detected
    }

    /// The faces of the next frame of a video stream, with stable ids. `time` is the frame's
    /// timestamp in seconds (used for smoothing; `None` assumes 30 frames per second).
    pub fn track(&mut self, image: &ImageView, time: Option<f64>) -> Result<Vec<Face>> {
        // A detection one frame ahead left in hand (the caller went back to frames in turn) is
        // of no use here.
        drop(self.wait_ahead());
        self.use_ahead_threads(false)?;
        let config = self.track_config;
        let can_track = self.landmarker.refines();
        let dt = self.tracker.advance_clock(time);

        // The first frame of a stream waits for the detector: there is nothing to follow yet.
        let background = matches!(self.detection_mode, DetectionMode::Background { .. })
            && can_track
            && config.detection_interval != 1
            && self.tracker.has_detected();
        let search = self.search_interval_on(image, background.then_some(u32::MAX));
        let detect = self.tracker.should_detect(
            &config,
            can_track,
            self.config.detect.max_faces,
            self.tracker.since_detection(),
            search,
        );
        if background {
            return self.track_with_background_detection(image, detect, dt);
        }
        self.track_in_line(image, dt, detect, None)
    }

    /// A frame in line: a detection frame (`detect`; with the `detections` found on it already
    /// when the detector ran on another thread) or a tracking frame.
    pub(super) fn track_in_line(
        &mut self,
        image: &ImageView,
        dt: f64,
        detect: bool,
        detections: Option<Vec<Detection>>,
    ) -> Result<Vec<Face>> {
        let config = self.track_config;
        let can_track = self.landmarker.refines();
        self.tracker.start_frame(detect);
        let (followed, from_detector) = if !detect {
            self.follow_all(image)?
        } else {
            let t0 = Instant::now();
            let detections = match detections {
                Some(d) => d,
                None => self.detect_now(image)?,
            };
            let detect_ms = t0.elapsed().as_secs_f64() * 1e3;
            let followed = if config.detection_interval == 1 || !can_track {
                let faces = self.process_detected(image, detections, detect_ms, None)?;
                self.still_faces_with_ids(faces)
            } else {
                self.times.detect = detect_ms;
                self.detect_and_follow(image, detections)?
            };
            let n = followed.0.len();
            (followed, vec![true; n])
        };
        self.tracker.finish_frame(detect);
        self.store_frame(followed, &from_detector, detect, dt)
    }

    /// The faces of [`Engine::process`] on a detection frame with the detector on every frame:
    /// ids by overlap with the tracks, and the mirror corrections of the last call.
    pub(super) fn still_faces_with_ids(&mut self, mut faces: Vec<Face>) -> Followed {
        let corrections = std::mem::take(&mut self.last_corrections);
        let matched = self.tracker.assign_ids(&mut faces, &[]);
        let corrections = (0..faces.len())
            .map(|i| corrections.get(i).cloned())
            .collect();
        (faces, matched, corrections, Vec::new())
    }

    /// Stores a frame's faces in the tracker and the regressor memory; returns them smoothed.
    pub(super) fn store_frame(
        &mut self,
        (mut faces, matched, corrections, memories): Followed,
        from_detector: &[bool],
        lose_unseen: bool,
        dt: f64,
    ) -> Result<Vec<Face>> {
        let t0 = Instant::now();
        self.tracker.update_tracks(
            &mut faces,
            &matched,
            &corrections,
            from_detector,
            lose_unseen,
            dt as f32,
            self.track_config.smoothing,
        );
        for (face, memory) in faces.iter().zip(memories) {
            if let Some(m) = memory {
                self.regressor_memory.insert(face.id, m);
            }
        }
        self.prune_regressor_memory();
        self.times.pose += t0.elapsed().as_secs_f64() * 1e3;
        Ok(faces)
    }

    /// A frame while the detector works in the background: the answer of a finished detection is
    /// applied first (see [`super::track`]), every visible track is followed, the faces it found
    /// that no track had join; then, when a detection is due (`detect`) and the detector is free,
    /// it starts on a copy of this frame, with this frame's faces to judge its answer against.
    fn track_with_background_detection(
        &mut self,
        image: &ImageView,
        detect: bool,
        dt: f64,
    ) -> Result<Vec<Face>> {
        let started = Instant::now();
        self.tracker.start_frame(false);
        self.background_age += 1;
        let wait = match self.detection_mode {
            DetectionMode::Background { bound: Some(n) } => self.background_age >= n,
            _ => false,
        };
        let finished = self.background.as_mut().and_then(|b| {
            if wait {
                b.wait_finished()
            } else {
                b.take_finished()
            }
        });
        let mut fresh = Vec::new();
        let mut confirmed = Vec::new();
        let mut detected_ms = None;
        let mut frame_then = None;
        if let Some(done) = finished {
            let current = done.generation == self.generation;
            let snapshot = self.background_snapshot.take().filter(|_| current);
            match (done.detections, snapshot) {
                (Err(e), Some(_)) => {
                    self.recycle(done.image);
                    return Err(e);
                }
                (Ok(detections), Some(snapshot)) => {
                    let outcome = self
                        .tracker
                        .apply_background_detection(&snapshot, &detections);
                    fresh = outcome.fresh;
                    confirmed = outcome.confirmed;
                    detected_ms = Some(done.ms);
                    frame_then = Some(done.image);
                }
                // From before a reset: nothing to do with this stream.
                _ => self.recycle(done.image),
            }
        }
        let ((mut faces, mut matched, mut corrections, mut memories), refound) =
            self.follow_all(image)?;
        // Tracks the detector confirmed, and faces found again around their last box, are
        // stored as on a detection frame.
        let mut from_detector: Vec<bool> = faces
            .iter()
            .zip(refound)
            .map(|(f, r)| r || confirmed.contains(&f.id))
            .collect();
        if let Some(then) = frame_then {
            let joined = match then.view() {
                Some(view) if !fresh.is_empty() => self.bring_forward(&view, image, &fresh),
                _ => Ok(Joined::default()),
            };
            self.recycle(then);
            let Joined {
                faces: mut new_faces,
                corrections: new_corrections,
                memories: new_memories,
                boxes_then,
            } = joined?;
            let mut taken = vec![false; self.tracker.track_count()];
            for &ti in matched.iter().flatten() {
                taken[ti] = true;
            }
            // Ids by overlap with the detector's boxes, on the frame it ran on: nearer in time to
            // where a lost track was last seen than the faces' boxes now.
            let boxes_now: Vec<BBox> = new_faces.iter().map(|f| f.bbox).collect();
            for (f, b) in new_faces.iter_mut().zip(&boxes_then) {
                f.bbox = *b;
            }
            matched.extend(self.tracker.assign_ids(&mut new_faces, &taken));
            for (f, b) in new_faces.iter_mut().zip(boxes_now) {
                f.bbox = b;
            }
            corrections.extend(new_corrections);
            memories.extend(new_memories);
            from_detector.resize(faces.len() + new_faces.len(), true);
            faces.extend(new_faces);
        }
        if detect && !self.background.as_ref().is_some_and(|b| b.is_busy()) {
            let background = match self.background.as_mut() {
                Some(b) => b,
                None => self
                    .background
                    .insert(BackgroundDetector::start(self.background_source())?),
            };
            background.submit(image, &self.config.detect, self.generation);
            self.background_age = 0;
            self.background_snapshot = Some(Tracker::snapshot(&faces));
            self.tracker.background_detection_started();
        }
        let ms = started.elapsed().as_secs_f64() * 1e3;
        self.times = StageTimes {
            detect: detected_ms.unwrap_or(0.0),
            landmarks: ms,
            pose: 0.0,
        };
        self.tracker.finish_background_frame(detected_ms.is_some());
        self.store_frame(
            (faces, matched, corrections, memories),
            &from_detector,
            false,
            dt,
        )
    }

    fn recycle(&mut self, image: OwnedImage) {
        if let Some(b) = self.background.as_mut() {
            b.recycle(image);
        }
    }

    /// Faces a background detection found on `then` (an earlier frame) that no track had, brought
    /// to the current frame `now`: the full landmark passes on `then` from the detections, one
    /// pass on `now` from those landmarks, then the pose as on a tracking frame.
    /// Faces whose landmarks on `now` are no plausible next position are left for the next
    /// detection.
    fn bring_forward(
        &mut self,
        then: &ImageView,
        now: &ImageView,
        fresh: &[(Detection, Option<u64>)],
    ) -> Result<Joined> {
        let crops = fresh
            .iter()
            .map(|(d, _)| self.landmarker.crop_from_detection(d))
            .collect();
        let (landmarks_then, _) =
            self.landmark_passes(then, crops, self.config.refine_passes, false)?;
        let mut kept = Vec::new();
        let mut crops = Vec::new();
        for ((d, track), l) in fresh.iter().zip(landmarks_then) {
            if let Some(crop) = self.landmarker.crop_from_landmarks(&l.points) {
                kept.push((*d, *track, l.points));
                crops.push(crop);
            }
        }
        let (landmarks_now, corrections) = self.landmark_passes(now, crops, 0, true)?;
        let (w, h) = (now.width() as f32, now.height() as f32);
        let mut detections = Vec::new();
        let mut landmarks = Vec::new();
        let mut kept_corrections = Vec::new();
        let mut boxes_then = Vec::new();
        let mut memory = Vec::new();
        for (k, ((d, track, points_then), l)) in kept.iter().zip(landmarks_now).enumerate() {
            if let Some(forward) = forward_detection(d, points_then, &l, w, h) {
                detections.push(forward);
                landmarks.push(l);
                kept_corrections.push(corrections.get(k).cloned());
                boxes_then.push(d.bbox);
                // A face whose track was lost since carries that track's last regressor estimate.
                memory.push(track.and_then(|id| self.regressor_memory.get(&id).copied()));
            }
        }
        // As on a tracking frame: the regressor for turned faces when due, without the mirrored
        // crop: the still path's mirrored crops cost a share of a crowd video's rate
        // (docs/performance.md, "Measurements behind the code").
        let (faces, memories) = self.solve(now, &detections, landmarks, Past::Tracked(&memory))?;
        Ok(Joined {
            faces,
            corrections: kept_corrections,
            memories,
            boxes_then,
        })
    }

    /// A tracking frame: every visible track followed by its landmarks; a track that fails is
    /// searched for around its last box (see [`Engine::search_near`]), and marked lost when it
    /// is not there. Also says, per face, whether the detector found it on this frame.
    fn follow_all(&mut self, image: &ImageView) -> Result<(Followed, Vec<bool>)> {
        let t0 = Instant::now();
        let visible = self.tracker.visible_indices();
        let (mut faces, mut corrections, mut memories, failed) = self.follow(image, &visible)?;
        let mut matched: Vec<Option<usize>> =
            faces.iter().map(|f| self.tracker.position(f.id)).collect();
        let mut refound = vec![false; faces.len()];
        let t1 = Instant::now();
        let mut lost = failed.clone();
        if !failed.is_empty() {
            let (found, found_matched, found_corrections, found_memories) =
                self.search_near(image, &failed, &faces)?;
            lost.retain(|ti| !found_matched.contains(&Some(*ti)));
            refound.resize(faces.len() + found.len(), true);
            faces.extend(found);
            matched.extend(found_matched);
            corrections.extend(found_corrections);
            memories.extend(found_memories);
        }
        for &ti in &lost {
            self.tracker.lose(ti);
        }
        // The search around lost faces counts as detection time.
        let searched = !failed.is_empty();
        self.times = StageTimes {
            detect: if searched {
                t1.elapsed().as_secs_f64() * 1e3
            } else {
                0.0
            },
            landmarks: (t1 - t0).as_secs_f64() * 1e3,
            pose: 0.0,
        };
        Ok(((faces, matched, corrections, memories), refound))
    }

    /// The faces the detector finds around the last boxes of the tracks `failed` (which failed
    /// to follow on this frame), each region [`SEARCH_REGION_SCALE`] times its box, at input
    /// [`SEARCH_INPUT_SIZE`]: a lost face is looked for where it was, at once, for a small share
    /// of a full-frame detection. Faces over one of `present` (followed on this frame) are left
    /// out. A face over a failed track's last box is that face found again: one landmark pass
    /// from the detection and one re-crop, its regressor estimate carried on as on a tracking
    /// frame, and the track's id. Any other face is new: the still-picture passes, the
    /// regressor, and a new id (or a remembered lost track's, by overlap).
    fn search_near(
        &mut self,
        image: &ImageView,
        failed: &[usize],
        present: &[Face],
    ) -> Result<Followed> {
        let config = DetectConfig {
            input_size: SEARCH_INPUT_SIZE,
            ..self.config.detect
        };
        let mut found: Vec<Detection> = Vec::new();
        for &ti in failed {
            let b = self.tracker.track(ti).bbox();
            let c = b.centre();
            let half = 0.5 * SEARCH_REGION_SCALE * b.width().max(b.height());
            let region = BBox::new(c.x - half, c.y - half, c.x + half, c.y + half);
            for d in self.detector.detect_in(image, &region, &config)? {
                let over = |other: &BBox| other.iou(&d.bbox) >= MATCH_IOU;
                if !present.iter().any(|f| over(&f.bbox)) && !found.iter().any(|f| over(&f.bbox)) {
                    found.push(d);
                }
            }
        }
        found.truncate(self.config.detect.max_faces.saturating_sub(present.len()));
        // The face a failed track had is found again where it was: its landmarks from one
        // re-crop, its regressor estimate carried on as on a tracking frame. A face no failed
        // track had is new: the still-picture passes and the regressor.
        let failed_boxes: Vec<BBox> = failed
            .iter()
            .map(|&ti| self.tracker.track(ti).bbox())
            .collect();
        let of_track = match_failed(&found, &failed_boxes);
        let (again, new): (Vec<usize>, Vec<usize>) =
            (0..found.len()).partition(|&k| of_track[k].is_some());
        let mut faces = Vec::with_capacity(found.len());
        let mut corrections = Vec::with_capacity(found.len());
        let mut memories = Vec::with_capacity(found.len());
        for (group, is_again) in [(again, true), (new, false)] {
            if group.is_empty() {
                continue;
            }
            let detections: Vec<Detection> = group.iter().map(|&k| found[k]).collect();
            let crops = detections
                .iter()
                .map(|d| self.landmarker.crop_from_detection(d))
                .collect();
            let (refine, mirror) = if is_again {
                (1.min(self.config.refine_passes), false)
            } else {
                (self.config.refine_passes, true)
            };
            let (landmarks, group_corrections) =
                self.landmark_passes(image, crops, refine, mirror)?;
            let remembered: Vec<Option<RegressorMemory>> = group
                .iter()
                .map(|&k| {
                    of_track[k].and_then(|j| {
                        let id = self.tracker.track(failed[j]).id();
                        self.regressor_memory.get(&id).copied()
                    })
                })
                .collect();
            let past = if is_again {
                Past::Tracked(&remembered)
            } else {
                Past::New
            };
            let (group_faces, group_memories) = self.solve(image, &detections, landmarks, past)?;
            corrections.extend((0..group_faces.len()).map(|i| group_corrections.get(i).cloned()));
            faces.extend(group_faces);
            memories.extend(group_memories);
        }
        let taken: Vec<bool> = (0..self.tracker.track_count())
            .map(|i| !failed.contains(&i))
            .collect();
        let matched = self.tracker.assign_ids(&mut faces, &taken);
        Ok((faces, matched, corrections, memories))
    }

    /// A detection frame while tracking: faces the detector finds where a track is are followed
    /// by their landmarks (one pass, with the detector's fresh box); the others (new faces, and
    /// tracks that fail to follow) go through the full still-picture passes and get ids by
    /// overlap, which also brings back remembered lost tracks.
    fn detect_and_follow(
        &mut self,
        image: &ImageView,
        detections: Vec<Detection>,
    ) -> Result<Followed> {
        let t1 = Instant::now();
        let det_boxes: Vec<BBox> = detections.iter().map(|d| d.bbox).collect();
        let det_track = self.tracker.match_visible(&det_boxes);
        let to_follow: Vec<usize> = det_track.iter().flatten().copied().collect();
        let (mut followed, mut corrections, mut memories, failed) =
            self.follow(image, &to_follow)?;
        let mut matched = Vec::with_capacity(detections.len());
        let mut taken = vec![false; self.tracker.track_count()];
        for face in &mut followed {
            let ti = self
                .tracker
                .position(face.id)
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
        let fresh: Vec<Detection> = detections
            .iter()
            .zip(&det_track)
            .filter(|(_, m)| m.is_none_or(|ti| failed.contains(&ti)))
            .map(|(d, _)| *d)
            .collect();
        let crops = fresh
            .iter()
            .map(|d| self.landmarker.crop_from_detection(d))
            .collect();
        let (landmarks, fresh_corrections) =
            self.landmark_passes(image, crops, self.config.refine_passes, true)?;
        let t2 = Instant::now();
        let (mut new_faces, new_memories) = self.solve(image, &fresh, landmarks, Past::New)?;
        matched.extend(self.tracker.assign_ids(&mut new_faces, &taken));
        corrections.extend((0..new_faces.len()).map(|i| fresh_corrections.get(i).cloned()));
        memories.extend(new_memories);
        followed.extend(new_faces);
        self.times = StageTimes {
            detect: self.times.detect,
            landmarks: (t2 - t1).as_secs_f64() * 1e3,
            pose: t2.elapsed().as_secs_f64() * 1e3,
        };
        Ok((followed, matched, corrections, memories))
    }

    /// Faces that jumped since the last frame (tracks `kept`, followed by `detections` with
    /// `landmarks`: see [`super::track::Track::jumped_to`]), a scene cut's other faces: a second
    /// landmark pass on a crop from their own landmarks, with a mirror pass for a correction of
    /// their own, and no remembered regressor estimate (`memory`). A face that the second pass
    /// cannot follow keeps the first pass's landmarks.
    fn recrop_jumped(
        &mut self,
        image: &ImageView,
        kept: &[usize],
        detections: &mut [Detection],
        landmarks: &mut [Landmarks],
        corrections: &mut [Option<MirrorCorrection>],
        memory: &mut [Option<RegressorMemory>],
    ) -> Result<()> {
        let jumped: Vec<usize> = (0..kept.len())
            .filter(|&k| self.tracker.track(kept[k]).jumped_to(&landmarks[k]))
            .collect();
        if jumped.is_empty() {
            return Ok(());
        }
        let crops: Vec<_> = jumped
            .iter()
            .map(|&k| {
                let l = &landmarks[k];
                self.landmarker
                    .crop_from_landmarks(&l.points)
                    .unwrap_or(l.crop)
            })
            .collect();
        let mirror = vec![self.mirror_enabled(); crops.len()];
        let (again, measured) = self.pass_with_mirror_where(image, &crops, &mirror)?;
        let threshold = self.track_config.presence_threshold;
        let (w, h) = (image.width() as f32, image.height() as f32);
        for ((&k, l), c) in jumped.iter().zip(again).zip(measured) {
            memory[k] = None;
            let track = self.tracker.track(kept[k]);
            if let Some(d) = track.followed_detection(&l, threshold, w, h) {
                detections[k] = d;
                landmarks[k] = l;
                corrections[k] = c;
            }
        }
        Ok(())
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
                .crop_from_landmarks(self.tracker.track(i).landmarks())
            {
                Some(crop) => {
                    visible.push(i);
                    crops.push(crop);
                }
                None => failed.push(i),
            }
        }
        // The mirror pass for every face when any face's correction is due; else each reuses
        // its own. (A pass for the due faces alone refreshed each face less often, and the faces
        // drifted further from the every-frame detections for a small saving: docs/performance.md,
        // "Measurements behind the code".)
        let refresh = self.mirror_enabled()
            && visible
                .iter()
                .any(|&i| self.tracker.track(i).correction_due());
        let due = vec![refresh; visible.len()];
        let (mut landmarks, corrections) = self.pass_with_mirror_where(image, &crops, &due)?;
        if self.mirror_enabled() {
            let size = self.landmarker.input_size() as f32;
            for ((l, &ti), measured) in landmarks.iter_mut().zip(&visible).zip(&corrections) {
                if let (None, Some(c)) = (measured, self.tracker.track(ti).correction()) {
                    apply_mirror_correction(l, c, size);
                }
            }
        }
        let threshold = self.track_config.presence_threshold;
        let mut kept = Vec::with_capacity(landmarks.len());
        let mut detections = Vec::with_capacity(landmarks.len());
        let mut kept_landmarks = Vec::with_capacity(landmarks.len());
        let mut kept_corrections = Vec::with_capacity(landmarks.len());
        let mut memory = Vec::with_capacity(landmarks.len());
        for (k, (&ti, l)) in visible.iter().zip(landmarks).enumerate() {
            let track = self.tracker.track(ti);
            let Some(detection) = track.followed_detection(
                &l,
                threshold,
                image.width() as f32,
                image.height() as f32,
            ) else {
                failed.push(ti);
                continue;
            };
            memory.push(self.regressor_memory.get(&track.id()).copied());
            kept.push(ti);
            detections.push(detection);
            kept_landmarks.push(l);
            kept_corrections.push(corrections[k].clone());
        }
        self.recrop_jumped(
            image,
            &kept,
            &mut detections,
            &mut kept_landmarks,
            &mut kept_corrections,
            &mut memory,
        )?;
        let (mut faces, memories) =
            self.solve(image, &detections, kept_landmarks, Past::Tracked(&memory))?;
        for (face, &ti) in faces.iter_mut().zip(&kept) {
            face.id = self.tracker.track(ti).id();
        }
        Ok((faces, kept_corrections, memories, failed))
    }
}
