//! `flip` (upside down) and `flop` (mirror): the two axis mirrors, one step each.

use image::DynamicImage;

/// Mirror top to bottom.
pub fn flip(img: DynamicImage) -> DynamicImage {
    img.flipv()
}

/// Mirror left to right.
pub fn flop(img: DynamicImage) -> DynamicImage {
    img.fliph()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn corner() -> DynamicImage {
        let mut img = RgbImage::new(3, 2);
        img.put_pixel(0, 0, Rgb([255, 0, 0]));
        DynamicImage::ImageRgb8(img)
    }

    #[test]
    fn flip_moves_the_top_row_to_the_bottom() {
        let out = flip(corner()).to_rgb8();
        assert_eq!(out.dimensions(), (3, 2));
        assert_eq!(out.get_pixel(0, 1).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
    }

    #[test]
    fn flop_moves_the_left_column_to_the_right() {
        let out = flop(corner()).to_rgb8();
        assert_eq!(out.get_pixel(2, 0).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
    }
}
