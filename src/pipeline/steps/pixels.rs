//! Pixel helpers the steps share: the decoder hands steps 8-bit RGB or RGBA, and steps that need
//! an alpha channel work in RGBA and go back to RGB when they added no transparency, so an opaque
//! photo stays a 3-channel image (smaller to encode, and JPEG-ready).

use crate::plan::Rgba;
use image::{DynamicImage, Rgba as Px, RgbaImage};

/// Rec. 601 luma, rounded: the grey every colour map here agrees on.
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 299 + g as u32 * 587 + b as u32 * 114 + 500) / 1000) as u8
}

/// Apply a per-pixel colour function, keeping alpha.
pub fn map_rgb(mut img: DynamicImage, f: impl Fn([u8; 3]) -> [u8; 3]) -> DynamicImage {
    match &mut img {
        DynamicImage::ImageRgb8(b) => b.pixels_mut().for_each(|p| p.0 = f(p.0)),
        DynamicImage::ImageRgba8(b) => b.pixels_mut().for_each(|p| {
            let [r, g, bl] = f([p.0[0], p.0[1], p.0[2]]);
            p.0 = [r, g, bl, p.0[3]];
        }),
        _ => {}
    }
    img
}

/// The image as RGBA, without a copy when it already is.
pub fn to_rgba(img: DynamicImage) -> RgbaImage {
    match img {
        DynamicImage::ImageRgba8(b) => b,
        other => other.to_rgba8(),
    }
}

/// Keep RGB when the result has no transparency the input did not have.
pub fn from_rgba(buf: RgbaImage, had_alpha: bool, background: Rgba) -> DynamicImage {
    let out = DynamicImage::ImageRgba8(buf);
    if !had_alpha && background.0[3] == 255 {
        DynamicImage::ImageRgb8(out.to_rgb8())
    } else {
        out
    }
}

/// Mix `background` into a pixel: `keep` 1 leaves it, 0 replaces it (anti-aliased mask edges).
pub fn fade_to(p: &mut Px<u8>, background: Rgba, keep: f64) {
    for i in 0..4 {
        p.0[i] = (p.0[i] as f64 * keep + background.0[i] as f64 * (1.0 - keep)).round() as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_weighs_green_most() {
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(0, 0, 0), 0);
        assert_eq!(luma(255, 0, 0), 76);
        assert_eq!(luma(0, 255, 0), 150);
        assert_eq!(luma(0, 0, 255), 29);
    }

    #[test]
    fn map_rgb_keeps_alpha() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_pixel(2, 1, Px([10, 20, 30, 40])));
        let out = map_rgb(img, |[r, g, b]| [b, g, r]).to_rgba8();
        assert_eq!(out.get_pixel(1, 0).0, [30, 20, 10, 40]);
    }

    #[test]
    fn rgba_goes_back_to_rgb_only_when_nothing_became_transparent() {
        let buf = RgbaImage::from_pixel(1, 1, Px([1, 2, 3, 255]));
        assert!(matches!(from_rgba(buf.clone(), false, Rgba::WHITE), DynamicImage::ImageRgb8(_)));
        assert!(matches!(from_rgba(buf.clone(), true, Rgba::WHITE), DynamicImage::ImageRgba8(_)));
        assert!(matches!(from_rgba(buf, false, Rgba::TRANSPARENT), DynamicImage::ImageRgba8(_)));
    }

    #[test]
    fn fading_mixes_towards_the_background() {
        let mut p = Px([200, 100, 0, 255]);
        fade_to(&mut p, Rgba([0, 0, 200, 0]), 0.5);
        assert_eq!(p.0, [100, 50, 100, 128]);
    }
}
