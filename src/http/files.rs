//! The store and file API: upload, read, overwrite, delete, metadata.

use super::transform::deliver_source;
use super::{AppState, QueryParams};
use crate::error::{Error, Result};
use crate::pipeline::decode;
use crate::pipeline::format::{sniff, Sniffed};
use crate::security::{Access, Call};
use crate::store::{FileMeta, Upload};
use crate::url::SourceSpec;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

/// Gather a body stream, refusing it (413) as soon as it passes `limit` bytes.
async fn collect<S, E>(stream: &mut S, limit: u64, what: &str) -> Result<Bytes>
where
    S: futures_util::Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::bad(format!("{what}: {e}")))?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(Error::PayloadTooLarge(format!("upload is larger than the limit of {limit} bytes")));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The body of an upload: raw bytes, a multipart `fileUpload` part, or a form `url=`.
async fn read_body(
    req: &HttpRequest,
    state: &AppState,
    mut payload: web::Payload,
) -> Result<(Bytes, Option<String>, Option<String>)> {
    let limit = state.config.max_upload_bytes;
    let too_large = || Error::PayloadTooLarge(format!("upload is larger than the limit of {limit} bytes"));
    if req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit)
    {
        return Err(too_large());
    }
    let content_type =
        req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let mut form = actix_multipart::Multipart::new(req.headers(), payload);
        while let Some(field) = form.next().await {
            let mut field = field.map_err(|e| Error::bad(format!("malformed multipart body: {e}")))?;
            let name = field.content_disposition().and_then(|d| d.get_name()).unwrap_or("").to_string();
            let filename = field.content_disposition().and_then(|d| d.get_filename()).map(str::to_string);
            let mime = field.content_type().map(|m| m.to_string());
            let body = collect(&mut field, limit, "malformed multipart body").await?;
            if name == "fileUpload" || filename.is_some() {
                return Ok((body, filename, mime));
            }
        }
        return Err(Error::bad("multipart body has no `fileUpload` part"));
    }
    let buf = collect(&mut payload, limit, "reading the body failed").await?;
    // `curl --data-binary @photo.jpg` labels raw bytes as a form, so only a body that really is a
    // small form with `url=` is taken as one.
    let form_url = (content_type.starts_with("application/x-www-form-urlencoded") && buf.len() < 16 * 1024)
        .then(|| serde_urlencoded::from_bytes::<Vec<(String, String)>>(&buf).ok())
        .flatten()
        .and_then(|form| form.into_iter().find(|(k, _)| k == "url").map(|(_, v)| v));
    if let Some(url) = form_url {
        let (spec, _) = crate::url::SourceSpec::parse_external(&url)?;
        let bytes = state.sources.fetch(&spec).await?;
        let name = url.rsplit('/').next().map(|n| n.split('?').next().unwrap_or(n).to_string());
        return Ok((bytes, name, None));
    }
    let declared = !content_type.is_empty()
        && !content_type.starts_with("application/octet-stream")
        && !content_type.starts_with("application/x-www-form-urlencoded");
    let mime = declared.then_some(content_type);
    Ok((buf, None, mime))
}

/// Check what the bytes are; refuse empty bodies and files that claim to be images but are not.
fn inspect(bytes: &[u8], filename: &Option<String>, declared: Option<String>, max_pixels: u64) -> Result<Upload> {
    if bytes.is_empty() {
        return Err(Error::bad("the upload is empty"));
    }
    let guessed = filename.as_deref().and_then(|f| mime_guess::from_path(f).first_raw()).map(str::to_string);
    let claimed = declared.clone().or(guessed.clone());
    match sniff(bytes) {
        Sniffed::Image(format) => {
            let probe = decode::probe(bytes, format, u64::MAX)
                .map_err(|e| Error::bad(format!("corrupt {} upload: {e}", format.mime())))?;
            let (w, h) = probe.oriented();
            if w as u64 * h as u64 > max_pixels {
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
            Ok(Upload { mimetype: claimed.or(Some("application/octet-stream".into())), ..Upload::default() })
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
    let (bytes, part_name, part_mime) = read_body(req, state, payload).await?;
    let filename = query.get("filename").or(part_name);
    let mut upload = inspect(&bytes, &filename, query.get("mimetype").or(part_mime), state.config.max_pixels)?;
    upload.filename = filename;
    upload.container = query.get("container");
    upload.path = query.get("path");
    state.store.put(handle, bytes, upload).await
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
    Ok(super::respond::json(store_answer(&state, &meta, query.get("key").as_deref())))
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
