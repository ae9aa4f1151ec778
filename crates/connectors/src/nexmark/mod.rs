//! `'connector' = 'nexmark'`: the Nexmark benchmark's auction events, generated natively.
//!
//! The stream is a sequence of event numbers 0, 1, 2, …; each number deterministically
//! becomes a person, an auction or a bid (proportions 1:3:46 by default) with an event
//! time from the configured rate, following the Nexmark generator's model. Subtask i of
//! N makes the batches `k` with `k % N == i`, so any parallelism yields the same events,
//! and a checkpoint only needs the next batch number: the source is replayable, hence
//! exactly-once.
//!
//! Guide: `config.rs` (options) → `timeline.rs` (event time) → `generator.rs` (event
//! values) → `columns.rs` (schema check, Arrow builders) → `source.rs` (subtasks,
//! throttling, offsets); `connector.rs` is the registry entry; `write.rs` writes the same
//! events as JSON/CSV for `sluice gen nexmark`.
//! Does not own: the computed `dateTime` column or watermarks of Nexmark's DDL (the SQL
//! layer evaluates them on the physical columns this source makes).

mod columns;
mod config;
mod connector;
mod generator;
mod source;
mod timeline;
mod write;

#[cfg(test)]
mod tests;

pub use config::{DEFAULT_BATCH_SIZE, DEFAULT_RATE, NexmarkConfig, RateShape};
pub use connector::{NexmarkConnector, NexmarkSourceFactory};
pub use generator::EventKind;
pub use write::{GenFormat, GenTable, write_events};
