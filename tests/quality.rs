//! `quality=auto` end to end, on the real server: smaller than q80 on the corpus photos in `fixtures/` yet
//! within the SSIMULACRA2 target (checked with rust-av's implementation, not the pipeline's),
//! `X-Refract-Quality` on misses, hits and 304s, its own cache entries, `format=auto` weighing
//! bytes, and bad values named in 400s.

mod common;
use common::TestServer;

/// The default `auto_quality_target`.
const TARGET: f64 = 70.0;
/// The pipeline scores with fast-ssim2, this test with rust-av's ssimulacra2: they agree to a few
/// hundredths, not bit for bit.
const TOLERANCE: f64 = 0.5;

/// Corpus photos copied into `fixtures/` (the suite runs on a fresh clone, without the corpus):
/// a 9.4 MP scene, a 24 MP painting with an ICC profile, a 2.5 MP photo.
const PHOTOS: [&str; 3] = ["fossa-4096x2304.jpg", "painting-6000x4000-icc.jpg", "storm-1920x1280.jpg"];

fn photo(name: &str) -> Vec<u8> {
    common::fixture(name)
}

/// SSIMULACRA2 of `candidate` against `reference` (both encoded images of one size).
fn score(reference: &[u8], candidate: &[u8]) -> f64 {
    let frame = |bytes: &[u8]| {
        let img = common::decode(bytes).to_rgb8();
        let data = img.pixels().map(|p| p.0.map(|c| c as f32 / 255.0)).collect();
        let (w, h) = (img.width() as usize, img.height() as usize);
        ssimulacra2::Rgb::new(data, w, h, ssimulacra2::TransferCharacteristic::SRGB, ssimulacra2::ColorPrimaries::BT709)
            .expect("frame")
    };
    ssimulacra2::compute_frame_ssimulacra2(frame(reference), frame(candidate)).expect("score")
}

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap_or(""))
    }

    fn quality(&self) -> Option<u8> {
        self.headers.get("x-refract-quality").map(|v| v.to_str().unwrap().parse().expect("a number"))
    }
}

fn get(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = s.client().get(s.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().expect("GET");
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    Got { status, headers, body: r.bytes().expect("body").to_vec() }
}

#[test]
fn auto_is_smaller_than_q80_and_within_the_target_on_every_photo() {
    let s = TestServer::start();
    for name in PHOTOS {
        let h = s.upload(&photo(name), name);
        let reference = get(&s, &format!("/resize=width:800/output=format:png/{h}"), &[]);
        let q80 = get(&s, &format!("/resize=width:800/output=format:jpg,quality:80/{h}"), &[]);
        let auto_path = format!("/resize=width:800/output=format:jpg/quality=value:auto/{h}");
        let auto = get(&s, &auto_path, &[]);
        assert_eq!((reference.status, q80.status, auto.status), (200, 200, 200), "{name}");
        assert_eq!(auto.header("content-type"), "image/jpeg");
        assert!(auto.body.len() < q80.body.len(), "{name}: auto {} bytes, q80 {}", auto.body.len(), q80.body.len());
        let (auto_score, q80_score) = (score(&reference.body, &auto.body), score(&reference.body, &q80.body));
        assert!(auto_score >= TARGET - TOLERANCE, "{name}: auto scores {auto_score:.2}");
        assert!(q80.quality().is_none(), "a fixed quality has no X-Refract-Quality");
        let q = auto.quality().expect("X-Refract-Quality on the miss");
        assert!((30..=95).contains(&q), "{name}: q{q}");
        assert!(auto.header("cache-status").contains("fwd=uri-miss"), "{name}");
        assert!(auto.header("server-timing").contains("encodes;desc="), "{}", auto.header("server-timing"));
        // the answer is cached like any derivative: the search is paid once, its quality kept
        let hit = get(&s, &auto_path, &[]);
        assert!(hit.header("cache-status").contains("hit"), "{name}: {}", hit.header("cache-status"));
        assert_eq!((hit.quality(), &hit.body), (Some(q), &auto.body), "{name}");
        eprintln!(
            "{name}: q80 {} bytes ({q80_score:.1}), auto q{q} {} bytes ({auto_score:.1})",
            q80.body.len(),
            auto.body.len()
        );
    }
}

#[test]
fn auto_has_its_own_cache_entry_and_its_quality_survives_a_304() {
    let s = TestServer::start();
    let h = s.upload(&photo("storm-1920x1280.jpg"), "storm.jpg");
    let auto = get(&s, &format!("/resize=width:640/quality=value:auto/{h}"), &[]);
    // the fixed quality next to it is a miss of its own, not the automatic one's entry
    let fixed = get(&s, &format!("/resize=width:640/quality=value:80/{h}"), &[]);
    assert!(fixed.header("cache-status").contains("fwd=uri-miss"), "{}", fixed.header("cache-status"));
    assert_ne!(auto.body, fixed.body);
    // `output=quality:auto` is the same search (a plan of its own, the same bytes)
    let output = get(&s, &format!("/resize=width:640/output=quality:auto/{h}"), &[]);
    assert_eq!((output.status, output.quality()), (200, auto.quality()));
    assert_eq!(output.body, auto.body);
    // a conditional request is answered from the index, with the quality kept in the entry
    let etag = auto.header("etag").to_string();
    let revalidated = get(&s, &format!("/resize=width:640/quality=value:auto/{h}"), &[("If-None-Match", &etag)]);
    assert_eq!((revalidated.status, revalidated.quality()), (304, auto.quality()));
    // and after a restart, from the disk tier
    let mut s = s;
    s.restart();
    let hit = get(&s, &format!("/resize=width:640/quality=value:auto/{h}"), &[]);
    assert!(hit.header("cache-status").contains("hit"), "{}", hit.header("cache-status"));
    assert_eq!((hit.quality(), hit.body), (auto.quality(), auto.body));
}

#[test]
fn format_auto_keeps_the_smaller_of_the_accepted_formats() {
    let s = TestServer::start();
    for name in ["fossa-4096x2304.jpg", "painting-6000x4000-icc.jpg"] {
        let h = s.upload(&photo(name), name);
        let jpeg = get(&s, &format!("/resize=width:800/output=format:jpg,quality:auto/{h}"), &[]);
        let path = format!("/resize=width:800/output=format:auto,quality:auto/{h}");
        let webp = get(&s, &path, &[("Accept", "image/webp,*/*")]);
        assert_eq!((webp.status, webp.header("vary")), (200, "Accept"), "{name}");
        let kept = match webp.header("content-type") {
            "image/webp" => &webp.body[8..12] == b"WEBP" && webp.body.len() < jpeg.body.len(),
            // JPEG is kept when WebP is not smaller: then it is the JPEG search's own answer
            "image/jpeg" => webp.body == jpeg.body,
            other => panic!("{name}: {other}"),
        };
        assert!(kept, "{name}: {} {} bytes, JPEG {}", webp.header("content-type"), webp.body.len(), jpeg.body.len());
        assert!(webp.quality().is_some());
        let encodes = webp
            .header("server-timing")
            .split("encodes;desc=")
            .nth(1)
            .and_then(|n| n.split(',').next()?.parse::<usize>().ok());
        assert!(encodes.is_some_and(|n| n <= 8), "{}", webp.header("server-timing"));
        // WebP within the target too
        let reference = get(&s, &format!("/resize=width:800/output=format:png/{h}"), &[]);
        let got = score(&reference.body, &webp.body);
        assert!(got >= TARGET - TOLERANCE, "{name}: {got:.2}");
        // another Accept is another entry: no WebP for a client that did not ask for it
        let plain = get(&s, &path, &[("Accept", "*/*")]);
        assert_eq!((plain.header("content-type"), plain.header("vary")), ("image/jpeg", "Accept"));
        assert_eq!(plain.body, jpeg.body);
        // AVIF too: one of the three, at most eight encodes
        let chrome = get(&s, &path, &[("Accept", "image/avif,image/webp,*/*")]);
        let mime = chrome.header("content-type");
        assert!(["image/avif", "image/webp", "image/jpeg"].contains(&mime), "{mime}");
        assert!(chrome.body.len() <= jpeg.body.len(), "{name}: {mime} {} > {}", chrome.body.len(), jpeg.body.len());
    }
}

#[test]
fn bad_quality_values_are_400s_naming_the_option() {
    let s = TestServer::start();
    let h = s.upload(&photo("storm-1920x1280.jpg"), "storm.jpg");
    for (path, task, option) in [
        (format!("/quality=value:autox/{h}"), "quality", "value"),
        (format!("/quality=v:0/{h}"), "quality", "value"),
        (format!("/output=quality:autox/{h}"), "output", "quality"),
        (format!("/output=q:101/{h}"), "output", "quality"),
    ] {
        let r = get(&s, &path, &[]);
        assert_eq!((r.status, r.header("content-type")), (400, "application/json"), "{path}");
        let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!((json["error"]["task"].as_str(), json["error"]["option"].as_str()), (Some(task), Some(option)));
        assert!(json["error"]["message"].as_str().unwrap().contains("auto"), "{json}");
    }
    // `input` still parses, and still answers that it is not implemented
    let r = get(&s, &format!("/output=quality:input/{h}"), &[]);
    assert_eq!(r.status, 501);
}
