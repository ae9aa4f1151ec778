//! The `blackhole` sink: see the module docs of [`super`].

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use sluice_runtime::{Delivery, Sink, SinkFactory, TaskInfo};

use crate::{ConnectorFactory, ConnectorTable, Options, Result};

/// The blackhole connector (sink only).
pub struct BlackholeConnector;

impl ConnectorFactory for BlackholeConnector {
    fn name(&self) -> &'static str {
        "blackhole"
    }

    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        let mut o = Options::new(&table.name, self.name(), &table.options);
        let _ = o.take("sink.parallelism");
        let throttle = o.take_parsed::<u64>(
            "sink.throttle.rows-per-second",
            "a number of rows per second",
        )?;
        o.finish()?;
        Ok(Arc::new(BlackholeSinkFactory {
            name: table.name.clone(),
            schema: table.schema.clone(),
            throttle: throttle.filter(|r| *r > 0),
        }))
    }
}

struct BlackholeSinkFactory {
    name: String,
    schema: SchemaRef,
    throttle: Option<u64>,
}

impl SinkFactory for BlackholeSinkFactory {
    fn name(&self) -> String {
        format!("Sink: {} (blackhole)", self.name)
    }

    fn accepts_changelog(&self) -> bool {
        true
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn create(&self, task: &TaskInfo) -> sluice_runtime::Result<Box<dyn Sink>> {
        // The rate is shared by the subtasks.
        let per_subtask = self
            .throttle
            .map(|r| (r / task.parallelism.max(1) as u64).max(1));
        Ok(Box::new(BlackholeSink {
            throttle: per_subtask,
            started: None,
            rows: 0,
        }))
    }
}

struct BlackholeSink {
    throttle: Option<u64>,
    started: Option<std::time::Instant>,
    rows: u64,
}

#[async_trait]
impl Sink for BlackholeSink {
    async fn open(&mut self, _task: &TaskInfo) -> sluice_runtime::Result<()> {
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> sluice_runtime::Result<()> {
        if let Some(rate) = self.throttle {
            let started = *self.started.get_or_insert_with(std::time::Instant::now);
            self.rows += batch.num_rows() as u64;
            let due = std::time::Duration::from_secs_f64(self.rows as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        Ok(())
    }

    async fn close(&mut self) -> sluice_runtime::Result<()> {
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }
}
