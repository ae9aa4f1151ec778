//! Options of the `redis` connector.

use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;

use crate::template::{KeyPart, parse_template};
use crate::{ConnectorTable, Error, Options, Result};

/// What the sink does with each row (`sink.command`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `SET key value` (the value in `format`); deletes are `DEL key`.
    Set,
    /// `HSET key column value …` (each column as a field, in text); deletes are `DEL`.
    Hset,
    /// `XADD key [MAXLEN ~ n] * column value …`: one stream entry per row.
    Xadd,
    /// `PUBLISH key value`: one message per row on the channel `key`.
    Publish,
}

impl Command {
    fn name(self) -> &'static str {
        match self {
            Command::Set => "set",
            Command::Hset => "hset",
            Command::Xadd => "xadd",
            Command::Publish => "publish",
        }
    }
}

/// Where the server is and how to log in.
#[derive(Clone)]
pub struct RedisTarget {
    /// `redis://host:port/db` (credentials are given separately).
    pub url: String,
    /// `username`.
    pub username: Option<String>,
    /// `password`; never printed.
    pub password: Option<String>,
    /// `tls.root-cert`: the PEM of the CA that signed the server's certificate (for
    /// `rediss://`; default: the system's roots).
    pub root_cert: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "tls",
                &self.url.to_ascii_lowercase().starts_with("rediss://"),
            )
            .finish()
    }
}

impl RedisTarget {
    /// A client for the server.
    pub fn client(&self) -> std::result::Result<::redis::Client, ::redis::RedisError> {
        let mut info: ::redis::ConnectionInfo =
            ::redis::IntoConnectionInfo::into_connection_info(self.url.as_str())?;
        let mut redis_info = info.redis.clone();
        if let Some(u) = &self.username {
            redis_info.username = Some(u.clone());
        }
        if let Some(p) = &self.password {
            redis_info.password = Some(p.clone());
        }
        info.redis = redis_info;
        match &self.root_cert {
            Some(pem) => ::redis::Client::build_with_tls(
                info,
                ::redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => ::redis::Client::open(info),
        }
    }

    /// A connection manager (it reconnects by itself), within 10 s; or what failed, why,
    /// and whether trying again may help.
    pub(crate) async fn connect(
        &self,
    ) -> std::result::Result<::redis::aio::ConnectionManager, (&'static str, String, bool)> {
        let client = self
            .client()
            .map_err(|e| ("bad connection settings", e.to_string(), false))?;
        // One plain connection first: the manager retries a failing connect until the
        // timeout, which would hide why (a refused certificate, a wrong password).
        tokio::time::timeout(
            Duration::from_secs(10),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| ("cannot connect", "timed out".to_string(), true))?
        .map_err(|e| ("cannot connect", e.to_string(), true))?;
        tokio::time::timeout(Duration::from_secs(10), client.get_connection_manager())
            .await
            .map_err(|_| ("cannot connect", "timed out".to_string(), true))?
            .map_err(|e| ("cannot connect", e.to_string(), true))
    }
}

/// Everything the `redis` sink options say.
#[derive(Debug, Clone)]
pub struct RedisSinkConfig {
    /// The server.
    pub target: RedisTarget,
    /// `sink.command`.
    pub command: Command,
    /// `key`: the key (stream, channel) per row.
    pub key: Vec<KeyPart>,
    /// `sink.ttl`: expiry of SET/HSET keys.
    pub ttl: Option<Duration>,
    /// `format`: how SET and PUBLISH values are written (default `json`).
    pub format: String,
    /// `sink.xadd.maxlen`: trims the stream to about this many entries.
    pub max_len: Option<u64>,
    /// `sink.max-retries`: attempts after a failed write before the job fails.
    pub max_retries: u32,
    /// `sink.parallelism`.
    pub parallelism: Option<usize>,
    /// The table's columns.
    pub schema: SchemaRef,
    /// The table's name.
    pub table: String,
}

impl RedisSinkConfig {
    /// Reads the sink options of `table`; unknown options are errors.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "redis", &table.options);
        let target = target(&mut o)?;
        let command = match o
            .take("sink.command")
            .as_deref()
            .map(str::to_ascii_lowercase)
        {
            None => Command::Set,
            Some(c) if c == "set" => Command::Set,
            Some(c) if c == "hset" => Command::Hset,
            Some(c) if c == "xadd" => Command::Xadd,
            Some(c) if c == "publish" => Command::Publish,
            Some(c) => {
                return Err(o.bad(
                    "sink.command",
                    &format!("'{c}' is not one of set, hset, xadd, publish"),
                ));
            }
        };
        let key_text = match o.take("key") {
            Some(k) => k,
            None if matches!(command, Command::Set | Command::Hset)
                && !table.primary_key.is_empty() =>
            {
                default_key(table)
            }
            None => {
                return Err(Error::MissingOption {
                    table: table.name.clone(),
                    connector: "redis".into(),
                    option: "key".into(),
                    hint: format!(
                        "the {} key of each row, e.g. 'key' = 'user:{{id}}' ({{column}} is \
                         replaced by the row's value){}",
                        command.name(),
                        if matches!(command, Command::Set | Command::Hset) {
                            "; or declare a PRIMARY KEY"
                        } else {
                            ""
                        }
                    ),
                });
            }
        };
        let key = parse_template(&key_text, &table.schema).map_err(|m| o.bad("key", &m))?;
        let ttl = o.take_duration("sink.ttl")?.filter(|d| !d.is_zero());
        if ttl.is_some() && !matches!(command, Command::Set | Command::Hset) {
            return Err(o.bad("sink.ttl", "applies to 'set' and 'hset' only"));
        }
        let format = o.take("format").unwrap_or_else(|| "json".into());
        let max_len = o.take_parsed::<u64>("sink.xadd.maxlen", "a number of entries")?;
        if max_len.is_some() && command != Command::Xadd {
            return Err(o.bad("sink.xadd.maxlen", "applies to 'xadd' only"));
        }
        let max_retries = o
            .take_parsed::<u32>("sink.max-retries", "a number")?
            .unwrap_or(3);
        let parallelism = o.take_parsed::<usize>("sink.parallelism", "a positive number")?;
        if parallelism == Some(0) {
            return Err(o.bad("sink.parallelism", "must be at least 1"));
        }
        o.take_prefixed(&format!("{format}."));
        // Source and lookup options may sit on the same table (it can be read, looked
        // up and written).
        for k in ["scan.group", "scan.startup.mode", "scan.bounded.mode"] {
            o.take(k);
        }
        o.take_prefixed("lookup.");
        o.finish()?;
        Ok(RedisSinkConfig {
            target,
            command,
            key,
            ttl,
            format,
            max_len,
            max_retries,
            parallelism,
            schema: table.schema.clone(),
            table: table.name.clone(),
        })
    }

    /// The format options of the value (SET, PUBLISH).
    pub fn format_options(&self, table: &ConnectorTable) -> sluice_formats::FormatOptions {
        sluice_formats::FormatOptions {
            table: table.name.clone(),
            schema: table.schema.clone(),
            options: table.options.clone(),
        }
    }
}

/// The key template of a table with a primary key and no `key`: `<table>:{pk…}`.
pub(crate) fn default_key(table: &ConnectorTable) -> String {
    let cols: Vec<String> = table
        .primary_key
        .iter()
        .map(|k| format!("{{{k}}}"))
        .collect();
    format!("{}:{}", table.name, cols.join(":"))
}

/// `url`, `username` and `password`.
pub(crate) fn target(o: &mut Options) -> Result<RedisTarget> {
    let url = o.take_required("url", "write e.g. 'url' = 'redis://localhost:6379/0'")?;
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("redis://") || lower.starts_with("rediss://")) {
        return Err(o.bad(
            "url",
            "is not a Redis URL; write e.g. 'redis://localhost:6379/0'",
        ));
    }
    if url.contains('@') {
        return Err(o.bad(
            "url",
            "put credentials in 'username' and 'password', not in the URL",
        ));
    }
    if let Err(e) = ::redis::IntoConnectionInfo::into_connection_info(url.as_str()) {
        return Err(o.bad("url", &format!("is not a Redis URL: {e}")));
    }
    let root_cert = match o.take("tls.root-cert") {
        None => None,
        Some(_) if !lower.starts_with("rediss://") => {
            return Err(o.bad(
                "tls.root-cert",
                "applies to TLS connections: write the url as rediss://…",
            ));
        }
        Some(path) => {
            let pem = std::fs::read(&path)
                .map_err(|e| o.bad("tls.root-cert", &format!("cannot read '{path}': {e}")))?;
            if !pem
                .windows(b"BEGIN CERTIFICATE".len())
                .any(|w| w == b"BEGIN CERTIFICATE")
            {
                return Err(o.bad(
                    "tls.root-cert",
                    &format!("'{path}' holds no PEM certificate"),
                ));
            }
            Some(pem)
        }
    };
    Ok(RedisTarget {
        url,
        username: o.take("username"),
        password: o.take("password"),
        root_cert,
    })
}
