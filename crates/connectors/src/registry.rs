//! The connector registry: a plain list, so every connector can be found with grep.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use sluice_runtime::{SinkFactory, SourceFactory};

use crate::{Error, Result};

/// A table as a connector sees it: its physical columns and `WITH` options.
#[derive(Debug, Clone)]
pub struct ConnectorTable {
    /// The table's name in SQL.
    pub name: String,
    /// The physical columns (computed columns excluded), in declaration order.
    pub schema: SchemaRef,
    /// Every `WITH` option, `connector` included.
    pub options: BTreeMap<String, String>,
    /// `PRIMARY KEY (…) NOT ENFORCED` columns, empty when none.
    pub primary_key: Vec<String>,
}

/// Makes sources and sinks for the tables that name it in `'connector' = '…'`.
pub trait ConnectorFactory: Send + Sync {
    /// The `connector` option value, e.g. `filesystem`.
    fn name(&self) -> &'static str;

    /// A source reading `table`. Validates every option (unknown ones are errors).
    fn source(&self, table: &ConnectorTable) -> Result<Arc<dyn SourceFactory>> {
        Err(Error::Unsupported {
            table: table.name.clone(),
            message: format!(
                "connector '{}' can only be written to (it is a sink), but the query reads from it",
                self.name()
            ),
        })
    }

    /// A sink writing `table`. Validates every option (unknown ones are errors).
    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        Err(Error::Unsupported {
            table: table.name.clone(),
            message: format!(
                "connector '{}' can only be read from (it is a source), but an INSERT writes to it",
                self.name()
            ),
        })
    }
}

/// Every connector Sluice has.
pub fn connectors() -> Vec<Box<dyn ConnectorFactory>> {
    vec![
        Box::new(crate::filesystem::FilesystemConnector),
        Box::new(crate::print::PrintConnector),
        Box::new(crate::blackhole::BlackholeConnector),
        Box::new(crate::datagen::DatagenConnector),
        Box::new(crate::nexmark::NexmarkConnector),
        Box::new(crate::jdbc::JdbcConnector),
    ]
}

/// The connector called `name`, or an error listing the known ones.
pub fn connector_for(name: &str) -> Result<Box<dyn ConnectorFactory>> {
    let all = connectors();
    let known: Vec<&'static str> = all.iter().map(|c| c.name()).collect();
    let known = known.join(", ");
    all.into_iter()
        .find(|c| c.name() == name)
        .ok_or(Error::UnknownConnector {
            name: name.to_string(),
            known,
        })
}
