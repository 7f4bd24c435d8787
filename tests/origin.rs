//! End-to-end behaviour of the origin: store → transform → decode and check; cache semantics;
//! HTTP semantics. Every test starts the real binary on a loopback port.

mod common;

use common::{decode, fixture, TestServer};
use image::{GenericImageView, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use std::io::Cursor;

fn png_bytes(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
    out
}

/// 200×100: left half red, right half blue.
fn halves_lr() -> Vec<u8> {
    let img = RgbImage::from_fn(200, 100, |x, _| if x < 100 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
    png_bytes(&image::DynamicImage::ImageRgb8(img))
}

/// 100×200: top half green, bottom half yellow.
fn halves_tb() -> Vec<u8> {
    let img = RgbImage::from_fn(100, 200, |_, y| if y < 100 { Rgb([0, 255, 0]) } else { Rgb([255, 255, 0]) });
    png_bytes(&image::DynamicImage::ImageRgb8(img))
}

fn get_image(s: &TestServer, path: &str) -> image::DynamicImage {
    let resp = s.get(path);
    assert_eq!(resp.status(), 200, "{path}: {:?}", resp.text());
    decode(&resp.bytes().unwrap())
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b.iter()).all(|(x, y)| (*x as i32 - *y as i32).abs() <= 12)
}

fn center_rgb(img: &image::DynamicImage) -> [u8; 3] {
    let p = img.get_pixel(img.width() / 2, img.height() / 2).0;
    [p[0], p[1], p[2]]
}

#[test]
fn every_fit_gives_the_right_dimensions() {
    let s = TestServer::start();
    let h = s.upload(&halves_lr(), "lr.png");
    let cases = [
        ("resize=w:50", (50, 25)),
        ("resize=h:50", (100, 50)),
        ("resize=w:50,h:50", (50, 25)),
        ("resize=w:50,h:50,fit:clip", (50, 25)),
        ("resize=w:50,h:50,fit:scale", (50, 50)),
        ("resize=w:50,h:50,fit:crop", (50, 50)),
        ("resize=w:400,h:400,fit:clip", (400, 200)),
        ("resize=w:400,h:400,fit:max", (200, 100)),
        ("resize=w:400,fit:max", (200, 100)),
        ("resize=width:80,height:20,fit:max", (40, 20)),
    ];
    for (tasks, dims) in cases {
        let img = get_image(&s, &format!("/{tasks}/{h}"));
        assert_eq!(img.dimensions(), dims, "{tasks}");
    }
}

#[test]
fn crop_fit_honours_every_align() {
    let s = TestServer::start();
    let lr = s.upload(&halves_lr(), "lr.png");
    let tb = s.upload(&halves_tb(), "tb.png");
    let red = [255, 0, 0];
    let blue = [0, 0, 255];
    let green = [0, 255, 0];
    let yellow = [255, 255, 0];
    let cases = [
        (&lr, "left", red),
        (&lr, "right", blue),
        (&lr, "[middle,left]", red),
        (&lr, "[top,right]", blue),
        (&lr, "[bottom,left]", red),
        (&tb, "top", green),
        (&tb, "bottom", yellow),
        (&tb, "[top,left]", green),
        (&tb, "[bottom,center]", yellow),
        (&tb, "[bottom,right]", yellow),
    ];
    for (h, align, want) in cases {
        let path = format!("/resize=w:40,h:40,fit:crop,align:{align}/{h}");
        let img = get_image(&s, &path);
        assert_eq!(img.dimensions(), (40, 40), "{path}");
        for (x, y) in [(2, 2), (37, 37), (20, 20)] {
            let p = img.get_pixel(x, y).0;
            assert!(close([p[0], p[1], p[2]], want), "{path} pixel {x},{y} = {p:?}, want {want:?}");
        }
    }
    // center keeps both halves
    let img = get_image(&s, &format!("/resize=w:40,h:40,fit:crop,align:center/{lr}"));
    assert!(close(img.get_pixel(2, 20).0[..3].try_into().unwrap(), red));
    assert!(close(img.get_pixel(37, 20).0[..3].try_into().unwrap(), blue));
}

#[test]
fn crop_rotate_flip_flop() {
    let s = TestServer::start();
    let h = s.upload(&halves_lr(), "lr.png");
    let img = get_image(&s, &format!("/crop=dim:[90,10,20,30]/{h}"));
    assert_eq!(img.dimensions(), (20, 30));
    assert!(close(center_rgb(&img.crop_imm(0, 0, 5, 5)), [255, 0, 0]));
    assert!(close(center_rgb(&img.crop_imm(15, 0, 5, 5)), [0, 0, 255]));
    // partly outside keeps the overlap
    assert_eq!(get_image(&s, &format!("/crop=d:[150,50,100,100]/{h}")).dimensions(), (50, 50));
    // fully outside is a clear 400
    assert_eq!(s.get(&format!("/crop=dim:[500,500,10,10]/{h}")).status(), 400);

    let img = get_image(&s, &format!("/rotate=deg:90/{h}"));
    assert_eq!(img.dimensions(), (100, 200));
    // clockwise: the left (red) half ends on top
    assert!(close(img.get_pixel(50, 10).0[..3].try_into().unwrap(), [255, 0, 0]));
    let img = get_image(&s, &format!("/rotate=deg:45,background:00FF00/{h}"));
    assert!(img.width() > 200 && img.height() > 200);
    assert!(close(img.get_pixel(1, 1).0[..3].try_into().unwrap(), [0, 255, 0]), "corner shows the background");

    let img = get_image(&s, &format!("/flop/{h}"));
    assert!(close(img.get_pixel(5, 50).0[..3].try_into().unwrap(), [0, 0, 255]));
    let tb = s.upload(&halves_tb(), "tb.png");
    let img = get_image(&s, &format!("/flip/{tb}"));
    assert!(close(img.get_pixel(50, 5).0[..3].try_into().unwrap(), [255, 255, 0]));
}

#[test]
fn exif_orientations_come_out_upright() {
    let s = TestServer::start();
    let reference = decode(&fixture("hopper.jpg")).to_rgb8();
    for n in 2..=8 {
        let name = format!("hopper_orientation_{n}.jpg");
        let h = s.upload_fixture(&name);
        for path in [format!("/output=f:png/{h}"), format!("/resize=w:64/{h}")] {
            let img = get_image(&s, &path).to_rgb8();
            let want =
                image::imageops::resize(&reference, img.width(), img.height(), image::imageops::FilterType::Triangle);
            let diff: f64 =
                img.pixels().zip(want.pixels()).map(|(a, b)| (a.0[0] as f64 - b.0[0] as f64).abs()).sum::<f64>()
                    / (img.width() * img.height()) as f64;
            assert!(diff < 20.0, "{name} {path}: mean difference {diff} from the upright reference");
        }
    }
    let h = s.upload_fixture("hopper_orientation_6.webp");
    let img = get_image(&s, &format!("/output=f:png/{h}"));
    assert_eq!(img.dimensions(), (128, 128));
}

#[test]
fn every_output_format_round_trips() {
    let s = TestServer::start();
    let h = s.upload_fixture("hopper.jpg");
    for (word, format, mime) in [
        ("jpg", ImageFormat::Jpeg, "image/jpeg"),
        ("png", ImageFormat::Png, "image/png"),
        ("webp", ImageFormat::WebP, "image/webp"),
        ("gif", ImageFormat::Gif, "image/gif"),
        ("pjpg", ImageFormat::Jpeg, "image/jpeg"),
    ] {
        let resp = s.get(&format!("/resize=w:64/output=format:{word},quality:70/{h}"));
        assert_eq!(resp.status(), 200, "{word}");
        assert_eq!(resp.headers()["content-type"], mime);
        let bytes = resp.bytes().unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), format, "{word}");
        let img = decode(&bytes);
        assert_eq!(img.dimensions(), (64, 64), "{word}");
    }
    // AVIF: no decoder is built in, so check the container and that it is a real encode
    let resp = s.get(&format!("/resize=w:64/output=format:avif/{h}"));
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/avif");
    let bytes = resp.bytes().unwrap();
    assert_eq!(&bytes[4..12], b"ftypavif");
    assert!(bytes.len() > 300);
    // WebP is lossy (VP8), not lossless (VP8L)
    let webp = s.get(&format!("/output=f:webp/{h}")).bytes().unwrap();
    assert_eq!(&webp[12..16], b"VP8 ");
}

#[test]
fn transparency_survives_or_is_flattened() {
    let s = TestServer::start();
    let img = RgbaImage::from_fn(20, 20, |x, _| if x < 10 { Rgba([255, 0, 0, 0]) } else { Rgba([0, 0, 255, 255]) });
    let h = s.upload(&png_bytes(&image::DynamicImage::ImageRgba8(img)), "alpha.png");
    for f in ["png", "webp", "gif"] {
        let out = get_image(&s, &format!("/output=f:{f}/{h}"));
        assert_eq!(out.get_pixel(2, 10).0[3], 0, "{f} keeps transparency");
        assert_eq!(out.get_pixel(17, 10).0[3], 255, "{f}");
    }
    let out = get_image(&s, &format!("/output=f:jpg/{h}"));
    assert!(close(out.get_pixel(2, 10).0[..3].try_into().unwrap(), [255, 255, 255]), "JPEG flattens on white");
    let out = get_image(&s, &format!("/output=f:jpg,background:black/{h}"));
    assert!(close(out.get_pixel(2, 10).0[..3].try_into().unwrap(), [0, 0, 0]), "background option");
}

#[test]
fn shrink_on_load_keeps_geometry_on_a_real_photo() {
    let s = TestServer::start();
    let h = s.upload_fixture("fossa-4096x2304.jpg");
    let resp = s.get(&format!("/resize=w:800/output=f:jpg/{h}"));
    assert_eq!(resp.status(), 200);
    let img = decode(&resp.bytes().unwrap());
    assert_eq!(img.dimensions(), (800, 450));
    let img = get_image(&s, &format!("/resize=w:300,h:300,fit:crop/{h}"));
    assert_eq!(img.dimensions(), (300, 300));
}

#[test]
fn conditional_requests_and_ranges() {
    let s = TestServer::start();
    let h = s.upload_fixture("hopper.png");
    let path = format!("/resize=w:64/output=f:png/{h}");
    let first = s.get(&path);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let last_modified = first.headers()["last-modified"].to_str().unwrap().to_string();
    let body = first.bytes().unwrap();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"));
    let c = s.client();
    let r = c.get(s.url(&path)).header("If-None-Match", &etag).send().unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    let r = c.get(s.url(&path)).header("If-Modified-Since", &last_modified).send().unwrap();
    assert_eq!(r.status(), 304);
    let r = c.get(s.url(&path)).header("If-None-Match", "\"other\"").send().unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(s.url(&path)).header("Range", "bytes=10-19").send().unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"].to_str().unwrap(), format!("bytes 10-19/{}", body.len()));
    assert_eq!(r.bytes().unwrap(), body.slice(10..20));
    let r = c.get(s.url(&path)).header("Range", "bytes=-5").send().unwrap();
    assert_eq!(r.bytes().unwrap(), body.slice(body.len() - 5..));
    let r = c.get(s.url(&path)).header("Range", format!("bytes={}-", body.len() + 10)).send().unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"].to_str().unwrap(), format!("bytes */{}", body.len()));
    let r = c.head(s.url(&path)).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"].to_str().unwrap(), body.len().to_string());
    // originals too
    let r = c.get(s.url(&format!("/{h}"))).header("Range", "bytes=0-3").send().unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(&r.bytes().unwrap()[..], b"\x89PNG");
}

#[test]
fn cdn_headers_and_vary_only_when_negotiated() {
    let s = TestServer::start();
    let h = s.upload_fixture("hopper.jpg");
    let r = s.get(&format!("/resize=w:32/{h}"));
    let hd = r.headers();
    assert_eq!(hd["cache-control"], "public, max-age=2592000");
    assert_eq!(hd["cdn-cache-control"], "public, max-age=2592000");
    assert_eq!(hd["surrogate-control"], "max-age=2592000");
    assert!(hd["surrogate-key"].to_str().unwrap().contains(&h));
    // the same purge tags under every CDN's name: Fastly's, Cloudflare's, Akamai's
    let tags = hd["surrogate-key"].to_str().unwrap().replace(' ', ",");
    assert_eq!((hd["cache-tag"].to_str().unwrap(), hd["edge-cache-tag"].to_str().unwrap()), (&*tags, &*tags));
    assert!(hd.get("vary").is_none(), "explicit format must not vary");
    assert!(hd["cache-status"].to_str().unwrap().contains("fwd=uri-miss"));
    assert!(hd.contains_key("server-timing"));
    assert_eq!(hd["accept-ranges"], "bytes");
    assert!(hd["content-disposition"].to_str().unwrap().starts_with("inline"));

    let c = s.client();
    for (accept, mime) in
        [("image/avif,image/webp,*/*", "image/avif"), ("image/webp,*/*", "image/webp"), ("*/*", "image/jpeg")]
    {
        for path in [format!("/resize=w:32/auto_image/{h}"), format!("/resize=w:32/output=f:auto/{h}")] {
            let r = c.get(s.url(&path)).header("Accept", accept).send().unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], mime, "{path} with Accept {accept}");
            assert_eq!(r.headers()["vary"], "Accept");
        }
    }
    let r = s.get(&format!("/cache=expiry:60/resize=w:32/{h}"));
    // the remaining lifetime, in whole seconds: a second boundary may pass during the transform
    let cc = r.headers()["cache-control"].to_str().unwrap().to_string();
    let age: u64 = cc.strip_prefix("public, max-age=").and_then(|v| v.parse().ok()).expect(&cc);
    assert!((58..=60).contains(&age), "{cc}");
    let r = s.get(&format!("/resize=w:32/{h}?dl=true"));
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let r = s.get("/resize=w:0/nothing");
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["cache-control"], "public, max-age=60");
    assert_eq!(r.headers()["content-type"], "application/json");
}

fn transforms(s: &TestServer) -> f64 {
    s.metric("refract_transforms_total", "outcome=\"ok\"")
}

#[test]
fn cache_hits_skip_the_transform_and_cache_false_bypasses() {
    let s = TestServer::start();
    let h = s.upload_fixture("hopper.jpg");
    let path = format!("/resize=w:50/{h}");
    let a = s.get(&path).bytes().unwrap();
    assert_eq!(transforms(&s), 1.0);
    let r = s.get(&path);
    assert_eq!(r.headers()["cache-status"], "refract; hit");
    assert_eq!(r.bytes().unwrap(), a);
    // the same plan spelled with aliases and another option order is the same derivative
    s.get(&format!("/resize=width:50/{h}"));
    assert_eq!(transforms(&s), 1.0);
    for _ in 0..2 {
        let r = s.get(&format!("/cache=false/resize=w:50/{h}"));
        assert_eq!(r.headers()["cache-status"], "refract; fwd=bypass");
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    assert_eq!(transforms(&s), 3.0);
}

#[test]
fn overwrite_serves_new_bytes_and_delete_purges() {
    let s = TestServer::start();
    let h = s.upload(&halves_lr(), "img.png");
    let path = format!("/resize=w:20/output=f:png/{h}");
    let before = get_image(&s, &path);
    assert!(close(center_rgb(&before.crop_imm(0, 0, 4, 4)), [255, 0, 0]));
    let c = s.client();
    let r = c.post(s.url(&format!("/api/file/{h}"))).body(halves_tb()).send().unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text());
    let after = get_image(&s, &path);
    assert_eq!(after.dimensions(), (20, 40), "new bytes at the same URL");
    assert!(s.metric("refract_cache_disk_bytes", "") > 0.0);
    let r = c.delete(s.url(&format!("/api/file/{h}"))).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(s.get(&path).status(), 404);
    assert_eq!(s.get(&format!("/{h}")).status(), 404);
    assert_eq!(s.get(&format!("/api/file/{h}")).status(), 404);
    assert_eq!(s.metric("refract_cache_disk_bytes", ""), 0.0, "every derivative of the handle is gone");
}

#[test]
fn ttl_expiry_and_restart_persistence() {
    let s = TestServer::start_with_env(&[("REFRACT_CACHE_TTL_SECS", "2"), ("REFRACT_CACHE_SWEEP_SECS", "1")]);
    let h = s.upload_fixture("hopper.jpg");
    let path = format!("/resize=w:40/{h}");
    let r = s.get(&path);
    assert_eq!(r.headers()["cache-control"], "public, max-age=2");
    std::thread::sleep(std::time::Duration::from_millis(3200));
    let r = s.get(&path);
    assert!(r.headers()["cache-status"].to_str().unwrap().contains("miss"), "expired entry is recomputed");
    assert_eq!(transforms(&s), 2.0);

    let mut s2 = TestServer::start();
    let h2 = s2.upload_fixture("hopper.png");
    let path2 = format!("/resize=w:40/output=f:webp/{h2}");
    let first = s2.get(&path2).bytes().unwrap();
    // sled makes its index durable every 500 ms; a kill -9 inside that window only costs a recompute
    std::thread::sleep(std::time::Duration::from_millis(1200));
    s2.restart();
    let r = s2.get(&path2);
    assert_eq!(r.headers()["cache-status"], "refract; hit", "the cache survives a restart");
    assert_eq!(r.bytes().unwrap(), first);
    assert_eq!(transforms(&s2), 0.0);
    assert_eq!(s2.get(&format!("/{h2}")).status(), 200, "originals survive a kill -9");
    drop(s);
}

#[test]
fn concurrent_identical_misses_run_one_transform() {
    let s = TestServer::start();
    let h = s.upload_fixture("fossa-4096x2304.jpg");
    let path = format!("/resize=w:640/output=f:webp/{h}");
    let url = s.url(&path);
    let bodies: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let url = url.clone();
                scope.spawn(move || reqwest::blocking::get(url).unwrap().bytes().unwrap().to_vec())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(transforms(&s), 1.0);
}

#[test]
fn store_api_shapes_and_metadata() {
    let s = TestServer::start();
    let c = s.client();
    let r = c.post(s.url("/api/store/S3?key=abc&filename=hop.jpg")).body(fixture("hopper.jpg")).send().unwrap();
    let j: serde_json::Value = r.json().unwrap();
    let h = j["handle"].as_str().unwrap().to_string();
    assert_eq!(h.len(), 20);
    assert!(h.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(j["type"], "image/jpeg");
    assert_eq!(j["filename"], "hop.jpg");
    assert_eq!(j["key"], "abc");
    assert_eq!(j["size"], 6412);
    assert!(j["url"].as_str().unwrap().ends_with(&h));

    let form = reqwest::blocking::multipart::Form::new()
        .part("fileUpload", reqwest::blocking::multipart::Part::bytes(fixture("hopper.png")).file_name("multi.png"));
    let j: serde_json::Value = c.post(s.url("/api/store/S3?key=abc")).multipart(form).send().unwrap().json().unwrap();
    assert_eq!(j["filename"], "multi.png");
    assert_eq!(j["type"], "image/png");

    let m: serde_json::Value =
        s.get(&format!("/{h}/metadata?width=true&height=true&md5=true&size=true")).json().unwrap();
    assert_eq!(m["width"], 128);
    assert_eq!(m["height"], 128);
    assert_eq!(m["size"], 6412);
    assert_eq!(m["md5"].as_str().unwrap().len(), 32);
    assert!(m.get("filename").is_none(), "only the asked fields");
    let m: serde_json::Value = s.get(&format!("/api/file/{h}/metadata")).json().unwrap();
    assert_eq!(m["filename"], "hop.jpg");
    assert_eq!(m["mimetype"], "image/jpeg");

    let r = s.get(&format!("/api/file/{h}?dl=true"));
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    assert_eq!(r.bytes().unwrap().len(), 6412);
    let r = s.get(&format!("/imagesize/{h}"));
    let j: serde_json::Value = r.json().unwrap();
    assert_eq!((j["width"].as_u64(), j["height"].as_u64()), (Some(128), Some(128)));

    // bad uploads
    let r = c.post(s.url("/api/store/S3?key=a&filename=x.jpg")).body(Vec::<u8>::new()).send().unwrap();
    assert_eq!(r.status(), 400);
    let r = c.post(s.url("/api/store/S3?key=a&filename=x.jpg")).body("hello, not an image").send().unwrap();
    assert_eq!(r.status(), 415);
    let r = c.post(s.url("/api/store/S3?key=a&filename=notes.txt")).body("plain text").send().unwrap();
    assert_eq!(r.status(), 200, "non-image files are stored as they are");
    let mut truncated = fixture("hopper.jpg");
    truncated.truncate(20);
    let r = c.post(s.url("/api/store/S3?key=a&filename=t.jpg")).body(truncated).send().unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(s.get("/api/file/AAAAAAAAAAAAAAAAAAAA").status(), 404);
}

#[test]
fn effects_change_pixels() {
    let s = TestServer::start();
    let h = s.upload(&halves_lr(), "lr.png");
    let img = get_image(&s, &format!("/monochrome/output=f:png/{h}"));
    let p = img.get_pixel(10, 10).0;
    assert!(p[0] == p[1] && p[1] == p[2]);
    let img = get_image(&s, &format!("/negative/output=f:png/{h}"));
    assert!(close(img.get_pixel(10, 10).0[..3].try_into().unwrap(), [0, 255, 255]));
    let img = get_image(&s, &format!("/border=width:5,color:00FF00/output=f:png/{h}"));
    assert_eq!(img.dimensions(), (210, 110));
    assert!(close(img.get_pixel(1, 1).0[..3].try_into().unwrap(), [0, 255, 0]));
    for t in ["blur=amount:5", "sharpen", "sepia", "blackwhite", "pixelate=amount:10", "modulate=hue:120", "circle"] {
        let img = get_image(&s, &format!("/{t}/output=f:png/{h}"));
        assert_eq!(img.dimensions(), (200, 100), "{t}");
    }
    let r = s.get(&format!("/redeye/{h}"));
    assert_eq!(r.status(), 501);
    let j: serde_json::Value = r.json().unwrap();
    assert_eq!(j["error"]["task"], "redeye");
}

#[test]
fn startup_problems_are_one_clear_line() {
    let bin = env!("CARGO_BIN_EXE_refract");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin)
        .args(["serve", "--listen", &addr, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on") && err.lines().count() == 1, "{err}");

    // the file stays strict (unknown environment variables are only warned about: tests/hardening.rs)
    let file = dir.path().join("refract.toml");
    std::fs::write(&file, "no_such_setting = 1\n").unwrap();
    let out = std::process::Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no_such_setting") && err.lines().count() == 1, "{err}");

    let out = std::process::Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", "/proc/refract-cannot-write"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("data dir"));
}

#[test]
fn transform_command_runs_the_pipeline_offline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.webp");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_refract"))
        .arg("transform")
        .arg(common::fixture_path("fossa-4096x2304.jpg"))
        .arg("resize=w:800/output=f:webp")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let img = decode(&std::fs::read(&out).unwrap());
    assert_eq!(img.dimensions(), (800, 450));
}

#[test]
fn a_torn_cache_file_is_dropped_and_recomputed() {
    let mut s = TestServer::start();
    let h = s.upload_fixture("hopper.png");
    let path = format!("/resize=w:40/output=f:png/{h}");
    let good = s.get(&path).bytes().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let blobs = s.data_dir.join("cache/blobs");
    let blob = std::fs::read_dir(&blobs)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .expect("a cache blob on disk");
    std::fs::write(&blob, vec![0u8; good.len()]).unwrap();
    s.restart();
    let r = s.get(&path);
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-status"].to_str().unwrap().contains("miss"), "the torn entry is not served");
    assert_eq!(r.bytes().unwrap(), good);
    assert_eq!(s.metric("refract_cache_corrupt_total", ""), 1.0);
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let s = TestServer::start_with_env(&[("REFRACT_WORKERS", "1"), ("REFRACT_QUEUE_LEN", "0")]);
    let h = s.upload_fixture("fossa-4096x2304.jpg");
    let statuses: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let url = s.url(&format!("/cache=false/resize=w:{}/output=f:png/{h}", 1500 + i));
                scope.spawn(move || {
                    let r = reqwest::blocking::get(url).unwrap();
                    (r.status().as_u16(), r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string()))
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(statuses.iter().any(|(s, _)| *s == 200), "{statuses:?}");
    let busy: Vec<_> = statuses.iter().filter(|(s, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "one worker, no queue: concurrent misses must be refused: {statuses:?}");
    assert!(busy.iter().all(|(_, retry)| retry.is_some()));
    assert_eq!(s.get("/healthz").status(), 200);
}

#[test]
fn a_queued_transform_whose_client_left_is_not_run() {
    let s = TestServer::start_with_env(&[("REFRACT_WORKERS", "1"), ("REFRACT_QUEUE_LEN", "4")]);
    let h = s.upload_fixture("fossa-4096x2304.jpg");
    let slow = s.url(&format!("/cache=false/resize=w:4000/output=f:png,compress:true/{h}"));
    let busy = std::thread::spawn(move || reqwest::blocking::get(slow).unwrap().status());
    std::thread::sleep(std::time::Duration::from_millis(100));
    // this one waits for the only worker; its client gives up first
    let impatient =
        reqwest::blocking::Client::builder().timeout(std::time::Duration::from_millis(100)).build().unwrap();
    assert!(impatient.get(s.url(&format!("/cache=false/resize=w:300/{h}"))).send().is_err());
    assert_eq!(busy.join().unwrap(), 200);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(s.metric("refract_transforms_total", "outcome=\"ok\""), 1.0, "the abandoned transform must not run");
    assert_eq!(s.metric("refract_transforms_total", "outcome=\"abandoned\""), 1.0);
}

fn solid(w: u32, h: u32, px: [u8; 4]) -> Vec<u8> {
    png_bytes(&image::DynamicImage::ImageRgba8(RgbaImage::from_pixel(w, h, Rgba(px))))
}

#[test]
fn watermark_is_placed_scaled_and_follows_overwrites() {
    let s = TestServer::start();
    let base = s.upload(&solid(100, 100, [0, 0, 255, 255]), "base.png");
    let mark = s.upload(&solid(40, 40, [255, 0, 0, 255]), "mark.png");
    let path = format!("/watermark=file:{mark},size:50,position:[bottom,right]/output=f:png/{base}");
    let img = get_image(&s, &path);
    assert_eq!(img.dimensions(), (100, 100));
    assert!(close(img.get_pixel(95, 95).0[..3].try_into().unwrap(), [255, 0, 0]), "mark at the bottom right");
    assert!(close(img.get_pixel(75, 75).0[..3].try_into().unwrap(), [0, 0, 255]), "20 px mark (50% of 40)");
    assert!(close(img.get_pixel(5, 5).0[..3].try_into().unwrap(), [0, 0, 255]));
    // overwriting the watermark file changes the derivative at the same URL
    let r = s.client().post(s.url(&format!("/api/file/{mark}"))).body(solid(40, 40, [0, 255, 0, 255])).send().unwrap();
    assert_eq!(r.status(), 200);
    let img = get_image(&s, &path);
    assert!(close(img.get_pixel(95, 95).0[..3].try_into().unwrap(), [0, 255, 0]));
    assert_eq!(s.get(&format!("/watermark=file:AAAAAAAAAAAAAAAAAAAA/{base}")).status(), 404);
    assert_eq!(s.get(&format!("/watermark=file:%22https://x.example/w.png%22/{base}")).status(), 400);
}

#[test]
fn rounded_corners_partial_effects_and_content() {
    let s = TestServer::start();
    let h = s.upload(&solid(100, 60, [0, 0, 255, 255]), "blue.png");
    let img = get_image(&s, &format!("/rounded_corners=radius:20/output=f:png/{h}"));
    assert_eq!(img.get_pixel(0, 0).0[3], 0, "corner cut away");
    assert_eq!(img.get_pixel(50, 30).0[3], 255, "middle kept");
    let img = get_image(&s, &format!("/rounded_corners=radius:max,background:white/output=f:jpg/{h}"));
    assert!(close(img.get_pixel(1, 1).0[..3].try_into().unwrap(), [255, 255, 255]));

    let lr = s.upload(&halves_lr(), "lr.png");
    for task in ["partial_blur=objects:[[80,0,40,100]],amount:10", "partial_pixelate=objects:[[80,0,40,100]],amount:20"]
    {
        let img = get_image(&s, &format!("/{task}/output=f:png/{lr}"));
        let edge = img.get_pixel(99, 50).0;
        assert!(
            !close(edge[..3].try_into().unwrap(), [255, 0, 0])
                || !close(img.get_pixel(100, 50).0[..3].try_into().unwrap(), [0, 0, 255]),
            "{task} mixed the edge"
        );
        assert!(close(img.get_pixel(10, 50).0[..3].try_into().unwrap(), [255, 0, 0]), "{task} left the rest alone");
    }
    let r = s.get(&format!("/content=filename:report.png,type:attachment/resize=w:10/{h}"));
    assert_eq!(r.headers()["content-disposition"], "attachment; filename=\"report.png\"");
}

#[test]
fn embedded_colour_profiles_are_converted_to_srgb() {
    use image::ImageEncoder;
    let s = TestServer::start();
    let px = [200u8, 100, 50];
    let img = RgbImage::from_pixel(16, 16, Rgb(px));
    let p3 = moxcms::ColorProfile::new_display_p3().encode().unwrap();
    let mut tagged = Vec::new();
    let mut enc = image::codecs::png::PngEncoder::new(&mut tagged);
    enc.set_icc_profile(p3).unwrap();
    enc.write_image(img.as_raw(), 16, 16, image::ExtendedColorType::Rgb8).unwrap();
    let h = s.upload(&tagged, "p3.png");
    let out = get_image(&s, &format!("/output=f:png/{h}")).to_rgb8();
    let got = out.get_pixel(8, 8).0;
    assert!(got[0] > px[0] + 8 && got[2] < px[2], "P3 {px:?} should become a more saturated sRGB value, got {got:?}");
    let plain = s.upload(&png_bytes(&image::DynamicImage::ImageRgb8(img)), "plain.png");
    assert_eq!(
        get_image(&s, &format!("/output=f:png/{plain}")).to_rgb8().get_pixel(8, 8).0,
        px,
        "untagged pixels untouched"
    );
}

#[test]
fn store_task_keeps_the_result_under_a_new_handle() {
    let s = TestServer::start();
    let h = s.upload_fixture("hopper.jpg");
    for request in [
        s.client().get(s.url(&format!("/KEY/store=filename:small.png/resize=w:20/output=f:png/{h}"))),
        s.client().post(s.url(&format!("/store/{h}"))),
    ] {
        let r = request.send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let j: serde_json::Value = r.json().unwrap();
        let new = j["handle"].as_str().unwrap().to_string();
        assert_ne!(new, h);
        assert!(j["url"].as_str().unwrap().ends_with(&new));
        let stored = s.get(&format!("/{new}")).bytes().unwrap();
        let img = decode(&stored);
        if j["filename"] == "small.png" {
            assert_eq!((img.width(), j["type"].as_str().unwrap()), (20, "image/png"));
            assert_eq!(j["key"], "KEY");
        } else {
            assert_eq!(stored.len(), 6412, "bare store copies the source");
        }
    }
    assert_eq!(s.client().post(s.url(&format!("/resize=w:20/{h}"))).send().unwrap().status(), 405);
}

#[test]
fn fallback_answers_when_the_source_or_the_chain_fails() {
    let s = TestServer::start();
    let fb = s.upload_fixture("hopper.png");
    let text = s.upload(b"just some text", "notes.txt");
    for source in ["AAAAAAAAAAAAAAAAAAAA", text.as_str()] {
        let r = s.get(&format!("/fallback=handle:{fb},cache:60/resize=w:20/{source}"));
        assert_eq!(r.status(), 200, "{source}");
        assert_eq!(r.headers()["cache-control"], "public, max-age=60");
        assert_eq!(r.bytes().unwrap(), common::fixture("hopper.png"));
    }
    // Python spells it file:
    assert_eq!(s.get(&format!("/fallback=file:{fb}/AAAAAAAAAAAAAAAAAAAA")).status(), 200);
    assert_eq!(s.get("/resize=w:20/AAAAAAAAAAAAAAAAAAAA").status(), 404, "no fallback, no rescue");
    assert_eq!(
        s.get(&format!("/fallback=handle:{fb}/resize=w:0/{text}")).status(),
        400,
        "a bad request is not rescued"
    );
}

/// A 2000×1000 PNG stored on `s`.
fn wide_photo(s: &TestServer) -> String {
    let img = RgbImage::from_fn(2000, 1000, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png).unwrap();
    s.upload(&png, "wide.png")
}

fn hinted(s: &TestServer, path: &str, hints: &[(&str, &str)]) -> reqwest::blocking::Response {
    let mut r = s.client().get(s.url(path));
    for (k, v) in hints {
        r = r.header(*k, *v);
    }
    r.send().unwrap()
}

#[test]
fn client_hints_pick_a_snapped_width_and_name_what_they_read() {
    let s = TestServer::start();
    let h = wide_photo(&s);
    let auto = format!("/resize=width:auto/output=f:png/{h}");
    // (hints, decoded width, Vary)
    type Case<'a> = (&'a [(&'a str, &'a str)], u32, &'a str);
    let cases: [Case; 6] = [
        (&[("Sec-CH-Width", "500")], 560, "Sec-CH-Width"),
        (&[("Width", "500")], 560, "Sec-CH-Width, Width"),
        (
            &[("Sec-CH-Viewport-Width", "400"), ("Sec-CH-DPR", "2.2")],
            960,
            "Sec-CH-Width, Width, Sec-CH-Viewport-Width, Sec-CH-DPR",
        ),
        (&[], 1280, "Sec-CH-Width, Width, Sec-CH-Viewport-Width, Viewport-Width"),
        // never past the source's own width
        (&[("Sec-CH-Width", "3000")], 2000, "Sec-CH-Width"),
        (&[("Sec-CH-Width", "junk")], 1280, "Sec-CH-Width, Width, Sec-CH-Viewport-Width, Viewport-Width"),
    ];
    for (hints, width, vary) in cases {
        for round in ["miss or hit", "hit"] {
            let r = hinted(&s, &auto, hints);
            assert_eq!(r.status(), 200, "{hints:?}");
            assert_eq!(r.headers()["vary"], vary, "{hints:?} ({round})");
            assert_eq!(r.headers()["accept-ch"], "Sec-CH-Width, Sec-CH-DPR, Sec-CH-Viewport-Width");
            let etag = r.headers()["etag"].to_str().unwrap().to_string();
            assert_eq!(decode(&r.bytes().unwrap()).width(), width, "{hints:?} ({round})");
            // a 304 carries the same Vary
            let mut with_tag = hints.to_vec();
            with_tag.push(("If-None-Match", &etag));
            let r = hinted(&s, &auto, &with_tag);
            assert_eq!((r.status().as_u16(), r.headers()["vary"].to_str().unwrap()), (304, vary), "{hints:?}");
        }
    }
    // the resolved URL is the explicit one: one cache entry for both
    let explicit = s.get(&format!("/resize=width:560/output=f:png/{h}"));
    let hinted_tag = hinted(&s, &auto, &[("Sec-CH-Width", "500")]).headers()["etag"].clone();
    assert_eq!(explicit.headers()["etag"], hinted_tag);
    assert!(explicit.headers().get("vary").is_none());
    // dpr:auto multiplies a fixed CSS width by the snapped DPR; with Accept it varies on both
    let r = hinted(
        &s,
        &format!("/resize=width:300,dpr:auto/output=f:auto/{h}"),
        &[("Sec-CH-DPR", "2"), ("Accept", "image/webp")],
    );
    assert_eq!(r.headers()["vary"], "Sec-CH-DPR, Accept");
    assert_eq!(r.headers()["content-type"], "image/webp");
    assert_eq!(decode(&r.bytes().unwrap()).width(), 600);
    // without a client, `auto` cannot be resolved: debug shows it, a JSON call refuses it
    assert_eq!(s.get(&format!("/debug{auto}")).status(), 200);
}

#[test]
fn a_thousand_random_hints_make_at_most_one_entry_per_ladder_step() {
    let s = TestServer::start();
    let h = wide_photo(&s);
    let auto = format!("/resize=width:auto/output=f:jpg/{h}");
    let before = s.metric("refract_cache_misses_total", "");
    let mut x: u32 = 0x2545_F491;
    let mut tags = std::collections::BTreeSet::new();
    for _ in 0..1000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let (name, value) = match x % 3 {
            0 => ("Sec-CH-Width", format!("{}", x % 5000)),
            1 => ("Sec-CH-Viewport-Width", format!("{}", x % 3000)),
            _ => ("Width", format!("{}.{}", x % 4000, x % 10)),
        };
        let r =
            hinted(&s, &auto, &[(name, &value), ("Sec-CH-DPR", ["1", "1.5", "2", "2.75", "3.5"][(x % 5) as usize])]);
        assert_eq!(r.status(), 200, "{name}: {value}");
        tags.insert(r.headers()["etag"].to_str().unwrap().to_string());
    }
    let misses = s.metric("refract_cache_misses_total", "") - before;
    // 16 ladder steps, the largest capped at the source's 2000 px: at most 14 distinct widths
    assert!(tags.len() <= 14, "{} entries: {tags:?}", tags.len());
    assert_eq!(misses as usize, tags.len(), "one transform per entry");
}

/// A srcset burst: one photo at nine widths × two formats, requested at once, cold. The widths
/// fall on two JPEG shrink-on-load scales (1/8 up to 512 px, 1/4 up to 1024), so the eighteen
/// transforms decode the source twice and share the rest. An overwrite is a new source version:
/// its derivatives decode the new pixels. `cache=false` skips the derivative cache, not the
/// shared decodes.
#[test]
fn a_srcset_burst_decodes_each_scale_once() {
    let s = TestServer::start();
    let h = s.upload_fixture("fossa-4096x2304.jpg");
    let widths = [160u32, 240, 320, 400, 480, 560, 640, 768, 960];
    let paths: Vec<(u32, String)> = widths
        .iter()
        .flat_map(|w| ["jpg", "webp"].map(|f| (*w, format!("/resize=width:{w}/output=format:{f}/{h}"))))
        .collect();
    std::thread::scope(|scope| {
        for (w, path) in &paths {
            let s = &s;
            scope.spawn(move || assert_eq!(get_image(s, path).dimensions(), (*w, w * 2304 / 4096)));
        }
    });
    assert_eq!(transforms(&s), 18.0);
    assert_eq!(s.metric("refract_decodes_shared_total", ""), 16.0, "two decodes for eighteen transforms");
    for _ in 0..2 {
        let r = s.get(&format!("/cache=false/resize=width:300/{h}"));
        assert_eq!(r.headers()["cache-status"], "refract; fwd=bypass");
    }
    assert_eq!(s.metric("refract_decodes_shared_total", ""), 18.0, "cache=false shares decodes too");
    let r = s.client().post(s.url(&format!("/api/file/{h}"))).body(fixture("hopper.jpg")).send().unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text());
    let hopper = image::load_from_memory(&fixture("hopper.jpg")).unwrap();
    let after = get_image(&s, &format!("/resize=width:100/output=format:png/{h}"));
    assert_eq!(after.dimensions(), (100, 100 * hopper.height() / hopper.width()), "the new pixels");
    assert_eq!(s.metric("refract_decodes_shared_total", ""), 18.0, "a new version decodes anew");
}

/// The redirect mode (for CDNs that ignore `Vary`): a URL with `auto` options answers `302` to the
/// explicit URL its hints resolve to, which a shared cache must not keep and any cache may keep
/// the target of; the query (here `dl`) goes along.
#[test]
fn the_redirect_mode_sends_hinted_urls_to_their_explicit_form() {
    let s = TestServer::start_with_env(&[("REFRACT_HINTS_REDIRECT", "true")]);
    let h = wide_photo(&s);
    let r = hinted(&s, &format!("/resize=width:auto,dpr:auto/output=f:png/{h}?dl=true"), &[("Sec-CH-Width", "500")]);
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/resize=") && location.contains("width:560"), "{location}");
    assert!(location.ends_with(&format!("/{h}?dl=true")), "{location}");
    assert_eq!(r.headers()["vary"], "Sec-CH-Width");
    assert_eq!(r.headers()["cdn-cache-control"], "no-store");
    assert!(r.headers()["cache-control"].to_str().unwrap().starts_with("private"));
    let target = s.get(&location);
    assert_eq!(target.status(), 200);
    assert!(target.headers().get("vary").is_none(), "the explicit URL varies on nothing");
    assert!(target.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    assert_eq!(decode(&target.bytes().unwrap()).width(), 560);
    // no hints: the default width; a URL without `auto` is answered as always
    let r = hinted(&s, &format!("/resize=width:auto/{h}"), &[]);
    assert!(r.headers()["location"].to_str().unwrap().contains("width:1280"));
    assert_eq!(s.get(&format!("/resize=width:300/{h}")).status(), 200);
    // a missing file is told by the explicit URL (one 404 an edge may keep, not one per device)
    let r = hinted(&s, "/resize=width:auto/AAAAAAAAAAAAAAAAAAAA", &[]);
    assert_eq!(s.get(r.headers()["location"].to_str().unwrap()).status(), 404);
}

/// An app can opt all its URLs into client hints (`client_hints = ["width", "dpr"]`): a stored
/// image asked bare is resized to the hinted width, a `resize` follows the DPR, an explicit `dpr`
/// still wins, and another app's URLs are untouched.
#[test]
fn an_app_opts_its_urls_into_client_hints() {
    let s = TestServer::start_with_config(
        r#"
[[apps]]
api_key = "HINTED"
client_hints = ["width", "dpr"]

[[apps]]
api_key = "PLAIN"
"#,
    );
    let img = RgbImage::from_fn(2000, 1000, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png).unwrap();
    let store = |key: &str| {
        let r = s.client().post(s.url(&format!("/api/store/S3?key={key}&filename=wide.png"))).body(png.clone());
        let r = r.send().unwrap();
        assert_eq!(r.status(), 200, "{:?}", r.text());
        r.json::<serde_json::Value>().unwrap()["handle"].as_str().unwrap().to_string()
    };
    let (h, plain) = (store("HINTED"), store("PLAIN"));
    let width = |path: &str, hints: &[(&str, &str)]| {
        let r = hinted(&s, path, hints);
        assert_eq!(r.status(), 200, "{path}");
        let vary = r.headers().get("vary").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        (decode(&r.bytes().unwrap()).width(), vary)
    };
    let (w, vary) = width(&format!("/HINTED/{h}"), &[("Sec-CH-Width", "500")]);
    assert_eq!((w, vary.as_str()), (560, "Sec-CH-Width"));
    let (w, vary) = width(&format!("/HINTED/output=format:png/{h}"), &[("Sec-CH-Width", "700")]);
    assert_eq!((w, vary.as_str()), (768, "Sec-CH-Width"));
    let (w, vary) = width(&format!("/HINTED/resize=width:300/{h}"), &[("Sec-CH-DPR", "2")]);
    assert_eq!((w, vary.as_str()), (600, "Sec-CH-DPR"));
    let (w, vary) = width(&format!("/HINTED/resize=width:300,dpr:1/{h}"), &[("Sec-CH-DPR", "2")]);
    assert_eq!((w, vary.as_str()), (300, ""));
    let (w, vary) = width(&format!("/PLAIN/{plain}"), &[("Sec-CH-Width", "500")]);
    assert_eq!((w, vary.as_str()), (2000, ""));
}
