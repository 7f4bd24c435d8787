//! The hooks as configured (`[[purge_hooks]]`) and the one request each sends for a purge:
//! a generic JSON webhook, Fastly's purge by surrogate key, Cloudflare's purge by cache tag,
//! CloudFront's invalidation of paths (signed with SigV4). Building a request is pure (given the
//! clock), so the shapes are tested without a network.

use super::sigv4;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// A credential: read from the configuration, sent where it belongs, never shown (`Debug`,
/// `Serialize` and `Display` all say `[redacted]`).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one header or signature that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookKind {
    Webhook,
    Fastly,
    Cloudflare,
    Cloudfront,
}

impl HookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Webhook => "webhook",
            HookKind::Fastly => "fastly",
            HookKind::Cloudflare => "cloudflare",
            HookKind::Cloudfront => "cloudfront",
        }
    }
}

/// One `[[purge_hooks]]` entry as written: the fields of every kind, checked against its kind
/// by [`HookConfig::build`] (a field another kind uses is refused, as an unknown key would be).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    pub kind: HookKind,
    /// Names the hook in the log, the metrics and the dead-letter file (default: the kind).
    #[serde(default)]
    pub name: Option<String>,
    /// `webhook`: where the event is POSTed.
    #[serde(default)]
    pub url: Option<String>,
    /// `webhook`: extra request headers (`Authorization`…); their values are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// `fastly`: the service whose cache is purged.
    #[serde(default)]
    pub service_id: Option<String>,
    /// `cloudflare`: the zone whose cache is purged.
    #[serde(default)]
    pub zone_id: Option<String>,
    /// `cloudfront`: the distribution invalidated.
    #[serde(default)]
    pub distribution_id: Option<String>,
    /// `fastly`: the API token (`Fastly-Key`); `cloudflare`: the API token (`Bearer`).
    #[serde(default)]
    pub token: Option<Secret>,
    /// `fastly`: mark the objects stale instead of removing them (`Fastly-Soft-Purge: 1`).
    #[serde(default)]
    pub soft: bool,
    /// `cloudfront`: the IAM credentials that sign the request (SigV4).
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// `cloudfront`: the session token of temporary credentials (`X-Amz-Security-Token`).
    #[serde(default)]
    pub session_token: Option<Secret>,
    /// `cloudfront`: the paths invalidated, `{handle}` replaced by the file's handle; a `*` may
    /// only end a path (CloudFront's rule). Default `["/{handle}"]`.
    #[serde(default)]
    pub paths: Vec<String>,
    /// The API's base URL, for tests and proxies (defaults: `https://api.fastly.com`,
    /// `https://api.cloudflare.com`, `https://cloudfront.amazonaws.com`).
    #[serde(default)]
    pub api: Option<String>,
    /// Tries of one purge, the first included (default 5).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Delay before the first retry; each next one doubles, up to `max_backoff_ms` (default 500).
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// Budget of one request (default 10 s).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Purges waiting for this hook; when full, a purge goes to the dead-letter file rather than
    /// hold up the delete (default 1000).
    #[serde(default = "default_queue")]
    pub queue: usize,
}

fn default_attempts() -> u32 {
    5
}
fn default_backoff_ms() -> u64 {
    500
}
fn default_max_backoff_ms() -> u64 {
    60_000
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_queue() -> usize {
    1000
}

/// What happened to a stored file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Delete,
    Overwrite,
}

/// One purge: the file, and the surrogate keys its answers carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgeEvent {
    pub event: EventKind,
    pub handle: String,
    pub keys: Vec<String>,
    /// Unique per event and the same on every retry: CloudFront's `CallerReference`, which
    /// makes a retried invalidation whose answer was lost a no-op rather than a second charge.
    #[serde(skip)]
    pub id: String,
}

impl PurgeEvent {
    pub fn new(event: EventKind, handle: &str, keys: Vec<String>) -> PurgeEvent {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let id = format!("refract-{handle}-{nanos}-{:08x}", rand::random::<u32>());
        PurgeEvent { event, handle: handle.to_string(), keys, id }
    }
}

/// A hook ready to send: its target typed, its retry policy.
#[derive(Debug, Clone)]
pub struct Hook {
    pub name: String,
    pub target: Target,
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub timeout: Duration,
    pub queue: usize,
}

#[derive(Debug, Clone)]
pub enum Target {
    Webhook { url: reqwest::Url, headers: Vec<(String, Secret)> },
    Fastly { api: reqwest::Url, service_id: String, token: Secret, soft: bool },
    Cloudflare { api: reqwest::Url, zone_id: String, token: Secret },
    Cloudfront { api: reqwest::Url, distribution_id: String, credentials: sigv4::Credentials, paths: Vec<String> },
}

/// A request to send: built per attempt (a signature carries its time).
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub url: reqwest::Url,
    /// Names in lowercase; values may be credentials (never log them).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HookConfig {
    /// Check the entry against its kind and type it; `index` names it in errors.
    pub fn build(&self, index: usize) -> Result<Hook, String> {
        let kind = self.kind.as_str();
        let bad = |why: String| Err(format!("configuration: `purge_hooks[{index}]` ({kind}) {why}"));
        let mut foreign: Vec<&str> = Vec::new();
        let mut unused = |set: bool, field: &'static str| {
            if set {
                foreign.push(field);
            }
        };
        let k = self.kind;
        unused(k != HookKind::Webhook && self.url.is_some(), "url");
        unused(k != HookKind::Webhook && !self.headers.is_empty(), "headers");
        unused(k != HookKind::Fastly && self.service_id.is_some(), "service_id");
        unused(k != HookKind::Fastly && self.soft, "soft");
        unused(k != HookKind::Cloudflare && self.zone_id.is_some(), "zone_id");
        unused(!matches!(k, HookKind::Fastly | HookKind::Cloudflare) && self.token.is_some(), "token");
        unused(k != HookKind::Cloudfront && self.distribution_id.is_some(), "distribution_id");
        unused(k != HookKind::Cloudfront && self.access_key_id.is_some(), "access_key_id");
        unused(k != HookKind::Cloudfront && self.secret_access_key.is_some(), "secret_access_key");
        unused(k != HookKind::Cloudfront && self.session_token.is_some(), "session_token");
        unused(k != HookKind::Cloudfront && !self.paths.is_empty(), "paths");
        unused(k == HookKind::Webhook && self.api.is_some(), "api");
        if let Some(field) = foreign.first() {
            return bad(format!("does not take `{field}`"));
        }
        let name = self.name.clone().unwrap_or_else(|| kind.to_string());
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return bad("needs a `name` of 1 to 64 letters, digits, `-`, `_` or `.`".into());
        }
        if !(1..=20).contains(&self.attempts) {
            return bad(format!("`attempts` is {}; allowed 1..=20", self.attempts));
        }
        if self.backoff_ms > 3_600_000 || self.max_backoff_ms > 3_600_000 || self.backoff_ms > self.max_backoff_ms {
            return bad("`backoff_ms` must be at most `max_backoff_ms`, both at most an hour".into());
        }
        if !(1..=600_000).contains(&self.timeout_ms) {
            return bad(format!("`timeout_ms` is {}; allowed 1..=600000", self.timeout_ms));
        }
        if !(1..=1_000_000).contains(&self.queue) {
            return bad(format!("`queue` is {}; allowed 1..=1000000", self.queue));
        }
        let http_url = |field: &str, value: &str| -> Result<reqwest::Url, String> {
            match reqwest::Url::parse(value) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(u),
                _ => Err(format!("configuration: `purge_hooks[{index}]` ({kind}) `{field}` must be an http(s) URL")),
            }
        };
        let api = |default: &str| http_url("api", self.api.as_deref().unwrap_or(default));
        let id = |field: &str, value: &Option<String>| -> Result<String, String> {
            match value {
                Some(v) if !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_alphanumeric()) => {
                    Ok(v.clone())
                }
                _ => Err(format!(
                    "configuration: `purge_hooks[{index}]` ({kind}) needs a `{field}` (letters and digits)"
                )),
            }
        };
        let token = || match &self.token {
            Some(t) if !t.expose().is_empty() => Ok(t.clone()),
            _ => Err(format!("configuration: `purge_hooks[{index}]` ({kind}) needs a `token`")),
        };
        let target = match self.kind {
            HookKind::Webhook => {
                let Some(url) = &self.url else { return bad("needs a `url`".into()) };
                let url = http_url("url", url)?;
                for (name, value) in &self.headers {
                    let valid = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                        && reqwest::header::HeaderValue::from_str(value.expose()).is_ok();
                    if !valid {
                        return bad(format!("has an invalid header `{name}`"));
                    }
                }
                let headers = self.headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())).collect();
                Target::Webhook { url, headers }
            }
            HookKind::Fastly => Target::Fastly {
                api: api("https://api.fastly.com")?,
                service_id: id("service_id", &self.service_id)?,
                token: token()?,
                soft: self.soft,
            },
            HookKind::Cloudflare => Target::Cloudflare {
                api: api("https://api.cloudflare.com")?,
                zone_id: id("zone_id", &self.zone_id)?,
                token: token()?,
            },
            HookKind::Cloudfront => {
                let (Some(key), Some(secret)) = (&self.access_key_id, &self.secret_access_key) else {
                    return bad("needs `access_key_id` and `secret_access_key`".into());
                };
                let paths = if self.paths.is_empty() { vec!["/{handle}".to_string()] } else { self.paths.clone() };
                for path in &paths {
                    let star_inside = path.find('*').is_some_and(|i| i + 1 != path.len());
                    if !path.starts_with('/') || star_inside || path.len() > 4000 {
                        return bad(format!(
                            "path `{path}` must start with `/`, and a `*` may only end it (CloudFront \
                             invalidates by path prefix, not by tag)"
                        ));
                    }
                }
                if paths.len() > 100 {
                    return bad("has more than 100 `paths`".into());
                }
                let credentials = sigv4::Credentials {
                    access_key_id: key.clone(),
                    secret_access_key: secret.clone(),
                    session_token: self.session_token.clone(),
                };
                Target::Cloudfront {
                    api: api("https://cloudfront.amazonaws.com")?,
                    distribution_id: id("distribution_id", &self.distribution_id)?,
                    credentials,
                    paths,
                }
            }
        };
        Ok(Hook {
            name,
            target,
            attempts: self.attempts,
            backoff: Duration::from_millis(self.backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms),
            timeout: Duration::from_millis(self.timeout_ms),
            queue: self.queue,
        })
    }
}

impl Hook {
    pub fn kind(&self) -> &'static str {
        match self.target {
            Target::Webhook { .. } => "webhook",
            Target::Fastly { .. } => "fastly",
            Target::Cloudflare { .. } => "cloudflare",
            Target::Cloudfront { .. } => "cloudfront",
        }
    }

    /// The credentials this hook sends, so that an error text that echoes one can be cleaned.
    pub fn secrets(&self) -> Vec<&str> {
        let all: Vec<&Secret> = match &self.target {
            Target::Webhook { headers, .. } => headers.iter().map(|(_, v)| v).collect(),
            Target::Fastly { token, .. } | Target::Cloudflare { token, .. } => vec![token],
            Target::Cloudfront { credentials, .. } => {
                [Some(&credentials.secret_access_key), credentials.session_token.as_ref()]
                    .into_iter()
                    .flatten()
                    .collect()
            }
        };
        all.into_iter().map(Secret::expose).filter(|s| s.len() >= 4).collect()
    }

    /// Replace any credential of this hook in `text` (an error message, a peer's answer).
    pub fn scrub(&self, text: &str) -> String {
        self.secrets().into_iter().fold(text.to_string(), |t, s| t.replace(s, "[redacted]"))
    }

    /// The request purging `event`, as sent at `now` (POST).
    pub fn request(&self, event: &PurgeEvent, now: SystemTime) -> Prepared {
        let json = |v: serde_json::Value| serde_json::to_vec(&v).unwrap_or_default();
        let mut headers = vec![("user-agent".to_string(), concat!("refract/", env!("CARGO_PKG_VERSION")).to_string())];
        match &self.target {
            Target::Webhook { url, headers: extra } => {
                headers.push(("content-type".into(), "application/json".into()));
                headers.extend(extra.iter().map(|(n, v)| (n.clone(), v.expose().to_string())));
                let body = json(serde_json::json!({
                    "event": event.event,
                    "handle": event.handle,
                    "keys": event.keys,
                }));
                Prepared { url: url.clone(), headers, body }
            }
            Target::Fastly { api, service_id, token, soft } => {
                headers.push(("accept".into(), "application/json".into()));
                headers.push(("fastly-key".into(), token.expose().to_string()));
                headers.push(("surrogate-key".into(), event.keys.join(" ")));
                if *soft {
                    headers.push(("fastly-soft-purge".into(), "1".into()));
                }
                let url = join(api, &format!("service/{service_id}/purge"));
                Prepared { url, headers, body: Vec::new() }
            }
            Target::Cloudflare { api, zone_id, token } => {
                headers.push(("content-type".into(), "application/json".into()));
                headers.push(("authorization".into(), format!("Bearer {}", token.expose())));
                let url = join(api, &format!("client/v4/zones/{zone_id}/purge_cache"));
                Prepared { url, headers, body: json(serde_json::json!({ "tags": event.keys })) }
            }
            Target::Cloudfront { api, distribution_id, credentials, paths } => {
                let url = join(api, &format!("2020-05-31/distribution/{distribution_id}/invalidation"));
                let body = invalidation_batch(&self.paths_of(paths, event), &event.id).into_bytes();
                headers.push(("content-type".into(), "application/xml".into()));
                let signed = sigv4::sign(
                    &sigv4::Request { method: "POST", url: &url, headers: &headers, body: &body },
                    credentials,
                    &sigv4::Scope { region: "us-east-1", service: "cloudfront" },
                    now,
                );
                headers.extend(signed);
                Prepared { url, headers, body }
            }
        }
    }

    /// The configured path patterns with the handle in place, each once.
    fn paths_of(&self, patterns: &[String], event: &PurgeEvent) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in patterns {
            let path = p.replace("{handle}", &event.handle);
            if !out.contains(&path) {
                out.push(path);
            }
        }
        out
    }
}

/// `base` + `path`, whether or not the base ends with `/` (a base may have a path of its own).
fn join(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url
}

/// CloudFront's `InvalidationBatch` document.
pub fn invalidation_batch(paths: &[String], caller_reference: &str) -> String {
    let items: String = paths.iter().map(|p| format!("<Path>{}</Path>", xml_escape(p))).collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <InvalidationBatch xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\">\
         <Paths><Quantity>{}</Quantity><Items>{items}</Items></Paths>\
         <CallerReference>{}</CallerReference></InvalidationBatch>",
        paths.len(),
        xml_escape(caller_reference)
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}
