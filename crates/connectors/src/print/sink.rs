//! The `print` sink: see the module docs of [`super`].

use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice_runtime::{Delivery, Sink, SinkFactory, TaskInfo};

use crate::{ConnectorFactory, ConnectorTable, Options, Result};

/// The print connector (sink only).
pub struct PrintConnector;

impl ConnectorFactory for PrintConnector {
    fn name(&self) -> &'static str {
        "print"
    }

    fn sink(&self, table: &ConnectorTable) -> Result<Arc<dyn SinkFactory>> {
        let mut o = Options::new(&table.name, self.name(), &table.options);
        let identifier = o.take("print-identifier");
        let stderr = o.take_bool("standard-error", false)?;
        let parallelism = o.take_parsed::<usize>("sink.parallelism", "a positive integer")?;
        o.finish()?;
        Ok(Arc::new(PrintSinkFactory {
            name: table.name.clone(),
            schema: table.schema.clone(),
            identifier,
            stderr,
            parallelism,
        }))
    }
}

struct PrintSinkFactory {
    name: String,
    schema: SchemaRef,
    identifier: Option<String>,
    stderr: bool,
    parallelism: Option<usize>,
}

impl SinkFactory for PrintSinkFactory {
    fn name(&self) -> String {
        format!("Sink: {} (print)", self.name)
    }

    fn accepts_changelog(&self) -> bool {
        true
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn parallelism(&self) -> Option<usize> {
        self.parallelism
    }

    fn create(&self, task: &TaskInfo) -> sluice_runtime::Result<Box<dyn Sink>> {
        let prefix = match (&self.identifier, task.parallelism > 1) {
            (Some(id), true) => format!("{id}:{}> ", task.subtask + 1),
            (Some(id), false) => format!("{id}> "),
            (None, true) => format!("{}> ", task.subtask + 1),
            (None, false) => String::new(),
        };
        Ok(Box::new(PrintSink {
            table: self.name.clone(),
            prefix,
            stderr: self.stderr,
            line: String::new(),
        }))
    }
}

struct PrintSink {
    table: String,
    prefix: String,
    stderr: bool,
    line: String,
}

/// The timestamp format Flink prints for a unit (SQL style, fixed fraction digits).
fn timestamp_format(unit: &TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Second => "%Y-%m-%d %H:%M:%S",
        TimeUnit::Millisecond => "%Y-%m-%d %H:%M:%S%.3f",
        TimeUnit::Microsecond => "%Y-%m-%d %H:%M:%S%.6f",
        TimeUnit::Nanosecond => "%Y-%m-%d %H:%M:%S%.9f",
    }
}

/// Renders rows Flink-style: `+I[1, abc, 2024-01-01 00:00:00.000]`, nulls as `null`;
/// rows of an updating stream show their kind (`-U[…]`, `+U[…]`, `-D[…]`).
pub fn format_rows(batch: &RecordBatch, prefix: &str, out: &mut String) -> Result<()> {
    use std::fmt::Write as _;
    let kinds = sluice_types::kinds_of(batch);
    let batch = &sluice_types::without_row_kind(batch);
    let base = FormatOptions::default().with_null("null");
    let mut formatters = Vec::with_capacity(batch.num_columns());
    for col in batch.columns() {
        let opts = match col.data_type() {
            DataType::Timestamp(unit, None) => base
                .clone()
                .with_timestamp_format(Some(timestamp_format(unit))),
            DataType::Timestamp(unit, Some(_)) => base
                .clone()
                .with_timestamp_tz_format(Some(timestamp_format(unit))),
            _ => base.clone(),
        };
        formatters.push((col.clone(), opts));
    }
    let fmts = formatters
        .iter()
        .map(|(c, o)| ArrayFormatter::try_new(c.as_ref(), o))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for (row, kind) in kinds.iter().enumerate() {
        out.push_str(prefix);
        out.push_str(kind.short());
        out.push('[');
        for (i, f) in fmts.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}", f.value(row));
        }
        out.push_str("]\n");
    }
    Ok(())
}

#[async_trait]
impl Sink for PrintSink {
    async fn open(&mut self, _task: &TaskInfo) -> sluice_runtime::Result<()> {
        Ok(())
    }

    async fn write(&mut self, batch: RecordBatch) -> sluice_runtime::Result<()> {
        self.line.clear();
        format_rows(&batch, &self.prefix, &mut self.line)?;
        let res = if self.stderr {
            let mut e = std::io::stderr().lock();
            e.write_all(self.line.as_bytes()).and_then(|_| e.flush())
        } else {
            let mut o = std::io::stdout().lock();
            o.write_all(self.line.as_bytes()).and_then(|_| o.flush())
        };
        // A closed stdout (`sluice run … | head`) is not a pipeline failure.
        if let Err(e) = res
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(crate::Error::Output {
                table: self.table.clone(),
                path: "stdout".into(),
                source: e,
            }
            .into());
        }
        Ok(())
    }

    async fn close(&mut self) -> sluice_runtime::Result<()> {
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        Delivery::AtLeastOnce
    }
}
