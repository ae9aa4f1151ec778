//! Errors of the server: bad configuration, a pipeline that does not plan, a data
//! directory that cannot be written.

use sluice_types::ErrorKind;

/// Something the server could not do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user's input was wrong (configuration, a setting, a request); the message
    /// says what to do.
    #[error("{0}")]
    User(String),
    /// No pipeline by that name.
    #[error("{0}")]
    NotFound(String),
    /// The pipeline is not in a state that allows this (stopping a stopped one).
    #[error("{0}")]
    Conflict(String),
    /// The server is not ready for changes yet (restoring its pipelines).
    #[error("{0}")]
    NotReady(String),
    /// The pipeline's SQL did not plan.
    #[error(transparent)]
    Plan(#[from] sluice_sql::Error),
    /// The job could not be built.
    #[error(transparent)]
    Runtime(#[from] sluice_runtime::Error),
    /// A file of the data directory could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// Which file, doing what.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl Error {
    /// Whose fault this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::User(_) | Error::NotFound(_) | Error::Conflict(_) => ErrorKind::User,
            Error::NotReady(_) => ErrorKind::External,
            Error::Plan(e) => e.kind(),
            Error::Runtime(e) => e.kind(),
            Error::Io { .. } => ErrorKind::External,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// The server's result type.
pub type Result<T> = std::result::Result<T, Error>;
