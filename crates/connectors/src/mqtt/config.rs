//! Options of the `mqtt` connector.

use std::sync::Arc;
use std::time::Duration;

use crate::template::{KeyPart, parse_template};
use crate::{ConnectorTable, Error, Options, Result};

/// The protocol version (`mqtt.version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `3.1.1` (default).
    V311,
    /// `5`.
    V5,
}

/// Where the broker is and how to log in.
#[derive(Clone)]
pub struct MqttTarget {
    /// `url`, as written.
    pub url: String,
    /// Host and port from the URL.
    pub host: String,
    /// The port (1883, or 8883 for `mqtts://`, unless given).
    pub port: u16,
    /// `mqtt.version`.
    pub version: Version,
    /// `username` and `password`.
    pub credentials: Option<(String, String)>,
    /// TLS (`mqtts://` or `ssl://`), verifying the broker against `tls.root-cert` or the
    /// system's roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// `keep-alive`.
    pub keep_alive: Duration,
    /// `max-message-size`: the largest packet sent or accepted.
    pub max_message_size: usize,
    /// `inflight`: QoS 1/2 publications awaiting the broker's acknowledgement at most.
    pub inflight: u16,
}

impl std::fmt::Debug for MqttTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttTarget")
            .field("url", &self.url)
            .field("version", &self.version)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl MqttTarget {
    fn from_options(o: &mut Options) -> Result<Self> {
        let url = o.take_required("url", "write e.g. 'url' = 'mqtt://localhost:1883'")?;
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            o.bad(
                "url",
                "is not an MQTT URL; write e.g. 'mqtt://localhost:1883'",
            )
        })?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" | "tls" => true,
            other => {
                return Err(o.bad(
                    "url",
                    &format!(
                        "scheme '{other}' is not mqtt:// or mqtts://; write e.g. \
                         'mqtt://localhost:1883'"
                    ),
                ));
            }
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') {
            return Err(o.bad(
                "url",
                "put credentials in 'username' and 'password', not in the URL",
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| o.bad("url", &format!("'{p}' is not a port")))?;
                (
                    h.trim_start_matches('[').trim_end_matches(']').to_string(),
                    port,
                )
            }
            _ => (authority.to_string(), if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            return Err(o.bad("url", "has no host; write e.g. 'mqtt://localhost:1883'"));
        }
        let version = match o.take("mqtt.version").as_deref() {
            None | Some("3.1.1") | Some("3") | Some("4") => Version::V311,
            Some("5") | Some("5.0") => Version::V5,
            Some(v) => return Err(o.bad("mqtt.version", &format!("'{v}' is not 3.1.1 or 5"))),
        };
        let credentials = match (o.take("username"), o.take("password")) {
            (Some(u), p) => Some((u, p.unwrap_or_default())),
            (None, None) => None,
            (None, Some(_)) => return Err(o.bad("password", "give 'username' too")),
        };
        let root_cert = o.take("tls.root-cert");
        if root_cert.is_some() && !tls {
            return Err(o.bad(
                "tls.root-cert",
                "applies to TLS connections: write the url as mqtts://…",
            ));
        }
        let tls = if tls {
            let config = crate::tls::verifying_config(root_cert.as_deref())
                .map_err(|m| o.bad("tls.root-cert", &m))?;
            Some(Arc::new(config))
        } else {
            None
        };
        let keep_alive = o
            .take_duration("keep-alive")?
            .unwrap_or(Duration::from_secs(30));
        if keep_alive < Duration::from_secs(1) {
            return Err(o.bad("keep-alive", "must be at least 1s"));
        }
        let max_message_size = o
            .take_parsed::<usize>("max-message-size", "a number of bytes")?
            .unwrap_or(4 << 20);
        let inflight = o
            .take_parsed::<u16>("inflight", "a number from 1 to 65535")?
            .unwrap_or(1000)
            .max(1);
        Ok(MqttTarget {
            url,
            host,
            port,
            version,
            credentials,
            tls,
            keep_alive,
            max_message_size,
            inflight,
        })
    }
}

fn take_qos(o: &mut Options) -> Result<u8> {
    match o.take_parsed::<u8>("qos", "0, 1 or 2")? {
        None => Ok(1),
        Some(q @ 0..=2) => Ok(q),
        Some(q) => Err(o.bad("qos", &format!("'{q}' is not 0, 1 or 2"))),
    }
}

/// The `mqtt` metadata keys (all read-only).
pub(crate) const METADATA: &[(&str, crate::messages::MetaKey)] = &[
    ("topic", crate::messages::MetaKey::Topic),
    ("qos", crate::messages::MetaKey::Qos),
    ("retain", crate::messages::MetaKey::Retain),
    ("properties", crate::messages::MetaKey::Headers),
];

/// Options of the MQTT source.
#[derive(Debug, Clone)]
pub struct MqttSourceConfig {
    /// The broker.
    pub target: MqttTarget,
    /// `topic`: topic filters, comma separated (`+` and `#` wildcards; `$share/g/…`
    /// shared subscriptions let every subtask read).
    pub topics: Vec<String>,
    /// `qos`: the subscription's QoS (default 1).
    pub qos: u8,
    /// `client-id` (default `sluice-<table>`; subtask `i > 0` appends `-<i>`).
    pub client_id: String,
    /// `clean-session` (default false: the broker keeps the session, and what was
    /// delivered but not acknowledged comes again after a restart).
    pub clean_session: bool,
    pub(crate) table: ConnectorTable,
}

impl MqttSourceConfig {
    /// Reads the source options of `table`; unknown options are errors.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "mqtt", &table.options);
        let target = MqttTarget::from_options(&mut o)?;
        let topics: Vec<String> = o
            .take_required("topic", "write e.g. 'topic' = 'sensors/+/temperature'")?
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        for t in &topics {
            if let Err(m) = check_filter(t) {
                return Err(o.bad("topic", &m));
            }
        }
        let qos = take_qos(&mut o)?;
        let client_id = o
            .take("client-id")
            .unwrap_or_else(|| format!("sluice-{}", table.name));
        let clean_session = o.take_bool("clean-session", false)?;
        o.take_message_format()?;
        for k in ["retain", "sink.parallelism", "sink.delivery-guarantee"] {
            o.take(k);
        }
        o.finish()?;
        if topics.is_empty() {
            return Err(Error::MissingOption {
                table: table.name.clone(),
                connector: "mqtt".into(),
                option: "topic".into(),
                hint: "write e.g. 'topic' = 'sensors/+/temperature'".into(),
            });
        }
        Ok(MqttSourceConfig {
            target,
            topics,
            qos,
            client_id,
            clean_session,
            table: table.clone(),
        })
    }

    /// Whether every subtask subscribes (shared subscriptions split the messages among
    /// them); otherwise subtask 0 alone reads.
    pub fn shared(&self) -> bool {
        self.topics.iter().all(|t| t.starts_with("$share/"))
    }
}

/// Checks an MQTT topic filter: `#` only last, wildcards only as whole levels.
fn check_filter(t: &str) -> std::result::Result<(), String> {
    let levels: Vec<&str> = t.split('/').collect();
    for (i, l) in levels.iter().enumerate() {
        if l.contains('#') && (*l != "#" || i + 1 != levels.len()) {
            return Err(format!("'{t}': '#' must be a whole level and the last one"));
        }
        if l.contains('+') && *l != "+" {
            return Err(format!("'{t}': '+' must be a whole level"));
        }
    }
    if t.contains('\0') {
        return Err(format!("'{t}' holds a NUL character"));
    }
    Ok(())
}

/// What the sink promises (`sink.delivery-guarantee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    /// `none`: handed to the client (QoS 0 default).
    None,
    /// `at-least-once`: every QoS 1/2 message acknowledged by the broker before a
    /// checkpoint completes (QoS 1/2 default).
    AtLeastOnce,
}

/// Options of the MQTT sink.
#[derive(Debug, Clone)]
pub struct MqttSinkConfig {
    /// The broker.
    pub target: MqttTarget,
    /// `topic`: where each row goes; `{column}` takes a column's value.
    pub topic: Vec<KeyPart>,
    /// `qos` (default 1).
    pub qos: u8,
    /// `retain` (default false).
    pub retain: bool,
    /// `client-id` (default `sluice-<table>-sink`; `-<subtask>` is appended).
    pub client_id: String,
    /// `sink.delivery-guarantee`.
    pub guarantee: Guarantee,
    /// `sink.parallelism`.
    pub parallelism: Option<usize>,
    /// `format`.
    pub format: String,
    pub(crate) table: ConnectorTable,
}

impl MqttSinkConfig {
    /// Reads the sink options of `table`; unknown options are errors.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "mqtt", &table.options);
        let target = MqttTarget::from_options(&mut o)?;
        let text = o.take_required("topic", "write e.g. 'topic' = 'alerts/{device}'")?;
        if text.contains(['+', '#']) {
            return Err(o.bad("topic", "a sink publishes to concrete topics: no + or #"));
        }
        let topic = parse_template(&text, &table.schema).map_err(|m| o.bad("topic", &m))?;
        let qos = take_qos(&mut o)?;
        let retain = o.take_bool("retain", false)?;
        let client_id = o
            .take("client-id")
            .unwrap_or_else(|| format!("sluice-{}-sink", table.name));
        let guarantee = match o.take("sink.delivery-guarantee").as_deref() {
            None if qos == 0 => Guarantee::None,
            None | Some("at-least-once") => Guarantee::AtLeastOnce,
            Some("none") => Guarantee::None,
            Some("exactly-once") => {
                return Err(o.bad(
                    "sink.delivery-guarantee",
                    "MQTT cannot deduplicate a message published again after a failure: use \
                     at-least-once (with qos 1 or 2), and make the consumer idempotent",
                ));
            }
            Some(v) => {
                return Err(o.bad(
                    "sink.delivery-guarantee",
                    &format!("'{v}' is not one of none, at-least-once"),
                ));
            }
        };
        if guarantee == Guarantee::AtLeastOnce && qos == 0 {
            return Err(o.bad(
                "sink.delivery-guarantee",
                "at-least-once needs the broker's acknowledgements: set 'qos' to 1 or 2",
            ));
        }
        let parallelism = o.take_parsed::<usize>("sink.parallelism", "a positive number")?;
        if parallelism == Some(0) {
            return Err(o.bad("sink.parallelism", "must be at least 1"));
        }
        let format = o.take_message_format()?;
        o.take("clean-session");
        o.finish()?;
        Ok(MqttSinkConfig {
            target,
            topic,
            qos,
            retain,
            client_id,
            guarantee,
            parallelism,
            format,
            table: table.clone(),
        })
    }
}
