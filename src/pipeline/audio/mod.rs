//! Audio pipeline: symphonia decode, one block at a time → the job's work → its answer. Runs on
//! the same bounded pool and deadline as images; memory follows the block, not the file.

pub mod convert;
pub mod decode;
pub mod encode;
pub mod mix;
mod mp4_edit;
mod opus_decode;
pub mod probe;
pub mod resample;
pub mod waveform;

use super::output::{Sink, Spill};
use super::{Budget, Limits, PipelineError, Rendered, Result};
use crate::plan::audio::{AudioJob, WaveFormat, WaveStyle, Waveform};
use bytes::Bytes;

pub fn run(bytes: Bytes, job: &AudioJob, limits: Limits, spill: &Spill) -> Result<Rendered> {
    let budget = Budget::audio(limits);
    match job {
        AudioJob::Waveform(w) => render_waveform(bytes, w, &budget),
        AudioJob::Convert(c) => convert::convert(bytes, c, &budget, Sink::new(spill)),
    }
}

/// A window of the stream in frames: `[start, end)`, `end` open when the duration is not given.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    start: u64,
    end: Option<u64>,
}

impl Window {
    fn of(start_secs: f64, duration_secs: Option<f64>, sample_rate: u32) -> Window {
        let frames = |secs: f64| (secs * f64::from(sample_rate)).round() as u64;
        let start = frames(start_secs);
        Window { start, end: duration_secs.map(|d| start + frames(d).max(1)) }
    }

    /// The part of a block at `position` (its first frame) inside the window, as a frame range.
    fn clip(&self, position: u64, frames: usize) -> Option<std::ops::Range<usize>> {
        let block_end = position + frames as u64;
        let from = self.start.max(position);
        let to = self.end.map_or(block_end, |e| e.min(block_end));
        (from < to).then(|| (from - position) as usize..(to - position) as usize)
    }

    fn done(&self, position: u64) -> bool {
        self.end.is_some_and(|e| position >= e)
    }

    /// Decode every block and hand `each` the part inside the window; stop at its end. Answers
    /// the frames decoded. A window that starts past the end is the option's fault (400).
    fn each_block(
        &self,
        decoder: &mut decode::AudioDecoder,
        budget: &Budget,
        start_option: (&'static str, &'static str),
        mut each: impl FnMut(&[&[f32]]) -> Result<()>,
    ) -> Result<u64> {
        let mut position = 0u64;
        let mut ended = true;
        while let Some(block) = decoder.next_block(budget)? {
            let frames = block.frames();
            if let Some(range) = self.clip(position, frames) {
                let planes: Vec<&[f32]> = block.planes.iter().map(|p| &p[range.clone()]).collect();
                each(&planes)?;
            }
            position += frames as u64;
            if self.done(position) {
                ended = false;
                break;
            }
        }
        if ended {
            check_complete(position)?;
        }
        if position <= self.start {
            let length = position as f64 / f64::from(decoder.info.sample_rate);
            let (task, option) = start_option;
            return Err(PipelineError::bad_option(
                task,
                option,
                format!("is past the end of the audio ({length:.3} s)"),
            ));
        }
        Ok(position)
    }
}

fn render_waveform(bytes: Bytes, job: &Waveform, budget: &Budget) -> Result<Rendered> {
    let (mut decoder, _) = decode::open(bytes)?;
    let rate = decoder.info.sample_rate;
    let window = Window::of(job.start, job.duration, rate);
    let mut builder = waveform::EnvelopeBuilder::new(rate);
    window.each_block(&mut decoder, budget, ("waveform", "start"), |planes| {
        builder.push(planes);
        Ok(())
    })?;
    let envelope = builder.finish(job.width);
    let look = waveform::Look {
        width: job.width,
        height: job.height,
        color: job.color.0,
        background: job.background.0,
        style: match job.style {
            WaveStyle::Bars => waveform::Style::Bars,
            WaveStyle::Line => waveform::Style::Line,
            WaveStyle::Mirror => waveform::Style::Mirror,
        },
    };
    Ok(match job.format {
        WaveFormat::Png => Rendered::memory(waveform::png(&envelope, &look)?, "image/png", "png"),
        WaveFormat::Svg => Rendered::memory(waveform::svg(&envelope, &look).into_bytes(), "image/svg+xml", "svg"),
        WaveFormat::Json => {
            let body = waveform::json(&envelope).to_string().into_bytes();
            Rendered::memory(body, "application/json", "json")
        }
    })
}

/// A stream from which nothing decodes is not audio. (A stream shorter than its container
/// declares is answered for what it holds, as players do: header-only and cut files are common,
/// and MP3 lengths are estimates. A cut Ogg stream is refused earlier, by its missing end page.)
fn check_complete(decoded: u64) -> Result<()> {
    if decoded == 0 {
        return Err(PipelineError::Corrupt("no audio could be decoded from the file".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_clip_blocks_to_the_frame() {
        let w = Window::of(1.0, Some(0.5), 1000);
        assert_eq!((w.start, w.end), (1000, Some(1500)));
        assert_eq!(w.clip(0, 1000), None);
        assert_eq!(w.clip(900, 200), Some(100..200));
        assert_eq!(w.clip(1400, 200), Some(0..100));
        assert!(!w.done(1499) && w.done(1500));
        let open = Window::of(0.0, None, 44_100);
        assert_eq!(open.clip(5, 10), Some(0..10));
        assert!(!open.done(u64::MAX));
    }
}
