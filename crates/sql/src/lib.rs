//! Flink SQL for Sluice: from a `.sql` file to a runnable [`StreamGraph`].
//!
//! Owns: splitting a file into statements ([`script`]), the Flink DDL DataFusion does not
//! parse (`CREATE TABLE … WITH`, computed columns, `WATERMARK FOR`, Flink types) in
//! [`ddl`], the catalog of tables, views, functions and settings ([`catalog`]), planning
//! queries with DataFusion ([`planner`]), lowering optimized logical plans to the
//! runtime's graph ([`lower`]), and Flink's function library ([`functions`]).
//! Does not own: running the graph (`sluice-runtime`) or connectors (`sluice-connectors`).
#![warn(missing_docs, unreachable_pub)]

pub mod catalog;
pub mod ddl;
mod error;
pub mod functions;
mod insert;
mod legacy_windows;
pub mod lower;
mod options;
mod oracle;
mod pipeline;
pub mod planner;
pub mod script;
mod temporal;
mod windows;

pub use error::{Error, Result};
pub use oracle::batch_oracle;
pub use pipeline::{Pipeline, PipelineOptions};
