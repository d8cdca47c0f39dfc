// SPDX-License-Identifier: MPL-2.0
//! The element reports its processing time in latency queries, asks the pipeline to recompute
//! the latency when it grows, and has QoS on by default.

#[path = "support/mod.rs"]
mod support;

use gst::prelude::*;

fn init() {
    gst::init().unwrap();
    gstfacepose::plugin_register_static().ok();
}

#[test]
fn a_live_pipeline_includes_the_processing_time_in_its_latency() {
    init();
    let picture = &support::sample_pictures()[0];
    assert!(picture.exists(), "run `make models`");
    // A live camera-like source at 10 frames/s with a face; detection on every frame.
    let description = format!(
        "filesrc location=\"{}\" ! pngdec ! videoconvert ! imagefreeze is-live=true ! \
         video/x-raw,framerate=10/1 ! faceposeestimator name=est detection-interval=1 ! \
         fakesink name=sink sync=true",
        picture.display()
    );
    let pipeline = gst::parse::launch(&description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let estimator = pipeline.by_name("est").unwrap();
    assert!(
        estimator.property::<bool>("qos"),
        "QoS is on by default so late frames of live sources are dropped"
    );
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    // Wait for a latency message from the element (posted once frames have been timed).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut asked = false;
    while std::time::Instant::now() < deadline {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Latency(_) if msg.src() == Some(estimator.upcast_ref()) => {
                asked = true;
                break;
            }
            gst::MessageView::Error(e) => panic!("pipeline error: {}", e.error()),
            _ => {}
        }
    }
    assert!(asked, "no latency message from the element within 20 s");

    let mut q = gst::query::Latency::new();
    assert!(
        estimator.static_pad("src").unwrap().query(&mut q),
        "latency query answered"
    );
    let (live, min, _max) = q.result();
    // Upstream (imagefreeze) reports no latency of its own: what we see is ours, at least one
    // frame's analysis (a detection at 640 px takes tens of milliseconds).
    assert!(live, "the pipeline is live");
    assert!(
        min >= gst::ClockTime::from_mseconds(5),
        "element latency {min} is less than any real analysis"
    );
    assert!(
        min < gst::ClockTime::from_seconds(10),
        "latency {min} absurd"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}
