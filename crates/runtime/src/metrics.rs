//! The job's counters: rows in and out per operator, processing time, backpressure,
//! watermarks, dead letters, checkpoints.
//!
//! Plain atomics that the task loops bump once per batch (never per row); the CLI's
//! progress line and exit summary read them, and the server's `/metrics` exports them
//! under `sluice_<thing>_<unit>` names (see `docs/operations.md`).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use datafusion::arrow::record_batch::RecordBatch;

/// Upper bounds (seconds) of the histogram buckets: 50 µs to 60 s.
pub const BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    10.0, 60.0,
];

/// A Prometheus-style histogram of durations: a count per bucket (not cumulative; the
/// exporter adds them up), the sum and the count.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    /// Observations above the last bound.
    over: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A read of a [`Histogram`].
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts, one per bound of [`BUCKETS`].
    pub cumulative: Vec<u64>,
    /// The sum of the observations, in seconds.
    pub sum_seconds: f64,
    /// How many observations.
    pub count: u64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        match BUCKETS.iter().position(|b| secs <= *b) {
            Some(i) => self.buckets[i].fetch_add(1, Ordering::Relaxed),
            None => self.over.fetch_add(1, Ordering::Relaxed),
        };
        self.sum_nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The counts so far.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect();
        // The count from the buckets read, so the +Inf bucket is never below the last
        // bound's (the counters move while they are read).
        HistogramSnapshot {
            cumulative,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count: total + self.over.load(Ordering::Relaxed),
        }
    }

    /// The `q` quantile (0–1) as the upper bound of the bucket that holds it (the
    /// largest bound when it lies beyond them); `None` before any observation.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let s = self.snapshot();
        if s.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * s.count as f64).ceil().max(1.0) as u64;
        Some(
            s.cumulative
                .iter()
                .position(|c| *c >= rank)
                .map_or(BUCKETS[BUCKETS.len() - 1], |i| BUCKETS[i]),
        )
    }
}

/// Batches a slow tail subscriber may fall behind by before it misses some.
const TAP_BUFFER: usize = 16;

/// A live copy of an operator's output for whoever subscribes (the UI's tail); costs
/// nothing while no one does.
#[derive(Debug)]
pub struct Tap {
    tx: tokio::sync::broadcast::Sender<RecordBatch>,
    /// Subscribers now (an atomic: the channel's own count takes a lock).
    listeners: Arc<AtomicU64>,
}

impl Default for Tap {
    fn default() -> Self {
        Tap {
            tx: tokio::sync::broadcast::channel(TAP_BUFFER).0,
            listeners: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// A subscription to a [`Tap`]; dropping it ends the copying when it was the last.
#[derive(Debug)]
pub struct TapReceiver {
    /// The batches.
    pub rx: tokio::sync::broadcast::Receiver<RecordBatch>,
    listeners: Arc<AtomicU64>,
}

impl Drop for TapReceiver {
    fn drop(&mut self) {
        self.listeners.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Tap {
    /// The batches from now on.
    pub fn subscribe(&self) -> TapReceiver {
        self.listeners.fetch_add(1, Ordering::Relaxed);
        TapReceiver {
            rx: self.tx.subscribe(),
            listeners: self.listeners.clone(),
        }
    }

    /// Hands `batch` to the subscribers, if any.
    pub fn send(&self, batch: &RecordBatch) {
        if self.listeners.load(Ordering::Relaxed) > 0 {
            let _ = self.tx.send(batch.clone());
        }
    }
}

/// "No watermark yet" in [`OperatorMetrics::watermark_ms`].
pub const NO_WATERMARK: i64 = i64::MIN;

/// Counters of one operator (summed over its subtasks).
#[derive(Debug)]
pub struct OperatorMetrics {
    /// Display name.
    pub name: String,
    /// `sluice_operator_rows_in_total`.
    pub rows_in: AtomicU64,
    /// `sluice_operator_rows_out_total`.
    pub rows_out: AtomicU64,
    /// `sluice_operator_batches_out_total`.
    pub batches_out: AtomicU64,
    /// Time to process one batch (`sluice_operator_batch_seconds`); for a sink, to
    /// write it.
    pub batch_time: Histogram,
    /// Nanoseconds spent waiting for room downstream: backpressure
    /// (`sluice_operator_blocked_seconds_total`), counted at a chain's last operator.
    pub blocked_nanos: AtomicU64,
    /// The newest event-time watermark the operator saw, in ms since the epoch, or
    /// [`NO_WATERMARK`] (`sluice_operator_watermark_lag_seconds` is the wall clock
    /// minus this).
    pub watermark_ms: AtomicI64,
    /// The operator's output (a sink's input), live.
    pub tap: Tap,
}

impl OperatorMetrics {
    /// Counters for operator `name`.
    pub fn new(name: &str) -> Self {
        OperatorMetrics {
            name: name.to_string(),
            rows_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            batches_out: AtomicU64::new(0),
            batch_time: Histogram::default(),
            blocked_nanos: AtomicU64::new(0),
            watermark_ms: AtomicI64::new(NO_WATERMARK),
            tap: Tap::default(),
        }
    }

    /// The newest watermark seen, if any.
    pub fn watermark(&self) -> Option<i64> {
        let w = self.watermark_ms.load(Ordering::Relaxed);
        (w != NO_WATERMARK).then_some(w)
    }

    /// The wall clock minus the newest watermark, in seconds (0 when it is ahead).
    pub fn watermark_lag_seconds(&self) -> Option<f64> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.watermark()
            .map(|w| now_ms.saturating_sub(w).max(0) as f64 / 1e3)
    }
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
    /// When the newest checkpoint completed, in ms since the epoch
    /// (`sluice_checkpoint_last_completed_timestamp_seconds`).
    pub checkpoint_last_completed_ms: AtomicU64,
    /// The checkpoint (or savepoint) the run resumed from, plus one; 0: none.
    pub restored_from: AtomicU64,
    /// Restarts after a task failure (`sluice_pipeline_restarts_total`).
    pub restarts: AtomicU64,
    /// End-to-end latency: a batch's read at the source to its write at the sink, in
    /// chained pipelines (`sluice_latency_seconds`).
    pub latency: Histogram,
    /// Per-batch latency samples (source emit → sink write done) in microseconds,
    /// for chained pipelines; bounded reservoir.
    latencies_us: Mutex<Vec<u64>>,
}

/// Most latency samples kept (a reservoir: later samples replace random earlier ones).
const MAX_LATENCY_SAMPLES: usize = 100_000;

impl JobMetrics {
    /// The checkpoint the run resumed from, if any.
    pub fn restored_from(&self) -> Option<u64> {
        self.restored_from.load(Ordering::Relaxed).checked_sub(1)
    }

    /// Registers (or finds) the counters of operator `name` (unique per graph node:
    /// `<display name>#<node id>`).
    pub fn operator(&self, name: &str) -> Arc<OperatorMetrics> {
        let mut ops = self.operators.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = ops.iter().find(|m| m.name == name) {
            return m.clone();
        }
        let m = Arc::new(OperatorMetrics::new(name));
        ops.push(m.clone());
        m
    }

    /// Every operator's counters, in the order they were registered.
    pub fn operator_metrics(&self) -> Vec<Arc<OperatorMetrics>> {
        self.operators
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
        self.latency.observe(Duration::from_micros(micros));
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
