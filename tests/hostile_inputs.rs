//! Hostile uploads (truncated, corrupt, decompression bombs, lying headers, text named .jpg, SVG
//! with an external entity…): every answer is either a sane image or a 4xx JSON error — never a
//! 5xx, never a hang — and the server neither dies nor balloons in memory.

mod common;

use std::io::Cursor;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Peak RSS the server may reach over the whole hostile run. The legitimate images in
/// fixtures/hostile are at most 640x480; decoding any of the bombs (30000x30000 and up) takes
/// ≥ 900 MB, so this bound tells "refused the bomb" from "decoded it".
const MAX_PEAK_RSS_KB: u64 = 512 * 1024;

/// Filestack's own limit (section 6.2 of the API notes): more pixels than this is never sane.
const MAX_PIXELS: u64 = 100_000_000;

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

fn send(req: reqwest::blocking::RequestBuilder) -> Result<Answer, String> {
    let resp = req.send().map_err(|e| {
        if e.is_timeout() {
            format!("timeout (hang): {e}")
        } else {
            format!("connection error: {e}")
        }
    })?;
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = resp.bytes().map_err(|e| format!("status {status}, body read failed: {e}"))?.to_vec();
    Ok(Answer { status, content_type, body })
}

fn upload_raw(base: &str, bytes: Vec<u8>, filename: &str) -> Result<Answer, String> {
    send(client().post(format!("{base}/api/store/S3?key=test&filename={filename}")).body(bytes))
}

fn short(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).to_string();
    if bytes.len() > 300 {
        format!("{s}…[{} bytes]", bytes.len())
    } else {
        s
    }
}

/// The error contract: 4xx, JSON content type, `{"error":{"status":<same>,"message":"…"}}`.
fn check_error(a: &Answer, allowed: &[u16]) -> Result<(), String> {
    if !allowed.contains(&a.status) {
        return Err(format!("status {}, want one of {allowed:?}; body: {}", a.status, short(&a.body)));
    }
    if !a.content_type.to_ascii_lowercase().starts_with("application/json") {
        return Err(format!(
            "status {} with content-type {:?}, want application/json; body: {}",
            a.status,
            a.content_type,
            short(&a.body)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&a.body)
        .map_err(|e| format!("status {} body is not JSON ({e}): {}", a.status, short(&a.body)))?;
    let err = &v["error"];
    match err["message"].as_str() {
        Some(m) if !m.trim().is_empty() => {}
        _ => return Err(format!("status {}: error.message missing/empty: {}", a.status, short(&a.body))),
    }
    if err["status"].as_u64() != Some(a.status as u64) {
        return Err(format!("status {}: error.status is {} : {}", a.status, err["status"], short(&a.body)));
    }
    Ok(())
}

const ANY_4XX: &[u16] = &[400, 401, 403, 404, 405, 406, 408, 409, 410, 411, 413, 414, 415, 416, 422, 429, 431];
/// Transforming a stored but undecodable / too large image.
const UNDECODABLE: &[u16] = &[400, 413, 415, 422];

/// Decode with hard limits so a bomb coming back from the server cannot blow up the test itself.
fn decode_limited(bytes: &[u8]) -> Result<(image::DynamicImage, image::ImageFormat), String> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    let format = reader.format().ok_or("unknown image format")?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(20_000);
    limits.max_image_height = Some(20_000);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| e.to_string())?;
    Ok((img, format))
}

/// Dimensions of the original when this test's own (limited) decoder can read all of it.
fn local_dims(bytes: &[u8]) -> Option<(u32, u32)> {
    decode_limited(bytes).ok().map(|(i, _)| (i.width(), i.height()))
}

/// A 200 answer to `path` must be a decodable image whose dimensions make sense.
fn check_image(path: &str, a: &Answer, original: Option<(u32, u32)>) -> Result<(), String> {
    if !a.content_type.starts_with("image/") {
        return Err(format!("200 with content-type {:?}: {}", a.content_type, short(&a.body)));
    }
    let (img, format) = decode_limited(&a.body)
        .map_err(|e| format!("200 but not decodable ({e}), content-type {:?}", a.content_type))?;
    let (w, h) = (img.width(), img.height());
    if w == 0 || h == 0 || w as u64 * h as u64 > MAX_PIXELS {
        return Err(format!("200 with absurd dimensions {w}x{h}"));
    }
    if path.starts_with("/resize=width:64/") {
        if w != 64 {
            return Err(format!("resize=width:64 answered {w}x{h}"));
        }
        if let Some((ow, oh)) = original {
            // aspect ratio kept (either orientation, EXIF may rotate)
            let exp_a = (64.0 * oh as f64 / ow as f64).round().max(1.0);
            let exp_b = (64.0 * ow as f64 / oh as f64).round().max(1.0);
            if (h as f64 - exp_a).abs() > 1.0 && (h as f64 - exp_b).abs() > 1.0 {
                return Err(format!("resize=width:64 of a {ow}x{oh} image answered {w}x{h}"));
            }
        }
    }
    if path.starts_with("/output=format:png/") {
        if format != image::ImageFormat::Png || a.content_type != "image/png" {
            return Err(format!("output=format:png answered {format:?} with content-type {:?}", a.content_type));
        }
        if let Some((ow, oh)) = original {
            if (w, h) != (ow, oh) && (w, h) != (oh, ow) {
                return Err(format!("output=format:png of a {ow}x{oh} image answered {w}x{h}"));
            }
        }
    }
    Ok(())
}

/// (VmRSS, VmHWM) in kB.
fn rss_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn healthz(server: &common::TestServer) -> Result<(), String> {
    match send(client().get(server.url("/healthz"))) {
        Ok(a) if a.status == 200 => Ok(()),
        Ok(a) => Err(format!("GET /healthz -> {}: {}", a.status, short(&a.body))),
        Err(e) => Err(format!("GET /healthz: {e}")),
    }
}

#[test]
fn hostile_fixtures_are_refused_or_processed_safely() {
    let server = common::TestServer::start();
    let pid = Some(server.pid());
    let dir: PathBuf = common::fixture_path("hostile");
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    files.sort();
    assert!(files.len() >= 20, "fixtures/hostile looks incomplete: {files:?}");

    let started = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    let mut summary: Vec<String> = Vec::new();
    let mut peak_before = pid.and_then(rss_kb).map(|r| r.1).unwrap_or(0);
    let mut hwm_jumps: Vec<String> = Vec::new();

    for name in &files {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let original = local_dims(&bytes);
        let t0 = Instant::now();
        let mut line = format!("{name:48} upload ");
        let handle = match upload_raw(&server.base, bytes.clone(), name) {
            Err(e) => {
                failures.push(format!("{name}: upload: {e}"));
                line.push_str("ERR");
                None
            }
            Ok(a) if a.status == 200 => match serde_json::from_slice::<serde_json::Value>(&a.body)
                .ok()
                .and_then(|v| v["handle"].as_str().map(str::to_string))
            {
                Some(h) => {
                    line.push_str("200");
                    Some(h)
                }
                None => {
                    failures.push(format!("{name}: upload 200 without a handle: {}", short(&a.body)));
                    line.push_str("200?");
                    None
                }
            },
            Ok(a) => {
                line.push_str(&a.status.to_string());
                if let Err(e) = check_error(&a, ANY_4XX) {
                    failures.push(format!("{name}: upload: {e}"));
                }
                None
            }
        };

        if let Some(h) = &handle {
            // The stored original comes back byte for byte.
            match send(client().get(server.url(&format!("/{h}")))) {
                Ok(a) if a.status == 200 && a.body == bytes => line.push_str(" get 200"),
                Ok(a) if a.status == 200 => {
                    line.push_str(" get 200≠");
                    failures.push(format!(
                        "{name}: GET /{h} returned {} bytes, not the {} uploaded",
                        a.body.len(),
                        bytes.len()
                    ));
                }
                Ok(a) => {
                    line.push_str(&format!(" get {}", a.status));
                    failures.push(format!("{name}: GET /{h} -> {}: {}", a.status, short(&a.body)));
                }
                Err(e) => failures.push(format!("{name}: GET /{h}: {e}")),
            }
            for task in ["resize=width:64", "output=format:png"] {
                let path = format!("/{task}/{h}");
                let t = Instant::now();
                match send(client().get(server.url(&path))) {
                    Err(e) => {
                        line.push_str(&format!(" {task} ERR"));
                        failures.push(format!("{name}: GET {path}: {e} after {:.1}s", t.elapsed().as_secs_f64()));
                    }
                    Ok(a) => {
                        line.push_str(&format!(" {task} {}", a.status));
                        let r = if a.status == 200 {
                            check_image(&path, &a, original)
                        } else {
                            check_error(&a, UNDECODABLE)
                        };
                        if let Err(e) = r {
                            failures.push(format!("{name}: GET {path}: {e}"));
                        }
                    }
                }
            }
        }
        if let Some((rss, hwm)) = pid.and_then(rss_kb) {
            line.push_str(&format!("  rss {} MiB peak {} MiB", rss / 1024, hwm / 1024));
            if hwm > peak_before + 64 * 1024 {
                hwm_jumps.push(format!("{name}: peak RSS {} -> {} MiB", peak_before / 1024, hwm / 1024));
            }
            peak_before = hwm;
        }
        line.push_str(&format!("  {:.2}s", t0.elapsed().as_secs_f64()));
        summary.push(line);
        if let Err(e) = healthz(&server) {
            failures.push(format!("after {name}: {e}"));
        }
    }

    if let Err(e) = healthz(&server) {
        failures.push(format!("at the end: {e}"));
    }
    // still does real work
    let good = server.upload_fixture("hopper.png");
    match send(client().get(server.url(&format!("/resize=width:64/{good}")))) {
        Ok(a) if a.status == 200 => {
            if let Err(e) = check_image("/resize=width:64/", &a, Some((128, 128))) {
                failures.push(format!("at the end, hopper.png: {e}"));
            }
        }
        Ok(a) => failures.push(format!("at the end, hopper.png resize -> {}: {}", a.status, short(&a.body))),
        Err(e) => failures.push(format!("at the end, hopper.png resize: {e}")),
    }
    if let Some(pid) = pid {
        match rss_kb(pid) {
            Some((rss, hwm)) => {
                summary.push(format!(
                    "server RSS at the end {} MiB, peak {} MiB (limit {} MiB)",
                    rss / 1024,
                    hwm / 1024,
                    MAX_PEAK_RSS_KB / 1024
                ));
                if hwm > MAX_PEAK_RSS_KB {
                    failures.push(format!(
                        "server peak RSS {} MiB > {} MiB; jumps: {hwm_jumps:?}",
                        hwm / 1024,
                        MAX_PEAK_RSS_KB / 1024
                    ));
                }
            }
            None => failures.push(format!("server process {pid} is gone")),
        }
    }
    eprintln!("hostile_inputs ({:.1}s):\n{}", started.elapsed().as_secs_f64(), summary.join("\n"));
    if !failures.is_empty() {
        panic!("{} hostile-input failures:\n{}", failures.len(), failures.join("\n"));
    }
}

#[test]
fn empty_upload_is_400() {
    let server = common::TestServer::start();
    for name in ["empty.jpg", "empty.png", "empty"] {
        let a = upload_raw(&server.base, Vec::new(), name).unwrap_or_else(|e| panic!("empty upload {name}: {e}"));
        check_error(&a, &[400]).unwrap_or_else(|e| panic!("empty upload {name}: {e}"));
    }
    healthz(&server).unwrap();
}

#[test]
fn upload_over_limit_is_413() {
    let server = common::TestServer::start_with_env(&[("REFRACT_MAX_UPLOAD_BYTES", "1000")]);
    let mut failures = Vec::new();

    // A tiny real PNG under the limit is still accepted (the limit is not "refuse everything").
    let mut small = Vec::new();
    image::DynamicImage::new_rgb8(8, 8).write_to(&mut Cursor::new(&mut small), image::ImageFormat::Png).unwrap();
    let small_len = small.len();
    assert!(small_len < 1000);
    match upload_raw(&server.base, small, "small.png") {
        Ok(a) if a.status == 200 => {}
        Ok(a) => {
            failures.push(format!("{small_len}-byte PNG under a 1000-byte limit -> {}: {}", a.status, short(&a.body)))
        }
        Err(e) => failures.push(format!("small PNG: {e}")),
    }

    // 5,000 bytes with a Content-Length.
    let big = vec![0x42u8; 5000];
    match upload_raw(&server.base, big.clone(), "big.jpg") {
        Ok(a) => {
            if let Err(e) = check_error(&a, &[413]) {
                failures.push(format!("5000 bytes with Content-Length: {e}"));
            }
        }
        Err(e) => failures.push(format!("5000 bytes with Content-Length: {e}")),
    }

    // 5,000 bytes chunked (no Content-Length: the server must count while reading).
    let body = reqwest::blocking::Body::new(Cursor::new(big.clone()));
    match send(client().post(server.url("/api/store/S3?key=test&filename=big.jpg")).body(body)) {
        Ok(a) => {
            if let Err(e) = check_error(&a, &[413]) {
                failures.push(format!("5000 bytes chunked: {e}"));
            }
        }
        Err(e) => failures.push(format!("5000 bytes chunked: {e}")),
    }

    // 5,000 bytes as a multipart `fileUpload` field.
    let part = reqwest::blocking::multipart::Part::bytes(big).file_name("big.jpg").mime_str("image/jpeg").unwrap();
    let form = reqwest::blocking::multipart::Form::new().part("fileUpload", part);
    match send(client().post(server.url("/api/store/S3?key=test&filename=big.jpg")).multipart(form)) {
        Ok(a) => {
            if let Err(e) = check_error(&a, &[413]) {
                failures.push(format!("5000 bytes multipart: {e}"));
            }
        }
        Err(e) => failures.push(format!("5000 bytes multipart: {e}")),
    }

    if let Err(e) = healthz(&server) {
        failures.push(e);
    }
    assert!(failures.is_empty(), "upload limit failures:\n{}", failures.join("\n"));
}

#[test]
fn text_named_jpg_cannot_be_transformed() {
    let server = common::TestServer::start();
    let mut failures = Vec::new();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("text-as-jpg.jpg", common::fixture("hostile/text-as-jpg.jpg")),
        ("notes.jpg", b"hello, this is plain text and not a JPEG at all\n".to_vec()),
        ("fake.png", b"\x89PNG\r\n\x1a\nthis is not really a PNG".to_vec()),
    ];
    for (name, bytes) in cases {
        match upload_raw(&server.base, bytes, name) {
            Err(e) => failures.push(format!("{name}: upload: {e}")),
            Ok(a) if a.status == 200 => {
                let h = serde_json::from_slice::<serde_json::Value>(&a.body)
                    .ok()
                    .and_then(|v| v["handle"].as_str().map(str::to_string));
                let Some(h) = h else {
                    failures.push(format!("{name}: upload 200 without a handle: {}", short(&a.body)));
                    continue;
                };
                for task in ["resize=width:64", "output=format:png", "rotate=deg:90"] {
                    match send(client().get(server.url(&format!("/{task}/{h}")))) {
                        Ok(a) => {
                            if let Err(e) = check_error(&a, UNDECODABLE) {
                                failures.push(format!("{name}: /{task}/HANDLE: {e}"));
                            }
                        }
                        Err(e) => failures.push(format!("{name}: /{task}/HANDLE: {e}")),
                    }
                }
            }
            Ok(a) => {
                if let Err(e) = check_error(&a, ANY_4XX) {
                    failures.push(format!("{name}: upload: {e}"));
                }
            }
        }
    }
    if let Err(e) = healthz(&server) {
        failures.push(e);
    }
    assert!(failures.is_empty(), "text-as-image failures:\n{}", failures.join("\n"));
}
