//! The lookup join (`JOIN t FOR SYSTEM_TIME AS OF o.proc_time`): each probe row is joined
//! with the rows an external table (a database, a key-value store) holds for its key
//! when the row arrives. The table is not read as a stream: each batch asks it for the
//! distinct keys it needs that are not in the cache, in one request.
//!
//! The table's client runs on a thread of its own (with its own small async runtime),
//! so the synchronous operator waits for a lookup without holding up the tasks of the
//! job's runtime. A failed lookup is tried again with a growing wait, up to the table's
//! `max_retries`; then the job fails (and restarts from its last checkpoint). The join
//! keeps no state: the cache is only a cache, and a restart starts it empty.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::DataFusionError;
use datafusion::error::Result as DfResult;
use datafusion::physical_plan::PhysicalExpr;
use sluice_runtime::{
    Error, LookupCaching, LookupFactory, LookupTable, Operator, OperatorContext, OperatorFactory,
    Result, TaskInfo,
};
use sluice_types::ErrorKind;
use tracing::warn;

use crate::stateless::{eval_isolating, eval_to_array};

/// Factory of [`LookupJoin`] subtasks.
#[derive(Clone)]
pub struct LookupJoin {
    table: Arc<dyn LookupFactory>,
    /// Probe rows without a match are kept, NULL-padded (LEFT JOIN).
    outer: bool,
    /// One expression per key column of the table, over the probe rows.
    probe_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// The table's columns that belong to the output, in output order.
    right_values: Vec<usize>,
    /// A condition on the table's rows alone: rows that fail it match nothing.
    right_filter: Option<Arc<dyn PhysicalExpr>>,
    /// The rest of the join condition, over the joined row.
    filter: Option<Arc<dyn PhysicalExpr>>,
    /// Output schema: probe columns then the table's columns.
    output: SchemaRef,
    description: String,
}

impl LookupJoin {
    /// A lookup join; see the field docs.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        table: Arc<dyn LookupFactory>,
        outer: bool,
        probe_keys: Vec<Arc<dyn PhysicalExpr>>,
        right_values: Vec<usize>,
        right_filter: Option<Arc<dyn PhysicalExpr>>,
        filter: Option<Arc<dyn PhysicalExpr>>,
        output: SchemaRef,
        description: String,
    ) -> Self {
        LookupJoin {
            table,
            outer,
            probe_keys,
            right_values,
            right_filter,
            filter,
            output,
            description,
        }
    }
}

impl OperatorFactory for LookupJoin {
    fn name(&self) -> String {
        format!("LookupJoin: {}", self.table.name())
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn create(&self, task: &TaskInfo) -> Result<Box<dyn Operator>> {
        let schema = self.table.schema();
        let key_columns = self.table.key_columns();
        let key_types: Vec<DataType> = key_columns
            .iter()
            .map(|&i| schema.field(i).data_type().clone())
            .collect();
        let converter = RowConverter::new(key_types.iter().cloned().map(SortField::new).collect())?;
        let key_schema = Arc::new(Schema::new(
            key_columns
                .iter()
                .map(|&i| schema.field(i).clone().with_nullable(true))
                .collect::<Vec<Field>>(),
        ));
        let caching = self.table.caching();
        let worker = Worker::start(
            self.table.create(task)?,
            task.clone(),
            self.table.name(),
            caching.max_retries,
        )?;
        Ok(Box::new(LookupJoinTask {
            def: self.clone(),
            schema,
            key_columns,
            key_types,
            key_schema,
            converter,
            cache: Cache::new(caching),
            worker,
        }))
    }
}

/// One subtask of a lookup join.
struct LookupJoinTask {
    def: LookupJoin,
    /// The table's schema (what lookups return).
    schema: SchemaRef,
    key_columns: Vec<usize>,
    key_types: Vec<DataType>,
    key_schema: SchemaRef,
    converter: RowConverter,
    cache: Cache,
    worker: Worker,
}

impl LookupJoinTask {
    /// The probe rows with their key values appended (cast to the table's key types).
    fn with_keys(&self, batch: &RecordBatch) -> DfResult<RecordBatch> {
        let mut columns = batch.columns().to_vec();
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for (i, (expr, ty)) in self.def.probe_keys.iter().zip(&self.key_types).enumerate() {
            let a = eval_to_array(expr, batch)?;
            let a = if a.data_type() == ty {
                a
            } else {
                cast(&a, ty)?
            };
            fields.push(Field::new(
                format!("__sluice_lookup_key{i}"),
                ty.clone(),
                true,
            ));
            columns.push(a);
        }
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?)
    }

    fn join(&mut self, batch: &RecordBatch, keys: &[ArrayRef]) -> Result<Option<RecordBatch>> {
        let now = Instant::now();
        let rows = self.converter.convert_columns(keys)?;
        // Each probe row's distinct key (None: a NULL in the key matches nothing).
        let mut slots: HashMap<&[u8], usize> = HashMap::new();
        let mut slot_of: Vec<Option<usize>> = Vec::with_capacity(batch.num_rows());
        let mut distinct: Vec<usize> = Vec::new();
        for i in 0..batch.num_rows() {
            if keys.iter().any(|k| k.is_null(i)) {
                slot_of.push(None);
                continue;
            }
            let n = slots.len();
            let slot = *slots.entry(rows.row(i).data()).or_insert_with(|| {
                distinct.push(i);
                n
            });
            slot_of.push(Some(slot));
        }
        // The table's rows per distinct key: from the cache, or looked up.
        let mut parts: Vec<RecordBatch> = Vec::new();
        let mut matches: Vec<Vec<u32>> = vec![Vec::new(); distinct.len()];
        let mut base = 0u32;
        let mut missing: Vec<usize> = Vec::new();
        for (slot, &i) in distinct.iter().enumerate() {
            match self.cache.get(rows.row(i).data(), now) {
                Some(cached) => {
                    let n = cached.num_rows() as u32;
                    matches[slot] = (base..base + n).collect();
                    base += n;
                    if n > 0 {
                        parts.push(cached);
                    }
                }
                None => missing.push(slot),
            }
        }
        if !missing.is_empty() {
            let idx = UInt32Array::from_iter_values(missing.iter().map(|&s| distinct[s] as u32));
            let wanted: Vec<ArrayRef> = keys
                .iter()
                .map(|k| take(k.as_ref(), &idx, None))
                .collect::<std::result::Result<_, _>>()?;
            let wanted = RecordBatch::try_new(self.key_schema.clone(), wanted)?;
            let found = self.worker.call(wanted)?;
            if found.schema().fields().len() != self.schema.fields().len() {
                return Err(Error::Operator {
                    operator: self.def.name(),
                    message: format!(
                        "the lookup returned {} columns, not {}",
                        found.num_columns(),
                        self.schema.fields().len()
                    ),
                });
            }
            let found_keys: Vec<ArrayRef> = self
                .key_columns
                .iter()
                .map(|&c| found.column(c).clone())
                .collect();
            let found_rows = self.converter.convert_columns(&found_keys)?;
            let mut by_key: HashMap<&[u8], Vec<u32>> = HashMap::new();
            for r in 0..found.num_rows() {
                if found_keys.iter().any(|k| k.is_null(r)) {
                    continue;
                }
                by_key
                    .entry(found_rows.row(r).data())
                    .or_default()
                    .push(r as u32);
            }
            for &slot in &missing {
                let key = rows.row(distinct[slot]).data();
                let hits = by_key.get(key).cloned().unwrap_or_default();
                if self.cache.enabled() {
                    let idx = UInt32Array::from(hits.clone());
                    let cols: Vec<ArrayRef> = found
                        .columns()
                        .iter()
                        .map(|c| take(c.as_ref(), &idx, None))
                        .collect::<std::result::Result<_, _>>()?;
                    let rows_of_key = RecordBatch::try_new(found.schema(), cols)?;
                    self.cache.put(key.to_vec(), rows_of_key, now);
                }
                matches[slot] = hits.iter().map(|r| base + r).collect();
            }
            parts.push(found);
        }
        let right = concat_batches(&self.schema, &parts)?;
        // Rows of the table that fail its own condition match nothing.
        let keep = match &self.def.right_filter {
            Some(f) if right.num_rows() > 0 => {
                let mask = eval_to_array(f, &right)?;
                Some(mask.as_boolean_opt().cloned().ok_or_else(|| {
                    DataFusionError::Internal("lookup filter is not BOOLEAN".into())
                })?)
            }
            _ => None,
        };
        let mut li: Vec<u32> = Vec::new();
        let mut ri: Vec<u32> = Vec::new();
        for (i, slot) in slot_of.iter().enumerate() {
            let Some(slot) = slot else { continue };
            for &r in &matches[*slot] {
                if keep
                    .as_ref()
                    .is_none_or(|k| k.is_valid(r as usize) && k.value(r as usize))
                {
                    li.push(i as u32);
                    ri.push(r);
                }
            }
        }
        let li = UInt32Array::from(li);
        let ri = UInt32Array::from(ri);
        let mut joined = self.assemble(batch, &li, &right, Some(&ri))?;
        if let Some(f) = &self.def.filter
            && joined.num_rows() > 0
        {
            let mask = eval_to_array(f, &joined)?;
            let Some(mask) = mask.as_boolean_opt() else {
                return Err(
                    DataFusionError::Internal("join condition is not BOOLEAN".into()).into(),
                );
            };
            let li_kept = filter_record_batch(
                &RecordBatch::try_new(
                    Arc::new(Schema::new(vec![Field::new("i", DataType::UInt32, false)])),
                    vec![Arc::new(li.clone())],
                )?,
                mask,
            )?;
            joined = filter_record_batch(&joined, mask)?;
            return self.pad(batch, joined, li_kept.column(0).as_primitive());
        }
        self.pad(batch, joined, &li)
    }

    /// For a LEFT JOIN, adds the probe rows that matched nothing, NULL-padded.
    fn pad(
        &self,
        batch: &RecordBatch,
        joined: RecordBatch,
        matched: &UInt32Array,
    ) -> Result<Option<RecordBatch>> {
        if !self.def.outer {
            return Ok((joined.num_rows() > 0).then_some(joined));
        }
        let mut hit = vec![false; batch.num_rows()];
        for i in matched.values().iter() {
            hit[*i as usize] = true;
        }
        let lonely: Vec<u32> = (0..batch.num_rows() as u32)
            .filter(|i| !hit[*i as usize])
            .collect();
        if lonely.is_empty() {
            return Ok((joined.num_rows() > 0).then_some(joined));
        }
        let lonely = self.assemble(
            batch,
            &UInt32Array::from(lonely),
            &RecordBatch::new_empty(self.schema.clone()),
            None,
        )?;
        Ok(Some(concat_batches(&self.def.output, [&joined, &lonely])?))
    }

    /// Probe rows `li` beside table rows `ri` (all NULL when `ri` is `None`).
    fn assemble(
        &self,
        batch: &RecordBatch,
        li: &UInt32Array,
        right: &RecordBatch,
        ri: Option<&UInt32Array>,
    ) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.def.output.fields().len());
        for c in batch.columns() {
            columns.push(take(c.as_ref(), li, None)?);
        }
        for &v in &self.def.right_values {
            columns.push(match ri {
                Some(ri) => take(right.column(v).as_ref(), ri, None)?,
                None => datafusion::arrow::array::new_null_array(
                    self.schema.field(v).data_type(),
                    li.len(),
                ),
            });
        }
        Ok(RecordBatch::try_new(self.def.output.clone(), columns)?)
    }
}

impl Operator for LookupJoinTask {
    fn process(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        // A key expression that fails for a row (a bad cast) sends the row to the dead
        // letters; the others go on.
        let Some(with_keys) = eval_isolating(&batch, ctx, |b| self.with_keys(b))? else {
            return Ok(());
        };
        let width = batch.num_columns();
        let probe = RecordBatch::try_new(batch.schema(), with_keys.columns()[..width].to_vec())?;
        let keys = with_keys.columns()[width..].to_vec();
        if let Some(b) = self.join(&probe, &keys)? {
            out.push(b);
        }
        Ok(())
    }
}

/// The cache of looked-up keys: at most `max_rows` keys, evicted oldest first, each
/// dropped after its expiry times.
struct Cache {
    caching: LookupCaching,
    map: HashMap<Vec<u8>, Entry>,
    /// Keys in the order they were put, with when (stale pairs are skipped).
    order: VecDeque<(Vec<u8>, Instant)>,
}

struct Entry {
    rows: RecordBatch,
    written: Instant,
    used: Instant,
}

impl Cache {
    fn new(caching: LookupCaching) -> Self {
        Cache {
            caching,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn enabled(&self) -> bool {
        self.caching.max_rows.is_some_and(|m| m > 0)
    }

    fn get(&mut self, key: &[u8], now: Instant) -> Option<RecordBatch> {
        let e = self.map.get_mut(key)?;
        let expired = self
            .caching
            .expire_after_write
            .is_some_and(|d| now.duration_since(e.written) >= d)
            || self
                .caching
                .expire_after_access
                .is_some_and(|d| now.duration_since(e.used) >= d);
        if expired {
            self.map.remove(key);
            return None;
        }
        e.used = now;
        Some(e.rows.clone())
    }

    fn put(&mut self, key: Vec<u8>, rows: RecordBatch, now: Instant) {
        let Some(max) = self.caching.max_rows.filter(|m| *m > 0) else {
            return;
        };
        if rows.num_rows() == 0 && !self.caching.cache_missing_key {
            return;
        }
        self.order.push_back((key.clone(), now));
        self.map.insert(
            key,
            Entry {
                rows,
                written: now,
                used: now,
            },
        );
        while self.map.len() > max {
            let Some((k, at)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&k).is_some_and(|e| e.written == at) {
                self.map.remove(&k);
            }
        }
        if self.order.len() > 2 * max + 16 {
            let map = &self.map;
            self.order
                .retain(|(k, at)| map.get(k).is_some_and(|e| e.written == *at));
        }
    }
}

type Reply = std::sync::mpsc::SyncSender<Result<RecordBatch>>;

/// The table's client on a thread of its own; [`call`](Worker::call) waits for it.
struct Worker {
    requests: Option<tokio::sync::mpsc::UnboundedSender<(RecordBatch, Reply)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    fn start(
        mut table: Box<dyn LookupTable>,
        task: TaskInfo,
        name: String,
        max_retries: u32,
    ) -> Result<Worker> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(RecordBatch, Reply)>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::TaskFailed {
                task: name.clone(),
                message: format!("cannot start the lookup client's runtime: {e}"),
            })?;
        let thread = std::thread::Builder::new()
            .name("sluice-lookup".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut opened = false;
                    while let Some((keys, reply)) = rx.recv().await {
                        let mut attempt = 0u32;
                        let result = loop {
                            let r = if opened {
                                table.lookup(&keys).await
                            } else {
                                match table.open(&task).await {
                                    Ok(()) => {
                                        opened = true;
                                        table.lookup(&keys).await
                                    }
                                    Err(e) => Err(e),
                                }
                            };
                            match r {
                                Ok(b) => break Ok(b),
                                // A connection that broke may come back; a mistake (a missing
                                // table) will not.
                                Err(e) if attempt < max_retries && e.kind() == ErrorKind::External => {
                                    attempt += 1;
                                    let wait = Duration::from_millis(200u64 << attempt.min(5));
                                    warn!(table = %name, attempt, error = %e, "Lookup failed; trying again in {wait:?}.");
                                    tokio::time::sleep(wait).await;
                                }
                                Err(e) => break Err(e),
                            }
                        };
                        let _ = reply.send(result.map_err(|e| Error::Connector {
                            kind: e.kind(),
                            message: format!(
                                "lookup in {name} failed{}: {e}",
                                if max_retries > 0 {
                                    format!(" after {max_retries} retries")
                                } else {
                                    String::new()
                                }
                            ),
                        }));
                    }
                });
            })
            .map_err(|e| Error::TaskFailed {
                task: "lookup".into(),
                message: format!("cannot start the lookup thread: {e}"),
            })?;
        Ok(Worker {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    /// Looks `keys` up and waits for the rows.
    fn call(&self, keys: RecordBatch) -> Result<RecordBatch> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let gone = || Error::TaskFailed {
            task: "lookup".into(),
            message: "the lookup thread stopped".into(),
        };
        self.requests
            .as_ref()
            .ok_or_else(gone)?
            .send((keys, tx))
            .map_err(|_| gone())?;
        // On the job's multi-threaded runtime, let its other tasks move to another
        // thread while this one waits.
        let wait = || rx.recv().map_err(|_| gone());
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)?
            }
            _ => wait()?,
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.requests = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    use datafusion::physical_plan::expressions::col;
    use sluice_runtime::LookupFactory;

    use super::*;
    use crate::snapshot_tests::ctx;

    /// A table of (id, name) rows held in memory, counting its lookups; its first
    /// `fail` lookups fail as a broken connection would.
    struct Table {
        rows: Vec<(i64, &'static str)>,
        caching: LookupCaching,
        calls: Arc<AtomicUsize>,
        fail: usize,
    }

    fn table_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    struct Instance {
        rows: Vec<(i64, &'static str)>,
        calls: Arc<AtomicUsize>,
        fail: usize,
    }

    #[async_trait::async_trait]
    impl LookupTable for Instance {
        async fn open(&mut self, _task: &TaskInfo) -> Result<()> {
            Ok(())
        }
        async fn lookup(&mut self, keys: &RecordBatch) -> Result<RecordBatch> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail {
                return Err(Error::Connector {
                    kind: ErrorKind::External,
                    message: "connection reset".into(),
                });
            }
            let wanted = keys
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            let hits: Vec<&(i64, &str)> = self
                .rows
                .iter()
                .filter(|(id, _)| wanted.iter().any(|k| k == Some(*id)))
                .collect();
            Ok(RecordBatch::try_new(
                table_schema(),
                vec![
                    Arc::new(Int64Array::from_iter_values(hits.iter().map(|r| r.0))),
                    Arc::new(StringArray::from_iter_values(hits.iter().map(|r| r.1))),
                ],
            )?)
        }
    }

    impl LookupFactory for Table {
        fn name(&self) -> String {
            "t".into()
        }
        fn schema(&self) -> SchemaRef {
            table_schema()
        }
        fn key_columns(&self) -> Vec<usize> {
            vec![0]
        }
        fn caching(&self) -> LookupCaching {
            self.caching
        }
        fn create(&self, _task: &TaskInfo) -> Result<Box<dyn LookupTable>> {
            Ok(Box::new(Instance {
                rows: self.rows.clone(),
                calls: self.calls.clone(),
                fail: self.fail,
            }))
        }
    }

    fn join(outer: bool, caching: LookupCaching, fail: usize) -> (LookupJoin, Arc<AtomicUsize>) {
        let probe = Arc::new(Schema::new(vec![Field::new("k", DataType::Int32, true)]));
        let calls = Arc::new(AtomicUsize::new(0));
        let table = Table {
            rows: vec![(1, "one"), (3, "three"), (3, "drei"), (4, "four")],
            caching,
            calls: calls.clone(),
            fail,
        };
        let output = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int32, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let op = LookupJoin::new(
            Arc::new(table),
            outer,
            vec![col("k", &probe).unwrap()],
            vec![1],
            None,
            None,
            output,
            String::new(),
        );
        (op, calls)
    }

    fn run(op: &mut Box<dyn Operator>, keys: &[Option<i32>]) -> Result<Vec<String>> {
        let probe = Arc::new(Schema::new(vec![Field::new("k", DataType::Int32, true)]));
        let batch = RecordBatch::try_new(
            probe,
            vec![Arc::new(datafusion::arrow::array::Int32Array::from(
                keys.to_vec(),
            ))],
        )?;
        let mut out = Vec::new();
        op.process(0, batch, &mut ctx(0, 1), &mut out)?;
        let mut rows = Vec::new();
        for b in &out {
            let opts = FormatOptions::default().with_null("NULL");
            let k = ArrayFormatter::try_new(b.column(0).as_ref(), &opts)?;
            let n = ArrayFormatter::try_new(b.column(1).as_ref(), &opts)?;
            for i in 0..b.num_rows() {
                rows.push(format!("{}:{}", k.value(i), n.value(i)));
            }
        }
        rows.sort();
        Ok(rows)
    }

    #[test]
    fn inner_and_left_joins_match_every_row_of_a_key() {
        let keys = [Some(1), Some(2), Some(3), None, Some(1)];
        let (inner, _) = join(false, LookupCaching::default(), 0);
        let mut op = inner.create(&TaskInfo::default()).unwrap();
        assert_eq!(
            run(&mut op, &keys).unwrap(),
            ["1:one", "1:one", "3:drei", "3:three"]
        );
        let (left, calls) = join(true, LookupCaching::default(), 0);
        let mut op = left.create(&TaskInfo::default()).unwrap();
        assert_eq!(
            run(&mut op, &keys).unwrap(),
            ["1:one", "1:one", "2:NULL", "3:drei", "3:three", "NULL:NULL"]
        );
        // Without a cache, each batch asks again (once per batch, for its distinct keys).
        run(&mut op, &keys).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_cache_answers_known_keys_and_forgets_the_oldest() {
        let caching = LookupCaching {
            max_rows: Some(2),
            ..LookupCaching::default()
        };
        let (j, calls) = join(true, caching, 0);
        let mut op = j.create(&TaskInfo::default()).unwrap();
        run(&mut op, &[Some(1), Some(2)]).unwrap();
        // 1 and 2 (a missing key) are cached.
        assert_eq!(
            run(&mut op, &[Some(2), Some(1)]).unwrap(),
            ["1:one", "2:NULL"]
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // 3 pushes out 1, the oldest.
        run(&mut op, &[Some(3)]).unwrap();
        run(&mut op, &[Some(2)]).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(run(&mut op, &[Some(1)]).unwrap(), ["1:one"]);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Entries expire.
        let caching = LookupCaching {
            max_rows: Some(10),
            expire_after_write: Some(Duration::from_millis(1)),
            ..LookupCaching::default()
        };
        let (j, calls) = join(false, caching, 0);
        let mut op = j.create(&TaskInfo::default()).unwrap();
        run(&mut op, &[Some(4)]).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(run(&mut op, &[Some(4)]).unwrap(), ["4:four"]);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_failing_lookup_is_retried_then_fails_the_job() {
        let (j, calls) = join(false, LookupCaching::default(), 2);
        let mut op = j.create(&TaskInfo::default()).unwrap();
        assert_eq!(run(&mut op, &[Some(1)]).unwrap(), ["1:one"]);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let caching = LookupCaching {
            max_retries: 1,
            ..LookupCaching::default()
        };
        let (j, _) = join(false, caching, 5);
        let mut op = j.create(&TaskInfo::default()).unwrap();
        let e = run(&mut op, &[Some(1)]).unwrap_err().to_string();
        assert!(
            e.contains("lookup in t failed after 1 retries") && e.contains("connection reset"),
            "{e}"
        );
    }
}
