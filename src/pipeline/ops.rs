//! The paths the binary, the benches and `run_with` have always used for image operations. The
//! steps themselves live one per file in [`super::steps`]; this module only re-exports them so
//! that moving a step never touches its callers.

pub use super::steps::apply;
pub use super::steps::resize::{resize_geometry, ResizeGeometry};
pub use super::steps::watermark::watermark;
