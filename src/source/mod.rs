//! Fetching source bytes: stored handles, external http(s) URLs (SSRF-guarded) and storage
//! aliases. External bytes are kept in memory for a while, so one URL is fetched once, not once
//! per derivative.

mod alias;
mod error;
pub mod netguard;

pub use error::{Result, SourceError};

use crate::config::Config;
use crate::metrics::METRICS;
use crate::store::{self, Store};
use crate::url::SourceSpec;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// What identifies a source's current bytes, known before fetching them.
#[derive(Debug, Clone)]
pub struct Version {
    pub identity: String,
    pub version: String,
    /// Seconds since the epoch of the source's last change, when known.
    pub modified: Option<u64>,
}

/// What is known of an external URL: the version of its bytes (blake3) and the validators a
/// conditional request sends when the record is older than the revalidation interval.
#[derive(Debug, Clone)]
struct Remote {
    version: String,
    etag: Option<String>,
    last_modified: Option<String>,
    modified: Option<u64>,
}

pub struct Sources {
    store: Arc<Store>,
    http: reqwest::Client,
    /// For trusted http aliases: no address guard.
    trusted_http: reqwest::Client,
    aliases: BTreeMap<String, alias::Alias>,
    /// External bytes by version.
    fetched: moka::future::Cache<String, Bytes>,
    /// Records checked within the revalidation interval (their expiry is the interval).
    fresh: moka::future::Cache<String, Arc<Remote>>,
    /// Every record still remembered, for its validators.
    known: moka::future::Cache<String, Arc<Remote>>,
    max_bytes: u64,
    allow_private: bool,
    /// External downloads in progress; more are refused (503) rather than buffered.
    fetch_slots: tokio::sync::Semaphore,
}

const MAX_CONCURRENT_FETCHES: usize = 32;

/// The client for external sources: every address it connects to, after DNS and on every
/// redirect, passes the guard (unless `allow_private`).
fn client(config: &Config, allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(config.fetch_timeout_secs))
        .connect_timeout(Duration::from_secs(5))
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if let Err(e) = check_literal_host(attempt.url(), allow_private) {
                attempt.error(e)
            } else {
                attempt.follow()
            }
        }))
        .user_agent(concat!("refract/", env!("CARGO_PKG_VERSION")))
        // a proxy would resolve target names itself, past the guarded resolver
        .no_proxy()
        .build()
        .expect("http client")
}

impl Sources {
    pub fn new(config: &Config, store: Arc<Store>) -> std::result::Result<Sources, String> {
        let allow_private = config.allow_private_networks;
        let http = client(config, allow_private);
        Ok(Sources {
            store,
            http,
            trusted_http: client(config, true),
            aliases: alias::open_all(&config.aliases)?,
            fetched: moka::future::Cache::builder()
                .weigher(|_k: &String, v: &Bytes| v.len().min(u32::MAX as usize) as u32)
                .max_capacity(config.source_memory_bytes)
                .build(),
            fresh: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(config.source_revalidate_secs.max(1)))
                .build(),
            known: moka::future::Cache::new(100_000),
            max_bytes: config.max_source_bytes,
            allow_private,
            fetch_slots: tokio::sync::Semaphore::new(MAX_CONCURRENT_FETCHES),
        })
    }

    pub async fn version(&self, spec: &SourceSpec) -> Result<Version> {
        match spec {
            SourceSpec::Handle { handle } => {
                let meta = self.store.meta(handle).await?;
                Ok(Version {
                    identity: handle.clone(),
                    version: meta.version.clone(),
                    modified: Some(meta.uploaded / 1000),
                })
            }
            SourceSpec::Alias { alias, path } => match self.alias(alias, path)? {
                Resolved::Objects(backend) => alias::version(backend, path, spec.identity()).await,
                Resolved::Url(url, trusted) => {
                    let remote = self.remote(&url, trusted).await?;
                    Ok(Version {
                        identity: spec.identity(),
                        version: remote.version.clone(),
                        modified: remote.modified,
                    })
                }
            },
            SourceSpec::Url { url } => {
                let remote = self.remote(url, false).await?;
                Ok(Version { identity: spec.identity(), version: remote.version.clone(), modified: remote.modified })
            }
            SourceSpec::List { .. } => Err(SourceError::ListNeedsCombiner),
        }
    }

    /// Whether `version` of this source can be answered without a network request.
    pub async fn is_fresh(&self, spec: &SourceSpec) -> bool {
        match spec {
            SourceSpec::Url { url } => self.fresh.contains_key(url),
            SourceSpec::Alias { alias, path } => match self.alias(alias, path) {
                Ok(Resolved::Url(url, _)) => self.fresh.contains_key(&url),
                _ => false,
            },
            _ => true,
        }
    }

    /// Where `src://alias/path` is read from.
    fn alias(&self, name: &str, path: &str) -> Result<Resolved<'_>> {
        match self.aliases.get(name).ok_or_else(|| SourceError::UnknownAlias(name.to_string()))? {
            alias::Alias::Objects(backend) => Ok(Resolved::Objects(backend.as_ref())),
            alias::Alias::Http { base_url, trusted } => {
                if path.split('/').any(|s| s == ".." || s == ".") {
                    return Err(SourceError::OutsideAlias(format!("src://{name}/{path}")));
                }
                Ok(Resolved::Url(format!("{base_url}/{path}"), *trusted))
            }
        }
    }

    /// The URL's record, revalidated (conditional GET) once it is older than the interval.
    /// Concurrent callers share one request.
    async fn remote(&self, url: &str, trusted: bool) -> Result<Arc<Remote>> {
        let init = async {
            let previous = self.known.get(url).await;
            let remote = self.download(url, previous.as_deref(), trusted).await?;
            self.known.insert(url.to_string(), remote.clone()).await;
            Ok(remote)
        };
        self.fresh.try_get_with(url.to_string(), init).await.map_err(shared_error)
    }

    /// GET the URL (conditionally when its bytes are still in memory); keep the bytes by version.
    async fn download(&self, url: &str, previous: Option<&Remote>, trusted: bool) -> Result<Arc<Remote>> {
        let cached = match previous {
            Some(p) => self.fetched.get(&p.version).await.map(|_| p),
            None => None,
        };
        let (bytes, validators) = match self.fetch_url(url, cached, trusted).await? {
            Fetched::NotModified => return Ok(Arc::new(cached.expect("conditional only when cached").clone())),
            Fetched::Body(bytes, validators) => (bytes, validators),
        };
        let hashed = bytes.clone();
        let version = tokio::task::spawn_blocking(move || blake3::hash(&hashed).to_hex().to_string())
            .await
            .map_err(|e| SourceError::Unreachable { url: url.to_string(), detail: e.to_string() })?;
        self.fetched.insert(version.clone(), bytes).await;
        let (etag, last_modified) = validators;
        let modified = last_modified
            .as_deref()
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs()));
        Ok(Arc::new(Remote { version, etag, last_modified, modified }))
    }

    pub async fn fetch(&self, spec: &SourceSpec) -> Result<Bytes> {
        match spec {
            SourceSpec::Handle { handle } => {
                METRICS.source_fetches.with_label_values(&["handle"]).inc();
                let meta = self.store.meta(handle).await?;
                Ok(self.store.read(&meta).await?)
            }
            SourceSpec::Alias { alias, path } => {
                METRICS.source_fetches.with_label_values(&["alias"]).inc();
                match self.alias(alias, path)? {
                    Resolved::Objects(backend) => alias::read(backend, path, spec.identity()).await,
                    Resolved::Url(url, trusted) => self.fetch_remote(&url, trusted).await,
                }
            }
            SourceSpec::Url { url } => self.fetch_remote(url, false).await,
            SourceSpec::List { .. } => Err(SourceError::ListNeedsCombiner),
        }
    }

    async fn fetch_remote(&self, url: &str, trusted: bool) -> Result<Bytes> {
        let remote = self.remote(url, trusted).await?;
        if let Some(bytes) = self.fetched.get(&remote.version).await {
            return Ok(bytes);
        }
        // evicted from memory since: download again (a changed remote gets a new record)
        self.fresh.invalidate(url).await;
        let remote = self.remote(url, trusted).await?;
        self.fetched.get(&remote.version).await.ok_or(SourceError::Busy)
    }

    async fn fetch_url(&self, url: &str, cached: Option<&Remote>, trusted: bool) -> Result<Fetched> {
        METRICS.source_fetches.with_label_values(&["url"]).inc();
        let _slot = self.fetch_slots.try_acquire().map_err(|_| SourceError::Busy)?;
        let parsed = reqwest::Url::parse(url).map_err(|e| SourceError::BadUrl(e.to_string()))?;
        check_literal_host(&parsed, self.allow_private || trusted)?;
        let client = if trusted { &self.trusted_http } else { &self.http };
        let mut request = client.get(parsed);
        if let Some(etag) = cached.and_then(|c| c.etag.as_deref()) {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(date) = cached.and_then(|c| c.last_modified.as_deref()) {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, date);
        }
        let resp = request.send().await.map_err(|e| fetch_error(url, e))?;
        if resp.status() == reqwest::StatusCode::NOT_MODIFIED && cached.is_some() {
            return Ok(Fetched::NotModified);
        }
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            return Err(if status == 404 {
                SourceError::Missing(url.to_string())
            } else {
                SourceError::Upstream { url: url.to_string(), status }
            });
        }
        if resp.content_length().is_some_and(|n| n > self.max_bytes) {
            return Err(SourceError::TooLarge { url: url.to_string(), limit: self.max_bytes });
        }
        let header = |name| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let validators = (header(reqwest::header::ETAG), header(reqwest::header::LAST_MODIFIED));
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| fetch_error(url, e))?;
            if body.len() as u64 + chunk.len() as u64 > self.max_bytes {
                return Err(SourceError::TooLarge { url: url.to_string(), limit: self.max_bytes });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched::Body(Bytes::from(body), validators))
    }
}

/// Where an alias path is read from.
enum Resolved<'a> {
    Objects(&'a dyn store::Backend),
    Url(String, bool),
}

enum Fetched {
    NotModified,
    /// The bytes, with the remote's `ETag` and `Last-Modified`.
    Body(Bytes, (Option<String>, Option<String>)),
}

/// A typed refusal when the guard (resolver or redirect policy) said no, else an upstream failure.
fn fetch_error(url: &str, e: reqwest::Error) -> SourceError {
    let mut detail = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        if let Some(refused) = s.downcast_ref::<Refused>() {
            return SourceError::Refused { url: url.to_string(), refused: refused.clone() };
        }
        if let Some(own) = s.downcast_ref::<SourceError>() {
            return own.clone();
        }
        detail = format!("{detail}: {s}");
        src = s.source();
    }
    if e.is_timeout() {
        return SourceError::TimedOut { url: url.to_string() };
    }
    SourceError::Unreachable { url: url.to_string(), detail }
}

/// moka shares one failure among the callers it coalesced.
fn shared_error(e: Arc<SourceError>) -> SourceError {
    (*e).clone()
}

/// A destination the SSRF guard refuses, with the registry row that says why.
#[derive(Debug, Clone)]
pub struct Refused {
    pub host: String,
    pub ip: IpAddr,
    pub range: &'static netguard::SpecialRange,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.range;
        let literal = self.host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok();
        if !literal {
            write!(f, "{} is ", self.host)?;
        }
        write!(f, "{} in {} ({}, {}), not globally reachable", self.ip, r.prefix, r.name, r.rfc)
    }
}

impl std::error::Error for Refused {}

/// The refusal for `ip`, unless private networks are allowed.
fn refuse(host: &str, ip: IpAddr, allow_private: bool) -> Option<Refused> {
    if allow_private {
        return None;
    }
    netguard::refusal(ip).map(|range| Refused { host: host.to_string(), ip, range })
}

fn check_literal_host(url: &reqwest::Url, allow_private: bool) -> Result<()> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SourceError::BadUrl(format!("{url}: scheme `{}` is not allowed", url.scheme())));
    }
    let host = url.host_str().ok_or_else(|| SourceError::BadUrl(format!("{url} has no host")))?;
    let ip = match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") => {
            IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        Err(_) => return Ok(()),
    };
    match refuse(host, ip, allow_private) {
        None => Ok(()),
        Some(refused) => Err(SourceError::Refused { url: url.to_string(), refused }),
    }
}

/// Resolves names and refuses those that lead only to non-public addresses, so the check holds
/// after DNS and on every redirect.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match refuse(name.as_str(), a.ip(), allow_private) {
                    None => true,
                    Some(r) => {
                        refusal = Some(r);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> = match refusal {
                    Some(r) => Box::new(r),
                    None => format!("{} resolves to no address", name.as_str()).into(),
                };
                return Err(e);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
