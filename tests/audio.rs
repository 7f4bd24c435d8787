//! Audio sources over HTTP: the `waveform` task on every readable file of the corpus, on
//! generated silence and sine, windows and formats; hostile and non-audio files answer 4xx.

mod common;

use common::{decode, TestServer};
use std::path::PathBuf;

fn audio_dir(kind: &str) -> PathBuf {
    common::fixture_path("audio").join(kind)
}

/// A 16-bit PCM WAV: `seconds` of `f(t)` (t in seconds) on every channel.
fn wav(seconds: f64, rate: u32, channels: u16, f: impl Fn(f64) -> f64) -> Vec<u8> {
    let spec =
        hound::WavSpec { channels, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
    for i in 0..(seconds * f64::from(rate)) as u64 {
        let v = (f(i as f64 / f64::from(rate)).clamp(-1.0, 1.0) * 32767.0) as i16;
        for _ in 0..channels {
            w.write_sample(v).unwrap();
        }
    }
    w.finalize().unwrap();
    out.into_inner()
}

fn sine(t: f64) -> f64 {
    (t * 440.0 * std::f64::consts::TAU).sin()
}

/// Corpus files symphonia 0.5 cannot read, and the clear 4xx they get instead of a 500. This
/// test fails when one becomes readable, so the list stays true.
fn known_unreadable(name: &str) -> Option<(u16, &'static str)> {
    match name {
        // symphonia has no Opus decoder
        n if n.ends_with(".opus") => Some((415, "codec is not supported")),
        // symphonia 0.5 refuses a FLAC cuesheet whose offsets are not CD-DA multiples of 588
        "silence-44-s.flac" => Some((422, "cuesheet")),
        _ => None,
    }
}

#[test]
fn every_readable_corpus_file_draws_a_waveform() {
    let s = TestServer::start();
    let mut drawn = 0;
    for entry in std::fs::read_dir(audio_dir("ok")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let h = s.upload(&std::fs::read(&path).unwrap(), &name);
        let r = s.get(&format!("/waveform=w:120,h:40/{h}"));
        if let Some((status, why)) = known_unreadable(&name) {
            assert_eq!(r.status(), status, "{name}");
            assert!(r.text().unwrap().contains(why), "{name}");
            continue;
        }
        assert_eq!(r.status(), 200, "{name}: {:?}", r.text());
        assert_eq!(r.headers()["content-type"], "image/png", "{name}");
        let img = decode(&r.bytes().unwrap());
        assert_eq!((img.width(), img.height()), (120, 40), "{name}");
        drawn += 1;
    }
    assert!(drawn >= 12, "{drawn} files drawn");
}

#[test]
fn silence_is_flat_and_a_full_scale_sine_fills_the_height() {
    let s = TestServer::start();
    let silence = s.upload(&wav(2.0, 44_100, 2, |_| 0.0), "silence.wav");
    let json: serde_json::Value = s.get(&format!("/waveform=w:50,f:json/{silence}")).json().unwrap();
    assert_eq!(json["width"], 50);
    assert!((json["duration"].as_f64().unwrap() - 2.0).abs() < 0.01, "{json}");
    for key in ["min", "max", "rms"] {
        assert!(json[key].as_array().unwrap().iter().all(|v| v.as_f64() == Some(0.0)), "{key}: {json}");
    }
    let tone = s.upload(&wav(2.0, 44_100, 1, sine), "sine.wav");
    let png = decode(&s.get(&format!("/waveform=w:64,h:32,c:FF0000,bg:FFFFFF/{tone}")).bytes().unwrap()).to_rgba8();
    for x in 0..64 {
        let red = |y| png.get_pixel(x, y).0 == [255, 0, 0, 255];
        assert!(red(0) && red(31), "column {x} does not span the height");
    }
    let flat = decode(&s.get(&format!("/waveform=w:64,h:32,c:FF0000,bg:FFFFFF/{silence}")).bytes().unwrap()).to_rgba8();
    let coloured_rows: std::collections::BTreeSet<u32> =
        flat.enumerate_pixels().filter(|(_, _, p)| p.0 == [255, 0, 0, 255]).map(|(_, y, _)| y).collect();
    assert_eq!(coloured_rows.len(), 1, "silence draws one line: {coloured_rows:?}");
}

/// Files of the hostile corpus that are, byte for byte, valid audio: refusing them would need a
/// rule that also refuses good files. Each says why.
fn readable_anyway(name: &str) -> Option<&'static str> {
    match name {
        "empty.ogg" => {
            Some("a complete 3.7 s Vorbis stream (ffprobe reads it too); its Vorbis comment is what is empty")
        }
        "too-short.mp3" => Some("one whole MP3 frame (26 ms) after its ID3 tag: short, but a valid frame"),
        _ => None,
    }
}

#[test]
fn windows_formats_and_refusals() {
    let s = TestServer::start();
    // one second of silence, then one of full-scale sine: each window sees only its half
    let half = s.upload(&wav(2.0, 8_000, 1, |t| if t < 1.0 { 0.0 } else { sine(t) }), "half.wav");
    let peaks = |q: &str| -> f64 {
        let json: serde_json::Value = s.get(&format!("/waveform={q},w:10,f:json/{half}")).json().unwrap();
        json["max"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).fold(0.0, f64::max)
    };
    assert_eq!(peaks("start:0,duration:0.99"), 0.0);
    assert!(peaks("start:1.01") > 0.99);
    let svg = s.get(&format!("/waveform=f:svg,s:mirror/{half}"));
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().unwrap().starts_with("<svg"));
    let r = s.get(&format!("/waveform=start:5/{half}"));
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("past the end"));
    assert_eq!(s.get(&format!("/waveform/resize=w:10/{half}")).status(), 400, "audio tasks run alone");
    // an image is not audio, and hostile audio is refused, never a 5xx
    let img = s.upload_fixture("hopper.png");
    assert!(s.get(&format!("/waveform/{img}")).status().is_client_error());
    for entry in std::fs::read_dir(audio_dir("hostile")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        if bytes.is_empty() {
            continue; // an empty upload is refused at the door (400)
        }
        let h = s.upload(&bytes, &name);
        if let Some(why) = readable_anyway(&name) {
            assert_eq!(s.get(&format!("/waveform=w:50/{h}")).status(), 200, "{name}: {why}");
            continue;
        }
        let r = s.get(&format!("/waveform=w:50/{h}"));
        let status = r.status().as_u16();
        let body = r.text().unwrap_or_default();
        assert!((400..500).contains(&status), "{name}: {status} {body}");
        assert!(body.starts_with("{\"error\""), "{name}: a JSON error naming the problem: {body}");
    }
}
