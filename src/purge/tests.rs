use super::hooks::invalidation_batch;
use super::sigv4::{self, Credentials, Scope};
use super::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn hook(toml_text: &str) -> Result<Hook, String> {
    let config: HookConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
    config.build(0)
}

fn event() -> PurgeEvent {
    PurgeEvent { event: EventKind::Delete, handle: "AbC123".into(), keys: vec!["AbC123".into()], id: "ref-1".into() }
}

fn header<'a>(p: &'a Prepared, name: &str) -> Option<&'a str> {
    p.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

const T: u64 = 1_440_938_160; // 2015-08-30T12:36:00Z, the AWS test suite's time

#[test]
fn dates() {
    let t = UNIX_EPOCH + Duration::from_secs(T);
    assert_eq!(sigv4::amz_date(t), "20150830T123600Z");
    assert_eq!(rfc3339(t), "2015-08-30T12:36:00Z");
    assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
}

fn example_credentials() -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        session_token: None,
    }
}

#[test]
fn sigv4_matches_the_aws_test_suite() {
    let scope = Scope { region: "us-east-1", service: "service" };
    let t = UNIX_EPOCH + Duration::from_secs(T);
    let prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                  SignedHeaders=host;x-amz-date, Signature=";
    for (method, url, signature) in [
        ("GET", "https://example.amazonaws.com/", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        (
            "GET",
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        ("POST", "https://example.amazonaws.com/", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ] {
        let url = reqwest::Url::parse(url).unwrap();
        let req = sigv4::Request { method, url: &url, headers: &[], body: b"" };
        let added = sigv4::sign(&req, &example_credentials(), &scope, t);
        let auth = &added.iter().find(|(n, _)| n == "authorization").unwrap().1;
        assert_eq!(auth, &format!("{prefix}{signature}"), "{method} {url}");
        assert!(added.contains(&("host".into(), "example.amazonaws.com".into())));
        assert!(added.contains(&("x-amz-date".into(), "20150830T123600Z".into())));
    }
}

#[test]
fn webhook_shape() {
    let h = hook(
        "kind = \"webhook\"\nname = \"hooky\"\nurl = \"https://hooks.example.com/cdn?x=1\"\n\
         headers = { Authorization = \"Bearer sekrit-value\" }\n",
    )
    .unwrap();
    let p = h.request(&event(), SystemTime::now());
    assert_eq!(p.url.as_str(), "https://hooks.example.com/cdn?x=1");
    assert_eq!(header(&p, "authorization"), Some("Bearer sekrit-value"));
    assert_eq!(header(&p, "content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(body, serde_json::json!({"event": "delete", "handle": "AbC123", "keys": ["AbC123"]}));
    let overwrite = PurgeEvent { event: EventKind::Overwrite, ..event() };
    let body: serde_json::Value = serde_json::from_slice(&h.request(&overwrite, SystemTime::now()).body).unwrap();
    assert_eq!(body["event"], "overwrite");
}

#[test]
fn fastly_shape() {
    let h = hook("kind = \"fastly\"\nservice_id = \"SU1Z0isxPaozGVKXdv0eY\"\ntoken = \"fastly-tok\"\n").unwrap();
    let ev = PurgeEvent { keys: vec!["k1".into(), "k2".into()], ..event() };
    let p = h.request(&ev, SystemTime::now());
    assert_eq!(p.url.as_str(), "https://api.fastly.com/service/SU1Z0isxPaozGVKXdv0eY/purge");
    assert_eq!(header(&p, "fastly-key"), Some("fastly-tok"));
    assert_eq!(header(&p, "surrogate-key"), Some("k1 k2"));
    assert_eq!(header(&p, "fastly-soft-purge"), None);
    assert!(p.body.is_empty());
    let soft =
        hook("kind = \"fastly\"\nservice_id = \"S1\"\ntoken = \"t\"\nsoft = true\napi = \"http://127.0.0.1:9/x/\"\n")
            .unwrap()
            .request(&ev, SystemTime::now());
    assert_eq!(soft.url.as_str(), "http://127.0.0.1:9/x/service/S1/purge");
    assert_eq!(header(&soft, "fastly-soft-purge"), Some("1"));
}

#[test]
fn cloudflare_shape() {
    let h =
        hook("kind = \"cloudflare\"\nzone_id = \"023e105f4ecef8ad9ca31a8372d0c353\"\ntoken = \"cf-tok\"\n").unwrap();
    let p = h.request(&event(), SystemTime::now());
    assert_eq!(
        p.url.as_str(),
        "https://api.cloudflare.com/client/v4/zones/023e105f4ecef8ad9ca31a8372d0c353/purge_cache"
    );
    assert_eq!(header(&p, "authorization"), Some("Bearer cf-tok"));
    let body: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(body, serde_json::json!({"tags": ["AbC123"]}));
}

#[test]
fn cloudfront_shape_and_signature() {
    let h = hook(
        "kind = \"cloudfront\"\ndistribution_id = \"EDFDVBD6EXAMPLE\"\naccess_key_id = \"AKIDEXAMPLE\"\n\
         secret_access_key = \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\"\nsession_token = \"sess-tok\"\n\
         paths = [\"/{handle}\", \"/{handle}*\", \"/{handle}\"]\n",
    )
    .unwrap();
    let t = UNIX_EPOCH + Duration::from_secs(T);
    let p = h.request(&event(), t);
    assert_eq!(p.url.as_str(), "https://cloudfront.amazonaws.com/2020-05-31/distribution/EDFDVBD6EXAMPLE/invalidation");
    let body = String::from_utf8(p.body.clone()).unwrap();
    assert_eq!(body, invalidation_batch(&["/AbC123".into(), "/AbC123*".into()], "ref-1"));
    assert!(body.contains("<Quantity>2</Quantity><Items><Path>/AbC123</Path><Path>/AbC123*</Path></Items>"));
    assert!(body.contains("<CallerReference>ref-1</CallerReference>"));
    assert_eq!(header(&p, "host"), Some("cloudfront.amazonaws.com"));
    assert_eq!(header(&p, "x-amz-date"), Some("20150830T123600Z"));
    assert_eq!(header(&p, "x-amz-security-token"), Some("sess-tok"));
    let auth = header(&p, "authorization").unwrap();
    assert!(
        auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/cloudfront/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
        ),
        "{auth}"
    );
    // the same request at the same time signs the same; the body is part of the signature
    assert_eq!(h.request(&event(), t), p);
    let other = PurgeEvent { handle: "Other".into(), ..event() };
    assert_ne!(header(&h.request(&other, t), "authorization"), Some(auth));
}

#[test]
fn configuration_is_checked() {
    let cases = [
        ("kind = \"webhook\"\n", "needs a `url`"),
        ("kind = \"webhook\"\nurl = \"ftp://x\"\n", "http(s) URL"),
        ("kind = \"webhook\"\nurl = \"http://x\"\ntoken = \"t\"\n", "does not take `token`"),
        ("kind = \"fastly\"\ntoken = \"t\"\n", "needs a `service_id`"),
        ("kind = \"fastly\"\nservice_id = \"S\"\n", "needs a `token`"),
        ("kind = \"cloudflare\"\nzone_id = \"Z\"\ntoken = \"t\"\npaths = [\"/x\"]\n", "does not take `paths`"),
        ("kind = \"cloudfront\"\ndistribution_id = \"D\"\n", "access_key_id"),
        (
            "kind = \"cloudfront\"\ndistribution_id = \"D\"\naccess_key_id = \"A\"\nsecret_access_key = \"S\"\n\
             paths = [\"/*{handle}\"]\n",
            "may only end it",
        ),
        ("kind = \"fastly\"\nservice_id = \"S\"\ntoken = \"t\"\nattempts = 0\n", "attempts"),
        ("kind = \"fastly\"\nservice_id = \"S\"\ntoken = \"t\"\nname = \"a b\"\n", "name"),
        ("kind = \"fastly\"\nservice_id = \"S/../x\"\ntoken = \"t\"\n", "service_id"),
    ];
    for (text, expected) in cases {
        let err = hook(text).unwrap_err();
        assert!(err.contains(expected), "{text}: {err}");
    }
    assert!(hook("kind = \"fastly\"\nservice_id = \"S\"\ntoken = \"t\"\nservce = 1\n")
        .unwrap_err()
        .contains("unknown"));
    assert!(hook("kind = \"akamai\"\n").is_err());
    // two hooks of one kind need names
    let a: HookConfig = toml::from_str("kind = \"fastly\"\nservice_id = \"S\"\ntoken = \"t\"\n").unwrap();
    let err = Purger::new(&[a.clone(), a.clone()], Path::new("/nonexistent")).err().unwrap();
    assert!(err.contains("repeats the name"), "{err}");
    let b = HookConfig { name: Some("second".into()), ..a.clone() };
    assert!(Purger::new(&[a, b], Path::new("/nonexistent")).is_ok());
}

#[test]
fn config_file_declares_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("refract.toml");
    std::fs::write(
        &path,
        "[[purge_hooks]]\nkind = \"fastly\"\nservice_id = \"S\"\ntoken = \"t0ken-value\"\n\n\
         [[purge_hooks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/hook\"\nbackoff_ms = 50\n",
    )
    .unwrap();
    let config = crate::config::Config::load(Some(&path), std::iter::empty()).unwrap();
    assert_eq!(config.purge_hooks.len(), 2);
    assert_eq!(config.purge_hooks[1].backoff_ms, 50);
    assert_eq!(config.purge_hooks[0].attempts, 5);
    assert!(crate::config::Config::default().purge_hooks.is_empty());
    // the configuration, its hooks and the typed hooks never show a credential
    let shown = format!("{config:?} {:?}", config.purge_hooks[0].build(0).unwrap());
    assert!(!shown.contains("t0ken-value") && shown.contains("[redacted]"), "{shown}");
    let serialized = toml::to_string(&config.purge_hooks[0]).unwrap();
    assert!(!serialized.contains("t0ken-value"), "{serialized}");
}

#[test]
fn credentials_are_scrubbed_from_errors() {
    let h = hook("kind = \"cloudflare\"\nzone_id = \"Z\"\ntoken = \"cf-secret-token\"\n").unwrap();
    assert_eq!(h.scrub("HTTP 403: bad token cf-secret-token"), "HTTP 403: bad token [redacted]");
    assert!(!format!("{h:?}").contains("cf-secret-token"));
}

#[test]
fn backoff_doubles_and_is_capped() {
    let h = hook("kind = \"fastly\"\nservice_id = \"S\"\ntoken = \"t\"\nbackoff_ms = 100\nmax_backoff_ms = 1000\n")
        .unwrap();
    let within = |attempt: u32, ms: u64| {
        let d = backoff(&h, attempt);
        assert!(d >= Duration::from_millis(ms) && d <= Duration::from_millis(ms * 6 / 5), "{attempt}: {d:?}");
    };
    within(1, 100);
    within(2, 200);
    within(3, 400);
    within(5, 1000);
    within(30, 1000);
}

#[test]
fn a_full_queue_goes_to_the_dead_letter_file() {
    let dir = tempfile::tempdir().unwrap();
    let config: HookConfig =
        toml::from_str("kind = \"webhook\"\nname = \"w\"\nurl = \"http://127.0.0.1:1/\"\nqueue = 1\n").unwrap();
    let purger = Purger::new(&[config], dir.path()).unwrap();
    // not started: the first waits in the queue, the second finds it full
    purger.enqueue(event());
    purger.enqueue(PurgeEvent { handle: "Second".into(), ..event() });
    let text = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["hook"], "w");
    assert_eq!(lines[0]["handle"], "Second");
    assert_eq!(lines[0]["error"], "queue full");
    assert_eq!(lines[0]["attempts"], 0);
    assert_eq!(lines[0]["keys"], serde_json::json!(["AbC123"]));
}
