//! The service layer: one request's business, behind any front (HTTP today; the `transform`
//! CLI or a queue consumer could call it too). Given a typed request it checks credentials,
//! derives the cache key, answers from the cache or computes once (single-flight, admission to
//! the pool before any source is read), runs the `store` task and the fallback policy, and
//! returns a typed answer or a typed error. It knows nothing of HTTP headers.

mod access;
mod answer;
pub mod cluster;
mod deliver;
mod derive;
mod files;
pub mod hints;
mod multipart;
mod process;
mod process_api;
mod request;
mod responsive;
mod store_task;
mod zip;

pub use access::first_credentials;
pub use answer::{etag_of, Answer, Body, Caching, Disposition, FileAnswer, REVALIDATED};
pub use derive::Outcome;
pub use files::FileFields;
pub use multipart::MultipartCall;
pub use process_api::ProcessCall;
pub use request::{Accepts, Asker, ClientGone, Method, Parsed, ProcessRequest, QueryParams};
pub use responsive::{Picture, PictureFormat, Rendering, ResponsiveOptions, ResponsiveRequest};

use crate::cache::shared::SharedTier;
use crate::cache::{Cache, Key};
use crate::config::{Config, StoreConfig};
use crate::pipeline::Limits;
use crate::pool::{Flights, Pool};
use crate::security::Security;
use crate::source::Sources;
use crate::store::{fs::FsBackend, s3::S3Backend, Backend, Store};
use std::sync::Arc;

pub struct Origin {
    pub config: Config,
    /// Base of the `url` field in store answers.
    pub public_url: String,
    pub store: Arc<Store>,
    pub cache: Arc<Cache>,
    pub sources: Arc<Sources>,
    pub security: Security,
    pub pool: Pool,
    /// Uploads being read; more are refused (503) rather than buffered.
    pub uploads: tokio::sync::Semaphore,
    flights: Flights<Key, Outcome>,
    /// Decodes shared by the derivatives of one source version.
    decodes: Arc<crate::pipeline::decoded::DecodeCache>,
    /// Multipart uploads in progress.
    multipart: multipart::Sessions,
    parsed: moka::sync::Cache<String, Arc<Parsed>>,
    /// The shared second-level derivative cache, when configured.
    shared: Option<Arc<SharedTier>>,
    /// The other nodes over the same store.
    pub peers: cluster::Peers,
    /// The CDN purge hooks: told of every delete and overwrite (their workers are started by
    /// the server, [`crate::purge::Purger::start`]).
    pub purger: crate::purge::Purger,
}

impl Origin {
    /// Open the store and the cache under the configured data directory.
    pub fn open(config: Config, public_url: String) -> Result<Origin, String> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create data dir {}: {e}", dir.display()))?;
        let probe = dir.join(".write-test");
        std::fs::write(&probe, b"ok").map_err(|e| format!("data dir {} is not writable: {e}", dir.display()))?;
        std::fs::remove_file(&probe).ok();
        let backend = store_backend(&config)?;
        let meta_ttl = config.cluster.meta_ttl(matches!(config.store, StoreConfig::S3(_)));
        let store = Store::open(backend, &dir.join("spool"), config.source_memory_bytes, meta_ttl)
            .map_err(|e| format!("cannot open the file store: {e}"))?;
        tracing::info!(store = store.describe(), "file store");
        let store = Arc::new(store);
        let cache = Arc::new(Cache::open(dir, config.cache_max_bytes, config.cache_memory_bytes)?);
        let shared = match &config.shared_cache {
            Some(s3) => Some(Arc::new(SharedTier::new(Arc::new(S3Backend::new(s3)?)))),
            None => None,
        };
        if let Some(tier) = &shared {
            tracing::info!(shared_cache = tier.describe(), "shared derivative cache");
        }
        let own = [public_url.clone(), format!("http://{}", config.listen)];
        Ok(Origin {
            shared,
            peers: cluster::Peers::new(&config.cluster, &own),
            public_url,
            sources: Arc::new(Sources::new(&config, store.clone())?),
            security: Security::new(&config.apps, config.secret.as_deref(), &config.api_keys),
            pool: Pool::new(config.workers(), config.queue_len),
            uploads: tokio::sync::Semaphore::new(config.max_concurrent_uploads),
            flights: Flights::default(),
            decodes: Arc::new(crate::pipeline::decoded::DecodeCache::new(config.decode_cache_bytes)),
            multipart: multipart::Sessions::new(std::time::Duration::from_secs(config.multipart_timeout_secs)),
            parsed: moka::sync::Cache::new(50_000),
            purger: crate::purge::Purger::new(&config.purge_hooks, dir)?,
            store,
            cache,
            config,
        })
    }

    /// What one transform may cost.
    pub fn limits(&self) -> Limits {
        limits(&self.config)
    }
}

/// What one transform may cost, as configured.
pub fn limits(config: &Config) -> Limits {
    Limits {
        max_pixels: config.max_pixels,
        max_metadata_bytes: config.max_metadata_bytes,
        max_upscale: config.max_upscale,
        timeout: std::time::Duration::from_millis(config.transform_timeout_ms),
        audio_timeout: std::time::Duration::from_millis(config.audio_timeout_ms),
    }
}

/// The configured backend of the file store.
fn store_backend(config: &Config) -> Result<Arc<dyn Backend>, String> {
    Ok(match &config.store {
        StoreConfig::Fs { root } => {
            let root = root.clone().unwrap_or_else(|| config.data_dir.join("originals"));
            let tmp = root.join(".tmp");
            Arc::new(FsBackend::open(&root, &tmp).map_err(|e| format!("cannot open {}: {e}", root.display()))?)
        }
        StoreConfig::S3(s3) => Arc::new(S3Backend::new(s3)?),
    })
}
