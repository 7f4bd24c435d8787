//! `watermark`: overlay another stored image. The overlay is decoded once per job by
//! `pipeline::run_with`, which is why this step is not reached through `steps::apply`.

use super::check_output;
use super::pixels::{from_rgba, to_rgba};
use super::resize::{resample, ResizeGeometry};
use super::Align;
use crate::pipeline::error::Result;
use crate::pipeline::Budget;
use crate::plan::Rgba;
use image::{imageops, DynamicImage};

/// Overlay `mark` at `size` percent of its own size, placed by `align` (keeping its alpha).
pub fn watermark(
    img: DynamicImage,
    mark: &DynamicImage,
    size: f32,
    align: Align,
    budget: &Budget,
) -> Result<DynamicImage> {
    let max_pixels = budget.limits.max_pixels;
    let scale = (size as f64 / 100.0).max(0.0);
    let (mw, mh) = ((mark.width() as f64 * scale).round() as u32, (mark.height() as f64 * scale).round() as u32);
    if mw == 0 || mh == 0 {
        return Ok(img);
    }
    check_output(mw as u64, mh as u64, max_pixels)?;
    let mark = DynamicImage::ImageRgba8(mark.to_rgba8());
    let mark = resample(&mark, ResizeGeometry::whole(mark.width(), mark.height(), (mw, mh)))?;
    let had_alpha = img.color().has_alpha();
    let mut base = to_rgba(img);
    let x = ((base.width() as f64 - mw as f64) * align.x).round() as i64;
    let y = ((base.height() as f64 - mh as f64) * align.y).round() as i64;
    imageops::overlay(&mut base, &mark.to_rgba8(), x, y);
    Ok(from_rgba(base, had_alpha, Rgba::WHITE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;
    use image::{Rgb, RgbImage, Rgba as Px, RgbaImage};

    fn base() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(40, 20, Rgb([0, 0, 255])))
    }

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    #[test]
    fn the_mark_lands_in_the_aligned_corner_at_its_size() {
        let mark = DynamicImage::ImageRgb8(RgbImage::from_pixel(20, 10, Rgb([255, 0, 0])));
        let out = watermark(base(), &mark, 50.0, Align { x: 1.0, y: 1.0 }, &budget()).unwrap();
        let out = out.as_rgb8().expect("opaque base stays RGB");
        assert_eq!(out.dimensions(), (40, 20));
        assert_eq!(out.get_pixel(30, 15).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(39, 19).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(29, 15).0, [0, 0, 255]);
        assert_eq!(out.get_pixel(30, 14).0, [0, 0, 255]);
    }

    #[test]
    fn the_marks_transparency_shows_the_base() {
        let mark = DynamicImage::ImageRgba8(RgbaImage::from_fn(10, 10, |x, _| {
            if x < 5 {
                Px([255, 0, 0, 255])
            } else {
                Px([255, 0, 0, 0])
            }
        }));
        let out = watermark(base(), &mark, 100.0, Align { x: 0.0, y: 0.0 }, &budget()).unwrap().to_rgb8();
        assert_eq!(out.get_pixel(1, 5).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(8, 5).0, [0, 0, 255]);
    }

    #[test]
    fn a_zero_size_mark_leaves_the_image() {
        let mark = DynamicImage::ImageRgb8(RgbImage::new(10, 10));
        assert_eq!(watermark(base(), &mark, 0.0, Align::CENTER, &budget()).unwrap(), base());
    }
}
