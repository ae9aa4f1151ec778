//! What the one-row-per-key operators (the upsert sink's materializer, the upsert
//! source's normalizer) share: key columns over a changelog schema, the row encodings
//! they keep rows in, and how kept rows become an output batch again.

use std::sync::Arc;

use datafusion::arrow::array::{Int8Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::error::Result as DfResult;
use sluice_types::RowKind;

/// Key columns of a changelog schema (the row kind last).
#[derive(Debug, Clone)]
pub(crate) struct KeyedRows {
    /// Key columns of the input.
    pub(crate) key: Vec<usize>,
    /// Input (and output) schema, with the row kind last.
    pub(crate) schema: SchemaRef,
}

impl KeyedRows {
    /// The data columns' types (without the row kind).
    pub(crate) fn data_types(&self) -> Vec<DataType> {
        let n = self.schema.fields().len().saturating_sub(1);
        self.schema.fields()[..n]
            .iter()
            .map(|f| f.data_type().clone())
            .collect()
    }

    /// Row encodings of the key columns and of whole rows.
    pub(crate) fn converters(&self) -> DfResult<(RowConverter, RowConverter)> {
        let types = self.data_types();
        let keys = RowConverter::new(
            self.key
                .iter()
                .map(|k| SortField::new(types[*k].clone()))
                .collect(),
        )?;
        let rows = RowConverter::new(types.into_iter().map(SortField::new).collect())?;
        Ok((keys, rows))
    }

    /// The key columns' names, comma separated, for `explain`.
    pub(crate) fn key_names(&self) -> String {
        let names: Vec<String> = self
            .key
            .iter()
            .filter_map(|k| self.schema.fields().get(*k).map(|f| f.name().clone()))
            .collect();
        names.join(", ")
    }

    /// `out` (encoded rows with their kinds) as a batch of the schema; `None` if empty.
    pub(crate) fn batch(
        &self,
        rows: &RowConverter,
        out: &[(RowKind, Box<[u8]>)],
    ) -> DfResult<Option<RecordBatch>> {
        if out.is_empty() {
            return Ok(None);
        }
        let parser = rows.parser();
        let mut cols = rows.convert_rows(out.iter().map(|(_, r)| parser.parse(r)))?;
        cols.push(Arc::new(Int8Array::from_iter_values(
            out.iter().map(|(k, _)| *k as i8),
        )));
        Ok(Some(RecordBatch::try_new(self.schema.clone(), cols)?))
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A `(k STRING, v BIGINT)` changelog for the keyed operators' tests.

    use std::sync::Arc;

    use datafusion::arrow::array::{Int8Array, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use sluice_types::{RowKind, kinds_of};

    pub(crate) fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
            sluice_types::row_kind_field(),
        ]))
    }

    pub(crate) fn batch(rows: &[(RowKind, &str, Option<i64>)]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.2))),
                Arc::new(Int8Array::from_iter_values(rows.iter().map(|r| r.0 as i8))),
            ],
        )
        .expect("a batch")
    }

    /// Rows as `<kind><k><v>`, e.g. `+Ua3`.
    pub(crate) fn lines(b: Option<RecordBatch>) -> Vec<String> {
        let Some(b) = b else { return Vec::new() };
        let k = b
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("k");
        let v = b
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("v");
        kinds_of(&b)
            .iter()
            .enumerate()
            .map(|(r, kind)| format!("{}{}{}", kind.short(), k.value(r), v.value(r)))
            .collect()
    }
}
