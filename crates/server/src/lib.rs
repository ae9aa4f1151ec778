//! The HTTP server of `sluice serve` and `sluice run --http`: the REST API and the
//! pipeline manager, `/metrics` (Prometheus), `/healthz` and `/readyz`, the ingest
//! endpoints (`POST /ingest/<table>` for `http` tables), the live event streams
//! (`GET /sse/<table>` for `sse` tables), the `view` tables over `GET /api/views` and
//! the PostgreSQL wire protocol, the web UI, API keys with scopes, rate limits and TLS.
//!
//! Owns: routing, the pipelines' lifecycle in server mode (submit, stop with a
//! savepoint, resume, keep across restarts), exporting the runtime's counters, and
//! turning answers into HTTP responses. Does not own: decoding ingest bodies or
//! checking a table's own token (the `http` and `sse` connectors do that, see
//! `sluice_connectors::http`), nor running jobs (`sluice_runtime`).
#![warn(missing_docs, unreachable_pub)]

mod api;
mod app;
pub mod auth;
pub mod config;
mod error;
mod ingest;
pub mod manager;
mod pg;
mod prometheus;
pub mod settings;
mod sse;
mod tail;
mod ui;
mod views;

pub use api::OPENAPI;
pub use app::{AppState, KeyAuthenticated, router, serve, tls_acceptor};
pub use config::ServerConfig;
pub use error::{Error, Result};
pub use manager::{Manager, ManagerSettings};
pub use pg::serve_pg;
pub use prometheus::render as render_metrics;
pub use tokio_rustls::TlsAcceptor;
