//! What the `refract cache` command does on a stopped node's data directory: statistics, a full
//! checksum verification and a purge of one source. (`gc` is [`Cache::housekeep`].) These walk
//! the whole index, which the server itself never does on a request path.

use super::index::Expect;
use super::{now, Cache, LARGE_ENTRY};
use serde::Serialize;
use std::collections::HashSet;

/// What the cache holds.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
    /// Entries past their expiry, not yet swept.
    pub expired: u64,
    /// Entries over the large-entry threshold (disk only, streamed).
    pub large: u64,
    /// Distinct sources the entries were made from.
    pub sources: u64,
    pub max_bytes: u64,
}

/// What a verification found.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Verified {
    pub checked: u64,
    /// Entries whose bytes were missing, short or failed their checksum: removed.
    pub removed: u64,
}

impl Cache {
    pub fn stats(&self) -> Stats {
        let (mut stats, mut sources, now) =
            (Stats { max_bytes: self.max_bytes, ..Stats::default() }, HashSet::new(), now());
        for (_, _, meta) in self.index.entries() {
            stats.entries += 1;
            stats.bytes += meta.length;
            stats.expired += u64::from(meta.expires <= now);
            stats.large += u64::from(meta.length > LARGE_ENTRY as u64);
            sources.insert(meta.source);
        }
        stats.sources = sources.len() as u64;
        stats
    }

    /// Read every entry's bytes and check them (length and blake3; length only for large
    /// entries, as a hit does); remove the ones that fail.
    pub fn verify(&self) -> Verified {
        let mut verified = Verified::default();
        let entries: Vec<_> = self.index.entries().collect();
        for (key, raw, meta) in entries {
            verified.checked += 1;
            if self.read_blob(&key, &meta).is_none() && self.discard(&key, Expect::Raw(&raw)) {
                verified.removed += 1;
            }
        }
        verified
    }
}

#[cfg(test)]
mod tests {
    use super::super::{key, EntryMeta};
    use super::*;
    use bytes::Bytes;

    fn meta(bytes: &[u8], source: &str) -> EntryMeta {
        super::super::tests::meta(bytes, now() + 60, now(), source)
    }

    #[test]
    fn stats_count_and_verify_removes_torn_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), 1 << 30, 0).unwrap();
        let (a, b) = (key(&["a"]), key(&["b"]));
        cache.put(&a, Bytes::from_static(b"aaaa"), meta(b"aaaa", "H1"));
        cache.put(&b, Bytes::from_static(b"bbbbbb"), meta(b"bbbbbb", "H2"));
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.bytes, stats.sources, stats.expired), (2, 10, 2, 0));
        std::fs::write(cache.blobs.path(&b), b"bbbbbX").unwrap();
        assert_eq!(cache.verify(), Verified { checked: 2, removed: 1 });
        assert_eq!(cache.stats().entries, 1);
        assert_eq!(cache.purge_source("H1"), 1);
        assert_eq!(cache.stats().entries, 0);
    }
}
