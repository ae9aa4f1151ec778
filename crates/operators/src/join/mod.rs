//! Joins of two streams.

mod hash;

pub use hash::{IntervalBounds, JoinKind, StreamingJoin};
