//! Options of the `sse` sink.

use crate::{ConnectorTable, Options, Result};

/// Options of the sse sink.
#[derive(Debug, Clone)]
pub struct SseConfig {
    /// `auth.token`: the token clients must give (`Authorization: Bearer …`, or
    /// `?token=…` since a browser's `EventSource` cannot set headers).
    pub token: Option<String>,
    /// `sse.buffer`: events a slow client may fall behind by before it skips ahead (it
    /// is told how many it missed).
    pub buffer: usize,
    /// `sse.history`: the last events a client gets when it connects (0: only new ones).
    pub history: usize,
    pub(crate) table: ConnectorTable,
}

impl SseConfig {
    /// Reads the options of `table`; unknown options are errors.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "sse", &table.options);
        let token = o.take("auth.token").filter(|t| !t.is_empty());
        let buffer = o
            .take_parsed::<usize>("sse.buffer", "a positive number")?
            .unwrap_or(1024)
            .max(1);
        let history = o
            .take_parsed::<usize>("sse.history", "a number")?
            .unwrap_or(0);
        match o.take("format").as_deref() {
            None | Some("json") => {}
            Some(f) => {
                return Err(o.bad(
                    "format",
                    &format!("'{f}': Server-Sent Events carry JSON rows; drop the option"),
                ));
            }
        }
        o.take_prefixed("json.");
        o.finish()?;
        Ok(SseConfig {
            token,
            buffer,
            history,
            table: table.clone(),
        })
    }
}
