//! Top-N over an append-only stream: per partition key, the N first rows in the
//! `ORDER BY` order, with their row numbers. A changelog: when a row enters the top N,
//! the rows whose rank changed are retracted (`-U`/`-D`) and re-sent with their new
//! rank (`+U`/`+I`); a row pushed out is retracted. Rows that can never enter the top
//! N again (beyond N, on an append-only input) are not kept, so state per key is at
//! most N rows.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int8Array, RecordBatch};
use datafusion::arrow::array::{UInt32Array, UInt64Array};
use datafusion::arrow::compute::{SortOptions, take};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::physical_plan::PhysicalExpr;
use sluice_runtime::{Operator, OperatorContext, OperatorFactory, Result, TaskInfo};
use sluice_state::{DEFAULT_KEY_GROUPS, StateTableKind, StateTableSpec, TableSnapshot};
use sluice_types::RowKind;

/// One `ORDER BY` term.
#[derive(Debug, Clone)]
pub struct SortKey {
    /// The expression over the input.
    pub expr: Arc<dyn PhysicalExpr>,
    /// Direction and NULL placement.
    pub options: SortOptions,
}

/// `expr [DESC], …` for EXPLAIN.
pub(super) fn describe_order(order: &[SortKey]) -> String {
    let keys: Vec<String> = order
        .iter()
        .map(|k| {
            format!(
                "{}{}",
                k.expr,
                if k.options.descending { " DESC" } else { "" }
            )
        })
        .collect();
    keys.join(", ")
}

/// Factory of Top-N subtasks.
#[derive(Debug, Clone)]
pub struct TopN {
    /// Input columns of the partition key.
    partition: Vec<usize>,
    order: Vec<SortKey>,
    limit: usize,
    /// Input width (columns passed through; the row number follows them).
    width: usize,
    /// Output: the input columns, the row number, the row kind.
    output: SchemaRef,
}

impl TopN {
    /// Keeps the `limit` first rows per `partition` key by `order`; `output` is the
    /// first `width` input columns, the row number and the row kind.
    pub fn new(
        partition: Vec<usize>,
        order: Vec<SortKey>,
        limit: usize,
        width: usize,
        output: SchemaRef,
    ) -> Self {
        TopN {
            partition,
            order,
            limit,
            width,
            output,
        }
    }
}

/// A stored row's values (Arrow's row format: compact, converted back in bulk).
/// A stored row's values in Arrow's row format (shared with before-images).
type Row = Arc<[u8]>;
/// A partition's rows as (arrival number, values), in rank order.
type Ranked = Vec<(u64, Row)>;

struct Entry {
    /// Arrival number: ties keep arrival order.
    id: u64,
    /// The sort key in Arrow's row format (byte order is sort order).
    sort: Box<[u8]>,
    values: Row,
}

/// One partition's top rows, and the input batch that last touched it.
#[derive(Default)]
struct Part {
    entries: Vec<Entry>,
    touched: u64,
}

struct TopNTask {
    f: TopN,
    partition_conv: Option<RowConverter>,
    sort_conv: Option<RowConverter>,
    value_conv: Option<RowConverter>,
    lists: datafusion::common::HashMap<Vec<u8>, Part>,
    next_id: u64,
    /// Numbers input batches, to take each partition's before-image once per batch.
    batch_no: u64,
}

impl TopNTask {
    fn apply(&mut self, batch: &RecordBatch) -> DfResult<Option<RecordBatch>> {
        let n = batch.num_rows();
        let part_cols: Vec<ArrayRef> = self
            .f
            .partition
            .iter()
            .map(|c| batch.column(*c).clone())
            .collect();
        let sort_cols = self
            .f
            .order
            .iter()
            .map(|k| k.expr.evaluate(batch)?.into_array(n))
            .collect::<DfResult<Vec<_>>>()?;
        if self.partition_conv.is_none() {
            self.partition_conv = Some(RowConverter::new(
                part_cols
                    .iter()
                    .map(|c| SortField::new(c.data_type().clone()))
                    .collect(),
            )?);
            self.value_conv = Some(RowConverter::new(
                batch.columns()[..self.f.width]
                    .iter()
                    .map(|c| SortField::new(c.data_type().clone()))
                    .collect(),
            )?);
            self.sort_conv = Some(RowConverter::new(
                sort_cols
                    .iter()
                    .zip(&self.f.order)
                    .map(|(c, k)| SortField::new_with_options(c.data_type().clone(), k.options))
                    .collect(),
            )?);
        }
        let (Some(pc), Some(sc), Some(vc)) =
            (&self.partition_conv, &self.sort_conv, &self.value_conv)
        else {
            return Ok(None);
        };
        let parts = pc.convert_columns(&part_cols)?;
        let sorts = sc.convert_columns(&sort_cols)?;
        let limit = self.f.limit;
        // Rows that cannot enter their partition's top N (already full of rows that come
        // first) are skipped before any copying: insertions in this batch only raise the bar.
        let candidates: Vec<usize> = (0..n)
            .filter(|&r| match self.lists.get(parts.row(r).as_ref()) {
                Some(part) => {
                    part.entries.len() < limit
                        || part
                            .entries
                            .last()
                            .is_none_or(|e| *e.sort > *sorts.row(r).as_ref())
                }
                None => true,
            })
            .collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        let idx = UInt32Array::from(candidates.iter().map(|r| *r as u32).collect::<Vec<_>>());
        let passed: Vec<ArrayRef> = batch.columns()[..self.f.width]
            .iter()
            .map(|c| take(c.as_ref(), &idx, None))
            .collect::<std::result::Result<_, _>>()?;
        let values_rows = vc.convert_columns(&passed)?;
        // Before-images of the partitions this batch touches: key, (id, values).
        self.batch_no += 1;
        let batch_no = self.batch_no;
        let mut touched: Vec<(Vec<u8>, Ranked)> = Vec::new();
        for (j, &r) in candidates.iter().enumerate() {
            let key_row = parts.row(r);
            let sort = sorts.row(r);
            let sort = sort.as_ref();
            let part = self.lists.entry_ref(key_row.as_ref()).or_default();
            let list = &mut part.entries;
            if list.len() >= limit && list.last().is_some_and(|e| *e.sort <= *sort) {
                continue;
            }
            if part.touched != batch_no {
                part.touched = batch_no;
                touched.push((
                    key_row.as_ref().into(),
                    list.iter().map(|e| (e.id, e.values.clone())).collect(),
                ));
            }
            let pos = list.partition_point(|e| *e.sort <= *sort);
            list.insert(
                pos,
                Entry {
                    id: self.next_id,
                    sort: sort.into(),
                    values: values_rows.row(j).as_ref().into(),
                },
            );
            self.next_id += 1;
            list.truncate(limit);
        }
        let mut rows: Vec<(RowKind, u64, Row)> = Vec::new();
        for (key, old) in touched {
            let new: Ranked = self
                .lists
                .get(&key)
                .map(|p| p.entries.iter().map(|e| (e.id, e.values.clone())).collect())
                .unwrap_or_default();
            let rank_of = |list: &[(u64, Row)], id: u64| list.iter().position(|(i, _)| *i == id);
            for (rank, (id, values)) in old.iter().enumerate() {
                if rank_of(&new, *id) != Some(rank) {
                    let kind = if new.len() > rank {
                        RowKind::UpdateBefore
                    } else {
                        RowKind::Delete
                    };
                    rows.push((kind, rank as u64 + 1, values.clone()));
                }
            }
            for (rank, (id, values)) in new.iter().enumerate() {
                if rank_of(&old, *id) != Some(rank) {
                    let kind = if old.len() > rank {
                        RowKind::UpdateAfter
                    } else {
                        RowKind::Insert
                    };
                    rows.push((kind, rank as u64 + 1, values.clone()));
                }
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        // Retractions first, so that a consumer never sees two rows for one rank.
        rows.sort_by_key(|(k, _, _)| k.is_accumulate());
        let Some(vc) = &self.value_conv else {
            return Ok(None);
        };
        let parser = vc.parser();
        let mut cols: Vec<ArrayRef> =
            vc.convert_rows(rows.iter().map(|(_, _, v)| parser.parse(v)))?;
        let rank_type = self.f.output.field(self.f.width).data_type().clone();
        let ranks =
            ScalarValue::iter_to_array(rows.iter().map(|(_, r, _)| ScalarValue::UInt64(Some(*r))))?;
        cols.push(datafusion::arrow::compute::cast(&ranks, &rank_type)?);
        cols.push(Arc::new(Int8Array::from_iter_values(
            rows.iter().map(|(k, _, _)| *k as i8),
        )));
        let cols = cols
            .into_iter()
            .zip(self.f.output.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    datafusion::arrow::compute::cast(&c, f.data_type())
                }
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Some(RecordBatch::try_new(self.f.output.clone(), cols)?))
    }
}

impl Operator for TopNTask {
    fn process(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        _ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        if let Some(b) = self.apply(&batch)? {
            out.push(b);
        }
        Ok(())
    }

    /// `top_n`: per partition key, its rows in rank order: the key columns, the arrival
    /// number (ties keep arrival order), the sort columns and the row's columns.
    fn snapshot(&mut self) -> Result<Vec<TableSnapshot>> {
        let (Some(pc), Some(sc), Some(vc)) =
            (&self.partition_conv, &self.sort_conv, &self.value_conv)
        else {
            return Ok(Vec::new());
        };
        let parser = pc.parser();
        let sort_parser = sc.parser();
        let value_parser = vc.parser();
        let entries: Vec<(&[u8], &Entry)> = self
            .lists
            .iter()
            .flat_map(|(k, part)| part.entries.iter().map(move |e| (k.as_ref(), e)))
            .collect();
        let mut cols: Vec<(String, ArrayRef)> = Vec::new();
        let keys = pc.convert_rows(entries.iter().map(|(k, _)| parser.parse(k)))?;
        for (i, a) in keys.into_iter().enumerate() {
            cols.push((format!("__key{i}"), a));
        }
        cols.push((
            "__id".into(),
            Arc::new(UInt64Array::from_iter_values(
                entries.iter().map(|(_, e)| e.id),
            )),
        ));
        let sorts = sc.convert_rows(entries.iter().map(|(_, e)| sort_parser.parse(&e.sort)))?;
        for (i, a) in sorts.into_iter().enumerate() {
            cols.push((format!("__sort{i}"), a));
        }
        let values = vc.convert_rows(entries.iter().map(|(_, e)| value_parser.parse(&e.values)))?;
        for (f, a) in self.f.output.fields().iter().zip(values) {
            cols.push((f.name().clone(), a));
        }
        Ok(vec![TableSnapshot::keyed(
            "top_n",
            cols,
            self.f.partition.len(),
            DEFAULT_KEY_GROUPS,
        )?])
    }

    fn restore(&mut self, tables: Vec<TableSnapshot>) -> Result<()> {
        let np = self.f.partition.len();
        let ns = self.f.order.len();
        for t in tables {
            if t.name != "top_n" {
                return Err(sluice_state::Error::unexpected_table("Top-N", &t.name).into());
            }
            let data = t.data()?;
            if data.num_columns() != np + 1 + ns + self.f.width {
                return Err(sluice_state::Error::Mismatch(
                    "the Top-N state has a different shape than the query".into(),
                )
                .into());
            }
            if data.num_rows() == 0 {
                continue;
            }
            let conv = |cols: &[ArrayRef], opts: Option<&[SortKey]>| {
                RowConverter::new(
                    cols.iter()
                        .enumerate()
                        .map(|(i, c)| match opts.and_then(|o| o.get(i)) {
                            Some(k) => {
                                SortField::new_with_options(c.data_type().clone(), k.options)
                            }
                            None => SortField::new(c.data_type().clone()),
                        })
                        .collect(),
                )
            };
            let cols = data.columns();
            let (keys, rest) = cols.split_at(np);
            let ids = rest[0]
                .as_any()
                .downcast_ref::<UInt64Array>()
                .cloned()
                .ok_or_else(|| sluice_state::Error::Mismatch("Top-N ids".into()))?;
            let (sort_cols, value_cols) = rest[1..].split_at(ns);
            if self.partition_conv.is_none() {
                self.partition_conv = Some(conv(keys, None)?);
                self.sort_conv = Some(conv(sort_cols, Some(&self.f.order))?);
                self.value_conv = Some(conv(value_cols, None)?);
            }
            let (Some(pc), Some(sc), Some(vc)) =
                (&self.partition_conv, &self.sort_conv, &self.value_conv)
            else {
                continue;
            };
            let parts = pc.convert_columns(keys)?;
            let sorts = sc.convert_columns(sort_cols)?;
            let values = vc.convert_columns(value_cols)?;
            for r in 0..data.num_rows() {
                self.lists
                    .entry_ref(parts.row(r).as_ref())
                    .or_default()
                    .entries
                    .push(Entry {
                        id: ids.value(r),
                        sort: sorts.row(r).as_ref().into(),
                        values: values.row(r).as_ref().into(),
                    });
                self.next_id = self.next_id.max(ids.value(r) + 1);
            }
        }
        for part in self.lists.values_mut() {
            part.entries
                .sort_by(|a, b| a.sort.cmp(&b.sort).then(a.id.cmp(&b.id)));
        }
        Ok(())
    }

    fn state_tables(&self) -> Vec<StateTableSpec> {
        let fields: Vec<usize> = self.f.partition.clone();
        let schema = self
            .f
            .output
            .project(&(0..self.f.width).collect::<Vec<_>>())
            .unwrap_or_else(|_| datafusion::arrow::datatypes::Schema::empty());
        vec![StateTableSpec {
            name: "top_n".into(),
            kind: StateTableKind::List,
            schema: Arc::new(schema),
            key_columns: fields.len(),
        }]
    }
}

impl OperatorFactory for TopN {
    fn name(&self) -> String {
        if self.limit == 1 {
            "Deduplicate".into()
        } else {
            "TopN".into()
        }
    }

    fn describe(&self) -> String {
        let keys: Vec<String> = self.partition_names().into_iter().collect();
        format!(
            "partitionBy=[{}], orderBy=[{}], rankRange=[1..{}]",
            keys.join(", "),
            describe_order(&self.order),
            self.limit
        )
    }

    fn schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(TopNTask {
            f: self.clone(),
            partition_conv: None,
            sort_conv: None,
            value_conv: None,
            lists: Default::default(),
            next_id: 0,
            batch_no: 0,
        }))
    }

    fn stateless(&self) -> bool {
        false
    }
}

impl TopN {
    fn partition_names(&self) -> Vec<String> {
        self.partition
            .iter()
            .map(|c| {
                self.output
                    .fields()
                    .get(*c)
                    .map(|f| f.name().clone())
                    .unwrap_or_else(|| format!("#{c}"))
            })
            .collect()
    }
}
