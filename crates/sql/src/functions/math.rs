//! Flink math functions missing from DataFusion or different there: `MOD`
//! (Java remainder: sign of the dividend, divisor 0 gives NULL), `LOG(x)`
//! (natural log; DataFusion's is base 10) and `LOG(b, x)`, `SQRT` (NaN for
//! negatives instead of an error), `TRUNCATE(x [, d])` and `E()`.
//! `RAND`/`RAND_INTEGER` live in `random.rs`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, PrimitiveArray};
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Decimal128Type, Float64Type, Int64Type,
};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

use super::args::{Floats, check_arity, finish, float_type, int_type, output_rows};
use super::udf::{FlinkUdf, FnState};

/// The numeric family two arguments are computed in.
fn numeric_family(func: &str, t: &[DataType]) -> Result<Option<i8>> {
    // None: integers; Some(-1): floating point; Some(s): Decimal128 with scale s.
    let mut family: Option<i8> = None;
    for x in t {
        family = match (family, x) {
            (f, x) if x.is_integer() || x.is_null() => f,
            (Some(-1), _) | (_, DataType::Float16 | DataType::Float32 | DataType::Float64) => {
                Some(-1)
            }
            (f, DataType::Decimal128(_, s)) => Some(f.unwrap_or(0).max(*s).max(0)),
            (_, x) if x.is_numeric() => Some(-1),
            (_, x) => return plan_err!("{func}: expected numeric arguments, got {x}"),
        };
    }
    Ok(family)
}

/// `MOD(a, b)`.
pub(crate) fn modulo() -> FlinkUdf {
    FlinkUdf::new(
        "mod",
        coerce_mod,
        |t| Ok(t.get(1).cloned().unwrap_or(DataType::Int64)),
        invoke_mod,
    )
}

fn coerce_mod(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("MOD", t.len(), 2, 2)?;
    Ok(match numeric_family("MOD", t)? {
        // The result has the divisor's integer type, as in Flink.
        None => vec![
            DataType::Int64,
            if t[1].is_null() {
                DataType::Int64
            } else {
                t[1].clone()
            },
        ],
        Some(-1) => vec![DataType::Float64; 2],
        Some(s) => vec![DataType::Decimal128(38, s); 2],
    })
}

/// Applies `f` row by row over two equally long primitive arrays.
fn binary<T: ArrowPrimitiveType>(
    a: &ArrayRef,
    b: &ArrayRef,
    f: impl Fn(T::Native, T::Native) -> Option<T::Native>,
) -> PrimitiveArray<T> {
    let (a, b) = (a.as_primitive::<T>(), b.as_primitive::<T>());
    (0..a.len())
        .map(|i| {
            (a.is_valid(i) && b.is_valid(i))
                .then(|| f(a.value(i), b.value(i)))
                .flatten()
        })
        .collect()
}

fn invoke_mod(_: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let a = args.args[0].to_array(rows)?;
    let b = args.args[1].to_array(rows)?;
    let out: ArrayRef = match a.data_type() {
        DataType::Int64 => {
            let b = cast(&b, &DataType::Int64)?;
            let r = binary::<Int64Type>(&a, &b, |x, y| (y != 0).then(|| x.wrapping_rem(y)));
            cast(&r, args.return_type())?
        }
        DataType::Float64 => Arc::new(binary::<Float64Type>(&a, &b, |x, y| {
            (y != 0.0).then_some(x % y)
        })),
        DataType::Decimal128(p, s) => {
            let r = binary::<Decimal128Type>(&a, &b, |x, y| (y != 0).then(|| x.wrapping_rem(y)));
            Arc::new(r.with_precision_and_scale(*p, *s)?)
        }
        t => return exec_err!("MOD: unexpected argument type {t}"),
    };
    finish(out, scalar)
}

/// `TRUNCATE(x [, d])`: cuts `x` to `d` decimal places (0 by default;
/// negative `d` zeroes integer digits).
pub(crate) fn truncate() -> FlinkUdf {
    FlinkUdf::new(
        "truncate",
        coerce_truncate,
        |t| Ok(t.first().cloned().unwrap_or(DataType::Float64)),
        invoke_truncate,
    )
}

fn coerce_truncate(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("TRUNCATE", t.len(), 1, 2)?;
    let value = match numeric_family("TRUNCATE", &t[..1])? {
        None => DataType::Int64,
        Some(-1) => DataType::Float64,
        Some(_) => t[0].clone(),
    };
    let mut out = vec![value];
    if let Some(d) = t.get(1) {
        out.push(int_type("TRUNCATE", d)?);
    }
    Ok(out)
}

/// `10^k` for the integer paths; `None` when it overflows.
fn pow10(k: i64) -> Option<i128> {
    10i128.checked_pow(u32::try_from(k).ok()?)
}

fn invoke_truncate(_: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let x = args.args[0].to_array(rows)?;
    let d = match args.args.get(1) {
        Some(d) => d.to_array(rows)?,
        None => ColumnarValue::Scalar(ScalarValue::Int64(Some(0))).to_array(rows)?,
    };
    let d = d.as_primitive::<Int64Type>();
    let digits = |i: usize| d.is_valid(i).then(|| d.value(i));
    let out: ArrayRef = match x.data_type() {
        DataType::Int64 => {
            let x = x.as_primitive::<Int64Type>();
            let r: PrimitiveArray<Int64Type> = (0..rows)
                .map(|i| {
                    let (v, d) = (x.is_valid(i).then(|| x.value(i))?, digits(i)?);
                    let f = pow10(d.saturating_neg()).and_then(|f| i64::try_from(f).ok());
                    Some(if d >= 0 {
                        v
                    } else {
                        f.map_or(0, |f| v - v % f)
                    })
                })
                .collect();
            Arc::new(r)
        }
        DataType::Float64 => {
            let x = x.as_primitive::<Float64Type>();
            let r: Float64Array = (0..rows)
                .map(|i| {
                    let (v, d) = (x.is_valid(i).then(|| x.value(i))?, digits(i)?);
                    if d <= -309 {
                        return Some(0.0);
                    }
                    let p = 10f64.powi(i32::try_from(d.min(400)).unwrap_or(0));
                    let t = (v * p).trunc() / p;
                    Some(if t.is_finite() { t } else { v })
                })
                .collect();
            Arc::new(r)
        }
        DataType::Decimal128(p, s) => {
            let x = x.as_primitive::<Decimal128Type>();
            let r: PrimitiveArray<Decimal128Type> = (0..rows)
                .map(|i| {
                    let (v, d) = (x.is_valid(i).then(|| x.value(i))?, digits(i)?);
                    let cut = i64::from(*s).saturating_sub(d);
                    Some(if cut <= 0 {
                        v
                    } else {
                        pow10(cut).map_or(0, |f| v - v % f)
                    })
                })
                .collect();
            Arc::new(r.with_precision_and_scale(*p, *s)?)
        }
        t => return exec_err!("TRUNCATE: unexpected argument type {t}"),
    };
    finish(out, scalar)
}

/// `LOG(x)` (natural logarithm, as in Flink) and `LOG(base, x)`.
pub(crate) fn log() -> FlinkUdf {
    FlinkUdf::new(
        "log",
        |t| coerce_floats("LOG", t, 1, 2),
        ret_f64,
        |_, a| {
            float_op(a, |v| {
                if v.len() == 1 {
                    v[0].ln()
                } else {
                    v[1].ln() / v[0].ln()
                }
            })
        },
    )
}

/// `SQRT(x)`: NaN for negative `x`, as Java's `Math.sqrt`.
pub(crate) fn sqrt() -> FlinkUdf {
    FlinkUdf::new(
        "sqrt",
        |t| coerce_floats("SQRT", t, 1, 1),
        ret_f64,
        |_, a| float_op(a, |v| v[0].sqrt()),
    )
}

/// `E()`: Euler's number.
pub(crate) fn e() -> FlinkUdf {
    FlinkUdf::new(
        "e",
        |t| coerce_floats("E", t, 0, 0),
        ret_f64,
        |_, _| {
            Ok(ColumnarValue::Scalar(ScalarValue::Float64(Some(
                std::f64::consts::E,
            ))))
        },
    )
}

fn ret_f64(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Float64)
}

fn coerce_floats(func: &str, t: &[DataType], min: usize, max: usize) -> Result<Vec<DataType>> {
    check_arity(func, t.len(), min, max)?;
    t.iter().map(|x| float_type(func, x)).collect()
}

/// Evaluates `f` over the `Float64` arguments of each row (NULL if any is NULL).
fn float_op(args: &ScalarFunctionArgs, f: fn(&[f64]) -> f64) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let cols = args
        .args
        .iter()
        .map(Floats::new)
        .collect::<Result<Vec<_>>>()?;
    let mut vals = Vec::with_capacity(cols.len());
    let out: Float64Array = (0..rows)
        .map(|i| {
            vals.clear();
            for c in &cols {
                vals.push(c.get(i)?);
            }
            Some(f(&vals))
        })
        .collect();
    finish(Arc::new(out), scalar)
}
