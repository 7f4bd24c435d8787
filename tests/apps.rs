//! Apps and private files by one URL: each app's secrets (two during a rotation), a signature of
//! one app refused by another, every policy constraint accepted and refused, credentials in the
//! `Authorization` header, and conditional requests answered 304 from the cache index without a
//! source read or a transform (seen through the metrics), or refused despite a matching ETag.

mod common;

use common::{decode, TestServer};
use reqwest::blocking::Response;

const A_OLD: &str = "app-a-old-secret-0123456789";
const A_NEW: &str = "app-a-new-secret-9876543210";
const B: &str = "app-b-only-secret-abcdefghij";

fn config(alias_dir: &std::path::Path) -> String {
    format!(
        r#"
[aliases]
photos = {alias_dir:?}
other = {alias_dir:?}

[[apps]]
api_key = "APPKEYA"
secrets = ["{A_OLD}", "{A_NEW}"]

[[apps]]
api_key = "APPKEYB"
secrets = ["{B}"]
private_caching = "private"

[[apps]]
api_key = "OPENAPP"
storage = ["s3"]
containers = ["public"]
aliases = ["photos"]
"#
    )
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// `(policy, signature)` of `json` (`EXPIRY` replaced by an hour from now) signed with `secret`.
fn signed(secret: &str, json: &str) -> (String, String) {
    use base64::Engine;
    let p = base64::engine::general_purpose::URL_SAFE.encode(json.replace("EXPIRY", &(now() + 3600).to_string()));
    let s = common::sign(secret, &p);
    (p, s)
}

fn query(secret: &str, json: &str) -> String {
    let (p, s) = signed(secret, json);
    format!("policy={p}&signature={s}")
}

fn bearer(secret: &str, json: &str) -> String {
    let (p, s) = signed(secret, json);
    format!("Bearer {p}.{s}")
}

fn jwt(secret: &str, claims: serde_json::Value) -> String {
    use jsonwebtoken::{encode, EncodingKey, Header};
    format!("Bearer {}", encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap())
}

fn message(r: Response) -> String {
    r.json::<serde_json::Value>().unwrap()["error"]["message"].as_str().unwrap_or_default().to_string()
}

fn store(s: &TestServer, key: &str, q: &str) -> String {
    let r = s.store(&common::fixture("hopper.jpg"), &format!("key={key}&{q}"));
    assert_eq!(r.status(), 200, "{:?}", r.text());
    r.json::<serde_json::Value>().unwrap()["handle"].as_str().unwrap().to_string()
}

fn alias_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(common::fixture_path("hopper.jpg"), dir.path().join("hopper.jpg")).unwrap();
    dir
}

#[test]
fn apps_have_their_own_secrets_owners_and_limits() {
    let dir = alias_dir();
    let s = TestServer::start_capturing_stderr(&[], Some(&config(dir.path())));
    let any = r#"{"expiry":EXPIRY}"#;
    // both of A's secrets verify during a rotation; B's does not open A
    let h_old = store(&s, "APPKEYA", &query(A_OLD, any));
    let h_new = store(&s, "APPKEYA", &query(A_NEW, any));
    let r = s.store(&common::fixture("hopper.jpg"), &format!("key=APPKEYA&{}", query(B, any)));
    assert_eq!(r.status(), 403, "a policy signed by B is useless for A");
    for h in [&h_old, &h_new] {
        assert_eq!(s.get(&format!("/resize=w:16/{h}?{}", query(A_NEW, any))).status(), 200);
        assert_eq!(s.get(&format!("/resize=w:16/{h}?{}", query(A_OLD, any))).status(), 200);
    }
    // A's file read through B: with B's key and B's policy, or with B's policy and no key
    let r = s.get(&format!("/APPKEYB/resize=w:16/{h_old}?{}", query(B, any)));
    assert_eq!(r.status(), 403);
    assert!(message(r).contains("another app"));
    assert_eq!(s.get(&format!("/resize=w:16/{h_old}?{}", query(B, any))).status(), 403);
    assert_eq!(s.get(&format!("/UNKNOWNKEY/resize=w:16/{h_old}?{}", query(A_NEW, any))).status(), 403);
    // no credentials at all: 401 with a challenge
    let r = s.get(&format!("/resize=w:16/{h_old}"));
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"refract\"");
    assert_eq!(r.headers()["cache-control"], "private, no-store");

    // the open app: no signature, but only its alias, its location and its container
    assert_eq!(s.get("/OPENAPP/resize=w:16/src://photos/hopper.jpg").status(), 200);
    let r = s.get("/OPENAPP/resize=w:16/src://other/hopper.jpg");
    assert_eq!(r.status(), 403);
    assert!(message(r).contains("alias `other`"));
    let r = s.client().post(s.url("/api/store/azure?key=OPENAPP")).body(common::fixture("hopper.jpg")).send().unwrap();
    assert_eq!(r.status(), 403);
    assert!(message(r).contains("azure"));
    let r = s.store(&common::fixture("hopper.jpg"), "key=OPENAPP&container=secret");
    assert_eq!(r.status(), 403);
    let open = store(&s, "OPENAPP", "container=public");
    let r = s.get(&format!("/resize=w:16/{open}"));
    assert_eq!(r.headers()["cache-control"].to_str().unwrap(), "public, max-age=2592000");
    // one purge by tag clears everything the app serves, on any CDN
    let r = s.get(&format!("/OPENAPP/resize=w:16/{open}"));
    for tags in ["surrogate-key", "cache-tag", "edge-cache-tag"] {
        assert!(r.headers()[tags].to_str().unwrap().contains("app-OPENAPP"), "{tags}: {:?}", r.headers()[tags]);
    }

    // each refusal is logged with its app, its call and its reason, never a secret or signature
    let log = plain(&s.stderr_text());
    let refused = |app: &str, call: &str, why: &str| {
        log.lines().any(|l| l.contains("refused") && l.contains(app) && l.contains(call) && l.contains(why))
    };
    assert!(refused("app=\"APPKEYB\"", "call=\"convert\"", "another app"), "{log}");
    assert!(refused("app=\"OPENAPP\"", "call=\"store\"", "azure"), "{log}");
    assert!(refused("app=\"APPKEYA\"", "call=\"store\"", "signature does not match"), "{log}");
    let (_, sig) = signed(B, any);
    for secret in [A_OLD, A_NEW, B, &sig[..20]] {
        assert!(!log.contains(secret), "the log shows secret material");
    }
}

/// The log without its terminal colours.
fn plain(log: &str) -> String {
    let mut out = String::new();
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn every_policy_constraint_is_accepted_and_refused() {
    let dir = alias_dir();
    let s = TestServer::start_with_config(&config(dir.path()));
    let h = store(&s, "APPKEYA", &query(A_NEW, r#"{"expiry":EXPIRY}"#));
    // by header: a query string would belong to the external URL
    let read = |json: &str, url: &str| {
        let r = s.client().get(s.url(url)).header("Authorization", bearer(A_NEW, json)).send().unwrap();
        r.status().as_u16()
    };
    let derivative = format!("/APPKEYA/resize=w:16/{h}");
    let external = "/APPKEYA/resize=w:16/https://example.com/a.jpg";
    let cases: [(&str, &str, &str); 4] = [
        (r#"{"expiry":EXPIRY}"#, r#"{"expiry":1000}"#, &derivative),
        (r#"{"expiry":EXPIRY,"call":["convert"]}"#, r#"{"expiry":EXPIRY,"call":["read"]}"#, &derivative),
        (
            &format!(r#"{{"expiry":EXPIRY,"handle":"{h}"}}"#),
            r#"{"expiry":EXPIRY,"handle":"AAAAAAAAAAAAAAAAAAAA"}"#,
            &derivative,
        ),
        // the URL rule refuses before anything is fetched; its acceptance is a fetch error (not 403)
        (
            r#"{"expiry":EXPIRY,"url":"https://example\\.com/.*"}"#,
            r#"{"expiry":EXPIRY,"url":"https://other\\.com/.*"}"#,
            external,
        ),
    ];
    for (accepted, refused, url) in cases {
        assert_ne!(read(accepted, url), 403, "{accepted} on {url}");
        assert_eq!(read(refused, url), 403, "{refused} on {url}");
    }
    // path, container, maxSize, minSize: on uploads
    let size = common::fixture("hopper.jpg").len();
    let upload = |json: &str, extra: &str| {
        let q = format!("key=APPKEYA&{}&{extra}", query(A_NEW, json));
        s.store(&common::fixture("hopper.jpg"), &q).status().as_u16()
    };
    let limits: [(String, String, &str); 4] = [
        (
            r#"{"expiry":EXPIRY,"path":"/ok/.*"}"#.into(),
            r#"{"expiry":EXPIRY,"path":"/no/.*"}"#.into(),
            "path=/ok/a.jpg",
        ),
        (
            r#"{"expiry":EXPIRY,"container":"c[0-9]"}"#.into(),
            r#"{"expiry":EXPIRY,"container":"x"}"#.into(),
            "container=c1",
        ),
        (
            format!(r#"{{"expiry":EXPIRY,"maxSize":{size}}}"#),
            format!(r#"{{"expiry":EXPIRY,"maxSize":{}}}"#, size - 1),
            "",
        ),
        (
            format!(r#"{{"expiry":EXPIRY,"minSize":{size}}}"#),
            format!(r#"{{"expiry":EXPIRY,"minSize":{}}}"#, size + 1),
            "",
        ),
    ];
    for (accepted, refused, extra) in limits {
        assert_eq!(upload(&accepted, extra), 200, "{accepted}");
        assert_eq!(upload(&refused, extra), 403, "{refused}");
    }
    // the `store` task is checked as a store, where it writes included
    let store_task = |json: &str| {
        let url = format!("/APPKEYA/store=path:%22/ok/s.jpg%22/resize=w:8/{h}?{}", query(A_NEW, json));
        s.get(&url).status().as_u16()
    };
    assert_eq!(store_task(r#"{"expiry":EXPIRY,"call":["convert","store"],"path":"/ok/.*"}"#), 200);
    assert_eq!(store_task(r#"{"expiry":EXPIRY,"call":["convert","store"],"path":"/no/.*"}"#), 403);
    assert_eq!(store_task(r#"{"expiry":EXPIRY,"call":["convert"]}"#), 403);
}

#[test]
fn header_credentials_give_one_url_and_304s_from_the_cache_index() {
    let dir = alias_dir();
    let s = TestServer::start_with_config(&config(dir.path()));
    let h = store(&s, "APPKEYA", &query(A_OLD, r#"{"expiry":EXPIRY}"#));
    let url = s.url(&format!("/resize=w:40/{h}"));
    let c = s.client();
    let alice = bearer(A_OLD, r#"{"expiry":EXPIRY,"call":["read","convert"]}"#);
    let transforms = || s.metric("refract_transforms_total", "");
    let fetches = || s.metric("refract_source_fetches_total", "");
    let from_index = || s.metric("refract_not_modified_total", "from=\"index\"");

    let before = transforms();
    let r = c.get(&url).header("Authorization", &alice).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "a strong ETag: {etag}");
    let bytes = r.bytes().unwrap();
    assert_eq!(decode(&bytes).width(), 40);
    assert_eq!(transforms(), before + 1.0);

    // another user (a JWT signed with A's other secret) revalidates: 304 from the index alone
    let bob = jwt(A_NEW, serde_json::json!({ "exp": now() + 600, "call": ["convert"], "handle": h }));
    let (t, f, i) = (transforms(), fetches(), from_index());
    let r = c.get(&url).header("Authorization", &bob).header("If-None-Match", &etag).send().unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!((transforms(), fetches(), from_index()), (t, f, i + 1.0), "no transform, no source read");

    // a matching ETag opens nothing without valid credentials
    let forged = bearer(B, r#"{"expiry":EXPIRY}"#);
    let expired = jwt(A_NEW, serde_json::json!({ "exp": now() - 10 }));
    let hs384 = {
        use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
        let claims = serde_json::json!({ "exp": now() + 600 });
        let t = encode(&Header::new(Algorithm::HS384), &claims, &EncodingKey::from_secret(A_NEW.as_bytes())).unwrap();
        format!("Bearer {t}")
    };
    for (auth, status) in [
        (Some(forged.as_str()), 403),
        (Some(expired.as_str()), 403),
        (Some(hs384.as_str()), 403),
        (Some("Bearer not-a-token"), 401),
        (Some("Basic YTpi"), 401),
        (None, 401),
    ] {
        let mut rq = c.get(&url).header("If-None-Match", &etag);
        if let Some(a) = auth {
            rq = rq.header("Authorization", a);
        }
        let r = rq.send().unwrap();
        assert_eq!(r.status(), status, "{auth:?}");
        assert_eq!(r.headers()["cache-control"], "private, no-store");
    }
    // a stale tag with valid credentials: the whole answer
    let r = c.get(&url).header("Authorization", &alice).header("If-None-Match", "\"0123\"").send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().unwrap(), bytes);
    // the original and its metadata by header too, each for the calls the policy lists
    let r = c.get(s.url(&format!("/api/file/{h}"))).header("Authorization", &alice).send().unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["cache-control"].to_str().unwrap()), (200, "no-cache"));
    assert_eq!(r.bytes().unwrap(), common::fixture("hopper.jpg"));
    let meta = s.url(&format!("/api/file/{h}/metadata"));
    assert_eq!(c.get(&meta).header("Authorization", &alice).send().unwrap().status(), 403, "no `stat` call");
    let stat = bearer(A_NEW, r#"{"expiry":EXPIRY,"call":["stat"]}"#);
    let r = c.get(&meta).header("Authorization", &stat).send().unwrap();
    assert_eq!(r.json::<serde_json::Value>().unwrap()["width"], 128);
    // an app configured `private`: only the user's browser may keep its answers
    let hb = store(&s, "APPKEYB", &query(B, r#"{"expiry":EXPIRY}"#));
    let r = c.get(s.url(&format!("/resize=w:8/{hb}"))).header("Authorization", &forged).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "private, no-cache");
}

#[test]
fn a_request_never_reaches_another_apps_files_through_lists_overlays_or_stores() {
    let dir = alias_dir();
    let s = TestServer::start_with_config(&config(dir.path()));
    let any = r#"{"expiry":EXPIRY}"#;
    let private = store(&s, "APPKEYA", &query(A_NEW, any));
    let public = store(&s, "OPENAPP", "");
    let b_file = store(&s, "APPKEYB", &query(B, any));
    // lists, ZIPs and overlays read every file they name: one of another app refuses the request
    for url in [
        format!("/OPENAPP/zip/[{public},{private}]"),
        format!("/zip/[{public},{private}]"),
        format!("/OPENAPP/watermark=file:{private}/{public}"),
        format!("/APPKEYB/watermark=file:{private}/{b_file}?{}", query(B, any)),
        format!("/APPKEYA/watermark=file:{b_file}/{private}?{}", query(A_NEW, any)),
    ] {
        let r = s.get(&url);
        assert_eq!(r.status(), 403, "{url}");
        assert!(message(r).contains("app"), "{url}");
    }
    assert_eq!(s.get(&format!("/APPKEYA/watermark=file:{private}/{private}?{}", query(A_NEW, any))).status(), 200);

    // the `store` task: a policy's size limits hold for what the chain produced
    let store_task = |json: &str| {
        let q = query(A_NEW, json);
        s.get(&format!("/APPKEYA/store=filename:x.jpg/resize=w:100/{private}?{q}")).status().as_u16()
    };
    assert_eq!(store_task(r#"{"expiry":EXPIRY,"call":["convert","store"],"maxSize":100}"#), 403);
    assert_eq!(store_task(r#"{"expiry":EXPIRY,"call":["convert","store"],"minSize":100000000}"#), 403);
    assert_eq!(store_task(r#"{"expiry":EXPIRY,"call":["convert","store"],"maxSize":100000000}"#), 200);
    // the same `store` URL asked by two apps stores two files, each its app's
    let handle_of = |r: Response| r.json::<serde_json::Value>().unwrap()["handle"].as_str().unwrap().to_string();
    let open_copy = handle_of(s.get("/OPENAPP/store/src://photos/hopper.jpg"));
    let a_copy = handle_of(s.get(&format!("/APPKEYA/store/src://photos/hopper.jpg?{}", query(A_NEW, any))));
    assert_ne!(open_copy, a_copy);
    assert_eq!(s.get(&format!("/{a_copy}")).status(), 401, "A's copy is A's: private");

    // a path or container rule is not skipped by leaving the field out, and a handle-bound
    // policy stores nothing new
    let r = s.store(
        &common::fixture("hopper.jpg"),
        &format!("key=APPKEYA&{}", query(A_NEW, r#"{"expiry":EXPIRY,"path":"/up/.*"}"#)),
    );
    assert_eq!(r.status(), 403);
    let bound = format!(r#"{{"expiry":EXPIRY,"handle":"{private}"}}"#);
    assert_eq!(s.store(&common::fixture("hopper.jpg"), &format!("key=APPKEYA&{}", query(A_NEW, &bound))).status(), 403);
}

#[test]
fn an_open_server_ignores_authorization_headers_it_has_no_use_for() {
    let s = TestServer::start();
    let h = s.upload_fixture("hopper.jpg");
    for auth in ["Basic dXNlcjpwYXNz", "Bearer abc", "Bearer a.b"] {
        let r = s.client().get(s.url(&format!("/resize=w:10/{h}"))).header("Authorization", auth).send().unwrap();
        assert_eq!(r.status(), 200, "{auth}");
        // a cache hit's max-age is what is left of its 30 days: a second may have passed
        let cc = r.headers()["cache-control"].to_str().unwrap().to_string();
        let age: u64 = cc.strip_prefix("public, max-age=").and_then(|a| a.parse().ok()).unwrap_or(0);
        assert!((2_591_990..=2_592_000).contains(&age), "{cc}");
    }
}
