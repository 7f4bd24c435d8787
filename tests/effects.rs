//! The effect and filter tasks end to end: store an image, fetch a real transformation URL from
//! the running binary, decode the answer and check a property each task must have.

mod common;

use common::{decode, TestServer};
use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage};
use std::io::Cursor;

fn png(img: RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
    out
}

fn get_image(s: &TestServer, path: &str) -> DynamicImage {
    let resp = s.get(path);
    assert_eq!(resp.status(), 200, "{path}: {:?}", resp.text());
    decode(&resp.bytes().unwrap())
}

fn rgba(img: &DynamicImage, x: u32, y: u32) -> [u8; 4] {
    img.get_pixel(x, y).0
}

/// 200×100 flat mid grey.
fn grey() -> Vec<u8> {
    png(RgbImage::from_pixel(200, 100, Rgb([128, 128, 128])))
}

#[test]
fn border_effects_change_edges_and_sizes() {
    let s = TestServer::start();
    let h = s.upload(&grey(), "grey.png");
    // vignette: black background, the corners darker than the untouched centre
    let img = get_image(&s, &format!("/vignette=amount:60,background:black/output=f:png/{h}"));
    assert_eq!(img.dimensions(), (200, 100));
    assert_eq!(rgba(&img, 100, 50)[..3], [128, 128, 128]);
    assert!(rgba(&img, 0, 0)[0] < 70 && rgba(&img, 199, 99)[0] < 70, "{:?}", rgba(&img, 0, 0));
    // the default background is white: corners lighter
    let img = get_image(&s, &format!("/vignette=m:linear/output=f:png/{h}"));
    assert!(rgba(&img, 0, 0)[0] > 140);
    // shadow: a canvas grown by the vector and the blur, the shadow darker at the offset
    let img = get_image(&s, &format!("/shadow=blur:0,vector:[10,10],opacity:100,background:white/output=f:png/{h}"));
    assert_eq!(img.dimensions(), (210, 110));
    assert_eq!(rgba(&img, 205, 105)[..3], [0, 0, 0]);
    assert_eq!(rgba(&img, 205, 2)[..3], [255, 255, 255]);
    let img = get_image(&s, &format!("/shadow/output=f:png/{h}"));
    assert_eq!(img.dimensions(), (216, 116), "defaults: blur 4 (8 px of fade), vector [4,4]");
    // polaroid: transparent corners around the turned card, the photo in the middle
    let img = get_image(&s, &format!("/polaroid=background:transparent/output=f:png/{h}"));
    let (w, hh) = img.dimensions();
    assert!(w > 200 && hh > 100);
    assert_eq!(rgba(&img, 0, 0)[3], 0);
    assert_eq!(rgba(&img, w / 2, hh / 2 - 5), [128, 128, 128, 255]);
    let img = get_image(&s, &format!("/polaroid=rotate:0,color:red/output=f:png/{h}"));
    assert_eq!(rgba(&img, 4, 4)[..3], [255, 0, 0], "the frame");
    // torn_edges: transparent bites out of the edges, the centre kept
    let img = get_image(&s, &format!("/torn_edges=spread:[2,12],background:transparent/output=f:png/{h}"));
    assert_eq!(img.dimensions(), (200, 100));
    assert!((20..180).any(|x| rgba(&img, x, 0)[3] == 0));
    let depth: Vec<u32> = (20..180).map(|x| (0..50).find(|&y| rgba(&img, x, y)[3] == 255).unwrap()).collect();
    assert!(depth.iter().max().unwrap() - depth.iter().min().unwrap() >= 3, "the tear varies: {depth:?}");
    assert_eq!(rgba(&img, 100, 50), [128, 128, 128, 255]);
}

#[test]
fn filters_keep_the_size_and_change_the_pixels() {
    let s = TestServer::start();
    // a dull horizontal ramp with a red cast
    let dull = RgbImage::from_fn(200, 100, |x, _| Rgb([(110 + x / 4) as u8, (90 + x / 4) as u8, (80 + x / 4) as u8]));
    let h = s.upload(&png(dull), "dull.png");
    // enhance: each channel stretched, so the cast is gone and the range is full
    let img = get_image(&s, &format!("/enhance/output=f:png/{h}"));
    let p = rgba(&img, 100, 20);
    assert!(p[..3].iter().max().unwrap() - p[..3].iter().min().unwrap() < 20, "{p:?}");
    assert!(rgba(&img, 2, 20)[0] < 40 && rgba(&img, 197, 20)[2] > 215);
    // a black/white edge at x = 100
    let edge = RgbImage::from_fn(200, 100, |x, _| Rgb([if x < 100 { 0 } else { 255 }; 3]));
    let h = s.upload(&png(edge), "edge.png");
    // oil_paint: the edge stays where it was
    let img = get_image(&s, &format!("/oil_paint=amount:4/output=f:png/{h}"));
    assert_eq!(img.dimensions(), (200, 100));
    assert_eq!((rgba(&img, 99, 80)[0], rgba(&img, 100, 80)[0]), (0, 255));
    // upscale: twice the size, the edge still within a few pixels
    let img = get_image(&s, &format!("/upscale/output=f:png/{h}"));
    assert_eq!(img.dimensions(), (400, 200));
    let row: Vec<u8> = (190..210).map(|x| rgba(&img, x, 100)[0]).collect();
    assert!(row.iter().filter(|&&v| v > 25 && v < 230).count() <= 3, "{row:?}");
    let img = get_image(&s, &format!("/upscale=upscale:false,noise:low/output=f:png/{h}"));
    assert_eq!(img.dimensions(), (200, 100));
}

#[test]
fn smart_crop_keeps_the_object() {
    let s = TestServer::start();
    // a red disc near the right edge of a flat grey 300×200 scene
    let scene = RgbImage::from_fn(300, 200, |x, y| {
        let (dx, dy) = (x as i64 - 250, y as i64 - 100);
        Rgb(if dx * dx + dy * dy <= 225 { [230, 20, 20] } else { [128, 128, 128] })
    });
    let h = s.upload(&png(scene), "scene.png");
    let img = get_image(&s, &format!("/smart_crop=width:50,height:100/output=f:png/{h}"));
    assert_eq!(img.dimensions(), (50, 100));
    assert!(img.pixels().any(|(_, _, p)| p.0[0] > 200 && p.0[1] < 60), "the disc is in the crop");
    let r = s.get(&format!("/smart_crop=width:50,height:100,mode:face/{h}"));
    assert_eq!(r.status(), 501);
    let j: serde_json::Value = r.json().unwrap();
    assert_eq!((j["error"]["task"].as_str(), j["error"]["option"].as_str()), (Some("smart_crop"), Some("mode")));
}

#[test]
fn out_of_range_options_are_400_naming_the_option() {
    let s = TestServer::start();
    let h = s.upload(&grey(), "grey.png");
    let cases = [
        ("vignette=amount:101", "vignette", "amount"),
        ("polaroid=rotate:360", "polaroid", "rotate"),
        ("torn_edges=spread:[0,10]", "torn_edges", "spread"),
        ("shadow=vector:[1001,0]", "shadow", "vector"),
        ("oil_paint=amount:1", "oil_paint", "amount"),
        ("upscale=noise:extreme", "upscale", "noise"),
        ("smart_crop=width:10001", "smart_crop", "width"),
        ("smart_crop", "smart_crop", "width"),
    ];
    for (task, name, option) in cases {
        let r = s.get(&format!("/{task}/{h}"));
        assert_eq!(r.status(), 400, "{task}");
        let j: serde_json::Value = r.json().unwrap();
        assert_eq!((j["error"]["task"].as_str(), j["error"]["option"].as_str()), (Some(name), Some(option)), "{task}");
    }
    let r = s.get(&format!("/enhance=preset:beautify/{h}"));
    assert_eq!(r.status(), 501);
    let j: serde_json::Value = r.json().unwrap();
    assert_eq!(j["error"]["option"], "preset");
}

#[test]
fn ascii_answers_html_text_art() {
    let s = TestServer::start();
    let halves = RgbImage::from_fn(200, 100, |x, _| Rgb([if x < 100 { 0 } else { 255 }; 3]));
    let h = s.upload(&png(halves), "halves.png");
    let r = s.get(&format!("/ascii=size:20/{h}"));
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/html"), "{ct}");
    let body = r.text().unwrap();
    let pre = &body[body.find("<pre").unwrap()..body.find("</pre>").unwrap()];
    let rows: Vec<&str> = pre.lines().skip(1).collect();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.len() == 20 && r.starts_with("@@@@") && r.ends_with("    ")), "{rows:?}");
    let colored = s.get(&format!("/ascii=c:true,s:10,b:black/{h}")).text().unwrap();
    assert!(colored.contains("<span style=\"color:#000000\">@</span>") && colored.contains("background:#000000"));
    assert_eq!(s.get(&format!("/ascii=size:9/{h}")).status(), 400);
}

#[test]
fn bmp_and_tiff_are_written_when_asked_for() {
    let s = TestServer::start();
    let h = s.upload(&common::fixture("pil123rgba.png"), "rgba.png");
    for (word, format, mime) in [("bmp", ImageFormat::Bmp, "image/bmp"), ("tiff", ImageFormat::Tiff, "image/tiff")] {
        let r = s.get(&format!("/resize=width:40/output=format:{word}/{h}"));
        assert_eq!(r.status(), 200, "{word}");
        assert_eq!(r.headers()["content-type"], mime, "{word}");
        let bytes = r.bytes().unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), format, "{word}");
        let img = image::load_from_memory_with_format(&bytes, format).unwrap();
        assert_eq!(img.width(), 40, "{word}");
        // BMP has no alpha: transparent pixels are flattened onto white; TIFF keeps alpha
        assert_eq!(img.color().has_alpha(), format == ImageFormat::Tiff, "{word}");
    }
    // a BMP source with no output format still comes out as PNG
    let bmp = s.upload(&common::fixture("hopper.bmp"), "hopper.bmp");
    let r = s.get(&format!("/resize=width:32/{bmp}"));
    assert_eq!(r.headers()["content-type"], "image/png");
}
