//! Test support shared by the crates' integration tests.
//!
//! Owns: [`SluiceDb`], the sqllogictest engine behind the golden SQL files in
//! `tests/sql/` (each `query` runs as a streaming pipeline and is checked against the
//! DataFusion batch oracle), row formatting for expected results, and helpers to run a
//! pipeline in-process.
//! Does not own: the tests themselves (they live in each crate's `tests/it/`).
#![warn(missing_docs, unreachable_pub)]

mod format;
mod slt;

pub use format::{format_batches, format_value};
pub use slt::{SluiceDb, run_golden_file};

use std::path::PathBuf;

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}
