//! Debezium and Canal envelopes into changelog rows; bad and hostile records into
//! dead letters.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, Int8Array};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};

use super::*;
use crate::common::testing::{Rng, options};
use crate::decoder_for;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]))
}

/// (kind, id, name) rows and the dead letters' reasons.
fn run(format: &str, pairs: &[(&str, &str)], records: &[&str]) -> (Vec<String>, Vec<String>) {
    let mut d = decoder_for(format, &options(schema(), pairs)).expect("builds");
    for (i, r) in records.iter().enumerate() {
        d.decode(r.as_bytes(), "t/0", i as u64 * 10)
            .expect("never fails");
    }
    let out = d.flush().expect("flushes");
    let mut rows = Vec::new();
    if let Some(b) = out.batch {
        assert_eq!(b.num_columns(), 3);
        let ids = b.column(0).as_primitive::<Int64Type>();
        let names = b.column(1).as_string::<i32>();
        let kinds = b
            .column(2)
            .as_any()
            .downcast_ref::<Int8Array>()
            .expect("the row kind");
        for r in 0..b.num_rows() {
            rows.push(format!(
                "{} {} {}",
                sluice_types::RowKind::from_i8(kinds.value(r)).short(),
                ids.value(r),
                names.value(r)
            ));
        }
    }
    let letters = out
        .dead_letters
        .iter()
        .map(|d| format!("{}@{}: {}", d.source, d.offset, d.reason))
        .collect();
    (rows, letters)
}

#[test]
fn debezium_events_become_changelog_rows() {
    let (rows, letters) = run(
        "debezium-json",
        &[],
        &[
            r#"{"before":null,"after":{"id":1,"name":"a"},"op":"c"}"#,
            r#"{"before":null,"after":{"id":2,"name":"b"},"op":"r"}"#,
            r#"{"before":{"id":1,"name":"a"},"after":{"id":1,"name":"A"},"op":"u"}"#,
            r#"{"schema":{},"payload":{"before":{"id":2,"name":"b"},"after":null,"op":"d"}}"#,
            r#"{"op":"t"}"#,
        ],
    );
    assert_eq!(rows, ["+I 1 a", "+I 2 b", "-U 1 a", "+U 1 A", "-D 2 b"]);
    assert!(letters.is_empty(), "{letters:?}");
}

#[test]
fn canal_messages_become_changelog_rows_and_filters_apply() {
    let records = [
        r#"{"data":[{"id":1,"name":"a"},{"id":2,"name":"b"}],"type":"INSERT","database":"shop","table":"users"}"#,
        r#"{"data":[{"id":1,"name":"A"}],"old":[{"name":"a"}],"type":"UPDATE","database":"shop","table":"users"}"#,
        r#"{"data":[{"id":2,"name":"b"}],"type":"DELETE","database":"shop","table":"users"}"#,
        r#"{"data":null,"type":"CREATE","isDdl":true,"database":"shop","table":"users"}"#,
        r#"{"data":[{"id":9,"name":"z"}],"type":"INSERT","database":"shop","table":"orders"}"#,
    ];
    let (rows, letters) = run(
        "canal-json",
        &[("canal-json.table.include", "users")],
        &records,
    );
    assert_eq!(rows, ["+I 1 a", "+I 2 b", "-U 1 a", "+U 1 A", "-D 2 b"]);
    assert!(letters.is_empty(), "{letters:?}");
    let (rows, _) = run("canal-json", &[], &records);
    assert_eq!(rows.len(), 6, "{rows:?}");
}

#[test]
fn bad_envelopes_are_dead_letters_and_half_updates_are_dropped() {
    let (rows, letters) = run(
        "debezium-json",
        &[],
        &[
            "not json",
            r#"{"after":{"id":1}}"#,
            r#"{"op":"x","after":{"id":1}}"#,
            r#"{"op":"u","before":{"id":"seven","name":"a"},"after":{"id":7,"name":"b"}}"#,
            r#"{"op":"c","after":{"id":3,"name":"ok"}}"#,
            r#"{"op":"d","before":null}"#,
            "[1,2,3]",
        ],
    );
    assert_eq!(rows, ["+I 3 ok"]);
    assert_eq!(letters.len(), 6, "{letters:?}");
    assert!(letters[0].starts_with("t/0@0: not JSON"), "{letters:?}");
    assert!(
        letters.iter().any(|l| l.contains("no 'op' field")),
        "{letters:?}"
    );
    assert!(
        letters.iter().any(|l| l.contains("unknown op 'x'")),
        "{letters:?}"
    );
    assert!(
        letters
            .iter()
            .any(|l| l.starts_with("t/0@30: -U row image")),
        "{letters:?}"
    );
    assert!(
        letters
            .iter()
            .any(|l| l.contains("op 'd' needs an object in 'before'")),
        "{letters:?}"
    );
}

/// Random bytes, truncated and deeply nested envelopes: never a panic, every record
/// accounted for.
#[test]
fn hostile_input_never_panics() {
    let good = r#"{"before":{"id":1,"name":"a"},"after":{"id":1,"name":"b"},"op":"u"}"#;
    let mut rng = Rng::new(7);
    for format in ["debezium-json", "canal-json"] {
        let mut d = decoder_for(format, &options(schema(), &[])).expect("builds");
        for i in 0..2000u64 {
            let rec: Vec<u8> = match i % 4 {
                0 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
                1 => good.as_bytes()[..rng.below(good.len() as u64) as usize].to_vec(),
                2 => format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
                _ => good.as_bytes().to_vec(),
            };
            d.decode(&rec, "t/0", i).expect("never fails");
        }
        let out = d.flush().expect("flushes");
        let rows = out.batch.map_or(0, |b| b.num_rows());
        assert!(rows + out.dead_letters.len() >= 1000, "{format}");
    }
    assert!(super::DebeziumJsonFormat.changelog());
    let enc = crate::encoder_for("debezium-json", &options(schema(), &[]));
    assert!(
        enc.err()
            .is_some_and(|e| e.to_string().contains("can only be read"))
    );
}
