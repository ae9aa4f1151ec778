//! The views of the running pipelines, by table name: their rows by key.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{ArrayRef, RecordBatch, new_null_array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;

use super::config::ViewConfig;
use crate::hub::Hub;

/// One view: the latest row of each key.
#[derive(Debug)]
pub struct View {
    config: ViewConfig,
    rows: RwLock<BTreeMap<Vec<u8>, Vec<ScalarValue>>>,
}

impl View {
    /// The table's name.
    pub fn name(&self) -> &str {
        &self.config.table.name
    }

    /// The columns.
    pub fn schema(&self) -> SchemaRef {
        self.config.table.schema.clone()
    }

    /// The primary key's column names.
    pub fn key_columns(&self) -> Vec<String> {
        self.config.table.primary_key.clone()
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.rows.read().map(|r| r.len()).unwrap_or(0)
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A converter of key columns into comparable bytes.
    pub(crate) fn key_converter(&self) -> Result<RowConverter, String> {
        let schema = self.schema();
        RowConverter::new(
            self.config
                .key
                .iter()
                .map(|i| SortField::new(schema.field(*i).data_type().clone()))
                .collect(),
        )
        .map_err(|e| e.to_string())
    }

    /// The key column indexes.
    pub(crate) fn key(&self) -> &[usize] {
        &self.config.key
    }

    /// Applies changes: `(key, Some(row))` sets, `(key, None)` removes. Fails (and
    /// applies nothing) when the view would hold more than `view.max-rows` keys.
    pub(crate) fn apply(
        &self,
        changes: Vec<(Vec<u8>, Option<Vec<ScalarValue>>)>,
    ) -> Result<(), usize> {
        let mut rows = self.rows.write().unwrap_or_else(|p| p.into_inner());
        let new_keys = changes
            .iter()
            .filter(|(k, v)| v.is_some() && !rows.contains_key(k))
            .count();
        if rows.len() + new_keys > self.config.max_rows {
            return Err(self.config.max_rows);
        }
        for (k, v) in changes {
            match v {
                Some(row) => {
                    rows.insert(k, row);
                }
                None => {
                    rows.remove(&k);
                }
            }
        }
        Ok(())
    }

    fn batch_of<'a>(
        &self,
        rows: impl Iterator<Item = &'a Vec<ScalarValue>> + Clone,
    ) -> Result<RecordBatch, String> {
        let schema = self.schema();
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut values = rows.clone().map(|r| r[i].clone()).peekable();
                if values.peek().is_none() {
                    return Ok(new_null_array(f.data_type(), 0));
                }
                ScalarValue::iter_to_array(values).map_err(|e| e.to_string())
            })
            .collect::<Result<_, String>>()?;
        RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())
    }

    /// Every row, in key order.
    pub(crate) fn all(&self) -> Result<RecordBatch, String> {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        self.batch_of(rows.values())
    }

    /// Every row (at most `limit`), in key order.
    pub fn scan(&self, limit: usize) -> Result<RecordBatch, String> {
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        self.batch_of(rows.values().take(limit))
    }

    /// The row of one key, given as text per key column (cast to the column's type).
    pub fn lookup(&self, key: &[&str]) -> Result<RecordBatch, String> {
        let schema = self.schema();
        if key.len() != self.config.key.len() {
            return Err(format!(
                "the key of view '{}' is ({}): give a value for each",
                self.name(),
                self.key_columns().join(", ")
            ));
        }
        let arrays = self
            .config
            .key
            .iter()
            .zip(key)
            .map(|(i, v)| {
                let f = schema.field(*i);
                let text: ArrayRef =
                    Arc::new(datafusion::arrow::array::StringArray::from(vec![*v]));
                let a = cast(&text, f.data_type()).map_err(|e| {
                    format!(
                        "'{v}' is not a {} for key column '{}': {e}",
                        f.data_type(),
                        f.name()
                    )
                })?;
                if a.is_null(0) {
                    return Err(format!(
                        "'{v}' is not a {} for key column '{}'",
                        f.data_type(),
                        f.name()
                    ));
                }
                Ok(a)
            })
            .collect::<Result<Vec<_>, String>>()?;
        let converter = self.key_converter()?;
        let encoded = converter
            .convert_columns(&arrays)
            .map_err(|e| e.to_string())?;
        let k = encoded.row(0).as_ref().to_vec();
        let rows = self.rows.read().unwrap_or_else(|p| p.into_inner());
        self.batch_of(rows.get(&k).into_iter())
    }
}

/// The views, by table name.
pub static VIEWS: Hub<View> = Hub::new();

/// Registers (or replaces) the view of `config`'s table.
pub(crate) fn register(config: ViewConfig) -> Arc<View> {
    let name = config.table.name.clone();
    let view = Arc::new(View {
        config,
        rows: RwLock::new(BTreeMap::new()),
    });
    VIEWS.insert(&name, view.clone());
    view
}

/// The view of table `name`.
pub fn view(name: &str) -> Option<Arc<View>> {
    VIEWS.get(name)
}

/// The names of the views.
pub fn views() -> Vec<String> {
    VIEWS.names()
}

/// Puts back a view that planning another pipeline replaced.
pub fn reinstate(view: Arc<View>) {
    VIEWS.insert(&view.config.table.name.clone(), view);
}

/// Removes the view of table `name` (its pipeline was deleted).
pub fn forget(name: &str) {
    VIEWS.remove(name);
}
