//! `rounded_corners`: mask the corners outside quarter circles, with a soft edge.

use super::pixels::{fade_to, from_rgba, to_rgba};
use crate::plan::Rgba;
use image::DynamicImage;

/// Mask the corners outside quarter circles of `radius` (`None`: as round as the image allows),
/// with `blur` pixels of soft edge.
pub fn rounded_corners(img: DynamicImage, radius: Option<u32>, blur: f32, background: Rgba) -> DynamicImage {
    let had_alpha = img.color().has_alpha();
    let mut buf = to_rgba(img);
    let (w, h) = (buf.width() as f64, buf.height() as f64);
    let r = radius.map(f64::from).unwrap_or(f64::MAX).min(w.min(h) / 2.0);
    let soft = (blur as f64).max(0.5);
    for (x, y, p) in buf.enumerate_pixels_mut() {
        let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
        // distance past the corner circle, for pixels in a corner square only
        let cx = if px < r {
            r
        } else if px > w - r {
            w - r
        } else {
            continue;
        };
        let cy = if py < r {
            r
        } else if py > h - r {
            h - r
        } else {
            continue;
        };
        let outside = ((px - cx).hypot(py - cy) - r + soft / 2.0) / soft;
        let keep = 1.0 - outside.clamp(0.0, 1.0);
        if keep < 1.0 {
            fade_to(p, background, keep);
        }
    }
    from_rgba(buf, had_alpha, background)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn blue() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(40, 30, Rgb([0, 0, 255])))
    }

    #[test]
    fn corners_take_the_background_and_edges_stay() {
        let out = rounded_corners(blue(), Some(10), 0.3, Rgba::WHITE);
        let out = out.as_rgb8().expect("opaque background keeps RGB");
        assert_eq!(out.dimensions(), (40, 30));
        assert_eq!(out.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(out.get_pixel(39, 29).0, [255, 255, 255]);
        // the middle of each edge is outside every corner square
        assert_eq!(out.get_pixel(20, 0).0, [0, 0, 255]);
        assert_eq!(out.get_pixel(0, 15).0, [0, 0, 255]);
        assert_eq!(out.get_pixel(10, 10).0, [0, 0, 255]);
    }

    #[test]
    fn max_radius_is_half_the_short_side() {
        let out = rounded_corners(blue(), None, 0.3, Rgba::TRANSPARENT).to_rgba8();
        // radius 15: (1,1) is well outside the corner circle, the top edge's middle is not
        assert_eq!(out.get_pixel(1, 1).0[3], 0);
        assert_eq!(out.get_pixel(20, 0).0[3], 255);
    }
}
