//! Operators: the implementations of [`sluice_runtime::Operator`].
//!
//! Owns: one folder per operator family. `stateless` holds projection and filter
//! (DataFusion physical expressions evaluated per batch, with per-row isolation of
//! rows that fail so that one bad row never stops a pipeline).
//! Does not own: planning (which operator to use: `sluice-sql`) or moving batches
//! between tasks (`sluice-runtime`).
#![warn(missing_docs, unreachable_pub)]

pub mod aggregate;
pub mod join;
pub mod over;
pub mod rank;
pub mod stateless;
pub mod time;
pub mod window;

#[cfg(test)]
mod snapshot_tests;
