//! Why a JSON record was rejected, in words a user can act on.
//!
//! Owns: the slow-path checks run only on records the fast path could not decode
//! (UTF-8, blank, nesting depth, JSON syntax via `serde_json`, not an object, then the
//! field arrow-json complained about, with its value), the nesting guard run on every
//! record, and the `fail-on-missing-field` key scan. Does not own: decoding.

use std::fmt;

use datafusion::arrow::datatypes::Fields;
use datafusion::arrow::error::ArrowError;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::common::fixup::shorten;
use crate::common::sql_type::{sql_type_name, type_at_path};

/// Deepest nesting of arrays and objects accepted in one record.
pub(crate) const MAX_DEPTH: usize = 100;

/// True when `record` nests arrays/objects deeper than [`MAX_DEPTH`]. Cheap for
/// ordinary records: it only scans closely when the record has many brackets.
pub(crate) fn too_deep(record: &[u8]) -> bool {
    if memchr::memchr2_iter(b'[', b'{', record)
        .take(MAX_DEPTH + 1)
        .count()
        <= MAX_DEPTH
    {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in record {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The reason a record cannot become a row. `error` is arrow-json's complaint, if any.
pub(crate) fn diagnose(record: &[u8], error: Option<&ArrowError>, fields: &Fields) -> String {
    let text = match std::str::from_utf8(record) {
        Ok(t) => t,
        Err(e) => {
            return format!(
                "record is not valid UTF-8 (invalid byte at {})",
                e.valid_up_to()
            );
        }
    };
    let trimmed = text.trim_start();
    if trimmed.trim_end().is_empty() {
        return "record is blank".into();
    }
    if too_deep(record) {
        return format!("record nests arrays or objects deeper than {MAX_DEPTH} levels");
    }
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return syntax_reason(&e),
    };
    let Some(object) = value.as_object() else {
        let kind = match value {
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return format!("record is not a JSON object but {kind}");
    };
    let Some(error) = error else {
        return "record could not be decoded".into();
    };
    field_reason(&error.to_string(), object, fields)
}

fn syntax_reason(e: &serde_json::Error) -> String {
    let message = if e.classify() == serde_json::error::Category::Eof {
        "unexpected end of input".to_string()
    } else {
        let full = e.to_string();
        match full.rfind(" at line ") {
            Some(i) => full[..i].to_string(),
            None => full,
        }
    };
    if e.line() > 1 {
        format!(
            "invalid JSON at line {}, column {}: {message}",
            e.line(),
            e.column()
        )
    } else {
        format!("invalid JSON at byte {}: {message}", e.column())
    }
}

/// Rewrites arrow-json's `whilst decoding field 'a': whilst decoding field 'b': …`
/// into `field 'a.b': cannot parse <value> as <TYPE>`.
fn field_reason(
    message: &str,
    object: &serde_json::Map<String, serde_json::Value>,
    fields: &Fields,
) -> String {
    let mut rest = message.strip_prefix("Json error: ").unwrap_or(message);
    let mut path = Vec::new();
    while let Some(r) = rest.strip_prefix("whilst decoding field '") {
        match r.find("': ") {
            Some(end) => {
                path.push(&r[..end]);
                rest = &r[end + 3..];
            }
            None => break,
        }
    }
    if path.is_empty() {
        return format!("record could not be decoded: {}", shorten(rest));
    }
    let name = path.join(".");
    let mut value = object.get(path[0]);
    for key in &path[1..] {
        value = value.and_then(|v| v.get(key));
    }
    match (value, type_at_path(fields, &path)) {
        (Some(value), Some(ty)) => {
            let value = shorten(&value.to_string());
            format!(
                "field '{name}': cannot parse {value} as {}",
                sql_type_name(ty)
            )
        }
        _ => format!("field '{name}': {}", shorten(rest)),
    }
}

/// With `fail-on-missing-field`: the first column with no key in `record`. `None`
/// when all are present, or when the record is not a JSON object (the decoder then
/// reports it with a better reason).
pub(crate) fn missing_field(record: &[u8], names: &[String], seen: &mut [bool]) -> Option<String> {
    seen.iter_mut().for_each(|s| *s = false);
    let mut de = serde_json::Deserializer::from_slice(record);
    KeyScan {
        names,
        seen: &mut *seen,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    seen.iter().position(|s| !s).map(|i| names[i].clone())
}

struct KeyScan<'a> {
    names: &'a [String],
    seen: &'a mut [bool],
}

impl<'de> DeserializeSeed<'de> for KeyScan<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for KeyScan<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(found) = map.next_key_seed(KeySeed(self.names))? {
            if let Some(i) = found {
                self.seen[i] = true;
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

struct KeySeed<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|n| n == v))
    }
}
