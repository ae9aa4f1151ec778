//! Flink `LPAD`/`RPAD` (empty pad or negative length is NULL, a shorter
//! length truncates; lengths above [`MAX_PAD_CHARS`] give NULL rather than
//! overflowing the Arrow string buffer), `CHR` (code modulo 256, negative gives `''`) and the
//! predicates `IS_ALPHA`, `IS_DIGIT`, `IS_DECIMAL` (never NULL: a NULL input
//! gives FALSE, as in Flink).

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::array::BooleanBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

use super::args::{Ints, Strs, check_arity, finish, int_type, output_rows, string_type};
use super::string::{builder, char_offset, ret_utf8, to_usize};
use super::udf::{FlinkUdf, FnState};

/// Longest result `LPAD`/`RPAD` produce (64 Mi characters).
pub(crate) const MAX_PAD_CHARS: i64 = 1 << 26;

/// `LPAD(s, len, pad)`.
pub(crate) fn lpad() -> FlinkUdf {
    FlinkUdf::new("lpad", coerce_pad, ret_utf8, |_, a| invoke_pad(a, true))
}

/// `RPAD(s, len, pad)`.
pub(crate) fn rpad() -> FlinkUdf {
    FlinkUdf::new("rpad", coerce_pad, ret_utf8, |_, a| invoke_pad(a, false))
}

fn coerce_pad(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("LPAD/RPAD", t.len(), 3, 3)?;
    Ok(vec![
        string_type(&t[0]),
        int_type("LPAD/RPAD", &t[1])?,
        string_type(&t[2]),
    ])
}

/// Writes `len` characters of `pad` repeated.
fn write_padding(out: &mut impl Write, pad: &str, len: usize) -> std::fmt::Result {
    for c in pad.chars().cycle().take(len) {
        out.write_char(c)?;
    }
    Ok(())
}

fn invoke_pad(args: &ScalarFunctionArgs, left: bool) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let (s, len, pad) = (
        Strs::new(&args.args[0])?,
        Ints::new(&args.args[1])?,
        Strs::new(&args.args[2])?,
    );
    let mut out = builder(rows, 16);
    for i in 0..rows {
        let (Some(s), Some(len), Some(pad)) = (s.get(i), len.get(i), pad.get(i)) else {
            out.append_null();
            continue;
        };
        if !(0..=MAX_PAD_CHARS).contains(&len) || pad.is_empty() {
            out.append_null();
            continue;
        }
        let len = to_usize(len);
        let n = s.chars().count();
        if len <= n {
            out.append_value(&s[..char_offset(s, len).unwrap_or(s.len())]);
            continue;
        }
        // Padding can be long: it is streamed into the builder, not collected.
        let written = if left {
            write_padding(&mut out, pad, len - n).and_then(|()| out.write_str(s))
        } else {
            out.write_str(s)
                .and_then(|()| write_padding(&mut out, pad, len - n))
        };
        match written {
            Ok(()) => out.append_value(""),
            Err(_) => out.append_null(),
        }
    }
    finish(Arc::new(out.finish()), scalar)
}

/// `CHR(n)`: the character with code `n & 0xFF`; `''` for negative `n`.
pub(crate) fn chr() -> FlinkUdf {
    FlinkUdf::new("chr", coerce_chr, ret_utf8, invoke_chr)
}

fn coerce_chr(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("CHR", t.len(), 1, 1)?;
    Ok(vec![int_type("CHR", &t[0])?])
}

fn invoke_chr(_: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let n = Ints::new(&args.args[0])?;
    let mut out = builder(rows, 2);
    let mut buf = [0u8; 4];
    for i in 0..rows {
        match n.get(i) {
            None => out.append_null(),
            Some(n) if n < 0 => out.append_value(""),
            Some(n) => out.append_value(char::from((n & 0xFF) as u8).encode_utf8(&mut buf)),
        }
    }
    finish(Arc::new(out.finish()), scalar)
}

/// Which character class an `IS_*` predicate tests.
#[derive(Clone, Copy)]
enum Class {
    Alpha,
    Digit,
    Decimal,
}

/// `IS_ALPHA(s)`: every character is a letter (FALSE for `''` and NULL).
pub(crate) fn is_alpha() -> FlinkUdf {
    FlinkUdf::new("is_alpha", coerce_one_string, ret_bool, |_, a| {
        invoke_is(a, Class::Alpha)
    })
}

/// `IS_DIGIT(s)`: every character is a digit (FALSE for `''` and NULL).
pub(crate) fn is_digit() -> FlinkUdf {
    FlinkUdf::new("is_digit", coerce_one_string, ret_bool, |_, a| {
        invoke_is(a, Class::Digit)
    })
}

/// `IS_DECIMAL(s)`: `s` parses as a decimal number (FALSE for `''` and NULL).
pub(crate) fn is_decimal() -> FlinkUdf {
    FlinkUdf::new("is_decimal", coerce_one_string, ret_bool, |_, a| {
        invoke_is(a, Class::Decimal)
    })
}

fn ret_bool(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Boolean)
}

/// Coercion for single-string functions.
pub(crate) fn coerce_one_string(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("function", t.len(), 1, 1)?;
    Ok(vec![string_type(&t[0])])
}

/// Java `Double.parseDouble` acceptance, minus `NaN`/`Infinity`/hex forms.
fn is_decimal_str(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty()
        && t.bytes().any(|b| b.is_ascii_digit())
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        && t.parse::<f64>().is_ok()
}

fn test_class(s: &str, class: Class) -> bool {
    !s.is_empty()
        && match class {
            Class::Alpha => s.chars().all(char::is_alphabetic),
            Class::Digit => s.chars().all(|c| c.is_numeric()),
            Class::Decimal => is_decimal_str(s),
        }
}

fn invoke_is(args: &ScalarFunctionArgs, class: Class) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let s = Strs::new(&args.args[0])?;
    let mut out = BooleanBuilder::with_capacity(rows);
    for i in 0..rows {
        out.append_value(s.get(i).is_some_and(|s| test_class(s, class)));
    }
    finish(Arc::new(out.finish()), scalar)
}
