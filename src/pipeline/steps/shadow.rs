//! `shadow`: a blurred copy of the image's silhouette in `color`, offset by `vector`, under the
//! image, on a canvas grown to hold both.

use super::blur::blur_buffer;
use super::check_output;
use super::pixels::{from_rgba, to_rgba};
use crate::pipeline::error::Result;
use crate::pipeline::Budget;
use crate::plan::Rgba;
use image::{imageops, DynamicImage, GenericImageView, Pixel, Rgba as Px, RgbaImage};

/// What a shadow looks like: `blur` is the Gaussian's sigma in pixels, `opacity` 0…100 percent,
/// `vector` the offset `[x,y]` (positive: right and down).
#[derive(Debug, Clone, Copy)]
pub struct Shadow {
    pub blur: f32,
    pub opacity: u8,
    pub vector: [i32; 2],
    pub color: Rgba,
    pub background: Rgba,
}

/// Where things sit on the grown canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub canvas: (u32, u32),
    pub image: (i64, i64),
    pub shadow: (i64, i64),
}

/// The canvas holds the image and its shadow with `2 × blur` pixels of fade around the shadow
/// (as ImageMagick's `-shadow` does).
pub fn layout(w: u32, h: u32, blur: f32, [vx, vy]: [i32; 2]) -> Layout {
    let pad = (2.0 * blur.max(0.0)).ceil() as i64;
    let span = |len: u32, v: i32| {
        let (len, v) = (len as i64, v as i64);
        let (lo, hi) = ((v - pad).min(0), (v + len + pad).max(len));
        (hi - lo, -lo)
    };
    let ((cw, ix), (ch, iy)) = (span(w, vx), span(h, vy));
    Layout { canvas: (cw as u32, ch as u32), image: (ix, iy), shadow: (ix + vx as i64, iy + vy as i64) }
}

/// The image over its shadow, over `background`.
pub fn shadow(img: DynamicImage, s: Shadow, budget: &Budget) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    let at = layout(w, h, s.blur, s.vector);
    check_output(at.canvas.0 as u64, at.canvas.1 as u64, budget.limits.max_pixels)?;
    let had_alpha = img.color().has_alpha();
    let src = to_rgba(img);
    let plane = silhouette(&src, &at, s, budget)?;
    let mut out = RgbaImage::from_pixel(at.canvas.0, at.canvas.1, Px(s.background.0));
    let [r, g, b, _] = s.color.0;
    for (p, &a) in out.pixels_mut().zip(&plane) {
        if a > 0 {
            p.blend(&Px([r, g, b, a]));
        }
    }
    imageops::overlay(&mut out, &src, at.image.0, at.image.1);
    Ok(from_rgba(out, had_alpha, s.background))
}

/// The shadow's alpha on the canvas: the image's alpha times the opacity (and the colour's own
/// alpha), at the shadow's place, blurred.
fn silhouette(src: &RgbaImage, at: &Layout, s: Shadow, budget: &Budget) -> Result<Vec<u8>> {
    let (cw, ch) = (at.canvas.0 as usize, at.canvas.1 as usize);
    let mut plane = vec![0u8; cw * ch];
    let strength = s.opacity.min(100) as u32 * s.color.0[3] as u32;
    let (sx, sy) = (at.shadow.0 as usize, at.shadow.1 as usize);
    for (x, y, p) in src.enumerate_pixels() {
        plane[(sy + y as usize) * cw + sx + x as usize] = ((p.0[3] as u32 * strength + 12_750) / 25_500) as u8;
    }
    if s.blur > 0.0 {
        blur_buffer(&mut plane, cw, ch, 1, s.blur, budget)?;
    }
    Ok(plane)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;
    use image::{Rgb, RgbImage};

    fn white_card() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(40, 30, Rgb([255, 255, 255])))
    }

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    fn spec(blur: f32, vector: [i32; 2]) -> Shadow {
        Shadow { blur, opacity: 100, vector, color: Rgba::BLACK, background: Rgba([0, 0, 255, 255]) }
    }

    #[test]
    fn the_canvas_grows_by_the_vector_and_the_blur() {
        assert_eq!(layout(40, 30, 0.0, [4, 6]), Layout { canvas: (44, 36), image: (0, 0), shadow: (4, 6) });
        assert_eq!(layout(40, 30, 2.0, [4, -6]), Layout { canvas: (48, 40), image: (0, 10), shadow: (4, 4) });
        let out = shadow(white_card(), spec(2.0, [4, 4]), &budget()).unwrap();
        assert_eq!(out.dimensions(), (48, 38));
    }

    #[test]
    fn the_shadow_is_darker_at_the_offset_and_the_image_stays_on_top() {
        let out = shadow(white_card(), spec(0.0, [5, 5]), &budget()).unwrap();
        let out = out.as_rgb8().expect("opaque background keeps RGB");
        assert_eq!(out.get_pixel(10, 10).0, [255, 255, 255], "the image");
        assert_eq!(out.get_pixel(42, 32).0, [0, 0, 0], "the shadow, beyond the image");
        assert_eq!(out.get_pixel(42, 2).0, [0, 0, 255], "background where neither is");
        let soft = shadow(white_card(), spec(3.0, [5, 5]), &budget()).unwrap().to_rgb8();
        // a blurred shadow fades out: darker near the image, towards the background outside
        assert_eq!(soft.dimensions(), (52, 42));
        let near = soft.get_pixel(45, 20).0;
        let far = soft.get_pixel(50, 20).0;
        assert!(near[2] < far[2] && far[2] > 200, "{near:?} {far:?}");
    }

    #[test]
    fn opacity_and_a_transparent_background() {
        let s = Shadow { opacity: 50, background: Rgba::TRANSPARENT, ..spec(0.0, [5, 5]) };
        let out = shadow(white_card(), s, &budget()).unwrap();
        let out = out.as_rgba8().expect("a transparent background makes RGBA");
        let half = out.get_pixel(42, 32).0;
        assert!(half[..3] == [0, 0, 0] && (127..=128).contains(&half[3]), "{half:?}");
        assert_eq!(out.get_pixel(42, 2).0[3], 0);
    }

    #[test]
    fn the_grown_canvas_is_checked_first() {
        let tight = Budget::start(Limits { max_pixels: 40 * 30, ..Limits::default() });
        let e = shadow(white_card(), spec(1.0, [1, 1]), &tight).unwrap_err();
        assert!(matches!(e, crate::pipeline::PipelineError::OverLimit(_)));
    }
}
