//! The job the pipeline runs: the plan's typed image steps and output settings (compiled, and
//! checked for what the pipeline cannot honour, in `plan::image`).

pub use crate::plan::audio::{AudioJob, Job, WaveFormat, WaveStyle, Waveform};
pub use crate::plan::image::{Align, Answer, Fit, ImageJob, Op, OutputSpec};
