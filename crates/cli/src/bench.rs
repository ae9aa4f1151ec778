//! `sluice bench nexmark`: runs a Nexmark query of the suite (the same files the tests
//! run unchanged) over the built-in generator, or over a JSON file of bids, into a
//! blackhole sink, and reports events/s, events/s per worker and batch latency.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::anyhow;
use sluice_runtime::JobConfig;
use sluice_sql::PipelineOptions;

use crate::Failure;
use crate::args::BenchArgs;
use crate::run::{execute, plan_text, runtime};

const DDL_GEN: &str = include_str!("../../../tests/nexmark/ddl_gen.sql");
const DDL_VIEWS: &str = include_str!("../../../tests/nexmark/ddl_views.sql");

fn query(name: &str) -> Option<&'static str> {
    Some(match name {
        "q0" => include_str!("../../../tests/nexmark/q0.sql"),
        "q1" => include_str!("../../../tests/nexmark/q1.sql"),
        "q2" => include_str!("../../../tests/nexmark/q2.sql"),
        "q3" => include_str!("../../../tests/nexmark/q3.sql"),
        "q4" => include_str!("../../../tests/nexmark/q4.sql"),
        "q5" => include_str!("../../../tests/nexmark/q5.sql"),
        "q7" => include_str!("../../../tests/nexmark/q7.sql"),
        "q8" => include_str!("../../../tests/nexmark/q8.sql"),
        "q9" => include_str!("../../../tests/nexmark/q9.sql"),
        "q11" => include_str!("../../../tests/nexmark/q11.sql"),
        "q12" => include_str!("../../../tests/nexmark/q12.sql"),
        "q13" => include_str!("../../../tests/nexmark/q13.sql"),
        "q14" => include_str!("../../../tests/nexmark/q14.sql"),
        "q15" => include_str!("../../../tests/nexmark/q15.sql"),
        "q16" => include_str!("../../../tests/nexmark/q16.sql"),
        "q17" => include_str!("../../../tests/nexmark/q17.sql"),
        "q18" => include_str!("../../../tests/nexmark/q18.sql"),
        "q19" => include_str!("../../../tests/nexmark/q19.sql"),
        "q20" => include_str!("../../../tests/nexmark/q20.sql"),
        "q21" => include_str!("../../../tests/nexmark/q21.sql"),
        "q22" => include_str!("../../../tests/nexmark/q22.sql"),
        "q23" => include_str!("../../../tests/nexmark/q23.sql"),
        _ => return None,
    })
}

/// The suite queries `sluice bench` runs.
pub(crate) const QUERIES: &str = "q0, q1, q2, q3, q4, q5, q7, q8, q9, q11, q12, q13, q14, q15, q16, q17, q18, q19, q20, q21, \
     q22, q23";

/// Queries that read only bids (they can run over a bid file with `--input`).
const BID_ONLY: [&str; 15] = [
    "q0", "q1", "q2", "q5", "q7", "q11", "q12", "q13", "q14", "q15", "q16", "q17", "q18", "q19",
    "q21",
];

/// The bid table over a JSON file in the Flink peer's layout (`date_time`), with a `bid`
/// view renaming it to the suite's `dateTime`, so the suite's queries run unchanged.
fn file_ddl(path: &Path) -> String {
    format!(
        "CREATE TABLE bid_file (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, \
         date_time TIMESTAMP(3), extra STRING, WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND) \
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');\n\
         CREATE VIEW bid AS SELECT auction, bidder, price, channel, url, date_time AS `dateTime`, extra FROM bid_file;\n",
        path.display().to_string().replace('\'', "''")
    )
}

/// Prints a line to stdout; a closed stdout (`sluice bench … | head`) is not an error.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `sluice bench`.
pub(crate) fn bench(args: BenchArgs) -> Result<(), Failure> {
    if args.suite != "nexmark" {
        return Err(Failure::user(anyhow!(
            "unknown benchmark suite '{}'; the only one is 'nexmark'",
            args.suite
        )));
    }
    // A suite query by name, or a file of one's own over the suite's tables.
    let own_file = query(&args.query).is_none() && args.query.ends_with(".sql");
    let q = match query(&args.query) {
        Some(q) => q.to_string(),
        None if own_file => std::fs::read_to_string(&args.query).map_err(|e| {
            Failure::user(anyhow!("cannot read the query file '{}': {e}", args.query))
        })?,
        None => {
            return Err(Failure::user(anyhow!(
                "unknown query '{}'; the suite queries are {QUERIES}, or give a .sql file \
                 over the suite's tables",
                args.query
            )));
        }
    };
    if args.input.is_some() && !own_file && !BID_ONLY.contains(&args.query.as_str()) {
        return Err(Failure::user(anyhow!(
            "{} reads auctions or persons; --input holds bids only: run it on the generator",
            args.query
        )));
    }
    // The suite's q20 file creates `discard_sink` but inserts into `nexmark_q20`.
    let q = q.replace("INSERT INTO nexmark_q20", "INSERT INTO discard_sink");
    let mut defines = BTreeMap::new();
    let sql = match &args.input {
        Some(path) => format!("{}\n{q}", file_ddl(path)),
        None => {
            let tps = args.rate.unwrap_or(10_000_000).max(1);
            for (k, v) in [
                ("TPS", tps.to_string()),
                ("EVENTS_NUM", args.events.to_string()),
                ("PERSON_PROPORTION", "1".into()),
                ("AUCTION_PROPORTION", "3".into()),
                ("BID_PROPORTION", "46".into()),
                ("NEXMARK_TABLE", "datagen".into()),
            ] {
                defines.insert(k.to_string(), v);
            }
            // q13's side input (`${FLINK_HOME}/data/side_input.txt`): the environment's
            // FLINK_HOME, else a temporary one with keys 0..9999.
            let home = match std::env::var("FLINK_HOME") {
                Ok(h) => h,
                Err(_) => side_input_home().map_err(Failure::runtime)?,
            };
            defines.insert("FLINK_HOME".into(), home);
            // Unthrottled unless --rate: the suite's TPS then only spaces event
            // timestamps.
            let ddl = if args.rate.is_some() {
                DDL_GEN.to_string()
            } else {
                DDL_GEN.replace(
                    "'bid.proportion' = '${BID_PROPORTION}'",
                    "'bid.proportion' = '${BID_PROPORTION}', 'rate.limited' = 'false'",
                )
            };
            format!("{ddl}\n{DDL_VIEWS}\n{q}")
        }
    };
    let options = PipelineOptions {
        file: if own_file {
            args.query.clone()
        } else {
            format!("bench-{}.sql", args.query)
        },
        workers: Some(args.workers),
        default_workers: args.workers,
        defines,
        ..Default::default()
    };
    let rt = runtime(args.workers)?;
    let pipeline = rt.block_on(plan_text(&sql, &options))?;
    let dir = std::env::temp_dir().join(format!("sluice-bench-{}", std::process::id()));
    let config = JobConfig {
        name: format!("bench {}", args.query),
        dead_letter_path: dir.join("dead-letters.jsonl"),
        operator_timing: !args.no_operator_timing,
        ..JobConfig::default()
    };
    let checkpoints = match &args.checkpoint_interval {
        None => None,
        Some(v) => {
            let interval = sluice_types::parse_duration(v)
                .map_err(|e| Failure::user(anyhow!("--checkpoint-interval {v}: {e}")))?;
            let location = dir.join("checkpoints");
            let store = sluice_state::CheckpointStore::local(&location, 3)
                .map_err(|e| Failure::runtime(anyhow!("{e}")))?;
            Some(sluice_runtime::CheckpointConfig {
                store: std::sync::Arc::new(store),
                location: location.display().to_string(),
                interval,
                timeout: std::time::Duration::from_secs(600),
                fresh: true,
            })
        }
    };
    let metrics_line = checkpoints.is_some();
    let summary = rt.block_on(execute(pipeline, config, checkpoints, false, None));
    let _ = std::fs::remove_dir_all(&dir);
    let summary = summary?;
    let secs = summary.duration.as_secs_f64().max(1e-9);
    let events = summary.rows_in;
    let rate = events as f64 / secs;
    out!(
        "sluice {} events={} workers={} seconds={:.3} events_per_sec={:.0} events_per_sec_per_worker={:.0} rows_out={} dead_letters={} source={}",
        args.query,
        events,
        args.workers,
        secs,
        rate,
        rate / args.workers as f64,
        summary.rows_out,
        summary.dead_letters,
        if args.input.is_some() {
            "file"
        } else {
            "generator"
        },
    );
    if metrics_line {
        let c = summary.last_checkpoint.unwrap_or_default();
        out!(
            "# checkpoints: {} completed; the longest took {} ms, the largest held {} bytes of state, {} bytes written in all (last alignment {} ms)",
            summary.checkpoints,
            c.max_duration_ms,
            c.max_size_bytes,
            c.written_bytes,
            c.last_alignment_ms
        );
    }
    if let Some(kib) = peak_rss_kib() {
        out!("# peak memory (VmHWM): {:.1} MiB", kib as f64 / 1024.0);
    }
    if let Some(p) = summary.latency_us {
        out!(
            "# ingest -> emit (newest source read behind each sink write): p50={:.3}ms p99={:.3}ms p999={:.3}ms max={:.3}ms",
            p[0] as f64 / 1e3,
            p[1] as f64 / 1e3,
            p[2] as f64 / 1e3,
            p[3] as f64 / 1e3
        );
    }
    if let Some(p) = summary.event_time_latency_ms {
        out!(
            "# event time -> emit (sinks with an event-time column, newest row of each batch): p50={}ms p99={}ms p999={}ms max={}ms",
            p[0],
            p[1],
            p[2],
            p[3]
        );
    }
    Ok(())
}

/// The process's peak resident memory in KiB (Linux), for state-size estimates.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A temporary FLINK_HOME whose `data/side_input.txt` holds keys 0..9999.
fn side_input_home() -> anyhow::Result<String> {
    let home = std::env::temp_dir().join(format!("sluice-bench-home-{}", std::process::id()));
    std::fs::create_dir_all(home.join("data"))?;
    let text: String = (0..10_000).map(|k| format!("{k},value-{k}\n")).collect();
    std::fs::write(home.join("data").join("side_input.txt"), text)?;
    Ok(home.display().to_string())
}
