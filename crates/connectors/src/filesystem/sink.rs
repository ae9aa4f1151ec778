//! The filesystem sink: each subtask writes part files into the output directory.
//!
//! A part file is written under a hidden in-progress name (`.part-….inprogress`) and
//! renamed to `part-<job>-<subtask>-<n>.<ext>` when it rolls or the input ends, so a
//! reader never sees a half-written file. With checkpoints, the rename moves to the
//! checkpoint's commit (two-phase commit).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use sluice_formats::{Encoder, FormatOptions};
use sluice_runtime::{Delivery, Sink, SinkFactory, TaskInfo};

use super::config::FilesystemSinkConfig;
use crate::{ConnectorTable, Error, Result};

/// Creates one [`FilesystemSink`] per subtask.
pub struct FilesystemSinkFactory {
    table: ConnectorTable,
    config: FilesystemSinkConfig,
    /// Distinguishes the part files of separate runs into one directory.
    run_id: String,
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

    fn create(&self, task: &TaskInfo) -> sluice_runtime::Result<Box<dyn Sink>> {
        Ok(Box::new(FilesystemSink {
            table: self.table.name.clone(),
            dir: self.config.path.clone(),
            ext: self.config.format.clone(),
            prefix: format!("part-{}-{}", self.run_id, task.subtask),
            encoder: encoder(&self.table, &self.config)?,
            file_size: self.config.file_size,
            rollover: self.config.rollover_interval,
            current: None,
            counter: 0,
            buf: Vec::with_capacity(1 << 20),
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
    dir: PathBuf,
    ext: String,
    prefix: String,
    encoder: Box<dyn Encoder>,
    file_size: u64,
    rollover: std::time::Duration,
    current: Option<PartFile>,
    counter: u64,
    buf: Vec<u8>,
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

    /// Finishes the current part file and makes it visible.
    fn roll(&mut self) -> sluice_runtime::Result<()> {
        let Some(mut part) = self.current.take() else {
            return Ok(());
        };
        part.writer.flush().map_err(|e| self.io(&part.tmp, e))?;
        let file = part
            .writer
            .into_inner()
            .map_err(|e| self.io(&part.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| self.io(&part.tmp, e))?;
        let dest = self.dir.join(self.part_name());
        std::fs::rename(&part.tmp, &dest).map_err(|e| self.io(&dest, e))?;
        self.counter += 1;
        Ok(())
    }
}

#[async_trait]
impl Sink for FilesystemSink {
    async fn open(&mut self, _task: &TaskInfo) -> sluice_runtime::Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io(&self.dir.clone(), e))
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
        // Exactly-once needs the rename moved to checkpoint commits (two-phase commit);
        // until then a rerun after a failure repeats the parts already made visible.
        Delivery::AtLeastOnce
    }
}
