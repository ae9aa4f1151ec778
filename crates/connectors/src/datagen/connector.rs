//! `'connector' = 'datagen'`: the registry entry and the per-table source factory.
//!
//! Owns: turning a [`ConnectorTable`] into checked field generators and a seed shared by
//! all subtasks. Does not own generation (`values.rs`, `source.rs`).

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use sluice_runtime::metrics::JobMetrics;
use sluice_runtime::{Source, SourceFactory, TaskInfo};

use super::config::DatagenConfig;
use super::fields::{Kind, build};
use super::source::{DatagenSource, Shared};
use crate::{ConnectorFactory, ConnectorTable, Options, Result};

/// Random and sequence rows for any schema, as Flink's `datagen` connector.
#[derive(Debug, Clone, Copy, Default)]
pub struct DatagenConnector;

impl ConnectorFactory for DatagenConnector {
    fn name(&self) -> &'static str {
        "datagen"
    }

    fn source(&self, table: &ConnectorTable) -> Result<Arc<dyn SourceFactory>> {
        let mut opts = Options::new(&table.name, "datagen", &table.options);
        let config = DatagenConfig::take_from(&mut opts)?;
        opts.finish()?;
        let fields = build(&table.name, &table.schema, config.fields)?;
        let seed = config.seed.unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            nanos as u64
        });
        Ok(Arc::new(DatagenSourceFactory {
            shared: Arc::new(Shared {
                table: table.name.clone(),
                schema: table.schema.clone(),
                fields,
                rows_per_second: config.rows_per_second,
                number_of_rows: config.number_of_rows,
                seed,
            }),
        }))
    }
}

/// Makes the subtasks of one datagen table.
struct DatagenSourceFactory {
    shared: Arc<Shared>,
}

impl SourceFactory for DatagenSourceFactory {
    fn name(&self) -> String {
        format!("Source: {} (datagen)", self.shared.table)
    }

    fn schema(&self) -> SchemaRef {
        self.shared.schema.clone()
    }

    fn bounded(&self) -> bool {
        self.shared.number_of_rows.is_some()
            || self
                .shared
                .fields
                .iter()
                .any(|f| matches!(f.kind, Kind::Seq { .. }))
    }

    fn create(
        &self,
        task: &TaskInfo,
        _metrics: &Arc<JobMetrics>,
    ) -> sluice_runtime::Result<Box<dyn Source>> {
        Ok(Box::new(DatagenSource::new(self.shared.clone(), task)))
    }
}
