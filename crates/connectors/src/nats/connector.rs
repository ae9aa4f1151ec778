//! The `nats` connector's factory.

use std::sync::Arc;

use sluice_runtime::{SinkFactory, SourceFactory};

use super::config::{NatsSinkConfig, NatsSourceConfig};
use super::sink::NatsSinkFactory;
use super::source::NatsSourceFactory;
use crate::{ConnectorFactory, ConnectorTable, Result};

/// The `nats` connector.
pub struct NatsConnector;

impl ConnectorFactory for NatsConnector {
    fn name(&self) -> &'static str {
        "nats"
    }

    fn has_metadata(&self) -> bool {
        true
    }

    fn source(&self, table: &ConnectorTable) -> Result<Arc<dyn SourceFactory>> {
        Ok(Arc::new(NatsSourceFactory::new(
            NatsSourceConfig::from_table(table)?,
        )?))
    }

    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        let config = NatsSinkConfig::from_table(table)?;
        Ok(Arc::new(NatsSinkFactory::new(table, config)?))
    }
}
