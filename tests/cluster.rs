//! Many nodes: three `refract serve` processes on loopback ports, each with its own data dir,
//! sharing one S3 store of originals and one S3 second-level derivative cache (a real moto
//! server, started by `scripts/moto.sh`), told about each other (`[cluster] peers`), with
//! Debian's nginx in front (`hash $request_uri consistent`, failover on errors, timeouts, 502 and
//! 503: the settings of `deploy/nginx.conf`). Each test builds its own cluster (its own buckets,
//! nodes and nginx); the tests of this file run one at a time, since they measure load and kill
//! processes on a small machine.
//!
//! - a derivative asked for many times, through nginx and at every node, is computed once in
//!   the whole cluster; the nodes that did not compute it find it in the shared tier;
//! - SIGKILL of a node under load: nginx fails over, no client sees an error beyond the
//!   requests that node held, and a node restarted on an empty data dir serves what the others
//!   computed without a transform;
//! - DELETE and overwrite through one node reach every other node before the answer;
//! - SIGTERM lets the requests in flight finish, refuses new connections and exits 0.
//! - `/readyz` answers 503 while a node's store is unreachable, and `refract healthcheck`
//!   exits 0 only when `/healthz` answers 200.
//!
//! Needs `nginx` (`scripts/test.sh` installs the Debian package; the test runs its own nginx as
//! the current user, in a temporary prefix): without it the test fails.

mod common;

use common::{decode, fixture};
use reqwest::blocking::{Client, Response};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const TOKEN: &str = "cluster-test-token-0123456789";
/// How long a node trusts what it knows of a file: long, so that only the broadcast of a DELETE
/// or an overwrite (not the expiry) can make the other nodes see it at once.
const META_TTL_MS: u64 = 60_000;
const SHUTDOWN_TIMEOUT_SECS: u64 = 15;

/// The tests of this file, one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// moto (`common::moto_endpoint`): one S3-compatible server for this test binary, each cluster
// with its own buckets

/// Create a bucket (moto takes an unsigned PUT).
fn bucket(name: &str) -> String {
    let resp = Client::new().put(format!("{}/{name}", common::moto_endpoint())).send().expect("create bucket");
    assert!(resp.status().is_success(), "create bucket {name}: {}", resp.status());
    name.to_string()
}

/// The S3 fields of `[store]` and `[shared_cache]`.
fn s3_fields(bucket: &str, prefix: &str) -> String {
    format!(
        "bucket = \"{bucket}\"\nprefix = \"{prefix}\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\n\
         access_key_id = \"test\"\nsecret_access_key = \"test\"\n",
        common::moto_endpoint()
    )
}

// ---------------------------------------------------------------------------------------------
// processes

/// A loopback port nobody listens on (bound, then released: the nodes need to know each other's
/// ports before any of them starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Stop `pid` (SIGTERM, then SIGKILL) when this test binary ends, however it ends: a watcher
/// shell, as `scripts/moto.sh` has.
fn stop_with_test_binary(pid: u32) {
    let me = std::process::id();
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "while kill -0 {me} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             kill {pid} 2>/dev/null; sleep 2; kill -9 {pid} 2>/dev/null; true"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok();
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().map(|s| s.success());
    assert!(matches!(ok, Ok(true)), "kill -{sig} {pid}");
}

/// Wait (at most `timeout`) for a child to exit.
fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(60)).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// One `refract serve` on a fixed loopback port, with a configuration file and a data dir of its
/// own. Killed on drop.
struct Node {
    child: Option<Child>,
    port: u16,
    config: PathBuf,
    data_dir: tempfile::TempDir,
}

impl Node {
    fn start(port: u16, config: PathBuf) -> Node {
        let mut node = Node { child: None, port, config, data_dir: tempfile::tempdir().unwrap() };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_refract"));
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{}", self.port), "--data-dir"])
            .arg(self.data_dir.path())
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, _) in std::env::vars_os().filter(|(k, _)| k.to_string_lossy().starts_with("REFRACT_")) {
            cmd.env_remove(k);
        }
        let mut child = cmd.spawn().expect("spawn refract");
        stop_with_test_binary(child.id());
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                let status = child.wait().ok();
                panic!(
                    "refract on port {} exited before listening ({status:?}); config:\n{}",
                    self.port,
                    std::fs::read_to_string(&self.config).unwrap_or_default()
                );
            }
            if line.trim().starts_with("refract listening on ") {
                break;
            }
        }
        // keep draining stdout so that the node never blocks on a full pipe
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        self.child = Some(child);
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running node").id()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGKILL, like a crash.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Start again on the same port, on an empty data dir: what it serves without transforming
    /// comes from the shared tier.
    fn restart_fresh(&mut self) {
        self.kill();
        self.data_dir = tempfile::tempdir().unwrap();
        self.spawn();
    }

    /// Wait (at most 10 s) for `/readyz` to answer 200 with a JSON body.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let resp = self.get("/readyz");
            let status = resp.status();
            let body = resp.text().unwrap_or_default();
            if status == 200 {
                let json: Result<serde_json::Value, _> = serde_json::from_str(&body);
                assert!(json.is_ok(), "/readyz at {}: not JSON: {body}", self.base());
                return;
            }
            assert!(Instant::now() < deadline, "/readyz at {} answers {status}: {body}", self.base());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    fn get(&self, path: &str) -> Response {
        client().get(self.url(path)).send().unwrap_or_else(|e| panic!("GET {path} at {}: {e}", self.base()))
    }

    /// Sum of a Prometheus counter over the label sets containing `filter`.
    fn metric(&self, name: &str, filter: &str) -> f64 {
        metric(&self.get("/metrics").text().unwrap(), name, filter)
    }

    /// Transforms this node ran (successfully).
    fn transforms(&self) -> f64 {
        self.metric("refract_transforms_total", "outcome=\"ok\"")
    }

    fn shared_hits(&self) -> f64 {
        self.metric("refract_cache_hits_total", "tier=\"shared\"")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sum of the samples of `name` whose labels contain `filter`, in a Prometheus text page.
fn metric(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b' ') | Some(b'{')))
        .filter(|l| l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>()
        + 0.0 // an empty sum is -0.0
}

/// Debian's nginx in front of the nodes, as the current user, in a temporary prefix (its own
/// temp paths, no access log, errors on stderr). Stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// The test's nginx configuration: `deploy/nginx.conf`'s proxying, with loopback upstreams and a
/// short `fail_timeout` (a restarted node is used again within the test).
const NGINX_TEMPLATE: &str = r#"
@USER@
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path @DIR@/client_body;
    proxy_temp_path @DIR@/proxy;
    fastcgi_temp_path @DIR@/fastcgi;
    uwsgi_temp_path @DIR@/uwsgi;
    scgi_temp_path @DIR@/scgi;

    upstream refract {
        hash $request_uri consistent;
@SERVERS@
        keepalive 16;
    }

    server {
        listen 127.0.0.1:@PORT@;
        client_max_body_size 64m;

        location / {
            proxy_pass http://refract;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 3;
            proxy_next_upstream_timeout 30s;
            proxy_connect_timeout 1s;
            proxy_send_timeout 30s;
            proxy_read_timeout 30s;
            proxy_request_buffering off;
        }
    }
}
"#;

/// Whether this process runs as root (nginx's workers then need `user root` to enter the
/// private temp dir).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

fn nginx_binary() -> String {
    let found = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"].iter().find(|p| Path::new(p).exists());
    match found {
        Some(p) => p.to_string(),
        None => {
            let which = Command::new("sh").arg("-c").arg("command -v nginx").output().ok();
            let path = which.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
            assert!(
                !path.is_empty(),
                "nginx is not installed: this test drives a real nginx in front of three Refract nodes. \
                 Install it with `apt-get install nginx` (scripts/test.sh does it)."
            );
            path
        }
    }
}

impl Nginx {
    fn start(upstreams: &[u16]) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let servers: String =
            upstreams.iter().map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n")).collect();
        let conf = NGINX_TEMPLATE
            .replace("@USER@", if is_root() { "user root;" } else { "" })
            .replace("@DIR@", &dir.path().display().to_string())
            .replace("@SERVERS@", servers.trim_end())
            .replace("@PORT@", &port.to_string());
        let file = dir.path().join("nginx.conf");
        std::fs::write(&file, conf).unwrap();
        let globals = format!("daemon off; pid {}; error_log stderr;", dir.path().join("nginx.pid").display());
        let mut child = Command::new(nginx_binary())
            .args(["-e", "stderr", "-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(&file)
            .args(["-g", &globals])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx");
        stop_with_test_binary(child.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("nginx exited ({status}) before listening on {port} (its errors are above)");
            }
            assert!(Instant::now() < deadline, "nginx did not listen on {port} within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx { child, port, _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers (a SIGKILLed master would leave them listening)
        Command::new("kill").arg(self.child.id().to_string()).status().ok();
        if wait_exit(&mut self.child, Duration::from_secs(5)).is_none() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

/// Three nodes sharing a store, a shared cache and a peer list, nginx in front.
struct Cluster {
    nodes: Vec<Node>,
    nginx: Nginx,
    /// The shared tier's bucket.
    derivatives: String,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Entries in the shared tier (objects under `d/`, listed from moto without a signature).
    fn shared_entries(&self) -> usize {
        let url = format!("{}/{}?list-type=2&prefix=derivatives/d/", common::moto_endpoint(), self.derivatives);
        let listing = Client::new().get(url).send().and_then(|r| r.text()).unwrap_or_default();
        listing.matches("<Key>").count()
    }

    /// Wait until the shared tier holds `n` entries: a node writes there off the response path.
    fn wait_shared(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.shared_entries() < n {
            assert!(std::time::Instant::now() < deadline, "the shared tier never got {n} entries");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn start(name: &str) -> Cluster {
        let originals = bucket(&format!("cluster-{name}-originals"));
        let derivatives = bucket(&format!("cluster-{name}-derivatives"));
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let peers: Vec<String> = ports.iter().map(|p| format!("\"http://127.0.0.1:{p}\"")).collect();
        let config = format!(
            "shutdown_timeout_secs = {SHUTDOWN_TIMEOUT_SECS}\n\n\
             [store]\nkind = \"s3\"\n{}\n\
             [shared_cache]\n{}\n\
             [cluster]\npeers = [{}]\ntoken = \"{TOKEN}\"\nmeta_ttl_ms = {META_TTL_MS}\nbroadcast_timeout_ms = 2000\n",
            s3_fields(&originals, "originals"),
            s3_fields(&derivatives, "derivatives"),
            peers.join(", ")
        );
        let dir = tempfile::tempdir().unwrap();
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let file = dir.path().join(format!("node{}.toml", i + 1));
                std::fs::write(&file, &config).unwrap();
                Node::start(*port, file)
            })
            .collect();
        let nginx = Nginx::start(&ports);
        let c = Cluster { nodes, nginx, derivatives, _dir: dir };
        for node in &c.nodes {
            node.wait_ready();
        }
        c
    }

    /// Transforms run by the whole cluster (the nodes running now).
    fn transforms(&mut self) -> f64 {
        let mut total = 0.0;
        for n in self.nodes.iter_mut() {
            if n.alive() {
                total += n.transforms();
            }
        }
        total
    }

    /// Upload through nginx; the new handle.
    fn upload(&self, bytes: &[u8], filename: &str) -> String {
        upload_at(&self.nginx.url(&format!("/api/store/S3?key=test&filename={filename}")), bytes)
    }
}

fn upload_at(url: &str, bytes: &[u8]) -> String {
    let resp = client().post(url).body(bytes.to_vec()).send().expect("upload");
    assert_eq!(resp.status(), 200, "upload at {url}: {:?}", resp.text());
    let json: serde_json::Value = resp.json().unwrap();
    json["handle"].as_str().expect("handle in the store answer").to_string()
}

/// A square PNG of one colour.
fn png(size: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(size, size, image::Rgb(rgb));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// GET expecting a 200 image; the decoded image.
fn image_at(url: &str) -> image::DynamicImage {
    let resp = client().get(url).send().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status(), 200, "GET {url}");
    decode(&resp.bytes().unwrap())
}

// ---------------------------------------------------------------------------------------------
// a. one transform for the whole cluster

#[test]
fn a_derivative_is_computed_once_across_the_cluster() {
    let _serial = serial();
    let mut c = Cluster::start("once");
    let handle = c.upload(&fixture("hopper.jpg"), "hopper.jpg");
    let path = format!("/resize=width:200/output=format:png/{handle}");
    let before: Vec<f64> = c.nodes.iter().map(Node::transforms).collect();
    let total_before = c.transforms();

    let mut bodies = Vec::new();
    for i in 0..30 {
        let resp = client().get(c.nginx.url(&path)).send().expect("GET through nginx");
        assert_eq!(resp.status(), 200, "request {i} through nginx");
        bodies.push(resp.bytes().unwrap().to_vec());
        if i == 0 {
            c.wait_shared(1);
        }
    }
    for node in &c.nodes {
        for i in 0..3 {
            let resp = node.get(&path);
            assert_eq!(resp.status(), 200, "direct request {i} at {}", node.base());
            bodies.push(resp.bytes().unwrap().to_vec());
        }
    }
    let img = decode(&bodies[0]);
    assert_eq!(img.width(), 200, "the derivative");
    assert!(bodies.iter().all(|b| *b == bodies[0]), "every answer has the same bytes");

    let after: Vec<f64> = c.nodes.iter().map(Node::transforms).collect();
    let shared: Vec<f64> = c.nodes.iter().map(Node::shared_hits).collect();
    eprintln!("cluster: transforms per node {before:?} -> {after:?}; shared-tier hits {shared:?}");
    assert_eq!(
        c.transforms() - total_before,
        1.0,
        "one transform for 39 requests over 3 nodes: {before:?} -> {after:?}"
    );
    let owner = (0..3).find(|&i| after[i] > before[i]).unwrap();
    for i in (0..3).filter(|&i| i != owner) {
        assert!(
            shared[i] >= 1.0,
            "node {} did not compute it (node {} did): it must have found it in the shared tier; \
             shared-tier hits per node {shared:?}",
            i + 1,
            owner + 1
        );
    }
}

// ---------------------------------------------------------------------------------------------
// b, c. SIGKILL under load: nginx fails over; a node restarted empty uses the shared tier

/// One request of the load: when it started and ended, and its status (or the transport error).
struct Sent {
    start: Instant,
    end: Instant,
    outcome: Result<u16, String>,
}

#[test]
fn b_c_a_killed_node_fails_over_and_a_restarted_one_uses_the_shared_tier() {
    let _serial = serial();
    let mut c = Cluster::start("kill");
    // a large photo: each cold transform takes a while, so that the load lasts
    let handle = c.upload(&fixture("fossa-4096x2304.jpg"), "fossa.jpg");
    let urls: Arc<Vec<String>> = Arc::new(
        (0..20).map(|i| c.nginx.url(&format!("/resize=width:{}/output=format:webp/{handle}", 300 + 20 * i))).collect(),
    );

    // the load: 4 clients, 50 requests each over the 20 URLs
    let done = Arc::new(AtomicUsize::new(0));
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::new(Mutex::new(Vec::new()));
    let load: Vec<_> = (0..4)
        .map(|t| {
            let (urls, done, sent) = (urls.clone(), done.clone(), sent.clone());
            std::thread::spawn(move || {
                let http = client();
                for i in 0..50 {
                    let url = &urls[(t * 7 + i * 3) % urls.len()];
                    let start = Instant::now();
                    let outcome = http.get(url).send().map_err(|e| e.to_string()).and_then(|r| {
                        let status = r.status().as_u16();
                        r.bytes().map(|_| status).map_err(|e| e.to_string())
                    });
                    sent.lock().unwrap().push(Sent { start, end: Instant::now(), outcome });
                    done.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();

    // early in the load, while the nodes still run cold transforms, kill the node that
    // transformed the most so far
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < 15 {
        assert!(Instant::now() < deadline, "the load did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    let counts: Vec<f64> = c.nodes.iter().map(Node::transforms).collect();
    let victim = (0..3).max_by(|&a, &b| counts[a].total_cmp(&counts[b])).unwrap();
    let kill_start = Instant::now();
    c.nodes[victim].kill();
    let kill_end = Instant::now();
    for t in load {
        t.join().unwrap();
    }

    let sent = sent.lock().unwrap();
    let in_flight = sent.iter().filter(|s| s.start < kill_end && s.end > kill_start).count();
    let failed: Vec<&Sent> = sent.iter().filter(|s| s.outcome != Ok(200)).collect();
    let failed_after = failed.iter().filter(|s| s.start > kill_end).count();
    eprintln!(
        "cluster: killed node {} (transforms so far {counts:?}) with {} requests done; {} requests \
         in flight at the kill; {} failed ({failed_after} of them started after it): {:?}",
        victim + 1,
        sent.iter().filter(|s| s.end <= kill_start).count(),
        in_flight,
        failed.len(),
        failed.iter().map(|s| &s.outcome).collect::<Vec<_>>()
    );
    assert_eq!(sent.len(), 200);
    assert!(counts[victim] > 0.0, "the killed node had served part of the load");
    assert_eq!(failed_after, 0, "after the kill nginx fails over: every request succeeds");
    for s in &failed {
        assert!(s.start < kill_end && s.end > kill_start, "a failure outside the kill: {:?}", s.outcome);
        if let Ok(status) = s.outcome {
            assert!(status >= 500, "only errors of the killed node's requests: {status}");
        }
    }
    assert!(failed.len() <= in_flight.min(8), "{} failures for {in_flight} requests in flight", failed.len());
    drop(sent);

    // c. a derivative computed by a surviving node
    let other = (0..3).find(|&i| i != victim).unwrap();
    let path = format!("/resize=width:250/output=format:png/{handle}");
    let computed = c.nodes[other].get(&path);
    assert_eq!(computed.status(), 200);
    let computed = computed.bytes().unwrap();
    c.wait_shared(urls.len() + 1);

    c.nodes[victim].restart_fresh();
    let restarted = &c.nodes[victim];
    assert_eq!(restarted.transforms(), 0.0);
    let resp = restarted.get(&path);
    assert_eq!(resp.status(), 200, "the restarted node serves it");
    assert_eq!(resp.bytes().unwrap(), computed, "the same bytes as the node that computed it");
    // and every derivative of the load
    for url in urls.iter() {
        let path = url.trim_start_matches(&c.nginx.url(""));
        assert_eq!(restarted.get(path).status(), 200, "{path} at the restarted node");
    }
    let (transforms, shared) = (restarted.transforms(), restarted.shared_hits());
    eprintln!("cluster: restarted node {}: {transforms} transforms, {shared} shared-tier hits", victim + 1);
    assert_eq!(transforms, 0.0, "a node with an empty data dir serves what others computed without a transform");
    assert!(shared >= 21.0, "from the shared tier: {shared} hits for 21 derivatives");

    // nginx sends the restarted node its share again once fail_timeout (2 s) has passed
    std::thread::sleep(Duration::from_millis(2500));
    let requests = |n: &Node| n.metric("refract_http_requests_total", "route=\"process\"");
    let before = requests(&c.nodes[victim]);
    for round in 0..2 {
        for url in urls.iter() {
            let resp = client().get(url).send().expect("GET through nginx");
            assert_eq!(resp.status(), 200, "round {round}: {url}");
        }
    }
    let after = requests(&c.nodes[victim]);
    assert!(after > before, "nginx uses the restarted node again ({before} -> {after} requests)");
}

// ---------------------------------------------------------------------------------------------
// d. DELETE through one node: gone at every node when it answers

#[test]
fn d_delete_through_one_node_is_seen_at_once_by_the_others() {
    let _serial = serial();
    let c = Cluster::start("delete");
    let handle = upload_at(&c.nodes[0].url("/api/store/S3?key=test&filename=hopper.jpg"), &fixture("hopper.jpg"));
    let derivative = format!("/resize=width:40/output=format:png/{handle}");
    let original = format!("/{handle}");
    // warm the other nodes: they know the file and hold the derivative
    for node in &c.nodes[1..] {
        for _ in 0..2 {
            assert_eq!(node.get(&derivative).status(), 200, "warm {derivative} at {}", node.base());
            assert_eq!(node.get(&original).status(), 200, "warm {original} at {}", node.base());
        }
    }
    let resp = client().delete(c.nodes[0].url(&format!("/api/file/{handle}"))).send().expect("DELETE");
    assert_eq!(resp.status(), 200, "DELETE through node 1: {:?}", resp.text());
    // no sleep: the other nodes were told before the DELETE answered
    for (i, node) in c.nodes.iter().enumerate().skip(1) {
        assert_eq!(node.get(&derivative).status(), 404, "node {}: the derivative of a deleted file", i + 1);
        assert_eq!(node.get(&original).status(), 404, "node {}: the deleted file", i + 1);
    }
    assert_eq!(c.nodes[0].get(&derivative).status(), 404, "node 1");
    let through = client().get(c.nginx.url(&derivative)).send().unwrap();
    assert_eq!(through.status(), 404, "through nginx");
}

// ---------------------------------------------------------------------------------------------
// e. overwrite through one node: the new bytes at every node when it answers

#[test]
fn e_overwrite_through_one_node_is_seen_at_once_by_the_others() {
    let _serial = serial();
    let c = Cluster::start("overwrite");
    let handle = upload_at(&c.nodes[0].url("/api/store/S3?key=test&filename=red.png"), &png(64, [255, 0, 0]));
    let derivative = format!("/resize=width:16/output=format:png/{handle}");
    let is_red = |p: image::Rgba<u8>| p[0] > 200 && p[1] < 50 && p[2] < 50;
    let is_blue = |p: image::Rgba<u8>| p[0] < 50 && p[1] < 50 && p[2] > 200;
    for (i, node) in c.nodes.iter().enumerate() {
        for _ in 0..2 {
            let img = image_at(&node.url(&derivative)).to_rgba8();
            assert_eq!(img.dimensions(), (16, 16), "node {}", i + 1);
            assert!(is_red(*img.get_pixel(8, 8)), "node {}: red before: {:?}", i + 1, img.get_pixel(8, 8));
        }
        assert_eq!(image_at(&node.url(&format!("/{handle}"))).width(), 64, "node {}: the original", i + 1);
    }

    let resp = client()
        .post(c.nodes[1].url(&format!("/api/file/{handle}")))
        .body(png(32, [0, 0, 255]))
        .send()
        .expect("overwrite");
    assert_eq!(resp.status(), 200, "overwrite through node 2: {:?}", resp.text());
    // no sleep: every node was told before the overwrite answered
    for (i, node) in c.nodes.iter().enumerate() {
        let img = image_at(&node.url(&derivative)).to_rgba8();
        assert_eq!(img.dimensions(), (16, 16), "node {}", i + 1);
        assert!(is_blue(*img.get_pixel(8, 8)), "node {}: blue after the overwrite: {:?}", i + 1, img.get_pixel(8, 8));
        let original = image_at(&node.url(&format!("/{handle}")));
        assert_eq!((original.width(), original.height()), (32, 32), "node {}: the new original", i + 1);
    }
    let img = image_at(&c.nginx.url(&derivative)).to_rgba8();
    assert!(is_blue(*img.get_pixel(8, 8)), "through nginx: {:?}", img.get_pixel(8, 8));
}

// ---------------------------------------------------------------------------------------------
// f. SIGTERM: the requests in flight finish, new connections are refused, exit 0

#[test]
fn f_sigterm_finishes_the_requests_in_flight() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("refract.toml");
    std::fs::write(&config, format!("shutdown_timeout_secs = {SHUTDOWN_TIMEOUT_SECS}\n")).unwrap();
    let mut node = Node::start(free_port(), config);
    let handle = upload_at(&node.url("/api/store/S3?key=test&filename=fossa.jpg"), &fixture("fossa-4096x2304.jpg"));
    let metrics = |node: &Node| {
        let text = node.get("/metrics").text().unwrap();
        metric(&text, "refract_transform_queue_depth", "") + metric(&text, "refract_transforms_total", "")
    };
    let base_count = metrics(&node);

    // eight cold transforms of a 4096×2304 photo at once: each takes a while on a small machine
    let started = Instant::now();
    let requests: Vec<_> = (0..8u32)
        .map(|i| {
            let width = 1800 + 10 * i;
            let url = node.url(&format!("/resize=width:{width}/output=format:png/{handle}"));
            std::thread::spawn(move || {
                let resp = client().get(&url).send().map_err(|e| format!("{url}: {e}"))?;
                let status = resp.status().as_u16();
                let body = resp.bytes().map_err(|e| format!("{url}: body: {e}"))?;
                Ok::<_, String>((width, status, body.to_vec()))
            })
        })
        .collect();
    // SIGTERM once the eight are in the server's hands (queued, running or done), ~100 ms in
    let deadline = started + Duration::from_secs(3);
    while metrics(&node) - base_count < 8.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if let Some(rest) = Duration::from_millis(100).checked_sub(started.elapsed()) {
        std::thread::sleep(rest);
    }
    let in_server = metrics(&node) - base_count;
    let term = Instant::now();
    signal(node.pid(), "TERM");

    // new connections are refused while the eight finish
    std::thread::sleep(Duration::from_millis(200));
    let still_running = node.alive();
    let refused = std::net::TcpStream::connect_timeout(
        &format!("127.0.0.1:{}", node.port).parse().unwrap(),
        Duration::from_millis(500),
    )
    .is_err();

    let answers: Vec<_> = requests.into_iter().map(|t| t.join().unwrap()).collect();
    let status = wait_exit(node.child.as_mut().unwrap(), Duration::from_secs(SHUTDOWN_TIMEOUT_SECS + 5));
    eprintln!(
        "cluster: SIGTERM {:?} after the requests started ({in_server} of 8 in the server), exit {status:?} \
         {:?} after it; still running 200 ms after it: {still_running}",
        term - started,
        term.elapsed()
    );
    for answer in &answers {
        let (width, status, body) = answer.as_ref().unwrap_or_else(|e| panic!("a request in flight failed: {e}"));
        assert_eq!(*status, 200, "width {width}");
        assert_eq!(decode(body).width(), *width);
    }
    let status = status.unwrap_or_else(|| panic!("no exit within {SHUTDOWN_TIMEOUT_SECS} s + 5 s of SIGTERM"));
    node.child = None;
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(refused, "a connection after SIGTERM was accepted (still running: {still_running})");
}

// ---------------------------------------------------------------------------------------------
// g. liveness, readiness and `refract healthcheck`

#[test]
fn g_readyz_tells_an_unreachable_store_and_healthcheck_exits_by_healthz() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("refract.toml");
    // an S3 endpoint where nothing listens
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    std::fs::write(
        &config,
        format!(
            "[store]\nkind = \"s3\"\nbucket = \"b\"\nregion = \"us-east-1\"\nendpoint = \"{nowhere}\"\n\
             access_key_id = \"test\"\nsecret_access_key = \"test\"\ntimeout_secs = 2\n"
        ),
    )
    .unwrap();
    let node = Node::start(free_port(), config);
    assert_eq!(node.get("/healthz").status(), 200, "alive");
    let resp = node.get("/readyz");
    let status = resp.status();
    let body = resp.text().unwrap();
    assert_eq!(status, 503, "not ready without its store: {body}");
    assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok(), "a JSON body: {body}");

    let healthcheck = |url: &str| {
        Command::new(env!("CARGO_BIN_EXE_refract"))
            .args(["healthcheck", "--url", url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run refract healthcheck")
    };
    assert!(healthcheck(&node.url("/healthz")).success(), "healthcheck of a live node");
    let closed = format!("http://127.0.0.1:{}/healthz", free_port());
    assert!(!healthcheck(&closed).success(), "healthcheck of nothing");
}
