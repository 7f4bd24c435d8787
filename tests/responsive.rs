//! `GET /responsive/<transformation path>`: the `<picture>` of an image as JSON or HTML. Every
//! URL of every srcset is fetched and checked (decoded width = the declared `Nw`, format = the
//! declared type; AVIF by its `ftyp` brand and `ispe` width, as there is no AVIF decoder here),
//! for stored handles, aliases and external URLs; then the cap at the image's own width,
//! `resolutions`, the caller's tasks, signed apps (the same segment in every URL), bad options,
//! non-images and the escaping of what the request chose (`alt`, `sizes`).

mod common;

use common::{decode, fixture, RemoteImage, TestServer};
use reqwest::blocking::Response;
use serde_json::Value;

const SECRET: &str = "responsive-app-secret-0123456789";

fn responsive(s: &TestServer, path: &str, query: &[(&str, &str)]) -> Response {
    s.client().get(s.url(&format!("/responsive/{path}"))).query(query).send().expect("GET /responsive")
}

fn json_of(r: Response) -> Value {
    assert_eq!(r.status(), 200, "{:?}", r.text());
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().unwrap()
}

/// `URL Nw, URL Nw` → `[(URL, N)]` (URLs hold commas, never spaces).
fn entries(srcset: &str) -> Vec<(String, u32)> {
    srcset
        .split(", ")
        .map(|entry| {
            let (url, w) = entry.rsplit_once(' ').unwrap_or_else(|| panic!("srcset entry `{entry}`"));
            (url.to_string(), w.strip_suffix('w').unwrap().parse().unwrap())
        })
        .collect()
}

fn widths(srcset: &str) -> Vec<u32> {
    entries(srcset).into_iter().map(|(_, w)| w).collect()
}

/// An AVIF's width, from its `ispe` property (`ispe`, version and flags, width, height).
fn avif_width(bytes: &[u8]) -> u32 {
    assert_eq!(&bytes[4..12], b"ftypavif", "not an AVIF");
    let at = bytes.windows(4).position(|w| w == b"ispe").expect("an ispe box");
    u32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap())
}

/// Fetch one URL: 200, the declared type, the declared width, and the aspect ratio of the
/// picture's `width`×`height` (±1 px of rounding). Returns the bytes.
fn check_entry(client: &reqwest::blocking::Client, url: &str, width: u32, mime: &str, aspect: (u32, u32)) {
    let r = client.get(url).send().unwrap();
    assert_eq!(r.status(), 200, "{url}: {:?}", r.text());
    assert_eq!(r.headers()["content-type"], mime, "{url}");
    let bytes = r.bytes().unwrap();
    if mime == "image/avif" {
        assert_eq!(avif_width(&bytes), width, "{url}");
        return;
    }
    let expected = match mime {
        "image/jpeg" => image::ImageFormat::Jpeg,
        "image/png" => image::ImageFormat::Png,
        "image/webp" => image::ImageFormat::WebP,
        other => panic!("unexpected type {other}"),
    };
    assert_eq!(image::guess_format(&bytes).unwrap(), expected, "{url}");
    let img = decode(&bytes);
    assert_eq!(img.width(), width, "{url}");
    let height = (width as f64 * aspect.1 as f64 / aspect.0 as f64).round() as i64;
    assert!((img.height() as i64 - height).abs() <= 1, "{url}: {}x{} is not {aspect:?}", img.width(), img.height());
}

/// Fetch every URL of every srcset (and the `src`), each checked by `check_entry`.
fn check_every_url(s: &TestServer, picture: &Value) {
    let aspect = (picture["width"].as_u64().unwrap() as u32, picture["height"].as_u64().unwrap() as u32);
    let client = s.client();
    let mut sets: Vec<(&str, &str)> = picture["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|source| (source["srcset"].as_str().unwrap(), source["type"].as_str().unwrap()))
        .collect();
    let img = &picture["img"];
    sets.push((img["srcset"].as_str().unwrap(), img["type"].as_str().unwrap()));
    for (srcset, mime) in sets {
        for (url, width) in entries(srcset) {
            check_entry(&client, &url, width, mime, aspect);
        }
    }
    let src = img["src"].as_str().unwrap();
    let (_, width) =
        entries(img["srcset"].as_str().unwrap()).into_iter().find(|(u, _)| u == src).expect("src in srcset");
    check_entry(&client, src, width, img["type"].as_str().unwrap(), aspect);
}

/// The attributes of each `<tag …>` of an HTML snippet, unescaped.
fn tags(html: &str, tag: &str) -> Vec<Vec<(String, String)>> {
    let open = format!("<{tag} ");
    html.match_indices(&open)
        .map(|(at, _)| {
            let rest = &html[at + open.len()..];
            let body = &rest[..rest.find('>').expect("closed tag")];
            let mut attrs = Vec::new();
            let mut text = body.trim();
            while let Some(eq) = text.find("=\"") {
                let name = text[..eq].trim().to_string();
                let value_end = text[eq + 2..].find('"').expect("closed attribute") + eq + 2;
                attrs.push((name, unescape(&text[eq + 2..value_end])));
                text = text[value_end + 1..].trim();
            }
            assert!(text.is_empty(), "unparsed attribute text `{text}` in {body}");
            attrs
        })
        .collect()
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> &'a str {
    attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {name} in {attrs:?}"))
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'").replace("&amp;", "&")
}

/// A 1000-px-wide photo (the fossa, resized by the server itself), uploaded; `(handle, w, h)`.
fn mid_size_photo(s: &TestServer) -> (String, u32, u32) {
    let big = s.upload_fixture("fossa-4096x2304.jpg");
    let r = s.get(&format!("/resize=width:1000/{big}"));
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().unwrap().to_vec();
    let img = decode(&bytes);
    (s.upload(&bytes, "fossa-1000.jpg"), img.width(), img.height())
}

#[test]
fn a_picture_lists_every_width_in_every_format_and_each_url_answers_it() {
    let s = TestServer::start();
    let (handle, w, h) = mid_size_photo(&s);
    let sizes = "(min-width: 800px) 50vw, 100vw";
    let r = responsive(&s, &handle, &[("sizes", sizes), ("alt", "A fossa")]);
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    assert_eq!(r.headers()["surrogate-key"], handle.as_str(), "purged with the handle");
    assert_eq!(r.headers()["vary"], "Accept", "Accept chose JSON");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let picture = json_of(r);
    assert_eq!((picture["width"].as_u64(), picture["height"].as_u64()), (Some(w as u64), Some(h as u64)));
    assert_eq!(picture["sizes"], sizes);
    let types: Vec<&str> = picture["sources"].as_array().unwrap().iter().map(|s| s["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["image/avif", "image/webp"]);
    let img = &picture["img"];
    assert_eq!(
        (img["type"].as_str(), img["alt"].as_str(), img["sizes"].as_str()),
        (Some("image/jpeg"), Some("A fossa"), Some(sizes))
    );
    assert_eq!((img["width"].as_u64(), img["height"].as_u64()), (Some(w as u64), Some(h as u64)));
    assert_eq!((img["loading"].as_str(), img["decoding"].as_str()), (Some("lazy"), Some("async")));
    // the ladder up to the photo's own width, which ends the list (it lies between 960 and 1080)
    let ladder = [160, 240, 320, 400, 480, 560, 640, 768, 960, 1000];
    for srcset in [&picture["sources"][0]["srcset"], &picture["sources"][1]["srcset"], &img["srcset"]] {
        assert_eq!(widths(srcset.as_str().unwrap()), ladder);
    }
    // canonical URLs on the request's host: resize, then the format
    let base = s.base.clone();
    let first = &entries(picture["sources"][0]["srcset"].as_str().unwrap())[0].0;
    assert_eq!(first, &format!("{base}/resize=width:160/output=format:avif/{handle}"));
    assert_eq!(img["src"], format!("{base}/resize=width:1000/{handle}"), "the widest when none reaches 1280");
    check_every_url(&s, &picture);

    // the HTML field says the same, attribute for attribute
    let html = picture["html"].as_str().unwrap();
    let sources = tags(html, "source");
    for (i, source) in sources.iter().enumerate() {
        assert_eq!(attr(source, "srcset"), picture["sources"][i]["srcset"]);
        assert_eq!(attr(source, "type"), picture["sources"][i]["type"]);
        assert_eq!(attr(source, "sizes"), sizes);
    }
    let tag = &tags(html, "img")[0];
    for name in ["src", "srcset", "sizes", "alt", "loading", "decoding"] {
        assert_eq!(attr(tag, name), img[name].as_str().unwrap(), "{name}");
    }
    assert_eq!((attr(tag, "width"), attr(tag, "height")), (w.to_string().as_str(), h.to_string().as_str()));

    // a conditional request is a 304
    let r = s.client().get(s.url(&format!("/responsive/{handle}"))).query(&[("sizes", sizes), ("alt", "A fossa")]);
    let r = r.header("If-None-Match", &etag).send().unwrap();
    assert_eq!(r.status(), 304);
}

#[test]
fn the_caller_s_tasks_come_first_and_set_the_size() {
    let s = TestServer::start();
    let handle = s.upload_fixture("fossa-4096x2304.jpg");
    let r = responsive(&s, &format!("resize=fit:crop,height:400/{handle}"), &[("formats", "webp,png")]);
    let picture = json_of(r);
    // 4096×2304 at 400 px high is 711 px wide: the srcsets stop there
    assert_eq!((picture["width"].as_u64(), picture["height"].as_u64()), (Some(711), Some(400)));
    assert_eq!(picture["sources"].as_array().unwrap().len(), 1);
    assert_eq!(picture["sources"][0]["type"], "image/webp");
    assert_eq!(picture["img"]["type"], "image/png");
    assert_eq!(picture["sizes"], "100vw", "the default");
    let all = entries(picture["img"]["srcset"].as_str().unwrap());
    assert_eq!(all.iter().map(|e| e.1).collect::<Vec<_>>(), [160, 240, 320, 400, 480, 560, 640, 711]);
    for (url, w) in &all {
        assert!(
            url.ends_with(&format!("/resize=fit:crop,height:400/resize=width:{w}/output=format:png/{handle}")),
            "{url}"
        );
    }
    check_every_url(&s, &picture);
}

#[test]
fn narrow_sources_stop_at_their_width_and_resolutions_replace_the_ladder() {
    let s = TestServer::start();
    // 162×150: wider than the first step (160) only
    let handle = s.upload_fixture("pil123rgba.png");
    let picture = json_of(responsive(&s, &handle, &[]));
    assert_eq!((picture["width"].as_u64(), picture["height"].as_u64()), (Some(162), Some(150)));
    assert_eq!(widths(picture["img"]["srcset"].as_str().unwrap()), [160, 162]);
    assert_eq!(picture["img"]["type"], "image/png", "the original format");
    check_every_url(&s, &picture);

    // resolutions: their own widths, still capped
    let picture = json_of(responsive(&s, &handle, &[("resolutions", "300w,50w,100"), ("formats", "webp,jpg")]));
    assert_eq!(widths(picture["img"]["srcset"].as_str().unwrap()), [50, 100, 162]);
    assert_eq!(widths(picture["sources"][0]["srcset"].as_str().unwrap()), [50, 100, 162]);
    assert_eq!(picture["img"]["type"], "image/jpeg");
    check_every_url(&s, &picture);
    let picture = json_of(responsive(&s, &handle, &[("resolutions", "64,128"), ("formats", "original")]));
    assert_eq!(widths(picture["img"]["srcset"].as_str().unwrap()), [64, 128], "under the width: no cap entry");
    assert!(picture["sources"].as_array().unwrap().is_empty());

    // a source narrower than the whole ladder has one entry: itself
    let small = s.upload_fixture("hopper.jpg");
    let picture = json_of(responsive(&s, &small, &[]));
    assert_eq!(widths(picture["img"]["srcset"].as_str().unwrap()), [128]);
}

#[test]
fn aliases_and_external_urls_are_probed_from_their_header() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(common::fixture_path("pil123rgba.png"), dir.path().join("a b.png")).unwrap();
    let remote = RemoteImage::start(fixture("pil123rgba.png"), "image/png");
    let config = format!("source_allow_hosts = [\"127.0.0.1/32\"]\n[aliases]\nphotos = {:?}\n", dir.path());
    let s = TestServer::start_with_config(&config);
    let external = remote.url("/pics/rgba.png?v=1");
    let encoded: String = url_encode(&external);
    for source in ["src://photos/a%20b.png".to_string(), encoded] {
        let picture = json_of(responsive(&s, &format!("resize=width:500/{source}"), &[("formats", "webp,png")]));
        assert_eq!((picture["width"].as_u64(), picture["height"].as_u64()), (Some(500), Some(463)), "{source}");
        let set = picture["img"]["srcset"].as_str().unwrap();
        assert_eq!(widths(set), [160, 240, 320, 400, 480, 500], "{source}");
        check_every_url(&s, &picture);
    }
    // what is not an image is a 415 naming why
    remote.set(b"just some text, not a picture".to_vec(), "text/plain");
    let r = responsive(&s, &url_encode(&remote.url("/notes.txt")), &[]);
    assert_eq!(r.status(), 415);
    let body: Value = r.json().unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("not an image"), "{body}");
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn html_output_escapes_what_the_request_chose() {
    let s = TestServer::start();
    let handle = s.upload_fixture("pil123rgba.png");
    let alt = "\"><script>alert(1)</script>";
    let sizes = "(max-width: 600px) 100vw, \"><b>";
    let r = responsive(&s, &handle, &[("output", "html"), ("alt", alt), ("sizes", sizes)]);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert!(r.headers().get("vary").is_none(), "`output` chose, not Accept");
    let html = r.text().unwrap();
    assert!(!html.contains("<script>") && !html.contains("<b>"), "{html}");
    assert!(html.contains("alt=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""), "{html}");
    let img = &tags(&html, "img")[0];
    assert_eq!((attr(img, "alt"), attr(img, "sizes")), (alt, sizes));
    assert_eq!((attr(img, "width"), attr(img, "height")), ("162", "150"));
    assert_eq!(tags(&html, "source").len(), 2);
    assert!(html.starts_with("<picture>") && html.trim_end().ends_with("</picture>"));

    // Accept: text/html (without JSON) asks for the snippet too, and the answer varies on it
    let r = s.client().get(s.url(&format!("/responsive/{handle}"))).header("Accept", "text/html,*/*;q=0.8").send();
    let r = r.unwrap();
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.headers()["vary"], "Accept");
    // the JSON keeps the text as given; its html field is escaped
    let picture = json_of(responsive(&s, &handle, &[("alt", alt)]));
    assert_eq!(picture["img"]["alt"], alt);
    assert!(!picture["html"].as_str().unwrap().contains("<script>"));
}

#[test]
fn bad_options_and_sources_are_4xx_json_naming_what_is_wrong() {
    let s = TestServer::start();
    let handle = s.upload_fixture("hopper.jpg");
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("formats", "gif")], "formats"),
        (&[("formats", "jpg,png")], "formats"),
        (&[("resolutions", "1x,2x")], "resolutions"),
        (&[("width", "400")], "width"),
        (&[("output", "xml")], "output"),
        (&[("sizes", "")], "sizes"),
    ];
    for (query, option) in cases {
        let r = responsive(&s, &handle, query);
        assert_eq!(r.status(), 400, "{query:?}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let body: Value = r.json().unwrap();
        assert_eq!(body["error"]["option"], option, "{query:?}: {body}");
        assert_eq!(body["error"]["task"], "responsive", "{query:?}: {body}");
    }
    // the caller's tasks are checked as a transformation's are
    let r = responsive(&s, &format!("resize=heigt:10/{handle}"), &[]);
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().unwrap()["error"]["option"], "heigt");
    for path in [format!("resize=width:auto/{handle}"), format!("store/{handle}"), format!("[{handle},{handle}]")] {
        assert_eq!(responsive(&s, &path, &[]).status(), 400, "{path}");
    }
    // a stored file that is not an image, and a missing one
    let text = s.upload(b"hello, I am text", "notes.txt");
    let r = responsive(&s, &text, &[]);
    assert_eq!(r.status(), 415);
    assert!(r.json::<Value>().unwrap()["error"]["message"].as_str().unwrap().contains("not an image"));
    assert_eq!(responsive(&s, "AAAAAAAAAAAAAAAAAAAA", &[]).status(), 404);
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// `(policy, signature)` of `json` (`EXPIRY` an hour from now), URL-safe base64.
fn signed(json: &str) -> (String, String) {
    use base64::Engine;
    let policy = base64::engine::general_purpose::URL_SAFE.encode(json.replace("EXPIRY", &(now() + 3600).to_string()));
    let signature = common::sign(SECRET, &policy);
    (policy, signature)
}

#[test]
fn signed_apps_get_their_own_segment_in_every_url() {
    let config = format!("[[apps]]\napi_key = \"RESPKEY\"\nsecrets = [\"{SECRET}\"]\n");
    let s = TestServer::start_with_config(&config);
    let (p, sig) = signed(r#"{"expiry":EXPIRY,"call":["store"]}"#);
    let r = s.store(&fixture("pil123rgba.png"), &format!("key=RESPKEY&policy={p}&signature={sig}"));
    assert_eq!(r.status(), 200, "{:?}", r.text());
    let handle = r.json::<Value>().unwrap()["handle"].as_str().unwrap().to_string();

    // no credentials: refused as a transformation URL would be
    let r = responsive(&s, &handle, &[]);
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    assert!(r.json::<Value>().unwrap()["error"]["message"].as_str().is_some());
    // a policy without `convert` opens no derivative, so no picture either
    let (p, sig) = signed(&format!(r#"{{"expiry":EXPIRY,"call":["read"],"handle":"{handle}"}}"#));
    assert_eq!(responsive(&s, &format!("RESPKEY/security=p:{p},s:{sig}/{handle}"), &[]).status(), 403);
    let (p, bad) = (p.clone(), "0".repeat(64));
    assert_eq!(responsive(&s, &format!("security=p:{p},s:{bad}/{handle}"), &[]).status(), 403);

    // a policy for this handle: every URL carries exactly the request's segment, and answers
    let (p, sig) = signed(&format!(r#"{{"expiry":EXPIRY,"call":["read","convert"],"handle":"{handle}"}}"#));
    let segment = format!("security=p:{p},s:{sig}");
    let r = responsive(&s, &format!("RESPKEY/{segment}/resize=width:150/{handle}"), &[]);
    assert_eq!(r.headers()["cache-control"], "no-cache", "a private app's answer is revalidated");
    assert!(r.headers()["surrogate-key"].to_str().unwrap().split(' ').any(|k| k == "app-RESPKEY"));
    let picture = json_of(r);
    let urls: Vec<String> = entries(picture["img"]["srcset"].as_str().unwrap()).into_iter().map(|e| e.0).collect();
    assert_eq!(widths(picture["img"]["srcset"].as_str().unwrap()), [150]);
    for url in &urls {
        assert!(url.starts_with(&format!("{}/RESPKEY/{segment}/resize=width:150/resize=width:", s.base)), "{url}");
    }
    check_every_url(&s, &picture);
    // each URL without its segment is refused
    let bare = urls[0].replace(&format!("{segment}/"), "");
    assert_eq!(s.client().get(&bare).send().unwrap().status(), 401);

    // credentials in the query are written into the URLs as the segment
    let picture = json_of(responsive(&s, &handle, &[("policy", &p), ("signature", &sig), ("formats", "webp")]));
    let first = &entries(picture["sources"][0]["srcset"].as_str().unwrap())[0].0;
    assert!(first.starts_with(&format!("{}/{segment}/resize=width:160/output=format:webp/", s.base)), "{first}");
    check_every_url(&s, &picture);

    // a Bearer header opens the picture; its URLs carry no credentials (the header is not the page's)
    let r =
        s.client().get(s.url(&format!("/responsive/{handle}"))).header("Authorization", format!("Bearer {p}.{sig}"));
    let picture = json_of(r.send().unwrap());
    assert!(!picture["img"]["src"].as_str().unwrap().contains("security="));
}
