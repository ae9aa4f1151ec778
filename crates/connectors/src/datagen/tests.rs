//! Tests of the datagen connector: sequences, bounds, nulls, types, options, offsets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Field, Fields, Float64Type, Int32Type, Int64Type, Schema, SchemaRef,
    TimeUnit,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice_runtime::metrics::JobMetrics;
use sluice_runtime::{DeadLetterOutput, Source, SourceEvent, TaskInfo};
use sluice_types::DeadLetter;

use super::*;
use crate::{ConnectorFactory, ConnectorTable};

struct NoDeadLetters;

impl DeadLetterOutput for NoDeadLetters {
    fn send(&self, _letter: DeadLetter) {}
}

fn schema(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}

/// A table with `rows-per-second` high enough not to slow tests, unless overridden.
fn table(schema: SchemaRef, options: &[(&str, &str)]) -> ConnectorTable {
    let mut map = BTreeMap::new();
    map.insert("connector".to_string(), "datagen".to_string());
    map.insert("rows-per-second".to_string(), "100000000".to_string());
    for (k, v) in options {
        map.insert((*k).to_string(), (*v).to_string());
    }
    ConnectorTable {
        name: "t".into(),
        schema,
        options: map,
        primary_key: vec![],
        metadata: vec![],
    }
}

fn task(subtask: usize, parallelism: usize) -> TaskInfo {
    TaskInfo {
        job: "test".into(),
        operator: "Source: t".into(),
        subtask,
        parallelism,
        checkpointing: false,
    }
}

fn error_of(t: &ConnectorTable) -> String {
    match DatagenConnector.source(t) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

async fn drain(source: &mut dyn Source, max: usize) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    while out.len() < max {
        match source.next(&NoDeadLetters).await.unwrap() {
            SourceEvent::Batch(b) => out.push(b),
            SourceEvent::Idle => {}
            SourceEvent::End => break,
        }
    }
    out
}

async fn run(t: &ConnectorTable, subtask: usize, parallelism: usize) -> Vec<RecordBatch> {
    let factory = DatagenConnector.source(t).unwrap();
    let metrics = Arc::new(JobMetrics::default());
    let mut source = factory
        .create(&task(subtask, parallelism), &metrics)
        .unwrap();
    source
        .open(&task(subtask, parallelism), None)
        .await
        .unwrap();
    let batches = drain(&mut *source, usize::MAX).await;
    for b in &batches {
        assert_eq!(b.schema(), t.schema);
    }
    batches
}

fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default();
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for i in 0..b.num_rows() {
            out.push(
                fmts.iter()
                    .map(|f| f.value(i).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out
}

#[tokio::test]
async fn sequences_are_exact_and_complete_across_subtasks() {
    let s = schema(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("code", DataType::Utf8, true),
        Field::new("v", DataType::Int32, true),
    ]);
    let opts = [
        ("fields.id.kind", "sequence"),
        ("fields.id.start", "1"),
        ("fields.id.end", "1000"),
        ("fields.code.kind", "sequence"),
        ("fields.code.start", "5001"),
        ("fields.code.end", "7000"),
    ];
    let t = table(s, &opts);
    assert!(DatagenConnector.source(&t).unwrap().bounded());
    for n in [1, 3, 4] {
        let mut ids = Vec::new();
        let mut codes = Vec::new();
        for i in 0..n {
            let batches = run(&t, i, n).await;
            let part: Vec<i64> = batches
                .iter()
                .flat_map(|b| b["id"].as_primitive::<Int64Type>().values().to_vec())
                .collect();
            assert!(
                part.windows(2).all(|w| w[1] == w[0] + 1),
                "a contiguous share"
            );
            ids.extend(part);
            codes.extend(batches.iter().flat_map(|b| {
                let c = b["code"].as_string::<i32>();
                (0..c.len())
                    .map(|i| c.value(i).parse::<i64>().unwrap())
                    .collect::<Vec<_>>()
            }));
        }
        ids.sort_unstable();
        assert_eq!(ids, (1..=1000).collect::<Vec<_>>(), "parallelism {n}");
        // The shorter sequence ends each subtask; codes start at each share's start.
        assert_eq!(codes.len(), 1000);
        assert!(codes.iter().all(|c| (5001..=7000).contains(c)));
    }
}

#[tokio::test]
async fn random_values_respect_min_and_max() {
    let s = schema(vec![
        Field::new("i", DataType::Int32, true),
        Field::new("d", DataType::Float64, true),
        Field::new("m", DataType::Decimal128(5, 2), true),
        Field::new("t", DataType::Int8, true),
    ]);
    let opts = [
        ("number-of-rows", "3000"),
        ("fields.i.min", "5"),
        ("fields.i.max", "10"),
        ("fields.d.min", "-1.5"),
        ("fields.d.max", "1"),
        ("fields.m.min", "1.5"),
        ("fields.m.max", "2.25"),
    ];
    let batches = run(&table(s, &opts), 0, 1).await;
    let ints: Vec<i32> = batches
        .iter()
        .flat_map(|b| b["i"].as_primitive::<Int32Type>().values().to_vec())
        .collect();
    assert_eq!(ints.len(), 3000);
    assert!(ints.iter().all(|v| (5..=10).contains(v)));
    assert!((5..=10).all(|v| ints.contains(&v)), "every value appears");
    let ds: Vec<f64> = batches
        .iter()
        .flat_map(|b| b["d"].as_primitive::<Float64Type>().values().to_vec())
        .collect();
    assert!(ds.iter().all(|v| (-1.5..=1.0).contains(v)));
    assert!(ds.iter().any(|v| *v < -1.0) && ds.iter().any(|v| *v > 0.5));
    let ms: Vec<i128> = batches
        .iter()
        .flat_map(|b| b["m"].as_primitive::<Decimal128Type>().values().to_vec())
        .collect();
    assert!(ms.iter().all(|v| (150..=225).contains(v)));
}

#[tokio::test]
async fn null_rate_is_roughly_right() {
    let s = schema(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
    ]);
    let opts = [
        ("number-of-rows", "20000"),
        ("fields.a.null-rate", "0.3"),
        ("fields.s.null-rate", "1.0"),
    ];
    let batches = run(&table(s, &opts), 0, 1).await;
    let nulls: usize = batches.iter().map(|b| b["a"].null_count()).sum();
    assert!((5400..6600).contains(&nulls), "{nulls} of 20000");
    assert_eq!(
        batches.iter().map(|b| b["s"].null_count()).sum::<usize>(),
        20000
    );
}

#[tokio::test]
async fn every_type_generates_a_valid_batch() {
    let nullable = |n: &str, t: DataType| Field::new(n, t, true);
    let row = Fields::from(vec![
        nullable("x", DataType::Int32),
        nullable("y", DataType::Utf8),
    ]);
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            nullable("value", DataType::Int64),
        ])),
        false,
    );
    let s = schema(vec![
        nullable("b", DataType::Boolean),
        nullable("i8", DataType::Int8),
        nullable("i16", DataType::Int16),
        nullable("i32", DataType::Int32),
        Field::new("i64", DataType::Int64, false),
        nullable("f32", DataType::Float32),
        nullable("f64", DataType::Float64),
        nullable("dec", DataType::Decimal128(10, 3)),
        nullable("s", DataType::Utf8),
        nullable("bin", DataType::Binary),
        nullable("d", DataType::Date32),
        nullable("tm", DataType::Time32(TimeUnit::Millisecond)),
        nullable("ts", DataType::Timestamp(TimeUnit::Millisecond, None)),
        nullable(
            "ltz",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
        nullable("r", DataType::Struct(row)),
        nullable(
            "arr",
            DataType::List(Arc::new(nullable("item", DataType::Int32))),
        ),
        nullable("m", DataType::Map(Arc::new(entries), false)),
    ]);
    let opts = [
        ("number-of-rows", "500"),
        ("fields.s.length", "12"),
        ("fields.s.var-len", "true"),
        ("fields.ts.max-past", "1h"),
        ("fields.r.x.min", "1"),
        ("fields.r.x.max", "3"),
        ("fields.r.null-rate", "0.5"),
        ("fields.arr.length", "4"),
        ("fields.arr.element.min", "7"),
        ("fields.arr.element.max", "7"),
        ("fields.m.key.length", "5"),
        ("fields.b.null-rate", "0.1"),
    ];
    let start_ms = chrono::Utc::now().timestamp_millis();
    let batches = run(&table(s, &opts), 0, 1).await;
    assert_eq!(
        batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        500
    );
    let b = &batches[0];
    let strings = b["s"].as_string::<i32>();
    assert!((0..strings.len()).all(|i| (1..=12).contains(&strings.value(i).len())));
    assert!((0..strings.len()).any(|i| strings.value(i).len() < 12));
    let ts = b["ts"].as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>();
    assert!(
        ts.values()
            .iter()
            .all(|t| *t >= start_ms - 3_600_000 && *t <= start_ms + 60_000)
    );
    let r = b["r"].as_struct();
    assert!(r.null_count() > 100);
    assert!(
        r["x"]
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .all(|v| (1..=3).contains(v))
    );
    let arr = b["arr"].as_list::<i32>();
    assert_eq!(arr.value(0).len(), 4);
    assert!(
        arr.values()
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .all(|v| *v == 7)
    );
    let m = b["m"].as_map();
    assert_eq!(m.keys().as_string::<i32>().value(0).len(), 5);
}

#[tokio::test]
async fn bounded_sources_split_rows_and_end() {
    let s = schema(vec![Field::new("a", DataType::Int64, true)]);
    let t = table(s.clone(), &[("number-of-rows", "10")]);
    let counts: Vec<usize> = futures::future::join_all((0..3).map(|i| {
        let t = t.clone();
        async move {
            run(&t, i, 3)
                .await
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>()
        }
    }))
    .await;
    assert_eq!(counts, vec![3, 3, 4]);
    assert!(!DatagenConnector.source(&table(s, &[])).unwrap().bounded());
}

#[tokio::test]
async fn the_seed_makes_rows_reproducible_and_restores_continue_them() {
    let s = schema(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
    ]);
    let t = table(s.clone(), &[("number-of-rows", "30000"), ("seed", "42")]);
    let whole = rows(&run(&t, 0, 1).await);
    assert_eq!(whole, rows(&run(&t, 0, 1).await));
    assert_ne!(
        whole,
        rows(
            &run(
                &table(s, &[("number-of-rows", "30000"), ("seed", "43")]),
                0,
                1
            )
            .await
        )
    );

    let factory = DatagenConnector.source(&t).unwrap();
    let metrics = Arc::new(JobMetrics::default());
    let mut first = factory.create(&task(0, 1), &metrics).unwrap();
    first.open(&task(0, 1), None).await.unwrap();
    let mut seen = rows(&drain(&mut *first, 2).await);
    let offsets = first.snapshot(sluice_types::CheckpointId(1)).unwrap();
    assert_eq!(
        offsets.get("emitted").and_then(|v| v.as_u64()),
        Some(seen.len() as u64)
    );
    let mut second = factory.create(&task(0, 1), &metrics).unwrap();
    let restored = sluice_runtime::RestoredOffsets {
        parallelism: 1,
        subtasks: vec![offsets],
    };
    second.open(&task(0, 1), Some(restored)).await.unwrap();
    seen.extend(rows(&drain(&mut *second, usize::MAX).await));
    assert_eq!(seen, whole);
}

#[tokio::test]
async fn rows_per_second_paces_the_source() {
    let s = schema(vec![Field::new("a", DataType::Int64, true)]);
    let t = table(s, &[("number-of-rows", "300"), ("rows-per-second", "1000")]);
    let start = Instant::now();
    let batches = run(&t, 0, 1).await;
    let ms = start.elapsed().as_millis();
    assert_eq!(
        batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        300
    );
    assert!((250..1500).contains(&ms), "300 rows at 1000/s took {ms} ms");
    assert!(batches.len() > 5);
}

/// Options, the key the error must name, and a phrase it must contain.
type Case = (
    Vec<(&'static str, &'static str)>,
    &'static str,
    &'static str,
);

#[test]
fn option_errors_name_the_option() {
    let s = schema(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]);
    let cases: Vec<Case> = vec![
        (
            vec![("fields.nme.kind", "random")],
            "fields.nme.kind",
            "no field 'nme'",
        ),
        (
            vec![("fields.id.colour", "red")],
            "fields.id.colour",
            "unknown field option",
        ),
        (
            vec![("rows-per-secnd", "5")],
            "rows-per-secnd",
            "Did you mean 'rows-per-second'",
        ),
        (
            vec![("fields.id.kind", "sequence"), ("fields.id.start", "1")],
            "fields.id.end",
            "needs both",
        ),
        (
            vec![("fields.id.kind", "counter")],
            "fields.id.kind",
            "'counter'",
        ),
        (
            vec![("fields.name.min", "1")],
            "fields.name.min",
            "does not apply",
        ),
        (
            vec![("fields.id.null-rate", "0.5")],
            "fields.id.null-rate",
            "NOT NULL",
        ),
        (
            vec![("fields.name.null-rate", "2")],
            "fields.name.null-rate",
            "between 0.0 and 1.0",
        ),
        (
            vec![("fields.id.min", "9"), ("fields.id.max", "3")],
            "fields.id.max",
            "below min",
        ),
        (
            vec![("fields.id.start", "1")],
            "fields.id.start",
            "'kind' = 'sequence'",
        ),
        (vec![("number-of-rows", "-1")], "number-of-rows", "'-1'"),
    ];
    for (opts, key, text) in cases {
        let e = error_of(&table(s.clone(), &opts));
        assert!(
            e.contains(&format!("'{key}'")) && e.contains(text),
            "{opts:?}: {e}"
        );
    }
    let bad_type = schema(vec![Field::new(
        "iv",
        DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::DayTime),
        true,
    )]);
    let e = error_of(&table(bad_type, &[]));
    assert!(e.contains("'iv'") && e.contains("supported"), "{e}");
}

#[tokio::test]
async fn the_documented_example_works() {
    let md = include_str!("../../../../docs/connectors/datagen.md");
    let examples = doc_examples(md);
    assert_eq!(examples.len(), 1);
    let address = Fields::from(vec![
        Field::new("city", DataType::Utf8, true),
        Field::new("zip", DataType::Int32, true),
    ]);
    let s = schema(vec![
        Field::new("order_id", DataType::Int64, true),
        Field::new("customer", DataType::Utf8, true),
        Field::new("amount", DataType::Decimal128(10, 2), true),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new("address", DataType::Struct(address), true),
        Field::new(
            "order_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
    ]);
    let t = ConnectorTable {
        name: "orders".into(),
        schema: s,
        options: examples[0].clone(),
        primary_key: vec![],
        metadata: vec![],
    };
    let factory = DatagenConnector.source(&t).unwrap();
    assert!(factory.bounded());
    let metrics = Arc::new(JobMetrics::default());
    let mut source = factory.create(&task(0, 1), &metrics).unwrap();
    source.open(&task(0, 1), None).await.unwrap();
    let b = &drain(&mut *source, 1).await[0];
    assert_eq!(b["order_id"].as_primitive::<Int64Type>().value(0), 1);
    assert_eq!(b["customer"].as_string::<i32>().value(0).len(), 8);
    let zips = b["address"].as_struct()["zip"]
        .as_primitive::<Int32Type>()
        .values()
        .to_vec();
    assert!(zips.iter().all(|z| (10_000..=99_999).contains(z)));
}

/// The `WITH (...)` options of every SQL example in a Markdown file.
fn doc_examples(md: &str) -> Vec<BTreeMap<String, String>> {
    md.split("```sql")
        .skip(1)
        .filter_map(|block| {
            let with = block.split("```").next()?.split("WITH (").nth(1)?;
            let quoted: Vec<&str> = with.split('\'').skip(1).step_by(2).collect();
            Some(
                quoted
                    .chunks(2)
                    .map(|kv| (kv[0].to_string(), kv[1].to_string()))
                    .collect(),
            )
        })
        .collect()
}
