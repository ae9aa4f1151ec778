//! The `redis` connector's factory.

use std::sync::Arc;

use sluice_runtime::{LookupFactory, SinkFactory, SourceFactory};

use super::config::RedisSinkConfig;
use super::lookup::{RedisLookupConfig, RedisLookupFactory};
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

    fn has_lookup(&self) -> bool {
        true
    }

    fn lookup(&self, table: &ConnectorTable, keys: &[String]) -> Result<Arc<dyn LookupFactory>> {
        let config = RedisLookupConfig::from_table(table, keys)?;
        Ok(Arc::new(RedisLookupFactory::new(config)))
    }

    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        let config = RedisSinkConfig::from_table(table)?;
        Ok(Arc::new(RedisSinkFactory::new(table, config)?))
    }
}
