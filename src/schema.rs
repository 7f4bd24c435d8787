//! The task table, a leaf both the grammar (`url`, which must tell task names from handles) and
//! the plan (which validates options against it) read.
//!
//! Every task and option of the Filestack URL API (filestack-js schema plus what the other
//! official SDKs emit), with aliases, types and ranges. Ranges take the widest of the SDKs'
//! documented bounds, so every SDK's valid URL passes.

/// The type and range of one option's value.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Int(i64, i64),
    Num(f64, f64),
    Bool,
    Enum(&'static [&'static str]),
    /// An integer in range or one of the keywords (`deg:exif`, `radius:max`, `quality:input`).
    IntOr(i64, i64, &'static [&'static str]),
    /// A number in range or one of the keywords (`width:auto`).
    NumOr(f64, f64, &'static [&'static str]),
    Color,
    /// `top`… or `[vertical,horizontal]`.
    Position,
    /// Free text (file names, titles, regexes, presets).
    Str,
    /// `all`, an integer 1…1000, or a list of such integers.
    Faces,
    /// `[x,y,width,height]`.
    Rect,
    /// `[a,b]` of integers in range.
    Pair(i64, i64),
    /// `[[x,y,w,h],…]`.
    Rects,
    /// A list of free-text items (files, workflows, metadata attributes, page ranges).
    List,
    /// `HH[:MM[:SS]]`.
    Time,
}

#[derive(Debug)]
pub struct OptSpec {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind,
    /// The value an honoured option takes when the URL leaves it out, written as in a URL. The
    /// plan fills it in, so `blur` and `blur=amount:2` are one plan with one cache key.
    pub default: Option<&'static str>,
}

impl OptSpec {
    const fn or(self, default: &'static str) -> OptSpec {
        OptSpec { default: Some(default), ..self }
    }
}

/// What Refract does with a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Runs in the image pipeline.
    Image,
    /// Runs in the audio pipeline (`waveform`).
    Audio,
    /// Changes how the request is handled (cache, store, fallback…), not the pixels.
    Control,
    /// Parses and validates, answers 501.
    NotImplemented,
}

#[derive(Debug)]
pub struct TaskSpec {
    pub name: &'static str,
    /// May appear bare (`flip`).
    pub bare: bool,
    pub options: &'static [OptSpec],
    pub support: Support,
}

impl TaskSpec {
    pub fn option(&self, key: &str) -> Option<&'static OptSpec> {
        self.options.iter().find(|o| o.name == key).or_else(|| self.options.iter().find(|o| o.alias == Some(key)))
    }

    pub fn option_names(&self) -> String {
        self.options
            .iter()
            .map(|o| match o.alias {
                Some(a) => format!("{} ({a})", o.name),
                None => o.name.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

const fn o(name: &'static str, alias: &'static str, kind: Kind) -> OptSpec {
    OptSpec { name, alias: if alias.is_empty() { None } else { Some(alias) }, kind, default: None }
}

const fn t(name: &'static str, bare: bool, support: Support, options: &'static [OptSpec]) -> TaskSpec {
    TaskSpec { name, bare, options, support }
}

use Kind::*;
use Support::*;

const FITS: &[&str] = &["clip", "crop", "scale", "max"];
const FACE_TYPES: &[&str] = &["rect", "oval"];
const LOCATIONS: &[&str] = &["s3", "gcs", "azure", "rackspace", "dropbox"];
const ACCESS: &[&str] = &["public", "private"];
const PAGE_FORMATS: &[&str] = &["a2", "a3", "a4", "a5", "b4", "b5", "letter", "legal", "tabloid"];
const ORIENTATIONS: &[&str] = &["portrait", "landscape"];
pub const OUTPUT_FORMATS: &[&str] = &[
    "jpg", "jpeg", "pjpg", "png", "webp", "avif", "gif", "auto", "doc", "docx", "html", "odp", "ods", "odt", "pdf",
    "ppt", "pptx", "svg", "txt", "xls", "xlsx", "heic", "tiff", "bmp",
];
const FACE_SIZE: Kind = Num(0.0, 10000.0);

const STORE_OPTS: &[OptSpec] = &[
    o("filename", "", Str),
    o("location", "", Enum(LOCATIONS)),
    o("path", "", Str),
    o("container", "", Str),
    o("region", "", Str),
    o("access", "", Enum(ACCESS)),
    o("base64decode", "base64", Bool),
    o("workflows", "", List),
];

/// `waveform`: Refract's own task (no peer has it): the audio's envelope as an image or JSON.
const WAVEFORM_OPTS: &[OptSpec] = &[
    o("width", "w", Int(1, 4000)).or("800"),
    o("height", "h", Int(1, 1000)).or("200"),
    o("color", "c", Color).or("000000"),
    o("background", "bg", Color).or("transparent"),
    o("style", "s", Enum(&["bars", "line", "mirror"])).or("bars"),
    o("start", "", Num(0.0, 86400.0)).or("0"),
    o("duration", "", Num(0.001, 86400.0)),
    o("format", "f", Enum(&["png", "svg", "json"])).or("png"),
];

/// `video_convert` (Filestack's JSON protocol, the result stored) and `audio_convert` (Refract's
/// direct form: the URL answers the converted bytes) share these; video options answer 501.
const AV_OPTS: &[OptSpec] = &[
    o("preset", "p", Str),
    o("width", "", Int(1, 10000)),
    o("height", "", Int(1, 10000)),
    o("force", "", Bool),
    o("title", "", Str),
    o("extname", "", Str),
    o("filename", "", Str),
    o("upscale", "", Bool),
    o("aspect_mode", "", Enum(&["letterbox", "pad", "crop", "preserve", "constrain"])),
    // wider than the SDKs' 99999: Refract resamples up to 192 kHz (the plan checks 8000…)
    o("audio_sample_rate", "audio_samplerate", Int(1, 192_000)),
    o("two_pass", "", Bool),
    o("video_bitrate", "", Int(1, 5000)),
    o("fps", "", Int(1, 300)),
    o("keyframe_interval", "", Int(1, 300)),
    o("audio_bitrate", "", Int(1, 999)),
    o("audio_codec", "", Str),
    o("audio_channels", "", Int(1, 12)),
    o("clip_length", "", Time),
    o("clip_offset", "", Time),
    o("watermark_url", "", Str),
    o("watermark_top", "", Int(0, 9999)),
    o("watermark_right", "", Int(0, 9999)),
    o("watermark_bottom", "", Int(0, 9999)),
    o("watermark_left", "", Int(0, 9999)),
    o("watermark_width", "", Int(0, 9999)),
    o("watermark_height", "", Int(0, 9999)),
    o("frame_count", "", Int(1, 10000)),
    o("location", "", Enum(LOCATIONS)),
    o("path", "", Str),
    o("container", "", Str),
    o("access", "", Enum(ACCESS)),
];

const FACE_FX: &[OptSpec] = &[
    o("faces", "", Faces),
    o("minsize", "n", FACE_SIZE),
    o("maxsize", "x", FACE_SIZE),
    o("buffer", "", Int(0, 10000)),
    o("amount", "a", Num(0.0, 100.0)),
    o("blur", "l", Num(0.0, 20.0)),
    o("type", "t", Enum(FACE_TYPES)),
];

/// `partial_blur` takes its strength from `blur`, else `amount`.
const PARTIAL_BLUR: &[OptSpec] = &[
    o("objects", "o", Rects),
    o("amount", "a", Num(0.0, 100.0)).or("4"),
    o("blur", "l", Num(0.0, 20.0)),
    o("type", "t", Enum(FACE_TYPES)).or("rect"),
];
/// `partial_pixelate` takes its block size from `amount`; `blur` softens the blocks.
const PARTIAL_PIXELATE: &[OptSpec] = &[
    o("objects", "o", Rects),
    o("amount", "a", Num(0.0, 100.0)).or("10"),
    o("blur", "l", Num(0.0, 20.0)).or("0"),
    o("type", "t", Enum(FACE_TYPES)).or("rect"),
];

const AMOUNT_0_20: &[OptSpec] = &[o("amount", "a", Int(0, 20)).or("2")];
const AMOUNT_2_100: &[OptSpec] = &[o("amount", "a", Int(2, 100)).or("2")];
const BACKGROUND: &[OptSpec] = &[o("background", "b", Color)];
const NONE: &[OptSpec] = &[];

pub static TASKS: &[TaskSpec] = &[
    // geometry
    t(
        "resize",
        false,
        Image,
        &[
            // `auto`: from the client hints (Refract's; resolved before the plan is compiled)
            o("width", "w", NumOr(0.0, 10000.0, &["auto"])),
            o("height", "h", Num(0.0, 10000.0)),
            o("fit", "f", Enum(FITS)),
            o("align", "a", Position),
            // device pixels per CSS pixel (Refract's): `auto` from the hints, snapped to 1/2/3
            o("dpr", "", IntOr(1, 3, &["auto"])),
        ],
    ),
    t("crop", false, Image, &[o("dim", "d", Rect)]),
    t(
        "rotate",
        false,
        Image,
        &[
            o("deg", "d", IntOr(0, 359, &["exif"])),
            o("exif", "e", Bool),
            o("background", "b", Color),
            o("color", "c", Color),
        ],
    ),
    t("flip", true, Image, NONE),
    t("flop", true, Image, NONE),
    t(
        "smart_crop",
        true,
        Image,
        &[
            o("width", "", Int(0, 10000)),
            o("height", "", Int(0, 10000)),
            o("mode", "", Enum(&["face", "auto", "object"])).or("auto"),
            o("object", "", Str),
            o("fill_color", "", Color).or("white"),
            o("coords", "", Bool),
        ],
    ),
    t(
        "upscale",
        true,
        Image,
        &[
            o("upscale", "u", Bool).or("true"),
            o("noise", "n", Enum(&["none", "low", "medium", "high"])).or("none"),
            o("style", "s", Enum(&["artwork", "photo"])).or("photo"),
        ],
    ),
    t(
        "animate",
        false,
        NotImplemented,
        &[
            o("delay", "", Int(0, 10000)),
            o("loop", "", Int(0, 1000)),
            o("width", "", IntOr(1, 10000, &["max"])),
            o("height", "", IntOr(1, 10000, &["max"])),
            o("fit", "", Enum(&["clip", "scale", "crop"])),
            o("background", "", Color),
            o("align", "", Position),
        ],
    ),
    t(
        "collage",
        false,
        NotImplemented,
        &[
            o("files", "f", List),
            o("margin", "m", Int(0, 100)),
            o("width", "w", Int(0, 10000)),
            o("height", "h", Int(0, 10000)),
            o("color", "c", Color),
            o("fit", "i", Enum(&["auto", "crop"])),
            o("autorotate", "a", Bool),
        ],
    ),
    // faces
    t(
        "detect_faces",
        true,
        NotImplemented,
        &[o("minsize", "n", FACE_SIZE), o("maxsize", "x", FACE_SIZE), o("color", "c", Color), o("export", "e", Bool)],
    ),
    t(
        "crop_faces",
        true,
        NotImplemented,
        &[
            o("faces", "", Faces),
            o("width", "", Num(0.0, 10000.0)),
            o("height", "", Num(0.0, 10000.0)),
            o("minsize", "n", FACE_SIZE),
            o("maxsize", "x", FACE_SIZE),
            o("buffer", "", Int(0, 10000)),
            o("mode", "", Enum(&["crop", "thumb", "fill"])),
        ],
    ),
    t("pixelate_faces", true, NotImplemented, FACE_FX),
    t("blur_faces", true, NotImplemented, FACE_FX),
    // borders and effects
    t(
        "rounded_corners",
        true,
        Image,
        &[
            o("radius", "r", IntOr(1, 10000, &["max"])).or("10"),
            o("blur", "l", Num(0.0, 20.0)).or("0.3"),
            o("background", "b", Color).or("00000000"),
        ],
    ),
    t(
        "vignette",
        true,
        Image,
        &[
            o("amount", "a", Int(0, 100)).or("20"),
            o("blurmode", "m", Enum(&["gaussian", "linear"])).or("gaussian"),
            o("background", "b", Color).or("white"),
        ],
    ),
    t(
        "polaroid",
        true,
        Image,
        &[
            o("color", "c", Color).or("snow"),
            o("rotate", "r", Int(0, 359)).or("45"),
            o("background", "b", Color).or("white"),
        ],
    ),
    t(
        "torn_edges",
        true,
        Image,
        &[o("spread", "s", Pair(1, 10000)).or("[1,10]"), o("background", "b", Color).or("white")],
    ),
    t(
        "shadow",
        true,
        Image,
        &[
            // 0…20 in Filestack's documents; filestack-js defaults to 100, so its range is kept
            o("blur", "l", Num(0.0, 100.0)).or("4"),
            o("opacity", "o", Int(0, 100)).or("60"),
            o("vector", "v", Pair(-1000, 1000)).or("[4,4]"),
            o("color", "c", Color).or("black"),
            o("background", "b", Color).or("white"),
        ],
    ),
    t("circle", true, Image, BACKGROUND),
    t(
        "border",
        true,
        Image,
        &[
            o("width", "w", Int(0, 1000)).or("2"),
            o("color", "c", Color).or("black"),
            o("background", "b", Color).or("white"),
        ],
    ),
    t(
        "ascii",
        true,
        Image,
        &[
            o("foreground", "f", Color).or("000000"),
            o("background", "b", Color).or("FFFFFF"),
            o("colored", "c", Bool).or("false"),
            o("size", "s", Int(10, 100)).or("100"),
            o("reverse", "r", Bool).or("false"),
        ],
    ),
    // filters
    t("sharpen", true, Image, AMOUNT_0_20),
    t("blur", true, Image, AMOUNT_0_20),
    t("monochrome", true, Image, NONE),
    t("negative", true, Image, NONE),
    t("redeye", true, NotImplemented, NONE),
    t("blackwhite", true, Image, &[o("threshold", "t", Int(0, 100)).or("50")]),
    t("sepia", true, Image, &[o("tone", "t", Int(0, 100)).or("80")]),
    t("pixelate", true, Image, AMOUNT_2_100),
    // 2…100 in Filestack's documents (PHP says 1…10): the radius of ImageMagick's `-paint`
    t("oil_paint", true, Image, AMOUNT_2_100),
    t(
        "modulate",
        true,
        Image,
        &[
            o("brightness", "b", Int(0, 10000)).or("100"),
            o("saturation", "s", Int(0, 10000)).or("100"),
            o("hue", "h", Int(0, 359)).or("0"),
        ],
    ),
    t("partial_pixelate", false, Image, PARTIAL_PIXELATE),
    t("partial_blur", false, Image, PARTIAL_BLUR),
    t(
        "enhance",
        true,
        Image,
        &[o(
            "preset",
            "",
            Enum(&[
                "auto",
                "vivid",
                "beautify",
                "beautify_plus",
                "fix_dark",
                "fix_noise",
                "fix_tint",
                "outdoor",
                "fireworks",
            ]),
        )
        .or("auto")],
    ),
    // watermark
    t(
        "watermark",
        false,
        Image,
        &[o("file", "f", Str), o("size", "s", Num(0.0, 500.0)).or("100"), o("position", "p", Position)],
    ),
    // output and metadata
    t(
        "output",
        false,
        Image,
        &[
            o("format", "f", Enum(OUTPUT_FORMATS)),
            o("quality", "q", IntOr(1, 100, &["input", "auto"])),
            o("strip", "", Bool),
            o("compress", "", Bool),
            o("background", "b", Color),
            o("colorspace", "", Enum(&["rgb", "cmyk", "input", "srgb"])),
            o("page", "", Int(1, 99999)),
            o("density", "", Int(1, 500)),
            o("secure", "", Bool),
            o("docinfo", "", Bool),
            o("pageformat", "", Enum(PAGE_FORMATS)),
            o("pageorientation", "", Enum(ORIENTATIONS)),
        ],
    ),
    t("quality", false, Image, &[o("value", "v", IntOr(1, 100, &["auto"]))]),
    t("compress", true, Image, &[o("metadata", "m", Bool)]),
    t("pjpg", true, Image, &[o("quality", "", Int(0, 100)), o("metadata", "", Bool)]),
    t("no_metadata", true, Image, NONE),
    t("auto_image", true, Image, NONE),
    t("imagesize", true, Image, NONE),
    t("metadata", true, NotImplemented, &[o("params", "", List)]),
    // control
    t("cache", true, Control, &[o("expiry", "e", IntOr(0, 31536000, &["max"]))]),
    t("debug", true, Control, NONE),
    t("security", false, Control, &[o("policy", "p", Str), o("signature", "s", Str)]),
    t("store", true, Control, STORE_OPTS),
    t("fallback", false, Control, &[o("handle", "file", Str), o("cache", "", Int(0, 31536000))]),
    t("content", false, Control, &[o("filename", "", Str), o("type", "", Enum(&["inline", "attachment"]))]),
    t("zip", true, Control, NONE),
    // recognition, documents, audio/video and other services
    t("tags", true, NotImplemented, NONE),
    t("sfw", true, NotImplemented, NONE),
    t("ocr", true, NotImplemented, NONE),
    t("caption", true, NotImplemented, NONE),
    t("image_sentiment", true, NotImplemented, NONE),
    t("copyright", true, NotImplemented, NONE),
    t("preview", true, NotImplemented, NONE),
    t("doc_detection", true, NotImplemented, &[o("coords", "", Bool), o("preprocess", "", Bool)]),
    t("text_sentiment", false, NotImplemented, &[o("text", "", Str), o("language", "", Str)]),
    t(
        "qr",
        true,
        NotImplemented,
        &[
            o("version", "", Int(1, 40)),
            o("error_correction", "", Enum(&["l", "m", "q", "h"])),
            o("format", "", Enum(&["png", "svg"])),
        ],
    ),
    t(
        "urlscreenshot",
        true,
        NotImplemented,
        &[
            o("agent", "", Enum(&["desktop", "mobile"])),
            o("width", "", Int(1, 10000)),
            o("height", "", Int(1, 10000)),
            o("mode", "", Enum(&["all", "window"])),
            o("delay", "", Int(0, 20000)),
            o("orientation", "", Enum(ORIENTATIONS)),
            o("device", "", Str),
        ],
    ),
    t("video_convert", false, Audio, AV_OPTS),
    t("audio_convert", true, Audio, AV_OPTS),
    t("waveform", true, Audio, WAVEFORM_OPTS),
    // Refract's: the embedded cover picture of an audio source, as the image the chain transforms
    t("audio_cover", true, Image, &[]),
    t("video_playlist", true, NotImplemented, AV_OPTS),
    t("pdfinfo", true, NotImplemented, &[o("colorinfo", "", Bool)]),
    t(
        "pdfconvert",
        false,
        NotImplemented,
        &[
            o("pageorientation", "", Enum(ORIENTATIONS)),
            o("pageformat", "", Enum(PAGE_FORMATS)),
            o("pages", "", List),
            o("metadata", "", Bool),
        ],
    ),
    t(
        "doc_to_images",
        true,
        NotImplemented,
        &[
            o("pages", "", List),
            o("engine", "", Enum(&["imagemagick", "mupdf"])),
            o("format", "", Enum(&["png", "jpg"])),
            o("quality", "", Int(1, 100)),
            o("density", "", Int(1, 500)),
            o("hidden_slides", "", Bool),
        ],
    ),
    t("pdfcreate", true, NotImplemented, &[o("engine", "", Str)]),
    t("slide", true, NotImplemented, &[o("theme", "", Str), o("engine", "", Str)]),
    t("minify_css", true, NotImplemented, &[o("gzip", "", Bool), o("level", "", Int(1, 2))]),
    t(
        "minify_js",
        true,
        NotImplemented,
        &[
            o("gzip", "", Bool),
            o("use_babel_polyfill", "", Bool),
            o("keep_fn_name", "", Bool),
            o("keep_class_name", "", Bool),
            o("mangle", "", Bool),
            o("merge_vars", "", Bool),
            o("remove_console", "", Bool),
            o("remove_undefined", "", Bool),
            o("targets", "", Str),
        ],
    ),
    t("run_workflow", false, NotImplemented, &[o("id", "", Str)]),
    t("workflow_status", false, NotImplemented, &[o("job_id", "", Str)]),
];

/// Spellings some SDKs use for a task (Python's `round_corners`).
fn canonical_task_name(name: &str) -> &str {
    match name {
        "round_corners" => "rounded_corners",
        other => other,
    }
}

pub fn lookup(name: &str) -> Option<&'static TaskSpec> {
    let name = canonical_task_name(name);
    TASKS.iter().find(|t| t.name == name)
}
