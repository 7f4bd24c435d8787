//! Source forms: handle, handle list, external URL (raw, quoted, percent-encoded, Java's
//! `https:%2F%2F…`), storage alias `src://alias/path`, `b64://…`.

use super::tokens::{b64_decode, decode, quote_len_at_end, quote_len_at_start, split_top, strip_quotes};
use crate::error::{Error, Result};

/// Where the input bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SourceSpec {
    Handle { handle: String },
    Url { url: String },
    Alias { alias: String, path: String },
    List { items: Vec<SourceSpec> },
}

impl SourceSpec {
    pub fn handle(handle: String) -> Self {
        SourceSpec::Handle { handle }
    }

    /// A stable identity for cache keys and surrogate keys.
    pub fn identity(&self) -> String {
        match self {
            SourceSpec::Handle { handle } => handle.clone(),
            SourceSpec::Url { url } => format!("url:{url}"),
            SourceSpec::Alias { alias, path } => format!("src://{alias}/{path}"),
            SourceSpec::List { items } => {
                format!("[{}]", items.iter().map(|s| s.identity()).collect::<Vec<_>>().join(","))
            }
        }
    }
}

/// Does this path token begin a source rather than a task?
pub fn starts_source(tok: &str) -> bool {
    let lower = tok.to_ascii_lowercase();
    quote_len_at_start(tok) > 0
        || tok.starts_with('[')
        || lower.starts_with("%5b")
        || lower.starts_with("http:")
        || lower.starts_with("https:")
        || lower.starts_with("http%3a")
        || lower.starts_with("https%3a")
        || lower.starts_with("src:")
        || lower.starts_with("b64:")
}

/// Parse the rest of the path as a source. Returns whether the HTTP query was taken into an
/// external URL (the SDKs do not encode the `?` of a source's own query).
pub fn parse(raw: &str, query: Option<&str>) -> Result<(SourceSpec, bool)> {
    if raw.is_empty() {
        return Err(Error::bad("missing source"));
    }
    // A quote opened in the path and closed at the end of the query: filestack-js with an
    // external URL that has its own query string.
    let open = quote_len_at_start(raw);
    if open > 0 && strip_quotes(raw).is_err() {
        if let Some(q) = query.filter(|q| quote_len_at_end(q) > 0) {
            let q = &q[..q.len() - quote_len_at_end(q)];
            let url = format!("{}?{}", &raw[open..], q);
            return Ok((single(&url, None)?.0, true));
        }
        return Err(Error::bad(format!("unterminated quote in source `{raw}`")));
    }
    if let Some(inner) = strip_quotes(raw)? {
        return single(inner, query);
    }
    let lower = raw.to_ascii_lowercase();
    if raw.starts_with('[') || lower.starts_with("%5b") {
        let text = if raw.starts_with('[') { raw.to_string() } else { decode(raw)? };
        let inner = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .ok_or_else(|| Error::bad(format!("unbalanced brackets in source `{raw}`")))?;
        let items = split_top(inner, b',')
            .into_iter()
            .map(|t| {
                let t = t.text.trim();
                let t = strip_quotes(t)?.unwrap_or(t);
                single(t, None).map(|(s, _)| s)
            })
            .collect::<Result<Vec<_>>>()?;
        if items.is_empty() {
            return Err(Error::bad("empty source list"));
        }
        return Ok((SourceSpec::List { items }, false));
    }
    single(raw, query)
}

fn single(raw: &str, query: Option<&str>) -> Result<(SourceSpec, bool)> {
    let lower = raw.to_ascii_lowercase();
    if let Some(b64) = raw.strip_prefix("b64://") {
        let bytes = b64_decode(b64).map_err(|m| Error::bad(format!("b64 source: {m}")))?;
        let text = String::from_utf8(bytes).map_err(|_| Error::bad("b64 source is not UTF-8"))?;
        return parse(&text, None).map(|(s, _)| (s, false));
    }
    if lower.starts_with("http%3a") || lower.starts_with("https%3a") || lower.contains(":%2f%2f") {
        return single(&decode(raw)?, query);
    }
    if lower.starts_with("http:") || lower.starts_with("https:") {
        return Ok((external_url(raw, query)?, query.is_some()));
    }
    if lower.starts_with("src:") {
        return alias(raw).map(|s| (s, false));
    }
    let handle = decode(raw)?;
    validate_handle(&handle)?;
    Ok((SourceSpec::handle(handle), false))
}

/// Handles are letters, digits, `_` and `-`; anything else never reaches the file system.
fn validate_handle(h: &str) -> Result<()> {
    if crate::handle::is_valid(h) {
        Ok(())
    } else {
        Err(Error::bad(format!(
            "invalid source `{h}`: expected a handle (letters, digits, _ and -), an http(s) URL, src://alias/path or a [list]"
        )))
    }
}

fn external_url(raw: &str, query: Option<&str>) -> Result<SourceSpec> {
    let (scheme, rest) = raw.split_once(':').expect("caller checked the scheme");
    // nginx's merge_slashes (or any proxy) may have turned `https://` into `https:/`
    let rest = rest.trim_start_matches('/');
    if rest.is_empty() {
        return Err(Error::bad(format!("source URL `{raw}` has no host")));
    }
    let mut url = format!("{}://{}", scheme.to_ascii_lowercase(), rest);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    let parsed = reqwest::Url::parse(&url).map_err(|e| Error::bad(format!("invalid source URL `{url}`: {e}")))?;
    let host = parsed.host_str().unwrap_or("");
    if host.is_empty() {
        return Err(Error::bad(format!("source URL `{url}` has no host")));
    }
    // A Filestack CDN URL of a handle is that handle.
    if host == "filestackcontent.com" || host.ends_with(".filestackcontent.com") {
        let segs: Vec<&str> = parsed.path().trim_matches('/').split('/').collect();
        if segs.len() == 1 && validate_handle(segs[0]).is_ok() {
            return Ok(SourceSpec::handle(segs[0].to_string()));
        }
    }
    Ok(SourceSpec::Url { url })
}

fn alias(raw: &str) -> Result<SourceSpec> {
    let rest = raw[4..].trim_start_matches('/');
    let (alias, path) = rest.split_once('/').unwrap_or((rest, ""));
    let alias = decode(alias)?;
    let path = decode(path)?;
    if alias.is_empty()
        || path.is_empty()
        || !alias.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::bad(format!("invalid storage alias source `{raw}`: expected src://alias/path")));
    }
    if path.starts_with('/') || path.contains('\0') || path.contains('\\') || path.split('/').any(|seg| seg == "..") {
        return Err(Error::bad(format!("storage alias path `{path}` must be relative, without `..`")));
    }
    Ok(SourceSpec::Alias { alias, path })
}

impl SourceSpec {
    /// A file a task names besides its source (a watermark, a fallback): a stored file's handle
    /// or `src://alias/path`. Its identity is the same text, so `file_ref(s.identity())` is `s`.
    pub fn file_ref(text: &str) -> Result<SourceSpec> {
        if text.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("src://")) {
            return alias(text);
        }
        validate_handle(text)?;
        Ok(SourceSpec::handle(text.to_string()))
    }

    /// An external URL given on its own (a form's `url=` field).
    pub fn parse_external(url: &str) -> Result<(SourceSpec, bool)> {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(Error::bad(format!("`{url}` is not an http(s) URL")));
        }
        Ok((external_url(url, None)?, false))
    }
}
