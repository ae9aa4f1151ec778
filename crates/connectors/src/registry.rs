//! The connector registry: a plain list, so every connector can be found with grep.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use sluice_runtime::{LookupFactory, SinkFactory, SourceFactory};

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
    /// The `METADATA` columns, which are the last fields of `schema` (for a sink, only
    /// those not `VIRTUAL`). Connectors without metadata refuse a table that has some.
    pub metadata: Vec<MetadataColumn>,
}

impl ConnectorTable {
    /// The positions of the `PRIMARY KEY` columns in `schema`.
    pub fn key_indices(&self) -> Result<Vec<usize>> {
        self.primary_key
            .iter()
            .map(|k| {
                self.schema.index_of(k).map_err(|_| Error::Unsupported {
                    table: self.name.clone(),
                    message: format!("PRIMARY KEY column '{k}' is not a column of the table"),
                })
            })
            .collect()
    }
}

/// A `name TYPE METADATA [FROM 'key']` column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataColumn {
    /// The column's name.
    pub name: String,
    /// The connector's metadata key (the column name unless `FROM 'key'`).
    pub key: String,
}

/// Fails when `table` has metadata columns but its connector has no metadata.
fn check_metadata(connector: &dyn ConnectorFactory, table: &ConnectorTable) -> Result<()> {
    match table.metadata.first() {
        Some(m) if !connector.has_metadata() => Err(Error::Unsupported {
            table: table.name.clone(),
            message: format!(
                "column '{}': connector '{}' has no metadata (METADATA columns are for kafka, \
                 upsert-kafka, nats and mqtt)",
                m.name,
                connector.name()
            ),
        }),
        _ => Ok(()),
    }
}

/// The source of `table`, made by the connector its `connector` option names.
pub fn source_for(table: &ConnectorTable) -> Result<Arc<dyn SourceFactory>> {
    let c = connector_for(table.options.get("connector").map_or("", String::as_str))?;
    check_metadata(c.as_ref(), table)?;
    c.source(table)
}

/// The sink of `table`, made by the connector its `connector` option names.
pub fn sink_for(table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
    let c = connector_for(table.options.get("connector").map_or("", String::as_str))?;
    check_metadata(c.as_ref(), table)?;
    c.sink(table)
}

/// The lookup table of `table`, looked up by the columns `keys`, made by the connector
/// its `connector` option names.
pub fn lookup_for(table: &ConnectorTable, keys: &[String]) -> Result<Arc<dyn LookupFactory>> {
    let c = connector_for(table.options.get("connector").map_or("", String::as_str))?;
    check_metadata(c.as_ref(), table)?;
    c.lookup(table, keys)
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

    /// Whether the connector fills `METADATA` columns (the tables it gets may then have
    /// some; see [`ConnectorTable::metadata`]).
    fn has_metadata(&self) -> bool {
        false
    }

    /// Whether `table` can be a lookup table (`JOIN t FOR SYSTEM_TIME AS OF …`).
    fn has_lookup(&self) -> bool {
        false
    }

    /// A lookup table reading `table` by the columns `keys`. Validates every option.
    fn lookup(&self, table: &ConnectorTable, _keys: &[String]) -> Result<Arc<dyn LookupFactory>> {
        Err(Error::Unsupported {
            table: table.name.clone(),
            message: format!(
                "connector '{}' cannot be a lookup table (jdbc and redis can)",
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
        Box::new(crate::kafka::KafkaConnector),
        Box::new(crate::kafka::UpsertKafkaConnector),
        Box::new(crate::redis::RedisConnector),
        Box::new(crate::nats::NatsConnector),
        Box::new(crate::mqtt::MqttConnector),
        Box::new(crate::webhook::WebhookConnector),
        Box::new(crate::http::HttpConnector),
        Box::new(crate::websocket::WebSocketConnector),
        Box::new(crate::sse::SseConnector),
        Box::new(crate::view::ViewConnector),
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
