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
pub mod memory;
pub mod nexmark;
mod options;
pub mod print;
mod registry;
pub mod values;

pub use error::{Error, Result};
pub use options::Options;
pub use registry::{ConnectorFactory, ConnectorTable, connector_for, connectors};
