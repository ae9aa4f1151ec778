//! Machinery shared by the row formats (JSON, CSV).
//!
//! Owns: the record buffer ([`records`]), the flush algorithm with its fallback
//! ([`flush`]), column fix-ups ([`fixup`]), the message encoders' row loop ([`messages`]), Flink's date/time text forms ([`temporal`])
//! and SQL type names for messages ([`sql_type`]). Does not own: anything format specific.

pub(crate) mod fixup;
pub(crate) mod flush;
pub(crate) mod messages;
pub(crate) mod records;
pub(crate) mod sql_type;
pub(crate) mod temporal;
#[cfg(test)]
pub(crate) mod testing;
