// SPDX-License-Identifier: MPL-2.0
//! Many engines in one process hold one session per model file and options: a second engine with
//! the same configuration loads nothing new, other options load their own, the last holder frees
//! them, and engines sharing sessions give the same faces when run at the same time from several
//! threads. One test in its own binary, so that no other test's sessions are counted.

#[path = "support/mod.rs"]
mod support;

use gstfacepose::engine::runtime::live_sessions;
use gstfacepose::engine::{Engine, Face};
use support::Picture;

fn faces_of(engine: &mut Engine, picture: &Picture) -> Vec<Face> {
    engine.process(&picture.view()).expect("process")
}

#[test]
fn engines_with_the_same_models_and_options_share_their_sessions() {
    let config = support::config().expect("run `make models`");
    let picture = Picture::load(&support::sample_pictures()[0]).expect("a sample picture");
    assert_eq!(live_sessions(), 0);

    let mut first = Engine::new(config.clone()).expect("engine");
    let own = live_sessions();
    // Detector, landmark model (one for single crops, one for batches) and head-pose regressor.
    assert_eq!(own, 4, "one session per model, two for the landmark model");
    let mut second = Engine::new(config.clone()).expect("engine");
    assert_eq!(
        live_sessions(),
        own,
        "the second engine loaded its own sessions"
    );

    let mut other = config.clone();
    other.runtime.threads = 3;
    let third = Engine::new(other).expect("engine");
    // With a thread count given, the landmark model has one session for both.
    assert_eq!(live_sessions(), own + 3, "other options must not share");
    drop(third);
    assert_eq!(live_sessions(), own, "the last holder frees its sessions");

    // Shared sessions run from two threads at once give each engine the faces it gives alone.
    let alone = faces_of(&mut first, &picture);
    assert_eq!(alone.len(), 1);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            (0..6)
                .map(|_| faces_of(&mut first, &picture))
                .collect::<Vec<_>>()
        });
        let b = s.spawn(|| {
            (0..6)
                .map(|_| faces_of(&mut second, &picture))
                .collect::<Vec<_>>()
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    for faces in a.iter().chain(&b) {
        assert_eq!(faces.len(), 1);
        assert_eq!(faces[0].bbox, alone[0].bbox);
        assert_eq!(faces[0].landmarks, alone[0].landmarks);
        assert_eq!(faces[0].pose, alone[0].pose);
    }
    drop(first);
    drop(second);
    assert_eq!(live_sessions(), 0, "sessions outlived every engine");
}
