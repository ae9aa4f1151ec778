//! Options of the `webhook` sink.

use std::time::Duration;

use crate::template::{KeyPart, parse_mustache};
use crate::{ConnectorTable, Options, Result};

/// Options of the webhook sink.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `url`: where requests go (`http://` or `https://`).
    pub url: String,
    /// `method`: `POST` (default), `PUT` or `PATCH`.
    pub method: String,
    /// `headers.<name>`: headers sent with every request (values may be secrets).
    pub headers: Vec<(String, String)>,
    /// `format` (default `json`): how rows become the body.
    pub format: String,
    /// `body.template`: the body as text with `{{column}}` placeholders (one request
    /// per row), instead of the format.
    pub template: Option<Vec<KeyPart>>,
    /// `sink.batch.max-rows`: rows per request (default 1: one request per row; more
    /// send a JSON array, or records one per line in other formats).
    pub batch_rows: usize,
    /// `sink.max-retries`: attempts after the first, for a connection failure, a
    /// timeout, 408, 429 or a 5xx answer.
    pub max_retries: u32,
    /// `sink.retry.initial-backoff`: the first wait; it doubles up to
    /// `sink.retry.max-backoff`, each wait a random share of it (full jitter).
    pub initial_backoff: Duration,
    /// `sink.retry.max-backoff`.
    pub max_backoff: Duration,
    /// `sink.request-timeout`.
    pub timeout: Duration,
    /// `sink.max-concurrent-requests`.
    pub concurrency: usize,
    /// `sink.circuit-breaker.failures`: consecutive failed requests (after their
    /// retries) that open the circuit; 0 turns it off.
    pub breaker_failures: u32,
    /// `sink.circuit-breaker.reset`: how long the circuit stays open before one
    /// request tries again.
    pub breaker_reset: Duration,
    /// `tls.root-cert`: a PEM file of the CA that signed the server's certificate.
    pub root_cert: Option<String>,
    /// `sink.parallelism`.
    pub parallelism: Option<usize>,
    pub(crate) table: ConnectorTable,
}

impl WebhookConfig {
    /// Reads the options of `table`; unknown options are errors.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "webhook", &table.options);
        let url = o.take_required(
            "url",
            "write e.g. 'url' = 'https://hooks.example.com/alerts'",
        )?;
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(o.bad("url", "is not an http:// or https:// URL"));
        }
        if let Err(e) = reqwest::Url::parse(&url) {
            return Err(o.bad("url", &format!("is not a URL: {e}")));
        }
        let method = o
            .take("method")
            .unwrap_or_else(|| "POST".into())
            .to_uppercase();
        if !matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
            return Err(o.bad("method", &format!("'{method}' is not POST, PUT or PATCH")));
        }
        let headers = o.take_headers()?;
        let template = match o.take("body.template") {
            None => None,
            Some(t) => {
                Some(parse_mustache(&t, &table.schema).map_err(|m| o.bad("body.template", &m))?)
            }
        };
        let format = o.take("format").unwrap_or_else(|| "json".into());
        o.take_prefixed(&format!("{format}."));
        let batch_rows = o
            .take_parsed::<usize>("sink.batch.max-rows", "a positive number")?
            .unwrap_or(1);
        if batch_rows == 0 {
            return Err(o.bad("sink.batch.max-rows", "must be at least 1"));
        }
        if template.is_some() && batch_rows > 1 {
            return Err(o.bad(
                "sink.batch.max-rows",
                "a body.template makes one request per row: drop one of them",
            ));
        }
        let max_retries = o
            .take_parsed::<u32>("sink.max-retries", "a number")?
            .unwrap_or(5);
        let initial_backoff = o
            .take_duration("sink.retry.initial-backoff")?
            .unwrap_or(Duration::from_millis(500));
        let max_backoff = o
            .take_duration("sink.retry.max-backoff")?
            .unwrap_or(Duration::from_secs(30))
            .max(initial_backoff);
        let timeout = o
            .take_duration("sink.request-timeout")?
            .unwrap_or(Duration::from_secs(10));
        let concurrency = o
            .take_parsed::<usize>("sink.max-concurrent-requests", "a positive number")?
            .unwrap_or(4)
            .max(1);
        let breaker_failures = o
            .take_parsed::<u32>("sink.circuit-breaker.failures", "a number")?
            .unwrap_or(5);
        let breaker_reset = o
            .take_duration("sink.circuit-breaker.reset")?
            .unwrap_or(Duration::from_secs(30));
        let root_cert = o.take("tls.root-cert");
        if let Some(path) = &root_cert {
            if !lower.starts_with("https://") {
                return Err(o.bad("tls.root-cert", "applies to https:// URLs"));
            }
            if let Err(m) = crate::tls::roots(Some(path)) {
                return Err(o.bad("tls.root-cert", &m));
            }
        }
        let parallelism = o.take_parsed::<usize>("sink.parallelism", "a positive number")?;
        if parallelism == Some(0) {
            return Err(o.bad("sink.parallelism", "must be at least 1"));
        }
        o.finish()?;
        Ok(WebhookConfig {
            url,
            method,
            headers,
            format,
            template,
            batch_rows,
            max_retries,
            initial_backoff,
            max_backoff,
            timeout,
            concurrency,
            breaker_failures,
            breaker_reset,
            root_cert,
            parallelism,
            table: table.clone(),
        })
    }
}
