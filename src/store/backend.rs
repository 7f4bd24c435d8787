//! Where objects live: a key → bytes store with atomic whole-object writes, ranged reads and
//! validators. Two backends: the local disk ([`super::fs::FsBackend`]) and any S3-compatible
//! service ([`super::s3::S3Backend`]). The file store and the storage aliases both sit on it.

use super::error::Result;
use super::spool::Spooled;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use std::ops::Range;

/// What a backend knows of an object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// The backend's entity tag (S3) or a digest of size, inode and mtime (disk): changes with
    /// every write.
    pub etag: String,
    /// Unix seconds of the last write.
    pub modified: u64,
}

/// Bytes as they arrive from the backend.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

#[async_trait]
pub trait Backend: Send + Sync {
    /// `None` when there is no object under `key`.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>>;

    /// The object, or the `range` of it (clamped to its end), as a stream.
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream>;

    /// A small object whole (metadata, a source a transform decodes).
    async fn read(&self, key: &str) -> Result<Bytes> {
        use futures_util::TryStreamExt;
        let chunks: Vec<Bytes> = self.get(key, None).await?.try_collect().await?;
        Ok(chunks.concat().into())
    }

    /// Store `bytes` under `key`, replacing any object there, atomically: a reader sees the old
    /// object or the new one.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()>;

    /// Store a spooled upload under `key` without holding it in memory (a rename on disk, a
    /// multipart upload on S3). A failure leaves nothing under `key`.
    async fn put_spooled(&self, key: &str, spooled: Spooled) -> Result<()>;

    /// Remove the object; absent objects are not an error.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Keys under `prefix` (for the sweep of orphans).
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// For logs and `/health`: `fs:/path` or `s3://bucket/prefix`.
    fn describe(&self) -> String;
}
