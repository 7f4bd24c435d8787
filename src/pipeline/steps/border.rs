//! `border`: a frame of `color` around the image, which grows by the border on every side.

use super::check_output;
use super::pixels::{from_rgba, to_rgba};
use crate::pipeline::error::Result;
use crate::pipeline::Budget;
use crate::plan::Rgba;
use image::{imageops, DynamicImage, GenericImageView, Rgba as Px, RgbaImage};

/// The image over a canvas of `color`, `width` larger on each side. `background` decides only
/// whether the result keeps an alpha channel: the canvas is opaque wherever `color` is.
pub fn border(img: DynamicImage, width: u32, color: Rgba, background: Rgba, budget: &Budget) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    check_output(w as u64 + 2 * width as u64, h as u64 + 2 * width as u64, budget.limits.max_pixels)?;
    if width == 0 {
        return Ok(img);
    }
    let had_alpha = img.color().has_alpha();
    let src = to_rgba(img);
    let (w, h) = (src.width() + 2 * width, src.height() + 2 * width);
    let mut out = RgbaImage::from_pixel(w, h, Px(color.0));
    imageops::overlay(&mut out, &src, width as i64, width as i64);
    Ok(from_rgba(out, had_alpha, background))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;
    use image::{Rgb, RgbImage};

    fn red() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(20, 10, Rgb([255, 0, 0])))
    }

    #[test]
    fn the_frame_is_the_colour_and_the_image_sits_inside() {
        let budget = Budget::start(Limits::default());
        let out = border(red(), 5, Rgba([0, 255, 0, 255]), Rgba::WHITE, &budget).unwrap();
        let out = out.as_rgb8().expect("opaque stays RGB");
        assert_eq!(out.dimensions(), (30, 20));
        assert_eq!(out.get_pixel(0, 0).0, [0, 255, 0]);
        assert_eq!(out.get_pixel(4, 10).0, [0, 255, 0]);
        assert_eq!(out.get_pixel(5, 5).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(24, 14).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(25, 15).0, [0, 255, 0]);
    }

    #[test]
    fn the_grown_size_is_checked_first() {
        let tight = Budget::start(Limits { max_pixels: 200, ..Limits::default() });
        assert!(border(red(), 0, Rgba::BLACK, Rgba::WHITE, &tight).is_ok());
        assert!(matches!(
            border(red(), 1, Rgba::BLACK, Rgba::WHITE, &tight),
            Err(crate::pipeline::PipelineError::OverLimit(_))
        ));
    }
}
