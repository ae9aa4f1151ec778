//! The `nats` connector: core NATS subjects and JetStream streams, as a source (a
//! durable pull consumer per split, acknowledged after each checkpoint, the stream
//! sequence in the checkpoint) and as a sink (JetStream publications deduplicated by
//! `Nats-Msg-Id` for exactly-once).

mod config;
mod connector;
mod sink;
mod source;

pub use config::{Guarantee, NatsSinkConfig, NatsSourceConfig, NatsTarget, StartupMode};
pub use connector::NatsConnector;
pub use sink::NatsSinkFactory;
pub use source::NatsSourceFactory;
