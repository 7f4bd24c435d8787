//! Access control and hostile requests: API keys, signed policies and their restrictions,
//! storage-alias confinement, refusals that must not be cached, inputs that once crashed a worker.

mod common;

use common::{decode, TestServer};

const SECRET: &str = "refract-test-secret";

/// A policy that expires an hour from now (`EXPIRY` in the text is replaced), so the tests do
/// not start failing on a fixed date.
fn policy(text: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    text.replace("EXPIRY", &(now + 3600).to_string())
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE.encode(s)
}

fn sign(policy: &str) -> String {
    common::sign(SECRET, policy)
}

fn security(policy_json: &str) -> String {
    let p = b64(policy_json);
    format!("security=p:{p},s:{}", sign(&p))
}

#[test]
fn signed_policies_gate_every_call_and_refusals_are_not_cached() {
    let s = TestServer::start_with_env(&[("REFRACT_SECRET", SECRET)]);
    let all = security(&policy(r#"{"expiry":EXPIRY}"#));
    let text = policy(r#"{"expiry":EXPIRY}"#);
    let (p, sig) = (b64(&text), sign(&b64(&text)));
    let r = s.store(&common::fixture("hopper.jpg"), &format!("key=k&policy={p}&signature={sig}"));
    assert_eq!(r.status(), 200);
    let h = r.json::<serde_json::Value>().unwrap()["handle"].as_str().unwrap().to_string();

    let r = s.get(&format!("/resize=w:20/{h}"));
    assert_eq!(r.status(), 401, "no credentials");
    assert_eq!(r.headers()["cache-control"], "private, no-store", "a refusal must not be shared by an edge");
    let ok = s.get(&format!("/{all}/resize=w:20/{h}"));
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["cache-control"], "no-cache", "private derivatives are revalidated");
    let etag = ok.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(decode(&ok.bytes().unwrap()).width(), 20);
    // an edge revalidating with valid credentials gets 304, with none 401
    let c = s.client();
    let r = c.get(s.url(&format!("/{all}/resize=w:20/{h}"))).header("If-None-Match", &etag).send().unwrap();
    assert_eq!(r.status(), 304);
    let r = c.get(s.url(&format!("/resize=w:20/{h}"))).header("If-None-Match", &etag).send().unwrap();
    assert_eq!(r.status(), 401);

    // expiry, calls, handle and URL restrictions
    let expired = security(r#"{"expiry":1000}"#);
    assert_eq!(s.get(&format!("/{expired}/resize=w:20/{h}")).status(), 403);
    let read_only = security(&policy(r#"{"expiry":EXPIRY,"call":["read"]}"#));
    assert_eq!(s.get(&format!("/{read_only}/{h}")).status(), 200);
    assert_eq!(s.get(&format!("/{read_only}/resize=w:20/{h}")).status(), 403, "convert not allowed");
    let other = security(&policy(r#"{"expiry":EXPIRY,"handle":"AAAAAAAAAAAAAAAAAAAA"}"#));
    assert_eq!(s.get(&format!("/{other}/resize=w:20/{h}")).status(), 403);
    let mine = security(&policy(&format!(r#"{{"expiry":EXPIRY,"handle":"{h}"}}"#)));
    assert_eq!(s.get(&format!("/{mine}/resize=w:20/{h}")).status(), 200);
    assert_eq!(
        s.get(&format!("/{mine}/resize=w:20/https://example.com/a.jpg")).status(),
        403,
        "a handle-bound policy allows no external source"
    );
    let url_rule = security(&policy(r#"{"expiry":EXPIRY,"url":"https://example\\.com/.*"}"#));
    assert_eq!(
        s.get(&format!("/{url_rule}/resize=w:20/https://example.com.evil.net/a.jpg")).status(),
        403,
        "the url rule matches the whole URL"
    );
    let r = c.delete(s.url(&format!("/api/file/{h}"))).send().unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn configured_api_keys_are_enforced() {
    let s = TestServer::start_with_env(&[("REFRACT_API_KEYS", "goodkey")]);
    let r = s.store(&common::fixture("hopper.jpg"), "");
    assert_eq!(r.status(), 403, "uploads need a key");
    let r = s.store(&common::fixture("hopper.jpg"), "key=badkey");
    assert_eq!(r.status(), 403);
    let h = {
        let r = s.store(&common::fixture("hopper.jpg"), "key=goodkey");
        r.json::<serde_json::Value>().unwrap()["handle"].as_str().unwrap().to_string()
    };
    assert_eq!(s.get(&format!("/resize=w:10/{h}")).status(), 200, "handles may go without a key");
    assert_eq!(s.get(&format!("/goodkey/resize=w:10/{h}")).status(), 200);
    assert_eq!(s.get(&format!("/badkey/resize=w:10/{h}")).status(), 403);
    assert_eq!(s.get("/resize=w:10/https://example.com/a.jpg").status(), 403, "external sources need a key");
}

#[test]
fn storage_aliases_stay_inside_their_directory() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("pics")).unwrap();
    std::fs::copy(common::fixture_path("hopper.jpg"), root.path().join("pics/hopper.jpg")).unwrap();
    std::fs::write(root.path().join("secret.txt"), "not for you").unwrap();
    std::os::unix::fs::symlink(root.path().join("secret.txt"), root.path().join("pics/link.txt")).unwrap();
    let config = format!("[aliases]\nmine = {:?}\n", root.path().join("pics"));
    let s = TestServer::start_with_config(&config);
    let img = decode(&s.get("/resize=w:32/src://mine/hopper.jpg").bytes().unwrap());
    assert_eq!(img.width(), 32);
    for path in [
        "/src://mine//etc/passwd",
        "/src://mine/%2Fetc%2Fpasswd",
        "/src://mine/../secret.txt",
        "/src://mine/link.txt",
        "/src://other/hopper.jpg",
    ] {
        let r = s.get(path);
        assert!((400..500).contains(&r.status().as_u16()), "{path}: {}", r.status());
        assert!(!r.text().unwrap().contains("not for you"), "{path} leaked a file");
    }
}

#[test]
fn requests_that_once_crashed_or_exhausted_the_server() {
    // enlargement allowed far enough that the output pixel limit is what stops the first case
    let s = TestServer::start_with_env(&[("REFRACT_MAX_UPSCALE", "1000")]);
    let tall = image::RgbImage::new(1, 5000);
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(tall)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let h = s.upload(&png, "tall.png");
    let cases: Vec<(String, u16)> = vec![
        (format!("/resize=w:1000/{h}"), 422),
        (format!("/resize=w:10000/{h}"), 400),
        (format!("/resize=a:%5Ba%E2%82%AC%5D,w:10/{h}"), 400),
        ("/b64://YeKCrA".to_string(), 400),
        ("/api/file/%E2%82%AC".to_string(), 400),
        ("/api/file/..%2F..%2Fetc".to_string(), 400),
        ("/api/file/%E2%82%AC/metadata".to_string(), 400),
    ];
    for (path, want) in &cases {
        let r = s.get(path);
        let status = r.status().as_u16();
        let body = r.text().unwrap_or_default();
        assert_eq!(status, *want, "{path}: {}", &body[..body.len().min(200)]);
    }
    let r = s.client().delete(s.url(&format!("/resize=w:10/{h}"))).send().unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(s.get("/healthz").status(), 200, "the server survived");
    assert_eq!(s.client().head(s.url("/healthz")).send().unwrap().status(), 200);
}

#[test]
fn store_policies_limit_path_container_and_size_for_uploads_and_multipart() {
    let s = TestServer::start_with_env(&[("REFRACT_SECRET", SECRET)]);
    let text = policy(r#"{"expiry":EXPIRY,"call":["store"],"path":"/avatars/.*","maxSize":4000,"minSize":10}"#);
    let (p, sig) = (b64(&text), sign(&b64(&text)));
    let creds = format!("key=k&policy={p}&signature={sig}");
    let small = vec![7u8; 100];
    let ok = s.store(&small, &format!("{creds}&path=/avatars/a.bin"));
    assert_eq!(ok.status(), 200, "{:?}", ok.text());
    for (body, query, why) in [
        (vec![7u8; 5000], "path=/avatars/b.bin", "maxSize"),
        (vec![7u8; 5], "path=/avatars/c.bin", "minSize"),
        (small.clone(), "path=/private/d.bin", "storage path"),
    ] {
        let r = s.store(&body, &format!("{creds}&{query}"));
        assert_eq!(r.status(), 403, "{why}");
        let msg = r.json::<serde_json::Value>().unwrap()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(why), "{why}: {msg}");
    }
    // multipart: the announced size is checked at start, before any part arrives
    let start = serde_json::json!({"apikey": "k", "filename": "big.bin", "size": 1_000_000,
        "store": {"path": "/avatars/big.bin"}, "policy": p, "signature": sig});
    let r = s.client().post(s.url("/multipart/start")).json(&start).send().unwrap();
    assert_eq!(r.status(), 403);
    // a policy signed with another app's secret is refused
    let other = common::sign("another-app-secret-xyz", &p);
    let r = s.store(&small, &format!("key=k&policy={p}&signature={other}&path=/avatars/e.bin"));
    assert_eq!(r.status(), 403);
}
