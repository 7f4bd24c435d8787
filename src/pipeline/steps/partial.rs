//! `partial_blur` and `partial_pixelate`: one step, treating only some rectangles (or the
//! ellipses inscribed in them) with the blur or pixelate step.

use super::pixels::{from_rgba, to_rgba};
use super::{blur, pixelate};
use crate::pipeline::error::Result;
use crate::pipeline::Budget;
use crate::plan::Rgba;
use image::{imageops, DynamicImage};

/// Blur or pixelate regions; with `oval`, only the ellipse inscribed in each rectangle.
/// Rectangles are clipped to the image; one that starts outside is skipped (unlike `crop`, which
/// refuses it: there the rectangle is the whole result, here it is one region among others).
/// What is done to each region.
#[derive(Debug, Clone, Copy)]
pub struct Treatment {
    pub amount: f32,
    pub oval: bool,
    pub pixelate: bool,
    /// Blur applied to pixelated regions afterwards (`partial_pixelate=blur:N`).
    pub soften: f32,
}

pub fn partial(img: DynamicImage, rects: &[[u32; 4]], t: Treatment, budget: &Budget) -> Result<DynamicImage> {
    let Treatment { amount, oval, pixelate: pixelated, soften } = t;
    let had_alpha = img.color().has_alpha();
    let mut out = to_rgba(img);
    for &[x, y, rw, rh] in rects {
        budget.check()?;
        let (w, h) = out.dimensions();
        if x >= w || y >= h {
            continue;
        }
        let (rw, rh) = (rw.min(w - x), rh.min(h - y));
        let region = DynamicImage::ImageRgba8(imageops::crop_imm(&out, x, y, rw, rh).to_image());
        let treated = if pixelated {
            let blocks = pixelate::pixelate(region, amount.max(2.0) as u32)?;
            if soften > 0.0 {
                blur::blur(blocks, soften, budget)?
            } else {
                blocks
            }
        } else {
            blur::blur(region, amount.max(0.5), budget)?
        };
        let treated = treated.to_rgba8();
        let (cx, cy) = (rw as f64 / 2.0, rh as f64 / 2.0);
        for (tx, ty, p) in treated.enumerate_pixels() {
            let inside = !oval || {
                let (dx, dy) = ((tx as f64 + 0.5 - cx) / cx, (ty as f64 + 0.5 - cy) / cy);
                dx * dx + dy * dy <= 1.0
            };
            if inside {
                out.put_pixel(x + tx, y + ty, *p);
            }
        }
    }
    Ok(from_rgba(out, had_alpha, Rgba::WHITE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;
    use image::{Rgb, RgbImage};

    /// Vertical stripes, one pixel each: any blur or pixelation greys them.
    fn stripes() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(40, 20, |x, _| Rgb([if x % 2 == 0 { 0 } else { 255 }; 3])))
    }

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    #[test]
    fn only_the_rectangle_changes() {
        let out = partial(
            stripes(),
            &[[10, 0, 10, 20]],
            Treatment { amount: 3.0, oval: false, pixelate: false, soften: 0.0 },
            &budget(),
        )
        .unwrap();
        let out = out.as_rgb8().expect("opaque stays RGB");
        assert_eq!(out.get_pixel(0, 5).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(25, 5).0, [255, 255, 255]);
        let mid = out.get_pixel(15, 10).0[0];
        assert!((60..=200).contains(&mid), "blurred stripes are grey: {mid}");
    }

    #[test]
    fn an_oval_leaves_the_rectangle_corners() {
        let out = partial(
            stripes(),
            &[[0, 0, 40, 20]],
            Treatment { amount: 10.0, oval: true, pixelate: true, soften: 0.0 },
            &budget(),
        )
        .unwrap()
        .to_rgb8();
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(39, 19).0, [255, 255, 255]);
        let mid = out.get_pixel(20, 10).0[0];
        assert!((60..=200).contains(&mid), "pixelated stripes are grey: {mid}");
    }

    #[test]
    fn rectangles_outside_are_skipped() {
        let out = partial(
            stripes(),
            &[[40, 0, 5, 5], [0, 20, 5, 5]],
            Treatment { amount: 3.0, oval: false, pixelate: false, soften: 0.0 },
            &budget(),
        )
        .unwrap();
        assert_eq!(out, stripes());
    }

    #[test]
    fn pixelated_regions_can_be_softened() {
        let hard = partial(
            stripes(),
            &[[0, 0, 40, 20]],
            Treatment { amount: 4.0, oval: false, pixelate: true, soften: 0.0 },
            &budget(),
        )
        .unwrap()
        .to_rgb8();
        let soft = partial(
            stripes(),
            &[[0, 0, 40, 20]],
            Treatment { amount: 4.0, oval: false, pixelate: true, soften: 3.0 },
            &budget(),
        )
        .unwrap()
        .to_rgb8();
        let edges = |img: &image::RgbImage| {
            (1..40).map(|x| img.get_pixel(x, 10).0[0].abs_diff(img.get_pixel(x - 1, 10).0[0]) as u32).max().unwrap()
        };
        assert!(edges(&soft) < edges(&hard), "block edges are softened: {} < {}", edges(&soft), edges(&hard));
    }
}
