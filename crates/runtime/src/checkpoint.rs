//! Checkpoints (Flink's asynchronous barrier snapshots): the coordinator that injects
//! barriers and completes checkpoints, what each task reports to it, the restart
//! strategy, and restoring a job from a checkpoint.
//!
//! A checkpoint `n` is complete when every task has either acknowledged it (its state
//! files are written and its source offsets and sink pre-commits recorded) or has
//! finished (its last report stands for every later checkpoint). The coordinator then
//! writes the manifest, the store's commit point, and tells the sinks to commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sluice_state::{
    CheckpointStore, DEFAULT_KEY_GROUPS, FileEntry, KeyGroupRange, Manifest, TableSnapshot,
};
use sluice_types::CheckpointId;
use tokio::sync::{mpsc, oneshot, watch};

use crate::graph::{NodeId, NodeKind, StreamGraph};
use crate::job::ShutdownHandle;
use crate::metrics::JobMetrics;
use crate::traits::{SourceOffsets, TaskInfo};
use crate::{Error, Result};

/// How a job takes checkpoints.
#[derive(Clone)]
pub struct CheckpointConfig {
    /// Where checkpoints go.
    pub store: Arc<CheckpointStore>,
    /// The store's location as the user gave it (for messages).
    pub location: String,
    /// Time between the starts of two checkpoints.
    pub interval: Duration,
    /// A checkpoint not complete after this long is abandoned.
    pub timeout: Duration,
    /// Ignore (and delete) the checkpoints already in the store.
    pub fresh: bool,
}

/// What to do when a task fails (Flink's `restart-strategy.*`).
#[derive(Debug, Clone, PartialEq)]
pub enum RestartStrategy {
    /// Fail the job at once.
    None,
    /// Restart up to `attempts` times, waiting `delay` before each.
    FixedDelay {
        /// Restarts allowed.
        attempts: u32,
        /// Wait before each restart.
        delay: Duration,
    },
    /// Restart up to `attempts` times, waiting `initial`, then `multiplier` times
    /// longer each time, at most `max`.
    ExponentialDelay {
        /// Restarts allowed.
        attempts: u32,
        /// The first wait.
        initial: Duration,
        /// The longest wait.
        max: Duration,
        /// Growth of the wait per restart.
        multiplier: f64,
    },
}

impl RestartStrategy {
    /// The wait before restart number `attempt` (0-based), or `None` when the job must
    /// fail instead.
    pub fn delay(&self, attempt: u32) -> Option<Duration> {
        match self {
            RestartStrategy::None => None,
            RestartStrategy::FixedDelay { attempts, delay } => {
                (attempt < *attempts).then_some(*delay)
            }
            RestartStrategy::ExponentialDelay {
                attempts,
                initial,
                max,
                multiplier,
            } => (attempt < *attempts).then(|| {
                let secs = initial.as_secs_f64() * multiplier.max(1.0).powi(attempt as i32);
                Duration::from_secs_f64(secs.min(max.as_secs_f64()))
            }),
        }
    }
}

/// One task's part of a checkpoint.
#[derive(Debug, Default)]
pub(crate) struct TaskPart {
    /// State files written (name in the checkpoint folder, size and checksum).
    pub(crate) files: Vec<(String, FileEntry)>,
    /// The offsets of the source at the head of the task.
    pub(crate) source: Option<SourcePart>,
    /// What the sink at the tail pre-committed (replayed by `Sink::recover`).
    pub(crate) sink: Option<(NodeId, usize, serde_json::Value)>,
    /// Time from the first barrier to the last one on the task's inputs.
    pub(crate) alignment: Duration,
    /// Bytes written for this checkpoint (the other files are earlier links of
    /// incremental chains).
    pub(crate) written: u64,
}

/// The offsets of one source subtask.
#[derive(Debug)]
pub(crate) struct SourcePart {
    pub(crate) node: NodeId,
    pub(crate) subtask: usize,
    pub(crate) parallelism: usize,
    pub(crate) offsets: SourceOffsets,
}

/// What a task tells the coordinator.
pub(crate) enum Report {
    /// The task's part of checkpoint `id` is durable.
    Acked {
        task: usize,
        id: CheckpointId,
        part: TaskPart,
    },
    /// The task could not write its part of checkpoint `id`.
    Failed { id: CheckpointId, error: String },
    /// The task finished; `part` stands for it in every later checkpoint. A sink task
    /// waits on `release` for the checkpoint that made its last data durable.
    Finished {
        task: usize,
        part: TaskPart,
        release: Option<oneshot::Sender<CheckpointId>>,
    },
    /// A sink task committed checkpoint `id`.
    Committed { task: usize, id: CheckpointId },
}

/// A task's connection to the coordinator.
pub(crate) struct TaskCheckpoints {
    pub(crate) index: usize,
    pub(crate) store: Arc<CheckpointStore>,
    pub(crate) reports: mpsc::UnboundedSender<Report>,
    /// The newest checkpoint to inject (sources watch it).
    pub(crate) trigger: watch::Receiver<u64>,
    /// The newest complete checkpoint (sinks and sources commit on it).
    pub(crate) completed: watch::Receiver<u64>,
}

impl TaskCheckpoints {
    /// Reports to the coordinator; a gone coordinator means the job is stopping.
    pub(crate) fn report(&self, r: Report) {
        let _ = self.reports.send(r);
    }
}

/// The file of one operator subtask's state in a checkpoint.
pub(crate) fn state_file(node: NodeId, subtask: usize) -> String {
    format!("{}.arrow", state_stem(node, subtask))
}

/// What names the state files of one operator's subtask: `n<node>-s<subtask>`.
pub(crate) fn state_stem(node: NodeId, subtask: usize) -> String {
    format!("n{}-s{subtask}", node.0)
}

/// One file of an earlier subtask's state: which checkpoint wrote it, its name and
/// manifest entry.
type ChainLink<'a> = (u64, &'a String, &'a FileEntry);

/// The operator and subtask a state file holds, and which checkpoint wrote it (0 for a
/// whole snapshot in the checkpoint's folder): `n3-s1.arrow` or
/// `shared/n3-s1-c<id>.arrow`.
fn parse_state_file(name: &str) -> Option<(usize, usize, u64)> {
    let (rest, written) = match name.strip_prefix("shared/") {
        Some(shared) => {
            let (stem, id) = shared.strip_suffix(".arrow")?.rsplit_once("-c")?;
            (stem, id.parse().ok()?)
        }
        None => (name.strip_suffix(".arrow")?, 0),
    };
    let (node, subtask) = rest.strip_prefix('n')?.split_once("-s")?;
    Some((node.parse().ok()?, subtask.parse().ok()?, written))
}

/// A node as the checkpoint knows it: what must match for its state to be restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeSignature {
    node: usize,
    name: String,
    /// State tables with their columns (operators), empty for sources and sinks.
    tables: Vec<String>,
}

/// The nodes of `graph` that own checkpointed things: stateful operators, sources, sinks.
pub(crate) fn signature(graph: &StreamGraph) -> Result<Vec<NodeSignature>> {
    let mut out = Vec::new();
    for n in &graph.nodes {
        let tables = match &n.kind {
            NodeKind::Operator(f) => {
                let op = f.create(&TaskInfo {
                    job: String::new(),
                    operator: f.name(),
                    subtask: 0,
                    parallelism: n.parallelism,
                    checkpointing: true,
                })?;
                let specs = op.state_tables();
                if specs.is_empty() {
                    continue;
                }
                specs
                    .iter()
                    .map(|s| {
                        let cols: Vec<String> = s
                            .schema
                            .fields()
                            .iter()
                            .map(|f| format!("{} {}", f.name(), f.data_type()))
                            .collect();
                        format!("{}({})", s.name, cols.join(", "))
                    })
                    .collect()
            }
            NodeKind::Source(_) | NodeKind::Sink(_) => Vec::new(),
        };
        out.push(NodeSignature {
            node: n.id.0,
            name: n.name(),
            tables,
        });
    }
    Ok(out)
}

const META_PLAN: &str = "plan";
const META_SOURCES: &str = "sources";
const META_SINKS: &str = "sinks";
const META_FINISHED: &str = "finished";
const META_SAVEPOINT: &str = "savepoint";

#[derive(Debug, Default, Serialize, Deserialize)]
struct SourceMeta {
    parallelism: usize,
    subtasks: BTreeMap<usize, SourceOffsets>,
}

/// A source's offsets as a checkpoint recorded them: one map per subtask of the run
/// that took it (a subtask that recorded nothing has an empty map).
#[derive(Debug, Clone, Default)]
pub struct RestoredOffsets {
    /// The source's parallelism when the checkpoint was taken.
    pub parallelism: usize,
    /// Offsets by subtask index.
    pub subtasks: Vec<SourceOffsets>,
}

impl RestoredOffsets {
    /// The offsets of subtask `task.subtask` when the parallelism is unchanged.
    pub fn same_subtask(&self, task: &TaskInfo) -> Option<&SourceOffsets> {
        (self.parallelism == task.parallelism)
            .then(|| self.subtasks.get(task.subtask))
            .flatten()
    }

    /// Every recorded entry of every subtask.
    pub fn all(&self) -> impl Iterator<Item = (&String, &serde_json::Value)> {
        self.subtasks.iter().flat_map(|m| m.iter())
    }
}

/// The state a job restarts from.
pub(crate) struct Restore {
    pub(crate) id: u64,
    pub(crate) finished: bool,
    pub(crate) savepoint: bool,
    ops: HashMap<NodeId, Vec<TableSnapshot>>,
    sources: HashMap<NodeId, RestoredOffsets>,
    sinks: HashMap<NodeId, Vec<serde_json::Value>>,
    /// Pre-commits of newer, skipped (damaged) checkpoints, whose commits are undone.
    undone: HashMap<NodeId, Vec<serde_json::Value>>,
}

fn mismatch(id: u64, location: &str, detail: String) -> Error {
    Error::State(sluice_state::Error::Mismatch(format!(
        "checkpoint {id} in '{location}' does not fit this pipeline: {detail}. Run with --fresh \
         to discard the old state, or run the SQL that wrote the checkpoint"
    )))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::State(sluice_state::Error::Corrupt(format!(
        "the checkpoint's {what} do not parse: {e}"
    )))
}

impl Restore {
    /// Reads checkpoint `manifest` and maps its nodes onto `graph`'s; refuses state
    /// that does not fit (another pipeline, changed operators).
    pub(crate) async fn load(
        store: &CheckpointStore,
        location: &str,
        manifest: &Manifest,
        newer: &[Manifest],
        now: &[NodeSignature],
    ) -> Result<Restore> {
        let id = manifest.id;
        let then: Vec<NodeSignature> = match manifest.meta.get(META_PLAN) {
            Some(p) => serde_json::from_str(p).map_err(|e| corrupt("plan", e))?,
            None => return Err(mismatch(id, location, "it records no plan".into())),
        };
        for (i, (a, b)) in then.iter().zip(now).enumerate() {
            if a.name != b.name || a.tables != b.tables {
                return Err(mismatch(
                    id,
                    location,
                    format!(
                        "its stateful step {} is '{}' [{}], the pipeline's is '{}' [{}]",
                        i + 1,
                        a.name,
                        a.tables.join("; "),
                        b.name,
                        b.tables.join("; ")
                    ),
                ));
            }
        }
        if then.len() != now.len() {
            return Err(mismatch(
                id,
                location,
                format!(
                    "it has {} stateful steps (sources, stateful operators, sinks), the pipeline {}",
                    then.len(),
                    now.len()
                ),
            ));
        }
        let map: HashMap<usize, NodeId> = then
            .iter()
            .zip(now)
            .map(|(a, b)| (a.node, NodeId(b.node)))
            .collect();
        let node_of = |old: usize| {
            map.get(&old).copied().ok_or_else(|| {
                mismatch(id, location, format!("it has state of unknown step {old}"))
            })
        };

        // Each earlier subtask's files of one operator: a whole snapshot, or an
        // incremental chain (its files in the order they were written).
        let mut chains: BTreeMap<(usize, usize), Vec<ChainLink>> = BTreeMap::new();
        for (name, entry) in &manifest.files {
            let Some((old, subtask, written)) = parse_state_file(name) else {
                continue;
            };
            chains
                .entry((old, subtask))
                .or_default()
                .push((written, name, entry));
        }
        let mut ops: HashMap<NodeId, Vec<TableSnapshot>> = HashMap::new();
        for ((old, _), mut files) in chains {
            files.sort_by_key(|f| f.0);
            let mut decoded = Vec::new();
            for (_, name, entry) in files {
                let bytes = store.read_checked(id, name, entry).await?;
                decoded.push(
                    tokio::task::spawn_blocking(move || sluice_state::decode(&bytes))
                        .await
                        .map_err(|e| Error::TaskFailed {
                            task: "restore".into(),
                            message: e.to_string(),
                        })??,
                );
            }
            // A newer link's watermarks supersede an older one's.
            ops.entry(node_of(old)?)
                .or_default()
                .extend(sluice_state::chain_tables(decoded));
        }

        let mut sources = HashMap::new();
        if let Some(s) = manifest.meta.get(META_SOURCES) {
            let s: BTreeMap<usize, SourceMeta> =
                serde_json::from_str(s).map_err(|e| corrupt("source offsets", e))?;
            for (old, meta) in s {
                let mut subtasks = vec![SourceOffsets::new(); meta.parallelism];
                for (i, o) in meta.subtasks {
                    if let Some(slot) = subtasks.get_mut(i) {
                        *slot = o;
                    }
                }
                sources.insert(
                    node_of(old)?,
                    RestoredOffsets {
                        parallelism: meta.parallelism,
                        subtasks,
                    },
                );
            }
        }
        let sinks_of = |m: &Manifest| -> Result<HashMap<NodeId, Vec<serde_json::Value>>> {
            let mut sinks: HashMap<NodeId, Vec<serde_json::Value>> = HashMap::new();
            if let Some(s) = m.meta.get(META_SINKS) {
                let s: BTreeMap<usize, Vec<serde_json::Value>> =
                    serde_json::from_str(s).map_err(|e| corrupt("sink commits", e))?;
                for (old, pending) in s {
                    sinks.entry(node_of(old)?).or_default().extend(pending);
                }
            }
            Ok(sinks)
        };
        let sinks = sinks_of(manifest)?;
        let mut undone: HashMap<NodeId, Vec<serde_json::Value>> = HashMap::new();
        for m in newer {
            // A newer checkpoint of another plan is not ours to undo.
            if m.meta.get(META_PLAN) == manifest.meta.get(META_PLAN) {
                for (node, v) in sinks_of(m)? {
                    undone.entry(node).or_default().extend(v);
                }
            }
        }
        Ok(Restore {
            id,
            finished: manifest.meta.contains_key(META_FINISHED),
            savepoint: manifest.meta.contains_key(META_SAVEPOINT),
            ops,
            sources,
            sinks,
            undone,
        })
    }

    /// The state of operator `node` that subtask `subtask` of `parallelism` owns.
    pub(crate) fn operator(
        &self,
        node: NodeId,
        subtask: usize,
        parallelism: usize,
    ) -> Result<Vec<TableSnapshot>> {
        let Some(tables) = self.ops.get(&node) else {
            return Ok(Vec::new());
        };
        let range = KeyGroupRange::of_subtask(subtask, parallelism, DEFAULT_KEY_GROUPS);
        Ok(tables
            .iter()
            .map(|t| t.for_range(range))
            .collect::<sluice_state::Result<_>>()?)
    }

    /// The recorded offsets of source `node`.
    pub(crate) fn source(&self, node: NodeId) -> Option<RestoredOffsets> {
        self.sources.get(&node).cloned()
    }

    /// The pre-commits of sink `node`, all of them: every subtask replays them all
    /// (commits are idempotent), so each knows every file a commit keeps; and those of
    /// the newer checkpoints that were skipped, to undo.
    pub(crate) fn sink(&self, node: NodeId) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        (
            self.sinks.get(&node).cloned().unwrap_or_default(),
            self.undone.get(&node).cloned().unwrap_or_default(),
        )
    }
}

/// How the coordinator ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every task finished (the final checkpoint is written).
    Finished,
    /// A stop was requested and savepoint `n` is complete and committed.
    Savepoint(u64),
}

struct Pending {
    id: u64,
    started: Instant,
    savepoint: bool,
    parts: HashMap<usize, TaskPart>,
}

struct Final {
    part: TaskPart,
    release: Option<oneshot::Sender<CheckpointId>>,
}

/// Injects barriers, collects the tasks' parts, completes checkpoints.
pub(crate) struct Coordinator {
    pub(crate) config: CheckpointConfig,
    /// How many tasks the job runs.
    pub(crate) tasks: usize,
    /// The tasks that end in a sink.
    pub(crate) sink_tasks: Vec<usize>,
    /// The plan's signature (JSON), recorded in every manifest.
    pub(crate) plan: String,
    pub(crate) trigger: watch::Sender<u64>,
    pub(crate) completed: watch::Sender<u64>,
    pub(crate) reports: mpsc::UnboundedReceiver<Report>,
    pub(crate) metrics: Arc<JobMetrics>,
    pub(crate) shutdown: ShutdownHandle,
    /// The id the next checkpoint gets.
    pub(crate) next_id: u64,
    pending: Option<Pending>,
    finals: HashMap<usize, Final>,
}

impl Coordinator {
    /// A coordinator for tasks not built yet: `tasks` and `sink_tasks` are set once
    /// they are.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: CheckpointConfig,
        plan: String,
        trigger: watch::Sender<u64>,
        completed: watch::Sender<u64>,
        reports: mpsc::UnboundedReceiver<Report>,
        metrics: Arc<JobMetrics>,
        shutdown: ShutdownHandle,
        next_id: u64,
    ) -> Self {
        Coordinator {
            config,
            tasks: 0,
            sink_tasks: Vec::new(),
            plan,
            trigger,
            completed,
            reports,
            metrics,
            shutdown,
            next_id,
            pending: None,
            finals: HashMap::new(),
        }
    }

    fn start(&mut self, savepoint: bool) {
        let id = self.next_id;
        self.next_id += 1;
        tracing::debug!(checkpoint = id, savepoint, "Triggering a checkpoint.");
        self.pending = Some(Pending {
            id,
            started: Instant::now(),
            savepoint,
            parts: HashMap::new(),
        });
        let _ = self.trigger.send(id);
    }

    fn is_complete(&self, p: &Pending) -> bool {
        (0..self.tasks).all(|t| p.parts.contains_key(&t) || self.finals.contains_key(&t))
    }

    /// Runs until every task finished, or until a requested stop's savepoint is done.
    pub(crate) async fn run(mut self) -> Result<Outcome> {
        let interval = self.config.interval.max(Duration::from_millis(10));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut poll = tokio::time::interval(Duration::from_millis(50));
        let mut stopping = false;
        let mut savepoint: Option<u64> = None;
        let mut committed: HashSet<usize> = HashSet::new();
        let mut final_written = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if self.pending.is_none() && !stopping && !final_written {
                        self.start(false);
                    }
                }
                _ = poll.tick() => {
                    if let Some(p) = &self.pending
                        && p.started.elapsed() > self.config.timeout
                    {
                        let id = p.id;
                        self.abandon(id, &format!(
                            "not complete after {}",
                            sluice_types::format_duration(self.config.timeout)
                        ));
                    }
                    if !stopping && self.shutdown.is_stopping() && !final_written {
                        stopping = true;
                        tracing::info!("Stopping: taking a savepoint.");
                    }
                    if stopping && savepoint.is_none() && self.pending.is_none() {
                        self.start(true);
                    }
                }
                r = self.reports.recv() => {
                    let Some(r) = r else { return Ok(Outcome::Finished) };
                    match r {
                        Report::Acked { task, id, part } => {
                            if let Some(p) = self.pending.as_mut()
                                && p.id == id.0
                            {
                                p.parts.insert(task, part);
                            }
                        }
                        Report::Failed { id, error } => {
                            if self.pending.as_ref().is_some_and(|p| p.id == id.0) {
                                self.abandon(id.0, &error);
                            }
                        }
                        Report::Finished { task, part, release } => {
                            self.finals.insert(task, Final { part, release });
                        }
                        Report::Committed { task, id } => {
                            if savepoint == Some(id.0) {
                                committed.insert(task);
                            }
                        }
                    }
                    if let Some(p) = self.pending.take() {
                        if self.is_complete(&p) {
                            let id = p.id;
                            let was_savepoint = p.savepoint;
                            self.complete(p, false).await?;
                            if was_savepoint {
                                savepoint = Some(id);
                            }
                        } else {
                            self.pending = Some(p);
                        }
                    }
                    if self.finals.len() == self.tasks && self.pending.is_none() && !final_written {
                        final_written = true;
                        let id = self.next_id;
                        self.next_id += 1;
                        let p = Pending { id, started: Instant::now(), savepoint: false, parts: HashMap::new() };
                        self.complete(p, true).await?;
                    }
                    if let Some(sp) = savepoint
                        && self
                            .sink_tasks
                            .iter()
                            .all(|t| committed.contains(t) || self.finals.contains_key(t))
                    {
                        return Ok(Outcome::Savepoint(sp));
                    }
                }
            }
        }
    }

    fn abandon(&mut self, id: u64, why: &str) {
        tracing::warn!(
            checkpoint = id,
            "Checkpoint {id} failed: {why}. The next one will be tried at the next interval."
        );
        JobMetrics::add(&self.metrics.checkpoints_failed, 1);
        self.pending = None;
    }

    /// Writes the manifest of `p`, then tells sinks and sources to commit.
    async fn complete(&mut self, p: Pending, finished: bool) -> Result<()> {
        let id = p.id;
        let mut files = BTreeMap::new();
        let mut sources: BTreeMap<usize, SourceMeta> = BTreeMap::new();
        let mut sinks: BTreeMap<usize, Vec<serde_json::Value>> = BTreeMap::new();
        let mut alignment = Duration::ZERO;
        let mut written = 0;
        // A task's acknowledgement of this checkpoint wins over its last report: that
        // one covers output after the barrier, which this checkpoint does not.
        let mut covered_by_final = Vec::new();
        let mut parts = Vec::with_capacity(self.tasks);
        for t in 0..self.tasks {
            if let Some(part) = p.parts.get(&t) {
                written += part.written;
                parts.push(part);
            } else if let Some(f) = self.finals.get(&t) {
                parts.push(&f.part);
                covered_by_final.push(t);
            }
        }
        for part in parts {
            for (name, entry) in &part.files {
                files.insert(name.clone(), entry.clone());
            }
            if let Some(s) = &part.source {
                let m = sources.entry(s.node.0).or_default();
                m.parallelism = s.parallelism;
                m.subtasks.insert(s.subtask, s.offsets.clone());
            }
            if let Some((node, _, v)) = &part.sink
                && !v.is_null()
            {
                sinks.entry(node.0).or_default().push(v.clone());
            }
            alignment = alignment.max(part.alignment);
        }
        let size: u64 = files.values().map(|f: &FileEntry| f.size).sum();
        let file_count = files.len();
        let mut meta = BTreeMap::new();
        meta.insert(META_PLAN.to_string(), self.plan.clone());
        meta.insert(META_SOURCES.to_string(), json(&sources));
        meta.insert(META_SINKS.to_string(), json(&sinks));
        if finished {
            meta.insert(META_FINISHED.to_string(), "true".into());
        }
        if p.savepoint {
            meta.insert(META_SAVEPOINT.to_string(), "true".into());
        }
        let manifest = Manifest { id, files, meta };
        if let Err(e) = self.config.store.complete(&manifest).await {
            if finished || p.savepoint {
                return Err(e.into());
            }
            self.abandon(id, &e.to_string());
            return Ok(());
        }
        let took = p.started.elapsed();
        JobMetrics::add(&self.metrics.checkpoints_completed, 1);
        JobMetrics::add(&self.metrics.checkpoint_written_bytes, written);
        self.metrics
            .checkpoint_last_id
            .store(id, std::sync::atomic::Ordering::Relaxed);
        self.metrics.checkpoint_last_duration_ms.store(
            took.as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.metrics
            .checkpoint_last_size_bytes
            .store(size, std::sync::atomic::Ordering::Relaxed);
        self.metrics.checkpoint_max_duration_ms.fetch_max(
            took.as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.metrics
            .checkpoint_max_size_bytes
            .fetch_max(size, std::sync::atomic::Ordering::Relaxed);
        self.metrics.checkpoint_last_alignment_ms.store(
            alignment.as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.metrics
            .checkpoint_last_completed_ms
            .store(now_ms, std::sync::atomic::Ordering::Relaxed);
        let what = if finished {
            "Final checkpoint"
        } else if p.savepoint {
            "Savepoint"
        } else {
            "Checkpoint"
        };
        tracing::info!(
            checkpoint = id,
            bytes = size,
            files = file_count,
            duration_ms = took.as_millis() as u64,
            alignment_ms = alignment.as_millis() as u64,
            written_bytes = written,
            "{what} {id} complete in {}: {} written, {} of state in {file_count} files, alignment {}.",
            sluice_types::format_duration(took),
            human_bytes(written),
            human_bytes(size),
            sluice_types::format_duration(alignment),
        );
        let _ = self.completed.send(id);
        for t in covered_by_final {
            if let Some(r) = self.finals.get_mut(&t).and_then(|f| f.release.take()) {
                let _ = r.send(CheckpointId(id));
            }
        }
        Ok(())
    }
}

/// The manifest's metadata maps as JSON (their keys and values always serialize).
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

/// `1.2 MB`-style sizes for log lines.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
