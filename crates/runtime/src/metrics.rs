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
use sluice_types::Message;
use tokio::sync::mpsc::WeakSender;

/// Upper bounds (seconds) of the histogram buckets: 50 µs to 5 minutes.
pub const BUCKETS: [f64; 20] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
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

/// Asks a source subtask how many records it has yet to read; `None` once it is gone
/// or when it cannot tell. Called from the metrics reader's thread.
pub type LagProbe = Box<dyn Fn() -> Option<u64> + Send + Sync>;

/// A [`LagProbe`] kept in [`JobMetrics`] (which prints itself for debugging).
struct Probe(LagProbe);

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LagProbe")
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
    /// Arrow memory size of the batches taken in (`sluice_operator_bytes_in_total`).
    pub bytes_in: AtomicU64,
    /// Arrow memory size of the batches sent on (`sluice_operator_bytes_out_total`).
    pub bytes_out: AtomicU64,
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
    /// The channels into the operator's subtasks, to see how full they are at any
    /// moment (`sluice_operator_input_queue_fill_ratio`); weak, so a finished run's
    /// channels drop out.
    inputs: Mutex<Vec<WeakSender<Message>>>,
    /// Per subtask, the bytes of its state in the newest checkpoint that wrote it
    /// (`sluice_operator_state_bytes`).
    state_bytes: Mutex<std::collections::BTreeMap<usize, u64>>,
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
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            inputs: Mutex::new(Vec::new()),
            state_bytes: Mutex::default(),
        }
    }

    /// Records that subtask `subtask`'s state takes `bytes` in the checkpoint store
    /// (every file of its state, for incremental checkpoints the whole chain).
    pub fn set_state_bytes(&self, subtask: usize, bytes: u64) {
        let mut s = self.state_bytes.lock().unwrap_or_else(|p| p.into_inner());
        s.insert(subtask, bytes);
    }

    /// The operator's state in the newest checkpoints, summed over its subtasks;
    /// `None` before its first checkpoint (or for an operator without state).
    pub fn state_bytes(&self) -> Option<u64> {
        let s = self.state_bytes.lock().unwrap_or_else(|p| p.into_inner());
        (!s.is_empty()).then(|| s.values().sum())
    }

    /// Counts one batch taken in.
    pub fn count_in(&self, batch: &RecordBatch) {
        JobMetrics::add(&self.rows_in, batch.num_rows() as u64);
        JobMetrics::add(&self.bytes_in, batch.get_array_memory_size() as u64);
    }

    /// Counts batches sent on (and shows them to the tap).
    pub fn count_out<'a>(&self, batches: impl IntoIterator<Item = &'a RecordBatch>) {
        let (mut rows, mut bytes, mut n) = (0, 0, 0);
        for b in batches {
            self.tap.send(b);
            rows += b.num_rows() as u64;
            bytes += b.get_array_memory_size() as u64;
            n += 1;
        }
        JobMetrics::add(&self.rows_out, rows);
        JobMetrics::add(&self.bytes_out, bytes);
        JobMetrics::add(&self.batches_out, n);
    }

    /// Watches `channel`, one of the operator's input channels.
    pub fn watch_input(&self, channel: WeakSender<Message>) {
        let mut inputs = self.inputs.lock().unwrap_or_else(|p| p.into_inner());
        inputs.retain(|c| c.strong_count() > 0);
        inputs.push(channel);
    }

    /// How full the operator's fullest input channel is right now: messages waiting
    /// over room for them, from 0 (empty) to 1 (its sender waits: backpressure);
    /// `None` when it has no input channel (a source, or an operator chained to its
    /// input).
    pub fn input_fill(&self) -> Option<f64> {
        let inputs = self.inputs.lock().unwrap_or_else(|p| p.into_inner());
        inputs
            .iter()
            .filter_map(WeakSender::upgrade)
            .map(|c| (c.max_capacity() - c.capacity()) as f64 / c.max_capacity().max(1) as f64)
            .reduce(f64::max)
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
    /// Ingest → emit: a sink's write of a batch minus the newest source read it
    /// derives from (`sluice_latency_seconds`).
    pub latency: Histogram,
    /// How many records each source subtask has yet to read, asked when the metrics
    /// are read (`sluice_source_lag_records`), by (table, subtask).
    source_lag: Mutex<Vec<(String, usize, Probe)>>,
    /// Event time → emit: when a sink wrote a batch, minus the newest event time in
    /// it, for sinks whose input has an event-time column
    /// (`sluice_event_time_latency_seconds`).
    pub event_time_latency: Histogram,
    /// Ingest → emit samples in microseconds, for exact percentiles at the end of a
    /// run.
    latencies_us: Reservoir,
    /// Event time → emit samples in ms, for exact percentiles at the end of a run.
    event_time_ms: Reservoir,
}

/// Samples of a run, at most [`MAX_LATENCY_SAMPLES`], for exact percentiles: a
/// uniform sample of all the run's values (reservoir sampling, Algorithm R).
#[derive(Debug, Default)]
struct Reservoir(Mutex<ReservoirState>);

#[derive(Debug, Default)]
struct ReservoirState {
    kept: Vec<u64>,
    seen: u64,
    rng: u64,
}

impl Reservoir {
    fn add(&self, v: u64) {
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        r.seen += 1;
        if r.kept.len() < MAX_LATENCY_SAMPLES {
            r.kept.push(v);
            return;
        }
        // The n-th value replaces a random kept one with probability kept/n
        // (xorshift64*: cheap, and uniform enough for percentiles).
        let mut x = r.rng ^ 0x9E37_79B9_7F4A_7C15;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.rng = x;
        let j = x.wrapping_mul(0x2545_F491_4F6C_DD1D) % r.seen;
        if let Some(slot) = r.kept.get_mut(j as usize) {
            *slot = v;
        }
    }

    fn percentiles(&self, quantiles: &[f64]) -> Option<Vec<u64>> {
        let mut l = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .kept
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

    /// Registers how to ask subtask `subtask` of source `table` how many records it
    /// has yet to read (replacing that of an earlier attempt of the run).
    pub fn source_lag_probe(&self, table: &str, subtask: usize, probe: LagProbe) {
        let mut lag = self.source_lag.lock().unwrap_or_else(|p| p.into_inner());
        lag.retain(|(t, s, _)| !(t == table && *s == subtask));
        lag.push((table.to_string(), subtask, Probe(probe)));
    }

    /// Records yet to read per source table (summed over its subtasks), for the
    /// sources that know it and still run.
    pub fn source_lag(&self) -> Vec<(String, u64)> {
        let lag = self.source_lag.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, u64)> = Vec::new();
        for (table, _, probe) in lag.iter() {
            let Some(n) = (probe.0)() else { continue };
            match out.iter_mut().find(|(t, _)| t == table) {
                Some((_, sum)) => *sum += n,
                None => out.push((table.clone(), n)),
            }
        }
        out
    }

    /// Records that a batch whose newest event time is `event_ms` (ms since the epoch)
    /// was written now (0 when the event time is ahead of the clock).
    pub fn record_event_time_latency(&self, event_ms: i64) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let ms = u64::try_from(now_ms.saturating_sub(event_ms)).unwrap_or(0);
        self.event_time_latency.observe(Duration::from_millis(ms));
        self.event_time_ms.add(ms);
    }

    /// Records one batch latency sample.
    pub fn record_latency(&self, micros: u64) {
        self.latency.observe(Duration::from_micros(micros));
        self.latencies_us.add(micros);
    }

    /// Latency percentiles in microseconds for the given quantiles (0.0–1.0), or `None`
    /// when no sample was taken.
    pub fn latency_percentiles(&self, quantiles: &[f64]) -> Option<Vec<u64>> {
        self.latencies_us.percentiles(quantiles)
    }

    /// Event time → emit percentiles in ms for the given quantiles, or `None` when no
    /// sink has an event-time column.
    pub fn event_time_latency_percentiles(&self, quantiles: &[f64]) -> Option<Vec<u64>> {
        self.event_time_ms.percentiles(quantiles)
    }
}
