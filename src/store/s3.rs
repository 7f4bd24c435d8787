//! The S3-compatible backend (AWS S3, MinIO, R2, GCS's S3 API…), on the `object_store` crate:
//! signed requests, retries with backoff, ranged GETs and multipart uploads come from it.
//! Objects are written whole (a PUT, or a multipart upload completed at the end), so a reader
//! never sees half of one; a multipart upload that fails is aborted.

use super::backend::{Backend, ByteStream, ObjectInfo};
use super::error::{Result, StoreError};
use super::spool::Spooled;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::time::Duration;

/// Where a bucket is and how to reach it. Credentials left out come from the standard AWS
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, …).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    pub bucket: String,
    /// Keys are stored under this prefix (`originals/`).
    pub prefix: String,
    pub region: Option<String>,
    /// For S3-compatible services: `http://127.0.0.1:9000`, `https://ACCOUNT.r2.cloudflarestorage.com`.
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Virtual-hosted-style requests (`bucket.host`); path style (`host/bucket`) by default,
    /// which every S3-compatible service speaks.
    pub virtual_hosted: bool,
    /// Per-request timeout in seconds.
    pub timeout_secs: Option<u64>,
}

/// Uploads above this size go as multipart uploads of parts this large (S3's minimum part is
/// 5 MiB); at most `PARTS_IN_FLIGHT` parts are buffered at once.
const PART_BYTES: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 2;

pub struct S3Backend {
    store: AmazonS3,
    prefix: String,
    describe: String,
}

impl S3Backend {
    pub fn new(config: &S3Config) -> std::result::Result<S3Backend, String> {
        if config.bucket.is_empty() {
            return Err("an s3 store needs a `bucket`".into());
        }
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_virtual_hosted_style_request(config.virtual_hosted)
            .with_client_options(client_options(config))
            .with_retry(object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
                backoff: object_store::BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
            });
        if let Some(r) = &config.region {
            b = b.with_region(r);
        }
        if let Some(e) = &config.endpoint {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        if let (Some(k), Some(s)) = (&config.access_key_id, &config.secret_access_key) {
            b = b.with_access_key_id(k).with_secret_access_key(s);
        }
        let store = b.build().map_err(|e| format!("s3 store: {e}"))?;
        let prefix = config.prefix.trim_matches('/').to_string();
        let describe = format!("s3://{}/{prefix}", config.bucket);
        Ok(S3Backend { store, prefix, describe })
    }

    fn key(&self, key: &str) -> Result<Key> {
        if key.is_empty() || key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(StoreError::InvalidKey(key.to_string()));
        }
        let full = if self.prefix.is_empty() { key.to_string() } else { format!("{}/{key}", self.prefix) };
        Key::parse(&full).map_err(|_| StoreError::InvalidKey(key.to_string()))
    }

    async fn multipart(&self, key: &Key, spooled: &Spooled) -> Result<()> {
        use tokio::io::AsyncReadExt;
        let upload = self.store.put_multipart(key).await.map_err(|e| failure(key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut file = tokio::fs::File::open(spooled.path()).await.map_err(StoreError::io("read spool"))?;
        let mut buf = vec![0u8; PART_BYTES];
        let sent: Result<()> = async {
            loop {
                let n = file.read(&mut buf).await.map_err(StoreError::io("read spool"))?;
                if n == 0 {
                    return Ok(());
                }
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(|e| failure(key, e))?;
                writer.write(&buf[..n]);
            }
        }
        .await;
        match sent {
            Ok(()) => writer.finish().await.map(drop).map_err(|e| failure(key, e)),
            Err(e) => {
                // nothing stays behind: the parts sent so far are dropped by the service
                writer.abort().await.ok();
                Err(e)
            }
        }
    }
}

fn client_options(config: &S3Config) -> object_store::ClientOptions {
    let timeout = Duration::from_secs(config.timeout_secs.unwrap_or(30));
    object_store::ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(timeout)
        .with_allow_http(config.endpoint.as_deref().is_some_and(|e| e.starts_with("http://")))
}

/// A missing object is `Missing`; a timeout `TimedOut`; anything else the service being
/// unavailable or refusing us (a 502 at the edge, with the detail in the log).
fn failure(key: &Key, e: object_store::Error) -> StoreError {
    use object_store::client::{HttpError, HttpErrorKind};
    if let object_store::Error::NotFound { .. } = e {
        return StoreError::Missing(key.to_string());
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if s.downcast_ref::<HttpError>().is_some_and(|h| matches!(h.kind(), HttpErrorKind::Timeout)) {
            return StoreError::TimedOut(key.to_string());
        }
        source = s.source();
    }
    StoreError::Unavailable { backend: "s3", detail: e.to_string() }
}

#[async_trait]
impl Backend for S3Backend {
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let key = self.key(key)?;
        match self.store.head(&key).await {
            Ok(meta) => Ok(Some(ObjectInfo {
                size: meta.size,
                etag: meta.e_tag.unwrap_or_default().trim_matches('"').to_string(),
                modified: meta.last_modified.timestamp().max(0) as u64,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(failure(&key, e)),
        }
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream> {
        let key = self.key(key)?;
        let options = GetOptions::new().with_range(range.map(GetRange::Bounded));
        let got = self.store.get_opts(&key, options).await.map_err(|e| failure(&key, e))?;
        Ok(got.into_stream().map_err(std::io::Error::other).boxed())
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let key = self.key(key)?;
        self.store.put(&key, PutPayload::from(bytes)).await.map(drop).map_err(|e| failure(&key, e))
    }

    async fn put_spooled(&self, key: &str, spooled: Spooled) -> Result<()> {
        let full = self.key(key)?;
        if spooled.size as usize <= PART_BYTES {
            let bytes = tokio::fs::read(spooled.path()).await.map_err(StoreError::io("read spool"))?;
            return self.store.put(&full, PutPayload::from(bytes)).await.map(drop).map_err(|e| failure(&full, e));
        }
        self.multipart(&full, &spooled).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let key = self.key(key)?;
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(failure(&key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let base = if prefix.is_empty() { None } else { Some(self.key(prefix.trim_end_matches('/'))?) };
        let strip = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        let all = if base.is_none() && !self.prefix.is_empty() { Some(Key::from(self.prefix.as_str())) } else { base };
        let listed: Vec<_> =
            self.store.list(all.as_ref()).try_collect().await.map_err(|e| failure(&Key::from(prefix), e))?;
        Ok(listed.into_iter().map(|m| m.location.to_string().trim_start_matches(&strip).to_string()).collect())
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}
