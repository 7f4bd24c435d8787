//! `blur` and `sharpen`: Gaussian blur as three box blurs (running sums: the cost does not grow
//! with the radius), and the unsharp mask built on it. Written here rather than taken from
//! `image` so that a long blur of a large image checks the transform's deadline as it goes.

use crate::pipeline::error::Result;
use crate::pipeline::Budget;
use image::DynamicImage;

/// The `blur` step: `sigma` 0 (Filestack's `amount:0`) leaves the image as it is.
pub fn blur_step(img: DynamicImage, sigma: f32, budget: &Budget) -> Result<DynamicImage> {
    if sigma > 0.0 {
        blur(img, sigma, budget)
    } else {
        Ok(img)
    }
}

/// The `sharpen` step: the mask's blur is `sigma / 2 + 0.5` (amounts 1…20 give 1…10.5), the
/// mapping derivatives have always been made with, so cached and fresh outputs agree; 0 leaves
/// the image as it is.
pub fn sharpen_step(img: DynamicImage, sigma: f32, budget: &Budget) -> Result<DynamicImage> {
    if sigma > 0.0 {
        sharpen(img, sigma / 2.0 + 0.5, budget)
    } else {
        Ok(img)
    }
}

/// Blur 8-bit RGB(A) pixels with a Gaussian of `sigma`, approximated by three box passes.
pub fn blur(img: DynamicImage, sigma: f32, budget: &Budget) -> Result<DynamicImage> {
    Ok(match img {
        DynamicImage::ImageRgb8(mut b) => {
            let (w, h) = b.dimensions();
            blur_buffer(&mut b, w as usize, h as usize, 3, sigma, budget)?;
            DynamicImage::ImageRgb8(b)
        }
        DynamicImage::ImageRgba8(mut b) => {
            let (w, h) = b.dimensions();
            blur_buffer(&mut b, w as usize, h as usize, 4, sigma, budget)?;
            DynamicImage::ImageRgba8(b)
        }
        other => blur(DynamicImage::ImageRgba8(other.to_rgba8()), sigma, budget)?,
    })
}

/// Unsharp mask: add back the difference between the image and its blur.
pub fn sharpen(img: DynamicImage, sigma: f32, budget: &Budget) -> Result<DynamicImage> {
    let blurred = blur(img.clone(), sigma, budget)?;
    let (mut out, soft) = (img, blurred);
    let (dst, src): (&mut [u8], &[u8]) = match (&mut out, &soft) {
        (DynamicImage::ImageRgb8(d), DynamicImage::ImageRgb8(s)) => (d, s),
        (DynamicImage::ImageRgba8(d), DynamicImage::ImageRgba8(s)) => (d, s),
        _ => return Ok(out),
    };
    for (d, s) in dst.iter_mut().zip(src) {
        *d = (2 * *d as i16 - *s as i16).clamp(0, 255) as u8;
    }
    Ok(out)
}

/// Box widths whose three passes approximate a Gaussian of `sigma` (Kovesi's method).
fn box_radii(sigma: f32) -> [usize; 3] {
    let n = 3.0f32;
    let ideal = (12.0 * sigma * sigma / n + 1.0).sqrt();
    let mut wl = ideal.floor() as i64;
    if wl % 2 == 0 {
        wl -= 1;
    }
    let wl = wl.max(1) as f32;
    let m = ((12.0 * sigma * sigma - n * wl * wl - 4.0 * n * wl - 3.0 * n) / (-4.0 * wl - 4.0)).round();
    let width = |i: f32| if i < m { wl } else { wl + 2.0 };
    [0.0, 1.0, 2.0].map(|i| ((width(i) - 1.0) / 2.0) as usize)
}

/// Blur `ch`-channel 8-bit pixels in place (steps that blur a single plane, a shadow's or a
/// mask's, call it with `ch` 1).
pub(super) fn blur_buffer(buf: &mut [u8], w: usize, h: usize, ch: usize, sigma: f32, budget: &Budget) -> Result<()> {
    let mut scratch = vec![0u8; buf.len()];
    for r in box_radii(sigma) {
        if r == 0 {
            continue;
        }
        // horizontal: rows are contiguous (stride ch); vertical: columns (stride w*ch)
        for y in 0..h {
            if y % 64 == 0 {
                budget.check()?;
            }
            box_line(&buf[y * w * ch..], &mut scratch[y * w * ch..], w, ch, ch, r);
        }
        for x in 0..w {
            if x % 64 == 0 {
                budget.check()?;
            }
            box_line(&scratch[x * ch..], &mut buf[x * ch..], h, w * ch, ch, r);
        }
    }
    Ok(())
}

/// One box pass over `len` pixels `stride` bytes apart, edges clamped.
fn box_line(src: &[u8], dst: &mut [u8], len: usize, stride: usize, ch: usize, r: usize) {
    let at = |i: isize, c: usize| src[(i.clamp(0, len as isize - 1) as usize) * stride + c] as u32;
    let width = (2 * r + 1) as u32;
    for c in 0..ch {
        let mut sum: u32 = (-(r as isize)..=r as isize).map(|i| at(i, c)).sum();
        for i in 0..len {
            dst[i * stride + c] = ((sum + width / 2) / width) as u8;
            sum = sum + at(i as isize + r as isize + 1, c) - at(i as isize - r as isize, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blur_spreads_an_edge_and_keeps_flat_areas() {
        let mut img = image::RgbImage::new(40, 10);
        for (x, _, p) in img.enumerate_pixels_mut() {
            p.0 = if x < 20 { [0, 0, 0] } else { [255, 255, 255] };
        }
        let budget = Budget::start(crate::pipeline::Limits::default());
        let out = blur(DynamicImage::ImageRgb8(img), 3.0, &budget).unwrap().to_rgb8();
        assert_eq!(out.get_pixel(0, 5).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(39, 5).0, [255, 255, 255]);
        let mid = out.get_pixel(20, 5).0[0];
        assert!((100..=160).contains(&mid), "edge blurred to grey: {mid}");
        assert!(out.get_pixel(17, 5).0[0] > 0 && out.get_pixel(22, 5).0[0] < 255);
    }

    #[test]
    fn sharpening_increases_edge_contrast() {
        let mut img = image::RgbImage::new(40, 4);
        for (x, _, p) in img.enumerate_pixels_mut() {
            p.0 = if x < 20 { [100; 3] } else { [150; 3] };
        }
        let budget = Budget::start(crate::pipeline::Limits::default());
        let out = sharpen(DynamicImage::ImageRgb8(img), 2.0, &budget).unwrap().to_rgb8();
        assert!(out.get_pixel(19, 2).0[0] < 100 && out.get_pixel(20, 2).0[0] > 150);
        assert_eq!(out.get_pixel(0, 2).0[0], 100);
    }

    #[test]
    fn a_zero_amount_leaves_the_image() {
        let img = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([(x * 30) as u8, (y * 30) as u8, 7]));
        let budget = Budget::start(crate::pipeline::Limits::default());
        let img = DynamicImage::ImageRgb8(img);
        assert_eq!(blur_step(img.clone(), 0.0, &budget).unwrap(), img);
        assert_eq!(sharpen_step(img.clone(), 0.0, &budget).unwrap(), img);
        assert_ne!(blur_step(img.clone(), 1.0, &budget).unwrap(), img);
    }

    #[test]
    fn a_past_deadline_stops_the_blur() {
        let limits = crate::pipeline::Limits { timeout: std::time::Duration::ZERO, ..Default::default() };
        let budget = Budget::start(limits);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let img = DynamicImage::ImageRgb8(image::RgbImage::new(100, 100));
        assert!(blur(img, 5.0, &budget).unwrap_err().to_string().contains("transform_timeout_ms"));
    }
}
