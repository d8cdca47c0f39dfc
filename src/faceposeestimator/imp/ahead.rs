// SPDX-License-Identifier: MPL-2.0
//! `detection-lookahead`: the element's half of detection one frame ahead
//! (`crate::engine::ahead`). Each frame is held back until the next one arrives; the detector
//! then starts on the next one on its own thread, and the held one is finished with the
//! detections found for it and goes downstream. Serialized events and drain queries push the
//! held frame first, so that nothing overtakes it; a flush drops it.

use std::time::Instant;

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_video::VideoInfo;

use super::{CAT, FacePoseEstimator, State};
use crate::engine::ahead::AheadDetections;

/// A finished frame's faces, and its width and height.
type Finished = (Vec<crate::engine::Face>, u32, u32);

/// A frame held back while the detector works on it.
pub(super) struct Held {
    buffer: gst::Buffer,
    info: VideoInfo,
    /// The detector was started on it (a buffer that does not hold a frame goes on unanalysed).
    analysed: bool,
}

impl FacePoseEstimator {
    /// Whether the frames go through detection one frame ahead now: the property, a detector
    /// on every frame, two cores or more.
    pub(super) fn lookahead_active(&self) -> bool {
        let (on, interval) = {
            let s = self.settings.lock().unwrap();
            (s.detection_lookahead, s.detection_interval)
        };
        on && self
            .state
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|state| state.engine.lookahead_helps(interval))
    }

    /// Holds `next` back with the detector started on it, and returns the frame held before
    /// (if any), finished with the detections found for it meanwhile.
    pub(super) fn hold_and_finish_previous(
        &self,
        next: gst::Buffer,
    ) -> Result<Option<gst::Buffer>, gst::FlowError> {
        let settings = self.settings.lock().unwrap().clone();
        let mut guard = self.state.lock().unwrap();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let info = self.configure(state, &settings)?;
        let started = Instant::now();
        // The detector's thread takes one frame at a time: the held frame's answer first.
        let detections = state.engine.wait_ahead();
        let analysed = self
            .analyse(state, &next, &info, |engine, view| {
                engine.detect_ahead(view)
            })?
            .is_some();
        let bad = state.bad_buffer.take();
        let previous = state.held.replace(Held {
            buffer: next,
            info,
            analysed,
        });
        let finished = previous
            .map(|p| self.finish(state, &settings, p, detections, started))
            .transpose()?;
        drop(guard);
        self.report_bad_buffer(bad);
        Ok(finished.map(|(buffer, faces)| self.post_finished(&settings, buffer, faces)))
    }

    /// The held frame, finished once its detector is done; `None` without one.
    pub(super) fn finish_held(&self) -> Result<Option<gst::Buffer>, gst::FlowError> {
        // Called for every frame without the look-ahead: nothing to copy when nothing is held
        // (only the streaming thread holds frames, so none can arrive in between).
        if self
            .state
            .lock()
            .unwrap()
            .as_ref()
            .is_none_or(|s| s.held.is_none())
        {
            return Ok(None);
        }
        let settings = self.settings.lock().unwrap().clone();
        let mut guard = self.state.lock().unwrap();
        let Some(held) = guard.as_mut().and_then(|s| s.held.take()) else {
            return Ok(None);
        };
        let state = guard.as_mut().expect("checked above");
        let started = Instant::now();
        let detections = state.engine.wait_ahead();
        let (buffer, faces) = self.finish(state, &settings, held, detections, started)?;
        drop(guard);
        Ok(Some(self.post_finished(&settings, buffer, faces)))
    }

    /// Pushes the held frame downstream (before a serialized event or a drain query).
    pub(super) fn drain_held(&self) {
        match self.finish_held() {
            Ok(Some(buffer)) => {
                if let Err(e) = self.obj().src_pad().push(buffer) {
                    gst::debug!(CAT, imp = self, "The held frame was not taken: {e:?}");
                }
            }
            Ok(None) => {}
            Err(e) => gst::debug!(CAT, imp = self, "The held frame is lost: {e:?}"),
        }
    }

    /// Drops the held frame and the detection in hand (a flush).
    pub(super) fn discard_held(state: &mut State) {
        state.held = None;
        drop(state.engine.wait_ahead());
    }

    /// One frame more latency while the look-ahead holds frames: a frame's duration at the
    /// negotiated frame rate (nothing for a variable one).
    pub(super) fn lookahead_latency(&self) -> gst::ClockTime {
        let active = self.lookahead_active();
        let guard = self.state.lock().unwrap();
        let fps = guard
            .as_ref()
            .and_then(|s| s.info.as_ref())
            .map(|i| i.fps());
        match (active, fps) {
            (true, Some(fps)) if fps.numer() > 0 && fps.denom() > 0 => gst::ClockTime::SECOND
                .mul_div_ceil(fps.denom() as u64, fps.numer() as u64)
                .unwrap_or(gst::ClockTime::ZERO),
            _ => gst::ClockTime::ZERO,
        }
    }

    /// Finishes a held frame with its `detections`: the faces and everything they give.
    fn finish(
        &self,
        state: &mut State,
        settings: &super::Settings,
        held: Held,
        detections: Option<AheadDetections>,
        started: Instant,
    ) -> Result<(gst::Buffer, Option<Finished>), gst::FlowError> {
        let Held {
            mut buffer,
            info,
            analysed,
        } = held;
        let Some(detections) = detections.filter(|_| analysed) else {
            return Ok((buffer, None));
        };
        let time = buffer.pts().map(|t| t.nseconds() as f64 * 1e-9);
        // The frame was judged when it came in (a bad one is not `analysed`): no second report.
        let faces = match self.with_view(state, &buffer, &info, |engine, view| {
            engine.track_detected(view, time, detections)
        })? {
            Ok(faces) => faces,
            Err(why) => {
                gst::debug!(
                    CAT,
                    imp = self,
                    "Held frame passed on without analysis: {why}"
                );
                return Ok((buffer, None));
            }
        };
        self.annotate(state, settings, buffer.make_mut(), &info, &faces, started)?;
        Ok((buffer, Some((faces, info.width(), info.height()))))
    }

    /// Posts a finished frame's bus message (when asked for; the state's lock released), and
    /// gives the frame back.
    fn post_finished(
        &self,
        settings: &super::Settings,
        buffer: gst::Buffer,
        finished: Option<Finished>,
    ) -> gst::Buffer {
        if let (true, Some((faces, width, height))) = (settings.post_messages, finished) {
            self.post_faces(&buffer, &faces, width, height);
        }
        buffer
    }
}
