//! Flink's `RAND([seed])` (DOUBLE in `[0, 1)`) and `RAND_INTEGER([seed,] n)`
//! (INT in `[0, n)`, NULL for `n <= 0`). A seed selects a deterministic
//! splitmix64 stream kept by the function instance, so a seeded call repeats
//! its sequence and continues it across batches.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, Float64Array, Int32Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

use super::args::{Ints, check_arity, int_type};
use super::udf::{FlinkUdf, FnState};

/// Generator state for `RAND`/`RAND_INTEGER`: one splitmix64 stream per seed
/// (so a seeded call repeats its sequence, continuing across batches) and one
/// randomly started stream for unseeded calls.
#[derive(Debug, Default)]
pub(crate) struct RandState {
    streams: Mutex<HashMap<Option<i64>, u64>>,
}

impl PartialEq for RandState {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for RandState {}

impl Hash for RandState {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl RandState {
    /// Draws `rows` values from the stream of each row's seed.
    fn draw(&self, rows: usize, seed: impl Fn(usize) -> Option<i64>, unseeded: bool) -> Vec<u64> {
        let Ok(mut streams) = self.streams.lock() else {
            return vec![0; rows];
        };
        (0..rows)
            .map(|i| {
                let key = if unseeded { None } else { seed(i) };
                let state = streams.entry(key).or_insert_with(|| match key {
                    Some(s) => s as u64,
                    None => RandomState::new().hash_one(std::time::SystemTime::now()),
                });
                splitmix64(state)
            })
            .collect()
    }
}

/// `RAND([seed])`: a double in `[0, 1)`.
pub(crate) fn rand() -> FlinkUdf {
    FlinkUdf::new(
        "rand",
        |t| coerce_ints("RAND", t, 0, 1),
        |_| Ok(DataType::Float64),
        invoke_rand,
    )
    .volatile()
}

/// `RAND_INTEGER([seed,] n)`: an integer in `[0, n)`; NULL for `n <= 0`.
pub(crate) fn rand_integer() -> FlinkUdf {
    FlinkUdf::new(
        "rand_integer",
        |t| coerce_ints("RAND_INTEGER", t, 1, 2),
        |_| Ok(DataType::Int32),
        invoke_rand,
    )
    .volatile()
}

fn coerce_ints(func: &str, t: &[DataType], min: usize, max: usize) -> Result<Vec<DataType>> {
    check_arity(func, t.len(), min, max)?;
    t.iter().map(|x| int_type(func, x)).collect()
}

fn invoke_rand(state: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let integer = args.return_type() == &DataType::Int32;
    let rows = args.number_rows;
    let ints = args
        .args
        .iter()
        .map(Ints::new)
        .collect::<Result<Vec<_>>>()?;
    let (seed, bound) = match (integer, ints.as_slice()) {
        (true, [n]) => (None, Some(n)),
        (true, [s, n]) => (Some(s), Some(n)),
        (_, [s]) => (Some(s), None),
        _ => (None, None),
    };
    let draws = state
        .rand
        .draw(rows, |i| seed.and_then(|s| s.get(i)), seed.is_none());
    let out: ArrayRef = match bound {
        Some(n) => Arc::new(
            (0..rows)
                .map(|i| {
                    let n = n.get(i).filter(|n| *n > 0)?.min(i64::from(i32::MAX)) as u64;
                    i32::try_from(draws[i] % n).ok()
                })
                .collect::<Int32Array>(),
        ),
        None => Arc::new(Float64Array::from_iter_values(
            draws
                .iter()
                .map(|d| (d >> 11) as f64 * (1.0 / (1u64 << 53) as f64)),
        )),
    };
    Ok(ColumnarValue::Array(out))
}
