//! The sse sink: each row becomes one event of its table's stream (a JSON object);
//! for an updating query, `+I`, `+U` and `-D` rows are `insert`, `update` and `delete`
//! events (`-U` rows are skipped: the `update` that follows replaces them).
//!
//! At-most-once and live: a client gets the events from when it connects (plus
//! `sse.history` recent ones); one that falls `sse.buffer` events behind skips ahead
//! and is told how many it missed.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use sluice_formats::Encoder;
use sluice_runtime::{Delivery, Sink, SinkFactory, TaskInfo};
use sluice_types::RowKind;

use super::config::SseConfig;
use super::hub::{RowEvent, SseStream, register};
use crate::{ConnectorTable, Error, Result};

/// Makes the [`SseSink`]s of one table, and registers its stream.
pub struct SseSinkFactory {
    stream: Arc<SseStream>,
    table: ConnectorTable,
}

impl SseSinkFactory {
    /// Registers `GET /sse/<table>` for the server to serve.
    pub fn new(table: &ConnectorTable, config: SseConfig) -> Result<Self> {
        crate::messages::no_metadata(table, "sse")?;
        crate::messages::encoder(table, "json")?;
        Ok(SseSinkFactory {
            stream: register(config),
            table: table.clone(),
        })
    }
}

impl SinkFactory for SseSinkFactory {
    fn name(&self) -> String {
        format!(
            "Sink: {} (sse GET /sse/{})",
            self.table.name, self.table.name
        )
    }

    fn schema(&self) -> SchemaRef {
        self.table.schema.clone()
    }

    fn accepts_changelog(&self) -> bool {
        true
    }

    fn create(&self, _task: &TaskInfo) -> sluice_runtime::Result<Box<dyn Sink>> {
        Ok(Box::new(SseSink {
            stream: self.stream.clone(),
            encoder: crate::messages::encoder(&self.table, "json")?,
            table: self.table.name.clone(),
        }))
    }
}

/// Publishes one subtask's rows.
struct SseSink {
    stream: Arc<SseStream>,
    encoder: Box<dyn Encoder>,
    table: String,
}

#[async_trait]
impl Sink for SseSink {
    async fn open(&mut self, _task: &TaskInfo) -> sluice_runtime::Result<()> {
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> sluice_runtime::Result<()> {
        let data = sluice_types::without_row_kind(&batch);
        let kinds = sluice_types::kinds_of(&batch);
        let mut out = Vec::new();
        let mut ends = Vec::with_capacity(data.num_rows());
        self.encoder
            .encode_each(&data, &mut out, &mut ends)
            .map_err(|source| Error::Format {
                table: self.table.clone(),
                source,
            })?;
        let mut start = 0;
        for (row, end) in ends.into_iter().enumerate() {
            let text = String::from_utf8_lossy(&out[start..end]).into_owned();
            start = end;
            let kind = match kinds.get(row).copied().unwrap_or(RowKind::Insert) {
                RowKind::Insert => "insert",
                RowKind::UpdateAfter => "update",
                RowKind::Delete => "delete",
                RowKind::UpdateBefore => continue,
            };
            self.stream.publish(RowEvent { kind, data: text });
        }
        Ok(())
    }

    async fn close(&mut self) -> sluice_runtime::Result<()> {
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        Delivery::AtMostOnce
    }
}
