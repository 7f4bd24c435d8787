//! The store and file API over HTTP: bodies are spooled to disk as they arrive (raw, multipart
//! `fileUpload`, or a form `url=`), then handed to the service layer.

use super::respond::answer;
use super::Shared;
use crate::error::{Error, Result};
use crate::origin::{Asker, FileFields, Origin, QueryParams};
use crate::security::Credentials;
use crate::store::Spooled;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

/// An upload slower than the floor is only measured after this long (slow starts are normal).
const RATE_GRACE: Duration = Duration::from_secs(10);

/// Bounds on a body as it arrives.
#[derive(Clone, Copy)]
struct BodyLimits {
    max_bytes: u64,
    min_rate: u64,
}

/// Write a body stream to a spool file as it arrives, refusing it (413) as soon as it passes the
/// size limit, and cutting it (408) when it arrives slower than the rate floor after the grace
/// period: a client trickling bytes would otherwise hold an upload slot for as long as it likes.
async fn spool<S, E>(origin: &Origin, stream: &mut S, limits: BodyLimits, what: &str) -> Result<Spooled>
where
    S: futures_util::Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let BodyLimits { max_bytes, min_rate } = limits;
    let started = Instant::now();
    let too_slow = || Error::Timeout(format!("the upload arrived slower than {min_rate} bytes a second"));
    let mut spool = origin.store.spool().await?;
    loop {
        // the next chunk must come before the average rate would fall under the floor
        let due = RATE_GRACE.max(Duration::from_secs(spool.size() / min_rate.max(1)));
        let wait = due.saturating_sub(started.elapsed()).max(Duration::from_secs(1));
        let Some(chunk) = tokio::time::timeout(wait, stream.next()).await.map_err(|_| too_slow())? else { break };
        let chunk = chunk.map_err(|e| Error::bad(format!("{what}: {e}")))?;
        if spool.size() + chunk.len() as u64 > max_bytes {
            return Err(Error::PayloadTooLarge(format!("upload is larger than the limit of {max_bytes} bytes")));
        }
        spool.write(&chunk).await?;
        let elapsed = started.elapsed();
        if elapsed > RATE_GRACE && (spool.size() as f64) < min_rate as f64 * elapsed.as_secs_f64() {
            return Err(too_slow());
        }
    }
    Ok(spool.finish().await?)
}

/// The body of an upload, spooled: raw bytes, a multipart `fileUpload` part (with its file name
/// and type), or the file a form's `url=` names.
async fn read_body(req: &HttpRequest, origin: &Origin, mut payload: web::Payload) -> Result<(Spooled, FileFields)> {
    let config = &origin.config;
    let limits = BodyLimits { max_bytes: config.max_upload_bytes, min_rate: config.upload_min_bytes_per_sec };
    let declared_length = req.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > limits.max_bytes) {
        let limit = limits.max_bytes;
        return Err(Error::PayloadTooLarge(format!("upload is larger than the limit of {limit} bytes")));
    }
    let content_type =
        req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let mut form = actix_multipart::Multipart::new(req.headers(), payload);
        while let Some(field) = form.next().await {
            let mut field = field.map_err(|e| Error::bad(format!("malformed multipart body: {e}")))?;
            let name = field.content_disposition().and_then(|d| d.get_name()).unwrap_or("").to_string();
            let filename = field.content_disposition().and_then(|d| d.get_filename()).map(str::to_string);
            // the raw header, so that control characters in it are seen (and refused)
            let mimetype =
                field.headers().get("content-type").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let spooled = spool(origin, &mut field, limits, "malformed multipart body").await?;
            if name == "fileUpload" || filename.is_some() {
                return Ok((spooled, FileFields { filename, mimetype, ..Default::default() }));
            }
        }
        return Err(Error::bad("multipart body has no `fileUpload` part"));
    }
    let spooled = spool(origin, &mut payload, limits, "reading the body failed").await?;
    // `curl --data-binary @photo.jpg` labels raw bytes as a form, so only a body that really is a
    // small form with `url=` is taken as one.
    if content_type.starts_with("application/x-www-form-urlencoded") && spooled.size < 16 * 1024 {
        if let Some(url) = form_url(&spooled).await {
            let (spooled, filename) = origin.spool_url(&url).await?;
            return Ok((spooled, FileFields { filename, source_url: Some(url), ..Default::default() }));
        }
    }
    let declared = !content_type.is_empty()
        && !content_type.starts_with("application/octet-stream")
        && !content_type.starts_with("application/x-www-form-urlencoded");
    Ok((spooled, FileFields { mimetype: declared.then_some(content_type), ..Default::default() }))
}

/// The `url` field of a small urlencoded form.
async fn form_url(spooled: &Spooled) -> Option<String> {
    let text = tokio::fs::read(spooled.path()).await.ok()?;
    let form = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&text).ok()?;
    form.into_iter().find(|(k, _)| k == "url").map(|(_, v)| v)
}

/// An upload: checked before its body is read, then spooled, then stored.
async fn upload(
    req: &HttpRequest,
    origin: &Origin,
    payload: web::Payload,
    overwrite: Option<&str>,
) -> Result<HttpResponse> {
    let query = QueryParams::parse(req.uri().query());
    let mut fields = FileFields::from_query(&query);
    fields.creds = asker(req, &query, origin)?.creds;
    // `/api/store/{location}`
    fields.location = req.match_info().get("storage").map(str::to_string);
    let _slot = origin.begin_upload(&fields, overwrite).await?;
    let (spooled, part) = read_body(req, origin, payload).await?;
    fields.filename = fields.filename.or(part.filename);
    fields.mimetype = fields.mimetype.or(part.mimetype);
    Ok(answer(req, origin.finish_upload(spooled, fields, overwrite).await?).await)
}

/// `POST /api/store/{location}`
pub async fn store(req: HttpRequest, origin: Shared, payload: web::Payload) -> Result<HttpResponse> {
    upload(&req, &origin, payload, None).await
}

/// Who asks a file call: `key`, and the query's policy or else the `Authorization` header.
pub fn asker(req: &HttpRequest, query: &QueryParams, origin: &Origin) -> Result<Asker> {
    let creds = match query.security() {
        Some(p) => Some(p.into()),
        None => bearer(req, origin)?,
    };
    Ok(Asker { apikey: query.get("key"), creds })
}

/// Credentials of an `Authorization: Bearer` header; a malformed one is a 401. An open server
/// (no apps) has nothing to check them with and ignores the header.
pub fn bearer(req: &HttpRequest, origin: &Origin) -> Result<Option<Credentials>> {
    let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) else { return Ok(None) };
    if !origin.security.has_apps() {
        return Ok(None);
    }
    let parsed = match value.to_str() {
        Ok(v) => Credentials::from_authorization(v),
        Err(_) => Err(Error::Unauthorized("the Authorization header is not ASCII".into())),
    };
    // refused before any app is known: logged here, as the security module logs its refusals
    if let Err(e) = &parsed {
        tracing::warn!(app = "-", call = "-", reason = ?e.to_string(), "refused");
    }
    parsed
}

/// `POST /api/file/{handle}`: overwrite, then drop every derivative of the old bytes.
pub async fn overwrite(
    req: HttpRequest,
    origin: Shared,
    payload: web::Payload,
    handle: web::Path<String>,
) -> Result<HttpResponse> {
    upload(&req, &origin, payload, Some(&handle)).await
}

/// `DELETE /api/file/{handle}`
pub async fn delete(req: HttpRequest, origin: Shared, handle: web::Path<String>) -> Result<HttpResponse> {
    let query = QueryParams::parse(req.uri().query());
    Ok(answer(&req, origin.delete_file(&handle, &asker(&req, &query, &origin)?).await?).await)
}

/// `GET|HEAD /api/file/{handle}`
pub async fn read(req: HttpRequest, origin: Shared, handle: web::Path<String>) -> Result<HttpResponse> {
    let query = QueryParams::parse(req.uri().query());
    Ok(answer(&req, origin.read_file(&handle, &query, &asker(&req, &query, &origin)?).await?).await)
}

/// `GET /api/file/{handle}/metadata`
pub async fn metadata(req: HttpRequest, origin: Shared, handle: web::Path<String>) -> Result<HttpResponse> {
    let query = QueryParams::parse(req.uri().query());
    Ok(answer(&req, origin.metadata(&handle, &query, &asker(&req, &query, &origin)?).await?).await)
}
