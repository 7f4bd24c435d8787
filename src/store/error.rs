//! What can go wrong in the store. The store knows nothing of HTTP: the edge
//! (`http::respond`) decides the status of each variant.

use std::fmt;

/// A failure of the store. `Display` is the public message; `detail` is for the log only.
#[derive(Debug, Clone)]
pub enum StoreError {
    /// Not a handle (letters, digits, `_` and `-`): it never reaches a path or a key.
    InvalidHandle(String),
    /// No file under this handle.
    NotFound(String),
    /// No object under this key (of the backend or of an alias).
    Missing(String),
    /// A key with empty, `.` or `..` segments, or absolute.
    InvalidKey(String),
    /// A key that leads out of its directory through a symlink.
    OutsideRoot(String),
    /// The object store failed or refused us (an outage, bad credentials, a missing bucket).
    Unavailable { backend: &'static str, detail: String },
    /// The object store did not answer in time.
    TimedOut(String),
    /// The stored metadata of a handle does not parse.
    Corrupt { handle: String, detail: String },
    /// The local disk failed.
    Io { op: &'static str, source: std::sync::Arc<std::io::Error> },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> StoreError {
        move |source| StoreError::Io { op, source: source.into() }
    }

    /// What the log gets besides the public message.
    pub fn detail(&self) -> Option<String> {
        match self {
            StoreError::Corrupt { handle, detail } => Some(format!("metadata of {handle}: {detail}")),
            StoreError::Io { op, source } => Some(format!("{op}: {source}")),
            StoreError::Unavailable { detail, .. } => Some(detail.clone()),
            _ => None,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::InvalidHandle(h) => write!(f, "`{h}` is not a handle (letters, digits, _ and -)"),
            StoreError::NotFound(h) => write!(f, "no file with handle `{h}`"),
            StoreError::Missing(key) => write!(f, "no file at `{key}`"),
            StoreError::InvalidKey(key) => write!(f, "`{key}` is not a valid path"),
            StoreError::OutsideRoot(key) => write!(f, "`{key}` points outside its storage"),
            StoreError::Unavailable { backend, .. } => write!(f, "the {backend} storage is unavailable"),
            StoreError::TimedOut(key) => write!(f, "the storage did not answer in time for `{key}`"),
            StoreError::Corrupt { .. } => f.write_str("the stored file's metadata is unreadable"),
            StoreError::Io { .. } => f.write_str("the store failed to read or write"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<std::io::Error> for StoreError {
    fn from(source: std::io::Error) -> Self {
        StoreError::Io { op: "i/o", source: source.into() }
    }
}
