//! The flush algorithm shared by the row decoders: a fast path over the whole buffer,
//! and a fallback that isolates bad records.
//!
//! Owns: feeding buffered records to an [`Engine`] (an Arrow decoder), splitting the
//! buffer around records that fail (a record that breaks the decoder's tokenizer is cut
//! out at once; a batch that fails to convert is halved until the bad records stand
//! alone), applying the column [`Fixups`], and assembling rows and dead letters in input
//! order. Does not own: format specifics (the engines) or the conversions (`fixup`).

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use datafusion::arrow::array::BooleanArray;
use datafusion::arrow::compute::{concat_batches, filter};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::fixup::Fixups;
use super::records::{Records, Slot};
use crate::{Decoded, Result};

/// An Arrow decoder seen record by record.
pub(crate) trait Engine: Send {
    /// Makes the engine ready for up to `rows` records with an empty, healthy decoder.
    fn start(&mut self, rows: usize) -> Result<()>;
    /// Feeds one record followed by `\n`. False when it did not make exactly one row;
    /// the decoder is then unusable until the next `start`.
    fn feed(&mut self, record: &[u8]) -> bool;
    /// The rows fed since `start`, in the engine's wire schema.
    fn finish(&mut self) -> std::result::Result<Option<RecordBatch>, ArrowError>;
    /// Why `record` (without its `\n`) cannot be decoded on its own, for a human;
    /// `error` is what the decoder said, when it said something.
    fn diagnose(&mut self, record: &[u8], error: Option<&ArrowError>) -> String;
}

/// Runs `f`, turning a panic (a bug in a decoder) into `None`.
fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// Reusable scratch space of a flush.
#[derive(Debug, Default)]
pub(crate) struct Flusher {
    pending: Vec<usize>,
    stack: Vec<Range<usize>>,
    pieces: Vec<(usize, RecordBatch)>,
    bad: Vec<(usize, String)>,
}

impl Flusher {
    /// Decodes every buffered record and empties `records`.
    pub(crate) fn flush(
        &mut self,
        engine: &mut dyn Engine,
        records: &mut Records,
        fixups: &Fixups,
    ) -> Result<Decoded> {
        self.pending.clear();
        self.pieces.clear();
        self.bad.clear();
        for (i, e) in records.entries().iter().enumerate() {
            if matches!(e.slot, Slot::Pending { .. }) {
                self.pending.push(i);
            }
        }
        if !self.pending.is_empty() {
            self.decode_segments(engine, records)?;
        }
        self.pieces.sort_by_key(|(start, _)| *start);
        self.bad.sort_by_key(|(i, _)| *i);
        let wire = match self.pieces.len() {
            0 => None,
            1 => self.pieces.pop().map(|(_, b)| b),
            _ => {
                let schema = self.pieces[0].1.schema();
                let batch = concat_batches(&schema, self.pieces.iter().map(|(_, b)| b))?;
                self.pieces.clear();
                Some(batch)
            }
        };
        let (batch, row_errors) = match wire {
            Some(wire) => {
                let (columns, errors) = fixups.apply(&wire)?;
                (Some((columns, wire.num_rows())), errors)
            }
            None => (None, Vec::new()),
        };
        let decoded = self.assemble(records, fixups, batch, row_errors)?;
        records.clear();
        Ok(decoded)
    }

    fn decode_segments(&mut self, engine: &mut dyn Engine, records: &Records) -> Result<()> {
        let entries = records.entries();
        let bytes_of = |p: usize| match entries[self.pending[p]].slot {
            Slot::Pending { start, end } => (start, end),
            Slot::Rejected(_) => (0, 0),
        };
        self.stack.clear();
        self.stack.push(0..self.pending.len());
        while let Some(seg) = self.stack.pop() {
            if seg.is_empty() {
                continue;
            }
            engine.start(seg.len())?;
            let mut failed = None;
            for p in seg.clone() {
                let (s, e) = bytes_of(p);
                let record = records.with_newline(s, e);
                if !guarded(|| engine.feed(record)).unwrap_or(false) {
                    failed = Some(p);
                    break;
                }
            }
            if let Some(p) = failed {
                let (s, e) = bytes_of(p);
                let record = &records.with_newline(s, e)[..e - s];
                let reason = guarded(|| engine.diagnose(record, None))
                    .unwrap_or_else(|| "record could not be decoded".to_string());
                self.bad.push((p, reason));
                self.stack.push(p + 1..seg.end);
                self.stack.push(seg.start..p);
                continue;
            }
            let result = guarded(|| engine.finish())
                .unwrap_or_else(|| Err(ArrowError::ComputeError("internal decoder error".into())));
            match result {
                Ok(Some(batch)) if batch.num_rows() == seg.len() => {
                    self.pieces.push((seg.start, batch));
                }
                Ok(None) if seg.is_empty() => {}
                other => {
                    let error = other.err();
                    if seg.len() == 1 {
                        let (s, e) = bytes_of(seg.start);
                        let record = &records.with_newline(s, e)[..e - s];
                        let reason = guarded(|| engine.diagnose(record, error.as_ref()))
                            .unwrap_or_else(|| "record could not be decoded".to_string());
                        self.bad.push((seg.start, reason));
                    } else {
                        let mid = seg.start + seg.len() / 2;
                        self.stack.push(mid..seg.end);
                        self.stack.push(seg.start..mid);
                    }
                }
            }
        }
        Ok(())
    }

    /// Walks the entries in order: rows that decoded and converted stay, everything
    /// else becomes a dead letter.
    fn assemble(
        &mut self,
        records: &mut Records,
        fixups: &Fixups,
        batch: Option<(Vec<datafusion::arrow::array::ArrayRef>, usize)>,
        row_errors: Vec<(usize, String)>,
    ) -> Result<Decoded> {
        let mut dead_letters = Vec::new();
        let mut bad = self.bad.drain(..).peekable();
        let mut row_errors = row_errors.into_iter().peekable();
        let rows = batch.as_ref().map_or(0, |(_, n)| *n);
        let mut keep = Vec::new();
        let mut p = 0;
        let mut row = 0;
        for i in 0..records.len() {
            let reason = match records.entries()[i].slot {
                Slot::Rejected(_) => Some(String::new()),
                Slot::Pending { .. } => {
                    let this = p;
                    p += 1;
                    if bad.peek().is_some_and(|(b, _)| *b == this) {
                        bad.next().map(|(_, r)| r)
                    } else {
                        let r = row;
                        row += 1;
                        let err = if row_errors.peek().is_some_and(|(e, _)| *e == r) {
                            row_errors.next().map(|(_, m)| m)
                        } else {
                            None
                        };
                        if rows > 0 && (err.is_some() || !keep.is_empty()) {
                            if keep.is_empty() {
                                keep.resize(r, true);
                            }
                            keep.push(err.is_none());
                        }
                        // Drain further errors of the same row.
                        while row_errors.peek().is_some_and(|(e, _)| *e == r) {
                            row_errors.next();
                        }
                        err
                    }
                }
            };
            if let Some(dl) = reason.and_then(|r| records.dead_letter(i, r)) {
                dead_letters.push(dl);
            }
        }
        let batch = match batch {
            Some((columns, n)) if n > 0 => {
                if !keep.is_empty() {
                    keep.resize(n, true);
                }
                let kept = if keep.is_empty() {
                    n
                } else {
                    keep.iter().filter(|k| **k).count()
                };
                let columns = if keep.is_empty() {
                    columns
                } else {
                    let mask = BooleanArray::from(keep);
                    columns
                        .iter()
                        .map(|c| filter(c, &mask))
                        .collect::<std::result::Result<Vec<_>, _>>()?
                };
                let options = RecordBatchOptions::new().with_row_count(Some(kept));
                match kept {
                    0 => None,
                    _ => Some(RecordBatch::try_new_with_options(
                        fixups.declared_schema(),
                        columns,
                        &options,
                    )?),
                }
            }
            _ => None,
        };
        Ok(Decoded {
            batch,
            dead_letters,
        })
    }
}
