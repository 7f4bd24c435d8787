//! Malformed transformation URLs must be refused with a 4xx JSON error — never a 5xx, never a
//! dropped connection, never a hang — and the server must stay healthy afterwards.
//!
//! About 1,200 URLs are generated deterministically (own xorshift PRNG, fixed seed; override with
//! `REFRACT_FUZZ_SEED=<u64>`) by breaking valid URLs built on a real uploaded handle, plus a
//! hand-written list of named nasty cases. Sources that point at private addresses are checked
//! against TCP "traps" listening on loopback: the server must refuse them without connecting.
//! Off-loopback private addresses (169.254.169.254, 10.0.0.1, …) are only sent after the loopback
//! traps proved that the server does not connect to private sources, so a server without an SSRF
//! guard never gets pointed off this machine by this test.
//!
//! Every failure is collected and reported at the end, with the URL exactly as sent.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Number of generated (not hand-written) distinct URLs to produce.
const GENERATED_TARGET: usize = 1200;
const THREADS: usize = 4;
/// A malformed URL must be answered quickly; anything slower is reported.
const SLOW: Duration = Duration::from_secs(5);
const KEYS: &[&str] = &["test", "AhTgLagciQByzXpFGRI0Az"];

/// Every task name a Filestack SDK can emit (filestack-tasks.txt). A 501 is accepted only when the
/// error names one of these (a known task that Refract does not implement) and it appears in the URL.
const KNOWN_TASKS: &[&str] = &[
    "flip",
    "auto_image",
    "no_metadata",
    "compress",
    "flop",
    "enhance",
    "redeye",
    "monochrome",
    "negative",
    "tags",
    "sfw",
    "imagesize",
    "smart_crop",
    "animate",
    "metadata",
    "resize",
    "crop",
    "rotate",
    "detect_faces",
    "crop_faces",
    "pixelate_faces",
    "blur_faces",
    "rounded_corners",
    "round_corners",
    "vignette",
    "polaroid",
    "torn_edges",
    "shadow",
    "circle",
    "border",
    "sharpen",
    "blur",
    "blackwhite",
    "sepia",
    "pixelate",
    "oil_paint",
    "modulate",
    "ascii",
    "collage",
    "urlscreenshot",
    "upscale",
    "output",
    "pjpg",
    "quality",
    "cache",
    "video_convert",
    "video_playlist",
    "store",
    "watermark",
    "partial_blur",
    "partial_pixelate",
    "security",
    "pdfinfo",
    "pdfconvert",
    "fallback",
    "zip",
    "minify_css",
    "minify_js",
    "debug",
    "doc_to_images",
    "pdfcreate",
    "doc_detection",
    "ocr",
    "caption",
    "image_sentiment",
    "copyright",
    "preview",
    "text_sentiment",
    "qr",
    "slide",
    "run_workflow",
    "workflow_status",
    "content",
];

// ------------------------------------------------------------------------------------------------
// tiny deterministic PRNG (xorshift64*)

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: usize, hi_incl: usize) -> usize {
        lo + self.below(hi_incl - lo + 1)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }
    fn word(&mut self, lo: usize, hi: usize) -> String {
        let n = self.range(lo, hi);
        (0..n).map(|_| *self.pick(b"abcdefghijklmnopqrstuvwxyz_") as char).collect()
    }
}

// ------------------------------------------------------------------------------------------------
// base64 (no dependency)

fn b64(data: &[u8], url_safe: bool) -> String {
    let alphabet: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64u(s: &str) -> String {
    b64(s.as_bytes(), true)
}

// ------------------------------------------------------------------------------------------------
// cases

#[derive(Clone, Default)]
struct Expect {
    status: Option<u16>,
    task: Option<&'static str>,
    option: Option<&'static str>,
}

#[derive(Clone)]
struct Case {
    cat: &'static str,
    path: String,
    expect: Option<Expect>,
    /// Targets a loopback trap: run first, and the trap must see no connection.
    trap: bool,
    /// Targets a private address off this machine: only run when no trap was hit.
    offbox: bool,
}

impl Case {
    fn new(cat: &'static str, path: String) -> Self {
        Case { cat, path, expect: None, trap: false, offbox: false }
    }
    fn expect(mut self, status: u16, task: Option<&'static str>, option: Option<&'static str>) -> Self {
        self.expect = Some(Expect { status: Some(status), task, option });
        self
    }
}

/// Valid task segments used around a broken one (all fine on a 512x512 JPEG).
const VALID_TASKS: &[&str] = &[
    "resize=width:100",
    "resize=height:80",
    "resize=w:120,h:90,f:crop",
    "crop=dim:[0,0,50,50]",
    "rotate=deg:90",
    "rotate=deg:180",
    "flip",
    "flop",
    "output=format:png",
    "output=format:jpg",
    "output=format:webp",
];

/// Valid task segments containing '=' (for in-place corruption).
const VALID_EQ_TASKS: &[&str] = &[
    "resize=width:100",
    "resize=height:80",
    "resize=width:120,height:90,fit:crop",
    "resize=w:64,a:top",
    "crop=dim:[0,0,50,50]",
    "crop=d:[10,10,100,100]",
    "rotate=deg:90",
    "rotate=deg:45,background:FFFFFF",
    "output=format:png",
    "output=format:jpg,quality:80",
    "output=f:webp",
];

const NEAR_MISS_TASKS: &[&str] = &[
    "resiz",
    "resizee",
    "rezise",
    "re-size",
    "resize_",
    "_resize",
    "resize2",
    "resize.",
    "crops",
    "cropp",
    "crop_",
    "rotat",
    "rotation",
    "rotates",
    "outputs",
    "ouput",
    "out",
    "flipp",
    "flopp",
    "w",
    "r",
    "d",
    "width",
    "format",
    "deg",
    "dim",
    "scale",
    "thumbnail",
    "convert",
    "transform",
    "sharpness",
    "blurr",
    "monochrom",
    "grayscale",
    "greyscale",
    "webp",
    "png",
    "jpg",
    "secure",
    "securities",
    "b64x",
    "resize-",
    "a",
    "zz",
];

const BAD_NUMBERS: &[&str] = &[
    "-5",
    "-1",
    "10001",
    "20000",
    "100000",
    "99999999999999999999",
    "-99999999999999999999",
    "18446744073709551616",
    "4294967296",
    "1e999",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "-0.5",
];

const BAD_DEGREES: &[&str] = &["-1", "-90", "360", "361", "720", "1000", "99999999999999999999", "NaN", "inf", "-0.5"];

const BAD_CROP_DIMS: &[&str] = &[
    "[-1,0,10,10]",
    "[0,-1,10,10]",
    "[0,0,0,10]",
    "[0,0,10,0]",
    "[0,0,-10,10]",
    "[100001,0,10,10]",
    "[0,100001,10,10]",
    "[0,0,100001,10]",
    "[0,0,10,100001]",
    "[0,0,99999999999999999999,10]",
    "[0,0,NaN,10]",
];

const BAD_COLOURS: &[&str] = &[
    "GGGGGG",
    "12345G",
    "FFFFF",
    "FFFFFFF",
    "FFFFFFFFF",
    "F",
    "FF",
    "xyzzy",
    "notacolour",
    "0xFFFFFF",
    "-FFFFFF",
    "FF%20FF%20FF",
    "%23GGG",
    "[255,0,0]",
    "%23",
    "rgb",
    "ZZZZZZZZ",
    "FFFFFF%00",
    "gray101",
    "grey-1",
    "%FF%FE",
];

/// Escapes that are not valid percent-encoding, or decode to characters no option accepts.
/// None of them is followed by two hex digits, whatever comes next.
const BAD_ESCAPES: &[&str] =
    &["%G", "%GG", "%zz", "%g1", "%x0", "%-1", "%u0041", "%%", "%%41", "%00", "%01", "%7F", "%Zf"];

const BAD_UTF8: &[&str] = &[
    "%FF",
    "%FE",
    "%C3%28",
    "%C0%AF",
    "%ED%A0%80",
    "%F8%88%80%80%80",
    "%80",
    "%E2%82",
    "%F0%9F%98",
    "%C3%A9",
    "%E2%80%8B",
    "%EF%BB%BF",
    "%EF%BF%BF",
];

struct Gen {
    rng: Rng,
    handle: String,
}

impl Gen {
    /// Put a broken task segment into a chain of valid ones, ending with the real handle.
    fn wrap(&mut self, bad: &str) -> String {
        let mut segs: Vec<String> = Vec::new();
        if self.rng.chance(1, 4) {
            segs.push(self.rng.pick(KEYS).to_string());
        }
        for _ in 0..self.rng.below(3) {
            segs.push(self.rng.pick(VALID_TASKS).to_string());
        }
        // A first token without '=' could legitimately be read as an API key
        // (`/KEY/HANDLE` is plain delivery), so never let such a token come first.
        if segs.is_empty() && !bad.contains('=') {
            segs.push(self.rng.pick(VALID_TASKS).to_string());
        }
        segs.push(bad.to_string());
        for _ in 0..self.rng.below(2) {
            segs.push(self.rng.pick(VALID_TASKS).to_string());
        }
        format!("/{}/{}", segs.join("/"), self.handle)
    }

    /// Insert `ins` at a random position of a valid '='-task.
    fn corrupt(&mut self, ins: &str) -> String {
        let seg = self.rng.pick(VALID_EQ_TASKS).to_string();
        let at = self.rng.range(0, seg.len());
        format!("{}{}{}", &seg[..at], ins, &seg[at..])
    }

    fn unknown_task(&mut self) -> String {
        let name = if self.rng.chance(1, 2) {
            self.rng.pick(NEAR_MISS_TASKS).to_string()
        } else {
            format!("zq{}", self.rng.word(2, 10))
        };
        assert!(!KNOWN_TASKS.contains(&name.as_str()), "{name} is a known task");
        let opts =
            ["width:100", "w:100", "deg:90", "dim:[0,0,10,10]", "format:png", "a:1", "amount:5", "x:1,y:2", "true"];
        let seg = match self.rng.below(4) {
            0 | 1 => format!("{name}={}", self.rng.pick(&opts)),
            2 => format!("{name}="),
            _ => name, // bare: wrap() keeps it out of first position
        };
        self.wrap(&seg)
    }

    fn unknown_option(&mut self) -> String {
        let table: &[(&str, &[&str], &[&str])] = &[
            (
                "resize",
                &[
                    "wdth", "widht", "heigth", "heigt", "fitt", "x", "y", "q", "size", "scale", "widths", "width_",
                    "_width", "ww", "hh", "aling", "deg", "dim",
                ],
                &["width:100", "height:80", "fit:crop", "align:top"],
            ),
            ("crop", &["dims", "dimension", "x", "rect", "dd", "dim2", "width", "w"], &["dim:[0,0,10,10]"]),
            ("rotate", &["degree", "degs", "angle", "x", "rot", "dd", "width"], &["deg:90", "exif:true"]),
            (
                "output",
                &["fmt", "formats", "type", "qualty", "x", "ff", "formt", "width"],
                &["format:png", "quality:80"],
            ),
            ("blur", &["amt", "amounts", "x", "radius"], &["amount:2"]),
            ("flip", &["x", "amount", "deg"], &[]),
            ("monochrome", &["x", "amount"], &[]),
        ];
        let (task, bad_keys, valid) = *self.rng.pick(table);
        let key = if self.rng.chance(3, 4) {
            self.rng.pick(bad_keys).to_string()
        } else {
            format!("zq{}", self.rng.word(1, 8))
        };
        let bad = if self.rng.chance(1, 5) {
            key // bare flag that the task does not have
        } else {
            format!("{key}:{}", self.rng.pick(&["100", "1", "abc", "true", "[1,2]", "png"]))
        };
        let mut opts: Vec<String> = Vec::new();
        if !valid.is_empty() {
            for _ in 0..self.rng.below(3) {
                opts.push(self.rng.pick(valid).to_string());
            }
        }
        opts.dedup();
        let at = self.rng.range(0, opts.len());
        opts.insert(at, bad);
        self.wrap(&format!("{task}={}", opts.join(",")))
    }

    fn out_of_range(&mut self) -> String {
        let table: &[(&str, &str, &[&str], &str)] = &[
            ("resize", "width", BAD_NUMBERS, ""),
            ("resize", "height", BAD_NUMBERS, ""),
            ("resize", "w", BAD_NUMBERS, ",fit:crop"),
            ("resize", "h", BAD_NUMBERS, ",width:100"),
            ("rotate", "deg", BAD_DEGREES, ""),
            ("rotate", "d", BAD_DEGREES, ",background:white"),
            ("crop", "dim", BAD_CROP_DIMS, ""),
            ("crop", "d", BAD_CROP_DIMS, ""),
            ("output", "quality", &["0", "101", "-1", "1000", "99999999999999999999"], ",format:jpg"),
            ("output", "page", &["0", "100000", "-1"], ""),
            ("output", "density", &["0", "501", "-1"], ""),
            ("blur", "amount", &["21", "-1", "100", "1000"], ""),
            ("sharpen", "amount", &["21", "-1", "50"], ""),
            ("pixelate", "amount", &["1", "0", "101", "-1"], ""),
            ("oil_paint", "amount", &["1", "101"], ""),
            ("modulate", "brightness", &["10001", "-1"], ""),
            ("modulate", "hue", &["360", "-1", "1000"], ""),
            ("modulate", "saturation", &["10001", "-5"], ""),
            ("sepia", "tone", &["101", "-1"], ""),
            ("blackwhite", "threshold", &["101", "-1"], ""),
            ("border", "width", &["1001", "-1"], ""),
            ("rounded_corners", "radius", &["0", "10001", "-1"], ""),
            ("rounded_corners", "blur", &["21", "-1"], ""),
            ("vignette", "amount", &["101", "-1"], ""),
            ("shadow", "opacity", &["101", "-1"], ""),
            ("shadow", "vector", &["[1001,0]", "[0,-1001]"], ""),
            ("torn_edges", "spread", &["[0,10]", "[1,10001]"], ""),
            ("quality", "value", &["0", "101", "-1"], ""),
            ("pjpg", "quality", &["101", "-1"], ""),
            ("cache", "expiry", &["-1", "-100"], ""),
            ("polaroid", "rotate", &["360", "-1"], ""),
            ("ascii", "size", &["9", "101"], ""),
        ];
        let (task, opt, vals, companion) = *self.rng.pick(table);
        let v = self.rng.pick(vals);
        let seg = if self.rng.chance(1, 2) || companion.is_empty() {
            format!("{task}={opt}:{v}{companion}")
        } else {
            format!("{task}={}{}", &companion[1..], format_args!(",{opt}:{v}"))
        };
        self.wrap(&seg)
    }

    fn wrong_type(&mut self) -> String {
        let table: &[(&str, &str, &[&str], &str)] = &[
            (
                "resize",
                "width",
                &[
                    "abc",
                    "[1,2]",
                    "[]",
                    "true",
                    "100px",
                    "0x10",
                    "10.5.5",
                    "--5",
                    "5-",
                    "1_000",
                    "%EF%BC%91%EF%BC%90%EF%BC%90",
                    "%D9%A1%D9%A0%D9%A0",
                    "100abc",
                    "%22%22",
                    "[100]",
                    "1/2",
                ],
                "",
            ),
            ("resize", "height", &["abc", "[1,2]", "false", "80px", "0b101", "8..0", "++8"], ""),
            ("resize", "fit", &["[a,b]", "123", "crop2", "clipx", "true", "[crop]", "%22%22", "fill"], ",width:100"),
            (
                "resize",
                "align",
                &[
                    "sideways",
                    "[top]",
                    "[top,left,right]",
                    "[]",
                    "[[top,left]]",
                    "123",
                    "[1,2]",
                    "toop",
                    "[top,sideways]",
                ],
                ",width:100",
            ),
            (
                "crop",
                "dim",
                &[
                    "abc",
                    "10",
                    "[a,b,c,d]",
                    "[0.5,0,10,10]",
                    "[0,0,10,10.5]",
                    "[]",
                    "[[0,0,10,10]]",
                    "[0,0,10,10,10]",
                    "[0,0,10]",
                    "true",
                    "[0,0,10,x]",
                    "[,0,10,10]",
                    "[0,0,10,10,]",
                ],
                "",
            ),
            ("rotate", "deg", &["abc", "[90]", "90deg", "exif2", "true", "9O", "[exif]", "ninety"], ""),
            ("rotate", "exif", &["maybe", "2", "[true]", "truee"], ",deg:90"),
            (
                "output",
                "format",
                &["[png]", "123", "png;", "gifx", "exe", "p%20ng", "png.", "..png", "jpg2", "%2Epng", "image%2Fpng"],
                "",
            ),
            ("output", "strip", &["maybe", "2", "[true]"], ",format:png"),
            ("output", "compress", &["maybe", "[false]"], ",format:png"),
            ("output", "colorspace", &["xyz", "rgbb", "[rgb]"], ",format:jpg"),
            ("blur", "amount", &["abc", "[2]", "true"], ""),
        ];
        let (task, opt, vals, companion) = *self.rng.pick(table);
        let v = self.rng.pick(vals);
        self.wrap(&format!("{task}={opt}:{v}{companion}"))
    }

    fn brackets(&mut self) -> String {
        let templates = [
            "crop=dim:[0,0,10,10",
            "crop=dim:0,0,10,10]",
            "crop=dim:[0,0,[10,10]",
            "crop=dim:]0,0,10,10[",
            "crop=dim:[[0,0,10,10]",
            "crop=dim:[0,0,10,10]]",
            "crop=dim:[0,0,10,10]x",
            "crop=dim:x[0,0,10,10]",
            "crop=dim:[0,0,10,10][",
            "crop=dim:[",
            "crop=dim:]",
            "crop=dim:[]]",
            "resize=width:\"100",
            "resize=width:100\"",
            "resize=fit:\"crop,width:100",
            "resize=\"width:100\"",
            "resize=align:[top,left,width:100",
            "resize=align:top,left],width:100",
            "output=format:\"png",
            "output=format:png\"",
            "resize=width:\"10\"0",
            "resize=width:[100",
            "resize=width:100]",
            "rotate=deg:\"90",
            "rotate=deg:'90'",
            "resize=width:100,\"height\":50",
            "crop=\"dim:[0,0,10,10]\"",
            "crop=dim:%5B0,0,10,10",
            "crop=dim:%5B0,0,10,10%5D%5D",
            "resize=width:100%22",
            "crop=dim:[0,0,10,10\"]",
            "crop=dim:\"[0,0,10,10]",
            "resize=align:[\"top\",left",
            "crop=dim:[0,0,10,10]%5D",
        ];
        let t = self.rng.pick(&templates).to_string();
        self.wrap(&t)
    }

    fn structure(&mut self) -> String {
        let segs = [
            "resize=",
            "resize=,",
            "resize=,width:100",
            "resize=width:100,",
            "resize=width:100,,height:50",
            "=width:100",
            "=",
            "resize==width:100",
            "resize=width::100",
            "resize=width:100=",
            "resize=width=100",
            "resize:width:100",
            "resize=width,100",
            "resize=width:100:50",
            "resize=:100",
            "resize=:",
            "resize=,,,",
            "crop=",
            "rotate=",
            "output=",
            "flip=",
            "flop=",
            "blur=",
            "resize=width:",
            "resize=height:",
            "crop=dim:",
            "rotate=deg:",
            "output=format:",
            "output=format:,quality:80",
            "resize=width:,height:50",
            "resize=%20",
            "resize=width:100,%20",
            "resize",
            "crop",
            "security",
            "watermark",
            "flip=x:1",
            "flop=amount:2",
            "monochrome=x:1",
            "resize=width:100;height:50",
            "resize=width:100&height=50",
            "resize&width=100",
            "resize=width:100%20height:50",
            "resize=width%20:100",
            "resize=w:",
            "crop=d:",
            "rotate=d:",
            "output=f:",
            "resize=:",
            "cache=",
            "cache=expiry:",
            "cache=maybe",
            "security=",
            "resize=width:100,:",
            "resize=width:100,height",
            "crop=dim:[0,0,10,10],",
            "==",
            "=:",
            ":",
            ",",
        ];
        match self.rng.below(8) {
            0 => {
                // empty path segments between tasks / before the source
                let t = self.rng.pick(VALID_TASKS).to_string();
                let forms = [
                    format!("/{t}//{}", self.handle),
                    format!("/{t}//flip/{}", self.handle),
                    format!("//{t}/{}", self.handle),
                    format!("/{t}///{}", self.handle),
                    format!("/{t}//{t}/{}", self.handle),
                ];
                self.rng.pick(&forms).clone()
            }
            _ => {
                let s = self.rng.pick(&segs).to_string();
                self.wrap(&s)
            }
        }
    }

    fn percent(&mut self) -> String {
        let bad = if self.rng.chance(1, 6) {
            // a lone '%' is only safe at the very end (it must not combine with following hex digits)
            format!("{}%", self.rng.pick(VALID_EQ_TASKS))
        } else {
            let esc = self.rng.pick(BAD_ESCAPES).to_string();
            self.corrupt(&esc)
        };
        self.wrap(&bad)
    }

    fn utf8(&mut self) -> String {
        let esc = self.rng.pick(BAD_UTF8).to_string();
        let bad = self.corrupt(&esc);
        self.wrap(&bad)
    }

    fn long(&mut self) -> String {
        let n = *self.rng.pick(&[300usize, 1000, 4000, 6000]);
        let k = n / 2;
        let seg = match self.rng.below(10) {
            0 => format!("resize=width:{}", "1".repeat(n)),
            1 => format!("resize=height:{}", "9".repeat(n)),
            2 => format!("rotate=deg:{}", "9".repeat(n)),
            3 => format!("output=format:{}", "a".repeat(n)),
            4 => format!("resize=fit:{},width:100", "x".repeat(n)),
            5 => format!("resize={}:100", "w".repeat(n)),
            6 => format!("{}=width:100", "a".repeat(n)),
            7 => format!("crop=dim:[{}1]", "1,".repeat(k)),
            8 => format!("output=format:png,{}", "zx:1,".repeat(n / 5)),
            _ => {
                return match self.rng.below(3) {
                    0 => format!("/resize=width:100/{}", "A".repeat(n)),
                    1 => format!("/{}resize=width:-1/{}", "flip/".repeat(n / 5), self.handle),
                    _ => format!("/{}", "B".repeat(n)),
                }
            }
        };
        self.wrap(&seg)
    }

    fn nesting(&mut self) -> String {
        let d = *self.rng.pick(&[2usize, 3, 5, 20, 100, 1000, 3000, 8000]);
        let (o, c) = ("[".repeat(d), "]".repeat(d));
        let seg = match self.rng.below(9) {
            0 => format!("crop=dim:{o}0,0,10,10{c}"),
            1 => format!("resize=align:{o}top{c},width:100"),
            2 => format!("resize=width:{o}100{c}"),
            3 => format!("rotate=deg:{o}90{c}"),
            4 => format!("output=format:{o}png{c}"),
            5 => format!("crop=dim:{o}"),
            6 => format!("crop=dim:{c}"),
            7 => format!("crop=dim:{}", "[]".repeat(d)),
            _ => format!("crop=dim:[{}[]]", "[],".repeat(d)),
        };
        self.wrap(&seg)
    }

    fn duplicate(&mut self) -> String {
        let (a, b) = (self.rng.range(1, 500), self.rng.range(1, 500));
        let deg = self.rng.range(0, 359);
        let forms = [
            format!("resize=width:{a},width:{b}"),
            format!("resize=w:{a},width:{b}"),
            format!("resize=height:{a},h:{b}"),
            format!("resize=width:{a},height:{b},width:{a}"),
            format!("crop=dim:[0,0,{a},{b}],dim:[0,0,{b},{a}]"),
            format!("crop=d:[0,0,{a},{b}],dim:[0,0,{a},{b}]"),
            format!("rotate=deg:90,deg:{deg}"),
            format!("rotate=deg:{deg},d:{deg}"),
            "output=format:png,format:jpg".to_string(),
            "output=f:png,format:png".to_string(),
            format!("resize=width:{a},fit:crop,fit:clip"),
            "rotate=deg:90,exif:true,exif:false".to_string(),
        ];
        let s = self.rng.pick(&forms).clone();
        self.wrap(&s)
    }

    fn colour(&mut self) -> String {
        let c = self.rng.pick(BAD_COLOURS).to_string();
        let deg = self.rng.range(1, 89);
        let forms = [
            format!("rotate=deg:45,background:{c}"),
            format!("rotate=deg:{deg},b:{c}"),
            format!("output=format:png,background:{c}"),
            format!("border=width:5,color:{c}"),
            format!("shadow=color:{c}"),
            format!("circle=background:{c}"),
            format!("rounded_corners=background:{c}"),
            format!("polaroid=color:{c}"),
        ];
        let s = self.rng.pick(&forms).clone();
        self.wrap(&s)
    }

    fn security(&mut self) -> String {
        let (malformed, _) = security_forms();
        let s = self.rng.pick(&malformed).clone();
        self.wrap(&s)
    }

    fn b64_mode(&mut self) -> String {
        let hb = b64u(&self.handle);
        let valid_tasks = b64u(r#"[{"name":"resize","params":{"width":100}}]"#);
        let key = if self.rng.chance(1, 2) { format!("/{}", self.rng.pick(KEYS)) } else { String::new() };
        let bad_task_lists = [
            "not json".to_string(),
            "{}".to_string(),
            "[".to_string(),
            "null".to_string(),
            r#"[{"name":"resise","params":{"width":100}}]"#.to_string(),
            r#"[{"name":"resize","params":{"width":-5}}]"#.to_string(),
            r#"[{"name":"resize","params":{"width":"abc"}}]"#.to_string(),
            r#"[{"name":"resize","params":{"heigt":100}}]"#.to_string(),
            r#"[{"name":"resize","params":{}}]"#.to_string(),
            r#"[{"name":"crop","params":{"dim":[0,0,10]}}]"#.to_string(),
            r#"[{"name":"rotate","params":{"deg":360}}]"#.to_string(),
            r#"[{"params":{"width":100}}]"#.to_string(),
            r#"[{"name":42}]"#.to_string(),
            r#"[{"name":"resize","params":[100]}]"#.to_string(),
            format!(r#"[{{"name":"resize","params":{{"width":100}}}},{}]"#, "[".repeat(500) + &"]".repeat(500)),
        ];
        match self.rng.below(4) {
            0 => {
                let t = self.rng.pick(&bad_task_lists).clone();
                format!("{key}/b64/{}/b64://{hb}", b64u(&t))
            }
            1 => {
                let bad_b64 = *self.rng.pick(&["!!!", "%%%", "====", "a", "ab=c", "%FF%FE", "@@@@", "", "A"]);
                format!("{key}/b64/{bad_b64}/b64://{hb}")
            }
            2 => {
                let bad_src = *self.rng.pick(&["!!!", "", "%FF", "====", "@@"]);
                format!("{key}/b64/{valid_tasks}/b64://{bad_src}")
            }
            _ => {
                let forms = [
                    format!("{key}/b64/{valid_tasks}"),
                    format!("{key}/b64/{valid_tasks}/"),
                    format!("{key}/b64//b64://{hb}"),
                    format!("{key}/b64/{valid_tasks}/b64:/{hb}"),
                    format!("{key}/b64/{valid_tasks}/b64://{}", b64u("zzzzzzzzzzzzzzzzzzzz")),
                    format!("{key}/b64/{valid_tasks}/b64://{}", b64u("[unclosed")),
                    format!("{key}/b64/{valid_tasks}/b64://{}", b64u("src://")),
                    format!("{key}/b64/{valid_tasks}/b64://{}", b64(&[0xff, 0xfe, 0x00], true)),
                    format!("{key}/b64/{}/b64://{hb}", b64(&[0xff, 0xfe, 0x00], true)),
                ];
                self.rng.pick(&forms).clone()
            }
        }
    }

    fn bad_source(&mut self) -> String {
        let sources: Vec<String> = vec![
            "src://".into(),
            "src:///x.jpg".into(),
            "src://[unclosed".into(),
            "src://nosuchalias/x.jpg".into(),
            "src://%FF/x.jpg".into(),
            "[unclosed".into(),
            "[".into(),
            "]".into(),
            format!("[{}", self.handle),
            format!("[{},", self.handle),
            "[,]".into(),
            "[]".into(),
            format!("\"{}", self.handle),
            format!("{}\"", self.handle),
            "\"\"".into(),
            "http://".into(),
            "http:///".into(),
            "http://@/x.jpg".into(),
            "https://".into(),
            "http://:80/x.jpg".into(),
            "http://[/x.jpg".into(),
            "http://[::1/x.jpg".into(),
            "http://%00/x.jpg".into(),
            "http://%FF/x.jpg".into(),
            "file:///etc/passwd".into(),
            "file://localhost/etc/passwd".into(),
            "data:image/png;base64,AAAA".into(),
            "javascript:alert(1)".into(),
            "b64://!!!".into(),
            "b64://".into(),
            "%FF%FE".into(),
            format!("{}%00", self.handle),
            "..%2F..%2Fetc%2Fpasswd".into(),
            ".%2e%2F.%2e%2Fetc%2Fpasswd".into(),
            "zzzzzzzzzzzzzzzzzzzz".into(),
            "nonexistentHandle0001".into(),
            format!("{};rm", self.handle),
            format!("{}%0d%0aX-Injected:%201", self.handle),
            "%2e%2e%5c%2e%2e%5cwindows".into(),
            "%".into(),
            "%zz".into(),
            format!("{}%", self.handle),
            "\"http://\"".into(),
            "%22%22".into(),
        ];
        let src = self.rng.pick(&sources).clone();
        let key = if self.rng.chance(1, 2) { format!("{}/", self.rng.pick(KEYS)) } else { String::new() };
        let prefix =
            *self.rng.pick(&["resize=width:100/", "output=format:png/", "rotate=deg:90/", "flip/resize=width:50/"]);
        format!("/{key}{prefix}{src}")
    }
}

/// Security segments: (structurally malformed — refused whatever the configuration,
/// well-formed but unverifiable — refused when the server has a secret).
fn security_forms() -> (Vec<String>, Vec<String>) {
    // one instant per run: the generator must give the same URLs however often it is called
    static NOW: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let now =
        *NOW.get_or_init(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs());
    let p_ok = b64(format!(r#"{{"expiry":{},"call":["read","convert"]}}"#, now + 3600).as_bytes(), true);
    let zeros = "0".repeat(64);
    let malformed = vec![
        "security".to_string(),
        "security=".to_string(),
        "security=p:".to_string(),
        "security=s:".to_string(),
        "security=p:,s:".to_string(),
        format!("security=p:{p_ok}"),
        format!("security=s:{zeros}"),
        format!("security=policy:{p_ok}"),
        "security=p:!!!,s:zz".to_string(),
        "security=policy:%25%25%25,signature:00".to_string(),
        format!("security=p:{},s:{zeros}", b64u("not json at all")),
        format!("security=p:{},s:{zeros}", b64u(r#"{"call":["read"]}"#)),
        format!("security=p:{},s:{zeros}", b64u(r#"{"expiry":"soon"}"#)),
        format!("security=p:{},s:{zeros}", b64u(r#"[1,2,3]"#)),
        format!("security=p:{p_ok},s:nothex"),
        format!("security=p:{p_ok},s:{}", "f".repeat(63)),
        format!("security=p:{p_ok},s:{zeros},x:1"),
        format!("security=p:{p_ok},s:{zeros},p:{p_ok}"),
        format!("security=p:[a,b],s:{zeros}"),
        format!("security=policy:{p_ok},signature:{zeros},signature:{zeros}"),
        format!("security=p:{},s:{zeros}", &p_ok[..p_ok.len() - 3]),
        format!("security=p:{p_ok}%FF,s:{zeros}"),
    ];
    let unverifiable = vec![
        format!("security=p:{p_ok},s:{zeros}"),
        format!("security=p:{p_ok},s:{}", "f".repeat(64)),
        format!("security=p:{},s:{zeros}", b64u(r#"{"expiry":1}"#)),
        format!("security=policy:{p_ok},signature:{}", "ab".repeat(32)),
    ];
    (malformed, unverifiable)
}

fn generate(seed: u64, handle: &str, seen: &mut HashSet<String>, base: &str) -> Vec<Case> {
    let mut g = Gen { rng: Rng::new(seed), handle: handle.to_string() };
    type F = fn(&mut Gen) -> String;
    let cats: &[(&'static str, usize, F)] = &[
        ("unknown-task", 10, Gen::unknown_task),
        ("unknown-option", 10, Gen::unknown_option),
        ("out-of-range", 15, Gen::out_of_range),
        ("wrong-type", 12, Gen::wrong_type),
        ("brackets-quotes", 6, Gen::brackets),
        ("structure", 8, Gen::structure),
        ("bad-percent", 10, Gen::percent),
        ("bad-utf8", 8, Gen::utf8),
        ("long", 5, Gen::long),
        ("nesting", 5, Gen::nesting),
        ("duplicate", 5, Gen::duplicate),
        ("colour", 6, Gen::colour),
        ("security", 6, Gen::security),
        ("b64", 5, Gen::b64_mode),
        ("source", 6, Gen::bad_source),
    ];
    let total: usize = cats.iter().map(|c| c.1).sum();
    let mut out = Vec::new();
    let mut attempts = 0;
    while out.len() < GENERATED_TARGET && attempts < GENERATED_TARGET * 50 {
        attempts += 1;
        let mut r = g.rng.below(total);
        let mut chosen = &cats[0];
        for c in cats {
            if r < c.1 {
                chosen = c;
                break;
            }
            r -= c.1;
        }
        let path = (chosen.2)(&mut g);
        if let Some(sent) = as_sent(base, &path) {
            if seen.insert(sent) {
                out.push(Case::new(chosen.0, path));
            }
        }
    }
    out
}

/// Private-address sources. `port`/`port6` are loopback traps; `offbox` ones leave the machine
/// if the server does not refuse them, so they are gated behind the trap phase.
fn ssrf_cases(handle: &str, port: u16, port6: Option<u16>) -> Vec<Case> {
    let mut loop_srcs = vec![
        format!("http://127.0.0.1:{port}/x.jpg"),
        format!("https://127.0.0.1:{port}/x.jpg"),
        format!("http://localhost:{port}/x.jpg"),
        format!("http://LOCALHOST:{port}/x.jpg"),
        format!("http://127.1:{port}/x.jpg"),
        format!("http://2130706433:{port}/x.jpg"),
        format!("http://0x7f000001:{port}/x.jpg"),
        format!("http://0177.0.0.1:{port}/x.jpg"),
        format!("http://0.0.0.0:{port}/x.jpg"),
        format!("http://127.0.0.1.:{port}/x.jpg"),
        format!("http://[::ffff:127.0.0.1]:{port}/x.jpg"),
        format!("http://user:pw@127.0.0.1:{port}/x.jpg"),
        format!("http://127.0.0.1:{port}/x.jpg?size=large"),
        format!("HTTP://127.0.0.1:{port}/x.jpg"),
        format!("http:/127.0.0.1:{port}/x.jpg"),
        format!("\"http://127.0.0.1:{port}/x.jpg\""),
        format!("%22http://127.0.0.1:{port}/x.jpg%22"),
        format!("http%3A%2F%2F127.0.0.1%3A{port}%2Fx.jpg"),
        format!("http:%2F%2F127.0.0.1:{port}%2Fx.jpg"),
        format!("[http://127.0.0.1:{port}/x.jpg]"),
        format!("[{handle},\"http://127.0.0.1:{port}/x.jpg\"]"),
        format!("ftp://127.0.0.1:{port}/x.jpg"),
        format!("gopher://127.0.0.1:{port}/_x"),
        format!("b64://{}", b64u(&format!("http://127.0.0.1:{port}/x.jpg"))),
    ];
    if let Some(p6) = port6 {
        loop_srcs.push(format!("http://[::1]:{p6}/x.jpg"));
        loop_srcs.push(format!("http://[0:0:0:0:0:0:0:1]:{p6}/x.jpg"));
    }
    let offbox_srcs = [
        "http://169.254.169.254/latest",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/a.png",
        "http://192.168.0.1/a.png",
        "http://172.16.0.1/a.png",
        "http://[fd00::1]/a.png",
        "http://[fe80::1]/a.png",
        "http://[::ffff:169.254.169.254]/latest",
        "http://0xa9fea9fe/latest",
        "http://2852039166/latest",
    ];
    let prefixes = ["", "resize=width:100/", "output=format:png/"];
    let mut out = Vec::new();
    for (srcs, offbox) in
        [(loop_srcs.iter().map(|s| s.as_str()).collect::<Vec<_>>(), false), (offbox_srcs.to_vec(), true)]
    {
        for src in srcs {
            for p in prefixes {
                for key in ["test/", ""] {
                    let mut c =
                        Case::new(if offbox { "ssrf-offbox" } else { "ssrf-loopback" }, format!("/{key}{p}{src}"));
                    c.trap = !offbox;
                    c.offbox = offbox;
                    out.push(c);
                }
            }
        }
    }
    // a URL where a handle is expected, inside task options
    for (i, t) in [
        format!("watermark=file:\"http://127.0.0.1:{port}/w.png\""),
        format!("watermark=file:http%3A%2F%2F127.0.0.1%3A{port}%2Fw.png"),
        format!("collage=files:[\"http://127.0.0.1:{port}/a.jpg\"],width:100,height:100"),
        format!("fallback=handle:\"http://127.0.0.1:{port}/f.jpg\""),
    ]
    .iter()
    .enumerate()
    {
        let mut c = Case::new("ssrf-loopback", format!("/{}{t}/{handle}", if i % 2 == 0 { "test/" } else { "" }));
        c.trap = true;
        out.push(c);
    }
    out
}

fn named_cases(h: &str) -> Vec<Case> {
    let hb = b64u(h);
    let n = |path: String| Case::new("named", path);
    vec![
        n("/resize=width:100/".into()),
        n("/resize=width:100".into()),
        n(format!("/resise=width:100/{h}")).expect(400, Some("resise"), None),
        n(format!("/resize=width:100/zqfoo=bar:1/{h}")),
        n(format!("/resize=heigt:100/{h}")).expect(400, Some("resize"), Some("heigt")),
        n(format!("/resize=width:10001/{h}")).expect(400, Some("resize"), Some("width")),
        n(format!("/resize=width:-5/{h}")).expect(400, Some("resize"), Some("width")),
        n(format!("/resize=width:99999999999999999999/{h}")).expect(400, Some("resize"), Some("width")),
        n(format!("/resize=width:abc/{h}")).expect(400, Some("resize"), Some("width")),
        n(format!("/resize=width:NaN/{h}")).expect(400, Some("resize"), Some("width")),
        n(format!("/resize=fit:[a,b],width:10/{h}")).expect(400, Some("resize"), Some("fit")),
        n(format!("/resize=fit:crop/{h}")).expect(400, Some("resize"), None),
        n(format!("/crop=dim:[0,0,10/{h}")),
        n(format!("/crop=dim:[0,0,0,0]/{h}")).expect(400, Some("crop"), Some("dim")),
        n(format!("/crop=dim:[0,0,10]/{h}")).expect(400, Some("crop"), Some("dim")),
        n(format!("/crop/{h}")).expect(400, Some("crop"), None),
        n(format!("/rotate=deg:360/{h}")).expect(400, Some("rotate"), Some("deg")),
        n(format!("/rotate=deg:-90/{h}")).expect(400, Some("rotate"), Some("deg")),
        n(format!("/output=format:exe/{h}")).expect(400, Some("output"), Some("format")),
        n(format!("/output=quality:101,format:jpg/{h}")).expect(400, Some("output"), Some("quality")),
        n(format!("/resize=/{h}")).expect(400, Some("resize"), None),
        n(format!("/resize=width:/{h}")).expect(400, Some("resize"), None),
        n(format!("/resize=:100/{h}")).expect(400, Some("resize"), None),
        n(format!("/resize=width:100,,height:10/{h}")).expect(400, Some("resize"), None),
        n(format!("/resize=width:100%/{h}")),
        n(format!("/resize=width:%FF/{h}")),
        n(format!("/resize=width:100,width:200/{h}")).expect(400, Some("resize"), Some("width")),
        n(format!("/rotate=deg:45,background:GGGGGG/{h}")).expect(400, Some("rotate"), Some("background")),
        n("/resize=width:100/%FF%FE".into()),
        n(format!("/resize=width:100/{h}%00")),
        n("/resize=width:100/..%2F..%2Fetc%2Fpasswd".into()),
        n("/..%2F..%2Fetc%2Fpasswd".into()),
        n("/nonexistentHandle000".into()).expect(404, None, None),
        n("/resize=width:100/nonexistentHandle000".into()).expect(404, None, None),
        n(format!("/b64/!!!/b64://{hb}")),
        n(format!("/b64/{}/b64://{hb}", b64u("not json"))),
        n(format!("/b64/{}/b64://{hb}", b64u(r#"[{"name":"resise","params":{"width":100}}]"#))).expect(
            400,
            Some("resise"),
            None,
        ),
        n(format!("/b64/{}/b64://{hb}", b64u(r#"[{"name":"resize","params":{"width":-5}}]"#))).expect(
            400,
            Some("resize"),
            Some("width"),
        ),
        n(format!("/b64/{}/b64://!!!", b64u(r#"[{"name":"resize","params":{"width":100}}]"#))),
        n("/resize=width:100/src://".into()),
        n("/test/resize=width:100/src://nosuchalias/x.jpg".into()),
        n("/test/resize=width:100/[unclosed".into()),
        n("/test/resize=width:100/http://".into()),
        n("/test/resize=width:100/http:///".into()),
        n("/test/resize=width:100/file:///etc/passwd".into()),
        n(format!("/security=p:,s:/resize=width:100/{h}")),
        n(format!("/security=p:!!!,s:zz/resize=width:100/{h}")),
        n(format!("/security/resize=width:100/{h}")),
        n(format!("/resize=width:100/security=policy:eyJ9,signature:abc/{h}")),
        n(format!("/crop=dim:{}{}/{h}", "[".repeat(10000), "]".repeat(10000))),
        n(format!("/crop=dim:{}/{h}", "[".repeat(10000))),
        n(format!("/resize=width:100/flip=/{h}")),
        n(format!("/resize=width:100/{h}%0d%0aX-Injected:%201")),
        n(format!("/{}=x:1/{h}", "a".repeat(4000))),
        n(format!("/resize=width:100/{}/{h}", "zq".repeat(20))),
        n(format!("/cache=expiry:-1/resize=width:100/{h}")).expect(400, Some("cache"), Some("expiry")),
        n(format!("/%ZZ=1/resize=width:100/{h}")),
        n(format!("/resize=width:1%2F0/{h}")),
        n(format!("/resize=width:100%2Fzqtask=1/{h}")),
    ]
}

// ------------------------------------------------------------------------------------------------
// running and checking

/// The path+query reqwest will actually send (its URL parser normalises a few things).
fn as_sent(base: &str, path: &str) -> Option<String> {
    let u = reqwest::Url::parse(&format!("{base}{path}")).ok()?;
    Some(match u.query() {
        Some(q) => format!("{}?{}", u.path(), q),
        None => u.path().to_string(),
    })
}

fn short(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…[{} bytes]", &s[..end], s.len())
    }
}

struct Outcome {
    status: Option<u16>,
    elapsed: Duration,
    failure: Option<String>,
}

/// Check one answer against the error contract.
fn check_error_answer(
    case: &Case,
    sent: &str,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let text = String::from_utf8_lossy(body);
    let ok_status = (400..500).contains(&status) || status == 501;
    if !ok_status {
        return Err(format!("status {status}, want 4xx"));
    }
    if headers.contains_key("x-injected") {
        return Err("CRLF injection: response carries an X-Injected header".into());
    }
    if text.contains("root:x:0:0") {
        return Err("response contains /etc/passwd content".into());
    }
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(format!("content-type {ct:?}, want application/json"));
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON ({e})"))?;
    let err = v.get("error").filter(|e| e.is_object()).ok_or("no `error` object in body")?;
    match err.get("message").and_then(|m| m.as_str()) {
        Some(m) if !m.trim().is_empty() => {}
        _ => return Err("error.message missing or empty".into()),
    }
    match err.get("status").and_then(|s| s.as_u64()) {
        Some(s) if s == status as u64 => {}
        other => return Err(format!("error.status {other:?} != HTTP status {status}")),
    }
    for field in ["task", "option"] {
        if let Some(f) = err.get(field) {
            if !(f.is_string() || f.is_null()) {
                return Err(format!("error.{field} is not a string"));
            }
        }
    }
    let task = err.get("task").and_then(|t| t.as_str());
    if status == 501 {
        match task {
            Some(t) if KNOWN_TASKS.contains(&t) && sent.contains(t) => {}
            _ => return Err(format!("501 without a known task of this URL in error.task (task={task:?})")),
        }
    }
    if let Some(exp) = &case.expect {
        // 501 naming a known-but-unimplemented task is accepted instead of the expected status
        if status != 501 {
            if let Some(s) = exp.status {
                if s != status {
                    return Err(format!("status {status}, want {s}"));
                }
            }
            if let Some(t) = exp.task {
                if task != Some(t) {
                    return Err(format!("error.task {task:?}, want {t:?}"));
                }
            }
            if let Some(o) = exp.option {
                let got = err.get("option").and_then(|o| o.as_str());
                if got != Some(o) {
                    return Err(format!("error.option {got:?}, want {o:?}"));
                }
            }
        }
    }
    Ok(())
}

fn run_one(client: &reqwest::blocking::Client, base: &str, case: &Case) -> Outcome {
    let full = format!("{base}{}", case.path);
    let sent = as_sent(base, &case.path).unwrap_or_else(|| case.path.clone());
    let start = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let resp = match client.get(&full).send() {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() { "timeout (hang)" } else { "connection error" };
                return Outcome { status: None, elapsed: start.elapsed(), failure: Some(format!("{what}: {e}")) };
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = match resp.bytes() {
            Ok(b) => b,
            Err(e) => {
                return Outcome {
                    status: Some(status),
                    elapsed: start.elapsed(),
                    failure: Some(format!("status {status}, body read failed: {e}")),
                }
            }
        };
        if status == 503 && tries < 5 {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let elapsed = start.elapsed();
        let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let mut failure = check_error_answer(case, &sent, status, &headers, &body).err().map(|why| {
            if ct.starts_with("application/json") || ct.starts_with("text/") {
                format!("{why}; body: {}", short(&String::from_utf8_lossy(&body), 300))
            } else {
                format!("{why}; body: {} bytes of {ct:?}", body.len())
            }
        });
        if failure.is_none() && elapsed > SLOW {
            failure = Some(format!("slow: {:.1}s for a malformed URL (status {status})", elapsed.as_secs_f64()));
        }
        return Outcome { status: Some(status), elapsed, failure };
    }
}

fn run_all(base: &str, cases: &[Case]) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..cases.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .redirect(reqwest::redirect::Policy::none())
                    .pool_max_idle_per_host(2)
                    .build()
                    .unwrap();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= cases.len() {
                        break;
                    }
                    let o = run_one(&client, base, &cases[i]);
                    results.lock().unwrap()[i] = Some(o);
                }
            });
        }
    });
    results.into_inner().unwrap().into_iter().map(|o| o.unwrap()).collect()
}

/// A loopback listener that counts connections (and keeps what was sent) but never answers.
struct Trap {
    port: u16,
    hits: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
}

fn trap(addr: &str) -> Option<Trap> {
    let listener = TcpListener::bind(addr).ok()?;
    let port = listener.local_addr().ok()?.port();
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (h, sn) = (hits.clone(), seen.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            h.fetch_add(1, Ordering::SeqCst);
            let sn = sn.clone();
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_millis(500))).ok();
                let mut buf = [0u8; 512];
                let n = stream.read(&mut buf).unwrap_or(0);
                let first = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_string();
                sn.lock().unwrap().push(first);
                // drop: connection closed without an answer
            });
        }
    });
    Some(Trap { port, hits, seen })
}

#[test]
fn malformed_urls_get_4xx_json_errors() {
    let server = common::TestServer::start();
    let handle = server.upload_fixture("hopper.jpg");
    let seed: u64 =
        std::env::var("REFRACT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5EED_2024_CAFE_F00D);

    let trap4 = trap("127.0.0.1:0").expect("bind loopback trap");
    let trap6 = trap("[::1]:0");

    let mut seen: HashSet<String> = HashSet::new();
    let mut named = named_cases(&handle);
    named.retain(|c| as_sent(&server.base, &c.path).map(|s| seen.insert(s)).unwrap_or(false));
    let mut ssrf = ssrf_cases(&handle, trap4.port, trap6.as_ref().map(|t| t.port));
    ssrf.retain(|c| as_sent(&server.base, &c.path).map(|s| seen.insert(s)).unwrap_or(false));
    let generated = generate(seed, &handle, &mut seen, &server.base);
    let n_generated = generated.len() + ssrf.len();
    assert!(n_generated >= 1000, "only {n_generated} distinct generated URLs");

    let started = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_cat: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut slowest = (Duration::ZERO, String::new());

    let mut record = |cases: &[Case], outcomes: Vec<Outcome>, failures: &mut Vec<String>| {
        for (c, o) in cases.iter().zip(outcomes) {
            let sent = as_sent(&server.base, &c.path).unwrap_or_else(|| c.path.clone());
            *by_status.entry(o.status.map(|s| s.to_string()).unwrap_or("none".into())).or_default() += 1;
            let e = by_cat.entry(c.cat).or_default();
            e.0 += 1;
            if o.elapsed > slowest.0 {
                slowest = (o.elapsed, short(&sent, 120));
            }
            if let Some(f) = o.failure {
                e.1 += 1;
                failures.push(format!("[{}] GET {} -> {f}", c.cat, short(&sent, 400)));
            }
        }
    };

    // Phase 1: loopback SSRF cases, watched by the traps.
    let trap_cases: Vec<Case> = ssrf.iter().filter(|c| c.trap).cloned().collect();
    let outcomes = run_all(&server.base, &trap_cases);
    record(&trap_cases, outcomes, &mut failures);
    std::thread::sleep(Duration::from_millis(300));
    let hits4 = trap4.hits.load(Ordering::SeqCst);
    let hits6 = trap6.as_ref().map(|t| t.hits.load(Ordering::SeqCst)).unwrap_or(0);
    let trapped = hits4 + hits6 > 0;
    if trapped {
        let mut seen_lines = trap4.seen.lock().unwrap().clone();
        if let Some(t) = &trap6 {
            seen_lines.extend(t.seen.lock().unwrap().iter().cloned());
        }
        failures.push(format!(
            "[ssrf-loopback] server CONNECTED to a private (loopback) source {} time(s); first request lines: {:?}. \
             Off-machine private addresses were NOT sent.",
            hits4 + hits6,
            &seen_lines[..seen_lines.len().min(5)]
        ));
    }

    // Phase 2: everything else (off-machine private addresses only if phase 1 showed an SSRF guard).
    let mut rest: Vec<Case> = named.clone();
    rest.extend(generated.iter().cloned());
    rest.extend(ssrf.iter().filter(|c| c.offbox && !trapped).cloned());
    let outcomes = run_all(&server.base, &rest);
    record(&rest, outcomes, &mut failures);
    let elapsed = started.elapsed();

    // The server must still be healthy and still do real work.
    let client = server.client();
    match client.get(server.url("/healthz")).send() {
        Ok(r) if r.status() == 200 => {}
        Ok(r) => failures.push(format!("after the run: GET /healthz -> {}", r.status())),
        Err(e) => failures.push(format!("after the run: GET /healthz failed: {e}")),
    }
    match client.get(server.url(&format!("/resize=width:100/{handle}"))).send() {
        Ok(r) if r.status() == 200 => {
            let img = common::decode(&r.bytes().unwrap());
            if img.width() != 100 {
                failures.push(format!("after the run: valid resize gave width {}", img.width()));
            }
        }
        Ok(r) => failures.push(format!(
            "after the run: valid resize -> {} {}",
            r.status(),
            short(&r.text().unwrap_or_default(), 300)
        )),
        Err(e) => failures.push(format!("after the run: valid resize failed: {e}")),
    }

    eprintln!(
        "malformed_urls: seed {seed:#x}; {} named + {} generated ({} SSRF) URLs in {:.2}s; slowest {:.3}s ({}); statuses {:?}",
        named.len(),
        n_generated,
        ssrf.len(),
        elapsed.as_secs_f64(),
        slowest.0.as_secs_f64(),
        slowest.1,
        by_status
    );
    for (cat, (n, f)) in &by_cat {
        eprintln!("  {cat:16} {n:5} sent, {f:5} failed");
    }
    if !failures.is_empty() {
        panic!(
            "{} of {} malformed URLs were mishandled:\n{}",
            failures.len(),
            named.len() + n_generated,
            failures.join("\n")
        );
    }
}

#[test]
fn generator_is_deterministic_and_large_enough() {
    // Pure generator check (no server): same seed, same URLs; enough distinct ones.
    let base = "http://127.0.0.1:1";
    let h = "refractHandle0000001";
    let a = generate(42, h, &mut HashSet::new(), base);
    let b = generate(42, h, &mut HashSet::new(), base);
    assert_eq!(a.len(), GENERATED_TARGET);
    assert!(a.iter().zip(&b).all(|(x, y)| x.path == y.path));
    assert_eq!(b64u("ab?"), "YWI_");
    assert_eq!(b64(b"hello", false), "aGVsbG8=");
    // `REFRACT_FUZZ_DUMP=1 cargo test --test malformed_urls generator -- --nocapture` lists them.
    if std::env::var_os("REFRACT_FUZZ_DUMP").is_some() {
        for c in &a {
            println!("{:16} {}", c.cat, short(&as_sent(base, &c.path).unwrap(), 200));
        }
    }
}

use common::sign;

/// With an app secret configured, every bad, forged, expired or insufficient security segment is
/// refused (and a correctly signed one still works).
#[test]
fn bad_security_segments_are_refused_when_a_secret_is_set() {
    const SECRET: &str = "refract-test-secret";
    let server = common::TestServer::start_with_env(&[("REFRACT_SECRET", SECRET)]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let signed = |json: String| {
        let p = b64(json.as_bytes(), true);
        let s = sign(SECRET, &p);
        (p, s)
    };

    let (up, us) = signed(format!(r#"{{"expiry":{},"call":["pick","store","read","convert"]}}"#, now + 3600));
    let resp = server
        .store(&common::fixture("hopper.jpg"), &format!("key=test&filename=hopper.jpg&policy={up}&signature={us}"));
    assert_eq!(resp.status(), 200, "signed upload refused: {:?}", resp.text());
    let h = resp.json::<serde_json::Value>().unwrap()["handle"].as_str().unwrap().to_string();

    let (gp, gs) = signed(format!(r#"{{"expiry":{},"call":["read","convert"]}}"#, now + 3600));
    let control = format!("/security=p:{gp},s:{gs}/resize=width:100/{h}");
    let r = server.get(&control);
    assert_eq!(r.status(), 200, "correctly signed URL refused: {control}");
    assert_eq!(common::decode(&r.bytes().unwrap()).width(), 100);

    let (ep, es) = signed(r#"{"expiry":1,"call":["read","convert"]}"#.to_string());
    let (rp, rs) = signed(format!(r#"{{"expiry":{},"call":["read"]}}"#, now + 3600));
    let (hp, hs) =
        signed(format!(r#"{{"expiry":{},"call":["read","convert"],"handle":"someOtherHandle00001"}}"#, now + 3600));
    let mut tampered = gp.clone().into_bytes();
    tampered[12] = if tampered[12] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let zeros = "0".repeat(64);

    let (malformed, unverifiable) = security_forms();
    let mut forms: Vec<String> = malformed.into_iter().chain(unverifiable).collect();
    forms.extend([
        format!("security=p:{ep},s:{es}"),
        format!("security=p:{rp},s:{rs}"),
        format!("security=p:{hp},s:{hs}"),
        format!("security=p:{gp},s:{}", sign("another-secret", &gp)),
        format!("security=p:{tampered},s:{gs}"),
        format!("security=p:{gp},s:{es}"),
        format!("security=p:{gp},s:{gs},s:{gs}"),
        format!("security=p:{gp},s:{}", &gs[..63]),
        format!("security=p:{gp},s:{gs}00"),
    ]);
    let mut cases: Vec<Case> = Vec::new();
    for f in &forms {
        cases.push(Case::new("secure", format!("/{f}/resize=width:100/{h}")));
        cases.push(Case::new("secure", format!("/resize=width:100/{f}/{h}")));
        cases.push(Case::new("secure", format!("/test/resize=width:100/{f}/output=format:png/{h}")));
    }
    for p in [
        format!("/resize=width:100/{h}"),
        format!("/{h}"),
        format!("/resize=width:100/{h}?policy={gp}&signature={zeros}"),
        format!("/{h}?policy={ep}&signature={es}"),
        format!("/{h}?policy={hp}&signature={hs}&dl=true"),
        format!("/b64/{}/b64://{}", b64u(r#"[{"name":"resize","params":{"width":100}}]"#), b64u(&h)),
    ] {
        cases.push(Case::new("secure", p));
    }

    let outcomes = run_all(&server.base, &cases);
    let mut failures = Vec::new();
    for (c, o) in cases.iter().zip(outcomes) {
        if let Some(f) = o.failure {
            failures.push(format!("GET {} -> {f}", short(&as_sent(&server.base, &c.path).unwrap_or_default(), 300)));
        }
    }
    match server.client().get(server.url(&control)).send() {
        Ok(r) if r.status() == 200 => {}
        Ok(r) => failures.push(format!("after the run: signed control -> {}", r.status())),
        Err(e) => failures.push(format!("after the run: signed control failed: {e}")),
    }
    eprintln!("secure: {} URLs with bad/forged security, {} failures", cases.len(), failures.len());
    assert!(failures.is_empty(), "{} of {} were mishandled:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
