//! SDK conformance: URLs built by the real Filestack SDKs must parse on Refract to the plan the
//! SDK's caller intended.
//!
//! Sources of URLs (all under `tests/sdk/`):
//! - `gen_js.mjs`  — filestack-js 4.3.8, run with `node`;
//! - `gen_py.py`   — filestack-python 4.0.0, run with `tests/sdk/.venv/bin/python`;
//! - `fixed_cases.jsonl` — hand-derived forms of the PHP, Java, Ruby, Swift and Go SDKs and of the
//!   docs (`filestack-sdk-urls.md`, `filestack-url-api.md`), whose SDKs cannot run here.
//!
//! Each source yields JSON lines `{"sdk", "case", "url", "expect", ["raw": true]}`. Generator URLs
//! start with [`PLACEHOLDER`]; fixed-case URLs are paths. Every case is requested as
//! `/debug` + path (debug before the key is valid grammar) unless `raw` says the path already
//! carries its own `debug`; cases with an API key are also requested with `debug` right after the
//! key. The `debug` answer must be 200 JSON whose `apikey`, `chain`, `security` and `source` equal
//! `expect` (numbers compared numerically, object key order ignored; `task_uri` is not compared).
//!
//! The SDKs are installed by `tests/sdk/setup.sh`; without them this test FAILS (it never skips).
//! All mismatches are collected and reported together.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Origin given to the generators; stripped again to get the path.
const PLACEHOLDER: &str = "http://sdk-placeholder.refract.invalid";

/// A generator that yields fewer cases than this is broken, not "passing".
const MIN_CASES: &[(&str, usize)] =
    &[("js", 80), ("py", 50), ("php", 20), ("java", 5), ("ruby", 10), ("swift", 8), ("go", 8), ("doc", 5)];

struct Case {
    sdk: String,
    name: String,
    /// Path (and query) of the transformation URL, starting with `/`.
    path: String,
    /// The path already contains `debug`; send it unchanged.
    raw: bool,
    expect: Value,
}

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("sdk")
}

const SETUP_HINT: &str = "run `bash tests/sdk/setup.sh` (needs node 20 + npm and python3.11) before `cargo test`";

fn parse_lines(origin: &str, text: &str, strip_placeholder: bool) -> Vec<Case> {
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{origin}: line {}: not JSON ({e}): {line}", i + 1));
        let field = |k: &str| -> String {
            v[k].as_str().unwrap_or_else(|| panic!("{origin}: line {}: no string `{k}`", i + 1)).to_string()
        };
        let url = field("url");
        let path = if strip_placeholder {
            url.strip_prefix(PLACEHOLDER)
                .unwrap_or_else(|| panic!("{origin}: line {}: url does not start with {PLACEHOLDER}: {url}", i + 1))
                .to_string()
        } else {
            url
        };
        assert!(path.starts_with('/'), "{origin}: line {}: path must start with '/': {path}", i + 1);
        let expect = v["expect"].clone();
        for k in ["apikey", "chain", "security", "source"] {
            assert!(expect.get(k).is_some(), "{origin}: line {}: expect lacks `{k}`", i + 1);
        }
        cases.push(Case {
            sdk: field("sdk"),
            name: field("case"),
            path,
            raw: v["raw"].as_bool().unwrap_or(false),
            expect,
        });
    }
    cases
}

fn run_generator(program: &Path, script: &str) -> Vec<Case> {
    let out = Command::new(program)
        .arg(sdk_dir().join(script))
        .arg(PLACEHOLDER)
        .current_dir(sdk_dir())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} {script}: {e}; {SETUP_HINT}", program.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{stderr}\nIf the SDK is missing or at the wrong version, {SETUP_HINT}",
        out.status
    );
    parse_lines(script, &String::from_utf8(out.stdout).expect("generator output is UTF-8"), true)
}

fn load_cases() -> Vec<Case> {
    let dir = sdk_dir();
    let js_sdk = dir.join("node_modules/filestack-js/package.json");
    let venv_python = dir.join(".venv/bin/python");
    assert!(js_sdk.is_file(), "filestack-js is not installed ({} missing): {SETUP_HINT}", js_sdk.display());
    assert!(venv_python.is_file(), "filestack-python venv is missing ({}): {SETUP_HINT}", venv_python.display());

    let mut cases = run_generator(Path::new("node"), "gen_js.mjs");
    cases.extend(run_generator(&venv_python, "gen_py.py"));
    let fixed = dir.join("fixed_cases.jsonl");
    let text = std::fs::read_to_string(&fixed).unwrap_or_else(|e| panic!("{}: {e}", fixed.display()));
    cases.extend(parse_lines("fixed_cases.jsonl", &text, false));

    let mut names = std::collections::HashSet::new();
    for c in &cases {
        assert!(names.insert(format!("{}/{}", c.sdk, c.name)), "duplicate case {}/{}", c.sdk, c.name);
    }
    for (sdk, min) in MIN_CASES {
        let n = cases.iter().filter(|c| c.sdk == *sdk).count();
        assert!(n >= *min, "only {n} `{sdk}` cases (expected at least {min}): a generator is broken");
    }
    cases
}

/// Structural comparison; numbers compare numerically. Differences go to `out` as
/// `json.path: expected X, got Y`.
fn diff(expected: &Value, got: &Value, at: &str, out: &mut Vec<String>) {
    match (expected, got) {
        (Value::Number(a), Value::Number(b)) => {
            let same = match (a.as_i64(), b.as_i64()) {
                (Some(x), Some(y)) => x == y,
                _ => {
                    let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
                    x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
                }
            };
            if !same {
                out.push(format!("{at}: expected {expected}, got {got}"));
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    Some(vb) => diff(va, vb, &format!("{at}.{k}"), out),
                    None => out.push(format!("{at}.{k}: expected {va}, missing")),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.push(format!("{at}.{k}: not expected, got {vb}"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                diff(va, vb, &format!("{at}[{i}]"), out);
            }
        }
        _ if expected == got => {}
        _ => out.push(format!("{at}: expected {expected}, got {got}")),
    }
}

struct Probe<'a> {
    case: &'a Case,
    label: String,
    path: String,
}

fn probes(cases: &[Case]) -> Vec<Probe<'_>> {
    let mut out = Vec::new();
    for c in cases {
        if c.raw {
            out.push(Probe { case: c, label: "as given".into(), path: c.path.clone() });
            continue;
        }
        out.push(Probe { case: c, label: "debug before key".into(), path: format!("/debug{}", c.path) });
        // `/KEY/debug/…` — the docs', Java's and PHP's position (not for b64 mode, whose grammar
        // has no debug slot after the key).
        if let Some(key) = c.expect["apikey"].as_str() {
            let prefix = format!("/{key}/");
            if let Some(rest) = c.path.strip_prefix(&prefix) {
                if !rest.starts_with("b64/") && !rest.contains("/b64/") {
                    out.push(Probe { case: c, label: "debug after key".into(), path: format!("/{key}/debug/{rest}") });
                }
            }
        }
    }
    out
}

#[test]
fn sdk_built_urls_parse_to_the_intended_plan() {
    let cases = load_cases();
    // REFRACT_SDK_CONFORMANCE_BASE=http://host:port runs the probes against an already running
    // server (e.g. a release build) instead of spawning one.
    let external = std::env::var("REFRACT_SDK_CONFORMANCE_BASE").ok().filter(|b| !b.is_empty());
    let server = if external.is_none() { Some(common::TestServer::start()) } else { None };
    let base = match (&external, &server) {
        (Some(b), _) => b.trim_end_matches('/').to_string(),
        (None, Some(s)) => s.base.clone(),
        (None, None) => unreachable!(),
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let probes = probes(&cases);

    let mut failures: Vec<String> = Vec::new();
    for p in &probes {
        let full = format!("{base}{}", p.path);
        let c = p.case;
        let head = format!("[{}] {} ({})", c.sdk, c.name, p.label);
        let sent = match reqwest::Url::parse(&full) {
            Ok(u) => u,
            Err(e) => {
                failures.push(format!("{head}\n  url:      {full}\n  error:    unparsable URL: {e}"));
                continue;
            }
        };
        let shown = sent.as_str().strip_prefix(base.as_str()).unwrap_or(sent.as_str()).to_string();
        let report = |what: String| {
            format!(
                "{head}\n  url:      {shown}\n  expected: {}\n  got:      {what}",
                serde_json::to_string(&c.expect).unwrap()
            )
        };
        let resp = match client.get(sent.clone()).send() {
            Ok(r) => r,
            Err(e) => {
                failures.push(report(format!("request failed: {e}")));
                continue;
            }
        };
        let status = resp.status();
        let ctype =
            resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = resp.text().unwrap_or_default();
        if status != 200 {
            failures.push(report(format!("HTTP {status}: {}", truncate(&body, 500))));
            continue;
        }
        let got: Value = match serde_json::from_str(&body) {
            Ok(v) => v,
            Err(e) => {
                failures.push(report(format!("HTTP 200 {ctype}, not JSON ({e}): {}", truncate(&body, 300))));
                continue;
            }
        };
        let mut diffs = Vec::new();
        if !ctype.starts_with("application/json") {
            diffs.push(format!("content-type: expected application/json, got {ctype:?}"));
        }
        if got["debug"] != Value::Bool(true) {
            diffs.push(format!("debug: expected true, got {}", got["debug"]));
        }
        for k in ["apikey", "chain", "security", "source"] {
            match got.get(k) {
                Some(g) => diff(&c.expect[k], g, k, &mut diffs),
                None => diffs.push(format!("{k}: missing from the answer")),
            }
        }
        if !diffs.is_empty() {
            let subset: serde_json::Map<String, Value> = ["apikey", "chain", "security", "source"]
                .iter()
                .filter_map(|k| got.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
            failures.push(format!(
                "{}\n  diff:     {}",
                report(serde_json::to_string(&subset).unwrap()),
                diffs.join("\n            ")
            ));
        }
    }

    let mut per_sdk = std::collections::BTreeMap::<&str, usize>::new();
    for c in &cases {
        *per_sdk.entry(c.sdk.as_str()).or_default() += 1;
    }
    eprintln!(
        "sdk_conformance: {} cases {per_sdk:?}, {} requests, {} mismatches",
        cases.len(),
        probes.len(),
        failures.len()
    );
    if !failures.is_empty() {
        panic!(
            "{} of {} SDK URL probes did not parse to the intended plan:\n\n{}\n",
            failures.len(),
            probes.len(),
            failures.join("\n\n")
        );
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// 45 s of a 440 Hz tone, 8 kHz mono WAV: long enough for every pinned clip.
fn memo_wav() -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
    for i in 0..45 * 8_000 {
        w.write_sample(((f64::from(i) * 440.0 * std::f64::consts::TAU / 8_000.0).sin() * 16_000.0) as i16).unwrap();
    }
    w.finalize().unwrap();
    out.into_inner()
}

/// What a pinned `video_convert` call must get: the job's JSON with a stored, playable result,
/// or a 501 naming what is not built (video, HLS).
fn check_audio_call(s: &common::TestServer, path: &str, preset: &str) -> Result<(), String> {
    let r = s.get(path);
    let status = r.status().as_u16();
    let body = r.text().unwrap_or_default();
    let video = ["h264", "webm", "hls"].iter().any(|v| preset.starts_with(v));
    if video {
        return match status == 501 && body.starts_with("{\"error\"") {
            true => Ok(()),
            false => Err(format!("a video preset should be a 501 JSON, got {status}: {body}")),
        };
    }
    let job: Value = serde_json::from_str(&body).map_err(|e| format!("{status}, not JSON ({e}): {body}"))?;
    if status != 200 || job["status"] != "completed" || job["uuid"].as_str().map(str::len) != Some(32) {
        return Err(format!("{status}: {body}"));
    }
    let url = job["data"]["url"].as_str().ok_or(format!("no data.url: {body}"))?;
    let handle = url.rsplit('/').next().unwrap_or_default();
    let stored = s.get(&format!("/{handle}"));
    let ctype = stored.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let len = stored.bytes().map(|b| b.len()).unwrap_or(0);
    match ctype.starts_with("audio/") && len > 0 {
        true => Ok(()),
        false => Err(format!("the result {url} is {ctype:?}, {len} bytes")),
    }
}

/// Every pinned SDK `video_convert`/`av_convert` call over a stored file, requested for real
/// (not `debug`) on an audio file: the answer the SDK would get is useful. Calls over an external
/// URL are left out (no network here); `tests/audio.rs` drives filestack-python's whole
/// `AudioVisual` flow.
#[test]
fn pinned_sdk_audio_calls_get_useful_answers() {
    let cases = load_cases();
    let s = common::TestServer::start();
    let memo = s.upload(&memo_wav(), "memo.wav");
    let (mut checked, mut failures) = (Vec::new(), Vec::new());
    for c in &cases {
        let chain = c.expect["chain"].as_array().cloned().unwrap_or_default();
        let Some(task) = chain.iter().find(|t| t["name"] == "video_convert") else { continue };
        let Some(handle) = c.expect["source"]["handle"].as_str() else { continue };
        let Some(at) = c.path.rfind(handle) else { continue };
        let path = format!("{}{memo}{}", &c.path[..at], &c.path[at + handle.len()..]);
        let preset = task["params"]["preset"].as_str().unwrap_or("");
        checked.push(format!("{}/{} ({preset})", c.sdk, c.name));
        if let Err(why) = check_audio_call(&s, &path, preset) {
            failures.push(format!("[{}] {}: {path}\n  {why}", c.sdk, c.name));
        }
    }
    eprintln!("pinned audio calls checked: {}", checked.join(", "));
    assert!(checked.len() >= 8, "only {} pinned audio calls: {checked:?}", checked.len());
    assert!(
        failures.is_empty(),
        "{} of {} pinned audio calls:\n{}",
        failures.len(),
        checked.len(),
        failures.join("\n")
    );
}
