//! The process-wide list of event streams: each `sse` table registers one when it is
//! planned; its sink publishes rows into it and the HTTP server subscribes clients.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::config::SseConfig;
use crate::hub::Hub;

/// One event: its kind (`insert`, `update`, `delete`) and the row as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowEvent {
    /// `insert` (append-only rows and `+I`), `update` (`+U`) or `delete` (`-D`).
    pub kind: &'static str,
    /// The row, one JSON object.
    pub data: String,
}

/// One table's event stream.
pub struct SseStream {
    config: SseConfig,
    tx: broadcast::Sender<RowEvent>,
    history: Mutex<VecDeque<RowEvent>>,
}

impl SseStream {
    /// Whether the table has its own `auth.token`.
    pub fn has_token(&self) -> bool {
        self.config.token.is_some()
    }

    /// Checks a client's token (header or query parameter): `None` when it may
    /// listen, else the status (401 without one, 403 for a wrong one).
    pub fn check_auth(&self, bearer: Option<&str>, query_token: Option<&str>) -> Option<u16> {
        let want = self.config.token.as_deref()?;
        let given = bearer
            .and_then(|b| b.strip_prefix("Bearer "))
            .map(str::trim)
            .or(query_token);
        let Some(given) = given else {
            return Some(401);
        };
        (!crate::http::hub::same_token(given, want)).then_some(403)
    }

    /// The recent events (`sse.history`) and a receiver of the next ones.
    pub fn subscribe(&self) -> (Vec<RowEvent>, broadcast::Receiver<RowEvent>) {
        // Under the history lock, so that no event is both in the history and received.
        let history = self.history.lock();
        let rx = self.tx.subscribe();
        let past = history
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default();
        (past, rx)
    }

    /// Sends `event` to every client listening now (none may be).
    pub(crate) fn publish(&self, event: RowEvent) {
        let mut history = self.history.lock().ok();
        if self.config.history > 0
            && let Some(h) = history.as_mut()
        {
            if h.len() == self.config.history {
                h.pop_front();
            }
            h.push_back(event.clone());
        }
        let _ = self.tx.send(event);
    }
}

/// The event streams, by table name.
pub static STREAMS: Hub<SseStream> = Hub::new();

/// Registers (or replaces) the stream of `config`'s table.
pub(crate) fn register(config: SseConfig) -> Arc<SseStream> {
    let (tx, _) = broadcast::channel(config.buffer);
    let name = config.table.name.clone();
    let stream = Arc::new(SseStream {
        config,
        tx,
        history: Mutex::new(VecDeque::new()),
    });
    STREAMS.insert(&name, stream.clone());
    stream
}

/// The stream of table `name`.
pub fn stream(name: &str) -> Option<Arc<SseStream>> {
    STREAMS.get(name)
}

/// Removes the stream of table `name` (its pipeline stopped).
pub fn forget(name: &str) {
    STREAMS.remove(name);
}

/// Puts back a stream that planning another pipeline replaced.
pub fn reinstate(stream: Arc<SseStream>) {
    STREAMS.insert(&stream.config.table.name.clone(), stream);
}

/// The names of the tables with an event stream.
pub fn streams() -> Vec<String> {
    STREAMS.names()
}
