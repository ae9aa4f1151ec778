//! The `jdbc` lookup table: a PostgreSQL table read by key for lookup joins.
//!
//! Each lookup is one prepared statement for all the keys a batch needs: the keys go as
//! one array parameter per key column (as the sink sends rows), are cast by the server
//! to the columns' own types (so an index on the key is used), and the matching rows
//! come back as text, parsed as the scan source parses them.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use sluice_runtime::{LookupCaching, LookupFactory, LookupTable, TaskInfo};
use tokio_postgres::{Client, Statement};
use tracing::warn;

use super::config::{PgTarget, take_target};
use super::params::{Param, column_param, wire_type};
use super::sink::{pg_error, qualified};
use super::sql::{quote, text_select_list};
use crate::text_rows::TextRows;
use crate::{ConnectorTable, Error, Options, Result};

/// Options of a `jdbc` lookup table.
#[derive(Debug, Clone)]
pub struct JdbcLookupConfig {
    target: PgTarget,
    table_name: String,
    caching: LookupCaching,
    table: ConnectorTable,
    keys: Vec<usize>,
}

impl JdbcLookupConfig {
    /// Reads the lookup options of `table`, looked up by the columns `keys`.
    pub fn from_table(table: &ConnectorTable, keys: &[String]) -> Result<Self> {
        let mut o = Options::new(&table.name, "jdbc", &table.options);
        let target = take_target(&mut o)?;
        let table_name = o.take_required("table-name", "Add 'table-name' = 'my_table'.")?;
        if table_name.trim().is_empty() || table_name.split('.').count() > 2 {
            return Err(o.bad("table-name", "write 'table' or 'schema.table'"));
        }
        let caching = crate::lookup::take_caching(&mut o)?;
        // Source and sink options may sit on the same table.
        let _ = o.take_prefixed("sink.");
        let _ = o.take_prefixed("scan.");
        o.finish()?;
        let mut key_idx = Vec::new();
        for k in keys {
            let i = table.schema.index_of(k).map_err(|_| Error::Unsupported {
                table: table.name.clone(),
                message: format!("lookup key '{k}' is not a column of the table"),
            })?;
            if wire_type(table.schema.field(i).data_type()).is_none() {
                return Err(Error::Unsupported {
                    table: table.name.clone(),
                    message: format!(
                        "lookup key '{k}' has type {}, which cannot be sent to PostgreSQL",
                        table.schema.field(i).data_type()
                    ),
                });
            }
            key_idx.push(i);
        }
        if key_idx.is_empty() {
            return Err(Error::Unsupported {
                table: table.name.clone(),
                message: "a lookup join needs an equality on a column of the table".into(),
            });
        }
        TextRows::new(table)?;
        Ok(JdbcLookupConfig {
            target,
            table_name,
            caching,
            table: table.clone(),
            keys: key_idx,
        })
    }
}

/// Makes one [`JdbcLookup`] per subtask.
pub struct JdbcLookupFactory {
    config: Arc<JdbcLookupConfig>,
}

impl JdbcLookupFactory {
    /// A factory for `config`.
    pub fn new(config: JdbcLookupConfig) -> Self {
        JdbcLookupFactory {
            config: Arc::new(config),
        }
    }
}

impl LookupFactory for JdbcLookupFactory {
    fn name(&self) -> String {
        format!(
            "{} (jdbc lookup of {})",
            self.config.table.name, self.config.table_name
        )
    }

    fn schema(&self) -> SchemaRef {
        self.config.table.schema.clone()
    }

    fn key_columns(&self) -> Vec<usize> {
        self.config.keys.clone()
    }

    fn caching(&self) -> LookupCaching {
        self.config.caching
    }

    fn create(&self, _task: &TaskInfo) -> sluice_runtime::Result<Box<dyn LookupTable>> {
        Ok(Box::new(JdbcLookup {
            config: self.config.clone(),
            rows: TextRows::new(&self.config.table)?,
            conn: None,
        }))
    }
}

/// One subtask's connection and prepared lookup.
struct JdbcLookup {
    config: Arc<JdbcLookupConfig>,
    rows: TextRows,
    conn: Option<(Client, Statement)>,
}

impl JdbcLookup {
    fn err(&self, what: &str, e: &tokio_postgres::Error) -> sluice_runtime::Error {
        pg_error(&self.config.table.name, &self.config.target, what, e)
    }

    /// Connects and prepares the statement (key types from the catalog).
    async fn connect(&mut self) -> sluice_runtime::Result<()> {
        let c = &self.config;
        let client = c
            .target
            .connect(&c.table.name)
            .await
            .map_err(|e| self.err("cannot connect", &e))?;
        let target = qualified(&c.table_name);
        let mut casts = Vec::new();
        let mut wires = Vec::new();
        let mut names = Vec::new();
        for (n, &k) in c.keys.iter().enumerate() {
            let field = c.table.schema.field(k);
            let row = client
                .query_opt(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
                     WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped",
                    &[&target, &field.name().as_str()],
                )
                .await
                .map_err(|e| self.err("cannot read the table's columns", &e))?;
            let Some(row) = row else {
                return Err(Error::Unsupported {
                    table: c.table.name.clone(),
                    message: format!(
                        "PostgreSQL table {target} at {} has no column '{}' (or does not exist)",
                        c.target.describe(),
                        field.name()
                    ),
                }
                .into());
            };
            let pg_type: String = row.get(0);
            let wire = wire_type(field.data_type()).unwrap_or("text");
            casts.push(format!("k{n}::{pg_type}"));
            wires.push(format!("${}::{wire}[]", n + 1));
            names.push(format!("k{n}"));
        }
        let key_cols: Vec<String> = c
            .keys
            .iter()
            .map(|&k| quote(c.table.schema.field(k).name()))
            .collect();
        let sql = format!(
            "SELECT {} FROM {target} WHERE ({}) IN (SELECT {} FROM unnest({}) AS u({}))",
            text_select_list(&c.table.schema),
            key_cols.join(", "),
            casts.join(", "),
            wires.join(", "),
            names.join(", "),
        );
        let statement = client
            .prepare(&sql)
            .await
            .map_err(|e| self.err("cannot prepare the lookup", &e))?;
        self.conn = Some((client, statement));
        Ok(())
    }
}

#[async_trait]
impl LookupTable for JdbcLookup {
    async fn open(&mut self, _task: &TaskInfo) -> sluice_runtime::Result<()> {
        self.connect().await
    }

    async fn lookup(&mut self, keys: &RecordBatch) -> sluice_runtime::Result<RecordBatch> {
        if self.conn.is_none() {
            self.connect().await?;
        }
        let params: Vec<Param> = keys
            .columns()
            .iter()
            .map(column_param)
            .collect::<Result<_>>()?;
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let Some((client, statement)) = self.conn.as_ref() else {
            return Err(self.err_closed());
        };
        let result = client.query(statement, &refs).await;
        let rows = match result {
            Ok(rows) => rows,
            Err(e) => {
                // Reconnect on the next try.
                let err = self.err("the lookup failed", &e);
                self.conn = None;
                return Err(err);
            }
        };
        let width = self.config.table.schema.fields().len();
        for (i, row) in rows.iter().enumerate() {
            let values = (0..width).map(|c| row.try_get::<_, Option<&str>>(c).ok().flatten());
            self.rows.push(values, &self.config.table_name, i as u64);
        }
        let decoded = self.rows.flush()?;
        for d in &decoded.dead_letters {
            warn!(table = %self.config.table.name, reason = %d.reason, "A looked-up row does not fit the table's columns; it is ignored.");
        }
        Ok(decoded
            .batch
            .unwrap_or_else(|| RecordBatch::new_empty(self.config.table.schema.clone())))
    }
}

impl JdbcLookup {
    fn err_closed(&self) -> sluice_runtime::Error {
        Error::External {
            table: self.config.table.name.clone(),
            message: "no connection to PostgreSQL".into(),
            retryable: true,
        }
        .into()
    }
}
