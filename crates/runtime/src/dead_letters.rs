//! The dead-letter output: a JSON-lines file, created on the first rejected record.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sluice_types::DeadLetter;

use crate::metrics::JobMetrics;
use crate::traits::DeadLetterOutput;
use crate::{Error, Result};

/// Appends dead letters to a file (one JSON object per line) and counts them.
pub struct DeadLetterFile {
    path: PathBuf,
    writer: Mutex<Option<BufWriter<File>>>,
    metrics: Arc<JobMetrics>,
    first_error: Mutex<Option<std::io::Error>>,
}

impl DeadLetterFile {
    /// A dead-letter output writing to `path` (opened for append when first needed).
    pub fn new(path: impl AsRef<Path>, metrics: Arc<JobMetrics>) -> Self {
        DeadLetterFile {
            path: path.as_ref().to_path_buf(),
            writer: Mutex::new(None),
            metrics,
            first_error: Mutex::new(None),
        }
    }

    /// The file dead letters go to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes buffered lines; reports the first write error, if any happened.
    pub fn flush(&self) -> Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = w.as_mut() {
            w.flush().map_err(|source| self.error(source))?;
        }
        if let Some(e) = self
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(self.error(e));
        }
        Ok(())
    }

    fn error(&self, source: std::io::Error) -> Error {
        Error::DeadLetters {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn write_line(&self, line: &str) -> std::io::Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if w.is_none() {
            if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            *w = Some(BufWriter::new(f));
        }
        match w.as_mut() {
            Some(w) => {
                w.write_all(line.as_bytes())?;
                w.write_all(b"\n")?;
                // Dead letters are rare: flush each one so that an abort loses none.
                w.flush()
            }
            None => Ok(()),
        }
    }
}

impl DeadLetterOutput for DeadLetterFile {
    fn send(&self, letter: DeadLetter) {
        JobMetrics::add(&self.metrics.dead_letters, 1);
        tracing::debug!(table = %letter.table, source = %letter.source, offset = letter.offset,
            reason = %letter.reason, "Record sent to the dead letters.");
        if let Err(e) = self.write_line(&letter.to_json_line()) {
            tracing::error!(path = %self.path.display(), error = %e, "Cannot write a dead letter.");
            let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert(e);
        }
    }
}
