//! `sluice.toml`: what `sluice serve` listens on, where it keeps pipelines and
//! checkpoints, its API keys, TLS and limits. Every key is optional.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! pg_listen = "127.0.0.1:4566"            # PostgreSQL protocol over the views; "off": none
//! data_dir = "sluice-data"
//! checkpoint_dir = "s3://bucket/sluice"   # default: <data_dir>/pipelines/<id>/checkpoints
//! checkpoint_interval = "10s"
//! allow_anonymous = false                 # true: no API keys on a non-loopback address
//!
//! [tls]
//! cert = "server.crt"
//! key = "server.key"
//!
//! [limits]
//! max_body_bytes = 1048576                # API request bodies (ingest has its own)
//! requests_per_second = 100               # per API key (and per client without keys)
//!
//! [[api_keys]]
//! name = "ci"
//! scopes = ["submit"]
//! sha256 = "<printf %s \"$KEY\" | sha256sum>"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::{ApiKey, Scope};
use crate::{Error, Result};

/// The server's configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address to serve on.
    pub listen: String,
    /// The address of the PostgreSQL protocol endpoint (`None`: off).
    pub pg_listen: Option<String>,
    /// Whether `pg_listen` was set (a failure to bind it is then an error, not a
    /// warning).
    pub pg_listen_set: bool,
    /// Pipeline definitions, their dead letters and (by default) checkpoints.
    pub data_dir: PathBuf,
    /// Where checkpoints go, a directory or `s3://bucket/prefix`; each pipeline gets a
    /// folder named after it. Default: inside `data_dir`.
    pub checkpoint_dir: Option<String>,
    /// Time between checkpoints of pipelines that do not SET their own.
    pub checkpoint_interval: Duration,
    /// Serve without API keys on a non-loopback address.
    pub allow_anonymous: bool,
    /// TLS certificate chain and private key (PEM files).
    pub tls: Option<TlsFiles>,
    /// Largest API request body in bytes.
    pub max_body_bytes: usize,
    /// Requests per second per key (or per client address without keys); 0: no limit.
    pub requests_per_second: u32,
    /// The API keys.
    pub api_keys: Vec<ApiKey>,
}

/// PEM files for TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            pg_listen: Some("127.0.0.1:4566".into()),
            pg_listen_set: false,
            data_dir: PathBuf::from("sluice-data"),
            checkpoint_dir: None,
            checkpoint_interval: crate::settings::DEFAULT_CHECKPOINT_INTERVAL,
            allow_anonymous: false,
            tls: None,
            max_body_bytes: 1 << 20,
            requests_per_second: 0,
            api_keys: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<String>,
    pg_listen: Option<String>,
    data_dir: Option<PathBuf>,
    checkpoint_dir: Option<String>,
    checkpoint_interval: Option<String>,
    allow_anonymous: Option<bool>,
    tls: Option<TlsFiles>,
    limits: Option<Limits>,
    #[serde(default)]
    api_keys: Vec<KeyEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    max_body_bytes: Option<usize>,
    requests_per_second: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    name: String,
    scopes: Vec<String>,
    sha256: String,
}

impl ServerConfig {
    /// The TLS acceptor of `[tls]`, if set.
    pub fn tls_acceptor(&self) -> Result<Option<tokio_rustls::TlsAcceptor>> {
        self.tls.as_ref().map(crate::tls_acceptor).transpose()
    }

    /// Reads `path`; relative paths in it are relative to the file's folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::User(format!(
                "cannot read the server configuration '{}': {e}",
                path.display()
            ))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| Error::User(format!("{}: {e}", path.display())))
    }

    /// Parses configuration text; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self> {
        let file: File = toml::from_str(text).map_err(|e| Error::User(e.to_string()))?;
        let mut c = ServerConfig::default();
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        if let Some(l) = file.listen {
            c.listen = l;
        }
        if let Some(p) = file.pg_listen {
            c.set_pg_listen(&p);
        }
        if let Some(d) = file.data_dir {
            c.data_dir = rel(d);
        }
        c.checkpoint_dir = file.checkpoint_dir.map(|d| {
            if d.contains("://") {
                d
            } else {
                rel(PathBuf::from(d)).display().to_string()
            }
        });
        if let Some(i) = file.checkpoint_interval {
            c.checkpoint_interval = sluice_types::parse_duration(&i)
                .map_err(|e| Error::User(format!("checkpoint_interval = \"{i}\": {e}")))?;
            if c.checkpoint_interval.is_zero() {
                return Err(Error::User("checkpoint_interval must be above zero".into()));
            }
        }
        c.allow_anonymous = file.allow_anonymous.unwrap_or(false);
        c.tls = file.tls.map(|t| TlsFiles {
            cert: rel(t.cert),
            key: rel(t.key),
        });
        if let Some(l) = file.limits {
            if let Some(b) = l.max_body_bytes {
                c.max_body_bytes = b;
            }
            if let Some(r) = l.requests_per_second {
                c.requests_per_second = r;
            }
        }
        for k in file.api_keys {
            let scopes = k
                .scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::User(format!("api key '{}': {e}", k.name)))?;
            c.api_keys.push(
                ApiKey::new(&k.name, scopes, &k.sha256)
                    .map_err(|e| Error::User(format!("api key '{}': {e}", k.name)))?,
            );
        }
        Ok(c)
    }

    /// Sets the PostgreSQL endpoint's address (`off` turns it off).
    pub fn set_pg_listen(&mut self, addr: &str) {
        self.pg_listen_set = true;
        self.pg_listen = match addr.trim() {
            "" | "off" | "none" => None,
            a => Some(a.to_string()),
        };
    }

    /// Refuses a configuration that would expose the API to the network without keys.
    pub fn check_exposure(&self, bound: SocketAddr) -> Result<()> {
        if self.api_keys.is_empty() && !bound.ip().is_loopback() && !self.allow_anonymous {
            return Err(Error::User(format!(
                "refusing to serve {bound} without API keys: anyone who can reach it could run SQL. \
                 Add [[api_keys]] to the configuration (see docs/operations.md), listen on 127.0.0.1, \
                 or set allow_anonymous = true"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_key_and_makes_paths_relative_to_the_file() {
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"k1"));
        let c = ServerConfig::parse(
            &format!(
                r#"listen = "0.0.0.0:9000"
                   data_dir = "data"
                   checkpoint_dir = "s3://b/p"
                   checkpoint_interval = "2s"
                   [tls]
                   cert = "c.pem"
                   key = "/abs/k.pem"
                   [limits]
                   max_body_bytes = 10
                   requests_per_second = 5
                   [[api_keys]]
                   name = "ops"
                   scopes = ["admin", "read"]
                   sha256 = "{hash}""#
            ),
            Path::new("/etc/sluice"),
        )
        .expect("valid");
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.data_dir, PathBuf::from("/etc/sluice/data"));
        assert_eq!(c.checkpoint_dir.as_deref(), Some("s3://b/p"));
        assert_eq!(c.checkpoint_interval, Duration::from_secs(2));
        let tls = c.tls.as_ref().expect("tls");
        assert_eq!(tls.cert, PathBuf::from("/etc/sluice/c.pem"));
        assert_eq!(tls.key, PathBuf::from("/abs/k.pem"));
        assert_eq!((c.max_body_bytes, c.requests_per_second), (10, 5));
        assert_eq!(c.api_keys.len(), 1);
        assert!(c.api_keys[0].matches("k1"));
        assert!(!c.api_keys[0].matches("k2"));
    }

    #[test]
    fn bad_configuration_is_a_clear_error() {
        for (text, want) in [
            ("listen = 3", "invalid type"),
            ("lisen = \"x\"", "unknown field"),
            ("checkpoint_interval = \"soon\"", "checkpoint_interval"),
            (
                "[[api_keys]]\nname = \"a\"\nscopes = [\"root\"]\nsha256 = \"00\"",
                "unknown scope 'root'",
            ),
            (
                "[[api_keys]]\nname = \"a\"\nscopes = [\"read\"]\nsha256 = \"xyz\"",
                "64 hex digits",
            ),
            ("[limits\n", "expected"),
        ] {
            let e = ServerConfig::parse(text, Path::new(".")).expect_err(text);
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn no_keys_is_only_allowed_on_loopback() {
        let c = ServerConfig::default();
        assert!(
            c.check_exposure("127.0.0.1:1".parse().expect("addr"))
                .is_ok()
        );
        let e = c
            .check_exposure("0.0.0.0:1".parse().expect("addr"))
            .expect_err("exposed");
        assert!(e.to_string().contains("without API keys"), "{e}");
        let open = ServerConfig {
            allow_anonymous: true,
            ..ServerConfig::default()
        };
        assert!(
            open.check_exposure("0.0.0.0:1".parse().expect("addr"))
                .is_ok()
        );
    }
}
