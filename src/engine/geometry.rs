// SPDX-License-Identifier: MPL-2.0
//! Points, boxes and 2-D affine maps in frame pixel coordinates.

/// A point in pixels (x right, y down).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }
}

/// An axis-aligned box in pixels, `x0 <= x1`, `y0 <= y1`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl BBox {
    pub const fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> Self {
        Self { x0, y0, x1, y1 }
    }

    pub fn width(&self) -> f32 {
        (self.x1 - self.x0).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y1 - self.y0).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn centre(&self) -> Point {
        Point::new((self.x0 + self.x1) * 0.5, (self.y0 + self.y1) * 0.5)
    }

    /// Intersection over union, in 0..=1; 0 for empty or non-finite boxes (f32::min and max skip
    /// NaN, which would otherwise count a NaN box as an empty one that still intersects).
    pub fn iou(&self, other: &BBox) -> f32 {
        if !(self.is_finite() && other.is_finite()) {
            return 0.0;
        }
        let ix = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let iy = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        let inter = ix * iy;
        let union = self.area() + other.area() - inter;
        if union > 0.0 {
            (inter / union).min(1.0)
        } else {
            0.0
        }
    }

    /// The box clipped to a `width` × `height` frame. A NaN coordinate stays NaN (so that
    /// [`BBox::is_finite`] still tells); a negative or NaN frame size counts as 0.
    pub fn clamp_to(&self, width: f32, height: f32) -> BBox {
        // f32::clamp panics on a NaN or negative bound.
        let size = |v: f32| if v > 0.0 { v } else { 0.0 };
        let (w, h) = (size(width), size(height));
        BBox {
            x0: self.x0.clamp(0.0, w),
            y0: self.y0.clamp(0.0, h),
            x1: self.x1.clamp(0.0, w),
            y1: self.y1.clamp(0.0, h),
        }
    }

    /// The smallest box holding every point; `None` for no points.
    pub fn enclosing(points: impl IntoIterator<Item = Point>) -> Option<BBox> {
        let mut it = points.into_iter();
        let first = it.next()?;
        let mut b = BBox::new(first.x, first.y, first.x, first.y);
        for p in it {
            b.x0 = b.x0.min(p.x);
            b.y0 = b.y0.min(p.y);
            b.x1 = b.x1.max(p.x);
            b.y1 = b.y1.max(p.y);
        }
        Some(b)
    }

    pub fn contains(&self, p: Point) -> bool {
        p.x >= self.x0 && p.x <= self.x1 && p.y >= self.y0 && p.y <= self.y1
    }

    pub fn is_finite(&self) -> bool {
        self.x0.is_finite() && self.y0.is_finite() && self.x1.is_finite() && self.y1.is_finite()
    }
}

/// A 2-D affine map `p' = [a b; c d] p + [tx ty]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub a: f32,
    pub b: f32,
    pub c: f32,
    pub d: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Affine {
    pub const IDENTITY: Affine = Affine {
        a: 1.0,
        b: 0.0,
        c: 0.0,
        d: 1.0,
        tx: 0.0,
        ty: 0.0,
    };

    pub fn apply(&self, p: Point) -> Point {
        Point::new(
            self.a * p.x + self.b * p.y + self.tx,
            self.c * p.x + self.d * p.y + self.ty,
        )
    }

    /// Scale by `s` then translate by `(tx, ty)`.
    pub fn scale_translate(s: f32, tx: f32, ty: f32) -> Affine {
        Affine {
            a: s,
            b: 0.0,
            c: 0.0,
            d: s,
            tx,
            ty,
        }
    }

    /// Maps the `size` × `size` tensor square onto the rotated square region `rect` of the frame:
    /// tensor pixel (u, v) goes to the frame point it samples.
    pub fn from_rotated_rect(rect: &RotatedRect, size: f32) -> Affine {
        let s = rect.side / size;
        let (sin, cos) = rect.angle.sin_cos();
        let half = size * 0.5;
        // p = centre + R * ((u - half) * s, (v - half) * s)
        let a = cos * s;
        let b = -sin * s;
        let c = sin * s;
        let d = cos * s;
        Affine {
            a,
            b,
            c,
            d,
            tx: rect.centre.x - a * half - b * half,
            ty: rect.centre.y - c * half - d * half,
        }
    }
}

/// A square region of the frame rotated by `angle` radians (clockwise on screen, since y points down).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotatedRect {
    pub centre: Point,
    pub side: f32,
    pub angle: f32,
}

impl RotatedRect {
    /// The square, rotated so that its x axis runs along `from → to`, that holds `points` with
    /// `scale` times their extent along the longer axis.
    pub fn around_points(
        points: &[Point],
        from: Point,
        to: Point,
        scale: f32,
    ) -> Option<RotatedRect> {
        let angle = (to.y - from.y).atan2(to.x - from.x);
        let (sin, cos) = angle.sin_cos();
        let (mut umin, mut umax, mut vmin, mut vmax) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for p in points {
            let u = p.x * cos + p.y * sin;
            let v = -p.x * sin + p.y * cos;
            umin = umin.min(u);
            umax = umax.max(u);
            vmin = vmin.min(v);
            vmax = vmax.max(v);
        }
        if points.is_empty() || !(umax - umin).is_finite() || !(vmax - vmin).is_finite() {
            return None;
        }
        // Midpoints as min + half the extent: (min + max) / 2 overflows near f32::MAX.
        let (uc, vc) = (umin + (umax - umin) * 0.5, vmin + (vmax - vmin) * 0.5);
        let centre = Point::new(uc * cos - vc * sin, uc * sin + vc * cos);
        let side = (umax - umin).max(vmax - vmin) * scale;
        (side > 0.0 && side.is_finite() && centre.x.is_finite() && centre.y.is_finite()).then_some(
            RotatedRect {
                centre,
                side,
                angle,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&BBox::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        let b = BBox::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn rotated_rect_affine_maps_tensor_centre_and_axes() {
        let rect = RotatedRect {
            centre: Point::new(100.0, 50.0),
            side: 40.0,
            angle: std::f32::consts::FRAC_PI_2,
        };
        let m = Affine::from_rotated_rect(&rect, 20.0);
        let c = m.apply(Point::new(10.0, 10.0));
        assert!((c.x - 100.0).abs() < 1e-4 && (c.y - 50.0).abs() < 1e-4);
        // One tensor pixel along u is two frame pixels along +y after a quarter turn.
        let p = m.apply(Point::new(11.0, 10.0));
        assert!((p.x - 100.0).abs() < 1e-4 && (p.y - 52.0).abs() < 1e-4);
    }

    #[test]
    fn rect_around_points_is_centred_and_scaled() {
        let pts = [
            Point::new(0.0, 0.0),
            Point::new(10.0, 0.0),
            Point::new(10.0, 20.0),
        ];
        let r = RotatedRect::around_points(&pts, Point::new(0.0, 0.0), Point::new(1.0, 0.0), 1.5)
            .unwrap();
        assert!((r.centre.x - 5.0).abs() < 1e-5 && (r.centre.y - 10.0).abs() < 1e-5);
        assert!((r.side - 30.0).abs() < 1e-5);
        assert_eq!(r.angle, 0.0);
    }
}
