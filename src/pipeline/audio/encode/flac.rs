//! FLAC through flacenc's frame-level API: one fixed block of `BLOCK` frames at a time, each
//! written out as soon as it is full, so only one block of PCM is ever held. The header
//! (`fLaC`, STREAMINFO, a VORBIS_COMMENT with the title) has a fixed size, so it is reserved
//! first and written over at the end with the final totals and MD5.

use super::{
    block_frames, comment_fields, finish_sink, output_error, to_int, vorbis_comment, EncodeSpec, Encoder,
    PipelineError, Result,
};
use crate::pipeline::output::{Output, Sink};
use flacenc::bitsink::MemSink;
use flacenc::component::{BitRepr, MetadataBlockData, Stream, StreamInfo};
use flacenc::error::{Verified, Verify};
use flacenc::source::{Context, Fill, FrameBuf};
use std::io::{Seek, SeekFrom, Write};

const WHAT: &str = "FLAC encoder";
/// Frames per FLAC block (flacenc's and libFLAC's default).
const BLOCK: usize = 4096;
/// VORBIS_COMMENT's metadata block type.
const VORBIS_COMMENT: u8 = 4;

pub(super) struct FlacEncoder {
    config: Verified<flacenc::config::Encoder>,
    info: StreamInfo,
    /// The block being filled, as little-endian samples of `bytes` each (what the MD5 covers).
    pending: Vec<u8>,
    bytes: usize,
    bits: u16,
    channels: usize,
    framebuf: FrameBuf,
    context: Context,
    comment: Option<Vec<u8>>,
    header_len: usize,
    /// The reserved header, then the frames.
    out: Sink,
    /// One encoded frame.
    frame: MemSink<u8>,
}

fn codec(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::codec(WHAT, e)
}

impl FlacEncoder {
    pub(super) fn new(spec: &EncodeSpec, out: Sink) -> Result<FlacEncoder> {
        let (channels, bits) = (usize::from(spec.channels), usize::from(spec.bits));
        let mut config = flacenc::config::Encoder::default();
        config.block_size = BLOCK;
        let config = config.into_verified().map_err(|(_, e)| codec(e))?;
        let info = StreamInfo::new(spec.sample_rate as usize, channels, bits).map_err(codec)?;
        let fields = comment_fields(spec.title.as_deref());
        let comment = (!fields.is_empty()).then(|| vorbis_comment("refract", &fields));
        let mut encoder = FlacEncoder {
            config,
            info,
            pending: Vec::with_capacity(BLOCK * channels * bits / 8),
            bytes: bits / 8,
            bits: spec.bits,
            channels,
            framebuf: FrameBuf::with_size(channels, BLOCK).map_err(codec)?,
            context: Context::new(bits, channels),
            comment,
            header_len: 0,
            out,
            frame: MemSink::new(),
        };
        let header = encoder.header()?;
        encoder.header_len = header.len();
        encoder.out.write_all(&header).map_err(output_error(WHAT))?;
        Ok(encoder)
    }

    /// `fLaC`, STREAMINFO as it stands, then the comment block if any.
    fn header(&self) -> Result<Vec<u8>> {
        let mut stream = Stream::with_stream_info(self.info.clone());
        if let Some(comment) = &self.comment {
            stream.add_metadata_block(MetadataBlockData::new_unknown(VORBIS_COMMENT, comment).map_err(codec)?);
        }
        let mut sink = MemSink::<u8>::new();
        stream.write(&mut sink).map_err(codec)?;
        Ok(sink.into_inner())
    }

    /// Encodes the pending samples (a full block, or the short last one) as one frame.
    fn flush_block(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut fill = (&mut self.framebuf, &mut self.context);
        fill.fill_le_bytes(&self.pending, self.bytes).map_err(codec)?;
        self.pending.clear();
        let number = self.context.current_frame_number().unwrap_or(0);
        let frame =
            flacenc::encode_fixed_size_frame(&self.config, &self.framebuf, number, &self.info).map_err(codec)?;
        self.info.update_frame_info(&frame);
        self.frame.clear();
        frame.write(&mut self.frame).map_err(codec)?;
        self.out.write_all(self.frame.as_slice()).map_err(output_error(WHAT))
    }
}

impl Encoder for FlacEncoder {
    fn push(&mut self, planes: &[&[f32]]) -> Result<()> {
        let frames = block_frames(WHAT, planes, self.channels)?;
        let block_bytes = BLOCK * self.channels * self.bytes;
        for i in 0..frames {
            for plane in planes {
                let sample = to_int(plane[i], self.bits).to_le_bytes();
                self.pending.extend_from_slice(&sample[..self.bytes]);
            }
            if self.pending.len() == block_bytes {
                self.flush_block()?;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<Output> {
        self.flush_block()?;
        let total = self.context.total_samples();
        let info = &mut self.info;
        // fixed-block stream: a short last block must not become `min_block_size`, or readers
        // (symphonia) take the stream for variable-block
        info.set_block_sizes(BLOCK, BLOCK).map_err(codec)?;
        if total == 0 {
            info.set_frame_sizes(0, 0).map_err(codec)?;
        }
        info.set_total_samples(total);
        info.set_md5_digest(&self.context.md5_digest());
        let header = self.header()?;
        if header.len() != self.header_len {
            return Err(codec("the header grew"));
        }
        let mut out = self.out;
        out.seek(SeekFrom::Start(0)).and_then(|_| out.write_all(&header)).map_err(output_error(WHAT))?;
        finish_sink(WHAT, out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::plan::audio::AudioFormat;

    #[test]
    fn sixteen_bit_stereo_round_trips_exactly() {
        round_trip(&spec(AudioFormat::Flac, 44_100, 2));
    }

    #[test]
    fn twenty_four_bit_is_lossless() {
        lossless_at_24_bits(AudioFormat::Flac, 48_000);
    }

    #[test]
    fn streaminfo_has_totals_md5_and_the_title_a_comment() {
        let mut spec = spec(AudioFormat::Flac, 22_050, 1);
        spec.title = Some("Ünïcode title".into());
        let bytes = encode(&spec, &sine(22_050, 1, 10_000));
        // STREAMINFO: 8 bytes of header, then sizes; total samples are the low 36 bits of 10..18
        let total = u64::from_be_bytes(bytes[18..26].try_into().expect("8 bytes")) & 0xF_FFFF_FFFF;
        assert_eq!(total, 10_000);
        assert!(bytes[26..42].iter().any(|&b| b != 0), "an MD5");
        let (info, planes, tags) = decode(bytes);
        assert_eq!((info.frames, planes[0].len()), (Some(10_000), 10_000));
        assert!(tags.iter().any(|(_, v)| v == "Ünïcode title"), "{tags:?}");
    }
}
