// SPDX-License-Identifier: MPL-2.0
//! Drawing faces into packed RGB-family frames: the box, the landmarks and the three pose axes from
//! the nose tip (x red, y green, z blue). Line widths follow the frame size so the drawing stays
//! legible from small to large frames.

use crate::engine::face::Face;
use crate::engine::geometry::Point;

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

    fn put(&mut self, x: i64, y: i64, rgb: [u8; 3]) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let p = y as usize * self.stride + x as usize * self.bpp;
        for (offset, value) in self.order.iter().zip(rgb) {
            self.data[p + offset] = value;
        }
    }

    /// A filled disc of radius `r`.
    pub fn dot(&mut self, c: Point, r: f32, rgb: [u8; 3]) {
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
    pub fn line(&mut self, a: Point, b: Point, width: f32, rgb: [u8; 3]) {
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

const BOX_COLOUR: [u8; 3] = [0, 255, 0];
const LANDMARK_COLOUR: [u8; 3] = [255, 255, 255];
const AXIS_COLOURS: [[u8; 3]; 3] = [[255, 40, 40], [40, 255, 40], [60, 120, 255]];

/// Draws every face. Sizes scale with the frame's shorter side (2 px lines at 720p).
pub fn draw_faces(canvas: &mut RgbCanvas, faces: &[Face]) {
    let unit = (canvas.width.min(canvas.height) as f32 / 360.0).max(1.0);
    for face in faces {
        let b = face.bbox;
        let corners = [
            Point::new(b.x0, b.y0),
            Point::new(b.x1, b.y0),
            Point::new(b.x1, b.y1),
            Point::new(b.x0, b.y1),
        ];
        for i in 0..4 {
            canvas.line(corners[i], corners[(i + 1) % 4], unit, BOX_COLOUR);
        }
        let r = (unit * 0.6).max(0.6);
        for p in &face.landmarks {
            canvas.dot(Point::new(p[0], p[1]), r, LANDMARK_COLOUR);
        }
        let origin = nose(face);
        let length = b.width().max(b.height()) * 0.5;
        for (axis, colour) in AXIS_COLOURS.iter().enumerate() {
            // Column `axis` of the rotation, in the camera frame (y up): flip y for the image.
            let (dx, dy) = (face.rotation[0][axis], -face.rotation[1][axis]);
            let tip = Point::new(origin.x + dx * length, origin.y + dy * length);
            canvas.line(origin, tip, unit * 1.5, *colour);
        }
    }
}

/// The nose tip: FaceMesh point 1 when there are 468 landmarks, else the detector's nose.
pub fn nose(face: &Face) -> Point {
    match face.landmarks.get(1) {
        Some(p) if face.landmarks.len() == 468 => Point::new(p[0], p[1]),
        _ => face.keypoints[2],
    }
}
