//! Framing: cutting a byte stream into newline-delimited records.
//!
//! Owns: [`LineFramer`], which takes byte chunks as a reader yields them and hands out
//! each complete line with the absolute byte offset of its first byte, handling `\n` and
//! `\r\n`, a last line without a newline, empty lines (skipped), an upper bound on the
//! size of a record (oversized lines are reported once, never buffered whole), and byte
//! range splits of one file (each line belongs to exactly one split).
//! Does not own: reading files or decoding records (the connector reads, a
//! [`Decoder`](crate::Decoder) decodes).
//!
//! ```
//! use sluice_formats::framing::{Frame, LineFramer};
//! let mut framer = LineFramer::new();
//! let mut lines = Vec::new();
//! let mut on_frame = |f: Frame<'_>| -> Result<(), ()> {
//!     if let Frame::Record { offset, bytes } = f {
//!         lines.push((offset, bytes.to_vec()));
//!     }
//!     Ok(())
//! };
//! framer.feed(b"{\"a\":1}\r\n{\"a\"", &mut on_frame).unwrap();
//! framer.feed(b":2}", &mut on_frame).unwrap();
//! framer.finish(&mut on_frame).unwrap();
//! assert_eq!(lines, vec![(0, b"{\"a\":1}".to_vec()), (9, b"{\"a\":2}".to_vec())]);
//! ```

/// The default upper bound on one record: 8 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 8 * 1024 * 1024;

/// How many first bytes of an oversized line are kept for its dead letter (64 KiB, the
/// most a dead letter keeps).
pub const OVERSIZED_HEAD_BYTES: usize = 64 * 1024;

const MAX_DEAD_LETTER_BYTES: usize = OVERSIZED_HEAD_BYTES;

/// What the framer hands out.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// One complete line, without its line terminator; never empty.
    Record {
        /// Absolute offset of the line's first byte.
        offset: u64,
        /// The line's bytes (borrowed from the chunk or the framer's buffer).
        bytes: &'a [u8],
    },
    /// A line longer than the limit, reported once when its end is seen; its bytes
    /// past [`head`](Oversized::head) were skipped, not buffered.
    Oversized(Oversized<'a>),
}

/// A line over the size limit.
#[derive(Debug, PartialEq, Eq)]
pub struct Oversized<'a> {
    /// Absolute offset of the line's first byte.
    pub offset: u64,
    /// The line's first bytes (at most the dead-letter limit, 64 KiB).
    pub head: &'a [u8],
    /// The line's full length in bytes, without its terminator.
    pub len: u64,
    /// The limit it broke.
    pub limit: usize,
}

impl Oversized<'_> {
    /// The dead-letter reason: `record is N bytes, over the M-byte limit`.
    pub fn reason(&self) -> String {
        format!(
            "record is {} bytes, over the {}-byte limit",
            self.len, self.limit
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Skipping the partial first line of a split that starts mid-file.
    SkipFirst,
    /// Collecting a line of acceptable size.
    Line,
    /// Inside an oversized line: counting its bytes until the newline.
    Oversized { len: u64, last_cr: bool },
    /// Past the split's end (or finished): ignoring input.
    Done,
}

/// Cuts byte chunks into lines. See the [module docs](self) for an example.
///
/// Allocation: a line that lies entirely inside one chunk is handed out as a slice of
/// that chunk (no copy); only a line that straddles chunks is copied into an internal
/// buffer, which is reused.
#[derive(Debug)]
pub struct LineFramer {
    max: usize,
    pending: Vec<u8>,
    /// Absolute offset of the first byte of the line being collected.
    line_start: u64,
    /// Absolute offset of the next byte to be fed.
    pos: u64,
    end: u64,
    state: State,
}

impl Default for LineFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl LineFramer {
    /// A framer for a whole stream, starting at offset 0.
    pub fn new() -> Self {
        Self::starting_at(0)
    }

    /// A framer whose first byte is at `offset`, which must be the start of a line
    /// (e.g. a resume offset from [`resume_offset`](Self::resume_offset)).
    pub fn starting_at(offset: u64) -> Self {
        LineFramer {
            max: DEFAULT_MAX_RECORD_BYTES,
            pending: Vec::new(),
            line_start: offset,
            pos: offset,
            end: u64::MAX,
            state: State::Line,
        }
    }

    /// A framer for the byte range split `[start, end)` of one file (`end = None`: to the
    /// end of the file). It owns every line that *starts* in the range, and reads a line
    /// that starts before `end` to its end even past `end`.
    ///
    /// The reader must feed bytes from [`read_from`](Self::read_from) (one byte before
    /// `start` when `start > 0`, to tell whether a line starts exactly at `start`) and
    /// may stop reading once [`is_done`](Self::is_done).
    pub fn for_split(start: u64, end: Option<u64>) -> Self {
        let mut framer = Self::starting_at(start.saturating_sub(1));
        framer.end = end.unwrap_or(u64::MAX);
        if start > 0 {
            framer.state = State::SkipFirst;
        } else if framer.end == 0 {
            framer.state = State::Done;
        }
        framer
    }

    /// A framer that resumes split `[…, end)` at `offset`, a point its
    /// [`resume_point`](Self::resume_point) returned (the start of a line).
    pub fn resuming(offset: u64, end: Option<u64>) -> Self {
        let mut framer = Self::starting_at(offset);
        framer.end = end.unwrap_or(u64::MAX);
        if offset >= framer.end {
            framer.state = State::Done;
        }
        framer
    }

    /// Where a restarted reader resumes this split with [`resuming`](Self::resuming):
    /// the start of the first line not yet handed out; `None` while the partial first
    /// line of the split is still being skipped (the split then restarts from its
    /// start).
    pub fn resume_point(&self) -> Option<u64> {
        match self.state {
            State::SkipFirst => None,
            State::Line | State::Oversized { .. } => Some(self.line_start),
            State::Done => Some(self.end.max(self.pos)),
        }
    }

    /// Sets the largest record accepted, in bytes (default 8 MiB).
    pub fn with_max_record_bytes(mut self, max: usize) -> Self {
        self.max = max.max(1);
        self
    }

    /// The absolute offset the first fed byte must have.
    pub fn read_from(&self) -> u64 {
        self.pos
    }

    /// The offset of the first byte not yet handed out as part of a record: where a
    /// restarted reader resumes with [`starting_at`](Self::starting_at).
    pub fn resume_offset(&self) -> u64 {
        match self.state {
            State::Line | State::Oversized { .. } => self.line_start,
            State::SkipFirst | State::Done => self.pos,
        }
    }

    /// True once every line this framer owns was handed out: the reader can stop.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feeds the next chunk, calling `on_frame` for every line it completes. Stops at
    /// the first error `on_frame` returns (the framer's position is then unspecified).
    pub fn feed<E>(
        &mut self,
        chunk: &[u8],
        mut on_frame: impl FnMut(Frame<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut i = 0;
        while i < chunk.len() {
            let rest = &chunk[i..];
            let newline = memchr::memchr(b'\n', rest);
            match self.state {
                State::Done => break,
                State::SkipFirst => match newline {
                    Some(j) => {
                        i += j + 1;
                        self.start_line(self.pos + i as u64);
                    }
                    None => i = chunk.len(),
                },
                State::Line => match newline {
                    Some(j) => {
                        let offset = self.line_start;
                        let max = self.max;
                        let line: &[u8] = if self.pending.is_empty() {
                            &rest[..j]
                        } else if self.pending.len() + j <= max + 1 {
                            self.pending.extend_from_slice(&rest[..j]);
                            &self.pending
                        } else {
                            let len = (self.pending.len() + j) as u64;
                            let cr = rest[..j]
                                .last()
                                .map_or(self.pending.last() == Some(&b'\r'), |&b| b == b'\r');
                            let keep = MAX_DEAD_LETTER_BYTES.saturating_sub(self.pending.len());
                            self.pending.truncate(MAX_DEAD_LETTER_BYTES);
                            self.pending.extend_from_slice(&rest[..j.min(keep)]);
                            let len = len - u64::from(cr);
                            on_frame(self.oversized(offset, len))?;
                            i += j + 1;
                            self.start_line(self.pos + i as u64);
                            continue;
                        };
                        let line = line.strip_suffix(b"\r").unwrap_or(line);
                        if line.len() > max {
                            let head = &line[..line.len().min(MAX_DEAD_LETTER_BYTES)];
                            on_frame(Frame::Oversized(Oversized {
                                offset,
                                head,
                                len: line.len() as u64,
                                limit: max,
                            }))?;
                        } else if !line.is_empty() {
                            on_frame(Frame::Record {
                                offset,
                                bytes: line,
                            })?;
                        }
                        i += j + 1;
                        self.start_line(self.pos + i as u64);
                    }
                    None => {
                        if self.pending.len() + rest.len() > self.max + 1 {
                            let len = (self.pending.len() + rest.len()) as u64;
                            let keep = MAX_DEAD_LETTER_BYTES.saturating_sub(self.pending.len());
                            self.pending.truncate(MAX_DEAD_LETTER_BYTES);
                            // Give back the memory the line took up to the limit.
                            self.pending.shrink_to(MAX_DEAD_LETTER_BYTES);
                            self.pending
                                .extend_from_slice(&rest[..rest.len().min(keep)]);
                            self.state = State::Oversized {
                                len,
                                last_cr: rest.last() == Some(&b'\r'),
                            };
                        } else {
                            self.pending.extend_from_slice(rest);
                        }
                        i = chunk.len();
                    }
                },
                State::Oversized { len, last_cr } => match newline {
                    Some(j) => {
                        self.keep_head(&rest[..j]);
                        let cr = if j > 0 { rest[j - 1] == b'\r' } else { last_cr };
                        let total = len + j as u64 - u64::from(cr);
                        on_frame(self.oversized(self.line_start, total))?;
                        i += j + 1;
                        self.start_line(self.pos + i as u64);
                    }
                    None => {
                        self.keep_head(rest);
                        self.state = State::Oversized {
                            len: len + rest.len() as u64,
                            last_cr: rest.last() == Some(&b'\r'),
                        };
                        i = chunk.len();
                    }
                },
            }
        }
        self.pos += chunk.len() as u64;
        Ok(())
    }

    /// Ends the input: hands out a last line that had no newline. The framer is done
    /// afterwards.
    pub fn finish<E>(
        &mut self,
        mut on_frame: impl FnMut(Frame<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let state = std::mem::replace(&mut self.state, State::Done);
        match state {
            State::Line if !self.pending.is_empty() => {
                let offset = self.line_start;
                let line = std::mem::take(&mut self.pending);
                let bytes = line.strip_suffix(b"\r").unwrap_or(&line);
                if bytes.len() > self.max {
                    let head = &bytes[..bytes.len().min(MAX_DEAD_LETTER_BYTES)];
                    on_frame(Frame::Oversized(Oversized {
                        offset,
                        head,
                        len: bytes.len() as u64,
                        limit: self.max,
                    }))?;
                } else if !bytes.is_empty() {
                    on_frame(Frame::Record { offset, bytes })?;
                }
                self.pending = line;
                self.pending.clear();
            }
            State::Oversized { len, last_cr } => {
                let len = len - u64::from(last_cr);
                on_frame(self.oversized(self.line_start, len))?;
            }
            _ => {}
        }
        self.line_start = self.pos;
        Ok(())
    }

    /// Keeps the first bytes of an oversized line for its dead letter.
    fn keep_head(&mut self, bytes: &[u8]) {
        let room = MAX_DEAD_LETTER_BYTES.saturating_sub(self.pending.len());
        self.pending
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn oversized(&self, offset: u64, len: u64) -> Frame<'_> {
        let keep = (len as usize).min(MAX_DEAD_LETTER_BYTES);
        let head = &self.pending[..self.pending.len().min(keep)];
        Frame::Oversized(Oversized {
            offset,
            head,
            len,
            limit: self.max,
        })
    }

    /// Begins a new line at absolute offset `at` (or stops: past the split's end).
    fn start_line(&mut self, at: u64) {
        self.pending.clear();
        self.line_start = at;
        self.state = if at >= self.end {
            State::Done
        } else {
            State::Line
        };
    }
}

#[cfg(test)]
mod tests;
