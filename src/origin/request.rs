//! A typed request for the service layer: the parsed URL and plan, the credentials, what the
//! client accepts, and how to tell whether it is still there.

use super::Origin;
use crate::error::{Error, Result};
use crate::pipeline::{job::Job, Format};
use crate::plan::Plan;
use crate::security::Credentials;
use crate::url::{self, ParsedUrl, SecurityParams};
use std::sync::Arc;

/// Refract's own query parameters (`dl`, `policy`, `signature`, the store API's fields).
/// Parsed without turning `+` into a space: standard-base64 policies contain `+`.
#[derive(Debug, Default, Clone)]
pub struct QueryParams {
    pub pairs: Vec<(String, String)>,
    pub download: bool,
}

impl QueryParams {
    pub fn parse(raw: Option<&str>) -> QueryParams {
        let pairs: Vec<(String, String)> = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, "true"));
                let dec = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
                (dec(k), dec(v))
            })
            .collect();
        let download = pairs.iter().any(|(k, v)| k == "dl" && v == "true");
        QueryParams { pairs, download }
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    pub fn security(&self) -> Option<SecurityParams> {
        Some(SecurityParams { policy: self.get("policy")?, signature: self.get("signature")? })
    }
}

/// Who asks a file call: the `key` parameter and the credentials (the query's policy and
/// signature, else the `Authorization` header).
#[derive(Debug, Clone, Default)]
pub struct Asker {
    pub apikey: Option<String>,
    pub creds: Option<Credentials>,
}

/// A processing URL parsed, validated and compiled once. Repeated requests for one URL (the hit
/// path) skip the grammar and go straight to the cache key.
pub struct Parsed {
    pub url: ParsedUrl,
    pub plan: Plan,
    pub query: QueryParams,
    /// `None` when there is nothing to compute (plain delivery, or `debug`).
    pub job: Option<Job>,
    pub canonical: String,
}

/// Output formats the client accepts beyond the universal ones (from `Accept`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accepts {
    pub avif: bool,
    pub webp: bool,
}

impl Accepts {
    /// The best format for a negotiating job: AVIF, then WebP; `None` keeps the source's.
    pub fn best(self) -> Option<Format> {
        if self.avif {
            Some(Format::Avif)
        } else if self.webp {
            Some(Format::Webp)
        } else {
            None
        }
    }
}

/// Whether the client that asked has gone away (a queued transform for nobody is skipped).
pub type ClientGone = Arc<dyn Fn() -> bool + Send + Sync>;

/// How the request was made: reads, or a POST (only with a `store` task).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
}

pub struct ProcessRequest {
    pub parsed: Arc<Parsed>,
    pub method: Method,
    pub accepts: Accepts,
    pub client_gone: Option<ClientGone>,
    /// Credentials from the `Authorization` header (URL credentials come first).
    pub bearer: Option<Credentials>,
    /// The entity tags of `If-None-Match`, unquoted (`*` stays `*`).
    pub if_none_match: Vec<String>,
    /// Client hint headers (`Sec-CH-Width`…), for `resize=width:auto` and `dpr:auto`.
    pub hints: super::hints::Hints,
}

impl ProcessRequest {
    /// The format `Accept` chooses, for jobs that negotiate.
    pub fn negotiated(&self) -> Option<Format> {
        self.parsed.job.as_ref().filter(|j| j.negotiates()).and_then(|_| self.accepts.best())
    }

    pub fn gone(&self) -> bool {
        self.client_gone.as_ref().is_some_and(|g| g())
    }
}

impl Origin {
    /// Parse and validate a processing URL (memoised by path and query).
    pub fn parse(&self, path: &str, raw_query: Option<&str>) -> Result<Arc<Parsed>> {
        let memo_key = match raw_query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
        if let Some(parsed) = self.parsed.get(&memo_key) {
            return Ok(parsed);
        }
        // long URLs are rare and would crowd the memo out
        let memoize = memo_key.len() <= 1024;
        let url = url::parse(path, raw_query)?;
        let query = if url.query_consumed { QueryParams::default() } else { QueryParams::parse(raw_query) };
        let parsed = Arc::new(self.compile(url, query)?);
        if memoize && !parsed.url.debug {
            self.parsed.insert(memo_key, parsed.clone());
        }
        Ok(parsed)
    }

    /// Validate and compile a parsed URL (from a path, or built from the JSON processing API).
    pub fn compile(&self, url: url::ParsedUrl, query: QueryParams) -> Result<Parsed> {
        let max_chain = self.config.max_chain;
        if url.tasks.len() > max_chain {
            let n = url.tasks.len();
            return Err(Error::bad(format!("the URL chains {n} tasks, over the limit of {max_chain} (max_chain)")));
        }
        let plan = Plan::build(&url)?;
        // a URL with `auto` options is compiled again once the request's hints resolve them
        let computes = plan.processing().next().is_some() && !url.debug && !super::hints::wants_hints(&url);
        let job = if computes { Some(Job::compile(&plan)?) } else { None };
        Ok(Parsed { canonical: plan.canonical(), url, plan, query, job })
    }
}
