//! Invariant checks shared by the fuzz targets.

/// The HTTP ingest body splitter, compiled here on its own: it needs only std, flate2
/// and serde_json, while its crate (sluice-connectors) would bring every client
/// library into the instrumented build.
#[path = "../../crates/connectors/src/http/body.rs"]
pub mod body;

use std::sync::Arc;

use sluice_formats::framing::{Frame, LineFramer};
use sluice_formats::{FormatOptions, decoder_for};
use sluice_types::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

fn schema(pick: u8) -> SchemaRef {
    let mut fields = vec![
        Field::new("auction", DataType::Int64, true),
        Field::new("channel", DataType::Utf8, true),
        Field::new("date_time", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ];
    if pick & 1 == 1 {
        fields.extend([
            Field::new("ok", DataType::Boolean, false),
            Field::new("dec", DataType::Decimal128(10, 2), true),
            Field::new("d", DataType::Date32, true),
            Field::new_list("arr", Field::new("item", DataType::Int32, true), true),
            Field::new(
                "row",
                DataType::Struct(Fields::from(vec![Field::new("a", DataType::Float64, true)])),
                true,
            ),
        ]);
    }
    Arc::new(Schema::new(fields))
}

/// Decodes `data` (first byte: option bits) and checks rows + dead letters = records.
pub fn check_decoder(format: &str, data: &[u8]) {
    let Some((&bits, data)) = data.split_first() else {
        return;
    };
    let mut options = std::collections::BTreeMap::new();
    if bits & 2 == 2 {
        options.insert(format!("{format}.ignore-parse-errors"), "true".to_string());
    } else if bits & 4 == 4 && format == "json" {
        options.insert("json.fail-on-missing-field".into(), "true".to_string());
    }
    let opts = FormatOptions {
        table: "fuzz".into(),
        schema: schema(bits),
        options,
    };
    let mut decoder = decoder_for(format, &opts).expect("valid options");
    let mut framer = LineFramer::new().with_max_record_bytes(256);
    let (mut records, mut out, mut header_possible) = (0usize, 0usize, false);
    let mut on_frame = |f: Frame<'_>| -> Result<(), sluice_formats::Error> {
        match f {
            Frame::Record { offset, bytes } => {
                header_possible |= offset == 0;
                decoder.decode(bytes, "fuzz", offset)?;
            }
            Frame::Oversized(o) => decoder.reject("fuzz", o.offset, o.reason(), o.head, true),
        }
        records += 1;
        if records % 16 == 0 {
            let d = decoder.flush()?;
            out += d.batch.map_or(0, |b| b.num_rows()) + d.dead_letters.len();
        }
        Ok(())
    };
    let chunk = usize::from(bits >> 3).max(1) * 7;
    for c in data.chunks(chunk) {
        framer.feed(c, &mut on_frame).expect("decode never fails on data");
    }
    framer.finish(&mut on_frame).expect("decode never fails on data");
    let d = decoder.flush().expect("flush never fails on data");
    out += d.batch.map_or(0, |b| b.num_rows()) + d.dead_letters.len();
    let skipped_header = format == "csv" && header_possible && out + 1 == records;
    assert!(out == records || skipped_header, "{out} out for {records} records");
}

/// The lines of `data` as a naive reference sees them: (offset, bytes or length).
fn reference(data: &[u8], max: usize) -> Vec<(u64, Result<Vec<u8>, u64>)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let last = lines.pop().unwrap_or_default();
    for (line, terminated) in lines.into_iter().map(|l| (l, true)).chain([(last, false)]) {
        let body = line.strip_suffix(b"\r").unwrap_or(line);
        if body.len() > max {
            out.push((start as u64, Err(body.len() as u64)));
        } else if !body.is_empty() {
            out.push((start as u64, Ok(body.to_vec())));
        }
        start += line.len() + usize::from(terminated);
    }
    out
}

/// Frames `data` in chunks and in splits and compares with the reference.
pub fn check_framer(data: &[u8]) {
    let Some((&bits, data)) = data.split_first() else {
        return;
    };
    let max = usize::from(bits & 15) + 1;
    let chunk = usize::from(bits >> 4) + 1;
    let want = reference(data, max);
    let run = |start: u64, end: Option<u64>| {
        let mut framer = LineFramer::for_split(start, end).with_max_record_bytes(max);
        let mut got = Vec::new();
        let mut on_frame = |f: Frame<'_>| -> Result<(), ()> {
            got.push(match f {
                Frame::Record { offset, bytes } => (offset, Ok(bytes.to_vec())),
                Frame::Oversized(o) => (o.offset, Err(o.len)),
            });
            Ok(())
        };
        let from = framer.read_from() as usize;
        for c in data.get(from..).unwrap_or_default().chunks(chunk) {
            if framer.is_done() {
                break;
            }
            framer.feed(c, &mut on_frame).expect("infallible");
        }
        framer.finish(&mut on_frame).expect("infallible");
        got
    };
    assert_eq!(run(0, None), want);
    // Three contiguous splits cut where the data says.
    let len = data.len() as u64;
    let a = u64::from(data.first().copied().unwrap_or(0)) % (len + 1);
    let b = a + u64::from(data.last().copied().unwrap_or(0)) % (len - a + 1);
    let mut joined = run(0, Some(a));
    joined.extend(run(a, Some(b)));
    joined.extend(run(b, None));
    assert_eq!(joined, want, "splits at {a} and {b}");
}

/// Decodes `data` as change events (one per line) of a CDC format: no panic, at most
/// two rows per event (an update), and every dead letter names a record it was given.
pub fn check_changelog_decoder(format: &str, data: &[u8]) {
    let Some((&bits, data)) = data.split_first() else {
        return;
    };
    let mut options = std::collections::BTreeMap::new();
    if bits & 2 == 2 {
        options.insert(format!("{format}.ignore-parse-errors"), "true".to_string());
    }
    let opts = FormatOptions {
        table: "fuzz".into(),
        schema: schema(bits),
        options,
    };
    let mut decoder = decoder_for(format, &opts).expect("valid options");
    let mut offsets = std::collections::BTreeSet::new();
    let mut rows = 0usize;
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        let offset = i as u64 * 1000;
        offsets.insert(offset);
        decoder.decode(line, "fuzz", offset).expect("decode never fails on data");
        if i % 16 == 15 {
            let d = decoder.flush().expect("flush never fails on data");
            rows += d.batch.map_or(0, |b| b.num_rows());
            assert!(d.dead_letters.iter().all(|l| offsets.contains(&l.offset)));
        }
    }
    let d = decoder.flush().expect("flush never fails on data");
    rows += d.batch.map_or(0, |b| b.num_rows());
    assert!(d.dead_letters.iter().all(|l| offsets.contains(&l.offset)));
    let records = offsets.len();
    // Canal events carry several rows each; Debezium at most two.
    if format == "debezium-json" {
        assert!(rows <= 2 * records, "{rows} rows from {records} events");
    }
}

/// Decodes `data` as messages (first byte: option bits; then each message is a length
/// byte and that many bytes) with a message format (`avro`): rows + dead letters =
/// messages, and every dead letter names a message it was given.
pub fn check_message_decoder(format: &str, data: &[u8]) {
    let Some((&bits, data)) = data.split_first() else {
        return;
    };
    let opts = FormatOptions {
        table: "fuzz".into(),
        schema: schema(bits),
        options: Default::default(),
    };
    check_messages(&opts, format, data);
}

/// [`check_message_decoder`] for `protobuf`, with the message type `fuzz.Event` of
/// `fuzz/events.proto` (compiled into `fuzz/events.desc`).
pub fn check_protobuf_decoder(data: &[u8]) {
    let Some((&bits, data)) = data.split_first() else {
        return;
    };
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Int64, true),
        ])),
        false,
    );
    let mut fields = vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("kind", DataType::Utf8, true),
        Field::new("big", DataType::Int64, true),
    ];
    if bits & 1 == 1 {
        fields.extend([
            Field::new("x", DataType::Float64, true),
            Field::new_list("nums", Field::new("item", DataType::Int32, true), true),
            Field::new("counts", DataType::Map(Arc::new(entries), false), true),
            Field::new(
                "inner",
                DataType::Struct(Fields::from(vec![
                    Field::new("s", DataType::Utf8, true),
                    Field::new("n", DataType::Int32, true),
                ])),
                true,
            ),
            Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("raw", DataType::Binary, true),
        ]);
    }
    let mut options = std::collections::BTreeMap::new();
    options.insert(
        "protobuf.descriptor-file".to_string(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/events.desc").to_string(),
    );
    options.insert("protobuf.message-name".to_string(), "fuzz.Event".to_string());
    if bits & 2 == 2 {
        options.insert("protobuf.read-default-values".to_string(), "true".to_string());
    }
    let opts = FormatOptions {
        table: "fuzz".into(),
        schema: Arc::new(Schema::new(fields)),
        options,
    };
    check_messages(&opts, "protobuf", data);
}

fn check_messages(opts: &FormatOptions, format: &str, mut data: &[u8]) {
    let mut decoder = decoder_for(format, opts).expect("valid options");
    let mut messages = 0u64;
    let mut out = 0usize;
    while let Some((&len, rest)) = data.split_first() {
        let n = usize::from(len).min(rest.len());
        decoder
            .decode(&rest[..n], "fuzz", messages)
            .expect("decode never fails on data");
        data = &rest[n..];
        messages += 1;
        if messages % 16 == 0 {
            let d = decoder.flush().expect("flush never fails on data");
            assert!(d.dead_letters.iter().all(|l| l.offset < messages));
            out += d.batch.map_or(0, |b| b.num_rows()) + d.dead_letters.len();
        }
    }
    let d = decoder.flush().expect("flush never fails on data");
    out += d.batch.map_or(0, |b| b.num_rows()) + d.dead_letters.len();
    assert_eq!(out as u64, messages);
}

/// Arbitrary bytes as a Parquet file (first byte: option bits), read for the fuzz
/// table's columns: an error or rows, never a panic.
pub fn check_parquet_reader(data: &[u8]) {
    let Some((&bits, data)) = data.split_first() else {
        return;
    };
    let path = std::env::temp_dir().join(format!("sluice-fuzz-{}.parquet", std::process::id()));
    std::fs::write(&path, data).expect("a temp file");
    let file = std::fs::File::open(&path).expect("reopens");
    if let Ok(mut r) = sluice_formats::parquet::ParquetFileReader::open(file, schema(bits), 0, 64)
    {
        while let Ok(Some(_)) = r.next_batch() {}
    }
}
