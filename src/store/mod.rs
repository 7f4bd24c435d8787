//! Originals by handle, on a [`Backend`]: the local disk (the zero-setup default) or an
//! S3-compatible bucket.
//!
//! Layout (keys): `<h[..2]>/<handle>/meta.json` and `<h[..2]>/<handle>/<version>.bin`, where
//! version is the blake3 of the bytes. The bytes are written first, whole; then the metadata,
//! whose write is the commit point: a crash at any moment leaves either the old file or the new
//! one under a handle, never half of one. A delete removes the metadata first.

pub mod backend;
mod error;
pub mod fs;
pub mod s3;
mod spool;

pub use backend::{Backend, ByteStream, ObjectInfo};
pub use error::{Result, StoreError};
pub use spool::{Digests, Spool, Spooled};

use bytes::Bytes;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What is known about a stored file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileMeta {
    pub handle: String,
    pub filename: String,
    pub mimetype: String,
    pub size: u64,
    /// Unix milliseconds of the last write.
    pub uploaded: u64,
    /// blake3 of the bytes: changes with every overwrite.
    pub version: String,
    pub md5: String,
    pub sha1: String,
    /// Added later: empty in metadata written before.
    #[serde(default)]
    pub sha224: String,
    pub sha256: String,
    #[serde(default)]
    pub sha384: String,
    #[serde(default)]
    pub sha512: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub container: Option<String>,
    pub path: Option<String>,
    /// The URL the file was fetched from (a `url=` upload, a `store` of an external URL).
    #[serde(default)]
    pub source_url: Option<String>,
    /// The API key of the app that stored the file (its policies are the ones that open it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
}

/// What the uploader says about the file.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub filename: Option<String>,
    pub mimetype: Option<String>,
    pub container: Option<String>,
    pub path: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub source_url: Option<String>,
    /// The app storing the file; an overwrite keeps the file's first owner.
    pub app: Option<String>,
}

pub struct Store {
    backend: Arc<dyn Backend>,
    spool_dir: PathBuf,
    meta: moka::sync::Cache<String, Arc<FileMeta>>,
    /// Recently read originals by version: a burst of derivatives of one photo (srcset sizes,
    /// formats) reads it from the backend once.
    bytes: moka::sync::Cache<String, Bytes>,
    /// Serialises this node's writers: an overwrite and a delete of one handle must not
    /// interleave.
    write_lock: tokio::sync::Mutex<()>,
}

const HANDLE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub fn new_handle() -> String {
    let mut rng = rand::thread_rng();
    (0..20).map(|_| HANDLE_ALPHABET[rng.gen_range(0..HANDLE_ALPHABET.len())] as char).collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn meta_key(handle: &str) -> String {
    format!("{}/{handle}/meta.json", handle.get(..2).unwrap_or("__"))
}

fn data_key(handle: &str, version: &str) -> String {
    format!("{}/{handle}/{version}.bin", handle.get(..2).unwrap_or("__"))
}

/// Only well-formed handles become keys (no `..`, no separators).
fn check(handle: &str) -> Result<()> {
    if crate::handle::is_valid(handle) {
        Ok(())
    } else {
        Err(StoreError::InvalidHandle(handle.to_string()))
    }
}

impl Store {
    /// A store over `backend`; uploads are spooled under `spool_dir` (emptied: what is there was
    /// left by a crash). Metadata read from the backend is trusted for `meta_ttl` (forever when
    /// `None`: only this process writes the backend).
    pub fn open(
        backend: Arc<dyn Backend>,
        spool_dir: &Path,
        memory_bytes: u64,
        meta_ttl: Option<std::time::Duration>,
    ) -> std::io::Result<Store> {
        std::fs::remove_dir_all(spool_dir).ok();
        std::fs::create_dir_all(spool_dir)?;
        let bytes = moka::sync::Cache::builder()
            .weigher(|_k: &String, v: &Bytes| v.len().min(u32::MAX as usize) as u32)
            .max_capacity(memory_bytes)
            .build();
        let meta = moka::sync::Cache::builder().max_capacity(100_000);
        let meta = match meta_ttl {
            Some(ttl) => meta.time_to_live(ttl).build(),
            None => meta.build(),
        };
        let write_lock = tokio::sync::Mutex::new(());
        Ok(Store { backend, spool_dir: spool_dir.to_path_buf(), meta, bytes, write_lock })
    }

    /// A working directory beside the spool (emptied at start like it), for files that are
    /// not stored yet: multipart parts.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.spool_dir.join(name)
    }

    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// Store new bytes under `handle` (a new one when `None`).
    pub async fn put(&self, handle: Option<String>, bytes: Bytes, upload: Upload) -> Result<FileMeta> {
        let hashed = bytes.clone();
        let digests = tokio::task::spawn_blocking(move || Digests::of(&hashed))
            .await
            .map_err(|e| StoreError::io("hash")(std::io::Error::other(e)))?;
        let size = bytes.len() as u64;
        self.commit(handle, &digests, size, upload, Content::Bytes(bytes)).await
    }

    /// A temporary file an upload is written to as it arrives (never held whole in memory).
    pub async fn spool(&self) -> Result<Spool> {
        let path = self.spool_dir.join(format!("{:x}.upload", rand::random::<u64>()));
        let file = tokio::fs::File::create(&path).await.map_err(StoreError::io("spool"))?;
        Ok(Spool::new(file, path))
    }

    /// Store a spooled upload under `handle` (a new one when `None`), streamed to the backend.
    pub async fn put_spooled(&self, handle: Option<String>, spooled: Spooled, upload: Upload) -> Result<FileMeta> {
        let (digests, size) = (spooled.digests.clone(), spooled.size);
        self.commit(handle, &digests, size, upload, Content::Spooled(spooled)).await
    }

    /// Write the bytes to the version's key, then the metadata (the commit point); then drop
    /// the previous version's bytes.
    async fn commit(&self, handle: Option<String>, d: &Digests, size: u64, up: Upload, c: Content) -> Result<FileMeta> {
        let _guard = self.write_lock.lock().await;
        let handle = handle.unwrap_or_else(new_handle);
        check(&handle)?;
        let previous = match self.meta(&handle).await {
            Ok(m) => Some(m),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let key = data_key(&handle, &d.version);
        match c {
            Content::Bytes(b) => self.backend.put(&key, b).await?,
            Content::Spooled(s) => self.backend.put_spooled(&key, s).await?,
        }
        let filename = up.filename.or_else(|| previous.as_ref().map(|p| p.filename.clone()));
        let app = previous.as_ref().map_or(up.app, |p| p.app.clone());
        let meta = FileMeta {
            filename: filename.unwrap_or_else(|| handle.clone()),
            handle,
            mimetype: up.mimetype.unwrap_or_else(|| "application/octet-stream".into()),
            size,
            uploaded: now_ms(),
            version: d.version.clone(),
            md5: d.md5.clone(),
            sha1: d.sha1.clone(),
            sha224: d.sha224.clone(),
            sha256: d.sha256.clone(),
            sha384: d.sha384.clone(),
            sha512: d.sha512.clone(),
            width: up.width,
            height: up.height,
            container: up.container,
            path: up.path,
            source_url: up.source_url,
            app,
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| StoreError::io("metadata")(e.into()))?;
        self.backend.put(&meta_key(&meta.handle), Bytes::from(json)).await?;
        self.meta.insert(meta.handle.clone(), Arc::new(meta.clone()));
        if let Some(prev) = previous.filter(|p| p.version != meta.version) {
            self.backend.delete(&data_key(&prev.handle, &prev.version)).await.ok();
        }
        Ok(meta)
    }

    pub async fn meta(&self, handle: &str) -> Result<Arc<FileMeta>> {
        check(handle)?;
        if let Some(m) = self.meta.get(handle) {
            return Ok(m);
        }
        let text = match self.backend.read(&meta_key(handle)).await {
            Ok(t) => t,
            Err(StoreError::Missing(_)) => return Err(StoreError::NotFound(handle.to_string())),
            Err(e) => return Err(e),
        };
        let meta: FileMeta = serde_json::from_slice(&text)
            .map_err(|e| StoreError::Corrupt { handle: handle.to_string(), detail: e.to_string() })?;
        // a writer may have stored newer metadata while we read: keep theirs
        Ok(self.meta.entry(handle.to_string()).or_insert(Arc::new(meta)).into_value())
    }

    /// The whole file, for a transform (kept in memory a while by version).
    pub async fn read(&self, meta: &FileMeta) -> Result<Bytes> {
        if let Some(b) = self.bytes.get(&meta.version) {
            return Ok(b);
        }
        let (version, bytes) = match self.backend.read(&data_key(&meta.handle, &meta.version)).await {
            Err(StoreError::Missing(_)) => {
                let newer = self.newer(meta).await?;
                (newer.version.clone(), self.backend.read(&data_key(&newer.handle, &newer.version)).await?)
            }
            read => (meta.version.clone(), read?),
        };
        self.bytes.insert(version, bytes.clone());
        Ok(bytes)
    }

    /// The file or a `range` of it as a stream, for delivery: never held whole in memory.
    pub async fn stream(&self, meta: &FileMeta, range: Option<Range<u64>>) -> Result<ByteStream> {
        match self.backend.get(&data_key(&meta.handle, &meta.version), range.clone()).await {
            Err(StoreError::Missing(_)) => {
                let newer = self.newer(meta).await?;
                self.backend.get(&data_key(&newer.handle, &newer.version), range).await
            }
            stream => stream,
        }
    }

    /// The handle's metadata after its bytes under `meta` went missing: overwritten since (the
    /// old bytes are gone), or deleted (NotFound).
    async fn newer(&self, meta: &FileMeta) -> Result<Arc<FileMeta>> {
        self.meta.invalidate(&meta.handle);
        let current = self.meta(&meta.handle).await?;
        if current.version == meta.version {
            return Err(StoreError::NotFound(meta.handle.clone()));
        }
        Ok(current)
    }

    /// The file a repeatable `store` request (identified by `token`) stored before, if it is
    /// still there.
    pub async fn stored_under(&self, token: &str) -> Option<Arc<FileMeta>> {
        let handle = self.backend.read(&format!("_stored/{token}")).await.ok()?;
        self.meta(String::from_utf8_lossy(&handle).trim()).await.ok()
    }

    /// Remember which file a repeatable `store` request stored.
    pub async fn remember_stored(&self, token: &str, handle: &str) {
        let written = self.backend.put(&format!("_stored/{token}"), Bytes::from(handle.to_string())).await;
        if written.is_err() {
            tracing::warn!("could not record a store result; a repeat of the request will store again");
        }
    }

    /// Forget what this node knows of `handle` (another node changed it): its next read asks
    /// the backend.
    pub fn forget(&self, handle: &str) {
        self.meta.invalidate(handle);
    }

    /// Whether the backend answers (for `/readyz`).
    pub async fn reachable(&self) -> bool {
        self.backend.head("_ready").await.is_ok()
    }

    pub async fn delete(&self, handle: &str) -> Result<Arc<FileMeta>> {
        let _guard = self.write_lock.lock().await;
        let meta = self.meta(handle).await?;
        // the metadata goes first: the handle disappears at once, the bytes may follow
        self.backend.delete(&meta_key(handle)).await?;
        self.meta.invalidate(handle);
        self.bytes.invalidate(&meta.version);
        self.backend.delete(&data_key(handle, &meta.version)).await.ok();
        Ok(meta)
    }
}

impl Store {
    /// Remove data objects (`<version>.bin`) that no metadata points to and that are older than
    /// `grace` (younger ones may be an upload between its two writes, on this node or another):
    /// what a crash between the data and the metadata write, or a failed delete, left behind.
    pub async fn sweep_orphans(&self, grace: std::time::Duration) -> Result<usize> {
        let keys = self.backend.list("").await?;
        let mut by_handle: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for key in &keys {
            if let Some((dir, file)) = key.rsplit_once('/') {
                if file.ends_with(".bin") && dir.contains('/') {
                    by_handle.entry(dir).or_default().push(file);
                }
            }
        }
        let cutoff = (now_ms() / 1000).saturating_sub(grace.as_secs());
        let mut removed = 0;
        for (dir, files) in by_handle {
            let handle = dir.rsplit('/').next().unwrap_or_default();
            let live = match self.meta(handle).await {
                Ok(m) => Some(m.version.clone()),
                Err(StoreError::NotFound(_) | StoreError::InvalidHandle(_)) => None,
                Err(_) => continue,
            };
            for file in files.into_iter().filter(|f| Some(f.trim_end_matches(".bin")) != live.as_deref()) {
                let key = format!("{dir}/{file}");
                if self.backend.head(&key).await?.is_some_and(|info| info.modified < cutoff) {
                    self.backend.delete(&key).await?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// What a write stores: bytes in memory, or an upload spooled to disk.
enum Content {
    Bytes(Bytes),
    Spooled(Spooled),
}
