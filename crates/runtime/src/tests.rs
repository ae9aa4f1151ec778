//! Runtime tests: every edge kind moves every row to the right subtasks, chains form as
//! documented, a failing task fails the job with its error, and with checkpoints a
//! failing task restarts the job from the last checkpoint without losing or repeating
//! a row.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::{AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use crate::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]))
}

/// Emits `rows` numbers split across its subtasks in batches of 100.
struct Numbers {
    rows: i64,
    pace: std::time::Duration,
}

impl Numbers {
    fn new(rows: i64) -> Self {
        Numbers {
            rows,
            pace: std::time::Duration::ZERO,
        }
    }
}

struct NumbersSource {
    next: i64,
    end: i64,
    /// Sleep per batch (to give checkpoints time to happen).
    pace: std::time::Duration,
}

impl SourceFactory for Numbers {
    fn name(&self) -> String {
        "Source: numbers".into()
    }
    fn schema(&self) -> SchemaRef {
        schema()
    }
    fn bounded(&self) -> bool {
        true
    }
    fn create(&self, task: &TaskInfo, _m: &Arc<JobMetrics>) -> Result<Box<dyn Source>> {
        let share = self.rows / task.parallelism as i64;
        let start = share * task.subtask as i64;
        let end = if task.subtask + 1 == task.parallelism {
            self.rows
        } else {
            start + share
        };
        Ok(Box::new(NumbersSource {
            next: start,
            end,
            pace: self.pace,
        }))
    }
}

#[async_trait]
impl Source for NumbersSource {
    async fn open(&mut self, t: &TaskInfo, r: Option<RestoredOffsets>) -> Result<()> {
        if let Some(next) = r
            .as_ref()
            .and_then(|r| r.same_subtask(t))
            .and_then(|o| o.get("next"))
            .and_then(|v| v.as_i64())
        {
            self.next = next;
        }
        Ok(())
    }
    fn snapshot(&mut self, _c: sluice_types::CheckpointId) -> Result<SourceOffsets> {
        Ok(SourceOffsets::from([(
            "next".to_string(),
            self.next.into(),
        )]))
    }
    async fn next(&mut self, _d: &dyn DeadLetterOutput) -> Result<SourceEvent> {
        if self.next >= self.end {
            return Ok(SourceEvent::End);
        }
        if !self.pace.is_zero() {
            tokio::time::sleep(self.pace).await;
        }
        let to = (self.next + 100).min(self.end);
        let col = Int64Array::from_iter_values(self.next..to);
        self.next = to;
        Ok(SourceEvent::Batch(RecordBatch::try_new(
            schema(),
            vec![Arc::new(col)],
        )?))
    }
}

/// Collects (subtask, value) pairs.
struct Collect {
    out: Arc<Mutex<Vec<(usize, i64)>>>,
    fail: bool,
}

struct CollectSink {
    subtask: usize,
    out: Arc<Mutex<Vec<(usize, i64)>>>,
    fail: bool,
}

impl SinkFactory for Collect {
    fn name(&self) -> String {
        "Sink: collect".into()
    }
    fn schema(&self) -> SchemaRef {
        schema()
    }
    fn create(&self, task: &TaskInfo) -> Result<Box<dyn Sink>> {
        Ok(Box::new(CollectSink {
            subtask: task.subtask,
            out: self.out.clone(),
            fail: self.fail,
        }))
    }
}

#[async_trait]
impl Sink for CollectSink {
    async fn open(&mut self, _t: &TaskInfo) -> Result<()> {
        Ok(())
    }
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if self.fail {
            return Err(Error::Connector {
                kind: sluice_types::ErrorKind::External,
                message: "disk on fire".into(),
            });
        }
        let col = batch.column(0).as_primitive::<Int64Type>();
        let mut out = self.out.lock().unwrap();
        out.extend(col.values().iter().map(|v| (self.subtask, *v)));
        Ok(())
    }
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }
    fn delivery(&self) -> Delivery {
        Delivery::AtLeastOnce
    }
}

async fn run(
    kind: EdgeKind,
    up: usize,
    down: usize,
    fail: bool,
) -> (Result<JobSummary>, Vec<(usize, i64)>) {
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut g = StreamGraph::new();
    let s = g.add_node(NodeKind::Source(Arc::new(Numbers::new(1000))), up);
    let k = g.add_node(
        NodeKind::Sink(Arc::new(Collect {
            out: out.clone(),
            fail,
        })),
        down,
    );
    g.connect(s, k, kind, 0);
    let dir = tempfile::tempdir().unwrap();
    let config = JobConfig {
        dead_letter_path: dir.path().join("dl.jsonl"),
        ..Default::default()
    };
    let res = Job::new(g, config).unwrap().run().await;
    let rows = out.lock().unwrap().clone();
    (res, rows)
}

#[tokio::test]
async fn forward_keeps_subtasks_and_chains() {
    let (res, rows) = run(EdgeKind::Forward, 2, 2, false).await;
    let s = res.unwrap();
    assert_eq!((s.rows_in, s.rows_out), (1000, 1000));
    // Subtask 0 read 0..500 and, chained, wrote them itself.
    assert!(rows.iter().all(|(sub, v)| (*v < 500) == (*sub == 0)));
}

#[tokio::test]
async fn rebalance_spreads_whole_batches() {
    let (res, rows) = run(EdgeKind::Rebalance, 1, 3, false).await;
    assert_eq!(res.unwrap().rows_out, 1000);
    for sub in 0..3 {
        assert!(
            rows.iter().any(|(s, _)| *s == sub),
            "subtask {sub} got nothing"
        );
    }
}

#[tokio::test]
async fn hash_sends_each_key_to_one_subtask() {
    let (res, rows) = run(EdgeKind::Hash(vec![0]), 2, 3, false).await;
    assert_eq!(res.unwrap().rows_out, 1000);
    let mut values: Vec<i64> = rows.iter().map(|(_, v)| *v).collect();
    values.sort();
    assert_eq!(values, (0..1000).collect::<Vec<_>>());
    // The same key always lands on the subtask a second run picks too.
    let (_, again) = run(EdgeKind::Hash(vec![0]), 1, 3, false).await;
    let owner: std::collections::HashMap<i64, usize> = rows.iter().map(|(s, v)| (*v, *s)).collect();
    assert!(again.iter().all(|(s, v)| owner[v] == *s));
}

#[tokio::test]
async fn broadcast_gives_every_subtask_everything() {
    let (res, rows) = run(EdgeKind::Broadcast, 2, 3, false).await;
    assert_eq!(res.unwrap().rows_out, 3000);
    for sub in 0..3 {
        assert_eq!(rows.iter().filter(|(s, _)| *s == sub).count(), 1000);
    }
}

#[tokio::test]
async fn a_failing_sink_fails_the_job_with_its_error() {
    let (res, _) = run(EdgeKind::Rebalance, 2, 2, true).await;
    let err = res.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("disk on fire"), "{err}");
}

#[test]
fn chains_and_explain() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut g = StreamGraph::new();
    let s = g.add_node(NodeKind::Source(Arc::new(Numbers::new(1))), 2);
    let k = g.add_node(NodeKind::Sink(Arc::new(Collect { out, fail: false })), 2);
    g.connect(s, k, EdgeKind::Forward, 0);
    assert_eq!(g.chains(), vec![vec![s, k]]);
    assert!(g.explain().contains("-> (forward, chained) Sink: collect"));
}

/// A sink that makes rows visible only when a checkpoint commits them, failing once
/// (with a retryable error) after `fail_at` rows when asked to.
struct Committing {
    committed: Arc<Mutex<Vec<i64>>>,
    written: Arc<std::sync::atomic::AtomicI64>,
    fail_at: Option<i64>,
}

struct CommittingSink {
    committed: Arc<Mutex<Vec<i64>>>,
    written: Arc<std::sync::atomic::AtomicI64>,
    fail_at: Option<i64>,
    buffer: Vec<i64>,
    pending: Vec<(u64, Vec<i64>)>,
}

impl SinkFactory for Committing {
    fn name(&self) -> String {
        "Sink: committing".into()
    }
    fn schema(&self) -> SchemaRef {
        schema()
    }
    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Sink>> {
        Ok(Box::new(CommittingSink {
            committed: self.committed.clone(),
            written: self.written.clone(),
            fail_at: self.fail_at,
            buffer: Vec::new(),
            pending: Vec::new(),
        }))
    }
}

#[async_trait]
impl Sink for CommittingSink {
    async fn open(&mut self, _t: &TaskInfo) -> Result<()> {
        Ok(())
    }
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let n = self
            .written
            .fetch_add(batch.num_rows() as i64, std::sync::atomic::Ordering::SeqCst);
        if let Some(at) = self.fail_at
            && n < at
            && n + batch.num_rows() as i64 >= at
        {
            return Err(Error::Connector {
                kind: sluice_types::ErrorKind::External,
                message: "connection reset".into(),
            });
        }
        let col = batch.column(0).as_primitive::<Int64Type>();
        self.buffer.extend(col.values().iter().copied());
        Ok(())
    }
    async fn pre_commit(&mut self, c: sluice_types::CheckpointId) -> Result<serde_json::Value> {
        self.pending.push((c.0, std::mem::take(&mut self.buffer)));
        Ok(serde_json::Value::Null)
    }
    async fn commit(&mut self, c: sluice_types::CheckpointId) -> Result<()> {
        let mut out = self.committed.lock().unwrap();
        self.pending.retain(|(id, rows)| {
            if *id <= c.0 {
                out.extend(rows);
                false
            } else {
                true
            }
        });
        Ok(())
    }
    async fn close(&mut self) -> Result<()> {
        assert!(
            self.buffer.is_empty() && self.pending.is_empty(),
            "uncommitted rows at close"
        );
        Ok(())
    }
    fn delivery(&self) -> Delivery {
        Delivery::ExactlyOnce
    }
}

async fn run_checkpointed(
    fail_at: Option<i64>,
    restart: RestartStrategy,
    store: &std::path::Path,
) -> (Result<JobSummary>, Vec<i64>) {
    let committed = Arc::new(Mutex::new(Vec::new()));
    let mut g = StreamGraph::new();
    let source = Numbers {
        rows: 3000,
        pace: std::time::Duration::from_millis(2),
    };
    let s = g.add_node(NodeKind::Source(Arc::new(source)), 2);
    let k = g.add_node(
        NodeKind::Sink(Arc::new(Committing {
            committed: committed.clone(),
            written: Arc::new(std::sync::atomic::AtomicI64::new(0)),
            fail_at,
        })),
        3,
    );
    g.connect(s, k, EdgeKind::Hash(vec![0]), 0);
    let config = JobConfig {
        dead_letter_path: store.join("dl.jsonl"),
        restart,
        ..Default::default()
    };
    let checkpoints = CheckpointConfig {
        store: Arc::new(sluice_state::CheckpointStore::local(&store.join("chk"), 3).unwrap()),
        location: "chk".into(),
        interval: std::time::Duration::from_millis(15),
        timeout: std::time::Duration::from_secs(10),
        fresh: false,
    };
    let res = Job::new(g, config)
        .unwrap()
        .with_checkpoints(checkpoints)
        .run()
        .await;
    let mut rows = committed.lock().unwrap().clone();
    rows.sort();
    (res, rows)
}

#[tokio::test]
async fn a_failing_task_restarts_from_the_last_checkpoint_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let restart = RestartStrategy::FixedDelay {
        attempts: 2,
        delay: std::time::Duration::from_millis(10),
    };
    let (res, rows) = run_checkpointed(Some(1500), restart, dir.path()).await;
    let summary = res.unwrap();
    assert_eq!(summary.restarts, 1);
    assert!(summary.restored_from.is_some(), "restarted from scratch");
    assert!(
        summary.checkpoints >= 2,
        "{} checkpoints",
        summary.checkpoints
    );
    assert_eq!(rows, (0..3000).collect::<Vec<_>>());

    // Running again resumes from the final checkpoint: nothing is left to read.
    let (res, rows) = run_checkpointed(None, RestartStrategy::None, dir.path()).await;
    let summary = res.unwrap();
    assert_eq!((summary.rows_in, rows.len()), (0, 0));
}

#[tokio::test]
async fn restarts_end_with_the_cause_when_the_limit_is_reached() {
    let (res, _) = run(EdgeKind::Rebalance, 2, 2, true).await;
    assert!(res.is_err());
    let dir = tempfile::tempdir().unwrap();
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut g = StreamGraph::new();
    let s = g.add_node(NodeKind::Source(Arc::new(Numbers::new(100))), 1);
    let k = g.add_node(NodeKind::Sink(Arc::new(Collect { out, fail: true })), 1);
    g.connect(s, k, EdgeKind::Forward, 0);
    let config = JobConfig {
        dead_letter_path: dir.path().join("dl.jsonl"),
        restart: RestartStrategy::FixedDelay {
            attempts: 2,
            delay: std::time::Duration::from_millis(1),
        },
        ..Default::default()
    };
    let err = Job::new(g, config)
        .unwrap()
        .run()
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("disk on fire (after 2 restarts)"));
}

#[test]
fn restart_delays_grow_to_their_limit() {
    let s = RestartStrategy::ExponentialDelay {
        attempts: 4,
        initial: std::time::Duration::from_secs(1),
        max: std::time::Duration::from_secs(3),
        multiplier: 2.0,
    };
    let d: Vec<_> = (0..5).map(|a| s.delay(a).map(|d| d.as_secs())).collect();
    assert_eq!(d, vec![Some(1), Some(2), Some(3), Some(3), None]);
    assert_eq!(RestartStrategy::None.delay(0), None);
}
