//! `'format' = 'json'`: newline-delimited JSON objects, with Flink's options.
//!
//! Owns: the JSON decoder ([`JsonDecoder`]: arrow-json's tape decoder on the fast path,
//! record-by-record isolation of bad records on the slow path), the encoder
//! ([`JsonEncoder`]), the `json.*` options and the [`JsonFormat`] registry entry.
//! Does not own: framing (see [`crate::framing`]).

mod decode;
mod diagnose;
mod encode;
mod options;
#[cfg(test)]
pub(crate) mod tests;

pub use decode::JsonDecoder;
pub use encode::JsonEncoder;
pub use options::JsonFormat;
