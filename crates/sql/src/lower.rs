//! Lowering optimized DataFusion logical plans to Sluice's [`StreamGraph`].
//!
//! Each plan node becomes a graph node (or nothing, for aliases): a `TableScan` of a
//! connector table becomes that table's source (one shared source per table, reading
//! only the columns some query needs when the format allows it), `Projection` and
//! `Filter` become operators with DataFusion physical expressions, `Union` merges
//! streams, and a subtree without any table (`VALUES`, `SELECT 1`) is computed by
//! DataFusion in batch mode and becomes a bounded source. Everything else is refused
//! with a message naming the operator.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::Field;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema};
use datafusion::datasource::source_as_provider;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::ExprSchemable;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Aggregate, Expr, Filter as Filter_, Join, JoinType, LogicalPlan, TableScan,
};
use datafusion::physical_expr::aggregate::{AggregateExprBuilder, LoweredAggregateBuilder};
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_plan::PhysicalExpr;
use datafusion::sql::sqlparser::tokenizer::Tokenizer;
use futures::future::BoxFuture;
use sluice_connectors::values::ValuesSourceFactory;
use sluice_connectors::{ConnectorTable, MetadataColumn, lookup_for, source_for};
use sluice_operators::aggregate::{
    AggregateSpec, GroupAggregate, SessionAggregate, WindowAggregate,
};
use sluice_operators::join::{IntervalBounds, JoinKind, LookupJoin, StreamingJoin, TemporalJoin};
use sluice_operators::over::{OverAggregate, OverFrame};
use sluice_operators::rank::{ChangelogNormalize, SortKey, TopN, UpsertMaterializer, WindowTopN};
use sluice_operators::stateless::{Filter, Projection, Unnest};
use sluice_operators::window::{LateRows, WatermarkAssigner};
use sluice_runtime::{EdgeKind, NodeId, NodeKind, SinkFactory, StreamGraph};
use sluice_types::Location;
use sluice_types::{ROW_KIND_COLUMN, parse_duration, row_kind_field};

use crate::catalog::{Catalog, ConnectorTableProvider};
use crate::ddl::parser::DIALECT;
use crate::options::resolve_options;
use crate::{Error, Result};

/// An output of a lowered plan: the node producing it and its parallelism.
#[derive(Debug, Clone)]
pub struct Stream {
    /// The producing node.
    pub node: NodeId,
    /// Its parallelism.
    pub parallelism: usize,
    /// Set when the stream is a changelog (rows carry a kind): the operator that made
    /// it updating, for error messages. Its batches then end with the row-kind column.
    pub updating: Option<String>,
}

impl Stream {
    fn append(node: NodeId, parallelism: usize) -> Stream {
        Stream {
            node,
            parallelism,
            updating: None,
        }
    }
}

fn updating_of(inputs: &[Stream]) -> Option<String> {
    inputs.iter().find_map(|s| s.updating.clone())
}

/// `schema` with the row-kind column appended when the stream is updating.
fn with_kind(schema: SchemaRef, updating: bool) -> SchemaRef {
    if !updating {
        return schema;
    }
    let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
    fields.push(Arc::new(row_kind_field()));
    Arc::new(Schema::new(fields))
}

struct SourceNode {
    node: NodeId,
    /// Indices (into the table's physical schema) the source reads, ascending.
    columns: Vec<usize>,
    /// Set when the source reads a changelog (a CDC format): what to call it in
    /// messages. Its batches end with the row-kind column.
    changelog: Option<String>,
}

/// Builds one [`StreamGraph`] from all INSERTs of a file.
pub struct Lowering<'a> {
    catalog: &'a Catalog,
    /// The graph being built.
    pub graph: StreamGraph,
    workers: usize,
    /// Columns each table's scans need (filled by [`Lowering::collect_columns`]).
    needed: HashMap<String, BTreeSet<usize>>,
    sources: HashMap<String, SourceNode>,
    sinks: HashMap<String, NodeId>,
    props: ExecutionProps,
    /// Per table with a `WATERMARK`: the watermark expression and the event-time
    /// column over its physical columns (unqualified), and the declaration's text.
    watermarks: HashMap<String, (Expr, Expr, String)>,
    /// Side outputs of late rows, for the pipeline to connect to their tables.
    pub late_outputs: Vec<LateOutput>,
}

/// Late rows of a source (`'scan.watermark.late-rows.table'`), to be written to a table.
#[derive(Debug, Clone)]
pub struct LateOutput {
    /// The table receiving them.
    pub table: String,
    /// The stream of late rows (the source's columns).
    pub stream: Stream,
    /// Its schema.
    pub schema: SchemaRef,
    /// The source table's declaration.
    pub location: Location,
}

/// The connector tables a plan reads (views already inlined).
pub(crate) fn scanned_tables(plan: &LogicalPlan) -> Vec<String> {
    let mut out = Vec::new();
    let _ = plan.apply(|p| {
        if let LogicalPlan::TableScan(scan) = p
            && let Some((t, _)) = scan_table(scan)
        {
            out.push(t);
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    out
}

fn scan_table(scan: &TableScan) -> Option<(String, SchemaRef)> {
    let provider = source_as_provider(&scan.source).ok()?;
    let t = provider.downcast_ref::<ConnectorTableProvider>()?;
    Some((t.table.clone(), t.schema.clone()))
}

/// Whether a table's source can read a subset of its columns (formats that find
/// fields by name); others read every column and a projection follows.
/// The metadata columns of `def` a source (`for_sink` false) or sink sees.
pub(crate) fn metadata_of(def: &crate::ddl::TableDef, for_sink: bool) -> Vec<MetadataColumn> {
    def.metadata_columns(for_sink)
        .into_iter()
        .map(|(name, key)| MetadataColumn { name, key })
        .collect()
}

fn supports_projection(options: &std::collections::BTreeMap<String, String>) -> bool {
    options.get("connector").map(String::as_str) == Some("filesystem")
        && options.get("format").map(String::as_str) == Some("json")
}

impl<'a> Lowering<'a> {
    /// A lowering with `workers` subtasks per operator.
    pub fn new(catalog: &'a Catalog, workers: usize) -> Self {
        Lowering {
            catalog,
            graph: StreamGraph::new(),
            workers: workers.max(1),
            needed: HashMap::new(),
            sources: HashMap::new(),
            sinks: HashMap::new(),
            props: ExecutionProps::new(),
            watermarks: HashMap::new(),
            late_outputs: Vec::new(),
        }
    }

    /// First pass over every plan: which columns each table's scans read.
    pub fn collect_columns(&mut self, plan: &LogicalPlan) {
        let _ = plan.apply(|p| {
            if let LogicalPlan::TableScan(scan) = p
                && let Some((table, schema)) = scan_table(scan)
            {
                let set = self.needed.entry(table).or_default();
                match &scan.projection {
                    Some(cols) => set.extend(cols.iter().copied()),
                    None => set.extend(0..schema.fields().len()),
                }
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        });
    }

    /// Plans each scanned table's `WATERMARK` expression over its physical columns
    /// (computed columns inlined), and makes its sources read those columns.
    pub async fn prepare_watermarks(&mut self) -> Result<()> {
        let mut tables: Vec<String> = self.needed.keys().cloned().collect();
        tables.sort();
        for table in tables {
            let Some(def) = self.catalog.tables.get(&table) else {
                continue;
            };
            let Some(wm) = &def.watermark else {
                continue;
            };
            let text = format!("WATERMARK FOR {} AS {}", wm.column, wm.expr);
            let sql = format!(
                "SELECT {} AS __sluice_wm, `{}` AS __sluice_rowtime FROM `{}`",
                wm.expr, wm.column, def.name
            );
            let tokens = Tokenizer::new(&DIALECT, &sql)
                .tokenize_with_location()
                .map_err(|e| Error::sql(&def.location, e.to_string()))?;
            let ast = crate::planner::parse_statement(&def.location.file, tokens, &def.location)?;
            let plan = crate::planner::plan_statement(self.catalog, ast, &def.location).await?;
            let plan = self
                .catalog
                .ctx
                .state()
                .optimize(&plan)
                .map_err(|e| crate::planner::plan_error(e, &def.location))?;
            let start = Expr::Column(Column::new_unqualified("__sluice_wm"));
            let Some(expr) = inline_to_scan(start, &plan) else {
                return Err(Error::Unsupported {
                    location: def.location.clone(),
                    message: format!(
                        "table '{table}': the watermark expression must be computed from \
                         the table's columns alone (got plan {})",
                        plan.display_indent()
                    ),
                });
            };
            let expr = unqualify(expr);
            let rowtime = inline_to_scan(
                Expr::Column(Column::new_unqualified("__sluice_rowtime")),
                &plan,
            )
            .map(unqualify)
            .unwrap_or_else(|| expr.clone());
            let physical = def.source_schema();
            let set = self.needed.entry(table.clone()).or_default();
            if def.options.contains_key(LATE_ROWS_OPTION) {
                // The side output writes whole rows.
                set.extend(0..physical.fields().len());
            }
            for c in expr.column_refs().into_iter().chain(rowtime.column_refs()) {
                match physical.index_of(&c.name) {
                    Ok(i) => {
                        set.insert(i);
                    }
                    Err(_) => {
                        return Err(Error::Unsupported {
                            location: def.location.clone(),
                            message: format!(
                                "table '{table}': the watermark needs column '{}', which is \
                                 not a physical column",
                                c.name
                            ),
                        });
                    }
                }
            }
            self.watermarks.insert(table, (expr, rowtime, text));
        }
        Ok(())
    }

    /// `GROUP BY`: a window aggregation when the keys include the `window_start` and
    /// `window_end` of a window table function, else an unbounded (updating) one.
    async fn aggregate(&mut self, agg: &Aggregate, location: &Location) -> Result<Vec<Stream>> {
        if agg
            .group_expr
            .iter()
            .any(|g| matches!(g, Expr::GroupingSet(_)))
        {
            return Err(Error::Unsupported {
                location: location.clone(),
                message: "GROUPING SETS, CUBE and ROLLUP are not supported in streaming \
                          pipelines yet"
                    .into(),
            });
        }
        let inputs = self.lower(&agg.input, location).await?;
        let updating = updating_of(&inputs);
        let (inputs, keys, ext_schema) = self.keyed(
            inputs,
            agg.input.schema().as_ref(),
            &agg.group_expr,
            location,
        )?;
        let physical_input = arrow_schema(&ext_schema);
        let mut aggs = Vec::new();
        let mut filters = Vec::new();
        for e in &agg.aggr_expr {
            let planning = PhysicalPlanningContext::default();
            let lowered = LoweredAggregateBuilder::new(
                e,
                &ext_schema,
                physical_input.as_ref(),
                &self.props,
                &planning,
            )
            .build()
            .map_err(|e| crate::planner::plan_error(e, location))?;
            aggs.push(lowered.aggregate);
            filters.push(lowered.filter);
        }
        let out_schema = arrow_schema(&agg.schema);
        let key_names: Vec<String> = (0..agg.group_expr.len())
            .map(|i| out_schema.field(i).name().clone())
            .collect();
        let spec = AggregateSpec {
            keys: keys.clone(),
            aggs,
            filters,
            input: physical_input,
            output: out_schema,
        };
        let window_end = key_names.iter().position(|n| n == "window_end");
        let windowed = window_end.is_some() && key_names.iter().any(|n| n == "window_start");
        let (kind, out_updating): (NodeKind, Option<String>) = if windowed {
            if let Some(op) = &updating {
                return Err(Error::Unsupported {
                    location: location.clone(),
                    message: format!(
                        "a window aggregation needs an append-only input, but {op} makes \
                         its input updating"
                    ),
                });
            }
            let end = keys[window_end.unwrap_or(0)];
            let lateness = match self.catalog.settings.get(ALLOW_LATENESS) {
                Some(v) => parse_duration(v)
                    .map_err(|e| {
                        Error::sql(location, format!("SET '{ALLOW_LATENESS}' = '{v}': {e}"))
                    })?
                    .as_millis() as i64,
                None => 0,
            };
            if is_session(&agg.input, column_name(&agg.input, end)) {
                let start = keys[key_names
                    .iter()
                    .position(|n| n == "window_start")
                    .unwrap_or(0)];
                let op = SessionAggregate::new(spec, start, end);
                let partition: Vec<usize> = keys
                    .iter()
                    .copied()
                    .filter(|k| *k != start && *k != end)
                    .collect();
                let kind = NodeKind::Operator(Arc::new(op));
                return Ok(vec![self.keyed_operator(kind, &inputs, &partition, None)]);
            }
            let mut op = WindowAggregate::new(spec, end).with_allowed_lateness(lateness);
            let on_proctime =
                defining_expr(&agg.input, column_name(&agg.input, end)).is_some_and(|e| {
                    e.exists(|x| {
                        Ok(matches!(x, Expr::ScalarFunction(f) if f.func.name() == "proctime"))
                    })
                    .unwrap_or(false)
                });
            if on_proctime {
                op = op.with_processing_time();
            }
            let updating = op.updating().then(|| {
                format!("WindowAggregate with '{ALLOW_LATENESS}' (late rows update fired windows)")
            });
            (NodeKind::Operator(Arc::new(op)), updating)
        } else {
            let op = GroupAggregate::new(spec, updating.is_some());
            if updating.is_some()
                && let Some(f) = op.non_retracting()
            {
                return Err(Error::Unsupported {
                    location: location.clone(),
                    message: format!(
                        "{f} cannot take back rows, but its input is updating ({}); \
                         aggregate an append-only input with it",
                        updating.unwrap_or_default()
                    ),
                });
            }
            let what = if key_names.is_empty() {
                "GroupAggregate (a global aggregate)".to_string()
            } else {
                format!("GroupAggregate (GROUP BY {})", key_names.join(", "))
            };
            (NodeKind::Operator(Arc::new(op)), Some(what))
        };
        Ok(vec![self.keyed_operator(
            kind,
            &inputs,
            &keys,
            out_updating,
        )])
    }

    /// Adds a keyed operator: its input rows hashed by `keys` over the workers, or all
    /// to one subtask when there are no keys.
    fn keyed_operator(
        &mut self,
        kind: NodeKind,
        inputs: &[Stream],
        keys: &[usize],
        updating: Option<String>,
    ) -> Stream {
        let parallelism = if keys.is_empty() { 1 } else { self.workers };
        let node = self.graph.add_node(kind, parallelism);
        for s in inputs {
            let edge = if keys.is_empty() {
                EdgeKind::Rebalance
            } else if parallelism == 1 && s.parallelism == 1 {
                EdgeKind::Forward
            } else {
                EdgeKind::Hash(keys.to_vec())
            };
            self.graph.connect(s.node, node, edge, 0);
        }
        Stream {
            node,
            parallelism,
            updating,
        }
    }

    /// Key columns for `exprs` over streams of `in_schema`: column references are used
    /// as they are; other expressions are computed by a projection that appends them
    /// (before the row kind). Returns the streams to shuffle, the key indices and the
    /// schema of those streams (without row kind).
    fn keyed(
        &mut self,
        inputs: Vec<Stream>,
        in_schema: &DFSchema,
        exprs: &[Expr],
        location: &Location,
    ) -> Result<(Vec<Stream>, Vec<usize>, DFSchema)> {
        let updating = updating_of(&inputs);
        let width = in_schema.fields().len();
        let mut keys = Vec::new();
        let mut extra: Vec<Expr> = Vec::new();
        for g in exprs {
            match g {
                Expr::Column(c) => keys.push(
                    in_schema
                        .index_of_column(c)
                        .map_err(|e| crate::planner::plan_error(e, location))?,
                ),
                other => {
                    keys.push(width + extra.len());
                    extra.push(other.clone());
                }
            }
        }
        if extra.is_empty() {
            return Ok((inputs, keys, in_schema.clone()));
        }
        let mut physical: Vec<Arc<dyn PhysicalExpr>> = (0..width)
            .map(|i| {
                Arc::new(datafusion::physical_expr::expressions::Column::new(
                    in_schema.field(i).name(),
                    i,
                )) as Arc<dyn PhysicalExpr>
            })
            .collect();
        physical.extend(self.physical(&extra, in_schema, location)?);
        let mut fields = Vec::new();
        for (k, e) in extra.iter().enumerate() {
            let (_, field) = e
                .to_field(in_schema)
                .map_err(|e| crate::planner::plan_error(e, location))?;
            fields.push(Field::new(
                format!("__sluice_key_{k}"),
                field.data_type().clone(),
                true,
            ));
        }
        let keys_schema = DFSchema::from_unqualified_fields(fields.into(), Default::default())
            .map_err(|e| crate::planner::plan_error(e, location))?;
        let ext = in_schema
            .join(&keys_schema)
            .map_err(|e| crate::planner::plan_error(e, location))?;
        if updating.is_some() {
            physical.push(Arc::new(
                datafusion::physical_expr::expressions::Column::new(ROW_KIND_COLUMN, width),
            ));
        }
        let schema = with_kind(arrow_schema(&ext), updating.is_some());
        let op = Projection::new(physical, schema);
        let s = self.operator(NodeKind::Operator(Arc::new(op)), &inputs);
        Ok((vec![s], keys, ext))
    }

    /// A regular join of two streams on equal keys (plus any other condition).
    async fn join(&mut self, j: &Join, location: &Location) -> Result<Vec<Stream>> {
        let plan_node = LogicalPlan::Join(j.clone());
        let kind = match j.join_type {
            JoinType::Inner => JoinKind::Inner,
            JoinType::Left => JoinKind::Left,
            JoinType::Right => JoinKind::Right,
            JoinType::Full => JoinKind::Full,
            JoinType::LeftSemi => JoinKind::Semi(0),
            JoinType::RightSemi => JoinKind::Semi(1),
            JoinType::LeftAnti => JoinKind::Anti(0),
            JoinType::RightAnti => JoinKind::Anti(1),
            _ => return Err(unsupported(&plan_node, location)),
        };
        if let Some(f) = &j.filter
            && let Some(rest) = lookup_marker(f)
        {
            return self.lookup_join(j, kind, rest, location).await;
        }
        if j.on.is_empty() {
            return Err(Error::Unsupported {
                location: location.clone(),
                message: "a streaming join needs at least one equality between the two \
                          sides (a cross join would keep unbounded state)"
                    .into(),
            });
        }
        // A temporal join's marker (see `temporal.rs`); AS OF a processing-time column
        // joins as a regular join.
        let mut condition = j.filter.clone();
        if let Some(f) = &j.filter
            && let Some(marker) = as_of_marker(f, j.left.schema(), j.right.schema(), location)?
        {
            let probe = column_name(&j.left, marker.time[0]);
            let proctime = defining_expr(&j.left, probe).is_some_and(|e| {
                e.exists(|x| {
                    Ok(matches!(x, Expr::ScalarFunction(f) if f.func.name() == "proctime"))
                })
                .unwrap_or(false)
            });
            if !proctime {
                return self.temporal_join(j, kind, marker, location).await;
            }
            condition = marker.rest;
        }
        let left = self.lower(&j.left, location).await?;
        let right = self.lower(&j.right, location).await?;
        let lu = updating_of(&left);
        let ru = updating_of(&right);
        let (lexprs, rexprs): (Vec<Expr>, Vec<Expr>) = j.on.iter().cloned().unzip();
        let (left, lkeys, lschema) = self.keyed(left, j.left.schema(), &lexprs, location)?;
        let (right, rkeys, rschema) = self.keyed(right, j.right.schema(), &rexprs, location)?;
        let key_types = key_types(&lschema, &lkeys, &rschema, &rkeys, location)?;
        let both = j
            .left
            .schema()
            .join(j.right.schema())
            .map_err(|e| crate::planner::plan_error(e, location))?;
        let filter = self.physical_opt(condition.as_ref(), &both, location)?;
        let widths = [
            j.left.schema().fields().len(),
            j.right.schema().fields().len(),
        ];
        let updating = lu.clone().or(ru.clone()).or_else(|| {
            kind.updating()
                .then(|| format!("Join ({:?} outer join)", j.join_type))
        });
        let joined = arrow_schema(&both);
        let output = with_kind(arrow_schema(&j.schema), updating.is_some());
        let on: Vec<String> = j.on.iter().map(|(l, r)| format!("{l} = {r}")).collect();
        let description = format!(
            "{:?} join on [{}]{}",
            j.join_type,
            on.join(", "),
            condition
                .as_ref()
                .map(|f| format!(" where {f}"))
                .unwrap_or_default()
        );
        let ttl = state_ttl(self.catalog, location)?;
        let interval = condition
            .as_ref()
            .and_then(|f| interval_bounds(f, j.left.schema(), j.right.schema()));
        // A window join (equal window_end on both sides): a window's rows leave the
        // state once the watermark passes its end, when no more rows of it can come.
        let window_end = lkeys.iter().zip(&rkeys).find(|(l, r)| {
            let (lf, rf) = (lschema.field(**l), rschema.field(**r));
            lf.name() == "window_end"
                && rf.name() == "window_end"
                && matches!(lf.data_type(), DataType::Timestamp(..))
        });
        let (interval, window_join) = match (interval, window_end) {
            (None, Some((l, r))) => (
                Some(IntervalBounds {
                    time: [*l, *r],
                    lo: 1,
                    hi: -1,
                }),
                true,
            ),
            (i, _) => (i, false),
        };
        let description = match &interval {
            Some(_) if window_join => format!(
                "{description}, window join: a window's rows leave the state when the \
                 watermark passes its end"
            ),
            Some(b) => format!(
                "{description}, interval join: {} ms <= left - right time <= {} ms (state \
                 cleaned by the watermark)",
                b.lo, b.hi
            ),
            None => description,
        };
        let op = StreamingJoin::new(
            kind,
            [lkeys.clone(), rkeys.clone()],
            widths,
            filter,
            joined,
            output,
            key_types,
            description,
        )
        .with_ttl(ttl);
        let op = match interval {
            Some(b) => op.with_interval(b),
            None => op,
        };
        let kind = NodeKind::Operator(Arc::new(op));
        Ok(vec![self.join_node(
            kind,
            [(&left, lkeys), (&right, rkeys)],
            updating,
        )])
    }

    /// An event-time temporal join: probe rows (left) join the version of their key in
    /// the versioned table (right) valid at their time. Versions are keyed by the
    /// table's primary key (every key column must be equated); other equalities and
    /// conditions are checked on the joined row. Conditions on the versioned table alone,
    /// which DataFusion pushes below the join, are lifted back: they must judge the
    /// chosen version, not filter versions before the choice.
    async fn temporal_join(
        &mut self,
        j: &Join,
        kind: JoinKind,
        marker: AsOf,
        location: &Location,
    ) -> Result<Vec<Stream>> {
        let unsupported = |message: String| Error::Unsupported {
            location: location.clone(),
            message,
        };
        if !matches!(kind, JoinKind::Inner | JoinKind::Left) {
            return Err(unsupported(format!(
                "a temporal join (FOR SYSTEM_TIME AS OF) is an INNER or LEFT join, not {:?}",
                j.join_type
            )));
        }
        let (right_plan, version_preds) = lift_version_filters(&j.right);
        let base = right_plan.schema();
        let index_in_base = |name: &str| {
            base.fields()
                .iter()
                .position(|f| f.name() == name)
                .ok_or_else(|| {
                    unsupported(format!(
                        "temporal join: column '{name}' of the versioned table is ambiguous"
                    ))
                })
        };
        let right_values: Vec<usize> = j
            .right
            .schema()
            .fields()
            .iter()
            .map(|f| index_in_base(f.name()))
            .collect::<Result<_>>()?;
        // Equalities on the primary key key the versions; the others are conditions.
        let mut lexprs = Vec::new();
        let mut rexprs = Vec::new();
        let mut conditions: Vec<Expr> = marker.rest.into_iter().collect();
        for (l, r) in &j.on {
            match r {
                Expr::Column(c)
                    if marker.key.contains(&c.name)
                        && !rexprs.contains(&Expr::Column(Column::new_unqualified(&c.name))) =>
                {
                    lexprs.push(l.clone());
                    rexprs.push(Expr::Column(Column::new_unqualified(&c.name)));
                }
                _ => conditions.push(l.clone().eq(r.clone())),
            }
        }
        for k in &marker.key {
            if !rexprs.contains(&Expr::Column(Column::new_unqualified(k))) {
                return Err(unsupported(format!(
                    "a temporal join must equate every primary key column of the versioned \
                     table in ON; '{k}' is missing (e.g. ON … AND o.{k} = r.{k})"
                )));
            }
        }
        let left = self.lower(&j.left, location).await?;
        if let Some(u) = updating_of(&left) {
            return Err(unsupported(format!(
                "the probe side of a temporal join must be append-only, but {u} makes it \
                 updating"
            )));
        }
        let right = self.lower(&right_plan, location).await?;
        let (left, lkeys, lschema) = self.keyed(left, j.left.schema(), &lexprs, location)?;
        let (right, rkeys, rschema) = self.keyed(right, base, &rexprs, location)?;
        let key_types = key_types(&lschema, &lkeys, &rschema, &rkeys, location)?;
        let both = j
            .left
            .schema()
            .join(j.right.schema())
            .map_err(|e| crate::planner::plan_error(e, location))?;
        let condition = datafusion::logical_expr::utils::conjunction(conditions);
        let filter = self.physical_opt(condition.as_ref(), &both, location)?;
        let version_filter = self.physical_opt(
            datafusion::logical_expr::utils::conjunction(version_preds).as_ref(),
            base,
            location,
        )?;
        let on: Vec<String> = lexprs
            .iter()
            .zip(&rexprs)
            .map(|(l, r)| format!("{l} = {r}"))
            .collect();
        let description = format!(
            "{:?} temporal join on [{}] as of {} (version time {}){}",
            j.join_type,
            on.join(", "),
            j.left.schema().field(marker.time[0]).name(),
            j.right.schema().field(marker.time[1]).name(),
            condition
                .as_ref()
                .map(|f| format!(" where {f}"))
                .unwrap_or_default()
        );
        let op = TemporalJoin::new(
            kind == JoinKind::Left,
            [lkeys.clone(), rkeys.clone()],
            j.left.schema().fields().len(),
            right_values.clone(),
            [marker.time[0], right_values[marker.time[1]]],
            filter,
            version_filter,
            arrow_schema(&j.schema),
            key_types,
            description,
        );
        let kind = NodeKind::Operator(Arc::new(op));
        Ok(vec![self.join_node(
            kind,
            [(&left, lkeys), (&right, rkeys)],
            None,
        )])
    }

    /// A lookup join: each probe row (left) joins the rows the lookup table (right)
    /// holds for its key when it arrives, asked of the table's connector (see
    /// `sluice_operators::join::LookupJoin`). Equalities between a probe expression and
    /// a column of the table are the keys; conditions on the table alone (which
    /// DataFusion pushes below the join) judge its rows; the rest judges joined rows.
    async fn lookup_join(
        &mut self,
        j: &Join,
        kind: JoinKind,
        rest: Option<Expr>,
        location: &Location,
    ) -> Result<Vec<Stream>> {
        let unsupported = |message: String| Error::Unsupported {
            location: location.clone(),
            message,
        };
        if !matches!(kind, JoinKind::Inner | JoinKind::Left) {
            return Err(unsupported(format!(
                "a lookup join (FOR SYSTEM_TIME AS OF) is an INNER or LEFT join, not {:?}",
                j.join_type
            )));
        }
        let (right_plan, table_preds) = lift_version_filters(&j.right);
        let mut node = &right_plan;
        let scan = loop {
            match node {
                LogicalPlan::SubqueryAlias(a) => node = &a.input,
                LogicalPlan::Projection(p)
                    if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) =>
                {
                    node = &p.input
                }
                LogicalPlan::TableScan(t) => break t,
                _ => {
                    return Err(unsupported(
                        "the table joined FOR SYSTEM_TIME AS OF for a lookup must be the \
                         lookup table itself, not a view or subquery over it"
                            .into(),
                    ));
                }
            }
        };
        let Some((table, full_schema)) = scan_table(scan) else {
            return Err(unsupported(format!(
                "'{}' is not a connector table",
                scan.table_name
            )));
        };
        let def = self
            .catalog
            .tables
            .get(&table)
            .ok_or_else(|| Error::Internal {
                location: location.clone(),
                message: format!("table '{table}' missing from the catalog"),
            })?;
        let right_values: Vec<usize> = j
            .right
            .schema()
            .fields()
            .iter()
            .map(|f| {
                full_schema.index_of(f.name()).map_err(|_| {
                    unsupported(format!(
                        "column '{}' of lookup table '{table}' is computed; a lookup join \
                         reads physical columns only",
                        f.name()
                    ))
                })
            })
            .collect::<Result<_>>()?;
        // Equalities between the probe side and a column of the table are the keys.
        let mut keys: Vec<String> = Vec::new();
        let mut probe: Vec<Expr> = Vec::new();
        let mut conditions: Vec<Expr> = rest.into_iter().collect();
        for (l, r) in &j.on {
            match r {
                Expr::Column(c)
                    if full_schema.index_of(&c.name).is_ok() && !keys.contains(&c.name) =>
                {
                    keys.push(c.name.clone());
                    probe.push(l.clone());
                }
                _ => conditions.push(l.clone().eq(r.clone())),
            }
        }
        if keys.is_empty() {
            return Err(unsupported(format!(
                "a lookup join needs ON with an equality between the probe side and a column \
                 of '{table}' (the key it is looked up by), e.g. ON o.id = {table}.id"
            )));
        }
        let left = self.lower(&j.left, location).await?;
        if let Some(u) = updating_of(&left) {
            return Err(unsupported(format!(
                "the probe side of a lookup join must be append-only, but {u} makes it updating"
            )));
        }
        let mut options = resolve_options(def)?;
        options.remove(LATE_ROWS_OPTION);
        options.remove("scan.watermark.idle-timeout");
        let ct = ConnectorTable {
            name: def.name.clone(),
            schema: full_schema.clone(),
            options,
            primary_key: def.primary_key.clone(),
            metadata: Vec::new(),
        };
        let factory =
            lookup_for(&ct, &keys).map_err(|source| Error::connector(&def.location, source))?;
        let probe_keys = self.physical(&probe, j.left.schema(), location)?;
        let table_schema = DFSchema::try_from(full_schema.as_ref().clone())
            .map_err(|e| crate::planner::plan_error(e, location))?;
        let right_filter = self.physical_opt(
            datafusion::logical_expr::utils::conjunction(table_preds).as_ref(),
            &table_schema,
            location,
        )?;
        let condition = datafusion::logical_expr::utils::conjunction(conditions);
        let filter = self.physical_opt(condition.as_ref(), &j.schema, location)?;
        let on: Vec<String> = probe
            .iter()
            .zip(&keys)
            .map(|(l, r)| format!("{l} = {table}.{r}"))
            .collect();
        let description = format!(
            "{:?} lookup join on [{}]{}",
            j.join_type,
            on.join(", "),
            condition
                .as_ref()
                .map(|f| format!(" where {f}"))
                .unwrap_or_default()
        );
        let op = LookupJoin::new(
            factory,
            kind == JoinKind::Left,
            probe_keys,
            right_values,
            right_filter,
            filter,
            arrow_schema(&j.schema),
            description,
        );
        Ok(vec![self.operator(NodeKind::Operator(Arc::new(op)), &left)])
    }

    /// Adds a two-input operator whose inputs are hashed by their keys.
    fn join_node(
        &mut self,
        kind: NodeKind,
        inputs: [(&[Stream], Vec<usize>); 2],
        updating: Option<String>,
    ) -> Stream {
        let node = self.graph.add_node(kind, self.workers);
        for (i, (streams, keys)) in inputs.into_iter().enumerate() {
            for s in streams {
                self.graph
                    .connect(s.node, node, EdgeKind::Hash(keys.clone()), i);
            }
        }
        Stream {
            node,
            parallelism: self.workers,
            updating,
        }
    }

    /// `WHERE rn <= N` over `ROW_NUMBER() OVER (PARTITION BY … ORDER BY …) AS rn`
    /// (through projections): a Top-N operator (deduplication for N = 1), followed by
    /// the projections. `None` when the filter is anything else.
    async fn top_n(&mut self, f: &Filter_, location: &Location) -> Result<Option<Vec<Stream>>> {
        let Some((column, limit)) = rank_limit(&f.predicate) else {
            return Ok(None);
        };
        let mut name = column;
        let mut projections: Vec<&datafusion::logical_expr::Projection> = Vec::new();
        let mut node = f.input.as_ref();
        let window = loop {
            match node {
                LogicalPlan::Projection(p) => {
                    let Some(i) = p.schema.fields().iter().position(|f| *f.name() == name) else {
                        return Ok(None);
                    };
                    match p.expr[i].clone().unalias_nested().data {
                        Expr::Column(c) => name = c.name,
                        _ => return Ok(None),
                    }
                    projections.push(p);
                    node = &p.input;
                }
                LogicalPlan::SubqueryAlias(a) => node = &a.input,
                LogicalPlan::Window(w) => break w,
                _ => return Ok(None),
            }
        };
        let width = window.input.schema().fields().len();
        if window.window_expr.len() != 1 || window.schema.field(width).name() != &name {
            return Ok(None);
        }
        let Expr::WindowFunction(wf) = window.window_expr[0].clone().unalias_nested().data else {
            return Ok(None);
        };
        if wf.fun.name() != "row_number" {
            return Ok(None);
        }
        if limit == 0 {
            return Ok(None);
        }
        let inputs = self.lower(&window.input, location).await?;
        if let Some(op) = updating_of(&inputs) {
            return Err(Error::Unsupported {
                location: location.clone(),
                message: format!(
                    "ROW_NUMBER Top-N over an updating input ({op}) is not supported yet"
                ),
            });
        }
        let (inputs, keys, ext) = self.keyed(
            inputs,
            window.input.schema(),
            &wf.params.partition_by,
            location,
        )?;
        let mut order = Vec::new();
        for s in &wf.params.order_by {
            let expr = self.physical(std::slice::from_ref(&s.expr), &ext, location)?[0].clone();
            order.push(SortKey {
                expr,
                options: datafusion::arrow::compute::SortOptions {
                    descending: !s.asc,
                    nulls_first: s.nulls_first,
                },
            });
        }
        // Partitioned by a window table function's window_start and window_end: a window
        // Top-N, emitted once per window (append-only).
        let partition_column = |name: &str| {
            wf.params
                .partition_by
                .iter()
                .zip(&keys)
                .find_map(|(e, k)| matches!(e, Expr::Column(c) if c.name == name).then_some(*k))
        };
        let window_end =
            partition_column("window_end").filter(|_| partition_column("window_start").is_some());
        let (kind, updating) = match window_end {
            Some(end) => {
                let output = arrow_schema(&window.schema);
                let op = WindowTopN::new(keys.clone(), order, limit, width, end, output);
                (NodeKind::Operator(Arc::new(op)), None)
            }
            None => {
                let output = with_kind(arrow_schema(&window.schema), true);
                let op = TopN::new(keys.clone(), order, limit, width, output);
                let what = if limit == 1 {
                    "Deduplicate (ROW_NUMBER = 1)".to_string()
                } else {
                    format!("TopN (ROW_NUMBER <= {limit})")
                };
                (NodeKind::Operator(Arc::new(op)), Some(what))
            }
        };
        let changelog = updating.is_some();
        let mut stream = self.keyed_operator(kind, &inputs, &keys, updating);
        for p in projections.into_iter().rev() {
            let mut exprs = self.physical(&p.expr, p.input.schema(), location)?;
            if changelog {
                let at = p.input.schema().fields().len();
                exprs.push(Arc::new(
                    datafusion::physical_expr::expressions::Column::new(ROW_KIND_COLUMN, at),
                ));
            }
            let schema = with_kind(arrow_schema(&p.schema), changelog);
            let op = Projection::new(exprs, schema);
            stream = self.operator(NodeKind::Operator(Arc::new(op)), &[stream]);
        }
        Ok(Some(vec![stream]))
    }

    /// `agg(…) OVER (PARTITION BY … ORDER BY time [ROWS|RANGE BETWEEN … PRECEDING AND
    /// CURRENT ROW])`: an OVER aggregation on event time.
    async fn over(
        &mut self,
        w: &datafusion::logical_expr::Window,
        location: &Location,
    ) -> Result<Vec<Stream>> {
        use datafusion::logical_expr::{
            WindowFrameBound, WindowFrameUnits, WindowFunctionDefinition,
        };
        let refuse = |why: &str| Error::Unsupported {
            location: location.clone(),
            message: format!("this OVER window is not supported: {why}"),
        };
        let mut funcs = Vec::new();
        for e in &w.window_expr {
            let Expr::WindowFunction(wf) = e.clone().unalias_nested().data else {
                return Err(refuse("not a window function"));
            };
            funcs.push(*wf);
        }
        let Some(first) = funcs.first() else {
            return Err(refuse("no function"));
        };
        let params = &first.params;
        if funcs.iter().any(|f| {
            f.params.partition_by != params.partition_by
                || f.params.order_by != params.order_by
                || f.params.window_frame != params.window_frame
        }) {
            return Err(refuse(
                "all OVER aggregates of one SELECT must have the same PARTITION BY, ORDER BY \
                 and frame (as in Flink)",
            ));
        }
        let [order] = params.order_by.as_slice() else {
            return Err(refuse("ORDER BY must be exactly one time column"));
        };
        if !order.asc {
            return Err(refuse("ORDER BY must be ascending time"));
        }
        let Expr::Column(time_col) = &order.expr else {
            return Err(refuse("ORDER BY must name a time column"));
        };
        let frame = &params.window_frame;
        if !matches!(frame.end_bound, WindowFrameBound::CurrentRow) {
            return Err(refuse("the frame must end at CURRENT ROW"));
        }
        let start = match &frame.start_bound {
            WindowFrameBound::Preceding(v) if v.is_null() => None,
            WindowFrameBound::Preceding(v) => Some(v.clone()),
            _ => {
                return Err(refuse(
                    "the frame must start at n PRECEDING or UNBOUNDED PRECEDING",
                ));
            }
        };
        let over_frame = match frame.units {
            WindowFrameUnits::Rows => OverFrame::Rows(match start {
                None => None,
                Some(v) => Some(
                    match v.cast_to(&datafusion::arrow::datatypes::DataType::UInt64) {
                        Ok(datafusion::common::ScalarValue::UInt64(Some(n))) => n,
                        _ => return Err(refuse("ROWS n PRECEDING needs a constant n")),
                    },
                ),
            }),
            WindowFrameUnits::Range => OverFrame::Range(match start {
                None => None,
                Some(v) => Some(interval_millis(&v).ok_or_else(|| {
                    refuse("RANGE BETWEEN needs an INTERVAL … PRECEDING over a time column")
                })?),
            }),
            WindowFrameUnits::Groups => return Err(refuse("GROUPS frames")),
        };
        let inputs = self.lower(&w.input, location).await?;
        if let Some(op) = updating_of(&inputs) {
            return Err(refuse(&format!("its input is updating ({op})")));
        }
        let width = w.input.schema().fields().len();
        let (inputs, keys, ext) =
            self.keyed(inputs, w.input.schema(), &params.partition_by, location)?;
        let time = ext
            .index_of_column(time_col)
            .map_err(|e| crate::planner::plan_error(e, location))?;
        let physical_input = arrow_schema(&ext);
        let mut aggs = Vec::new();
        let mut filters = Vec::new();
        for (f, e) in funcs.iter().zip(&w.window_expr) {
            let WindowFunctionDefinition::AggregateUDF(udaf) = &f.fun else {
                return Err(refuse(&format!(
                    "{} is not an aggregate function (ranking functions other than \
                     ROW_NUMBER … <= N are not supported yet)",
                    f.fun.name()
                )));
            };
            let args = self.physical(&f.params.args, &ext, location)?;
            let agg = AggregateExprBuilder::new(udaf.clone(), args)
                .schema(physical_input.clone())
                .alias(e.schema_name().to_string())
                .with_distinct(f.params.distinct)
                .build()
                .map_err(|e| crate::planner::plan_error(e, location))?;
            aggs.push(Arc::new(agg));
            filters.push(match &f.params.filter {
                Some(x) => Some(self.physical(std::slice::from_ref(x), &ext, location)?[0].clone()),
                None => None,
            });
        }
        let output = arrow_schema(&w.schema);
        let op = OverAggregate::new(keys.clone(), time, aggs, filters, over_frame, width, output);
        let kind = NodeKind::Operator(Arc::new(op));
        Ok(vec![self.keyed_operator(kind, &inputs, &keys, None)])
    }

    /// Lowers a plan; returns the streams whose union is the plan's output.
    pub fn lower<'b>(
        &'b mut self,
        plan: &'b LogicalPlan,
        location: &'b Location,
    ) -> BoxFuture<'b, Result<Vec<Stream>>> {
        Box::pin(async move {
            if !has_table_scan(plan) {
                return self.constant(plan, location).await;
            }
            match plan {
                LogicalPlan::TableScan(scan) => self.table_scan(scan, location),
                LogicalPlan::Projection(p) => {
                    let inputs = self.lower(&p.input, location).await?;
                    let mut exprs = self.physical(&p.expr, p.input.schema(), location)?;
                    let updating = updating_of(&inputs).is_some();
                    if updating {
                        let at = p.input.schema().fields().len();
                        exprs.push(Arc::new(
                            datafusion::physical_expr::expressions::Column::new(
                                ROW_KIND_COLUMN,
                                at,
                            ),
                        ));
                    }
                    let schema = with_kind(arrow_schema(&p.schema), updating);
                    let op = Projection::new(exprs, schema);
                    Ok(vec![
                        self.operator(NodeKind::Operator(Arc::new(op)), &inputs),
                    ])
                }
                LogicalPlan::Aggregate(agg) => self.aggregate(agg, location).await,
                LogicalPlan::Join(j) => self.join(j, location).await,
                LogicalPlan::Window(w) => self.over(w, location).await,
                LogicalPlan::Unnest(u) => {
                    let inputs = self.lower(&u.input, location).await?;
                    let straight = u
                        .dependency_indices
                        .iter()
                        .enumerate()
                        .all(|(i, d)| i == *d);
                    let [(column, list)] = u.list_type_columns.as_slice() else {
                        return Err(unsupported(plan, location));
                    };
                    if !straight || list.depth != 1 || !u.struct_type_columns.is_empty() {
                        return Err(unsupported(plan, location));
                    }
                    let updating = updating_of(&inputs).is_some();
                    let schema = with_kind(arrow_schema(&u.schema), updating);
                    let op = Unnest::new(*column, schema);
                    Ok(vec![
                        self.operator(NodeKind::Operator(Arc::new(op)), &inputs),
                    ])
                }
                LogicalPlan::Filter(f) => {
                    if let Some(streams) = self.top_n(f, location).await? {
                        return Ok(streams);
                    }
                    let inputs = self.lower(&f.input, location).await?;
                    let pred = self.physical(
                        std::slice::from_ref(&f.predicate),
                        f.input.schema(),
                        location,
                    )?;
                    let updating = updating_of(&inputs).is_some();
                    let op = Filter::new(
                        pred[0].clone(),
                        with_kind(arrow_schema(f.input.schema()), updating),
                    );
                    Ok(vec![
                        self.operator(NodeKind::Operator(Arc::new(op)), &inputs),
                    ])
                }
                LogicalPlan::SubqueryAlias(a) => self.lower(&a.input, location).await,
                LogicalPlan::Union(u) => {
                    let mut out = Vec::new();
                    for input in &u.inputs {
                        out.extend(self.lower(input, location).await?);
                    }
                    Ok(out)
                }
                other => Err(unsupported(other, location)),
            }
        })
    }

    /// The physical form of an optional expression (a condition that may be absent).
    fn physical_opt(
        &self,
        expr: Option<&Expr>,
        schema: &DFSchema,
        location: &Location,
    ) -> Result<Option<Arc<dyn PhysicalExpr>>> {
        match expr {
            Some(e) => Ok(self
                .physical(std::slice::from_ref(e), schema, location)?
                .pop()),
            None => Ok(None),
        }
    }

    fn physical(
        &self,
        exprs: &[Expr],
        schema: &DFSchema,
        location: &Location,
    ) -> Result<Vec<Arc<dyn PhysicalExpr>>> {
        exprs
            .iter()
            .map(|e| {
                create_physical_expr(e, schema, &self.props, &Default::default())
                    .map_err(|e| crate::planner::plan_error(e, location))
            })
            .collect()
    }

    /// Adds an operator fed by `inputs`; forward edges where parallelism matches.
    fn operator(&mut self, kind: NodeKind, inputs: &[Stream]) -> Stream {
        let parallelism = inputs
            .iter()
            .map(|s| s.parallelism)
            .max()
            .unwrap_or(self.workers);
        let node = self.graph.add_node(kind, parallelism);
        for s in inputs {
            let edge = if s.parallelism == parallelism {
                EdgeKind::Forward
            } else {
                EdgeKind::Rebalance
            };
            self.graph.connect(s.node, node, edge, 0);
        }
        Stream {
            node,
            parallelism,
            updating: updating_of(inputs),
        }
    }

    fn table_scan(&mut self, scan: &TableScan, location: &Location) -> Result<Vec<Stream>> {
        let Some((table, full_schema)) = scan_table(scan) else {
            return Err(Error::Internal {
                location: location.clone(),
                message: format!("scan of '{}' is not a connector table", scan.table_name),
            });
        };
        if scan.fetch.is_some() || !scan.filters.is_empty() {
            return Err(Error::Internal {
                location: location.clone(),
                message: "a scan with pushed-down limit or filters".into(),
            });
        }
        let source = self.source(&table, &full_schema, location)?;
        let changelog = self.sources.get(&table).and_then(|s| s.changelog.clone());
        let wanted: Vec<usize> = scan
            .projection
            .clone()
            .unwrap_or_else(|| (0..full_schema.fields().len()).collect());
        let mut stream = Stream::append(source.0, self.workers);
        stream.updating = changelog.clone();
        if wanted == source.1 {
            return Ok(vec![stream]);
        }
        // Select the scan's columns out of what the source reads.
        let source_schema = full_schema
            .project(&source.1)
            .map_err(|e| Error::Internal {
                location: location.clone(),
                message: e.to_string(),
            })?;
        let mut exprs: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
        for idx in &wanted {
            let pos = source.1.iter().position(|c| c == idx).unwrap_or(0);
            let name = source_schema.field(pos).name().clone();
            exprs.push(Arc::new(
                datafusion::physical_expr::expressions::Column::new(&name, pos),
            ));
        }
        let out_schema = Arc::new(full_schema.project(&wanted).map_err(|e| Error::Internal {
            location: location.clone(),
            message: e.to_string(),
        })?);
        if changelog.is_some() {
            exprs.push(Arc::new(
                datafusion::physical_expr::expressions::Column::new(
                    ROW_KIND_COLUMN,
                    source_schema.fields().len(),
                ),
            ));
        }
        let op = Projection::new(exprs, with_kind(out_schema, changelog.is_some()));
        Ok(vec![
            self.operator(NodeKind::Operator(Arc::new(op)), &[stream]),
        ])
    }

    /// The (shared) source node of `table` and the columns it reads.
    fn source(
        &mut self,
        table: &str,
        full_schema: &SchemaRef,
        location: &Location,
    ) -> Result<(NodeId, Vec<usize>)> {
        if let Some(s) = self.sources.get(table) {
            return Ok((s.node, s.columns.clone()));
        }
        let def = self
            .catalog
            .tables
            .get(table)
            .ok_or_else(|| Error::Internal {
                location: location.clone(),
                message: format!("table '{table}' missing from the catalog"),
            })?;
        let mut options = resolve_options(def)?;
        let late_table = options.remove(LATE_ROWS_OPTION);
        if late_table.is_some() && !self.watermarks.contains_key(table) {
            return Err(Error::sql(
                &def.location,
                format!(
                    "table '{table}': '{LATE_ROWS_OPTION}' needs a WATERMARK FOR declaration \
                     (lateness is measured against the watermark)"
                ),
            ));
        }
        let idle_timeout = match options.remove("scan.watermark.idle-timeout").or_else(|| {
            self.catalog
                .settings
                .get("table.exec.source.idle-timeout")
                .cloned()
        }) {
            Some(v) => {
                let d = parse_duration(&v).map_err(|e| {
                    Error::sql(
                        &def.location,
                        format!("'scan.watermark.idle-timeout' = '{v}': {e}"),
                    )
                })?;
                (!d.is_zero()).then_some(d)
            }
            None => None,
        };
        let columns: Vec<usize> = if supports_projection(&options) {
            self.needed
                .get(table)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_else(|| (0..full_schema.fields().len()).collect())
        } else {
            (0..full_schema.fields().len()).collect()
        };
        let schema = Arc::new(full_schema.project(&columns).map_err(|e| Error::Internal {
            location: location.clone(),
            message: e.to_string(),
        })?);
        let ct = ConnectorTable {
            name: def.name.clone(),
            schema: schema.clone(),
            options,
            primary_key: def.primary_key.clone(),
            metadata: metadata_of(def, false),
        };
        let factory = source_for(&ct).map_err(|source| Error::connector(&def.location, source))?;
        let changelog = factory
            .changelog()
            .then(|| format!("the changelog source '{table}'"));
        let upsert_key = factory.upsert_key();
        let mut node = self.graph.add_node(NodeKind::Source(factory), self.workers);
        if let Some((expr, rowtime, text)) = self.watermarks.get(table).cloned() {
            let df_schema = DFSchema::try_from(ct.schema.as_ref().clone())
                .map_err(|e| crate::planner::plan_error(e, &def.location))?;
            // `x - INTERVAL c`: the maximum of x, minus c (once per batch).
            let (wm_expr, delay) = if let Expr::BinaryExpr(b) = &expr
                && b.op == datafusion::logical_expr::Operator::Minus
                && let Expr::Literal(v, _) = b.right.as_ref()
                && let Some(ms) = interval_millis(v)
            {
                (b.left.as_ref().clone(), ms)
            } else {
                (expr.clone(), 0)
            };
            let physical =
                create_physical_expr(&wm_expr, &df_schema, &self.props, &Default::default())
                    .map_err(|e| crate::planner::plan_error(e, &def.location))?;
            let rowtime =
                create_physical_expr(&rowtime, &df_schema, &self.props, &Default::default())
                    .map_err(|e| crate::planner::plan_error(e, &def.location))?;
            let mut assigner =
                WatermarkAssigner::new(physical, ct.schema.clone(), idle_timeout, text)
                    .with_delay(delay);
            if let Some(late) = &late_table {
                // Two assigners over the same rows make the same decisions: one drops
                // the late rows, the other keeps only them, for the side output.
                let side = assigner
                    .clone()
                    .with_late_rows(rowtime.clone(), LateRows::Only);
                let side_node = self
                    .graph
                    .add_node(NodeKind::Operator(Arc::new(side)), self.workers);
                self.graph.connect(node, side_node, EdgeKind::Forward, 0);
                self.late_outputs.push(LateOutput {
                    table: late.clone(),
                    stream: Stream::append(side_node, self.workers),
                    schema: ct.schema.clone(),
                    location: def.location.clone(),
                });
                assigner = assigner.with_late_rows(rowtime, LateRows::Drop);
            }
            let wm = self
                .graph
                .add_node(NodeKind::Operator(Arc::new(assigner)), self.workers);
            self.graph.connect(node, wm, EdgeKind::Forward, 0);
            node = wm;
        }
        // An upsert source's rows become a full changelog, by key (after the watermarks,
        // which are per split).
        if let Some(key) = upsert_key {
            let mut fields: Vec<_> = ct.schema.fields().iter().cloned().collect();
            fields.push(Arc::new(row_kind_field()));
            let op = ChangelogNormalize::new(key.clone(), Arc::new(Schema::new(fields)));
            let input = Stream::append(node, self.workers);
            node = self
                .keyed_operator(
                    NodeKind::Operator(Arc::new(op)),
                    &[input],
                    &key,
                    changelog.clone(),
                )
                .node;
        }
        self.sources.insert(
            table.to_string(),
            SourceNode {
                node,
                columns: columns.clone(),
                changelog,
            },
        );
        Ok((node, columns))
    }

    /// A subtree that reads no table: computed once by DataFusion, emitted by a bounded
    /// source of parallelism 1.
    async fn constant(&mut self, plan: &LogicalPlan, location: &Location) -> Result<Vec<Stream>> {
        let df = self
            .catalog
            .ctx
            .execute_logical_plan(plan.clone())
            .await
            .map_err(|e| crate::planner::plan_error(e, location))?;
        let batches = df
            .collect()
            .await
            .map_err(|e| crate::planner::plan_error(e, location))?;
        let schema = arrow_schema(plan.schema());
        let factory = ValuesSourceFactory::new("VALUES", schema, batches);
        let node = self.graph.add_node(NodeKind::Source(Arc::new(factory)), 1);
        Ok(vec![Stream::append(node, 1)])
    }

    /// Connects a side output of late rows to its table's sink: the table's columns are
    /// taken from the source's by name.
    pub fn late_sink(
        &mut self,
        late: &LateOutput,
        factory: Arc<dyn SinkFactory>,
        sink_schema: &SchemaRef,
        key: Vec<usize>,
    ) -> Result<()> {
        let mut exprs: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
        for f in sink_schema.fields() {
            let Ok(i) = late.schema.index_of(f.name()) else {
                return Err(Error::sql(
                    &late.location,
                    format!(
                        "'{LATE_ROWS_OPTION}' = '{}': that table's column '{}' is not a \
                         column of the source table",
                        late.table,
                        f.name()
                    ),
                ));
            };
            let col: Arc<dyn PhysicalExpr> = Arc::new(
                datafusion::physical_expr::expressions::Column::new(f.name(), i),
            );
            let from = late.schema.field(i).data_type();
            exprs.push(if from == f.data_type() {
                col
            } else {
                Arc::new(datafusion::physical_expr::expressions::CastExpr::new(
                    col,
                    f.data_type().clone(),
                    None,
                ))
            });
        }
        let op = Projection::new(exprs, sink_schema.clone());
        let s = self.operator(
            NodeKind::Operator(Arc::new(op)),
            std::slice::from_ref(&late.stream),
        );
        self.sink(&late.table, factory, key, &[s], &late.location)
    }

    /// The column of `schema` that holds event time, for the event time → emit
    /// latency: a `TIMESTAMP` named `window_time` or `window_end` (a window's
    /// result), or named as the event-time column of a table with a `WATERMARK`.
    fn event_time_column(&self, schema: &Schema) -> Option<usize> {
        let rowtimes: Vec<String> = self
            .watermarks
            .keys()
            .filter_map(|t| self.catalog.tables.get(t)?.watermark.as_ref())
            .map(|w| w.column.clone())
            .collect();
        let is_time = |i: &usize| matches!(schema.field(*i).data_type(), DataType::Timestamp(..));
        let named = |name: &str| {
            schema
                .fields()
                .iter()
                .position(|f| f.name() == name)
                .filter(is_time)
        };
        named("window_time")
            .or_else(|| named("window_end"))
            .or_else(|| rowtimes.iter().find_map(|r| named(r)))
    }

    /// Connects `inputs` to the sink of `table` (created on first use). Rows are hashed
    /// by the primary key when the table has one, so that upserts of one key stay in order.
    pub fn sink(
        &mut self,
        table: &str,
        factory: Arc<dyn SinkFactory>,
        key: Vec<usize>,
        inputs: &[Stream],
        location: &Location,
    ) -> Result<()> {
        if let Some(op) = updating_of(inputs)
            && !factory.accepts_changelog()
        {
            return Err(Error::Unsupported {
                location: location.clone(),
                message: format!(
                    "table '{table}' (sink '{}') only accepts appended rows, but the query \
                     produces updates: {op} makes it an updating (changelog) stream. Write \
                     it to a sink that accepts changes (print, blackhole, or a table with \
                     PRIMARY KEY on an upsert connector), or aggregate over event-time \
                     windows (TUMBLE/HOP/CUMULATE), whose results are final",
                    factory.name()
                ),
            });
        }
        // A keyed sink of an updating query gets upsert semantics: one row per primary
        // key, no `-U`.
        let upserted;
        let schema = inputs
            .first()
            .and_then(|s| self.graph.nodes[s.node.0].schema());
        let event_time = schema.as_deref().and_then(|s| self.event_time_column(s));
        let inputs = match (updating_of(inputs), schema) {
            (Some(_), Some(schema)) if !key.is_empty() => {
                let op = UpsertMaterializer::new(key.clone(), schema);
                let kind = NodeKind::Operator(Arc::new(op));
                upserted = [self.keyed_operator(kind, inputs, &key, Some("upsert".into()))];
                &upserted[..]
            }
            _ => inputs,
        };
        let parallelism = factory.parallelism().unwrap_or_else(|| {
            inputs
                .iter()
                .map(|s| s.parallelism)
                .max()
                .unwrap_or(self.workers)
        });
        let node = *self
            .sinks
            .entry(table.to_string())
            .or_insert_with(|| self.graph.add_node(NodeKind::Sink(factory), parallelism));
        if let Some(c) = event_time {
            self.graph.event_time.insert(node, c);
        }
        let parallelism = self.graph.nodes[node.0].parallelism;
        for s in inputs {
            let edge = if !key.is_empty() && parallelism > 1 {
                EdgeKind::Hash(key.clone())
            } else if s.parallelism == parallelism {
                EdgeKind::Forward
            } else {
                EdgeKind::Rebalance
            };
            self.graph.connect(s.node, node, edge, 0);
        }
        Ok(())
    }
}

/// The table option sending a source's late rows to another table.
pub const LATE_ROWS_OPTION: &str = "scan.watermark.late-rows.table";
/// The setting keeping fired windows open for late rows (Flink's experimental key).
const ALLOW_LATENESS: &str = "table.exec.emit.allow-lateness";

/// `'table.exec.state.ttl'` in ms (unset or 0: state is kept forever).
fn state_ttl(catalog: &Catalog, location: &Location) -> Result<Option<i64>> {
    match catalog.settings.get("table.exec.state.ttl") {
        Some(v) => {
            let d = parse_duration(v).map_err(|e| {
                Error::sql(location, format!("SET 'table.exec.state.ttl' = '{v}': {e}"))
            })?;
            Ok((!d.is_zero()).then_some(d.as_millis() as i64))
        }
        None => Ok(None),
    }
}

/// A join condition's time bounds `lo <= left.t - right.t <= hi` (an interval join),
/// from comparisons such as `l.t BETWEEN r.t - INTERVAL '10' SECOND AND r.t`.
fn interval_bounds(filter: &Expr, left: &DFSchema, right: &DFSchema) -> Option<IntervalBounds> {
    use datafusion::logical_expr::utils::split_conjunction;
    use datafusion::logical_expr::{BinaryExpr, Operator as Op};
    // `column ± interval` as (column, offset in ms).
    fn term(e: &Expr) -> Option<(Column, i64)> {
        match e {
            Expr::Column(c) => Some((c.clone(), 0)),
            Expr::Cast(c) => term(&c.expr),
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (c, o) = term(left)?;
                let Expr::Literal(v, _) = right.as_ref() else {
                    return None;
                };
                let ms = interval_millis(v)?;
                match op {
                    Op::Plus => Some((c, o + ms)),
                    Op::Minus => Some((c, o - ms)),
                    _ => None,
                }
            }
            _ => None,
        }
    }
    let mut comparisons: Vec<(Expr, Op, Expr)> = Vec::new();
    for c in split_conjunction(filter) {
        match c {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                comparisons.push((left.as_ref().clone(), *op, right.as_ref().clone()))
            }
            Expr::Between(b) if !b.negated => {
                comparisons.push((b.expr.as_ref().clone(), Op::GtEq, b.low.as_ref().clone()));
                comparisons.push((b.expr.as_ref().clone(), Op::LtEq, b.high.as_ref().clone()));
            }
            _ => {}
        }
    }
    let (mut lo, mut hi) = (None::<i64>, None::<i64>);
    let mut cols: Option<(Column, Column)> = None;
    for (a, op, b) in comparisons {
        let (Some((ca, oa)), Some((cb, ob))) = (term(&a), term(&b)) else {
            continue;
        };
        // ca + oa OP cb + ob  =>  ca - cb OP ob - oa
        let (l, r, op, k) = if left.has_column(&ca) && right.has_column(&cb) {
            (ca, cb, op, ob - oa)
        } else if right.has_column(&ca) && left.has_column(&cb) {
            (cb, ca, op.swap()?, oa - ob)
        } else {
            continue;
        };
        match &cols {
            Some((l0, r0)) if *l0 != l || *r0 != r => return None,
            _ => cols = Some((l, r)),
        }
        match op {
            Op::GtEq | Op::Gt => lo = Some(lo.map_or(k, |x: i64| x.max(k))),
            Op::LtEq | Op::Lt => hi = Some(hi.map_or(k, |x: i64| x.min(k))),
            Op::Eq => {
                lo = Some(k);
                hi = Some(k);
            }
            _ => {}
        }
    }
    let (l, r) = cols?;
    Some(IntervalBounds {
        time: [
            left.index_of_column(&l).ok()?,
            right.index_of_column(&r).ok()?,
        ],
        lo: lo?,
        hi: hi?,
    })
}

/// An interval constant in milliseconds.
/// A temporal join's marker, `__sluice_as_of(probe_time, version_time, 'key')`.
struct AsOf {
    /// The probe time's column in the left input, the version time's in the right.
    time: [usize; 2],
    /// The versioned table's primary key columns.
    key: Vec<String>,
    /// The rest of the join condition.
    rest: Option<Expr>,
}

/// The rest of a join condition that holds a lookup join's marker (see `temporal.rs`);
/// `None` when it holds none.
fn lookup_marker(filter: &Expr) -> Option<Option<Expr>> {
    let mut found = false;
    let mut rest = Vec::new();
    for e in datafusion::logical_expr::utils::split_conjunction(filter) {
        match e {
            Expr::ScalarFunction(f) if f.func.name() == crate::temporal::LOOKUP => found = true,
            other => rest.push(other.clone()),
        }
    }
    found.then(|| datafusion::logical_expr::utils::conjunction(rest))
}

/// The marker of a temporal join (see `temporal.rs`) split off a join condition.
fn as_of_marker(
    filter: &Expr,
    left: &DFSchema,
    right: &DFSchema,
    location: &Location,
) -> Result<Option<AsOf>> {
    let mut found = None;
    let mut rest = Vec::new();
    for e in datafusion::logical_expr::utils::split_conjunction(filter) {
        match e {
            Expr::ScalarFunction(f) if f.func.name() == crate::temporal::AS_OF => {
                let col = |e: &Expr, schema: &DFSchema| match e {
                    Expr::Column(c) => schema.index_of_column(c).ok(),
                    _ => None,
                };
                let key = match f.args.get(2) {
                    Some(Expr::Literal(v, _)) => v.to_string(),
                    _ => String::new(),
                };
                match (col(&f.args[0], left), col(&f.args[1], right)) {
                    (Some(l), Some(r)) => {
                        found = Some(([l, r], key));
                    }
                    _ => {
                        return Err(Error::Unsupported {
                            location: location.clone(),
                            message: format!(
                                "FOR SYSTEM_TIME AS OF needs a time column of the table on the \
                                 left of the JOIN, not {}",
                                f.args[0]
                            ),
                        });
                    }
                }
            }
            other => rest.push(other.clone()),
        }
    }
    Ok(found.map(|(time, key)| AsOf {
        time,
        key: key
            .split(',')
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect(),
        rest: datafusion::logical_expr::utils::conjunction(rest),
    }))
}

/// The versioned side of a temporal join without the filters DataFusion pushed into it
/// (through aliases and column-only projections), and those filters' predicates (with
/// unqualified columns, resolvable in the returned plan's schema).
fn lift_version_filters(plan: &LogicalPlan) -> (LogicalPlan, Vec<Expr>) {
    let mut preds = Vec::new();
    let mut node = plan;
    let mut base = plan;
    loop {
        match node {
            LogicalPlan::SubqueryAlias(a) => node = &a.input,
            LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
                node = &p.input
            }
            LogicalPlan::Filter(f) => {
                preds.extend(
                    datafusion::logical_expr::utils::split_conjunction(&f.predicate)
                        .into_iter()
                        .cloned(),
                );
                node = &f.input;
                base = node;
            }
            _ => break,
        }
    }
    if preds.is_empty() {
        (plan.clone(), preds)
    } else {
        (base.clone(), preds.into_iter().map(unqualify).collect())
    }
}

/// The key columns' types, which must be the same on both sides of a join.
fn key_types(
    lschema: &DFSchema,
    lkeys: &[usize],
    rschema: &DFSchema,
    rkeys: &[usize],
    location: &Location,
) -> Result<Vec<DataType>> {
    let mut types = Vec::new();
    for (l, r) in lkeys.iter().zip(rkeys) {
        let lt = lschema.field(*l).data_type().clone();
        let rt = rschema.field(*r).data_type().clone();
        if lt != rt {
            return Err(Error::Unsupported {
                location: location.clone(),
                message: format!("join keys of different types ({lt} and {rt}): CAST one side"),
            });
        }
        types.push(lt);
    }
    Ok(types)
}

fn interval_millis(v: &datafusion::common::ScalarValue) -> Option<i64> {
    use datafusion::common::ScalarValue as S;
    match v {
        S::IntervalDayTime(Some(d)) => {
            Some(i64::from(d.days) * 86_400_000 + i64::from(d.milliseconds))
        }
        S::IntervalMonthDayNano(Some(d)) if d.months == 0 => {
            Some(i64::from(d.days) * 86_400_000 + d.nanoseconds / 1_000_000)
        }
        _ => None,
    }
}

/// The name of input column `index` of `plan`.
fn column_name(plan: &LogicalPlan, index: usize) -> String {
    plan.schema()
        .fields()
        .get(index)
        .map(|f| f.name().clone())
        .unwrap_or_default()
}

/// Whether column `name` of `plan` is the `window_end` of a `SESSION` window (defined,
/// through projections, by the session helper function).
fn is_session(plan: &LogicalPlan, name: String) -> bool {
    matches!(defining_expr(plan, name),
        Some(Expr::ScalarFunction(f)) if f.func.name() == "__sluice_session_end")
}

/// The expression that defines column `name` of `plan`: followed through projections
/// (column renames) and other row-preserving nodes to the first computed expression,
/// with the columns it uses resolved the same way.
fn defining_expr(plan: &LogicalPlan, name: String) -> Option<Expr> {
    let mut name = name;
    let mut node = plan;
    loop {
        match node {
            LogicalPlan::Projection(p) => {
                let i = p.schema.fields().iter().position(|f| *f.name() == name)?;
                match p.expr[i].clone().unalias_nested().data {
                    Expr::Column(c) => {
                        name = c.name;
                        node = &p.input;
                    }
                    other => {
                        // Resolve the columns the expression uses below this projection.
                        let input = p.input.clone();
                        return other
                            .transform_up(|e| {
                                Ok(match e {
                                    Expr::Column(c) => {
                                        match defining_expr(&input, c.name.clone()) {
                                            Some(d) => Transformed::yes(d),
                                            None => Transformed::no(Expr::Column(c)),
                                        }
                                    }
                                    o => Transformed::no(o),
                                })
                            })
                            .ok()
                            .map(|t| t.data);
                    }
                }
            }
            LogicalPlan::SubqueryAlias(a) => node = &a.input,
            LogicalPlan::Filter(f) => node = &f.input,
            LogicalPlan::Unnest(u) => node = &u.input,
            _ => return None,
        }
    }
}

/// `rn <= N`, `rn < N`, `rn = 1` (either way round): the column and the limit N.
fn rank_limit(predicate: &Expr) -> Option<(String, usize)> {
    use datafusion::logical_expr::{BinaryExpr, Operator as Op};
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = predicate else {
        return None;
    };
    let lit = |e: &Expr| match e {
        Expr::Literal(v, _) => v
            .clone()
            .cast_to(&datafusion::arrow::datatypes::DataType::Int64)
            .ok()
            .and_then(|v| match v {
                datafusion::common::ScalarValue::Int64(Some(n)) => Some(n),
                _ => None,
            }),
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Literal(v, _) => v
                .clone()
                .cast_to(&datafusion::arrow::datatypes::DataType::Int64)
                .ok()
                .and_then(|v| match v {
                    datafusion::common::ScalarValue::Int64(Some(n)) => Some(n),
                    _ => None,
                }),
            _ => None,
        },
        _ => None,
    };
    let col = |e: &Expr| match e {
        Expr::Column(c) => Some(c.name.clone()),
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Column(c) => Some(c.name.clone()),
            _ => None,
        },
        _ => None,
    };
    let (c, op, n) = match (col(left), lit(right), col(right), lit(left)) {
        (Some(c), Some(n), _, _) => (c, *op, n),
        (_, _, Some(c), Some(n)) => (c, op.swap()?, n),
        _ => return None,
    };
    let limit = match op {
        Op::LtEq => n,
        Op::Lt => n - 1,
        Op::Eq if n == 1 => 1,
        _ => return None,
    };
    usize::try_from(limit).ok().map(|l| (c, l))
}

/// `expr` (over `plan`'s output) rewritten over the columns of the table scan at the
/// bottom of `plan`, inlining projections on the way; `None` past anything else.
fn inline_to_scan(expr: Expr, plan: &LogicalPlan) -> Option<Expr> {
    match plan {
        LogicalPlan::TableScan(_) => Some(unqualify(expr)),
        LogicalPlan::SubqueryAlias(a) => inline_to_scan(unqualify(expr), &a.input),
        LogicalPlan::Projection(p) => {
            let map: HashMap<String, Expr> = p
                .schema
                .fields()
                .iter()
                .zip(&p.expr)
                .map(|(f, e)| (f.name().clone(), e.clone().unalias_nested().data))
                .collect();
            let e = expr
                .transform_up(|e| {
                    Ok(match e {
                        Expr::Column(c) => match map.get(&c.name) {
                            Some(x) => Transformed::yes(x.clone()),
                            None => Transformed::no(Expr::Column(c)),
                        },
                        other => Transformed::no(other),
                    })
                })
                .ok()?
                .data;
            inline_to_scan(e, &p.input)
        }
        _ => None,
    }
}

/// `expr` with every column reference stripped of its table qualifier.
fn unqualify(expr: Expr) -> Expr {
    expr.transform(|e| {
        Ok(match e {
            Expr::Column(c) => Transformed::yes(Expr::Column(Column::new_unqualified(c.name))),
            other => Transformed::no(other),
        })
    })
    .map(|t| t.data)
    .unwrap_or_else(|e| {
        Expr::Literal(
            datafusion::common::ScalarValue::Utf8(Some(e.to_string())),
            None,
        )
    })
}

fn has_table_scan(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply(|p| {
        if matches!(p, LogicalPlan::TableScan(_)) {
            found = true;
            return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    found
}

/// The Arrow schema of a plan node's output (field names unqualified).
pub fn arrow_schema(schema: &DFSchema) -> SchemaRef {
    Arc::new(Schema::new(
        schema.fields().iter().cloned().collect::<Vec<_>>(),
    ))
}

fn unsupported(plan: &LogicalPlan, location: &Location) -> Error {
    let what = match plan {
        LogicalPlan::Aggregate(_) | LogicalPlan::Distinct(_) => {
            "this form of aggregation is not supported in streaming pipelines yet"
        }
        LogicalPlan::Join(_) => {
            "this kind of join is not supported in streaming pipelines yet (supported: \
             inner, left, right and full joins with an equality, and semi/anti joins)"
        }
        LogicalPlan::Unnest(_) => {
            "UNNEST of several columns, of structs or of nested lists is not supported yet"
        }
        LogicalPlan::Sort(_) => {
            "ORDER BY on an unbounded stream is not supported (Flink allows it only on a time attribute)"
        }
        LogicalPlan::Limit(_) => "LIMIT is not supported in streaming pipelines yet",
        LogicalPlan::Window(_) => "OVER windows are not supported yet",
        _ => "this kind of query is not supported in streaming pipelines yet",
    };
    Error::Unsupported {
        location: location.clone(),
        message: format!("{what} (plan node: {})", plan.display()),
    }
}

#[cfg(test)]
mod event_time_tests {
    use crate::pipeline::{Pipeline, PipelineOptions};

    /// Which column of each sink's input is its event time, by the sink's name.
    fn event_time_columns(sql: &str) -> Vec<(String, usize)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let p = rt
            .block_on(Pipeline::plan(sql, &PipelineOptions::default()))
            .expect("plans");
        let mut out: Vec<(String, usize)> = p
            .graph
            .event_time
            .iter()
            .map(|(id, c)| (p.graph.nodes[id.0].name(), *c))
            .collect();
        out.sort();
        out
    }

    /// A window's end, a source's `WATERMARK` column carried through, and nothing for a
    /// sink without either (nor for a same-named column that is not a timestamp).
    #[test]
    fn sinks_find_their_event_time_column() {
        let got = event_time_columns(
            "CREATE TABLE src (k STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
               WITH ('connector' = 'datagen', 'number-of-rows' = '10');
             CREATE TABLE windows (k STRING, n BIGINT, window_end TIMESTAMP(3)) WITH ('connector' = 'blackhole');
             CREATE TABLE passed (ts TIMESTAMP(3), k STRING) WITH ('connector' = 'blackhole');
             CREATE TABLE plain (k STRING, window_end STRING) WITH ('connector' = 'blackhole');
             INSERT INTO windows SELECT k, COUNT(*), window_end
               FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
               GROUP BY k, window_start, window_end;
             INSERT INTO passed SELECT ts, k FROM src;
             INSERT INTO plain SELECT k, 'x' FROM src;",
        );
        let names: Vec<String> = got.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(names[0].contains("passed") && got[0].1 == 0, "{got:?}");
        assert!(names[1].contains("windows") && got[1].1 == 2, "{got:?}");
    }
}
