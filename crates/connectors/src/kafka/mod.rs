//! The `kafka` and `upsert-kafka` connectors, on librdkafka (`rdkafka`).
//!
//! Source ([`source`]): partitions are splits dealt out to subtasks, offsets live in
//! checkpoints and are committed to the consumer group after each one; key and value
//! formats, `METADATA` columns ([`metadata`](self::metadata)). Sink ([`sink`]): none,
//! at-least-once or exactly-once (transactions) delivery, key-based partitioning;
//! `upsert-kafka` writes changelogs by key, with tombstones for deletes. Options:
//! [`config`]; the client context and topic metadata: `client.rs`.

mod client;
pub mod config;
mod connector;
pub mod metadata;
pub mod sink;
pub mod source;

pub use connector::{KafkaConnector, UpsertKafkaConnector};
