//! Test helpers shared by the format tests.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

use crate::framing::{Frame, LineFramer};
use crate::{Decoded, Decoder, FormatOptions};

/// A tiny deterministic PRNG (xorshift64*), so tests need no dependency.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The Nexmark `bid` table.
pub(crate) fn bid_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, true),
        Field::new("bidder", DataType::Int64, true),
        Field::new("price", DataType::Int64, true),
        Field::new("channel", DataType::Utf8, true),
        Field::new("url", DataType::Utf8, true),
        Field::new(
            "date_time",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        Field::new("extra", DataType::Utf8, true),
    ]))
}

/// Format options for `schema` with `pairs` as the WITH options.
pub(crate) fn options(schema: SchemaRef, pairs: &[(&str, &str)]) -> FormatOptions {
    FormatOptions {
        table: "t".into(),
        schema,
        options: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Frames `data` into lines, decodes them all (oversized lines rejected), flushes.
pub(crate) fn decode_all(decoder: &mut dyn Decoder, data: &[u8], max: usize) -> Decoded {
    let mut framer = LineFramer::new().with_max_record_bytes(max);
    let mut on_frame = |f: Frame<'_>| match f {
        Frame::Record { offset, bytes } => decoder.decode(bytes, "test", offset),
        Frame::Oversized(o) => {
            decoder.reject("test", o.offset, o.reason(), o.head, true);
            Ok(())
        }
    };
    framer.feed(data, &mut on_frame).unwrap();
    framer.finish(&mut on_frame).unwrap();
    decoder.flush().unwrap()
}

/// Rows of a decoded batch (0 when none).
pub(crate) fn rows(d: &Decoded) -> usize {
    d.batch.as_ref().map_or(0, RecordBatch::num_rows)
}
