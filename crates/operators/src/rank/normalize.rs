//! Normalizes an upsert stream (an `upsert-kafka` source: `+I` rows that replace their
//! key's row, `-D` rows that delete it) into a full changelog, as Flink's
//! `ChangelogNormalize` does: a new key gives `+I`, a changed row `-U` (the old row) and
//! `+U` (the new one), a deletion `-D` with the old row; a row equal to the key's
//! current one, and a deletion of a key that has no row, give nothing. State: the
//! current row of every key.

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::RowConverter;
use datafusion::error::Result as DfResult;
use sluice_runtime::{Operator, OperatorContext, OperatorFactory, Result, TaskInfo};
use sluice_state::{DEFAULT_KEY_GROUPS, StateTableKind, StateTableSpec, TableSnapshot};
use sluice_types::{RowKind, kinds_of, without_row_kind};

use super::keyed_rows::KeyedRows;

const TABLE: &str = "normalize_rows";

/// Factory of [`ChangelogNormalize`] subtasks.
#[derive(Debug, Clone)]
pub struct ChangelogNormalize {
    f: KeyedRows,
}

impl ChangelogNormalize {
    /// Normalizes by the input columns `key`; `schema` ends with the row kind.
    pub fn new(key: Vec<usize>, schema: SchemaRef) -> Self {
        ChangelogNormalize {
            f: KeyedRows { key, schema },
        }
    }
}

struct NormalizeTask {
    f: KeyedRows,
    keys: RowConverter,
    rows: RowConverter,
    /// Per key (row-format bytes): its current row.
    state: datafusion::common::HashMap<Vec<u8>, Box<[u8]>>,
}

impl NormalizeTask {
    fn apply(&mut self, batch: &RecordBatch) -> DfResult<Option<RecordBatch>> {
        let kinds = kinds_of(batch);
        let data = without_row_kind(batch);
        let key_cols: Vec<ArrayRef> = self.f.key.iter().map(|k| data.column(*k).clone()).collect();
        let keys = self.keys.convert_columns(&key_cols)?;
        let rows = self.rows.convert_columns(data.columns())?;
        let mut out: Vec<(RowKind, Box<[u8]>)> = Vec::new();
        for (r, kind) in kinds.iter().enumerate() {
            let key = keys.row(r);
            match kind {
                RowKind::Delete => {
                    if let Some(old) = self.state.remove(key.as_ref()) {
                        out.push((RowKind::Delete, old));
                    }
                }
                RowKind::UpdateBefore => {}
                RowKind::Insert | RowKind::UpdateAfter => {
                    let row: Box<[u8]> = rows.row(r).as_ref().into();
                    match self.state.insert(key.as_ref().to_vec(), row.clone()) {
                        None => out.push((RowKind::Insert, row)),
                        Some(old) if old == row => {}
                        Some(old) => {
                            out.push((RowKind::UpdateBefore, old));
                            out.push((RowKind::UpdateAfter, row));
                        }
                    }
                }
            }
        }
        self.f.batch(&self.rows, &out)
    }
}

impl Operator for NormalizeTask {
    fn process(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        _ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        if let Some(b) = self.apply(&batch)? {
            out.push(b);
        }
        Ok(())
    }

    /// `normalize_rows`: the current row of every key, key columns first.
    fn snapshot(&mut self) -> Result<Vec<TableSnapshot>> {
        if self.state.is_empty() {
            return Ok(Vec::new());
        }
        let parser = self.rows.parser();
        let data = self
            .rows
            .convert_rows(self.state.values().map(|r| parser.parse(r)))?;
        let mut cols: Vec<(String, ArrayRef)> = self
            .f
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("__key{i}"), data[*k].clone()))
            .collect();
        for (f, a) in self.f.schema.fields().iter().zip(data) {
            cols.push((f.name().clone(), a));
        }
        Ok(vec![TableSnapshot::keyed(
            TABLE,
            cols,
            self.f.key.len(),
            DEFAULT_KEY_GROUPS,
        )?])
    }

    fn restore(&mut self, tables: Vec<TableSnapshot>) -> Result<()> {
        let nk = self.f.key.len();
        let width = self.f.data_types().len();
        for t in tables {
            let data = t.data()?;
            if t.name != TABLE || data.num_columns() != nk + width {
                return Err(sluice_state::Error::Mismatch(format!(
                    "upsert source: state table '{}' does not fit the query",
                    t.name
                ))
                .into());
            }
            let keys = self.keys.convert_columns(&data.columns()[..nk])?;
            let rows = self.rows.convert_columns(&data.columns()[nk..])?;
            for r in 0..data.num_rows() {
                self.state
                    .insert(keys.row(r).as_ref().to_vec(), rows.row(r).as_ref().into());
            }
        }
        Ok(())
    }

    fn state_tables(&self) -> Vec<StateTableSpec> {
        vec![StateTableSpec {
            name: TABLE.into(),
            kind: StateTableKind::Value,
            schema: self.f.schema.clone(),
            key_columns: self.f.key.len(),
        }]
    }
}

impl OperatorFactory for ChangelogNormalize {
    fn name(&self) -> String {
        "ChangelogNormalize".into()
    }

    fn describe(&self) -> String {
        format!("upserts by key ({})", self.f.key_names())
    }

    fn schema(&self) -> SchemaRef {
        self.f.schema.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        let (keys, rows) = self.f.converters()?;
        Ok(Box::new(NormalizeTask {
            f: self.f.clone(),
            keys,
            rows,
            state: Default::default(),
        }))
    }

    fn stateless(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rank::keyed_rows::testing::{batch, lines, schema};

    #[test]
    fn upserts_and_deletes_become_a_full_changelog_that_survives_a_restore() {
        use RowKind::*;
        let f = ChangelogNormalize::new(vec![0], schema());
        let mut t = f.create(&TaskInfo::default()).expect("a task");
        let mut ctx = crate::snapshot_tests::ctx(0, 1);
        let mut run = |t: &mut Box<dyn Operator>, rows: &[(RowKind, &str, Option<i64>)]| {
            let mut out = Vec::new();
            t.process(0, batch(rows), &mut ctx, &mut out)
                .expect("processes");
            lines(out.pop())
        };
        assert_eq!(
            run(
                &mut t,
                &[
                    (Insert, "a", Some(1)),
                    (Insert, "b", Some(2)),
                    (Insert, "a", Some(3))
                ]
            ),
            ["+Ia1", "+Ib2", "-Ua1", "+Ua3"]
        );
        // The same row again is nothing; a deletion carries the old row; deleting a key
        // that has no row is nothing.
        assert_eq!(
            run(
                &mut t,
                &[
                    (Insert, "a", Some(3)),
                    (Delete, "b", None),
                    (Delete, "z", None)
                ]
            ),
            ["-Db2"]
        );
        let snap = t.snapshot().expect("snapshots");
        let mut restored = f.create(&TaskInfo::default()).expect("a task");
        restored.restore(snap).expect("restores");
        assert_eq!(
            run(
                &mut restored,
                &[(Insert, "a", Some(4)), (Insert, "b", Some(5))]
            ),
            ["-Ua3", "+Ua4", "+Ib5"]
        );
    }
}
