//! Prometheus metrics, registered once for the process.

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use std::sync::LazyLock;

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub cache_hits: IntCounterVec,
    pub cache_misses: IntCounter,
    pub cache_evictions: IntCounterVec,
    pub cache_corrupt: IntCounter,
    pub decodes_shared: IntCounter,
    pub cache_disk_bytes: IntGauge,
    pub transforms: IntCounterVec,
    pub transform_seconds: Histogram,
    pub queue_depth: IntGauge,
    pub source_fetches: IntCounterVec,
    pub not_modified: IntCounterVec,
    pub cdn_purges: IntCounterVec,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric");
            registry.register(Box::new(c.clone())).expect("register");
            c
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("metric");
            registry.register(Box::new(c.clone())).expect("register");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("metric");
            registry.register(Box::new(g.clone())).expect("register");
            g
        };
        let buckets = vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let transform_seconds = Histogram::with_opts(
            HistogramOpts::new("refract_transform_seconds", "Time spent in the image pipeline").buckets(buckets),
        )
        .expect("metric");
        registry.register(Box::new(transform_seconds.clone())).expect("register");
        Metrics {
            requests: counter_vec(
                "refract_http_requests_total",
                "HTTP requests by route and status",
                &["route", "status"],
            ),
            cache_hits: counter_vec("refract_cache_hits_total", "Derivative cache hits by tier", &["tier"]),
            cache_misses: counter("refract_cache_misses_total", "Derivative cache misses"),
            cache_evictions: counter_vec(
                "refract_cache_evictions_total",
                "Cache entries removed, by reason",
                &["reason"],
            ),
            cache_corrupt: counter("refract_cache_corrupt_total", "Cache entries dropped for a failed checksum"),
            decodes_shared: counter(
                "refract_decodes_shared_total",
                "Transforms that took the source's pixels from another derivative's decode",
            ),
            cache_disk_bytes: gauge("refract_cache_disk_bytes", "Bytes held by the disk cache"),
            transforms: counter_vec("refract_transforms_total", "Transforms run, by outcome", &["outcome"]),
            transform_seconds,
            queue_depth: gauge("refract_transform_queue_depth", "Transforms waiting for or holding a worker"),
            not_modified: counter_vec(
                "refract_not_modified_total",
                "304 answers: `index` decided from the derivative cache index alone, `answer` after building it",
                &["from"],
            ),
            source_fetches: counter_vec("refract_source_fetches_total", "Source fetches by kind", &["kind"]),
            cdn_purges: counter_vec(
                "refract_cdn_purges_total",
                "CDN purge hooks, by hook and outcome: `sent` (accepted), `failed` (an attempt refused or \
                 unanswered), `dead_letter` (given up or dropped, written to purge-dead-letter.jsonl)",
                &["hook", "outcome"],
            ),
            registry,
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).ok();
        String::from_utf8(buf).unwrap_or_default()
    }
}
