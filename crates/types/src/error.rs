//! How errors are classified across crates.
//!
//! Every crate has its own `Error` enum (thiserror); each implements a `kind()` that
//! returns an [`ErrorKind`], which the binary maps to exit codes and the runtime to
//! restart decisions.

use std::fmt;

/// Who is at fault, which decides exit code and retry behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user can fix it: bad SQL, an unknown option, a missing file, bad data.
    User,
    /// Something outside Sluice failed: a broker is down, a disk is full.
    External,
    /// A bug in Sluice.
    Internal,
}

/// A place in a SQL file, for error messages (`file:line:column`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// The file name as the user gave it (empty for inline SQL).
    pub file: String,
    /// 1-based line; 0 when unknown.
    pub line: u64,
    /// 1-based column; 0 when unknown.
    pub column: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = if self.file.is_empty() {
            "<sql>"
        } else {
            &self.file
        };
        match (self.line, self.column) {
            (0, _) => write!(f, "{file}"),
            (l, 0) => write!(f, "{file}:{l}"),
            (l, c) => write!(f, "{file}:{l}:{c}"),
        }
    }
}
