//! Processing URLs over HTTP: `/[KEY/][debug/]tasks…/SOURCE` (and `/HANDLE/metadata`, which
//! filestack-python asks on the CDN host). The request becomes a typed service call; the answer
//! becomes headers.

use super::respond::answer;
use super::{PeerSocket, Shared};
use crate::error::{Error, Result};
use crate::origin::hints::{Hints, HINT_HEADERS};
use crate::origin::{Accepts, Method, ProcessRequest, QueryParams};
use actix_web::http::Method as HttpMethod;
use actix_web::{HttpRequest, HttpResponse};
use std::sync::Arc;

pub async fn handle(req: HttpRequest, origin: Shared) -> Result<HttpResponse> {
    // GET and HEAD read; POST is what filestack-python sends for `store` on a processing URL
    let method = match *req.method() {
        HttpMethod::GET => Method::Get,
        HttpMethod::HEAD => Method::Head,
        HttpMethod::POST => Method::Post,
        _ => return Err(Error::MethodNotAllowed),
    };
    let path = req.uri().path();
    if let Some(handle) = metadata_route(path) {
        let query = QueryParams::parse(req.uri().query());
        let asker = super::files::asker(&req, &query, &origin)?;
        return Ok(answer(&req, origin.metadata(handle, &query, &asker).await?).await);
    }
    let parsed = origin.parse(path, req.uri().query())?;
    let peer = req.conn_data::<PeerSocket>().copied();
    let request = ProcessRequest {
        parsed,
        method,
        accepts: accepts(req.headers().get("accept").and_then(|v| v.to_str().ok()).unwrap_or("")),
        client_gone: peer.map(|p| Arc::new(move || p.gone()) as crate::origin::ClientGone),
        bearer: super::files::bearer(&req, &origin)?,
        if_none_match: super::respond::if_none_match(&req),
        hints: hints(&req),
    };
    Ok(answer(&req, origin.process(request).await?).await)
}

/// The client hint headers sent with a number (a hint that is not one is ignored).
fn hints(req: &HttpRequest) -> Hints {
    let number = |name: &str| req.headers().get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    let values = HINT_HEADERS
        .into_iter()
        .filter_map(|name| number(name).filter(|v| v.is_finite() && *v > 0.0).map(|v| (name, v)))
        .collect();
    Hints { values }
}

/// `/HANDLE/metadata` on the CDN host (filestack-python).
fn metadata_route(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?.strip_suffix("/metadata")?;
    crate::handle::is_valid(rest).then_some(rest)
}

/// Which of the formats worth negotiating `Accept` allows (a `q=0` refuses one).
pub fn accepts(accept: &str) -> Accepts {
    let allows = |mime: &str| {
        accept.split(',').any(|part| {
            let mut fields = part.split(';').map(str::trim);
            let refused = |f: &str| f.strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()) == Some(0.0);
            fields.next() == Some(mime) && !fields.any(refused)
        })
    };
    Accepts { avif: allows("image/avif"), webp: allows("image/webp") }
}

/// `POST /process`: the JSON processing API (`upload_url`, `storeURL`).
pub async fn process_json(req: HttpRequest, body: actix_web::web::Bytes, origin: Shared) -> Result<HttpResponse> {
    let call: crate::origin::ProcessCall =
        serde_json::from_slice(&body).map_err(|e| Error::bad(format!("malformed JSON body: {e}")))?;
    Ok(answer(&req, origin.process_json(call).await?).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_choose_formats() {
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        assert_eq!(accepts(chrome), Accepts { avif: true, webp: true });
        assert_eq!(accepts("image/webp,*/*"), Accepts { avif: false, webp: true });
        assert_eq!(accepts("image/avif;q=0, image/webp"), Accepts { avif: false, webp: true });
        assert_eq!(accepts("*/*"), Accepts::default());
        assert_eq!(metadata_route("/AAAAAAAAAAAAAAAAAAAA/metadata"), Some("AAAAAAAAAAAAAAAAAAAA"));
        assert_eq!(metadata_route("/resize=w:1/AAAA/metadata"), None);
    }
}
