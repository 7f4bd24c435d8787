//! Fetching source bytes, and knowing their version before fetching them: stored handles,
//! external http(s) URLs (`remote.rs`, behind the host policy of `policy.rs` and the registry of
//! `netguard.rs`, kept on disk by `disk.rs`) and storage aliases (`alias.rs`).

mod alias;
mod disk;
mod error;
pub mod netguard;
mod policy;
mod remote;

pub use error::{Result, SourceError};
pub use policy::{HostPolicy, Refused};

use crate::config::Config;
use crate::metrics::METRICS;
use crate::store::{self, Store};
use crate::url::SourceSpec;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

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
    aliases: BTreeMap<String, alias::Alias>,
    remotes: remote::Remotes,
}

/// Where an alias path is read from.
enum Resolved<'a> {
    Objects(&'a dyn store::Backend),
    Url(String, bool),
}

impl Sources {
    pub fn new(config: &Config, store: Arc<Store>) -> std::result::Result<Sources, String> {
        Ok(Sources { store, aliases: alias::open_all(&config.aliases)?, remotes: remote::Remotes::new(config)? })
    }

    pub async fn version(&self, spec: &SourceSpec) -> Result<Version> {
        let identity = spec.identity();
        let remote = |r: Arc<disk::Remote>| Version {
            identity: identity.clone(),
            version: r.version.clone(),
            modified: r.modified,
        };
        match spec {
            SourceSpec::Handle { handle } => {
                let meta = self.store.meta(handle).await?;
                Ok(Version { identity, version: meta.version.clone(), modified: Some(meta.uploaded / 1000) })
            }
            SourceSpec::Alias { alias, path } => match self.alias(alias, path)? {
                Resolved::Objects(backend) => alias::version(backend, path, identity).await,
                Resolved::Url(url, trusted) => Ok(remote(self.remotes.remote(&url, trusted).await?)),
            },
            SourceSpec::Url { url } => Ok(remote(self.remotes.remote(url, false).await?)),
            SourceSpec::List { .. } => Err(SourceError::ListNeedsCombiner),
        }
    }

    /// Whether the version of this source is known without a network request.
    pub async fn is_fresh(&self, spec: &SourceSpec) -> bool {
        match spec {
            SourceSpec::Url { url } => self.remotes.is_fresh(url),
            SourceSpec::Alias { alias, path } => match self.alias(alias, path) {
                Ok(Resolved::Url(url, _)) => self.remotes.is_fresh(&url),
                _ => false,
            },
            _ => true,
        }
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
                    Resolved::Url(url, trusted) => self.remotes.fetch(&url, trusted).await,
                }
            }
            SourceSpec::Url { url } => self.remotes.fetch(url, false).await,
            SourceSpec::List { .. } => Err(SourceError::ListNeedsCombiner),
        }
    }

    /// The backend and key of an alias object (fs or s3 alias), for streaming delivery; `None`
    /// for other sources.
    pub fn alias_object(&self, spec: &SourceSpec) -> Result<Option<(Arc<dyn store::Backend>, String)>> {
        let SourceSpec::Alias { alias, path } = spec else { return Ok(None) };
        match self.aliases.get(alias).ok_or_else(|| SourceError::UnknownAlias(alias.clone()))? {
            alias::Alias::Objects(backend) => Ok(Some((backend.clone(), path.clone()))),
            alias::Alias::Http { .. } => Ok(None),
        }
    }

    /// The first bytes of an alias object (to tell its type without reading it all).
    pub async fn alias_head(&self, backend: &dyn store::Backend, path: &str, identity: String) -> Result<Bytes> {
        alias::head_bytes(backend, path, identity).await
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
}
