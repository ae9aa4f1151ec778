//! A sink that collects batches in memory: what tests and `SELECT` results in the
//! serving layer read. Not a `'connector'`: the planner creates it directly.

mod sink;

pub use sink::{Collected, MemorySinkFactory};
