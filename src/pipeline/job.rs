//! Compiles a validated plan into image operations and output settings.

use super::format::Format;
use crate::error::{Error, Result};
use crate::plan::{Param, Plan, Rgba, Task};

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
    /// Blur (or pixelate, when `pixelate`) rectangles or the ellipses inscribed in them.
    Partial {
        rects: Vec<[u32; 4]>,
        amount: f32,
        oval: bool,
        pixelate: bool,
    },
    /// Overlay another stored image: `size` percent of its own size, placed by `align`.
    Watermark {
        handle: String,
        size: f32,
        align: Align,
    },
    Border {
        width: u32,
        color: Rgba,
        background: Rgba,
    },
}

/// What to write at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    /// `None` keeps the input's format (or PNG for formats we do not write).
    pub format: Option<Format>,
    /// The format is chosen from the request's `Accept` (and the response varies on it).
    pub negotiate: bool,
    pub quality: Option<u8>,
    pub progressive: bool,
    pub compress: bool,
    pub background: Option<Rgba>,
}

/// Answer something other than an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Image,
    /// `imagesize`: JSON width/height of the source.
    Size,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageJob {
    pub ops: Vec<Op>,
    pub output: OutputSpec,
    pub answer: Answer,
}

impl ImageJob {
    pub fn compile(plan: &Plan) -> Result<ImageJob> {
        if let Some(task) = plan.unimplemented() {
            return Err(Error::NotImplemented { task: task.name().to_string() });
        }
        let mut job = ImageJob {
            ops: Vec::new(),
            output: OutputSpec {
                format: None,
                negotiate: false,
                quality: None,
                progressive: false,
                compress: false,
                background: None,
            },
            answer: Answer::Image,
        };
        for task in plan.processing() {
            job.add(task)?;
        }
        Ok(job)
    }

    /// Stored files the job reads besides its source (watermarks).
    pub fn overlays(&self) -> Vec<&str> {
        self.ops
            .iter()
            .filter_map(|op| match op {
                Op::Watermark { handle, .. } => Some(handle.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Output formats that depend on `Accept`.
    pub fn negotiates(&self) -> bool {
        self.output.negotiate && self.output.format.is_none()
    }

    fn add(&mut self, task: &Task) -> Result<()> {
        let num = |k: &str| task.get(k).and_then(Param::as_f64);
        let color = |k: &str, default: Rgba| match task.get(k) {
            Some(Param::Color(c, _)) => *c,
            _ => default,
        };
        let op = match task.name() {
            "resize" => Op::Resize {
                width: num("width").map(|v| dimension("width", v)).transpose()?,
                height: num("height").map(|v| dimension("height", v)).transpose()?,
                fit: match task.get("fit").and_then(Param::as_str) {
                    Some("crop") => Fit::Crop,
                    Some("scale") => Fit::Scale,
                    Some("max") => Fit::Max,
                    _ => Fit::Clip,
                },
                align: align(task.get("align")),
            },
            "crop" => {
                let d: Vec<u32> = match task.get("dim") {
                    Some(Param::List(items)) => items.iter().filter_map(Param::as_i64).map(|v| v as u32).collect(),
                    _ => return Err(Error::bad_option("crop", "dim", "`crop` needs dim:[x,y,width,height]")),
                };
                Op::Crop { x: d[0], y: d[1], width: d[2], height: d[3] }
            }
            "rotate" => match task.get("deg") {
                // EXIF orientation is always applied on decode, so `deg:exif` has nothing left to do.
                None | Some(Param::Str(_)) => return Ok(()),
                Some(p) => Op::Rotate {
                    degrees: p.as_i64().unwrap_or(0) as u32 % 360,
                    background: color("background", color("color", Rgba::WHITE)),
                },
            },
            "flip" => Op::Flip,
            "flop" => Op::Flop,
            "monochrome" => Op::Monochrome,
            "negative" => Op::Negative,
            "blur" => Op::Blur { sigma: num("amount").unwrap_or(2.0) as f32 },
            "sharpen" => Op::Sharpen { sigma: num("amount").unwrap_or(2.0) as f32 },
            "sepia" => Op::Sepia { tone: num("tone").unwrap_or(80.0) as u8 },
            "blackwhite" => Op::BlackWhite { threshold: num("threshold").unwrap_or(50.0) as u8 },
            "pixelate" => Op::Pixelate { block: num("amount").unwrap_or(2.0).max(1.0) as u32 },
            "modulate" => Op::Modulate {
                brightness: num("brightness").unwrap_or(100.0) as f32 / 100.0,
                saturation: num("saturation").unwrap_or(100.0) as f32 / 100.0,
                hue: num("hue").unwrap_or(0.0) as f32,
            },
            "circle" => Op::Circle { background: color("background", Rgba::TRANSPARENT) },
            "rounded_corners" => Op::RoundedCorners {
                radius: match task.get("radius") {
                    Some(Param::Str(_)) => None,
                    p => Some(p.and_then(Param::as_i64).unwrap_or(10) as u32),
                },
                blur: num("blur").unwrap_or(0.3) as f32,
                background: color("background", Rgba::TRANSPARENT),
            },
            "partial_blur" | "partial_pixelate" => {
                let pixelate = task.name() == "partial_pixelate";
                let rects = match task.get("objects") {
                    Some(Param::List(items)) => items
                        .iter()
                        .filter_map(|r| match r {
                            Param::List(v) if v.len() == 4 => {
                                let n: Vec<u32> = v.iter().filter_map(Param::as_i64).map(|x| x as u32).collect();
                                Some([n[0], n[1], n[2], n[3]])
                            }
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let default = if pixelate { 10.0 } else { 4.0 };
                let amount = if pixelate { num("amount") } else { num("blur").or(num("amount")) };
                Op::Partial {
                    rects,
                    amount: amount.unwrap_or(default) as f32,
                    oval: task.get("type").and_then(Param::as_str) == Some("oval"),
                    pixelate,
                }
            }
            "watermark" => Op::Watermark {
                handle: {
                    let file = task.get("file").and_then(Param::as_str).unwrap_or_default();
                    if !crate::url::is_valid_handle(file) {
                        return Err(Error::bad_option(
                            "watermark",
                            "file",
                            "the watermark file must be a stored file's handle",
                        ));
                    }
                    file.to_string()
                },
                size: num("size").unwrap_or(100.0) as f32,
                align: align(task.get("position")),
            },
            "border" => Op::Border {
                width: num("width").unwrap_or(2.0) as u32,
                color: color("color", Rgba::BLACK),
                background: color("background", Rgba::WHITE),
            },
            "output" => return self.output_task(task),
            "quality" => {
                self.output.quality = num("value").map(|q| q as u8);
                return Ok(());
            }
            "pjpg" => {
                self.output.format = Some(Format::Jpeg);
                self.output.progressive = true;
                if let Some(q) = num("quality") {
                    self.output.quality = Some(q.clamp(1.0, 100.0) as u8);
                }
                return Ok(());
            }
            "compress" => {
                self.output.compress = true;
                return Ok(());
            }
            "auto_image" => {
                self.output.negotiate = true;
                return Ok(());
            }
            "imagesize" => {
                self.answer = Answer::Size;
                return Ok(());
            }
            // Metadata is never copied to outputs, so stripping has nothing to do.
            "no_metadata" => return Ok(()),
            other => return Err(Error::NotImplemented { task: other.to_string() }),
        };
        self.ops.push(op);
        Ok(())
    }

    fn output_task(&mut self, task: &Task) -> Result<()> {
        if let Some(word) = task.get("format").and_then(Param::as_str) {
            match Format::from_output_word(word)? {
                Some(f) => {
                    self.output.format = Some(f);
                    self.output.progressive = word == "pjpg";
                    self.output.negotiate = false;
                }
                None => {
                    self.output.format = None;
                    self.output.negotiate = true;
                }
            }
        }
        if let Some(Param::Int(q)) = task.get("quality") {
            self.output.quality = Some(*q as u8);
        }
        if let Some(Param::Bool(c)) = task.get("compress") {
            self.output.compress = *c;
        }
        if let Some(Param::Color(c, _)) = task.get("background") {
            self.output.background = Some(*c);
        }
        if let Some(Param::Str(cs)) = task.get("colorspace") {
            if cs == "cmyk" {
                return Err(Error::bad_option("output", "colorspace", "CMYK output is not supported; use rgb"));
            }
        }
        Ok(())
    }
}

fn dimension(option: &str, v: f64) -> Result<u32> {
    let px = v.round();
    if px < 1.0 {
        return Err(Error::bad_option("resize", option, format!("{option} must be at least 1 pixel")));
    }
    Ok(px as u32)
}

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
