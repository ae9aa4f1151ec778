//! Flink SQL types → Arrow types.
//!
//! | Flink | Arrow |
//! |---|---|
//! | BOOLEAN | Boolean |
//! | TINYINT, SMALLINT, INT, BIGINT | Int8, Int16, Int32, Int64 |
//! | FLOAT, DOUBLE | Float32, Float64 |
//! | DECIMAL(p, s) | Decimal128(p, s) (p ≤ 38) |
//! | CHAR(n), VARCHAR(n), STRING | Utf8 |
//! | BINARY, VARBINARY, BYTES | Binary |
//! | DATE | Date32 |
//! | TIME(p) | Time32(ms) for p ≤ 3, else Time64(µs/ns) |
//! | TIMESTAMP(p) | Timestamp(s/ms/µs/ns by p, no zone); default p = 6 as in Flink |
//! | TIMESTAMP_LTZ(p), TIMESTAMP(p) WITH LOCAL TIME ZONE | Timestamp(unit, "UTC") |
//! | ROW<a T, …> / ROW(a T, …) | Struct |
//! | ARRAY<T> | List |
//! | MAP<K, V> | Map |

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::parser::{Cursor, DIALECT};
use crate::Result;

fn unit_for_precision(p: u64) -> TimeUnit {
    match p {
        0 => TimeUnit::Second,
        1..=3 => TimeUnit::Millisecond,
        4..=6 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

fn number(c: &mut Cursor<'_>) -> Result<u64> {
    match c.next() {
        Token::Number(n, _) => n
            .parse()
            .map_err(|_| c.error(format!("'{n}' is not a valid type parameter"))),
        t => Err(c.error(format!("expected a number, found '{t}'"))),
    }
}

/// Parses an optional `(n)` or `(n, m)`.
fn params(c: &mut Cursor<'_>) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    if c.consume(&Token::LParen) {
        loop {
            out.push(number(c)?);
            if c.consume(&Token::RParen) {
                break;
            }
            c.expect(&Token::Comma, "Separate type parameters with ','.")?;
        }
    }
    Ok(out)
}

/// Parses a Flink type at the cursor, with an optional `NOT NULL`/`NULL` suffix.
/// Returns the type and whether it is nullable.
pub(crate) fn parse_type(c: &mut Cursor<'_>) -> Result<(DataType, bool)> {
    let dt = parse_bare_type(c)?;
    let nullable = if c.words(&["NOT", "NULL"]) {
        false
    } else {
        let _ = c.word("NULL");
        true
    };
    Ok((dt, nullable))
}

fn parse_bare_type(c: &mut Cursor<'_>) -> Result<DataType> {
    let loc = c.here();
    let name = match c.next() {
        Token::Word(w) => w.value.to_ascii_uppercase(),
        t => {
            return Err(crate::Error::sql(
                &loc,
                format!("expected a type, found '{t}'"),
            ));
        }
    };
    let dt = match name.as_str() {
        "BOOLEAN" | "BOOL" => DataType::Boolean,
        "TINYINT" => DataType::Int8,
        "SMALLINT" => DataType::Int16,
        "INT" | "INTEGER" => DataType::Int32,
        "BIGINT" => DataType::Int64,
        "FLOAT" | "REAL" => DataType::Float32,
        "DOUBLE" => {
            let _ = c.word("PRECISION");
            DataType::Float64
        }
        "DECIMAL" | "DEC" | "NUMERIC" => {
            let p = params(c)?;
            let precision = p.first().copied().unwrap_or(10);
            let scale = p.get(1).copied().unwrap_or(0);
            if !(1..=38).contains(&precision) || scale > precision {
                return Err(crate::Error::sql(
                    &loc,
                    format!(
                        "DECIMAL({precision}, {scale}) is out of range: precision must be 1..38 and scale at most the precision"
                    ),
                ));
            }
            DataType::Decimal128(precision as u8, scale as i8)
        }
        "CHAR" | "VARCHAR" | "CHARACTER" => {
            let _ = c.word("VARYING");
            params(c)?;
            DataType::Utf8
        }
        "STRING" => DataType::Utf8,
        "BINARY" | "VARBINARY" => {
            params(c)?;
            DataType::Binary
        }
        "BYTES" => DataType::Binary,
        "DATE" => DataType::Date32,
        "TIME" => {
            let p = params(c)?.first().copied().unwrap_or(0);
            let _ = c.words(&["WITHOUT", "TIME", "ZONE"]);
            match unit_for_precision(p) {
                TimeUnit::Second | TimeUnit::Millisecond => DataType::Time32(TimeUnit::Millisecond),
                u => DataType::Time64(u),
            }
        }
        "TIMESTAMP" => {
            let p = params(c)?.first().copied().unwrap_or(6);
            if c.words(&["WITH", "LOCAL", "TIME", "ZONE"]) {
                DataType::Timestamp(unit_for_precision(p), Some("UTC".into()))
            } else if c.words(&["WITH", "TIME", "ZONE"]) {
                return Err(crate::Error::sql(
                    &loc,
                    "TIMESTAMP WITH TIME ZONE is not supported (nor by Flink); use TIMESTAMP_LTZ(3)",
                ));
            } else {
                let _ = c.words(&["WITHOUT", "TIME", "ZONE"]);
                DataType::Timestamp(unit_for_precision(p), None)
            }
        }
        "TIMESTAMP_LTZ" => {
            let p = params(c)?.first().copied().unwrap_or(6);
            DataType::Timestamp(unit_for_precision(p), Some("UTC".into()))
        }
        "ROW" => DataType::Struct(parse_row_fields(c)?),
        "ARRAY" => {
            c.expect(&Token::Lt, "Write ARRAY<element type>.")?;
            let (inner, nullable) = parse_type(c)?;
            c.expect_gt()?;
            DataType::List(Arc::new(Field::new("item", inner, nullable)))
        }
        "MAP" => {
            c.expect(&Token::Lt, "Write MAP<key type, value type>.")?;
            let (k, _) = parse_type(c)?;
            c.expect(&Token::Comma, "Write MAP<key type, value type>.")?;
            let (v, vn) = parse_type(c)?;
            c.expect_gt()?;
            let entries = Field::new(
                "entries",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", k, false),
                    Field::new("value", v, vn),
                ])),
                false,
            );
            DataType::Map(Arc::new(entries), false)
        }
        other => {
            return Err(crate::Error::sql(
                &loc,
                format!(
                    "unknown type '{other}'; Flink types are BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, FLOAT, \
                     DOUBLE, DECIMAL(p, s), VARCHAR, STRING, BYTES, DATE, TIME, TIMESTAMP(p), TIMESTAMP_LTZ(p), \
                     ROW<…>, ARRAY<…>, MAP<…>"
                ),
            ));
        }
    };
    Ok(dt)
}

fn parse_row_fields(c: &mut Cursor<'_>) -> Result<Fields> {
    let angle = match c.peek() {
        Token::Lt => true,
        Token::LParen => false,
        t => return Err(c.error(format!("expected ROW<name type, …>, found '{t}'"))),
    };
    c.next();
    let mut fields = Vec::new();
    loop {
        if angle && (c.pending_gt || matches!(c.peek(), Token::Gt | Token::ShiftRight)) {
            c.expect_gt()?;
            break;
        }
        if !angle && c.consume(&Token::RParen) {
            break;
        }
        let name = c.identifier("a ROW field name")?;
        let (dt, nullable) = parse_type(c)?;
        if c.word("COMMENT") {
            c.string("a comment")?;
        }
        fields.push(Field::new(name.value, dt, nullable));
        if angle && c.pending_gt {
            // The `>>` that closed the last field's type also closes this ROW.
            c.pending_gt = false;
            break;
        }
        if !c.consume(&Token::Comma) {
            if angle {
                c.expect_gt()?;
            } else {
                c.expect(&Token::RParen, "Close the ROW(…) type.")?;
            }
            break;
        }
    }
    Ok(Fields::from(fields))
}

/// Parses a type written as text (e.g. `"ROW<a INT, b ARRAY<STRING>>"`).
pub fn parse_type_str(text: &str) -> Result<DataType> {
    let tokens = Tokenizer::new(&DIALECT, text)
        .tokenize_with_location()
        .map_err(|e| crate::Error::sql(&Default::default(), e.message))?;
    let mut c = Cursor::new("", tokens);
    let (dt, _) = parse_type(&mut c)?;
    c.expect_end("the type")?;
    Ok(dt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flink_types() {
        assert_eq!(parse_type_str("BIGINT").unwrap(), DataType::Int64);
        assert_eq!(
            parse_type_str("TIMESTAMP(3)").unwrap(),
            DataType::Timestamp(TimeUnit::Millisecond, None)
        );
        assert_eq!(
            parse_type_str("TIMESTAMP_LTZ(3)").unwrap(),
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
        assert_eq!(
            parse_type_str("DECIMAL(23, 3)").unwrap(),
            DataType::Decimal128(23, 3)
        );
        let nested = parse_type_str("ARRAY<ROW<a INT, b MAP<STRING, ARRAY<BIGINT>>>>").unwrap();
        let DataType::Struct(f) = parse_type_str("ROW<d ROW<x INT, y INT>>").unwrap() else {
            panic!()
        };
        assert_eq!(f.len(), 1);
        let err = parse_type_str("ROW<d ROW<x INT>>, z INT>");
        assert!(err.is_err());
        assert!(matches!(nested, DataType::List(_)), "{nested:?}");
        assert!(parse_type_str("ROW(a INT NOT NULL, b STRING)").is_ok());
        let err = parse_type_str("BIGINTEGER").unwrap_err().to_string();
        assert!(err.contains("unknown type 'BIGINTEGER'"), "{err}");
        assert!(parse_type_str("DECIMAL(50, 2)").is_err());
    }
}
