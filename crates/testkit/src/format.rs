//! Rendering rows as the strings sqllogictest compares.

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

fn options_for(dt: &DataType) -> FormatOptions<'static> {
    let base = FormatOptions::default().with_null("NULL");
    let fmt = |u: &TimeUnit| match u {
        TimeUnit::Second => "%Y-%m-%d %H:%M:%S",
        TimeUnit::Millisecond => "%Y-%m-%d %H:%M:%S%.3f",
        TimeUnit::Microsecond => "%Y-%m-%d %H:%M:%S%.6f",
        TimeUnit::Nanosecond => "%Y-%m-%d %H:%M:%S%.9f",
    };
    match dt {
        DataType::Timestamp(u, None) => base.with_timestamp_format(Some(fmt(u))),
        DataType::Timestamp(u, Some(_)) => base.with_timestamp_tz_format(Some(fmt(u))),
        _ => base,
    }
}

/// One value as text: `NULL`, `(empty)` for an empty string, else Arrow's display with
/// SQL-style timestamps.
pub fn format_value(array: &dyn Array, row: usize) -> String {
    let opts = options_for(array.data_type());
    match ArrayFormatter::try_new(array, &opts) {
        Ok(f) => {
            let s = f.value(row).to_string();
            if s.is_empty() { "(empty)".into() } else { s }
        }
        Err(e) => format!("<{e}>"),
    }
}

/// Every row of `batches` as a vector of strings.
pub fn format_batches(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            rows.push(
                b.columns()
                    .iter()
                    .map(|c| format_value(c.as_ref(), r))
                    .collect(),
            );
        }
    }
    rows
}
