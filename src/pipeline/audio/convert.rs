//! `video_convert`/`audio_convert` of an audio source: decode → trim → mix → resample → encode,
//! one block at a time, so the PCM of a long file is never held whole, and the encoded output
//! goes to a [`Sink`] that moves to a file once it is large.

use super::encode::{self, EncodeSpec, Encoder};
use super::mix::mix;
use super::resample::Resampler;
use super::{decode, Window};
use crate::pipeline::output::{Output, Sink};
use crate::pipeline::{Budget, PipelineError, Rendered, Result};
use crate::plan::audio::Convert;
use bytes::Bytes;

pub fn convert(bytes: Bytes, job: &Convert, budget: &Budget, sink: Sink) -> Result<Rendered> {
    let (mut decoder, _) = decode::open(bytes)?;
    let rate = decoder.info.sample_rate;
    let out_rate = encode::supported_rate(job.format, job.sample_rate.unwrap_or(rate));
    let max = encode::max_channels(job.format);
    if let Some(wanted) = job.channels.filter(|&c| c > max) {
        let why = format!("{wanted} channels: {} holds at most {max} here", job.format.extension());
        return Err(PipelineError::bad_option(job.task, "audio_channels", why));
    }
    let window = Window::of(job.offset, job.length, rate);
    let mut chain: Option<Chain> = None;
    let mut sink = Some(sink);
    window.each_block(&mut decoder, budget, (job.task, "clip_offset"), |planes| {
        let chain = match (&mut chain, sink.take()) {
            (Some(chain), _) => chain,
            (None, Some(sink)) => chain.insert(Chain::new(job, rate, out_rate, planes.len(), sink)?),
            (None, None) => return Err(PipelineError::codec("audio encoder", "the output was lost")),
        };
        chain.push(planes)
    })?;
    let chain = chain.ok_or_else(|| PipelineError::Corrupt("no audio could be decoded from the file".into()))?;
    let (mime, extension) = (job.format.mime(), job.format.extension());
    Ok(Rendered { body: chain.finish()?, content_type: mime, extension, shared_decode: false, quality: None })
}

/// Mixer, resampler and encoder, set up once the first block says how many channels there are
/// (some containers leave that to the codec).
struct Chain {
    channels: usize,
    resampler: Option<Resampler>,
    encoder: Box<dyn Encoder>,
}

impl Chain {
    fn new(job: &Convert, rate: u32, out_rate: u32, source_channels: usize, sink: Sink) -> Result<Chain> {
        let max = usize::from(encode::max_channels(job.format));
        let channels = job.channels.map_or(source_channels.min(max), usize::from);
        // mixed first, then resampled: fewer channels to resample when mixing down
        let resampler = (rate != out_rate).then(|| Resampler::new(rate, out_rate, channels)).transpose()?;
        let spec = EncodeSpec {
            format: job.format,
            sample_rate: out_rate,
            channels: channels as u16,
            bits: job.bits(),
            bitrate_kbps: job.bitrate.or_else(|| encode::default_bitrate(job.format, channels as u16)),
            title: job.title.clone(),
        };
        // an encoder's option errors name the task the URL used
        let encoder = encode::encoder(&spec, sink).map_err(|e| e.for_task(job.task))?;
        Ok(Chain { channels, resampler, encoder })
    }

    fn push(&mut self, planes: &[&[f32]]) -> Result<()> {
        let mixed = mix(planes, self.channels);
        let mixed: Vec<&[f32]> = mixed.iter().map(Vec::as_slice).collect();
        match &mut self.resampler {
            Some(r) => {
                let out = r.push(&mixed)?;
                self.encoder.push(&out.iter().map(Vec::as_slice).collect::<Vec<_>>())
            }
            None => self.encoder.push(&mixed),
        }
    }

    fn finish(mut self) -> Result<Output> {
        if let Some(r) = &mut self.resampler {
            let rest = r.finish()?;
            self.encoder.push(&rest.iter().map(Vec::as_slice).collect::<Vec<_>>())?;
        }
        self.encoder.finish()
    }
}
