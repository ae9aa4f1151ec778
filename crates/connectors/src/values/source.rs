//! The `values` source: see the module docs of [`super`].

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use sluice_runtime::{
    DeadLetterOutput, JobMetrics, Source, SourceEvent, SourceFactory, SourceOffsets, TaskInfo,
};
use sluice_types::CheckpointId;

/// Emits fixed batches once, from subtask 0 only.
pub struct ValuesSourceFactory {
    name: String,
    batches: Vec<RecordBatch>,
    schema: SchemaRef,
}

impl ValuesSourceFactory {
    /// A source emitting `batches` (all of `schema`).
    pub fn new(name: impl Into<String>, schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        ValuesSourceFactory {
            name: name.into(),
            batches,
            schema,
        }
    }
}

impl SourceFactory for ValuesSourceFactory {
    fn name(&self) -> String {
        format!("Source: {}", self.name)
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn bounded(&self) -> bool {
        true
    }

    fn create(
        &self,
        task: &TaskInfo,
        _metrics: &Arc<JobMetrics>,
    ) -> sluice_runtime::Result<Box<dyn Source>> {
        let batches = if task.subtask == 0 {
            self.batches.clone()
        } else {
            Vec::new()
        };
        Ok(Box::new(ValuesSource { batches, next: 0 }))
    }
}

struct ValuesSource {
    batches: Vec<RecordBatch>,
    next: usize,
}

#[async_trait]
impl Source for ValuesSource {
    async fn open(
        &mut self,
        _task: &TaskInfo,
        restored: Option<sluice_runtime::RestoredOffsets>,
    ) -> sluice_runtime::Result<()> {
        // Only subtask 0 emits, whatever the parallelism.
        let first = restored.and_then(|r| r.subtasks.into_iter().next());
        if let Some(n) = first.and_then(|o| o.get("next").and_then(|v| v.as_u64())) {
            self.next = n as usize;
        }
        Ok(())
    }

    async fn next(&mut self, _dl: &dyn DeadLetterOutput) -> sluice_runtime::Result<SourceEvent> {
        match self.batches.get(self.next) {
            Some(b) => {
                self.next += 1;
                Ok(SourceEvent::Batch(b.clone()))
            }
            None => Ok(SourceEvent::End),
        }
    }

    fn snapshot(&mut self, _checkpoint: CheckpointId) -> sluice_runtime::Result<SourceOffsets> {
        let mut o = SourceOffsets::new();
        o.insert("next".into(), serde_json::json!(self.next));
        Ok(o)
    }
}
