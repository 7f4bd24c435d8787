//! Sample-rate conversion with rubato's FFT resampler, fed block by block: the input waits in a
//! buffer of one chunk at most, and the output is exactly `round(input × to / from)` frames,
//! aligned with the input (the filter's delay is dropped at the start, flushed at the end).

use super::super::{PipelineError, Result};
use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Indexing, Resampler as _};

const CHUNK: usize = 1024;

pub struct Resampler {
    inner: Fft<f32>,
    channels: usize,
    pending: Vec<Vec<f32>>,
    out: Vec<Vec<f32>>,
    /// Output frames still to drop: the filter's delay.
    delay: usize,
    consumed: u64,
    emitted: u64,
    ratio: (u64, u64),
}

impl Resampler {
    pub fn new(from: u32, to: u32, channels: usize) -> Result<Resampler> {
        let inner = Fft::<f32>::new(from as usize, to as usize, CHUNK, channels, FixedSync::Input)
            .map_err(|e| PipelineError::codec("resampler", e))?;
        let delay = inner.output_delay();
        let out = vec![vec![0.0; inner.output_frames_max()]; channels];
        Ok(Resampler {
            inner,
            channels,
            pending: vec![Vec::with_capacity(2 * CHUNK); channels],
            out,
            delay,
            consumed: 0,
            emitted: 0,
            ratio: (u64::from(from), u64::from(to)),
        })
    }

    /// Take a block; answer the output frames that are ready.
    pub fn push(&mut self, planes: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        for (pending, plane) in self.pending.iter_mut().zip(planes) {
            pending.extend_from_slice(plane);
        }
        self.consumed += planes.first().map_or(0, |p| p.len()) as u64;
        let mut ready = vec![Vec::new(); self.channels];
        while self.pending[0].len() >= self.inner.input_frames_next() {
            self.chunk(None, &mut ready)?;
        }
        Ok(ready)
    }

    /// The end of the input: the rest of the output.
    pub fn finish(&mut self) -> Result<Vec<Vec<f32>>> {
        let (from, to) = self.ratio;
        let total = (self.consumed * to + from / 2) / from;
        let mut ready = vec![Vec::new(); self.channels];
        while self.emitted < total {
            let partial = self.pending[0].len().min(self.inner.input_frames_next());
            self.chunk(Some(partial), &mut ready)?;
        }
        let extra = (self.emitted - total) as usize;
        for plane in &mut ready {
            plane.truncate(plane.len() - extra.min(plane.len()));
        }
        Ok(ready)
    }

    /// Resample one chunk (a partial one, padded with silence, at the end) into `ready`.
    fn chunk(&mut self, partial: Option<usize>, ready: &mut [Vec<f32>]) -> Result<()> {
        let need = self.inner.input_frames_next();
        let have = self.pending[0].len();
        if have < need {
            for plane in &mut self.pending {
                plane.resize(need, 0.0);
            }
        }
        let input = SequentialSliceOfVecs::new(&self.pending, self.channels, need)
            .map_err(|e| PipelineError::codec("resampler", e))?;
        let frames = self.out[0].len();
        let mut output = SequentialSliceOfVecs::new_mut(&mut self.out, self.channels, frames)
            .map_err(|e| PipelineError::codec("resampler", e))?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        let (_, produced) = self
            .inner
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| PipelineError::codec("resampler", e))?;
        // `pending` holds at least `need` frames now (a short last chunk was padded)
        for plane in &mut self.pending {
            plane.drain(..need);
        }
        let skip = self.delay.min(produced);
        self.delay -= skip;
        for (ready, out) in ready.iter_mut().zip(&self.out) {
            ready.extend_from_slice(&out[skip..produced]);
        }
        self.emitted += (produced - skip) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() as f32 * 0.8)
            .collect()
    }

    /// The frequency of a sine by its zero crossings (rising), over whole periods.
    fn pitch(samples: &[f32], rate: u32) -> f64 {
        let rising: Vec<usize> = (1..samples.len()).filter(|&i| samples[i - 1] < 0.0 && samples[i] >= 0.0).collect();
        let (first, last) = (rising[0], rising[rising.len() - 1]);
        (rising.len() - 1) as f64 * f64::from(rate) / (last - first) as f64
    }

    fn run(from: u32, to: u32, input: &[f32], blocks: &[usize]) -> Vec<f32> {
        let mut r = Resampler::new(from, to, 1).unwrap();
        let mut out = Vec::new();
        let mut at = 0;
        for &n in blocks.iter().chain(std::iter::repeat(&4096)) {
            if at >= input.len() {
                break;
            }
            let end = (at + n).min(input.len());
            out.extend(r.push(&[&input[at..end]]).unwrap().remove(0));
            at = end;
        }
        out.extend(r.finish().unwrap().remove(0));
        out
    }

    #[test]
    fn a_resampled_sine_keeps_its_pitch_and_its_length() {
        for (from, to) in [(44_100, 48_000), (48_000, 22_050), (22_050, 44_100), (8_000, 48_000)] {
            let input = sine(1000.0, from, from as usize * 2);
            let out = run(from, to, &input, &[17, 1000, 3]);
            let want = (input.len() as u64 * u64::from(to)).div_ceil(u64::from(from)) as usize;
            assert!(out.len().abs_diff(want) <= 1, "{from}->{to}: {} frames, want {want}", out.len());
            let mid = &out[out.len() / 4..out.len() * 3 / 4];
            let hz = pitch(mid, to);
            assert!((hz - 1000.0).abs() < 1.0, "{from}->{to}: {hz} Hz");
            // aligned: the output's first rising zero crossing sits where the input's does
            let peak = out.iter().take(to as usize / 100).fold(0.0f32, |m, s| m.max(s.abs()));
            assert!(peak > 0.5, "{from}->{to}: the start was delayed into silence ({peak})");
        }
    }

    #[test]
    fn short_and_empty_inputs_finish() {
        assert!(run(44_100, 48_000, &[], &[]).is_empty());
        assert_eq!(run(44_100, 48_000, &[0.5; 10], &[10]).len(), 11);
    }
}
