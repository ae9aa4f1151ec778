//! The `json` format's options and its registry entry.
//!
//! Owns: reading and validating `json.*` options (Flink's names and meanings) and the
//! [`JsonFormat`] factory. Does not own: decoding or encoding.

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};

use super::decode::JsonDecoder;
use super::encode::JsonEncoder;
use crate::common::sql_type::sql_type_name;
use crate::common::temporal::TimestampStyle;
use crate::registry::FormatFactory;
use crate::{Decoder, Encoder, Error, FormatOptions, Result};

/// The option keys `json` knows, without the `json.` prefix.
pub(crate) const JSON_OPTION_KEYS: &[&str] = &[
    "fail-on-missing-field",
    "ignore-parse-errors",
    "timestamp-format.standard",
    "encode.decimal-as-plain-number",
    "encode.ignore-null-fields",
    "map-null-key.mode",
    "map-null-key.literal",
];

/// `json.*` options, parsed.
#[derive(Debug, Clone)]
pub(crate) struct JsonOptions {
    pub(crate) fail_on_missing_field: bool,
    pub(crate) ignore_parse_errors: bool,
    pub(crate) timestamp_style: TimestampStyle,
    pub(crate) ignore_null_fields: bool,
}

impl JsonOptions {
    pub(crate) fn parse(options: &FormatOptions) -> Result<Self> {
        let fail_on_missing_field = options.get_bool("json", "fail-on-missing-field", false)?;
        let ignore_parse_errors = options.get_bool("json", "ignore-parse-errors", false)?;
        if fail_on_missing_field && ignore_parse_errors {
            return Err(Error::BadOption {
                option: "json.fail-on-missing-field".into(),
                message: "cannot be 'true' together with 'json.ignore-parse-errors' = 'true'; \
                          set one of them to 'false'"
                    .into(),
            });
        }
        let timestamp_style = match options.get("json", "timestamp-format.standard") {
            None => TimestampStyle::Sql,
            Some(v) => TimestampStyle::parse(v).ok_or_else(|| Error::BadOption {
                option: "json.timestamp-format.standard".into(),
                message: format!("'{v}' is not a timestamp standard; write 'SQL' or 'ISO-8601'"),
            })?,
        };
        options.get_bool("json", "encode.decimal-as-plain-number", false)?;
        let ignore_null_fields = options.get_bool("json", "encode.ignore-null-fields", false)?;
        let mode = options.get("json", "map-null-key.mode").unwrap_or("FAIL");
        if !["FAIL", "DROP", "LITERAL"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mode))
        {
            return Err(Error::BadOption {
                option: "json.map-null-key.mode".into(),
                message: format!("'{mode}' is not a mode; write 'FAIL', 'DROP' or 'LITERAL'"),
            });
        }
        for field in options.schema.fields() {
            check_type(field, field.data_type())?;
        }
        Ok(JsonOptions {
            fail_on_missing_field,
            ignore_parse_errors,
            timestamp_style,
            ignore_null_fields,
        })
    }
}

/// Fails for a type the JSON format does not carry.
fn check_type(column: &Field, data_type: &DataType) -> Result<()> {
    let ok = match data_type {
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
        | DataType::Null => true,
        DataType::List(item) => return check_type(column, item.data_type()),
        DataType::Struct(fields) => {
            return fields
                .iter()
                .try_for_each(|f| check_type(column, f.data_type()));
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 && kv[0].data_type() == &DataType::Utf8 => {
                return check_type(column, kv[1].data_type());
            }
            _ => false,
        },
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::UnsupportedType {
            format: "json".into(),
            column: column.name().clone(),
            data_type: sql_type_name(data_type),
        })
    }
}

/// `'format' = 'json'`: newline-delimited JSON objects, one row each.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonFormat;

impl FormatFactory for JsonFormat {
    fn name(&self) -> &'static str {
        "json"
    }

    fn option_keys(&self) -> &'static [&'static str] {
        JSON_OPTION_KEYS
    }

    fn decoder(&self, options: &FormatOptions) -> Result<Box<dyn Decoder>> {
        Ok(Box::new(JsonDecoder::new(options)?))
    }

    fn encoder(&self, options: &FormatOptions) -> Result<Box<dyn Encoder>> {
        Ok(Box::new(JsonEncoder::new(options)?))
    }
}
