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

/// Rows of `batches` as strings; a changelog (rows with kinds) is applied, so the
/// result is the final table.
pub fn format_batches(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let changelog = batches
        .iter()
        .any(|b| sluice_types::is_changelog(b.schema_ref()));
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut counts: std::collections::HashMap<Vec<String>, i64> = Default::default();
    for b in batches {
        let kinds = sluice_types::kinds_of(b);
        let b = sluice_types::without_row_kind(b);
        for (r, kind) in kinds.iter().enumerate() {
            let row: Vec<String> = b
                .columns()
                .iter()
                .map(|c| format_value(c.as_ref(), r))
                .collect();
            if !changelog {
                rows.push(row);
            } else {
                // A changelog is applied: a retraction takes back the row it names.
                let delta = if kind.is_accumulate() { 1 } else { -1 };
                match counts.get_mut(&row) {
                    Some(n) => *n += delta,
                    None => {
                        counts.insert(row.clone(), delta);
                        rows.push(row);
                    }
                }
            }
        }
    }
    if !changelog {
        return rows;
    }
    let mut out = Vec::new();
    for row in rows {
        let n = counts.get(&row).copied().unwrap_or(0);
        if n < 0 {
            let mut orphan = vec![format!("retracted {} more times than inserted", -n)];
            orphan.extend(row);
            out.push(orphan);
            continue;
        }
        for _ in 0..n {
            out.push(row.clone());
        }
    }
    out
}
