// SPDX-License-Identifier: MPL-2.0
//! Drawing faces into frames: the box, the landmarks and the three pose axes from the nose tip
//! (x red, y green, z blue), in packed RGB-family frames and in I420 and NV12. Line widths follow
//! the frame size so the drawing stays legible from small to large frames.

use gst_video::{VideoFormat, VideoFrameExt, VideoFrameRef};

use crate::engine::face::Face;
use crate::engine::geometry::Point;

/// Something pixels can be set in.
pub trait Canvas {
    fn width(&self) -> usize;
    fn height(&self) -> usize;
    /// Sets pixel (x, y), which the caller keeps inside the canvas.
    fn set(&mut self, x: usize, y: usize, rgb: [u8; 3]);

    fn put(&mut self, x: i64, y: i64, rgb: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width() && (y as usize) < self.height() {
            self.set(x as usize, y as usize, rgb);
        }
    }

    /// A filled disc of radius `r`.
    fn dot(&mut self, c: Point, r: f32, rgb: [u8; 3]) {
        if !(c.x.is_finite() && c.y.is_finite()) {
            return;
        }
        let ri = r.ceil() as i64;
        let (cx, cy) = (c.x.round() as i64, c.y.round() as i64);
        for dy in -ri..=ri {
            for dx in -ri..=ri {
                if ((dx * dx + dy * dy) as f32) <= r * r + 0.5 {
                    self.put(cx + dx, cy + dy, rgb);
                }
            }
        }
    }

    /// A line `width` pixels wide.
    fn line(&mut self, a: Point, b: Point, width: f32, rgb: [u8; 3]) {
        if !(a.x.is_finite() && a.y.is_finite() && b.x.is_finite() && b.y.is_finite()) {
            return;
        }
        let len = ((b.x - a.x).powi(2) + (b.y - a.y).powi(2)).sqrt();
        let steps = (len.ceil() as usize).clamp(1, 20_000);
        for i in 0..=steps {
            let t = i as f32 / steps as f32;
            self.dot(
                Point::new(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t),
                width * 0.5,
                rgb,
            );
        }
    }
}

/// A packed 8-bit frame with 3 or 4 bytes per pixel.
pub struct RgbCanvas<'a> {
    data: &'a mut [u8],
    width: usize,
    height: usize,
    stride: usize,
    bpp: usize,
    /// Byte offsets of R, G and B in a pixel.
    order: [usize; 3],
}

impl<'a> RgbCanvas<'a> {
    /// `bgr` selects BGR(x/A) byte order; `bpp` is 3 or 4.
    pub fn new(
        data: &'a mut [u8],
        width: usize,
        height: usize,
        stride: usize,
        bpp: usize,
        bgr: bool,
    ) -> Option<Self> {
        let fits = (bpp == 3 || bpp == 4)
            && stride >= width * bpp
            && height > 0
            && data.len() >= stride * (height - 1) + width * bpp;
        fits.then_some(Self {
            data,
            width,
            height,
            stride,
            bpp,
            order: if bgr { [2, 1, 0] } else { [0, 1, 2] },
        })
    }
}

impl Canvas for RgbCanvas<'_> {
    fn width(&self) -> usize {
        self.width
    }

    fn height(&self) -> usize {
        self.height
    }

    fn set(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        let p = y * self.stride + x * self.bpp;
        for (offset, value) in self.order.iter().zip(rgb) {
            self.data[p + offset] = value;
        }
    }
}

/// An 8-bit YUV 4:2:0 frame, planar (I420) or semi-planar (NV12), BT.601 limited range.
pub struct YuvCanvas<'a> {
    luma: &'a mut [u8],
    luma_stride: usize,
    /// I420: the U plane (and `v` holds V); NV12: the interleaved UV plane (and `v` is None).
    u: &'a mut [u8],
    u_stride: usize,
    v: Option<(&'a mut [u8], usize)>,
    width: usize,
    height: usize,
}

impl<'a> YuvCanvas<'a> {
    pub fn i420(
        width: usize,
        height: usize,
        y: (&'a mut [u8], usize),
        u: (&'a mut [u8], usize),
        v: (&'a mut [u8], usize),
    ) -> Self {
        Self {
            luma: y.0,
            luma_stride: y.1,
            u: u.0,
            u_stride: u.1,
            v: Some(v),
            width,
            height,
        }
    }

    pub fn nv12(
        width: usize,
        height: usize,
        y: (&'a mut [u8], usize),
        uv: (&'a mut [u8], usize),
    ) -> Self {
        Self {
            luma: y.0,
            luma_stride: y.1,
            u: uv.0,
            u_stride: uv.1,
            v: None,
            width,
            height,
        }
    }
}

impl Canvas for YuvCanvas<'_> {
    fn width(&self) -> usize {
        self.width
    }

    fn height(&self) -> usize {
        self.height
    }

    fn set(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        let [r, g, b] = rgb.map(|c| c as f32);
        let luma = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b;
        let cb = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
        let cr = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
        let byte = |v: f32| v.round().clamp(0.0, 255.0) as u8;
        if let Some(p) = self.luma.get_mut(y * self.luma_stride + x) {
            *p = byte(luma);
        }
        let (cx, cy) = (x / 2, y / 2);
        match self.v.as_mut() {
            Some((v, v_stride)) => {
                if let Some(p) = self.u.get_mut(cy * self.u_stride + cx) {
                    *p = byte(cb);
                }
                if let Some(p) = v.get_mut(cy * *v_stride + cx) {
                    *p = byte(cr);
                }
            }
            None => {
                let i = cy * self.u_stride + cx * 2;
                if i + 1 < self.u.len() {
                    self.u[i] = byte(cb);
                    self.u[i + 1] = byte(cr);
                }
            }
        }
    }
}

/// Draws the faces into a mapped frame of any accepted format; false if the format is not one.
pub fn draw_on_frame(frame: &mut VideoFrameRef<&mut gst::BufferRef>, faces: &[Face]) -> bool {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let format = frame.format();
    let strides: Vec<usize> = frame
        .plane_stride()
        .iter()
        .map(|s| (*s).max(0) as usize)
        .collect();
    let packed = match format {
        VideoFormat::Rgb => Some((3, false)),
        VideoFormat::Bgr => Some((3, true)),
        VideoFormat::Rgba | VideoFormat::Rgbx => Some((4, false)),
        VideoFormat::Bgra | VideoFormat::Bgrx => Some((4, true)),
        _ => None,
    };
    if let Some((bpp, bgr)) = packed {
        let Ok(data) = frame.plane_data_mut(0) else {
            return false;
        };
        let Some(mut canvas) = RgbCanvas::new(data, w, h, strides[0], bpp, bgr) else {
            return false;
        };
        draw_faces(&mut canvas, faces);
        return true;
    }
    let mut planes = frame.planes_data_mut();
    match (format, planes.as_mut_slice()) {
        (VideoFormat::I420, [y, u, v, ..]) => {
            let mut canvas =
                YuvCanvas::i420(w, h, (y, strides[0]), (u, strides[1]), (v, strides[2]));
            draw_faces(&mut canvas, faces);
            true
        }
        (VideoFormat::Nv12, [y, uv, ..]) => {
            let mut canvas = YuvCanvas::nv12(w, h, (y, strides[0]), (uv, strides[1]));
            draw_faces(&mut canvas, faces);
            true
        }
        _ => false,
    }
}

const BOX_COLOUR: [u8; 3] = [0, 255, 0];
/// The box of a face that looks at the camera (or the target) on this frame.
const LOOKING_BOX_COLOUR: [u8; 3] = [255, 200, 0];
/// The gaze ray: the forward axis from the nose, twice the box's size long.
const RAY_COLOUR: [u8; 3] = [255, 0, 255];
const LANDMARK_COLOUR: [u8; 3] = [255, 255, 255];
const AXIS_COLOURS: [[u8; 3]; 3] = [[255, 40, 40], [40, 255, 40], [60, 120, 255]];

/// Draws every face. Sizes scale with the frame's shorter side (2 px lines at 720p).
pub fn draw_faces(canvas: &mut impl Canvas, faces: &[Face]) {
    let unit = (canvas.width().min(canvas.height()) as f32 / 360.0).max(1.0);
    for face in faces {
        let b = face.bbox;
        let corners = [
            Point::new(b.x0, b.y0),
            Point::new(b.x1, b.y0),
            Point::new(b.x1, b.y1),
            Point::new(b.x0, b.y1),
        ];
        let looking = face.attention.is_some_and(|a| a.looking);
        let box_colour = if looking {
            LOOKING_BOX_COLOUR
        } else {
            BOX_COLOUR
        };
        for i in 0..4 {
            canvas.line(corners[i], corners[(i + 1) % 4], unit, box_colour);
        }
        let r = (unit * 0.6).max(0.6);
        for p in &face.landmarks {
            canvas.dot(Point::new(p[0], p[1]), r, LANDMARK_COLOUR);
        }
        label(canvas, face, unit);
        let origin = nose(face);
        let length = b.width().max(b.height()) * 0.5;
        for (axis, colour) in AXIS_COLOURS.iter().enumerate() {
            // Column `axis` of the rotation, in the camera frame (y up): flip y for the image.
            let (dx, dy) = (face.rotation[0][axis], -face.rotation[1][axis]);
            let tip = Point::new(origin.x + dx * length, origin.y + dy * length);
            canvas.line(origin, tip, unit * 1.5, *colour);
        }
        if let Some(a) = face.attention {
            // The forward axis as the image shows it (x right, y down); its z does not show.
            let tip = Point::new(
                origin.x + a.gaze[0] * length * 4.0,
                origin.y + a.gaze[1] * length * 4.0,
            );
            canvas.line(origin, tip, unit, RAY_COLOUR);
        }
    }
}

const LABEL_TEXT: [u8; 3] = [255, 255, 255];
const LABEL_BACKGROUND: [u8; 3] = [0, 0, 0];

/// Four lines, "id 3", "yaw +12.3", "pitch -4.0", "roll +1.5", then, once attention is judged,
/// "look 8.5" (degrees off the direction to the camera) and, with a position, "z 63cm", white on
/// black beside the box (right, or left when there is no room). Font pixels grow with the face (one per 40 pixels of box
/// height) up to 1.25 `unit`s, so crowds stay readable and large faces get large text.
fn label(canvas: &mut impl Canvas, face: &Face, unit: f32) {
    use crate::font::{CELL_H, CELL_W};
    let p = face.pose;
    let mut lines = vec![
        format!("id {}", face.id),
        format!("yaw {:+.1}", p.yaw),
        format!("pitch {:+.1}", p.pitch),
        format!("roll {:+.1}", p.roll),
    ];
    if let Some(a) = face.attention {
        lines.push(format!("look {:.1}", a.camera_angle));
        if let Some(pos) = a.position {
            lines.push(format!("z {:.0}cm", pos[2]));
        }
    }
    let b = face.bbox;
    let cap = (unit * 1.25).round().max(1.0);
    let scale = (b.height() / 40.0).round().clamp(1.0, cap) as usize;
    let columns = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let (w, h) = ((columns * CELL_W + 2) * scale, lines.len() * CELL_H * scale);
    let gap = 2 * scale;
    let x0 = if b.x1 + (gap + w) as f32 <= canvas.width() as f32 {
        b.x1.max(0.0) as usize + gap
    } else {
        (b.x0 - (gap + w) as f32).max(0.0) as usize
    };
    let y0 = (b.y0.max(0.0) as usize).min(canvas.height().saturating_sub(h));
    for y in y0..(y0 + h).min(canvas.height()) {
        for x in x0..(x0 + w).min(canvas.width()) {
            canvas.set(x, y, LABEL_BACKGROUND);
        }
    }
    for (i, line) in lines.iter().enumerate() {
        let top = y0 + i * CELL_H * scale;
        crate::font::render(line, |fx, fy| {
            for dy in 0..scale {
                for dx in 0..scale {
                    canvas.put(
                        (x0 + scale + fx * scale + dx) as i64,
                        (top + fy * scale + dy) as i64,
                        LABEL_TEXT,
                    );
                }
            }
        });
    }
}

/// The nose tip: FaceMesh point 1 when there are 468 landmarks, else the detector's nose.
pub fn nose(face: &Face) -> Point {
    match face.landmarks.get(1) {
        Some(p) if face.landmarks.len() == 468 => Point::new(p[0], p[1]),
        _ => face.keypoints[2],
    }
}
