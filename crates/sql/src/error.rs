//! Errors of the SQL layer: every user error carries a `file:line:column`.

use sluice_types::{ErrorKind, Location};

/// A pipeline file could not be parsed or planned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad SQL: syntax, unknown table or column, type mismatch. The message says what
    /// to do.
    #[error("{location}: {message}")]
    Sql {
        /// Where.
        location: Location,
        /// What is wrong, and the fix.
        message: String,
    },
    /// A table's connector or format rejected its options.
    #[error("{location}: {source}")]
    Connector {
        /// The `CREATE TABLE` statement (or the statement using the table).
        location: Location,
        /// The connector's error.
        source: Box<sluice_connectors::Error>,
    },
    /// Valid Flink SQL that Sluice does not run yet.
    #[error("{location}: {message}")]
    Unsupported {
        /// Where.
        location: Location,
        /// What is unsupported and what to do instead.
        message: String,
    },
    /// A bug in planning.
    #[error("internal planning error at {location}: {message}")]
    Internal {
        /// The statement being planned.
        location: Location,
        /// Details.
        message: String,
    },
}

impl Error {
    /// Whose fault this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Sql { .. } | Error::Unsupported { .. } => ErrorKind::User,
            Error::Connector { source, .. } => source.kind(),
            Error::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// Where in the SQL file.
    pub fn location(&self) -> &Location {
        match self {
            Error::Sql { location, .. }
            | Error::Connector { location, .. }
            | Error::Unsupported { location, .. }
            | Error::Internal { location, .. } => location,
        }
    }

    /// A connector error located at a statement.
    pub fn connector(location: &Location, source: sluice_connectors::Error) -> Self {
        Error::Connector {
            location: location.clone(),
            source: Box::new(source),
        }
    }

    /// Shorthand for a SQL error.
    pub fn sql(location: &Location, message: impl Into<String>) -> Self {
        Error::Sql {
            location: location.clone(),
            message: message.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
