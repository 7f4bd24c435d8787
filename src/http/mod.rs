//! actix-web routes, the request-id/metrics middleware and server start-up.

mod files;
pub mod respond;
mod transform;

use crate::cache::{Cache, Key};
use crate::config::Config;
use crate::error::Error;
use crate::metrics::METRICS;
use crate::pool::{Flights, Pool};
use crate::security::Security;
use crate::source::Sources;
use crate::store::Store;
use crate::url::SecurityParams;
use actix_web::dev::Service;
use actix_web::{web, App, HttpResponse, HttpServer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::Instrument;

pub struct AppState {
    pub config: Config,
    pub public_url: String,
    pub store: Arc<Store>,
    pub cache: Arc<Cache>,
    pub sources: Sources,
    pub security: Security,
    pub pool: Pool,
    /// Uploads being read; more are refused (503) rather than buffered.
    pub uploads: tokio::sync::Semaphore,
    flights: Flights<Key, transform::Outcome>,
    parsed: moka::sync::Cache<String, Arc<transform::Parsed>>,
}

/// Refract's own query parameters (`dl`, `policy`, `signature`, the store API's fields).
/// Parsed without turning `+` into a space: standard-base64 policies contain `+`.
#[derive(Debug, Default, Clone)]
pub struct QueryParams {
    pub pairs: Vec<(String, String)>,
    pub download: bool,
}

impl QueryParams {
    pub fn parse(raw: Option<&str>) -> QueryParams {
        let pairs: Vec<(String, String)> = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, "true"));
                let dec = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
                (dec(k), dec(v))
            })
            .collect();
        let download = pairs.iter().any(|(k, v)| k == "dl" && v == "true");
        QueryParams { pairs, download }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    pub fn security(&self) -> Option<SecurityParams> {
        Some(SecurityParams { policy: self.get("policy")?, signature: self.get("signature")? })
    }
}

impl AppState {
    pub fn open(config: Config, listen: &str) -> Result<AppState, String> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| format!("cannot create data dir {}: {e}", config.data_dir.display()))?;
        let probe = config.data_dir.join(".write-test");
        std::fs::write(&probe, b"ok")
            .map_err(|e| format!("data dir {} is not writable: {e}", config.data_dir.display()))?;
        std::fs::remove_file(&probe).ok();
        let store = Arc::new(
            Store::open(&config.data_dir, config.source_memory_bytes)
                .map_err(|e| format!("cannot open the file store: {e}"))?,
        );
        let cache = Arc::new(Cache::open(&config.data_dir, config.cache_max_bytes, config.cache_memory_bytes)?);
        Ok(AppState {
            public_url: config.public_url(listen),
            sources: Sources::new(&config, store.clone()),
            security: Security::new(config.secret.as_deref(), &config.api_keys),
            pool: Pool::new(config.workers(), config.queue_len),
            uploads: tokio::sync::Semaphore::new(config.max_concurrent_uploads),
            flights: Flights::default(),
            parsed: moka::sync::Cache::new(50_000),
            store,
            cache,
            config,
        })
    }
}

impl AppState {
    /// What one transform may cost.
    pub fn limits(&self) -> crate::pipeline::Limits {
        crate::pipeline::Limits {
            max_pixels: self.config.max_pixels,
            max_metadata_bytes: self.config.max_metadata_bytes,
            max_upscale: self.config.max_upscale,
            timeout: std::time::Duration::from_millis(self.config.transform_timeout_ms),
        }
    }
}

fn route_label(path: &str) -> &'static str {
    match path {
        "/healthz" => "healthz",
        "/metrics" => "metrics",
        p if p.starts_with("/api/store") => "store",
        p if p.starts_with("/api/file") => "file",
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
        .route("/metrics", web::get().to(metrics))
        .service(
            web::scope("/api")
                .route("/store/{storage}", web::post().to(files::store))
                .route("/file/{handle}/metadata", web::get().to(files::metadata_route))
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
        .default_service(web::to(transform::handle));
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
    respond::ERROR_MAX_AGE.store(config.error_max_age_secs, Ordering::Relaxed);
    let state = web::Data::new(AppState::open(config, &addr.to_string())?);
    spawn_sweeper(state.clone());
    let server_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(server_state.clone())
            .wrap_fn(|req, srv| {
                let id = REQUEST_IDS.fetch_add(1, Ordering::Relaxed);
                let route = route_label(req.path());
                let span = tracing::info_span!("request", id, method = %req.method(), path = %req.path());
                let fut = respond::REQUEST_ID.scope(id, srv.call(req)).instrument(span.clone());
                async move {
                    use actix_web::http::header::{HeaderName, HeaderValue};
                    let mut res = fut.await?;
                    let _entered = span.enter();
                    let status = res.status().as_u16();
                    METRICS.requests.with_label_values(&[route, &status.to_string()]).inc();
                    let headers = res.headers_mut();
                    headers.insert(HeaderName::from_static("x-request-id"), HeaderValue::from(id));
                    // no answer of the origin is ever to be content-sniffed into something active
                    headers
                        .insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
                    tracing::debug!(status, "answered");
                    Ok(res)
                }
            })
            .configure(routes)
    })
    .on_connect(remember_socket)
    .workers(state.config.workers().max(2))
    .listen(listener)
    .map_err(|e| format!("cannot listen on {addr}: {e}"))?
    .run();
    println!("refract listening on http://{addr}");
    use std::io::Write;
    std::io::stdout().flush().ok();
    let result = server.await.map_err(|e| e.to_string());
    state.cache.flush();
    result
}

fn spawn_sweeper(state: web::Data<AppState>) {
    let every = std::time::Duration::from_secs(state.config.cache_sweep_secs.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let st = state.clone();
            let removed = tokio::task::spawn_blocking(move || st.cache.sweep()).await.unwrap_or(0);
            if removed > 0 {
                tracing::info!(removed, "cache sweep");
            }
        }
    });
}
