//! Flink's legacy group windows, `GROUP BY k, SESSION(ts, INTERVAL '10' SECOND)` with
//! `SESSION_START(ts, …)` / `SESSION_END(ts, …)` in the SELECT list (and the same for
//! `TUMBLE` and `HOP`), rewritten into the window table functions: the FROM table
//! becomes `TABLE(SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), gap))`, the window in
//! GROUP BY becomes `window_start, window_end`, and the auxiliary functions become those
//! columns.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr as SqlExpr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident,
    ObjectNamePart, SelectItem, SetExpr, TableFactor, VisitorMut,
};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Tokenizer;
use sluice_types::Location;

use crate::ddl::parser::DIALECT;

fn name_of(f: &ast::Function) -> String {
    f.name
        .0
        .last()
        .and_then(|p| match p {
            ObjectNamePart::Identifier(i) => Some(i.value.to_ascii_uppercase()),
            _ => None,
        })
        .unwrap_or_default()
}

fn args_of(f: &ast::Function) -> Vec<SqlExpr> {
    match &f.args {
        FunctionArguments::List(l) => l
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The column a (possibly qualified) identifier names, unqualified.
fn unqualified(e: &SqlExpr) -> Option<Ident> {
    match e {
        SqlExpr::Identifier(i) => Some(i.clone()),
        SqlExpr::CompoundIdentifier(parts) => parts.last().cloned(),
        _ => None,
    }
}

fn column(alias: &Option<Ident>, name: &str) -> SqlExpr {
    match alias {
        Some(a) => SqlExpr::CompoundIdentifier(vec![a.clone(), Ident::new(name)]),
        None => SqlExpr::Identifier(Ident::new(name)),
    }
}

/// Rewrites legacy group windows in every SELECT of `st`.
pub(crate) fn rewrite(st: &mut ast::Statement, location: &Location, oracle: bool) {
    struct V<'a> {
        location: &'a Location,
        oracle: bool,
    }
    impl VisitorMut for V<'_> {
        type Break = ();
        fn post_visit_query(&mut self, q: &mut ast::Query) -> ControlFlow<()> {
            if let SetExpr::Select(select) = q.body.as_mut() {
                rewrite_select(select, self.location, self.oracle);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = ast::VisitMut::visit(st, &mut V { location, oracle });
}

fn rewrite_select(select: &mut ast::Select, location: &Location, oracle: bool) {
    let GroupByExpr::Expressions(keys, _) = &mut select.group_by else {
        return;
    };
    let Some(pos) = keys.iter().position(|k| {
        matches!(k, SqlExpr::Function(f) if ["TUMBLE", "HOP", "SESSION"].contains(&name_of(f).as_str()))
    }) else {
        return;
    };
    let SqlExpr::Function(win) = keys[pos].clone() else {
        return;
    };
    let kind = name_of(&win);
    let args = args_of(&win);
    let [from] = select.from.as_mut_slice() else {
        return;
    };
    if !from.joins.is_empty() {
        return;
    }
    let TableFactor::Table { name, alias, .. } = &from.relation else {
        return;
    };
    let Some(time) = args.first().and_then(unqualified) else {
        return;
    };
    let alias_ident = alias.as_ref().map(|a| a.name.clone());
    let others: Vec<Ident> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != pos)
        .filter_map(|(_, k)| unqualified(k))
        .collect();
    let intervals: Vec<String> = args[1..].iter().map(|e| e.to_string()).collect();
    let tvf = match kind.as_str() {
        "SESSION" if others.is_empty() => format!(
            "SESSION(TABLE {name}, DESCRIPTOR({time}), {})",
            intervals.join(", ")
        ),
        "SESSION" => format!(
            "SESSION(TABLE {name} PARTITION BY {}, DESCRIPTOR({time}), {})",
            others
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            intervals.join(", ")
        ),
        // Legacy HOP(ts, slide, size) has the table function's argument order.
        _ => format!(
            "{kind}(TABLE {name}, DESCRIPTOR({time}), {})",
            intervals.join(", ")
        ),
    };
    let alias_text = alias_ident
        .as_ref()
        .map(|a| format!(" AS {a}"))
        .unwrap_or_default();
    let sql = format!("SELECT * FROM TABLE({tvf}){alias_text}");
    let Ok(tokens) = Tokenizer::new(&DIALECT, &sql).tokenize_with_location() else {
        return;
    };
    let Ok(tokens) = crate::windows::rewrite(tokens, location, oracle) else {
        return;
    };
    let Ok(ast::Statement::Query(q)) = Parser::new(&DIALECT)
        .with_tokens_with_locations(tokens)
        .parse_statement()
    else {
        return;
    };
    let SetExpr::Select(inner) = *q.body else {
        return;
    };
    let Some(new_from) = inner.from.into_iter().next() else {
        return;
    };
    from.relation = new_from.relation;
    keys.splice(
        pos..=pos,
        [
            column(&alias_ident, "window_start"),
            column(&alias_ident, "window_end"),
        ],
    );
    // SESSION_START(…) / TUMBLE_END(…) / HOP_ROWTIME(…) in the SELECT list.
    for item in &mut select.projection {
        let (SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) = item else {
            continue;
        };
        replace_auxiliary(e, &kind, &alias_ident);
    }
}

fn replace_auxiliary(e: &mut SqlExpr, kind: &str, alias: &Option<Ident>) {
    struct V<'a> {
        kind: &'a str,
        alias: &'a Option<Ident>,
    }
    impl VisitorMut for V<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
            if let SqlExpr::Function(f) = e {
                let n = name_of(f);
                let col = match n.strip_prefix(self.kind) {
                    Some("_START") => Some("window_start"),
                    Some("_END") => Some("window_end"),
                    Some("_ROWTIME") => Some("window_time"),
                    _ => None,
                };
                if let Some(c) = col {
                    *e = column(self.alias, c);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = ast::VisitMut::visit(e, &mut V { kind, alias });
}
