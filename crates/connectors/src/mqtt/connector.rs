//! The `mqtt` connector's factory.

use std::sync::Arc;

use sluice_runtime::{SinkFactory, SourceFactory};

use super::config::{MqttSinkConfig, MqttSourceConfig};
use super::sink::MqttSinkFactory;
use super::source::MqttSourceFactory;
use crate::{ConnectorFactory, ConnectorTable, Result};

/// The `mqtt` connector.
pub struct MqttConnector;

impl ConnectorFactory for MqttConnector {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    fn has_metadata(&self) -> bool {
        true
    }

    fn source(&self, table: &ConnectorTable) -> Result<Arc<dyn SourceFactory>> {
        Ok(Arc::new(MqttSourceFactory::new(
            MqttSourceConfig::from_table(table)?,
        )?))
    }

    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        let config = MqttSinkConfig::from_table(table)?;
        Ok(Arc::new(MqttSinkFactory::new(table, config)?))
    }
}
