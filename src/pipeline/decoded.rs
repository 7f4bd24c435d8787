//! Decoded pixels shared by every derivative of one source version: a page's srcset asks for one
//! photo at many widths and formats at once, and each would otherwise decode the source again.
//! Entries are keyed by the caller's opaque source key (its identity and version: an overwrite
//! is a new key, so old pixels are never mixed in) and the shrink-on-load scale, so widths that
//! share a JPEG DCT scale share one decode. Bounded in bytes, least recently used out first, and
//! dropped after a short idle time: this is for bursts, the derivative cache is for keeping.
//! Concurrent misses of one entry decode once (the others wait for it).

use super::{PipelineError, Result};
use image::DynamicImage;
use std::sync::Arc;
use std::time::Duration;

/// The caller's name for a source version (a digest of its identity and version).
pub type SourceKey = [u8; 32];

/// How long an unused entry stays.
const IDLE: Duration = Duration::from_secs(60);

pub struct DecodeCache {
    entries: moka::sync::Cache<(SourceKey, u32), Arc<DynamicImage>>,
}

impl DecodeCache {
    /// A cache of at most `max_bytes` of pixels (0 disables it).
    pub fn new(max_bytes: u64) -> DecodeCache {
        let entries = moka::sync::Cache::builder()
            .weigher(|_k: &(SourceKey, u32), v: &Arc<DynamicImage>| weight(v))
            .max_capacity(max_bytes)
            .time_to_idle(IDLE)
            .build();
        DecodeCache { entries }
    }

    /// The pixels of `source` decoded at `scale` (the shrink-on-load denominator): a copy of the
    /// shared decode, made by `decode` if no other derivative has made it lately; and whether it
    /// was shared (`decode` did not run). A decode error is not kept.
    pub fn get_or_decode(
        &self,
        source: SourceKey,
        scale: u32,
        decode: impl FnOnce() -> Result<DynamicImage>,
    ) -> Result<(DynamicImage, bool)> {
        if self.entries.policy().max_capacity() == Some(0) {
            return decode().map(|img| (img, false));
        }
        let mut decoded = false;
        let found = self.entries.try_get_with((source, scale), || {
            decoded = true;
            decode().map(Arc::new)
        });
        let shared = found.map_err(|e: Arc<PipelineError>| (*e).clone())?;
        Ok(((*shared).clone(), !decoded))
    }

    /// Bytes held (after pending evictions ran).
    pub fn weighted_size(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.weighted_size()
    }
}

fn weight(img: &DynamicImage) -> u32 {
    let bytes = img.as_bytes().len();
    bytes.min(u32::MAX as usize) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn image(w: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_pixel(w, 10, image::Rgb([w as u8, 0, 0])))
    }

    #[test]
    fn one_decode_per_source_version_and_scale() {
        let cache = DecodeCache::new(1 << 20);
        let calls = AtomicUsize::new(0);
        let decode = |w| {
            calls.fetch_add(1, Ordering::Relaxed);
            Ok(image(w))
        };
        let (v1, v2) = ([1; 32], [2; 32]);
        let shared: Vec<bool> = (0..3).map(|_| cache.get_or_decode(v1, 4, || decode(40)).unwrap().1).collect();
        assert_eq!(shared, [false, true, true]);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(cache.get_or_decode(v1, 2, || decode(80)).unwrap().0.width(), 80);
        // an overwritten source is a new key: its own pixels, never the old ones
        assert_eq!(cache.get_or_decode(v2, 4, || decode(41)).unwrap().0.width(), 41);
        assert_eq!(calls.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn errors_are_not_kept_and_the_size_is_bounded() {
        let cache = DecodeCache::new(10_000);
        let failed = cache.get_or_decode([3; 32], 1, || Err(PipelineError::Corrupt("bad".into())));
        assert!(matches!(failed, Err(PipelineError::Corrupt(_))));
        assert_eq!(cache.get_or_decode([3; 32], 1, || Ok(image(5))).unwrap().0.width(), 5);
        for i in 0..50u8 {
            cache.get_or_decode([i; 32], 8, || Ok(image(100))).unwrap();
        }
        assert!(cache.weighted_size() <= 10_000, "{}", cache.weighted_size());
    }

    #[test]
    fn a_zero_budget_always_decodes() {
        let cache = DecodeCache::new(0);
        let calls = AtomicUsize::new(0);
        for _ in 0..2 {
            cache
                .get_or_decode([9; 32], 1, || {
                    calls.fetch_add(1, Ordering::Relaxed);
                    Ok(image(3))
                })
                .unwrap();
        }
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }
}
