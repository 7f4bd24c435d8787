//! Audio costs on three minutes of real music (the corpus's Vorbis file, first 180 s, made into a
//! 192 kbit/s MP3 by Refract itself): decode per input codec, then MP3 → each output format,
//! trimming and resampling. Run with `cargo bench --bench audio`; criterion's times over 180 s
//! of audio give the × real time (180 / seconds).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use refract::pipeline::audio::decode;
use refract::pipeline::job::{AudioJob, Job};
use refract::pipeline::{render, Budget, Limits, Overlays, Resources};
use refract::plan::audio::{AudioFormat, Convert};
use std::path::PathBuf;

fn convert(bytes: &Bytes, format: AudioFormat, sample_rate: Option<u32>) -> Vec<u8> {
    let job = Job::Audio(AudioJob::Convert(Convert {
        task: "audio_convert",
        format,
        bitrate: None,
        sample_rate,
        channels: None,
        offset: 0.0,
        length: Some(180.0),
        title: None,
    }));
    render(bytes.clone(), &job, None, Limits::default(), &Overlays::new(), &Resources::default())
        .unwrap()
        .body
        .into_vec()
        .unwrap()
}

/// Three minutes of music as MP3 (192 kbit/s).
fn music_mp3() -> Bytes {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/audio/ok/music-vorbis.ogg");
    let ogg = Bytes::from(std::fs::read(path).unwrap());
    let job = Job::Audio(AudioJob::Convert(Convert {
        task: "audio_convert",
        format: AudioFormat::Mp3,
        bitrate: Some(192),
        sample_rate: None,
        channels: None,
        offset: 0.0,
        length: Some(180.0),
        title: None,
    }));
    let rendered = render(ogg, &job, None, Limits::default(), &Overlays::new(), &Resources::default()).unwrap();
    Bytes::from(rendered.body.into_vec().unwrap())
}

fn decode_all(bytes: &Bytes) -> u64 {
    let (mut d, _) = decode::open(bytes.clone()).unwrap();
    let budget = Budget::start(Limits::default());
    let mut frames = 0;
    while let Some(block) = d.next_block(&budget).unwrap() {
        frames += block.frames() as u64;
    }
    frames
}

fn bench_audio(c: &mut Criterion) {
    let mp3 = music_mp3();
    let mut g = c.benchmark_group("audio_180s");
    g.sample_size(10);
    let formats = [
        ("mp3", AudioFormat::Mp3),
        ("oga", AudioFormat::Vorbis),
        ("opus", AudioFormat::Opus),
        ("flac", AudioFormat::Flac),
        ("m4a", AudioFormat::M4a),
    ];
    let encoded: Vec<(&str, Bytes)> = formats.iter().map(|(n, f)| (*n, Bytes::from(convert(&mp3, *f, None)))).collect();
    for (name, bytes) in &encoded {
        g.bench_with_input(BenchmarkId::new("decode", name), bytes, |b, bytes| b.iter(|| decode_all(bytes)));
    }
    for (name, format) in formats.into_iter().chain([("wav", AudioFormat::Wav)]) {
        g.bench_with_input(BenchmarkId::new("mp3_to", name), &mp3, |b, mp3| b.iter(|| convert(mp3, format, None)));
    }
    g.bench_with_input(BenchmarkId::new("mp3_to_wav_resampled", "48000"), &mp3, |b, mp3| {
        b.iter(|| convert(mp3, AudioFormat::Wav, Some(48_000)))
    });
    g.finish();
}

criterion_group!(benches, bench_audio);
criterion_main!(benches);
