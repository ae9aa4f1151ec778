//! The `jdbc` connector's factory: options in, sink factory out.

use std::sync::Arc;

use sluice_runtime::{LookupFactory, SinkFactory, SourceFactory};

use super::config::JdbcSinkConfig;
use super::lookup::{JdbcLookupConfig, JdbcLookupFactory};
use super::scan::{JdbcScanConfig, JdbcScanFactory};
use super::sink::JdbcSinkFactory;
use crate::{ConnectorFactory, ConnectorTable, Result};

/// The `jdbc` connector.
pub struct JdbcConnector;

impl ConnectorFactory for JdbcConnector {
    fn name(&self) -> &'static str {
        "jdbc"
    }

    fn source(&self, table: &ConnectorTable) -> Result<Arc<dyn SourceFactory>> {
        let config = JdbcScanConfig::from_table(table)?;
        Ok(Arc::new(JdbcScanFactory::new(config)?))
    }

    fn has_lookup(&self) -> bool {
        true
    }

    fn lookup(&self, table: &ConnectorTable, keys: &[String]) -> Result<Arc<dyn LookupFactory>> {
        let config = JdbcLookupConfig::from_table(table, keys)?;
        Ok(Arc::new(JdbcLookupFactory::new(config)))
    }

    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        let config = JdbcSinkConfig::from_table(table)?;
        Ok(Arc::new(JdbcSinkFactory::new(table, config)?))
    }
}
