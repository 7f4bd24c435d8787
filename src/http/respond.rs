//! Turning results into HTTP: CDN headers, conditional requests, ranges, and the one place where
//! errors become status codes.

use crate::error::Error;
use crate::origin::{etag_of, Answer, Body, Caching, Disposition, FileAnswer, REVALIDATED};
use crate::pipeline::PipelineError;
use crate::source::SourceError;
use crate::store::StoreError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

tokio::task_local! {
    /// The request being answered (also its `X-Request-Id`), for 5xx bodies.
    pub static REQUEST_ID: u64;
}

/// A file answer, before conditional and range handling.
struct Delivery<'a> {
    file: &'a FileAnswer,
    etag: String,
    modified: SystemTime,
}

/// The service layer's answer as HTTP.
pub async fn answer(req: &HttpRequest, answer: Answer) -> HttpResponse {
    match answer {
        Answer::Json(value) => json(value),
        Answer::Redirect { location, vary_hints } => redirect(&location, &vary_hints),
        Answer::File(file) => {
            let etag = format!("\"{}\"", etag_of(&file.checksum));
            let modified = UNIX_EPOCH + Duration::from_secs(file.modified);
            let delivery = Delivery { file: &file, etag, modified };
            match delivery.respond(req).await {
                Ok(response) => response,
                Err(e) => e.error_response(),
            }
        }
    }
}

impl Delivery<'_> {
    /// A 304, a 206 of one range, a 416, or the whole body; a body is read from its backend
    /// (only the range asked) once the answer is known, and never for HEAD.
    async fn respond(self, req: &HttpRequest) -> Result<HttpResponse, Error> {
        let etag = self.etag.as_str();
        let from_index = self.file.cache_status == REVALIDATED;
        if not_modified(req, etag, self.modified) {
            let from = if from_index { "index" } else { "answer" };
            crate::metrics::METRICS.not_modified.with_label_values(&[from]).inc();
            let mut b = HttpResponse::NotModified();
            self.common_headers(&mut b, etag);
            return Ok(b.finish());
        }
        if from_index {
            // the service answered without bytes because the tag matched; it must match here too
            return Err(Error::internal("a revalidated answer whose tag does not match If-None-Match"));
        }
        if let Body::Stream(_) = &self.file.body {
            let mut b = HttpResponse::Ok();
            self.common_headers(&mut b, etag);
            b.insert_header((header::ACCEPT_RANGES, "none"));
            return Ok(b.streaming(self.file.body.open(None).await?));
        }
        let total = self.file.body.len();
        let range = req.headers().get(header::RANGE).and_then(|v| v.to_str().ok());
        let if_range_ok = req.headers().get(header::IF_RANGE).and_then(|v| v.to_str().ok()).is_none_or(|v| v == etag);
        match range.filter(|_| if_range_ok).map(|r| parse_range(r, total)) {
            Some(RangeAnswer::Partial(start, end)) => {
                let mut b = HttpResponse::PartialContent();
                self.common_headers(&mut b, etag);
                b.insert_header((header::CONTENT_RANGE, format!("bytes {start}-{end}/{total}")));
                self.body(req, b, Some(start..end + 1)).await
            }
            Some(RangeAnswer::Unsatisfiable) => {
                let mut b = HttpResponse::RangeNotSatisfiable();
                self.common_headers(&mut b, etag);
                b.insert_header((header::CONTENT_RANGE, format!("bytes */{total}")));
                Ok(b.finish())
            }
            Some(RangeAnswer::Ignore) | None => {
                let mut b = HttpResponse::Ok();
                self.common_headers(&mut b, etag);
                self.body(req, b, None).await
            }
        }
    }

    /// The body of `range` with its exact length; in memory as it is, streamed from a backend.
    async fn body(
        &self,
        req: &HttpRequest,
        mut b: HttpResponseBuilder,
        range: Option<Range<u64>>,
    ) -> Result<HttpResponse, Error> {
        let length = range.as_ref().map_or(self.file.body.len(), |r| r.end - r.start);
        if let Body::Bytes(bytes) = &self.file.body {
            let part = range.map_or(bytes.clone(), |r| bytes.slice(r.start as usize..r.end as usize));
            return Ok(b.body(part));
        }
        if req.method() == actix_web::http::Method::HEAD {
            // the length without reading the object (actix sends no body for HEAD)
            let none = futures_util::stream::empty::<Result<bytes::Bytes, std::io::Error>>();
            return Ok(b.body(actix_web::body::SizedStream::new(length, none)));
        }
        let stream = self.file.body.open(range).await?;
        b.no_chunking(length);
        Ok(b.streaming(stream))
    }

    fn common_headers(&self, b: &mut HttpResponseBuilder, etag: &str) {
        let file = self.file;
        // a stored type that is not a valid header value (metadata written by an older version)
        // is served as bytes, never as a 500
        let content_type =
            HeaderValue::from_str(&file.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
        b.insert_header((header::CONTENT_TYPE, content_type));
        b.insert_header((header::CONTENT_SECURITY_POLICY, crate::mediatype::SANDBOX_CSP));
        b.insert_header((header::ETAG, etag));
        b.insert_header((header::LAST_MODIFIED, httpdate::fmt_http_date(self.modified)));
        b.insert_header((header::ACCEPT_RANGES, "bytes"));
        match file.caching {
            Caching::Public(secs) => {
                let v = format!("public, max-age={secs}");
                b.insert_header((header::CACHE_CONTROL, v.as_str()));
                b.insert_header(("CDN-Cache-Control", v.as_str()));
                b.insert_header(("Surrogate-Control", format!("max-age={secs}")));
            }
            Caching::Revalidate => {
                b.insert_header((header::CACHE_CONTROL, "no-cache"));
                b.insert_header(("CDN-Cache-Control", "no-cache"));
            }
            Caching::Private => {
                b.insert_header((header::CACHE_CONTROL, "private, no-cache"));
                b.insert_header(("CDN-Cache-Control", "no-store"));
            }
            Caching::NoStore => {
                b.insert_header((header::CACHE_CONTROL, "no-store"));
                b.insert_header(("Surrogate-Control", "no-store"));
            }
        }
        if !file.surrogate_keys.is_empty() {
            b.insert_header(("Surrogate-Key", file.surrogate_keys.join(" ")));
            // Fastly's, Cloudflare's and Akamai's names for the same purge tags
            b.insert_header(("Cache-Tag", file.surrogate_keys.join(",")));
            b.insert_header(("Edge-Cache-Tag", file.surrogate_keys.join(",")));
        }
        let mut vary: Vec<&str> = file.vary_hints.clone();
        if file.vary_accept {
            vary.push("Accept");
        }
        if !vary.is_empty() {
            b.insert_header((header::VARY, vary.join(", ")));
        }
        if !file.vary_hints.is_empty() {
            b.insert_header(("Accept-CH", crate::origin::hints::ACCEPT_CH));
        }
        if let Ok(v) = HeaderValue::from_str(&disposition(&file.disposition)) {
            b.insert_header((header::CONTENT_DISPOSITION, v));
        }
        b.insert_header(("Cache-Status", file.cache_status));
        if !file.timing.is_empty() {
            b.insert_header(("Server-Timing", file.timing.as_str()));
        }
        if let Some(q) = file.auto_quality {
            b.insert_header(("X-Refract-Quality", q.to_string()));
        }
    }
}

/// The redirect mode's `302`: kept by the browser that asked (its hints are its own), never by a
/// shared cache (which would give every device the first one's width).
fn redirect(location: &str, vary_hints: &[&str]) -> HttpResponse {
    let Ok(location) = HeaderValue::from_str(location) else {
        return Error::internal("a redirect to a URL that is not a header value").error_response();
    };
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "private, max-age=300"))
        .insert_header(("CDN-Cache-Control", "no-store"))
        .insert_header(("Surrogate-Control", "no-store"))
        .insert_header((header::VARY, vary_hints.join(", ")))
        .insert_header(("Accept-CH", crate::origin::hints::ACCEPT_CH))
        .finish()
}

/// `inline` or `attachment`, with an ASCII `filename` and, for other names, RFC 8187's
/// `filename*` (a header value must be ASCII).
fn disposition(d: &Disposition) -> String {
    let (filename, kind) = (&d.filename, if d.attachment { "attachment" } else { "inline" });
    let ascii: String = filename
        .chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' { c } else { '_' })
        .collect();
    if &ascii == filename {
        return format!("{kind}; filename=\"{ascii}\"");
    }
    let encoded = percent_encoding::utf8_percent_encode(filename, percent_encoding::NON_ALPHANUMERIC);
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The entity tags of `If-None-Match`, unquoted, for the service layer.
pub fn if_none_match(req: &HttpRequest) -> Vec<String> {
    let Some(inm) = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else { return Vec::new() };
    inm.split(',')
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"').to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn not_modified(req: &HttpRequest, etag: &str, modified: SystemTime) -> bool {
    if let Some(inm) = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        // weak comparison, as RFC 9110 prescribes for If-None-Match
        return inm.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == etag);
    }
    if let Some(ims) = req.headers().get(header::IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok()) {
        if let Ok(since) = httpdate::parse_http_date(ims) {
            let modified_secs = modified.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let since_secs = since.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            return modified_secs <= since_secs;
        }
    }
    false
}

enum RangeAnswer {
    Partial(u64, u64),
    Unsatisfiable,
    /// Malformed or multi-range: answer the whole body (RFC 9110 allows ignoring Range).
    Ignore,
}

fn parse_range(h: &str, total: u64) -> RangeAnswer {
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return RangeAnswer::Ignore };
    if spec.contains(',') {
        return RangeAnswer::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeAnswer::Ignore };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, false) => match b.parse::<u64>() {
            Ok(0) => return RangeAnswer::Unsatisfiable,
            Ok(n) => Some((total.saturating_sub(n), total.saturating_sub(1))),
            Err(_) => None,
        },
        (false, true) => a.parse::<u64>().ok().map(|s| (s, total.saturating_sub(1))),
        (false, false) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e => Some((s, e.min(total.saturating_sub(1)))),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => RangeAnswer::Ignore,
        Some((s, _)) if s >= total => RangeAnswer::Unsatisfiable,
        Some((s, e)) => RangeAnswer::Partial(s, e),
    }
}

/// The one mapping from errors to HTTP statuses.
pub fn status(e: &Error) -> u16 {
    match e {
        Error::BadRequest { .. } => 400,
        Error::Unauthorized(_) => 401,
        Error::Forbidden(_) => 403,
        Error::NotFound(_) => 404,
        Error::MethodNotAllowed => 405,
        Error::Timeout(_) => 408,
        Error::PayloadTooLarge(_) => 413,
        Error::UnsupportedMedia(_) => 415,
        Error::ClientGone => 499,
        Error::Internal(_) => 500,
        Error::NotImplemented { .. } => 501,
        Error::Overloaded => 503,
        Error::Store(e) => store_status(e),
        Error::Source(e) => source_status(e),
        Error::Pipeline(e) => pipeline_status(e),
    }
}

fn store_status(e: &StoreError) -> u16 {
    match e {
        StoreError::InvalidHandle(_) | StoreError::InvalidKey(_) => 400,
        StoreError::OutsideRoot(_) => 403,
        StoreError::NotFound(_) | StoreError::Missing(_) => 404,
        StoreError::Corrupt { .. } | StoreError::Io { .. } => 500,
        StoreError::Unavailable { .. } => 502,
        StoreError::TimedOut(_) => 504,
    }
}

fn source_status(e: &SourceError) -> u16 {
    match e {
        SourceError::Store(e) => store_status(e),
        SourceError::ListNeedsCombiner | SourceError::BadUrl(_) => 400,
        SourceError::Refused { .. } | SourceError::OutsideAlias(_) => 403,
        SourceError::UnknownAlias(_) | SourceError::Missing(_) => 404,
        SourceError::TooLarge { .. } => 413,
        SourceError::Upstream { .. } | SourceError::Unreachable { .. } | SourceError::TooManyRedirects { .. } => 502,
        SourceError::Busy => 503,
        SourceError::TimedOut { .. } => 504,
    }
}

fn pipeline_status(e: &PipelineError) -> u16 {
    match e {
        PipelineError::BadOption { .. } => 400,
        PipelineError::MissingOverlay(_) => 404,
        PipelineError::Unsupported(_) => 415,
        PipelineError::Empty | PipelineError::Corrupt(_) | PipelineError::OverLimit(_) => 422,
        PipelineError::Codec { .. } => 500,
    }
}

/// Whether the failure is ours: the client gets the request id, the log the detail.
fn is_internal(e: &Error, status: u16) -> bool {
    let ours = !matches!(
        e,
        Error::NotImplemented { .. }
            | Error::Overloaded
            | Error::Source(_)
            | Error::Store(StoreError::Unavailable { .. } | StoreError::TimedOut(_))
    );
    status >= 500 && ours
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(status(self)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = status(self);
        let mut body = if is_internal(self, status) {
            let detail = self.detail().unwrap_or_default();
            tracing::error!(status, error = %self, detail, "request failed");
            let id = REQUEST_ID.try_with(|id| *id).unwrap_or(0);
            serde_json::json!({ "status": status, "message": "internal error", "request_id": id.to_string() })
        } else {
            // credential refusals are logged where they are decided, with the app and the call
            if matches!(status, 401 | 403) && !matches!(self, Error::Unauthorized(_) | Error::Forbidden(_)) {
                // who was refused what, and why; never the credentials themselves
                tracing::warn!(status, reason = %self, "refused");
            }
            if let Some(detail) = self.detail() {
                tracing::warn!(status, error = %self, detail, "request failed");
            }
            serde_json::json!({ "status": status, "message": self.to_string() })
        };
        if let Some(t) = self.task() {
            body["task"] = t.into();
        }
        if let Some(o) = self.option() {
            body["option"] = o.into();
        }
        let mut b = HttpResponse::build(self.status_code());
        b.insert_header((header::CONTENT_TYPE, "application/json"));
        if status >= 500 || status == 401 || status == 403 {
            // a refusal depends on the credentials, which an edge does not key on
            b.insert_header((header::CACHE_CONTROL, if status >= 500 { "no-store" } else { "private, no-store" }));
        }
        // other 4xx get `public, max-age=error_max_age_secs` from the middleware, which has the
        // configuration
        if status == 401 {
            b.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"refract\""));
        }
        if matches!(self, Error::Overloaded | Error::Source(SourceError::Busy)) {
            b.insert_header((header::RETRY_AFTER, "1"));
        }
        b.body(serde_json::json!({ "error": body }).to_string())
    }
}

/// A JSON answer that is not cached anywhere.
pub fn json(value: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/json")
        .body(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::{parse_range, RangeAnswer};

    fn range(h: &str, total: u64) -> Option<(u64, u64)> {
        match parse_range(h, total) {
            RangeAnswer::Partial(s, e) => Some((s, e)),
            RangeAnswer::Unsatisfiable => Some((u64::MAX, u64::MAX)),
            RangeAnswer::Ignore => None,
        }
    }

    #[test]
    fn single_ranges_are_parsed_as_rfc_9110_says() {
        assert_eq!(range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(range("bytes=-5000", 1000), Some((0, 999)), "a suffix longer than the body is all of it");
        assert_eq!(range("bytes=990-5000", 1000), Some((990, 999)), "the end is clamped");
        const NONE: Option<(u64, u64)> = Some((u64::MAX, u64::MAX));
        assert_eq!(range("bytes=1000-", 1000), NONE, "a start past the end is unsatisfiable");
        assert_eq!(range("bytes=-0", 1000), NONE);
        for ignored in ["bytes=5-1", "bytes=a-b", "bytes=-", "items=0-1", "bytes=0-1,5-6", ""] {
            assert_eq!(range(ignored, 1000), None, "{ignored:?} is ignored (whole body)");
        }
    }
}
