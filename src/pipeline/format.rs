//! Image formats: sniffing input bytes and describing outputs.

use super::error::{PipelineError, Result};
pub use crate::format::Format;

/// What the bytes are, by their magic numbers (never by file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Image(Format),
    /// Recognised but not decodable here (HEIF, SVG).
    Unsupported(&'static str),
    Unknown,
}

pub fn sniff(b: &[u8]) -> Sniffed {
    let starts = |m: &[u8]| b.starts_with(m);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Sniffed::Image(Format::Jpeg);
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Sniffed::Image(Format::Png);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Sniffed::Image(Format::Gif);
    }
    if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return Sniffed::Image(Format::Webp);
    }
    if b.len() >= 12 && &b[4..8] == b"ftyp" {
        return match &b[8..12] {
            b"avif" | b"avis" => Sniffed::Image(Format::Avif),
            b"heic" | b"heix" | b"mif1" | b"msf1" | b"hevc" => Sniffed::Unsupported("image/heif"),
            _ => Sniffed::Unknown,
        };
    }
    if starts(b"BM") && b.len() > 26 {
        return Sniffed::Image(Format::Bmp);
    }
    if starts(b"II*\0") || starts(b"MM\0*") {
        return Sniffed::Image(Format::Tiff);
    }
    if starts(&[0, 0, 1, 0]) && b.len() > 6 {
        return Sniffed::Image(Format::Ico);
    }
    let head = String::from_utf8_lossy(&b[..b.len().min(256)]).to_ascii_lowercase();
    if head.trim_start().starts_with("<svg") || (head.trim_start().starts_with("<?xml") && head.contains("<svg")) {
        return Sniffed::Unsupported("image/svg+xml");
    }
    Sniffed::Unknown
}

/// The image format of `bytes`, or a 4xx naming why it cannot be decoded.
pub fn require_decodable(bytes: &[u8]) -> Result<Format> {
    if bytes.is_empty() {
        return Err(PipelineError::Empty);
    }
    match sniff(bytes) {
        Sniffed::Image(f) if f.decodable() => Ok(f),
        Sniffed::Image(f) => Err(PipelineError::Unsupported(format!("{} input is not supported", f.mime()))),
        Sniffed::Unsupported(m) => Err(PipelineError::Unsupported(format!("{m} input is not supported"))),
        Sniffed::Unknown => Err(PipelineError::Unsupported(
            "the source is not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF, ICO)".into(),
        )),
    }
}
