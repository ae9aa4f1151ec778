//! The HTTP server: REST API, ingest endpoints, `/metrics`, Server-Sent Events and the
//! web UI.
//!
//! Empty for now: `sluice serve`, `sluice run --http` and the HTTP source arrive with
//! the "operate it" and "connectors part 2" work. The crate exists so that the
//! workspace layout of DESIGN.md §3 is in place.
#![warn(missing_docs, unreachable_pub)]
