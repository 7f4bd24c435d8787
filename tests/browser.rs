//! The `<picture>` endpoint in a real browser: Debian's Chromium, headless, loads a page holding
//! the `<picture>` that `GET /responsive/HANDLE?sizes=100vw` answers for a 4096 px photo, and the
//! page's script writes what the browser chose into the DOM (`--dump-dom`): `currentSrc`, the
//! `<img>`'s `naturalWidth` and the pixel width of `currentSrc` itself. At each viewport width ×
//! device pixel ratio the browser must take the entry the srcset implies (the smallest width at
//! least viewport × DPR, else the widest) in the best format it decodes: AVIF when it is offered,
//! WebP when it is not.
//!
//! The page is a file:// page (cross-origin to the server, which images do not mind). Headless
//! Chromium's window is never narrower than 500 CSS px, so the 400 px phone is an iframe of that
//! width: `100vw` in it is 400 px. Every browser run has its own profile (no cache is shared),
//! resolves no host name but loopback addresses, is bounded in time and killed (its whole process
//! group) when it overruns. Runs are serialized: one browser at a time on a 2-core machine.
//!
//! Chromium comes from scripts/test.sh (Debian's `chromium`). Without it the tests say so loudly
//! and do nothing; with it they never pass without checking.

mod common;

use common::{decode, TestServer};
use serde_json::Value;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest one browser run may take before it is killed.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);
/// One browser at a time (each is several processes; the machine has 2 cores).
static BROWSER: Mutex<()> = Mutex::new(());
/// What Chromium sends for images (the check of a chosen URL's type asks as the browser did).
const IMAGE_ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

/// The browser binary on PATH, or `None` (the caller skips, loudly).
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        // straight to the stderr handle: libtest captures `eprintln!` of a passing test
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !!! SKIPPED {test}: no `chromium` on PATH. scripts/test.sh installs Debian's\n\
             !!! package (apt-get install chromium); nothing was checked in a browser.\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
        );
    }
    found
}

/// Where the page is shown: the browser window's CSS width, its DPR, and (when the viewport to test
/// is narrower than a headless window can be) the width of the iframe that holds the picture.
#[derive(Debug, Clone, Copy)]
struct Viewport {
    window: u32,
    dpr: u32,
    frame: Option<u32>,
}

impl Viewport {
    /// The CSS width `100vw` stands for.
    fn css_width(self) -> u32 {
        self.frame.unwrap_or(self.window)
    }
}

/// What the page's script saw.
#[derive(Debug)]
struct Seen {
    current_src: String,
    /// `naturalWidth` of the `<img>`: density-corrected (HTML: a `w` descriptor's image has the
    /// density `N / slot width`), so it is the slot's CSS width, not `N`.
    natural_width: u64,
    /// `naturalWidth` of a plain `Image()` of `currentSrc` (density 1): the pixels decoded.
    pixel_width: u64,
    inner_width: u64,
    dpr: f64,
}

/// The script the page runs in the document that holds the picture: once the `<img>` has loaded,
/// it loads `currentSrc` again in a plain `Image()` (from the memory cache) to read its pixel
/// width, and writes it all as JSON into `#result` of the top document.
const REPORT: &str = r#"
(() => {
  const out = window.parent.document.getElementById('result');
  const say = (o) => { out.textContent = JSON.stringify(o); };
  const img = document.querySelector('picture img');
  const done = () => {
    const src = img.currentSrc;
    if (!img.naturalWidth) { say({error: 'the image did not decode', currentSrc: src}); return; }
    const probe = new Image();
    probe.onload = () => say({currentSrc: src, naturalWidth: img.naturalWidth, pixelWidth: probe.naturalWidth,
                              innerWidth: window.innerWidth, dpr: window.devicePixelRatio});
    probe.onerror = () => say({error: 'currentSrc did not load again', currentSrc: src});
    probe.src = src;
  };
  if (img.complete) { done(); } else {
    img.addEventListener('load', done);
    img.addEventListener('error', () => say({error: 'the image did not load', currentSrc: img.currentSrc}));
  }
})();
"#;

const STYLE: &str = "<style>html,body{margin:0}img{display:block;width:100%;height:auto}\
                     iframe{display:block;border:0}</style>";

/// The page: the picture and the script, in an iframe of `frame` CSS px when there is one.
fn page(picture: &str, viewport: Viewport) -> String {
    let inner = format!("{picture}\n<script>{REPORT}</script>");
    let body = match viewport.frame {
        None => inner,
        Some(width) => {
            let doc =
                format!("<!doctype html><html><head><meta charset=\"utf-8\">{STYLE}</head><body>{inner}</body></html>");
            let doc = doc.replace('&', "&amp;").replace('"', "&quot;");
            format!("<iframe style=\"width:{width}px;height:300px\" srcdoc=\"{doc}\"></iframe>")
        }
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">{STYLE}</head><body>\n\
         <pre id=\"result\">pending</pre>\n{body}\n</body></html>\n"
    )
}

/// Kill a process group (the browser and every process it started).
fn kill_group(pgid: u32) {
    Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok();
}

/// Run the browser on `page` and answer the DOM it dumped. Bounded by `BROWSER_TIMEOUT`: on
/// overrun the process group is killed and the test fails with the browser's stderr.
fn dump_dom(bin: &Path, page: &Path, viewport: Viewport, work: &Path) -> String {
    let _one_at_a_time = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let profile = tempfile::tempdir_in(work).expect("profile dir");
    let stderr_path = work.join(format!("chromium-{}x{}-{:?}.stderr", viewport.window, viewport.dpr, viewport.frame));
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless=new",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-breakpad",
        "--disable-domain-reliability",
        // nothing but loopback: no name resolves, so nothing leaves the machine
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=10000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("--window-size={},900", viewport.window))
    .arg(format!("--force-device-scale-factor={}", viewport.dpr))
    .arg("--dump-dom")
    .arg(format!("file://{}", page.display()))
    .env("HOME", work)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(stderr)
    .process_group(0);
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let pgid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).ok();
        tx.send(text).ok();
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break Some(status);
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // whatever the browser left running goes with it (a no-op when all has exited)
    kill_group(pgid);
    child.wait().ok();
    let dom = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    let log = || {
        let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.contains("dbus")).collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    match status {
        None => panic!("chromium ran past {BROWSER_TIMEOUT:?} at {viewport:?} and was killed; stderr:\n{}", log()),
        Some(s) if !s.success() => panic!("chromium failed ({s}) at {viewport:?}; stderr:\n{}", log()),
        Some(_) => {}
    }
    eprintln!("chromium at {viewport:?}: {:.1} s", started.elapsed().as_secs_f64());
    assert!(dom.contains("id=\"result\""), "chromium dumped no page at {viewport:?}: {dom:?}; stderr:\n{}", log());
    dom
}

/// The JSON the script wrote into `#result`.
fn seen(dom: &str, viewport: Viewport) -> Seen {
    let start = dom.find("<pre id=\"result\">").expect("#result in the dumped DOM") + "<pre id=\"result\">".len();
    let text = &dom[start..start + dom[start..].find("</pre>").expect("#result closed")];
    let text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    assert_ne!(text, "pending", "the image had not loaded when the DOM was dumped at {viewport:?}");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("#result is not JSON ({e}): {text}"));
    assert!(v.get("error").is_none(), "in the browser at {viewport:?}: {v}");
    Seen {
        current_src: v["currentSrc"].as_str().expect("currentSrc").to_string(),
        natural_width: v["naturalWidth"].as_u64().expect("naturalWidth"),
        pixel_width: v["pixelWidth"].as_u64().expect("pixelWidth"),
        inner_width: v["innerWidth"].as_u64().expect("innerWidth"),
        dpr: v["dpr"].as_f64().expect("dpr"),
    }
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

/// The entry a srcset implies for `device_px`: the smallest at least that wide, else the widest.
fn implied(srcset: &[(String, u32)], device_px: u32) -> (String, u32) {
    srcset.iter().find(|(_, w)| *w >= device_px).or(srcset.last()).cloned().expect("a non-empty srcset")
}

/// An AVIF's width, from its `ispe` property.
fn avif_width(bytes: &[u8]) -> u32 {
    assert_eq!(&bytes[4..12], b"ftypavif", "not an AVIF");
    let at = bytes.windows(4).position(|w| w == b"ispe").expect("an ispe box");
    u32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap())
}

/// The photo uploaded, and its `<picture>` for `query` (JSON: the srcsets and the HTML).
fn picture(s: &TestServer, handle: &str, query: &[(&str, &str)]) -> Value {
    let r = s.client().get(s.url(&format!("/responsive/{handle}"))).query(query).send().expect("GET /responsive");
    assert_eq!(r.status(), 200, "{:?}", r.text());
    r.json().unwrap()
}

/// Show the picture at each viewport and check the browser's choice: the entry of the srcset of
/// `want_mime`'s `<source>` that viewport × DPR implies (`expected`, the same width written out),
/// its pixels, and the type the server gives that URL.
fn check_choices(test: &str, query: &[(&str, &str)], want_mime: &str, cases: &[(Viewport, u32)]) {
    let Some(bin) = chromium_or_skip(test) else { return };
    let s = TestServer::start();
    let handle = s.upload_fixture("fossa-4096x2304.jpg");
    let picture = picture(&s, &handle, query);
    let source = picture["sources"].as_array().unwrap().iter().find(|source| source["type"] == want_mime);
    let source = source.unwrap_or_else(|| panic!("no <source type={want_mime}> in {picture}"));
    let srcset = entries(source["srcset"].as_str().unwrap());
    let format = want_mime.strip_prefix("image/").unwrap();
    let work = tempfile::tempdir().unwrap();
    for &(viewport, expected) in cases {
        let file = work.path().join(format!("page-{}-{}-{:?}.html", viewport.window, viewport.dpr, viewport.frame));
        std::fs::write(&file, page(picture["html"].as_str().unwrap(), viewport)).unwrap();
        let seen = seen(&dump_dom(&bin, &file, viewport, work.path()), viewport);
        eprintln!("{viewport:?}: {seen:?}");
        // the browser shows what was asked of it
        assert_eq!(seen.inner_width, u64::from(viewport.css_width()), "the viewport at {viewport:?}");
        assert_eq!(seen.dpr, f64::from(viewport.dpr), "the DPR at {viewport:?}");
        // the entry the srcset implies, in the best format: its URL, its width, its pixels
        let (url, width) = implied(&srcset, viewport.css_width() * viewport.dpr);
        assert_eq!(width, expected, "the srcset's entry for {viewport:?}");
        assert_eq!(seen.current_src, url, "the browser's choice at {viewport:?}");
        assert!(seen.current_src.contains(&format!("/resize=width:{width}/")), "{}", seen.current_src);
        assert!(seen.current_src.contains(&format!("/output=format:{format}/")), "{}", seen.current_src);
        assert_eq!(seen.pixel_width, u64::from(width), "the decoded width of {}", seen.current_src);
        // naturalWidth is density-corrected: N pixels at density N / slot width fill the slot
        let slot = u64::from(viewport.css_width());
        assert!(seen.natural_width.abs_diff(slot) <= 1, "naturalWidth {} at {viewport:?}", seen.natural_width);
        // what the server answers that URL, asked as the browser asks (the page cannot read the
        // header of a cross-origin image: the URL names its format, and the bytes are checked)
        let r = s.client().get(&seen.current_src).header("Accept", IMAGE_ACCEPT).send().unwrap();
        assert_eq!(r.status(), 200, "{}", seen.current_src);
        assert_eq!(r.headers()["content-type"], want_mime, "{}", seen.current_src);
        let bytes = r.bytes().unwrap();
        let decoded_width = match want_mime {
            "image/avif" => avif_width(&bytes),
            _ => decode(&bytes).width(),
        };
        assert_eq!(decoded_width, width, "{}", seen.current_src);
    }
}

#[test]
fn chromium_takes_the_avif_source_at_the_width_each_viewport_and_dpr_imply() {
    let viewport = |window, dpr, frame| Viewport { window, dpr, frame };
    check_choices(
        "chromium_takes_the_avif_source_at_the_width_each_viewport_and_dpr_imply",
        &[("sizes", "100vw")],
        "image/avif",
        &[
            (viewport(600, 1, Some(400)), 400), // a 400 px phone at DPR 1: the step itself
            (viewport(600, 2, Some(400)), 960), // the same at DPR 2: 800 device px
            (viewport(600, 1, None), 640),      // 600 px window
            (viewport(1400, 1, None), 1440),    // a desktop window
            (viewport(1400, 2, None), 3200),    // 2800 device px
            (viewport(2000, 2, None), 3840),    // 4000 device px: past the ladder, its last step
        ],
    );
}

#[test]
fn without_avif_chromium_takes_the_webp_source() {
    let viewport = |window, dpr| Viewport { window, dpr, frame: None };
    check_choices(
        "without_avif_chromium_takes_the_webp_source",
        &[("sizes", "100vw"), ("formats", "webp,jpg")],
        "image/webp",
        &[(viewport(600, 2), 1280), (viewport(1400, 1), 1440)],
    );
}
