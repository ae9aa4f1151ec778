//! Joins of two streams.

mod hash;

pub use hash::{JoinKind, StreamingJoin};
