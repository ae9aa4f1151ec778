//! The job's counters: rows in and out per operator, dead letters, bytes read.
//!
//! Plain atomics that the task loops bump once per batch (never per row); the CLI's
//! progress line and exit summary read them, and the Prometheus endpoint will export
//! them under `sluice_<thing>_<unit>` names.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one operator (summed over its subtasks).
#[derive(Debug, Default)]
pub struct OperatorMetrics {
    /// Display name.
    pub name: String,
    /// `sluice_operator_rows_in_total`.
    pub rows_in: AtomicU64,
    /// `sluice_operator_rows_out_total`.
    pub rows_out: AtomicU64,
    /// `sluice_operator_batches_out_total`.
    pub batches_out: AtomicU64,
}

/// Every counter of one job.
#[derive(Debug, Default)]
pub struct JobMetrics {
    operators: Mutex<Vec<Arc<OperatorMetrics>>>,
    /// Rows read by all sources (`sluice_source_rows_total`).
    pub source_rows: AtomicU64,
    /// Bytes read by all sources (`sluice_source_bytes_total`).
    pub source_bytes: AtomicU64,
    /// Rows written by all sinks (`sluice_sink_rows_total`).
    pub sink_rows: AtomicU64,
    /// Records sent to the dead-letter output (`sluice_dead_letters_total`).
    pub dead_letters: AtomicU64,
    /// Rows that arrived after the watermark had passed their window and were
    /// dropped or sent to a side output (`sluice_late_rows_total`).
    pub late_rows: AtomicU64,
    /// Checkpoints completed (`sluice_checkpoints_completed_total`).
    pub checkpoints_completed: AtomicU64,
    /// Checkpoints abandoned: a write failed or they timed out
    /// (`sluice_checkpoints_failed_total`).
    pub checkpoints_failed: AtomicU64,
    /// The id of the newest complete checkpoint (`sluice_checkpoint_last_id`).
    pub checkpoint_last_id: AtomicU64,
    /// How long the newest checkpoint took, trigger to manifest
    /// (`sluice_checkpoint_last_duration_ms`).
    pub checkpoint_last_duration_ms: AtomicU64,
    /// The state size of the newest checkpoint (`sluice_checkpoint_last_size_bytes`).
    pub checkpoint_last_size_bytes: AtomicU64,
    /// The longest barrier alignment of the newest checkpoint
    /// (`sluice_checkpoint_last_alignment_ms`).
    pub checkpoint_last_alignment_ms: AtomicU64,
    /// The longest checkpoint of the run (`sluice_checkpoint_max_duration_ms`).
    pub checkpoint_max_duration_ms: AtomicU64,
    /// The largest checkpoint of the run (`sluice_checkpoint_max_size_bytes`).
    pub checkpoint_max_size_bytes: AtomicU64,
    /// Bytes of state written by the run's checkpoints; with incremental checkpoints
    /// far less than their sizes added up (`sluice_checkpoint_written_bytes_total`).
    pub checkpoint_written_bytes: AtomicU64,
    /// Restarts after a task failure (`sluice_job_restarts_total`).
    pub restarts: AtomicU64,
    /// Per-batch latency samples (source emit → sink write done) in microseconds,
    /// for chained pipelines; bounded reservoir.
    latencies_us: Mutex<Vec<u64>>,
}

/// Most latency samples kept (a reservoir: later samples replace random earlier ones).
const MAX_LATENCY_SAMPLES: usize = 100_000;

impl JobMetrics {
    /// Registers (or finds) the counters of operator `name` (unique per graph node:
    /// `<display name>#<node id>`).
    pub fn operator(&self, name: &str) -> Arc<OperatorMetrics> {
        let mut ops = self.operators.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = ops.iter().find(|m| m.name == name) {
            return m.clone();
        }
        let m = Arc::new(OperatorMetrics {
            name: name.to_string(),
            ..Default::default()
        });
        ops.push(m.clone());
        m
    }

    /// A snapshot of every operator's counters: (name, rows in, rows out).
    pub fn operators(&self) -> Vec<(String, u64, u64)> {
        let ops = self.operators.lock().unwrap_or_else(|p| p.into_inner());
        ops.iter()
            .map(|m| {
                (
                    m.name.clone(),
                    m.rows_in.load(Ordering::Relaxed),
                    m.rows_out.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Records one batch latency sample.
    pub fn record_latency(&self, micros: u64) {
        let mut l = self.latencies_us.lock().unwrap_or_else(|p| p.into_inner());
        if l.len() < MAX_LATENCY_SAMPLES {
            l.push(micros);
        } else {
            // Cheap deterministic replacement keeps the reservoir spread over the run.
            let i = (micros as usize ^ l.len().wrapping_mul(2654435761)) % MAX_LATENCY_SAMPLES;
            l[i] = micros;
        }
    }

    /// Latency percentiles in microseconds for the given quantiles (0.0–1.0), or `None`
    /// when no sample was taken.
    pub fn latency_percentiles(&self, quantiles: &[f64]) -> Option<Vec<u64>> {
        let mut l = self
            .latencies_us
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if l.is_empty() {
            return None;
        }
        l.sort_unstable();
        Some(
            quantiles
                .iter()
                .map(|q| {
                    let idx = ((l.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
                    l[idx]
                })
                .collect(),
        )
    }
}
