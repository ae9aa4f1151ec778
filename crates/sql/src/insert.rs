//! `INSERT INTO sink [(columns)] query`: matching the query's columns to the sink's,
//! with Flink's rules (same count, implicitly castable types), as a final projection.

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder, cast, lit};
use datafusion::sql::sqlparser::ast::Ident;
use sluice_types::Location;

use crate::ddl::{ColumnKind, TableDef};
use crate::{Error, Result};

fn family(t: &DataType) -> u8 {
    use DataType::*;
    match t {
        Null => 0,
        Boolean => 1,
        Int8
        | Int16
        | Int32
        | Int64
        | UInt8
        | UInt16
        | UInt32
        | UInt64
        | Float16
        | Float32
        | Float64
        | Decimal32(_, _)
        | Decimal64(_, _)
        | Decimal128(_, _)
        | Decimal256(_, _) => 2,
        Utf8 | LargeUtf8 | Utf8View => 3,
        Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => 4,
        Timestamp(_, _) | Date32 | Date64 => 5,
        Time32(_) | Time64(_) => 6,
        Interval(_) | Duration(_) => 7,
        Struct(_) => 8,
        List(_) | LargeList(_) | FixedSizeList(_, _) | ListView(_) | LargeListView(_) => 9,
        Map(_, _) => 10,
        _ => 11,
    }
}

/// Whether a query column of type `from` may be written to a sink column of type `to`
/// without an explicit CAST (Flink's implicit casts: within numeric, string, temporal…).
pub(crate) fn implicitly_castable(from: &DataType, to: &DataType) -> bool {
    from == to || *from == DataType::Null || (family(from) == family(to) && family(from) != 11)
}

fn type_name(t: &DataType) -> String {
    use DataType::*;
    match t {
        Int8 => "TINYINT".into(),
        Int16 => "SMALLINT".into(),
        Int32 => "INT".into(),
        Int64 => "BIGINT".into(),
        Float32 => "FLOAT".into(),
        Float64 => "DOUBLE".into(),
        Utf8 | LargeUtf8 | Utf8View => "VARCHAR".into(),
        Boolean => "BOOLEAN".into(),
        Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        Timestamp(u, None) => format!("TIMESTAMP({})", precision(u)),
        Timestamp(u, Some(_)) => format!("TIMESTAMP_LTZ({})", precision(u)),
        Date32 => "DATE".into(),
        other => other.to_string(),
    }
}

fn precision(u: &datafusion::arrow::datatypes::TimeUnit) -> u8 {
    use datafusion::arrow::datatypes::TimeUnit::*;
    match u {
        Second => 0,
        Millisecond => 3,
        Microsecond => 6,
        Nanosecond => 9,
    }
}

/// Adds the projection that turns `plan`'s output into exactly the sink's physical
/// columns (names, order, types). `columns` is the optional `INSERT INTO t (a, b)` list.
pub(crate) fn align_to_sink(
    plan: LogicalPlan,
    sink: &TableDef,
    columns: &[Ident],
    location: &Location,
) -> Result<LogicalPlan> {
    let targets: Vec<_> = sink
        .columns
        .iter()
        .filter(|c| matches!(c.kind, ColumnKind::Physical))
        .collect();
    let schema = plan.schema().clone();
    let query_cols = schema.columns();
    // For each sink column, the index of the query column feeding it (None = NULL).
    let sources: Vec<Option<usize>> = if columns.is_empty() {
        if query_cols.len() != targets.len() {
            let q: Vec<String> = schema
                .fields()
                .iter()
                .map(|f| format!("{} {}", f.name(), type_name(f.data_type())))
                .collect();
            let s: Vec<String> = targets
                .iter()
                .map(|c| format!("{} {}", c.name, type_name(&c.data_type)))
                .collect();
            return Err(Error::sql(
                location,
                format!(
                    "the query has {} columns but sink '{}' has {}.\n  query: [{}]\n  sink:  [{}]\n\
                     Select exactly the sink's columns, in order, or name them: INSERT INTO {} (col, …) SELECT …",
                    query_cols.len(),
                    sink.name,
                    targets.len(),
                    q.join(", "),
                    s.join(", "),
                    sink.name
                ),
            ));
        }
        (0..targets.len()).map(Some).collect()
    } else {
        if columns.len() != query_cols.len() {
            return Err(Error::sql(
                location,
                format!(
                    "INSERT INTO {} names {} columns but the query has {}",
                    sink.name,
                    columns.len(),
                    query_cols.len()
                ),
            ));
        }
        let mut v = vec![None; targets.len()];
        for (qi, ident) in columns.iter().enumerate() {
            let Some(ti) = targets.iter().position(|c| c.name == ident.value) else {
                return Err(Error::sql(
                    location,
                    format!("sink '{}' has no column '{}'", sink.name, ident.value),
                ));
            };
            v[ti] = Some(qi);
        }
        v
    };
    let mut exprs: Vec<Expr> = Vec::with_capacity(targets.len());
    for (target, source) in targets.iter().zip(sources) {
        let expr = match source {
            None => cast(
                lit(datafusion::common::ScalarValue::Null),
                target.data_type.clone(),
            ),
            Some(i) => {
                let col = Expr::Column(query_cols[i].clone());
                let from = col
                    .get_type(&schema)
                    .map_err(|e| crate::planner::plan_error(e, location))?;
                if !implicitly_castable(&from, &target.data_type) {
                    return Err(Error::sql(
                        location,
                        format!(
                            "type mismatch for sink '{}' column '{}' (position {}): the query gives {} but the \
                             sink expects {}. Convert it explicitly, e.g. CAST({} AS {})",
                            sink.name,
                            target.name,
                            i + 1,
                            type_name(&from),
                            type_name(&target.data_type),
                            schema.field(i).name(),
                            type_name(&target.data_type)
                        ),
                    ));
                }
                if from == target.data_type {
                    col
                } else {
                    cast(col, target.data_type.clone())
                }
            }
        };
        exprs.push(expr.alias(&target.name));
    }
    LogicalPlanBuilder::from(plan)
        .project(exprs)
        .and_then(|b| b.build())
        .map_err(|e| crate::planner::plan_error(e, location))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implicit_casts_follow_type_families() {
        assert!(implicitly_castable(&DataType::Int32, &DataType::Int64));
        assert!(implicitly_castable(
            &DataType::Decimal128(10, 3),
            &DataType::Decimal128(23, 3)
        ));
        assert!(!implicitly_castable(&DataType::Utf8, &DataType::Int64));
        assert!(implicitly_castable(&DataType::Null, &DataType::Utf8));
    }
}
