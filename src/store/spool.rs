//! Uploads spooled to disk as they arrive, so a body is never held whole in memory; the spool
//! is handed to the backend when stored and removed when dropped otherwise.

use super::error::{Result, StoreError};
use md5::Digest as _;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// An upload being written to disk as it arrives.
pub struct Spool {
    file: tokio::fs::File,
    /// Removes the file if the upload is dropped before it is finished.
    spooled: Spooled,
}

impl Spool {
    pub(super) fn new(file: tokio::fs::File, path: PathBuf) -> Spool {
        Spool { file, spooled: Spooled { path, size: 0, digests: Digests::default() } }
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        self.file.write_all(chunk).await.map_err(StoreError::io("spool"))?;
        self.spooled.size += chunk.len() as u64;
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.spooled.size
    }

    /// Flush and fsync (the bytes are durable before they are stored under a handle), then
    /// hash them, reading the file once on the blocking pool.
    pub async fn finish(mut self) -> Result<Spooled> {
        use tokio::io::AsyncWriteExt;
        self.file.flush().await.map_err(StoreError::io("spool"))?;
        self.file.sync_all().await.map_err(StoreError::io("spool"))?;
        let path = self.spooled.path.clone();
        let hashed = tokio::task::spawn_blocking(move || Digests::of_file(&path))
            .await
            .map_err(|e| StoreError::io("hash")(std::io::Error::other(e)))?;
        self.spooled.digests = hashed.map_err(StoreError::io("hash"))?;
        Ok(self.spooled)
    }
}

/// The digests a stored file is described by; `version` (blake3) names its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digests {
    pub version: String,
    pub md5: String,
    pub sha1: String,
    pub sha224: String,
    pub sha256: String,
    pub sha384: String,
    pub sha512: String,
}

#[derive(Default)]
struct Hashers {
    blake3: blake3::Hasher,
    md5: md5::Md5,
    sha1: sha1::Sha1,
    sha224: sha2::Sha224,
    sha256: sha2::Sha256,
    sha384: sha2::Sha384,
    sha512: sha2::Sha512,
}

impl Hashers {
    fn update(&mut self, bytes: &[u8]) {
        self.blake3.update(bytes);
        self.md5.update(bytes);
        self.sha1.update(bytes);
        self.sha224.update(bytes);
        self.sha256.update(bytes);
        self.sha384.update(bytes);
        self.sha512.update(bytes);
    }

    fn finish(self) -> Digests {
        Digests {
            version: self.blake3.finalize().to_hex().to_string(),
            md5: hex::encode(self.md5.finalize()),
            sha1: hex::encode(self.sha1.finalize()),
            sha224: hex::encode(self.sha224.finalize()),
            sha256: hex::encode(self.sha256.finalize()),
            sha384: hex::encode(self.sha384.finalize()),
            sha512: hex::encode(self.sha512.finalize()),
        }
    }
}

impl Digests {
    pub fn of(bytes: &[u8]) -> Digests {
        let mut h = Hashers::default();
        h.update(bytes);
        h.finish()
    }

    /// Read in 1 MiB pieces (blocking): a large file passes through the page cache, not
    /// through this process's memory.
    fn of_file(path: &Path) -> std::io::Result<Digests> {
        let mut file = fs::File::open(path)?;
        let mut h = Hashers::default();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(h.finish());
            }
            h.update(&buf[..n]);
        }
    }
}

/// A complete upload in a temporary file; removed when dropped unless it was stored.
pub struct Spooled {
    pub(super) path: PathBuf,
    pub size: u64,
    pub digests: Digests,
}

impl Spooled {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes, mapped from the file (blocking: call on the blocking pool).
    pub fn map(&self) -> std::io::Result<memmap2::Mmap> {
        let file = fs::File::open(&self.path)?;
        // SAFETY: the spool is a private temporary file of this process that nothing writes to
        // once it is finished; it is renamed or uploaded (not modified) when stored.
        unsafe { memmap2::Mmap::map(&file) }
    }

    /// The first `n` bytes (enough to sniff a type), read without mapping the file.
    pub fn head(&self, n: usize) -> std::io::Result<Vec<u8>> {
        let mut buf = Vec::with_capacity(n);
        fs::File::open(&self.path)?.take(n as u64).read_to_end(&mut buf)?;
        Ok(buf)
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        // after a stored rename the file is gone and this fails harmlessly
        fs::remove_file(&self.path).ok();
    }
}
