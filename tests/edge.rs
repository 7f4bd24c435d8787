//! The edge: a real Varnish (`deploy/varnish/refract.vcl`, started by `scripts/varnish.sh` on a
//! loopback port) in front of Refract. A private derivative (its app requires signatures) is
//! stored once at the edge and revalidated for every user with that user's own `Authorization`
//! header: Refract answers 304 from its derivative index, so one transform serves every user,
//! while bad or missing credentials get Refract's 403/401 and never the stored bytes.
//! Needs `varnishd` (`scripts/test.sh` installs the Debian package): without it the test fails.

mod common;

use common::{decode, fixture, TestServer};
use reqwest::blocking::Response;
use std::process::Command;

const SECRET: &str = "edge-app-secret-0123456789";

const CONFIG: &str = r#"
[[apps]]
api_key = "EdgeAppKey0001"
secrets = ["edge-app-secret-0123456789"]
require_signature = true

[[apps]]
api_key = "EdgePublicKey01"
"#;

/// Varnish in front of a Refract server, stopped on drop (and by `varnish.sh`'s watcher when
/// the test binary ends).
struct Edge {
    base: String,
    pid: u32,
}

impl Edge {
    fn start(backend: &str) -> Edge {
        let installed = Command::new("sh")
            .arg("-c")
            .arg("command -v varnishd >/dev/null || test -x /usr/sbin/varnishd")
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            installed,
            "varnishd is not installed: this test drives a real Varnish in front of Refract. \
             Install it with `apt-get install varnish` (scripts/test.sh does it)."
        );
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("varnish.pid");
        let log = dir.path().join("varnishd.log");
        let out = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/varnish.sh"))
            .arg(backend.trim_start_matches("http://"))
            .arg("")
            .arg(&pidfile)
            .env("VARNISH_WATCH_PID", std::process::id().to_string())
            .env("VARNISH_STORAGE", "malloc,64m")
            .env("VARNISH_LOG", &log)
            .output()
            .expect("run scripts/varnish.sh");
        assert!(
            out.status.success(),
            "varnish did not start: {}\nvarnishd: {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        Edge { base: String::from_utf8(out.stdout).unwrap().trim().to_string(), pid }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        // SIGTERM: varnishd's manager stops its worker child and exits
        Command::new("kill").arg(self.pid.to_string()).status().ok();
    }
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE.encode(s)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// `Bearer POLICY.SIGNATURE` for a policy signed with `secret`.
fn bearer(secret: &str, policy_json: &str) -> String {
    let p = b64(policy_json);
    format!("Bearer {p}.{}", common::sign(secret, &p))
}

fn header(r: &Response, name: &str) -> String {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// What happened at the edge (`X-Edge`), the status, the headers and the body of one GET.
struct Got {
    status: u16,
    edge: String,
    cache_control: String,
    etag: String,
    body: Vec<u8>,
}

fn get(client: &reqwest::blocking::Client, url: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().expect("GET through the edge");
    Got {
        status: r.status().as_u16(),
        edge: header(&r, "x-edge"),
        cache_control: header(&r, "cache-control"),
        etag: header(&r, "etag"),
        body: r.bytes().unwrap().to_vec(),
    }
}

fn is_png(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG")
}

#[test]
fn a_private_derivative_is_stored_once_at_the_edge_and_revalidated_for_every_user() {
    let s = TestServer::start_with_config(CONFIG);
    let upload = format!(r#"{{"expiry":{}}}"#, now() + 3600);
    let p = b64(&upload);
    let r = s.store(
        &fixture("hopper.png"),
        &format!("key=EdgeAppKey0001&policy={p}&signature={}", common::sign(SECRET, &p)),
    );
    assert_eq!(r.status(), 200, "upload: {:?}", r.text());
    let handle = r.json::<serde_json::Value>().unwrap()["handle"].as_str().unwrap().to_string();

    let edge = Edge::start(&s.base);
    let c = s.client();
    let path = format!("/resize=width:100/{handle}");
    let url = edge.url(&path);
    let transforms = || s.metric("refract_transforms_total", "");
    let not_modified = || s.metric("refract_not_modified_total", r#"from="index""#);

    let user_a = bearer(SECRET, &format!(r#"{{"expiry":{},"call":["read","convert"]}}"#, now() + 3600));
    let user_b = bearer(SECRET, &format!(r#"{{"expiry":{},"call":["read","convert"]}}"#, now() + 7200));
    let user_c = bearer("not-the-app-secret", &format!(r#"{{"expiry":{},"call":["read","convert"]}}"#, now() + 3600));

    // a. the first user: a miss at the edge, one transform at Refract
    let (t0, nm0) = (transforms(), not_modified());
    let a = get(&c, &url, &[("Authorization", &user_a)]);
    assert_eq!(a.status, 200, "user A: {}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.edge, "miss");
    assert_eq!(decode(&a.body).width(), 100);
    assert_eq!(a.cache_control, "no-cache", "a private answer is revalidated at every use");
    assert!(a.etag.starts_with('"'), "a strong ETag: {:?}", a.etag);
    assert_eq!(transforms(), t0 + 1.0);

    // b. another user: the edge revalidates with B's credentials, Refract says 304 from its
    // index, the edge sends the bytes it stored
    let b = get(&c, &url, &[("Authorization", &user_b)]);
    assert_eq!(b.status, 200, "user B: {}", String::from_utf8_lossy(&b.body));
    assert_eq!(b.edge, "revalidated");
    assert!(b.body == a.body, "user B gets the stored bytes");
    assert_eq!(not_modified(), nm0 + 1.0, "Refract answered the edge's revalidation with 304");
    assert_eq!(transforms(), t0 + 1.0, "no second transform");

    // c. a bad signature and no credentials: Refract's refusal, passed through, never the image
    let bad = get(&c, &url, &[("Authorization", &user_c)]);
    assert_eq!(bad.status, 403, "user C (bad signature): {}", String::from_utf8_lossy(&bad.body));
    assert!(!is_png(&bad.body) && bad.body != a.body);
    assert!(bad.cache_control.contains("no-store"), "a refusal is not stored: {:?}", bad.cache_control);
    let none = get(&c, &url, &[]);
    assert_eq!(none.status, 401, "user D (no Authorization): {}", String::from_utf8_lossy(&none.body));
    assert!(!is_png(&none.body) && none.body != a.body);
    assert!(none.cache_control.contains("no-store"), "{:?}", none.cache_control);
    // a matching If-None-Match does not turn a refusal into a 304
    let bad_inm = get(&c, &url, &[("Authorization", &user_c), ("If-None-Match", &a.etag)]);
    assert_eq!(bad_inm.status, 403);
    let none_inm = get(&c, &url, &[("If-None-Match", &a.etag)]);
    assert_eq!(none_inm.status, 401);
    assert_eq!(not_modified(), nm0 + 1.0, "refusals are no 304s");

    // d. the refusals neither evicted nor replaced the stored copy: B revalidates again
    let b2 = get(&c, &url, &[("Authorization", &user_b)]);
    assert_eq!(b2.status, 200, "user B again: {}", String::from_utf8_lossy(&b2.body));
    assert_eq!(b2.edge, "revalidated", "the stored copy survived the 403 and 401");
    assert!(b2.body == a.body);
    assert_eq!(not_modified(), nm0 + 2.0);
    // a browser revalidating its own copy through the edge gets a 304 (after Refract's)
    let a304 = get(&c, &url, &[("Authorization", &user_a), ("If-None-Match", &a.etag)]);
    assert_eq!(a304.status, 304);
    assert!(a304.body.is_empty());
    assert_eq!(not_modified(), nm0 + 3.0);
    assert_eq!(transforms(), t0 + 1.0, "one transform served every user");

    // a PURGE (from loopback) drops the stored copy: the next user is a full miss
    let r = c.request(reqwest::Method::from_bytes(b"PURGE").unwrap(), &url).send().unwrap();
    assert_eq!(r.status(), 200, "PURGE");
    let after = get(&c, &url, &[("Authorization", &user_b)]);
    assert_eq!((after.status, after.edge.as_str()), (200, "miss"));
    assert!(after.body == a.body);

    // e. a public answer (an app without signatures) is an ordinary shared object
    let r = s.store(&fixture("hopper.png"), "key=EdgePublicKey01");
    assert_eq!(r.status(), 200, "public upload: {:?}", r.text());
    let public = r.json::<serde_json::Value>().unwrap()["handle"].as_str().unwrap().to_string();
    let purl = edge.url(&format!("/resize=width:50/{public}"));
    let t1 = transforms();
    let first = get(&c, &purl, &[]);
    assert_eq!(first.status, 200, "public: {}", String::from_utf8_lossy(&first.body));
    assert!(first.cache_control.starts_with("public, max-age="), "{:?}", first.cache_control);
    assert_eq!((first.edge.as_str(), decode(&first.body).width()), ("miss", 50));
    let second = get(&c, &purl, &[("Authorization", &user_a)]);
    assert_eq!((second.status, second.edge.as_str()), (200, "hit"), "credentials do not bypass a public object");
    assert!(second.body == first.body);
    assert_eq!(transforms(), t1 + 1.0);
    // a BAN by Surrogate-Key (the handle) drops everything derived from that file
    let r = c
        .request(reqwest::Method::from_bytes(b"BAN").unwrap(), edge.url("/"))
        .header("Surrogate-Key", &public)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "BAN");
    assert_eq!(get(&c, &purl, &[]).edge, "miss");
}
