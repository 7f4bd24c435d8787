//! Storage aliases: `src://NAME/path` reads `path` from a directory, a bucket, or under a base
//! URL, as `[aliases.NAME]` declares.

use super::error::{Result, SourceError};
use super::Version;
use crate::config::{AliasConfig, AliasKind};
use crate::store::{fs::FsBackend, s3::S3Backend, Backend, StoreError};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

pub enum Alias {
    /// A directory or a bucket.
    Objects(Arc<dyn Backend>),
    /// `base_url` + path, fetched like an external URL (`trusted`: past the address guard).
    Http { base_url: String, trusted: bool },
}

/// Every configured alias, its backend opened.
pub fn open_all(config: &BTreeMap<String, AliasConfig>) -> std::result::Result<BTreeMap<String, Alias>, String> {
    let mut aliases = BTreeMap::new();
    for (name, alias) in config {
        let opened = match alias {
            AliasConfig::Dir(root) | AliasConfig::Typed(AliasKind::Fs { root }) => {
                Alias::Objects(Arc::new(FsBackend::read_only(root)))
            }
            AliasConfig::Typed(AliasKind::S3(s3)) => {
                Alias::Objects(Arc::new(S3Backend::new(s3).map_err(|e| format!("alias `{name}`: {e}"))?))
            }
            AliasConfig::Typed(AliasKind::Http { base_url, trusted }) => {
                let base_url = base_url.trim_end_matches('/').to_string();
                if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                    return Err(format!("alias `{name}`: base_url must be an http(s) URL"));
                }
                Alias::Http { base_url, trusted: *trusted }
            }
        };
        aliases.insert(name.clone(), opened);
    }
    Ok(aliases)
}

/// An object's version from its backend's validators (ETag, or size-inode-mtime on disk).
pub async fn version(backend: &dyn Backend, path: &str, identity: String) -> Result<Version> {
    match backend.head(path).await.map_err(|e| alias_error(e, &identity))? {
        Some(info) => Ok(Version { identity, version: info.etag, modified: Some(info.modified) }),
        None => Err(SourceError::Missing(identity)),
    }
}

pub async fn read(backend: &dyn Backend, path: &str, identity: String) -> Result<Bytes> {
    backend.read(path).await.map_err(|e| alias_error(e, &identity))
}

/// Up to the first 4 KiB of an object.
pub async fn head_bytes(backend: &dyn Backend, path: &str, identity: String) -> Result<Bytes> {
    use futures_util::TryStreamExt;
    let stream = backend.get(path, Some(0..4096)).await.map_err(|e| alias_error(e, &identity))?;
    let chunks: Vec<Bytes> = stream.try_collect().await.map_err(|e| SourceError::Store(e.into()))?;
    Ok(chunks.concat().into())
}

/// A path that leaves the alias is refused, a missing object is missing; the rest is the
/// backend's failure.
fn alias_error(e: StoreError, identity: &str) -> SourceError {
    match e {
        StoreError::InvalidKey(_) | StoreError::OutsideRoot(_) => SourceError::OutsideAlias(identity.to_string()),
        StoreError::Missing(_) | StoreError::NotFound(_) => SourceError::Missing(identity.to_string()),
        other => SourceError::Store(other),
    }
}
