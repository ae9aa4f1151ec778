//! The event-time temporal join (`JOIN t FOR SYSTEM_TIME AS OF o.ts`): each probe row
//! (input 0) joins the version of its key in the versioned table (input 1) that was
//! valid at the row's time: the latest version whose time is at most the row's time.
//!
//! A probe row waits until the watermark (the minimum of both inputs) passes its time,
//! so every version that could apply has arrived; then it is joined and emitted once.
//! The output is append-only. Versions older than the one valid at the watermark can
//! never be chosen again and leave the state. The versioned input may be a changelog:
//! `+I`/`+U` start a version, `-D` ends the key's versions (a deletion), `-U` is ignored.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::{concat_batches, filter_record_batch, take};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::error::Result as DfResult;
use datafusion::physical_plan::PhysicalExpr;
use sluice_runtime::{JobMetrics, Operator, OperatorContext, OperatorFactory, Result, TaskInfo};
use sluice_state::{DEFAULT_KEY_GROUPS, StateTableKind, StateTableSpec, TableSnapshot};
use sluice_types::{RowKind, Watermark, kinds_of, without_row_kind};

/// Factory of [`TemporalJoin`] subtasks.
#[derive(Debug, Clone)]
pub struct TemporalJoin {
    /// Probe rows without a version are kept, NULL-padded (LEFT JOIN).
    outer: bool,
    /// Key columns of each side's input batches.
    keys: [Vec<usize>; 2],
    /// Probe columns that belong to the output (a prefix of the input).
    probe_width: usize,
    /// The versioned input's columns that belong to the output, in output order.
    right_values: Vec<usize>,
    /// Input column of the probe row's time and of the version's time.
    time: [usize; 2],
    /// The rest of the join condition, over the joined row.
    filter: Option<Arc<dyn PhysicalExpr>>,
    /// A condition on the versioned table alone, over its input rows: a version that
    /// fails it is chosen as usual but matches nothing.
    version_filter: Option<Arc<dyn PhysicalExpr>>,
    /// Output schema: probe columns then versioned-table columns.
    output: SchemaRef,
    key_types: Vec<DataType>,
    description: String,
}

impl TemporalJoin {
    /// A temporal join; see the field docs.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        outer: bool,
        keys: [Vec<usize>; 2],
        probe_width: usize,
        right_values: Vec<usize>,
        time: [usize; 2],
        filter: Option<Arc<dyn PhysicalExpr>>,
        version_filter: Option<Arc<dyn PhysicalExpr>>,
        output: SchemaRef,
        key_types: Vec<DataType>,
        description: String,
    ) -> Self {
        TemporalJoin {
            outer,
            keys,
            probe_width,
            right_values,
            time,
            filter,
            version_filter,
            output,
            key_types,
            description,
        }
    }
}

/// One version of a key: from `time` on, the row (or `None` once deleted), and whether
/// it passes the condition on the versioned table alone.
type Version = (i64, Option<OwnedRow>, bool);

struct TemporalTask {
    f: TemporalJoin,
    keys: RowConverter,
    values: RowConverter,
    /// Versions per key, ordered by time.
    /// (Keys in Arrow's row format.)
    versions: datafusion::common::HashMap<Vec<u8>, Vec<Version>>,
    /// Keys with more than one version (or a deletion): the only ones cleanup visits.
    crowded: datafusion::common::HashSet<Vec<u8>>,
    /// Probe rows waiting for the watermark.
    pending: Vec<RecordBatch>,
}

/// The index of the version valid at `t` (the last one starting at or before it).
fn valid_at(list: &[Version], t: i64) -> Option<usize> {
    list.partition_point(|v| v.0 <= t).checked_sub(1)
}

impl TemporalTask {
    fn key_rows(&self, side: usize, batch: &RecordBatch) -> DfResult<datafusion::arrow::row::Rows> {
        let cols: Vec<ArrayRef> = self.f.keys[side]
            .iter()
            .map(|k| batch.column(*k).clone())
            .collect();
        Ok(self.keys.convert_columns(&cols)?)
    }

    fn null_key(&self, side: usize, batch: &RecordBatch, r: usize) -> bool {
        self.f.keys[side]
            .iter()
            .any(|k| batch.column(*k).is_null(r))
    }

    /// Adds the rows of the versioned table's batch as versions.
    fn add_versions(&mut self, batch: &RecordBatch) -> DfResult<()> {
        let kinds = kinds_of(batch);
        let data = without_row_kind(batch);
        let keys = self.key_rows(1, &data)?;
        let value_cols: Vec<ArrayRef> = self
            .f
            .right_values
            .iter()
            .map(|c| data.column(*c).clone())
            .collect();
        let values = self.values.convert_columns(&value_cols)?;
        let times = crate::time::millis(data.column(self.f.time[1]))?;
        let ok: Option<BooleanArray> = match &self.f.version_filter {
            Some(f) => {
                let v = f.evaluate(&data)?.into_array(data.num_rows())?;
                v.as_any().downcast_ref::<BooleanArray>().cloned()
            }
            None => None,
        };
        for (r, kind) in kinds.iter().enumerate() {
            if self.null_key(1, &data, r) || times.is_null(r) {
                continue;
            }
            let value = match kind {
                RowKind::Insert | RowKind::UpdateAfter => Some(values.row(r).owned()),
                RowKind::Delete => None,
                RowKind::UpdateBefore => continue,
            };
            let passes = ok.as_ref().is_none_or(|b| b.is_valid(r) && b.value(r));
            self.insert_version(keys.row(r).as_ref(), times.value(r), value, passes);
        }
        Ok(())
    }

    fn insert_version(&mut self, key: &[u8], t: i64, value: Option<OwnedRow>, passes: bool) {
        let list = self.versions.entry_ref(key).or_default();
        let at = list.partition_point(|v| v.0 <= t);
        if at > 0 && list[at - 1].0 == t {
            // The same time: the later row wins (upsert).
            list[at - 1] = (t, value, passes);
        } else {
            list.insert(at, (t, value, passes));
        }
        if (list.len() > 1 || list.iter().any(|v| v.1.is_none())) && !self.crowded.contains(key) {
            self.crowded.insert(key.to_vec());
        }
    }

    /// Splits `batch` into its rows due at watermark `wm` (time at most `wm`, or no
    /// time: such a row joins nothing) and the rest.
    fn split_due(&self, batch: RecordBatch, wm: i64) -> DfResult<[Option<RecordBatch>; 2]> {
        let times = crate::time::millis(batch.column(self.f.time[0]))?;
        let due: BooleanArray = times
            .iter()
            .map(|t| Some(t.is_none_or(|t| t <= wm)))
            .collect();
        Ok(match due.true_count() {
            0 => [None, Some(batch)],
            n if n == batch.num_rows() => [Some(batch), None],
            _ => {
                let not_due = datafusion::arrow::compute::not(&due)?;
                [
                    Some(filter_record_batch(&batch, &due)?),
                    Some(filter_record_batch(&batch, &not_due)?),
                ]
            }
        })
    }

    /// Joins and emits every waiting probe row whose time is at most `wm`.
    fn emit(&mut self, wm: i64, out: &mut Vec<RecordBatch>) -> DfResult<()> {
        let mut ready = Vec::new();
        for batch in std::mem::take(&mut self.pending) {
            let [due, rest] = self.split_due(batch, wm)?;
            ready.extend(due);
            self.pending.extend(rest);
        }
        if ready.is_empty() {
            return Ok(());
        }
        let probe = concat_batches(&ready[0].schema(), &ready)?;
        if let Some(b) = self.join(&probe)? {
            out.push(b);
        }
        Ok(())
    }

    fn join(&self, probe: &RecordBatch) -> DfResult<Option<RecordBatch>> {
        let keys = self.key_rows(0, probe)?;
        let times = crate::time::millis(probe.column(self.f.time[0]))?;
        let mut probe_idx: Vec<u32> = Vec::new();
        let mut version_idx: Vec<Option<u32>> = Vec::new();
        let mut found: Vec<&OwnedRow> = Vec::new();
        for r in 0..probe.num_rows() {
            let version = if self.null_key(0, probe, r) || times.is_null(r) {
                None
            } else {
                self.versions.get(keys.row(r).as_ref()).and_then(|list| {
                    valid_at(list, times.value(r))
                        .map(|i| &list[i])
                        .filter(|v| v.2)
                        .and_then(|v| v.1.as_ref())
                })
            };
            match version {
                Some(v) => {
                    probe_idx.push(r as u32);
                    version_idx.push(Some(found.len() as u32));
                    found.push(v);
                }
                None if self.f.outer => {
                    probe_idx.push(r as u32);
                    version_idx.push(None);
                }
                None => {}
            }
        }
        if probe_idx.is_empty() {
            return Ok(None);
        }
        let versions = self.values.convert_rows(found.iter().map(|r| r.row()))?;
        let pidx = UInt32Array::from(probe_idx);
        let mut vidx = UInt32Array::from(version_idx);
        let left: Vec<ArrayRef> = probe.columns()[..self.f.probe_width]
            .iter()
            .map(|c| take(c.as_ref(), &pidx, None))
            .collect::<std::result::Result<_, _>>()?;
        let right = |vidx: &UInt32Array| -> DfResult<Vec<ArrayRef>> {
            Ok(versions
                .iter()
                .map(|c| take(c.as_ref(), vidx, None))
                .collect::<std::result::Result<_, _>>()?)
        };
        let mut batch = RecordBatch::try_new(
            self.f.output.clone(),
            [left.clone(), right(&vidx)?].concat(),
        )?;
        if let Some(filter) = &self.f.filter {
            let v = filter.evaluate(&batch)?.into_array(batch.num_rows())?;
            let pass: BooleanArray = match v.as_any().downcast_ref::<BooleanArray>() {
                Some(b) => (0..b.len())
                    .map(|i| Some(b.is_valid(i) && b.value(i)))
                    .collect(),
                None => BooleanArray::from(vec![false; batch.num_rows()]),
            };
            if self.f.outer {
                // A failing condition leaves the probe row unmatched.
                vidx = vidx
                    .iter()
                    .zip(pass.iter())
                    .map(|(v, p)| v.filter(|_| p == Some(true)))
                    .collect();
                batch =
                    RecordBatch::try_new(self.f.output.clone(), [left, right(&vidx)?].concat())?;
            } else {
                batch = filter_record_batch(&batch, &pass)?;
            }
        }
        Ok((batch.num_rows() > 0).then_some(batch))
    }

    /// Drops versions that no probe row at or after `wm` can choose.
    fn cleanup(&mut self, wm: i64) {
        let versions = &mut self.versions;
        self.crowded.retain(|key| {
            let Some(list) = versions.get_mut(key) else {
                return false;
            };
            if let Some(i) = valid_at(list, wm) {
                list.drain(..i);
            }
            if list.len() == 1 && list[0].1.is_none() && list[0].0 <= wm {
                versions.remove(key);
                return false;
            }
            list.len() > 1 || list.iter().any(|v| v.1.is_none())
        });
    }
}

impl Operator for TemporalTask {
    fn process(
        &mut self,
        input: usize,
        batch: RecordBatch,
        ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        if input == 0 {
            if batch.num_rows() == 0 {
                return Ok(());
            }
            // Rows at or before the watermark (late rows) need not wait: they are joined
            // with the versions still kept (as Flink does) and counted as late.
            let [due, rest] = self.split_due(without_row_kind(&batch), ctx.watermark.0)?;
            if let Some(d) = &due {
                let t = crate::time::millis(d.column(self.f.time[0]))?;
                let late = (t.len() - t.null_count()) as u64;
                if late > 0 {
                    JobMetrics::add(&ctx.metrics.late_rows, late);
                }
            }
            self.pending.extend(rest);
            if let Some(due) = due
                && let Some(b) = self.join(&due)?
            {
                out.push(b);
            }
        } else {
            self.add_versions(&batch)?;
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        _ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<Option<Watermark>> {
        self.emit(watermark.0, out)?;
        if watermark < Watermark::MAX {
            self.cleanup(watermark.0);
        }
        Ok(Some(watermark))
    }

    fn on_close(&mut self, _ctx: &mut OperatorContext, out: &mut Vec<RecordBatch>) -> Result<()> {
        self.emit(i64::MAX, out)?;
        Ok(())
    }

    fn snapshot(&mut self) -> Result<Vec<TableSnapshot>> {
        // Versions: key, version time, deleted, then the versioned table's columns.
        let entries: Vec<(&[u8], i64, Option<&OwnedRow>, bool)> = self
            .versions
            .iter()
            .flat_map(|(k, list)| {
                list.iter()
                    .map(move |v| (k.as_slice(), v.0, v.1.as_ref(), v.2))
            })
            .collect();
        let parser = self.keys.parser();
        let mut cols: Vec<(String, ArrayRef)> = self
            .keys
            .convert_rows(entries.iter().map(|e| parser.parse(e.0)))?
            .into_iter()
            .enumerate()
            .map(|(i, a)| (format!("__key{i}"), a))
            .collect();
        cols.push((
            "__version_time".into(),
            Arc::new(Int64Array::from_iter_values(entries.iter().map(|e| e.1))),
        ));
        cols.push((
            "__deleted".into(),
            Arc::new(BooleanArray::from_iter(
                entries.iter().map(|e| Some(e.2.is_none())),
            )),
        ));
        cols.push((
            "__passes".into(),
            Arc::new(BooleanArray::from_iter(entries.iter().map(|e| Some(e.3)))),
        ));
        let present = self
            .values
            .convert_rows(entries.iter().filter_map(|e| e.2.map(|r| r.row())))?;
        let mut next = 0u32;
        let idx: UInt32Array = entries
            .iter()
            .map(|e| {
                e.2.map(|_| {
                    next += 1;
                    next - 1
                })
            })
            .collect();
        for (f, a) in self.f.output.fields()[self.f.probe_width..]
            .iter()
            .zip(present)
        {
            cols.push((f.name().clone(), take(a.as_ref(), &idx, None)?));
        }
        let nk = self.f.keys[1].len();
        let versions = TableSnapshot::keyed("temporal_versions", cols, nk, DEFAULT_KEY_GROUPS)?;
        // Waiting probe rows, their key columns first.
        let mut tables = vec![versions];
        tables.extend(TableSnapshot::keyed_rows(
            "temporal_probe",
            &self.pending,
            &self.f.keys[0],
            DEFAULT_KEY_GROUPS,
        )?);
        Ok(tables)
    }

    fn restore(&mut self, tables: Vec<TableSnapshot>) -> Result<()> {
        for t in tables {
            let data = t.data()?;
            match t.name.as_str() {
                "temporal_versions" => {
                    let nk = self.f.keys[1].len();
                    if data.num_columns() != nk + 3 + self.f.right_values.len() {
                        return Err(mismatch("temporal_versions"));
                    }
                    let keys = self.keys.convert_columns(&data.columns()[..nk])?;
                    let times = crate::time::millis(data.column(nk))?;
                    let flag = |c: usize| {
                        data.column(c)
                            .as_any()
                            .downcast_ref::<BooleanArray>()
                            .cloned()
                            .ok_or_else(|| mismatch("temporal_versions"))
                    };
                    let deleted = flag(nk + 1)?;
                    let passes = flag(nk + 2)?;
                    let values = self.values.convert_columns(&data.columns()[nk + 3..])?;
                    for r in 0..data.num_rows() {
                        let value = (!deleted.value(r)).then(|| values.row(r).owned());
                        self.insert_version(
                            keys.row(r).as_ref(),
                            times.value(r),
                            value,
                            passes.value(r),
                        );
                    }
                }
                "temporal_probe" => {
                    let nk = self.f.keys[0].len();
                    if data.num_columns() < nk + self.f.probe_width {
                        return Err(mismatch("temporal_probe"));
                    }
                    let cols: Vec<usize> = (nk..data.num_columns()).collect();
                    let probe = data.project(&cols)?;
                    if probe.num_rows() > 0 {
                        self.pending.push(probe);
                    }
                }
                other => return Err(mismatch(other)),
            }
        }
        Ok(())
    }

    fn state_tables(&self) -> Vec<StateTableSpec> {
        let w = self.f.probe_width;
        let side = |range: std::ops::Range<usize>| {
            Arc::new(
                self.f
                    .output
                    .project(&range.collect::<Vec<_>>())
                    .unwrap_or_else(|_| datafusion::arrow::datatypes::Schema::empty()),
            )
        };
        vec![
            StateTableSpec {
                name: "temporal_probe".into(),
                kind: StateTableKind::List,
                schema: side(0..w),
                key_columns: self.f.keys[0].len(),
            },
            StateTableSpec {
                name: "temporal_versions".into(),
                kind: StateTableKind::List,
                schema: side(w..self.f.output.fields().len()),
                key_columns: self.f.keys[1].len(),
            },
        ]
    }
}

fn mismatch(table: &str) -> sluice_runtime::Error {
    sluice_state::Error::unexpected_table("temporal join", table).into()
}

impl OperatorFactory for TemporalJoin {
    fn name(&self) -> String {
        "TemporalJoin".into()
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        let keys = RowConverter::new(
            self.key_types
                .iter()
                .map(|t| SortField::new(t.clone()))
                .collect(),
        )?;
        let values = RowConverter::new(
            self.output.fields()[self.probe_width..]
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        Ok(Box::new(TemporalTask {
            f: self.clone(),
            keys,
            values,
            versions: Default::default(),
            crowded: Default::default(),
            pending: Vec::new(),
        }))
    }

    fn stateless(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_valid_version_is_the_last_one_starting_at_or_before() {
        let list: Vec<Version> = vec![(10, None, true), (20, None, true), (30, None, true)];
        assert_eq!(valid_at(&list, 5), None);
        assert_eq!(valid_at(&list, 10), Some(0));
        assert_eq!(valid_at(&list, 29), Some(1));
        assert_eq!(valid_at(&list, 99), Some(2));
    }
}
