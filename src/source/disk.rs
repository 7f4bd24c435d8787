//! The on-disk cache of fetched external sources: bodies by version (blake3), and per URL the
//! version and validators a conditional request sends. Bounded by `source_cache_bytes`: least
//! recently used bodies go first. It survives restarts, so a restarted node revalidates (304)
//! instead of downloading again. A cache, not a store: writes are atomic renames, not fsynced.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What is known of an external URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remote {
    pub version: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Seconds since the epoch of the remote's last change, when it says.
    pub modified: Option<u64>,
}

pub struct SourceDisk {
    dir: PathBuf,
    budget: u64,
    used: AtomicU64,
}

impl SourceDisk {
    pub fn open(dir: &Path, budget: u64) -> std::io::Result<SourceDisk> {
        for sub in ["records", "bodies", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let used = bodies(&dir.join("bodies")).iter().map(|(_, size, _)| size).sum();
        Ok(SourceDisk { dir: dir.to_path_buf(), budget, used: AtomicU64::new(used) })
    }

    fn record_path(&self, url: &str) -> PathBuf {
        self.dir.join("records").join(blake3::hash(url.as_bytes()).to_hex().as_str())
    }

    fn body_path(&self, version: &str) -> PathBuf {
        self.dir.join("bodies").join(version)
    }

    pub async fn record(&self, url: &str) -> Option<Remote> {
        let text = tokio::fs::read(self.record_path(url)).await.ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// The body of a version, marked as recently used.
    pub async fn body(&self, version: &str) -> Option<Bytes> {
        if version.len() != 64 || !version.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let path = self.body_path(version);
        let bytes = tokio::fs::read(&path).await.ok()?;
        let touch = std::fs::File::options().append(true).open(&path);
        touch.and_then(|f| f.set_modified(std::time::SystemTime::now())).ok();
        Some(Bytes::from(bytes))
    }

    /// Keep a fetched body and the URL's record; evict the oldest bodies past the budget.
    pub async fn keep(&self, url: &str, remote: &Remote, bytes: Bytes) {
        let body = self.body_path(&remote.version);
        let record = self.record_path(url);
        let json = serde_json::to_vec(remote).unwrap_or_default();
        let (tmp, size) = (self.dir.join("tmp"), bytes.len() as u64);
        let fresh = !body.exists();
        let written = tokio::task::spawn_blocking(move || {
            if fresh {
                write_via(&tmp, &body, &bytes)?;
            }
            write_via(&tmp, &record, &json)
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::warn!(url, "could not keep a fetched source on disk");
            return;
        }
        if fresh && self.used.fetch_add(size, Ordering::Relaxed) + size > self.budget {
            self.evict().await;
        }
    }

    /// Remove least recently used bodies until 90% of the budget is used.
    async fn evict(&self) {
        let (dir, target) = (self.dir.join("bodies"), self.budget / 10 * 9);
        let used = self.used.load(Ordering::Relaxed);
        let freed = tokio::task::spawn_blocking(move || {
            let mut all = bodies(&dir);
            all.sort_by_key(|(_, _, touched)| *touched);
            let mut freed = 0;
            for (path, size, _) in all {
                if used.saturating_sub(freed) <= target {
                    break;
                }
                if std::fs::remove_file(&path).is_ok() {
                    freed += size;
                }
            }
            freed
        })
        .await
        .unwrap_or(0);
        self.used.fetch_sub(freed.min(self.used.load(Ordering::Relaxed)), Ordering::Relaxed);
    }
}

fn write_via(tmp: &Path, dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let t = tmp.join(format!("{:x}", rand::random::<u64>()));
    std::fs::write(&t, bytes)?;
    std::fs::rename(&t, dest)
}

/// Every body file with its size and last use.
fn bodies(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let md = e.metadata().ok()?;
            Some((e.path(), md.len(), md.modified().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(version: &str) -> Remote {
        Remote { version: version.into(), etag: Some("\"e\"".into()), last_modified: None, modified: None }
    }

    #[tokio::test]
    async fn records_and_bodies_survive_and_the_budget_holds() {
        let dir = tempfile::tempdir().unwrap();
        let disk = SourceDisk::open(dir.path(), 2_500).unwrap();
        let v = |n: u8| format!("{:064x}", n);
        disk.keep("http://a/1", &remote(&v(1)), Bytes::from(vec![1u8; 1000])).await;
        std::thread::sleep(std::time::Duration::from_millis(20));
        disk.keep("http://a/2", &remote(&v(2)), Bytes::from(vec![2u8; 1000])).await;
        let reopened = SourceDisk::open(dir.path(), 2_500).unwrap();
        assert_eq!(reopened.record("http://a/1").await, Some(remote(&v(1))));
        assert_eq!(reopened.body(&v(2)).await.unwrap().len(), 1000);
        // a third body passes the budget: the least recently used (1) goes
        std::thread::sleep(std::time::Duration::from_millis(20));
        reopened.keep("http://a/3", &remote(&v(3)), Bytes::from(vec![3u8; 1000])).await;
        assert!(reopened.body(&v(1)).await.is_none());
        assert!(reopened.body(&v(2)).await.is_some() && reopened.body(&v(3)).await.is_some());
        assert!(reopened.body("../../etc/passwd").await.is_none());
    }
}
