//! `torn_edges`: each side of the image is torn along a ragged line, the torn-off part showing
//! `background`. The tear is drawn from a fixed seed, so one image always tears the same way (a
//! derivative must not change between renders).

use super::pixels::{fade_to, from_rgba, to_rgba};
use crate::pipeline::error::Result;
use crate::pipeline::Budget;
use crate::plan::Rgba;
use image::DynamicImage;

/// Tear the four sides. `spread` is `[fine, coarse]`: the tear line wanders up to `coarse`
/// pixels deep in smooth waves about four times as long, plus up to `fine` pixels of jitter
/// from pixel to pixel. Both are capped at a quarter of the short side, so the centre is
/// never touched.
pub fn torn_edges(img: DynamicImage, spread: [u32; 2], background: Rgba, budget: &Budget) -> Result<DynamicImage> {
    let had_alpha = img.color().has_alpha();
    let mut buf = to_rgba(img);
    let (w, h) = buf.dimensions();
    let cap = (w.min(h) / 4) as f64;
    let (fine, coarse) = ((spread[0] as f64).min(cap), (spread[1] as f64).min(cap));
    let (fine, coarse) = (fine.min(cap - coarse).max(0.0), coarse);
    let [top, bottom] = [1, 2].map(|seed| tear(w as usize, fine, coarse, seed));
    let [left, right] = [3, 4].map(|seed| tear(h as usize, fine, coarse, seed));
    let (wf, hf) = (w as f64, h as f64);
    for (y, row) in buf.enumerate_rows_mut() {
        if y % 64 == 0 {
            budget.check()?;
        }
        let (yi, py) = (y as usize, y as f64 + 0.5);
        for (x, _, p) in row {
            let (xi, px) = (x as usize, x as f64 + 0.5);
            // how far inside the torn outline the pixel's centre is (anti-aliased over 1 px)
            let inside = (py - top[xi]).min(hf - py - bottom[xi]).min(px - left[yi]).min(wf - px - right[yi]);
            let keep = (inside + 0.5).clamp(0.0, 1.0);
            if keep < 1.0 {
                fade_to(p, background, keep);
            }
        }
    }
    Ok(from_rgba(buf, had_alpha, background))
}

/// The tear's depth at each of `len` pixels along a side.
fn tear(len: usize, fine: f64, coarse: f64, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix(seed.wrapping_mul(0x9E37_79B9).wrapping_add(len as u64));
    let period = (coarse * 4.0).max(4.0);
    let knots: Vec<f64> = (0..(len as f64 / period) as usize + 2).map(|_| rng.unit() * coarse).collect();
    (0..len)
        .map(|i| {
            let t = i as f64 / period;
            let (j, f) = (t as usize, t.fract());
            let s = f * f * (3.0 - 2.0 * f);
            knots[j] * (1.0 - s) + knots[j + 1] * s + rng.unit() * fine
        })
        .collect()
}

/// SplitMix64: a small fixed generator (a crate's generator may change its stream between
/// versions, and cached derivatives must not).
struct SplitMix(u64);

impl SplitMix {
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;
    use image::{Rgb, RgbImage};

    fn red() -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(200, 120, Rgb([255, 0, 0])))
    }

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    #[test]
    fn the_edges_are_ragged_and_the_centre_is_untouched() {
        let out = torn_edges(red(), [1, 10], Rgba::WHITE, &budget()).unwrap();
        let out = out.as_rgb8().expect("an opaque background keeps RGB");
        assert_eq!(out.dimensions(), (200, 120));
        // the tear's depth along the top: the first row that is red, column by column
        let depth: Vec<u32> =
            (15..185).map(|x| (0..120).find(|&y| out.get_pixel(x, y).0 == [255, 0, 0]).unwrap()).collect();
        let (lo, hi) = (depth.iter().min().unwrap(), depth.iter().max().unwrap());
        assert!(hi - lo >= 4 && *hi <= 12, "the tear varies along the edge: {lo}…{hi}");
        assert!((12..108).all(|y| (12..188).all(|x| out.get_pixel(x, y).0 == [255, 0, 0])));
        // something was torn off every side
        let torn = |pixels: Vec<(u32, u32)>| pixels.into_iter().any(|(x, y)| out.get_pixel(x, y).0 != [255, 0, 0]);
        assert!(torn((15..185).map(|x| (x, 0)).collect()) && torn((15..185).map(|x| (x, 119)).collect()));
        assert!(torn((15..105).map(|y| (0, y)).collect()) && torn((15..105).map(|y| (199, y)).collect()));
    }

    #[test]
    fn the_same_image_tears_the_same_way_and_transparency_shows() {
        let a = torn_edges(red(), [2, 20], Rgba::TRANSPARENT, &budget()).unwrap();
        assert_eq!(a, torn_edges(red(), [2, 20], Rgba::TRANSPARENT, &budget()).unwrap());
        let a = a.as_rgba8().expect("a transparent background makes RGBA");
        assert!((0..200).any(|x| a.get_pixel(x, 0).0[3] == 0));
        assert_eq!(a.get_pixel(100, 60).0[3], 255);
    }

    #[test]
    fn a_huge_spread_is_capped_to_keep_the_centre() {
        let out = torn_edges(red(), [10_000, 10_000], Rgba::WHITE, &budget()).unwrap().to_rgb8();
        assert_eq!(out.get_pixel(100, 60).0, [255, 0, 0]);
    }
}
