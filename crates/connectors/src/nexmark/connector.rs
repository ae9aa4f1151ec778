//! `'connector' = 'nexmark'`: the registry entry and the per-table source factory.
//!
//! Owns: turning a [`ConnectorTable`] into a checked, shared generator setup (options,
//! layout, base time resolved once so that all subtasks agree). Does not own the
//! generation itself (`generator.rs`, `source.rs`).

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use sluice_runtime::metrics::JobMetrics;
use sluice_runtime::{Source, SourceFactory, TaskInfo};

use super::columns::layout;
use super::config::NexmarkConfig;
use super::generator::Generator;
use super::source::{NexmarkSource, Shared};
use crate::{ConnectorFactory, ConnectorTable, Options, Result};

/// The Nexmark benchmark's event generator as a source (`'connector' = 'nexmark'`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NexmarkConnector;

impl ConnectorFactory for NexmarkConnector {
    fn name(&self) -> &'static str {
        "nexmark"
    }

    fn source(&self, table: &ConnectorTable) -> Result<Arc<dyn SourceFactory>> {
        let mut opts = Options::new(&table.name, "nexmark", &table.options);
        let config = NexmarkConfig::take_from(&mut opts)?;
        opts.finish()?;
        Ok(Arc::new(NexmarkSourceFactory::new(
            &table.name,
            table.schema.clone(),
            config,
        )?))
    }
}

/// Makes the subtasks of one nexmark table.
pub struct NexmarkSourceFactory {
    shared: Arc<Shared>,
}

impl NexmarkSourceFactory {
    /// Checks `schema` against the layout `config` asks for and prepares the generator.
    /// The base time (when `base-time` is unset) is the wall-clock time of this call.
    pub fn new(table: &str, schema: SchemaRef, config: NexmarkConfig) -> Result<Self> {
        let config = config.sanitized();
        let layout = layout(table, &schema, config.table)?;
        let base_ms = config.base_time.unwrap_or_else(now_ms);
        let generator = Generator::new(&config);
        Ok(NexmarkSourceFactory {
            shared: Arc::new(Shared {
                table: table.to_string(),
                config,
                generator,
                layout,
                schema,
                base_ms,
            }),
        })
    }
}

/// Wall-clock time in ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl SourceFactory for NexmarkSourceFactory {
    fn name(&self) -> String {
        format!("Source: {} (nexmark)", self.shared.table)
    }

    fn schema(&self) -> SchemaRef {
        self.shared.schema.clone()
    }

    fn bounded(&self) -> bool {
        self.shared.config.events.is_some() || self.shared.config.max_events_per_subtask.is_some()
    }

    fn create(
        &self,
        task: &TaskInfo,
        _metrics: &Arc<JobMetrics>,
    ) -> sluice_runtime::Result<Box<dyn Source>> {
        Ok(Box::new(NexmarkSource::new(self.shared.clone(), task)))
    }
}
