//! What the Kafka source and sink share: the librdkafka client context (its logs and
//! errors go to `tracing`; failed deliveries are remembered) and topic metadata.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::client::{Client, ClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use tracing::{debug, warn};

use super::config::{KafkaConfig, Topics};
use crate::{Error, Result};

/// How long a metadata or offsets request may take before the connector gives up.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The context of every client Sluice makes: it names the table in logs.
pub(crate) struct KafkaContext {
    table: String,
    /// The first delivery failure since it was last taken.
    failed: Mutex<Option<String>>,
    failures: AtomicU64,
}

impl KafkaContext {
    pub(crate) fn new(table: &str) -> Self {
        KafkaContext {
            table: table.to_string(),
            failed: Mutex::new(None),
            failures: AtomicU64::new(0),
        }
    }

    /// The first delivery failure since the last call, with how many there were.
    pub(crate) fn take_failure(&self) -> Option<(String, u64)> {
        let first = self.failed.lock().ok()?.take()?;
        Some((first, self.failures.swap(0, Ordering::Relaxed)))
    }
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                warn!(table = %self.table, facility = fac, "Kafka client: {message}")
            }
            _ => debug!(table = %self.table, facility = fac, "Kafka client: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(table = %self.table, %error, "Kafka client error: {reason}");
    }
}

impl ConsumerContext for KafkaContext {}

impl ProducerContext for KafkaContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failures.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut f) = self.failed.lock()
                && f.is_none()
            {
                *f = Some(e.to_string());
            }
        }
    }
}

/// A broker error as a connector error naming the table and the brokers.
pub(crate) fn external(config: &KafkaConfig, what: &str, e: impl std::fmt::Display) -> Error {
    Error::External {
        table: config.table.clone(),
        message: format!("Kafka at {}: {what}: {e}", config.bootstrap),
        retryable: true,
    }
}

/// Every (topic, partition) the table reads, sorted; fails when a named topic does not
/// exist.
pub(crate) fn partitions<C: ClientContext>(
    client: &Client<C>,
    config: &KafkaConfig,
) -> Result<Vec<(String, i32)>> {
    let mut out = Vec::new();
    match &config.topics {
        Topics::List(list) => {
            for t in list {
                let md = client
                    .fetch_metadata(Some(t), REQUEST_TIMEOUT)
                    .map_err(|e| external(config, &format!("cannot read topic '{t}'"), e))?;
                let Some(topic) = md.topics().iter().find(|m| m.name() == t) else {
                    return Err(missing_topic(config, t));
                };
                if topic.error().is_some() || topic.partitions().is_empty() {
                    return Err(missing_topic(config, t));
                }
                out.extend(topic.partitions().iter().map(|p| (t.clone(), p.id())));
            }
        }
        Topics::Pattern(re) => {
            let md = client
                .fetch_metadata(None, REQUEST_TIMEOUT)
                .map_err(|e| external(config, "cannot list topics", e))?;
            for topic in md.topics() {
                if topic.name().starts_with("__") || !re.is_match(topic.name()) {
                    continue;
                }
                out.extend(
                    topic
                        .partitions()
                        .iter()
                        .map(|p| (topic.name().to_string(), p.id())),
                );
            }
        }
    }
    out.sort();
    Ok(out)
}

fn missing_topic(config: &KafkaConfig, topic: &str) -> Error {
    Error::External {
        table: config.table.clone(),
        message: format!(
            "topic '{topic}' does not exist on {}; create it (or check 'topic')",
            config.bootstrap
        ),
        retryable: false,
    }
}

/// The checkpoint key of a partition: `topic:partition`.
pub(crate) fn split_key(topic: &str, partition: i32) -> String {
    format!("{topic}:{partition}")
}
