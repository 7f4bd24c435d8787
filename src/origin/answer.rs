//! What the service layer answers: bytes with everything a front needs to describe them (type,
//! validators, caching policy, purge tags), or a JSON document. No HTTP types: the front turns
//! this into headers.

use bytes::Bytes;

/// How an edge may cache an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Public for this many seconds.
    Public(u64),
    /// Stored, but revalidated every time (private files behind a policy).
    Revalidate,
    /// Never stored (`cache=false`, one-off answers).
    NoStore,
}

/// How a file is presented: its name, and whether it is shown or downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    pub filename: String,
    pub attachment: bool,
}

/// A file answer: an original or a derivative.
#[derive(Debug, Clone)]
pub struct FileAnswer {
    pub bytes: Bytes,
    pub content_type: String,
    /// Hex digest of the bytes (or of what identifies them): the strong ETag.
    pub checksum: String,
    /// Unix seconds of the last change.
    pub modified: u64,
    pub caching: Caching,
    /// Purge tags: the source, the files it overlays, the derivative.
    pub surrogate_keys: Vec<String>,
    /// The format was chosen from what the client accepts.
    pub vary_accept: bool,
    pub disposition: Disposition,
    /// RFC 9211 `Cache-Status` value.
    pub cache_status: &'static str,
    /// `Server-Timing` value (empty: none).
    pub timing: String,
}

#[derive(Debug, Clone)]
pub enum Answer {
    File(Box<FileAnswer>),
    /// A JSON document that is never cached (store results, `debug`, metadata).
    Json(serde_json::Value),
}
