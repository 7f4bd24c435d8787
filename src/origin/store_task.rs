//! The `store` task: keep the chain's result (or the source itself) under a new handle and
//! answer Filestack's JSON. A GET is safe to repeat (crawlers, an edge's retries): the same URL
//! over the same source bytes answers the file it stored the first time. A POST (what
//! filestack-python sends) stores anew, as Filestack does.

use super::deliver::sniffed_type;
use super::files::inspect;
use super::process::access;
use super::{Answer, Body, Method, Origin, ProcessRequest};
use crate::cache;
use crate::error::{Error, Result};
use crate::pipeline::format::{sniff, Sniffed};
use crate::plan::Store;

use crate::security::{Call, Credentials, Grant, Target};
use crate::store::{FileMeta, Spooled, Upload};
use crate::url::SourceSpec;
use futures_util::StreamExt;

impl Origin {
    pub(super) async fn store_task(
        &self,
        req: &ProcessRequest,
        task: &Store,
        grant: &Grant,
        creds: Option<&Credentials>,
    ) -> Result<Answer> {
        let token = match req.method {
            Method::Get | Method::Head => Some(self.store_token(req, task, grant).await?),
            Method::Post => None,
        };
        if let Some(token) = &token {
            if let Some(meta) = self.store.stored_under(token).await {
                return Ok(Answer::Json(self.stored_json(&meta, req, task, token)));
            }
        }
        let (spooled, mimetype, extension) = match &req.parsed.job {
            Some(_) => {
                let (outcome, _) = self.produce(req).await?;
                let meta = &outcome.cached.meta;
                let spooled = self.spool_body(&Body::of(&outcome.cached)).await?;
                (spooled, meta.content_type.clone(), meta.extension.clone())
            }
            None => {
                let bytes = self.sources.fetch(&req.parsed.url.source).await?;
                // the type as plain delivery would give it; the extension only for images
                let ext = match sniff(&bytes) {
                    Sniffed::Image(f) => f.extension(),
                    _ => "bin",
                };
                let mime = sniffed_type(&bytes);
                (self.spool_body(&Body::Bytes(bytes)).await?, mime, ext.to_string())
            }
        };
        let (spooled, probed) = self.probe_spooled(spooled, task.filename.clone(), mimetype).await?;
        let source_url = match &req.parsed.url.source {
            SourceSpec::Url { url } => Some(url.clone()),
            _ => None,
        };
        let stem = if task.conversion { self.source_stem(&req.parsed.url.source).await } else { "stored".into() };
        let upload = Upload {
            filename: task.filename.clone().or_else(|| Some(format!("{stem}.{extension}"))),
            container: task.container.clone(),
            path: task.path.clone(),
            source_url,
            app: grant.app.clone(),
            ..probed
        };
        self.authorize_size(req, task, creds, spooled.size).await?;
        let meta = self.store.put_spooled(None, spooled, upload).await?;
        if let Some(token) = &token {
            self.store.remember_stored(token, &meta.handle).await;
        }
        let token = token.unwrap_or_else(|| meta.version.clone());
        Ok(Answer::Json(self.stored_json(&meta, req, task, &token)))
    }

    /// What an upload of these bytes would record: type, width and height (probed over the
    /// spooled file mapped, on the blocking pool: a converted hour of audio is never read in).
    async fn probe_spooled(&self, spooled: Spooled, name: Option<String>, mime: String) -> Result<(Spooled, Upload)> {
        if spooled.size == 0 {
            return Err(Error::bad("there is nothing to store: the result is empty"));
        }
        let limits = self.limits();
        let (spooled, probed) = tokio::task::spawn_blocking(move || {
            let probed = spooled.map().map_err(Error::from).and_then(|m| inspect(&m, &name, Some(mime), &limits));
            (spooled, probed)
        })
        .await
        .map_err(Error::internal)?;
        Ok((spooled, probed?))
    }

    /// A body copied to a store spool file as it is read.
    async fn spool_body(&self, body: &Body) -> Result<Spooled> {
        let mut spool = self.store.spool().await?;
        let mut stream = body.open(None).await?;
        while let Some(chunk) = stream.next().await {
            spool.write(&chunk.map_err(Error::internal)?).await?;
        }
        Ok(spool.finish().await?)
    }

    /// The `store` task's JSON, or a `video_convert`'s (Filestack's conversion protocol).
    fn stored_json(&self, meta: &FileMeta, req: &ProcessRequest, task: &Store, token: &str) -> serde_json::Value {
        match task.conversion {
            true => self.conversion_json(meta, token),
            false => self.store_json(meta, req),
        }
    }

    /// Filestack's conversion answer. The job has run by the time anyone reads this, so the
    /// first answer is already `completed`; the SDKs read `uuid` and `timestamp` from it, then
    /// `status` and `data.url` (`scheme://host/HANDLE`, a file of its own) when they poll the
    /// same URL, which answers the same file.
    fn conversion_json(&self, meta: &FileMeta, token: &str) -> serde_json::Value {
        let url = format!("{}/{}", self.public_url, meta.handle);
        serde_json::json!({
            "uuid": &token[..32.min(token.len())],
            "timestamp": (meta.uploaded / 1000).to_string(),
            "status": "completed",
            "data": { "url": url, "handle": meta.handle, "size": meta.size, "mimetype": meta.mimetype },
            "metadata": {
                "result": { "filename": meta.filename, "mimetype": meta.mimetype, "size": meta.size, "url": url },
                "source": {},
            },
        })
    }

    /// The policy's `maxSize`/`minSize` against what is about to be stored (its size is known
    /// only now, after the chain ran).
    async fn authorize_size(
        &self,
        req: &ProcessRequest,
        task: &Store,
        creds: Option<&Credentials>,
        size: u64,
    ) -> Result<()> {
        let (url, job) = (&req.parsed.url, req.parsed.job.as_ref());
        let mut wanted = access(Call::Store, &url.source, job);
        let (path, container, location) = (task.path.as_deref(), task.container.as_deref(), task.location.as_deref());
        wanted.target = Target { path, container, location, size: Some(size) };
        self.authorize(url.apikey.as_deref(), creds, Some(&url.source), &wanted).await.map(drop)
    }

    /// What identifies a `store` result: the app, the store options and the plan over these
    /// source bytes (an app never gets a file another app stored).
    async fn store_token(&self, req: &ProcessRequest, task: &Store, grant: &Grant) -> Result<String> {
        let parsed = &req.parsed;
        let key = match &parsed.job {
            Some(_) => self.request_key(req).await?,
            None => {
                let version = self.sources.version(&parsed.url.source).await?;
                cache::key(&["store", &parsed.canonical, &version.identity, &version.version])
            }
        };
        let app = grant.app.as_deref().unwrap_or("");
        Ok(hex::encode(cache::key(&[&hex::encode(key), &task.canonical, app])))
    }

    fn store_json(&self, meta: &FileMeta, req: &ProcessRequest) -> serde_json::Value {
        serde_json::json!({
            "url": format!("{}/{}", self.public_url, meta.handle),
            "handle": meta.handle,
            "size": meta.size,
            "type": meta.mimetype,
            "filename": meta.filename,
            "container": meta.container,
            "key": req.parsed.url.apikey,
        })
    }
}
