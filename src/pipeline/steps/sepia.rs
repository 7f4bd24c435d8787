//! `sepia`: the classic sepia matrix, mixed with the original by `tone` percent.

use super::pixels::map_rgb;
use image::DynamicImage;

pub fn sepia(img: DynamicImage, tone: u8) -> DynamicImage {
    let t = tone as f32 / 100.0;
    map_rgb(img, |[r, g, b]| {
        let (r, g, b) = (r as f32, g as f32, b as f32);
        let sr = (r * 0.393 + g * 0.769 + b * 0.189).min(255.0);
        let sg = (r * 0.349 + g * 0.686 + b * 0.168).min(255.0);
        let sb = (r * 0.272 + g * 0.534 + b * 0.131).min(255.0);
        let mix = |orig: f32, s: f32| (orig + (s - orig) * t).round().clamp(0.0, 255.0) as u8;
        [mix(r, sr), mix(g, sg), mix(b, sb)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn grey() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([100, 100, 100])))
    }

    #[test]
    fn full_tone_applies_the_sepia_matrix() {
        // 100 × (0.393+0.769+0.189, 0.349+0.686+0.168, 0.272+0.534+0.131)
        assert_eq!(sepia(grey(), 100).to_rgb8().get_pixel(0, 0).0, [135, 120, 94]);
    }

    #[test]
    fn tone_mixes_with_the_original() {
        assert_eq!(sepia(grey(), 0).to_rgb8().get_pixel(0, 0).0, [100, 100, 100]);
        assert_eq!(sepia(grey(), 50).to_rgb8().get_pixel(0, 0).0, [118, 110, 97]);
    }
}
