//! Kafka's `METADATA` columns (Flink's keys): `topic`, `partition`, `offset`,
//! `timestamp`, `timestamp-type`, `leader-epoch` and `headers`, read per record.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryBuilder, Int32Array, Int64Array, MapBuilder, StringArray, StringBuilder,
    TimestampMillisecondArray,
};
use datafusion::arrow::compute::{can_cast_types, cast};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use rdkafka::Timestamp;
use rdkafka::message::{Headers, Message};

use crate::{ConnectorTable, Error, Result};

/// The metadata keys a Kafka source reads.
pub const KEYS: &[&str] = &[
    "topic",
    "partition",
    "offset",
    "timestamp",
    "timestamp-type",
    "leader-epoch",
    "headers",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Topic,
    Partition,
    Offset,
    Timestamp,
    TimestampType,
    LeaderEpoch,
    Headers,
}

/// What one record contributes to the metadata columns.
#[derive(Debug, Default)]
pub(crate) struct RecordMeta {
    topic: Option<String>,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    timestamp_type: &'static str,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

/// The table's metadata columns, in order (they follow the physical columns).
#[derive(Debug, Clone, Default)]
pub(crate) struct MetadataColumns {
    columns: Vec<(Key, DataType)>,
}

impl MetadataColumns {
    /// The metadata columns of `table`, whose schema holds `physical` physical columns
    /// first; fails on an unknown key or a type the value cannot be cast to.
    pub(crate) fn new(table: &ConnectorTable, physical: usize) -> Result<Self> {
        let mut columns = Vec::new();
        for (i, m) in table.metadata.iter().enumerate() {
            let key = match m.key.as_str() {
                "topic" => Key::Topic,
                "partition" => Key::Partition,
                "offset" => Key::Offset,
                "timestamp" => Key::Timestamp,
                "timestamp-type" => Key::TimestampType,
                "leader-epoch" => Key::LeaderEpoch,
                "headers" => Key::Headers,
                other => {
                    return Err(Error::Unsupported {
                        table: table.name.clone(),
                        message: format!(
                            "column '{}': Kafka has no metadata '{other}'; it has {}",
                            m.name,
                            KEYS.join(", ")
                        ),
                    });
                }
            };
            let declared = table.schema.field(physical + i).data_type().clone();
            let natural = natural_type(key);
            if !can_cast_types(&natural, &declared) {
                return Err(Error::Unsupported {
                    table: table.name.clone(),
                    message: format!(
                        "column '{}': metadata '{}' is {} and cannot be read as {declared}",
                        m.name, m.key, natural
                    ),
                });
            }
            columns.push((key, declared));
        }
        Ok(MetadataColumns { columns })
    }

    /// What `m` contributes (nothing is copied for keys the table does not read).
    pub(crate) fn record<M: Message>(&self, m: &M) -> RecordMeta {
        if self.columns.is_empty() {
            return RecordMeta::default();
        }
        let wants = |k: Key| self.columns.iter().any(|(c, _)| *c == k);
        let (timestamp, timestamp_type) = match m.timestamp() {
            Timestamp::NotAvailable => (None, "NoTimestampType"),
            Timestamp::CreateTime(t) => (Some(t), "CreateTime"),
            Timestamp::LogAppendTime(t) => (Some(t), "LogAppendTime"),
        };
        RecordMeta {
            topic: wants(Key::Topic).then(|| m.topic().to_string()),
            partition: m.partition(),
            offset: m.offset(),
            timestamp,
            timestamp_type,
            headers: match (wants(Key::Headers), m.headers()) {
                (true, Some(h)) => h
                    .iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect(),
                _ => Vec::new(),
            },
        }
    }

    /// The metadata columns of the records `metas`, in the declared types.
    pub(crate) fn columns(&self, metas: &[RecordMeta]) -> Result<Vec<ArrayRef>> {
        let mut out = Vec::with_capacity(self.columns.len());
        for (key, declared) in &self.columns {
            let natural: ArrayRef = match key {
                Key::Topic => Arc::new(
                    metas
                        .iter()
                        .map(|m| m.topic.as_deref())
                        .collect::<StringArray>(),
                ),
                Key::Partition => Arc::new(Int32Array::from_iter_values(
                    metas.iter().map(|m| m.partition),
                )),
                Key::Offset => {
                    Arc::new(Int64Array::from_iter_values(metas.iter().map(|m| m.offset)))
                }
                Key::Timestamp => Arc::new(
                    metas
                        .iter()
                        .map(|m| m.timestamp)
                        .collect::<TimestampMillisecondArray>()
                        .with_timezone("UTC"),
                ),
                Key::TimestampType => Arc::new(
                    metas
                        .iter()
                        .map(|m| Some(m.timestamp_type))
                        .collect::<StringArray>(),
                ),
                // librdkafka does not expose the leader epoch of a message.
                Key::LeaderEpoch => Arc::new(Int32Array::new_null(metas.len())),
                Key::Headers => {
                    let mut b = MapBuilder::new(None, StringBuilder::new(), BinaryBuilder::new());
                    for m in metas {
                        for (k, v) in &m.headers {
                            b.keys().append_value(k);
                            match v {
                                Some(v) => b.values().append_value(v),
                                None => b.values().append_null(),
                            }
                        }
                        b.append(true)?;
                    }
                    Arc::new(b.finish())
                }
            };
            out.push(if natural.data_type() == declared {
                natural
            } else {
                cast(&natural, declared)?
            });
        }
        Ok(out)
    }
}

fn natural_type(key: Key) -> DataType {
    match key {
        Key::Topic | Key::TimestampType => DataType::Utf8,
        Key::Partition | Key::LeaderEpoch => DataType::Int32,
        Key::Offset => DataType::Int64,
        Key::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        Key::Headers => {
            let mut b = MapBuilder::new(None, StringBuilder::new(), BinaryBuilder::new());
            b.finish().data_type().clone()
        }
    }
}
