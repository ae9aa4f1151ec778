//! The statements a `jdbc` sink runs, built once when it opens from the table's columns.
//!
//! Rows arrive as one array parameter per column plus the row kinds
//! ([`params`](super::params)); the server unnests them, casts each to the column's
//! own type, keeps the last change per key (`DISTINCT ON`), deletes the keys whose last
//! change is a delete and upserts the rest (`INSERT … ON CONFLICT … DO UPDATE`), all in
//! one statement. An exactly-once sink first stages rows in a side table, tagged with
//! subtask, epoch (the checkpoint they belong to) and sequence; the same upsert runs on
//! the staged rows of completed checkpoints, in one transaction with their removal.
//!
//! Owns: statement text and identifier quoting. Does not own: running them (`sink.rs`).

/// A column as the sink writes it.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    /// The column's name in the database, as stored in the catalog.
    pub(crate) name: String,
    /// Its type there (`format_type`), e.g. `numeric(10,2)`.
    pub(crate) pg_type: String,
    /// The array type the values travel as ([`super::params::wire_type`]).
    pub(crate) wire: &'static str,
}

/// `"name"`, with embedded quotes doubled.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The columns of `schema` as text, for a SELECT whose rows [`TextRows`] parses:
/// booleans as `true`/`false` and timestamps with a time zone in UTC.
///
/// [`TextRows`]: crate::text_rows::TextRows
pub(crate) fn text_select_list(schema: &datafusion::arrow::datatypes::Schema) -> String {
    use datafusion::arrow::datatypes::DataType;
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let c = quote(f.name());
            match f.data_type() {
                DataType::Boolean => {
                    format!("CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END")
                }
                DataType::Timestamp(_, Some(_)) => {
                    format!("to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
                }
                _ => format!("{c}::text"),
            }
        })
        .collect();
    cols.join(", ")
}

/// Every statement of one sink.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    /// Writes parameters `$1..$n` (columns) and `$n+1` (kinds) into the table.
    pub(crate) write: String,
    /// Stages the same parameters with `$n+2` subtask, `$n+3` epoch, `$n+4` first seq.
    pub(crate) stage: String,
    /// Applies the staged rows of subtask `$1` with epoch ≤ `$2`.
    pub(crate) apply: String,
    /// Removes the staged rows of subtask `$1` with epoch ≤ `$2` (after `apply`).
    pub(crate) unstage: String,
    /// Removes the staged rows of subtask `$1` with epoch > `$2` (never to be applied).
    pub(crate) discard: String,
    /// Removes every staged row of subtask `$1` (and, for subtask 0, of the subtasks
    /// past the parallelism `$2`) but those of the subtasks in `$3`.
    pub(crate) discard_others: String,
    /// Creates the staging table.
    pub(crate) create_staging: String,
    /// The staging table's name (quoted).
    pub(crate) staging: String,
}

/// Staged rows a subtask `$1` of `$2` looks after: its own, and for subtask 0 those of
/// subtasks past the parallelism, left by a run with more workers.
const MINE: &str = "(_sluice_subtask = $1 OR ($1 = 0 AND _sluice_subtask >= $2))";

impl Statements {
    /// Builds the statements for `table` (already quoted) with `columns`, upserting by
    /// the columns at `key` (appending when empty), staging in `staging` (quoted).
    pub(crate) fn new(table: &str, staging: &str, columns: &[Column], key: &[usize]) -> Self {
        let n = columns.len();
        let names: Vec<String> = columns.iter().map(|c| quote(&c.name)).collect();
        let list = names.join(", ");
        let unnest_types: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::{}[]", i + 1, c.wire))
            .collect();
        let aliases: Vec<String> = (1..=n).map(|i| format!("c{i}")).collect();
        let casts: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("u.c{}::{} AS {}", i + 1, c.pg_type, names[i]))
            .collect();
        let unnest = format!(
            "SELECT {}, u.k AS _sluice_kind, u.seq AS _sluice_seq \
             FROM UNNEST({}, ${}::int2[]) WITH ORDINALITY AS u({}, k, seq)",
            casts.join(", "),
            unnest_types.join(", "),
            n + 1,
            aliases.join(", ")
        );
        let write = if key.is_empty() {
            format!("INSERT INTO {table} ({list}) SELECT {list} FROM ({unnest}) AS s")
        } else {
            upsert(table, &names, key, &unnest, "_sluice_seq DESC")
        };
        let stage = format!(
            "INSERT INTO {staging} ({list}, _sluice_kind, _sluice_subtask, _sluice_epoch, _sluice_seq) \
             SELECT {list}, _sluice_kind, ${}::int4, ${}::int8, ${}::int8 + _sluice_seq FROM ({unnest}) AS s \
             ON CONFLICT DO NOTHING",
            n + 2,
            n + 3,
            n + 4
        );
        let staged = format!(
            "SELECT {list}, _sluice_kind, _sluice_epoch, _sluice_seq FROM {staging} \
             WHERE _sluice_subtask = $1 AND _sluice_epoch <= $2"
        );
        let apply = if key.is_empty() {
            format!(
                "INSERT INTO {table} ({list}) SELECT {list} FROM ({staged}) AS s \
                 ORDER BY _sluice_epoch, _sluice_seq"
            )
        } else {
            upsert(
                table,
                &names,
                key,
                &staged,
                "_sluice_epoch DESC, _sluice_seq DESC",
            )
        };
        let defs: Vec<String> = columns
            .iter()
            .map(|c| format!("{} {}", quote(&c.name), c.pg_type))
            .collect();
        Statements {
            write,
            stage,
            apply,
            unstage: format!(
                "DELETE FROM {staging} WHERE _sluice_subtask = $1 AND _sluice_epoch <= $2"
            ),
            discard: format!(
                "DELETE FROM {staging} WHERE _sluice_subtask = $1 AND _sluice_epoch > $2"
            ),
            discard_others: format!(
                "DELETE FROM {staging} WHERE {MINE} AND NOT (_sluice_subtask = ANY($3))"
            ),
            create_staging: format!(
                "CREATE TABLE {staging} ({}, _sluice_kind int2 NOT NULL, \
                 _sluice_subtask int4 NOT NULL, _sluice_epoch int8 NOT NULL, \
                 _sluice_seq int8 NOT NULL, \
                 PRIMARY KEY (_sluice_subtask, _sluice_epoch, _sluice_seq))",
                defs.join(", ")
            ),
            staging: staging.to_string(),
        }
    }
}

/// One statement applying the changes of `source` (rows with `_sluice_kind`) by key:
/// the last change per key wins; `-U` rows are skipped (the `+U` that follows carries
/// the new row), a last `-D` deletes the key, anything else upserts it.
fn upsert(table: &str, names: &[String], key: &[usize], source: &str, newest: &str) -> String {
    let keys: Vec<&str> = key.iter().map(|&i| names[i].as_str()).collect();
    let key_list = keys.join(", ");
    let list = names.join(", ");
    let matches: Vec<String> = keys.iter().map(|k| format!("t.{k} = l.{k}")).collect();
    let updates: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| !key.contains(i))
        .map(|(_, n)| format!("{n} = EXCLUDED.{n}"))
        .collect();
    let on_conflict = if updates.is_empty() {
        "DO NOTHING".to_string()
    } else {
        format!("DO UPDATE SET {}", updates.join(", "))
    };
    format!(
        "WITH src AS ({source}), \
         last AS (SELECT DISTINCT ON ({key_list}) * FROM src WHERE _sluice_kind <> 1 \
                  ORDER BY {key_list}, {newest}), \
         gone AS (DELETE FROM {table} AS t USING last AS l \
                  WHERE l._sluice_kind = 3 AND {}) \
         INSERT INTO {table} ({list}) SELECT {list} FROM last WHERE _sluice_kind <> 3 \
         ON CONFLICT ({key_list}) {on_conflict}",
        matches.join(" AND ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_whatever_they_hold() {
        assert_eq!(quote("a"), "\"a\"");
        assert_eq!(quote("we\"ird; DROP"), "\"we\"\"ird; DROP\"");
    }

    #[test]
    fn an_upsert_keeps_the_last_change_per_key() {
        let cols = vec![
            Column {
                name: "id".into(),
                pg_type: "bigint".into(),
                wire: "int8",
            },
            Column {
                name: "n".into(),
                pg_type: "numeric(10,2)".into(),
                wire: "text",
            },
        ];
        let s = Statements::new("\"t\"", "\"t_st\"", &cols, &[0]);
        assert!(s.write.contains("DISTINCT ON (\"id\")"), "{}", s.write);
        assert!(
            s.write.contains("u.c2::numeric(10,2) AS \"n\""),
            "{}",
            s.write
        );
        assert!(
            s.write
                .contains("ON CONFLICT (\"id\") DO UPDATE SET \"n\" = EXCLUDED.\"n\"")
        );
        let all_key = Statements::new("\"t\"", "\"t_st\"", &cols, &[0, 1]);
        assert!(all_key.write.ends_with("DO NOTHING"), "{}", all_key.write);
        let append = Statements::new("\"t\"", "\"t_st\"", &cols, &[]);
        assert!(!append.write.contains("ON CONFLICT"));
    }
}
