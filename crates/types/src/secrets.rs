//! Secrets: values that must never be printed. Option values that came from
//! `${ENV_VAR}` or `${file:/path}`, and those of password-like options, are registered
//! here when the pipeline is planned; [`redact`] replaces every registered value in a
//! text (an error message, a log line, `explain` output) with `***`.

use std::borrow::Cow;
use std::sync::RwLock;

/// Registered secrets, longest first (so a secret containing another is hidden whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Values shorter than this are not registered: hiding `1` or `on` everywhere would
/// garble every message and protect nothing.
const MIN_LEN: usize = 4;

/// Remembers `value` as a secret for the rest of the process.
pub fn register_secret(value: &str) {
    let value = value.trim();
    if value.chars().count() < MIN_LEN {
        return;
    }
    if let Ok(mut s) = SECRETS.write()
        && !s.iter().any(|v| v == value)
    {
        s.push(value.to_string());
        s.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }
}

/// Whether an option with this key holds a credential (its value is a secret even
/// when written literally).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "credentials",
        "sasl.jaas.config",
        "private",
        "authorization",
        "api-key",
        "apikey",
    ]
    .iter()
    .any(|w| k.contains(w))
        || k.ends_with(".key")
}

/// `text` with every registered secret replaced by `***`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let Ok(secrets) = SECRETS.read() else {
        return Cow::Borrowed(text);
    };
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_hidden_and_short_ones_ignored() {
        register_secret("hunter2-sekrit");
        register_secret("hunter2-sekrit-longer");
        register_secret("on");
        assert_eq!(
            redact("login hunter2-sekrit-longer and hunter2-sekrit, on"),
            "login *** and ***, on"
        );
        assert_eq!(redact("nothing here"), "nothing here");
        assert!(is_secret_key("password"));
        assert!(is_secret_key("properties.sasl.password"));
        assert!(is_secret_key("properties.ssl.key.password"));
        assert!(!is_secret_key("topic"));
    }
}
