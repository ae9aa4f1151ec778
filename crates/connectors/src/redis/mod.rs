//! The `redis` connector: a sink that writes rows as `SET`/`HSET` keys (upserts and
//! deletes by key for changelogs), `XADD` stream entries or `PUBLISH` messages
//! ([`sink`]), and a Redis Streams source read through a consumer group, acknowledged
//! after each checkpoint ([`source`]), and a lookup table read with `GET`/`HGETALL`
//! ([`lookup`]). Options: [`config`].

pub mod config;
mod connector;
pub mod lookup;
pub mod sink;
pub mod source;

pub use connector::RedisConnector;
