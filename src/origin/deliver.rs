//! Originals as they are (no tasks): stored handles, external URLs, storage aliases.

use super::{Body, Caching, Disposition, FileAnswer, Origin};
use crate::cache;
use crate::error::Result;
use crate::mediatype;
use crate::pipeline::format::{sniff, Sniffed};
use crate::plan::CachePolicy;
use crate::url::SourceSpec;

impl Origin {
    /// The source's bytes, typed and named; `download` asks for an attachment. Types that could
    /// carry script are always attachments (see `mediatype`).
    pub async fn deliver(&self, source: &SourceSpec, download: bool) -> Result<FileAnswer> {
        let version = self.sources.version(source).await?;
        let (body, content_type, filename) = match (source, self.sources.alias_object(source)?) {
            (SourceSpec::Handle { handle }, _) => {
                // streamed from the backend when the front knows the range to send
                let meta = self.store.meta(handle).await?;
                let (content_type, filename) = (meta.mimetype.clone(), meta.filename.clone());
                (Body::Stored { store: self.store.clone(), meta }, content_type, filename)
            }
            (other, Some((backend, key))) => {
                // streamed from the alias's backend; the type from the first bytes
                let head = self.sources.alias_head(backend.as_ref(), &key, other.identity()).await?;
                let info = backend.head(&key).await?;
                let size = info.ok_or_else(|| crate::source::SourceError::Missing(other.identity()))?.size;
                (Body::Object { backend, key, size }, sniffed_type(&head), source_file_name(other))
            }
            (other, None) => {
                let bytes = self.sources.fetch(other).await?;
                let content_type = sniffed_type(&bytes);
                (Body::Bytes(bytes), content_type, source_file_name(other))
            }
        };
        let inline = mediatype::inline_safe(&content_type, self.config.inline_svg);
        Ok(FileAnswer {
            body,
            content_type,
            checksum: version.version.clone(),
            modified: version.modified.unwrap_or_else(cache::now),
            caching: self.caching(CachePolicy::Default, self.config.cache_ttl_secs),
            surrogate_keys: vec![surrogate_source_key(source)],
            vary_accept: false,
            vary_hints: Vec::new(),
            disposition: Disposition { filename, attachment: download || !inline },
            cache_status: "refract; detail=original",
            timing: String::new(),
            auto_quality: None,
        })
    }

    /// Public for `remaining` seconds; never stored with `cache=false`. A private app's answers
    /// are made private where they are authorized ([`super::access::private`]).
    pub(super) fn caching(&self, policy: CachePolicy, remaining: u64) -> Caching {
        if policy == CachePolicy::Disabled {
            Caching::NoStore
        } else {
            Caching::Public(remaining)
        }
    }
}

/// What the bytes of a source without stored metadata are.
pub(super) fn sniffed_type(bytes: &[u8]) -> String {
    match sniff(bytes) {
        Sniffed::Image(f) => f.mime().to_string(),
        Sniffed::Unsupported(m) => m.to_string(),
        Sniffed::Unknown => mediatype::sniff_active(bytes).unwrap_or("application/octet-stream").to_string(),
    }
}

/// The last path segment of a URL or alias path, without its query.
pub(super) fn source_file_name(source: &SourceSpec) -> String {
    let identity = source.identity();
    identity.rsplit('/').next().unwrap_or("file").split('?').next().unwrap_or("file").to_string()
}

/// The purge tag of a source: its handle, or a digest of its identity.
pub(super) fn surrogate_source_key(source: &SourceSpec) -> String {
    match source {
        SourceSpec::Handle { handle } => handle.clone(),
        other => format!("src-{}", &blake3::hash(other.identity().as_bytes()).to_hex()[..16]),
    }
}
