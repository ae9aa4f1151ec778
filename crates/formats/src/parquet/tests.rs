use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::ParquetFileReader;
use crate::common::testing::options;
use crate::json::tests::{ALL_NULLS, ALL_TYPES, all_types_schema};
use crate::{decoder_for, encoder_for};

fn from_json(schema: SchemaRef, lines: &[&str]) -> RecordBatch {
    let mut d = decoder_for("json", &options(schema, &[])).unwrap();
    for (i, l) in lines.iter().enumerate() {
        d.decode(l.as_bytes(), "json", i as u64).unwrap();
    }
    d.flush().unwrap().batch.unwrap()
}

/// One Parquet file of `batches`, as the filesystem sink writes it.
fn file_of(schema: SchemaRef, pairs: &[(&str, &str)], batches: &[RecordBatch]) -> Vec<u8> {
    let mut e = encoder_for("parquet", &options(schema, pairs)).unwrap();
    assert!(e.header().is_empty());
    let mut out = Vec::new();
    for b in batches {
        e.encode(b, &mut out).unwrap();
    }
    e.finish_file(&mut out).unwrap();
    out
}

fn read(bytes: &[u8], schema: SchemaRef, skip: usize) -> crate::Result<Vec<RecordBatch>> {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(bytes).unwrap();
    let mut r = ParquetFileReader::open(f, schema, skip, 2)?;
    let mut out = Vec::new();
    while let Some((b, rejected)) = r.next_batch()? {
        assert!(rejected.is_empty(), "{rejected:?}");
        out.push(b);
    }
    Ok(out)
}

#[test]
fn every_type_round_trips_in_every_compression() {
    let schema = all_types_schema();
    let a = from_json(schema.clone(), &[ALL_TYPES, ALL_NULLS]);
    let b = from_json(schema.clone(), &[ALL_NULLS, ALL_TYPES, ALL_TYPES]);
    let want = concat_batches(&schema, [&a, &b]).unwrap();
    for c in ["snappy", "uncompressed", "gzip", "zstd", "lz4"] {
        let bytes = file_of(
            schema.clone(),
            &[("parquet.compression", c)],
            &[a.clone(), b.clone()],
        );
        assert_eq!(&bytes[..4], b"PAR1");
        let got = read(&bytes, schema.clone(), 0).unwrap();
        assert_eq!(concat_batches(&schema, &got).unwrap(), want, "{c}");
        // Resuming after 3 rows reads the last 2.
        let got = read(&bytes, schema.clone(), 3).unwrap();
        assert_eq!(
            concat_batches(&schema, &got).unwrap(),
            want.slice(3, 2),
            "{c}"
        );
    }
}

#[test]
fn an_encoder_writes_one_complete_file_per_part() {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
    let one = from_json(schema.clone(), &[r#"{"n":1}"#]);
    let mut e = encoder_for("parquet", &options(schema.clone(), &[])).unwrap();
    let mut first = Vec::new();
    e.encode(&one, &mut first).unwrap();
    e.finish_file(&mut first).unwrap();
    let mut second = Vec::new();
    e.encode(&one, &mut second).unwrap();
    e.encode(&one, &mut second).unwrap();
    e.finish_file(&mut second).unwrap();
    let rows = |b: &[u8]| -> usize {
        read(b, schema.clone(), 0)
            .unwrap()
            .iter()
            .map(RecordBatch::num_rows)
            .sum()
    };
    assert_eq!((rows(&first), rows(&second)), (1, 2));
    // A part with no rows is still a valid (empty) file.
    let mut empty = Vec::new();
    e.finish_file(&mut empty).unwrap();
    assert_eq!(rows(&empty), 0);
}

/// Columns are found by name in any order and case; a column the file lacks is NULL
/// when nullable and an error when NOT NULL; types are cast where possible.
#[test]
fn columns_are_matched_by_name() {
    let written = Arc::new(Schema::new(vec![
        Field::new("B", DataType::Utf8, true),
        Field::new("a", DataType::Int32, true),
    ]));
    let bytes = file_of(
        written.clone(),
        &[],
        &[from_json(
            written.clone(),
            &[r#"{"B":"x","a":1}"#, r#"{"B":null,"a":2}"#],
        )],
    );
    let table = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
        Field::new("c", DataType::Float64, true),
    ]));
    let got = concat_batches(&table, &read(&bytes, table.clone(), 0).unwrap()).unwrap();
    assert_eq!(
        got,
        from_json(table.clone(), &[r#"{"a":1,"b":"x"}"#, r#"{"a":2}"#])
    );
    let strict = Arc::new(Schema::new(vec![Field::new("c", DataType::Int64, false)]));
    let e = read(&bytes, strict, 0).unwrap_err().to_string();
    assert!(e.contains("no column 'c'"), "{e}");
    let not_null = Arc::new(Schema::new(vec![Field::new("b", DataType::Utf8, false)]));
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&bytes).unwrap();
    let mut r = ParquetFileReader::open(f, not_null, 0, 10).unwrap();
    let (batch, rejected) = r.next_batch().unwrap().unwrap();
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0].1.contains("'b' is NULL"), "{rejected:?}");
}

#[test]
fn files_that_are_not_parquet_are_refused_with_a_reason() {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
    let good = file_of(
        schema.clone(),
        &[],
        &[from_json(schema.clone(), &[r#"{"n":1}"#])],
    );
    for bad in [
        b"".to_vec(),
        b"n\n1\n".to_vec(),
        good[..good.len() / 2].to_vec(),
        good[good.len() / 2..].to_vec(),
        {
            let mut g = good.clone();
            let mid = g.len() / 2;
            g[mid] ^= 0xff;
            g[4] ^= 0xff;
            g
        },
    ] {
        // Never a panic; an error or (for a flipped data byte) rows.
        if let Err(e) = read(&bad, schema.clone(), 0) {
            assert!(!e.to_string().is_empty());
        }
    }
    let e = read(b"not parquet", schema.clone(), 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a readable Parquet file"), "{e}");
}

#[test]
fn option_mistakes_are_explained() {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
    for (k, v, says) in [
        ("parquet.compression", "brotli9", "not one of"),
        ("parquet.block.size", "-1", "positive number"),
        (
            "parquet.blok.size",
            "1",
            "did you mean 'parquet.block.size'",
        ),
    ] {
        let e = encoder_for("parquet", &options(schema.clone(), &[(k, v)]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(says), "{k}: {e}");
    }
    let e = decoder_for("parquet", &options(schema, &[]))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("file format"), "{e}");
}
