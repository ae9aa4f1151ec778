//! Errors of the runtime, and of the operators and connectors it runs.

use sluice_types::ErrorKind;

/// A job failed to start or failed while running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A connector (source or sink) failed; `kind` tells whose fault.
    #[error("{message}")]
    Connector {
        /// Whose fault.
        kind: ErrorKind,
        /// The connector's message.
        message: String,
    },
    /// An operator failed evaluating expressions.
    #[error("operator '{operator}': {message}")]
    Operator {
        /// The operator's display name.
        operator: String,
        /// What failed.
        message: String,
    },
    /// Arrow or DataFusion failed.
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// State could not be snapshotted or restored.
    #[error("{0}")]
    State(#[from] sluice_state::Error),
    /// The graph is malformed (a bug in planning).
    #[error("invalid dataflow: {0}")]
    InvalidGraph(String),
    /// A task panicked or was cancelled.
    #[error("task '{task}' failed: {message}")]
    TaskFailed {
        /// The task.
        task: String,
        /// The panic message.
        message: String,
    },
    /// A task kept failing: the restart strategy allowed no more restarts.
    #[error("{source} (after {restarts} restart{})", if *restarts == 1 { "" } else { "s" })]
    RestartsExhausted {
        /// Restarts made.
        restarts: u32,
        /// The last failure.
        source: Box<Error>,
    },
    /// Writing the dead-letter file failed.
    #[error("cannot write dead letters to '{path}': {source}")]
    DeadLetters {
        /// The dead-letter file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Error {
    /// Whose fault this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Connector { kind, .. } => *kind,
            Error::Operator { .. } => ErrorKind::User,
            Error::DataFusion(_) | Error::InvalidGraph(_) | Error::TaskFailed { .. } => {
                ErrorKind::Internal
            }
            Error::DeadLetters { .. } => ErrorKind::External,
            Error::RestartsExhausted { source, .. } => source.kind(),
            Error::State(sluice_state::Error::Mismatch(_)) => ErrorKind::User,
            Error::State(sluice_state::Error::Corrupt(_) | sluice_state::Error::Store(_)) => {
                ErrorKind::External
            }
            Error::State(_) => ErrorKind::Internal,
        }
    }

    /// Whether restarting the job may help.
    pub fn retryable(&self) -> bool {
        self.kind() == ErrorKind::External
    }
}

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        Error::DataFusion(e.into())
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
