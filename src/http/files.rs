//! The store and file API: upload, read, overwrite, delete, metadata.

use super::transform::deliver_source;
use super::{AppState, QueryParams};
use crate::error::{Error, Result};
use crate::mediatype;
use crate::pipeline::format::{sniff, Sniffed};
use crate::pipeline::{decode, guard, Limits};
use crate::security::{Access, Call};
use crate::store::{FileMeta, Spooled, Upload};
use crate::url::SourceSpec;
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
async fn spool<S, E>(state: &AppState, stream: &mut S, limits: BodyLimits, what: &str) -> Result<Spooled>
where
    S: futures_util::Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let BodyLimits { max_bytes, min_rate } = limits;
    let started = Instant::now();
    let too_slow = || Error::Timeout(format!("the upload arrived slower than {min_rate} bytes a second"));
    let mut spool = state.store.spool().await?;
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
    spool.finish().await
}

/// What an upload's body holds, spooled to disk, with the part's file name and type.
struct Body {
    spooled: Spooled,
    filename: Option<String>,
    mime: Option<String>,
}

/// The body of an upload: raw bytes, a multipart `fileUpload` part, or a form `url=`.
async fn read_body(req: &HttpRequest, state: &AppState, mut payload: web::Payload) -> Result<Body> {
    let limits =
        BodyLimits { max_bytes: state.config.max_upload_bytes, min_rate: state.config.upload_min_bytes_per_sec };
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
            let mime = field.headers().get("content-type").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let spooled = spool(state, &mut field, limits, "malformed multipart body").await?;
            if name == "fileUpload" || filename.is_some() {
                return Ok(Body { spooled, filename, mime });
            }
        }
        return Err(Error::bad("multipart body has no `fileUpload` part"));
    }
    let spooled = spool(state, &mut payload, limits, "reading the body failed").await?;
    // `curl --data-binary @photo.jpg` labels raw bytes as a form, so only a body that really is a
    // small form with `url=` is taken as one.
    if content_type.starts_with("application/x-www-form-urlencoded") && spooled.size < 16 * 1024 {
        if let Some(url) = form_url(&spooled) {
            return fetch_url_upload(state, &url).await;
        }
    }
    let declared = !content_type.is_empty()
        && !content_type.starts_with("application/octet-stream")
        && !content_type.starts_with("application/x-www-form-urlencoded");
    Ok(Body { spooled, filename: None, mime: declared.then_some(content_type) })
}

/// The `url` field of a small urlencoded form.
fn form_url(spooled: &Spooled) -> Option<String> {
    let text = std::fs::read(spooled.path()).ok()?;
    let form = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&text).ok()?;
    form.into_iter().find(|(k, _)| k == "url").map(|(_, v)| v)
}

/// A form `url=` upload: the external file, fetched through the guarded source fetcher.
async fn fetch_url_upload(state: &AppState, url: &str) -> Result<Body> {
    let (spec, _) = crate::url::SourceSpec::parse_external(url)?;
    let bytes = state.sources.fetch(&spec).await?;
    let mut spool = state.store.spool().await?;
    spool.write(&bytes).await?;
    let filename = url.rsplit('/').next().map(|n| n.split('?').next().unwrap_or(n).to_string());
    Ok(Body { spooled: spool.finish().await?, filename, mime: None })
}

/// Check what the bytes are; refuse empty bodies, files that claim to be images but are not,
/// and images whose containers or metadata exceed the limits. The bytes decide the stored type
/// when they say what they are; otherwise the declared (or guessed) type, if it is a known one.
/// Probing parses the file: call it on the blocking pool.
fn inspect(bytes: &[u8], filename: &Option<String>, declared: Option<String>, limits: &Limits) -> Result<Upload> {
    if bytes.is_empty() {
        return Err(Error::bad("the upload is empty"));
    }
    let declared = declared.as_deref().map(mediatype::parse_declared).transpose()?;
    let guessed = filename.as_deref().and_then(|f| mime_guess::from_path(f).first_raw()).map(str::to_string);
    let claimed = declared.or(guessed);
    match sniff(bytes) {
        Sniffed::Image(format) => {
            // a hostile container is a 422; a file that merely does not decode, a 400
            guard::check(bytes, format, limits.max_metadata_bytes)?;
            let unlimited = Limits { max_pixels: u64::MAX, ..*limits };
            let probe = decode::probe(bytes, format, &unlimited)
                .map_err(|e| Error::bad(format!("corrupt {} upload: {e}", format.mime())))?;
            let (w, h) = probe.oriented();
            if w as u64 * h as u64 > limits.max_pixels {
                tracing::info!(w, h, "stored an image over the pixel limit; transforms of it will be refused");
            }
            Ok(Upload {
                mimetype: Some(format.mime().to_string()),
                width: Some(w),
                height: Some(h),
                ..Upload::default()
            })
        }
        Sniffed::Unsupported(mime) => Ok(Upload { mimetype: Some(mime.to_string()), ..Upload::default() }),
        Sniffed::Unknown => {
            if claimed.as_deref().is_some_and(|m| m.starts_with("image/") && m != "image/svg+xml") {
                return Err(Error::UnsupportedMedia(format!(
                    "the upload claims to be {} but its bytes are not an image in a known format",
                    claimed.unwrap_or_default()
                )));
            }
            let mime = match mediatype::sniff_active(bytes) {
                Some(active) => active.to_string(),
                None => mediatype::allow_listed(claimed.as_deref().unwrap_or("application/octet-stream")),
            };
            Ok(Upload { mimetype: Some(mime), ..Upload::default() })
        }
    }
}

fn store_answer(state: &AppState, meta: &FileMeta, key: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "url": format!("{}/{}", state.public_url, meta.handle),
        "handle": meta.handle,
        "size": meta.size,
        "type": meta.mimetype,
        "filename": meta.filename,
        "key": key.unwrap_or(""),
        "container": meta.container,
    })
}

async fn write(req: &HttpRequest, state: &AppState, payload: web::Payload, handle: Option<String>) -> Result<FileMeta> {
    let query = QueryParams::parse(req.uri().query());
    // checked before the body is read: a bad declaration costs no upload
    let declared = query.get("mimetype");
    declared.as_deref().map(mediatype::parse_declared).transpose()?;
    let _slot = state.uploads.try_acquire().map_err(|_| Error::Overloaded)?;
    let body = read_body(req, state, payload).await?;
    if body.spooled.size == 0 {
        return Err(Error::bad("the upload is empty"));
    }
    let filename = query.get("filename").or(body.filename);
    let (limits, name, declared, spooled) = (state.limits(), filename.clone(), declared.or(body.mime), body.spooled);
    // probing parses the file: on the blocking pool, over the spooled file mapped into memory
    let (spooled, inspected) = tokio::task::spawn_blocking(move || {
        let inspected = spooled.map().map_err(Error::from).and_then(|m| inspect(&m, &name, declared, &limits));
        (spooled, inspected)
    })
    .await
    .map_err(Error::internal)?;
    let mut upload = inspected?;
    upload.filename = filename;
    upload.container = query.get("container");
    upload.path = query.get("path");
    state.store.put_spooled(handle, spooled, upload).await
}

/// `POST /api/store/{storage}`
pub async fn store(req: HttpRequest, state: web::Data<AppState>, payload: web::Payload) -> Result<HttpResponse> {
    let query = QueryParams::parse(req.uri().query());
    state.security.check_apikey(query.get("key").as_deref(), true)?;
    state.security.authorize(query.security().as_ref(), &Access::new(Call::Store))?;
    let meta = write(&req, &state, payload, None).await?;
    Ok(super::respond::json(store_answer(&state, &meta, query.get("key").as_deref())))
}

/// `POST /api/file/{handle}`: overwrite, then drop every derivative of the old bytes.
pub async fn overwrite(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
    handle: web::Path<String>,
) -> Result<HttpResponse> {
    let query = QueryParams::parse(req.uri().query());
    state.security.authorize(query.security().as_ref(), &Access::handle(Call::Write, &handle))?;
    state.store.meta(&handle).await?;
    let meta = write(&req, &state, payload, Some(handle.to_string())).await?;
    let purged = purge(&state, &handle).await;
    tracing::info!(handle = %handle, purged, "overwrote file");
    let mut answer = store_answer(&state, &meta, query.get("key").as_deref());
    answer["derivatives_purged"] = purged.into();
    Ok(super::respond::json(answer))
}

/// `DELETE /api/file/{handle}`
pub async fn delete(req: HttpRequest, state: web::Data<AppState>, handle: web::Path<String>) -> Result<HttpResponse> {
    let query = QueryParams::parse(req.uri().query());
    state.security.authorize(query.security().as_ref(), &Access::handle(Call::Remove, &handle))?;
    state.store.delete(&handle).await?;
    let purged = purge(&state, &handle).await;
    tracing::info!(handle = %handle, purged, "deleted file");
    Ok(super::respond::json(
        serde_json::json!({ "handle": handle.as_str(), "deleted": true, "derivatives_purged": purged }),
    ))
}

/// `GET|HEAD /api/file/{handle}`
pub async fn read(req: HttpRequest, state: web::Data<AppState>, handle: web::Path<String>) -> Result<HttpResponse> {
    let query = QueryParams::parse(req.uri().query());
    state.security.authorize(query.security().as_ref(), &Access::handle(Call::Read, &handle))?;
    deliver_source(&req, &state, &SourceSpec::handle(handle.to_string()), &query).await
}

/// `GET /api/file/{handle}/metadata`
pub async fn metadata_route(
    req: HttpRequest,
    state: web::Data<AppState>,
    handle: web::Path<String>,
) -> Result<HttpResponse> {
    metadata(&req, &state, &handle).await
}

/// The asked fields (`?size=true&width=true…`), or the usual set when none are asked.
pub async fn metadata(req: &HttpRequest, state: &AppState, handle: &str) -> Result<HttpResponse> {
    let query = QueryParams::parse(req.uri().query());
    state.security.authorize(query.security().as_ref(), &Access::handle(Call::Stat, handle))?;
    let meta = state.store.meta(handle).await?;
    let all = serde_json::json!({
        "handle": meta.handle,
        "filename": meta.filename,
        "mimetype": meta.mimetype,
        "size": meta.size,
        "uploaded": meta.uploaded,
        "width": meta.width,
        "height": meta.height,
        "md5": meta.md5,
        "sha1": meta.sha1,
        "sha256": meta.sha256,
        "container": meta.container,
        "path": meta.path,
        "location": "local",
        "writeable": true,
    });
    let asked: Vec<String> = query.pairs.iter().filter(|(_, v)| v == "true").map(|(k, _)| k.clone()).collect();
    let mut out = serde_json::Map::new();
    let defaults =
        ["filename", "mimetype", "size", "uploaded", "width", "height", "container", "path", "location", "writeable"];
    let fields: Vec<&str> =
        if asked.is_empty() { defaults.to_vec() } else { asked.iter().map(String::as_str).collect() };
    for f in fields {
        if let Some(v) = all.get(f) {
            out.insert(f.to_string(), v.clone());
        }
    }
    Ok(super::respond::json(serde_json::Value::Object(out)))
}

/// Drop every derivative of a handle (a sled scan and file removals: off the async threads).
async fn purge(state: &web::Data<AppState>, handle: &str) -> usize {
    let (st, h) = (state.clone(), handle.to_string());
    tokio::task::spawn_blocking(move || st.cache.purge_source(&h)).await.unwrap_or(0)
}
