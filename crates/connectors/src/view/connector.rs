//! The `view` connector's factory.

use std::sync::Arc;

use sluice_runtime::SinkFactory;

use super::config::ViewConfig;
use super::sink::ViewSinkFactory;
use crate::{ConnectorFactory, ConnectorTable, Result};

/// The `view` connector (a sink the server queries).
pub struct ViewConnector;

impl ConnectorFactory for ViewConnector {
    fn name(&self) -> &'static str {
        "view"
    }

    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        crate::messages::no_metadata(table, "view")?;
        let config = ViewConfig::from_table(table)?;
        Ok(Arc::new(ViewSinkFactory::new(config)))
    }
}
