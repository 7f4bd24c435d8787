//! Test harness: starts the real `refract` binary on a loopback port with a fresh data dir,
//! and talks HTTP to it. Shared by every integration test file (`mod common;`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct TestServer {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    extra_env: Vec<(String, String)>,
}

impl TestServer {
    /// Start with embedded defaults on a fresh temporary data dir.
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// Start with extra `REFRACT_*` environment variables (e.g. a short cache TTL).
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (child, base) = spawn(&dir, &env);
        TestServer { child, base, data_dir: dir, _tmp: Some(tmp), extra_env: env }
    }

    /// Start with a TOML configuration file (for settings the environment cannot express, such
    /// as `[aliases]`).
    pub fn start_with_config(toml: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let file = dir.join("refract.toml");
        std::fs::write(&file, toml).unwrap();
        let env = vec![("REFRACT_CONFIG_FILE_FOR_TESTS".to_string(), file.to_string_lossy().to_string())];
        let (child, base) = spawn(&dir, &env);
        TestServer { child, base, data_dir: dir, _tmp: Some(tmp), extra_env: env }
    }

    /// Stop the process (SIGKILL, like a crash) and start it again on the same data dir.
    pub fn restart(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        let (child, base) = spawn(&self.data_dir, &self.extra_env);
        self.child = child;
        self.base = base;
    }

    /// Process id of the server (for RSS checks).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.client().get(self.url(path)).send().expect("GET")
    }

    /// Upload raw bytes through the store API; returns the new handle.
    pub fn upload(&self, bytes: &[u8], filename: &str) -> String {
        let resp = self
            .client()
            .post(self.url(&format!("/api/store/S3?key=test&filename={filename}")))
            .body(bytes.to_vec())
            .send()
            .expect("upload");
        assert_eq!(resp.status(), 200, "upload of {filename} failed: {:?}", resp.text());
        let json: serde_json::Value = resp.json().unwrap();
        json["handle"].as_str().expect("handle in store answer").to_string()
    }

    /// POST bytes to the store API with extra query parameters (key, policy, signature…).
    pub fn store(&self, bytes: &[u8], query: &str) -> reqwest::blocking::Response {
        self.client().post(self.url(&format!("/api/store/S3?{query}"))).body(bytes.to_vec()).send().expect("upload")
    }

    pub fn upload_fixture(&self, name: &str) -> String {
        self.upload(&fixture(name), name)
    }

    /// Current value of a Prometheus counter/gauge (sum over all label sets matching `filter`).
    pub fn metric(&self, name: &str, filter: &str) -> f64 {
        let text = self.get("/metrics").text().unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.starts_with(name)
                    && (l.as_bytes().get(name.len()) == Some(&b' ') || l.as_bytes().get(name.len()) == Some(&b'{'))
            })
            .filter(|l| l.contains(filter))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

#[allow(clippy::zombie_processes)] // the caller owns the child and kills it on drop
fn spawn(dir: &Path, env: &[(String, String)]) -> (Child, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_refract"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        if k == "REFRACT_CONFIG_FILE_FOR_TESTS" {
            cmd.arg("--config").arg(v);
        } else {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.spawn().expect("spawn refract");
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("refract exited before listening");
        }
        if let Some(addr) = line.trim().strip_prefix("refract listening on ") {
            let base = addr.trim().to_string();
            // keep draining stdout so the child never blocks on a full pipe
            std::thread::spawn(move || {
                let mut sink = String::new();
                while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                    sink.clear();
                }
            });
            return (child, base);
        }
    }
}

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Decode an answer's bytes, panicking with the body text when it is not an image.
pub fn decode(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes)
        .unwrap_or_else(|e| panic!("not an image ({e}): {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)])))
}

/// Hex HMAC-SHA256 of a policy, as Filestack signs it.
pub fn sign(secret: &str, policy: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(policy.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}
