//! The websocket source: connects to a `ws://`/`wss://` URL, sends the configured
//! subscribe messages, and decodes each text or binary frame as one record of the
//! table's format. A connection that fails or closes is opened again with exponential
//! backoff and jitter (and the subscribe messages sent again). Live feeds keep no
//! history: at-most-once (frames sent while the source is down are not seen).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use futures::{SinkExt, StreamExt};
use rand::Rng;
use sluice_runtime::{
    DeadLetterOutput, JobMetrics, RestoredOffsets, Source, SourceEvent, SourceFactory, TaskInfo,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tracing::{info, warn};

use super::config::WebSocketConfig;
use crate::messages::{Gather, MessageRows};
use crate::{Error, Result};

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Makes the [`WebSocketSource`]s of one table.
pub struct WebSocketSourceFactory {
    config: Arc<WebSocketConfig>,
    changelog: bool,
}

impl WebSocketSourceFactory {
    /// Checks the format (the source has no metadata).
    pub fn new(config: WebSocketConfig) -> Result<Self> {
        let rows = MessageRows::new(&config.table, "websocket", &[])?;
        Ok(WebSocketSourceFactory {
            changelog: rows.changelog(),
            config: Arc::new(config),
        })
    }
}

impl SourceFactory for WebSocketSourceFactory {
    fn name(&self) -> String {
        format!(
            "Source: {} (websocket {})",
            self.config.table.name, self.config.url
        )
    }

    fn schema(&self) -> SchemaRef {
        self.config.table.schema.clone()
    }

    fn bounded(&self) -> bool {
        false
    }

    fn changelog(&self) -> bool {
        self.changelog
    }

    fn create(
        &self,
        task: &TaskInfo,
        metrics: &Arc<JobMetrics>,
    ) -> sluice_runtime::Result<Box<dyn Source>> {
        Ok(Box::new(WebSocketSource {
            reads: task.subtask == 0,
            config: self.config.clone(),
            rows: MessageRows::new(&self.config.table, "websocket", &[])?,
            events: None,
            frames: 0,
            metrics: metrics.clone(),
            down_since: None,
        }))
    }
}

/// What the connection task tells the source.
enum Event {
    Frame(Vec<u8>),
    Up,
    Down(String),
}

/// Reads one table's feed (subtask 0; one connection).
struct WebSocketSource {
    reads: bool,
    config: Arc<WebSocketConfig>,
    rows: MessageRows,
    events: Option<mpsc::Receiver<Event>>,
    /// Frames read: the offsets dead letters name.
    frames: u64,
    metrics: Arc<JobMetrics>,
    down_since: Option<Instant>,
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(config: &WebSocketConfig) -> std::result::Result<Socket, String> {
    let mut request = config
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("bad request: {e}"))?;
    for (k, v) in &config.headers {
        let name =
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
        let value = reqwest::header::HeaderValue::from_str(v).map_err(|e| e.to_string())?;
        request.headers_mut().insert(name, value);
    }
    let ws_config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(config.max_message))
        .max_frame_size(Some(config.max_message));
    let connector = match &config.tls {
        Some(tls) => tokio_tungstenite::Connector::Rustls(tls.clone()),
        None => tokio_tungstenite::Connector::Plain,
    };
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(ws_config),
        true,
        Some(connector),
    );
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
    }
}

/// Keeps a connection open (reconnecting with backoff) and forwards its frames until
/// the source is gone.
async fn run(config: Arc<WebSocketConfig>, tx: mpsc::Sender<Event>) {
    let mut backoff = config.initial_backoff;
    loop {
        match connect(&config).await {
            Ok(mut socket) => {
                backoff = config.initial_backoff;
                let mut failed = None;
                for m in &config.subscribe {
                    if let Err(e) = socket.send(Message::text(m.clone())).await {
                        failed = Some(format!("cannot send the subscribe message: {e}"));
                        break;
                    }
                }
                if failed.is_none() {
                    if tx.send(Event::Up).await.is_err() {
                        return;
                    }
                    failed = Some(loop {
                        match socket.next().await {
                            Some(Ok(Message::Text(t))) => {
                                if tx.send(Event::Frame(t.as_bytes().to_vec())).await.is_err() {
                                    return;
                                }
                            }
                            Some(Ok(Message::Binary(b))) => {
                                if tx.send(Event::Frame(b.to_vec())).await.is_err() {
                                    return;
                                }
                            }
                            Some(Ok(Message::Close(c))) => {
                                break format!("the server closed the connection ({c:?})");
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => break e.to_string(),
                            None => break "the connection ended".to_string(),
                        }
                    });
                }
                if let Some(why) = failed
                    && tx.send(Event::Down(why)).await.is_err()
                {
                    return;
                }
            }
            Err(why) => {
                if tx.send(Event::Down(why)).await.is_err() {
                    return;
                }
            }
        }
        // Full jitter between half the backoff and all of it.
        let wait = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

#[async_trait]
impl Source for WebSocketSource {
    async fn open(
        &mut self,
        _task: &TaskInfo,
        _restored: Option<RestoredOffsets>,
    ) -> sluice_runtime::Result<()> {
        if !self.reads {
            return Ok(());
        }
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run(self.config.clone(), tx));
        self.events = Some(rx);
        Ok(())
    }

    async fn next(&mut self, dead: &dyn DeadLetterOutput) -> sluice_runtime::Result<SourceEvent> {
        if !self.reads {
            return Ok(SourceEvent::End);
        }
        let mut gather = Gather::start();
        while let Some(wait) = gather.wait(self.rows.len()) {
            let Some(events) = self.events.as_mut() else {
                break;
            };
            match tokio::time::timeout(wait, events.recv()).await {
                Err(_) => break,
                Ok(None) => {
                    return Err(Error::External {
                        table: self.config.table.name.clone(),
                        message: format!("the WebSocket connection to {} ended", self.config.url),
                        retryable: true,
                    }
                    .into());
                }
                Ok(Some(Event::Frame(f))) => {
                    self.frames += 1;
                    JobMetrics::add(&self.metrics.source_bytes, f.len() as u64);
                    self.rows
                        .push(&f, &self.config.url, self.frames, Default::default());
                }
                Ok(Some(Event::Up)) => match self.down_since.take() {
                    Some(t) => {
                        info!(table = %self.config.table.name, down_for = ?t.elapsed(), "WebSocket connected again.")
                    }
                    None => {
                        info!(table = %self.config.table.name, url = %self.config.url, "WebSocket connected.")
                    }
                },
                Ok(Some(Event::Down(why))) => {
                    self.down_since.get_or_insert_with(Instant::now);
                    warn!(table = %self.config.table.name, url = %self.config.url, error = %why, "WebSocket connection failed; reconnecting with backoff.");
                }
            }
        }
        let batch = if self.rows.len() > 0 {
            self.rows.flush(dead)?
        } else {
            None
        };
        Ok(match batch {
            Some(b) => SourceEvent::Batch(b),
            None => SourceEvent::Idle,
        })
    }
}
