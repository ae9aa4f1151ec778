//! Runtime tests: every edge kind moves every row to the right subtasks, chains form as
//! documented, and a failing task fails the job with its error.

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
}

struct NumbersSource {
    next: i64,
    end: i64,
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
        Ok(Box::new(NumbersSource { next: start, end }))
    }
}

#[async_trait]
impl Source for NumbersSource {
    async fn open(&mut self, _t: &TaskInfo, _r: Option<SourceOffsets>) -> Result<()> {
        Ok(())
    }
    async fn next(&mut self, _d: &dyn DeadLetterOutput) -> Result<SourceEvent> {
        if self.next >= self.end {
            return Ok(SourceEvent::End);
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
    let s = g.add_node(NodeKind::Source(Arc::new(Numbers { rows: 1000 })), up);
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
    let s = g.add_node(NodeKind::Source(Arc::new(Numbers { rows: 1 })), 2);
    let k = g.add_node(NodeKind::Sink(Arc::new(Collect { out, fail: false })), 2);
    g.connect(s, k, EdgeKind::Forward, 0);
    assert_eq!(g.chains(), vec![vec![s, k]]);
    assert!(g.explain().contains("-> (forward, chained) Sink: collect"));
}
