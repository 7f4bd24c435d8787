//! A processing URL's business: credentials, `debug`, the `store` task, plain delivery or a
//! derivative, and the fallback when the source or the chain fails.

use super::{Answer, Caching, Method, Origin, ProcessRequest};
use crate::error::{Error, Result};
use crate::pipeline::job::ImageJob;
use crate::plan::Plan;
use crate::security::{Access, Call};
use crate::url::{ParsedUrl, SecurityParams, SourceSpec};

impl Origin {
    pub async fn process(&self, req: ProcessRequest) -> Result<Answer> {
        let parsed = req.parsed.clone();
        let (url, plan) = (&parsed.url, &parsed.plan);
        let needs_key = !matches!(url.source, SourceSpec::Handle { .. });
        self.security.check_apikey(url.apikey.as_deref(), needs_key)?;
        let creds = url.security.clone().or_else(|| parsed.query.security());
        let store = plan.store();
        let call = match (&parsed.job, store.is_some()) {
            (Some(_), _) => Call::Convert,
            (None, true) => Call::Store,
            (None, false) => Call::Read,
        };
        self.security.authorize(creds.as_ref(), &access(call, &url.source, parsed.job.as_ref()))?;
        if url.debug {
            return Ok(Answer::Json(debug_json(url, plan)));
        }
        if let Some(store) = store {
            if call != Call::Store {
                self.security.authorize(creds.as_ref(), &access(Call::Store, &url.source, parsed.job.as_ref()))?;
            }
            return self.store_task(&req, &store).await;
        }
        if req.method == Method::Post {
            return Err(Error::MethodNotAllowed);
        }
        if plan.zip() && parsed.job.is_none() {
            return Ok(Answer::File(Box::new(self.zip(&url.source, plan.cache).await?)));
        }
        let fallback = plan.fallback()?;
        let answer = match &parsed.job {
            None => self.deliver(&url.source, parsed.query.download).await,
            Some(_) => self.derivative(&req).await,
        };
        match (answer, fallback) {
            (Err(e), Some(fallback)) if fallback_applies(&e) => {
                tracing::info!(error = %e, fallback = %fallback.file.identity(), "answering with the fallback file");
                self.fallback(creds.as_ref(), &fallback.file, fallback.max_age, parsed.query.download).await
            }
            (answer, _) => answer.map(|file| Answer::File(Box::new(file))),
        }
    }

    async fn fallback(
        &self,
        creds: Option<&SecurityParams>,
        source: &SourceSpec,
        max_age: u64,
        download: bool,
    ) -> Result<Answer> {
        self.security.authorize(creds, &access(Call::Read, source, None))?;
        let mut file = self.deliver(source, download).await?;
        // a fallback is an answer for now: cached for its own (short) lifetime
        if let Caching::Public(_) = file.caching {
            file.caching = Caching::Public(max_age);
        }
        Ok(Answer::File(Box::new(file)))
    }
}

/// Failures of the source or of the pipeline; never a refusal (403) or a malformed request.
fn fallback_applies(e: &Error) -> bool {
    e.is_source_failure()
}

/// What a request reads: its source (recursively for lists) and the files its job overlays.
pub(super) fn access<'a>(call: Call, source: &'a SourceSpec, job: Option<&'a ImageJob>) -> Access<'a> {
    let mut access = Access::new(call);
    for overlay in job.map(ImageJob::overlays).unwrap_or_default() {
        // a handle, or an alias path (validated by the plan)
        match overlay.starts_with("src://") {
            true => access.alias = true,
            false => access.handles.push(overlay),
        }
    }
    let mut visit = vec![source];
    while let Some(s) = visit.pop() {
        match s {
            SourceSpec::Handle { handle } => access.handles.push(handle.as_str()),
            SourceSpec::Url { url } => access.urls.push(url.as_str()),
            SourceSpec::List { items } => visit.extend(items),
            SourceSpec::Alias { .. } => access.alias = true,
        }
    }
    access
}

fn debug_json(url: &ParsedUrl, plan: &Plan) -> serde_json::Value {
    serde_json::json!({
        "debug": true,
        "apikey": url.apikey,
        "task_uri": plan.canonical(),
        "chain": plan.chain_json(),
        "security": url.security,
        "source": url.source,
        "status": { "http_code": 200, "message": "ok" },
    })
}
