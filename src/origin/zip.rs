//! The `zip` task: several handles, URLs or alias files as one ZIP archive, written while it is
//! sent (entries stored, not compressed: images and media do not shrink). Every source's version
//! is read first, so a missing file is a 404 before any byte goes out.

use super::deliver::source_file_name;
use super::{Body, Disposition, FileAnswer, Origin};
use crate::error::Result;
use crate::plan::CachePolicy;
use crate::source::Sources;
use crate::url::SourceSpec;
use async_zip::{Compression, ZipEntryBuilder};
use std::sync::Arc;

impl Origin {
    pub(super) async fn zip(&self, source: &SourceSpec, policy: CachePolicy) -> Result<FileAnswer> {
        let items: Vec<SourceSpec> = match source {
            SourceSpec::List { items } => items.clone(),
            single => vec![single.clone()],
        };
        let mut versions = String::new();
        let mut names = Vec::new();
        for item in &items {
            versions += &self.sources.version(item).await?.version;
            names.push(unique(&names, self.entry_name(item).await));
        }
        let (reader, writer) = tokio::io::duplex(256 << 10);
        let sources = self.sources.clone();
        tokio::spawn(async move {
            if let Err(e) = write_zip(&sources, writer, items, names).await {
                // the status is sent already: the archive ends early and its reader sees it broken
                tracing::warn!(error = %e, "zip: an entry failed mid-stream");
            }
        });
        let stream: crate::store::ByteStream = Box::pin(tokio_util::io::ReaderStream::new(reader));
        Ok(FileAnswer {
            body: Body::Stream(Arc::new(std::sync::Mutex::new(Some(stream)))),
            content_type: "application/zip".into(),
            checksum: blake3::hash(versions.as_bytes()).to_hex().to_string(),
            modified: crate::cache::now(),
            caching: self.caching(policy, self.config.cache_ttl_secs),
            surrogate_keys: Vec::new(),
            vary_accept: false,
            vary_hints: Vec::new(),
            disposition: Disposition { filename: "files.zip".into(), attachment: true },
            cache_status: "refract; detail=zip",
            timing: String::new(),
            auto_quality: None,
        })
    }

    async fn entry_name(&self, item: &SourceSpec) -> String {
        match item {
            SourceSpec::Handle { handle } => {
                self.store.meta(handle).await.map(|m| m.filename.clone()).unwrap_or_else(|_| handle.clone())
            }
            other => source_file_name(other),
        }
    }
}

async fn write_zip(
    sources: &Sources,
    writer: tokio::io::DuplexStream,
    items: Vec<SourceSpec>,
    names: Vec<String>,
) -> Result<()> {
    let fail = |e: async_zip::error::ZipError| crate::error::Error::internal(format!("zip: {e}"));
    let mut zip = async_zip::tokio::write::ZipFileWriter::with_tokio(writer);
    for (item, name) in items.iter().zip(names) {
        let bytes = sources.fetch(item).await?;
        zip.write_entry_whole(ZipEntryBuilder::new(name.into(), Compression::Stored), &bytes).await.map_err(fail)?;
    }
    zip.close().await.map_err(fail)?;
    Ok(())
}

/// `name`, or `name-2.ext`, `name-3.ext`… when an earlier entry has it.
fn unique(taken: &[String], name: String) -> String {
    let clean: String = name.chars().map(|c| if c == '/' || c == '\\' || c.is_control() { '_' } else { c }).collect();
    let (stem, ext) = match clean.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_string(), format!(".{e}")),
        _ => (clean.clone(), String::new()),
    };
    (1..).map(|n| if n == 1 { clean.clone() } else { format!("{stem}-{n}{ext}") }).find(|c| !taken.contains(c)).unwrap()
}
