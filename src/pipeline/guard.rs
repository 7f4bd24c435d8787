//! Container checks before any decoder sees the bytes.
//!
//! Decoders trust what a file declares: PNG's `iCCP`, `zTXt` and `iTXt` chunks are zlib streams a
//! few kilobytes long that may inflate to gigabytes, and a WebP chunk may declare 4 GiB in a 1 KB
//! file (the decoder allocates what it declares). Here the container is walked first: declared
//! sizes must fit in the file, and the metadata an image carries (ICC, EXIF, XMP, text), counted
//! inflated, must stay under a cap. Inflating only counts bytes through a fixed buffer, so a bomb
//! is measured without ever being held in memory.

use super::error::{PipelineError, Result};
use super::format::Format;
use std::io::Read;

/// Refuse (422) containers whose declared sizes or metadata exceed what the limits allow.
pub fn check(bytes: &[u8], format: Format, max_metadata: u64) -> Result<()> {
    let metadata = match format {
        Format::Png => png_metadata(bytes, max_metadata)?,
        Format::Webp => webp_metadata(bytes)?,
        Format::Jpeg => jpeg_metadata(bytes),
        Format::Tiff => tiff_metadata(bytes)?,
        Format::Ico => ico_metadata(bytes, max_metadata)?,
        _ => 0,
    };
    if metadata > max_metadata {
        return Err(too_much(format, metadata, max_metadata));
    }
    Ok(())
}

fn too_much(format: Format, size: u64, max: u64) -> PipelineError {
    PipelineError::OverLimit(format!(
        "the {} carries {size} bytes of metadata (ICC, EXIF, XMP, text), over the limit of {max}",
        format.mime()
    ))
}

/// Bytes a zlib stream inflates to, counting at most `cap + 1` (a broken stream counts what
/// inflated before the error: decoders ignore such chunks).
fn inflated_len(stream: &[u8], cap: u64) -> u64 {
    let mut z = flate2::read::ZlibDecoder::new(stream).take(cap + 1);
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    while let Ok(n) = z.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    total
}

/// Sum of PNG metadata chunks (text, ICC, EXIF), compressed ones inflated.
fn png_metadata(b: &[u8], cap: u64) -> Result<u64> {
    let mut total = 0u64;
    let mut i = 8;
    while i + 12 <= b.len() {
        let len = u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
        let kind = &b[i + 4..i + 8];
        // a truncated last chunk is the decoder's business (it stops at the end of the data)
        let Some(data) = b.get(i + 8..i + 8 + len) else { break };
        total += match kind {
            b"iCCP" | b"zTXt" => after_nul(data, 1).map_or(0, |z| inflated_len(z, cap.saturating_sub(total))),
            b"iTXt" => itxt_len(data, cap.saturating_sub(total)),
            b"tEXt" | b"eXIf" => len as u64,
            b"IEND" => break,
            _ => 0,
        };
        if total > cap {
            return Ok(total);
        }
        i += 12 + len;
    }
    Ok(total)
}

/// The bytes after the first NUL (a keyword) and `skip` more bytes.
fn after_nul(data: &[u8], skip: usize) -> Option<&[u8]> {
    let nul = data.iter().position(|&c| c == 0)?;
    data.get(nul + 1 + skip..)
}

/// `iTXt`: keyword, NUL, compression flag, method, language, NUL, translated keyword, NUL, text.
fn itxt_len(data: &[u8], cap: u64) -> u64 {
    let Some(rest) = after_nul(data, 0) else { return data.len() as u64 };
    let compressed = rest.first() == Some(&1);
    let text = rest.get(2..).and_then(|r| after_nul(r, 0)).and_then(|r| after_nul(r, 0)).unwrap_or(&[]);
    if compressed {
        inflated_len(text, cap)
    } else {
        text.len() as u64
    }
}

/// WebP: every chunk must fit in the file; returns the size of ICCP, EXIF and XMP chunks.
fn webp_metadata(b: &[u8]) -> Result<u64> {
    let mut total = 0u64;
    let mut i = 12;
    while i + 8 <= b.len() {
        let kind = &b[i..i + 4];
        let len = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as u64;
        if i as u64 + 8 + len > b.len() as u64 {
            return Err(PipelineError::Corrupt(format!(
                "WebP chunk `{}` declares {len} bytes, past the end of the file",
                String::from_utf8_lossy(kind)
            )));
        }
        if matches!(kind, b"ICCP" | b"EXIF" | b"XMP ") {
            total += len;
        }
        i += 8 + len as usize + (len as usize & 1);
    }
    Ok(total)
}

/// JPEG: APP1 (EXIF, XMP), APP2 (ICC) and COM segments before the image data.
fn jpeg_metadata(b: &[u8]) -> u64 {
    super::jpeg_segments::segments(b)
        .filter(|(m, _)| matches!(m, 0xE1 | 0xE2 | 0xFE))
        .map(|(_, p)| p.len() as u64)
        .sum()
}

fn past_the_end(what: &str, size: u64) -> PipelineError {
    PipelineError::Corrupt(format!("{what} declares {size} bytes, past the end of the file"))
}

/// TIFF: every tag's value must fit in the file (the decoder allocates what a tag declares);
/// returns the size of the ICC, XMP, IPTC and Photoshop tags. BigTIFF is left to the decoder.
fn tiff_metadata(b: &[u8]) -> Result<u64> {
    let le = b.starts_with(b"II");
    let u16_at = |i: usize| {
        b.get(i..i + 2).map(|s| if le { u16::from_le_bytes([s[0], s[1]]) } else { u16::from_be_bytes([s[0], s[1]]) })
    };
    let u32_at = |i: usize| {
        b.get(i..i + 4).map(|s| {
            let a = [s[0], s[1], s[2], s[3]];
            if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        })
    };
    if u16_at(2) != Some(42) {
        return Ok(0);
    }
    let (mut total, mut ifd, mut seen) = (0u64, u32_at(4).unwrap_or(0) as usize, 0);
    while ifd != 0 && seen < 64 {
        seen += 1;
        let Some(count) = u16_at(ifd) else { break };
        for e in 0..count as usize {
            let entry = ifd + 2 + 12 * e;
            let (Some(tag), Some(kind), Some(n), Some(offset)) =
                (u16_at(entry), u16_at(entry + 2), u32_at(entry + 4), u32_at(entry + 8))
            else {
                break;
            };
            let size = n as u64 * tiff_type_size(kind);
            if size > 4 && offset as u64 + size > b.len() as u64 {
                return Err(past_the_end(&format!("TIFF tag {tag}"), size));
            }
            if matches!(tag, 700 | 33723 | 34377 | 34675) {
                total += size;
            }
        }
        ifd = u32_at(ifd + 2 + 12 * count as usize).unwrap_or(0) as usize;
    }
    Ok(total)
}

fn tiff_type_size(kind: u16) -> u64 {
    match kind {
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 | 16 | 17 | 18 => 8,
        _ => 1,
    }
}

/// ICO: each entry must fit in the file; embedded PNGs are checked like PNG files (the `image`
/// crate decodes them without limits).
fn ico_metadata(b: &[u8], cap: u64) -> Result<u64> {
    let count = b.get(4..6).map_or(0, |c| u16::from_le_bytes([c[0], c[1]])) as usize;
    let mut total = 0u64;
    for e in 0..count {
        let Some(entry) = b.get(6 + 16 * e..6 + 16 * (e + 1)) else { break };
        let size = u32::from_le_bytes([entry[8], entry[9], entry[10], entry[11]]) as u64;
        let offset = u32::from_le_bytes([entry[12], entry[13], entry[14], entry[15]]) as u64;
        let Some(image) = b.get(offset as usize..(offset + size) as usize) else {
            return Err(past_the_end("ICO entry", size));
        };
        if image.starts_with(b"\x89PNG\r\n\x1a\n") {
            total += png_metadata(image, cap.saturating_sub(total))?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend_from_slice(&[0; 4]); // CRC: not checked here
        c
    }

    fn zlib_zeros(n: usize) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        let block = vec![0u8; 1 << 20];
        for _ in 0..n >> 20 {
            z.write_all(&block).unwrap();
        }
        z.finish().unwrap()
    }

    fn png_with(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
        p.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]));
        p.extend(chunk(kind, data));
        p.extend(chunk(b"IEND", &[]));
        p
    }

    #[test]
    fn png_compressed_chunks_are_measured_inflated() {
        let bomb = zlib_zeros(64 << 20);
        assert!(bomb.len() < 1 << 20);
        let mut iccp = b"icc\0\0".to_vec();
        iccp.extend(&bomb);
        let e = check(&png_with(b"iCCP", &iccp), Format::Png, 16 << 20).unwrap_err();
        assert!(e.to_string().contains("metadata"), "{e}");
        let mut itxt = b"k\0\x01\0en\0\0".to_vec();
        itxt.extend(&bomb);
        assert!(check(&png_with(b"iTXt", &itxt), Format::Png, 16 << 20).is_err());
        let mut ztxt = b"k\0\0".to_vec();
        ztxt.extend(zlib_zeros(1 << 20));
        assert!(check(&png_with(b"zTXt", &ztxt), Format::Png, 16 << 20).is_ok());
    }

    #[test]
    fn webp_chunks_must_fit_in_the_file() {
        let mut w = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        w.extend(10u32.to_le_bytes());
        w.extend([0u8; 10]);
        w.extend(b"ICCP");
        w.extend(0xFFFF_FFF0u32.to_le_bytes());
        w.extend([0u8; 100]);
        let e = check(&w, Format::Webp, 16 << 20).unwrap_err();
        assert!(e.to_string().contains("past the end"), "{e}");
    }

    #[test]
    fn jpeg_segments_are_summed() {
        let mut j = vec![0xFF, 0xD8];
        for _ in 0..4 {
            j.extend([0xFF, 0xE2, 0xFF, 0xFF]);
            j.extend(vec![0u8; 0xFFFD]);
        }
        j.extend([0xFF, 0xD9]);
        assert!(check(&j, Format::Jpeg, 200_000).is_err());
        assert!(check(&j, Format::Jpeg, 300_000).is_ok());
    }

    #[test]
    fn ico_entries_and_tiff_tags_are_checked() {
        let mut iccp = b"icc\0\0".to_vec();
        iccp.extend(zlib_zeros(64 << 20));
        let png = png_with(b"iCCP", &iccp);
        let mut ico = vec![0, 0, 1, 0, 1, 0, 16, 16, 0, 0, 1, 0, 32, 0];
        ico.extend((png.len() as u32).to_le_bytes());
        ico.extend(22u32.to_le_bytes());
        ico.extend(&png);
        assert!(check(&ico, Format::Ico, 16 << 20).is_err());
        // one IFD whose ICC tag claims 1 GiB
        let mut t = b"II*\0".to_vec();
        t.extend(8u32.to_le_bytes());
        t.extend(1u16.to_le_bytes());
        t.extend(34675u16.to_le_bytes());
        t.extend(7u16.to_le_bytes());
        t.extend((1u32 << 30).to_le_bytes());
        t.extend(26u32.to_le_bytes());
        t.extend(0u32.to_le_bytes());
        assert!(check(&t, Format::Tiff, 16 << 20).unwrap_err().to_string().contains("past the end"));
    }
}
