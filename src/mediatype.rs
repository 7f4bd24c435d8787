//! Media types of stored files: what an upload may declare, what its bytes say, and what may be
//! shown inline on the origin's domain.
//!
//! The origin serves files under its own domain, so a stored HTML or SVG page with a script would
//! run with that domain's cookies and storage (stored XSS). Only types that cannot carry script
//! (raster images, audio, video, plain text, JSON) are served inline; everything else goes out as
//! an attachment, and every file answer carries a sandboxing `Content-Security-Policy`.

use crate::error::{Error, Result};

/// What every file answer carries: no script, no plugin, no same-origin document (the policy
/// raw.githubusercontent.com uses for user content). Images still display.
pub const SANDBOX_CSP: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox";

const OCTET: &str = "application/octet-stream";

/// A declared type, checked and reduced to its essence (`type/subtype`, lower case): control
/// characters (header injection) or anything that is not a media type are refused with a 400.
pub fn parse_declared(declared: &str) -> Result<String> {
    let bad = |why: &str| Error::bad_option("store", "mimetype", format!("mimetype {declared:?} {why}"));
    if declared.chars().any(|c| c.is_control()) {
        return Err(bad("contains control characters"));
    }
    let essence = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let token = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c));
    match essence.split_once('/') {
        Some((t, s)) if token(t) && token(s) => Ok(essence),
        _ => Err(bad("is not a media type (type/subtype)")),
    }
}

/// Audio recognised from the bytes themselves (the stored type of an upload whose name says
/// nothing, or lies): the container's magic, or an MPEG audio frame header.
pub fn sniff_audio(b: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| b.get(offset..offset + magic.len()) == Some(magic);
    Some(match () {
        _ if at(0, b"fLaC") => "audio/flac",
        _ if at(0, b"OggS") => "audio/ogg",
        _ if at(0, b"RIFF") && at(8, b"WAVE") => "audio/wav",
        _ if at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC")) => "audio/aiff",
        _ if at(4, b"ftyp") && (at(8, b"M4A ") || at(8, b"M4B ")) => "audio/mp4",
        _ if at(0, b"ID3") => "audio/mpeg",
        _ if b.len() >= 4 && b[0] == 0xFF && b[1] & 0xE0 == 0xE0 && b[1] & 0x06 != 0 && b[2] & 0xF0 != 0xF0 => {
            "audio/mpeg"
        }
        _ => return None,
    })
}

/// Active content recognised from the bytes themselves: markup a browser would run.
pub fn sniff_active(bytes: &[u8]) -> Option<&'static str> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    let starts = |p: &str| head.starts_with(p);
    if starts("<svg") || (starts("<?xml") && head.contains("<svg")) {
        Some("image/svg+xml")
    } else if ["<!doctype html", "<html", "<script", "<head", "<body", "<iframe"].iter().any(|p| starts(p)) {
        Some("text/html")
    } else if starts("<?xml") {
        Some("text/xml")
    } else {
        None
    }
}

/// The type to store: a known type, or `application/octet-stream` for one nobody registered.
pub fn allow_listed(mime: &str) -> String {
    if mime == OCTET || mime_guess::get_mime_extensions_str(mime).is_some() {
        mime.to_string()
    } else {
        OCTET.to_string()
    }
}

/// Types that cannot carry script and may be shown inline. SVG only when the operator says so.
pub fn inline_safe(mime: &str, inline_svg: bool) -> bool {
    let essence = mime.split(';').next().unwrap_or("").trim();
    match essence.split_once('/') {
        Some(("image", "svg+xml")) => inline_svg,
        Some(("image" | "audio" | "video", _)) => true,
        _ => matches!(essence, "text/plain" | "text/csv" | "application/json"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_are_checked() {
        assert_eq!(parse_declared("Image/PNG; charset=x").unwrap(), "image/png");
        assert!(parse_declared("image/png\r\nX-Evil: 1").is_err());
        assert!(parse_declared("image/png\u{7f}").is_err());
        assert!(parse_declared("png").is_err());
        assert!(parse_declared("a/b/c").is_err());
    }

    #[test]
    fn active_content_is_recognised() {
        assert_eq!(sniff_active(b"\xef\xbb\xbf  <!DOCTYPE html><script>"), Some("text/html"));
        assert_eq!(sniff_active(b"<?xml version='1.0'?><svg onload=alert(1)>"), Some("image/svg+xml"));
        assert_eq!(sniff_active(b"hello"), None);
    }

    #[test]
    fn only_script_free_types_are_inline() {
        assert!(inline_safe("image/jpeg", false));
        assert!(!inline_safe("image/svg+xml", false));
        assert!(inline_safe("image/svg+xml", true));
        for t in ["text/html", "application/xhtml+xml", "text/xml", "application/pdf", "text/javascript"] {
            assert!(!inline_safe(t, true), "{t}");
        }
        assert_eq!(allow_listed("application/x-made-up"), OCTET);
        assert_eq!(allow_listed("application/pdf"), "application/pdf");
    }
}
