//! What an aggregation computes: its group-key columns and DataFusion aggregate
//! function expressions (with their `FILTER (WHERE …)` clauses).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};
use datafusion::physical_expr::GroupsAccumulatorAdapter;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::PhysicalExpr;
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use sluice_state::{StateTableKind, StateTableSpec};

/// The group keys and aggregate functions of one aggregation.
#[derive(Debug, Clone)]
pub struct AggregateSpec {
    /// Input column indices of the group keys, in output order.
    pub keys: Vec<usize>,
    /// The aggregate functions, in output order (after the keys).
    pub aggs: Vec<Arc<AggregateFunctionExpr>>,
    /// Each function's `FILTER (WHERE …)`, if any.
    pub filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    /// The input schema (without a row-kind column).
    pub input: SchemaRef,
    /// The output schema: keys, then aggregates (without a row-kind column).
    pub output: SchemaRef,
}

impl AggregateSpec {
    /// A fresh hash table of group keys.
    pub(crate) fn group_values(&self) -> DfResult<Box<dyn GroupValues>> {
        let key_schema = Arc::new(self.input.project(&self.keys)?);
        new_group_values(key_schema, &GroupOrdering::None)
    }

    /// Fresh vectorized accumulators, one per function.
    pub(crate) fn groups_accumulators(&self) -> DfResult<Vec<Box<dyn GroupsAccumulator>>> {
        self.aggs
            .iter()
            .map(|a| {
                if a.groups_accumulator_supported() {
                    a.create_groups_accumulator()
                } else {
                    let a = a.clone();
                    Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
                        a.create_accumulator()
                    })) as Box<dyn GroupsAccumulator>)
                }
            })
            .collect()
    }

    /// Fresh row accumulators for one group.
    pub(crate) fn accumulators(&self) -> DfResult<Vec<Box<dyn Accumulator>>> {
        self.aggs.iter().map(|a| a.create_accumulator()).collect()
    }

    /// Fresh row accumulators for one group; with `retracting`, the kind that can take
    /// rows back (DataFusion's sliding accumulators: `SUM`, `MIN`, `MAX` over a
    /// changelog need them).
    pub(crate) fn accumulators_for(&self, retracting: bool) -> DfResult<Vec<Box<dyn Accumulator>>> {
        if !retracting {
            return self.accumulators();
        }
        self.aggs
            .iter()
            .map(|a| a.create_sliding_accumulator())
            .collect()
    }

    /// The key columns of `batch`.
    pub(crate) fn key_columns(&self, batch: &RecordBatch) -> Vec<ArrayRef> {
        self.keys.iter().map(|k| batch.column(*k).clone()).collect()
    }

    /// Each function's argument arrays and filter over `batch`.
    pub(crate) fn arguments(
        &self,
        batch: &RecordBatch,
    ) -> DfResult<Vec<(Vec<ArrayRef>, Option<BooleanArray>)>> {
        let n = batch.num_rows();
        self.aggs
            .iter()
            .zip(&self.filters)
            .map(|(a, f)| {
                let values = a
                    .expressions()
                    .iter()
                    .map(|e| e.evaluate(batch)?.into_array(n))
                    .collect::<DfResult<Vec<_>>>()?;
                let filter = match f {
                    Some(f) => {
                        let arr = f.evaluate(batch)?.into_array(n)?;
                        let b = arr
                            .as_any()
                            .downcast_ref::<BooleanArray>()
                            .cloned()
                            .ok_or_else(|| {
                                datafusion::error::DataFusionError::Internal(
                                    "FILTER clause is not boolean".into(),
                                )
                            })?;
                        Some(b)
                    }
                    None => None,
                };
                Ok((values, filter))
            })
            .collect()
    }

    /// How many state columns each function's accumulator has.
    pub(crate) fn state_widths(&self) -> DfResult<Vec<usize>> {
        self.aggs
            .iter()
            .map(|a| Ok(a.state_fields()?.len()))
            .collect()
    }

    /// The key columns and each function's state columns of a set of groups, for a
    /// snapshot. Reading the state consumes it, so the groups are rebuilt from it.
    pub(crate) fn snapshot_groups(
        &self,
        groups: &mut Box<dyn GroupValues>,
        accs: &mut Vec<Box<dyn GroupsAccumulator>>,
    ) -> DfResult<(Vec<ArrayRef>, Vec<ArrayRef>)> {
        let keys = groups.emit(EmitTo::All)?;
        let mut states = Vec::new();
        for acc in accs.iter_mut() {
            states.extend(acc.state(EmitTo::All)?);
        }
        *groups = self.group_values()?;
        *accs = self.groups_accumulators()?;
        self.merge_groups(groups.as_mut(), accs, &keys, &states)?;
        Ok((keys, states))
    }

    /// Merges snapshotted groups (key columns, then every function's state columns in
    /// order) into `groups`/`accs`.
    pub(crate) fn merge_groups(
        &self,
        groups: &mut dyn GroupValues,
        accs: &mut [Box<dyn GroupsAccumulator>],
        keys: &[ArrayRef],
        states: &[ArrayRef],
    ) -> DfResult<()> {
        let mut idx = Vec::new();
        groups.intern(keys, &mut idx)?;
        let total = groups.len();
        let mut at = 0;
        for (acc, w) in accs.iter_mut().zip(self.state_widths()?) {
            let cols = states.get(at..at + w).ok_or_else(|| {
                datafusion::error::DataFusionError::Execution(
                    "the snapshot has fewer aggregate state columns than the query".into(),
                )
            })?;
            acc.merge_batch(cols, &idx, total)?;
            at += w;
        }
        Ok(())
    }

    /// The layout of this aggregation's state: the keys (and, for windows, the window
    /// end), then each function's accumulator state.
    pub(crate) fn state_table(
        &self,
        name: &str,
        kind: StateTableKind,
        windowed: bool,
    ) -> Option<StateTableSpec> {
        let mut fields: Vec<FieldRef> = self
            .keys
            .iter()
            .map(|k| Arc::new(self.input.field(*k).clone()))
            .collect();
        if windowed {
            fields.push(Arc::new(Field::new("__window_end", DataType::Int64, false)));
        }
        let key_columns = fields.len();
        for a in &self.aggs {
            fields.extend(a.state_fields().ok()?);
        }
        Some(StateTableSpec {
            name: name.to_string(),
            kind,
            schema: Arc::new(Schema::new(fields)),
            key_columns,
        })
    }

    /// One-line description for EXPLAIN.
    pub(crate) fn describe(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| self.input.field(*k).name().clone())
            .collect();
        let aggs: Vec<String> = self.aggs.iter().map(|a| a.name().to_string()).collect();
        format!(
            "groupBy=[{}], select=[{}]",
            keys.join(", "),
            aggs.join(", ")
        )
    }
}

/// The states of one group's row accumulators, for a snapshot. Reading a state may
/// consume it, so `accs` is replaced by `fresh` accumulators merged from the states.
pub(crate) fn read_states(
    accs: &mut Vec<Box<dyn Accumulator>>,
    mut fresh: Vec<Box<dyn Accumulator>>,
) -> DfResult<Vec<datafusion::common::ScalarValue>> {
    let mut row = Vec::new();
    for (acc, new) in accs.iter_mut().zip(fresh.iter_mut()) {
        let values = acc.state()?;
        let arrays = values
            .iter()
            .map(|v| v.to_array())
            .collect::<DfResult<Vec<_>>>()?;
        new.merge_batch(&arrays)?;
        row.extend(values);
    }
    *accs = fresh;
    Ok(row)
}
