//! What can go wrong inside the pipeline. The pipeline knows nothing of HTTP: the edge
//! (`http::respond`) decides the status of each variant.

use std::fmt;

/// A failure of one transform. `Display` is the public message; `detail` adds what only the
/// log should see (a codec's own words).
#[derive(Debug, Clone, PartialEq)]
pub enum PipelineError {
    /// The source has no bytes at all.
    Empty,
    /// The bytes are a format this pipeline does not read.
    Unsupported(String),
    /// The bytes claim a format but do not decode, or their container lies about its sizes.
    Corrupt(String),
    /// A limit of the job was reached: pixels, metadata, output size, time.
    OverLimit(String),
    /// An option is valid on its own but not for this image (a crop origin outside it).
    BadOption { task: &'static str, option: Option<&'static str>, message: String },
    /// A file the job overlays (a watermark) was not handed to it.
    MissingOverlay(String),
    /// An encoder or a library failed on input we had accepted: our side, not the client's.
    Codec { what: &'static str, detail: String },
}

pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

impl PipelineError {
    /// An internal failure of a codec or library, logged with its detail.
    pub fn codec(what: &'static str, detail: impl fmt::Display) -> Self {
        PipelineError::Codec { what, detail: detail.to_string() }
    }

    pub fn bad_option(task: &'static str, option: &'static str, message: impl Into<String>) -> Self {
        PipelineError::BadOption { task, option: Some(option), message: message.into() }
    }

    /// The same error told for `task` (a shared step, such as an encoder, does not know which
    /// task of the URL ran it).
    pub fn for_task(self, task: &'static str) -> Self {
        match self {
            PipelineError::BadOption { option, message, .. } => PipelineError::BadOption { task, option, message },
            other => other,
        }
    }

    /// What the log gets besides the public message.
    pub fn detail(&self) -> Option<&str> {
        match self {
            PipelineError::Codec { detail, .. } => Some(detail),
            _ => None,
        }
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PipelineError::Empty => f.write_str("the source is empty"),
            PipelineError::Unsupported(m) | PipelineError::Corrupt(m) | PipelineError::OverLimit(m) => f.write_str(m),
            PipelineError::BadOption { message, .. } => f.write_str(message),
            PipelineError::MissingOverlay(h) => write!(f, "watermark file `{h}` is missing"),
            PipelineError::Codec { what, .. } => write!(f, "the {what} failed"),
        }
    }
}

impl std::error::Error for PipelineError {}
