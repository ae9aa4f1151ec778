//! The `webhook` connector's factory.

use std::sync::Arc;

use sluice_runtime::SinkFactory;

use super::config::WebhookConfig;
use super::sink::WebhookSinkFactory;
use crate::{ConnectorFactory, ConnectorTable, Result};

/// The `webhook` connector (a sink).
pub struct WebhookConnector;

impl ConnectorFactory for WebhookConnector {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        let config = WebhookConfig::from_table(table)?;
        Ok(Arc::new(WebhookSinkFactory::new(table, config)?))
    }
}
