//! The webhook sink: rows become HTTP requests (one per row, or batches as a JSON
//! array), retried with exponential backoff and full jitter, behind a circuit breaker;
//! a request that still fails goes to the dead letters with its body and the reason.
//!
//! At-least-once: `write` returns only when every request of the batch was accepted
//! (2xx) or dead-lettered, so a completed checkpoint covers only delivered rows; rows
//! after it are sent again after a restart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use rand::Rng;
use sluice_formats::Encoder;
use sluice_runtime::{DeadLetterOutput, Delivery, Sink, SinkFactory, TaskInfo};
use sluice_types::DeadLetter;
use tracing::warn;

use super::config::WebhookConfig;
use crate::template::render_with;
use crate::{ConnectorTable, Error, Result};

/// Makes one [`WebhookSink`] per subtask.
pub struct WebhookSinkFactory {
    config: Arc<WebhookConfig>,
    schema: SchemaRef,
}

impl WebhookSinkFactory {
    /// Checks the format and that the table has no metadata to write.
    pub fn new(table: &ConnectorTable, config: WebhookConfig) -> Result<Self> {
        crate::messages::no_metadata(table, "webhook")?;
        crate::messages::encoder(&config.table, &config.format)?;
        Ok(WebhookSinkFactory {
            schema: table.schema.clone(),
            config: Arc::new(config),
        })
    }
}

impl SinkFactory for WebhookSinkFactory {
    fn name(&self) -> String {
        format!("Sink: {} (webhook)", self.config.table.name)
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn parallelism(&self) -> Option<usize> {
        self.config.parallelism
    }

    fn create(&self, _task: &TaskInfo) -> sluice_runtime::Result<Box<dyn Sink>> {
        Ok(Box::new(WebhookSink {
            config: self.config.clone(),
            encoder: crate::messages::encoder(&self.config.table, &self.config.format)?,
            client: None,
            dead: None,
            breaker: Arc::new(Mutex::new(Breaker::default())),
            requests: 0,
        }))
    }
}

/// The circuit breaker: closed while requests succeed; open (requests fail at once)
/// for `reset` after `failures` consecutive failed requests; then one request tries
/// (half-open) and closes it again on success.
#[derive(Debug, Default)]
struct Breaker {
    consecutive: u32,
    open_until: Option<Instant>,
    trial: bool,
}

impl Breaker {
    /// Whether a request may go now.
    fn allow(&mut self) -> bool {
        match self.open_until {
            None => true,
            Some(t) if Instant::now() < t => false,
            Some(_) if self.trial => false,
            Some(_) => {
                self.trial = true;
                true
            }
        }
    }

    fn success(&mut self) {
        *self = Breaker::default();
    }

    /// Records a failed request; true when this opened the circuit.
    fn failure(&mut self, threshold: u32, reset: Duration) -> bool {
        self.consecutive += 1;
        let was_trial = std::mem::take(&mut self.trial);
        if threshold > 0 && (self.consecutive >= threshold || was_trial) {
            self.open_until = Some(Instant::now() + reset);
            return true;
        }
        false
    }
}

/// Writes one subtask's rows.
struct WebhookSink {
    config: Arc<WebhookConfig>,
    encoder: Box<dyn Encoder>,
    client: Option<reqwest::Client>,
    dead: Option<Arc<dyn DeadLetterOutput>>,
    breaker: Arc<Mutex<Breaker>>,
    /// Requests made so far: the offsets dead letters name.
    requests: u64,
}

/// What one request came to.
enum Outcome {
    Delivered,
    /// Given up on, with the reason.
    Failed(String),
}

/// Sends `body`, retrying as the options say.
async fn deliver(
    config: &WebhookConfig,
    client: &reqwest::Client,
    breaker: &Mutex<Breaker>,
    body: Vec<u8>,
) -> Outcome {
    let method =
        reqwest::Method::from_bytes(config.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut backoff = config.initial_backoff;
    let mut attempt = 0u32;
    // The breaker admits a request once; its retries follow without asking again.
    let allowed = breaker.lock().map(|mut b| b.allow()).unwrap_or(true);
    if !allowed {
        return Outcome::Failed(format!(
            "not sent: the circuit to {} is open after {} failed requests in a row",
            config.url, config.breaker_failures
        ));
    }
    loop {
        let mut req = client
            .request(method.clone(), &config.url)
            .body(body.clone());
        let mut has_type = false;
        for (k, v) in &config.headers {
            has_type |= k.eq_ignore_ascii_case("content-type");
            req = req.header(k.as_str(), v.as_str());
        }
        if !has_type {
            req = req.header("content-type", content_type(config));
        }
        let (reason, retry_after) = match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                if let Ok(mut b) = breaker.lock() {
                    b.success();
                }
                return Outcome::Delivered;
            }
            Ok(resp) if resp.status().is_redirection() => {
                // Following it would turn the POST into a GET without the body (and
                // carry the headers elsewhere): the endpoint moved, tell the user.
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("nowhere")
                    .to_string();
                if let Ok(mut b) = breaker.lock() {
                    b.trial = false;
                }
                return Outcome::Failed(format!(
                    "HTTP {}: the endpoint redirects to {location}; set 'url' to it (not retried)",
                    resp.status()
                ));
            }
            Ok(resp) => {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = resp.text().await.unwrap_or_default();
                let excerpt: String = text.chars().take(200).collect();
                let reason = format!("HTTP {status}: {excerpt}");
                let retryable = status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT;
                if !retryable {
                    // The server refuses this request: sending it again will not help,
                    // and it says nothing about the server's health.
                    if let Ok(mut b) = breaker.lock() {
                        b.trial = false;
                    }
                    return Outcome::Failed(format!("{reason} (not retried)"));
                }
                (reason, retry_after)
            }
            Err(e) => (
                format!("request failed: {}", crate::error::with_causes(&e)),
                None,
            ),
        };
        if attempt >= config.max_retries {
            let opened = breaker
                .lock()
                .map(|mut b| b.failure(config.breaker_failures, config.breaker_reset))
                .unwrap_or(false);
            if opened {
                warn!(table = %config.table.name, url = %config.url, reset = ?config.breaker_reset, "Webhook circuit opened: rows go to the dead letters until it closes.");
            }
            return Outcome::Failed(format!("{reason} (after {} attempts)", attempt + 1));
        }
        attempt += 1;
        // Full jitter: a random wait up to the current backoff; a server's Retry-After
        // wins (up to the longest backoff).
        let wait = match retry_after {
            Some(r) => r.min(config.max_backoff),
            None => backoff.mul_f64(rand::rng().random_range(0.0..=1.0)),
        };
        warn!(table = %config.table.name, url = %config.url, attempt, error = %reason, wait = ?wait, "Webhook request failed; retrying.");
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

fn content_type(config: &WebhookConfig) -> &'static str {
    match config.format.as_str() {
        _ if config.template.is_some() => "application/json",
        "json" => "application/json",
        "csv" => "text/csv",
        "avro" | "protobuf" | "raw" => "application/octet-stream",
        _ => "text/plain",
    }
}

/// `s` as the inside of a JSON string.
fn json_escape(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_string()
}

impl WebhookSink {
    /// The request bodies for `batch`.
    fn bodies(&mut self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
        if let Some(template) = &self.config.template {
            let bodies = render_with(template, batch, |v, out| out.push_str(&json_escape(v)))?;
            return Ok(bodies.into_iter().map(String::into_bytes).collect());
        }
        let format_error = |source| Error::Format {
            table: self.config.table.name.clone(),
            source,
        };
        let mut out = Vec::new();
        let n = self.config.batch_rows;
        let mut start = 0;
        while start < batch.num_rows() {
            let chunk = batch.slice(start, n.min(batch.num_rows() - start));
            start += chunk.num_rows();
            if self.config.format == "json" {
                let mut bytes = Vec::new();
                let mut ends = Vec::new();
                self.encoder
                    .encode_each(&chunk, &mut bytes, &mut ends)
                    .map_err(format_error)?;
                if n == 1 {
                    out.push(bytes);
                    continue;
                }
                let mut body = Vec::with_capacity(bytes.len() + ends.len() + 2);
                body.push(b'[');
                let mut s = 0;
                for (i, e) in ends.iter().enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(&bytes[s..*e]);
                    s = *e;
                }
                body.push(b']');
                out.push(body);
            } else {
                let mut body = self.encoder.header();
                self.encoder
                    .encode(&chunk, &mut body)
                    .map_err(format_error)?;
                out.push(body);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Sink for WebhookSink {
    fn attach_dead_letters(&mut self, out: Arc<dyn DeadLetterOutput>) {
        self.dead = Some(out);
    }

    async fn open(&mut self, _task: &TaskInfo) -> sluice_runtime::Result<()> {
        let mut builder = reqwest::Client::builder()
            .timeout(self.config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &self.config.root_cert {
            let pem = std::fs::read(path).map_err(|e| Error::BadOption {
                table: self.config.table.name.clone(),
                option: "tls.root-cert".into(),
                message: format!("cannot read '{path}': {e}"),
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| Error::BadOption {
                table: self.config.table.name.clone(),
                option: "tls.root-cert".into(),
                message: format!("'{path}': {e}"),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder.build().map_err(|e| Error::External {
            table: self.config.table.name.clone(),
            message: format!("cannot set up the HTTP client: {e}"),
            retryable: false,
        })?;
        self.client = Some(client);
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> sluice_runtime::Result<()> {
        let bodies = self.bodies(&batch)?;
        let Some(client) = self.client.clone() else {
            return Err(Error::External {
                table: self.config.table.name.clone(),
                message: "the webhook sink was written before it was opened".into(),
                retryable: false,
            }
            .into());
        };
        let config = self.config.clone();
        let breaker = self.breaker.clone();
        let first = self.requests;
        self.requests += bodies.len() as u64;
        let outcomes: Vec<(u64, Vec<u8>, Outcome)> =
            futures::stream::iter(bodies.into_iter().enumerate())
                .map(|(i, body)| {
                    let (config, client, breaker) =
                        (config.clone(), client.clone(), breaker.clone());
                    async move {
                        let outcome = deliver(&config, &client, &breaker, body.clone()).await;
                        (first + i as u64, body, outcome)
                    }
                })
                .buffer_unordered(self.config.concurrency)
                .collect()
                .await;
        for (offset, body, outcome) in outcomes {
            if let Outcome::Failed(reason) = outcome {
                let letter = DeadLetter::new(
                    self.config.table.name.clone(),
                    self.config.url.clone(),
                    offset,
                    reason,
                    &body,
                );
                match &self.dead {
                    Some(d) => d.send(letter),
                    None => {
                        warn!(table = %self.config.table.name, reason = %letter.reason, "Webhook request given up on.")
                    }
                }
            }
        }
        Ok(())
    }

    async fn close(&mut self) -> sluice_runtime::Result<()> {
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        Delivery::AtLeastOnce
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_failures_and_lets_one_request_try_after_the_reset() {
        let mut b = Breaker::default();
        let reset = Duration::from_millis(30);
        assert!(b.allow());
        assert!(!b.failure(3, reset));
        assert!(!b.failure(3, reset));
        assert!(b.failure(3, reset));
        assert!(!b.allow(), "open");
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow(), "half-open: one trial");
        assert!(!b.allow(), "only one trial at a time");
        assert!(b.failure(3, reset), "a failed trial opens it again");
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.allow());
        b.success();
        assert!(b.allow() && b.allow(), "closed again");
    }

    #[test]
    fn template_values_are_escaped_for_json() {
        assert_eq!(json_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(json_escape(""), "");
    }
}
