//! AAC-LC in M4A: libfdk-aac (the `fdk-aac` crate, raw access units of 1024 frames) and the
//! MP4 boxes written here, since no muxer on crates.io writes an edit list (muxide wants ADTS
//! input and brands `isom`; `mp4` writes an esds symphonia cannot read). The file is `ftyp`,
//! `mdat` (the access units, appended as they come), then `moov`: its `edts/elst` says where the
//! real audio lies (media time = the encoder delay, duration = the input's length), and an
//! iTunes `iTunSMPB` comment says the same for players that read that instead. Decoders that
//! honour either (ffmpeg, browsers, Apple; Refract's own through `mp4_edit.rs`) play exactly
//! the input's length.

use super::{block_frames, finish_sink, output_error, to_int, EncodeSpec, Encoder, PipelineError, Result};
use crate::pipeline::output::{Output, Sink};
use fdk_aac::enc::{AudioObjectType, BitRate, ChannelMode, EncoderParams, Transport};
use std::io::{Seek, SeekFrom, Write};

const WHAT: &str = "AAC encoder";
/// The rates libfdk-aac encodes, up to 48 kHz: an MP4 sample entry holds the rate in 16.16
/// fixed point (88.2 and 96 kHz do not fit, and symphonia 0.5 reads it from there), and 64 kHz
/// AAC is beyond some platform decoders (Windows' takes 8–48 kHz).
const RATES: [u32; 9] = [8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000];
/// Access units per chunk (`stco` entry): about a second at 44.1 kHz.
const CHUNK: usize = 43;
const FTYP: &[u8] = b"M4A \0\0\0\0M4A mp42isom";

/// The nearest rate libfdk-aac takes (ties to the higher).
pub(super) fn supported_rate(wanted: u32) -> u32 {
    RATES.iter().copied().min_by_key(|&r| (r.abs_diff(wanted), u32::MAX - r)).unwrap_or(44_100)
}

fn codec(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::codec(WHAT, e)
}

/// What the encoder says of its stream once configured.
struct Stream {
    rate: u32,
    channels: usize,
    /// Frames per access unit (1024 for AAC-LC).
    frame: usize,
    /// Frames of priming before the input starts in the decoded stream.
    delay: u64,
    /// The AudioSpecificConfig, for the esds.
    config: Vec<u8>,
    title: Option<String>,
}

pub(super) struct AacEncoder {
    fdk: fdk_aac::enc::Encoder,
    stream: Stream,
    /// Interleaved 16-bit samples waiting for a whole frame.
    pending: Vec<i16>,
    /// Frames of input taken so far (the real length).
    input: u64,
    /// `ftyp`, the `mdat` header (its size patched at the end), then the access units.
    out: Sink,
    /// The size of every access unit so far.
    sizes: Vec<u32>,
    packet: Vec<u8>,
}

impl AacEncoder {
    pub(super) fn new(spec: &EncodeSpec, mut out: Sink) -> Result<AacEncoder> {
        let channels = usize::from(spec.channels);
        let fdk = fdk_aac::enc::Encoder::new(EncoderParams {
            bit_rate: BitRate::Cbr(bitrate(spec)),
            sample_rate: spec.sample_rate,
            transport: Transport::Raw,
            channels: if channels == 1 { ChannelMode::Mono } else { ChannelMode::Stereo },
            audio_object_type: AudioObjectType::Mpeg4LowComplexity,
        })
        .map_err(codec)?;
        let info = fdk.info().map_err(codec)?;
        let config = info.confBuf.get(..info.confSize as usize).ok_or_else(|| codec("no AudioSpecificConfig"))?;
        let frame = info.frameLength as usize;
        if frame == 0 || config.is_empty() {
            return Err(codec(format!("a frame of {frame} samples and a {}-byte config", config.len())));
        }
        let stream = Stream {
            rate: spec.sample_rate,
            channels,
            frame,
            delay: u64::from(info.nDelay),
            config: config.to_vec(),
            title: spec.title.clone().filter(|t| !t.is_empty()),
        };
        let mut head = mp4_box(b"ftyp", &[FTYP]);
        head.extend_from_slice(&8u32.to_be_bytes());
        head.extend_from_slice(b"mdat");
        out.write_all(&head).map_err(output_error(WHAT))?;
        Ok(AacEncoder {
            fdk,
            pending: Vec::with_capacity(frame * channels),
            input: 0,
            out,
            sizes: Vec::new(),
            packet: vec![0; (info.maxOutBufBytes as usize).max(8192)],
            stream,
        })
    }

    /// Encodes the pending frame (zero-padded when short) and keeps the access units it yields.
    fn encode_pending(&mut self) -> Result<()> {
        self.pending.resize(self.stream.frame * self.stream.channels, 0);
        let mut at = 0;
        while at < self.pending.len() {
            let done = self.fdk.encode(&self.pending[at..], &mut self.packet).map_err(codec)?;
            if done.input_consumed == 0 && done.output_size == 0 {
                return Err(codec("the encoder took no input and gave no output"));
            }
            at += done.input_consumed;
            let unit = self.packet.get(..done.output_size).ok_or_else(|| codec("an access unit past its buffer"))?;
            if !unit.is_empty() {
                self.out.write_all(unit).map_err(output_error(WHAT))?;
                self.sizes.push(unit.len() as u32);
            }
        }
        self.pending.clear();
        Ok(())
    }

    /// Access units the stream needs: priming + input, whole frames (none for no input).
    fn units_needed(&self) -> u64 {
        if self.input == 0 {
            return 0;
        }
        (self.stream.delay + self.input).div_ceil(self.stream.frame as u64)
    }
}

/// The bitrate in bit/s: the spec's or the default, within what AAC-LC carries at the rate (at
/// most 6144 bits per channel per frame; libfdk-aac also clamps itself).
fn bitrate(spec: &EncodeSpec) -> u32 {
    let kbps = spec.bitrate_kbps.or(super::default_bitrate(spec.format, spec.channels)).unwrap_or(128);
    let most = 6 * spec.sample_rate * u32::from(spec.channels);
    kbps.saturating_mul(1000).clamp(8_000, most.max(8_000))
}

impl Encoder for AacEncoder {
    fn push(&mut self, planes: &[&[f32]]) -> Result<()> {
        let frames = block_frames(WHAT, planes, self.stream.channels)?;
        let whole = self.stream.frame * self.stream.channels;
        for i in 0..frames {
            self.pending.extend(planes.iter().map(|p| to_int(p[i], 16) as i16));
            if self.pending.len() == whole {
                self.encode_pending()?;
            }
        }
        self.input += frames as u64;
        Ok(())
    }

    /// Pads with silence until the access units cover priming + input (the wrapper has no
    /// flush), then writes the `mdat` size and the `moov`.
    fn finish(mut self: Box<Self>) -> Result<Output> {
        let needed = self.units_needed();
        // each padded frame yields one unit once the encoder's delay is filled
        let mut budget = self.stream.delay / self.stream.frame as u64 + 4;
        while (self.sizes.len() as u64) < needed {
            if budget == 0 {
                return Err(codec(format!("{} access units for the {needed} needed", self.sizes.len())));
            }
            budget -= 1;
            self.encode_pending()?;
        }
        self.sizes.truncate(needed as usize);
        let payload: u64 = self.sizes.iter().map(|&s| u64::from(s)).sum();
        let data_start = FTYP.len() + 16;
        let mdat = u32::try_from(payload + 8).map_err(|_| codec("an M4A over 4 GiB"))?;
        let moov = Layout { stream: &self.stream, sizes: &self.sizes, input: self.input, data_start }.moov()?;
        let mut out = self.out;
        let end = data_start as u64 + payload;
        // the units past what the stream needs go; the mdat's size is written over, the moov last
        let written = out
            .truncate(end)
            .and_then(|()| out.seek(SeekFrom::Start(FTYP.len() as u64 + 8)))
            .and_then(|_| out.write_all(&mdat.to_be_bytes()))
            .and_then(|()| out.seek(SeekFrom::Start(end)))
            .and_then(|_| out.write_all(&moov));
        written.map_err(output_error(WHAT))?;
        finish_sink(WHAT, out)
    }
}

/// A box: its size, its type, its payload in parts.
fn mp4_box(kind: &[u8; 4], parts: &[&[u8]]) -> Vec<u8> {
    let size: usize = 8 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(size as u32).to_be_bytes());
    out.extend_from_slice(kind);
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// A full box: version and flags before the payload.
fn full_box(kind: &[u8; 4], version: u8, flags: u32, parts: &[&[u8]]) -> Vec<u8> {
    let mut head = flags.to_be_bytes();
    head[0] = version;
    let mut all = vec![&head[..]];
    all.extend_from_slice(parts);
    mp4_box(kind, &all)
}

/// Big-endian bytes of a list of `u32`s.
fn be32(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// A time or duration: 32 bits in version 0 boxes, 64 in version 1.
fn time(value: u64, wide: bool) -> Vec<u8> {
    if wide {
        value.to_be_bytes().to_vec()
    } else {
        (value as u32).to_be_bytes().to_vec()
    }
}

/// The unity matrix of `mvhd` and `tkhd`.
const MATRIX: [u32; 9] = [0x1_0000, 0, 0, 0, 0x1_0000, 0, 0, 0, 0x4000_0000];

/// Where the access units lie, to describe them in the `moov`.
struct Layout<'a> {
    stream: &'a Stream,
    sizes: &'a [u32],
    input: u64,
    /// The file offset of the first access unit.
    data_start: usize,
}

impl Layout<'_> {
    /// Frames of media (priming, input, padding).
    fn media(&self) -> u64 {
        self.sizes.len() as u64 * self.stream.frame as u64
    }

    /// Whether the durations need version 1 boxes.
    fn wide(&self) -> bool {
        self.media() > u64::from(u32::MAX)
    }

    fn moov(&self) -> Result<Vec<u8>> {
        let wide = self.wide();
        // movie and media share the rate as timescale: the edit is in frames
        let mut mvhd = vec![0; 2 * time(0, wide).len()];
        mvhd.extend(be32(&[self.stream.rate]));
        mvhd.extend(time(self.input, wide));
        mvhd.extend(be32(&[0x1_0000]));
        mvhd.extend([1, 0, 0, 0].iter().chain(&[0; 8]));
        mvhd.extend(be32(&MATRIX));
        mvhd.extend(be32(&[0, 0, 0, 0, 0, 0, 2]));
        let mvhd = full_box(b"mvhd", u8::from(wide), 0, &[&mvhd]);
        Ok(mp4_box(b"moov", &[&mvhd, &self.trak()?, &self.udta()]))
    }

    fn trak(&self) -> Result<Vec<u8>> {
        let wide = self.wide();
        let mut tkhd = vec![0; 2 * time(0, wide).len()];
        tkhd.extend(be32(&[1, 0]));
        tkhd.extend(time(self.input, wide));
        // reserved, layer, alternate group, volume 1.0, reserved, matrix, width, height
        tkhd.extend([0; 12].iter().chain(&[1, 0, 0, 0]));
        tkhd.extend(be32(&MATRIX));
        tkhd.extend(be32(&[0, 0]));
        let tkhd = full_box(b"tkhd", u8::from(wide), 3, &[&tkhd]);
        let edts = if self.sizes.is_empty() { Vec::new() } else { self.edts() };
        Ok(mp4_box(b"trak", &[&tkhd, &edts, &self.mdia()?]))
    }

    /// One edit: from the end of the priming, the input's length.
    fn edts(&self) -> Vec<u8> {
        let wide = self.wide();
        let mut entry = be32(&[1]);
        entry.extend(time(self.input, wide));
        entry.extend(time(self.stream.delay, wide));
        entry.extend(be32(&[0x1_0000]));
        mp4_box(b"edts", &[&full_box(b"elst", u8::from(wide), 0, &[&entry])])
    }

    fn mdia(&self) -> Result<Vec<u8>> {
        let wide = self.wide();
        let mut mdhd = vec![0; 2 * time(0, wide).len()];
        mdhd.extend(be32(&[self.stream.rate]));
        mdhd.extend(time(self.media(), wide));
        // language `und`, packed in 5-bit letters
        mdhd.extend([0x55, 0xC4, 0, 0]);
        let mdhd = full_box(b"mdhd", u8::from(wide), 0, &[&mdhd]);
        let hdlr = full_box(b"hdlr", 0, 0, &[&[0; 4], b"soun", &[0; 12], b"SoundHandler\0"]);
        let smhd = full_box(b"smhd", 0, 0, &[&[0; 4]]);
        let dref = full_box(b"dref", 0, 0, &[&be32(&[1]), &full_box(b"url ", 0, 1, &[])]);
        let dinf = mp4_box(b"dinf", &[&dref]);
        let minf = mp4_box(b"minf", &[&smhd, &dinf, &self.stbl()?]);
        Ok(mp4_box(b"mdia", &[&mdhd, &hdlr, &minf]))
    }

    fn stbl(&self) -> Result<Vec<u8>> {
        let count = self.sizes.len() as u32;
        let stts = if count == 0 { be32(&[0]) } else { be32(&[1, count, self.stream.frame as u32]) };
        let stts = full_box(b"stts", 0, 0, &[&stts]);
        let mut stsz = be32(&[0, count]);
        stsz.extend(be32(self.sizes));
        let stsz = full_box(b"stsz", 0, 0, &[&stsz]);
        let (stsc, stco) = self.chunks()?;
        Ok(mp4_box(b"stbl", &[&self.stsd(), &stts, &stsz, &stsc, &stco]))
    }

    /// `stsc` (every chunk `CHUNK` units, the last the rest) and `stco` (each chunk's offset).
    fn chunks(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        let mut offsets = Vec::new();
        let mut at = self.data_start as u64;
        for chunk in self.sizes.chunks(CHUNK) {
            offsets.push(u32::try_from(at).map_err(|_| codec("an M4A over 4 GiB"))?);
            at += chunk.iter().map(|&s| u64::from(s)).sum::<u64>();
        }
        let (full, rest) = ((self.sizes.len() / CHUNK) as u32, (self.sizes.len() % CHUNK) as u32);
        let mut runs = Vec::new();
        if full > 0 {
            runs.push([1, CHUNK as u32, 1]);
        }
        if rest > 0 {
            runs.push([full + 1, rest, 1]);
        }
        let chunks = offsets.len() as u32;
        let mut stsc = be32(&[runs.len() as u32]);
        stsc.extend(runs.iter().flat_map(|r| be32(r)));
        let mut stco = be32(&[chunks]);
        stco.extend(be32(&offsets));
        Ok((full_box(b"stsc", 0, 0, &[&stsc]), full_box(b"stco", 0, 0, &[&stco])))
    }

    /// The `mp4a` sample entry and its `esds`.
    fn stsd(&self) -> Vec<u8> {
        let mut entry = vec![0, 0, 0, 0, 0, 0, 0, 1];
        entry.extend([0; 8]);
        entry.extend((self.stream.channels as u16).to_be_bytes());
        entry.extend(16u16.to_be_bytes());
        entry.extend([0; 4]);
        entry.extend(be32(&[self.stream.rate << 16]));
        let mp4a = mp4_box(b"mp4a", &[&entry, &self.esds()]);
        full_box(b"stsd", 0, 0, &[&be32(&[1]), &mp4a])
    }

    /// ES_Descriptor → DecoderConfigDescriptor (AAC, audio, buffer and bitrates) →
    /// DecoderSpecificInfo (the AudioSpecificConfig); SLConfigDescriptor (MP4).
    fn esds(&self) -> Vec<u8> {
        let (largest, peak, average) = self.rates();
        let mut config = vec![0x40, 0x15];
        config.extend(&largest.to_be_bytes()[1..]);
        config.extend(be32(&[peak, average]));
        config.extend(descriptor(0x05, &self.stream.config));
        let mut es = vec![0, 1, 0];
        es.extend(descriptor(0x04, &config));
        es.extend(descriptor(0x06, &[0x02]));
        full_box(b"esds", 0, 0, &[&descriptor(0x03, &es)])
    }

    /// The largest access unit, the peak bitrate over any second (whole chunks of a second's
    /// units) and the average bitrate.
    fn rates(&self) -> (u32, u32, u32) {
        let largest = self.sizes.iter().copied().max().unwrap_or(0);
        let per_second = (self.stream.rate as usize).div_ceil(self.stream.frame).max(1);
        let bits = |units: &[u32]| units.iter().map(|&s| u64::from(s) * 8).sum::<u64>();
        let peak = self.sizes.chunks(per_second).map(bits).max().unwrap_or(0);
        let seconds = self.media() as f64 / f64::from(self.stream.rate);
        let average = if seconds > 0.0 { bits(self.sizes) as f64 / seconds } else { 0.0 };
        (largest, u32::try_from(peak).unwrap_or(u32::MAX), average as u32)
    }

    /// `udta/meta/ilst`: the title (`©nam`) and `iTunSMPB` (priming, padding, length).
    fn udta(&self) -> Vec<u8> {
        let (delay, input) = if self.input == 0 { (0, 0) } else { (self.stream.delay, self.input) };
        let padding = self.media().saturating_sub(delay + input);
        let smpb = format!(" 00000000 {delay:08X} {padding:08X} {input:016X}{}", " 00000000".repeat(8));
        let mean = full_box(b"mean", 0, 0, &[b"com.apple.iTunes"]);
        let name = full_box(b"name", 0, 0, &[b"iTunSMPB"]);
        let mut items = mp4_box(b"----", &[&mean, &name, &text_data(&smpb)]);
        if let Some(title) = &self.stream.title {
            items.extend(mp4_box(b"\xA9nam", &[&text_data(title)]));
        }
        let hdlr = full_box(b"hdlr", 0, 0, &[&[0; 4], b"mdir", b"appl", &[0; 9]]);
        let meta = full_box(b"meta", 0, 0, &[&hdlr, &mp4_box(b"ilst", &[&items])]);
        mp4_box(b"udta", &[&meta])
    }
}

/// An ilst `data` box of UTF-8 text.
fn text_data(text: &str) -> Vec<u8> {
    mp4_box(b"data", &[&be32(&[1, 0]), text.as_bytes()])
}

/// An MPEG-4 descriptor: tag, length in 7-bit groups (four, as ffmpeg writes), body.
fn descriptor(tag: u8, body: &[u8]) -> Vec<u8> {
    let n = body.len() as u32;
    let group = |shift: u32| ((n >> shift) & 0x7F) as u8;
    let mut out = vec![tag, 0x80 | group(21), 0x80 | group(14), 0x80 | group(7), group(0)];
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{encoder, max_channels};
    use crate::pipeline::output::Sink;
    use crate::plan::audio::AudioFormat;

    #[test]
    fn stereo_round_trips_to_the_sample() {
        round_trip(&spec(AudioFormat::M4a, 44_100, 2));
    }

    #[test]
    fn mono_round_trips_and_lengths_off_the_frame_grid_too() {
        round_trip(&spec(AudioFormat::M4a, 22_050, 1));
        exact_at_lengths(AudioFormat::M4a, 16_000, &[1, 1023, 1024, 1025, 2048, 4000]);
    }

    #[test]
    fn the_priming_is_cut_where_the_input_starts() {
        // the decoded signal lines up with the input: the best lag of their correlation is 0
        let rate = 44_100;
        let input = music(rate, 30_000);
        let (_, decoded, _) = decode(encode(&spec(AudioFormat::M4a, rate, 2), &input));
        let correlation = |lag: usize| (5000..25_000).map(|i| input[0][i] * decoded[0][i + lag - 64]).sum::<f32>();
        let best = (0..=128).max_by(|&a, &b| correlation(a).total_cmp(&correlation(b))).unwrap();
        assert_eq!(best, 64, "decoded {} frames late", best as i64 - 64);
    }

    #[test]
    fn the_bitrate_steers_the_size() {
        lower_bitrate_is_smaller(AudioFormat::M4a, 64, 192);
        // out-of-range asks are clamped, not refused
        for kbps in [0, 1, 100_000] {
            let mut odd = spec(AudioFormat::M4a, 8_000, 1);
            odd.bitrate_kbps = Some(kbps);
            round_trip(&odd);
        }
    }

    /// The first box of type `kind` anywhere in `bytes`: its payload from the version byte on.
    fn payload<'a>(bytes: &'a [u8], kind: &[u8]) -> &'a [u8] {
        let at = bytes.windows(4).position(|w| w == kind).unwrap_or_else(|| panic!("no {kind:?}"));
        let size = u32::from_be_bytes(bytes[at - 4..at].try_into().unwrap()) as usize;
        &bytes[at + 4..at - 4 + size]
    }

    fn be(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0, |n, &b| n << 8 | u64::from(b))
    }

    #[test]
    fn the_file_is_an_m4a_with_its_edit_and_tags() {
        let mut spec = spec(AudioFormat::M4a, 48_000, 2);
        spec.title = Some("Ünïcode".into());
        let bytes = encode(&spec, &sine(48_000, 2, 48_000));
        assert_eq!(&bytes[4..12], b"ftypM4A ");
        assert_eq!(&bytes[32..36], b"mdat");
        // one edit: media time = the priming, duration = the input (both at 48 kHz)
        let elst = payload(&bytes, b"elst");
        assert_eq!((elst[0], be(&elst[4..8]), be(&elst[8..12])), (0, 1, 48_000));
        let priming = be(&elst[12..16]);
        let media = be(&payload(&bytes, b"mdhd")[16..20]);
        assert_eq!((priming, media % 1024), (2048, 0));
        assert!(media >= priming + 48_000 && media < priming + 48_000 + 1024, "{media}");
        let smpb = format!(" 00000000 {priming:08X} {:08X} {:016X} ", media - priming - 48_000, 48_000);
        assert!(bytes.windows(smpb.len()).any(|w| w == smpb.as_bytes()), "{smpb}");
        let (info, planes, tags) = decode(bytes);
        assert_eq!((info.codec.as_str(), info.sample_rate, info.channels), ("aac", 48_000, 2));
        assert_eq!((info.frames, planes[0].len()), (Some(48_000), 48_000));
        assert!(tags.iter().any(|(_, v)| v == "Ünïcode"), "{tags:?}");
    }

    #[test]
    fn every_rate_and_channel_count_encodes() {
        for rate in super::RATES {
            for channels in 1..=max_channels(AudioFormat::M4a) {
                let frames = rate as usize / 10;
                let (info, planes, _) =
                    decode(encode(&spec(AudioFormat::M4a, rate, channels), &sine(rate, channels, frames)));
                assert_eq!((info.sample_rate, planes.len(), planes[0].len()), (rate, usize::from(channels), frames));
            }
        }
        assert_eq!(super::supported_rate(96_000), 48_000);
        assert_eq!(super::supported_rate(44_000), 44_100);
        assert_eq!(super::supported_rate(1), 8_000);
    }

    #[test]
    fn an_empty_input_is_an_empty_file() {
        let out = encoder(&spec(AudioFormat::M4a, 44_100, 2), Sink::memory()).and_then(|e| e.finish());
        let bytes = out.expect("finish").into_vec().expect("in memory");
        assert_eq!(&bytes[4..12], b"ftypM4A ");
        assert!(!bytes.windows(4).any(|w| w == b"elst"));
        let (_, planes, _) = decode(bytes);
        assert_eq!(planes.iter().map(Vec::len).sum::<usize>(), 0);
    }

    /// `cargo test --release --lib pipeline::audio::encode::aac -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn encode_speed() {
        let planes = music(44_100, 44_100 * 180);
        let started = std::time::Instant::now();
        let mut encoder = encoder(&spec(AudioFormat::M4a, 44_100, 2), Sink::memory()).expect("encoder");
        for at in (0..planes[0].len()).step_by(4096) {
            let end = (at + 4096).min(planes[0].len());
            encoder.push(&[&planes[0][at..end], &planes[1][at..end]]).expect("push");
        }
        let size = encoder.finish().expect("finish").len();
        let secs = started.elapsed().as_secs_f64();
        println!("M4a: {:.0}x real time, {} kB", 180.0 / secs, size / 1000);
    }
}
