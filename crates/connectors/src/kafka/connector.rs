//! The `kafka` and `upsert-kafka` connectors' factories: options in, sources and sinks
//! out.

use std::sync::Arc;

use sluice_runtime::{SinkFactory, SourceFactory};

use super::config::KafkaConfig;
use super::sink::KafkaSinkFactory;
use super::source::KafkaSourceFactory;
use crate::{ConnectorFactory, ConnectorTable, Error, Result};

/// The `kafka` connector: an append-only source and sink.
pub struct KafkaConnector;

impl ConnectorFactory for KafkaConnector {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn has_metadata(&self) -> bool {
        true
    }

    fn source(&self, table: &ConnectorTable) -> Result<Arc<dyn SourceFactory>> {
        let config = KafkaConfig::from_table(&physical(table), "kafka")?;
        config.check_formats(true)?;
        Ok(Arc::new(KafkaSourceFactory::new(table, config)?))
    }

    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        let config = KafkaConfig::from_table(&physical(table), "kafka")?;
        config.check_formats(false)?;
        Ok(Arc::new(KafkaSinkFactory::new(table, config)?))
    }
}

/// The `upsert-kafka` connector: a topic as upserts by the primary key (a tombstone
/// deletes its key), read as a changelog and written from one.
pub struct UpsertKafkaConnector;

impl ConnectorFactory for UpsertKafkaConnector {
    fn name(&self) -> &'static str {
        "upsert-kafka"
    }

    fn has_metadata(&self) -> bool {
        true
    }

    fn source(&self, table: &ConnectorTable) -> Result<Arc<dyn SourceFactory>> {
        let config = KafkaConfig::from_table(&physical(table), "upsert-kafka")?;
        config.check_formats(true)?;
        if sluice_formats::is_changelog_format(&config.value_format) {
            return Err(Error::Unsupported {
                table: table.name.clone(),
                message: format!(
                    "upsert-kafka reads its topic as upserts by key; '{}' is a changelog \
                     format: read it with 'connector' = 'kafka'",
                    config.value_format
                ),
            });
        }
        Ok(Arc::new(KafkaSourceFactory::new(table, config)?))
    }

    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        let config = KafkaConfig::from_table(&physical(table), "upsert-kafka")?;
        config.check_formats(false)?;
        Ok(Arc::new(KafkaSinkFactory::new(table, config)?))
    }
}

/// `table` without its metadata columns (the options and formats see those only).
fn physical(table: &ConnectorTable) -> ConnectorTable {
    let n = table.schema.fields().len() - table.metadata.len();
    let fields: Vec<_> = table.schema.fields().iter().take(n).cloned().collect();
    ConnectorTable {
        schema: Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
        ..table.clone()
    }
}
