//! Apps and their credentials. An app is an API key with up to two secrets (both verify during a
//! rotation), whether it requires signatures, and what it may touch (store locations,
//! containers, aliases). A request is matched to one app (its API key, else the app that stored
//! the file it reads, else the only app) and its credentials are verified with that app's
//! secrets only, so a policy signed for one app is useless for another. With no app configured
//! everything is open (the embedded default).

mod credentials;
mod policy;

pub use credentials::Credentials;
use policy::Policy;

use crate::config::{AppConfig, PrivateCaching};
use crate::error::{Error, Result};
use std::sync::Arc;

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

    pub fn name(self) -> &'static str {
        self.names()[0]
    }
}

/// What a request wants to do, for the app's limits and the policy.
pub struct Access<'a> {
    pub call: Call,
    pub handles: Vec<&'a str>,
    pub urls: Vec<&'a str>,
    /// Storage aliases the request reads (never allowed by a handle-bound policy).
    pub aliases: Vec<&'a str>,
    /// Where a store or write puts the file, and how large it is, when known.
    pub target: Target<'a>,
}

/// What a store or write writes, for the policy's `path`, `container`, `maxSize` and `minSize`
/// and the app's allowed storage.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    pub path: Option<&'a str>,
    pub container: Option<&'a str>,
    pub size: Option<u64>,
    /// The store `location` asked (`s3`, `gcs`, …).
    pub location: Option<&'a str>,
}

impl<'a> Access<'a> {
    pub fn new(call: Call) -> Access<'a> {
        Access { call, handles: Vec::new(), urls: Vec::new(), aliases: Vec::new(), target: Target::default() }
    }

    pub fn handle(call: Call, handle: &'a str) -> Access<'a> {
        Access { handles: vec![handle], ..Access::new(call) }
    }
}

/// Who asks: the API key given, the credentials brought, and the app that stored the file read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    pub apikey: Option<&'a str>,
    pub creds: Option<&'a Credentials>,
    /// The apps that stored the files the request reads (each once; files of an open server
    /// have none). More than one is refused: a request is one app's.
    pub owners: &'a [String],
    /// Filestack requires a key for external sources, aliases and uploads.
    pub key_required: bool,
}

/// What an authorized request may be told: its app (recorded on what it stores) and whether its
/// answers are private (revalidated at every use).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grant {
    pub app: Option<String>,
    pub private: Option<PrivateCaching>,
}

struct App {
    /// What files stored through this app record as their owner: the configured API key (never
    /// the key a client sent). The legacy single app records none.
    id: Option<String>,
    /// API keys that select this app; empty (a legacy `api_keys = []`) accepts any key.
    keys: Vec<String>,
    secrets: Vec<Vec<u8>>,
    require_signature: bool,
    storage: Vec<String>,
    containers: Vec<String>,
    aliases: Option<Vec<String>>,
    private: PrivateCaching,
    /// Policies whose signature checked out, by the credentials as sent: a page of thumbnails
    /// signed with one policy verifies it once, not once per image. Only successes are kept
    /// (garbage cannot crowd it), and `allows` still runs per request (expiry, call, handle).
    verified: moka::sync::Cache<String, Arc<Policy>>,
}

pub struct Security {
    apps: Vec<App>,
}

impl Security {
    /// The configured apps, plus the legacy single app of `secret` and `api_keys` when set.
    pub fn new(apps: &[AppConfig], legacy_secret: Option<&str>, legacy_keys: &[String]) -> Security {
        let mut list: Vec<App> = apps.iter().map(App::from_config).collect();
        if legacy_secret.is_some() || !legacy_keys.is_empty() {
            list.push(App {
                id: None,
                keys: legacy_keys.to_vec(),
                secrets: legacy_secret.map(|s| vec![s.as_bytes().to_vec()]).unwrap_or_default(),
                require_signature: legacy_secret.is_some(),
                storage: Vec::new(),
                containers: Vec::new(),
                aliases: None,
                private: PrivateCaching::default(),
                verified: moka::sync::Cache::new(10_000),
            });
        }
        Security { apps: list }
    }

    /// Whether any app is configured (otherwise everything is open and nobody owns a file).
    pub fn has_apps(&self) -> bool {
        !self.apps.is_empty()
    }

    /// Match the caller to an app and check the request against it; every refusal is logged
    /// with the app, the call and the reason (never a secret or a signature).
    pub fn authorize(&self, caller: &Caller, access: &Access) -> Result<Grant> {
        let checked = self.app_for(caller).and_then(|app| match app {
            None => Ok(Grant::default()),
            Some(app) => app.check(caller, access).map(|()| app.grant()),
        });
        if let Err(e) = &checked {
            // Debug formatting escapes what a client chose (a key with a newline forges no line)
            let app = caller.apikey.or(caller.owners.first().map(String::as_str)).unwrap_or("-");
            tracing::warn!(app = ?app, call = access.call.name(), reason = ?e.to_string(), "refused");
        }
        checked
    }

    fn app_for(&self, caller: &Caller) -> Result<Option<&App>> {
        if self.apps.is_empty() {
            return Ok(None);
        }
        if caller.owners.len() > 1 {
            return Err(Error::Forbidden("the request reads files of several apps".into()));
        }
        let owner = caller.owners.first().map(String::as_str);
        if let Some(key) = caller.apikey {
            let app = self.apps.iter().find(|a| a.selected_by(key));
            let app = app.ok_or_else(|| Error::Forbidden(format!("unknown API key `{key}`")))?;
            // a file is read through the app that stored it
            if owner.is_some_and(|owner| app.id.as_deref() != Some(owner)) {
                return Err(Error::Forbidden("the file belongs to another app".into()));
            }
            return Ok(Some(app));
        }
        if let Some(app) = owner.and_then(|o| self.apps.iter().find(|a| a.id.as_deref() == Some(o))) {
            return Ok(Some(app));
        }
        match &self.apps[..] {
            [only] if caller.key_required && !only.keys.is_empty() => {
                Err(Error::Forbidden("this request needs an API key".into()))
            }
            [only] => Ok(Some(only)),
            _ => Err(Error::Unauthorized("this request needs an API key: several apps are configured".into())),
        }
    }
}

impl App {
    fn from_config(c: &AppConfig) -> App {
        App {
            id: Some(c.api_key.clone()),
            keys: vec![c.api_key.clone()],
            secrets: c.secrets.iter().map(|s| s.as_bytes().to_vec()).collect(),
            require_signature: c.require_signature.unwrap_or(!c.secrets.is_empty()),
            storage: c.storage.clone(),
            containers: c.containers.clone(),
            aliases: c.aliases.clone(),
            private: c.private_caching,
            verified: moka::sync::Cache::new(10_000),
        }
    }

    /// The policy the credentials carry, verified against the app's secrets (memoised).
    fn verified_policy(&self, creds: &Credentials) -> Result<Arc<Policy>> {
        let key = match creds {
            Credentials::Signed(p) => format!("{}.{}", p.policy, p.signature),
            Credentials::Jwt(token) => token.clone(),
        };
        if let Some(policy) = self.verified.get(&key) {
            return Ok(policy);
        }
        let policy = Arc::new(creds.verify(&self.secrets)?);
        self.verified.insert(key, policy.clone());
        Ok(policy)
    }

    fn selected_by(&self, key: &str) -> bool {
        self.keys.is_empty() || self.keys.iter().any(|k| k == key)
    }

    fn grant(&self) -> Grant {
        Grant { app: self.id.clone(), private: self.require_signature.then_some(self.private) }
    }

    /// The app's own limits, then the credentials (required, or checked when given).
    fn check(&self, caller: &Caller, access: &Access) -> Result<()> {
        self.check_scope(access)?;
        match caller.creds {
            None if self.require_signature => Err(Error::Unauthorized(
                "this app requires a signed policy: `policy` and `signature` in the URL, or `Authorization: Bearer`"
                    .into(),
            )),
            // an app without secrets has nothing to verify a signature with
            None => Ok(()),
            Some(_) if self.secrets.is_empty() => Ok(()),
            Some(creds) => self.verified_policy(creds)?.allows(access),
        }
    }

    /// Aliases the app may read, and locations and containers it may store to.
    fn check_scope(&self, access: &Access) -> Result<()> {
        let refuse = |why: String| Err(Error::Forbidden(why));
        if let Some(allowed) = &self.aliases {
            if let Some(alias) = access.aliases.iter().find(|a| !allowed.iter().any(|x| x == *a)) {
                return refuse(format!("this app may not read the alias `{alias}`"));
            }
        }
        let listed = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        // locations are named in any case (`S3` in the SDKs' paths, `s3` in their options)
        let location_listed =
            |l: &&str| self.storage.is_empty() || self.storage.iter().any(|x| x.eq_ignore_ascii_case(l));
        if let Some(location) = access.target.location.filter(|l| !location_listed(l)) {
            return refuse(format!("this app may not store to `{location}`"));
        }
        if let Some(container) = access.target.container.filter(|c| !listed(&self.containers, c)) {
            return refuse(format!("this app may not store to the container `{container}`"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::SecurityParams;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    fn creds(policy: &str, signature: &str) -> Credentials {
        Credentials::Signed(SecurityParams { policy: policy.into(), signature: signature.into() })
    }

    fn legacy(secret: &str) -> Security {
        Security::new(&[], Some(secret), &[])
    }

    fn with(creds: &Credentials) -> Caller<'_> {
        Caller { creds: Some(creds), ..Caller::default() }
    }

    #[test]
    fn reference_signatures_verify() {
        let s = legacy("refract-test-secret");
        let read = Access::new(Call::Read);
        // worked examples from the URL API reference (JS standard base64, Python URL-safe)
        let js = creds(
            "eyJleHBpcnkiOjE4OTM0NTYwMDAsImNhbGwiOlsicmVhZCIsImNvbnZlcnQiXX0=",
            "9adad7597e3be7c7fe1a51a47a47dc35127f250840d95a0fc4fc6d29ee42d298",
        );
        s.authorize(&with(&js), &read).unwrap();
        let py = creds(
            "eyJjYWxsIjogWyJyZWFkIiwgImNvbnZlcnQiXSwgImV4cGlyeSI6IDE4OTM0NTYwMDB9",
            "e567475ec1440bc3c121b5358c8993d77c4bab1af13932a8e246b87a4d0ea32d",
        );
        assert_eq!(s.authorize(&with(&py), &read).unwrap().private, Some(PrivateCaching::NoCache));
        let remove = Access::new(Call::Remove);
        assert!(matches!(s.authorize(&with(&py), &remove), Err(Error::Forbidden(_))));
        let bad = creds("eyJjYWxsIjogWyJyZWFkIiwgImNvbnZlcnQiXSwgImV4cGlyeSI6IDE4OTM0NTYwMDB9", "00");
        assert!(matches!(s.authorize(&with(&bad), &read), Err(Error::Forbidden(_))));
        assert!(matches!(s.authorize(&Caller::default(), &read), Err(Error::Unauthorized(_))));
    }

    fn signed(secret: &str, policy: &serde_json::Value) -> Credentials {
        use base64::Engine;
        let p = base64::engine::general_purpose::URL_SAFE.encode(policy.to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(p.as_bytes());
        creds(&p, &hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn store_limits_on_path_container_and_size() {
        let secret = "refract-test-secret";
        let s = legacy(secret);
        let policy = serde_json::json!({
            "expiry": 4_102_444_800u64, "call": ["store"], "path": "/uploads/.*", "container": "user-[0-9]+",
            "maxSize": 1000, "minSize": 10,
        });
        let c = signed(secret, &policy);
        let store = |path, container, size| {
            let mut a = Access::new(Call::Store);
            a.target = Target { path, container, size, location: None };
            s.authorize(&with(&c), &a)
        };
        assert!(store(Some("/uploads/a.jpg"), Some("user-7"), Some(500)).is_ok());
        assert!(store(Some("/uploads/a.jpg"), Some("user-7"), None).is_ok(), "a size not known yet is checked later");
        assert!(store(None, Some("user-7"), Some(500)).is_err(), "a path left out is the empty path");
        for (path, container, size, why) in [
            (Some("/other/a.jpg"), Some("user-7"), None, "path"),
            (Some("/uploads/a.jpg"), Some("admin"), None, "container"),
            (Some("/uploads/a.jpg"), Some("user-7"), Some(1001), "maxSize"),
            (Some("/uploads/a.jpg"), Some("user-7"), Some(9), "minSize"),
        ] {
            let e = store(path, container, size).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
        // signed for another secret (another app): refused
        let other = signed("another-app-secret-xyz", &policy);
        assert!(s.authorize(&with(&other), &Access::new(Call::Store)).is_err());
    }

    fn app(key: &str, secrets: &[&str]) -> AppConfig {
        AppConfig {
            api_key: key.into(),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            require_signature: None,
            storage: Vec::new(),
            containers: Vec::new(),
            aliases: None,
            private_caching: PrivateCaching::NoCache,
            client_hints: Vec::new(),
        }
    }

    #[test]
    fn apps_rotate_secrets_and_refuse_each_others_signatures() {
        let a = app("KEY_A", &["a-old-secret-0123456", "a-new-secret-0123456"]);
        let b = app("KEY_B", &["b-only-secret-012345"]);
        let s = Security::new(&[a, b], None, &[]);
        let policy = serde_json::json!({ "expiry": 4_102_444_800u64 });
        let read = Access::new(Call::Read);
        let as_app = |key, c: &Credentials| s.authorize(&Caller { apikey: Some(key), ..with(c) }, &read);
        for secret in ["a-old-secret-0123456", "a-new-secret-0123456"] {
            let grant = as_app("KEY_A", &signed(secret, &policy)).unwrap();
            assert_eq!(grant.app.as_deref(), Some("KEY_A"));
        }
        assert!(matches!(as_app("KEY_B", &signed("a-new-secret-0123456", &policy)), Err(Error::Forbidden(_))));
        assert!(as_app("KEY_B", &signed("b-only-secret-012345", &policy)).is_ok());
        assert!(matches!(as_app("KEY_C", &signed("b-only-secret-012345", &policy)), Err(Error::Forbidden(_))));
        // no key: the app that stored the file decides; a file of A read with B's key is refused
        let b_creds = signed("b-only-secret-012345", &policy);
        let a = ["KEY_A".to_string()];
        let owned_by_a = Caller { owners: &a, ..with(&b_creds) };
        assert!(s.authorize(&owned_by_a, &read).is_err());
        assert!(s.authorize(&Caller { apikey: Some("KEY_B"), ..owned_by_a }, &read).is_err());
        let b = ["KEY_B".to_string()];
        let owned_by_b = Caller { owners: &b, ..with(&b_creds) };
        assert!(s.authorize(&owned_by_b, &read).is_ok());
        // a request over files of two apps is nobody's
        let both = ["KEY_A".to_string(), "KEY_B".to_string()];
        assert!(s.authorize(&Caller { apikey: Some("KEY_B"), owners: &both, ..with(&b_creds) }, &read).is_err());
        // neither key nor owner, two apps: which secret to check with is unknown
        assert!(matches!(s.authorize(&with(&b_creds), &read), Err(Error::Unauthorized(_))));
    }

    #[test]
    fn an_app_limits_aliases_storage_and_containers() {
        let mut open = app("KEY_O", &[]);
        open.aliases = Some(vec!["photos".into()]);
        open.storage = vec!["s3".into()];
        open.containers = vec!["public".into()];
        let s = Security::new(&[open], None, &[]);
        let caller = Caller { apikey: Some("KEY_O"), ..Caller::default() };
        let grant = s.authorize(&caller, &Access::new(Call::Read)).unwrap();
        assert_eq!(grant.private, None, "an app without signatures answers publicly");
        let mut alias = Access::new(Call::Read);
        alias.aliases = vec!["photos"];
        assert!(s.authorize(&caller, &alias).is_ok());
        alias.aliases.push("secrets");
        assert!(s.authorize(&caller, &alias).unwrap_err().to_string().contains("secrets"));
        let store = |location, container| {
            let mut a = Access::new(Call::Store);
            a.target = Target { location, container, ..Target::default() };
            s.authorize(&caller, &a)
        };
        assert!(store(Some("s3"), Some("public")).is_ok() && store(None, None).is_ok());
        assert!(store(Some("azure"), None).unwrap_err().to_string().contains("azure"));
        assert!(store(None, Some("private")).unwrap_err().to_string().contains("container"));
    }

    #[test]
    fn verified_policies_are_memoised_but_still_checked_per_request() {
        let secret = "refract-test-secret";
        let s = legacy(secret);
        let read = Access::new(Call::Read);
        let good = signed(secret, &serde_json::json!({ "expiry": 4_102_444_800u64, "call": ["read"] }));
        s.authorize(&with(&good), &read).unwrap();
        let key = |c: &Credentials| match c {
            Credentials::Signed(p) => format!("{}.{}", p.policy, p.signature),
            Credentials::Jwt(t) => t.clone(),
        };
        assert!(s.apps[0].verified.contains_key(&key(&good)), "a verified policy is kept");
        // the memo answers the signature, not the request: a call the policy lacks is refused
        assert!(s.authorize(&with(&good), &Access::new(Call::Remove)).is_err());
        let expired = signed(secret, &serde_json::json!({ "expiry": 1_000_000_000u64 }));
        for _ in 0..2 {
            assert!(matches!(s.authorize(&with(&expired), &read), Err(Error::Forbidden(_))));
        }
        let forged = match &good {
            Credentials::Signed(p) => creds(&p.policy, &"0".repeat(64)),
            Credentials::Jwt(_) => unreachable!(),
        };
        assert!(s.authorize(&with(&forged), &read).is_err());
        assert!(!s.apps[0].verified.contains_key(&key(&forged)), "a failed signature is never kept");
    }
}
