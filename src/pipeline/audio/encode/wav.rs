//! WAV: 16- or 24-bit integer PCM, written as it comes: the RIFF header (`fmt `, then a
//! `LIST`/`INFO` chunk with `INAM` for the title: readers, symphonia among them, take INFO only
//! before the data), the `data` chunk, and at the end the two sizes written over.

use super::{block_frames, finish_sink, output_error, to_int, EncodeSpec, Encoder, PipelineError, Result};
use crate::pipeline::output::{Output, Sink};
use std::io::{Seek, SeekFrom, Write};

const WHAT: &str = "WAV encoder";

/// A RIFF file's sizes are 32-bit: stop well before they wrap.
const MAX_DATA_BYTES: u64 = u32::MAX as u64 - (1 << 20);

/// KSDATAFORMAT_SUBTYPE_PCM, for WAVE_FORMAT_EXTENSIBLE.
const PCM_GUID: [u8; 16] = [1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71];

pub(super) struct WavEncoder {
    sink: Sink,
    channels: usize,
    bits: u16,
    /// Where the `data` chunk's header starts.
    data_at: u64,
    data_bytes: u64,
    /// One block, interleaved little-endian.
    scratch: Vec<u8>,
}

impl WavEncoder {
    pub(super) fn new(spec: &EncodeSpec, mut sink: Sink) -> Result<WavEncoder> {
        let mut header = b"RIFF\0\0\0\0WAVE".to_vec();
        header.extend_from_slice(&fmt_chunk(spec));
        if let Some(title) = spec.title.as_deref().filter(|t| !t.is_empty()) {
            header.extend_from_slice(&info_chunk(title));
        }
        let data_at = header.len() as u64;
        header.extend_from_slice(b"data\0\0\0\0");
        sink.write_all(&header).map_err(output_error(WHAT))?;
        Ok(WavEncoder {
            sink,
            channels: usize::from(spec.channels),
            bits: spec.bits,
            data_at,
            data_bytes: 0,
            scratch: Vec::new(),
        })
    }
}

/// The `fmt ` chunk: plain PCM for mono and stereo 16-bit, WAVE_FORMAT_EXTENSIBLE (with a channel
/// mask) for more channels or more bits, as the format asks.
fn fmt_chunk(spec: &EncodeSpec) -> Vec<u8> {
    let (channels, bits, rate) = (spec.channels, spec.bits, spec.sample_rate);
    let align = channels * (bits / 8);
    let extensible = channels > 2 || bits > 16;
    let mut body = Vec::with_capacity(40);
    body.extend_from_slice(&(if extensible { 0xFFFEu16 } else { 1 }).to_le_bytes());
    body.extend_from_slice(&channels.to_le_bytes());
    body.extend_from_slice(&rate.to_le_bytes());
    body.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
    body.extend_from_slice(&align.to_le_bytes());
    body.extend_from_slice(&bits.to_le_bytes());
    if extensible {
        // the speakers in their standard order, as far as the mask's 18 defined positions go
        let mask: u32 = if channels <= 18 { (1u32 << channels) - 1 } else { 0 };
        body.extend_from_slice(&22u16.to_le_bytes());
        body.extend_from_slice(&bits.to_le_bytes());
        body.extend_from_slice(&mask.to_le_bytes());
        body.extend_from_slice(&PCM_GUID);
    }
    chunk(b"fmt ", &body)
}

/// `LIST`/`INFO` with `INAM`: the title, NUL-terminated.
fn info_chunk(title: &str) -> Vec<u8> {
    let mut text = title.as_bytes().to_vec();
    text.push(0);
    let mut info = b"INFO".to_vec();
    info.extend_from_slice(&chunk(b"INAM", &text));
    chunk(b"LIST", &info)
}

/// A RIFF chunk: id, size, body, a pad byte when the size is odd.
fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + body.len() + 1);
    out.extend_from_slice(id);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    if body.len() % 2 == 1 {
        out.push(0);
    }
    out
}

impl Encoder for WavEncoder {
    fn push(&mut self, planes: &[&[f32]]) -> Result<()> {
        let frames = block_frames(WHAT, planes, self.channels)?;
        let bytes = usize::from(self.bits / 8);
        self.data_bytes += (frames * self.channels * bytes) as u64;
        if self.data_bytes > MAX_DATA_BYTES {
            return Err(PipelineError::OverLimit("the WAV output would pass the format's 4 GiB".into()));
        }
        self.scratch.clear();
        for i in 0..frames {
            for plane in planes {
                self.scratch.extend_from_slice(&to_int(plane[i], self.bits).to_le_bytes()[..bytes]);
            }
        }
        self.sink.write_all(&self.scratch).map_err(output_error(WHAT))
    }

    fn finish(self: Box<Self>) -> Result<Output> {
        let WavEncoder { mut sink, data_at, data_bytes, .. } = *self;
        let io = output_error(WHAT);
        if data_bytes % 2 == 1 {
            sink.write_all(&[0]).map_err(&io)?;
        }
        let end = sink.stream_position().map_err(&io)?;
        let riff = u32::try_from(end - 8).map_err(|_| PipelineError::codec(WHAT, "a RIFF over 4 GiB"))?;
        sink.seek(SeekFrom::Start(4)).map_err(&io)?;
        sink.write_all(&riff.to_le_bytes()).map_err(&io)?;
        sink.seek(SeekFrom::Start(data_at + 4)).map_err(&io)?;
        sink.write_all(&(data_bytes as u32).to_le_bytes()).map_err(&io)?;
        finish_sink(WHAT, sink)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::plan::audio::AudioFormat;

    #[test]
    fn sixteen_bit_stereo_round_trips_exactly() {
        round_trip(&spec(AudioFormat::Wav, 44_100, 2));
    }

    #[test]
    fn twenty_four_bit_keeps_its_depth_and_samples() {
        lossless_at_24_bits(AudioFormat::Wav, 44_100);
    }

    #[test]
    fn the_title_is_an_info_chunk_before_the_data() {
        let mut spec = spec(AudioFormat::Wav, 22_050, 1);
        spec.title = Some("Morning ☀ song".into());
        let (info, planes, tags) = decode(encode(&spec, &sine(22_050, 1, 30_001)));
        assert_eq!((info.sample_rate, planes[0].len()), (22_050, 30_001));
        assert!(tags.iter().any(|(_, v)| v == "Morning ☀ song"), "{tags:?}");
    }

    #[test]
    fn many_channels_and_odd_sizes_are_valid_riff() {
        let mut spec = spec(AudioFormat::Wav, 8_000, 3);
        spec.bits = 24;
        let bytes = encode(&spec, &sine(8_000, 3, 1001));
        // 1001 frames × 9 bytes is odd: a pad byte, which the RIFF size counts
        assert_eq!(bytes.len() % 2, 0);
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize, bytes.len() - 8);
        let (info, planes, _) = decode(bytes);
        assert_eq!((info.channels, info.bits_per_sample, planes[2].len()), (3, Some(24), 1001));
    }
}
