//! Originals by handle on local disk.
//!
//! Layout: `originals/<h[..2]>/<handle>/meta.json` and `<version>.bin`, where version is the
//! blake3 of the bytes. Bytes are written to a temporary file, fsynced and renamed; then the
//! metadata is written the same way. The metadata's rename is the commit point, so a crash at
//! any moment leaves either the old file or the new one under a handle, never half of one.

mod error;
mod spool;

pub use error::{Result, StoreError};
pub use spool::{Spool, Spooled};

use bytes::Bytes;
use md5::Digest as _;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
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
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub container: Option<String>,
    pub path: Option<String>,
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
}

pub struct Store {
    root: PathBuf,
    meta: moka::sync::Cache<String, Arc<FileMeta>>,
    /// Recently read originals by version: a burst of derivatives of one photo (srcset sizes,
    /// formats) reads it from disk once.
    bytes: moka::sync::Cache<String, Bytes>,
    /// Serialises writers: an overwrite and a delete of one handle must not interleave.
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

impl Store {
    pub fn open(data_dir: &Path, memory_bytes: u64) -> std::io::Result<Store> {
        let root = data_dir.join("originals");
        // temporary files and deleted handles left by a crash
        fs::remove_dir_all(root.join(".tmp")).ok();
        fs::create_dir_all(root.join(".tmp"))?;
        let bytes = moka::sync::Cache::builder()
            .weigher(|_k: &String, v: &Bytes| v.len().min(u32::MAX as usize) as u32)
            .max_capacity(memory_bytes)
            .build();
        Ok(Store { root, meta: moka::sync::Cache::new(100_000), bytes, write_lock: tokio::sync::Mutex::new(()) })
    }

    fn dir(&self, handle: &str) -> PathBuf {
        self.root.join(handle.get(..2).unwrap_or("__")).join(handle)
    }

    /// Only well-formed handles reach the file system (no `..`, no separators).
    fn check(handle: &str) -> Result<()> {
        if crate::handle::is_valid(handle) {
            Ok(())
        } else {
            Err(StoreError::InvalidHandle(handle.to_string()))
        }
    }

    /// Store new bytes under `handle` (a new one when `None`).
    pub async fn put(&self, handle: Option<String>, bytes: Bytes, upload: Upload) -> Result<FileMeta> {
        self.commit(handle, Content::Bytes(bytes), upload).await
    }

    /// A temporary file an upload is written to as it arrives (never held whole in memory).
    pub async fn spool(&self) -> Result<Spool> {
        let path = self.root.join(".tmp").join(format!("{:x}.upload", rand::random::<u64>()));
        let file = tokio::fs::File::create(&path).await?;
        Ok(Spool::new(file, path))
    }

    /// Store a spooled upload under `handle` (a new one when `None`): the file is renamed into
    /// place, not copied.
    pub async fn put_spooled(&self, handle: Option<String>, spooled: Spooled, upload: Upload) -> Result<FileMeta> {
        self.commit(handle, Content::File(spooled), upload).await
    }

    async fn commit(&self, handle: Option<String>, content: Content, upload: Upload) -> Result<FileMeta> {
        let _guard = self.write_lock.lock().await;
        let handle = handle.unwrap_or_else(new_handle);
        Self::check(&handle)?;
        let dir = self.dir(&handle);
        let tmp = self.root.join(".tmp");
        let meta = tokio::task::spawn_blocking(move || write_original(&dir, &tmp, &handle, content, upload))
            .await
            .map_err(|e| StoreError::Io { op: "write", source: std::io::Error::other(e).into() })??;
        self.meta.insert(meta.handle.clone(), Arc::new(meta.clone()));
        Ok(meta)
    }

    pub async fn meta(&self, handle: &str) -> Result<Arc<FileMeta>> {
        Self::check(handle)?;
        if let Some(m) = self.meta.get(handle) {
            return Ok(m);
        }
        let path = self.dir(handle).join("meta.json");
        let text = match tokio::fs::read(&path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::NotFound(handle.to_string())),
            Err(e) => return Err(e.into()),
        };
        let meta: FileMeta = serde_json::from_slice(&text)
            .map_err(|e| StoreError::Corrupt { handle: handle.to_string(), detail: e.to_string() })?;
        // a writer may have stored newer metadata while we read the file: keep theirs
        Ok(self.meta.entry(handle.to_string()).or_insert(Arc::new(meta)).into_value())
    }

    pub async fn read(&self, meta: &FileMeta) -> Result<Bytes> {
        if let Some(b) = self.bytes.get(&meta.version) {
            return Ok(b);
        }
        let path = self.dir(&meta.handle).join(format!("{}.bin", meta.version));
        match tokio::fs::read(&path).await {
            Ok(b) => {
                let b = Bytes::from(b);
                self.bytes.insert(meta.version.clone(), b.clone());
                Ok(b)
            }
            // overwritten (or deleted) between the metadata read and now: read the current one
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.meta.invalidate(&meta.handle);
                let current = self.meta(&meta.handle).await?;
                if current.version == meta.version {
                    return Err(StoreError::NotFound(meta.handle.clone()));
                }
                let path = self.dir(&current.handle).join(format!("{}.bin", current.version));
                Ok(Bytes::from(tokio::fs::read(&path).await?))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The file a repeatable `store` request (identified by `token`) stored before, if it is
    /// still there.
    pub async fn stored_under(&self, token: &str) -> Option<Arc<FileMeta>> {
        let path = self.root.join(".stored").join(token);
        let handle = tokio::fs::read_to_string(&path).await.ok()?;
        self.meta(handle.trim()).await.ok()
    }

    /// Remember which file a repeatable `store` request stored.
    pub async fn remember_stored(&self, token: &str, handle: &str) {
        let (dir, tmp) = (self.root.join(".stored"), self.root.join(".tmp"));
        let (token, handle) = (token.to_string(), handle.to_string());
        let written = tokio::task::spawn_blocking(move || {
            fs::create_dir_all(&dir)?;
            write_atomic(&tmp, &dir.join(token), handle.as_bytes())
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::warn!("could not record a store result; a repeat of the request will store again");
        }
    }

    pub async fn delete(&self, handle: &str) -> Result<Arc<FileMeta>> {
        let _guard = self.write_lock.lock().await;
        let meta = self.meta(handle).await?;
        let dir = self.dir(handle);
        let trash = self.root.join(".tmp").join(format!("{handle}.{:x}", rand::random::<u64>()));
        // the rename makes the handle disappear at once; the removal may then take its time
        tokio::fs::rename(&dir, &trash).await?;
        self.meta.invalidate(handle);
        self.bytes.invalidate(&meta.version);
        tokio::fs::remove_dir_all(&trash).await.ok();
        Ok(meta)
    }
}

/// What a write stores: bytes in memory, or an upload spooled to disk.
enum Content {
    Bytes(Bytes),
    File(Spooled),
}

fn write_original(dir: &Path, tmp: &Path, handle: &str, content: Content, upload: Upload) -> Result<FileMeta> {
    let mapped = match &content {
        Content::File(spooled) => Some(spooled.map()?),
        Content::Bytes(_) => None,
    };
    let bytes: &[u8] = match (&content, &mapped) {
        (Content::Bytes(b), _) => b,
        (_, Some(m)) => m,
        _ => unreachable!("a spooled file is mapped"),
    };
    let version = blake3::hash(bytes).to_hex().to_string();
    let previous: Option<FileMeta> = fs::read(dir.join("meta.json")).ok().and_then(|t| serde_json::from_slice(&t).ok());
    if !dir.exists() {
        fs::create_dir_all(dir)?;
        // make the new directory entries themselves durable
        for d in [dir.parent(), dir.parent().and_then(Path::parent)].into_iter().flatten() {
            fs::File::open(d)?.sync_all()?;
        }
    }
    let data_path = dir.join(format!("{version}.bin"));
    match &content {
        Content::Bytes(b) => write_atomic(tmp, &data_path, b)?,
        // the spool was fsynced when it was finished
        Content::File(spooled) => {
            fs::rename(&spooled.path, &data_path)?;
            fs::File::open(dir)?.sync_all()?;
        }
    }
    let filename =
        upload.filename.or_else(|| previous.as_ref().map(|p| p.filename.clone())).unwrap_or_else(|| handle.to_string());
    let meta = FileMeta {
        handle: handle.to_string(),
        mimetype: upload.mimetype.unwrap_or_else(|| "application/octet-stream".into()),
        filename,
        size: bytes.len() as u64,
        uploaded: now_ms(),
        version: version.clone(),
        md5: hex::encode(md5::Md5::digest(bytes)),
        sha1: hex::encode(sha1::Sha1::digest(bytes)),
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
        width: upload.width,
        height: upload.height,
        container: upload.container,
        path: upload.path,
    };
    write_atomic(tmp, &dir.join("meta.json"), &serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?)?;
    if let Some(prev) = previous.filter(|p| p.version != version) {
        fs::remove_file(dir.join(format!("{}.bin", prev.version))).ok();
    }
    Ok(meta)
}

/// temp file + fsync + rename + fsync of the directory.
fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_dir.join(format!("{:x}.tmp", rand::random::<u64>()));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dest)?;
    if let Some(parent) = dest.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}
