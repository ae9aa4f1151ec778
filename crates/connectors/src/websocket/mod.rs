//! The `websocket` source: a live feed (market data, chat, telemetry) from a
//! `ws://`/`wss://` URL, each frame one record of the table's format, reconnecting
//! with backoff and sending the subscribe messages after every connect.

mod config;
mod connector;
mod source;

pub use config::WebSocketConfig;
pub use connector::WebSocketConnector;
pub use source::WebSocketSourceFactory;
