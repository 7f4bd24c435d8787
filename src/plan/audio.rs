//! Audio jobs: what the audio pipeline runs, compiled from the plan like [`ImageJob`]. Today the
//! `waveform` task; `video_convert`'s audio targets join it with their encoders.

use super::image::ImageJob;
use super::{Param, Plan, Rgba, Task};
use crate::error::{Error, Result};
use crate::schema::Support;

/// A compiled plan: image steps, or an audio job.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    Image(ImageJob),
    Audio(AudioJob),
}

impl Job {
    /// An audio job when the plan has an audio task (which then must be its only processing
    /// task), else an image job.
    pub fn compile(plan: &Plan) -> Result<Job> {
        if !plan.processing().any(|t| t.spec.support == Support::Audio) {
            return ImageJob::compile(plan).map(Job::Image);
        }
        AudioJob::compile(plan).map(Job::Audio)
    }

    pub fn image(&self) -> Option<&ImageJob> {
        match self {
            Job::Image(job) => Some(job),
            Job::Audio(_) => None,
        }
    }

    /// Stored files the job reads besides its source (watermarks).
    pub fn overlays(&self) -> Vec<&str> {
        self.image().map(ImageJob::overlays).unwrap_or_default()
    }

    /// Whether the output format depends on `Accept`.
    pub fn negotiates(&self) -> bool {
        self.image().is_some_and(ImageJob::negotiates)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AudioJob {
    Waveform(Waveform),
}

/// `waveform`: the envelope of `[start, start + duration)` (the whole file by default).
#[derive(Debug, Clone, PartialEq)]
pub struct Waveform {
    pub width: u32,
    pub height: u32,
    pub color: Rgba,
    pub background: Rgba,
    pub style: WaveStyle,
    pub start: f64,
    pub duration: Option<f64>,
    pub format: WaveFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaveStyle {
    Bars,
    Line,
    Mirror,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaveFormat {
    Png,
    Svg,
    Json,
}

impl AudioJob {
    fn compile(plan: &Plan) -> Result<AudioJob> {
        let mut tasks = plan.processing();
        let (Some(task), None) = (tasks.next(), tasks.next()) else {
            let names: Vec<&str> = plan.processing().map(Task::name).collect();
            return Err(Error::bad(format!(
                "an audio task runs alone: it cannot be chained with other processing tasks ({})",
                names.join(", ")
            )));
        };
        match task.name() {
            "waveform" => Ok(AudioJob::Waveform(waveform(task))),
            other => Err(Error::not_implemented(other, None)),
        }
    }
}

fn waveform(task: &Task) -> Waveform {
    let int = |k| task.get(k).and_then(Param::as_i64).unwrap_or(1).clamp(1, 4000) as u32;
    let color = |k| match task.get(k) {
        Some(Param::Color(c, _)) => *c,
        _ => Rgba::BLACK,
    };
    let word = |k| task.get(k).and_then(Param::as_str).unwrap_or("");
    Waveform {
        width: int("width"),
        height: int("height"),
        color: color("color"),
        background: color("background"),
        style: match word("style") {
            "line" => WaveStyle::Line,
            "mirror" => WaveStyle::Mirror,
            _ => WaveStyle::Bars,
        },
        start: task.get("start").and_then(Param::as_f64).unwrap_or(0.0),
        duration: task.get("duration").and_then(Param::as_f64),
        format: match word("format") {
            "svg" => WaveFormat::Svg,
            "json" => WaveFormat::Json,
            _ => WaveFormat::Png,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url;

    fn job(path: &str) -> Result<Job> {
        let parsed = url::parse(path, None)?;
        Job::compile(&Plan::build(&parsed)?)
    }

    #[test]
    fn waveform_compiles_with_its_defaults() {
        let Job::Audio(AudioJob::Waveform(w)) = job("/waveform/AAAAAAAAAAAAAAAAAAAA").unwrap() else { panic!() };
        assert_eq!(
            (w.width, w.height, w.style, w.format, w.start, w.duration),
            (800, 200, WaveStyle::Bars, WaveFormat::Png, 0.0, None)
        );
        assert_eq!((w.color, w.background), (Rgba::BLACK, Rgba::TRANSPARENT));
        let Job::Audio(AudioJob::Waveform(w)) =
            job("/waveform=w:300,h:50,c:red,s:mirror,start:1.5,duration:2,f:svg/AAAAAAAAAAAAAAAAAAAA").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (w.width, w.height, w.style, w.format, w.start, w.duration),
            (300, 50, WaveStyle::Mirror, WaveFormat::Svg, 1.5, Some(2.0))
        );
        assert_eq!(w.color, Rgba([255, 0, 0, 255]));
    }

    #[test]
    fn an_audio_task_runs_alone() {
        let e = job("/waveform/resize=w:10/AAAAAAAAAAAAAAAAAAAA").unwrap_err().to_string();
        assert!(e.contains("alone") && e.contains("resize"), "{e}");
        assert!(matches!(job("/resize=w:10/AAAAAAAAAAAAAAAAAAAA").unwrap(), Job::Image(_)));
    }
}
