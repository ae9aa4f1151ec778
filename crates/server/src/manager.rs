//! The pipelines a server runs: submitted as SQL, planned, run as jobs with
//! checkpoints, stopped with a savepoint, resumed, deleted.
//!
//! In `sluice serve` every pipeline is kept in the data directory
//! (`<data_dir>/pipelines/<id>/pipeline.json`: its SQL and whether it should run), with
//! its dead letters and, by default, its checkpoints beside it; a restarted server
//! plans them again and resumes those that were running from their latest checkpoint.
//! `sluice run --http` shows its one pipeline through the same registry, read-only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sluice_connectors::http::ENDPOINTS;
use sluice_connectors::hub::Hub;
use sluice_connectors::sse::STREAMS;
use sluice_connectors::view::VIEWS;
use sluice_runtime::{
    CheckpointConfig, Job, JobConfig, JobMetrics, JobSummary, ShutdownHandle, StreamGraph,
};
use sluice_sql::{Pipeline, PipelineOptions};
use sluice_state::CheckpointStore;

use crate::settings::{checkpoint_settings, restart_strategy};
use crate::{Error, Result};

/// Where a pipeline is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Running.
    Running,
    /// Taking its savepoint after a stop.
    Stopping,
    /// Stopped (with a savepoint to resume from).
    Stopped,
    /// Every source ended and everything was written.
    Finished,
    /// It failed (and its restarts are used up), or it did not plan.
    Failed,
}

/// How `sluice serve` runs pipelines.
#[derive(Debug, Clone)]
pub struct ManagerSettings {
    /// Where pipeline definitions live; `None` for `sluice run` (nothing is kept).
    pub data_dir: Option<PathBuf>,
    /// Checkpoints go to `<checkpoint_dir>/<id>`; default `<data_dir>/pipelines/<id>/checkpoints`.
    pub checkpoint_dir: Option<String>,
    /// Time between checkpoints of pipelines that do not SET their own.
    pub checkpoint_interval: Duration,
}

/// What is kept of a pipeline in the data directory.
#[derive(Debug, Serialize, Deserialize)]
struct Definition {
    id: String,
    sql: String,
    /// Whether the pipeline should be running.
    running: bool,
    created_ms: u64,
}

/// One pipeline.
#[derive(Debug)]
pub struct Entry {
    /// Its name, unique in the server.
    pub id: String,
    sql: String,
    created_ms: u64,
    /// Whether the API may stop, resume and delete it (`sluice serve`).
    pub managed: bool,
    /// Being planned and started (submit, resume, restore): other changes wait.
    busy: AtomicBool,
    state: Mutex<State>,
}

/// Marks an entry busy while it lives; refuses when it already is.
struct Busy(Arc<Entry>);

impl Busy {
    fn take(entry: &Arc<Entry>) -> Result<Busy> {
        if entry.busy.swap(true, Ordering::AcqRel) {
            return Err(Error::Conflict(format!(
                "pipeline '{}' is being started: try again in a moment",
                entry.id
            )));
        }
        Ok(Busy(entry.clone()))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

#[derive(Debug)]
struct State {
    status: Status,
    metrics: Arc<JobMetrics>,
    shutdown: Option<ShutdownHandle>,
    task: Option<tokio::task::JoinHandle<()>>,
    plan: String,
    graph: Option<GraphView>,
    error: Option<String>,
    started_ms: Option<u64>,
    ended_ms: Option<u64>,
    savepoint: Option<u64>,
    restored_from: Option<u64>,
    checkpoint_location: Option<String>,
    dead_letter_path: Option<PathBuf>,
    tables: Vec<String>,
    bounded: bool,
}

/// The dataflow of a pipeline, for the API and the UI.
#[derive(Debug, Clone, Serialize)]
pub struct GraphView {
    /// Its operators.
    pub nodes: Vec<NodeView>,
    /// How rows flow between them.
    pub edges: Vec<EdgeView>,
}

/// One operator of the dataflow.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    /// Its id, also the suffix of its metrics name (`<name>#<id>`).
    pub id: usize,
    /// Its display name.
    pub name: String,
    /// The name its metrics carry.
    pub metrics_name: String,
    /// Subtasks.
    pub parallelism: usize,
}

/// One edge of the dataflow.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeView {
    /// Upstream node id.
    pub from: usize,
    /// Downstream node id.
    pub to: usize,
    /// forward, hash, rebalance or broadcast.
    pub kind: String,
}

impl GraphView {
    fn of(graph: &StreamGraph) -> Self {
        GraphView {
            nodes: graph
                .nodes
                .iter()
                .map(|n| NodeView {
                    id: n.id.0,
                    name: n.name(),
                    metrics_name: format!("{}#{}", n.name(), n.id.0),
                    parallelism: n.parallelism,
                })
                .collect(),
            edges: graph
                .edges
                .iter()
                .map(|e| EdgeView {
                    from: e.from.0,
                    to: e.to.0,
                    kind: e
                        .kind
                        .to_string()
                        .split(['[', ' '])
                        .next()
                        .unwrap_or("forward")
                        .to_ascii_lowercase(),
                })
                .collect(),
        }
    }
}

/// A copy of a pipeline's state, for answers.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Its name.
    pub id: String,
    /// Its SQL, with secrets replaced by `***`.
    pub sql: String,
    /// Where it is.
    pub status: Status,
    /// Its counters (of the current or last run).
    pub metrics: Arc<JobMetrics>,
    /// `explain` of its plan.
    pub plan: String,
    /// Its dataflow.
    pub graph: Option<GraphView>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was created, started and ended (ms since the epoch).
    pub created_ms: u64,
    /// When its current run started.
    pub started_ms: Option<u64>,
    /// When its last run ended.
    pub ended_ms: Option<u64>,
    /// The savepoint its last stop took.
    pub savepoint: Option<u64>,
    /// The checkpoint its run resumed from.
    pub restored_from: Option<u64>,
    /// Where its checkpoints go.
    pub checkpoint_location: Option<String>,
    /// Its dead-letter file.
    pub dead_letter_path: Option<PathBuf>,
    /// Its `http` and `sse` tables.
    pub tables: Vec<String>,
    /// Whether all its sources end.
    pub bounded: bool,
    /// Whether the API may stop, resume and delete it.
    pub managed: bool,
}

impl Entry {
    fn new(id: &str, sql: &str, created_ms: u64, managed: bool) -> Self {
        Entry {
            id: id.to_string(),
            sql: sql.to_string(),
            created_ms,
            managed,
            busy: AtomicBool::new(false),
            state: Mutex::new(State {
                status: Status::Stopped,
                metrics: Arc::new(JobMetrics::default()),
                shutdown: None,
                task: None,
                plan: String::new(),
                graph: None,
                error: None,
                started_ms: None,
                ended_ms: None,
                savepoint: None,
                restored_from: None,
                checkpoint_location: None,
                dead_letter_path: None,
                tables: Vec::new(),
                bounded: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Its state now.
    pub fn snapshot(&self) -> Snapshot {
        let s = self.lock();
        Snapshot {
            id: self.id.clone(),
            sql: mask_sql(&self.sql),
            status: s.status,
            metrics: s.metrics.clone(),
            plan: s.plan.clone(),
            graph: s.graph.clone(),
            error: s.error.clone(),
            created_ms: self.created_ms,
            started_ms: s.started_ms,
            ended_ms: s.ended_ms,
            savepoint: s.savepoint,
            restored_from: s.restored_from,
            checkpoint_location: s.checkpoint_location.clone(),
            dead_letter_path: s.dead_letter_path.clone(),
            tables: s.tables.clone(),
            bounded: s.bounded,
            managed: self.managed,
        }
    }

    /// Its status now.
    pub fn status(&self) -> Status {
        self.lock().status
    }

    /// Shows the counters of the job that runs it (`sluice run`).
    pub fn attach(&self, metrics: Arc<JobMetrics>) {
        self.lock().metrics = metrics;
    }

    /// Records how a run ended.
    pub fn finished(&self, result: &sluice_runtime::Result<JobSummary>) {
        let mut s = self.lock();
        s.ended_ms = Some(now_ms());
        s.shutdown = None;
        match result {
            Ok(summary) => {
                s.restored_from = summary.restored_from.or(s.restored_from);
                if summary.stopped || summary.savepoint.is_some() {
                    s.status = Status::Stopped;
                    s.savepoint = summary.savepoint;
                } else {
                    s.status = Status::Finished;
                }
            }
            Err(e) => {
                s.status = Status::Failed;
                s.error = Some(sluice_types::redact(&e.to_string()).into_owned());
            }
        }
    }

    fn fail(&self, error: &Error) {
        let mut s = self.lock();
        s.status = Status::Failed;
        s.error = Some(sluice_types::redact(&error.to_string()).into_owned());
        s.ended_ms = Some(now_ms());
    }
}

/// The running and stopped pipelines of a server.
#[derive(Debug)]
pub struct Manager {
    settings: ManagerSettings,
    entries: Mutex<BTreeMap<String, Arc<Entry>>>,
    /// Planning registers ingest endpoints by table name: one plan at a time.
    plan_lock: tokio::sync::Mutex<()>,
    ready: AtomicBool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Checks a pipeline name: it names a folder and appears in URLs and metrics.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::User(format!(
            "bad pipeline name '{}': use 1 to 64 letters, digits, '-' and '_', starting with a letter or digit",
            sluice_types::redact(&id.chars().take(80).collect::<String>())
        )))
    }
}

/// `sql` as the API shows it: values of credential-like options (`'password' = …`,
/// `'auth.token' = …`), passwords in URLs (`user:pw@`, `?password=…`) and every
/// registered secret replaced by `***`.
pub fn mask_sql(sql: &str) -> String {
    static OPTION: OnceLock<Option<regex::Regex>> = OnceLock::new();
    static URL: OnceLock<Option<regex::Regex>> = OnceLock::new();
    static PARAM: OnceLock<Option<regex::Regex>> = OnceLock::new();
    let option =
        OPTION.get_or_init(|| regex::Regex::new(r"'((?:[^']|'')*)'(\s*=\s*)'((?:[^']|'')*)'").ok());
    let url = URL.get_or_init(|| {
        regex::Regex::new(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/:@']+):[^\s/@']+@").ok()
    });
    let param = PARAM.get_or_init(|| {
        regex::Regex::new(
            r"(?i)([?&;](?:password|passwd|pwd|secret|token|access_token|api[_-]?key)=)[^&\s']+",
        )
        .ok()
    });
    let mut out = sql.to_string();
    if let Some(re) = option {
        out = re
            .replace_all(&out, |c: &regex::Captures<'_>| {
                if sluice_types::is_secret_key(&c[1]) {
                    format!("'{}'{}'***'", &c[1], &c[2])
                } else {
                    c[0].to_string()
                }
            })
            .into_owned();
    }
    if let Some(re) = url {
        out = re.replace_all(&out, "${1}:***@").into_owned();
    }
    if let Some(re) = param {
        out = re.replace_all(&out, "${1}***").into_owned();
    }
    sluice_types::redact(&out).into_owned()
}

/// A valid pipeline name made from `name` (a file path, say): its file stem, with
/// other characters turned into '-'.
pub fn slug(name: &str) -> String {
    let stem = Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(name);
    let mut out: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    while out.starts_with(['-', '_']) {
        out.remove(0);
    }
    if out.is_empty() {
        out = "pipeline".into();
    }
    out
}

impl Manager {
    /// A manager for `sluice serve` (with a data directory) or `sluice run` (without).
    pub fn new(settings: ManagerSettings) -> Arc<Self> {
        let ready = settings.data_dir.is_none();
        Arc::new(Manager {
            settings,
            entries: Mutex::new(BTreeMap::new()),
            plan_lock: tokio::sync::Mutex::new(()),
            ready: AtomicBool::new(ready),
        })
    }

    fn entries(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the pipelines kept from before are back (`/readyz`).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Every pipeline, by name.
    pub fn list(&self) -> Vec<Arc<Entry>> {
        self.entries().values().cloned().collect()
    }

    /// Pipeline `id`.
    pub fn get(&self, id: &str) -> Result<Arc<Entry>> {
        self.entries()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no pipeline named '{id}'")))
    }

    /// Shows the pipeline `sluice run` is running (read-only).
    /// The job's counters arrive with [`Entry::attach`].
    pub fn show_run(
        &self,
        id: &str,
        sql: &str,
        pipeline: &Pipeline,
        checkpoint_location: Option<String>,
        dead_letter_path: PathBuf,
    ) -> Arc<Entry> {
        let id = slug(id);
        let entry = Arc::new(Entry::new(&id, sql, now_ms(), false));
        {
            let mut s = entry.lock();
            s.status = Status::Running;
            s.plan = sluice_types::redact(&pipeline.explain(false)).into_owned();
            s.graph = Some(GraphView::of(&pipeline.graph));
            s.started_ms = Some(now_ms());
            s.checkpoint_location = checkpoint_location;
            s.dead_letter_path = Some(dead_letter_path);
            s.tables = sluice_connectors::http::endpoints();
            s.tables.extend(sluice_connectors::sse::streams());
            s.bounded = pipeline.bounded;
        }
        self.entries().insert(id, entry.clone());
        entry
    }

    /// Changes wait until the kept pipelines are back.
    fn check_ready(&self) -> Result<()> {
        if self.is_ready() {
            Ok(())
        } else {
            Err(Error::NotReady(
                "the server is still restoring its pipelines: try again in a moment (GET /readyz)"
                    .into(),
            ))
        }
    }

    fn data_dir(&self) -> Result<&Path> {
        self.settings.data_dir.as_deref().ok_or_else(|| {
            Error::Conflict(
                "this server runs one pipeline (sluice run): submit, stop and resume need sluice serve"
                    .into(),
            )
        })
    }

    fn pipeline_dir(&self, id: &str) -> Result<PathBuf> {
        Ok(self.data_dir()?.join("pipelines").join(id))
    }

    fn save(&self, entry: &Entry, running: bool) -> Result<()> {
        let dir = self.pipeline_dir(&entry.id)?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let def = Definition {
            id: entry.id.clone(),
            sql: entry.sql.clone(),
            running,
            created_ms: entry.created_ms,
        };
        let text = serde_json::to_string_pretty(&def)
            .map_err(|e| Error::User(format!("cannot encode pipeline '{}': {e}", entry.id)))?;
        let tmp = dir.join("pipeline.json.tmp");
        let path = dir.join("pipeline.json");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// Plans `sql` for pipeline `id`; returns the plan and the ingest/SSE tables it
    /// registered. A table name another pipeline serves is refused, and that
    /// pipeline's endpoint put back.
    async fn plan(&self, id: &str, sql: &str) -> Result<(Pipeline, Vec<String>)> {
        let _one = self.plan_lock.lock().await;
        let before = Registered::capture();
        let taken: Vec<String> = self
            .entries()
            .values()
            .filter(|e| e.id != id && matches!(e.status(), Status::Running | Status::Stopping))
            .flat_map(|e| e.lock().tables.clone())
            .collect();
        let options = PipelineOptions {
            file: format!("pipeline {id}"),
            default_workers: cores(),
            ..Default::default()
        };
        let planned = Pipeline::plan(sql, &options).await;
        let tables = before.changed();
        let conflict = tables.iter().find(|t| taken.contains(t)).cloned();
        if planned.is_err() || conflict.is_some() {
            before.restore(&tables);
        }
        let pipeline = planned?;
        if let Some(t) = conflict {
            return Err(Error::Conflict(format!(
                "table '{t}' already serves /ingest/{t} or /sse/{t} for another running pipeline: rename it"
            )));
        }
        Ok((pipeline, tables))
    }

    /// Creates pipeline `id` from `sql`, kept in the data directory; starts it unless
    /// `start` is false. Bad SQL is refused (nothing is kept).
    pub async fn submit(self: &Arc<Self>, id: &str, sql: &str, start: bool) -> Result<Arc<Entry>> {
        check_id(id)?;
        self.data_dir()?;
        self.check_ready()?;
        if sql.trim().is_empty() {
            return Err(Error::User(
                "the pipeline has no SQL: send {\"name\": ..., \"sql\": \"CREATE TABLE ...; INSERT INTO ...\"}".into(),
            ));
        }
        let entry = {
            let mut all = self.entries();
            if all.contains_key(id) {
                return Err(Error::Conflict(format!(
                    "a pipeline named '{id}' exists: pick another name, or DELETE /api/pipelines/{id} first"
                )));
            }
            let e = Arc::new(Entry::new(id, sql, now_ms(), true));
            all.insert(id.to_string(), e.clone());
            e
        };
        let _busy = Busy::take(&entry)?;
        let planned = match self.plan(id, sql).await {
            Ok(p) => p,
            Err(e) => {
                self.entries().remove(id);
                return Err(e);
            }
        };
        if let Err(e) = self.save(&entry, start) {
            self.entries().remove(id);
            return Err(e);
        }
        if start {
            if let Err(e) = self.launch(&entry, Some(planned)).await {
                // Nothing is kept of a pipeline that did not start.
                self.entries().remove(id);
                if let Ok(dir) = self.pipeline_dir(id) {
                    let _ = std::fs::remove_dir_all(dir);
                }
                return Err(e);
            }
        } else {
            {
                let mut s = entry.lock();
                s.plan = sluice_types::redact(&planned.0.explain(false)).into_owned();
                s.graph = Some(GraphView::of(&planned.0.graph));
                s.bounded = planned.0.bounded;
            }
            self.release(id, &planned.1).await;
        }
        Ok(entry)
    }

    /// Plans (unless given a plan) and starts `entry`, resuming from its latest
    /// checkpoint; a failure to start marks it failed.
    async fn launch(
        self: &Arc<Self>,
        entry: &Arc<Entry>,
        planned: Option<(Pipeline, Vec<String>)>,
    ) -> Result<()> {
        let started = self.start_job(entry, planned).await;
        if let Err(e) = &started {
            entry.fail(e);
        }
        started
    }

    async fn start_job(
        self: &Arc<Self>,
        entry: &Arc<Entry>,
        planned: Option<(Pipeline, Vec<String>)>,
    ) -> Result<()> {
        let (pipeline, tables) = match planned {
            Some(p) => p,
            None => self.plan(&entry.id, &entry.sql).await?,
        };
        match self.build_job(entry, pipeline, tables.clone()) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.release(&entry.id, &tables).await;
                Err(e)
            }
        }
    }

    /// Builds `entry`'s job from its plan and starts it.
    fn build_job(
        self: &Arc<Self>,
        entry: &Arc<Entry>,
        pipeline: Pipeline,
        tables: Vec<String>,
    ) -> Result<()> {
        let set = checkpoint_settings(&pipeline)?;
        let dir = self.pipeline_dir(&entry.id)?;
        let location = match (&set.dir, &self.settings.checkpoint_dir) {
            (Some(d), _) => d.clone(),
            (None, Some(root)) => format!("{}/{}", root.trim_end_matches('/'), entry.id),
            (None, None) => dir.join("checkpoints").display().to_string(),
        };
        let store = CheckpointStore::open(&location, set.retain)
            .map_err(|e| Error::User(format!("checkpoint location '{location}': {e}")))?;
        let dead_letter_path = pipeline
            .setting("sluice.dead-letter.path")
            .map_or_else(|| dir.join("dead-letters.jsonl"), PathBuf::from);
        let config = JobConfig {
            name: entry.id.clone(),
            dead_letter_path: dead_letter_path.clone(),
            restart: restart_strategy(&pipeline, true)?,
            ..JobConfig::default()
        };
        let plan = sluice_types::redact(&pipeline.explain(false)).into_owned();
        let graph = GraphView::of(&pipeline.graph);
        let bounded = pipeline.bounded;
        let job = Job::new(pipeline.graph, config)?.with_checkpoints(CheckpointConfig {
            store: Arc::new(store),
            location: location.clone(),
            interval: set.interval.unwrap_or(self.settings.checkpoint_interval),
            timeout: set.timeout,
            fresh: false,
        });
        let mut s = entry.lock();
        s.status = Status::Running;
        s.metrics = job.metrics();
        s.shutdown = Some(job.shutdown_handle());
        s.plan = plan;
        s.graph = Some(graph);
        s.error = None;
        s.started_ms = Some(now_ms());
        s.ended_ms = None;
        s.savepoint = None;
        s.checkpoint_location = Some(location);
        s.dead_letter_path = Some(dead_letter_path);
        s.tables = tables;
        s.bounded = bounded;
        let e = entry.clone();
        let manager = self.clone();
        s.task = Some(tokio::spawn(async move {
            let result = job.run().await;
            if let Err(err) = &result {
                tracing::warn!(pipeline = %e.id, error = %sluice_types::redact(&err.to_string()), "The pipeline failed.");
            }
            // Its endpoints go before its status says it ended.
            let tables = e.lock().tables.clone();
            manager.release(&e.id, &tables).await;
            e.finished(&result);
            // A finished bounded pipeline is not started again by the next server.
            if e.status() == Status::Finished
                && let Err(err) = manager.save(&e, false)
            {
                tracing::warn!(pipeline = %e.id, error = %err, "Could not record that the pipeline finished.");
            }
        }));
        tracing::info!(pipeline = %entry.id, "Pipeline started.");
        Ok(())
    }

    /// Stops pipeline `id` with a savepoint; it stays stopped across server restarts.
    pub fn stop(&self, id: &str) -> Result<Arc<Entry>> {
        let entry = self.get(id)?;
        self.managed(&entry)?;
        self.check_ready()?;
        let _busy = Busy::take(&entry)?;
        {
            let mut s = entry.lock();
            match (s.status, &s.shutdown) {
                (Status::Running, Some(h)) => {
                    h.stop();
                    s.status = Status::Stopping;
                }
                (Status::Stopping, _) => {}
                (other, _) => {
                    return Err(Error::Conflict(format!(
                        "pipeline '{id}' is not running (it is {}): nothing to stop",
                        status_name(other)
                    )));
                }
            }
        }
        self.save(&entry, false)?;
        Ok(entry)
    }

    /// Claims managed pipeline `entry` for a change that needs it not running (a
    /// conflict saying `hint` otherwise), once its ending run has finished: a stop's
    /// last checkpoint is written by that run.
    async fn settled(&self, entry: &Arc<Entry>, hint: &str) -> Result<Busy> {
        self.managed(entry)?;
        self.check_ready()?;
        let busy = Busy::take(entry)?;
        let status = entry.status();
        if matches!(status, Status::Running | Status::Stopping) {
            return Err(Error::Conflict(format!(
                "pipeline '{}' is {}: {hint}",
                entry.id,
                status_name(status)
            )));
        }
        let task = entry.lock().task.take();
        if let Some(t) = task {
            let _ = t.await;
        }
        Ok(busy)
    }

    /// Starts pipeline `id` again, from its savepoint or latest checkpoint.
    pub async fn resume(self: &Arc<Self>, id: &str) -> Result<Arc<Entry>> {
        let entry = self.get(id)?;
        let _busy = self.settled(&entry, "stop it before resuming").await?;
        self.save(&entry, true)?;
        self.launch(&entry, None).await?;
        Ok(entry)
    }

    /// Deletes stopped pipeline `id` and its folder in the data directory (with its
    /// checkpoints when they are kept there).
    pub async fn delete(&self, id: &str) -> Result<()> {
        let entry = self.get(id)?;
        let hint = format!("stop it first (POST /api/pipelines/{id}/stop)");
        let _busy = self.settled(&entry, &hint).await?;
        let dir = self.pipeline_dir(id)?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| Error::io(format!("removing {}", dir.display()), e))?;
        }
        self.entries().remove(id);
        // Its views go with it (a stopped pipeline's stay readable).
        let tables = entry.lock().tables.clone();
        for t in &tables {
            if !self.claimed_elsewhere(id, t) {
                sluice_connectors::view::forget(t);
            }
        }
        Ok(())
    }

    fn managed(&self, entry: &Entry) -> Result<()> {
        if entry.managed {
            Ok(())
        } else {
            Err(Error::Conflict(
                "this pipeline belongs to sluice run: stop it with Ctrl-C there".into(),
            ))
        }
    }

    /// Loads the pipelines kept in the data directory and starts those that were
    /// running; then the server is ready.
    pub async fn restore(self: &Arc<Self>) -> Result<usize> {
        let root = self.data_dir()?.join("pipelines");
        let mut defs = Vec::new();
        if root.exists() {
            let dirs = std::fs::read_dir(&root)
                .map_err(|e| Error::io(format!("reading {}", root.display()), e))?;
            for d in dirs.flatten() {
                let path = d.path().join("pipeline.json");
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let folder = d.file_name().to_string_lossy().into_owned();
                match serde_json::from_str::<Definition>(&text) {
                    Ok(def) if check_id(&def.id).is_ok() && def.id == folder => defs.push(def),
                    Ok(_) | Err(_) => {
                        tracing::warn!(file = %path.display(), "Skipping an unreadable pipeline definition.");
                    }
                }
            }
        }
        defs.sort_by_key(|d| d.created_ms);
        let n = defs.len();
        for def in defs {
            let entry = Arc::new(Entry::new(&def.id, &def.sql, def.created_ms, true));
            self.entries().insert(def.id.clone(), entry.clone());
            let _busy = Busy::take(&entry)?;
            if def.running {
                if let Err(e) = self.launch(&entry, None).await {
                    tracing::warn!(pipeline = %def.id, error = %sluice_types::redact(&e.to_string()), "A kept pipeline did not start again.");
                }
            } else {
                match self.plan(&def.id, &def.sql).await {
                    Ok((p, tables)) => {
                        {
                            let mut s = entry.lock();
                            s.plan = sluice_types::redact(&p.explain(false)).into_owned();
                            s.graph = Some(GraphView::of(&p.graph));
                            s.bounded = p.bounded;
                        }
                        self.release(&def.id, &tables).await;
                    }
                    Err(e) => entry.fail(&e),
                }
            }
        }
        self.ready.store(true, Ordering::Relaxed);
        Ok(n)
    }

    /// Whether another running (or stopping) pipeline serves table `table`.
    fn claimed_elsewhere(&self, id: &str, table: &str) -> bool {
        self.entries().values().any(|e| {
            e.id != id
                && matches!(e.status(), Status::Running | Status::Stopping)
                && e.lock().tables.iter().any(|t| t == table)
        })
    }

    /// Removes the ingest endpoints and event streams of pipeline `id` that no other
    /// running pipeline serves (its views stay readable until it is deleted).
    async fn release(&self, id: &str, tables: &[String]) {
        let _one = self.plan_lock.lock().await;
        for t in tables {
            if !self.claimed_elsewhere(id, t) {
                sluice_connectors::http::forget(t);
                sluice_connectors::sse::forget(t);
            }
        }
    }

    /// Stops every running pipeline with a savepoint (keeping them marked running, so
    /// the next start resumes them) and waits up to `limit` for them to end.
    pub async fn shutdown(&self, limit: Duration) {
        let mut tasks = Vec::new();
        for e in self.list() {
            let mut s = e.lock();
            if let Some(h) = &s.shutdown {
                h.stop();
            }
            if let Some(t) = s.task.take() {
                tasks.push(t);
            }
        }
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("Some pipelines did not finish their savepoint in time.");
        }
    }
}

/// The ingest endpoints, event streams and views registered at one moment.
struct Registered {
    http: BTreeMap<String, Arc<sluice_connectors::http::Endpoint>>,
    sse: BTreeMap<String, Arc<sluice_connectors::sse::SseStream>>,
    views: BTreeMap<String, Arc<sluice_connectors::view::View>>,
}

/// The names in `hub` registered (or replaced) since `before`.
fn changed_in<T>(hub: &Hub<T>, before: &BTreeMap<String, Arc<T>>) -> Vec<String> {
    hub.all()
        .into_iter()
        .filter(|(n, e)| before.get(n).is_none_or(|b| !Arc::ptr_eq(b, e)))
        .map(|(n, _)| n)
        .collect()
}

/// Puts `hub`'s entry for `table` back as it was in `before`.
fn restore_in<T>(hub: &Hub<T>, before: &BTreeMap<String, Arc<T>>, table: &str) {
    match before.get(table) {
        Some(e) => hub.insert(table, e.clone()),
        None => hub.remove(table),
    }
}

impl Registered {
    fn capture() -> Self {
        Registered {
            http: ENDPOINTS.all(),
            sse: STREAMS.all(),
            views: VIEWS.all(),
        }
    }

    /// The tables registered (or replaced) since.
    fn changed(&self) -> Vec<String> {
        let mut out = changed_in(&ENDPOINTS, &self.http);
        out.extend(changed_in(&STREAMS, &self.sse));
        out.extend(changed_in(&VIEWS, &self.views));
        out.sort();
        out.dedup();
        out
    }

    /// Undoes the registrations of `tables` since the capture.
    fn restore(&self, tables: &[String]) {
        for t in tables {
            restore_in(&ENDPOINTS, &self.http, t);
            restore_in(&STREAMS, &self.sse, t);
            restore_in(&VIEWS, &self.views, t);
        }
    }
}

/// The lower-case name of a status.
pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Running => "running",
        Status::Stopping => "stopping",
        Status::Stopped => "stopped",
        Status::Finished => "finished",
        Status::Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_sql_are_masked() {
        let sql = "CREATE TABLE t (a INT) WITH ('connector' = 'jdbc', 'password' = 'p''w1',
             'url' = 'jdbc:postgresql://u:hunter22@db:5432/x?sslmode=require&password=zz9',
             'auth.token' = 'tok-abc', 'table-name' = 'orders');";
        let m = mask_sql(sql);
        for secret in ["p''w1", "hunter22", "zz9", "tok-abc"] {
            assert!(!m.contains(secret), "{secret} in {m}");
        }
        for kept in [
            "'connector' = 'jdbc'",
            "'table-name' = 'orders'",
            "db:5432",
            "sslmode=require",
        ] {
            assert!(m.contains(kept), "{kept} lost from {m}");
        }
    }

    #[test]
    fn file_names_become_pipeline_names() {
        assert_eq!(slug("examples/quickstart.sql"), "quickstart");
        assert_eq!(slug("my pipeline.v2.sql"), "my-pipeline-v2");
        assert_eq!(slug("-x"), "x");
        assert_eq!(slug("..."), "pipeline");
        assert!(check_id(&slug(&"ü".repeat(100))).is_ok());
    }

    #[test]
    fn pipeline_names_are_safe_for_paths_urls_and_labels() {
        for ok in ["a", "orders-5m", "Q5_bids", &"x".repeat(64)] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "../x", "a/b", "a b", "a\"", "é", &"x".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}
