//! Errors of the formats crate.

use sluice_types::ErrorKind;

/// A format could not be set up or failed internally. Bad records are not errors:
/// they become dead letters.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `'format' = '…'` names no known format.
    #[error("unknown format '{name}'; known formats: {known}")]
    UnknownFormat {
        /// What the user wrote.
        name: String,
        /// The formats Sluice knows, comma separated.
        known: String,
    },
    /// A format option is unknown or has a bad value.
    #[error("option '{option}': {message}")]
    BadOption {
        /// The full option name, e.g. `json.ignore-parse-errors`.
        option: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// The table's schema has a type this format cannot carry.
    #[error("format '{format}' cannot handle column '{column}' of type {data_type}")]
    UnsupportedType {
        /// The format.
        format: String,
        /// The column.
        column: String,
        /// The column's type.
        data_type: String,
    },
    /// Arrow failed in a way that is not attributable to one record.
    #[error("arrow error: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

impl Error {
    /// Whose fault this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::UnknownFormat { .. }
            | Error::BadOption { .. }
            | Error::UnsupportedType { .. } => ErrorKind::User,
            Error::Arrow(_) => ErrorKind::Internal,
        }
    }

    /// Whether trying again may succeed.
    pub fn retryable(&self) -> bool {
        false
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
