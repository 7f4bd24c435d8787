//! The local-disk backend: one file per key under a root directory. Writes go to a temporary
//! file that is fsynced and renamed into place (and the directory fsynced), so a crash at any
//! moment leaves the old object or the new one, never half of one. Reads never leave the root,
//! even through symlinks.

use super::backend::{Backend, ByteStream, ObjectInfo};
use super::error::{Result, StoreError};
use super::spool::Spooled;
use async_trait::async_trait;
use bytes::Bytes;
use std::io::Write;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

pub struct FsBackend {
    root: PathBuf,
    tmp: PathBuf,
    /// Resolve symlinks on every read and refuse those that leave the root (for directories
    /// that others write: aliases). The store's own keys need no such check.
    confined: bool,
}

impl FsBackend {
    /// A backend over `root`; `tmp` (on the same file system) receives writes before their
    /// rename. Temporary files a crash left behind are removed.
    pub fn open(root: &Path, tmp: &Path) -> std::io::Result<FsBackend> {
        std::fs::create_dir_all(root)?;
        std::fs::remove_dir_all(tmp).ok();
        std::fs::create_dir_all(tmp)?;
        Ok(FsBackend { root: root.to_path_buf(), tmp: tmp.to_path_buf(), confined: false })
    }

    /// A read-only view of a directory (a storage alias): nothing is created or cleaned.
    pub fn read_only(root: &Path) -> FsBackend {
        FsBackend { root: root.to_path_buf(), tmp: root.join(".refract-tmp"), confined: true }
    }

    /// The path of a key: relative, no `..`, no root or prefix components.
    fn path(&self, key: &str) -> Result<PathBuf> {
        let rel = Path::new(key);
        if key.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(StoreError::InvalidKey(key.to_string()));
        }
        Ok(self.root.join(rel))
    }

    /// The path of an existing key, resolved through symlinks, which must stay under the root.
    async fn existing(&self, key: &str) -> Result<Option<PathBuf>> {
        let path = self.path(key)?;
        if !self.confined {
            return Ok(Some(path));
        }
        let (root, full) = (tokio::fs::canonicalize(&self.root).await, tokio::fs::canonicalize(&path).await);
        match (root, full) {
            (Ok(root), Ok(full)) if full.starts_with(&root) => Ok(Some(full)),
            (Ok(_), Ok(_)) => Err(StoreError::OutsideRoot(key.to_string())),
            (_, Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            (Err(e), _) | (_, Err(e)) => Err(StoreError::io("resolve")(e)),
        }
    }
}

#[async_trait]
impl Backend for FsBackend {
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let Some(path) = self.existing(key).await? else { return Ok(None) };
        let md = match tokio::fs::metadata(&path).await {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("stat")(e)),
        };
        if !md.is_file() {
            return Ok(None);
        }
        Ok(Some(info(&md)))
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.existing(key).await?.ok_or_else(|| StoreError::Missing(key.to_string()))?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::Missing(key.to_string())),
            Err(e) => return Err(StoreError::io("open")(e)),
        };
        let stream = match range {
            None => tokio_util::io::ReaderStream::with_capacity(file, 256 << 10),
            Some(r) => {
                file.seek(std::io::SeekFrom::Start(r.start)).await.map_err(StoreError::io("seek"))?;
                let part = file.take(r.end.saturating_sub(r.start));
                return Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(part, 256 << 10)));
            }
        };
        Ok(Box::pin(stream))
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let (dest, tmp) = (self.path(key)?, self.tmp.clone());
        blocking(move || {
            make_parent(&dest)?;
            write_atomic(&tmp, &dest, &bytes)
        })
        .await
    }

    async fn put_spooled(&self, key: &str, spooled: Spooled) -> Result<()> {
        let dest = self.path(key)?;
        blocking(move || {
            make_parent(&dest)?;
            // the spool was fsynced when it was finished; a spool on another file system is copied
            if std::fs::rename(spooled.path(), &dest).is_err() {
                let tmp = dest.with_extension("partial");
                std::fs::copy(spooled.path(), &tmp)?;
                std::fs::File::open(&tmp)?.sync_all()?;
                std::fs::rename(&tmp, &dest)?;
            }
            sync_parent(&dest)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                // the handle's directory goes with its last file
                if let Some(parent) = path.parent() {
                    tokio::fs::remove_dir(parent).await.ok();
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("delete")(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let root = self.root.clone();
        let start = if prefix.is_empty() { root.clone() } else { self.path(prefix.trim_end_matches('/'))? };
        blocking(move || Ok(walk(&root, &start))).await
    }

    fn describe(&self) -> String {
        format!("fs:{}", self.root.display())
    }
}

fn info(md: &std::fs::Metadata) -> ObjectInfo {
    use std::os::unix::fs::MetadataExt;
    let mtime = md.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    // size, inode and nanosecond mtime: a same-size rewrite within a second still changes it
    let nanos = mtime.map(|d| d.as_nanos()).unwrap_or(0);
    ObjectInfo {
        size: md.len(),
        etag: format!("{:x}-{:x}-{nanos:x}", md.len(), md.ino()),
        modified: mtime.map(|d| d.as_secs()).unwrap_or(0),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::io("write")(std::io::Error::other(e)))?
        .map_err(StoreError::io("write"))
}

/// Create the parent directories of `dest`, making new directory entries durable.
fn make_parent(dest: &Path) -> std::io::Result<()> {
    let Some(parent) = dest.parent() else { return Ok(()) };
    if !parent.exists() {
        std::fs::create_dir_all(parent)?;
        for d in [parent.parent(), parent.parent().and_then(Path::parent)].into_iter().flatten() {
            std::fs::File::open(d)?.sync_all()?;
        }
    }
    Ok(())
}

fn sync_parent(dest: &Path) -> std::io::Result<()> {
    match dest.parent() {
        Some(parent) => std::fs::File::open(parent)?.sync_all(),
        None => Ok(()),
    }
}

/// temp file + fsync + rename + fsync of the directory.
pub(super) fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_dir.join(format!("{:x}.tmp", rand::random::<u64>()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dest)?;
    sync_parent(dest)
}

/// Every file under `start`, as keys relative to `root` (hidden temporary directories skipped).
fn walk(root: &Path, start: &Path) -> Vec<String> {
    let mut keys = Vec::new();
    let mut dirs = vec![start.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            match entry.file_type() {
                Ok(t) if t.is_dir() && !hidden => dirs.push(path),
                Ok(t) if t.is_file() && !hidden => {
                    if let Ok(rel) = path.strip_prefix(root) {
                        keys.push(rel.to_string_lossy().into_owned());
                    }
                }
                _ => {}
            }
        }
    }
    keys.sort();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_never_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsBackend::read_only(&dir.path().join("root"));
        std::fs::create_dir_all(dir.path().join("root")).unwrap();
        for key in ["../x", "/etc/passwd", "a/../../x", ""] {
            assert!(matches!(fs.head(key).await, Err(StoreError::InvalidKey(_))), "{key}");
        }
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), dir.path().join("root/link")).unwrap();
        assert!(matches!(fs.get("link", None).await, Err(StoreError::OutsideRoot(_))));
    }

    #[tokio::test]
    async fn ranged_reads_read_the_range() {
        use futures_util::TryStreamExt;
        let dir = tempfile::tempdir().unwrap();
        let fs = FsBackend::open(&dir.path().join("root"), &dir.path().join("tmp")).unwrap();
        let body: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        fs.put("a/b/c.bin", Bytes::from(body.clone())).await.unwrap();
        let part: Vec<Bytes> = fs.get("a/b/c.bin", Some(9_990..10_000)).await.unwrap().try_collect().await.unwrap();
        assert_eq!(part.concat(), &body[9_990..]);
        assert_eq!(fs.head("a/b/c.bin").await.unwrap().unwrap().size, 10_000);
        assert_eq!(fs.list("a").await.unwrap(), ["a/b/c.bin"]);
        fs.delete("a/b/c.bin").await.unwrap();
        assert_eq!(fs.head("a/b/c.bin").await.unwrap(), None);
    }
}
