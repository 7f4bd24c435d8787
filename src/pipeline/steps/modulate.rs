//! `modulate`: hue rotation, then saturation around the pixel's grey, then brightness.

use super::pixels::{luma, map_rgb};
use image::DynamicImage;

/// `brightness` and `saturation` are factors (1 keeps), `hue` is degrees.
pub fn modulate(img: DynamicImage, brightness: f32, saturation: f32, hue: f32) -> DynamicImage {
    let img = if hue != 0.0 { img.huerotate(hue as i32) } else { img };
    map_rgb(img, |[r, g, b]| {
        let l = luma(r, g, b) as f32;
        let adj = |c: u8| ((l + (c as f32 - l) * saturation) * brightness).round().clamp(0.0, 255.0) as u8;
        [adj(r), adj(g), adj(b)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn red() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([200, 0, 0])))
    }

    #[test]
    fn neutral_settings_keep_pixels() {
        assert_eq!(modulate(red(), 1.0, 1.0, 0.0).to_rgb8().get_pixel(0, 0).0, [200, 0, 0]);
    }

    #[test]
    fn zero_saturation_is_grey_and_brightness_scales() {
        // luma(200,0,0) = 60
        assert_eq!(modulate(red(), 1.0, 0.0, 0.0).to_rgb8().get_pixel(0, 0).0, [60, 60, 60]);
        assert_eq!(modulate(red(), 0.5, 1.0, 0.0).to_rgb8().get_pixel(0, 0).0, [100, 0, 0]);
    }

    #[test]
    fn a_hue_turn_moves_red_towards_green() {
        let p = modulate(red(), 1.0, 1.0, 120.0).to_rgb8().get_pixel(0, 0).0;
        assert!(p[1] > p[0] && p[1] > p[2], "{p:?}");
    }
}
