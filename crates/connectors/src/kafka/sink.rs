//! The Kafka sink (`kafka`, and `upsert-kafka` for changelogs).
//!
//! Each row becomes one record: the key columns in the key format, the value columns
//! in the value format. `upsert-kafka` writes `+I`/`+U` as key → value, `-D` as a
//! tombstone (key → null) and skips `-U`. Delivery (`sink.delivery-guarantee`):
//! - `none`: records are handed to the client and not waited for;
//! - `at-least-once`: every checkpoint waits until the broker acknowledged everything
//!   written before it (and the end of input waits for the rest); a record the broker
//!   never takes fails the job, which restarts from the last checkpoint;
//! - `exactly-once`: each checkpoint's records go into one Kafka transaction (its own
//!   `transactional.id`, `<prefix>-<subtask>-<n>`), flushed on the barrier and
//!   committed when the checkpoint completes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use sluice_formats::Encoder;
use sluice_runtime::{Delivery, Sink, SinkFactory, TaskInfo};
use sluice_types::{CheckpointId, RowKind};
use tracing::{info, warn};

use super::client::{KafkaContext, REQUEST_TIMEOUT, external, partitions};
use super::config::{Guarantee, KafkaConfig, Partitioner, Topics};
use crate::{ConnectorTable, Error, Result};

type KafkaProducer = ThreadedProducer<KafkaContext>;

/// How long the end of a checkpoint may wait for the broker's acknowledgements.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(600);

/// Where the writable metadata columns are in the sink's schema.
#[derive(Debug, Clone, Default)]
struct SinkMetadata {
    timestamp: Option<usize>,
    headers: Option<usize>,
}

/// Makes one [`KafkaSink`] per subtask.
pub struct KafkaSinkFactory {
    config: Arc<KafkaConfig>,
    schema: SchemaRef,
    metadata: SinkMetadata,
}

impl KafkaSinkFactory {
    /// A factory for `table`; refuses metadata Kafka does not let a producer set.
    pub fn new(table: &ConnectorTable, config: KafkaConfig) -> Result<Self> {
        let physical = config.schema.fields().len();
        let mut metadata = SinkMetadata::default();
        for (i, m) in table.metadata.iter().enumerate() {
            let at = physical + i;
            let t = table.schema.field(at).data_type();
            match m.key.as_str() {
                "timestamp" if matches!(t, DataType::Timestamp(..)) => {
                    metadata.timestamp = Some(at)
                }
                "headers"
                    if matches!(t, DataType::Map(f, _)
                        if matches!(f.data_type(), DataType::Struct(kv)
                            if kv.len() == 2
                                && matches!(kv[1].data_type(), DataType::Binary | DataType::Utf8))) =>
                {
                    metadata.headers = Some(at)
                }
                "timestamp" | "headers" => {
                    return Err(Error::Unsupported {
                        table: table.name.clone(),
                        message: format!(
                            "column '{}': write metadata '{}' as {}",
                            m.name,
                            m.key,
                            if m.key == "timestamp" {
                                "TIMESTAMP_LTZ(3)"
                            } else {
                                "MAP<STRING, BYTES>"
                            }
                        ),
                    });
                }
                other => {
                    return Err(Error::Unsupported {
                        table: table.name.clone(),
                        message: format!(
                            "column '{}': metadata '{other}' cannot be written (Kafka assigns \
                             it); declare the column VIRTUAL",
                            m.name
                        ),
                    });
                }
            }
        }
        if let Topics::Pattern(_) = config.topics {
            return Err(Error::Unsupported {
                table: table.name.clone(),
                message: "a sink writes one topic: use 'topic', not 'topic-pattern'".into(),
            });
        }
        if let Topics::List(l) = &config.topics
            && l.len() > 1
        {
            return Err(Error::Unsupported {
                table: table.name.clone(),
                message: "a sink writes one topic: name one in 'topic'".into(),
            });
        }
        Ok(KafkaSinkFactory {
            config: Arc::new(config),
            schema: table.schema.clone(),
            metadata,
        })
    }
}

impl SinkFactory for KafkaSinkFactory {
    fn name(&self) -> String {
        format!(
            "Sink: {} ({}, {})",
            self.config.table, self.config.connector, self.config.value_format
        )
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn parallelism(&self) -> Option<usize> {
        self.config.sink_parallelism
    }

    fn accepts_changelog(&self) -> bool {
        self.config.upsert()
    }

    fn create(&self, task: &TaskInfo) -> sluice_runtime::Result<Box<dyn Sink>> {
        let c = &self.config;
        let format_error = |source| Error::Format {
            table: c.table.clone(),
            source,
        };
        let value = sluice_formats::encoder_for(&c.value_format, &c.value_options()?)
            .map_err(format_error)?;
        let key = match &c.key_format {
            Some(f) => {
                Some(sluice_formats::encoder_for(f, &c.key_options()?).map_err(format_error)?)
            }
            None => None,
        };
        let topic = match &c.topics {
            Topics::List(l) => l.first().cloned().unwrap_or_default(),
            Topics::Pattern(_) => String::new(),
        };
        Ok(Box::new(KafkaSink {
            config: c.clone(),
            metadata: self.metadata.clone(),
            topic,
            key,
            value,
            subtask: task.subtask,
            partitions: 0,
            next_partition: task.subtask as i32,
            producer: None,
            idle: Vec::new(),
            in_flight: BTreeMap::new(),
            created: 0,
        }))
    }
}

/// Writes one subtask's rows.
struct KafkaSink {
    config: Arc<KafkaConfig>,
    metadata: SinkMetadata,
    topic: String,
    key: Option<Box<dyn Encoder>>,
    value: Box<dyn Encoder>,
    subtask: usize,
    /// The topic's partition count (for `fixed` and `round-robin`).
    partitions: i32,
    next_partition: i32,
    /// The producer rows go to now (inside an open transaction with exactly-once).
    producer: Option<Arc<KafkaProducer>>,
    /// Exactly-once: producers whose transaction was committed, ready for the next.
    idle: Vec<Arc<KafkaProducer>>,
    /// Exactly-once: transactions flushed on a barrier, by checkpoint, to commit.
    in_flight: BTreeMap<u64, Arc<KafkaProducer>>,
    /// Exactly-once: transactional producers made so far (numbers their ids).
    created: usize,
}

impl KafkaSink {
    fn transactional(&self) -> bool {
        self.config.guarantee == Guarantee::ExactlyOnce
    }

    /// A new producer; with exactly-once a transactional one, its transaction begun.
    async fn new_producer(&mut self) -> Result<Arc<KafkaProducer>> {
        let c = &self.config;
        let mut cc = c.client_config();
        // Java clients' partitioner, so keys land where other producers put them.
        if !c.properties.contains_key("partitioner") {
            cc.set("partitioner", "murmur2_random");
        }
        match c.guarantee {
            Guarantee::None => {}
            Guarantee::AtLeastOnce => {
                if !c.properties.contains_key("enable.idempotence") {
                    cc.set("enable.idempotence", "true");
                }
            }
            Guarantee::ExactlyOnce => {
                let id = format!(
                    "{}-{}-{}",
                    c.transactional_id_prefix.as_deref().unwrap_or("sluice"),
                    self.subtask,
                    self.created
                );
                self.created += 1;
                cc.set("transactional.id", &id);
            }
        }
        let producer: KafkaProducer = cc
            .create_with_context(KafkaContext::new(&c.table))
            .map_err(|e| external(c, "cannot create a producer (check 'properties.*')", e))?;
        let producer = Arc::new(producer);
        if self.transactional() {
            let p = producer.clone();
            let config = c.clone();
            blocking(move || {
                p.init_transactions(REQUEST_TIMEOUT)
                    .and_then(|_| p.begin_transaction())
                    .map_err(|e| transaction_error(&config, "start", e))
            })
            .await?;
        }
        Ok(producer)
    }

    fn producer(&self) -> Result<Arc<KafkaProducer>> {
        self.producer.clone().ok_or_else(|| Error::External {
            table: self.config.table.clone(),
            message: "the Kafka sink was written before it was opened".into(),
            retryable: false,
        })
    }

    /// Fails when the broker refused a record (with at-least-once and exactly-once).
    fn check_deliveries(&self, producer: &KafkaProducer) -> Result<()> {
        let Some((first, n)) = producer.context().take_failure() else {
            return Ok(());
        };
        let message = format!(
            "{n} record(s) could not be written to topic '{}': {first}",
            self.topic
        );
        if self.config.guarantee == Guarantee::None {
            warn!(table = %self.config.table, "{message}");
            return Ok(());
        }
        Err(external(&self.config, "delivery failed", message))
    }

    /// Waits until the broker acknowledged everything `producer` sent.
    async fn flush(&mut self, producer: Arc<KafkaProducer>) -> Result<()> {
        let config = self.config.clone();
        let p = producer.clone();
        blocking(move || {
            p.flush(FLUSH_TIMEOUT)
                .map_err(|e| external(&config, "waiting for the broker's acknowledgements", e))
        })
        .await?;
        self.check_deliveries(&producer)
    }

    /// The partition of the next record; `None` leaves it to the client (by the key's
    /// hash, or spread when there is no key).
    fn partition_for(&mut self) -> Option<i32> {
        if self.partitions <= 0 {
            return None;
        }
        match self.config.partitioner {
            Partitioner::Default => None,
            Partitioner::Fixed => Some(self.subtask as i32 % self.partitions),
            Partitioner::RoundRobin => {
                let p = self.next_partition.rem_euclid(self.partitions);
                self.next_partition = self.next_partition.wrapping_add(1);
                Some(p)
            }
        }
    }

    /// Commits the transactions of every checkpoint up to `id`.
    async fn commit_up_to(&mut self, id: u64) -> Result<()> {
        let ids: Vec<u64> = self.in_flight.range(..=id).map(|(k, _)| *k).collect();
        for k in ids {
            let Some(p) = self.in_flight.remove(&k) else {
                continue;
            };
            let config = self.config.clone();
            let q = p.clone();
            blocking(move || {
                q.commit_transaction(REQUEST_TIMEOUT)
                    .and_then(|_| q.begin_transaction())
                    .map_err(|e| transaction_error(&config, "commit", e))
            })
            .await?;
            self.idle.push(p);
        }
        Ok(())
    }
}

/// Runs blocking client calls (flush, transactions) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::External {
            table: String::new(),
            message: format!("a Kafka client call panicked: {e}"),
            retryable: false,
        })?
}

fn transaction_error(config: &KafkaConfig, what: &str, e: KafkaError) -> Error {
    let code = e.rdkafka_error_code();
    let hint = match code {
        Some(
            RDKafkaErrorCode::UnsupportedVersion
            | RDKafkaErrorCode::UnsupportedForMessageFormat
            | RDKafkaErrorCode::InvalidRequest,
        ) => {
            " — the broker does not support Kafka transactions; use a broker that does \
               (Apache Kafka ≥ 0.11, Redpanda) or 'sink.delivery-guarantee' = 'at-least-once'"
        }
        _ => "",
    };
    Error::External {
        table: config.table.clone(),
        message: format!(
            "Kafka at {}: cannot {what} the transaction of an exactly-once sink: {e}{hint}",
            config.bootstrap
        ),
        retryable: false,
    }
}

#[async_trait]
impl Sink for KafkaSink {
    async fn open(&mut self, task: &TaskInfo) -> sluice_runtime::Result<()> {
        if self.transactional() && !task.checkpointing {
            return Err(Error::Unsupported {
                table: self.config.table.clone(),
                message: "'sink.delivery-guarantee' = 'exactly-once' commits a transaction per \
                          checkpoint: run with --checkpoint-interval (or use at-least-once)"
                    .into(),
            }
            .into());
        }
        let producer = self.new_producer().await?;
        if matches!(
            self.config.partitioner,
            Partitioner::Fixed | Partitioner::RoundRobin
        ) {
            let parts = partitions(producer.client(), &self.config)?;
            self.partitions = parts.len() as i32;
        }
        self.producer = Some(producer);
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> sluice_runtime::Result<()> {
        let upsert = self.config.upsert();
        let (data, kinds) = if upsert {
            (
                sluice_types::without_row_kind(&batch),
                Some(sluice_types::kinds_of(&batch)),
            )
        } else {
            (batch, None)
        };
        let n = data.num_rows();
        let format_error = |source| Error::Format {
            table: self.config.table.clone(),
            source,
        };
        let mut values = Vec::new();
        let mut value_ends = Vec::with_capacity(n);
        self.value
            .encode_each(
                &data.project(&self.config.value_columns)?,
                &mut values,
                &mut value_ends,
            )
            .map_err(format_error)?;
        let mut keys = Vec::new();
        let mut key_ends = Vec::with_capacity(n);
        if let Some(k) = self.key.as_mut() {
            k.encode_each(
                &data.project(&self.config.key_columns)?,
                &mut keys,
                &mut key_ends,
            )
            .map_err(format_error)?;
        }
        let timestamps = match self.metadata.timestamp {
            Some(i) => Some(cast(
                data.column(i),
                &DataType::Timestamp(TimeUnit::Millisecond, None),
            )?),
            None => None,
        };
        let timestamps = timestamps
            .as_ref()
            .map(|a| a.as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>());
        let headers = self
            .metadata
            .headers
            .map(|i| data.column(i).as_map().clone());
        let producer = self.producer()?;
        for row in 0..n {
            let kind = kinds.as_ref().map_or(RowKind::Insert, |k| k[row]);
            if kind == RowKind::UpdateBefore {
                continue;
            }
            let value = (kind != RowKind::Delete).then(|| {
                let start = if row == 0 { 0 } else { value_ends[row - 1] };
                &values[start..value_ends[row]]
            });
            let key = (!key_ends.is_empty()).then(|| {
                let start = if row == 0 { 0 } else { key_ends[row - 1] };
                &keys[start..key_ends[row]]
            });
            let partition = self.partition_for();
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic);
            if let Some(k) = key {
                record = record.key(k);
            }
            if let Some(v) = value {
                record = record.payload(v);
            }
            if let Some(p) = partition {
                record = record.partition(p);
            }
            if let Some(ts) = timestamps
                && ts.is_valid(row)
            {
                record = record.timestamp(ts.value(row));
            }
            if let Some(h) = &headers
                && h.is_valid(row)
            {
                let entries = h.value(row);
                let names = entries.column(0).as_string::<i32>();
                let vals = entries.column(1);
                let mut owned = OwnedHeaders::new_with_capacity(names.len());
                for j in 0..names.len() {
                    let value: Option<&[u8]> = if vals.is_null(j) {
                        None
                    } else if let Some(b) = vals.as_binary_opt::<i32>() {
                        Some(b.value(j))
                    } else {
                        vals.as_string_opt::<i32>().map(|s| s.value(j).as_bytes())
                    };
                    owned = owned.insert(Header {
                        key: names.value(j),
                        value,
                    });
                }
                record = record.headers(owned);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        // The client's queue is full: wait for the broker to catch up
                        // (backpressure), and see whether deliveries fail meanwhile.
                        record = r;
                        self.check_deliveries(&producer)?;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => {
                        return Err(external(
                            &self.config,
                            &format!("cannot write to topic '{}'", self.topic),
                            e,
                        )
                        .into());
                    }
                }
            }
        }
        self.check_deliveries(&producer)?;
        Ok(())
    }

    async fn pre_commit(
        &mut self,
        checkpoint: CheckpointId,
    ) -> sluice_runtime::Result<serde_json::Value> {
        let producer = self.producer()?;
        match self.config.guarantee {
            Guarantee::None => Ok(serde_json::Value::Null),
            Guarantee::AtLeastOnce => {
                self.flush(producer).await?;
                Ok(serde_json::Value::Null)
            }
            Guarantee::ExactlyOnce => {
                self.flush(producer.clone()).await?;
                self.in_flight.insert(checkpoint.0, producer);
                let next = match self.idle.pop() {
                    Some(p) => p,
                    None => self.new_producer().await?,
                };
                self.producer = Some(next);
                Ok(serde_json::json!({ "subtask": self.subtask, "checkpoint": checkpoint.0 }))
            }
        }
    }

    async fn commit(&mut self, checkpoint: CheckpointId) -> sluice_runtime::Result<()> {
        if self.transactional() {
            self.commit_up_to(checkpoint.0).await?;
        }
        Ok(())
    }

    async fn recover(
        &mut self,
        pending: Vec<serde_json::Value>,
        _undone: Vec<serde_json::Value>,
    ) -> sluice_runtime::Result<()> {
        if self.transactional() && !pending.is_empty() {
            // librdkafka cannot finish another producer's transaction: opening this
            // subtask's producers fenced (aborted) what the failed run left open.
            warn!(
                table = %self.config.table,
                "The failed run left pre-committed Kafka transactions; librdkafka cannot \
                 commit another producer's transaction, so they are aborted. If the failure \
                 came between a checkpoint's completion and its commit, that checkpoint's \
                 records are missing for read_committed readers."
            );
        }
        Ok(())
    }

    async fn close(&mut self) -> sluice_runtime::Result<()> {
        let producer = self.producer()?;
        self.flush(producer.clone()).await?;
        if self.transactional() {
            self.commit_up_to(u64::MAX).await?;
            let config = self.config.clone();
            blocking(move || {
                producer
                    .commit_transaction(REQUEST_TIMEOUT)
                    .map_err(|e| transaction_error(&config, "commit", e))
            })
            .await?;
        }
        info!(table = %self.config.table, topic = %self.topic, "Kafka sink closed.");
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        match self.config.guarantee {
            Guarantee::None => Delivery::AtMostOnce,
            Guarantee::AtLeastOnce if self.config.upsert() => Delivery::ExactlyOnce,
            Guarantee::AtLeastOnce => Delivery::AtLeastOnce,
            Guarantee::ExactlyOnce => Delivery::ExactlyOnce,
        }
    }
}
