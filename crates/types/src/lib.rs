//! Sluice's shared vocabulary, used by every other crate.
//!
//! Owns: the in-band [`Message`] exchanged between subtasks, checkpoint and watermark
//! ids, the [`ErrorKind`] classification every crate's error reports, the
//! [`DeadLetter`] record, and small Arrow/time helpers.
//! Does not own: anything async (no tokio here), planning, or I/O.
#![warn(missing_docs, unreachable_pub)]

mod changelog;
mod dead_letter;
mod error;
mod message;
mod secrets;
mod time;

pub use changelog::{
    ROW_KIND_COLUMN, RowKind, is_changelog, kinds_of, row_kind_field, row_kinds, without_row_kind,
};
pub use dead_letter::{DeadLetter, MAX_DEAD_LETTER_BYTES};
pub use error::{ErrorKind, Location};
pub use message::{Barrier, CheckpointId, Message, Watermark};
pub use secrets::{is_secret_key, redact, register_secret};
pub use time::{format_duration, parse_duration};

/// Arrow, as re-exported by DataFusion, so every crate builds against one copy.
pub use datafusion::arrow;
