//! The `redis` sink: one command per row, sent as one pipeline per batch.
//!
//! `set`/`hset` write the row under its key (a changelog's `-D` rows delete the key and
//! `-U` rows are skipped, so an updating query leaves the latest row per key: writing
//! again after a restart changes nothing). `xadd` appends a stream entry and `publish`
//! sends a message, per row. A failed pipeline is retried (`sink.max-retries`) on a
//! reconnected connection.

use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use async_trait::async_trait;
use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice_formats::Encoder;
use sluice_runtime::{Delivery, Sink, SinkFactory, TaskInfo};
use sluice_types::RowKind;
use tracing::warn;

use super::config::{Command, RedisSinkConfig};
use crate::template::render_keys;
use crate::{ConnectorTable, Error, Result};

/// Makes one [`RedisSink`] per subtask.
pub struct RedisSinkFactory {
    config: Arc<RedisSinkConfig>,
    table: ConnectorTable,
}

impl RedisSinkFactory {
    /// Checks that the value format can write the table.
    pub fn new(table: &ConnectorTable, config: RedisSinkConfig) -> Result<Self> {
        if matches!(config.command, Command::Set | Command::Publish) {
            sluice_formats::encoder_for(&config.format, &config.format_options(table)).map_err(
                |source| Error::Format {
                    table: table.name.clone(),
                    source,
                },
            )?;
        }
        Ok(RedisSinkFactory {
            config: Arc::new(config),
            table: table.clone(),
        })
    }
}

impl SinkFactory for RedisSinkFactory {
    fn name(&self) -> String {
        format!(
            "Sink: {} (redis, {:?})",
            self.config.table, self.config.command
        )
    }

    fn schema(&self) -> SchemaRef {
        self.config.schema.clone()
    }

    fn parallelism(&self) -> Option<usize> {
        self.config.parallelism
    }

    fn accepts_changelog(&self) -> bool {
        matches!(self.config.command, Command::Set | Command::Hset)
    }

    fn create(&self, _task: &TaskInfo) -> sluice_runtime::Result<Box<dyn Sink>> {
        let encoder = match self.config.command {
            Command::Set | Command::Publish => Some(
                sluice_formats::encoder_for(
                    &self.config.format,
                    &self.config.format_options(&self.table),
                )
                .map_err(|source| Error::Format {
                    table: self.table.name.clone(),
                    source,
                })?,
            ),
            Command::Hset | Command::Xadd => None,
        };
        Ok(Box::new(RedisSink {
            config: self.config.clone(),
            conn: None,
            encoder,
        }))
    }
}

/// Writes one subtask's rows.
struct RedisSink {
    config: Arc<RedisSinkConfig>,
    conn: Option<ConnectionManager>,
    encoder: Option<Box<dyn Encoder>>,
}

impl RedisSink {
    fn error(&self, what: &str, e: impl std::fmt::Display, retryable: bool) -> Error {
        Error::External {
            table: self.config.table.clone(),
            message: format!("Redis at {}: {what}: {e}", self.config.target.url),
            retryable,
        }
    }

    /// The key of every row, from the key template.
    fn keys(&self, batch: &RecordBatch) -> Result<Vec<String>> {
        Ok(render_keys(&self.config.key, batch)?)
    }

    /// The commands that write `batch`, one or more per row.
    fn pipeline(&mut self, batch: &RecordBatch) -> Result<::redis::Pipeline> {
        let kinds = sluice_types::row_kinds(batch)
            .is_some()
            .then(|| sluice_types::kinds_of(batch));
        let data = sluice_types::without_row_kind(batch);
        let n = data.num_rows();
        let keys = self.keys(&data)?;
        let mut values = Vec::new();
        let mut ends = Vec::new();
        if let Some(enc) = self.encoder.as_mut() {
            enc.encode_each(&data, &mut values, &mut ends)
                .map_err(|source| Error::Format {
                    table: self.config.table.clone(),
                    source,
                })?;
        }
        let text = FormatOptions::default();
        let fields: Vec<(String, ArrayFormatter<'_>)> = match self.config.command {
            Command::Hset | Command::Xadd => data
                .schema()
                .fields()
                .iter()
                .zip(data.columns())
                .map(|(f, c)| {
                    Ok((
                        f.name().clone(),
                        ArrayFormatter::try_new(c.as_ref(), &text)?,
                    ))
                })
                .collect::<std::result::Result<_, datafusion::arrow::error::ArrowError>>()
                .map_err(Error::Arrow)?,
            _ => Vec::new(),
        };
        let ttl_ms = self.config.ttl.map(|d| d.as_millis() as u64);
        let mut pipe = ::redis::pipe();
        for (row, key) in keys.iter().enumerate().take(n) {
            let kind = kinds.as_ref().map_or(RowKind::Insert, |k| k[row]);
            match kind {
                RowKind::UpdateBefore => continue,
                RowKind::Delete => {
                    pipe.cmd("DEL").arg(key).ignore();
                    continue;
                }
                RowKind::Insert | RowKind::UpdateAfter => {}
            }
            let value = || {
                let start = if row == 0 { 0 } else { ends[row - 1] };
                &values[start..ends[row]]
            };
            match self.config.command {
                Command::Set => {
                    let c = pipe.cmd("SET").arg(key).arg(value());
                    if let Some(ms) = ttl_ms {
                        c.arg("PX").arg(ms);
                    }
                    c.ignore();
                }
                Command::Publish => {
                    pipe.cmd("PUBLISH").arg(key).arg(value()).ignore();
                }
                Command::Hset => {
                    // A hash holds the row's current fields: NULL ones are removed.
                    let (mut set, mut unset) = (Vec::new(), Vec::new());
                    for (i, (name, fmt)) in fields.iter().enumerate() {
                        if data.column(i).is_null(row) {
                            unset.push(name.as_str());
                        } else {
                            set.push((name.as_str(), fmt.value(row).to_string()));
                        }
                    }
                    if !set.is_empty() {
                        let c = pipe.cmd("HSET").arg(key);
                        for (k, v) in &set {
                            c.arg(*k).arg(v);
                        }
                        c.ignore();
                    }
                    if !unset.is_empty() {
                        pipe.cmd("HDEL").arg(key).arg(&unset).ignore();
                    }
                    if let Some(ms) = ttl_ms {
                        pipe.cmd("PEXPIRE").arg(key).arg(ms).ignore();
                    }
                }
                Command::Xadd => {
                    let c = pipe.cmd("XADD").arg(key);
                    if let Some(max) = self.config.max_len {
                        c.arg("MAXLEN").arg("~").arg(max);
                    }
                    c.arg("*");
                    let mut any = false;
                    for (i, (name, fmt)) in fields.iter().enumerate() {
                        if !data.column(i).is_null(row) {
                            c.arg(name.as_str()).arg(fmt.value(row).to_string());
                            any = true;
                        }
                    }
                    if !any {
                        // An entry needs a field; a row of NULLs has none.
                        c.arg("_").arg("");
                    }
                    c.ignore();
                }
            }
        }
        Ok(pipe)
    }

    /// Runs `pipe`, retrying on a broken connection.
    async fn run(&mut self, pipe: &::redis::Pipeline) -> Result<()> {
        let mut attempt = 0u32;
        loop {
            let conn = self.conn.as_mut().ok_or_else(|| Error::External {
                table: self.config.table.clone(),
                message: "the Redis sink was written before it was opened".into(),
                retryable: false,
            })?;
            match pipe.query_async::<()>(conn).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let transient = e.is_io_error()
                        || e.is_connection_dropped()
                        || e.is_connection_refusal()
                        || e.is_timeout();
                    if !transient || attempt >= self.config.max_retries {
                        return Err(self.error("a write failed", e, transient));
                    }
                    attempt += 1;
                    let wait = Duration::from_millis(200 << attempt.min(6));
                    warn!(table = %self.config.table, error = %e, attempt, "Redis write failed; retrying.");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[async_trait]
impl Sink for RedisSink {
    async fn open(&mut self, _task: &TaskInfo) -> sluice_runtime::Result<()> {
        let conn = self
            .config
            .target
            .connect()
            .await
            .map_err(|(what, e, retryable)| self.error(what, e, retryable))?;
        self.conn = Some(conn);
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> sluice_runtime::Result<()> {
        let pipe = self.pipeline(&batch)?;
        self.run(&pipe).await?;
        Ok(())
    }

    async fn close(&mut self) -> sluice_runtime::Result<()> {
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        match self.config.command {
            // Writing a key again leaves the same value: repeats after a restart vanish.
            Command::Set | Command::Hset => Delivery::ExactlyOnce,
            Command::Xadd => Delivery::AtLeastOnce,
            // A message nobody listens to is gone: Redis keeps none.
            Command::Publish => Delivery::AtMostOnce,
        }
    }
}
