//! The options a format reads from a table's `WITH (...)` clause.

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::SchemaRef;

/// Everything a format factory needs: the table, its physical schema and its options.
#[derive(Debug, Clone)]
pub struct FormatOptions {
    /// Table name, copied into dead letters.
    pub table: String,
    /// The physical columns the format must produce or consume, in order.
    pub schema: SchemaRef,
    /// All of the table's `WITH` options (the format reads its `<format>.*` ones).
    pub options: BTreeMap<String, String>,
}

impl FormatOptions {
    /// The value of `<prefix>.<key>`, if set.
    pub fn get(&self, prefix: &str, key: &str) -> Option<&str> {
        self.options
            .get(&format!("{prefix}.{key}"))
            .map(String::as_str)
    }

    /// A boolean option; accepts `true`/`false` in any case.
    pub fn get_bool(&self, prefix: &str, key: &str, default: bool) -> crate::Result<bool> {
        match self.get(prefix, key) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(crate::Error::BadOption {
                option: format!("{prefix}.{key}"),
                message: format!("'{v}' is not a boolean; write 'true' or 'false'"),
            }),
        }
    }
}
