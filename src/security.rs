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
}

impl<'a> Access<'a> {
    pub fn new(call: Call) -> Access<'a> {
        Access { call, handles: Vec::new(), urls: Vec::new(), alias: false }
    }

    pub fn handle(call: Call, handle: &'a str) -> Access<'a> {
        Access { call, handles: vec![handle], urls: Vec::new(), alias: false }
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
            let re = regex::Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|_| Error::Forbidden("policy url is not a valid regex".into()))?;
            if access.urls.iter().any(|u| !re.is_match(u)) {
                return Err(Error::Forbidden("policy does not allow this source URL".into()));
            }
        }
        Ok(())
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
}
