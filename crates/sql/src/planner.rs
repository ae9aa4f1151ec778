//! Planning one statement's query with DataFusion: parse the tokens with sqlparser,
//! adapt Flink-isms in the AST, hand it to DataFusion's `SqlToRel`, and turn its errors
//! into located, actionable messages.

use std::ops::ControlFlow;

use datafusion::common::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    self, DataType as SqlType, Expr as SqlExpr, ObjectNamePart, TimezoneInfo, VisitorMut,
};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::TokenWithSpan;
use sluice_types::Location;

use crate::catalog::Catalog;
use crate::ddl::parser::{DIALECT, split_location};
use crate::{Error, Result};

/// Parses a statement's tokens into a sqlparser AST, with located errors.
pub fn parse_statement(
    file: &str,
    tokens: Vec<TokenWithSpan>,
    location: &Location,
) -> Result<ast::Statement> {
    parse_statement_for(file, tokens, location, false)
}

/// [`parse_statement`], for the batch oracle when `oracle` (window table functions are
/// rewritten for batch execution).
pub fn parse_statement_for(
    file: &str,
    tokens: Vec<TokenWithSpan>,
    location: &Location,
    oracle: bool,
) -> Result<ast::Statement> {
    let tokens = crate::windows::rewrite(tokens, location, oracle)?;
    let mut parser = Parser::new(&DIALECT).with_tokens_with_locations(tokens);
    let mut st = parser.parse_statement().map_err(|e| {
        let msg = e.to_string();
        let msg = msg
            .strip_prefix("sql parser error: ")
            .unwrap_or(&msg)
            .to_string();
        match split_location(file, &msg) {
            Some((loc, m)) => Error::sql(&loc, m),
            None => Error::sql(location, msg),
        }
    })?;
    rewrite_flink(&mut st);
    crate::legacy_windows::rewrite(&mut st, location, oracle);
    Ok(st)
}

/// Flink spellings DataFusion does not know, rewritten in place:
/// - `TIMESTAMP_LTZ(p)` in casts → `TIMESTAMP(p) WITH TIME ZONE` (UTC session zone);
/// - an unaliased `a.b` in a SELECT list is named `b`, as Flink names it (DataFusion
///   would name a struct field access `t.a[b]`).
pub(crate) fn rewrite_flink(st: &mut ast::Statement) {
    struct Rewriter;
    fn name_compound_items(body: &mut ast::SetExpr) {
        match body {
            ast::SetExpr::Select(select) => {
                for item in &mut select.projection {
                    if let ast::SelectItem::UnnamedExpr(SqlExpr::CompoundIdentifier(parts)) = item
                        && let Some(last) = parts.last().cloned()
                    {
                        let expr = SqlExpr::CompoundIdentifier(parts.clone());
                        *item = ast::SelectItem::ExprWithAlias { expr, alias: last };
                    }
                }
            }
            ast::SetExpr::SetOperation { left, right, .. } => {
                name_compound_items(left);
                name_compound_items(right);
            }
            ast::SetExpr::Query(q) => name_compound_items(&mut q.body),
            _ => {}
        }
    }
    impl VisitorMut for Rewriter {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<()> {
            name_compound_items(&mut query.body);
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, expr: &mut SqlExpr) -> ControlFlow<()> {
            if let SqlExpr::Cast { data_type, .. } = expr
                && let SqlType::Custom(name, args) = data_type
            {
                let is_ltz = name.0.len() == 1
                    && matches!(&name.0[0], ObjectNamePart::Identifier(i) if i.value.eq_ignore_ascii_case("TIMESTAMP_LTZ"));
                if is_ltz {
                    let p = args
                        .first()
                        .and_then(|a| a.parse::<u64>().ok())
                        .unwrap_or(6);
                    let p = match p {
                        0 => 0,
                        1..=3 => 3,
                        4..=6 => 6,
                        _ => 9,
                    };
                    *data_type = SqlType::Timestamp(Some(p), TimezoneInfo::WithTimeZone);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = ast::VisitMut::visit(st, &mut Rewriter);
}

/// Plans a query (or any statement DataFusion plans) against the catalog.
pub async fn plan_statement(
    catalog: &Catalog,
    st: ast::Statement,
    location: &Location,
) -> Result<LogicalPlan> {
    let state = catalog.ctx.state();
    state
        .statement_to_plan(DfStatement::Statement(Box::new(st)))
        .await
        .map_err(|e| plan_error(e, location))
}

/// Turns a DataFusion planning error into a located SQL error with a hint.
pub fn plan_error(e: DataFusionError, location: &Location) -> Error {
    let mut loc = location.clone();
    if let Some(d) = e.diagnostic()
        && let Some(span) = d.span
        && span.start.line > 0
    {
        loc.line = span.start.line;
        loc.column = span.start.column;
    }
    let raw = e.strip_backtrace();
    let mut msg = raw.as_str();
    for prefix in [
        "Error during planning: ",
        "Schema error: ",
        "This feature is not implemented: ",
        "Optimizer rule",
    ] {
        if let Some(m) = msg.strip_prefix(prefix) {
            msg = m;
        }
    }
    let mut message = msg.to_string();
    if message.contains("No field named") {
        message.push_str(
            ". Column names are case-sensitive, as in Flink; quote names with backquotes if needed",
        );
    } else if message.contains("table") && message.contains("not found") {
        message.push_str(
            ". Declare it first with CREATE TABLE … WITH ('connector' = …) or CREATE VIEW",
        );
    } else if message.contains("Invalid function") || message.contains("Invalid scalar function") {
        message.push_str(". See docs/functions.md for the functions Sluice supports");
    }
    Error::sql(&loc, message)
}
