//! Evaluating physical expressions over a batch, isolating rows that fail.
//!
//! A whole-batch evaluation is tried first; if it fails (a CAST of a bad string, a
//! division by zero with ANSI semantics), the batch is evaluated row by row and each
//! failing row goes to the dead letters with the error as reason.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result as DfResult;
use sluice_runtime::{OperatorContext, Result};
use sluice_types::DeadLetter;

/// Renders one row as a JSON object, for a dead letter.
pub(crate) fn row_as_json(batch: &RecordBatch) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = LineDelimitedWriter::new(&mut buf);
    if w.write(batch).and_then(|_| w.finish()).is_err() {
        return b"<row not representable as JSON>".to_vec();
    }
    while buf.last() == Some(&b'\n') {
        buf.pop();
    }
    buf
}

/// Applies `f` to `batch`; when it fails, applies it row by row, sending failing rows to
/// the dead letters (labelled with `operator`) and returning the good rows' results.
/// Returns `None` when no row survived.
pub(crate) fn eval_isolating<F>(
    batch: &RecordBatch,
    ctx: &OperatorContext,
    f: F,
) -> Result<Option<RecordBatch>>
where
    F: Fn(&RecordBatch) -> DfResult<RecordBatch>,
{
    match f(batch) {
        Ok(out) => Ok(Some(out)),
        // Only errors caused by the data (a cast, an overflow) are a row's fault;
        // anything else is a failure of the pipeline.
        Err(e) if !is_data_error(&e) => Err(e.into()),
        Err(first) => {
            if batch.num_rows() <= 1 {
                send_dead(batch, ctx, &first.to_string());
                return Ok(None);
            }
            let mut good = Vec::new();
            for i in 0..batch.num_rows() {
                let row = batch.slice(i, 1);
                match f(&row) {
                    Ok(out) => good.push(out),
                    Err(e) => send_dead(&row, ctx, &e.to_string()),
                }
            }
            if good.is_empty() {
                return Ok(None);
            }
            let schema = good[0].schema();
            Ok(Some(concat_batches(&schema, &good)?))
        }
    }
}

fn is_data_error(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::error::DataFusionError as E;
    match e {
        E::ArrowError(..) | E::Execution(_) => true,
        E::Context(_, inner) => is_data_error(inner),
        _ => false,
    }
}

fn send_dead(row: &RecordBatch, ctx: &OperatorContext, reason: &str) {
    let reason = reason
        .strip_prefix("Arrow error: ")
        .or_else(|| reason.strip_prefix("Execution error: "))
        .unwrap_or(reason);
    ctx.dead_letters.send(DeadLetter::new(
        ctx.task.job.clone(),
        ctx.task.operator.clone(),
        0,
        format!("evaluating the query failed for this row: {reason}"),
        &row_as_json(row),
    ));
}

/// Evaluates one expression to an array of the batch's length.
pub(crate) fn eval_to_array(
    expr: &Arc<dyn datafusion::physical_plan::PhysicalExpr>,
    batch: &RecordBatch,
) -> DfResult<ArrayRef> {
    let v = expr.evaluate(batch)?;
    let a = v.into_array(batch.num_rows())?;
    debug_assert_eq!(a.len(), batch.num_rows());
    Ok(a)
}
