//! The `csv` encoder: Arrow rows into CSV lines, as Flink writes them.
//!
//! Owns: [`CsvEncoder`]: one line per row, fields quoted per RFC 4180 when they hold
//! the delimiter, the quote or a line break (quotes doubled, or escaped with
//! `csv.escape-character`), nulls as `csv.null-literal` (empty by default), timestamps
//! in the SQL form, arrays and rows joined with `csv.array-element-delimiter`, and no
//! header (as Flink). Does not own: where the bytes go.

use std::io::Write;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};

use super::options::CsvOptions;
use crate::common::temporal::{TimestampStyle, write_date, write_time, write_timestamp};
use crate::{Encoder, FormatOptions, Result};

/// Encodes rows as CSV lines (`'format' = 'csv'`).
#[derive(Debug)]
pub struct CsvEncoder {
    options: CsvOptions,
    scratch: Vec<u8>,
}

impl CsvEncoder {
    /// An encoder for the table in `options`; fails on a bad `csv.*` option or an
    /// unsupported column type.
    pub fn new(options: &FormatOptions) -> Result<Self> {
        Ok(CsvEncoder {
            options: CsvOptions::parse(options)?,
            scratch: Vec::new(),
        })
    }

    fn write_field(&self, value: &[u8], out: &mut Vec<u8>) {
        let o = &self.options;
        let Some(quote) = o.quote else {
            out.extend_from_slice(value);
            return;
        };
        let needs_quotes = value.iter().any(|&b| {
            b == o.delimiter || b == quote || b == b'\n' || b == b'\r' || Some(b) == o.escape
        }) || value.first() == Some(&b'#');
        if !needs_quotes {
            out.extend_from_slice(value);
            return;
        }
        out.push(quote);
        for &b in value {
            if b == quote || Some(b) == o.escape {
                out.push(o.escape.unwrap_or(quote));
            }
            out.push(b);
        }
        out.push(quote);
    }
}

impl Encoder for CsvEncoder {
    fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        let mut scratch = std::mem::take(&mut self.scratch);
        for row in 0..batch.num_rows() {
            for (i, column) in batch.columns().iter().enumerate() {
                if i > 0 {
                    out.push(self.options.delimiter);
                }
                if column.is_null(row) {
                    if let Some(literal) = &self.options.null_literal {
                        out.extend_from_slice(literal.as_bytes());
                    }
                    continue;
                }
                scratch.clear();
                write_value(
                    column.as_ref(),
                    row,
                    self.options.array_delimiter,
                    &mut scratch,
                );
                match (
                    self.options.quote,
                    scratch.is_empty() && batch.num_columns() == 1,
                ) {
                    // An empty line would be skipped by the reader: quote the empty value.
                    (Some(q), true) => out.extend_from_slice(&[q, q]),
                    _ => self.write_field(&scratch, out),
                }
            }
            out.push(b'\n');
        }
        self.scratch = scratch;
        Ok(())
    }
}

/// Writes the text of one non-null value.
fn write_value(array: &dyn Array, row: usize, element_delimiter: u8, out: &mut Vec<u8>) {
    macro_rules! display {
        ($t:ty) => {{
            let _ = write!(out, "{}", array.as_primitive::<$t>().value(row));
        }};
    }
    let sql = TimestampStyle::Sql;
    match array.data_type() {
        DataType::Utf8 => out.extend_from_slice(array.as_string::<i32>().value(row).as_bytes()),
        DataType::Boolean => {
            let v = array.as_boolean().value(row);
            out.extend_from_slice(if v { b"true" } else { b"false" });
        }
        DataType::Int8 => display!(Int8Type),
        DataType::Int16 => display!(Int16Type),
        DataType::Int32 => display!(Int32Type),
        DataType::Int64 => display!(Int64Type),
        DataType::Float32 => match array.as_primitive::<Float32Type>().value(row) {
            v if v.is_finite() => {
                let _ = write!(out, "{v}");
            }
            v => write_float(f64::from(v), out),
        },
        DataType::Float64 => write_float(array.as_primitive::<Float64Type>().value(row), out),
        DataType::Decimal128(_, scale) => write_decimal(
            array.as_primitive::<Decimal128Type>().value(row),
            *scale,
            out,
        ),
        DataType::Date32 => write_date(
            i64::from(array.as_primitive::<Date32Type>().value(row)),
            out,
        ),
        DataType::Time32(TimeUnit::Second) => write_time(
            i64::from(array.as_primitive::<Time32SecondType>().value(row)),
            TimeUnit::Second,
            out,
        ),
        DataType::Time32(_) => write_time(
            i64::from(array.as_primitive::<Time32MillisecondType>().value(row)),
            TimeUnit::Millisecond,
            out,
        ),
        DataType::Time64(TimeUnit::Microsecond) => write_time(
            array.as_primitive::<Time64MicrosecondType>().value(row),
            TimeUnit::Microsecond,
            out,
        ),
        DataType::Time64(_) => write_time(
            array.as_primitive::<Time64NanosecondType>().value(row),
            TimeUnit::Nanosecond,
            out,
        ),
        DataType::Timestamp(unit, tz) => {
            let v = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
                TimeUnit::Millisecond => {
                    array.as_primitive::<TimestampMillisecondType>().value(row)
                }
                TimeUnit::Microsecond => {
                    array.as_primitive::<TimestampMicrosecondType>().value(row)
                }
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
            };
            write_timestamp(v, *unit, sql, tz.is_some(), out);
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let values = list.value(row);
            for i in 0..values.len() {
                if i > 0 {
                    out.push(element_delimiter);
                }
                if values.is_valid(i) {
                    write_value(values.as_ref(), i, element_delimiter, out);
                }
            }
        }
        DataType::Struct(_) => {
            let row_array = array.as_struct();
            for (i, child) in row_array.columns().iter().enumerate() {
                if i > 0 {
                    out.push(element_delimiter);
                }
                if child.is_valid(row) {
                    write_value(child.as_ref(), row, element_delimiter, out);
                }
            }
        }
        other => {
            let _ = write!(out, "<{other}>");
        }
    }
}

fn write_float(v: f64, out: &mut Vec<u8>) {
    let _ = match v {
        v if v.is_nan() => out.write_all(b"NaN"),
        v if v == f64::INFINITY => out.write_all(b"Infinity"),
        v if v == f64::NEG_INFINITY => out.write_all(b"-Infinity"),
        v => write!(out, "{v}"),
    };
}

/// Writes an unscaled decimal as plain digits (`-12.30` for 1230, scale 2).
pub(crate) fn write_decimal(value: i128, scale: i8, out: &mut Vec<u8>) {
    if scale <= 0 {
        let _ = write!(out, "{value}");
        for _ in 0..scale.unsigned_abs() {
            out.push(b'0');
        }
        return;
    }
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    if value < 0 {
        out.push(b'-');
    }
    if digits.len() <= scale {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
        out.extend_from_slice(digits.as_bytes());
    } else {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(int.as_bytes());
        out.push(b'.');
        out.extend_from_slice(frac.as_bytes());
    }
}
