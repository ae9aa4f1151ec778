//! Flink's `IF(cond, a, b)`: `a` when `cond` is TRUE, else `b` (also when
//! `cond` is NULL). `a` and `b` are coerced to a common type.
//!
//! The optimizer rewrites the call into `CASE WHEN cond THEN a ELSE b END`,
//! so only the chosen branch is evaluated; the vectorized `zip` evaluation
//! below is used when a plan is executed without that rewrite.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, BooleanArray};
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::binary::type_union_resolution;
use datafusion::logical_expr::simplify::ExprSimplifyResult;
use datafusion::logical_expr::{Case, ColumnarValue, Expr, ScalarFunctionArgs};

use super::args::{check_arity, finish, output_rows};
use super::udf::{FlinkUdf, FnState};

/// `IF(cond, a, b)`.
pub(crate) fn if_fn() -> FlinkUdf {
    FlinkUdf::new(
        "if",
        coerce_if,
        |t| Ok(t.get(1).cloned().unwrap_or(DataType::Null)),
        invoke_if,
    )
    .with_simplify(simplify_if)
}

fn coerce_if(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("IF", t.len(), 3, 3)?;
    if !matches!(t[0], DataType::Boolean | DataType::Null) {
        return plan_err!("IF: the condition must be BOOLEAN, got {}", t[0]);
    }
    match type_union_resolution(&t[1..]) {
        Some(common) => Ok(vec![DataType::Boolean, common.clone(), common]),
        None => plan_err!(
            "IF: branches of types {} and {} have no common type",
            t[1],
            t[2]
        ),
    }
}

fn simplify_if(args: Vec<Expr>) -> Result<ExprSimplifyResult> {
    let Ok([cond, then, other]) = <[Expr; 3]>::try_from(args) else {
        return plan_err!("IF takes 3 arguments");
    };
    let case = Case::new(
        None,
        vec![(Box::new(cond), Box::new(then))],
        Some(Box::new(other)),
    );
    Ok(ExprSimplifyResult::Simplified(Expr::Case(case)))
}

fn invoke_if(_: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let cond = args.args[0].to_array(rows)?;
    let cond = cond
        .as_boolean_opt()
        .cloned()
        .unwrap_or_else(|| BooleanArray::new_null(rows));
    let (a, b) = (args.args[1].to_array(rows)?, args.args[2].to_array(rows)?);
    finish(Arc::new(zip(&cond, &a, &b)?), scalar)
}
