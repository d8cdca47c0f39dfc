// SPDX-License-Identifier: MPL-2.0
//! Between frames the models' thread pools sleep: their threads spin for work only while a run
//! lasts. Left spinning after it (ONNX Runtime's default), they took 38-69 ms of CPU in the 200 ms
//! after the last frame here, against 1.3-3.9 ms, CPU taken from whatever runs next (the other
//! model, the streaming thread). One test in its own binary, so that no other test's threads are
//! counted.

mod support;

use std::time::Duration;

use gstfacepose::engine::Engine;
use support::Picture;

/// Nanoseconds every thread of this process has spent on a CPU.
fn cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |t| t.count())
}

#[test]
fn thread_pools_sleep_between_frames() {
    let config = support::config().unwrap_or_else(|e| panic!("{e}"));
    let picture = Picture::load(&support::sample_pictures()[0]).expect("run `make models`");
    let before = thread_count();
    let mut engine = Engine::new(config).unwrap_or_else(|e| panic!("{e}; run `make models`"));
    for _ in 0..3 {
        let faces = engine.process(&picture.view()).unwrap();
        assert_eq!(faces.len(), 1, "the astronaut");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores > 1 {
        assert!(
            thread_count() > before,
            "the detector and the head-pose model run with a pool of threads on {cores} cores"
        );
    }
    let start = cpu_ns();
    std::thread::sleep(Duration::from_millis(200));
    let idle_ms = (cpu_ns() - start) as f64 * 1e-6;
    println!("CPU time of all threads over 200 ms after the last frame: {idle_ms:.2} ms");
    assert!(
        idle_ms < 15.0,
        "the engine's threads took {idle_ms:.1} ms of CPU in 200 ms without frames"
    );
}
