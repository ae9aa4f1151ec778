//! `'format' = 'debezium-json'` and `'canal-json'`: change-data-capture envelopes read
//! as changelogs (`+I`, `-U`/`+U`, `-D` rows), as Flink reads them.
//!
//! Owns: unwrapping the envelopes ([`CdcDecoder`]) and their registry entries. The row
//! images are decoded by the `json` format's decoder. Does not own: writing changelogs
//! in these formats (not supported yet).

mod decode;
#[cfg(test)]
mod tests;

pub use decode::{CdcDecoder, Envelope};

use crate::registry::FormatFactory;
use crate::{Decoder, Encoder, Error, FormatOptions, Result};

/// `debezium-json`.
pub struct DebeziumJsonFormat;

/// `canal-json`.
pub struct CanalJsonFormat;

fn read_only(name: &str) -> Error {
    Error::BadOption {
        option: "format".into(),
        message: format!(
            "'{name}' can only be read (a changelog source); write changelogs with \
             'upsert-kafka' or a sink with a PRIMARY KEY"
        ),
    }
}

impl FormatFactory for DebeziumJsonFormat {
    fn name(&self) -> &'static str {
        "debezium-json"
    }

    fn option_keys(&self) -> &'static [&'static str] {
        &[
            "ignore-parse-errors",
            "timestamp-format.standard",
            "schema-include",
        ]
    }

    fn changelog(&self) -> bool {
        true
    }

    fn decoder(&self, options: &FormatOptions) -> Result<Box<dyn Decoder>> {
        options.get_bool("debezium-json", "schema-include", false)?;
        Ok(Box::new(CdcDecoder::new(Envelope::Debezium, options)?))
    }

    fn encoder(&self, _options: &FormatOptions) -> Result<Box<dyn Encoder>> {
        Err(read_only(self.name()))
    }
}

impl FormatFactory for CanalJsonFormat {
    fn name(&self) -> &'static str {
        "canal-json"
    }

    fn option_keys(&self) -> &'static [&'static str] {
        &[
            "ignore-parse-errors",
            "timestamp-format.standard",
            "database.include",
            "table.include",
        ]
    }

    fn changelog(&self) -> bool {
        true
    }

    fn decoder(&self, options: &FormatOptions) -> Result<Box<dyn Decoder>> {
        Ok(Box::new(CdcDecoder::new(Envelope::Canal, options)?))
    }

    fn encoder(&self, _options: &FormatOptions) -> Result<Box<dyn Encoder>> {
        Err(read_only(self.name()))
    }
}
