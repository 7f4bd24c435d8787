//! One typed configuration: defaults ← TOML file ← `REFRACT_*` environment ← command line.

pub use crate::store::s3::S3Config;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Originals and the derivative cache live here.
    pub data_dir: PathBuf,
    /// Base URL used in store answers (`url` field); defaults to `http://{listen}`.
    pub public_url: Option<String>,
    pub max_upload_bytes: u64,
    /// Largest external source fetched.
    pub max_source_bytes: u64,
    /// Images over this many pixels are refused before decoding (Filestack's limit is 100 MP).
    pub max_pixels: u64,
    /// Derivative lifetime (30 days).
    pub cache_ttl_secs: u64,
    /// Disk budget of the derivative cache; least recently used entries go first.
    pub cache_max_bytes: u64,
    /// In-memory hot tier in front of the disk cache.
    pub cache_memory_bytes: u64,
    /// Memory for recently read originals (and fetched external sources).
    pub source_memory_bytes: u64,
    /// Decoded pixels shared by the derivatives of one source (a srcset burst decodes once);
    /// 0 turns the sharing off.
    pub decode_cache_bytes: u64,
    /// How often expired and over-budget entries are swept.
    pub cache_sweep_secs: u64,
    /// Transform workers (0 = one per core).
    pub workers: usize,
    /// Transforms allowed to wait for a worker before answering 503.
    pub queue_len: usize,
    pub fetch_timeout_secs: u64,
    /// Let external sources resolve to private/loopback addresses (tests, trusted networks).
    pub allow_private_networks: bool,
    /// When set, external sources may only come from these hosts: names (`img.example.com`,
    /// `*.example.com`) or CIDRs (`203.0.113.0/24`; a listed CIDR is allowed even if private).
    pub source_allow_hosts: Vec<String>,
    /// External sources never come from these hosts (names or CIDRs).
    pub source_deny_hosts: Vec<String>,
    /// A multipart upload idle this long is dropped with its parts.
    pub multipart_timeout_secs: u64,
    /// Disk budget of the fetched-source cache (`DATA_DIR/sources`).
    pub source_cache_bytes: u64,
    /// App secret for HMAC-SHA256 policies; when set every request needs a valid signature.
    pub secret: Option<String>,
    /// Accepted API keys; empty accepts any.
    pub api_keys: Vec<String>,
    /// Applications, each with its API key, secrets and limits (`[[apps]]`). With none (and no
    /// `secret`), the server is open.
    pub apps: Vec<AppConfig>,
    pub log_format: LogFormat,
    /// `max-age` of 4xx answers, so an edge absorbs repeated bad requests.
    pub error_max_age_secs: u64,
    /// Where originals live: `[store] kind = "fs"` (under `data_dir`, the default) or
    /// `kind = "s3"` with a bucket.
    pub store: StoreConfig,
    /// Storage aliases for `src://alias/path`: `[aliases.NAME] kind = "fs" | "s3" | "http"`, or
    /// `NAME = "/a/directory"`.
    pub aliases: BTreeMap<String, AliasConfig>,
    /// Metadata an image may carry (ICC, EXIF, XMP, text chunks), counted inflated; more is refused.
    pub max_metadata_bytes: u64,
    /// Tasks a processing URL may chain.
    pub max_chain: usize,
    /// How many times a resize may enlarge its source, per axis.
    pub max_upscale: f64,
    /// Budget of one transform, checked between steps and inside long loops.
    pub transform_timeout_ms: u64,
    /// `quality=auto` picks the lowest quality whose SSIMULACRA2 score against the image before
    /// encoding is at least this (90: visually lossless, 70: high, 50: medium). The default, 70,
    /// was measured on the corpus photos at 800 px: close to q80 while smaller (README,
    /// "Automatic quality").
    pub auto_quality_target: f64,
    /// Budget of one audio job (a conversion decodes and encodes the whole file).
    pub audio_timeout_ms: u64,
    /// The widths `resize=width:auto` snaps to (the smallest step at least the hinted width).
    pub width_ladder: Vec<u32>,
    /// The width `resize=width:auto` takes when the request has no width or viewport hint.
    pub hint_default_width: u32,
    /// For CDNs that ignore `Vary`: a URL with `auto` options answers `302` to the explicit URL
    /// its hints resolve to (not cached at the edge), instead of the image with `Vary`.
    pub hints_redirect: bool,
    /// Serve stored SVG inline (still sandboxed) instead of as an attachment.
    pub inline_svg: bool,
    /// Uploads read at once; more answer 503.
    pub max_concurrent_uploads: usize,
    /// An upload slower than this (after a 10 s grace) is cut with 408.
    pub upload_min_bytes_per_sec: u64,
    /// External URL sources are revalidated (conditional GET) after this many seconds.
    pub source_revalidate_secs: u64,
    /// Several nodes over one store (`[cluster]`): who to tell of a delete or an overwrite.
    pub cluster: ClusterConfig,
    /// A second-level derivative cache shared by the nodes, on S3-compatible storage
    /// (`[shared_cache]`, the fields of an s3 store); off when absent.
    pub shared_cache: Option<S3Config>,
    /// On SIGTERM: stop accepting, and give requests in flight this long to finish.
    pub shutdown_timeout_secs: u64,
    /// CDN purges sent when a stored file is deleted or overwritten (`[[purge_hooks]]`, kinds
    /// `webhook`, `fastly`, `cloudflare`, `cloudfront`; see `purge::HookConfig`).
    pub purge_hooks: Vec<crate::purge::HookConfig>,
}

/// Nodes over one shared store. A delete or an overwrite through any node is told to every
/// peer (`POST /internal/invalidate/HANDLE`, authenticated by `token`) before it answers, so no
/// node serves the old file's derivatives afterwards; `meta_ttl_ms` bounds how long a peer
/// that missed the message (a partition) may still use what it knew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Every node's base URL (`http://10.0.0.2:8080`); this node's own is recognised and skipped.
    pub peers: Vec<String>,
    /// Shared secret of the `/internal/` calls; required with peers.
    pub token: Option<String>,
    /// How long a file's metadata (its version) is trusted before the store is asked again;
    /// 0 trusts it until this node changes the file (one node, or a store nobody else writes).
    pub meta_ttl_ms: u64,
    /// How long a delete or an overwrite waits for its peers' acknowledgements.
    pub broadcast_timeout_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { peers: Vec::new(), token: None, meta_ttl_ms: 0, broadcast_timeout_ms: 2000 }
    }
}

impl ClusterConfig {
    /// The metadata lifetime that applies: with peers or a shared store, never forever.
    pub fn meta_ttl(&self, shared_store: bool) -> Option<std::time::Duration> {
        let ms = match self.meta_ttl_ms {
            0 if !self.peers.is_empty() || shared_store => 1000,
            0 => return None,
            ms => ms,
        };
        Some(std::time::Duration::from_millis(ms))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            public_url: None,
            max_upload_bytes: 5 << 30,
            max_source_bytes: 100 << 20,
            max_pixels: 100_000_000,
            cache_ttl_secs: 30 * 24 * 3600,
            cache_max_bytes: 10 << 30,
            cache_memory_bytes: 256 << 20,
            cache_sweep_secs: 60,
            source_memory_bytes: 256 << 20,
            decode_cache_bytes: 256 << 20,
            workers: 0,
            queue_len: 64,
            fetch_timeout_secs: 20,
            allow_private_networks: false,
            secret: None,
            api_keys: Vec::new(),
            apps: Vec::new(),
            log_format: LogFormat::Human,
            error_max_age_secs: 60,
            store: StoreConfig::Fs { root: None },
            source_allow_hosts: Vec::new(),
            source_deny_hosts: Vec::new(),
            source_cache_bytes: 1 << 30,
            multipart_timeout_secs: 3600,
            aliases: BTreeMap::new(),
            max_metadata_bytes: 16 << 20,
            max_chain: 30,
            max_upscale: 16.0,
            transform_timeout_ms: 30_000,
            auto_quality_target: 70.0,
            audio_timeout_ms: 600_000,
            width_ladder: vec![160, 240, 320, 400, 480, 560, 640, 768, 960, 1080, 1280, 1440, 1920, 2560, 3200, 3840],
            hint_default_width: 1280,
            hints_redirect: false,
            inline_svg: false,
            max_concurrent_uploads: 16,
            upload_min_bytes_per_sec: 4096,
            source_revalidate_secs: 3600,
            cluster: ClusterConfig::default(),
            shared_cache: None,
            shutdown_timeout_secs: 30,
            purge_hooks: Vec::new(),
        }
    }
}

/// The backend of the file store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StoreConfig {
    /// A directory (default: `DATA_DIR/originals`).
    Fs {
        #[serde(default)]
        root: Option<PathBuf>,
    },
    S3(S3Config),
}

/// A storage alias: `src://NAME/path` reads `path` from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AliasConfig {
    /// `NAME = "/a/directory"`.
    Dir(PathBuf),
    Typed(AliasKind),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AliasKind {
    Fs {
        root: PathBuf,
    },
    S3(S3Config),
    /// `base_url` + path, fetched like an external URL; the address guard applies unless the
    /// alias is `trusted` (an origin on a private network that you run).
    Http {
        base_url: String,
        #[serde(default)]
        trusted: bool,
    },
}

impl Config {
    /// Defaults, then the file, then `REFRACT_*` variables from `env`.
    pub fn load(file: Option<&Path>, env: impl Iterator<Item = (String, String)>) -> Result<Config, String> {
        let mut table = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
                text.parse::<toml::Table>().map_err(|e| format!("config {}: {e}", path.display()))?
            }
            None => toml::Table::new(),
        };
        let known = Config::field_names();
        for (name, value) in env {
            let Some(key) = name.strip_prefix("REFRACT_") else { continue };
            let key = key.to_ascii_lowercase();
            // Orchestrators inject variables of their own (Kubernetes: `REFRACT_PORT=tcp://…` for a
            // Service named `refract`); a typo must not pass silently, but neither may it stop a pod.
            if !known.contains(&key) {
                eprintln!("refract: warning: ignoring unknown environment variable {name}");
                continue;
            }
            table.insert(key, env_value(&value, name.ends_with("_KEYS") || name.ends_with("_HOSTS")));
        }
        let config =
            Config::deserialize(toml::Value::Table(table)).map_err(|e| format!("configuration: {}", e.message()))?;
        config.validate()?;
        Ok(config)
    }

    /// Every field's name, as the file and the environment spell it.
    fn field_names() -> Vec<String> {
        match toml::Value::try_from(Config::default()) {
            Ok(toml::Value::Table(t)) => {
                let mut names: Vec<String> = t.keys().cloned().collect();
                // optional fields are absent from a serialized default
                names.extend(["public_url", "secret", "shared_cache"].map(String::from));
                names
            }
            _ => ["public_url", "secret", "shared_cache"].map(String::from).to_vec(),
        }
    }

    /// Ranges and combinations, checked once at start: one line naming the field.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |field: &str, why: &str| Err(format!("configuration: `{field}` {why}"));
        if let Some(secret) = &self.secret {
            if weak_secret(secret) {
                return bad(
                    "secret",
                    &format!(
                        "must be at least {MIN_SECRET_LEN} bytes of real entropy (unset it to disable signatures)"
                    ),
                );
            }
        }
        self.validate_apps()?;
        self.validate_cluster()?;
        let ladder = &self.width_ladder;
        if ladder.is_empty() || ladder.len() > 64 || ladder.windows(2).any(|w| w[0] >= w[1]) || ladder[0] == 0 {
            return bad("width_ladder", "must be 1 to 64 widths, rising, each at least 1");
        }
        let ranges: [(&str, u64, u64, u64); 11] = [
            ("hint_default_width", self.hint_default_width as u64, 1, 10_000),
            ("max_pixels", self.max_pixels, 1, 1 << 32),
            ("max_upload_bytes", self.max_upload_bytes, 1, 1 << 40),
            ("max_source_bytes", self.max_source_bytes, 1, 1 << 40),
            ("workers", self.workers as u64, 0, 1024),
            ("max_chain", self.max_chain as u64, 1, 1000),
            ("transform_timeout_ms", self.transform_timeout_ms, 1, 3_600_000),
            ("audio_timeout_ms", self.audio_timeout_ms, 1, 86_400_000),
            ("max_concurrent_uploads", self.max_concurrent_uploads as u64, 1, 100_000),
            ("cache_ttl_secs", self.cache_ttl_secs, 1, 10 * 365 * 86_400),
            ("max_metadata_bytes", self.max_metadata_bytes, 1024, 1 << 30),
        ];
        for (field, value, lo, hi) in ranges {
            if !(lo..=hi).contains(&value) {
                return bad(field, &format!("is {value}; allowed {lo}..={hi}"));
            }
        }
        if !(30.0..=95.0).contains(&self.auto_quality_target) {
            return bad("auto_quality_target", "must be a SSIMULACRA2 score between 30 and 95");
        }
        if !(1.0..=1000.0).contains(&self.max_upscale) {
            return bad("max_upscale", "must be between 1 and 1000");
        }
        if self.cache_memory_bytes > self.cache_max_bytes {
            return bad("cache_memory_bytes", "is larger than cache_max_bytes");
        }
        Ok(())
    }

    /// Each app: a key, one or two strong secrets, a signature requirement it can meet, and a
    /// key no other app has.
    fn validate_cluster(&self) -> Result<(), String> {
        let c = &self.cluster;
        if !c.peers.is_empty() && c.token.as_deref().is_none_or(weak_secret) {
            return Err(format!(
                "configuration: `cluster.token` must be set, at least {MIN_SECRET_LEN} bytes, when `cluster.peers` are"
            ));
        }
        if let Some(p) = c.peers.iter().find(|p| !(p.starts_with("http://") || p.starts_with("https://"))) {
            return Err(format!("configuration: `cluster.peers` entry `{p}` is not an http(s) URL"));
        }
        if self.shared_cache.as_ref().is_some_and(|s| s.bucket.is_empty()) {
            return Err("configuration: `shared_cache` needs a `bucket`".into());
        }
        Ok(())
    }

    fn validate_apps(&self) -> Result<(), String> {
        if !self.apps.is_empty() && self.secret.is_some() && self.api_keys.is_empty() {
            // the legacy app accepts any key: beside apps it would answer for every unknown key
            return Err("configuration: `secret` without `api_keys` cannot be combined with `[[apps]]`; \
                        give the legacy app its `api_keys`, or make it an `[[apps]]` entry"
                .into());
        }
        let mut keys = std::collections::HashSet::new();
        for (i, app) in self.apps.iter().enumerate() {
            let bad = |why: String| Err(format!("configuration: `apps[{i}]` {why}"));
            if app.api_key.trim().is_empty() || app.api_key.contains(['/', '?', '#', ' ']) {
                return bad("needs an `api_key` without `/`, `?`, `#` or spaces".into());
            }
            if !keys.insert(app.api_key.as_str()) || self.api_keys.contains(&app.api_key) {
                return bad(format!("repeats the API key `{}`", app.api_key));
            }
            if app.secrets.len() > 2 {
                return bad("has more than two secrets (one, or two during a rotation)".into());
            }
            if app.secrets.iter().any(|s| weak_secret(s)) {
                return bad(format!("has a secret shorter than {MIN_SECRET_LEN} bytes or without entropy"));
            }
            if app.require_signature == Some(true) && app.secrets.is_empty() {
                return bad("requires signatures but has no secret to verify them".into());
            }
        }
        Ok(())
    }

    pub fn workers(&self) -> usize {
        if self.workers == 0 {
            num_cpus::get().max(1)
        } else {
            self.workers
        }
    }

    pub fn public_url(&self, listen: &str) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{listen}")).trim_end_matches('/').to_string()
    }
}

/// An application: what selects it (its API key), what verifies its policies (one secret, or
/// two while rotating), and what it may touch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub api_key: String,
    /// One secret, or two during a rotation (both verify).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Every call needs a valid policy; defaults to true when the app has a secret.
    #[serde(default)]
    pub require_signature: Option<bool>,
    /// Store `location`s the app may write (`s3`, `gcs`, `azure`, …); empty allows any.
    #[serde(default)]
    pub storage: Vec<String>,
    /// Containers the app may store to; empty allows any.
    #[serde(default)]
    pub containers: Vec<String>,
    /// Storage aliases the app may read; absent allows every configured alias.
    #[serde(default)]
    pub aliases: Option<Vec<String>>,
    /// How the answers of an app that requires signatures are cached.
    #[serde(default)]
    pub private_caching: PrivateCaching,
    /// Client hints the app's URLs follow without saying so: `dpr` (every `resize` without a
    /// `dpr` takes `dpr:auto`), `width` (a stored image fetched without a `resize` is resized
    /// to `width:auto`).
    #[serde(default)]
    pub client_hints: Vec<HintDefault>,
}

/// A client hint an app opts all its URLs into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HintDefault {
    Width,
    Dpr,
}

/// `no-cache`: an edge may store the answer once and must revalidate it with Refract at every
/// use, each user's credentials forwarded (one stored copy for all users). `private`: only the
/// user's own browser may store it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrivateCaching {
    #[default]
    NoCache,
    Private,
}

/// Shorter app secrets are refused at start: an HMAC key that can be guessed protects nothing.
pub const MIN_SECRET_LEN: usize = 16;

fn weak_secret(secret: &str) -> bool {
    secret.len() < MIN_SECRET_LEN || secret.bytes().all(|b| b == secret.as_bytes()[0])
}

fn env_value(v: &str, list: bool) -> toml::Value {
    // a table (`REFRACT_STORE='{ kind = "s3", bucket = "b" }'`) or an array, written as in TOML
    if v.trim_start().starts_with(['{', '[']) {
        if let Ok(t) = format!("v = {v}").parse::<toml::Table>() {
            if let Some(value) = t.get("v") {
                return value.clone();
            }
        }
    }
    if list {
        return toml::Value::Array(
            v.split(',').filter(|s| !s.is_empty()).map(|s| toml::Value::String(s.trim().into())).collect(),
        );
    }
    if let Ok(i) = v.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(f) = v.parse::<f64>() {
        return toml::Value::Float(f);
    }
    match v {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_and_unknown_keys() {
        let env = vec![("REFRACT_CACHE_TTL_SECS".to_string(), "5".to_string()), ("HOME".into(), "/x".into())];
        let c = Config::load(None, env.into_iter()).unwrap();
        assert_eq!(c.cache_ttl_secs, 5);
        // unknown variables (an orchestrator's, or a typo) are warned about and ignored
        let k8s = [("REFRACT_PORT", "tcp://10.0.0.7:8080"), ("REFRACT_SERVICE_HOST", "10.0.0.7")];
        let c = Config::load(None, k8s.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        assert_eq!(c.listen, Config::default().listen);
    }

    #[test]
    fn tables_come_from_the_environment_as_inline_toml() {
        let env = [
            ("REFRACT_STORE", r#"{ kind = "s3", bucket = "originals", endpoint = "http://s3:5000" }"#),
            ("REFRACT_SHARED_CACHE", r#"{ bucket = "derivatives", prefix = "d" }"#),
            ("REFRACT_CLUSTER", r#"{ peers = ["http://a:8080", "http://b:8080"], token = "a-cluster-token-0123" }"#),
        ];
        let c = Config::load(None, env.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        assert!(matches!(&c.store, StoreConfig::S3(s) if s.bucket == "originals"));
        assert_eq!(c.shared_cache.as_ref().map(|s| s.prefix.as_str()), Some("d"));
        assert_eq!(c.cluster.peers.len(), 2);
        assert_eq!(c.cluster.meta_ttl(false), Some(std::time::Duration::from_millis(1000)));
        assert_eq!(ClusterConfig::default().meta_ttl(false), None, "one node trusts what it wrote");
        let weak = [("REFRACT_CLUSTER", r#"{ peers = ["http://a:8080"] }"#)];
        let e = Config::load(None, weak.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap_err();
        assert!(e.contains("cluster.token"), "{e}");
    }

    #[test]
    fn apps_are_checked_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let app = |extra: &str| format!("{extra}\n[[apps]]\napi_key = \"K1\"\nsecrets = [\"a-long-enough-secret\"]\n");
        for (text, why) in [
            (app("secret = \"another-long-secret\""), "cannot be combined"),
            (app("") + "[[apps]]\napi_key = \"K1\"\n", "repeats the API key"),
            ("[[apps]]\napi_key = \"K2\"\nsecrets = [\"short\"]\n".to_string(), "secret shorter"),
            ("[[apps]]\napi_key = \"K2\"\nrequire_signature = true\n".to_string(), "no secret"),
            ("[[apps]]\napi_key = \"a/b\"\n".to_string(), "api_key"),
            (
                "[[apps]]\napi_key = \"K3\"\nsecrets = [\"a-long-enough-secret\", \"b-long-enough-secret\", \"c-long-enough-secret\"]\n"
                    .to_string(),
                "more than two",
            ),
        ] {
            std::fs::write(&path, &text).unwrap();
            let e = Config::load(Some(&path), std::iter::empty()).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
        std::fs::write(&path, app("secret = \"another-long-secret\"\napi_keys = [\"LEGACY\"]")).unwrap();
        assert_eq!(Config::load(Some(&path), std::iter::empty()).unwrap().apps.len(), 1);
    }

    #[test]
    fn the_file_stays_strict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "cache_ttl = 5\n").unwrap();
        let e = Config::load(Some(&path), std::iter::empty()).unwrap_err();
        assert!(e.contains("cache_ttl"), "{e}");
    }

    #[test]
    fn weak_secrets_and_ranges_are_refused() {
        let load = |k: &str, v: &str| Config::load(None, std::iter::once((k.to_string(), v.to_string())));
        for weak in ["", "short", "aaaaaaaaaaaaaaaaaaaa"] {
            assert!(load("REFRACT_SECRET", weak).unwrap_err().contains("secret"), "{weak:?}");
        }
        assert!(load("REFRACT_SECRET", "a-long-enough-secret").is_ok());
        assert!(load("REFRACT_MAX_PIXELS", "0").unwrap_err().contains("max_pixels"));
        assert!(load("REFRACT_WORKERS", "100000").unwrap_err().contains("workers"));
        assert!(load("REFRACT_MAX_UPSCALE", "0.5").unwrap_err().contains("max_upscale"));
        assert_eq!(load("REFRACT_MAX_UPSCALE", "2.5").unwrap().max_upscale, 2.5);
        assert!(load("REFRACT_AUTO_QUALITY_TARGET", "99").unwrap_err().contains("auto_quality_target"));
        assert_eq!(load("REFRACT_AUTO_QUALITY_TARGET", "75.5").unwrap().auto_quality_target, 75.5);
        // the pipeline's own default (`refract transform`) is the server's
        assert_eq!(Config::default().auto_quality_target, crate::pipeline::quality::DEFAULT_TARGET);
    }
}
