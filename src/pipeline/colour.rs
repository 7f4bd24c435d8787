//! Embedded colour profiles: pixels are converted to sRGB (what browsers assume for untagged
//! images, and outputs carry no profile), so a Display P3 or Adobe RGB photo keeps its colours.
//! moxcms is pure Rust, already a dependency of `image`, and ~4× faster than lcms2 here.

use image::DynamicImage;

/// The ICC profile of a JPEG: APP2 `ICC_PROFILE` chunks, joined in sequence order.
pub fn jpeg_icc(b: &[u8]) -> Option<Vec<u8>> {
    let mut chunks: Vec<(u8, &[u8])> = super::jpeg_segments::segments(b)
        .filter(|(marker, payload)| *marker == 0xE2 && payload.len() > 14 && payload.starts_with(b"ICC_PROFILE\0"))
        .map(|(_, payload)| (payload[12], &payload[14..]))
        .collect();
    if chunks.is_empty() {
        return None;
    }
    chunks.sort_by_key(|(seq, _)| *seq);
    Some(chunks.into_iter().flat_map(|(_, c)| c.iter().copied()).collect())
}

/// Convert 8-bit RGB(A) pixels from `icc` to sRGB in place. Profiles that cannot be read or
/// are not RGB leave the pixels as they are.
pub fn to_srgb(img: &mut DynamicImage, icc: &[u8]) {
    use moxcms::{ColorProfile, Layout, TransformOptions};
    let Ok(src) = ColorProfile::new_from_slice(icc) else { return };
    let dst = ColorProfile::new_srgb();
    let (layout, buf): (Layout, &mut [u8]) = match img {
        DynamicImage::ImageRgb8(b) => (Layout::Rgb, b.as_mut()),
        DynamicImage::ImageRgba8(b) => (Layout::Rgba, b.as_mut()),
        _ => return,
    };
    let Ok(transform) = src.create_transform_8bit(layout, &dst, layout, TransformOptions::default()) else {
        tracing::debug!("embedded colour profile not usable; pixels left as they are");
        return;
    };
    let input = buf.to_vec();
    if let Err(e) = transform.transform(&input, buf) {
        tracing::debug!(error = ?e, "colour conversion failed; pixels left as they are");
    }
}
