//! The edit list of an MP4 audio track, read from the `moov` box's bytes. symphonia 0.5 parses
//! `edts/elst` but ignores it, so an AAC stream's priming (the encoder delay, 1024–2112 frames)
//! and the padding of its last frame would reach the output. Only the plain case is honoured:
//! one edit, at normal rate, into the media (what ffmpeg, Apple and Refract's own M4A write).

/// Where the real audio lies in the decoded media, in frames (the media's timescale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edit {
    /// Frames to drop at the start (the priming).
    pub skip: u64,
    /// Frames to play from there; `None` when the edit says "to the end" (a zero duration).
    pub length: Option<u64>,
}

impl Edit {
    /// The frames the edit plays of a media of `media` frames (when known).
    pub fn frames(&self, media: Option<u64>) -> Option<u64> {
        let rest = media.map(|m| m.saturating_sub(self.skip));
        match (self.length, rest) {
            (Some(length), Some(rest)) => Some(length.min(rest)),
            (length, rest) => length.or(rest),
        }
    }
}

/// The edit of the first sound track of an MP4 file (`ftyp` first), if it has a single-entry
/// edit list into its media at rate 1. `None` for anything else, malformed boxes included.
pub fn audio_edit(file: &[u8]) -> Option<Edit> {
    if file.get(4..8) != Some(b"ftyp") {
        return None;
    }
    let moov = find(file, b"moov")?;
    let movie_scale = timescale(find(moov, b"mvhd")?)?;
    boxes(moov).filter(|(kind, _)| kind == b"trak").find_map(|(_, trak)| {
        let mdia = find(trak, b"mdia")?;
        let handler = find(mdia, b"hdlr")?.get(8..12)?;
        if handler != b"soun" {
            return None;
        }
        let media_scale = timescale(find(mdia, b"mdhd")?)?;
        let (duration, media_time) = single_edit(find(find(trak, b"edts")?, b"elst")?)?;
        let length = (duration > 0).then(|| rescale(duration, movie_scale, media_scale));
        Some(Edit { skip: media_time, length })
    })
}

/// The boxes one after another in `data`: (type, payload). Stops at the first malformed header.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let rest = data.get(at..)?;
        let size = u32::from_be_bytes(rest.get(0..4)?.try_into().ok()?);
        let kind: [u8; 4] = rest.get(4..8)?.try_into().ok()?;
        let (header, size) = match size {
            0 => (8, rest.len() as u64),
            1 => (16, u64::from_be_bytes(rest.get(8..16)?.try_into().ok()?)),
            n => (8, u64::from(n)),
        };
        let size = usize::try_from(size).ok().filter(|&s| s >= header && s <= rest.len())?;
        at += size;
        Some((kind, &rest[header..size]))
    })
}

/// The payload of the first box of type `kind` in `data`.
fn find<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).find(|(k, _)| k == kind).map(|(_, payload)| payload)
}

/// The timescale of an `mvhd` or `mdhd` payload (version 0: 32-bit times, 1: 64-bit); never 0.
fn timescale(header: &[u8]) -> Option<u32> {
    let at = if *header.first()? == 1 { 20 } else { 12 };
    let scale = u32::from_be_bytes(header.get(at..at + 4)?.try_into().ok()?);
    (scale > 0).then_some(scale)
}

/// An `elst` payload's only entry, as (segment duration in the movie's timescale, media time),
/// when there is exactly one, it starts inside the media and plays at rate 1.
fn single_edit(elst: &[u8]) -> Option<(u64, u64)> {
    let version = *elst.first()?;
    let count = u32::from_be_bytes(elst.get(4..8)?.try_into().ok()?);
    if count != 1 {
        return None;
    }
    let entry = elst.get(8..)?;
    let (duration, media_time, rate) = if version == 1 {
        let duration = u64::from_be_bytes(entry.get(0..8)?.try_into().ok()?);
        let time = i64::from_be_bytes(entry.get(8..16)?.try_into().ok()?);
        (duration, time, entry.get(16..20)?)
    } else {
        let duration = u32::from_be_bytes(entry.get(0..4)?.try_into().ok()?);
        let time = i32::from_be_bytes(entry.get(4..8)?.try_into().ok()?);
        (u64::from(duration), i64::from(time), entry.get(8..12)?)
    };
    // media_rate 1.0 (16.16); a media time of -1 is an empty edit
    if rate != [0, 1, 0, 0] {
        return None;
    }
    Some((duration, u64::try_from(media_time).ok()?))
}

/// `value` from timescale `from` to `to`, rounded to the nearest unit.
fn rescale(value: u64, from: u32, to: u32) -> u64 {
    let (from, to) = (u128::from(from), u128::from(to));
    let scaled = (u128::from(value) * to + from / 2) / from;
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    /// A version-0 `mvhd`/`mdhd` payload with `scale` (the rest zero).
    fn header(scale: u32) -> Vec<u8> {
        let mut payload = vec![0; 24];
        payload[12..16].copy_from_slice(&scale.to_be_bytes());
        payload
    }

    fn elst_v0(entries: &[(u32, i32)]) -> Vec<u8> {
        let mut payload = vec![0, 0, 0, 0];
        payload.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for (duration, time) in entries {
            payload.extend_from_slice(&duration.to_be_bytes());
            payload.extend_from_slice(&time.to_be_bytes());
            payload.extend_from_slice(&[0, 1, 0, 0]);
        }
        payload
    }

    fn file(handler: &[u8; 4], movie: u32, media: u32, elst: &[u8]) -> Vec<u8> {
        let mut hdlr = vec![0; 8];
        hdlr.extend_from_slice(handler);
        hdlr.extend_from_slice(&[0; 12]);
        let mdia = [mp4_box(b"mdhd", &header(media)), mp4_box(b"hdlr", &hdlr)].concat();
        let trak = [mp4_box(b"tkhd", &[0; 84]), mp4_box(b"edts", &mp4_box(b"elst", elst)), mp4_box(b"mdia", &mdia)];
        let moov = [mp4_box(b"mvhd", &header(movie)), mp4_box(b"trak", &trak.concat())].concat();
        [mp4_box(b"ftyp", b"M4A \0\0\0\0"), mp4_box(b"mdat", &[7; 100]), mp4_box(b"moov", &moov)].concat()
    }

    #[test]
    fn a_single_edit_gives_the_priming_and_the_length() {
        let edit = audio_edit(&file(b"soun", 44_100, 44_100, &elst_v0(&[(220_500, 2048)])));
        assert_eq!(edit, Some(Edit { skip: 2048, length: Some(220_500) }));
        // ffmpeg's movie timescale is 1000: the length is rescaled to the media's
        let edit = audio_edit(&file(b"soun", 1000, 44_100, &elst_v0(&[(30_000, 1024)])));
        assert_eq!(edit, Some(Edit { skip: 1024, length: Some(1_323_000) }));
        let edit = audio_edit(&file(b"soun", 1000, 48_000, &elst_v0(&[(0, 312)])));
        assert_eq!(edit, Some(Edit { skip: 312, length: None }));
    }

    #[test]
    fn the_played_length_is_capped_by_the_media() {
        let edit = Edit { skip: 2048, length: Some(48_000) };
        assert_eq!(edit.frames(Some(50_176)), Some(48_000));
        assert_eq!(edit.frames(Some(10_000)), Some(7_952));
        assert_eq!(edit.frames(None), Some(48_000));
        let open = Edit { skip: 1024, length: None };
        assert_eq!(open.frames(Some(5000)), Some(3976));
        assert_eq!(open.frames(Some(5)), Some(0));
        assert_eq!(open.frames(None), None);
    }

    #[test]
    fn version_1_entries_are_read() {
        let mut elst = vec![1, 0, 0, 0, 0, 0, 0, 1];
        elst.extend_from_slice(&5_000_000_000u64.to_be_bytes());
        elst.extend_from_slice(&2048i64.to_be_bytes());
        elst.extend_from_slice(&[0, 1, 0, 0]);
        let edit = audio_edit(&file(b"soun", 48_000, 48_000, &elst));
        assert_eq!(edit, Some(Edit { skip: 2048, length: Some(5_000_000_000) }));
    }

    #[test]
    fn other_edits_and_other_files_are_ignored() {
        // an empty edit first, two entries, a video track, a rate of 2
        assert_eq!(audio_edit(&file(b"soun", 1000, 44_100, &elst_v0(&[(100, -1), (30_000, 0)]))), None);
        assert_eq!(audio_edit(&file(b"soun", 1000, 44_100, &elst_v0(&[(100, -1)]))), None);
        assert_eq!(audio_edit(&file(b"vide", 1000, 44_100, &elst_v0(&[(30_000, 1024)]))), None);
        let mut fast = elst_v0(&[(30_000, 1024)]);
        fast[16] = 2;
        assert_eq!(audio_edit(&file(b"soun", 1000, 44_100, &fast)), None);
        assert_eq!(audio_edit(&file(b"soun", 0, 44_100, &elst_v0(&[(30_000, 1024)]))), None);
        assert_eq!(audio_edit(b"ID3\x04\0\0\0\0\0\0"), None);
    }

    #[test]
    fn truncated_and_lying_boxes_are_no_edit_and_no_panic() {
        let whole = file(b"soun", 44_100, 44_100, &elst_v0(&[(220_500, 2048)]));
        for cut in 0..whole.len() {
            let _ = audio_edit(&whole[..cut]);
        }
        let mut lying = whole.clone();
        // the moov box claims more than the file holds
        let moov = lying.windows(4).position(|w| w == b"moov").unwrap() - 4;
        lying[moov..moov + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(audio_edit(&lying), None);
        // a 64-bit size below its own header
        let mut tiny = whole;
        tiny[moov..moov + 4].copy_from_slice(&1u32.to_be_bytes());
        assert_eq!(audio_edit(&tiny), None);
    }

    #[test]
    fn the_corpus_m4a_from_ffmpeg_has_its_edit() {
        let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/audio/ok/music-30s.m4a")).unwrap();
        assert_eq!(audio_edit(&bytes), Some(Edit { skip: 1024, length: Some(1_323_000) }));
        let faac = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/audio/ok/has-tags.m4a")).unwrap();
        assert_eq!(audio_edit(&faac), None);
    }
}
