//! Options of the `nats` connector, and connecting with them.

use std::time::Duration;

use crate::template::{KeyPart, parse_template};
use crate::{ConnectorTable, Error, Options, Result};

/// Where the server is and how to log in.
#[derive(Clone)]
pub struct NatsTarget {
    /// `url`: one or more `nats://` (or `tls://`) URLs, comma separated.
    pub url: String,
    /// `username` and `password`.
    pub credentials: Option<(String, String)>,
    /// `token`.
    pub token: Option<String>,
    /// `tls.root-cert`: a PEM file of the CA that signed the server's certificate.
    pub root_cert: Option<String>,
    /// `tls` = `true`, or a `tls://` URL: TLS is required.
    pub require_tls: bool,
    /// `connect.timeout`.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for NatsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        f.debug_struct("NatsTarget")
            .field("url", &self.url)
            .field("tls", &self.require_tls)
            .finish_non_exhaustive()
    }
}

impl NatsTarget {
    /// Reads `url`, the credentials and the TLS options.
    pub(crate) fn from_options(o: &mut Options) -> Result<Self> {
        let url = o.take_required("url", "write e.g. 'url' = 'nats://localhost:4222'")?;
        let mut any_tls = false;
        for u in url.split(',') {
            let u = u.trim().to_ascii_lowercase();
            let known = ["nats://", "tls://", "ws://", "wss://"];
            if !known.iter().any(|p| u.starts_with(p)) {
                return Err(o.bad(
                    "url",
                    &format!("'{u}' is not a NATS URL; write e.g. 'nats://localhost:4222'"),
                ));
            }
            if u.contains('@') {
                return Err(o.bad(
                    "url",
                    "put credentials in 'username'/'password' or 'token', not in the URL",
                ));
            }
            any_tls |= u.starts_with("tls://") || u.starts_with("wss://");
        }
        let credentials = match (o.take("username"), o.take("password")) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            _ => return Err(o.bad("username", "give both 'username' and 'password'")),
        };
        let token = o.take("token");
        if token.is_some() && credentials.is_some() {
            return Err(o.bad("token", "give either 'token' or 'username'/'password'"));
        }
        let root_cert = o.take("tls.root-cert");
        if let Some(path) = &root_cert
            && let Err(m) = crate::tls::roots(Some(path))
        {
            return Err(o.bad("tls.root-cert", &m));
        }
        let require_tls = o.take_bool("tls", any_tls)? || root_cert.is_some();
        let connect_timeout = o
            .take_duration("connect.timeout")?
            .unwrap_or(Duration::from_secs(5));
        Ok(NatsTarget {
            url,
            credentials,
            token,
            root_cert,
            require_tls,
            connect_timeout,
        })
    }

    /// Connects (the client reconnects by itself after that).
    pub(crate) async fn connect(&self, table: &str) -> Result<async_nats::Client> {
        let mut opts = async_nats::ConnectOptions::new()
            .name(format!("sluice {table}"))
            .connection_timeout(self.connect_timeout)
            .require_tls(self.require_tls);
        if let Some((u, p)) = &self.credentials {
            opts = opts.user_and_password(u.clone(), p.clone());
        }
        if let Some(t) = &self.token {
            opts = opts.token(t.clone());
        }
        if let Some(path) = &self.root_cert {
            opts = opts.add_root_certificates(path.into());
        }
        let servers: Vec<String> = self.url.split(',').map(|u| u.trim().to_string()).collect();
        let connect = opts.connect(servers.as_slice());
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(Error::External {
                table: table.to_string(),
                message: format!("cannot connect to NATS at {}: {e}", self.url),
                retryable: true,
            }),
            Err(_) => Err(Error::External {
                table: table.to_string(),
                message: format!(
                    "cannot connect to NATS at {} within {:?} (is the server running?)",
                    self.url, self.connect_timeout
                ),
                retryable: true,
            }),
        }
    }
}

/// Where a new JetStream consumer starts (`scan.startup.mode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupMode {
    /// `group-offsets` (default): after what the durable consumer acknowledged, else
    /// from the first message.
    GroupOffsets,
    /// `earliest-offset`: the stream's first message.
    Earliest,
    /// `latest-offset`: messages published from now on.
    Latest,
    /// `timestamp`: the first message stored at or after this time (ms since the epoch).
    Timestamp(i64),
    /// `specific-offset`: this stream sequence.
    Sequence(u64),
}

/// Options of the NATS source.
#[derive(Debug, Clone)]
pub struct NatsSourceConfig {
    /// The server.
    pub target: NatsTarget,
    /// `subject`: the subjects to read, comma separated (wildcards allowed). With a
    /// stream, each is a split read through a consumer of its own; empty reads the
    /// whole stream.
    pub subjects: Vec<String>,
    /// `stream`: the JetStream stream; `None` reads core NATS subjects.
    pub stream: Option<String>,
    /// `consumer`: the durable consumer's name (default `sluice-<table>`; with several
    /// subjects, `-<i>` is appended).
    pub consumer: String,
    /// `queue-group`: core NATS subscribers share messages in this group.
    pub queue_group: String,
    /// `scan.startup.mode`.
    pub startup: StartupMode,
    /// `scan.bounded.mode` = `latest-offset`: stop at the message that was last when
    /// the job started.
    pub bounded: bool,
    /// `scan.ack-wait`: how long JetStream waits for an acknowledgement before it
    /// delivers a message again.
    pub ack_wait: Duration,
    /// `scan.max-ack-pending`: messages delivered and not yet acknowledged at most.
    pub max_ack_pending: i64,
    pub(crate) table: ConnectorTable,
}

/// The `nats` metadata keys (all read-only).
pub(crate) const METADATA: &[(&str, crate::messages::MetaKey)] = &[
    ("subject", crate::messages::MetaKey::Topic),
    ("headers", crate::messages::MetaKey::Headers),
    ("sequence", crate::messages::MetaKey::Sequence),
    ("timestamp", crate::messages::MetaKey::Timestamp),
];

/// Takes the options the source does not read but that may sit on the same table (a
/// table can be written and read).
fn skip_sink_options(o: &mut Options) {
    for k in [
        "sink.delivery-guarantee",
        "sink.parallelism",
        "sink.message-id",
    ] {
        o.take(k);
    }
}

fn skip_source_options(o: &mut Options) {
    for k in [
        "consumer",
        "queue-group",
        "scan.startup.mode",
        "scan.startup.timestamp-millis",
        "scan.startup.specific-offset",
        "scan.bounded.mode",
        "scan.ack-wait",
        "scan.max-ack-pending",
    ] {
        o.take(k);
    }
}

impl NatsSourceConfig {
    /// Reads the source options of `table`; unknown options are errors.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "nats", &table.options);
        let target = NatsTarget::from_options(&mut o)?;
        let stream = o.take("stream");
        let subjects: Vec<String> = o
            .take("subject")
            .map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if subjects.is_empty() && stream.is_none() {
            return Err(Error::MissingOption {
                table: table.name.clone(),
                connector: "nats".into(),
                option: "subject".into(),
                hint: "write e.g. 'subject' = 'sensors.>' (and 'stream' = 'SENSORS' to read \
                       a JetStream stream with replay)"
                    .into(),
            });
        }
        for s in &subjects {
            if s.contains('{') {
                return Err(o.bad(
                    "subject",
                    "a source reads fixed subjects (wildcards * and > allowed), not {column} \
                     templates",
                ));
            }
            if s.split('.').any(str::is_empty) || s.contains(char::is_whitespace) {
                return Err(o.bad("subject", &format!("'{s}' is not a valid NATS subject")));
            }
        }
        let consumer = o
            .take("consumer")
            .unwrap_or_else(|| format!("sluice-{}", table.name));
        if consumer.contains(['.', '*', '>', ' ']) {
            return Err(o.bad(
                "consumer",
                "a consumer name cannot hold '.', '*', '>' or spaces",
            ));
        }
        let queue_group = o
            .take("queue-group")
            .unwrap_or_else(|| format!("sluice-{}", table.name));
        let ts = o.take_parsed::<i64>("scan.startup.timestamp-millis", "a number of ms")?;
        let seq = o.take_parsed::<u64>("scan.startup.specific-offset", "a stream sequence")?;
        let startup = match o.take("scan.startup.mode").as_deref() {
            None | Some("group-offsets") => StartupMode::GroupOffsets,
            Some("earliest-offset") => StartupMode::Earliest,
            Some("latest-offset") => StartupMode::Latest,
            Some("timestamp") => StartupMode::Timestamp(ts.ok_or_else(|| {
                o.bad(
                    "scan.startup.timestamp-millis",
                    "scan.startup.mode 'timestamp' needs it, e.g. '1700000000000'",
                )
            })?),
            Some("specific-offset") => StartupMode::Sequence(seq.ok_or_else(|| {
                o.bad(
                    "scan.startup.specific-offset",
                    "scan.startup.mode 'specific-offset' needs a stream sequence, e.g. '1000'",
                )
            })?),
            Some(v) => {
                return Err(o.bad(
                    "scan.startup.mode",
                    &format!(
                        "'{v}' is not one of group-offsets, earliest-offset, latest-offset, \
                         timestamp, specific-offset"
                    ),
                ));
            }
        };
        let bounded = match o.take("scan.bounded.mode").as_deref() {
            None | Some("unbounded") => false,
            Some("latest-offset") => true,
            Some(v) => {
                return Err(o.bad(
                    "scan.bounded.mode",
                    &format!("'{v}' is not one of unbounded, latest-offset"),
                ));
            }
        };
        if stream.is_none() && (bounded || startup != StartupMode::GroupOffsets) {
            return Err(o.bad(
                if bounded {
                    "scan.bounded.mode"
                } else {
                    "scan.startup.mode"
                },
                "core NATS keeps no messages to start from or stop at: name a JetStream \
                 'stream'",
            ));
        }
        let ack_wait = o
            .take_duration("scan.ack-wait")?
            .unwrap_or(Duration::from_secs(300));
        let max_ack_pending = o
            .take_parsed::<i64>("scan.max-ack-pending", "a number")?
            .unwrap_or(1_000_000);
        o.take_message_format()?;
        skip_sink_options(&mut o);
        o.finish()?;
        Ok(NatsSourceConfig {
            target,
            subjects,
            stream,
            consumer,
            queue_group,
            startup,
            bounded,
            ack_wait,
            max_ack_pending,
            table: table.clone(),
        })
    }
}

/// What the sink promises (`sink.delivery-guarantee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    /// `none`: published and forgotten (core NATS default).
    None,
    /// `at-least-once`: every message is confirmed by the server (JetStream's ack, or a
    /// flush for core NATS) before a checkpoint completes.
    AtLeastOnce,
    /// `exactly-once` (JetStream): a checkpoint's messages are published when it
    /// completes, each with a `Nats-Msg-Id` that JetStream deduplicates, so publishing
    /// them again after a failure adds nothing.
    ExactlyOnce,
}

/// Options of the NATS sink.
#[derive(Debug, Clone)]
pub struct NatsSinkConfig {
    /// The server.
    pub target: NatsTarget,
    /// `subject`: where each row goes; `{column}` takes a column's value.
    pub subject: Vec<KeyPart>,
    /// `stream`: publish through JetStream, expecting this stream to store the
    /// messages.
    pub stream: Option<String>,
    /// `sink.delivery-guarantee`.
    pub guarantee: Guarantee,
    /// `sink.message-id`: the prefix of the `Nats-Msg-Id` of exactly-once messages
    /// (default `sluice-<table>`).
    pub message_id: String,
    /// `sink.parallelism`.
    pub parallelism: Option<usize>,
    /// `format`.
    pub format: String,
    pub(crate) table: ConnectorTable,
}

impl NatsSinkConfig {
    /// Reads the sink options of `table`; unknown options are errors.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "nats", &table.options);
        let target = NatsTarget::from_options(&mut o)?;
        let text = o.take_required("subject", "write e.g. 'subject' = 'alerts.{site}'")?;
        let subject = parse_template(&text, &table.schema).map_err(|m| o.bad("subject", &m))?;
        if text.contains(['*', '>']) || text.contains(char::is_whitespace) {
            return Err(o.bad(
                "subject",
                "a sink publishes to concrete subjects: no wildcards or spaces",
            ));
        }
        let stream = o.take("stream");
        let guarantee = match o.take("sink.delivery-guarantee").as_deref() {
            None if stream.is_some() => Guarantee::AtLeastOnce,
            None | Some("none") => Guarantee::None,
            Some("at-least-once") => Guarantee::AtLeastOnce,
            Some("exactly-once") if stream.is_some() => Guarantee::ExactlyOnce,
            Some("exactly-once") => {
                return Err(o.bad(
                    "sink.delivery-guarantee",
                    "exactly-once needs JetStream's deduplication: name the 'stream' that \
                     stores the subject",
                ));
            }
            Some(v) => {
                return Err(o.bad(
                    "sink.delivery-guarantee",
                    &format!("'{v}' is not one of none, at-least-once, exactly-once"),
                ));
            }
        };
        let message_id = o
            .take("sink.message-id")
            .unwrap_or_else(|| format!("sluice-{}", table.name));
        let parallelism = o.take_parsed::<usize>("sink.parallelism", "a positive number")?;
        if parallelism == Some(0) {
            return Err(o.bad("sink.parallelism", "must be at least 1"));
        }
        let format = o.take_message_format()?;
        skip_source_options(&mut o);
        o.finish()?;
        Ok(NatsSinkConfig {
            target,
            subject,
            stream,
            guarantee,
            message_id,
            parallelism,
            format,
            table: table.clone(),
        })
    }
}
