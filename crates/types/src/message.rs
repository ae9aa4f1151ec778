//! The in-band messages that flow along every edge of a dataflow.

use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

/// Identifies one checkpoint of a job; strictly increasing within a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CheckpointId(pub u64);

/// Event-time progress: no row with an event time at or below this instant
/// (milliseconds since the Unix epoch) is expected any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Watermark(pub i64);

impl Watermark {
    /// The watermark a bounded input sends when it is drained: every window may fire.
    pub const MAX: Watermark = Watermark(i64::MAX);
    /// The watermark before any input was seen.
    pub const MIN: Watermark = Watermark(i64::MIN);
}

/// A checkpoint barrier: everything before it belongs to checkpoint `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Barrier {
    /// The checkpoint this barrier delimits.
    pub id: CheckpointId,
}

/// What travels along an edge of the dataflow, in order.
///
/// Data and control share one channel so that control messages keep their position
/// relative to data (watermarks and barriers are in-band, as in Flink).
#[derive(Debug, Clone)]
pub enum Message {
    /// A batch of rows (never empty when sent by the runtime), with when the newest
    /// source read it derives from happened (for the ingest → emit latency).
    Batch(RecordBatch, Option<std::time::Instant>),
    /// Event time has advanced to this watermark on the sending subtask.
    Watermark(Watermark),
    /// A checkpoint barrier.
    Barrier(Barrier),
    /// The sender has had no data for its idle timeout: until its next batch or
    /// watermark, it must not hold back the receiver's watermark.
    Idle,
    /// The sending subtask has no more data and will send nothing else.
    End,
}

impl Message {
    /// Rows carried by this message (0 for control messages).
    pub fn num_rows(&self) -> usize {
        match self {
            Message::Batch(b, _) => b.num_rows(),
            _ => 0,
        }
    }
}
