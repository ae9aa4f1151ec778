//! Arrow rows to Avro datums, one per row, in the table's Avro schema.

use std::collections::HashMap;

use apache_avro::schema::{InnerDecimalSchema, Name};
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{Decimal, Schema as AvroSchema};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::record_batch::RecordBatch;

use super::schema::TableSchema;
use crate::common::messages::encode_rows;
use crate::{Encoder, Error, Result};

/// The `avro` encoder.
pub(crate) struct AvroEncoder {
    avro: TableSchema,
}

impl AvroEncoder {
    pub(crate) fn new(avro: TableSchema) -> Self {
        AvroEncoder { avro }
    }

    fn write_rows(
        &self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ends: Option<&mut Vec<usize>>,
    ) -> Result<()> {
        let writer = GenericDatumWriter::builder(&self.avro.avro)
            .build()
            .map_err(|e| internal(format!("the Avro schema cannot be written with: {e}")))?;
        encode_rows(batch, out, ends, |rows, row, out| {
            let v = value(rows, row, &self.avro.avro, &self.avro.names)
                .map_err(|m| internal(format!("row {row}: {m}")))?;
            writer
                .write_value_ref(out, &v)
                .map_err(|e| internal(format!("row {row}: {e}")))?;
            Ok(())
        })
    }
}

fn internal(message: String) -> Error {
    Error::BadOption {
        option: "format".into(),
        message: format!("avro: {message}"),
    }
}

impl Encoder for AvroEncoder {
    fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        // A binary format: each datum is followed by nothing (message connectors frame
        // with `encode_each`).
        self.write_rows(batch, out, None)
    }

    fn encode_each(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()> {
        self.write_rows(batch, out, Some(ends))
    }
}

type Names = HashMap<Name, AvroSchema>;

/// Big-endian two's complement bytes of `v`, shortest form (or exactly `size` bytes).
fn decimal_bytes(v: i128, size: Option<usize>) -> std::result::Result<Vec<u8>, String> {
    let full = v.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (full[start], full[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    let short = &full[start..];
    match size {
        None => Ok(short.to_vec()),
        Some(n) if n >= short.len() => {
            let fill = if v < 0 { 0xff } else { 0 };
            let mut out = vec![fill; n - short.len()];
            out.extend_from_slice(short);
            Ok(out)
        }
        Some(n) => Err(format!("decimal {v} does not fit fixed({n})")),
    }
}

/// A timestamp column's value at `row` in units of `per_second`.
pub(crate) fn timestamp_at(col: &dyn Array, row: usize, per_second: i64) -> Option<i64> {
    let (v, unit_per_second) = match col.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            (col.as_primitive::<TimestampSecondType>().value(row), 1)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => (
            col.as_primitive::<TimestampMillisecondType>().value(row),
            1_000,
        ),
        DataType::Timestamp(TimeUnit::Microsecond, _) => (
            col.as_primitive::<TimestampMicrosecondType>().value(row),
            1_000_000,
        ),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => (
            col.as_primitive::<TimestampNanosecondType>().value(row),
            1_000_000_000,
        ),
        _ => return None,
    };
    if per_second >= unit_per_second {
        v.checked_mul(per_second / unit_per_second)
    } else {
        Some(v.div_euclid(unit_per_second / per_second))
    }
}

pub(crate) fn int_at(col: &dyn Array, row: usize) -> Option<i64> {
    Some(match col.data_type() {
        DataType::Int8 => i64::from(col.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => i64::from(col.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => i64::from(col.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => col.as_primitive::<Int64Type>().value(row),
        DataType::Date32 => i64::from(col.as_primitive::<Date32Type>().value(row)),
        _ => return None,
    })
}

/// Time of day in units of `per_second`.
pub(crate) fn time_at(col: &dyn Array, row: usize, per_second: i64) -> Option<i64> {
    let (v, unit) = match col.data_type() {
        DataType::Time32(TimeUnit::Second) => (
            i64::from(col.as_primitive::<Time32SecondType>().value(row)),
            1,
        ),
        DataType::Time32(_) => (
            i64::from(col.as_primitive::<Time32MillisecondType>().value(row)),
            1_000,
        ),
        DataType::Time64(TimeUnit::Nanosecond) => (
            col.as_primitive::<Time64NanosecondType>().value(row),
            1_000_000_000,
        ),
        DataType::Time64(_) => (
            col.as_primitive::<Time64MicrosecondType>().value(row),
            1_000_000,
        ),
        _ => return None,
    };
    if per_second >= unit {
        v.checked_mul(per_second / unit)
    } else {
        Some(v / (unit / per_second))
    }
}

pub(crate) fn string_at(col: &dyn Array, row: usize) -> Option<&str> {
    match col.data_type() {
        DataType::Utf8 => Some(col.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Some(col.as_string::<i64>().value(row)),
        DataType::Utf8View => Some(col.as_string_view().value(row)),
        _ => None,
    }
}

pub(crate) fn bytes_at(col: &dyn Array, row: usize) -> Option<&[u8]> {
    match col.data_type() {
        DataType::Binary => Some(col.as_binary::<i32>().value(row)),
        DataType::LargeBinary => Some(col.as_binary::<i64>().value(row)),
        DataType::BinaryView => Some(col.as_binary_view().value(row)),
        _ => None,
    }
}

/// The value of `col` at `row` in Avro schema `schema`.
fn value(
    col: &dyn Array,
    row: usize,
    schema: &AvroSchema,
    names: &Names,
) -> std::result::Result<Value, String> {
    let mismatch = || {
        format!(
            "a {} column cannot be written as Avro {:?}",
            col.data_type(),
            schema
        )
    };
    if let AvroSchema::Ref { name } = schema {
        let s = names
            .get(name)
            .ok_or_else(|| format!("unknown Avro type {name:?}"))?;
        return value(col, row, s, names);
    }
    if let AvroSchema::Union(u) = schema {
        let variants = u.variants();
        if col.is_null(row) {
            return variants
                .iter()
                .position(|s| matches!(s, AvroSchema::Null))
                .map(|i| Value::Union(i as u32, Box::new(Value::Null)))
                .ok_or_else(|| "NULL in a field whose Avro type is not nullable".to_string());
        }
        let mut last = mismatch();
        for (i, s) in variants.iter().enumerate() {
            if matches!(s, AvroSchema::Null) {
                continue;
            }
            match value(col, row, s, names) {
                Ok(v) => return Ok(Value::Union(i as u32, Box::new(v))),
                Err(e) => last = e,
            }
        }
        return Err(last);
    }
    if col.is_null(row) {
        return if matches!(schema, AvroSchema::Null) {
            Ok(Value::Null)
        } else {
            Err("NULL in a field whose Avro type is not nullable".into())
        };
    }
    Ok(match schema {
        AvroSchema::Boolean => match col.as_boolean_opt() {
            Some(b) => Value::Boolean(b.value(row)),
            None => return Err(mismatch()),
        },
        AvroSchema::Int => {
            let v = int_at(col, row).ok_or_else(mismatch)?;
            Value::Int(i32::try_from(v).map_err(|_| format!("{v} does not fit Avro int"))?)
        }
        AvroSchema::Long => match int_at(col, row) {
            Some(v) => Value::Long(v),
            None => Value::Long(timestamp_at(col, row, 1_000).ok_or_else(mismatch)?),
        },
        AvroSchema::Float => match col.data_type() {
            DataType::Float32 => Value::Float(col.as_primitive::<Float32Type>().value(row)),
            DataType::Float64 => Value::Float(col.as_primitive::<Float64Type>().value(row) as f32),
            _ => return Err(mismatch()),
        },
        AvroSchema::Double => match col.data_type() {
            DataType::Float32 => {
                Value::Double(f64::from(col.as_primitive::<Float32Type>().value(row)))
            }
            DataType::Float64 => Value::Double(col.as_primitive::<Float64Type>().value(row)),
            _ => return Err(mismatch()),
        },
        AvroSchema::String => Value::String(string_at(col, row).ok_or_else(mismatch)?.to_string()),
        AvroSchema::Bytes => Value::Bytes(bytes_at(col, row).ok_or_else(mismatch)?.to_vec()),
        AvroSchema::Fixed(f) => {
            let b = bytes_at(col, row).ok_or_else(mismatch)?;
            if b.len() != f.size {
                return Err(format!("{} bytes do not fit fixed({})", b.len(), f.size));
            }
            Value::Fixed(f.size, b.to_vec())
        }
        AvroSchema::Enum(e) => {
            let s = string_at(col, row).ok_or_else(mismatch)?;
            let i = e
                .symbols
                .iter()
                .position(|x| x == s)
                .ok_or_else(|| format!("'{s}' is not a symbol of enum {:?}", e.name))?;
            Value::Enum(i as u32, s.to_string())
        }
        AvroSchema::Decimal(d) => {
            let DataType::Decimal128(_, scale) = col.data_type() else {
                return Err(mismatch());
            };
            if usize::try_from(*scale).ok() != Some(d.scale) {
                return Err(format!(
                    "scale {scale} of the column is not the schema's scale {}",
                    d.scale
                ));
            }
            let v = col.as_primitive::<Decimal128Type>().value(row);
            let size = match &d.inner {
                InnerDecimalSchema::Fixed(f) => Some(f.size),
                InnerDecimalSchema::Bytes => None,
            };
            Value::Decimal(Decimal::from(decimal_bytes(v, size)?))
        }
        AvroSchema::Date => Value::Date(
            i32::try_from(int_at(col, row).ok_or_else(mismatch)?)
                .map_err(|_| "date out of range".to_string())?,
        ),
        AvroSchema::TimeMillis => Value::TimeMillis(
            i32::try_from(time_at(col, row, 1_000).ok_or_else(mismatch)?)
                .map_err(|_| "time out of range".to_string())?,
        ),
        AvroSchema::TimeMicros => {
            Value::TimeMicros(time_at(col, row, 1_000_000).ok_or_else(mismatch)?)
        }
        AvroSchema::TimestampMillis => {
            Value::TimestampMillis(timestamp_at(col, row, 1_000).ok_or_else(mismatch)?)
        }
        AvroSchema::TimestampMicros => {
            Value::TimestampMicros(timestamp_at(col, row, 1_000_000).ok_or_else(mismatch)?)
        }
        AvroSchema::TimestampNanos => {
            Value::TimestampNanos(timestamp_at(col, row, 1_000_000_000).ok_or_else(mismatch)?)
        }
        AvroSchema::LocalTimestampMillis => {
            Value::LocalTimestampMillis(timestamp_at(col, row, 1_000).ok_or_else(mismatch)?)
        }
        AvroSchema::LocalTimestampMicros => {
            Value::LocalTimestampMicros(timestamp_at(col, row, 1_000_000).ok_or_else(mismatch)?)
        }
        AvroSchema::LocalTimestampNanos => {
            Value::LocalTimestampNanos(timestamp_at(col, row, 1_000_000_000).ok_or_else(mismatch)?)
        }
        AvroSchema::Array(a) => {
            let list = col.as_list_opt::<i32>().ok_or_else(mismatch)?;
            let items = list.value(row);
            let mut out = Vec::with_capacity(items.len());
            for i in 0..items.len() {
                out.push(value(items.as_ref(), i, &a.items, names)?);
            }
            Value::Array(out)
        }
        AvroSchema::Map(m) => {
            let map = col.as_map_opt().ok_or_else(mismatch)?;
            let entries = map.value(row);
            let keys = entries.column(0);
            let vals = entries.column(1);
            let mut out = HashMap::with_capacity(entries.len());
            for i in 0..entries.len() {
                let k = string_at(keys.as_ref(), i).ok_or_else(mismatch)?;
                out.insert(k.to_string(), value(vals.as_ref(), i, &m.types, names)?);
            }
            Value::Map(out)
        }
        AvroSchema::Record(r) => {
            let s = col.as_struct_opt().ok_or_else(mismatch)?;
            let mut out = Vec::with_capacity(r.fields.len());
            for f in &r.fields {
                let v = match s.column_by_name(&f.name) {
                    Some(c) => value(c.as_ref(), row, &f.schema, names)
                        .map_err(|m| format!("field '{}': {m}", f.name))?,
                    None => absent(&f.schema, &f.name)?,
                };
                out.push((f.name.clone(), v));
            }
            Value::Record(out)
        }
        _ => return Err(mismatch()),
    })
}

/// The value of a schema field the table has no column for: NULL where allowed.
fn absent(schema: &AvroSchema, name: &str) -> std::result::Result<Value, String> {
    match schema {
        AvroSchema::Null => Ok(Value::Null),
        AvroSchema::Union(u) => u
            .variants()
            .iter()
            .position(|s| matches!(s, AvroSchema::Null))
            .map(|i| Value::Union(i as u32, Box::new(Value::Null)))
            .ok_or_else(|| format!("the table has no column for non-null field '{name}'")),
        _ => Err(format!(
            "the table has no column for non-null field '{name}'"
        )),
    }
}
