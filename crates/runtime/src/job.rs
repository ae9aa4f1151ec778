//! A job: a validated [`StreamGraph`] turned into tasks and channels, run to the end.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice_types::Message;
use tokio::sync::mpsc::{Receiver, Sender, channel};
use tokio::task::JoinSet;

use crate::dead_letters::DeadLetterFile;
use crate::graph::{EdgeKind, NodeId, NodeKind, StreamGraph};
use crate::metrics::JobMetrics;
use crate::partition::OutputEdge;
use crate::task::{ChainOp, Head, InputChannel, InputSet, Tail, Task};
use crate::traits::{DeadLetterOutput, OperatorContext, TaskInfo};
use crate::{Error, Result};

/// Settings of one job run.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// The job's name (usually the SQL file name).
    pub name: String,
    /// Messages buffered per channel between two subtasks; with batches of at most
    /// 8,192 rows this bounds memory however large the input is.
    pub channel_capacity: usize,
    /// Where rejected records are written (JSON lines).
    pub dead_letter_path: PathBuf,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            name: "job".into(),
            channel_capacity: 4,
            dead_letter_path: PathBuf::from("dead-letters.jsonl"),
        }
    }
}

/// Asks a running job to stop: sources stop reading, the rest drains and flushes.
#[derive(Debug, Clone, Default)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
}

impl ShutdownHandle {
    /// Requests a clean stop.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn is_stopping(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

/// What a finished job reports.
#[derive(Debug, Clone)]
pub struct JobSummary {
    /// Wall time from start to the last sink flush.
    pub duration: Duration,
    /// Rows read by all sources.
    pub rows_in: u64,
    /// Rows written by all sinks.
    pub rows_out: u64,
    /// Records sent to the dead letters.
    pub dead_letters: u64,
    /// Late rows dropped (or sent to a side output).
    pub late_rows: u64,
    /// The dead-letter file.
    pub dead_letter_path: PathBuf,
    /// True when the job was stopped (Ctrl-C) rather than drained.
    pub stopped: bool,
    /// Batch latency percentiles (p50, p99, p99.9, max) in µs, for chained pipelines.
    pub latency_us: Option<Vec<u64>>,
}

/// A job ready to run.
pub struct Job {
    graph: StreamGraph,
    config: JobConfig,
    metrics: Arc<JobMetrics>,
    dead_letters: Arc<DeadLetterFile>,
    shutdown: ShutdownHandle,
}

impl Job {
    /// Validates the graph and prepares the job.
    pub fn new(graph: StreamGraph, config: JobConfig) -> Result<Self> {
        graph.validate()?;
        let metrics = Arc::new(JobMetrics::default());
        let dead_letters = Arc::new(DeadLetterFile::new(
            &config.dead_letter_path,
            metrics.clone(),
        ));
        Ok(Job {
            graph,
            config,
            metrics,
            dead_letters,
            shutdown: ShutdownHandle::default(),
        })
    }

    /// The job's counters (live while it runs).
    pub fn metrics(&self) -> Arc<JobMetrics> {
        self.metrics.clone()
    }

    /// A handle that stops the job cleanly.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Runs every task until all sources are drained and all sinks closed (or the first
    /// failure, which stops the others).
    pub async fn run(self) -> Result<JobSummary> {
        let started = Instant::now();
        let tasks = self.build_tasks()?;
        let mut set = JoinSet::new();
        let mut names = HashMap::new();
        for t in tasks {
            let name = t.name.clone();
            let span = tracing::debug_span!("subtask", task = %name);
            let task_name = name.clone();
            let handle = set.spawn(tracing::Instrument::instrument(
                async move { (task_name, t.run().await) },
                span,
            ));
            names.insert(handle.id(), name);
        }
        let mut failure: Option<Error> = None;
        while let Some(joined) = set.join_next().await {
            let err = match joined {
                Ok((_, Ok(()))) => continue,
                Ok((name, Err(e))) => {
                    tracing::error!(task = %name, error = %e, "Task failed.");
                    e
                }
                Err(e) if e.is_cancelled() => continue,
                Err(e) => Error::TaskFailed {
                    task: names
                        .get(&e.id())
                        .cloned()
                        .unwrap_or_else(|| "a task".into()),
                    message: panic_message(e),
                },
            };
            // The first real failure wins; the others are consequences of stopping.
            if failure.is_none() {
                failure = Some(err);
                self.shutdown.stop();
                set.abort_all();
            }
        }
        let flushed = self.dead_letters.flush();
        if let Some(e) = failure {
            return Err(e);
        }
        flushed?;
        Ok(JobSummary {
            duration: started.elapsed(),
            rows_in: JobMetrics::get(&self.metrics.source_rows),
            rows_out: JobMetrics::get(&self.metrics.sink_rows),
            dead_letters: JobMetrics::get(&self.metrics.dead_letters),
            late_rows: JobMetrics::get(&self.metrics.late_rows),
            dead_letter_path: self.config.dead_letter_path.clone(),
            stopped: self.shutdown.is_stopping(),
            latency_us: self.metrics.latency_percentiles(&[0.5, 0.99, 0.999, 1.0]),
        })
    }

    /// Creates channels for every unchained edge and one task per chain subtask.
    fn build_tasks(&self) -> Result<Vec<Task>> {
        let g = &self.graph;
        // (node, subtask) -> input channels; (node, subtask, edge index) -> senders.
        let mut inputs: HashMap<(NodeId, usize), Vec<InputChannel>> = HashMap::new();
        let mut outputs: HashMap<(NodeId, usize), Vec<OutputEdge>> = HashMap::new();
        for e in g.edges.iter().filter(|e| !g.is_chained(e)) {
            let up = g.nodes[e.from.0].parallelism;
            let down = g.nodes[e.to.0].parallelism;
            for i in 0..up {
                let targets: Vec<usize> = match e.kind {
                    EdgeKind::Forward => vec![i],
                    _ => (0..down).collect(),
                };
                let mut senders: Vec<Sender<Message>> = Vec::with_capacity(targets.len());
                for j in targets {
                    let (tx, rx): (Sender<Message>, Receiver<Message>) =
                        channel(self.config.channel_capacity.max(1));
                    senders.push(tx);
                    inputs
                        .entry((e.to, j))
                        .or_default()
                        .push(InputChannel::new(rx, e.input));
                }
                outputs
                    .entry((e.from, i))
                    .or_default()
                    .push(OutputEdge::new(e.kind.clone(), senders, i));
            }
        }
        let dead: Arc<dyn DeadLetterOutput> = self.dead_letters.clone();
        let mut tasks = Vec::new();
        for chain in g.chains() {
            let head = &g.nodes[chain[0].0];
            for s in 0..head.parallelism {
                let info = |id: NodeId| TaskInfo {
                    job: self.config.name.clone(),
                    operator: g.nodes[id.0].name(),
                    subtask: s,
                    parallelism: head.parallelism,
                };
                let mut source_metrics = None;
                let head_part = match &head.kind {
                    NodeKind::Source(f) => {
                        source_metrics = Some(self.metrics.operator(&format!(
                            "{}#{}",
                            head.name(),
                            head.id.0
                        )));
                        Head::Source(f.create(&info(head.id), &self.metrics)?)
                    }
                    _ => Head::Inputs(InputSet::new(
                        inputs.remove(&(head.id, s)).unwrap_or_default(),
                    )),
                };
                let mut ops = Vec::new();
                let mut tail = None;
                for id in &chain {
                    let node = &g.nodes[id.0];
                    match &node.kind {
                        NodeKind::Source(_) => {}
                        NodeKind::Operator(f) => ops.push(ChainOp {
                            op: f.create(&info(*id))?,
                            ctx: OperatorContext {
                                task: info(*id),
                                watermark: sluice_types::Watermark::MIN,
                                dead_letters: dead.clone(),
                                metrics: self.metrics.clone(),
                            },
                            metrics: self.metrics.operator(&format!("{}#{}", node.name(), id.0)),
                        }),
                        NodeKind::Sink(f) => {
                            tail = Some(Tail::Sink(
                                f.create(&info(*id))?,
                                self.metrics.operator(&format!("{}#{}", node.name(), id.0)),
                            ))
                        }
                    }
                }
                let last = chain[chain.len() - 1];
                let tail = match tail {
                    Some(t) => t,
                    None => Tail::Edges(outputs.remove(&(last, s)).unwrap_or_default()),
                };
                let names: Vec<String> = chain.iter().map(|id| g.nodes[id.0].name()).collect();
                tasks.push(Task {
                    name: format!("{} ({}/{})", names.join(" -> "), s + 1, head.parallelism),
                    head: head_part,
                    source_metrics,
                    ops,
                    tail,
                    job: self.metrics.clone(),
                    dead_letters: dead.clone(),
                    shutdown: self.shutdown.clone(),
                    head_info: info(head.id),
                    info: info(last),
                });
            }
        }
        Ok(tasks)
    }
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into()),
        Err(e) => e.to_string(),
    }
}
