//! Projection: computes the output columns from physical expressions.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::physical_plan::PhysicalExpr;
use sluice_runtime::{Operator, OperatorContext, OperatorFactory, Result, TaskInfo};

use super::eval::{eval_isolating, eval_to_array};

/// Computes `exprs` over each input batch, producing `schema`.
#[derive(Debug, Clone)]
pub struct Projection {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

impl Projection {
    /// A projection producing `schema` (one field per expression).
    pub fn new(exprs: Vec<Arc<dyn PhysicalExpr>>, schema: SchemaRef) -> Self {
        Projection { exprs, schema }
    }

    fn apply(&self, batch: &RecordBatch) -> datafusion::error::Result<RecordBatch> {
        let cols = self
            .exprs
            .iter()
            .map(|e| eval_to_array(e, batch))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            cols,
            &options,
        )?)
    }
}

impl Operator for Projection {
    fn process(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        if let Some(b) = eval_isolating(&batch, ctx, |b| self.apply(b))? {
            out.push(b);
        }
        Ok(())
    }
}

impl OperatorFactory for Projection {
    fn name(&self) -> String {
        "Calc".into()
    }

    fn describe(&self) -> String {
        let cols: Vec<String> = self
            .exprs
            .iter()
            .zip(self.schema.fields())
            .map(|(e, f)| {
                let text = e.to_string();
                if text.split('@').next() == Some(f.name().as_str()) {
                    f.name().clone()
                } else {
                    format!("{text} AS {}", f.name())
                }
            })
            .collect();
        format!("select=[{}]", cols.join(", "))
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(self.clone()))
    }
}
