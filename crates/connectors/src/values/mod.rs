//! A bounded source of literal rows: what `INSERT INTO t VALUES (…)` reads from.
//! Not a `'connector'`: the planner creates it directly.

mod source;

pub use source::ValuesSourceFactory;
