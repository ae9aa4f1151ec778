//! Window aggregation: one result row per window and key, emitted once, when the
//! watermark passes the window's end. Rows whose window has already fired are late:
//! counted (`sluice_late_rows_total`) and dropped.
//!
//! Windows are assigned upstream (the window table functions add `window_start` and
//! `window_end` columns; `HOP` and `CUMULATE` repeat a row once per window), so this
//! operator groups by the keys including the window columns and keeps one pane per
//! window end: its own key hash table and vectorized accumulators, dropped when it fires.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int8Array, Int64Array, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::compute::{concat, concat_batches};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_plan::aggregates::group_values::GroupValues;
use sluice_runtime::{
    JobMetrics, Operator, OperatorContext, OperatorFactory, Result, StateChanges, TaskInfo,
};
use sluice_state::{DEFAULT_KEY_GROUPS, StateTableKind, StateTableSpec, TableSnapshot};
use sluice_types::{RowKind, Watermark};

use super::spec::AggregateSpec;
use crate::time::millis;

/// One pane's groups as `window_acc` columns: keys, window end, accumulator states.
fn acc_part(end: i64, keys: Vec<ArrayRef>, states: Vec<ArrayRef>) -> Vec<ArrayRef> {
    let n = keys.first().map_or(0, |k| k.len());
    let mut cols = keys;
    cols.push(Arc::new(Int64Array::from(vec![end; n])));
    cols.extend(states);
    cols
}

/// Factory of [`WindowAggregate`] subtasks.
#[derive(Debug, Clone)]
pub struct WindowAggregate {
    spec: Arc<AggregateSpec>,
    /// Input column holding each row's window end.
    end: usize,
    /// How long (ms) after firing a window still takes late rows and re-emits its
    /// corrected results as updates (0: windows are final when they fire).
    lateness: i64,
    /// The output schema (with a row kind when `lateness` > 0).
    output: SchemaRef,
    /// Windows over processing time (`PROCTIME()`): they fire by the wall clock.
    processing_time: bool,
}

impl WindowAggregate {
    /// An aggregation by `spec.keys` (which include the window columns) whose windows
    /// end at the timestamps of input column `end`.
    pub fn new(spec: AggregateSpec, end: usize) -> Self {
        WindowAggregate {
            output: spec.output.clone(),
            spec: Arc::new(spec),
            end,
            lateness: 0,
            processing_time: false,
        }
    }

    /// Windows over processing time: a window fires when the wall clock passes its end
    /// (checked as rows arrive), or at the end of the input; no row is late.
    pub fn with_processing_time(mut self) -> Self {
        self.processing_time = true;
        self
    }

    /// Keeps fired windows for `lateness` ms more: late rows update them, and the
    /// corrected rows are emitted as `-U`/`+U` (the output becomes a changelog).
    pub fn with_allowed_lateness(mut self, lateness: i64) -> Self {
        self.lateness = lateness.max(0);
        if self.lateness > 0 {
            let mut fields: Vec<_> = self.spec.output.fields().iter().cloned().collect();
            fields.push(Arc::new(sluice_types::row_kind_field()));
            self.output = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
        }
        self
    }

    /// Whether the output is a changelog.
    pub fn updating(&self) -> bool {
        self.lateness > 0
    }
}

/// A fired window kept for late rows: its input rows and the result last emitted.
struct Fired {
    rows: Vec<RecordBatch>,
    last: RecordBatch,
    /// Key rows touched by late rows since the last emission.
    touched: Vec<OwnedRow>,
}

struct Pane {
    groups: Box<dyn GroupValues>,
    accs: Vec<Box<dyn GroupsAccumulator>>,
    /// Input rows, kept only when fired windows stay open for late rows.
    rows: Vec<RecordBatch>,
    /// With incremental checkpoints: what came since the last checkpoint, aggregated
    /// apart, then written as that checkpoint's changes and folded into `groups`/`accs`.
    fresh: Option<Fresh>,
}

struct Fresh {
    groups: Box<dyn GroupValues>,
    accs: Vec<Box<dyn GroupsAccumulator>>,
}

impl Pane {
    /// Folds the fresh part into the pane; returns its keys and accumulator states.
    fn fold(&mut self, spec: &AggregateSpec) -> DfResult<Option<(Vec<ArrayRef>, Vec<ArrayRef>)>> {
        let Some(mut fresh) = self.fresh.take() else {
            return Ok(None);
        };
        let keys = fresh.groups.emit(EmitTo::All)?;
        let mut states = Vec::new();
        for acc in fresh.accs.iter_mut() {
            states.extend(acc.state(EmitTo::All)?);
        }
        spec.merge_groups(self.groups.as_mut(), &mut self.accs, &keys, &states)?;
        Ok(Some((keys, states)))
    }
}

struct WindowAggregateTask {
    spec: Arc<AggregateSpec>,
    end: usize,
    panes: BTreeMap<i64, Pane>,
    watermark: i64,
    indices: Vec<usize>,
    lateness: i64,
    output: SchemaRef,
    fired: BTreeMap<i64, Fired>,
    keys: Option<RowConverter>,
    processing_time: bool,
    /// Checkpoints are incremental: updates go to each pane's fresh part.
    incremental: bool,
}

impl WindowAggregateTask {
    fn pane(&mut self, end: i64) -> DfResult<&mut Pane> {
        if !self.panes.contains_key(&end) {
            let pane = Pane {
                groups: self.spec.group_values()?,
                accs: self.spec.groups_accumulators()?,
                rows: Vec::new(),
                fresh: None,
            };
            self.panes.insert(end, pane);
        }
        Ok(self.panes.get_mut(&end).expect("inserted above"))
    }

    fn update(&mut self, end: i64, batch: &RecordBatch) -> DfResult<()> {
        if let Some(f) = self.fired.get_mut(&end) {
            // A late row for a fired window that is still kept.
            f.rows.push(batch.clone());
            let keys = self.spec.key_columns(batch);
            let conv = match &self.keys {
                Some(c) => c,
                None => {
                    self.keys = Some(RowConverter::new(
                        keys.iter()
                            .map(|k| SortField::new(k.data_type().clone()))
                            .collect(),
                    )?);
                    self.keys.as_ref().expect("set above")
                }
            };
            let rows = conv.convert_columns(&keys)?;
            f.touched.extend(rows.iter().map(|r| r.owned()));
            return Ok(());
        }
        let keys = self.spec.key_columns(batch);
        let args = self.spec.arguments(batch)?;
        let mut indices = std::mem::take(&mut self.indices);
        let keep_rows = self.lateness > 0;
        let incremental = self.incremental;
        let spec = self.spec.clone();
        let pane = self.pane(end)?;
        if keep_rows {
            pane.rows.push(batch.clone());
        }
        let (groups, accs) = if incremental {
            if pane.fresh.is_none() {
                pane.fresh = Some(Fresh {
                    groups: spec.group_values()?,
                    accs: spec.groups_accumulators()?,
                });
            }
            let fresh = pane.fresh.as_mut().expect("set above");
            (&mut fresh.groups, &mut fresh.accs)
        } else {
            (&mut pane.groups, &mut pane.accs)
        };
        groups.intern(&keys, &mut indices)?;
        let total = groups.len();
        for (acc, (values, filter)) in accs.iter_mut().zip(&args) {
            acc.update_batch(values, &indices, filter.as_ref(), total)?;
        }
        self.indices = indices;
        Ok(())
    }

    fn fire(&mut self, mut pane: Pane) -> DfResult<RecordBatch> {
        pane.fold(&self.spec)?;
        let mut cols: Vec<ArrayRef> = pane.groups.emit(EmitTo::All)?;
        for acc in &mut pane.accs {
            cols.push(acc.evaluate(EmitTo::All)?);
        }
        Ok(RecordBatch::try_new(self.spec.output.clone(), cols)?)
    }

    /// Processing time: every row counts; windows whose end the clock passed fire.
    fn process_processing_time(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        let ends = millis(batch.column(self.end))?;
        let mut by_end: HashMap<i64, Vec<u32>> = HashMap::new();
        for (row, e) in ends.iter().enumerate() {
            if let Some(end) = e {
                by_end.entry(end).or_default().push(row as u32);
            }
        }
        for (end, rows) in by_end {
            let part = take_record_batch(batch, &UInt32Array::from(rows))?;
            self.update(end, &part)?;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(i64::MIN);
        while let Some(entry) = self.panes.first_entry() {
            if *entry.key() > now {
                break;
            }
            let pane = entry.remove();
            out.push(self.fire(pane)?);
        }
        Ok(())
    }

    /// With allowed lateness: the input rows of open and fired windows
    /// (`window_rows`), fired windows' last results (`window_last`) and the keys late
    /// rows touched since (`window_touched`).
    fn snapshot_kept(&mut self) -> Result<Vec<TableSnapshot>> {
        let nk = self.spec.keys.len();
        let mut tables = Vec::new();
        let kept = self
            .panes
            .iter()
            .map(|(e, p)| (*e, false, &p.rows))
            .chain(self.fired.iter().map(|(e, f)| (*e, true, &f.rows)));
        let mut parts: Vec<Vec<ArrayRef>> = Vec::new();
        for (end, fired, rows) in kept {
            for b in rows {
                let n = b.num_rows();
                let mut cols = self.spec.key_columns(b);
                cols.push(Arc::new(Int64Array::from(vec![end; n])));
                cols.push(Arc::new(BooleanArray::from(vec![fired; n])));
                cols.extend(b.columns().iter().cloned());
                parts.push(cols);
            }
        }
        let names = |n: usize, extra: &[&str], rest: &SchemaRef| -> Vec<String> {
            (0..n)
                .map(|i| format!("__key{i}"))
                .chain(extra.iter().map(|s| s.to_string()))
                .chain(rest.fields().iter().map(|f| f.name().clone()))
                .collect()
        };
        if let Some(first) = parts.first() {
            let mut cols = Vec::new();
            let names = names(nk, &["__window_end", "__fired"], &self.spec.input);
            for (c, name) in (0..first.len()).zip(names) {
                let arrays: Vec<&dyn Array> = parts.iter().map(|p| p[c].as_ref()).collect();
                cols.push((name, concat(&arrays)?));
            }
            tables.push(TableSnapshot::keyed(
                "window_rows",
                cols,
                nk,
                DEFAULT_KEY_GROUPS,
            )?);
        }
        let lasts: Vec<(i64, &RecordBatch)> =
            self.fired.iter().map(|(e, f)| (*e, &f.last)).collect();
        if !lasts.is_empty() {
            let mut cols: Vec<(String, ArrayRef)> = Vec::new();
            let width = self.spec.output.fields().len();
            for c in 0..width {
                let arrays: Vec<&dyn Array> =
                    lasts.iter().map(|(_, b)| b.column(c).as_ref()).collect();
                cols.push((self.spec.output.field(c).name().clone(), concat(&arrays)?));
            }
            let ends: Vec<i64> = lasts
                .iter()
                .flat_map(|(e, b)| std::iter::repeat_n(*e, b.num_rows()))
                .collect();
            cols.insert(
                nk,
                ("__window_end".into(), Arc::new(Int64Array::from(ends))),
            );
            tables.push(TableSnapshot::keyed(
                "window_last",
                cols,
                nk,
                DEFAULT_KEY_GROUPS,
            )?);
        }
        if let Some(conv) = &self.keys {
            let touched: Vec<(i64, &OwnedRow)> = self
                .fired
                .iter()
                .flat_map(|(e, f)| f.touched.iter().map(move |t| (*e, t)))
                .collect();
            if !touched.is_empty() {
                let mut cols: Vec<(String, ArrayRef)> = conv
                    .convert_rows(touched.iter().map(|(_, r)| r.row()))?
                    .into_iter()
                    .enumerate()
                    .map(|(i, a)| (format!("__key{i}"), a))
                    .collect();
                cols.push((
                    "__window_end".into(),
                    Arc::new(Int64Array::from_iter_values(touched.iter().map(|t| t.0))),
                ));
                tables.push(TableSnapshot::keyed(
                    "window_touched",
                    cols,
                    nk,
                    DEFAULT_KEY_GROUPS,
                )?);
            }
        }
        Ok(tables)
    }

    fn fired_entry(&mut self, end: i64) -> &mut Fired {
        let output = self.spec.output.clone();
        self.fired.entry(end).or_insert_with(|| Fired {
            rows: Vec::new(),
            last: RecordBatch::new_empty(output),
            touched: Vec::new(),
        })
    }

    fn restore_kept(&mut self, table: &str, data: &RecordBatch) -> DfResult<()> {
        let nk = self.spec.keys.len();
        let ends = millis(data.column(nk))?;
        let mut by_end: BTreeMap<(i64, bool), Vec<u32>> = BTreeMap::new();
        let fired = if table == "window_rows" {
            data.column(nk + 1)
                .as_any()
                .downcast_ref::<BooleanArray>()
                .cloned()
        } else {
            None
        };
        for (r, e) in ends.iter().enumerate() {
            let is_fired = table != "window_rows" || fired.as_ref().is_some_and(|f| f.value(r));
            if let Some(e) = e {
                by_end.entry((e, is_fired)).or_default().push(r as u32);
            }
        }
        for ((end, is_fired), rows) in by_end {
            let part = take_record_batch(data, &UInt32Array::from(rows))?;
            match table {
                "window_rows" => {
                    let cols = part.columns()[nk + 2..].to_vec();
                    let batch = RecordBatch::try_new(self.spec.input.clone(), cols)?;
                    if is_fired {
                        self.fired_entry(end).rows.push(batch);
                    } else {
                        self.pane(end)?.rows.push(batch);
                    }
                }
                "window_last" => {
                    let mut cols = part.columns().to_vec();
                    cols.remove(nk);
                    let last = RecordBatch::try_new(self.spec.output.clone(), cols)?;
                    let f = self.fired_entry(end);
                    f.last = concat_batches(&f.last.schema(), [&f.last, &last])?;
                }
                _ => {
                    let keys = &part.columns()[..nk];
                    if self.keys.is_none() {
                        self.keys = Some(RowConverter::new(
                            keys.iter()
                                .map(|k| SortField::new(k.data_type().clone()))
                                .collect(),
                        )?);
                    }
                    let rows = match &self.keys {
                        Some(conv) => conv.convert_columns(keys)?,
                        None => continue,
                    };
                    let touched: Vec<OwnedRow> = rows.iter().map(|r| r.owned()).collect();
                    self.fired_entry(end).touched.extend(touched);
                }
            }
        }
        Ok(())
    }

    /// The `window_acc` table of some panes' groups (see [`acc_part`]).
    fn acc_table(&self, parts: &[Vec<ArrayRef>]) -> Result<Option<TableSnapshot>> {
        let nk = self.spec.keys.len();
        let Some(first) = parts.first() else {
            return Ok(None);
        };
        let mut cols = Vec::new();
        for c in 0..first.len() {
            let arrays: Vec<&dyn Array> = parts.iter().map(|p| p[c].as_ref()).collect();
            let name = if c < nk {
                format!("__key{c}")
            } else if c == nk {
                "__window_end".to_string()
            } else {
                format!("__state{}", c - nk - 1)
            };
            cols.push((name, concat(&arrays)?));
        }
        Ok(Some(TableSnapshot::keyed(
            "window_acc",
            cols,
            nk,
            DEFAULT_KEY_GROUPS,
        )?))
    }

    /// Merges restored `window_acc` rows into the panes, but for windows at or behind
    /// `watermark` (fired before the checkpoint: an incremental chain may still list
    /// their early changes).
    fn restore_accs(&mut self, data: &RecordBatch, watermark: Option<i64>) -> Result<()> {
        let nk = self.spec.keys.len();
        let ends = millis(data.column(nk))?;
        let mut by_end: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        for (r, e) in ends.iter().enumerate() {
            if let Some(e) = e
                && watermark.is_none_or(|w| e.saturating_sub(1) > w)
            {
                by_end.entry(e).or_default().push(r as u32);
            }
        }
        for (end, rows) in by_end {
            let part = take_record_batch(data, &UInt32Array::from(rows))?;
            let spec = self.spec.clone();
            let pane = self.pane(end)?;
            spec.merge_groups(
                pane.groups.as_mut(),
                &mut pane.accs,
                &part.columns()[..nk],
                &part.columns()[nk + 1..],
            )?;
        }
        Ok(())
    }

    /// `batch` (a result without row kind) with every row of kind `kind`.
    fn with_kind(&self, batch: &RecordBatch, kind: RowKind) -> DfResult<RecordBatch> {
        if self.lateness == 0 {
            return Ok(batch.clone());
        }
        let mut cols = batch.columns().to_vec();
        cols.push(Arc::new(Int8Array::from(vec![
            kind as i8;
            batch.num_rows()
        ])));
        Ok(RecordBatch::try_new(self.output.clone(), cols)?)
    }

    /// Recomputes fired windows that got late rows and emits the changed keys.
    fn refire(&mut self, out: &mut Vec<RecordBatch>) -> DfResult<()> {
        let ends: Vec<i64> = self
            .fired
            .iter()
            .filter(|(_, f)| !f.touched.is_empty())
            .map(|(e, _)| *e)
            .collect();
        for end in ends {
            let Some(mut f) = self.fired.remove(&end) else {
                continue;
            };
            let mut pane = Pane {
                groups: self.spec.group_values()?,
                accs: self.spec.groups_accumulators()?,
                rows: Vec::new(),
                fresh: None,
            };
            for b in &f.rows {
                let keys = self.spec.key_columns(b);
                let args = self.spec.arguments(b)?;
                pane.groups.intern(&keys, &mut self.indices)?;
                let total = pane.groups.len();
                for (acc, (values, filter)) in pane.accs.iter_mut().zip(&args) {
                    acc.update_batch(values, &self.indices, filter.as_ref(), total)?;
                }
            }
            let now = self.fire(pane)?;
            let touched: std::collections::HashSet<OwnedRow> = f.touched.drain(..).collect();
            let pick = |b: &RecordBatch, conv: &RowConverter| -> DfResult<RecordBatch> {
                let rows = conv.convert_columns(&b.columns()[..self.spec.keys.len()])?;
                let mask: BooleanArray = rows
                    .iter()
                    .map(|r| Some(touched.contains(&r.owned())))
                    .collect();
                Ok(filter_record_batch(b, &mask)?)
            };
            if let Some(conv) = &self.keys {
                let before = pick(&f.last, conv)?;
                let after = pick(&now, conv)?;
                out.push(self.with_kind(&before, RowKind::UpdateBefore)?);
                out.push(self.with_kind(&after, RowKind::UpdateAfter)?);
            }
            f.last = now;
            self.fired.insert(end, f);
        }
        Ok(())
    }
}

impl Operator for WindowAggregateTask {
    fn process(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        if self.processing_time {
            return self.process_processing_time(&batch, out);
        }
        let ends = millis(batch.column(self.end))?;
        let wm = self.watermark;
        let lateness = self.lateness;
        // A window [start, end) fires when the watermark reaches end - 1; with allowed
        // lateness it still takes rows until the watermark reaches end - 1 + lateness.
        let live =
            |e: Option<i64>| e.is_some_and(|e| e.saturating_sub(1).saturating_add(lateness) > wm);
        let first = ends.iter().next().flatten();
        let uniform = ends.null_count() == 0 && ends.values().iter().all(|e| Some(*e) == first);
        if uniform {
            if let Some(end) = first {
                if live(Some(end)) {
                    self.update(end, &batch)?;
                } else {
                    JobMetrics::add(&ctx.metrics.late_rows, batch.num_rows() as u64);
                }
            }
            return Ok(());
        }
        let mut by_end: HashMap<i64, Vec<u32>> = HashMap::new();
        let mut late = 0u64;
        for (row, e) in ends.iter().enumerate() {
            match e {
                Some(end) if live(e) => by_end.entry(end).or_default().push(row as u32),
                _ => late += 1,
            }
        }
        if late > 0 {
            JobMetrics::add(&ctx.metrics.late_rows, late);
        }
        for (end, rows) in by_end {
            let part = take_record_batch(&batch, &UInt32Array::from(rows))?;
            self.update(end, &part)?;
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        _ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<Option<Watermark>> {
        self.watermark = self.watermark.max(watermark.0);
        let wm = self.watermark;
        while let Some(entry) = self.panes.first_entry() {
            if entry.key().saturating_sub(1) > wm {
                break;
            }
            let end = *entry.key();
            let mut pane = entry.remove();
            let rows = std::mem::take(&mut pane.rows);
            let result = self.fire(pane)?;
            out.push(self.with_kind(&result, RowKind::Insert)?);
            if self.lateness > 0 {
                self.fired.insert(
                    end,
                    Fired {
                        rows,
                        last: result,
                        touched: Vec::new(),
                    },
                );
            }
        }
        self.refire(out)?;
        // Fired windows past their allowed lateness are final.
        let lateness = self.lateness;
        self.fired
            .retain(|end, _| end.saturating_sub(1).saturating_add(lateness) > wm);
        Ok(Some(watermark))
    }

    /// `window_acc`: per open window and key, the keys (window columns included), the
    /// window end and every function's accumulator state; `window_watermark`: the
    /// operator's watermark, which decides what is late after a restore.
    fn snapshot(&mut self) -> Result<Vec<TableSnapshot>> {
        let mut parts: Vec<Vec<ArrayRef>> = Vec::new();
        for (end, pane) in self.panes.iter_mut() {
            pane.fold(&self.spec)?;
            let (keys, states) = self
                .spec
                .snapshot_groups(&mut pane.groups, &mut pane.accs)?;
            parts.push(acc_part(*end, keys, states));
        }
        let mut tables = Vec::new();
        tables.extend(self.acc_table(&parts)?);
        if self.lateness > 0 {
            tables.extend(self.snapshot_kept()?);
        }
        tables.push(TableSnapshot::watermark(
            "window_watermark",
            self.watermark,
        )?);
        Ok(tables)
    }

    /// Incremental for event-time windows that fire once (no allowed lateness).
    fn incremental(&self) -> bool {
        !self.processing_time && self.lateness == 0
    }

    /// The changes are the partial aggregates of what came since the last checkpoint
    /// (in `window_acc`, merged with the earlier ones on restore); they matter until
    /// their windows fire.
    fn snapshot_changes(&mut self, full: bool) -> Result<StateChanges> {
        self.incremental = true;
        let (tables, horizon) = if full {
            let horizon = self
                .panes
                .keys()
                .next_back()
                .map_or(i64::MIN, |e| e.saturating_sub(1));
            (self.snapshot()?, horizon)
        } else {
            let mut parts: Vec<Vec<ArrayRef>> = Vec::new();
            let mut horizon = i64::MIN;
            for (end, pane) in self.panes.iter_mut() {
                if let Some((keys, states)) = pane.fold(&self.spec)? {
                    horizon = horizon.max(end.saturating_sub(1));
                    parts.push(acc_part(*end, keys, states));
                }
            }
            let mut tables = Vec::new();
            tables.extend(self.acc_table(&parts)?);
            tables.push(TableSnapshot::watermark(
                "window_watermark",
                self.watermark,
            )?);
            (tables, horizon)
        };
        // Every pane's fresh part is folded by now.
        Ok(StateChanges {
            tables,
            horizon,
            progress: self.watermark,
            live_rows: self.panes.values().map(|p| p.groups.len()).sum(),
        })
    }

    fn restore(&mut self, tables: Vec<TableSnapshot>) -> Result<()> {
        let nk = self.spec.keys.len();
        let mut watermark: Option<i64> = None;
        let mut pending = Vec::new();
        for t in tables {
            let data = t.data()?;
            match t.name.as_str() {
                "window_acc" => {
                    let width: usize = self.spec.state_widths()?.iter().sum();
                    if data.num_columns() != nk + 1 + width {
                        return Err(sluice_state::Error::Mismatch(
                            "the window state has a different shape than the query".into(),
                        )
                        .into());
                    }
                    // Merged once the earlier subtask's watermark (after its keyed
                    // tables) says which of its windows had fired.
                    pending.push(data);
                }
                "window_watermark" => {
                    let w = t.smallest_watermark()?;
                    for data in pending.drain(..) {
                        self.restore_accs(&data, w)?;
                    }
                    if let Some(w) = w {
                        watermark = Some(watermark.map_or(w, |m| m.min(w)));
                    }
                }
                "window_rows" | "window_last" | "window_touched" => {
                    let want = match t.name.as_str() {
                        "window_rows" => nk + 2 + self.spec.input.fields().len(),
                        "window_last" => self.spec.output.fields().len() + 1,
                        _ => nk + 1,
                    };
                    if data.num_columns() != want {
                        return Err(sluice_state::Error::Mismatch(format!(
                            "the window state '{}' has a different shape than the query",
                            t.name
                        ))
                        .into());
                    }
                    self.restore_kept(&t.name, &data)?;
                }
                other => {
                    return Err(
                        sluice_state::Error::unexpected_table("window aggregate", other).into(),
                    );
                }
            }
        }
        for data in pending {
            self.restore_accs(&data, None)?;
        }
        if let Some(w) = watermark {
            self.watermark = self.watermark.max(w);
        }
        Ok(())
    }

    fn state_tables(&self) -> Vec<StateTableSpec> {
        self.spec
            .state_table("window_acc", StateTableKind::Value, true)
            .into_iter()
            .collect()
    }
}

impl OperatorFactory for WindowAggregate {
    fn name(&self) -> String {
        "WindowAggregate".into()
    }

    fn describe(&self) -> String {
        self.spec.describe()
    }

    fn schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(WindowAggregateTask {
            spec: self.spec.clone(),
            end: self.end,
            panes: BTreeMap::new(),
            watermark: i64::MIN,
            indices: Vec::new(),
            lateness: self.lateness,
            output: self.output.clone(),
            fired: BTreeMap::new(),
            keys: None,
            processing_time: self.processing_time,
            incremental: false,
        }))
    }

    fn stateless(&self) -> bool {
        false
    }
}
