//! The watermark assigner: follows a source (in the same task) and turns the
//! table's `WATERMARK FOR col AS expr` into watermarks. Per source subtask, the
//! watermark is the largest value of `expr` seen so far; it only moves forward and is
//! sent after the batch that moved it. Upstream watermarks are ignored except the
//! final one (+∞ at the end of a bounded input).

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::PhysicalExpr;
use sluice_runtime::{Operator, OperatorContext, OperatorFactory, Result, TaskInfo};
use sluice_state::{StateTableKind, StateTableSpec};
use sluice_types::Watermark;

use crate::time::{max_millis, millis};

/// Factory of watermark assigners.
#[derive(Debug, Clone)]
pub struct WatermarkAssigner {
    expr: Arc<dyn PhysicalExpr>,
    schema: SchemaRef,
    idle_timeout: Option<Duration>,
    description: String,
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
        }
    }
}

struct AssignerTask {
    expr: Arc<dyn PhysicalExpr>,
    idle_timeout: Option<Duration>,
    current: i64,
    pending: bool,
}

impl Operator for AssignerTask {
    fn process(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        _ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        // A row whose watermark expression fails or is NULL does not move time.
        if let Ok(v) = self.expr.evaluate(&batch)
            && let Ok(arr) = v.into_array(batch.num_rows())
            && let Ok(ms) = millis(&arr)
            && let Some(max) = max_millis(&ms)
            && max > self.current
        {
            self.current = max;
            self.pending = true;
        }
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
        match self.idle_timeout {
            Some(t) => format!("{}, idle-timeout={t:?}", self.description),
            None => self.description.clone(),
        }
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(AssignerTask {
            expr: self.expr.clone(),
            idle_timeout: self.idle_timeout,
            current: i64::MIN,
            pending: false,
        }))
    }

    fn stateless(&self) -> bool {
        false
    }
}
