//! The view sink: applies each batch's rows to its table's [`View`].

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use sluice_runtime::{Delivery, Sink, SinkFactory, TaskInfo};
use sluice_types::{CheckpointId, RowKind};

use super::config::ViewConfig;
use super::hub::{View, register};
use crate::Error;

/// Makes the [`ViewSink`]s of one table, and registers its view.
pub(super) struct ViewSinkFactory {
    view: Arc<View>,
}

impl ViewSinkFactory {
    /// Registers the view for the server to query.
    pub(super) fn new(config: ViewConfig) -> Self {
        ViewSinkFactory {
            view: register(config),
        }
    }
}

impl SinkFactory for ViewSinkFactory {
    fn name(&self) -> String {
        format!(
            "Sink: {} (view GET /api/views/{})",
            self.view.name(),
            self.view.name()
        )
    }

    fn schema(&self) -> SchemaRef {
        self.view.schema()
    }

    fn accepts_changelog(&self) -> bool {
        true
    }

    fn create(&self, _task: &TaskInfo) -> sluice_runtime::Result<Box<dyn Sink>> {
        Ok(Box::new(ViewSink {
            view: self.view.clone(),
            subtask: 0,
            parallelism: 1,
        }))
    }
}

/// Writes one subtask's rows into the shared view.
///
/// Checkpoints hold the view: each subtask's pre-commit is the rows of the keys routed
/// to it (only it changes them, so they are exactly as of its barrier), as an Arrow IPC
/// stream in base64; after a restart (on any parallelism) every subtask reads all of
/// them and puts back the rows of the keys now routed to it.
struct ViewSink {
    view: Arc<View>,
    subtask: usize,
    parallelism: usize,
}

/// The pre-commit's field holding the rows.
const ROWS: &str = "view_rows";

impl ViewSink {
    fn error(&self, message: String) -> sluice_runtime::Error {
        Error::Unsupported {
            table: self.view.name().to_string(),
            message,
        }
        .into()
    }
}

#[async_trait]
impl Sink for ViewSink {
    async fn open(&mut self, task: &TaskInfo) -> sluice_runtime::Result<()> {
        self.subtask = task.subtask;
        self.parallelism = task.parallelism;
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> sluice_runtime::Result<()> {
        let data = sluice_types::without_row_kind(&batch);
        let kinds = sluice_types::kinds_of(&batch);
        self.apply(&data, &kinds)
    }

    async fn pre_commit(&mut self, _: CheckpointId) -> sluice_runtime::Result<serde_json::Value> {
        let all = self.view.all().map_err(|e| self.error(e))?;
        let Some(mine) = self.mine(all)? else {
            return Ok(serde_json::Value::Null);
        };
        let mut ipc = Vec::new();
        {
            let mut w = StreamWriter::try_new(&mut ipc, &mine.schema())
                .map_err(|e| self.error(e.to_string()))?;
            w.write(&mine).map_err(|e| self.error(e.to_string()))?;
            w.finish().map_err(|e| self.error(e.to_string()))?;
        }
        Ok(serde_json::json!({ ROWS: BASE64.encode(ipc) }))
    }

    async fn recover(
        &mut self,
        pending: Vec<serde_json::Value>,
        _undone: Vec<serde_json::Value>,
    ) -> sluice_runtime::Result<()> {
        for p in pending {
            let Some(text) = p.get(ROWS).and_then(serde_json::Value::as_str) else {
                continue;
            };
            let bytes = BASE64
                .decode(text)
                .map_err(|e| self.error(format!("the checkpoint's view rows: {e}")))?;
            let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)
                .map_err(|e| self.error(format!("the checkpoint's view rows: {e}")))?;
            for batch in reader {
                let batch =
                    batch.map_err(|e| self.error(format!("the checkpoint's view rows: {e}")))?;
                let want = self.view.schema();
                let same = batch.schema().fields().len() == want.fields().len()
                    && batch
                        .schema()
                        .fields()
                        .iter()
                        .zip(want.fields())
                        .all(|(a, b)| a.data_type() == b.data_type());
                if !same {
                    return Err(self.error(
                        "the checkpoint holds the view with other columns; start the pipeline \
                         afresh (without the savepoint) after changing the view's columns"
                            .into(),
                    ));
                }
                // Only this subtask's keys: the others put back theirs, and each key
                // has one writer even while the others still recover.
                if let Some(mine) = self.mine(batch)? {
                    let kinds = vec![RowKind::Insert; mine.num_rows()];
                    self.apply(&mine, &kinds)?;
                }
            }
        }
        Ok(())
    }

    async fn close(&mut self) -> sluice_runtime::Result<()> {
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        // Restored from the checkpoint, then the changes since replayed onto it.
        Delivery::AtLeastOnce
    }
}

impl ViewSink {
    /// The rows of `batch` whose keys are routed to this subtask; `None` when none is.
    fn mine(&self, batch: RecordBatch) -> sluice_runtime::Result<Option<RecordBatch>> {
        if batch.num_rows() == 0 {
            return Ok(None);
        }
        if self.parallelism <= 1 {
            return Ok(Some(batch));
        }
        Ok(
            sluice_runtime::split_by_hash(&batch, self.view.key(), self.parallelism)?
                .into_iter()
                .nth(self.subtask)
                .flatten(),
        )
    }

    /// Applies rows of the table's columns (`kinds`: one per row) to the view.
    fn apply(&self, data: &RecordBatch, kinds: &[RowKind]) -> sluice_runtime::Result<()> {
        let keys: Vec<_> = self
            .view
            .key()
            .iter()
            .map(|i| data.column(*i).clone())
            .collect();
        let converter = self.view.key_converter().map_err(|e| self.error(e))?;
        let encoded = converter
            .convert_columns(&keys)
            .map_err(|e| self.error(e.to_string()))?;
        let mut changes = Vec::with_capacity(data.num_rows());
        for (row, kind) in kinds.iter().enumerate() {
            let key = encoded.row(row).as_ref().to_vec();
            match kind {
                RowKind::Insert | RowKind::UpdateAfter => {
                    let values = data
                        .columns()
                        .iter()
                        .map(|c| ScalarValue::try_from_array(c, row))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| self.error(e.to_string()))?;
                    changes.push((key, Some(values)));
                }
                // The +U that follows a -U replaces the row; only a delete removes it.
                RowKind::UpdateBefore => {}
                RowKind::Delete => changes.push((key, None)),
            }
        }
        self.view.apply(changes).map_err(|max| {
            self.error(format!(
                "the view would hold more than {max} keys: raise 'view.max-rows' or narrow the query"
            ))
        })
    }
}
