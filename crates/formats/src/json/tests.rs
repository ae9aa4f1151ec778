use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Field, Fields, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};

use super::*;
use crate::common::testing::{Rng, bid_schema, decode_all, options, rows};
use crate::{Decoded, Decoder, Encoder, Error, FormatOptions};

const BID: &str = r#"{"auction":1007,"bidder":1001,"price":31415,"channel":"Google","url":"https://www.nexmark.com/googl/item.htm?query=1","date_time":"2024-01-01 00:00:00.123","extra":"abcdefghijklmnopqrs"}"#;

fn decoder(schema: SchemaRef, pairs: &[(&str, &str)]) -> JsonDecoder {
    JsonDecoder::new(&options(schema, pairs)).unwrap()
}

fn decode_lines(d: &mut dyn Decoder, lines: &[&[u8]]) -> Decoded {
    let mut offset = 0;
    for line in lines {
        d.decode(line, "test", offset).unwrap();
        offset += line.len() as u64 + 1;
    }
    assert_eq!(d.buffered_records(), lines.len());
    let out = d.flush().unwrap();
    assert_eq!(d.buffered_records(), 0);
    out
}

fn reasons(d: &Decoded) -> Vec<String> {
    d.dead_letters.iter().map(|l| l.reason.clone()).collect()
}

fn encode(schema: SchemaRef, pairs: &[(&str, &str)], batch: &RecordBatch) -> String {
    let mut e = JsonEncoder::new(&options(schema, pairs)).unwrap();
    let mut out = Vec::new();
    e.encode(batch, &mut out).unwrap();
    assert!(e.header().is_empty());
    String::from_utf8(out).unwrap()
}

fn i64_col(batch: &RecordBatch, i: usize) -> Vec<Option<i64>> {
    batch.column(i).as_primitive::<Int64Type>().iter().collect()
}

fn one_col(name: &str, dt: DataType) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(name, dt, true)]))
}

#[test]
fn decodes_nexmark_bids() {
    let mut d = decoder(bid_schema(), &[]);
    let out = decode_lines(&mut d, &[BID.as_bytes(), BID.as_bytes()]);
    assert!(out.dead_letters.is_empty());
    let batch = out.batch.unwrap();
    assert_eq!(batch.schema(), bid_schema());
    assert_eq!(i64_col(&batch, 0), vec![Some(1007), Some(1007)]);
    assert_eq!(batch.column(3).as_string::<i32>().value(0), "Google");
    let ts = batch.column(5).as_primitive::<TimestampMillisecondType>();
    assert_eq!(ts.value(0), 1_704_067_200_123);
    // The decoder is reusable after a flush.
    let again = decode_lines(&mut d, &[BID.as_bytes()]);
    assert_eq!(rows(&again), 1);
}

/// A table with a column of every type the formats carry (shared with the Avro tests).
pub(crate) fn all_types_schema() -> SchemaRef {
    let row = Fields::from(vec![
        Field::new("a", DataType::Int32, true),
        Field::new("b", DataType::Utf8, true),
        Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]);
    let map_entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Int64, true),
        ])),
        false,
    );
    Arc::new(Schema::new(vec![
        Field::new("bool", DataType::Boolean, true),
        Field::new("i8", DataType::Int8, true),
        Field::new("i16", DataType::Int16, true),
        Field::new("i32", DataType::Int32, true),
        Field::new("i64", DataType::Int64, true),
        Field::new("f32", DataType::Float32, true),
        Field::new("f64", DataType::Float64, true),
        Field::new("dec", DataType::Decimal128(10, 2), true),
        Field::new("s", DataType::Utf8, true),
        Field::new("d", DataType::Date32, true),
        Field::new("t3", DataType::Time32(TimeUnit::Millisecond), true),
        Field::new("t6", DataType::Time64(TimeUnit::Microsecond), true),
        Field::new(
            "ts3",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        Field::new(
            "ts6",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new(
            "ltz",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("row", DataType::Struct(row), true),
        Field::new_list("arr", Field::new("item", DataType::Int64, true), true),
        Field::new("map", DataType::Map(Arc::new(map_entries), false), true),
    ]))
}

/// A row of [`all_types_schema`] with every column set, as JSON.
pub(crate) const ALL_TYPES: &str = r#"{"bool":true,"i8":-8,"i16":1600,"i32":-32000,"i64":9007199254740993,"f32":1.5,"f64":-2.25e-3,"dec":12345.67,"s":"h\u00e9 \"q\"\n","d":"2024-02-29","t3":"12:34:56.789","t6":"23:59:59.123456","ts3":"2024-01-01 00:00:00.123","ts6":"2024-01-01T00:00:00.123456","ltz":"2024-01-01 00:00:00.5Z","row":{"a":1,"b":"x","t":"2024-01-01 00:00:01"},"arr":[1,null,3],"map":{"k1":1,"k2":null}}"#;
/// A row of [`all_types_schema`] that is all NULL, as JSON.
pub(crate) const ALL_NULLS: &str = r#"{"bool":null}"#;

#[test]
fn every_type_round_trips_decode_encode_decode() {
    let schema = all_types_schema();
    for standard in ["SQL", "ISO-8601"] {
        let opts = [("json.timestamp-format.standard", standard)];
        let mut d = decoder(schema.clone(), &opts);
        let first = decode_lines(&mut d, &[ALL_TYPES.as_bytes(), ALL_NULLS.as_bytes()]);
        assert_eq!(reasons(&first), Vec::<String>::new());
        let batch = first.batch.unwrap();
        let text = encode(schema.clone(), &opts, &batch);
        let lines: Vec<&[u8]> = text.lines().map(str::as_bytes).collect();
        assert_eq!(lines.len(), 2);
        let second = decode_lines(&mut d, &lines);
        assert_eq!(reasons(&second), Vec::<String>::new());
        assert_eq!(second.batch.unwrap(), batch, "{text}");
        let sep = if standard == "SQL" { ' ' } else { 'T' };
        for expected in [
            format!(r#""ts3":"2024-01-01{sep}00:00:00.123""#),
            format!(r#""ltz":"2024-01-01{sep}00:00:00.5Z""#),
            r#""dec":12345.67"#.to_string(),
            r#""d":"2024-02-29""#.to_string(),
            r#""t3":"12:34:56.789""#.to_string(),
            r#""map":{"k1":1,"k2":null}"#.to_string(),
            r#""i64":9007199254740993"#.to_string(),
        ] {
            assert!(text.contains(&expected), "{expected} not in {text}");
        }
        // Nulls are written explicitly.
        assert!(
            text.lines().nth(1).unwrap().contains(r#""s":null"#),
            "{text}"
        );
    }
}

#[test]
fn non_finite_floats_round_trip_as_strings() {
    let schema = one_col("f", DataType::Float64);
    let mut d = decoder(schema.clone(), &[]);
    let lines: [&[u8]; 3] = [
        br#"{"f":"NaN"}"#,
        br#"{"f":"Infinity"}"#,
        br#"{"f":"-Infinity"}"#,
    ];
    let out = decode_lines(&mut d, &lines);
    assert_eq!(reasons(&out), Vec::<String>::new());
    let text = encode(schema, &[], &out.batch.unwrap());
    assert_eq!(
        text,
        "{\"f\":\"NaN\"}\n{\"f\":\"Infinity\"}\n{\"f\":\"-Infinity\"}\n"
    );
}

#[test]
fn ignore_null_fields_drops_nulls_when_encoding() {
    let schema = bid_schema();
    let mut d = decoder(schema.clone(), &[]);
    let batch = decode_lines(&mut d, &[br#"{"auction":1}"#]).batch.unwrap();
    let opts = [("json.encode.ignore-null-fields", "true")];
    assert_eq!(encode(schema, &opts, &batch), "{\"auction\":1}\n");
}

#[test]
fn timestamps_accept_sql_iso_and_epoch_millis() {
    let ltz = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    for dt in [DataType::Timestamp(TimeUnit::Millisecond, None), ltz] {
        let mut d = decoder(one_col("t", dt), &[]);
        let lines: [&[u8]; 4] = [
            br#"{"t":"2024-01-01 00:00:00.123"}"#,
            br#"{"t":"2024-01-01T00:00:00.123"}"#,
            br#"{"t":1704067200123}"#,
            br#"{"t":"2024-01-01T00:00:00.123Z"}"#,
        ];
        let out = decode_lines(&mut d, &lines);
        assert_eq!(reasons(&out), Vec::<String>::new());
        let batch = out.batch.unwrap();
        let ts = batch.column(0).as_primitive::<TimestampMillisecondType>();
        assert!(ts.iter().all(|v| v == Some(1_704_067_200_123)), "{ts:?}");
    }
}

#[test]
fn numbers_and_booleans_are_accepted_for_varchar() {
    let mut d = decoder(one_col("s", DataType::Utf8), &[]);
    let out = decode_lines(&mut d, &[br#"{"s":12}"#, br#"{"s":true}"#, br#"{"s":1.5}"#]);
    let batch = out.batch.unwrap();
    let s: Vec<_> = batch
        .column(0)
        .as_string::<i32>()
        .iter()
        .flatten()
        .collect();
    assert_eq!(s, vec!["12", "true", "1.5"]);
}

#[test]
fn missing_fields_are_null_by_default_and_rejected_with_fail_on_missing_field() {
    let lines: [&[u8]; 3] = [br#"{"auction":1}"#, BID.as_bytes(), br#"{"auction":null,"bidder":null,"price":null,"channel":null,"url":null,"date_time":null,"extra":null}"#];
    let mut lenient = decoder(bid_schema(), &[]);
    let out = decode_lines(&mut lenient, &lines);
    assert_eq!(rows(&out), 3);
    let mut strict = decoder(bid_schema(), &[("json.fail-on-missing-field", "true")]);
    let out = decode_lines(&mut strict, &lines);
    assert_eq!(
        reasons(&out),
        vec!["field 'bidder' is missing (json.fail-on-missing-field is true)"]
    );
    // Explicit nulls are present fields.
    assert_eq!(rows(&out), 2);
}

#[test]
fn ignore_parse_errors_nulls_bad_fields_but_rejects_non_objects() {
    let lines: [&[u8]; 4] = [
        br#"{"auction":"abc","price":7}"#,
        br#"{"auction":1,"date_time":"yesterday"}"#,
        br#"[1,2]"#,
        br#"{"auction":"#,
    ];
    let mut d = decoder(bid_schema(), &[("json.ignore-parse-errors", "true")]);
    let out = decode_lines(&mut d, &lines);
    let batch = out.batch.as_ref().unwrap();
    assert_eq!(i64_col(batch, 0), vec![None, Some(1)]);
    assert_eq!(i64_col(batch, 2), vec![Some(7), None]);
    assert!(batch.column(5).is_null(1));
    assert_eq!(
        reasons(&out),
        vec![
            "record is not a JSON object but an array",
            "invalid JSON at byte 11: unexpected end of input"
        ]
    );
}

#[test]
fn bad_option_values_are_errors() {
    for (k, v) in [
        ("json.ignore-parse-errors", "yes"),
        ("json.timestamp-format.standard", "RFC"),
        ("json.map-null-key.mode", "KEEP"),
    ] {
        let err = JsonDecoder::new(&options(bid_schema(), &[(k, v)]))
            .err()
            .unwrap();
        assert!(
            matches!(err, Error::BadOption { ref option, .. } if option == k),
            "{err}"
        );
    }
    let both = [
        ("json.ignore-parse-errors", "true"),
        ("json.fail-on-missing-field", "true"),
    ];
    assert!(JsonDecoder::new(&options(bid_schema(), &both)).is_err());
    // Map-null-key options are accepted.
    let map = [
        ("json.map-null-key.mode", "LITERAL"),
        ("json.map-null-key.literal", "null"),
    ];
    assert!(JsonEncoder::new(&options(bid_schema(), &map)).is_ok());
    let bin = one_col("b", DataType::Binary);
    let err = JsonDecoder::new(&options(bin, &[])).err().unwrap();
    assert_eq!(
        err.to_string(),
        "format 'json' cannot handle column 'b' of type Binary"
    );
}

#[test]
fn hostile_records_become_dead_letters_and_good_ones_stay_in_order() {
    let deep = format!("{{\"auction\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let huge_number = format!("{{\"auction\":1{}}}", "0".repeat(400));
    let lines: Vec<&[u8]> = vec![
        br#"{"auction":1}"# as &[u8],
        br#"{"auction":2, "price":"#,
        br#"{"auction":3}"#,
        br#"{"auction":4,"price":"abc"}"#,
        b"{\"auction\":5,\"channel\":\"\xff\xfe\"}",
        br#"{"auction":6}"#,
        b"\x00\x01\x02\xff garbage",
        deep.as_bytes(),
        huge_number.as_bytes(),
        br#"[1,2,3]"#,
        br#"42"#,
        br#""just a string""#,
        br#"{"auction":7,"auction":8}"#,
        br#"{"auction":9} {"auction":10}"#,
        br#"   "#,
        br#"{"auction":11,"row":{"x":[1,{"y":2}]},"unknown":null}"#,
        br#"{"auction":12,"date_time":"2024-13-01 00:00:00"}"#,
        br#"{"auction":{"nested":1}}"#,
        br#"{"auction":13,"url":"a\"}"#,
    ];
    let mut d = decoder(bid_schema(), &[]);
    let out = decode_lines(&mut d, &lines);
    let batch = out.batch.as_ref().unwrap();
    assert_eq!(
        i64_col(batch, 0),
        vec![Some(1), Some(3), Some(6), Some(8), Some(11)]
    );
    assert_eq!(
        reasons(&out),
        vec![
            "invalid JSON at byte 22: unexpected end of input",
            "field 'price': cannot parse \"abc\" as BIGINT",
            "record is not valid UTF-8 (invalid byte at 24)",
            "record is not valid UTF-8 (invalid byte at 3)",
            "record nests arrays or objects deeper than 100 levels",
            "invalid JSON at byte 412: number out of range",
            "record is not a JSON object but an array",
            "record is not a JSON object but a number",
            "record is not a JSON object but a string",
            "invalid JSON at byte 15: trailing characters",
            "record is blank",
            "field 'date_time': cannot parse \"2024-13-01 00:00:00\" as TIMESTAMP(3)",
            "field 'auction': cannot parse {\"nested\":1} as BIGINT",
            "invalid JSON at byte 25: unexpected end of input",
        ]
    );
    let offsets: Vec<u64> = out.dead_letters.iter().map(|l| l.offset).collect();
    let mut sorted = offsets.clone();
    sorted.sort_unstable();
    assert_eq!(offsets, sorted, "dead letters keep input order");
    assert!(out.dead_letters[2].raw_base64.is_some());
    assert_eq!(out.dead_letters[0].table, "t");
}

#[test]
fn a_10_mb_line_through_the_framer_is_a_dead_letter() {
    let mut data = format!("{BID}\n").into_bytes();
    data.extend_from_slice(b"{\"extra\":\"");
    data.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    data.extend_from_slice(b"\"}\n");
    data.extend_from_slice(BID.as_bytes());
    let mut d = decoder(bid_schema(), &[]);
    let out = decode_all(&mut d, &data, crate::framing::DEFAULT_MAX_RECORD_BYTES);
    assert_eq!(rows(&out), 2);
    assert_eq!(
        reasons(&out),
        vec!["record is 10485772 bytes, over the 8388608-byte limit"]
    );
    assert!(out.dead_letters[0].truncated);
    assert_eq!(out.dead_letters[0].offset, BID.len() as u64 + 1);
}

#[test]
fn empty_input_gives_nothing() {
    let mut d = decoder(bid_schema(), &[]);
    let out = decode_all(&mut d, b"", 1024);
    assert!(out.batch.is_none() && out.dead_letters.is_empty());
    let out = decode_all(&mut d, b"\n\n\r\n", 1024);
    assert!(out.batch.is_none() && out.dead_letters.is_empty());
}

#[test]
fn not_null_columns_reject_records_without_them() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Utf8, true),
    ]));
    let mut d = decoder(schema.clone(), &[]);
    let out = decode_lines(
        &mut d,
        &[br#"{"id":1}"#, br#"{"v":"x"}"#, br#"{"id":null}"#],
    );
    assert_eq!(out.batch.as_ref().unwrap().schema(), schema);
    assert_eq!(
        reasons(&out),
        vec![
            "field 'id' is NOT NULL but has no value",
            "field 'id' is NOT NULL but has no value"
        ]
    );
}

/// Random records: never a panic, and every record is a row or a dead letter.
#[test]
fn random_bytes_never_panic_and_every_record_is_accounted_for() {
    let mut rng = Rng::new(42);
    let pieces: [&[u8]; 14] = [
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"auction\":",
        b"\"price\":",
        b"1",
        b"-2.5e3",
        b"\"x\"",
        b",",
        b"null",
        b"\"date_time\":\"2024-01-01 00:00:00\"",
        b"\xff",
        b"\\u00",
    ];
    for pass in 0..20 {
        let schema = if pass % 2 == 0 {
            bid_schema()
        } else {
            all_types_schema()
        };
        let ignore = if pass % 4 == 1 { "true" } else { "false" };
        let mut d = decoder(schema, &[("json.ignore-parse-errors", ignore)]);
        let mut records = Vec::new();
        for _ in 0..300 {
            let mut r = Vec::new();
            for _ in 0..rng.below(24) {
                if rng.below(3) == 0 {
                    r.push(rng.next() as u8);
                } else {
                    r.extend_from_slice(pieces[rng.below(pieces.len() as u64) as usize]);
                }
            }
            if rng.below(4) == 0 {
                r = BID.as_bytes().to_vec();
                let at = rng.below(r.len() as u64) as usize;
                r[at] = rng.next() as u8;
            }
            records.push(r);
        }
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let out = decode_lines(&mut d, &refs);
        assert_eq!(
            rows(&out) + out.dead_letters.len(),
            records.len(),
            "pass {pass}"
        );
        assert!(out.dead_letters.iter().all(|l| !l.reason.is_empty()));
    }
}

#[test]
fn options_struct_is_usable_through_the_registry() {
    let opts = FormatOptions {
        table: "bids".into(),
        schema: bid_schema(),
        options: Default::default(),
    };
    let mut d = crate::decoder_for("json", &opts).unwrap();
    d.decode(b"{", "f", 0).unwrap();
    let out = d.flush().unwrap();
    assert_eq!(out.dead_letters[0].table, "bids");
}

/// Nexmark bids, ~200 MB, decoded in batches of 8,192 records. Run with
/// `cargo test -p sluice-formats --release decode_throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn decode_throughput() {
    let mut data = Vec::new();
    let mut i = 0u64;
    while data.len() < 200 * 1024 * 1024 {
        let line = format!(
            r#"{{"auction":{},"bidder":{},"price":{},"channel":"Google","url":"https://www.nexmark.com/googl/item.htm?query=1","date_time":"2024-01-01 00:00:{:02}.{:03}","extra":"abcdefghijklmnopqrs"}}"#,
            1000 + i % 1000,
            2000 + i % 7919,
            i * 31 % 100_000,
            i % 60,
            i % 1000
        );
        data.extend_from_slice(line.as_bytes());
        data.push(b'\n');
        i += 1;
    }
    let mut d = decoder(bid_schema(), &[]);
    let mut framer = crate::framing::LineFramer::new();
    let mut total_rows = 0;
    let start = Instant::now();
    for chunk in data.chunks(1 << 20) {
        framer
            .feed(chunk, |f| {
                if let crate::framing::Frame::Record { offset, bytes } = f {
                    d.decode(bytes, "bench", offset)?;
                    if d.buffered_records() == 8192 {
                        total_rows += rows(&d.flush()?);
                    }
                }
                Ok::<(), crate::Error>(())
            })
            .unwrap();
    }
    total_rows += rows(&d.flush().unwrap());
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(total_rows as u64, i);
    let mb = data.len() as f64 / 1e6;
    println!(
        "decode_throughput: {mb:.0} MB, {i} records in {secs:.2} s = {:.0} MB/s, {:.2} M records/s",
        mb / secs,
        i as f64 / secs / 1e6
    );
}
