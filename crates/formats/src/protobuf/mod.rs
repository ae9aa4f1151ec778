//! `'format' = 'protobuf'`: each record (a Kafka message, a Redis value) is one
//! Protobuf message of a type named by `protobuf.message-name`, described by a compiled
//! descriptor set (`protobuf.descriptor-file`, what `protoc --include_imports
//! --descriptor_set_out=…` writes). Fields are matched to columns by name.
//!
//! Decoding maps the message's values onto the value tree the `avro` decoder fills
//! ([`crate::avro`]), so both formats convert to Arrow the same way; encoding builds a
//! dynamic message per row.

use std::collections::HashMap;

use apache_avro::types::Value as Tree;
use datafusion::arrow::array::{Array, AsArray, StructArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use prost_reflect::ReflectMessage as _;
use prost_reflect::prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value,
};

use crate::avro::decode::{Parser, TreeDecoder};
use crate::avro::encode::{bytes_at, int_at, string_at, timestamp_at};
use crate::common::messages::encode_rows;
use crate::common::sql_type::sql_type_name;
use crate::registry::FormatFactory;
use crate::{Decoder, Encoder, Error, FormatOptions, Result};

#[cfg(test)]
mod tests;

/// `protobuf`.
pub struct ProtobufFormat;

const TIMESTAMP: &str = "google.protobuf.Timestamp";

fn bad(option: &str, message: String) -> Error {
    Error::BadOption {
        option: format!("protobuf.{option}"),
        message,
    }
}

/// The message type the options name, checked against the table's columns; and for
/// each column, the index of its field among the message's fields.
fn message(options: &FormatOptions) -> Result<(MessageDescriptor, Vec<usize>)> {
    let path = options.get("protobuf", "descriptor-file").ok_or_else(|| {
        bad(
            "descriptor-file",
            "is required: the path of a compiled descriptor set, e.g. from `protoc \
             --include_imports --descriptor_set_out=orders.desc orders.proto`"
                .into(),
        )
    })?;
    let bytes = std::fs::read(path)
        .map_err(|e| bad("descriptor-file", format!("cannot read '{path}': {e}")))?;
    let pool = DescriptorPool::decode(bytes.as_slice()).map_err(|e| {
        bad(
            "descriptor-file",
            format!("'{path}' is not a descriptor set (protoc --descriptor_set_out): {e}"),
        )
    })?;
    // Flink's Java class name (`com.example.Outer$Order`) names the message too.
    let name = match (
        options.get("protobuf", "message-name"),
        options.get("protobuf", "message-class-name"),
    ) {
        (Some(n), _) => n.to_string(),
        (None, Some(c)) => c.replace('$', "."),
        (None, None) => {
            return Err(bad(
                "message-name",
                "is required: the message type's full name, e.g. 'shop.Order'".into(),
            ));
        }
    };
    let desc = pool
        .get_message_by_name(&name)
        .or_else(|| {
            // A Java class name has the outer class where the package is.
            let short = name.rsplit('.').next().unwrap_or(&name);
            let mut m = pool.all_messages().filter(|m| m.name() == short);
            match (m.next(), m.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        })
        .ok_or_else(|| {
            let known: Vec<String> = pool
                .all_messages()
                .filter(|m| !m.is_map_entry())
                .map(|m| m.full_name().to_string())
                .take(20)
                .collect();
            bad(
                "message-name",
                format!(
                    "'{name}' is not a message of the descriptor set (it has: {})",
                    known.join(", ")
                ),
            )
        })?;
    let fields: Vec<FieldDescriptor> = desc.fields().collect();
    let mut positions = Vec::new();
    for f in options.schema.fields() {
        let Some(p) = fields.iter().position(|x| x.name() == f.name()) else {
            let have: Vec<&str> = fields.iter().map(FieldDescriptor::name).collect();
            return Err(bad(
                "message-name",
                format!(
                    "column '{}' is not a field of {} (its fields: {})",
                    f.name(),
                    desc.full_name(),
                    have.join(", ")
                ),
            ));
        };
        if !fits(&fields[p], f.data_type()) {
            return Err(Error::BadOption {
                option: "format".into(),
                message: format!(
                    "column '{}' is {} but field {} of {} is {}",
                    f.name(),
                    sql_type_name(f.data_type()),
                    fields[p].name(),
                    desc.full_name(),
                    describe(&fields[p])
                ),
            });
        }
        positions.push(p);
    }
    Ok((desc, positions))
}

fn describe(f: &FieldDescriptor) -> String {
    let k = match f.kind() {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => e.full_name().to_string(),
        k => format!("{k:?}").to_ascii_lowercase(),
    };
    if f.is_map() {
        "a map".into()
    } else if f.is_list() {
        format!("repeated {k}")
    } else {
        k
    }
}

/// Whether a column of `dt` can hold field `f` (and be written to it).
fn fits(f: &FieldDescriptor, dt: &DataType) -> bool {
    if f.is_map() {
        let (Kind::Message(entry), DataType::Map(entries, _)) = (f.kind(), dt) else {
            return false;
        };
        let DataType::Struct(kv) = entries.data_type() else {
            return false;
        };
        return kv.len() == 2
            && fits_kind(&entry.map_entry_value_field().kind(), kv[1].data_type());
    }
    if f.is_list() {
        return match dt {
            DataType::List(item) => fits_kind(&f.kind(), item.data_type()),
            _ => false,
        };
    }
    fits_kind(&f.kind(), dt)
}

fn fits_kind(kind: &Kind, dt: &DataType) -> bool {
    use DataType as D;
    let int = matches!(dt, D::Int8 | D::Int16 | D::Int32 | D::Int64);
    match kind {
        Kind::Bool => matches!(dt, D::Boolean),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => int,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
            int || matches!(dt, D::Timestamp(..))
        }
        Kind::Float | Kind::Double => matches!(dt, D::Float32 | D::Float64),
        Kind::String => matches!(dt, D::Utf8 | D::LargeUtf8 | D::Utf8View),
        Kind::Bytes => matches!(dt, D::Binary | D::LargeBinary | D::BinaryView),
        Kind::Enum(_) => matches!(dt, D::Utf8 | D::LargeUtf8 | D::Utf8View),
        Kind::Message(m) if m.full_name() == TIMESTAMP => matches!(dt, D::Timestamp(..)),
        Kind::Message(m) => match dt {
            D::Struct(fields) => fields.iter().all(|c| {
                m.get_field_by_name(c.name())
                    .is_some_and(|f| fits(&f, c.data_type()))
            }),
            _ => false,
        },
    }
}

impl FormatFactory for ProtobufFormat {
    fn name(&self) -> &'static str {
        "protobuf"
    }

    fn option_keys(&self) -> &'static [&'static str] {
        &[
            "descriptor-file",
            "message-name",
            "message-class-name",
            "read-default-values",
        ]
    }

    fn decoder(&self, options: &FormatOptions) -> Result<Box<dyn Decoder>> {
        let (desc, positions) = message(options)?;
        let read_defaults = options.get_bool("protobuf", "read-default-values", false)?;
        Ok(Box::new(TreeDecoder::new(
            &options.table,
            options.schema.clone(),
            Box::new(ProtobufParser {
                desc,
                read_defaults,
            }),
            positions,
        )))
    }

    fn encoder(&self, options: &FormatOptions) -> Result<Box<dyn Encoder>> {
        let (desc, _) = message(options)?;
        options.get_bool("protobuf", "read-default-values", false)?;
        Ok(Box::new(ProtobufEncoder {
            desc,
            schema: options.schema.clone(),
        }))
    }

    fn binary(&self) -> bool {
        true
    }
}

/// Messages of one type, as value trees.
struct ProtobufParser {
    desc: MessageDescriptor,
    /// A field with presence that is not set reads as its default, not NULL.
    read_defaults: bool,
}

impl Parser for ProtobufParser {
    fn parse(&self, records: &[&[u8]]) -> Vec<std::result::Result<Tree, String>> {
        records
            .iter()
            .map(|raw| {
                DynamicMessage::decode(self.desc.clone(), *raw)
                    .map(|m| self.tree(&m))
                    .map_err(|e| format!("not a {} message: {e}", self.desc.full_name()))
            })
            .collect()
    }
}

impl ProtobufParser {
    /// A message as a record with every field, in the descriptor's order.
    fn tree(&self, m: &DynamicMessage) -> Tree {
        let fields = m
            .descriptor()
            .fields()
            .map(|f| {
                let v = if !f.is_list()
                    && !f.is_map()
                    && f.supports_presence()
                    && !m.has_field(&f)
                    && !self.read_defaults
                {
                    Tree::Null
                } else {
                    self.value(&m.get_field(&f), &f.kind())
                };
                (f.name().to_string(), v)
            })
            .collect();
        Tree::Record(fields)
    }

    fn value(&self, v: &Value, kind: &Kind) -> Tree {
        match v {
            Value::Bool(b) => Tree::Boolean(*b),
            Value::I32(x) => Tree::Int(*x),
            Value::I64(x) => Tree::Long(*x),
            Value::U32(x) => Tree::Long(i64::from(*x)),
            Value::U64(x) => match i64::try_from(*x) {
                Ok(x) => Tree::Long(x),
                Err(_) => Tree::String(x.to_string()),
            },
            Value::F32(x) => Tree::Float(*x),
            Value::F64(x) => Tree::Double(*x),
            Value::String(s) => Tree::String(s.clone()),
            Value::Bytes(b) => Tree::Bytes(b.to_vec()),
            Value::EnumNumber(n) => match kind {
                Kind::Enum(e) => match e.get_value(*n) {
                    Some(ev) => Tree::Enum(*n as u32, ev.name().to_string()),
                    None => Tree::String(n.to_string()),
                },
                _ => Tree::Int(*n),
            },
            Value::Message(m) if m.descriptor().full_name() == TIMESTAMP => {
                let field = |name: &str| {
                    m.get_field_by_name(name).and_then(|v| match v.as_ref() {
                        Value::I64(x) => Some(*x),
                        Value::I32(x) => Some(i64::from(*x)),
                        _ => None,
                    })
                };
                let seconds = field("seconds").unwrap_or(0);
                let nanos = field("nanos").unwrap_or(0);
                match seconds
                    .checked_mul(1_000_000)
                    .and_then(|s| s.checked_add(nanos / 1000))
                {
                    Some(us) => Tree::TimestampMicros(us),
                    None => Tree::String(format!("{seconds}s {nanos}ns")),
                }
            }
            Value::Message(m) => self.tree(m),
            Value::List(items) => Tree::Array(items.iter().map(|i| self.value(i, kind)).collect()),
            Value::Map(entries) => {
                let value_kind = match kind {
                    Kind::Message(e) => e.map_entry_value_field().kind(),
                    k => k.clone(),
                };
                Tree::Map(
                    entries
                        .iter()
                        .map(|(k, v)| (map_key_text(k), self.value(v, &value_kind)))
                        .collect(),
                )
            }
        }
    }
}

fn map_key_text(k: &MapKey) -> String {
    match k {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(x) => x.to_string(),
        MapKey::I64(x) => x.to_string(),
        MapKey::U32(x) => x.to_string(),
        MapKey::U64(x) => x.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// Writes each row as one message.
struct ProtobufEncoder {
    desc: MessageDescriptor,
    schema: SchemaRef,
}

fn write_error(message: String) -> Error {
    Error::BadOption {
        option: "format".into(),
        message: format!("protobuf: {message}"),
    }
}

impl ProtobufEncoder {
    fn write_rows(
        &self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ends: Option<&mut Vec<usize>>,
    ) -> Result<()> {
        debug_assert_eq!(batch.num_columns(), self.schema.fields().len());
        encode_rows(batch, out, ends, |rows, row, out| {
            let m = message_of(rows, row, &self.desc)
                .map_err(|e| write_error(format!("row {row}: {e}")))?;
            m.encode(out)
                .map_err(|e| write_error(format!("row {row}: {e}")))
        })
    }
}

impl Encoder for ProtobufEncoder {
    fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        self.write_rows(batch, out, None)
    }

    fn encode_each(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()> {
        self.write_rows(batch, out, Some(ends))
    }
}

/// Row `row` of the struct `s` as a message of `desc` (NULL columns are not set).
fn message_of(
    s: &StructArray,
    row: usize,
    desc: &MessageDescriptor,
) -> std::result::Result<DynamicMessage, String> {
    let mut m = DynamicMessage::new(desc.clone());
    for (field, col) in s.fields().iter().zip(s.columns()) {
        let Some(fd) = desc.get_field_by_name(field.name()) else {
            continue;
        };
        if col.is_null(row) {
            continue;
        }
        let v = field_value(col.as_ref(), row, &fd)
            .map_err(|e| format!("field '{}': {e}", fd.name()))?;
        m.try_set_field(&fd, v)
            .map_err(|e| format!("field '{}': {e}", fd.name()))?;
    }
    Ok(m)
}

fn field_value(
    col: &dyn Array,
    row: usize,
    fd: &FieldDescriptor,
) -> std::result::Result<Value, String> {
    if fd.is_map() {
        let Kind::Message(entry) = fd.kind() else {
            return Err("not a map".into());
        };
        let key_kind = entry.map_entry_key_field().kind();
        let value_kind = entry.map_entry_value_field().kind();
        let map = col.as_map_opt().ok_or("the column is not a MAP")?;
        let entries = map.value(row);
        let (keys, vals) = (entries.column(0), entries.column(1));
        let mut out = HashMap::with_capacity(entries.len());
        for i in 0..entries.len() {
            let k = string_at(keys.as_ref(), i).ok_or("map keys must be STRING")?;
            let key = match key_kind {
                Kind::String => MapKey::String(k.to_string()),
                Kind::Bool => MapKey::Bool(k == "true"),
                Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(
                    k.parse()
                        .map_err(|_| format!("map key '{k}' is not an int32"))?,
                ),
                Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(
                    k.parse()
                        .map_err(|_| format!("map key '{k}' is not an int64"))?,
                ),
                Kind::Uint32 | Kind::Fixed32 => MapKey::U32(
                    k.parse()
                        .map_err(|_| format!("map key '{k}' is not a uint32"))?,
                ),
                _ => MapKey::U64(
                    k.parse()
                        .map_err(|_| format!("map key '{k}' is not a uint64"))?,
                ),
            };
            if vals.is_null(i) {
                continue;
            }
            out.insert(key, scalar(vals.as_ref(), i, &value_kind)?);
        }
        return Ok(Value::Map(out));
    }
    if fd.is_list() {
        let list = col
            .as_list_opt::<i32>()
            .ok_or("the column is not an ARRAY")?;
        let items = list.value(row);
        let mut out = Vec::with_capacity(items.len());
        for i in 0..items.len() {
            if items.is_null(i) {
                return Err("a repeated field cannot hold NULL".into());
            }
            out.push(scalar(items.as_ref(), i, &fd.kind())?);
        }
        return Ok(Value::List(out));
    }
    scalar(col, row, &fd.kind())
}

/// One value of `kind` (not repeated) from `col` at `row` (not NULL).
fn scalar(col: &dyn Array, row: usize, kind: &Kind) -> std::result::Result<Value, String> {
    let int = || int_at(col, row).ok_or_else(|| format!("{} is not an integer", col.data_type()));
    let range = |x: i64, what: &str| format!("{x} does not fit {what}");
    Ok(match kind {
        Kind::Bool => Value::Bool(
            col.as_boolean_opt()
                .ok_or("the column is not BOOLEAN")?
                .value(row),
        ),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            let x = int()?;
            Value::I32(i32::try_from(x).map_err(|_| range(x, "int32"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => {
            let x = int()?;
            Value::U32(u32::try_from(x).map_err(|_| range(x, "uint32"))?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            let x = match col.data_type() {
                DataType::Timestamp(..) => timestamp_at(col, row, 1000).ok_or("bad timestamp")?,
                _ => int()?,
            };
            Value::U64(u64::try_from(x).map_err(|_| range(x, "uint64"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => match col.data_type() {
            DataType::Timestamp(..) => {
                Value::I64(timestamp_at(col, row, 1000).ok_or("bad timestamp")?)
            }
            _ => Value::I64(int()?),
        },
        Kind::Float | Kind::Double => {
            let x = match col.data_type() {
                DataType::Float32 => f64::from(col.as_primitive::<Float32Type>().value(row)),
                DataType::Float64 => col.as_primitive::<Float64Type>().value(row),
                t => return Err(format!("{t} is not a float")),
            };
            if matches!(kind, Kind::Float) {
                Value::F32(x as f32)
            } else {
                Value::F64(x)
            }
        }
        Kind::String => Value::String(
            string_at(col, row)
                .ok_or("the column is not STRING")?
                .to_string(),
        ),
        Kind::Bytes => Value::Bytes(
            bytes_at(col, row)
                .ok_or("the column is not BYTES")?
                .to_vec()
                .into(),
        ),
        Kind::Enum(e) => {
            let s = string_at(col, row).ok_or("the column is not STRING")?;
            let v = e
                .get_value_by_name(s)
                .ok_or_else(|| format!("'{s}' is not a value of enum {}", e.full_name()))?;
            Value::EnumNumber(v.number())
        }
        Kind::Message(m) if m.full_name() == TIMESTAMP => {
            let us = timestamp_at(col, row, 1_000_000).ok_or("the column is not a TIMESTAMP")?;
            let mut t = DynamicMessage::new(m.clone());
            t.set_field_by_name("seconds", Value::I64(us.div_euclid(1_000_000)));
            t.set_field_by_name(
                "nanos",
                Value::I32((us.rem_euclid(1_000_000) * 1000) as i32),
            );
            Value::Message(t)
        }
        Kind::Message(m) => {
            let s = col.as_struct_opt().ok_or("the column is not a ROW")?;
            Value::Message(message_of(s, row, m)?)
        }
    })
}
