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
    Convert(Convert),
}

/// `video_convert`/`audio_convert` of an audio source: `[offset, offset + length)` of the
/// source, mixed to `channels`, resampled to `sample_rate`, encoded as `format`.
#[derive(Debug, Clone, PartialEq)]
pub struct Convert {
    /// `video_convert` or `audio_convert`: the task errors name.
    pub task: &'static str,
    pub format: AudioFormat,
    /// kbit/s, lossy formats only (the encoder's default when absent).
    pub bitrate: Option<u32>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u16>,
    /// Seconds into the source.
    pub offset: f64,
    pub length: Option<f64>,
    pub title: Option<String>,
}

/// Options of `video_convert` that only a video output would use: 501 on audio.
const VIDEO_ONLY: &[&str] = &[
    "width",
    "height",
    "upscale",
    "aspect_mode",
    "two_pass",
    "video_bitrate",
    "fps",
    "keyframe_interval",
    "watermark_url",
    "watermark_top",
    "watermark_right",
    "watermark_bottom",
    "watermark_left",
    "watermark_width",
    "watermark_height",
    "frame_count",
];

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

/// An audio output format (`video_convert`'s audio presets and Refract's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioFormat {
    Wav,
    Flac,
    Mp3,
    /// Ogg Vorbis (Filestack's `oga`)
    Vorbis,
    /// Ogg Opus
    Opus,
    /// AAC-LC in an MPEG-4 audio file (the `aac` feature)
    M4a,
}

impl AudioFormat {
    pub fn mime(self) -> &'static str {
        match self {
            AudioFormat::Wav => "audio/wav",
            AudioFormat::Flac => "audio/flac",
            AudioFormat::Mp3 => "audio/mpeg",
            AudioFormat::Vorbis => "audio/ogg",
            AudioFormat::Opus => "audio/ogg; codecs=opus",
            AudioFormat::M4a => "audio/mp4",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            AudioFormat::Wav => "wav",
            AudioFormat::Flac => "flac",
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Vorbis => "oga",
            AudioFormat::Opus => "opus",
            AudioFormat::M4a => "m4a",
        }
    }
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
            "video_convert" | "audio_convert" => convert(task).map(AudioJob::Convert),
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

fn convert(task: &Task) -> Result<Convert> {
    if let Some(option) = VIDEO_ONLY.iter().find(|o| task.get(o).is_some()) {
        return Err(Error::not_implemented(task.name(), Some(option)));
    }
    let text = |k| task.get(k).and_then(Param::as_str).map(str::to_string);
    let int = |k| task.get(k).and_then(Param::as_i64);
    let format = target(task.name(), text("preset"), text("audio_codec"), text("extname"))?;
    if let Some(rate) = int("audio_sample_rate").filter(|r| !(8_000..=192_000).contains(r)) {
        let why = format!("{rate} Hz is outside 8000…192000");
        return Err(Error::bad_option(task.name(), "audio_sample_rate", why));
    }
    Ok(Convert {
        task: task.spec.name,
        format,
        bitrate: int("audio_bitrate").map(|n| n as u32),
        sample_rate: int("audio_sample_rate").map(|n| n as u32),
        channels: int("audio_channels").map(|n| n as u16),
        offset: text("clip_offset").map_or(0.0, |t| super::seconds(&t)),
        length: text("clip_length").map(|t| super::seconds(&t)),
        title: text("title"),
    })
}

/// The output format: `preset`, else `audio_codec`, else `extname`; they must agree.
fn target(
    task: &'static str,
    preset: Option<String>,
    codec: Option<String>,
    extname: Option<String>,
) -> Result<AudioFormat> {
    let by_preset = preset.as_deref().map(|p| preset_format(task, p)).transpose()?;
    let by_codec = codec.as_deref().map(|c| codec_format(task, c)).transpose()?;
    let by_ext = extname.as_deref().and_then(|e| preset_format(task, e.trim_start_matches('.')).ok());
    match (by_preset, by_codec) {
        (Some(p), Some(c)) if p != c => Err(Error::bad_option(
            task,
            "audio_codec",
            format!("does not match the preset `{}`", preset.unwrap_or_default()),
        )),
        (Some(f), _) | (None, Some(f)) => Ok(f),
        (None, None) => by_ext.ok_or_else(|| {
            Error::bad_option(task, "preset", "an audio conversion needs a preset (mp3, m4a, oga, wav, flac, opus…)")
        }),
    }
}

/// Filestack's audio presets and Refract's lossless/Opus ones; video presets are 501, and so
/// are the AAC ones in a build without the `aac` feature.
fn preset_format(task: &'static str, preset: &str) -> Result<AudioFormat> {
    Ok(match preset.to_ascii_lowercase().as_str() {
        "mp3" => AudioFormat::Mp3,
        "oga" | "ogg" | "vorbis" => AudioFormat::Vorbis,
        "opus" => AudioFormat::Opus,
        "flac" => AudioFormat::Flac,
        "wav" => AudioFormat::Wav,
        "m4a" | "aac" => aac(task, "preset:m4a/aac")?,
        "hls.variant.audio" => return Err(Error::not_implemented(task, Some("preset:hls.variant.audio"))),
        "h264" | "h264.hi" | "webm" | "webm.hi" | "ogg.hi" | "hls.variant" => {
            return Err(Error::not_implemented(task, Some("video presets")))
        }
        other => {
            let why = format!("`{other}` is not a preset (audio: mp3, m4a, oga, opus, flac, wav)");
            return Err(Error::bad_option(task, "preset", why));
        }
    })
}

fn codec_format(task: &'static str, codec: &str) -> Result<AudioFormat> {
    Ok(match codec.to_ascii_lowercase().as_str() {
        "libmp3lame" | "mp3" => AudioFormat::Mp3,
        "libvorbis" | "vorbis" => AudioFormat::Vorbis,
        "libopus" | "opus" => AudioFormat::Opus,
        "flac" => AudioFormat::Flac,
        "pcm_s16le" | "pcm_s24le" => AudioFormat::Wav,
        "libfdk_aac" | "aac" => aac(task, "audio_codec:aac")?,
        other => return Err(Error::not_implemented(task, Some(if other.is_empty() { "audio_codec" } else { other }))),
    })
}

/// M4A (AAC-LC), when this build has the encoder.
#[cfg(feature = "aac")]
fn aac(_task: &'static str, _what: &str) -> Result<AudioFormat> {
    Ok(AudioFormat::M4a)
}

#[cfg(not(feature = "aac"))]
fn aac(task: &'static str, what: &str) -> Result<AudioFormat> {
    let why = format!("{what} (built without the `aac` feature: no AAC encoder)");
    Err(Error::not_implemented(task, Some(why.as_str())))
}

impl Convert {
    /// The bit depth of lossless output (`audio_codec:pcm_s24le` is not distinguished yet).
    pub fn bits(&self) -> u16 {
        16
    }
}

/// The storage options and output name of a `video_convert` (its result is stored, as
/// Filestack does); `None` for every other plan.
pub fn conversion_store(plan: &Plan) -> Option<super::Store> {
    let task = plan.processing().find(|t| t.name() == "video_convert")?;
    let text = |k| task.get(k).and_then(Param::as_str).map(str::to_string);
    Some(super::Store {
        filename: conversion_filename(plan),
        container: text("container"),
        path: text("path"),
        location: text("location"),
        canonical: task.canonical(),
        conversion: true,
    })
}

/// `filename` with `extname` (or the format's own extension) for a conversion's answer.
pub fn conversion_filename(plan: &Plan) -> Option<String> {
    let task = plan.processing().find(|t| matches!(t.name(), "video_convert" | "audio_convert"))?;
    let text = |k| task.get(k).and_then(Param::as_str).map(str::to_string);
    let ext = text("extname").map(|e| e.trim_start_matches('.').to_string());
    let name = text("filename")?;
    let stem = name.rsplit_once('.').map_or(name.as_str(), |(stem, _)| stem).to_string();
    Some(match ext {
        Some(ext) => format!("{stem}.{ext}"),
        None => name,
    })
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
    fn aac_presets_and_codecs_are_m4a_in_an_aac_build() {
        let tasks = [
            "audio_convert=p:m4a",
            "audio_convert=preset:aac",
            "audio_convert=audio_codec:libfdk_aac",
            "audio_convert=p:m4a,audio_codec:aac",
        ];
        for task in tasks {
            let got = job(&format!("/{task}/AAAAAAAAAAAAAAAAAAAA"));
            if cfg!(feature = "aac") {
                let format = match &got {
                    Ok(Job::Audio(AudioJob::Convert(c))) => Some(c.format),
                    _ => None,
                };
                assert_eq!(format, Some(AudioFormat::M4a), "{task}: {got:?}");
            } else {
                let e = got.unwrap_err().to_string();
                assert!(e.contains("without the `aac` feature"), "{task}: {e}");
            }
        }
        assert_eq!((AudioFormat::M4a.mime(), AudioFormat::M4a.extension()), ("audio/mp4", "m4a"));
    }

    #[test]
    fn an_audio_task_runs_alone() {
        let e = job("/waveform/resize=w:10/AAAAAAAAAAAAAAAAAAAA").unwrap_err().to_string();
        assert!(e.contains("alone") && e.contains("resize"), "{e}");
        assert!(matches!(job("/resize=w:10/AAAAAAAAAAAAAAAAAAAA").unwrap(), Job::Image(_)));
    }
}
