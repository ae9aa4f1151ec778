//! Operator state: key-grouped tables and their snapshots.
//!
//! Owns: the declaration of a state table ([`StateTableSpec`]), the stable hash of keys
//! and their key groups ([`hash_keys`], [`key_group`], [`KeyGroupRange`]), snapshots of
//! tables tagged by key group ([`TableSnapshot`]) and their checksummed bytes
//! ([`encode`], [`decode`]), and the checkpoint store ([`CheckpointStore`]) that keeps
//! them with a manifest per checkpoint.
//! Does not own: what an operator keeps (operators decide) or when to snapshot (runtime).
#![warn(missing_docs, unreachable_pub)]

use datafusion::arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

mod direct;
mod snapshot;
mod store;

pub use snapshot::{
    KEY_GROUP_COLUMN, KeyGroupRange, TableSnapshot, chain_tables, decode, encode, encode_to,
    hash_keys, key_groups_of,
};
pub use store::{CheckpointStore, FileEntry, Manifest, shared_name};

/// What can go wrong with state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Arrow failed (building or reading a snapshot batch).
    #[error("{0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// DataFusion failed (hashing keys).
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// A snapshot is truncated, altered or not a snapshot.
    #[error("damaged state snapshot: {0}")]
    Corrupt(String),
    /// The checkpoint store failed (I/O, permissions, a missing object).
    #[error("checkpoint store: {0}")]
    Store(String),
    /// A snapshot does not fit the operator restoring it.
    #[error("state does not fit the pipeline: {0}")]
    Mismatch(String),
}

impl Error {
    /// A snapshot table that `operator` does not keep (state of another query).
    pub fn unexpected_table(operator: &str, table: &str) -> Error {
        Error::Mismatch(format!("{operator}: unexpected state table '{table}'"))
    }
}

/// A `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The default number of key groups state is partitioned into. A checkpoint can be
/// restored onto any worker count that is at most this.
pub const DEFAULT_KEY_GROUPS: u32 = 128;

/// How a state table is read and written, which decides its snapshot layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateTableKind {
    /// One value per key (aggregates, dedup).
    Value,
    /// Many rows per key, ordered by time (joins, session windows, top-N).
    List,
    /// Global per-subtask values (watermarks, source offsets).
    Global,
}

/// Declares one state table of an operator.
#[derive(Debug, Clone)]
pub struct StateTableSpec {
    /// Name, unique within the operator (e.g. `window_acc`).
    pub name: String,
    /// Layout.
    pub kind: StateTableKind,
    /// Schema of a snapshot of the table (key columns first).
    pub schema: SchemaRef,
    /// How many leading columns of `schema` form the key.
    pub key_columns: usize,
}

/// The key group of a key hash: a stable function of the hash only, so the same key
/// lands in the same group whatever the worker count.
pub fn key_group(hash: u64, key_groups: u32) -> u32 {
    (hash % u64::from(key_groups.max(1))) as u32
}

/// The subtask that owns `group` when `key_groups` groups are spread over `parallelism`
/// subtasks in contiguous ranges (as Flink does).
pub fn subtask_for_group(group: u32, key_groups: u32, parallelism: usize) -> usize {
    let p = parallelism.max(1) as u64;
    ((u64::from(group) * p) / u64::from(key_groups.max(1))) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_groups_spread_over_all_subtasks_in_ranges() {
        let owners: Vec<usize> = (0..DEFAULT_KEY_GROUPS)
            .map(|g| subtask_for_group(g, DEFAULT_KEY_GROUPS, 3))
            .collect();
        assert_eq!(owners[0], 0);
        assert_eq!(owners[127], 2);
        assert!(owners.windows(2).all(|w| w[0] <= w[1]));
    }
}
