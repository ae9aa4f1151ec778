//! Event-time helpers: reading timestamp columns as epoch milliseconds.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use datafusion::error::Result as DfResult;

/// A timestamp (or integer milliseconds) column as epoch milliseconds; nulls stay null.
pub fn millis(array: &ArrayRef) -> DfResult<Int64Array> {
    match array.data_type() {
        DataType::Int64 => Ok(array
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .clone()),
        _ => {
            let ms = cast(array, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
            let ts = ms.as_primitive::<TimestampMillisecondType>();
            Ok(Int64Array::new(ts.values().clone(), ts.nulls().cloned()))
        }
    }
}

/// The largest non-null value of `a`, if any.
pub fn max_millis(a: &Int64Array) -> Option<i64> {
    datafusion::arrow::compute::max(a)
}
