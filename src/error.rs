//! One error type for the whole request path. Each variant knows its HTTP status; the mapping
//! to a response happens once, in `http::respond`.

use std::fmt;

/// What went wrong, with enough context to name the task/option in the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The URL or a request parameter is malformed.
    BadRequest { message: String, task: Option<String>, option: Option<String> },
    /// The task (or one of its options) parses but Refract does not implement it (yet).
    NotImplemented { task: String, option: Option<String> },
    /// Credentials missing or invalid for this call.
    Forbidden(String),
    /// Unknown handle, alias or route.
    NotFound(String),
    /// A processing URL asked with a method other than GET, HEAD or POST.
    MethodNotAllowed,
    /// The client sent its request too slowly.
    Timeout(String),
    /// Request body over the configured limit.
    PayloadTooLarge(String),
    /// The bytes are not something we can decode, or exceed the pixel limit.
    Unprocessable(String),
    /// The input format is recognised but not supported.
    UnsupportedMedia(String),
    /// Fetching an external source failed.
    BadGateway(String),
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

    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest { .. } => 400,
            Error::Forbidden(_) => 403,
            Error::NotFound(_) => 404,
            Error::MethodNotAllowed => 405,
            Error::Timeout(_) => 408,
            Error::PayloadTooLarge(_) => 413,
            Error::UnsupportedMedia(_) => 415,
            Error::Unprocessable(_) => 422,
            Error::ClientGone => 499,
            Error::Internal(_) => 500,
            Error::NotImplemented { .. } => 501,
            Error::BadGateway(_) => 502,
            Error::Overloaded => 503,
        }
    }

    pub fn task(&self) -> Option<&str> {
        match self {
            Error::BadRequest { task, .. } => task.as_deref(),
            Error::NotImplemented { task, .. } => Some(task),
            _ => None,
        }
    }

    pub fn option(&self) -> Option<&str> {
        match self {
            Error::BadRequest { option, .. } | Error::NotImplemented { option, .. } => option.as_deref(),
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
            | Error::NotFound(m)
            | Error::PayloadTooLarge(m)
            | Error::Timeout(m)
            | Error::Unprocessable(m)
            | Error::UnsupportedMedia(m)
            | Error::BadGateway(m)
            | Error::Internal(m) => f.write_str(m),
            Error::Overloaded => f.write_str("server busy: transform queue is full, retry shortly"),
            Error::ClientGone => f.write_str("the client closed the connection before its transform started"),
            Error::MethodNotAllowed => {
                f.write_str("method not allowed: processing URLs take GET or HEAD (POST with a `store` task)")
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Internal(format!("i/o error: {e}"))
    }
}
