//! Framing and formats: bytes in, Arrow `RecordBatch`es out, and back.
//!
//! Owns: splitting byte streams into records ([`framing`]), the [`Decoder`] and
//! [`Encoder`] traits, their implementations per format ([`json`], [`csv`]), the format
//! registry ([`decoder_for`], [`encoder_for`], [`validate_options`]) and per-record
//! error reporting as [`DeadLetter`](sluice_types::DeadLetter)s.
//! Does not own: where bytes come from or go to (connectors), or writing dead letters
//! anywhere (the runtime does).
#![warn(missing_docs, unreachable_pub)]

pub mod avro;
pub mod cdc;
mod common;
pub mod csv;
mod error;
pub mod framing;
pub mod json;
mod options;
pub mod parquet;
pub mod protobuf;
pub mod raw;
mod registry;
mod traits;

pub use error::{Error, Result};
pub use options::FormatOptions;
pub use registry::{
    FormatFactory, decoder_for, encoder_for, formats, is_binary_format, is_changelog_format,
    is_file_format, validate_options,
};
pub use traits::{Decoded, Decoder, Encoder};
