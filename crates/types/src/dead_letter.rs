//! The dead-letter record: one input record that could not become a row.

use base64::Engine;
use serde::Serialize;

/// A record that failed to decode or convert, with everything needed to find and
/// replay it. Written as one JSON line to the dead-letter output.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeadLetter {
    /// The table (source) the record was meant for.
    pub table: String,
    /// Where it came from: a file path, a topic/partition, an HTTP request id.
    pub source: String,
    /// Byte offset of the record's first byte within `source` (or a sequence number).
    pub offset: u64,
    /// Why it was rejected, naming the field where known.
    pub reason: String,
    /// The raw bytes as text when they are valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// The raw bytes in base64 when they are not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
    /// True when `raw`/`raw_base64` hold only the first bytes of a huge record.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Raw bytes kept in a dead letter at most; longer records are cut (and flagged).
pub const MAX_DEAD_LETTER_BYTES: usize = 64 * 1024;

impl DeadLetter {
    /// Builds a dead letter, keeping the raw bytes as text or base64.
    pub fn new(
        table: impl Into<String>,
        source: impl Into<String>,
        offset: u64,
        reason: impl Into<String>,
        raw: &[u8],
    ) -> Self {
        let truncated = raw.len() > MAX_DEAD_LETTER_BYTES;
        let kept = &raw[..raw.len().min(MAX_DEAD_LETTER_BYTES)];
        let (raw, raw_base64) = match std::str::from_utf8(kept) {
            Ok(s) => (Some(s.to_string()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(kept)),
            ),
        };
        DeadLetter {
            table: table.into(),
            source: source.into(),
            offset,
            reason: reason.into(),
            raw,
            raw_base64,
            truncated,
        }
    }

    /// The record as one JSON line (without the newline).
    pub fn to_json_line(&self) -> String {
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"reason\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_raw_bytes_are_kept_as_base64() {
        let d = DeadLetter::new("t", "f.json", 3, "bad", &[0xff, 0xfe]);
        assert!(d.raw.is_none());
        assert_eq!(d.raw_base64.as_deref(), Some("//4="));
        assert!(d.to_json_line().contains("\"offset\":3"));
    }

    #[test]
    fn huge_records_are_cut_and_flagged() {
        let raw = vec![b'a'; MAX_DEAD_LETTER_BYTES + 10];
        let d = DeadLetter::new("t", "f", 0, "too long", &raw);
        assert!(d.truncated);
        assert_eq!(d.raw.map(|r| r.len()), Some(MAX_DEAD_LETTER_BYTES));
    }
}
