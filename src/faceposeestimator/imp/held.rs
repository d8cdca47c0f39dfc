// SPDX-License-Identifier: MPL-2.0
//! Frames held back while the detector works on them, in the two modes that hold frames:
//! `detection-lookahead` (the detector on every frame, one frame ahead: `crate::engine::lookahead`)
//! and pipelined tracking (`async-detection=pipelined`, and `auto` for a source that is not live:
//! `crate::engine::pipeline`, [`PIPELINE_DEPTH`] frames). A frame is held until enough frames
//! came in after it; the detector works on the held ones meanwhile; then the oldest is finished
//! and goes downstream. Serialized events and drain queries push every held frame first, in
//! order, so that nothing overtakes them; a flush drops them.

use std::time::Instant;

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_video::VideoInfo;

use super::{CAT, FacePoseEstimator, State};
use crate::engine::DetectionMode;
use crate::engine::lookahead::AheadDetections;
use crate::engine::pipeline::PIPELINE_DEPTH;

/// A finished frame's faces, its width and height, and the attention events that ended on it.
type Finished = (
    Vec<crate::engine::Face>,
    u32,
    u32,
    Vec<crate::engine::attention::AttentionEvent>,
);

/// How frames go through the element now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holding {
    /// Each frame in turn.
    None,
    /// One frame held, the detector on the next (`detection-lookahead`).
    Lookahead,
    /// [`PIPELINE_DEPTH`] frames held, detections scheduled as they arrive.
    Pipelined,
}

impl Holding {
    /// Frames held before the oldest is finished.
    fn depth(self) -> usize {
        match self {
            Holding::None => 0,
            Holding::Lookahead => 1,
            Holding::Pipelined => PIPELINE_DEPTH,
        }
    }
}

/// A frame held back while the detector works on it or on a frame before it.
pub(super) struct Held {
    buffer: gst::Buffer,
    info: VideoInfo,
    /// The frame was taken in by the engine (a buffer that does not hold a frame goes on
    /// unanalysed).
    analysed: bool,
    /// `Some(detect)`: held by the pipelined schedule, which made it a detection frame or not;
    /// `None`: held by the look-ahead.
    scheduled: Option<bool>,
}

impl FacePoseEstimator {
    /// How frames go through the element now, from the properties, the cores, the landmark
    /// model and whether the source is live (asked at a stream's first frame, which also sets
    /// the engine's detection mode for the stream).
    pub(super) fn holding(&self) -> Holding {
        let settings = self.settings.lock().unwrap().clone();
        let known = self.state.lock().unwrap().as_ref().and_then(|s| s.live);
        // Asked without the state's lock: the query goes upstream.
        let live = known.unwrap_or_else(|| self.source_is_live());
        let mut guard = self.state.lock().unwrap();
        let Some(state) = guard.as_mut() else {
            return Holding::None;
        };
        if state.live.is_none() {
            state.live = Some(live);
            gst::debug!(CAT, imp = self, "Source is live: {live}");
        }
        let mode = settings.detection_mode(live);
        state.engine.set_detection_mode(mode);
        let interval = settings.detection_interval;
        if settings.detection_lookahead && state.engine.lookahead_helps(interval) {
            Holding::Lookahead
        } else if mode == DetectionMode::Pipelined && state.engine.pipelining_applies(interval) {
            Holding::Pipelined
        } else {
            Holding::None
        }
    }

    /// Whether upstream says the source is live (the latency query).
    fn source_is_live(&self) -> bool {
        let mut q = gst::query::Latency::new();
        self.obj().sink_pad().peer_query(&mut q) && q.result().0
    }

    /// Holds `next`, with the detector started on it or scheduled, and returns the oldest held
    /// frame once `holding` holds enough frames, finished.
    pub(super) fn hold(
        &self,
        holding: Holding,
        next: gst::Buffer,
    ) -> Result<Option<gst::Buffer>, gst::FlowError> {
        let settings = self.settings.lock().unwrap().clone();
        let mut guard = self.state.lock().unwrap();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let info = self.configure(state, &settings)?;
        let started = Instant::now();
        let (finished, scheduled) = if holding == Holding::Pipelined {
            // The oldest frame first: its detection is taken, and the thread is free for the
            // new frame's.
            let finished = match state.held.len() >= holding.depth() {
                true => self.finish_oldest(state, &settings, None, started)?,
                false => None,
            };
            let scheduled =
                self.analyse(state, &next, &info, |engine, view| engine.schedule(view))?;
            (finished, scheduled.map(Some))
        } else {
            // The detector's thread takes one frame at a time: the held frame's answer first.
            let detections = state.engine.wait_ahead();
            let started_ahead = self
                .analyse(state, &next, &info, |engine, view| {
                    engine.detect_ahead(view)
                })?
                .map(|()| None);
            let finished = self.finish_oldest(state, &settings, detections, started)?;
            (finished, started_ahead)
        };
        let bad = state.bad_buffer.take();
        state.held.push_back(Held {
            buffer: next,
            info,
            analysed: scheduled.is_some(),
            scheduled: scheduled.flatten(),
        });
        drop(guard);
        self.report_bad_buffer(bad);
        Ok(finished.map(|(buffer, faces)| self.post_finished(&settings, buffer, faces)))
    }

    /// The oldest held frame, finished (waiting for its detector when it needs it); `None`
    /// without one.
    pub(super) fn finish_held(&self) -> Result<Option<gst::Buffer>, gst::FlowError> {
        // Called for every frame that is not held: nothing to copy when nothing is held (only
        // the streaming thread holds frames, so none can arrive in between).
        if self
            .state
            .lock()
            .unwrap()
            .as_ref()
            .is_none_or(|s| s.held.is_empty())
        {
            return Ok(None);
        }
        let settings = self.settings.lock().unwrap().clone();
        let mut guard = self.state.lock().unwrap();
        let Some(state) = guard.as_mut() else {
            return Ok(None);
        };
        let started = Instant::now();
        let ahead = match state.held.front() {
            Some(h) if h.scheduled.is_none() => state.engine.wait_ahead(),
            _ => None,
        };
        let finished = self.finish_oldest(state, &settings, ahead, started)?;
        drop(guard);
        Ok(finished.map(|(buffer, faces)| self.post_finished(&settings, buffer, faces)))
    }

    /// Pushes every held frame downstream, oldest first (before a serialized event or a drain
    /// query).
    pub(super) fn drain_held(&self) {
        loop {
            match self.finish_held() {
                Ok(Some(buffer)) => {
                    if let Err(e) = self.obj().src_pad().push(buffer) {
                        gst::debug!(CAT, imp = self, "A held frame was not taken: {e:?}");
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    gst::debug!(CAT, imp = self, "A held frame is lost: {e:?}");
                    return;
                }
            }
        }
    }

    /// Drops the held frames and the detections in hand (a flush).
    pub(super) fn discard_held(state: &mut State) {
        state.held.clear();
        drop(state.engine.wait_ahead());
        state.engine.discard_scheduled();
    }

    /// The latency that holding frames adds: the frames held, at the negotiated frame rate
    /// (nothing for a variable one).
    pub(super) fn held_latency(&self) -> gst::ClockTime {
        let holding = self.holding();
        let guard = self.state.lock().unwrap();
        let fps = guard
            .as_ref()
            .and_then(|s| s.info.as_ref())
            .map(|i| i.fps());
        match fps {
            Some(fps) if fps.numer() > 0 && fps.denom() > 0 => gst::ClockTime::SECOND
                .mul_div_ceil(
                    fps.denom() as u64 * holding.depth() as u64,
                    fps.numer() as u64,
                )
                .unwrap_or(gst::ClockTime::ZERO),
            _ => gst::ClockTime::ZERO,
        }
    }

    /// Finishes the oldest held frame (`ahead`: its detections, for a look-ahead frame): the
    /// faces and everything they give. `None` when nothing is held.
    fn finish_oldest(
        &self,
        state: &mut State,
        settings: &super::Settings,
        ahead: Option<AheadDetections>,
        started: Instant,
    ) -> Result<Option<(gst::Buffer, Option<Finished>)>, gst::FlowError> {
        let Some(Held {
            mut buffer,
            info,
            analysed,
            scheduled,
        }) = state.held.pop_front()
        else {
            return Ok(None);
        };
        if !analysed {
            return Ok(Some((buffer, None)));
        }
        let time = buffer.pts().map(|t| t.nseconds() as f64 * 1e-9);
        // The frame was judged when it came in (a bad one is not `analysed`): no second report.
        let faces = match (scheduled, ahead) {
            (Some(detect), _) => self.with_view(state, &buffer, &info, |engine, view| {
                engine.track_scheduled(view, time, detect)
            })?,
            (None, Some(detections)) => self.with_view(state, &buffer, &info, |engine, view| {
                engine.track_detected(view, time, detections)
            })?,
            (None, None) => return Ok(Some((buffer, None))),
        };
        let mut faces = match faces {
            Ok(faces) => faces,
            Err(why) => {
                gst::debug!(
                    CAT,
                    imp = self,
                    "Held frame passed on without analysis: {why}"
                );
                return Ok(Some((buffer, None)));
            }
        };
        let events = self.annotate(
            state,
            settings,
            buffer.make_mut(),
            &info,
            &mut faces,
            started,
        )?;
        Ok(Some((
            buffer,
            Some((faces, info.width(), info.height(), events)),
        )))
    }

    /// Posts a finished frame's bus message (when asked for; the state's lock released), and
    /// gives the frame back.
    fn post_finished(
        &self,
        settings: &super::Settings,
        buffer: gst::Buffer,
        finished: Option<Finished>,
    ) -> gst::Buffer {
        if let Some((faces, width, height, events)) = finished {
            if settings.post_messages {
                self.post_faces(&buffer, &faces, width, height);
            }
            self.post_attention(&events);
        }
        buffer
    }
}
