//! Anomaly-detection aggregates over a group's time-stamped readings, as
//! DataFusion aggregate UDFs:
//!
//! - `ZSCORE(value, ts)`: how far the latest reading lies from the group's
//!   mean, in sample standard deviations: `(x_last - mean) / stddev_samp`;
//! - `EWMA(value, ts, alpha)`: the exponentially weighted moving average of
//!   the readings in time order: `s_1 = x_1`,
//!   `s_k = alpha * x_k + (1 - alpha) * s_(k-1)`, `alpha` a constant in (0, 1];
//! - `MAD_SCORE(value, ts)`: the robust score of the latest reading,
//!   `(x_last - median) / (1.4826 * MAD)` with `MAD = median(|x_i - median|)`.
//!
//! `value` is any number (computed as DOUBLE), `ts` a TIMESTAMP of any unit
//! and time zone, or an integer; a row where either is NULL is skipped. The
//! latest reading is the one with the greatest `ts`, and the greatest value
//! among readings with that `ts`; EWMA takes readings with equal `ts` in
//! ascending value order. Results are DOUBLE and NULL for a group without
//! readings; ZSCORE and MAD_SCORE are also NULL with fewer than two readings
//! or a zero spread (every value equal, MAD = 0).
//!
//! Each accumulator keeps its group's readings as a sorted multiset of
//! `(ts, value)` pairs, about 50 bytes per distinct pair, and computes a
//! result from the whole multiset when asked (cached until the next change).
//! So results are bit-for-bit the same whatever the arrival order and batch
//! split, partial states merge exactly (the state is two lists, `ts` and
//! `value`, in sorted order) and a retraction takes back exactly one pair.
//! Memory per group grows with the group's row count: meant for windows and
//! for groups of bounded size.
//!
//! Owns the functions' semantics only: the streaming operators that drive
//! the accumulators live in `sluice-operators`, and DataFusion's
//! `GroupsAccumulatorAdapter` vectorizes these row accumulators.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, PrimitiveArray, RecordBatch,
};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, FieldRef, Float64Type, Int64Type, Schema,
};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{Result, ScalarValue, internal_datafusion_err, internal_err, plan_err};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Expr, Signature, Volatility,
};
use datafusion::physical_plan::PhysicalExpr;

use super::args::float_type;

/// Makes the MAD a consistent estimator of the standard deviation of normal data.
const MAD_SCALE: f64 = 1.4826;

/// `ZSCORE(value, ts)`.
pub(crate) fn zscore() -> AggregateUDF {
    AnomalyUdaf::new(Statistic::ZScore).into_udaf()
}

/// `EWMA(value, ts, alpha)`.
pub(crate) fn ewma() -> AggregateUDF {
    AnomalyUdaf::new(Statistic::Ewma).into_udaf()
}

/// `MAD_SCORE(value, ts)`.
pub(crate) fn mad_score() -> AggregateUDF {
    AnomalyUdaf::new(Statistic::MadScore).into_udaf()
}

/// What an [`AnomalyUdaf`] computes from its readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Statistic {
    ZScore,
    Ewma,
    MadScore,
}

impl Statistic {
    /// The registered name (resolved case-insensitively).
    fn name(self) -> &'static str {
        match self {
            Statistic::ZScore => "zscore",
            Statistic::Ewma => "ewma",
            Statistic::MadScore => "mad_score",
        }
    }

    /// The name as written in messages.
    fn sql(self) -> &'static str {
        match self {
            Statistic::ZScore => "ZSCORE",
            Statistic::Ewma => "EWMA",
            Statistic::MadScore => "MAD_SCORE",
        }
    }

    /// The parameter list, for messages.
    fn params(self) -> &'static str {
        match self {
            Statistic::Ewma => "value, ts, alpha",
            Statistic::ZScore | Statistic::MadScore => "value, ts",
        }
    }

    fn arity(self) -> usize {
        match self {
            Statistic::Ewma => 3,
            Statistic::ZScore | Statistic::MadScore => 2,
        }
    }
}

/// One anomaly aggregate; see the module docs.
#[derive(Debug, PartialEq, Eq, Hash)]
struct AnomalyUdaf {
    score: Statistic,
    signature: Signature,
}

impl AnomalyUdaf {
    fn new(score: Statistic) -> Self {
        AnomalyUdaf {
            score,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    fn into_udaf(self) -> AggregateUDF {
        AggregateUDF::new_from_impl(self)
    }
}

impl AggregateUDFImpl for AnomalyUdaf {
    fn name(&self) -> &str {
        self.score.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce(self.score, arg_types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.is_distinct {
            return plan_err!("{}: DISTINCT is not supported", self.score.sql());
        }
        let alpha = match self.score {
            Statistic::Ewma => constant_alpha(args.exprs.get(2))?,
            Statistic::ZScore | Statistic::MadScore => 1.0,
        };
        Ok(Box::new(ReadingsAccumulator::new(self.score, alpha)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            list_field(format_state_name(args.name, "ts"), DataType::Int64),
            list_field(format_state_name(args.name, "value"), DataType::Float64),
        ])
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    /// Not a rewrite: checks the call at plan time (DISTINCT, EWMA's alpha),
    /// so that a bad call fails before any row is read.
    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        let score = self.score;
        Some(Box::new(move |call, _| {
            check_call(score, &call)?;
            Ok(Expr::AggregateFunction(call))
        }))
    }
}

/// A nullable `List` state field of `item` values.
fn list_field(name: String, item: DataType) -> FieldRef {
    let item = Arc::new(Field::new_list_field(item, true));
    Arc::new(Field::new(name, DataType::List(item), true))
}

/// Argument types: `value` to DOUBLE, `ts` to BIGINT (timestamps keep their
/// order whatever the unit), `alpha` to DOUBLE.
fn coerce(score: Statistic, t: &[DataType]) -> Result<Vec<DataType>> {
    let f = score.sql();
    if t.len() != score.arity() {
        return plan_err!(
            "{f} takes {} arguments ({}), got {}",
            score.arity(),
            score.params(),
            t.len()
        );
    }
    let mut out = vec![float_type(f, &t[0])?, time_type(f, &t[1])?];
    if score == Statistic::Ewma {
        out.push(float_type(f, &t[2])?);
    }
    Ok(out)
}

fn time_type(f: &str, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Timestamp(_, _) | DataType::Null => Ok(DataType::Int64),
        t if t.is_integer() => Ok(DataType::Int64),
        t => plan_err!("{f}: ts must be a TIMESTAMP or an integer, got {t}"),
    }
}

/// Plan-time checks of a call whose arguments are already simplified.
fn check_call(score: Statistic, call: &AggregateFunction) -> Result<()> {
    if call.params.distinct {
        return plan_err!("{}: DISTINCT is not supported", score.sql());
    }
    if score == Statistic::Ewma {
        match call.params.args.get(2) {
            Some(Expr::Literal(v, _)) => {
                alpha_value(v)?;
            }
            Some(e) if !e.column_refs().is_empty() || e.is_volatile() => {
                return plan_err!("EWMA: alpha must be a constant DOUBLE in (0, 1], got {e}");
            }
            // A constant left unfolded: checked when the accumulator is made.
            _ => {}
        }
    }
    Ok(())
}

/// EWMA's alpha from its (constant) physical expression.
fn constant_alpha(expr: Option<&Arc<dyn PhysicalExpr>>) -> Result<f64> {
    let Some(expr) = expr else {
        return plan_err!("EWMA takes 3 arguments (value, ts, alpha)");
    };
    // A constant evaluates without input columns; anything else fails here.
    let no_columns = RecordBatch::new_empty(Arc::new(Schema::empty()));
    match expr.evaluate(&no_columns) {
        Ok(ColumnarValue::Scalar(v)) => alpha_value(&v),
        _ => plan_err!("EWMA: alpha must be a constant DOUBLE in (0, 1], got {expr}"),
    }
}

fn alpha_value(v: &ScalarValue) -> Result<f64> {
    let alpha = match v.cast_to(&DataType::Float64) {
        Ok(ScalarValue::Float64(Some(a))) => a,
        _ => f64::NAN,
    };
    if alpha > 0.0 && alpha <= 1.0 {
        Ok(alpha)
    } else {
        plan_err!("EWMA: alpha must be a constant DOUBLE in (0, 1], got {v}")
    }
}

/// One non-NULL row: its time (in the units of `ts`) and value. Ordered by
/// time, then value (IEEE total order).
#[derive(Debug, Clone, Copy)]
struct Reading {
    ts: i64,
    value: f64,
}

impl Reading {
    /// Canonical NaN and zero, so that numerically equal values are one key.
    fn new(ts: i64, value: f64) -> Self {
        let value = if value.is_nan() {
            f64::NAN
        } else if value == 0.0 {
            0.0
        } else {
            value
        };
        Reading { ts, value }
    }
}

impl Ord for Reading {
    fn cmp(&self, other: &Self) -> Ordering {
        self.ts
            .cmp(&other.ts)
            .then(self.value.total_cmp(&other.value))
    }
}

impl PartialOrd for Reading {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Reading {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Reading {}

/// A group's readings: a sorted multiset.
#[derive(Debug, Default)]
struct Readings {
    counts: BTreeMap<Reading, usize>,
    len: usize,
}

impl Readings {
    fn add(&mut self, r: Reading) {
        *self.counts.entry(r).or_default() += 1;
        self.len += 1;
    }

    /// Takes back one copy of `r`; false if there is none.
    fn remove(&mut self, r: Reading) -> bool {
        let Some(n) = self.counts.get_mut(&r) else {
            return false;
        };
        *n -= 1;
        if *n == 0 {
            self.counts.remove(&r);
        }
        self.len -= 1;
        true
    }

    /// Every reading, in order, repeated as often as it was added.
    fn iter(&self) -> impl Iterator<Item = Reading> + '_ {
        self.counts
            .iter()
            .flat_map(|(r, n)| std::iter::repeat_n(*r, *n))
    }

    /// The latest value (greatest `ts`, then greatest value).
    fn last(&self) -> Option<f64> {
        self.counts.last_key_value().map(|(r, _)| r.value)
    }

    /// `(x_last - mean) / stddev_samp`.
    fn zscore(&self) -> Option<f64> {
        let last = self.last()?;
        let first = self.counts.first_key_value()?.0.value;
        if self.len < 2 || self.iter().all(|r| r.value == first) {
            return None;
        }
        let n = self.len as f64;
        let mean = self.iter().map(|r| r.value).sum::<f64>() / n;
        let var = self.iter().map(|r| (r.value - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let sd = var.sqrt();
        (sd != 0.0).then(|| (last - mean) / sd)
    }

    /// The exponentially weighted moving average in reading order.
    fn ewma(&self, alpha: f64) -> Option<f64> {
        let mut values = self.iter().map(|r| r.value);
        let first = values.next()?;
        Some(values.fold(first, |s, x| alpha * x + (1.0 - alpha) * s))
    }

    /// `(x_last - median) / (1.4826 * MAD)`.
    fn mad_score(&self) -> Option<f64> {
        let last = self.last()?;
        if self.len < 2 {
            return None;
        }
        let mut values: Vec<f64> = self.iter().map(|r| r.value).collect();
        values.sort_by(f64::total_cmp);
        let med = median(&values)?;
        let mut deviations: Vec<f64> = values.iter().map(|x| (x - med).abs()).collect();
        deviations.sort_by(f64::total_cmp);
        let mad = median(&deviations)?;
        (mad != 0.0).then(|| (last - med) / (MAD_SCALE * mad))
    }
}

/// The median of sorted values (the mean of the middle two for an even count).
fn median(sorted: &[f64]) -> Option<f64> {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted.get(mid).copied()
    } else {
        Some((sorted.get(mid.checked_sub(1)?)? + sorted.get(mid)?) / 2.0)
    }
}

/// The row accumulator behind every anomaly aggregate.
#[derive(Debug)]
struct ReadingsAccumulator {
    score: Statistic,
    /// EWMA's smoothing factor (unused by the others).
    alpha: f64,
    readings: Readings,
    /// The last result, until the readings change.
    cached: Option<Option<f64>>,
}

impl ReadingsAccumulator {
    fn new(score: Statistic, alpha: f64) -> Self {
        ReadingsAccumulator {
            score,
            alpha,
            readings: Readings::default(),
            cached: None,
        }
    }

    /// The non-NULL readings of `value` and `ts` columns.
    fn readings_of<'a>(
        value: &'a ArrayRef,
        ts: &'a ArrayRef,
    ) -> Result<impl Iterator<Item = Reading> + 'a> {
        let value = primitive::<Float64Type>(value, "value")?;
        let ts = primitive::<Int64Type>(ts, "ts")?;
        if value.len() != ts.len() {
            return internal_err!(
                "anomaly aggregate: {} values but {} times",
                value.len(),
                ts.len()
            );
        }
        Ok((0..value.len())
            .filter(|&i| value.is_valid(i) && ts.is_valid(i))
            .map(|i| Reading::new(ts.value(i), value.value(i))))
    }

    /// The `value` and `ts` argument columns of an update or retraction.
    fn columns(values: &[ArrayRef]) -> Result<(&ArrayRef, &ArrayRef)> {
        match values {
            [value, ts, ..] => Ok((value, ts)),
            _ => internal_err!("anomaly aggregate: expected (value, ts) columns"),
        }
    }
}

/// `a` as a primitive array of `T` (argument coercion guarantees the type).
fn primitive<'a, T: ArrowPrimitiveType>(
    a: &'a ArrayRef,
    what: &str,
) -> Result<&'a PrimitiveArray<T>> {
    a.as_primitive_opt::<T>().ok_or_else(|| {
        internal_datafusion_err!("anomaly aggregate: {what} column is {}", a.data_type())
    })
}

impl Accumulator for ReadingsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (value, ts) = Self::columns(values)?;
        for r in Self::readings_of(value, ts)? {
            self.readings.add(r);
        }
        self.cached = None;
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (value, ts) = Self::columns(values)?;
        self.cached = None;
        for r in Self::readings_of(value, ts)? {
            if !self.readings.remove(r) {
                return internal_err!(
                    "{}: retracting a row that was never added (ts {}, value {})",
                    self.score.sql(),
                    r.ts,
                    r.value
                );
            }
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let result = match self.cached {
            Some(v) => v,
            None => {
                let v = match self.score {
                    Statistic::ZScore => self.readings.zscore(),
                    Statistic::Ewma => self.readings.ewma(self.alpha),
                    Statistic::MadScore => self.readings.mad_score(),
                };
                self.cached = Some(v);
                v
            }
        };
        Ok(ScalarValue::Float64(result))
    }

    fn size(&self) -> usize {
        // B-tree nodes are at least half full: at most twice the entries' size.
        let entry = size_of::<Reading>() + size_of::<usize>();
        size_of_val(self) + 2 * entry * self.readings.counts.len()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let ts = Int64Array::from_iter_values(self.readings.iter().map(|r| r.ts));
        let values = Float64Array::from_iter_values(self.readings.iter().map(|r| r.value));
        Ok(vec![
            SingleRowListArrayBuilder::new(Arc::new(ts)).build_list_scalar(),
            SingleRowListArrayBuilder::new(Arc::new(values)).build_list_scalar(),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [ts, values, ..] = states else {
            return internal_err!("anomaly aggregate: expected (ts, value) state columns");
        };
        let (Some(ts), Some(values)) = (ts.as_list_opt::<i32>(), values.as_list_opt::<i32>())
        else {
            return internal_err!("anomaly aggregate: state columns are not lists");
        };
        if ts.len() != values.len() {
            return internal_err!("anomaly aggregate: state columns differ in length");
        }
        self.cached = None;
        for i in 0..ts.len() {
            if ts.is_null(i) || values.is_null(i) {
                continue;
            }
            for r in Self::readings_of(&values.value(i), &ts.value(i))? {
                self.readings.add(r);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Accumulator-level tests (order, batch split, merge, retraction) and SQL
    //! through a Sluice-configured context.

    use datafusion::physical_expr::expressions::{Column, lit};

    use super::super::tests::{ctx, rows_of};
    use super::*;

    /// `(value, ts)` columns; `None` is NULL.
    fn columns(rows: &[(Option<f64>, Option<i64>)]) -> Vec<ArrayRef> {
        let v: Float64Array = rows.iter().map(|r| r.0).collect();
        let t: Int64Array = rows.iter().map(|r| r.1).collect();
        vec![Arc::new(v), Arc::new(t)]
    }

    fn some(rows: &[(f64, i64)]) -> Vec<(Option<f64>, Option<i64>)> {
        rows.iter().map(|(v, t)| (Some(*v), Some(*t))).collect()
    }

    const ALL: [Statistic; 3] = [Statistic::ZScore, Statistic::Ewma, Statistic::MadScore];

    fn acc(score: Statistic) -> ReadingsAccumulator {
        ReadingsAccumulator::new(score, 0.3)
    }

    fn eval_rows(score: Statistic, rows: &[(Option<f64>, Option<i64>)]) -> Option<f64> {
        let mut a = acc(score);
        a.update_batch(&columns(rows)).expect("update");
        match a.evaluate().expect("evaluate") {
            ScalarValue::Float64(v) => v,
            other => panic!("not a DOUBLE: {other:?}"),
        }
    }

    fn round4(v: Option<f64>) -> Option<f64> {
        v.map(|x| (x * 1e4).round() / 1e4)
    }

    /// A deterministic shuffle (no RNG dependency in this crate).
    fn shuffled<T: Clone>(items: &[T], mut seed: u64) -> Vec<T> {
        let mut out = items.to_vec();
        for i in (1..out.len()).rev() {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            out.swap(i, (seed >> 33) as usize % (i + 1));
        }
        out
    }

    /// Sensor-like readings with ties on `ts`, repeats and a spike at the end.
    fn sample() -> Vec<(f64, i64)> {
        let mut rows: Vec<(f64, i64)> = (0..40)
            .map(|i| {
                (
                    20.0 + f64::from(i % 7) * 0.37 - f64::from(i % 3) * 0.11,
                    i64::from(i / 2),
                )
            })
            .collect();
        rows.extend([(21.0, 5), (21.0, 5)]);
        rows.push((35.5, 19));
        rows
    }

    #[test]
    fn known_values() {
        let rows = some(&[(1.0, 1), (2.0, 2), (3.0, 3), (4.0, 4), (10.0, 5)]);
        // mean 4, stddev_samp sqrt(12.5); median 3, MAD 1.
        assert_eq!(round4(eval_rows(Statistic::ZScore, &rows)), Some(1.6971));
        assert_eq!(round4(eval_rows(Statistic::MadScore, &rows)), Some(4.7214));
        let mut a = ReadingsAccumulator::new(Statistic::Ewma, 0.5);
        a.update_batch(&columns(&some(&[(3.0, 3), (1.0, 1), (2.0, 2)])))
            .expect("update");
        assert_eq!(
            a.evaluate().expect("evaluate"),
            ScalarValue::Float64(Some(2.25))
        );
    }

    #[test]
    fn ties_on_ts_are_deterministic() {
        // The latest reading among equal ts is the largest value.
        let rows = some(&[(1.0, 1), (2.0, 1), (9.0, 2), (3.0, 2)]);
        let mean = 3.75;
        let sd =
            ((2.75f64.powi(2) + 1.75f64.powi(2) + 5.25f64.powi(2) + 0.75f64.powi(2)) / 3.0).sqrt();
        assert_eq!(eval_rows(Statistic::ZScore, &rows), Some((9.0 - mean) / sd));
        // EWMA takes equal ts in ascending value order: 1, 2, 3, 9.
        let mut a = ReadingsAccumulator::new(Statistic::Ewma, 0.5);
        a.update_batch(&columns(&rows)).expect("update");
        assert_eq!(
            a.evaluate().expect("evaluate"),
            ScalarValue::Float64(Some(5.625))
        );
    }

    #[test]
    fn order_and_batch_split_do_not_matter() {
        let rows = some(&sample());
        for score in ALL {
            let whole = acc_over(score, &[&rows]).evaluate().expect("evaluate");
            for seed in 1..6 {
                let mixed = shuffled(&rows, seed);
                let (a, rest) = mixed.split_at(7);
                let (b, c) = rest.split_at(20);
                let split = acc_over(score, &[a, b, &[], c])
                    .evaluate()
                    .expect("evaluate");
                assert_eq!(whole, split, "{score:?} seed {seed}");

                // Two partial states merged in one call, and one at a time.
                let (left, right) = mixed.split_at(seed as usize * 5);
                let states = [acc_over(score, &[left]), acc_over(score, &[right])]
                    .map(|mut a| a.state().expect("state"));
                let mut merged = acc(score);
                let cols: Vec<ArrayRef> = (0..2)
                    .map(|c| {
                        ScalarValue::iter_to_array(states.iter().map(|s| s[c].clone()))
                            .expect("state column")
                    })
                    .collect();
                merged.merge_batch(&cols).expect("merge");
                assert_eq!(whole, merged.evaluate().expect("evaluate"), "{score:?}");

                let mut one_by_one = acc_over(score, &[left]);
                let right_state = acc_over(score, &[right]).state().expect("state");
                let cols: Vec<ArrayRef> = right_state
                    .iter()
                    .map(|s| s.to_array().expect("state column"))
                    .collect();
                one_by_one.merge_batch(&cols).expect("merge");
                assert_eq!(whole, one_by_one.evaluate().expect("evaluate"));
            }
        }
    }

    fn acc_over(
        score: Statistic,
        batches: &[&[(Option<f64>, Option<i64>)]],
    ) -> ReadingsAccumulator {
        let mut a = acc(score);
        for b in batches {
            a.update_batch(&columns(b)).expect("update");
        }
        a
    }

    #[test]
    fn nulls_are_skipped() {
        let clean = some(&[(1.0, 1), (2.0, 2), (3.0, 3), (10.0, 5)]);
        let mut dirty = clean.clone();
        dirty.extend([(None, Some(9)), (Some(99.0), None), (None, None)]);
        for score in ALL {
            assert_eq!(
                eval_rows(score, &clean),
                eval_rows(score, &dirty),
                "{score:?}"
            );
            assert_eq!(
                eval_rows(score, &[(None, Some(1)), (Some(1.0), None)]),
                None
            );
        }
    }

    #[test]
    fn too_few_or_equal_values_give_null() {
        for score in ALL {
            assert_eq!(eval_rows(score, &[]), None, "{score:?}");
        }
        let one = some(&[(4.5, 1)]);
        assert_eq!(eval_rows(Statistic::ZScore, &one), None);
        assert_eq!(eval_rows(Statistic::MadScore, &one), None);
        assert_eq!(eval_rows(Statistic::Ewma, &one), Some(4.5));
        // Equal values: stddev and MAD are 0, even where 0.1 + 0.1 + 0.1 rounds.
        let flat = some(&[(0.1, 1), (0.1, 2), (0.1, 3)]);
        assert_eq!(eval_rows(Statistic::ZScore, &flat), None);
        assert_eq!(eval_rows(Statistic::MadScore, &flat), None);
        // More than half equal: MAD is 0 although the stddev is not.
        let mostly = some(&[(5.0, 1), (5.0, 2), (5.0, 3), (9.0, 4)]);
        assert_eq!(eval_rows(Statistic::MadScore, &mostly), None);
        assert_eq!(round4(eval_rows(Statistic::ZScore, &mostly)), Some(1.5));
    }

    #[test]
    fn retraction_takes_back_one_pair() {
        let rows = some(&sample());
        for score in ALL {
            let mut a = acc_over(score, &[&rows]);
            // Retract the spike (the latest reading) and a repeated pair once.
            let gone = some(&[(35.5, 19), (21.0, 5)]);
            a.retract_batch(&columns(&gone)).expect("retract");
            let mut kept = rows.clone();
            for g in &gone {
                let i = kept.iter().position(|r| r == g).expect("a sample row");
                kept.remove(i);
            }
            let want = acc_over(score, &[&kept]).evaluate().expect("evaluate");
            assert_eq!(a.evaluate().expect("evaluate"), want, "{score:?}");
            // NULL rows are skipped on retraction too; taking everything back empties the group.
            a.retract_batch(&columns(&[(None, Some(1))]))
                .expect("retract");
            a.retract_batch(&columns(&kept)).expect("retract");
            assert_eq!(a.evaluate().expect("evaluate"), ScalarValue::Float64(None));
            assert!(a.supports_retract_batch());
            // A pair that was never added is a bug upstream, reported as such.
            let err = a
                .retract_batch(&columns(&some(&[(1.0, 1)])))
                .expect_err("nothing to retract");
            assert!(err.to_string().contains("never added"), "{err}");
        }
    }

    #[test]
    fn alpha_must_be_a_constant_in_range() {
        for good in [0.01, 0.5, 1.0] {
            assert_eq!(constant_alpha(Some(&lit(good))).expect("valid"), good);
        }
        for bad in [
            lit(0.0),
            lit(1.5),
            lit(-0.2),
            lit(f64::NAN),
            lit(ScalarValue::Float64(None)),
        ] {
            let err = constant_alpha(Some(&bad)).expect_err("invalid alpha");
            assert!(
                err.to_string().contains("alpha must be a constant"),
                "{err}"
            );
        }
        let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new("a", 0));
        assert!(constant_alpha(Some(&column)).is_err());
        assert!(constant_alpha(None).is_err());
    }

    #[test]
    fn state_round_trips_through_arrays() {
        let mut a = acc_over(Statistic::MadScore, &[&some(&sample())]);
        let state = a.state().expect("state");
        let fields = AnomalyUdaf::new(Statistic::MadScore)
            .state_fields(StateFieldsArgs {
                name: "m",
                input_fields: &[],
                return_field: Arc::new(Field::new("m", DataType::Float64, true)),
                ordering_fields: &[],
                is_distinct: false,
            })
            .expect("state fields");
        for (s, f) in state.iter().zip(&fields) {
            assert_eq!(&s.data_type(), f.data_type());
        }
    }

    async fn sql(q: &str) -> datafusion::common::Result<Vec<String>> {
        rows_of(&ctx(), q).await
    }

    const READINGS: &str = "(VALUES ('a', 1.0, 1), ('a', 2.0, 2), ('a', 3.0, 3), ('a', 4.0, 4), \
        ('a', 10.0, 5), ('b', 7, 3), ('b', NULL, 4), ('b', 5, 1)) AS r(k, v, t)";

    #[tokio::test]
    async fn sql_group_by() {
        let q = format!("SELECT k, ROUND(ZSCORE(v, t), 4) FROM {READINGS} GROUP BY k ORDER BY k");
        let rows = rows_of(&ctx(), &q).await.expect("query");
        assert_eq!(rows, ["a", "b"]);
        for (q, want) in [
            ("ROUND(ZSCORE(v, t), 4)", ["1.6971", "0.7071"]),
            ("ROUND(Mad_Score(v, t), 4)", ["4.7214", "0.6745"]),
            ("EWMA(v, t, 0.5)", ["6.5625", "6.0"]),
            ("ewma(v, t, 1)", ["10.0", "7.0"]),
        ] {
            let got = sql(&format!("SELECT {q} FROM {READINGS} GROUP BY k ORDER BY k"))
                .await
                .unwrap_or_else(|e| panic!("{q}: {e}"));
            assert_eq!(got, want, "{q}");
        }
    }

    #[tokio::test]
    async fn sql_timestamps_and_types() {
        // Timestamps of any unit and zone; DECIMAL and integer values.
        let readings = "(VALUES (1, TIMESTAMP '2024-01-01 00:00:01+02:00'), \
            (10, TIMESTAMP '2024-01-01 00:00:05+02:00'), (2, TIMESTAMP '2024-01-01 00:00:02+02:00'), \
            (3, TIMESTAMP '2024-01-01 00:00:03+02:00'), (4, TIMESTAMP '2024-01-01 00:00:04+02:00')) AS r(v, t)";
        for (q, want) in [
            ("ROUND(ZSCORE(v, t), 4)", "1.6971"),
            (
                "ROUND(MAD_SCORE(CAST(v AS DECIMAL(10, 2)), CAST(t AS TIMESTAMP)), 4)",
                "4.7214",
            ),
            (
                "EWMA(CAST(v AS TINYINT), CAST(t AS TIMESTAMP(0)), 0.5)",
                "6.5625",
            ),
            (
                "ROUND(ZSCORE(v, CAST(CAST(t AS TIMESTAMP) AS BIGINT)), 4)",
                "1.6971",
            ),
        ] {
            let got = sql(&format!("SELECT {q} FROM {readings}"))
                .await
                .unwrap_or_else(|e| panic!("{q}: {e}"));
            assert_eq!(got, [want], "{q}");
        }
        let err = sql("SELECT ZSCORE(1, 'x')").await.expect_err("string ts");
        assert!(err.to_string().contains("ts must be a TIMESTAMP"), "{err}");
        let err = sql("SELECT ZSCORE(1)").await.expect_err("arity");
        assert!(err.to_string().contains("takes 2 arguments"), "{err}");
    }

    #[tokio::test]
    async fn sql_bad_alpha_fails_at_plan_time() {
        for alpha in ["0", "1.5", "-1", "NULL", "v"] {
            let q = format!("SELECT EWMA(v, t, {alpha}) FROM {READINGS}");
            let err = match ctx().sql(&q).await {
                Ok(df) => df.collect().await.expect_err("bad alpha").to_string(),
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains("alpha must be a constant DOUBLE in (0, 1]"),
                "{alpha}: {err}"
            );
        }
        let err = sql(&format!("SELECT ZSCORE(DISTINCT v, t) FROM {READINGS}"))
            .await
            .expect_err("distinct");
        assert!(
            err.to_string().contains("DISTINCT is not supported"),
            "{err}"
        );
    }
}
