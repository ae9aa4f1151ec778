//! Unbounded `GROUP BY`: keeps one set of accumulators per key forever and turns every
//! input batch into a changelog of the keys it touched: `+I` for a new key, `-U`/`+U`
//! when a key's result changed (nothing when it did not), `-D` when every row of a key
//! was retracted. Accepts an updating input when every function can retract.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int8Array, Int64Array, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::{filter as filter_array, take};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_plan::aggregates::group_values::GroupValues;
use sluice_runtime::{Operator, OperatorContext, OperatorFactory, Result, TaskInfo};
use sluice_state::{DEFAULT_KEY_GROUPS, StateTableKind, StateTableSpec, TableSnapshot};
use sluice_types::{RowKind, row_kind_field, row_kinds};

use super::spec::{AggregateSpec, read_states};

/// Factory of [`GroupAggregate`] subtasks.
#[derive(Debug, Clone)]
pub struct GroupAggregate {
    spec: Arc<AggregateSpec>,
    /// Whether the input is a changelog (its last column is the row kind).
    updating_input: bool,
    output: SchemaRef,
}

impl GroupAggregate {
    /// An unbounded aggregation; its output is `spec.output` plus the row kind.
    pub fn new(spec: AggregateSpec, updating_input: bool) -> Self {
        let mut fields: Vec<_> = spec.output.fields().iter().cloned().collect();
        fields.push(Arc::new(row_kind_field()));
        GroupAggregate {
            output: Arc::new(Schema::new(fields)),
            spec: Arc::new(spec),
            updating_input,
        }
    }

    /// The first function that cannot take back a row (a changelog input needs all to).
    pub fn non_retracting(&self) -> Option<String> {
        self.spec.aggs.iter().find_map(|a| {
            let acc = a.create_sliding_accumulator().ok()?;
            (!acc.supports_retract_batch()).then(|| a.name().to_string())
        })
    }
}

struct Group {
    key: Vec<ScalarValue>,
    accs: Vec<Box<dyn Accumulator>>,
    /// Rows accumulated minus rows retracted.
    count: i64,
    /// The result last emitted (None: nothing visible downstream).
    last: Option<Vec<ScalarValue>>,
}

struct GroupAggregateTask {
    spec: Arc<AggregateSpec>,
    updating_input: bool,
    output: SchemaRef,
    /// Key → group number (`None` without keys: one global group).
    index: Option<Box<dyn GroupValues>>,
    groups: Vec<Group>,
    indices: Vec<usize>,
}

impl GroupAggregateTask {
    fn apply(&mut self, batch: &RecordBatch) -> DfResult<Option<RecordBatch>> {
        let n = batch.num_rows();
        let keys = self.spec.key_columns(batch);
        let mut indices = std::mem::take(&mut self.indices);
        match &mut self.index {
            Some(index) => index.intern(&keys, &mut indices)?,
            None => {
                // No keys: one global group.
                indices.clear();
                indices.resize(n, 0);
            }
        }
        // New groups are numbered in order of first appearance.
        for (row, &g) in indices.iter().enumerate() {
            if g == self.groups.len() {
                let key = keys
                    .iter()
                    .map(|k| ScalarValue::try_from_array(k, row))
                    .collect::<DfResult<Vec<_>>>()?;
                self.groups.push(Group {
                    key,
                    accs: self.spec.accumulators_for(self.updating_input)?,
                    count: 0,
                    last: None,
                });
            }
        }
        let kinds: Option<Vec<bool>> = if self.updating_input {
            row_kinds(batch).map(|k| {
                k.values()
                    .iter()
                    .map(|v| RowKind::from_i8(*v).is_accumulate())
                    .collect()
            })
        } else {
            None
        };
        let args = self.spec.arguments(batch)?;
        // Rows of each touched group, in input order.
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by_key(|r| indices[*r as usize]);
        let mut touched = Vec::new();
        let mut start = 0;
        while start < n {
            let g = indices[order[start] as usize];
            let mut end = start + 1;
            while end < n && indices[order[end] as usize] == g {
                end += 1;
            }
            let rows = &order[start..end];
            self.update_group(g, rows, &args, kinds.as_deref())?;
            touched.push(g);
            start = end;
        }
        self.indices = indices;
        self.emit(&touched)
    }

    fn update_group(
        &mut self,
        g: usize,
        rows: &[u32],
        args: &[(Vec<ArrayRef>, Option<BooleanArray>)],
        kinds: Option<&[bool]>,
    ) -> DfResult<()> {
        let (add, retract): (Vec<u32>, Vec<u32>) = match kinds {
            Some(k) => rows.iter().partition(|r| k[**r as usize]),
            None => (rows.to_vec(), Vec::new()),
        };
        let group = &mut self.groups[g];
        group.count += add.len() as i64 - retract.len() as i64;
        for (rows, is_add) in [(add, true), (retract, false)] {
            if rows.is_empty() {
                continue;
            }
            let idx = UInt32Array::from(rows);
            for (acc, (values, filter)) in group.accs.iter_mut().zip(args) {
                let mut taken = values
                    .iter()
                    .map(|v| take(v.as_ref(), &idx, None))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                if let Some(f) = filter {
                    let f = take(f, &idx, None)?;
                    let f = f
                        .as_any()
                        .downcast_ref::<BooleanArray>()
                        .cloned()
                        .unwrap_or_else(|| BooleanArray::from(vec![true; idx.len()]));
                    taken = taken
                        .iter()
                        .map(|v| filter_array(v.as_ref(), &f))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                }
                if is_add {
                    acc.update_batch(&taken)?;
                } else {
                    acc.retract_batch(&taken)?;
                }
            }
        }
        Ok(())
    }

    fn emit(&mut self, touched: &[usize]) -> DfResult<Option<RecordBatch>> {
        let mut rows: Vec<(RowKind, usize, Vec<ScalarValue>)> = Vec::new();
        for &g in touched {
            let group = &mut self.groups[g];
            if group.count <= 0 {
                if let Some(last) = group.last.take() {
                    rows.push((RowKind::Delete, g, last));
                }
                continue;
            }
            let now = group
                .accs
                .iter_mut()
                .map(|a| a.evaluate())
                .collect::<DfResult<Vec<_>>>()?;
            match group.last.replace(now.clone()) {
                None => rows.push((RowKind::Insert, g, now)),
                Some(before) if before != now => {
                    rows.push((RowKind::UpdateBefore, g, before));
                    rows.push((RowKind::UpdateAfter, g, now));
                }
                Some(_) => {}
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let nkeys = self.spec.keys.len();
        let naggs = self.spec.aggs.len();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(nkeys + naggs + 1);
        for k in 0..nkeys {
            cols.push(ScalarValue::iter_to_array(
                rows.iter().map(|(_, g, _)| self.groups[*g].key[k].clone()),
            )?);
        }
        for a in 0..naggs {
            let field = self.spec.output.field(nkeys + a);
            let arr = ScalarValue::iter_to_array(rows.iter().map(|(_, _, v)| v[a].clone()))?;
            let arr = if arr.data_type() != field.data_type() {
                datafusion::arrow::compute::cast(&arr, field.data_type())?
            } else {
                arr
            };
            cols.push(arr);
        }
        cols.push(Arc::new(Int8Array::from_iter_values(
            rows.iter().map(|(k, _, _)| *k as i8),
        )));
        Ok(Some(RecordBatch::try_new(self.output.clone(), cols)?))
    }
}

impl Operator for GroupAggregateTask {
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

    /// `group_acc`: per key, the key columns, the row count, the result last emitted
    /// (`__visible` false when none is) and every function's accumulator state.
    fn snapshot(&mut self) -> Result<Vec<TableSnapshot>> {
        let nk = self.spec.keys.len();
        let naggs = self.spec.aggs.len();
        if self.groups.is_empty() {
            return Ok(Vec::new());
        }
        let mut cols: Vec<(String, ArrayRef)> = Vec::new();
        for k in 0..nk {
            cols.push((
                format!("__key{k}"),
                ScalarValue::iter_to_array(self.groups.iter().map(|g| g.key[k].clone()))?,
            ));
        }
        cols.push((
            "__count".into(),
            Arc::new(Int64Array::from_iter_values(
                self.groups.iter().map(|g| g.count),
            )),
        ));
        cols.push((
            "__visible".into(),
            Arc::new(BooleanArray::from_iter(
                self.groups.iter().map(|g| Some(g.last.is_some())),
            )),
        ));
        for a in 0..naggs {
            let dt = self.spec.output.field(nk + a).data_type().clone();
            let values = self
                .groups
                .iter()
                .map(|g| match &g.last {
                    Some(v) => v[a].cast_to(&dt),
                    None => ScalarValue::try_from(&dt),
                })
                .collect::<DfResult<Vec<_>>>()?;
            cols.push((format!("__last{a}"), ScalarValue::iter_to_array(values)?));
        }
        // Reading an accumulator's state may consume it: each is rebuilt from its state.
        let mut states: Vec<Vec<ScalarValue>> = Vec::new();
        for g in &mut self.groups {
            states.push(read_states(
                &mut g.accs,
                self.spec.accumulators_for(self.updating_input)?,
            )?);
        }
        let width = states.first().map_or(0, Vec::len);
        for c in 0..width {
            cols.push((
                format!("__state{c}"),
                ScalarValue::iter_to_array(states.iter().map(|r| r[c].clone()))?,
            ));
        }
        Ok(vec![TableSnapshot::keyed(
            "group_acc",
            cols,
            nk,
            DEFAULT_KEY_GROUPS,
        )?])
    }

    fn restore(&mut self, tables: Vec<TableSnapshot>) -> Result<()> {
        let nk = self.spec.keys.len();
        let naggs = self.spec.aggs.len();
        let widths = self.spec.state_widths()?;
        for t in tables {
            if t.name != "group_acc" {
                return Err(
                    sluice_state::Error::unexpected_table("group aggregate", &t.name).into(),
                );
            }
            let data = t.data()?;
            if data.num_columns() != nk + 2 + naggs + widths.iter().sum::<usize>() {
                return Err(sluice_state::Error::Mismatch(
                    "the aggregation's state has a different shape than the query".into(),
                )
                .into());
            }
            let keys: Vec<ArrayRef> = data.columns()[..nk].to_vec();
            let mut indices = Vec::new();
            match &mut self.index {
                Some(index) => index.intern(&keys, &mut indices)?,
                None => indices.resize(data.num_rows(), 0),
            }
            let counts = data
                .column(nk)
                .as_any()
                .downcast_ref::<Int64Array>()
                .cloned()
                .unwrap_or_else(|| Int64Array::from(vec![0; data.num_rows()]));
            let visible = data
                .column(nk + 1)
                .as_any()
                .downcast_ref::<BooleanArray>()
                .cloned()
                .unwrap_or_else(|| BooleanArray::from(vec![false; data.num_rows()]));
            for (r, &g) in indices.iter().enumerate() {
                if g == self.groups.len() {
                    self.groups.push(Group {
                        key: keys
                            .iter()
                            .map(|k| ScalarValue::try_from_array(k, r))
                            .collect::<DfResult<Vec<_>>>()?,
                        accs: self.spec.accumulators_for(self.updating_input)?,
                        count: 0,
                        last: None,
                    });
                }
                let group = &mut self.groups[g];
                group.count += counts.value(r);
                if visible.value(r) {
                    group.last = Some(
                        (0..naggs)
                            .map(|a| ScalarValue::try_from_array(data.column(nk + 2 + a), r))
                            .collect::<DfResult<Vec<_>>>()?,
                    );
                }
                let mut at = nk + 2 + naggs;
                for (acc, w) in group.accs.iter_mut().zip(&widths) {
                    let arrays: Vec<ArrayRef> = data.columns()[at..at + w]
                        .iter()
                        .map(|c| c.slice(r, 1))
                        .collect();
                    acc.merge_batch(&arrays)?;
                    at += w;
                }
            }
        }
        Ok(())
    }

    fn state_tables(&self) -> Vec<StateTableSpec> {
        self.spec
            .state_table("group_acc", StateTableKind::Value, false)
            .into_iter()
            .collect()
    }
}

impl OperatorFactory for GroupAggregate {
    fn name(&self) -> String {
        "GroupAggregate".into()
    }

    fn describe(&self) -> String {
        format!("{}, changelog", self.spec.describe())
    }

    fn schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn create(&self, _task: &TaskInfo) -> Result<Box<dyn Operator>> {
        Ok(Box::new(GroupAggregateTask {
            spec: self.spec.clone(),
            updating_input: self.updating_input,
            output: self.output.clone(),
            index: if self.spec.keys.is_empty() {
                None
            } else {
                Some(self.spec.group_values()?)
            },
            groups: Vec::new(),
            indices: Vec::new(),
        }))
    }

    fn stateless(&self) -> bool {
        false
    }
}
