//! `blackwhite`: each pixel to pure black or white by its luma against `threshold` percent.

use super::pixels::{luma, map_rgb};
use image::DynamicImage;

pub fn blackwhite(img: DynamicImage, threshold: u8) -> DynamicImage {
    let cut = (threshold as u32 * 255 / 100) as u8;
    map_rgb(img, |[r, g, b]| if luma(r, g, b) >= cut { [255; 3] } else { [0; 3] })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn luma_at_or_over_the_cut_is_white() {
        // 50 % cuts at 127
        let img = RgbImage::from_fn(3, 1, |x, _| Rgb([[126, 127, 0][x as usize]; 3]));
        let out = blackwhite(DynamicImage::ImageRgb8(img), 50).to_rgb8();
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(1, 0).0, [255, 255, 255]);
        assert_eq!(out.get_pixel(2, 0).0, [0, 0, 0]);
    }
}
