//! The Avro schema of a table: derived from its columns as Flink derives it, or given
//! (`avro.schema`) and checked against the columns.
//!
//! Derived mapping (Flink's): BOOLEAN → boolean; TINYINT, SMALLINT, INT → int; BIGINT →
//! long; FLOAT → float; DOUBLE → double; STRING → string; BYTES → bytes; DECIMAL(p, s) →
//! bytes with logical type decimal; DATE → int (date); TIME → int (time-millis) or long
//! (time-micros); TIMESTAMP and TIMESTAMP_LTZ → long (timestamp-millis up to precision
//! 3, timestamp-micros above); ARRAY → array; MAP<STRING, V> → map; ROW → record. A
//! nullable column is the union `["null", T]` with default null.

use apache_avro::Schema as AvroSchema;
use apache_avro::schema::{Name, ResolvedSchema};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use serde_json::{Value as Json, json};
use std::collections::HashMap;

use crate::common::sql_type::sql_type_name;
use crate::{Error, Result};

/// The record name Flink gives the top-level record.
const NAMESPACE: &str = "org.apache.flink.avro.generated";

fn unsupported(format: &str, column: &str, dt: &DataType) -> Error {
    Error::UnsupportedType {
        format: format.into(),
        column: column.into(),
        data_type: sql_type_name(dt),
    }
}

fn valid_name(name: &str) -> bool {
    let mut c = name.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn record_json(
    format: &str,
    name: &str,
    namespace: Option<&str>,
    fields: &Fields,
    path: &str,
    check_names: bool,
) -> Result<Json> {
    let mut out = Vec::new();
    for f in fields {
        if check_names && !valid_name(f.name()) {
            return Err(Error::BadOption {
                option: "format".into(),
                message: format!(
                    "column '{}' is not a valid Avro field name (letters, digits and _ , not \
                     starting with a digit); rename it or give 'avro.schema'",
                    f.name()
                ),
            });
        }
        let t = type_json(format, f, &format!("{path}_{}", f.name()), check_names)?;
        out.push(if f.is_nullable() {
            json!({"name": f.name(), "type": ["null", t], "default": null})
        } else {
            json!({"name": f.name(), "type": t})
        });
    }
    let mut r = json!({"type": "record", "name": name, "fields": out});
    if let Some(ns) = namespace {
        r["namespace"] = json!(ns);
    }
    Ok(r)
}

fn type_json(format: &str, f: &Field, path: &str, check_names: bool) -> Result<Json> {
    let dt = f.data_type();
    let nullable_inside = |inner: &Field| -> Result<()> {
        if inner.is_nullable() {
            Ok(())
        } else {
            Err(unsupported(format, f.name(), dt))
        }
    };
    let inner = |inner: &Field, p: &str| -> Result<Json> {
        let t = type_json(format, inner, p, check_names)?;
        Ok(if inner.is_nullable() {
            json!(["null", t])
        } else {
            t
        })
    };
    Ok(match dt {
        DataType::Boolean => json!("boolean"),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => json!("int"),
        DataType::Int64 => json!("long"),
        DataType::Float32 => json!("float"),
        DataType::Float64 => json!("double"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => json!("string"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => json!("bytes"),
        DataType::Decimal128(p, s) => {
            json!({"type": "bytes", "logicalType": "decimal", "precision": p, "scale": s})
        }
        DataType::Date32 => json!({"type": "int", "logicalType": "date"}),
        DataType::Time32(_) => json!({"type": "int", "logicalType": "time-millis"}),
        DataType::Time64(_) => json!({"type": "long", "logicalType": "time-micros"}),
        DataType::Timestamp(TimeUnit::Second | TimeUnit::Millisecond, _) => {
            json!({"type": "long", "logicalType": "timestamp-millis"})
        }
        DataType::Timestamp(_, _) => json!({"type": "long", "logicalType": "timestamp-micros"}),
        DataType::List(item) => {
            nullable_inside(item)?;
            json!({"type": "array", "items": inner(item, path)?})
        }
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(unsupported(format, f.name(), dt));
            };
            if kv.len() != 2 || !matches!(kv[0].data_type(), DataType::Utf8) {
                return Err(unsupported(format, f.name(), dt));
            }
            nullable_inside(&kv[1])?;
            json!({"type": "map", "values": inner(&kv[1], path)?})
        }
        DataType::Struct(fields) => {
            for x in fields {
                nullable_inside(x)?;
            }
            record_json(format, path, None, fields, path, check_names)?
        }
        _ => return Err(unsupported(format, f.name(), dt)),
    })
}

/// A table's Avro schema and the named types it refers to.
#[derive(Clone)]
pub(crate) struct TableSchema {
    /// The writer (and reader) schema: a record.
    pub(crate) avro: AvroSchema,
    /// The named types, for `Ref`s in a given schema.
    pub(crate) names: HashMap<Name, AvroSchema>,
    /// For each column, the index of its field in the record.
    pub(crate) positions: Vec<usize>,
}

impl TableSchema {
    /// The schema derived from `schema`, or `given` (JSON) checked against it.
    pub(crate) fn new(format: &str, schema: &Schema, given: Option<&str>) -> Result<Self> {
        // The column types are checked either way (what the format can carry).
        let derived = record_json(
            format,
            "record",
            Some(NAMESPACE),
            schema.fields(),
            "record",
            given.is_none(),
        )?;
        let text = match given {
            Some(g) => g.to_string(),
            None => derived.to_string(),
        };
        let option = format!("{format}.schema");
        let avro = AvroSchema::parse_str(&text).map_err(|e| Error::BadOption {
            option: option.clone(),
            message: format!("not a valid Avro schema: {e}"),
        })?;
        let AvroSchema::Record(record) = &avro else {
            return Err(Error::BadOption {
                option,
                message: "the schema must be a record (one field per column)".into(),
            });
        };
        let mut positions = Vec::new();
        for f in schema.fields() {
            let Some(&p) = record.lookup.get(f.name()) else {
                let have: Vec<&str> = record.fields.iter().map(|x| x.name.as_str()).collect();
                return Err(Error::BadOption {
                    option,
                    message: format!(
                        "column '{}' is not a field of the schema's record (its fields: {})",
                        f.name(),
                        have.join(", ")
                    ),
                });
            };
            positions.push(p);
        }
        let names = ResolvedSchema::try_from(&avro)
            .map_err(|e| Error::BadOption {
                option: format!("{format}.schema"),
                message: format!("not a valid Avro schema: {e}"),
            })?
            .get_names()
            .iter()
            .map(|(n, s)| (n.clone(), (*s).clone()))
            .collect();
        Ok(TableSchema {
            avro,
            names,
            positions,
        })
    }
}
