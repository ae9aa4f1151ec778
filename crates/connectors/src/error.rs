//! Errors of the connectors crate.

use sluice_types::ErrorKind;

/// A connector could not be set up, or failed while running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `'connector' = '…'` names no known connector.
    #[error("unknown connector '{name}'; known connectors: {known}")]
    UnknownConnector {
        /// What the user wrote.
        name: String,
        /// The connectors Sluice knows.
        known: String,
    },
    /// A required option is missing.
    #[error("table '{table}': connector '{connector}' needs option '{option}'. {hint}")]
    MissingOption {
        /// The table.
        table: String,
        /// The connector.
        connector: String,
        /// The missing option.
        option: String,
        /// An example of what to write.
        hint: String,
    },
    /// An option is unknown, or its value is bad.
    #[error("table '{table}': option '{option}': {message}")]
    BadOption {
        /// The table.
        table: String,
        /// The option.
        option: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// The connector cannot be used this way (a sink-only connector as a source, say).
    #[error("table '{table}': {message}")]
    Unsupported {
        /// The table.
        table: String,
        /// What is not supported and what to do instead.
        message: String,
    },
    /// A file or directory the user named does not exist or cannot be read.
    #[error("table '{table}': cannot read '{path}': {source}")]
    Input {
        /// The table.
        table: String,
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing output failed.
    #[error("table '{table}': cannot write '{path}': {source}")]
    Output {
        /// The table.
        table: String,
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A format failed to set up.
    #[error("table '{table}': {source}")]
    Format {
        /// The table.
        table: String,
        /// The format error.
        source: sluice_formats::Error,
    },
    /// A database or broker refused or failed a request.
    #[error("table '{table}': {message}")]
    External {
        /// The table.
        table: String,
        /// What failed, with the server's own message.
        message: String,
        /// Whether trying again may succeed (the connection broke, the server restarts).
        retryable: bool,
    },
    /// Arrow failed on data that should have been valid.
    #[error("arrow error: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

impl Error {
    /// Whose fault this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::UnknownConnector { .. }
            | Error::MissingOption { .. }
            | Error::BadOption { .. }
            | Error::Unsupported { .. }
            | Error::Input { .. } => ErrorKind::User,
            Error::Output { .. } | Error::External { .. } => ErrorKind::External,
            Error::Format { source, .. } => source.kind(),
            Error::Arrow(_) => ErrorKind::Internal,
        }
    }

    /// Whether trying again may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Output { .. } => true,
            Error::External { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

impl From<Error> for sluice_runtime::Error {
    fn from(e: Error) -> Self {
        let kind = e.kind();
        sluice_runtime::Error::Connector {
            kind,
            message: e.to_string(),
        }
    }
}

/// `e` with the errors that caused it, `outer: inner: innermost` (a client library's
/// top-level message alone rarely says what went wrong, e.g. which certificate).
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut m = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !m.contains(&text) {
            m.push_str(": ");
            m.push_str(&text);
        }
        cause = c.source();
    }
    m
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
