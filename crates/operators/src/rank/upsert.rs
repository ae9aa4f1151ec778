//! Upsert semantics for a sink table with `PRIMARY KEY (…) NOT ENFORCED` (Flink's
//! `SinkUpsertMaterializer`): a changelog in, one visible row per key out. `+I`/`+U`
//! make a row the key's current one (`+I` for a new key, `+U` after), `-U` never
//! leaves, and a retraction of the current row shows the previous one again (`+U`) or
//! deletes the key (`-D`; for a `-U`, only if no new row for the key follows in the same
//! batch, where updates come as `-U`/`+U` pairs). Rows a key received and that were not
//! taken back are kept, so that a retraction arriving for an older row finds it.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::RowConverter;
use datafusion::error::Result as DfResult;
use sluice_runtime::{Operator, OperatorContext, OperatorFactory, Result, TaskInfo};
use sluice_state::{DEFAULT_KEY_GROUPS, StateTableKind, StateTableSpec, TableSnapshot};
use sluice_types::{RowKind, kinds_of, without_row_kind};

use super::keyed_rows::KeyedRows;

/// Factory of [`UpsertMaterializer`] subtasks.
#[derive(Debug, Clone)]
pub struct UpsertMaterializer {
    /// The primary key columns of the input.
    f: KeyedRows,
}

impl UpsertMaterializer {
    /// Upserts by the input columns `key`; `schema` ends with the row kind.
    pub fn new(key: Vec<usize>, schema: SchemaRef) -> Self {
        UpsertMaterializer {
            f: KeyedRows { key, schema },
        }
    }
}

struct UpsertTask {
    f: KeyedRows,
    keys: RowConverter,
    rows: RowConverter,
    /// Per key (row-format bytes): its rows not taken back, oldest first.
    state: datafusion::common::HashMap<Vec<u8>, Vec<Box<[u8]>>>,
}

impl UpsertTask {
    fn apply(&mut self, batch: &RecordBatch) -> DfResult<Option<RecordBatch>> {
        let kinds = kinds_of(batch);
        let data = without_row_kind(batch);
        let key_cols: Vec<ArrayRef> = self.f.key.iter().map(|k| data.column(*k).clone()).collect();
        let keys = self.keys.convert_columns(&key_cols)?;
        let rows = self.rows.convert_columns(data.columns())?;
        let mut out: Vec<(RowKind, Box<[u8]>)> = Vec::new();
        // Keys a `-U` emptied in this batch: their `+U` usually follows in the same
        // batch (an update); if none does, the key is deleted at the end.
        let mut emptied: datafusion::common::HashMap<Vec<u8>, Box<[u8]>> = Default::default();
        for (r, kind) in kinds.iter().enumerate() {
            let row = rows.row(r);
            let key = keys.row(r);
            let list = self.state.entry_ref(key.as_ref()).or_default();
            if kind.is_accumulate() {
                let k = if list.is_empty() && emptied.remove(key.as_ref()).is_none() {
                    RowKind::Insert
                } else {
                    RowKind::UpdateAfter
                };
                list.push(row.as_ref().into());
                out.push((k, row.as_ref().into()));
            } else if let Some(i) = list.iter().rposition(|x| **x == *row.as_ref()) {
                let was_current = i + 1 == list.len();
                let removed = list.remove(i);
                match list.last() {
                    None if *kind == RowKind::UpdateBefore => {
                        emptied.insert(key.as_ref().to_vec(), removed);
                    }
                    None => out.push((RowKind::Delete, removed)),
                    Some(now) if was_current => out.push((RowKind::UpdateAfter, now.clone())),
                    Some(_) => {}
                }
            }
        }
        for (key, removed) in emptied {
            if self.state.get(&key).is_none_or(|l| l.is_empty()) {
                out.push((RowKind::Delete, removed));
            }
        }
        self.state.retain(|_, l| !l.is_empty());
        self.f.batch(&self.rows, &out)
    }
}

impl Operator for UpsertTask {
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

    /// `upsert_rows`: per key, its rows in arrival order (`__seq`), key columns first.
    fn snapshot(&mut self) -> Result<Vec<TableSnapshot>> {
        let entries: Vec<(usize, &[u8])> = self
            .state
            .values()
            .flat_map(|l| l.iter().enumerate().map(|(i, r)| (i, r.as_ref())))
            .collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let parser = self.rows.parser();
        let data = self
            .rows
            .convert_rows(entries.iter().map(|(_, r)| parser.parse(r)))?;
        let mut cols: Vec<(String, ArrayRef)> = self
            .f
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("__key{i}"), data[*k].clone()))
            .collect();
        cols.push((
            "__seq".into(),
            Arc::new(UInt64Array::from_iter_values(
                entries.iter().map(|(i, _)| *i as u64),
            )),
        ));
        for (f, a) in self.f.schema.fields().iter().zip(data) {
            cols.push((f.name().clone(), a));
        }
        Ok(vec![TableSnapshot::keyed(
            "upsert_rows",
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
            if t.name != "upsert_rows" || data.num_columns() != nk + 1 + width {
                return Err(sluice_state::Error::Mismatch(format!(
                    "upsert sink: state table '{}' does not fit the query",
                    t.name
                ))
                .into());
            }
            let seq = data
                .column(nk)
                .as_any()
                .downcast_ref::<UInt64Array>()
                .cloned()
                .ok_or_else(|| sluice_state::Error::Mismatch("upsert order".into()))?;
            let keys = self.keys.convert_columns(&data.columns()[..nk])?;
            let rows = self.rows.convert_columns(&data.columns()[nk + 1..])?;
            let mut ordered: Vec<(Vec<u8>, u64, Box<[u8]>)> = (0..data.num_rows())
                .map(|r| {
                    (
                        keys.row(r).as_ref().to_vec(),
                        seq.value(r),
                        rows.row(r).as_ref().into(),
                    )
                })
                .collect();
            ordered.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
            for (k, _, row) in ordered {
                self.state.entry(k).or_default().push(row);
            }
        }
        Ok(())
    }

    fn state_tables(&self) -> Vec<StateTableSpec> {
        vec![StateTableSpec {
            name: "upsert_rows".into(),
            kind: StateTableKind::List,
            schema: self.f.schema.clone(),
            key_columns: self.f.key.len(),
        }]
    }
}

impl OperatorFactory for UpsertMaterializer {
    fn name(&self) -> String {
        "UpsertMaterializer".into()
    }

    fn describe(&self) -> String {
        format!("upsert by PRIMARY KEY ({})", self.f.key_names())
    }

    fn schema(&self) -> SchemaRef {
        self.f.schema.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        let (keys, rows) = self.f.converters()?;
        Ok(Box::new(UpsertTask {
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
    fn updates_become_upserts_and_emptied_keys_are_deleted() {
        use RowKind::*;
        let f = UpsertMaterializer::new(vec![0], schema());
        let task = f.create(&TaskInfo {
            job: "t".into(),
            operator: "u".into(),
            subtask: 0,
            parallelism: 1,
            checkpointing: false,
        });
        let mut task = task.expect("creates");
        let mut run = |rows: &[(RowKind, &str, i64)]| {
            let rows: Vec<(RowKind, &str, Option<i64>)> =
                rows.iter().map(|(k, s, v)| (*k, *s, Some(*v))).collect();
            let mut out = Vec::new();
            let mut ctx = OperatorContext {
                task: TaskInfo {
                    job: "t".into(),
                    operator: "u".into(),
                    subtask: 0,
                    parallelism: 1,
                    checkpointing: false,
                },
                watermark: sluice_types::Watermark(i64::MIN),
                dead_letters: Arc::new(NoLetters),
                metrics: Arc::new(sluice_runtime::JobMetrics::default()),
                split: None,
            };
            task.process(0, batch(&rows), &mut ctx, &mut out)
                .expect("processes");
            lines(out.pop())
        };
        assert_eq!(run(&[(Insert, "a", 1), (Insert, "b", 1)]), ["+Ia1", "+Ib1"]);
        assert_eq!(
            run(&[
                (UpdateBefore, "a", 1),
                (UpdateAfter, "a", 2),
                (Delete, "b", 1)
            ]),
            ["+Ua2", "-Db1"]
        );
        // A retraction of an older row changes nothing visible.
        assert_eq!(run(&[(Insert, "c", 1), (Insert, "c", 2)]), ["+Ic1", "+Uc2"]);
        assert!(run(&[(Delete, "c", 1)]).is_empty());
        // Taking back the current row shows the one before; a lone -U deletes.
        assert_eq!(run(&[(Insert, "c", 3), (Delete, "c", 3)]), ["+Uc3", "+Uc2"]);
        assert_eq!(run(&[(UpdateBefore, "a", 2)]), ["-Da2"]);
    }

    struct NoLetters;
    impl sluice_runtime::DeadLetterOutput for NoLetters {
        fn send(&self, _letter: sluice_types::DeadLetter) {}
    }
}
