//! The Redis Streams source: reads a stream through a consumer group and acknowledges
//! entries (`XACK`) only when the checkpoint covering them completes.
//!
//! Subtask `s` reads as consumer `<group>-<s>`. Each entry's fields become the row's
//! columns by name (values parsed from text, as CSV fields are; a missing field is
//! NULL). Exactly-once with checkpoints: a checkpoint records, per subtask, the last
//! entry it emitted. After a restart, each subtask first re-reads the entries its
//! consumer (and, after rescaling down, the consumers of subtasks that no longer
//! exist) had received but not acknowledged: those the checkpoint covers are
//! acknowledged and skipped, the others are read again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::streams::StreamReadReply;
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use sluice_runtime::{
    DeadLetterOutput, JobMetrics, RestoredOffsets, Source, SourceEvent, SourceFactory,
    SourceOffsets, TaskInfo,
};
use sluice_types::CheckpointId;
use tracing::warn;

use super::config::RedisTarget;
use crate::text_rows::TextRows;
use crate::{ConnectorTable, Error, Options, Result};

/// Entries per read.
const BATCH: usize = 4096;
/// Checkpoint key: the last entry id this subtask emitted.
const LAST: &str = "last";

/// Options of the Redis Streams source.
#[derive(Debug, Clone)]
pub struct RedisSourceConfig {
    /// The server.
    pub target: RedisTarget,
    /// `key`: the stream.
    pub stream: String,
    /// `scan.group`: the consumer group (default `sluice-<table>`).
    pub group: String,
    /// `scan.startup.mode`: where a new group starts (`earliest-offset`: the first
    /// entry; `latest-offset`: entries added from now on).
    pub from_start: bool,
    /// `scan.bounded.mode` = `latest-offset`: stop at the entry that was last when the
    /// job started.
    pub bounded: bool,
    table: ConnectorTable,
}

impl RedisSourceConfig {
    /// Reads the source options of `table`; unknown options are errors.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "redis", &table.options);
        let target = super::config::target(&mut o)?;
        let stream = o.take_required("key", "the stream to read, e.g. 'key' = 'events'")?;
        if stream.contains('{') {
            return Err(o.bad(
                "key",
                "a source reads one stream: write its name, without {column}",
            ));
        }
        let group = o
            .take("scan.group")
            .unwrap_or_else(|| format!("sluice-{}", table.name));
        let from_start = match o.take("scan.startup.mode").as_deref() {
            None | Some("earliest-offset") => true,
            Some("latest-offset") => false,
            Some(v) => {
                return Err(o.bad(
                    "scan.startup.mode",
                    &format!("'{v}' is not one of earliest-offset, latest-offset"),
                ));
            }
        };
        let bounded = match o.take("scan.bounded.mode").as_deref() {
            None | Some("unbounded") => false,
            Some("latest-offset") => true,
            Some(v) => {
                return Err(o.bad(
                    "scan.bounded.mode",
                    &format!("'{v}' is not one of unbounded, latest-offset"),
                ));
            }
        };
        // Sink options may sit on the same table (it can be written and read).
        for k in [
            "sink.command",
            "sink.ttl",
            "sink.xadd.maxlen",
            "sink.max-retries",
            "sink.parallelism",
            "format",
        ] {
            o.take(k);
        }
        o.take_prefixed("csv.");
        o.take_prefixed("json.");
        o.take_prefixed("lookup.");
        o.finish()?;
        Ok(RedisSourceConfig {
            target,
            stream,
            group,
            from_start,
            bounded,
            table: table.clone(),
        })
    }
}

/// Makes one [`RedisStreamSource`] per subtask.
pub struct RedisSourceFactory {
    config: Arc<RedisSourceConfig>,
}

impl RedisSourceFactory {
    /// Checks that the table's types can be read from text.
    pub fn new(config: RedisSourceConfig) -> Result<Self> {
        TextRows::new(&config.table)?;
        Ok(RedisSourceFactory {
            config: Arc::new(config),
        })
    }
}

impl SourceFactory for RedisSourceFactory {
    fn name(&self) -> String {
        format!(
            "Source: {} (redis stream {})",
            self.config.table.name, self.config.stream
        )
    }

    fn schema(&self) -> SchemaRef {
        self.config.table.schema.clone()
    }

    fn bounded(&self) -> bool {
        self.config.bounded
    }

    fn create(
        &self,
        task: &TaskInfo,
        metrics: &Arc<JobMetrics>,
    ) -> sluice_runtime::Result<Box<dyn Source>> {
        Ok(Box::new(RedisStreamSource {
            config: self.config.clone(),
            rows_text: TextRows::new(&self.config.table)?,
            conn: None,
            consumer: format!("{}-{}", self.config.group, task.subtask),
            replay: Vec::new(),
            last: None,
            end: None,
            done: false,
            unacked: Vec::new(),
            snapshots: BTreeMap::new(),
            metrics: metrics.clone(),
            checkpointing: task.checkpointing,
        }))
    }
}

/// A consumer whose unacknowledged entries this subtask reads first after a restart,
/// skipping (and acknowledging) those up to `covered`.
struct Replay {
    consumer: String,
    covered: Option<String>,
    next: String,
}

struct RedisStreamSource {
    config: Arc<RedisSourceConfig>,
    rows_text: TextRows,
    conn: Option<ConnectionManager>,
    consumer: String,
    replay: Vec<Replay>,
    /// The last entry id emitted.
    last: Option<String>,
    /// Bounded: the id of the stream's last entry at the start.
    end: Option<String>,
    done: bool,
    /// Ids emitted since the last snapshot.
    unacked: Vec<String>,
    /// Ids to acknowledge when each checkpoint completes.
    snapshots: BTreeMap<u64, Vec<String>>,
    metrics: Arc<JobMetrics>,
    /// Without checkpoints entries are acknowledged as soon as they are emitted.
    checkpointing: bool,
}

/// `a` ≤ `b` for stream ids `ms-seq`.
fn id_le(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> (u64, u64) {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
    };
    parse(a) <= parse(b)
}

impl RedisStreamSource {
    fn error(&self, what: &str, e: impl std::fmt::Display, retryable: bool) -> Error {
        Error::External {
            table: self.config.table.name.clone(),
            message: format!("Redis at {}: {what}: {e}", self.config.target.url),
            retryable,
        }
    }

    fn conn(&mut self) -> Result<&mut ConnectionManager> {
        let table = self.config.table.name.clone();
        self.conn.as_mut().ok_or(Error::External {
            table,
            message: "the Redis source was read before it was opened".into(),
            retryable: false,
        })
    }

    /// One XREADGROUP as `consumer` from `id` (`>` for new entries); `None` when the
    /// connection failed (it is retried on the next call).
    async fn read(
        &mut self,
        consumer: &str,
        id: &str,
    ) -> Result<Option<Vec<::redis::streams::StreamId>>> {
        let mut cmd = ::redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(&self.config.group).arg(consumer);
        if id == ">" {
            // Wait a little for new entries rather than spin.
            cmd.arg("BLOCK").arg(20);
        }
        let cmd = cmd
            .arg("COUNT")
            .arg(BATCH)
            .arg("STREAMS")
            .arg(&self.config.stream)
            .arg(id)
            .clone();
        let conn = self.conn()?;
        let reply = tokio::time::timeout(Duration::from_secs(2), cmd.query_async(conn)).await;
        let Ok(reply) = reply else {
            warn!(table = %self.config.table.name, "Redis did not answer XREADGROUP within 2 s; retrying.");
            return Ok(None);
        };
        let reply: Option<StreamReadReply> = match reply {
            Ok(r) => r,
            Err(e) => {
                let transient = e.is_io_error() || e.is_connection_dropped() || e.is_timeout();
                if transient {
                    // The connection manager reconnects; try again on the next call.
                    warn!(table = %self.config.table.name, error = %e, "Redis read failed; retrying.");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return Ok(None);
                }
                return Err(self.error("XREADGROUP failed", e, false));
            }
        };
        Ok(Some(
            reply
                .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
                .unwrap_or_default(),
        ))
    }

    async fn ack(&mut self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut cmd = ::redis::cmd("XACK");
        cmd.arg(&self.config.stream)
            .arg(&self.config.group)
            .arg(ids);
        cmd.query_async::<i64>(self.conn()?)
            .await
            .map(|_| ())
            .map_err(|e| self.error("XACK failed", e, true))
    }

    /// Feeds entries to the decoder: fields by column name, a missing one NULL.
    fn feed(&mut self, entries: &[::redis::streams::StreamId]) {
        let schema = self.config.table.schema.clone();
        for (n, e) in entries.iter().enumerate() {
            let texts: Vec<Option<String>> = schema
                .fields()
                .iter()
                .map(|f| {
                    e.map
                        .get(f.name())
                        .and_then(|v| ::redis::from_redis_value::<String>(v).ok())
                })
                .collect();
            let source = format!("{}/{}", self.config.stream, e.id);
            let bytes = self
                .rows_text
                .push(texts.iter().map(Option::as_deref), &source, n as u64);
            JobMetrics::add(&self.metrics.source_bytes, bytes as u64);
            self.unacked.push(e.id.clone());
            self.last = Some(e.id.clone());
        }
    }
}

#[async_trait]
impl Source for RedisStreamSource {
    async fn open(
        &mut self,
        task: &TaskInfo,
        restored: Option<RestoredOffsets>,
    ) -> sluice_runtime::Result<()> {
        let conn = self
            .config
            .target
            .connect()
            .await
            .map_err(|(what, e, retryable)| self.error(what, e, retryable))?;
        self.conn = Some(conn);
        // The group, made once (a second MKSTREAM/CREATE answers BUSYGROUP).
        let start = if self.config.from_start { "0" } else { "$" };
        let created: std::result::Result<(), _> = ::redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg(start)
            .arg("MKSTREAM")
            .query_async(self.conn()?)
            .await;
        if let Err(e) = created
            && e.code() != Some("BUSYGROUP")
        {
            return Err(self
                .error("cannot create the consumer group", e, false)
                .into());
        }
        if self.config.bounded {
            let last: Vec<(String, Vec<(String, String)>)> = ::redis::cmd("XREVRANGE")
                .arg(&self.config.stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(self.conn()?)
                .await
                .map_err(|e| self.error("cannot read the stream's end", e, true))?;
            match last.into_iter().next() {
                Some((id, _)) => self.end = Some(id),
                None => self.done = true,
            }
        }
        // Consumers whose unacknowledged entries this subtask takes over: its own, and
        // those of earlier subtasks beyond the new parallelism that map to it.
        let (old_parallelism, covered): (usize, Vec<Option<String>>) = match &restored {
            Some(r) => (
                r.parallelism,
                r.subtasks
                    .iter()
                    .map(|m| m.get(LAST).and_then(|v| v.as_str()).map(str::to_string))
                    .collect(),
            ),
            None => (task.parallelism, Vec::new()),
        };
        for j in 0..old_parallelism.max(task.parallelism) {
            let mine = if j < task.parallelism {
                j == task.subtask
            } else {
                j % task.parallelism == task.subtask
            };
            if mine {
                self.replay.push(Replay {
                    consumer: format!("{}-{j}", self.config.group),
                    covered: covered.get(j).cloned().flatten(),
                    next: "0".into(),
                });
            }
        }
        Ok(())
    }

    async fn next(&mut self, dead: &dyn DeadLetterOutput) -> sluice_runtime::Result<SourceEvent> {
        if self.done {
            return Ok(SourceEvent::End);
        }
        let entries = if let Some(r) = self.replay.first() {
            let (consumer, from, covered) = (r.consumer.clone(), r.next.clone(), r.covered.clone());
            let Some(got) = self.read(&consumer, &from).await? else {
                return Ok(SourceEvent::Idle);
            };
            if got.is_empty() {
                self.replay.remove(0);
                return Ok(SourceEvent::Idle);
            }
            if let (Some(r), Some(last)) = (self.replay.first_mut(), got.last()) {
                r.next = last.id.clone();
            }
            // Entries the checkpoint covers were counted already: acknowledge them.
            let (done, again): (Vec<_>, Vec<_>) = got
                .into_iter()
                .partition(|e| covered.as_deref().is_some_and(|c| id_le(&e.id, c)));
            let done: Vec<String> = done.into_iter().map(|e| e.id).collect();
            self.ack(&done).await?;
            again
        } else {
            let Some(got) = self.read(&self.consumer.clone(), ">").await? else {
                return Ok(SourceEvent::Idle);
            };
            // Bounded: every entry up to the end existed at the start, so when the group
            // has nothing new, all of them were handed out (to this or another subtask).
            if got.is_empty() && self.end.is_some() {
                self.done = true;
                return Ok(SourceEvent::End);
            }
            got
        };
        let mut entries = entries;
        if let Some(end) = &self.end {
            if let Some(cut) = entries.iter().position(|e| !id_le(&e.id, end)) {
                entries.truncate(cut);
                self.done = self.replay.is_empty();
            } else if entries.last().is_some_and(|e| e.id == *end) && self.replay.is_empty() {
                self.done = true;
            }
        }
        if entries.is_empty() {
            return Ok(if self.done {
                SourceEvent::End
            } else {
                SourceEvent::Idle
            });
        }
        self.feed(&entries);
        if !self.checkpointing {
            let ids = std::mem::take(&mut self.unacked);
            self.ack(&ids).await?;
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

    fn snapshot(&mut self, checkpoint: CheckpointId) -> sluice_runtime::Result<SourceOffsets> {
        let ids = std::mem::take(&mut self.unacked);
        self.snapshots.entry(checkpoint.0).or_default().extend(ids);
        let mut out = SourceOffsets::new();
        if let Some(l) = &self.last {
            out.insert(LAST.into(), serde_json::Value::from(l.clone()));
        }
        Ok(out)
    }

    async fn commit(&mut self, checkpoint: CheckpointId) -> sluice_runtime::Result<()> {
        let keys: Vec<u64> = self
            .snapshots
            .range(..=checkpoint.0)
            .map(|(k, _)| *k)
            .collect();
        let mut ids = Vec::new();
        for k in keys {
            ids.extend(self.snapshots.remove(&k).unwrap_or_default());
        }
        self.ack(&ids).await?;
        Ok(())
    }
}
