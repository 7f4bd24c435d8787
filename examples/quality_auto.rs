//! `quality=auto` on the corpus photos, for BENCHMARKS.md: each JPEG photo resized to 800 px wide
//! as fixed q80 JPEG, as `quality=auto` JPEG, and as `format=auto` at automatic quality for a
//! browser that accepts AVIF and WebP and for one that accepts WebP only; bytes and SSIMULACRA2
//! score of each against the lossless PNG of the same chain (the image before encoding), then the
//! totals. AVIF is scored through `avifdec` (Debian's libavif-bin) when it is installed.
//!   cargo run --release --example quality_auto [-- --curves] [PHOTO…]
//! `--curves` prints, per photo, bytes and score of JPEG, WebP and AVIF at qualities 30…95 (what
//! the default target, the search's seeds and the AVIF mapping were chosen from).

use image::RgbImage;
use refract::pipeline::{self, job::Job, quality::Auto, Format, Limits, Resources};
use std::path::{Path, PathBuf};

const PHOTOS: [&str; 6] = [
    "fossa-4096x2304.jpg",
    "kleiber-6028x3391.jpg",
    "painting-6000x4000-icc.jpg",
    "storm-1920x1280.jpg",
    "string-3640x2400-icc.jpg",
    "infinite-sea-4096x4096-progressive.jpg",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let curves = args.iter().any(|a| a == "--curves");
    let named: Vec<String> = args.iter().filter(|a| !a.starts_with("--")).cloned().collect();
    let photos: Vec<PathBuf> = match named.is_empty() {
        true => PHOTOS.iter().map(|p| corpus().join(p)).collect(),
        false => named.iter().map(PathBuf::from).collect(),
    };
    if curves {
        photos.iter().for_each(|p| print_curves(p));
    } else {
        table(&photos);
    }
}

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/images/photos")
}

/// One encode of a chain: its bytes, type, the quality `quality=auto` chose and its encodes.
struct Out {
    bytes: Vec<u8>,
    format: &'static str,
    quality: Option<u8>,
    encodes: usize,
    ms: f64,
}

fn render(source: &[u8], tasks: &str, accepted: &[Format]) -> Out {
    let url = refract::url::parse(&format!("/{tasks}/input"), None).expect("url");
    let plan = refract::plan::Plan::build(&url).expect("plan");
    let job = Job::compile(&plan).expect("job");
    let negotiated = accepted.first().copied();
    let resources = Resources { auto: Auto { accepted: accepted.to_vec(), ..Auto::default() }, ..Default::default() };
    let limits = Limits { timeout: std::time::Duration::from_secs(600), ..Limits::default() };
    let t = std::time::Instant::now();
    let out = pipeline::render(source.to_vec().into(), &job, negotiated, limits, &Default::default(), &resources)
        .expect("render");
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let chosen = out.quality;
    Out {
        format: out.extension,
        bytes: out.body.into_vec().expect("bytes"),
        quality: chosen.and_then(|c| c.quality),
        encodes: chosen.map_or(1, |c| c.encodes),
        ms,
    }
}

/// SSIMULACRA2 of `bytes` against `reference` (sRGB through the crate's own conversion, not
/// the pipeline's table); `None` when AVIF cannot be decoded here.
fn score(reference: &RgbImage, bytes: &[u8]) -> Option<f64> {
    let decoded = decode(bytes)?;
    let frame = |img: &RgbImage| {
        let data = img.pixels().map(|p| p.0.map(|c| c as f32 / 255.0)).collect();
        let (w, h) = (img.width() as usize, img.height() as usize);
        ssimulacra2::Rgb::new(data, w, h, ssimulacra2::TransferCharacteristic::SRGB, ssimulacra2::ColorPrimaries::BT709)
            .expect("frame")
    };
    Some(ssimulacra2::compute_frame_ssimulacra2(frame(reference), frame(&decoded)).expect("score"))
}

fn decode(bytes: &[u8]) -> Option<RgbImage> {
    if bytes.len() > 12 && &bytes[4..8] == b"ftyp" {
        return avifdec(bytes);
    }
    Some(image::load_from_memory(bytes).expect("decode").to_rgb8())
}

/// AVIF through `avifdec`, if installed.
fn avifdec(bytes: &[u8]) -> Option<RgbImage> {
    let dir = tempfile::tempdir().ok()?;
    let (input, output) = (dir.path().join("a.avif"), dir.path().join("a.png"));
    std::fs::write(&input, bytes).ok()?;
    let ok = std::process::Command::new("avifdec")
        .arg(&input)
        .arg(&output)
        .stdout(std::process::Stdio::null())
        .status()
        .ok()?
        .success();
    ok.then(|| image::open(&output).ok().map(|i| i.to_rgb8())).flatten()
}

const CHAIN: &str = "resize=width:800";

fn reference(source: &[u8]) -> RgbImage {
    let png = render(source, &format!("{CHAIN}/output=format:png"), &[]);
    image::load_from_memory(&png.bytes).expect("png").to_rgb8()
}

fn fmt_score(s: Option<f64>) -> String {
    s.map_or("n/a".into(), |s| format!("{s:.1}"))
}

fn table(photos: &[PathBuf]) {
    let chrome = [Format::Avif, Format::Webp];
    println!("| photo | q80 JPEG | score | auto JPEG (q) | score | format=auto, AVIF+WebP (q) | score | format=auto, WebP (q) | score |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut totals = [0usize; 4];
    let mut worst = [f64::MAX; 4];
    let mut times = [0f64; 4];
    for path in photos {
        let source = std::fs::read(path).expect("photo");
        let reference = reference(&source);
        let outs = [
            render(&source, &format!("{CHAIN}/output=format:jpg,quality:80"), &[]),
            render(&source, &format!("{CHAIN}/output=format:jpg/quality=value:auto"), &[]),
            render(&source, &format!("{CHAIN}/output=format:auto,quality:auto"), &chrome),
            render(&source, &format!("{CHAIN}/output=format:auto,quality:auto"), &[Format::Webp]),
        ];
        let mut row = vec![name(path)];
        for (i, out) in outs.iter().enumerate() {
            let s = score(&reference, &out.bytes);
            totals[i] += out.bytes.len();
            worst[i] = worst[i].min(s.unwrap_or(f64::MAX));
            times[i] += out.ms;
            let q = out.quality.map_or(String::new(), |q| format!(" ({} q{q}, {} encodes)", out.format, out.encodes));
            row.push(format!("{}{}", out.bytes.len(), if i == 0 { String::new() } else { q }));
            row.push(fmt_score(s));
        }
        println!("| {} |", row.join(" | "));
    }
    let pct = |n: usize| 100.0 * (1.0 - n as f64 / totals[0] as f64);
    println!(
        "| **total** | {} | min {:.1} | {} (−{:.1} %) | min {:.1} | {} (−{:.1} %) | min {} | {} (−{:.1} %) | min {:.1} |",
        totals[0],
        worst[0],
        totals[1],
        pct(totals[1]),
        worst[1],
        totals[2],
        pct(totals[2]),
        if worst[2] == f64::MAX { "n/a".into() } else { format!("{:.1}", worst[2]) },
        totals[3],
        pct(totals[3]),
        worst[3],
    );
    let n = photos.len().max(1) as f64;
    println!(
        "\nmean render time (decode + resize + encode(s), ms): q80 {:.0}, auto JPEG {:.0}, format=auto AVIF+WebP {:.0}, format=auto WebP {:.0}",
        times[0] / n,
        times[1] / n,
        times[2] / n,
        times[3] / n
    );
}

fn name(path: &Path) -> String {
    path.file_name().map_or("?".into(), |n| n.to_string_lossy().into_owned())
}

fn print_curves(path: &Path) {
    let source = std::fs::read(path).expect("photo");
    let reference = reference(&source);
    println!("{}\nq\tjpeg bytes\tscore\twebp bytes\tscore\tavif bytes\tscore", name(path));
    for q in (30..=95).step_by(5) {
        let mut row = vec![q.to_string()];
        for f in ["jpg", "webp", "avif"] {
            let out = render(&source, &format!("{CHAIN}/output=format:{f},quality:{q}"), &[]);
            row.push(out.bytes.len().to_string());
            row.push(fmt_score(score(&reference, &out.bytes)));
        }
        println!("{}", row.join("\t"));
    }
}
