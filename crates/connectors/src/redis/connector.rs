//! The `redis` connector's factory.

use std::sync::Arc;

use sluice_runtime::{SinkFactory, SourceFactory};

use super::config::RedisSinkConfig;
use super::sink::RedisSinkFactory;
use super::source::{RedisSourceConfig, RedisSourceFactory};
use crate::{ConnectorFactory, ConnectorTable, Result};

/// The `redis` connector.
pub struct RedisConnector;

impl ConnectorFactory for RedisConnector {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn source(&self, table: &ConnectorTable) -> Result<Arc<dyn SourceFactory>> {
        let config = RedisSourceConfig::from_table(table)?;
        Ok(Arc::new(RedisSourceFactory::new(config)?))
    }

    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        let config = RedisSinkConfig::from_table(table)?;
        Ok(Arc::new(RedisSinkFactory::new(table, config)?))
    }
}
