//! Encoders, with settings matched to what sharp/libvips do by default so output sizes compare
//! fairly: JPEG 4:2:0 baseline without trellis, WebP lossy method 4, PNG zlib level 6.

use super::error::{PipelineError, Result};
use super::format::Format;
use super::job::OutputSpec;
use crate::plan::Rgba;
use image::{DynamicImage, ImageEncoder, RgbImage};

pub const DEFAULT_QUALITY: u8 = 80;
/// rav1e speed 10 is ~6x faster than speed 8 for ~12% more bytes (RUST-STACK.md §4): the only
/// setting that keeps an uncached AVIF under ~100 ms for an 800 px image on one core.
pub const AVIF_SPEED: u8 = 10;

pub fn encode(img: &DynamicImage, format: Format, spec: &OutputSpec) -> Result<Vec<u8>> {
    let quality = spec.quality.unwrap_or(DEFAULT_QUALITY).clamp(1, 100);
    match format {
        Format::Jpeg => jpeg(&flatten(img, bg_or_white(spec)), quality, spec),
        Format::Png => png(&keep_or_flatten(img, spec.background), spec.compress),
        Format::Webp => webp(&keep_or_flatten(img, spec.background), quality),
        Format::Avif => avif(&keep_or_flatten(img, spec.background), quality),
        Format::Gif => gif(&keep_or_flatten(img, spec.background)),
        // BMP without alpha (what every reader takes); TIFF keeps it
        Format::Bmp => write_with(image::ImageFormat::Bmp, &DynamicImage::ImageRgb8(flatten(img, bg_or_white(spec)))),
        Format::Tiff => write_with(image::ImageFormat::Tiff, &keep_or_flatten(img, spec.background)),
        other => Err(PipelineError::bad_option("output", "format", format!("cannot write {}", other.mime()))),
    }
}

/// Composite onto an opaque background (for formats without alpha, and for scoring).
pub(super) fn flatten(img: &DynamicImage, bg: Rgba) -> RgbImage {
    match img {
        DynamicImage::ImageRgba8(buf) => {
            let [br, bgc, bb, _] = bg.0.map(|c| c as u32);
            let mut out = RgbImage::new(buf.width(), buf.height());
            for (o, p) in out.pixels_mut().zip(buf.pixels()) {
                let [r, g, b, a] = p.0.map(|c| c as u32);
                let mix = |c: u32, back: u32| ((c * a + back * (255 - a) + 127) / 255) as u8;
                o.0 = [mix(r, br), mix(g, bgc), mix(b, bb)];
            }
            out
        }
        DynamicImage::ImageRgb8(buf) => buf.clone(),
        other => other.to_rgb8(),
    }
}

/// An explicit `background` flattens transparency even for formats that keep it.
fn keep_or_flatten(img: &DynamicImage, bg: Option<Rgba>) -> DynamicImage {
    match (img, bg) {
        (DynamicImage::ImageRgba8(_), Some(bg)) if bg.0[3] == 255 => DynamicImage::ImageRgb8(flatten(img, bg)),
        _ => img.clone(),
    }
}

fn jpeg(rgb: &RgbImage, quality: u8, spec: &OutputSpec) -> Result<Vec<u8>> {
    let mut c = turbojpeg::Compressor::new().map_err(|e| PipelineError::codec("JPEG encoder", e))?;
    let fail = |e: turbojpeg::Error| PipelineError::codec("JPEG encoder", e);
    c.set_quality(quality as i32).map_err(fail)?;
    c.set_subsamp(turbojpeg::Subsamp::Sub2x2).map_err(fail)?;
    c.set_optimize(spec.compress).map_err(fail)?;
    c.set_progressive(spec.progressive).map_err(fail)?;
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let image = turbojpeg::Image {
        pixels: rgb.as_raw().as_slice(),
        width: w,
        pitch: w * 3,
        height: h,
        format: turbojpeg::PixelFormat::RGB,
    };
    c.compress_to_vec(image).map_err(fail)
}

fn png(img: &DynamicImage, compress: bool) -> Result<Vec<u8>> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut out = Vec::new();
    let level = if compress { CompressionType::Best } else { CompressionType::Default };
    let enc = PngEncoder::new_with_quality(&mut out, level, FilterType::Adaptive);
    enc.write_image(img.as_bytes(), img.width(), img.height(), img.color().into())
        .map_err(|e| PipelineError::codec("PNG encoder", e))?;
    Ok(out)
}

fn webp(img: &DynamicImage, quality: u8) -> Result<Vec<u8>> {
    let (w, h) = (img.width(), img.height());
    let enc = match img {
        DynamicImage::ImageRgba8(b) => webp::Encoder::from_rgba(b.as_raw(), w, h),
        DynamicImage::ImageRgb8(b) => webp::Encoder::from_rgb(b.as_raw(), w, h),
        _ => return Err(PipelineError::codec("WebP encoder", "expects 8-bit RGB(A)")),
    };
    let mut config = webp::WebPConfig::new().map_err(|_| PipelineError::codec("WebP encoder", "libwebp config"))?;
    config.quality = quality as f32;
    config.method = 4;
    let mem = enc.encode_advanced(&config).map_err(|e| PipelineError::codec("WebP encoder", format!("{e:?}")))?;
    Ok(mem.to_vec())
}

fn avif(img: &DynamicImage, quality: u8) -> Result<Vec<u8>> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let enc = ravif::Encoder::new().with_quality(quality as f32).with_speed(AVIF_SPEED).with_num_threads(Some(1));
    let fail = |e: ravif::Error| PipelineError::codec("AVIF encoder", e);
    let out = match img {
        DynamicImage::ImageRgba8(b) => {
            let px: &[rgb::RGBA8] = rgb::bytemuck::cast_slice(b.as_raw());
            enc.encode_rgba(imgref::Img::new(px, w, h)).map_err(fail)?
        }
        DynamicImage::ImageRgb8(b) => {
            let px: &[rgb::RGB8] = rgb::bytemuck::cast_slice(b.as_raw());
            enc.encode_rgb(imgref::Img::new(px, w, h)).map_err(fail)?
        }
        _ => return Err(PipelineError::codec("AVIF encoder", "expects 8-bit RGB(A)")),
    };
    Ok(out.avif_file)
}

fn bg_or_white(spec: &OutputSpec) -> Rgba {
    spec.background.unwrap_or(Rgba::WHITE)
}

/// The `image` crate's own encoder for `format` (BMP, TIFF: uncompressed, as Filestack's are).
fn write_with(format: image::ImageFormat, img: &DynamicImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).map_err(|e| PipelineError::codec("image encoder", e))?;
    Ok(out.into_inner())
}

fn gif(img: &DynamicImage) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new_with_speed(&mut out, 10);
        enc.encode_frame(image::Frame::new(img.to_rgba8())).map_err(|e| PipelineError::codec("GIF encoder", e))?;
    }
    Ok(out)
}
