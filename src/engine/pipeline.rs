// SPDX-License-Identifier: MPL-2.0
//! Pipelined detection: the faces of frames tracked in line, with the detector's work on a thread
//! of its own, the same at any speed.
//!
//! The caller holds the last [`PIPELINE_DEPTH`] frames of a stream. When a frame arrives,
//! [`Engine::schedule`] decides whether it is a detection frame (by the tracker's state after the
//! frames finished so far) and, if so, starts the detector on a copy of it on the detection
//! thread. The oldest held frame is then finished by [`Engine::track_scheduled`]: a detection
//! frame takes the detections found for it (waiting for them if the thread is not done), and is
//! processed exactly as a detection frame in line would be; a tracking frame follows its faces,
//! and searches at once around a face that fails to follow. Nothing depends on a clock or on when
//! the thread finishes, so the faces of every frame are the same however fast frames arrive;
//! meanwhile the detector works on the second core while the held frames are tracked on the
//! first.
//!
//! One detection is in flight at a time: a frame that arrives while one is pending is not a
//! detection frame, and the schedule counts on from the last detection frame. Since the
//! schedule decides [`PIPELINE_DEPTH`] frames early, a frame on which, by the time it is
//! finished, no face is tracked or a face was lost (the automatic interval's urgent cases) runs
//! the detector in line.

use super::track::search_interval;
use super::{Engine, Error, Face, ImageView, Result};

/// Frames the caller holds: the detection thread has the tracking of this many frames' time to
/// finish a detection before the streaming thread needs it.
pub const PIPELINE_DEPTH: usize = 8;

/// Where the pipelined schedule stands.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Schedule {
    /// Frames arrived since the last detection frame (`None`: none yet on this stream).
    since: Option<u32>,
    /// A held frame's detection is in flight or finished and not yet taken.
    pending: bool,
}

impl Engine {
    /// Whether frames at this detection interval go through the pipelined schedule: tracking
    /// (an interval other than 1, a landmark model that can follow faces).
    pub fn pipelining_applies(&self, detection_interval: u32) -> bool {
        detection_interval != 1 && self.landmarker.refines()
    }

    /// A new frame `image` of the stream arrives (after every held frame before it, before it is
    /// finished by [`Engine::track_scheduled`]): whether it is a detection frame. If it is, the
    /// detector starts on a copy of it on the detection thread, which a model that fails to
    /// load fails here.
    pub fn schedule(&mut self, image: &ImageView) -> Result<bool> {
        let config = self.track_config;
        let can_track = self.landmarker.refines();
        let detect = !self.pipeline.pending && {
            let (w, h) =
                self.detector
                    .input_dimensions(image.width(), image.height(), &self.config.detect);
            let side = self.landmarker.input_size();
            // The detection frame waits behind the frames held before it.
            let beside = Some(PIPELINE_DEPTH as u32 - 1);
            let search = search_interval(w * h, side * side, self.tracker.visible_count(), beside);
            self.tracker.should_detect(
                &config,
                can_track,
                self.config.detect.max_faces,
                self.pipeline.since,
                search,
            )
        };
        self.pipeline.since = match (detect, self.pipeline.since) {
            (true, _) => Some(0),
            (false, since) => since.map(|s| s + 1),
        };
        if detect {
            self.start_detection_thread()?;
            let background = self.background.as_mut().expect("prepared above");
            // Anything left from before a reset goes first.
            if let Some(old) = background.take_finished() {
                background.recycle(old.image);
            }
            background.submit(image, &self.config.detect, self.generation);
            self.pipeline.pending = true;
        }
        Ok(detect)
    }

    /// The faces of a held frame `image` (`time` its timestamp in seconds, as for
    /// [`Engine::track`]), the oldest one: `scheduled` is what [`Engine::schedule`] said when
    /// it arrived.
    pub fn track_scheduled(
        &mut self,
        image: &ImageView,
        time: Option<f64>,
        scheduled: bool,
    ) -> Result<Vec<Face>> {
        drop(self.wait_ahead());
        self.use_ahead_threads(false)?;
        let dt = self.tracker.advance_clock(time);
        // A detection frame whose detection is gone (the tracks were reset since it arrived)
        // runs the detector in line; so does a frame that the schedule, deciding frames ago,
        // did not know to need one: no face tracked, or one lost, by now.
        let detections = if scheduled && self.pipeline.pending {
            Some(self.take_scheduled()?)
        } else {
            None
        };
        let detect = scheduled || self.tracker.detection_urgent(&self.track_config);
        self.track_in_line(image, dt, detect, detections)
    }

    /// The faces of each of `frames` (each with its timestamp in seconds) through the
    /// pipelined schedule, as the element runs them: every frame scheduled as it arrives, and
    /// finished once [`PIPELINE_DEPTH`] frames came after it (the last ones at the end).
    pub fn track_pipelined(
        &mut self,
        frames: &[(ImageView, Option<f64>)],
    ) -> Result<Vec<Vec<Face>>> {
        let mut held = std::collections::VecDeque::new();
        let mut out = Vec::with_capacity(frames.len());
        for (k, (image, _)) in frames.iter().enumerate() {
            if held.len() >= PIPELINE_DEPTH {
                let (i, scheduled): (usize, bool) = held.pop_front().expect("not empty");
                out.push(self.track_scheduled(&frames[i].0, frames[i].1, scheduled)?);
            }
            held.push_back((k, self.schedule(image)?));
        }
        for (i, scheduled) in held {
            out.push(self.track_scheduled(&frames[i].0, frames[i].1, scheduled)?);
        }
        Ok(out)
    }

    /// Waits for a held frame's detection and drops it (the frame is dropped: a flush).
    pub fn discard_scheduled(&mut self) {
        if self.pipeline.pending {
            self.pipeline.pending = false;
            if let Some(b) = self.background.as_mut()
                && let Some(done) = b.wait_finished()
            {
                b.recycle(done.image);
            }
        }
    }

    /// The detections of the frame in flight, waited for.
    fn take_scheduled(&mut self) -> Result<Vec<super::Detection>> {
        let lost = || Error::Config("the pipelined detection of a held frame is missing".into());
        if !self.pipeline.pending {
            return Err(lost());
        }
        self.pipeline.pending = false;
        let background = self.background.as_mut().ok_or_else(lost)?;
        let done = background.wait_finished().ok_or_else(lost)?;
        background.recycle(done.image);
        self.times.detect = done.ms;
        done.detections
    }
}
