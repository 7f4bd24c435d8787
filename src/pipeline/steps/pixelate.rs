//! `pixelate`: blocks of `block`×`block` pixels of one colour each.

use super::resize::{resample, ResizeGeometry};
use crate::pipeline::error::Result;
use image::{imageops, DynamicImage, GenericImageView};

/// Average down by `block` with Lanczos (a fair mean of each block), then blow back up with
/// nearest-neighbour so each reduced pixel becomes a sharp block. `block` ≤ 1 leaves the image.
pub fn pixelate(img: DynamicImage, block: u32) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    if block <= 1 {
        return Ok(img);
    }
    let small = (w.div_ceil(block).max(1), h.div_ceil(block).max(1));
    let reduced = resample(&img, ResizeGeometry::whole(w, h, small))?;
    Ok(reduced.resize_exact(w, h, imageops::FilterType::Nearest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn blocks_are_uniform_and_the_size_is_kept() {
        let img = RgbImage::from_fn(40, 20, |x, y| Rgb([(x * 6) as u8, (y * 12) as u8, ((x + y) % 7 * 30) as u8]));
        let out = pixelate(DynamicImage::ImageRgb8(img), 10).unwrap().to_rgb8();
        assert_eq!(out.dimensions(), (40, 20));
        for (bx, by) in [(0, 0), (10, 10), (30, 0)] {
            let first = out.get_pixel(bx, by).0;
            for (x, y) in [(bx + 9, by), (bx, by + 9), (bx + 9, by + 9), (bx + 4, by + 5)] {
                assert_eq!(out.get_pixel(x, y).0, first, "block at {bx},{by}");
            }
        }
        assert_ne!(out.get_pixel(0, 0).0, out.get_pixel(30, 10).0);
    }

    #[test]
    fn a_block_of_one_leaves_the_image() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(5, 5, |x, _| Rgb([x as u8; 3])));
        assert_eq!(pixelate(img.clone(), 1).unwrap(), img);
    }
}
