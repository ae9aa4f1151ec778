//! The `json` decoder: newline-delimited JSON objects into Arrow rows.
//!
//! Owns: [`JsonDecoder`] and its Arrow engine. The fast path buffers records
//! contiguously and decodes the whole buffer with one arrow-json tape decoder at flush;
//! the shared fallback (`common::flush`) isolates bad records when that fails.
//! Top-level timestamps are read as text and parsed by `common::temporal` (SQL,
//! ISO-8601 or epoch milliseconds). Does not own: framing or error wording
//! (`diagnose`).

use datafusion::arrow::datatypes::{DataType, Fields, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::json::reader::Decoder as ArrowJsonDecoder;
use datafusion::arrow::record_batch::RecordBatch;

use super::diagnose::{diagnose, missing_field, too_deep};
use super::options::JsonOptions;
use crate::common::fixup::{Fix, Fixups};
use crate::common::flush::{Engine, Flusher};
use crate::common::records::Records;
use crate::{Decoded, Decoder, FormatOptions, Result};

/// Smallest row capacity the fast-path decoder is built with.
const MIN_CAPACITY: usize = 1024;

/// Decodes `'format' = 'json'` records (one JSON object each) into the table's schema.
///
/// Unknown fields are ignored; a missing field is null (or a dead letter with
/// `json.fail-on-missing-field`); numbers and booleans are accepted for VARCHAR
/// columns; a value that does not fit its column makes the record a dead letter (or
/// the field null with `json.ignore-parse-errors`). No allocation per record on the
/// fast path.
pub struct JsonDecoder {
    records: Records,
    flusher: Flusher,
    engine: JsonEngine,
    fixups: Fixups,
    /// Column names and a scratch "seen" flag each, with `fail-on-missing-field`.
    required: Option<(Vec<String>, Vec<bool>)>,
}

impl std::fmt::Debug for JsonDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonDecoder")
            .field("buffered", &self.records.len())
            .finish()
    }
}

impl JsonDecoder {
    /// A decoder for the table in `options`; fails on a bad `json.*` option or an
    /// unsupported column type.
    pub fn new(options: &FormatOptions) -> Result<Self> {
        let json = JsonOptions::parse(options)?;
        let fixes = options
            .schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Timestamp(_, _) => Fix::Parse,
                _ => Fix::Keep,
            })
            .collect();
        let fixups = Fixups::new(options.schema.clone(), fixes, json.ignore_parse_errors);
        let mut engine = JsonEngine {
            wire: fixups.wire_schema(),
            fields: options.schema.fields().clone(),
            ignore_parse_errors: json.ignore_parse_errors,
            decoder: None,
            capacity: 0,
            clean: false,
        };
        // Surface schema problems now rather than at the first flush.
        engine.start(1)?;
        let required = json.fail_on_missing_field.then(|| {
            let names: Vec<String> = options
                .schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let seen = vec![false; names.len()];
            (names, seen)
        });
        Ok(JsonDecoder {
            records: Records::new(&options.table),
            flusher: Flusher::default(),
            engine,
            fixups,
            required,
        })
    }
}

impl Decoder for JsonDecoder {
    fn decode(&mut self, record: &[u8], source: &str, offset: u64) -> Result<()> {
        let missing = match self.required.as_mut() {
            Some((names, seen)) => missing_field(record, names, seen),
            None => None,
        };
        if let Some(missing) = missing {
            let reason =
                format!("field '{missing}' is missing (json.fail-on-missing-field is true)");
            self.records.reject(source, offset, reason, record, false);
            return Ok(());
        }
        self.records.push(record, source, offset);
        Ok(())
    }

    fn reject(&mut self, source: &str, offset: u64, reason: String, raw: &[u8], truncated: bool) {
        self.records.reject(source, offset, reason, raw, truncated);
    }

    fn buffered_records(&self) -> usize {
        self.records.len()
    }

    fn flush(&mut self) -> Result<Decoded> {
        self.flusher
            .flush(&mut self.engine, &mut self.records, &self.fixups)
    }
}

/// arrow-json's tape decoder behind the [`Engine`] seam.
struct JsonEngine {
    wire: SchemaRef,
    fields: Fields,
    ignore_parse_errors: bool,
    decoder: Option<ArrowJsonDecoder>,
    capacity: usize,
    /// False once the decoder saw an error: it must be rebuilt.
    clean: bool,
}

impl Engine for JsonEngine {
    fn start(&mut self, rows: usize) -> Result<()> {
        if self.clean && self.decoder.is_some() && self.capacity >= rows {
            return Ok(());
        }
        let capacity = rows.max(MIN_CAPACITY);
        let decoder = ReaderBuilder::new(self.wire.clone())
            .with_batch_size(capacity)
            .with_coerce_primitive(true)
            .with_ignore_type_conflicts(self.ignore_parse_errors)
            .build_decoder()?;
        self.decoder = Some(decoder);
        self.capacity = capacity;
        self.clean = true;
        Ok(())
    }

    fn feed(&mut self, record: &[u8]) -> bool {
        if too_deep(record) {
            return false;
        }
        let Some(decoder) = self.decoder.as_mut() else {
            return false;
        };
        let before = decoder.len();
        let ok = matches!(decoder.decode(record), Ok(n) if n == record.len())
            && !decoder.has_partial_record()
            && decoder.len() == before + 1;
        self.clean &= ok;
        ok
    }

    fn finish(&mut self) -> std::result::Result<Option<RecordBatch>, ArrowError> {
        let Some(decoder) = self.decoder.as_mut() else {
            return Ok(None);
        };
        let result = decoder.flush();
        self.clean &= result.is_ok();
        result
    }

    fn diagnose(&mut self, record: &[u8], error: Option<&ArrowError>) -> String {
        diagnose(record, error, &self.fields)
    }
}
