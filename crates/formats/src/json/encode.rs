//! The `json` encoder: Arrow rows into one JSON object per line, as Flink writes them.
//!
//! Owns: [`JsonEncoder`], built on arrow-json's row encoders with overrides for the
//! types Flink writes differently: timestamps (`yyyy-MM-dd HH:mm:ss[.f…]`, or ISO-8601;
//! TIMESTAMP_LTZ with a trailing `Z`), TIME, DATE, and non-finite floats (as the
//! strings `"NaN"`, `"Infinity"`, `"-Infinity"`). Nulls are written as `null` unless
//! `json.encode.ignore-null-fields`. Does not own: where the bytes go.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch, StructArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Field, FieldRef, Float32Type, Float64Type, Time32MillisecondType,
    Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::writer::{EncoderOptions, NullableEncoder, make_encoder};
use datafusion::arrow::json::{Encoder as ArrowEncoder, EncoderFactory};

use super::options::JsonOptions;
use crate::common::temporal::{TimestampStyle, write_date, write_time, write_timestamp};
use crate::{Encoder, FormatOptions, Result};

/// Encodes rows as newline-delimited JSON objects (`'format' = 'json'`).
#[derive(Debug)]
pub struct JsonEncoder {
    options: EncoderOptions,
}

impl JsonEncoder {
    /// An encoder for the table in `options`; fails on a bad `json.*` option.
    pub fn new(options: &FormatOptions) -> Result<Self> {
        let json = JsonOptions::parse(options)?;
        let factory = FlinkEncoders {
            style: json.timestamp_style,
        };
        let options = EncoderOptions::default()
            .with_explicit_nulls(!json.ignore_null_fields)
            .with_encoder_factory(Arc::new(factory));
        Ok(JsonEncoder { options })
    }
}

impl JsonEncoder {
    /// Writes each row of `batch` as one JSON object to `out`, calling `after_row`
    /// after each (to end a line, or to note where the row ends).
    fn rows(
        &self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        mut after_row: impl FnMut(&mut Vec<u8>),
    ) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let array = StructArray::from(batch.clone());
        let field: FieldRef = Arc::new(Field::new_struct(
            "",
            batch.schema().fields().clone(),
            false,
        ));
        let mut encoder = make_encoder(&field, &array, &self.options)?;
        for row in 0..batch.num_rows() {
            encoder.encode(row, out);
            after_row(out);
        }
        Ok(())
    }
}

impl Encoder for JsonEncoder {
    fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        self.rows(batch, out, |out| out.push(b'\n'))
    }

    fn encode_each(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()> {
        self.rows(batch, out, |out| ends.push(out.len()))
    }
}

/// arrow-json encoder overrides for Flink's text forms.
#[derive(Debug)]
struct FlinkEncoders {
    style: TimestampStyle,
}

impl EncoderFactory for FlinkEncoders {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> std::result::Result<Option<NullableEncoder<'a>>, ArrowError> {
        let nulls = array.nulls().cloned();
        let encoder: Box<dyn ArrowEncoder + 'a> = match array.data_type() {
            DataType::Timestamp(unit, tz) => {
                let values: &'a [i64] = match unit {
                    TimeUnit::Second => &array.as_primitive::<TimestampSecondType>().values()[..],
                    TimeUnit::Millisecond => {
                        &array.as_primitive::<TimestampMillisecondType>().values()[..]
                    }
                    TimeUnit::Microsecond => {
                        &array.as_primitive::<TimestampMicrosecondType>().values()[..]
                    }
                    TimeUnit::Nanosecond => {
                        &array.as_primitive::<TimestampNanosecondType>().values()[..]
                    }
                };
                Box::new(TimestampEncoder {
                    values,
                    unit: *unit,
                    style: self.style,
                    zulu: tz.is_some(),
                })
            }
            DataType::Time32(TimeUnit::Second) => time32(
                &array.as_primitive::<Time32SecondType>().values()[..],
                TimeUnit::Second,
            ),
            DataType::Time32(TimeUnit::Millisecond) => time32(
                &array.as_primitive::<Time32MillisecondType>().values()[..],
                TimeUnit::Millisecond,
            ),
            DataType::Time64(TimeUnit::Microsecond) => Box::new(TimeEncoder {
                values: &array.as_primitive::<Time64MicrosecondType>().values()[..],
                unit: TimeUnit::Microsecond,
            }),
            DataType::Time64(TimeUnit::Nanosecond) => Box::new(TimeEncoder {
                values: &array.as_primitive::<Time64NanosecondType>().values()[..],
                unit: TimeUnit::Nanosecond,
            }),
            DataType::Date32 => Box::new(DateEncoder(
                &array.as_primitive::<Date32Type>().values()[..],
            )),
            DataType::Float64 => {
                let values: &'a [f64] = &array.as_primitive::<Float64Type>().values()[..];
                if values.iter().all(|v| v.is_finite()) {
                    return Ok(None);
                }
                Box::new(FloatEncoder(values))
            }
            DataType::Float32 => {
                let values: &'a [f32] = &array.as_primitive::<Float32Type>().values()[..];
                if values.iter().all(|v| v.is_finite()) {
                    return Ok(None);
                }
                Box::new(Float32Encoder(values))
            }
            _ => return Ok(None),
        };
        Ok(Some(NullableEncoder::new(encoder, nulls)))
    }
}

struct TimestampEncoder<'a> {
    values: &'a [i64],
    unit: TimeUnit,
    style: TimestampStyle,
    zulu: bool,
}

impl ArrowEncoder for TimestampEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        out.push(b'"');
        let v = self.values.get(idx).copied().unwrap_or_default();
        write_timestamp(v, self.unit, self.style, self.zulu, out);
        out.push(b'"');
    }
}

struct TimeEncoder<'a, T> {
    values: &'a [T],
    unit: TimeUnit,
}

fn time32<'a>(values: &'a [i32], unit: TimeUnit) -> Box<dyn ArrowEncoder + 'a> {
    Box::new(TimeEncoder { values, unit })
}

impl<T: Copy + Into<i64> + Default> ArrowEncoder for TimeEncoder<'_, T> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        out.push(b'"');
        let v = self.values.get(idx).copied().unwrap_or_default();
        write_time(v.into(), self.unit, out);
        out.push(b'"');
    }
}

struct DateEncoder<'a>(&'a [i32]);

impl ArrowEncoder for DateEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        out.push(b'"');
        write_date(i64::from(self.0.get(idx).copied().unwrap_or_default()), out);
        out.push(b'"');
    }
}

/// Writes a float; non-finite values as the strings Jackson (and so Flink) writes.
fn write_float(v: f64, out: &mut Vec<u8>) {
    let _ = match v {
        v if v.is_nan() => out.write_all(b"\"NaN\""),
        v if v == f64::INFINITY => out.write_all(b"\"Infinity\""),
        v if v == f64::NEG_INFINITY => out.write_all(b"\"-Infinity\""),
        v => write!(out, "{v:?}"),
    };
}

struct FloatEncoder<'a>(&'a [f64]);

impl ArrowEncoder for FloatEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        write_float(self.0.get(idx).copied().unwrap_or_default(), out);
    }
}

struct Float32Encoder<'a>(&'a [f32]);

impl ArrowEncoder for Float32Encoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let v = self.0.get(idx).copied().unwrap_or_default();
        if v.is_finite() {
            let _ = write!(out, "{v:?}");
        } else {
            write_float(f64::from(v), out);
        }
    }
}
