//! What to generate for each field: the declared type plus its `fields.<path>.*` options,
//! checked and turned into a [`FieldGen`] tree.
//!
//! Owns: type support (every Flink type Sluice maps to Arrow: BOOLEAN, TINYINT…BIGINT,
//! FLOAT, DOUBLE, DECIMAL, VARCHAR/STRING, BYTES, DATE, TIME, TIMESTAMP(_LTZ), ROW,
//! ARRAY, MAP), defaults, and errors naming the option key at fault. Nested paths are
//! `row.child`, `array.element`, `map.key`, `map.value`, as in Flink. Does not own value
//! generation (`values.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, TimeUnit};

use super::config::FieldOptions;
use super::values::mix;
use crate::{Error, Result};

/// Default string length and collection size (Flink's defaults).
const DEFAULT_STRING_LENGTH: usize = 100;
const DEFAULT_COLLECTION_SIZE: usize = 3;

/// How one field's values are made.
#[derive(Debug, Clone)]
pub(crate) struct FieldGen {
    /// Distinguishes this field's random stream from its siblings'.
    pub(crate) salt: u64,
    /// Probability of NULL (0 when the field is NOT NULL).
    pub(crate) null_rate: f64,
    pub(crate) kind: Kind,
}

/// The generator of a type.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Bool,
    /// Any integer type; bounds inclusive.
    Int {
        ty: DataType,
        min: i128,
        max: i128,
    },
    Float {
        double: bool,
        min: f64,
        max: f64,
    },
    /// Bounds are unscaled values.
    Decimal {
        precision: u8,
        scale: i8,
        min: i128,
        max: i128,
    },
    Str {
        large: bool,
        len: usize,
        var_len: bool,
    },
    Bin {
        large: bool,
        len: usize,
        var_len: bool,
    },
    Date {
        max_past_days: i64,
    },
    Time {
        ty: DataType,
    },
    Timestamp {
        unit: TimeUnit,
        tz: Option<Arc<str>>,
        max_past_ms: i64,
    },
    /// `start..=end`, split into contiguous shares among subtasks (top-level only).
    Seq {
        ty: DataType,
        start: i64,
        end: i64,
    },
    Struct {
        fields: Fields,
        children: Vec<FieldGen>,
    },
    List {
        field: FieldRef,
        large: bool,
        len: usize,
        child: Box<FieldGen>,
    },
    Map {
        field: FieldRef,
        sorted: bool,
        len: usize,
        key: Box<FieldGen>,
        value: Box<FieldGen>,
    },
}

/// Builds the generators of `schema`'s columns, consuming `options`; options naming no
/// field are errors.
pub(crate) fn build(
    table: &str,
    schema: &Schema,
    options: BTreeMap<String, FieldOptions>,
) -> Result<Vec<FieldGen>> {
    let mut b = Planner {
        table,
        options,
        salt: 0,
    };
    let gens = schema
        .fields()
        .iter()
        .map(|f| b.field(f.name(), f, true))
        .collect::<Result<Vec<_>>>()?;
    if let Some((path, opts)) = b.options.iter().next() {
        let key = opts
            .values()
            .next()
            .map(|(k, _)| k.clone())
            .unwrap_or_default();
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        return Err(b.bad(
            &key,
            &format!(
                "the table has no field '{path}' (columns: {}; nested fields are written 'row.child', \
                 'array.element', 'map.key', 'map.value')",
                columns.join(", ")
            ),
        ));
    }
    Ok(gens)
}

struct Planner<'a> {
    table: &'a str,
    options: BTreeMap<String, FieldOptions>,
    salt: u64,
}

impl Planner<'_> {
    fn bad(&self, key: &str, message: &str) -> Error {
        Error::BadOption {
            table: self.table.to_string(),
            option: key.to_string(),
            message: message.to_string(),
        }
    }

    fn field(&mut self, path: &str, field: &Field, top: bool) -> Result<FieldGen> {
        let mut o = self.options.remove(path).unwrap_or_default();
        self.salt += 1;
        let salt = mix(self.salt);
        let null_rate = match o.remove("null-rate") {
            None => 0.0,
            Some((key, v)) => match v.trim().parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => {
                    if r > 0.0 && !field.is_nullable() {
                        return Err(self.bad(
                            &key,
                            &format!("field '{path}' is NOT NULL, so it cannot have a null-rate"),
                        ));
                    }
                    r
                }
                _ => {
                    return Err(self.bad(&key, &format!("'{v}' is not a rate between 0.0 and 1.0")));
                }
            },
        };
        let sequence = match o.remove("kind") {
            None => false,
            Some((_, v)) if v.trim().eq_ignore_ascii_case("random") => false,
            Some((_, v)) if v.trim().eq_ignore_ascii_case("sequence") => true,
            Some((key, v)) => {
                return Err(self.bad(
                    &key,
                    &format!("'{v}' is not a kind; write 'random' or 'sequence'"),
                ));
            }
        };
        let kind = if sequence {
            self.sequence(path, field, top, null_rate, &mut o)?
        } else {
            self.random(path, field, &mut o)?
        };
        if let Some((option, (key, _))) = o.into_iter().next() {
            let hint = match option.as_str() {
                "start" | "end" => "it needs 'kind' = 'sequence'".to_string(),
                _ => format!(
                    "it does not apply to field '{path}' of type {}",
                    field.data_type()
                ),
            };
            return Err(self.bad(&key, &format!("option '{option}': {hint}")));
        }
        Ok(FieldGen {
            salt,
            null_rate,
            kind,
        })
    }

    fn sequence(
        &mut self,
        path: &str,
        field: &Field,
        top: bool,
        null_rate: f64,
        o: &mut FieldOptions,
    ) -> Result<Kind> {
        let key = format!("fields.{path}.kind");
        if !top {
            return Err(self.bad(&key, "sequences are supported for top-level columns only"));
        }
        if null_rate > 0.0 {
            return Err(self.bad(
                &format!("fields.{path}.null-rate"),
                "a sequence cannot have a null-rate",
            ));
        }
        let ty = field.data_type().clone();
        if !(ty.is_integer()
            || ty.is_floating()
            || matches!(
                ty,
                DataType::Decimal128(..) | DataType::Utf8 | DataType::LargeUtf8
            ))
        {
            return Err(self.bad(
                &key,
                &format!("a sequence needs a numeric or string field, but '{path}' is {ty}"),
            ));
        }
        let mut bound = |name: &str| -> Result<i64> {
            let Some((k, v)) = o.remove(name) else {
                return Err(self.bad(
                    &format!("fields.{path}.{name}"),
                    "a sequence needs both 'start' and 'end'",
                ));
            };
            let n = v
                .trim()
                .parse::<i64>()
                .map_err(|_| self.bad(&k, &format!("'{v}' is not an integer")))?;
            if let Some((lo, hi)) = int_range(&ty)
                && (i128::from(n) < lo || i128::from(n) > hi)
            {
                return Err(self.bad(&k, &format!("{n} does not fit {ty}")));
            }
            Ok(n)
        };
        let start = bound("start")?;
        let end = bound("end")?;
        if start > end {
            return Err(self.bad(
                &format!("fields.{path}.end"),
                &format!("end ({end}) is before start ({start})"),
            ));
        }
        Ok(Kind::Seq { ty, start, end })
    }

    fn random(&mut self, path: &str, field: &Field, o: &mut FieldOptions) -> Result<Kind> {
        let ty = field.data_type();
        Ok(match ty {
            DataType::Boolean => Kind::Bool,
            t if t.is_integer() => {
                let (lo, hi) = int_range(t).unwrap_or((i128::from(i64::MIN), i128::from(i64::MAX)));
                let parse = |s: &str| {
                    s.trim()
                        .parse::<i128>()
                        .ok()
                        .filter(|v| (lo..=hi).contains(v))
                };
                let (min, max) =
                    self.bounds(o, (lo, hi), parse, &format!("an integer that fits {t}"))?;
                Kind::Int {
                    ty: t.clone(),
                    min,
                    max,
                }
            }
            DataType::Float32 | DataType::Float64 => {
                let double = *ty == DataType::Float64;
                let top = if double {
                    f64::MAX
                } else {
                    f64::from(f32::MAX)
                };
                let parse = |s: &str| {
                    s.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite() && v.abs() <= top)
                };
                let (min, max) =
                    self.bounds(o, (0.0, top), parse, &format!("a number that fits {ty}"))?;
                Kind::Float { double, min, max }
            }
            DataType::Decimal128(p, s) => {
                let limit = 10i128
                    .checked_pow(u32::from(*p))
                    .map_or(i128::MAX, |v| v - 1);
                let parse = |t: &str| parse_decimal(t, *s).filter(|v| v.abs() <= limit);
                let (min, max) = self.bounds(
                    o,
                    (-limit, limit),
                    parse,
                    &format!("a number that fits {ty}"),
                )?;
                Kind::Decimal {
                    precision: *p,
                    scale: *s,
                    min,
                    max,
                }
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary => {
                let len = self.length(o, DEFAULT_STRING_LENGTH)?;
                let var_len = match o.remove("var-len") {
                    None => false,
                    Some((_, v)) if v.trim().eq_ignore_ascii_case("true") => true,
                    Some((_, v)) if v.trim().eq_ignore_ascii_case("false") => false,
                    Some((k, v)) => {
                        return Err(self.bad(
                            &k,
                            &format!("'{v}' is not a boolean; write 'true' or 'false'"),
                        ));
                    }
                };
                let large = matches!(ty, DataType::LargeUtf8 | DataType::LargeBinary);
                if matches!(ty, DataType::Utf8 | DataType::LargeUtf8) {
                    Kind::Str {
                        large,
                        len,
                        var_len,
                    }
                } else {
                    Kind::Bin {
                        large,
                        len,
                        var_len,
                    }
                }
            }
            DataType::Date32 => Kind::Date {
                max_past_days: self.max_past(o)? / 86_400_000,
            },
            DataType::Time32(TimeUnit::Second | TimeUnit::Millisecond)
            | DataType::Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond) => {
                Kind::Time { ty: ty.clone() }
            }
            DataType::Timestamp(unit, tz) => Kind::Timestamp {
                unit: *unit,
                tz: tz.clone(),
                max_past_ms: self.max_past(o)?,
            },
            DataType::Struct(fields) => {
                let children = fields
                    .iter()
                    .map(|c| self.field(&format!("{path}.{}", c.name()), c, false))
                    .collect::<Result<Vec<_>>>()?;
                Kind::Struct {
                    fields: fields.clone(),
                    children,
                }
            }
            DataType::List(item) | DataType::LargeList(item) => {
                let len = self.length(o, DEFAULT_COLLECTION_SIZE)?;
                let child = Box::new(self.field(&format!("{path}.element"), item, false)?);
                Kind::List {
                    field: item.clone(),
                    large: matches!(ty, DataType::LargeList(_)),
                    len,
                    child,
                }
            }
            DataType::Map(entries, sorted) => {
                let DataType::Struct(kv) = entries.data_type() else {
                    return Err(self.unsupported(path, ty));
                };
                let mut kv = kv.iter();
                let (Some(k), Some(v), None) = (kv.next(), kv.next(), kv.next()) else {
                    return Err(self.unsupported(path, ty));
                };
                let len = self.length(o, DEFAULT_COLLECTION_SIZE)?;
                let key = Box::new(self.field(&format!("{path}.key"), k, false)?);
                let value = Box::new(self.field(&format!("{path}.value"), v, false)?);
                Kind::Map {
                    field: entries.clone(),
                    sorted: *sorted,
                    len,
                    key,
                    value,
                }
            }
            _ => return Err(self.unsupported(path, ty)),
        })
    }

    fn unsupported(&self, path: &str, ty: &DataType) -> Error {
        Error::Unsupported {
            table: self.table.to_string(),
            message: format!(
                "datagen cannot generate field '{path}' of type {ty}; supported: BOOLEAN, TINYINT, SMALLINT, INT, \
                 BIGINT, FLOAT, DOUBLE, DECIMAL, VARCHAR/STRING, BYTES, DATE, TIME, TIMESTAMP, TIMESTAMP_LTZ, ROW, \
                 ARRAY, MAP"
            ),
        }
    }

    /// `min`/`max` (defaults `default`), checked `min <= max`.
    fn bounds<T: PartialOrd + Copy + std::fmt::Display>(
        &self,
        o: &mut FieldOptions,
        default: (T, T),
        parse: impl Fn(&str) -> Option<T>,
        what: &str,
    ) -> Result<(T, T)> {
        let mut take = |name: &str, d: T| -> Result<(T, Option<String>)> {
            match o.remove(name) {
                None => Ok((d, None)),
                Some((k, v)) => parse(&v)
                    .map(|x| (x, Some(k.clone())))
                    .ok_or_else(|| self.bad(&k, &format!("'{v}' is not {what}"))),
            }
        };
        let (min, _) = take("min", default.0)?;
        let (max, max_key) = take("max", default.1)?;
        if min > max {
            let key = max_key.unwrap_or_else(|| "min".into());
            return Err(self.bad(&key, &format!("max ({max}) is below min ({min})")));
        }
        Ok((min, max))
    }

    fn length(&self, o: &mut FieldOptions, default: usize) -> Result<usize> {
        match o.remove("length") {
            None => Ok(default),
            Some((k, v)) => match v.trim().parse::<usize>() {
                Ok(n) if n <= 1 << 20 => Ok(n),
                _ => Err(self.bad(&k, &format!("'{v}' is not a length between 0 and 1048576"))),
            },
        }
    }

    /// `max-past` in ms (default 0).
    fn max_past(&self, o: &mut FieldOptions) -> Result<i64> {
        match o.remove("max-past") {
            None => Ok(0),
            Some((k, v)) => sluice_types::parse_duration(&v)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .map_err(|m| self.bad(&k, &m)),
        }
    }
}

/// The value range of an integer type.
pub(crate) fn int_range(ty: &DataType) -> Option<(i128, i128)> {
    Some(match ty {
        DataType::Int8 => (i128::from(i8::MIN), i128::from(i8::MAX)),
        DataType::Int16 => (i128::from(i16::MIN), i128::from(i16::MAX)),
        DataType::Int32 => (i128::from(i32::MIN), i128::from(i32::MAX)),
        DataType::Int64 => (i128::from(i64::MIN), i128::from(i64::MAX)),
        DataType::UInt8 => (0, i128::from(u8::MAX)),
        DataType::UInt16 => (0, i128::from(u16::MAX)),
        DataType::UInt32 => (0, i128::from(u32::MAX)),
        DataType::UInt64 => (0, i128::from(u64::MAX)),
        _ => return None,
    })
}

/// `-12.5` at scale 2 → -1250; extra fraction digits are an error.
pub(crate) fn parse_decimal(text: &str, scale: i8) -> Option<i128> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let scale = u32::try_from(scale).ok()?;
    if frac.len() > scale as usize {
        return None;
    }
    let int: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac_v: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let v = int
        .checked_mul(10i128.checked_pow(scale)?)?
        .checked_add(frac_v.checked_mul(10i128.checked_pow(scale - frac.len() as u32)?)?)?;
    Some(if neg { -v } else { v })
}
