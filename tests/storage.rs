//! Storage conformance: the same store/file API, processing URLs, ranges and aborted uploads
//! against both backends — the local disk and a real S3-compatible server (moto, started on a
//! loopback port by `scripts/moto.sh`) — plus storage aliases of every kind.

mod common;

use common::{decode, fixture, RemoteImage, TestServer};
use std::io::{Read, Write};

fn bucket(name: &str) -> String {
    let resp = reqwest::blocking::Client::new()
        .put(format!("{}/{name}", common::moto_endpoint()))
        .send()
        .expect("create bucket");
    assert!(resp.status().is_success(), "create bucket {name}: {}", resp.status());
    name.to_string()
}

fn s3_table(bucket: &str, prefix: &str) -> String {
    format!(
        "kind = \"s3\"\nbucket = \"{bucket}\"\nprefix = \"{prefix}\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\n\
         access_key_id = \"test\"\nsecret_access_key = \"test\"\n",
        common::moto_endpoint()
    )
}

/// Object keys in a bucket (moto answers unsigned listings).
fn bucket_keys(bucket: &str) -> Vec<String> {
    let url = format!("{}/{bucket}?list-type=2", common::moto_endpoint());
    let xml = reqwest::blocking::get(url).unwrap().text().unwrap();
    xml.split("<Key>").skip(1).map(|s| s.split("</Key>").next().unwrap().to_string()).collect()
}

fn open_multipart_uploads(bucket: &str) -> usize {
    let xml = reqwest::blocking::get(format!("{}/{bucket}?uploads", common::moto_endpoint())).unwrap().text().unwrap();
    xml.matches("<UploadId>").count()
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Fs,
    S3,
}

/// A server on the given backend; the name of its bucket for S3.
fn server(kind: Kind, test: &str) -> (TestServer, Option<String>) {
    match kind {
        Kind::Fs => (TestServer::start(), None),
        Kind::S3 => {
            let b = bucket(&format!("refract-{test}").replace('_', "-"));
            let config = format!("[store]\n{}", s3_table(&b, "originals"));
            (TestServer::start_with_config(&config), Some(b))
        }
    }
}

/// Files the backend holds: bucket keys, or files under the data dir's originals.
fn stored_objects(s: &TestServer, bucket: &Option<String>) -> Vec<String> {
    match bucket {
        Some(b) => bucket_keys(b),
        None => {
            let mut found = Vec::new();
            let mut dirs = vec![s.data_dir.join("originals")];
            while let Some(d) = dirs.pop() {
                for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                    let hidden = e.file_name().to_string_lossy().starts_with('.');
                    if e.path().is_dir() && !hidden {
                        dirs.push(e.path());
                    } else if e.path().is_file() {
                        found.push(e.path().display().to_string());
                    }
                }
            }
            found
        }
    }
}

fn json(resp: reqwest::blocking::Response) -> serde_json::Value {
    resp.json().expect("a JSON body")
}

fn store_read_transform_overwrite_delete(kind: Kind) {
    let (s, bucket) = server(kind, &format!("crud-{kind:?}").to_lowercase());
    let original = fixture("hopper.jpg");
    let handle = s.upload(&original, "hopper.jpg");
    if let Some(b) = &bucket {
        assert!(bucket_keys(b).iter().any(|k| k.starts_with("originals/") && k.contains(&handle)), "in the bucket");
    }
    assert_eq!(s.get(&format!("/{handle}")).bytes().unwrap().as_ref(), original.as_slice(), "{kind:?}: original");
    let meta = json(s.get(&format!("/{handle}/metadata")));
    assert_eq!((meta["width"].as_u64(), meta["height"].as_u64()), (Some(128), Some(128)), "{kind:?}: {meta}");
    assert_eq!(meta["size"].as_u64(), Some(original.len() as u64));
    let small = decode(&s.get(&format!("/resize=w:32/output=f:png/{handle}")).bytes().unwrap());
    assert_eq!((small.width(), small.height()), (32, 32), "{kind:?}: transform");

    // overwrite: the file and its derivatives change
    let png = fixture("pil123rgba.png");
    let resp = s.client().post(s.url(&format!("/api/file/{handle}"))).body(png.clone()).send().unwrap();
    assert_eq!(resp.status(), 200, "{kind:?}: overwrite");
    assert_eq!(s.get(&format!("/{handle}")).bytes().unwrap().as_ref(), png.as_slice(), "{kind:?}: new bytes");
    let after = decode(&s.get(&format!("/resize=w:32/output=f:png/{handle}")).bytes().unwrap());
    assert_ne!(small.to_rgba8().into_raw(), after.to_rgba8().into_raw(), "{kind:?}: derivative of the new bytes");

    // the `store` task writes through the same backend
    let stored = json(s.get(&format!("/resize=w:16/store/{handle}")));
    let derived = stored["handle"].as_str().expect("store task handle").to_string();
    let stored_image = decode(&s.get(&format!("/{derived}")).bytes().unwrap());
    assert_eq!(stored_image.width(), 16, "{kind:?}: stored derivative");
    let q = "width=true&height=true&mimetype=true&sha512=true&sha224=true&md5=true";
    let meta = json(s.get(&format!("/api/file/{derived}/metadata?{q}")));
    assert_eq!(
        (meta["width"].as_u64(), meta["height"].as_u64()),
        (Some(16), Some(stored_image.height() as u64)),
        "{kind:?}: {meta}"
    );
    assert_eq!(meta["sha512"].as_str().map(str::len), Some(128), "{meta}");
    assert_eq!(meta["sha224"].as_str().map(str::len), Some(56), "{meta}");

    let resp = s.client().delete(s.url(&format!("/api/file/{handle}"))).send().unwrap();
    assert_eq!(resp.status(), 200, "{kind:?}: delete");
    let gone = s.get(&format!("/{handle}"));
    assert_eq!(gone.status(), 404, "{kind:?}: deleted");
    assert!(json(gone)["error"]["message"].as_str().unwrap().contains(&handle));
    if let Some(b) = &bucket {
        assert!(!bucket_keys(b).iter().any(|k| k.contains(&handle)), "{kind:?}: no object of a deleted file left");
    }
}

#[test]
fn fs_store_read_transform_overwrite_delete() {
    store_read_transform_overwrite_delete(Kind::Fs);
}

#[test]
fn s3_store_read_transform_overwrite_delete() {
    store_read_transform_overwrite_delete(Kind::S3);
}

/// Deterministic non-image bytes.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn ranges_of_a_multipart_sized_file(kind: Kind) {
    let (s, bucket) = server(kind, &format!("ranges-{kind:?}").to_lowercase());
    // over the 8 MiB part size: a multipart upload on S3
    let body = pattern(20 << 20);
    let handle = s.upload(&body, "blob.bin");
    let len = body.len();
    for (start, end) in [(0, 99), (len / 2, len / 2 + 1_000_000), (len - 1_000, len - 1)] {
        let resp = s.client().get(s.url(&format!("/{handle}"))).header("Range", format!("bytes={start}-{end}")).send();
        let resp = resp.unwrap();
        assert_eq!(resp.status(), 206, "{kind:?} {start}-{end}");
        let range = resp.headers()["content-range"].to_str().unwrap().to_string();
        assert_eq!(range, format!("bytes {start}-{end}/{len}"));
        assert_eq!(resp.bytes().unwrap().as_ref(), &body[start..=end], "{kind:?}: bytes of {start}-{end}");
    }
    let whole = s.get(&format!("/api/file/{handle}")).bytes().unwrap();
    assert!(whole.as_ref() == body.as_slice(), "{kind:?}: whole file");
    let head = s.client().head(s.url(&format!("/{handle}"))).send().unwrap();
    assert_eq!(head.headers()["content-length"].to_str().unwrap(), len.to_string());
    if let Some(b) = &bucket {
        assert_eq!(open_multipart_uploads(b), 0, "the multipart upload was completed");
    }
}

#[test]
fn fs_ranges_of_a_large_file() {
    ranges_of_a_multipart_sized_file(Kind::Fs);
}

#[test]
fn s3_ranges_of_a_large_file() {
    ranges_of_a_multipart_sized_file(Kind::S3);
}

/// Send headers announcing `announced` bytes, then `sent` bytes, then hang up.
fn cut_upload(s: &TestServer, announced: usize, sent: usize) {
    let addr = s.base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /api/store/S3?key=test&filename=cut.bin HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {announced}\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&pattern(sent)).unwrap();
    conn.flush().unwrap();
    drop(conn);
}

fn a_cut_upload_leaves_nothing(kind: Kind) {
    let (s, bucket) = server(kind, &format!("cut-{kind:?}").to_lowercase());
    let handle = s.upload(&fixture("hopper.jpg"), "keep.jpg");
    let before = stored_objects(&s, &bucket);
    cut_upload(&s, 30 << 20, 12 << 20);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(stored_objects(&s, &bucket), before, "{kind:?}: no object from the cut upload");
    if let Some(b) = &bucket {
        assert_eq!(open_multipart_uploads(b), 0, "no multipart upload left open");
    }
    let spool: Vec<_> = std::fs::read_dir(s.data_dir.join("spool")).unwrap().flatten().collect();
    assert!(spool.iter().all(|e| e.file_name().to_string_lossy().starts_with('.')), "{kind:?}: spool emptied");
    assert_eq!(s.get(&format!("/{handle}")).status(), 200, "{kind:?}: the other file is intact");
}

#[test]
fn fs_a_cut_upload_leaves_nothing() {
    a_cut_upload_leaves_nothing(Kind::Fs);
}

#[test]
fn s3_a_cut_upload_leaves_nothing() {
    a_cut_upload_leaves_nothing(Kind::S3);
}

/// Peak resident memory of a process (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

/// A body generated as it is sent: the test never holds it either.
struct Generated {
    left: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = (self.left as usize).wrapping_sub(i) as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn a_gigabyte_streams_through(kind: Kind) {
    let (s, _bucket) = server(kind, &format!("big-{kind:?}").to_lowercase());
    const SIZE: u64 = 1 << 30;
    let client = reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(600)).build().unwrap();
    let body = reqwest::blocking::Body::sized(Generated { left: SIZE }, SIZE);
    let resp = client.post(s.url("/api/store/S3?key=test&filename=big.bin")).body(body).send().unwrap();
    assert_eq!(resp.status(), 200, "{kind:?}: {:?}", resp.text());
    let handle = json(resp)["handle"].as_str().unwrap().to_string();
    let after_upload = peak_rss_mib(s.pid());
    // the start, the middle and the last MiB: byte p of the body is (SIZE - p) as u8
    for start in [0, SIZE / 2 + 12_345, SIZE - (1 << 20)] {
        let end = start + (1 << 20) - 1;
        let range = format!("bytes={start}-{end}");
        let part = s.client().get(s.url(&format!("/{handle}"))).header("Range", range).send().unwrap();
        assert_eq!(part.status(), 206);
        let bytes = part.bytes().unwrap();
        let expected: Vec<u8> = (start..=end).map(|p| (SIZE - p) as u8).collect();
        assert!(bytes.as_ref() == expected.as_slice(), "{kind:?}: the MiB at {start}");
    }
    let after_range = peak_rss_mib(s.pid());
    eprintln!(
        "storage: {kind:?} 1 GiB upload: peak RSS {after_upload} MiB; after a 1 MiB ranged read {after_range} MiB"
    );
    assert!(after_range < 400, "{kind:?}: peak RSS {after_range} MiB while streaming 1 GiB");
}

#[test]
fn fs_a_gigabyte_streams_through_in_bounded_memory() {
    a_gigabyte_streams_through(Kind::Fs);
}

#[test]
fn s3_a_gigabyte_streams_through_in_bounded_memory() {
    a_gigabyte_streams_through(Kind::S3);
}

#[test]
fn aliases_of_every_kind_serve_transforms_and_see_changes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pics")).unwrap();
    std::fs::write(dir.path().join("pics/a.png"), fixture("hopper.png")).unwrap();
    let b = bucket("refract-alias");
    // objects are written as another application would: a signed PUT (Refract's own S3 backend)
    let s3: refract::config::S3Config = toml::from_str(&s3_table(&b, "photos").replace("kind = \"s3\"\n", "")).unwrap();
    let writer = refract::store::s3::S3Backend::new(&s3).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let put = |bytes: Vec<u8>| {
        use refract::store::Backend;
        runtime.block_on(writer.put("a.png", bytes.into())).expect("put into the bucket");
    };
    put(fixture("hopper.png"));
    let remote = RemoteImage::start(fixture("hopper.png"), "image/png");
    let config = format!(
        "[aliases.disk]\nkind = \"fs\"\nroot = {:?}\n\n[aliases.bucket]\n{}\n[aliases.web]\nkind = \"http\"\n\
         base_url = \"{}\"\ntrusted = true\n",
        dir.path().join("pics"),
        s3_table(&b, "photos"),
        remote.url("/img")
    );
    let s = TestServer::start_with_config(&config);
    for alias in ["disk", "bucket", "web"] {
        let resp = s.get(&format!("/resize=w:20/output=f:png/src://{alias}/a.png"));
        assert_eq!(resp.status(), 200, "{alias}: {:?}", resp.text());
        assert_eq!(decode(&resp.bytes().unwrap()).width(), 20, "{alias}");
    }
    // as a watermark and as a fallback file
    let base = s.upload(&fixture("hopper.jpg"), "base.jpg");
    let plain = decode(&s.get(&format!("/resize=w:64/output=f:png/{base}")).bytes().unwrap());
    for alias in ["disk", "bucket", "web"] {
        let marked = s.get(&format!("/resize=w:64/watermark=file:\"src://{alias}/a.png\",size:50/output=f:png/{base}"));
        assert_eq!(marked.status(), 200, "{alias} watermark: {:?}", marked.text());
        let marked = decode(&marked.bytes().unwrap());
        assert_eq!(marked.width(), 64);
        assert_ne!(marked.to_rgba8().into_raw(), plain.to_rgba8().into_raw(), "{alias}: the watermark shows");
        let fell = s.get(&format!("/fallback=handle:\"src://{alias}/a.png\"/resize=w:20/AAAAAAAAAAAAAAAAAAAA"));
        assert_eq!(fell.status(), 200, "{alias} fallback");
        assert_eq!(decode(&fell.bytes().unwrap()).width(), 128, "{alias}: the fallback file as it is");
    }
    // (the test's web server answers every path, so only the object stores can lack one)
    for alias in ["disk", "bucket"] {
        let missing = s.get(&format!("/resize=w:20/src://{alias}/nope.png"));
        assert_eq!(missing.status(), 404, "{alias}: a missing object");
        assert!(json(missing)["error"]["message"].as_str().unwrap().contains("nope.png"));
    }
    // a changed object in the bucket: the next derivative reflects it
    let before = s.get("/resize=w:20/output=f:png/src://bucket/a.png").bytes().unwrap();
    put(fixture("pil123rgba.png"));
    let after = s.get("/resize=w:20/output=f:png/src://bucket/a.png").bytes().unwrap();
    assert_ne!(before, after, "the derivative follows the bucket's object");
    assert_eq!(s.get("/src://bucket/a.png").bytes().unwrap().as_ref(), fixture("pil123rgba.png").as_slice());
    // originals of object aliases are ranged reads
    for alias in ["disk", "bucket"] {
        let r = s.client().get(s.url(&format!("/src://{alias}/a.png"))).header("Range", "bytes=1-3").send().unwrap();
        assert_eq!(r.status(), 206, "{alias}");
        assert_eq!(r.bytes().unwrap().as_ref(), b"PNG", "{alias}");
    }
    // a path out of the alias is refused
    assert!(s.get("/src://disk/..%2F..%2Fetc%2Fpasswd").status().is_client_error());
}

#[test]
fn an_unreachable_bucket_is_a_json_502() {
    // a port nothing listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "[store]\nkind = \"s3\"\nbucket = \"b\"\nregion = \"us-east-1\"\nendpoint = \"http://127.0.0.1:{port}\"\n\
         access_key_id = \"test\"\nsecret_access_key = \"test\"\ntimeout_secs = 2\n"
    );
    let s = TestServer::start_with_config(&config);
    let resp = s.get("/AAAAAAAAAAAAAAAAAAAA");
    assert_eq!(resp.status(), 502);
    let body = json(resp);
    assert_eq!(body["error"]["message"], "the s3 storage is unavailable", "{body}");
}

#[test]
fn orphaned_data_objects_are_swept_after_their_grace() {
    let (mut s, _) = server(Kind::Fs, "orphans");
    let handle = s.upload(&fixture("hopper.jpg"), "live.jpg");
    let dir = s.data_dir.join("originals").join(&handle[..2]).join(&handle);
    // what a crash between the data write and the metadata write leaves: an hour old, and new
    let (old, new) = (dir.join(format!("{:064x}.bin", 1)), dir.join(format!("{:064x}.bin", 2)));
    for p in [&old, &new] {
        std::fs::write(p, b"orphan").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options().append(true).open(&old).unwrap().set_modified(two_hours_ago).unwrap();
    s.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while old.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!old.exists(), "an orphan past its grace is removed at start");
    assert!(new.exists(), "a young one may be an upload in flight");
    assert_eq!(s.get(&format!("/{handle}")).bytes().unwrap().as_ref(), fixture("hopper.jpg").as_slice());
}
