//! The dataflow runtime: runs a [`StreamGraph`] as tokio tasks joined by bounded channels.
//!
//! Owns: the seams ([`Operator`], [`Source`], [`Sink`] and their factories), the graph
//! ([`StreamGraph`]), operator chaining, partitioning between subtasks (forward, hash,
//! rebalance, broadcast), the task loops, end-of-input and shutdown, dead-letter
//! output, checkpoints (barriers, the coordinator, restore, restarts) and the job's
//! metrics registry.
//! Does not own: SQL (`sluice-sql`), operator implementations (`sluice-operators`) or
//! connectors (`sluice-connectors`).
#![warn(missing_docs, unreachable_pub)]

mod checkpoint;
mod dead_letters;
mod error;
mod graph;
mod job;
pub mod metrics;
mod partition;
mod task;
mod traits;

pub use checkpoint::{CheckpointConfig, RestartStrategy, RestoredOffsets};
pub use dead_letters::DeadLetterFile;
pub use error::{Error, Result};
pub use graph::{EdgeKind, NodeId, NodeKind, StreamEdge, StreamGraph, StreamNode};
pub use job::{CheckpointStats, Job, JobConfig, JobSummary, ShutdownHandle};
pub use metrics::{JobMetrics, LagProbe};
pub use partition::{hash_rows, split_by_hash};
pub use traits::{
    DeadLetterOutput, Delivery, LookupCaching, LookupFactory, LookupTable, Operator,
    OperatorContext, OperatorFactory, Sink, SinkFactory, Source, SourceEvent, SourceFactory,
    SourceOffsets, SplitInfo, StateChanges, TaskInfo,
};

#[cfg(test)]
mod tests;
