//! A processing URL's business: credentials, `debug`, the `store` task, plain delivery or a
//! derivative, and the fallback when the source or the chain fails.

use super::access::{first_credentials, private};
use super::{Answer, Caching, FileAnswer, Method, Origin, ProcessRequest};
use crate::error::{Error, Result};
use crate::pipeline::job::Job;
use crate::plan::Plan;
use crate::security::{Access, Call, Credentials, Target};
use crate::url::{ParsedUrl, SourceSpec};

impl Origin {
    pub async fn process(&self, mut req: ProcessRequest) -> Result<Answer> {
        let (resolved, vary_hints) = self.resolve_hints(req.parsed.clone(), &req.hints).await?;
        req.parsed = resolved;
        let parsed = req.parsed.clone();
        let (url, plan) = (&parsed.url, &parsed.plan);
        let creds = first_credentials([
            url.security.clone().map(Into::into),
            parsed.query.security().map(Into::into),
            req.bearer.clone(),
        ]);
        let store = plan.store();
        let call = match (&parsed.job, store.is_some()) {
            (Some(_), _) => Call::Convert,
            (None, true) => Call::Store,
            (None, false) => Call::Read,
        };
        let key = url.apikey.as_deref();
        let mut wanted = access(call, &url.source, parsed.job.as_ref());
        if let Some(store) = &store {
            // a `store` is checked as a store: where it writes, and the Store call itself
            wanted.target =
                Target { path: store.path.as_deref(), container: store.container.as_deref(), ..wanted.target };
            wanted.target.location = store.location.as_deref();
            if call != Call::Store {
                let mut as_store = access(Call::Store, &url.source, parsed.job.as_ref());
                as_store.target = wanted.target;
                self.authorize(key, creds.as_ref(), Some(&url.source), &as_store).await?;
            }
        }
        let grant = self.authorize(key, creds.as_ref(), Some(&url.source), &wanted).await?;
        if url.debug {
            return Ok(Answer::Json(debug_json(url, plan)));
        }
        if let Some(store) = store {
            return self.store_task(&req, &store, &grant, creds.as_ref()).await;
        }
        if req.method == Method::Post {
            return Err(Error::MethodNotAllowed);
        }
        if self.config.hints_redirect && !vary_hints.is_empty() {
            let location = hinted_location(&parsed)?;
            return Ok(Answer::Redirect { location, vary_hints });
        }
        let mut file = self.read_or_derive(&req, creds.as_ref()).await?;
        file.vary_hints = vary_hints;
        Ok(Answer::File(Box::new(private(file, &grant))))
    }

    /// Plain delivery, a ZIP or a derivative; the fallback file when the source or the chain
    /// fails and the URL names one.
    async fn read_or_derive(&self, req: &ProcessRequest, creds: Option<&Credentials>) -> Result<FileAnswer> {
        let parsed = &req.parsed;
        let source = &parsed.url.source;
        if parsed.plan.zip() && parsed.job.is_none() {
            return self.zip(source, parsed.plan.cache).await;
        }
        let fallback = parsed.plan.fallback()?;
        let answer = match &parsed.job {
            None => self.deliver(source, parsed.query.download).await,
            Some(_) => self.derivative(req).await,
        };
        match (answer, fallback) {
            (Err(e), Some(fallback)) if fallback_applies(&e) => {
                tracing::info!(error = %e, fallback = %fallback.file.identity(), "answering with the fallback file");
                let key = parsed.url.apikey.as_deref();
                self.authorize(key, creds, Some(&fallback.file), &access(Call::Read, &fallback.file, None)).await?;
                self.fallback(&fallback.file, fallback.max_age, parsed.query.download).await
            }
            (answer, _) => answer,
        }
    }

    async fn fallback(&self, source: &SourceSpec, max_age: u64, download: bool) -> Result<FileAnswer> {
        let mut file = self.deliver(source, download).await?;
        // a fallback is an answer for now: cached for its own (short) lifetime
        if let Caching::Public(_) = file.caching {
            file.caching = Caching::Public(max_age);
        }
        Ok(file)
    }
}

/// Failures of the source or of the pipeline; never a refusal (403) or a malformed request.
fn fallback_applies(e: &Error) -> bool {
    e.is_source_failure()
}

/// What a request reads: its source (recursively for lists) and the files its job overlays.
pub(super) fn access<'a>(call: Call, source: &'a SourceSpec, job: Option<&'a Job>) -> Access<'a> {
    let mut access = Access::new(call);
    for overlay in job.map(Job::overlays).unwrap_or_default() {
        // a handle, or an alias path (validated by the plan)
        match overlay.starts_with("src://") {
            true => access.aliases.extend(overlay[6..].split('/').next()),
            false => access.handles.push(overlay),
        }
    }
    let mut visit = vec![source];
    while let Some(s) = visit.pop() {
        match s {
            SourceSpec::Handle { handle } => access.handles.push(handle.as_str()),
            SourceSpec::Url { url } => access.urls.push(url.as_str()),
            SourceSpec::List { items } => visit.extend(items),
            SourceSpec::Alias { alias, .. } => access.aliases.push(alias.as_str()),
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

/// Where the redirect mode sends a request whose hints were resolved: its explicit, canonical URL
/// with the query it came with (unless the query belonged to an external source URL).
fn hinted_location(parsed: &super::Parsed) -> Result<String> {
    let mut location = super::responsive::canonical_path(&parsed.url, &parsed.plan)?;
    if !parsed.url.query_consumed && !parsed.query.pairs.is_empty() {
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        let pairs: Vec<String> = parsed.query.pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
        location = format!("{location}?{}", pairs.join("&"));
    }
    Ok(location)
}
