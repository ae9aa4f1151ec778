//! Flink string functions whose semantics differ from DataFusion's built-ins
//! of the same name, or that DataFusion lacks: `SPLIT_INDEX`, `CONCAT`
//! (NULL if any argument is NULL), `SUBSTRING`/`SUBSTR` (position 0 means 1,
//! negative positions count from the end, negative length is NULL), `LEFT`
//! and `RIGHT` (negative length gives `''`) and `LOCATE`.
//!
//! Positions and lengths count Unicode scalar values. Padding, `CHR` and the
//! predicates live in `text.rs`; encodings and digests in `encoding.rs`.

use std::sync::Arc;

use datafusion::arrow::array::StringBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

use super::args::{Ints, Strs, check_arity, finish, int_type, output_rows, string_type};
use super::udf::{FlinkUdf, FnState};

/// Return type of every function in this module.
pub(crate) fn ret_utf8(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Utf8)
}

/// A string builder sized for `rows` values of about `avg` bytes.
pub(crate) fn builder(rows: usize, avg: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, rows.saturating_mul(avg))
}

/// Byte offset of the `n`-th character of `s`, or `None` past the end
/// (`Some(s.len())` when `n` equals the character count).
pub(crate) fn char_offset(s: &str, n: usize) -> Option<usize> {
    if n == 0 {
        return Some(0);
    }
    let mut iter = s.char_indices();
    match iter.nth(n) {
        Some((at, _)) => Some(at),
        None => (s.chars().count() == n).then_some(s.len()),
    }
}

/// Converts a non-negative `i64` count to `usize`, saturating.
pub(crate) fn to_usize(n: i64) -> usize {
    usize::try_from(n.max(0)).unwrap_or(usize::MAX)
}

/// `SPLIT_INDEX(str, sep, index)`.
pub(crate) fn split_index() -> FlinkUdf {
    FlinkUdf::new(
        "split_index",
        coerce_split_index,
        ret_utf8,
        invoke_split_index,
    )
}

fn coerce_split_index(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("SPLIT_INDEX", t.len(), 3, 3)?;
    Ok(vec![
        string_type(&t[0]),
        string_type(&t[1]),
        int_type("SPLIT_INDEX", &t[2])?,
    ])
}

/// Field `index` of `s` split by the whole string `sep`, keeping empty fields
/// (commons-lang `splitByWholeSeparatorPreserveAllTokens`, as Flink does).
fn split_field<'a>(s: &'a str, sep: &str, index: i64) -> Option<&'a str> {
    if index < 0 || s.is_empty() {
        return None;
    }
    let index = to_usize(index);
    if sep.is_empty() {
        s.split(char::is_whitespace).nth(index)
    } else {
        s.split(sep).nth(index)
    }
}

fn invoke_split_index(_: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let (s, sep, idx) = (
        Strs::new(&args.args[0])?,
        Strs::new(&args.args[1])?,
        Ints::new(&args.args[2])?,
    );
    let mut out = builder(rows, 16);
    for i in 0..rows {
        let field = match (s.get(i), sep.get(i), idx.get(i)) {
            (Some(s), Some(sep), Some(idx)) => split_field(s, sep, idx),
            _ => None,
        };
        out.append_option(field);
    }
    finish(Arc::new(out.finish()), scalar)
}

/// `CONCAT(s1, s2, ...)`: NULL if any argument is NULL.
pub(crate) fn concat() -> FlinkUdf {
    FlinkUdf::new("concat", coerce_all_strings, ret_utf8, invoke_concat)
}

fn coerce_all_strings(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("CONCAT", t.len(), 1, usize::MAX)?;
    Ok(t.iter().map(string_type).collect())
}

fn invoke_concat(_: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let parts = args
        .args
        .iter()
        .map(Strs::new)
        .collect::<Result<Vec<_>>>()?;
    let mut out = builder(rows, 16 * parts.len());
    for i in 0..rows {
        if parts.iter().any(|p| p.get(i).is_none()) {
            out.append_null();
            continue;
        }
        for p in &parts {
            out.append_value_part(p.get(i).unwrap_or_default());
        }
        out.append_value("");
    }
    finish(Arc::new(out.finish()), scalar)
}

/// Extension used to build one string value out of several pieces.
trait AppendPart {
    fn append_value_part(&mut self, s: &str);
}

impl AppendPart for StringBuilder {
    fn append_value_part(&mut self, s: &str) {
        // The values buffer is only sealed into a row by `append_value`.
        std::fmt::Write::write_str(self, s).unwrap_or_default();
    }
}

/// `SUBSTRING(s, pos [, len])`, also `SUBSTR` and `SUBSTRING(s FROM pos FOR len)`.
pub(crate) fn substring() -> FlinkUdf {
    FlinkUdf::new("substring", coerce_substring, ret_utf8, invoke_substring).alias("substr")
}

fn coerce_substring(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("SUBSTRING", t.len(), 2, 3)?;
    let mut out = vec![string_type(&t[0])];
    for x in &t[1..] {
        out.push(int_type("SUBSTRING", x)?);
    }
    Ok(out)
}

/// Flink's `substringSQL`: 1-based `pos`, 0 acts as 1, negative counts from the end.
fn flink_substr(s: &str, pos: i64, len: Option<i64>) -> Option<&str> {
    if len.is_some_and(|l| l < 0) {
        return None;
    }
    let start = if pos > 0 {
        to_usize(pos - 1)
    } else if pos < 0 {
        let n = s.chars().count();
        match n.checked_sub(to_usize(pos.saturating_neg())) {
            Some(start) => start,
            None => return Some(""),
        }
    } else {
        0
    };
    let Some(from) = char_offset(s, start) else {
        return Some("");
    };
    let rest = &s[from..];
    match len {
        None => Some(rest),
        Some(len) => Some(&rest[..char_offset(rest, to_usize(len)).unwrap_or(rest.len())]),
    }
}

fn invoke_substring(_: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let s = Strs::new(&args.args[0])?;
    let pos = Ints::new(&args.args[1])?;
    let len = args.args.get(2).map(Ints::new).transpose()?;
    let mut out = builder(rows, 16);
    for i in 0..rows {
        let v = match (s.get(i), pos.get(i), len.as_ref().map(|l| l.get(i))) {
            (Some(_), Some(_), Some(None)) => None,
            (Some(s), Some(p), l) => flink_substr(s, p, l.flatten()),
            _ => None,
        };
        out.append_option(v);
    }
    finish(Arc::new(out.finish()), scalar)
}

/// `LEFT(s, n)`.
pub(crate) fn left() -> FlinkUdf {
    FlinkUdf::new("left", coerce_str_int, ret_utf8, |_, a| {
        invoke_left_right(a, true)
    })
}

/// `RIGHT(s, n)`.
pub(crate) fn right() -> FlinkUdf {
    FlinkUdf::new("right", coerce_str_int, ret_utf8, |_, a| {
        invoke_left_right(a, false)
    })
}

/// Coercion for `(string, integer)` functions.
pub(crate) fn coerce_str_int(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("function", t.len(), 2, 2)?;
    Ok(vec![string_type(&t[0]), int_type("function", &t[1])?])
}

fn invoke_left_right(args: &ScalarFunctionArgs, left: bool) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let (s, n) = (Strs::new(&args.args[0])?, Ints::new(&args.args[1])?);
    let mut out = builder(rows, 16);
    for i in 0..rows {
        let v = match (s.get(i), n.get(i)) {
            (Some(s), Some(n)) if left => {
                Some(&s[..char_offset(s, to_usize(n)).unwrap_or(s.len())])
            }
            (Some(s), Some(n)) => {
                let skip = s.chars().count().saturating_sub(to_usize(n));
                Some(&s[char_offset(s, skip).unwrap_or(s.len())..])
            }
            _ => None,
        };
        out.append_option(v);
    }
    finish(Arc::new(out.finish()), scalar)
}

/// `LOCATE(needle, haystack [, from])`: 1-based character position of the
/// first occurrence at or after `from`, 0 if none.
pub(crate) fn locate() -> FlinkUdf {
    FlinkUdf::new(
        "locate",
        coerce_locate,
        |_| Ok(DataType::Int32),
        invoke_locate,
    )
}

fn coerce_locate(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("LOCATE", t.len(), 2, 3)?;
    let mut out = vec![string_type(&t[0]), string_type(&t[1])];
    if let Some(x) = t.get(2) {
        out.push(int_type("LOCATE", x)?);
    }
    Ok(out)
}

fn locate_in(needle: &str, hay: &str, from: i64) -> i32 {
    if from < 1 {
        return 0;
    }
    let skip = to_usize(from - 1);
    let Some(start) = char_offset(hay, skip) else {
        return 0;
    };
    match hay[start..].find(needle) {
        Some(at) => i32::try_from(skip + hay[start..start + at].chars().count() + 1).unwrap_or(0),
        None => 0,
    }
}

fn invoke_locate(_: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    use datafusion::arrow::array::Int32Builder;
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let (needle, hay) = (Strs::new(&args.args[0])?, Strs::new(&args.args[1])?);
    let from = args.args.get(2).map(Ints::new).transpose()?;
    let mut out = Int32Builder::with_capacity(rows);
    for i in 0..rows {
        let from = from.as_ref().map_or(Some(1), |f| f.get(i));
        out.append_option(match (needle.get(i), hay.get(i), from) {
            (Some(n), Some(h), Some(f)) => Some(locate_in(n, h, f)),
            _ => None,
        });
    }
    finish(Arc::new(out.finish()), scalar)
}
