//! `enhance`: automatic levels, contrast and white balance, without a model.
//!
//! - `auto` (and the bare task): each channel is stretched so that its darkest and lightest
//!   0.5 % of pixels reach 0 and 255 (GIMP's "white balance"): a washed-out image regains its
//!   contrast, and a colour cast (one channel shifted or compressed) is neutralised.
//! - `vivid`: `auto`, then saturation × 1.3. `outdoor`: `auto`, then saturation × 1.15.
//! - `fix_dark`: `auto`, then a gamma that brings the mean brightness up to 0.45 (never darker).
//! - `fix_tint`: grey-world white balance only: each channel is scaled so that the channel means
//!   are equal (gains limited to 0.5…2), levels untouched.
//!
//! Filestack's `beautify`, `beautify_plus`, `fix_noise` and `fireworks` are refused with 501 in
//! the plan.

use super::modulate::modulate;
use super::pixels::{luma, map_rgb};
use crate::plan::image::Enhance;
use image::DynamicImage;

/// Share of pixels clipped at each end of a channel by the stretch.
const CLIP: f64 = 0.005;

/// Per-channel histograms of the visible (not fully transparent) pixels.
type Histograms = [[u64; 256]; 3];

pub fn enhance(img: DynamicImage, preset: Enhance) -> DynamicImage {
    let hist = histograms(&img);
    let luts = match preset {
        Enhance::FixTint => grey_world(&hist),
        _ => stretch(&hist),
    };
    let luts = match preset {
        Enhance::FixDark => brighten(&hist, luts),
        _ => luts,
    };
    let img = map_rgb(img, |[r, g, b]| [luts[0][r as usize], luts[1][g as usize], luts[2][b as usize]]);
    match preset {
        Enhance::Vivid => modulate(img, 1.0, 1.3, 0.0),
        Enhance::Outdoor => modulate(img, 1.0, 1.15, 0.0),
        _ => img,
    }
}

fn histograms(img: &DynamicImage) -> Histograms {
    let mut hist = [[0u64; 256]; 3];
    let mut count = |px: &[u8]| (0..3).for_each(|c| hist[c][px[c] as usize] += 1);
    match img {
        DynamicImage::ImageRgb8(b) => b.pixels().for_each(|p| count(&p.0)),
        DynamicImage::ImageRgba8(b) => b.pixels().filter(|p| p.0[3] > 0).for_each(|p| count(&p.0)),
        _ => {}
    }
    hist
}

type Luts = [[u8; 256]; 3];

/// Each channel's 0.5 % and 99.5 % points go to 0 and 255; a channel with (almost) a single
/// value is left alone (a flat colour has no levels to stretch).
fn stretch(hist: &Histograms) -> Luts {
    hist.map(|h| {
        let total: u64 = h.iter().sum();
        let clip = (total as f64 * CLIP) as u64;
        let (lo, hi) = (percentile(&h, clip), 255 - percentile(&reversed(&h), clip));
        let mut lut = identity();
        if hi > lo + 8 {
            let span = (hi - lo) as f64;
            for (v, out) in lut.iter_mut().enumerate() {
                *out = ((v as f64 - lo as f64) * 255.0 / span).round().clamp(0.0, 255.0) as u8;
            }
        }
        lut
    })
}

/// The first value with more than `skip` pixels at or below it.
fn percentile(h: &[u64; 256], skip: u64) -> usize {
    let mut seen = 0;
    h.iter()
        .position(|&n| {
            seen += n;
            seen > skip
        })
        .unwrap_or(0)
}

fn reversed(h: &[u64; 256]) -> [u64; 256] {
    let mut r = *h;
    r.reverse();
    r
}

fn identity() -> [u8; 256] {
    std::array::from_fn(|v| v as u8)
}

fn mean(h: &[u64; 256], lut: &[u8; 256]) -> f64 {
    let total: u64 = h.iter().sum();
    let sum: u64 = h.iter().zip(lut).map(|(&n, &v)| n * v as u64).sum();
    if total == 0 {
        0.0
    } else {
        sum as f64 / total as f64
    }
}

/// Scale channels so that their means meet at the mean of the three.
fn grey_world(hist: &Histograms) -> Luts {
    let id = identity();
    let means = [0, 1, 2].map(|c| mean(&hist[c], &id));
    let target = means.iter().sum::<f64>() / 3.0;
    means.map(|m| {
        let gain = if m > 0.0 { (target / m).clamp(0.5, 2.0) } else { 1.0 };
        std::array::from_fn(|v| (v as f64 * gain).round().min(255.0) as u8)
    })
}

/// After the stretch, a gamma that lifts the mean brightness to 0.45 (when it is below).
fn brighten(hist: &Histograms, luts: Luts) -> Luts {
    let m = [0, 1, 2].map(|c| mean(&hist[c], &luts[c]));
    let l = luma(m[0] as u8, m[1] as u8, m[2] as u8) as f64 / 255.0;
    if l <= 0.0 || l >= 0.45 {
        return luts;
    }
    let gamma = (0.45f64.ln() / l.ln()).clamp(0.3, 1.0);
    luts.map(|lut| lut.map(|v| (255.0 * (v as f64 / 255.0).powf(gamma)).round() as u8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    /// A horizontal ramp: `f(x)` for x in 0..100.
    fn ramp(f: impl Fn(u32) -> [u8; 3]) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(100, 10, |x, _| Rgb(f(x))))
    }

    fn range(img: &RgbImage, c: usize) -> (u8, u8) {
        let v: Vec<u8> = img.pixels().map(|p| p.0[c]).collect();
        (*v.iter().min().unwrap(), *v.iter().max().unwrap())
    }

    #[test]
    fn a_low_contrast_image_is_stretched_to_the_full_range() {
        let dull = ramp(|x| [(100 + x / 2) as u8; 3]);
        let out = enhance(dull, Enhance::Auto).to_rgb8();
        for c in 0..3 {
            let (lo, hi) = range(&out, c);
            assert!(lo <= 3 && hi >= 252, "channel {c}: {lo}…{hi}");
        }
        // still a ramp, and still grey
        assert!(out.get_pixel(30, 0).0[0] < out.get_pixel(60, 0).0[0]);
        assert!(out.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]));
    }

    #[test]
    fn a_colour_cast_grey_is_neutralised() {
        // a grey ramp with red lifted and blue pressed down
        let cast = ramp(|x| [(80 + x * 3 / 2) as u8, (50 + x * 3 / 2) as u8, (20 + x) as u8]);
        for preset in [Enhance::Auto, Enhance::FixTint] {
            let out = enhance(cast.clone(), preset).to_rgb8();
            let p = out.get_pixel(50, 5).0;
            let spread = p.iter().max().unwrap() - p.iter().min().unwrap();
            assert!(spread <= 24, "{preset:?}: {p:?}");
        }
        let before = cast.to_rgb8().get_pixel(50, 5).0;
        assert!(before[0] - before[2] > 60, "{before:?}");
    }

    #[test]
    fn presets_add_saturation_or_light() {
        let photo = ramp(|x| [(x * 2) as u8, (60 + x) as u8, (150 - x) as u8]);
        let sat = |img: &RgbImage| {
            img.pixels().map(|p| (*p.0.iter().max().unwrap() - *p.0.iter().min().unwrap()) as u32).sum::<u32>()
        };
        let auto = enhance(photo.clone(), Enhance::Auto).to_rgb8();
        assert!(sat(&enhance(photo.clone(), Enhance::Vivid).to_rgb8()) > sat(&auto));
        // mostly dark, with highlights that leave the stretch nothing to do
        let dark = ramp(|x| if x < 90 { [(x / 2) as u8, (x / 3) as u8, (x / 4) as u8] } else { [255; 3] });
        let mean = |img: &RgbImage| img.pixels().map(|p| luma(p.0[0], p.0[1], p.0[2]) as u32).sum::<u32>();
        let lifted = enhance(dark.clone(), Enhance::FixDark).to_rgb8();
        assert!(mean(&lifted) > mean(&enhance(dark, Enhance::Auto).to_rgb8()));
    }

    #[test]
    fn a_flat_colour_is_left_alone() {
        let flat = ramp(|_| [90, 140, 30]);
        assert_eq!(enhance(flat.clone(), Enhance::Auto), flat);
    }
}
