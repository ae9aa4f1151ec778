//! Session windows: per key, rows less than `gap` apart form one session
//! `[first row, last row + gap)`. Each row arrives as its own proto-session (the
//! `SESSION` table function sets `window_start` = its time and `window_end` = time +
//! gap); overlapping sessions of a key merge. A session fires, once, when the watermark
//! passes its end; its rows are then aggregated. Open sessions keep their rows (state
//! per key: the rows of its open sessions).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, TimestampMillisecondArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, concat, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::EmitTo;
use sluice_runtime::{JobMetrics, Operator, OperatorContext, OperatorFactory, Result, TaskInfo};
use sluice_state::{DEFAULT_KEY_GROUPS, StateTableKind, StateTableSpec, TableSnapshot};
use sluice_types::Watermark;

use super::spec::AggregateSpec;
use crate::time::millis;

/// Factory of session-window aggregation subtasks.
#[derive(Debug, Clone)]
pub struct SessionAggregate {
    spec: Arc<AggregateSpec>,
    /// Input columns of `window_start` and `window_end`.
    start: usize,
    end: usize,
    /// The other key columns (the session's partition).
    partition: Vec<usize>,
}

impl SessionAggregate {
    /// An aggregation by `spec.keys`, which include the `start` and `end` columns.
    pub fn new(spec: AggregateSpec, start: usize, end: usize) -> Self {
        let partition = spec
            .keys
            .iter()
            .copied()
            .filter(|k| *k != start && *k != end)
            .collect();
        SessionAggregate {
            spec: Arc::new(spec),
            start,
            end,
            partition,
        }
    }
}

struct Session {
    start: i64,
    end: i64,
    batches: Vec<RecordBatch>,
    /// Rows of the batch being processed.
    pending: Vec<u32>,
}

struct SessionTask {
    f: SessionAggregate,
    conv: Option<RowConverter>,
    /// Sessions per partition key (its row-format bytes; empty without keys).
    sessions: HashMap<Vec<u8>, Vec<Session>>,
    watermark: i64,
}

impl SessionTask {
    fn add(&mut self, batch: &RecordBatch) -> DfResult<u64> {
        let starts = millis(batch.column(self.f.start))?;
        let ends = millis(batch.column(self.f.end))?;
        let cols: Vec<ArrayRef> = self
            .f
            .partition
            .iter()
            .map(|c| batch.column(*c).clone())
            .collect();
        if self.conv.is_none() && !cols.is_empty() {
            self.conv = Some(RowConverter::new(
                cols.iter()
                    .map(|c| SortField::new(c.data_type().clone()))
                    .collect(),
            )?);
        }
        let keys = match &self.conv {
            Some(conv) => Some(conv.convert_columns(&cols)?),
            None => None,
        };
        let wm = self.watermark;
        let mut late = 0;
        let mut touched: Vec<Vec<u8>> = Vec::new();
        for (r, (s, e)) in starts.iter().zip(ends.iter()).enumerate() {
            let (Some(s), Some(e)) = (s, e) else {
                late += 1;
                continue;
            };
            let key: Vec<u8> = keys
                .as_ref()
                .map(|k| k.row(r).as_ref().to_vec())
                .unwrap_or_default();
            let list = self.sessions.entry(key.clone()).or_default();
            // Merge every session overlapping [s, e) with the row.
            let mut merged = Session {
                start: s,
                end: e,
                batches: Vec::new(),
                pending: vec![r as u32],
            };
            let mut i = 0;
            let mut overlapped = false;
            while i < list.len() {
                if list[i].start < merged.end && merged.start < list[i].end {
                    let o = list.swap_remove(i);
                    overlapped = true;
                    merged.start = merged.start.min(o.start);
                    merged.end = merged.end.max(o.end);
                    merged.batches.extend(o.batches);
                    merged.pending.extend(o.pending);
                } else {
                    i += 1;
                }
            }
            if !overlapped && e.saturating_sub(1) <= wm {
                late += 1;
                continue;
            }
            list.push(merged);
            if touched.last() != Some(&key) {
                touched.push(key);
            }
        }
        touched.sort();
        touched.dedup();
        for key in touched {
            if let Some(list) = self.sessions.get_mut(&key) {
                for s in list.iter_mut().filter(|s| !s.pending.is_empty()) {
                    let rows = UInt32Array::from(std::mem::take(&mut s.pending));
                    s.batches.push(take_record_batch(batch, &rows)?);
                }
            }
        }
        Ok(late)
    }

    /// Aggregates the sessions that ended at or before the watermark.
    fn fire(&mut self) -> DfResult<Option<RecordBatch>> {
        let wm = self.watermark;
        let mut parts: Vec<RecordBatch> = Vec::new();
        let cols = (self.f.start, self.f.end);
        for list in self.sessions.values_mut() {
            let mut i = 0;
            while i < list.len() {
                if list[i].end.saturating_sub(1) <= wm {
                    let s = list.swap_remove(i);
                    for b in s.batches {
                        parts.push(stamp(&b, cols, s.start, s.end)?);
                    }
                } else {
                    i += 1;
                }
            }
        }
        self.sessions.retain(|_, l| !l.is_empty());
        if parts.is_empty() {
            return Ok(None);
        }
        let all = concat_batches(&parts[0].schema(), &parts)?;
        let mut groups = self.f.spec.group_values()?;
        let mut accs = self.f.spec.groups_accumulators()?;
        let mut indices = Vec::new();
        groups.intern(&self.f.spec.key_columns(&all), &mut indices)?;
        let args = self.f.spec.arguments(&all)?;
        let total = groups.len();
        for (acc, (values, filter)) in accs.iter_mut().zip(&args) {
            acc.update_batch(values, &indices, filter.as_ref(), total)?;
        }
        let mut cols = groups.emit(EmitTo::All)?;
        for acc in &mut accs {
            cols.push(acc.evaluate(EmitTo::All)?);
        }
        Ok(Some(RecordBatch::try_new(
            self.f.spec.output.clone(),
            cols,
        )?))
    }
}

/// `b` with its window columns (`cols`: start, end) set to the session's bounds.
fn stamp(b: &RecordBatch, cols: (usize, usize), start: i64, end: i64) -> DfResult<RecordBatch> {
    let n = b.num_rows();
    let mut out = b.columns().to_vec();
    for (c, v) in [(cols.0, start), (cols.1, end)] {
        let arr: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![v; n]));
        out[c] = cast(&arr, b.schema().field(c).data_type())?;
    }
    Ok(RecordBatch::try_new(b.schema(), out)?)
}

impl Operator for SessionTask {
    fn process(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        ctx: &mut OperatorContext,
        _out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        let late = self.add(&batch)?;
        if late > 0 {
            JobMetrics::add(&ctx.metrics.late_rows, late);
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
        if let Some(b) = self.fire()? {
            out.push(b);
        }
        Ok(Some(watermark))
    }

    /// `session_rows`: each open session's rows, prefixed by the partition key and the
    /// session's bounds; `session_watermark`: what is late after a restore.
    fn snapshot(&mut self) -> Result<Vec<TableSnapshot>> {
        let np = self.f.partition.len();
        let mut parts: Vec<Vec<ArrayRef>> = Vec::new();
        for list in self.sessions.values() {
            for session in list {
                for b in &session.batches {
                    let n = b.num_rows();
                    let mut cols: Vec<ArrayRef> = self
                        .f
                        .partition
                        .iter()
                        .map(|c| b.column(*c).clone())
                        .collect();
                    cols.push(Arc::new(Int64Array::from(vec![session.start; n])));
                    cols.push(Arc::new(Int64Array::from(vec![session.end; n])));
                    cols.extend(b.columns().iter().cloned());
                    parts.push(cols);
                }
            }
        }
        let mut tables = Vec::new();
        if let Some(first) = parts.first() {
            let names: Vec<String> = (0..np)
                .map(|i| format!("__key{i}"))
                .chain(["__session_start".into(), "__session_end".into()])
                .chain(self.f.spec.input.fields().iter().map(|f| f.name().clone()))
                .collect();
            let mut cols = Vec::new();
            for (c, name) in (0..first.len()).zip(names) {
                let arrays: Vec<&dyn Array> = parts.iter().map(|p| p[c].as_ref()).collect();
                cols.push((name, concat(&arrays)?));
            }
            tables.push(TableSnapshot::keyed(
                "session_rows",
                cols,
                np,
                DEFAULT_KEY_GROUPS,
            )?);
        }
        tables.push(TableSnapshot::watermark(
            "session_watermark",
            self.watermark,
        )?);
        Ok(tables)
    }

    fn restore(&mut self, tables: Vec<TableSnapshot>) -> Result<()> {
        let np = self.f.partition.len();
        let mut watermark: Option<i64> = None;
        for t in tables {
            let data = t.data()?;
            match t.name.as_str() {
                "session_rows"
                    if data.num_columns() != np + 2 + self.f.spec.input.fields().len() =>
                {
                    return Err(sluice_state::Error::Mismatch(
                        "the session state has a different shape than the query".into(),
                    )
                    .into());
                }
                "session_rows" if data.num_rows() > 0 => {
                    let keys = &data.columns()[..np];
                    if self.conv.is_none() && np > 0 {
                        self.conv = Some(RowConverter::new(
                            keys.iter()
                                .map(|c| SortField::new(c.data_type().clone()))
                                .collect(),
                        )?);
                    }
                    let key_rows = match &self.conv {
                        Some(conv) => Some(conv.convert_columns(keys)?),
                        None => None,
                    };
                    let starts = millis(data.column(np))?;
                    let ends = millis(data.column(np + 1))?;
                    let rows = RecordBatch::try_new(
                        self.f.spec.input.clone(),
                        data.columns()[np + 2..].to_vec(),
                    )?;
                    let mut by_session: HashMap<(Vec<u8>, i64, i64), Vec<u32>> = HashMap::new();
                    for r in 0..data.num_rows() {
                        let key = key_rows
                            .as_ref()
                            .map(|k| k.row(r).as_ref().to_vec())
                            .unwrap_or_default();
                        by_session
                            .entry((key, starts.value(r), ends.value(r)))
                            .or_default()
                            .push(r as u32);
                    }
                    for ((key, start, end), idx) in by_session {
                        let batch = take_record_batch(&rows, &UInt32Array::from(idx))?;
                        self.sessions.entry(key).or_default().push(Session {
                            start,
                            end,
                            batches: vec![batch],
                            pending: Vec::new(),
                        });
                    }
                }
                "session_rows" => {}
                "session_watermark" => {
                    if let Some(w) = t.smallest_watermark()? {
                        watermark = Some(watermark.map_or(w, |m| m.min(w)));
                    }
                }
                other => {
                    return Err(
                        sluice_state::Error::unexpected_table("session aggregate", other).into(),
                    );
                }
            }
        }
        if let Some(w) = watermark {
            self.watermark = self.watermark.max(w);
        }
        Ok(())
    }

    fn state_tables(&self) -> Vec<StateTableSpec> {
        vec![StateTableSpec {
            name: "session_rows".into(),
            kind: StateTableKind::List,
            schema: self.f.spec.input.clone(),
            key_columns: self.f.partition.len(),
        }]
    }
}

impl OperatorFactory for SessionAggregate {
    fn name(&self) -> String {
        "SessionWindowAggregate".into()
    }

    fn describe(&self) -> String {
        self.spec.describe()
    }

    fn schema(&self) -> SchemaRef {
        self.spec.output.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(SessionTask {
            f: self.clone(),
            conv: None,
            sessions: HashMap::new(),
            watermark: i64::MIN,
        }))
    }

    fn stateless(&self) -> bool {
        false
    }
}
