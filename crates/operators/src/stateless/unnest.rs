//! Unnest: one output row per element of a list column (the other columns repeated);
//! a NULL or empty list gives no row. `HOP` and `CUMULATE` windows use it to put a
//! row into each of its windows.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use sluice_runtime::{Operator, OperatorContext, OperatorFactory, Result, TaskInfo};

/// Factory of unnest operators.
#[derive(Debug, Clone)]
pub struct Unnest {
    column: usize,
    schema: SchemaRef,
}

impl Unnest {
    /// Unnests list column `column`; `schema` is the output (that column's type is
    /// the list's element type).
    pub fn new(column: usize, schema: SchemaRef) -> Self {
        Unnest { column, schema }
    }

    fn apply(&self, batch: &RecordBatch) -> datafusion::error::Result<RecordBatch> {
        let col = batch.column(self.column);
        let (values, offsets): (ArrayRef, Vec<usize>) = match col.data_type() {
            DataType::List(_) => {
                let l = col.as_list::<i32>();
                (
                    l.values().clone(),
                    l.value_offsets().iter().map(|o| *o as usize).collect(),
                )
            }
            DataType::LargeList(_) => {
                let l = col.as_list::<i64>();
                (
                    l.values().clone(),
                    l.value_offsets().iter().map(|o| *o as usize).collect(),
                )
            }
            other => {
                return Err(datafusion::error::DataFusionError::Internal(format!(
                    "unnest of a {other} column"
                )));
            }
        };
        let mut repeat = Vec::new();
        let mut elements = Vec::new();
        for row in 0..batch.num_rows() {
            if col.is_null(row) {
                continue;
            }
            for e in offsets[row]..offsets[row + 1] {
                repeat.push(row as u32);
                elements.push(e as u32);
            }
        }
        let repeat = UInt32Array::from(repeat);
        let elements = UInt32Array::from(elements);
        let cols = batch
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == self.column {
                    take(values.as_ref(), &elements, None)
                } else {
                    take(c.as_ref(), &repeat, None)
                }
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), cols)?)
    }
}

impl Operator for Unnest {
    fn process(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        _ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        out.push(self.apply(&batch)?);
        Ok(())
    }
}

impl OperatorFactory for Unnest {
    fn name(&self) -> String {
        "Unnest".into()
    }

    fn describe(&self) -> String {
        format!("column={}", self.schema.field(self.column).name())
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(self.clone()))
    }
}
