//! The process-wide list of ingest endpoints: each `http` table registers one when it
//! is planned; the HTTP server (`sluice-server`) finds it by the table's name, hands
//! it request bodies, and the table's source takes the decoded rows from it.

use std::sync::Arc;
use std::time::Duration;

use crate::hub::Hub;

use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;
use sluice_formats::{Decoder, FormatOptions};
use sluice_types::DeadLetter;
use tokio::sync::{mpsc, oneshot};

use super::body::{BodyError, Layout, decode_encoding, records};
use super::config::{HttpSourceConfig, OnError};

/// Rows of one request on their way to the source, and how to tell the client.
#[derive(Debug)]
pub(crate) struct Ingest {
    pub(crate) batch: Option<RecordBatch>,
    pub(crate) letters: Vec<DeadLetter>,
    pub(crate) ack: oneshot::Sender<()>,
    /// Set by the source when it takes the rows (a request that gave up before is
    /// dropped, so that its answer, "not taken", holds).
    pub(crate) taken: Arc<std::sync::atomic::AtomicBool>,
}

/// One table's ingest endpoint.
pub struct Endpoint {
    config: HttpSourceConfig,
    tx: mpsc::Sender<Ingest>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Ingest>>>,
}

/// What a request comes to: the HTTP status, a JSON body, and extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The response body (JSON).
    pub body: String,
    /// Extra headers (`Retry-After`, `WWW-Authenticate`).
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn error(status: u16, message: &str) -> Answer {
        Answer {
            status,
            body: serde_json::json!({ "error": message }).to_string(),
            headers: Vec::new(),
        }
    }
}

impl Endpoint {
    /// The largest body accepted.
    pub fn max_body(&self) -> usize {
        self.config.max_body
    }

    /// How long receiving a body may take.
    pub fn body_timeout(&self) -> Duration {
        self.config.body_timeout
    }

    /// Whether the table has its own `auth.token`.
    pub fn has_token(&self) -> bool {
        self.config.token.is_some()
    }

    /// Checks the `Authorization` header: `None` when it may pass, else 401 (missing)
    /// or 403 (wrong token).
    pub fn check_auth(&self, authorization: Option<&str>) -> Option<Answer> {
        let want = self.config.token.as_deref()?;
        let Some(given) = authorization else {
            let mut a = Answer::error(401, "this endpoint needs 'Authorization: Bearer <token>'");
            a.headers.push(("www-authenticate", "Bearer".into()));
            return Some(a);
        };
        let token = given.strip_prefix("Bearer ").unwrap_or("").trim();
        (!same_token(token, want))
            .then(|| Answer::error(403, "the bearer token is not the one this endpoint takes"))
    }

    /// Decodes `body` and hands its rows to the pipeline; answers once they are in it
    /// (or their checkpoint completed, with `ingest.ack` = `checkpoint`).
    pub async fn accept(
        &self,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let c = &self.config;
        let layout = match Layout::of(content_type, &c.format) {
            Ok(l) => l,
            Err(m) => return Answer::error(415, &m),
        };
        let body = match decode_encoding(body, content_encoding, c.max_body) {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return Answer::error(
                    413,
                    &format!("the body is over {} bytes once decompressed", c.max_body),
                );
            }
            Err(BodyError::Malformed(m)) => return Answer::error(400, &m),
        };
        let records = match records(&body, layout) {
            Ok(r) => r,
            Err(BodyError::Malformed(m)) => return Answer::error(400, &m),
            Err(BodyError::TooLarge) => return Answer::error(413, "the body is too large"),
        };
        let mut decoder = match self.decoder() {
            Ok(d) => d,
            Err(m) => return Answer::error(500, &m),
        };
        let source = format!("http:/ingest/{}", c.table.name);
        for (i, r) in records.iter().enumerate() {
            // A record the decoder rejects comes back from flush.
            let _ = decoder.decode(r, &source, i as u64);
        }
        let decoded = match decoder.flush() {
            Ok(d) => d,
            Err(e) => return Answer::error(500, &e.to_string()),
        };
        let rows = decoded.batch.as_ref().map_or(0, RecordBatch::num_rows);
        let rejected = decoded.dead_letters.len();
        if rejected > 0 && c.on_error == OnError::Reject {
            let first = &decoded.dead_letters[0];
            return Answer {
                status: 400,
                body: serde_json::json!({
                    "error": format!("record {} (counting from 0): {}", first.offset, first.reason),
                    "record": first.offset,
                    "rejected": rejected,
                    "accepted": 0,
                })
                .to_string(),
                headers: Vec::new(),
            };
        }
        let (ack, acked) = oneshot::channel();
        let taken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ingest = Ingest {
            batch: decoded.batch,
            letters: decoded.dead_letters,
            ack,
            taken: taken.clone(),
        };
        match self.tx.try_send(ingest) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let mut a = Answer::error(
                    429,
                    "the pipeline is behind: send the request again after Retry-After seconds",
                );
                a.headers.push(("retry-after", "1".into()));
                return a;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Answer::error(503, "the pipeline reading this table is not running");
            }
        }
        match tokio::time::timeout(c.timeout, acked).await {
            Ok(Ok(())) => Answer {
                status: 200,
                body: serde_json::json!({ "accepted": rows, "rejected": rejected }).to_string(),
                headers: Vec::new(),
            },
            _ if taken.load(std::sync::atomic::Ordering::Acquire) => Answer::error(
                504,
                &format!(
                    "the rows are in the pipeline but were not confirmed within {:?} (their \
                     checkpoint did not complete): sending them again may repeat them",
                    c.timeout
                ),
            ),
            Ok(Err(_)) => Answer::error(
                503,
                "the pipeline stopped before taking the rows: send the request again",
            ),
            Err(_) => Answer::error(
                503,
                &format!(
                    "the rows were not taken within {:?}: send the request again",
                    c.timeout
                ),
            ),
        }
    }

    fn decoder(&self) -> Result<Box<dyn Decoder>, String> {
        let c = &self.config;
        sluice_formats::decoder_for(
            &c.format,
            &FormatOptions {
                table: c.table.name.clone(),
                schema: Arc::new(Schema::new(c.table.schema.fields().clone())),
                options: c.table.options.clone(),
            },
        )
        .map_err(|e| e.to_string())
    }

    /// The receiving end, for the table's source (a job that restarts reads on from
    /// the same one).
    pub(crate) fn receiver(&self) -> Arc<tokio::sync::Mutex<mpsc::Receiver<Ingest>>> {
        self.rx.clone()
    }
}

/// Whether `given` is `want`, compared in a time that does not depend on where they
/// differ (only on the length).
pub(crate) fn same_token(given: &str, want: &str) -> bool {
    given.len() == want.len()
        && given
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The ingest endpoints, by table name.
pub static ENDPOINTS: Hub<Endpoint> = Hub::new();

/// Registers (or replaces) the endpoint of `config`'s table; returns it.
pub(crate) fn register(config: HttpSourceConfig) -> Result<Arc<Endpoint>, String> {
    let name = config.table.name.clone();
    let (tx, rx) = mpsc::channel(config.queue);
    let endpoint = Arc::new(Endpoint {
        config,
        tx,
        rx: Arc::new(tokio::sync::Mutex::new(rx)),
    });
    // Fail early on a bad format option.
    endpoint.decoder()?;
    ENDPOINTS.insert(&name, endpoint.clone());
    Ok(endpoint)
}

/// The endpoint of table `name`.
pub fn endpoint(name: &str) -> Option<Arc<Endpoint>> {
    ENDPOINTS.get(name)
}

/// Removes the endpoint of table `name` (its pipeline stopped): requests get a 404.
pub fn forget(name: &str) {
    ENDPOINTS.remove(name);
}

/// Puts back an endpoint that planning another pipeline replaced.
pub fn reinstate(endpoint: Arc<Endpoint>) {
    ENDPOINTS.insert(&endpoint.config.table.name.clone(), endpoint);
}

/// The names of the tables with an ingest endpoint.
pub fn endpoints() -> Vec<String> {
    ENDPOINTS.names()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use datafusion::arrow::datatypes::{DataType, Field};

    use super::*;
    use crate::ConnectorTable;

    fn endpoint_for(name: &str, options: &[(&str, &str)]) -> Arc<Endpoint> {
        let mut all: BTreeMap<String, String> = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.insert("connector".into(), "http".into());
        let table = ConnectorTable {
            name: name.into(),
            schema: Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)])),
            options: all,
            primary_key: Vec::new(),
            metadata: Vec::new(),
        };
        let config = HttpSourceConfig::from_table(&table).expect("good options");
        register(config).expect("registers")
    }

    #[tokio::test]
    async fn a_full_queue_answers_429_with_retry_after() {
        let ep = endpoint_for(
            "t429",
            &[("ingest.queue", "1"), ("ingest.timeout", "300ms")],
        );
        // Nobody reads: the first request waits for its rows to be taken (and gives up
        // with 503), the second finds the queue full.
        let first = ep.accept(Some("application/json"), None, b"{\"a\": 1}".to_vec());
        let second = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            ep.accept(Some("application/json"), None, b"{\"a\": 2}".to_vec())
                .await
        };
        let (a, b) = tokio::join!(first, second);
        assert_eq!(a.status, 503, "{a:?}");
        assert_eq!(b.status, 429, "{b:?}");
        assert!(b.headers.contains(&("retry-after", "1".to_string())));
    }

    #[test]
    fn tokens_are_checked() {
        let ep = endpoint_for("tauth", &[("auth.token", "s3cret")]);
        assert_eq!(ep.check_auth(None).map(|a| a.status), Some(401));
        assert_eq!(
            ep.check_auth(Some("Bearer nope")).map(|a| a.status),
            Some(403)
        );
        assert_eq!(
            ep.check_auth(Some("Basic czNjcmV0")).map(|a| a.status),
            Some(403)
        );
        assert_eq!(ep.check_auth(Some("Bearer s3cret")), None);
        let open = endpoint_for("topen", &[]);
        assert_eq!(open.check_auth(None), None);
    }
}
