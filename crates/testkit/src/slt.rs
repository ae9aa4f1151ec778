//! The sqllogictest engine: statements accumulate into a pipeline script; an INSERT
//! runs the script as a job; a query runs it with its results captured and compares
//! them with the DataFusion batch oracle over the same files before handing them to
//! the test file's expected rows.
//!
//! Placeholders in test SQL: `__DIR__` is a scratch directory of the test file,
//! `__DATA__` the repository's `tests/data` directory. Every job writes its dead letters
//! to `__DIR__/dead-letters.jsonl`, which a test can read back as a JSON table.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sluice_runtime::{Job, JobConfig};
use sluice_sql::{Pipeline, PipelineOptions, batch_oracle};
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::format::format_batches;

/// An error of a golden test statement (its message is matched by `statement error`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TestError(String);

/// One test file's engine.
pub struct SluiceDb {
    script: Vec<String>,
    dir: tempfile::TempDir,
    data: PathBuf,
    workers: usize,
}

impl SluiceDb {
    /// A fresh engine with its own scratch directory.
    pub fn new(workers: usize) -> std::io::Result<Self> {
        Ok(SluiceDb {
            script: Vec::new(),
            dir: tempfile::tempdir()?,
            data: crate::repo_root().join("tests").join("data"),
            workers,
        })
    }

    fn expand(&self, sql: &str) -> String {
        sql.replace("__DIR__", &self.dir.path().display().to_string())
            .replace("__DATA__", &self.data.display().to_string())
    }

    fn options(
        &self,
        capture: Option<sluice_connectors::memory::Collected>,
        allow_empty: bool,
    ) -> PipelineOptions {
        PipelineOptions {
            file: "test.sql".into(),
            workers: Some(self.workers),
            default_workers: self.workers,
            capture,
            allow_empty,
            ..Default::default()
        }
    }

    async fn run_job(
        &self,
        text: &str,
        capture: Option<sluice_connectors::memory::Collected>,
    ) -> Result<u64, TestError> {
        let pipeline = Pipeline::plan(text, &self.options(capture, false))
            .await
            .map_err(|e| TestError(e.to_string()))?;
        let config = JobConfig {
            name: "test".into(),
            dead_letter_path: self.dir.path().join("dead-letters.jsonl"),
            ..JobConfig::default()
        };
        let job = Job::new(pipeline.graph, config).map_err(|e| TestError(e.to_string()))?;
        let summary = job.run().await.map_err(|e| TestError(e.to_string()))?;
        Ok(summary.rows_out)
    }

    fn first_word(sql: &str) -> String {
        sql.split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase()
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for SluiceDb {
    type Error = TestError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, TestError> {
        let sql = self.expand(sql);
        let mut text = self.script.join(";\n");
        if !text.is_empty() {
            text.push_str(";\n");
        }
        text.push_str(&sql);
        match Self::first_word(&sql).as_str() {
            "SELECT" | "WITH" | "VALUES" => {
                let out: sluice_connectors::memory::Collected = Arc::new(Mutex::new(Vec::new()));
                self.run_job(&text, Some(out.clone())).await?;
                let batches = out.lock().map(|b| b.clone()).unwrap_or_default();
                let mut rows = format_batches(&batches);
                // The oracle: DataFusion in batch mode over the same files.
                // Skipped only for inputs the oracle cannot read (generators); any other
                // oracle failure fails the test.
                let oracle = match batch_oracle(&text, &self.options(None, false)).await {
                    Ok(batches) => Some(batches),
                    Err(sluice_sql::Error::Unsupported { .. }) => None,
                    Err(e) => return Err(TestError(format!("the batch oracle failed: {e}"))),
                };
                if let Some(expected) = oracle {
                    let mut want = format_batches(&expected);
                    let mut got = rows.clone();
                    want.sort();
                    got.sort();
                    if want != got {
                        return Err(TestError(format!(
                            "streaming result differs from the batch oracle:\n streaming: {got:?}\n oracle:    {want:?}"
                        )));
                    }
                }
                let width = rows.first().map(Vec::len).unwrap_or(0);
                if rows.is_empty() {
                    rows = Vec::new();
                }
                Ok(DBOutput::Rows {
                    types: vec![DefaultColumnType::Any; width],
                    rows,
                })
            }
            "INSERT" | "EXECUTE" | "BEGIN" => {
                let n = self.run_job(&text, None).await?;
                Ok(DBOutput::StatementComplete(n))
            }
            _ => {
                // DDL and SET: check it plans now, keep it for later statements.
                Pipeline::plan(&text, &self.options(None, true))
                    .await
                    .map_err(|e| TestError(e.to_string()))?;
                self.script.push(sql);
                Ok(DBOutput::StatementComplete(0))
            }
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "sluice"
    }
}

/// Runs one golden file (or rewrites its expected results when `complete` is set:
/// `SLUICE_COMPLETE=1`).
pub async fn run_golden_file(path: &Path, workers: usize, complete: bool) -> Result<(), String> {
    let make = move || async move { SluiceDb::new(workers).map_err(|e| TestError(e.to_string())) };
    let mut runner = sqllogictest::Runner::new(make);
    if complete {
        runner
            .update_test_file(
                path,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            )
            .await
            .map_err(|e| e.to_string())
    } else {
        runner
            .run_file_async(path)
            .await
            .map_err(|e| e.display(true).to_string())
    }
}
