//! The datagen source: one instance per subtask, paced to its share of
//! `rows-per-second`, ending when its share of `number-of-rows` or of a sequence is done.
//!
//! Owns: the split among subtasks (row counts and sequence ranges in contiguous shares),
//! pacing, and offsets (`emitted`, plus the seed so a restore regenerates the same
//! rows). Does not own values (`values.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use sluice_runtime::{DeadLetterOutput, Source, SourceEvent, SourceOffsets, TaskInfo};
use sluice_types::CheckpointId;

use super::fields::{FieldGen, Kind};
use super::values::{Ctx, row_seeds, share};
use crate::Error;

/// Most rows per batch.
pub(crate) const MAX_BATCH: u64 = 8192;
/// How long the oldest due row may wait for more to join its batch.
const LINGER: Duration = Duration::from_millis(10);
/// The longest `next` sleeps.
const MAX_SLEEP: Duration = Duration::from_millis(100);

/// What every subtask of one table shares.
pub(crate) struct Shared {
    pub(crate) table: String,
    pub(crate) schema: SchemaRef,
    pub(crate) fields: Vec<FieldGen>,
    pub(crate) rows_per_second: u64,
    pub(crate) number_of_rows: Option<u64>,
    pub(crate) seed: u64,
}

impl Shared {
    /// Rows subtask `i` of `n` makes, `None` when unbounded.
    pub(crate) fn limit(&self, i: u64, n: u64) -> Option<u64> {
        let rows = self.number_of_rows.map(|r| {
            let at = |k: u64| (u128::from(r) * u128::from(k) / u128::from(n)) as u64;
            at(i + 1) - at(i)
        });
        let seqs = self.fields.iter().filter_map(|f| match f.kind {
            Kind::Seq { start, end, .. } => {
                let (lo, hi) = share(start, end, i, n);
                Some(u64::try_from(hi - lo).unwrap_or(u64::MAX))
            }
            _ => None,
        });
        rows.into_iter().chain(seqs).min()
    }
}

/// One subtask of a datagen table.
pub(crate) struct DatagenSource {
    shared: Arc<Shared>,
    subtask: u64,
    parallelism: u64,
    limit: Option<u64>,
    /// Rows made by this subtask so far (restored from checkpoints).
    emitted: u64,
    seed: u64,
    /// Rows per second for this subtask.
    rate: f64,
    start: Instant,
    emitted_at_start: u64,
}

impl DatagenSource {
    pub(crate) fn new(shared: Arc<Shared>, task: &TaskInfo) -> Self {
        DatagenSource {
            seed: shared.seed,
            subtask: task.subtask as u64,
            parallelism: task.parallelism.max(1) as u64,
            limit: None,
            emitted: 0,
            rate: 1.0,
            start: Instant::now(),
            emitted_at_start: 0,
            shared,
        }
    }

    /// When (since `start`) the next batch should go, and how many rows it may hold.
    fn schedule(&self) -> (Duration, u64) {
        let left = self
            .limit
            .map_or(u64::MAX, |l| l.saturating_sub(self.emitted));
        let want = left.min(MAX_BATCH);
        let done = self.emitted - self.emitted_at_start;
        let secs = |rows: u64| {
            Duration::try_from_secs_f64(rows as f64 / self.rate).unwrap_or(Duration::MAX)
        };
        let first_due = secs(done + 1);
        let full_due = secs(done.saturating_add(want));
        (full_due.min(first_due.saturating_add(LINGER)), want)
    }

    fn make(&mut self, rows: u64) -> sluice_runtime::Result<RecordBatch> {
        let ctx = Ctx {
            row0: self.emitted,
            subtask: self.subtask,
            parallelism: self.parallelism,
            now_ms: chrono::Utc::now().timestamp_millis(),
        };
        let seeds = row_seeds(self.seed, &ctx, rows as usize);
        let columns = self
            .shared
            .fields
            .iter()
            .map(|f| f.column(&seeds, &ctx))
            .collect::<crate::Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows as usize));
        let batch =
            RecordBatch::try_new_with_options(self.shared.schema.clone(), columns, &options)
                .map_err(Error::from)?;
        self.emitted += rows;
        Ok(batch)
    }
}

#[async_trait]
impl Source for DatagenSource {
    async fn open(
        &mut self,
        task: &TaskInfo,
        restored: Option<sluice_runtime::RestoredOffsets>,
    ) -> sluice_runtime::Result<()> {
        self.subtask = task.subtask as u64;
        self.parallelism = task.parallelism.max(1) as u64;
        self.limit = self.shared.limit(self.subtask, self.parallelism);
        let rps = self.shared.rows_per_second as f64;
        self.rate = (rps / self.parallelism as f64).max(f64::MIN_POSITIVE);
        let restored = crate::own_offsets(&self.shared.table, "datagen", restored, task)?;
        if let Some(offsets) = restored {
            let read = |key: &str| {
                match offsets.get(key) {
                None => Ok(None),
                Some(v) => v.as_u64().map(Some).ok_or_else(|| Error::Unsupported {
                    table: self.shared.table.clone(),
                    message: format!("cannot restore the datagen source: checkpoint offset '{key}' is not a number"),
                }),
            }
            };
            self.emitted = read("emitted")?.unwrap_or(0);
            self.seed = read("seed")?.unwrap_or(self.seed);
        }
        self.emitted_at_start = self.emitted;
        self.start = Instant::now();
        Ok(())
    }

    async fn next(
        &mut self,
        _dead_letters: &dyn DeadLetterOutput,
    ) -> sluice_runtime::Result<SourceEvent> {
        let (due, want) = self.schedule();
        if want == 0 {
            return Ok(SourceEvent::End);
        }
        let elapsed = self.start.elapsed();
        if elapsed < due {
            let wait = due - elapsed;
            tokio::time::sleep(wait.min(MAX_SLEEP)).await;
            if wait > MAX_SLEEP {
                return Ok(SourceEvent::Idle);
            }
        }
        let allowed = (self.start.elapsed().as_secs_f64() * self.rate) as u64;
        let rows = allowed
            .saturating_sub(self.emitted - self.emitted_at_start)
            .clamp(1, want);
        Ok(SourceEvent::Batch(self.make(rows)?))
    }

    fn snapshot(&mut self, _checkpoint: CheckpointId) -> sluice_runtime::Result<SourceOffsets> {
        let mut offsets = SourceOffsets::new();
        offsets.insert("emitted".into(), self.emitted.into());
        offsets.insert("seed".into(), self.seed.into());
        Ok(offsets)
    }
}
