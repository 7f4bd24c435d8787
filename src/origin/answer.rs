//! What the service layer answers: bytes with everything a front needs to describe them (type,
//! validators, caching policy, purge tags), or a JSON document. No HTTP types: the front turns
//! this into headers.

use crate::cache::{Cached, Content};
use crate::store::{Backend, ByteStream, FileMeta, Store};
use bytes::Bytes;
use futures_util::StreamExt;
use std::ops::Range;
use std::sync::Arc;

/// How an edge may cache an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Public for this many seconds.
    Public(u64),
    /// Stored, but revalidated every time (private files behind a policy).
    Revalidate,
    /// Stored by the user's browser only, and revalidated.
    Private,
    /// Never stored (`cache=false`, one-off answers).
    NoStore,
}

/// The `Cache-Status` of a 304 decided from the cache index (counted apart in the metrics).
pub const REVALIDATED: &str = "refract; hit; detail=revalidated";

/// The entity tag of bytes with this checksum (without quotes): what `If-None-Match` names.
pub fn etag_of(checksum: &str) -> &str {
    &checksum[..checksum.len().min(32)]
}

/// The `Server-Timing` entry naming the quality `quality=auto` chose, followed by it
/// (`auto-quality;desc=62`).
pub const AUTO_QUALITY_METRIC: &str = "auto-quality;desc=";

/// How a file is presented: its name, and whether it is shown or downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    pub filename: String,
    pub attachment: bool,
}

/// A file answer: an original or a derivative.
#[derive(Debug, Clone)]
pub struct FileAnswer {
    pub body: Body,
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
    /// The client hints the answer was chosen by (`Vary`; `Accept-CH` is sent with them).
    pub vary_hints: Vec<&'static str>,
    pub disposition: Disposition,
    /// RFC 9211 `Cache-Status` value.
    pub cache_status: &'static str,
    /// `Server-Timing` value (empty: none).
    pub timing: String,
    /// The quality `quality=auto` chose for these bytes (`X-Refract-Quality`), on a miss, a hit
    /// and a 304 alike; `None` for every other answer.
    pub auto_quality: Option<u8>,
}

/// The bytes of a file answer: in memory (a derivative), or a stored original read from its
/// backend only when the front knows which range to send.
#[derive(Clone)]
pub enum Body {
    Bytes(Bytes),
    Stored {
        store: Arc<Store>,
        meta: Arc<FileMeta>,
    },
    /// An object of a storage alias.
    Object {
        backend: Arc<dyn Backend>,
        key: String,
        size: u64,
    },
    /// A large derivative's open blob, read as it is sent.
    File {
        file: Arc<std::fs::File>,
        len: u64,
    },
    /// Bytes produced as they are sent (a ZIP of several files): no length, no ranges.
    Stream(Arc<std::sync::Mutex<Option<ByteStream>>>),
}

impl Body {
    /// A cached derivative's body.
    pub fn of(cached: &Cached) -> Body {
        match &cached.content {
            Content::Memory(bytes) => Body::Bytes(bytes.clone()),
            Content::File(file) => Body::File { file: file.clone(), len: cached.meta.length },
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
            Body::Stored { meta, .. } => meta.size,
            Body::Object { size, .. } => *size,
            Body::Stream(_) => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes in `range` (all of them when `None`), as a stream.
    pub async fn open(&self, range: Option<Range<u64>>) -> crate::error::Result<ByteStream> {
        match self {
            Body::Bytes(b) => {
                let part = match range {
                    Some(r) => b.slice(r.start as usize..r.end as usize),
                    None => b.clone(),
                };
                Ok(futures_util::stream::once(async move { Ok(part) }).boxed())
            }
            Body::Stored { store, meta } => Ok(store.stream(meta, range).await?),
            Body::Object { backend, key, .. } => Ok(backend.get(key, range).await?),
            Body::File { file, len } => read_file(file, range.unwrap_or(0..*len)).await,
            Body::Stream(s) => {
                s.lock().unwrap().take().ok_or_else(|| crate::error::Error::internal("stream sent twice"))
            }
        }
    }
}

/// `range` of an open file, streamed in 256 KiB reads through a handle of its own (its own offset:
/// answers reading one file at once do not disturb each other).
async fn read_file(file: &std::fs::File, range: Range<u64>) -> crate::error::Result<ByteStream> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let own = file.try_clone().map_err(crate::error::Error::internal)?;
    let mut own = tokio::fs::File::from_std(own);
    own.seek(std::io::SeekFrom::Start(range.start)).await.map_err(crate::error::Error::internal)?;
    let reader = own.take(range.end - range.start);
    Ok(tokio_util::io::ReaderStream::with_capacity(reader, 256 << 10).boxed())
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Bytes(b) => write!(f, "Bytes({})", b.len()),
            Body::Stored { meta, .. } => write!(f, "Stored({}, {})", meta.handle, meta.size),
            Body::Object { key, size, .. } => write!(f, "Object({key}, {size})"),
            Body::File { len, .. } => write!(f, "File({len})"),
            Body::Stream(_) => f.write_str("Stream"),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Answer {
    File(Box<FileAnswer>),
    /// A JSON document that is never cached (store results, `debug`, metadata).
    Json(serde_json::Value),
    /// `302` to the explicit URL a request's client hints resolved to (the redirect mode), with
    /// the hint headers it read.
    Redirect {
        location: String,
        vary_hints: Vec<&'static str>,
    },
}
