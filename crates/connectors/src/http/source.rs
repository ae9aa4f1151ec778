//! The http source: takes the rows the ingest endpoint decoded from requests.
//!
//! Subtask 0 reads (the decoding happens in the request handlers, in parallel); the
//! others end at once. Requests are answered when their rows are in the pipeline (the
//! next call after the batch that holds them), or with `ingest.ack` = `checkpoint`
//! when the checkpoint after them completed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use sluice_runtime::{
    DeadLetterOutput, JobMetrics, RestoredOffsets, Source, SourceEvent, SourceFactory,
    SourceOffsets, TaskInfo,
};
use sluice_types::CheckpointId;
use tokio::sync::{mpsc, oneshot};

use super::config::{AckMode, HttpSourceConfig};
use super::hub::{Endpoint, Ingest, register};
use crate::{Error, Result};

/// Rows per batch at most (several requests are put together up to this).
const MAX_ROWS: usize = 8192;
/// How long `next` waits for a request before it says `Idle`.
const WAIT: Duration = Duration::from_millis(50);

/// Makes the [`HttpSource`]s of one table, and registers its ingest endpoint.
pub struct HttpSourceFactory {
    endpoint: Arc<Endpoint>,
    schema: SchemaRef,
    ack: AckMode,
    table: String,
}

impl HttpSourceFactory {
    /// Registers `POST /ingest/<table>` for the server to route to.
    pub fn new(config: HttpSourceConfig) -> Result<Self> {
        let table = config.table.name.clone();
        let schema = config.table.schema.clone();
        if let Some(m) = config.table.metadata.first() {
            return Err(Error::Unsupported {
                table,
                message: format!("column '{}': the http source has no metadata", m.name),
            });
        }
        let ack = config.ack;
        let endpoint = register(config).map_err(|message| Error::Unsupported {
            table: table.clone(),
            message,
        })?;
        Ok(HttpSourceFactory {
            endpoint,
            schema,
            ack,
            table,
        })
    }
}

impl SourceFactory for HttpSourceFactory {
    fn name(&self) -> String {
        format!("Source: {} (http POST /ingest/{})", self.table, self.table)
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn bounded(&self) -> bool {
        false
    }

    fn create(
        &self,
        task: &TaskInfo,
        metrics: &Arc<JobMetrics>,
    ) -> sluice_runtime::Result<Box<dyn Source>> {
        Ok(Box::new(HttpSource {
            reads: task.subtask == 0,
            rx: self.endpoint.receiver(),
            schema: self.schema.clone(),
            on_checkpoint: self.ack == AckMode::Checkpoint && task.checkpointing,
            answered_next: Vec::new(),
            since_snapshot: Vec::new(),
            snapshots: BTreeMap::new(),
            metrics: metrics.clone(),
        }))
    }
}

/// Takes one table's requests.
struct HttpSource {
    reads: bool,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Ingest>>>,
    schema: SchemaRef,
    /// Answer requests when their checkpoint completes.
    on_checkpoint: bool,
    /// Requests whose rows went out with the last batch: answered on the next call.
    answered_next: Vec<oneshot::Sender<()>>,
    /// Requests read since the last snapshot (checkpoint acknowledgements).
    since_snapshot: Vec<oneshot::Sender<()>>,
    /// The requests each checkpoint answers when it completes.
    snapshots: BTreeMap<u64, Vec<oneshot::Sender<()>>>,
    metrics: Arc<JobMetrics>,
}

impl HttpSource {
    fn answer_later(&mut self, ack: oneshot::Sender<()>) {
        if self.on_checkpoint {
            self.since_snapshot.push(ack);
        } else {
            self.answered_next.push(ack);
        }
    }
}

#[async_trait]
impl Source for HttpSource {
    async fn open(
        &mut self,
        _task: &TaskInfo,
        _restored: Option<RestoredOffsets>,
    ) -> sluice_runtime::Result<()> {
        Ok(())
    }

    async fn next(&mut self, dead: &dyn DeadLetterOutput) -> sluice_runtime::Result<SourceEvent> {
        if !self.reads {
            return Ok(SourceEvent::End);
        }
        // The last batch is downstream now: its requests may be answered.
        for ack in self.answered_next.drain(..) {
            let _ = ack.send(());
        }
        let rx = self.rx.clone();
        let mut rx = rx.lock().await;
        let mut batches: Vec<RecordBatch> = Vec::new();
        let mut rows = 0;
        let first = match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(i)) => i,
            Ok(None) | Err(_) => return Ok(SourceEvent::Idle),
        };
        let mut next = Some(first);
        while let Some(ingest) = next.take() {
            if ingest.ack.is_closed() {
                // Its client gave up (and was told the rows were not taken).
                next = rx.try_recv().ok();
                continue;
            }
            ingest
                .taken
                .store(true, std::sync::atomic::Ordering::Release);
            for l in ingest.letters {
                dead.send(l);
            }
            if let Some(b) = ingest.batch {
                rows += b.num_rows();
                JobMetrics::add(&self.metrics.source_bytes, b.get_array_memory_size() as u64);
                batches.push(b);
            }
            self.answer_later(ingest.ack);
            if rows < MAX_ROWS {
                next = rx.try_recv().ok();
            }
        }
        drop(rx);
        if batches.is_empty() {
            return Ok(SourceEvent::Idle);
        }
        let batch = if batches.len() == 1 {
            batches.pop().expect("one batch")
        } else {
            concat_batches(&self.schema, &batches).map_err(Error::Arrow)?
        };
        Ok(SourceEvent::Batch(batch))
    }

    fn snapshot(&mut self, checkpoint: CheckpointId) -> sluice_runtime::Result<SourceOffsets> {
        let acks = std::mem::take(&mut self.since_snapshot);
        if !acks.is_empty() {
            self.snapshots.insert(checkpoint.0, acks);
        }
        Ok(SourceOffsets::new())
    }

    async fn commit(&mut self, checkpoint: CheckpointId) -> sluice_runtime::Result<()> {
        let done: Vec<u64> = self
            .snapshots
            .range(..=checkpoint.0)
            .map(|(k, _)| *k)
            .collect();
        for id in done {
            for ack in self.snapshots.remove(&id).unwrap_or_default() {
                let _ = ack.send(());
            }
        }
        Ok(())
    }
}
