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

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNode;
use datafusion::datasource::source_as_provider;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::{Expr, LogicalPlan, TableScan};
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_plan::PhysicalExpr;
use futures::future::BoxFuture;
use sluice_connectors::values::ValuesSourceFactory;
use sluice_connectors::{ConnectorTable, connector_for};
use sluice_operators::stateless::{Filter, Projection};
use sluice_runtime::{EdgeKind, NodeId, NodeKind, SinkFactory, StreamGraph};
use sluice_types::Location;

use crate::catalog::{Catalog, ConnectorTableProvider};
use crate::options::resolve_options;
use crate::{Error, Result};

/// An output of a lowered plan: the node producing it and its parallelism.
#[derive(Debug, Clone, Copy)]
pub struct Stream {
    /// The producing node.
    pub node: NodeId,
    /// Its parallelism.
    pub parallelism: usize,
}

struct SourceNode {
    node: NodeId,
    /// Indices (into the table's physical schema) the source reads, ascending.
    columns: Vec<usize>,
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
                    let exprs = self.physical(&p.expr, p.input.schema(), location)?;
                    let schema = arrow_schema(&p.schema);
                    let op = Projection::new(exprs, schema);
                    Ok(vec![
                        self.operator(NodeKind::Operator(Arc::new(op)), &inputs),
                    ])
                }
                LogicalPlan::Filter(f) => {
                    let inputs = self.lower(&f.input, location).await?;
                    let pred = self.physical(
                        std::slice::from_ref(&f.predicate),
                        f.input.schema(),
                        location,
                    )?;
                    let op = Filter::new(pred[0].clone(), arrow_schema(f.input.schema()));
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
        Stream { node, parallelism }
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
        let wanted: Vec<usize> = scan
            .projection
            .clone()
            .unwrap_or_else(|| (0..full_schema.fields().len()).collect());
        let stream = Stream {
            node: source.0,
            parallelism: self.workers,
        };
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
        let op = Projection::new(exprs, out_schema);
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
        let options = resolve_options(def)?;
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
        let connector = def.connector().unwrap_or_default();
        let ct = ConnectorTable {
            name: def.name.clone(),
            schema,
            options,
            primary_key: def.primary_key.clone(),
        };
        let factory = connector_for(connector)
            .and_then(|c| c.source(&ct))
            .map_err(|source| Error::connector(&def.location, source))?;
        let node = self.graph.add_node(NodeKind::Source(factory), self.workers);
        self.sources.insert(
            table.to_string(),
            SourceNode {
                node,
                columns: columns.clone(),
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
        Ok(vec![Stream {
            node,
            parallelism: 1,
        }])
    }

    /// Connects `inputs` to the sink of `table` (created on first use). Rows are hashed
    /// by the primary key when the table has one, so that upserts of one key stay in order.
    pub fn sink(
        &mut self,
        table: &str,
        factory: Arc<dyn SinkFactory>,
        key: Vec<usize>,
        inputs: &[Stream],
    ) {
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
    }
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
            "aggregation (GROUP BY / DISTINCT) needs event-time windows or changelog output, \
             which this version of Sluice does not run yet; only stateless queries \
             (projections, filters, UNION ALL) are supported for now"
        }
        LogicalPlan::Join(_) => "joins are not supported yet in streaming pipelines",
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
