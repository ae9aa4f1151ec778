//! `agg(x) OVER (PARTITION BY k ORDER BY ts ROWS|RANGE BETWEEN … PRECEDING AND CURRENT
//! ROW)` on event time: rows wait until the watermark passes their time, then each
//! partition's rows are taken in time order and every row is emitted once, with the
//! aggregate over its frame (append-only output). Rows at or behind the watermark when
//! they arrive are late: dropped and counted. Bounded frames use DataFusion's sliding
//! accumulators (rows leave the frame by retraction); state per key: the rows in its
//! frame and the accumulators.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::{
    cast, concat, concat_batches, filter_record_batch, take_record_batch,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::PhysicalExpr;
use sluice_runtime::{JobMetrics, Operator, OperatorContext, OperatorFactory, Result, TaskInfo};
use sluice_state::{DEFAULT_KEY_GROUPS, StateTableKind, StateTableSpec, TableSnapshot};
use sluice_types::Watermark;

use crate::time::millis;

/// The frame of an `OVER` window (always ending at the current row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverFrame {
    /// `ROWS BETWEEN n PRECEDING` (`None`: UNBOUNDED).
    Rows(Option<u64>),
    /// `RANGE BETWEEN interval PRECEDING` in ms (`None`: UNBOUNDED); rows with the same
    /// time (peers) share one result.
    Range(Option<i64>),
}

/// Factory of `OVER` aggregation subtasks.
#[derive(Debug, Clone)]
pub struct OverAggregate {
    /// Partition key columns of the input.
    keys: Vec<usize>,
    /// The time column of the input (`ORDER BY`).
    time: usize,
    aggs: Vec<Arc<AggregateFunctionExpr>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    frame: OverFrame,
    /// Input columns passed through (a prefix of the input).
    width: usize,
    output: SchemaRef,
}

impl OverAggregate {
    /// See the field docs.
    pub fn new(
        keys: Vec<usize>,
        time: usize,
        aggs: Vec<Arc<AggregateFunctionExpr>>,
        filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
        frame: OverFrame,
        width: usize,
        output: SchemaRef,
    ) -> Self {
        OverAggregate {
            keys,
            time,
            aggs,
            filters,
            frame,
            width,
            output,
        }
    }

    fn bounded(&self) -> bool {
        matches!(
            self.frame,
            OverFrame::Rows(Some(_)) | OverFrame::Range(Some(_))
        )
    }
}

/// One row in a frame: its time, each function's argument slices and filter flag.
struct FrameRow {
    ts: i64,
    args: Vec<(Vec<ArrayRef>, bool)>,
}

struct KeyState {
    accs: Vec<Box<dyn Accumulator>>,
    frame: VecDeque<FrameRow>,
}

struct OverTask {
    f: OverAggregate,
    conv: Option<RowConverter>,
    pending: Vec<RecordBatch>,
    keys: HashMap<Vec<u8>, KeyState>,
    watermark: i64,
}

impl OverTask {
    fn accumulators(&self) -> DfResult<Vec<Box<dyn Accumulator>>> {
        self.f
            .aggs
            .iter()
            .map(|a| {
                if self.f.bounded() {
                    a.create_sliding_accumulator()
                } else {
                    a.create_accumulator()
                }
            })
            .collect()
    }

    /// Emits every pending row at or before the watermark, in time order per key.
    fn release(&mut self) -> DfResult<Option<RecordBatch>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let all = concat_batches(&self.pending[0].schema(), &self.pending)?;
        self.pending.clear();
        let ts = millis(all.column(self.f.time))?;
        let wm = self.watermark;
        let ready_mask: BooleanArray = ts
            .iter()
            .map(|t| Some(t.is_some_and(|t| t <= wm)))
            .collect();
        let not_ready: BooleanArray = ready_mask.iter().map(|v| v.map(|b| !b)).collect();
        let rest = filter_record_batch(&all, &not_ready)?;
        if rest.num_rows() > 0 {
            self.pending.push(rest);
        }
        let ready = filter_record_batch(&all, &ready_mask)?;
        if ready.num_rows() == 0 {
            return Ok(None);
        }
        let n = ready.num_rows();
        let ts = millis(ready.column(self.f.time))?;
        let key_cols: Vec<ArrayRef> = self
            .f
            .keys
            .iter()
            .map(|k| ready.column(*k).clone())
            .collect();
        if self.conv.is_none() && !key_cols.is_empty() {
            self.conv = Some(RowConverter::new(
                key_cols
                    .iter()
                    .map(|c| SortField::new(c.data_type().clone()))
                    .collect(),
            )?);
        }
        let key_rows = match &self.conv {
            Some(c) => Some(c.convert_columns(&key_cols)?),
            None => None,
        };
        let row_keys: Vec<Vec<u8>> = (0..n)
            .map(|r| {
                key_rows
                    .as_ref()
                    .map(|k| k.row(r).as_ref().to_vec())
                    .unwrap_or_default()
            })
            .collect();
        let key_of = |r: usize| -> &Vec<u8> { &row_keys[r] };
        // Time order within each key (stable: arrival order among equal times).
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|a, b| {
            key_of(*a)
                .cmp(key_of(*b))
                .then(ts.value(*a).cmp(&ts.value(*b)))
        });
        let args: Vec<Vec<ArrayRef>> = self
            .f
            .aggs
            .iter()
            .map(|a| {
                a.expressions()
                    .iter()
                    .map(|e| e.evaluate(&ready)?.into_array(n))
                    .collect::<DfResult<Vec<_>>>()
            })
            .collect::<DfResult<_>>()?;
        let filters: Vec<Option<BooleanArray>> = self
            .f
            .filters
            .iter()
            .map(|f| match f {
                Some(f) => {
                    let v = f.evaluate(&ready)?.into_array(n)?;
                    Ok(v.as_any().downcast_ref::<BooleanArray>().cloned())
                }
                None => Ok(None),
            })
            .collect::<DfResult<_>>()?;
        let mut results: Vec<Vec<ScalarValue>> = vec![Vec::with_capacity(n); self.f.aggs.len()];
        let mut i = 0;
        while i < n {
            // A group of peers: same key and, for RANGE frames, the same time.
            let r0 = order[i];
            let key = key_of(r0).clone();
            let mut j = i + 1;
            if matches!(self.f.frame, OverFrame::Range(_)) {
                while j < n && *key_of(order[j]) == key && ts.value(order[j]) == ts.value(r0) {
                    j += 1;
                }
            }
            if !self.keys.contains_key(&key) {
                let accs = self.accumulators()?;
                self.keys.insert(
                    key.clone(),
                    KeyState {
                        accs,
                        frame: VecDeque::new(),
                    },
                );
            }
            let frame = self.f.frame;
            let state = self.keys.get_mut(&key).expect("inserted above");
            for &r in &order[i..j] {
                let mut row_args = Vec::with_capacity(args.len());
                for (k, acc) in state.accs.iter_mut().enumerate() {
                    let pass = filters[k]
                        .as_ref()
                        .is_none_or(|f| f.is_valid(r) && f.value(r));
                    let slices: Vec<ArrayRef> = args[k].iter().map(|a| a.slice(r, 1)).collect();
                    if pass {
                        acc.update_batch(&slices)?;
                    }
                    row_args.push((slices, pass));
                }
                if !matches!(frame, OverFrame::Rows(None) | OverFrame::Range(None)) {
                    state.frame.push_back(FrameRow {
                        ts: ts.value(r),
                        args: row_args,
                    });
                }
            }
            // Rows that left the frame.
            let now = ts.value(r0);
            loop {
                let leave = match (frame, state.frame.front()) {
                    (OverFrame::Rows(Some(p)), Some(_)) => state.frame.len() as u64 > p + 1,
                    (OverFrame::Range(Some(p)), Some(front)) => front.ts < now.saturating_sub(p),
                    _ => false,
                };
                if !leave {
                    break;
                }
                if let Some(old) = state.frame.pop_front() {
                    for (acc, (slices, pass)) in state.accs.iter_mut().zip(old.args) {
                        if pass {
                            acc.retract_batch(&slices)?;
                        }
                    }
                }
            }
            let values = state
                .accs
                .iter_mut()
                .map(|a| a.evaluate())
                .collect::<DfResult<Vec<_>>>()?;
            for _ in i..j {
                for (k, v) in values.iter().enumerate() {
                    results[k].push(v.clone());
                }
            }
            i = j;
        }
        let idx = UInt32Array::from(order.iter().map(|r| *r as u32).collect::<Vec<_>>());
        let sorted = take_record_batch(&ready, &idx)?;
        let mut cols: Vec<ArrayRef> = sorted.columns()[..self.f.width].to_vec();
        for (k, vals) in results.into_iter().enumerate() {
            let field = self.f.output.field(self.f.width + k);
            let arr = ScalarValue::iter_to_array(vals)?;
            cols.push(if arr.data_type() == field.data_type() {
                arr
            } else {
                cast(&arr, field.data_type())?
            });
        }
        Ok(Some(RecordBatch::try_new(self.f.output.clone(), cols)?))
    }
}

impl Operator for OverTask {
    fn process(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        ctx: &mut OperatorContext,
        _out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        let ts = millis(batch.column(self.f.time))?;
        let wm = self.watermark;
        let keep: BooleanArray = ts.iter().map(|t| Some(t.is_some_and(|t| t > wm))).collect();
        let late = batch.num_rows() - keep.true_count();
        if late > 0 {
            JobMetrics::add(&ctx.metrics.late_rows, late as u64);
            let kept = filter_record_batch(&batch, &keep)?;
            if kept.num_rows() > 0 {
                self.pending.push(kept);
            }
        } else {
            self.pending.push(batch);
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
        if let Some(b) = self.release()? {
            out.push(b);
        }
        Ok(Some(watermark))
    }

    /// `over_frame` (bounded frames: the rows in each key's frame, from which the
    /// accumulators are rebuilt) or `over_acc` (unbounded: each key's accumulator
    /// state); `over_pending`: rows waiting for the watermark; `over_watermark`.
    fn snapshot(&mut self) -> Result<Vec<TableSnapshot>> {
        let nk = self.f.keys.len();
        let key_cols =
            |keys: &[&Vec<u8>], conv: &Option<RowConverter>| -> DfResult<Vec<(String, ArrayRef)>> {
                Ok(match conv {
                    Some(c) => {
                        let parser = c.parser();
                        c.convert_rows(keys.iter().map(|k| parser.parse(k)))?
                            .into_iter()
                            .enumerate()
                            .map(|(i, a)| (format!("__key{i}"), a))
                            .collect()
                    }
                    None => Vec::new(),
                })
            };
        let mut tables = Vec::new();
        if self.f.bounded() {
            let rows: Vec<(&Vec<u8>, &FrameRow)> = self
                .keys
                .iter()
                .flat_map(|(k, st)| st.frame.iter().map(move |r| (k, r)))
                .collect();
            if !rows.is_empty() {
                let keys: Vec<&Vec<u8>> = rows.iter().map(|r| r.0).collect();
                let mut cols = key_cols(&keys, &self.conv)?;
                cols.push((
                    "__ts".into(),
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1.ts))),
                ));
                for k in 0..self.f.aggs.len() {
                    cols.push((
                        format!("__pass{k}"),
                        Arc::new(BooleanArray::from_iter(
                            rows.iter().map(|r| Some(r.1.args[k].1)),
                        )),
                    ));
                    let nargs = rows[0].1.args[k].0.len();
                    for j in 0..nargs {
                        let parts: Vec<&dyn Array> =
                            rows.iter().map(|r| r.1.args[k].0[j].as_ref()).collect();
                        cols.push((format!("__arg{k}_{j}"), concat(&parts)?));
                    }
                }
                tables.push(TableSnapshot::keyed(
                    "over_frame",
                    cols,
                    nk,
                    DEFAULT_KEY_GROUPS,
                )?);
            }
        } else if !self.keys.is_empty() {
            let mut keys: Vec<&Vec<u8>> = Vec::new();
            let mut states: Vec<Vec<ScalarValue>> = Vec::new();
            let fresh_accs = |f: &OverAggregate| -> DfResult<Vec<Box<dyn Accumulator>>> {
                f.aggs.iter().map(|a| a.create_accumulator()).collect()
            };
            for (k, st) in self.keys.iter_mut() {
                let row = crate::aggregate::read_states(&mut st.accs, fresh_accs(&self.f)?)?;
                keys.push(k);
                states.push(row);
            }
            let mut cols = key_cols(&keys, &self.conv)?;
            for c in 0..states.first().map_or(0, Vec::len) {
                cols.push((
                    format!("__state{c}"),
                    ScalarValue::iter_to_array(states.iter().map(|r| r[c].clone()))?,
                ));
            }
            tables.push(TableSnapshot::keyed(
                "over_acc",
                cols,
                nk,
                DEFAULT_KEY_GROUPS,
            )?);
        }
        tables.extend(TableSnapshot::keyed_rows(
            "over_pending",
            &self.pending,
            &self.f.keys,
            DEFAULT_KEY_GROUPS,
        )?);
        tables.push(TableSnapshot::watermark("over_watermark", self.watermark)?);
        Ok(tables)
    }

    fn restore(&mut self, tables: Vec<TableSnapshot>) -> Result<()> {
        let nk = self.f.keys.len();
        let mut watermark: Option<i64> = None;
        for t in tables {
            let data = t.data()?;
            if data.num_rows() == 0 {
                continue;
            }
            let key_bytes = |this: &mut OverTask| -> DfResult<Vec<Vec<u8>>> {
                let keys = &data.columns()[..nk];
                if this.conv.is_none() && nk > 0 {
                    this.conv = Some(RowConverter::new(
                        keys.iter()
                            .map(|c| SortField::new(c.data_type().clone()))
                            .collect(),
                    )?);
                }
                Ok(match &this.conv {
                    Some(c) => {
                        let rows = c.convert_columns(keys)?;
                        rows.iter().map(|r| r.as_ref().to_vec()).collect()
                    }
                    None => vec![Vec::new(); data.num_rows()],
                })
            };
            let frame_width: usize = nk
                + 1
                + self
                    .f
                    .aggs
                    .iter()
                    .map(|a| 1 + a.expressions().len())
                    .sum::<usize>();
            let acc_width = nk
                + self
                    .f
                    .aggs
                    .iter()
                    .map(|a| Ok(a.state_fields()?.len()))
                    .collect::<DfResult<Vec<usize>>>()?
                    .iter()
                    .sum::<usize>();
            let fits = match t.name.as_str() {
                "over_frame" => data.num_columns() == frame_width,
                "over_acc" => data.num_columns() == acc_width,
                "over_pending" => data.num_columns() >= nk + self.f.width,
                _ => true,
            };
            if !fits {
                return Err(sluice_state::Error::Mismatch(format!(
                    "the OVER state '{}' has a different shape than the query",
                    t.name
                ))
                .into());
            }
            match t.name.as_str() {
                "over_frame" => {
                    let keys = key_bytes(self)?;
                    let ts = millis(data.column(nk))?;
                    for (r, key) in keys.into_iter().enumerate() {
                        if !self.keys.contains_key(&key) {
                            let accs = self.accumulators()?;
                            self.keys.insert(
                                key.clone(),
                                KeyState {
                                    accs,
                                    frame: VecDeque::new(),
                                },
                            );
                        }
                        let mut at = nk + 1;
                        let mut args = Vec::new();
                        for a in &self.f.aggs {
                            let pass = data
                                .column(at)
                                .as_any()
                                .downcast_ref::<BooleanArray>()
                                .is_some_and(|b| b.value(r));
                            let n = a.expressions().len();
                            let slices: Vec<ArrayRef> = data.columns()[at + 1..at + 1 + n]
                                .iter()
                                .map(|c| c.slice(r, 1))
                                .collect();
                            args.push((slices, pass));
                            at += 1 + n;
                        }
                        let state = self.keys.get_mut(&key).expect("inserted above");
                        for (acc, (slices, pass)) in state.accs.iter_mut().zip(&args) {
                            if *pass {
                                acc.update_batch(slices)?;
                            }
                        }
                        state.frame.push_back(FrameRow {
                            ts: ts.value(r),
                            args,
                        });
                    }
                }
                "over_acc" => {
                    let keys = key_bytes(self)?;
                    let widths = self
                        .f
                        .aggs
                        .iter()
                        .map(|a| Ok(a.state_fields()?.len()))
                        .collect::<DfResult<Vec<usize>>>()?;
                    for (r, key) in keys.into_iter().enumerate() {
                        let mut accs = self.accumulators()?;
                        let mut at = nk;
                        for (acc, w) in accs.iter_mut().zip(&widths) {
                            let arrays: Vec<ArrayRef> = data.columns()[at..at + w]
                                .iter()
                                .map(|c| c.slice(r, 1))
                                .collect();
                            acc.merge_batch(&arrays)?;
                            at += w;
                        }
                        self.keys.insert(
                            key,
                            KeyState {
                                accs,
                                frame: VecDeque::new(),
                            },
                        );
                    }
                }
                "over_pending" => {
                    let cols: Vec<usize> = (nk..data.num_columns()).collect();
                    self.pending.push(data.project(&cols)?);
                }
                "over_watermark" => {
                    if let Some(w) = t.smallest_watermark()? {
                        watermark = Some(watermark.map_or(w, |m| m.min(w)));
                    }
                }
                other => {
                    return Err(
                        sluice_state::Error::unexpected_table("OVER aggregate", other).into(),
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
            name: if self.f.bounded() {
                "over_frame".into()
            } else {
                "over_acc".into()
            },
            kind: StateTableKind::List,
            schema: self.f.output.clone(),
            key_columns: self.f.keys.len(),
        }]
    }
}

impl OperatorFactory for OverAggregate {
    fn name(&self) -> String {
        "OverAggregate".into()
    }

    fn describe(&self) -> String {
        let aggs: Vec<&str> = self.aggs.iter().map(|a| a.name()).collect();
        format!("frame={:?}, select=[{}]", self.frame, aggs.join(", "))
    }

    fn schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(OverTask {
            f: self.clone(),
            conv: None,
            pending: Vec::new(),
            keys: HashMap::new(),
            watermark: i64::MIN,
        }))
    }

    fn stateless(&self) -> bool {
        false
    }
}
