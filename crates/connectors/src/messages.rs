//! Rows from messages, shared by the message-based sources (NATS, MQTT): a message's
//! payload is one record of the table's format; what the broker says about it (its
//! subject or topic, headers, sequence number, timestamp, QoS) fills the table's
//! `METADATA` columns.
//!
//! Does not own: talking to a broker, positions or acknowledgements (each connector's
//! source does that).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, MapBuilder, StringArray, StringBuilder,
    TimestampMillisecondArray,
};
use datafusion::arrow::compute::{can_cast_types, cast};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use sluice_formats::{Decoder, Encoder, FormatOptions};
use sluice_runtime::DeadLetterOutput;

use crate::{ConnectorTable, Error, Result};

/// Messages per batch at most.
const MAX_BATCH: usize = 8192;
/// How long a batch may wait for more messages once it has one.
const LINGER: Duration = Duration::from_millis(20);
/// How long a source waits for a first message before it says `Idle` (so that it
/// returns often enough for barriers and shutdown).
const WAIT: Duration = Duration::from_millis(50);

/// When a message source stops collecting one batch: at [`MAX_BATCH`] messages,
/// [`LINGER`] after the first, or after [`WAIT`] without any.
pub(crate) struct Gather {
    started: Instant,
    first: Option<Instant>,
}

impl Gather {
    /// Starts collecting a batch.
    pub(crate) fn start() -> Self {
        Gather {
            started: Instant::now(),
            first: None,
        }
    }

    /// How long to wait for the next message with `buffered` messages so far; `None`
    /// when the batch is complete.
    pub(crate) fn wait(&mut self, buffered: usize) -> Option<Duration> {
        if buffered >= MAX_BATCH {
            return None;
        }
        if buffered > 0 {
            self.first.get_or_insert_with(Instant::now);
        }
        let wait = match self.first {
            Some(f) => LINGER.saturating_sub(f.elapsed()),
            None => WAIT.saturating_sub(self.started.elapsed()),
        };
        (!wait.is_zero()).then_some(wait)
    }
}

/// A piece of broker metadata a source can put in a `METADATA` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetaKey {
    /// The subject (NATS) or topic (MQTT) the message was published to: STRING.
    Topic,
    /// Headers (NATS) or user properties (MQTT 5): MAP<STRING, STRING>.
    Headers,
    /// The broker's sequence number (a JetStream stream sequence): BIGINT.
    Sequence,
    /// When the broker stored the message: TIMESTAMP_LTZ(3).
    Timestamp,
    /// The QoS the message arrived with: INT.
    Qos,
    /// Whether it was a retained message: BOOLEAN.
    Retain,
}

/// What one message contributes to the metadata columns (fields a table does not read
/// may be left empty).
#[derive(Debug, Default, Clone)]
pub(crate) struct MessageMeta {
    pub(crate) topic: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) sequence: Option<i64>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) qos: Option<i32>,
    pub(crate) retain: Option<bool>,
}

fn natural_type(key: MetaKey) -> DataType {
    match key {
        MetaKey::Topic => DataType::Utf8,
        MetaKey::Headers => headers_builder().finish().data_type().clone(),
        MetaKey::Sequence => DataType::Int64,
        MetaKey::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        MetaKey::Qos => DataType::Int32,
        MetaKey::Retain => DataType::Boolean,
    }
}

fn headers_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
}

/// Decodes message payloads with the table's format and adds the metadata columns.
pub(crate) struct MessageRows {
    table: String,
    decoder: Box<dyn Decoder>,
    schema: SchemaRef,
    columns: Vec<(MetaKey, DataType)>,
    /// The messages handed to the decoder since the last flush: their offsets (unique
    /// within a batch) and metadata.
    pending: Vec<(u64, MessageMeta)>,
    /// Whether the format reads a changelog (its batches end with the row kind).
    changelog: bool,
}

impl MessageRows {
    /// Rows for `table`, whose `available` metadata keys (by name) the connector
    /// `connector` fills; fails on an unknown key, a type the value cannot be cast to,
    /// or a bad format option.
    pub(crate) fn new(
        table: &ConnectorTable,
        connector: &str,
        available: &[(&str, MetaKey)],
    ) -> Result<Self> {
        let physical = table.schema.fields().len() - table.metadata.len();
        let mut columns = Vec::new();
        for (i, m) in table.metadata.iter().enumerate() {
            let Some((_, key)) = available.iter().find(|(n, _)| *n == m.key) else {
                let names: Vec<&str> = available.iter().map(|(n, _)| *n).collect();
                return Err(Error::Unsupported {
                    table: table.name.clone(),
                    message: format!(
                        "column '{}': {connector} has no metadata '{}'; it has {}",
                        m.name,
                        m.key,
                        names.join(", ")
                    ),
                });
            };
            let declared = table.schema.field(physical + i).data_type().clone();
            let natural = natural_type(*key);
            if !can_cast_types(&natural, &declared) {
                return Err(Error::Unsupported {
                    table: table.name.clone(),
                    message: format!(
                        "column '{}': metadata '{}' is {natural} and cannot be read as {declared}",
                        m.name, m.key
                    ),
                });
            }
            columns.push((*key, declared));
        }
        let format = table.options.get("format").cloned().unwrap_or_default();
        if format.is_empty() {
            return Err(Error::MissingOption {
                table: table.name.clone(),
                connector: connector.to_string(),
                option: "format".into(),
                hint: "how payloads are encoded, e.g. 'format' = 'json'".into(),
            });
        }
        let changelog = sluice_formats::is_changelog_format(&format);
        if changelog && !columns.is_empty() {
            return Err(Error::Unsupported {
                table: table.name.clone(),
                message: format!(
                    "'{format}' messages carry whole rows: drop the METADATA columns (combining \
                     them with a changelog format is not supported yet)"
                ),
            });
        }
        let physical_schema = Arc::new(Schema::new(table.schema.fields()[..physical].to_vec()));
        let decoder = sluice_formats::decoder_for(
            &format,
            &FormatOptions {
                table: table.name.clone(),
                schema: physical_schema,
                options: table.options.clone(),
            },
        )
        .map_err(|source| Error::Format {
            table: table.name.clone(),
            source,
        })?;
        Ok(MessageRows {
            table: table.name.clone(),
            decoder,
            schema: table.schema.clone(),
            columns,
            pending: Vec::new(),
            changelog,
        })
    }

    /// Whether the format reads a changelog (batches then end with the row kind).
    pub(crate) fn changelog(&self) -> bool {
        self.changelog
    }

    /// Whether the table reads metadata `key` (so the source may skip gathering it).
    pub(crate) fn wants(&self, key: MetaKey) -> bool {
        self.columns.iter().any(|(k, _)| *k == key)
    }

    /// Messages buffered since the last flush.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Buffers one message. `offset` must differ from the other buffered messages'
    /// (a sequence number, or a running count); dead letters name `source` and it.
    pub(crate) fn push(&mut self, payload: &[u8], source: &str, offset: u64, meta: MessageMeta) {
        // A record the decoder rejects comes back from flush; an internal error cannot
        // happen for a record it merely cannot read.
        let _ = self.decoder.decode(payload, source, offset);
        self.pending.push((offset, meta));
    }

    /// The rows of the buffered messages that decoded (bad ones go to `dead`), with
    /// the metadata columns after the physical ones; `None` when no row decoded.
    pub(crate) fn flush(&mut self, dead: &dyn DeadLetterOutput) -> Result<Option<RecordBatch>> {
        let pending = std::mem::take(&mut self.pending);
        let decoded = self.decoder.flush().map_err(|source| Error::Format {
            table: self.table.clone(),
            source,
        })?;
        let bad: HashSet<u64> = decoded.dead_letters.iter().map(|l| l.offset).collect();
        for d in decoded.dead_letters {
            dead.send(d);
        }
        let Some(batch) = decoded.batch else {
            return Ok(None);
        };
        if self.columns.is_empty() {
            return Ok(Some(batch));
        }
        let metas: Vec<&MessageMeta> = pending
            .iter()
            .filter(|(o, _)| !bad.contains(o))
            .map(|(_, m)| m)
            .collect();
        if metas.len() != batch.num_rows() {
            return Err(Error::Unsupported {
                table: self.table.clone(),
                message: format!(
                    "the format returned {} rows for {} good messages",
                    batch.num_rows(),
                    metas.len()
                ),
            });
        }
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for (key, declared) in &self.columns {
            let natural = meta_column(*key, &metas)?;
            columns.push(if natural.data_type() == declared {
                natural
            } else {
                cast(&natural, declared)?
            });
        }
        Ok(Some(RecordBatch::try_new(self.schema.clone(), columns)?))
    }
}

fn meta_column(key: MetaKey, metas: &[&MessageMeta]) -> Result<ArrayRef> {
    Ok(match key {
        MetaKey::Topic => Arc::new(
            metas
                .iter()
                .map(|m| m.topic.as_deref())
                .collect::<StringArray>(),
        ),
        MetaKey::Headers => {
            let mut b = headers_builder();
            for m in metas {
                for (k, v) in &m.headers {
                    b.keys().append_value(k);
                    b.values().append_value(v);
                }
                b.append(true)?;
            }
            Arc::new(b.finish())
        }
        MetaKey::Sequence => Arc::new(metas.iter().map(|m| m.sequence).collect::<Int64Array>()),
        MetaKey::Timestamp => Arc::new(
            metas
                .iter()
                .map(|m| m.timestamp)
                .collect::<TimestampMillisecondArray>()
                .with_timezone("UTC"),
        ),
        MetaKey::Qos => Arc::new(metas.iter().map(|m| m.qos).collect::<Int32Array>()),
        MetaKey::Retain => Arc::new(metas.iter().map(|m| m.retain).collect::<BooleanArray>()),
    })
}

/// The encoder of a message sink: `format` over the table's columns and options.
pub(crate) fn encoder(table: &ConnectorTable, format: &str) -> Result<Box<dyn Encoder>> {
    sluice_formats::encoder_for(
        format,
        &FormatOptions {
            table: table.name.clone(),
            schema: table.schema.clone(),
            options: table.options.clone(),
        },
    )
    .map_err(|source| Error::Format {
        table: table.name.clone(),
        source,
    })
}

/// Refuses a sink table with (non-virtual) `METADATA` columns: `connector` writes none.
pub(crate) fn no_metadata(table: &ConnectorTable, connector: &str) -> Result<()> {
    match table.metadata.first() {
        Some(m) => Err(Error::Unsupported {
            table: table.name.clone(),
            message: format!(
                "column '{}': the {connector} sink writes no metadata; declare it VIRTUAL or \
                 drop it",
                m.name
            ),
        }),
        None => Ok(()),
    }
}
