//! Joins of two streams.

mod hash;
mod temporal;

pub use hash::{IntervalBounds, JoinKind, StreamingJoin};
pub use temporal::TemporalJoin;
