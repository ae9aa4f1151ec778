//! The `http` connector's factory.

use std::sync::Arc;

use sluice_runtime::SourceFactory;

use super::config::HttpSourceConfig;
use super::source::HttpSourceFactory;
use crate::{ConnectorFactory, ConnectorTable, Result};

/// The `http` connector (a source: the ingest endpoint).
pub struct HttpConnector;

impl ConnectorFactory for HttpConnector {
    fn name(&self) -> &'static str {
        "http"
    }

    fn source(&self, table: &ConnectorTable) -> Result<Arc<dyn SourceFactory>> {
        Ok(Arc::new(HttpSourceFactory::new(
            HttpSourceConfig::from_table(table)?,
        )?))
    }
}
