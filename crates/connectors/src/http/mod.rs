//! The `http` source: `POST /ingest/<table>` on the HTTP server of `sluice run`
//! (`--http ADDR`) takes JSON, NDJSON or CSV bodies (gzip accepted) and hands their
//! rows to the pipeline. The server (`sluice-server`) does the HTTP; this module
//! checks tokens, decodes bodies ([`body`]) and passes rows through the endpoint
//! registry ([`hub`]) to the source.

pub mod body;
mod config;
mod connector;
pub mod hub;
mod source;

pub use config::{AckMode, HttpSourceConfig, OnError};
pub use connector::HttpConnector;
pub use hub::{Answer, ENDPOINTS, Endpoint, endpoint, endpoints, forget, reinstate};
pub use source::HttpSourceFactory;
