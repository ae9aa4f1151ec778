//! Top-N over an append-only stream: per partition key, the N first rows in the
//! `ORDER BY` order, with their row numbers. A changelog: when a row enters the top N,
//! the rows whose rank changed are retracted (`-U`/`-D`) and re-sent with their new
//! rank (`+U`/`+I`); a row pushed out is retracted. Rows that can never enter the top
//! N again (beyond N, on an append-only input) are not kept, so state per key is at
//! most N rows.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::UInt32Array;
use datafusion::arrow::array::{ArrayRef, Int8Array, RecordBatch};
use datafusion::arrow::compute::{SortOptions, take};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::physical_plan::PhysicalExpr;
use sluice_runtime::{Operator, OperatorContext, OperatorFactory, Result, TaskInfo};
use sluice_state::{StateTableKind, StateTableSpec};
use sluice_types::RowKind;

/// One `ORDER BY` term.
#[derive(Debug, Clone)]
pub struct SortKey {
    /// The expression over the input.
    pub expr: Arc<dyn PhysicalExpr>,
    /// Direction and NULL placement.
    pub options: SortOptions,
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
type Row = Arc<OwnedRow>;
/// A partition's rows in rank order, by id.
type Ranked = Vec<(u64, Row)>;

struct Entry {
    id: u64,
    sort: OwnedRow,
    values: Row,
}

struct TopNTask {
    f: TopN,
    partition_conv: Option<RowConverter>,
    sort_conv: Option<RowConverter>,
    /// Converts the passed-through columns to and from rows.
    value_conv: Option<RowConverter>,
    /// Rows per partition key (its row-format bytes), in rank order.
    lists: HashMap<Box<[u8]>, Vec<Entry>>,
    next_id: u64,
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
                Some(list) => {
                    list.len() < limit || list.last().is_none_or(|e| e.sort.row() > sorts.row(r))
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
        // Before-images of the partitions this batch touches: (id, rank, values).
        let mut before: HashMap<Box<[u8]>, Ranked> = HashMap::new();
        for (j, &r) in candidates.iter().enumerate() {
            let key_row = parts.row(r);
            let sort = sorts.row(r);
            if !self.lists.contains_key(key_row.as_ref()) {
                self.lists.insert(key_row.as_ref().into(), Vec::new());
            }
            let Some(list) = self.lists.get_mut(key_row.as_ref()) else {
                continue;
            };
            if list.len() >= limit && list.last().is_some_and(|e| e.sort.row() <= sort) {
                continue;
            }
            if !before.contains_key(key_row.as_ref()) {
                before.insert(
                    key_row.as_ref().into(),
                    list.iter().map(|e| (e.id, e.values.clone())).collect(),
                );
            }
            let pos = list.partition_point(|e| e.sort.row() <= sort);
            list.insert(
                pos,
                Entry {
                    id: self.next_id,
                    sort: sort.owned(),
                    values: Arc::new(values_rows.row(j).owned()),
                },
            );
            self.next_id += 1;
            list.truncate(limit);
        }
        let mut rows: Vec<(RowKind, u64, Row)> = Vec::new();
        for (key, old) in before {
            let new: Ranked = self
                .lists
                .get(&key)
                .map(|l| l.iter().map(|e| (e.id, e.values.clone())).collect())
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
        let mut cols: Vec<ArrayRef> = vc.convert_rows(rows.iter().map(|(_, _, v)| v.row()))?;
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
        let order: Vec<String> = self
            .order
            .iter()
            .map(|k| {
                format!(
                    "{}{}",
                    k.expr,
                    if k.options.descending { " DESC" } else { "" }
                )
            })
            .collect();
        format!(
            "partitionBy=[{}], orderBy=[{}], rankRange=[1..{}]",
            keys.join(", "),
            order.join(", "),
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
            lists: HashMap::new(),
            next_id: 0,
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
