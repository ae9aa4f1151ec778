//! The `jdbc` scan source: reads a PostgreSQL table once (a bounded source), in
//! parallel ranges of a numeric column when `scan.partition.*` says so (Flink's
//! options). Values travel as text and are parsed as CSV fields are.
//!
//! Delivery: a restart from a checkpoint taken mid-scan reads the table again (the
//! scan keeps no position), so use it for bounded jobs, backfills and dimension loads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use futures::StreamExt;
use sluice_runtime::{
    DeadLetterOutput, JobMetrics, RestoredOffsets, Source, SourceEvent, SourceFactory, TaskInfo,
};
use tracing::warn;

use super::config::PgTarget;
use super::sql::{quote, text_select_list};
use crate::text_rows::TextRows;
use crate::{ConnectorTable, Error, Options, Result};

/// `scan.partition.*`: ranges of a numeric column read in parallel.
#[derive(Debug, Clone)]
pub struct Partitioning {
    column: String,
    num: i64,
    lower: i64,
    upper: i64,
}

/// Options of the scan source.
#[derive(Debug, Clone)]
pub struct JdbcScanConfig {
    target: PgTarget,
    table_name: String,
    fetch_size: usize,
    partitioning: Option<Partitioning>,
    table: ConnectorTable,
}

impl JdbcScanConfig {
    /// Reads the source options of `table`; unknown options are errors.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "jdbc", &table.options);
        let target = super::config::take_target(&mut o)?;
        let table_name = o.take_required("table-name", "Add 'table-name' = 'my_table'.")?;
        if table_name.trim().is_empty() || table_name.split('.').count() > 2 {
            return Err(o.bad("table-name", "write 'table' or 'schema.table'"));
        }
        let fetch_size = o
            .take_parsed::<usize>("scan.fetch-size", "a number of rows")?
            .filter(|n| *n > 0)
            .unwrap_or(4096);
        let column = o.take("scan.partition.column");
        let num = o.take_parsed::<i64>("scan.partition.num", "a number")?;
        let lower = o.take_parsed::<i64>("scan.partition.lower-bound", "a whole number")?;
        let upper = o.take_parsed::<i64>("scan.partition.upper-bound", "a whole number")?;
        let partitioning = match (column, num, lower, upper) {
            (None, None, None, None) => None,
            (Some(column), Some(num), Some(lower), Some(upper)) => {
                if num < 1 || lower > upper {
                    return Err(o.bad(
                        "scan.partition.num",
                        "needs at least 1 partition and lower-bound ≤ upper-bound",
                    ));
                }
                let ok = table.schema.field_with_name(&column).is_ok_and(|f| {
                    matches!(
                        f.data_type(),
                        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
                    )
                });
                if !ok {
                    return Err(o.bad(
                        "scan.partition.column",
                        &format!("'{column}' is not an integer column of the table"),
                    ));
                }
                Some(Partitioning {
                    column,
                    num,
                    lower,
                    upper,
                })
            }
            _ => {
                return Err(o.bad(
                    "scan.partition.column",
                    "give all four of scan.partition.column, .num, .lower-bound and \
                     .upper-bound, or none",
                ));
            }
        };
        // Sink and lookup options may sit on the same table (read and written).
        let _ = o.take_prefixed("sink.");
        let _ = o.take_prefixed("lookup.");
        let _ = o.take("scan.auto-commit");
        o.finish()?;
        if let Some(f) = table
            .schema
            .fields()
            .iter()
            .find(|f| matches!(f.data_type(), DataType::Binary | DataType::LargeBinary))
        {
            return Err(Error::Unsupported {
                table: table.name.clone(),
                message: format!(
                    "column '{}': reading BYTES from PostgreSQL is not supported yet",
                    f.name()
                ),
            });
        }
        Ok(JdbcScanConfig {
            target,
            table_name,
            fetch_size,
            partitioning,
            table: table.clone(),
        })
    }

    /// The SELECT of one split: the rows whose partition column lies in `split`, or
    /// every row when `split` is `None`.
    fn query(&self, split: Option<(i64, i64)>) -> String {
        let table: Vec<String> = self.table_name.split('.').map(quote).collect();
        let mut sql = format!(
            "SELECT {} FROM {}",
            text_select_list(&self.table.schema),
            table.join(".")
        );
        if let (Some(p), Some((lo, hi))) = (&self.partitioning, split) {
            let c = quote(&p.column);
            sql.push_str(&format!(" WHERE {c} BETWEEN {lo} AND {hi}"));
        }
        sql
    }

    /// The ranges of the partition column, in order (`None`: one split, everything).
    fn splits(&self) -> Vec<Option<(i64, i64)>> {
        let Some(p) = &self.partitioning else {
            return vec![None];
        };
        let span = (p.upper as i128 - p.lower as i128 + 1).max(1);
        let n = (p.num as i128).min(span);
        (0..n)
            .map(|i| {
                let lo = p.lower as i128 + span * i / n;
                let hi = p.lower as i128 + span * (i + 1) / n - 1;
                // The first and last ranges are open: rows outside the bounds are read
                // too (as Flink does).
                let lo = if i == 0 { i64::MIN as i128 } else { lo };
                let hi = if i == n - 1 { i64::MAX as i128 } else { hi };
                Some((lo as i64, hi as i64))
            })
            .collect()
    }
}

/// Makes one [`JdbcScan`] per subtask.
pub struct JdbcScanFactory {
    config: Arc<JdbcScanConfig>,
}

impl JdbcScanFactory {
    /// Checks that the table's types can be read from text.
    pub fn new(config: JdbcScanConfig) -> Result<Self> {
        TextRows::new(&config.table)?;
        Ok(JdbcScanFactory {
            config: Arc::new(config),
        })
    }
}

impl SourceFactory for JdbcScanFactory {
    fn name(&self) -> String {
        format!(
            "Source: {} (jdbc scan of {})",
            self.config.table.name, self.config.table_name
        )
    }

    fn schema(&self) -> SchemaRef {
        self.config.table.schema.clone()
    }

    fn bounded(&self) -> bool {
        true
    }

    fn create(
        &self,
        task: &TaskInfo,
        metrics: &Arc<JobMetrics>,
    ) -> sluice_runtime::Result<Box<dyn Source>> {
        let splits: Vec<Option<(i64, i64)>> = self
            .config
            .splits()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % task.parallelism == task.subtask)
            .map(|(_, s)| s)
            .collect();
        Ok(Box::new(JdbcScan {
            config: self.config.clone(),
            rows_text: TextRows::new(&self.config.table)?,
            pending: splits.into_iter().rev().collect(),
            rows: None,
            client: None,
            read: 0,
            metrics: metrics.clone(),
        }))
    }
}

type Rows = std::pin::Pin<Box<tokio_postgres::RowStream>>;

/// Reads one subtask's splits, one after the other.
struct JdbcScan {
    config: Arc<JdbcScanConfig>,
    rows_text: TextRows,
    pending: Vec<Option<(i64, i64)>>,
    rows: Option<Rows>,
    client: Option<tokio_postgres::Client>,
    read: u64,
    metrics: Arc<JobMetrics>,
}

impl JdbcScan {
    fn error(&self, what: &str, e: &tokio_postgres::Error) -> Error {
        let detail = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string());
        Error::External {
            table: self.config.table.name.clone(),
            message: format!(
                "PostgreSQL at {}: {what}: {detail}",
                self.config.target.describe()
            ),
            retryable: e.as_db_error().is_none(),
        }
    }
}

#[async_trait]
impl Source for JdbcScan {
    async fn open(
        &mut self,
        _task: &TaskInfo,
        restored: Option<RestoredOffsets>,
    ) -> sluice_runtime::Result<()> {
        if restored.is_some() {
            warn!(table = %self.config.table.name, "A jdbc scan keeps no position: the restart reads the table again.");
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        let client = self
            .config
            .target
            .connect(&self.config.table.name)
            .await
            .map_err(|e| self.error("cannot connect", &e))?;
        self.client = Some(client);
        Ok(())
    }

    async fn next(&mut self, dead: &dyn DeadLetterOutput) -> sluice_runtime::Result<SourceEvent> {
        if self.rows.is_none() {
            let Some(split) = self.pending.pop() else {
                return Ok(SourceEvent::End);
            };
            let sql = self.config.query(split);
            let Some(client) = self.client.as_ref() else {
                return Ok(SourceEvent::End);
            };
            let stream = client
                .query_raw(sql.as_str(), std::iter::empty::<i32>())
                .await
                .map_err(|e| self.error("cannot read the table", &e))?;
            self.rows = Some(Box::pin(stream));
        }
        let started = Instant::now();
        let width = self.config.table.schema.fields().len();
        let mut n = 0usize;
        let mut ended = false;
        while n < self.config.fetch_size && started.elapsed() < Duration::from_millis(50) {
            let Some(rows) = self.rows.as_mut() else {
                break;
            };
            let Some(row) = rows.next().await else {
                ended = true;
                break;
            };
            let row = row.map_err(|e| self.error("reading the table failed", &e))?;
            let values = (0..width).map(|i| row.try_get::<_, Option<&str>>(i).ok().flatten());
            let bytes = self
                .rows_text
                .push(values, &self.config.table_name, self.read);
            JobMetrics::add(&self.metrics.source_bytes, bytes as u64);
            self.read += 1;
            n += 1;
        }
        if ended {
            self.rows = None;
        }
        let decoded = self.rows_text.flush()?;
        for d in decoded.dead_letters {
            dead.send(d);
        }
        Ok(match decoded.batch {
            Some(b) => SourceEvent::Batch(b),
            None => SourceEvent::Idle,
        })
    }
}
