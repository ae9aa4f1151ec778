//! The `sse` connector's factory.

use std::sync::Arc;

use sluice_runtime::SinkFactory;

use super::config::SseConfig;
use super::sink::SseSinkFactory;
use crate::{ConnectorFactory, ConnectorTable, Result};

/// The `sse` connector (a sink served by the HTTP server).
pub struct SseConnector;

impl ConnectorFactory for SseConnector {
    fn name(&self) -> &'static str {
        "sse"
    }

    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        let config = SseConfig::from_table(table)?;
        Ok(Arc::new(SseSinkFactory::new(table, config)?))
    }
}
