//! Signed policies: HMAC-SHA256 over the policy exactly as transmitted, checked in constant time;
//! then the policy's expiry, calls, handle and URL restrictions.

use crate::error::{Error, Result};
use crate::url::SecurityParams;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Operations a policy can allow (Filestack's `call` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Read,
    Convert,
    Stat,
    Store,
    Write,
    Remove,
}

impl Call {
    fn names(self) -> &'static [&'static str] {
        match self {
            Call::Read => &["read"],
            Call::Convert => &["convert"],
            Call::Stat => &["stat"],
            Call::Store => &["store"],
            Call::Write => &["write", "writeUrl", "write_url"],
            Call::Remove => &["remove"],
        }
    }
}

#[derive(Debug, Deserialize)]
struct Policy {
    expiry: f64,
    #[serde(default)]
    call: Option<CallList>,
    #[serde(default)]
    handle: Option<String>,
    #[serde(default)]
    url: Option<String>,
    /// A regex the storage path of a store or write must match.
    #[serde(default)]
    path: Option<String>,
    /// A regex the storage container of a store or write must match.
    #[serde(default)]
    container: Option<String>,
    #[serde(default, rename = "maxSize")]
    max_size: Option<u64>,
    #[serde(default, rename = "minSize")]
    min_size: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CallList {
    One(String),
    Many(Vec<String>),
}

/// What a request wants to do, for the policy check.
pub struct Access<'a> {
    pub call: Call,
    pub handles: Vec<&'a str>,
    pub urls: Vec<&'a str>,
    /// The request reads a storage alias (never allowed by a handle-bound policy).
    pub alias: bool,
    /// Where a store or write puts the file, and how large it is, when known.
    pub target: Target<'a>,
}

/// What a store or write writes, for the policy's `path`, `container`, `maxSize` and `minSize`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    pub path: Option<&'a str>,
    pub container: Option<&'a str>,
    pub size: Option<u64>,
}

impl<'a> Access<'a> {
    pub fn new(call: Call) -> Access<'a> {
        Access { call, handles: Vec::new(), urls: Vec::new(), alias: false, target: Target::default() }
    }

    pub fn handle(call: Call, handle: &'a str) -> Access<'a> {
        Access { call, handles: vec![handle], urls: Vec::new(), alias: false, target: Target::default() }
    }
}

pub struct Security {
    secret: Option<Vec<u8>>,
    api_keys: Vec<String>,
}

impl Security {
    pub fn new(secret: Option<&str>, api_keys: &[String]) -> Security {
        Security { secret: secret.map(|s| s.as_bytes().to_vec()), api_keys: api_keys.to_vec() }
    }

    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }

    /// With `api_keys` configured, a given key must be one of them, and a key is required where
    /// Filestack requires one (external sources, aliases, uploads); handles may go without.
    pub fn check_apikey(&self, key: Option<&str>, required: bool) -> Result<()> {
        if self.api_keys.is_empty() {
            return Ok(());
        }
        match key {
            Some(k) if !self.api_keys.iter().any(|a| a == k) => Err(Error::Forbidden(format!("unknown API key `{k}`"))),
            None if required => Err(Error::Forbidden("this request needs an API key".into())),
            _ => Ok(()),
        }
    }

    /// Without a configured secret everything is allowed (the embedded default).
    pub fn authorize(&self, creds: Option<&SecurityParams>, access: &Access) -> Result<()> {
        let Some(secret) = &self.secret else { return Ok(()) };
        let creds = creds
            .ok_or_else(|| Error::Forbidden("this server requires a signed policy (policy and signature)".into()))?;
        let sig = hex::decode(creds.signature.trim()).map_err(|_| Error::Forbidden("signature is not hex".into()))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("hmac takes any key length");
        mac.update(creds.policy.as_bytes());
        mac.verify_slice(&sig).map_err(|_| Error::Forbidden("signature does not match the policy".into()))?;
        let json = crate::url::b64_decode(&creds.policy)
            .map_err(|e| Error::Forbidden(format!("policy is not base64: {e}")))?;
        let policy: Policy =
            serde_json::from_slice(&json).map_err(|e| Error::Forbidden(format!("policy is not valid JSON: {e}")))?;
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        if policy.expiry <= now {
            return Err(Error::Forbidden("policy has expired".into()));
        }
        if let Some(calls) = &policy.call {
            let listed: Vec<&str> = match calls {
                CallList::One(c) => vec![c.as_str()],
                CallList::Many(cs) => cs.iter().map(String::as_str).collect(),
            };
            if !access.call.names().iter().any(|n| listed.contains(n)) {
                return Err(Error::Forbidden(format!("policy does not allow the `{}` call", access.call.names()[0])));
            }
        }
        if let Some(h) = &policy.handle {
            // a handle-bound policy allows that handle and nothing else: no URL, no alias
            if access.handles.iter().any(|x| x != h) || !access.urls.is_empty() || access.alias {
                return Err(Error::Forbidden(format!("policy is limited to handle `{h}`")));
            }
        }
        if let Some(pattern) = &policy.url {
            if access.urls.iter().any(|u| !whole_match(pattern, u)) {
                return Err(Error::Forbidden("policy does not allow this source URL".into()));
            }
        }
        check_target(&policy, &access.target)
    }
}

/// Whether `pattern` (a policy regex) matches all of `text`; an invalid regex matches nothing.
fn whole_match(pattern: &str, text: &str) -> bool {
    regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|re| re.is_match(text))
}

/// The policy's limits on where a file is written and how large it is (checked when known).
fn check_target(policy: &Policy, target: &Target) -> Result<()> {
    let refuse = |why: String| Err(Error::Forbidden(why));
    if let (Some(p), Some(path)) = (&policy.path, target.path) {
        if !whole_match(p, path) {
            return refuse(format!("policy does not allow the storage path `{path}`"));
        }
    }
    if let (Some(c), Some(container)) = (&policy.container, target.container) {
        if !whole_match(c, container) {
            return refuse(format!("policy does not allow the container `{container}`"));
        }
    }
    match target.size {
        Some(n) if policy.max_size.is_some_and(|max| n > max) => {
            refuse(format!("the file is {n} bytes, over the policy's maxSize"))
        }
        Some(n) if policy.min_size.is_some_and(|min| n < min) => {
            refuse(format!("the file is {n} bytes, under the policy's minSize"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(policy: &str, signature: &str) -> SecurityParams {
        SecurityParams { policy: policy.into(), signature: signature.into() }
    }

    #[test]
    fn reference_signatures_verify() {
        let s = Security::new(Some("refract-test-secret"), &[]);
        let read = Access::new(Call::Read);
        // worked examples from the URL API reference (JS standard base64, Python URL-safe)
        let js = creds(
            "eyJleHBpcnkiOjE4OTM0NTYwMDAsImNhbGwiOlsicmVhZCIsImNvbnZlcnQiXX0=",
            "9adad7597e3be7c7fe1a51a47a47dc35127f250840d95a0fc4fc6d29ee42d298",
        );
        s.authorize(Some(&js), &read).unwrap();
        let py = creds(
            "eyJjYWxsIjogWyJyZWFkIiwgImNvbnZlcnQiXSwgImV4cGlyeSI6IDE4OTM0NTYwMDB9",
            "e567475ec1440bc3c121b5358c8993d77c4bab1af13932a8e246b87a4d0ea32d",
        );
        s.authorize(Some(&py), &read).unwrap();
        let remove = Access::new(Call::Remove);
        assert!(s.authorize(Some(&py), &remove).is_err());
        let bad = creds("eyJjYWxsIjogWyJyZWFkIiwgImNvbnZlcnQiXSwgImV4cGlyeSI6IDE4OTM0NTYwMDB9", "00");
        assert!(s.authorize(Some(&bad), &read).is_err());
        assert!(s.authorize(None, &read).is_err());
    }

    fn signed(secret: &str, policy: &serde_json::Value) -> SecurityParams {
        use base64::Engine;
        let p = base64::engine::general_purpose::URL_SAFE.encode(policy.to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(p.as_bytes());
        creds(&p, &hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn store_limits_on_path_container_and_size() {
        let secret = "refract-test-secret";
        let s = Security::new(Some(secret), &[]);
        let policy = serde_json::json!({
            "expiry": 4_102_444_800u64, "call": ["store"], "path": "/uploads/.*", "container": "user-[0-9]+",
            "maxSize": 1000, "minSize": 10,
        });
        let c = signed(secret, &policy);
        let store = |path, container, size| {
            let mut a = Access::new(Call::Store);
            a.target = Target { path, container, size };
            s.authorize(Some(&c), &a)
        };
        assert!(store(Some("/uploads/a.jpg"), Some("user-7"), Some(500)).is_ok());
        assert!(store(None, None, None).is_ok(), "what is not known yet is checked later");
        for (path, container, size, why) in [
            (Some("/other/a.jpg"), None, None, "path"),
            (None, Some("admin"), None, "container"),
            (None, None, Some(1001), "maxSize"),
            (None, None, Some(9), "minSize"),
        ] {
            let e = store(path, container, size).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
        // signed for another secret (another app): refused
        let other = signed("another-app-secret-xyz", &policy);
        assert!(s.authorize(Some(&other), &Access::new(Call::Store)).is_err());
    }
}
