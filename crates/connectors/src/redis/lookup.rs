//! The `redis` lookup table: the key of each probe row (the `key` template filled with
//! its values) is read with `GET` (the value in `format`, as the `set` sink writes it)
//! or `HGETALL` (a field per column, as the `hset` sink writes it). All the keys a batch
//! needs go to Redis as one pipeline.

use std::collections::BTreeSet;
use std::sync::Arc;

use ::redis::aio::ConnectionManager;
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use sluice_formats::{Decoded, Decoder, FormatOptions};
use sluice_runtime::{LookupCaching, LookupFactory, LookupTable, TaskInfo};
use tracing::warn;

use super::config::{RedisTarget, default_key, target};
use crate::template::{KeyPart, parse_template, render_keys};
use crate::text_rows::TextRows;
use crate::{ConnectorTable, Error, Options, Result};

/// How a key's row is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A string value in a format (`GET`).
    Value,
    /// A hash with a field per column (`HGETALL`).
    Hash,
}

/// Options of a `redis` lookup table.
#[derive(Debug, Clone)]
pub struct RedisLookupConfig {
    target: RedisTarget,
    shape: Shape,
    format: String,
    /// The key template over the table's columns.
    key: Vec<KeyPart>,
    /// The same template over the lookup-key batch's columns.
    key_in_request: Vec<KeyPart>,
    keys: Vec<usize>,
    caching: LookupCaching,
    table: ConnectorTable,
}

impl RedisLookupConfig {
    /// Reads the lookup options of `table`, looked up by the columns `keys`.
    pub fn from_table(table: &ConnectorTable, keys: &[String]) -> Result<Self> {
        let mut o = Options::new(&table.name, "redis", &table.options);
        let target = target(&mut o)?;
        let sink_command = o.take("sink.command").map(|c| c.to_ascii_lowercase());
        let shape = match o
            .take("lookup.command")
            .map(|c| c.to_ascii_lowercase())
            .as_deref()
        {
            Some("get") => Shape::Value,
            Some("hgetall") => Shape::Hash,
            None if sink_command.as_deref() == Some("hset") => Shape::Hash,
            None => Shape::Value,
            Some(c) => {
                return Err(o.bad("lookup.command", &format!("'{c}' is not get or hgetall")));
            }
        };
        let key_text = match o.take("key") {
            Some(k) => k,
            None if !table.primary_key.is_empty() => default_key(table),
            None => {
                return Err(Error::MissingOption {
                    table: table.name.clone(),
                    connector: "redis".into(),
                    option: "key".into(),
                    hint: "the key to read for each probe row, e.g. 'key' = 'user:{id}' \
                           ({column} is replaced by the value the join's ON gives it); or \
                           declare a PRIMARY KEY"
                        .into(),
                });
            }
        };
        let key = parse_template(&key_text, &table.schema).map_err(|m| o.bad("key", &m))?;
        let format = o.take("format").unwrap_or_else(|| "json".into());
        let caching = crate::lookup::take_caching(&mut o)?;
        o.take_prefixed(&format!("{format}."));
        for k in [
            "sink.ttl",
            "sink.xadd.maxlen",
            "sink.max-retries",
            "sink.parallelism",
            "scan.group",
            "scan.startup.mode",
            "scan.bounded.mode",
        ] {
            o.take(k);
        }
        o.finish()?;
        let mut key_idx = Vec::new();
        for k in keys {
            key_idx.push(table.schema.index_of(k).map_err(|_| Error::Unsupported {
                table: table.name.clone(),
                message: format!("lookup key '{k}' is not a column of the table"),
            })?);
        }
        let mut key_in_request = Vec::new();
        for part in &key {
            key_in_request.push(match part {
                KeyPart::Text(t) => KeyPart::Text(t.clone()),
                KeyPart::Column(c) => match key_idx.iter().position(|k| k == c) {
                    Some(p) => KeyPart::Column(p),
                    None => {
                        return Err(Error::Unsupported {
                            table: table.name.clone(),
                            message: format!(
                                "the Redis key '{key_text}' uses column '{}', so the lookup \
                                 join's ON must give it a value (ON … = {}.{})",
                                table.schema.field(*c).name(),
                                table.name,
                                table.schema.field(*c).name()
                            ),
                        });
                    }
                },
            });
        }
        let config = RedisLookupConfig {
            target,
            shape,
            format,
            key,
            key_in_request,
            keys: key_idx,
            caching,
            table: table.clone(),
        };
        config.decoder()?;
        Ok(config)
    }

    fn decoder(&self) -> Result<Rows> {
        Ok(match self.shape {
            Shape::Hash => Rows::Text(TextRows::new(&self.table)?),
            Shape::Value => Rows::Format(
                sluice_formats::decoder_for(
                    &self.format,
                    &FormatOptions {
                        table: self.table.name.clone(),
                        schema: self.table.schema.clone(),
                        options: self.table.options.clone(),
                    },
                )
                .map_err(|source| Error::Format {
                    table: self.table.name.clone(),
                    source,
                })?,
            ),
        })
    }
}

/// What turns the stored values into rows.
enum Rows {
    Text(TextRows),
    Format(Box<dyn Decoder>),
}

/// Makes one [`RedisLookup`] per subtask.
pub struct RedisLookupFactory {
    config: Arc<RedisLookupConfig>,
}

impl RedisLookupFactory {
    /// A factory for `config`.
    pub fn new(config: RedisLookupConfig) -> Self {
        RedisLookupFactory {
            config: Arc::new(config),
        }
    }
}

impl LookupFactory for RedisLookupFactory {
    fn name(&self) -> String {
        format!("{} (redis lookup)", self.config.table.name)
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
        Ok(Box::new(RedisLookup {
            config: self.config.clone(),
            rows: self.config.decoder()?,
            conn: None,
        }))
    }
}

/// One subtask's connection.
struct RedisLookup {
    config: Arc<RedisLookupConfig>,
    rows: Rows,
    conn: Option<ConnectionManager>,
}

impl RedisLookup {
    fn error(&self, what: &str, e: impl std::fmt::Display, retryable: bool) -> Error {
        Error::External {
            table: self.config.table.name.clone(),
            message: format!("Redis at {}: {what}: {e}", self.config.target.url),
            retryable,
        }
    }

    async fn connect(&mut self) -> Result<()> {
        let conn = self
            .config
            .target
            .connect()
            .await
            .map_err(|(what, e, retryable)| self.error(what, e, retryable))?;
        self.conn = Some(conn);
        Ok(())
    }
}

#[async_trait]
impl LookupTable for RedisLookup {
    async fn open(&mut self, _task: &TaskInfo) -> sluice_runtime::Result<()> {
        Ok(self.connect().await?)
    }

    async fn lookup(&mut self, keys: &RecordBatch) -> sluice_runtime::Result<RecordBatch> {
        if self.conn.is_none() {
            self.connect().await?;
        }
        let names = render_keys(&self.config.key_in_request, keys).map_err(Error::Arrow)?;
        let mut pipe = ::redis::pipe();
        for k in &names {
            match self.config.shape {
                Shape::Value => pipe.cmd("GET").arg(k),
                Shape::Hash => pipe.cmd("HGETALL").arg(k),
            };
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(self.error("not connected", "", true).into());
        };
        let table = &self.config.table;
        let source = format!("redis lookup of {}", table.name);
        // Which request each decoded row answers.
        let mut asked: Vec<u32> = Vec::new();
        match self.config.shape {
            Shape::Value => {
                let values: std::result::Result<Vec<Option<Vec<u8>>>, _> =
                    pipe.query_async(conn).await;
                let values = match values {
                    Ok(v) => v,
                    Err(e) => {
                        self.conn = None;
                        return Err(self.error("GET failed", e, true).into());
                    }
                };
                let Rows::Format(d) = &mut self.rows else {
                    return Err(self.error("internal", "decoder mismatch", false).into());
                };
                for (i, v) in values.iter().enumerate() {
                    if let Some(v) = v {
                        d.decode(v, &source, i as u64)
                            .map_err(|source| Error::Format {
                                table: table.name.clone(),
                                source,
                            })?;
                        asked.push(i as u32);
                    }
                }
            }
            Shape::Hash => {
                let values: std::result::Result<Vec<std::collections::HashMap<String, String>>, _> =
                    pipe.query_async(conn).await;
                let values = match values {
                    Ok(v) => v,
                    Err(e) => {
                        self.conn = None;
                        return Err(self.error("HGETALL failed", e, true).into());
                    }
                };
                let Rows::Text(t) = &mut self.rows else {
                    return Err(self.error("internal", "decoder mismatch", false).into());
                };
                for (i, fields) in values.iter().enumerate() {
                    if fields.is_empty() {
                        continue;
                    }
                    let cols = table
                        .schema
                        .fields()
                        .iter()
                        .map(|f| fields.get(f.name()).map(String::as_str));
                    t.push(cols, &source, i as u64);
                    asked.push(i as u32);
                }
            }
        }
        let decoded: Decoded = match &mut self.rows {
            Rows::Text(t) => t.flush()?,
            Rows::Format(d) => d.flush().map_err(|source| Error::Format {
                table: table.name.clone(),
                source,
            })?,
        };
        let bad: BTreeSet<u64> = decoded.dead_letters.iter().map(|d| d.offset).collect();
        for d in &decoded.dead_letters {
            let key = names.get(d.offset as usize).map_or("", String::as_str);
            warn!(table = %table.name, key, reason = %d.reason, "A looked-up value does not fit the table's columns; it is ignored.");
        }
        let Some(batch) = decoded.batch else {
            return Ok(RecordBatch::new_empty(table.schema.clone()));
        };
        asked.retain(|i| !bad.contains(&u64::from(*i)));
        // The key's own columns are what the key says, whatever the value holds.
        let idx = UInt32Array::from(asked);
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for (part, req) in self.config.key.iter().zip(&self.config.key_in_request) {
            if let (KeyPart::Column(c), KeyPart::Column(r)) = (part, req) {
                columns[*c] = take(keys.column(*r).as_ref(), &idx, None).map_err(Error::Arrow)?;
            }
        }
        Ok(RecordBatch::try_new(table.schema.clone(), columns).map_err(Error::Arrow)?)
    }
}
