// SPDX-License-Identifier: MPL-2.0
//! The warp that turns a region of a frame into a model's input tensor, timed per pixel format:
//! a rotated 192×192 face crop (the landmark model's input) from a 640×480 frame, and the
//! detector's input (a 640×480 frame fitted into 320×320 and 640×640). Prints the 10th
//! percentile of the milliseconds per crop of `--runs` (default 200) timed calls after a warm-up
//! (the fastest decile is the least disturbed by other work on the machine).
//!
//! ```text
//! cargo run --release --example crop_bench [-- --runs N]
//! ```

use std::time::Instant;

use gstfacepose::engine::geometry::Affine;
use gstfacepose::engine::image::{ColourOrder, Layout, TensorFormat, warp_into};
use gstfacepose::engine::{ImageView, PixelFormat, Plane};

const WIDTH: usize = 640;
const HEIGHT: usize = 480;

/// A frame's bytes in one format, with a smooth pattern so every tap differs.
struct Frame {
    format: PixelFormat,
    planes: Vec<(Vec<u8>, usize)>,
}

impl Frame {
    fn new(format: PixelFormat) -> Frame {
        let pattern = |x: usize, y: usize, c: usize| ((x * 3 + y * 5 + c * 70) % 256) as u8;
        let packed = |bpp: usize| {
            let stride = WIDTH * bpp + 16;
            let mut data = vec![0u8; stride * HEIGHT];
            for y in 0..HEIGHT {
                for x in 0..WIDTH {
                    for c in 0..bpp {
                        data[y * stride + x * bpp + c] = pattern(x, y, c);
                    }
                }
            }
            vec![(data, stride)]
        };
        let plane = |w: usize, h: usize, c: usize| {
            let mut data = vec![0u8; w * h];
            for y in 0..h {
                for x in 0..w {
                    data[y * w + x] = pattern(x, y, c);
                }
            }
            (data, w)
        };
        let (cw, ch) = (WIDTH / 2, HEIGHT / 2);
        let planes = match format {
            PixelFormat::Rgb | PixelFormat::Bgr => packed(3),
            PixelFormat::I420 => vec![plane(WIDTH, HEIGHT, 0), plane(cw, ch, 1), plane(cw, ch, 2)],
            PixelFormat::Nv12 => vec![plane(WIDTH, HEIGHT, 0), plane(cw * 2, ch, 1)],
            _ => packed(4),
        };
        Frame { format, planes }
    }

    fn view(&self) -> ImageView<'_> {
        let p = |i: usize| Plane {
            data: &self.planes[i].0,
            stride: self.planes[i].1,
        };
        match self.format {
            PixelFormat::I420 => ImageView::i420(WIDTH, HEIGHT, p(0), p(1), p(2)),
            PixelFormat::Nv12 => ImageView::nv12(WIDTH, HEIGHT, p(0), p(1)),
            f => ImageView::packed(f, WIDTH, HEIGHT, p(0).data, p(0).stride),
        }
        .expect("a valid frame")
    }
}

fn fast_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..runs.div_ceil(10) {
        f();
    }
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    // The fastest decile: least disturbed by other work on the machine.
    times[times.len() / 10]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = match args.as_slice() {
        [] => 200,
        [flag, n] if flag == "--runs" => match n.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("--runs needs a positive whole number, got {n}");
                std::process::exit(2);
            }
        },
        _ => {
            eprintln!("usage: crop_bench [--runs N]");
            std::process::exit(2);
        }
    };
    // A face crop: 192² tensor pixels covering a 260-pixel square turned by 20°, centred at
    // (330, 250); NHWC RGB in [0, 1] like FaceMesh.
    let (side, angle) = (260.0f32 / 192.0, 20f32.to_radians());
    let (s, c) = angle.sin_cos();
    let crop = Affine {
        a: side * c,
        b: -side * s,
        c: side * s,
        d: side * c,
        tx: 330.0 - side * (c * 96.0 - s * 96.0),
        ty: 250.0 - side * (s * 96.0 + c * 96.0),
    };
    let crop_format = TensorFormat {
        layout: Layout::Nhwc,
        colour: ColourOrder::Rgb,
        mean: [0.0; 3],
        scale: [1.0 / 255.0; 3],
    };
    // The detector: the frame scaled to fit, NCHW BGR with means (RetinaFace).
    let detector_format = TensorFormat {
        layout: Layout::Nchw,
        colour: ColourOrder::Bgr,
        mean: [104.0, 117.0, 123.0],
        scale: [1.0; 3],
    };
    let fit = |size: usize| {
        let k = WIDTH as f32 / size as f32;
        Affine {
            a: k,
            b: 0.0,
            c: 0.0,
            d: k,
            tx: 0.0,
            ty: 0.0,
        }
    };
    println!("ms per call, 10th percentile of {runs} (640×480 frame)");
    println!("| format | 192² rotated crop | detector 320² | detector 640² |");
    println!("|---|---|---|---|");
    for format in [
        PixelFormat::Rgb,
        PixelFormat::Bgr,
        PixelFormat::Rgba,
        PixelFormat::Bgrx,
        PixelFormat::I420,
        PixelFormat::Nv12,
    ] {
        let frame = Frame::new(format);
        let view = frame.view();
        let mut out = vec![0.0f32; 640 * 640 * 3];
        let mut time = |map: &Affine, size: usize, tf: &TensorFormat, runs: usize| {
            let out = &mut out[..size * size * 3];
            fast_ms(runs, || warp_into(&view, map, size, size, tf, out))
        };
        let face = time(&crop, 192, &crop_format, runs);
        let d320 = time(&fit(320), 320, &detector_format, runs.div_ceil(4));
        let d640 = time(&fit(640), 640, &detector_format, runs.div_ceil(10));
        println!("| {format:?} | {face:.3} | {d320:.3} | {d640:.3} |");
    }
}
