//! Options of the `http` source (the ingest endpoint `POST /ingest/<table>`).

use std::time::Duration;

use crate::{ConnectorTable, Options, Result};

/// What a request with bad records gets (`ingest.on-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// `reject` (default): 400 naming the first bad record and field; nothing of the
    /// request enters the pipeline (the client fixes it and sends it again).
    Reject,
    /// `dead-letter`: the good records enter the pipeline, the bad ones go to the dead
    /// letters; 200 says how many of each.
    DeadLetter,
}

/// When a request is answered (`ingest.ack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// `pipeline` (default): once its rows are in the pipeline.
    Pipeline,
    /// `checkpoint`: once the checkpoint that holds its rows completed (with
    /// checkpoints; otherwise as `pipeline`), so an answered request survives a crash.
    Checkpoint,
}

/// Options of the http source.
#[derive(Debug, Clone)]
pub struct HttpSourceConfig {
    /// `format`: `json` (JSON objects, a JSON array of them, or NDJSON) or `csv`.
    pub format: String,
    /// `auth.token`: the bearer token requests must carry; `None`: no check.
    pub token: Option<String>,
    /// `ingest.max-body-size`: the largest body accepted, after decompression.
    pub max_body: usize,
    /// `ingest.on-error`.
    pub on_error: OnError,
    /// `ingest.ack`.
    pub ack: AckMode,
    /// `ingest.queue`: requests waiting for the pipeline at most before 429.
    pub queue: usize,
    /// `ingest.timeout`: how long a request waits for its acknowledgement before 503.
    pub timeout: Duration,
    /// `ingest.body-timeout`: how long receiving a body may take before 408.
    pub body_timeout: Duration,
    pub(crate) table: ConnectorTable,
}

impl HttpSourceConfig {
    /// Reads the options of `table`; unknown options are errors.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "http", &table.options);
        let format = o.take("format").unwrap_or_else(|| "json".into());
        if !matches!(format.as_str(), "json" | "csv") {
            return Err(o.bad(
                "format",
                &format!("'{format}': the ingest endpoint takes 'json' (objects, arrays, NDJSON) or 'csv'"),
            ));
        }
        o.take_prefixed(&format!("{format}."));
        let token = o.take("auth.token").filter(|t| !t.is_empty());
        let max_body = o
            .take_parsed::<usize>("ingest.max-body-size", "a number of bytes")?
            .unwrap_or(16 << 20);
        let on_error = match o.take("ingest.on-error").as_deref() {
            None | Some("reject") => OnError::Reject,
            Some("dead-letter") => OnError::DeadLetter,
            Some(v) => {
                return Err(o.bad(
                    "ingest.on-error",
                    &format!("'{v}' is not reject or dead-letter"),
                ));
            }
        };
        let ack = match o.take("ingest.ack").as_deref() {
            None | Some("pipeline") => AckMode::Pipeline,
            Some("checkpoint") => AckMode::Checkpoint,
            Some(v) => {
                return Err(o.bad(
                    "ingest.ack",
                    &format!("'{v}' is not pipeline or checkpoint"),
                ));
            }
        };
        let queue = o
            .take_parsed::<usize>("ingest.queue", "a positive number")?
            .unwrap_or(64)
            .max(1);
        let timeout = o
            .take_duration("ingest.timeout")?
            .unwrap_or(Duration::from_secs(30));
        let body_timeout = o
            .take_duration("ingest.body-timeout")?
            .unwrap_or(Duration::from_secs(30));
        o.finish()?;
        Ok(HttpSourceConfig {
            format,
            token,
            max_body,
            on_error,
            ack,
            queue,
            timeout,
            body_timeout,
            table: table.clone(),
        })
    }
}
