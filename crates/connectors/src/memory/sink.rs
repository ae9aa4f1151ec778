//! The `memory` sink: see the module docs of [`super`].

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use sluice_runtime::{Delivery, Sink, SinkFactory, TaskInfo};

/// Where collected batches go; shared with whoever reads them.
pub type Collected = Arc<Mutex<Vec<RecordBatch>>>;

/// Creates sinks appending to one shared [`Collected`].
pub struct MemorySinkFactory {
    schema: SchemaRef,
    out: Collected,
}

impl MemorySinkFactory {
    /// A sink factory collecting into `out`.
    pub fn new(schema: SchemaRef, out: Collected) -> Self {
        MemorySinkFactory { schema, out }
    }
}

impl SinkFactory for MemorySinkFactory {
    fn name(&self) -> String {
        "Sink: results (memory)".into()
    }

    fn accepts_changelog(&self) -> bool {
        true
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn create(&self, _task: &TaskInfo) -> sluice_runtime::Result<Box<dyn Sink>> {
        Ok(Box::new(MemorySink {
            out: self.out.clone(),
        }))
    }
}

struct MemorySink {
    out: Collected,
}

#[async_trait]
impl Sink for MemorySink {
    async fn open(&mut self, _task: &TaskInfo) -> sluice_runtime::Result<()> {
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> sluice_runtime::Result<()> {
        self.out
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(batch);
        Ok(())
    }

    async fn close(&mut self) -> sluice_runtime::Result<()> {
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        Delivery::AtLeastOnce
    }
}
