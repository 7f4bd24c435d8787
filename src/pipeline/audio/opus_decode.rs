//! Opus decoding, which symphonia 0.5 lacks: libopus (the `opus` crate) behind symphonia's own
//! `Decoder` trait, so the Ogg demuxer, the block loop and its bad-packet tolerance stay as they
//! are (`decode.rs` registers it beside symphonia's codecs).
//!
//! Ogg Opus (RFC 7845) decodes at 48 kHz; the first `pre-skip` samples (OpusHead) are the
//! encoder's warm-up and are dropped, and the stream ends where the last page's granule says:
//! symphonia reports that as `n_frames` (granule of the end page minus the start), so the real
//! length is `n_frames - pre_skip` and the padding of the last packet is cut. When the demuxer
//! could not read the end page (`n_frames` unknown) the tail is kept: at most one packet
//! (≤ 120 ms, 20 ms from usual encoders) of padding.
//!
//! Only channel mapping family 0 (mono or stereo, one Opus stream) is decoded; multistream
//! (families 1 and 255) is refused as unsupported.

use std::sync::Mutex;
use symphonia::core::audio::{AsAudioBufferRef, AudioBuffer, AudioBufferRef, Channels, Signal, SignalSpec};
use symphonia::core::codecs::{
    CodecDescriptor, CodecParameters, Decoder, DecoderOptions, FinalizeResult, CODEC_TYPE_OPUS,
};
use symphonia::core::errors::{Error, Result};
use symphonia::core::formats::Packet;

const RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms at 48 kHz.
const MAX_FRAMES: usize = 5760;

const DESCRIPTORS: &[CodecDescriptor] = &[CodecDescriptor {
    codec: CODEC_TYPE_OPUS,
    short_name: "opus",
    long_name: "Opus (libopus)",
    inst_func: instantiate,
}];

fn instantiate(params: &CodecParameters, options: &DecoderOptions) -> Result<Box<dyn Decoder>> {
    Ok(Box::new(OpusDecoder::try_new(params, options)?))
}

/// What OpusHead (the track's `extra_data`) says.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OpusHead {
    channels: usize,
    pre_skip: u64,
    /// Q7.8 dB, to apply to the output.
    gain: i16,
}

impl OpusHead {
    fn parse(head: &[u8]) -> Result<OpusHead> {
        if head.len() < 19 || !head.starts_with(b"OpusHead") {
            return Err(Error::DecodeError("opus: the stream has no valid OpusHead"));
        }
        let family = head[18];
        let channels = usize::from(head[9]);
        if family != 0 {
            return Err(Error::Unsupported("multichannel Opus (channel mapping family 1 or 255, multistream)"));
        }
        if !(1..=2).contains(&channels) {
            return Err(Error::DecodeError("opus: mapping family 0 with other than 1 or 2 channels"));
        }
        Ok(OpusHead {
            channels,
            pre_skip: u64::from(u16::from_le_bytes([head[10], head[11]])),
            gain: i16::from_le_bytes([head[16], head[17]]),
        })
    }
}

pub(super) struct OpusDecoder {
    params: CodecParameters,
    /// libopus state is `Send` but not `Sync`; symphonia's trait wants both. Only ever reached
    /// through `get_mut`, so the lock is never taken.
    opus: Mutex<opus::Decoder>,
    channels: usize,
    /// Interleaved output of one packet.
    pcm: Vec<f32>,
    buf: AudioBuffer<f32>,
    /// Pre-skip samples still to drop.
    skip: u64,
    /// Samples still to hand out, when the stream's end is known.
    remaining: Option<u64>,
}

impl Decoder for OpusDecoder {
    fn try_new(params: &CodecParameters, _options: &DecoderOptions) -> Result<Self> {
        let head = OpusHead::parse(params.extra_data.as_deref().unwrap_or_default())?;
        let layout = if head.channels == 1 { opus::Channels::Mono } else { opus::Channels::Stereo };
        let mut opus =
            opus::Decoder::new(RATE, layout).map_err(|_| Error::DecodeError("opus: libopus refused the decoder"))?;
        if head.gain != 0 {
            opus.set_gain(i32::from(head.gain)).map_err(|_| Error::DecodeError("opus: invalid output gain"))?;
        }
        let positions =
            if head.channels == 1 { Channels::FRONT_LEFT } else { Channels::FRONT_LEFT | Channels::FRONT_RIGHT };
        let remaining = params.n_frames.map(|n| n.saturating_sub(head.pre_skip));
        let mut params = params.clone();
        params.with_sample_rate(RATE).with_channels(positions).with_delay(head.pre_skip as u32);
        // what this decoder hands out: the real length
        params.n_frames = remaining;
        Ok(OpusDecoder {
            remaining,
            params,
            opus: Mutex::new(opus),
            channels: head.channels,
            pcm: vec![0.0; MAX_FRAMES * head.channels],
            buf: AudioBuffer::new(MAX_FRAMES as u64, SignalSpec::new(RATE, positions)),
            skip: head.pre_skip,
        })
    }

    fn supported_codecs() -> &'static [CodecDescriptor] {
        DESCRIPTORS
    }

    fn reset(&mut self) {
        if let Ok(opus) = self.opus.get_mut() {
            // a failed reset leaves the state as it was: the next packets still decode
            let _ = opus.reset_state();
        }
    }

    fn codec_params(&self) -> &CodecParameters {
        &self.params
    }

    fn decode(&mut self, packet: &Packet) -> Result<AudioBufferRef<'_>> {
        let data = packet.buf();
        if data.is_empty() {
            // libopus would conceal a lost packet with up to 120 ms of invented audio
            return Err(Error::DecodeError("opus: empty packet"));
        }
        let opus = self.opus.get_mut().map_err(|_| Error::DecodeError("opus: decoder state poisoned"))?;
        let frames =
            opus.decode_float(data, &mut self.pcm, false).map_err(|_| Error::DecodeError("opus: invalid packet"))?;
        let dropped = self.skip.min(frames as u64) as usize;
        self.skip -= dropped as u64;
        let mut kept = frames - dropped;
        if let Some(remaining) = &mut self.remaining {
            kept = kept.min(usize::try_from(*remaining).unwrap_or(usize::MAX));
            *remaining -= kept as u64;
        }
        self.buf.clear();
        self.buf.render_reserved(Some(kept));
        for c in 0..self.channels {
            let interleaved = self.pcm[dropped * self.channels..].iter().skip(c).step_by(self.channels);
            for (out, &sample) in self.buf.chan_mut(c).iter_mut().zip(interleaved) {
                *out = sample;
            }
        }
        Ok(self.buf.as_audio_buffer_ref())
    }

    fn finalize(&mut self) -> FinalizeResult {
        FinalizeResult::default()
    }

    fn last_decoded(&self) -> AudioBufferRef<'_> {
        self.buf.as_audio_buffer_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;
    use crate::pipeline::{Budget, Limits, PipelineError};

    fn fixture(name: &str) -> bytes::Bytes {
        let path = format!("{}/fixtures/audio/{name}", env!("CARGO_MANIFEST_DIR"));
        bytes::Bytes::from(std::fs::read(path).expect("fixture"))
    }

    /// The duration MANIFEST.tsv states for a fixture, in seconds.
    fn manifest_duration(name: &str) -> f64 {
        let manifest = std::fs::read_to_string(format!("{}/fixtures/audio/MANIFEST.tsv", env!("CARGO_MANIFEST_DIR")))
            .expect("manifest");
        let line = manifest.lines().find(|l| l.starts_with(&format!("{name}\t"))).expect("listed");
        let description = line.split('\t').nth(2).expect("description");
        description.split_whitespace().last().and_then(|d| d.parse().ok()).expect("a duration")
    }

    fn decoded(bytes: bytes::Bytes) -> (decode::StreamInfo, usize) {
        let (mut decoder, _) = decode::open(bytes).expect("open");
        let budget = Budget::start(Limits::default());
        let mut frames = 0;
        while let Some(block) = decoder.next_block(&budget).expect("block") {
            assert!(block.planes.iter().all(|p| p.len() == block.frames()));
            frames += block.frames();
        }
        (decoder.info.clone(), frames)
    }

    /// The last page's granule and OpusHead's pre-skip, read from the bytes.
    fn granule_and_pre_skip(bytes: &[u8]) -> (u64, u64) {
        let last = bytes.windows(4).rposition(|w| w == b"OggS").expect("a page");
        let granule = u64::from_le_bytes(bytes[last + 6..last + 14].try_into().expect("8 bytes"));
        let head = bytes.windows(8).position(|w| w == b"OpusHead").expect("OpusHead");
        (granule, u64::from(u16::from_le_bytes([bytes[head + 10], bytes[head + 11]])))
    }

    #[test]
    fn fixtures_decode_to_their_stated_duration() {
        for (name, channels) in [("ok/example.opus", 1), ("ok/music-30s.opus", 2)] {
            let bytes = fixture(name);
            let (granule, pre_skip) = granule_and_pre_skip(&bytes);
            let (info, frames) = decoded(bytes);
            assert_eq!((info.codec.as_str(), info.sample_rate, info.channels), ("opus", 48_000, channels));
            // RFC 7845: the playable length is the last granule less the pre-skip, to the sample
            assert_eq!(frames as u64, granule - pre_skip, "{name}");
            assert_eq!(info.frames, Some(frames as u64));
            // MANIFEST.tsv has ffprobe's container duration, which is the last granule: it counts
            // the pre-skip (312 samples, 6.5 ms, in music-30s.opus; 65 535, 1.365 s, in
            // mutagen's example.opus, which ffmpeg also skips when it decodes)
            let stated = manifest_duration(name);
            let secs = (frames as u64 + pre_skip) as f64 / 48_000.0;
            assert!((secs - stated).abs() < 0.020, "{name}: {secs} s with pre-skip, MANIFEST says {stated} s");
        }
        let (_, frames) = decoded(fixture("ok/music-30s.opus"));
        let secs = frames as f64 / 48_000.0;
        assert!((secs - manifest_duration("ok/music-30s.opus")).abs() < 0.020, "{secs}");
    }

    #[test]
    fn multistream_is_unsupported_and_heads_are_checked() {
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 6, 0x38, 1, 0x80, 0xBB, 0, 0, 0, 0, 1, 4, 2, 0, 4, 1, 2, 3, 5]);
        assert!(matches!(OpusHead::parse(&head), Err(Error::Unsupported(_))));
        head[18] = 0;
        assert!(matches!(OpusHead::parse(&head), Err(Error::DecodeError(_))));
        head[9] = 2;
        assert_eq!(OpusHead::parse(&head).ok().map(|h| (h.channels, h.pre_skip)), Some((2, 312)));
        assert!(OpusHead::parse(b"OpusHead").is_err());
    }

    /// An Ogg Opus stream (valid pages and CRCs) around the given packets, 20 ms each.
    fn ogg_opus(packets: &[Vec<u8>]) -> bytes::Bytes {
        use ogg::writing::{PacketWriteEndInfo, PacketWriter};
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 1, 0x38, 1, 0x80, 0xBB, 0, 0, 0, 0, 0]);
        let mut tags = b"OpusTags".to_vec();
        tags.extend_from_slice(&[1, 0, 0, 0, b'x', 0, 0, 0, 0]);
        let mut ogg = PacketWriter::new(Vec::new());
        let end = PacketWriteEndInfo::EndPage;
        ogg.write_packet(head, 1, end, 0).expect("head");
        ogg.write_packet(tags, 1, end, 0).expect("tags");
        for (i, packet) in packets.iter().enumerate() {
            let last = i + 1 == packets.len();
            let end = if last { PacketWriteEndInfo::EndStream } else { PacketWriteEndInfo::NormalPacket };
            ogg.write_packet(packet.clone(), 1, end, 960 * (i as u64 + 1)).expect("packet");
        }
        bytes::Bytes::from(ogg.into_inner())
    }

    fn decode_all(bytes: bytes::Bytes) -> std::result::Result<usize, PipelineError> {
        let (mut decoder, _) = decode::open(bytes)?;
        let budget = Budget::start(Limits::default());
        let mut frames = 0;
        while let Some(block) = decoder.next_block(&budget)? {
            frames += block.frames();
        }
        Ok(frames)
    }

    #[test]
    fn corrupt_packets_are_skipped_or_refused_never_a_panic() {
        // a silent 20 ms CELT packet (TOC config 31, one frame) decodes; 0xFF 0xFF (code 3,
        // 63 frames: over 120 ms) and an empty packet do not
        let good = vec![0xF8, 0xFF, 0xFE];
        let bad = vec![0xFF, 0xFF];
        let mut packets = vec![good.clone(); 20];
        packets[5] = bad.clone();
        packets[6] = Vec::new();
        // the two bad packets are skipped: 18 good packets less the pre-skip
        assert_eq!(decode_all(ogg_opus(&packets)).expect("decodes"), 18 * 960 - 312);
        // nothing but bad packets: refused as corrupt
        assert!(matches!(decode_all(ogg_opus(&vec![bad; 40])), Err(PipelineError::Corrupt(_))));
        // random bytes: any outcome but a panic
        let mut x = 0x9E37_79B9u32;
        let random: Vec<Vec<u8>> = (0..60)
            .map(|i| {
                (0..(i % 7) * 13 + 1)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        x as u8
                    })
                    .collect()
            })
            .collect();
        let _ = decode_all(ogg_opus(&random));
    }
}
