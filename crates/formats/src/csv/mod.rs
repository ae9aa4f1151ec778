//! `'format' = 'csv'`: one row per line, with Flink's options.
//!
//! Owns: the CSV decoder ([`CsvDecoder`]: arrow-csv reading every column as text, then
//! typed fix-ups), the encoder ([`CsvEncoder`]: RFC 4180 quoting, no header), the
//! `csv.*` options and the [`CsvFormat`] registry entry. Does not own: framing (a
//! quoted field cannot span lines).

mod decode;
mod encode;
mod options;
mod split;
#[cfg(test)]
mod tests;

pub use decode::CsvDecoder;
pub use encode::CsvEncoder;
pub use options::CsvFormat;
