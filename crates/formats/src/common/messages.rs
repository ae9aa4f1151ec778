//! The row loop of the message encoders (Avro, Protobuf): each row becomes one message.

use datafusion::arrow::array::StructArray;
use datafusion::arrow::record_batch::RecordBatch;

use crate::Result;

/// Appends each row of `batch` to `out` with `write_row` (given the rows as one struct
/// array and the row's index), pushing the end of each row's bytes to `ends` when given.
pub(crate) fn encode_rows(
    batch: &RecordBatch,
    out: &mut Vec<u8>,
    mut ends: Option<&mut Vec<usize>>,
    mut write_row: impl FnMut(&StructArray, usize, &mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let rows = StructArray::from(batch.clone());
    for row in 0..batch.num_rows() {
        write_row(&rows, row, out)?;
        if let Some(e) = ends.as_deref_mut() {
            e.push(out.len());
        }
    }
    Ok(())
}
