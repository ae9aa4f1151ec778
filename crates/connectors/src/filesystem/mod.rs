//! `'connector' = 'filesystem'`: reads a file or a directory of files, writes a
//! directory of part files. Formats: json (newline-delimited), csv.

mod config;
mod sink;
mod source;
mod splits;

use std::sync::Arc;

use sluice_runtime::{SinkFactory, SourceFactory};

pub use config::{FilesystemSinkConfig, FilesystemSourceConfig};
pub use sink::FilesystemSinkFactory;
pub use source::FilesystemSourceFactory;

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
