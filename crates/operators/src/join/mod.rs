//! Joins of two streams.

mod hash;
mod lookup;
mod temporal;

pub use hash::{IntervalBounds, JoinKind, StreamingJoin};
pub use lookup::LookupJoin;
pub use temporal::TemporalJoin;
