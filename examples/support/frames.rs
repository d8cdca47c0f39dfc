// SPDX-License-Identifier: MPL-2.0
//! Frames the example tools feed the element (a moving face on a gradient, made in memory, and
//! the frames of a video file, decoded once), and the pipeline they feed it through.

use std::path::Path;

use gst::prelude::*;
use gst_video::prelude::*;

/// `n` RGB frames of `width` × `height`: the astronaut sample picture scaled to `side` pixels,
/// moving 3 px right and 2 px down per frame (bouncing at the edges) over a gradient.
pub fn moving_face(
    n: usize,
    width: usize,
    height: usize,
    side: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let path = gstfacepose::engine::default_model_dir().join("samples/astronaut.png");
    let picture = image::open(&path)
        .map_err(|e| format!("cannot decode {}: {e} (run `make models`)", path.display()))?
        .to_rgb8();
    let picture = image::imageops::resize(
        &picture,
        side as u32,
        side as u32,
        image::imageops::FilterType::Triangle,
    );
    let background: Vec<u8> = (0..height)
        .flat_map(|y| (0..width).flat_map(move |x| [(40 + x / 8) as u8, (60 + y / 8) as u8, 90]))
        .collect();
    let bounce = |t: usize, range: usize| {
        let t = t % (2 * range).max(1);
        if t < range { t } else { 2 * range - t }
    };
    Ok((0..n)
        .map(|i| {
            let mut canvas = background.clone();
            let (x0, y0) = (bounce(i * 3, width - side), bounce(i * 2, height - side));
            for (row, src) in picture.as_raw().chunks_exact(side * 3).enumerate() {
                let start = ((y0 + row) * width + x0) * 3;
                canvas[start..start + side * 3].copy_from_slice(src);
            }
            canvas
        })
        .collect())
}

/// Width, height, and frames as RGB with their timestamps in seconds.
pub type Decoded = (usize, usize, Vec<(f64, Vec<u8>)>);

/// The first `limit` frames of the video at `path` as RGB, each with its timestamp in seconds
/// (frame count / 30 where it has none), and the video's width and height.
pub fn decoded(path: &Path, limit: usize) -> Result<Decoded, String> {
    let (pipeline, sink) = play_decoder(path, "RGB")?;
    let (mut width, mut height, mut frames) = (0, 0, Vec::new());
    while frames.len() < limit {
        let Ok(sample) = sink.pull_sample() else {
            break;
        };
        let info = sample
            .caps()
            .and_then(|c| gst_video::VideoInfo::from_caps(c).ok())
            .ok_or("a sample without video caps")?;
        (width, height) = (info.width() as usize, info.height() as usize);
        let buffer = sample.buffer().ok_or("a sample without a buffer")?;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
            .map_err(|e| e.to_string())?;
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data(0).map_err(|e| e.to_string())?;
        let mut rgb = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            rgb.extend_from_slice(&data[y * stride..y * stride + width * 3]);
        }
        let t = buffer
            .pts()
            .map_or(frames.len() as f64 / 30.0, |p| p.seconds_f64());
        frames.push((t, rgb));
    }
    let _ = pipeline.set_state(gst::State::Null);
    if frames.is_empty() {
        return Err(format!("no frames decoded from {}", path.display()));
    }
    Ok((width, height, frames))
}

/// A playing `filesrc ! decodebin ! videoconvert ! video/x-raw,format=FORMAT ! appsink` on the
/// video at `path`, and its appsink to pull the frames from (set the pipeline to NULL when done).
pub fn play_decoder(
    path: &Path,
    format: &str,
) -> Result<(gst::Pipeline, gst_app::AppSink), String> {
    play_decoder_through(path, "", format)
}

/// [`play_decoder`] with `filter`, a pipeline fragment ending in `!` (e.g. `videocrop … !`),
/// between the decoder and the converter (empty: none).
pub fn play_decoder_through(
    path: &Path,
    filter: &str,
    format: &str,
) -> Result<(gst::Pipeline, gst_app::AppSink), String> {
    if !path.exists() {
        return Err(format!("{} is missing", path.display()));
    }
    let pipeline = gst::parse::launch(&format!(
        "filesrc name=src ! decodebin ! {filter} videoconvert ! video/x-raw,format={format} ! \
         appsink name=sink sync=false"
    ))
    .map_err(|e| e.to_string())?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline".to_string())?;
    let src = pipeline.by_name("src").ok_or("no filesrc")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .ok_or("no appsink")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("cannot play {}: {e}", path.display()))?;
    Ok((pipeline, sink))
}

/// `appsrc ! element ! fakesink sync=false` for RGB frames of `width` × `height` at 30 fps (the
/// source blocks with four frames queued), added to a new pipeline and linked.
pub fn rgb_pipeline(
    width: usize,
    height: usize,
    element: &gst::Element,
    sink: &gst::Element,
) -> Result<(gst::Pipeline, gst_app::AppSrc), String> {
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", width as i32)
        .field("height", height as i32)
        .field("framerate", gst::Fraction::new(30, 1))
        .build();
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder()
        .caps(&caps)
        .format(gst::Format::Time)
        .block(true)
        .max_bytes(4 * (width * height * 3) as u64)
        .build();
    pipeline
        .add_many([src.upcast_ref(), element, sink])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([src.upcast_ref(), element, sink]).map_err(|e| e.to_string())?;
    Ok((pipeline, src))
}
