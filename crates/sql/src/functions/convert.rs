//! Flink's string/number to time conversions: `TO_TIMESTAMP`,
//! `TO_TIMESTAMP_LTZ`, `TO_DATE` and `UNIX_TIMESTAMP`.
//!
//! Unparseable text gives NULL, except `UNIX_TIMESTAMP(str)`, which returns
//! `Long.MIN_VALUE` (-9223372036854775808) exactly as Flink documents. An
//! offset written in the text (`Z`, `+08:00`, a `Z`/`X` pattern letter)
//! converts the value to UTC; without one the text is read as UTC.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{Datelike, NaiveDateTime, TimeDelta};
use datafusion::arrow::array::{Date32Array, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

use super::args::{
    Floats, Ints, PatternLookup, Strs, check_arity, finish, float_type, int_type, output_rows,
    string_type,
};
use super::datetime::{int64s, to_millis};
use super::format::JavaFormat;
use super::parse::{Parsed, parse_default};
use super::udf::{FlinkUdf, FnState};

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
const UNIX_EPOCH_DAY_CE: i32 = 719_163;

fn coerce_text_and_format(func: &str, t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity(func, t.len(), 1, 2)?;
    Ok(t.iter().map(string_type).collect())
}

/// Parses row `i` of `text` with the optional pattern column `formats`.
fn parse_row(
    text: &Strs<'_>,
    formats: Option<&Strs<'_>>,
    lookup: &mut PatternLookup<'_, JavaFormat>,
    i: usize,
) -> Option<Parsed> {
    let s = text.get(i)?;
    match formats {
        None => parse_default(s),
        Some(f) => lookup.get(f.get(i)?, JavaFormat::new)?.parse(s),
    }
}

/// The UTC instant of a parse result (its offset applied).
fn utc((dt, off): Parsed) -> Option<NaiveDateTime> {
    dt.checked_sub_signed(TimeDelta::seconds(i64::from(off.unwrap_or(0))))
}

/// Parses every row to an optional UTC date-time.
fn parse_rows(
    state: &FnState,
    args: &ScalarFunctionArgs,
    rows: usize,
) -> Result<Vec<Option<NaiveDateTime>>> {
    let text = Strs::new(&args.args[0])?;
    let formats = args.args.get(1).map(Strs::new).transpose()?;
    let mut lookup = PatternLookup::new(&state.formats);
    Ok((0..rows)
        .map(|i| parse_row(&text, formats.as_ref(), &mut lookup, i).and_then(utc))
        .collect())
}

/// `TO_TIMESTAMP(str [, pattern])` → `TIMESTAMP(3)`.
pub(crate) fn to_timestamp() -> FlinkUdf {
    FlinkUdf::new(
        "to_timestamp",
        |t| coerce_text_and_format("TO_TIMESTAMP", t),
        |_| Ok(DataType::Timestamp(TimeUnit::Millisecond, None)),
        invoke_to_timestamp,
    )
}

fn invoke_to_timestamp(state: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let values = parse_rows(state, args, rows)?;
    let out: TimestampMillisecondArray = values.iter().map(|v| v.as_ref().map(to_millis)).collect();
    finish(Arc::new(out), scalar)
}

/// `TO_DATE(str [, pattern])` → `DATE`.
pub(crate) fn to_date() -> FlinkUdf {
    FlinkUdf::new(
        "to_date",
        |t| coerce_text_and_format("TO_DATE", t),
        |_| Ok(DataType::Date32),
        invoke_to_date,
    )
}

fn invoke_to_date(state: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let text = Strs::new(&args.args[0])?;
    let formats = args.args.get(1).map(Strs::new).transpose()?;
    let mut lookup = PatternLookup::new(&state.formats);
    let out: Date32Array = (0..rows)
        .map(|i| parse_row(&text, formats.as_ref(), &mut lookup, i))
        .map(|p| p.map(|(dt, _)| dt.date().num_days_from_ce() - UNIX_EPOCH_DAY_CE))
        .collect();
    finish(Arc::new(out), scalar)
}

/// `UNIX_TIMESTAMP()` (now) or `UNIX_TIMESTAMP(str [, pattern])`, in seconds.
pub(crate) fn unix_timestamp() -> FlinkUdf {
    FlinkUdf::new(
        "unix_timestamp",
        coerce_unix_timestamp,
        |_| Ok(DataType::Int64),
        invoke_unix_timestamp,
    )
    .volatile()
}

fn coerce_unix_timestamp(t: &[DataType]) -> Result<Vec<DataType>> {
    if t.is_empty() {
        return Ok(vec![]);
    }
    coerce_text_and_format("UNIX_TIMESTAMP", t)
}

fn invoke_unix_timestamp(state: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    if args.args.is_empty() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        return Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(
            i64::try_from(now).unwrap_or(i64::MAX),
        ))));
    }
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let text = Strs::new(&args.args[0])?;
    let values = parse_rows(state, args, rows)?;
    let secs = values.iter().enumerate().map(|(i, v)| {
        text.get(i)
            .map(|_| v.map_or(i64::MIN, |dt| dt.and_utc().timestamp()))
    });
    finish(Arc::new(int64s(secs)), scalar)
}

/// `TO_TIMESTAMP_LTZ(n, precision)` (precision 0, 3, 6 or 9; default 3) or
/// `TO_TIMESTAMP_LTZ(str [, pattern])` → `TIMESTAMP_LTZ(3)` in UTC.
pub(crate) fn to_timestamp_ltz() -> FlinkUdf {
    FlinkUdf::new(
        "to_timestamp_ltz",
        coerce_ltz,
        |_| {
            Ok(DataType::Timestamp(
                TimeUnit::Millisecond,
                Some("UTC".into()),
            ))
        },
        invoke_ltz,
    )
}

fn coerce_ltz(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("TO_TIMESTAMP_LTZ", t.len(), 1, 2)?;
    match &t[0] {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            coerce_text_and_format("TO_TIMESTAMP_LTZ", t)
        }
        first => {
            let value = if first.is_integer() || first.is_null() {
                DataType::Int64
            } else {
                float_type("TO_TIMESTAMP_LTZ", first)?
            };
            let mut out = vec![value];
            if let Some(p) = t.get(1) {
                out.push(int_type("TO_TIMESTAMP_LTZ", p)?);
            }
            Ok(out)
        }
    }
}

/// Milliseconds per unit of `precision`, as a multiplier (`None` if unsupported).
fn millis_factor(precision: i64) -> Option<f64> {
    match precision {
        0 => Some(1000.0),
        3 => Some(1.0),
        6 => Some(1e-3),
        9 => Some(1e-6),
        _ => None,
    }
}

fn invoke_ltz(state: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let millis: Vec<Option<i64>> = match args.args[0].data_type() {
        DataType::Int64 | DataType::Float64 | DataType::Null => {
            let precision = match args.args.get(1) {
                Some(p) => Ints::new(p)?,
                None => Ints::Scalar(Some(3)),
            };
            let factor = |i: usize| precision.get(i).and_then(millis_factor);
            if args.args[0].data_type() == DataType::Float64 {
                let v = Floats::new(&args.args[0])?;
                (0..rows)
                    .map(|i| float_millis(v.get(i)? * factor(i)?))
                    .collect()
            } else {
                let v = Ints::new(&args.args[0])?;
                (0..rows)
                    .map(|i| int_millis(v.get(i)?, precision.get(i)?))
                    .collect()
            }
        }
        _ => parse_rows(state, args, rows)?
            .iter()
            .map(|v| v.as_ref().map(to_millis))
            .collect(),
    };
    let out = TimestampMillisecondArray::from(millis).with_timezone("UTC");
    finish(Arc::new(out), scalar)
}

fn float_millis(ms: f64) -> Option<i64> {
    (ms.is_finite() && ms.abs() < 9.2e18).then_some(ms.trunc() as i64)
}

fn int_millis(v: i64, precision: i64) -> Option<i64> {
    match precision {
        0 => v.checked_mul(1000),
        3 => Some(v),
        6 => Some(v.div_euclid(1000)),
        9 => Some(v.div_euclid(1_000_000)),
        _ => None,
    }
}
