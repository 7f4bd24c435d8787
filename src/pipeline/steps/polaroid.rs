//! `polaroid`: the image on an instant-photo card (a frame of `color`, deeper at the bottom),
//! with a soft drop shadow, turned by `rotate` degrees over `background`.

use super::check_output;
use super::pixels::{from_rgba, to_rgba};
use super::rotate::rotate;
use super::shadow::{shadow, Shadow};
use crate::pipeline::error::Result;
use crate::pipeline::Budget;
use crate::plan::Rgba;
use image::{imageops, DynamicImage, GenericImageView, Pixel, Rgba as Px, RgbaImage};

/// The card's margin on the top and sides: 5 % of the image's short side (at least 2 px); the
/// bottom margin is four times that, as on an instant photo.
pub fn margin(w: u32, h: u32) -> u32 {
    ((w.min(h) as f64 * 0.05).round() as u32).max(2)
}

/// The card, its shadow, turned clockwise by `degrees` and laid on `background`.
pub fn polaroid(
    img: DynamicImage,
    color: Rgba,
    degrees: u32,
    background: Rgba,
    budget: &Budget,
) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    let m = margin(w, h);
    let (cw, ch) = (w as u64 + 2 * m as u64, h as u64 + 5 * m as u64);
    check_output(cw, ch, budget.limits.max_pixels)?;
    let had_alpha = img.color().has_alpha();
    let mut card = RgbaImage::from_pixel(cw as u32, ch as u32, Px(color.0));
    imageops::overlay(&mut card, &to_rgba(img), m as i64, m as i64);
    let offset = (m / 3).max(1) as i32;
    let drop = Shadow {
        blur: m as f32 / 2.0,
        opacity: 50,
        vector: [offset, offset],
        color: Rgba::BLACK,
        background: Rgba::TRANSPARENT,
    };
    let shadowed = shadow(DynamicImage::ImageRgba8(card), drop, budget)?;
    let mut out = to_rgba(rotate(shadowed, degrees % 360, Rgba::TRANSPARENT, budget)?);
    // the background goes under the card in place (no second canvas of the turned size)
    for p in out.pixels_mut() {
        let mut under = Px(background.0);
        under.blend(p);
        *p = under;
    }
    Ok(from_rgba(out, had_alpha, background))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;
    use image::{Rgb, RgbImage};

    fn blue() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(100, 80, Rgb([0, 0, 255])))
    }

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    #[test]
    fn an_upright_card_has_a_frame_deeper_at_the_bottom() {
        let out = polaroid(blue(), Rgba::WHITE, 0, Rgba([0, 255, 0, 255]), &budget()).unwrap();
        let out = out.as_rgb8().expect("an opaque background keeps RGB");
        // margin 4: the card is 108×100 at (3,3); its shadow (blur 2, offset 1) grows the canvas
        assert_eq!(out.dimensions(), (116, 108));
        assert_eq!(out.get_pixel(4, 4).0, [255, 255, 255], "frame, top left");
        assert_eq!(out.get_pixel(50, 5).0, [255, 255, 255], "frame, top");
        assert_eq!(out.get_pixel(50, 95).0, [255, 255, 255], "frame, bottom");
        assert_eq!(out.get_pixel(50, 40).0, [0, 0, 255], "the photo");
        let corner = out.get_pixel(115, 0).0;
        assert!(corner[0] == 0 && corner[1] > 240, "background beyond the shadow: {corner:?}");
        let shade = out.get_pixel(113, 60).0;
        assert!(shade[1] < 245, "the shadow darkens the background: {shade:?}");
    }

    #[test]
    fn a_turned_card_shows_the_background_at_the_corners() {
        let out = polaroid(blue(), Rgba::WHITE, 30, Rgba::TRANSPARENT, &budget()).unwrap();
        let out = out.as_rgba8().expect("a transparent background makes RGBA");
        let (w, h) = out.dimensions();
        assert!(w > 116 && h > 108, "{w}x{h}");
        for (x, y) in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)] {
            assert_eq!(out.get_pixel(x, y).0[3], 0, "corner {x},{y}");
        }
        let centre = out.get_pixel(w / 2, h / 2 - 5).0;
        assert_eq!(centre, [0, 0, 255, 255]);
    }

    #[test]
    fn the_card_is_checked_against_the_pixel_limit() {
        let tight = Budget::start(Limits { max_pixels: 100 * 80, ..Limits::default() });
        assert!(matches!(
            polaroid(blue(), Rgba::WHITE, 0, Rgba::WHITE, &tight),
            Err(crate::pipeline::PipelineError::OverLimit(_))
        ));
    }
}
