//! What an audio file is, without decoding it: codec, container, length, tags and embedded cover
//! art. The stream is first opened by `decode::open`, so the same files are refused with the same
//! errors (unknown codec, lying sample rate or channel count, cut Ogg stream); a second pass over
//! the container reads its metadata and, when the container does not announce its length, sums
//! the durations of its packets (demuxed, never decoded).

use super::super::{Budget, PipelineError, Result};
use super::decode;
use bytes::Bytes;
use std::collections::BTreeMap;
use symphonia::core::codecs::CODEC_TYPE_NULL;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::{
    Limit, MetadataOptions, MetadataRevision, StandardTagKey, StandardVisualKey, Value, Visual,
};
use symphonia::core::probe::{Hint, Instantiate, ProbeResult};
use symphonia::core::units::TimeBase;

/// At most this many tags are reported, each value at most this many characters.
const MAX_TAGS: usize = 64;
const MAX_TAG_CHARS: usize = 1024;
/// An unknown tag key longer than this is noise (or hostile), not a name.
const MAX_KEY_CHARS: usize = 128;
/// The tag bytes symphonia is asked to keep (symphonia 0.5 does not enforce it yet).
const MAX_METADATA_BYTES: usize = 16 << 20;
/// A picture larger than this is ignored.
pub const MAX_COVER_BYTES: usize = 16 << 20;
/// The deadline is checked every this many demuxed packets.
const PACKETS_PER_CHECK: u64 = 4096;
/// A declared length beyond a week is a lying header: the packets are counted instead.
const MAX_DECLARED_SECONDS: u64 = 7 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AudioInfo {
    /// symphonia's short codec name: `mp3`, `aac`, `flac`, `vorbis`, `pcm_s16le`, `alac`…
    pub codec: String,
    /// `mp3`, `mp4`, `flac`, `ogg`, `wav`, `aiff`, `caf`, `adts`, `mkv`, `webm`.
    pub container: String,
    /// Seconds, rounded to the millisecond.
    pub duration: f64,
    pub sample_rate: u32,
    pub channels: u16,
    pub bits_per_sample: Option<u32>,
    /// kbit/s: nominal for PCM, otherwise the file's size (less its pictures) over its duration.
    pub bitrate: Option<u32>,
    /// Sample frames (one sample of every channel), after encoder delay and padding.
    pub frames: u64,
    /// Normalised keys (`title`, `artist`, `album`, `album_artist`, `track`, `disc`, `date`,
    /// `genre`, `comment`, `composer`…), unknown keys under their lowercase raw key.
    pub tags: BTreeMap<String, String>,
    pub cover: Option<CoverInfo>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CoverInfo {
    pub mimetype: String,
    pub size: usize,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Describe an audio file. Refused as `decode::open` refuses; a stream with no declared length
/// and no packet is corrupt.
pub fn describe(bytes: Bytes, budget: &Budget) -> Result<AudioInfo> {
    guarded(|| describe_unguarded(bytes, budget))
}

/// The embedded front cover (or first picture) as image bytes, None when the file has none
pub fn cover(bytes: Bytes) -> Result<Option<(Bytes, String)>> {
    guarded(|| {
        if bytes.is_empty() {
            return Err(PipelineError::Empty);
        }
        let ProbeResult { mut format, metadata } = probe(bytes.clone())?;
        let revisions = revisions(metadata, format.as_mut(), &bytes);
        Ok(pick_cover(&revisions).map(|(visual, mimetype)| (Bytes::copy_from_slice(&visual.data), mimetype)))
    })
}

fn describe_unguarded(bytes: Bytes, budget: &Budget) -> Result<AudioInfo> {
    let (mut decoder, _) = decode::open(bytes.clone())?;
    if decoder.info.channels == 0 {
        // the container leaves it to the bitstream: the first block tells (and sets it)
        decoder.next_block(budget)?;
    }
    let info = decoder.info.clone();
    drop(decoder);
    budget.check()?;
    let ProbeResult { mut format, metadata } = probe(bytes.clone())?;
    // an MP4 edit list (AAC priming and padding) is what the decoder plays: its length
    let edited = super::mp4_edit::audio_edit(&bytes).and(info.frames);
    let frames = match edited.or_else(|| declared_frames(format.as_ref(), info.sample_rate)) {
        Some(frames) => frames,
        None => counted_frames(format.as_mut(), info.sample_rate, budget)?,
    };
    let revisions = revisions(metadata, format.as_mut(), &bytes);
    let channels = u16::try_from(info.channels)
        .ok()
        .filter(|&c| c > 0)
        .ok_or_else(|| PipelineError::Corrupt("no audio could be decoded from the file".into()))?;
    let seconds = frames as f64 / f64::from(info.sample_rate);
    let pictures: usize = revisions.iter().flat_map(|r| r.visuals()).map(|v| v.data.len()).sum();
    let bits_per_sample = info.bits_per_sample.filter(|b| (1..=64).contains(b));
    let bitrate = match bits_per_sample {
        Some(bits) if info.codec.starts_with("pcm_") => {
            Some(kbits(f64::from(info.sample_rate) * f64::from(channels) * f64::from(bits)))
        }
        _ if seconds > 0.0 => Some(kbits(bytes.len().saturating_sub(pictures) as f64 * 8.0 / seconds)),
        _ => None,
    };
    Ok(AudioInfo {
        container: container(&bytes, &info.codec),
        duration: (seconds * 1000.0).round() / 1000.0,
        sample_rate: info.sample_rate,
        channels,
        bits_per_sample,
        bitrate: bitrate.filter(|&b| b > 0),
        frames,
        tags: tags(&revisions),
        cover: pick_cover(&revisions).map(|(visual, mimetype)| cover_info(visual, mimetype)),
        codec: info.codec,
    })
}

/// Bits per second as whole kbit/s.
fn kbits(bits_per_second: f64) -> u32 {
    (bits_per_second / 1000.0).round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// A panic inside the container parsers on hostile input is a corrupt file, not a dead worker.
fn guarded<T>(work: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err(PipelineError::Corrupt("the audio file could not be parsed".into())))
}

fn metadata_options() -> MetadataOptions {
    MetadataOptions {
        limit_metadata_bytes: Limit::Maximum(MAX_METADATA_BYTES),
        limit_visual_bytes: Limit::Maximum(MAX_COVER_BYTES),
    }
}

/// The container, probed from its content, with the options `decode::open` uses.
fn probe(bytes: Bytes) -> Result<ProbeResult> {
    let mss = MediaSourceStream::new(Box::new(std::io::Cursor::new(bytes)), MediaSourceStreamOptions::default());
    let options = FormatOptions { enable_gapless: true, ..FormatOptions::default() };
    symphonia::default::get_probe()
        .format(&Hint::new(), mss, &options, &metadata_options())
        .map_err(|e| unreadable("the source is not audio Refract can read", e))
}

/// A symphonia failure as a client error: unsupported when it says so, corrupt otherwise (as
/// `decode.rs` maps them).
fn unreadable(what: &str, e: SymphoniaError) -> PipelineError {
    match e {
        SymphoniaError::Unsupported(_) => PipelineError::Unsupported(format!("{what} ({e})")),
        other => PipelineError::Corrupt(format!("{what}: {other}")),
    }
}

/// The audio track `decode::open` picks: the first with a codec.
fn audio_track(format: &dyn FormatReader) -> Option<&symphonia::core::formats::Track> {
    format.tracks().iter().find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
}

/// `ticks` of `time_base` as frames at `sample_rate` (ticks are frames without a time base).
fn to_frames(ticks: u64, time_base: Option<TimeBase>, sample_rate: u32) -> Option<u64> {
    match time_base {
        None => Some(ticks),
        Some(tb) if tb.denom == 0 => None,
        Some(tb) => {
            let frames = u128::from(ticks) * u128::from(tb.numer) * u128::from(sample_rate) / u128::from(tb.denom);
            u64::try_from(frames).ok()
        }
    }
}

/// The length the container announces, when it announces a believable one.
fn declared_frames(format: &dyn FormatReader, sample_rate: u32) -> Option<u64> {
    let params = &audio_track(format)?.codec_params;
    let frames = to_frames(params.n_frames?, params.time_base, sample_rate)?;
    (frames > 0 && frames / u64::from(sample_rate.max(1)) <= MAX_DECLARED_SECONDS).then_some(frames)
}

/// The length as the sum of the packets' durations, demuxed without decoding. A stream cut short
/// counts what it holds; one with no packet at all is not audio.
fn counted_frames(format: &mut dyn FormatReader, sample_rate: u32, budget: &Budget) -> Result<u64> {
    let (track, time_base) = audio_track(format)
        .map(|t| (t.id, t.codec_params.time_base))
        .ok_or_else(|| PipelineError::Unsupported("the file has no audio track".into()))?;
    let (mut ticks, mut packets) = (0u64, 0u64);
    loop {
        if packets % PACKETS_PER_CHECK == 0 {
            budget.check()?;
        }
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => break,
            Err(_) if packets > 0 => break,
            Err(e) => return Err(unreadable("the audio stream is damaged", e)),
        };
        packets += 1;
        if packet.track_id() == track {
            // the end trim follows the declared length, which is missing or not believed here
            ticks = ticks.saturating_add(packet.dur()).saturating_add(u64::from(packet.trim_end()));
        }
    }
    match to_frames(ticks, time_base, sample_rate) {
        Some(frames) if frames > 0 => Ok(frames),
        _ => Err(PipelineError::Corrupt("no audio could be read from the file".into())),
    }
}

/// The newest metadata of each source, the most specific first: the container's own (Vorbis
/// comments, MP4 `ilst`, RIFF `INFO`), what preceded it (ID3v2 before MP3), and an ID3 chunk
/// inside WAV or AIFF (which symphonia 0.5 skips).
fn revisions(
    probed: symphonia::core::probe::ProbedMetadata,
    format: &mut dyn FormatReader,
    bytes: &Bytes,
) -> Vec<MetadataRevision> {
    let mut revisions: Vec<MetadataRevision> = format.metadata().skip_to_latest().cloned().into_iter().collect();
    if let Some(mut log) = probed.into_inner() {
        revisions.extend(log.metadata().skip_to_latest().cloned());
    }
    revisions.extend(chunk_id3(bytes));
    revisions
}

/// The `id3 ` chunk of a RIFF WAVE or AIFF file, read by symphonia's own ID3v2 reader.
fn chunk_id3(bytes: &Bytes) -> Option<MetadataRevision> {
    let head = bytes.get(..12)?;
    let little_endian = match (&head[..4], &head[8..12]) {
        (b"RIFF", b"WAVE") => true,
        (b"FORM", b"AIFF" | b"AIFC") => false,
        _ => return None,
    };
    let mut at = 12usize;
    while let Some(chunk) = bytes.get(at..at.checked_add(8)?) {
        let size = [chunk[4], chunk[5], chunk[6], chunk[7]];
        let size = if little_endian { u32::from_le_bytes(size) } else { u32::from_be_bytes(size) } as usize;
        let start = at + 8;
        if chunk[..4].eq_ignore_ascii_case(b"id3 ") {
            let end = start.saturating_add(size).min(bytes.len());
            return read_id3(bytes.slice(start..end));
        }
        at = start.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}

/// An ID3v2 tag on its own, through the probe's metadata readers.
fn read_id3(tag: Bytes) -> Option<MetadataRevision> {
    if !tag.starts_with(b"ID3") {
        return None;
    }
    let mut mss = MediaSourceStream::new(Box::new(std::io::Cursor::new(tag)), MediaSourceStreamOptions::default());
    match symphonia::default::get_probe().next(&mut mss).ok()? {
        Instantiate::Metadata(reader) => reader(&metadata_options()).read_all(&mut mss).ok(),
        Instantiate::Format(_) => None,
    }
}

/// Tags of every revision, the first revision's value winning. A key repeated in one revision
/// (several artists) has its values joined with "; ", except `comment`: symphonia drops the
/// descriptions of ID3 comments, so iTunes' `iTunNORM` and CDDB data would join the real one.
fn tags(revisions: &[MetadataRevision]) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    for revision in revisions {
        let mut own: BTreeMap<String, String> = BTreeMap::new();
        for tag in revision.tags() {
            let (Some(key), Some(value)) = (tag_key(tag.std_key, &tag.key), tag_value(&tag.value)) else {
                continue;
            };
            let room = own.len() < MAX_TAGS;
            match own.get_mut(&key) {
                Some(joined) if key != "comment" && !joined.split("; ").any(|v| v == value) => {
                    *joined = truncated(format!("{joined}; {value}"));
                }
                Some(_) => {}
                None if room => {
                    own.insert(key, truncated(value));
                }
                None => {}
            }
        }
        for (key, value) in own {
            if tags.len() < MAX_TAGS || tags.contains_key(&key) {
                tags.entry(key).or_insert(value);
            }
        }
    }
    tags
}

fn truncated(value: String) -> String {
    match value.char_indices().nth(MAX_TAG_CHARS) {
        Some((at, _)) => value[..at].trim_end().to_string(),
        None => value,
    }
}

/// A tag's key: its standard name, else its raw key in lower case.
fn tag_key(std_key: Option<StandardTagKey>, raw: &str) -> Option<String> {
    if let Some(key) = std_key {
        return Some(standard_name(key));
    }
    let raw = raw.trim_matches(|c: char| c.is_whitespace() || c == '\0').to_lowercase();
    (!raw.is_empty() && raw.chars().count() <= MAX_KEY_CHARS && !raw.chars().any(char::is_control)).then_some(raw)
}

/// `StandardTagKey::AlbumArtist` → `album_artist`, with the common short names.
fn standard_name(key: StandardTagKey) -> String {
    let name = match key {
        StandardTagKey::TrackTitle => "title",
        StandardTagKey::TrackNumber => "track",
        StandardTagKey::DiscNumber => "disc",
        _ => {
            let mut snake = String::new();
            for (i, c) in format!("{key:?}").chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            return snake.replace("music_brainz", "musicbrainz");
        }
    };
    name.to_string()
}

/// A tag's value as text; binary values (and empty ones) are not reported.
fn tag_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::Binary(_) => return None,
        Value::Flag => "true".to_string(),
        Value::String(s) => s.trim_matches(|c: char| c.is_whitespace() || c == '\0').replace('\0', "; "),
        other => other.to_string(),
    };
    (!text.is_empty()).then_some(text)
}

/// The front cover, else the first picture, with its media type; pictures over the cap, empty
/// ones and links (ID3's `-->`) are skipped.
fn pick_cover(revisions: &[MetadataRevision]) -> Option<(&Visual, String)> {
    let usable = || {
        revisions
            .iter()
            .flat_map(|r| r.visuals())
            .filter(|v| !v.data.is_empty() && v.data.len() <= MAX_COVER_BYTES)
            .filter_map(|v| picture_type(v).map(|mime| (v, mime)))
    };
    usable().find(|(v, _)| v.usage == Some(StandardVisualKey::FrontCover)).or_else(|| usable().next())
}

/// The picture's media type, sniffed from its bytes, else as declared when it names an image.
fn picture_type(visual: &Visual) -> Option<String> {
    if let Ok(format) = image::guess_format(&visual.data) {
        return Some(format.to_mime_type().to_string());
    }
    let declared = visual.media_type.trim().to_ascii_lowercase();
    let declared = if declared == "image/jpg" { "image/jpeg".to_string() } else { declared };
    (declared.starts_with("image/") && declared.len() <= 64).then_some(declared)
}

/// Size and dimensions of a picture, read from its header (the pixels are never decoded); the
/// container's declared dimensions when the header cannot be read.
fn cover_info(visual: &Visual, mimetype: String) -> CoverInfo {
    let read = image::ImageReader::new(std::io::Cursor::new(&visual.data[..]))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok());
    let declared = visual.dimensions.filter(|d| d.width > 0 && d.height > 0).map(|d| (d.width, d.height));
    let dimensions = read.or(declared);
    CoverInfo { mimetype, size: visual.data.len(), width: dimensions.map(|d| d.0), height: dimensions.map(|d| d.1) }
}

/// The container, from its magic (after any ID3v2 tags in front); bare MPEG audio and ADTS have
/// none and are named after their codec.
fn container(bytes: &[u8], codec: &str) -> String {
    let body = skip_id3v2(bytes);
    let at = |offset: usize, magic: &[u8]| body.get(offset..offset + magic.len()) == Some(magic);
    let name = if at(0, b"fLaC") {
        "flac"
    } else if at(0, b"OggS") {
        "ogg"
    } else if at(0, b"RIFF") && at(8, b"WAVE") {
        "wav"
    } else if at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC")) {
        "aiff"
    } else if at(0, b"caff") {
        "caf"
    } else if at(4, b"ftyp") {
        "mp4"
    } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        let head = &body[..body.len().min(64)];
        if head.windows(4).any(|w| w == b"webm") {
            "webm"
        } else {
            "mkv"
        }
    } else {
        match codec {
            "mp1" | "mp2" | "mp3" => codec,
            "aac" => "adts",
            _ => "unknown",
        }
    };
    name.to_string()
}

/// The bytes after the ID3v2 tags at the start, if any.
fn skip_id3v2(mut bytes: &[u8]) -> &[u8] {
    for _ in 0..8 {
        let Some(header) = bytes.get(..10).filter(|h| h.starts_with(b"ID3")) else {
            break;
        };
        let size = header[6..10].iter().fold(0usize, |size, b| (size << 7) | usize::from(b & 0x7F));
        let footer = if header[5] & 0x10 != 0 { 10 } else { 0 };
        bytes = bytes.get(10 + size + footer..).unwrap_or(&[]);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Limits;
    use symphonia::core::meta::{MetadataBuilder, Tag};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/audio");

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    fn fixture(path: &str) -> Bytes {
        Bytes::from(std::fs::read(format!("{FIXTURES}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}")))
    }

    fn files(dir: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(format!("{FIXTURES}/{dir}"))
            .unwrap()
            .map(|e| format!("{dir}/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        names.sort();
        names
    }

    /// What MANIFEST.tsv says of an audio file (`audio CODEC,RATE,CHANNELS [pictures…] SECONDS`).
    #[derive(Debug)]
    struct Expected {
        codec: String,
        sample_rate: u32,
        channels: u16,
        duration: f64,
        pictures: usize,
    }

    fn manifest() -> BTreeMap<String, Expected> {
        let text = std::fs::read_to_string(format!("{FIXTURES}/MANIFEST.tsv")).unwrap();
        let parse = |line: &str| {
            let mut columns = line.split('\t');
            let (path, _size, what) = (columns.next()?, columns.next()?, columns.next()?);
            let words: Vec<&str> = what.strip_prefix("audio ")?.split_whitespace().collect();
            let mut stream = words.first()?.trim_end_matches(',').split(',');
            let expected = Expected {
                codec: stream.next()?.to_string(),
                sample_rate: stream.next()?.parse().ok()?,
                channels: stream.next()?.parse().ok()?,
                duration: words.last()?.parse().ok()?,
                pictures: words.len() - 2,
            };
            Some((path.to_string(), expected))
        };
        text.lines().filter_map(parse).collect()
    }

    /// Files of `ok/` that `decode::open` may refuse, by name and kind of error: `.opus` (415
    /// while decode.rs had no Opus decoder: symphonia 0.5 has none), and the FLAC whose cuesheet
    /// symphonia's reader rejects (its track offsets are not CD-DA sector multiples: 422).
    fn refused_today(path: &str, error: &PipelineError) -> bool {
        match error {
            PipelineError::Unsupported(_) => path.ends_with(".opus"),
            PipelineError::Corrupt(_) => path == "ok/silence-44-s.flac",
            _ => false,
        }
    }

    #[test]
    fn fixtures_match_the_manifest() {
        let manifest = manifest();
        let mut described = 0;
        for path in files("ok") {
            let bytes = fixture(&path);
            let expected = manifest.get(&path).unwrap_or_else(|| panic!("{path} is not in MANIFEST.tsv"));
            let info = match describe(bytes.clone(), &budget()) {
                Ok(info) => info,
                Err(e) if refused_today(&path, &e) => {
                    // the same refusal as the decoder's, not one of its own
                    assert_eq!(decode::open(bytes).err(), Some(e), "{path}");
                    continue;
                }
                Err(e) => panic!("{path}: {e:?}"),
            };
            assert_eq!(info.codec, expected.codec, "{path}");
            assert_eq!(info.sample_rate, expected.sample_rate, "{path}");
            assert_eq!(info.channels, expected.channels, "{path}");
            assert!((info.duration - expected.duration).abs() <= 0.05, "{path}: {info:?} vs {expected:?}");
            let exact = info.frames as f64 / f64::from(info.sample_rate);
            assert!((exact - info.duration).abs() <= 0.000_501, "{path}: {info:?}");
            assert_eq!(info.cover.is_some(), expected.pictures > 0, "{path}: {:?}", info.cover);
            assert!(info.bitrate.is_some_and(|b| b > 0) || info.duration > 100.0, "{path}: {info:?}");
            described += 1;
        }
        assert!(described >= 12, "only {described} fixtures described");
    }

    #[test]
    fn containers_and_pcm_details_of_the_fixtures() {
        let cases = [
            ("ok/alac.m4a", "mp4", None, None),
            ("ok/music-30s.mp3", "mp3", None, Some(192)),
            ("ok/xing.mp3", "mp3", None, None),
            ("ok/music-vorbis.ogg", "ogg", None, None),
            ("ok/variable-block.flac", "flac", Some(16), None),
            ("ok/speech-front-center.wav", "wav", Some(16), Some(768)),
            ("ok/with-id3.aif", "aiff", Some(16), Some(128)),
        ];
        for (path, container, bits, bitrate) in cases {
            let info = describe(fixture(path), &budget()).unwrap();
            assert_eq!(info.container, container, "{path}");
            if bits.is_some() {
                assert_eq!(info.bits_per_sample, bits, "{path}");
            }
            if bitrate.is_some() {
                assert_eq!(info.bitrate, bitrate, "{path}");
            }
        }
    }

    /// A fixture, tags it must carry, and its cover (media type, width, height) if any.
    type Tagged = (&'static str, &'static [(&'static str, &'static str)], Option<(&'static str, u32, u32)>);

    /// Found by reading the files' ID3, Vorbis comment and `ilst` tags.
    fn tagged_fixtures() -> [Tagged; 7] {
        [
            (
                "ok/id3v22-test.mp3",
                &[
                    ("title", "cosmic american"),
                    ("artist", "Anais Mitchell"),
                    ("album", "Hymns for the Exiled"),
                    ("track", "3/11"),
                    ("date", "2004"),
                    ("comment", "Waterbug Records, www.anaismitchell.com"),
                ],
                None,
            ),
            (
                "ok/vbri.mp3",
                &[("title", "I Can Walk On Water I Can Fly"), ("artist", "Basshunter"), ("date", "2007")],
                None,
            ),
            (
                "ok/silence-2s-PCM-44100-16-ID3v23.wav",
                &[
                    ("title", "Silence"),
                    ("artist", "piman / jzig"),
                    ("album", "Quod Libet Test Data"),
                    ("track", "02/10"),
                ],
                Some(("image/png", 1, 1)),
            ),
            ("ok/with-id3.aif", &[("title", "AIFF title")], None),
            (
                "ok/variable-block.flac",
                &[
                    ("title", "DIVE FOR YOU"),
                    ("artist", "Boom Boom Satellites"),
                    ("track", "01"),
                    ("track_total", "11"),
                    ("disc", "1"),
                    ("ripper", "Exact Audio Copy 0.99pb5"),
                ],
                None,
            ),
            ("ok/has-tags.m4a", &[("artist", "Test Artist"), ("encoder", "FAAC 1.24")], Some(("image/png", 2, 2))),
            ("ok/music-30s.m4a", &[("encoder", "Lavf59.27.100")], None),
        ]
    }

    #[test]
    fn tags_and_covers_of_the_fixtures() {
        for (path, tags, picture) in tagged_fixtures() {
            let bytes = fixture(path);
            let info = describe(bytes.clone(), &budget()).unwrap();
            for (key, value) in tags {
                assert_eq!(info.tags.get(*key).map(String::as_str), Some(*value), "{path}: {:?}", info.tags);
            }
            let extracted = cover(bytes).unwrap();
            match picture {
                Some((mimetype, width, height)) => {
                    let cover = info.cover.unwrap_or_else(|| panic!("{path} has no cover"));
                    assert_eq!(
                        (cover.mimetype.as_str(), cover.width, cover.height),
                        (mimetype, Some(width), Some(height))
                    );
                    let (image, extracted_type) = extracted.unwrap();
                    assert_eq!((image.len(), extracted_type.as_str()), (cover.size, mimetype), "{path}");
                    assert_eq!(image::guess_format(&image).unwrap().to_mime_type(), mimetype, "{path}");
                }
                None => assert!(info.cover.is_none() && extracted.is_none(), "{path}"),
            }
        }
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let pixels = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8 * 40, y as u8 * 90, 200]));
        let mut out = std::io::Cursor::new(Vec::new());
        pixels.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    /// An ID3v2.3 tag: header (syncsafe size), then frames with plain big-endian sizes.
    fn id3v23(frames: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (id, data) in frames {
            body.extend_from_slice(*id);
            body.extend_from_slice(&(data.len() as u32).to_be_bytes());
            body.extend_from_slice(&[0, 0]);
            body.extend_from_slice(data);
        }
        let size = body.len() as u32;
        let syncsafe = [21, 14, 7, 0].map(|shift| (size >> shift) as u8 & 0x7F);
        [b"ID3\x03\x00\x00".as_slice(), &syncsafe, &body].concat()
    }

    /// TIT2 (Latin-1 text) and APIC (Latin-1, media type, front cover, no description).
    fn tagged_mp3(title: &str, media_type: &str, picture: &[u8]) -> Bytes {
        let tit2 = [&[0u8][..], title.as_bytes()].concat();
        let apic = [&[0u8][..], media_type.as_bytes(), &[0, 3, 0], picture].concat();
        let tag = id3v23(&[(b"TIT2", tit2), (b"APIC", apic)]);
        Bytes::from([tag, fixture("ok/xing.mp3").to_vec()].concat())
    }

    #[test]
    fn an_id3v2_apic_cover_is_described_and_extracted() {
        let picture = png(3, 2);
        let bytes = tagged_mp3("Cover Test", "image/png", &picture);
        let info = describe(bytes.clone(), &budget()).unwrap();
        assert_eq!(info.tags.get("title").map(String::as_str), Some("Cover Test"));
        let expected = CoverInfo { mimetype: "image/png".into(), size: picture.len(), width: Some(3), height: Some(2) };
        assert_eq!(info.cover, Some(expected));
        assert_eq!((info.codec.as_str(), info.container.as_str()), ("mp3", "mp3"));
        let plain = describe(fixture("ok/xing.mp3"), &budget()).unwrap();
        assert_eq!((info.frames, info.duration), (plain.frames, plain.duration));
        assert_eq!(cover(bytes).unwrap(), Some((Bytes::from(picture), "image/png".to_string())));
        // no picture: None, not an error
        assert_eq!(cover(fixture("ok/xing.mp3")).unwrap(), None);
    }

    #[test]
    fn a_picture_type_is_sniffed_and_an_oversized_one_ignored() {
        // declared wrongly: the bytes tell
        let picture = png(4, 4);
        let info = describe(tagged_mp3("Mislabelled", "image/jpg", &picture), &budget()).unwrap();
        assert_eq!(info.cover.map(|c| c.mimetype), Some("image/png".to_string()));
        // a PNG padded past the cap
        let mut huge = png(4, 4);
        huge.resize(MAX_COVER_BYTES + 1, 0);
        let bytes = tagged_mp3("Huge", "image/png", &huge);
        let info = describe(bytes.clone(), &budget()).unwrap();
        assert_eq!(info.tags.get("title").map(String::as_str), Some("Huge"));
        assert_eq!(info.cover, None);
        assert_eq!(cover(bytes).unwrap(), None);
    }

    #[test]
    fn counting_packets_agrees_with_declared_lengths() {
        for path in ["ok/xing.mp3", "ok/music-30s.mp3", "ok/music-30s.m4a", "ok/music-vorbis.ogg", "ok/alac.m4a"] {
            let ProbeResult { mut format, .. } = probe(fixture(path)).unwrap();
            let rate = audio_track(format.as_ref()).and_then(|t| t.codec_params.sample_rate).unwrap();
            let declared = declared_frames(format.as_ref(), rate).unwrap();
            let counted = counted_frames(format.as_mut(), rate, &budget()).unwrap();
            assert!(declared.abs_diff(counted) <= u64::from(rate) / 20, "{path}: {declared} vs {counted}");
        }
    }

    #[test]
    fn an_expired_budget_stops_the_packet_count() {
        let expired = Budget::start(Limits { timeout: std::time::Duration::ZERO, ..Limits::default() });
        std::thread::sleep(std::time::Duration::from_millis(2));
        // no Xing header: its length is counted
        let result = describe(fixture("ok/id3v22-test.mp3"), &expired);
        assert!(matches!(result, Err(PipelineError::OverLimit(_))), "{result:?}");
    }

    fn revision(tags: &[(Option<StandardTagKey>, &str, Value)]) -> MetadataRevision {
        let mut builder = MetadataBuilder::new();
        for (std_key, key, value) in tags {
            builder.add_tag(Tag::new(*std_key, key, value.clone()));
        }
        builder.metadata()
    }

    #[test]
    fn tags_are_normalised_trimmed_and_capped() {
        let container = revision(&[
            (Some(StandardTagKey::TrackTitle), "TITLE", Value::from("  Inner \0")),
            (Some(StandardTagKey::Artist), "ARTIST", Value::from("A")),
            (Some(StandardTagKey::Artist), "ARTIST", Value::from("B")),
            (Some(StandardTagKey::Comment), "COMM", Value::from("real")),
            (Some(StandardTagKey::Comment), "COMM", Value::from("00000000 iTunNORM")),
            (Some(StandardTagKey::AlbumArtist), "ALBUMARTIST", Value::from("V.A.")),
            (Some(StandardTagKey::MusicBrainzAlbumId), "MUSICBRAINZ_ALBUMID", Value::from("x")),
            (None, "My Key", Value::from("kept")),
            (None, "PRIV", Value::Binary(Box::new([1, 2]))),
            (None, "EMPTY", Value::from("   ")),
            (Some(StandardTagKey::TrackNumber), "TRCK", Value::UnsignedInt(7)),
            (Some(StandardTagKey::Compilation), "cpil", Value::Flag),
            (None, "LONG", Value::from("é".repeat(3000))),
        ]);
        let outer = revision(&[
            (Some(StandardTagKey::TrackTitle), "TIT2", Value::from("Outer")),
            (Some(StandardTagKey::Genre), "TCON", Value::from("Jazz")),
        ]);
        let tags = tags(&[container, outer]);
        let get = |key: &str| tags.get(key).map(String::as_str);
        assert_eq!(get("title"), Some("Inner"));
        assert_eq!(get("artist"), Some("A; B"));
        assert_eq!(get("comment"), Some("real"));
        assert_eq!(get("album_artist"), Some("V.A."));
        assert_eq!(get("musicbrainz_album_id"), Some("x"));
        assert_eq!(get("my key"), Some("kept"));
        assert_eq!((get("priv"), get("empty")), (None, None));
        assert_eq!((get("track"), get("compilation")), (Some("7"), Some("true")));
        assert_eq!(get("genre"), Some("Jazz"));
        assert_eq!(tags["long"].chars().count(), MAX_TAG_CHARS);
        let many: Vec<_> = (0..200).map(|i| (None, format!("K{i:03}"), Value::from("v"))).collect();
        let many: Vec<_> = many.iter().map(|(s, k, v)| (*s, k.as_str(), v.clone())).collect();
        assert_eq!(super::tags(&[revision(&many), revision(&many)]).len(), MAX_TAGS);
    }

    #[test]
    fn containers_are_named_from_their_magic() {
        let id3 = [b"ID3\x04\x00\x10\x00\x00\x00\x02".as_slice(), &[0, 0], b"fLaC"].concat();
        assert_eq!(skip_id3v2(&id3), b"");
        let id3 = [b"ID3\x04\x00\x00\x00\x00\x00\x02".as_slice(), &[0, 0], b"fLaC...."].concat();
        assert_eq!(container(&id3, "flac"), "flac");
        assert_eq!(container(b"RIFF\0\0\0\0WAVEfmt ", "pcm_s16le"), "wav");
        assert_eq!(container(b"FORM\0\0\0\0AIFCCOMM", "pcm_s16be"), "aiff");
        assert_eq!(container(b"\0\0\0\x20ftypM4A \0\0", "aac"), "mp4");
        assert_eq!(
            container(&[0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x82, 0x84, b'w', b'e', b'b', b'm'], "vorbis"),
            "webm"
        );
        assert_eq!(container(&[0x1A, 0x45, 0xDF, 0xA3, 0x42, 0x82, 0x88], "flac"), "mkv");
        assert_eq!(container(&[0xFF, 0xF1, 0x50, 0x80], "aac"), "adts");
        assert_eq!(container(&[0xFF, 0xFB, 0x90, 0x64], "mp3"), "mp3");
        assert_eq!(container(b"ID3\x03\x00\x00\x7F\x7F\x7F\x7F", "mp3"), "mp3");
    }

    #[test]
    fn hostile_files_are_answered_without_panicking() {
        let paths = files("hostile");
        assert!(paths.len() >= 9);
        for path in paths {
            let bytes = fixture(&path);
            let (done, finished) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let described = describe(bytes.clone(), &budget()).map(|i| i.duration);
                let extracted = cover(bytes).map(|c| c.map(|(b, _)| b.len()));
                let _ = done.send((described, extracted));
            });
            let (described, extracted) = finished
                .recv_timeout(std::time::Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("{path}: did not finish ({e})"));
            if path.ends_with("emptyfile.mp3") {
                assert_eq!(
                    (described.clone().err(), extracted.clone().err()),
                    (Some(PipelineError::Empty), Some(PipelineError::Empty))
                );
            }
            eprintln!("{path}: {described:?} {extracted:?}");
        }
    }
}
