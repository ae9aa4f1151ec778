//! Native stand-ins for well-known Java UDF classes, so that
//! `CREATE FUNCTION f AS 'com.example.Udf'` works without a JVM.
//!
//! Known classes:
//! - `com.github.nexmark.flink.udf.CountChar`: `count_char(s, c)` → BIGINT,
//!   the number of occurrences of the first character of `c` in `s`
//!   (0 when `s` is NULL, as the Java code does; NULL when `c` is NULL or empty).

use std::sync::Arc;

use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

use super::args::{Strs, check_arity, finish, output_rows, string_type};
use super::udf::{FlinkUdf, FnState};

/// Java class names with a native implementation.
pub const KNOWN_JAVA_UDFS: [&str; 1] = ["com.github.nexmark.flink.udf.CountChar"];

/// The native implementation of Java UDF `class_name`, registered under
/// `name` (the name given in `CREATE FUNCTION`); `None` for unknown classes.
pub fn java_udf(class_name: &str, name: &str) -> Option<Arc<ScalarUDF>> {
    let udf = match class_name {
        "com.github.nexmark.flink.udf.CountChar" => count_char(),
        _ => return None,
    };
    Some(Arc::new(udf.renamed(name).into_udf()))
}

fn count_char() -> FlinkUdf {
    FlinkUdf::new(
        "count_char",
        coerce_count_char,
        |_| Ok(DataType::Int64),
        invoke_count_char,
    )
}

fn coerce_count_char(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("count_char", t.len(), 2, 2)?;
    Ok(t.iter().map(string_type).collect())
}

fn invoke_count_char(_: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let (s, c) = (Strs::new(&args.args[0])?, Strs::new(&args.args[1])?);
    let out: Int64Array = (0..rows)
        .map(|i| {
            let c = c.get(i)?.chars().next()?;
            let s = s.get(i).unwrap_or_default();
            let n = if c.is_ascii() {
                s.bytes().filter(|b| *b == c as u8).count()
            } else {
                s.chars().filter(|x| *x == c).count()
            };
            i64::try_from(n).ok()
        })
        .collect();
    finish(Arc::new(out), scalar)
}
