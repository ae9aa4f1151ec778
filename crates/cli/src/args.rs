//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Sluice: Flink SQL pipelines in one binary.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
pub(crate) struct Cli {
    /// More logging on stderr (-v info, -vv debug); or set SLUICE_LOG=debug.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run every INSERT of a Flink SQL file as one job.
    Run(RunArgs),
    /// Print the planned dataflow without running it.
    Explain(ExplainArgs),
    /// Run a server: a REST API to submit, watch, stop and resume pipelines,
    /// /metrics, ingest endpoints and live streams.
    Serve(ServeArgs),
    /// Write generated events (Nexmark) to a file or stdout.
    Gen(GenArgs),
    /// Measure a built-in benchmark query.
    Bench(BenchArgs),
}

/// Options shared by `run` and `explain`.
#[derive(Debug, Args, Clone)]
pub(crate) struct PlanArgs {
    /// The pipeline: a file of Flink SQL statements.
    pub(crate) file: PathBuf,
    /// Subtasks per operator (default: SET 'parallelism.default', else the core count).
    #[arg(short, long)]
    pub(crate) workers: Option<usize>,
    /// Replace ${NAME} in the file by VALUE (repeatable), e.g. -D TPS=1000.
    #[arg(short = 'D', long = "define", value_name = "NAME=VALUE")]
    pub(crate) defines: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) plan: PlanArgs,
    /// Where rejected records go (JSON lines). Default: SET 'sluice.dead-letter.path',
    /// else dead-letters.jsonl in the working directory.
    #[arg(long, value_name = "PATH")]
    pub(crate) dead_letters: Option<PathBuf>,
    /// No progress line and no summary on stderr.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Take checkpoints into this directory (or s3://bucket/prefix, configured by the
    /// AWS_* environment variables) and resume from the latest one there (default: SET
    /// 'execution.checkpointing.dir'; none: no checkpoints).
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub(crate) checkpoint_dir: Option<PathBuf>,
    /// Time between checkpoints, e.g. 10s, 500ms (default: SET
    /// 'execution.checkpointing.interval', else 10s).
    #[arg(long, value_name = "DURATION")]
    pub(crate) checkpoint_interval: Option<String>,
    /// Ignore and delete the checkpoints in the checkpoint directory: start over.
    #[arg(long)]
    pub(crate) fresh: bool,
    /// Serve HTTP on this address: `POST /ingest/<table>` for the pipeline's `http`
    /// tables, `GET /sse/<table>` for its `sse` tables, and `/healthz` (default with
    /// such tables: 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub(crate) http: Option<String>,
    /// API keys, TLS and limits for that HTTP server: the `[[api_keys]]`, `[tls]` and
    /// `[limits]` of a `sluice serve` configuration file (its other settings are not
    /// used). Serves HTTP (on --http, else 127.0.0.1:8080) even without http tables.
    #[arg(long, value_name = "FILE")]
    pub(crate) http_config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The server configuration (TOML): listen address, data directory, API keys, TLS,
    /// limits; see docs/operations.md. Without it: 127.0.0.1:8080, ./sluice-data, no keys.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Listen here instead (HOST:PORT).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// Keep pipelines and their checkpoints here instead.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Serve the PostgreSQL protocol over the `view` tables here (default
    /// 127.0.0.1:4566; "off": not at all).
    #[arg(long, value_name = "ADDR|off")]
    pub(crate) pg_listen: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    #[command(flatten)]
    pub(crate) plan: PlanArgs,
    /// Also print DataFusion's optimized logical plan of each INSERT.
    #[arg(long)]
    pub(crate) logical: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum GenFormat {
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum GenTable {
    Bid,
    Auction,
    Person,
    All,
}

#[derive(Debug, Args)]
pub(crate) struct GenArgs {
    /// What to generate (only `nexmark` for now).
    pub(crate) generator: String,
    /// How many events (suffixes K, M, G allowed: 10M).
    #[arg(long, default_value = "1M", value_parser = parse_count)]
    pub(crate) events: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GenFormat::Json)]
    pub(crate) format: GenFormat,
    /// Which events: bids only (flat, as Flink's bid table), auctions, persons, or all in
    /// the nested layout of the Nexmark suite's ddl_gen.sql.
    #[arg(long, value_enum, default_value_t = GenTable::Bid)]
    pub(crate) table: GenTable,
    /// Output file (default: stdout).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Event-time clock start, e.g. '2024-01-01 00:00:00' (default: fixed, reproducible).
    #[arg(long, default_value = "2024-01-01 00:00:00")]
    pub(crate) base_time: String,
    /// Events per second of event time (spacing of timestamps).
    #[arg(long, default_value = "10000000")]
    pub(crate) rate: u64,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The suite: `nexmark`.
    pub(crate) suite: String,
    /// The query: q0-q5, q7-q9, q12, q14-q23 (the suite queries Sluice runs), or a
    /// `.sql` file of INSERTs over the suite's tables (e.g. bench/q5-latency.sql).
    #[arg(long, default_value = "q0")]
    pub(crate) query: String,
    /// Events to generate (suffixes K, M, G).
    #[arg(long, default_value = "10M", value_parser = parse_count)]
    pub(crate) events: u64,
    /// Subtasks per operator.
    #[arg(short, long, default_value_t = 1)]
    pub(crate) workers: usize,
    /// Read bids from this newline-delimited JSON file (as written by `sluice gen
    /// nexmark` or the Flink peer's generator) instead of the built-in generator.
    #[arg(long)]
    pub(crate) input: Option<PathBuf>,
    /// Take checkpoints at this interval (into a temporary directory), e.g. 1s, to
    /// measure their cost.
    #[arg(long, value_name = "DURATION")]
    pub(crate) checkpoint_interval: Option<String>,
    /// Generate this many events per second (wall clock) instead of as fast as
    /// possible: latency at a given load.
    #[arg(long, value_name = "EVENTS_PER_SEC")]
    pub(crate) rate: Option<u64>,
    /// Do not time batches per operator (the batch-time histograms and backpressure
    /// counters of /metrics), to measure what that timing costs.
    #[arg(long)]
    pub(crate) no_operator_timing: bool,
}

/// Parses `10M`, `500K`, `1G`, `1000`.
pub(crate) fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1_000),
        Some('m' | 'M') => (&t[..t.len() - 1], 1_000_000),
        Some('g' | 'G' | 'b' | 'B') => (&t[..t.len() - 1], 1_000_000_000),
        _ => (t.as_str(), 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("'{s}' is not a count; write e.g. 1000, 500K or 10M"))
}

impl PlanArgs {
    /// The -D definitions as a map.
    pub(crate) fn defines(&self) -> Result<std::collections::BTreeMap<String, String>, String> {
        self.defines
            .iter()
            .map(|d| {
                d.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                    .ok_or_else(|| format!("-D {d}: write -D NAME=VALUE"))
            })
            .collect()
    }
}
