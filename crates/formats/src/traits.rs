//! The decoder and encoder seams every format implements.

use datafusion::arrow::record_batch::RecordBatch;
use sluice_types::DeadLetter;

use crate::Result;

/// What a [`Decoder::flush`] returns: the rows that decoded and the records that did not.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Rows in the table's declared (physical) schema; `None` when no row decoded.
    pub batch: Option<RecordBatch>,
    /// One entry per rejected record, in input order.
    pub dead_letters: Vec<DeadLetter>,
}

/// Turns records (one framed unit of bytes each) into rows of a fixed Arrow schema.
///
/// Contract:
/// - [`decode`](Decoder::decode) takes exactly one record (a line, a message) and never
///   fails on bad data: a bad record is remembered and reported by the next `flush` as a
///   dead letter naming the field where known. It fails only for internal errors.
/// - [`flush`](Decoder::flush) returns the buffered rows as one batch in the declared
///   schema and the dead letters, and leaves the decoder empty and reusable.
/// - Never panics on any input, including non-UTF-8, truncated or huge records.
pub trait Decoder: Send {
    /// Buffers one record whose first byte is at `offset` within `source`.
    fn decode(&mut self, record: &[u8], source: &str, offset: u64) -> Result<()>;
    /// Reports a record that never reached [`decode`](Decoder::decode), such as a line
    /// over the framer's size limit: it comes out of the next `flush` as a dead letter
    /// with `reason`, in input order with the others. `raw` holds the record (or its
    /// first bytes, then `truncated` is true).
    fn reject(&mut self, source: &str, offset: u64, reason: String, raw: &[u8], truncated: bool);
    /// Records buffered since the last flush (decoded or not yet known to be bad,
    /// rejected ones included).
    fn buffered_records(&self) -> usize;
    /// Emits the buffered rows and dead letters.
    fn flush(&mut self) -> Result<Decoded>;
}

/// Turns batches into bytes in one format (newline-delimited for row formats).
pub trait Encoder: Send {
    /// Appends the encoding of every row of `batch` to `out`.
    fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()>;
    /// The bytes a file of this format starts with (a CSV header, say); empty by default.
    fn header(&self) -> Vec<u8> {
        Vec::new()
    }
    /// Appends what completes a file after its last row (a Parquet footer) and resets
    /// the encoder for the next file. Row formats have nothing to add (the default).
    fn finish_file(&mut self, _out: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }
    /// Appends each row of `batch` to `out` as one message (no line terminator) and
    /// pushes the end of each row's bytes to `ends`: row `i` is
    /// `out[ends[i - 1]..ends[i]]` (from where `out` ended before, for the first row).
    /// For message-based connectors (Kafka, NATS). The default encodes row by row.
    fn encode_each(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<()> {
        for row in 0..batch.num_rows() {
            self.encode(&batch.slice(row, 1), out)?;
            if out.last() == Some(&b'\n') {
                out.pop();
                if out.last() == Some(&b'\r') {
                    out.pop();
                }
            }
            ends.push(out.len());
        }
        Ok(())
    }
}
