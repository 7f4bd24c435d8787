//! Waveform images: the peak/RMS envelope of the audio, gathered while it streams by (10 ms
//! buckets, 16 bytes each: about 11 MB for two hours, never its PCM), then drawn at the asked width as
//! PNG or SVG, or given as JSON peaks for players that draw their own.

use super::super::{PipelineError, Result};
use image::{ImageEncoder, Rgba, RgbaImage};
use std::fmt::Write as _;

/// How the envelope is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// One vertical bar per column, from the column's minimum to its maximum.
    Bars,
    /// A polyline through the columns' peak magnitudes, from the vertical centre upwards.
    Line,
    /// Peak magnitude mirrored around the centre, with the RMS drawn darker inside it.
    Mirror,
}

/// The drawing's size and colours (RGBA).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    pub width: u32,
    pub height: u32,
    pub color: [u8; 4],
    pub background: [u8; 4],
    pub style: Style,
}

/// One column of the envelope: sample extremes in [-1, 1] and RMS in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Column {
    pub min: f32,
    pub max: f32,
    pub rms: f32,
}

/// The envelope at its final width.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub columns: Vec<Column>,
    pub duration_secs: f64,
    pub sample_rate: u32,
}

/// Gathers 10 ms buckets (min, max, sum of squares, count over all channels) from planar blocks.
pub struct EnvelopeBuilder {
    sample_rate: u32,
    /// Frames per bucket: a hundredth of the sample rate, at least one.
    bucket_frames: usize,
    /// The completed buckets, 16 bytes each (2 h at 10 ms: about 11 MB).
    buckets: Vec<Bucket>,
    /// The bucket being filled, and how many frames it holds.
    current: Bucket,
    filled: usize,
    /// Frames seen in all.
    frames: u64,
}

/// The statistics of one bucket (or of several merged). Samples are clamped to [-1, 1], NaN
/// counts as silence, so no bucket ever holds a value that would draw as NaN.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    min: f32,
    max: f32,
    sum_sq: f32,
    count: u32,
}

impl Bucket {
    const EMPTY: Bucket = Bucket { min: f32::INFINITY, max: f32::NEG_INFINITY, sum_sq: 0.0, count: 0 };

    fn add(&mut self, samples: &[f32]) {
        let mut sum_sq = 0.0f64;
        for &s in samples {
            let s = if s.is_nan() { 0.0 } else { s.clamp(-1.0, 1.0) };
            self.min = self.min.min(s);
            self.max = self.max.max(s);
            sum_sq += f64::from(s * s);
        }
        self.sum_sq += sum_sq as f32;
        self.count = self.count.saturating_add(u32::try_from(samples.len()).unwrap_or(u32::MAX));
    }

    fn merge(mut self, other: &Bucket) -> Bucket {
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum_sq += other.sum_sq;
        self.count = self.count.saturating_add(other.count);
        self
    }

    fn column(&self) -> Column {
        if self.count == 0 {
            return Column::default();
        }
        let rms = (f64::from(self.sum_sq) / f64::from(self.count)).sqrt() as f32;
        Column { min: self.min, max: self.max, rms: rms.min(1.0) }
    }
}

impl EnvelopeBuilder {
    pub fn new(sample_rate: u32) -> EnvelopeBuilder {
        EnvelopeBuilder {
            sample_rate,
            bucket_frames: (sample_rate / 100).max(1) as usize,
            buckets: Vec::new(),
            current: Bucket::EMPTY,
            filled: 0,
            frames: 0,
        }
    }

    /// One decoded block: one slice per channel, equal lengths.
    pub fn push(&mut self, channels: &[&[f32]]) {
        let frames = channels.iter().map(|c| c.len()).min().unwrap_or(0);
        let mut at = 0;
        while at < frames {
            let take = (self.bucket_frames - self.filled).min(frames - at);
            for channel in channels {
                self.current.add(&channel[at..at + take]);
            }
            self.filled += take;
            at += take;
            if self.filled == self.bucket_frames {
                self.buckets.push(std::mem::replace(&mut self.current, Bucket::EMPTY));
                self.filled = 0;
            }
        }
        self.frames += frames as u64;
    }

    /// The envelope in `width` columns (fewer buckets than columns: each bucket spans several).
    pub fn finish(self, width: u32) -> Envelope {
        let mut buckets = self.buckets;
        if self.filled > 0 {
            buckets.push(self.current);
        }
        let (n, width) = (buckets.len(), width.max(1) as usize);
        let columns = (0..width)
            .map(|c| {
                if n == 0 {
                    return Column::default();
                }
                let start = c * n / width;
                let end = ((c + 1) * n / width).clamp(start + 1, n);
                buckets[start..end].iter().fold(Bucket::EMPTY, Bucket::merge).column()
            })
            .collect();
        let duration_secs = if self.sample_rate == 0 { 0.0 } else { self.frames as f64 / f64::from(self.sample_rate) };
        Envelope { columns, duration_secs, sample_rate: self.sample_rate }
    }
}

/// The envelope's columns resampled (nearest) to `width` pixels; none at all reads as silence.
fn columns_at(envelope: &Envelope, width: u32) -> Vec<Column> {
    let (n, width) = (envelope.columns.len(), width as usize);
    if n == width {
        return envelope.columns.clone();
    }
    (0..width).map(|x| envelope.columns.get(x * n / width).copied().unwrap_or_default()).collect()
}

/// The row (continuous) of a sample value: +1 at the top row, -1 at the bottom row, 0 centred.
fn y_of(v: f32, height: u32) -> f32 {
    (1.0 - v) * (height - 1) as f32 / 2.0
}

/// The largest magnitude a column reaches.
fn peak(c: &Column) -> f32 {
    c.min.abs().max(c.max.abs())
}

/// The colour with its RGB scaled to 60 %, alpha kept.
fn darker(color: [u8; 4]) -> [u8; 4] {
    let dim = |c: u8| (u16::from(c) * 3 / 5) as u8;
    [dim(color[0]), dim(color[1]), dim(color[2]), color[3]]
}

/// Paints the rows of column `x` from `ya` to `yb` (either order, rounded, at least one row).
fn vspan(img: &mut RgbaImage, x: u32, ya: f32, yb: f32, color: [u8; 4]) {
    let last = (img.height() - 1) as f32;
    let row = |y: f32| y.round().clamp(0.0, last) as u32;
    let (top, bottom) = (row(ya.min(yb)), row(ya.max(yb)));
    for y in top..=bottom {
        img.put_pixel(x, y, Rgba(color));
    }
}

fn draw(img: &mut RgbaImage, columns: &[Column], look: &Look) {
    let h = img.height();
    match look.style {
        Style::Bars => {
            for (x, c) in (0..).zip(columns) {
                vspan(img, x, y_of(c.max, h), y_of(c.min, h), look.color);
            }
        }
        Style::Mirror => {
            let dark = darker(look.color);
            for (x, c) in (0..).zip(columns) {
                let p = peak(c);
                vspan(img, x, y_of(p, h), y_of(-p, h), look.color);
                if c.rms > 0.0 {
                    vspan(img, x, y_of(c.rms, h), y_of(-c.rms, h), dark);
                }
            }
        }
        Style::Line => {
            // Each column spans from its own point half-way to its neighbours', so the columns join.
            let ys: Vec<f32> = columns.iter().map(|c| y_of(peak(c), h)).collect();
            for (x, &y) in (0..).zip(&ys) {
                let i = x as usize;
                let neighbours = &ys[i.saturating_sub(1)..(i + 2).min(ys.len())];
                let (lo, hi) = neighbours.iter().fold((y, y), |(lo, hi), &n| {
                    let mid = (y + n) / 2.0;
                    (lo.min(mid), hi.max(mid))
                });
                vspan(img, x, lo, hi, look.color);
            }
        }
    }
}

pub fn png(envelope: &Envelope, look: &Look) -> Result<Vec<u8>> {
    let (w, h) = (look.width.max(1), look.height.max(1));
    let mut img = RgbaImage::from_pixel(w, h, Rgba(look.background));
    draw(&mut img, &columns_at(envelope, w), look);
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgba8)
        .map_err(|e| PipelineError::codec("PNG encoder", e))?;
    Ok(out)
}

/// A number with at most two decimals, trailing zeros dropped.
fn num(v: f32) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" || s.is_empty() {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// `fill="#rrggbb"` (or `stroke=…`), with its opacity when the colour is not opaque.
fn paint(attr: &str, [r, g, b, a]: [u8; 4]) -> String {
    let mut s = format!(r##"{attr}="#{r:02x}{g:02x}{b:02x}""##);
    if a < 255 {
        let _ = write!(s, r#" {attr}-opacity="{}""#, num(f32::from(a) / 255.0));
    }
    s
}

/// The step outline of a band: along the tops left to right, back along the bottoms. Each
/// column covers [x, x + 1] and, as a PNG row does, [top, bottom + 1].
fn band(columns: &[Column], h: u32, span: impl Fn(&Column) -> (f32, f32)) -> Vec<[f32; 2]> {
    let edges: Vec<(f32, f32)> = columns.iter().map(span).map(|(hi, lo)| (y_of(hi, h), y_of(lo, h) + 1.0)).collect();
    let mut points = Vec::with_capacity(edges.len() * 4);
    for (x, &(top, _)) in (0..).zip(&edges) {
        push_point(&mut points, [x as f32, top]);
        push_point(&mut points, [(x + 1) as f32, top]);
    }
    for (x, &(_, bottom)) in (0..edges.len()).zip(&edges).rev() {
        push_point(&mut points, [(x + 1) as f32, bottom]);
        push_point(&mut points, [x as f32, bottom]);
    }
    points
}

/// Appends a point, dropping a repeat and extending a straight horizontal or vertical run.
fn push_point(points: &mut Vec<[f32; 2]>, p: [f32; 2]) {
    let straight = match points.as_slice() {
        [.., b] if *b == p => return,
        [.., a, b] => (a[0] == b[0] && b[0] == p[0]) || (a[1] == b[1] && b[1] == p[1]),
        _ => false,
    };
    if straight {
        points.pop();
    }
    points.push(p);
}

/// Path data through the points, using H and V where a step is straight.
fn path_data(points: &[[f32; 2]], close: bool) -> String {
    let mut d = String::with_capacity(points.len() * 7);
    let mut prev: Option<[f32; 2]> = None;
    for &[x, y] in points {
        let _ = match prev {
            None => write!(d, "M{} {}", num(x), num(y)),
            Some([px, _]) if px == x => write!(d, "V{}", num(y)),
            Some([_, py]) if py == y => write!(d, "H{}", num(x)),
            Some(_) => write!(d, "L{} {}", num(x), num(y)),
        };
        prev = Some([x, y]);
    }
    if close {
        d.push('Z');
    }
    d
}

fn polygon_points(points: &[[f32; 2]]) -> String {
    points.iter().map(|&[x, y]| format!("{},{}", num(x), num(y))).collect::<Vec<_>>().join(" ")
}

/// The shape of the style as SVG elements: one `<path>`, and for Mirror the RMS as a `<polygon>`.
fn svg_shape(columns: &[Column], look: &Look, h: u32) -> String {
    match look.style {
        Style::Bars => {
            let d = path_data(&band(columns, h, |c| (c.max, c.min)), true);
            format!(r#"<path d="{d}" {}/>"#, paint("fill", look.color))
        }
        Style::Mirror => {
            let d = path_data(&band(columns, h, |c| (peak(c), -peak(c))), true);
            let mut s = format!(r#"<path d="{d}" {}/>"#, paint("fill", look.color));
            if columns.iter().any(|c| c.rms > 0.0) {
                let points = polygon_points(&band(columns, h, |c| (c.rms, -c.rms)));
                let _ = write!(s, r#"<polygon points="{points}" {}/>"#, paint("fill", darker(look.color)));
            }
            s
        }
        Style::Line => {
            // Through the pixel centres, stretched to both edges so a single column still shows.
            let ys: Vec<f32> = columns.iter().map(|c| y_of(peak(c), h) + 0.5).collect();
            let mut points: Vec<[f32; 2]> = (0..).zip(&ys).map(|(x, &y)| [x as f32 + 0.5, y]).collect();
            points.insert(0, [0.0, ys[0]]);
            points.push([columns.len() as f32, ys[ys.len() - 1]]);
            let d = path_data(&points, false);
            let stroke = paint("stroke", look.color);
            format!(r#"<path d="{d}" fill="none" {stroke} stroke-width="1" stroke-linejoin="round"/>"#)
        }
    }
}

pub fn svg(envelope: &Envelope, look: &Look) -> String {
    let (w, h) = (look.width.max(1), look.height.max(1));
    let columns = columns_at(envelope, w);
    let mut s = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#);
    if look.background[3] > 0 {
        let _ = write!(s, r#"<rect width="{w}" height="{h}" {}/>"#, paint("fill", look.background));
    }
    s.push_str(&svg_shape(&columns, look, h));
    s.push_str("</svg>");
    s
}

pub fn json(envelope: &Envelope) -> serde_json::Value {
    let round = |v: f64| (v * 1e4).round() / 1e4;
    let series =
        |f: fn(&Column) -> f32| -> Vec<f64> { envelope.columns.iter().map(|c| round(f64::from(f(c)))).collect() };
    serde_json::json!({
        "duration": round(envelope.duration_secs),
        "sample_rate": envelope.sample_rate,
        "width": envelope.columns.len(),
        "min": series(|c| c.min),
        "max": series(|c| c.max),
        "rms": series(|c| c.rms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 44_100;
    const COLOR: [u8; 4] = [255, 128, 0, 255];
    const BACKGROUND: [u8; 4] = [0, 0, 0, 0];

    fn look(width: u32, height: u32, style: Style) -> Look {
        Look { width, height, color: COLOR, background: BACKGROUND, style }
    }

    /// Stereo, pushed in blocks of an awkward size so buckets straddle blocks.
    fn envelope_of(samples: &[f32], width: u32) -> Envelope {
        let mut builder = EnvelopeBuilder::new(RATE);
        for block in samples.chunks(1000) {
            builder.push(&[block, block]);
        }
        builder.finish(width)
    }

    fn sine(secs: f32) -> Vec<f32> {
        let frames = (secs * RATE as f32) as usize;
        (0..frames).map(|i| (std::f32::consts::TAU * 440.0 * i as f32 / RATE as f32).sin()).collect()
    }

    fn decode(bytes: &[u8]) -> RgbaImage {
        image::load_from_memory(bytes).expect("the PNG decodes").to_rgba8()
    }

    fn coloured_rows(img: &RgbaImage, x: u32) -> Vec<u32> {
        (0..img.height()).filter(|&y| img.get_pixel(x, y).0 == COLOR).collect()
    }

    #[test]
    fn silence_is_a_centre_line() {
        let env = envelope_of(&vec![0.0; 2 * RATE as usize], 300);
        assert_eq!(env.columns.len(), 300);
        assert!(env.columns.iter().all(|c| *c == Column::default()));
        assert!((env.duration_secs - 2.0).abs() < 1e-9);
        assert_eq!(env.sample_rate, RATE);
        for style in [Style::Bars, Style::Line, Style::Mirror] {
            let img = decode(&png(&env, &look(300, 101, style)).unwrap());
            assert_eq!(img.dimensions(), (300, 101));
            for x in 0..300 {
                assert_eq!(coloured_rows(&img, x), vec![50], "{style:?} column {x}");
            }
        }
    }

    #[test]
    fn full_scale_sine_fills_the_height() {
        let env = envelope_of(&sine(2.0), 300);
        for c in &env.columns {
            assert!((c.max - 1.0).abs() < 0.01 && (c.min + 1.0).abs() < 0.01, "{c:?}");
            assert!((c.rms - std::f32::consts::FRAC_1_SQRT_2).abs() < 0.01, "{c:?}");
        }
        let img = decode(&png(&env, &look(300, 80, Style::Bars)).unwrap());
        for x in 0..300 {
            let rows = coloured_rows(&img, x);
            assert_eq!((rows[0], rows[rows.len() - 1]), (0, 79), "column {x}");
        }
    }

    #[test]
    fn styles_draw_differently() {
        let samples: Vec<f32> = sine(1.0).iter().enumerate().map(|(i, s)| s * i as f32 / RATE as f32).collect();
        let env = envelope_of(&samples, 120);
        let [bars, line, mirror] =
            [Style::Bars, Style::Line, Style::Mirror].map(|s| png(&env, &look(120, 60, s)).unwrap());
        assert!(bars != line && line != mirror && bars != mirror);
        // Mirror shows the RMS darker inside the peak.
        let img = decode(&mirror);
        assert!(img.pixels().any(|p| p.0 == darker(COLOR)));
        // Line: one connected stroke, every column drawn, above or at the centre.
        let img = decode(&line);
        assert!((0..120).all(|x| coloured_rows(&img, x).iter().all(|&y| y <= 30)));
        assert!((0..120).all(|x| !coloured_rows(&img, x).is_empty()));
    }

    #[test]
    fn wider_than_the_buckets_repeats_them() {
        // 25 ms: two full buckets and a partial one.
        let samples: Vec<f32> = (0..1102).map(|i| if i < 441 { 0.5 } else { -0.25 }).collect();
        let env = envelope_of(&samples, 10);
        assert_eq!(env.columns.len(), 10);
        assert!(env.columns.iter().all(|c| c.min.is_finite() && c.max.is_finite() && c.rms.is_finite()));
        assert_eq!(env.columns[0], Column { min: 0.5, max: 0.5, rms: 0.5 });
        assert_eq!(env.columns[9], Column { min: -0.25, max: -0.25, rms: 0.25 });
        let img = decode(&png(&env, &look(10, 21, Style::Bars)).unwrap());
        assert_eq!(coloured_rows(&img, 0), vec![5]);
    }

    #[test]
    fn one_column_and_no_samples() {
        let env = envelope_of(&sine(0.5), 1);
        assert_eq!(env.columns.len(), 1);
        assert!((env.columns[0].max - 1.0).abs() < 0.01);
        assert_eq!(decode(&png(&env, &look(1, 10, Style::Line)).unwrap()).dimensions(), (1, 10));
        assert_eq!(EnvelopeBuilder::new(RATE).finish(0).columns.len(), 1);

        let empty = EnvelopeBuilder::new(RATE).finish(4);
        assert_eq!(empty.columns, vec![Column::default(); 4]);
        assert_eq!(empty.duration_secs, 0.0);
        let none = Envelope { columns: Vec::new(), duration_secs: 0.0, sample_rate: RATE };
        assert!(png(&none, &look(5, 5, Style::Mirror)).is_ok());
        assert!(svg(&none, &look(5, 5, Style::Line)).contains("<path"));
    }

    #[test]
    fn block_boundaries_do_not_matter() {
        let samples = sine(0.3);
        let mut whole = EnvelopeBuilder::new(RATE);
        whole.push(&[&samples]);
        let mut pieces = EnvelopeBuilder::new(RATE);
        for block in samples.chunks(37) {
            pieces.push(&[block]);
        }
        let (a, b) = (whole.finish(50), pieces.finish(50));
        assert_eq!(a.duration_secs, b.duration_secs);
        for (x, y) in a.columns.iter().zip(&b.columns) {
            assert_eq!((x.min, x.max), (y.min, y.max));
            assert!((x.rms - y.rms).abs() < 1e-5);
        }
    }

    #[test]
    fn out_of_range_samples_are_clamped() {
        let env = envelope_of(&[2.0, f32::NAN, -3.0, 0.0], 1);
        let c = env.columns[0];
        assert_eq!((c.min, c.max), (-1.0, 1.0));
        assert!(c.rms.is_finite() && c.rms <= 1.0);
    }

    #[test]
    fn svg_is_one_path_in_a_view_box() {
        let env = envelope_of(&sine(1.0), 200);
        for style in [Style::Bars, Style::Line, Style::Mirror] {
            let doc = svg(&env, &look(200, 50, style));
            assert!(doc.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="50""#));
            assert!(doc.contains(r#"viewBox="0 0 200 50""#) && doc.ends_with("</svg>"));
            assert_eq!(doc.matches("<path").count(), 1, "{style:?}");
            assert!(!doc.contains("<rect"), "transparent background is left out");
            assert!(doc.contains("#ff8000") && !doc.contains("NaN"));
            assert_eq!(doc.matches('<').count(), doc.matches('>').count());
            // Every number has at most two decimals.
            assert!(doc
                .split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .all(|t| t.split('.').nth(1).is_none_or(|d| d.len() <= 2)));
        }
        let opaque = Look { background: [255, 255, 255, 255], color: [0, 0, 255, 128], ..look(200, 50, Style::Bars) };
        let doc = svg(&env, &opaque);
        assert!(doc.contains(r##"<rect width="200" height="50" fill="#ffffff"/>"##));
        assert!(doc.contains(r##"fill="#0000ff" fill-opacity="0.5""##));
    }

    #[test]
    fn json_has_width_entries() {
        let env = envelope_of(&sine(1.0), 64);
        let v = json(&env);
        assert_eq!(v["width"], 64);
        assert_eq!(v["sample_rate"], RATE);
        assert_eq!(v["duration"], 1.0);
        for key in ["min", "max", "rms"] {
            let values = v[key].as_array().unwrap();
            assert_eq!(values.len(), 64);
            for x in values {
                let x = x.as_f64().unwrap();
                assert!(((x * 1e4).round() / 1e4 - x).abs() < 1e-12);
            }
        }
        assert!((v["rms"][0].as_f64().unwrap() - f64::from(std::f32::consts::FRAC_1_SQRT_2)).abs() < 0.01);
    }
}
