//! The typed plan of an image: each validated task becomes one typed step ([`Op`], with its
//! defaults) or an output setting, in order; together they make the [`ImageJob`] the pipeline
//! runs. Task names are resolved here, in the plan, and nowhere else: each task has one small
//! compile function, found by its name in [`COMPILERS`]; options the schema accepts but the
//! pipeline cannot honour are refused first (501 naming the option), from [`UNHONOURED`].

use super::{Param, Plan, Rgba, Task};
use crate::error::{Error, Result};
use crate::format::Format;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    Clip,
    Crop,
    Scale,
    Max,
}

/// Where the kept part sits when cropping: fractions 0 (top/left), 0.5, 1 (bottom/right).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Align {
    pub x: f64,
    pub y: f64,
}

impl Align {
    pub const CENTER: Align = Align { x: 0.5, y: 0.5 };
}

/// One step of a job, typed: what `job` compiles a task into and what [`apply`] runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Resize {
        width: Option<u32>,
        height: Option<u32>,
        fit: Fit,
        align: Align,
    },
    Crop {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
    },
    Rotate {
        degrees: u32,
        background: Rgba,
    },
    Flip,
    Flop,
    Monochrome,
    Negative,
    Blur {
        sigma: f32,
    },
    Sharpen {
        sigma: f32,
    },
    Sepia {
        tone: u8,
    },
    BlackWhite {
        threshold: u8,
    },
    Pixelate {
        block: u32,
    },
    Modulate {
        brightness: f32,
        saturation: f32,
        hue: f32,
    },
    Circle {
        background: Rgba,
    },
    RoundedCorners {
        radius: Option<u32>,
        blur: f32,
        background: Rgba,
    },
    /// Blur (or pixelate, when `pixelate`) rectangles or the ellipses inscribed in them;
    /// pixelated regions are then blurred by `soften` (0: not at all).
    Partial {
        rects: Vec<[u32; 4]>,
        amount: f32,
        oval: bool,
        pixelate: bool,
        soften: f32,
    },
    /// Overlay another image (a handle or `src://alias/path`, resolved by the service layer):
    /// `size` percent of its own size, placed by `align`.
    Watermark {
        file: String,
        size: f32,
        align: Align,
    },
    Border {
        width: u32,
        color: Rgba,
        background: Rgba,
    },
    /// Fade to `background` towards the edges; `amount` 0…100 is the opacity at the corners.
    Vignette {
        amount: u8,
        gaussian: bool,
        background: Rgba,
    },
    /// An instant-photo card of `color`, turned clockwise by `degrees` over `background`.
    Polaroid {
        color: Rgba,
        degrees: u32,
        background: Rgba,
    },
    /// Ragged sides: `spread` is `[fine jitter, coarse depth]` in pixels.
    TornEdges {
        spread: [u32; 2],
        background: Rgba,
    },
    /// A drop shadow: `blur` sigma, `opacity` percent, offset `vector` `[x,y]`.
    Shadow {
        blur: f32,
        opacity: u8,
        vector: [i32; 2],
        color: Rgba,
        background: Rgba,
    },
    /// Each pixel the mean colour of the commonest brightness level within `radius`.
    OilPaint {
        radius: u32,
    },
    /// Automatic levels and white balance, with a preset's extra.
    Enhance {
        preset: Enhance,
    },
    /// Denoise by `noise` (0 none … 3 high), then 2× Lanczos3 and an unsharp mask when `enlarge`.
    Upscale {
        enlarge: bool,
        noise: u8,
        artwork: bool,
    },
    /// Content-aware crop to `width`×`height` (a missing side: the image's); a target larger
    /// than the image is padded with `fill`.
    SmartCrop {
        width: Option<u32>,
        height: Option<u32>,
        fill: Rgba,
    },
}

/// The `enhance` presets Refract implements (see `pipeline::steps::enhance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enhance {
    Auto,
    Vivid,
    Outdoor,
    FixDark,
    FixTint,
}

/// What to write at the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputSpec {
    /// `None` keeps the input's format (or PNG for formats we do not write).
    pub format: Option<Format>,
    /// The format is chosen from the request's `Accept` (and the response varies on it).
    pub negotiate: bool,
    /// 1…100, `None` for the encoders' default, or [`AUTO_QUALITY`] for `quality=auto` (the
    /// lowest quality whose perceptual distance stays under the configured target).
    pub quality: Option<u8>,
    pub progressive: bool,
    pub compress: bool,
    pub background: Option<Rgba>,
}

/// `quality=auto` in [`OutputSpec::quality`]: a value no URL can give (they say 1…100), and one
/// that an encoder reading it as a number would clamp to 100, never to a poor image. (A value
/// rather than a type of its own: `OutputSpec` is built field by field outside the crate.)
pub const AUTO_QUALITY: u8 = u8::MAX;

impl OutputSpec {
    /// `quality=auto`: the pipeline searches the quality.
    pub fn auto_quality(&self) -> bool {
        self.quality == Some(AUTO_QUALITY)
    }
}

/// Answer something other than an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Image,
    /// `imagesize`: JSON width/height of the source.
    Size,
    /// `ascii`: the transformed image as HTML text art.
    Ascii(Ascii),
}

/// How `ascii` draws: `size` characters a line, in `foreground` on `background` or, when
/// `colored`, each in its pixel's colour; `reverse` turns the character ramp round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ascii {
    pub foreground: Rgba,
    pub background: Rgba,
    pub colored: bool,
    pub size: u32,
    pub reverse: bool,
}

/// A compiled plan: `ops` run in order on the decoded source, then `output` encodes the result.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageJob {
    pub ops: Vec<Op>,
    pub output: OutputSpec,
    pub answer: Answer,
    /// `audio_cover`: the source is audio, and its embedded cover picture is the image.
    pub from_cover: bool,
}

impl ImageJob {
    pub fn compile(plan: &Plan) -> Result<ImageJob> {
        if let Some(task) = plan.unimplemented() {
            return Err(Error::not_implemented(task.name(), None));
        }
        let mut job = ImageJob::blank();
        for task in plan.processing() {
            job.add(task)?;
        }
        Ok(job)
    }

    /// No steps, the input's format, an image answer: what a plan of control tasks compiles to.
    fn blank() -> ImageJob {
        ImageJob { ops: Vec::new(), output: OutputSpec::default(), answer: Answer::Image, from_cover: false }
    }

    /// Stored files the job reads besides its source (watermarks).
    pub fn overlays(&self) -> Vec<&str> {
        self.ops
            .iter()
            .filter_map(|op| match op {
                Op::Watermark { file, .. } => Some(file.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Output formats that depend on `Accept`.
    pub fn negotiates(&self) -> bool {
        self.output.negotiate && self.output.format.is_none()
    }

    /// Refuse what the task asks that the pipeline cannot do, then append its step or apply its
    /// setting. Tasks are compiled in plan order, so later output settings override earlier ones.
    fn add(&mut self, task: &Task) -> Result<()> {
        refuse_unhonoured(task)?;
        match COMPILERS.iter().find(|(name, _)| *name == task.name()) {
            Some((_, Compile::Step(step))) => self.ops.extend(step(task)?),
            Some((_, Compile::Setting(set))) => set(self, task)?,
            None => return Err(Error::not_implemented(task.name(), None)),
        }
        Ok(())
    }
}

/// How a task compiles: into a step appended to the job (`None` when nothing is left to do), or
/// into the job's output settings and answer.
enum Compile {
    Step(fn(&Task) -> Result<Option<Op>>),
    Setting(fn(&mut ImageJob, &Task) -> Result<()>),
}

use Compile::{Setting, Step};

/// Every task the pipeline runs, by schema name. A task missing here answers 501.
static COMPILERS: &[(&str, Compile)] = &[
    ("audio_cover", Setting(from_cover)),
    ("resize", Step(compile_resize)),
    ("crop", Step(compile_crop)),
    ("rotate", Step(compile_rotate)),
    ("flip", Step(|_| Ok(Some(Op::Flip)))),
    ("flop", Step(|_| Ok(Some(Op::Flop)))),
    ("monochrome", Step(|_| Ok(Some(Op::Monochrome)))),
    ("negative", Step(|_| Ok(Some(Op::Negative)))),
    ("blur", Step(|t| Ok(Some(Op::Blur { sigma: num(t, "amount") as f32 })))),
    ("sharpen", Step(|t| Ok(Some(Op::Sharpen { sigma: num(t, "amount") as f32 })))),
    ("sepia", Step(|t| Ok(Some(Op::Sepia { tone: num(t, "tone") as u8 })))),
    ("blackwhite", Step(|t| Ok(Some(Op::BlackWhite { threshold: num(t, "threshold") as u8 })))),
    ("pixelate", Step(|t| Ok(Some(Op::Pixelate { block: num(t, "amount").max(1.0) as u32 })))),
    ("modulate", Step(compile_modulate)),
    ("circle", Step(|t| Ok(Some(Op::Circle { background: color(t, "background", Rgba::TRANSPARENT) })))),
    ("rounded_corners", Step(compile_rounded_corners)),
    ("partial_blur", Step(compile_partial)),
    ("partial_pixelate", Step(compile_partial)),
    ("watermark", Step(compile_watermark)),
    ("border", Step(compile_border)),
    ("vignette", Step(compile_vignette)),
    ("polaroid", Step(compile_polaroid)),
    ("torn_edges", Step(compile_torn_edges)),
    ("shadow", Step(compile_shadow)),
    ("oil_paint", Step(|t| Ok(Some(Op::OilPaint { radius: num(t, "amount") as u32 })))),
    ("enhance", Step(compile_enhance)),
    ("upscale", Step(compile_upscale)),
    ("smart_crop", Step(compile_smart_crop)),
    ("output", Setting(compile_output)),
    ("quality", Setting(|job, t| set(&mut job.output.quality, quality(t.get("value"))))),
    ("pjpg", Setting(compile_pjpg)),
    ("compress", Setting(|job, _| set(&mut job.output.compress, true))),
    ("auto_image", Setting(|job, _| set(&mut job.output.negotiate, true))),
    ("imagesize", Setting(|job, _| set(&mut job.answer, Answer::Size))),
    ("ascii", Setting(compile_ascii)),
    // Metadata is never copied to outputs, so stripping has nothing to do.
    ("no_metadata", Setting(|_, _| Ok(()))),
];

/// Whether an option's value asks for something the pipeline does not do.
type Refused = fn(&Param) -> bool;

/// Option values the schema accepts (some Filestack SDK or document sends each) that ask for
/// something the pipeline does not do. Ignoring them would answer 200 with another image than the
/// one asked for; a 501 naming the option says what is missing. Values that ask for what the
/// pipeline does anyway (`strip:true`, `docinfo:false`, `colorspace:srgb`…) stay accepted.
static UNHONOURED: &[(&str, &str, Refused)] = &[
    // there is no face detection: `faces` would silently mean the centre
    ("resize", "align", |p| p.as_str() == Some("faces")),
    ("watermark", "position", |p| p.as_str() == Some("faces")),
    // metadata is never copied to outputs
    ("compress", "metadata", is_true),
    ("pjpg", "metadata", is_true),
    ("output", "strip", |p| *p == Param::Bool(false)),
    // the input's quality is not read: the default quality would be used
    ("output", "quality", |p| p.as_str() == Some("input")),
    // every output is sRGB, whatever the input's colour space was
    ("output", "colorspace", |p| p.as_str() == Some("input")),
    // document conversion: pages, raster density, page layout, sanitising, document info
    ("output", "page", |_| true),
    ("output", "density", |_| true),
    ("output", "pageformat", |_| true),
    ("output", "pageorientation", |_| true),
    ("output", "secure", is_true),
    ("output", "docinfo", is_true),
    // face retouching, denoising and night-scene presets need models or detectors
    ("enhance", "preset", |p| matches!(p.as_str(), Some("beautify" | "beautify_plus" | "fix_noise" | "fireworks"))),
    // no face or object detection; the crop box is not answered as JSON
    ("smart_crop", "mode", |p| p.as_str() != Some("auto")),
    ("smart_crop", "object", |_| true),
    ("smart_crop", "coords", is_true),
];

/// A setting task's whole effect: one field of the job.
fn set<T>(field: &mut T, value: T) -> Result<()> {
    *field = value;
    Ok(())
}

/// `audio_cover` reads the source: it must come before any step.
fn from_cover(job: &mut ImageJob, _: &Task) -> Result<()> {
    if !job.ops.is_empty() {
        return Err(Error::bad("audio_cover must come before the image tasks"));
    }
    job.from_cover = true;
    Ok(())
}

fn is_true(p: &Param) -> bool {
    *p == Param::Bool(true)
}

fn refuse_unhonoured(task: &Task) -> Result<()> {
    for &(name, option, refused) in UNHONOURED {
        if name == task.name() && task.get(option).is_some_and(refused) {
            return Err(Error::not_implemented(name, Some(option)));
        }
    }
    Ok(())
}

/// A numeric option the schema gives a default (so the plan always has it).
fn num(task: &Task, key: &str) -> f64 {
    opt_num(task, key).unwrap_or_default()
}

/// A numeric option without a default.
fn opt_num(task: &Task, key: &str) -> Option<f64> {
    task.get(key).and_then(Param::as_f64)
}

fn color(task: &Task, key: &str, default: Rgba) -> Rgba {
    match task.get(key) {
        Some(Param::Color(c, _)) => *c,
        _ => default,
    }
}

fn compile_resize(task: &Task) -> Result<Option<Op>> {
    let fit = match task.get("fit").and_then(Param::as_str) {
        Some("crop") => Fit::Crop,
        Some("scale") => Fit::Scale,
        Some("max") => Fit::Max,
        _ => Fit::Clip,
    };
    if task.get("width").and_then(Param::as_str) == Some("auto") || task.get("dpr").and_then(Param::as_str).is_some() {
        // the origin resolves `auto` from the client hints before compiling; a plan that still
        // has it was not given any (`debug`, the JSON processing API)
        return Err(Error::bad_option("resize", "width", "`auto` needs a request with client hints"));
    }
    let dpr = task.get("dpr").and_then(Param::as_f64).unwrap_or(1.0);
    Ok(Some(Op::Resize {
        width: opt_num(task, "width").map(|v| dimension("width", v * dpr)).transpose()?,
        height: opt_num(task, "height").map(|v| dimension("height", v * dpr)).transpose()?,
        fit,
        align: align(task.get("align")),
    }))
}

/// Sizes are whole pixels: `w:10.6` is 11, and below 1 there is nothing to make.
fn dimension(option: &str, v: f64) -> Result<u32> {
    let px = v.round();
    if px < 1.0 {
        return Err(Error::bad_option("resize", option, format!("{option} must be at least 1 pixel")));
    }
    Ok(px as u32)
}

/// `top`… or `[vertical,horizontal]` as fractions of the room left over.
fn align(p: Option<&Param>) -> Align {
    let frac = |w: &str| match w {
        "top" | "left" => 0.0,
        "bottom" | "right" => 1.0,
        _ => 0.5,
    };
    match p {
        Some(Param::Str(w)) => match w.as_str() {
            "top" | "bottom" => Align { x: 0.5, y: frac(w) },
            "left" | "right" => Align { x: frac(w), y: 0.5 },
            _ => Align::CENTER,
        },
        Some(Param::List(pair)) if pair.len() == 2 => {
            Align { y: frac(pair[0].as_str().unwrap_or("middle")), x: frac(pair[1].as_str().unwrap_or("center")) }
        }
        _ => Align::CENTER,
    }
}

fn compile_crop(task: &Task) -> Result<Option<Op>> {
    let dim: Vec<u32> = match task.get("dim") {
        Some(Param::List(items)) => items.iter().filter_map(Param::as_i64).map(|v| v as u32).collect(),
        _ => Vec::new(),
    };
    match dim[..] {
        [x, y, width, height] => Ok(Some(Op::Crop { x, y, width, height })),
        _ => Err(Error::bad_option("crop", "dim", "`crop` needs dim:[x,y,width,height]")),
    }
}

fn compile_rotate(task: &Task) -> Result<Option<Op>> {
    Ok(match task.get("deg") {
        // EXIF orientation is always applied on decode, so `deg:exif` has nothing left to do.
        None | Some(Param::Str(_)) => None,
        Some(p) => Some(Op::Rotate {
            degrees: p.as_i64().unwrap_or(0) as u32 % 360,
            background: color(task, "background", color(task, "color", Rgba::WHITE)),
        }),
    })
}

/// Filestack's percentages become factors; the hue stays in degrees.
fn compile_modulate(task: &Task) -> Result<Option<Op>> {
    Ok(Some(Op::Modulate {
        brightness: num(task, "brightness") as f32 / 100.0,
        saturation: num(task, "saturation") as f32 / 100.0,
        hue: num(task, "hue") as f32,
    }))
}

fn compile_rounded_corners(task: &Task) -> Result<Option<Op>> {
    Ok(Some(Op::RoundedCorners {
        radius: match task.get("radius") {
            // `radius:max`: as round as the image allows
            Some(Param::Str(_)) => None,
            _ => Some(num(task, "radius") as u32),
        },
        blur: num(task, "blur") as f32,
        background: color(task, "background", Rgba::TRANSPARENT),
    }))
}

/// `partial_blur` takes its strength from `blur`, else `amount`; `partial_pixelate` its block
/// size from `amount`.
fn compile_partial(task: &Task) -> Result<Option<Op>> {
    let pixelate = task.name() == "partial_pixelate";
    let rects = match task.get("objects") {
        Some(Param::List(items)) => items.iter().filter_map(rect).collect(),
        _ => Vec::new(),
    };
    let amount = if pixelate { num(task, "amount") } else { opt_num(task, "blur").unwrap_or(num(task, "amount")) };
    Ok(Some(Op::Partial {
        rects,
        amount: amount as f32,
        oval: task.get("type").and_then(Param::as_str) == Some("oval"),
        pixelate,
        soften: if pixelate { num(task, "blur") as f32 } else { 0.0 },
    }))
}

fn rect(p: &Param) -> Option<[u32; 4]> {
    match p {
        Param::List(v) if v.len() == 4 => {
            let n: Vec<u32> = v.iter().filter_map(Param::as_i64).map(|x| x as u32).collect();
            Some([n[0], n[1], n[2], n[3]])
        }
        _ => None,
    }
}

/// The overlay is a stored file's handle or `src://alias/path` (an external URL is not fetched).
fn compile_watermark(task: &Task) -> Result<Option<Op>> {
    let file = task.get("file").and_then(Param::as_str).unwrap_or_default();
    let Ok(file) = crate::url::SourceSpec::file_ref(file) else {
        let why = "the watermark file must be a stored file's handle or src://alias/path";
        return Err(Error::bad_option("watermark", "file", why));
    };
    Ok(Some(Op::Watermark {
        file: file.identity(),
        size: num(task, "size") as f32,
        align: align(task.get("position")),
    }))
}

fn compile_border(task: &Task) -> Result<Option<Op>> {
    Ok(Some(Op::Border {
        width: num(task, "width") as u32,
        color: color(task, "color", Rgba::BLACK),
        background: color(task, "background", Rgba::WHITE),
    }))
}

fn compile_vignette(task: &Task) -> Result<Option<Op>> {
    Ok(Some(Op::Vignette {
        amount: num(task, "amount") as u8,
        gaussian: task.get("blurmode").and_then(Param::as_str) != Some("linear"),
        background: color(task, "background", Rgba::WHITE),
    }))
}

fn compile_polaroid(task: &Task) -> Result<Option<Op>> {
    Ok(Some(Op::Polaroid {
        color: color(task, "color", Rgba::WHITE),
        degrees: num(task, "rotate") as u32 % 360,
        background: color(task, "background", Rgba::WHITE),
    }))
}

fn compile_torn_edges(task: &Task) -> Result<Option<Op>> {
    let [fine, coarse] = pair(task, "spread", [1, 10]);
    Ok(Some(Op::TornEdges { spread: [fine as u32, coarse as u32], background: color(task, "background", Rgba::WHITE) }))
}

fn compile_shadow(task: &Task) -> Result<Option<Op>> {
    let [x, y] = pair(task, "vector", [4, 4]);
    Ok(Some(Op::Shadow {
        blur: num(task, "blur") as f32,
        opacity: num(task, "opacity") as u8,
        vector: [x as i32, y as i32],
        color: color(task, "color", Rgba::BLACK),
        background: color(task, "background", Rgba::WHITE),
    }))
}

fn compile_enhance(task: &Task) -> Result<Option<Op>> {
    let preset = match task.get("preset").and_then(Param::as_str) {
        Some("vivid") => Enhance::Vivid,
        Some("outdoor") => Enhance::Outdoor,
        Some("fix_dark") => Enhance::FixDark,
        Some("fix_tint") => Enhance::FixTint,
        _ => Enhance::Auto,
    };
    Ok(Some(Op::Enhance { preset }))
}

fn compile_upscale(task: &Task) -> Result<Option<Op>> {
    let noise = match task.get("noise").and_then(Param::as_str) {
        Some("low") => 1,
        Some("medium") => 2,
        Some("high") => 3,
        _ => 0,
    };
    Ok(Some(Op::Upscale {
        enlarge: task.get("upscale") != Some(&Param::Bool(false)),
        noise,
        artwork: task.get("style").and_then(Param::as_str) == Some("artwork"),
    }))
}

fn compile_smart_crop(task: &Task) -> Result<Option<Op>> {
    let side = |key| opt_num(task, key).filter(|v| *v >= 1.0).map(|v| v.round() as u32);
    let (width, height) = (side("width"), side("height"));
    if width.is_none() && height.is_none() {
        return Err(Error::bad_option("smart_crop", "width", "smart_crop needs a width or a height of at least 1"));
    }
    Ok(Some(Op::SmartCrop { width, height, fill: color(task, "fill_color", Rgba::WHITE) }))
}

fn compile_ascii(job: &mut ImageJob, task: &Task) -> Result<()> {
    let flag = |key| task.get(key) == Some(&Param::Bool(true));
    job.answer = Answer::Ascii(Ascii {
        foreground: color(task, "foreground", Rgba::BLACK),
        background: color(task, "background", Rgba::WHITE),
        colored: flag("colored"),
        size: num(task, "size") as u32,
        reverse: flag("reverse"),
    });
    Ok(())
}

/// A `[a,b]` option of integers (the schema checked the range).
fn pair(task: &Task, key: &str, default: [i64; 2]) -> [i64; 2] {
    match task.get(key) {
        Some(Param::List(v)) => match v[..] {
            [ref a, ref b] => [a.as_i64().unwrap_or(default[0]), b.as_i64().unwrap_or(default[1])],
            _ => default,
        },
        _ => default,
    }
}

fn compile_output(job: &mut ImageJob, task: &Task) -> Result<()> {
    let out = &mut job.output;
    if let Some(word) = task.get("format").and_then(Param::as_str) {
        match Format::from_output_word(word)? {
            Some(f) => {
                out.format = Some(f);
                out.progressive = word == "pjpg";
                out.negotiate = false;
            }
            // `auto`: from the request's Accept
            None => {
                out.format = None;
                out.negotiate = true;
            }
        }
    }
    if let Some(q) = quality(task.get("quality")) {
        out.quality = Some(q);
    }
    if let Some(Param::Bool(c)) = task.get("compress") {
        out.compress = *c;
    }
    if let Some(Param::Color(c, _)) = task.get("background") {
        out.background = Some(*c);
    }
    if task.get("colorspace").and_then(Param::as_str) == Some("cmyk") {
        return Err(Error::bad_option("output", "colorspace", "CMYK output is not supported; use rgb"));
    }
    Ok(())
}

/// A quality option: 1…100, or `auto` ([`AUTO_QUALITY`]); `input` is refused before this.
fn quality(p: Option<&Param>) -> Option<u8> {
    match p? {
        Param::Str(w) if w == "auto" => Some(AUTO_QUALITY),
        p => p.as_i64().map(|q| q.clamp(1, 100) as u8),
    }
}

fn compile_pjpg(job: &mut ImageJob, task: &Task) -> Result<()> {
    job.output.format = Some(Format::Jpeg);
    job.output.progressive = true;
    if let Some(q) = opt_num(task, "quality") {
        job.output.quality = Some(q.clamp(1.0, 100.0) as u8);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::schema::{self, Support};

    /// A task as validation leaves it: with the schema's defaults filled in.
    fn task(name: &str, params: Vec<(&'static str, Param)>) -> Task {
        let spec = schema::lookup(name).expect("a schema task");
        let defaults = crate::plan::defaults(spec, &params).expect("defaults parse");
        Task { spec, params, defaults }
    }

    fn compile(tasks: &[Task]) -> Result<ImageJob> {
        let mut job = ImageJob::blank();
        for t in tasks {
            job.add(t)?;
        }
        Ok(job)
    }

    fn word(w: &str) -> Param {
        Param::Str(w.to_string())
    }

    #[test]
    fn every_image_task_of_the_schema_has_a_compiler() {
        for spec in schema::TASKS.iter().filter(|t| t.support == Support::Image) {
            assert!(COMPILERS.iter().any(|(name, _)| *name == spec.name), "no compiler for `{}`", spec.name);
        }
        for (name, _) in COMPILERS {
            assert_eq!(schema::lookup(name).map(|t| t.support), Some(Support::Image), "`{name}`");
        }
    }

    #[test]
    fn every_refused_option_is_one_the_schema_accepts() {
        for (name, option, _) in UNHONOURED {
            let spec = schema::lookup(name).expect("task");
            assert_eq!(spec.option(option).map(|o| o.name), Some(*option), "{name}.{option}");
        }
    }

    #[test]
    fn options_the_pipeline_cannot_honour_answer_501_naming_them() {
        let cases = [
            task("resize", vec![("align", word("faces")), ("width", Param::Int(10))]),
            task("watermark", vec![("file", word("abc")), ("position", word("faces"))]),
            task("compress", vec![("metadata", Param::Bool(true))]),
            task("pjpg", vec![("metadata", Param::Bool(true))]),
            task("output", vec![("strip", Param::Bool(false))]),
            task("output", vec![("quality", word("input"))]),
            task("output", vec![("colorspace", word("input"))]),
            task("output", vec![("page", Param::Int(1))]),
            task("output", vec![("density", Param::Int(72))]),
            task("output", vec![("pageformat", word("a4"))]),
            task("output", vec![("pageorientation", word("portrait"))]),
            task("output", vec![("secure", Param::Bool(true))]),
            task("output", vec![("docinfo", Param::Bool(true))]),
            task("enhance", vec![("preset", word("beautify"))]),
            task("enhance", vec![("preset", word("fireworks"))]),
            task("smart_crop", vec![("width", Param::Int(10)), ("mode", word("face"))]),
            task("smart_crop", vec![("width", Param::Int(10)), ("coords", Param::Bool(true))]),
        ];
        for t in cases {
            let e = compile(std::slice::from_ref(&t)).unwrap_err();
            let option = t.params.iter().map(|(k, _)| *k).find(|k| !["width", "file", "objects"].contains(k));
            assert!(matches!(e, Error::NotImplemented { .. }), "{t:?}");
            assert_eq!((e.task(), e.option()), (Some(t.name()), option), "{t:?}");
        }
    }

    #[test]
    fn values_the_pipeline_does_anyway_stay_accepted() {
        let out = task(
            "output",
            vec![
                ("strip", Param::Bool(true)),
                ("secure", Param::Bool(false)),
                ("docinfo", Param::Bool(false)),
                ("colorspace", word("srgb")),
                ("quality", Param::Int(70)),
                ("format", word("png")),
            ],
        );
        let job = compile(&[out, task("compress", vec![("metadata", Param::Bool(false))])]).unwrap();
        assert_eq!((job.output.format, job.output.quality, job.output.compress), (Some(Format::Png), Some(70), true));
        let objects = Param::List(vec![Param::List([1, 2, 3, 4].map(Param::Int).to_vec())]);
        let p = task("partial_pixelate", vec![("blur", Param::Int(0)), ("objects", objects)]);
        let job = compile(&[p]).unwrap();
        assert_eq!(
            job.ops,
            [Op::Partial { rects: vec![[1, 2, 3, 4]], amount: 10.0, oval: false, pixelate: true, soften: 0.0 }]
        );
    }

    #[test]
    fn tasks_compile_to_steps_in_plan_order() {
        let job = compile(&[
            task("resize", vec![("align", Param::List(vec![word("top"), word("left")])), ("fit", word("crop"))]),
            task("rotate", vec![("deg", word("exif"))]),
            task("flop", vec![]),
            task("rotate", vec![("deg", Param::Int(45)), ("color", Param::Color(Rgba::BLACK, "black".into()))]),
            task("quality", vec![("value", Param::Int(33))]),
        ])
        .unwrap();
        let top_left = Align { x: 0.0, y: 0.0 };
        assert_eq!(
            job.ops,
            [
                Op::Resize { width: None, height: None, fit: Fit::Crop, align: top_left },
                Op::Flop,
                Op::Rotate { degrees: 45, background: Rgba::BLACK },
            ]
        );
        assert_eq!(job.output.quality, Some(33));
    }

    #[test]
    fn quality_auto_is_the_reserved_value_and_numbers_stay_numbers() {
        let job = compile(&[task("quality", vec![("value", word("auto"))])]).unwrap();
        assert!(job.output.auto_quality());
        let job = compile(&[task("output", vec![("quality", word("auto")), ("format", word("webp"))])]).unwrap();
        assert_eq!((job.output.quality, job.output.format), (Some(AUTO_QUALITY), Some(Format::Webp)));
        // the later task wins, as for any output setting
        let job = compile(&[
            task("quality", vec![("value", word("auto"))]),
            task("output", vec![("quality", Param::Int(100))]),
        ])
        .unwrap();
        assert_eq!(job.output.quality, Some(100));
        assert!(!job.output.auto_quality());
    }

    #[test]
    fn sizes_round_to_whole_pixels_and_a_watermark_needs_a_handle() {
        let job = compile(&[task("resize", vec![("width", Param::Num(10.6))])]).unwrap();
        assert!(matches!(job.ops[0], Op::Resize { width: Some(11), .. }));
        let e = compile(&[task("resize", vec![("width", Param::Num(0.4))])]).unwrap_err();
        assert!(matches!(e, Error::BadRequest { .. }));
        assert_eq!(e.option(), Some("width"));
        let e = compile(&[task("watermark", vec![("file", word("https://example.com/a.png"))])]).unwrap_err();
        assert!(matches!(e, Error::BadRequest { .. }));
        assert_eq!(e.option(), Some("file"));
    }
}
