//! Options of the `websocket` source.

use std::sync::Arc;
use std::time::Duration;

use crate::{ConnectorTable, Options, Result};

/// Options of the websocket source.
#[derive(Clone)]
pub struct WebSocketConfig {
    /// `url`: `ws://` or `wss://`.
    pub url: String,
    /// `headers.<Name>`: headers of the opening handshake (a token, say).
    pub headers: Vec<(String, String)>,
    /// `subscribe.message`: text frames sent after each connect, one per line.
    pub subscribe: Vec<String>,
    /// `reconnect.initial-backoff`: the first wait after a failed or closed
    /// connection; it doubles up to `reconnect.max-backoff`, with jitter.
    pub initial_backoff: Duration,
    /// `reconnect.max-backoff`.
    pub max_backoff: Duration,
    /// `max-message-size`: the largest frame accepted.
    pub max_message: usize,
    /// TLS for `wss://`, verifying the server against `tls.root-cert` or the system's
    /// roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) table: ConnectorTable,
}

impl std::fmt::Debug for WebSocketConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values may be credentials.
        f.debug_struct("WebSocketConfig")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl WebSocketConfig {
    /// Reads the options of `table`; unknown options are errors.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "websocket", &table.options);
        let url = o.take_required("url", "write e.g. 'url' = 'wss://stream.example.com/ws'")?;
        let lower = url.to_ascii_lowercase();
        let secure = lower.starts_with("wss://");
        if !(secure || lower.starts_with("ws://")) {
            return Err(o.bad("url", "is not a ws:// or wss:// URL"));
        }
        if let Err(e) = reqwest::Url::parse(&url) {
            return Err(o.bad("url", &format!("is not a URL: {e}")));
        }
        let headers = o.take_headers()?;
        let subscribe = o
            .take("subscribe.message")
            .map(|m| {
                m.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let initial_backoff = o
            .take_duration("reconnect.initial-backoff")?
            .unwrap_or(Duration::from_millis(500));
        let max_backoff = o
            .take_duration("reconnect.max-backoff")?
            .unwrap_or(Duration::from_secs(30))
            .max(initial_backoff);
        let max_message = o
            .take_parsed::<usize>("max-message-size", "a number of bytes")?
            .unwrap_or(16 << 20);
        let root_cert = o.take("tls.root-cert");
        if root_cert.is_some() && !secure {
            return Err(o.bad("tls.root-cert", "applies to wss:// URLs"));
        }
        let tls = if secure {
            Some(Arc::new(
                crate::tls::verifying_config(root_cert.as_deref())
                    .map_err(|m| o.bad("tls.root-cert", &m))?,
            ))
        } else {
            None
        };
        o.take_message_format()?;
        o.finish()?;
        Ok(WebSocketConfig {
            url,
            headers,
            subscribe,
            initial_backoff,
            max_backoff,
            max_message,
            tls,
            table: table.clone(),
        })
    }
}
