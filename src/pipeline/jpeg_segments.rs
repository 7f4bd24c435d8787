//! The marker segments of a JPEG before its image data: one walk that the metadata guard, the
//! EXIF orientation reader and the ICC reader share.

/// `(marker, payload)` for each segment from SOI up to the first SOS (or EOI); fill bytes and
/// parameterless markers are skipped, a segment running past the end is cut at the end.
pub fn segments(b: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut i = 2;
    std::iter::from_fn(move || loop {
        if i + 4 > b.len() || b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        if marker == 0xFF || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            i += 1;
            continue;
        }
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        let end = (i + 2 + len).min(b.len());
        let payload = &b[(i + 4).min(end)..end];
        i += 2 + len;
        return Some((marker, payload));
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn walks_segments_until_the_image_data() {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xFF, 0xFF, 0xE1, 0, 6, b'E', b'x', b'i', b'f'];
        j.extend([0xFF, 0xE2, 0, 4, 1, 2, 0xFF, 0xDA, 0, 2, 0xFF, 0xE1, 0, 2]);
        let seen: Vec<(u8, Vec<u8>)> = super::segments(&j).map(|(m, p)| (m, p.to_vec())).collect();
        assert_eq!(seen, vec![(0xE1, b"Exif".to_vec()), (0xE2, vec![1, 2])]);
        // a segment that claims more than the file holds is cut at the end
        let cut = [0xFF, 0xD8, 0xFF, 0xE2, 0xFF, 0xFF, 7];
        assert_eq!(super::segments(&cut).map(|(_, p)| p.len()).collect::<Vec<_>>(), vec![1]);
    }
}
