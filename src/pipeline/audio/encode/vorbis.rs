//! Ogg Vorbis through vorbis_rs (aoTuV libvorbis): VBR aimed at the asked average bitrate, the
//! title a `TITLE` comment. libvorbis holds its own analysis window; blocks go straight in.

use super::{block_frames, clip, finish_sink, output_error, EncodeSpec, Encoder, PipelineError, Result};
use crate::pipeline::output::{Output, SharedSink, Sink};
use std::num::{NonZeroU32, NonZeroU8};
use vorbis_rs::{VorbisBitrateManagementStrategy, VorbisEncoderBuilder};

const WHAT: &str = "Vorbis encoder";
/// "Refr": streams are single, so a fixed serial is as good as a random one (and repeatable).
const SERIAL: i32 = 0x5265_6672;
/// Bitrates to fall back on, in kbps, when libvorbis has no mode for the asked one at this rate
/// and channel count (the nearest that works is taken).
const LADDER: [u32; 14] = [24, 32, 45, 48, 64, 80, 96, 112, 128, 160, 192, 256, 320, 480];
/// The rates libvorbis's bitrate-targeted setups cover here (above 50 kHz it has none:
/// OV_EIMPL for every bitrate and channel count).
const RATES: std::ops::RangeInclusive<u32> = 8_000..=48_000;

pub(super) fn supported_rate(wanted: u32) -> u32 {
    wanted.clamp(*RATES.start(), *RATES.end())
}

type Inner = vorbis_rs::VorbisEncoder<SharedSink>;

/// vorbis_rs's encoder is `!Send` only because it holds raw pointers to libvorbis/libogg state.
/// That state has no thread affinity (no thread-locals, no callbacks) and is owned by this value
/// alone, so moving it to another thread between calls is sound.
struct SendInner(Inner);
// SAFETY: see above; all access goes through `&mut self` of the one owner.
unsafe impl Send for SendInner {}

pub(super) struct VorbisEncoder {
    inner: SendInner,
    /// The encoder writes into a handle of this; the sink is taken back at the end.
    out: SharedSink,
    channels: usize,
    /// The block, clipped, per channel.
    scratch: Vec<Vec<f32>>,
}

fn codec(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::codec(WHAT, e)
}

impl VorbisEncoder {
    pub(super) fn new(spec: &EncodeSpec, sink: Sink) -> Result<VorbisEncoder> {
        let out = SharedSink::new(sink);
        let kbps = spec.bitrate_kbps.or(super::default_bitrate(spec.format, spec.channels)).unwrap_or(128);
        let mut candidates = LADDER.to_vec();
        candidates.sort_by_key(|k| k.abs_diff(kbps));
        candidates.insert(0, kbps);
        let mut last = None;
        for kbps in candidates {
            // whatever a failed attempt wrote is dropped
            out.clear().map_err(output_error(WHAT))?;
            match build(spec, kbps, out.clone()) {
                Ok(inner) => {
                    let channels = usize::from(spec.channels);
                    return Ok(VorbisEncoder {
                        inner: SendInner(inner),
                        out,
                        channels,
                        scratch: vec![Vec::new(); channels],
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(PipelineError::bad_option(
            "video_convert",
            "audio_bitrate",
            format!(
                "Vorbis has no bitrate for {} Hz, {} channels ({})",
                spec.sample_rate,
                spec.channels,
                last.map_or_else(String::new, |e| e.to_string())
            ),
        ))
    }
}

/// An encoder at `kbps` (libvorbis's bitrate-targeted VBR), its headers written.
fn build(spec: &EncodeSpec, kbps: u32, out: SharedSink) -> std::result::Result<Inner, vorbis_rs::VorbisError> {
    let rate = NonZeroU32::new(spec.sample_rate).unwrap_or(NonZeroU32::MIN);
    let channels = NonZeroU8::new(spec.channels as u8).unwrap_or(NonZeroU8::MIN);
    let target = NonZeroU32::new(kbps.saturating_mul(1000)).unwrap_or(NonZeroU32::MIN);
    let mut builder = VorbisEncoderBuilder::new_with_serial(rate, channels, out, SERIAL);
    builder.bitrate_management_strategy(VorbisBitrateManagementStrategy::Vbr { target_bitrate: target });
    if let Some(title) = spec.title.as_deref().filter(|t| !t.is_empty()) {
        builder.comment_tag("TITLE", title)?;
    }
    builder.build()
}

impl Encoder for VorbisEncoder {
    fn push(&mut self, planes: &[&[f32]]) -> Result<()> {
        if block_frames(WHAT, planes, self.channels)? == 0 {
            return Ok(());
        }
        for (scratch, plane) in self.scratch.iter_mut().zip(planes) {
            scratch.clear();
            scratch.extend(plane.iter().map(|&s| clip(s)));
        }
        self.inner.0.encode_audio_block(&self.scratch).map_err(codec)
    }

    fn finish(self: Box<Self>) -> Result<Output> {
        let VorbisEncoder { inner, out, .. } = *self;
        drop(inner.0.finish().map_err(codec)?);
        finish_sink(WHAT, out.take().map_err(output_error(WHAT))?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::plan::audio::AudioFormat;

    #[test]
    fn stereo_round_trips_to_the_sample() {
        round_trip(&spec(AudioFormat::Vorbis, 44_100, 2));
    }

    #[test]
    fn mono_at_22050_round_trips() {
        round_trip(&spec(AudioFormat::Vorbis, 22_050, 1));
    }

    #[test]
    fn the_bitrate_steers_the_size_and_impossible_ones_snap() {
        // VBR spends next to nothing on a pure sine whatever the target: use music-like input
        let input = music(44_100, 66_150);
        let mut low = spec(AudioFormat::Vorbis, 44_100, 2);
        low.bitrate_kbps = Some(64);
        let mut high = low.clone();
        high.bitrate_kbps = Some(256);
        let (low, high) = (encode(&low, &input).len(), encode(&high, &input).len());
        assert!(low * 2 < high, "{low} vs {high}");
        // 1000 kbps for mono 8 kHz: no such mode, the nearest that exists is taken
        let mut odd = spec(AudioFormat::Vorbis, 8_000, 1);
        odd.bitrate_kbps = Some(1000);
        round_trip(&odd);
    }

    #[test]
    fn every_supported_rate_channel_count_and_bitrate_builds() {
        for rate in [1, 8_000, 11_025, 12_345, 22_050, 44_100, 48_000, 96_000, 192_000] {
            let rate = super::supported_rate(rate);
            for (channels, kbps) in [1, 2, 6, 8].into_iter().flat_map(|c| [(c, None), (c, Some(1)), (c, Some(900))]) {
                let mut spec = spec(AudioFormat::Vorbis, rate, channels);
                spec.bitrate_kbps = kbps;
                let built =
                    super::super::encoder(&spec, crate::pipeline::output::Sink::memory()).and_then(|e| e.finish());
                assert!(built.is_ok(), "{rate} Hz, {channels} channels, {kbps:?} kbps: {built:?}");
            }
        }
    }

    #[test]
    fn the_title_is_a_comment() {
        let mut spec = spec(AudioFormat::Vorbis, 48_000, 2);
        spec.title = Some("Ωmega".into());
        let (_, planes, tags) = decode(encode(&spec, &sine(48_000, 2, 48_000)));
        assert_eq!(planes[0].len(), 48_000);
        assert!(tags.iter().any(|(_, v)| v == "Ωmega"), "{tags:?}");
    }
}
