//! `smart_crop`: a content-aware crop to `width`×`height`, in the spirit of smartcrop.js (no
//! model): a saliency map of edges, skin tones and saturated colours, computed on a copy at most
//! 256 px wide, picks where the largest window of the target's aspect ratio goes. Like
//! smartcrop.js's default (`minScale` 1) the window is always the largest that fits; it is
//! placed where it holds the most saliency, ties going to the window centred nearest the
//! saliency's centre of mass. The window is then resized down to the target. A target larger
//! than the image is not enlarged: the window is the image's extent and the rest is `fill`.

use super::check_output;
use super::pixels::{from_rgba, luma, to_rgba};
use super::resize::{resample, ResizeGeometry};
use crate::pipeline::error::Result;
use crate::pipeline::Budget;
use crate::plan::Rgba;
use image::{imageops, DynamicImage, GenericImageView, RgbImage, Rgba as Px, RgbaImage};

/// The analysis copy's longer side at most.
const ANALYSIS: u32 = 256;

/// Crop to `width`×`height` (a missing side: the image's own).
pub fn smart_crop(
    img: DynamicImage,
    width: Option<u32>,
    height: Option<u32>,
    fill: Rgba,
    budget: &Budget,
) -> Result<DynamicImage> {
    let (w, h) = img.dimensions();
    let (bw, bh) = (width.unwrap_or(w).max(1), height.unwrap_or(h).max(1));
    check_output(bw as u64, bh as u64, budget.limits.max_pixels)?;
    let s = (bw as f64 / w as f64).max(bh as f64 / h as f64);
    let window = if s <= 1.0 {
        (((bw as f64 / s).round() as u32).clamp(1, w), ((bh as f64 / s).round() as u32).clamp(1, h))
    } else {
        (bw.min(w), bh.min(h))
    };
    let (x, y) = best_window(&img, window, budget)?;
    if s <= 1.0 {
        let geo = ResizeGeometry { src: (x as f64, y as f64, window.0 as f64, window.1 as f64), dst: (bw, bh) };
        return resample(&img, geo);
    }
    let had_alpha = img.color().has_alpha();
    let part = to_rgba(img.crop_imm(x, y, window.0, window.1));
    let mut out = RgbaImage::from_pixel(bw, bh, Px(fill.0));
    imageops::overlay(&mut out, &part, ((bw - window.0) / 2) as i64, ((bh - window.1) / 2) as i64);
    Ok(from_rgba(out, had_alpha, fill))
}

/// The top-left corner of the best `window` in the image.
pub fn best_window(img: &DynamicImage, window: (u32, u32), budget: &Budget) -> Result<(u32, u32)> {
    let (w, h) = img.dimensions();
    let k = (ANALYSIS as f64 / w.max(h) as f64).min(1.0);
    let (aw, ah) = (((w as f64 * k).round() as u32).max(1), ((h as f64 * k).round() as u32).max(1));
    let small = match img {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => {
            resample(img, ResizeGeometry::whole(w, h, (aw, ah)))?
        }
        other => resample(&DynamicImage::ImageRgb8(other.to_rgb8()), ResizeGeometry::whole(w, h, (aw, ah)))?,
    };
    budget.check()?;
    let map = saliency(&small.to_rgb8());
    if map.iter().all(|&v| v < 0.02) {
        // nothing stands out (resampling's rounding aside): the centre, exactly
        return Ok(((w - window.0) / 2, (h - window.1) / 2));
    }
    let ww = ((window.0 as f64 * k).round() as u32).clamp(1, aw);
    let wh = ((window.1 as f64 * k).round() as u32).clamp(1, ah);
    let (bx, by) = place(&map, (aw, ah), (ww, wh));
    let (x, y) = ((bx as f64 / k).round() as u32, (by as f64 / k).round() as u32);
    Ok((x.min(w - window.0), y.min(h - window.1)))
}

/// The position of a `ww`×`wh` window over `map` holding the most saliency (within 2 %),
/// nearest the centre of mass.
fn place(map: &[f64], (aw, ah): (u32, u32), (ww, wh): (u32, u32)) -> (u32, u32) {
    let (aw, ah, ww, wh) = (aw as usize, ah as usize, ww as usize, wh as usize);
    // summed-area table, one row and column of zeros in front
    let mut sat = vec![0.0; (aw + 1) * (ah + 1)];
    let (mut total, mut mx, mut my) = (0.0, 0.0, 0.0);
    for y in 0..ah {
        for x in 0..aw {
            let v = map[y * aw + x];
            (total, mx, my) = (total + v, mx + v * x as f64, my + v * y as f64);
            sat[(y + 1) * (aw + 1) + x + 1] =
                v + sat[y * (aw + 1) + x + 1] + sat[(y + 1) * (aw + 1) + x] - sat[y * (aw + 1) + x];
        }
    }
    let (cx, cy) = if total > 0.0 { (mx / total + 0.5, my / total + 0.5) } else { (aw as f64 / 2.0, ah as f64 / 2.0) };
    let sum = |x: usize, y: usize| {
        let at = |x: usize, y: usize| sat[y * (aw + 1) + x];
        at(x + ww, y + wh) - at(x, y + wh) - at(x + ww, y) + at(x, y)
    };
    let positions = || (0..=ah - wh).flat_map(|y| (0..=aw - ww).map(move |x| (x, y)));
    let best = positions().map(|(x, y)| sum(x, y)).fold(0.0, f64::max);
    let off_centre = |&(x, y): &(usize, usize)| {
        let (dx, dy) = (x as f64 + ww as f64 / 2.0 - cx, y as f64 + wh as f64 / 2.0 - cy);
        dx * dx + dy * dy
    };
    let chosen = positions()
        .filter(|&(x, y)| sum(x, y) >= best * 0.98 - 1e-9)
        .min_by(|a, b| off_centre(a).total_cmp(&off_centre(b)))
        .unwrap_or((0, 0));
    (chosen.0 as u32, chosen.1 as u32)
}

/// Per pixel: 0.2 × edge strength (Laplacian of luma) + 1.8 × skin tone + 0.3 × saturation,
/// smartcrop.js's weights for detail and skin.
fn saliency(img: &RgbImage) -> Vec<f64> {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let l = |x: i64, y: i64| {
        let p = img.get_pixel(x.clamp(0, w - 1) as u32, y.clamp(0, h - 1) as u32).0;
        luma(p[0], p[1], p[2]) as f64 / 255.0
    };
    let mut map = Vec::with_capacity((w * h) as usize);
    for y in 0..h {
        for x in 0..w {
            let edge = (4.0 * l(x, y) - l(x - 1, y) - l(x + 1, y) - l(x, y - 1) - l(x, y + 1)).abs().min(1.0);
            let p = img.get_pixel(x as u32, y as u32).0.map(|c| c as f64 / 255.0);
            map.push(0.2 * edge + 1.8 * skin(p, l(x, y)) + 0.3 * saturation(p, l(x, y)));
        }
    }
    map
}

/// How close the colour's direction is to smartcrop.js's skin colour (0.78, 0.57, 0.44), from 0
/// (farther than 0.2) to 1, for pixels neither too dark nor too light.
fn skin([r, g, b]: [f64; 3], l: f64) -> f64 {
    let mag = (r * r + g * g + b * b).sqrt();
    if mag == 0.0 || !(0.2..=1.0).contains(&l) {
        return 0.0;
    }
    let skin = [0.78, 0.57, 0.44];
    let sm = (skin.iter().map(|v| v * v).sum::<f64>()).sqrt();
    let d = [r / mag - skin[0] / sm, g / mag - skin[1] / sm, b / mag - skin[2] / sm];
    let closeness = 1.0 - (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
    ((closeness - 0.8) / 0.2).max(0.0)
}

/// HSL saturation over 0.4, scaled to 0…1, for pixels of middling brightness.
fn saturation(p: [f64; 3], l: f64) -> f64 {
    let (max, min) = (p.iter().cloned().fold(0.0, f64::max), p.iter().cloned().fold(1.0, f64::min));
    let light = (max + min) / 2.0;
    if max == min || !(0.05..=0.9).contains(&l) {
        return 0.0;
    }
    let s = (max - min) / (1.0 - (2.0 * light - 1.0).abs());
    ((s - 0.4) / 0.6).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;
    use image::Rgb;

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    /// A flat grey scene with one object (a `colour` disc of radius 15) at `(ox, oy)`.
    fn scene(ox: i64, oy: i64, colour: [u8; 3]) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(300, 200, |x, y| {
            let (dx, dy) = (x as i64 - ox, y as i64 - oy);
            Rgb(if dx * dx + dy * dy <= 225 { colour } else { [128, 128, 128] })
        }))
    }

    #[test]
    fn the_window_holds_a_saturated_object_off_centre() {
        // a 1:2 target: the window is 100×200; a centred crop (x 100…200) would miss the object
        let img = scene(245, 100, [230, 20, 20]);
        let (x, y) = best_window(&img, (100, 200), &budget()).unwrap();
        assert!(x + 15 <= 230 && x + 100 >= 260 && y == 0, "window at {x},{y}");
        let out = smart_crop(img, Some(50), Some(100), Rgba::WHITE, &budget()).unwrap().to_rgb8();
        assert_eq!(out.dimensions(), (50, 100));
        assert!(out.pixels().any(|p| p.0[0] > 200 && p.0[1] < 60), "the object is in the crop");
    }

    #[test]
    fn the_window_holds_a_skin_toned_object() {
        let img = scene(40, 60, [224, 172, 140]);
        let (x, y) = best_window(&img, (120, 120), &budget()).unwrap();
        assert!(x + 10 <= 25 && x + 120 >= 55 && y + 10 <= 45 && y + 120 >= 75, "window at {x},{y}");
    }

    #[test]
    fn a_featureless_image_is_cropped_in_the_centre() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(300, 200, Rgb([50, 60, 70])));
        assert_eq!(best_window(&img, (100, 200), &budget()).unwrap(), (100, 0));
    }

    #[test]
    fn a_target_larger_than_the_image_is_filled_not_enlarged() {
        let img = scene(150, 100, [20, 200, 20]);
        let out = smart_crop(img, Some(400), Some(100), Rgba([0, 0, 255, 255]), &budget()).unwrap().to_rgb8();
        assert_eq!(out.dimensions(), (400, 100));
        assert_eq!(out.get_pixel(10, 50).0, [0, 0, 255], "fill on the sides");
        assert_eq!(out.get_pixel(200, 50).0, [20, 200, 20], "the object, unscaled, in the middle");
    }
}
