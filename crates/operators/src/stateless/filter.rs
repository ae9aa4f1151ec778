//! Filter: keeps the rows for which a predicate is true.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::DataFusionError;
use datafusion::physical_plan::PhysicalExpr;
use sluice_runtime::{Operator, OperatorContext, OperatorFactory, Result, TaskInfo};

use super::eval::{eval_isolating, eval_to_array};

/// Keeps rows where `predicate` is true (NULL counts as false, as in SQL).
#[derive(Debug, Clone)]
pub struct Filter {
    predicate: Arc<dyn PhysicalExpr>,
    schema: SchemaRef,
}

impl Filter {
    /// A filter over batches of `schema`.
    pub fn new(predicate: Arc<dyn PhysicalExpr>, schema: SchemaRef) -> Self {
        Filter { predicate, schema }
    }

    fn apply(&self, batch: &RecordBatch) -> datafusion::error::Result<RecordBatch> {
        let mask = eval_to_array(&self.predicate, batch)?;
        let Some(mask) = mask.as_boolean_opt() else {
            return Err(DataFusionError::Internal(format!(
                "filter predicate returned {} instead of BOOLEAN",
                mask.data_type()
            )));
        };
        Ok(filter_record_batch(batch, mask)?)
    }
}

impl Operator for Filter {
    fn process(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        if let Some(b) = eval_isolating(&batch, ctx, |b| self.apply(b))?
            && b.num_rows() > 0
        {
            out.push(b);
        }
        Ok(())
    }
}

impl OperatorFactory for Filter {
    fn name(&self) -> String {
        "Filter".into()
    }

    fn describe(&self) -> String {
        format!("where=[{}]", self.predicate)
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(self.clone()))
    }
}
