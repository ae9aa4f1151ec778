//! Arrow columns as PostgreSQL array parameters: a batch goes to the server as one
//! array per column, unnested there (`UNNEST($1::int8[], $2::text[], …)`), so a write
//! of any size is one round trip with no SQL text built from data.
//!
//! Owns: which array type carries each Arrow type, and the conversion.
//! Does not own: the statements (`sql.rs`) or the casts to the table's own types.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use tokio_postgres::types::ToSql;

use crate::Result;

/// A value that can be bound to a statement parameter.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// The array type a column of `dt` is sent as, or `None` when the sink cannot write
/// it (nested types, intervals).
pub(crate) fn wire_type(dt: &DataType) -> Option<&'static str> {
    Some(match dt {
        DataType::Boolean => "bool",
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => "int8",
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "float8",
        DataType::Timestamp(_, None) => "timestamp",
        DataType::Timestamp(_, Some(_)) => "timestamptz",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea",
        // Sent as text and cast by the server to the column's type.
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text",
        DataType::UInt64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..)
        | DataType::Time32(_)
        | DataType::Time64(_) => "text",
        _ => return None,
    })
}

/// Column `col` as an array parameter of [`wire_type`]'s type.
pub(crate) fn column_param(col: &ArrayRef) -> Result<Param> {
    let dt = col.data_type();
    Ok(match dt {
        DataType::Boolean => {
            let a = col.as_boolean();
            Box::new(a.iter().collect::<Vec<Option<bool>>>())
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let c = cast(col, &DataType::Float64)?;
            Box::new(c.as_primitive::<Float64Type>().iter().collect::<Vec<_>>())
        }
        DataType::Timestamp(unit, tz) => {
            let c = if *unit == TimeUnit::Microsecond {
                Arc::clone(col)
            } else {
                cast(col, &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))?
            };
            let micros = c.as_primitive::<TimestampMicrosecondType>();
            if tz.is_some() {
                let v: Vec<Option<DateTime<Utc>>> = micros
                    .iter()
                    .map(|m| m.and_then(DateTime::from_timestamp_micros))
                    .collect();
                Box::new(v)
            } else {
                let v: Vec<Option<NaiveDateTime>> = micros
                    .iter()
                    .map(|m| {
                        m.and_then(DateTime::from_timestamp_micros)
                            .map(|d| d.naive_utc())
                    })
                    .collect();
                Box::new(v)
            }
        }
        DataType::Date32 | DataType::Date64 => {
            let c = cast(col, &DataType::Date32)?;
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
            let v: Vec<Option<NaiveDate>> = c
                .as_primitive::<Date32Type>()
                .iter()
                .map(|d| d.and_then(|d| epoch.checked_add_signed(chrono::Duration::days(d.into()))))
                .collect();
            Box::new(v)
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            let c = cast(col, &DataType::Binary)?;
            let v: Vec<Option<Vec<u8>>> = c
                .as_binary::<i32>()
                .iter()
                .map(|b| b.map(<[u8]>::to_vec))
                .collect();
            Box::new(v)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let c = cast(col, &DataType::Utf8)?;
            let v: Vec<Option<String>> = c
                .as_string::<i32>()
                .iter()
                .map(|s| s.map(str::to_string))
                .collect();
            Box::new(v)
        }
        dt if wire_type(dt) == Some("int8") => {
            let c = cast(col, &DataType::Int64)?;
            Box::new(c.as_primitive::<Int64Type>().iter().collect::<Vec<_>>())
        }
        _ => {
            // Decimals, times, unsigned 64-bit: their text, cast by the server.
            let f = ArrayFormatter::try_new(col.as_ref(), &FormatOptions::default())?;
            let v: Vec<Option<String>> = (0..col.len())
                .map(|i| col.is_valid(i).then(|| f.value(i).to_string()))
                .collect();
            Box::new(v)
        }
    })
}
