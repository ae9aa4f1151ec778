//! The regular streaming join: both inputs' rows are kept in state, hashed by the
//! equi-join key; a new row on one side is joined with every stored row of the other
//! side (and the non-equi condition), then stored. Outer joins emit a row padded with
//! NULLs while a row has no partner, and retract it (`-D`) when the first partner comes.
//! Updating inputs are supported: a retracted row (`-U`/`-D`) is removed from state and
//! its joined rows are retracted.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int8Array, Int64Array, RecordBatch, UInt32Array, new_null_array,
};
use datafusion::arrow::compute::{interleave, take};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::error::Result as DfResult;
use datafusion::physical_plan::PhysicalExpr;
use sluice_runtime::{Operator, OperatorContext, OperatorFactory, Result, StateChanges, TaskInfo};
use sluice_state::{DEFAULT_KEY_GROUPS, StateTableKind, StateTableSpec, TableSnapshot};
use sluice_types::{RowKind, Watermark, kinds_of, without_row_kind};

/// Which rows a join keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Only matched pairs.
    Inner,
    /// Every left row, NULL-padded while unmatched.
    Left,
    /// Every right row, NULL-padded while unmatched.
    Right,
    /// Every row of both sides.
    Full,
    /// Rows of the given side (0 = left) that have at least one partner.
    Semi(usize),
    /// Rows of the given side that have no partner.
    Anti(usize),
}

impl JoinKind {
    fn keeps_unmatched(self, side: usize) -> bool {
        matches!(
            (self, side),
            (JoinKind::Left, 0) | (JoinKind::Right, 1) | (JoinKind::Full, _)
        )
    }

    /// Whether the output is a changelog even for append-only inputs.
    pub fn updating(self) -> bool {
        !matches!(self, JoinKind::Inner | JoinKind::Semi(_))
    }

    /// For semi and anti joins: the side whose rows are output, and whether a row is
    /// visible when it has partners (semi) or when it has none (anti).
    fn filtering(self) -> Option<(usize, bool)> {
        match self {
            JoinKind::Semi(s) => Some((s, true)),
            JoinKind::Anti(s) => Some((s, false)),
            _ => None,
        }
    }
}

/// Factory of [`StreamingJoin`] subtasks.
#[derive(Debug, Clone)]
pub struct StreamingJoin {
    kind: JoinKind,
    /// Key columns of each side's input batches.
    keys: [Vec<usize>; 2],
    /// Columns of each side that belong to the output (a prefix of the input).
    widths: [usize; 2],
    /// The non-equi condition over the joined row (left columns then right columns).
    filter: Option<Arc<dyn PhysicalExpr>>,
    /// The joined row's schema: left columns then right columns (without row kind).
    joined: SchemaRef,
    /// The output schema (with the row kind when the output is updating).
    output: SchemaRef,
    /// Types of the key columns (the same on both sides).
    key_types: Vec<DataType>,
    description: String,
    /// `'table.exec.state.ttl'` in ms: stored rows older than this are dropped.
    ttl: Option<i64>,
    /// Time bounds of an interval join.
    interval: Option<IntervalBounds>,
}

impl StreamingJoin {
    /// A join; see the field docs.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: JoinKind,
        keys: [Vec<usize>; 2],
        widths: [usize; 2],
        filter: Option<Arc<dyn PhysicalExpr>>,
        joined: SchemaRef,
        output: SchemaRef,
        key_types: Vec<DataType>,
        description: String,
    ) -> Self {
        StreamingJoin {
            kind,
            keys,
            widths,
            filter,
            joined,
            output,
            key_types,
            description,
            ttl: None,
            interval: None,
        }
    }

    /// Drops stored rows `ttl_ms` after they were stored (Flink's state TTL).
    pub fn with_ttl(mut self, ttl_ms: Option<i64>) -> Self {
        self.ttl = ttl_ms.filter(|t| *t > 0);
        self
    }

    /// An interval join: rows leave the state once the watermark shows that no future
    /// row of the other side can match them.
    pub fn with_interval(mut self, bounds: IntervalBounds) -> Self {
        self.interval = Some(bounds);
        self
    }
}

/// One stored row: where it is, and how many partners it has now.
#[derive(Debug, Clone, Copy)]
struct Entry {
    batch: u32,
    row: u32,
    matches: u32,
}

/// A join key in Arrow's row format, shared by the key map and the expiry queue.
type Key = Arc<[u8]>;

/// A stored row in the expiry queue: (created, time, key, batch, row).
type QueueEntry = (i64, i64, Key, u32, u32);

#[derive(Default)]
struct SideState {
    batches: Vec<RecordBatch>,
    /// Rows of each batch still in state; a batch with none is released.
    live: Vec<u32>,
    by_key: datafusion::common::HashMap<Key, Vec<Entry>>,
    /// Stored rows in the order they came (when rows can expire): (created, time, key,
    /// batch, row). Expiry pops from the front, so a sweep costs what it removes.
    queue: std::collections::VecDeque<QueueEntry>,
    /// How many of the queue's last rows came since the last incremental snapshot.
    fresh: usize,
}

/// The time bounds of an interval join: `lo <= left.time - right.time <= hi`, with
/// each side's time column. Rows that no future row of the other side can match
/// (given the watermark) leave the state.
#[derive(Debug, Clone, Copy)]
pub struct IntervalBounds {
    /// Input column of each side's event time.
    pub time: [usize; 2],
    /// Lower bound of left.time - right.time, in ms.
    pub lo: i64,
    /// Upper bound of left.time - right.time, in ms.
    pub hi: i64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct JoinTask {
    f: StreamingJoin,
    converters: [RowConverter; 2],
    state: [SideState; 2],
    /// When the state was last swept for the TTL.
    last_sweep: i64,
    /// The newest watermark.
    watermark: i64,
    /// A stored row was retracted: its row is gone from the middle of the queue, so
    /// snapshots are whole from then on.
    retracted: bool,
}

impl SideState {
    /// Stores `entry` under `key`; returns the shared key.
    fn store(&mut self, key: &[u8], entry: Entry) -> Key {
        if let Some((k, list)) = self.by_key.get_key_value_mut(key) {
            list.push(entry);
            return k.clone();
        }
        let k: Key = key.into();
        self.by_key.insert(k.clone(), vec![entry]);
        k
    }
}

/// `n` rows of stored batch `b` left the state; a batch with none left is freed.
fn release(state: &mut SideState, b: usize, n: u32) {
    if let Some(live) = state.live.get_mut(b) {
        *live = live.saturating_sub(n);
        if *live == 0
            && let Some(batch) = state.batches.get_mut(b)
            && batch.num_rows() > 0
        {
            *batch = batch.slice(0, 0);
        }
    }
}

/// Output rows being built: (left ref, right ref, kind); a ref is (batch, row) into
/// a list of source batches per side, `None` for NULL padding.
#[derive(Default)]
struct Out {
    left: Vec<Option<(usize, usize)>>,
    right: Vec<Option<(usize, usize)>>,
    kinds: Vec<RowKind>,
}

impl JoinTask {
    fn key_rows(&self, side: usize, batch: &RecordBatch) -> DfResult<datafusion::arrow::row::Rows> {
        let cols: Vec<ArrayRef> = self.f.keys[side]
            .iter()
            .map(|k| batch.column(*k).clone())
            .collect();
        Ok(self.converters[side].convert_columns(&cols)?)
    }

    fn process_side(&mut self, side: usize, batch: RecordBatch) -> DfResult<Option<RecordBatch>> {
        let other = 1 - side;
        let kinds = kinds_of(&batch);
        let data = without_row_kind(&batch);
        let data = data.project(&(0..self.f.widths[side]).collect::<Vec<_>>())?;
        let keys = self.key_rows(side, &batch)?;
        let key_nulls: Vec<bool> = (0..batch.num_rows())
            .map(|r| {
                self.f.keys[side]
                    .iter()
                    .any(|k| batch.column(*k).is_null(r))
            })
            .collect();
        // Candidate pairs: (input row, other side entry index in its key list).
        let mut cand_row = Vec::new();
        let mut cand_ref: Vec<(usize, usize)> = Vec::new();
        let mut cand_key: Vec<Key> = Vec::new();
        let mut cand_pos = Vec::new();
        for (r, null_key) in key_nulls.iter().enumerate() {
            if *null_key {
                continue;
            }
            if let Some((key, list)) = self.state[other].by_key.get_key_value(keys.row(r).as_ref())
            {
                for (pos, e) in list.iter().enumerate() {
                    cand_row.push(r);
                    cand_ref.push((e.batch as usize, e.row as usize));
                    cand_pos.push(pos);
                    cand_key.push(key.clone());
                }
            }
        }
        // Evaluate the non-equi condition over the candidate pairs.
        let pass: Vec<bool> = match &self.f.filter {
            Some(filter) if !cand_row.is_empty() => {
                let joined = self.pairs_batch(side, &data, &cand_row, &cand_ref)?;
                let v = filter.evaluate(&joined)?.into_array(joined.num_rows())?;
                let b = v
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .cloned()
                    .unwrap_or_else(|| BooleanArray::from(vec![false; joined.num_rows()]));
                (0..b.len()).map(|i| b.is_valid(i) && b.value(i)).collect()
            }
            _ => vec![true; cand_row.len()],
        };
        let mut out = Out::default();
        let this_batch = self.state[side].batches.len();
        let mut matched_rows = vec![0u32; batch.num_rows()];
        let emit = |out: &mut Out,
                    mine: Option<(usize, usize)>,
                    theirs: Option<(usize, usize)>,
                    kind: RowKind| {
            let (l, r) = if side == 0 {
                (mine, theirs)
            } else {
                (theirs, mine)
            };
            out.left.push(l);
            out.right.push(r);
            out.kinds.push(kind);
        };
        let mine_ref = |r: usize| Some((usize::MAX, r));
        for (i, &r) in cand_row.iter().enumerate() {
            if !pass[i] {
                continue;
            }
            matched_rows[r] += 1;
            let accumulate = kinds[r].is_accumulate();
            // The partner's match count changes; an outer partner's padded row flips.
            let key = &cand_key[i];
            let pos = cand_pos[i];
            let partner = {
                let list = self.state[other]
                    .by_key
                    .get_mut(key)
                    .expect("candidate keys are in state");
                &mut list[pos]
            };
            let theirs = Some((partner.batch as usize, partner.row as usize));
            if let Some((s, want)) = self.f.kind.filtering() {
                if side != s {
                    let before = (partner.matches > 0) == want;
                    if accumulate {
                        partner.matches += 1;
                    } else {
                        partner.matches = partner.matches.saturating_sub(1);
                    }
                    let after = (partner.matches > 0) == want;
                    if before != after {
                        let k = if after {
                            RowKind::Insert
                        } else {
                            RowKind::Delete
                        };
                        emit(&mut out, None, theirs, k);
                    }
                }
                continue;
            }
            if accumulate {
                if partner.matches == 0 && self.f.kind.keeps_unmatched(other) {
                    emit(&mut out, None, theirs, RowKind::Delete);
                }
                partner.matches += 1;
                emit(&mut out, mine_ref(r), theirs, kinds[r]);
            } else {
                partner.matches = partner.matches.saturating_sub(1);
                emit(&mut out, mine_ref(r), theirs, kinds[r]);
                if partner.matches == 0 && self.f.kind.keeps_unmatched(other) {
                    emit(&mut out, None, theirs, RowKind::Insert);
                }
            }
        }
        // Unmatched rows of a preserved side, and state updates.
        let mut retracted = Vec::new();
        let times = match &self.f.interval {
            Some(b) => Some(crate::time::millis(batch.column(b.time[side]))?),
            None => None,
        };
        let created = if self.f.ttl.is_some() { now_ms() } else { 0 };
        let mut stored = 0u32;
        for r in 0..batch.num_rows() {
            let accumulate = kinds[r].is_accumulate();
            if let Some((s, want)) = self.f.kind.filtering() {
                if side == s && (matched_rows[r] > 0) == want {
                    emit(
                        &mut out,
                        mine_ref(r),
                        None,
                        if accumulate {
                            RowKind::Insert
                        } else {
                            RowKind::Delete
                        },
                    );
                }
            } else if self.f.kind.keeps_unmatched(side) && matched_rows[r] == 0 {
                emit(
                    &mut out,
                    mine_ref(r),
                    None,
                    if accumulate {
                        RowKind::Insert
                    } else {
                        RowKind::Delete
                    },
                );
            }
            if key_nulls[r] {
                continue;
            }
            if accumulate {
                let entry = Entry {
                    batch: this_batch as u32,
                    row: r as u32,
                    matches: matched_rows[r],
                };
                let key = self.state[side].store(keys.row(r).as_ref(), entry);
                if self.f.ttl.is_some() || self.f.interval.is_some() {
                    let time = times
                        .as_ref()
                        .and_then(|t| t.is_valid(r).then(|| t.value(r)))
                        .unwrap_or(i64::MIN);
                    self.state[side].queue.push_back((
                        created,
                        time,
                        key,
                        this_batch as u32,
                        r as u32,
                    ));
                    self.state[side].fresh += 1;
                }
                stored += 1;
            } else {
                retracted.push(r);
            }
        }
        self.state[side].batches.push(data.clone());
        self.state[side].live.push(stored);
        self.retracted |= !retracted.is_empty();
        for r in retracted {
            self.remove(side, &data, r, keys.row(r).as_ref())?;
        }
        if out.kinds.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.build(side, &data, &out)?))
    }

    /// Removes the stored row equal to `data[r]` under `key`.
    fn remove(&mut self, side: usize, data: &RecordBatch, r: usize, key: &[u8]) -> DfResult<()> {
        let Some(list) = self.state[side].by_key.get_mut(key) else {
            return Ok(());
        };
        let batches = &self.state[side].batches;
        let found = list.iter().position(|e| {
            let b = &batches[e.batch as usize];
            (0..data.num_columns()).all(|c| {
                let x = datafusion::common::ScalarValue::try_from_array(data.column(c), r);
                let y =
                    datafusion::common::ScalarValue::try_from_array(b.column(c), e.row as usize);
                matches!((x, y), (Ok(x), Ok(y)) if x == y)
            })
        });
        if let Some(i) = found {
            let e = list.swap_remove(i);
            if list.is_empty() {
                self.state[side].by_key.remove(key);
            }
            release(&mut self.state[side], e.batch as usize, 1);
        }
        Ok(())
    }

    /// Drops stored rows that expired (TTL) or that no future row can match (interval
    /// join, given watermark `wm`).
    fn sweep(&mut self, wm: Option<i64>) {
        let ttl_limit = self.f.ttl.map(|t| now_ms().saturating_sub(t));
        let time_limit = match (self.f.interval, wm) {
            (Some(b), Some(w)) if w > i64::MIN => {
                [Some(w.saturating_add(b.lo)), Some(w.saturating_sub(b.hi))]
            }
            _ => [None, None],
        };
        for (side, state) in self.state.iter_mut().enumerate() {
            let limit = time_limit[side];
            if ttl_limit.is_none() && limit.is_none() {
                continue;
            }
            // Rows come roughly in time order: pop while the oldest has expired.
            while let Some((created, time, _, _, _)) = state.queue.front() {
                let expired =
                    ttl_limit.is_some_and(|l| *created < l) || limit.is_some_and(|l| *time < l);
                if !expired {
                    break;
                }
                let Some((_, _, key, batch, row)) = state.queue.pop_front() else {
                    break;
                };
                state.fresh = state.fresh.min(state.queue.len());
                let mut found = false;
                if let Some(list) = state.by_key.get_mut(&key) {
                    if let Some(i) = list.iter().position(|e| e.batch == batch && e.row == row) {
                        list.swap_remove(i);
                        found = true;
                    }
                    if list.is_empty() {
                        state.by_key.remove(&key);
                    }
                }
                if found {
                    release(state, batch as usize, 1);
                }
            }
        }
    }

    /// Columns of one side for refs into its stored batches (or `current` for
    /// `usize::MAX`), NULL where a ref is `None`.
    fn side_columns(
        &self,
        side: usize,
        current: Option<&RecordBatch>,
        refs: &[Option<(usize, usize)>],
    ) -> DfResult<Vec<ArrayRef>> {
        let schema_fields = if side == 0 {
            0..self.f.widths[0]
        } else {
            self.f.widths[0]..self.f.widths[0] + self.f.widths[1]
        };
        // Only the batches the refs point to take part (the state may hold thousands).
        let mut sources: Vec<&RecordBatch> = Vec::new();
        let mut slot: HashMap<usize, usize> = HashMap::new();
        let mut idx: Vec<(usize, usize)> = Vec::with_capacity(refs.len());
        let mut nulls = Vec::new();
        for (i, r) in refs.iter().enumerate() {
            let Some((b, row)) = *r else {
                nulls.push(i);
                idx.push((0, 0));
                continue;
            };
            let batch = if b == usize::MAX {
                current
            } else {
                self.state[side].batches.get(b)
            };
            let Some(batch) = batch else {
                return Err(datafusion::error::DataFusionError::Internal(
                    "a join row refers to a batch that is not in state".into(),
                ));
            };
            let s = *slot.entry(b).or_insert_with(|| {
                sources.push(batch);
                sources.len() - 1
            });
            idx.push((s, row));
        }
        let null_idx = sources.len();
        for i in nulls {
            idx[i] = (null_idx, 0);
        }
        let mut cols = Vec::new();
        for (c, field_idx) in schema_fields.enumerate() {
            let dt = self.f.joined.field(field_idx).data_type();
            let null = new_null_array(dt, 1);
            let mut arrays: Vec<&dyn Array> =
                sources.iter().map(|b| b.column(c).as_ref()).collect();
            arrays.push(null.as_ref());
            cols.push(interleave(&arrays, &idx)?);
        }
        Ok(cols)
    }

    fn pairs_batch(
        &self,
        side: usize,
        data: &RecordBatch,
        rows: &[usize],
        theirs: &[(usize, usize)],
    ) -> DfResult<RecordBatch> {
        let mine_idx = UInt32Array::from(rows.iter().map(|r| *r as u32).collect::<Vec<_>>());
        let mine: Vec<ArrayRef> = data
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &mine_idx, None))
            .collect::<std::result::Result<_, _>>()?;
        let refs: Vec<Option<(usize, usize)>> = theirs.iter().map(|t| Some(*t)).collect();
        let other = self.side_columns(1 - side, None, &refs)?;
        let cols = if side == 0 {
            [mine, other].concat()
        } else {
            [other, mine].concat()
        };
        Ok(RecordBatch::try_new(self.f.joined.clone(), cols)?)
    }

    fn build(&self, side: usize, current: &RecordBatch, out: &Out) -> DfResult<RecordBatch> {
        let (lcur, rcur) = if side == 0 {
            (Some(current), None)
        } else {
            (None, Some(current))
        };
        // The current batch is already pushed into state: refs to usize::MAX point to
        // it through `current`.
        let mut cols = match self.f.kind.filtering() {
            Some((0, _)) => self.side_columns(0, lcur, &out.left)?,
            Some(_) => self.side_columns(1, rcur, &out.right)?,
            None => {
                let mut c = self.side_columns(0, lcur, &out.left)?;
                c.extend(self.side_columns(1, rcur, &out.right)?);
                c
            }
        };
        if self.f.output.fields().len() > cols.len() {
            cols.push(Arc::new(Int8Array::from_iter_values(
                out.kinds.iter().map(|k| *k as i8),
            )));
        }
        Ok(RecordBatch::try_new(self.f.output.clone(), cols)?)
    }
}

impl Operator for JoinTask {
    fn process(
        &mut self,
        input: usize,
        batch: RecordBatch,
        _ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        if let Some(b) = self.process_side(input.min(1), batch)? {
            out.push(b);
        }
        if let Some(ttl) = self.f.ttl {
            let now = now_ms();
            if now - self.last_sweep >= (ttl / 10).max(1) {
                self.last_sweep = now;
                self.sweep(None);
            }
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        _ctx: &mut OperatorContext,
        _out: &mut Vec<RecordBatch>,
    ) -> Result<Option<Watermark>> {
        if self.f.interval.is_some() && watermark < Watermark::MAX {
            self.watermark = self.watermark.max(watermark.0);
            self.sweep(Some(watermark.0));
        }
        Ok(Some(watermark))
    }

    /// `join_left`/`join_right`: each side's stored rows with their key columns, how
    /// many partners they have, when they were stored (TTL) and their time (interval
    /// joins).
    fn snapshot(&mut self) -> Result<Vec<TableSnapshot>> {
        let mut tables = Vec::new();
        for side in 0..2 {
            let state = &self.state[side];
            let times: HashMap<(u32, u32), (i64, i64)> = state
                .queue
                .iter()
                .map(|(c, t, _, b, r)| ((*b, *r), (*c, *t)))
                .collect();
            let rows: Vec<StoredRow> = state
                .by_key
                .iter()
                .flat_map(|(k, list)| {
                    let times = &times;
                    list.iter().map(move |e| {
                        let meta = times.get(&(e.batch, e.row)).copied();
                        StoredRow {
                            key: k,
                            matches: e.matches,
                            created: meta.map(|m| m.0),
                            time: meta.map(|m| m.1),
                            at: (e.batch as usize, e.row as usize),
                        }
                    })
                })
                .collect();
            tables.push(self.side_table(side, &rows)?);
        }
        Ok(tables)
    }

    /// Incremental for inner interval joins: rows are only added, and leave by time.
    fn incremental(&self) -> bool {
        self.f.kind == JoinKind::Inner
            && self.f.interval.is_some()
            && self.f.ttl.is_none()
            && !self.retracted
    }

    /// The changes are the rows stored since the last checkpoint (the ones that did
    /// not expire meanwhile); they matter until the watermark expires them.
    fn snapshot_changes(&mut self, full: bool) -> Result<StateChanges> {
        let Some(bounds) = self.f.interval else {
            return Err(sluice_state::Error::Mismatch(
                "only interval joins snapshot incrementally".into(),
            )
            .into());
        };
        // The watermark that expires a row of each side at time t (see `sweep`).
        let dead_at = |side: usize, t: i64| {
            if side == 0 {
                t.saturating_sub(bounds.lo).saturating_add(1)
            } else {
                t.saturating_add(bounds.hi).saturating_add(1)
            }
        };
        // Every row of an incremental join is in its side's queue exactly once (rows
        // only leave through it): everything is the whole queue, the changes its tail.
        let mut horizon = i64::MIN;
        let mut tables = Vec::new();
        for side in 0..2 {
            let state = &self.state[side];
            let start = if full {
                0
            } else {
                state.queue.len().saturating_sub(state.fresh)
            };
            // By stored batch: the rows of a batch follow each other in the queue, but
            // for a restored queue (sorted by time), which is regrouped.
            let mut runs: Vec<Vec<&QueueEntry>> = Vec::new();
            let mut in_order = true;
            for q in state.queue.range(start..) {
                horizon = horizon.max(dead_at(side, q.1));
                match runs.last_mut() {
                    Some(run) if run[0].3 == q.3 => run.push(q),
                    last => {
                        in_order &= last.is_none_or(|run| run[0].3 < q.3);
                        runs.push(vec![q]);
                    }
                }
            }
            if !in_order {
                let mut by_batch: std::collections::BTreeMap<u32, Vec<&QueueEntry>> =
                    std::collections::BTreeMap::new();
                for q in runs.into_iter().flatten() {
                    by_batch.entry(q.3).or_default().push(q);
                }
                runs = by_batch.into_values().collect();
            }
            for mut run in runs {
                if !run.is_sorted_by_key(|q| q.4) {
                    run.sort_by_key(|q| q.4);
                }
                tables.push(self.run_table(side, &run)?);
            }
        }
        for state in &mut self.state {
            state.fresh = 0;
        }
        Ok(StateChanges {
            tables,
            horizon,
            progress: self.watermark,
            live_rows: self.state.iter().map(|s| s.queue.len()).sum(),
        })
    }

    fn restore(&mut self, tables: Vec<TableSnapshot>) -> Result<()> {
        for t in tables {
            let Some(side) = JOIN_TABLES.iter().position(|n| *n == t.name) else {
                return Err(sluice_state::Error::unexpected_table("join", &t.name).into());
            };
            let data = t.data()?;
            let nk = self.f.keys[side].len();
            if data.num_columns() != nk + 3 + self.f.widths[side] || data.num_rows() == 0 {
                if data.num_rows() == 0 {
                    continue;
                }
                return Err(sluice_state::Error::Mismatch(
                    "the join's state has a different shape than the query".into(),
                )
                .into());
            }
            let keys = self.converters[side].convert_columns(&data.columns()[..nk])?;
            let int = |c: usize| crate::time::millis(data.column(c));
            let matches = data
                .column(nk)
                .as_any()
                .downcast_ref::<UInt32Array>()
                .cloned()
                .ok_or_else(|| sluice_state::Error::Mismatch("join partner counts".into()))?;
            let created = int(nk + 1)?;
            let times = int(nk + 2)?;
            let rows = data.project(&(nk + 3..data.num_columns()).collect::<Vec<_>>())?;
            let state = &mut self.state[side];
            let b = state.batches.len() as u32;
            state.batches.push(rows);
            state.live.push(data.num_rows() as u32);
            for r in 0..data.num_rows() {
                let entry = Entry {
                    batch: b,
                    row: r as u32,
                    matches: matches.value(r),
                };
                let key = state.store(keys.row(r).as_ref(), entry);
                if created.is_valid(r) || times.is_valid(r) {
                    state
                        .queue
                        .push_back((created.value(r), times.value(r), key, b, r as u32));
                }
            }
        }
        // Expiry pops from the front: oldest first.
        let by_time = self.f.interval.is_some();
        for state in &mut self.state {
            state
                .queue
                .make_contiguous()
                .sort_by_key(|q| if by_time { (q.1, q.0) } else { (q.0, q.1) });
        }
        Ok(())
    }

    fn state_tables(&self) -> Vec<StateTableSpec> {
        JOIN_TABLES
            .iter()
            .enumerate()
            .map(|(i, name)| StateTableSpec {
                name: (*name).to_string(),
                kind: StateTableKind::List,
                schema: Arc::new(
                    self.f
                        .joined
                        .project(&if i == 0 {
                            (0..self.f.widths[0]).collect::<Vec<_>>()
                        } else {
                            (self.f.widths[0]..self.f.widths[0] + self.f.widths[1]).collect()
                        })
                        .unwrap_or_else(|_| datafusion::arrow::datatypes::Schema::empty()),
                ),
                key_columns: self.f.keys[i].len(),
            })
            .collect()
    }
}

const JOIN_TABLES: [&str; 2] = ["join_left", "join_right"];

/// A stored row as a snapshot writes it.
struct StoredRow<'a> {
    key: &'a Key,
    matches: u32,
    created: Option<i64>,
    time: Option<i64>,
    /// (batch, row) in the side's stored batches.
    at: (usize, usize),
}

impl JoinTask {
    /// A snapshot table of queued rows that all sit in one stored batch: its columns
    /// as they are when the run is the whole batch (no copy), else the rows taken.
    fn run_table(&self, side: usize, run: &[&QueueEntry]) -> Result<TableSnapshot> {
        let Some(b) = run.first().map(|q| q.3 as usize) else {
            return Err(sluice_state::Error::Mismatch("an empty run of join rows".into()).into());
        };
        let Some(batch) = self.state[side].batches.get(b) else {
            return Err(sluice_state::Error::Mismatch(
                "a join row refers to a batch that is not in state".into(),
            )
            .into());
        };
        let whole =
            run.len() == batch.num_rows() && run.iter().enumerate().all(|(i, q)| q.4 as usize == i);
        let values: Vec<ArrayRef> = if whole {
            batch.columns().to_vec()
        } else {
            let rows = UInt32Array::from_iter_values(run.iter().map(|q| q.4));
            batch
                .columns()
                .iter()
                .map(|c| take(c.as_ref(), &rows, None))
                .collect::<std::result::Result<_, _>>()?
        };
        let keys = &self.f.keys[side];
        let cols: Vec<(String, ArrayRef)> = if keys.iter().all(|k| *k < values.len()) {
            keys.iter()
                .enumerate()
                .map(|(i, k)| (format!("__key{i}"), values[*k].clone()))
                .collect()
        } else {
            self.key_columns(side, run.iter().map(|q| &q.2))?
        };
        let meta: [ArrayRef; 3] = [
            Arc::new(UInt32Array::from(vec![0; run.len()])),
            Arc::new(Int64Array::from_iter_values(run.iter().map(|q| q.0))),
            Arc::new(Int64Array::from_iter_values(run.iter().map(|q| q.1))),
        ];
        self.join_table(side, cols, meta, values)
    }

    /// Key columns (`__key0`, …) from stored keys in row format.
    fn key_columns<'a>(
        &self,
        side: usize,
        keys: impl Iterator<Item = &'a Key>,
    ) -> Result<Vec<(String, ArrayRef)>> {
        let parser = self.converters[side].parser();
        Ok(self.converters[side]
            .convert_rows(keys.map(|k| parser.parse(k)))?
            .into_iter()
            .enumerate()
            .map(|(i, a)| (format!("__key{i}"), a))
            .collect())
    }

    /// A `join_left`/`join_right` table: the key columns, then partner counts, when
    /// each row was stored and its time (`meta`), then the rows' columns.
    fn join_table(
        &self,
        side: usize,
        mut cols: Vec<(String, ArrayRef)>,
        meta: [ArrayRef; 3],
        values: Vec<ArrayRef>,
    ) -> Result<TableSnapshot> {
        let nk = cols.len();
        for (name, a) in ["__matches", "__created", "__time"].into_iter().zip(meta) {
            cols.push((name.into(), a));
        }
        let offset = if side == 0 { 0 } else { self.f.widths[0] };
        for (i, a) in values.into_iter().enumerate() {
            cols.push((self.f.joined.field(offset + i).name().clone(), a));
        }
        Ok(TableSnapshot::keyed(
            JOIN_TABLES[side],
            cols,
            nk,
            DEFAULT_KEY_GROUPS,
        )?)
    }

    /// `join_left`/`join_right`: each side's stored rows with their key columns, how
    /// many partners they have, when they were stored (TTL) and their time (interval
    /// joins).
    fn side_table(&self, side: usize, rows: &[StoredRow]) -> Result<TableSnapshot> {
        let cols = self.key_columns(side, rows.iter().map(|r| r.key))?;
        let meta: [ArrayRef; 3] = [
            Arc::new(UInt32Array::from_iter_values(
                rows.iter().map(|r| r.matches),
            )),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.created))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.time))),
        ];
        let refs: Vec<Option<(usize, usize)>> = rows.iter().map(|r| Some(r.at)).collect();
        let values = self.side_columns(side, None, &refs)?;
        self.join_table(side, cols, meta, values)
    }
}

impl OperatorFactory for StreamingJoin {
    fn name(&self) -> String {
        "Join".into()
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        let conv = || {
            RowConverter::new(
                self.key_types
                    .iter()
                    .map(|t| SortField::new(t.clone()))
                    .collect(),
            )
        };
        Ok(Box::new(JoinTask {
            f: self.clone(),
            converters: [conv()?, conv()?],
            state: Default::default(),
            last_sweep: now_ms(),
            watermark: i64::MIN,
            retracted: false,
        }))
    }

    fn stateless(&self) -> bool {
        false
    }
}
