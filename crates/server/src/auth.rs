//! API keys with scopes, and request rate limits.
//!
//! Keys are configured by their SHA-256 (hex), never in the clear, and presented as
//! `Authorization: Bearer <key>` or `X-API-Key: <key>`. Scopes: `admin` (everything),
//! `submit` (create, stop, resume and delete pipelines; implies `read`), `ingest`
//! (`POST /ingest/<table>`) and `read` (every `GET`: the API, `/metrics`, `/sse`).
//! Without configured keys the server is open (allowed only on loopback unless the
//! configuration says `allow_anonymous = true`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Everything.
    Admin,
    /// Create, stop, resume and delete pipelines, and read.
    Submit,
    /// Send rows to ingest endpoints.
    Ingest,
    /// Read: the API's `GET`s, metrics, live streams.
    Read,
}

impl Scope {
    /// Parses a scope name.
    pub fn parse(s: &str) -> Result<Scope, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Scope::Admin),
            "submit" => Ok(Scope::Submit),
            "ingest" => Ok(Scope::Ingest),
            "read" => Ok(Scope::Read),
            other => Err(format!(
                "unknown scope '{other}': use admin, submit, ingest or read"
            )),
        }
    }

    /// The scope's name, as in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Submit => "submit",
            Scope::Ingest => "ingest",
            Scope::Read => "read",
        }
    }

    /// Whether holding `self` allows what `needed` guards.
    pub fn allows(self, needed: Scope) -> bool {
        self == needed || self == Scope::Admin || (self == Scope::Submit && needed == Scope::Read)
    }
}

/// One configured key.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// Its name (in logs and for rate limits; never the key).
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    hash: [u8; 32],
}

impl ApiKey {
    /// A key from its name, scopes and SHA-256 in hex.
    pub fn new(name: &str, scopes: Vec<Scope>, sha256_hex: &str) -> Result<ApiKey, String> {
        let bytes = hex::decode(sha256_hex.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                "sha256 must be 64 hex digits: the output of printf %s \"$KEY\" | sha256sum"
                    .to_string()
            })?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes);
        if scopes.is_empty() {
            return Err("give it at least one scope: admin, submit, ingest or read".into());
        }
        Ok(ApiKey {
            name: name.to_string(),
            scopes,
            hash,
        })
    }

    /// Whether `presented` is this key (compared by hash, in constant time).
    pub fn matches(&self, presented: &str) -> bool {
        let h = Sha256::digest(presented.as_bytes());
        h.iter()
            .zip(self.hash.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// Whether the key allows `needed`.
    pub fn allows(&self, needed: Scope) -> bool {
        self.scopes.iter().any(|s| s.allows(needed))
    }
}

/// The hex SHA-256 of a key, as the configuration wants it.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The key a request presents: `Authorization: Bearer …` or `X-API-Key`.
pub(crate) fn presented(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim());
    }
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, rest) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(rest.trim())
}

/// Who a request is, for rate limiting.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Caller {
    Key(String),
    Address(IpAddr),
}

/// A token bucket per caller: `rate` requests per second, bursts of up to `rate`.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    buckets: Mutex<HashMap<Caller, (f64, Instant)>>,
}

/// Callers tracked before idle ones are forgotten.
const MAX_CALLERS: usize = 10_000;

impl RateLimiter {
    pub(crate) fn new(per_second: u32) -> Self {
        RateLimiter {
            rate: f64::from(per_second),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request's token; `Err(seconds)` says when to retry.
    pub(crate) fn take(&self, caller: Caller) -> Result<(), u64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() >= MAX_CALLERS {
            let rate = self.rate;
            b.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < rate
            });
        }
        let (tokens, at) = b.entry(caller).or_insert((self.rate, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.rate);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_as_documented() {
        assert!(Scope::Admin.allows(Scope::Submit));
        assert!(Scope::Admin.allows(Scope::Ingest));
        assert!(Scope::Submit.allows(Scope::Read));
        assert!(!Scope::Submit.allows(Scope::Ingest));
        assert!(!Scope::Read.allows(Scope::Submit));
        assert!(!Scope::Ingest.allows(Scope::Read));
        assert!(Scope::parse("ADMIN ").is_ok());
        assert!(Scope::parse("root").is_err());
    }

    #[test]
    fn a_key_matches_only_itself() {
        let k = ApiKey::new("a", vec![Scope::Read], &hash_key("secret-1")).expect("valid");
        assert!(k.matches("secret-1"));
        assert!(!k.matches("secret-2"));
        assert!(!k.matches(""));
        assert!(ApiKey::new("a", vec![], &hash_key("x")).is_err());
        assert!(ApiKey::new("a", vec![Scope::Read], "abc").is_err());
    }

    #[test]
    fn the_key_comes_from_either_header() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert("authorization", "Bearer  k1 ".parse().expect("header"));
        assert_eq!(presented(&h), Some("k1"));
        h.insert("authorization", "Basic k1".parse().expect("header"));
        assert_eq!(presented(&h), None);
        h.insert("x-api-key", "k2".parse().expect("header"));
        assert_eq!(presented(&h), Some("k2"));
    }

    #[test]
    fn the_limiter_allows_a_burst_then_asks_to_wait() {
        let l = RateLimiter::new(3);
        let c = || Caller::Key("a".into());
        for _ in 0..3 {
            assert_eq!(l.take(c()), Ok(()));
        }
        assert_eq!(l.take(c()), Err(1));
        assert_eq!(l.take(Caller::Key("b".into())), Ok(()));
        assert_eq!(RateLimiter::new(0).take(c()), Ok(()));
    }
}
