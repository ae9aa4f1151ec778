//! Flink SQL names of Arrow types, for messages users read.
//!
//! Owns: `BIGINT` for `Int64`, `TIMESTAMP(3)` for `Timestamp(ms, None)` and so on.
//! Does not own: the mapping from SQL to Arrow (the `sql` crate does that).

use datafusion::arrow::datatypes::{DataType, TimeUnit};

fn precision(unit: TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

/// The Flink SQL spelling of `data_type` (`ARRAY<BIGINT>`, `TIMESTAMP_LTZ(3)`, …).
pub(crate) fn sql_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "NULL".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Time32(u) => format!("TIME({})", precision(*u)),
        DataType::Time64(u) => format!("TIME({})", precision(*u)),
        DataType::Timestamp(u, None) => format!("TIMESTAMP({})", precision(*u)),
        DataType::Timestamp(u, Some(_)) => format!("TIMESTAMP_LTZ({})", precision(*u)),
        DataType::List(f) => format!("ARRAY<{}>", sql_type_name(f.data_type())),
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("{} {}", f.name(), sql_type_name(f.data_type())))
                .collect();
            format!("ROW<{}>", inner.join(", "))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP<{}, {}>",
                sql_type_name(kv[0].data_type()),
                sql_type_name(kv[1].data_type())
            ),
            other => format!("MAP<{other}>"),
        },
        other => other.to_string(),
    }
}

/// Finds the type of a dotted field path (`a.b`) below the top-level `fields`.
pub(crate) fn type_at_path<'a>(
    fields: &'a datafusion::arrow::datatypes::Fields,
    path: &[&str],
) -> Option<&'a DataType> {
    let (first, rest) = path.split_first()?;
    let field = fields.iter().find(|f| f.name() == first)?;
    let mut dt = field.data_type();
    for name in rest {
        dt = match dt {
            DataType::Struct(children) => children.iter().find(|f| f.name() == name)?.data_type(),
            _ => return None,
        };
    }
    Some(dt)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::Field;

    use super::*;

    #[test]
    fn names_match_flink() {
        assert_eq!(sql_type_name(&DataType::Int64), "BIGINT");
        assert_eq!(
            sql_type_name(&DataType::Timestamp(
                TimeUnit::Millisecond,
                Some("UTC".into())
            )),
            "TIMESTAMP_LTZ(3)"
        );
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int32, true)));
        assert_eq!(sql_type_name(&list), "ARRAY<INT>");
    }
}
