//! The filesystem source: each subtask reads its share of byte-range splits, frames
//! lines and decodes them into batches; bad records go to the dead letters.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use sluice_formats::Decoder;
use sluice_formats::framing::{Frame, LineFramer};
use sluice_formats::parquet::ParquetFileReader;
use sluice_runtime::{
    DeadLetterOutput, JobMetrics, RestoredOffsets, Source, SourceEvent, SourceFactory,
    SourceOffsets, TaskInfo,
};
use sluice_types::{CheckpointId, DeadLetter};

use super::config::FilesystemSourceConfig;
use super::splits::{FileSplit, list_files, plan_splits};
use crate::{ConnectorTable, Error, Result};

const CHUNK: usize = 1 << 20;
/// Checkpoint keys: the splits still to read, the files a monitoring source has seen.
const SPLITS: &str = "splits";
const SEEN: &str = "seen";

/// Plans splits once and hands each subtask its share.
pub struct FilesystemSourceFactory {
    table: ConnectorTable,
    config: FilesystemSourceConfig,
    files: Vec<(PathBuf, u64)>,
}

impl FilesystemSourceFactory {
    /// Checks that the path exists and the format accepts the schema.
    pub fn new(table: &ConnectorTable, config: FilesystemSourceConfig) -> Result<Self> {
        let files = list_files(&config.path).map_err(|source| Error::Input {
            table: table.name.clone(),
            path: config.path.display().to_string(),
            source,
        })?;
        if !sluice_formats::is_file_format(&config.format) {
            sluice_formats::decoder_for(&config.format, &config.format_options(table)).map_err(
                |source| Error::Format {
                    table: table.name.clone(),
                    source,
                },
            )?;
        }
        Ok(FilesystemSourceFactory {
            table: table.clone(),
            config,
            files,
        })
    }
}

impl SourceFactory for FilesystemSourceFactory {
    fn name(&self) -> String {
        format!(
            "Source: {} (filesystem, {})",
            self.table.name, self.config.format
        )
    }

    fn schema(&self) -> SchemaRef {
        self.table.schema.clone()
    }

    fn bounded(&self) -> bool {
        self.config.monitor_interval.is_none()
    }

    fn changelog(&self) -> bool {
        sluice_formats::is_changelog_format(&self.config.format)
    }

    fn create(
        &self,
        task: &TaskInfo,
        metrics: &Arc<JobMetrics>,
    ) -> sluice_runtime::Result<Box<dyn Source>> {
        let whole_files = sluice_formats::is_file_format(&self.config.format);
        let planned = if whole_files {
            self.files
                .iter()
                .map(|(path, _)| FileSplit {
                    path: path.clone(),
                    start: 0,
                    end: None,
                    resume: None,
                })
                .collect()
        } else {
            plan_splits(&self.files, task.parallelism)
        };
        let splits: Vec<FileSplit> = planned
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % task.parallelism == task.subtask)
            .map(|(_, s)| s)
            .collect();
        let decoder = if whole_files {
            None
        } else {
            Some(
                sluice_formats::decoder_for(
                    &self.config.format,
                    &self.config.format_options(&self.table),
                )
                .map_err(|source| Error::Format {
                    table: self.table.name.clone(),
                    source,
                })?,
            )
        };
        Ok(Box::new(FilesystemSource {
            table: self.table.name.clone(),
            schema: self.table.schema.clone(),
            config: self.config.clone(),
            pending: splits.into_iter().rev().collect(),
            current: None,
            decoder,
            metrics: metrics.clone(),
            seen: self.files.iter().map(|(p, _)| p.clone()).collect(),
            subtask: task.subtask,
            parallelism: task.parallelism,
            last_scan: Instant::now(),
            buf: vec![0; CHUNK],
        }))
    }
}

struct Reader {
    split: FileSplit,
    path: String,
    kind: ReaderKind,
}

/// How a split is read.
enum ReaderKind {
    /// Bytes cut into lines for the decoder.
    Lines { file: File, framer: LineFramer },
    /// A whole Parquet file, and the rows of it handed out so far.
    Parquet {
        reader: Box<ParquetFileReader>,
        rows: u64,
    },
}

/// Reads one subtask's splits in order.
struct FilesystemSource {
    table: String,
    schema: SchemaRef,
    config: FilesystemSourceConfig,
    /// Splits still to read (next one last).
    pending: Vec<FileSplit>,
    current: Option<Reader>,
    /// The line decoder (`None` for a file format: Parquet).
    decoder: Option<Box<dyn Decoder>>,
    metrics: Arc<JobMetrics>,
    seen: HashSet<PathBuf>,
    subtask: usize,
    parallelism: usize,
    last_scan: Instant,
    buf: Vec<u8>,
}

impl FilesystemSource {
    fn input_error(&self, path: &str, source: std::io::Error) -> sluice_runtime::Error {
        Error::Input {
            table: self.table.clone(),
            path: path.to_string(),
            source,
        }
        .into()
    }

    /// Opens the next split; a file that is not readable as its format (Parquet) is a
    /// dead letter and skipped.
    fn open_next(&mut self, dead: &dyn DeadLetterOutput) -> sluice_runtime::Result<bool> {
        let Some(split) = self.pending.pop() else {
            return Ok(false);
        };
        let path = split.path.display().to_string();
        let mut file = File::open(&split.path).map_err(|e| self.input_error(&path, e))?;
        if self.decoder.is_none() {
            let skip = split.resume.unwrap_or(0);
            match ParquetFileReader::open(
                file,
                self.schema.clone(),
                usize::try_from(skip).unwrap_or(usize::MAX),
                self.config.batch_size,
            ) {
                Ok(reader) => {
                    self.current = Some(Reader {
                        split,
                        path,
                        kind: ReaderKind::Parquet {
                            reader: Box::new(reader),
                            rows: skip,
                        },
                    });
                }
                Err(e) => dead.send(DeadLetter::new(
                    self.table.clone(),
                    &path,
                    skip,
                    format!("the whole file is skipped: {e}"),
                    b"",
                )),
            }
            return Ok(true);
        }
        let framer = match split.resume {
            Some(at) => LineFramer::resuming(at, split.end),
            None => LineFramer::for_split(split.start, split.end),
        }
        .with_max_record_bytes(self.config.max_record_size);
        file.seek(SeekFrom::Start(framer.read_from()))
            .map_err(|e| self.input_error(&path, e))?;
        self.current = Some(Reader {
            split,
            path,
            kind: ReaderKind::Lines { file, framer },
        });
        Ok(true)
    }

    /// The next batch of the Parquet file being read (`None` when it ended: the reader
    /// is closed). A damaged file's rest is a dead letter.
    fn next_parquet(
        &mut self,
        dead: &dyn DeadLetterOutput,
    ) -> sluice_runtime::Result<Option<SourceEvent>> {
        let Some(Reader {
            path,
            kind: ReaderKind::Parquet { reader, rows },
            ..
        }) = self.current.as_mut()
        else {
            return Ok(None);
        };
        match reader.next_batch() {
            Ok(Some((batch, rejected))) => {
                let before = *rows;
                *rows += (batch.num_rows() + rejected.len()) as u64;
                // Which file row each rejected row was: rows kept and left out interleave.
                for (r, reason) in rejected {
                    dead.send(DeadLetter::new(
                        self.table.clone(),
                        path.as_str(),
                        before + r as u64,
                        reason,
                        b"",
                    ));
                }
                JobMetrics::add(
                    &self.metrics.source_bytes,
                    batch.get_array_memory_size() as u64,
                );
                Ok((batch.num_rows() > 0).then_some(SourceEvent::Batch(batch)))
            }
            Ok(None) => {
                self.current = None;
                Ok(None)
            }
            Err(e) => {
                dead.send(DeadLetter::new(
                    self.table.clone(),
                    path.as_str(),
                    *rows,
                    format!("the rest of the file is skipped from this row: {e}"),
                    b"",
                ));
                self.current = None;
                Ok(None)
            }
        }
    }

    /// Files that appeared since the last scan, this subtask's share (by path hash).
    fn scan_new_files(&mut self) {
        let Ok(files) = list_files(&self.config.path) else {
            return;
        };
        for (path, _) in files {
            if self.seen.insert(path.clone()) {
                let h = path
                    .to_string_lossy()
                    .bytes()
                    .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
                if (h % self.parallelism as u64) as usize == self.subtask {
                    self.pending.insert(
                        0,
                        FileSplit {
                            path,
                            start: 0,
                            end: None,
                            resume: None,
                        },
                    );
                }
            }
        }
    }

    fn flush(
        &mut self,
        dead: &dyn DeadLetterOutput,
    ) -> sluice_runtime::Result<Option<SourceEvent>> {
        let Some(decoder) = self.decoder.as_mut() else {
            return Ok(None);
        };
        let decoded = decoder.flush().map_err(|source| Error::Format {
            table: self.table.clone(),
            source,
        })?;
        for d in decoded.dead_letters {
            dead.send(d);
        }
        Ok(decoded.batch.map(SourceEvent::Batch))
    }
}

#[async_trait]
impl Source for FilesystemSource {
    /// On restore, the splits still to read are those every subtask of the earlier run
    /// recorded (a split being read resumes at its recorded line); they are dealt out
    /// anew, so the worker count may differ. Files the earlier run had seen are not
    /// read again by a monitoring source.
    async fn open(
        &mut self,
        _task: &TaskInfo,
        restored: Option<RestoredOffsets>,
    ) -> sluice_runtime::Result<()> {
        let Some(restored) = restored else {
            return Ok(());
        };
        let mut splits = Vec::new();
        let mut seen = HashSet::new();
        for (key, value) in restored.all() {
            let entries = value.as_array().map(Vec::as_slice).unwrap_or_default();
            match key.as_str() {
                SPLITS => {
                    for e in entries {
                        splits.push(FileSplit::from_json(e).ok_or_else(|| Error::Unsupported {
                            table: self.table.clone(),
                            message: format!(
                                "the checkpoint records a file split this version cannot read: {e}"
                            ),
                        })?);
                    }
                }
                SEEN => seen.extend(entries.iter().filter_map(|p| p.as_str()).map(PathBuf::from)),
                _ => {}
            }
        }
        splits.sort_by(|a, b| (&a.path, a.start).cmp(&(&b.path, b.start)));
        self.pending = splits
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.parallelism == self.subtask)
            .map(|(_, s)| s)
            .rev()
            .collect();
        if self.config.monitor_interval.is_some() {
            self.seen = seen;
        }
        Ok(())
    }

    async fn next(&mut self, dead: &dyn DeadLetterOutput) -> sluice_runtime::Result<SourceEvent> {
        loop {
            if self.current.is_none() && !self.open_next(dead)? {
                if let Some(ev) = self.flush(dead)? {
                    return Ok(ev);
                }
                let Some(interval) = self.config.monitor_interval else {
                    return Ok(SourceEvent::End);
                };
                if self.last_scan.elapsed() >= interval {
                    self.last_scan = Instant::now();
                    self.scan_new_files();
                    continue;
                }
                tokio::time::sleep(interval.min(std::time::Duration::from_millis(100))).await;
                return Ok(SourceEvent::Idle);
            }
            if matches!(
                self.current.as_ref().map(|r| &r.kind),
                Some(ReaderKind::Parquet { .. })
            ) {
                if let Some(ev) = self.next_parquet(dead)? {
                    return Ok(ev);
                }
                continue;
            }
            let Some(Reader {
                path,
                kind: ReaderKind::Lines { file, framer },
                ..
            }) = self.current.as_mut()
            else {
                continue;
            };
            let n = match file.read(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let path = path.clone();
                    return Err(self.input_error(&path, e));
                }
            };
            JobMetrics::add(&self.metrics.source_bytes, n as u64);
            let table = &self.table;
            let Some(decoder) = self.decoder.as_mut() else {
                continue;
            };
            let path = path.as_str();
            let mut on_frame = |f: Frame<'_>| -> sluice_formats::Result<()> {
                match f {
                    Frame::Record { offset, bytes } => decoder.decode(bytes, path, offset),
                    Frame::Oversized(o) => {
                        let mut letter =
                            DeadLetter::new(table.clone(), path, o.offset, o.reason(), o.head);
                        letter.truncated = true;
                        dead.send(letter);
                        Ok(())
                    }
                }
            };
            let fed = if n == 0 {
                framer.finish(&mut on_frame)
            } else {
                framer.feed(&self.buf[..n], &mut on_frame)
            };
            fed.map_err(|source| Error::Format {
                table: self.table.clone(),
                source,
            })?;
            let done = n == 0 || framer.is_done();
            if done {
                if let Some(r) = &self.current {
                    tracing::debug!(split = %r.split.id(), "Split read.");
                }
                self.current = None;
            }
            // A batch never spans two splits: event time (watermarks) is tracked as
            // the rows of each split are read.
            let buffered = self.decoder.as_ref().map_or(0, |d| d.buffered_records());
            if (done || buffered >= self.config.batch_size)
                && let Some(ev) = self.flush(dead)?
            {
                return Ok(ev);
            }
        }
    }

    /// Every split this subtask has still to read (the one being read with the line
    /// to resume at), and for a monitoring source the files seen so far. At this point
    /// every record before the resume line was handed out in a batch: `next` returns
    /// only after flushing the decoder.
    fn snapshot(&mut self, _checkpoint: CheckpointId) -> sluice_runtime::Result<SourceOffsets> {
        let mut splits = Vec::with_capacity(self.pending.len() + 1);
        if let Some(r) = &self.current {
            let resume = match &r.kind {
                ReaderKind::Lines { framer, .. } if !framer.is_done() => {
                    Some(framer.resume_point())
                }
                ReaderKind::Lines { .. } => None,
                // For Parquet: the rows handed out so far.
                ReaderKind::Parquet { rows, .. } => Some(Some(*rows)),
            };
            if let Some(resume) = resume {
                let mut split = r.split.clone();
                split.resume = resume;
                splits.push(split.to_json());
            }
        }
        splits.extend(self.pending.iter().rev().map(FileSplit::to_json));
        let mut o = SourceOffsets::new();
        o.insert(SPLITS.into(), serde_json::Value::Array(splits));
        if self.config.monitor_interval.is_some() {
            let mut seen: Vec<_> = self.seen.iter().map(|p| p.to_string_lossy()).collect();
            seen.sort();
            o.insert(SEEN.into(), serde_json::json!(seen));
        }
        Ok(o)
    }
}
