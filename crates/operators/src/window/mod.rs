//! Event time: the watermark assigner that follows a source.

mod assigner;

pub use assigner::{LateRows, WatermarkAssigner};
