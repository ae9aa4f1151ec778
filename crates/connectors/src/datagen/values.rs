//! Making the values of a batch, one column at a time.
//!
//! Owns: value generation per [`Kind`]. Every value is drawn from a small PRNG seeded by
//! (table seed, subtask, row number, field), so a restored subtask regenerates exactly
//! the rows it would have made (timestamps and dates excepted: they follow the wall
//! clock). Sequences take contiguous shares of `start..=end`. Does not own option
//! checking (`fields.rs`) or pacing (`source.rs`).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, ArrowPrimitiveType, BooleanArray, GenericBinaryBuilder, GenericStringBuilder,
    LargeListArray, ListArray, MapArray, OffsetSizeTrait, PrimitiveArray, StructArray,
};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::*;

use super::fields::{FieldGen, Kind};
use crate::Result;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
const NULL_SALT: u64 = 0x6E75_6C6C_6E75_6C6C;
const MS_PER_DAY: i64 = 86_400_000;

/// SplitMix64's finalizer: a good 64-bit hash.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Where a batch sits in its subtask's output.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    /// Row number (within the subtask) of the batch's first row.
    pub(crate) row0: u64,
    pub(crate) subtask: u64,
    pub(crate) parallelism: u64,
    /// Wall-clock time for timestamps and dates.
    pub(crate) now_ms: i64,
}

/// One seed per row of the batch.
pub(crate) fn row_seeds(seed: u64, ctx: &Ctx, rows: usize) -> Vec<u64> {
    let base = mix(seed ^ mix(ctx.subtask.wrapping_add(GOLDEN)));
    (0..rows as u64)
        .map(|j| mix(base ^ mix(ctx.row0 + j)))
        .collect()
}

/// Subtask `i` of `n`'s share `[lo, hi)` of `start..=end`.
pub(crate) fn share(start: i64, end: i64, i: u64, n: u64) -> (i128, i128) {
    let count = i128::from(end) - i128::from(start) + 1;
    let at = |k: u64| i128::from(start) + count * i128::from(k) / i128::from(n.max(1));
    (at(i), at(i + 1))
}

fn prim<T: ArrowPrimitiveType>(
    values: impl Iterator<Item = T::Native>,
    nulls: Option<NullBuffer>,
) -> PrimitiveArray<T> {
    PrimitiveArray::<T>::new(ScalarBuffer::from_iter(values), nulls)
}

macro_rules! ints {
    ($ty:expr, $v:expr, $n:expr, $nulls:expr) => {
        match $ty {
            DataType::Int8 => {
                Arc::new(prim::<Int8Type>((0..$n).map(|j| $v(j) as i8), $nulls)) as ArrayRef
            }
            DataType::Int16 => Arc::new(prim::<Int16Type>((0..$n).map(|j| $v(j) as i16), $nulls)),
            DataType::Int32 => Arc::new(prim::<Int32Type>((0..$n).map(|j| $v(j) as i32), $nulls)),
            DataType::UInt8 => Arc::new(prim::<UInt8Type>((0..$n).map(|j| $v(j) as u8), $nulls)),
            DataType::UInt16 => Arc::new(prim::<UInt16Type>((0..$n).map(|j| $v(j) as u16), $nulls)),
            DataType::UInt32 => Arc::new(prim::<UInt32Type>((0..$n).map(|j| $v(j) as u32), $nulls)),
            DataType::UInt64 => Arc::new(prim::<UInt64Type>((0..$n).map(|j| $v(j) as u64), $nulls)),
            _ => Arc::new(prim::<Int64Type>((0..$n).map(|j| $v(j) as i64), $nulls)),
        }
    };
}

impl FieldGen {
    /// This field's values for the rows with `seeds`.
    pub(crate) fn column(&self, seeds: &[u64], ctx: &Ctx) -> Result<ArrayRef> {
        let n = seeds.len();
        let nulls = self.nulls(seeds);
        let salt = self.salt;
        let rng = |j: usize| Rng(seeds[j] ^ salt);
        Ok(match &self.kind {
            Kind::Bool => {
                let bits = BooleanBuffer::from_iter((0..n).map(|j| rng(j).next_u64() & 1 == 1));
                Arc::new(BooleanArray::new(bits, nulls))
            }
            Kind::Int { ty, min, max } => {
                let span = (max - min) as u128 + 1;
                let v = |j: usize| -> i128 {
                    let r = rng(j).next_u64();
                    if span > u128::from(u64::MAX) {
                        min + i128::from(r)
                    } else {
                        min + ((u128::from(r) * span) >> 64) as i128
                    }
                };
                ints!(ty, v, n, nulls)
            }
            Kind::Float { double, min, max } => {
                let v = |j: usize| {
                    let u = rng(j).unit();
                    let x = min + (max - min) * u;
                    if x.is_finite() {
                        x
                    } else {
                        min * (1.0 - u) + max * u
                    }
                };
                if *double {
                    Arc::new(prim::<Float64Type>((0..n).map(v), nulls))
                } else {
                    Arc::new(prim::<Float32Type>((0..n).map(|j| v(j) as f32), nulls))
                }
            }
            Kind::Decimal {
                precision,
                scale,
                min,
                max,
            } => {
                let span = (max - min) as u128 + 1;
                let v = |j: usize| {
                    let mut r = rng(j);
                    let wide = (u128::from(r.next_u64()) << 64) | u128::from(r.next_u64());
                    min + (wide % span) as i128
                };
                Arc::new(
                    prim::<Decimal128Type>((0..n).map(v), nulls)
                        .with_precision_and_scale(*precision, *scale)?,
                )
            }
            Kind::Str {
                large: false,
                len,
                var_len,
            } => strings::<i32>(n, *len, *var_len, rng, nulls.as_ref()),
            Kind::Str {
                large: true,
                len,
                var_len,
            } => strings::<i64>(n, *len, *var_len, rng, nulls.as_ref()),
            Kind::Bin {
                large: false,
                len,
                var_len,
            } => bytes::<i32>(n, *len, *var_len, rng, nulls.as_ref()),
            Kind::Bin {
                large: true,
                len,
                var_len,
            } => bytes::<i64>(n, *len, *var_len, rng, nulls.as_ref()),
            Kind::Date { max_past_days } => {
                let today = ctx.now_ms.div_euclid(MS_PER_DAY);
                let v = |j: usize| (today - rng(j).below(*max_past_days as u64 + 1) as i64) as i32;
                Arc::new(prim::<Date32Type>((0..n).map(v), nulls))
            }
            Kind::Time { ty } => match ty {
                DataType::Time32(TimeUnit::Second) => Arc::new(prim::<Time32SecondType>(
                    (0..n).map(|j| rng(j).below(86_400) as i32),
                    nulls,
                )),
                DataType::Time32(_) => Arc::new(prim::<Time32MillisecondType>(
                    (0..n).map(|j| rng(j).below(86_400_000) as i32),
                    nulls,
                )),
                DataType::Time64(TimeUnit::Microsecond) => Arc::new(prim::<Time64MicrosecondType>(
                    (0..n).map(|j| rng(j).below(86_400_000_000) as i64),
                    nulls,
                )),
                _ => Arc::new(prim::<Time64NanosecondType>(
                    (0..n).map(|j| rng(j).below(86_400_000_000_000) as i64),
                    nulls,
                )),
            },
            Kind::Timestamp {
                unit,
                tz,
                max_past_ms,
            } => {
                let ms = |j: usize| ctx.now_ms - rng(j).below(*max_past_ms as u64 + 1) as i64;
                let tz = tz.clone();
                match unit {
                    TimeUnit::Second => Arc::new(
                        prim::<TimestampSecondType>((0..n).map(|j| ms(j).div_euclid(1000)), nulls)
                            .with_timezone_opt(tz),
                    ),
                    TimeUnit::Millisecond => Arc::new(
                        prim::<TimestampMillisecondType>((0..n).map(ms), nulls)
                            .with_timezone_opt(tz),
                    ),
                    TimeUnit::Microsecond => Arc::new(
                        prim::<TimestampMicrosecondType>((0..n).map(|j| ms(j) * 1000), nulls)
                            .with_timezone_opt(tz),
                    ),
                    TimeUnit::Nanosecond => Arc::new(
                        prim::<TimestampNanosecondType>((0..n).map(|j| ms(j) * 1_000_000), nulls)
                            .with_timezone_opt(tz),
                    ),
                }
            }
            Kind::Seq { ty, start, end } => {
                let (lo, _) = share(*start, *end, ctx.subtask, ctx.parallelism);
                let v = |j: usize| lo + i128::from(ctx.row0) + j as i128;
                match ty {
                    DataType::Float32 => {
                        Arc::new(prim::<Float32Type>((0..n).map(|j| v(j) as f32), nulls))
                    }
                    DataType::Float64 => {
                        Arc::new(prim::<Float64Type>((0..n).map(|j| v(j) as f64), nulls))
                    }
                    DataType::Decimal128(p, s) => {
                        let mult = 10i128.pow(u32::try_from(*s).unwrap_or(0));
                        Arc::new(
                            prim::<Decimal128Type>((0..n).map(|j| v(j) * mult), nulls)
                                .with_precision_and_scale(*p, *s)?,
                        )
                    }
                    DataType::Utf8 => {
                        let mut b = GenericStringBuilder::<i32>::with_capacity(n, n * 8);
                        (0..n).for_each(|j| b.append_value(v(j).to_string()));
                        Arc::new(b.finish())
                    }
                    DataType::LargeUtf8 => {
                        let mut b = GenericStringBuilder::<i64>::with_capacity(n, n * 8);
                        (0..n).for_each(|j| b.append_value(v(j).to_string()));
                        Arc::new(b.finish())
                    }
                    _ => ints!(ty, v, n, nulls),
                }
            }
            Kind::Struct { fields, children } => {
                let columns = children
                    .iter()
                    .map(|c| c.column(seeds, ctx))
                    .collect::<Result<Vec<_>>>()?;
                Arc::new(StructArray::try_new(fields.clone(), columns, nulls)?)
            }
            Kind::List {
                field,
                large,
                len,
                child,
            } => {
                let values = child.column(&self.element_seeds(seeds, *len), ctx)?;
                let lengths = std::iter::repeat_n(*len, n);
                if *large {
                    Arc::new(LargeListArray::try_new(
                        field.clone(),
                        OffsetBuffer::from_lengths(lengths),
                        values,
                        nulls,
                    )?)
                } else {
                    Arc::new(ListArray::try_new(
                        field.clone(),
                        OffsetBuffer::from_lengths(lengths),
                        values,
                        nulls,
                    )?)
                }
            }
            Kind::Map {
                field,
                sorted,
                len,
                key,
                value,
            } => {
                let element_seeds = self.element_seeds(seeds, *len);
                let DataType::Struct(kv) = field.data_type() else {
                    return Ok(datafusion::arrow::array::new_null_array(
                        field.data_type(),
                        n,
                    ));
                };
                let entries = StructArray::try_new(
                    kv.clone(),
                    vec![
                        key.column(&element_seeds, ctx)?,
                        value.column(&element_seeds, ctx)?,
                    ],
                    None,
                )?;
                let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(*len, n));
                Arc::new(MapArray::try_new(
                    field.clone(),
                    offsets,
                    entries,
                    nulls,
                    *sorted,
                )?)
            }
        })
    }

    /// Which rows are NULL, drawn with `null-rate`.
    fn nulls(&self, seeds: &[u64]) -> Option<NullBuffer> {
        if self.null_rate <= 0.0 {
            return None;
        }
        let valid = seeds
            .iter()
            .map(|s| Rng(s ^ self.salt ^ NULL_SALT).unit() >= self.null_rate);
        Some(NullBuffer::new(BooleanBuffer::from_iter(valid)))
    }

    /// Seeds of the `len` elements of each row's collection.
    fn element_seeds(&self, seeds: &[u64], len: usize) -> Vec<u64> {
        seeds
            .iter()
            .flat_map(|s| (0..len as u64).map(move |k| mix(s ^ self.salt ^ mix(k + 1))))
            .collect()
    }
}

/// Random hex strings, as Flink's datagen makes.
fn strings<O: OffsetSizeTrait>(
    n: usize,
    len: usize,
    var_len: bool,
    rng: impl Fn(usize) -> Rng,
    nulls: Option<&NullBuffer>,
) -> ArrayRef {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = GenericStringBuilder::<O>::with_capacity(n, n * len);
    let mut buf = String::with_capacity(len);
    for j in 0..n {
        if nulls.is_some_and(|nb| nb.is_null(j)) {
            b.append_null();
            continue;
        }
        let mut r = rng(j);
        let l = if var_len && len > 0 {
            1 + r.below(len as u64) as usize
        } else {
            len
        };
        buf.clear();
        while buf.len() < l {
            let mut x = r.next_u64();
            for _ in 0..16.min(l - buf.len()) {
                buf.push(char::from(HEX[(x & 15) as usize]));
                x >>= 4;
            }
        }
        b.append_value(&buf);
    }
    Arc::new(b.finish())
}

/// Random bytes.
fn bytes<O: OffsetSizeTrait>(
    n: usize,
    len: usize,
    var_len: bool,
    rng: impl Fn(usize) -> Rng,
    nulls: Option<&NullBuffer>,
) -> ArrayRef {
    let mut b = GenericBinaryBuilder::<O>::with_capacity(n, n * len);
    let mut buf = Vec::with_capacity(len);
    for j in 0..n {
        if nulls.is_some_and(|nb| nb.is_null(j)) {
            b.append_null();
            continue;
        }
        let mut r = rng(j);
        let l = if var_len && len > 0 {
            1 + r.below(len as u64) as usize
        } else {
            len
        };
        buf.clear();
        while buf.len() < l {
            let x = r.next_u64().to_le_bytes();
            buf.extend_from_slice(&x[..8.min(l - buf.len())]);
        }
        b.append_value(&buf);
    }
    Arc::new(b.finish())
}
