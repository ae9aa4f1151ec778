//! Flink's regular-expression functions: `REGEXP_EXTRACT(s, re [, group])`
//! (`REGEXP_SUBSTR` is its two-argument form), `REGEXP_REPLACE(s, re, rep)`
//! (every match, Java `$n`/`${name}` references and `\` escapes in `rep`)
//! and `REGEXP(s, re)` (a match anywhere).
//!
//! Patterns are compiled with the `regex` crate, which covers Java syntax
//! except look-around and back-references; a pattern it rejects, like an
//! invalid group index or replacement, gives NULL instead of failing the
//! query. Compiled patterns are cached per function instance (see
//! `PatternCache`), so a literal pattern is compiled once, not per row.

use std::sync::Arc;

use datafusion::arrow::array::BooleanBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};
use regex::Regex;

use super::args::{
    Ints, PatternLookup, Strs, check_arity, finish, int_type, output_rows, string_type,
};
use super::string::{builder, ret_utf8};
use super::udf::{FlinkUdf, FnState};

fn compile(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

/// `REGEXP_EXTRACT(s, re [, group])`; group 0 (the default) is the whole match.
pub(crate) fn regexp_extract() -> FlinkUdf {
    FlinkUdf::new("regexp_extract", coerce_extract, ret_utf8, invoke_extract).alias("regexp_substr")
}

fn coerce_extract(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("REGEXP_EXTRACT", t.len(), 2, 3)?;
    let mut out = vec![string_type(&t[0]), string_type(&t[1])];
    if let Some(x) = t.get(2) {
        out.push(int_type("REGEXP_EXTRACT", x)?);
    }
    Ok(out)
}

fn invoke_extract(state: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let (s, re) = (Strs::new(&args.args[0])?, Strs::new(&args.args[1])?);
    let group = match args.args.get(2) {
        Some(g) => Ints::new(g)?,
        None => Ints::Scalar(Some(0)),
    };
    let mut lookup = PatternLookup::new(&state.regex);
    let mut locs = None;
    let mut out = builder(rows, 16);
    for i in 0..rows {
        let (Some(s), Some(p), Some(g)) = (s.get(i), re.get(i), group.get(i)) else {
            out.append_null();
            continue;
        };
        let Some(regex) = lookup.get(p, compile) else {
            out.append_null();
            continue;
        };
        let g = usize::try_from(g)
            .ok()
            .filter(|g| *g < regex.captures_len());
        let value = match g {
            None => None,
            Some(0) => regex.find(s).map(|m| m.as_str()),
            Some(g) => {
                let locs = match &mut locs {
                    Some((src, l)) if Arc::ptr_eq(src, &regex) => l,
                    slot => {
                        &mut slot
                            .insert((Arc::clone(&regex), regex.capture_locations()))
                            .1
                    }
                };
                regex
                    .captures_read(locs, s)
                    .and_then(|_| locs.get(g))
                    .map(|(a, b)| &s[a..b])
            }
        };
        out.append_option(value);
    }
    finish(Arc::new(out.finish()), scalar)
}

/// Translates a Java replacement string into `regex` syntax for a pattern
/// with `groups` capture groups; `None` where Java would throw.
fn java_replacement(rep: &str, groups: usize) -> Option<String> {
    let mut out = String::with_capacity(rep.len() + 8);
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                '$' => out.push_str("$$"),
                lit => out.push(lit),
            },
            '$' => match chars.next()? {
                '{' => {
                    let mut name = String::new();
                    for c in chars.by_ref() {
                        if c == '}' {
                            break;
                        }
                        name.push(c);
                    }
                    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                        && name.chars().all(|c| c.is_ascii_alphanumeric());
                    if !valid {
                        return None;
                    }
                    out.push_str(&format!("${{{name}}}"));
                }
                d @ '0'..='9' => {
                    let mut n = d.to_digit(10)? as usize;
                    if n > groups {
                        return None;
                    }
                    // Java takes more digits while the number stays a valid group.
                    while let Some(next) = chars.peek().and_then(|c| c.to_digit(10)) {
                        let candidate = n * 10 + next as usize;
                        if candidate > groups {
                            break;
                        }
                        n = candidate;
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                _ => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

/// `REGEXP_REPLACE(s, re, rep)`: replaces every match.
pub(crate) fn regexp_replace() -> FlinkUdf {
    FlinkUdf::new("regexp_replace", coerce_replace, ret_utf8, invoke_replace)
}

fn coerce_replace(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("REGEXP_REPLACE", t.len(), 3, 3)?;
    Ok(t.iter().map(string_type).collect())
}

fn invoke_replace(state: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let (s, re, rep) = (
        Strs::new(&args.args[0])?,
        Strs::new(&args.args[1])?,
        Strs::new(&args.args[2])?,
    );
    let mut lookup = PatternLookup::new(&state.regex);
    // The translated replacement, remembered with the pattern and source it came from.
    let mut last: Option<(Arc<Regex>, String, Option<String>)> = None;
    let mut out = builder(rows, 16);
    for i in 0..rows {
        let (Some(s), Some(p), Some(r)) = (s.get(i), re.get(i), rep.get(i)) else {
            out.append_null();
            continue;
        };
        let Some(regex) = lookup.get(p, compile) else {
            out.append_null();
            continue;
        };
        let fresh = !matches!(&last, Some((re, src, _)) if Arc::ptr_eq(re, &regex) && src == r);
        if fresh {
            let translated = java_replacement(r, regex.captures_len() - 1);
            last = Some((Arc::clone(&regex), r.to_owned(), translated));
        }
        match last.as_ref().and_then(|(_, _, t)| t.as_deref()) {
            Some(t) if t.contains('$') => out.append_value(regex.replace_all(s, t)),
            Some(t) => out.append_value(regex.replace_all(s, regex::NoExpand(t))),
            None => out.append_null(),
        }
    }
    finish(Arc::new(out.finish()), scalar)
}

/// `REGEXP(s, re)`: TRUE if `re` matches any substring of `s`.
pub(crate) fn regexp() -> FlinkUdf {
    FlinkUdf::new(
        "regexp",
        coerce_regexp,
        |_| Ok(DataType::Boolean),
        invoke_regexp,
    )
}

fn coerce_regexp(t: &[DataType]) -> Result<Vec<DataType>> {
    check_arity("REGEXP", t.len(), 2, 2)?;
    Ok(t.iter().map(string_type).collect())
}

fn invoke_regexp(state: &FnState, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let (rows, scalar) = output_rows(&args.args, args.number_rows);
    let (s, re) = (Strs::new(&args.args[0])?, Strs::new(&args.args[1])?);
    let mut lookup = PatternLookup::new(&state.regex);
    let mut out = BooleanBuilder::with_capacity(rows);
    for i in 0..rows {
        let matched = match (s.get(i), re.get(i)) {
            (Some(s), Some(p)) => lookup.get(p, compile).map(|r| r.is_match(s)),
            _ => None,
        };
        out.append_option(matched);
    }
    finish(Arc::new(out.finish()), scalar)
}

#[cfg(test)]
mod tests {
    use super::java_replacement;

    #[test]
    fn java_replacement_syntax() {
        assert_eq!(java_replacement("$1-$2", 2).as_deref(), Some("${1}-${2}"));
        assert_eq!(java_replacement("$12", 1).as_deref(), Some("${1}2"));
        assert_eq!(java_replacement("\\$1", 1).as_deref(), Some("$$1"));
        assert_eq!(java_replacement("${x}", 1).as_deref(), Some("${x}"));
        assert_eq!(java_replacement("$3", 2), None);
        assert_eq!(java_replacement("$", 2), None);
        assert_eq!(java_replacement("\\", 2), None);
    }
}
