//! Audio decoding with symphonia: probe the container, pick the first audio track, and hand out
//! decoded blocks one packet at a time (planar `f32`), so no caller ever holds the whole PCM.
//! Every failure of hostile or broken input is a typed 4xx error, never a panic. Opus, which
//! symphonia 0.5 does not decode, goes through libopus (`opus_decode.rs`) behind the same trait.
//! An MP4 track's edit list, which symphonia 0.5 ignores, is honoured here (`mp4_edit.rs`): the
//! AAC priming is dropped and the padding cut, so M4A lengths are exact.

use super::mp4_edit;

use super::super::{Budget, PipelineError, Result};
use bytes::Bytes;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{
    CodecRegistry, Decoder as CodecDecoder, DecoderOptions, CODEC_TYPE_NULL, CODEC_TYPE_OPUS,
};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::{Hint, ProbeResult};

/// Sane bounds on what a stream may declare: beyond them a header is lying or hostile.
const MAX_CHANNELS: usize = 32;
const MAX_SAMPLE_RATE: u32 = 768_000;
/// Packets that fail to decode in a row before the file is called corrupt (one bad frame in a
/// long MP3 is skipped, as players do).
const MAX_BAD_PACKETS: u32 = 16;

/// What the stream says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    pub codec: String,
    pub sample_rate: u32,
    /// 0 until the first block when the container does not say.
    pub channels: usize,
    pub bits_per_sample: Option<u32>,
    /// Frames the container announces (not all do).
    pub frames: Option<u64>,
}

/// One decoded block: `channels` planes of `frames` samples each.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Block {
    pub planes: Vec<Vec<f32>>,
}

impl Block {
    pub fn frames(&self) -> usize {
        self.planes.first().map_or(0, Vec::len)
    }
}

pub struct AudioDecoder {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn CodecDecoder>,
    track: u32,
    pub info: StreamInfo,
    /// The decoder's scratch buffer, reused across packets.
    scratch: Option<SampleBuffer<f32>>,
    /// Frames still to hand out when the container states the end exactly (Ogg: the last
    /// page's granule). symphonia 0.5 trims Ogg Vorbis to it, except when all the audio is on
    /// one page (short clips): it then takes the end padding for a start delay and trims nothing.
    /// MP4: the edit list's duration.
    remaining: Option<u64>,
    /// Frames still to drop at the start (an MP4 edit list's media time: the AAC priming).
    skip: u64,
}

/// Open `bytes` as audio: the container probed from its content, the first decodable track.
pub fn open(bytes: Bytes) -> Result<(AudioDecoder, ProbeResultMeta)> {
    if bytes.is_empty() {
        return Err(PipelineError::Empty);
    }
    ogg_is_complete(&bytes)?;
    let ogg = bytes.starts_with(b"OggS");
    let edit = mp4_edit::audio_edit(&bytes);
    let mss = MediaSourceStream::new(Box::new(std::io::Cursor::new(bytes)), MediaSourceStreamOptions::default());
    let options = FormatOptions { enable_gapless: true, ..FormatOptions::default() };
    let ProbeResult { mut format, metadata } = symphonia::default::get_probe()
        .format(&Hint::new(), mss, &options, &MetadataOptions::default())
        .map_err(|e| unreadable("the source is not audio Refract can read", e))?;
    let (track, params) = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .map(|t| (t.id, t.codec_params.clone()))
        .ok_or_else(|| PipelineError::Unsupported("the file has no audio track".into()))?;
    let decoder = codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| unreadable("the audio codec is not supported", e))?;
    // some containers leave the channels to the codec's own configuration (AAC in MP4)
    let mut params = params;
    if params.channels.is_none() {
        params.channels = decoder.codec_params().channels;
    }
    // the Opus decoder drops the pre-skip itself: its length is the real one
    if params.codec == CODEC_TYPE_OPUS {
        params.n_frames = decoder.codec_params().n_frames;
    }
    if let Some(edit) = edit {
        params.n_frames = edit.frames(params.n_frames);
    }
    let info = stream_info(&params)?;
    let meta = ProbeResultMeta::gather(metadata, format.as_mut());
    let remaining = if ogg || edit.is_some() { params.n_frames } else { None };
    let skip = edit.map_or(0, |e| e.skip);
    Ok((AudioDecoder { format, decoder, track, info, scratch: None, remaining, skip }, meta))
}

/// symphonia's codecs and libopus for Opus.
fn codecs() -> &'static CodecRegistry {
    static REGISTRY: std::sync::OnceLock<CodecRegistry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        registry.register_all::<super::opus_decode::OpusDecoder>();
        registry
    })
}

/// An Ogg stream must end with a page flagged end-of-stream: without it the file was cut (a
/// partial download or upload), and its length is whatever survived.
fn ogg_is_complete(bytes: &[u8]) -> Result<()> {
    if !bytes.starts_with(b"OggS") {
        return Ok(());
    }
    // the last page starts at the last capture pattern (pages are at most 65 307 bytes)
    let tail = &bytes[bytes.len().saturating_sub(65_307 + 27)..];
    let last = tail.windows(4).rposition(|w| w == b"OggS");
    match last.and_then(|at| tail.get(at + 5)) {
        Some(flags) if flags & 0x04 != 0 => Ok(()),
        _ => Err(PipelineError::Corrupt("the Ogg stream has no end page: the file is truncated".into())),
    }
}

fn stream_info(params: &symphonia::core::codecs::CodecParameters) -> Result<StreamInfo> {
    let codec = codecs()
        .get_codec(params.codec)
        .map(|d| d.short_name.to_string())
        .ok_or_else(|| PipelineError::Unsupported("the audio codec is not supported".into()))?;
    let sample_rate = params.sample_rate.unwrap_or(0);
    if !(1..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(PipelineError::Corrupt(format!("the stream declares a sample rate of {sample_rate} Hz")));
    }
    // 0: not declared; the first decoded block tells (AAC in MP4 leaves it to the bitstream)
    let channels = params.channels.map_or(0, |c| c.count());
    if channels > MAX_CHANNELS || params.channels.is_some_and(|_| channels == 0) {
        return Err(PipelineError::Corrupt(format!("the stream declares {channels} channels")));
    }
    Ok(StreamInfo { codec, sample_rate, channels, bits_per_sample: params.bits_per_sample, frames: params.n_frames })
}

/// A symphonia failure as a client error: unsupported when it says so, corrupt otherwise.
fn unreadable(what: &str, e: SymphoniaError) -> PipelineError {
    match e {
        SymphoniaError::Unsupported(_) => PipelineError::Unsupported(format!("{what} ({e})")),
        other => PipelineError::Corrupt(format!("{what}: {other}")),
    }
}

impl AudioDecoder {
    /// The next decoded block, `None` at the end. A packet that fails to decode is skipped, up
    /// to `MAX_BAD_PACKETS` in a row; the budget is checked between packets.
    pub fn next_block(&mut self, budget: &Budget) -> Result<Option<Block>> {
        let mut bad = 0;
        loop {
            budget.check()?;
            if self.remaining == Some(0) {
                return Ok(None);
            }
            let packet = match self.format.next_packet() {
                Ok(p) => p,
                Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(SymphoniaError::ResetRequired) => return Ok(None),
                Err(e) => return Err(unreadable("the audio stream is damaged", e)),
            };
            if packet.track_id() != self.track {
                continue;
            }
            match self.decoder.decode(&packet) {
                Ok(decoded) => {
                    let block = planar(&mut self.scratch, &mut self.info.channels, decoded)?;
                    if let Some(block) = skip_start(&mut self.skip, block) {
                        return Ok(Some(clip_to_end(&mut self.remaining, block)));
                    }
                }
                Err(SymphoniaError::DecodeError(_)) if bad < MAX_BAD_PACKETS => bad += 1,
                Err(e) => return Err(unreadable("the audio stream is damaged", e)),
            }
        }
    }
}

/// `block` without the frames still to skip; `None` when it had no others.
fn skip_start(skip: &mut u64, mut block: Block) -> Option<Block> {
    if *skip == 0 {
        return Some(block);
    }
    let frames = block.frames();
    let drop = frames.min(usize::try_from(*skip).unwrap_or(usize::MAX));
    *skip -= drop as u64;
    for plane in &mut block.planes {
        plane.drain(..drop);
    }
    (drop < frames).then_some(block)
}

/// `block` without what lies past the stream's stated end.
fn clip_to_end(remaining: &mut Option<u64>, mut block: Block) -> Block {
    if let Some(remaining) = remaining {
        let keep = block.frames().min(usize::try_from(*remaining).unwrap_or(usize::MAX));
        for plane in &mut block.planes {
            plane.truncate(keep);
        }
        *remaining -= keep as u64;
    }
    block
}

/// A decoded buffer as planes of `f32`, through a scratch buffer reused across packets.
fn planar(
    scratch: &mut Option<SampleBuffer<f32>>,
    expected: &mut usize,
    decoded: symphonia::core::audio::AudioBufferRef<'_>,
) -> Result<Block> {
    let spec = *decoded.spec();
    let channels = spec.channels.count();
    if *expected == 0 && (1..=MAX_CHANNELS).contains(&channels) {
        *expected = channels;
    }
    if channels != *expected {
        return Err(PipelineError::Corrupt("the stream changes its channel count".into()));
    }
    let frames = decoded.frames();
    let capacity = decoded.capacity();
    let scratch = match scratch {
        Some(s) if s.capacity() >= capacity * channels => s,
        slot => slot.insert(SampleBuffer::new(capacity as u64, spec)),
    };
    scratch.copy_planar_ref(decoded);
    let samples = scratch.samples();
    let planes = (0..channels).map(|c| samples[c * frames..(c + 1) * frames].to_vec()).collect();
    Ok(Block { planes })
}

/// Tags and cover art, from the container and from what preceded it (ID3).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProbeResultMeta {
    /// Standard tags by their lower-case key (`title`, `artist`, `album`, `track`, `date`…).
    pub tags: Vec<(String, String)>,
    /// Embedded pictures: media type and bytes.
    pub covers: Vec<(String, Bytes)>,
}

impl ProbeResultMeta {
    fn gather(mut outer: symphonia::core::probe::ProbedMetadata, format: &mut dyn FormatReader) -> ProbeResultMeta {
        let mut meta = ProbeResultMeta::default();
        let outer = outer.get();
        let revisions = outer.as_ref().and_then(|m| m.current().cloned()).into_iter();
        let inner = format.metadata().current().cloned();
        for revision in revisions.chain(inner) {
            for tag in revision.tags() {
                if let Some(key) = tag.std_key.map(|k| format!("{k:?}").to_lowercase()) {
                    if !meta.tags.iter().any(|(k, _)| *k == key) {
                        // RIFF INFO strings keep their NUL terminator in symphonia
                        meta.tags.push((key, tag.value.to_string().trim_end_matches('\0').to_string()));
                    }
                }
            }
            for visual in revision.visuals() {
                meta.covers.push((visual.media_type.clone(), Bytes::copy_from_slice(&visual.data)));
            }
        }
        meta
    }
}
