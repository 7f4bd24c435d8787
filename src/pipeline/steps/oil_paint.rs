//! `oil_paint`: each pixel takes the mean colour of the most common brightness level around it
//! (ImageMagick's `-paint`), which flattens texture into strokes while edges stay put.
//!
//! The window's histogram slides: one histogram per column over the window's rows (moved down a
//! row at a time), summed across the window's columns (moved right a column at a time), so the
//! cost per pixel depends on the number of levels, not on the radius.

use super::pixels::luma;
use crate::pipeline::error::Result;
use crate::pipeline::Budget;
use image::DynamicImage;

/// Brightness levels of the histogram.
const LEVELS: usize = 16;

/// Pixels of one level in a window: how many, and their summed colour.
#[derive(Debug, Clone, Copy, Default)]
struct Bin {
    n: u32,
    sum: [u32; 3],
}

type Histogram = [Bin; LEVELS];

/// Paint with a `(2·radius+1)²` window; the image's edges are extended outwards. Alpha is kept.
pub fn oil_paint(img: DynamicImage, radius: u32, budget: &Budget) -> Result<DynamicImage> {
    if radius == 0 {
        return Ok(img);
    }
    Ok(match img {
        DynamicImage::ImageRgb8(b) => {
            let (w, h) = b.dimensions();
            let out = paint(&b, w as usize, h as usize, 3, radius as usize, budget)?;
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, out).expect("size"))
        }
        DynamicImage::ImageRgba8(b) => {
            let (w, h) = b.dimensions();
            let out = paint(&b, w as usize, h as usize, 4, radius as usize, budget)?;
            DynamicImage::ImageRgba8(image::RgbaImage::from_raw(w, h, out).expect("size"))
        }
        other => oil_paint(DynamicImage::ImageRgba8(other.to_rgba8()), radius, budget)?,
    })
}

fn paint(src: &[u8], w: usize, h: usize, ch: usize, r: usize, budget: &Budget) -> Result<Vec<u8>> {
    let mut out = src.to_vec();
    let row = |y: isize| &src[y.clamp(0, h as isize - 1) as usize * w * ch..][..w * ch];
    let mut columns = vec![Histogram::default(); w];
    for dy in -(r as isize)..=r as isize {
        add_row(&mut columns, row(dy), ch, true);
    }
    for y in 0..h {
        if y % 32 == 0 {
            budget.check()?;
        }
        if y > 0 {
            add_row(&mut columns, row(y as isize - 1 - r as isize), ch, false);
            add_row(&mut columns, row(y as isize + r as isize), ch, true);
        }
        paint_row(&columns, &mut out[y * w * ch..][..w * ch], ch, r);
    }
    Ok(out)
}

fn level(px: &[u8]) -> usize {
    luma(px[0], px[1], px[2]) as usize * LEVELS / 256
}

/// Add (or remove) one image row to the column histograms.
fn add_row(columns: &mut [Histogram], row: &[u8], ch: usize, add: bool) {
    for (column, px) in columns.iter_mut().zip(row.chunks_exact(ch)) {
        let bin = &mut column[level(px)];
        let one = if add { 1u32 } else { u32::MAX }; // wrapping −1
        bin.n = bin.n.wrapping_add(one);
        for (sum, &v) in bin.sum.iter_mut().zip(px) {
            let v = if add { v as u32 } else { (v as u32).wrapping_neg() };
            *sum = sum.wrapping_add(v);
        }
    }
}

/// Merge `column` into the window's histogram, or take it out.
fn merge(window: &mut Histogram, column: &Histogram, add: bool) {
    for (b, c) in window.iter_mut().zip(column) {
        if add {
            b.n += c.n;
            b.sum.iter_mut().zip(c.sum).for_each(|(s, v)| *s += v);
        } else {
            b.n -= c.n;
            b.sum.iter_mut().zip(c.sum).for_each(|(s, v)| *s -= v);
        }
    }
}

/// Write one row: slide the window's histogram along it and take the fullest level's mean.
fn paint_row(columns: &[Histogram], out: &mut [u8], ch: usize, r: usize) {
    let w = columns.len() as isize;
    let col = |x: isize| &columns[x.clamp(0, w - 1) as usize];
    let mut window = Histogram::default();
    for dx in -(r as isize)..=r as isize {
        merge(&mut window, col(dx), true);
    }
    for (x, px) in out.chunks_exact_mut(ch).enumerate() {
        let best = window.iter().max_by_key(|b| b.n).expect("levels");
        for (v, sum) in px.iter_mut().zip(best.sum) {
            *v = ((sum + best.n / 2) / best.n) as u8;
        }
        let x = x as isize;
        merge(&mut window, col(x - r as isize), false);
        merge(&mut window, col(x + r as isize + 1), true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;
    use image::{Rgb, RgbImage};
    use std::collections::HashSet;

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    /// Noise on the left half (a fixed pseudo-random pattern), a black/white edge on the right.
    fn noisy() -> RgbImage {
        RgbImage::from_fn(64, 32, |x, y| {
            if x < 32 {
                Rgb(hash(x, y).to_le_bytes()[..3].try_into().unwrap())
            } else {
                Rgb([if x < 48 { 0 } else { 255 }; 3])
            }
        })
    }

    fn hash(x: u32, y: u32) -> u32 {
        (x * 7919 + y * 104_729 + 17).wrapping_mul(2_654_435_761) >> 3
    }

    /// Mean absolute difference between horizontal neighbours over columns `xs`.
    fn roughness(img: &RgbImage, xs: std::ops::Range<u32>) -> f64 {
        let (mut sum, mut n) = (0u64, 0u64);
        for y in 0..img.height() {
            for x in xs.start..xs.end - 1 {
                let (a, b) = (img.get_pixel(x, y).0, img.get_pixel(x + 1, y).0);
                sum += (0..3).map(|c| (a[c] as i64 - b[c] as i64).unsigned_abs()).sum::<u64>();
                n += 3;
            }
        }
        sum as f64 / n as f64
    }

    #[test]
    fn noise_is_smoothed_and_edges_stay() {
        let src = noisy();
        let out = oil_paint(DynamicImage::ImageRgb8(src.clone()), 3, &budget()).unwrap().to_rgb8();
        let (before, after) = (roughness(&src, 4..28), roughness(&out, 4..28));
        assert!(after * 4.0 < before, "neighbour difference {before} → {after}");
        for y in 0..32 {
            assert_eq!(out.get_pixel(47, y).0, [0, 0, 0]);
            assert_eq!(out.get_pixel(48, y).0, [255, 255, 255]);
        }
    }

    #[test]
    fn specks_on_a_flat_colour_disappear() {
        // one pixel in five is a random light colour; the rest one flat dark blue
        let src = RgbImage::from_fn(40, 40, |x, y| {
            let v = hash(x, y);
            if v.is_multiple_of(5) {
                Rgb(v.to_le_bytes()[1..].try_into().map(|p: [u8; 3]| p.map(|c| c | 0xC0)).unwrap())
            } else {
                Rgb([30, 60, 200])
            }
        });
        let count = |img: &RgbImage| img.pixels().map(|p| p.0).collect::<HashSet<_>>().len();
        let out = oil_paint(DynamicImage::ImageRgb8(src.clone()), 2, &budget()).unwrap().to_rgb8();
        assert!(count(&src) > 100, "{}", count(&src));
        assert!(count(&out) < 10, "distinct colours {} → {}", count(&src), count(&out));
    }

    #[test]
    fn the_window_matches_a_direct_count() {
        let src = noisy();
        let out = oil_paint(DynamicImage::ImageRgb8(src.clone()), 2, &budget()).unwrap().to_rgb8();
        // recount the window of one pixel by hand (edges extended)
        let (cx, cy) = (1i64, 5i64);
        let mut bins = [Bin::default(); LEVELS];
        for dy in -2..=2 {
            for dx in -2..=2 {
                let p = src.get_pixel((cx + dx).clamp(0, 63) as u32, (cy + dy).clamp(0, 31) as u32).0;
                let b = &mut bins[level(&p)];
                b.n += 1;
                (0..3).for_each(|c| b.sum[c] += p[c] as u32);
            }
        }
        let best = bins.iter().max_by_key(|b| b.n).unwrap();
        let want = [0, 1, 2].map(|c| ((best.sum[c] + best.n / 2) / best.n) as u8);
        assert_eq!(out.get_pixel(cx as u32, cy as u32).0, want);
    }
}
