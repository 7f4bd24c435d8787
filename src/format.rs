//! Image formats Refract reads and writes: a leaf type the plan (`output=format:`), the
//! pipeline (sniffing, encoders) and the service layer (negotiation) share.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Avif,
    Gif,
    Bmp,
    Tiff,
    Ico,
}

impl Format {
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Avif => "image/avif",
            Format::Gif => "image/gif",
            Format::Bmp => "image/bmp",
            Format::Tiff => "image/tiff",
            Format::Ico => "image/x-icon",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Avif => "avif",
            Format::Gif => "gif",
            Format::Bmp => "bmp",
            Format::Tiff => "tiff",
            Format::Ico => "ico",
        }
    }

    /// Formats Refract writes when the URL does not name one (an input in another format, BMP
    /// or TIFF say, comes out as PNG); BMP and TIFF are written only when asked for.
    pub fn encodable(self) -> bool {
        matches!(self, Format::Jpeg | Format::Png | Format::Webp | Format::Avif | Format::Gif)
    }

    /// Formats Refract can read.
    pub fn decodable(self) -> bool {
        self != Format::Avif
    }

    /// From an `output=format:` word.
    pub fn from_output_word(word: &str) -> Result<Option<Format>> {
        Ok(Some(match word {
            "jpg" | "jpeg" | "pjpg" => Format::Jpeg,
            "png" => Format::Png,
            "webp" => Format::Webp,
            "avif" => Format::Avif,
            "gif" => Format::Gif,
            "bmp" => Format::Bmp,
            "tiff" => Format::Tiff,
            "auto" => return Ok(None),
            other => {
                return Err(Error::bad_option(
                    "output",
                    "format",
                    format!("output format `{other}` is not supported for images; supported: jpg, pjpg, png, webp, avif, gif, bmp, tiff, auto"),
                ))
            }
        }))
    }
}
