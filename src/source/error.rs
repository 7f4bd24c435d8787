//! What can go wrong fetching a source. The edge (`http::respond`) decides the status of each
//! variant; a refusal by policy is the client's fault (4xx), an upstream failure is not (5xx).

use super::policy::Refused;
use crate::store::StoreError;
use std::fmt;

/// A failure to find or fetch a source. `Display` is the public message; `detail` is for the
/// log only.
#[derive(Debug, Clone)]
pub enum SourceError {
    /// A stored handle could not be read.
    Store(StoreError),
    /// `[h1,h2]` reached a task that reads one source.
    ListNeedsCombiner,
    UnknownAlias(String),
    /// Nothing at this alias path or URL (a remote 404 included).
    Missing(String),
    /// `src://alias/../..` or a symlink out of the alias's root.
    OutsideAlias(String),
    /// Not an http(s) URL with a host.
    BadUrl(String),
    /// The SSRF guard refused the address the URL (or one of its redirects) leads to.
    Refused {
        url: String,
        refused: Refused,
    },
    /// The remote answered with an error status other than 404.
    Upstream {
        url: String,
        status: u16,
    },
    /// The remote redirected more times than allowed.
    TooManyRedirects {
        url: String,
        max: usize,
    },
    /// DNS, connect or transfer failed.
    Unreachable {
        url: String,
        detail: String,
    },
    TimedOut {
        url: String,
    },
    TooLarge {
        url: String,
        limit: u64,
    },
    /// Every download slot is taken.
    Busy,
}

pub type Result<T, E = SourceError> = std::result::Result<T, E>;

impl SourceError {
    /// What the log gets besides the public message.
    pub fn detail(&self) -> Option<String> {
        match self {
            SourceError::Store(e) => e.detail(),
            SourceError::Unreachable { detail, .. } => Some(detail.clone()),
            _ => None,
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Store(e) => e.fmt(f),
            SourceError::ListNeedsCombiner => {
                f.write_str("a list of sources needs a task that combines them (collage, animate, zip)")
            }
            SourceError::UnknownAlias(a) => write!(f, "unknown storage alias `{a}`"),
            SourceError::Missing(what) => write!(f, "no file at {what}"),
            SourceError::OutsideAlias(what) => write!(f, "{what} points outside its storage alias"),
            SourceError::BadUrl(why) => write!(f, "invalid source URL: {why}"),
            SourceError::Refused { url, refused } => write!(f, "source URL {url} refused: {refused}"),
            SourceError::Upstream { url, status } => write!(f, "source URL {url} answered {status}"),
            SourceError::Unreachable { url, .. } => write!(f, "fetching {url} failed"),
            SourceError::TooManyRedirects { url, max } => write!(f, "{url} redirects more than {max} times"),
            SourceError::TimedOut { url } => write!(f, "fetching {url} timed out"),
            SourceError::TooLarge { url, limit } => write!(f, "source URL {url} is larger than {limit} bytes"),
            SourceError::Busy => f.write_str("too many source downloads in progress, retry shortly"),
        }
    }
}

impl std::error::Error for SourceError {}

impl From<StoreError> for SourceError {
    fn from(e: StoreError) -> Self {
        SourceError::Store(e)
    }
}
