//! `WITH (...)` options, consumed one by one so that leftovers are reported.

use std::collections::BTreeMap;

use crate::{Error, Result};

/// A table's options as the connector reads them. Each `take_*` removes the key;
/// [`Options::finish`] fails on any key nobody took (a typo, usually), suggesting the
/// nearest known one.
#[derive(Debug, Clone)]
pub struct Options {
    table: String,
    connector: String,
    remaining: BTreeMap<String, String>,
    known: Vec<String>,
}

impl Options {
    /// Wraps a table's options for connector `connector`.
    pub fn new(table: &str, connector: &str, options: &BTreeMap<String, String>) -> Self {
        let mut remaining = options.clone();
        remaining.remove("connector");
        Options {
            table: table.to_string(),
            connector: connector.to_string(),
            remaining,
            known: vec!["connector".into()],
        }
    }

    /// The table these options belong to.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Takes an optional string option.
    pub fn take(&mut self, key: &str) -> Option<String> {
        self.known.push(key.to_string());
        self.remaining.remove(key)
    }

    /// Takes a required string option; `hint` shows an example value.
    pub fn take_required(&mut self, key: &str, hint: &str) -> Result<String> {
        if let Some(v) = self.take(key) {
            return Ok(v);
        }
        // A typo of the required key is the likeliest cause: say so.
        if let Some(typo) = self.remaining.keys().find(|k| edit_distance(k, key) <= 2) {
            return Err(Error::BadOption {
                table: self.table.clone(),
                option: typo.clone(),
                message: format!(
                    "unknown option for connector '{}'. Did you mean '{key}'? ({hint})",
                    self.connector
                ),
            });
        }
        Err(Error::MissingOption {
            table: self.table.clone(),
            connector: self.connector.clone(),
            option: key.to_string(),
            hint: hint.to_string(),
        })
    }

    /// Takes an optional value parsed with `FromStr`.
    pub fn take_parsed<T: std::str::FromStr>(
        &mut self,
        key: &str,
        what: &str,
    ) -> Result<Option<T>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<T>()
                .map(Some)
                .map_err(|_| self.bad(key, &format!("'{v}' is not {what}"))),
        }
    }

    /// Takes an optional duration (`10s`, `500ms`, `1 min`).
    pub fn take_duration(&mut self, key: &str) -> Result<Option<std::time::Duration>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => sluice_types::parse_duration(&v)
                .map(Some)
                .map_err(|m| self.bad(key, &m)),
        }
    }

    /// Takes a boolean option (`true`/`false`).
    pub fn take_bool(&mut self, key: &str, default: bool) -> Result<bool> {
        match self.take(key) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(self.bad(
                key,
                &format!("'{v}' is not a boolean; write 'true' or 'false'"),
            )),
        }
    }

    /// Takes every option starting with `prefix` (e.g. `json.`), keeping full keys.
    pub fn take_prefixed(&mut self, prefix: &str) -> BTreeMap<String, String> {
        let keys: Vec<String> = self
            .remaining
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        let mut out = BTreeMap::new();
        for k in keys {
            if let Some(v) = self.remaining.remove(&k) {
                self.known.push(k.clone());
                out.insert(k, v);
            }
        }
        out
    }

    /// Takes the required `format` of a message connector and the format's own
    /// `<format>.*` options (which the format checks when it is built).
    pub fn take_message_format(&mut self) -> Result<String> {
        let format =
            self.take_required("format", "how messages are encoded, e.g. 'format' = 'json'")?;
        self.take_prefixed(&format!("{format}."));
        Ok(format)
    }

    /// Takes every `headers.<Name>` option as a header name and value, checking that
    /// HTTP can carry both.
    pub fn take_headers(&mut self) -> Result<Vec<(String, String)>> {
        let mut headers = Vec::new();
        for (k, v) in self.take_prefixed("headers.") {
            let name = k.trim_start_matches("headers.").to_string();
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(self.bad(&k, &format!("'{name}' is not a header name")));
            }
            if reqwest::header::HeaderValue::from_str(&v).is_err() {
                return Err(self.bad(&k, "the value holds characters a header cannot carry"));
            }
            headers.push((name, v));
        }
        Ok(headers)
    }

    /// An error about option `key`.
    pub fn bad(&self, key: &str, message: &str) -> Error {
        Error::BadOption {
            table: self.table.clone(),
            option: key.to_string(),
            message: message.to_string(),
        }
    }

    /// Fails if any option was not taken, naming it and the closest known option.
    pub fn finish(self) -> Result<()> {
        let Some((key, _)) = self.remaining.iter().next() else {
            return Ok(());
        };
        let nearest = self
            .known
            .iter()
            .map(|k| (edit_distance(k, key), k))
            .min()
            .filter(|(d, _)| *d <= 3)
            .map(|(_, k)| format!(" Did you mean '{k}'?"))
            .unwrap_or_default();
        let mut known: Vec<&String> = self.known.iter().collect();
        known.sort();
        known.dedup();
        let known: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
        Err(Error::BadOption {
            table: self.table.clone(),
            option: key.clone(),
            message: format!(
                "unknown option for connector '{}'.{nearest} Known options: {}",
                self.connector,
                known.join(", ")
            ),
        })
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_option_suggests_the_nearest() {
        let mut m = BTreeMap::new();
        m.insert("connector".to_string(), "filesystem".to_string());
        m.insert("pth".to_string(), "x".to_string());
        let mut o = Options::new("t", "filesystem", &m);
        assert!(o.take("path").is_none());
        let err = o.finish().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("'pth'") && err.contains("Did you mean 'path'"),
            "{err}"
        );
    }
}
