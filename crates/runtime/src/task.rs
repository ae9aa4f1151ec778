//! One task = one subtask of a chain of nodes: a head (a source, or input channels),
//! chained operators, and a tail (a sink, or output edges).

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use sluice_types::{Barrier, CheckpointId, Message, Watermark};
use tokio::sync::mpsc::Receiver;
use tokio::sync::oneshot;

use crate::checkpoint::{
    Report, RestoredOffsets, SourcePart, TaskCheckpoints, TaskPart, state_file, state_stem,
};
use crate::graph::NodeId;
use crate::job::ShutdownHandle;
use crate::metrics::{JobMetrics, OperatorMetrics};
use crate::partition::OutputEdge;
use crate::traits::{
    DeadLetterOutput, Operator, OperatorContext, Sink, Source, SourceEvent, SourceOffsets,
};
use crate::{Error, Result};

/// An operator inside a chain, with its context and counters.
pub(crate) struct ChainOp {
    pub(crate) node: NodeId,
    pub(crate) op: Box<dyn Operator>,
    pub(crate) ctx: OperatorContext,
    pub(crate) metrics: Arc<OperatorMetrics>,
    /// The files of its incremental checkpoints (for operators that take them).
    pub(crate) chain: Arc<std::sync::Mutex<StateChain>>,
}

/// An incremental checkpoint chain longer than this is started anew (a full snapshot).
const MAX_CHAIN_FILES: usize = 64;

/// The state files an operator's next checkpoint lists: the full snapshot that started
/// the chain and the changes since, each until its horizon passes.
#[derive(Debug, Default)]
pub(crate) struct StateChain {
    files: Vec<ChainFile>,
    /// Rows the operator held at its last snapshot.
    live_rows: usize,
    /// The newest file is still being written: a checkpoint now starts a new chain.
    in_flight: bool,
    /// Writing a file failed: the chain has a gap, the next checkpoint starts anew.
    broken: bool,
}

#[derive(Debug, Clone)]
struct ChainFile {
    name: String,
    entry: sluice_state::FileEntry,
    horizon: i64,
    rows: usize,
}

impl StateChain {
    /// Whether the next snapshot must hold everything: no chain yet, a gap, or a
    /// chain much bigger than the state it describes.
    fn wants_full(&self) -> bool {
        let rows: usize = self.files.iter().map(|f| f.rows).sum();
        self.in_flight
            || self.broken
            || self.files.is_empty()
            || self.files.len() >= MAX_CHAIN_FILES
            || (rows > 1_000_000 && rows > 3 * self.live_rows)
    }
}

/// A state file to write: a whole snapshot in the checkpoint's folder, or a link of an
/// incremental chain under `shared/`.
struct Written {
    name: String,
    tables: Vec<sluice_state::TableSnapshot>,
    link: Option<Link>,
    /// The operator's counters, for the size of its state once written.
    metrics: Arc<OperatorMetrics>,
}

struct Link {
    horizon: i64,
    /// The chain's earlier files this checkpoint lists too.
    earlier: Vec<ChainFile>,
    chain: Arc<std::sync::Mutex<StateChain>>,
}

/// Where a task's rows come from.
pub(crate) enum Head {
    Source(Box<dyn Source>),
    Inputs(InputSet),
}

/// Where a task's rows go.
pub(crate) enum Tail {
    Sink(Box<dyn Sink>, Arc<OperatorMetrics>),
    Edges(Vec<OutputEdge>),
}

/// A runnable subtask of a chain.
pub(crate) struct Task {
    /// The column of the sink's input that holds event time, if the tail is a sink
    /// and it has one.
    pub(crate) sink_event_time: Option<usize>,
    /// When the newest source read behind the data being processed happened: set by
    /// the source (each batch read) or by the batch just received; what the task
    /// emits carries it on, and a sink's write measures the ingest → emit latency
    /// from it.
    pub(crate) ingested: Option<Instant>,
    pub(crate) name: String,
    pub(crate) head: Head,
    pub(crate) source_metrics: Option<Arc<OperatorMetrics>>,
    pub(crate) ops: Vec<ChainOp>,
    pub(crate) tail: Tail,
    pub(crate) job: Arc<JobMetrics>,
    /// Time batches at each operator ([`crate::JobConfig::operator_timing`]).
    pub(crate) timing: bool,
    pub(crate) dead_letters: Arc<dyn DeadLetterOutput>,
    pub(crate) shutdown: ShutdownHandle,
    /// The head node's subtask info (what a source sees).
    pub(crate) head_info: crate::traits::TaskInfo,
    /// The last node's subtask info (what a sink sees).
    pub(crate) info: crate::traits::TaskInfo,
    /// The chain's first and last nodes.
    pub(crate) head_node: NodeId,
    pub(crate) tail_node: NodeId,
    /// The connection to the checkpoint coordinator (none without checkpoints).
    pub(crate) checkpoints: Option<TaskCheckpoints>,
    /// Offsets a source resumes from.
    pub(crate) restored: Option<RestoredOffsets>,
    /// Pre-commits a sink finishes after a restart, and those it undoes.
    pub(crate) recover: Option<(Vec<serde_json::Value>, Vec<serde_json::Value>)>,
}

impl Task {
    pub(crate) async fn run(mut self) -> Result<()> {
        if let Tail::Sink(sink, _) = &mut self.tail {
            sink.attach_dead_letters(self.dead_letters.clone());
            sink.open(&self.info).await?;
            if let Some((pending, undone)) = self.recover.take() {
                sink.recover(pending, undone).await?;
            }
        }
        let head = std::mem::replace(&mut self.head, Head::Inputs(InputSet::new(Vec::new())));
        match head {
            Head::Source(source) => self.run_source(source).await,
            Head::Inputs(inputs) => self.run_inputs(inputs).await,
        }
    }

    async fn run_source(&mut self, mut source: Box<dyn Source>) -> Result<()> {
        source.open(&self.head_info, self.restored.take()).await?;
        let idle_timeout = self.ops.iter().filter_map(|o| o.op.idle_timeout()).min();
        let mut last_data = Instant::now();
        let mut idle = false;
        // With checkpoints a stop is a savepoint the coordinator takes, then the job is
        // cancelled; without, sources stop and the pipeline drains.
        let drain_on_stop = self.checkpoints.is_none();
        loop {
            if drain_on_stop && self.shutdown.is_stopping() {
                break;
            }
            self.source_checkpoints(source.as_mut()).await?;
            match source.next(self.dead_letters.as_ref()).await? {
                SourceEvent::Batch(batch) => {
                    if batch.num_rows() == 0 {
                        continue;
                    }
                    last_data = Instant::now();
                    idle = false;
                    self.ingested = Some(Instant::now());
                    let n = batch.num_rows() as u64;
                    JobMetrics::add(&self.job.source_rows, n);
                    if let Some(m) = &self.source_metrics {
                        m.count_out([&batch]);
                    }
                    if let Some(op) = self.ops.first_mut() {
                        op.ctx.split = source.current_split();
                    }
                    let out = self.push_from(0, 0, batch)?;
                    self.emit(out).await?;
                    self.generated_watermarks().await?;
                    // A fully chained task may never wait on anything: give the
                    // scheduler its turn so Ctrl-C, progress and other tasks run. With
                    // checkpoints, after every batch: barriers then move through the
                    // other tasks sooner (in a debug build, a join pipeline's first
                    // checkpoint took 0.4 s instead of 0.7 s).
                    if self.checkpoints.is_some() {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::task::consume_budget().await;
                    }
                }
                SourceEvent::Idle => {
                    if let Some(t) = idle_timeout
                        && !idle
                        && last_data.elapsed() >= t
                    {
                        idle = true;
                        self.idle().await?;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await
                }
                SourceEvent::End => break,
            }
        }
        let offsets = match &self.checkpoints {
            Some(_) => Some(source.snapshot(CheckpointId(u64::MAX))?),
            None => None,
        };
        let released = self.finish(offsets).await?;
        // The final checkpoint holds everything read: acknowledge it upstream (commit
        // offsets, ack messages) as after any other checkpoint.
        if released {
            source.commit(CheckpointId(u64::MAX)).await?;
        }
        Ok(())
    }

    /// A source task between two reads: injects a triggered barrier (with the source's
    /// offsets) and commits a completed checkpoint.
    async fn source_checkpoints(&mut self, source: &mut dyn Source) -> Result<()> {
        let Some(cp) = self.checkpoints.as_mut() else {
            return Ok(());
        };
        let trigger = cp
            .trigger
            .has_changed()
            .unwrap_or(false)
            .then(|| *cp.trigger.borrow_and_update());
        let completed = cp
            .completed
            .has_changed()
            .unwrap_or(false)
            .then(|| *cp.completed.borrow_and_update());
        if let Some(id) = trigger {
            let offsets = source.snapshot(CheckpointId(id))?;
            self.barrier(CheckpointId(id), Some(offsets), Duration::ZERO)
                .await?;
        }
        if let Some(id) = completed {
            source.commit(CheckpointId(id)).await?;
            self.commit_sink(id).await?;
        }
        Ok(())
    }

    /// Checkpoint `id` completed: the sink at the tail (if any) commits it.
    async fn commit_sink(&mut self, id: u64) -> Result<()> {
        if let Tail::Sink(sink, _) = &mut self.tail {
            sink.commit(CheckpointId(id)).await?;
            if let Some(cp) = &self.checkpoints {
                cp.report(Report::Committed {
                    task: cp.index,
                    id: CheckpointId(id),
                });
            }
        }
        Ok(())
    }

    async fn run_inputs(&mut self, mut inputs: InputSet) -> Result<()> {
        let mut watch_commits = self.checkpoints.is_some() && matches!(self.tail, Tail::Sink(..));
        loop {
            let next = match self.checkpoints.as_mut() {
                Some(cp) if watch_commits => tokio::select! {
                    m = inputs.recv() => Some(m?),
                    c = cp.completed.changed() => {
                        watch_commits = c.is_ok();
                        None
                    }
                },
                _ => Some(inputs.recv().await?),
            };
            let Some(next) = next else {
                if watch_commits && let Some(cp) = self.checkpoints.as_mut() {
                    let id = *cp.completed.borrow_and_update();
                    self.commit_sink(id).await?;
                }
                continue;
            };
            let Some((chan, msg)) = next else {
                break;
            };
            match msg {
                Message::Batch(batch, ingested) => {
                    if ingested.is_some() {
                        self.ingested = ingested;
                    }
                    let input = inputs.chans[chan].input;
                    inputs.on_active(chan);
                    let out = self.push_from(0, input, batch)?;
                    self.emit(out).await?;
                    self.generated_watermarks().await?;
                }
                Message::Idle => {
                    if let Some(w) = inputs.on_idle(chan) {
                        self.watermark(w).await?;
                    }
                    if inputs.all_idle() {
                        self.idle().await?;
                    }
                }
                Message::Watermark(w) => {
                    if let Some(w) = inputs.on_watermark(chan, w) {
                        self.watermark(w).await?;
                    }
                }
                Message::Barrier(b) => {
                    if inputs.on_barrier(chan, b.id) {
                        let waited = inputs.take_alignment();
                        self.barrier(b.id, None, waited).await?;
                    }
                }
                Message::End => {
                    let aligning = inputs.aligning;
                    if let Some(w) = inputs.on_end(chan).filter(|w| *w < Watermark::MAX) {
                        self.watermark(w).await?;
                    }
                    // An ended channel counts as aligned: the barrier may now pass.
                    if let Some(id) = aligning
                        && inputs.check_aligned()
                    {
                        let waited = inputs.take_alignment();
                        self.barrier(id, None, waited).await?;
                    }
                    if inputs.all_ended() {
                        break;
                    }
                }
            }
        }
        self.finish(None).await.map(|_| ())
    }

    /// End of input: final watermark, close every operator in order, close the tail.
    /// With checkpoints the task then reports that it finished (with a source's last
    /// `offsets`), and a sink commits its last output only once a checkpoint covers it.
    /// End of input: flushes the operators, reports to the checkpoint coordinator and
    /// closes the sink. True when the final checkpoint covering this task completed
    /// (only for a task that starts with a source and takes checkpoints).
    async fn finish(&mut self, offsets: Option<SourceOffsets>) -> Result<bool> {
        self.watermark(Watermark::MAX).await?;
        for i in 0..self.ops.len() {
            let mut buf = Vec::new();
            {
                let op = &mut self.ops[i];
                op.op.on_close(&mut op.ctx, &mut buf)?;
            }
            let mut out = Vec::new();
            for b in buf {
                out.extend(self.push_from(i + 1, 0, b)?);
            }
            self.emit(out).await?;
        }
        let source = offsets.map(|offsets| SourcePart {
            node: self.head_node,
            subtask: self.head_info.subtask,
            parallelism: self.head_info.parallelism,
            offsets,
        });
        let has_source = source.is_some();
        match &mut self.tail {
            Tail::Sink(sink, _) => {
                if let Some(cp) = &self.checkpoints {
                    let last = CheckpointId(u64::MAX);
                    let pending = sink.pre_commit(last).await?;
                    let (tx, rx) = oneshot::channel();
                    cp.report(Report::Finished {
                        task: cp.index,
                        part: TaskPart {
                            source,
                            sink: Some((self.tail_node, self.info.subtask, pending)),
                            ..TaskPart::default()
                        },
                        release: Some(tx),
                    });
                    if rx.await.is_err() {
                        return Err(Error::TaskFailed {
                            task: self.name.clone(),
                            message: "the checkpoint coordinator stopped before the last output was committed".into(),
                        });
                    }
                    sink.commit(last).await?;
                    sink.close().await?;
                    return Ok(has_source);
                }
                sink.close().await?;
                Ok(false)
            }
            Tail::Edges(edges) => {
                for e in edges {
                    e.send_control(Message::End).await?;
                }
                if let Some(cp) = &self.checkpoints {
                    // A source waits for the final checkpoint, to acknowledge it.
                    let (tx, rx) = oneshot::channel();
                    cp.report(Report::Finished {
                        task: cp.index,
                        part: TaskPart {
                            source,
                            ..TaskPart::default()
                        },
                        release: has_source.then_some(tx),
                    });
                    return Ok(has_source && rx.await.is_ok());
                }
                Ok(false)
            }
        }
    }

    /// Runs `batch` through operators `start..` (as input `input` of the first one).
    fn push_from(
        &mut self,
        start: usize,
        input: usize,
        batch: RecordBatch,
    ) -> Result<Vec<RecordBatch>> {
        let mut cur = vec![batch];
        let mut input = input;
        let timing = self.timing;
        for op in self.ops.iter_mut().skip(start) {
            let mut next = Vec::with_capacity(cur.len());
            for b in cur {
                op.metrics.count_in(&b);
                let started = timing.then(Instant::now);
                op.op.process(input, b, &mut op.ctx, &mut next)?;
                if let Some(t) = started {
                    op.metrics.batch_time.observe(t.elapsed());
                }
            }
            next.retain(|b| b.num_rows() > 0);
            op.metrics.count_out(&next);
            cur = next;
            input = 0;
            if cur.is_empty() {
                break;
            }
        }
        Ok(cur)
    }

    /// Sends output batches to the tail.
    async fn emit(&mut self, batches: Vec<RecordBatch>) -> Result<()> {
        for b in batches {
            if b.num_rows() == 0 {
                continue;
            }
            match &mut self.tail {
                Tail::Sink(sink, m) => {
                    let n = b.num_rows() as u64;
                    m.tap.send(&b);
                    m.count_in(&b);
                    let newest = self.sink_event_time.and_then(|c| newest_event_time(&b, c));
                    let started = self.timing.then(Instant::now);
                    sink.write(b).await?;
                    if let Some(t) = started {
                        m.batch_time.observe(t.elapsed());
                    }
                    JobMetrics::add(&self.job.sink_rows, n);
                    if let Some(t) = self.ingested {
                        self.job.record_latency(t.elapsed().as_micros() as u64);
                    }
                    if let Some(ms) = newest {
                        self.job.record_event_time_latency(ms);
                    }
                }
                Tail::Edges(edges) => {
                    let mut waited = Duration::ZERO;
                    for e in edges.iter_mut() {
                        waited += e.send_batch(b.clone(), self.ingested).await?;
                    }
                    // Time spent waiting for room downstream is backpressure on the
                    // chain's last operator (its source when nothing is chained).
                    if !waited.is_zero()
                        && let Some(m) = self
                            .ops
                            .last()
                            .map(|o| &o.metrics)
                            .or(self.source_metrics.as_ref())
                    {
                        JobMetrics::add(
                            &m.blocked_nanos,
                            u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Passes on watermarks that chained operators generated from their last batch.
    async fn generated_watermarks(&mut self) -> Result<()> {
        for i in 0..self.ops.len() {
            if let Some(w) = self.ops[i].op.take_watermark() {
                self.watermark_from(i + 1, w).await?;
            }
        }
        Ok(())
    }

    /// This task's inputs went idle: tell the downstream tasks.
    async fn idle(&mut self) -> Result<()> {
        if let Tail::Edges(edges) = &mut self.tail {
            for e in edges {
                e.send_control(Message::Idle).await?;
            }
        }
        Ok(())
    }

    /// Event time advanced: let each operator react, then pass it on.
    async fn watermark(&mut self, w: Watermark) -> Result<()> {
        self.watermark_from(0, w).await
    }

    /// Event time advanced at operator `start`: it and those after it react, then the
    /// watermark goes downstream.
    async fn watermark_from(&mut self, start: usize, w: Watermark) -> Result<()> {
        let mut wm = Some(w);
        for i in start..self.ops.len() {
            let Some(w) = wm else { break };
            let mut buf = Vec::new();
            {
                let op = &mut self.ops[i];
                op.ctx.watermark = w;
                if w < Watermark::MAX {
                    op.metrics
                        .watermark_ms
                        .fetch_max(w.0, std::sync::atomic::Ordering::Relaxed);
                }
                wm = op.op.on_watermark(w, &mut op.ctx, &mut buf)?;
            }
            let mut out = Vec::new();
            for b in buf {
                out.extend(self.push_from(i + 1, 0, b)?);
            }
            self.emit(out).await?;
        }
        if let (Some(w), Tail::Edges(edges)) = (wm, &mut self.tail) {
            for e in edges {
                e.send_control(Message::Watermark(w)).await?;
            }
        }
        Ok(())
    }

    /// A barrier is aligned (or injected, at a source with its `offsets`): copy the
    /// operators' state, pre-commit the sink, pass the barrier on; then, off the data
    /// path, write the state files and acknowledge.
    async fn barrier(
        &mut self,
        id: CheckpointId,
        offsets: Option<SourceOffsets>,
        alignment: Duration,
    ) -> Result<()> {
        let Some(cp) = &self.checkpoints else {
            return Ok(());
        };
        let subtask = self.head_info.subtask;
        let mut tables = Vec::new();
        for op in &mut self.ops {
            op.op.on_barrier(id, &mut op.ctx)?;
            if op.op.incremental() {
                let full = lock(&op.chain).wants_full();
                let changes = op.op.snapshot_changes(full)?;
                let mut chain = lock(&op.chain);
                if full {
                    chain.files.clear();
                } else {
                    chain.files.retain(|f| f.horizon > changes.progress);
                }
                chain.live_rows = changes.live_rows;
                chain.in_flight = true;
                chain.broken = false;
                tables.push(Written {
                    metrics: op.metrics.clone(),
                    name: sluice_state::shared_name(&state_stem(op.node, subtask), id.0),
                    tables: changes.tables,
                    link: Some(Link {
                        horizon: changes.horizon,
                        earlier: chain.files.clone(),
                        chain: op.chain.clone(),
                    }),
                });
                continue;
            }
            // An operator that stopped being incremental starts any later chain anew.
            lock(&op.chain).files.clear();
            let t = op.op.snapshot()?;
            if t.is_empty() {
                // A stateful operator with nothing to keep; a stateless one has no size.
                if !op.op.state_tables().is_empty() {
                    op.metrics.set_state_bytes(subtask, 0);
                }
            } else {
                tables.push(Written {
                    metrics: op.metrics.clone(),
                    name: state_file(op.node, subtask),
                    tables: t,
                    link: None,
                });
            }
        }
        let sink = match &mut self.tail {
            Tail::Sink(sink, _) => Some((
                self.tail_node,
                self.info.subtask,
                sink.pre_commit(id).await?,
            )),
            Tail::Edges(edges) => {
                for e in edges {
                    e.send_control(Message::Barrier(Barrier { id })).await?;
                }
                None
            }
        };
        let mut part = TaskPart {
            files: Vec::new(),
            source: offsets.map(|offsets| SourcePart {
                node: self.head_node,
                subtask: self.head_info.subtask,
                parallelism: self.head_info.parallelism,
                offsets,
            }),
            sink,
            alignment,
            written: 0,
        };
        let (store, reports, task) = (cp.store.clone(), cp.reports.clone(), cp.index);
        tokio::spawn(async move {
            let mut failed = None;
            for w in tables {
                let Written {
                    name,
                    tables,
                    link,
                    metrics,
                } = w;
                let rows = tables.iter().map(|t| t.batch.num_rows()).sum();
                let written = if failed.is_some() {
                    Err("an earlier file failed".to_string())
                } else {
                    store
                        .put_tables(id.0, &name, tables)
                        .await
                        .map_err(|e| e.to_string())
                };
                match written {
                    Ok(entry) => {
                        part.written += entry.size;
                        let Some(link) = link else {
                            metrics.set_state_bytes(subtask, entry.size);
                            part.files.push((name, entry));
                            continue;
                        };
                        let earlier: u64 = link.earlier.iter().map(|f| f.entry.size).sum();
                        metrics.set_state_bytes(subtask, earlier + entry.size);
                        for f in link.earlier {
                            part.files.push((f.name, f.entry));
                        }
                        part.files.push((name.clone(), entry.clone()));
                        let mut chain = lock(&link.chain);
                        chain.files.push(ChainFile {
                            name,
                            entry,
                            horizon: link.horizon,
                            rows,
                        });
                        chain.in_flight = false;
                    }
                    Err(error) => {
                        if let Some(link) = link {
                            let mut chain = lock(&link.chain);
                            chain.broken = true;
                            chain.in_flight = false;
                        }
                        if failed.is_none() {
                            failed = Some(format!("writing {name}: {error}"));
                        }
                    }
                }
            }
            let _ = match failed {
                Some(error) => reports.send(Report::Failed { id, error }),
                None => reports.send(Report::Acked { task, id, part }),
            };
        });
        Ok(())
    }
}

/// The newest event time in column `column` of `batch` (a timestamp of any unit), in
/// ms since the epoch; `None` when it is all NULL or not a timestamp.
fn newest_event_time(batch: &RecordBatch, column: usize) -> Option<i64> {
    use datafusion::arrow::array::{
        TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
        TimestampSecondArray,
    };
    use datafusion::arrow::compute::max;
    let a = batch.columns().get(column)?;
    let any = a.as_any();
    if let Some(t) = any.downcast_ref::<TimestampMillisecondArray>() {
        max(t)
    } else if let Some(t) = any.downcast_ref::<TimestampMicrosecondArray>() {
        max(t).map(|v| v.div_euclid(1_000))
    } else if let Some(t) = any.downcast_ref::<TimestampNanosecondArray>() {
        max(t).map(|v| v.div_euclid(1_000_000))
    } else if let Some(t) = any.downcast_ref::<TimestampSecondArray>() {
        max(t).map(|v| v.saturating_mul(1_000))
    } else {
        None
    }
}

/// The chain's lock (a writer that panicked leaves it usable: the chain is then only
/// marked in flight, so the next checkpoint starts anew).
fn lock(chain: &std::sync::Mutex<StateChain>) -> std::sync::MutexGuard<'_, StateChain> {
    chain
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One input channel of a task: from one upstream subtask along one edge.
pub(crate) struct InputChannel {
    pub(crate) rx: Receiver<Message>,
    /// Which input of the head operator this channel feeds.
    pub(crate) input: usize,
    ended: bool,
    blocked: bool,
    idle: bool,
    watermark: Watermark,
}

impl InputChannel {
    pub(crate) fn new(rx: Receiver<Message>, input: usize) -> Self {
        InputChannel {
            rx,
            input,
            ended: false,
            blocked: false,
            idle: false,
            watermark: Watermark::MIN,
        }
    }
}

/// The input channels of a task, with watermark tracking (minimum over channels) and
/// barrier alignment (a channel that delivered barrier n is blocked until all have).
pub(crate) struct InputSet {
    pub(crate) chans: Vec<InputChannel>,
    next: usize,
    watermark: Watermark,
    pub(crate) aligning: Option<CheckpointId>,
    /// When the first barrier of the checkpoint being aligned arrived.
    align_started: Option<Instant>,
}

impl InputSet {
    pub(crate) fn new(chans: Vec<InputChannel>) -> Self {
        InputSet {
            chans,
            next: 0,
            watermark: Watermark::MIN,
            aligning: None,
            align_started: None,
        }
    }

    /// The next message from any unblocked channel, fairly; `None` when all ended.
    /// Cancellation safe (only `poll_recv` inside).
    pub(crate) async fn recv(&mut self) -> Result<Option<(usize, Message)>> {
        poll_fn(|cx| {
            let n = self.chans.len();
            let mut open = false;
            for k in 0..n {
                let i = (self.next + k) % n;
                let ch = &mut self.chans[i];
                if ch.ended {
                    continue;
                }
                open = true;
                if ch.blocked {
                    continue;
                }
                match ch.rx.poll_recv(cx) {
                    Poll::Ready(Some(m)) => {
                        self.next = (i + 1) % n;
                        return Poll::Ready(Ok(Some((i, m))));
                    }
                    Poll::Ready(None) => {
                        return Poll::Ready(Err(Error::TaskFailed {
                            task: "upstream".into(),
                            message: "an upstream task stopped without finishing".into(),
                        }));
                    }
                    Poll::Pending => {}
                }
            }
            if open {
                Poll::Pending
            } else {
                Poll::Ready(Ok(None))
            }
        })
        .await
    }

    fn min_watermark(&self) -> Watermark {
        self.chans
            .iter()
            .filter(|c| !c.ended && !c.idle)
            .map(|c| c.watermark)
            .min()
            .unwrap_or_else(|| {
                if self.all_ended() {
                    Watermark::MAX
                } else {
                    // Every open channel is idle: time goes as far as the most advanced
                    // of them has seen (as Flink's watermark valve does), never back.
                    self.chans
                        .iter()
                        .filter(|c| !c.ended)
                        .map(|c| c.watermark)
                        .max()
                        .unwrap_or(self.watermark)
                        .max(self.watermark)
                }
            })
    }

    /// `chan` went idle; returns the new watermark if that advanced it.
    pub(crate) fn on_idle(&mut self, chan: usize) -> Option<Watermark> {
        self.chans[chan].idle = true;
        self.advance()
    }

    /// `chan` delivered data: it holds the watermark back again.
    pub(crate) fn on_active(&mut self, chan: usize) {
        self.chans[chan].idle = false;
    }

    /// Whether every open channel is idle.
    pub(crate) fn all_idle(&self) -> bool {
        self.chans.iter().filter(|c| !c.ended).all(|c| c.idle)
    }

    /// Records a watermark from `chan`; returns the task's new watermark if it advanced.
    pub(crate) fn on_watermark(&mut self, chan: usize, w: Watermark) -> Option<Watermark> {
        let c = &mut self.chans[chan];
        c.idle = false;
        c.watermark = c.watermark.max(w);
        self.advance()
    }

    fn advance(&mut self) -> Option<Watermark> {
        let min = self.min_watermark();
        (min > self.watermark).then(|| {
            self.watermark = min;
            min
        })
    }

    /// Records barrier `id` from `chan`; true when every open channel has delivered it.
    pub(crate) fn on_barrier(&mut self, chan: usize, id: CheckpointId) -> bool {
        if self.aligning.is_none() {
            self.align_started = Some(Instant::now());
        }
        self.aligning = Some(id);
        self.chans[chan].blocked = true;
        self.check_aligned()
    }

    pub(crate) fn check_aligned(&mut self) -> bool {
        if self.aligning.is_none() || self.chans.iter().any(|c| !c.ended && !c.blocked) {
            return false;
        }
        for c in &mut self.chans {
            c.blocked = false;
        }
        self.aligning = None;
        true
    }

    /// How long the last alignment took (first barrier to the last).
    pub(crate) fn take_alignment(&mut self) -> Duration {
        self.align_started
            .take()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    /// Records the end of `chan`; returns the new watermark if that advanced it.
    pub(crate) fn on_end(&mut self, chan: usize) -> Option<Watermark> {
        self.chans[chan].ended = true;
        self.chans[chan].blocked = false;
        self.advance()
    }

    pub(crate) fn all_ended(&self) -> bool {
        self.chans.iter().all(|c| c.ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> (InputSet, Vec<tokio::sync::mpsc::Sender<Message>>) {
        let (txs, chans) = (0..n)
            .map(|_| {
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                (tx, InputChannel::new(rx, 0))
            })
            .unzip();
        (InputSet::new(chans), txs)
    }

    /// One channel had data and went idle before the other (which never had any)
    /// did: time still advances to what the first one saw.
    #[test]
    fn when_every_input_is_idle_time_goes_to_the_most_advanced() {
        let (mut inputs, _txs) = set(2);
        assert_eq!(inputs.on_watermark(0, Watermark(10)), None);
        assert_eq!(inputs.on_idle(0), None);
        assert_eq!(inputs.on_idle(1), Some(Watermark(10)));
        // The other order advances too, as it always did.
        let (mut inputs, _txs) = set(2);
        assert_eq!(inputs.on_idle(1), None);
        assert_eq!(inputs.on_watermark(0, Watermark(10)), Some(Watermark(10)));
    }
}
