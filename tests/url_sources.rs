//! External URL sources (`/TASKS/http://host/path`): the host allow- and deny-lists
//! (`source_allow_hosts`, `source_deny_hosts`) on top of the SSRF guard, redirects checked at every
//! hop, upstream failures and limits mapped to statuses with JSON bodies, declared types that do
//! not decide, validators and revalidation, the on-disk source cache (`source_cache_bytes`) across
//! restarts, and one download for many concurrent derivatives.
//!
//! Every test runs its own scripted HTTP/1.1 server on a loopback port (`Remote`), reached through
//! `source_allow_hosts = ["127.0.0.1/32"]` — never through `allow_private_networks`.

mod common;

use common::{decode, fixture, TestServer};
use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// The allow-list entry through which every test reaches its `Remote`.
const LOCAL: &str = "127.0.0.1/32";

// ---------------------------------------------------------------------------------------------
// A scripted remote: per-path answers, delays, trickled and chunked bodies, and a request log
// ---------------------------------------------------------------------------------------------

/// How the length of a body is told.
#[derive(Debug, Clone, Copy)]
enum Length {
    /// `Content-Length` of the body sent.
    Actual,
    /// `Transfer-Encoding: chunked`, no length.
    Chunked,
}

/// What the remote answers at one path.
#[derive(Debug, Clone)]
struct Route {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    length: Length,
    /// Wait this long before sending anything.
    head_delay: Duration,
    /// Send the body in pieces of this many bytes, pausing between them.
    trickle: Option<(usize, Duration)>,
}

impl Route {
    fn status(status: u16) -> Route {
        Route {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            length: Length::Actual,
            head_delay: Duration::ZERO,
            trickle: None,
        }
    }

    /// A 200 with a body and its declared `Content-Type`.
    fn ok(body: Vec<u8>, content_type: &str) -> Route {
        Route::status(200).header("Content-Type", content_type).body(body)
    }

    fn redirect(location: &str) -> Route {
        Route::status(302).header("Location", location)
    }

    fn header(mut self, name: &str, value: &str) -> Route {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn body(mut self, body: Vec<u8>) -> Route {
        self.body = body;
        self
    }

    fn chunked(mut self) -> Route {
        self.length = Length::Chunked;
        self
    }

    fn delay(mut self, d: Duration) -> Route {
        self.head_delay = d;
        self
    }

    fn trickle(mut self, piece: usize, pause: Duration) -> Route {
        self.trickle = Some((piece, pause));
        self
    }

    fn header_value(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One request the remote received, and how it was answered.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    /// Names lower-cased.
    headers: Vec<(String, String)>,
    status: u16,
    /// Body bytes the answer carries (0 for a 304).
    body_len: usize,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn conditional(&self) -> bool {
        self.header("if-none-match").is_some() || self.header("if-modified-since").is_some()
    }
}

/// A tiny threaded HTTP/1.1 server on a loopback port: one thread per connection, every answer
/// `Connection: close`. Paths without a route answer 404. A 200 route with an `ETag` (or only a
/// `Last-Modified`) answers a matching conditional request with 304 and no body.
struct Remote {
    port: u16,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    log: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Remote {
    fn start() -> Remote {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the remote");
        let port = listener.local_addr().unwrap().port();
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, l, st) = (routes.clone(), log.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = conn {
                    let (r, l) = (r.clone(), l.clone());
                    std::thread::spawn(move || serve(stream, &r, &l));
                }
            }
        });
        Remote { port, routes, log, stop }
    }

    fn route(&self, path: &str, route: Route) {
        self.routes.lock().unwrap().insert(path.to_string(), route);
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Requests for `path`, in order.
    fn seen(&self, path: &str) -> Vec<Seen> {
        self.log.lock().unwrap().iter().filter(|s| s.path == path).cloned().collect()
    }

    fn all_seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// GETs of `path` answered with the whole body.
    fn full_gets(&self, path: &str) -> usize {
        self.seen(path).iter().filter(|s| s.method == "GET" && s.status == 200).count()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept loop up
        TcpStream::connect(("127.0.0.1", self.port)).ok();
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Whatever",
    }
}

fn serve(stream: TcpStream, routes: &Mutex<HashMap<String, Route>>, log: &Mutex<Vec<Seen>>) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut reader = BufReader::new(stream.try_clone().expect("clone the connection"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return; // the accept loop's wake-up, or a probe
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let route = routes.lock().unwrap().get(&path).cloned().unwrap_or_else(|| Route::status(404));
    let find = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let not_modified = route.status == 200
        && match (find("if-none-match"), route.header_value("etag"), find("if-modified-since")) {
            (Some(inm), Some(etag), _) => inm.split(',').any(|t| t.trim().trim_start_matches("W/") == etag),
            (Some(_), None, _) => false,
            (None, _, Some(ims)) => route.header_value("last-modified") == Some(ims.as_str()),
            (None, _, None) => false,
        };
    let status = if not_modified { 304 } else { route.status };
    let with_body = !not_modified && method != "HEAD";
    let body_len = if with_body { route.body.len() } else { 0 };
    // logged before answering, so the log is complete by the time the origin has the answer
    log.lock().unwrap().push(Seen { method, path, headers: headers.clone(), status, body_len });

    std::thread::sleep(route.head_delay);
    let mut out = stream;
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in &route.headers {
        let validator = k.eq_ignore_ascii_case("etag") || k.eq_ignore_ascii_case("last-modified");
        if !not_modified || validator {
            head += &format!("{k}: {v}\r\n");
        }
    }
    if !not_modified {
        match route.length {
            Length::Actual => head += &format!("Content-Length: {}\r\n", route.body.len()),
            Length::Chunked => head += "Transfer-Encoding: chunked\r\n",
        }
    }
    head += "Connection: close\r\n\r\n";
    if out.write_all(head.as_bytes()).is_err() {
        return;
    }
    if with_body {
        let (piece, pause) = route.trickle.unwrap_or((16 * 1024, Duration::ZERO));
        let started = Instant::now();
        for (i, part) in route.body.chunks(piece.max(1)).enumerate() {
            if i > 0 && !pause.is_zero() {
                std::thread::sleep(pause);
            }
            let sent = match route.length {
                Length::Actual => out.write_all(part),
                Length::Chunked => out
                    .write_all(format!("{:x}\r\n", part.len()).as_bytes())
                    .and_then(|_| out.write_all(part))
                    .and_then(|_| out.write_all(b"\r\n")),
            };
            // the origin gave up (or a trickle has gone on long enough)
            if sent.and_then(|_| out.flush()).is_err() || started.elapsed() > Duration::from_secs(30) {
                return;
            }
        }
        if matches!(route.length, Length::Chunked) && out.write_all(b"0\r\n\r\n").is_err() {
            return;
        }
    }
    out.flush().ok();
    out.shutdown(Shutdown::Write).ok();
    // let the client read everything before the socket goes away
    let mut sink = [0u8; 1024];
    while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
}

// ---------------------------------------------------------------------------------------------
// Helpers: servers, answers, images
// ---------------------------------------------------------------------------------------------

/// A server that reaches the test's remote through the allow-list, with extra variables.
fn server(extra: &[(&str, &str)]) -> TestServer {
    let mut env = vec![("REFRACT_SOURCE_ALLOW_HOSTS", LOCAL)];
    env.extend_from_slice(extra);
    TestServer::start_with_env(&env)
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    elapsed: Duration,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap_or("").to_string())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body[..self.body.len().min(400)]).to_string()
    }

    /// The decoded image of a 200.
    fn image(&self, what: &str) -> DynamicImage {
        assert_eq!(self.status, 200, "{what}: {}", self.text());
        decode(&self.body)
    }

    /// The JSON error's message, after checking the body's shape against the status.
    fn error(&self, what: &str) -> String {
        let ct = self.header("content-type").unwrap_or_default();
        assert!(ct.starts_with("application/json"), "{what}: error answered {ct:?}: {}", self.text());
        let v: serde_json::Value =
            serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", self.text()));
        assert_eq!(v["error"]["status"].as_u64(), Some(self.status as u64), "{what}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_else(|| panic!("{what}: no error.message: {v}"));
        assert!(!message.is_empty(), "{what}: empty error.message");
        message.to_string()
    }

    /// Assert the status and that the JSON message contains every one of `names`.
    fn expect_error(&self, status: u16, names: &[&str], what: &str) {
        assert_eq!(self.status, status, "{what}: {}", self.text());
        let message = self.error(what);
        for name in names {
            assert!(
                message.to_ascii_lowercase().contains(&name.to_ascii_lowercase()),
                "{what}: the message should name {name:?}: {message}"
            );
        }
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn get_at(base: &str, path: &str) -> Answer {
    let started = Instant::now();
    let resp = client().get(format!("{base}{path}")).send().unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().map(|b| b.to_vec()).unwrap_or_default();
    Answer { status, headers, body, elapsed: started.elapsed() }
}

fn get(s: &TestServer, path: &str) -> Answer {
    get_at(&s.base, path)
}

/// A PNG derivative of `src` at width `w`.
fn resized(w: u32, src: &str) -> String {
    format!("/resize=w:{w}/output=f:png/{src}")
}

fn png(img: DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Png).unwrap();
    out
}

fn solid_png(w: u32, h: u32, px: [u8; 3]) -> Vec<u8> {
    png(DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb(px))))
}

/// An incompressible PNG (about 3·w·h bytes), different for each seed.
fn noise_png(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let img = RgbImage::from_fn(w, h, |_, _| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Rgb([x as u8, (x >> 8) as u8, (x >> 16) as u8])
    });
    png(DynamicImage::ImageRgb8(img))
}

fn rgb_at(img: &DynamicImage, x: u32, y: u32) -> [u8; 3] {
    let p = img.get_pixel(x, y).0;
    [p[0], p[1], p[2]]
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b.iter()).all(|(x, y)| (*x as i32 - *y as i32).abs() <= 16)
}

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];

// ---------------------------------------------------------------------------------------------
// Host lists
// ---------------------------------------------------------------------------------------------

/// Without configuration a loopback source is refused by the SSRF guard; an allow-listed CIDR lets
/// exactly that range through (past the private-address guard), and nothing outside it.
#[test]
fn an_allowed_cidr_opens_exactly_its_range() {
    let remote = Remote::start();
    remote.route("/a.png", Route::ok(fixture("hopper.png"), "image/png"));

    let closed = TestServer::start();
    let a = get(&closed, &resized(20, &remote.url("/a.png")));
    a.expect_error(403, &["refused"], "loopback with no allow-list");
    assert!(remote.all_seen().is_empty(), "a refused source was contacted: {:?}", remote.all_seen());
    drop(closed);

    let s = server(&[]);
    let img = get(&s, &resized(20, &remote.url("/a.png"))).image("allow-listed 127.0.0.1/32");
    assert_eq!(img.dimensions(), (20, 20));
    assert_eq!(remote.full_gets("/a.png"), 1);

    // outside the CIDR: another loopback address, a private one, IPv6 loopback — refused before
    // any connection, naming the list
    for src in [
        format!("http://127.0.0.2:{}/a.png", remote.port),
        "http://10.0.0.1/a.png".to_string(),
        format!("http://[::1]:{}/a.png", remote.port),
    ] {
        get(&s, &resized(20, &src)).expect_error(403, &["source_allow_hosts"], &src);
    }
    assert_eq!(remote.all_seen().len(), 1, "only the allowed request reached the remote");
}

/// An allow-list of names only admits those names: an address (even loopback) or another name
/// is refused with a 403 naming `source_allow_hosts`. Lists come from TOML arrays as well as from
/// comma-separated variables.
#[test]
fn an_allow_list_of_names_refuses_everything_else() {
    let remote = Remote::start();
    remote.route("/a.png", Route::ok(fixture("hopper.png"), "image/png"));
    let s = TestServer::start_with_config("source_allow_hosts = [\"images.example.com\", \"*.cdn.example.com\"]\n");
    for src in [
        remote.url("/a.png"),
        "http://example.org/a.png".to_string(),
        "http://cdn.example.com/a.png".to_string(), // `*.` is for subdomains, not the apex
        "http://images.example.com.evil.net/a.png".to_string(),
    ] {
        get(&s, &resized(20, &src)).expect_error(403, &["source_allow_hosts"], &src);
    }
    assert!(remote.all_seen().is_empty(), "{:?}", remote.all_seen());
    drop(s);

    // a comma-separated variable: a name and the CIDR
    let s = TestServer::start_with_env(&[("REFRACT_SOURCE_ALLOW_HOSTS", "images.example.com,127.0.0.1/32")]);
    let img = get(&s, &resized(24, &remote.url("/a.png"))).image("allowed by the second entry of the list");
    assert_eq!(img.width(), 24);
}

/// `source_deny_hosts` wins over everything, by name (before any DNS) or by address.
#[test]
fn the_deny_list_wins() {
    let remote = Remote::start();
    remote.route("/a.png", Route::ok(fixture("hopper.png"), "image/png"));
    let s = TestServer::start_with_config(
        "source_allow_hosts = [\"127.0.0.0/8\", \"*.example.com\"]\n\
         source_deny_hosts = [\"127.0.0.1/32\", \"blocked.example.com\"]\n",
    );
    let src = remote.url("/a.png");
    get(&s, &resized(20, &src)).expect_error(403, &["source_deny_hosts"], "denied CIDR inside an allowed one");
    get(&s, &resized(20, "http://blocked.example.com/a.png")).expect_error(
        403,
        &["source_deny_hosts"],
        "denied name matching an allowed pattern",
    );
    // and as a plain delivery, not only a transform
    get(&s, &format!("/{src}")).expect_error(403, &["source_deny_hosts"], "denied, delivered as-is");
    assert!(remote.all_seen().is_empty(), "a denied source was contacted: {:?}", remote.all_seen());
    drop(s);

    // a deny-list alone keeps the SSRF guard and refuses its own entries
    let s = TestServer::start_with_env(&[("REFRACT_SOURCE_DENY_HOSTS", "blocked.example.com")]);
    get(&s, &resized(20, "http://blocked.example.com/a.png")).expect_error(403, &["source_deny_hosts"], "deny only");
    get(&s, &resized(20, &src)).expect_error(403, &["refused"], "deny only: loopback still guarded");
    assert!(remote.all_seen().is_empty(), "{:?}", remote.all_seen());
}

// ---------------------------------------------------------------------------------------------
// Redirects
// ---------------------------------------------------------------------------------------------

/// A remote whose paths redirect: `/hop/N` is N redirects away from `/a.png` (absolute
/// locations), `/loop` redirects to itself, and a few lead where a source may not go.
fn redirecting_remote() -> Remote {
    let remote = Remote::start();
    remote.route("/a.png", Route::ok(fixture("hopper.png"), "image/png"));
    for n in 1..=8 {
        let next = if n == 1 { "/a.png".to_string() } else { format!("/hop/{}", n - 1) };
        remote.route(&format!("/hop/{n}"), Route::redirect(&remote.url(&next)));
    }
    remote.route("/relative", Route::redirect("/a.png"));
    remote.route("/loop", Route::redirect("/loop"));
    remote.route("/ftp", Route::redirect("ftp://x/y"));
    remote.route("/file", Route::redirect("file:///etc/passwd"));
    remote.route("/v6", Route::redirect(&format!("http://[::1]:{}/a.png", remote.port)));
    remote.route("/private", Route::redirect("http://10.0.0.1/a.png"));
    remote
}

/// Redirects are followed, relative or absolute, up to 5 of them.
#[test]
fn up_to_five_redirects_are_followed() {
    let remote = redirecting_remote();
    let s = server(&[]);
    let img = get(&s, &resized(20, &remote.url("/relative"))).image("one relative redirect");
    assert_eq!(img.width(), 20);
    let img = get(&s, &resized(21, &remote.url("/hop/4"))).image("4 redirects");
    assert_eq!(img.width(), 21);
    let img = get(&s, &resized(22, &remote.url("/hop/5"))).image("exactly 5 redirects");
    assert_eq!(img.width(), 22);
}

/// More than 5 redirects (a long chain, a loop) is a 502 whose message says why.
#[test]
fn more_than_five_redirects_is_a_502() {
    let remote = redirecting_remote();
    let s = server(&[]);
    get(&s, &resized(20, &remote.url("/hop/6"))).expect_error(502, &["redirect"], "6 redirects");
    get(&s, &resized(20, &remote.url("/loop"))).expect_error(502, &["redirect"], "a redirect loop");
    assert!(remote.seen("/loop").len() <= 6, "the loop was followed too far: {}", remote.seen("/loop").len());
}

/// A redirect to a scheme other than http(s) is a 400 naming the scheme.
#[test]
fn redirects_to_other_schemes_are_400() {
    let remote = redirecting_remote();
    let s = server(&[]);
    get(&s, &resized(20, &remote.url("/ftp"))).expect_error(400, &["ftp"], "redirect to ftp://");
    get(&s, &resized(20, &remote.url("/file"))).expect_error(400, &["file"], "redirect to file://");
    get(&s, &format!("/{}", remote.url("/ftp"))).expect_error(400, &["ftp"], "redirect to ftp://, as-is");
}

/// Every hop passes the host policy: a redirect from the allowed host to an address outside the
/// allow-list (IPv6 loopback, a private address) is a 403, and nothing is contacted there.
#[test]
fn redirects_out_of_the_allow_list_are_403() {
    let remote = redirecting_remote();
    let s = server(&[]);
    get(&s, &resized(20, &remote.url("/v6"))).expect_error(403, &["refused"], "redirect to [::1]");
    get(&s, &resized(20, &remote.url("/private"))).expect_error(403, &["refused"], "redirect to 10.0.0.1");
    get(&s, &format!("/{}", remote.url("/private"))).expect_error(403, &["refused"], "redirect to 10.0.0.1, as-is");
    let paths: Vec<String> = remote.all_seen().iter().map(|r| r.path.clone()).collect();
    assert!(paths.iter().all(|p| p == "/v6" || p == "/private"), "{paths:?}");
}

// ---------------------------------------------------------------------------------------------
// Upstream failures and limits
// ---------------------------------------------------------------------------------------------

/// A remote 404 is a 404; a remote 5xx and a refused connection are 502s; each with a JSON body
/// whose message names the source.
#[test]
fn upstream_failures_map_to_statuses() {
    let remote = Remote::start();
    remote.route("/gone.png", Route::status(404).header("Content-Type", "text/plain").body(b"nope".to_vec()));
    remote.route("/broken.png", Route::status(500).header("Content-Type", "text/plain").body(b"oops".to_vec()));
    // a port nothing listens on (inside the allowed CIDR)
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = server(&[]);

    let url = remote.url("/gone.png");
    get(&s, &resized(20, &url)).expect_error(404, &[url.as_str()], "remote 404");
    get(&s, &format!("/{url}")).expect_error(404, &[url.as_str()], "remote 404, as-is");
    let url = remote.url("/broken.png");
    get(&s, &resized(20, &url)).expect_error(502, &[url.as_str(), "500"], "remote 500");
    let url = format!("http://127.0.0.1:{dead}/a.png");
    let a = get(&s, &resized(20, &url));
    a.expect_error(502, &[url.as_str()], "connection refused");
    assert_eq!(a.header("cache-control").as_deref(), Some("no-store"), "a 5xx is not cached by an edge");
}

/// `max_source_bytes` stops a download when `Content-Length` says it is too large, and while a
/// chunked body without a length grows past it: 413, naming the limit.
#[test]
fn sources_over_max_source_bytes_are_413() {
    let remote = Remote::start();
    let big = noise_png(256, 256, 1); // ~197 KB
    assert!(big.len() > 150_000, "{}", big.len());
    remote.route("/declared.png", Route::ok(big.clone(), "image/png"));
    remote.route("/chunked.png", Route::ok(big, "image/png").chunked());
    remote.route("/small.png", Route::ok(fixture("hopper.png"), "image/png"));
    remote.route("/small-chunked.png", Route::ok(fixture("hopper.png"), "image/png").chunked());
    let s = server(&[("REFRACT_MAX_SOURCE_BYTES", "100000")]);

    for path in ["/declared.png", "/chunked.png"] {
        let url = remote.url(path);
        get(&s, &resized(20, &url)).expect_error(413, &["100000"], path);
        get(&s, &format!("/{url}")).expect_error(413, &["100000"], &format!("{path} as-is"));
    }
    // under the limit, with a length or chunked
    for path in ["/small.png", "/small-chunked.png"] {
        assert_eq!(get(&s, &resized(20, &remote.url(path))).image(path).width(), 20);
    }
    let a = get(&s, &format!("/{}", remote.url("/small-chunked.png")));
    assert_eq!(a.status, 200);
    assert_eq!(a.body, fixture("hopper.png"), "delivered as-is, byte for byte");
}

/// A remote that sends its headers and then trickles the body, or never answers at all, is cut at
/// `fetch_timeout_secs`: a 5xx (504) well before the remote would have finished.
#[test]
fn slow_remotes_are_cut_at_fetch_timeout_secs() {
    let remote = Remote::start();
    // 200 KB at 100 bytes per 200 ms would take over 6 minutes
    remote
        .route("/trickle.png", Route::ok(noise_png(256, 256, 2), "image/png").trickle(100, Duration::from_millis(200)));
    remote.route("/silent.png", Route::ok(fixture("hopper.png"), "image/png").delay(Duration::from_secs(12)));
    let mut s = server(&[("REFRACT_FETCH_TIMEOUT_SECS", "2")]);

    for path in ["/trickle.png", "/silent.png"] {
        let a = get(&s, &resized(20, &remote.url(path)));
        assert!(a.status == 504 || a.status == 502, "{path}: {} {}", a.status, a.text());
        assert!(a.elapsed < Duration::from_secs(10), "{path}: answered after {:?}", a.elapsed);
        assert!(a.elapsed >= Duration::from_millis(1500), "{path}: cut before the timeout? {:?}", a.elapsed);
        let message = a.error(path);
        if a.status == 504 {
            assert!(message.contains("timed out"), "{path}: {message}");
        }
        assert_eq!(remote.seen(path).len(), 1, "{path}");
    }
    assert!(s.alive());
    assert_eq!(get(&s, "/healthz").status, 200);
}

// ---------------------------------------------------------------------------------------------
// Declared types
// ---------------------------------------------------------------------------------------------

/// The bytes decide, not the remote's `Content-Type`: a PNG declared `text/html` transforms (and
/// is delivered as the PNG it is); an HTML page cannot be transformed (415) and is delivered only
/// as an attachment, with `nosniff`.
#[test]
fn the_bytes_decide_not_the_declared_type() {
    let page = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>".to_vec();
    let remote = Remote::start();
    remote.route("/liar.png", Route::ok(fixture("hopper.png"), "text/html; charset=utf-8"));
    remote.route("/page.html", Route::ok(page.clone(), "text/html"));
    remote.route("/page.png", Route::ok(page.clone(), "image/png"));
    let s = server(&[]);

    let img = get(&s, &resized(20, &remote.url("/liar.png"))).image("PNG bytes declared text/html");
    assert_eq!(img.dimensions(), (20, 20));
    let a = get(&s, &format!("/{}", remote.url("/liar.png")));
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type").as_deref(), Some("image/png"), "the sniffed type is served");
    assert_eq!(a.body, fixture("hopper.png"));

    for path in ["/page.html", "/page.png"] {
        let url = remote.url(path);
        let a = get(&s, &resized(20, &url));
        assert_eq!(a.status, 415, "{path}: an HTML page is not an image: {}", a.text());
        a.error(path);

        let a = get(&s, &format!("/{url}"));
        assert_eq!(a.status, 200, "{path} as-is: {}", a.text());
        let disposition = a.header("content-disposition").unwrap_or_default();
        assert!(disposition.starts_with("attachment"), "{path}: HTML must not be inline: {disposition:?}");
        assert_eq!(a.header("x-content-type-options").as_deref(), Some("nosniff"), "{path}");
        assert!(!a.header("content-type").unwrap_or_default().starts_with("image/"), "{path}: not an image type");
        assert_eq!(a.body, page, "{path}: delivered as-is");
    }
}

// ---------------------------------------------------------------------------------------------
// Validators, revalidation, the disk cache
// ---------------------------------------------------------------------------------------------

/// Within `source_revalidate_secs` a fetched source is used without asking the remote again, for
/// any derivative of it and for plain delivery.
#[test]
fn a_fresh_source_is_not_fetched_again() {
    let remote = Remote::start();
    remote.route("/a.png", Route::ok(fixture("hopper.png"), "image/png").header("ETag", "\"hopper-1\""));
    let s = server(&[]);
    let src = remote.url("/a.png");
    for w in [20, 21, 20, 33] {
        assert_eq!(get(&s, &resized(w, &src)).image(&format!("w:{w}")).width(), w);
    }
    let a = get(&s, &format!("/{src}"));
    assert_eq!(a.status, 200);
    assert_eq!(a.body, fixture("hopper.png"));
    let seen = remote.seen("/a.png");
    assert_eq!(seen.len(), 1, "one download for every use within the interval: {seen:?}");
    assert!(!seen[0].conditional(), "the first request has nothing to revalidate: {seen:?}");
}

/// After `source_revalidate_secs` the origin asks again with the remote's validators
/// (If-None-Match from an ETag, If-Modified-Since from a Last-Modified): a 304 keeps the bytes it
/// has; a changed remote (new ETag) gives a derivative of the new image.
#[test]
fn stale_sources_are_revalidated_and_changes_followed() {
    let remote = Remote::start();
    let date = common::http_date(1_600_000_000);
    remote.route("/etag.png", Route::ok(solid_png(40, 20, RED), "image/png").header("ETag", "\"v1\""));
    remote.route("/dated.png", Route::ok(solid_png(40, 20, GREEN), "image/png").header("Last-Modified", &date));
    let s = server(&[("REFRACT_SOURCE_REVALIDATE_SECS", "1")]);
    let (etag_src, dated_src) = (remote.url("/etag.png"), remote.url("/dated.png"));

    let img = get(&s, &resized(10, &etag_src)).image("etag v1");
    assert_eq!(img.dimensions(), (10, 5));
    assert!(close(rgb_at(&img, 5, 2), RED));
    let img = get(&s, &resized(10, &dated_src)).image("dated");
    assert!(close(rgb_at(&img, 5, 2), GREEN));

    std::thread::sleep(Duration::from_millis(1500));
    let img = get(&s, &resized(10, &etag_src)).image("etag v1, revalidated");
    assert_eq!(img.dimensions(), (10, 5));
    assert!(close(rgb_at(&img, 5, 2), RED));
    // a derivative not made before needs the bytes: the ones kept, not a new download
    let img = get(&s, &resized(8, &dated_src)).image("dated, revalidated");
    assert_eq!(img.dimensions(), (8, 4));
    assert!(close(rgb_at(&img, 4, 2), GREEN));

    let seen = remote.seen("/etag.png");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].header("if-none-match"), Some("\"v1\""), "revalidated with the ETag: {seen:?}");
    assert_eq!((seen[1].status, seen[1].body_len), (304, 0), "answered 304 with no body");
    let seen = remote.seen("/dated.png");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].header("if-modified-since"), Some(date.as_str()), "revalidated with the date: {seen:?}");
    assert_eq!(seen[1].status, 304);
    assert_eq!(remote.full_gets("/etag.png") + remote.full_gets("/dated.png"), 2, "no body downloaded twice");

    // the remote changes: another image, another shape, another ETag
    remote.route("/etag.png", Route::ok(solid_png(20, 40, BLUE), "image/png").header("ETag", "\"v2\""));
    std::thread::sleep(Duration::from_millis(1500));
    let img = get(&s, &resized(10, &etag_src)).image("etag v2");
    assert_eq!(img.dimensions(), (10, 20), "the derivative follows the new image");
    assert!(close(rgb_at(&img, 5, 10), BLUE));
    let seen = remote.seen("/etag.png");
    let last = seen.last().unwrap();
    assert_eq!(last.header("if-none-match"), Some("\"v1\""), "{seen:?}");
    assert_eq!(last.status, 200, "{seen:?}");
    let a = get(&s, &format!("/{etag_src}"));
    assert_eq!(decode(&a.body).dimensions(), (20, 40), "delivered as-is: the new bytes");
}

/// Fetched sources are kept on disk with their validators: after a restart the first request
/// revalidates (a conditional GET answered 304) instead of downloading the body again, and the
/// kept bytes make a derivative that was never made before.
#[test]
fn the_source_cache_survives_a_restart() {
    let remote = Remote::start();
    remote.route("/a.png", Route::ok(fixture("hopper.png"), "image/png").header("ETag", "\"hopper-1\""));
    let mut s = server(&[]);
    let src = remote.url("/a.png");
    assert_eq!(get(&s, &resized(16, &src)).image("before the restart").width(), 16);
    assert_eq!(remote.seen("/a.png").len(), 1);

    // (a moment for a write that might finish after the answer: a restart is a SIGKILL)
    std::thread::sleep(Duration::from_millis(300));
    s.restart();
    let img = get(&s, &resized(24, &src)).image("after the restart");
    assert_eq!(img.dimensions(), (24, 24));
    let seen = remote.seen("/a.png");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].header("if-none-match"), Some("\"hopper-1\""), "revalidated, not downloaded: {seen:?}");
    assert_eq!((seen[1].status, seen[1].body_len), (304, 0));
    assert_eq!(remote.full_gets("/a.png"), 1, "the body was downloaded once across the restart");
    // fresh again after the 304
    assert_eq!(get(&s, &resized(32, &src)).image("after the restart, again").width(), 32);
    assert_eq!(remote.seen("/a.png").len(), 2);
}

/// `source_cache_bytes` bounds the disk cache, least recently used first: after four ~200 KB
/// sources under a 500 KB budget and a restart, the newest is still kept (revalidated with 304)
/// and the oldest was evicted (downloaded again, unconditionally).
#[test]
fn source_cache_bytes_bounds_the_disk_cache() {
    let remote = Remote::start();
    for i in 0..4u64 {
        let body = noise_png(256, 256, 10 + i);
        remote.route(&format!("/n{i}.png"), Route::ok(body, "image/png").header("ETag", &format!("\"n{i}\"")));
    }
    let mut s = server(&[("REFRACT_SOURCE_CACHE_BYTES", "500000")]);
    for i in 0..4 {
        let path = format!("/n{i}.png");
        assert_eq!(get(&s, &resized(16, &remote.url(&path))).image(&path).width(), 16);
        // distinct last-use times
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    s.restart();
    let newest = get(&s, &resized(20, &remote.url("/n3.png")));
    assert_eq!(newest.image("newest after restart").width(), 20);
    let seen = remote.seen("/n3.png");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!((seen[1].header("if-none-match"), seen[1].status), (Some("\"n3\""), 304), "kept: {seen:?}");

    let oldest = get(&s, &resized(20, &remote.url("/n0.png")));
    assert_eq!(oldest.image("oldest after restart").width(), 20);
    let seen = remote.seen("/n0.png");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].status, 200, "evicted, so downloaded again: {seen:?}");
    assert!(!seen[1].conditional(), "no validators for bytes it no longer has: {seen:?}");
}

// ---------------------------------------------------------------------------------------------
// Coalescing
// ---------------------------------------------------------------------------------------------

/// Eight concurrent derivatives (different widths) of one uncached URL: one download.
#[test]
fn concurrent_derivatives_share_one_download() {
    let remote = Remote::start();
    // slow enough that every request arrives while the first download is in flight
    remote.route(
        "/a.png",
        Route::ok(fixture("hopper.png"), "image/png").header("ETag", "\"c1\"").delay(Duration::from_millis(600)),
    );
    let s = server(&[]);
    let (base, src) = (s.base.clone(), remote.url("/a.png"));
    let barrier = Arc::new(Barrier::new(8));
    let widths: Vec<u32> = (10..18).collect();
    let answers: Vec<(u32, Answer)> = std::thread::scope(|scope| {
        let handles: Vec<_> = widths
            .iter()
            .map(|&w| {
                let (base, src, barrier) = (base.clone(), src.clone(), barrier.clone());
                scope.spawn(move || {
                    barrier.wait();
                    (w, get_at(&base, &resized(w, &src)))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (w, a) in &answers {
        assert_eq!(a.image(&format!("w:{w}")).dimensions(), (*w, *w));
    }
    let seen = remote.seen("/a.png");
    assert_eq!(remote.full_gets("/a.png"), 1, "concurrent derivatives must share one download: {seen:?}");
    assert_eq!(seen.len(), 1, "{seen:?}");
}
