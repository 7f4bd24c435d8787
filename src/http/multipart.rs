//! Filestack's multipart upload protocol over HTTP: JSON calls under `/multipart/`, and the
//! part PUTs the `upload` answers point at (served here, as S3 would serve them for Filestack).

use super::respond::answer;
use super::Shared;
use crate::error::{Error, Result};
use crate::origin::MultipartCall;
use actix_web::{web, HttpRequest, HttpResponse};

/// The JSON body of a call (filestack-js and -python send JSON; a form is accepted too).
fn call(req: &HttpRequest, body: &[u8]) -> Result<MultipartCall> {
    let form = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if form.starts_with("application/x-www-form-urlencoded") {
        return serde_urlencoded::from_bytes(body).map_err(|e| Error::bad(format!("malformed form body: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| Error::bad(format!("malformed JSON body: {e}")))
}

pub async fn start(req: HttpRequest, body: web::Bytes, origin: Shared) -> Result<HttpResponse> {
    Ok(answer(&req, origin.multipart_start(call(&req, &body)?).await?).await)
}

pub async fn upload(req: HttpRequest, body: web::Bytes, origin: Shared) -> Result<HttpResponse> {
    Ok(answer(&req, origin.multipart_upload(call(&req, &body)?).await?).await)
}

pub async fn commit(req: HttpRequest, body: web::Bytes, origin: Shared) -> Result<HttpResponse> {
    Ok(answer(&req, origin.multipart_commit(call(&req, &body)?).await?).await)
}

pub async fn complete(req: HttpRequest, body: web::Bytes, origin: Shared) -> Result<HttpResponse> {
    Ok(answer(&req, origin.multipart_complete(call(&req, &body)?).await?).await)
}

/// `PUT /multipart/part/{upload_id}/{part}/{offset}`: the bytes of one part, answered with its
/// ETag (the SDKs echo it in `complete`).
pub async fn part(path: web::Path<(String, u32, u64)>, body: web::Bytes, origin: Shared) -> Result<HttpResponse> {
    let (id, part, offset) = path.into_inner();
    let etag = origin.multipart_put(&id, part, offset, body).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", etag))
        .insert_header(("Access-Control-Expose-Headers", "ETag"))
        .insert_header(("Cache-Control", "no-store"))
        .finish())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // a part carries at most 64 MiB (the SDKs send 5 to 8 MiB); the JSON calls are small
    cfg.service(
        web::scope("/multipart")
            .app_data(web::PayloadConfig::new(64 << 20))
            .route("/start", web::post().to(start))
            .route("/upload", web::post().to(upload))
            .route("/commit", web::post().to(commit))
            .route("/complete", web::post().to(complete))
            .route("/part/{id}/{part}/{offset}", web::put().to(part))
            .default_service(web::to(super::not_found)),
    );
}
