//! One typed configuration: defaults ← TOML file ← `REFRACT_*` environment ← command line.

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
    /// How often expired and over-budget entries are swept.
    pub cache_sweep_secs: u64,
    /// Transform workers (0 = one per core).
    pub workers: usize,
    /// Transforms allowed to wait for a worker before answering 503.
    pub queue_len: usize,
    pub fetch_timeout_secs: u64,
    /// Let external sources resolve to private/loopback addresses (tests, trusted networks).
    pub allow_private_networks: bool,
    /// App secret for HMAC-SHA256 policies; when set every request needs a valid signature.
    pub secret: Option<String>,
    /// Accepted API keys; empty accepts any.
    pub api_keys: Vec<String>,
    pub log_format: LogFormat,
    /// `max-age` of 4xx answers, so an edge absorbs repeated bad requests.
    pub error_max_age_secs: u64,
    /// Storage aliases for `src://alias/path`: alias → local directory.
    pub aliases: BTreeMap<String, PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            public_url: None,
            max_upload_bytes: 100 << 20,
            max_source_bytes: 100 << 20,
            max_pixels: 100_000_000,
            cache_ttl_secs: 30 * 24 * 3600,
            cache_max_bytes: 10 << 30,
            cache_memory_bytes: 256 << 20,
            cache_sweep_secs: 60,
            source_memory_bytes: 256 << 20,
            workers: 0,
            queue_len: 64,
            fetch_timeout_secs: 20,
            allow_private_networks: false,
            secret: None,
            api_keys: Vec::new(),
            log_format: LogFormat::Human,
            error_max_age_secs: 60,
            aliases: BTreeMap::new(),
        }
    }
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
        for (name, value) in env {
            let Some(key) = name.strip_prefix("REFRACT_") else { continue };
            let key = key.to_ascii_lowercase();
            table.insert(key, env_value(&value, name.ends_with("_KEYS")));
        }
        Config::deserialize(toml::Value::Table(table)).map_err(|e| format!("configuration: {}", e.message()))
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

fn env_value(v: &str, list: bool) -> toml::Value {
    if list {
        return toml::Value::Array(
            v.split(',').filter(|s| !s.is_empty()).map(|s| toml::Value::String(s.trim().into())).collect(),
        );
    }
    if let Ok(i) = v.parse::<i64>() {
        return toml::Value::Integer(i);
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
        let bad = vec![("REFRACT_CACHE_TTL".to_string(), "5".to_string())];
        let e = Config::load(None, bad.into_iter()).unwrap_err();
        assert!(e.contains("cache_ttl"), "{e}");
    }
}
