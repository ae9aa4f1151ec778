//! `'format' = 'raw'`: each record is the value of the table's single column, as it is
//! (Flink's `raw`). Only `STRING` (UTF-8) and `BYTES` columns.
//!
//! Owns: the raw decoder and encoder and their registry entry.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use sluice_types::DeadLetter;

use crate::registry::FormatFactory;
use crate::{Decoded, Decoder, Encoder, Error, FormatOptions, Result};

/// `raw`.
pub struct RawFormat;

fn check(options: &FormatOptions) -> Result<(SchemaRef, bool)> {
    if let Some(c) = options.get("raw", "charset")
        && !c.eq_ignore_ascii_case("UTF-8")
    {
        return Err(Error::BadOption {
            option: "raw.charset".into(),
            message: format!("'{c}' is not supported; only UTF-8 is"),
        });
    }
    if let Some(e) = options.get("raw", "endianness")
        && !["big-endian", "little-endian"].contains(&e)
    {
        return Err(Error::BadOption {
            option: "raw.endianness".into(),
            message: format!("'{e}' is not big-endian or little-endian"),
        });
    }
    let schema = options.schema.clone();
    let text = match schema.fields().first().map(|f| f.data_type()) {
        Some(DataType::Utf8 | DataType::LargeUtf8) if schema.fields().len() == 1 => true,
        Some(DataType::Binary | DataType::LargeBinary) if schema.fields().len() == 1 => false,
        _ => {
            return Err(Error::BadOption {
                option: "format".into(),
                message: "'raw' needs a table of exactly one STRING or BYTES column".into(),
            });
        }
    };
    Ok((schema, text))
}

impl FormatFactory for RawFormat {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn option_keys(&self) -> &'static [&'static str] {
        &["charset", "endianness"]
    }

    fn decoder(&self, options: &FormatOptions) -> Result<Box<dyn Decoder>> {
        let (schema, text) = check(options)?;
        Ok(Box::new(RawDecoder {
            schema,
            text,
            table: options.table.clone(),
            strings: StringBuilder::new(),
            bytes: BinaryBuilder::new(),
            rows: 0,
            dead: Vec::new(),
        }))
    }

    fn encoder(&self, options: &FormatOptions) -> Result<Box<dyn Encoder>> {
        check(options)?;
        Ok(Box::new(RawEncoder))
    }
}

/// Buffers one value per record.
struct RawDecoder {
    schema: SchemaRef,
    text: bool,
    table: String,
    strings: StringBuilder,
    bytes: BinaryBuilder,
    rows: usize,
    dead: Vec<DeadLetter>,
}

impl Decoder for RawDecoder {
    fn decode(&mut self, record: &[u8], source: &str, offset: u64) -> Result<()> {
        if self.text {
            match std::str::from_utf8(record) {
                Ok(s) => self.strings.append_value(s),
                Err(e) => {
                    self.dead.push(DeadLetter::new(
                        &self.table,
                        source,
                        offset,
                        format!(
                            "not UTF-8 text (the column is STRING; use BYTES for binary data): {e}"
                        ),
                        record,
                    ));
                    return Ok(());
                }
            }
        } else {
            self.bytes.append_value(record);
        }
        self.rows += 1;
        Ok(())
    }

    fn reject(&mut self, source: &str, offset: u64, reason: String, raw: &[u8], truncated: bool) {
        let mut d = DeadLetter::new(&self.table, source, offset, reason, raw);
        d.truncated |= truncated;
        self.dead.push(d);
    }

    fn buffered_records(&self) -> usize {
        self.rows + self.dead.len()
    }

    fn flush(&mut self) -> Result<Decoded> {
        let dead_letters = std::mem::take(&mut self.dead);
        if self.rows == 0 {
            return Ok(Decoded {
                batch: None,
                dead_letters,
            });
        }
        self.rows = 0;
        let column: ArrayRef = if self.text {
            Arc::new(self.strings.finish())
        } else {
            Arc::new(self.bytes.finish())
        };
        let column = datafusion::arrow::compute::cast(&column, self.schema.field(0).data_type())?;
        Ok(Decoded {
            batch: Some(RecordBatch::try_new(self.schema.clone(), vec![column])?),
            dead_letters,
        })
    }
}

/// Writes the column's bytes; a NULL writes nothing.
struct RawEncoder;

impl RawEncoder {
    fn value(column: &dyn Array, row: usize) -> &[u8] {
        if column.is_null(row) {
            return &[];
        }
        if let Some(s) = column.as_string_opt::<i32>() {
            s.value(row).as_bytes()
        } else if let Some(s) = column.as_string_opt::<i64>() {
            s.value(row).as_bytes()
        } else if let Some(b) = column.as_binary_opt::<i32>() {
            b.value(row)
        } else if let Some(b) = column.as_binary_opt::<i64>() {
            b.value(row)
        } else {
            &[]
        }
    }
}

impl Encoder for RawEncoder {
    fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        let column = batch.column(0);
        for row in 0..batch.num_rows() {
            out.extend_from_slice(Self::value(column.as_ref(), row));
            out.push(b'\n');
        }
        Ok(())
    }

    fn encode_each(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()> {
        let column = batch.column(0);
        ends.extend((0..batch.num_rows()).map(|row| {
            out.extend_from_slice(Self::value(column.as_ref(), row));
            out.len()
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::common::testing::options;
    use crate::{decoder_for, encoder_for};

    fn one(t: DataType) -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("v", t, true)]))
    }

    #[test]
    fn records_round_trip_and_bad_utf8_is_a_dead_letter() {
        let mut d = decoder_for("raw", &options(one(DataType::Utf8), &[])).expect("builds");
        for (i, r) in [b"hello".as_slice(), b"", b"\xff\xfe", "ünï".as_bytes()]
            .iter()
            .enumerate()
        {
            d.decode(r, "t", i as u64).expect("never fails");
        }
        let out = d.flush().expect("flushes");
        let b = out.batch.expect("rows");
        assert_eq!(b.num_rows(), 3);
        assert_eq!(out.dead_letters.len(), 1);
        assert_eq!(out.dead_letters[0].offset, 2);
        let mut e = encoder_for("raw", &options(one(DataType::Utf8), &[])).expect("builds");
        let (mut buf, mut ends) = (Vec::new(), Vec::new());
        e.encode_each(&b, &mut buf, &mut ends).expect("encodes");
        assert_eq!(ends, [5, 5, 10]);
        assert_eq!(&buf[5..], "ünï".as_bytes());
        let mut d = decoder_for("raw", &options(one(DataType::Binary), &[])).expect("builds");
        d.decode(b"\xff\x00", "t", 0).expect("never fails");
        assert_eq!(
            d.flush().expect("flushes").batch.expect("a row").num_rows(),
            1
        );
    }

    #[test]
    fn tables_raw_cannot_carry_are_refused() {
        let two = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        for s in [two, one(DataType::Int64)] {
            let e = decoder_for("raw", &options(s, &[])).err().expect("refused");
            assert!(e.to_string().contains("exactly one STRING or BYTES"), "{e}");
        }
        let e = decoder_for(
            "raw",
            &options(one(DataType::Utf8), &[("raw.charset", "latin1")]),
        )
        .err()
        .expect("refused");
        assert!(e.to_string().contains("only UTF-8"), "{e}");
    }
}
