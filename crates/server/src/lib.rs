//! The HTTP server: the ingest endpoints (`POST /ingest/<table>` for `http` tables), the
//! live event streams (`GET /sse/<table>` for `sse` tables) and `/healthz`.
//! The REST API, `/metrics` and the web UI arrive with the "operate it" work.
//!
//! Owns: routing, reading bodies within the size and time limits, and turning answers
//! into HTTP responses. Does not own: decoding bodies or authenticating ingest requests
//! (the `http` connector's endpoint does that, see `sluice_connectors::http`).
#![warn(missing_docs, unreachable_pub)]

mod ingest;
mod sse;

pub use ingest::{router, serve};
