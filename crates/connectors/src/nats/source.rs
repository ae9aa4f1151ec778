//! The NATS source: core NATS subjects (at most once, subscribers of a queue group
//! share the messages) or a JetStream stream (replayable, exactly once with
//! checkpoints).
//!
//! JetStream: each subject filter of `subject` is a split (the whole stream when none is
//! given), dealt out to subtasks and read through a durable pull consumer of its own.
//! A checkpoint records, per split, the next stream sequence to read. On open, the
//! consumer is created afresh at that sequence (from a checkpoint, else where
//! `scan.startup.mode` says), so a restart replays exactly what followed the checkpoint.
//! Messages are acknowledged (`AckAll`, by acknowledging the last one) only when the
//! checkpoint that covers them completes, so the consumer's acknowledged position is
//! the last completed checkpoint's. A redelivery of a message already read is skipped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::message::Acker;
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use sluice_runtime::{
    DeadLetterOutput, JobMetrics, RestoredOffsets, Source, SourceEvent, SourceFactory,
    SourceOffsets, TaskInfo,
};
use sluice_types::CheckpointId;
use tracing::{info, warn};

use super::config::{METADATA, NatsSourceConfig, StartupMode};
use crate::messages::{Gather, MessageMeta, MessageRows, MetaKey};
use crate::{Error, Result};

/// Wait before a split whose consumer failed is opened again.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// Makes one [`NatsSource`] per subtask.
pub struct NatsSourceFactory {
    config: Arc<NatsSourceConfig>,
    changelog: bool,
}

impl NatsSourceFactory {
    /// Checks the format and the metadata columns.
    pub fn new(config: NatsSourceConfig) -> Result<Self> {
        let rows = MessageRows::new(&config.table, "nats", METADATA)?;
        if config.stream.is_none() && rows.wants(MetaKey::Sequence) {
            return Err(Error::Unsupported {
                table: config.table.name.clone(),
                message: "metadata 'sequence' is a JetStream stream sequence: name the \
                          'stream' to read, or drop the column"
                    .into(),
            });
        }
        Ok(NatsSourceFactory {
            changelog: rows.changelog(),
            config: Arc::new(config),
        })
    }
}

impl SourceFactory for NatsSourceFactory {
    fn name(&self) -> String {
        match &self.config.stream {
            Some(s) => format!("Source: {} (nats jetstream {s})", self.config.table.name),
            None => format!(
                "Source: {} (nats {})",
                self.config.table.name,
                self.config.subjects.join(",")
            ),
        }
    }

    fn schema(&self) -> SchemaRef {
        self.config.table.schema.clone()
    }

    fn bounded(&self) -> bool {
        self.config.bounded
    }

    fn changelog(&self) -> bool {
        self.changelog
    }

    fn create(
        &self,
        task: &TaskInfo,
        metrics: &Arc<JobMetrics>,
    ) -> sluice_runtime::Result<Box<dyn Source>> {
        let c = &self.config;
        // JetStream splits: one per subject filter (the whole stream without any).
        let filters: Vec<String> = if c.subjects.is_empty() {
            vec![String::new()]
        } else {
            c.subjects.clone()
        };
        let many = filters.len() > 1;
        let splits = filters
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % task.parallelism == task.subtask)
            .map(|(i, filter)| JetSplit {
                key: format!("seq:{filter}"),
                consumer: if many {
                    format!("{}-{i}", c.consumer)
                } else {
                    c.consumer.clone()
                },
                filter,
                next: None,
                end: None,
                done: false,
                last_acker: None,
                failed_at: None,
                received: 0,
            })
            .collect();
        Ok(Box::new(NatsSource {
            config: c.clone(),
            rows: MessageRows::new(&c.table, "nats", METADATA)?,
            client: None,
            js: None,
            splits,
            inputs: SelectAll::new(),
            counter: 0,
            snapshots: BTreeMap::new(),
            metrics: metrics.clone(),
            checkpointing: task.checkpointing,
            last_pending_check: Instant::now(),
            subtask: task.subtask,
        }))
    }
}

/// One split of a JetStream source: a subject filter and its consumer.
struct JetSplit {
    /// Checkpoint key: `seq:<filter>`.
    key: String,
    consumer: String,
    filter: String,
    /// The next stream sequence to read; `None` until known (a start by time).
    next: Option<u64>,
    /// Bounded: the stream's last sequence when the job started.
    end: Option<u64>,
    done: bool,
    /// The acknowledgement handle of the last message read since the last snapshot.
    last_acker: Option<Acker>,
    /// When its consumer failed (it is opened again a little later).
    failed_at: Option<Instant>,
    /// The highest consumer sequence received from the current consumer.
    received: u64,
}

/// A message from one of the subscriptions or consumers, tagged with its split.
type Incoming = (usize, std::result::Result<Received, String>);

/// A message as the source needs it.
struct Received {
    subject: String,
    payload: bytes::Bytes,
    headers: Option<async_nats::HeaderMap>,
    /// JetStream: stream sequence, consumer sequence, publish time (ms) and
    /// acknowledgement handle.
    jet: Option<(u64, u64, i64, Acker)>,
}

/// Reads one subtask's share of a table.
struct NatsSource {
    config: Arc<NatsSourceConfig>,
    rows: MessageRows,
    client: Option<async_nats::Client>,
    js: Option<jetstream::Context>,
    splits: Vec<JetSplit>,
    inputs: SelectAll<BoxStream<'static, Incoming>>,
    /// Running message count: the offsets of core NATS messages.
    counter: u64,
    /// The acknowledgement handles each checkpoint covers, until it completes.
    snapshots: BTreeMap<u64, Vec<Acker>>,
    metrics: Arc<JobMetrics>,
    checkpointing: bool,
    last_pending_check: Instant,
    subtask: usize,
}

fn external(table: &str, message: String) -> Error {
    Error::External {
        table: table.to_string(),
        message,
        retryable: true,
    }
}

fn unix_ms(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

impl NatsSource {
    fn table(&self) -> &str {
        &self.config.table.name
    }

    fn js(&self) -> Result<&jetstream::Context> {
        self.js.as_ref().ok_or_else(|| {
            external(
                self.table(),
                "the NATS source was read before it was opened".into(),
            )
        })
    }

    /// Subscribes to the core NATS subjects, all in the table's queue group.
    async fn subscribe(&mut self, client: &async_nats::Client) -> Result<()> {
        for (i, s) in self.config.subjects.clone().into_iter().enumerate() {
            let sub = client
                .queue_subscribe(s.clone(), self.config.queue_group.clone())
                .await
                .map_err(|e| external(self.table(), format!("cannot subscribe to '{s}': {e}")))?;
            self.inputs.push(
                sub.map(move |m| {
                    (
                        i,
                        Ok(Received {
                            subject: m.subject.to_string(),
                            payload: m.payload,
                            headers: m.headers,
                            jet: None,
                        }),
                    )
                })
                .boxed(),
            );
        }
        Ok(())
    }

    /// Creates split `i`'s consumer afresh at its next sequence (or where the startup
    /// mode says, the first time) and starts pulling from it.
    async fn open_split(&mut self, i: usize) -> Result<()> {
        let table = self.table().to_string();
        let stream_name = self.config.stream.clone().unwrap_or_default();
        let js = self.js()?.clone();
        let mut stream = js
            .get_stream(&stream_name)
            .await
            .map_err(|e| Error::External {
                table: table.clone(),
                message: format!(
                    "JetStream stream '{stream_name}' cannot be read: {e} (create it first, e.g. \
                 `nats stream add {stream_name} --subjects '…'`)"
                ),
                retryable: matches!(e.kind(), jetstream::context::GetStreamErrorKind::Request),
            })?;
        let state = stream
            .info()
            .await
            .map_err(|e| external(&table, format!("cannot read stream '{stream_name}': {e}")))?
            .state
            .clone();
        let split = &self.splits[i];
        let (consumer_name, filter) = (split.consumer.clone(), split.filter.clone());
        let next = match split.next {
            Some(n) => Some(n),
            None => match &self.config.startup {
                StartupMode::Earliest => Some(state.first_sequence.max(1)),
                StartupMode::Latest => Some(state.last_sequence + 1),
                StartupMode::Sequence(s) => Some(*s),
                StartupMode::Timestamp(_) => None,
                StartupMode::GroupOffsets => match stream.consumer_info(&consumer_name).await {
                    Ok(info) if info.ack_floor.stream_sequence > 0 => {
                        Some(info.ack_floor.stream_sequence + 1)
                    }
                    _ => Some(state.first_sequence.max(1)),
                },
            },
        };
        let deliver_policy = match (next, &self.config.startup) {
            (Some(n), _) => DeliverPolicy::ByStartSequence { start_sequence: n },
            (None, StartupMode::Timestamp(ms)) => DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(*ms) * 1_000_000,
                )
                .map_err(|e| external(&table, format!("bad start timestamp: {e}")))?,
            },
            (None, _) => DeliverPolicy::All,
        };
        // The consumer is ours: recreate it where this run starts (an old one may be
        // ahead of the checkpoint, or behind it).
        let _ = stream.delete_consumer(&consumer_name).await;
        let consumer: jetstream::consumer::Consumer<pull::Config> = stream
            .create_consumer(pull::Config {
                durable_name: Some(consumer_name.clone()),
                description: Some(format!("sluice table {table}")),
                deliver_policy,
                ack_policy: AckPolicy::All,
                ack_wait: self.config.ack_wait,
                max_ack_pending: self.config.max_ack_pending,
                filter_subject: filter.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                external(
                    &table,
                    format!(
                        "cannot create consumer '{consumer_name}' on stream '{stream_name}': {e}"
                    ),
                )
            })?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(1000)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| external(&table, format!("cannot pull from '{consumer_name}': {e}")))?;
        info!(table = %table, stream = %stream_name, consumer = %consumer_name, filter = %filter, next = ?next, "Reading JetStream.");
        let split = &mut self.splits[i];
        split.next = next;
        if self.config.bounded && split.end.is_none() {
            split.end = Some(state.last_sequence);
        }
        if split.end.is_some_and(|e| next.is_some_and(|n| n > e)) {
            split.done = true;
        }
        split.failed_at = None;
        split.received = 0;
        self.inputs.push(
            messages
                .map(move |m| {
                    let r = match m {
                        Ok(m) => match m
                            .info()
                            .map(|i| (i.stream_sequence, i.consumer_sequence, unix_ms(i.published)))
                        {
                            Ok((seq, cseq, ts)) => {
                                let (m, acker) = m.split();
                                Ok(Received {
                                    subject: m.subject.to_string(),
                                    payload: m.payload,
                                    headers: m.headers,
                                    jet: Some((seq, cseq, ts, acker)),
                                })
                            }
                            Err(e) => Err(format!("a message without JetStream metadata: {e}")),
                        },
                        Err(e) => Err(e.to_string()),
                    };
                    (i, r)
                })
                .boxed(),
        );
        Ok(())
    }

    /// Hands one message to the decoder (skipping a redelivery of one already read).
    fn add(&mut self, split: usize, m: Received) {
        let bytes = m.payload.len();
        let mut meta = MessageMeta::default();
        let offset = match m.jet {
            Some((seq, cseq, ts, acker)) => {
                let s = &mut self.splits[split];
                s.received = s.received.max(cseq);
                if s.done || s.next.is_some_and(|n| seq < n) {
                    return;
                }
                if s.end.is_some_and(|e| seq > e) {
                    // Published after the bounded run started: not this run's.
                    s.done = true;
                    return;
                }
                s.next = Some(seq + 1);
                s.last_acker = Some(acker);
                if s.end.is_some_and(|e| seq >= e) {
                    s.done = true;
                }
                meta.sequence = Some(seq as i64);
                meta.timestamp = Some(ts);
                seq
            }
            None => {
                self.counter += 1;
                self.counter
            }
        };
        if self.rows.wants(MetaKey::Topic) {
            meta.topic = Some(m.subject.clone());
        }
        if self.rows.wants(MetaKey::Headers)
            && let Some(h) = &m.headers
        {
            for (k, vs) in h.iter() {
                for v in vs {
                    meta.headers.push((k.to_string(), v.to_string()));
                }
            }
        }
        JobMetrics::add(&self.metrics.source_bytes, bytes as u64);
        self.rows.push(&m.payload, &m.subject, offset, meta);
    }

    /// Bounded: a split whose consumer has nothing left is done (its filter may match
    /// no message up to the end).
    async fn check_pending(&mut self) -> Result<()> {
        if !self.config.bounded || self.last_pending_check.elapsed() < Duration::from_millis(200) {
            return Ok(());
        }
        self.last_pending_check = Instant::now();
        let stream_name = self.config.stream.clone().unwrap_or_default();
        let js = self.js()?.clone();
        let Ok(stream) = js.get_stream_no_info(&stream_name).await else {
            return Ok(());
        };
        for s in self.splits.iter_mut().filter(|s| !s.done) {
            // Nothing left to deliver, and everything delivered was received.
            if let Ok(info) = stream.consumer_info(&s.consumer).await
                && info.num_pending == 0
                && info.delivered.consumer_sequence <= s.received
            {
                s.done = true;
            }
        }
        Ok(())
    }

    /// Acknowledges everything read so far (without checkpoints).
    async fn ack_now(&mut self) {
        let mut acked = false;
        for s in &mut self.splits {
            if let Some(a) = s.last_acker.take() {
                acked = true;
                if let Err(e) = a.ack().await {
                    warn!(table = %self.config.table.name, error = %e, "JetStream acknowledgement failed; the messages will be delivered again.");
                }
            }
        }
        if acked {
            self.flush_acks().await;
        }
    }

    /// Sends the buffered acknowledgements now: an acknowledgement is a publish that
    /// the client only buffers, and a pipeline that ends right after its last
    /// checkpoint would otherwise exit before the server hears of it.
    async fn flush_acks(&mut self) {
        let Some(client) = self.client.clone() else {
            return;
        };
        if let Err(e) = client.flush().await {
            warn!(table = %self.config.table.name, error = %e, "Sending JetStream acknowledgements failed; the messages will be delivered again.");
        }
    }
}

#[async_trait]
impl Source for NatsSource {
    async fn open(
        &mut self,
        _task: &TaskInfo,
        restored: Option<RestoredOffsets>,
    ) -> sluice_runtime::Result<()> {
        let client = self.config.target.connect(self.table()).await?;
        if self.config.stream.is_none() {
            self.subscribe(&client).await?;
            self.client = Some(client);
            return Ok(());
        }
        if let Some(r) = &restored {
            for (k, v) in r.all() {
                if let Some(s) = self.splits.iter_mut().find(|s| &s.key == k) {
                    s.next = v.as_u64();
                }
                if let Some(s) = self
                    .splits
                    .iter_mut()
                    .find(|s| k.strip_prefix("end") == s.key.strip_prefix("seq"))
                    && self.config.bounded
                {
                    s.end = v.as_u64();
                }
            }
        }
        self.js = Some(jetstream::new(client.clone()));
        self.client = Some(client);
        for i in 0..self.splits.len() {
            self.open_split(i).await?;
        }
        Ok(())
    }

    async fn next(&mut self, dead: &dyn DeadLetterOutput) -> sluice_runtime::Result<SourceEvent> {
        if self.config.stream.is_some() && self.splits.is_empty() {
            // More subtasks than splits: this one has nothing to read.
            return Ok(SourceEvent::End);
        }
        for i in 0..self.splits.len() {
            if self.splits[i]
                .failed_at
                .is_some_and(|t| t.elapsed() >= REOPEN_AFTER)
                && let Err(e) = self.open_split(i).await
            {
                warn!(table = %self.table(), error = %e, "Reopening the JetStream consumer failed; retrying.");
                self.splits[i].failed_at = Some(Instant::now());
            }
        }
        let mut gather = Gather::start();
        while let Some(wait) = gather.wait(self.rows.len()) {
            if self.splits.iter().all(|s| s.done) && !self.splits.is_empty() {
                break;
            }
            match tokio::time::timeout(wait, self.inputs.next()).await {
                Err(_) | Ok(None) => break,
                Ok(Some((split, Ok(m)))) => {
                    self.add(split, m);
                }
                Ok(Some((split, Err(e)))) => {
                    warn!(table = %self.table(), subtask = self.subtask, error = %e, "NATS consumer error; reading again from the last message read.");
                    if let Some(s) = self.splits.get_mut(split)
                        && s.failed_at.is_none()
                    {
                        s.failed_at = Some(Instant::now());
                        // Its stream is dropped with the others' when reopened.
                        self.inputs = SelectAll::new();
                        for s in &mut self.splits {
                            s.failed_at.get_or_insert_with(Instant::now);
                        }
                    }
                    break;
                }
            }
        }
        let batch = if self.rows.len() > 0 {
            self.rows.flush(dead)?
        } else {
            None
        };
        if !self.checkpointing {
            self.ack_now().await;
        }
        if let Some(b) = batch {
            return Ok(SourceEvent::Batch(b));
        }
        if !self.splits.is_empty() && self.config.bounded {
            self.check_pending().await?;
            if self.splits.iter().all(|s| s.done) {
                return Ok(SourceEvent::End);
            }
        }
        Ok(SourceEvent::Idle)
    }

    fn snapshot(&mut self, checkpoint: CheckpointId) -> sluice_runtime::Result<SourceOffsets> {
        let mut offsets = SourceOffsets::new();
        let mut ackers = Vec::new();
        for s in &mut self.splits {
            if let Some(n) = s.next {
                offsets.insert(s.key.clone(), serde_json::json!(n));
            }
            if let Some(e) = s.end {
                // A bounded run resumes towards the same end.
                offsets.insert(
                    format!("end{}", s.key.strip_prefix("seq").unwrap_or(&s.key)),
                    serde_json::json!(e),
                );
            }
            if let Some(a) = s.last_acker.take() {
                ackers.push(a);
            }
        }
        if !ackers.is_empty() {
            self.snapshots.insert(checkpoint.0, ackers);
        }
        Ok(offsets)
    }

    async fn commit(&mut self, checkpoint: CheckpointId) -> sluice_runtime::Result<()> {
        let done: Vec<u64> = self
            .snapshots
            .range(..=checkpoint.0)
            .map(|(k, _)| *k)
            .collect();
        let mut acked = false;
        for id in done {
            for a in self.snapshots.remove(&id).unwrap_or_default() {
                // A failed acknowledgement only means the messages come again after a
                // restart; the checkpoint's sequence still decides where reading resumes.
                acked = true;
                if let Err(e) = a.ack().await {
                    warn!(table = %self.table(), checkpoint = id, error = %e, "JetStream acknowledgement failed.");
                }
            }
        }
        if acked {
            self.flush_acks().await;
        }
        Ok(())
    }
}
