//! Derivative cache: an in-memory hot tier (moka, weighted by bytes) over a disk tier.
//!
//! The disk tier keeps its index in sled ([`index`]: key → metadata, plus trees ordered by source,
//! expiry and last access) and the bytes in one file per entry under `cache/blobs/` ([`blobs`]).
//! Bytes stay out of sled on purpose: derivatives are 10 KB–1 MB, and sled keeps values in its log
//! and page cache, so large values would bloat both and be rewritten on every compaction; plain
//! files cost one `read` on a cold hit, are paged by the OS, and are removed with one `unlink`.
//! Each index entry carries the blake3 of its bytes: a file torn by a crash fails the check and is
//! dropped and recomputed, never served.
//!
//! Large entries (over [`LARGE_ENTRY`], a converted hour of audio) never pass through memory: the
//! pipeline writes them to a file in `cache/spool/`, which [`Cache::adopt`] renames into place,
//! and a hit opens the blob and sends it as it is read, never holding it. They stay out of the
//! memory tier, and a disk hit checks their length, not their checksum (hashing a gigabyte per
//! hit would cost more than the answer): they are synced before their rename, so a crash leaves
//! all of one or none.
//!
//! Request paths only read, write and touch single entries; everything that walks the index or
//! the blob directory (expiry, the size budget, orphaned files) is [`Cache::housekeep`], run by the
//! one background sweeper, so a transform worker never pays for another entry's cleanup.

mod admin;
mod blobs;
mod housekeeping;
mod index;
pub mod shared;
#[cfg(test)]
mod tests;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::metrics::METRICS;
pub use admin::{Stats, Verified};
use blobs::Blobs;
pub use housekeeping::Housekeeping;
use index::{Expect, Index};

pub type Key = [u8; 32];

/// Entries larger than this many bytes live on disk only (see the module's notes).
pub const LARGE_ENTRY: usize = 8 << 20;

/// Build a cache key from everything that changes a derivative's bytes.
pub fn key(parts: &[&str]) -> Key {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    *h.finalize().as_bytes()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryMeta {
    pub content_type: String,
    pub extension: String,
    pub length: u64,
    /// blake3 of the bytes, hex: the strong ETag and the torn-write check.
    pub checksum: String,
    /// Unix seconds.
    pub created: u64,
    pub expires: u64,
    pub last_access: u64,
    /// Source identity, for purges.
    pub source: String,
    /// Other stored files the bytes depend on (watermarks), also purged by.
    #[serde(default)]
    pub overlays: Vec<String>,
    /// The format was negotiated from `Accept`.
    pub vary_accept: bool,
    /// The quality `quality=auto` chose (`X-Refract-Quality`, on hits too); absent in entries
    /// written before it existed.
    #[serde(default)]
    pub auto_quality: Option<u8>,
}

/// An entry's bytes: in memory, or (a large entry) its open blob, read as it is sent.
#[derive(Debug, Clone)]
pub enum Content {
    Memory(Bytes),
    /// Opened before anything could unlink it: a purge meanwhile does not cut the answer short.
    File(Arc<std::fs::File>),
}

#[derive(Debug)]
pub struct Cached {
    pub content: Content,
    pub meta: EntryMeta,
    /// Last time a memory hit was written back to the index (for the disk tier's LRU).
    touched: AtomicU64,
}

impl Cached {
    pub fn new(bytes: Bytes, meta: EntryMeta) -> Cached {
        Cached::with(Content::Memory(bytes), meta)
    }

    pub fn with(content: Content, meta: EntryMeta) -> Cached {
        let touched = AtomicU64::new(meta.last_access);
        Cached { content, meta, touched }
    }
}

/// A finished large result (a synced file in the spool directory): open, with its length and
/// checksum, read once through the page cache (not into memory).
pub fn open_output(path: &Path) -> std::io::Result<(std::fs::File, u64, String)> {
    let file = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, &file);
    let len = std::io::copy(&mut reader, &mut hasher)?;
    Ok((file, len, hasher.finalize().to_hex().to_string()))
}

/// Memory hits refresh the disk index's access time at most this often.
const TOUCH_EVERY_SECS: u64 = 600;

pub struct Cache {
    index: Index,
    blobs: Blobs,
    /// Where the pipeline writes large results before they are adopted.
    spool: std::path::PathBuf,
    hot: moka::sync::Cache<Key, Arc<Cached>>,
    /// Memory hits whose access time the index should learn; written by the sweeper, so a hit
    /// on the async executor never waits for sled.
    touched: Mutex<HashMap<Key, u64>>,
    /// Signed: a removal may be accounted before the write it undoes, so the sum can dip below
    /// zero for a moment; clamping there would lose bytes for good.
    disk_bytes: AtomicI64,
    max_bytes: u64,
    /// Wakes the housekeeper as soon as a write takes the disk tier over its budget, so the
    /// overshoot lasts one housekeeping run, not one sweep interval.
    over_budget: tokio::sync::Notify,
    /// Housekeeping runs so far: the orphan scan runs on every `ORPHAN_SCAN_EVERY`-th, from the first.
    runs: AtomicU64,
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Cache {
    /// Open (or create) the cache under `data_dir/cache`. Reads every index entry once, to learn
    /// the bytes on disk and, for an index from before the ordered trees, to build them; the
    /// blob directory is not scanned here but by the first [`Cache::housekeep`].
    pub fn open(data_dir: &Path, max_bytes: u64, memory_bytes: u64) -> Result<Cache, String> {
        let dir = data_dir.join("cache");
        let blobs = Blobs::open(dir.join("blobs"))?;
        let (index, disk) = Index::open(&dir.join("index"))?;
        // opened after the index, whose lock says no other process uses this directory: what
        // the spool holds was left by a crash
        let spool = dir.join("spool");
        std::fs::remove_dir_all(&spool).ok();
        std::fs::create_dir_all(&spool).map_err(|e| format!("cannot create {}: {e}", spool.display()))?;
        let hot = moka::sync::Cache::builder()
            .weigher(|_k: &Key, v: &Arc<Cached>| v.meta.length.min(u64::from(u32::MAX)) as u32)
            .max_capacity(memory_bytes)
            .build();
        METRICS.cache_disk_bytes.set(disk as i64);
        Ok(Cache {
            index,
            blobs,
            spool,
            hot,
            touched: Default::default(),
            disk_bytes: AtomicI64::new(disk as i64),
            max_bytes,
            over_budget: tokio::sync::Notify::new(),
            runs: AtomicU64::new(0),
        })
    }

    /// The hot tier only: no I/O, safe on the async executor.
    pub fn get_hot(&self, key: &Key) -> Option<Arc<Cached>> {
        let hit = self.hot.get(key)?;
        let now = now();
        if hit.meta.expires <= now {
            self.hot.invalidate(key);
            return None;
        }
        // popular entries live in memory; tell the disk tier they are in use so that
        // size-based eviction does not pick them first
        if now.saturating_sub(hit.touched.load(Ordering::Relaxed)) > TOUCH_EVERY_SECS {
            hit.touched.store(now, Ordering::Relaxed);
            self.touched.lock().unwrap_or_else(|e| e.into_inner()).insert(*key, now);
        }
        Some(hit)
    }

    /// Hot tier, then disk (blocking I/O: call from the blocking pool). A disk hit moves the entry
    /// to the young end of the LRU order.
    /// An entry's description without reading its bytes: a conditional request needs only the
    /// checksum. Its memory copy, else the index (whose blob may since have gone: the asker
    /// holds the bytes, and the checksum says they are still right).
    pub fn peek(&self, key: &Key) -> Option<EntryMeta> {
        if let Some(hit) = self.get_hot(key) {
            return Some(hit.meta.clone());
        }
        let (_, meta) = self.index.get(key)?;
        (meta.expires > now()).then_some(meta)
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Cached>> {
        if let Some(hit) = self.get_hot(key) {
            return Some(hit);
        }
        let (raw, mut meta) = self.index.get(key)?;
        // every removal below is conditional on `raw`: an entry replaced meanwhile is left alone
        if meta.expires <= now() {
            self.discard(key, Expect::Raw(&raw));
            return None;
        }
        let Some(content) = self.read_blob(key, &meta) else {
            self.discard(key, Expect::Raw(&raw));
            return None;
        };
        let now = now();
        if self.index.set_access(key, now, Some(&raw)) {
            meta.last_access = now;
        }
        let in_memory = matches!(content, Content::Memory(_));
        let cached = Arc::new(Cached::with(content, meta));
        if in_memory {
            self.hot.insert(*key, cached.clone());
        }
        Some(cached)
    }

    /// An entry's blob, checked: read and hashed, or (large) opened with its length checked.
    fn read_blob(&self, key: &Key, meta: &EntryMeta) -> Option<Content> {
        let content = if meta.length > LARGE_ENTRY as u64 {
            let file = self.blobs.open_blob(key).ok()?;
            let length = file.metadata().ok()?.len();
            (length == meta.length).then(|| Content::File(Arc::new(file)))
        } else {
            let bytes = self.blobs.read(key).ok()?;
            let intact = bytes.len() as u64 == meta.length && blake3::hash(&bytes).to_hex().as_str() == meta.checksum;
            intact.then_some(Content::Memory(bytes))
        };
        if content.is_none() && self.blobs.exists(key) {
            tracing::warn!(key = %hex::encode(key), "cache entry failed its checksum; dropped");
            METRICS.cache_corrupt.inc();
        }
        content
    }

    /// The directory large results are written to before [`Cache::adopt`] (on the cache's own
    /// file system: adopting is a rename).
    pub fn spool_dir(&self) -> &Path {
        &self.spool
    }

    /// Store a large derivative the pipeline wrote to `file` (in the spool directory, synced):
    /// renamed into place, then indexed; `bytes` are its mapping, served meanwhile. Kept out of
    /// the memory tier.
    pub fn adopt(&self, key: &Key, path: tempfile::TempPath, file: std::fs::File, meta: EntryMeta) -> Arc<Cached> {
        let cached = Arc::new(Cached::with(Content::File(Arc::new(file)), meta));
        let kept = self.blobs.adopt(key, path).map_err(|e| e.to_string()).and_then(|()| {
            let replaced = self.index.insert(key, &cached.meta)?;
            self.account(cached.meta.length, replaced);
            Ok(())
        });
        if let Err(e) = kept {
            tracing::warn!(error = %e, "cache write failed; the large entry is not kept");
        }
        if self.disk_bytes() > self.max_bytes {
            self.over_budget.notify_one();
        }
        cached
    }

    /// Store a derivative: bytes first (temp + rename), then the index entry that makes it visible.
    /// Never evicts: staying under the budget is the sweeper's job, off the transform workers.
    pub fn put(&self, key: &Key, bytes: Bytes, meta: EntryMeta) -> Arc<Cached> {
        let cached = Arc::new(Cached::new(bytes, meta));
        self.hot.insert(*key, cached.clone());
        if let Err(e) = self.write_disk(key, &cached) {
            tracing::warn!(error = %e, "cache write failed; entry kept in memory only");
        }
        if self.disk_bytes() > self.max_bytes {
            self.over_budget.notify_one();
        }
        cached
    }

    /// Resolves when a write has taken the disk tier over its budget (at once if one did since
    /// the last call).
    pub async fn over_budget(&self) {
        self.over_budget.notified().await
    }

    fn write_disk(&self, key: &Key, cached: &Cached) -> Result<(), String> {
        let Content::Memory(bytes) = &cached.content else { return Err("a file entry is adopted, not put".into()) };
        self.blobs.write(key, bytes).map_err(|e| e.to_string())?;
        let replaced = self.index.insert(key, &cached.meta)?;
        self.account(cached.meta.length, replaced);
        Ok(())
    }

    fn account(&self, add: u64, sub: u64) {
        let delta = add as i64 - sub as i64;
        let now = self.disk_bytes.fetch_add(delta, Ordering::Relaxed) + delta;
        METRICS.cache_disk_bytes.set(now.max(0));
    }

    /// Bytes the disk tier holds (never negative, even while a removal overtakes its write).
    fn disk_bytes(&self) -> u64 {
        self.disk_bytes.load(Ordering::Relaxed).max(0) as u64
    }

    /// Remove the entry `key` holds if it is still the one `expect` describes, with its blob and
    /// its memory copy. The accounting uses the removed entry itself, not a copy the caller saw.
    fn discard(&self, key: &Key, expect: Expect) -> bool {
        let Some(length) = self.index.remove(key, expect) else { return false };
        self.hot.invalidate(key);
        self.blobs.remove(key);
        self.account(0, length);
        true
    }

    /// Drop every derivative of a source (after a delete or an overwrite), found through the
    /// source itself or an overlay it was drawn with. Returns how many.
    pub fn purge_source(&self, source: &str) -> usize {
        let keys = self.index.keys_by_source(source);
        for key in &keys {
            if !self.discard(key, Expect::Any) {
                // a source key with no entry behind it: drop it and any memory copy
                self.hot.invalidate(key);
                self.index.forget_source(source, key);
            }
        }
        keys.len()
    }

    /// Write the access times of memory hits to the index (blocking: the sweeper calls it).
    pub fn write_touches(&self) {
        let pending = std::mem::take(&mut *self.touched.lock().unwrap_or_else(|e| e.into_inner()));
        for (key, at) in pending {
            self.index.set_access(&key, at, None);
        }
    }

    /// Everything housekeeping removes, as one count: what the sweeper logs.
    pub fn sweep(&self) -> usize {
        self.housekeep().total()
    }

    /// Whether the cache can still write (for `/readyz`): a file created and removed in its
    /// spool directory (a full or read-only disk fails it).
    pub fn reachable(&self) -> bool {
        tempfile::NamedTempFile::new_in(&self.spool).is_ok()
    }

    pub fn flush(&self) {
        self.index.flush();
    }
}
