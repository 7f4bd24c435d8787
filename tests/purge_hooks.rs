//! CDN purge hooks against a real local receiver: each kind's request on delete and on
//! overwrite, retries with backoff, the dead-letter file, and credentials kept out of the log.

mod common;

use common::TestServer;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    /// Path and query.
    path: String,
    /// Names lowercased.
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

#[derive(Default)]
struct Script {
    received: Vec<Received>,
    /// The next this many requests are answered with `fail_status`.
    failures_left: usize,
    fail_status: u16,
    /// Answered in the failures' body (to check that it is scrubbed from the log).
    fail_body: String,
}

/// A tiny HTTP/1.1 server on a loopback port that records every request and answers 200, or
/// a scripted error for the next N requests.
struct Receiver {
    port: u16,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = Arc::new(Mutex::new(Script::default()));
        let shared = script.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Receiver { port, script }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn fail_next(&self, n: usize, status: u16, body: &str) {
        let mut s = self.script.lock().unwrap();
        (s.failures_left, s.fail_status, s.fail_body) = (n, status, body.to_string());
    }

    fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    /// Wait (at most 15 s) until `n` requests whose path starts with `prefix` have arrived.
    fn wait_for(&self, prefix: &str, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got: Vec<Received> = self.received().into_iter().filter(|r| r.path.starts_with(prefix)).collect();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "waited for {n} requests to {prefix}, got {got:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve(mut stream: TcpStream, script: &Mutex<Script>) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, path) = (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    if stream.read_exact(&mut body).is_err() {
        return;
    }
    let (status, answer) = {
        let mut s = script.lock().unwrap();
        s.received.push(Received { method, path, headers, body });
        if s.failures_left > 0 {
            s.failures_left -= 1;
            (s.fail_status, s.fail_body.clone())
        } else {
            (200, r#"{"status":"ok"}"#.to_string())
        }
    };
    let reply = format!(
        "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    stream.write_all(reply.as_bytes()).ok();
    stream.flush().ok();
}

const WEBHOOK_TOKEN: &str = "webhook-secret-4f2a9c";
const FASTLY_TOKEN: &str = "fastly-secret-8d1e77";
const CLOUDFLARE_TOKEN: &str = "cloudflare-secret-5b3c21";
const AWS_SECRET: &str = "aws-secret-key-0c9f7e6d5a";

fn all_kinds(base: &str) -> String {
    format!(
        r#"
[[purge_hooks]]
kind = "webhook"
url = "{base}/hook?site=1"
headers = {{ Authorization = "Bearer {WEBHOOK_TOKEN}" }}
backoff_ms = 50

[[purge_hooks]]
kind = "fastly"
service_id = "SU1Z0isxPaozGVKXdv0eY"
token = "{FASTLY_TOKEN}"
api = "{base}"
backoff_ms = 50

[[purge_hooks]]
kind = "cloudflare"
zone_id = "023e105f4ecef8ad9ca31a8372d0c353"
token = "{CLOUDFLARE_TOKEN}"
api = "{base}"
backoff_ms = 50

[[purge_hooks]]
kind = "cloudfront"
distribution_id = "EDFDVBD6EXAMPLE"
access_key_id = "AKIAIOSFODNN7EXAMPLE"
secret_access_key = "{AWS_SECRET}"
paths = ["/{{handle}}", "/{{handle}}/*"]
api = "{base}"
backoff_ms = 50
"#
    )
}

fn upload_text(s: &TestServer) -> String {
    s.upload(b"version one of the file", "notes.txt")
}

fn no_secret_in(text: &str, what: &str) {
    for secret in [WEBHOOK_TOKEN, FASTLY_TOKEN, CLOUDFLARE_TOKEN, AWS_SECRET] {
        assert!(!text.contains(secret), "{what} shows a credential:\n{text}");
    }
}

/// Check the four requests of one event (`delete` or `overwrite`) for `handle`.
fn check_event(rx: &Receiver, handle: &str, event: &str, nth: usize) {
    let hook = &rx.wait_for("/hook", nth)[nth - 1];
    assert_eq!(hook.method, "POST");
    assert_eq!(hook.path, "/hook?site=1");
    assert_eq!(hook.header("authorization"), format!("Bearer {WEBHOOK_TOKEN}"));
    assert_eq!(hook.header("content-type"), "application/json");
    assert_eq!(hook.json(), serde_json::json!({"event": event, "handle": handle, "keys": [handle]}));

    let fastly = &rx.wait_for("/service/", nth)[nth - 1];
    assert_eq!(fastly.method, "POST");
    assert_eq!(fastly.path, "/service/SU1Z0isxPaozGVKXdv0eY/purge");
    assert_eq!(fastly.header("fastly-key"), FASTLY_TOKEN);
    assert_eq!(fastly.header("surrogate-key"), handle);

    let cf = &rx.wait_for("/client/v4/", nth)[nth - 1];
    assert_eq!(cf.method, "POST");
    assert_eq!(cf.path, "/client/v4/zones/023e105f4ecef8ad9ca31a8372d0c353/purge_cache");
    assert_eq!(cf.header("authorization"), format!("Bearer {CLOUDFLARE_TOKEN}"));
    assert_eq!(cf.json(), serde_json::json!({"tags": [handle]}));

    let aws = &rx.wait_for("/2020-05-31/", nth)[nth - 1];
    assert_eq!(aws.method, "POST");
    assert_eq!(aws.path, "/2020-05-31/distribution/EDFDVBD6EXAMPLE/invalidation");
    let xml = aws.text();
    assert!(xml.contains("<InvalidationBatch xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\">"), "{xml}");
    let items = format!("<Quantity>2</Quantity><Items><Path>/{handle}</Path><Path>/{handle}/*</Path></Items>");
    assert!(xml.contains(&items), "{xml}");
    assert!(xml.contains(&format!("<CallerReference>refract-{handle}-")), "{xml}");
    assert_eq!(aws.header("host"), format!("127.0.0.1:{}", rx.port));
    let date = aws.header("x-amz-date");
    assert!(date.len() == 16 && date.ends_with('Z'), "{date}");
    let auth = aws.header("authorization");
    let scope =
        format!("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/{}/us-east-1/cloudfront/aws4_request, ", &date[..8]);
    assert!(auth.starts_with(&scope), "{auth}");
    assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date, Signature="), "{auth}");
    assert_eq!(auth.rsplit('=').next().unwrap().len(), 64, "{auth}");
}

#[test]
fn every_kind_is_told_of_overwrite_and_delete() {
    let rx = Receiver::start();
    let s = TestServer::start_capturing_stderr(&[("RUST_LOG", "debug")], Some(&all_kinds(&rx.base())));
    let h = upload_text(&s);
    assert!(rx.received().is_empty(), "a new file purges nothing");

    let r = s.client().post(s.url(&format!("/api/file/{h}"))).body("version two").send().unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text());
    check_event(&rx, &h, "overwrite", 1);

    let r = s.client().delete(s.url(&format!("/api/file/{h}"))).send().unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text());
    check_event(&rx, &h, "delete", 2);
    // the same caller reference is never used for two invalidations
    let refs: Vec<String> = rx.wait_for("/2020-05-31/", 2).iter().map(Received::text).collect();
    assert_ne!(refs[0], refs[1]);

    assert_eq!(rx.received().len(), 8, "one request per hook and event");
    for hook in ["webhook", "fastly", "cloudflare", "cloudfront"] {
        let sent = s.metric("refract_cdn_purges_total", &format!("hook=\"{hook}\",outcome=\"sent\""));
        assert_eq!(sent, 2.0, "{hook}");
    }
    assert_eq!(s.metric("refract_cdn_purges_total", "outcome=\"failed\""), 0.0);
    assert!(!s.data_dir.join("purge-dead-letter.jsonl").exists());
    let log = s.stderr_text();
    assert!(log.contains("CDN purge sent"), "{log}");
    no_secret_in(&log, "the server's log (debug)");
}

#[test]
fn a_failed_purge_is_retried_with_backoff() {
    let rx = Receiver::start();
    let config = format!(
        "[[purge_hooks]]\nkind = \"fastly\"\nservice_id = \"S1\"\ntoken = \"{FASTLY_TOKEN}\"\napi = \"{}\"\n\
         attempts = 4\nbackoff_ms = 50\n",
        rx.base()
    );
    let s = TestServer::start_capturing_stderr(&[], Some(&config));
    let h = upload_text(&s);
    rx.fail_next(2, 500, "try later");
    let started = Instant::now();
    assert_eq!(s.client().delete(s.url(&format!("/api/file/{h}"))).send().unwrap().status(), 200);
    let got = rx.wait_for("/service/S1/purge", 3);
    // 50 ms, then 100 ms (each up to a fifth more)
    assert!(started.elapsed() >= Duration::from_millis(150), "{:?}", started.elapsed());
    assert!(got.iter().all(|r| r.header("surrogate-key") == h));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.received().len(), 3, "no attempt after the one that succeeded");
    assert_eq!(s.metric("refract_cdn_purges_total", "outcome=\"failed\""), 2.0);
    assert_eq!(s.metric("refract_cdn_purges_total", "outcome=\"sent\""), 1.0);
    assert_eq!(s.metric("refract_cdn_purges_total", "outcome=\"dead_letter\""), 0.0);
    assert!(!s.data_dir.join("purge-dead-letter.jsonl").exists());
}

/// Wait (at most 15 s) for `n` lines in the dead-letter file.
fn dead_letters(s: &TestServer, n: usize) -> Vec<serde_json::Value> {
    let path = s.data_dir.join("purge-dead-letter.jsonl");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if lines.len() >= n {
            no_secret_in(&text, "the dead-letter file");
            return lines;
        }
        assert!(Instant::now() < deadline, "waited for {n} dead letters, got {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_purge_that_keeps_failing_is_dead_lettered() {
    let rx = Receiver::start();
    // a port nothing listens on: connection refused, retried like a 5xx
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        r#"
[[purge_hooks]]
kind = "cloudflare"
name = "edge"
zone_id = "Z1"
token = "{CLOUDFLARE_TOKEN}"
api = "{base}"
attempts = 3
backoff_ms = 50

[[purge_hooks]]
kind = "webhook"
name = "down"
url = "http://127.0.0.1:{closed}/hook"
headers = {{ X-Api-Key = "{WEBHOOK_TOKEN}" }}
attempts = 2
backoff_ms = 50
"#,
        base = rx.base()
    );
    let s = TestServer::start_capturing_stderr(&[], Some(&config));
    let h = upload_text(&s);
    // the CDN answers 503, echoing the token it was sent: the log and the file must not show it
    rx.fail_next(100, 503, &format!("overloaded; your token was {CLOUDFLARE_TOKEN}"));
    assert_eq!(s.client().delete(s.url(&format!("/api/file/{h}"))).send().unwrap().status(), 200);
    let mut lines = dead_letters(&s, 2);
    lines.sort_by_key(|l| l["hook"].as_str().unwrap().to_string());
    let (down, edge) = (&lines[0], &lines[1]);

    assert_eq!(edge["hook"], "edge");
    assert_eq!(edge["kind"], "cloudflare");
    assert_eq!(edge["event"], "delete");
    assert_eq!(edge["handle"], h.as_str());
    assert_eq!(edge["keys"], serde_json::json!([h]));
    assert_eq!(edge["attempts"], 3);
    let error = edge["error"].as_str().unwrap();
    assert!(error.starts_with("HTTP 503") && error.contains("[redacted]"), "{error}");
    assert!(edge["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(rx.wait_for("/client/v4/zones/Z1/purge_cache", 3).len(), 3);

    assert_eq!(down["hook"], "down");
    assert_eq!(down["attempts"], 2);
    assert!(!down["error"].as_str().unwrap().is_empty());

    assert_eq!(s.metric("refract_cdn_purges_total", "hook=\"edge\",outcome=\"failed\""), 3.0);
    assert_eq!(s.metric("refract_cdn_purges_total", "hook=\"edge\",outcome=\"dead_letter\""), 1.0);
    assert_eq!(s.metric("refract_cdn_purges_total", "hook=\"down\",outcome=\"dead_letter\""), 1.0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.received().len(), 3, "no attempt after the last");
    let log = s.stderr_text();
    assert!(log.contains("CDN purge given up"), "{log}");
    assert!(log.contains("edge") && log.contains("down"), "the log names the hooks:\n{log}");
    no_secret_in(&log, "the server's log");
}

#[test]
fn a_client_error_is_not_retried() {
    let rx = Receiver::start();
    let config = format!(
        "[[purge_hooks]]\nkind = \"fastly\"\nservice_id = \"S1\"\ntoken = \"{FASTLY_TOKEN}\"\napi = \"{}\"\n\
         attempts = 5\nbackoff_ms = 50\n",
        rx.base()
    );
    let s = TestServer::start_capturing_stderr(&[], Some(&config));
    let h = upload_text(&s);
    rx.fail_next(1, 403, "bad token");
    assert_eq!(s.client().delete(s.url(&format!("/api/file/{h}"))).send().unwrap().status(), 200);
    let line = &dead_letters(&s, 1)[0];
    assert_eq!(line["attempts"], 1);
    assert_eq!(line["error"], "HTTP 403: bad token");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.received().len(), 1);
    no_secret_in(&s.stderr_text(), "the server's log");
}

#[test]
fn a_bad_hook_stops_the_server_at_start() {
    let failed = TestServer::start_expecting_failure(
        &[],
        Some("[[purge_hooks]]\nkind = \"cloudfront\"\ndistribution_id = \"D\"\naccess_key_id = \"A\"\n"),
    );
    assert!(!failed.status.success() && !failed.listening);
    assert!(failed.stderr.contains("purge_hooks[0]"), "{}", failed.stderr);
}
