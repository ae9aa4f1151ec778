//! The MQTT source: subscribes to topic filters and turns each message into a row.
//!
//! QoS 1 and 2 messages are acknowledged (PUBACK / PUBREC) only when the checkpoint
//! that covers them completes; until then the broker holds them for the session (which
//! is kept: `clean-session` is false by default) and delivers them again after a
//! restart. A checkpoint records the packet ids (and a checksum of topic and payload)
//! of the messages it covers whose acknowledgement the broker may not have got: when
//! the restarted source gets one of those again (flagged DUP, same id and checksum),
//! it is acknowledged and skipped, since the restored state already holds it. A
//! message delivered again after a reconnect within a run is skipped the same way,
//! whether its checkpoint is still open or its acknowledgement was lost with the
//! connection. Without checkpoints, messages are acknowledged once read.
//!
//! The broker must let enough messages be in flight for one checkpoint interval:
//! MQTT 5 clients ask for 65,535; for 3.1.1 clients Mosquitto's `max_inflight_messages`
//! (20 by default) applies, and its `max_queued_messages` (1,000) bounds what it keeps
//! for the session. See docs/connectors/mqtt.md.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use sluice_runtime::{
    DeadLetterOutput, JobMetrics, RestoredOffsets, Source, SourceEvent, SourceFactory,
    SourceOffsets, TaskInfo,
};
use sluice_types::CheckpointId;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::client::{Acks, Delivered, Event, MqttClient};
use super::config::{METADATA, MqttSourceConfig};
use crate::messages::{Gather, MessageMeta, MessageRows, MetaKey};
use crate::{Error, Result};

/// Checkpoint key prefix: the unacknowledged messages a checkpoint covers, per client
/// id (each client's session has packet ids of its own).
const COVERED: &str = "covered:";

/// Makes one [`MqttSource`] per subtask.
pub struct MqttSourceFactory {
    config: Arc<MqttSourceConfig>,
    changelog: bool,
}

impl MqttSourceFactory {
    /// Checks the format and the metadata columns.
    pub fn new(config: MqttSourceConfig) -> Result<Self> {
        let rows = MessageRows::new(&config.table, "mqtt", METADATA)?;
        if rows.wants(MetaKey::Headers) && config.target.version != super::config::Version::V5 {
            return Err(Error::Unsupported {
                table: config.table.name.clone(),
                message: "metadata 'properties' (user properties) needs MQTT 5: set \
                          'mqtt.version' = '5'"
                    .into(),
            });
        }
        Ok(MqttSourceFactory {
            changelog: rows.changelog(),
            config: Arc::new(config),
        })
    }
}

impl SourceFactory for MqttSourceFactory {
    fn name(&self) -> String {
        format!(
            "Source: {} (mqtt {})",
            self.config.table.name,
            self.config.topics.join(",")
        )
    }

    fn schema(&self) -> SchemaRef {
        self.config.table.schema.clone()
    }

    fn bounded(&self) -> bool {
        false
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
        Ok(Box::new(MqttSource {
            reads: task.subtask == 0 || c.shared(),
            client_id: if task.subtask == 0 {
                c.client_id.clone()
            } else {
                format!("{}-{}", c.client_id, task.subtask)
            },
            config: c.clone(),
            rows: MessageRows::new(&c.table, "mqtt", METADATA)?,
            client: None,
            events: None,
            counter: 0,
            emitted: HashMap::new(),
            since_snapshot: Vec::new(),
            snapshots: BTreeMap::new(),
            covered: HashMap::new(),
            acked: HashMap::new(),
            to_ack: Vec::new(),
            metrics: metrics.clone(),
            checkpointing: task.checkpointing,
            down_since: None,
        }))
    }
}

/// Reads one subtask's messages.
struct MqttSource {
    config: Arc<MqttSourceConfig>,
    /// False for subtasks past the first without shared subscriptions: they end at once.
    reads: bool,
    client_id: String,
    rows: MessageRows,
    client: Option<MqttClient>,
    events: Option<mpsc::Receiver<Event>>,
    /// Running message count: the offsets dead letters name.
    counter: u64,
    /// Messages read and not yet acknowledged, by packet id: checksum and QoS.
    emitted: HashMap<u16, (u32, u8)>,
    /// Packet ids read since the last snapshot.
    since_snapshot: Vec<u16>,
    /// The packet ids each checkpoint acknowledges when it completes.
    snapshots: BTreeMap<u64, Vec<u16>>,
    /// From the restored checkpoint: messages it covers that the broker may deliver
    /// again (packet id → checksum).
    covered: HashMap<u16, u32>,
    /// Messages acknowledged (their checkpoint completed) whose packet id the broker
    /// has not used again: if the acknowledgement was lost, they come again (DUP).
    acked: HashMap<u16, u32>,
    /// Messages to acknowledge now (QoS 0 excluded): (packet id, QoS).
    to_ack: Vec<(u16, u8)>,
    metrics: Arc<JobMetrics>,
    checkpointing: bool,
    /// Since when the broker is unreachable (for the log).
    down_since: Option<Instant>,
}

fn checksum(m: &Delivered) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(m.topic.as_bytes());
    h.update(&[0]);
    h.update(&m.payload);
    h.finalize()
}

impl MqttSource {
    fn client(&self) -> Result<&MqttClient> {
        self.client.as_ref().ok_or_else(|| Error::External {
            table: self.config.table.name.clone(),
            message: "the MQTT source was read before it was opened".into(),
            retryable: false,
        })
    }

    /// Takes one delivered message: a row, unless it is a delivery again (DUP) of one
    /// already read.
    fn add(&mut self, m: Delivered) {
        if m.qos > 0 {
            let sum = checksum(&m);
            let again = |known: Option<&u32>| m.dup && known == Some(&sum);
            if again(self.emitted.get(&m.pkid).map(|(s, _)| s)) {
                // Delivered again after a reconnect: acknowledged with its checkpoint.
                return;
            }
            if again(self.acked.get(&m.pkid)) || again(self.covered.get(&m.pkid)) {
                // Its checkpoint completed (the acknowledgement was lost on the way), or
                // the restored checkpoint holds it: acknowledge it again, read it not.
                self.to_ack.push((m.pkid, m.qos));
                return;
            }
            // A new message: the broker reuses a packet id only once it got the
            // acknowledgement of the one before.
            self.acked.remove(&m.pkid);
            self.covered.remove(&m.pkid);
            self.emitted.insert(m.pkid, (sum, m.qos));
            if self.checkpointing {
                self.since_snapshot.push(m.pkid);
            } else {
                self.to_ack.push((m.pkid, m.qos));
            }
        }
        self.counter += 1;
        let mut meta = MessageMeta::default();
        if self.rows.wants(MetaKey::Topic) {
            meta.topic = Some(m.topic.clone());
        }
        meta.qos = Some(i32::from(m.qos));
        meta.retain = Some(m.retain);
        meta.headers = m.properties;
        JobMetrics::add(&self.metrics.source_bytes, m.payload.len() as u64);
        self.rows.push(&m.payload, &m.topic, self.counter, meta);
    }

    /// The broker has no session for this client (a first connection, or one it lost):
    /// the packet ids read so far mean nothing to it any more, and acknowledging them
    /// would acknowledge other messages. Forget them.
    fn session_lost(&mut self) {
        let unacked = self.emitted.len();
        if unacked > 0 {
            warn!(table = %self.config.table.name, unacked, "The MQTT broker lost the session: messages read but not acknowledged will not come again (they are in the pipeline already).");
        }
        self.emitted.clear();
        self.acked.clear();
        self.covered.clear();
        self.since_snapshot.clear();
        self.snapshots.clear();
        self.to_ack.clear();
    }

    /// Queues the acknowledgements due; those that find the queue full stay due (the
    /// connection task drains it once connected).
    fn ack_pending(&mut self) -> Result<()> {
        if self.to_ack.is_empty() {
            return Ok(());
        }
        let client = self.client()?.clone();
        let mut left = Vec::new();
        for (pkid, qos) in std::mem::take(&mut self.to_ack) {
            if client.try_ack(pkid, qos) {
                if let Some((sum, _)) = self.emitted.remove(&pkid) {
                    self.acked.insert(pkid, sum);
                }
            } else {
                left.push((pkid, qos));
            }
        }
        self.to_ack = left;
        Ok(())
    }
}

#[async_trait]
impl Source for MqttSource {
    async fn open(
        &mut self,
        _task: &TaskInfo,
        restored: Option<RestoredOffsets>,
    ) -> sluice_runtime::Result<()> {
        if !self.reads {
            return Ok(());
        }
        if let Some(r) = &restored {
            let own = format!("{COVERED}{}", self.client_id);
            for (k, v) in r.all() {
                if *k != own {
                    continue;
                }
                if let Some(list) = v.as_array() {
                    for pair in list {
                        if let (Some(p), Some(s)) = (
                            pair.get(0).and_then(serde_json::Value::as_u64),
                            pair.get(1).and_then(serde_json::Value::as_u64),
                        ) {
                            self.covered.insert(p as u16, s as u32);
                        }
                    }
                }
            }
        }
        let (client, events) = MqttClient::start(
            &self.config.target,
            &self.client_id,
            self.config.clean_session,
            true,
            self.config.topics.clone(),
            self.config.qos,
            Arc::new(Acks::default()),
        )
        .map_err(|m| Error::External {
            table: self.config.table.name.clone(),
            message: m,
            retryable: false,
        })?;
        self.client = Some(client);
        self.events = Some(events);
        Ok(())
    }

    async fn next(&mut self, dead: &dyn DeadLetterOutput) -> sluice_runtime::Result<SourceEvent> {
        if !self.reads {
            return Ok(SourceEvent::End);
        }
        self.ack_pending()?;
        let mut gather = Gather::start();
        while let Some(wait) = gather.wait(self.rows.len()) {
            let Some(events) = self.events.as_mut() else {
                break;
            };
            match tokio::time::timeout(wait, events.recv()).await {
                Err(_) => break,
                Ok(None) => {
                    return Err(Error::External {
                        table: self.config.table.name.clone(),
                        message: format!("the MQTT connection to {} ended", self.config.target.url),
                        retryable: true,
                    }
                    .into());
                }
                Ok(Some(Event::Message(m))) => {
                    self.add(m);
                }
                Ok(Some(Event::Up(session))) => {
                    if let Some(t) = self.down_since.take() {
                        info!(table = %self.config.table.name, down_for = ?t.elapsed(), "MQTT broker reachable again.");
                    }
                    if !session {
                        self.session_lost();
                    }
                }
                Ok(Some(Event::Refused(why))) => {
                    return Err(Error::External {
                        table: self.config.table.name.clone(),
                        message: format!("MQTT at {}: {why}", self.config.target.url),
                        retryable: false,
                    }
                    .into());
                }
                Ok(Some(Event::Down(why))) => {
                    if self.down_since.is_none() {
                        self.down_since = Some(Instant::now());
                    }
                    warn!(table = %self.config.table.name, url = %self.config.target.url, error = %why, "MQTT connection failed; retrying with backoff.");
                }
            }
        }
        let batch = if self.rows.len() > 0 {
            self.rows.flush(dead)?
        } else {
            None
        };
        self.ack_pending()?;
        Ok(match batch {
            Some(b) => SourceEvent::Batch(b),
            None => SourceEvent::Idle,
        })
    }

    fn snapshot(&mut self, checkpoint: CheckpointId) -> sluice_runtime::Result<SourceOffsets> {
        let mut offsets = SourceOffsets::new();
        if !self.reads {
            return Ok(offsets);
        }
        // Everything read and not yet acknowledged is in the state this checkpoint
        // takes; so are the restored checkpoint's messages not delivered again yet.
        let mut covered: Vec<(u16, u32)> =
            self.emitted.iter().map(|(p, (s, _))| (*p, *s)).collect();
        covered.extend(self.covered.iter().map(|(p, s)| (*p, *s)));
        covered.extend(self.acked.iter().map(|(p, s)| (*p, *s)));
        covered.sort_unstable();
        covered.dedup_by_key(|(p, _)| *p);
        offsets.insert(
            format!("{COVERED}{}", self.client_id),
            serde_json::json!(covered),
        );
        let ids = std::mem::take(&mut self.since_snapshot);
        if !ids.is_empty() {
            self.snapshots.insert(checkpoint.0, ids);
        }
        Ok(offsets)
    }

    async fn commit(&mut self, checkpoint: CheckpointId) -> sluice_runtime::Result<()> {
        let done: Vec<u64> = self
            .snapshots
            .range(..=checkpoint.0)
            .map(|(k, _)| *k)
            .collect();
        for id in done {
            for pkid in self.snapshots.remove(&id).unwrap_or_default() {
                if let Some((_, qos)) = self.emitted.get(&pkid) {
                    self.to_ack.push((pkid, *qos));
                }
            }
        }
        self.ack_pending()?;
        Ok(())
    }
}
