//! Test harness: starts the real `refract` binary on a loopback port with a fresh data dir,
//! and talks HTTP to it. Shared by every integration test file (`mod common;`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct TestServer {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    extra_env: Vec<(String, String)>,
    launch: Launch,
}

/// How a server process is started, beyond its environment: kept so that `restart` starts it the
/// same way.
#[derive(Debug, Clone, Default)]
struct Launch {
    /// `ulimit -v` (RLIMIT_AS, KiB) for the process.
    address_space_kib: Option<u64>,
    /// Keep the process's stderr (instead of letting it through to the test's own).
    capture_stderr: bool,
    /// What the process printed on stderr so far (when captured).
    stderr: Arc<Mutex<String>>,
}

/// A server that was expected not to start.
#[derive(Debug)]
pub struct FailedStart {
    /// Exit status. When the server started listening anyway it was killed and `listening` is set.
    pub status: std::process::ExitStatus,
    pub stderr: String,
    pub listening: bool,
}

impl TestServer {
    /// Start with embedded defaults on a fresh temporary data dir.
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// Start with extra `REFRACT_*` environment variables (e.g. a short cache TTL).
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self::launch(tmp, env, Launch::default())
    }

    /// Start with a TOML configuration file (for settings the environment cannot express, such
    /// as `[aliases]`).
    pub fn start_with_config(toml: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let file = dir.join("refract.toml");
        std::fs::write(&file, toml).unwrap();
        let env = vec![("REFRACT_CONFIG_FILE_FOR_TESTS".to_string(), file.to_string_lossy().to_string())];
        Self::launch(tmp, env, Launch::default())
    }

    /// Start under an address-space limit (`ulimit -v`, in KiB), so that an allocation the size of
    /// a decompression bomb makes the process abort instead of succeeding on a large machine. The
    /// allocators are told to reserve address space in small steps (see `command`).
    /// Extra `REFRACT_*` variables and an optional TOML file (as for `start_with_config`).
    pub fn start_capped(address_space_kib: u64, env: &[(&str, &str)], config_toml: Option<&str>) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let env = env_with_config(tmp.path(), env, config_toml);
        Self::launch(tmp, env, Launch { address_space_kib: Some(address_space_kib), ..Launch::default() })
    }

    /// Start with extra variables and an optional TOML file, keeping what the server prints on
    /// stderr (see `stderr_text`).
    pub fn start_capturing_stderr(env: &[(&str, &str)], config_toml: Option<&str>) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let env = env_with_config(tmp.path(), env, config_toml);
        Self::launch(tmp, env, Launch { capture_stderr: true, ..Launch::default() })
    }

    /// Start a server that is expected to refuse its configuration: wait (at most `timeout`) for
    /// it to exit, and return its status and stderr. A server that starts listening instead is
    /// killed at once (`listening` is then set).
    pub fn start_expecting_failure(env: &[(&str, &str)], config_toml: Option<&str>) -> FailedStart {
        let tmp = tempfile::tempdir().expect("tempdir");
        let env = env_with_config(tmp.path(), env, config_toml);
        let mut cmd = command(tmp.path(), &env, None);
        cmd.stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn refract");
        let stderr = drain(child.stderr.take().unwrap(), Arc::new(Mutex::new(String::new())));
        let stdout = drain(child.stdout.take().unwrap(), Arc::new(Mutex::new(String::new())));
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut listening = false;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for refract") {
                break status;
            }
            if stdout.lock().unwrap().contains("refract listening on ") || Instant::now() > deadline {
                listening = stdout.lock().unwrap().contains("refract listening on ");
                child.kill().ok();
                break child.wait().expect("wait for refract");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // the process is gone: its pipes reach end-of-file soon
        let until = Instant::now() + Duration::from_secs(2);
        let mut text = stderr.lock().unwrap().clone();
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
            let now = stderr.lock().unwrap().clone();
            if now == text {
                break;
            }
            text = now;
        }
        FailedStart { status, stderr: text, listening }
    }

    fn launch(tmp: tempfile::TempDir, env: Vec<(String, String)>, launch: Launch) -> Self {
        let dir = tmp.path().to_path_buf();
        let (child, base) = spawn(&dir, &env, &launch);
        TestServer { child, base, data_dir: dir, _tmp: Some(tmp), extra_env: env, launch }
    }

    /// What the server printed on stderr so far (only with `start_capturing_stderr`).
    pub fn stderr_text(&self) -> String {
        self.launch.stderr.lock().unwrap().clone()
    }

    /// Whether the server process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stop the process (SIGKILL, like a crash) and start it again on the same data dir.
    pub fn restart(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        let (child, base) = spawn(&self.data_dir, &self.extra_env, &self.launch);
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

/// The server's command line: `refract serve` on a loopback port, with none of the test runner's own
/// `REFRACT_*` variables (only the test's), optionally under `ulimit -v`.
fn command(dir: &Path, env: &[(String, String)], address_space_kib: Option<u64>) -> Command {
    let bin = env!("CARGO_BIN_EXE_refract");
    let mut cmd = match address_space_kib {
        Some(kib) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\"")).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    if address_space_kib.is_some() {
        // Make the address space measure what the process uses, not what its allocators reserve
        // up front: mimalloc reserves 1 GiB arenas and glibc 64 MiB per thread arena, which would
        // otherwise eat most of a cap before the first request.
        cmd.env("MIMALLOC_ARENA_RESERVE", "64M").env("MALLOC_ARENA_MAX", "2");
    }
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn,symphonia=error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, _) in std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("REFRACT_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        if k == "REFRACT_CONFIG_FILE_FOR_TESTS" {
            cmd.arg("--config").arg(v);
        } else {
            cmd.env(k, v);
        }
    }
    cmd
}

/// The test's variables, plus the TOML file (written into `dir`) when there is one.
fn env_with_config(dir: &Path, env: &[(&str, &str)], config_toml: Option<&str>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if let Some(toml) = config_toml {
        let file = dir.join("refract.toml");
        std::fs::write(&file, toml).unwrap();
        env.push(("REFRACT_CONFIG_FILE_FOR_TESTS".to_string(), file.to_string_lossy().to_string()));
    }
    env
}

/// Read a pipe to its end on a thread of its own, appending to `into` (lossy UTF-8).
fn drain(mut pipe: impl std::io::Read + Send + 'static, into: Arc<Mutex<String>>) -> Arc<Mutex<String>> {
    let shared = into.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            shared.lock().unwrap_or_else(|e| e.into_inner()).push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    into
}

#[allow(clippy::zombie_processes)] // the caller owns the child and kills it on drop
fn spawn(dir: &Path, env: &[(String, String)], launch: &Launch) -> (Child, String) {
    let mut cmd = command(dir, env, launch.address_space_kib);
    if launch.capture_stderr {
        cmd.stderr(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("spawn refract");
    if launch.capture_stderr {
        drain(child.stderr.take().unwrap(), launch.stderr.clone());
    }
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().ok();
            std::thread::sleep(Duration::from_millis(100));
            let stderr = launch.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let stderr = if launch.capture_stderr { stderr } else { "(not captured: see the test's output)".into() };
            panic!("refract exited before listening ({status:?}); stderr: {stderr}");
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

/// One request a `RemoteImage` received.
#[derive(Debug, Clone)]
pub struct RemoteRequest {
    pub method: String,
    pub path: String,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    /// The status it was answered with (200 or 304).
    pub status: u16,
}

struct RemoteState {
    body: Vec<u8>,
    content_type: String,
    etag: String,
    last_modified: String,
    version: u64,
    requests: Vec<RemoteRequest>,
}

/// A tiny HTTP/1.1 server on a loopback port, standing for an external image host: it serves one
/// mutable file at any path with `ETag` and `Last-Modified`, answers conditional requests with 304
/// when the validators match, closes the connection after each answer, and records every request.
pub struct RemoteImage {
    pub port: u16,
    state: Arc<Mutex<RemoteState>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

/// RFC 7231 IMF-fixdate of a Unix time.
pub fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil-from-days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

impl RemoteImage {
    pub fn start(body: Vec<u8>, content_type: &str) -> RemoteImage {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind remote");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(RemoteState {
            body: Vec::new(),
            content_type: String::new(),
            etag: String::new(),
            last_modified: String::new(),
            version: 0,
            requests: Vec::new(),
        }));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let remote = RemoteImage { port, state: state.clone(), stop: stop.clone() };
        remote.set(body, content_type);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = conn {
                    serve_remote(stream, &state);
                }
            }
        });
        remote
    }

    /// Replace the file: a new body, a new `ETag` and a later `Last-Modified`.
    pub fn set(&self, body: Vec<u8>, content_type: &str) {
        let mut st = self.state.lock().unwrap();
        st.version += 1;
        st.body = body;
        st.content_type = content_type.to_string();
        st.etag = format!("\"refract-test-v{}\"", st.version);
        // a fixed past date per version: later versions are later, and never in the future
        st.last_modified = http_date(1_600_000_000 + st.version * 86_400);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn etag(&self) -> String {
        self.state.lock().unwrap().etag.clone()
    }

    pub fn last_modified(&self) -> String {
        self.state.lock().unwrap().last_modified.clone()
    }

    pub fn requests(&self) -> Vec<RemoteRequest> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for RemoteImage {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // wake the accept loop up
        std::net::TcpStream::connect(("127.0.0.1", self.port)).ok();
    }
}

fn serve_remote(mut stream: std::net::TcpStream, state: &Mutex<RemoteState>) {
    use std::io::{Read, Write};
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let mut if_none_match = None;
    let mut if_modified_since = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "if-none-match" => if_none_match = Some(value.trim().to_string()),
                "if-modified-since" => if_modified_since = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    let mut st = state.lock().unwrap();
    let not_modified = match (&if_none_match, &if_modified_since) {
        (Some(inm), _) => inm.split(',').any(|t| t.trim().trim_start_matches("W/") == st.etag || t.trim() == "*"),
        (None, Some(ims)) => *ims == st.last_modified,
        (None, None) => false,
    };
    let status = if not_modified { 304 } else { 200 };
    st.requests.push(RemoteRequest { method: method.clone(), path, if_none_match, if_modified_since, status });
    let mut answer = if not_modified {
        format!(
            "HTTP/1.1 304 Not Modified\r\nETag: {}\r\nLast-Modified: {}\r\nConnection: close\r\n\r\n",
            st.etag, st.last_modified
        )
        .into_bytes()
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nETag: {}\r\nLast-Modified: {}\r\n\
             Connection: close\r\n\r\n",
            st.content_type,
            st.body.len(),
            st.etag,
            st.last_modified
        )
        .into_bytes()
    };
    if !not_modified && method != "HEAD" {
        answer.extend_from_slice(&st.body);
    }
    drop(st);
    stream.write_all(&answer).ok();
    stream.flush().ok();
    stream.shutdown(std::net::Shutdown::Write).ok();
    // let the client read everything before the socket goes away
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

/// One moto server (an S3-compatible server from PyPI, started by `scripts/moto.sh`) for this
/// test binary, stopped by the script's watcher when the binary exits: its endpoint. Each test
/// uses buckets of its own.
pub fn moto_endpoint() -> &'static str {
    static MOTO: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MOTO.get_or_init(|| {
        let pidfile = std::env::temp_dir().join(format!("refract-moto-{}.pid", std::process::id()));
        let out = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/moto.sh"))
            .arg("")
            .arg(&pidfile)
            .env("MOTO_WATCH_PID", std::process::id().to_string())
            .output()
            .expect("run scripts/moto.sh");
        assert!(out.status.success(), "moto did not start: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}
