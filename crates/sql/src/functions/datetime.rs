//! Flink's date/time field extractors (`YEAR`, `QUARTER`, `MONTH`, `WEEK`,
//! `DAYOFYEAR`, `DAYOFMONTH`, `DAYOFWEEK` with 1 = Sunday, `HOUR`, `MINUTE`,
//! `SECOND`, all BIGINT) and the Java-pattern formatters `DATE_FORMAT` and
//! `FROM_UNIXTIME`.
//!
//! Timestamps of any unit are accepted; zoned (LTZ) values are read in UTC,
//! Sluice's session zone. Conversions from strings are in `convert.rs`.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, make_array};
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::compute::kernels::temporal::{DatePart, date_part};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

use super::args::{
    Ints, PatternLookup, Strs, check_arity, finish, int_type, output_rows, string_type,
};
use super::format::JavaFormat;
use super::parse::parse_default;
use super::string::{builder, ret_utf8};
use super::udf::{FlinkUdf, FnState};

/// Flink's default output pattern.
pub(crate) const DEFAULT_FORMAT: &str = "yyyy-MM-dd HH:mm:ss";

/// Coercion target for a timestamp parameter (strings allowed if `text`).
fn timestamp_type(func: &str, t: &DataType, text: bool) -> Result<DataType> {
    match t {
        DataType::Timestamp(..) => Ok(t.clone()),
        DataType::Date32 | DataType::Date64 | DataType::Null => {
            Ok(DataType::Timestamp(TimeUnit::Millisecond, None))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View if text => Ok(t.clone()),
        _ => plan_err!("{func}: expected a TIMESTAMP or DATE argument, got {t}"),
    }
}

/// The UTC date-time of `v` ticks of `unit` since the epoch.
pub(crate) fn from_ticks(v: i64, unit: TimeUnit) -> Option<NaiveDateTime> {
    let dt = match unit {
        TimeUnit::Second => DateTime::from_timestamp(v, 0),
        TimeUnit::Millisecond => DateTime::from_timestamp_millis(v),
        TimeUnit::Microsecond => DateTime::from_timestamp_micros(v),
        TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(v)),
    };
    dt.map(|d| d.naive_utc())
}

/// Reinterprets a timestamp array's values as plain `Int64` ticks (zero-copy).
fn ticks(array: &ArrayRef) -> Result<ArrayRef> {
    Ok(make_array(
        array
            .to_data()
            .into_builder()
            .data_type(DataType::Int64)
            .build()?,
    ))
}

/// Row access to a timestamp-like argument: a timestamp or a string parsed
/// with [`parse_default`] (an offset in the text is applied).
pub(crate) enum Times<'a> {
    /// The same value for every row.
    Scalar(Option<NaiveDateTime>),
    /// Ticks of the given unit.
    Ticks(Int64Array, TimeUnit),
    /// Strings to parse.
    Text(Strs<'a>),
}

impl<'a> Times<'a> {
    /// Wraps `v` (a timestamp or string, per [`timestamp_type`]).
    pub(crate) fn new(v: &'a ColumnarValue) -> Result<Self> {
        Ok(match v {
            ColumnarValue::Array(a) => match a.data_type() {
                DataType::Timestamp(unit, _) => {
                    Times::Ticks(ticks(a)?.as_primitive::<Int64Type>().clone(), *unit)
                }
                _ => Times::Text(Strs::new(v)?),
            },
            ColumnarValue::Scalar(s) => match s {
                ScalarValue::TimestampSecond(x, _) => {
                    Times::Scalar(x.and_then(|x| from_ticks(x, TimeUnit::Second)))
                }
                ScalarValue::TimestampMillisecond(x, _) => {
                    Times::Scalar(x.and_then(|x| from_ticks(x, TimeUnit::Millisecond)))
                }
                ScalarValue::TimestampMicrosecond(x, _) => {
                    Times::Scalar(x.and_then(|x| from_ticks(x, TimeUnit::Microsecond)))
                }
                ScalarValue::TimestampNanosecond(x, _) => {
                    Times::Scalar(x.and_then(|x| from_ticks(x, TimeUnit::Nanosecond)))
                }
                _ => Times::Scalar(Strs::new(v)?.get(0).and_then(parse_utc)),
            },
        })
    }

    /// The value at row `i`.
    pub(crate) fn get(&self, i: usize) -> Option<NaiveDateTime> {
        match self {
            Times::Scalar(x) => *x,
            Times::Ticks(a, unit) => a
                .is_valid(i)
                .then(|| from_ticks(a.value(i), *unit))
                .flatten(),
            Times::Text(s) => s.get(i).and_then(parse_utc),
        }
    }
}

/// Parses a default-shaped string, shifting by its offset to UTC if it has one.
fn parse_utc(s: &str) -> Option<NaiveDateTime> {
    let (dt, off) = parse_default(s)?;
    dt.checked_sub_signed(chrono::TimeDelta::seconds(i64::from(off.unwrap_or(0))))
}

/// A field extractor such as `HOUR(ts)`.
pub(crate) fn extract(name: &str) -> FlinkUdf {
    let invoke: super::udf::InvokeFn = match name {
        "year" => |_, a| invoke_extract(a, DatePart::Year),
        "quarter" => |_, a| invoke_extract(a, DatePart::Quarter),
        "month" => |_, a| invoke_extract(a, DatePart::Month),
        "week" => |_, a| invoke_extract(a, DatePart::Week),
        "dayofyear" => |_, a| invoke_extract(a, DatePart::DayOfYear),
        "dayofmonth" => |_, a| invoke_extract(a, DatePart::Day),
        "dayofweek" => |_, a| invoke_extract(a, DatePart::DayOfWeekSunday1),
        "hour" => |_, a| invoke_extract(a, DatePart::Hour),
        "minute" => |_, a| invoke_extract(a, DatePart::Minute),
        _ => |_, a| invoke_extract(a, DatePart::Second),
    };
    FlinkUdf::new(name, coerce_extract, |_| Ok(DataType::Int64), invoke)
}

/// Names accepted by [`extract`].
pub(crate) const EXTRACTORS: [&str; 10] = [
    "year",
    "quarter",
    "month",
    "week",
    "dayofyear",
    "dayofmonth",
    "dayofweek",
    "hour",
    "minute",
    "second",
];

fn coerce_extract(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("date/time extractor", t.len(), 1, 1)?;
    Ok(vec![timestamp_type("date/time extractor", &t[0], false)?])
}

fn invoke_extract(args: &ScalarFunctionArgs, part: DatePart) -> Result<ColumnarValue> {
    let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
    let input = args.args[0].to_array(if scalar { 1 } else { args.number_rows })?;
    // Read zoned values in UTC: drop the zone without shifting the instant.
    let input = match input.data_type() {
        DataType::Timestamp(unit, Some(_)) => make_array(
            input
                .to_data()
                .into_builder()
                .data_type(DataType::Timestamp(*unit, None))
                .build()?,
        ),
        _ => input,
    };
    let parts = cast(&date_part(&input, part)?, &DataType::Int64)?;
    finish(parts, scalar)
}

/// `DATE_FORMAT(ts_or_string, pattern)`.
pub(crate) fn date_format() -> FlinkUdf {
    FlinkUdf::new(
        "date_format",
        coerce_date_format,
        ret_utf8,
        invoke_date_format,
    )
}

fn coerce_date_format(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("DATE_FORMAT", t.len(), 2, 2)?;
    Ok(vec![
        timestamp_type("DATE_FORMAT", &t[0], true)?,
        string_type(&t[1]),
    ])
}

/// Formats `times[i]` with `formats[i]` into a string column.
fn format_rows(
    state: &FnState,
    rows: usize,
    times: impl Fn(usize) -> Option<NaiveDateTime>,
    formats: &Strs<'_>,
) -> ArrayRef {
    let mut lookup = PatternLookup::new(&state.formats);
    let mut out = builder(rows, 20);
    for i in 0..rows {
        let fmt = formats.get(i).and_then(|p| lookup.get(p, JavaFormat::new));
        match (times(i), fmt) {
            // Writing into a string builder cannot fail.
            (Some(dt), Some(fmt)) if fmt.format(&dt, &mut out).is_ok() => out.append_value(""),
            _ => out.append_null(),
        }
    }
    Arc::new(out.finish())
}

fn invoke_date_format(state: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let (times, formats) = (Times::new(&args.args[0])?, Strs::new(&args.args[1])?);
    finish(format_rows(state, rows, |i| times.get(i), &formats), scalar)
}

/// `FROM_UNIXTIME(seconds [, pattern])`, formatted in UTC.
pub(crate) fn from_unixtime() -> FlinkUdf {
    FlinkUdf::new(
        "from_unixtime",
        coerce_from_unixtime,
        ret_utf8,
        invoke_from_unixtime,
    )
}

fn coerce_from_unixtime(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("FROM_UNIXTIME", t.len(), 1, 2)?;
    let mut out = vec![int_type("FROM_UNIXTIME", &t[0])?];
    if let Some(x) = t.get(1) {
        out.push(string_type(x));
    }
    Ok(out)
}

fn invoke_from_unixtime(state: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let secs = Ints::new(&args.args[0])?;
    let formats = match args.args.get(1) {
        Some(f) => Strs::new(f)?,
        None => Strs::Scalar(Some(DEFAULT_FORMAT)),
    };
    let times = |i| secs.get(i).and_then(|s| from_ticks(s, TimeUnit::Second));
    finish(format_rows(state, rows, times, &formats), scalar)
}

/// Epoch milliseconds of a UTC date-time.
pub(crate) fn to_millis(dt: &NaiveDateTime) -> i64 {
    dt.and_utc().timestamp_millis()
}

/// An `Int64Array` from optional values (helper for the converters).
pub(crate) fn int64s(values: impl Iterator<Item = Option<i64>>) -> Int64Array {
    values.collect()
}
