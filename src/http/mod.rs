//! actix-web routes, the request-id/metrics middleware and server start-up.

mod files;
mod multipart;
mod process;
pub mod respond;
mod responsive;

use crate::config::Config;
use crate::error::Error;
use crate::metrics::METRICS;
use crate::origin::Origin;
use actix_web::dev::Service;
use actix_web::{web, App, HttpResponse, HttpServer};
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::Instrument;

/// The service layer, shared by every worker of the server.
pub type Shared = web::Data<Origin>;

fn route_label(path: &str) -> &'static str {
    match path {
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        p if p.starts_with("/internal/") => "internal",
        "/metrics" => "metrics",
        p if p.starts_with("/api/store") => "store",
        p if p.starts_with("/api/file") => "file",
        p if p.starts_with("/responsive/") => "responsive",
        p if p.ends_with("/metadata") => "metadata",
        _ => "process",
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// Ready for traffic: the store, the shared tier and the cache answer (503 otherwise, so a
/// balancer's health check takes the node out).
async fn readyz(state: Shared) -> HttpResponse {
    let report = state.ready().await;
    let mut answer = if report["ready"] == true { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    answer.insert_header(("Cache-Control", "no-store")).json(report)
}

/// A peer changed a file: forget it here. Only the cluster's token may ask.
async fn invalidate(
    state: Shared,
    req: actix_web::HttpRequest,
    handle: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !state.peers.authentic(token) {
        return Err(Error::Forbidden("not a peer of this cluster".into()));
    }
    if !crate::handle::is_valid(&handle) {
        return Err(Error::bad(format!("`{handle}` is not a handle")));
    }
    let purged = state.forget_file(&handle).await;
    tracing::info!(handle = %handle, purged, "a peer changed a file; forgotten here");
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(serde_json::json!({ "purged": purged })))
}

async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .content_type("text/plain; version=0.0.4")
        .body(METRICS.render())
}

async fn not_found() -> Result<HttpResponse, Error> {
    Err(Error::NotFound("no such route".into()))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // The API sits under one static prefix so that processing URLs, the hot path, are told apart
    // from it without running the router's pattern matching.
    cfg.route("/healthz", web::get().to(healthz))
        .route("/healthz", web::head().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/readyz", web::head().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .service(web::scope("/internal").route("/invalidate/{handle}", web::post().to(invalidate)))
        .service(
            web::scope("/api")
                .route("/store/{storage}", web::post().to(files::store))
                .route("/file/{handle}/metadata", web::get().to(files::metadata))
                .service(
                    web::resource("/file/{handle}")
                        .route(web::get().to(files::read))
                        .route(web::head().to(files::read))
                        .route(web::post().to(files::overwrite))
                        .route(web::put().to(files::overwrite))
                        .route(web::delete().to(files::delete)),
                )
                .default_service(web::to(not_found)),
        )
        .configure(multipart::routes)
        .route("/process", web::post().to(process::process_json))
        .service(
            web::resource("/responsive/{path:.*}")
                .route(web::get().to(responsive::handle))
                .route(web::head().to(responsive::handle)),
        )
        .default_service(web::to(process::handle));
}

/// Headers every answer carries, whatever produced it.
fn finish_headers(headers: &mut actix_web::http::header::HeaderMap, id: u64, status: u16, error_max_age: u64) {
    use actix_web::http::header::{HeaderName, HeaderValue, CACHE_CONTROL};
    headers.insert(HeaderName::from_static("x-request-id"), HeaderValue::from(id));
    // no answer of the origin is ever to be content-sniffed into something active
    headers.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    // repeated bad requests are absorbed by the edge for a while
    if (400..500).contains(&status) && !headers.contains_key(CACHE_CONTROL) {
        if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={error_max_age}")) {
            headers.insert(CACHE_CONTROL, v);
        }
    }
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

/// The client's socket, kept per connection so that a queued transform can see whether anyone
/// still waits for it (actix-web does not drop a handler when its client disconnects).
#[derive(Debug, Clone, Copy)]
pub struct PeerSocket(std::os::fd::RawFd);

impl PeerSocket {
    /// The peer closed its side: a peek reads end-of-stream. Pending request bytes or no data
    /// yet both mean someone is still there.
    pub fn gone(&self) -> bool {
        use std::os::fd::FromRawFd;
        // SAFETY: the descriptor belongs to a connection whose request is still being handled,
        // so it is open; ManuallyDrop keeps us from closing it, and peek neither consumes data
        // nor changes the socket's (already non-blocking) mode.
        let stream = std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(self.0) });
        let mut byte = [0u8; 1];
        matches!(stream.peek(&mut byte), Ok(0))
    }
}

fn remember_socket(conn: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    use std::os::fd::AsRawFd;
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        ext.insert(PeerSocket(tcp.as_raw_fd()));
    }
}

/// Bind, print `refract listening on http://ADDR` (tests and scripts read it), and serve.
pub async fn serve(config: Config) -> Result<(), String> {
    let listener =
        std::net::TcpListener::bind(&config.listen).map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let public_url = config.public_url(&addr.to_string());
    let state = web::Data::new(Origin::open(config, public_url)?);
    spawn_sweeper(state.clone());
    spawn_store_sweeper(state.clone());
    state.purger.start();
    let server_state = state.clone();
    let error_max_age = state.config.error_max_age_secs;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(server_state.clone())
            .wrap_fn(move |req, srv| {
                let id = REQUEST_IDS.fetch_add(1, Ordering::Relaxed);
                let route = route_label(req.path());
                let span = tracing::info_span!("request", id, method = %req.method(), path = %loggable(req.path()));
                let fut = respond::REQUEST_ID.scope(id, srv.call(req)).instrument(span.clone());
                async move {
                    let mut res = fut.await?;
                    let _entered = span.enter();
                    let status = res.status().as_u16();
                    METRICS.requests.with_label_values(&[route, &status.to_string()]).inc();
                    finish_headers(res.headers_mut(), id, status, error_max_age);
                    tracing::debug!(status, "answered");
                    Ok(res)
                }
            })
            .configure(routes)
    })
    .on_connect(remember_socket)
    .workers(state.config.workers().max(2))
    // SIGTERM (and SIGINT): stop accepting, give requests in flight this long, then return
    .shutdown_timeout(state.config.shutdown_timeout_secs)
    .listen(listener)
    .map_err(|e| format!("cannot listen on {addr}: {e}"))?
    .run();
    println!("refract listening on http://{addr}");
    use std::io::Write;
    std::io::stdout().flush().ok();
    let result = server.await.map_err(|e| e.to_string());
    state.cache.write_touches();
    state.cache.flush();
    tracing::info!("stopped; cache index flushed");
    result
}

/// A path for the log: a `security=` task's policy and signature left out (a signature in a
/// log could be replayed by whoever reads it).
fn loggable(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains("security=") {
        return path.into();
    }
    let redact = |seg: &str| if seg.starts_with("security=") { "security=[redacted]" } else { seg }.to_string();
    path.split('/').map(redact).collect::<Vec<_>>().join("/").into()
}

/// Data objects of the file store that no metadata points to (a crash between the two writes),
/// removed an hour after they were written: at start, then daily.
fn spawn_store_sweeper(state: Shared) {
    const GRACE: std::time::Duration = std::time::Duration::from_secs(3600);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(86_400));
        loop {
            tick.tick().await;
            match state.store.sweep_orphans(GRACE).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "file store: orphaned data objects removed"),
                Err(e) => tracing::warn!(error = %e, detail = e.detail(), "file store sweep failed"),
            }
        }
    });
}

/// The one background housekeeper of the cache: expiry, the size budget, orphans.
fn spawn_sweeper(state: Shared) {
    let every = std::time::Duration::from_secs(state.config.cache_sweep_secs.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = state.cache.over_budget() => {}
            }
            state.sweep_multipart();
            let cache = state.cache.clone();
            let Ok(done) = tokio::task::spawn_blocking(move || cache.housekeep()).await else { continue };
            if done.total() > 0 {
                tracing::info!(
                    expired = done.expired,
                    evicted = done.evicted,
                    orphans = done.orphans,
                    "cache housekeeping"
                );
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_stay_out_of_the_log() {
        assert_eq!(super::loggable("/resize=w:1/AAAA"), "/resize=w:1/AAAA");
        let path = "/KEY/security=p:eyJleHBpcnkiOjF9,s:abcdef/resize=w:1/AAAA";
        assert_eq!(super::loggable(path), "/KEY/security=[redacted]/resize=w:1/AAAA");
    }
}
