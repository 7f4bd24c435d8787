//! `negative`: every channel inverted, alpha kept.

use super::pixels::map_rgb;
use image::DynamicImage;

pub fn negative(img: DynamicImage) -> DynamicImage {
    map_rgb(img, |[r, g, b]| [255 - r, 255 - g, 255 - b])
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn channels_are_inverted() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([255, 0, 100])));
        assert_eq!(negative(img).to_rgb8().get_pixel(0, 0).0, [0, 255, 155]);
    }
}
