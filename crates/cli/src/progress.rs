//! The progress line on stderr (only when stderr is a terminal).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_runtime::JobMetrics;

/// Human-friendly counts: 1234 → 1.2K.
pub(crate) fn human(n: f64) -> String {
    if n >= 1e9 {
        format!("{:.2}G", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}K", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

/// Refreshes the progress line every 500 ms until the returned handle is dropped.
pub(crate) fn spawn(metrics: Arc<JobMetrics>) -> Option<tokio::task::JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    Some(tokio::spawn(async move {
        let start = Instant::now();
        let mut last = (Instant::now(), 0u64);
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let rows_in = JobMetrics::get(&metrics.source_rows);
            let rows_out = JobMetrics::get(&metrics.sink_rows);
            let dead = JobMetrics::get(&metrics.dead_letters);
            let dt = last.0.elapsed().as_secs_f64().max(1e-3);
            let rate = (rows_in.saturating_sub(last.1)) as f64 / dt;
            last = (Instant::now(), rows_in);
            let mut e = std::io::stderr().lock();
            let _ = write!(
                e,
                "\r\x1b[2K{:>6.1}s  in {} ({}/s)  out {}  dead letters {}",
                start.elapsed().as_secs_f64(),
                human(rows_in as f64),
                human(rate),
                human(rows_out as f64),
                dead
            );
            let _ = e.flush();
        }
    }))
}

/// Stops the progress line and clears it.
pub(crate) fn stop(handle: Option<tokio::task::JoinHandle<()>>) {
    if let Some(h) = handle {
        h.abort();
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[2K");
        let _ = e.flush();
    }
}
