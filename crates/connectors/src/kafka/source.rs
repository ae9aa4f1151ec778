//! The Kafka source: partitions are splits dealt out to subtasks; each subtask reads its
//! partitions from the offsets a checkpoint recorded (else from `scan.startup.mode`),
//! decodes keys and values into batches, and commits offsets to the consumer group
//! after each completed checkpoint.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int8Array, UInt32Array, new_null_array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sluice_formats::{Decoded, Decoder};
use sluice_runtime::{
    DeadLetterOutput, JobMetrics, RestoredOffsets, Source, SourceEvent, SourceFactory,
    SourceOffsets, SplitInfo, TaskInfo,
};
use sluice_types::{CheckpointId, RowKind};
use tracing::{info, warn};

use super::client::{KafkaContext, REQUEST_TIMEOUT, external, partitions, split_key};
use super::config::{BoundedMode, KafkaConfig, StartupMode};
use super::metadata::{MetadataColumns, RecordMeta};
use crate::{ConnectorTable, Error, Result};

/// Records per batch at most.
const MAX_BATCH: usize = 8192;
/// How long a batch may wait for more records once it has one.
const LINGER: Duration = Duration::from_millis(20);

type Split = (String, i32);

/// Makes one [`KafkaSource`] per subtask.
pub struct KafkaSourceFactory {
    config: Arc<KafkaConfig>,
    schema: SchemaRef,
    metadata: MetadataColumns,
}

impl KafkaSourceFactory {
    /// A factory for `table`, whose options `config` holds.
    pub fn new(table: &ConnectorTable, config: KafkaConfig) -> Result<Self> {
        let metadata = MetadataColumns::new(table, config.schema.fields().len())?;
        if sluice_formats::is_changelog_format(&config.value_format)
            && (config.key_format.is_some() || !table.metadata.is_empty())
        {
            return Err(Error::Unsupported {
                table: table.name.clone(),
                message: format!(
                    "'{}' events carry whole rows: drop 'key.format'/'key.fields' and the \
                     METADATA columns (combining them with a changelog format is not \
                     supported yet)",
                    config.value_format
                ),
            });
        }
        Ok(KafkaSourceFactory {
            config: Arc::new(config),
            schema: table.schema.clone(),
            metadata,
        })
    }
}

impl SourceFactory for KafkaSourceFactory {
    fn name(&self) -> String {
        format!(
            "Source: {} ({}, {})",
            self.config.table, self.config.connector, self.config.value_format
        )
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn changelog(&self) -> bool {
        sluice_formats::is_changelog_format(&self.config.value_format) || self.config.upsert()
    }

    fn upsert_key(&self) -> Option<Vec<usize>> {
        self.config
            .upsert()
            .then(|| self.config.key_columns.clone())
    }

    fn bounded(&self) -> bool {
        self.config.bounded != BoundedMode::Unbounded
    }

    fn create(
        &self,
        task: &TaskInfo,
        metrics: &Arc<JobMetrics>,
    ) -> sluice_runtime::Result<Box<dyn Source>> {
        let format_error = |source| Error::Format {
            table: self.config.table.clone(),
            source,
        };
        let value =
            sluice_formats::decoder_for(&self.config.value_format, &self.config.value_options()?)
                .map_err(format_error)?;
        let key = match &self.config.key_format {
            Some(f) => Some(
                sluice_formats::decoder_for(f, &self.config.key_options()?)
                    .map_err(format_error)?,
            ),
            None => None,
        };
        // A changelog format's batches end with the row kind, after the metadata.
        let changelog = self.changelog();
        let schema = if changelog {
            let mut fields: Vec<_> = self.schema.fields().iter().cloned().collect();
            fields.push(Arc::new(sluice_types::row_kind_field()));
            Arc::new(datafusion::arrow::datatypes::Schema::new(fields))
        } else {
            self.schema.clone()
        };
        Ok(Box::new(KafkaSource {
            changelog: changelog && !self.config.upsert(),
            upsert: self.config.upsert(),
            config: self.config.clone(),
            schema,
            metadata: self.metadata.clone(),
            consumer: None,
            subtask: task.subtask,
            parallelism: task.parallelism,
            positions: BTreeMap::new(),
            ends: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            key,
            value,
            records: Vec::new(),
            first_record: None,
            metrics: metrics.clone(),
            last_discovery: Instant::now(),
            emitted_positions: Arc::default(),
            stash: None,
            batch_split: None,
            emitted_split: None,
            split_ids: BTreeMap::new(),
            source_name: None,
        }))
    }
}

/// What the batch being built knows of one record.
/// (A batch holds one partition's records, `batch_split`; a record with a null value is
/// skipped and never pending.)
struct Pending {
    offset: u64,
    /// A null value of an upsert topic: a deletion of the key.
    tombstone: bool,
    /// The key was handed to the key decoder (false: a null key, read as NULLs).
    has_key: bool,
    meta: RecordMeta,
}

/// Reads one subtask's partitions.
struct KafkaSource {
    /// The value format reads a changelog: its batches carry the row kind last.
    changelog: bool,
    /// `upsert-kafka`: a record upserts its key, a tombstone (null value) deletes it;
    /// batches carry the row kind last (`+I` or `-D`), normalized downstream.
    upsert: bool,
    config: Arc<KafkaConfig>,
    schema: SchemaRef,
    metadata: MetadataColumns,
    consumer: Option<Arc<BaseConsumer<KafkaContext>>>,
    subtask: usize,
    parallelism: usize,
    /// The next offset to read of every partition this subtask owns.
    positions: BTreeMap<Split, i64>,
    /// With a bounded mode: the offset each unfinished partition stops before.
    ends: BTreeMap<Split, i64>,
    /// The positions each checkpoint recorded, until it completes.
    snapshots: BTreeMap<u64, BTreeMap<Split, i64>>,
    key: Option<Box<dyn Decoder>>,
    value: Box<dyn Decoder>,
    records: Vec<Pending>,
    first_record: Option<Instant>,
    metrics: Arc<JobMetrics>,
    last_discovery: Instant,
    /// The positions up to the last batch handed out, for the consumer lag.
    emitted_positions: Shared,
    /// A record of another partition than the batch being built: it starts the next.
    stash: Option<Polled>,
    /// The partition of the batch being built.
    batch_split: Option<Split>,
    /// The partition of the batch `next` returned last, for per-partition watermarks.
    emitted_split: Option<SplitInfo>,
    /// Every partition's index among all the table's partitions (its split id).
    split_ids: BTreeMap<Split, u32>,
    /// `topic/partition` of the last partition read, as dead letters name it.
    source_name: Option<(Split, Arc<str>)>,
}

/// One record taken from the client, copied out of its buffer.
struct Polled {
    split: Split,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    meta: RecordMeta,
    bytes: usize,
}

/// How often the partitions' ends are asked for, for the consumer lag.
const LAG_EVERY: Duration = Duration::from_secs(2);

/// Positions or ends by partition, shared with the lag refresher and the metrics.
type Shared = Arc<std::sync::Mutex<BTreeMap<Split, i64>>>;

/// Asks the broker for the ends of the partitions in `positions` every [`LAG_EVERY`],
/// on a thread of its own (so the lag stays current while backpressure holds the
/// source up), until the consumer is gone.
fn refresh_ends(
    consumer: std::sync::Weak<BaseConsumer<KafkaContext>>,
    positions: Shared,
    ends: Shared,
) {
    let spawned = std::thread::Builder::new()
        .name("kafka-lag".into())
        .spawn(move || {
            loop {
                std::thread::sleep(LAG_EVERY);
                let splits: Vec<Split> = match positions.lock() {
                    Ok(p) => p.keys().cloned().collect(),
                    Err(_) => return,
                };
                for split in splits {
                    // Held for one request at a time: a source that ends drops its
                    // consumer within one timeout, even with the broker away.
                    let Some(consumer) = consumer.upgrade() else {
                        return;
                    };
                    if let Ok((_, high)) = consumer.fetch_watermarks(&split.0, split.1, LAG_EVERY)
                        && let Ok(mut e) = ends.lock()
                    {
                        e.insert(split, high);
                    }
                }
                if consumer.strong_count() == 0 {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "Cannot start the Kafka consumer lag thread; the lag is not reported.");
    }
}

/// The consumer lag of one subtask: each partition's end (as last asked for) minus
/// the position after the last batch handed on; `None` until every end is known.
fn lag_probe(positions: Shared, ends: Shared) -> sluice_runtime::LagProbe {
    Box::new(move || {
        let positions = positions.lock().ok()?;
        let ends = ends.lock().ok()?;
        let mut lag = 0u64;
        for (split, &position) in positions.iter() {
            // Not known until every partition's end was asked for once.
            let end = ends.get(split)?;
            lag += u64::try_from(end - position).unwrap_or(0);
        }
        Some(lag)
    })
}

impl KafkaSource {
    fn consumer(&self) -> Result<&BaseConsumer<KafkaContext>> {
        self.consumer.as_deref().ok_or_else(|| Error::External {
            table: self.config.table.clone(),
            message: "the Kafka source was read before it was opened".into(),
            retryable: false,
        })
    }

    /// This subtask's share of `all` (sorted): every parallelism-th one.
    fn owned(&self, all: &[Split]) -> Vec<Split> {
        all.iter()
            .enumerate()
            .filter(|(i, _)| i % self.parallelism == self.subtask)
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// The offset `split` starts from under `scan.startup.mode` (always concrete, so a
    /// checkpoint taken before its first record still restarts from the same place).
    fn startup_offset(&self, split: &Split, committed: &BTreeMap<Split, i64>) -> Result<i64> {
        let c = &self.config;
        let consumer = self.consumer()?;
        let (low, high) = consumer
            .fetch_watermarks(&split.0, split.1, REQUEST_TIMEOUT)
            .map_err(|e| {
                external(
                    c,
                    &format!("cannot read the offsets of {}/{}", split.0, split.1),
                    e,
                )
            })?;
        let reset_latest = c
            .properties
            .get("auto.offset.reset")
            .is_some_and(|v| matches!(v.as_str(), "latest" | "largest" | "end"));
        Ok(match &c.startup {
            StartupMode::Earliest => low,
            StartupMode::Latest => high,
            StartupMode::GroupOffsets => match committed.get(split) {
                Some(&o) if o >= low && o <= high => o,
                _ if reset_latest => high,
                _ => low,
            },
            StartupMode::Specific(map) => match map.get(&split.1) {
                Some(&o) => o.clamp(low, high),
                None => low,
            },
            StartupMode::Timestamp(ts) => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&split.0, split.1, Offset::Offset(*ts))
                    .map_err(|e| external(c, "bad timestamp", e))?;
                let found = consumer
                    .offsets_for_times(tpl, REQUEST_TIMEOUT)
                    .map_err(|e| external(c, "cannot look up offsets by timestamp", e))?;
                match found.find_partition(&split.0, split.1).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => high,
                }
            }
        })
    }

    /// The group's committed offsets for `splits` (empty without a group).
    fn committed(&self, splits: &[Split]) -> Result<BTreeMap<Split, i64>> {
        if self.config.group_id.is_none() || self.config.startup != StartupMode::GroupOffsets {
            return Ok(BTreeMap::new());
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p) in splits {
            tpl.add_partition(t, *p);
        }
        let got = self
            .consumer()?
            .committed_offsets(tpl, REQUEST_TIMEOUT)
            .map_err(|e| external(&self.config, "cannot read the group's offsets", e))?;
        Ok(got
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
                _ => None,
            })
            .collect())
    }

    /// Starts reading `splits` (new ones from `start`), keeping known positions.
    fn assign(&mut self, splits: &[Split], start: &BTreeMap<Split, i64>) -> Result<()> {
        let committed = self.committed(splits)?;
        for s in splits {
            if self.positions.contains_key(s) {
                continue;
            }
            let o = match start.get(s) {
                Some(&o) => o,
                None => self.startup_offset(s, &committed)?,
            };
            self.positions.insert(s.clone(), o);
            if self.config.bounded == BoundedMode::Latest {
                let (_, high) = self
                    .consumer()?
                    .fetch_watermarks(&s.0, s.1, REQUEST_TIMEOUT)
                    .map_err(|e| external(&self.config, "cannot read end offsets", e))?;
                self.ends.insert(s.clone(), high);
            } else if self.config.bounded != BoundedMode::Unbounded {
                self.ends.insert(s.clone(), i64::MAX);
            }
        }
        let mut tpl = TopicPartitionList::new();
        for (s, &o) in &self.positions {
            if self.ends.get(s).is_some_and(|&e| o >= e) {
                continue;
            }
            tpl.add_partition_offset(&s.0, s.1, Offset::Offset(o))
                .map_err(|e| external(&self.config, "bad offset", e))?;
        }
        self.ends
            .retain(|s, e| self.positions.get(s).is_some_and(|&o| o < *e));
        self.consumer()?
            .assign(&tpl)
            .map_err(|e| external(&self.config, "cannot assign partitions", e))?;
        Ok(())
    }

    /// Looks for partitions that appeared since the last look (new ones start at the
    /// earliest offset, as Flink's do).
    fn discover(&mut self) -> Result<()> {
        let Some(every) = self.config.discovery else {
            return Ok(());
        };
        if self.last_discovery.elapsed() < every || self.config.bounded != BoundedMode::Unbounded {
            return Ok(());
        }
        self.last_discovery = Instant::now();
        let all = partitions(self.consumer()?.client(), &self.config)?;
        for s in &all {
            let next = self.split_ids.len() as u32;
            self.split_ids.entry(s.clone()).or_insert(next);
        }
        let owned = self.owned(&all);
        let new: Vec<Split> = owned
            .iter()
            .filter(|s| !self.positions.contains_key(*s))
            .cloned()
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        info!(table = %self.config.table, partitions = ?new, "New Kafka partitions found.");
        let mut start_low = BTreeMap::new();
        for s in new {
            let (low, _) = self
                .consumer()?
                .fetch_watermarks(&s.0, s.1, REQUEST_TIMEOUT)
                .map_err(|e| external(&self.config, "cannot read offsets", e))?;
            start_low.insert(s, low);
        }
        self.assign(&owned, &start_low)
    }

    /// Hands one message to the decoders.
    fn add(
        &mut self,
        split: &Split,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        meta: RecordMeta,
    ) {
        // A null value is skipped, except in an upsert topic, where a keyed one deletes
        // its key.
        let tombstone = value.is_none();
        if tombstone && !(self.upsert && key.is_some()) {
            return;
        }
        let source = match &self.source_name {
            Some((s, name)) if s == split => name.clone(),
            _ => {
                let name: Arc<str> = Arc::from(format!("{}/{}", split.0, split.1));
                self.source_name = Some((split.clone(), name.clone()));
                name
            }
        };
        let offset = offset.max(0) as u64;
        // Decode errors are reported through flush; an internal error is impossible
        // for a record the decoder merely rejects.
        if let Some(value) = value {
            let _ = self.value.decode(value, &source, offset);
        }
        let mut has_key = false;
        if let (Some(dec), Some(k)) = (self.key.as_mut(), key) {
            let _ = dec.decode(k, &source, offset);
            has_key = true;
        }
        self.records.push(Pending {
            offset,
            tombstone,
            has_key,
            meta,
        });
        self.first_record.get_or_insert_with(Instant::now);
    }

    /// Builds the batch of the buffered records: value columns from the value, key
    /// columns from the key (NULL for a null key), metadata after them.
    fn flush(&mut self, dead: &dyn DeadLetterOutput) -> Result<Option<RecordBatch>> {
        self.first_record = None;
        let table = self.config.table.clone();
        let format_error = |source| Error::Format {
            table: table.clone(),
            source,
        };
        let value: Decoded = self.value.flush().map_err(format_error)?;
        let key: Option<Decoded> = match self.key.as_mut() {
            Some(k) => Some(k.flush().map_err(format_error)?),
            None => None,
        };
        // The batch holds one partition: offsets name its records.
        let failed =
            |d: &Decoded| -> HashSet<u64> { d.dead_letters.iter().map(|l| l.offset).collect() };
        let bad_value = failed(&value);
        let bad_key = key.as_ref().map(failed).unwrap_or_default();
        for d in value.dead_letters {
            dead.send(d);
        }
        let (key_batch, key_letters) = match key {
            Some(k) => (k.batch, k.dead_letters),
            None => (None, Vec::new()),
        };
        for d in key_letters {
            dead.send(d);
        }
        let records = std::mem::take(&mut self.records);
        let mut value_idx: Vec<Option<u32>> = Vec::with_capacity(records.len());
        let mut key_idx: Vec<Option<u32>> = Vec::with_capacity(records.len());
        let mut kinds: Vec<i8> = Vec::with_capacity(records.len());
        let mut metas = Vec::with_capacity(records.len());
        let (mut vi, mut ki) = (0u32, 0u32);
        for r in records {
            let value_ok = r.tombstone || !bad_value.contains(&r.offset);
            let key_ok = r.has_key && !bad_key.contains(&r.offset);
            let key_row = key_ok.then_some(ki);
            let value_row = (!r.tombstone && value_ok).then_some(vi);
            if value_row.is_some() {
                vi += 1;
            }
            if key_ok {
                ki += 1;
            }
            if !value_ok || (r.has_key && !key_ok) {
                continue;
            }
            value_idx.push(value_row);
            key_idx.push(key_row);
            kinds.push(if r.tombstone {
                RowKind::Delete as i8
            } else {
                RowKind::Insert as i8
            });
            metas.push(r.meta);
        }
        if self.changelog {
            // A change event gives 0, 1 or 2 rows, already with their kinds, and the
            // table has no key or metadata columns (checked at plan time).
            return Ok(value.batch);
        }
        if value_idx.is_empty() {
            return Ok(None);
        }
        let values = value.batch;
        let n = value_idx.len();
        let value_take = UInt32Array::from(value_idx);
        let key_take = UInt32Array::from(key_idx);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        let physical = self.config.schema.fields();
        for (i, f) in physical.iter().enumerate() {
            // A key column comes from the key when it has one (in an upsert topic the
            // value may hold it too, but a tombstone has no value).
            let from_key = self.config.key_columns.iter().position(|&c| c == i);
            let from_value = self.config.value_columns.iter().position(|&c| c == i);
            let by_key = match (from_key, &key_batch) {
                (Some(j), Some(kb)) => Some((kb, j, &key_take)),
                _ => None,
            };
            let by_value = match (from_value, &values) {
                (Some(j), Some(vb)) => Some((vb, j, &value_take)),
                _ => None,
            };
            let source = if self.upsert {
                by_key.or(by_value)
            } else {
                by_value.or(by_key)
            };
            let column = match source {
                Some((b, j, idx)) => take(b.column(j).as_ref(), idx, None)?,
                None => new_null_array(f.data_type(), n),
            };
            columns.push(column);
        }
        columns.extend(self.metadata.columns(&metas)?);
        if self.upsert {
            columns.push(Arc::new(Int8Array::from(kinds)));
        }
        Ok(Some(RecordBatch::try_new(self.schema.clone(), columns)?))
    }

    /// The next record of an unfinished partition, if the client has one now.
    fn poll_one(&mut self) -> Result<Option<Polled>> {
        loop {
            if self.finished() {
                return Ok(None);
            }
            let Some(polled) = self.consumer()?.poll(Duration::ZERO) else {
                return Ok(None);
            };
            let m = match polled {
                Ok(m) => m,
                Err(e) => {
                    // The client reconnects by itself; say what is wrong meanwhile.
                    warn!(table = %self.config.table, error = %e, "Kafka fetch failed; retrying.");
                    return Ok(None);
                }
            };
            let split = (m.topic().to_string(), m.partition());
            let offset = m.offset();
            // A record before the position was read already (a broker may answer a
            // fetch with the whole batch around the offset asked for).
            if self.positions.get(&split).is_some_and(|&p| offset < p) {
                continue;
            }
            if self.config.bounded != BoundedMode::Unbounded {
                let Some(&end) = self.ends.get(&split) else {
                    continue;
                };
                let past_ts = matches!(self.config.bounded, BoundedMode::Timestamp(ts)
                    if m.timestamp().to_millis().is_some_and(|t| t > ts));
                if offset >= end || past_ts {
                    self.ends.remove(&split);
                    continue;
                }
            }
            let bytes = m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len);
            return Ok(Some(Polled {
                meta: self.metadata.record(&m),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                split,
                offset,
                bytes,
            }));
        }
    }

    fn finished(&self) -> bool {
        self.config.bounded != BoundedMode::Unbounded && self.ends.is_empty()
    }
}

#[async_trait]
impl Source for KafkaSource {
    async fn open(
        &mut self,
        _task: &TaskInfo,
        restored: Option<RestoredOffsets>,
    ) -> sluice_runtime::Result<()> {
        let c = &self.config;
        let mut cc = c.client_config();
        cc.set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        if c.group_id.is_none() {
            // librdkafka wants a group even for assigned partitions; nothing is
            // committed to it.
            cc.set("group.id", format!("sluice-{}", c.table));
        }
        let consumer: BaseConsumer<KafkaContext> = cc
            .create_with_context(KafkaContext::new(&c.table))
            .map_err(|e| external(c, "cannot create a consumer (check 'properties.*')", e))?;
        let all = partitions(consumer.client(), c)?;
        self.split_ids = all
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        let consumer = Arc::new(consumer);
        let ends = Shared::default();
        refresh_ends(
            Arc::downgrade(&consumer),
            self.emitted_positions.clone(),
            ends.clone(),
        );
        self.metrics.source_lag_probe(
            &c.table,
            self.subtask,
            lag_probe(self.emitted_positions.clone(), ends),
        );
        self.consumer = Some(consumer);
        let owned = self.owned(&all);
        // Positions from every subtask of the checkpointed run: partitions are dealt
        // out anew, so a restart on another worker count finds its partitions there.
        let mut start = BTreeMap::new();
        if let Some(r) = restored {
            for (k, v) in r.all() {
                if let (Some((t, p)), Some(o)) = (k.rsplit_once(':'), v.as_i64())
                    && let Ok(p) = p.parse::<i32>()
                {
                    start.insert((t.to_string(), p), o);
                }
            }
        }
        self.assign(&owned, &start)?;
        if let Ok(mut p) = self.emitted_positions.lock() {
            p.clone_from(&self.positions);
        }
        info!(
            table = %self.config.table,
            subtask = self.subtask,
            partitions = ?self.positions,
            "Kafka source assigned."
        );
        Ok(())
    }

    async fn next(&mut self, dead: &dyn DeadLetterOutput) -> sluice_runtime::Result<SourceEvent> {
        self.discover()?;
        loop {
            if self.records.len() >= MAX_BATCH
                || self.first_record.is_some_and(|t| t.elapsed() >= LINGER)
            {
                break;
            }
            let polled = match self.stash.take() {
                Some(p) => p,
                None => match self.poll_one()? {
                    Some(p) => p,
                    None => break,
                },
            };
            // A batch holds one partition's records (per-partition watermarks).
            if !self.records.is_empty() && self.batch_split.as_ref() != Some(&polled.split) {
                self.stash = Some(polled);
                break;
            }
            JobMetrics::add(&self.metrics.source_bytes, polled.bytes as u64);
            self.add(
                &polled.split,
                polled.offset,
                polled.key.as_deref(),
                polled.value.as_deref(),
                polled.meta,
            );
            self.positions
                .insert(polled.split.clone(), polled.offset + 1);
            if self
                .ends
                .get(&polled.split)
                .is_some_and(|&e| polled.offset + 1 >= e)
            {
                self.ends.remove(&polled.split);
            }
            self.batch_split = Some(polled.split);
        }
        if !self.records.is_empty()
            && (self.records.len() >= MAX_BATCH
                || self.first_record.is_some_and(|t| t.elapsed() >= LINGER)
                || self.stash.is_some()
                || self.finished())
        {
            self.emitted_split = self.batch_split.as_ref().map(|s| SplitInfo {
                split: self.split_ids.get(s).copied().unwrap_or(u32::MAX),
                owned: self.positions.len() as u32,
            });
            let batch = self.flush(dead)?;
            // Records read count as read even when all of them were dead letters.
            if let Ok(mut p) = self.emitted_positions.lock() {
                p.clone_from(&self.positions);
            }
            if let Some(b) = batch {
                return Ok(SourceEvent::Batch(b));
            }
        }
        if self.finished() && self.records.is_empty() && self.stash.is_none() {
            return Ok(SourceEvent::End);
        }
        Ok(SourceEvent::Idle)
    }

    fn current_split(&self) -> Option<SplitInfo> {
        self.emitted_split
    }

    fn snapshot(&mut self, checkpoint: CheckpointId) -> sluice_runtime::Result<SourceOffsets> {
        // Records still in the decoders are not in any batch yet: the positions must
        // not cover them. They are few (one linger's worth); the batch goes out first.
        let mut positions = self.positions.clone();
        if let (Some(first), Some(split)) = (self.records.first(), &self.batch_split) {
            positions.insert(split.clone(), first.offset as i64);
        }
        let out = positions
            .iter()
            .map(|((t, p), o)| (split_key(t, *p), serde_json::Value::from(*o)))
            .collect();
        if self.config.group_id.is_some() {
            self.snapshots.insert(checkpoint.0, positions);
        }
        Ok(out)
    }

    async fn commit(&mut self, checkpoint: CheckpointId) -> sluice_runtime::Result<()> {
        let done: Vec<u64> = self
            .snapshots
            .range(..=checkpoint.0)
            .map(|(k, _)| *k)
            .collect();
        let Some(last) = done.last().and_then(|k| self.snapshots.get(k)).cloned() else {
            return Ok(());
        };
        for k in done {
            self.snapshots.remove(&k);
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in &last {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o))
                .map_err(|e| external(&self.config, "bad offset", e))?;
        }
        // Committing is a courtesy to monitoring and to group-offsets starts: the
        // checkpoint holds the offsets that count, so a failure is only logged.
        if let Err(e) = self.consumer()?.commit(&tpl, CommitMode::Async) {
            tracing::warn!(table = %self.config.table, error = %e, "Committing offsets to the group failed.");
        }
        Ok(())
    }
}
