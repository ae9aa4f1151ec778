//! The view sink: applies each batch's rows to its table's [`View`].

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use sluice_runtime::{Delivery, Sink, SinkFactory, TaskInfo};
use sluice_types::RowKind;

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
        }))
    }
}

/// Writes one subtask's rows into the shared view.
struct ViewSink {
    view: Arc<View>,
}

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
    async fn open(&mut self, _task: &TaskInfo) -> sluice_runtime::Result<()> {
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> sluice_runtime::Result<()> {
        let data = sluice_types::without_row_kind(&batch);
        let kinds = sluice_types::kinds_of(&batch);
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

    async fn close(&mut self) -> sluice_runtime::Result<()> {
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        Delivery::AtMostOnce
    }
}
