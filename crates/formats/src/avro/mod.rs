//! `'format' = 'avro'`: each record (a Kafka message, a Redis value) is one Avro
//! binary datum, without a container header (Flink's `avro` format). The schema is
//! derived from the table's columns as Flink derives it, or given as JSON in
//! `avro.schema` (a record with a field per column; extra fields must be nullable).
//!
//! Owns: the schema mapping ([`schema`]), the decoder and the encoder.

pub(crate) mod decode;
pub(crate) mod encode;
mod schema;
#[cfg(test)]
mod tests;

use crate::registry::FormatFactory;
use crate::{Decoder, Encoder, Error, FormatOptions, Result};

pub(crate) use schema::TableSchema;

/// The most one decoded record may allocate (a string, an array): 64 MiB.
const MAX_ALLOCATION: usize = 64 << 20;

/// `avro`.
pub struct AvroFormat;

fn table_schema(options: &FormatOptions) -> Result<TableSchema> {
    if let Some(e) = options.get("avro", "encoding")
        && !e.eq_ignore_ascii_case("binary")
    {
        return Err(Error::BadOption {
            option: "avro.encoding".into(),
            message: format!("'{e}' is not supported; only 'binary' is"),
        });
    }
    options.get_bool("avro", "timestamp_mapping.legacy", true)?;
    TableSchema::new("avro", &options.schema, options.get("avro", "schema"))
}

impl FormatFactory for AvroFormat {
    fn name(&self) -> &'static str {
        "avro"
    }

    fn option_keys(&self) -> &'static [&'static str] {
        &["schema", "encoding", "timestamp_mapping.legacy"]
    }

    fn decoder(&self, options: &FormatOptions) -> Result<Box<dyn Decoder>> {
        // A hostile length prefix cannot make the decoder allocate more than this.
        apache_avro::util::max_allocation_bytes(MAX_ALLOCATION);
        let schema = table_schema(options)?;
        let positions = schema.positions.clone();
        Ok(Box::new(decode::TreeDecoder::new(
            &options.table,
            options.schema.clone(),
            Box::new(decode::AvroParser { schema }),
            positions,
        )))
    }

    fn encoder(&self, options: &FormatOptions) -> Result<Box<dyn Encoder>> {
        Ok(Box::new(encode::AvroEncoder::new(table_schema(options)?)))
    }

    fn binary(&self) -> bool {
        true
    }
}
