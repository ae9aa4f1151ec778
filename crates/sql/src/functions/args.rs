//! Argument plumbing shared by the Flink functions: uniform row access over
//! scalar and array [`ColumnarValue`]s, type coercion helpers and a small
//! pattern cache.
//!
//! Owns no SQL semantics; every function module builds on these helpers so
//! that a scalar argument (the usual case for patterns and separators) is
//! never expanded into an array.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, LargeStringArray, StringArray,
    StringViewArray,
};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::ColumnarValue;

/// Row access to a string argument, whatever its Arrow string flavour.
pub(crate) enum Strs<'a> {
    /// The same value for every row.
    Scalar(Option<&'a str>),
    /// `Utf8` column.
    Utf8(&'a StringArray),
    /// `LargeUtf8` column.
    Large(&'a LargeStringArray),
    /// `Utf8View` column.
    View(&'a StringViewArray),
}

impl<'a> Strs<'a> {
    /// Wraps `v`; errors if it is not a string (coercion should prevent that).
    pub(crate) fn new(v: &'a ColumnarValue) -> Result<Self> {
        Ok(match v {
            ColumnarValue::Scalar(s) => match s {
                ScalarValue::Utf8(x) | ScalarValue::LargeUtf8(x) | ScalarValue::Utf8View(x) => {
                    Strs::Scalar(x.as_deref())
                }
                s if s.is_null() => Strs::Scalar(None),
                s => return exec_err!("expected a string argument, got {}", s.data_type()),
            },
            ColumnarValue::Array(a) => match a.data_type() {
                DataType::Utf8 => Strs::Utf8(a.as_string::<i32>()),
                DataType::LargeUtf8 => Strs::Large(a.as_string::<i64>()),
                DataType::Utf8View => Strs::View(a.as_string_view()),
                t => return exec_err!("expected a string argument, got {t}"),
            },
        })
    }

    /// The value at row `i` (`None` for NULL).
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Strs::Scalar(s) => *s,
            Strs::Utf8(a) => a.is_valid(i).then(|| a.value(i)),
            Strs::Large(a) => a.is_valid(i).then(|| a.value(i)),
            Strs::View(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

/// Row access to an argument coerced to `Int64`.
pub(crate) enum Ints<'a> {
    /// The same value for every row.
    Scalar(Option<i64>),
    /// `Int64` column.
    Array(&'a Int64Array),
}

impl<'a> Ints<'a> {
    /// Wraps `v`; errors if it is not `Int64` (coercion should prevent that).
    pub(crate) fn new(v: &'a ColumnarValue) -> Result<Self> {
        Ok(match v {
            ColumnarValue::Scalar(ScalarValue::Int64(x)) => Ints::Scalar(*x),
            ColumnarValue::Scalar(s) if s.is_null() => Ints::Scalar(None),
            ColumnarValue::Array(a) if a.data_type() == &DataType::Int64 => {
                Ints::Array(a.as_primitive::<Int64Type>())
            }
            other => return exec_err!("expected a BIGINT argument, got {}", other.data_type()),
        })
    }

    /// The value at row `i` (`None` for NULL).
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<i64> {
        match self {
            Ints::Scalar(s) => *s,
            Ints::Array(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

/// Row access to an argument coerced to `Float64`.
pub(crate) enum Floats<'a> {
    /// The same value for every row.
    Scalar(Option<f64>),
    /// `Float64` column.
    Array(&'a Float64Array),
}

impl<'a> Floats<'a> {
    /// Wraps `v`; errors if it is not `Float64` (coercion should prevent that).
    pub(crate) fn new(v: &'a ColumnarValue) -> Result<Self> {
        Ok(match v {
            ColumnarValue::Scalar(ScalarValue::Float64(x)) => Floats::Scalar(*x),
            ColumnarValue::Scalar(s) if s.is_null() => Floats::Scalar(None),
            ColumnarValue::Array(a) if a.data_type() == &DataType::Float64 => {
                Floats::Array(a.as_primitive::<Float64Type>())
            }
            other => return exec_err!("expected a DOUBLE argument, got {}", other.data_type()),
        })
    }

    /// The value at row `i` (`None` for NULL).
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<f64> {
        match self {
            Floats::Scalar(s) => *s,
            Floats::Array(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

/// How many rows to compute: 1 when every argument is a scalar (the result is
/// then returned as a scalar by [`finish`]), else the batch size.
pub(crate) fn output_rows(args: &[ColumnarValue], number_rows: usize) -> (usize, bool) {
    let all_scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    if all_scalar {
        (1, true)
    } else {
        (number_rows, false)
    }
}

/// Wraps a computed array as the function result (see [`output_rows`]).
pub(crate) fn finish(array: ArrayRef, all_scalar: bool) -> Result<ColumnarValue> {
    if all_scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

/// Coercion target for a string parameter: string types stay as they are,
/// anything else is cast to `Utf8`.
pub(crate) fn string_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => t.clone(),
        _ => DataType::Utf8,
    }
}

/// Coercion target for an integer parameter (`Int64`); rejects non-numbers.
pub(crate) fn int_type(func: &str, t: &DataType) -> Result<DataType> {
    if t.is_numeric() || t.is_null() {
        Ok(DataType::Int64)
    } else {
        plan_err!("{func}: expected an integer argument, got {t}")
    }
}

/// Coercion target for a floating-point parameter (`Float64`); rejects non-numbers.
pub(crate) fn float_type(func: &str, t: &DataType) -> Result<DataType> {
    if t.is_numeric() || t.is_null() {
        Ok(DataType::Float64)
    } else {
        plan_err!("{func}: expected a numeric argument, got {t}")
    }
}

/// Checks the argument count of a user-defined signature.
pub(crate) fn check_arity(func: &str, n: usize, min: usize, max: usize) -> Result<()> {
    if n < min || n > max {
        return plan_err!("{func} takes {min}..={max} arguments, got {n}");
    }
    Ok(())
}

/// Entries kept by a [`PatternCache`] before it is cleared.
const CACHE_CAPACITY: usize = 64;

/// Compiled patterns (regexes, date formats) keyed by their source text, kept
/// across batches so a literal pattern is compiled once per function
/// instance. Invalid patterns are cached as `None`.
///
/// Compares equal to every other cache so that UDF structs can derive
/// `PartialEq`/`Hash` while holding one.
#[derive(Debug)]
pub(crate) struct PatternCache<T> {
    map: Mutex<HashMap<String, Option<Arc<T>>>>,
}

impl<T> Default for PatternCache<T> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> PatternCache<T> {
    /// Returns the compiled form of `pattern`, compiling it with `compile` on a miss.
    pub(crate) fn get(
        &self,
        pattern: &str,
        compile: impl FnOnce(&str) -> Option<T>,
    ) -> Option<Arc<T>> {
        if let Ok(map) = self.map.lock()
            && let Some(hit) = map.get(pattern)
        {
            return hit.clone();
        }
        let compiled = compile(pattern).map(Arc::new);
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= CACHE_CAPACITY {
                map.clear();
            }
            map.insert(pattern.to_owned(), compiled.clone());
        }
        compiled
    }
}

impl<T> PartialEq for PatternCache<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for PatternCache<T> {}

impl<T> Hash for PatternCache<T> {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

/// Per-batch resolver for a pattern argument: looks the pattern up in the
/// cache only when it changes from one row to the next.
pub(crate) struct PatternLookup<'c, T> {
    cache: &'c PatternCache<T>,
    last: Option<(String, Option<Arc<T>>)>,
}

impl<'c, T> PatternLookup<'c, T> {
    /// A resolver over `cache`.
    pub(crate) fn new(cache: &'c PatternCache<T>) -> Self {
        Self { cache, last: None }
    }

    /// The compiled form of `pattern` (`None` when it does not compile).
    pub(crate) fn get(
        &mut self,
        pattern: &str,
        compile: impl FnOnce(&str) -> Option<T>,
    ) -> Option<Arc<T>> {
        if let Some((src, compiled)) = &self.last
            && src == pattern
        {
            return compiled.clone();
        }
        let compiled = self.cache.get(pattern, compile);
        self.last = Some((pattern.to_owned(), compiled.clone()));
        compiled
    }
}
