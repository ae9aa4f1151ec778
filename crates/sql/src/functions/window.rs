//! Helpers behind the window table functions (`TUMBLE`, `HOP`, `CUMULATE`), which
//! `crate::windows` rewrites into plain SQL over these: each puts a row into its
//! windows. Internal names (`__sluice_…`), not meant to be called by users.
//!
//! - `__sluice_window_start(ts, size, offset)`: the start of the size-aligned window
//!   holding `ts`;
//! - `__sluice_hop_starts(ts, slide, size, offset)`: the starts of every hopping
//!   window holding `ts` (size / slide of them);
//! - `__sluice_cumulate_ends(ts, step, size, offset)`: the ends of every cumulating
//!   window holding `ts`;
//! - `__sluice_window_time(end)`: `end` − 1 ms, the window's last instant (Flink's
//!   `window_time`).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, ListBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit, TimestampMillisecondType};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

use super::args::{check_arity, finish, output_rows};
use super::udf::{FlinkUdf, FnState};

fn ts_type(func: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Timestamp(_, tz) => Ok(DataType::Timestamp(TimeUnit::Millisecond, tz.clone())),
        DataType::Null => Ok(DataType::Timestamp(TimeUnit::Millisecond, None)),
        other => plan_err!(
            "{func}: the time column must be TIMESTAMP(3) or TIMESTAMP_LTZ(3), not {other}"
        ),
    }
}

fn coerce_window(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("window", t.len(), 3, 4)?;
    let mut out = vec![ts_type("window", &t[0])?];
    out.extend(t[1..].iter().cloned());
    Ok(out)
}

/// An interval argument (a constant) in milliseconds.
fn interval_ms(v: &ColumnarValue, what: &str) -> Result<i64> {
    let ColumnarValue::Scalar(s) = v else {
        return exec_err!("the window {what} must be a constant INTERVAL");
    };
    let ms = match s {
        ScalarValue::IntervalDayTime(Some(v)) => {
            i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds)
        }
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            i64::from(v.days) * 86_400_000 + v.nanoseconds / 1_000_000
        }
        ScalarValue::Int64(Some(v)) => *v,
        ScalarValue::Int32(Some(v)) => i64::from(*v),
        other => {
            return exec_err!(
                "the window {what} must be an INTERVAL in days, hours, minutes, seconds or \
                 milliseconds, not {other}"
            );
        }
    };
    Ok(ms)
}

fn floor_to(t: i64, size: i64, offset: i64) -> i64 {
    t - (t - offset).rem_euclid(size)
}

struct Params {
    a: i64,
    size: i64,
    offset: i64,
}

fn params(args: &ScalarFunctionArgs, a_name: &str, positive_a: bool) -> Result<Params> {
    let a = interval_ms(&args.args[1], a_name)?;
    let (size, offset) = match args.args.len() {
        3 if !positive_a => (a, interval_ms(&args.args[2], "offset")?),
        3 => (interval_ms(&args.args[2], "size")?, 0),
        _ => (
            interval_ms(&args.args[2], "size")?,
            interval_ms(&args.args[3], "offset")?,
        ),
    };
    if a <= 0 || size <= 0 {
        return exec_err!("window sizes must be positive");
    }
    if positive_a && size % a != 0 {
        return exec_err!("the window size must be a multiple of the {a_name}");
    }
    Ok(Params { a, size, offset })
}

fn millis_of(v: &ColumnarValue, rows: usize) -> Result<(ArrayRef, DataType)> {
    let arr = v.to_array(rows)?;
    let t = arr.data_type().clone();
    Ok((
        cast(&arr, &DataType::Timestamp(TimeUnit::Millisecond, None))?,
        t,
    ))
}

/// `ts` (the first argument) shifted by `delta` milliseconds, in the return type.
fn shifted(args: &ScalarFunctionArgs, delta: i64) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let (ts, _) = millis_of(&args.args[0], rows)?;
    let out = ts
        .as_primitive::<TimestampMillisecondType>()
        .unary::<_, TimestampMillisecondType>(|t| t.saturating_add(delta));
    let out: ArrayRef = Arc::new(out);
    finish(cast(&out, args.return_type())?, scalar)
}

/// `(timestamp, interval)` arguments.
fn coerce_ts_interval(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("window", t.len(), 2, 2)?;
    Ok(vec![ts_type("window", &t[0])?, t[1].clone()])
}

/// The first argument's timestamp type, in milliseconds.
fn ret_ts(t: &[DataType]) -> Result<DataType> {
    ts_type("window", &t[0])
}

/// `__sluice_window_start(ts, size[, offset])`.
pub(crate) fn window_start() -> FlinkUdf {
    FlinkUdf::new(
        "__sluice_window_start",
        |t| {
            check_arity("window", t.len(), 2, 3)?;
            let mut out = vec![ts_type("TUMBLE", &t[0])?];
            out.extend(t[1..].iter().cloned());
            Ok(out)
        },
        |t| ts_type("TUMBLE", &t[0]),
        invoke_start,
    )
}

fn invoke_start(_: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let size = interval_ms(&args.args[1], "size")?;
    let offset = match args.args.get(2) {
        Some(v) => interval_ms(v, "offset")?,
        None => 0,
    };
    if size <= 0 {
        return exec_err!("window sizes must be positive");
    }
    let (ts, _) = millis_of(&args.args[0], rows)?;
    let out = ts
        .as_primitive::<TimestampMillisecondType>()
        .unary::<_, TimestampMillisecondType>(|t| floor_to(t, size, offset));
    let out: ArrayRef = Arc::new(out);
    finish(cast(&out, args.return_type())?, scalar)
}

fn list_type(t: &[DataType]) -> Result<DataType> {
    Ok(DataType::List(Arc::new(Field::new(
        "item",
        ts_type("window", &t[0])?,
        true,
    ))))
}

/// `__sluice_hop_starts(ts, slide, size[, offset])`.
pub(crate) fn hop_starts() -> FlinkUdf {
    FlinkUdf::new(
        "__sluice_hop_starts",
        coerce_window,
        list_type,
        |_, args| {
            let p = params(args, "slide", true)?;
            windows(args, move |t, out| {
                let mut s = floor_to(t, p.a, p.offset);
                let mut starts = Vec::new();
                while s > t - p.size {
                    starts.push(s);
                    s -= p.a;
                }
                out.extend(starts.into_iter().rev());
            })
        },
    )
}

/// `__sluice_cumulate_ends(ts, step, size[, offset])`.
pub(crate) fn cumulate_ends() -> FlinkUdf {
    FlinkUdf::new(
        "__sluice_cumulate_ends",
        coerce_window,
        list_type,
        |_, args| {
            let p = params(args, "step", true)?;
            windows(args, move |t, out| {
                let start = floor_to(t, p.size, p.offset);
                let mut end = start + p.a;
                while end <= start + p.size {
                    if end > t {
                        out.push(end);
                    }
                    end += p.a;
                }
            })
        },
    )
}

fn windows(args: &ScalarFunctionArgs, f: impl Fn(i64, &mut Vec<i64>)) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let (ts, _) = millis_of(&args.args[0], rows)?;
    let ts = ts.as_primitive::<TimestampMillisecondType>();
    let DataType::List(item) = args.return_type() else {
        return exec_err!("window assignment returns a list");
    };
    let mut builder = ListBuilder::new(TimestampMillisecondBuilder::new()).with_field(Field::new(
        "item",
        DataType::Timestamp(TimeUnit::Millisecond, None),
        true,
    ));
    let mut buf = Vec::new();
    for i in 0..ts.len() {
        if ts.is_null(i) {
            builder.append_null();
            continue;
        }
        buf.clear();
        f(ts.value(i), &mut buf);
        for v in &buf {
            builder.values().append_value(*v);
        }
        builder.append(true);
    }
    let out: ArrayRef = Arc::new(builder.finish());
    let out = cast(&out, &DataType::List(item.clone()))?;
    finish(out, scalar)
}

/// `__sluice_window_time(end)`.
pub(crate) fn window_time() -> FlinkUdf {
    FlinkUdf::new(
        "__sluice_window_time",
        |t| {
            check_arity("window_time", t.len(), 1, 1)?;
            Ok(vec![ts_type("window_time", &t[0])?])
        },
        ret_ts,
        |_, args| shifted(args, -1),
    )
}

/// `__sluice_session_start(ts, gap)`: the row's own session starts at its time.
pub(crate) fn session_start() -> FlinkUdf {
    FlinkUdf::new(
        "__sluice_session_start",
        coerce_ts_interval,
        ret_ts,
        |_, args| shifted(args, 0),
    )
}

/// `__sluice_session_end(ts, gap)`: the row's own session ends `gap` after its time.
pub(crate) fn session_end() -> FlinkUdf {
    FlinkUdf::new(
        "__sluice_session_end",
        coerce_ts_interval,
        ret_ts,
        |_, args| {
            let gap = interval_ms(&args.args[1], "gap")?;
            if gap <= 0 {
                return exec_err!("the session gap must be positive");
            }
            shifted(args, gap)
        },
    )
}

/// `PROCTIME()`: the wall-clock time when the row is processed (`TIMESTAMP_LTZ(3)`),
/// a processing-time attribute for windows.
pub(crate) fn proctime() -> FlinkUdf {
    FlinkUdf::new(
        "proctime",
        |t| {
            check_arity("PROCTIME", t.len(), 0, 0)?;
            Ok(Vec::new())
        },
        |_| {
            Ok(DataType::Timestamp(
                TimeUnit::Millisecond,
                Some("+00:00".into()),
            ))
        },
        |_, _| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            Ok(ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(
                Some(now),
                Some("+00:00".into()),
            )))
        },
    )
    .volatile()
}

/// `__sluice_add_ms(ts, interval)`: `ts` plus a constant interval of days and smaller
/// units, as plain integer arithmetic on milliseconds (no calendar).
pub(crate) fn add_ms() -> FlinkUdf {
    FlinkUdf::new("__sluice_add_ms", coerce_ts_interval, ret_ts, |_, args| {
        shifted(args, interval_ms(&args.args[1], "size")?)
    })
}

/// `__sluice_as_of(probe_time, version_time, 'primary,key')`: marks the version
/// condition of a temporal join (`FOR SYSTEM_TIME AS OF`) for the streaming planner,
/// which turns the join into a temporal join and drops the call. TRUE when evaluated.
pub(crate) fn as_of() -> FlinkUdf {
    FlinkUdf::new(
        "__sluice_as_of",
        |t| {
            check_arity("FOR SYSTEM_TIME AS OF", t.len(), 3, 3)?;
            Ok(t.to_vec())
        },
        |_| Ok(DataType::Boolean),
        |_, _| Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true)))),
    )
    .volatile()
}

/// `__sluice_lookup(probe_time, table.column)`: marks a lookup join (`FOR SYSTEM_TIME AS
/// OF` a table its connector looks up by key) for the streaming planner, which drops
/// the call. It names a column of each side so that it stays in the join condition.
/// TRUE when evaluated.
pub(crate) fn lookup_marker() -> FlinkUdf {
    FlinkUdf::new(
        "__sluice_lookup",
        |t| {
            check_arity("FOR SYSTEM_TIME AS OF", t.len(), 2, 2)?;
            Ok(t.to_vec())
        },
        |_| Ok(DataType::Boolean),
        |_, _| Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true)))),
    )
    .volatile()
}
