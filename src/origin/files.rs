//! The file API's business: uploads (checked, typed, stored), overwrites and deletes (each
//! purging every derivative of the file), reads and metadata.

use super::access::private;
use super::{Answer, Asker, Origin, QueryParams};
use crate::error::{Error, Result};
use crate::mediatype;
use crate::pipeline::format::{sniff, Sniffed};
use crate::pipeline::{self, decode, guard, Limits};
use crate::purge::EventKind;
use crate::security::{Access, Call, Credentials, Grant, Target};
use crate::store::{FileMeta, Spooled, Upload};
use crate::url::SourceSpec;

/// What the uploader says about a file (query string and multipart part), before its bytes are
/// checked.
#[derive(Debug, Clone, Default)]
pub struct FileFields {
    pub filename: Option<String>,
    pub mimetype: Option<String>,
    pub container: Option<String>,
    pub path: Option<String>,
    pub apikey: Option<String>,
    pub creds: Option<Credentials>,
    /// The store location asked (`/api/store/{location}`, multipart `store.location`).
    pub location: Option<String>,
    /// The URL a `url=` upload was fetched from.
    pub source_url: Option<String>,
    /// The size the client announced (multipart `start`), checked against a policy's limits
    /// before any byte arrives; the real size is checked again once the body is in.
    pub size: Option<u64>,
}

/// What an upload asks of a policy: a store (or a write of `overwrite`), where, how large.
fn upload_access<'a>(fields: &'a FileFields, overwrite: Option<&'a str>, size: Option<u64>) -> Access<'a> {
    let mut access = match overwrite {
        None => Access::new(Call::Store),
        Some(handle) => Access::handle(Call::Write, handle),
    };
    let (path, container, location) = (fields.path.as_deref(), fields.container.as_deref(), fields.location.as_deref());
    access.target = Target { path, container, size, location };
    access
}

impl FileFields {
    pub fn from_query(query: &QueryParams) -> FileFields {
        FileFields {
            filename: query.get("filename"),
            mimetype: query.get("mimetype"),
            container: query.get("container"),
            path: query.get("path"),
            apikey: query.get("key"),
            creds: query.security().map(Credentials::from),
            location: None,
            source_url: None,
            size: None,
        }
    }
}

/// A place among the uploads being read; dropping it gives the place back.
pub struct UploadSlot<'a>(#[allow(dead_code)] tokio::sync::SemaphorePermit<'a>);

impl Origin {
    /// Everything checked before an upload's body is read: credentials, the file to overwrite,
    /// the declared type, and a free upload slot (503 when all are taken).
    pub async fn begin_upload(&self, fields: &FileFields, overwrite: Option<&str>) -> Result<UploadSlot<'_>> {
        // credentials first: whether a handle exists is not told to whoever may not write it
        self.upload_grant(fields, overwrite, fields.size).await?;
        if let Some(handle) = overwrite {
            self.store.meta(handle).await?;
        }
        fields.mimetype.as_deref().map(mediatype::parse_declared).transpose()?;
        self.uploads.try_acquire().map(UploadSlot).map_err(|_| Error::Overloaded)
    }

    /// Check a spooled upload and store it (under `overwrite`, purging the old derivatives, or a
    /// new handle); answers Filestack's store JSON.
    pub async fn finish_upload(&self, spooled: Spooled, fields: FileFields, overwrite: Option<&str>) -> Result<Answer> {
        if spooled.size == 0 {
            return Err(Error::bad("the upload is empty"));
        }
        let grant = self.upload_grant(&fields, overwrite, Some(spooled.size)).await?;
        let (limits, name, declared) = (self.limits(), fields.filename.clone(), fields.mimetype.clone());
        // probing parses the file: on the blocking pool, over the spooled file mapped into memory
        let (spooled, inspected) = tokio::task::spawn_blocking(move || {
            let inspected = spooled.map().map_err(Error::from).and_then(|m| inspect(&m, &name, declared, &limits));
            (spooled, inspected)
        })
        .await
        .map_err(Error::internal)?;
        let (filename, container, path, source_url) =
            (fields.filename, fields.container, fields.path, fields.source_url);
        let upload = Upload { filename, container, path, source_url, app: grant.app, ..inspected? };
        let meta = self.store.put_spooled(overwrite.map(str::to_string), spooled, upload).await?;
        let mut answer = store_answer(&self.public_url, &meta, fields.apikey.as_deref());
        if let Some(handle) = overwrite {
            let purged = self.changed(handle, EventKind::Overwrite).await;
            tracing::info!(handle, purged = purged.local, shared = purged.shared, "overwrote file");
            purged.describe(&mut answer);
        }
        Ok(Answer::Json(answer))
    }

    /// A form `url=` upload: the external file, fetched through the guarded source fetcher and
    /// spooled like a body; with the name its URL gives.
    pub async fn spool_url(&self, url: &str) -> Result<(Spooled, Option<String>)> {
        let (spec, _) = SourceSpec::parse_external(url)?;
        let bytes = self.sources.fetch(&spec).await?;
        let mut spool = self.store.spool().await?;
        spool.write(&bytes).await?;
        let filename = url.rsplit('/').next().map(|n| n.split('?').next().unwrap_or(n).to_string());
        Ok((spool.finish().await?, filename))
    }

    /// An upload's app and rights: a new file needs an API key, an overwrite is its file's.
    async fn upload_grant(&self, fields: &FileFields, overwrite: Option<&str>, size: Option<u64>) -> Result<Grant> {
        let access = upload_access(fields, overwrite, size);
        let target = overwrite.map(|h| SourceSpec::handle(h.to_string()));
        self.authorize(fields.apikey.as_deref(), fields.creds.as_ref(), target.as_ref(), &access).await
    }

    /// A call on one stored file, authorized for its owner's app.
    async fn file_grant(&self, handle: &str, asker: &Asker, call: Call) -> Result<Grant> {
        let source = SourceSpec::handle(handle.to_string());
        self.authorize(asker.apikey.as_deref(), asker.creds.as_ref(), Some(&source), &Access::handle(call, handle))
            .await
    }

    pub async fn delete_file(&self, handle: &str, asker: &Asker) -> Result<Answer> {
        self.file_grant(handle, asker, Call::Remove).await?;
        self.store.delete(handle).await?;
        let purged = self.changed(handle, EventKind::Delete).await;
        tracing::info!(handle, purged = purged.local, shared = purged.shared, "deleted file");
        let mut answer = serde_json::json!({ "handle": handle, "deleted": true });
        purged.describe(&mut answer);
        Ok(Answer::Json(answer))
    }

    pub async fn read_file(&self, handle: &str, query: &QueryParams, asker: &Asker) -> Result<Answer> {
        let grant = self.file_grant(handle, asker, Call::Read).await?;
        let file = self.deliver(&SourceSpec::handle(handle.to_string()), query.download).await?;
        Ok(Answer::File(Box::new(private(file, &grant))))
    }

    /// The asked fields (`?size=true&width=true…`), or the usual set when none are asked.
    pub async fn metadata(&self, handle: &str, query: &QueryParams, asker: &Asker) -> Result<Answer> {
        self.file_grant(handle, asker, Call::Stat).await?;
        let meta = self.store.meta(handle).await?;
        let mut all = metadata_json(&meta);
        let audio = meta.mimetype.starts_with("audio/");
        if audio {
            let info = self.audio_info(handle).await?;
            if let Some(fields) = all.as_object_mut() {
                fields.extend(info);
            }
        }
        let asked: Vec<&str> = query.pairs.iter().filter(|(_, v)| v == "true").map(|(k, _)| k.as_str()).collect();
        let defaults: Vec<&str> =
            DEFAULT_FIELDS.iter().chain(if audio { &AUDIO_FIELDS[..] } else { &[] }).copied().collect();
        let fields: &[&str] = if asked.is_empty() { &defaults } else { &asked };
        let out = fields.iter().filter_map(|f| Some((f.to_string(), all.get(*f)?.clone()))).collect();
        Ok(Answer::Json(serde_json::Value::Object(out)))
    }

    /// What an audio file holds (codec, duration, rate, channels, tags, cover), read on the
    /// pool: the container's headers, and its packets when it does not state its length.
    async fn audio_info(&self, handle: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
        let bytes = self.sources.fetch(&SourceSpec::Handle { handle: handle.to_string() }).await?;
        let limits = self.limits();
        let describe = move || {
            let info = pipeline::audio::probe::describe(bytes, &pipeline::Budget::audio(limits))?;
            serde_json::to_value(info).map_err(Error::internal)
        };
        let serde_json::Value::Object(mut fields) = self.pool.run(describe, || false).await? else {
            return Ok(Default::default());
        };
        // the file's `container` is its storage container: the audio container is its `format`
        if let Some(format) = fields.remove("container") {
            fields.insert("format".into(), format);
        }
        Ok(fields)
    }
}

/// The surrogate keys that name a file's answers at the edge: its handle, which every answer of
/// it carries (the original, its derivatives, and derivatives that use it as an overlay; see
/// `deliver::surrogate_source_key`). The `app-KEY` tag a private app's answers also carry is left
/// out: it names every file of the app, and purging it would empty the app's whole edge cache.
pub(super) fn purge_keys(handle: &str) -> Vec<String> {
    vec![super::deliver::surrogate_source_key(&SourceSpec::handle(handle.to_string()))]
}

const DEFAULT_FIELDS: [&str; 10] =
    ["filename", "mimetype", "size", "uploaded", "width", "height", "container", "path", "location", "writeable"];

/// Answered by default for audio files, besides the usual set. (`container` there is the
/// storage container; the audio container is `format`.)
const AUDIO_FIELDS: [&str; 9] =
    ["codec", "format", "duration", "sample_rate", "channels", "bits_per_sample", "bitrate", "tags", "cover"];

fn metadata_json(meta: &FileMeta) -> serde_json::Value {
    serde_json::json!({
        "handle": meta.handle,
        "filename": meta.filename,
        "mimetype": meta.mimetype,
        "size": meta.size,
        "uploaded": meta.uploaded,
        "width": meta.width,
        "height": meta.height,
        "md5": meta.md5,
        "sha1": meta.sha1,
        "sha224": meta.sha224,
        "sha256": meta.sha256,
        "sha384": meta.sha384,
        "sha512": meta.sha512,
        "source_url": meta.source_url,
        "cloud": false,
        "container": meta.container,
        "path": meta.path,
        "location": "local",
        "writeable": true,
    })
}

fn store_answer(public_url: &str, meta: &FileMeta, key: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "url": format!("{public_url}/{}", meta.handle),
        "handle": meta.handle,
        "size": meta.size,
        "type": meta.mimetype,
        "filename": meta.filename,
        "key": key.unwrap_or(""),
        "container": meta.container,
    })
}

/// Check what the bytes are; refuse empty bodies, files that claim to be images but are not,
/// and images whose containers or metadata exceed the limits. The bytes decide the stored type
/// when they say what they are; otherwise the declared (or guessed) type, if it is a known one.
/// Probing parses the file: call it on the blocking pool.
pub(super) fn inspect(
    bytes: &[u8],
    filename: &Option<String>,
    declared: Option<String>,
    limits: &Limits,
) -> Result<Upload> {
    if bytes.is_empty() {
        return Err(Error::bad("the upload is empty"));
    }
    let declared = declared.as_deref().map(mediatype::parse_declared).transpose()?;
    let guessed = filename.as_deref().and_then(|f| mime_guess::from_path(f).first_raw()).map(str::to_string);
    let claimed = declared.or(guessed);
    match sniff(bytes) {
        Sniffed::Image(format) => {
            // a hostile container is a 422; a file that merely does not decode, a 400
            guard::check(bytes, format, limits.max_metadata_bytes)?;
            let unlimited = Limits { max_pixels: u64::MAX, ..*limits };
            let probe = decode::probe(bytes, format, &unlimited)
                .map_err(|e| Error::bad(format!("corrupt {} upload: {e}", format.mime())))?;
            let (w, h) = probe.oriented();
            if w as u64 * h as u64 > limits.max_pixels {
                tracing::info!(w, h, "stored an image over the pixel limit; transforms of it will be refused");
            }
            let mimetype = Some(format.mime().to_string());
            Ok(Upload { mimetype, width: Some(w), height: Some(h), ..Upload::default() })
        }
        Sniffed::Unsupported(mime) => Ok(Upload { mimetype: Some(mime.to_string()), ..Upload::default() }),
        Sniffed::Unknown => {
            if let Some(image) = claimed.as_deref().filter(|m| m.starts_with("image/") && *m != "image/svg+xml") {
                return Err(Error::UnsupportedMedia(format!(
                    "the upload claims to be {image} but its bytes are not an image in a known format"
                )));
            }
            let mime = match (mediatype::sniff_active(bytes), mediatype::sniff_audio(bytes)) {
                (Some(active), _) => active.to_string(),
                (None, Some(audio)) if !claimed.as_deref().is_some_and(|c| c.starts_with("audio/")) => audio.into(),
                _ => mediatype::allow_listed(claimed.as_deref().unwrap_or("application/octet-stream")),
            };
            Ok(Upload { mimetype: Some(mime), ..Upload::default() })
        }
    }
}
