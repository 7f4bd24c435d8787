//! Image pipeline: sniff → probe (pixel limit) → decode with shrink-on-load → orient → tasks →
//! encode. Pure CPU work: callers run it on the blocking pool, never on the async executor.

pub mod audio;
pub mod colour;
pub mod decode;
pub mod decoded;
pub mod encode;
pub mod error;
pub mod format;
pub mod guard;
pub mod job;
mod jpeg_segments;
pub mod ops;
pub mod output;
pub mod quality;
pub mod steps;

pub use error::{PipelineError, Result};
pub use format::Format;
use job::{Answer, ImageJob, Job, Op};

/// The result of a transform.
#[derive(Debug)]
pub struct Rendered {
    pub body: output::Output,
    pub content_type: &'static str,
    pub extension: &'static str,
    /// The source's pixels came from the shared decodes (another derivative decoded them).
    pub shared_decode: bool,
    /// What `quality=auto` chose (`None`: a fixed quality, or not an image).
    pub quality: Option<quality::Chosen>,
}

impl Rendered {
    pub fn memory(bytes: Vec<u8>, content_type: &'static str, extension: &'static str) -> Rendered {
        Rendered { body: output::Output::Memory(bytes), content_type, extension, shared_decode: false, quality: None }
    }
}

/// What a render may use besides its inputs: where large results go, the decodes shared
/// between derivatives of one source, and what `quality=auto` aims at and may weigh.
#[derive(Default)]
pub struct Resources<'a> {
    pub spill: output::Spill,
    pub decodes: Option<Decodes<'a>>,
    pub auto: quality::Auto,
}

/// The shared decodes, and the source's key in them (its identity and version, the caller's).
#[derive(Clone, Copy)]
pub struct Decodes<'a> {
    pub cache: &'a decoded::DecodeCache,
    pub source: decoded::SourceKey,
}

/// Changes whenever the pipeline's output bytes would change for the same input and plan (a new
/// encoder setting, a colour fix): it is part of every derivative's cache key, so an upgrade does
/// not keep serving what the old code made.
pub const VERSION: &str = "2";

/// Limits that protect the process from hostile inputs and costly chains.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Pixels an image may have, decoded or produced.
    pub max_pixels: u64,
    /// Metadata (ICC, EXIF, XMP, text) an input may carry, counted inflated.
    pub max_metadata_bytes: u64,
    /// How many times a resize may enlarge, per axis.
    pub max_upscale: f64,
    /// Budget of one image transform.
    pub timeout: std::time::Duration,
    /// Budget of one audio job.
    pub audio_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 100_000_000,
            max_metadata_bytes: 16 << 20,
            max_upscale: 16.0,
            timeout: std::time::Duration::from_secs(30),
            audio_timeout: std::time::Duration::from_secs(600),
        }
    }
}

/// The limits of one running transform: its deadline starts when the job does.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub limits: Limits,
    deadline: std::time::Instant,
    /// The setting that gives this budget, named when it runs out.
    setting: &'static str,
}

impl Budget {
    pub fn start(limits: Limits) -> Budget {
        Budget { limits, deadline: std::time::Instant::now() + limits.timeout, setting: "transform_timeout_ms" }
    }

    /// An audio job's budget: `audio_timeout`.
    pub fn audio(limits: Limits) -> Budget {
        let limits = Limits { timeout: limits.audio_timeout, ..limits };
        Budget { setting: "audio_timeout_ms", ..Budget::start(limits) }
    }

    /// Called between steps and inside long loops: past the deadline the job stops with a 422.
    pub fn check(&self) -> Result<()> {
        if std::time::Instant::now() > self.deadline {
            return Err(PipelineError::OverLimit(format!(
                "the transform took longer than its budget of {} ms ({})",
                self.limits.timeout.as_millis(),
                self.setting
            )));
        }
        Ok(())
    }
}

/// Run a compiled job on source bytes. `negotiated` is the format the client's `Accept` chose
/// when the job asks for automatic format (decided by the front, not here).
/// Stored images a job overlays (watermarks), by handle.
pub type Overlays = std::collections::HashMap<String, bytes::Bytes>;

/// Run a job: an image job on the image pipeline, an audio job on the audio one.
pub fn render(
    bytes: bytes::Bytes,
    job: &Job,
    negotiated: Option<Format>,
    limits: Limits,
    overlays: &Overlays,
    resources: &Resources,
) -> Result<Rendered> {
    match job {
        Job::Image(image) if image.from_cover => {
            let (cover, _) = audio::probe::cover(bytes)?.ok_or_else(|| PipelineError::BadOption {
                task: "audio_cover",
                option: None,
                message: "the audio has no embedded cover picture".into(),
            })?;
            let context = Context { limits, overlays, decodes: None, auto: &resources.auto };
            run_image(&cover, image, negotiated, context)
        }
        Job::Image(image) => {
            let context = Context { limits, overlays, decodes: resources.decodes, auto: &resources.auto };
            run_image(&bytes, image, negotiated, context)
        }
        Job::Audio(audio) => audio::run(bytes, audio, limits, &resources.spill),
    }
}

pub fn run(bytes: &[u8], job: &ImageJob, negotiated: Option<Format>, limits: Limits) -> Result<Rendered> {
    let auto = quality::Auto::default();
    run_image(bytes, job, negotiated, Context { limits, overlays: &Overlays::new(), decodes: None, auto: &auto })
}

/// What an image job runs with besides its source.
struct Context<'a> {
    limits: Limits,
    overlays: &'a Overlays,
    decodes: Option<Decodes<'a>>,
    auto: &'a quality::Auto,
}

fn run_image(bytes: &[u8], job: &ImageJob, negotiated: Option<Format>, context: Context) -> Result<Rendered> {
    let Context { limits, overlays, decodes, auto } = context;
    let budget = Budget::start(limits);
    let input = format::require_decodable(bytes)?;
    let probe = decode::probe(bytes, input, &limits)?;
    if job.answer == Answer::Size {
        let (width, height) = probe.oriented();
        let body = serde_json::json!({ "width": width, "height": height }).to_string();
        return Ok(Rendered::memory(body.into_bytes(), "application/json", "json"));
    }
    let shrink_to = shrink_target(job, probe.oriented());
    let decode = || decode::decode(bytes, &probe, shrink_to, &limits);
    let (mut img, shared_decode) = match decodes {
        Some(d) => d.cache.get_or_decode(d.source, decode::scale(&probe, shrink_to), decode)?,
        None => (decode()?, false),
    };
    // each overlay is decoded once per job, however many steps use it
    let mut marks: std::collections::HashMap<&str, image::DynamicImage> = Default::default();
    for op in &job.ops {
        budget.check()?;
        img = match op {
            Op::Watermark { file: handle, size, align } => {
                if !marks.contains_key(handle.as_str()) {
                    let bytes = overlays.get(handle).ok_or_else(|| PipelineError::MissingOverlay(handle.clone()))?;
                    marks.insert(handle, decode_overlay(bytes, &limits)?);
                }
                ops::watermark(img, &marks[handle.as_str()], *size, *align, &budget)?
            }
            _ => ops::apply(img, op, &budget)?,
        };
    }
    budget.check()?;
    if let Some(icc) = &probe.icc {
        colour::to_srgb(&mut img, icc);
    }
    if let Answer::Ascii(spec) = &job.answer {
        let html = steps::ascii::html(&img, spec)?.into_bytes();
        return Ok(Rendered { shared_decode, ..Rendered::memory(html, "text/html; charset=utf-8", "html") });
    }
    let mut out = output_format(job, input, negotiated);
    if out == Format::Webp && (img.width() > 16_383 || img.height() > 16_383) {
        // WebP cannot hold more than 16383 px a side
        if job.output.format == Some(Format::Webp) {
            return Err(PipelineError::OverLimit(format!(
                "WebP is limited to 16383 px a side; the result is {}x{}",
                img.width(),
                img.height()
            )));
        }
        out = output_format(job, input, None);
    }
    budget.check()?;
    if job.output.auto_quality() {
        let formats = auto_candidates(job, input, out, &img, &auto.accepted);
        let encoded = quality::encode_auto(&img, &formats, &job.output, auto.target, &budget)?;
        let format = encoded.chosen.format;
        let rendered = Rendered::memory(encoded.bytes, format.mime(), format.extension());
        return Ok(Rendered { shared_decode, quality: Some(encoded.chosen), ..rendered });
    }
    let encoded = encode::encode(&img, out, &job.output)?;
    Ok(Rendered { shared_decode, ..Rendered::memory(encoded, out.mime(), out.extension()) })
}

/// The formats `quality=auto` encodes: the output format; with `format=auto` and the formats
/// `Accept` allows handed over, each of them and the input's own, the smallest kept.
fn auto_candidates(
    job: &ImageJob,
    input: Format,
    out: Format,
    img: &image::DynamicImage,
    accepted: &[Format],
) -> Vec<Format> {
    if !job.negotiates() || accepted.is_empty() {
        return vec![out];
    }
    let mut formats = vec![output_format(job, input, None)];
    let webp_fits = img.width() <= 16_383 && img.height() <= 16_383;
    for &f in accepted {
        if !formats.contains(&f) && f.encodable() && (f != Format::Webp || webp_fits) {
            formats.push(f);
        }
    }
    formats
}

fn decode_overlay(bytes: &[u8], limits: &Limits) -> Result<image::DynamicImage> {
    let format = format::require_decodable(bytes)?;
    let probe = decode::probe(bytes, format, limits)?;
    decode::decode(bytes, &probe, None, limits)
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
