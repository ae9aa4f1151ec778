//! Records to Arrow rows through a value tree: Avro datums (and Protobuf messages,
//! whose values are mapped onto the same tree) become Avro values, which fill the
//! columns.
//!
//! Records are buffered as bytes; `flush` parses them all (a [`Parser`]), then fills
//! each column from the parsed values. A record that does not parse, or holds a value
//! that does not fit its column (a long too big for an INT, a NULL in a NOT NULL
//! column) becomes a dead letter naming the field.

use std::sync::Arc;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, ListArray, MapArray, PrimitiveBuilder, StringBuilder,
    StructArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Decimal128Type, Field, Fields, Float32Type,
    Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, Schema, SchemaRef,
    Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use datafusion::arrow::record_batch::RecordBatch;
use sluice_types::DeadLetter;

use super::schema::TableSchema;
use crate::common::sql_type::sql_type_name;
use crate::{Decoded, Decoder, Error, Result};

/// One buffered record.
enum Entry {
    Pending {
        start: usize,
        end: usize,
        offset: u64,
        source: usize,
    },
    Rejected(DeadLetter),
}

/// Turns records into value trees: each a `Record` whose fields hold the columns.
pub(crate) trait Parser: Send {
    /// One result per record, in order; an error says why the record is bad.
    fn parse(&self, records: &[&[u8]]) -> Vec<std::result::Result<Value, String>>;
}

/// Avro binary datums of a schema.
pub(crate) struct AvroParser {
    pub(crate) schema: TableSchema,
}

impl Parser for AvroParser {
    fn parse(&self, records: &[&[u8]]) -> Vec<std::result::Result<Value, String>> {
        let reader = match GenericDatumReader::builder(&self.schema.avro).build() {
            Ok(r) => r,
            Err(e) => {
                let m = format!("the Avro schema cannot be read with: {e}");
                return records.iter().map(|_| Err(m.clone())).collect();
            }
        };
        records
            .iter()
            .map(|raw| {
                let mut cursor = Strict { rest: raw };
                match reader.read_value(&mut cursor) {
                    Ok(v) if cursor.rest.is_empty() => Ok(v),
                    Ok(_) => Err(format!(
                        "{} bytes follow the Avro record (a record of another schema?)",
                        cursor.rest.len()
                    )),
                    Err(e) => Err(format!("not an Avro record of the table's schema: {e}")),
                }
            })
            .collect()
    }
}

/// A record's bytes for the Avro reader. Running out is an error of its own kind:
/// apache-avro reads a union whose index is cut off by the end of the input as NULL
/// (it sees `UnexpectedEof`), which would turn a truncated record into a row of NULLs.
struct Strict<'a> {
    rest: &'a [u8],
}

impl std::io::Read for Strict<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.rest.is_empty() {
            return Err(std::io::Error::other(
                "the record ends too early (truncated?)",
            ));
        }
        let n = buf.len().min(self.rest.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

/// The `avro` (and `protobuf`) decoder.
pub(crate) struct TreeDecoder {
    table: String,
    schema: SchemaRef,
    parser: Box<dyn Parser>,
    /// For each column, the index of its field in a parsed record.
    positions: Vec<usize>,
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    sources: Vec<String>,
}

impl TreeDecoder {
    pub(crate) fn new(
        table: &str,
        schema: SchemaRef,
        parser: Box<dyn Parser>,
        positions: Vec<usize>,
    ) -> Self {
        TreeDecoder {
            table: table.to_string(),
            schema,
            parser,
            positions,
            bytes: Vec::new(),
            entries: Vec::new(),
            sources: Vec::new(),
        }
    }

    fn source_index(&mut self, source: &str) -> usize {
        match self.sources.iter().position(|s| s == source) {
            Some(i) => i,
            None => {
                self.sources.push(source.to_string());
                self.sources.len() - 1
            }
        }
    }
}

impl Decoder for TreeDecoder {
    fn decode(&mut self, record: &[u8], source: &str, offset: u64) -> Result<()> {
        let source = self.source_index(source);
        let start = self.bytes.len();
        self.bytes.extend_from_slice(record);
        self.entries.push(Entry::Pending {
            start,
            end: self.bytes.len(),
            offset,
            source,
        });
        Ok(())
    }

    fn reject(&mut self, source: &str, offset: u64, reason: String, raw: &[u8], truncated: bool) {
        let mut d = DeadLetter::new(&self.table, source, offset, reason, raw);
        d.truncated |= truncated;
        self.entries.push(Entry::Rejected(d));
    }

    fn buffered_records(&self) -> usize {
        self.entries.len()
    }

    fn flush(&mut self) -> Result<Decoded> {
        let entries = std::mem::take(&mut self.entries);
        let bytes = std::mem::take(&mut self.bytes);
        let sources = std::mem::take(&mut self.sources);
        // Parse every record; each good one keeps its record's place.
        let pending: Vec<(usize, &[u8])> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Entry::Pending { start, end, .. } => Some((i, &bytes[*start..*end])),
                Entry::Rejected(_) => None,
            })
            .collect();
        let raws: Vec<&[u8]> = pending.iter().map(|(_, r)| *r).collect();
        let mut parsed = self.parser.parse(&raws).into_iter();
        let mut dead: Vec<(usize, DeadLetter)> = Vec::new();
        let mut rows: Vec<(usize, Value)> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            match e {
                Entry::Rejected(d) => dead.push((i, d.clone())),
                Entry::Pending {
                    start,
                    end,
                    offset,
                    source,
                } => match parsed.next() {
                    Some(Ok(v)) => rows.push((i, v)),
                    Some(Err(reason)) => dead.push((
                        i,
                        DeadLetter::new(
                            &self.table,
                            &sources[*source],
                            *offset,
                            reason,
                            &bytes[*start..*end],
                        ),
                    )),
                    None => {}
                },
            }
        }
        let mut batch = None;
        if !rows.is_empty() {
            let n = rows.len();
            let mut errs: Vec<Option<String>> = vec![None; n];
            let owner: Vec<usize> = (0..n).collect();
            let mut columns = Vec::with_capacity(self.schema.fields().len());
            for (c, field) in self.schema.fields().iter().enumerate() {
                let pos = self.positions[c];
                let vals: Vec<Option<&Value>> = rows
                    .iter()
                    .map(|(_, v)| match v {
                        Value::Record(fields) => fields.get(pos).map(|(_, v)| v),
                        _ => None,
                    })
                    .collect();
                let mut ctx = Ctx {
                    owner: &owner,
                    errs: &mut errs,
                };
                columns.push(build(field, &vals, &mut ctx)?);
            }
            let loose: Vec<Field> = self
                .schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect();
            let all = RecordBatch::try_new(Arc::new(Schema::new(loose)), columns)?;
            let keep: Vec<bool> = errs.iter().map(Option::is_none).collect();
            for (r, e) in errs.iter().enumerate() {
                if let Some(reason) = e {
                    let i = rows[r].0;
                    if let Entry::Pending {
                        start,
                        end,
                        offset,
                        source,
                    } = &entries[i]
                    {
                        dead.push((
                            i,
                            DeadLetter::new(
                                &self.table,
                                &sources[*source],
                                *offset,
                                reason.clone(),
                                &bytes[*start..*end],
                            ),
                        ));
                    }
                }
            }
            let good = filter_record_batch(&all, &keep.into())?;
            if good.num_rows() > 0 {
                batch = Some(RecordBatch::try_new(
                    self.schema.clone(),
                    good.columns().to_vec(),
                )?);
            }
        }
        dead.sort_by_key(|(i, _)| *i);
        Ok(Decoded {
            batch,
            dead_letters: dead.into_iter().map(|(_, d)| d).collect(),
        })
    }
}

/// Where values of a (nested) column belong, and the first error of each row.
struct Ctx<'a> {
    /// The top-level row of each value.
    owner: &'a [usize],
    errs: &'a mut [Option<String>],
}

impl Ctx<'_> {
    fn fail(&mut self, i: usize, reason: String) {
        let row = self.owner[i];
        if self.errs[row].is_none() {
            self.errs[row] = Some(reason);
        }
    }
}

fn unwrap(v: &Value) -> &Value {
    match v {
        Value::Union(_, inner) => unwrap(inner),
        v => v,
    }
}

fn describe(v: &Value) -> String {
    let s = format!("{v:?}");
    if s.len() > 80 {
        format!("{}…", &s[..s.floor_char_boundary(80)])
    } else {
        s
    }
}

/// Calls `push` with each value (None for NULL); when `push` refuses a value, appends a
/// NULL in its place and records the row's error.
fn each<'v>(
    field: &Field,
    vals: &[Option<&'v Value>],
    ctx: &mut Ctx<'_>,
    mut push: impl FnMut(Option<&'v Value>) -> bool,
) {
    for (i, v) in vals.iter().enumerate() {
        let v = v.map(unwrap).filter(|v| !matches!(v, Value::Null));
        match v {
            None => {
                push(None);
                if !field.is_nullable() {
                    ctx.fail(
                        i,
                        format!("field '{}' is NULL but declared NOT NULL", field.name()),
                    );
                }
            }
            Some(x) => {
                if !push(Some(x)) {
                    push(None);
                    ctx.fail(
                        i,
                        format!(
                            "field '{}': {} does not fit {}",
                            field.name(),
                            describe(x),
                            sql_type_name(field.data_type())
                        ),
                    );
                }
            }
        }
    }
}

fn primitive<T: ArrowPrimitiveType>(
    field: &Field,
    vals: &[Option<&Value>],
    ctx: &mut Ctx<'_>,
    conv: impl Fn(&Value) -> Option<T::Native>,
) -> Result<ArrayRef> {
    let mut b = PrimitiveBuilder::<T>::with_capacity(vals.len());
    each(field, vals, ctx, |v| match v {
        None => {
            b.append_null();
            true
        }
        Some(v) => match conv(v) {
            Some(x) => {
                b.append_value(x);
                true
            }
            None => false,
        },
    });
    // Decimal precision and time zones ride on the type.
    Ok(Arc::new(
        b.finish().with_data_type(field.data_type().clone()),
    ))
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(x) => Some(i64::from(*x)),
        Value::Long(x) => Some(*x),
        _ => None,
    }
}

/// A timestamp value in `unit`.
fn timestamp(v: &Value, unit: TimeUnit) -> Option<i64> {
    let (value, per_second): (i64, i64) = match v {
        Value::TimestampMillis(x) | Value::LocalTimestampMillis(x) | Value::Long(x) => (*x, 1_000),
        Value::TimestampMicros(x) | Value::LocalTimestampMicros(x) => (*x, 1_000_000),
        Value::TimestampNanos(x) | Value::LocalTimestampNanos(x) => (*x, 1_000_000_000),
        _ => return None,
    };
    let target: i64 = match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    if target >= per_second {
        value.checked_mul(target / per_second)
    } else {
        Some(value.div_euclid(per_second / target))
    }
}

/// A decimal's unscaled value (big-endian two's complement bytes).
fn unscaled(bytes: &[u8]) -> Option<i128> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut full = [fill; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    Some(i128::from_be_bytes(full))
}

fn decimal(v: &Value, scale: i8) -> Option<i128> {
    match v {
        Value::Decimal(d) => unscaled(&<Vec<u8>>::try_from(d).ok()?),
        Value::Int(_) | Value::Long(_) => {
            let x = i128::from(int(v)?);
            x.checked_mul(10i128.checked_pow(u32::try_from(scale).ok()?)?)
        }
        _ => None,
    }
}

/// The column of `field` from `vals` (one per row; None when absent).
fn build(field: &Field, vals: &[Option<&Value>], ctx: &mut Ctx<'_>) -> Result<ArrayRef> {
    let dt = field.data_type();
    Ok(match dt {
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(vals.len());
            each(field, vals, ctx, |v| match v {
                None => {
                    b.append_null();
                    true
                }
                Some(Value::Boolean(x)) => {
                    b.append_value(*x);
                    true
                }
                Some(_) => false,
            });
            Arc::new(b.finish())
        }
        DataType::Int8 => primitive::<Int8Type>(field, vals, ctx, |v| int(v)?.try_into().ok())?,
        DataType::Int16 => primitive::<Int16Type>(field, vals, ctx, |v| int(v)?.try_into().ok())?,
        DataType::Int32 => primitive::<Int32Type>(field, vals, ctx, |v| int(v)?.try_into().ok())?,
        DataType::Int64 => primitive::<Int64Type>(field, vals, ctx, int)?,
        DataType::Float32 => primitive::<Float32Type>(field, vals, ctx, |v| match v {
            Value::Float(x) => Some(*x),
            Value::Double(x) => Some(*x as f32),
            v => int(v).map(|x| x as f32),
        })?,
        DataType::Float64 => primitive::<Float64Type>(field, vals, ctx, |v| match v {
            Value::Float(x) => Some(f64::from(*x)),
            Value::Double(x) => Some(*x),
            v => int(v).map(|x| x as f64),
        })?,
        DataType::Decimal128(_, s) => {
            let s = *s;
            primitive::<Decimal128Type>(field, vals, ctx, |v| decimal(v, s))?
        }
        DataType::Date32 => primitive::<Date32Type>(field, vals, ctx, |v| match v {
            Value::Date(d) | Value::Int(d) => Some(*d),
            _ => None,
        })?,
        DataType::Time32(TimeUnit::Second) => {
            primitive::<Time32SecondType>(field, vals, ctx, |v| match v {
                Value::TimeMillis(x) => Some(x / 1000),
                Value::TimeMicros(x) => i32::try_from(x / 1_000_000).ok(),
                _ => None,
            })?
        }
        DataType::Time32(_) => primitive::<Time32MillisecondType>(field, vals, ctx, |v| match v {
            Value::TimeMillis(x) | Value::Int(x) => Some(*x),
            Value::TimeMicros(x) => i32::try_from(x / 1000).ok(),
            _ => None,
        })?,
        DataType::Time64(TimeUnit::Nanosecond) => {
            primitive::<Time64NanosecondType>(field, vals, ctx, |v| match v {
                Value::TimeMillis(x) => Some(i64::from(*x) * 1_000_000),
                Value::TimeMicros(x) => x.checked_mul(1000),
                _ => None,
            })?
        }
        DataType::Time64(_) => primitive::<Time64MicrosecondType>(field, vals, ctx, |v| match v {
            Value::TimeMillis(x) => Some(i64::from(*x) * 1000),
            Value::TimeMicros(x) | Value::Long(x) => Some(*x),
            _ => None,
        })?,
        DataType::Timestamp(unit, _) => {
            let unit = *unit;
            let conv = |v: &Value| timestamp(v, unit);
            match unit {
                TimeUnit::Second => primitive::<TimestampSecondType>(field, vals, ctx, conv)?,
                TimeUnit::Millisecond => {
                    primitive::<TimestampMillisecondType>(field, vals, ctx, conv)?
                }
                TimeUnit::Microsecond => {
                    primitive::<TimestampMicrosecondType>(field, vals, ctx, conv)?
                }
                TimeUnit::Nanosecond => {
                    primitive::<TimestampNanosecondType>(field, vals, ctx, conv)?
                }
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let mut b = StringBuilder::with_capacity(vals.len(), 16 * vals.len());
            each(field, vals, ctx, |v| match v {
                None => {
                    b.append_null();
                    true
                }
                Some(Value::String(s) | Value::Enum(_, s)) => {
                    b.append_value(s);
                    true
                }
                Some(Value::Uuid(u)) => {
                    b.append_value(u.to_string());
                    true
                }
                Some(_) => false,
            });
            let a: ArrayRef = Arc::new(b.finish());
            cast(&a, dt)?
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            let mut b = BinaryBuilder::with_capacity(vals.len(), 16 * vals.len());
            each(field, vals, ctx, |v| match v {
                None => {
                    b.append_null();
                    true
                }
                Some(Value::Bytes(x) | Value::Fixed(_, x)) => {
                    b.append_value(x);
                    true
                }
                Some(_) => false,
            });
            let a: ArrayRef = Arc::new(b.finish());
            cast(&a, dt)?
        }
        DataType::List(item) => {
            let mut offsets = vec![0i32];
            let mut valid = Vec::with_capacity(vals.len());
            let mut children: Vec<Option<&Value>> = Vec::new();
            let mut owner: Vec<usize> = Vec::new();
            each(field, vals, ctx, |v| match v {
                None => {
                    valid.push(false);
                    offsets.push(offsets[offsets.len() - 1]);
                    true
                }
                Some(Value::Array(items)) => {
                    valid.push(true);
                    let start = children.len();
                    children.extend(items.iter().map(Some));
                    owner.extend(std::iter::repeat_n(valid.len() - 1, items.len()));
                    offsets.push(offsets[offsets.len() - 1] + (children.len() - start) as i32);
                    true
                }
                Some(_) => false,
            });
            let child = nested(item, &children, &owner, ctx)?;
            Arc::new(ListArray::try_new(
                item.clone(),
                OffsetBuffer::new(offsets.into()),
                child,
                Some(NullBuffer::from(valid)),
            )?)
        }
        DataType::Map(entries, sorted) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(unsupported(field));
            };
            let mut offsets = vec![0i32];
            let mut valid = Vec::with_capacity(vals.len());
            let mut keys = StringBuilder::new();
            let mut children: Vec<Option<&Value>> = Vec::new();
            let mut owner: Vec<usize> = Vec::new();
            each(field, vals, ctx, |v| match v {
                None => {
                    valid.push(false);
                    offsets.push(offsets[offsets.len() - 1]);
                    true
                }
                Some(Value::Map(m)) => {
                    valid.push(true);
                    // Sorted by key, so equal maps give equal rows.
                    let mut pairs: Vec<(&String, &Value)> = m.iter().collect();
                    pairs.sort_by(|a, b| a.0.cmp(b.0));
                    for (k, v) in pairs {
                        keys.append_value(k);
                        children.push(Some(v));
                        owner.push(valid.len() - 1);
                    }
                    offsets.push(children.len() as i32);
                    true
                }
                Some(_) => false,
            });
            let values = nested(&kv[1], &children, &owner, ctx)?;
            let keys: ArrayRef = Arc::new(keys.finish());
            let entries_array = StructArray::try_new(kv.clone(), vec![keys, values], None)?;
            Arc::new(MapArray::try_new(
                entries.clone(),
                OffsetBuffer::new(offsets.into()),
                entries_array,
                Some(NullBuffer::from(valid)),
                *sorted,
            )?)
        }
        DataType::Struct(fields) => {
            let mut valid = Vec::with_capacity(vals.len());
            let mut records: Vec<Option<&Vec<(String, Value)>>> = Vec::with_capacity(vals.len());
            each(field, vals, ctx, |v| match v {
                None => {
                    valid.push(false);
                    records.push(None);
                    true
                }
                Some(Value::Record(r)) => {
                    valid.push(true);
                    records.push(Some(r));
                    true
                }
                Some(_) => false,
            });
            let owner: Vec<usize> = (0..vals.len()).collect();
            let mut children = Vec::with_capacity(fields.len());
            for f in fields.iter() {
                let vs: Vec<Option<&Value>> = records
                    .iter()
                    .map(|r| r.and_then(|r| r.iter().find(|(n, _)| n == f.name()).map(|(_, v)| v)))
                    .collect();
                children.push(nested(f, &vs, &owner, ctx)?);
            }
            let fields: Fields = fields.clone();
            Arc::new(StructArray::try_new(
                fields,
                children,
                Some(NullBuffer::from(valid)),
            )?)
        }
        _ => return Err(unsupported(field)),
    })
}

/// The child column of nested values whose rows are `owner` (indexes into the parent's
/// values, whose own owners are in `ctx`).
fn nested(
    field: &Field,
    vals: &[Option<&Value>],
    owner: &[usize],
    ctx: &mut Ctx<'_>,
) -> Result<ArrayRef> {
    let top: Vec<usize> = owner.iter().map(|&i| ctx.owner[i]).collect();
    let mut inner = Ctx {
        owner: &top,
        errs: ctx.errs,
    };
    build(field, vals, &mut inner)
}

fn unsupported(field: &Field) -> Error {
    Error::UnsupportedType {
        format: "avro".into(),
        column: field.name().clone(),
        data_type: sql_type_name(field.data_type()),
    }
}
