//! The real Filestack SDKs as clients: filestack-python 4.0.0 and filestack-js 4.3.8 (installed
//! by `tests/sdk/setup.sh`) upload through the multipart protocol — regular and intelligent
//! ingestion, a file that needs several parts — then read metadata, download, derive, store and
//! delete. Every result is checked by content here.

mod common;

use common::{decode, TestServer};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::Command;

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk")
}

/// A 2048×2048 PNG of noise: about 12 MiB, so every SDK splits it into parts.
fn noise_png(dir: &Path) -> (PathBuf, Vec<u8>) {
    let mut x: u32 = 0x1234_5678;
    let img = image::RgbImage::from_fn(2048, 2048, |_, _| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        image::Rgb([x as u8, (x >> 8) as u8, (x >> 16) as u8])
    });
    let path = dir.join("noise.png");
    img.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 11 << 20, "large enough for several parts: {}", bytes.len());
    (path, bytes)
}

fn run(program: &Path, script: &str, base: &str, file: &Path) -> serde_json::Value {
    run_with(program, script, base, file, &[])
}

fn run_with(program: &Path, script: &str, base: &str, file: &Path, env: &[(&str, &str)]) -> serde_json::Value {
    let out = Command::new(program)
        .arg(sdk_dir().join(script))
        .arg(base)
        .arg(file)
        .envs(env.iter().copied())
        .current_dir(sdk_dir())
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}; run `bash tests/sdk/setup.sh` first"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{script}: {e}: {stdout}"))
}

/// `upload_url`/`storeURL` fetch a URL of this very server: loopback must be allowed for it.
const LOOPBACK_SOURCES: &[(&str, &str)] = &[("REFRACT_SOURCE_ALLOW_HOSTS", "127.0.0.1/32")];

/// The file `POST /process` stored from the uploaded one's URL: the same bytes, its own name.
fn check_copy(s: &TestServer, out: &serde_json::Value, original: &[u8], who: &str) {
    let copy = out["from_url"].as_str().unwrap_or_else(|| panic!("{who}: no handle in {out}"));
    assert_ne!(Some(copy), out["regular"].as_str());
    assert_eq!(sha256(&s.get(&format!("/{copy}")).bytes().unwrap()), sha256(original), "{who}: bytes");
    let meta: serde_json::Value = s.get(&format!("/api/file/{copy}/metadata?filename=true")).json().unwrap();
    assert_eq!(meta["filename"], "copy.png", "{who}");
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The handle's bytes are the file's, its metadata right, and a derivative decodes.
fn check_upload(s: &TestServer, handle: &str, original: &[u8], who: &str) {
    let body = s.get(&format!("/{handle}")).bytes().unwrap();
    assert_eq!(sha256(&body), sha256(original), "{who}: stored bytes");
    let meta: serde_json::Value =
        s.get(&format!("/api/file/{handle}/metadata?width=true&height=true&size=true")).json().unwrap();
    assert_eq!((meta["width"].as_u64(), meta["height"].as_u64()), (Some(2048), Some(2048)), "{who}: {meta}");
    assert_eq!(meta["size"].as_u64(), Some(original.len() as u64), "{who}");
    let small = decode(&s.get(&format!("/resize=w:100/{handle}")).bytes().unwrap());
    assert_eq!((small.width(), small.height()), (100, 100), "{who}: derivative");
}

#[test]
fn filestack_python_uploads_reads_stores_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (file, original) = noise_png(dir.path());
    let s = TestServer::start_with_env(LOOPBACK_SOURCES);
    let out = run(&sdk_dir().join(".venv/bin/python"), "py_client.py", &s.base, &file);
    check_copy(&s, &out, &original, "python upload_url");
    for mode in ["regular", "intelligent"] {
        let handle = out[mode].as_str().unwrap();
        if mode == "regular" {
            check_upload(&s, handle, &original, "python regular");
        }
    }
    let meta = &out["metadata"];
    assert_eq!((meta["width"].as_u64(), meta["mimetype"].as_str()), (Some(2048), Some("image/png")), "{meta}");
    assert_eq!(meta["filename"], "noise.png");
    assert_eq!(out["download_sha256"].as_str(), Some(sha256(&original).as_str()));
    // client.zip: both files, under their names (the second renamed), with their bytes
    let zip = out["zip"].as_object().unwrap_or_else(|| panic!("no zip in {out}"));
    assert_eq!(zip.len(), 2, "{zip:?}");
    assert!(zip.values().all(|h| h.as_str() == Some(sha256(&original).as_str())), "{zip:?}");
    assert!(zip.contains_key("noise.png") && zip.contains_key("copy.png"), "{zip:?}");
    let regular = out["regular"].as_str().unwrap();
    let missing = s.get(&format!("/k/zip/[{regular},AAAAAAAAAAAAAAAAAAAA]"));
    assert_eq!(missing.status(), 404, "a missing file is a 404 before any byte of the archive");
    let stored = out["stored"].as_str().unwrap();
    assert_eq!(decode(&s.get(&format!("/{stored}")).bytes().unwrap()).width(), 64, "python store()");
    let deleted = out["deleted"].as_str().unwrap();
    assert_eq!(s.get(&format!("/{deleted}")).status(), 404, "python delete()");
    let overwritten = out["overwritten"].as_str().unwrap();
    let now = s.get(&format!("/{overwritten}")).bytes().unwrap();
    assert_eq!(sha256(&now), sha256(&common::fixture("hopper.jpg")), "python overwrite()");
    let meta: serde_json::Value = s.get(&format!("/api/file/{overwritten}/metadata?width=true")).json().unwrap();
    assert_eq!(meta["width"].as_u64(), Some(128), "overwrite records the new dimensions: {meta}");
    // every session was completed: no parts left behind
    let parts = s.data_dir.join("spool/multipart");
    assert_eq!(std::fs::read_dir(&parts).map(|d| d.count()).unwrap_or(0), 0, "multipart parts left");
}

const SDK_SECRET: &str = "sdk-app-secret-0123456789";

/// Run an SDK script against a server whose app requires signatures (the script signs with
/// `REFRACT_SDK_SECRET`): the server, the script's output, the uploaded bytes, and a query that
/// signs the test's own reads. Unsigned, the upload is refused to everyone.
fn run_signed(program: &Path, script: &str) -> (TestServer, serde_json::Value, Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let (file, original) = noise_png(dir.path());
    let config = format!(
        "source_allow_hosts = [\"127.0.0.1/32\"]\n[[apps]]\napi_key = \"AhTgLagciQByzXpFGRI0Az\"\nsecrets = [\"{SDK_SECRET}\"]\n"
    );
    let s = TestServer::start_with_config(&config);
    let out = run_with(program, script, &s.base, &file, &[("REFRACT_SDK_SECRET", SDK_SECRET)]);
    let policy = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"expiry":4102444800}"#)
    };
    let signed = format!("policy={policy}&signature={}", common::sign(SDK_SECRET, &policy));
    let regular = out["regular"].as_str().unwrap_or_else(|| panic!("{script}: no upload in {out}"));
    assert_eq!(s.get(&format!("/{regular}")).status(), 401, "{script}: an unsigned read");
    (s, out, original, signed)
}

#[test]
fn filestack_python_signs_every_call_for_an_app_that_requires_it() {
    let (s, out, original, signed) = run_signed(&sdk_dir().join(".venv/bin/python"), "py_client.py");
    let regular = out["regular"].as_str().unwrap();
    let body = s.get(&format!("/{regular}?{signed}")).bytes().unwrap();
    assert_eq!(sha256(&body), sha256(&original));
    assert_eq!(out["metadata"]["width"].as_u64(), Some(2048), "{}", out["metadata"]);
    assert_eq!(out["download_sha256"].as_str(), Some(sha256(&original).as_str()));
    let copy = out["from_url"].as_str().unwrap();
    assert_eq!(sha256(&s.get(&format!("/{copy}?{signed}")).bytes().unwrap()), sha256(&original), "upload_url");
    assert_eq!(out["zip"].as_object().map(|z| z.len()), Some(2), "{out}");
    assert_eq!(out["unsigned_store_status"], 401, "the SDK's store() does not sign: {out}");
    let stored = out["stored"].as_str().unwrap();
    assert_eq!(decode(&s.get(&format!("/{stored}?{signed}")).bytes().unwrap()).width(), 64, "store, signed");
    let deleted = out["deleted"].as_str().unwrap();
    assert_eq!(s.get(&format!("/{deleted}?{signed}")).status(), 404, "delete()");
    let overwritten = out["overwritten"].as_str().unwrap();
    let now = s.get(&format!("/{overwritten}?{signed}")).bytes().unwrap();
    assert_eq!(sha256(&now), sha256(&common::fixture("hopper.jpg")), "overwrite(), signed");
}

#[test]
fn filestack_js_uploads_regular_and_intelligent() {
    let dir = tempfile::tempdir().unwrap();
    let (file, original) = noise_png(dir.path());
    let s = TestServer::start_with_env(LOOPBACK_SOURCES);
    let out = run(Path::new("node"), "js_client.mjs", &s.base, &file);
    check_copy(&s, &out, &original, "js storeURL");
    for mode in ["regular", "intelligent"] {
        check_upload(&s, out[mode].as_str().unwrap(), &original, &format!("js {mode}"));
    }
    assert_eq!(out["metadata"]["width"].as_u64(), Some(2048), "{}", out["metadata"]);
    check_js_file_calls(&s, &out, &original);
}

/// download, retrieve (metadata and HEAD) and remove, as filestack-js calls them.
fn check_js_file_calls(s: &TestServer, out: &serde_json::Value, original: &[u8]) {
    assert_eq!(out["download_sha256"].as_str(), Some(sha256(original).as_str()), "js download");
    let meta = &out["retrieve_metadata"];
    assert_eq!((meta["width"].as_u64(), meta["filename"].as_str()), (Some(2048), Some("noise.png")), "{meta}");
    assert_eq!(out["retrieve_head_length"].as_str(), Some(original.len().to_string().as_str()), "js HEAD");
    let removed = out["removed"].as_str().unwrap_or_else(|| panic!("no removed handle in {out}"));
    assert_eq!(s.get(&format!("/{removed}")).status(), 404, "js remove");
}

#[test]
fn filestack_js_signs_every_call_for_an_app_that_requires_it() {
    let (s, out, original, signed) = run_signed(Path::new("node"), "js_client.mjs");
    assert_eq!(out["metadata"]["width"].as_u64(), Some(2048), "{}", out["metadata"]);
    assert_eq!(out["download_sha256"].as_str(), Some(sha256(&original).as_str()), "js download, signed");
    assert_eq!(out["retrieve_metadata"]["width"].as_u64(), Some(2048));
    let removed = out["removed"].as_str().unwrap();
    assert_eq!(s.get(&format!("/{removed}?{signed}")).status(), 404, "js remove, signed");
    let copy = out["from_url"].as_str().unwrap();
    assert_eq!(sha256(&s.get(&format!("/{copy}?{signed}")).bytes().unwrap()), sha256(&original), "storeURL");
}

#[test]
fn a_part_whose_md5_does_not_match_is_refused_and_sessions_need_every_part() {
    let s = TestServer::start();
    let c = s.client();
    let post = |path: &str, body: serde_json::Value| -> reqwest::blocking::Response {
        c.post(s.url(path)).json(&body).send().unwrap()
    };
    let start: serde_json::Value =
        post("/multipart/start", serde_json::json!({"apikey": "k", "filename": "a.bin", "size": 10})).json().unwrap();
    let id = start["upload_id"].as_str().unwrap().to_string();
    let md5 = |b: &[u8]| base64_md5(b);
    let announce = |part: u32, bytes: &[u8]| -> String {
        let body =
            serde_json::json!({"apikey": "k", "upload_id": id, "part": part, "size": bytes.len(), "md5": md5(bytes)});
        let a: serde_json::Value = post("/multipart/upload", body).json().unwrap();
        a["url"].as_str().unwrap().to_string()
    };
    let url = announce(1, b"hello");
    let wrong = c.put(&url).body(b"hellO".to_vec()).send().unwrap();
    assert_eq!(wrong.status(), 400, "a part whose md5 does not match");
    let ok = c.put(&url).body(b"hello".to_vec()).send().unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().contains_key("etag"));
    // part 2 never arrives: complete refuses, naming it
    let done = post("/multipart/complete", serde_json::json!({"apikey": "k", "upload_id": id}));
    assert_eq!(done.status(), 400);
    let url2 = announce(2, b"world");
    assert_eq!(c.put(&url2).body(b"world".to_vec()).send().unwrap().status(), 200);
    let done: serde_json::Value =
        post("/multipart/complete", serde_json::json!({"apikey": "k", "upload_id": id})).json().unwrap();
    let handle = done["handle"].as_str().unwrap();
    assert_eq!(s.get(&format!("/{handle}")).bytes().unwrap().as_ref(), b"helloworld");
    assert_eq!(post("/multipart/upload", serde_json::json!({"upload_id": id, "part": 1, "md5": "x"})).status(), 404);
}

fn base64_md5(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(bytes))
}

#[test]
fn an_abandoned_upload_is_dropped_with_its_parts() {
    let s = TestServer::start_with_env(&[("REFRACT_MULTIPART_TIMEOUT_SECS", "1")]);
    let c = s.client();
    let start = |name: &str| -> String {
        let body = serde_json::json!({"apikey": "k", "filename": name, "size": 5});
        let a: serde_json::Value = c.post(s.url("/multipart/start")).json(&body).send().unwrap().json().unwrap();
        a["upload_id"].as_str().unwrap().to_string()
    };
    let id = start("abandoned.bin");
    let body = serde_json::json!({"apikey": "k", "upload_id": id, "part": 1, "size": 5, "md5": base64_md5(b"hello")});
    let a: serde_json::Value = c.post(s.url("/multipart/upload")).json(&body).send().unwrap().json().unwrap();
    assert_eq!(c.put(a["url"].as_str().unwrap()).body(b"hello".to_vec()).send().unwrap().status(), 200);
    let parts = s.data_dir.join("spool/multipart").join(&id);
    assert!(parts.exists());
    std::thread::sleep(std::time::Duration::from_millis(1600));
    start("next.bin");
    assert!(!parts.exists(), "the idle session's parts are gone");
    let done = c.post(s.url("/multipart/complete")).json(&serde_json::json!({"apikey": "k", "upload_id": id})).send();
    assert_eq!(done.unwrap().status(), 404);
}
