//! Housekeeping: everything that walks the index or the blob directory, run by the one
//! background sweeper (never on a request path).
//!
//! Per run it reads: the pending memory-hit touches; the range of `by_expiry` up to now (only the
//! expired entries, plus the one key that ends the range); when over budget, `by_access` from the
//! oldest until back under the target (only what it evicts); and on every `ORPHAN_SCAN_EVERY`-th
//! run, the blob directory. So a run costs what it removes, not what the cache holds, except for
//! the periodic orphan scan.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::index::Expect;
use super::{now, Cache};
use crate::metrics::METRICS;

/// The orphan scan lists every blob file and looks each up in the index: O(entries) in directory
/// reads and index lookups, unlike the rest of housekeeping. It runs on the first housekeeping
/// after open (the sweeper's first tick fires as the server starts, on the blocking pool, so
/// startup does not wait for it, yet files left by a crash or a full disk are reclaimed at once)
/// and then on every 60th run: hourly at the default one-minute interval. Orphans only appear
/// after failed writes, so an hour's delay costs little space, while a scan every minute would
/// re-read a large directory tree for nothing.
const ORPHAN_SCAN_EVERY: u64 = 60;

/// Temp files and unindexed blobs younger than this may belong to a write in progress.
const ORPHAN_MIN_AGE: Duration = Duration::from_secs(600);

/// What one housekeeping run removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Housekeeping {
    /// Entries past their expiry.
    pub expired: usize,
    /// Least recently used entries removed to get back under the disk budget.
    pub evicted: usize,
    /// Temp files and blobs without an index entry.
    pub orphans: usize,
}

impl Housekeeping {
    pub fn total(&self) -> usize {
        self.expired + self.evicted + self.orphans
    }
}

impl Cache {
    /// Write pending touches (so eviction sees memory hits), remove expired entries, evict to the
    /// budget, and on the first and every `ORPHAN_SCAN_EVERY`-th run collect orphaned files.
    /// Blocking: call from the blocking pool.
    pub fn housekeep(&self) -> Housekeeping {
        self.write_touches();
        let expired = self.remove_expired(now());
        let evicted = self.evict_to_budget();
        let run = self.runs.fetch_add(1, Ordering::Relaxed);
        let orphans = if run.is_multiple_of(ORPHAN_SCAN_EVERY) { self.collect_orphans() } else { 0 };
        Housekeeping { expired, evicted, orphans }
    }

    /// Remove the entries that expire at or before `now`, walking the expiry tree's range.
    fn remove_expired(&self, now: u64) -> usize {
        let mut removed = 0;
        for (at, key) in self.index.expired(now) {
            removed += usize::from(self.discard(&key, Expect::Expires(at)));
        }
        METRICS.cache_evictions.with_label_values(&["expired"]).inc_by(removed as u64);
        removed
    }

    /// When over the budget, remove the least recently used entries until 90% of it is left, so
    /// that the next few writes do not put the cache straight back over.
    fn evict_to_budget(&self) -> usize {
        if self.disk_bytes() <= self.max_bytes {
            return 0;
        }
        let target = self.max_bytes / 10 * 9;
        let mut removed = 0;
        for (at, key) in self.index.least_recent() {
            if self.disk_bytes() <= target {
                break;
            }
            removed += usize::from(self.discard(&key, Expect::Accessed(at)));
        }
        METRICS.cache_evictions.with_label_values(&["size"]).inc_by(removed as u64);
        removed
    }

    /// Remove temp files and unindexed blobs old enough not to be a write in progress. Entries
    /// whose blob is missing need no scan: a read finds them and drops them.
    fn collect_orphans(&self) -> usize {
        let found = self.blobs.collect_orphans(ORPHAN_MIN_AGE, |key| self.index.contains(key));
        if found.temps + found.blobs > 0 {
            tracing::info!(temps = found.temps, blobs = found.blobs, "cache: removed orphaned files");
        }
        found.temps + found.blobs
    }
}
