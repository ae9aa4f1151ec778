//! Changelog streams: every row carries a kind, like Flink's `RowKind`.
//!
//! An updating stream's batches have one extra, last column named
//! [`ROW_KIND_COLUMN`] (`Int8`) holding a [`RowKind`] per row; an append-only stream's
//! batches have none (every row is an insert).

use datafusion::arrow::array::{Array, Int8Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

/// The name of the row-kind column of an updating stream (always the last column).
pub const ROW_KIND_COLUMN: &str = "__sluice_row_kind";

/// The kind of change a row of a changelog stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum RowKind {
    /// `+I`: a new row.
    Insert = 0,
    /// `-U`: the previous version of an updated row (retracted).
    UpdateBefore = 1,
    /// `+U`: the new version of an updated row.
    UpdateAfter = 2,
    /// `-D`: a deleted row.
    Delete = 3,
}

impl RowKind {
    /// Flink's short string: `+I`, `-U`, `+U`, `-D`.
    pub fn short(self) -> &'static str {
        match self {
            RowKind::Insert => "+I",
            RowKind::UpdateBefore => "-U",
            RowKind::UpdateAfter => "+U",
            RowKind::Delete => "-D",
        }
    }

    /// The kind stored as `v` (anything unknown reads as an insert).
    pub fn from_i8(v: i8) -> RowKind {
        match v {
            1 => RowKind::UpdateBefore,
            2 => RowKind::UpdateAfter,
            3 => RowKind::Delete,
            _ => RowKind::Insert,
        }
    }

    /// Whether the row adds to the result (`+I`, `+U`) rather than retracting (`-U`, `-D`).
    pub fn is_accumulate(self) -> bool {
        matches!(self, RowKind::Insert | RowKind::UpdateAfter)
    }
}

/// The row-kind field appended to an updating stream's schema.
pub fn row_kind_field() -> Field {
    Field::new(ROW_KIND_COLUMN, DataType::Int8, false)
}

/// Whether `schema` is an updating stream's (its last column is the row kind).
pub fn is_changelog(schema: &Schema) -> bool {
    schema
        .fields()
        .last()
        .is_some_and(|f| f.name() == ROW_KIND_COLUMN)
}

/// The row kinds of an updating stream's batch, or `None` for an append-only batch.
pub fn row_kinds(batch: &RecordBatch) -> Option<&Int8Array> {
    if !is_changelog(batch.schema_ref()) {
        return None;
    }
    batch
        .columns()
        .last()
        .and_then(|c| c.as_any().downcast_ref::<Int8Array>())
}

/// `batch` without its row-kind column (unchanged when it has none).
pub fn without_row_kind(batch: &RecordBatch) -> RecordBatch {
    if !is_changelog(batch.schema_ref()) {
        return batch.clone();
    }
    let n = batch.num_columns() - 1;
    let indices: Vec<usize> = (0..n).collect();
    batch.project(&indices).unwrap_or_else(|_| batch.clone())
}

/// Kinds of `batch`'s rows as a vector (all inserts for an append-only batch).
pub fn kinds_of(batch: &RecordBatch) -> Vec<RowKind> {
    match row_kinds(batch) {
        Some(k) => k.values().iter().map(|v| RowKind::from_i8(*v)).collect(),
        None => vec![RowKind::Insert; batch.num_rows()],
    }
}
