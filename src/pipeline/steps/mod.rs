//! The image steps, one per file, each a function from image to image with its tests beside it
//! (as imgproxy's `processing/` does). A job is an ordered list of [`Op`]s; [`apply`] is the one
//! place where an `Op` meets its function, so adding a step is a new file, a variant and one arm.

pub mod ascii;
pub mod blackwhite;
pub mod blur;
pub mod border;
pub mod circle;
pub mod crop;
pub mod enhance;
pub mod flip;
pub mod modulate;
pub mod monochrome;
pub mod negative;
pub mod oil_paint;
pub mod partial;
pub mod pixelate;
pub mod pixels;
pub mod polaroid;
pub mod resize;
pub mod rotate;
pub mod rounded_corners;
pub mod sepia;
pub mod shadow;
pub mod smart_crop;
pub mod torn_edges;
pub mod upscale;
pub mod vignette;
pub mod watermark;

use super::Budget;
use crate::pipeline::error::{PipelineError, Result};
pub use crate::plan::image::{Align, Fit, Op};
use image::DynamicImage;

/// Apply one step. Steps that can grow the image check the budget's pixel limit themselves,
/// before allocating: it bounds what a step may produce, not only what is decoded (a 1×5000
/// input resized to `w:10000` would otherwise ask for 50 gigapixels).
pub fn apply(img: DynamicImage, op: &Op, budget: &Budget) -> Result<DynamicImage> {
    match *op {
        Op::Resize { width, height, fit, align } => resize::resize(img, width, height, fit, align, budget),
        Op::Crop { x, y, width, height } => crop::crop(img, x, y, width, height),
        Op::Rotate { degrees, background } => rotate::rotate(img, degrees, background, budget),
        Op::Flip => Ok(flip::flip(img)),
        Op::Flop => Ok(flip::flop(img)),
        Op::Monochrome => Ok(monochrome::monochrome(img)),
        Op::Negative => Ok(negative::negative(img)),
        Op::Blur { sigma } => blur::blur_step(img, sigma, budget),
        Op::Sharpen { sigma } => blur::sharpen_step(img, sigma, budget),
        Op::Sepia { tone } => Ok(sepia::sepia(img, tone)),
        Op::BlackWhite { threshold } => Ok(blackwhite::blackwhite(img, threshold)),
        Op::Pixelate { block } => pixelate::pixelate(img, block),
        Op::Modulate { brightness, saturation, hue } => Ok(modulate::modulate(img, brightness, saturation, hue)),
        Op::Circle { background } => Ok(circle::circle(img, background)),
        Op::RoundedCorners { radius, blur, background } => {
            Ok(rounded_corners::rounded_corners(img, radius, blur, background))
        }
        Op::Partial { ref rects, amount, oval, pixelate, soften } => {
            let treatment = partial::Treatment { amount, oval, pixelate, soften };
            partial::partial(img, rects, treatment, budget)
        }
        // the overlay is a second image the job decodes once; only `run_with` has it
        Op::Watermark { .. } => {
            Err(PipelineError::codec("pipeline", "watermark needs its overlay (pipeline::run_with)"))
        }
        Op::Border { width, color, background } => border::border(img, width, color, background, budget),
        Op::Vignette { amount, gaussian, background } => vignette::vignette(img, amount, gaussian, background, budget),
        Op::Polaroid { color, degrees, background } => polaroid::polaroid(img, color, degrees, background, budget),
        Op::TornEdges { spread, background } => torn_edges::torn_edges(img, spread, background, budget),
        Op::Shadow { blur, opacity, vector, color, background } => {
            shadow::shadow(img, shadow::Shadow { blur, opacity, vector, color, background }, budget)
        }
        Op::OilPaint { radius } => oil_paint::oil_paint(img, radius, budget),
        Op::Enhance { preset } => Ok(enhance::enhance(img, preset)),
        Op::Upscale { enlarge, noise, artwork } => upscale::upscale(img, enlarge, noise, artwork, budget),
        Op::SmartCrop { width, height, fill } => smart_crop::smart_crop(img, width, height, fill, budget),
    }
}

/// Refuse results over the pixel limit (or over 65535 on a side) before allocating them.
fn check_output(w: u64, h: u64, max_pixels: u64) -> Result<()> {
    if w > 65_535 || h > 65_535 || w * h > max_pixels {
        return Err(PipelineError::OverLimit(format!(
            "the result would be {w}x{h} pixels, over the limit of {max_pixels} pixels (65535 a side)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;

    #[test]
    fn results_over_the_pixel_limit_are_refused_before_they_exist() {
        assert!(check_output(1000, 1000, 1_000_000).is_ok());
        assert!(matches!(check_output(1001, 1000, 1_000_000), Err(PipelineError::OverLimit(_))));
        assert!(matches!(check_output(65_536, 1, u64::MAX), Err(PipelineError::OverLimit(_))));
    }

    #[test]
    fn apply_runs_each_step_in_turn_and_keeps_pixels() {
        let mut img = image::RgbImage::new(4, 2);
        img.put_pixel(0, 0, image::Rgb([10, 20, 30]));
        let budget = Budget::start(Limits::default());
        let mut out = DynamicImage::ImageRgb8(img);
        for op in [Op::Flop, Op::Flip, Op::Negative] {
            out = apply(out, &op, &budget).unwrap();
        }
        let out = out.to_rgb8();
        assert_eq!(out.get_pixel(3, 1).0, [245, 235, 225]);
        assert_eq!(out.get_pixel(0, 0).0, [255, 255, 255]);
    }

    #[test]
    fn a_watermark_without_its_overlay_is_an_internal_error() {
        let op = Op::Watermark { file: "h".into(), size: 100.0, align: Align::CENTER };
        let img = DynamicImage::ImageRgb8(image::RgbImage::new(2, 2));
        assert!(matches!(apply(img, &op, &Budget::start(Limits::default())), Err(PipelineError::Codec { .. })));
    }
}
