//! Decoding with shrink-on-load and EXIF orientation.
//!
//! JPEG goes through libjpeg-turbo, which can scale by 1/2, 1/4 or 1/8 inside the DCT: a
//! 6000×4000 photo bound for 800 px is decoded at 1500×1000 and never exists at full size.
//! Everything else goes through the `image` crate with allocation limits.

use super::error::{PipelineError, Result};
use super::format::Format;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};
use std::io::Cursor;

/// What a header says, before any pixel is decoded.
#[derive(Debug, Clone)]
pub struct Probe {
    pub format: Format,
    /// Stored dimensions (before orientation).
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
    /// Embedded ICC profile, if any.
    pub icc: Option<Vec<u8>>,
}

impl Probe {
    /// Dimensions as displayed, after EXIF orientation.
    pub fn oriented(&self) -> (u32, u32) {
        if swaps_axes(self.orientation) {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

pub fn swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    )
}

/// Read the header and refuse images over the pixel limit before decoding them. The container
/// is checked first (declared sizes, metadata), so no decoder allocates what a file only claims.
pub fn probe(bytes: &[u8], format: Format, limits: &super::Limits) -> Result<Probe> {
    super::guard::check(bytes, format, limits.max_metadata_bytes)?;
    let max_pixels = limits.max_pixels;
    let jpeg_header = match format {
        Format::Jpeg => turbojpeg::read_header(bytes).ok(),
        _ => None,
    };
    let p = match jpeg_header {
        Some(h) => Probe {
            format,
            width: h.width as u32,
            height: h.height as u32,
            orientation: jpeg_orientation(bytes),
            icc: super::colour::jpeg_icc(bytes),
        },
        // not a JPEG, or one libjpeg-turbo refuses: the image crate is more lenient
        None => {
            let mut decoder = reader(bytes, max_pixels)?.into_decoder().map_err(|e| corrupt(format, e))?;
            let (width, height) = decoder.dimensions();
            let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
            let icc = decoder.icc_profile().ok().flatten();
            Probe { format, width, height, orientation, icc }
        }
    };
    check_pixels(p.width, p.height, max_pixels)?;
    Ok(p)
}

fn check_pixels(w: u32, h: u32, max_pixels: u64) -> Result<()> {
    let pixels = w as u64 * h as u64;
    if w == 0 || h == 0 {
        return Err(PipelineError::Corrupt(format!("image has no pixels ({w}x{h})")));
    }
    if pixels > max_pixels {
        return Err(PipelineError::OverLimit(format!(
            "image is {w}x{h} = {pixels} pixels, over the limit of {max_pixels}"
        )));
    }
    Ok(())
}

fn corrupt(format: Format, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Corrupt(format!("cannot decode {} source: {e}", format.mime()))
}

fn reader(bytes: &[u8], max_pixels: u64) -> Result<ImageReader<Cursor<&[u8]>>> {
    let mut r =
        ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| PipelineError::codec("decoder", e))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(65_535);
    limits.max_image_height = Some(65_535);
    // 8 bytes a pixel covers 16-bit RGBA; anything beyond is a bomb.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(64 << 20));
    r.limits(limits);
    Ok(r)
}

/// Decode to 8-bit RGB or RGBA, upright. `shrink_to` is the smallest (displayed) size the plan
/// needs; the decoder may return anything at least that large.
pub fn decode(
    bytes: &[u8],
    probe: &Probe,
    shrink_to: Option<(u32, u32)>,
    limits: &super::Limits,
) -> Result<DynamicImage> {
    let max_pixels = limits.max_pixels;
    let turbo = match probe.format {
        Format::Jpeg => decode_jpeg(bytes, probe, shrink_to, max_pixels).ok(),
        _ => None,
    };
    // libjpeg-turbo stops on warnings (e.g. extraneous bytes before a marker) that the pure-Rust
    // decoder tolerates, so a JPEG it refuses gets a second chance there.
    let mut img = match turbo {
        Some(img) => img,
        None => {
            let decoder = reader(bytes, max_pixels)?.into_decoder().map_err(|e| corrupt(probe.format, e))?;
            DynamicImage::from_decoder(decoder).map_err(|e| corrupt(probe.format, e))?
        }
    };
    img = normalize(img);
    img.apply_orientation(probe.orientation);
    Ok(img)
}

/// 8-bit RGB, or RGBA when there is an alpha channel.
fn normalize(img: DynamicImage) -> DynamicImage {
    match img {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => img,
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.to_rgba8()),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    }
}

/// The shrink-on-load reduction `decode` applies for `shrink_to` (1: none): decodes at one scale
/// are interchangeable, whatever target asked for them.
pub fn scale(probe: &Probe, shrink_to: Option<(u32, u32)>) -> u32 {
    match (probe.format, shrink_to) {
        (Format::Jpeg, Some(target)) => {
            let target = if swaps_axes(probe.orientation) { (target.1, target.0) } else { target };
            dct_denominator(probe.width, probe.height, target) as u32
        }
        _ => 1,
    }
}

/// Largest power-of-two DCT reduction that keeps the image at least `target` in both axes.
fn dct_denominator(w: u32, h: u32, target: (u32, u32)) -> usize {
    let mut denom = 1;
    for d in [2usize, 4, 8] {
        let (sw, sh) = ((w as usize).div_ceil(d), (h as usize).div_ceil(d));
        if sw >= target.0 as usize && sh >= target.1 as usize {
            denom = d;
        }
    }
    denom
}

fn decode_jpeg(bytes: &[u8], probe: &Probe, shrink_to: Option<(u32, u32)>, max_pixels: u64) -> Result<DynamicImage> {
    let header = turbojpeg::read_header(bytes).map_err(|e| corrupt(Format::Jpeg, e))?;
    // libjpeg-turbo cannot turn CMYK/YCCK into RGB; the pure-Rust decoder can.
    if matches!(header.colorspace, turbojpeg::Colorspace::CMYK | turbojpeg::Colorspace::YCCK) {
        let decoder = reader(bytes, max_pixels)?.into_decoder().map_err(|e| corrupt(Format::Jpeg, e))?;
        return DynamicImage::from_decoder(decoder).map_err(|e| corrupt(Format::Jpeg, e));
    }
    let mut d = turbojpeg::Decompressor::new().map_err(|e| PipelineError::codec("JPEG decoder", e))?;
    // the target is in displayed axes; the DCT works on stored axes (`scale` turns it)
    let denom = scale(probe, shrink_to) as usize;
    if denom > 1 {
        d.set_scaling_factor(turbojpeg::ScalingFactor::new(1, denom))
            .map_err(|e| PipelineError::codec("JPEG decoder", e))?;
    }
    let scaled = d.read_header(bytes).map_err(|e| corrupt(Format::Jpeg, e))?.scaled(d.scaling_factor());
    let (w, h) = (scaled.width, scaled.height);
    let mut pixels = vec![0u8; w * h * 3];
    let image = turbojpeg::Image {
        pixels: pixels.as_mut_slice(),
        width: w,
        pitch: w * 3,
        height: h,
        format: turbojpeg::PixelFormat::RGB,
    };
    d.decompress(bytes, image).map_err(|e| corrupt(Format::Jpeg, e))?;
    let buf = image::RgbImage::from_raw(w as u32, h as u32, pixels)
        .ok_or_else(|| PipelineError::codec("JPEG decoder", "buffer size"))?;
    Ok(DynamicImage::ImageRgb8(buf))
}

/// EXIF orientation from a JPEG's APP1 segment (libjpeg-turbo does not read EXIF).
fn jpeg_orientation(b: &[u8]) -> Orientation {
    super::jpeg_segments::segments(b)
        .filter(|(marker, payload)| *marker == 0xE1 && payload.starts_with(b"Exif\0\0"))
        .find_map(|(_, payload)| Orientation::from_exif_chunk(&payload[6..]))
        .unwrap_or(Orientation::NoTransforms)
}
