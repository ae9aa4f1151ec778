//! The seams: what an operator, a source and a sink must provide.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use sluice_state::{StateTableSpec, TableSnapshot};
use sluice_types::{CheckpointId, DeadLetter, Watermark};

use crate::Result;
use crate::checkpoint::RestoredOffsets;
use crate::metrics::JobMetrics;

/// Where a subtask runs: its index among the operator's subtasks and their count.
#[derive(Debug, Clone, Default)]
pub struct TaskInfo {
    /// The job's name (the SQL file).
    pub job: String,
    /// The operator's display name, e.g. `Filter`, `Source: bid`.
    pub operator: String,
    /// 0-based index of this subtask.
    pub subtask: usize,
    /// How many subtasks the operator has.
    pub parallelism: usize,
    /// Whether the job takes checkpoints (a sink then holds output back until the
    /// checkpoint that covers it completes).
    pub checkpointing: bool,
}

/// Receives the dead letters of a job (the runtime writes them to the dead-letter file).
pub trait DeadLetterOutput: Send + Sync {
    /// Records one rejected input record; never fails (a write problem is logged).
    fn send(&self, letter: DeadLetter);
}

/// What an operator may use while it processes: timers and state arrive with event time.
pub struct OperatorContext {
    /// Where this subtask runs.
    pub task: TaskInfo,
    /// The current (input) watermark of this subtask.
    pub watermark: Watermark,
    /// Dead-letter output for rows that fail to convert.
    pub dead_letters: Arc<dyn DeadLetterOutput>,
    /// The job's counters (late rows are counted here).
    pub metrics: Arc<JobMetrics>,
    /// For the operator right after a source: the source split the current batch came
    /// from, when the source reports one (see [`Source::current_split`]).
    pub split: Option<SplitInfo>,
}

/// The split a source batch came from, for per-split watermarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitInfo {
    /// The split's id, stable for the run (a Kafka partition's index, say).
    pub split: u32,
    /// How many splits this source subtask reads.
    pub owned: u32,
}

/// A stateless or stateful transformation, run as one instance per subtask.
///
/// Operators are synchronous: they transform in-memory batches and push results into
/// `out`; the runtime moves batches between tasks. Hooks other than `process` have
/// no-op defaults so that stateless operators implement one method.
pub trait Operator: Send {
    /// Handles one batch of input `input` (the index of the input edge, 0 for one input).
    fn process(
        &mut self,
        input: usize,
        batch: RecordBatch,
        ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()>;

    /// Event time advanced to `watermark` on all inputs. Returns the watermark to pass
    /// downstream (by default the same one) after emitting whatever it makes final.
    fn on_watermark(
        &mut self,
        watermark: Watermark,
        _ctx: &mut OperatorContext,
        _out: &mut Vec<RecordBatch>,
    ) -> Result<Option<Watermark>> {
        Ok(Some(watermark))
    }

    /// A watermark this operator generated while processing its last batch (a
    /// watermark assigner after a source); the task passes it downstream after the
    /// batch. Polled after every batch; `None` (the default) for everything else.
    fn take_watermark(&mut self) -> Option<Watermark> {
        None
    }

    /// How long the source feeding this operator may be without data before it is
    /// declared idle (so it stops holding back downstream watermarks).
    fn idle_timeout(&self) -> Option<std::time::Duration> {
        None
    }

    /// A checkpoint barrier was aligned on all inputs: snapshot state for `checkpoint`.
    fn on_barrier(&mut self, _checkpoint: CheckpointId, _ctx: &mut OperatorContext) -> Result<()> {
        Ok(())
    }

    /// A timer registered for `time` (ms) fired.
    fn on_timer(
        &mut self,
        _time: i64,
        _ctx: &mut OperatorContext,
        _out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        Ok(())
    }

    /// All inputs ended: emit what is left. Called once.
    fn on_close(&mut self, _ctx: &mut OperatorContext, _out: &mut Vec<RecordBatch>) -> Result<()> {
        Ok(())
    }

    /// The key-grouped state tables this operator keeps (empty when stateless).
    fn state_tables(&self) -> Vec<StateTableSpec> {
        Vec::new()
    }

    /// The rows of every state table, each tagged with its key group (see
    /// [`TableSnapshot`]). The operator goes on unchanged afterwards.
    fn snapshot(&mut self) -> Result<Vec<TableSnapshot>> {
        if self.state_tables().is_empty() {
            Ok(Vec::new())
        } else {
            Err(not_yet("snapshot"))
        }
    }

    /// Whether [`snapshot_changes`](Self::snapshot_changes) works: checkpoints then
    /// write only what changed since the previous one.
    fn incremental(&self) -> bool {
        false
    }

    /// For incremental checkpoints: with `full`, all state (as
    /// [`snapshot`](Self::snapshot)), starting a new chain; otherwise only what changed
    /// since the previous call. Restoring the chain's tables in order (the full one
    /// first) must give the state back. The operator goes on unchanged afterwards.
    fn snapshot_changes(&mut self, _full: bool) -> Result<StateChanges> {
        Err(not_yet("snapshot incrementally"))
    }

    /// Restores state, before any input, from snapshot tables already narrowed to this
    /// subtask's key groups. Their rows may come from several earlier subtasks: the
    /// tables come subtask by subtask, each earlier subtask's keyed tables first (in
    /// the order they were written, for an incremental chain) and then its global
    /// tables (watermarks; only the newest of a chain).
    fn restore(&mut self, tables: Vec<TableSnapshot>) -> Result<()> {
        if tables.iter().all(|t| t.batch.num_rows() == 0) {
            Ok(())
        } else {
            Err(not_yet("restore"))
        }
    }
}

/// What an operator's state changed by since its previous snapshot (or all of it), for
/// an incremental checkpoint.
#[derive(Debug, Clone)]
pub struct StateChanges {
    /// The changes, in the operator's snapshot tables.
    pub tables: Vec<TableSnapshot>,
    /// Once the operator's progress reaches this, nothing in `tables` matters any more
    /// (the windows fired, the rows expired); `i64::MIN` when they hold no rows.
    pub horizon: i64,
    /// The operator's progress now (its watermark): earlier changes whose horizon is at
    /// or below it are no longer needed.
    pub progress: i64,
    /// Rows of state the operator holds now: when the chain of changes holds many
    /// times more, the next checkpoint takes everything again.
    pub live_rows: usize,
}

fn not_yet(what: &str) -> crate::Error {
    crate::Error::State(sluice_state::Error::Mismatch(format!(
        "this operator cannot {what} its state yet"
    )))
}

/// Builds one operator instance per subtask.
pub trait OperatorFactory: Send + Sync {
    /// Display name for `explain` and metrics.
    fn name(&self) -> String;
    /// A one-line description of what it computes (expressions, keys) for `explain`.
    fn describe(&self) -> String {
        String::new()
    }
    /// Output schema.
    fn schema(&self) -> SchemaRef;
    /// Creates the instance for one subtask.
    fn create(&self, task: &TaskInfo) -> Result<Box<dyn Operator>>;
    /// True if the operator keeps no state and so may be chained and run at any
    /// parallelism.
    fn stateless(&self) -> bool {
        true
    }
}

/// What a source's `next` produced.
#[derive(Debug)]
pub enum SourceEvent {
    /// Rows in the table's physical schema.
    Batch(RecordBatch),
    /// Nothing available right now; the runtime calls `next` again soon.
    Idle,
    /// This subtask's splits are exhausted (bounded input drained).
    End,
}

/// The serialized positions of a source subtask's splits (file offsets, sequence numbers,
/// partition offsets), recorded in a checkpoint and handed back on restore.
pub type SourceOffsets = BTreeMap<String, serde_json::Value>;

/// Reads one share of a table's input. One instance per source subtask.
#[async_trait]
pub trait Source: Send {
    /// Prepares to read, resuming from `restored` offsets if the job restarts from a
    /// checkpoint (they hold every subtask's offsets of the run that took it, which may
    /// have had another parallelism). Fails with a user error for a missing file or
    /// bad option, or offsets it cannot resume from.
    async fn open(&mut self, task: &TaskInfo, restored: Option<RestoredOffsets>) -> Result<()>;

    /// Returns the next batch, `Idle` or `End`. Must return within about 100 ms so the
    /// runtime can react to shutdown and barriers (not cancellation safe: the runtime
    /// never drops a pending `next`). Bad records go to `dead_letters`, never to errors.
    async fn next(&mut self, dead_letters: &dyn DeadLetterOutput) -> Result<SourceEvent>;

    /// The split the batch `next` just returned came from, when every batch holds the
    /// rows of one split: the watermark assigner then tracks event time per split and
    /// sends the smallest (Flink's per-partition watermarks). `None` (the default): one
    /// watermark for the whole subtask.
    fn current_split(&self) -> Option<SplitInfo> {
        None
    }

    /// The current read positions, consistent with every batch returned so far.
    fn snapshot(&mut self, _checkpoint: CheckpointId) -> Result<SourceOffsets> {
        Ok(SourceOffsets::new())
    }

    /// Checkpoint `checkpoint` is complete everywhere: acknowledge upstream if the
    /// system needs it (commit offsets, ack messages).
    async fn commit(&mut self, _checkpoint: CheckpointId) -> Result<()> {
        Ok(())
    }
}

/// How far a sink's delivery goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Rows may be lost on failure.
    AtMostOnce,
    /// Rows may be repeated after a failure, never lost.
    AtLeastOnce,
    /// Rows appear exactly once (two-phase commit or idempotent writes).
    ExactlyOnce,
}

/// Writes rows somewhere. One instance per sink subtask.
#[async_trait]
pub trait Sink: Send {
    /// Hands the sink the job's dead-letter output, before [`open`](Self::open), for
    /// rows it gives up on (a webhook that keeps refusing them, say). The default
    /// ignores it: most sinks fail the job instead.
    fn attach_dead_letters(&mut self, _out: Arc<dyn DeadLetterOutput>) {}
    /// Prepares to write (creates directories, connects).
    async fn open(&mut self, task: &TaskInfo) -> Result<()>;
    /// Writes (or buffers) one batch.
    async fn write(&mut self, batch: RecordBatch) -> Result<()>;
    /// Checkpoint barrier: make everything written so far durable but not yet visible,
    /// and describe what a commit must do (recorded in the checkpoint; `Null` when
    /// there is nothing to commit).
    async fn pre_commit(&mut self, _checkpoint: CheckpointId) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }
    /// Checkpoint `checkpoint` completed: make what was pre-committed up to it visible.
    /// Must be idempotent.
    async fn commit(&mut self, _checkpoint: CheckpointId) -> Result<()> {
        Ok(())
    }
    /// After a restart from a checkpoint, before any write: finish the commits that
    /// checkpoint recorded (every subtask gets all of them; some may have happened
    /// already, possibly by another subtask), and discard what a failed run left
    /// uncommitted. `undone` holds the pre-commits of newer checkpoints that were
    /// skipped as damaged: what they committed beyond `pending` is read again, so it
    /// must go.
    async fn recover(
        &mut self,
        _pending: Vec<serde_json::Value>,
        _undone: Vec<serde_json::Value>,
    ) -> Result<()> {
        Ok(())
    }
    /// End of input: flush and make everything visible. Called once.
    async fn close(&mut self) -> Result<()>;
    /// The guarantee this sink gives.
    fn delivery(&self) -> Delivery;
}

/// Builds source instances for one table.
pub trait SourceFactory: Send + Sync {
    /// Display name, e.g. `Source: bid (filesystem, json)`.
    fn name(&self) -> String;
    /// The physical schema its batches have.
    fn schema(&self) -> SchemaRef;
    /// Whether the input ends by itself.
    fn bounded(&self) -> bool;
    /// Whether it reads a changelog (a CDC format): its batches then end with the
    /// row-kind column, after the columns of [`schema`](Self::schema).
    fn changelog(&self) -> bool {
        false
    }
    /// For an upsert source (`upsert-kafka`): the key columns. Its changelog batches
    /// then hold upserts (`+I`: the key's new row) and deletions (`-D`: only the key
    /// columns are meaningful), which the planner normalizes into a full changelog
    /// (`-U` old row, `+U` new row; `-D` with the old row) keyed by these columns.
    fn upsert_key(&self) -> Option<Vec<usize>> {
        None
    }
    /// Creates the instance for one subtask.
    fn create(&self, task: &TaskInfo, metrics: &Arc<JobMetrics>) -> Result<Box<dyn Source>>;
}

/// Builds sink instances for one table.
pub trait SinkFactory: Send + Sync {
    /// Display name, e.g. `Sink: out (print)`.
    fn name(&self) -> String;
    /// The schema it accepts.
    fn schema(&self) -> SchemaRef;
    /// A parallelism the sink insists on (print to a terminal, say), if any.
    fn parallelism(&self) -> Option<usize> {
        None
    }
    /// Creates the instance for one subtask.
    fn create(&self, task: &TaskInfo) -> Result<Box<dyn Sink>>;
    /// Whether the sink accepts an updating stream (batches ending with the row-kind
    /// column); append-only sinks (the default) make such a query fail at plan time.
    fn accepts_changelog(&self) -> bool {
        false
    }
}

/// A table read by key for lookup joins (`JOIN t FOR SYSTEM_TIME AS OF o.proc_time`):
/// a database table or a key-value store, asked for the rows of the keys a batch of
/// probe rows needs. One instance per lookup-join subtask.
#[async_trait]
pub trait LookupTable: Send {
    /// Connects. Called once, before the first lookup.
    async fn open(&mut self, task: &TaskInfo) -> Result<()>;
    /// The table's rows (in [`LookupFactory::schema`]) whose key columns equal one of
    /// the rows of `keys`, in any order; a key may have several rows or none. `keys`
    /// holds the key columns (in [`LookupFactory::key_columns`] order, with the table's
    /// types), with distinct rows and no NULLs. After a failure the next call must try
    /// afresh (reconnecting when the connection broke): the caller retries.
    async fn lookup(&mut self, keys: &RecordBatch) -> Result<RecordBatch>;
}

/// How a lookup join caches what it looked up (Flink's `lookup.cache` options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupCaching {
    /// Keys kept at most; `None`: no cache (every batch asks the table).
    pub max_rows: Option<usize>,
    /// An entry is dropped this long after it was looked up.
    pub expire_after_write: Option<std::time::Duration>,
    /// An entry is dropped when it was not used for this long.
    pub expire_after_access: Option<std::time::Duration>,
    /// Whether a key with no rows is cached too (default true).
    pub cache_missing_key: bool,
    /// Attempts after a failed lookup, with a growing wait, before the job fails.
    pub max_retries: u32,
}

impl Default for LookupCaching {
    fn default() -> Self {
        LookupCaching {
            max_rows: None,
            expire_after_write: None,
            expire_after_access: None,
            cache_missing_key: true,
            max_retries: 3,
        }
    }
}

/// Builds the lookup instances of one table.
pub trait LookupFactory: Send + Sync {
    /// Display name, e.g. `customers (jdbc lookup of public.customers)`.
    fn name(&self) -> String;
    /// The columns a lookup returns (the table's physical columns).
    fn schema(&self) -> SchemaRef;
    /// The columns lookups are by, as indexes into [`schema`](Self::schema).
    fn key_columns(&self) -> Vec<usize>;
    /// The cache and retry settings.
    fn caching(&self) -> LookupCaching;
    /// Creates the instance for one subtask.
    fn create(&self, task: &TaskInfo) -> Result<Box<dyn LookupTable>>;
}
