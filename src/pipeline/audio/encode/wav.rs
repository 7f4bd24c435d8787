//! WAV: 16- or 24-bit integer PCM through hound, the title as a `LIST`/`INFO` `INAM` chunk.

use super::{block_frames, to_int, EncodeSpec, Encoder, PipelineError, Result};
use std::io::{self, BufWriter, Cursor, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

const WHAT: &str = "WAV encoder";

/// A RIFF file's sizes are 32-bit: stop well before they wrap.
const MAX_DATA_BYTES: u64 = u32::MAX as u64 - (1 << 20);

pub(super) struct WavEncoder {
    writer: hound::WavWriter<BufWriter<Shared>>,
    /// The bytes hound writes into, shared because hound never hands its writer back.
    buffer: Shared,
    channels: usize,
    bits: u16,
    data_bytes: u64,
    title: Option<String>,
}

impl WavEncoder {
    pub(super) fn new(spec: &EncodeSpec) -> Result<WavEncoder> {
        let wav = hound::WavSpec {
            channels: spec.channels,
            sample_rate: spec.sample_rate,
            bits_per_sample: spec.bits,
            sample_format: hound::SampleFormat::Int,
        };
        let buffer = Shared(Arc::new(Mutex::new(Cursor::new(Vec::new()))));
        let writer = hound::WavWriter::new(BufWriter::with_capacity(1 << 16, buffer.clone()), wav)
            .map_err(|e| PipelineError::codec(WHAT, e))?;
        Ok(WavEncoder {
            writer,
            buffer,
            channels: usize::from(spec.channels),
            bits: spec.bits,
            data_bytes: 0,
            title: spec.title.clone().filter(|t| !t.is_empty()),
        })
    }
}

impl Encoder for WavEncoder {
    fn push(&mut self, planes: &[&[f32]]) -> Result<()> {
        let frames = block_frames(WHAT, planes, self.channels)?;
        self.data_bytes += (frames * self.channels) as u64 * u64::from(self.bits / 8);
        if self.data_bytes > MAX_DATA_BYTES {
            return Err(PipelineError::OverLimit("the WAV output would pass the format's 4 GiB".into()));
        }
        let bits = self.bits;
        for i in 0..frames {
            for plane in planes {
                let sample = to_int(plane[i], bits);
                let written =
                    if bits == 16 { self.writer.write_sample(sample as i16) } else { self.writer.write_sample(sample) };
                written.map_err(|e| PipelineError::codec(WHAT, e))?;
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>> {
        let WavEncoder { writer, buffer, title, .. } = *self;
        writer.finalize().map_err(|e| PipelineError::codec(WHAT, e))?;
        let mut out = Arc::try_unwrap(buffer.0)
            .map_err(|_| PipelineError::codec(WHAT, "the output is still shared"))?
            .into_inner()
            .map_err(|_| PipelineError::codec(WHAT, "the output lock is poisoned"))?
            .into_inner();
        if let Some(title) = title {
            insert_info(&mut out, &title)?;
        }
        Ok(out)
    }
}

/// Inserts a `LIST`/`INFO` chunk with `INAM` (the title) before the `data` chunk (readers,
/// symphonia among them, take INFO only there) and grows the RIFF size to match. The tail moves
/// once, in place.
fn insert_info(out: &mut Vec<u8>, title: &str) -> Result<()> {
    let data_at = data_chunk(out).ok_or_else(|| PipelineError::codec(WHAT, "hound wrote no data chunk"))?;
    let mut text = title.as_bytes().to_vec();
    text.push(0);
    let mut list = b"LIST".to_vec();
    let padded = text.len() + text.len() % 2;
    list.extend_from_slice(&((4 + 8 + padded) as u32).to_le_bytes());
    list.extend_from_slice(b"INFOINAM");
    list.extend_from_slice(&(text.len() as u32).to_le_bytes());
    list.extend_from_slice(&text);
    list.resize(8 + 4 + 8 + padded, 0);
    let riff = u32::from_le_bytes([out[4], out[5], out[6], out[7]]);
    let riff = riff
        .checked_add(list.len() as u32)
        .ok_or_else(|| PipelineError::OverLimit("the WAV output would pass the format's 4 GiB".into()))?;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    out.reserve_exact(list.len());
    out.splice(data_at..data_at, list);
    Ok(())
}

/// The offset of the `data` chunk's header in a RIFF WAVE file.
fn data_chunk(riff: &[u8]) -> Option<usize> {
    let mut at = 12;
    while at + 8 <= riff.len() {
        if &riff[at..at + 4] == b"data" {
            return Some(at);
        }
        let size = u32::from_le_bytes(riff[at + 4..at + 8].try_into().ok()?) as usize;
        at += 8 + size + size % 2;
    }
    None
}

/// An in-memory `Write + Seek` that the encoder keeps a handle on while hound owns the writer.
#[derive(Clone)]
struct Shared(Arc<Mutex<Cursor<Vec<u8>>>>);

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut Cursor<Vec<u8>>) -> io::Result<T>) -> io::Result<T> {
        let mut cursor = self.0.lock().map_err(|_| io::Error::other("the output lock is poisoned"))?;
        f(&mut cursor)
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.with(|c| c.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Shared {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.with(|c| c.seek(pos))
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
}
