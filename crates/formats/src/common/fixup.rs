//! Column fix-ups between what an Arrow reader produces and the declared schema.
//!
//! Owns: the *wire schema* (the declared one with some columns read as text), and the
//! conversion of those text columns into their declared types with a per-row error
//! naming the field and the value (`field 'price': cannot parse "abc" as BIGINT`), or a
//! null under `ignore-parse-errors`; the check of `NOT NULL` columns; splitting CSV
//! arrays and rows on their element delimiter. Does not own: reading bytes (engines).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, ListArray, PrimitiveBuilder, StringArray, StringBuilder, StructArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{
    ArrowTimestampType, DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::record_batch::RecordBatch;

use super::sql_type::sql_type_name;
use super::temporal::parse_timestamp;
use crate::Result;

/// What to do with one column after the Arrow reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fix {
    /// The reader produced the declared type.
    Keep,
    /// Text on the wire, parsed into the declared type.
    Parse,
    /// Text on the wire holding `a;b;c`: an ARRAY split on the byte.
    SplitList(u8),
    /// Text on the wire holding `a;b;c`: a ROW split on the byte.
    SplitRow(u8),
}

/// Per-column fixes for one table.
#[derive(Debug)]
pub(crate) struct Fixups {
    declared: SchemaRef,
    wire: SchemaRef,
    fixes: Vec<Fix>,
    ignore_errors: bool,
}

/// A row index and why the row cannot be kept.
pub(crate) type RowError = (usize, String);

impl Fixups {
    /// `fixes` has one entry per declared column. With `ignore_errors` a value that
    /// does not parse becomes null instead of rejecting its row.
    pub(crate) fn new(declared: SchemaRef, fixes: Vec<Fix>, ignore_errors: bool) -> Self {
        let fields: Vec<Field> = declared
            .fields()
            .iter()
            .zip(&fixes)
            .map(|(f, fix)| match fix {
                Fix::Keep => f.as_ref().clone().with_nullable(true),
                _ => Field::new(f.name(), DataType::Utf8, true),
            })
            .collect();
        let wire = Arc::new(Schema::new(fields));
        Fixups {
            declared,
            wire,
            fixes,
            ignore_errors,
        }
    }

    /// What the Arrow reader must produce: every column nullable, fixed ones as text.
    pub(crate) fn wire_schema(&self) -> SchemaRef {
        self.wire.clone()
    }

    /// The table's declared schema.
    pub(crate) fn declared_schema(&self) -> SchemaRef {
        self.declared.clone()
    }

    /// Converts a wire batch into declared columns, plus errors sorted by row.
    pub(crate) fn apply(&self, wire: &RecordBatch) -> Result<(Vec<ArrayRef>, Vec<RowError>)> {
        let mut errors = Vec::new();
        let mut columns = Vec::with_capacity(self.fixes.len());
        for ((field, fix), column) in self
            .declared
            .fields()
            .iter()
            .zip(&self.fixes)
            .zip(wire.columns())
        {
            let name = field.name();
            let array = match (fix, column.as_string_opt::<i32>()) {
                (Fix::Keep, _) | (_, None) => column.clone(),
                (Fix::Parse, Some(text)) => {
                    let (array, failed) = parse_strings(text, field.data_type())?;
                    self.report(name, field.data_type(), text, &failed, None, &mut errors);
                    array
                }
                (Fix::SplitList(d), Some(text)) => self.split_list(field, text, *d, &mut errors)?,
                (Fix::SplitRow(d), Some(text)) => self.split_row(field, text, *d, &mut errors)?,
            };
            if !field.is_nullable() && array.null_count() > 0 {
                for row in 0..array.len() {
                    if array.is_null(row) {
                        errors.push((row, format!("field '{name}' is NOT NULL but has no value")));
                    }
                }
            }
            columns.push(array);
        }
        errors.sort_by_key(|(row, _)| *row);
        Ok((columns, errors))
    }

    /// Turns failed positions into row errors (unless ignoring errors). `rows` maps a
    /// position in `text` to its row when `text` is a flattened child.
    fn report(
        &self,
        name: &str,
        data_type: &DataType,
        text: &StringArray,
        failed: &[usize],
        rows: Option<&OffsetBuffer<i32>>,
        errors: &mut Vec<RowError>,
    ) {
        if self.ignore_errors {
            return;
        }
        for &i in failed {
            let row = match rows {
                None => i,
                Some(offsets) => offsets.partition_point(|&o| o as usize <= i) - 1,
            };
            let value = shorten(text.value(i));
            let ty = sql_type_name(data_type);
            errors.push((
                row,
                format!("field '{name}': cannot parse \"{value}\" as {ty}"),
            ));
        }
    }

    fn split_list(
        &self,
        field: &Field,
        text: &StringArray,
        delimiter: u8,
        errors: &mut Vec<RowError>,
    ) -> Result<ArrayRef> {
        let DataType::List(item) = field.data_type() else {
            return Ok(Arc::new(text.clone()));
        };
        let mut flat = StringBuilder::new();
        let mut offsets = vec![0i32];
        let mut count = 0i32;
        let mut valid = Vec::with_capacity(text.len());
        for value in text.iter() {
            // A blank field is a NULL array (the encoder writes NULL that way).
            let value = value.filter(|v| !v.is_empty());
            valid.push(value.is_some());
            for part in value
                .into_iter()
                .flat_map(|v| v.split(char::from(delimiter)))
            {
                flat.append_value(part);
                count = count.saturating_add(1);
            }
            offsets.push(count);
        }
        let flat = flat.finish();
        let offsets = OffsetBuffer::new(offsets.into());
        let (values, failed) = parse_strings(&flat, item.data_type())?;
        self.report(
            field.name(),
            item.data_type(),
            &flat,
            &failed,
            Some(&offsets),
            errors,
        );
        let list =
            ListArray::try_new(item.clone(), offsets, values, Some(NullBuffer::from(valid)))?;
        Ok(Arc::new(list))
    }

    fn split_row(
        &self,
        field: &Field,
        text: &StringArray,
        delimiter: u8,
        errors: &mut Vec<RowError>,
    ) -> Result<ArrayRef> {
        let DataType::Struct(children) = field.data_type() else {
            return Ok(Arc::new(text.clone()));
        };
        let mut builders: Vec<StringBuilder> =
            children.iter().map(|_| StringBuilder::new()).collect();
        let mut valid = Vec::with_capacity(text.len());
        for (row, value) in text.iter().enumerate() {
            let value = value.filter(|v| !v.is_empty());
            let parts: Option<Vec<&str>> = value.map(|v| v.split(char::from(delimiter)).collect());
            match parts {
                Some(parts) if parts.len() == children.len() => {
                    for (b, p) in builders.iter_mut().zip(parts) {
                        b.append_value(p);
                    }
                    valid.push(true);
                }
                other => {
                    if let Some(parts) = other {
                        errors.push((
                            row,
                            format!(
                                "field '{}': expected {} values separated by '{}', found {}",
                                field.name(),
                                children.len(),
                                char::from(delimiter),
                                parts.len()
                            ),
                        ));
                    }
                    builders.iter_mut().for_each(|b| b.append_null());
                    valid.push(false);
                }
            }
        }
        let mut arrays = Vec::with_capacity(children.len());
        for (child, mut b) in children.iter().zip(builders) {
            let strings = b.finish();
            let (array, failed) = parse_strings(&strings, child.data_type())?;
            let path = format!("{}.{}", field.name(), child.name());
            self.report(&path, child.data_type(), &strings, &failed, None, errors);
            if !child.is_nullable() {
                for (row, ok) in valid.iter_mut().enumerate() {
                    if *ok && array.is_null(row) {
                        *ok = false;
                        errors.push((row, format!("field '{path}' is NOT NULL but has no value")));
                    }
                }
            }
            arrays.push(array);
        }
        let nulls = NullBuffer::from(valid);
        let array = StructArray::try_new(children.clone(), arrays, Some(nulls))?;
        Ok(Arc::new(array))
    }
}

/// Cuts a value for an error message (at most 64 characters).
pub(crate) fn shorten(value: &str) -> String {
    match value.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &value[..i]),
        None => value.to_string(),
    }
}

/// Parses text into `data_type`; returns the array and the positions that held text
/// that did not parse (null in the array). Blank text is null, not an error, except
/// for VARCHAR.
pub(crate) fn parse_strings(
    text: &StringArray,
    data_type: &DataType,
) -> Result<(ArrayRef, Vec<usize>)> {
    match data_type {
        DataType::Utf8 => Ok((Arc::new(text.clone()), Vec::new())),
        DataType::Timestamp(unit, tz) => Ok(match unit {
            TimeUnit::Second => parse_ts::<TimestampSecondType>(text, *unit, tz),
            TimeUnit::Millisecond => parse_ts::<TimestampMillisecondType>(text, *unit, tz),
            TimeUnit::Microsecond => parse_ts::<TimestampMicrosecondType>(text, *unit, tz),
            TimeUnit::Nanosecond => parse_ts::<TimestampNanosecondType>(text, *unit, tz),
        }),
        _ => {
            let options = CastOptions {
                safe: true,
                ..Default::default()
            };
            let array = cast_with_options(text, data_type, &options)?;
            let failed = (0..text.len())
                .filter(|&i| {
                    text.is_valid(i) && array.is_null(i) && !text.value(i).trim().is_empty()
                })
                .collect();
            Ok((array, failed))
        }
    }
}

fn parse_ts<T: ArrowTimestampType>(
    text: &StringArray,
    unit: TimeUnit,
    tz: &Option<Arc<str>>,
) -> (ArrayRef, Vec<usize>) {
    let mut builder = PrimitiveBuilder::<T>::with_capacity(text.len());
    let mut failed = Vec::new();
    for (i, value) in text.iter().enumerate() {
        match value {
            None => builder.append_null(),
            Some(v) => match parse_timestamp(v, unit) {
                Some(t) => builder.append_value(t),
                None => {
                    if !v.trim().is_empty() {
                        failed.push(i);
                    }
                    builder.append_null();
                }
            },
        }
    }
    (
        Arc::new(builder.finish().with_timezone_opt(tz.clone())),
        failed,
    )
}
