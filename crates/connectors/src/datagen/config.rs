//! The `WITH (...)` options of the `datagen` connector (Flink's names and meanings).
//!
//! Owns: the table-level options and the grouping of `fields.<path>.<option>` keys by
//! field path; which options suit which type is checked in `fields.rs`, where the
//! schema is known. Unknown options are errors.

use std::collections::BTreeMap;

use crate::{Options, Result};

/// Default `rows-per-second`, as in Flink.
pub(crate) const DEFAULT_ROWS_PER_SECOND: u64 = 10_000;

/// The per-field options Flink's datagen knows.
pub(crate) const FIELD_OPTIONS: [&str; 9] = [
    "kind",
    "min",
    "max",
    "max-past",
    "length",
    "start",
    "end",
    "null-rate",
    "var-len",
];

/// One field's options: option name → (full key for messages, value).
pub(crate) type FieldOptions = BTreeMap<String, (String, String)>;

/// The parsed options of one datagen table.
#[derive(Debug, Clone)]
pub(crate) struct DatagenConfig {
    /// `rows-per-second`, over all subtasks.
    pub(crate) rows_per_second: u64,
    /// `number-of-rows`, over all subtasks; `None` is unbounded.
    pub(crate) number_of_rows: Option<u64>,
    /// `seed`; `None` picks one when the table is planned.
    pub(crate) seed: Option<u64>,
    /// `fields.<path>.<option>` grouped by path (`a`, `row.child`, `arr.element`,
    /// `map.key`, `map.value`).
    pub(crate) fields: BTreeMap<String, FieldOptions>,
}

impl DatagenConfig {
    /// Takes every datagen option out of `opts` (the caller calls `finish`).
    pub(crate) fn take_from(opts: &mut Options) -> Result<Self> {
        let rows_per_second = opts
            .take_parsed::<u64>("rows-per-second", "a positive number of rows per second")?
            .unwrap_or(DEFAULT_ROWS_PER_SECOND);
        if rows_per_second == 0 {
            return Err(opts.bad(
                "rows-per-second",
                "must be a positive number of rows per second, not 0",
            ));
        }
        let number_of_rows = opts.take_parsed::<u64>("number-of-rows", "a number of rows")?;
        let seed = opts.take_parsed::<u64>("seed", "a non-negative integer")?;
        let mut fields: BTreeMap<String, FieldOptions> = BTreeMap::new();
        for (key, value) in opts.take_prefixed("fields.") {
            let rest = &key["fields.".len()..];
            let Some((path, option)) = rest.rsplit_once('.').filter(|(p, _)| !p.is_empty()) else {
                return Err(opts.bad(
                    &key,
                    "write field options as 'fields.<column>.<option>', e.g. 'fields.id.kind'",
                ));
            };
            if !FIELD_OPTIONS.contains(&option) {
                return Err(opts.bad(
                    &key,
                    &format!(
                        "unknown field option '{option}'; field options are {}",
                        FIELD_OPTIONS.join(", ")
                    ),
                ));
            }
            fields
                .entry(path.to_string())
                .or_default()
                .insert(option.to_string(), (key.clone(), value));
        }
        Ok(DatagenConfig {
            rows_per_second,
            number_of_rows,
            seed,
            fields,
        })
    }
}
