//! Tests for the Flink functions: real SQL through a `SessionContext`
//! configured as Sluice configures it, plus the examples in
//! `docs/functions.md`.

mod batches;
mod numbers;
mod regexps;
mod strings;
mod times;

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{SessionConfig, SessionContext};

use super::{flink_function_names, java_udf, register};

/// A context with Sluice's parser settings and the Flink functions.
pub(super) fn ctx() -> SessionContext {
    let cfg = SessionConfig::new()
        .set_bool("datafusion.sql_parser.enable_ident_normalization", false)
        .set_bool("datafusion.sql_parser.parse_float_as_decimal", true);
    let ctx = SessionContext::new_with_config(cfg);
    register(&ctx);
    ctx
}

/// Runs `sql` and renders the first column, one string per row.
pub(super) async fn rows_of(
    ctx: &SessionContext,
    sql: &str,
) -> datafusion::common::Result<Vec<String>> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let options = FormatOptions::new()
        .with_null("NULL")
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.f"));
    let mut out = Vec::new();
    for b in &batches {
        let col = b.column(0);
        let f = ArrayFormatter::try_new(col.as_ref(), &options)?;
        out.extend((0..col.len()).map(|i| f.value(i).to_string()));
    }
    Ok(out)
}

/// `SELECT expr` rendered as a string; panics on planning/execution errors.
pub(super) async fn eval(expr: &str) -> String {
    let rows = rows_of(&ctx(), &format!("SELECT {expr}"))
        .await
        .unwrap_or_else(|e| panic!("{expr}: {e}"));
    assert_eq!(rows.len(), 1, "{expr}");
    rows.into_iter().next().unwrap_or_default()
}

/// The result type of `SELECT expr`.
pub(super) async fn type_of(expr: &str) -> DataType {
    let df = ctx()
        .sql(&format!("SELECT {expr}"))
        .await
        .unwrap_or_else(|e| panic!("{expr}: {e}"));
    df.schema().field(0).data_type().clone()
}

/// Asserts each `(expr, expected)` pair.
pub(super) async fn check(cases: &[(&str, &str)]) {
    for (expr, expected) in cases {
        assert_eq!(eval(expr).await, *expected, "SELECT {expr}");
    }
}

/// Splits a markdown table row into trimmed cells (`\|` stays inside a cell).
fn cells(line: &str) -> Vec<String> {
    let line = line.replace("\\|", "\u{1}");
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(|c| c.trim().replace('\u{1}', "|"))
        .collect()
}

fn unquote(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?.strip_suffix('`')
}

#[tokio::test]
async fn docs_examples_hold() {
    let doc = include_str!("../../../../../docs/functions.md");
    let ctx = ctx();
    ctx.register_udf(
        java_udf("com.github.nexmark.flink.udf.CountChar", "count_char")
            .map(|u| u.as_ref().clone())
            .expect("known class"),
    );
    let mut checked = 0;
    for line in doc.lines().filter(|l| l.starts_with('|')) {
        let c = cells(line);
        // Function tables: name | status | example | result | notes; Java UDFs: class | example | result | notes.
        let (example, result) = match c.len() {
            5 => (&c[2], &c[3]),
            4 => (&c[1], &c[2]),
            _ => continue,
        };
        let (Some(example), Some(result)) = (unquote(example), unquote(result)) else {
            continue;
        };
        let got = rows_of(&ctx, &format!("SELECT {example}"))
            .await
            .unwrap_or_else(|e| panic!("{example}: {e}"));
        assert_eq!(got, vec![result.to_owned()], "docs example `{example}`");
        checked += 1;
    }
    assert!(checked > 70, "only {checked} examples found");
}

#[tokio::test]
async fn every_listed_name_resolves() {
    let state = ctx().state();
    for name in flink_function_names() {
        assert!(
            state.scalar_functions().contains_key(name),
            "{name} does not resolve"
        );
    }
}

#[tokio::test]
async fn names_are_case_insensitive() {
    check(&[
        ("Split_Index('a,b', ',', 1)", "b"),
        ("SPLIT_INDEX('a,b', ',', 1)", "b"),
        ("split_index('a,b', ',', 1)", "b"),
        ("ReGeXp_ExTrAcT('a1', '[0-9]')", "1"),
    ])
    .await;
}

#[tokio::test]
async fn java_udf_count_char() {
    assert!(java_udf("com.example.Unknown", "x").is_none());
    let ctx = ctx();
    let udf = java_udf("com.github.nexmark.flink.udf.CountChar", "my_count").expect("known class");
    assert_eq!(udf.name(), "my_count");
    ctx.register_udf(udf.as_ref().clone());
    let q = "SELECT my_count(column1, column2) FROM (VALUES ('banana', 'a'), (NULL, 'a'), ('x', NULL), ('x', ''), ('héhé', 'é'), ('', 'a'))";
    assert_eq!(
        rows_of(&ctx, q).await.expect("query"),
        ["3", "0", "NULL", "NULL", "2", "0"]
    );
    assert!(
        ctx.sql("SELECT count_char('a', 'a')").await.is_err(),
        "only the user's name is registered"
    );
}
