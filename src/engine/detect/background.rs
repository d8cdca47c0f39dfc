// SPDX-License-Identifier: MPL-2.0
//! The detector on a thread of its own: the streaming thread hands it a copy of a frame and goes
//! on; the faces come back when they are ready, tagged with the generation they were asked for
//! in (a reset of the stream moves the generation on, so late answers for a stream that is gone
//! are recognised and dropped). One job at a time; the thread ends when the worker is dropped
//! (after the job in hand, if any). [`BackgroundDetector::wait_finished`] waits for the job in
//! hand (detection one frame ahead, see [`crate::engine::lookahead`]).
//!
//! The thread has its own session of the detector (with the threads the engine gives it, fewer
//! than the in-line detector's so that the streaming thread keeps its core), loaded before the
//! stream starts ([`BackgroundDetector::with_detector`]) or by the thread itself before its first
//! job ([`BackgroundDetector::start`]: the streaming thread does not wait for it); a load that
//! fails there is reported as the answer to every job.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use super::{DetectConfig, Detection, Detector};
use crate::engine::error::{Error, Result};
use crate::engine::geometry::RotatedRect;
use crate::engine::image::{ImageView, OwnedImage};
use crate::engine::runtime::RuntimeOptions;

/// The detector the background thread loads.
#[derive(Debug, Clone)]
pub struct DetectorSource {
    pub model: PathBuf,
    pub descriptor: Option<PathBuf>,
    pub runtime: RuntimeOptions,
}

struct Job {
    image: OwnedImage,
    config: DetectConfig,
    generation: u64,
}

/// What the thread does on a frame after the detector, with its detections (detection one frame
/// ahead: the first landmark pass, see [`crate::engine::lookahead`]): the crops of the next landmark
/// pass, one per detection, come back with the answer.
pub type AfterDetection =
    Box<dyn FnMut(&ImageView, &[Detection]) -> Result<Vec<RotatedRect>> + Send>;

/// A finished background detection.
pub struct Finished {
    /// The frame it ran on (also the storage for the next copy: give it back with
    /// [`BackgroundDetector::recycle`]).
    pub image: OwnedImage,
    pub generation: u64,
    pub detections: Result<Vec<Detection>>,
    /// Milliseconds the detector took.
    pub ms: f64,
    /// What the thread's [`AfterDetection`] gave, when it has one and the detector succeeded.
    pub next_crops: Option<Result<Vec<RotatedRect>>>,
}

#[derive(Default)]
struct State {
    job: Option<Job>,
    finished: Option<Finished>,
    running: bool,
    stop: bool,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

fn state(shared: &Shared) -> MutexGuard<'_, State> {
    shared.0.lock().unwrap_or_else(|e| e.into_inner())
}

/// The background detection thread.
pub struct BackgroundDetector {
    shared: Shared,
    thread: Option<JoinHandle<()>>,
    spare: OwnedImage,
}

impl BackgroundDetector {
    /// Starts the thread, which loads `source` before its first job.
    pub fn start(source: DetectorSource) -> Result<BackgroundDetector> {
        Self::spawn(
            move || {
                Detector::load(&source.model, source.descriptor.as_deref(), &source.runtime)
                    .map_err(|e| e.to_string())
            },
            None,
        )
    }

    /// Starts the thread with a detector loaded already (the caller waits for the load, not the
    /// first frames).
    pub fn with_detector(detector: Detector) -> Result<BackgroundDetector> {
        Self::spawn(move || Ok(detector), None)
    }

    /// [`BackgroundDetector::with_detector`], the thread running `after` on every frame after
    /// the detector.
    pub fn with_detector_then(
        detector: Detector,
        after: AfterDetection,
    ) -> Result<BackgroundDetector> {
        Self::spawn(move || Ok(detector), Some(after))
    }

    fn spawn(
        load: impl FnOnce() -> std::result::Result<Detector, String> + Send + 'static,
        after: Option<AfterDetection>,
    ) -> Result<BackgroundDetector> {
        let shared: Shared = Arc::default();
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("facepose-detect".into())
            .spawn(move || run(load(), after, theirs))
            .map_err(|e| Error::Config(format!("cannot start the detection thread: {e}")))?;
        Ok(BackgroundDetector {
            shared,
            thread: Some(thread),
            spare: OwnedImage::default(),
        })
    }

    /// Whether a job is waiting, running or finished and not yet taken.
    pub fn is_busy(&self) -> bool {
        let s = state(&self.shared);
        s.job.is_some() || s.running || s.finished.is_some()
    }

    /// Hands over a copy of `image` to detect with `config`; the streaming thread returns at once.
    /// Call only when not [`busy`](Self::is_busy).
    pub fn submit(&mut self, image: &ImageView, config: &DetectConfig, generation: u64) {
        let mut copy = std::mem::take(&mut self.spare);
        copy.copy_from(image);
        let mut s = state(&self.shared);
        s.job = Some(Job {
            image: copy,
            config: *config,
            generation,
        });
        self.shared.1.notify_all();
    }

    /// The finished detection, if there is one (never waits).
    pub fn take_finished(&mut self) -> Option<Finished> {
        state(&self.shared).finished.take()
    }

    /// Waits for the job in hand to finish and takes it; `None` at once when no job was
    /// submitted since the last one was taken.
    pub fn wait_finished(&mut self) -> Option<Finished> {
        let mut s = state(&self.shared);
        loop {
            if let Some(done) = s.finished.take() {
                return Some(done);
            }
            if s.job.is_none() && !s.running {
                return None;
            }
            s = self.shared.1.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Gives back a finished job's frame storage for the next copy.
    pub fn recycle(&mut self, image: OwnedImage) {
        self.spare = image;
    }
}

impl Drop for BackgroundDetector {
    fn drop(&mut self) {
        state(&self.shared).stop = true;
        self.shared.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    mut detector: std::result::Result<Detector, String>,
    mut after: Option<AfterDetection>,
    shared: Shared,
) {
    loop {
        let job = {
            let mut s = state(&shared);
            loop {
                if s.stop {
                    return;
                }
                if let Some(job) = s.job.take() {
                    s.running = true;
                    break job;
                }
                s = shared.1.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        };
        let started = Instant::now();
        fn failed<T>() -> Result<T> {
            Err(Error::Config(
                "the detection thread failed unexpectedly (a bug: please report it)".into(),
            ))
        }
        let mut ms = None;
        let mut next_crops = None;
        let detections = match (job.image.view(), detector.as_mut()) {
            (Some(view), Ok(detector)) => {
                let found = catch_unwind(AssertUnwindSafe(|| detector.detect(&view, &job.config)))
                    .unwrap_or_else(|_| failed());
                ms = Some(started.elapsed().as_secs_f64() * 1e3);
                if let (Ok(found), Some(after)) = (&found, after.as_mut()) {
                    next_crops = Some(
                        catch_unwind(AssertUnwindSafe(|| after(&view, found)))
                            .unwrap_or_else(|_| failed()),
                    );
                }
                found
            }
            (_, Err(why)) => Err(Error::Config(format!(
                "the background detector could not be loaded: {why}"
            ))),
            (None, _) => Ok(Vec::new()),
        };
        let mut s = state(&shared);
        s.running = false;
        s.finished = Some(Finished {
            image: job.image,
            generation: job.generation,
            detections,
            ms: ms.unwrap_or_else(|| started.elapsed().as_secs_f64() * 1e3),
            next_crops,
        });
        shared.1.notify_all();
    }
}
