//! The `csv` decoder: one CSV line per record into Arrow rows.
//!
//! Owns: [`CsvDecoder`] and its arrow-csv engine. Every column is read as text by
//! arrow-csv's decoder (fast, and a ragged or badly quoted record is caught the moment
//! it is fed), then parsed into its declared type by `common::fixup`, which names the
//! field and value of every failure. Also: the silent skip of a header line at offset
//! 0 and of `#` comments with `csv.allow-comments`. Does not own: framing.

use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::csv::reader::Decoder as ArrowCsvDecoder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use regex::Regex;

use super::options::CsvOptions;
use super::split::{SplitError, split_fields};
use crate::common::fixup::{Fix, Fixups};
use crate::common::flush::{Engine, Flusher};
use crate::common::records::Records;
use crate::{Decoded, Decoder, Error, FormatOptions, Result};

/// Smallest row capacity the fast-path decoder is built with.
const MIN_CAPACITY: usize = 1024;

/// Decodes `'format' = 'csv'` records (one line each) into the table's schema.
pub struct CsvDecoder {
    records: Records,
    flusher: Flusher,
    engine: CsvEngine,
    fixups: Fixups,
    options: CsvOptions,
    /// Lower-cased column names, to recognise a header line.
    header: Vec<String>,
}

impl std::fmt::Debug for CsvDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvDecoder")
            .field("buffered", &self.records.len())
            .finish()
    }
}

impl CsvDecoder {
    /// A decoder for the table in `options`; fails on a bad `csv.*` option or an
    /// unsupported column type.
    pub fn new(options: &FormatOptions) -> Result<Self> {
        let csv = CsvOptions::parse(options)?;
        let fixes = options
            .schema
            .fields()
            .iter()
            .map(|f| csv.fix_for(f))
            .collect::<Result<Vec<Fix>>>()?;
        let fixups = Fixups::new(options.schema.clone(), fixes, csv.ignore_parse_errors);
        // arrow-csv's null test: only the literal, when one is set (an empty field is
        // then an empty string); never, otherwise (the fix-ups null empty non-strings).
        let null_pattern = match &csv.null_literal {
            Some(literal) => format!("^{}$", regex::escape(literal)),
            None => "a^".to_string(),
        };
        let null_regex = Regex::new(&null_pattern).map_err(|e| Error::BadOption {
            option: "csv.null-literal".into(),
            message: e.to_string(),
        })?;
        let mut engine = CsvEngine {
            wire: fixups.wire_schema(),
            options: csv.clone(),
            null_regex,
            decoder: None,
            capacity: 0,
            clean: false,
            columns: options.schema.fields().len(),
        };
        engine.start(1)?;
        let header = options
            .schema
            .fields()
            .iter()
            .map(|f| f.name().trim().to_lowercase())
            .collect();
        Ok(CsvDecoder {
            records: Records::new(&options.table),
            flusher: Flusher::default(),
            engine,
            fixups,
            options: csv,
            header,
        })
    }

    /// True when `record` is a header line: its fields are the column names.
    fn is_header(&self, record: &[u8]) -> bool {
        let o = &self.options;
        let Ok(fields) = split_fields(record, o.delimiter, o.quote, o.escape) else {
            return false;
        };
        fields.len() == self.header.len()
            && fields.iter().zip(&self.header).all(|(f, name)| {
                std::str::from_utf8(f).is_ok_and(|f| {
                    let f = f.trim();
                    let f = o
                        .quote
                        .map(char::from)
                        .and_then(|q| f.strip_prefix(q).and_then(|f| f.strip_suffix(q)))
                        .unwrap_or(f);
                    f.trim().to_lowercase() == *name
                })
            })
    }
}

impl Decoder for CsvDecoder {
    fn decode(&mut self, record: &[u8], source: &str, offset: u64) -> Result<()> {
        if self.options.allow_comments && record.first() == Some(&b'#') {
            return Ok(());
        }
        if offset == 0 && self.is_header(record) {
            return Ok(());
        }
        // arrow-csv does not check that text fields are UTF-8 (found by fuzzing: a
        // record like b"\x04\xcd,,\x94" became an invalid string array).
        if let Err(e) = std::str::from_utf8(record) {
            let reason = format!(
                "record is not valid UTF-8 (invalid byte at {})",
                e.valid_up_to()
            );
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

/// arrow-csv's decoder behind the [`Engine`] seam.
struct CsvEngine {
    wire: SchemaRef,
    options: CsvOptions,
    null_regex: Regex,
    decoder: Option<ArrowCsvDecoder>,
    capacity: usize,
    clean: bool,
    columns: usize,
}

impl Engine for CsvEngine {
    fn start(&mut self, rows: usize) -> Result<()> {
        if self.clean && self.decoder.is_some() && self.capacity >= rows {
            return Ok(());
        }
        let capacity = rows.max(MIN_CAPACITY);
        let o = &self.options;
        // arrow-csv cannot switch quoting off: NUL (absent from text) stands in.
        let mut builder = ReaderBuilder::new(self.wire.clone())
            .with_header(false)
            .with_delimiter(o.delimiter)
            .with_quote(o.quote.unwrap_or(0))
            .with_null_regex(self.null_regex.clone())
            .with_batch_size(capacity);
        if let Some(escape) = o.escape {
            builder = builder.with_escape(escape);
        }
        self.decoder = Some(builder.build_decoder());
        self.capacity = capacity;
        self.clean = true;
        Ok(())
    }

    fn feed(&mut self, record: &[u8]) -> bool {
        let Some(decoder) = self.decoder.as_mut() else {
            return false;
        };
        let before = decoder.capacity();
        let ok = matches!(decoder.decode(record), Ok(n) if n == record.len())
            && decoder.capacity() + 1 == before;
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
        if let Err(e) = std::str::from_utf8(record) {
            return format!(
                "record is not valid UTF-8 (invalid byte at {})",
                e.valid_up_to()
            );
        }
        let o = &self.options;
        match split_fields(record, o.delimiter, o.quote, o.escape) {
            Err(SplitError::Unterminated) => "a quoted field is not closed".into(),
            Ok(fields) if fields.len() != self.columns => {
                format!("expected {} fields, found {}", self.columns, fields.len())
            }
            Ok(_) => match error {
                Some(e) => format!("record could not be decoded: {e}"),
                None => "record could not be decoded".into(),
            },
        }
    }
}
