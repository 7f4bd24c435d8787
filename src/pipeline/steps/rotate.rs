//! `rotate`: quarter turns exactly, any other angle onto a canvas that holds the whole result.

use super::check_output;
use super::pixels::{from_rgba, to_rgba};
use crate::pipeline::error::Result;
use crate::pipeline::Budget;
use crate::plan::Rgba;
use image::{DynamicImage, GenericImageView, Rgba as Px, RgbaImage};

/// Rotate clockwise by `degrees` (0…359); the corners a free angle uncovers are `background`.
/// The limit is checked against the diagonal square, the largest canvas any angle needs.
pub fn rotate(img: DynamicImage, degrees: u32, background: Rgba, budget: &Budget) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    let diagonal = ((w as f64).hypot(h as f64)).ceil() as u64;
    check_output(diagonal, diagonal, budget.limits.max_pixels)?;
    Ok(match degrees {
        0 => img,
        90 => img.rotate90(),
        180 => img.rotate180(),
        270 => img.rotate270(),
        _ => {
            let had_alpha = img.color().has_alpha();
            from_rgba(rotate_any(&to_rgba(img), degrees as f64, background, budget)?, had_alpha, background)
        }
    })
}

/// Clockwise rotation by any angle onto a canvas that holds the whole result, bilinear sampling.
fn rotate_any(src: &RgbaImage, degrees: f64, bg: Rgba, budget: &Budget) -> Result<RgbaImage> {
    let (w, h) = (src.width() as f64, src.height() as f64);
    let (sin, cos) = degrees.to_radians().sin_cos();
    let nw = (w * cos.abs() + h * sin.abs()).ceil() as u32;
    let nh = (w * sin.abs() + h * cos.abs()).ceil() as u32;
    let (cx, cy, ncx, ncy) = (w / 2.0, h / 2.0, nw as f64 / 2.0, nh as f64 / 2.0);
    let mut out = RgbaImage::new(nw, nh);
    for (y, row) in out.enumerate_rows_mut() {
        if y % 64 == 0 {
            budget.check()?;
        }
        for (x, _, p) in row {
            let (dx, dy) = (x as f64 + 0.5 - ncx, y as f64 + 0.5 - ncy);
            let sx = dx * cos + dy * sin + cx - 0.5;
            let sy = -dx * sin + dy * cos + cy - 0.5;
            *p = sample_bilinear(src, sx, sy, bg);
        }
    }
    Ok(out)
}

/// The source at a fractional position; outside the image reads as `bg`, so edges blend into it.
fn sample_bilinear(src: &RgbaImage, x: f64, y: f64, bg: Rgba) -> Px<u8> {
    let (w, h) = (src.width() as i64, src.height() as i64);
    let (x0, y0) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let at = |xi: i64, yi: i64| -> [f64; 4] {
        if xi < 0 || yi < 0 || xi >= w || yi >= h {
            bg.0.map(|c| c as f64)
        } else {
            src.get_pixel(xi as u32, yi as u32).0.map(|c| c as f64)
        }
    };
    let (a, b, c, d) = (at(x0, y0), at(x0 + 1, y0), at(x0, y0 + 1), at(x0 + 1, y0 + 1));
    let mut out = [0u8; 4];
    for i in 0..4 {
        let top = a[i] * (1.0 - fx) + b[i] * fx;
        let bottom = c[i] * (1.0 - fx) + d[i] * fx;
        out[i] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
    Px(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;
    use image::{Rgb, RgbImage};

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    #[test]
    fn a_quarter_turn_is_exact_and_clockwise() {
        let mut img = RgbImage::new(4, 2);
        img.put_pixel(0, 0, Rgb([255, 0, 0]));
        let out = rotate(DynamicImage::ImageRgb8(img), 90, Rgba::WHITE, &budget()).unwrap().to_rgb8();
        assert_eq!(out.dimensions(), (2, 4));
        // the top-left corner turns to the top-right
        assert_eq!(out.get_pixel(1, 0).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
    }

    #[test]
    fn a_free_angle_grows_the_canvas_and_fills_corners_with_the_background() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(100, 100, Rgb([255, 0, 0])));
        let out = rotate(img, 45, Rgba([0, 255, 0, 255]), &budget()).unwrap();
        assert_eq!(out.dimensions(), (142, 142));
        let out = out.as_rgb8().expect("an opaque background keeps RGB").clone();
        assert_eq!(out.get_pixel(0, 0).0, [0, 255, 0]);
        assert_eq!(out.get_pixel(71, 71).0, [255, 0, 0]);
    }

    #[test]
    fn a_transparent_background_makes_the_result_rgba() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(10, 10, Rgb([9, 9, 9])));
        let out = rotate(img, 30, Rgba::TRANSPARENT, &budget()).unwrap();
        assert_eq!(out.as_rgba8().expect("rgba").get_pixel(0, 0).0, [0, 0, 0, 0]);
    }

    #[test]
    fn the_diagonal_is_checked_against_the_pixel_limit() {
        let img = DynamicImage::ImageRgb8(RgbImage::new(30, 40));
        let tight = Budget::start(Limits { max_pixels: 2499, ..Limits::default() });
        assert!(matches!(rotate(img, 90, Rgba::WHITE, &tight), Err(crate::pipeline::PipelineError::OverLimit(_))));
    }
}
