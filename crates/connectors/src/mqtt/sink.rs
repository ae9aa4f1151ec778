//! The MQTT sink: each row is one message, on a fixed topic or one built from the row
//! (`alerts/{device}`), at the table's QoS. At least once with QoS 1/2: a checkpoint
//! completes only after the broker acknowledged every message published before it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use sluice_formats::Encoder;
use sluice_runtime::{Delivery, Sink, SinkFactory, TaskInfo};
use sluice_types::CheckpointId;
use tokio::sync::mpsc;
use tracing::warn;

use super::client::{Acks, Event, MqttClient};
use super::config::{Guarantee, MqttSinkConfig};
use crate::template::{KeyPart, render_keys};
use crate::{ConnectorTable, Error, Result};

/// How long a checkpoint waits for the broker's acknowledgements before it fails.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(60);

/// Makes one [`MqttSink`] per subtask.
pub struct MqttSinkFactory {
    config: Arc<MqttSinkConfig>,
    schema: SchemaRef,
}

impl MqttSinkFactory {
    /// Checks the format options and that the table has no metadata to write.
    pub fn new(table: &ConnectorTable, config: MqttSinkConfig) -> Result<Self> {
        crate::messages::no_metadata(table, "mqtt")?;
        crate::messages::encoder(&config.table, &config.format)?;
        Ok(MqttSinkFactory {
            schema: table.schema.clone(),
            config: Arc::new(config),
        })
    }
}

impl SinkFactory for MqttSinkFactory {
    fn name(&self) -> String {
        format!("Sink: {} (mqtt)", self.config.table.name)
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn parallelism(&self) -> Option<usize> {
        self.config.parallelism
    }

    fn create(&self, task: &TaskInfo) -> sluice_runtime::Result<Box<dyn Sink>> {
        Ok(Box::new(MqttSink {
            config: self.config.clone(),
            encoder: crate::messages::encoder(&self.config.table, &self.config.format)?,
            client: None,
            events: None,
            acks: Arc::new(Acks::default()),
            published: 0,
            client_id: format!("{}-{}", self.config.client_id, task.subtask),
            dead: None,
            rejected: 0,
        }))
    }
}

/// Writes one subtask's rows.
struct MqttSink {
    config: Arc<MqttSinkConfig>,
    encoder: Box<dyn Encoder>,
    client: Option<MqttClient>,
    events: Option<mpsc::Receiver<Event>>,
    acks: Arc<Acks>,
    /// QoS 1/2 messages published so far.
    published: u64,
    client_id: String,
    dead: Option<Arc<dyn sluice_runtime::DeadLetterOutput>>,
    /// Rows dead-lettered so far (their offsets).
    rejected: u64,
}

impl MqttSink {
    fn error(&self, message: String) -> Error {
        Error::External {
            table: self.config.table.name.clone(),
            message,
            retryable: true,
        }
    }

    /// Logs what the connection task reported (without waiting).
    fn drain_events(&mut self) {
        let Some(events) = self.events.as_mut() else {
            return;
        };
        while let Ok(e) = events.try_recv() {
            if let Event::Down(why) | Event::Refused(why) = e {
                warn!(table = %self.config.table.name, url = %self.config.target.url, error = %why, "MQTT connection failed; retrying with backoff.");
            }
        }
    }

    /// Waits until the broker acknowledged every QoS 1/2 message published.
    async fn confirm(&mut self) -> Result<()> {
        if self.config.qos == 0 {
            return Ok(());
        }
        let started = Instant::now();
        while self.acks.confirmed.load(Ordering::Relaxed) < self.published {
            self.drain_events();
            if started.elapsed() > CONFIRM_TIMEOUT {
                return Err(self.error(format!(
                    "the MQTT broker at {} acknowledged {} of {} messages within {:?}",
                    self.config.target.url,
                    self.acks.confirmed.load(Ordering::Relaxed),
                    self.published,
                    CONFIRM_TIMEOUT
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    fn topics(&self, batch: &RecordBatch) -> Result<Vec<String>> {
        match self.config.topic.as_slice() {
            [KeyPart::Text(t)] => Ok(vec![t.clone(); batch.num_rows()]),
            parts => Ok(render_keys(parts, batch)?),
        }
    }
}

#[async_trait]
impl Sink for MqttSink {
    fn attach_dead_letters(&mut self, out: Arc<dyn sluice_runtime::DeadLetterOutput>) {
        self.dead = Some(out);
    }

    async fn open(&mut self, _task: &TaskInfo) -> sluice_runtime::Result<()> {
        let (client, events) = MqttClient::start(
            &self.config.target,
            &self.client_id,
            true,
            false,
            Vec::new(),
            self.config.qos,
            self.acks.clone(),
        )
        .map_err(|m| self.error(m))?;
        self.client = Some(client);
        self.events = Some(events);
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> sluice_runtime::Result<()> {
        self.drain_events();
        let n = batch.num_rows();
        let mut out = Vec::new();
        let mut ends = Vec::with_capacity(n);
        self.encoder
            .encode_each(&batch, &mut out, &mut ends)
            .map_err(|source| Error::Format {
                table: self.config.table.name.clone(),
                source,
            })?;
        let topics = self.topics(&batch)?;
        let client = self
            .client
            .clone()
            .ok_or_else(|| self.error("the MQTT sink was written before it was opened".into()))?;
        let mut start = 0;
        for (topic, end) in topics.into_iter().zip(ends) {
            let payload = out[start..end].to_vec();
            start = end;
            if topic.is_empty() || topic.contains(['+', '#', '\0']) {
                self.rejected += 1;
                let letter = sluice_types::DeadLetter::new(
                    self.config.table.name.clone(),
                    format!("mqtt topic '{topic}'"),
                    self.rejected,
                    format!(
                        "the topic template made '{topic}', which is empty or holds a wildcard"
                    ),
                    &payload,
                );
                match &self.dead {
                    Some(d) => d.send(letter),
                    None => {
                        warn!(table = %self.config.table.name, reason = %letter.reason, "Row not published.")
                    }
                }
                continue;
            }
            client
                .publish(topic, self.config.qos, self.config.retain, payload)
                .await
                .map_err(|e| self.error(format!("cannot publish: {e}")))?;
            if self.config.qos > 0 {
                self.published += 1;
            }
        }
        Ok(())
    }

    async fn pre_commit(
        &mut self,
        _checkpoint: CheckpointId,
    ) -> sluice_runtime::Result<serde_json::Value> {
        if self.config.guarantee == Guarantee::AtLeastOnce {
            self.confirm().await?;
        }
        Ok(serde_json::Value::Null)
    }

    async fn close(&mut self) -> sluice_runtime::Result<()> {
        self.confirm().await?;
        if let Some(c) = &self.client {
            c.disconnect().await;
        }
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        match self.config.guarantee {
            Guarantee::None => Delivery::AtMostOnce,
            Guarantee::AtLeastOnce => Delivery::AtLeastOnce,
        }
    }
}
