use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::common::testing::{Rng, bid_schema, options};
use crate::json::tests::{ALL_NULLS, ALL_TYPES, all_types_schema};
use crate::{Decoded, decoder_for, encoder_for};

/// The batch the JSON decoder makes of `lines`.
fn from_json(schema: SchemaRef, lines: &[&str]) -> RecordBatch {
    let mut d = decoder_for("json", &options(schema, &[])).unwrap();
    for (i, l) in lines.iter().enumerate() {
        d.decode(l.as_bytes(), "json", i as u64).unwrap();
    }
    let out = d.flush().unwrap();
    assert!(out.dead_letters.is_empty(), "{:?}", out.dead_letters);
    out.batch.unwrap()
}

/// Each row of `batch` as one Avro message.
fn to_avro(schema: SchemaRef, pairs: &[(&str, &str)], batch: &RecordBatch) -> Vec<Vec<u8>> {
    let mut e = encoder_for("avro", &options(schema, pairs)).unwrap();
    let mut out = Vec::new();
    let mut ends = Vec::new();
    e.encode_each(batch, &mut out, &mut ends).unwrap();
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let m = out[start..end].to_vec();
            start = end;
            m
        })
        .collect()
}

fn from_avro(schema: SchemaRef, pairs: &[(&str, &str)], messages: &[Vec<u8>]) -> Decoded {
    let mut d = decoder_for("avro", &options(schema, pairs)).unwrap();
    for (i, m) in messages.iter().enumerate() {
        d.decode(m, "topic", i as u64).unwrap();
    }
    assert_eq!(d.buffered_records(), messages.len());
    d.flush().unwrap()
}

#[test]
fn every_type_round_trips() {
    let schema = all_types_schema();
    let batch = from_json(schema.clone(), &[ALL_TYPES, ALL_NULLS, ALL_TYPES]);
    let messages = to_avro(schema.clone(), &[], &batch);
    assert_eq!(messages.len(), 3);
    let back = from_avro(schema.clone(), &[], &messages);
    assert!(back.dead_letters.is_empty(), "{:?}", back.dead_letters);
    assert_eq!(back.batch.unwrap(), batch);
}

/// The derived schema is Flink's: a record named `record` in Flink's namespace, nullable
/// columns as `["null", T]` unions, decimals as bytes with the decimal logical type.
#[test]
fn the_derived_schema_is_flinks() {
    let schema = all_types_schema();
    let t = super::TableSchema::new("avro", &schema, None).unwrap();
    let json = t.avro.canonical_form();
    assert!(
        json.starts_with(r#"{"name":"org.apache.flink.avro.generated.record","type":"record""#),
        "{json}"
    );
    assert!(
        json.contains(r#"{"name":"i64","type":["null","long"]}"#),
        "{json}"
    );
    // Logical types are not in the canonical form: read them from the full schema.
    let full = serde_json::to_value(&t.avro).unwrap();
    let of = |name: &str| {
        full["fields"]
            .as_array()
            .and_then(|f| f.iter().find(|x| x["name"] == name))
            .map(|f| f["type"][1].clone())
            .unwrap()
    };
    assert_eq!(of("dec")["logicalType"], "decimal");
    assert_eq!(
        (of("dec")["precision"].clone(), of("dec")["scale"].clone()),
        (10.into(), 2.into())
    );
    for (col, logical) in [
        ("d", "date"),
        ("t3", "time-millis"),
        ("t6", "time-micros"),
        ("ts3", "timestamp-millis"),
        ("ts6", "timestamp-micros"),
        ("ltz", "timestamp-millis"),
    ] {
        assert_eq!(of(col)["logicalType"], logical, "{col}: {full}");
    }
    assert_eq!(of("arr")["type"], "array");
    assert_eq!(of("map")["type"], "map");
}

/// With `avro.schema`, fields are matched by name (any order); a field the table lacks
/// is written as NULL and skipped when read; an enum reads into a STRING.
#[test]
fn a_given_schema_is_matched_by_name() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("color", DataType::Utf8, true),
        Field::new("price", DataType::Decimal128(8, 2), true),
    ]));
    let given = r#"{"type":"record","name":"Thing","namespace":"shop","fields":[
        {"name":"note","type":["null","string"],"default":null},
        {"name":"color","type":["null",{"type":"enum","name":"Color","symbols":["RED","GREEN"]}]},
        {"name":"price","type":{"type":"fixed","name":"p","size":5,"logicalType":"decimal","precision":8,"scale":2}},
        {"name":"id","type":"long"}]}"#;
    let pairs = [("avro.schema", given)];
    let batch = from_json(
        schema.clone(),
        &[
            r#"{"id":1,"color":"RED","price":-12.5}"#,
            r#"{"id":2,"color":null,"price":999999.99}"#,
        ],
    );
    let messages = to_avro(schema.clone(), &pairs, &batch);
    let back = from_avro(schema.clone(), &pairs, &messages);
    assert!(back.dead_letters.is_empty(), "{:?}", back.dead_letters);
    assert_eq!(back.batch.unwrap(), batch);
    // A symbol the enum lacks, and a NULL where the schema allows none, fail the write.
    let bad = from_json(schema.clone(), &[r#"{"id":3,"color":"BLUE","price":1}"#]);
    let mut e = encoder_for("avro", &options(schema.clone(), &pairs)).unwrap();
    let err = e.encode(&bad, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("BLUE"), "{err}");
    let bad = from_json(schema.clone(), &[r#"{"id":3,"color":"RED","price":null}"#]);
    let err = e.encode(&bad, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("NULL"), "{err}");
}

#[test]
fn schema_mistakes_are_explained() {
    let schema = bid_schema();
    for (given, says) in [
        ("{", "not a valid Avro schema"),
        (r#""long""#, "must be a record"),
        (
            r#"{"type":"record","name":"r","fields":[{"name":"auction","type":"long"}]}"#,
            "column 'bidder' is not a field",
        ),
    ] {
        let e = decoder_for("avro", &options(schema.clone(), &[("avro.schema", given)]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(says), "{given}: {e}");
    }
    let e = decoder_for(
        "avro",
        &options(schema.clone(), &[("avro.encoding", "json")]),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("only 'binary'"), "{e}");
    let odd = Arc::new(Schema::new(vec![Field::new("a-b", DataType::Int64, true)]));
    let e = encoder_for("avro", &options(odd, &[]))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not a valid Avro field name"), "{e}");
    let nested_not_null = Arc::new(Schema::new(vec![Field::new_list(
        "l",
        Field::new("item", DataType::Int64, false),
        true,
    )]));
    let e = decoder_for("avro", &options(nested_not_null, &[]))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("cannot handle column 'l'"), "{e}");
}

/// Truncated, extended, random and hostile records are dead letters with a reason, in
/// input order among the good ones; nothing panics.
#[test]
fn bad_records_are_dead_letters() {
    let schema = all_types_schema();
    let batch = from_json(schema.clone(), &[ALL_TYPES]);
    let good = to_avro(schema.clone(), &[], &batch).remove(0);
    let mut messages = vec![good.clone()];
    for cut in 0..good.len() {
        messages.push(good[..cut].to_vec());
    }
    let mut longer = good.clone();
    longer.push(0);
    messages.push(longer);
    // A string length of 2^62 bytes.
    messages.push(vec![
        2, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ]);
    let mut rng = Rng::new(7);
    for _ in 0..500 {
        let n = rng.below(64) as usize;
        messages.push((0..n).map(|_| rng.next() as u8).collect());
    }
    messages.push(good.clone());
    let out = from_avro(schema.clone(), &[], &messages);
    let rows = out.batch.as_ref().map_or(0, RecordBatch::num_rows);
    assert!(rows >= 2, "{rows}");
    assert_eq!(rows + out.dead_letters.len(), messages.len());
    let offsets: Vec<u64> = out.dead_letters.iter().map(|d| d.offset).collect();
    let mut sorted = offsets.clone();
    sorted.sort_unstable();
    assert_eq!(offsets, sorted);
    // Every truncation of the good record is refused (none reads as a row of NULLs),
    // and so is the record with a byte too many.
    for cut in 0..=good.len() {
        assert!(offsets.contains(&(cut as u64 + 1)), "cut at {cut}");
    }
    assert!(out.dead_letters.iter().all(|d| !d.reason.is_empty()));
    assert!(
        out.dead_letters
            .iter()
            .any(|d| d.reason.contains("bytes follow the Avro record")),
        "{:?}",
        out.dead_letters
            .iter()
            .map(|d| &d.reason)
            .collect::<Vec<_>>()
    );
}

/// A value that does not fit its column (a long written for an INT column) names the
/// field; a NULL in a NOT NULL column too.
#[test]
fn values_that_do_not_fit_name_the_field() {
    let wide = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("m", DataType::Int64, true),
    ]));
    let narrow = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int32, true),
        Field::new("m", DataType::Int64, false),
    ]));
    let writer = r#"{"type":"record","name":"r","fields":[{"name":"n","type":["null","long"]},{"name":"m","type":["null","long"]}]}"#;
    let batch = from_json(
        wide.clone(),
        &[
            r#"{"n":1,"m":1}"#,
            r#"{"n":5000000000,"m":2}"#,
            r#"{"n":3,"m":null}"#,
        ],
    );
    let messages = to_avro(wide, &[("avro.schema", writer)], &batch);
    let out = from_avro(narrow, &[("avro.schema", writer)], &messages);
    assert_eq!(out.batch.as_ref().map_or(0, RecordBatch::num_rows), 1);
    let reasons: Vec<&str> = out.dead_letters.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].contains("field 'n'") && reasons[0].contains("INT"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("field 'm' is NULL"), "{reasons:?}");
}
