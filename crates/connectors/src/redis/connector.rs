//! The `redis` connector's factory.

use std::sync::Arc;

use sluice_runtime::{SinkFactory, SourceFactory};

use super::config::RedisSinkConfig;
use super::sink::RedisSinkFactory;
use crate::{ConnectorFactory, ConnectorTable, Error, Result};

/// The `redis` connector.
pub struct RedisConnector;

impl ConnectorFactory for RedisConnector {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn source(&self, table: &ConnectorTable) -> Result<Arc<dyn SourceFactory>> {
        Err(Error::Unsupported {
            table: table.name.clone(),
            message: "reading Redis (streams, lookups) is not supported yet; the redis \
                      connector writes only"
                .into(),
        })
    }

    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        let config = RedisSinkConfig::from_table(table)?;
        Ok(Arc::new(RedisSinkFactory::new(table, config)?))
    }
}
