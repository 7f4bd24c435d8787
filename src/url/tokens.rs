//! Low-level lexing shared by the path, option and source parsers.

use crate::error::{Error, Result};
use base64::Engine;

/// A slice of the input and where it starts (so the source can take "the rest of the path").
#[derive(Debug, Clone, Copy)]
pub struct Token<'a> {
    pub text: &'a str,
    pub start: usize,
}

/// What the byte at `i` means to the lexer; encoded forms count like the literal ones.
enum Lex {
    Quote,
    Open,
    Close,
    Other,
}

fn lex_at(b: &[u8], i: usize) -> (Lex, usize) {
    match b[i] {
        b'"' => (Lex::Quote, 1),
        b'[' => (Lex::Open, 1),
        b']' => (Lex::Close, 1),
        b'%' if i + 2 < b.len() => match (b[i + 1], b[i + 2].to_ascii_uppercase()) {
            (b'2', b'2') => (Lex::Quote, 3),
            (b'5', b'B') => (Lex::Open, 3),
            (b'5', b'D') => (Lex::Close, 3),
            _ => (Lex::Other, 1),
        },
        _ => (Lex::Other, 1),
    }
}

/// Positions of `sep` outside quotes and brackets. An unterminated quote or bracket swallows the
/// rest of the input (the callers report it when it matters).
fn top_level_positions(s: &str, sep: u8, first_only: bool) -> Vec<usize> {
    let b = s.as_bytes();
    let (mut depth, mut quoted, mut i) = (0usize, false, 0usize);
    let mut out = Vec::new();
    while i < b.len() {
        let (lex, len) = lex_at(b, i);
        match lex {
            Lex::Quote => quoted = !quoted,
            Lex::Open if !quoted => depth += 1,
            Lex::Close if !quoted => depth = depth.saturating_sub(1),
            Lex::Other if !quoted && depth == 0 && b[i] == sep => {
                out.push(i);
                if first_only {
                    break;
                }
            }
            _ => {}
        }
        i += len;
    }
    out
}

/// Split on `sep` at the top level.
pub fn split_top(s: &str, sep: u8) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut start = 0;
    for pos in top_level_positions(s, sep, false) {
        tokens.push(Token { text: &s[start..pos], start });
        start = pos + 1;
    }
    tokens.push(Token { text: &s[start..], start });
    tokens
}

/// First top-level occurrence of `sep`.
pub fn find_top(s: &str, sep: u8) -> Option<usize> {
    top_level_positions(s, sep, true).first().copied()
}

/// Deepest bracket nesting in `s` (bounds recursion on hostile input).
pub fn nesting_depth(s: &str) -> usize {
    let b = s.as_bytes();
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while i < b.len() {
        let (lex, len) = lex_at(b, i);
        match lex {
            Lex::Open => {
                depth += 1;
                max = max.max(depth);
            }
            Lex::Close => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += len;
    }
    max
}

/// The inside of `"…"` or `%22…%22`; `None` when `s` is not quoted; an error when only one end is.
pub fn strip_quotes(s: &str) -> Result<Option<&str>> {
    let open = quote_len_at_start(s);
    let close = quote_len_at_end(s);
    match (open, close) {
        (0, 0) => Ok(None),
        (o, c) if o > 0 && c > 0 && s.len() >= o + c => Ok(Some(&s[o..s.len() - c])),
        _ => Err(Error::bad(format!("unterminated quote in `{s}`"))),
    }
}

/// `s` starts with `prefix`, ASCII case-insensitively (byte-wise: safe on any UTF-8).
pub fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.as_bytes().get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// `s` ends with `suffix`, ASCII case-insensitively.
pub fn ends_with_ci(s: &str, suffix: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= suffix.len() && b[b.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

pub fn quote_len_at_start(s: &str) -> usize {
    if s.starts_with('"') {
        1
    } else if starts_with_ci(s, "%22") {
        3
    } else {
        0
    }
}

pub fn quote_len_at_end(s: &str) -> usize {
    if s.ends_with('"') {
        1
    } else if ends_with_ci(s, "%22") {
        3
    } else {
        0
    }
}

/// Trim spaces, raw or encoded as `%20` (Ruby writes `[1, 2]`).
pub fn trim_spaces(mut s: &str) -> &str {
    loop {
        let before = s.len();
        s = s.trim();
        if starts_with_ci(s, "%20") {
            s = &s[3..];
        }
        if ends_with_ci(s, "%20") {
            s = &s[..s.len() - 3];
        }
        if s.len() == before {
            return s;
        }
    }
}

/// Percent-decode once; `+` stays `+`. Invalid UTF-8 after decoding is a 400.
pub fn decode(s: &str) -> Result<String> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Error::bad(format!("`{s}` is not valid UTF-8 once percent-decoded")))
}

/// Base64 in either alphabet, padded or not (SDKs differ).
pub fn b64_decode(s: &str) -> std::result::Result<Vec<u8>, String> {
    let s = decode(s).map_err(|e| e.to_string())?;
    let normalized: String = s
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(normalized).map_err(|e| format!("invalid base64: {e}"))
}
