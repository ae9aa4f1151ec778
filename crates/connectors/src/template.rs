//! Templates that build a text per row from literal text and column values, such as a
//! Redis key (`user:{id}`), a NATS subject (`alerts.{site}`) or an MQTT topic
//! (`sensors/{device}/alarm`).

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// A piece of a key template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// Text as written.
    Text(String),
    /// The value of the column at this index.
    Column(usize),
}

/// `user:{id}:{region}` → text and column pieces; `{{` and `}}` are literal braces.
pub fn parse_template(text: &str, schema: &SchemaRef) -> std::result::Result<Vec<KeyPart>, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(format!("'{text}' has an unclosed '{{'")),
                    }
                }
                let i = schema
                    .index_of(name.trim())
                    .map_err(|_| format!("'{{{name}}}' names no column of the table"))?;
                if !lit.is_empty() {
                    parts.push(KeyPart::Text(std::mem::take(&mut lit)));
                }
                parts.push(KeyPart::Column(i));
            }
            '}' => return Err(format!("'{text}' has a '}}' without '{{' (write '}}}}')")),
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        parts.push(KeyPart::Text(lit));
    }
    if parts.is_empty() {
        return Err("is empty".into());
    }
    Ok(parts)
}

/// The key of every row of `batch` from `template` (whose columns index `batch`); a
/// NULL value is written as nothing.
pub(crate) fn render_keys(
    template: &[KeyPart],
    batch: &RecordBatch,
) -> std::result::Result<Vec<String>, ArrowError> {
    render_with(template, batch, |value, out| out.push_str(value))
}

/// Every row of `batch` rendered from `template`, each column value (as text; NULL as
/// nothing) appended to the row's text by `put` (which may escape it).
pub(crate) fn render_with(
    template: &[KeyPart],
    batch: &RecordBatch,
    put: impl Fn(&str, &mut String),
) -> std::result::Result<Vec<String>, ArrowError> {
    let opts = FormatOptions::default().with_null("");
    let mut formatters = Vec::new();
    for part in template {
        if let KeyPart::Column(i) = part {
            formatters.push(ArrayFormatter::try_new(batch.column(*i).as_ref(), &opts)?);
        }
    }
    let mut out = Vec::with_capacity(batch.num_rows());
    let mut value = String::new();
    for row in 0..batch.num_rows() {
        let mut text = String::new();
        let mut f = formatters.iter();
        for part in template {
            match part {
                KeyPart::Text(t) => text.push_str(t),
                KeyPart::Column(_) => {
                    if let Some(fmt) = f.next() {
                        value.clear();
                        use std::fmt::Write as _;
                        let _ = write!(value, "{}", fmt.value(row));
                        put(&value, &mut text);
                    }
                }
            }
        }
        out.push(text);
    }
    Ok(out)
}

/// A body template: `{{column}}` takes a column's value, everything else is literal
/// (so JSON braces need no escaping: `{"text": "{{device}} is hot"}`).
pub fn parse_mustache(text: &str, schema: &SchemaRef) -> std::result::Result<Vec<KeyPart>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            return Err(format!("'{text}' has an unclosed '{{{{'"));
        };
        let name = rest[start + 2..start + 2 + len].trim();
        let i = schema
            .index_of(name)
            .map_err(|_| format!("'{{{{{name}}}}}' names no column of the table"))?;
        if start > 0 {
            parts.push(KeyPart::Text(rest[..start].to_string()));
        }
        parts.push(KeyPart::Column(i));
        rest = &rest[start + 2 + len + 2..];
    }
    if !rest.is_empty() {
        parts.push(KeyPart::Text(rest.to_string()));
    }
    if parts.is_empty() {
        return Err("is empty".into());
    }
    Ok(parts)
}
