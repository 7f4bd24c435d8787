//! The service's error: the request's own faults (URL, plan, credentials, limits) and the
//! errors of the modules below it (store, source, pipeline), each kept typed. Every error has a
//! public message (`Display`) and, for failures on our side, an internal `detail` for the log.
//! Statuses are chosen once, at the edge (`http::respond`).

use crate::pipeline::PipelineError;
use crate::source::SourceError;
use crate::store::StoreError;
use std::fmt;

/// What went wrong, with enough context to name the task/option in the JSON body.
#[derive(Debug, Clone)]
pub enum Error {
    /// The URL or a request parameter is malformed.
    BadRequest { message: String, task: Option<String>, option: Option<String> },
    /// The task (or one of its options) parses but Refract does not implement it (yet).
    NotImplemented { task: String, option: Option<String> },
    /// No credentials where the app requires them (401).
    Unauthorized(String),
    /// Credentials invalid or not enough for this call (403).
    Forbidden(String),
    /// Unknown handle, alias or route.
    NotFound(String),
    /// A processing URL asked with a method other than GET, HEAD or POST.
    MethodNotAllowed,
    /// The client sent its request too slowly.
    Timeout(String),
    /// Request body over the configured limit.
    PayloadTooLarge(String),
    /// The input format is recognised but not supported.
    UnsupportedMedia(String),
    /// The store failed (a missing handle, a disk error).
    Store(StoreError),
    /// A source could not be found, fetched or was refused.
    Source(SourceError),
    /// The transform failed.
    Pipeline(PipelineError),
    /// The client went away before its transform started (never sent; logged as 499).
    ClientGone,
    /// The transform queue is full.
    Overloaded,
    /// A bug or an I/O failure on our side.
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad(message: impl Into<String>) -> Self {
        Error::BadRequest { message: message.into(), task: None, option: None }
    }

    pub fn bad_task(task: &str, message: impl Into<String>) -> Self {
        Error::BadRequest { message: message.into(), task: Some(task.to_string()), option: None }
    }

    pub fn bad_option(task: &str, option: &str, message: impl Into<String>) -> Self {
        Error::BadRequest { message: message.into(), task: Some(task.to_string()), option: Some(option.to_string()) }
    }

    pub fn not_implemented(task: &str, option: Option<&str>) -> Self {
        Error::NotImplemented { task: task.to_string(), option: option.map(str::to_string) }
    }

    pub fn internal(e: impl fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }

    /// What the log gets besides the public message (`Display`): a codec's or the disk's own
    /// words, never sent to the client.
    pub fn detail(&self) -> Option<String> {
        match self {
            Error::Store(e) => e.detail(),
            Error::Source(e) => e.detail(),
            Error::Pipeline(e) => e.detail().map(str::to_string),
            Error::Internal(detail) => Some(detail.clone()),
            _ => None,
        }
    }

    /// A failure of the source or of the transform, which a `fallback` task answers for; never
    /// a refusal or a malformed request.
    pub fn is_source_failure(&self) -> bool {
        use crate::source::SourceError as S;
        match self {
            Error::Store(_) | Error::Internal(_) | Error::NotFound(_) => true,
            Error::PayloadTooLarge(_) | Error::UnsupportedMedia(_) => true,
            Error::Pipeline(e) => !matches!(e, PipelineError::BadOption { .. }),
            Error::Source(e) => {
                !matches!(e, S::Refused { .. } | S::OutsideAlias(_) | S::BadUrl(_) | S::ListNeedsCombiner | S::Busy)
            }
            _ => false,
        }
    }

    pub fn task(&self) -> Option<&str> {
        match self {
            Error::BadRequest { task, .. } => task.as_deref(),
            Error::NotImplemented { task, .. } => Some(task),
            Error::Pipeline(PipelineError::BadOption { task, .. }) => Some(task),
            _ => None,
        }
    }

    pub fn option(&self) -> Option<&str> {
        match self {
            Error::BadRequest { option, .. } | Error::NotImplemented { option, .. } => option.as_deref(),
            Error::Pipeline(PipelineError::BadOption { option, .. }) => *option,
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadRequest { message, .. } => f.write_str(message),
            Error::NotImplemented { task, option: None } => {
                write!(f, "task `{task}` is not implemented by this server")
            }
            Error::NotImplemented { task, option: Some(o) } => {
                write!(f, "option `{o}` of task `{task}` is not implemented by this server")
            }
            Error::Forbidden(m)
            | Error::Unauthorized(m)
            | Error::NotFound(m)
            | Error::PayloadTooLarge(m)
            | Error::Timeout(m)
            | Error::UnsupportedMedia(m)
            | Error::Internal(m) => f.write_str(m),
            Error::Store(e) => e.fmt(f),
            Error::Source(e) => e.fmt(f),
            Error::Pipeline(e) => e.fmt(f),
            Error::Overloaded => f.write_str("server busy: transform queue is full, retry shortly"),
            Error::ClientGone => f.write_str("the client closed the connection before its transform started"),
            Error::MethodNotAllowed => {
                f.write_str("method not allowed: processing URLs take GET or HEAD (POST with a `store` task)")
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<SourceError> for Error {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Store(e) => Error::Store(e),
            e => Error::Source(e),
        }
    }
}

impl From<PipelineError> for Error {
    fn from(e: PipelineError) -> Self {
        Error::Pipeline(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(format!("i/o error: {e}"))
    }
}
