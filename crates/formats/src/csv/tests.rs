use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Field, Fields, Int64Type, Schema, SchemaRef, TimeUnit,
};

use super::*;
use crate::common::testing::{Rng, bid_schema, decode_all, options, rows};
use crate::{Decoded, Decoder, Encoder, Error};

const BID: &str = "1007,1001,31415,Google,https://www.nexmark.com/googl/item.htm?query=1,2024-01-01 00:00:00.123,abcdefghijklmnopqrs";

fn decoder(schema: SchemaRef, pairs: &[(&str, &str)]) -> CsvDecoder {
    CsvDecoder::new(&options(schema, pairs)).unwrap()
}

/// Feeds `lines` at offsets as if they were consecutive lines of one file.
fn decode_lines(d: &mut dyn Decoder, lines: &[&[u8]]) -> Decoded {
    let mut offset = 0;
    for line in lines {
        d.decode(line, "test.csv", offset).unwrap();
        offset += line.len() as u64 + 1;
    }
    let out = d.flush().unwrap();
    assert_eq!(d.buffered_records(), 0);
    out
}

fn reasons(d: &Decoded) -> Vec<String> {
    d.dead_letters.iter().map(|l| l.reason.clone()).collect()
}

fn encode(schema: SchemaRef, pairs: &[(&str, &str)], batch: &RecordBatch) -> String {
    let mut e = CsvEncoder::new(&options(schema, pairs)).unwrap();
    assert!(e.header().is_empty(), "Flink writes no header");
    let mut out = Vec::new();
    e.encode(batch, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn i64_col(batch: &RecordBatch, i: usize) -> Vec<Option<i64>> {
    batch.column(i).as_primitive::<Int64Type>().iter().collect()
}

#[test]
fn decodes_bids_and_skips_a_header_at_offset_zero() {
    let header: &[u8] = b" \"Auction\", BIDDER,price,channel,url,date_time,extra";
    let mut d = decoder(bid_schema(), &[]);
    let out = decode_lines(&mut d, &[header, BID.as_bytes(), BID.as_bytes()]);
    assert_eq!(reasons(&out), Vec::<String>::new());
    let batch = out.batch.unwrap();
    assert_eq!(batch.schema(), bid_schema());
    assert_eq!(i64_col(&batch, 2), vec![Some(31415), Some(31415)]);
    // A header-like line anywhere else is data, and bad data at that.
    d.decode(BID.as_bytes(), "f", 0).unwrap();
    d.decode(
        b"auction,bidder,price,channel,url,date_time,extra",
        "f",
        200,
    )
    .unwrap();
    let out = d.flush().unwrap();
    assert_eq!(rows(&out), 1);
    assert_eq!(
        reasons(&out),
        vec!["field 'auction': cannot parse \"auction\" as BIGINT"]
    );
}

#[test]
fn an_unparseable_first_line_that_is_not_the_header_is_a_dead_letter() {
    let mut d = decoder(bid_schema(), &[]);
    let out = decode_lines(&mut d, &[b"id;name", BID.as_bytes()]);
    assert_eq!(rows(&out), 1);
    assert_eq!(reasons(&out), vec!["expected 7 fields, found 1"]);
}

/// Regression (found by `scripts/fuzz.sh`, csv_decoder): arrow-csv accepted invalid
/// UTF-8 in text fields and later string handling hit undefined behaviour.
#[test]
fn non_utf8_records_are_dead_letters() {
    let mut d = decoder(bid_schema(), &[]);
    let out = decode_lines(&mut d, &[BID.as_bytes(), b"\x04\xcd,,\x94", BID.as_bytes()]);
    assert_eq!(rows(&out), 2);
    assert_eq!(
        reasons(&out),
        vec!["record is not valid UTF-8 (invalid byte at 1)"]
    );
}

#[test]
fn ragged_rows_name_the_field_counts() {
    let mut d = decoder(bid_schema(), &[]);
    let lines: [&[u8]; 5] = [
        BID.as_bytes(),
        b"1,2,3,c,u,2024-01-01 00:00:00",
        BID.as_bytes(),
        b"1,2,3,c,u,2024-01-01 00:00:00,x,y",
        BID.as_bytes(),
    ];
    let out = decode_lines(&mut d, &lines);
    assert_eq!(rows(&out), 3);
    assert_eq!(
        reasons(&out),
        vec!["expected 7 fields, found 6", "expected 7 fields, found 8"]
    );
}

fn all_types_schema() -> SchemaRef {
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
        Field::new("ts9", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        Field::new(
            "ltz",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new_list("arr", Field::new("item", DataType::Int32, true), true),
        Field::new(
            "row",
            DataType::Struct(Fields::from(vec![
                Field::new("a", DataType::Int32, true),
                Field::new("b", DataType::Utf8, true),
            ])),
            true,
        ),
    ]))
}

const ALL_TYPES: &str = "true,-8,1600,-32000,9007199254740993,1.5,-0.00225,-12345.60,\"a,\"\"b\"\"\",2024-02-29,12:34:56.789,23:59:59.123456,2024-01-01 00:00:00.123,2024-01-01T00:00:00.123456789,2024-01-01 00:00:00.5Z,1;2;3,7;x";

#[test]
fn every_type_round_trips_decode_encode_decode() {
    let schema = all_types_schema();
    let mut d = decoder(schema.clone(), &[]);
    let nulls = ",,,,,,,,,,,,,,,,";
    let first = decode_lines(&mut d, &[ALL_TYPES.as_bytes(), nulls.as_bytes()]);
    assert_eq!(reasons(&first), Vec::<String>::new());
    let batch = first.batch.unwrap();
    assert!(
        batch.column(4).is_null(1) && batch.column(8).is_valid(1),
        "empty VARCHAR is ''"
    );
    let text = encode(schema.clone(), &[], &batch);
    assert_eq!(
        text.lines().next().unwrap(),
        ALL_TYPES.replace("T00:00:00.123456789", " 00:00:00.123456789")
    );
    let lines: Vec<&[u8]> = text.lines().map(str::as_bytes).collect();
    let second = decode_lines(&mut d, &lines);
    assert_eq!(reasons(&second), Vec::<String>::new());
    assert_eq!(second.batch.unwrap(), batch, "{text}");
}

#[test]
fn delimiter_quote_escape_comment_and_null_options() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new_list("tags", Field::new("item", DataType::Utf8, true), true),
    ]));
    let opts = [
        ("csv.field-delimiter", "\\t"),
        ("csv.quote-character", "'"),
        ("csv.escape-character", "\\"),
        ("csv.allow-comments", "true"),
        ("csv.null-literal", "NULL"),
        ("csv.array-element-delimiter", "|"),
    ];
    let mut d = decoder(schema.clone(), &opts);
    let lines: [&[u8]; 4] = [
        b"# a comment",
        b"1\t'it\\'s\ta tab'\ta|b",
        b"NULL\tNULL\tNULL",
        b"2\t\t",
    ];
    let out = decode_lines(&mut d, &lines);
    assert_eq!(reasons(&out), Vec::<String>::new());
    let batch = out.batch.unwrap();
    assert_eq!(batch.num_rows(), 3, "the comment is skipped");
    assert_eq!(i64_col(&batch, 0), vec![Some(1), None, Some(2)]);
    let names = batch.column(1).as_string::<i32>();
    assert_eq!(names.value(0), "it's\ta tab");
    assert!(names.is_null(1) && names.value(2).is_empty());
    let text = encode(schema.clone(), &opts, &batch);
    assert_eq!(
        text,
        "1\t'it\\'s\ta tab'\ta|b\nNULL\tNULL\tNULL\n2\t\tNULL\n"
    );
    let lines: Vec<&[u8]> = text.lines().map(str::as_bytes).collect();
    assert_eq!(decode_lines(&mut d, &lines).batch.unwrap(), batch);

    // Without quoting, quotes are data.
    let mut plain = decoder(schema.clone(), &[("csv.disable-quote-character", "true")]);
    let out = decode_lines(&mut plain, &[b"3,\"x,y\""]);
    assert_eq!(reasons(&out), Vec::<String>::new());
    let tags = out.batch.unwrap();
    assert_eq!(tags.column(1).as_string::<i32>().value(0), "\"x");
}

#[test]
fn ignore_parse_errors_nulls_bad_fields_but_not_ragged_rows() {
    let mut d = decoder(bid_schema(), &[("csv.ignore-parse-errors", "true")]);
    let lines: [&[u8]; 3] = [b"abc,1,2,c,u,not a time,x", b"1,2", BID.as_bytes()];
    let out = decode_lines(&mut d, &lines);
    let batch = out.batch.as_ref().unwrap();
    assert_eq!(i64_col(batch, 0), vec![None, Some(1007)]);
    assert!(batch.column(5).is_null(0));
    assert_eq!(reasons(&out), vec!["expected 7 fields, found 2"]);
}

#[test]
fn bad_option_values_are_errors() {
    for (k, v) in [
        ("csv.field-delimiter", "::"),
        ("csv.quote-character", ""),
        ("csv.allow-comments", "maybe"),
    ] {
        let err = CsvDecoder::new(&options(bid_schema(), &[(k, v)]))
            .err()
            .unwrap();
        assert!(
            matches!(err, Error::BadOption { ref option, .. } if option == k),
            "{err}"
        );
    }
    let map = Arc::new(Schema::new(vec![Field::new(
        "m",
        DataType::Map(
            Arc::new(Field::new(
                "entries",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", DataType::Utf8, true),
                ])),
                false,
            )),
            false,
        ),
        true,
    )]));
    let err = CsvEncoder::new(&options(map, &[])).err().unwrap();
    assert_eq!(
        err.to_string(),
        "format 'csv' cannot handle column 'm' of type MAP<VARCHAR, VARCHAR>"
    );
}

#[test]
fn hostile_records_become_dead_letters_and_good_ones_stay_in_order() {
    let lines: Vec<&[u8]> = vec![
        b"1,1,1,c,u,2024-01-01 00:00:00,x" as &[u8],
        b"2,1,abc,c,u,2024-01-01 00:00:00,x",
        b"3,1,1,\"unterminated,u,2024-01-01 00:00:00,x",
        b"4,1,1,\xff\xfe,u,2024-01-01 00:00:00,x",
        b"\x00\x01\x02garbage\xff",
        b"5,1,1,c,u,2024-01-01 00:00:00,x",
        b"6,1,1,c,u,2024-02-30 00:00:00,x",
        b"99999999999999999999,1,1,c,u,,x",
        b"7,,,,,,",
    ];
    let mut d = decoder(bid_schema(), &[]);
    let out = decode_lines(&mut d, &lines);
    let batch = out.batch.as_ref().unwrap();
    assert_eq!(i64_col(batch, 0), vec![Some(1), Some(5), Some(7)]);
    assert_eq!(
        reasons(&out),
        vec![
            "field 'price': cannot parse \"abc\" as BIGINT",
            "a quoted field is not closed",
            "record is not valid UTF-8 (invalid byte at 6)",
            "record is not valid UTF-8 (invalid byte at 10)",
            "field 'date_time': cannot parse \"2024-02-30 00:00:00\" as TIMESTAMP(3)",
            "field 'auction': cannot parse \"99999999999999999999\" as BIGINT",
        ]
    );
    let offsets: Vec<u64> = out.dead_letters.iter().map(|l| l.offset).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
}

#[test]
fn a_10_mb_line_and_empty_input() {
    let mut data = format!("{BID}\n").into_bytes();
    data.extend(std::iter::repeat_n(b'7', 10 * 1024 * 1024));
    data.push(b'\n');
    data.extend_from_slice(BID.as_bytes());
    let mut d = decoder(bid_schema(), &[]);
    let out = decode_all(&mut d, &data, crate::framing::DEFAULT_MAX_RECORD_BYTES);
    assert_eq!(rows(&out), 2);
    assert_eq!(
        reasons(&out),
        vec!["record is 10485760 bytes, over the 8388608-byte limit"]
    );
    let out = decode_all(&mut d, b"", 100);
    assert!(out.batch.is_none() && out.dead_letters.is_empty());
}

#[test]
fn random_bytes_never_panic_and_every_record_is_accounted_for() {
    let mut rng = Rng::new(99);
    let pieces: [&[u8]; 10] = [
        b",",
        b"\"",
        b"1",
        b"-2.5",
        b"abc",
        b"2024-01-01 00:00:00",
        b";",
        b"\xff",
        b"\"\"",
        b" ",
    ];
    for pass in 0..20 {
        let schema = if pass % 2 == 0 {
            bid_schema()
        } else {
            all_types_schema()
        };
        let ignore = if pass % 4 == 1 { "true" } else { "false" };
        let mut d = decoder(schema, &[("csv.ignore-parse-errors", ignore)]);
        let mut records = Vec::new();
        for _ in 0..300 {
            let mut r = Vec::new();
            for _ in 0..rng.below(30) {
                if rng.below(3) == 0 {
                    r.push(rng.next() as u8);
                } else {
                    r.extend_from_slice(pieces[rng.below(pieces.len() as u64) as usize]);
                }
            }
            r.retain(|&b| b != b'\n');
            if rng.below(3) == 0 {
                r = BID.as_bytes().to_vec();
            }
            records.push(r);
        }
        // Offsets from 1: no header detection.
        for (offset, r) in (1..).zip(&records) {
            d.decode(r, "f", offset).unwrap();
        }
        let out = d.flush().unwrap();
        assert_eq!(
            rows(&out) + out.dead_letters.len(),
            records.len(),
            "pass {pass}"
        );
        assert!(out.dead_letters.iter().all(|l| !l.reason.is_empty()));
    }
}
