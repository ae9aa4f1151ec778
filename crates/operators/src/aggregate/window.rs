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

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_plan::aggregates::group_values::GroupValues;
use sluice_runtime::{JobMetrics, Operator, OperatorContext, OperatorFactory, Result, TaskInfo};
use sluice_state::{StateTableKind, StateTableSpec};
use sluice_types::Watermark;

use super::spec::AggregateSpec;
use crate::time::millis;

/// Factory of [`WindowAggregate`] subtasks.
#[derive(Debug, Clone)]
pub struct WindowAggregate {
    spec: Arc<AggregateSpec>,
    /// Input column holding each row's window end.
    end: usize,
}

impl WindowAggregate {
    /// An aggregation by `spec.keys` (which include the window columns) whose windows
    /// end at the timestamps of input column `end`.
    pub fn new(spec: AggregateSpec, end: usize) -> Self {
        WindowAggregate {
            spec: Arc::new(spec),
            end,
        }
    }
}

struct Pane {
    groups: Box<dyn GroupValues>,
    accs: Vec<Box<dyn GroupsAccumulator>>,
}

struct WindowAggregateTask {
    spec: Arc<AggregateSpec>,
    end: usize,
    panes: BTreeMap<i64, Pane>,
    watermark: i64,
    indices: Vec<usize>,
}

fn df(e: datafusion::error::DataFusionError) -> sluice_runtime::Error {
    sluice_runtime::Error::DataFusion(e)
}

impl WindowAggregateTask {
    fn pane(&mut self, end: i64) -> DfResult<&mut Pane> {
        if !self.panes.contains_key(&end) {
            let pane = Pane {
                groups: self.spec.group_values()?,
                accs: self.spec.groups_accumulators()?,
            };
            self.panes.insert(end, pane);
        }
        Ok(self.panes.get_mut(&end).expect("inserted above"))
    }

    fn update(&mut self, end: i64, batch: &RecordBatch) -> DfResult<()> {
        let keys = self.spec.key_columns(batch);
        let args = self.spec.arguments(batch)?;
        let mut indices = std::mem::take(&mut self.indices);
        let pane = self.pane(end)?;
        pane.groups.intern(&keys, &mut indices)?;
        let total = pane.groups.len();
        for (acc, (values, filter)) in pane.accs.iter_mut().zip(&args) {
            acc.update_batch(values, &indices, filter.as_ref(), total)?;
        }
        self.indices = indices;
        Ok(())
    }

    fn fire(&mut self, mut pane: Pane) -> DfResult<RecordBatch> {
        let mut cols: Vec<ArrayRef> = pane.groups.emit(EmitTo::All)?;
        for acc in &mut pane.accs {
            cols.push(acc.evaluate(EmitTo::All)?);
        }
        Ok(RecordBatch::try_new(self.spec.output.clone(), cols)?)
    }
}

impl Operator for WindowAggregateTask {
    fn process(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        ctx: &mut OperatorContext,
        _out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        let ends = millis(batch.column(self.end)).map_err(df)?;
        let wm = self.watermark;
        // A window [start, end) fires when the watermark reaches end - 1.
        let live = |e: Option<i64>| e.is_some_and(|e| e.saturating_sub(1) > wm);
        let first = ends.iter().next().flatten();
        let uniform = ends.null_count() == 0 && ends.values().iter().all(|e| Some(*e) == first);
        if uniform {
            if let Some(end) = first {
                if live(Some(end)) {
                    self.update(end, &batch).map_err(df)?;
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
            let part =
                take_record_batch(&batch, &UInt32Array::from(rows)).map_err(|e| df(e.into()))?;
            self.update(end, &part).map_err(df)?;
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
            let pane = entry.remove();
            out.push(self.fire(pane).map_err(df)?);
        }
        Ok(Some(watermark))
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
        self.spec.output.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(WindowAggregateTask {
            spec: self.spec.clone(),
            end: self.end,
            panes: BTreeMap::new(),
            watermark: i64::MIN,
            indices: Vec::new(),
        }))
    }

    fn stateless(&self) -> bool {
        false
    }
}
