//! The `csv` format's options and its registry entry.
//!
//! Owns: reading and validating `csv.*` options (Flink's names and meanings), the
//! wire schema plan for CSV (every column read as text, then fixed up), and the
//! [`CsvFormat`] factory. Does not own: decoding or encoding.

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};

use super::decode::CsvDecoder;
use super::encode::CsvEncoder;
use crate::common::fixup::Fix;
use crate::common::sql_type::sql_type_name;
use crate::registry::FormatFactory;
use crate::{Decoder, Encoder, Error, FormatOptions, Result};

/// The option keys `csv` knows, without the `csv.` prefix.
pub(crate) const CSV_OPTION_KEYS: &[&str] = &[
    "field-delimiter",
    "quote-character",
    "disable-quote-character",
    "allow-comments",
    "ignore-parse-errors",
    "array-element-delimiter",
    "escape-character",
    "null-literal",
    "write-bigdecimal-in-scientific-notation",
];

/// `csv.*` options, parsed.
#[derive(Debug, Clone)]
pub(crate) struct CsvOptions {
    pub(crate) delimiter: u8,
    /// `None` with `csv.disable-quote-character`.
    pub(crate) quote: Option<u8>,
    pub(crate) escape: Option<u8>,
    pub(crate) allow_comments: bool,
    pub(crate) ignore_parse_errors: bool,
    pub(crate) array_delimiter: u8,
    pub(crate) null_literal: Option<String>,
}

/// One ASCII character option; `\t` may be written as backslash-t.
fn char_option(options: &FormatOptions, key: &str, default: Option<u8>) -> Result<Option<u8>> {
    let Some(v) = options.get("csv", key) else {
        return Ok(default);
    };
    let byte = match v {
        "\\t" => Some(b'\t'),
        s if s.len() == 1 && s.is_ascii() => s.bytes().next(),
        _ => None,
    };
    match byte {
        Some(b) if b != b'\n' && b != b'\r' => Ok(Some(b)),
        _ => Err(Error::BadOption {
            option: format!("csv.{key}"),
            message: format!("'{v}' is not a single ASCII character; write e.g. ',' or '\\t'"),
        }),
    }
}

impl CsvOptions {
    pub(crate) fn parse(options: &FormatOptions) -> Result<Self> {
        let delimiter = char_option(options, "field-delimiter", Some(b','))?.unwrap_or(b',');
        let mut quote = char_option(options, "quote-character", Some(b'"'))?;
        if options.get_bool("csv", "disable-quote-character", false)? {
            if options.get("csv", "quote-character").is_some() {
                return Err(Error::BadOption {
                    option: "csv.quote-character".into(),
                    message: "cannot be set together with 'csv.disable-quote-character' = 'true'"
                        .into(),
                });
            }
            quote = None;
        }
        let escape = char_option(options, "escape-character", None)?;
        let array_delimiter =
            char_option(options, "array-element-delimiter", Some(b';'))?.unwrap_or(b';');
        if quote == Some(delimiter) || escape == Some(delimiter) {
            return Err(Error::BadOption {
                option: "csv.field-delimiter".into(),
                message: "must differ from the quote and escape characters".into(),
            });
        }
        options.get_bool("csv", "write-bigdecimal-in-scientific-notation", true)?;
        let parsed = CsvOptions {
            delimiter,
            quote,
            escape,
            allow_comments: options.get_bool("csv", "allow-comments", false)?,
            ignore_parse_errors: options.get_bool("csv", "ignore-parse-errors", false)?,
            array_delimiter,
            null_literal: options.get("csv", "null-literal").map(str::to_string),
        };
        for field in options.schema.fields() {
            parsed.fix_for(field)?;
        }
        Ok(parsed)
    }

    /// How a column is read: as text, then parsed, split, or kept.
    pub(crate) fn fix_for(&self, field: &Field) -> Result<Fix> {
        let unsupported = || Error::UnsupportedType {
            format: "csv".into(),
            column: field.name().clone(),
            data_type: sql_type_name(field.data_type()),
        };
        match field.data_type() {
            DataType::Utf8 => Ok(Fix::Keep),
            // Elements declared NOT NULL are not supported: a blank element is NULL.
            DataType::List(item) if is_scalar(item.data_type()) && item.is_nullable() => {
                Ok(Fix::SplitList(self.array_delimiter))
            }
            DataType::Struct(children) if children.iter().all(|c| is_scalar(c.data_type())) => {
                Ok(Fix::SplitRow(self.array_delimiter))
            }
            t if is_scalar(t) => Ok(Fix::Parse),
            _ => Err(unsupported()),
        }
    }
}

/// Types CSV carries in one field.
pub(crate) fn is_scalar(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(_, _)
            | DataType::Utf8
            | DataType::Date32
            | DataType::Time32(TimeUnit::Second | TimeUnit::Millisecond)
            | DataType::Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond)
            | DataType::Timestamp(_, _)
    )
}

/// `'format' = 'csv'`: one row per line, RFC 4180 quoting, no header written.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvFormat;

impl FormatFactory for CsvFormat {
    fn name(&self) -> &'static str {
        "csv"
    }

    fn option_keys(&self) -> &'static [&'static str] {
        CSV_OPTION_KEYS
    }

    fn decoder(&self, options: &FormatOptions) -> Result<Box<dyn Decoder>> {
        Ok(Box::new(CsvDecoder::new(options)?))
    }

    fn encoder(&self, options: &FormatOptions) -> Result<Box<dyn Encoder>> {
        Ok(Box::new(CsvEncoder::new(options)?))
    }
}
