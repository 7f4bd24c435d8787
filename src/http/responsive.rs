//! `GET /responsive/<transformation path>`: the `<picture>` of an image (see
//! `origin::responsive`). The query's options and the request's host become a typed request; the
//! answer is bytes like any file answer (strong ETag, conditional requests, CDN headers).

use super::respond::answer;
use super::Shared;
use crate::error::Result;
use crate::origin::{Origin, ResponsiveOptions, ResponsiveRequest};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

pub async fn handle(req: HttpRequest, origin: Shared) -> Result<HttpResponse> {
    let path = req.uri().path().strip_prefix("/responsive").unwrap_or_default().to_string();
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let request = ResponsiveRequest {
        path,
        options: ResponsiveOptions::parse(req.uri().query())?,
        bearer: super::files::bearer(&req, &origin)?,
        base: base_url(&req, &origin),
        prefers_html: prefers_html(accept),
    };
    Ok(answer(&req, origin.responsive(request).await?).await)
}

/// What the written URLs start with: the configured `public_url` when there is one (as store
/// answers do), else `http://` and the request's `Host`. `X-Forwarded-Host`/`-Proto` are not
/// read: an edge keys its cache on the host, not on them, so a client could poison a cached
/// answer with another host's URLs.
fn base_url(req: &HttpRequest, origin: &Origin) -> String {
    if origin.config.public_url.is_some() {
        return origin.public_url.clone();
    }
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).filter(|h| valid_host(h));
    host.map_or_else(|| origin.public_url.clone(), |host| format!("http://{host}"))
}

/// A host and port: letters, digits, `-._:` and an IPv6 literal's brackets.
fn valid_host(host: &str) -> bool {
    !host.is_empty() && host.len() <= 255 && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
}

/// HTML when `Accept` names it and not JSON.
fn prefers_html(accept: &str) -> bool {
    accept.contains("text/html") && !accept.contains("application/json")
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_and_accept_headers() {
        assert!(super::valid_host("img.example.com:8080") && super::valid_host("[::1]:80"));
        assert!(!super::valid_host("evil.com/x") && !super::valid_host("a b") && !super::valid_host(""));
        assert!(super::prefers_html("text/html,application/xhtml+xml,*/*;q=0.8"));
        assert!(!super::prefers_html("application/json, text/html") && !super::prefers_html("*/*"));
    }
}
