//! Connectors: where rows come from and where they go.
//!
//! Owns: one folder per connector (`config.rs`, `source.rs`, `sink.rs`), each exposing
//! a [`ConnectorFactory`], all listed in the plain [`connectors`] registry; and the
//! [`Options`] helper that makes unknown `WITH` options an error.
//! Does not own: formats (`sluice-formats`) or the task loop (`sluice-runtime`).
#![warn(missing_docs, unreachable_pub)]

pub mod blackhole;
pub mod datagen;
mod error;
pub mod filesystem;
pub mod http;
pub mod hub;
pub mod jdbc;
pub mod kafka;
mod lookup;
pub mod memory;
mod messages;
pub mod mqtt;
pub mod nats;
pub mod nexmark;
mod options;
pub mod print;
pub mod redis;
mod registry;
pub mod sse;
pub mod template;
mod text_rows;
mod tls;
pub mod values;
pub mod view;
pub mod webhook;
pub mod websocket;

pub use error::{Error, Result};

use sluice_runtime::{RestoredOffsets, SourceOffsets, TaskInfo};

/// The offsets a generator-like source (whose positions are per subtask) resumes from:
/// its own subtask's, which needs the parallelism of the run that took the checkpoint.
pub(crate) fn own_offsets(
    table: &str,
    connector: &str,
    restored: Option<RestoredOffsets>,
    task: &TaskInfo,
) -> Result<Option<SourceOffsets>> {
    let Some(r) = restored else {
        return Ok(None);
    };
    match r.same_subtask(task) {
        Some(o) => Ok(Some(o.clone())),
        None => Err(Error::Unsupported {
            table: table.to_string(),
            message: format!(
                "the {connector} source was checkpointed with {} workers and cannot resume on {}; \
                 run with --workers {}, or with --fresh to start over",
                r.parallelism, task.parallelism, r.parallelism
            ),
        }),
    }
}
pub use options::Options;
pub use registry::{
    ConnectorFactory, ConnectorTable, MetadataColumn, connector_for, connectors, lookup_for,
    sink_for, source_for,
};
