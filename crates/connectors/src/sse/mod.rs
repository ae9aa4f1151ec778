//! The `sse` sink: rows of a table pushed live to browsers and dashboards as
//! Server-Sent Events at `GET /sse/<table>` on the HTTP server of `sluice run --http`.
//! The sink puts each row into the table's stream ([`hub`]); the server
//! (`sluice-server`) hands the stream to every client that connects.

mod config;
mod connector;
pub mod hub;
mod sink;

pub use config::SseConfig;
pub use connector::SseConnector;
pub use hub::{STREAMS, SseStream, forget, reinstate, stream, streams};
pub use sink::SseSinkFactory;
