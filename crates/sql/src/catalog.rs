//! The catalog of one pipeline file: connector tables, views, functions and settings,
//! kept in a DataFusion `SessionContext` configured for Flink SQL.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::{TableReference, not_impl_err};
use datafusion::datasource::{TableProvider, TableType, ViewTable};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use sluice_types::Location;

use crate::ddl::{ColumnKind, FunctionDef, TableDef};
use crate::{Error, Result};

/// The name under which a table's physical columns are registered when the table has
/// computed columns (the table's own name is then a view adding them).
pub fn physical_name(table: &str) -> String {
    format!("__sluice_physical_{table}")
}

/// A connector table as DataFusion sees it: a schema it can plan against. It is never
/// executed by DataFusion; the lowering replaces its scans with Sluice sources.
#[derive(Debug)]
pub struct ConnectorTableProvider {
    /// The SQL table name.
    pub table: String,
    /// Its physical columns.
    pub schema: SchemaRef,
}

#[async_trait]
impl TableProvider for ConnectorTableProvider {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        not_impl_err!(
            "table '{}' is read by Sluice's streaming runtime, not by DataFusion",
            self.table
        )
    }
}

/// Tables, views, functions and settings of one pipeline.
pub struct Catalog {
    /// The DataFusion session used for planning.
    pub ctx: SessionContext,
    /// Connector tables by name.
    pub tables: HashMap<String, TableDef>,
    /// View names.
    pub views: Vec<String>,
    /// `SET` values, in order of keys.
    pub settings: BTreeMap<String, String>,
    /// Batch-oracle mode: file tables are real DataFusion listing tables.
    pub oracle: bool,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new()
    }
}

impl Catalog {
    /// A catalog with Flink SQL settings: case-sensitive identifiers, decimal literals
    /// as DECIMAL, Flink's function names.
    pub fn new() -> Self {
        let config = SessionConfig::new()
            .with_information_schema(false)
            .set_bool("datafusion.sql_parser.enable_ident_normalization", false)
            .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
            .set_str("datafusion.execution.time_zone", "+00:00")
            .with_target_partitions(1);
        let ctx = SessionContext::new_with_config(config);
        crate::functions::register(&ctx);
        Catalog {
            ctx,
            tables: HashMap::new(),
            views: Vec::new(),
            settings: BTreeMap::new(),
            oracle: false,
        }
    }

    pub(crate) fn exists(&self, name: &str) -> bool {
        self.tables.contains_key(name) || self.views.iter().any(|v| v == name)
    }

    /// Registers a connector table. Computed columns are added by `computed_view`, a
    /// plan the caller builds over the physical table (see [`physical_name`]).
    pub fn add_table(&mut self, def: TableDef) -> Result<()> {
        if self.exists(&def.name) {
            if def.if_not_exists {
                return Ok(());
            }
            return Err(Error::sql(
                &def.location,
                format!(
                    "table '{}' already exists; use another name or CREATE TABLE IF NOT EXISTS",
                    def.name
                ),
            ));
        }
        let provider = Arc::new(ConnectorTableProvider {
            table: def.name.clone(),
            schema: def.source_schema(),
        });
        let reg_name = if def.has_computed_columns() {
            physical_name(&def.name)
        } else {
            def.name.clone()
        };
        self.ctx
            .register_table(TableReference::bare(reg_name), provider)
            .map_err(|e| internal(&def.location, e))?;
        self.tables.insert(def.name.clone(), def);
        Ok(())
    }

    /// Registers a view (also used for a table's computed columns).
    pub fn add_view(
        &mut self,
        name: &str,
        plan: LogicalPlan,
        sql: Option<String>,
        location: &Location,
    ) -> Result<()> {
        if self.views.iter().any(|v| v == name)
            || (self.tables.contains_key(name) && !self.tables[name].has_computed_columns())
        {
            return Err(Error::sql(
                location,
                format!("'{name}' already exists; choose another view name"),
            ));
        }
        self.ctx
            .register_table(
                TableReference::bare(name),
                Arc::new(ViewTable::new(plan, sql)),
            )
            .map_err(|e| internal(location, e))?;
        if !self.tables.contains_key(name) {
            self.views.push(name.to_string());
        }
        Ok(())
    }

    /// Registers a `CREATE FUNCTION` whose class Sluice implements natively.
    pub fn add_function(&mut self, def: &FunctionDef) -> Result<()> {
        match crate::functions::java_udf(&def.class, &def.name) {
            Some(udf) => {
                self.ctx.register_udf(udf.as_ref().clone());
                Ok(())
            }
            None => Err(Error::Unsupported {
                location: def.location.clone(),
                message: format!(
                    "function class '{}' is a Java UDF Sluice cannot load; Sluice runs no JVM. \
                     Use a built-in function instead (see docs/functions.md)",
                    def.class
                ),
            }),
        }
    }

    /// Removes a table, view or function (`DROP TABLE|VIEW|FUNCTION`); false when there
    /// is no such object of that kind.
    pub fn drop(&mut self, what: &str, name: &str) -> bool {
        if what == "FUNCTION" {
            use datafusion::execution::FunctionRegistry;
            let existed = self.ctx.udf(name).is_ok();
            self.ctx.deregister_udf(name);
            return existed;
        }
        let existed = if what == "VIEW" {
            let before = self.views.len();
            self.views.retain(|v| v != name);
            before != self.views.len()
        } else {
            self.tables.remove(name).is_some()
        };
        if !existed {
            return false;
        }
        let _ = self.ctx.deregister_table(TableReference::bare(name));
        let _ = self
            .ctx
            .deregister_table(TableReference::bare(physical_name(name)));
        existed
    }

    /// The SQL text of the view adding computed columns to `def`'s physical columns.
    pub fn computed_columns_sql(def: &TableDef) -> String {
        let cols: Vec<String> = def
            .columns
            .iter()
            .map(|c| match &c.kind {
                ColumnKind::Computed(expr) => format!("{expr} AS {}", quote(&c.name)),
                ColumnKind::Physical | ColumnKind::Metadata { .. } => quote(&c.name),
            })
            .collect();
        format!(
            "SELECT {} FROM {}",
            cols.join(", "),
            quote(&physical_name(&def.name))
        )
    }
}

/// Quotes an identifier for generated SQL.
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn internal(location: &Location, e: datafusion::error::DataFusionError) -> Error {
    Error::Internal {
        location: location.clone(),
        message: e.to_string(),
    }
}
