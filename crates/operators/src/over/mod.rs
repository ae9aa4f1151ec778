//! `OVER` aggregates: per row, an aggregate over the preceding rows of its partition.

mod aggregate;

pub use aggregate::{OverAggregate, OverFrame};
