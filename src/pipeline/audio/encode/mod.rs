//! Audio encoders: planar `f32` blocks in, one encoded file out, written to a [`Sink`] as it is
//! made (the sink moves to a file once it is large). Each encoder buffers only what its codec
//! needs (a FLAC block, a 20 ms Opus frame, LAME's and libvorbis's own windows), so memory
//! follows the block size, never the whole PCM nor the whole output.

#[cfg(feature = "aac")]
mod aac;
mod flac;
mod mp3;
mod opus;
mod vorbis;
mod wav;

use super::super::output::{Output, Sink};
use super::super::{PipelineError, Result};
use crate::plan::audio::AudioFormat;

/// What to encode: the stream's shape and the format's options.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeSpec {
    pub format: AudioFormat,
    /// Must be `supported_rate(format, …)`: the encoders do not resample.
    pub sample_rate: u32,
    /// `1..=max_channels(format)`
    pub channels: u16,
    /// 16 or 24, for the lossless formats (WAV, FLAC); ignored by the lossy ones.
    pub bits: u16,
    /// Lossy formats only; `None` takes `default_bitrate`. Clamped to what the codec can do.
    pub bitrate_kbps: Option<u32>,
    pub title: Option<String>,
}

/// An encoder fed block by block. `planes` holds one slice per channel, all of one length (0 is
/// allowed); samples are in [-1, 1] (outside values are clipped).
pub trait Encoder: Send {
    fn push(&mut self, planes: &[&[f32]]) -> Result<()>;
    /// Flushes the codec, completes the headers and hands out the whole encoded file.
    fn finish(self: Box<Self>) -> Result<Output>;
}

/// The encoder for `spec` writing to `sink`, its headers already written.
pub fn encoder(spec: &EncodeSpec, sink: Sink) -> Result<Box<dyn Encoder>> {
    check_spec(spec)?;
    Ok(match spec.format {
        AudioFormat::Wav => Box::new(wav::WavEncoder::new(spec, sink)?),
        AudioFormat::Flac => Box::new(flac::FlacEncoder::new(spec, sink)?),
        AudioFormat::Mp3 => Box::new(mp3::Mp3Encoder::new(spec, sink)?),
        AudioFormat::Vorbis => Box::new(vorbis::VorbisEncoder::new(spec, sink)?),
        AudioFormat::Opus => Box::new(opus::OpusEncoder::new(spec, sink)?),
        AudioFormat::M4a => m4a_encoder(spec, sink)?,
    })
}

#[cfg(feature = "aac")]
fn m4a_encoder(spec: &EncodeSpec, sink: Sink) -> Result<Box<dyn Encoder>> {
    Ok(Box::new(aac::AacEncoder::new(spec, sink)?))
}

/// The plan answers 501 for M4A in such a build: reaching here is a bug, told as one.
#[cfg(not(feature = "aac"))]
fn m4a_encoder(spec: &EncodeSpec, _sink: Sink) -> Result<Box<dyn Encoder>> {
    Err(PipelineError::codec(encoder_name(spec.format), "built without the `aac` feature"))
}

/// A write to the output failed (a full disk): our side, not the client's.
fn output_error(what: &'static str) -> impl Fn(std::io::Error) -> PipelineError {
    move |e| PipelineError::codec(what, format!("writing the output: {e}"))
}

/// The finished output of `sink`.
fn finish_sink(what: &'static str, sink: Sink) -> Result<Output> {
    sink.finish().map_err(output_error(what))
}

/// The rate the encoder takes when `wanted` is asked: Opus always 48 kHz, MP3 and M4A the
/// nearest rate LAME or libfdk-aac encodes, the others `wanted` clamped to what the format (and
/// its encoder) can hold.
pub fn supported_rate(format: AudioFormat, wanted: u32) -> u32 {
    match format {
        AudioFormat::Opus => 48_000,
        AudioFormat::Mp3 => mp3::nearest_rate(wanted),
        // flacenc refuses STREAMINFO rates above 96 kHz
        AudioFormat::Flac => wanted.clamp(1, 96_000),
        AudioFormat::Vorbis => vorbis::supported_rate(wanted),
        #[cfg(feature = "aac")]
        AudioFormat::M4a => aac::supported_rate(wanted),
        #[cfg(not(feature = "aac"))]
        AudioFormat::M4a => wanted,
        // the decoder's own sanity bound (decode.rs)
        AudioFormat::Wav => wanted.clamp(1, 768_000),
    }
}

/// The most channels the format carries here (Opus: mapping family 0 only; M4A: the fdk-aac
/// wrapper opens a stereo encoder).
pub fn max_channels(format: AudioFormat) -> u16 {
    match format {
        AudioFormat::Mp3 | AudioFormat::Opus | AudioFormat::M4a => 2,
        AudioFormat::Vorbis | AudioFormat::Flac => 8,
        AudioFormat::Wav => 32,
    }
}

/// The bitrate a lossy format gets when none is asked, in kbps; `None` for lossless formats.
pub fn default_bitrate(format: AudioFormat, channels: u16) -> Option<u32> {
    match format {
        AudioFormat::Wav | AudioFormat::Flac => None,
        AudioFormat::Mp3 => Some(128),
        AudioFormat::Vorbis => Some(match channels {
            0 | 1 => 96,
            2 => 128,
            n => 64 * u32::from(n),
        }),
        AudioFormat::Opus => Some(if channels <= 1 { 64 } else { 96 }),
        AudioFormat::M4a => Some(if channels <= 1 { 64 } else { 128 }),
    }
}

/// The caller's contract: a rate from `supported_rate`, a channel count the format carries,
/// 16 or 24 bits for the lossless formats. A breach is ours, not the client's.
fn check_spec(spec: &EncodeSpec) -> Result<()> {
    let what = encoder_name(spec.format);
    if spec.sample_rate == 0 || supported_rate(spec.format, spec.sample_rate) != spec.sample_rate {
        return Err(PipelineError::codec(what, format!("{} Hz is not a rate it takes", spec.sample_rate)));
    }
    if !(1..=max_channels(spec.format)).contains(&spec.channels) {
        return Err(PipelineError::codec(what, format!("{} channels is more than it carries", spec.channels)));
    }
    let lossless = matches!(spec.format, AudioFormat::Wav | AudioFormat::Flac);
    if lossless && !matches!(spec.bits, 16 | 24) {
        return Err(PipelineError::codec(what, format!("{} bits per sample (16 or 24 only)", spec.bits)));
    }
    Ok(())
}

fn encoder_name(format: AudioFormat) -> &'static str {
    match format {
        AudioFormat::Wav => "WAV encoder",
        AudioFormat::Flac => "FLAC encoder",
        AudioFormat::Mp3 => "MP3 encoder",
        AudioFormat::Vorbis => "Vorbis encoder",
        AudioFormat::Opus => "Opus encoder",
        AudioFormat::M4a => "AAC encoder",
    }
}

/// The frames of one pushed block, after checking it has one plane per channel, all one length.
fn block_frames(what: &'static str, planes: &[&[f32]], channels: usize) -> Result<usize> {
    let frames = planes.first().map_or(0, |p| p.len());
    if planes.len() != channels || planes.iter().any(|p| p.len() != frames) {
        let lengths: Vec<usize> = planes.iter().map(|p| p.len()).collect();
        return Err(PipelineError::codec(what, format!("a block of {lengths:?} frames for {channels} channels")));
    }
    Ok(frames)
}

/// A sample in [-1, 1] as a signed integer of `bits` (NaN becomes 0).
fn to_int(sample: f32, bits: u16) -> i32 {
    let scale = (1i64 << (bits - 1)) as f32;
    let max = (1i64 << (bits - 1)) - 1;
    ((sample.clamp(-1.0, 1.0) * scale).round() as i64).clamp(-max - 1, max) as i32
}

/// A sample clipped to [-1, 1] (NaN becomes 0), for the float encoders.
fn clip(sample: f32) -> f32 {
    if sample.is_nan() {
        0.0
    } else {
        sample.clamp(-1.0, 1.0)
    }
}

/// The `(tag, value)` pairs of a Vorbis comment: the title only, today.
fn comment_fields(title: Option<&str>) -> Vec<String> {
    title.filter(|t| !t.is_empty()).map(|t| format!("TITLE={t}")).into_iter().collect()
}

/// A Vorbis comment body (FLAC's VORBIS_COMMENT block, Opus's OpusTags after its magic): vendor,
/// then `fields`, every length a little-endian `u32`.
fn vorbis_comment(vendor: &str, fields: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    out.extend_from_slice(vendor.as_bytes());
    out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
    for field in fields {
        out.extend_from_slice(&(field.len() as u32).to_le_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

#[cfg(test)]
pub(super) mod testkit {
    //! Shared by the encoders' tests: a sine, block-wise encoding, decoding back, pitch.
    use super::*;
    use crate::pipeline::audio::decode::{self, StreamInfo};
    use crate::pipeline::output::Spill;
    use crate::pipeline::{Budget, Limits};

    /// `frames` of a 440 Hz sine at half scale, the second channel a quarter turn later.
    pub fn sine(rate: u32, channels: u16, frames: usize) -> Vec<Vec<f32>> {
        let w = 2.0 * std::f64::consts::PI * 440.0 / f64::from(rate);
        (0..channels)
            .map(|c| (0..frames).map(|i| (0.5 * (w * i as f64 + f64::from(c) * 1.57).sin()) as f32).collect())
            .collect()
    }

    pub fn spec(format: AudioFormat, rate: u32, channels: u16) -> EncodeSpec {
        EncodeSpec { format, sample_rate: rate, channels, bits: 16, bitrate_kbps: None, title: None }
    }

    /// Encodes `planes` in uneven blocks: 1000, 4096, 17, 0, then 10 000 at a time, once in
    /// memory and once to a sink that moves to a file after 3000 bytes: both give the same bytes.
    pub fn encode(spec: &EncodeSpec, planes: &[Vec<f32>]) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("temp dir");
        let spill = Spill { dir: Some(dir.path().to_path_buf()), threshold: 3000 };
        let in_memory = encode_to(spec, planes, Sink::memory());
        let spilled = encode_to(spec, planes, Sink::new(&spill)).into_vec().expect("read back");
        let in_memory = in_memory.into_vec().expect("in memory");
        assert!(in_memory == spilled, "{:?}: a spilled output differs from the one in memory", spec.format);
        in_memory
    }

    fn encode_to(spec: &EncodeSpec, planes: &[Vec<f32>], sink: Sink) -> Output {
        let mut encoder = encoder(spec, sink).expect("encoder");
        let frames = planes[0].len();
        let mut at = 0;
        for size in [1000, 4096, 17, 0].into_iter().chain(std::iter::repeat(10_000)) {
            if at >= frames {
                break;
            }
            let end = (at + size).min(frames);
            let block: Vec<&[f32]> = planes.iter().map(|p| &p[at..end]).collect();
            encoder.push(&block).expect("push");
            at = end;
        }
        encoder.finish().expect("finish")
    }

    /// The stream's info, its planes whole, and its tags.
    pub fn decode(bytes: Vec<u8>) -> (StreamInfo, Vec<Vec<f32>>, Vec<(String, String)>) {
        let (mut decoder, meta) = decode::open(bytes::Bytes::from(bytes)).expect("open");
        let budget = Budget::start(Limits::default());
        let mut planes: Vec<Vec<f32>> = Vec::new();
        while let Some(block) = decoder.next_block(&budget).expect("block") {
            planes.resize(block.planes.len(), Vec::new());
            for (all, part) in planes.iter_mut().zip(&block.planes) {
                all.extend_from_slice(part);
            }
        }
        (decoder.info.clone(), planes, meta.tags)
    }

    /// The frequency of `plane` over its middle second, from its rising zero crossings
    /// (interpolated between samples).
    pub fn pitch(plane: &[f32], rate: u32) -> f64 {
        let rate = f64::from(rate);
        let (from, to) = ((0.25 * rate) as usize, (1.25 * rate) as usize);
        let mut crossings = Vec::new();
        for i in from..to.min(plane.len()) - 1 {
            let (a, b) = (f64::from(plane[i]), f64::from(plane[i + 1]));
            if a < 0.0 && b >= 0.0 {
                crossings.push(i as f64 + a / (a - b));
            }
        }
        let (first, last) = (crossings[0], crossings[crossings.len() - 1]);
        (crossings.len() - 1) as f64 * rate / (last - first)
    }

    /// Encodes 1.5 s of the sine, decodes it back and checks rate, channels, length and pitch.
    /// Returns the encoded size.
    pub fn round_trip(spec: &EncodeSpec) -> usize {
        let frames = spec.sample_rate as usize * 3 / 2;
        let bytes = encode(spec, &sine(spec.sample_rate, spec.channels, frames));
        let size = bytes.len();
        let (info, planes, _) = decode(bytes);
        assert_eq!(info.sample_rate, spec.sample_rate);
        assert_eq!(info.channels, usize::from(spec.channels));
        assert_eq!(planes.len(), usize::from(spec.channels));
        assert_eq!(planes[0].len(), frames, "decoded length of {:?}", spec.format);
        let hz = pitch(&planes[0], spec.sample_rate);
        assert!((hz - 440.0).abs() < 2.0, "{hz} Hz");
        size
    }

    /// Round-trips the sine at `low` and `high` kbit/s (44.1 kHz stereo; Opus at 48 kHz) and
    /// checks the lower bitrate makes less than half the bytes.
    pub fn lower_bitrate_is_smaller(format: AudioFormat, low: u32, high: u32) {
        let rate = if format == AudioFormat::Opus { 48_000 } else { 44_100 };
        let mut low_spec = spec(format, rate, 2);
        low_spec.bitrate_kbps = Some(low);
        let mut high_spec = low_spec.clone();
        high_spec.bitrate_kbps = Some(high);
        let (low, high) = (round_trip(&low_spec), round_trip(&high_spec));
        assert!(low * 2 < high, "{low} vs {high}");
    }

    /// Mono input of each length decodes back to exactly that many frames.
    pub fn exact_at_lengths(format: AudioFormat, rate: u32, lengths: &[usize]) {
        for &frames in lengths {
            let (_, planes, _) = decode(encode(&spec(format, rate, 1), &sine(rate, 1, frames)));
            assert_eq!(planes[0].len(), frames);
        }
    }

    /// 24-bit output keeps its depth, and every sample to within float precision.
    pub fn lossless_at_24_bits(format: AudioFormat, rate: u32) {
        let mut spec = spec(format, rate, 2);
        spec.bits = 24;
        round_trip(&spec);
        let input = sine(rate, 2, 9000);
        let (info, planes, _) = decode(encode(&spec, &input));
        assert_eq!(info.bits_per_sample, Some(24));
        let worst = input[1].iter().zip(&planes[1]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-6, "{worst}");
    }

    /// An input like music for the speed runs: a chord, a sweep and some noise.
    pub fn music(rate: u32, frames: usize) -> Vec<Vec<f32>> {
        let mut seed = 0x2545_f491_u32;
        let mut noise = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as f32 / u32::MAX as f32 - 0.5
        };
        let r = f64::from(rate);
        let mut planes = vec![Vec::with_capacity(frames), Vec::with_capacity(frames)];
        for i in 0..frames {
            let t = i as f64 / r;
            let chord = [220.0, 277.2, 329.6].iter().map(|f| (t * f * std::f64::consts::TAU).sin()).sum::<f64>();
            let sweep = (t * (200.0 + 40.0 * t) * std::f64::consts::TAU).sin();
            planes[0].push((0.2 * chord + 0.1 * sweep) as f32 + 0.1 * noise());
            planes[1].push((0.2 * chord - 0.1 * sweep) as f32 + 0.1 * noise());
        }
        planes
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    #[test]
    fn rates_channels_and_bitrates() {
        assert_eq!(supported_rate(AudioFormat::Opus, 44_100), 48_000);
        assert_eq!(supported_rate(AudioFormat::Mp3, 44_100), 44_100);
        assert_eq!(supported_rate(AudioFormat::Mp3, 96_000), 48_000);
        assert_eq!(supported_rate(AudioFormat::Mp3, 23_000), 22_050);
        assert_eq!(supported_rate(AudioFormat::Mp3, 1), 8_000);
        assert_eq!(supported_rate(AudioFormat::Flac, 192_000), 96_000);
        assert_eq!(supported_rate(AudioFormat::Vorbis, 96_000), 48_000);
        assert_eq!(supported_rate(AudioFormat::Vorbis, 4_000), 8_000);
        assert_eq!(supported_rate(AudioFormat::Wav, 44_100), 44_100);
        assert_eq!(max_channels(AudioFormat::Mp3), 2);
        assert_eq!(max_channels(AudioFormat::Wav), 32);
        assert_eq!(default_bitrate(AudioFormat::Opus, 1), Some(64));
        assert_eq!(default_bitrate(AudioFormat::Opus, 2), Some(96));
        assert_eq!(default_bitrate(AudioFormat::Flac, 2), None);
    }

    #[test]
    fn broken_contracts_are_errors_not_panics() {
        let mut bad = spec(AudioFormat::Opus, 44_100, 2);
        assert!(encoder(&bad, Sink::memory()).is_err());
        bad = spec(AudioFormat::Mp3, 44_100, 3);
        assert!(encoder(&bad, Sink::memory()).is_err());
        bad = spec(AudioFormat::Wav, 44_100, 2);
        bad.bits = 12;
        assert!(encoder(&bad, Sink::memory()).is_err());
        let mut wav = encoder(&spec(AudioFormat::Wav, 44_100, 2), Sink::memory()).expect("encoder");
        assert!(wav.push(&[&[0.0; 4][..]]).is_err());
        assert!(wav.push(&[&[0.0; 4][..], &[0.0; 3][..]]).is_err());
    }

    #[test]
    fn samples_are_clipped_and_scaled() {
        assert_eq!(to_int(1.0, 16), 32_767);
        assert_eq!(to_int(-1.0, 16), -32_768);
        assert_eq!(to_int(3.0, 24), 8_388_607);
        assert_eq!(to_int(f32::NAN, 16), 0);
        assert_eq!(clip(f32::NAN), 0.0);
        assert_eq!(clip(-2.0), -1.0);
    }

    #[test]
    fn every_format_survives_an_empty_input() {
        for format in [AudioFormat::Wav, AudioFormat::Flac, AudioFormat::Mp3, AudioFormat::Vorbis, AudioFormat::Opus] {
            let rate = supported_rate(format, 44_100);
            let out = encoder(&spec(format, rate, 2), Sink::memory()).and_then(|e| e.finish());
            // valid or not, no panic; a stream that decodes must hold nothing
            if let Ok(Output::Memory(bytes)) = out {
                if let Ok((mut d, _)) = crate::pipeline::audio::decode::open(bytes::Bytes::from(bytes)) {
                    let budget = crate::pipeline::Budget::start(crate::pipeline::Limits::default());
                    let mut frames = 0;
                    while let Ok(Some(block)) = d.next_block(&budget) {
                        frames += block.frames();
                    }
                    assert_eq!(frames, 0, "{format:?}");
                }
            }
        }
    }

    /// `cargo test --release --lib pipeline::audio::encode -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn encode_speed() {
        for format in [AudioFormat::Wav, AudioFormat::Flac, AudioFormat::Mp3, AudioFormat::Vorbis, AudioFormat::Opus] {
            let rate = supported_rate(format, 44_100);
            let planes = music(rate, rate as usize * 180);
            let started = std::time::Instant::now();
            let mut encoder = encoder(&spec(format, rate, 2), Sink::memory()).expect("encoder");
            for at in (0..planes[0].len()).step_by(4096) {
                let end = (at + 4096).min(planes[0].len());
                encoder.push(&[&planes[0][at..end], &planes[1][at..end]]).expect("push");
            }
            let size = encoder.finish().expect("finish").len();
            let secs = started.elapsed().as_secs_f64();
            println!("{format:?}: {:.0}x real time, {} kB", 180.0 / secs, size / 1000);
        }
    }
}
