//! The watermark assigner: follows a source (in the same task) and turns the
//! table's `WATERMARK FOR col AS expr` into watermarks. Per source subtask, the
//! watermark is the largest value of `expr` seen so far; it only moves forward and is
//! sent after the batch that moved it. With a source that reports the split of each
//! batch (Kafka partitions), the largest value is kept per split and the watermark is
//! the smallest of them (per-partition watermarks). Upstream watermarks are ignored
//! except the final one (+∞ at the end of a bounded input).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::PhysicalExpr;
use sluice_runtime::{Operator, OperatorContext, OperatorFactory, Result, TaskInfo};
use sluice_state::{StateTableKind, StateTableSpec, TableSnapshot};
use sluice_types::Watermark;

use crate::time::{max_millis, millis};

/// What an assigner does with late rows: rows whose event time is at or below the
/// watermark this source split had already sent when they were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateRows {
    /// Pass every row (windows downstream drop what is late for them).
    Pass,
    /// Drop late rows here (a side output takes them).
    Drop,
    /// Keep only the late rows (the side output branch).
    Only,
}

/// Factory of watermark assigners.
#[derive(Debug, Clone)]
pub struct WatermarkAssigner {
    expr: Arc<dyn PhysicalExpr>,
    schema: SchemaRef,
    idle_timeout: Option<Duration>,
    description: String,
    /// The event-time column (for late-row decisions).
    rowtime: Option<Arc<dyn PhysicalExpr>>,
    late: LateRows,
    /// Subtracted from the largest value of `expr` (`ts - INTERVAL …` computed once per
    /// batch instead of per row).
    delay: i64,
}

impl WatermarkAssigner {
    /// An assigner computing `expr` (a timestamp) over batches of `schema`;
    /// `description` is the watermark as the user wrote it.
    pub fn new(
        expr: Arc<dyn PhysicalExpr>,
        schema: SchemaRef,
        idle_timeout: Option<Duration>,
        description: String,
    ) -> Self {
        WatermarkAssigner {
            expr,
            schema,
            idle_timeout,
            description,
            rowtime: None,
            late: LateRows::Pass,
            delay: 0,
        }
    }

    /// The watermark is the largest `expr` minus `delay_ms`.
    pub fn with_delay(mut self, delay_ms: i64) -> Self {
        self.delay = delay_ms;
        self
    }

    /// The same assigner, deciding lateness on `rowtime` and handling late rows as `late`.
    pub fn with_late_rows(mut self, rowtime: Arc<dyn PhysicalExpr>, late: LateRows) -> Self {
        self.rowtime = Some(rowtime);
        self.late = late;
        self
    }
}

struct AssignerTask {
    expr: Arc<dyn PhysicalExpr>,
    delay: i64,
    rowtime: Option<Arc<dyn PhysicalExpr>>,
    late: LateRows,
    idle_timeout: Option<Duration>,
    current: i64,
    pending: bool,
    subtask: usize,
    parallelism: usize,
    /// With a source that reports splits: the largest event time (before the delay)
    /// each split has shown, and when it last had data.
    splits: HashMap<u32, (i64, Instant)>,
    started: Instant,
}

impl AssignerTask {
    /// The event time every split this subtask reads has reached: the smallest of the
    /// splits' largest, leaving out splits idle for longer than the idle timeout. While
    /// some split has not shown any data, none (unless the idle timeout has passed
    /// since the start), so a slow partition's rows are not made late by a fast one.
    fn splits_time(&self, owned: u32) -> Option<i64> {
        let idle = |last: &Instant| self.idle_timeout.is_some_and(|t| last.elapsed() >= t);
        if (self.splits.len() as u32) < owned && !idle(&self.started) {
            return None;
        }
        self.splits
            .values()
            .filter(|(_, last)| !idle(last))
            .map(|(t, _)| *t)
            .min()
            .or_else(|| self.splits.values().map(|(t, _)| *t).max())
    }
}

impl Operator for AssignerTask {
    fn process(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        // Late rows are judged against the watermark sent before this batch.
        let mask: Option<BooleanArray> = match (&self.rowtime, self.late) {
            (Some(rowtime), LateRows::Drop | LateRows::Only) => {
                let t = millis(&rowtime.evaluate(&batch)?.into_array(batch.num_rows())?)?;
                let wm = self.current;
                let keep_late = self.late == LateRows::Only;
                Some(
                    t.iter()
                        .map(|v| Some(v.is_some_and(|v| v <= wm) == keep_late))
                        .collect(),
                )
            }
            _ => None,
        };
        // A row whose watermark expression fails or is NULL does not move time.
        let batch_max = self
            .expr
            .evaluate(&batch)
            .ok()
            .and_then(|v| v.into_array(batch.num_rows()).ok())
            .and_then(|arr| millis(&arr).ok())
            .and_then(|ms| max_millis(&ms));
        let reached = match ctx.split {
            Some(split) => {
                let e = self
                    .splits
                    .entry(split.split)
                    .or_insert((i64::MIN, Instant::now()));
                e.1 = Instant::now();
                if let Some(m) = batch_max {
                    e.0 = e.0.max(m);
                }
                self.splits_time(split.owned)
            }
            None => batch_max,
        };
        if let Some(max) = reached.map(|m| m.saturating_sub(self.delay))
            && max > self.current
        {
            self.current = max;
            self.pending = true;
        }
        let batch = match mask {
            Some(m) => filter_record_batch(&batch, &m)?,
            None => batch,
        };
        out.push(batch);
        Ok(())
    }

    fn take_watermark(&mut self) -> Option<Watermark> {
        std::mem::take(&mut self.pending).then_some(Watermark(self.current))
    }

    fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        _ctx: &mut OperatorContext,
        _out: &mut Vec<RecordBatch>,
    ) -> Result<Option<Watermark>> {
        Ok((watermark == Watermark::MAX).then_some(watermark))
    }

    /// The watermark of this subtask's source splits, with the subtask it belongs to.
    fn snapshot(&mut self) -> Result<Vec<TableSnapshot>> {
        let int = |v: i64| -> ArrayRef { Arc::new(Int64Array::from(vec![v])) };
        Ok(vec![TableSnapshot::global(
            "watermark",
            vec![
                ("watermark".into(), int(self.current)),
                ("subtask".into(), int(self.subtask as i64)),
                ("parallelism".into(), int(self.parallelism as i64)),
            ],
        )?])
    }

    /// The smallest watermark of all earlier subtasks: sources deal their splits out
    /// anew on restore (even at the same parallelism), so a subtask may go on with a
    /// split another subtask was reading, and only the smallest is safe for every
    /// split. (Operators downstream keep their own watermarks, so nothing fires twice.)
    fn restore(&mut self, tables: Vec<TableSnapshot>) -> Result<()> {
        let mut smallest: Option<i64> = None;
        for t in tables.iter().filter(|t| t.name == "watermark") {
            let data = t.data()?;
            if data.num_columns() != 3 {
                return Err(sluice_state::Error::Mismatch(
                    "the watermark state has a different shape".into(),
                )
                .into());
            }
            let ms = millis(data.column(0))?;
            for r in 0..data.num_rows() {
                if !ms.is_null(r) {
                    let v = ms.value(r);
                    smallest = Some(smallest.map_or(v, |m| m.min(v)));
                }
            }
        }
        if let Some(w) = smallest {
            self.current = w;
            self.pending = w > i64::MIN;
        }
        Ok(())
    }

    fn state_tables(&self) -> Vec<StateTableSpec> {
        vec![StateTableSpec {
            name: "watermark".into(),
            kind: StateTableKind::Global,
            schema: Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
                datafusion::arrow::datatypes::Field::new(
                    "watermark",
                    datafusion::arrow::datatypes::DataType::Int64,
                    false,
                ),
            ])),
            key_columns: 0,
        }]
    }
}

impl OperatorFactory for WatermarkAssigner {
    fn name(&self) -> String {
        "WatermarkAssigner".into()
    }

    fn describe(&self) -> String {
        let mut d = self.description.clone();
        if let Some(t) = self.idle_timeout {
            d.push_str(&format!(", idle-timeout={t:?}"));
        }
        match self.late {
            LateRows::Pass => {}
            LateRows::Drop => d.push_str(", late rows to the side output"),
            LateRows::Only => d.push_str(", only late rows (side output)"),
        }
        d
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn create(&self, task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(AssignerTask {
            subtask: task.subtask,
            parallelism: task.parallelism,
            expr: self.expr.clone(),
            delay: self.delay,
            rowtime: self.rowtime.clone(),
            late: self.late,
            idle_timeout: self.idle_timeout,
            current: i64::MIN,
            pending: false,
            splits: HashMap::new(),
            started: Instant::now(),
        }))
    }

    fn stateless(&self) -> bool {
        false
    }
}
