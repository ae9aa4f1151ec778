//! The `jdbc` sink for PostgreSQL.
//!
//! With a `PRIMARY KEY` it upserts: per write, the last change per key is applied
//! (`-D` deletes, `-U` is skipped, anything else is `INSERT … ON CONFLICT DO UPDATE`);
//! without one it appends. Rows are buffered and written `sink.buffer-flush.max-rows`
//! at a time in one statement (one array parameter per column).
//!
//! Exactly-once (the default when the job checkpoints): rows are staged in a side
//! table (`<table>_sluice_staging`) tagged with subtask, epoch and sequence; when a
//! checkpoint completes, one transaction applies the staged rows of the epochs it covers
//! to the table and removes them. Applying is idempotent (what was applied is gone from
//! staging), so a restart finishes the commits of the checkpoint it restores and discards
//! the rows staged after it, which are read again. Without checkpoints, or with
//! `'sink.delivery-guarantee' = 'at-least-once'`, rows go straight to the table.
//!
//! A lost connection is retried `sink.max-retries` times with backoff (a statement the
//! server rejected is not); then the job's restart strategy takes over.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use sluice_runtime::{Delivery, Sink, SinkFactory, TaskInfo};
use sluice_types::CheckpointId;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};
use tracing::{info, warn};

use super::config::{Guarantee, JdbcSinkConfig};
use super::params::{Param, column_param, wire_type};
use super::sql::{Column, Statements, quote};
use crate::{ConnectorTable, Error, Result};

/// Creates one [`JdbcSink`] per subtask.
pub struct JdbcSinkFactory {
    table: ConnectorTable,
    config: JdbcSinkConfig,
    /// Positions of the `PRIMARY KEY` columns (empty: append).
    key: Vec<usize>,
}

impl JdbcSinkFactory {
    /// Checks the table's columns can be written (a bad type is a plan error).
    pub fn new(table: &ConnectorTable, config: JdbcSinkConfig) -> Result<Self> {
        for f in table.schema.fields() {
            if wire_type(f.data_type()).is_none() {
                return Err(Error::Unsupported {
                    table: table.name.clone(),
                    message: format!(
                        "column '{}' has type {}, which the jdbc sink cannot write; \
                         cast it to STRING or a scalar type",
                        f.name(),
                        f.data_type()
                    ),
                });
            }
        }
        let key = table.key_indices()?;
        Ok(JdbcSinkFactory {
            table: table.clone(),
            config,
            key,
        })
    }
}

impl SinkFactory for JdbcSinkFactory {
    fn name(&self) -> String {
        let mode = if self.key.is_empty() {
            "append"
        } else {
            "upsert"
        };
        format!("Sink: {} (jdbc, {mode})", self.table.name)
    }

    fn schema(&self) -> SchemaRef {
        self.table.schema.clone()
    }

    fn parallelism(&self) -> Option<usize> {
        self.config.parallelism
    }

    fn accepts_changelog(&self) -> bool {
        !self.key.is_empty()
    }

    fn create(&self, task: &TaskInfo) -> sluice_runtime::Result<Box<dyn Sink>> {
        Ok(Box::new(JdbcSink {
            table: self.table.clone(),
            config: self.config.clone(),
            key: self.key.clone(),
            conn: None,
            statements: None,
            buffer: Vec::new(),
            buffered: 0,
            last_flush: Instant::now(),
            subtask: task.subtask as i32,
            parallelism: task.parallelism as i32,
            staged: task.checkpointing && self.config.guarantee == Guarantee::ExactlyOnce,
            epoch: 0,
            seq: 0,
            clean: false,
        }))
    }
}

/// A statement for [`JdbcSink::execute`]: one of the prepared ones, or other SQL.
#[derive(Clone)]
enum Run {
    Write,
    Stage,
    Sql(String),
}

/// An open connection with its prepared statements.
struct Conn {
    client: Client,
    write: Statement,
    stage: Option<Statement>,
}

/// Writes one subtask's rows.
pub(crate) struct JdbcSink {
    table: ConnectorTable,
    config: JdbcSinkConfig,
    key: Vec<usize>,
    conn: Option<Conn>,
    statements: Option<Statements>,
    buffer: Vec<RecordBatch>,
    buffered: usize,
    last_flush: Instant,
    subtask: i32,
    parallelism: i32,
    /// Exactly-once: rows are staged until their checkpoint completes.
    staged: bool,
    /// The epoch rows staged now belong to: one past the last pre-committed checkpoint
    /// (0 before the first: checkpoint ids start at 1).
    epoch: i64,
    /// The next staged row's sequence number.
    seq: i64,
    /// Whether rows an earlier run staged for this subtask were dealt with.
    clean: bool,
}

/// `id` as a database epoch (the final checkpoint's id is the largest `u64`).
fn epoch_of(id: CheckpointId) -> i64 {
    i64::try_from(id.0).unwrap_or(i64::MAX)
}

/// A failure of the database, with the server's message where there is one.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                m.push_str(&format!("; {d}"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!("; hint: {h}"));
            }
            m
        }
        None => crate::error::with_causes(e),
    }
}

/// Whether `e` may go away by itself: the connection broke or the server restarts.
/// `table`'s error from PostgreSQL at `target` while doing `what`, with the server's
/// message; retryable when the connection broke.
pub(crate) fn pg_error(
    table: &str,
    target: &super::config::PgTarget,
    what: &str,
    e: &tokio_postgres::Error,
) -> sluice_runtime::Error {
    Error::External {
        table: table.to_string(),
        message: format!(
            "{what} on PostgreSQL {}: {}",
            target.describe(),
            describe(e)
        ),
        retryable: transient(e),
    }
    .into()
}

pub(crate) fn transient(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        None => e.as_db_error().is_none(),
        Some(c) => {
            let c = c.code();
            c.starts_with("08") || c.starts_with("57P") || c == "40001" || c == "40P01"
        }
    }
}

impl JdbcSink {
    fn err(&self, what: &str, e: &tokio_postgres::Error) -> sluice_runtime::Error {
        pg_error(&self.table.name, &self.config.target, what, e)
    }

    fn user_err(&self, message: String) -> sluice_runtime::Error {
        Error::Unsupported {
            table: self.table.name.clone(),
            message,
        }
        .into()
    }

    /// Connects, finds the table and its columns, builds and prepares the statements.
    async fn connect(&mut self) -> sluice_runtime::Result<()> {
        let mut client = self
            .config
            .target
            .connect(&self.table.name)
            .await
            .map_err(|e| self.err("cannot connect", &e))?;
        if self.statements.is_none() {
            self.statements = Some(self.resolve(&client).await?);
        }
        let s = self.statements.as_ref().expect("resolved above");
        if self.staged {
            // Subtasks open together: one creates the table, under a lock.
            let create = async {
                let tx = client.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&s.staging])
                    .await?;
                let exists: bool = tx
                    .query_one("SELECT to_regclass($1) IS NOT NULL", &[&s.staging])
                    .await?
                    .get(0);
                if !exists {
                    tx.batch_execute(&s.create_staging).await?;
                }
                tx.commit().await
            };
            create
                .await
                .map_err(|e| self.err("cannot create the staging table", &e))?;
        }
        let write = client
            .prepare(&s.write)
            .await
            .map_err(|e| self.err("cannot prepare the write", &e))?;
        let stage = match self.staged {
            true => Some(
                client
                    .prepare(&s.stage)
                    .await
                    .map_err(|e| self.err("cannot prepare the staging write", &e))?,
            ),
            false => None,
        };
        self.conn = Some(Conn {
            client,
            write,
            stage,
        });
        Ok(())
    }

    /// Reads the table's columns and unique keys from the catalog.
    async fn resolve(&self, client: &Client) -> sluice_runtime::Result<Statements> {
        let name = &self.config.table_name;
        let row = client
            .query_opt(
                "SELECT n.nspname, c.relname FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
                &[name],
            )
            .await
            .map_err(|e| self.err("cannot read the catalog", &e))?;
        let Some(row) = row else {
            return Err(self.user_err(format!(
                "table '{name}' does not exist in PostgreSQL {}; create it first, e.g. {}",
                self.config.target.describe(),
                self.suggested_ddl()
            )));
        };
        let (schema, rel): (String, String) = (row.get(0), row.get(1));
        let target = format!("{}.{}", quote(&schema), quote(&rel));
        let staging = match &self.config.staging_table {
            Some(s) => qualified(s),
            None => format!(
                "{}.{}",
                quote(&schema),
                quote(&format!("{rel}_sluice_staging"))
            ),
        };
        let rows = client
            .query(
                "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
                 WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped \
                 ORDER BY attnum",
                &[name],
            )
            .await
            .map_err(|e| self.err("cannot read the table's columns", &e))?;
        let pg: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let mut columns = Vec::new();
        for f in self.table.schema.fields() {
            let found = pg.iter().find(|(n, _)| n == f.name()).or_else(|| {
                let mut ci = pg.iter().filter(|(n, _)| n.eq_ignore_ascii_case(f.name()));
                match (ci.next(), ci.next()) {
                    (Some(one), None) => Some(one),
                    _ => None,
                }
            });
            let Some((pg_name, pg_type)) = found else {
                let have: Vec<&str> = pg.iter().map(|(n, _)| n.as_str()).collect();
                return Err(self.user_err(format!(
                    "column '{}' is not in PostgreSQL table {target} (its columns: {})",
                    f.name(),
                    have.join(", ")
                )));
            };
            columns.push(Column {
                name: pg_name.clone(),
                pg_type: pg_type.clone(),
                wire: wire_type(f.data_type()).expect("checked when the sink was planned"),
            });
        }
        if !self.key.is_empty() {
            let uniques = client
                .query(
                    "SELECT array_agg(a.attname::text) FROM pg_index i JOIN pg_attribute a \
                     ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                     WHERE i.indrelid = to_regclass($1) AND i.indisunique \
                     GROUP BY i.indexrelid",
                    &[name],
                )
                .await
                .map_err(|e| self.err("cannot read the table's keys", &e))?;
            let mut want: Vec<&str> = self.key.iter().map(|&i| columns[i].name.as_str()).collect();
            want.sort_unstable();
            let has = uniques.iter().any(|r| {
                let mut cols: Vec<String> = r.get(0);
                cols.sort_unstable();
                cols.iter().map(String::as_str).eq(want.iter().copied())
            });
            if !has {
                return Err(self.user_err(format!(
                    "the upsert needs a unique index or primary key on ({}) in PostgreSQL table \
                     {target}; add one: ALTER TABLE {target} ADD PRIMARY KEY ({})",
                    want.join(", "),
                    want.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        Ok(Statements::new(&target, &staging, &columns, &self.key))
    }

    /// A `CREATE TABLE` matching the Sluice table, for the error when it is missing.
    fn suggested_ddl(&self) -> String {
        let cols: Vec<String> = self
            .table
            .schema
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), pg_type_for(f.data_type())))
            .collect();
        let key = match self.table.primary_key.is_empty() {
            true => String::new(),
            false => format!(", PRIMARY KEY ({})", self.table.primary_key.join(", ")),
        };
        format!(
            "CREATE TABLE {} ({}{key})",
            self.config.table_name,
            cols.join(", ")
        )
    }

    /// Runs `f` on the connection, reconnecting and trying again with backoff while
    /// the failure is transient, up to `sink.max-retries` times.
    async fn with_retry<T>(
        &mut self,
        what: &str,
        mut f: impl for<'c> FnMut(
            &'c mut Conn,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, tokio_postgres::Error>> + Send + 'c>,
        >,
    ) -> sluice_runtime::Result<T> {
        let mut attempt = 0u32;
        loop {
            if self.conn.as_ref().is_none_or(|c| c.client.is_closed()) {
                self.conn = None;
                match self.connect().await {
                    Ok(()) => {}
                    Err(e) if attempt < self.config.max_retries && e.retryable() => {
                        attempt += 1;
                        warn!(table = %self.table.name, attempt, error = %e, "Reconnecting to PostgreSQL.");
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let conn = self.conn.as_mut().expect("connected above");
            match f(conn).await {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) && attempt < self.config.max_retries => {
                    attempt += 1;
                    warn!(table = %self.table.name, attempt, error = %describe(&e), "{what} failed; trying again.");
                    self.conn = None;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(self.err(what, &e)),
            }
        }
    }

    /// Writes (or stages) what is buffered.
    async fn flush(&mut self) -> sluice_runtime::Result<()> {
        self.last_flush = Instant::now();
        if self.buffered == 0 {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.buffer);
        let rows = self.buffered;
        self.buffered = 0;
        let batch = concat_batches(batches[0].schema_ref(), &batches).map_err(Error::from)?;
        let kinds: Vec<i16> = sluice_types::kinds_of(&batch)
            .into_iter()
            .map(|k| k as i16)
            .collect();
        let data = sluice_types::without_row_kind(&batch);
        let mut params: Vec<Param> = Vec::with_capacity(data.num_columns() + 4);
        for col in data.columns() {
            params.push(column_param(col)?);
        }
        params.push(Box::new(kinds));
        if self.staged {
            self.clean_up_earlier_run().await?;
            params.push(Box::new(self.subtask));
            params.push(Box::new(self.epoch));
            params.push(Box::new(self.seq));
            self.execute("staging rows", Run::Stage, params).await?;
            self.seq += rows as i64;
        } else {
            self.execute("writing rows", Run::Write, params).await?;
        }
        Ok(())
    }

    /// On a fresh start, rows an earlier run staged for this subtask were never part of
    /// a checkpoint this run restores: they go before this run stages its own.
    async fn clean_up_earlier_run(&mut self) -> sluice_runtime::Result<()> {
        if self.clean {
            return Ok(());
        }
        self.discard_others(Vec::new()).await?;
        self.clean = true;
        Ok(())
    }

    /// Runs `run` with `params`, retrying; the number of rows it touched.
    async fn execute(
        &mut self,
        what: &str,
        run: Run,
        params: Vec<Param>,
    ) -> sluice_runtime::Result<u64> {
        let params = Arc::new(params);
        self.with_retry(what, move |c| {
            let (run, params) = (run.clone(), Arc::clone(&params));
            Box::pin(async move {
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| p.as_ref() as _).collect();
                match &run {
                    Run::Write => c.client.execute(&c.write, &refs).await,
                    Run::Stage => {
                        let stmt = c.stage.as_ref().expect("prepared when staging");
                        c.client.execute(stmt, &refs).await
                    }
                    Run::Sql(sql) => c.client.execute(sql.as_str(), &refs).await,
                }
            })
        })
        .await
    }

    /// Removes the staged rows this subtask looks after, but those of `keep`'s subtasks.
    async fn discard_others(&mut self, keep: Vec<i32>) -> sluice_runtime::Result<u64> {
        let sql = self
            .statements
            .as_ref()
            .expect("opened")
            .discard_others
            .clone();
        let params: Vec<Param> = vec![
            Box::new(self.subtask),
            Box::new(self.parallelism),
            Box::new(keep),
        ];
        self.execute("discarding staged rows", Run::Sql(sql), params)
            .await
    }

    /// Removes the staged rows of `subtask` past `epoch`.
    async fn discard_after(&mut self, subtask: i32, epoch: i64) -> sluice_runtime::Result<u64> {
        let sql = self.statements.as_ref().expect("opened").discard.clone();
        let params: Vec<Param> = vec![Box::new(subtask), Box::new(epoch)];
        self.execute("discarding staged rows", Run::Sql(sql), params)
            .await
    }

    /// Applies the staged rows of `subtask` up to `epoch` and removes them, in one
    /// transaction. Idempotent.
    async fn apply_up_to(&mut self, subtask: i32, epoch: i64) -> sluice_runtime::Result<u64> {
        let s = self.statements.as_ref().expect("opened");
        let (apply, unstage) = (s.apply.clone(), s.unstage.clone());
        self.with_retry("committing staged rows", move |c| {
            let (apply, unstage) = (apply.clone(), unstage.clone());
            Box::pin(async move {
                let tx = c.client.transaction().await?;
                let n = tx.execute(&apply, &[&subtask, &epoch]).await?;
                tx.execute(&unstage, &[&subtask, &epoch]).await?;
                tx.commit().await?;
                Ok::<u64, tokio_postgres::Error>(n)
            })
        })
        .await
    }

    /// Whether this subtask looks after the staged rows of `subtask` (an earlier run's).
    fn looks_after(&self, subtask: i32) -> bool {
        subtask == self.subtask || (self.subtask == 0 && subtask >= self.parallelism)
    }
}

/// `schema.table` or `table` as written in SQL (unquoted parts fold to lower case).
pub(crate) fn qualified(name: &str) -> String {
    name.split('.')
        .map(|p| {
            let p = p.trim();
            match p.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                Some(exact) => quote(exact),
                None => quote(&p.to_lowercase()),
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// PostgreSQL's type for an Arrow type, for suggested DDL.
fn pg_type_for(dt: &datafusion::arrow::datatypes::DataType) -> String {
    use datafusion::arrow::datatypes::DataType as D;
    match dt {
        D::Boolean => "boolean".into(),
        D::Int8 | D::Int16 | D::UInt8 => "smallint".into(),
        D::Int32 | D::UInt16 => "integer".into(),
        D::Int64 | D::UInt32 => "bigint".into(),
        D::UInt64 => "numeric(20)".into(),
        D::Float16 | D::Float32 => "real".into(),
        D::Float64 => "double precision".into(),
        D::Decimal32(p, s) | D::Decimal64(p, s) => format!("numeric({p},{s})"),
        D::Decimal128(p, s) | D::Decimal256(p, s) => format!("numeric({p},{s})"),
        D::Timestamp(_, None) => "timestamp".into(),
        D::Timestamp(_, Some(_)) => "timestamptz".into(),
        D::Date32 | D::Date64 => "date".into(),
        D::Time32(_) | D::Time64(_) => "time".into(),
        D::Binary | D::LargeBinary | D::BinaryView => "bytea".into(),
        _ => "text".into(),
    }
}

/// 200 ms, 400 ms, … up to 10 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(7))).min(Duration::from_secs(10))
}

#[async_trait]
impl Sink for JdbcSink {
    async fn open(&mut self, _task: &TaskInfo) -> sluice_runtime::Result<()> {
        self.with_retry("connecting", |_| {
            Box::pin(async { Ok::<(), tokio_postgres::Error>(()) })
        })
        .await?;
        info!(
            table = %self.table.name,
            database = %self.config.target.describe(),
            exactly_once = self.staged,
            "PostgreSQL sink connected."
        );
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> sluice_runtime::Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.buffered += batch.num_rows();
        self.buffer.push(batch);
        if self.buffered >= self.config.max_rows
            || (!self.staged && self.last_flush.elapsed() >= self.config.flush_interval)
        {
            self.flush().await?;
        }
        Ok(())
    }

    async fn pre_commit(
        &mut self,
        checkpoint: CheckpointId,
    ) -> sluice_runtime::Result<serde_json::Value> {
        if self.staged {
            // Even with nothing to stage: the checkpoint must not cover an earlier
            // run's rows, which a restore from it would apply.
            self.clean_up_earlier_run().await?;
        }
        self.flush().await?;
        if !self.staged {
            return Ok(serde_json::Value::Null);
        }
        let epoch = epoch_of(checkpoint);
        self.epoch = epoch.saturating_add(1);
        self.seq = 0;
        Ok(serde_json::json!({ "subtask": self.subtask, "epoch": epoch }))
    }

    async fn commit(&mut self, checkpoint: CheckpointId) -> sluice_runtime::Result<()> {
        if self.staged {
            let n = self.apply_up_to(self.subtask, epoch_of(checkpoint)).await?;
            tracing::debug!(table = %self.table.name, checkpoint = checkpoint.0, rows = n, "Staged rows committed.");
        }
        Ok(())
    }

    /// Each subtask of the restored run recorded the epoch its checkpoint covers: the
    /// rows it staged up to there are applied, those after are discarded (they are read
    /// again), and so are the rows of subtasks with no record (a run no checkpoint
    /// covers). This subtask does so for the old subtasks it looks after.
    async fn recover(
        &mut self,
        pending: Vec<serde_json::Value>,
        undone: Vec<serde_json::Value>,
    ) -> sluice_runtime::Result<()> {
        if !self.staged {
            return Ok(());
        }
        let mut covered: BTreeMap<i32, i64> = BTreeMap::new();
        for p in &pending {
            let subtask = p.get("subtask").and_then(serde_json::Value::as_i64);
            let epoch = p.get("epoch").and_then(serde_json::Value::as_i64);
            if let (Some(s), Some(e)) = (subtask.and_then(|s| i32::try_from(s).ok()), epoch) {
                let at = covered.entry(s).or_insert(e);
                *at = (*at).max(e);
            }
        }
        let (mut applied, mut discarded) = (0, 0);
        for (&subtask, &epoch) in &covered {
            if self.looks_after(subtask) {
                applied += self.apply_up_to(subtask, epoch).await?;
                discarded += self.discard_after(subtask, epoch).await?;
            }
        }
        discarded += self
            .discard_others(covered.keys().copied().collect())
            .await?;
        if !undone.is_empty() {
            warn!(
                table = %self.table.name,
                "Checkpoints newer than the one restored were damaged; rows they committed \
                 stay in the table and are written again (an upsert table converges, an \
                 append table may hold them twice)."
            );
        }
        info!(table = %self.table.name, applied, discarded, "PostgreSQL sink recovered.");
        // Rows staged from now on belong past the restored checkpoint, so that a second
        // restore from it discards them. (A subtask that had finished recorded the
        // largest epoch; the others, the checkpoint's id.)
        let restored = covered.values().copied().filter(|e| *e < i64::MAX).max();
        self.epoch = restored.unwrap_or(0).saturating_add(1);
        self.seq = 0;
        self.clean = true;
        Ok(())
    }

    async fn close(&mut self) -> sluice_runtime::Result<()> {
        self.flush().await
    }

    fn delivery(&self) -> Delivery {
        if self.staged {
            Delivery::ExactlyOnce
        } else {
            Delivery::AtLeastOnce
        }
    }
}
