//! The `redis` connector: a sink that writes rows as `SET`/`HSET` keys (upserts and
//! deletes by key for changelogs), `XADD` stream entries or `PUBLISH` messages
//! ([`sink`]). Options: [`config`].

pub mod config;
mod connector;
pub mod sink;

pub use connector::RedisConnector;
