//! Options of the `kafka` and `upsert-kafka` connectors, under Flink's names.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use sluice_formats::FormatOptions;

use crate::{ConnectorTable, Error, Options, Result};

/// Which topics a table reads: a list (`topic`, `;`-separated) or `topic-pattern`.
#[derive(Debug, Clone)]
pub enum Topics {
    /// These topics.
    List(Vec<String>),
    /// Every topic whose whole name matches the regular expression.
    Pattern(regex::Regex),
}

/// Where a source starts when no checkpoint says otherwise (`scan.startup.mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupMode {
    /// `earliest-offset`.
    Earliest,
    /// `latest-offset`.
    Latest,
    /// `group-offsets` (the default): the group's committed offsets, else
    /// `properties.auto.offset.reset` (default `earliest`).
    GroupOffsets,
    /// `timestamp`: the first record at or after `scan.startup.timestamp-millis`.
    Timestamp(i64),
    /// `specific-offsets`: `partition:0,offset:42;partition:1,offset:300`; partitions not
    /// named start from the earliest offset.
    Specific(BTreeMap<i32, i64>),
}

/// Where a source stops (`scan.bounded.mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundedMode {
    /// `unbounded` (the default): reads forever.
    Unbounded,
    /// `latest-offset`: stops at the end offsets each partition had when the job started.
    Latest,
    /// `timestamp`: stops before the first record after `scan.bounded.timestamp-millis`.
    Timestamp(i64),
}

/// Which columns the value format writes and reads (`value.fields-include`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldsInclude {
    /// `ALL` (default for `kafka`): every physical column, key columns included.
    All,
    /// `EXCEPT_KEY` (default for `upsert-kafka`): the key columns only in the key.
    ExceptKey,
}

/// `sink.delivery-guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    /// `none`: fire and forget.
    None,
    /// `at-least-once` (the default): every checkpoint waits until the broker has
    /// acknowledged everything written before it.
    AtLeastOnce,
    /// `exactly-once`: one Kafka transaction per checkpoint, committed when it completes.
    ExactlyOnce,
}

/// `sink.partitioner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioner {
    /// `default`: by the hash of the key (murmur2, as Java clients do); rows without a
    /// key spread over the partitions.
    Default,
    /// `fixed`: sink subtask i writes to partition i mod the partition count.
    Fixed,
    /// `round-robin`: row after row to the next partition.
    RoundRobin,
}

/// Everything the `kafka`/`upsert-kafka` options say.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `kafka` or `upsert-kafka`.
    pub connector: &'static str,
    /// The topics.
    pub topics: Topics,
    /// `properties.bootstrap.servers`.
    pub bootstrap: String,
    /// `properties.group.id`.
    pub group_id: Option<String>,
    /// Every `properties.*` option, without the prefix (passed to librdkafka).
    pub properties: BTreeMap<String, String>,
    /// `scan.startup.mode`.
    pub startup: StartupMode,
    /// `scan.bounded.mode`.
    pub bounded: BoundedMode,
    /// `scan.topic-partition-discovery.interval` (none: the partitions at start only).
    pub discovery: Option<Duration>,
    /// `key.format`, when the key carries columns.
    pub key_format: Option<String>,
    /// `value.format` (or `format`).
    pub value_format: String,
    /// Indices (into the physical schema) of the key columns (`key.fields`, or the
    /// primary key for `upsert-kafka`).
    pub key_columns: Vec<usize>,
    /// `key.fields-prefix`: stripped from key column names in the key format.
    pub key_prefix: String,
    /// Indices of the columns the value format carries.
    pub value_columns: Vec<usize>,
    /// `sink.delivery-guarantee`.
    pub guarantee: Guarantee,
    /// `sink.transactional-id-prefix`.
    pub transactional_id_prefix: Option<String>,
    /// `sink.partitioner`.
    pub partitioner: Partitioner,
    /// `sink.parallelism`.
    pub sink_parallelism: Option<usize>,
    /// The table's physical schema.
    pub schema: SchemaRef,
    /// Every option of the table (the formats read theirs from here).
    pub options: BTreeMap<String, String>,
    /// The table's name.
    pub table: String,
}

/// `properties.*` keys Sluice sets itself: the user's value would break what it
/// promises.
const OWNED_PROPERTIES: &[(&str, &str)] = &[
    (
        "enable.auto.commit",
        "offsets are committed after each checkpoint",
    ),
    (
        "enable.auto.offset.store",
        "offsets are committed after each checkpoint",
    ),
    (
        "transactional.id",
        "use 'sink.transactional-id-prefix' with 'sink.delivery-guarantee' = 'exactly-once'",
    ),
];

impl KafkaConfig {
    /// Reads every option of `table` for connector `connector` (`kafka` or
    /// `upsert-kafka`); unknown options are errors.
    pub fn from_table(table: &ConnectorTable, connector: &'static str) -> Result<Self> {
        let upsert = connector == "upsert-kafka";
        let mut o = Options::new(&table.name, connector, &table.options);
        let topics = match (o.take("topic"), o.take("topic-pattern")) {
            (Some(_), Some(_)) => {
                return Err(o.bad(
                    "topic-pattern",
                    "give either 'topic' or 'topic-pattern', not both",
                ));
            }
            (Some(t), None) => {
                let list: Vec<String> = t
                    .split(';')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if list.is_empty() {
                    return Err(o.bad("topic", "names no topic; write e.g. 'orders'"));
                }
                if upsert && list.len() > 1 {
                    return Err(o.bad("topic", "upsert-kafka writes one topic; name one"));
                }
                if let Some(bad) = list.iter().find(|t| !valid_topic(t)) {
                    return Err(o.bad(
                        "topic",
                        &format!(
                            "'{bad}' is not a valid topic name (letters, digits, '.', '_' \
                             and '-', at most 249 characters)"
                        ),
                    ));
                }
                Topics::List(list)
            }
            (None, Some(p)) if !upsert => {
                let re = regex::Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                    o.bad("topic-pattern", &format!("not a regular expression: {e}"))
                })?;
                Topics::Pattern(re)
            }
            (None, Some(_)) => {
                return Err(o.bad(
                    "topic-pattern",
                    "upsert-kafka reads and writes one topic: use 'topic'",
                ));
            }
            (None, None) => {
                return Err(Error::MissingOption {
                    table: table.name.clone(),
                    connector: connector.into(),
                    option: "topic".into(),
                    hint: "write e.g. 'topic' = 'orders'".into(),
                });
            }
        };
        let properties: BTreeMap<String, String> = o
            .take_prefixed("properties.")
            .into_iter()
            .map(|(k, v)| (k["properties.".len()..].to_string(), v))
            .collect();
        for (k, why) in OWNED_PROPERTIES {
            if properties.contains_key(*k) {
                return Err(o.bad(
                    &format!("properties.{k}"),
                    &format!("Sluice sets it: {why}"),
                ));
            }
        }
        let bootstrap = match properties.get("bootstrap.servers") {
            Some(b) if !b.trim().is_empty() => b.clone(),
            _ => {
                return Err(Error::MissingOption {
                    table: table.name.clone(),
                    connector: connector.into(),
                    option: "properties.bootstrap.servers".into(),
                    hint: "write e.g. 'properties.bootstrap.servers' = 'localhost:9092'".into(),
                });
            }
        };
        let group_id = properties.get("group.id").cloned();
        let startup = if upsert {
            StartupMode::Earliest
        } else {
            startup_mode(&mut o)?
        };
        let bounded = match o.take("scan.bounded.mode").as_deref() {
            None | Some("unbounded") => BoundedMode::Unbounded,
            Some("latest-offset") => BoundedMode::Latest,
            Some("timestamp") => {
                let ms = o
                    .take_parsed::<i64>(
                        "scan.bounded.timestamp-millis",
                        "a number of milliseconds",
                    )?
                    .ok_or_else(|| {
                        o.bad(
                            "scan.bounded.mode",
                            "'timestamp' needs 'scan.bounded.timestamp-millis'",
                        )
                    })?;
                BoundedMode::Timestamp(ms)
            }
            Some(v) => {
                return Err(o.bad(
                    "scan.bounded.mode",
                    &format!("'{v}' is not one of unbounded, latest-offset, timestamp"),
                ));
            }
        };
        let discovery = o
            .take_duration("scan.topic-partition-discovery.interval")?
            .filter(|d| !d.is_zero());

        let value_format = match (o.take("value.format"), o.take("format")) {
            (Some(_), Some(_)) => {
                return Err(o.bad("format", "give either 'format' or 'value.format', not both"));
            }
            (Some(f), None) | (None, Some(f)) => f,
            (None, None) => {
                return Err(Error::MissingOption {
                    table: table.name.clone(),
                    connector: connector.into(),
                    option: "value.format".into(),
                    hint: "write e.g. 'value.format' = 'json' (or 'format' = 'json')".into(),
                });
            }
        };
        let key_format = o.take("key.format");
        let key_prefix = o.take("key.fields-prefix").unwrap_or_default();
        let key_fields = o.take("key.fields");
        let schema = table.schema.clone();
        let key_names: Vec<String> = if upsert {
            if key_fields.is_some() {
                return Err(o.bad(
                    "key.fields",
                    "upsert-kafka takes its key from the PRIMARY KEY; remove 'key.fields'",
                ));
            }
            if table.primary_key.is_empty() {
                return Err(Error::Unsupported {
                    table: table.name.clone(),
                    message: "upsert-kafka needs a PRIMARY KEY (…) NOT ENFORCED: the key of \
                              every Kafka record"
                        .into(),
                });
            }
            table.primary_key.clone()
        } else {
            key_fields
                .map(|k| {
                    k.split(';')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut key_columns = Vec::new();
        for name in &key_names {
            let i = schema.index_of(name).map_err(|_| {
                o.bad(
                    if upsert { "PRIMARY KEY" } else { "key.fields" },
                    &format!("'{name}' is not a physical column of the table"),
                )
            })?;
            key_columns.push(i);
        }
        match (&key_format, key_columns.is_empty()) {
            (None, false) => {
                return Err(Error::MissingOption {
                    table: table.name.clone(),
                    connector: connector.into(),
                    option: "key.format".into(),
                    hint: "the key columns need a format: write e.g. 'key.format' = 'json'".into(),
                });
            }
            (Some(_), true) => {
                return Err(o.bad(
                    "key.format",
                    "no key columns: name them in 'key.fields' or drop 'key.format'",
                ));
            }
            _ => {}
        }
        let include = match o.take("value.fields-include").as_deref() {
            None if upsert => FieldsInclude::ExceptKey,
            None => FieldsInclude::All,
            Some(v) if v.eq_ignore_ascii_case("ALL") => FieldsInclude::All,
            Some(v) if v.eq_ignore_ascii_case("EXCEPT_KEY") => FieldsInclude::ExceptKey,
            Some(v) => {
                return Err(o.bad(
                    "value.fields-include",
                    &format!("'{v}' is not ALL or EXCEPT_KEY"),
                ));
            }
        };
        if !key_prefix.is_empty() {
            if include == FieldsInclude::All {
                return Err(o.bad(
                    "key.fields-prefix",
                    "needs 'value.fields-include' = 'EXCEPT_KEY' (as in Flink)",
                ));
            }
            if let Some(n) = key_names.iter().find(|n| !n.starts_with(&key_prefix)) {
                return Err(o.bad(
                    "key.fields-prefix",
                    &format!("key column '{n}' does not start with '{key_prefix}'"),
                ));
            }
        }
        let value_columns: Vec<usize> = (0..schema.fields().len())
            .filter(|i| include == FieldsInclude::All || !key_columns.contains(i))
            .collect();
        if value_columns.is_empty() {
            return Err(o.bad(
                "value.fields-include",
                "leaves the value no column; use 'ALL'",
            ));
        }

        let guarantee = match o.take("sink.delivery-guarantee").as_deref() {
            None | Some("at-least-once") => Guarantee::AtLeastOnce,
            Some("none") => Guarantee::None,
            Some("exactly-once") => Guarantee::ExactlyOnce,
            Some(v) => {
                return Err(o.bad(
                    "sink.delivery-guarantee",
                    &format!("'{v}' is not one of none, at-least-once, exactly-once"),
                ));
            }
        };
        let transactional_id_prefix = o.take("sink.transactional-id-prefix");
        if guarantee == Guarantee::ExactlyOnce && transactional_id_prefix.is_none() {
            return Err(Error::MissingOption {
                table: table.name.clone(),
                connector: connector.into(),
                option: "sink.transactional-id-prefix".into(),
                hint: "exactly-once needs a prefix unique to this pipeline, e.g. \
                       'sink.transactional-id-prefix' = 'orders-enricher'"
                    .into(),
            });
        }
        let partitioner = match o.take("sink.partitioner").as_deref() {
            None | Some("default") => Partitioner::Default,
            Some("fixed") => Partitioner::Fixed,
            Some("round-robin") => Partitioner::RoundRobin,
            Some(v) => {
                return Err(o.bad(
                    "sink.partitioner",
                    &format!("'{v}' is not one of default, fixed, round-robin"),
                ));
            }
        };
        let sink_parallelism = o.take_parsed::<usize>("sink.parallelism", "a positive number")?;
        if sink_parallelism == Some(0) {
            return Err(o.bad("sink.parallelism", "must be at least 1"));
        }
        if upsert {
            // Flink's buffering options: Sluice sends each batch as it comes.
            o.take("sink.buffer-flush.max-rows");
            o.take("sink.buffer-flush.interval");
        }
        // The formats' own options (`json.*`, `key.json.*`, `value.json.*`) are checked
        // by the formats.
        o.take_prefixed("key.");
        o.take_prefixed("value.");
        o.take_prefixed(&format!("{value_format}."));
        o.finish()?;
        let config = KafkaConfig {
            connector,
            topics,
            bootstrap,
            group_id,
            properties,
            startup,
            bounded,
            discovery,
            key_format,
            value_format,
            key_columns,
            key_prefix,
            value_columns,
            guarantee,
            transactional_id_prefix,
            partitioner,
            sink_parallelism,
            schema,
            options: table.options.clone(),
            table: table.name.clone(),
        };
        Ok(config)
    }

    /// Builds the decoders (`read`) or encoders once, so a bad format option fails at
    /// plan time.
    pub fn check_formats(&self, read: bool) -> Result<()> {
        let check = |format: &str, options: FormatOptions| {
            let r = if read {
                sluice_formats::decoder_for(format, &options).map(|_| ())
            } else {
                sluice_formats::encoder_for(format, &options).map(|_| ())
            };
            r.map_err(|source| Error::Format {
                table: self.table.clone(),
                source,
            })
        };
        check(&self.value_format, self.value_options()?)?;
        if let Some(kf) = &self.key_format {
            check(kf, self.key_options()?)?;
        }
        Ok(())
    }

    /// The value format's options: its columns, and `value.<fmt>.*` and `<fmt>.*` as
    /// `<fmt>.*`.
    pub fn value_options(&self) -> Result<FormatOptions> {
        let schema = Arc::new(self.schema.project(&self.value_columns)?);
        Ok(self.format_options(schema, &self.value_format, &["value.", ""]))
    }

    /// The key format's options: the key columns (without `key.fields-prefix`) and
    /// `key.<fmt>.*` as `<fmt>.*`.
    pub fn key_options(&self) -> Result<FormatOptions> {
        let fields: Vec<_> = self
            .key_columns
            .iter()
            .map(|&i| {
                let f = self.schema.field(i);
                let name = f.name().strip_prefix(&self.key_prefix).unwrap_or(f.name());
                f.as_ref().clone().with_name(name)
            })
            .collect();
        let format = self.key_format.clone().unwrap_or_default();
        Ok(self.format_options(Arc::new(Schema::new(fields)), &format, &["key."]))
    }

    fn format_options(&self, schema: SchemaRef, format: &str, prefixes: &[&str]) -> FormatOptions {
        let mut options = BTreeMap::new();
        for p in prefixes.iter().rev() {
            let want = format!("{p}{format}.");
            for (k, v) in &self.options {
                if let Some(rest) = k.strip_prefix(&want) {
                    options.insert(format!("{format}.{rest}"), v.clone());
                }
            }
        }
        FormatOptions {
            table: self.table.clone(),
            schema,
            options,
        }
    }

    /// Whether this is `upsert-kafka`.
    pub fn upsert(&self) -> bool {
        self.connector == "upsert-kafka"
    }

    /// The librdkafka settings common to consumers and producers.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    /// The topics as text, for messages.
    pub fn describe_topics(&self) -> String {
        match &self.topics {
            Topics::List(l) => l.join(";"),
            Topics::Pattern(p) => {
                let s = p.as_str();
                format!(
                    "pattern '{}'",
                    s.strip_prefix("^(?:")
                        .and_then(|s| s.strip_suffix(")$"))
                        .unwrap_or(s)
                )
            }
        }
    }
}

fn valid_topic(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

fn startup_mode(o: &mut Options) -> Result<StartupMode> {
    let mode = o.take("scan.startup.mode");
    let ts = o.take_parsed::<i64>("scan.startup.timestamp-millis", "a number of milliseconds")?;
    let specific = o.take("scan.startup.specific-offsets");
    Ok(match mode.as_deref() {
        None | Some("group-offsets") => StartupMode::GroupOffsets,
        Some("earliest-offset") => StartupMode::Earliest,
        Some("latest-offset") => StartupMode::Latest,
        Some("timestamp") => StartupMode::Timestamp(ts.ok_or_else(|| {
            o.bad(
                "scan.startup.mode",
                "'timestamp' needs 'scan.startup.timestamp-millis'",
            )
        })?),
        Some("specific-offsets") => {
            let text = specific.ok_or_else(|| {
                o.bad(
                    "scan.startup.mode",
                    "'specific-offsets' needs 'scan.startup.specific-offsets', e.g. \
                     'partition:0,offset:42;partition:1,offset:300'",
                )
            })?;
            StartupMode::Specific(
                parse_specific_offsets(&text)
                    .map_err(|m| o.bad("scan.startup.specific-offsets", &m))?,
            )
        }
        Some(v) => {
            return Err(o.bad(
                "scan.startup.mode",
                &format!(
                    "'{v}' is not one of earliest-offset, latest-offset, group-offsets, \
                     timestamp, specific-offsets"
                ),
            ));
        }
    })
}

/// `partition:0,offset:42;partition:1,offset:300`.
pub fn parse_specific_offsets(text: &str) -> std::result::Result<BTreeMap<i32, i64>, String> {
    let mut out = BTreeMap::new();
    for part in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let mut partition = None;
        let mut offset = None;
        for kv in part.split(',') {
            let (k, v) = kv
                .split_once(':')
                .ok_or_else(|| format!("'{part}' is not 'partition:N,offset:M'"))?;
            match k.trim() {
                "partition" => partition = v.trim().parse::<i32>().ok().filter(|p| *p >= 0),
                "offset" => offset = v.trim().parse::<i64>().ok().filter(|o| *o >= 0),
                _ => return Err(format!("'{part}' is not 'partition:N,offset:M'")),
            }
        }
        match (partition, offset) {
            (Some(p), Some(o)) => {
                out.insert(p, o);
            }
            _ => return Err(format!("'{part}' is not 'partition:N,offset:M'")),
        }
    }
    if out.is_empty() {
        return Err("names no partition; write e.g. 'partition:0,offset:42'".into());
    }
    Ok(out)
}
