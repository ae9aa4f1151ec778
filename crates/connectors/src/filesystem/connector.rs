//! The filesystem connector's factory: options in, source and sink factories out.

use std::sync::Arc;

use sluice_runtime::{SinkFactory, SourceFactory};

use super::config::{FilesystemSinkConfig, FilesystemSourceConfig};
use super::sink::FilesystemSinkFactory;
use super::source::FilesystemSourceFactory;
use crate::{ConnectorFactory, ConnectorTable, Result};

/// The filesystem connector.
pub struct FilesystemConnector;

impl ConnectorFactory for FilesystemConnector {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn source(&self, table: &ConnectorTable) -> Result<Arc<dyn SourceFactory>> {
        let config = FilesystemSourceConfig::from_table(table)?;
        Ok(Arc::new(FilesystemSourceFactory::new(table, config)?))
    }

    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        let config = FilesystemSinkConfig::from_table(table)?;
        Ok(Arc::new(FilesystemSinkFactory::new(table, config)?))
    }
}
