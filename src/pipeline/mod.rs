//! Image pipeline: sniff → probe (pixel limit) → decode with shrink-on-load → orient → tasks →
//! encode. Pure CPU work: callers run it on the blocking pool, never on the async executor.

pub mod colour;
pub mod decode;
pub mod encode;
pub mod format;
pub mod job;
pub mod ops;

use crate::error::Result;
pub use format::Format;
use job::{Answer, ImageJob, Op};

/// The result of a transform.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub extension: &'static str,
}

/// Limits that protect the process from hostile inputs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_pixels: u64,
}

/// The format `Accept` asks for, best first: AVIF, then WebP; `None` keeps the source's.
pub fn negotiate(accept: &str) -> Option<Format> {
    let accepts = |mime: &str| {
        accept.split(',').any(|part| {
            let mut fields = part.split(';').map(str::trim);
            let refused = |f: &str| f.strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()) == Some(0.0);
            fields.next() == Some(mime) && !fields.any(refused)
        })
    };
    if accepts("image/avif") {
        Some(Format::Avif)
    } else if accepts("image/webp") {
        Some(Format::Webp)
    } else {
        None
    }
}

/// Run a compiled job on source bytes. `negotiated` is the outcome of `negotiate` when the job
/// asks for automatic format.
/// Stored images a job overlays (watermarks), by handle.
pub type Overlays = std::collections::HashMap<String, bytes::Bytes>;

pub fn run(bytes: &[u8], job: &ImageJob, negotiated: Option<Format>, limits: Limits) -> Result<Rendered> {
    run_with(bytes, job, negotiated, limits, &Overlays::new())
}

pub fn run_with(
    bytes: &[u8],
    job: &ImageJob,
    negotiated: Option<Format>,
    limits: Limits,
    overlays: &Overlays,
) -> Result<Rendered> {
    let input = format::require_decodable(bytes)?;
    let probe = decode::probe(bytes, input, limits.max_pixels)?;
    if job.answer == Answer::Size {
        let (width, height) = probe.oriented();
        let body = serde_json::json!({ "width": width, "height": height }).to_string();
        return Ok(Rendered { bytes: body.into_bytes(), content_type: "application/json", extension: "json" });
    }
    let shrink_to = shrink_target(job, probe.oriented());
    let mut img = decode::decode(bytes, &probe, shrink_to, limits.max_pixels)?;
    for op in &job.ops {
        img = match op {
            Op::Watermark { handle, size, align } => {
                let mark = overlays
                    .get(handle)
                    .ok_or_else(|| crate::error::Error::NotFound(format!("watermark file `{handle}` is missing")))?;
                let mark = decode_overlay(mark, limits)?;
                ops::watermark(img, &mark, *size, *align, limits.max_pixels)?
            }
            _ => ops::apply(img, op, limits.max_pixels)?,
        };
    }
    if let Some(icc) = &probe.icc {
        colour::to_srgb(&mut img, icc);
    }
    let mut out = output_format(job, input, negotiated);
    if out == Format::Webp && (img.width() > 16_383 || img.height() > 16_383) {
        // WebP cannot hold more than 16383 px a side
        if job.output.format == Some(Format::Webp) {
            return Err(crate::error::Error::Unprocessable(format!(
                "WebP is limited to 16383 px a side; the result is {}x{}",
                img.width(),
                img.height()
            )));
        }
        out = output_format(job, input, None);
    }
    let encoded = encode::encode(&img, out, &job.output)?;
    Ok(Rendered { bytes: encoded, content_type: out.mime(), extension: out.extension() })
}

fn decode_overlay(bytes: &[u8], limits: Limits) -> Result<image::DynamicImage> {
    let format = format::require_decodable(bytes)?;
    let probe = decode::probe(bytes, format, limits.max_pixels)?;
    decode::decode(bytes, &probe, None, limits.max_pixels)
}

pub fn output_format(job: &ImageJob, input: Format, negotiated: Option<Format>) -> Format {
    let keep = if input.encodable() { input } else { Format::Png };
    match job.output.format {
        Some(f) => f,
        None if job.output.negotiate => negotiated.unwrap_or(keep),
        None => keep,
    }
}

/// The smallest decoded size the first resize needs, when the plan starts by shrinking.
fn shrink_target(job: &ImageJob, (w, h): (u32, u32)) -> Option<(u32, u32)> {
    let Some(Op::Resize { width, height, fit, align }) = job.ops.first() else { return None };
    let geo = ops::resize_geometry(w, h, *width, *height, *fit, *align);
    let (_, _, cw, ch) = geo.src;
    let need_w = (w as f64 * geo.dst.0 as f64 / cw).ceil() as u32;
    let need_h = (h as f64 * geo.dst.1 as f64 / ch).ceil() as u32;
    (need_w < w && need_h < h).then_some((need_w, need_h))
}
