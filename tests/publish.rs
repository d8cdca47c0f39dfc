// SPDX-License-Identifier: MPL-2.0
//! `faceposepublish` against a real Mosquitto broker (started here on a free loopback port,
//! nothing mocked): every frame once and in order at QoS 1; the broker stopped and restarted
//! mid-stream; no broker at all; wrong credentials; TLS; eight publishers to one broker. Without
//! `mosquitto` these tests skip with a printed reason (under CI=true they fail).

#[path = "support/broker.rs"]
mod broker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use broker::{Access, Broker, Subscriber};
use gst::prelude::*;
use gstfacepose::engine::geometry::{BBox, Point};
use gstfacepose::engine::{Face, Pose, PoseMethod};

/// Bound on waiting for messages or for the end of a stream (never reached when things work).
const BOUND: Duration = Duration::from_secs(60);

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfacepose::plugin_register_static().expect("registering the facepose plugin");
    });
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("facepose-publish-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Frame `n`'s one face (its id says which frame it is).
fn face(n: u64) -> Face {
    let pose = Pose {
        yaw: n as f32,
        pitch: -1.0,
        roll: 0.5,
    };
    Face {
        id: n,
        bbox: BBox::new(10.0, 20.0, 60.0, 80.0),
        score: 0.9,
        keypoints: [Point { x: 30.0, y: 40.0 }; 5],
        landmarks: vec![[30.0, 40.0, 0.0]],
        presence: 1.0,
        pose,
        rotation: pose.to_rotation(),
        method: PoseMethod::Fused,
        fit_pose: Some(pose),
        regressed_pose: None,
        regressor_weight: 0.0,
        scale: 1.0,
        fit_error: 0.0,
        attention: None,
    }
}

/// A buffer carrying FacePoseMeta as faceposeestimator attaches it.
fn frame(n: u64) -> gst::Buffer {
    let mut buffer = gst::Buffer::with_size(16).unwrap();
    {
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(40 * n));
        b.set_duration(gst::ClockTime::from_mseconds(40));
        gstfacepose::meta::add_frame_meta(
            b,
            &[face(n)],
            &gstfacepose::meta::FrameInfo {
                width: 160,
                height: 120,
                detector: "test",
                landmarker: "test",
                pose_model: "",
                provider: "cpu",
                inference_ms: 0.0,
                detected: true,
                times: Default::default(),
                events: &[],
            },
        );
    }
    buffer
}

/// `appsrc ! faceposepublish <props> ! fakesink`, playing.
struct Run {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    publish: gst::Element,
    /// Buffers that went through the publisher.
    passed: Arc<AtomicU64>,
}

impl Run {
    fn new(props: &str) -> Run {
        init();
        let pipeline = gst::parse::launch(&format!(
            "appsrc name=src format=time caps=application/x-facepose-test ! faceposepublish name=publish {props} ! fakesink name=sink"
        ))
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .unwrap();
        let src = pipeline
            .by_name("src")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        let publish = pipeline.by_name("publish").unwrap();
        let passed = Arc::new(AtomicU64::new(0));
        let p = passed.clone();
        publish
            .static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                p.fetch_add(1, Ordering::SeqCst);
                gst::PadProbeReturn::Ok
            });
        pipeline.set_state(gst::State::Playing).expect("playing");
        Run {
            pipeline,
            src,
            publish,
            passed,
        }
    }

    fn push(&self, frames: std::ops::Range<u64>) {
        for n in frames {
            self.src.push_buffer(frame(n)).expect("pushing a frame");
        }
    }

    fn published(&self) -> u64 {
        self.publish.property::<u64>("published")
    }

    /// Waits until the publisher counted `n` messages as taken by the broker.
    fn wait_published(&self, n: u64) {
        let deadline = std::time::Instant::now() + BOUND;
        while self.published() < n && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Pushes frames one by one, each once the broker took the one before (the broker is up).
    fn push_paced(&self, frames: std::ops::Range<u64>) {
        for n in frames {
            let before = self.published();
            self.push(n..n + 1);
            self.wait_published(before + 1);
        }
    }

    /// Waits until `n` buffers went through the publisher.
    fn wait_passed(&self, n: u64) {
        let deadline = std::time::Instant::now() + BOUND;
        while self.passed.load(Ordering::SeqCst) < n && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until `n` messages are published or dropped.
    fn wait_accounted(&self, n: u64) {
        let deadline = std::time::Instant::now() + BOUND;
        while self.published() + self.publish.property::<u64>("dropped") < n
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for a warning containing `needle` (the publisher thread posts it in its own time);
    /// returns it.
    fn wait_warning(&self, needle: &str) -> Option<String> {
        let bus = self.pipeline.bus().unwrap();
        let deadline = std::time::Instant::now() + BOUND;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let msg = bus.timed_pop_filtered(
                gst::ClockTime::try_from(left).ok(),
                &[gst::MessageType::Warning],
            )?;
            if let gst::MessageView::Warning(w) = msg.view()
                && w.error().to_string().contains(needle)
            {
                return Some(w.error().to_string());
            }
        }
    }

    /// The first error on the bus (within the bound).
    fn wait_error(&self) -> Option<String> {
        let msg = self.pipeline.bus().unwrap().timed_pop_filtered(
            gst::ClockTime::try_from(BOUND).ok(),
            &[gst::MessageType::Error],
        )?;
        let gst::MessageView::Error(e) = msg.view() else {
            unreachable!()
        };
        Some(format!("{} ({})", e.error(), e.debug().unwrap_or_default()))
    }

    /// Ends the stream; returns the warnings and errors seen on the bus on the way to EOS (an
    /// error ends the wait too), then stops the pipeline.
    fn finish(self) -> (Vec<String>, Vec<String>) {
        let _ = self.src.end_of_stream();
        let bus = self.pipeline.bus().unwrap();
        let (mut warnings, mut errors) = (Vec::new(), Vec::new());
        let deadline = std::time::Instant::now() + BOUND;
        while let Some(msg) = bus.timed_pop(
            gst::ClockTime::try_from(deadline.saturating_duration_since(std::time::Instant::now()))
                .ok(),
        ) {
            match msg.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
                gst::MessageView::Error(e) => {
                    errors.push(format!("{} ({})", e.error(), e.debug().unwrap_or_default()));
                    break;
                }
                _ => {}
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no EOS within {BOUND:?}"
            );
        }
        self.pipeline.set_state(gst::State::Null).unwrap();
        (warnings, errors)
    }
}

/// The frame number (face id) and source of each message, checking each is a well-formed one.
fn frames_of(messages: &[(String, String)]) -> Vec<(String, u64)> {
    messages
        .iter()
        .map(|(_, json)| {
            assert!(json.starts_with("{\"source\":\""), "{json}");
            assert!(
                json.contains("\"width\":160,\"height\":120,\"faces\":[{\"id\":"),
                "{json}"
            );
            let source = json.split('"').nth(3).unwrap().to_owned();
            let id: u64 = json
                .split("\"faces\":[{\"id\":")
                .nth(1)
                .and_then(|rest| rest.split(',').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no face id in {json}"));
            let pts = format!("\"pts\":{},", id * 40_000_000);
            assert!(json.contains(&pts), "frame {id} with the wrong pts: {json}");
            (source, id)
        })
        .collect()
}

#[test]
fn every_frame_arrives_once_and_in_order_at_qos_1() {
    if !broker::mosquitto_or_skip("every_frame_arrives_once_and_in_order_at_qos_1") {
        return;
    }
    let broker = Broker::start(&scratch("once"), Access::Anonymous);
    let sub = Subscriber::start(&broker.address(), "facepose/test", "sub-once");
    let run = Run::new(&format!(
        "address={} topic=facepose/test qos=1 source=cam1",
        broker.address()
    ));
    run.push(0..200);
    let (warnings, errors) = run.finish();
    assert!(
        errors.is_empty() && warnings.is_empty(),
        "{errors:?} {warnings:?}"
    );
    let got = frames_of(&sub.wait_for(200, BOUND));
    let want: Vec<_> = (0..200).map(|n| ("cam1".to_owned(), n)).collect();
    assert_eq!(got, want);
    // Nothing more comes afterwards (no duplicate).
    assert_eq!(sub.wait_for(201, Duration::from_millis(500)).len(), 200);
}

#[test]
fn a_broker_restart_loses_nothing_beyond_max_queued_and_counts_the_dropped() {
    if !broker::mosquitto_or_skip("a_broker_restart_loses_nothing_beyond_max_queued") {
        return;
    }
    let mut broker = Broker::start(&scratch("restart"), Access::Anonymous);
    let sub = Subscriber::start(&broker.address(), "facepose/restart", "sub-restart");
    let run = Run::new(&format!(
        "address={} topic=facepose/restart max-queued=10",
        broker.address()
    ));
    run.push_paced(0..30);
    run.wait_published(30);
    assert_eq!(run.published(), 30);
    broker.stop();
    // The video goes on while the broker is away: 50 frames, of which 10 queued and perhaps one
    // in flight survive.
    run.push(30..80);
    run.wait_passed(80);
    broker.restart();
    run.wait_accounted(80);
    run.push_paced(80..100);
    let publish = run.publish.clone();
    let (warnings, errors) = run.finish();
    assert!(errors.is_empty(), "{errors:?}");
    let dropped = publish.property::<u64>("dropped");
    let published = publish.property::<u64>("published");
    assert!(
        (39..=40).contains(&dropped),
        "{dropped} dropped of 50 sent while the broker was away with max-queued=10"
    );
    assert_eq!(
        published + dropped,
        100,
        "published {published}, dropped {dropped}"
    );
    let got = frames_of(&sub.wait_for((100 - dropped) as usize, BOUND));
    let mut ids: Vec<u64> = got.iter().map(|(_, id)| *id).collect();
    ids.dedup();
    assert_eq!(ids.len() as u64, 100 - dropped, "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "out of order: {ids:?}");
    // What was dropped is the oldest of the outage: the first 30 and the last 20 all arrived.
    assert!((0..30).chain(80..100).all(|n| ids.contains(&n)), "{ids:?}");
    assert!(
        warnings.iter().any(|w| w.contains("dropping the oldest")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&format!("{dropped} message(s) were dropped"))),
        "no warning counts the {dropped} dropped: {warnings:?}"
    );
}

#[test]
fn an_unreachable_broker_warns_and_the_video_plays_on() {
    init();
    let port = broker::free_port();
    let run = Run::new(&format!(
        "address=127.0.0.1:{port} topic=facepose/none max-queued=5"
    ));
    run.push(0..50);
    let warning = run
        .wait_warning("Cannot reach the MQTT broker")
        .expect("a warning that the broker cannot be reached");
    assert!(warning.contains(&format!("127.0.0.1:{port}")), "{warning}");
    let publish = run.publish.clone();
    let (_, errors) = run.finish();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(publish.property::<u64>("published"), 0);
    assert!(publish.property::<u64>("dropped") >= 45);
}

#[test]
fn wrong_credentials_are_a_clear_error() {
    if !broker::mosquitto_or_skip("wrong_credentials_are_a_clear_error") {
        return;
    }
    let broker = Broker::start(
        &scratch("auth"),
        Access::Password("camera".into(), "right".into()),
    );
    let run = Run::new(&format!(
        "address={} topic=facepose/auth username=camera password=wrong",
        broker.address()
    ));
    run.push(0..5);
    let error = run.wait_error().expect("an error on the bus");
    assert!(
        error.contains("refused the connection") && error.contains(&broker.address()),
        "{error}"
    );
    run.pipeline.set_state(gst::State::Null).unwrap();
    // The right password gets through.
    let sub_ok = Run::new(&format!(
        "address={} topic=facepose/auth username=camera password=right",
        broker.address()
    ));
    sub_ok.push(0..3);
    sub_ok.wait_published(3);
    let (_, errors) = sub_ok.finish();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn bad_settings_name_the_property() {
    init();
    for (props, property) in [
        ("address=nohost", "address"),
        ("topic=a/+/b", "topic"),
        ("tls-cert=/x.pem tls-key=/y.pem", "tls-ca"),
        ("tls-ca=/nonexistent/ca.pem", "/nonexistent/ca.pem"),
        ("password=secret", "password"),
    ] {
        let pipeline =
            gst::parse::launch(&format!("appsrc ! faceposepublish {props} ! fakesink")).unwrap();
        assert!(pipeline.set_state(gst::State::Paused).is_err(), "{props}");
        let msg = pipeline
            .bus()
            .unwrap()
            .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
            .expect("an error message");
        let gst::MessageView::Error(e) = msg.view() else {
            unreachable!()
        };
        assert!(
            e.error().to_string().contains(property),
            "{props}: {}",
            e.error()
        );
        pipeline.set_state(gst::State::Null).unwrap();
    }
}

#[test]
fn eight_publishers_share_one_broker() {
    if !broker::mosquitto_or_skip("eight_publishers_share_one_broker") {
        return;
    }
    let broker = Broker::start(&scratch("eight"), Access::Anonymous);
    let sub = Subscriber::start(&broker.address(), "facepose/#", "sub-eight");
    let runs: Vec<Run> = (0..8)
        .map(|i| {
            Run::new(&format!(
                "address={} topic=facepose/cam{i} source=cam{i}",
                broker.address()
            ))
        })
        .collect();
    for n in 0..50 {
        for r in &runs {
            r.push(n..n + 1);
        }
    }

    for r in runs {
        let (warnings, errors) = r.finish();
        assert!(
            errors.is_empty() && warnings.is_empty(),
            "{errors:?} {warnings:?}"
        );
    }
    let messages = sub.wait_for(400, BOUND);
    let got = frames_of(&messages);
    assert_eq!(got.len(), 400);
    for i in 0..8 {
        let source = format!("cam{i}");
        let ids: Vec<u64> = got
            .iter()
            .filter(|(s, _)| *s == source)
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(ids, (0..50).collect::<Vec<_>>(), "{source}");
        assert!(
            messages
                .iter()
                .filter(|(_, j)| j.contains(&format!("\"source\":\"{source}\"")))
                .all(|(t, _)| *t == format!("facepose/{source}"))
        );
    }
}

/// A CA, and a server certificate for 127.0.0.1 signed by it (openssl), in `dir`.
fn make_certificates(dir: &std::path::Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").ok()?;
    let ok = run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=facepose test CA",
    ]) && run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    ]);
    ok.then(|| {
        (
            dir.join("ca.pem"),
            dir.join("server.pem"),
            dir.join("server.key"),
        )
    })
}

#[test]
fn tls_connections_are_checked_against_tls_ca() {
    if !broker::mosquitto_or_skip("tls_connections_are_checked_against_tls_ca") {
        return;
    }
    let dir = scratch("tls");
    let Some((ca, cert, key)) = make_certificates(&dir) else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "openssl cannot make test certificates"
        );
        eprintln!(
            "SKIPPED tls_connections_are_checked_against_tls_ca: openssl cannot make test certificates"
        );
        return;
    };
    let broker = Broker::start(&dir.join("broker"), Access::Tls(ca.clone(), cert, key));
    let run = Run::new(&format!(
        "address={} topic=facepose/tls tls-ca={}",
        broker.address(),
        ca.display()
    ));
    run.push(0..10);
    run.wait_published(10);
    assert_eq!(run.published(), 10);
    let (warnings, errors) = run.finish();
    assert!(
        errors.is_empty() && warnings.is_empty(),
        "{errors:?} {warnings:?}"
    );
}

#[path = "../examples/mqtt_faces.rs"]
#[allow(dead_code)]
mod mqtt_faces;

/// pipelines/mqtt-publish.txt with the astronaut picture (5 frames) and the test broker: one
/// message per frame reaches a subscriber, each with the face, as the example app prints them.
#[test]
fn the_documented_pipeline_delivers_one_message_per_frame() {
    if !broker::mosquitto_or_skip("the_documented_pipeline_delivers_one_message_per_frame") {
        return;
    }
    init();
    let broker = Broker::start(&scratch("pipeline"), Access::Anonymous);
    let sub = Subscriber::start(&broker.address(), "facepose/#", "sub-pipeline");
    let project = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(project.join("pipelines/mqtt-publish.txt")).unwrap();
    let line: String = text.lines().filter(|l| !l.starts_with('#')).collect();
    let picture = gstfacepose::engine::default_model_dir().join("samples/astronaut.png");
    let description = line
        .replace(
            "filesrc location=INPUT.mp4 ! decodebin",
            &format!(
                "filesrc location=\"{}\" ! pngdec ! imagefreeze num-buffers=5",
                picture.display()
            ),
        )
        .replace(
            "address=127.0.0.1:1883",
            &format!("address={}", broker.address()),
        );
    assert!(!description.contains("INPUT") && description.contains(&broker.address()));
    let pipeline = gst::parse::launch(&description).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::try_from(BOUND).ok(),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    pipeline.set_state(gst::State::Null).unwrap();
    let messages = sub.wait_for(5, BOUND);
    assert_eq!(messages.len(), 5);
    for (n, (topic, json)) in messages.iter().enumerate() {
        assert_eq!(topic, "facepose/cam1");
        let line = mqtt_faces::describe(topic, json.as_bytes()).unwrap();
        eprintln!("{line}");
        assert!(line.starts_with("facepose/cam1 cam1 pts="), "{line}");
        assert!(line.contains(" faces=1 | #"), "frame {n}: {line}");
    }
    assert_eq!(sub.wait_for(6, Duration::from_millis(500)).len(), 5);
}
