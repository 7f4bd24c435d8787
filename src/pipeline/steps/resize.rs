//! `resize`: Filestack's four fits, the window they read, and the limits on what they may make.

use super::{check_output, Align, Fit};
use crate::pipeline::error::{PipelineError, Result};
use crate::pipeline::Budget;
use fast_image_resize as fir;
use image::{DynamicImage, GenericImageView};

/// The `resize` step: refuse what is over the upscale or pixel limits, then resample.
pub fn resize(
    img: DynamicImage,
    width: Option<u32>,
    height: Option<u32>,
    fit: Fit,
    align: Align,
    budget: &Budget,
) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    let geo = resize_geometry(w, h, width, height, fit, align);
    check_upscale(&geo, budget.limits.max_upscale)?;
    check_output(geo.dst.0 as u64, geo.dst.1 as u64, budget.limits.max_pixels)?;
    resample(&img, geo)
}

/// A resize may enlarge its source at most `max` times per axis: a 1×1 pixel blown up to the
/// pixel limit costs as much as the largest photo and shows nothing.
fn check_upscale(geo: &ResizeGeometry, max: f64) -> Result<()> {
    let (_, _, cw, ch) = geo.src;
    let factor = (geo.dst.0 as f64 / cw).max(geo.dst.1 as f64 / ch);
    if factor > max + 1e-9 {
        return Err(PipelineError::BadOption {
            task: "resize",
            option: None,
            message: format!("the resize enlarges the image {factor:.1} times, over the limit of {max} (max_upscale)"),
        });
    }
    Ok(())
}

/// Where a resize reads from (a crop of the source) and what size it writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResizeGeometry {
    pub src: (f64, f64, f64, f64),
    pub dst: (u32, u32),
}

impl ResizeGeometry {
    /// The whole of a `w`×`h` source scaled to `dst`.
    pub fn whole(w: u32, h: u32, dst: (u32, u32)) -> ResizeGeometry {
        ResizeGeometry { src: (0.0, 0.0, w as f64, h as f64), dst }
    }
}

/// Filestack's fits: clip fits inside the box (may enlarge), max is clip that never enlarges,
/// scale stretches to the box, crop fills the box and cuts the overflow at `align`.
/// Public because shrink-on-load asks it, before decoding, how small the first resize goes.
pub fn resize_geometry(
    w: u32,
    h: u32,
    width: Option<u32>,
    height: Option<u32>,
    fit: Fit,
    align: Align,
) -> ResizeGeometry {
    let (sw, sh) = (w as f64, h as f64);
    let full = (0.0, 0.0, sw, sh);
    let round = |v: f64| (v.round() as u32).max(1);
    let (bw, bh) = match (width, height) {
        (Some(bw), Some(bh)) => (bw as f64, bh as f64),
        (Some(bw), None) => {
            let s = bw as f64 / sw;
            let s = if fit == Fit::Max { s.min(1.0) } else { s };
            return ResizeGeometry { src: full, dst: (round(sw * s), round(sh * s)) };
        }
        (None, Some(bh)) => {
            let s = bh as f64 / sh;
            let s = if fit == Fit::Max { s.min(1.0) } else { s };
            return ResizeGeometry { src: full, dst: (round(sw * s), round(sh * s)) };
        }
        (None, None) => return ResizeGeometry { src: full, dst: (w, h) },
    };
    match fit {
        Fit::Scale => ResizeGeometry { src: full, dst: (round(bw), round(bh)) },
        Fit::Clip | Fit::Max => {
            let mut s = (bw / sw).min(bh / sh);
            if fit == Fit::Max {
                s = s.min(1.0);
            }
            ResizeGeometry { src: full, dst: (round(sw * s), round(sh * s)) }
        }
        Fit::Crop => {
            // the largest source window with the box's aspect ratio, placed by align
            let s = (bw / sw).max(bh / sh);
            let (cw, ch) = ((bw / s).min(sw), (bh / s).min(sh));
            let x = (sw - cw) * align.x;
            let y = (sh - ch) * align.y;
            ResizeGeometry { src: (x, y, cw, ch), dst: (round(bw), round(bh)) }
        }
    }
}

/// Resample 8-bit RGB(A) with Lanczos3, with no limit checks: callers (this step, pixelate,
/// watermark) have bounded the size already.
pub fn resample(img: &DynamicImage, geo: ResizeGeometry) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    let (dw, dh) = geo.dst;
    if (dw, dh) == (w, h) && geo.src == (0.0, 0.0, w as f64, h as f64) {
        return Ok(img.clone());
    }
    let (pixel_type, bytes) = match img {
        DynamicImage::ImageRgb8(b) => (fir::PixelType::U8x3, b.as_raw().as_slice()),
        DynamicImage::ImageRgba8(b) => (fir::PixelType::U8x4, b.as_raw().as_slice()),
        _ => return Err(PipelineError::codec("resizer", "expects 8-bit RGB(A)")),
    };
    let src = fir::images::ImageRef::new(w, h, bytes, pixel_type).map_err(|e| PipelineError::codec("resizer", e))?;
    let mut dst = fir::images::Image::new(dw, dh, pixel_type);
    // Lanczos3 is what sharp/libvips use for downscaling photos; fir's AVX2 path makes it cheap.
    let (x, y, cw, ch) = geo.src;
    let options =
        fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Lanczos3)).crop(x, y, cw, ch);
    fir::Resizer::new().resize(&src, &mut dst, &options).map_err(|e| PipelineError::codec("resizer", e))?;
    let buf = dst.into_vec();
    Ok(match pixel_type {
        fir::PixelType::U8x3 => DynamicImage::ImageRgb8(image::RgbImage::from_raw(dw, dh, buf).expect("size")),
        _ => DynamicImage::ImageRgba8(image::RgbaImage::from_raw(dw, dh, buf).expect("size")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;
    use image::{Rgb, RgbImage};

    fn geo(w: u32, h: u32, bw: Option<u32>, bh: Option<u32>, fit: Fit) -> (u32, u32) {
        resize_geometry(w, h, bw, bh, fit, Align::CENTER).dst
    }

    #[test]
    fn the_four_fits_size_like_filestack() {
        assert_eq!(geo(200, 100, Some(50), None, Fit::Clip), (50, 25));
        assert_eq!(geo(200, 100, None, Some(50), Fit::Clip), (100, 50));
        assert_eq!(geo(200, 100, Some(50), Some(50), Fit::Clip), (50, 25));
        assert_eq!(geo(200, 100, Some(50), Some(50), Fit::Scale), (50, 50));
        assert_eq!(geo(200, 100, Some(50), Some(50), Fit::Crop), (50, 50));
        assert_eq!(geo(200, 100, Some(400), Some(400), Fit::Clip), (400, 200));
        assert_eq!(geo(200, 100, Some(400), Some(400), Fit::Max), (200, 100));
        assert_eq!(geo(200, 100, Some(80), Some(20), Fit::Max), (40, 20));
    }

    #[test]
    fn crop_reads_the_window_placed_by_align() {
        let g = resize_geometry(640, 480, Some(100), Some(100), Fit::Crop, Align { x: 0.2, y: 0.9 });
        assert_eq!(g, ResizeGeometry { src: (32.0, 0.0, 480.0, 480.0), dst: (100, 100) });
    }

    #[test]
    fn a_crop_fit_keeps_the_aligned_side() {
        // left half red, right half blue: a square from the right is all blue
        let img = RgbImage::from_fn(40, 20, |x, _| if x < 20 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
        let budget = Budget::start(Limits::default());
        let right = Align { x: 1.0, y: 0.5 };
        let out = resize(DynamicImage::ImageRgb8(img), Some(10), Some(10), Fit::Crop, right, &budget).unwrap();
        assert_eq!(out.dimensions(), (10, 10));
        assert_eq!(out.to_rgb8().get_pixel(5, 5).0, [0, 0, 255]);
    }

    #[test]
    fn a_flat_colour_stays_flat_through_lanczos() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 32, Rgb([12, 200, 99])));
        let out = resize(img, Some(16), None, Fit::Clip, Align::CENTER, &Budget::start(Limits::default())).unwrap();
        assert_eq!(out.dimensions(), (16, 8));
        assert!(out.to_rgb8().pixels().all(|p| p.0 == [12, 200, 99]));
    }

    #[test]
    fn enlarging_past_max_upscale_or_the_pixel_limit_is_refused() {
        let budget = Budget::start(Limits::default());
        let dot = || DynamicImage::ImageRgb8(RgbImage::new(1, 1));
        assert_eq!(resize(dot(), Some(16), None, Fit::Clip, Align::CENTER, &budget).unwrap().dimensions(), (16, 16));
        let e = resize(dot(), Some(17), None, Fit::Clip, Align::CENTER, &budget).unwrap_err();
        assert!(e.to_string().contains("max_upscale"), "{e}");
        let small = Budget::start(Limits { max_pixels: 100, ..Limits::default() });
        let e = resize(dot(), Some(11), None, Fit::Clip, Align::CENTER, &small).unwrap_err();
        assert!(matches!(e, PipelineError::OverLimit(_)), "{e}");
    }
}
