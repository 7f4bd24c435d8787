//! Codec and pipeline costs on corpus photos: decode (full and shrink-on-load), resize, encode per
//! format, and the whole 20 MP → 800 px path. Run with `cargo bench --bench pipeline`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use refract::pipeline::decode::{decode, probe};
use refract::pipeline::job::{Align, Fit, ImageJob, Op, OutputSpec};
use refract::pipeline::{encode, ops, Budget, Format, Limits};
use std::path::PathBuf;

const LIMITS: Limits = Limits {
    max_pixels: 200_000_000,
    max_metadata_bytes: 16 << 20,
    max_upscale: 16.0,
    timeout: std::time::Duration::from_secs(600),
    audio_timeout: std::time::Duration::from_secs(600),
};

fn photo(name: &str) -> Option<Vec<u8>> {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/images/photos").join(name);
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    std::fs::read(shared).or_else(|_| std::fs::read(local)).ok()
}

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    ["kleiber-6028x3391.jpg", "painting-6000x4000-icc.jpg", "fossa-4096x2304.jpg", "storm-1920x1280.jpg"]
        .into_iter()
        .filter_map(|n| photo(n).map(|b| (n, b)))
        .collect()
}

fn output(format: Format) -> OutputSpec {
    OutputSpec {
        format: Some(format),
        negotiate: false,
        quality: Some(80),
        progressive: false,
        compress: false,
        background: None,
    }
}

fn resize_op(width: u32) -> Op {
    Op::Resize { width: Some(width), height: None, fit: Fit::Clip, align: Align::CENTER }
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.sample_size(10);
    for (name, bytes) in inputs() {
        let p = probe(&bytes, Format::Jpeg, &LIMITS).unwrap();
        g.bench_with_input(BenchmarkId::new("full", name), &bytes, |b, bytes| {
            b.iter(|| decode(bytes, &p, None, &LIMITS).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("shrink_to_800", name), &bytes, |b, bytes| {
            b.iter(|| decode(bytes, &p, Some((800, 450)), &LIMITS).unwrap())
        });
    }
    g.finish();
}

fn bench_resize_encode(c: &mut Criterion) {
    let Some(bytes) = photo("kleiber-6028x3391.jpg").or_else(|| photo("fossa-4096x2304.jpg")) else { return };
    let p = probe(&bytes, Format::Jpeg, &LIMITS).unwrap();
    let decoded = decode(&bytes, &p, Some((800, 450)), &LIMITS).unwrap();
    let mut g = c.benchmark_group("resize");
    g.sample_size(20);
    g.bench_function("lanczos3_to_800", |b| {
        b.iter(|| ops::apply(decoded.clone(), &resize_op(800), &Budget::start(LIMITS)).unwrap())
    });
    g.finish();
    let small = ops::apply(decoded, &resize_op(800), &Budget::start(LIMITS)).unwrap();
    let mut g = c.benchmark_group("encode_800");
    g.sample_size(10);
    for format in [Format::Jpeg, Format::Webp, Format::Png, Format::Avif, Format::Gif] {
        g.bench_function(format.extension(), |b| b.iter(|| encode::encode(&small, format, &output(format)).unwrap()));
    }
    g.finish();
}

fn bench_end_to_end(c: &mut Criterion) {
    let mut g = c.benchmark_group("end_to_end_800");
    g.sample_size(10);
    let limits = LIMITS;
    for (name, bytes) in inputs() {
        for format in [Format::Jpeg, Format::Webp] {
            let job = ImageJob {
                ops: vec![resize_op(800)],
                output: output(format),
                answer: refract::pipeline::job::Answer::Image,
                from_cover: false,
            };
            g.bench_with_input(BenchmarkId::new(format.extension(), name), &bytes, |b, bytes| {
                b.iter(|| refract::pipeline::run(bytes, &job, None, limits).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_decode, bench_resize_encode, bench_end_to_end);
criterion_main!(benches);
