//! The `jdbc` connector, for PostgreSQL (and TimescaleDB, which is PostgreSQL).
//!
//! A sink that upserts by the table's `PRIMARY KEY` (appends without one), exactly-once
//! with checkpoints by staging each checkpoint's rows and applying them in one
//! transaction when it completes: see [`sink`]. Options: [`config`]; the statements it
//! runs: `sql.rs`; how Arrow columns travel: `params.rs`.

pub mod config;
mod connector;
pub mod lookup;
mod params;
pub mod scan;
pub mod sink;
mod sql;
pub mod tls;

pub use connector::JdbcConnector;
