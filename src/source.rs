//! Fetching source bytes: stored handles, external http(s) URLs (SSRF-guarded) and storage
//! aliases. External bytes are kept in memory for a while, so one URL is fetched once, not once
//! per derivative.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::METRICS;
use crate::store::Store;
use crate::url::SourceSpec;
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
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

pub struct Sources {
    store: Arc<Store>,
    http: reqwest::Client,
    aliases: BTreeMap<String, PathBuf>,
    fetched: moka::future::Cache<String, Bytes>,
    max_bytes: u64,
    allow_private: bool,
    /// External downloads in progress; more are refused (503) rather than buffered.
    fetch_slots: tokio::sync::Semaphore,
}

const MAX_CONCURRENT_FETCHES: usize = 32;

impl Sources {
    pub fn new(config: &Config, store: Arc<Store>) -> Sources {
        let allow_private = config.allow_private_networks;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.fetch_timeout_secs))
            .connect_timeout(Duration::from_secs(5))
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    attempt.error("too many redirects")
                } else if let Err(e) = check_literal_host(attempt.url(), allow_private) {
                    attempt.error(e.to_string())
                } else {
                    attempt.follow()
                }
            }))
            .user_agent(concat!("refract/", env!("CARGO_PKG_VERSION")))
            // a proxy would resolve target names itself, past the guarded resolver
            .no_proxy()
            .build()
            .expect("http client");
        Sources {
            store,
            http,
            aliases: config.aliases.clone(),
            fetched: moka::future::Cache::builder()
                .weigher(|_k: &String, v: &Bytes| v.len().min(u32::MAX as usize) as u32)
                .max_capacity(config.source_memory_bytes)
                .time_to_live(Duration::from_secs(600))
                .build(),
            max_bytes: config.max_source_bytes,
            allow_private,
            fetch_slots: tokio::sync::Semaphore::new(MAX_CONCURRENT_FETCHES),
        }
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
            SourceSpec::Alias { .. } => {
                let path = self.alias_path(spec)?;
                let md = tokio::fs::metadata(&path)
                    .await
                    .map_err(|_| Error::NotFound(format!("no file at {}", spec.identity())))?;
                let mtime = md.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                // size, inode and nanosecond mtime: a same-size rewrite within a second still changes it
                let inode = std::os::unix::fs::MetadataExt::ino(&md);
                let nanos = mtime.map(|d| d.as_nanos()).unwrap_or(0);
                Ok(Version {
                    identity: spec.identity(),
                    version: format!("{}-{inode}-{nanos}", md.len()),
                    modified: mtime.map(|d| d.as_secs()),
                })
            }
            SourceSpec::Url { .. } => Ok(Version { identity: spec.identity(), version: String::new(), modified: None }),
            SourceSpec::List { .. } => {
                Err(Error::bad("a list of sources needs a task that combines them (collage, animate, zip)"))
            }
        }
    }

    pub async fn fetch(&self, spec: &SourceSpec) -> Result<Bytes> {
        match spec {
            SourceSpec::Handle { handle } => {
                METRICS.source_fetches.with_label_values(&["handle"]).inc();
                let meta = self.store.meta(handle).await?;
                self.store.read(&meta).await
            }
            SourceSpec::Alias { .. } => {
                METRICS.source_fetches.with_label_values(&["alias"]).inc();
                let path = self.alias_path(spec)?;
                tokio::fs::read(&path)
                    .await
                    .map(Bytes::from)
                    .map_err(|_| Error::NotFound(format!("no file at {}", spec.identity())))
            }
            SourceSpec::Url { url } => {
                let url = url.clone();
                self.fetched.try_get_with(url.clone(), self.fetch_url(url)).await.map_err(|e: Arc<Error>| (*e).clone())
            }
            SourceSpec::List { .. } => {
                Err(Error::bad("a list of sources needs a task that combines them (collage, animate, zip)"))
            }
        }
    }

    /// The file behind `src://alias/path`, which must stay inside the alias's directory even
    /// through symlinks.
    fn alias_path(&self, spec: &SourceSpec) -> Result<PathBuf> {
        let SourceSpec::Alias { alias, path } = spec else { unreachable!("alias_path on a non-alias") };
        let root =
            self.aliases.get(alias).ok_or_else(|| Error::NotFound(format!("unknown storage alias `{alias}`")))?;
        let missing = || Error::NotFound(format!("no file at {}", spec.identity()));
        let root = root.canonicalize().map_err(|_| missing())?;
        let full = root.join(path).canonicalize().map_err(|_| missing())?;
        if !full.starts_with(&root) {
            return Err(Error::Forbidden(format!("{} points outside its storage alias", spec.identity())));
        }
        Ok(full)
    }

    async fn fetch_url(&self, url: String) -> Result<Bytes> {
        METRICS.source_fetches.with_label_values(&["url"]).inc();
        let _slot = self.fetch_slots.try_acquire().map_err(|_| Error::Overloaded)?;
        let parsed = reqwest::Url::parse(&url).map_err(|e| Error::bad(format!("invalid source URL: {e}")))?;
        check_literal_host(&parsed, self.allow_private)?;
        let resp = self.http.get(parsed).send().await.map_err(|e| fetch_error(&url, e))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            return Err(if status == 404 {
                Error::NotFound(format!("source URL {url} answered 404"))
            } else {
                Error::BadGateway(format!("source URL {url} answered {status}"))
            });
        }
        if resp.content_length().is_some_and(|n| n > self.max_bytes) {
            return Err(Error::PayloadTooLarge(format!("source URL {url} is larger than {} bytes", self.max_bytes)));
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| fetch_error(&url, e))?;
            if body.len() as u64 + chunk.len() as u64 > self.max_bytes {
                return Err(Error::PayloadTooLarge(format!(
                    "source URL {url} is larger than {} bytes",
                    self.max_bytes
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }
}

fn fetch_error(url: &str, e: reqwest::Error) -> Error {
    let mut msg = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    if msg.contains("private address") {
        return Error::Forbidden(format!("source URL {url} refused: {msg}"));
    }
    Error::BadGateway(format!("fetching {url} failed: {msg}"))
}

/// Addresses an external source may not reach: loopback, private, link-local (cloud metadata),
/// shared, multicast, unspecified, documentation ranges.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // IPv4 carried inside IPv6: mapped, compatible, NAT64 (64:ff9b::/96), 6to4 (2002::/16)
            let embedded = |hi: u16, lo: u16| {
                IpAddr::V4(std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8))
            };
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            if s[..6] == [0; 6] || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) {
                return is_public(embedded(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return is_public(embedded(s[1], s[2]));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || s[0] == 0x2001 && s[1] == 0x0db8)
        }
    }
}

fn check_literal_host(url: &reqwest::Url, allow_private: bool) -> Result<()> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::bad(format!("source URL scheme `{}` is not allowed", url.scheme())));
    }
    let host = url.host_str().ok_or_else(|| Error::bad("source URL has no host"))?;
    let ip = match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") => {
            IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        Err(_) => return Ok(()),
    };
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!("source URL host {ip} is a private address; refused")))
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
            let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| allow_private || is_public(a.ip())).collect();
            if allowed.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> =
                    format!("{} resolves only to private addresses", name.as_str()).into();
                return Err(e);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
