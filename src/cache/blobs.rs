//! The disk tier's bytes: one file per entry, `blobs/<first two hex digits>/<hex key>`.
//!
//! A blob is written to a temp file (`.<random hex>.tmp`) in its shard directory and renamed into
//! place, so a reader sees the old bytes or the new ones, never a prefix; the index entry that
//! makes it visible is inserted after the rename. A crash or a full disk can therefore leave temp
//! files and blobs no entry names; [`Blobs::collect_orphans`] removes them once they are old
//! enough that no write can still be in progress.

use bytes::Bytes;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::Key;

pub(super) struct Blobs {
    dir: PathBuf,
}

/// What an orphan scan removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Orphans {
    pub temps: usize,
    pub blobs: usize,
}

impl Blobs {
    pub(super) fn open(dir: PathBuf) -> Result<Blobs, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Blobs { dir })
    }

    pub(super) fn path(&self, key: &Key) -> PathBuf {
        let hex = hex::encode(key);
        self.dir.join(&hex[..2]).join(&hex)
    }

    /// Write through a temp file and a rename; the temp file is removed again if that fails (a
    /// full disk), and left to the orphan scan only if the process dies first.
    pub(super) fn write(&self, key: &Key, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(key);
        let dir = path.parent().expect("blob in a shard dir");
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{:x}.tmp", rand::random::<u64>()));
        let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes)).and_then(|()| {
            // rename keeps the temp file's mtime: a fresh blob always looks fresh to the orphan scan
            std::fs::rename(&tmp, &path)
        });
        if written.is_err() {
            std::fs::remove_file(&tmp).ok();
        }
        written
    }

    pub(super) fn read(&self, key: &Key) -> std::io::Result<Bytes> {
        std::fs::read(self.path(key)).map(Bytes::from)
    }

    /// A blob opened, not read (large entries).
    pub(super) fn open_blob(&self, key: &Key) -> std::io::Result<std::fs::File> {
        std::fs::File::open(self.path(key))
    }

    pub(super) fn exists(&self, key: &Key) -> bool {
        self.path(key).exists()
    }

    /// Move a finished file (synced, on this file system) into place as `key`'s blob.
    pub(super) fn adopt(&self, key: &Key, file: tempfile::TempPath) -> std::io::Result<()> {
        let path = self.path(key);
        std::fs::create_dir_all(path.parent().expect("blob in a shard dir"))?;
        // a failed rename drops (removes) the temp file
        file.persist(&path).map_err(|e| e.error)
    }

    pub(super) fn remove(&self, key: &Key) {
        std::fs::remove_file(self.path(key)).ok();
    }

    /// Remove temp files and blobs without an index entry (`indexed` says) last modified more
    /// than `min_age` ago. The age check is what makes this safe beside live writers: a blob is
    /// renamed into place before its entry is inserted, so a young unindexed blob may be a write
    /// in progress, while an old one is not. Files it does not recognise are left alone.
    pub(super) fn collect_orphans(&self, min_age: Duration, indexed: impl Fn(&Key) -> bool) -> Orphans {
        let mut found = Orphans::default();
        let Ok(shards) = std::fs::read_dir(&self.dir) else { return found };
        for shard in shards.filter_map(|e| e.ok()) {
            let name = shard.file_name();
            let is_shard = name.len() == 2 && name.to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_hexdigit()));
            if !is_shard {
                continue;
            }
            let Ok(files) = std::fs::read_dir(shard.path()) else { continue };
            for file in files.filter_map(|e| e.ok()) {
                match classify(&file.file_name().to_string_lossy()) {
                    Some(Kind::Temp) if older_than(&file, min_age) => {
                        found.temps += usize::from(std::fs::remove_file(file.path()).is_ok());
                    }
                    Some(Kind::Blob(key)) if older_than(&file, min_age) && !indexed(&key) => {
                        found.blobs += usize::from(std::fs::remove_file(file.path()).is_ok());
                    }
                    _ => {}
                }
            }
        }
        found
    }
}

enum Kind {
    Temp,
    Blob(Key),
}

/// A file name in a shard directory: one of our temp files, a blob, or something else (`None`).
fn classify(name: &str) -> Option<Kind> {
    if let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
        return (!stem.is_empty() && stem.bytes().all(|b| b.is_ascii_hexdigit())).then_some(Kind::Temp);
    }
    let mut key = [0; 32];
    hex::decode_to_slice(name, &mut key).ok()?;
    // only the spelling `path` writes (lower case)
    (hex::encode(key) == name).then_some(Kind::Blob(key))
}

/// Last modified more than `age` ago; a file whose time cannot be read, or lies in the future,
/// counts as young (kept).
fn older_than(file: &std::fs::DirEntry, age: Duration) -> bool {
    let modified = file.metadata().and_then(|m| m.modified());
    modified.is_ok_and(|t| SystemTime::now().duration_since(t).is_ok_and(|d| d > age))
}
