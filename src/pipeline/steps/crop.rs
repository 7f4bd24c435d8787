//! `crop`: keep one rectangle of the image.

use crate::pipeline::error::{PipelineError, Result};
use image::{DynamicImage, GenericImageView};

/// Keep `width`×`height` from `x`,`y`. A rectangle partly outside keeps only the overlapping
/// part (as Filestack does); one that starts outside is the caller's mistake, a 400.
pub fn crop(img: DynamicImage, x: u32, y: u32, width: u32, height: u32) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    if x >= w || y >= h {
        return Err(PipelineError::bad_option(
            "crop",
            "dim",
            format!("crop origin {x},{y} is outside the {w}x{h} image"),
        ));
    }
    Ok(img.crop_imm(x, y, width.min(w - x), height.min(h - y)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn numbered() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(20, 10, |x, y| Rgb([x as u8, y as u8, 0])))
    }

    #[test]
    fn keeps_the_rectangle_asked_for() {
        let out = crop(numbered(), 3, 2, 5, 4).unwrap().to_rgb8();
        assert_eq!(out.dimensions(), (5, 4));
        assert_eq!(out.get_pixel(0, 0).0, [3, 2, 0]);
        assert_eq!(out.get_pixel(4, 3).0, [7, 5, 0]);
    }

    #[test]
    fn a_rectangle_past_the_edge_keeps_the_overlap() {
        let out = crop(numbered(), 15, 8, 100, 100).unwrap().to_rgb8();
        assert_eq!(out.dimensions(), (5, 2));
        assert_eq!(out.get_pixel(4, 1).0, [19, 9, 0]);
    }

    #[test]
    fn an_origin_outside_is_a_bad_option() {
        let e = crop(numbered(), 20, 0, 1, 1).unwrap_err();
        assert!(matches!(e, PipelineError::BadOption { task: "crop", option: Some("dim"), .. }), "{e}");
    }
}
