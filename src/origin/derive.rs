//! Derivatives: the cache key, the cache lookup, single-flight over misses, and the transform on
//! the pool (after admission, which is taken before any source byte is read).

use super::answer::{etag_of, REVALIDATED};
use super::deliver::surrogate_source_key;
use super::{Accepts, Body, Disposition, FileAnswer, Origin, Parsed, ProcessRequest};
use crate::cache::{self, Cached, Content, EntryMeta, Key};
use crate::error::{Error, Result};
use crate::metrics::METRICS;
use crate::pipeline::decoded::DecodeCache;
use crate::pipeline::output::{Output, Spill};
use crate::pipeline::{self, job::Job, quality, Decodes, Format, Limits, Resources};
use crate::plan::audio::conversion_filename;
use crate::plan::CachePolicy;
use crate::pool::Admission;
use crate::url::SourceSpec;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Derived bytes and how they were obtained.
#[derive(Clone)]
pub struct Outcome {
    pub(super) cached: Arc<Cached>,
    status: &'static str,
    timing: String,
    /// Made by this request: its whole lifetime is ahead (the clock may have ticked since).
    fresh: bool,
}

impl Origin {
    /// A derivative, from the cache or the pipeline, described for the front.
    pub(super) async fn derivative(&self, req: &ProcessRequest) -> Result<FileAnswer> {
        let (outcome, key) = match self.revalidate(req).await? {
            Some(revalidated) => revalidated,
            None => self.produce(req).await?,
        };
        let parsed = &req.parsed;
        let meta = &outcome.cached.meta;
        let stem = self.source_stem(&parsed.url.source).await;
        let content = parsed.plan.content();
        let since = if outcome.fresh { meta.created } else { cache::now() };
        let filename = content
            .filename
            .or_else(|| conversion_filename(&parsed.plan))
            .unwrap_or_else(|| format!("{stem}.{}", meta.extension));
        let mut tags = vec![surrogate_source_key(&parsed.url.source)];
        // an alias overlay is tagged as a source is (a digest: its path may hold any character)
        let overlay_tag = |o: &String| SourceSpec::file_ref(o).map(|s| surrogate_source_key(&s)).unwrap_or(o.clone());
        tags.extend(meta.overlays.iter().map(overlay_tag));
        tags.push(format!("d-{}", &hex::encode(key)[..16]));
        Ok(FileAnswer {
            body: Body::of(&outcome.cached),
            content_type: meta.content_type.clone(),
            checksum: meta.checksum.clone(),
            modified: meta.created,
            caching: self.caching(parsed.plan.cache, meta.expires.saturating_sub(since)),
            surrogate_keys: tags,
            vary_accept: meta.vary_accept,
            vary_hints: Vec::new(),
            disposition: Disposition { filename, attachment: parsed.query.download || content.attachment },
            cache_status: outcome.status,
            timing: with_quality(outcome.timing, meta.auto_quality),
            auto_quality: meta.auto_quality,
        })
    }

    /// The source's name without its extension: a stored file's name, or the URL's last part.
    pub(super) async fn source_stem(&self, source: &SourceSpec) -> String {
        let name = match source {
            SourceSpec::Handle { handle } => {
                self.store.meta(handle).await.map(|m| m.filename.clone()).unwrap_or_else(|_| handle.clone())
            }
            other => other.identity(),
        };
        name.rsplit('/').next().unwrap_or("file").split(['.', '?']).next().unwrap_or("file").to_string()
    }

    /// A conditional request whose tag names the cached derivative: answered from the cache
    /// index alone, without reading the source, decoding, transforming or reading the cached
    /// bytes. The body is empty: the answer is a 304.
    async fn revalidate(&self, req: &ProcessRequest) -> Result<Option<(Outcome, Key)>> {
        let parsed = &req.parsed;
        if req.if_none_match.is_empty() || parsed.plan.cache == CachePolicy::Disabled {
            return Ok(None);
        }
        // an external source not seen lately must be revalidated itself first: the usual path
        if !self.sources.is_fresh(&parsed.url.source).await {
            return Ok(None);
        }
        let key = self.request_key(req).await?;
        let Some(meta) = self.cache.peek(&key) else { return Ok(None) };
        let etag = etag_of(&meta.checksum);
        if !req.if_none_match.iter().any(|t| t == "*" || t == etag) {
            return Ok(None);
        }
        let cached = Arc::new(Cached::new(Bytes::new(), meta));
        Ok(Some((Outcome { cached, status: REVALIDATED, timing: "cache;desc=index".into(), fresh: false }, key)))
    }

    /// The key of what `req` asks, with what its `Accept` negotiates and weighs.
    pub(super) async fn request_key(&self, req: &ProcessRequest) -> Result<Key> {
        self.derivative_key(&req.parsed, req.negotiated(), &weighed(&req.parsed, req.accepts)).await
    }

    /// Everything that changes a derivative's bytes, hashed: the pipeline's version, the
    /// canonical plan, the source's identity and version, the negotiated format (and, at
    /// `quality=auto`, the target and the formats weighed: see [`weighed`]), an explicit expiry
    /// and the versions of the stored files it overlays.
    pub(super) async fn derivative_key(
        &self,
        parsed: &Parsed,
        negotiated: Option<Format>,
        weighed: &[Format],
    ) -> Result<Key> {
        let job = parsed.job.as_ref().expect("derivative needs a job");
        let version = self.sources.version(&parsed.url.source).await?;
        let mut negotiated_tag =
            negotiated.map(Format::extension).unwrap_or(if job.negotiates() { "original" } else { "" }).to_string();
        // `quality=auto`: the target decides the bytes; left out otherwise, so that the keys of
        // fixed-quality derivatives stay what they were
        if job.image().is_some_and(|i| i.output.auto_quality()) {
            negotiated_tag += &format!(";auto-quality={}", self.config.auto_quality_target);
            let names: Vec<&str> = weighed.iter().map(|f| f.extension()).collect();
            negotiated_tag += &format!(";weighed={}", names.join(","));
        }
        let negotiated_tag = negotiated_tag.as_str();
        // `cache=expiry:N` gives its URL an entry of its own, with that lifetime
        let expiry = match parsed.plan.cache {
            CachePolicy::Expiry(n) => n.to_string(),
            _ => String::new(),
        };
        // a watermark's own version is part of the key: overwriting it must not serve stale marks
        let mut overlay_versions = String::new();
        for overlay in job.overlays() {
            overlay_versions += &self.sources.version(&SourceSpec::file_ref(overlay)?).await?.version;
        }
        let (canonical, identity) = (&parsed.canonical, &version.identity);
        let parts =
            [pipeline::VERSION, canonical, identity, &version.version, negotiated_tag, &expiry, &overlay_versions];
        Ok(cache::key(&parts))
    }

    /// The derivative's bytes: from the cache, or computed once (single-flight) and stored.
    pub(super) async fn produce(&self, req: &ProcessRequest) -> Result<(Outcome, Key)> {
        let parsed = &req.parsed;
        let negotiated = Negotiated { best: req.negotiated(), weighed: weighed(parsed, req.accepts) };
        // an external source not seen lately is downloaded to learn its version: that download
        // needs a place in the queue first, like any other read of a miss
        let fresh = self.sources.is_fresh(&parsed.url.source).await;
        let early = Mutex::new(if fresh { None } else { Some(self.pool.admit()?) });
        let key = self.derivative_key(parsed, negotiated.best, &negotiated.weighed).await?;
        let gone = req.client_gone.clone();
        let abandoned = move || gone.as_ref().is_some_and(|g| g());
        if parsed.plan.cache == CachePolicy::Disabled {
            let admitted = self.take_or_admit(&early)?;
            return Ok((self.compute(parsed, &negotiated, None, admitted, abandoned).await?, key));
        }
        if let Some(hit) = self.lookup(key).await {
            return Ok((hit, key));
        }
        let outcome = self
            .flights
            .run(key, |followers| {
                let admitted = self.take_or_admit(&early);
                let abandoned = abandoned.clone();
                let negotiated = &negotiated;
                async move {
                    // another flight may have finished between our lookup and now
                    if let Some(hit) = self.lookup(key).await {
                        return Ok(hit);
                    }
                    METRICS.cache_misses.inc();
                    let nobody_waits = move || abandoned() && !followers.waiting();
                    self.compute(parsed, negotiated, Some(key), admitted?, nobody_waits).await
                }
            })
            .await?;
        Ok((outcome, key))
    }

    /// The place in the queue taken early, or a new one.
    fn take_or_admit(&self, early: &Mutex<Option<Admission>>) -> Result<Admission> {
        match early.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(admitted) => Ok(admitted),
            None => self.pool.admit(),
        }
    }

    async fn lookup(&self, key: Key) -> Option<Outcome> {
        if let Some(hit) = self.cache.get_hot(&key) {
            METRICS.cache_hits.with_label_values(&["memory"]).inc();
            return Some(Outcome {
                cached: hit,
                status: "refract; hit",
                timing: "cache;desc=memory".into(),
                fresh: false,
            });
        }
        let cache = self.cache.clone();
        if let Some(hit) = tokio::task::spawn_blocking(move || cache.get(&key)).await.ok().flatten() {
            METRICS.cache_hits.with_label_values(&["disk"]).inc();
            return Some(Outcome {
                cached: hit,
                status: "refract; hit",
                timing: "cache;desc=disk".into(),
                fresh: false,
            });
        }
        self.lookup_shared(key).await
    }

    /// The shared tier, behind the local ones: a hit there is kept locally too.
    async fn lookup_shared(&self, key: Key) -> Option<Outcome> {
        let (bytes, meta) = self.shared.as_ref()?.get(&key).await?;
        let cache = self.cache.clone();
        let cached = tokio::task::spawn_blocking(move || cache.put(&key, bytes, meta)).await.ok()?;
        METRICS.cache_hits.with_label_values(&["shared"]).inc();
        Some(Outcome {
            cached,
            status: "refract; hit; detail=shared",
            timing: "cache;desc=shared".into(),
            fresh: false,
        })
    }

    /// Copy a new derivative to the shared tier, off the response path. Large entries (files,
    /// a converted hour of audio) stay local.
    fn share(&self, key: Key, cached: &Arc<Cached>) {
        let (Some(tier), Content::Memory(bytes)) = (self.shared.clone(), &cached.content) else { return };
        let (bytes, meta) = (bytes.clone(), cached.meta.clone());
        tokio::spawn(async move { tier.put(&key, &bytes, &meta).await });
    }

    /// Fetch the source and its overlays, then run the pipeline on the pool; keep the result
    /// unless `key` is `None` (`cache=false`).
    async fn compute(
        &self,
        parsed: &Arc<Parsed>,
        negotiated: &Negotiated,
        key: Option<Key>,
        admitted: Admission,
        abandoned: impl Fn() -> bool + Send + 'static,
    ) -> Result<Outcome> {
        let started = Instant::now();
        let bytes = self.sources.fetch(&parsed.url.source).await?;
        let mut overlays = pipeline::Overlays::new();
        for overlay in parsed.job.as_ref().map(Job::overlays).unwrap_or_default() {
            overlays.insert(overlay.to_string(), self.sources.fetch(&SourceSpec::file_ref(overlay)?).await?);
        }
        let fetched = started.elapsed();
        let ttl = match parsed.plan.cache {
            CachePolicy::Expiry(n) => n,
            _ => self.config.cache_ttl_secs,
        };
        let version = self.sources.version(&parsed.url.source).await?;
        let work = Work {
            parsed: parsed.clone(),
            negotiated: negotiated.best,
            auto: quality::Auto { target: self.config.auto_quality_target, accepted: negotiated.weighed.clone() },
            limits: self.limits(),
            ttl,
            key,
            cache: self.cache.clone(),
            decodes: self.decodes.clone(),
            source_key: cache::key(&["decoded", &version.identity, &version.version]),
        };
        let (cached, transform, encodes) = admitted.run(move || work.run(bytes, &overlays), abandoned).await?;
        if let Some(key) = key {
            self.share(key, &cached);
        }
        let status = if key.is_some() { "refract; fwd=uri-miss; stored" } else { "refract; fwd=bypass" };
        let mut timing = format!("fetch;dur={:.1}, transform;dur={:.1}", ms(fetched), ms(transform));
        if let Some(n) = encodes {
            timing += &format!(", encodes;desc={n}");
        }
        Ok(Outcome { cached, status, timing, fresh: true })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The format a negotiating job takes from `Accept`, and the formats it weighs.
struct Negotiated {
    best: Option<Format>,
    weighed: Vec<Format>,
}

/// The formats `format=auto` weighs against the input's own at `quality=auto`: those `Accept`
/// allows beyond the universal ones (AVIF, WebP). Empty for any other job.
fn weighed(parsed: &Parsed, accepts: Accepts) -> Vec<Format> {
    let weighs = parsed.job.as_ref().and_then(Job::image).is_some_and(|i| i.negotiates() && i.output.auto_quality());
    let allowed = [(accepts.avif, Format::Avif), (accepts.webp, Format::Webp)];
    allowed.into_iter().filter(|(ok, _)| weighs && *ok).map(|(_, f)| f).collect()
}

/// `Server-Timing` with the quality `quality=auto` chose (`auto-quality;desc=62`), beside the
/// `X-Refract-Quality` header the front sends from [`super::answer::FileAnswer::auto_quality`].
fn with_quality(timing: String, quality: Option<u8>) -> String {
    match quality {
        Some(q) if timing.is_empty() => format!("{}{q}", super::answer::AUTO_QUALITY_METRIC),
        Some(q) => format!("{timing}, {}{q}", super::answer::AUTO_QUALITY_METRIC),
        None => timing,
    }
}

/// One transform as it runs on a worker: render, then keep.
struct Work {
    parsed: Arc<Parsed>,
    negotiated: Option<Format>,
    /// `quality=auto`'s target and the formats it may weigh.
    auto: quality::Auto,
    limits: Limits,
    ttl: u64,
    key: Option<Key>,
    cache: Arc<cache::Cache>,
    decodes: Arc<DecodeCache>,
    /// The source version's name among the shared decodes.
    source_key: Key,
}

impl Work {
    /// The entry, how long the render took, and the encodes `quality=auto` spent.
    fn run(self, bytes: bytes::Bytes, overlays: &pipeline::Overlays) -> Result<(Arc<Cached>, Duration, Option<usize>)> {
        let t = Instant::now();
        let job = self.parsed.job.as_ref().expect("compute needs a job");
        let resources = Resources {
            spill: Spill { dir: Some(self.cache.spool_dir().to_path_buf()), threshold: cache::LARGE_ENTRY },
            decodes: Some(Decodes { cache: &self.decodes, source: self.source_key }),
            auto: self.auto.clone(),
        };
        let rendered = pipeline::render(bytes, job, self.negotiated, self.limits, overlays, &resources);
        let elapsed = t.elapsed();
        METRICS.transform_seconds.observe(elapsed.as_secs_f64());
        METRICS.transforms.with_label_values(&[if rendered.is_ok() { "ok" } else { "error" }]).inc();
        let rendered = rendered?;
        if rendered.shared_decode {
            METRICS.decodes_shared.inc();
        }
        let kind = (rendered.content_type, rendered.extension);
        let chosen = rendered.quality;
        let auto_quality = chosen.and_then(|c| c.quality);
        let cached = match rendered.body {
            Output::Memory(bytes) => {
                let checksum = blake3::hash(&bytes).to_hex().to_string();
                let meta = EntryMeta { auto_quality, ..self.entry_meta(kind, bytes.len() as u64, checksum, job) };
                match self.key {
                    Some(k) => self.cache.put(&k, bytes.into(), meta),
                    None => Arc::new(Cached::new(bytes.into(), meta)),
                }
            }
            Output::File { path, .. } => {
                let (file, len, checksum) = cache::open_output(&path).map_err(Error::internal)?;
                let meta = EntryMeta { auto_quality, ..self.entry_meta(kind, len, checksum, job) };
                match self.key {
                    Some(k) => self.cache.adopt(&k, path, file, meta),
                    // `cache=false`: the file is unlinked here and read through its open handle
                    None => Arc::new(Cached::with(Content::File(Arc::new(file)), meta)),
                }
            }
        };
        Ok((cached, elapsed, chosen.map(|c| c.encodes)))
    }

    /// The entry of a result of `kind` (content type, extension).
    fn entry_meta(&self, kind: (&str, &str), length: u64, checksum: String, job: &Job) -> EntryMeta {
        let now = cache::now();
        EntryMeta {
            content_type: kind.0.to_string(),
            extension: kind.1.to_string(),
            length,
            checksum,
            created: now,
            expires: now + self.ttl,
            last_access: now,
            source: self.parsed.url.source.identity(),
            overlays: job.overlays().into_iter().map(str::to_string).collect(),
            vary_accept: job.negotiates(),
            auto_quality: None,
        }
    }
}
