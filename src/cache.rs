//! Derivative cache: an in-memory hot tier (moka, weighted by bytes) over a disk tier.
//!
//! The disk tier keeps its index in sled (key → metadata, source → keys for purges) and the bytes
//! in one file per entry under `cache/blobs/`. Bytes stay out of sled on purpose: derivatives are
//! 10 KB–1 MB, and sled keeps values in its log and page cache, so large values would bloat both
//! and be rewritten on every compaction; plain files cost one `read` on a cold hit, are paged by
//! the OS, and are removed with one `unlink`. Each index entry carries the blake3 of its bytes: a
//! file torn by a crash fails the check and is dropped and recomputed, never served.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::metrics::METRICS;

pub type Key = [u8; 32];

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
}

#[derive(Debug)]
pub struct Cached {
    pub bytes: Bytes,
    pub meta: EntryMeta,
    /// Last time a memory hit was written back to the index (for the disk tier's LRU).
    touched: AtomicU64,
}

impl Cached {
    pub fn new(bytes: Bytes, meta: EntryMeta) -> Cached {
        let touched = AtomicU64::new(meta.last_access);
        Cached { bytes, meta, touched }
    }
}

/// Memory hits refresh the disk index's access time at most this often.
const TOUCH_EVERY_SECS: u64 = 600;

pub struct Cache {
    entries: sled::Tree,
    by_source: sled::Tree,
    blobs: PathBuf,
    hot: moka::sync::Cache<Key, Arc<Cached>>,
    /// Memory hits whose access time the index should learn; written by the sweeper, so a hit
    /// on the async executor never waits for sled.
    touched: std::sync::Mutex<std::collections::HashMap<Key, u64>>,
    disk_bytes: AtomicU64,
    max_bytes: u64,
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Cache {
    pub fn open(data_dir: &Path, max_bytes: u64, memory_bytes: u64) -> Result<Cache, String> {
        let dir = data_dir.join("cache");
        let blobs = dir.join("blobs");
        std::fs::create_dir_all(&blobs).map_err(|e| format!("cannot create {}: {e}", blobs.display()))?;
        let db = sled::open(dir.join("index")).map_err(|e| format!("cannot open cache index: {e}"))?;
        let entries = db.open_tree("entries").map_err(|e| e.to_string())?;
        let by_source = db.open_tree("by_source").map_err(|e| e.to_string())?;
        let hot = moka::sync::Cache::builder()
            .weigher(|_k: &Key, v: &Arc<Cached>| v.bytes.len().min(u32::MAX as usize) as u32)
            .max_capacity(memory_bytes)
            .build();
        let disk: u64 =
            entries.iter().values().filter_map(|v| v.ok()).filter_map(|v| decode_meta(&v)).map(|m| m.length).sum();
        METRICS.cache_disk_bytes.set(disk as i64);
        let touched = Default::default();
        Ok(Cache { entries, by_source, blobs, hot, touched, disk_bytes: AtomicU64::new(disk), max_bytes })
    }

    fn blob_path(&self, key: &Key) -> PathBuf {
        let hex = hex::encode(key);
        self.blobs.join(&hex[..2]).join(&hex)
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

    /// Hot tier, then disk (blocking I/O: call from the blocking pool).
    pub fn get(&self, key: &Key) -> Option<Arc<Cached>> {
        if let Some(hit) = self.get_hot(key) {
            return Some(hit);
        }
        let raw = self.entries.get(key).ok()??;
        let mut meta = decode_meta(&raw)?;
        if meta.expires <= now() {
            self.remove(key, &meta);
            return None;
        }
        let bytes = match std::fs::read(self.blob_path(key)) {
            Ok(b) => Bytes::from(b),
            Err(_) => {
                self.remove(key, &meta);
                return None;
            }
        };
        if bytes.len() as u64 != meta.length || blake3::hash(&bytes).to_hex().as_str() != meta.checksum {
            tracing::warn!(key = %hex::encode(key), "cache entry failed its checksum; dropped");
            METRICS.cache_corrupt.inc();
            self.remove(key, &meta);
            return None;
        }
        meta.last_access = now();
        if let Ok(v) = serde_json::to_vec(&meta) {
            // only if nobody replaced the entry meanwhile
            self.entries.compare_and_swap(key, Some(&raw), Some(v)).ok();
        }
        let cached = Arc::new(Cached::new(bytes, meta));
        self.hot.insert(*key, cached.clone());
        Some(cached)
    }

    /// Store a derivative: bytes first (temp + rename), then the index entry that makes it visible.
    pub fn put(&self, key: &Key, bytes: Bytes, meta: EntryMeta) -> Arc<Cached> {
        let cached = Arc::new(Cached::new(bytes, meta));
        self.hot.insert(*key, cached.clone());
        if let Err(e) = self.write_disk(key, &cached) {
            tracing::warn!(error = %e, "cache write failed; entry kept in memory only");
        }
        if self.disk_bytes.load(Ordering::Relaxed) > self.max_bytes {
            self.evict_to_budget();
        }
        cached
    }

    fn write_disk(&self, key: &Key, cached: &Cached) -> std::io::Result<()> {
        let path = self.blob_path(key);
        let dir = path.parent().expect("blob in a shard dir");
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{:x}.tmp", rand::random::<u64>()));
        std::fs::File::create(&tmp)?.write_all(&cached.bytes)?;
        std::fs::rename(&tmp, &path)?;
        let old = self.entries.insert(key, serde_json::to_vec(&cached.meta)?).map_err(std::io::Error::other)?;
        let old_len = old.as_deref().and_then(decode_meta).map(|m| m.length).unwrap_or(0);
        self.account(cached.meta.length, old_len);
        for source in std::iter::once(&cached.meta.source).chain(&cached.meta.overlays) {
            self.by_source.insert(source_key(source, key), &[]).map_err(std::io::Error::other)?;
        }
        Ok(())
    }

    fn account(&self, add: u64, sub: u64) {
        let update = |v: u64| Some((v + add).saturating_sub(sub));
        let prev = self.disk_bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, update).unwrap_or(0);
        METRICS.cache_disk_bytes.set(((prev + add).saturating_sub(sub)) as i64);
    }

    fn touch(&self, key: &Key, now: u64) {
        let Ok(Some(raw)) = self.entries.get(key) else { return };
        let Some(mut meta) = decode_meta(&raw) else { return };
        meta.last_access = now;
        if let Ok(v) = serde_json::to_vec(&meta) {
            self.entries.compare_and_swap(key, Some(&raw), Some(v)).ok();
        }
    }

    /// Remove whatever entry `key` holds now; the accounting uses the removed entry itself, not
    /// a possibly stale copy the caller saw.
    fn remove(&self, key: &Key, seen: &EntryMeta) {
        self.hot.invalidate(key);
        let removed = self.entries.remove(key).ok().flatten().and_then(|v| decode_meta(&v));
        for meta in removed.iter().chain([seen]) {
            for source in std::iter::once(&meta.source).chain(&meta.overlays) {
                self.by_source.remove(source_key(source, key)).ok();
            }
        }
        if let Some(meta) = &removed {
            self.account(0, meta.length);
        }
        std::fs::remove_file(self.blob_path(key)).ok();
    }

    /// Drop every derivative of a source (after a delete or an overwrite). Returns how many.
    pub fn purge_source(&self, source: &str) -> usize {
        let prefix = source_prefix(source);
        let keys: Vec<Key> = self
            .by_source
            .scan_prefix(&prefix)
            .keys()
            .filter_map(|k| k.ok())
            .filter_map(|k| k[prefix.len()..].try_into().ok())
            .collect();
        for key in &keys {
            match self.entries.get(key).ok().flatten().and_then(|v| decode_meta(&v)) {
                Some(meta) => self.remove(key, &meta),
                None => {
                    self.hot.invalidate(key);
                    self.by_source.remove(source_key(source, key)).ok();
                }
            }
        }
        keys.len()
    }

    /// Write the access times of memory hits to the index (blocking: the sweeper calls it).
    pub fn write_touches(&self) {
        let pending = std::mem::take(&mut *self.touched.lock().unwrap_or_else(|e| e.into_inner()));
        for (key, at) in pending {
            self.touch(&key, at);
        }
    }

    /// Remove expired entries, then the least recently used ones while over budget.
    pub fn sweep(&self) -> usize {
        self.write_touches();
        let now = now();
        let mut removed = 0;
        for (key, meta) in self.all_entries() {
            if meta.expires <= now {
                self.remove(&key, &meta);
                removed += 1;
            }
        }
        METRICS.cache_evictions.with_label_values(&["expired"]).inc_by(removed as u64);
        removed + self.evict_to_budget()
    }

    fn evict_to_budget(&self) -> usize {
        if self.disk_bytes.load(Ordering::Relaxed) <= self.max_bytes {
            return 0;
        }
        let mut all = self.all_entries();
        all.sort_by_key(|(_, m)| m.last_access);
        let target = self.max_bytes / 10 * 9;
        let mut removed = 0;
        for (key, meta) in all {
            if self.disk_bytes.load(Ordering::Relaxed) <= target {
                break;
            }
            self.remove(&key, &meta);
            removed += 1;
        }
        METRICS.cache_evictions.with_label_values(&["size"]).inc_by(removed as u64);
        removed
    }

    fn all_entries(&self) -> Vec<(Key, EntryMeta)> {
        self.entries
            .iter()
            .filter_map(|kv| kv.ok())
            .filter_map(|(k, v)| Some(((*k).try_into().ok()?, decode_meta(&v)?)))
            .collect()
    }

    pub fn flush(&self) {
        self.entries.flush().ok();
        self.by_source.flush().ok();
    }
}

fn decode_meta(v: &[u8]) -> Option<EntryMeta> {
    serde_json::from_slice(v).ok()
}

fn source_prefix(source: &str) -> Vec<u8> {
    let mut p = blake3::hash(source.as_bytes()).as_bytes().to_vec();
    p.push(b'/');
    p
}

fn source_key(source: &str, key: &Key) -> Vec<u8> {
    let mut k = source_prefix(source);
    k.extend_from_slice(key);
    k
}
