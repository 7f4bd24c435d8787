//! Channel mixing: the source's channels to the output's, one block at a time.

use std::f32::consts::FRAC_1_SQRT_2;

/// `planes` (one per input channel) mixed to `out` channels.
///
/// - same count: unchanged;
/// - to mono: the mean of every channel;
/// - from mono: the one channel copied to each;
/// - 5.1 (WAV/SMPTE order L R C LFE Ls Rs) to stereo: ITU-R BS.775 (centre and surrounds at
///   −3 dB, LFE dropped), scaled so a full-scale input cannot clip;
/// - otherwise: output channel `j` is the mean of the input channels `i` with `i % out == j`
///   (down), or input `j % in` (up).
pub fn mix(planes: &[&[f32]], out: usize) -> Vec<Vec<f32>> {
    let inputs = planes.len();
    let frames = planes.first().map_or(0, |p| p.len());
    if inputs == out {
        return planes.iter().map(|p| p.to_vec()).collect();
    }
    if out == 1 {
        let scale = 1.0 / inputs as f32;
        return vec![(0..frames).map(|f| planes.iter().map(|p| p[f]).sum::<f32>() * scale).collect()];
    }
    if inputs == 6 && out == 2 {
        return surround_to_stereo(planes, frames);
    }
    if inputs < out {
        return (0..out).map(|j| planes[j % inputs].to_vec()).collect();
    }
    (0..out)
        .map(|j| {
            let group: Vec<&[f32]> = planes.iter().skip(j).step_by(out).copied().collect();
            let scale = 1.0 / group.len() as f32;
            (0..frames).map(|f| group.iter().map(|p| p[f]).sum::<f32>() * scale).collect()
        })
        .collect()
}

fn surround_to_stereo(p: &[&[f32]], frames: usize) -> Vec<Vec<f32>> {
    let norm = 1.0 / (1.0 + 2.0 * FRAC_1_SQRT_2);
    let side = |front: &[f32], back: &[f32]| -> Vec<f32> {
        (0..frames).map(|f| (front[f] + FRAC_1_SQRT_2 * (p[2][f] + back[f])) * norm).collect()
    };
    vec![side(p[0], p[4]), side(p[1], p[5])]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_keep_levels_and_never_clip() {
        let (l, r) = ([1.0f32, 0.5], [0.0f32, -0.5]);
        assert_eq!(mix(&[&l, &r], 1), vec![vec![0.5, 0.0]]);
        assert_eq!(mix(&[&l], 2), vec![l.to_vec(), l.to_vec()]);
        assert_eq!(mix(&[&l, &r], 2), vec![l.to_vec(), r.to_vec()]);
        let full = [1.0f32; 4];
        let six: Vec<&[f32]> = vec![&full; 6];
        let stereo = mix(&six, 2);
        assert!(stereo.iter().flatten().all(|s| (*s - 1.0).abs() < 1e-6), "{stereo:?}");
        let four: Vec<&[f32]> = vec![&l, &r, &l, &r];
        assert_eq!(mix(&four, 2), vec![l.to_vec(), r.to_vec()]);
        let up = mix(&[&l, &r], 4);
        assert_eq!(up.len(), 4);
        assert_eq!(up[3], r.to_vec());
    }

    #[test]
    fn an_empty_block_mixes_to_an_empty_block() {
        let empty: [f32; 0] = [];
        assert_eq!(mix(&[&empty, &empty], 1), vec![Vec::<f32>::new()]);
    }
}
