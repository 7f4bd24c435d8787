//! The disk tier's index: four sled trees in one database.
//!
//! | tree        | key                                             | value             |
//! |-------------|-------------------------------------------------|-------------------|
//! | `entries`   | cache key (32 bytes)                            | JSON [`EntryMeta`] |
//! | `by_source` | blake3(source) (32) ++ `/` ++ cache key         | empty             |
//! | `by_expiry` | `expires`, u64 big-endian (8) ++ cache key      | empty             |
//! | `by_access` | `last_access`, u64 big-endian (8) ++ cache key  | empty             |
//!
//! Big-endian timestamps sort bytewise in time order, so the expired entries are one range from
//! the start of `by_expiry` and the least recently used ones the start of `by_access`: sweeping
//! reads what it removes, not the whole index. The cache key suffix keeps entries with the same
//! second distinct.
//!
//! Each change to an entry (insert, replace, remove, access-time update) is one sled transaction
//! over all four trees, so an entry's secondary keys are exactly those its current metadata
//! derives, also after a crash (sled recovers a transaction whole or not at all). Walkers still
//! check every secondary key against the entry it names and drop a stale one, so an index that did
//! go wrong (an entry that no longer decodes, say) heals instead of stalling a sweep.

use sled::transaction::{ConflictableTransactionError, ConflictableTransactionResult, TransactionalTree};
use sled::{Batch, IVec, Transactional, Tree};
use std::path::Path;

use super::{EntryMeta, Key};

/// Present in the default tree once `by_expiry` and `by_access` have been built from `entries`.
/// A marker rather than "the ordered trees are empty" so that a rebuild cut short by a crash
/// (trees non-empty but incomplete) is started over on the next open.
const ORDERED_TREES_BUILT: &[u8] = b"cache.ordered-trees.v1";

/// Secondary keys written per batch while rebuilding, to bound memory on a large index.
const REBUILD_BATCH: usize = 4096;

pub(super) struct Index {
    db: sled::Db,
    entries: Tree,
    by_source: Tree,
    by_expiry: Tree,
    by_access: Tree,
}

/// Which entry a removal may take: the one there now, the exact value a reader saw, or the one a
/// walker reached through an ordered tree (if its timestamp still matches, the key was current).
#[derive(Clone, Copy)]
pub(super) enum Expect<'a> {
    Any,
    Raw(&'a [u8]),
    Expires(u64),
    Accessed(u64),
}

impl Expect<'_> {
    fn matches(self, raw: &[u8], meta: Option<&EntryMeta>) -> bool {
        match self {
            Expect::Any => true,
            Expect::Raw(seen) => seen == raw,
            Expect::Expires(at) => meta.is_some_and(|m| m.expires == at),
            Expect::Accessed(at) => meta.is_some_and(|m| m.last_access == at),
        }
    }
}

/// The four trees inside one transaction.
struct Tx<'a> {
    entries: &'a TransactionalTree,
    by_source: &'a TransactionalTree,
    by_expiry: &'a TransactionalTree,
    by_access: &'a TransactionalTree,
}

type TxResult<T> = ConflictableTransactionResult<T, String>;

impl Tx<'_> {
    /// Add the secondary keys `meta` derives for `key`.
    fn link(&self, key: &Key, meta: &EntryMeta) -> TxResult<()> {
        self.by_expiry.insert(ordered_key(meta.expires, key), IVec::default())?;
        self.by_access.insert(ordered_key(meta.last_access, key), IVec::default())?;
        for source in sources(meta) {
            self.by_source.insert(source_key(source, key), IVec::default())?;
        }
        Ok(())
    }

    /// Remove the secondary keys `meta` derives for `key`.
    fn unlink(&self, key: &Key, meta: &EntryMeta) -> TxResult<()> {
        self.by_expiry.remove(ordered_key(meta.expires, key))?;
        self.by_access.remove(ordered_key(meta.last_access, key))?;
        for source in sources(meta) {
            self.by_source.remove(source_key(source, key))?;
        }
        Ok(())
    }

    /// A walker's secondary key turned out stale (its entry is gone or moved on): drop it.
    fn drop_walked(&self, key: &Key, expect: Expect) -> TxResult<()> {
        match expect {
            Expect::Expires(at) => self.by_expiry.remove(ordered_key(at, key)).map(drop)?,
            Expect::Accessed(at) => self.by_access.remove(ordered_key(at, key)).map(drop)?,
            Expect::Any | Expect::Raw(_) => {}
        }
        Ok(())
    }
}

/// Open the sled database, waiting a little for a lock still held: sled releases its file lock
/// when its flusher thread ends, shortly after the last handle drops, so an in-process reopen
/// (or a restart overlapping the old process's exit) sees `WouldBlock` for a moment.
pub(super) fn open_db(path: &Path) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::open(path) {
            // sled reports a held lock as `ErrorKind::Other` with this message
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(25))
            }
            other => return other,
        }
    }
}

impl Index {
    /// Open the index; returns it with the bytes its entries account for.
    pub(super) fn open(path: &Path) -> Result<(Index, u64), String> {
        let db = open_db(path).map_err(|e| format!("cannot open cache index: {e}"))?;
        let tree = |name: &str| db.open_tree(name).map_err(|e| format!("cannot open cache index tree {name}: {e}"));
        let (entries, by_source) = (tree("entries")?, tree("by_source")?);
        let (by_expiry, by_access) = (tree("by_expiry")?, tree("by_access")?);
        let index = Index { db, entries, by_source, by_expiry, by_access };
        let rebuild = index.db.get(ORDERED_TREES_BUILT).map_err(|e| e.to_string())?.is_none();
        let total = index.scan(rebuild)?;
        if rebuild {
            index.db.insert(ORDERED_TREES_BUILT, IVec::default()).map_err(|e| e.to_string())?;
            index.db.flush().map_err(|e| e.to_string())?;
        }
        Ok((index, total))
    }

    /// The one full pass over `entries`, at open: sums the bytes on disk and, when `rebuild` (an
    /// index written before the ordered trees existed), fills `by_expiry` and `by_access` on the
    /// way, so an upgrade costs no second pass.
    fn scan(&self, rebuild: bool) -> Result<u64, String> {
        if rebuild {
            self.by_expiry.clear().map_err(|e| e.to_string())?;
            self.by_access.clear().map_err(|e| e.to_string())?;
        }
        let (mut expiry, mut access, mut pending) = (Batch::default(), Batch::default(), 0);
        let (mut total, mut count) = (0, 0);
        for item in self.entries.iter() {
            let (key, value) = item.map_err(|e| e.to_string())?;
            let (Some(meta), Ok(key)) = (decode_meta(&value), <Key>::try_from(&key[..])) else { continue };
            total += meta.length;
            count += 1;
            if rebuild {
                expiry.insert(ordered_key(meta.expires, &key), IVec::default());
                access.insert(ordered_key(meta.last_access, &key), IVec::default());
                pending += 1;
            }
            if pending == REBUILD_BATCH {
                self.apply(std::mem::take(&mut expiry), std::mem::take(&mut access))?;
                pending = 0;
            }
        }
        if pending > 0 {
            self.apply(expiry, access)?;
        }
        if rebuild && count > 0 {
            tracing::info!(entries = count, "cache index: built the expiry and access trees");
        }
        Ok(total)
    }

    fn apply(&self, expiry: Batch, access: Batch) -> Result<(), String> {
        self.by_expiry.apply_batch(expiry).map_err(|e| e.to_string())?;
        self.by_access.apply_batch(access).map_err(|e| e.to_string())
    }

    /// Run `f` as one transaction over the four trees (sled retries it on a conflict).
    fn transact<A>(&self, f: impl Fn(&Tx<'_>) -> TxResult<A>) -> Result<A, String> {
        (&self.entries, &self.by_source, &self.by_expiry, &self.by_access)
            .transaction(|(entries, by_source, by_expiry, by_access)| {
                f(&Tx { entries, by_source, by_expiry, by_access })
            })
            .map_err(|e| e.to_string())
    }

    /// The raw value (for conditional updates) and the decoded entry.
    pub(super) fn get(&self, key: &Key) -> Option<(IVec, EntryMeta)> {
        let raw = self.entries.get(key).ok()??;
        let meta = decode_meta(&raw)?;
        Some((raw, meta))
    }

    /// Whether `key` has an entry; on a read error, yes (the orphan sweep must not guess).
    pub(super) fn contains(&self, key: &Key) -> bool {
        self.entries.contains_key(key).unwrap_or(true)
    }

    /// Insert or replace the entry for `key`, moving its secondary keys. Returns the length of the
    /// entry it replaced (0 if none).
    pub(super) fn insert(&self, key: &Key, meta: &EntryMeta) -> Result<u64, String> {
        let value = serde_json::to_vec(meta).map_err(|e| e.to_string())?;
        self.transact(|tx| {
            let old = tx.entries.insert(&key[..], value.as_slice())?.as_deref().and_then(decode_meta);
            if let Some(old) = &old {
                tx.unlink(key, old)?;
            }
            tx.link(key, meta)?;
            Ok(old.map_or(0, |m| m.length))
        })
    }

    /// Remove the entry for `key` if `expect` allows, with its secondary keys. Returns the length
    /// of what was removed (0 for an entry that no longer decodes), or `None` if nothing was.
    pub(super) fn remove(&self, key: &Key, expect: Expect) -> Option<u64> {
        let removed = self.transact(|tx| {
            let Some(raw) = tx.entries.get(key)? else {
                tx.drop_walked(key, expect)?;
                return Ok(None);
            };
            let meta = decode_meta(&raw);
            if !expect.matches(&raw, meta.as_ref()) {
                tx.drop_walked(key, expect)?;
                return Ok(None);
            }
            tx.entries.remove(&key[..])?;
            if let Some(meta) = &meta {
                tx.unlink(key, meta)?;
            }
            Ok(Some(meta.map_or(0, |m| m.length)))
        });
        removed.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cache index: removal failed");
            None
        })
    }

    /// Record an access at `at`, moving the entry's LRU key; never moves it back in time. With
    /// `expect`, only if the entry is still that value (a reader's update must not overwrite a
    /// newer entry). Returns whether it was recorded.
    pub(super) fn set_access(&self, key: &Key, at: u64, expect: Option<&[u8]>) -> bool {
        let updated = self.transact(|tx| {
            let Some(raw) = tx.entries.get(key)? else { return Ok(false) };
            let Some(mut meta) = decode_meta(&raw).filter(|m| m.last_access < at) else { return Ok(false) };
            if expect.is_some_and(|seen| seen != &raw[..]) {
                return Ok(false);
            }
            tx.by_access.remove(ordered_key(meta.last_access, key))?;
            meta.last_access = at;
            let value = serde_json::to_vec(&meta).map_err(|e| ConflictableTransactionError::Abort(e.to_string()))?;
            tx.entries.insert(&key[..], value)?;
            tx.by_access.insert(ordered_key(at, key), IVec::default())?;
            Ok(true)
        });
        updated.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cache index: access update failed");
            false
        })
    }

    /// Entries that expire at or before `now`, soonest first, read lazily from `by_expiry`.
    pub(super) fn expired(&self, now: u64) -> impl Iterator<Item = (u64, Key)> {
        self.by_expiry.range(..now.saturating_add(1).to_be_bytes()).keys().filter_map(|k| split_ordered(&k.ok()?))
    }

    /// All entries, least recently used first, read lazily from `by_access`.
    pub(super) fn least_recent(&self) -> impl Iterator<Item = (u64, Key)> {
        self.by_access.iter().keys().filter_map(|k| split_ordered(&k.ok()?))
    }

    /// The keys of entries made from `source` (as their source or as an overlay).
    pub(super) fn keys_by_source(&self, source: &str) -> Vec<Key> {
        let prefix = source_prefix(source);
        let keys = self.by_source.scan_prefix(&prefix).keys().filter_map(|k| k.ok());
        keys.filter_map(|k| k[prefix.len()..].try_into().ok()).collect()
    }

    /// Drop a source key whose entry is gone; in a transaction, so that an entry a concurrent
    /// `insert` has just written under the same key keeps its source key.
    pub(super) fn forget_source(&self, source: &str, key: &Key) {
        let forgotten = self.transact(|tx| {
            if tx.entries.get(key)?.is_none() {
                tx.by_source.remove(source_key(source, key))?;
            }
            Ok(())
        });
        if let Err(e) = forgotten {
            tracing::warn!(error = %e, "cache index: source key removal failed");
        }
    }

    pub(super) fn flush(&self) {
        self.db.flush().ok();
    }

    /// Every entry, in key order, read lazily (the `cache` CLI's walks).
    pub(super) fn entries(&self) -> impl Iterator<Item = (Key, IVec, EntryMeta)> + '_ {
        self.entries.iter().filter_map(|item| {
            let (key, raw) = item.ok()?;
            let meta = decode_meta(&raw)?;
            Some((<Key>::try_from(&key[..]).ok()?, raw, meta))
        })
    }

    /// Test support: assert that every entry has exactly its secondary keys and nothing else is
    /// in the secondary trees; returns the bytes the entries account for.
    #[cfg(test)]
    pub(super) fn check_consistent(&self) -> u64 {
        let (mut total, mut source_keys) = (0, 0);
        for item in self.entries.iter() {
            let (key, value) = item.unwrap();
            let (key, meta): (Key, _) = ((*key).try_into().unwrap(), decode_meta(&value).unwrap());
            assert!(self.by_expiry.contains_key(ordered_key(meta.expires, &key)).unwrap(), "expiry key");
            assert!(self.by_access.contains_key(ordered_key(meta.last_access, &key)).unwrap(), "access key");
            let distinct: std::collections::HashSet<&String> = sources(&meta).collect();
            for source in &distinct {
                assert!(self.by_source.contains_key(source_key(source, &key)).unwrap(), "source key");
            }
            source_keys += distinct.len();
            total += meta.length;
        }
        assert_eq!(self.by_expiry.len(), self.entries.len(), "stray expiry keys");
        assert_eq!(self.by_access.len(), self.entries.len(), "stray access keys");
        assert_eq!(self.by_source.len(), source_keys, "stray source keys");
        total
    }

    /// Test support: an entry with no secondary keys, as a broken or foreign writer would leave.
    #[cfg(test)]
    pub(super) fn insert_unlisted(&self, key: &Key, meta: &EntryMeta) {
        self.entries.insert(key, serde_json::to_vec(meta).unwrap()).unwrap();
    }

    /// Test support: the number of keys in each tree (entries, by_source, by_expiry, by_access).
    #[cfg(test)]
    pub(super) fn lens(&self) -> [usize; 4] {
        [self.entries.len(), self.by_source.len(), self.by_expiry.len(), self.by_access.len()]
    }
}

pub(super) fn decode_meta(v: &[u8]) -> Option<EntryMeta> {
    serde_json::from_slice(v).ok()
}

/// The source and the overlays: every identity a purge may name this entry by.
fn sources(meta: &EntryMeta) -> impl Iterator<Item = &String> {
    std::iter::once(&meta.source).chain(&meta.overlays)
}

fn ordered_key(at: u64, key: &Key) -> Vec<u8> {
    let mut k = Vec::with_capacity(40);
    k.extend_from_slice(&at.to_be_bytes());
    k.extend_from_slice(key);
    k
}

fn split_ordered(k: &[u8]) -> Option<(u64, Key)> {
    let (at, key) = k.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*at), key.try_into().ok()?))
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
