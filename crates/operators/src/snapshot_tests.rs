//! Snapshot and restore of stateful operators: a run cut in the middle, its state
//! snapshotted, encoded, decoded and restored onto a different number of subtasks
//! (each taking the key groups it owns), must end with exactly the output of an
//! uninterrupted run.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_plan::expressions::col;
use sluice_runtime::{
    DeadLetterOutput, JobMetrics, Operator, OperatorContext, OperatorFactory, TaskInfo,
};
use sluice_state::{DEFAULT_KEY_GROUPS, KeyGroupRange, key_groups_of, subtask_for_group};
use sluice_types::{DeadLetter, RowKind, Watermark, kinds_of, without_row_kind};

use crate::aggregate::{AggregateSpec, GroupAggregate, WindowAggregate};
use crate::join::TemporalJoin;

struct NoDeadLetters;
impl DeadLetterOutput for NoDeadLetters {
    fn send(&self, _letter: DeadLetter) {}
}

#[derive(Clone)]
enum Msg {
    Batch(usize, RecordBatch),
    Watermark(i64),
}

pub(crate) fn ctx(subtask: usize, parallelism: usize) -> OperatorContext {
    OperatorContext {
        task: TaskInfo {
            job: "t".into(),
            operator: "op".into(),
            subtask,
            parallelism,
            checkpointing: false,
        },
        watermark: Watermark(i64::MIN),
        dead_letters: Arc::new(NoDeadLetters),
        metrics: Arc::new(JobMetrics::default()),
        split: None,
    }
}

/// Runs `msgs` through `parallelism` subtasks, rows routed by the key columns `keys[input]`.
struct Harness {
    tasks: Vec<(Box<dyn Operator>, OperatorContext)>,
    keys: Vec<Vec<usize>>,
    out: Vec<RecordBatch>,
}

impl Harness {
    fn new(f: &dyn OperatorFactory, parallelism: usize, keys: Vec<Vec<usize>>) -> Self {
        let tasks = (0..parallelism)
            .map(|s| {
                let c = ctx(s, parallelism);
                (f.create(&c.task).expect("creates"), c)
            })
            .collect();
        Harness {
            tasks,
            keys,
            out: Vec::new(),
        }
    }

    fn send(&mut self, msg: &Msg) {
        let p = self.tasks.len();
        match msg {
            Msg::Batch(input, batch) => {
                let cols: Vec<ArrayRef> = self.keys[*input]
                    .iter()
                    .map(|k| batch.column(*k).clone())
                    .collect();
                let groups =
                    key_groups_of(&cols, batch.num_rows(), DEFAULT_KEY_GROUPS).expect("hashes");
                for (s, (task, c)) in self.tasks.iter_mut().enumerate() {
                    let rows: Vec<u32> = (0..batch.num_rows() as u32)
                        .filter(|r| {
                            subtask_for_group(groups[*r as usize], DEFAULT_KEY_GROUPS, p) == s
                        })
                        .collect();
                    if rows.is_empty() {
                        continue;
                    }
                    let part = datafusion::arrow::compute::take_record_batch(
                        batch,
                        &datafusion::arrow::array::UInt32Array::from(rows),
                    )
                    .expect("takes");
                    task.process(*input, part, c, &mut self.out)
                        .expect("processes");
                }
            }
            Msg::Watermark(w) => {
                for (task, c) in &mut self.tasks {
                    c.watermark = Watermark(*w);
                    task.on_watermark(Watermark(*w), c, &mut self.out)
                        .expect("fires");
                }
            }
        }
    }

    fn finish(mut self) -> Vec<RecordBatch> {
        self.send(&Msg::Watermark(i64::MAX));
        for (task, c) in &mut self.tasks {
            task.on_close(c, &mut self.out).expect("closes");
        }
        self.out
    }

    /// Snapshots every subtask, through the encoded bytes.
    fn snapshot(&mut self) -> Vec<Vec<u8>> {
        self.tasks
            .iter_mut()
            .map(|(t, _)| sluice_state::encode(&t.snapshot().expect("snapshots")).expect("encodes"))
            .collect()
    }

    fn restore(&mut self, snapshots: &[Vec<u8>]) {
        let p = self.tasks.len();
        for (s, (task, _)) in self.tasks.iter_mut().enumerate() {
            let range = KeyGroupRange::of_subtask(s, p, DEFAULT_KEY_GROUPS);
            let mut tables = Vec::new();
            for bytes in snapshots {
                for t in sluice_state::decode(bytes).expect("decodes") {
                    tables.push(t.for_range(range).expect("filters"));
                }
            }
            task.restore(tables).expect("restores");
        }
    }
}

/// The encoded files of one subtask's incremental chain, each with its horizon.
type Chain = Vec<(i64, Vec<u8>)>;

impl Harness {
    /// Takes an incremental snapshot of every subtask (a full one with `full`) and
    /// keeps each chain as the runtime does: files whose horizon the progress passed
    /// go.
    fn snapshot_changes(&mut self, full: bool, chains: &mut [Chain]) {
        for ((task, _), chain) in self.tasks.iter_mut().zip(chains.iter_mut()) {
            assert!(task.incremental());
            let c = task.snapshot_changes(full).expect("snapshots");
            if full {
                chain.clear();
            } else {
                chain.retain(|(h, _)| *h > c.progress);
            }
            chain.push((c.horizon, sluice_state::encode(&c.tables).expect("encodes")));
        }
    }

    /// Restores from earlier subtasks' chains, as the runtime orders their tables.
    fn restore_chains(&mut self, chains: &[Chain]) {
        let p = self.tasks.len();
        for (s, (task, _)) in self.tasks.iter_mut().enumerate() {
            let range = KeyGroupRange::of_subtask(s, p, DEFAULT_KEY_GROUPS);
            let mut tables = Vec::new();
            for chain in chains {
                let files = chain
                    .iter()
                    .map(|(_, bytes)| sluice_state::decode(bytes).expect("decodes"));
                for t in sluice_state::chain_tables(files) {
                    tables.push(t.for_range(range).expect("filters"));
                }
            }
            task.restore(tables).expect("restores");
        }
    }
}

/// Like [`check`], with incremental snapshots: a full one at the first cut, changes at
/// the later ones, then a restore from the chains onto another worker count.
fn check_incremental(f: &dyn OperatorFactory, keys: Vec<Vec<usize>>, msgs: &[Msg]) {
    let mut whole = Harness::new(f, 1, keys.clone());
    for m in msgs {
        whole.send(m);
    }
    let want = table(&whole.finish());
    assert!(!want.is_empty());
    let n = msgs.len();
    for cuts in [vec![0, 1, 2, n - 1], vec![1, n / 3, n / 2, 2 * n / 3]] {
        for (before, after) in [(1, 3), (3, 2), (2, 2)] {
            let mut first = Harness::new(f, before, keys.clone());
            let mut chains = vec![Chain::new(); before];
            let mut at = 0;
            for (i, cut) in cuts.iter().enumerate() {
                for m in &msgs[at..*cut] {
                    first.send(m);
                }
                at = *cut;
                first.snapshot_changes(i == 0, &mut chains);
            }
            let mut out = first.out;
            let mut second = Harness::new(f, after, keys.clone());
            second.restore_chains(&chains);
            // The restored state taken whole again (a restored join's queue is in time
            // order, not batch order) and restored once more.
            let mut again = vec![Chain::new(); after];
            second.snapshot_changes(true, &mut again);
            out.extend(std::mem::take(&mut second.out));
            let mut third = Harness::new(f, 2, keys.clone());
            third.restore_chains(&again);
            for m in &msgs[at..] {
                third.send(m);
            }
            out.extend(third.finish());
            assert_eq!(
                table(&out),
                want,
                "cuts {cuts:?}, {before} -> {after} -> 2 subtasks"
            );
        }
    }
}

/// The output as sorted rows, a changelog applied.
fn table(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    let opts = FormatOptions::default().with_null("NULL");
    for b in batches {
        let kinds = kinds_of(b);
        let data = without_row_kind(b);
        let fmts: Vec<ArrayFormatter> = data
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).expect("formats"))
            .collect();
        for (r, kind) in kinds.iter().enumerate() {
            let row: Vec<String> = fmts.iter().map(|f| f.value(r).to_string()).collect();
            let row = row.join(" ");
            if kind.is_accumulate() {
                if *kind != RowKind::UpdateBefore {
                    rows.push(row);
                }
            } else if let Some(i) = rows.iter().position(|x| *x == row) {
                rows.swap_remove(i);
            }
        }
    }
    rows.sort();
    rows
}

/// Uninterrupted on one subtask versus cut after several prefixes, from `before` subtasks
/// onto `after`.
fn check(f: &dyn OperatorFactory, keys: Vec<Vec<usize>>, msgs: &[Msg]) {
    let mut whole = Harness::new(f, 1, keys.clone());
    for m in msgs {
        whole.send(m);
    }
    let want = table(&whole.finish());
    assert!(!want.is_empty());
    // Cut 0: nothing seen yet, every subtask snapshots empty state.
    for cut in [0, 1, msgs.len() / 2, msgs.len() - 1] {
        for (before, after) in [(1, 3), (3, 2), (2, 2)] {
            let mut first = Harness::new(f, before, keys.clone());
            for m in &msgs[..cut] {
                first.send(m);
            }
            let snaps = first.snapshot();
            let mut out = first.out;
            let mut second = Harness::new(f, after, keys.clone());
            second.restore(&snaps);
            for m in &msgs[cut..] {
                second.send(m);
            }
            out.extend(second.finish());
            assert_eq!(
                table(&out),
                want,
                "cut at {cut}, {before} -> {after} subtasks"
            );
        }
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

/// Rows (key, v, ts) with ts in ms.
fn batch(schema: &SchemaRef, rows: &[(&str, i64, i64)]) -> RecordBatch {
    let k: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0)));
    let v: ArrayRef = Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1)));
    let t = Int64Array::from_iter_values(rows.iter().map(|r| r.2));
    let t = datafusion::arrow::compute::cast(&t, &ts_type()).expect("casts");
    RecordBatch::try_new(schema.clone(), vec![k, v, t]).expect("a batch")
}

fn events() -> (SchemaRef, Vec<Msg>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, false),
        Field::new("v", DataType::Int64, false),
        Field::new("ts", ts_type(), false),
    ]));
    let keys = ["a", "b", "c", "d", "e", "f", "g"];
    let mut msgs = Vec::new();
    for step in 0..12i64 {
        let rows: Vec<(&str, i64, i64)> = (0..9)
            .map(|i| {
                (
                    keys[((step * 5 + i) % 7) as usize],
                    step * 10 + i,
                    step * 1000 + i * 100,
                )
            })
            .collect();
        msgs.push(Msg::Batch(0, batch(&schema, &rows)));
        msgs.push(Msg::Watermark(step * 1000 - 1500));
    }
    (schema, msgs)
}

fn spec(input: &SchemaRef, keys: Vec<usize>, output_keys: Vec<Field>) -> AggregateSpec {
    let count = AggregateExprBuilder::new(count_udaf(), vec![col("v", input).expect("v")])
        .schema(input.clone())
        .alias("n")
        .build()
        .expect("count");
    let sum = AggregateExprBuilder::new(sum_udaf(), vec![col("v", input).expect("v")])
        .schema(input.clone())
        .alias("total")
        .build()
        .expect("sum");
    let mut fields = output_keys;
    fields.push(Field::new("n", DataType::Int64, false));
    fields.push(Field::new("total", DataType::Int64, true));
    AggregateSpec {
        keys,
        aggs: vec![Arc::new(count), Arc::new(sum)],
        filters: vec![None, None],
        input: input.clone(),
        output: Arc::new(Schema::new(fields)),
    }
}

#[test]
fn group_aggregates_restore_onto_other_worker_counts() {
    let (schema, msgs) = events();
    let f = GroupAggregate::new(
        spec(
            &schema,
            vec![0],
            vec![Field::new("k", DataType::Utf8, false)],
        ),
        false,
    );
    check(&f, vec![vec![0]], &msgs);
}

/// Windows by the row's time as window end: key (k, ts) groups rows of one key and
/// "window" (ts column) together.
fn window_by_row_time(schema: &SchemaRef) -> WindowAggregate {
    WindowAggregate::new(
        spec(
            schema,
            vec![0, 2],
            vec![
                Field::new("k", DataType::Utf8, false),
                Field::new("ts", ts_type(), false),
            ],
        ),
        2,
    )
}

#[test]
fn window_aggregates_restore_onto_other_worker_counts() {
    let (schema, msgs) = events();
    let f = window_by_row_time(&schema);
    check(&f, vec![vec![0, 2]], &msgs);
    check_incremental(&f, vec![vec![0, 2]], &msgs);
}

#[test]
fn incremental_chains_drop_fired_windows() {
    // Windows end at the row's time; the watermark trails by 1.5 s, so the changes of
    // early cuts leave the chain once their windows fired.
    let (schema, msgs) = events();
    let f = window_by_row_time(&schema);
    let mut h = Harness::new(&f, 1, vec![vec![0, 2]]);
    let mut chain = vec![Chain::new()];
    h.snapshot_changes(true, &mut chain);
    for (i, m) in msgs.iter().enumerate() {
        h.send(m);
        if i % 2 == 1 {
            h.snapshot_changes(false, &mut chain);
        }
    }
    // 12 batches, each one's windows fired 2 watermarks later: only the newest
    // changes are left (and the last file, which holds the watermark).
    assert!(chain[0].len() <= 3, "{} files", chain[0].len());
}

#[test]
fn interval_joins_restore_from_incremental_chains() {
    use datafusion::logical_expr::Operator as Op;
    use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal};
    let (schema, msgs) = events();
    let (merged, fields) = two_sided(&schema, msgs);
    let joined = Arc::new(Schema::new(fields));
    // |left.ts - right.ts| <= 1.5 s, as the planner writes an interval join's bounds.
    let ms = |i: usize| -> Arc<dyn datafusion::physical_plan::PhysicalExpr> {
        Arc::new(CastExpr::new(
            Arc::new(Column::new("ts", i)),
            DataType::Int64,
            None,
        ))
    };
    let diff = Arc::new(BinaryExpr::new(ms(2), Op::Minus, ms(5)));
    let lit = |v: i64| {
        Arc::new(Literal::new(datafusion::common::ScalarValue::Int64(Some(
            v,
        ))))
    };
    let filter = Arc::new(BinaryExpr::new(
        Arc::new(BinaryExpr::new(diff.clone(), Op::GtEq, lit(-1500))),
        Op::And,
        Arc::new(BinaryExpr::new(diff, Op::LtEq, lit(1500))),
    ));
    let f = crate::join::StreamingJoin::new(
        crate::join::JoinKind::Inner,
        [vec![0], vec![0]],
        [3, 3],
        Some(filter),
        joined.clone(),
        joined,
        vec![DataType::Utf8],
        "test".into(),
    )
    .with_interval(crate::join::IntervalBounds {
        time: [2, 2],
        lo: -1500,
        hi: 1500,
    });
    check(&f, vec![vec![0], vec![0]], &merged);
    check_incremental(&f, vec![vec![0], vec![0]], &merged);
}

#[test]
fn temporal_joins_restore_onto_other_worker_counts() {
    let (schema, msgs) = events();
    // Versions of each key from the same stream (the first rows of every batch), sent
    // just before the batch.
    let mut merged = Vec::new();
    for m in msgs {
        if let Msg::Batch(_, b) = &m {
            merged.push(Msg::Batch(1, b.slice(0, 4)));
        }
        merged.push(m);
    }
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| (**f).clone()).collect();
    fields.extend(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true)),
    );
    let f = TemporalJoin::new(
        true,
        [vec![0], vec![0]],
        3,
        vec![0, 1, 2],
        [2, 2],
        None,
        None,
        Arc::new(Schema::new(fields)),
        vec![DataType::Utf8],
        "test".into(),
    );
    check(&f, vec![vec![0], vec![0]], &merged);
}

#[test]
fn top_n_restores_onto_other_worker_counts() {
    let (schema, msgs) = events();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| (**f).clone()).collect();
    fields.push(Field::new("rn", DataType::UInt64, false));
    fields.push(sluice_types::row_kind_field());
    let order = vec![crate::rank::SortKey {
        expr: col("v", &schema).expect("v"),
        options: datafusion::arrow::compute::SortOptions {
            descending: true,
            nulls_first: false,
        },
    }];
    let f = crate::rank::TopN::new(vec![0], order, 2, 3, Arc::new(Schema::new(fields)));
    check(&f, vec![vec![0]], &msgs);
}

/// Two join inputs from the events: the right side is a few rows of every other batch,
/// so some left rows wait for a partner (outer join retractions) across a cut; and the
/// joined row's fields.
fn two_sided(schema: &SchemaRef, msgs: Vec<Msg>) -> (Vec<Msg>, Vec<Field>) {
    let mut merged = Vec::new();
    for (i, m) in msgs.into_iter().enumerate() {
        merged.push(m.clone());
        if let Msg::Batch(_, b) = &m
            && i % 4 == 2
        {
            merged.push(Msg::Batch(1, b.slice(2, 5)));
        }
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .chain(schema.fields().iter())
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    (merged, fields)
}

#[test]
fn regular_joins_restore_onto_other_worker_counts() {
    let (schema, msgs) = events();
    let (merged, fields) = two_sided(&schema, msgs);
    let joined = Arc::new(Schema::new(fields.clone()));
    let mut out_fields = fields;
    out_fields.push(sluice_types::row_kind_field());
    for kind in [crate::join::JoinKind::Inner, crate::join::JoinKind::Left] {
        let f = crate::join::StreamingJoin::new(
            kind,
            [vec![0], vec![0]],
            [3, 3],
            None,
            joined.clone(),
            Arc::new(Schema::new(out_fields.clone())),
            vec![DataType::Utf8],
            "test".into(),
        );
        check(&f, vec![vec![0], vec![0]], &merged);
    }
}

#[test]
fn session_windows_restore_onto_other_worker_counts() {
    // Each row's own session is [ts, ts + 1.5 s) in columns 3 and 4; rows of a key less
    // than 1.5 s apart merge into one session.
    let (schema, msgs) = events();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| (**f).clone()).collect();
    fields.push(Field::new("window_start", ts_type(), false));
    fields.push(Field::new("window_end", ts_type(), false));
    let input: SchemaRef = Arc::new(Schema::new(fields));
    let msgs: Vec<Msg> = msgs
        .into_iter()
        .map(|m| match m {
            Msg::Batch(i, b) => {
                let ts = b.column(2).clone();
                let ms = crate::time::millis(&ts).expect("ms");
                let end = Int64Array::from_iter_values(ms.values().iter().map(|t| t + 1500));
                let end = datafusion::arrow::compute::cast(&end, &ts_type()).expect("casts");
                let mut cols = b.columns().to_vec();
                cols.push(ts);
                cols.push(end);
                Msg::Batch(
                    i,
                    RecordBatch::try_new(input.clone(), cols).expect("a batch"),
                )
            }
            w => w,
        })
        .collect();
    let f = crate::aggregate::SessionAggregate::new(
        spec(
            &input,
            vec![0, 3, 4],
            vec![
                Field::new("k", DataType::Utf8, false),
                Field::new("window_start", ts_type(), false),
                Field::new("window_end", ts_type(), false),
            ],
        ),
        3,
        4,
    );
    check(&f, vec![vec![0]], &msgs);
}

#[test]
fn over_aggregates_restore_onto_other_worker_counts() {
    let (schema, msgs) = events();
    let sum = AggregateExprBuilder::new(sum_udaf(), vec![col("v", &schema).expect("v")])
        .schema(schema.clone())
        .alias("s")
        .build()
        .expect("sum");
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| (**f).clone()).collect();
    fields.push(Field::new("s", DataType::Int64, true));
    let output: SchemaRef = Arc::new(Schema::new(fields));
    for frame in [
        crate::over::OverFrame::Rows(Some(2)),
        crate::over::OverFrame::Range(Some(1500)),
        crate::over::OverFrame::Rows(None),
    ] {
        let f = crate::over::OverAggregate::new(
            vec![0],
            2,
            vec![Arc::new(sum.clone())],
            vec![None],
            frame,
            3,
            output.clone(),
        );
        check(&f, vec![vec![0]], &msgs);
    }
}

#[test]
fn windows_open_for_late_rows_restore_onto_other_worker_counts() {
    let (schema, msgs) = events();
    let input = schema.clone();
    // After each watermark, rows of fired windows again: those of two steps back update
    // them (allowed lateness 2 s), those of five steps back are dropped.
    let batches: Vec<RecordBatch> = msgs
        .iter()
        .filter_map(|m| match m {
            Msg::Batch(_, b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    let mut with_late = Vec::new();
    let mut step = 0usize;
    for m in msgs {
        let is_watermark = matches!(m, Msg::Watermark(_));
        with_late.push(m);
        if is_watermark {
            if step >= 2 {
                with_late.push(Msg::Batch(0, batches[step - 2].slice(2, 3)));
            }
            if step >= 5 {
                with_late.push(Msg::Batch(0, batches[step - 5].slice(0, 2)));
            }
            step += 1;
        }
    }
    drop(schema);
    let f = WindowAggregate::new(
        spec(
            &input,
            vec![0, 2],
            vec![
                Field::new("k", DataType::Utf8, false),
                Field::new("ts", ts_type(), false),
            ],
        ),
        2,
    )
    .with_allowed_lateness(2000);
    check(&f, vec![vec![0, 2]], &with_late);
}

#[test]
fn watermark_assigners_take_back_the_smallest_watermark() {
    let (schema, _) = events();
    let f = crate::window::WatermarkAssigner::new(
        col("ts", &schema).expect("ts"),
        schema.clone(),
        None,
        "ts".into(),
    );
    // Two subtasks that saw different times: any subtask at any parallelism resumes
    // at the smaller, since splits are dealt out anew.
    let mut snaps = Vec::new();
    for (s, t) in [(0usize, 5_000i64), (1, 9_000)] {
        let mut c = ctx(s, 2);
        let mut task = f.create(&c.task).expect("creates");
        task.process(0, batch(&schema, &[("a", 1, t)]), &mut c, &mut Vec::new())
            .expect("processes");
        snaps.push(sluice_state::encode(&task.snapshot().expect("snapshots")).expect("encodes"));
    }
    let restored = |s: usize, p: usize| {
        let c = ctx(s, p);
        let mut task = f.create(&c.task).expect("creates");
        let tables = snaps
            .iter()
            .flat_map(|b| sluice_state::decode(b).expect("decodes"))
            .collect();
        task.restore(tables).expect("restores");
        task.take_watermark()
    };
    assert_eq!(restored(0, 2), Some(Watermark(5_000)));
    assert_eq!(restored(1, 2), Some(Watermark(5_000)));
    assert_eq!(restored(2, 3), Some(Watermark(5_000)));
}

#[test]
fn state_of_another_shape_is_refused_with_a_clear_error() {
    let (schema, msgs) = events();
    let keys = || vec![Field::new("k", DataType::Utf8, false)];
    let two = GroupAggregate::new(spec(&schema, vec![0], keys()), false);
    let mut h = Harness::new(&two, 1, vec![vec![0]]);
    for m in &msgs[..4] {
        h.send(m);
    }
    let snaps = h.snapshot();
    let tables = || sluice_state::decode(&snaps[0]).expect("decodes");
    // The same query with one aggregate less.
    let mut one = spec(&schema, vec![0], keys());
    one.aggs.pop();
    one.filters.pop();
    let fields: Vec<Field> = one.output.fields()[..2]
        .iter()
        .map(|f| (**f).clone())
        .collect();
    one.output = Arc::new(Schema::new(fields));
    let c = ctx(0, 1);
    let mut task = GroupAggregate::new(one, false)
        .create(&c.task)
        .expect("creates");
    let e = task.restore(tables()).expect_err("refused");
    assert!(e.to_string().contains("different shape"), "{e}");
    // Another operator's state.
    let mut task = WindowAggregate::new(spec(&schema, vec![0, 2], keys()), 2)
        .create(&c.task)
        .expect("creates");
    let e = task.restore(tables()).expect_err("refused");
    assert!(e.to_string().contains("unexpected state table"), "{e}");
}

#[test]
fn upsert_materializers_restore_onto_other_worker_counts() {
    // The changelog of a GROUP BY, upserted by its key.
    let (schema, msgs) = events();
    let agg = GroupAggregate::new(
        spec(
            &schema,
            vec![0],
            vec![Field::new("k", DataType::Utf8, false)],
        ),
        false,
    );
    let mut h = Harness::new(&agg, 1, vec![vec![0]]);
    let mut changelog = Vec::new();
    for m in &msgs {
        h.send(m);
        for b in std::mem::take(&mut h.out) {
            changelog.push(Msg::Batch(0, b));
        }
    }
    let f = crate::rank::UpsertMaterializer::new(vec![0], agg.schema());
    check(&f, vec![vec![0]], &changelog);
}

#[test]
fn window_top_n_restores_onto_other_worker_counts() {
    // Windows ending at each row's time (column 2); the two largest v per window.
    let (schema, msgs) = events();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| (**f).clone()).collect();
    fields.push(Field::new("rn", DataType::UInt64, false));
    let order = vec![crate::rank::SortKey {
        expr: col("v", &schema).expect("v"),
        options: datafusion::arrow::compute::SortOptions {
            descending: true,
            nulls_first: false,
        },
    }];
    let f = crate::rank::WindowTopN::new(vec![2], order, 2, 3, 2, Arc::new(Schema::new(fields)));
    check(&f, vec![vec![2]], &msgs);
}

#[test]
fn window_joins_release_a_window_once_the_watermark_passes_its_end() {
    // Both sides keyed by (k, window end = ts); bounds as the planner sets them for a
    // window join.
    let (schema, _) = events();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .chain(schema.fields().iter())
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    let joined = Arc::new(Schema::new(fields));
    let f = crate::join::StreamingJoin::new(
        crate::join::JoinKind::Inner,
        [vec![0, 2], vec![0, 2]],
        [3, 3],
        None,
        joined.clone(),
        joined,
        vec![DataType::Utf8, ts_type()],
        "test".into(),
    )
    .with_interval(crate::join::IntervalBounds {
        time: [2, 2],
        lo: 1,
        hi: -1,
    });
    let mut h = Harness::new(&f, 1, vec![vec![0, 2], vec![0, 2]]);
    let rows = [("a", 1, 1_000), ("b", 2, 1_000), ("a", 3, 2_000)];
    h.send(&Msg::Batch(0, batch(&schema, &rows)));
    h.send(&Msg::Batch(1, batch(&schema, &rows[..2])));
    let stored = |h: &mut Harness| -> usize {
        h.tasks[0]
            .0
            .snapshot()
            .expect("snapshots")
            .iter()
            .map(|t| t.batch.num_rows())
            .sum()
    };
    assert_eq!(h.out.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    assert_eq!(stored(&mut h), 5);
    // Windows ending at 1 s are complete once the watermark reaches 1 s - 1 ms; their
    // rows go at the next watermark past the end.
    h.send(&Msg::Watermark(999));
    assert_eq!(stored(&mut h), 5);
    h.send(&Msg::Watermark(1_000));
    assert_eq!(stored(&mut h), 1);
}
