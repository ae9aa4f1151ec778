//! A whole pipeline file: statements applied in order to a catalog, every INSERT
//! planned, optimized and lowered into one [`StreamGraph`].

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::{self, Ident, TableObject};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};
use sluice_connectors::{ConnectorFactory, ConnectorTable, connector_for};
use sluice_runtime::{NodeKind, SinkFactory, StreamGraph};
use sluice_types::Location;

use crate::catalog::Catalog;
use crate::ddl::{self, parser::Cursor};
use crate::insert::align_to_sink;
use crate::lower::{Lowering, arrow_schema};
use crate::options::resolve_options;
use crate::planner::{parse_statement, parse_statement_for, plan_statement};
use crate::script::{self, Statement, StatementKind};
use crate::{Error, Result};

/// How to plan a file.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    /// The file name, for error locations.
    pub file: String,
    /// `--workers`: wins over `SET 'parallelism.default'`.
    pub workers: Option<usize>,
    /// Used when neither `--workers` nor a SET gives a parallelism (the core count).
    pub default_workers: usize,
    /// `-D NAME=value`: replaces `${NAME}` in the file.
    pub defines: BTreeMap<String, String>,
    /// Collect the results of bare `SELECT`s here instead of printing them (tests).
    pub capture: Option<sluice_connectors::memory::Collected>,
    /// Accept a file without any INSERT (an empty dataflow): for checking DDL alone.
    pub allow_empty: bool,
}

/// Where an INSERT writes.
pub(crate) enum Target {
    Table(String),
    Stdout,
}

pub(crate) struct PlannedInsert {
    pub(crate) target: Target,
    pub(crate) plan: LogicalPlan,
    pub(crate) location: Location,
}

/// A planned pipeline, ready to run or explain.
pub struct Pipeline {
    /// The dataflow.
    pub graph: StreamGraph,
    /// Subtasks per operator.
    pub workers: usize,
    /// Every `SET` of the file.
    pub settings: BTreeMap<String, String>,
    /// Number of INSERT statements (and bare queries).
    pub inserts: usize,
    /// True when every source ends by itself.
    pub bounded: bool,
    /// The optimized logical plans, for `explain`.
    plans: Vec<String>,
}

impl Pipeline {
    /// Parses and plans `text`.
    pub async fn plan(text: &str, opts: &PipelineOptions) -> Result<Pipeline> {
        let mut catalog = Catalog::new();
        let inserts = apply_statements(&mut catalog, text, opts).await?;
        let workers = opts
            .workers
            .or_else(|| setting_usize(&catalog, "parallelism.default"))
            .or_else(|| setting_usize(&catalog, "table.exec.resource.default-parallelism"))
            .unwrap_or(opts.default_workers)
            .max(1);
        let mut optimized = Vec::with_capacity(inserts.len());
        for ins in &inserts {
            let plan = catalog
                .ctx
                .state()
                .optimize(&ins.plan)
                .map_err(|e| crate::planner::plan_error(e, &ins.location))?;
            optimized.push(plan);
        }
        let mut lowering = Lowering::new(&catalog, workers);
        for plan in &optimized {
            lowering.collect_columns(plan);
        }
        lowering.prepare_watermarks().await?;
        for (ins, plan) in inserts.iter().zip(&optimized) {
            let streams = lowering.lower(plan, &ins.location).await?;
            let (name, factory, key) = sink_for(
                &catalog,
                &ins.target,
                plan,
                &ins.location,
                opts.capture.as_ref(),
            )?;
            lowering.sink(&name, factory, key, &streams, &ins.location)?;
        }
        for late in std::mem::take(&mut lowering.late_outputs) {
            let (name, factory, key) = table_sink(&catalog, &late.table, &late.location)?;
            let schema = factory.schema();
            lowering.late_sink(&sluice_sql_late(late, name), factory, &schema, key)?;
        }
        let graph = lowering.graph;
        let bounded = graph.nodes.iter().all(|n| match &n.kind {
            NodeKind::Source(s) => s.bounded(),
            _ => true,
        });
        Ok(Pipeline {
            graph,
            workers,
            settings: catalog.settings.clone(),
            inserts: inserts.len(),
            bounded,
            plans: optimized
                .iter()
                .map(|p| p.display_indent().to_string())
                .collect(),
        })
    }

    /// A setting of the file (`SET 'k' = 'v'`).
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    /// The plan as text: the dataflow's tasks, operators, parallelism and edges.
    pub fn explain(&self, verbose: bool) -> String {
        let mut out = format!(
            "== Dataflow ({} INSERT{}, {} worker{}, {}) ==\n",
            self.inserts,
            if self.inserts == 1 { "" } else { "s" },
            self.workers,
            if self.workers == 1 { "" } else { "s" },
            if self.bounded { "bounded" } else { "unbounded" },
        );
        out.push_str(&self.graph.explain());
        if verbose {
            for (i, p) in self.plans.iter().enumerate() {
                out.push_str(&format!(
                    "\n== Optimized logical plan of INSERT {} ==\n{p}\n",
                    i + 1
                ));
            }
        }
        out
    }
}

/// Applies every statement of `text` to `catalog`; returns the planned INSERTs and
/// queries in order.
pub(crate) async fn apply_statements(
    catalog: &mut Catalog,
    text: &str,
    opts: &PipelineOptions,
) -> Result<Vec<PlannedInsert>> {
    let text = script::substitute(text, &opts.defines);
    let statements = script::split(&opts.file, &text)?;
    let mut inserts: Vec<PlannedInsert> = Vec::new();
    let mut in_set: Option<Location> = None;
    for st in &statements {
        match st.kind {
            StatementKind::CreateTable => create_table(catalog, st).await?,
            StatementKind::CreateView => create_view(catalog, st).await?,
            StatementKind::CreateFunction => {
                catalog.add_function(&ddl::parse_create_function(st)?)?
            }
            StatementKind::Set => {
                if let Some((k, v)) = ddl::parse_set(st)? {
                    catalog.settings.insert(k, v);
                }
            }
            StatementKind::Reset => match ddl::parse_reset(st)? {
                Some(k) => {
                    catalog.settings.remove(&k);
                }
                None => catalog.settings.clear(),
            },
            StatementKind::Insert => inserts.push(insert(catalog, st).await?),
            StatementKind::Query => {
                let mut ast = parse_statement_for(
                    &st.location.file,
                    temporal_tokens(catalog, st)?,
                    &st.location,
                    catalog.oracle,
                )?;
                if let ast::Statement::Query(q) = &mut ast {
                    alias_repeated_items(q);
                }
                let plan = plan_statement(catalog, ast, &st.location).await?;
                inserts.push(PlannedInsert {
                    target: Target::Stdout,
                    plan,
                    location: st.location.clone(),
                });
            }
            StatementKind::BeginStatementSet => {
                if in_set.is_some() {
                    return Err(Error::sql(
                        &st.location,
                        "statement sets cannot be nested; close the first with END;",
                    ));
                }
                in_set = Some(st.location.clone());
            }
            StatementKind::End => {
                if in_set.take().is_none() {
                    return Err(Error::sql(&st.location, "END without BEGIN STATEMENT SET"));
                }
            }
            StatementKind::Drop => {
                let d = ddl::parse_drop(st)?;
                let used = inserts.iter().any(|i: &PlannedInsert| {
                    matches!(&i.target, Target::Table(t) if *t == d.name)
                        || crate::lower::scanned_tables(&i.plan).contains(&d.name)
                });
                if used && d.what != "FUNCTION" {
                    return Err(Error::sql(
                        &st.location,
                        format!(
                            "cannot drop '{}': an INSERT above uses it, and all INSERTs of a file run                              together once the whole file is read; remove the DROP or move it before",
                            d.name
                        ),
                    ));
                }
                if !catalog.drop(&d.what, &d.name) && !d.if_exists {
                    return Err(Error::sql(
                        &st.location,
                        format!(
                            "cannot drop '{}': no such {}",
                            d.name,
                            d.what.to_lowercase()
                        ),
                    ));
                }
            }
            StatementKind::Ignored => {
                tracing::warn!(location = %st.location, "Statement ignored: {}", st.text);
            }
        }
    }
    if let Some(loc) = in_set {
        return Err(Error::sql(
            &loc,
            "the statement set is never closed; add END; after its INSERTs",
        ));
    }
    if inserts.is_empty() && !opts.allow_empty {
        return Err(Error::sql(
            &Location {
                file: opts.file.clone(),
                line: 0,
                column: 0,
            },
            "the file has no INSERT INTO or SELECT statement, so there is nothing to run; \
             add INSERT INTO <sink> SELECT … FROM <source>",
        ));
    }
    Ok(inserts)
}

fn setting_usize(catalog: &Catalog, key: &str) -> Option<usize> {
    catalog
        .settings
        .get(key)
        .and_then(|v| v.trim().parse().ok())
        .filter(|n: &usize| *n > 0)
}

async fn create_table(catalog: &mut Catalog, st: &Statement) -> Result<()> {
    let def = ddl::parse_create_table(st)?;
    if let Some(c) = def.connector() {
        connector_for(c).map_err(|source| Error::connector(&def.location, source))?;
    }
    let computed = def
        .has_computed_columns()
        .then(|| Catalog::computed_columns_sql(&def));
    let name = def.name.clone();
    let location = def.location.clone();
    if catalog.oracle {
        crate::oracle::register_file_table(catalog, def).await?;
    } else {
        catalog.add_table(def)?;
    }
    if let Some(sql) = computed {
        let statements = script::split(&location.file, &sql)?;
        let Some(view_st) = statements.first() else {
            return Ok(());
        };
        let ast = parse_statement(&location.file, view_st.tokens.clone(), &location)?;
        let plan = plan_statement(catalog, ast, &location).await?;
        catalog.add_view(&name, plan, None, &location)?;
    }
    Ok(())
}

/// Parses `CREATE [TEMPORARY] VIEW [IF NOT EXISTS] name AS query` (no awaits: the
/// parser is not `Send`).
fn parse_create_view(
    st: &Statement,
    tokens: Vec<TokenWithSpan>,
    oracle: bool,
) -> Result<(String, bool, Box<ast::Query>)> {
    let tokens = crate::windows::rewrite(tokens, &st.location, oracle)?;
    let mut c = Cursor::new(&st.location.file, tokens);
    c.expect_word("CREATE", "")?;
    let _ = c.word("TEMPORARY");
    c.expect_word("VIEW", "")?;
    let if_not_exists = c.words(&["IF", "NOT", "EXISTS"]);
    let name = c.identifier("a view name")?.value;
    if c.peek() == Token::LParen {
        return Err(c.error(
            "a column list on CREATE VIEW is not supported; alias the columns in the SELECT",
        ));
    }
    c.expect_word("AS", "Write CREATE VIEW name AS SELECT ….")?;
    let query = c.p.parse_query().map_err(|e| c.parser_error(e))?;
    c.expect_end("the view's query")?;
    Ok((name, if_not_exists, query))
}

async fn create_view(catalog: &mut Catalog, st: &Statement) -> Result<()> {
    let tokens = temporal_tokens(catalog, st)?;
    let (name, if_not_exists, query) = parse_create_view(st, tokens, catalog.oracle)?;
    if if_not_exists && catalog.views.contains(&name) {
        return Ok(());
    }
    let mut statement = ast::Statement::Query(query);
    crate::planner::rewrite_flink(&mut statement);
    let plan = plan_statement(catalog, statement, &st.location).await?;
    catalog.add_view(&name, plan, Some(st.text.clone()), &st.location)
}

/// The statement's tokens with temporal joins rewritten against the catalog's tables.
fn temporal_tokens(catalog: &Catalog, st: &Statement) -> Result<Vec<TokenWithSpan>> {
    use crate::temporal::AsOfTable;
    let lookup = |name: &str| {
        let Some(def) = catalog.tables.get(name) else {
            return AsOfTable::Plain;
        };
        if let Some(w) = &def.watermark {
            return AsOfTable::Versioned(crate::temporal::Versioned {
                rowtime: w.column.clone(),
                primary_key: def.primary_key.clone(),
            });
        }
        let connector = def.options.get("connector").map_or("", String::as_str);
        let first = def
            .physical_schema()
            .fields()
            .first()
            .map(|f| f.name().clone());
        match (connector_for(connector), first) {
            (Ok(c), Some(col)) if c.has_lookup() => AsOfTable::Lookup(col),
            _ => AsOfTable::Plain,
        }
    };
    crate::temporal::rewrite(st.tokens.clone(), &st.location, catalog.oracle, &lookup)
}

async fn insert(catalog: &Catalog, st: &Statement) -> Result<PlannedInsert> {
    let ast = parse_statement_for(
        &st.location.file,
        temporal_tokens(catalog, st)?,
        &st.location,
        catalog.oracle,
    )?;
    let ast::Statement::Insert(ins) = ast else {
        return Err(Error::sql(
            &st.location,
            "expected INSERT INTO table SELECT …",
        ));
    };
    let TableObject::TableName(name) = &ins.table else {
        return Err(Error::sql(
            &st.location,
            "INSERT INTO a table function is not supported",
        ));
    };
    let table = name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .unwrap_or_default();
    let Some(def) = catalog.tables.get(&table) else {
        let hint = if catalog.views.contains(&table) {
            " (it is a view; INSERT needs a table)"
        } else {
            ""
        };
        return Err(Error::sql(
            &st.location,
            format!(
                "cannot INSERT INTO '{table}': no such table{hint}. Declare it with CREATE TABLE {table} (…) WITH ('connector' = …)"
            ),
        ));
    };
    let Some(source) = ins.source.clone() else {
        return Err(Error::sql(
            &st.location,
            "INSERT needs a query: INSERT INTO t SELECT … or INSERT INTO t VALUES (…)",
        ));
    };
    let mut source = source;
    alias_repeated_items(&mut source);
    let plan = plan_statement(catalog, ast::Statement::Query(source), &st.location).await?;
    let columns: Vec<Ident> = ins
        .columns
        .iter()
        .filter_map(|c| c.0.last().and_then(|p| p.as_ident()).cloned())
        .collect();
    let plan = align_to_sink(plan, def, &columns, &st.location)?;
    Ok(PlannedInsert {
        target: Target::Table(table),
        plan,
        location: st.location.clone(),
    })
}

/// `SELECT id, id FROM …` is valid Flink SQL, but the planner wants unique names: a
/// repeated unaliased item gets an alias of its own, as Flink names it (`id0`, `id1`, …
/// for a column, `EXPR$<position>` otherwise). An INSERT's columns go by position, so
/// the names only show in a printed result.
fn alias_repeated_items(query: &mut ast::Query) {
    let ast::SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let mut seen = std::collections::HashSet::new();
    for item in &select.projection {
        match item {
            ast::SelectItem::UnnamedExpr(ast::Expr::Identifier(id)) => {
                seen.insert(id.value.clone());
            }
            ast::SelectItem::UnnamedExpr(ast::Expr::CompoundIdentifier(parts)) => {
                seen.extend(parts.last().map(|p| p.value.clone()));
            }
            ast::SelectItem::ExprWithAlias { alias, .. } => {
                seen.insert(alias.value.clone());
            }
            _ => {}
        }
    }
    let mut first = std::collections::HashSet::new();
    for (i, item) in select.projection.iter_mut().enumerate() {
        match item {
            ast::SelectItem::UnnamedExpr(expr) if !first.insert(expr.to_string()) => {
                let base = match &*expr {
                    ast::Expr::Identifier(id) => Some(id.value.clone()),
                    ast::Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.clone()),
                    _ => None,
                };
                let alias = match base {
                    Some(base) => (0..)
                        .map(|k| format!("{base}{k}"))
                        .find(|n| !seen.contains(n))
                        .expect("an unused name"),
                    None => format!("EXPR${i}"),
                };
                seen.insert(alias.clone());
                *item = ast::SelectItem::ExprWithAlias {
                    expr: expr.clone(),
                    alias: Ident::new(alias),
                };
            }
            ast::SelectItem::ExprWithAlias { alias, .. } => {
                seen.insert(alias.value.clone());
            }
            _ => {}
        }
    }
}

/// The sink factory, its name and key column indices for an INSERT's target.
fn sink_for(
    catalog: &Catalog,
    target: &Target,
    plan: &LogicalPlan,
    location: &Location,
    capture: Option<&sluice_connectors::memory::Collected>,
) -> Result<(String, Arc<dyn SinkFactory>, Vec<usize>)> {
    match target {
        Target::Stdout if capture.is_some() => {
            let out = capture.cloned().unwrap_or_default();
            let f =
                sluice_connectors::memory::MemorySinkFactory::new(arrow_schema(plan.schema()), out);
            Ok(("results".into(), Arc::new(f), vec![]))
        }
        Target::Stdout => {
            let mut options = BTreeMap::new();
            options.insert("connector".to_string(), "print".to_string());
            options.insert("sink.parallelism".to_string(), "1".to_string());
            let ct = ConnectorTable {
                name: "stdout".into(),
                schema: arrow_schema(plan.schema()),
                options,
                primary_key: vec![],
                metadata: vec![],
            };
            let f = sluice_connectors::print::PrintConnector
                .sink(&ct)
                .map_err(|source| Error::connector(location, source))?;
            // Results of a bare SELECT print in order from one subtask.
            Ok((format!("stdout#{}", location.line), f, vec![]))
        }
        Target::Table(name) => table_sink(catalog, name, location),
    }
}

fn sluice_sql_late(mut late: crate::lower::LateOutput, name: String) -> crate::lower::LateOutput {
    late.table = name;
    late
}

/// The sink of a declared table, and its primary key's column indices.
fn table_sink(
    catalog: &Catalog,
    name: &str,
    location: &Location,
) -> Result<(String, Arc<dyn SinkFactory>, Vec<usize>)> {
    {
        {
            let def = catalog.tables.get(name).ok_or_else(|| {
                Error::sql(
                    location,
                    format!("table '{name}' is not declared (CREATE TABLE it first)"),
                )
            })?;
            let schema = def.sink_schema();
            let ct = ConnectorTable {
                name: def.name.clone(),
                schema: schema.clone(),
                options: resolve_options(def)?,
                primary_key: def.primary_key.clone(),
                metadata: crate::lower::metadata_of(def, true),
            };
            let f = sluice_connectors::sink_for(&ct)
                .map_err(|source| Error::connector(&def.location, source))?;
            let key = def
                .primary_key
                .iter()
                .filter_map(|k| schema.index_of(k).ok())
                .collect();
            Ok((name.to_string(), f, key))
        }
    }
}
