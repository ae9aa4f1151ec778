//! Rows whose values arrive as text, one per column (a database's text values, a Redis
//! stream entry's fields): each row is written as a CSV record and parsed by the `csv`
//! decoder, so text becomes typed values exactly as in a CSV file. Shared by the
//! sources that read such rows (`jdbc` scan, Redis Streams).

use std::collections::BTreeMap;

use sluice_formats::{Decoded, Decoder, FormatOptions};

use crate::{ConnectorTable, Error, Result};

/// Written for a missing or NULL value; the decoder reads it back as NULL.
const NULL_MARK: &str = "\u{1}sluice-null\u{1}";

/// A CSV decoder for a table's columns, fed one row of text values at a time.
pub(crate) struct TextRows {
    decoder: Box<dyn Decoder>,
    table: String,
    line: String,
}

impl TextRows {
    /// A decoder for `table`'s columns; fails on a type text cannot carry.
    pub(crate) fn new(table: &ConnectorTable) -> Result<Self> {
        let mut options = BTreeMap::new();
        options.insert("csv.null-literal".to_string(), NULL_MARK.to_string());
        let decoder = sluice_formats::decoder_for(
            "csv",
            &FormatOptions {
                table: table.name.clone(),
                schema: table.schema.clone(),
                options,
            },
        )
        .map_err(|source| Error::Format {
            table: table.name.clone(),
            source,
        })?;
        Ok(TextRows {
            decoder,
            table: table.name.clone(),
            line: String::new(),
        })
    }

    /// Buffers one row: `values` in column order (`None` for NULL). Returns the bytes
    /// the row took as text.
    pub(crate) fn push<'a>(
        &mut self,
        values: impl Iterator<Item = Option<&'a str>>,
        source: &str,
        offset: u64,
    ) -> usize {
        self.line.clear();
        for (i, v) in values.enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            self.line.push('"');
            self.line
                .push_str(&v.unwrap_or(NULL_MARK).replace('"', "\"\""));
            self.line.push('"');
        }
        // A record the decoder cannot parse comes out of `flush` as a dead letter.
        let _ = self.decoder.decode(self.line.as_bytes(), source, offset);
        self.line.len()
    }

    /// The buffered rows as a batch, and the rows that did not parse.
    pub(crate) fn flush(&mut self) -> Result<Decoded> {
        self.decoder.flush().map_err(|source| Error::Format {
            table: self.table.clone(),
            source,
        })
    }
}
