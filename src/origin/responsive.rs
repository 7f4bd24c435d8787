//! `GET /responsive/<transformation path>`: what a page needs to show one image responsively — a
//! `<picture>` with AVIF and WebP `<source>`s and an `<img>` in the original format, each with a
//! `srcset` over the width ladder (capped at the image's own width), the request's `sizes`, and
//! `width`/`height` from the real aspect ratio — as JSON or as the HTML snippet alone.
//!
//! Every URL it writes is a processing URL this server serves: the caller's tasks, then
//! `resize=width:N`, then `output=format:F`, each task in canonical form, with the caller's API
//! key and security segment (never a new policy). The request is checked exactly as a
//! transformation of its source is (a `convert` of the source and the files it overlays), and
//! the answer is derived from the source's dimensions only: no pixel is decoded.

use super::access::{first_credentials, private};
use super::deliver::surrogate_source_key;
use super::process::access;
use super::{Answer, Body, Caching, Disposition, FileAnswer, Origin, QueryParams};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::pipeline::job::{Answer as JobAnswer, Job, Op};
use crate::pipeline::{decode, ops::resize_geometry, output_format, Limits};
use crate::plan::{Param, Plan, Task};
use crate::security::{Call, Credentials};
use crate::url::{self, ParsedUrl, RawOption, RawTask, SecurityParams, SourceSpec, Value};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};
use serde::Serialize;

/// The name this endpoint's option errors carry as their task.
const TASK: &str = "responsive";
/// How long an edge may keep an answer (seconds). It follows the source's dimensions, which only
/// an overwrite changes, and an overwrite purges the handle's tag, which the answer carries.
pub const MAX_AGE: u64 = 300;
/// The longest `sizes` or `alt` taken (characters).
const MAX_TEXT: usize = 1024;
/// The most widths `resolutions` may list (as many as `width_ladder` may have).
const MAX_WIDTHS: usize = 64;

/// What a task segment escapes: what may not stand in a URL path, and `%` itself. Commas,
/// colons, brackets and slashes are the grammar's and stay as they are.
const TASK_TEXT: &AsciiSet =
    &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'<').add(b'>').add(b'?').add(b'`').add(b'{').add(b'}');
/// What a source path escapes: all but unreserved characters and its own slashes.
const SOURCE_PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');
/// An external URL as a source is escaped whole (`https%3A%2F%2F…`), so its `?` and `,` are its.
const SOURCE_URL: &AsciiSet = &SOURCE_PATH.add(b'/');

/// JSON, or the HTML snippet alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    Json,
    Html,
}

/// A word of `formats`: AVIF and WebP become `<source>`s, the others the `<img>`'s format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureFormat {
    Avif,
    Webp,
    Jpg,
    Png,
    /// The format the caller's chain gives (the source's, or its own `output`).
    Original,
}

impl PictureFormat {
    fn parse(word: &str) -> Option<PictureFormat> {
        Some(match word {
            "avif" => PictureFormat::Avif,
            "webp" => PictureFormat::Webp,
            "jpg" | "jpeg" => PictureFormat::Jpg,
            "png" => PictureFormat::Png,
            "original" => PictureFormat::Original,
            _ => return None,
        })
    }

    /// The `output=format:` its URLs end with (`None`: the chain's own format).
    fn output(self) -> Option<Format> {
        match self {
            PictureFormat::Avif => Some(Format::Avif),
            PictureFormat::Webp => Some(Format::Webp),
            PictureFormat::Jpg => Some(Format::Jpeg),
            PictureFormat::Png => Some(Format::Png),
            PictureFormat::Original => None,
        }
    }

    fn is_source(self) -> bool {
        matches!(self, PictureFormat::Avif | PictureFormat::Webp)
    }
}

/// The endpoint's query options (filestack-adaptive's names), validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsiveOptions {
    /// The `sizes` attribute, as given (default `100vw`).
    pub sizes: String,
    /// Widths replacing the configured ladder, rising.
    pub resolutions: Option<Vec<u32>>,
    /// The `<source>` formats, in the order given.
    pub sources: Vec<PictureFormat>,
    /// The `<img>`'s format.
    pub img: PictureFormat,
    pub alt: String,
    /// `output=json|html`; when absent, `Accept` decides.
    pub rendering: Option<Rendering>,
    /// `policy` and `signature` given in the query.
    pub security: Option<SecurityParams>,
}

impl Default for ResponsiveOptions {
    fn default() -> Self {
        ResponsiveOptions {
            sizes: "100vw".into(),
            resolutions: None,
            sources: vec![PictureFormat::Avif, PictureFormat::Webp],
            img: PictureFormat::Original,
            alt: String::new(),
            rendering: None,
            security: None,
        }
    }
}

impl ResponsiveOptions {
    /// Parse the raw query: `+` is a space in text options (form encoding), never in a policy.
    pub fn parse(raw: Option<&str>) -> Result<ResponsiveOptions> {
        let mut options = ResponsiveOptions::default();
        let (mut seen, mut policy, mut signature) = (Vec::new(), None, None);
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode_component(k, false)?;
            if seen.contains(&key) {
                return Err(Error::bad_option(TASK, &key, format!("option `{key}` given twice")));
            }
            let value = decode_component(v, !matches!(key.as_str(), "policy" | "signature"))?;
            match key.as_str() {
                "policy" => policy = Some(value),
                "signature" => signature = Some(value),
                _ => options.set(&key, value)?,
            }
            seen.push(key);
        }
        options.security = match (policy, signature) {
            (Some(policy), Some(signature)) => Some(SecurityParams { policy, signature }),
            (None, None) => None,
            (Some(_), None) => return Err(Error::bad_option(TASK, "signature", "`policy` needs its `signature`")),
            (None, Some(_)) => return Err(Error::bad_option(TASK, "policy", "`signature` needs its `policy`")),
        };
        Ok(options)
    }

    fn set(&mut self, key: &str, value: String) -> Result<()> {
        match key {
            "sizes" => self.sizes = text(key, &value, false)?,
            "alt" => self.alt = text(key, &value, true)?,
            "formats" => (self.sources, self.img) = parse_formats(&value)?,
            "resolutions" => self.resolutions = Some(parse_resolutions(&value)?),
            "output" => {
                self.rendering = Some(match value.as_str() {
                    "json" => Rendering::Json,
                    "html" => Rendering::Html,
                    other => {
                        return Err(Error::bad_option(TASK, key, format!("`output` is json or html, not `{other}`")))
                    }
                })
            }
            other => {
                let allowed = "sizes, resolutions, formats, alt, output, policy, signature";
                return Err(Error::bad_option(TASK, other, format!("unknown option `{other}`; allowed: {allowed}")));
            }
        }
        Ok(())
    }
}

/// A query component percent-decoded; `form`: `+` is a space.
fn decode_component(raw: &str, form: bool) -> Result<String> {
    let raw = if form { raw.replace('+', " ") } else { raw.to_string() };
    let decoded = percent_encoding::percent_decode_str(&raw).decode_utf8();
    decoded.map(|s| s.into_owned()).map_err(|_| Error::bad("the query is not UTF-8"))
}

/// Free text for an attribute: bounded, without control characters, trimmed.
fn text(option: &str, value: &str, may_be_empty: bool) -> Result<String> {
    let value = value.trim();
    if value.chars().count() > MAX_TEXT {
        return Err(Error::bad_option(TASK, option, format!("`{option}` is longer than {MAX_TEXT} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::bad_option(TASK, option, format!("`{option}` holds control characters")));
    }
    if value.is_empty() && !may_be_empty {
        return Err(Error::bad_option(TASK, option, format!("`{option}` is empty")));
    }
    Ok(value.to_string())
}

/// `a,b,c` or `[a,b,c]`, items trimmed, empty ones left out.
fn list(value: &str) -> Vec<&str> {
    let inner = value.trim();
    let inner = inner.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(inner);
    inner.split(',').map(str::trim).filter(|w| !w.is_empty()).collect()
}

/// `formats`: AVIF and WebP are `<source>`s in the order given; at most one of jpg, png and
/// original is the `<img>`'s (original when none is).
fn parse_formats(value: &str) -> Result<(Vec<PictureFormat>, PictureFormat)> {
    let bad = |message: String| Error::bad_option(TASK, "formats", message);
    let (mut sources, mut img) = (Vec::new(), None);
    for word in list(value) {
        let format = PictureFormat::parse(&word.to_ascii_lowercase())
            .ok_or_else(|| bad(format!("unknown format `{word}`; allowed: avif, webp, jpg, png, original")))?;
        if sources.contains(&format) || (img == Some(format)) {
            return Err(bad(format!("format `{word}` given twice")));
        }
        match format.is_source() {
            true => sources.push(format),
            false if img.is_some() => {
                return Err(bad("at most one of jpg, png and original (the <img>'s format)".into()))
            }
            false => img = Some(format),
        }
    }
    if sources.is_empty() && img.is_none() {
        return Err(bad("`formats` is empty".into()));
    }
    Ok((sources, img.unwrap_or(PictureFormat::Original)))
}

/// `resolutions`: widths as `300w` or `300` (1 to 10000), sorted; pixel densities are refused.
fn parse_resolutions(value: &str) -> Result<Vec<u32>> {
    let bad = |message: String| Error::bad_option(TASK, "resolutions", message);
    let mut widths = Vec::new();
    for word in list(value) {
        let digits = word.strip_suffix(['w', 'W']).unwrap_or(word);
        let width = digits.parse::<u32>().ok().filter(|w| (1..=10_000).contains(w));
        let why = "a width is `300w` or `300` (1 to 10000); pixel densities (`2x`) need a fixed width, not taken here";
        widths.push(width.ok_or_else(|| bad(format!("`{word}`: {why}")))?);
    }
    if widths.is_empty() || widths.len() > MAX_WIDTHS {
        return Err(bad(format!("`resolutions` lists 1 to {MAX_WIDTHS} widths")));
    }
    widths.sort_unstable();
    widths.dedup();
    Ok(widths)
}

/// A request for the endpoint, as the front hands it over.
#[derive(Debug, Clone)]
pub struct ResponsiveRequest {
    /// The transformation path after `/responsive` (raw, still percent-encoded).
    pub path: String,
    pub options: ResponsiveOptions,
    /// Credentials from the `Authorization` header (the URL's and the query's come first).
    pub bearer: Option<Credentials>,
    /// Scheme and host the URLs are written against, without a trailing slash.
    pub base: String,
    /// `Accept` prefers HTML (used when `output` is not given).
    pub prefers_html: bool,
}

/// The answer: the `<picture>` as data, and as HTML.
#[derive(Debug, Clone, Serialize)]
pub struct Picture {
    /// The image's own size: what the caller's tasks make of the source.
    pub width: u32,
    pub height: u32,
    pub sizes: String,
    pub sources: Vec<PictureSource>,
    pub img: PictureImg,
    pub html: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PictureSource {
    #[serde(rename = "type")]
    pub mime: &'static str,
    pub srcset: String,
    pub sizes: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PictureImg {
    pub src: String,
    pub srcset: String,
    pub sizes: String,
    pub width: u32,
    pub height: u32,
    pub alt: String,
    pub loading: &'static str,
    pub decoding: &'static str,
    /// What its URLs answer (not an attribute of `<img>`).
    #[serde(rename = "type")]
    pub mime: &'static str,
}

/// The image the caller's tasks describe: its size, and the source's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    width: u32,
    height: u32,
    input: Format,
}

/// One srcset: what its URLs answer, and each URL with its width.
struct Candidates {
    mime: &'static str,
    entries: Vec<(String, u32)>,
}

impl Candidates {
    fn srcset(&self) -> String {
        self.entries.iter().map(|(url, w)| format!("{url} {w}w")).collect::<Vec<_>>().join(", ")
    }

    /// The entry for `width` (the first at least that wide), else the widest.
    fn src(&self, width: u32) -> String {
        let entry = self.entries.iter().find(|(_, w)| *w >= width).or(self.entries.last());
        entry.map(|(url, _)| url.clone()).unwrap_or_default()
    }
}

impl Origin {
    /// The `<picture>` of a transformation path, checked as a transformation of its source.
    pub async fn responsive(&self, req: ResponsiveRequest) -> Result<Answer> {
        let url = responsive_url(&req.path)?;
        let job = caller_job(&Plan::build(&url)?)?;
        let image = job.image().expect("caller_job answers image jobs");
        let creds = first_credentials([
            url.security.clone().map(Into::into),
            req.options.security.clone().map(Into::into),
            req.bearer.clone(),
        ]);
        let wanted = access(Call::Convert, &url.source, Some(&job));
        let grant = self.authorize(url.apikey.as_deref(), creds.as_ref(), Some(&url.source), &wanted).await?;
        let (dims, input) = self.source_dims(&url.source).await?;
        let (width, height) = chain_dims(&image.ops, dims)?;
        let shape = Shape { width, height, input };
        // the credentials the request carried in its URL go into every URL it is given
        let security = url.security.as_ref().or(req.options.security.as_ref());
        let form = UrlForm::new(&req.base, &url, security)?;
        let picture = self.picture(&url, &form, shape, &req.options)?;
        let rendering = req.options.rendering.unwrap_or(match req.prefers_html {
            true => Rendering::Html,
            false => Rendering::Json,
        });
        let file = self.picture_answer(&url.source, &picture, rendering, req.options.rendering.is_none()).await?;
        Ok(Answer::File(Box::new(private(file, &grant))))
    }

    /// The source's displayed size and format: a stored image's metadata, else its header.
    async fn source_dims(&self, source: &SourceSpec) -> Result<((u32, u32), Format)> {
        if let SourceSpec::Handle { handle } = source {
            let meta = self.store.meta(handle).await?;
            let format = image_format(&meta.mimetype)?;
            if let (Some(w), Some(h)) = (meta.width, meta.height) {
                return Ok(((w, h), format));
            }
        }
        // a read of the source like any other: its place in the queue first
        let admission = self.pool.admit()?;
        let bytes = self.sources.fetch(source).await?;
        let limits = self.limits();
        admission.run(move || probe(&bytes, &limits), || false).await
    }

    fn picture(&self, url: &ParsedUrl, form: &UrlForm, shape: Shape, options: &ResponsiveOptions) -> Result<Picture> {
        let ladder = options.resolutions.as_deref().unwrap_or(&self.config.width_ladder);
        let widths = srcset_widths(ladder, shape.width);
        let sizes = options.sizes.clone();
        let mut sources = Vec::new();
        for format in &options.sources {
            let set = self.candidates(url, form, format.output(), &widths, shape.input)?;
            sources.push(PictureSource { mime: set.mime, srcset: set.srcset(), sizes: sizes.clone() });
        }
        let set = self.candidates(url, form, options.img.output(), &widths, shape.input)?;
        let img = PictureImg {
            src: set.src(self.config.hint_default_width),
            srcset: set.srcset(),
            sizes: sizes.clone(),
            width: shape.width,
            height: shape.height,
            alt: options.alt.clone(),
            loading: "lazy",
            decoding: "async",
            mime: set.mime,
        };
        let mut picture =
            Picture { width: shape.width, height: shape.height, sizes, sources, img, html: String::new() };
        picture.html = html(&picture);
        Ok(picture)
    }

    /// The URLs of one format at each width: each compiled as the server compiles it when asked
    /// (the chain limit, the plan, the job), and written from that plan.
    fn candidates(
        &self,
        url: &ParsedUrl,
        form: &UrlForm,
        output: Option<Format>,
        widths: &[u32],
        input: Format,
    ) -> Result<Candidates> {
        let mut set = Candidates { mime: input.mime(), entries: Vec::with_capacity(widths.len()) };
        for &width in widths {
            let mut variant = url.clone();
            variant.tasks.push(raw_task("resize", "width", width.to_string()));
            if let Some(format) = output {
                variant.tasks.push(raw_task("output", "format", format.extension().to_string()));
            }
            let parsed = self.compile(variant, QueryParams::default())?;
            let job = parsed.job.as_ref().and_then(Job::image);
            let job = job.ok_or_else(|| Error::internal("a resize compiled to no image job"))?;
            set.mime = output_format(job, input, None).mime();
            set.entries.push((form.url(&parsed.plan), width));
        }
        Ok(set)
    }

    /// The answer as bytes with a strong tag, public for [`MAX_AGE`], tagged with the source
    /// for purges; `Vary: Accept` when `Accept` chose the rendering.
    async fn picture_answer(
        &self,
        source: &SourceSpec,
        picture: &Picture,
        rendering: Rendering,
        negotiated: bool,
    ) -> Result<FileAnswer> {
        let (body, content_type, extension) = match rendering {
            Rendering::Json => (serde_json::to_vec(picture).map_err(Error::internal)?, "application/json", "json"),
            Rendering::Html => (picture.html.clone().into_bytes(), "text/html; charset=utf-8", "html"),
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let modified = self.sources.version(source).await?.modified.unwrap_or(now);
        Ok(FileAnswer {
            checksum: blake3::hash(&body).to_hex().to_string(),
            body: Body::Bytes(body.into()),
            content_type: content_type.to_string(),
            modified,
            caching: Caching::Public(MAX_AGE),
            surrogate_keys: vec![surrogate_source_key(source)],
            vary_accept: negotiated,
            vary_hints: Vec::new(),
            disposition: Disposition { filename: format!("picture.{extension}"), attachment: false },
            cache_status: "refract; detail=responsive",
            timing: String::new(),
            auto_quality: None,
        })
    }
}

/// The transformation path parsed; what has no meaning here is refused.
fn responsive_url(path: &str) -> Result<ParsedUrl> {
    let url = url::parse(path, None)?;
    if url.debug {
        return Err(Error::bad_task("debug", "`debug` has no meaning under /responsive"));
    }
    if matches!(url.source, SourceSpec::List { .. }) {
        return Err(Error::bad("/responsive describes one image: its source cannot be a list"));
    }
    if super::hints::wants_hints(&url) {
        let why = "`auto` comes from client hints; /responsive writes the widths itself";
        return Err(Error::bad_option("resize", "width", why));
    }
    Ok(url)
}

/// The caller's tasks compiled: an image job that answers an image.
fn caller_job(plan: &Plan) -> Result<Job> {
    let refuse = |task: &str| Err(Error::bad_task(task, format!("`{task}` has no meaning under /responsive")));
    if plan.store().is_some() {
        return refuse("store");
    }
    if plan.zip() {
        return refuse("zip");
    }
    let job = Job::compile(plan)?;
    match job.image() {
        None => Err(Error::bad("/responsive describes images: the tasks make audio")),
        Some(image) if image.answer == JobAnswer::Size => refuse("imagesize"),
        Some(image) if image.from_cover => refuse("audio_cover"),
        Some(_) => Ok(job),
    }
}

/// A stored file's format, when it is an image the pipeline reads (415 otherwise).
fn image_format(mimetype: &str) -> Result<Format> {
    const ALL: [Format; 8] =
        [Format::Jpeg, Format::Png, Format::Webp, Format::Avif, Format::Gif, Format::Bmp, Format::Tiff, Format::Ico];
    let format = ALL.into_iter().find(|f| f.mime() == mimetype && f.decodable());
    format.ok_or_else(|| {
        Error::UnsupportedMedia(format!("the source is {mimetype}, not an image this server transforms"))
    })
}

/// An image's displayed size and format, from its header (a non-image is a 415).
fn probe(bytes: &[u8], limits: &Limits) -> Result<((u32, u32), Format)> {
    let format = crate::pipeline::format::require_decodable(bytes)?;
    let probe = decode::probe(bytes, format, limits)?;
    Ok((probe.oriented(), format))
}

/// The size a job's steps make of a `w`×`h` image, as the pipeline computes it.
fn chain_dims(ops: &[Op], (mut w, mut h): (u32, u32)) -> Result<(u32, u32)> {
    for op in ops {
        (w, h) = match op {
            Op::Resize { width, height, fit, align } => resize_geometry(w, h, *width, *height, *fit, *align).dst,
            Op::Crop { x, y, width, height } => {
                if *x >= w || *y >= h {
                    let message = format!("crop origin {x},{y} is outside the {w}x{h} image");
                    return Err(Error::bad_option("crop", "dim", message));
                }
                ((*width).min(w - x), (*height).min(h - y))
            }
            Op::Rotate { degrees, .. } => rotated(w, h, *degrees),
            Op::Border { width, .. } => (w.saturating_add(2 * width), h.saturating_add(2 * width)),
            Op::Upscale { enlarge: true, .. } => (w.saturating_mul(2), h.saturating_mul(2)),
            Op::SmartCrop { width, height, .. } => (width.unwrap_or(w), height.unwrap_or(h)),
            Op::Shadow { blur, vector, .. } => crate::pipeline::steps::shadow::layout(w, h, *blur, *vector).canvas,
            _ => (w, h),
        };
    }
    Ok((w, h))
}

/// The canvas a clockwise rotation needs (the pipeline's own formula).
fn rotated(w: u32, h: u32, degrees: u32) -> (u32, u32) {
    match degrees {
        0 | 180 => (w, h),
        90 | 270 => (h, w),
        _ => {
            let (sin, cos) = f64::from(degrees).to_radians().sin_cos();
            let (w, h) = (f64::from(w), f64::from(h));
            ((w * cos.abs() + h * sin.abs()).ceil() as u32, (w * sin.abs() + h * cos.abs()).ceil() as u32)
        }
    }
}

/// The widths of a srcset: the rising `candidates` up to the image's own width, which ends the
/// list when it lies between two of them (never wider than the image, nor than the last one).
pub fn srcset_widths(candidates: &[u32], real: u32) -> Vec<u32> {
    let mut widths: Vec<u32> = candidates.iter().copied().filter(|&w| w <= real).collect();
    if candidates.iter().any(|&w| w > real) && widths.last() != Some(&real) {
        widths.push(real);
    }
    widths
}

fn raw_task(name: &str, option: &str, value: String) -> RawTask {
    RawTask { name: name.into(), options: vec![RawOption { key: option.into(), value: Some(Value::scalar(value)) }] }
}

/// How the URLs of one answer are written: `BASE/[KEY/][security=p:…,s:…/]TASKS/SOURCE`.
struct UrlForm {
    prefix: String,
    source: String,
}

impl UrlForm {
    fn new(base: &str, url: &ParsedUrl, security: Option<&SecurityParams>) -> Result<UrlForm> {
        let mut prefix = format!("{}/", base.trim_end_matches('/'));
        if let Some(key) = &url.apikey {
            prefix += &format!("{key}/");
        }
        if let Some(security) = security {
            prefix += &security_segment(security);
            prefix.push('/');
        }
        Ok(UrlForm { prefix, source: source_text(&url.source)? })
    }

    fn url(&self, plan: &Plan) -> String {
        let tasks: Vec<String> = plan.tasks.iter().map(task_text).collect();
        format!("{}{}/{}", self.prefix, tasks.join("/"), self.source)
    }
}

/// The absolute path (no host) of `url` with its tasks as `plan` has them, canonical: what a
/// request for the same derivative spells out.
pub(super) fn canonical_path(url: &ParsedUrl, plan: &Plan) -> Result<String> {
    Ok(UrlForm::new("", url, url.security.as_ref())?.url(plan))
}

/// A task in canonical form, escaped for a path. `cache=false` is written as the URL says it:
/// its canonical `enabled` is not an option a URL can name.
fn task_text(task: &Task) -> String {
    let text = match (task.name(), task.get("enabled"), task.get("expiry")) {
        ("cache", Some(Param::Bool(false)), _) => "cache=false".to_string(),
        ("cache", _, Some(Param::Int(n))) => format!("cache=expiry:{n}"),
        ("cache", _, _) => "cache".to_string(),
        _ => task.canonical(),
    };
    utf8_percent_encode(&text, TASK_TEXT).to_string()
}

/// The security segment with the policy as it was sent (its signature covers those bytes); a
/// policy in standard base64 with a `/` is quoted, so the slash does not split the path.
fn security_segment(security: &SecurityParams) -> String {
    let policy = utf8_percent_encode(&security.policy, TASK_TEXT).to_string();
    let policy = if policy.contains('/') { format!("%22{policy}%22") } else { policy };
    let signature = utf8_percent_encode(&security.signature, TASK_TEXT);
    format!("security=p:{policy},s:{signature}")
}

fn source_text(source: &SourceSpec) -> Result<String> {
    Ok(match source {
        SourceSpec::Handle { handle } => handle.clone(),
        SourceSpec::Alias { alias, path } => format!("src://{alias}/{}", utf8_percent_encode(path, SOURCE_PATH)),
        SourceSpec::Url { url } => utf8_percent_encode(url, SOURCE_URL).to_string(),
        SourceSpec::List { .. } => return Err(Error::bad("/responsive describes one image: not a list")),
    })
}

/// The `<picture>` snippet, every attribute value escaped.
fn html(p: &Picture) -> String {
    let mut out = String::from("<picture>\n");
    for s in &p.sources {
        let (mime, srcset, sizes) = (escape(s.mime), escape(&s.srcset), escape(&s.sizes));
        out += &format!("  <source type=\"{mime}\" srcset=\"{srcset}\" sizes=\"{sizes}\">\n");
    }
    let i = &p.img;
    let (src, srcset, sizes, alt) = (escape(&i.src), escape(&i.srcset), escape(&i.sizes), escape(&i.alt));
    out += &format!(
        "  <img src=\"{src}\" srcset=\"{srcset}\" sizes=\"{sizes}\" width=\"{}\" height=\"{}\" alt=\"{alt}\" \
         loading=\"{}\" decoding=\"{}\">\n",
        i.width, i.height, i.loading, i.decoding
    );
    out + "</picture>"
}

/// Text for a double-quoted HTML attribute value (or element content).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(query: &str) -> Result<ResponsiveOptions> {
        ResponsiveOptions::parse(Some(query))
    }

    fn option_of(e: Error) -> String {
        e.option().unwrap_or_default().to_string()
    }

    #[test]
    fn options_follow_filestack_adaptive() {
        assert_eq!(options("").unwrap(), ResponsiveOptions::default());
        let o =
            options("sizes=(min-width:+800px)+50vw,%20100vw&alt=a+b&formats=webp,jpg&resolutions=600w,300").unwrap();
        assert_eq!(o.sizes, "(min-width: 800px) 50vw, 100vw");
        assert_eq!(o.alt, "a b");
        assert_eq!((o.sources, o.img), (vec![PictureFormat::Webp], PictureFormat::Jpg));
        assert_eq!(o.resolutions, Some(vec![300, 600]));
        let o = options("formats=[avif,original]&output=html&policy=ab+c/=&signature=00").unwrap();
        assert_eq!(
            (o.sources, o.img, o.rendering),
            (vec![PictureFormat::Avif], PictureFormat::Original, Some(Rendering::Html))
        );
        assert_eq!(o.security.unwrap().policy, "ab+c/=", "a policy keeps its `+`");
    }

    #[test]
    fn bad_options_name_themselves() {
        let cases = [
            ("width=300", "width"),
            ("formats=gif", "formats"),
            ("formats=jpg,png", "formats"),
            ("formats=webp,webp", "formats"),
            ("formats=", "formats"),
            ("resolutions=2x", "resolutions"),
            ("resolutions=0", "resolutions"),
            ("resolutions=20000w", "resolutions"),
            ("sizes=", "sizes"),
            ("alt=%01", "alt"),
            ("output=xml", "output"),
            ("sizes=1&sizes=2", "sizes"),
            ("policy=abc", "signature"),
        ];
        for (query, option) in cases {
            let e = options(query).expect_err(query);
            assert!(matches!(e, Error::BadRequest { .. }), "{query}");
            assert_eq!((e.task(), option_of(e.clone()).as_str()), (Some(TASK), option), "{query}: {e}");
        }
    }

    #[test]
    fn srcsets_stop_at_the_image_width() {
        let ladder = [160, 240, 320];
        assert_eq!(srcset_widths(&ladder, 200), [160, 200], "between two steps: the width itself");
        assert_eq!(srcset_widths(&ladder, 240), [160, 240]);
        assert_eq!(srcset_widths(&ladder, 5000), [160, 240, 320], "never past the ladder");
        assert_eq!(srcset_widths(&ladder, 100), [100], "narrower than every step");
    }

    #[test]
    fn the_chain_size_is_the_pipeline_s() {
        let job =
            |tasks: &str| caller_job(&Plan::build(&url::parse(&format!("/{tasks}/HANDLE"), None).unwrap()).unwrap());
        let dims = |tasks: &str, dims| chain_dims(&job(tasks).unwrap().image().unwrap().ops, dims).unwrap();
        assert_eq!(dims("resize=fit:crop,height:400", (4096, 2304)), (711, 400));
        assert_eq!(dims("resize=w:300,h:300,fit:crop", (4096, 2304)), (300, 300));
        assert_eq!(dims("crop=dim:[10,10,100,5000]/rotate=deg:90", (400, 300)), (290, 100));
        assert_eq!(dims("border=width:5", (100, 50)), (110, 60));
        assert_eq!(dims("blur/flip", (100, 50)), (100, 50));
        let e = chain_dims(&job("crop=dim:[500,0,10,10]").unwrap().image().unwrap().ops, (100, 100)).unwrap_err();
        assert_eq!(e.option(), Some("dim"));
        for refused in ["store", "zip", "imagesize"] {
            assert_eq!(job(refused).unwrap_err().task(), Some(refused));
        }
    }

    /// A policy (standard base64, with a `/` in it) and a signature of the right shape.
    fn slashed_policy() -> SecurityParams {
        use base64::Engine;
        let policy = (0..64)
            .map(|n| {
                base64::engine::general_purpose::STANDARD.encode(format!(r#"{{"expiry":1,"n":"{}?"}}"#, "x".repeat(n)))
            })
            .find(|p| p.contains('/'))
            .unwrap();
        SecurityParams { policy, signature: "ab".repeat(32) }
    }

    #[test]
    fn written_urls_parse_back_to_the_same_request() {
        let sources = ["/HANDLE", "/https://example.com/a%20b.jpg?x=1,2", "/src://photos/dir/a b,[1].jpg"];
        let chains = [
            "resize=w:300,fit:crop,align:[top,left]/blur",
            "cache=false/output=f:png,q:80",
            "cache=expiry:60/content=filename:%22my%20file,1.jpg%22",
            "watermark=file:WMARK,size:20,position:[bottom,right]",
        ];
        for source in sources {
            for chain in chains {
                let path = format!("/KEY/{chain}{source}");
                let mut url = url::parse(&path, None).unwrap_or_else(|e| panic!("{path}: {e}"));
                url.security = Some(slashed_policy());
                let plan = Plan::build(&url).unwrap();
                let form = UrlForm::new("http://h", &url, url.security.as_ref()).unwrap();
                let written = form.url(&plan);
                let again = url::parse(written.strip_prefix("http://h").unwrap(), None)
                    .unwrap_or_else(|e| panic!("{written}: {e}"));
                assert_eq!((&again.apikey, &again.security, &again.source), (&url.apikey, &url.security, &url.source));
                let replan = Plan::build(&again).unwrap();
                assert_eq!(replan.canonical(), plan.canonical(), "{written}");
                assert_eq!(replan.cache, plan.cache, "{written}");
                assert!(!written.contains([' ', '"', '<', '>']), "{written}");
            }
        }
    }

    #[test]
    fn every_attribute_is_escaped() {
        assert_eq!(escape(r#""><script>&'"#), "&quot;&gt;&lt;script&gt;&amp;&#39;");
        let img = PictureImg {
            src: "u?a=1&b=2".into(),
            srcset: "u 1w".into(),
            sizes: "100vw".into(),
            width: 2,
            height: 1,
            alt: "\"><script>alert(1)</script>".into(),
            loading: "lazy",
            decoding: "async",
            mime: "image/jpeg",
        };
        let source = PictureSource { mime: "image/avif", srcset: "v 1w".into(), sizes: "<x>".into() };
        let picture =
            Picture { width: 2, height: 1, sizes: "100vw".into(), sources: vec![source], img, html: String::new() };
        let html = html(&picture);
        assert!(!html.contains("<script>") && !html.contains("<x>"), "{html}");
        assert!(html.contains(r#"alt="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;""#), "{html}");
        assert!(html.contains(r#"src="u?a=1&amp;b=2""#), "{html}");
        assert!(html.starts_with("<picture>\n  <source type=\"image/avif\"") && html.ends_with("</picture>"));
    }
}
