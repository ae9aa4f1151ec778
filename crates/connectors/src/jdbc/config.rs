//! Options of the `jdbc` connector (Flink's names), for PostgreSQL.

use std::time::Duration;

use super::tls::SslMode;
use crate::{ConnectorTable, Options, Result};

/// Where the database is and how to log in, from `url`, `username` and `password`.
#[derive(Clone)]
pub struct PgTarget {
    /// Host name or address (default `localhost`).
    pub host: String,
    /// Port (default 5432).
    pub port: u16,
    /// Database name.
    pub dbname: String,
    /// `username`, or `user` in the URL.
    pub user: Option<String>,
    /// `password`, or `password` in the URL. Never printed.
    pub password: Option<String>,
    /// Connect timeout: `connection.max-retry-timeout`, or `connectTimeout` in the URL
    /// (default 10 s).
    pub connect_timeout: Duration,
    /// `ApplicationName` from the URL (default `sluice`).
    pub application_name: String,
    /// `sslmode` from the URL (default `prefer`, as libpq and the JDBC driver).
    pub ssl_mode: SslMode,
    /// `sslrootcert` from the URL: the PEM file of the CA the server's certificate is
    /// checked against (default: the system's roots).
    pub ssl_root_cert: Option<String>,
    /// The TLS connector for `ssl_mode` (built once, when the URL is read); `None` for
    /// `disable`.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ssl_mode", &self.ssl_mode)
            .finish()
    }
}

impl PgTarget {
    /// Connects (with TLS as `sslmode` says) and runs the connection in the
    /// background; `table` names it in the log when it closes.
    pub async fn connect(
        &self,
        table: &str,
    ) -> std::result::Result<tokio_postgres::Client, tokio_postgres::Error> {
        fn run<F>(table: &str, connection: F)
        where
            F: std::future::Future<Output = std::result::Result<(), tokio_postgres::Error>>
                + Send
                + 'static,
        {
            let table = table.to_string();
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(table = %table, error = %super::sink::describe(&e), "PostgreSQL connection closed.");
                }
            });
        }
        match &self.tls {
            Some(tls) => {
                let (client, connection) = self.config().connect(tls.clone()).await?;
                run(table, connection);
                Ok(client)
            }
            None => {
                let (client, connection) = self.config().connect(tokio_postgres::NoTls).await?;
                run(table, connection);
                Ok(client)
            }
        }
    }

    /// The `host:port/db` part, for messages (no credentials).
    pub fn describe(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.dbname)
    }

    /// A `tokio_postgres` configuration.
    pub fn config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .dbname(&self.dbname)
            .connect_timeout(self.connect_timeout)
            .application_name(&self.application_name)
            .ssl_mode(self.ssl_mode.negotiation());
        if let Some(u) = &self.user {
            c.user(u);
        }
        if let Some(p) = &self.password {
            c.password(p);
        }
        c
    }
}

/// Parses `jdbc:postgresql://host[:port]/database[?user=…&password=…]` (the `jdbc:`
/// prefix optional; `postgres://` accepted too). Errors say what to write.
pub fn parse_url(url: &str) -> std::result::Result<PgTarget, String> {
    const EXAMPLE: &str = "write e.g. 'jdbc:postgresql://localhost:5432/mydb'";
    let rest = url.trim();
    let rest = rest.strip_prefix("jdbc:").unwrap_or(rest);
    let rest = ["postgresql://", "postgres://"]
        .iter()
        .find_map(|p| rest.strip_prefix(p))
        .ok_or_else(|| {
            if rest.starts_with("mysql:") || rest.starts_with("derby:") {
                format!("only PostgreSQL is supported (jdbc:postgresql://…); {EXAMPLE}")
            } else {
                format!("'{url}' is not a PostgreSQL JDBC URL; {EXAMPLE}")
            }
        })?;
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (hostport, dbname) = match authority.split_once('/') {
        Some((h, d)) => (h, d),
        None => (authority, ""),
    };
    if hostport.contains('@') {
        return Err(format!(
            "put credentials in 'username' and 'password', not in the URL's host part; {EXAMPLE}"
        ));
    }
    if dbname.is_empty() || dbname.contains('/') {
        return Err(format!("the URL names no database; {EXAMPLE}"));
    }
    let (host, port) = split_host_port(hostport).ok_or_else(|| {
        format!("'{hostport}' is not host or host:port with a port from 1 to 65535; {EXAMPLE}")
    })?;
    let mut target = PgTarget {
        host,
        port,
        dbname: decode(dbname),
        user: None,
        password: None,
        connect_timeout: Duration::from_secs(10),
        application_name: "sluice".to_string(),
        ssl_mode: SslMode::Prefer,
        ssl_root_cert: None,
        tls: None,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v);
        match k {
            "user" => target.user = Some(v),
            "password" => target.password = Some(v),
            "connectTimeout" => {
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("connectTimeout '{v}' is not a number of seconds"))?;
                target.connect_timeout = Duration::from_secs(secs.max(1));
            }
            "ApplicationName" => target.application_name = v,
            "ssl" | "sslmode" => {
                target.ssl_mode = SslMode::parse(&v).ok_or_else(|| {
                    format!(
                        "'{k}={v}' is not one of disable, allow, prefer, require, \
                         verify-ca, verify-full"
                    )
                })?;
            }
            "sslrootcert" => target.ssl_root_cert = Some(v),
            // Settings of the Java driver with no meaning here are accepted and ignored.
            _ => {}
        }
    }
    if target.ssl_mode == SslMode::Disable && target.ssl_root_cert.is_some() {
        return Err(format!(
            "sslrootcert is given but sslmode=disable: drop one; {EXAMPLE}"
        ));
    }
    // Built now, so that a wrong root certificate path fails at plan time.
    target.tls = super::tls::connector(target.ssl_mode, target.ssl_root_cert.as_deref())?;
    Ok(target)
}

fn split_host_port(s: &str) -> Option<(String, u16)> {
    if s.is_empty() {
        return Some(("localhost".to_string(), 5432));
    }
    // [v6]:port
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok().filter(|p| *p > 0)?,
            None if after.is_empty() => 5432,
            None => return None,
        };
        return Some((h.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.contains(':') => {
            Some((h.to_string(), p.parse().ok().filter(|p| *p > 0)?))
        }
        Some(_) => None,
        None => Some((s.to_string(), 5432)),
    }
}

/// Undoes `%XX` escapes (bad escapes are kept as written).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How the sink delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    /// Rows are written as they are flushed; a restart may write some again (harmless
    /// for an upsert table, duplicates for an append table).
    AtLeastOnce,
    /// Each checkpoint's rows are staged, then applied in one transaction when the
    /// checkpoint completes.
    ExactlyOnce,
}

/// How a `jdbc` sink writes.
#[derive(Debug, Clone)]
pub struct JdbcSinkConfig {
    /// The database.
    pub target: PgTarget,
    /// `table-name`, possibly `schema.table`.
    pub table_name: String,
    /// `sink.buffer-flush.max-rows` (default 1000 here, Flink's 100 is slow for
    /// PostgreSQL): rows buffered before a write.
    pub max_rows: usize,
    /// `sink.buffer-flush.interval` (default 1 s): buffered rows are written at least
    /// this often.
    pub flush_interval: Duration,
    /// `sink.max-retries` (default 3): attempts after a failed write, with backoff.
    pub max_retries: u32,
    /// `sink.delivery-guarantee` (default exactly-once when the job checkpoints).
    pub guarantee: Guarantee,
    /// `sink.staging-table` (default `<table-name>_sluice_staging`, in the table's
    /// schema): where an exactly-once sink keeps a checkpoint's rows until it completes.
    pub staging_table: Option<String>,
    /// `sink.parallelism`.
    pub parallelism: Option<usize>,
}

/// Reads the connection options shared by source, sink and lookup.
pub(crate) fn take_target(o: &mut Options) -> Result<PgTarget> {
    let url = o.take_required(
        "url",
        "Add 'url' = 'jdbc:postgresql://localhost:5432/mydb'.",
    )?;
    let mut target = parse_url(&url).map_err(|m| o.bad("url", &m))?;
    let _ = o.take("driver");
    if let Some(u) = o.take("username") {
        target.user = Some(u);
    }
    if let Some(p) = o.take("password") {
        target.password = Some(p);
    }
    if let Some(d) = o.take_duration("connection.max-retry-timeout")? {
        target.connect_timeout = d.max(Duration::from_secs(1));
    }
    Ok(target)
}

impl JdbcSinkConfig {
    /// Reads and validates a sink table's options.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "jdbc", &table.options);
        let target = take_target(&mut o)?;
        let table_name = o.take_required("table-name", "Add 'table-name' = 'my_table'.")?;
        if table_name.trim().is_empty() || table_name.split('.').count() > 2 {
            return Err(o.bad("table-name", "write 'table' or 'schema.table'"));
        }
        let max_rows = o
            .take_parsed::<usize>("sink.buffer-flush.max-rows", "a row count")?
            .unwrap_or(1000)
            .max(1);
        let flush_interval = o
            .take_duration("sink.buffer-flush.interval")?
            .unwrap_or(Duration::from_secs(1));
        let max_retries = o
            .take_parsed::<u32>("sink.max-retries", "a count")?
            .unwrap_or(3);
        let guarantee = match o.take("sink.delivery-guarantee").as_deref() {
            None | Some("exactly-once") => Guarantee::ExactlyOnce,
            Some("at-least-once") => Guarantee::AtLeastOnce,
            Some(v) => {
                return Err(o.bad(
                    "sink.delivery-guarantee",
                    &format!("'{v}' is not 'exactly-once' or 'at-least-once'"),
                ));
            }
        };
        let staging_table = o.take("sink.staging-table");
        if staging_table
            .as_ref()
            .is_some_and(|s| s.trim().is_empty() || s.split('.').count() > 2)
        {
            return Err(o.bad("sink.staging-table", "write 'table' or 'schema.table'"));
        }
        let parallelism = o.take_parsed::<usize>("sink.parallelism", "a positive integer")?;
        // Source and lookup options are accepted on a table that is also read elsewhere.
        for k in [
            "scan.fetch-size",
            "scan.auto-commit",
            "scan.partition.column",
            "scan.partition.num",
            "scan.partition.lower-bound",
            "scan.partition.upper-bound",
            "lookup.cache",
            "lookup.partial-cache.max-rows",
            "lookup.partial-cache.expire-after-write",
            "lookup.partial-cache.expire-after-access",
            "lookup.partial-cache.cache-missing-key",
            "lookup.max-retries",
        ] {
            let _ = o.take(k);
        }
        o.finish()?;
        Ok(JdbcSinkConfig {
            target,
            table_name,
            max_rows,
            flush_interval,
            max_retries,
            guarantee,
            staging_table,
            parallelism,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_every_shape_parse() {
        let t = parse_url("jdbc:postgresql://db.example:6543/shop?user=a%40b&password=p").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.dbname.as_str()),
            ("db.example", 6543, "shop")
        );
        assert_eq!(t.user.as_deref(), Some("a@b"));
        assert_eq!(t.password.as_deref(), Some("p"));
        let t = parse_url("postgres://127.0.0.1/test").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 5432));
        let t = parse_url("jdbc:postgresql://[::1]:5433/x").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 5433));
        let t = parse_url("jdbc:postgresql:///x").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("localhost", 5432));
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        for bad in [
            "",
            "jdbc:mysql://h/db",
            "jdbc:postgresql://h:0/db",
            "jdbc:postgresql://h:99999/db",
            "jdbc:postgresql://h:port/db",
            "jdbc:postgresql://h",
            "jdbc:postgresql://u:p@h/db",
            "jdbc:postgresql://h/db?sslmode=sometimes",
            "jdbc:postgresql://h/db?sslmode=verify-full&sslrootcert=/nonexistent.pem",
            "jdbc:postgresql://h/db?connectTimeout=x",
            "jdbc:postgresql://[::1/db",
            "%",
            "jdbc:postgresql://h/db?password=%",
        ] {
            match parse_url(bad) {
                Err(m) => assert!(m.contains("e.g.") || m.contains("'"), "{bad}: {m}"),
                Ok(t) => assert_eq!(bad, "jdbc:postgresql://h/db?password=%", "{t:?}"),
            }
        }
    }

    #[test]
    fn the_password_is_never_printed() {
        let t = parse_url("jdbc:postgresql://h/db?password=hunter2").unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
        assert!(!t.describe().contains("hunter2"));
    }
}
