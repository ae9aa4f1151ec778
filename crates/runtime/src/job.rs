//! A job: a validated [`StreamGraph`] turned into tasks and channels, run to the end.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice_types::{ErrorKind, Message};
use tokio::sync::mpsc::{Receiver, Sender, channel};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::checkpoint::{
    CheckpointConfig, Coordinator, NodeSignature, Outcome, RestartStrategy, Restore,
    TaskCheckpoints, signature,
};
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
    /// What to do when a task fails.
    pub restart: RestartStrategy,
    /// Time every batch at every operator (the batch-time histograms and the
    /// backpressure counters); off only to measure what that costs.
    pub operator_timing: bool,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            name: "job".into(),
            channel_capacity: 4,
            dead_letter_path: PathBuf::from("dead-letters.jsonl"),
            restart: RestartStrategy::None,
            operator_timing: true,
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
    /// Ingest → emit percentiles (p50, p99, p99.9, max) in µs: a sink's write of a
    /// batch minus the newest source read it derives from.
    pub latency_us: Option<Vec<u64>>,
    /// Event time → emit percentiles (p50, p99, p99.9, max) in ms, for sinks whose
    /// input has an event-time column.
    pub event_time_latency_ms: Option<Vec<u64>>,
    /// Checkpoints completed (including the final one and a savepoint).
    pub checkpoints: u64,
    /// The checkpoint the job resumed from (the last one, after restarts).
    pub restored_from: Option<u64>,
    /// The savepoint a stop took.
    pub savepoint: Option<u64>,
    /// Restarts after task failures.
    pub restarts: u64,
    /// Figures of the run's checkpoints (none when none completed).
    pub last_checkpoint: Option<CheckpointStats>,
}

/// What a run's checkpoints took.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckpointStats {
    /// The longest checkpoint's duration (ms).
    pub max_duration_ms: u64,
    /// The largest checkpoint's state size (bytes).
    pub max_size_bytes: u64,
    /// The newest checkpoint's longest barrier alignment (ms).
    pub last_alignment_ms: u64,
    /// Bytes written by all checkpoints (less than their sizes added up when they are
    /// incremental).
    pub written_bytes: u64,
}

/// A job ready to run.
pub struct Job {
    graph: StreamGraph,
    config: JobConfig,
    metrics: Arc<JobMetrics>,
    dead_letters: Arc<DeadLetterFile>,
    shutdown: ShutdownHandle,
    checkpoint: Option<CheckpointConfig>,
}

/// What the tasks of one attempt share with the checkpoint coordinator.
struct Wiring {
    reports: mpsc::UnboundedSender<crate::checkpoint::Report>,
    trigger: watch::Receiver<u64>,
    completed: watch::Receiver<u64>,
    store: Arc<sluice_state::CheckpointStore>,
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
            checkpoint: None,
        })
    }

    /// Takes checkpoints as `config` says, and resumes from the latest one in its store.
    pub fn with_checkpoints(mut self, config: CheckpointConfig) -> Self {
        self.checkpoint = Some(config);
        self
    }

    /// The job's counters (live while it runs).
    pub fn metrics(&self) -> Arc<JobMetrics> {
        self.metrics.clone()
    }

    /// A handle that stops the job cleanly.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Runs every task until all sources are drained and all sinks closed. With
    /// checkpoints, resumes from the latest complete one and takes them as configured;
    /// a failing task restarts the job (from the latest checkpoint) as the restart
    /// strategy allows, and a stop takes a savepoint instead of draining.
    pub async fn run(self) -> Result<JobSummary> {
        let started = Instant::now();
        if let Some(c) = &self.checkpoint
            && c.fresh
        {
            let removed = c.store.clear().await?;
            if removed > 0 {
                tracing::info!(
                    "--fresh: removed {removed} earlier checkpoint(s) from {}.",
                    c.location
                );
            }
        }
        // What a checkpoint records of the plan, to match it on restore.
        let plan = match &self.checkpoint {
            Some(_) => signature(&self.graph)?,
            None => Vec::new(),
        };
        let mut attempt = 0u32;
        let mut restored_from = None;
        let outcome = loop {
            let restore = self.load_restore(&plan).await?;
            if let Some(r) = &restore {
                restored_from = Some(r.id);
                self.metrics
                    .restored_from
                    .store(r.id.saturating_add(1), std::sync::atomic::Ordering::Relaxed);
            }
            match self.attempt(restore, &plan).await {
                Ok(o) => break Ok(o),
                Err(e) => {
                    if self.shutdown.is_stopping() || e.kind() == ErrorKind::User {
                        break Err(e);
                    }
                    let Some(delay) = self.config.restart.delay(attempt) else {
                        break Err(if attempt > 0 {
                            Error::RestartsExhausted {
                                restarts: attempt,
                                source: Box::new(e),
                            }
                        } else {
                            e
                        });
                    };
                    attempt += 1;
                    JobMetrics::add(&self.metrics.restarts, 1);
                    let from = if self.checkpoint.is_some() {
                        "from the latest checkpoint"
                    } else {
                        "from the start (no checkpoints)"
                    };
                    tracing::warn!(
                        "A task failed: {e}. Restarting the job {from} in {} (restart {attempt}).",
                        sluice_types::format_duration(delay)
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        };
        let flushed = self.dead_letters.flush();
        let outcome = outcome?;
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
            event_time_latency_ms: self
                .metrics
                .event_time_latency_percentiles(&[0.5, 0.99, 0.999, 1.0]),
            checkpoints: JobMetrics::get(&self.metrics.checkpoints_completed),
            restored_from,
            savepoint: match outcome {
                Some(Outcome::Savepoint(id)) => Some(id),
                _ => None,
            },
            restarts: JobMetrics::get(&self.metrics.restarts),
            last_checkpoint: (JobMetrics::get(&self.metrics.checkpoints_completed) > 0).then(
                || CheckpointStats {
                    max_duration_ms: JobMetrics::get(&self.metrics.checkpoint_max_duration_ms),
                    max_size_bytes: JobMetrics::get(&self.metrics.checkpoint_max_size_bytes),
                    last_alignment_ms: JobMetrics::get(&self.metrics.checkpoint_last_alignment_ms),
                    written_bytes: JobMetrics::get(&self.metrics.checkpoint_written_bytes),
                },
            ),
        })
    }

    /// The latest intact checkpoint, mapped onto this job's graph (none without
    /// checkpoints or when the store is empty).
    async fn load_restore(&self, plan: &[NodeSignature]) -> Result<Option<Restore>> {
        let Some(c) = &self.checkpoint else {
            return Ok(None);
        };
        let (manifest, warnings) = c.store.latest().await?;
        for w in warnings {
            tracing::warn!("{w}; resuming from an older checkpoint.");
        }
        let Some(m) = manifest else {
            return Ok(None);
        };
        let newer = c.store.skipped_after(m.id).await?;
        let restore = Restore::load(&c.store, &c.location, &m, &newer, plan).await?;
        if restore.finished {
            tracing::info!(
                "Checkpoint {} in {} marks this pipeline finished: there is nothing left to read (run with --fresh to start over).",
                restore.id,
                c.location
            );
        } else {
            tracing::info!(
                "Resuming from {} {} in {}.",
                if restore.savepoint {
                    "savepoint"
                } else {
                    "checkpoint"
                },
                restore.id,
                c.location
            );
        }
        Ok(Some(restore))
    }

    /// One run of every task (and the coordinator), until all finish, one fails, or a
    /// stop's savepoint is complete.
    async fn attempt(
        &self,
        restore: Option<Restore>,
        plan: &[NodeSignature],
    ) -> Result<Option<Outcome>> {
        let mut set = JoinSet::new();
        let mut names = HashMap::new();
        let (wiring, coordinator) = match &self.checkpoint {
            None => (None, None),
            Some(c) => {
                let (reports, reports_rx) = mpsc::unbounded_channel();
                let (trigger_tx, trigger) = watch::channel(0u64);
                let (completed_tx, completed) = watch::channel(0u64);
                let plan =
                    serde_json::to_string(plan).map_err(|e| Error::InvalidGraph(e.to_string()))?;
                let coordinator = Coordinator::new(
                    c.clone(),
                    plan,
                    trigger_tx,
                    completed_tx,
                    reports_rx,
                    self.metrics.clone(),
                    self.shutdown.clone(),
                    c.store.next_id().await?,
                );
                let wiring = Wiring {
                    reports,
                    trigger,
                    completed,
                    store: c.store.clone(),
                };
                (Some(wiring), Some(coordinator))
            }
        };
        let tasks = self.build_tasks(restore.as_ref(), wiring.as_ref())?;
        drop(wiring);
        if let Some(mut c) = coordinator {
            c.tasks = tasks.len();
            c.sink_tasks = tasks
                .iter()
                .enumerate()
                .filter(|(_, t)| matches!(t.tail, Tail::Sink(..)))
                .map(|(i, _)| i)
                .collect();
            let name = "checkpoint coordinator".to_string();
            // The coordinator runs on its own thread and runtime: busy worker threads
            // (sources that never wait) would otherwise delay its timer, and with it
            // every checkpoint.
            let handle = set.spawn_blocking(move || {
                let outcome = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::TaskFailed {
                        task: name.clone(),
                        message: format!("cannot start its runtime: {e}"),
                    })
                    .and_then(|rt| rt.block_on(c.run()));
                (name, outcome.map(Some))
            });
            names.insert(handle.id(), "checkpoint coordinator".to_string());
        }
        for t in tasks {
            let name = t.name.clone();
            let span = tracing::debug_span!("subtask", task = %name);
            let task_name = name.clone();
            let handle = set.spawn(tracing::Instrument::instrument(
                async move { (task_name, t.run().await.map(|()| None)) },
                span,
            ));
            names.insert(handle.id(), name);
        }
        let mut failure: Option<Error> = None;
        let mut outcome = None;
        while let Some(joined) = set.join_next().await {
            let err = match joined {
                Ok((_, Ok(Some(Outcome::Savepoint(id))))) => {
                    // The savepoint is committed: cancel the tasks where they are.
                    outcome = Some(Outcome::Savepoint(id));
                    set.abort_all();
                    continue;
                }
                Ok((_, Ok(o))) => {
                    outcome = outcome.or(o);
                    continue;
                }
                // Cancelled after the savepoint: channels closed under it.
                Ok(_) if matches!(outcome, Some(Outcome::Savepoint(_))) => continue,
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
            if failure.is_none() && !matches!(outcome, Some(Outcome::Savepoint(_))) {
                failure = Some(err);
                set.abort_all();
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(outcome),
        }
    }

    /// The counters of graph node `id` (named `<display name>#<node id>`).
    fn operator_metrics(&self, id: NodeId) -> Arc<crate::metrics::OperatorMetrics> {
        let node = &self.graph.nodes[id.0];
        self.metrics.operator(&format!("{}#{}", node.name(), id.0))
    }

    /// Creates channels for every unchained edge and one task per chain subtask.
    fn build_tasks(&self, restore: Option<&Restore>, wiring: Option<&Wiring>) -> Result<Vec<Task>> {
        let g = &self.graph;
        // (node, subtask) -> input channels; (node, subtask, edge index) -> senders.
        let mut inputs: HashMap<(NodeId, usize), Vec<InputChannel>> = HashMap::new();
        let mut outputs: HashMap<(NodeId, usize), Vec<OutputEdge>> = HashMap::new();
        // Every node's counters, chain by chain (the API, /metrics and the run
        // summary list them in this order), before the channels name their receivers.
        for chain in g.chains() {
            for id in chain {
                self.operator_metrics(id);
            }
        }
        for e in g.edges.iter().filter(|e| !g.is_chained(e)) {
            let up = g.nodes[e.from.0].parallelism;
            let down = g.nodes[e.to.0].parallelism;
            let receiver = self.operator_metrics(e.to);
            for i in 0..up {
                let targets: Vec<usize> = match e.kind {
                    EdgeKind::Forward => vec![i],
                    _ => (0..down).collect(),
                };
                let mut senders: Vec<Sender<Message>> = Vec::with_capacity(targets.len());
                for j in targets {
                    let (tx, rx): (Sender<Message>, Receiver<Message>) =
                        channel(self.config.channel_capacity.max(1));
                    receiver.watch_input(tx.downgrade());
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
                    checkpointing: wiring.is_some(),
                };
                let mut source_metrics = None;
                let head_part = match &head.kind {
                    NodeKind::Source(f) => {
                        source_metrics = Some(self.operator_metrics(head.id));
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
                            node: *id,
                            op: {
                                let mut op = f.create(&info(*id))?;
                                if let Some(r) = restore {
                                    let tables = r.operator(*id, s, head.parallelism)?;
                                    if !tables.is_empty() {
                                        op.restore(tables)?;
                                    }
                                }
                                op
                            },
                            ctx: OperatorContext {
                                task: info(*id),
                                watermark: sluice_types::Watermark::MIN,
                                dead_letters: dead.clone(),
                                metrics: self.metrics.clone(),
                                split: None,
                            },
                            metrics: self.operator_metrics(*id),
                            chain: Default::default(),
                        }),
                        NodeKind::Sink(f) => {
                            tail = Some(Tail::Sink(
                                f.create(&info(*id))?,
                                self.operator_metrics(*id),
                            ))
                        }
                    }
                }
                let last = chain[chain.len() - 1];
                let tail = match tail {
                    Some(t) => t,
                    None => Tail::Edges(outputs.remove(&(last, s)).unwrap_or_default()),
                };
                let sink_event_time = g.event_time.get(&last).copied();
                let names: Vec<String> = chain.iter().map(|id| g.nodes[id.0].name()).collect();
                let index = tasks.len();
                tasks.push(Task {
                    sink_event_time,
                    ingested: None,
                    name: format!("{} ({}/{})", names.join(" -> "), s + 1, head.parallelism),
                    head: head_part,
                    source_metrics,
                    ops,
                    tail,
                    job: self.metrics.clone(),
                    timing: self.config.operator_timing,
                    dead_letters: dead.clone(),
                    shutdown: self.shutdown.clone(),
                    head_info: info(head.id),
                    info: info(last),
                    head_node: head.id,
                    tail_node: last,
                    checkpoints: wiring.map(|w| TaskCheckpoints {
                        index,
                        store: w.store.clone(),
                        reports: w.reports.clone(),
                        trigger: w.trigger.clone(),
                        completed: w.completed.clone(),
                    }),
                    restored: restore.and_then(|r| r.source(head.id)),
                    recover: restore.map(|r| r.sink(last)),
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
