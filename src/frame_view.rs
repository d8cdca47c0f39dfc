// SPDX-License-Identifier: MPL-2.0
//! The bridge between GStreamer video frames and the engine's [`ImageView`].

use gst_video::{VideoColorMatrix, VideoFormat, VideoFrameExt, VideoFrameRef, VideoInfo};

use crate::engine::{ImageView, PixelFormat, Plane, YuvMatrix};

/// The raw formats the element accepts.
pub const FORMATS: [VideoFormat; 8] = [
    VideoFormat::Rgb,
    VideoFormat::Bgr,
    VideoFormat::Rgba,
    VideoFormat::Bgra,
    VideoFormat::Rgbx,
    VideoFormat::Bgrx,
    VideoFormat::I420,
    VideoFormat::Nv12,
];

pub fn pixel_format(format: VideoFormat) -> Option<PixelFormat> {
    Some(match format {
        VideoFormat::Rgb => PixelFormat::Rgb,
        VideoFormat::Bgr => PixelFormat::Bgr,
        VideoFormat::Rgba => PixelFormat::Rgba,
        VideoFormat::Bgra => PixelFormat::Bgra,
        VideoFormat::Rgbx => PixelFormat::Rgbx,
        VideoFormat::Bgrx => PixelFormat::Bgrx,
        VideoFormat::I420 => PixelFormat::I420,
        VideoFormat::Nv12 => PixelFormat::Nv12,
        _ => return None,
    })
}

fn matrix(info: &VideoInfo) -> YuvMatrix {
    match info.colorimetry().matrix() {
        VideoColorMatrix::Bt709 => YuvMatrix::Bt709,
        _ => YuvMatrix::Bt601,
    }
}

/// A view of a mapped frame, or a message saying why there is none.
pub fn image_view<'a, T>(frame: &'a VideoFrameRef<T>) -> Result<ImageView<'a>, String>
where
    VideoFrameRef<T>: VideoFrameExt,
{
    let info = frame.info();
    let format = pixel_format(info.format())
        .ok_or_else(|| format!("unsupported format {:?}", info.format()))?;
    let (w, h) = (info.width() as usize, info.height() as usize);
    let strides = info.stride();
    let plane = |i: u32| -> Result<Plane<'a>, String> {
        let data = frame.plane_data(i).map_err(|e| format!("plane {i}: {e}"))?;
        let stride = usize::try_from(strides[i as usize])
            .map_err(|_| format!("plane {i} has a negative stride"))?;
        Ok(Plane { data, stride })
    };
    let view = match format {
        PixelFormat::I420 => ImageView::i420(w, h, plane(0)?, plane(1)?, plane(2)?),
        PixelFormat::Nv12 => ImageView::nv12(w, h, plane(0)?, plane(1)?),
        packed => {
            let p = plane(0)?;
            ImageView::packed(packed, w, h, p.data, p.stride)
        }
    };
    view.map(|v| v.with_matrix(matrix(info)))
        .map_err(|e| e.to_string())
}
