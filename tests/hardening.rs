//! Regression tests for the hardening of issue 7 (`/tmp/refract/hardening-spec.md`): one test per
//! hole. Every hostile file is generated here at run time (PNG metadata bombs from a hand-written
//! deflate stream, lying WebP containers, JPEGs with oversized ICC/XMP segments). After each
//! hostile request the server must still answer `/healthz` and still transform a normal image.

mod common;

use common::{decode, fixture, RemoteImage, TestServer};
use image::{GenericImageView, ImageFormat, Rgb, RgbImage};
use std::io::Cursor;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Address space (`ulimit -v`, KiB) of the servers that receive metadata bombs: 2 GiB. With the
/// allocators reserving in small steps (the harness sets MIMALLOC_ARENA_RESERVE / MALLOC_ARENA_MAX
/// for capped servers) the server idles at ~250 MB of address space, transforms a 20 MP JPEG at
/// ~230 MB RSS and even runs a blur/sharpen chain on it (~950 MB RSS). Holding a bomb's inflated
/// bytes (3 GiB, see `BOMB_INFLATED`) cannot fit, so an unbounded inflate aborts the process
/// instead of quietly succeeding on a machine with lots of RAM. (Without the allocator settings
/// mimalloc's 1 GiB arena and glibc's per-thread arenas take ~1.9 GB of address space at idle.)
const ADDRESS_SPACE_KIB: u64 = 2 * 1024 * 1024;

/// What each PNG metadata bomb inflates to: 3 GiB, from about 3 MB.
const BOMB_INFLATED: u64 = 3 << 30;

/// Small `max_metadata_bytes` for the JPEG and WebP cases. A standard XMP packet lives in one APP1
/// segment (at most 65 502 bytes), so the cap must be below that for a single XMP to exceed it.
const SMALL_METADATA_CAP: u64 = 32 * 1024;

// ---------------------------------------------------------------------------------------------
// Generators: deflate bombs, PNG chunks, WebP containers, JPEG segments
// ---------------------------------------------------------------------------------------------

/// Deflate bit writer: values LSB first, Huffman codes MSB first (RFC 1951 §3.1.1).
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn new() -> Self {
        BitWriter { out: Vec::new(), acc: 0, n: 0 }
    }

    fn bits(&mut self, value: u64, n: u32) {
        self.acc |= value << self.n;
        self.n += n;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn code(&mut self, code: u64, len: u32) {
        let reversed = (0..len).fold(0u64, |r, i| (r << 1) | ((code >> i) & 1));
        self.bits(reversed, len);
    }

    /// `n` zero bits, fast.
    fn zeros(&mut self, mut n: u64) {
        while self.n != 0 && n > 0 {
            self.bits(0, 1);
            n -= 1;
        }
        self.out.resize(self.out.len() + (n / 8) as usize, 0);
        self.bits(0, (n % 8) as u32);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// One final dynamic-Huffman deflate block: the literal `byte`, then `refs` copies of
/// (length 258, distance 1). The literal/length code gives 1 bit to length 258 and 2 bits each to
/// `byte` and end-of-block; the distance code gives 1 bit to distance 1 (and to distance 2, so
/// both codes are complete). Each copy costs 2 bits for 258 bytes: about 1032:1.
fn deflate_bomb(byte: u8, refs: u64) -> Vec<u8> {
    let mut w = BitWriter::new();
    w.bits(1, 1); // BFINAL
    w.bits(2, 2); // BTYPE = dynamic Huffman
    w.bits(286 - 257, 5); // HLIT
    w.bits(2 - 1, 5); // HDIST
    w.bits(18 - 4, 4); // HCLEN: code length codes up to (and including) symbol 1 in the order below
    const ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
    // code length alphabet: symbols 0, 1, 2 and 18 with 2 bits each (codes 00, 01, 10, 11)
    let cl_len = |sym: usize| if matches!(sym, 0 | 1 | 2 | 18) { 2 } else { 0 };
    let cl_code = |sym: usize| match sym {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => 3,
    };
    for sym in &ORDER[..18] {
        w.bits(cl_len(*sym), 3);
    }
    let mut lengths = vec![0usize; 286 + 2];
    lengths[byte as usize] = 2;
    lengths[256] = 2;
    lengths[285] = 1;
    lengths[286] = 1; // distance code 0 (distance 1)
    lengths[287] = 1; // distance code 1 (distance 2), never used
    let mut i = 0;
    while i < lengths.len() {
        if lengths[i] == 0 {
            let run = lengths[i..].iter().take(138).take_while(|&&l| l == 0).count();
            if run >= 11 {
                w.code(cl_code(18), 2);
                w.bits((run - 11) as u64, 7);
                i += run;
                continue;
            }
        }
        w.code(cl_code(lengths[i]), 2);
        i += 1;
    }
    // canonical literal/length codes: 285 -> 0; byte -> 10; 256 -> 11. Distance 1 -> 0.
    w.code(0b10, 2);
    w.zeros(2 * refs);
    w.code(0b11, 2);
    w.finish()
}

/// A zlib stream that inflates to `byte` repeated (at least `at_least` bytes). Returns the stream
/// and the exact inflated length. The Adler-32 is computed in closed form.
fn zlib_bomb(byte: u8, at_least: u64) -> (Vec<u8>, u64) {
    let refs = at_least.saturating_sub(1).div_ceil(258).max(1);
    let len = 1 + 258 * refs;
    let (l, c) = (len as u128, byte as u128);
    let a = (1 + c * l) % 65521;
    let b = (l + c * (l * (l + 1) / 2)) % 65521;
    let mut out = vec![0x78, 0x01];
    out.extend(deflate_bomb(byte, refs));
    out.extend((((b << 16) | a) as u32).to_be_bytes());
    (out, len)
}

fn crc32(parts: &[&[u8]]) -> u32 {
    static TABLE: OnceLock<[u32; 256]> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (n, slot) in t.iter_mut().enumerate() {
            let mut c = n as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *slot = c;
        }
        t
    });
    let mut crc = 0xFFFF_FFFFu32;
    for part in parts {
        for &b in *part {
            crc = table[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
        }
    }
    crc ^ 0xFFFF_FFFF
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 12);
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    out.extend(crc32(&[kind, data]).to_be_bytes());
    out
}

fn png_bytes(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
    out
}

/// `w`×`h`: left half red, right half blue.
fn halves(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, _| if x < w / 2 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) })
}

fn solid_png(w: u32, h: u32, px: [u8; 3]) -> Vec<u8> {
    png_bytes(&image::DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb(px))))
}

/// A valid 16×16 PNG with `chunks` inserted right after IHDR (before any IDAT).
fn png_with_chunks(chunks: &[Vec<u8>]) -> Vec<u8> {
    let base = png_bytes(&image::DynamicImage::ImageRgb8(halves(16, 16)));
    assert_eq!(&base[12..16], b"IHDR");
    let mut out = base[..33].to_vec();
    for c in chunks {
        out.extend(c);
    }
    out.extend(&base[33..]);
    out
}

fn iccp_chunk(zlib: &[u8]) -> Vec<u8> {
    let mut data = b"bomb\0\0".to_vec(); // profile name, NUL, compression method 0
    data.extend(zlib);
    png_chunk(b"iCCP", &data)
}

fn ztxt_chunk(zlib: &[u8]) -> Vec<u8> {
    let mut data = b"Comment\0\0".to_vec(); // keyword, NUL, compression method 0
    data.extend(zlib);
    png_chunk(b"zTXt", &data)
}

fn itxt_chunk(zlib: &[u8]) -> Vec<u8> {
    // keyword, NUL, compression flag 1, method 0, language tag, NUL, translated keyword, NUL
    let mut data = b"Description\0\x01\x00en\0Description\0".to_vec();
    data.extend(zlib);
    png_chunk(b"iTXt", &data)
}

/// The three PNG metadata bombs, each inflating to `BOMB_INFLATED` bytes.
fn png_bombs() -> Vec<(&'static str, Vec<u8>)> {
    let (icc, _) = zlib_bomb(0, BOMB_INFLATED);
    let (text, _) = zlib_bomb(b'A', BOMB_INFLATED);
    vec![
        ("iccp-bomb.png", png_with_chunks(&[iccp_chunk(&icc)])),
        ("ztxt-bomb.png", png_with_chunks(&[ztxt_chunk(&text)])),
        ("itxt-bomb.png", png_with_chunks(&[itxt_chunk(&text)])),
    ]
}

fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_vec();
    out.extend((data.len() as u32).to_le_bytes());
    out.extend(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out
}

fn riff_webp(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut out = b"RIFF".to_vec();
    out.extend(((body.len() + 4) as u32).to_le_bytes());
    out.extend(b"WEBP");
    out.extend(body);
    out
}

fn vp8x_chunk(flags: u8, w: u32, h: u32) -> Vec<u8> {
    let mut data = vec![flags, 0, 0, 0];
    data.extend(&(w - 1).to_le_bytes()[..3]);
    data.extend(&(h - 1).to_le_bytes()[..3]);
    riff_chunk(b"VP8X", &data)
}

const WEBP_ICC: u8 = 0x20;
const WEBP_EXIF: u8 = 0x08;
const WEBP_XMP: u8 = 0x04;

/// The `VP8L` chunk of a lossless 32×16 WebP (left red, right blue), as the image crate encodes it.
fn vp8l_chunk() -> Vec<u8> {
    let mut simple = Vec::new();
    image::DynamicImage::ImageRgb8(halves(32, 16)).write_to(&mut Cursor::new(&mut simple), ImageFormat::WebP).unwrap();
    assert_eq!(&simple[..4], b"RIFF");
    assert_eq!(&simple[12..16], b"VP8L", "the image crate writes simple lossless WebP");
    simple[12..].to_vec()
}

/// An extended (VP8X) 32×16 WebP carrying `meta` (a chunk kind and its payload) where the container
/// puts it: ICCP before the image, EXIF and XMP after it.
fn webp_with(meta: Option<(&[u8; 4], Vec<u8>)>) -> Vec<u8> {
    let flag = match meta.as_ref().map(|m| m.0) {
        Some(b"ICCP") => WEBP_ICC,
        Some(b"EXIF") => WEBP_EXIF,
        Some(b"XMP ") => WEBP_XMP,
        _ => 0,
    };
    let mut chunks = vec![vp8x_chunk(flag, 32, 16)];
    match &meta {
        Some((kind, data)) if *kind == b"ICCP" => {
            chunks.push(riff_chunk(kind, data));
            chunks.push(vp8l_chunk());
        }
        Some((kind, data)) => {
            chunks.push(vp8l_chunk());
            chunks.push(riff_chunk(kind, data));
        }
        None => chunks.push(vp8l_chunk()),
    }
    riff_webp(&chunks)
}

/// A chunk whose declared size runs past the end of the file: `kind`, size `declared`, then only
/// `present` bytes. The RIFF size is the file's real size.
fn lying_chunk(kind: &[u8; 4], declared: u32, present: usize) -> Vec<u8> {
    let mut out = kind.to_vec();
    out.extend(declared.to_le_bytes());
    out.extend(std::iter::repeat_n(0x5Au8, present));
    out
}

/// XMP packet of exactly `size` bytes.
fn xmp_packet(size: usize) -> Vec<u8> {
    let head =
        b"<?xpacket begin=\"\xEF\xBB\xBF\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?><x:xmpmeta xmlns:x=\"adobe:ns:meta/\">";
    let tail = b"</x:xmpmeta><?xpacket end=\"w\"?>";
    assert!(size > head.len() + tail.len());
    let mut out = head.to_vec();
    out.extend(std::iter::repeat_n(b' ', size - head.len() - tail.len()));
    out.extend(tail);
    out
}

/// `hopper.jpg` (128×128) with extra segments (marker, payload) inserted after its APP0.
fn jpeg_with_segments(segments: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let base = fixture("hopper.jpg");
    assert_eq!(&base[..4], &[0xFF, 0xD8, 0xFF, 0xE0]);
    let app0_end = 4 + u16::from_be_bytes([base[4], base[5]]) as usize;
    let mut out = base[..app0_end].to_vec();
    for (marker, payload) in segments {
        assert!(payload.len() + 2 <= 0xFFFF, "segment too long");
        out.extend([0xFF, *marker]);
        out.extend(((payload.len() + 2) as u16).to_be_bytes());
        out.extend(payload);
    }
    out.extend(&base[app0_end..]);
    out
}

/// APP2 `ICC_PROFILE` segments carrying `sizes[i]` bytes each (sequence numbers 1..=n of n).
fn icc_segments(sizes: &[usize]) -> Vec<(u8, Vec<u8>)> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let mut p = b"ICC_PROFILE\0".to_vec();
            p.extend([(i + 1) as u8, sizes.len() as u8]);
            p.extend(std::iter::repeat_n((i as u8).wrapping_mul(37), n));
            (0xE2, p)
        })
        .collect()
}

fn xmp_segment(size: usize) -> (u8, Vec<u8>) {
    let mut p = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    p.extend(xmp_packet(size));
    (0xE1, p)
}

/// A 20 MP (5472×3648) JPEG with texture, made once per test binary.
fn photo_20mp() -> &'static [u8] {
    static PHOTO: OnceLock<Vec<u8>> = OnceLock::new();
    PHOTO.get_or_init(|| {
        let img = RgbImage::from_fn(5472, 3648, |x, y| {
            let v = (x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503)) >> 13;
            Rgb([(x / 22) as u8 ^ (v as u8 & 0x1F), (y / 15) as u8, ((x + y) / 36) as u8 ^ (v >> 8) as u8 & 0x0F])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .encode(img.as_raw(), 5472, 3648, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    })
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

fn short(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(400)]).to_string();
    if bytes.len() > 400 {
        format!("{s}…[{} bytes]", bytes.len())
    } else {
        s
    }
}

/// A response read to its end: status, headers and body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("status {} body is not JSON ({e}): {}", self.status, short(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// Send and read everything; a transport error (the server died, or hung past the client's
/// timeout) fails the test with `what` and whether the process is still alive.
fn send(s: &mut TestServer, req: reqwest::blocking::RequestBuilder, what: &str) -> Answer {
    match req.send().and_then(|r| {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        r.bytes().map(|b| Answer { status, headers, body: b.to_vec() })
    }) {
        Ok(a) => a,
        Err(e) => {
            std::thread::sleep(Duration::from_millis(200));
            panic!("{what}: no answer ({e}); server process still alive: {}", s.alive())
        }
    }
}

fn get(s: &mut TestServer, path: &str) -> Answer {
    let req = s.client().get(s.url(path));
    send(s, req, &format!("GET {path}"))
}

fn post(s: &mut TestServer, path: &str, body: Vec<u8>) -> Answer {
    let req = s.client().post(s.url(path)).body(body);
    send(s, req, &format!("POST {path}"))
}

/// The error contract: the status, JSON `{"error":{"status":<same>,"message":"…"}}`.
fn assert_error(a: &Answer, status: u16, what: &str) -> serde_json::Value {
    assert_eq!(a.status, status, "{what}: want {status}, got {}: {}", a.status, short(&a.body));
    let ct = a.header("content-type").unwrap_or("");
    assert!(ct.starts_with("application/json"), "{what}: error with content-type {ct:?}");
    let v = a.json();
    assert_eq!(v["error"]["status"].as_u64(), Some(status as u64), "{what}: {v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: no message: {v}");
    v
}

fn image_of(a: &Answer, what: &str) -> image::DynamicImage {
    assert_eq!(a.status, 200, "{what}: {}", short(&a.body));
    decode(&a.body)
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b.iter()).all(|(x, y)| (*x as i32 - *y as i32).abs() <= 16)
}

fn rgb_at(img: &image::DynamicImage, x: u32, y: u32) -> [u8; 3] {
    let p = img.get_pixel(x, y).0;
    [p[0], p[1], p[2]]
}

/// `/healthz` answers 200 and a fresh small image still uploads and transforms correctly.
fn assert_still_serving(s: &mut TestServer, after: &str) {
    let a = get(s, "/healthz");
    assert_eq!(a.status, 200, "after {after}: /healthz answered {}", a.status);
    let up =
        post(s, "/api/store/S3?key=k&filename=control.png", png_bytes(&image::DynamicImage::ImageRgb8(halves(64, 48))));
    assert_eq!(up.status, 200, "after {after}: control upload: {}", short(&up.body));
    let h = up.json()["handle"].as_str().expect("handle").to_string();
    let img = image_of(&get(s, &format!("/resize=w:32/output=f:png/{h}")), &format!("control transform after {after}"));
    assert_eq!(img.dimensions(), (32, 24), "after {after}");
    assert!(close(rgb_at(&img, 3, 12), [255, 0, 0]) && close(rgb_at(&img, 28, 12), [0, 0, 255]), "after {after}");
}

/// A 20 MP JPEG uploads and shrinks (the address-space cap leaves room for real work).
fn assert_photo_transforms(s: &mut TestServer) {
    let up = post(s, "/api/store/S3?key=k&filename=photo.jpg", photo_20mp().to_vec());
    assert_eq!(up.status, 200, "20 MP upload under the address-space cap: {}", short(&up.body));
    let h = up.json()["handle"].as_str().unwrap().to_string();
    let img = image_of(&get(s, &format!("/resize=w:1000/output=f:jpg/{h}")), "20 MP transform under the cap");
    assert_eq!(img.dimensions(), (1000, 667));
    let img = image_of(&get(s, &format!("/rotate=deg:90/resize=h:2000/output=f:png/{h}")), "20 MP rotate");
    assert_eq!(img.dimensions(), (1333, 2000));
}

/// Peak resident memory (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // the command name may hold spaces: fields count from the closing parenthesis
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // after ")": state is field 3, utime 14, stime 15 (1-based over the whole line)
    let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    utime + stime
}

/// Write each hostile file into a fresh directory served as the `hostile` storage alias, and start
/// a server under the address-space cap with that alias and `env`.
fn capped_server_with_alias(files: &[(&str, Vec<u8>)], env: &[(&str, &str)]) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let config = format!("[aliases]\nhostile = {:?}\n", dir.path());
    (TestServer::start_capped(ADDRESS_SPACE_KIB, env, Some(&config)), dir)
}

/// Each file: refused 422 at upload and through `src://hostile/NAME`; the process survives and
/// still works after each.
fn assert_refused_everywhere(s: &mut TestServer, files: &[(&str, Vec<u8>)]) {
    for (name, bytes) in files {
        let a = post(s, &format!("/api/store/S3?key=k&filename={name}"), bytes.clone());
        assert_error(&a, 422, &format!("upload of {name}"));
        assert!(s.alive(), "the server died on the upload of {name}");
        assert_still_serving(s, &format!("the upload of {name}"));
        for path in [format!("/resize=w:10/src://hostile/{name}"), format!("/output=f:png/src://hostile/{name}")] {
            let a = get(s, &path);
            assert_error(&a, 422, &format!("transform of {name}: {path}"));
            assert!(s.alive(), "the server died on {path}");
            assert_still_serving(s, &path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Metadata bombs
// ---------------------------------------------------------------------------------------------

/// The generators really make what the tests claim: the bomb stream inflates (through the PNG
/// decoder's own inflater) to exactly the computed length with a valid Adler-32, every chunk has
/// a valid CRC, and the full-size bombs are about 1000:1.
#[test]
fn hostile_generators_make_what_they_claim() {
    for byte in [0u8, b'A'] {
        let (z, len) = zlib_bomb(byte, 5 << 20);
        let png = png_with_chunks(&[iccp_chunk(&z)]);
        let mut dec = image::codecs::png::PngDecoder::new(Cursor::new(&png)).unwrap();
        let icc = image::ImageDecoder::icc_profile(&mut dec).unwrap().expect("iCCP read back");
        assert_eq!(icc.len() as u64, len);
        assert!(icc.iter().all(|&b| b == byte));
        // text bombs: the PNG still decodes (chunk framing and CRCs are right)
        let png = png_with_chunks(&[ztxt_chunk(&z), itxt_chunk(&z)]);
        assert_eq!(image::load_from_memory(&png).unwrap().dimensions(), (16, 16));
    }
    for (name, png) in png_bombs() {
        assert!(png.len() < 4 << 20, "{name} is {} bytes", png.len());
        assert!(png.len() > 2 << 20, "{name} is {} bytes", png.len());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
    let (_, len) = zlib_bomb(0, BOMB_INFLATED);
    assert!(len >= BOMB_INFLATED);
    const _: () = assert!(BOMB_INFLATED > ADDRESS_SPACE_KIB * 1024, "the bomb inflates past the address-space cap");
    // WebP: the container builder makes decodable images; the lying chunk really lies
    let plain = webp_with(None);
    let img = image::load_from_memory_with_format(&plain, ImageFormat::WebP).unwrap();
    assert_eq!(img.dimensions(), (32, 16));
    assert!(close(rgb_at(&img, 2, 8), [255, 0, 0]) && close(rgb_at(&img, 29, 8), [0, 0, 255]));
    let with_xmp = webp_with(Some((b"XMP ", xmp_packet(2000))));
    assert_eq!(image::load_from_memory_with_format(&with_xmp, ImageFormat::WebP).unwrap().dimensions(), (32, 16));
    // JPEG: segments inserted, still a decodable 128×128 image
    let jpg = jpeg_with_segments(&icc_segments(&[12_000, 12_000, 12_000]));
    assert_eq!(image::load_from_memory(&jpg).unwrap().dimensions(), (128, 128));
    let jpg = jpeg_with_segments(&[xmp_segment(40_000)]);
    assert_eq!(image::load_from_memory(&jpg).unwrap().dimensions(), (128, 128));
}

/// PNG iCCP / zTXt / iTXt bombs (3 MB inflating to 3 GiB) are refused 422 at upload and at
/// transform, without inflating them into memory: the server runs under a 2 GiB address-space cap
/// (an unbounded inflate aborts it), its peak RSS stays small, and it still serves a 20 MP photo.
#[test]
fn png_metadata_bombs_are_refused_without_allocating() {
    let bombs = png_bombs();
    let (mut s, _dir) = capped_server_with_alias(&bombs, &[]);
    assert_refused_everywhere(&mut s, &bombs);
    let peak = peak_rss_kib(s.pid());
    assert!(peak < 512 * 1024, "peak RSS {peak} KiB after refusing the bombs: they were inflated in memory");
    assert_photo_transforms(&mut s);
    assert_still_serving(&mut s, "the 20 MP photo");
}

/// WebP: a chunk declaring 4 GiB in a small file (ICCP before the image, or EXIF after it), and
/// ICCP / EXIF / XMP chunks over `max_metadata_bytes`, are refused 422; the same container with no
/// metadata, or with XMP under the cap, is served.
#[test]
fn webp_lying_or_oversized_chunks_are_refused() {
    let cap = SMALL_METADATA_CAP as usize;
    let mut past_end = vec![vp8x_chunk(WEBP_ICC, 32, 16)];
    past_end.push(lying_chunk(b"ICCP", 0xFFFF_FFF0, 256));
    let exif_past_end = {
        let mut chunks = vec![vp8x_chunk(WEBP_EXIF, 32, 16), vp8l_chunk()];
        chunks.push(lying_chunk(b"EXIF", 0x7FFF_FF00, 64));
        riff_webp(&chunks)
    };
    let mut exif = b"II*\0\x08\0\0\0\0\0".to_vec();
    exif.resize(cap + 4096, 0);
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("iccp-past-end.webp", riff_webp(&past_end)),
        ("exif-past-end.webp", exif_past_end),
        ("iccp-over-cap.webp", webp_with(Some((b"ICCP", vec![0x11; cap + 4096])))),
        ("exif-over-cap.webp", webp_with(Some((b"EXIF", exif)))),
        ("xmp-over-cap.webp", webp_with(Some((b"XMP ", xmp_packet(cap + 4096))))),
    ];
    let cap_text = SMALL_METADATA_CAP.to_string();
    let mut controls = files.clone();
    controls.push(("plain.webp", webp_with(None)));
    controls.push(("small-xmp.webp", webp_with(Some((b"XMP ", xmp_packet(2000))))));
    let (mut s, _dir) = capped_server_with_alias(&controls, &[("REFRACT_MAX_METADATA_BYTES", &cap_text)]);
    assert_refused_everywhere(&mut s, &files);
    for name in ["plain.webp", "small-xmp.webp"] {
        let img = image_of(&get(&mut s, &format!("/output=f:png/src://hostile/{name}")), name);
        assert_eq!(img.dimensions(), (32, 16), "{name}");
        assert!(close(rgb_at(&img, 2, 8), [255, 0, 0]) && close(rgb_at(&img, 29, 8), [0, 0, 255]), "{name}");
        let up = post(
            &mut s,
            &format!("/api/store/S3?key=k&filename={name}"),
            controls.iter().find(|f| f.0 == name).unwrap().1.clone(),
        );
        assert_eq!(up.status, 200, "{name} under the cap: {}", short(&up.body));
    }
    assert_photo_transforms(&mut s);
}

/// JPEG: ICC split over APP2 `ICC_PROFILE` segments each under the cap but summing over it, and
/// one APP1 XMP packet over the cap, are refused 422; XMP under the cap is served.
#[test]
fn jpeg_icc_or_xmp_over_the_cap_is_refused() {
    let cap = SMALL_METADATA_CAP as usize;
    let third = cap / 3 + 1024; // each segment under the cap, the three together over it
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("icc-sum-over-cap.jpg", jpeg_with_segments(&icc_segments(&[third, third, third]))),
        ("icc-over-cap.jpg", jpeg_with_segments(&icc_segments(&[cap + 1024]))),
        ("xmp-over-cap.jpg", jpeg_with_segments(&[xmp_segment(cap + 4096)])),
    ];
    let cap_text = SMALL_METADATA_CAP.to_string();
    let mut all = files.clone();
    all.push(("small-xmp.jpg", jpeg_with_segments(&[xmp_segment(2000)])));
    let (mut s, _dir) = capped_server_with_alias(&all, &[("REFRACT_MAX_METADATA_BYTES", &cap_text)]);
    assert_refused_everywhere(&mut s, &files);
    let img = image_of(&get(&mut s, "/resize=w:64/src://hostile/small-xmp.jpg"), "XMP under the cap");
    assert_eq!(img.dimensions(), (64, 64));
    let up = post(&mut s, "/api/store/S3?key=k&filename=small-xmp.jpg", all[3].1.clone());
    assert_eq!(up.status, 200, "XMP under the cap: {}", short(&up.body));
    assert_photo_transforms(&mut s);
}

// ---------------------------------------------------------------------------------------------
// 2. Active content
// ---------------------------------------------------------------------------------------------

fn nosniff(a: &Answer, what: &str) {
    assert_eq!(a.header("x-content-type-options"), Some("nosniff"), "{what} (status {})", a.status);
}

/// Served as a sandboxed download (or sandboxed inline when `inline`).
fn assert_sandboxed(a: &Answer, what: &str, inline: bool) {
    assert_eq!(a.status, 200, "{what}: {}", short(&a.body));
    let disposition = a.header("content-disposition").unwrap_or("");
    let want = if inline { "inline" } else { "attachment" };
    assert!(disposition.starts_with(want), "{what}: Content-Disposition {disposition:?}, want {want}");
    let csp = a.header("content-security-policy").unwrap_or("");
    assert!(csp.contains("sandbox"), "{what}: Content-Security-Policy {csp:?} has no sandbox");
    nosniff(a, what);
}

fn store_with(s: &mut TestServer, query: &str, content_type: Option<&str>, body: &[u8]) -> Answer {
    let mut req = s.client().post(s.url(&format!("/api/store/S3?key=k&{query}"))).body(body.to_vec());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    send(s, req, &format!("store {query} ({content_type:?})"))
}

fn stored_handle(a: &Answer, what: &str) -> String {
    assert_eq!(a.status, 200, "{what}: {}", short(&a.body));
    a.json()["handle"].as_str().expect("handle").to_string()
}

const HTML: &[u8] = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>";
const SVG: &[u8] =
    b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><script>alert(document.cookie)</script></svg>";

/// Uploads that are (declared or sniffed as) HTML, SVG, XML or JavaScript are stored but served as
/// sandboxed attachments with `nosniff`; an image claim with HTML bytes is refused 415; a text/plain
/// claim with HTML bytes is stored as text/html; every answer carries `nosniff`; derivatives are
/// never active content; `REFRACT_INLINE_SVG=true` serves SVG inline, still sandboxed.
#[test]
fn active_content_is_served_as_a_sandboxed_attachment() {
    let mut s = TestServer::start();
    let mut active: Vec<(String, String)> = Vec::new(); // (what, handle)
                                                        // declared by the request's Content-Type
    let declared: [(&str, &[u8]); 6] = [
        ("text/html", HTML),
        ("image/svg+xml", SVG),
        ("application/xhtml+xml", b"<p xmlns=\"http://www.w3.org/1999/xhtml\">hi</p>"),
        ("text/xml", b"<note>hi</note>"),
        ("application/xml", b"<note>hi</note>"),
        ("text/javascript", b"alert(document.cookie)"),
    ];
    for (ct, body) in declared {
        let a = store_with(&mut s, "filename=upload.bin", Some(ct), body);
        active.push((format!("declared {ct} (Content-Type)"), stored_handle(&a, ct)));
        let q = format!("filename=upload.bin&mimetype={}", ct.replace('+', "%2B"));
        let a = store_with(&mut s, &q, None, body);
        active.push((format!("declared {ct} (mimetype=)"), stored_handle(&a, ct)));
    }
    // sniffed from the bytes, with no declaration
    let sniffed: [&[u8]; 5] = [
        HTML,
        b"<html><script>alert(1)</script></html>",
        SVG,
        b"<?xml version=\"1.0\"?><x/>",
        b"<script>alert(1)</script>",
    ];
    for body in sniffed {
        let what = format!("sniffed {:?}", String::from_utf8_lossy(&body[..12]));
        let a = store_with(&mut s, "filename=upload.bin", None, body);
        active.push((what.clone(), stored_handle(&a, &what)));
    }
    for (what, h) in &active {
        let a = get(&mut s, &format!("/api/file/{h}"));
        assert_sandboxed(&a, &format!("{what}: GET /api/file/H"), false);
        let a = get(&mut s, &format!("/{h}"));
        assert_sandboxed(&a, &format!("{what}: GET /H"), false);
        // a derivative of active content is an image or an error, never the content itself
        for task in ["resize=w:10", "output=f:png", "flip"] {
            let a = get(&mut s, &format!("/{task}/{h}"));
            nosniff(&a, &format!("{what}: /{task}/H"));
            let ct = a.header("content-type").unwrap_or("").to_string();
            if a.status == 200 {
                assert!(ct.starts_with("image/"), "{what}: /{task}/H answered 200 as {ct:?}");
            } else {
                assert!(ct.starts_with("application/json"), "{what}: /{task}/H answered {} as {ct:?}", a.status);
            }
            assert!(!a.text().contains("<script"), "{what}: /{task}/H reflected the script");
        }
    }
    // sniffed bytes win over the declaration
    for (query, ct) in [("filename=x.png", Some("image/png")), ("filename=x.bin&mimetype=image/png", None)] {
        let a = store_with(&mut s, query, ct, HTML);
        assert_error(&a, 415, &format!("HTML bytes declared image/png ({query})"));
    }
    let a = store_with(&mut s, "filename=notes.txt", Some("text/plain"), HTML);
    let h = stored_handle(&a, "HTML bytes declared text/plain");
    let meta = get(&mut s, &format!("/api/file/{h}/metadata")).json();
    assert!(meta["mimetype"].as_str().is_some_and(|m| m.starts_with("text/html")), "stored as {}", meta["mimetype"]);
    assert_sandboxed(&get(&mut s, &format!("/{h}")), "HTML declared text/plain", false);

    // every answer carries nosniff: 200, 304, 4xx, health, metrics, derivatives, JSON tasks
    let img = stored_handle(&store_with(&mut s, "filename=lr.png", None, &solid_png(40, 20, [9, 99, 199])), "image");
    let original = get(&mut s, &format!("/{img}"));
    nosniff(&original, "an image's original");
    let etag = original.header("etag").expect("ETag on an original").to_string();
    let req = s.client().get(s.url(&format!("/{img}"))).header("if-none-match", &etag);
    let a = send(&mut s, req, "conditional GET");
    assert_eq!(a.status, 304);
    nosniff(&a, "304");
    let derivative = get(&mut s, &format!("/resize=w:10/{img}"));
    assert_eq!(derivative.status, 200);
    assert!(derivative.header("content-type").unwrap_or("").starts_with("image/"));
    nosniff(&derivative, "a derivative");
    let etag = derivative.header("etag").expect("ETag on a derivative").to_string();
    let req = s.client().get(s.url(&format!("/resize=w:10/{img}"))).header("if-none-match", &etag);
    let a = send(&mut s, req, "conditional GET of a derivative");
    assert_eq!(a.status, 304);
    nosniff(&a, "304 of a derivative");
    let a = get(&mut s, &format!("/imagesize/{img}"));
    assert_eq!(a.status, 200);
    assert!(a.header("content-type").unwrap_or("").starts_with("application/json"));
    assert_eq!(a.json()["width"], 40);
    nosniff(&a, "imagesize");
    for (path, status) in [
        ("/healthz".to_string(), 200),
        ("/metrics".to_string(), 200),
        (format!("/api/file/{img}/metadata"), 200),
        ("/api/file/AAAAAAAAAAAAAAAAAAAA".to_string(), 404),
        ("/resize=w:10/AAAAAAAAAAAAAAAAAAAA".to_string(), 404),
        (format!("/resize=w:0/{img}"), 400),
        ("/api/nothing".to_string(), 404),
    ] {
        let a = get(&mut s, &path);
        assert_eq!(a.status, status, "{path}: {}", short(&a.body));
        nosniff(&a, &path);
    }
    let req = s.client().delete(s.url(&format!("/resize=w:10/{img}")));
    let a = send(&mut s, req, "DELETE on a processing URL");
    assert_eq!(a.status, 405);
    nosniff(&a, "405");
    assert_still_serving(&mut s, "active content");

    // inline SVG when asked, still sandboxed; HTML stays an attachment
    let mut s = TestServer::start_with_env(&[("REFRACT_INLINE_SVG", "true")]);
    let svg = stored_handle(&store_with(&mut s, "filename=x.svg", Some("image/svg+xml"), SVG), "SVG");
    let sniffed_svg = stored_handle(&store_with(&mut s, "filename=upload.bin", None, SVG), "sniffed SVG");
    let html = stored_handle(&store_with(&mut s, "filename=x.html", Some("text/html"), HTML), "HTML");
    for h in [&svg, &sniffed_svg] {
        assert_sandboxed(&get(&mut s, &format!("/api/file/{h}")), "inline SVG via the API", true);
        assert_sandboxed(&get(&mut s, &format!("/{h}")), "inline SVG", true);
    }
    assert_sandboxed(&get(&mut s, &format!("/{html}")), "HTML with inline_svg", false);
    assert_sandboxed(&get(&mut s, &format!("/api/file/{html}")), "HTML with inline_svg", false);
    assert_still_serving(&mut s, "inline SVG");
}

// ---------------------------------------------------------------------------------------------
// 3. mimetype
// ---------------------------------------------------------------------------------------------

fn multipart(part_content_type: &[u8], body: &[u8]) -> (String, Vec<u8>) {
    let boundary = "refract-test-boundary-7f3a";
    let mut out = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"fileUpload\"; filename=\"a.txt\"\r\nContent-Type: "
    )
    .into_bytes();
    out.extend(part_content_type);
    out.extend(b"\r\n\r\n");
    out.extend(body);
    out.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    (format!("multipart/form-data; boundary={boundary}"), out)
}

fn assert_names_mimetype(a: &Answer, what: &str) {
    let v = assert_error(a, 400, what);
    let msg = v["error"]["message"].as_str().unwrap_or("");
    let option = v["error"]["option"].as_str().unwrap_or("");
    assert!(msg.contains("mimetype") || option == "mimetype", "{what}: the error does not name mimetype: {v}");
}

/// A mimetype with CR, LF or another control character (query `mimetype=`, a raw upload's
/// Content-Type, a multipart part's Content-Type) is refused 400 naming `mimetype`; one that is
/// not a `type/subtype` token is refused 400; a clean one is accepted.
#[test]
fn control_characters_in_a_mimetype_are_refused() {
    let mut s = TestServer::start();
    for bad in [
        "text/plain%0D%0AX-Injected:%20yes",
        "text/plain%0A",
        "text/plain%0D",
        "text/pl%00ain",
        "text/pl%09ain",
        "text/pl%1Bain",
        "text/plain%7F",
    ] {
        let a = store_with(&mut s, &format!("filename=a.txt&mimetype={bad}"), None, b"hello");
        assert_names_mimetype(&a, &format!("mimetype={bad}"));
    }
    for bad in ["notamimetype", "text/", "/plain", "text/pl%20ain", "text/plain/extra", "te(x)t/plain"] {
        let a = store_with(&mut s, &format!("filename=a.txt&mimetype={bad}"), None, b"hello");
        assert_error(&a, 400, &format!("mimetype={bad}"));
    }
    // a raw upload's own Content-Type (a tab is the one control character a header may carry)
    let a = store_with(&mut s, "filename=a.txt", Some("text/pl\tain"), b"hello");
    assert_names_mimetype(&a, "Content-Type with a tab");
    // a multipart part's Content-Type
    let (ct, body) = multipart(b"text/pl\tain", b"hello");
    let req = s.client().post(s.url("/api/store/S3?key=k")).header("content-type", ct).body(body);
    let a = send(&mut s, req, "multipart part with a tab in its Content-Type");
    assert_names_mimetype(&a, "multipart part Content-Type with a tab");
    for bad in [&b"text/plain\x7f"[..], b"text/pl\x01ain", b"notamimetype"] {
        let (ct, body) = multipart(bad, b"hello");
        let req = s.client().post(s.url("/api/store/S3?key=k")).header("content-type", ct).body(body);
        let a = send(&mut s, req, "multipart part with a bad Content-Type");
        assert_error(&a, 400, &format!("multipart part Content-Type {:?}", String::from_utf8_lossy(bad)));
    }
    // clean ones still work
    let a = store_with(&mut s, "filename=a.txt&mimetype=text/plain", None, b"hello");
    let h = stored_handle(&a, "mimetype=text/plain");
    assert_eq!(get(&mut s, &format!("/api/file/{h}/metadata")).json()["mimetype"], "text/plain");
    let (ct, body) = multipart(b"text/plain", b"hello");
    let req = s.client().post(s.url("/api/store/S3?key=k")).header("content-type", ct).body(body);
    let a = send(&mut s, req, "multipart with a clean part");
    let h = stored_handle(&a, "multipart text/plain");
    let a = get(&mut s, &format!("/api/file/{h}"));
    assert_eq!(a.body, b"hello");
    assert!(a.headers.keys().all(|k| k.as_str() != "x-injected"));
    assert_still_serving(&mut s, "bad mimetypes");
}

// ---------------------------------------------------------------------------------------------
// 4, 5. Start-up configuration
// ---------------------------------------------------------------------------------------------

fn nonempty_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

fn assert_refuses_to_start(env: &[(&str, &str)], config: Option<&str>, names: &str, one_line: bool) {
    let f = TestServer::start_expecting_failure(env, config);
    let what = format!("{env:?} {config:?}");
    assert!(!f.listening, "{what}: the server started listening; stderr: {}", f.stderr);
    assert!(!f.status.success(), "{what}: exit status {:?}", f.status);
    assert!(f.status.code().is_some(), "{what}: killed by a signal ({:?}) rather than exiting", f.status);
    let lines = nonempty_lines(&f.stderr);
    assert!(lines.iter().any(|l| l.contains(names)), "{what}: no stderr line names `{names}`: {:?}", f.stderr);
    if one_line {
        assert_eq!(lines.len(), 1, "{what}: want one line on stderr, got {lines:?}");
    }
}

/// An empty or short (< 16 bytes) `REFRACT_SECRET` stops the server before it listens, with one
/// stderr line naming `secret`; a 16-byte secret starts it (and signatures are then required).
#[test]
fn weak_secrets_stop_the_server_before_it_listens() {
    for weak in ["", "x", "short", "0123456789abcde"] {
        assert_refuses_to_start(&[("REFRACT_SECRET", weak)], None, "secret", true);
    }
    let mut s = TestServer::start_with_env(&[("REFRACT_SECRET", "0123456789abcdef")]);
    assert_eq!(get(&mut s, "/healthz").status, 200);
    let a = post(&mut s, "/api/store/S3?key=k&filename=a.png", solid_png(8, 8, [1, 2, 3]));
    assert_eq!(a.status, 401, "with a secret, an unsigned store is refused: {}", short(&a.body));
}

/// Unknown `REFRACT_*` variables (Kubernetes service links) are warned about and ignored; an
/// unknown key in the TOML file, or an out-of-range value, stops the server with one line naming
/// the field. The harness itself never passes the test runner's `REFRACT_*` variables on.
#[test]
fn orchestrator_variables_are_ignored_but_bad_configuration_is_fatal() {
    let k8s = [
        ("REFRACT_PORT", "tcp://10.0.0.7:8080"),
        ("REFRACT_PORT_8080_TCP", "tcp://10.0.0.7:8080"),
        ("REFRACT_PORT_8080_TCP_ADDR", "10.0.0.7"),
        ("REFRACT_SERVICE_HOST", "10.0.0.7"),
        ("REFRACT_SERVICE_PORT", "8080"),
    ];
    let mut s = TestServer::start_capturing_stderr(&k8s, None);
    assert_still_serving(&mut s, "start with Kubernetes variables");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let err = s.stderr_text();
        let missing: Vec<&str> = k8s.iter().map(|(k, _)| *k).filter(|k| !err.contains(k)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "no warning on stderr about {missing:?}; stderr: {err:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(s.base.starts_with("http://127.0.0.1:"), "REFRACT_PORT must not change the listener: {}", s.base);
    drop(s);

    // (the spec asks only for a non-zero exit here; any stderr line will do)
    assert_refuses_to_start(&[], Some("cache_ttl = 5\n"), "", false);
    assert_refuses_to_start(&[("REFRACT_WORKERS", "100000")], None, "workers", true);
    assert_refuses_to_start(&[("REFRACT_MAX_PIXELS", "0")], None, "max_pixels", true);
}

// ---------------------------------------------------------------------------------------------
// 6. Chains, upscales, timeouts
// ---------------------------------------------------------------------------------------------

/// More than `max_chain` tasks → 400 naming max_chain (30 is fine); a resize over `max_upscale`×
/// → 400 for task resize naming max_upscale (16× is fine); a transform past
/// `transform_timeout_ms` → 422 naming it, soon after the deadline (checked inside long loops), the
/// work really stops (no CPU burnt after the answer), and the server carries on.
#[test]
fn runaway_chains_upscales_and_transforms_are_bounded() {
    let mut s = TestServer::start_with_env(&[("REFRACT_TRANSFORM_TIMEOUT_MS", "1000")]);
    let h = stored_handle(
        &post(
            &mut s,
            "/api/store/S3?key=k&filename=lr.png",
            png_bytes(&image::DynamicImage::ImageRgb8(halves(40, 20))),
        ),
        "lr",
    );
    let chain = |n: usize| (0..n).map(|i| if i % 2 == 0 { "flop" } else { "flip" }).collect::<Vec<_>>().join("/");
    let a = get(&mut s, &format!("/{}/output=f:png/{h}", chain(29)));
    let img = image_of(&a, "29 flips/flops and an output: 30 tasks");
    // 15 flops (an odd number) mirror left/right: the red half ends on the right
    assert!(close(rgb_at(&img, 2, 10), [0, 0, 255]), "30-task chain ran");
    for n in [31, 64, 500] {
        let path = format!("/{}/{h}", chain(n));
        let v = assert_error(&get(&mut s, &path), 400, &format!("{n} tasks"));
        assert!(v["error"]["message"].as_str().unwrap().contains("max_chain"), "{n} tasks: {v}");
    }
    assert_still_serving(&mut s, "long chains");

    let dot = stored_handle(&post(&mut s, "/api/store/S3?key=k&filename=dot.png", solid_png(1, 1, [0, 200, 0])), "1x1");
    for path in [format!("/resize=w:5000,h:5000/{dot}"), format!("/resize=w:17/{dot}"), format!("/resize=h:17/{dot}")] {
        let v = assert_error(&get(&mut s, &path), 400, &path);
        assert_eq!(v["error"]["task"], "resize", "{path}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("max_upscale"), "{path}: {v}");
        assert_still_serving(&mut s, &path);
    }
    let img = image_of(&get(&mut s, &format!("/resize=w:16,h:16/output=f:png/{dot}")), "16x upscale");
    assert_eq!(img.dimensions(), (16, 16));

    let photo = stored_handle(&post(&mut s, "/api/store/S3?key=k&filename=photo.jpg", photo_20mp().to_vec()), "20 MP");
    // Unbounded, this runs for 30 s and more (the pre-hardening server: 7 s for the resize and one
    // blur alone). A deadline checked only between steps answers after the first blur (~6 s); one
    // checked inside the loops answers a little after 1 s.
    let heavy = "resize=w:10000/blur=amount:20/sharpen=amount:20/blur=amount:20/output=f:png";
    let started = Instant::now();
    let a = get(&mut s, &format!("/{heavy}/{photo}"));
    let took = started.elapsed();
    let v = assert_error(&a, 422, "a transform past transform_timeout_ms");
    assert!(v["error"]["message"].as_str().unwrap().contains("transform_timeout_ms"), "{v}");
    assert!(took < Duration::from_secs(5), "the 422 took {took:?}: the deadline is not checked inside the work");
    // the work stopped: the process is (nearly) idle after answering
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(s.pid());
    std::thread::sleep(Duration::from_secs(2));
    let burnt = cpu_ticks(s.pid()) - before;
    assert!(burnt < 50, "the server used {burnt} ticks of CPU in 2 s after the timeout: the transform kept running");
    assert_still_serving(&mut s, "a timed-out transform");
    let img = image_of(&get(&mut s, &format!("/resize=w:500/output=f:jpg/{photo}")), "a quick transform of the photo");
    assert_eq!(img.dimensions(), (500, 333));
}

// ---------------------------------------------------------------------------------------------
// 7. store is idempotent
// ---------------------------------------------------------------------------------------------

/// The `store` task on a GET is idempotent: the same URL twice gives the same handle; after the
/// source is overwritten the same URL stores a new handle with the new pixels.
#[test]
fn store_task_is_idempotent_per_source_version() {
    let mut s = TestServer::start();
    let h =
        stored_handle(&post(&mut s, "/api/store/S3?key=k&filename=red.png", solid_png(200, 100, [255, 0, 0])), "red");
    let path = format!("/store=filename:a.jpg/resize=w:100/{h}");
    let first = get(&mut s, &path);
    let first = stored_handle(&first, "first store");
    let second = stored_handle(&get(&mut s, &path), "second store");
    assert_eq!(first, second, "the same store URL twice must give the same handle");
    assert_ne!(first, h);
    let img = image_of(&get(&mut s, &format!("/{first}")), "stored derivative");
    assert_eq!(img.dimensions(), (100, 50));
    assert!(close(rgb_at(&img, 50, 25), [255, 0, 0]));
    // another chain is another file
    let other = stored_handle(&get(&mut s, &format!("/store=filename:a.jpg/resize=w:50/{h}")), "other chain");
    assert_ne!(other, first);

    let a = post(&mut s, &format!("/api/file/{h}"), solid_png(200, 100, [0, 0, 255]));
    assert_eq!(a.status, 200, "overwrite: {}", short(&a.body));
    let third = stored_handle(&get(&mut s, &path), "store after the overwrite");
    assert_ne!(third, first, "a new source version must store a new handle");
    let img = image_of(&get(&mut s, &format!("/{third}")), "stored derivative of the new version");
    assert_eq!(img.dimensions(), (100, 50));
    assert!(close(rgb_at(&img, 50, 25), [0, 0, 255]), "new pixels");
    assert_eq!(stored_handle(&get(&mut s, &path), "again"), third);
    assert_still_serving(&mut s, "store");
}

// ---------------------------------------------------------------------------------------------
// 8. Watermarks purge
// ---------------------------------------------------------------------------------------------

/// A watermark's handle is in its derivatives' `Surrogate-Key`; overwriting the watermark purges
/// them (`derivatives_purged >= 1`) and the same URL then shows the new mark.
#[test]
fn overwriting_a_watermark_purges_its_derivatives() {
    let mut s = TestServer::start();
    let base =
        stored_handle(&post(&mut s, "/api/store/S3?key=k&filename=base.png", solid_png(100, 100, [0, 0, 255])), "base");
    let mark =
        stored_handle(&post(&mut s, "/api/store/S3?key=k&filename=mark.png", solid_png(40, 40, [255, 0, 0])), "mark");
    let path = format!("/watermark=file:{mark},size:50,position:[bottom,right]/output=f:png/{base}");
    let a = get(&mut s, &path);
    let img = image_of(&a, "watermarked");
    assert!(close(rgb_at(&img, 95, 95), [255, 0, 0]), "red mark");
    let keys = a.header("surrogate-key").unwrap_or("").to_string();
    assert!(keys.split_whitespace().any(|k| k == mark), "Surrogate-Key {keys:?} lacks the watermark {mark}");
    assert!(keys.split_whitespace().any(|k| k == base), "Surrogate-Key {keys:?} lacks the source {base}");
    // served from the cache the second time
    assert_eq!(image_of(&get(&mut s, &path), "again").dimensions(), (100, 100));

    let a = post(&mut s, &format!("/api/file/{mark}"), solid_png(40, 40, [0, 255, 0]));
    assert_eq!(a.status, 200, "overwrite of the mark: {}", short(&a.body));
    let purged = a.json()["derivatives_purged"].as_u64();
    assert!(purged.is_some_and(|n| n >= 1), "overwrite answer: {}", a.text());
    let img = image_of(&get(&mut s, &path), "after the overwrite");
    assert!(close(rgb_at(&img, 95, 95), [0, 255, 0]), "the new (green) mark, got {:?}", rgb_at(&img, 95, 95));
    assert!(close(rgb_at(&img, 5, 5), [0, 0, 255]));
    assert_still_serving(&mut s, "watermark overwrite");
}

// ---------------------------------------------------------------------------------------------
// 9. 5xx bodies
// ---------------------------------------------------------------------------------------------

/// A 5xx answer is `{"error":{"status":500,"message":"internal error","request_id":ID}}` with ID
/// the `X-Request-Id` header, and nothing about the cause (here a corrupted meta.json on disk).
#[test]
fn internal_errors_reveal_only_a_request_id() {
    let mut s = TestServer::start();
    let h = stored_handle(&post(&mut s, "/api/store/S3?key=k&filename=p.png", solid_png(20, 20, [1, 2, 3])), "p");
    let meta = s.data_dir.join("originals").join(&h[..2]).join(&h).join("meta.json");
    assert!(meta.exists(), "store layout: {}", meta.display());
    std::fs::write(&meta, b"{\"handle\": \"corrupted-by-the-test\", \"size\": \"SECRET-DETAIL\"").unwrap();
    // the server may hold the metadata in memory: start it again on the same data dir
    s.restart();
    let mut ids = Vec::new();
    for path in
        [format!("/api/file/{h}"), format!("/{h}"), format!("/resize=w:10/{h}"), format!("/api/file/{h}/metadata")]
    {
        let a = get(&mut s, &path);
        assert_eq!(a.status, 500, "{path}: {}", short(&a.body));
        nosniff(&a, &path);
        let id = a.header("x-request-id").expect("X-Request-Id").to_string();
        assert!(!id.is_empty());
        let v = a.json();
        assert_eq!(
            v,
            serde_json::json!({"error": {"status": 500, "message": "internal error", "request_id": id}}),
            "{path}"
        );
        let text = a.text();
        for leak in ["SECRET", "corrupted", "meta.json", "originals", "EOF", "line", s.data_dir.to_str().unwrap()] {
            assert!(!text.contains(leak), "{path}: the body leaks {leak:?}: {text}");
        }
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "each request has its own id");
    assert_still_serving(&mut s, "internal errors");
}

// ---------------------------------------------------------------------------------------------
// 10. External sources are revalidated
// ---------------------------------------------------------------------------------------------

/// A derivative of an external URL follows a change of the remote image once
/// `source_revalidate_secs` has passed, and the origin revalidates with a conditional GET
/// (If-None-Match / If-Modified-Since) built from the remote's validators.
#[test]
fn external_sources_are_revalidated_with_conditional_requests() {
    let remote = RemoteImage::start(solid_png(40, 20, [255, 0, 0]), "image/png");
    let (etag_v1, modified_v1) = (remote.etag(), remote.last_modified());
    let mut s = TestServer::start_with_env(&[
        ("REFRACT_ALLOW_PRIVATE_NETWORKS", "true"),
        ("REFRACT_SOURCE_REVALIDATE_SECS", "1"),
    ]);
    let path = format!("/resize=w:10/output=f:png/{}", remote.url("/img.png"));
    let img = image_of(&get(&mut s, &path), "external source");
    assert_eq!(img.dimensions(), (10, 5));
    assert!(close(rgb_at(&img, 5, 2), [255, 0, 0]));
    assert!(!remote.requests().is_empty(), "the origin fetched the remote");

    // unchanged remote: after the interval the origin revalidates (answered 304) and still serves red
    std::thread::sleep(Duration::from_millis(1500));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let img = image_of(&get(&mut s, &path), "external source, unchanged");
        assert!(close(rgb_at(&img, 5, 2), [255, 0, 0]), "unchanged remote, changed pixels");
        if remote.requests().iter().any(|r| r.status == 304) {
            break;
        }
        assert!(Instant::now() < deadline, "no conditional request answered 304: {:?}", remote.requests());
        std::thread::sleep(Duration::from_millis(250));
    }

    remote.set(solid_png(40, 20, [0, 0, 255]), "image/png");
    std::thread::sleep(Duration::from_millis(1500));
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let img = image_of(&get(&mut s, &path), "external source, changed");
        assert_eq!(img.dimensions(), (10, 5));
        if close(rgb_at(&img, 5, 2), [0, 0, 255]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the remote changed but the derivative did not; requests: {:?}",
            remote.requests()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let requests = remote.requests();
    assert!(
        requests.iter().skip(1).any(|r| r.if_none_match.as_deref() == Some(etag_v1.as_str())
            || r.if_modified_since.as_deref() == Some(modified_v1.as_str())),
        "no conditional request with the remote's validators: {requests:?}"
    );
    assert_still_serving(&mut s, "external sources");
}

/// The servers the harness starts do not inherit the test runner's `REFRACT_*` variables: this
/// runs `runner_environment_child` in a child test process whose environment has variables that
/// would stop any server that saw them.
#[test]
fn the_harness_does_not_pass_the_runners_refract_variables_on() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "runner_environment_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env("REFRACT_MAX_PIXELS", "0")
        .env("REFRACT_SECRET", "short")
        .env("REFRACT_HARDENING_CHILD", "1")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "run by the_harness_does_not_pass_the_runners_refract_variables_on, in a child process"]
fn runner_environment_child() {
    assert_eq!(std::env::var("REFRACT_HARDENING_CHILD").as_deref(), Ok("1"), "only meant as a child process");
    assert_eq!(std::env::var("REFRACT_MAX_PIXELS").as_deref(), Ok("0"));
    let mut s = TestServer::start();
    assert_still_serving(&mut s, "a runner with REFRACT_MAX_PIXELS=0 and REFRACT_SECRET=short");
}
