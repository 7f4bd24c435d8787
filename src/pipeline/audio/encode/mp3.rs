//! MP3 through LAME (mp3lame-encoder): CBR at the nearest bitrate LAME has, gapless (LAME's
//! Info/LAME tag written over its placeholder frame after the flush, so decoders trim the
//! encoder delay and padding), the title an ID3v2.4 `TIT2` frame in UTF-8 ahead of the audio.

use super::{block_frames, clip, finish_sink, output_error, EncodeSpec, Encoder, PipelineError, Result};
use crate::pipeline::output::{Output, Sink};
use mp3lame_encoder::{Bitrate, Builder, DualPcm, FlushGap, Mode, MonoPcm, Quality};
use std::io::{Seek, SeekFrom, Write};
use std::num::NonZeroU32;

const WHAT: &str = "MP3 encoder";
/// The rates LAME encodes (MPEG-2.5, MPEG-2, MPEG-1).
const RATES: [u32; 9] = [8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000];
/// LAME's CBR bitrates that mp3lame-encoder names, in kbps.
const BITRATES: [(u32, Bitrate); 16] = [
    (8, Bitrate::Kbps8),
    (16, Bitrate::Kbps16),
    (24, Bitrate::Kbps24),
    (32, Bitrate::Kbps32),
    (40, Bitrate::Kbps40),
    (48, Bitrate::Kbps48),
    (64, Bitrate::Kbps64),
    (80, Bitrate::Kbps80),
    (96, Bitrate::Kbps96),
    (112, Bitrate::Kbps112),
    (128, Bitrate::Kbps128),
    (160, Bitrate::Kbps160),
    (192, Bitrate::Kbps192),
    (224, Bitrate::Kbps224),
    (256, Bitrate::Kbps256),
    (320, Bitrate::Kbps320),
];

/// The LAME rate nearest to `wanted`.
pub(super) fn nearest_rate(wanted: u32) -> u32 {
    RATES.into_iter().min_by_key(|r| r.abs_diff(wanted)).unwrap_or(44_100)
}

/// The bitrate nearest to `kbps` that MPEG-1 (32 kHz and up: 32–320) or MPEG-2/2.5 (below:
/// 8–160) carries at `rate`.
fn nearest_bitrate(kbps: u32, rate: u32) -> (u32, Bitrate) {
    let range = if rate >= 32_000 { 32..=320 } else { 8..=160 };
    BITRATES
        .into_iter()
        .filter(|(k, _)| range.contains(k))
        .min_by_key(|(k, _)| k.abs_diff(kbps))
        .unwrap_or((128, Bitrate::Kbps128))
}

pub(super) struct Mp3Encoder {
    lame: mp3lame_encoder::Encoder,
    channels: usize,
    /// Where LAME's output starts (after our ID3v2 tag): its first frame is the tag placeholder.
    lame_start: usize,
    /// The block, clipped, per channel.
    scratch: [Vec<f32>; 2],
    /// LAME's output for one block, on its way to `out`.
    encoded: Vec<u8>,
    out: Sink,
}

fn codec(e: impl std::fmt::Debug) -> PipelineError {
    PipelineError::codec(WHAT, format!("{e:?}"))
}

impl Mp3Encoder {
    pub(super) fn new(spec: &EncodeSpec, mut out: Sink) -> Result<Mp3Encoder> {
        let mut builder = Builder::new().ok_or_else(|| codec("LAME could not allocate"))?;
        let rate = spec.sample_rate;
        let kbps = spec.bitrate_kbps.or(super::default_bitrate(spec.format, spec.channels)).unwrap_or(128);
        let (_, bitrate) = nearest_bitrate(kbps, rate);
        builder.set_sample_rate(rate).map_err(codec)?;
        builder.set_output_sample_rate(NonZeroU32::new(rate)).map_err(codec)?;
        builder.set_num_channels(spec.channels as u8).map_err(codec)?;
        builder.set_mode(if spec.channels == 1 { Mode::Mono } else { Mode::JointStereo }).map_err(codec)?;
        builder.set_brate(bitrate).map_err(codec)?;
        builder.set_quality(Quality::Good).map_err(codec)?;
        builder.set_to_write_vbr_tag(true).map_err(codec)?;
        let lame = builder.build().map_err(codec)?;
        let tag = spec.title.as_deref().filter(|t| !t.is_empty()).map(id3v2_title).unwrap_or_default();
        out.write_all(&tag).map_err(output_error(WHAT))?;
        Ok(Mp3Encoder {
            lame,
            channels: usize::from(spec.channels),
            lame_start: tag.len(),
            scratch: [Vec::new(), Vec::new()],
            encoded: Vec::new(),
            out,
        })
    }
}

impl Encoder for Mp3Encoder {
    fn push(&mut self, planes: &[&[f32]]) -> Result<()> {
        let frames = block_frames(WHAT, planes, self.channels)?;
        if frames == 0 {
            return Ok(());
        }
        for (scratch, plane) in self.scratch.iter_mut().zip(planes) {
            scratch.clear();
            scratch.extend(plane.iter().map(|&s| clip(s)));
        }
        self.encoded.clear();
        self.encoded.reserve(mp3lame_encoder::max_required_buffer_size(frames));
        let [left, right] = &self.scratch;
        let written = if self.channels == 1 {
            self.lame.encode_to_vec(MonoPcm(left.as_slice()), &mut self.encoded)
        } else {
            self.lame.encode_to_vec(DualPcm { left: left.as_slice(), right: right.as_slice() }, &mut self.encoded)
        };
        written.map_err(codec)?;
        self.out.write_all(&self.encoded).map_err(output_error(WHAT))
    }

    fn finish(mut self: Box<Self>) -> Result<Output> {
        self.encoded.clear();
        self.encoded.reserve(mp3lame_encoder::max_required_buffer_size(0));
        // `FlushGap` pads the last frame with silence (`FlushNoGap` drops it); the tag then says
        // how much of it, and of the start, is not audio
        self.lame.flush_to_vec::<FlushGap>(&mut self.encoded).map_err(codec)?;
        let mut tag = Vec::with_capacity(self.lame.lame_tag_size());
        if self.lame.lame_tag_encode_to_vec(&mut tag).is_none() {
            return Err(codec("LAME wrote no Info tag"));
        }
        let io = output_error(WHAT);
        let mut out = self.out;
        out.write_all(&self.encoded).map_err(&io)?;
        let end = out.stream_position().map_err(&io)?;
        if (self.lame_start + tag.len()) as u64 > end {
            return Err(codec("LAME's output has no tag placeholder"));
        }
        // the first frame LAME wrote is the placeholder of its Info tag
        out.seek(SeekFrom::Start(self.lame_start as u64)).and_then(|_| out.write_all(&tag)).map_err(&io)?;
        finish_sink(WHAT, out)
    }
}

/// An ID3v2.4 tag holding `TIT2` (the title) in UTF-8.
fn id3v2_title(title: &str) -> Vec<u8> {
    let mut frame = vec![3u8]; // text encoding: UTF-8
    frame.extend_from_slice(title.as_bytes());
    let mut tag = b"ID3\x04\x00\x00".to_vec();
    tag.extend_from_slice(&synchsafe(frame.len() + 10));
    tag.extend_from_slice(b"TIT2");
    tag.extend_from_slice(&synchsafe(frame.len()));
    tag.extend_from_slice(&[0, 0]);
    tag.extend_from_slice(&frame);
    tag
}

/// A size as ID3v2.4 writes it: 28 bits, seven per byte (titles are far below 256 MiB; longer
/// ones are cut by the mask rather than overflow).
fn synchsafe(n: usize) -> [u8; 4] {
    let n = (n as u32) & 0x0FFF_FFFF;
    [(n >> 21) as u8 & 0x7F, (n >> 14) as u8 & 0x7F, (n >> 7) as u8 & 0x7F, n as u8 & 0x7F]
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::plan::audio::AudioFormat;

    #[test]
    fn stereo_is_gapless() {
        round_trip(&spec(AudioFormat::Mp3, 44_100, 2));
    }

    #[test]
    fn mono_at_22050_is_gapless() {
        round_trip(&spec(AudioFormat::Mp3, 22_050, 1));
    }

    #[test]
    fn a_lower_bitrate_is_a_smaller_file() {
        lower_bitrate_is_smaller(AudioFormat::Mp3, 64, 192);
    }

    #[test]
    fn bitrates_and_rates_snap_to_what_lame_has() {
        assert_eq!(nearest_bitrate(100, 44_100).0, 96);
        assert_eq!(nearest_bitrate(8, 44_100).0, 32);
        assert_eq!(nearest_bitrate(320, 22_050).0, 160);
        assert_eq!(nearest_bitrate(0, 8_000).0, 8);
        assert_eq!(nearest_rate(44_000), 44_100);
        assert_eq!(nearest_rate(192_000), 48_000);
    }

    #[test]
    fn the_title_is_an_id3v2_frame() {
        let mut spec = spec(AudioFormat::Mp3, 44_100, 2);
        spec.title = Some("Café « live »".into());
        let bytes = encode(&spec, &sine(44_100, 2, 20_000));
        assert!(bytes.starts_with(b"ID3\x04"));
        let (_, planes, tags) = decode(bytes);
        assert_eq!(planes[0].len(), 20_000);
        assert!(tags.iter().any(|(_, v)| v == "Café « live »"), "{tags:?}");
    }
}
