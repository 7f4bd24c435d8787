//! `upscale`: a classical 2× enlargement, no model: optional denoising (a light Gaussian blur),
//! Lanczos3 resampling to twice the size, then an unsharp mask that restores the edge contrast
//! the interpolation softens (sigma 1 px for photos, 1.5 px for artwork's flatter areas and
//! harder lines, amount 1).

use super::blur::{blur, sharpen};
use super::check_output;
use super::resize::{resample, ResizeGeometry};
use crate::pipeline::error::Result;
use crate::pipeline::Budget;
use image::{DynamicImage, GenericImageView};

/// Blur sigma of the denoising for `noise` none, low, medium, high.
const DENOISE: [f32; 4] = [0.0, 0.5, 0.8, 1.2];

/// Denoise by `noise` (0…3), then, when `enlarge`, double the size and sharpen.
pub fn upscale(img: DynamicImage, enlarge: bool, noise: u8, artwork: bool, budget: &Budget) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    if enlarge {
        check_output(2 * w as u64, 2 * h as u64, budget.limits.max_pixels)?;
    }
    let sigma = DENOISE[noise.min(3) as usize];
    let img = if sigma > 0.0 { blur(img, sigma, budget)? } else { img };
    if !enlarge {
        return Ok(img);
    }
    let img = match img {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => img,
        other => DynamicImage::ImageRgba8(other.to_rgba8()),
    };
    let big = resample(&img, ResizeGeometry::whole(w, h, (2 * w, 2 * h)))?;
    budget.check()?;
    sharpen(big, if artwork { 1.5 } else { 1.0 }, budget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;
    use image::{Rgb, RgbImage};

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    /// Black left, white right.
    fn edge() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(40, 20, |x, _| Rgb([if x < 20 { 0 } else { 255 }; 3])))
    }

    #[test]
    fn the_size_doubles_and_an_edge_stays_sharp() {
        let out = upscale(edge(), true, 0, false, &budget()).unwrap().to_rgb8();
        assert_eq!(out.dimensions(), (80, 40));
        let row: Vec<u8> = (0..80).map(|x| out.get_pixel(x, 20).0[0]).collect();
        // from under 10 % to over 90 % within 3 output pixels (2 source pixels → 4 would be soft)
        let first_up = row.iter().position(|&v| v > 25).unwrap();
        let last_low = row.iter().rposition(|&v| v < 230).unwrap();
        assert!(last_low < first_up + 3, "{:?}", &row[34..46]);
        assert_eq!(row[5], 0);
        assert_eq!(row[75], 255);
    }

    #[test]
    fn artwork_sharpens_harder_than_photo_and_noise_softens() {
        let grey = |v: &RgbImage| (0..80).map(|x| v.get_pixel(x, 20).0[0] as i32).collect::<Vec<_>>();
        let photo = grey(&upscale(edge(), true, 0, false, &budget()).unwrap().to_rgb8());
        let art = grey(&upscale(edge(), true, 0, true, &budget()).unwrap().to_rgb8());
        let denoised = grey(&upscale(edge(), true, 3, false, &budget()).unwrap().to_rgb8());
        let width = |r: &[i32]| r.iter().filter(|&&v| v > 25 && v < 230).count();
        assert!(width(&denoised) > width(&photo), "{denoised:?}");
        assert!(width(&art) <= width(&photo));
    }

    #[test]
    fn without_enlarging_only_the_noise_is_treated() {
        assert_eq!(upscale(edge(), false, 0, false, &budget()).unwrap(), edge());
        let out = upscale(edge(), false, 2, false, &budget()).unwrap();
        assert_eq!(out.dimensions(), (40, 20));
        assert_ne!(out, edge());
    }

    #[test]
    fn the_doubled_size_is_checked_first() {
        let tight = Budget::start(Limits { max_pixels: 40 * 20 * 3, ..Limits::default() });
        let e = upscale(edge(), true, 0, false, &tight).unwrap_err();
        assert!(matches!(e, crate::pipeline::PipelineError::OverLimit(_)));
    }
}
