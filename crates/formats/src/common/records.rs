//! The record buffer every row decoder fills between flushes.
//!
//! Owns: the buffered record bytes (contiguous, one `\n` after each, the Vec reused
//! across flushes), each record's offset and source, and records rejected before
//! decoding. Does not own: decoding (see `flush`).

use sluice_types::DeadLetter;

/// Where one buffered record is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot {
    /// Bytes `start..end` of the buffer (a `\n` follows at `end`).
    Pending { start: usize, end: usize },
    /// Already rejected: index into the rejected dead letters.
    Rejected(usize),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) slot: Slot,
    pub(crate) offset: u64,
    source: usize,
}

/// Records buffered since the last flush, in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Records {
    table: String,
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    /// Distinct sources, in order of first use (usually one).
    sources: Vec<String>,
    rejected: Vec<Option<DeadLetter>>,
}

impl Records {
    pub(crate) fn new(table: &str) -> Self {
        Records {
            table: table.to_string(),
            ..Default::default()
        }
    }

    fn source_index(&mut self, source: &str) -> usize {
        match self.sources.last() {
            Some(last) if last.as_str() == source => self.sources.len() - 1,
            _ => {
                self.sources.push(source.to_string());
                self.sources.len() - 1
            }
        }
    }

    /// Buffers one record.
    pub(crate) fn push(&mut self, record: &[u8], source: &str, offset: u64) {
        let source = self.source_index(source);
        let start = self.bytes.len();
        self.bytes.extend_from_slice(record);
        let end = self.bytes.len();
        self.bytes.push(b'\n');
        self.entries.push(Entry {
            slot: Slot::Pending { start, end },
            offset,
            source,
        });
    }

    /// Records a rejected record, to come out of the next flush in order.
    pub(crate) fn reject(
        &mut self,
        source: &str,
        offset: u64,
        reason: String,
        raw: &[u8],
        truncated: bool,
    ) {
        let mut dl = DeadLetter::new(&self.table, source, offset, reason, raw);
        dl.truncated |= truncated;
        let source = self.source_index(source);
        self.entries.push(Entry {
            slot: Slot::Rejected(self.rejected.len()),
            offset,
            source,
        });
        self.rejected.push(Some(dl));
    }

    /// All buffered records, rejected ones included.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The bytes of a pending record followed by its `\n`.
    pub(crate) fn with_newline(&self, start: usize, end: usize) -> &[u8] {
        &self.bytes[start..=end]
    }

    /// A dead letter for entry `i` (pending: built from its bytes; rejected: taken).
    pub(crate) fn dead_letter(&mut self, i: usize, reason: String) -> Option<DeadLetter> {
        let entry = *self.entries.get(i)?;
        match entry.slot {
            Slot::Pending { start, end } => Some(DeadLetter::new(
                &self.table,
                &self.sources[entry.source],
                entry.offset,
                reason,
                &self.bytes[start..end],
            )),
            Slot::Rejected(r) => self.rejected.get_mut(r)?.take(),
        }
    }

    /// Forgets everything buffered, keeping the allocations.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
        self.rejected.clear();
        if self.sources.len() > 1 {
            self.sources.drain(..self.sources.len() - 1);
        }
    }
}
