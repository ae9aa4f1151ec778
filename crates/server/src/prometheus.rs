//! `GET /metrics`: every pipeline's counters in the Prometheus text format (0.0.4).
//! The names and their meanings are listed in `docs/operations.md`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use sluice_runtime::metrics::{BUCKETS, HistogramSnapshot};

use crate::manager::{Snapshot, Status};

/// One metric family: its samples, written under one `# HELP`/`# TYPE` header.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: String,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Self {
        Family {
            name,
            kind,
            help,
            samples: String::new(),
        }
    }

    fn sample(&mut self, suffix: &str, labels: &str, value: f64) {
        let _ = writeln!(
            self.samples,
            "{}{suffix}{{{labels}}} {}",
            self.name,
            number(value)
        );
    }

    fn histogram(&mut self, labels: &str, h: &HistogramSnapshot) {
        for (bound, count) in BUCKETS.iter().zip(&h.cumulative) {
            self.sample(
                "_bucket",
                &format!("{labels},le=\"{bound}\""),
                *count as f64,
            );
        }
        self.sample("_bucket", &format!("{labels},le=\"+Inf\""), h.count as f64);
        self.sample("_sum", labels, h.sum_seconds);
        self.sample("_count", labels, h.count as f64);
    }

    fn write(&self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        out.push_str(&self.samples);
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A label value, escaped as the format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn get(c: &AtomicU64) -> f64 {
    c.load(Ordering::Relaxed) as f64
}

/// Reads one number of a job's counters.
type Read = fn(&sluice_runtime::JobMetrics) -> f64;

/// The text of `/metrics` for these pipelines.
pub fn render(pipelines: &[Snapshot]) -> String {
    let mut up = Family::new(
        "sluice_pipeline_up",
        "gauge",
        "1 while the pipeline runs, 0 when it is stopped, finished or failed.",
    );
    let mut failed = Family::new(
        "sluice_pipeline_failed",
        "gauge",
        "1 when the pipeline failed (its restarts used up, or it no longer plans), else 0; a stop or a finished bounded pipeline is not a failure.",
    );
    let mut restarts = Family::new(
        "sluice_pipeline_restarts_total",
        "counter",
        "Restarts after a task failure.",
    );
    let mut counters: Vec<(Family, Read)> = vec![
        (
            Family::new(
                "sluice_source_rows_total",
                "counter",
                "Rows read by the sources.",
            ),
            |m| get(&m.source_rows),
        ),
        (
            Family::new(
                "sluice_source_bytes_total",
                "counter",
                "Bytes read by the sources.",
            ),
            |m| get(&m.source_bytes),
        ),
        (
            Family::new(
                "sluice_sink_rows_total",
                "counter",
                "Rows written by the sinks.",
            ),
            |m| get(&m.sink_rows),
        ),
        (
            Family::new(
                "sluice_dead_letters_total",
                "counter",
                "Records sent to the dead-letter output.",
            ),
            |m| get(&m.dead_letters),
        ),
        (
            Family::new(
                "sluice_late_rows_total",
                "counter",
                "Rows that arrived after the watermark passed their window.",
            ),
            |m| get(&m.late_rows),
        ),
        (
            Family::new(
                "sluice_checkpoints_completed_total",
                "counter",
                "Checkpoints completed.",
            ),
            |m| get(&m.checkpoints_completed),
        ),
        (
            Family::new(
                "sluice_checkpoints_failed_total",
                "counter",
                "Checkpoints abandoned (a write failed or they timed out).",
            ),
            |m| get(&m.checkpoints_failed),
        ),
        (
            Family::new(
                "sluice_checkpoint_last_id",
                "gauge",
                "The id of the newest complete checkpoint.",
            ),
            |m| get(&m.checkpoint_last_id),
        ),
        (
            Family::new(
                "sluice_checkpoint_last_duration_seconds",
                "gauge",
                "How long the newest checkpoint took, trigger to manifest.",
            ),
            |m| get(&m.checkpoint_last_duration_ms) / 1e3,
        ),
        (
            Family::new(
                "sluice_checkpoint_last_size_bytes",
                "gauge",
                "The state size of the newest checkpoint.",
            ),
            |m| get(&m.checkpoint_last_size_bytes),
        ),
        (
            Family::new(
                "sluice_checkpoint_last_alignment_seconds",
                "gauge",
                "The longest barrier alignment of the newest checkpoint.",
            ),
            |m| get(&m.checkpoint_last_alignment_ms) / 1e3,
        ),
        (
            Family::new(
                "sluice_checkpoint_written_bytes_total",
                "counter",
                "Bytes of state written by checkpoints.",
            ),
            |m| get(&m.checkpoint_written_bytes),
        ),
    ];
    let mut last_completed = Family::new(
        "sluice_checkpoint_last_completed_timestamp_seconds",
        "gauge",
        "When the newest checkpoint completed (Unix time).",
    );
    let mut latency = Family::new(
        "sluice_latency_seconds",
        "histogram",
        "Ingest to emit: a sink's write of a batch minus the newest source read it derives from.",
    );
    let mut event_latency = Family::new(
        "sluice_event_time_latency_seconds",
        "histogram",
        "Event time to emit: a sink's write of a batch minus the newest event time in it (sinks whose input has an event-time column).",
    );
    let mut source_lag = Family::new(
        "sluice_source_lag_records",
        "gauge",
        "Records a source has yet to read (Kafka: consumer lag, the partitions' ends minus the positions).",
    );
    let mut rows_in = Family::new(
        "sluice_operator_rows_in_total",
        "counter",
        "Rows into the operator.",
    );
    let mut rows_out = Family::new(
        "sluice_operator_rows_out_total",
        "counter",
        "Rows out of the operator.",
    );
    let mut batches_out = Family::new(
        "sluice_operator_batches_out_total",
        "counter",
        "Batches out of the operator.",
    );
    let mut bytes_in = Family::new(
        "sluice_operator_bytes_in_total",
        "counter",
        "Arrow memory size of the batches into the operator.",
    );
    let mut bytes_out = Family::new(
        "sluice_operator_bytes_out_total",
        "counter",
        "Arrow memory size of the batches out of the operator.",
    );
    let mut state = Family::new(
        "sluice_operator_state_bytes",
        "gauge",
        "Size of the operator's state in the newest checkpoint (all its files), summed over subtasks.",
    );
    let mut fill = Family::new(
        "sluice_operator_input_queue_fill_ratio",
        "gauge",
        "How full the operator's input channels are: 0 empty, 1 full (its senders wait).",
    );
    let mut batch_time = Family::new(
        "sluice_operator_batch_seconds",
        "histogram",
        "Time to process one batch (for a sink, to write it).",
    );
    let mut blocked = Family::new(
        "sluice_operator_blocked_seconds_total",
        "counter",
        "Time spent waiting for room downstream (backpressure).",
    );
    let mut lag = Family::new(
        "sluice_operator_watermark_lag_seconds",
        "gauge",
        "Wall clock minus the operator's event-time watermark.",
    );
    for p in pipelines {
        let pl = format!("pipeline=\"{}\"", label(&p.id));
        let m = &p.metrics;
        up.sample(
            "",
            &pl,
            if p.status == Status::Running {
                1.0
            } else {
                0.0
            },
        );
        failed.sample("", &pl, if p.status == Status::Failed { 1.0 } else { 0.0 });
        restarts.sample("", &pl, get(&m.restarts));
        for (f, read) in &mut counters {
            f.sample("", &pl, read(m));
        }
        let done = m.checkpoint_last_completed_ms.load(Ordering::Relaxed);
        if done > 0 {
            last_completed.sample("", &pl, done as f64 / 1e3);
        }
        latency.histogram(&pl, &m.latency.snapshot());
        event_latency.histogram(&pl, &m.event_time_latency.snapshot());
        if p.status == Status::Running {
            for (table, n) in m.source_lag() {
                source_lag.sample("", &format!("{pl},table=\"{}\"", label(&table)), n as f64);
            }
        }
        for op in m.operator_metrics() {
            let l = format!("{pl},operator=\"{}\"", label(&op.name));
            rows_in.sample("", &l, get(&op.rows_in));
            rows_out.sample("", &l, get(&op.rows_out));
            batches_out.sample("", &l, get(&op.batches_out));
            bytes_in.sample("", &l, get(&op.bytes_in));
            bytes_out.sample("", &l, get(&op.bytes_out));
            if let Some(b) = op.state_bytes() {
                state.sample("", &l, b as f64);
            }
            if let Some(f) = op.input_fill().filter(|_| p.status == Status::Running) {
                fill.sample("", &l, f);
            }
            batch_time.histogram(&l, &op.batch_time.snapshot());
            blocked.sample("", &l, get(&op.blocked_nanos) / 1e9);
            if let Some(seconds) = op
                .watermark_lag_seconds()
                .filter(|_| p.status == Status::Running)
            {
                lag.sample("", &l, seconds);
            }
        }
    }
    let mut out = String::new();
    let mut info = Family::new(
        "sluice_build_info",
        "gauge",
        "The Sluice version serving these metrics.",
    );
    info.sample(
        "",
        &format!("version=\"{}\"", env!("CARGO_PKG_VERSION")),
        1.0,
    );
    info.write(&mut out);
    up.write(&mut out);
    failed.write(&mut out);
    restarts.write(&mut out);
    for (f, _) in &counters {
        f.write(&mut out);
    }
    for f in [
        &last_completed,
        &latency,
        &event_latency,
        &source_lag,
        &rows_in,
        &rows_out,
        &batches_out,
        &bytes_in,
        &bytes_out,
        &fill,
        &state,
        &batch_time,
        &blocked,
        &lag,
    ] {
        f.write(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_numbers_plain() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
    }

    /// Every metric the Grafana dashboard and the alert rules read is one this
    /// exporter writes, and docs/operations.md describes it.
    #[test]
    fn the_dashboard_and_alerts_read_metrics_that_exist() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../");
        let source = include_str!("prometheus.rs");
        let docs = std::fs::read_to_string(format!("{root}docs/operations.md")).expect("docs");
        let name = regex::Regex::new(r"sluice_[a-z_]+").expect("a regex");
        for file in ["deploy/grafana/sluice.json", "deploy/prometheus/alerts.yml"] {
            let text = std::fs::read_to_string(format!("{root}{file}")).expect(file);
            for m in name.find_iter(&text) {
                let n = m.as_str();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| n.strip_suffix(s))
                    .unwrap_or(n);
                assert!(
                    source.contains(&format!("\"{base}\"")),
                    "{file} reads {n}, which /metrics does not have"
                );
                assert!(
                    docs.contains(&format!("`{base}`")),
                    "docs/operations.md lacks {base}"
                );
            }
        }
    }

    #[test]
    fn no_pipelines_still_gives_build_info() {
        let text = render(&[]);
        assert!(text.starts_with("# HELP sluice_build_info"), "{text}");
        assert!(!text.contains("sluice_pipeline_up"), "{text}");
    }
}
