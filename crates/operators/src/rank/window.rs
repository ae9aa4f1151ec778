//! Window Top-N and window deduplication: `ROW_NUMBER() OVER (PARTITION BY window_start,
//! window_end, … ORDER BY …) <= N` over a window table function's rows. As in Flink,
//! the rows of a window wait until the watermark passes the window's end; then its
//! first N rows per partition are emitted once, append-only, and the window's rows leave
//! the state. Rows for a window that already fired are late: dropped and counted.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array, UInt64Array};
use datafusion::arrow::compute::{cast, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::error::Result as DfResult;
use sluice_runtime::{JobMetrics, Operator, OperatorContext, OperatorFactory, Result, TaskInfo};
use sluice_state::{DEFAULT_KEY_GROUPS, StateTableKind, StateTableSpec, TableSnapshot};
use sluice_types::Watermark;

use super::SortKey;
use crate::time::millis;

/// Factory of [`WindowTopN`] subtasks.
#[derive(Debug, Clone)]
pub struct WindowTopN {
    /// Partition columns of the input (the window columns among them).
    partition: Vec<usize>,
    order: Vec<SortKey>,
    limit: usize,
    /// Input columns passed through (a prefix of the input).
    width: usize,
    /// The input column with each row's window end.
    end: usize,
    /// Output: the passed-through columns and the row number (append-only).
    output: SchemaRef,
}

impl WindowTopN {
    /// See the field docs.
    pub fn new(
        partition: Vec<usize>,
        order: Vec<SortKey>,
        limit: usize,
        width: usize,
        end: usize,
        output: SchemaRef,
    ) -> Self {
        WindowTopN {
            partition,
            order,
            limit,
            width,
            end,
            output,
        }
    }
}

struct WindowTopNTask {
    f: WindowTopN,
    /// Rows of open windows, by window end.
    pending: BTreeMap<i64, Vec<RecordBatch>>,
    watermark: i64,
}

impl WindowTopNTask {
    /// Ranks one window's rows and keeps the first N per partition.
    fn fire(&self, rows: &[RecordBatch]) -> DfResult<Option<RecordBatch>> {
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let all = concat_batches(&first.schema(), rows)?;
        let n = all.num_rows();
        let part_cols: Vec<ArrayRef> = self
            .f
            .partition
            .iter()
            .map(|c| all.column(*c).clone())
            .collect();
        let sort_cols = self
            .f
            .order
            .iter()
            .map(|k| k.expr.evaluate(&all)?.into_array(n))
            .collect::<DfResult<Vec<_>>>()?;
        let pc = RowConverter::new(
            part_cols
                .iter()
                .map(|c| SortField::new(c.data_type().clone()))
                .collect(),
        )?;
        let sc = RowConverter::new(
            sort_cols
                .iter()
                .zip(&self.f.order)
                .map(|(c, k)| SortField::new_with_options(c.data_type().clone(), k.options))
                .collect(),
        )?;
        let parts = pc.convert_columns(&part_cols)?;
        let sorts = sc.convert_columns(&sort_cols)?;
        // Partition, then sort key, then arrival (ties keep arrival order).
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|a, b| {
            parts
                .row(*a)
                .cmp(&parts.row(*b))
                .then(sorts.row(*a).cmp(&sorts.row(*b)))
        });
        let mut keep = Vec::new();
        let mut numbers = Vec::new();
        let mut rank = 0u64;
        for (i, &r) in idx.iter().enumerate() {
            rank = if i > 0 && parts.row(idx[i - 1]) == parts.row(r) {
                rank + 1
            } else {
                1
            };
            if rank as usize <= self.f.limit {
                keep.push(r as u32);
                numbers.push(rank);
            }
        }
        let taken = take_record_batch(&all, &UInt32Array::from(keep))?;
        let mut cols: Vec<ArrayRef> = taken.columns()[..self.f.width].to_vec();
        let rn: ArrayRef = Arc::new(UInt64Array::from(numbers));
        cols.push(cast(&rn, self.f.output.field(self.f.width).data_type())?);
        Ok(Some(RecordBatch::try_new(self.f.output.clone(), cols)?))
    }
}

impl Operator for WindowTopNTask {
    fn process(
        &mut self,
        _input: usize,
        batch: RecordBatch,
        ctx: &mut OperatorContext,
        _out: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        let ends = millis(batch.column(self.f.end))?;
        let mut by_end: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        let mut late = 0u64;
        for (r, e) in ends.iter().enumerate() {
            match e {
                Some(e) if e.saturating_sub(1) > self.watermark => {
                    by_end.entry(e).or_default().push(r as u32)
                }
                _ => late += 1,
            }
        }
        if late > 0 {
            JobMetrics::add(&ctx.metrics.late_rows, late);
        }
        for (end, rows) in by_end {
            let part = if rows.len() == batch.num_rows() {
                batch.clone()
            } else {
                take_record_batch(&batch, &UInt32Array::from(rows))?
            };
            self.pending.entry(end).or_default().push(part);
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        _ctx: &mut OperatorContext,
        out: &mut Vec<RecordBatch>,
    ) -> Result<Option<Watermark>> {
        self.watermark = self.watermark.max(watermark.0);
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().saturating_sub(1) > self.watermark {
                break;
            }
            let rows = entry.remove();
            if let Some(b) = self.fire(&rows)? {
                out.push(b);
            }
        }
        Ok(Some(watermark))
    }

    fn on_close(&mut self, _ctx: &mut OperatorContext, out: &mut Vec<RecordBatch>) -> Result<()> {
        for (_, rows) in std::mem::take(&mut self.pending) {
            if let Some(b) = self.fire(&rows)? {
                out.push(b);
            }
        }
        Ok(())
    }

    /// `window_rank_rows`: open windows' rows, partition columns first;
    /// `window_rank_watermark`.
    fn snapshot(&mut self) -> Result<Vec<TableSnapshot>> {
        let mut tables = Vec::new();
        let batches: Vec<RecordBatch> = self.pending.values().flatten().cloned().collect();
        tables.extend(TableSnapshot::keyed_rows(
            "window_rank_rows",
            &batches,
            &self.f.partition,
            DEFAULT_KEY_GROUPS,
        )?);
        tables.push(TableSnapshot::watermark(
            "window_rank_watermark",
            self.watermark,
        )?);
        Ok(tables)
    }

    fn restore(&mut self, tables: Vec<TableSnapshot>) -> Result<()> {
        let np = self.f.partition.len();
        let mut watermark: Option<i64> = None;
        for t in tables {
            match t.name.as_str() {
                "window_rank_rows" => {
                    let data = t.data()?;
                    if data.num_columns() <= np + self.f.end {
                        return Err(sluice_state::Error::Mismatch(
                            "the window Top-N state has a different shape than the query".into(),
                        )
                        .into());
                    }
                    let rows = data.project(&(np..data.num_columns()).collect::<Vec<_>>())?;
                    let ends = millis(rows.column(self.f.end))?;
                    let mut by_end: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
                    for (r, e) in ends.iter().enumerate() {
                        if let Some(e) = e {
                            by_end.entry(e).or_default().push(r as u32);
                        }
                    }
                    for (end, idx) in by_end {
                        let part = take_record_batch(&rows, &UInt32Array::from(idx))?;
                        self.pending.entry(end).or_default().push(part);
                    }
                }
                "window_rank_watermark" => {
                    if let Some(w) = t.smallest_watermark()? {
                        watermark = Some(watermark.map_or(w, |m| m.min(w)));
                    }
                }
                other => {
                    return Err(sluice_state::Error::unexpected_table("window Top-N", other).into());
                }
            }
        }
        if let Some(w) = watermark {
            self.watermark = self.watermark.max(w);
        }
        Ok(())
    }

    fn state_tables(&self) -> Vec<StateTableSpec> {
        vec![StateTableSpec {
            name: "window_rank_rows".into(),
            kind: StateTableKind::List,
            schema: self.f.output.clone(),
            key_columns: self.f.partition.len(),
        }]
    }
}

impl OperatorFactory for WindowTopN {
    fn name(&self) -> String {
        if self.limit == 1 {
            "WindowDeduplicate".into()
        } else {
            "WindowTopN".into()
        }
    }

    fn describe(&self) -> String {
        format!(
            "orderBy=[{}], rankRange=[1..{}], emitted once per window when the watermark \
             passes its end",
            super::topn::describe_order(&self.order),
            self.limit
        )
    }

    fn schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(WindowTopNTask {
            f: self.clone(),
            pending: BTreeMap::new(),
            watermark: i64::MIN,
        }))
    }

    fn stateless(&self) -> bool {
        false
    }
}
