//! `monochrome`: every pixel to its grey (luma), alpha kept.

use super::pixels::{luma, map_rgb};
use image::DynamicImage;

pub fn monochrome(img: DynamicImage) -> DynamicImage {
    map_rgb(img, |[r, g, b]| {
        let l = luma(r, g, b);
        [l, l, l]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    #[test]
    fn colours_become_their_luma_and_alpha_stays() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_pixel(2, 2, Rgba([255, 0, 0, 77])));
        let out = monochrome(img).to_rgba8();
        assert_eq!(out.get_pixel(1, 1).0, [76, 76, 76, 77]);
    }
}
