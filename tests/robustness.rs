// SPDX-License-Identifier: MPL-2.0
//! The faceposeestimator element under the conditions of a camera that runs for weeks: streams
//! that change size and format, tiny and odd frames, padded strides, interlacing, gaps, seeks,
//! EOS, state cycling, properties changed from another thread, many elements at once, values out
//! of range, caps it cannot take and a wrong ONNX Runtime library.

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, OnceLock};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst_video::prelude::*;
use gst_video::{VideoFormat, VideoInfo, VideoRegionOfInterestMeta};
use gstfacepose::engine::Engine;
use support::Picture;

/// Detector input for most tests: four times faster than the default, and the astronaut's face
/// is large enough for it.
const INPUT_SIZE: u32 = 320;

/// Sets GStreamer up once; the guard runs the tests of this file one at a time, because each
/// loads models and keeps both cores busy, and the leak test measures the whole process.
fn init() -> MutexGuard<'static, ()> {
    static INIT: Once = Once::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfacepose::plugin_register_static().expect("registering the facepose plugin");
    });
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn astronaut() -> &'static Picture {
    static PICTURE: OnceLock<Picture> = OnceLock::new();
    PICTURE.get_or_init(|| {
        Picture::load(&support::sample_pictures()[0]).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn astronaut_path() -> PathBuf {
    support::sample_pictures()[0].clone()
}

/// The astronaut's face box in pixels as the engine finds it at [`INPUT_SIZE`], from the RGB
/// picture itself.
fn reference_box() -> [f64; 4] {
    static BOX: OnceLock<[f64; 4]> = OnceLock::new();
    *BOX.get_or_init(|| {
        let mut config = support::config().unwrap_or_else(|e| panic!("{e}"));
        config.detect.input_size = INPUT_SIZE as usize;
        let faces = Engine::new(config)
            .unwrap()
            .process(&astronaut().view())
            .unwrap();
        assert_eq!(faces.len(), 1, "the astronaut has one face");
        let b = faces[0].bbox;
        [b.x0 as f64, b.y0 as f64, b.x1 as f64, b.y1 as f64]
    })
}

/// Largest difference from [`reference_box`] on the same 512×512 picture for frames the element
/// may follow by their landmarks between detections (the default) rather than detect.
const TRACKED_PX: f64 = 3.0;
/// The same on another canvas size (the detector sees the face at another scale), or in YUV.
const OTHER_CANVAS_PX: f64 = 8.0;

/// [`reference_box`] moved by `(dx, dy)` pixels.
fn reference_at(dx: f64, dy: f64) -> [f64; 4] {
    let r = reference_box();
    [r[0] + dx, r[1] + dy, r[2] + dx, r[3] + dy]
}

fn assert_near(actual: [f64; 4], expected: [f64; 4], tolerance: f64, case: &str) {
    let worst = actual
        .iter()
        .zip(&expected)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= tolerance,
        "{case}: box {actual:?}, expected {expected:?} within {tolerance} px"
    );
}

// ---------------------------------------------------------------------------------------------
// Frames

/// Mid grey, around the picture.
const GREY: [u8; 3] = [128, 128, 128];

/// How the planes of a frame lie in its buffer.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// GStreamer's default strides and offsets, no video meta.
    Default,
    /// Every row `row` bytes longer than the default stride, `gap` bytes before every plane;
    /// described by a video meta.
    Padded { row: usize, gap: usize },
}

/// BT.601 limited range, as the element reads YUV of standard-definition sizes.
fn yuv(p: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (p[0] as f64, p[1] as f64, p[2] as f64);
    let y = 16.0 + (65.738 * r + 129.057 * g + 25.064 * b) / 256.0;
    let u = 128.0 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256.0;
    let v = 128.0 + (112.439 * r - 94.154 * g - 18.285 * b) / 256.0;
    [y, u, v].map(|c| c.round().clamp(0.0, 255.0) as u8)
}

/// A `format` frame of `width` × `height` with `picture` at its top-left corner (or nothing) on
/// grey, laid out as `layout` says.
fn frame(
    picture: Option<&Picture>,
    format: VideoFormat,
    width: u32,
    height: u32,
    layout: Layout,
) -> gst::Buffer {
    framed(picture, (0, 0), format, width, height, layout)
}

/// [`frame`] with the picture's top-left corner at `origin` in the frame (which may cut it).
fn framed(
    picture: Option<&Picture>,
    origin: (isize, isize),
    format: VideoFormat,
    width: u32,
    height: u32,
    layout: Layout,
) -> gst::Buffer {
    let info = VideoInfo::builder(format, width, height).build().unwrap();
    let planes = info.n_planes() as usize;
    let plane_rows = |i: usize| {
        if i == 0 {
            height as usize
        } else {
            (height as usize).div_ceil(2)
        }
    };
    let (strides, offsets, size) = match layout {
        Layout::Default => (
            info.stride()[..planes].to_vec(),
            info.offset()[..planes].to_vec(),
            info.size(),
        ),
        Layout::Padded { row, gap } => {
            let strides: Vec<i32> = info.stride()[..planes]
                .iter()
                .map(|s| *s + row as i32)
                .collect();
            let mut offsets = Vec::new();
            let mut end = 0;
            for (i, s) in strides.iter().enumerate() {
                offsets.push(end + gap);
                end += gap + *s as usize * plane_rows(i);
            }
            (strides, offsets, end)
        }
    };
    let (w, h) = (width as usize, height as usize);
    let rgb = |x: usize, y: usize| -> [u8; 3] {
        let (px, py) = (x as isize - origin.0, y as isize - origin.1);
        match picture {
            Some(p)
                if px >= 0 && py >= 0 && (px as usize) < p.width && (py as usize) < p.height =>
            {
                let (x, y) = (px as usize, py as usize);
                let i = (y * p.width + x) * 3;
                [p.data[i], p.data[i + 1], p.data[i + 2]]
            }
            _ => GREY,
        }
    };
    // Bytes nobody should read: a reader that ignores the layout sees stripes of them.
    let mut data = vec![0xa5u8; size];
    let at = |plane: usize, x: usize, y: usize, bytes: usize| {
        offsets[plane] + y * strides[plane] as usize + x * bytes
    };
    match format {
        VideoFormat::I420 | VideoFormat::Nv12 => {
            for y in 0..h {
                for x in 0..w {
                    data[at(0, x, y, 1)] = yuv(rgb(x, y))[0];
                }
            }
            for y in 0..h.div_ceil(2) {
                for x in 0..w.div_ceil(2) {
                    let [_, u, v] = yuv(rgb(2 * x, 2 * y));
                    if format == VideoFormat::I420 {
                        data[at(1, x, y, 1)] = u;
                        data[at(2, x, y, 1)] = v;
                    } else {
                        let i = at(1, x, y, 2);
                        data[i] = u;
                        data[i + 1] = v;
                    }
                }
            }
        }
        _ => {
            let bytes = info.comp_pstride(0) as usize;
            for y in 0..h {
                for x in 0..w {
                    let [r, g, b] = rgb(x, y);
                    let px: &[u8] = match format {
                        VideoFormat::Rgb => &[r, g, b],
                        VideoFormat::Bgr => &[b, g, r],
                        VideoFormat::Rgbx | VideoFormat::Rgba => &[r, g, b, 255],
                        VideoFormat::Bgrx | VideoFormat::Bgra => &[b, g, r, 255],
                        other => panic!("no test frames in {other:?}"),
                    };
                    let i = at(0, x, y, bytes);
                    data[i..i + bytes].copy_from_slice(px);
                }
            }
        }
    }
    let mut buffer = gst::Buffer::from_mut_slice(data);
    if let Layout::Padded { .. } = layout {
        gst_video::VideoMeta::add_full(
            buffer.get_mut().unwrap(),
            gst_video::VideoFrameFlags::empty(),
            format,
            width,
            height,
            &offsets,
            &strides,
        )
        .unwrap();
    }
    buffer
}

fn caps(format: VideoFormat, width: u32, height: u32) -> gst::Caps {
    VideoInfo::builder(format, width, height)
        .fps(gst::Fraction::new(25, 1))
        .build()
        .unwrap()
        .to_caps()
        .unwrap()
}

fn with_pts(mut buffer: gst::Buffer, pts: gst::ClockTime) -> gst::Buffer {
    let b = buffer.make_mut();
    b.set_pts(pts);
    b.set_duration(gst::ClockTime::from_mseconds(40));
    buffer
}

// ---------------------------------------------------------------------------------------------
// Reading the metadata

/// The `FacePoseMeta` structure of a buffer; panics when there is none.
fn frame_meta(buffer: &gst::BufferRef, case: &str) -> gst::Structure {
    gstfacepose::meta::frame_structure(buffer)
        .unwrap_or_else(|| panic!("{case}: no FacePoseMeta on the buffer"))
}

fn frame_size(meta: &gst::StructureRef) -> (u32, u32) {
    (
        meta.get::<u32>("width").unwrap(),
        meta.get::<u32>("height").unwrap(),
    )
}

/// The face boxes of a frame meta, in pixels.
fn boxes(meta: &gst::StructureRef) -> Vec<[f64; 4]> {
    let (w, h) = frame_size(meta);
    let (w, h) = (w as f64, h as f64);
    meta.get::<gst::Array>("faces")
        .unwrap()
        .iter()
        .map(|v| {
            let f = v.get::<gst::Structure>().unwrap();
            let g = |name: &str| f.get::<f64>(name).unwrap();
            [
                g("x_min") * w,
                g("y_min") * h,
                g("x_max") * w,
                g("y_max") * h,
            ]
        })
        .collect()
}

fn face_rois(buffer: &gst::BufferRef) -> usize {
    buffer
        .iter_meta::<VideoRegionOfInterestMeta>()
        .filter(|m| m.roi_type() == "face")
        .count()
}

fn frame_metas(buffer: &gst::BufferRef) -> usize {
    // A custom meta's API type is named after it.
    buffer
        .iter_meta::<gst::Meta>()
        .filter(|m| m.api().name().starts_with(gstfacepose::meta::FRAME_META))
        .count()
}

// ---------------------------------------------------------------------------------------------
// Elements and pipelines

fn estimator(properties: &[(&str, glib::Value)]) -> gst::Element {
    let mut builder = gst::ElementFactory::make("faceposeestimator");
    for (k, v) in properties {
        builder = builder.property(k, v.clone());
    }
    builder.build().unwrap()
}

fn harness(properties: &[(&str, glib::Value)]) -> gst_check::Harness {
    gst_check::Harness::with_element(&estimator(properties), Some("sink"), Some("src"))
}

fn launch(description: &str) -> gst::Pipeline {
    gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("{description}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap()
}

fn by_name<T: IsA<gst::Element>>(pipeline: &gst::Pipeline, name: &str) -> T {
    pipeline
        .by_name(name)
        .unwrap_or_else(|| panic!("no element {name}"))
        .downcast::<T>()
        .unwrap()
}

type Samples = Arc<Mutex<Vec<gst::Sample>>>;

/// Every sample the appsink `name` receives, as it arrives.
fn collect(pipeline: &gst::Pipeline, name: &str) -> Samples {
    let samples = Samples::default();
    let store = samples.clone();
    by_name::<gst_app::AppSink>(pipeline, name).set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                store.lock().unwrap().push(sample);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    samples
}

fn taken(samples: &Samples) -> Vec<gst::Sample> {
    std::mem::take(&mut *samples.lock().unwrap())
}

/// The bus's messages up to EOS or the first error (or `timeout`).
fn until_end(pipeline: &gst::Pipeline, timeout: Duration) -> Vec<gst::Message> {
    let bus = pipeline.bus().unwrap();
    let deadline = Instant::now() + timeout;
    let mut messages = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else {
            break;
        };
        let end = matches!(
            msg.view(),
            gst::MessageView::Eos(_) | gst::MessageView::Error(_)
        );
        messages.push(msg);
        if end {
            break;
        }
    }
    messages
}

fn errors(messages: &[gst::Message]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(format!(
                "{}: {} ({:?})",
                m.src().map(|s| s.path_string()).unwrap_or_default(),
                e.error(),
                e.debug()
            )),
            _ => None,
        })
        .collect()
}

fn assert_eos(messages: &[gst::Message], case: &str) {
    let errors = errors(messages);
    assert!(errors.is_empty(), "{case}: {errors:?}");
    assert!(
        messages
            .iter()
            .any(|m| matches!(m.view(), gst::MessageView::Eos(_))),
        "{case}: no EOS within the time limit"
    );
}

/// Plays `pipeline` to EOS and returns what its appsink `sink` received.
fn play_to_eos(pipeline: &gst::Pipeline, case: &str) -> Vec<gst::Sample> {
    let samples = collect(pipeline, "sink");
    pipeline.set_state(gst::State::Playing).unwrap();
    let messages = until_end(pipeline, Duration::from_secs(120));
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eos(&messages, case);
    taken(&samples)
}

fn astronaut_source(frames: u32, format: &str) -> String {
    format!(
        "filesrc location={} ! pngdec ! imagefreeze num-buffers={frames} ! videoconvert ! \
         video/x-raw,format={format}",
        astronaut_path().display()
    )
}

// ---------------------------------------------------------------------------------------------
// Streams that change under us

#[test]
fn caps_changes_mid_stream_give_each_buffer_a_meta_of_its_own_size() {
    let _serial = init();
    let pipeline = launch(&format!(
        "appsrc name=src format=time ! faceposeestimator detector-input-size={INPUT_SIZE} ! \
         appsink name=sink sync=false"
    ));
    let samples = collect(&pipeline, "sink");
    pipeline.set_state(gst::State::Playing).unwrap();
    let src = by_name::<gst_app::AppSrc>(&pipeline, "src");
    // (format, width, height, where the astronaut's top-left corner goes, faces): the face moves
    // with each change, so results carried over from the frames before would be wrong.
    let steps = [
        (VideoFormat::Rgb, 512, 512, (0, 0), 1),
        (VideoFormat::I420, 640, 480, (128, -16), 1),
        (VideoFormat::Nv12, 641, 479, (3, 41), 1),
        (VideoFormat::Rgb, 3, 5, (0, 0), 0),
        (VideoFormat::Bgrx, 320, 240, (-150, -40), 1),
        (VideoFormat::Rgb, 512, 512, (0, 0), 1),
    ];
    let mut n = 0;
    for (format, width, height, origin, _) in steps {
        let caps = caps(format, width, height);
        for _ in 0..2 {
            let buffer = framed(
                Some(astronaut()),
                origin,
                format,
                width,
                height,
                Layout::Default,
            );
            let buffer = with_pts(buffer, gst::ClockTime::from_mseconds(40 * n));
            n += 1;
            let sample = gst::Sample::builder().buffer(&buffer).caps(&caps).build();
            src.push_sample(&sample).unwrap();
        }
    }
    src.end_of_stream().unwrap();
    let messages = until_end(&pipeline, Duration::from_secs(120));
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eos(&messages, "caps changes");

    let samples = taken(&samples);
    assert_eq!(samples.len(), 2 * steps.len(), "every buffer comes out");
    for (i, sample) in samples.iter().enumerate() {
        let (format, width, height, origin, faces) = steps[i / 2];
        let case = format!("buffer {i} ({format:?} {width}x{height})");
        let info = VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        assert_eq!(
            (info.format(), info.width(), info.height()),
            (format, width, height),
            "{case}: caps"
        );
        let buffer = sample.buffer().unwrap();
        assert_eq!(
            buffer.pts(),
            Some(gst::ClockTime::from_mseconds(40 * i as u64))
        );
        let meta = frame_meta(buffer, &case);
        assert_eq!(frame_size(&meta), (width, height), "{case}: meta size");
        let found = boxes(&meta);
        assert_eq!(found.len(), faces, "{case}: faces {found:?}");
        assert_eq!(face_rois(buffer), faces, "{case}: ROI metas");
        if let Some(b) = found.first() {
            let expected = reference_at(origin.0 as f64, origin.1 as f64);
            assert_near(*b, expected, OTHER_CANVAS_PX, &case);
        }
    }
}

#[test]
fn tiny_and_odd_frame_sizes_are_processed_without_a_crash() {
    let _serial = init();
    let mut h = harness(&[("detector-input-size", INPUT_SIZE.to_value())]);
    let formats = [
        VideoFormat::Rgb,
        VideoFormat::Bgrx,
        VideoFormat::I420,
        VideoFormat::Nv12,
    ];
    let sizes = [
        (1, 1),
        (2, 1),
        (1, 2),
        (3, 5),
        (7, 3),
        (4000, 1),
        (1, 3000),
        (641, 479),
    ];
    let mut pts = 0;
    for format in formats {
        for (width, height) in sizes {
            let case = format!("{format:?} {width}x{height}");
            h.set_src_caps(caps(format, width, height));
            let input = frame(Some(astronaut()), format, width, height, Layout::Default);
            let original = input.map_readable().unwrap().to_vec();
            let out = h
                .push_and_pull(with_pts(input, gst::ClockTime::from_mseconds(pts)))
                .unwrap_or_else(|e| panic!("{case}: no buffer out: {e}"));
            pts += 40;
            assert_eq!(
                out.map_readable().unwrap().as_slice(),
                original.as_slice(),
                "{case}: pixels changed"
            );
            let meta = frame_meta(&out, &case);
            assert_eq!(frame_size(&meta), (width, height), "{case}");
            let found = boxes(&meta);
            if (width, height) == (641, 479) {
                assert_eq!(found.len(), 1, "{case}: {found:?}");
                assert_near(found[0], reference_box(), OTHER_CANVAS_PX, &case);
            } else {
                assert!(found.is_empty(), "{case}: faces in a tiny frame {found:?}");
            }
        }
    }
}

#[test]
fn padded_strides_and_plane_offsets_give_the_same_faces_as_plain_frames() {
    let _serial = init();
    // The detector on every frame, so that equal pixels must give equal results.
    let mut h = harness(&[
        ("detector-input-size", INPUT_SIZE.to_value()),
        ("detection-interval", 1u32.to_value()),
    ]);
    let (width, height) = (641, 479);
    for format in [
        VideoFormat::Rgb,
        VideoFormat::Bgrx,
        VideoFormat::I420,
        VideoFormat::Nv12,
    ] {
        h.set_src_caps(caps(format, width, height));
        let mut results = Vec::new();
        for layout in [
            Layout::Default,
            Layout::Padded { row: 37, gap: 0 },
            Layout::Padded {
                row: 64,
                gap: 4096 + 13,
            },
        ] {
            let case = format!("{format:?} {layout:?}");
            let input = frame(Some(astronaut()), format, width, height, layout);
            let out = h.push_and_pull(input).unwrap();
            let meta = frame_meta(&out, &case);
            assert_eq!(frame_size(&meta), (width, height), "{case}");
            let found = boxes(&meta);
            assert_eq!(found.len(), 1, "{case}: {found:?}");
            results.push((case, found[0]));
        }
        // The element must read exactly the same pixels whatever the layout.
        let (plain_case, plain) = &results[0];
        assert_near(*plain, reference_box(), OTHER_CANVAS_PX, plain_case);
        for (case, b) in &results[1..] {
            assert_near(*b, *plain, 0.01, case);
        }
    }
}

#[test]
fn cropping_and_bordering_upstream_move_the_face_by_exactly_that() {
    let _serial = init();
    let r = reference_box();
    // (format, element, shift of the picture in the frame)
    let cases = [
        (
            "RGB",
            "videocrop left=100 top=20 right=30 bottom=40",
            -100.0,
            -20.0,
        ),
        (
            "I420",
            "videocrop left=100 top=20 right=30 bottom=40",
            -100.0,
            -20.0,
        ),
        (
            "NV12",
            "videocrop left=100 top=20 right=30 bottom=40",
            -100.0,
            -20.0,
        ),
        (
            "BGRx",
            "videocrop left=101 top=21 right=31 bottom=41",
            -101.0,
            -21.0,
        ),
        (
            "RGB",
            "videobox left=-40 top=-24 right=-16 bottom=-8",
            40.0,
            24.0,
        ),
        (
            "I420",
            "videobox left=-40 top=-24 right=-16 bottom=-8",
            40.0,
            24.0,
        ),
        ("BGRx", "videobox left=60 top=10", -60.0, -10.0),
    ];
    for (format, element, dx, dy) in cases {
        let case = format!("{format} {element}");
        let pipeline = launch(&format!(
            "{} ! {element} ! faceposeestimator detector-input-size={INPUT_SIZE} ! \
             appsink name=sink sync=false",
            astronaut_source(1, format)
        ));
        let samples = play_to_eos(&pipeline, &case);
        assert_eq!(samples.len(), 1, "{case}");
        let buffer = samples[0].buffer().unwrap();
        let info = VideoInfo::from_caps(samples[0].caps().unwrap()).unwrap();
        let meta = frame_meta(buffer, &case);
        assert_eq!(frame_size(&meta), (info.width(), info.height()), "{case}");
        let found = boxes(&meta);
        assert_eq!(found.len(), 1, "{case}: {found:?}");
        let expected = [r[0] + dx, r[1] + dy, r[2] + dx, r[3] + dy];
        // Chroma subsampling moves odd crops by up to a pixel.
        assert_near(found[0], expected, OTHER_CANVAS_PX, &case);
    }
}

#[test]
fn interleaved_video_is_processed_as_whole_frames_and_alternate_fields_are_refused() {
    let _serial = init();
    let element = estimator(&[
        ("detector-input-size", INPUT_SIZE.to_value()),
        ("detection-interval", 1u32.to_value()),
    ]);
    let sink = element.static_pad("sink").unwrap();
    let interlaced = |mode: &str| {
        let mut c = caps(VideoFormat::Rgb, 512, 512);
        c.make_mut().set("interlace-mode", mode);
        c
    };
    assert!(sink.query_accept_caps(&interlaced("interleaved")));
    assert!(sink.query_accept_caps(&interlaced("mixed")));
    // One field per buffer needs the format:Interlaced caps feature, which the element does not
    // list: it is refused at negotiation, before any buffer.
    let mut alternate = interlaced("alternate");
    alternate
        .make_mut()
        .set_features_simple(Some(gst::CapsFeatures::new(["format:Interlaced"])));
    assert!(!sink.query_accept_caps(&alternate));

    let mut h = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    for mode in ["interleaved", "mixed"] {
        h.set_src_caps(interlaced(mode));
        let mut input = frame(
            Some(astronaut()),
            VideoFormat::Rgb,
            512,
            512,
            Layout::Default,
        );
        if mode == "mixed" {
            let b = input.make_mut();
            b.set_video_flags(
                gst_video::VideoBufferFlags::INTERLACED | gst_video::VideoBufferFlags::TFF,
            );
        }
        let out = h.push_and_pull(input).unwrap();
        let meta = frame_meta(&out, mode);
        assert_eq!(frame_size(&meta), (512, 512), "{mode}");
        let found = boxes(&meta);
        assert_eq!(found.len(), 1, "{mode}: {found:?}");
        assert_near(found[0], reference_box(), 0.01, mode);
    }
}

#[test]
fn gap_events_pass_and_gap_buffers_come_out_flagged_with_a_meta() {
    let _serial = init();
    let mut h = harness(&[
        ("detector-input-size", INPUT_SIZE.to_value()),
        // Every frame through the detector: a face after a faceless frame is found at once.
        ("detection-interval", 1u32.to_value()),
    ]);
    h.set_src_caps(caps(VideoFormat::Rgb, 512, 512));
    let ms = gst::ClockTime::from_mseconds;
    let face = || {
        frame(
            Some(astronaut()),
            VideoFormat::Rgb,
            512,
            512,
            Layout::Default,
        )
    };

    let out = h.push_and_pull(with_pts(face(), ms(0))).unwrap();
    assert_eq!(boxes(&frame_meta(&out, "first frame")).len(), 1);

    assert!(h.push_event(gst::event::Gap::builder(ms(40)).duration(ms(40)).build()));
    let gap = loop {
        let event = h.pull_event().expect("the gap event downstream");
        if let gst::EventView::Gap(g) = event.view() {
            break g.get();
        }
    };
    assert_eq!(gap, (ms(40), Some(ms(40))));

    // A GAP buffer (no real content, here black) still comes out, still flagged; it is analysed
    // like any frame, so it carries a FacePoseMeta (here without faces).
    let mut blank = frame(None, VideoFormat::Rgb, 512, 512, Layout::Default);
    blank.make_mut().set_flags(gst::BufferFlags::GAP);
    let out = h.push_and_pull(with_pts(blank, ms(80))).unwrap();
    assert!(out.flags().contains(gst::BufferFlags::GAP));
    assert_eq!(out.pts(), Some(ms(80)));
    assert!(boxes(&frame_meta(&out, "gap buffer")).is_empty());

    let out = h.push_and_pull(with_pts(face(), ms(120))).unwrap();
    assert_eq!(out.pts(), Some(ms(120)));
    assert_eq!(boxes(&frame_meta(&out, "after the gap")).len(), 1);
}

/// The `facepose` element messages among `messages`.
fn facepose_messages(messages: &[gst::Message]) -> Vec<gst::Structure> {
    messages
        .iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Element(e) => e
                .structure()
                .filter(|s| s.name() == "facepose")
                .map(|s| s.to_owned()),
            _ => None,
        })
        .collect()
}

/// Waits until `samples` holds at least `n` samples; panics naming `case` after a minute.
fn wait_for(samples: &Samples, n: usize, case: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while samples.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "{case}: only {} of {n} buffers",
            samples.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn flushing_seeks_while_playing_keep_the_metadata_right() {
    let _serial = init();
    let pipeline = launch(&format!(
        "filesrc location={} ! pngdec ! imagefreeze ! videoconvert ! \
         video/x-raw,format=RGB,framerate=25/1 ! faceposeestimator name=f \
         detector-input-size={INPUT_SIZE} post-messages=true ! appsink name=sink sync=false",
        astronaut_path().display()
    ));
    let samples = collect(&pipeline, "sink");
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    wait_for(&samples, 3, "before the seeks");
    let mut messages = Vec::new();
    for target in [100u64, 7, 3600, 0] {
        let case = format!("after the seek to {target} s");
        let target = gst::ClockTime::from_seconds(target);
        pipeline
            .seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE, target)
            .unwrap();
        // Buffers from before the seek may still be on their way while it runs.
        taken(&samples);
        wait_for(&samples, 3, &case);
        let got = taken(&samples);
        messages.extend(bus.iter_filtered(&[gst::MessageType::Element, gst::MessageType::Error]));
        let errors = errors(&messages);
        assert!(errors.is_empty(), "{case}: {errors:?}");
        let posted = facepose_messages(&messages);
        let after: Vec<&gst::Sample> = got
            .iter()
            .filter(|s| s.buffer().unwrap().pts() >= Some(target))
            .collect();
        assert!(after.len() >= 3, "{case}: {} new buffers", after.len());
        assert_eq!(
            after[0].buffer().unwrap().pts(),
            Some(target),
            "{case}: the first buffer starts at the seek position"
        );
        for sample in &after {
            let buffer = sample.buffer().unwrap();
            let meta = frame_meta(buffer, &case);
            assert_eq!(frame_size(&meta), (512, 512), "{case}");
            let found = boxes(&meta);
            assert_eq!(found.len(), 1, "{case}: {found:?}");
            assert_near(found[0], reference_box(), TRACKED_PX, &case);
            assert_eq!(
                frame_metas(buffer),
                1,
                "{case}: one FacePoseMeta per buffer"
            );
            assert_eq!(face_rois(buffer), 1, "{case}: one ROI per face");
            // The message of this very buffer carries its timestamp and its stream time.
            let message = posted
                .iter()
                .find(|s| s.get::<Option<gst::ClockTime>>("timestamp").unwrap() == buffer.pts())
                .unwrap_or_else(|| panic!("{case}: no message for {:?}", buffer.pts()));
            assert_eq!(
                message
                    .get::<Option<gst::ClockTime>>("stream-time")
                    .unwrap(),
                buffer.pts(),
                "{case}"
            );
            assert_eq!(message.get::<gst::Array>("faces").unwrap().len(), 1);
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

// ---------------------------------------------------------------------------------------------
// EOS and state changes

#[test]
fn eos_flushes_every_json_line_while_still_playing_and_passes_without_buffers() {
    let _serial = init();
    let dir = std::env::temp_dir().join(format!("facepose-robustness-eos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("faces.jsonl");
    let pipeline = launch(&format!(
        "{} ! faceposeestimator detector-input-size={INPUT_SIZE} json-location={} ! \
         appsink name=sink sync=false",
        astronaut_source(5, "RGB"),
        json.display()
    ));
    let samples = collect(&pipeline, "sink");
    pipeline.set_state(gst::State::Playing).unwrap();
    let messages = until_end(&pipeline, Duration::from_secs(120));
    assert_eos(&messages, "EOS with JSON");
    // Still PLAYING: the lines must be on disk already, not only at stop.
    let text = std::fs::read_to_string(&json).unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(taken(&samples).len(), 5);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("{\"pts\"")).collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines.iter().all(|l| l.contains("\"box\"")), "{text}");

    // EOS before any buffer (and before caps): it passes, nothing breaks, the file is empty.
    let empty = dir.join("empty.jsonl");
    let mut h = harness(&[("json-location", empty.display().to_string().to_value())]);
    assert!(h.push_event(gst::event::Eos::new()));
    let eos = loop {
        let event = h.pull_event().expect("EOS downstream");
        if event.type_() == gst::EventType::Eos {
            break event;
        }
    };
    assert_eq!(eos.type_(), gst::EventType::Eos);
    assert_eq!(std::fs::read_to_string(&empty).unwrap(), "");
    drop(h);
    std::fs::remove_dir_all(&dir).ok();
}

/// Threads and resident memory of this process, from /proc.
fn threads_and_rss_kib() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> usize {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
    };
    (field("Threads:"), field("VmRSS:"))
}

#[test]
fn null_playing_null_a_hundred_times_without_leaking() {
    let _serial = init();
    let pipeline = launch(
        "videotestsrc num-buffers=1 ! video/x-raw,format=I420,width=16,height=12 ! \
         faceposeestimator name=f detector-input-size=32 ! appsink name=sink sync=false",
    );
    let element = pipeline.by_name("f").unwrap();
    let samples = collect(&pipeline, "sink");
    let started = Instant::now();
    let mut warm = (0, 0);
    for cycle in 0..100 {
        let case = format!("cycle {cycle}");
        pipeline.set_state(gst::State::Playing).unwrap();
        let messages = until_end(&pipeline, Duration::from_secs(30));
        assert_eos(&messages, &case);
        assert_eq!(
            element
                .property::<Option<String>>("active-execution-provider")
                .as_deref(),
            Some("cpu"),
            "{case}"
        );
        pipeline.set_state(gst::State::Null).unwrap();
        assert_eq!(
            element.property::<Option<String>>("active-execution-provider"),
            None,
            "{case}: the engine is released at NULL"
        );
        let got = taken(&samples);
        assert_eq!(got.len(), 1, "{case}");
        frame_meta(got[0].buffer().unwrap(), &case);
        if cycle == 9 {
            warm = threads_and_rss_kib();
        }
    }
    let elapsed = started.elapsed();
    let (threads, rss) = threads_and_rss_kib();
    println!(
        "100 cycles in {elapsed:?}; threads {} -> {threads}, RSS {} -> {rss} KiB",
        warm.0, warm.1
    );
    // A leaked engine keeps its ONNX Runtime thread pools and about 20 MB of models.
    assert!(
        threads <= warm.0 + 4,
        "threads grew from {} to {threads}",
        warm.0
    );
    assert!(
        rss <= warm.1 + 150 * 1024,
        "resident memory grew from {} to {rss} KiB over 90 cycles",
        warm.1
    );
    assert!(
        elapsed < Duration::from_secs(90),
        "100 cycles took {elapsed:?}"
    );
}

#[test]
fn paused_playing_cycles_keep_frames_and_metadata_flowing() {
    let _serial = init();
    let pipeline = launch(&format!(
        "filesrc location={} ! pngdec ! imagefreeze ! videoconvert ! \
         video/x-raw,format=RGB,framerate=50/1 ! faceposeestimator \
         detector-input-size={INPUT_SIZE} ! appsink name=sink sync=true",
        astronaut_path().display()
    ));
    let samples = collect(&pipeline, "sink");
    let bus = pipeline.bus().unwrap();
    let mut seen = Vec::new();
    for cycle in 0..15 {
        pipeline.set_state(gst::State::Playing).unwrap();
        let before = samples.lock().unwrap().len();
        wait_for(&samples, before + 2, &format!("PLAYING {cycle}"));
        pipeline.set_state(gst::State::Paused).unwrap();
        let (result, _, _) = pipeline.state(gst::ClockTime::from_seconds(30));
        result.unwrap_or_else(|e| panic!("PAUSED {cycle}: {e:?}"));
        seen.extend(taken(&samples));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let messages: Vec<gst::Message> = bus.iter().collect();
    let errors = errors(&messages);
    assert!(errors.is_empty(), "{errors:?}");
    let mut last = None;
    for (i, sample) in seen.iter().enumerate() {
        let buffer = sample.buffer().unwrap();
        let case = format!("buffer {i}");
        assert!(buffer.pts() > last, "{case}: timestamps go forward");
        last = buffer.pts();
        let found = boxes(&frame_meta(buffer, &case));
        assert_eq!(found.len(), 1, "{case}");
        assert_near(found[0], reference_box(), TRACKED_PX, &case);
    }
    assert!(seen.len() >= 30, "{} buffers", seen.len());
}

/// The `n`th minimum face size of the property test: well below or well above the astronaut's
/// face (90×120 px). Not near it: the detector's other boxes around the face are up to 130 px
/// high, and a bound between the two keeps only those (with a loose `nms-threshold`, where
/// they survive beside the face's own box), as it should, though they are not
/// [`reference_box`].
fn min_face_size(n: u32) -> u32 {
    if n.is_multiple_of(2) {
        (n * 37) % 100
    } else {
        200 + (n * 37) % 200
    }
}

#[test]
fn properties_changed_from_another_thread_while_buffers_flow() {
    let _serial = init();
    let frames = 30;
    let pipeline = launch(&format!(
        "{} ! faceposeestimator name=f detector-input-size={INPUT_SIZE} ! \
         appsink name=sink sync=false",
        astronaut_source(frames, "RGB")
    ));
    let element = pipeline.by_name("f").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let changer = {
        let stop = stop.clone();
        let element = element.clone();
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                element.set_property("detection-threshold", 0.3 + (n % 7) as f32 * 0.1);
                element.set_property("max-faces", 1 + n % 256);
                element.set_property("draw", n.is_multiple_of(2));
                element.set_property("min-face-size", min_face_size(n));
                element.set_property("nms-threshold", 0.1 + (n % 9) as f32 * 0.1);
                element.set_property("post-messages", n.is_multiple_of(3));
                element.set_property("detection-interval", n % 5);
                element.set_property("smoothing", (n % 11) as f64 * 0.1);
                n += 1;
                std::thread::sleep(Duration::from_micros(500));
            }
            n
        })
    };
    let samples = collect(&pipeline, "sink");
    pipeline.set_state(gst::State::Playing).unwrap();
    let messages = until_end(&pipeline, Duration::from_secs(120));
    stop.store(true, Ordering::Relaxed);
    let changes = changer.join().unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eos(&messages, "property changes");
    assert!(changes > 10, "only {changes} rounds of changes");
    let samples = taken(&samples);
    assert_eq!(samples.len(), frames as usize, "every buffer comes out");
    for (i, sample) in samples.iter().enumerate() {
        let case = format!("buffer {i}");
        let buffer = sample.buffer().unwrap();
        let meta = frame_meta(buffer, &case);
        let found = boxes(&meta);
        // The face is 90×120 px: with min-face-size above that it is dropped, otherwise found.
        assert!(found.len() <= 1, "{case}: {found:?}");
        assert_eq!(meta.get::<u32>("face-count").unwrap() as usize, found.len());
        assert_eq!(face_rois(buffer), found.len(), "{case}");
        for b in &found {
            assert_near(*b, reference_box(), TRACKED_PX, &case);
        }
    }
}

#[test]
fn each_buffer_carries_the_faces_of_its_own_content() {
    let _serial = init();
    let dir = std::env::temp_dir().join(format!("facepose-robustness-own-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("faces.jsonl");
    let pipeline = launch(&format!(
        "appsrc name=src format=time ! queue ! faceposeestimator \
         detector-input-size={INPUT_SIZE} detection-interval=1 post-messages=true \
         json-location={} ! queue ! \
         appsink name=sink sync=false",
        json.display()
    ));
    let samples = collect(&pipeline, "sink");
    let src = by_name::<gst_app::AppSrc>(&pipeline, "src");
    src.set_caps(Some(&caps(VideoFormat::Rgb, 512, 512)));
    pipeline.set_state(gst::State::Playing).unwrap();
    let frames = 12u64;
    // Face, blank, face, blank... with irregular timestamps.
    let pts = |i: u64| gst::ClockTime::from_mseconds(i * 40 + (i * i) % 7);
    for i in 0..frames {
        let picture = i.is_multiple_of(2).then(astronaut);
        let buffer = frame(picture, VideoFormat::Rgb, 512, 512, Layout::Default);
        src.push_buffer(with_pts(buffer, pts(i))).unwrap();
    }
    src.end_of_stream().unwrap();
    let messages = until_end(&pipeline, Duration::from_secs(120));
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eos(&messages, "alternating frames");

    let samples = taken(&samples);
    assert_eq!(samples.len(), frames as usize);
    let posted = facepose_messages(&messages);
    assert_eq!(posted.len(), frames as usize);
    let text = std::fs::read_to_string(&json).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("{\"pts\"")).collect();
    assert_eq!(lines.len(), frames as usize, "{text}");
    for (i, sample) in samples.iter().enumerate() {
        let i = i as u64;
        let case = format!("buffer {i}");
        let buffer = sample.buffer().unwrap();
        assert_eq!(buffer.pts(), Some(pts(i)), "{case}: order kept");
        let expected = if i.is_multiple_of(2) { 1 } else { 0 };
        let found = boxes(&frame_meta(buffer, &case));
        assert_eq!(found.len(), expected, "{case}: {found:?}");
        assert_eq!(face_rois(buffer), expected, "{case}");
        assert_eq!(
            posted[i as usize]
                .get::<Option<gst::ClockTime>>("timestamp")
                .unwrap(),
            buffer.pts(),
            "{case}: message timestamp"
        );
        assert_eq!(
            posted[i as usize].get::<gst::Array>("faces").unwrap().len(),
            expected,
            "{case}: message faces"
        );
        let line = lines[i as usize];
        assert!(
            line.starts_with(&format!("{{\"pts\":{},", pts(i).nseconds())),
            "{case}: {line}"
        );
        assert_eq!(line.matches("\"box\"").count(), expected, "{case}: {line}");
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrency

#[test]
fn eight_pipelines_at_once_each_find_the_face() {
    let _serial = init();
    use ort::AsPointer;
    let (environment, _) = gstfacepose::engine::runtime::environment(None).unwrap();
    let before = environment.ptr();
    let pipelines: Vec<(gst::Pipeline, Samples)> = (0..8)
        .map(|_| {
            let p = launch(&format!(
                "{} ! faceposeestimator detector-input-size={INPUT_SIZE} ! \
                 appsink name=sink sync=false",
                astronaut_source(3, "RGB")
            ));
            let s = collect(&p, "sink");
            (p, s)
        })
        .collect();
    for (p, _) in &pipelines {
        p.set_state(gst::State::Playing).unwrap();
    }
    for (i, (p, samples)) in pipelines.iter().enumerate() {
        let case = format!("pipeline {i}");
        let messages = until_end(p, Duration::from_secs(180));
        assert_eos(&messages, &case);
        let samples = taken(samples);
        assert_eq!(samples.len(), 3, "{case}");
        for sample in &samples {
            let found = boxes(&frame_meta(sample.buffer().unwrap(), &case));
            assert_eq!(found.len(), 1, "{case}: {found:?}");
            assert_near(found[0], reference_box(), TRACKED_PX, &case);
        }
    }
    for (p, _) in &pipelines {
        p.set_state(gst::State::Null).unwrap();
    }
    let (environment, _) = gstfacepose::engine::runtime::environment(None).unwrap();
    assert_eq!(
        environment.ptr(),
        before,
        "one ONNX Runtime environment for the process"
    );
}

#[test]
fn two_estimators_in_one_pipeline() {
    let _serial = init();
    // Side by side behind a tee: each branch gets its own copy of the buffer with its own metas.
    let pipeline = launch(&format!(
        "{} ! tee name=t \
         t. ! queue ! faceposeestimator detector-input-size={INPUT_SIZE} ! appsink name=a sync=false \
         t. ! queue ! faceposeestimator detector-model={} ! appsink name=sink sync=false",
        astronaut_source(3, "RGB"),
        gstfacepose::engine::default_model_dir()
            .join("blazeface_full.onnx")
            .display()
    ));
    let a = collect(&pipeline, "a");
    let b = play_to_eos(&pipeline, "tee");
    let a = taken(&a);
    assert_eq!((a.len(), b.len()), (3, 3));
    for (branch, samples, detector) in [
        ("a", &a, "retinaface_mbv2.onnx"),
        ("b", &b, "blazeface_full.onnx"),
    ] {
        for sample in samples {
            let buffer = sample.buffer().unwrap();
            assert_eq!(frame_metas(buffer), 1, "branch {branch}");
            assert_eq!(face_rois(buffer), 1, "branch {branch}");
            let meta = frame_meta(buffer, branch);
            assert_eq!(meta.get::<String>("detector").unwrap(), detector);
            let found = boxes(&meta);
            assert_eq!(found.len(), 1, "branch {branch}");
            // Two detectors, one face: the boxes overlap closely.
            assert_near(found[0], reference_box(), 15.0, branch);
        }
    }

    // One after the other: the second adds its own metas beside the first's.
    let pipeline = launch(&format!(
        "{} ! faceposeestimator detector-input-size={INPUT_SIZE} ! \
         faceposeestimator detector-input-size={INPUT_SIZE} ! appsink name=sink sync=false",
        astronaut_source(2, "RGB")
    ));
    let samples = play_to_eos(&pipeline, "chained");
    assert_eq!(samples.len(), 2);
    for sample in &samples {
        let buffer = sample.buffer().unwrap();
        assert_eq!(frame_metas(buffer), 2, "one FacePoseMeta per element");
        assert_eq!(face_rois(buffer), 2, "one ROI per face per element");
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

/// Sets `name` through GObject itself, as C, Python and gst-launch do (the Rust binding panics on
/// invalid values instead), and returns the warnings GObject logged meanwhile.
fn g_object_set(element: &gst::Element, name: &str, value: glib::Value) -> Vec<String> {
    use glib::translate::ToGlibPtr;
    static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());
    static HANDLER: Once = Once::new();
    HANDLER.call_once(|| {
        glib::log_set_handler(
            Some("GLib-GObject"),
            glib::LogLevels::LEVEL_WARNING | glib::LogLevels::LEVEL_CRITICAL,
            false,
            false,
            |_, _, message| WARNINGS.lock().unwrap().push(message.to_owned()),
        );
    });
    WARNINGS.lock().unwrap().clear();
    // Under G_DEBUG=fatal-warnings the expected warning must not abort the test.
    let fatal = glib::log_set_always_fatal(glib::LogLevels::empty());
    let name = std::ffi::CString::new(name).unwrap();
    unsafe {
        glib::gobject_ffi::g_object_set_property(
            element.as_ptr() as *mut glib::gobject_ffi::GObject,
            name.as_ptr(),
            value.to_glib_none().0,
        );
    }
    glib::log_set_always_fatal(fatal);
    std::mem::take(&mut *WARNINGS.lock().unwrap())
}

#[test]
fn out_of_range_values_are_refused_and_the_old_value_kept() {
    let _serial = init();
    let e = estimator(&[]);
    let cases: [(&str, glib::Value); 12] = [
        ("detection-threshold", 1.5f32.to_value()),
        ("detection-threshold", (-0.1f32).to_value()),
        ("nms-threshold", 2.0f32.to_value()),
        ("max-faces", 0u32.to_value()),
        ("max-faces", 257u32.to_value()),
        ("detector-input-size", 16u32.to_value()),
        ("detector-input-size", 5000u32.to_value()),
        ("min-face-size", 9000u32.to_value()),
        ("device-id", (-1i32).to_value()),
        ("device-id", 65i32.to_value()),
        ("inference-threads", 300u32.to_value()),
        ("detection-threshold", f32::NAN.to_value()),
    ];
    for (name, value) in cases {
        let case = format!("{name} = {value:?}");
        let before = e.property_value(name);
        let warnings = g_object_set(&e, name, value);
        let after = e.property_value(name);
        assert_eq!(
            format!("{after:?}"),
            format!("{before:?}"),
            "{case}: the value changed"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(name) && w.contains("out of range")),
            "{case}: no warning naming the property: {warnings:?}"
        );
    }
    // Values in range are taken.
    assert!(g_object_set(&e, "max-faces", 256u32.to_value()).is_empty());
    assert_eq!(e.property::<u32>("max-faces"), 256);
}

#[test]
fn the_active_execution_provider_is_read_only() {
    let _serial = init();
    let e = estimator(&[]);
    let pspec = e.find_property("active-execution-provider").unwrap();
    assert!(pspec.flags().contains(glib::ParamFlags::READABLE));
    assert!(!pspec.flags().contains(glib::ParamFlags::WRITABLE));
    let warnings = g_object_set(&e, "active-execution-provider", "cuda".to_value());
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("active-execution-provider") && w.contains("not writable")),
        "{warnings:?}"
    );
    assert_eq!(
        e.property::<Option<String>>("active-execution-provider"),
        None
    );

    let mut h = gst_check::Harness::with_element(&e, Some("sink"), Some("src"));
    h.set_src_caps(caps(VideoFormat::Rgb, 16, 16));
    h.push_and_pull(frame(None, VideoFormat::Rgb, 16, 16, Layout::Default))
        .unwrap();
    g_object_set(&e, "active-execution-provider", "tensorrt".to_value());
    assert_eq!(
        e.property::<Option<String>>("active-execution-provider")
            .as_deref(),
        Some("cpu")
    );
}

#[test]
fn model_properties_set_while_playing_apply_at_the_next_start() {
    let _serial = init();
    let models = gstfacepose::engine::default_model_dir();
    let pipeline = launch(&format!(
        "filesrc location={} ! pngdec ! imagefreeze ! videoconvert ! video/x-raw,format=RGB ! \
         faceposeestimator name=f detector-input-size={INPUT_SIZE} ! appsink name=sink sync=false",
        astronaut_path().display()
    ));
    let element = pipeline.by_name("f").unwrap();
    let samples = collect(&pipeline, "sink");
    let detector_of = |s: &gst::Sample| {
        frame_meta(s.buffer().unwrap(), "detector")
            .get::<String>("detector")
            .unwrap()
    };
    pipeline.set_state(gst::State::Playing).unwrap();
    wait_for(&samples, 2, "first start");

    // While PLAYING the new models are stored, not loaded: the running ones go on.
    let blazeface = models.join("blazeface_full.onnx");
    element.set_property("detector-model", blazeface.display().to_string());
    taken(&samples);
    wait_for(&samples, 3, "after setting detector-model");
    for s in taken(&samples) {
        assert_eq!(detector_of(&s), "retinaface_mbv2.onnx");
        assert_eq!(boxes(&frame_meta(s.buffer().unwrap(), "running")).len(), 1);
    }
    assert_eq!(
        element.property::<Option<String>>("detector-model"),
        Some(blazeface.display().to_string())
    );

    // The next start loads them.
    pipeline.set_state(gst::State::Null).unwrap();
    taken(&samples);
    pipeline.set_state(gst::State::Playing).unwrap();
    wait_for(&samples, 2, "second start");
    for s in taken(&samples) {
        assert_eq!(detector_of(&s), "blazeface_full.onnx");
    }

    // A missing model set while PLAYING breaks nothing now, and the next start names it.
    let missing = "/nonexistent/facepose/robustness.onnx";
    element.set_property("landmark-model", missing);
    taken(&samples);
    wait_for(&samples, 2, "after setting a missing landmark-model");
    pipeline.set_state(gst::State::Null).unwrap();
    let bus = pipeline.bus().unwrap();
    while bus.pop().is_some() {}
    assert!(pipeline.set_state(gst::State::Playing).is_err());
    let messages = until_end(&pipeline, Duration::from_secs(30));
    pipeline.set_state(gst::State::Null).unwrap();
    let errors = errors(&messages);
    assert!(
        errors.iter().any(|e| e.contains(missing)),
        "no error naming {missing}: {errors:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Caps the element does not take, and a wrong ONNX Runtime

#[test]
fn caps_it_does_not_take_fail_negotiation() {
    let _serial = init();
    let refused = [
        "video/x-raw,format=GRAY8,width=32,height=24,framerate=25/1",
        "video/x-raw,format=RGB16,width=32,height=24,framerate=25/1",
        "video/x-bayer,format=rggb,width=32,height=24,framerate=25/1",
        "video/x-raw(memory:DMABuf),format=RGB,width=32,height=24,framerate=25/1",
    ];
    for caps in refused {
        // Linking with these caps names them and the element.
        let description =
            format!("videotestsrc num-buffers=1 ! {caps} ! faceposeestimator ! fakesink");
        let error = match gst::parse::launch(&description) {
            Ok(_) => panic!("{caps}: linked"),
            Err(e) => e.to_string(),
        };
        let named = caps.split(',').next().unwrap();
        assert!(
            error.contains("faceposeestimator") && error.contains(named),
            "{caps}: {error}"
        );
        let format = caps
            .split(',')
            .find_map(|f| f.strip_prefix("format="))
            .unwrap();
        assert!(error.contains(format), "{caps}: {error}");

        // Once the pipeline runs, the source that cannot negotiate stops with not-negotiated;
        // the element refuses the caps before it is handed them.
        let caps = gst::Caps::from_str(caps).unwrap();
        let pipeline = launch("appsrc name=src format=time ! faceposeestimator name=f ! fakesink");
        let element = pipeline.by_name("f").unwrap();
        assert!(!element.static_pad("sink").unwrap().query_accept_caps(&caps));
        let src = by_name::<gst_app::AppSrc>(&pipeline, "src");
        src.set_caps(Some(&caps));
        pipeline.set_state(gst::State::Playing).unwrap();
        let _ = src.push_buffer(gst::Buffer::with_size(32 * 24 * 4).unwrap());
        let _ = src.end_of_stream();
        let messages = until_end(&pipeline, Duration::from_secs(30));
        pipeline.set_state(gst::State::Null).unwrap();
        let errors = errors(&messages);
        assert!(
            errors.iter().any(|e| e.contains("not-negotiated")),
            "{caps}: {errors:?}"
        );
    }
}

#[test]
fn an_ort_library_that_is_not_onnx_runtime_fails_the_start_naming_it() {
    let _serial = init();
    let dir = std::env::temp_dir().join(format!("facepose-robustness-ort-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("libonnxruntime.so");
    std::fs::write(&text, "not a library\n").unwrap();
    for library in [PathBuf::from("/bin/true"), text.clone()] {
        let case = library.display().to_string();
        let pipeline = launch(&format!(
            "videotestsrc num-buffers=1 ! video/x-raw,width=16,height=16 ! \
             faceposeestimator ort-library={} ! fakesink",
            library.display()
        ));
        assert!(
            pipeline.set_state(gst::State::Playing).is_err(),
            "{case}: started"
        );
        let messages = until_end(&pipeline, Duration::from_secs(30));
        pipeline.set_state(gst::State::Null).unwrap();
        let error = messages
            .iter()
            .find_map(|m| match m.view() {
                gst::MessageView::Error(e) => Some(e.error()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{case}: no error on the bus"));
        assert!(error.matches(gst::LibraryError::Init), "{case}: {error:?}");
        // Either it cannot be loaded, or (another test came first) another library is loaded
        // already: the message names the file in both cases.
        let message = error.to_string();
        assert!(message.contains(&case), "{case}: {message}");
        assert!(message.contains("ONNX Runtime"), "{case}: {message}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn buffers_that_do_not_hold_their_frame_pass_with_a_warning_and_the_stream_goes_on() {
    let _serial = init();
    bad_buffers_pass_with_a_warning("");
}

#[test]
fn bad_buffers_pass_with_a_warning_one_frame_ahead_too() {
    let _serial = init();
    bad_buffers_pass_with_a_warning("detection-interval=1 detection-lookahead=true");
}

/// Good and bad buffers through an element with `properties`: every one comes out in order, the
/// good ones with their face, the bad ones without metadata, and one warning per run of bad ones.
fn bad_buffers_pass_with_a_warning(properties: &str) {
    let pipeline = launch(&format!(
        "appsrc name=src format=time ! faceposeestimator detector-input-size={INPUT_SIZE} \
         {properties} ! appsink name=sink sync=false"
    ));
    let samples = collect(&pipeline, "sink");
    let src = by_name::<gst_app::AppSrc>(&pipeline, "src");
    src.set_caps(Some(&caps(VideoFormat::Rgb, 512, 512)));
    pipeline.set_state(gst::State::Playing).unwrap();
    let ms = gst::ClockTime::from_mseconds;
    let face = || {
        frame(
            Some(astronaut()),
            VideoFormat::Rgb,
            512,
            512,
            Layout::Default,
        )
    };
    // A buffer far too short for 512×512 RGB.
    let short = gst::Buffer::from_mut_slice(vec![0u8; 100]);
    // A buffer whose video meta claims rows shorter than a row of pixels.
    let mut narrow = face();
    gst_video::VideoMeta::add_full(
        narrow.make_mut(),
        gst_video::VideoFrameFlags::empty(),
        VideoFormat::Rgb,
        512,
        512,
        &[0],
        &[100],
    )
    .unwrap();
    let inputs = [
        face(),
        short,
        narrow,
        face(),
        gst::Buffer::from_mut_slice(vec![0u8; 7]),
        face(),
    ];
    let good = [true, false, false, true, false, true];
    for (i, buffer) in inputs.into_iter().enumerate() {
        src.push_buffer(with_pts(buffer, ms(40 * i as u64)))
            .unwrap();
    }
    src.end_of_stream().unwrap();
    let messages = until_end(&pipeline, Duration::from_secs(60));
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eos(&messages, "bad buffers");

    let samples = taken(&samples);
    assert_eq!(samples.len(), good.len(), "every buffer comes out");
    for (i, (sample, good)) in samples.iter().zip(good).enumerate() {
        let buffer = sample.buffer().unwrap();
        assert_eq!(buffer.pts(), Some(ms(40 * i as u64)));
        if good {
            let found = boxes(&frame_meta(buffer, &format!("buffer {i}")));
            assert_eq!(found.len(), 1, "buffer {i}");
        } else {
            assert_eq!(
                frame_metas(buffer),
                0,
                "buffer {i}: metadata on a frame not analysed"
            );
            assert_eq!(face_rois(buffer), 0, "buffer {i}");
        }
    }
    // One warning per run of bad buffers, saying what is wrong with it.
    let warnings: Vec<String> = messages
        .iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Warning(w) => Some(w.error().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("100 bytes") && warnings[0].contains("RGB 512x512"),
        "{}",
        warnings[0]
    );
    assert!(warnings[1].contains("7 bytes"), "{}", warnings[1]);
}
