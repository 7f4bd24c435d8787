//! Output quality for BENCHMARKS.md: SSIM (luma, 8×8 windows) of each candidate against a
//! reference resize made from the full-size decode, plus bytes.
//!   cargo run --release --example quality -- SOURCE.jpg WIDTH CANDIDATE…

use fast_image_resize as fir;
use image::{DynamicImage, GrayImage};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (source, width, candidates) = match args.as_slice() {
        [s, w, rest @ ..] if !rest.is_empty() => (s, w.parse::<u32>().expect("width"), rest),
        _ => {
            eprintln!("usage: quality SOURCE WIDTH CANDIDATE…");
            std::process::exit(2);
        }
    };
    let src = image::open(source).expect("source").to_rgb8();
    let height = (src.height() as f64 * width as f64 / src.width() as f64).round() as u32;
    let reference = lanczos(&DynamicImage::ImageRgb8(src), width, height);
    for c in candidates {
        let bytes = std::fs::read(c).expect("candidate");
        let img = image::load_from_memory(&bytes).expect("decode candidate").to_luma8();
        let img = if img.dimensions() == reference.dimensions() {
            img
        } else {
            lanczos(&DynamicImage::ImageLuma8(img), width, height)
        };
        println!("{c}\t{}\t{:.4}", bytes.len(), ssim(&reference, &img));
    }
}

fn lanczos(img: &DynamicImage, w: u32, h: u32) -> GrayImage {
    let rgb = img.to_rgb8();
    let src = fir::images::ImageRef::new(rgb.width(), rgb.height(), rgb.as_raw(), fir::PixelType::U8x3).unwrap();
    let mut dst = fir::images::Image::new(w, h, fir::PixelType::U8x3);
    let opts = fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Lanczos3));
    fir::Resizer::new().resize(&src, &mut dst, &opts).unwrap();
    DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, dst.into_vec()).unwrap()).to_luma8()
}

/// Mean SSIM over non-overlapping 8×8 windows (Wang et al. constants, L = 255).
fn ssim(a: &GrayImage, b: &GrayImage) -> f64 {
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (w, h) = (a.width().min(b.width()), a.height().min(b.height()));
    let (mut total, mut n) = (0.0, 0usize);
    for by in (0..h.saturating_sub(7)).step_by(8) {
        for bx in (0..w.saturating_sub(7)).step_by(8) {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for y in by..by + 8 {
                for x in bx..bx + 8 {
                    let (pa, pb) = (a.get_pixel(x, y).0[0] as f64, b.get_pixel(x, y).0[0] as f64);
                    sa += pa;
                    sb += pb;
                    saa += pa * pa;
                    sbb += pb * pb;
                    sab += pa * pb;
                }
            }
            let m = 64.0;
            let (ma, mb) = (sa / m, sb / m);
            let (va, vb, cov) = (saa / m - ma * ma, sbb / m - mb * mb, sab / m - ma * mb);
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            n += 1;
        }
    }
    total / n.max(1) as f64
}
