//! The processing URL: `/[KEY/][debug/]tasks…/SOURCE`. Plain delivery when there are no tasks,
//! `debug` JSON, or a derivative from the cache or the pipeline.

use super::respond::{json, unix, Caching, Delivery};
use super::{files, AppState, PeerSocket, QueryParams};
use crate::cache::{self, Cached, EntryMeta};
use crate::error::{Error, Result};
use crate::metrics::METRICS;
use crate::pipeline::{self, job::ImageJob, Format};
use crate::plan::{CachePolicy, Param, Plan};
use crate::pool::Admission;
use crate::security::{Access, Call};
use crate::url::{self, ParsedUrl, SourceSpec};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::Arc;
use std::time::Instant;

pub async fn handle(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    // GET and HEAD read; POST is what filestack-python sends for `store` on a processing URL
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::POST) {
        return Err(Error::MethodNotAllowed);
    }
    let path = req.uri().path();
    if let Some(handle) = metadata_route(path) {
        return files::metadata(&req, &state, handle).await;
    }
    let parsed = parse_request(&state, path, req.uri().query())?;
    let (url, plan) = (&parsed.url, &parsed.plan);
    let needs_key = !matches!(url.source, SourceSpec::Handle { .. });
    state.security.check_apikey(url.apikey.as_deref(), needs_key)?;
    let creds = url.security.clone().or_else(|| parsed.query.security());
    let stores = plan.tasks.iter().any(|t| t.name() == "store");
    let call = match (&parsed.job, stores) {
        (Some(_), _) => Call::Convert,
        (None, true) => Call::Store,
        (None, false) => Call::Read,
    };
    state.security.authorize(creds.as_ref(), &access(call, &url.source, parsed.job.as_ref()))?;
    if url.debug {
        return Ok(debug_answer(url, plan));
    }
    if stores {
        if call != Call::Store {
            state.security.authorize(creds.as_ref(), &access(Call::Store, &url.source, parsed.job.as_ref()))?;
        }
        return store_result(&req, &state, &parsed).await;
    }
    if req.method() == Method::POST {
        return Err(Error::MethodNotAllowed);
    }
    let fallback = fallback(plan)?;
    let answer = match &parsed.job {
        None => deliver_source(&req, &state, &url.source, &parsed.query).await,
        Some(_) => derivative(&req, &state, parsed.clone()).await,
    };
    match (answer, fallback) {
        (Err(e), Some((handle, max_age))) if fallback_applies(&e) => {
            tracing::info!(error = %e, fallback = %handle, "answering with the fallback file");
            let source = SourceSpec::handle(handle);
            state.security.authorize(creds.as_ref(), &access(Call::Read, &source, None))?;
            let mut response = deliver_source(&req, &state, &source, &parsed.query).await?;
            let cache_control = format!("public, max-age={max_age}");
            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&cache_control) {
                response.headers_mut().insert(actix_web::http::header::CACHE_CONTROL, v);
            }
            Ok(response)
        }
        (answer, _) => answer,
    }
}

/// `fallback=handle:H,cache:N`: the file to answer with when the source or the chain fails, and
/// how long that answer may be cached (default: one hour).
fn fallback(plan: &Plan) -> Result<Option<(String, u64)>> {
    let Some(task) = plan.tasks.iter().find(|t| t.name() == "fallback") else { return Ok(None) };
    let handle = task.get("handle").and_then(Param::as_str).unwrap_or_default();
    if !url::is_valid_handle(handle) {
        return Err(Error::bad_option("fallback", "handle", "the fallback must be a stored file's handle"));
    }
    let max_age = task.get("cache").and_then(Param::as_i64).map(|n| n as u64).unwrap_or(3600);
    Ok(Some((handle.to_string(), max_age)))
}

/// Failures of the source or of the pipeline; never a refusal (403) or a malformed request.
fn fallback_applies(e: &Error) -> bool {
    matches!(e.status(), 404 | 413 | 415 | 422 | 500 | 502)
}

/// A processing URL parsed, validated and compiled once. Repeated requests for one URL (the hit
/// path) skip the grammar and go straight to the cache key.
pub struct Parsed {
    url: ParsedUrl,
    plan: Plan,
    query: QueryParams,
    /// `None` when there is nothing to compute (plain delivery, or `debug`).
    job: Option<ImageJob>,
    canonical: String,
}

fn parse_request(state: &AppState, path: &str, raw_query: Option<&str>) -> Result<Arc<Parsed>> {
    let memo_key = match raw_query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    if let Some(parsed) = state.parsed.get(&memo_key) {
        return Ok(parsed);
    }
    // long URLs are rare and would crowd the memo out
    let memoize = memo_key.len() <= 1024;
    let url = url::parse(path, raw_query)?;
    let max_chain = state.config.max_chain;
    if url.tasks.len() > max_chain {
        return Err(Error::bad(format!(
            "the URL chains {} tasks, over the limit of {max_chain} (max_chain)",
            url.tasks.len()
        )));
    }
    let query = if url.query_consumed { QueryParams::default() } else { QueryParams::parse(raw_query) };
    let plan = Plan::build(&url)?;
    let computes = plan.processing().next().is_some() && !url.debug;
    let job = if computes { Some(ImageJob::compile(&plan)?) } else { None };
    let parsed = Arc::new(Parsed { canonical: plan.canonical(), url, plan, query, job });
    if memoize && !parsed.url.debug {
        state.parsed.insert(memo_key, parsed.clone());
    }
    Ok(parsed)
}

/// `/HANDLE/metadata` on the CDN host (filestack-python).
fn metadata_route(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?.strip_suffix("/metadata")?;
    url::is_valid_handle(rest).then_some(rest)
}

fn access<'a>(call: Call, source: &'a SourceSpec, job: Option<&'a ImageJob>) -> Access<'a> {
    let mut access = Access::new(call);
    access.handles.extend(job.map(ImageJob::overlays).unwrap_or_default());
    let mut visit = vec![source];
    while let Some(s) = visit.pop() {
        match s {
            SourceSpec::Handle { handle } => access.handles.push(handle.as_str()),
            SourceSpec::Url { url } => access.urls.push(url.as_str()),
            SourceSpec::List { items } => visit.extend(items),
            SourceSpec::Alias { .. } => access.alias = true,
        }
    }
    access
}

fn debug_answer(url: &ParsedUrl, plan: &Plan) -> HttpResponse {
    json(serde_json::json!({
        "debug": true,
        "apikey": url.apikey,
        "task_uri": plan.canonical(),
        "chain": plan.chain_json(),
        "security": url.security,
        "source": url.source,
        "status": { "http_code": 200, "message": "ok" },
    }))
}

fn caching(state: &AppState, policy: CachePolicy, remaining: u64) -> Caching {
    if policy == CachePolicy::Disabled {
        Caching::NoStore
    } else if state.security.enabled() {
        Caching::Revalidate
    } else {
        Caching::Public(remaining)
    }
}

/// The `content` task (Ruby SDK) names the file and chooses inline or attachment.
fn content_disposition(plan: &Plan, default_name: &str, download: bool) -> String {
    let content = plan.tasks.iter().find(|t| t.name() == "content");
    let name = content.and_then(|t| t.get("filename")).and_then(Param::as_str).unwrap_or(default_name);
    let attachment = download || content.and_then(|t| t.get("type")).and_then(Param::as_str) == Some("attachment");
    disposition(name, attachment)
}

/// `inline` or `attachment`, with an ASCII `filename` and, for other names, RFC 8187's
/// `filename*` (a header value must be ASCII).
fn disposition(filename: &str, download: bool) -> String {
    let kind = if download { "attachment" } else { "inline" };
    let ascii: String = filename
        .chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' { c } else { '_' })
        .collect();
    if ascii == filename {
        return format!("{kind}; filename=\"{ascii}\"");
    }
    let encoded = percent_encoding::utf8_percent_encode(filename, percent_encoding::NON_ALPHANUMERIC);
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The source's bytes as they are (no tasks).
pub async fn deliver_source(
    req: &HttpRequest,
    state: &AppState,
    source: &SourceSpec,
    query: &QueryParams,
) -> Result<HttpResponse> {
    let version = state.sources.version(source).await?;
    let (bytes, content_type, filename) = match source {
        SourceSpec::Handle { handle } => {
            let meta = state.store.meta(handle).await?;
            (state.store.read(&meta).await?, meta.mimetype.clone(), meta.filename.clone())
        }
        other => {
            let bytes = state.sources.fetch(other).await?;
            let ct = match pipeline::format::sniff(&bytes) {
                pipeline::format::Sniffed::Image(f) => f.mime().to_string(),
                pipeline::format::Sniffed::Unsupported(m) => m.to_string(),
                _ => crate::mediatype::sniff_active(&bytes).unwrap_or("application/octet-stream").to_string(),
            };
            let name =
                other.identity().rsplit('/').next().unwrap_or("file").split('?').next().unwrap_or("file").to_string();
            (bytes, ct, name)
        }
    };
    let checksum = version.version.clone();
    let keys = surrogate_source_key(source);
    let inline = crate::mediatype::inline_safe(&content_type, state.config.inline_svg);
    Ok(Delivery {
        bytes,
        content_type,
        checksum,
        modified: unix(version.modified.unwrap_or_else(cache::now)),
        caching: caching(state, CachePolicy::Default, state.config.cache_ttl_secs),
        surrogate_keys: keys,
        vary_accept: false,
        disposition: Some(disposition(&filename, query.download || !inline)),
        cache_status: "refract; detail=original",
        timing: String::new(),
    }
    .respond(req))
}

fn surrogate_source_key(source: &SourceSpec) -> String {
    match source {
        SourceSpec::Handle { handle } => handle.clone(),
        other => format!("src-{}", &blake3::hash(other.identity().as_bytes()).to_hex()[..16]),
    }
}

/// The source, every stored file the bytes depend on (watermarks), and the derivative itself:
/// a purge of any of them at the edge reaches this answer.
fn surrogate_keys(source: &SourceSpec, overlays: &[String], key: &cache::Key) -> String {
    let mut keys = surrogate_source_key(source);
    for handle in overlays {
        keys.push(' ');
        keys.push_str(handle);
    }
    keys + &format!(" d-{}", &hex::encode(key)[..16])
}

/// Derived bytes and how they were obtained.
#[derive(Clone)]
pub struct Outcome {
    cached: Arc<Cached>,
    status: &'static str,
    timing: String,
}

async fn derivative(req: &HttpRequest, state: &web::Data<AppState>, parsed: Arc<Parsed>) -> Result<HttpResponse> {
    let (outcome, key) = produce(req, state, &parsed).await?;
    let (url, plan) = (&parsed.url, &parsed.plan);
    let meta = &outcome.cached.meta;
    let stem = match &url.source {
        SourceSpec::Handle { handle } => {
            state.store.meta(handle).await.map(|m| m.filename.clone()).unwrap_or_else(|_| handle.clone())
        }
        other => other.identity(),
    };
    let stem = stem.rsplit('/').next().unwrap_or("file").split(['.', '?']).next().unwrap_or("file").to_string();
    let remaining = meta.expires.saturating_sub(cache::now());
    Ok(Delivery {
        bytes: outcome.cached.bytes.clone(),
        content_type: meta.content_type.clone(),
        checksum: meta.checksum.clone(),
        modified: unix(meta.created),
        caching: caching(state, plan.cache, remaining),
        surrogate_keys: surrogate_keys(&url.source, &meta.overlays, &key),
        vary_accept: meta.vary_accept,
        disposition: Some(content_disposition(plan, &format!("{stem}.{}", meta.extension), parsed.query.download)),
        cache_status: outcome.status,
        timing: outcome.timing,
    }
    .respond(req))
}

/// Everything that changes a derivative's bytes, hashed: the pipeline's version, the canonical
/// plan, the source's identity and version, the negotiated format, an explicit expiry and the
/// versions of the stored files it overlays.
async fn derivative_key(state: &AppState, parsed: &Parsed, negotiated: Option<Format>) -> Result<cache::Key> {
    let job = parsed.job.as_ref().expect("derivative needs a job");
    let version = state.sources.version(&parsed.url.source).await?;
    let negotiated_tag = negotiated.map(Format::extension).unwrap_or(if job.negotiates() { "original" } else { "" });
    // `cache=expiry:N` gives its URL an entry of its own, with that lifetime
    let expiry = match parsed.plan.cache {
        CachePolicy::Expiry(n) => n.to_string(),
        _ => String::new(),
    };
    // a watermark's own version is part of the key: overwriting it must not serve stale marks
    let mut overlay_versions = String::new();
    for handle in job.overlays() {
        overlay_versions += &state.sources.version(&SourceSpec::handle(handle.to_string())).await?.version;
    }
    Ok(cache::key(&[
        pipeline::VERSION,
        &parsed.canonical,
        &version.identity,
        &version.version,
        negotiated_tag,
        &expiry,
        &overlay_versions,
    ]))
}

/// The derivative's bytes: from the cache, or computed once (single-flight) and stored.
async fn produce(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    parsed: &Arc<Parsed>,
) -> Result<(Outcome, cache::Key)> {
    let job = parsed.job.as_ref().expect("derivative needs a job");
    let negotiated = negotiated_format(req, job);
    // an external source not seen lately is downloaded to learn its version: that download
    // needs a place in the queue first, like any other fetch of a miss
    let early = if state.sources.is_fresh(&parsed.url.source).await { None } else { Some(state.pool.admit()?) };
    let key = derivative_key(state, parsed, negotiated).await?;
    let peer = req.conn_data::<PeerSocket>().copied();
    let admission = std::sync::Mutex::new(early);
    let outcome = if parsed.plan.cache == CachePolicy::Disabled {
        let admitted = take_or_admit(state, &admission)?;
        compute(state, parsed, negotiated, None, admitted, move || peer.is_some_and(|c| c.gone())).await?
    } else if let Some(hit) = lookup(state, key).await {
        hit
    } else {
        state
            .flights
            .run(key, |followers| {
                let (st, p) = (state.clone(), parsed.clone());
                let admitted = take_or_admit(state, &admission);
                async move {
                    // another flight may have finished between our lookup and now
                    if let Some(hit) = lookup(&st, key).await {
                        return Ok(hit);
                    }
                    METRICS.cache_misses.inc();
                    let abandoned = move || peer.is_some_and(|c| c.gone()) && !followers.waiting();
                    compute(&st, &p, negotiated, Some(key), admitted?, abandoned).await
                }
            })
            .await?
    };
    Ok((outcome, key))
}

/// The output format `Accept` chooses, for jobs that negotiate.
fn negotiated_format(req: &HttpRequest, job: &ImageJob) -> Option<Format> {
    if !job.negotiates() {
        return None;
    }
    pipeline::negotiate(req.headers().get("accept").and_then(|v| v.to_str().ok()).unwrap_or(""))
}

/// The place in the queue taken early, or a new one.
fn take_or_admit(state: &AppState, early: &std::sync::Mutex<Option<Admission>>) -> Result<Admission> {
    match early.lock().unwrap_or_else(|e| e.into_inner()).take() {
        Some(admitted) => Ok(admitted),
        None => state.pool.admit(),
    }
}

/// The `store` task: keep the chain's result (or the source itself) under a new handle and answer
/// Filestack's JSON. GET or POST (filestack-python posts); never cached.
async fn store_result(req: &HttpRequest, state: &web::Data<AppState>, parsed: &Arc<Parsed>) -> Result<HttpResponse> {
    let task = parsed.plan.tasks.iter().find(|t| t.name() == "store").expect("caller checked");
    let text = |k: &str| task.get(k).and_then(Param::as_str).map(str::to_string);
    // A GET is safe to repeat (crawlers, an edge's retries): the same URL over the same source
    // bytes answers the file it stored the first time. A POST stores anew, as Filestack does.
    let token = match req.method() == Method::GET {
        true => Some(store_token(req, state, parsed).await?),
        false => None,
    };
    if let Some(meta) = match &token {
        Some(t) => state.store.stored_under(t).await,
        None => None,
    } {
        return Ok(json(store_json(state, &meta, parsed)));
    }
    let (bytes, mimetype, extension) = match &parsed.job {
        Some(_) => {
            let (outcome, _) = produce(req, state, parsed).await?;
            let meta = &outcome.cached.meta;
            (outcome.cached.bytes.clone(), meta.content_type.clone(), meta.extension.clone())
        }
        None => {
            let bytes = state.sources.fetch(&parsed.url.source).await?;
            match pipeline::format::sniff(&bytes) {
                pipeline::format::Sniffed::Image(f) => (bytes, f.mime().to_string(), f.extension().to_string()),
                _ => {
                    let mime = crate::mediatype::sniff_active(&bytes).unwrap_or("application/octet-stream");
                    (bytes, mime.to_string(), "bin".to_string())
                }
            }
        }
    };
    let upload = crate::store::Upload {
        filename: text("filename").or_else(|| Some(format!("stored.{extension}"))),
        mimetype: Some(mimetype),
        container: text("container"),
        path: text("path"),
        ..Default::default()
    };
    let meta = state.store.put(None, bytes, upload).await?;
    if let Some(t) = &token {
        state.store.remember_stored(t, &meta.handle).await;
    }
    Ok(json(store_json(state, &meta, parsed)))
}

/// What identifies a `store` result: the plan (store options included) over these source bytes.
async fn store_token(req: &HttpRequest, state: &AppState, parsed: &Parsed) -> Result<String> {
    let key = match &parsed.job {
        Some(job) => derivative_key(state, parsed, negotiated_format(req, job)).await?,
        None => {
            let version = state.sources.version(&parsed.url.source).await?;
            cache::key(&["store", &parsed.canonical, &version.identity, &version.version])
        }
    };
    Ok(hex::encode(key))
}

fn store_json(state: &AppState, meta: &crate::store::FileMeta, parsed: &Parsed) -> serde_json::Value {
    serde_json::json!({
        "url": format!("{}/{}", state.public_url, meta.handle),
        "handle": meta.handle,
        "size": meta.size,
        "type": meta.mimetype,
        "filename": meta.filename,
        "container": meta.container,
        "key": parsed.url.apikey,
    })
}

async fn lookup(state: &web::Data<AppState>, key: cache::Key) -> Option<Outcome> {
    if let Some(hit) = state.cache.get_hot(&key) {
        METRICS.cache_hits.with_label_values(&["memory"]).inc();
        return Some(Outcome { cached: hit, status: "refract; hit", timing: "cache;desc=memory".into() });
    }
    let st = state.clone();
    let hit = tokio::task::spawn_blocking(move || st.cache.get(&key)).await.ok().flatten()?;
    METRICS.cache_hits.with_label_values(&["disk"]).inc();
    Some(Outcome { cached: hit, status: "refract; hit", timing: "cache;desc=disk".into() })
}

/// Fetch the source and run the pipeline on the blocking pool; store the result unless `key` is
/// `None` (`cache=false`).
async fn compute(
    state: &web::Data<AppState>,
    parsed: &Arc<Parsed>,
    negotiated: Option<Format>,
    key: Option<cache::Key>,
    admitted: Admission,
    abandoned: impl Fn() -> bool + Send + 'static,
) -> Result<Outcome> {
    let started = Instant::now();
    let bytes = state.sources.fetch(&parsed.url.source).await?;
    let mut overlays = pipeline::Overlays::new();
    for handle in parsed.job.as_ref().map(ImageJob::overlays).unwrap_or_default() {
        overlays.insert(handle.to_string(), state.sources.fetch(&SourceSpec::handle(handle.to_string())).await?);
    }
    let fetched = started.elapsed();
    let ttl = match parsed.plan.cache {
        CachePolicy::Expiry(n) => n,
        _ => state.config.cache_ttl_secs,
    };
    let (st, p, source) = (state.clone(), parsed.clone(), parsed.url.source.identity());
    let limits = state.limits();
    let vary_accept = parsed.job.as_ref().is_some_and(ImageJob::negotiates);
    let overlay_handles: Vec<String> =
        parsed.job.as_ref().map(ImageJob::overlays).unwrap_or_default().into_iter().map(str::to_string).collect();
    let (cached, transform_time) = admitted
        .run(
            move || {
                let t = Instant::now();
                let job = p.job.as_ref().expect("compute needs a job");
                let rendered = pipeline::run_with(&bytes, job, negotiated, limits, &overlays);
                let elapsed = t.elapsed();
                METRICS.transform_seconds.observe(elapsed.as_secs_f64());
                METRICS.transforms.with_label_values(&[if rendered.is_ok() { "ok" } else { "error" }]).inc();
                let rendered = rendered?;
                let now = cache::now();
                let meta = EntryMeta {
                    content_type: rendered.content_type.to_string(),
                    extension: rendered.extension.to_string(),
                    length: rendered.bytes.len() as u64,
                    checksum: blake3::hash(&rendered.bytes).to_hex().to_string(),
                    created: now,
                    expires: now + ttl,
                    last_access: now,
                    source,
                    overlays: overlay_handles,
                    vary_accept,
                };
                let bytes = bytes::Bytes::from(rendered.bytes);
                let cached = match key {
                    Some(k) => st.cache.put(&k, bytes, meta),
                    None => Arc::new(Cached::new(bytes, meta)),
                };
                Ok((cached, elapsed))
            },
            abandoned,
        )
        .await?;
    let status = if key.is_some() { "refract; fwd=uri-miss; stored" } else { "refract; fwd=bypass" };
    let timing = format!(
        "fetch;dur={:.1}, transform;dur={:.1}",
        fetched.as_secs_f64() * 1000.0,
        transform_time.as_secs_f64() * 1000.0
    );
    Ok(Outcome { cached, status, timing })
}
