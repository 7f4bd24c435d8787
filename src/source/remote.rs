//! External http(s) sources: fetched through the host policy (checked on literal addresses,
//! after DNS and on every redirect), bounded in size, coalesced per URL, kept on disk with their
//! validators and revalidated with a conditional GET once older than `source_revalidate_secs`.

use super::disk::{Remote, SourceDisk};
use super::error::{Result, SourceError};
use super::policy::{HostPolicy, Refused};
use crate::config::Config;
use crate::metrics::METRICS;
use bytes::Bytes;
use futures_util::StreamExt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const MAX_CONCURRENT_FETCHES: usize = 32;
const MAX_REDIRECTS: usize = 5;

pub struct Remotes {
    http: reqwest::Client,
    /// For trusted http aliases: no host policy.
    trusted_http: reqwest::Client,
    policy: Arc<HostPolicy>,
    /// Hot tier: external bytes by version.
    fetched: moka::future::Cache<String, Bytes>,
    /// Records checked within the revalidation interval (their expiry is the interval).
    fresh: moka::future::Cache<String, Arc<Remote>>,
    disk: SourceDisk,
    max_bytes: u64,
    /// Downloads in progress; more are refused (503) rather than buffered.
    fetch_slots: tokio::sync::Semaphore,
}

impl Remotes {
    pub fn new(config: &Config) -> std::result::Result<Remotes, String> {
        let policy = Arc::new(HostPolicy::new(
            &config.source_allow_hosts,
            &config.source_deny_hosts,
            config.allow_private_networks,
        )?);
        let dir = config.data_dir.join("sources");
        let disk = SourceDisk::open(&dir, config.source_cache_bytes)
            .map_err(|e| format!("cannot open the source cache {}: {e}", dir.display()))?;
        Ok(Remotes {
            http: client(config, policy.clone()),
            trusted_http: client(config, Arc::new(HostPolicy::open())),
            policy,
            fetched: moka::future::Cache::builder()
                .weigher(|_k: &String, v: &Bytes| v.len().min(u32::MAX as usize) as u32)
                .max_capacity(config.source_memory_bytes)
                .build(),
            fresh: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(config.source_revalidate_secs.max(1)))
                .build(),
            disk,
            max_bytes: config.max_source_bytes,
            fetch_slots: tokio::sync::Semaphore::new(MAX_CONCURRENT_FETCHES),
        })
    }

    /// Whether the URL's version is known without a network request.
    pub fn is_fresh(&self, url: &str) -> bool {
        self.fresh.contains_key(url)
    }

    /// The URL's record, revalidated (conditional GET) once it is older than the interval.
    /// Concurrent callers share one request.
    pub async fn remote(&self, url: &str, trusted: bool) -> Result<Arc<Remote>> {
        let init = async {
            let previous = self.disk.record(url).await;
            self.download(url, previous, trusted).await
        };
        self.fresh.try_get_with(url.to_string(), init).await.map_err(|e: Arc<SourceError>| (*e).clone())
    }

    pub async fn fetch(&self, url: &str, trusted: bool) -> Result<Bytes> {
        let remote = self.remote(url, trusted).await?;
        if let Some(bytes) = self.bytes(&remote.version).await {
            return Ok(bytes);
        }
        // evicted since: download again (a changed remote gets a new record)
        self.fresh.invalidate(url).await;
        let remote = self.remote(url, trusted).await?;
        self.bytes(&remote.version).await.ok_or(SourceError::Busy)
    }

    /// A version's bytes from memory, else from disk (then kept in memory).
    async fn bytes(&self, version: &str) -> Option<Bytes> {
        if let Some(b) = self.fetched.get(version).await {
            return Some(b);
        }
        let b = self.disk.body(version).await?;
        self.fetched.insert(version.to_string(), b.clone()).await;
        Some(b)
    }

    /// GET the URL, conditionally when its bytes are still kept; keep new bytes by version.
    async fn download(&self, url: &str, previous: Option<Remote>, trusted: bool) -> Result<Arc<Remote>> {
        let cached = match previous {
            Some(p) if self.bytes(&p.version).await.is_some() => Some(p),
            _ => None,
        };
        let (bytes, (etag, last_modified)) = match self.get(url, cached.as_ref(), trusted).await? {
            Fetched::NotModified => return Ok(Arc::new(cached.expect("conditional only when cached"))),
            Fetched::Body(bytes, validators) => (bytes, validators),
        };
        let hashed = bytes.clone();
        let version = tokio::task::spawn_blocking(move || blake3::hash(&hashed).to_hex().to_string())
            .await
            .map_err(|e| SourceError::Unreachable { url: url.to_string(), detail: e.to_string() })?;
        let modified = last_modified
            .as_deref()
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs()));
        let remote = Remote { version: version.clone(), etag, last_modified, modified };
        self.fetched.insert(version, bytes.clone()).await;
        self.disk.keep(url, &remote, bytes).await;
        Ok(Arc::new(remote))
    }

    async fn get(&self, url: &str, cached: Option<&Remote>, trusted: bool) -> Result<Fetched> {
        METRICS.source_fetches.with_label_values(&["url"]).inc();
        let _slot = self.fetch_slots.try_acquire().map_err(|_| SourceError::Busy)?;
        let parsed = reqwest::Url::parse(url).map_err(|e| SourceError::BadUrl(e.to_string()))?;
        let client = if trusted { &self.trusted_http } else { &self.http };
        if !trusted {
            check_url(&parsed, &self.policy)?;
        }
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
        self.body(url, resp).await
    }

    /// The body of a successful answer, refused as soon as it passes `max_source_bytes`.
    async fn body(&self, url: &str, resp: reqwest::Response) -> Result<Fetched> {
        let status = resp.status().as_u16();
        match status {
            200..=299 => {}
            300..=399 => return Err(unfollowed_redirect(url, &resp)),
            404 | 410 => return Err(SourceError::Missing(url.to_string())),
            _ => return Err(SourceError::Upstream { url: url.to_string(), status }),
        }
        let too_large = || SourceError::TooLarge { url: url.to_string(), limit: self.max_bytes };
        if resp.content_length().is_some_and(|n| n > self.max_bytes) {
            return Err(too_large());
        }
        let header = |name| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let validators = (header(reqwest::header::ETAG), header(reqwest::header::LAST_MODIFIED));
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| fetch_error(url, e))?;
            if body.len() as u64 + chunk.len() as u64 > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched::Body(Bytes::from(body), validators))
    }
}

enum Fetched {
    NotModified,
    /// The bytes, with the remote's `ETag` and `Last-Modified`.
    Body(Bytes, (Option<String>, Option<String>)),
}

/// A redirect the client did not follow: its target is not an http(s) URL (reqwest never
/// offers `file:///…` to the redirect policy), or it names none.
fn unfollowed_redirect(url: &str, resp: &reqwest::Response) -> SourceError {
    let location = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
    match location.map(|l| resp.url().join(l)) {
        Some(Ok(target)) if !matches!(target.scheme(), "http" | "https") => {
            SourceError::BadUrl(format!("{url} redirects to scheme `{}`, which is not allowed", target.scheme()))
        }
        Some(Ok(target)) => SourceError::BadUrl(format!("{url} redirects to {target}, which could not be followed")),
        _ => SourceError::Upstream { url: url.to_string(), status: resp.status().as_u16() },
    }
}

/// The client for external sources: every address it connects to, after DNS and on every
/// redirect, passes `policy`.
fn client(config: &Config, policy: Arc<HostPolicy>) -> reqwest::Client {
    let redirects = policy.clone();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(config.fetch_timeout_secs))
        .connect_timeout(Duration::from_secs(5))
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            // `previous` holds the first URL too: five redirects are followed, a sixth is not
            if attempt.previous().len() > MAX_REDIRECTS {
                let url = attempt.previous()[0].to_string();
                attempt.error(SourceError::TooManyRedirects { url, max: MAX_REDIRECTS })
            } else if let Err(e) = check_url(attempt.url(), &redirects) {
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

/// The scheme, and the host by name (lists) or as a literal address (lists and registry).
fn check_url(url: &reqwest::Url, policy: &HostPolicy) -> Result<()> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SourceError::BadUrl(format!("{url}: scheme `{}` is not allowed", url.scheme())));
    }
    let host = url.host_str().ok_or_else(|| SourceError::BadUrl(format!("{url} has no host")))?;
    let refused = |refused| SourceError::Refused { url: url.to_string(), refused };
    let literal = match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") => {
            Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        }
        Err(_) => None,
    };
    match literal {
        Some(ip) => policy.check_addr(host, ip).map_err(refused),
        None => policy.check_name(host).map_err(refused),
    }
}

/// Resolves names and keeps only the addresses the policy allows, so the check holds after DNS
/// and on every redirect.
struct GuardedResolver {
    policy: Arc<HostPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match policy.check_addr(name.as_str(), a.ip()) {
                    Ok(()) => true,
                    Err(r) => {
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
