//! `vignette`: the image fades into `background` towards its edges, outside an ellipse.

use super::pixels::{fade_to, from_rgba, to_rgba};
use crate::pipeline::error::Result;
use crate::pipeline::Budget;
use crate::plan::Rgba;
use image::DynamicImage;

/// Where the fade starts: the ellipse at half the inscribed one (1 = touches the sides); it
/// reaches its full strength at the corners (√2).
const INNER: f64 = 0.5;
const CORNER: f64 = std::f64::consts::SQRT_2;

/// Fade towards `background` with `amount` (0…100) percent opacity at the corners. `gaussian`
/// fades along a Gaussian falloff (soft start, steep middle), otherwise linearly; both rise
/// monotonically from the inner ellipse to the corners, so brightness moves steadily towards
/// the background along every ray from the centre.
pub fn vignette(
    img: DynamicImage,
    amount: u8,
    gaussian: bool,
    background: Rgba,
    budget: &Budget,
) -> Result<DynamicImage> {
    if amount == 0 {
        return Ok(img);
    }
    let had_alpha = img.color().has_alpha();
    let mut buf = to_rgba(img);
    let (cx, cy) = (buf.width() as f64 / 2.0, buf.height() as f64 / 2.0);
    let opacity = amount.min(100) as f64 / 100.0;
    for (y, row) in buf.enumerate_rows_mut() {
        if y % 64 == 0 {
            budget.check()?;
        }
        let dy = (y as f64 + 0.5 - cy) / cy;
        for (x, _, p) in row {
            let dx = (x as f64 + 0.5 - cx) / cx;
            let fade = falloff(dx.hypot(dy), gaussian) * opacity;
            if fade > 0.0 {
                fade_to(p, background, 1.0 - fade);
            }
        }
    }
    Ok(from_rgba(buf, had_alpha, background))
}

/// 0 inside the inner ellipse, rising to 1 at the corners.
fn falloff(d: f64, gaussian: bool) -> f64 {
    let t = ((d - INNER) / (CORNER - INNER)).clamp(0.0, 1.0);
    if gaussian {
        // 1 − e^(−t²/2σ²), scaled so that t = 1 gives 1
        let g = |t: f64| 1.0 - (-t * t / (2.0 * 0.4 * 0.4)).exp();
        g(t) / g(1.0)
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;
    use image::{Rgb, RgbImage};

    fn grey() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(101, 61, Rgb([200, 200, 200])))
    }

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    #[test]
    fn brightness_falls_monotonically_towards_the_corners_on_black() {
        for gaussian in [true, false] {
            let out = vignette(grey(), 80, gaussian, Rgba::BLACK, &budget()).unwrap();
            let out = out.as_rgb8().expect("opaque stays RGB");
            assert_eq!(out.get_pixel(50, 30).0, [200; 3], "the centre is untouched");
            assert!(out.get_pixel(0, 0).0[0] < 60, "corner {:?}", out.get_pixel(0, 0));
            // along the diagonal from the centre to the top-left corner
            let ray: Vec<u8> = (0..=30).map(|i| out.get_pixel(50 - i * 50 / 30, 30 - i).0[0]).collect();
            assert!(ray.windows(2).all(|w| w[1] <= w[0]), "{ray:?}");
            assert!(ray[30] < ray[15], "{ray:?}");
        }
    }

    #[test]
    fn the_amount_is_the_opacity_at_the_corners_and_zero_leaves_the_image() {
        let out = vignette(grey(), 50, false, Rgba::WHITE, &budget()).unwrap().to_rgb8();
        let corner = out.get_pixel(0, 0).0[0];
        assert!((222..=228).contains(&corner), "half way to white: {corner}");
        assert_eq!(vignette(grey(), 0, true, Rgba::BLACK, &budget()).unwrap(), grey());
    }

    #[test]
    fn a_transparent_background_fades_alpha() {
        let out = vignette(grey(), 100, true, Rgba::TRANSPARENT, &budget()).unwrap();
        let out = out.as_rgba8().expect("transparency makes RGBA");
        assert!(out.get_pixel(0, 0).0[3] < 20);
        assert_eq!(out.get_pixel(50, 30).0[3], 255);
    }
}
