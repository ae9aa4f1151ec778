//! `'connector' = 'datagen'`: rows of random values or sequences for any schema, with
//! Flink's datagen options (`rows-per-second`, `number-of-rows`, `fields.<f>.kind`,
//! `min`, `max`, `max-past`, `length`, `start`, `end`, `null-rate`, `var-len`) plus a
//! `seed`.
//!
//! Guide: `config.rs` (options) → `fields.rs` (per-field plan, checked against the
//! declared types) → `values.rs` (column values) → `source.rs` (subtasks, pacing,
//! offsets); `connector.rs` is the registry entry.
//! Delivery: values depend only on (seed, subtask, row number), and the checkpoint holds
//! the row count and the seed, so a restore replays the same rows (exactly-once) except
//! for TIMESTAMP/DATE values, which follow the wall clock.
//! Does not own: computed columns or watermarks (the SQL layer).

mod config;
mod connector;
mod fields;
mod source;
mod values;

#[cfg(test)]
mod tests;

pub use connector::DatagenConnector;
