//! The NATS sink: each row is one message, on a fixed subject or one built from the
//! row (`alerts.{site}`), to core NATS or through JetStream.
//!
//! - `none`: published and forgotten.
//! - `at-least-once`: the client's buffer is flushed (core NATS), or every JetStream
//!   publication acknowledged, before a checkpoint completes.
//! - `exactly-once` (JetStream, with checkpoints): the messages of a checkpoint are kept
//!   in it (its pre-commit) and published when it completes, each with the
//!   `Nats-Msg-Id` `<sink.message-id>-<run>-<subtask>-<checkpoint>-<n>` (`<run>` a random
//!   number of the run that wrote them, recorded with them). After a failure the
//!   restarted job publishes the completed checkpoint's messages again with the same
//!   ids, and JetStream drops those it already stored (within the stream's
//!   `duplicate_window`, 2 minutes by default).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use async_nats::jetstream;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_trait::async_trait;
use base64::Engine;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use sluice_formats::Encoder;
use sluice_runtime::{Delivery, Sink, SinkFactory, TaskInfo};
use sluice_types::CheckpointId;

use super::config::{Guarantee, NatsSinkConfig};
use crate::template::{KeyPart, render_keys};
use crate::{ConnectorTable, Error, Result};

/// JetStream publications awaiting their acknowledgement at most.
const IN_FLIGHT: usize = 4096;

/// Makes one [`NatsSink`] per subtask.
pub struct NatsSinkFactory {
    config: Arc<NatsSinkConfig>,
    schema: SchemaRef,
}

impl NatsSinkFactory {
    /// Checks the format options and that the table has no metadata to write.
    pub fn new(table: &ConnectorTable, config: NatsSinkConfig) -> Result<Self> {
        crate::messages::no_metadata(table, "nats")?;
        crate::messages::encoder(&config.table, &config.format)?;
        Ok(NatsSinkFactory {
            schema: table.schema.clone(),
            config: Arc::new(config),
        })
    }
}

impl SinkFactory for NatsSinkFactory {
    fn name(&self) -> String {
        match &self.config.stream {
            Some(s) => format!("Sink: {} (nats jetstream {s})", self.config.table.name),
            None => format!("Sink: {} (nats)", self.config.table.name),
        }
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn parallelism(&self) -> Option<usize> {
        self.config.parallelism
    }

    fn create(&self, task: &TaskInfo) -> sluice_runtime::Result<Box<dyn Sink>> {
        let guarantee = match self.config.guarantee {
            // Without checkpoints nothing completes: publish at once.
            Guarantee::ExactlyOnce if !task.checkpointing => Guarantee::AtLeastOnce,
            g => g,
        };
        Ok(Box::new(NatsSink {
            config: self.config.clone(),
            guarantee,
            encoder: crate::messages::encoder(&self.config.table, &self.config.format)?,
            client: None,
            js: None,
            in_flight: VecDeque::new(),
            held: Vec::new(),
            pending: BTreeMap::new(),
            subtask: task.subtask,
            parallelism: task.parallelism,
            run: rand::random::<u64>(),
            dead: None,
            rejected: 0,
        }))
    }
}

/// The messages of one checkpoint, kept in it until they are published.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Held {
    /// The `Nats-Msg-Id` prefix: `<sink.message-id>-<run>-<subtask>-<checkpoint>`.
    id: String,
    /// The subtask that wrote them.
    subtask: usize,
    /// Subject and base64 payload of each message.
    messages: Vec<(String, String)>,
}

/// Writes one subtask's rows.
struct NatsSink {
    config: Arc<NatsSinkConfig>,
    guarantee: Guarantee,
    encoder: Box<dyn Encoder>,
    client: Option<async_nats::Client>,
    js: Option<jetstream::Context>,
    in_flight: VecDeque<PublishAckFuture>,
    /// Exactly-once: the messages written since the last checkpoint.
    held: Vec<(String, Vec<u8>)>,
    /// Exactly-once: each pre-committed checkpoint's messages, until it completes.
    pending: BTreeMap<u64, Held>,
    subtask: usize,
    parallelism: usize,
    /// A number of this run's own, in every message id: checkpoint ids start over
    /// (a new checkpoint directory, `--fresh`, the final checkpoint of a bounded run),
    /// ids must not.
    run: u64,
    dead: Option<Arc<dyn sluice_runtime::DeadLetterOutput>>,
    /// Rows dead-lettered so far (their offsets).
    rejected: u64,
}

impl NatsSink {
    fn error(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::External {
            table: self.config.table.name.clone(),
            message: format!("NATS at {}: {what}: {e}", self.config.target.url),
            retryable: true,
        }
    }

    fn client(&self) -> Result<&async_nats::Client> {
        self.client
            .as_ref()
            .ok_or_else(|| self.error("not connected", "the sink was written before it was opened"))
    }

    fn js(&self) -> Result<&jetstream::Context> {
        self.js
            .as_ref()
            .ok_or_else(|| self.error("not connected", "the sink was written before it was opened"))
    }

    /// Publishes one message through JetStream (with `id` as its `Nats-Msg-Id`),
    /// keeping the acknowledgement to wait for.
    async fn publish_js(
        &mut self,
        subject: String,
        payload: Vec<u8>,
        id: Option<String>,
    ) -> Result<()> {
        let mut m = PublishMessage::build().payload(payload.into());
        if let Some(s) = &self.config.stream {
            m = m.expected_stream(s);
        }
        if let Some(id) = id {
            m = m.message_id(id);
        }
        let ack = self
            .js()?
            .send_publish(subject.clone(), m)
            .await
            .map_err(|e| self.error(&format!("cannot publish to '{subject}'"), e))?;
        self.in_flight.push_back(ack);
        if self.in_flight.len() >= IN_FLIGHT {
            self.wait_acks(IN_FLIGHT / 2).await?;
        }
        Ok(())
    }

    /// Waits until at most `keep` JetStream publications are unacknowledged.
    async fn wait_acks(&mut self, keep: usize) -> Result<()> {
        while self.in_flight.len() > keep {
            let Some(ack) = self.in_flight.pop_front() else {
                break;
            };
            ack.await.map_err(|e| {
                self.error(
                    "JetStream did not store a message (is the subject in the stream?)",
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// Publishes a checkpoint's held messages with their deduplication ids.
    async fn publish_held(&mut self, held: &Held) -> Result<()> {
        let engine = base64::engine::general_purpose::STANDARD;
        for (n, (subject, payload)) in held.messages.iter().enumerate() {
            let payload = engine
                .decode(payload)
                .map_err(|e| self.error("a checkpointed message is damaged", e))?;
            self.publish_js(subject.clone(), payload, Some(format!("{}-{n}", held.id)))
                .await?;
        }
        self.wait_acks(0).await
    }

    fn subjects(&self, batch: &RecordBatch) -> Result<Vec<String>> {
        match self.config.subject.as_slice() {
            [KeyPart::Text(t)] => Ok(vec![t.clone(); batch.num_rows()]),
            parts => Ok(render_keys(parts, batch)?),
        }
    }
}

/// Why `subject` cannot be published to, if it cannot.
fn bad_subject(subject: &str) -> Option<&'static str> {
    if subject.is_empty() || subject.split('.').any(str::is_empty) {
        Some("an empty token (a NULL or empty value in the subject template?)")
    } else if subject.contains(char::is_whitespace) {
        Some("whitespace")
    } else if subject.split('.').any(|t| t == "*" || t == ">") {
        Some("a wildcard")
    } else {
        None
    }
}

impl NatsSink {
    /// Sends a row whose subject is unusable to the dead letters.
    fn reject(&mut self, subject: &str, payload: &[u8], why: &str) {
        self.rejected += 1;
        let letter = sluice_types::DeadLetter::new(
            self.config.table.name.clone(),
            format!("nats subject '{subject}'"),
            self.rejected,
            format!("the subject template made '{subject}', which has {why}"),
            payload,
        );
        match &self.dead {
            Some(d) => d.send(letter),
            None => {
                tracing::warn!(table = %self.config.table.name, reason = %letter.reason, "Row not published.")
            }
        }
    }
}

#[async_trait]
impl Sink for NatsSink {
    fn attach_dead_letters(&mut self, out: Arc<dyn sluice_runtime::DeadLetterOutput>) {
        self.dead = Some(out);
    }

    async fn open(&mut self, _task: &TaskInfo) -> sluice_runtime::Result<()> {
        let client = self.config.target.connect(&self.config.table.name).await?;
        if let Some(stream) = &self.config.stream {
            let js = jetstream::new(client.clone());
            js.get_stream(stream).await.map_err(|e| {
                self.error(
                    &format!(
                        "JetStream stream '{stream}' cannot be used (create it first, e.g. \
                         `nats stream add {stream} --subjects '…'`)"
                    ),
                    e,
                )
            })?;
            self.js = Some(js);
        }
        self.client = Some(client);
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> sluice_runtime::Result<()> {
        let n = batch.num_rows();
        let mut out = Vec::new();
        let mut ends = Vec::with_capacity(n);
        self.encoder
            .encode_each(&batch, &mut out, &mut ends)
            .map_err(|source| Error::Format {
                table: self.config.table.name.clone(),
                source,
            })?;
        let subjects = self.subjects(&batch)?;
        let mut start = 0;
        for (subject, end) in subjects.into_iter().zip(ends) {
            let payload = out[start..end].to_vec();
            start = end;
            if let Some(why) = bad_subject(&subject) {
                self.reject(&subject, &payload, why);
                continue;
            }
            match (self.guarantee, self.js.is_some()) {
                (Guarantee::ExactlyOnce, _) => self.held.push((subject, payload)),
                (_, true) => self.publish_js(subject, payload, None).await?,
                (_, false) => {
                    let client = self.client()?.clone();
                    client
                        .publish(subject.clone(), payload.into())
                        .await
                        .map_err(|e| self.error(&format!("cannot publish to '{subject}'"), e))?;
                }
            }
        }
        if self.guarantee != Guarantee::None {
            // Keep memory bounded between checkpoints.
            self.wait_acks(IN_FLIGHT).await?;
        }
        Ok(())
    }

    async fn pre_commit(
        &mut self,
        checkpoint: CheckpointId,
    ) -> sluice_runtime::Result<serde_json::Value> {
        match self.guarantee {
            Guarantee::None => Ok(serde_json::Value::Null),
            Guarantee::AtLeastOnce => {
                if self.js.is_some() {
                    self.wait_acks(0).await?;
                } else {
                    let client = self.client()?.clone();
                    client
                        .flush()
                        .await
                        .map_err(|e| self.error("cannot flush", e))?;
                }
                Ok(serde_json::Value::Null)
            }
            Guarantee::ExactlyOnce => {
                let engine = base64::engine::general_purpose::STANDARD;
                let held = Held {
                    id: format!(
                        "{}-{:016x}-{}-{}",
                        self.config.message_id, self.run, self.subtask, checkpoint.0
                    ),
                    subtask: self.subtask,
                    messages: std::mem::take(&mut self.held)
                        .into_iter()
                        .map(|(s, p)| (s, engine.encode(p)))
                        .collect(),
                };
                let value = serde_json::to_value(&held)
                    .map_err(|e| self.error("cannot record the checkpoint's messages", e))?;
                self.pending.insert(checkpoint.0, held);
                Ok(value)
            }
        }
    }

    async fn commit(&mut self, checkpoint: CheckpointId) -> sluice_runtime::Result<()> {
        let done: Vec<u64> = self
            .pending
            .range(..=checkpoint.0)
            .map(|(k, _)| *k)
            .collect();
        for id in done {
            if let Some(held) = self.pending.remove(&id) {
                self.publish_held(&held).await?;
            }
        }
        Ok(())
    }

    async fn recover(
        &mut self,
        pending: Vec<serde_json::Value>,
        _undone: Vec<serde_json::Value>,
    ) -> sluice_runtime::Result<()> {
        // Published messages cannot be taken back: `undone` has nothing to undo (an
        // exactly-once checkpoint publishes only once it completed).
        for v in pending {
            if v.is_null() {
                continue;
            }
            let held: Held = serde_json::from_value(v)
                .map_err(|e| self.error("a checkpoint's pending messages are damaged", e))?;
            // Each held set is published again by one subtask.
            if held.subtask % self.parallelism == self.subtask {
                if self.js.is_none() {
                    return Err(self
                        .error(
                            "exactly-once recovery",
                            "the checkpoint holds JetStream messages but the table names no stream",
                        )
                        .into());
                }
                self.publish_held(&held).await?;
            }
        }
        Ok(())
    }

    async fn close(&mut self) -> sluice_runtime::Result<()> {
        let held = std::mem::take(&mut self.held);
        for (subject, payload) in held {
            self.publish_js(subject, payload, None).await?;
        }
        self.wait_acks(0).await?;
        if let Some(c) = &self.client {
            c.flush().await.map_err(|e| self.error("cannot flush", e))?;
        }
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        match self.guarantee {
            Guarantee::None => Delivery::AtMostOnce,
            Guarantee::AtLeastOnce => Delivery::AtLeastOnce,
            Guarantee::ExactlyOnce => Delivery::ExactlyOnce,
        }
    }
}
