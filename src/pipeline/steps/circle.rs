//! `circle`: keep the largest centred circle, the rest becomes `background`.

use super::pixels::{fade_to, from_rgba, to_rgba};
use crate::plan::Rgba;
use image::DynamicImage;

pub fn circle(img: DynamicImage, background: Rgba) -> DynamicImage {
    let had_alpha = img.color().has_alpha();
    let mut buf = to_rgba(img);
    let (w, h) = (buf.width() as f64, buf.height() as f64);
    let (cx, cy, r) = (w / 2.0, h / 2.0, w.min(h) / 2.0);
    for (x, y, p) in buf.enumerate_pixels_mut() {
        let d = ((x as f64 + 0.5 - cx).powi(2) + (y as f64 + 0.5 - cy).powi(2)).sqrt();
        // one pixel of anti-aliasing at the edge
        let inside = (r - d + 0.5).clamp(0.0, 1.0);
        if inside < 1.0 {
            fade_to(p, background, inside);
        }
    }
    from_rgba(buf, had_alpha, background)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn red() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(20, 10, Rgb([255, 0, 0])))
    }

    #[test]
    fn corners_become_transparent_and_the_centre_stays() {
        let out = circle(red(), Rgba::TRANSPARENT);
        let out = out.as_rgba8().expect("a transparent background needs alpha");
        assert_eq!(out.dimensions(), (20, 10));
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0, 0]);
        assert_eq!(out.get_pixel(3, 5).0, [0, 0, 0, 0]);
        assert_eq!(out.get_pixel(10, 5).0, [255, 0, 0, 255]);
    }

    #[test]
    fn an_opaque_background_keeps_rgb() {
        let out = circle(red(), Rgba::WHITE);
        let out = out.as_rgb8().expect("opaque in, opaque out");
        assert_eq!(out.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(out.get_pixel(10, 5).0, [255, 0, 0]);
    }
}
