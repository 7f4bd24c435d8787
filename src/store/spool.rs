//! Uploads spooled to disk as they arrive, so a body is never held whole in memory; the spool
//! is renamed into place when stored and removed when dropped otherwise.

use super::error::Result;
use std::fs;
use std::path::{Path, PathBuf};

/// An upload being written to disk as it arrives.
pub struct Spool {
    file: tokio::fs::File,
    spooled: Spooled,
}

impl Spool {
    pub(super) fn new(file: tokio::fs::File, path: PathBuf) -> Spool {
        Spool { file, spooled: Spooled { path, size: 0 } }
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        self.file.write_all(chunk).await?;
        self.spooled.size += chunk.len() as u64;
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.spooled.size
    }

    /// Flush and fsync: the bytes are durable before they are stored under a handle.
    pub async fn finish(mut self) -> Result<Spooled> {
        use tokio::io::AsyncWriteExt;
        self.file.flush().await?;
        self.file.sync_all().await?;
        Ok(self.spooled)
    }
}

/// A complete upload in a temporary file; removed when dropped unless it was stored.
pub struct Spooled {
    pub(super) path: PathBuf,
    pub size: u64,
}

impl Spooled {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes, mapped from the file (blocking: call on the blocking pool).
    pub fn map(&self) -> std::io::Result<memmap2::Mmap> {
        let file = fs::File::open(&self.path)?;
        // SAFETY: the spool is a private temporary file of this process that nothing writes to
        // once it is finished; it is renamed (not modified) when stored.
        unsafe { memmap2::Mmap::map(&file) }
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        // after a successful store the file was renamed away and this fails harmlessly
        fs::remove_file(&self.path).ok();
    }
}
