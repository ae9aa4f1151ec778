//! The Nexmark source: one instance per subtask, generating its share of the batches.
//!
//! Owns: the split of the stream (batch k = event numbers `k*B .. (k+1)*B`; subtask i of
//! N makes the batches with `k % N == i`), wall-clock pacing when throttled, the bounded
//! end, and checkpoint offsets (`next_batch`, `next_event` within it, `emitted`,
//! `base_time`). Does not own event values (`generator.rs`) or columns (`columns.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use sluice_runtime::{DeadLetterOutput, Source, SourceEvent, SourceOffsets, TaskInfo};
use sluice_types::CheckpointId;

use super::columns::{BatchBuilder, Layout};
use super::config::NexmarkConfig;
use super::generator::{Event, Generator};
use crate::Error;

/// How long the oldest due event may wait for more to join its batch when throttled.
const LINGER_MS: i64 = 10;
/// The longest `next` sleeps.
const MAX_SLEEP: Duration = Duration::from_millis(100);
/// Unthrottled flat tables scan at most this many event batches per call to fill a batch.
const MAX_SCANS: usize = 64;

/// What every subtask of one table shares.
pub(crate) struct Shared {
    pub(crate) table: String,
    pub(crate) config: NexmarkConfig,
    pub(crate) generator: Generator,
    pub(crate) layout: Layout,
    pub(crate) schema: SchemaRef,
    /// Event time of event 0 (ms since the epoch), resolved when the table was planned.
    pub(crate) base_ms: i64,
}

/// Wall-clock pacing: event-time offset `origin_ms` is due at `start`.
struct Pace {
    start: Instant,
    origin_ms: i64,
}

/// One subtask of a nexmark table.
pub(crate) struct NexmarkSource {
    shared: Arc<Shared>,
    subtask: u64,
    parallelism: u64,
    next_batch: u64,
    /// Events of `next_batch` already emitted.
    cursor: u64,
    /// Events this subtask generated (for `max-events-per-subtask`).
    emitted: u64,
    base_ms: i64,
    builder: BatchBuilder,
    event: Event,
    pace: Option<Pace>,
}

impl NexmarkSource {
    pub(crate) fn new(shared: Arc<Shared>, task: &TaskInfo) -> Self {
        let builder = BatchBuilder::new(&shared.layout, shared.config.batch_size);
        NexmarkSource {
            subtask: task.subtask as u64,
            parallelism: task.parallelism.max(1) as u64,
            next_batch: task.subtask as u64,
            cursor: 0,
            emitted: 0,
            base_ms: shared.base_ms,
            builder,
            event: Event::default(),
            pace: None,
            shared,
        }
    }

    /// The next event numbers to make, `[from, to)`, or `None` at the end.
    fn range(&self) -> Option<(u64, u64)> {
        let size = self.shared.config.batch_size as u64;
        let start = self.next_batch.checked_mul(size)?;
        let mut end = start.checked_add(size)?;
        if let Some(total) = self.shared.config.events {
            if start >= total {
                return None;
            }
            end = end.min(total);
        }
        let from = start + self.cursor;
        if let Some(max) = self.shared.config.max_events_per_subtask {
            let left = max.saturating_sub(self.emitted);
            if left == 0 {
                return None;
            }
            end = end.min(from + left);
        }
        Some((from, end))
    }

    /// Records that events up to `to` were made.
    fn advance(&mut self, from: u64, to: u64) {
        let size = self.shared.config.batch_size as u64;
        let start = self.next_batch * size;
        self.emitted += to - from;
        let batch_end = match self.shared.config.events {
            Some(total) => (start + size).min(total),
            None => start + size,
        };
        if to >= batch_end {
            self.next_batch += self.parallelism;
            self.cursor = 0;
        } else {
            self.cursor = to - start;
        }
    }

    /// Appends events from `from` on (only the table's kind in the flat layout) until
    /// `to` or until the batch holds `batch-size` rows; returns where it stopped.
    fn generate(&mut self, from: u64, to: u64) -> u64 {
        let s = &*self.shared;
        let room = s.config.batch_size;
        let mut pos = from;
        match s.layout.only {
            None => {
                let to = to.min(from + (room.saturating_sub(self.builder.rows())) as u64);
                for p in from..to {
                    s.generator.fill(p, self.base_ms, &mut self.event);
                    self.builder.append(&self.event, &s.generator);
                }
                pos = to;
            }
            Some(kind) => {
                while pos < to && self.builder.rows() < room {
                    if s.generator.kind_at(pos) == kind {
                        s.generator.fill(pos, self.base_ms, &mut self.event);
                        self.builder.append(&self.event, &s.generator);
                    }
                    pos += 1;
                }
            }
        }
        pos
    }

    /// With pacing: how far events are due (`Ok(to)`), or how long to wait.
    fn due(&self, pace: &Pace, from: u64, to: u64) -> Result<u64, Duration> {
        let timeline = self.shared.generator.timeline();
        let elapsed = i64::try_from(pace.start.elapsed().as_millis()).unwrap_or(i64::MAX);
        let now = pace.origin_ms.saturating_add(elapsed);
        let first = timeline.offset_ms(from);
        let last = timeline.offset_ms(to - 1);
        if last <= now {
            return Ok(to);
        }
        if first + LINGER_MS <= now {
            return Ok(timeline.first_after(now, from, to));
        }
        let wait = last.min(first + LINGER_MS) - now;
        Err(Duration::from_millis(wait.clamp(1, 100) as u64))
    }

    fn emit(&mut self) -> sluice_runtime::Result<SourceEvent> {
        let batch = self.builder.finish(&self.shared.schema)?;
        Ok(SourceEvent::Batch(batch))
    }
}

fn corrupt(table: &str, key: &str) -> Error {
    Error::Unsupported {
        table: table.to_string(),
        message: format!(
            "cannot restore the nexmark source: checkpoint offset '{key}' is not a valid number"
        ),
    }
}

#[async_trait]
impl Source for NexmarkSource {
    async fn open(
        &mut self,
        task: &TaskInfo,
        restored: Option<sluice_runtime::RestoredOffsets>,
    ) -> sluice_runtime::Result<()> {
        self.subtask = task.subtask as u64;
        self.parallelism = task.parallelism.max(1) as u64;
        self.next_batch = self.subtask;
        let restored = crate::own_offsets(&self.shared.table, "nexmark", restored, task)?;
        if let Some(offsets) = restored {
            let table = self.shared.table.as_str();
            let read = |key: &str| match offsets.get(key) {
                None => Ok(None),
                Some(v) => v.as_u64().map(Some).ok_or_else(|| corrupt(table, key)),
            };
            let next_batch = read("next_batch")?;
            let cursor = read("next_event")?;
            let emitted = read("emitted")?;
            let base_ms = match offsets.get("base_time") {
                None => None,
                Some(v) => Some(v.as_i64().ok_or_else(|| corrupt(table, "base_time"))?),
            };
            self.next_batch = next_batch.unwrap_or(self.next_batch);
            self.cursor = cursor.unwrap_or(0);
            self.emitted = emitted.unwrap_or(0);
            self.base_ms = base_ms.unwrap_or(self.base_ms);
        }
        if self.shared.config.throttle {
            let first = self
                .next_batch
                .saturating_mul(self.shared.config.batch_size as u64)
                + self.cursor;
            self.pace = Some(Pace {
                start: Instant::now(),
                origin_ms: self.shared.generator.timeline().offset_ms(first),
            });
        }
        Ok(())
    }

    async fn next(
        &mut self,
        _dead_letters: &dyn DeadLetterOutput,
    ) -> sluice_runtime::Result<SourceEvent> {
        if let Some(pace) = self.pace.take() {
            let result = self.next_paced(&pace).await;
            self.pace = Some(pace);
            return result;
        }
        let target = self.shared.config.batch_size;
        for _ in 0..MAX_SCANS {
            let Some((from, to)) = self.range() else {
                break;
            };
            let stop = self.generate(from, to);
            self.advance(from, stop);
            if self.builder.rows() >= target {
                break;
            }
        }
        if self.builder.rows() > 0 {
            return self.emit();
        }
        Ok(if self.range().is_none() {
            SourceEvent::End
        } else {
            SourceEvent::Idle
        })
    }

    fn snapshot(&mut self, _checkpoint: CheckpointId) -> sluice_runtime::Result<SourceOffsets> {
        let mut offsets = SourceOffsets::new();
        offsets.insert("next_batch".into(), self.next_batch.into());
        offsets.insert("next_event".into(), self.cursor.into());
        offsets.insert("emitted".into(), self.emitted.into());
        offsets.insert("base_time".into(), self.base_ms.into());
        Ok(offsets)
    }
}

impl NexmarkSource {
    /// `next` when throttled: emits what is due, sleeping (≤ 100 ms) for it first.
    async fn next_paced(&mut self, pace: &Pace) -> sluice_runtime::Result<SourceEvent> {
        let Some((from, to)) = self.range() else {
            return Ok(SourceEvent::End);
        };
        let to = match self.due(pace, from, to) {
            Ok(to) => to,
            Err(wait) => {
                tokio::time::sleep(wait.min(MAX_SLEEP)).await;
                match self.due(pace, from, to) {
                    Ok(to) => to,
                    Err(_) => return Ok(SourceEvent::Idle),
                }
            }
        };
        let stop = self.generate(from, to);
        self.advance(from, stop);
        if self.builder.rows() > 0 {
            self.emit()
        } else {
            Ok(SourceEvent::Idle)
        }
    }
}
