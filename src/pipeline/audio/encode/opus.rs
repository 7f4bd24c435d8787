//! Ogg Opus (RFC 7845) through libopus (the `opus` crate) and the `ogg` crate's page writer:
//! OpusHead (pre-skip = the encoder's lookahead) and OpusTags (vendor `refract`, `TITLE`) on
//! their own pages, then 20 ms packets. Granule positions count 48 kHz samples including the
//! pre-skip; the last page's granule is pre-skip + the real length, so decoders cut the padding
//! of the last frame.

use super::{
    block_frames, clip, comment_fields, finish_sink, vorbis_comment, EncodeSpec, Encoder, PipelineError, Result,
};
use crate::pipeline::output::{Output, Sink};
use ogg::writing::{PacketWriteEndInfo, PacketWriter};

const WHAT: &str = "Opus encoder";
const RATE: u32 = 48_000;
/// 20 ms at 48 kHz.
const FRAME: usize = 960;
/// RFC 6716's largest useful packet (libopus's own recommendation for the output buffer).
const MAX_PACKET: usize = 4000;
/// Packets per Ogg page (one second), so a page is a seek point and a bounded loss.
const PACKETS_PER_PAGE: u64 = 50;
const SERIAL: u32 = 0x5265_6672;

pub(super) struct OpusEncoder {
    opus: opus::Encoder,
    ogg: PacketWriter<'static, Sink>,
    channels: usize,
    pre_skip: u64,
    /// Interleaved samples waiting for a full frame (less than `FRAME` frames).
    pending: Vec<f32>,
    /// Frames of input taken so far (the real length).
    input: u64,
    /// Packets written so far.
    packets: u64,
    packet: Vec<u8>,
}

fn codec(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::codec(WHAT, e)
}

impl OpusEncoder {
    pub(super) fn new(spec: &EncodeSpec, sink: Sink) -> Result<OpusEncoder> {
        let layout = if spec.channels == 1 { opus::Channels::Mono } else { opus::Channels::Stereo };
        let mut opus = opus::Encoder::new(RATE, layout, opus::Application::Audio).map_err(codec)?;
        let kbps = spec.bitrate_kbps.or(super::default_bitrate(spec.format, spec.channels)).unwrap_or(96);
        // libopus takes 6–510 kbps (and caps what a channel count can use itself)
        let bits = kbps.clamp(6, 510) as i32 * 1000;
        opus.set_bitrate(opus::Bitrate::Bits(bits)).map_err(codec)?;
        let pre_skip = opus.get_lookahead().map_err(codec)?.max(0) as u64;
        let mut ogg = PacketWriter::new(sink);
        let head = opus_head(spec.channels as u8, pre_skip as u16, spec.sample_rate);
        ogg.write_packet(head, SERIAL, PacketWriteEndInfo::EndPage, 0).map_err(codec)?;
        let mut tags = b"OpusTags".to_vec();
        tags.extend(vorbis_comment("refract", &comment_fields(spec.title.as_deref())));
        ogg.write_packet(tags, SERIAL, PacketWriteEndInfo::EndPage, 0).map_err(codec)?;
        let channels = usize::from(spec.channels);
        Ok(OpusEncoder {
            opus,
            ogg,
            channels,
            pre_skip,
            pending: Vec::with_capacity(FRAME * channels),
            input: 0,
            packets: 0,
            packet: vec![0; MAX_PACKET],
        })
    }

    /// Encodes the pending frame (full, or zero-padded at the end) as one packet; `last` closes
    /// the stream with the real end as its granule.
    fn write_frame(&mut self, last: bool) -> Result<()> {
        self.pending.resize(FRAME * self.channels, 0.0);
        let size = self.opus.encode_float(&self.pending, &mut self.packet).map_err(codec)?;
        self.pending.clear();
        self.packets += 1;
        let granule = if last { self.pre_skip + self.input } else { self.packets * FRAME as u64 };
        let end = if last {
            PacketWriteEndInfo::EndStream
        } else if self.packets.is_multiple_of(PACKETS_PER_PAGE) {
            PacketWriteEndInfo::EndPage
        } else {
            PacketWriteEndInfo::NormalPacket
        };
        self.ogg.write_packet(self.packet[..size].to_vec(), SERIAL, end, granule).map_err(codec)
    }
}

/// OpusHead: version 1, channel count, pre-skip, the input's rate (informative), no gain,
/// mapping family 0 (mono or stereo, one stream).
fn opus_head(channels: u8, pre_skip: u16, input_rate: u32) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.extend_from_slice(&[1, channels]);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&input_rate.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    head
}

impl Encoder for OpusEncoder {
    fn push(&mut self, planes: &[&[f32]]) -> Result<()> {
        let frames = block_frames(WHAT, planes, self.channels)?;
        for i in 0..frames {
            self.pending.extend(planes.iter().map(|p| clip(p[i])));
            if self.pending.len() == FRAME * self.channels {
                self.write_frame(false)?;
            }
        }
        self.input += frames as u64;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<Output> {
        // enough packets to hold pre-skip + input: the encoder's lookahead is flushed by the
        // padding, and the last packet's padding is cut by the final granule
        let needed = (self.pre_skip + self.input).div_ceil(FRAME as u64).max(1);
        while self.packets + 1 < needed {
            self.write_frame(false)?;
        }
        self.write_frame(true)?;
        finish_sink(WHAT, self.ogg.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::plan::audio::AudioFormat;

    #[test]
    fn stereo_round_trips_to_the_sample() {
        round_trip(&spec(AudioFormat::Opus, 48_000, 2));
    }

    #[test]
    fn mono_round_trips_and_lengths_off_the_frame_grid_too() {
        round_trip(&spec(AudioFormat::Opus, 48_000, 1));
        exact_at_lengths(AudioFormat::Opus, 48_000, &[1, 959, 960, 961, 48_000 - 312, 48_000 - 311]);
    }

    #[test]
    fn the_head_and_tags_follow_rfc_7845() {
        let mut spec = spec(AudioFormat::Opus, 48_000, 2);
        spec.title = Some("Ünïcode".into());
        let bytes = encode(&spec, &sine(48_000, 2, 4800));
        // first page: OpusHead alone, granule 0, beginning-of-stream
        assert_eq!(&bytes[..4], b"OggS");
        assert_eq!(bytes[5] & 0x02, 0x02);
        assert_eq!(&bytes[6..14], &[0; 8]);
        assert_eq!(&bytes[28..36], b"OpusHead");
        assert_eq!(bytes[37], 2);
        assert_eq!(u16::from_le_bytes([bytes[38], bytes[39]]), 312);
        let (info, planes, tags) = decode(bytes);
        assert_eq!((info.codec.as_str(), info.sample_rate, planes[0].len()), ("opus", 48_000, 4800));
        assert!(tags.iter().any(|(_, v)| v == "Ünïcode"), "{tags:?}");
    }

    #[test]
    fn the_bitrate_steers_the_size() {
        lower_bitrate_is_smaller(AudioFormat::Opus, 32, 1000);
    }
}
