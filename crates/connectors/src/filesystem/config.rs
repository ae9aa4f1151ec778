//! Options of the filesystem connector (Flink's names).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use sluice_formats::FormatOptions;

use crate::{ConnectorTable, Error, Options, Result};

/// How a filesystem source reads.
#[derive(Debug, Clone)]
pub struct FilesystemSourceConfig {
    /// A file or a directory (read recursively, hidden and `_`-prefixed files skipped).
    pub path: PathBuf,
    /// `format`.
    pub format: String,
    /// The format's options (`json.*`, `csv.*`).
    pub format_options: BTreeMap<String, String>,
    /// `source.monitor-interval`: when set, the directory is watched for new files and
    /// the source never ends.
    pub monitor_interval: Option<Duration>,
    /// `source.max-record-size` in bytes (default 8 MiB): longer lines go to the dead
    /// letters.
    pub max_record_size: usize,
    /// `source.batch-size` rows per batch (default 8192).
    pub batch_size: usize,
}

/// How a filesystem sink writes.
#[derive(Debug, Clone)]
pub struct FilesystemSinkConfig {
    /// The output directory.
    pub path: PathBuf,
    /// `format`.
    pub format: String,
    /// The format's options.
    pub format_options: BTreeMap<String, String>,
    /// `sink.rolling-policy.file-size`: roll a part file past this many bytes (128 MiB).
    pub file_size: u64,
    /// `sink.rolling-policy.rollover-interval`: roll a part file older than this (30 min).
    pub rollover_interval: Duration,
    /// `sink.parallelism`.
    pub parallelism: Option<usize>,
}

fn take_format(
    o: &mut Options,
    table: &ConnectorTable,
) -> Result<(String, BTreeMap<String, String>)> {
    let format = o.take_required("format", "Add 'format' = 'json' or 'format' = 'csv'.")?;
    let opts = o.take_prefixed(&format!("{format}."));
    sluice_formats::validate_options(&format, &opts).map_err(|source| Error::Format {
        table: table.name.clone(),
        source,
    })?;
    if sluice_formats::is_binary_format(&format) && !sluice_formats::is_file_format(&format) {
        return Err(Error::Unsupported {
            table: table.name.clone(),
            message: format!(
                "format '{format}' holds one binary record per message; the filesystem \
                 connector reads and writes newline-delimited files (json, csv, raw) and Parquet\
                 files. Use \
                 '{format}' with kafka or redis"
            ),
        });
    }
    Ok((format, opts))
}

/// Parses `128MB`, `64 kb`, `1gb` or plain bytes.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult = match unit.trim() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

impl FilesystemSourceConfig {
    /// Reads and validates a source table's options.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "filesystem", &table.options);
        let path = o.take_required(
            "path",
            "Add 'path' = '/data/events.json' (a file or directory).",
        )?;
        let (format, format_options) = take_format(&mut o, table)?;
        let monitor_interval = o.take_duration("source.monitor-interval")?;
        if monitor_interval.is_some_and(|d| d < std::time::Duration::from_millis(100)) {
            return Err(o.bad(
                "source.monitor-interval",
                "must be at least 100ms, e.g. '10s'",
            ));
        }
        let max_record_size = match o.take("source.max-record-size") {
            None => 8 << 20,
            Some(v) => parse_size(&v)
                .ok_or_else(|| o.bad("source.max-record-size", "write a size such as '16mb'"))?
                as usize,
        };
        let batch_size = o
            .take_parsed::<usize>("source.batch-size", "a positive integer")?
            .unwrap_or(8192)
            .max(1);
        let _ = o.take("source.path.regex-pattern");
        // Sink-side options are accepted on a table that is also written to elsewhere.
        for k in [
            "sink.rolling-policy.file-size",
            "sink.rolling-policy.rollover-interval",
            "sink.rolling-policy.check-interval",
            "sink.parallelism",
            "auto-compaction",
            "partition.default-name",
        ] {
            let _ = o.take(k);
        }
        o.finish()?;
        Ok(FilesystemSourceConfig {
            path: PathBuf::from(path),
            format,
            format_options,
            monitor_interval,
            max_record_size,
            batch_size,
        })
    }

    /// The format options for this table's decoder.
    pub fn format_options(&self, table: &ConnectorTable) -> FormatOptions {
        FormatOptions {
            table: table.name.clone(),
            schema: table.schema.clone(),
            options: self.format_options.clone(),
        }
    }
}

impl FilesystemSinkConfig {
    /// Reads and validates a sink table's options.
    pub fn from_table(table: &ConnectorTable) -> Result<Self> {
        let mut o = Options::new(&table.name, "filesystem", &table.options);
        let path = o.take_required(
            "path",
            "Add 'path' = '/data/out' (a directory for part files).",
        )?;
        let (format, format_options) = take_format(&mut o, table)?;
        let file_size = match o.take("sink.rolling-policy.file-size") {
            None => 128 << 20,
            Some(v) => parse_size(&v).ok_or_else(|| {
                o.bad(
                    "sink.rolling-policy.file-size",
                    "write a size such as '128MB'",
                )
            })?,
        };
        let rollover_interval = o
            .take_duration("sink.rolling-policy.rollover-interval")?
            .unwrap_or(Duration::from_secs(30 * 60));
        let _ = o.take_duration("sink.rolling-policy.check-interval")?;
        let parallelism = o.take_parsed::<usize>("sink.parallelism", "a positive integer")?;
        for k in [
            "source.monitor-interval",
            "source.max-record-size",
            "source.batch-size",
            "auto-compaction",
            "partition.default-name",
            "source.path.regex-pattern",
        ] {
            let _ = o.take(k);
        }
        o.finish()?;
        Ok(FilesystemSinkConfig {
            path: PathBuf::from(path),
            format,
            format_options,
            file_size,
            rollover_interval,
            parallelism,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("128MB"), Some(128 << 20));
        assert_eq!(parse_size("10 kb"), Some(10 << 10));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("12 parsecs"), None);
    }
}
