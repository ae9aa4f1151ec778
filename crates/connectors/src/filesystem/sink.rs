//! The filesystem sink: each subtask writes part files into the output directory.
//!
//! A part file is written under a hidden in-progress name (`.part-….inprogress`) and
//! renamed to `part-<run>-<instance>-<n>.<ext>` when it rolls or the input ends, so a
//! reader never sees a half-written file.
//!
//! With checkpoints the sink is exactly-once by two-phase commit: a rolled file stays
//! hidden; on a barrier the open file is finished too and every finished file is
//! pre-committed (synced to disk and listed in the checkpoint); when the checkpoint
//! completes they are renamed into view. After a crash, the restarted job renames what
//! the checkpoint listed (a rename already done is skipped) and deletes the hidden
//! files the crashed run wrote after it, whose rows are read again.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use sluice_formats::{Encoder, FormatOptions};
use sluice_runtime::{Delivery, Sink, SinkFactory, TaskInfo};
use sluice_types::CheckpointId;

use super::config::FilesystemSinkConfig;
use crate::{ConnectorTable, Error, Result};

/// Creates one [`FilesystemSink`] per subtask.
pub struct FilesystemSinkFactory {
    table: ConnectorTable,
    config: FilesystemSinkConfig,
    /// Distinguishes the part files of separate runs into one directory.
    run_id: String,
    /// Sink instances created so far (a restart creates new ones, with new names).
    instances: AtomicU64,
}

impl FilesystemSinkFactory {
    /// Validates the format against the schema up front (a bad type is a plan error).
    pub fn new(table: &ConnectorTable, config: FilesystemSinkConfig) -> Result<Self> {
        let _ = encoder(table, &config)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Ok(FilesystemSinkFactory {
            table: table.clone(),
            config,
            run_id: format!("{:x}", nanos & 0xffff_ffff_ffff),
            instances: AtomicU64::new(0),
        })
    }
}

fn encoder(table: &ConnectorTable, config: &FilesystemSinkConfig) -> Result<Box<dyn Encoder>> {
    let opts = FormatOptions {
        table: table.name.clone(),
        schema: table.schema.clone(),
        options: config.format_options.clone(),
    };
    sluice_formats::encoder_for(&config.format, &opts).map_err(|source| Error::Format {
        table: table.name.clone(),
        source,
    })
}

impl SinkFactory for FilesystemSinkFactory {
    fn name(&self) -> String {
        format!(
            "Sink: {} (filesystem, {})",
            self.table.name, self.config.format
        )
    }

    fn schema(&self) -> SchemaRef {
        self.table.schema.clone()
    }

    fn parallelism(&self) -> Option<usize> {
        self.config.parallelism
    }

    fn create(&self, _task: &TaskInfo) -> sluice_runtime::Result<Box<dyn Sink>> {
        Ok(Box::new(FilesystemSink {
            table: self.table.name.clone(),
            dir: self.config.path.clone(),
            ext: self.config.format.clone(),
            run_id: self.run_id.clone(),
            prefix: format!(
                "part-{}-{}",
                self.run_id,
                self.instances.fetch_add(1, Ordering::Relaxed)
            ),
            encoder: encoder(&self.table, &self.config)?,
            file_size: self.config.file_size,
            rollover: self.config.rollover_interval,
            current: None,
            counter: 0,
            buf: Vec::with_capacity(1 << 20),
            two_phase: false,
            finished: Vec::new(),
            precommitted: Vec::new(),
        }))
    }
}

struct PartFile {
    tmp: PathBuf,
    writer: BufWriter<File>,
    bytes: u64,
    opened: Instant,
}

/// Writes one subtask's part files.
pub(crate) struct FilesystemSink {
    table: String,
    /// This run's part of the file names.
    run_id: String,
    dir: PathBuf,
    ext: String,
    prefix: String,
    encoder: Box<dyn Encoder>,
    file_size: u64,
    rollover: std::time::Duration,
    current: Option<PartFile>,
    counter: u64,
    buf: Vec<u8>,
    /// Checkpointing: finished files wait for a checkpoint before they are renamed.
    two_phase: bool,
    /// Finished files (hidden, synced) not yet pre-committed: (in-progress, final).
    finished: Vec<(PathBuf, PathBuf)>,
    /// Pre-committed files by checkpoint, waiting for it to complete.
    precommitted: Vec<(u64, Vec<(PathBuf, PathBuf)>)>,
}

impl FilesystemSink {
    fn io(&self, path: &std::path::Path, source: std::io::Error) -> sluice_runtime::Error {
        Error::Output {
            table: self.table.clone(),
            path: path.display().to_string(),
            source,
        }
        .into()
    }

    fn part_name(&self) -> String {
        format!("{}-{}.{}", self.prefix, self.counter, self.ext)
    }

    fn open_part(&mut self) -> sluice_runtime::Result<()> {
        let tmp = self.dir.join(format!(".{}.inprogress", self.part_name()));
        let file = File::create(&tmp).map_err(|e| self.io(&tmp, e))?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        let header = self.encoder.header();
        writer.write_all(&header).map_err(|e| self.io(&tmp, e))?;
        self.current = Some(PartFile {
            tmp,
            writer,
            bytes: header.len() as u64,
            opened: Instant::now(),
        });
        Ok(())
    }

    /// Finishes the current part file: makes it visible, or with checkpoints keeps it
    /// hidden until a checkpoint covers it.
    fn roll(&mut self) -> sluice_runtime::Result<()> {
        let Some(mut part) = self.current.take() else {
            return Ok(());
        };
        // What completes the file (a Parquet footer).
        self.buf.clear();
        self.encoder
            .finish_file(&mut self.buf)
            .map_err(|source| Error::Format {
                table: self.table.clone(),
                source,
            })?;
        part.writer
            .write_all(&self.buf)
            .map_err(|e| self.io(&part.tmp, e))?;
        part.writer.flush().map_err(|e| self.io(&part.tmp, e))?;
        let file = part
            .writer
            .into_inner()
            .map_err(|e| self.io(&part.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| self.io(&part.tmp, e))?;
        let dest = self.dir.join(self.part_name());
        self.counter += 1;
        if self.two_phase {
            self.finished.push((part.tmp, dest));
            Ok(())
        } else {
            std::fs::rename(&part.tmp, &dest).map_err(|e| self.io(&dest, e))
        }
    }

    /// Makes one pre-committed file visible; done already (after a restart) is fine.
    fn commit_file(
        &self,
        tmp: &std::path::Path,
        dest: &std::path::Path,
    ) -> sluice_runtime::Result<()> {
        match std::fs::rename(tmp, dest) {
            Ok(()) => Ok(()),
            Err(_) if !tmp.exists() && dest.exists() => Ok(()),
            Err(e) => Err(Error::Output {
                table: self.table.clone(),
                path: dest.display().to_string(),
                source: std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot commit '{}' (pre-committed by a checkpoint): {e}",
                        tmp.display()
                    ),
                ),
            }
            .into()),
        }
    }
}

/// What a pre-commit records: the files to rename (in-progress, final).
#[derive(serde::Serialize, serde::Deserialize)]
struct PreCommit {
    files: Vec<(PathBuf, PathBuf)>,
}

#[async_trait]
impl Sink for FilesystemSink {
    async fn open(&mut self, task: &TaskInfo) -> sluice_runtime::Result<()> {
        self.two_phase = task.checkpointing;
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io(&self.dir.clone(), e))
    }

    async fn pre_commit(
        &mut self,
        checkpoint: CheckpointId,
    ) -> sluice_runtime::Result<serde_json::Value> {
        self.roll()?;
        let files = std::mem::take(&mut self.finished);
        if !files.is_empty() {
            self.precommitted.push((checkpoint.0, files));
        }
        if self.precommitted.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        let all = PreCommit {
            files: self
                .precommitted
                .iter()
                .flat_map(|(_, f)| f.iter().cloned())
                .collect(),
        };
        Ok(serde_json::to_value(all).unwrap_or_default())
    }

    async fn commit(&mut self, checkpoint: CheckpointId) -> sluice_runtime::Result<()> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.precommitted)
            .into_iter()
            .partition(|(id, _)| *id <= checkpoint.0);
        self.precommitted = later;
        for (tmp, dest) in due.iter().flat_map(|(_, f)| f) {
            self.commit_file(tmp, dest)?;
        }
        Ok(())
    }

    async fn recover(
        &mut self,
        pending: Vec<serde_json::Value>,
        undone: Vec<serde_json::Value>,
    ) -> sluice_runtime::Result<()> {
        let parse = |v: serde_json::Value| -> sluice_runtime::Result<PreCommit> {
            serde_json::from_value(v).map_err(|e| {
                Error::Unsupported {
                    table: self.table.clone(),
                    message: format!("the checkpoint's pending files do not parse: {e}"),
                }
                .into()
            })
        };
        let mut keep = std::collections::HashSet::new();
        for v in pending {
            for (tmp, dest) in &parse(v)?.files {
                self.commit_file(tmp, dest)?;
                keep.insert(tmp.clone());
            }
        }
        // Files that only a skipped (damaged) newer checkpoint committed: their rows
        // come again from the older checkpoint's offsets.
        let mut removed = 0;
        for v in undone {
            for (tmp, dest) in parse(v)?.files {
                if !keep.contains(&tmp) {
                    removed += usize::from(std::fs::remove_file(&dest).is_ok());
                    let _ = std::fs::remove_file(&tmp);
                }
            }
        }
        if removed > 0 {
            tracing::warn!(
                table = %self.table,
                "Removed {removed} part file(s) that a skipped checkpoint had committed; their rows are written again."
            );
        }
        // In-progress files of earlier runs that no checkpoint covers: their rows are
        // read again. (One job writes to a directory: another job's would go too.)
        let ours = format!(".part-{}-", self.run_id);
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(".part-")
                    && name.ends_with(".inprogress")
                    && !name.starts_with(&ours)
                    && !keep.contains(&e.path())
                {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> sluice_runtime::Result<()> {
        if self.current.is_none() {
            self.open_part()?;
        }
        self.buf.clear();
        self.encoder
            .encode(&batch, &mut self.buf)
            .map_err(|source| Error::Format {
                table: self.table.clone(),
                source,
            })?;
        let roll = {
            let Some(part) = self.current.as_mut() else {
                return Ok(());
            };
            if let Err(e) = part.writer.write_all(&self.buf) {
                let tmp = part.tmp.clone();
                return Err(self.io(&tmp, e));
            }
            part.bytes += self.buf.len() as u64;
            part.bytes >= self.file_size || part.opened.elapsed() >= self.rollover
        };
        if roll {
            self.roll()?;
        }
        Ok(())
    }

    async fn close(&mut self) -> sluice_runtime::Result<()> {
        self.roll()
    }

    fn delivery(&self) -> Delivery {
        if self.two_phase {
            Delivery::ExactlyOnce
        } else {
            Delivery::AtLeastOnce
        }
    }
}
