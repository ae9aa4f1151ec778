//! Planner-level redirection: SQL syntax that DataFusion's built-in expression
//! planners turn into calls of DataFusion functions directly, bypassing the
//! function registry, is pointed back at the Flink implementations here.
//!
//! Today that is `SUBSTRING(s FROM p FOR n)` (and `SUBSTRING(s, p, n)`),
//! planned as DataFusion's `substr`.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::FunctionRewrite;
use datafusion::logical_expr::{Expr, ScalarUDF};

/// Replaces calls of DataFusion's `substr` with Flink's `substring`.
#[derive(Debug)]
pub(crate) struct FlinkRewrite {
    substring: Arc<ScalarUDF>,
}

impl FlinkRewrite {
    /// A rewrite targeting the given Flink `substring` UDF.
    pub(crate) fn new(substring: Arc<ScalarUDF>) -> Self {
        Self { substring }
    }
}

impl FunctionRewrite for FlinkRewrite {
    fn name(&self) -> &str {
        "sluice_flink_functions"
    }

    fn rewrite(
        &self,
        expr: Expr,
        _schema: &DFSchema,
        _config: &ConfigOptions,
    ) -> Result<Transformed<Expr>> {
        match expr {
            // Ours is named `substring`; DataFusion's is `substr`.
            Expr::ScalarFunction(f) if f.func.name() == "substr" => Ok(Transformed::yes(
                Expr::ScalarFunction(ScalarFunction::new_udf(Arc::clone(&self.substring), f.args)),
            )),
            other => Ok(Transformed::no(other)),
        }
    }
}
