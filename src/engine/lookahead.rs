// SPDX-License-Identifier: MPL-2.0
//! Detection one frame ahead, for streams whose every frame runs the detector (detection
//! interval 1, or a landmark model that cannot track).
//!
//! Every step of such a frame waits for the one before: the detector, then the landmark passes
//! on its boxes, then the head-pose regressor. On two cores the detector gains little from its
//! second thread (docs/performance.md, "Detection one frame ahead"), and single landmark crops
//! run on one thread, so a core is idle for a good part of each frame. A caller that holds one frame
//! back can start the detector on the next frame, on a thread of its own
//! ([`Engine::detect_ahead`]), while this thread finishes the frame before with the detections
//! that were found for it ([`Engine::track_detected`]). Both halves then get half the cores
//! (see [`ahead_threads`]), and the thread runs the first landmark pass as well, which evens
//! the halves out. The faces of every frame are exactly those of [`Engine::track`] with
//! the detector on every frame; only the frame comes out one frame later.

use super::detect::Detection;
use super::detect::background::{AfterDetection, BackgroundDetector, DetectorSource};
use super::face::Face;
use super::geometry::RotatedRect;
use super::image::ImageView;
use super::landmark::Landmarker;
use super::runtime::RuntimeOptions;
use super::{Engine, Result};

/// The detections of one frame, found on the detection thread by [`Engine::detect_ahead`].
pub struct AheadDetections {
    detections: Result<Vec<Detection>>,
    /// Milliseconds the detector took.
    ms: f64,
    /// The crops of the second landmark pass: the thread runs the first pass too.
    next_crops: Option<Result<Vec<RotatedRect>>>,
}

/// Threads for the two halves of detection one frame ahead on `cores` cores: the detector's
/// thread, and the streaming thread's models (the landmark model and the regressor), half the
/// cores each (the detector the smaller half). On 2 cores, one each: that split was faster than
/// giving the streaming side both threads, and both faster than the frames in turn
/// (docs/performance.md, "Measurements behind the code").
pub fn ahead_threads(cores: usize) -> (usize, usize) {
    let detector = (cores / 2).max(1);
    (detector, cores.saturating_sub(detector).max(1))
}

/// The cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Engine {
    /// Whether detection one frame ahead can gain anything at `detection_interval`: every frame
    /// runs the detector in line (interval 1, or a landmark model that cannot track) and there
    /// are two cores or more to share.
    pub fn lookahead_helps(&self, detection_interval: u32) -> bool {
        cores() >= 2 && (detection_interval == 1 || !self.landmarker.refines())
    }

    /// Loads the session of the look-ahead detection thread and starts the thread now (call
    /// before the stream), so that the first frames do not wait for the load; a model that fails
    /// to load fails here. Does nothing when the thread runs already.
    pub fn prepare_ahead_detection(&mut self) -> Result<()> {
        if self.ahead.is_none() {
            let detector = super::load_warm_detector(&self.ahead_source(), &self.config.detect)?;
            self.ahead = Some(match self.first_pass()? {
                Some(after) => BackgroundDetector::with_detector_then(detector, after)?,
                None => BackgroundDetector::with_detector(detector)?,
            });
        }
        Ok(())
    }

    /// The first landmark pass, for the look-ahead thread to run after the detector: the thread
    /// has cores to spare (the streaming half, the landmark passes and the regressor, is the
    /// longer one; docs/performance.md, "Why the design is as it is"), and the pass needs nothing
    /// but the detections. Its landmark
    /// model shares the session the streaming thread's passes use meanwhile (see
    /// [`Engine::use_ahead_threads`]), so the pass gives what it would give there. `None` when
    /// there is no pass to move: a model that cannot re-crop, or no refine pass (the only pass
    /// is then the mirror pass).
    fn first_pass(&self) -> Result<Option<AfterDetection>> {
        if !self.landmarker.refines() || self.config.refine_passes == 0 {
            return Ok(None);
        }
        let runtime = match self.config.runtime.threads {
            0 => RuntimeOptions {
                threads: ahead_threads(cores()).1,
                ..self.config.runtime.clone()
            },
            _ => super::inline_runtime(&self.config.runtime),
        };
        let mut landmarker = Landmarker::load(
            &self.config.landmark_model,
            self.config.landmark_descriptor.as_deref(),
            &runtime,
        )?;
        Ok(Some(Box::new(move |image, detections| {
            let crops: Vec<RotatedRect> = detections
                .iter()
                .map(|d| landmarker.crop_from_detection(d))
                .collect();
            let landmarks = landmarker.run(image, &crops)?;
            Ok(landmarker.refined_crops(&landmarks))
        })))
    }

    /// Starts the detector on a copy of `image` on the look-ahead thread and returns at once;
    /// [`Engine::wait_ahead`] gives its answer. One frame at a time: a detection still in hand
    /// is waited for and dropped first.
    pub fn detect_ahead(&mut self, image: &ImageView) -> Result<()> {
        self.prepare_ahead_detection()?;
        let config = self.config.detect;
        let generation = self.generation;
        let ahead = self.ahead.as_mut().expect("started above");
        if let Some(done) = ahead.wait_finished() {
            ahead.recycle(done.image);
        }
        ahead.submit(image, &config, generation);
        Ok(())
    }

    /// Waits for the detection [`Engine::detect_ahead`] started last and gives its answer, for
    /// [`Engine::track_detected`] of the same frame; `None` when none is in hand.
    pub fn wait_ahead(&mut self) -> Option<AheadDetections> {
        let ahead = self.ahead.as_mut()?;
        let done = ahead.wait_finished()?;
        ahead.recycle(done.image);
        Some(AheadDetections {
            detections: done.detections,
            ms: done.ms,
            next_crops: done.next_crops,
        })
    }

    /// [`Engine::track`] for the frame `image` whose detections `ahead` holds (from
    /// [`Engine::detect_ahead`] on this very frame): the frame is a detection frame, with the
    /// faces and ids that [`Engine::track`] gives with the detector on every frame. Meanwhile
    /// the detector may work on the next frame: the landmark model and the regressor run with
    /// the streaming side's threads ([`ahead_threads`]) until the next [`Engine::track`].
    pub fn track_detected(
        &mut self,
        image: &ImageView,
        time: Option<f64>,
        ahead: AheadDetections,
    ) -> Result<Vec<Face>> {
        let detections = ahead.detections?;
        let next_crops = ahead.next_crops.transpose()?;
        self.use_ahead_threads(true)?;
        let dt = self.tracker.advance_clock(time);
        self.tracker.start_frame(true);
        let faces = self.process_detected(image, detections, ahead.ms, next_crops)?;
        let followed = self.still_faces_with_ids(faces);
        self.tracker.finish_frame(true);
        let from_detector = vec![true; followed.0.len()];
        self.store_frame(followed, &from_detector, true, dt)
    }

    /// Runs the landmark model and the regressor with the streaming side's threads of detection
    /// one frame ahead (`true`), or with their usual sessions.
    pub(super) fn use_ahead_threads(&mut self, on: bool) -> Result<()> {
        if self.ahead_threads == on {
            return Ok(());
        }
        let threads = on.then(|| ahead_threads(cores()).1);
        let runtime = self.config.runtime.clone();
        self.landmarker.model_mut().set_ahead(threads, &runtime)?;
        if let Some(r) = self.regressor.as_mut() {
            r.model_mut().set_ahead(threads, &runtime)?;
        }
        self.ahead_threads = on;
        Ok(())
    }

    /// What the look-ahead thread loads: the detector, with the detector's half of the cores
    /// (or the threads the runtime options fix).
    fn ahead_source(&self) -> DetectorSource {
        let mut runtime = self.config.runtime.clone();
        if runtime.threads == 0 {
            runtime.threads = ahead_threads(cores()).0;
        }
        DetectorSource {
            model: self.config.detector_model.clone(),
            descriptor: self.config.detector_descriptor.clone(),
            runtime,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cores_are_split_in_two_halves() {
        assert_eq!(ahead_threads(1), (1, 1));
        assert_eq!(ahead_threads(2), (1, 1));
        assert_eq!(ahead_threads(3), (1, 2));
        assert_eq!(ahead_threads(16), (8, 8));
    }
}
