//! `'connector' = 'blackhole'`: a sink that discards every row (for benchmarks), as in
//! Flink.

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
        o.finish()?;
        Ok(Arc::new(BlackholeSinkFactory {
            name: table.name.clone(),
            schema: table.schema.clone(),
        }))
    }
}

struct BlackholeSinkFactory {
    name: String,
    schema: SchemaRef,
}

impl SinkFactory for BlackholeSinkFactory {
    fn name(&self) -> String {
        format!("Sink: {} (blackhole)", self.name)
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn create(&self, _task: &TaskInfo) -> sluice_runtime::Result<Box<dyn Sink>> {
        Ok(Box::new(BlackholeSink))
    }
}

struct BlackholeSink;

#[async_trait]
impl Sink for BlackholeSink {
    async fn open(&mut self, _task: &TaskInfo) -> sluice_runtime::Result<()> {
        Ok(())
    }

    async fn write(&mut self, _batch: RecordBatch) -> sluice_runtime::Result<()> {
        Ok(())
    }

    async fn close(&mut self) -> sluice_runtime::Result<()> {
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }
}
