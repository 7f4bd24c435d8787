//! `quality=auto`: the lowest encoder quality whose SSIMULACRA2 score against the image as the
//! encoder gets it (the final image, at output size) is at least a target, found by a bounded
//! search; with `format=auto`, the smallest of the accepted formats at that score.
//!
//! The search brackets the target over qualities [`LOWEST`]…[`HIGHEST`]: a first encode at a
//! seed, then steps estimated from the scores seen (a prior slope while only one side of the
//! target is known, interpolation once it is bracketed), at most [`PER_FORMAT`] encodes of one
//! format and [`PER_ANSWER`] for the whole answer, the deadline checked before each. JPEG and WebP
//! candidates are decoded (libjpeg-turbo, libwebp) and scored; the kept bytes are one of the
//! candidates, never encoded again. AVIF has no decoder here: JPEG and WebP are searched as its
//! guides, and it takes the higher of their qualities plus a margin ([`avif_quality`]), in one
//! encode.

use super::encode;
use super::error::{PipelineError, Result};
use super::format::Format;
use super::job::OutputSpec;
use super::Budget;
use crate::plan::Rgba;
use fast_ssim2::{PixelDescriptor, PixelSlice, Ssimulacra2Reference};
use image::{DynamicImage, RgbImage};

/// The SSIMULACRA2 score `quality=auto` aims at when not configured (`auto_quality_target`).
pub const DEFAULT_TARGET: f64 = 70.0;
/// The qualities searched.
pub const LOWEST: u8 = 30;
pub const HIGHEST: u8 = 95;
/// Encodes one format's search may spend.
pub const PER_FORMAT: usize = 4;
/// Encodes one answer may spend, every format weighed included.
pub const PER_ANSWER: usize = 8;
/// Where a JPEG search starts at the default target: the middle of where the corpus photos land
/// (35…72 at 70); it moves by two steps per point of target.
const SEED_JPEG: u8 = 60;
/// A WebP search starts this far above the quality JPEG needed (the corpus: −5…+12, median +4).
const WEBP_OVER_JPEG: u8 = 4;
/// AVIF takes this much more than the higher quality JPEG and WebP needed (see [`avif_quality`]).
const AVIF_MARGIN: u8 = 5;
/// Score points gained per quality step, assumed until two scores say otherwise.
const PRIOR_SLOPE: f64 = 0.5;
/// Larger images are scored on a mosaic of tiles (see [`sample`]), bounding the scorer's memory
/// (about 150 bytes a pixel) and time.
const MAX_SCORED_PIXELS: u64 = 4 << 20;
const TILE: u32 = 512;
const TILES: u32 = 3;

/// What the caller gives `quality=auto`: its target, and the formats `format=auto` may weigh
/// besides the kept one (from `Accept`; empty: no weighing).
#[derive(Debug, Clone, PartialEq)]
pub struct Auto {
    pub target: f64,
    pub accepted: Vec<Format>,
}

impl Default for Auto {
    fn default() -> Self {
        Auto { target: DEFAULT_TARGET, accepted: Vec::new() }
    }
}

/// What the search chose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chosen {
    pub format: Format,
    /// The encoder quality of the kept bytes (`None`: a format without one, PNG or GIF).
    pub quality: Option<u8>,
    /// The kept bytes' score (`None`: not decoded here, AVIF, or nothing to score).
    pub score: Option<f64>,
    /// Encodes the whole answer spent.
    pub encodes: usize,
}

/// The kept bytes and how they were chosen.
#[derive(Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub chosen: Chosen,
}

/// One candidate format's best encode.
struct Candidate {
    bytes: Vec<u8>,
    format: Format,
    quality: Option<u8>,
    score: Option<f64>,
    /// It reached the target (or has nothing to reach: lossless, or AVIF mapped from a search
    /// that did).
    reached: bool,
}

/// Encode `img` at automatic quality in the best of `formats`: one format, or the candidates of
/// `format=auto` (the smallest that reaches the target wins; if none does, the best scored).
pub fn encode_auto(
    img: &DynamicImage,
    formats: &[Format],
    spec: &OutputSpec,
    target: f64,
    budget: &Budget,
) -> Result<Encoded> {
    let plan = Plan::of(formats);
    let reference = match plan.searched.is_empty() || !scorable(img.width(), img.height()) {
        true => None,
        false => Some(Reference::new(img, spec.background.unwrap_or(Rgba::WHITE))?),
    };
    let mut spent = 0;
    let mut candidates = Vec::new();
    for format in plan.once {
        budget.check()?;
        let bytes = encode::encode(img, format, spec)?;
        spent += 1;
        candidates.push(Candidate { bytes, format, quality: None, score: None, reached: true });
    }
    let mut found: Vec<Candidate> = Vec::new();
    for (i, &format) in plan.searched.iter().enumerate() {
        let reserve = plan.searched.len() - i - 1 + usize::from(plan.avif);
        let allowed = PER_FORMAT.min(PER_ANSWER.saturating_sub(spent + reserve)).max(1);
        let seed = found.first().and_then(|c| c.quality).map_or(seed(target), |q| q.saturating_add(WEBP_OVER_JPEG));
        let search = Search { img, spec, format, target, budget };
        let (candidate, encodes) = match &reference {
            Some(reference) => search.run(reference, allowed, seed)?,
            None => search.fallback()?,
        };
        spent += encodes;
        found.push(candidate);
    }
    if plan.avif {
        budget.check()?;
        let q = avif_quality(found.iter().filter_map(|c| c.quality));
        let bytes = encode::encode(img, Format::Avif, &at(spec, q))?;
        spent += 1;
        let reached = found.iter().all(|c| c.reached);
        candidates.push(Candidate { bytes, format: Format::Avif, quality: Some(q), score: None, reached });
    }
    candidates.extend(found.into_iter().filter(|c| formats.contains(&c.format)));
    let best = pick(candidates).ok_or_else(|| PipelineError::codec("automatic quality", "no candidate format"))?;
    let chosen = Chosen { format: best.format, quality: best.quality, score: best.score, encodes: spent };
    Ok(Encoded { bytes: best.bytes, chosen })
}

/// The smallest candidate that reached the target; if none did, the best scored.
fn pick(candidates: Vec<Candidate>) -> Option<Candidate> {
    if candidates.iter().any(|c| c.reached) {
        return candidates.into_iter().filter(|c| c.reached).min_by_key(|c| c.bytes.len());
    }
    candidates.into_iter().max_by(|a, b| a.score.unwrap_or(0.0).total_cmp(&b.score.unwrap_or(0.0)))
}

/// How the formats of an answer are produced.
struct Plan {
    /// Formats without a quality: encoded once (PNG, GIF).
    once: Vec<Format>,
    /// Formats whose quality is searched, in order: JPEG first (the cheapest to encode and
    /// decode), then WebP; both are AVIF's guides, kept or not.
    searched: Vec<Format>,
    /// AVIF: one encode at the quality its guides give.
    avif: bool,
}

impl Plan {
    fn of(formats: &[Format]) -> Plan {
        let has = |f| formats.contains(&f);
        let avif = has(Format::Avif);
        let searched = [Format::Jpeg, Format::Webp].into_iter().filter(|&f| avif || has(f)).collect();
        let once = formats.iter().copied().filter(|f| !matches!(f, Format::Jpeg | Format::Webp | Format::Avif));
        Plan { once: once.collect(), searched, avif }
    }
}

/// `spec` at quality `q`.
fn at(spec: &OutputSpec, q: u8) -> OutputSpec {
    OutputSpec { quality: Some(q), ..spec.clone() }
}

/// A first search's first quality for `target`: [`SEED_JPEG`] at the default, two steps per
/// point of target away from it.
fn seed(target: f64) -> u8 {
    (SEED_JPEG as f64 + 2.0 * (target - DEFAULT_TARGET)).clamp(LOWEST as f64, HIGHEST as f64) as u8
}

/// AVIF's quality, from the qualities its guides (JPEG, WebP) needed for the target. The ravif
/// quality that scores like them varies with the image: on the corpus photos it was 22 steps
/// under JPEG's to 12 over WebP's, so no single offset from one guide holds. The higher of the
/// two plus [`AVIF_MARGIN`] reached the target on every photo (checked with `avifdec`): it errs
/// toward bytes, and weighing then keeps AVIF only where it is smaller even so.
pub fn avif_quality(guides: impl Iterator<Item = u8>) -> u8 {
    guides.max().map_or(encode::DEFAULT_QUALITY, |q| q.saturating_add(AVIF_MARGIN)).clamp(LOWEST, HIGHEST)
}

/// One format's search.
struct Search<'a> {
    img: &'a DynamicImage,
    spec: &'a OutputSpec,
    format: Format,
    target: f64,
    budget: &'a Budget,
}

impl Search<'_> {
    /// At most `allowed` encodes from `seed`; the kept encode and how many were made.
    fn run(&self, reference: &Reference, allowed: usize, seed: u8) -> Result<(Candidate, usize)> {
        let mut tried: Vec<(u8, f64)> = Vec::new();
        let mut best: Option<Candidate> = None;
        while tried.len() < allowed {
            let Some(q) = next_quality(&tried, self.target, seed) else { break };
            self.budget.check()?;
            let bytes = encode::encode(self.img, self.format, &at(self.spec, q))?;
            let score = reference.score(decode(self.format, &bytes, reference.background)?)?;
            tried.push((q, score));
            let reached = score >= self.target;
            let candidate = Candidate { bytes, format: self.format, quality: Some(q), score: Some(score), reached };
            if better(&candidate, best.as_ref()) {
                best = Some(candidate);
            }
        }
        let best = best.ok_or_else(|| PipelineError::codec("automatic quality", "no quality was tried"))?;
        Ok((best, tried.len()))
    }

    /// An image that cannot be scored (see [`scorable`]): the default quality, in one encode.
    fn fallback(&self) -> Result<(Candidate, usize)> {
        self.budget.check()?;
        let q = encode::DEFAULT_QUALITY;
        let bytes = encode::encode(self.img, self.format, &at(self.spec, q))?;
        Ok((Candidate { bytes, format: self.format, quality: Some(q), score: None, reached: true }, 1))
    }
}

/// A candidate that reached the target beats one that did not, then the lower quality (among
/// those that reached it) or the higher score (among those that did not).
fn better(c: &Candidate, than: Option<&Candidate>) -> bool {
    let Some(than) = than else { return true };
    match (c.reached, than.reached) {
        (true, false) => true,
        (false, true) => false,
        (true, true) => c.quality < than.quality,
        (false, false) => c.score > than.score,
    }
}

/// The next quality to try, from the (quality, score) pairs tried so far; `None` when the answer
/// is known (the lowest passing quality is next to a failing one, or at an end of the range).
pub fn next_quality(tried: &[(u8, f64)], target: f64, seed: u8) -> Option<u8> {
    if tried.is_empty() {
        return Some(seed.clamp(LOWEST, HIGHEST));
    }
    let pass = tried.iter().filter(|(_, s)| *s >= target).min_by_key(|(q, _)| *q).copied();
    let fail = tried.iter().filter(|(_, s)| *s < target).max_by_key(|(q, _)| *q).copied();
    let (lo, hi) = (fail.map_or(LOWEST - 1, |p| p.0), pass.map_or(HIGHEST + 1, |p| p.0));
    if hi <= LOWEST || lo >= HIGHEST || hi - lo <= 1 {
        return None;
    }
    let estimate = match (fail, pass) {
        (Some((ql, sl)), Some((qh, sh))) if sh > sl => ql as f64 + (target - sl) * (qh - ql) as f64 / (sh - sl),
        (Some((ql, _)), Some((qh, _))) => (ql as f64 + qh as f64) / 2.0,
        (None, Some((qh, sh))) => qh as f64 - (sh - target) / slope(tried),
        (Some((ql, sl)), None) => ql as f64 + (target - sl) / slope(tried),
        (None, None) => return None,
    };
    // a step toward the side not yet seen overshoots by one, so that it brackets the target
    let q = match (fail, pass) {
        (None, Some(_)) => estimate.floor() - 1.0,
        (Some(_), None) => estimate.ceil() + 1.0,
        _ => estimate.ceil(),
    };
    let q = q.clamp(lo as f64 + 1.0, hi as f64 - 1.0).clamp(LOWEST as f64, HIGHEST as f64) as u8;
    (!tried.iter().any(|(t, _)| *t == q)).then_some(q)
}

/// Score points per quality step, from the two most distant scores (the prior with fewer), kept
/// within a plausible range so that one noisy pair cannot send the search across the range.
fn slope(tried: &[(u8, f64)]) -> f64 {
    let lowest = tried.iter().min_by_key(|(q, _)| *q);
    let highest = tried.iter().max_by_key(|(q, _)| *q);
    match (lowest, highest) {
        (Some(&(ql, sl)), Some(&(qh, sh))) if qh > ql => ((sh - sl) / (qh - ql) as f64).clamp(0.15, 2.0),
        _ => PRIOR_SLOPE,
    }
}

/// The image as the encoders get it, prepared once (per scale, in XYB) to score candidates
/// against.
pub struct Reference {
    prepared: Ssimulacra2Reference,
    /// Transparency is flattened on this, in the reference and every candidate alike.
    background: Rgba,
}

impl Reference {
    pub fn new(img: &DynamicImage, background: Rgba) -> Result<Reference> {
        let rgb = sample(encode::flatten(img, background));
        let prepared = Ssimulacra2Reference::new(&slice(&rgb)?).map_err(scorer)?;
        Ok(Reference { prepared, background })
    }

    /// SSIMULACRA2 of `candidate` (the same size as the reference): 100 is identical, 90
    /// visually lossless, 70 high quality, 50 medium.
    pub fn score(&self, candidate: RgbImage) -> Result<f64> {
        let rgb = sample(candidate);
        self.prepared.compare(&slice(&rgb)?).map_err(scorer)
    }
}

/// 8-bit sRGB pixels as the scorer reads them.
fn slice(rgb: &RgbImage) -> Result<PixelSlice<'_>> {
    let stride = rgb.width() as usize * 3;
    PixelSlice::new(rgb.as_raw(), rgb.width(), rgb.height(), stride, PixelDescriptor::RGB8_SRGB).map_err(scorer)
}

fn scorer(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::codec("SSIMULACRA2", e)
}

/// Whether an image of this size can be scored: at least 8 px a side and, over
/// [`MAX_SCORED_PIXELS`], tiles of at least 8 px (a 3 px wide strip of a million rows cannot be).
fn scorable(w: u32, h: u32) -> bool {
    let large = (w as u64) * (h as u64) > MAX_SCORED_PIXELS;
    w >= 8 && h >= 8 && (!large || (w / TILES >= 8 && h / TILES >= 8))
}

/// An image over [`MAX_SCORED_PIXELS`] as a mosaic of [`TILES`]² tiles of at most [`TILE`] px,
/// one from the middle of each cell of a grid over it: full-resolution detail from every part
/// of the image, in bounded memory. Smaller images are scored whole.
pub fn sample(rgb: RgbImage) -> RgbImage {
    let (w, h) = rgb.dimensions();
    if (w as u64) * (h as u64) <= MAX_SCORED_PIXELS || w / TILES < 8 || h / TILES < 8 {
        return rgb;
    }
    let (tw, th) = ((w / TILES).min(TILE), (h / TILES).min(TILE));
    let mut out = RgbImage::new(tw * TILES, th * TILES);
    for (gy, gx) in (0..TILES).flat_map(|gy| (0..TILES).map(move |gx| (gy, gx))) {
        let (x0, y0) = (gx * (w / TILES) + (w / TILES - tw) / 2, gy * (h / TILES) + (h / TILES - th) / 2);
        for y in 0..th {
            for x in 0..tw {
                out.put_pixel(gx * tw + x, gy * th + y, *rgb.get_pixel(x0 + x, y0 + y));
            }
        }
    }
    out
}

/// A candidate's bytes back to pixels, transparency flattened on `background`.
fn decode(format: Format, bytes: &[u8], background: Rgba) -> Result<RgbImage> {
    let broken = |what: &'static str| PipelineError::codec(what, "could not decode its own output");
    match format {
        Format::Jpeg => {
            let img = turbojpeg::decompress(bytes, turbojpeg::PixelFormat::RGB)
                .map_err(|e| PipelineError::codec("JPEG decoder", e))?;
            let (w, h) = (img.width as u32, img.height as u32);
            RgbImage::from_raw(w, h, img.pixels).ok_or_else(|| broken("JPEG decoder"))
        }
        Format::Webp => {
            let img = webp::Decoder::new(bytes).decode().ok_or_else(|| broken("WebP decoder"))?;
            let (w, h, px) = (img.width(), img.height(), img.to_vec());
            let decoded = match img.is_alpha() {
                true => DynamicImage::ImageRgba8(
                    image::RgbaImage::from_raw(w, h, px).ok_or_else(|| broken("WebP decoder"))?,
                ),
                false => DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, px).ok_or_else(|| broken("WebP decoder"))?),
            };
            Ok(encode::flatten(&decoded, background))
        }
        other => Err(PipelineError::codec("automatic quality", format!("cannot score {}", other.mime()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;

    fn spec() -> OutputSpec {
        OutputSpec::default()
    }

    /// A photo-like test card: smooth gradients, edges, and deterministic noise.
    fn card(w: u32, h: u32) -> DynamicImage {
        let mut seed = 0x2545_f491_u32;
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let n = (seed % 24) as i32 - 12;
            let edge = if (x / 40 + y / 40) % 2 == 0 { 60 } else { 0 };
            let px = |base: i32| (base + edge + n).clamp(0, 255) as u8;
            image::Rgb([px((x * 200 / w) as i32), px((y * 180 / h) as i32 + 20), px(((x + y) % 256) as i32 / 2)])
        }))
    }

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    /// A smooth, rising score curve like an encoder's: `score(q)`.
    fn curve(q: u8) -> f64 {
        100.0 - 70.0 * (-(q as f64 - 20.0) / 35.0).exp()
    }

    /// The lowest quality of the range that reaches `target` on [`curve`].
    fn exact(target: f64) -> Option<u8> {
        (LOWEST..=HIGHEST).find(|&q| curve(q) >= target)
    }

    #[test]
    fn the_search_brackets_the_target_within_its_encodes() {
        for target in [40.0, 55.0, 62.5, 70.0, 78.0, 85.0] {
            let mut tried = Vec::new();
            while tried.len() < PER_FORMAT {
                let Some(q) = next_quality(&tried, target, seed(target)) else { break };
                assert!((LOWEST..=HIGHEST).contains(&q), "{q}");
                assert!(!tried.iter().any(|(t, _)| *t == q), "{q} tried twice");
                tried.push((q, curve(q)));
            }
            let found = tried.iter().filter(|(_, s)| *s >= target).map(|(q, _)| *q).min().expect("one passes");
            let best = exact(target).unwrap();
            assert!(found >= best && found <= best + 3, "target {target}: found {found}, best {best}: {tried:?}");
        }
    }

    #[test]
    fn the_search_stops_at_the_ends_of_the_range() {
        // everything passes: down to the lowest quality, then nothing more to try
        assert_eq!(next_quality(&[(LOWEST, 99.0)], 50.0, 70), None);
        // nothing passes: up to the highest, then stop
        assert_eq!(next_quality(&[(HIGHEST, 10.0)], 50.0, 70), None);
        // bracketed to one step
        assert_eq!(next_quality(&[(60, 49.0), (61, 51.0)], 50.0, 70), None);
        // an unreachable target climbs toward the highest quality
        let mut tried = Vec::new();
        while let Some(q) = next_quality(&tried, 99.5, seed(99.5)) {
            tried.push((q, curve(q)));
            assert!(tried.len() <= 10);
        }
        assert_eq!(tried.last().map(|t| t.0), Some(HIGHEST));
    }

    #[test]
    fn identical_images_score_100_and_worse_ones_less() {
        let img = card(96, 64);
        let reference = Reference::new(&img, Rgba::WHITE).unwrap();
        let same = reference.score(img.to_rgb8()).unwrap();
        assert!(same > 99.9, "{same}");
        let q20 = encode::encode(&img, Format::Jpeg, &at(&spec(), 20)).unwrap();
        let q90 = encode::encode(&img, Format::Jpeg, &at(&spec(), 90)).unwrap();
        let score = |b: &[u8]| reference.score(decode(Format::Jpeg, b, Rgba::WHITE).unwrap()).unwrap();
        assert!(score(&q20) < score(&q90), "{} {}", score(&q20), score(&q90));
    }

    #[test]
    fn one_format_reaches_the_target_in_at_most_four_encodes() {
        let img = card(320, 200);
        for format in [Format::Jpeg, Format::Webp] {
            let out = encode_auto(&img, &[format], &spec(), 70.0, &budget()).unwrap();
            let c = out.chosen;
            assert_eq!(c.format, format);
            assert!(c.encodes <= PER_FORMAT, "{c:?}");
            let score = c.score.unwrap();
            assert!(score >= 70.0 || c.quality == Some(HIGHEST), "{c:?}");
            let rescored = Reference::new(&img, Rgba::WHITE)
                .unwrap()
                .score(decode(format, &out.bytes, Rgba::WHITE).unwrap())
                .unwrap();
            assert!((rescored - score).abs() < 1e-9, "the kept bytes are the scored ones");
        }
    }

    #[test]
    fn weighing_keeps_the_smallest_within_eight_encodes() {
        let img = card(320, 200);
        // JPEG is searched first, as it would be alone: the weighed answer is never larger
        let jpeg = encode_auto(&img, &[Format::Jpeg], &spec(), 70.0, &budget()).unwrap();
        for formats in [&[Format::Jpeg, Format::Webp][..], &[Format::Jpeg, Format::Webp, Format::Avif]] {
            let out = encode_auto(&img, formats, &spec(), 70.0, &budget()).unwrap();
            let c = out.chosen;
            assert!(c.encodes <= PER_ANSWER && formats.contains(&c.format), "{c:?}");
            assert!(out.bytes.len() <= jpeg.bytes.len(), "{c:?} vs {:?}", jpeg.chosen);
            assert!(c.format == Format::Avif || c.score >= Some(70.0), "{c:?}");
        }
        // a lossless format among the candidates is encoded once and needs no score
        let png = encode_auto(&img, &[Format::Png, Format::Webp], &spec(), 70.0, &budget()).unwrap();
        assert!(matches!(png.chosen.format, Format::Png | Format::Webp));
        assert!(png.chosen.encodes <= 1 + PER_FORMAT);
    }

    #[test]
    fn avif_alone_follows_the_jpeg_and_webp_searches() {
        let img = card(128, 96);
        let out = encode_auto(&img, &[Format::Avif], &spec(), 70.0, &budget()).unwrap();
        assert_eq!((out.chosen.format, out.chosen.score), (Format::Avif, None));
        assert!(out.bytes.starts_with(&[0, 0, 0]) && &out.bytes[4..8] == b"ftyp");
        assert!(out.chosen.encodes <= PER_ANSWER);
        assert_eq!(avif_quality([40, 52].into_iter()), 52 + AVIF_MARGIN);
        assert_eq!(avif_quality([HIGHEST].into_iter()), HIGHEST);
        assert_eq!(avif_quality(std::iter::empty()), encode::DEFAULT_QUALITY);
    }

    #[test]
    fn tiny_images_and_spent_budgets_do_not_panic() {
        let tiny = card(5, 4);
        let out = encode_auto(&tiny, &[Format::Jpeg], &spec(), 70.0, &budget()).unwrap();
        assert_eq!((out.chosen.quality, out.chosen.encodes), (Some(encode::DEFAULT_QUALITY), 1));
        let spent = Budget::start(Limits { timeout: std::time::Duration::ZERO, ..Limits::default() });
        std::thread::sleep(std::time::Duration::from_millis(2));
        let e = encode_auto(&card(64, 64), &[Format::Jpeg], &spec(), 70.0, &spent).unwrap_err();
        assert!(matches!(e, PipelineError::OverLimit(_)), "{e:?}");
    }

    #[test]
    fn large_images_are_scored_on_a_bounded_mosaic() {
        let big = RgbImage::new(3000, 2000);
        assert_eq!(sample(big).dimensions(), (TILE * TILES, TILE * TILES));
        let strip = RgbImage::new(60_000, 90);
        assert_eq!(sample(strip).dimensions(), (TILE * TILES, 30 * TILES));
        assert_eq!(sample(RgbImage::new(800, 533)).dimensions(), (800, 533));
        // too thin to tile: not scored at all (the default quality)
        assert!(!scorable(20, 1_000_000) && !scorable(7, 100) && scorable(8, 8) && scorable(60_000, 90));
    }
}
