//! The `websocket` connector's factory.

use std::sync::Arc;

use sluice_runtime::SourceFactory;

use super::config::WebSocketConfig;
use super::source::WebSocketSourceFactory;
use crate::{ConnectorFactory, ConnectorTable, Result};

/// The `websocket` connector (a source).
pub struct WebSocketConnector;

impl ConnectorFactory for WebSocketConnector {
    fn name(&self) -> &'static str {
        "websocket"
    }

    fn source(&self, table: &ConnectorTable) -> Result<Arc<dyn SourceFactory>> {
        Ok(Arc::new(WebSocketSourceFactory::new(
            WebSocketConfig::from_table(table)?,
        )?))
    }
}
