//! `sluice run` and `sluice explain`.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use std::sync::Arc;
use std::time::Duration;

use sluice_runtime::{CheckpointConfig, Job, JobConfig, JobSummary, RestartStrategy};
use sluice_sql::{Pipeline, PipelineOptions};
use sluice_state::CheckpointStore;
use sluice_types::ErrorKind;

use crate::Failure;
use crate::args::{ExplainArgs, PlanArgs, RunArgs};
use crate::progress;

/// Builds a tokio runtime with `threads` workers.
pub(crate) fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(anyhow!("cannot start the runtime: {e}")))
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Reads and plans a pipeline file.
pub(crate) async fn plan(args: &PlanArgs) -> Result<Pipeline, Failure> {
    let text = read_sql(&args.file)?;
    let options = PipelineOptions {
        file: args.file.display().to_string(),
        workers: args.workers,
        default_workers: cores(),
        defines: args.defines().map_err(|e| Failure::user(anyhow!(e)))?,
        ..Default::default()
    };
    plan_text(&text, &options).await
}

/// Plans SQL text, mapping errors to exit codes.
pub(crate) async fn plan_text(text: &str, options: &PipelineOptions) -> Result<Pipeline, Failure> {
    Pipeline::plan(text, options)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::User => Failure::user(e),
            _ => Failure::runtime(e),
        })
}

fn read_sql(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| {
        Failure::user(anyhow!(
            "cannot read pipeline file '{}': {e}. Pass the path of a .sql file: sluice run pipeline.sql",
            path.display()
        ))
    })
}

/// `sluice explain`.
pub(crate) fn explain(args: ExplainArgs) -> Result<(), Failure> {
    let rt = runtime(1)?;
    let pipeline = rt.block_on(plan(&args.plan))?;
    print!("{}", sluice_types::redact(&pipeline.explain(args.logical)));
    Ok(())
}

/// `sluice run`.
pub(crate) fn run(args: RunArgs) -> Result<(), Failure> {
    let planner = runtime(1)?;
    let pipeline = planner.block_on(plan(&args.plan))?;
    drop(planner);
    let dead_letters = args
        .dead_letters
        .clone()
        .or_else(|| {
            pipeline
                .setting("sluice.dead-letter.path")
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("dead-letters.jsonl"));
    let checkpoints = checkpoint_config(&args, &pipeline)?;
    let config = JobConfig {
        name: pipeline
            .setting("pipeline.name")
            .map(str::to_string)
            .unwrap_or_else(|| args.plan.file.display().to_string()),
        dead_letter_path: dead_letters,
        restart: restart_strategy(&pipeline, checkpoints.is_some())?,
        ..JobConfig::default()
    };
    let rt = runtime(pipeline.workers)?;
    let http = args.http.clone().or_else(|| {
        (!sluice_connectors::http::endpoints().is_empty()
            || !sluice_connectors::sse::streams().is_empty())
        .then(|| DEFAULT_HTTP.to_string())
    });
    let quiet = args.quiet;
    let summary = rt.block_on(async move {
        let server = match &http {
            Some(addr) => Some(start_server(addr, quiet).await?),
            None => None,
        };
        let summary = execute(pipeline, config, checkpoints, !quiet).await;
        if let Some(stop) = server {
            let _ = stop.send(());
        }
        summary
    })?;
    if !args.quiet {
        print_summary(&summary);
    }
    Ok(())
}

/// Where `sluice run` serves HTTP when the pipeline has `http` tables and no `--http`.
const DEFAULT_HTTP: &str = "127.0.0.1:8080";

/// Binds `addr` and serves the ingest endpoints there until the returned sender fires.
async fn start_server(
    addr: &str,
    quiet: bool,
) -> Result<tokio::sync::oneshot::Sender<()>, Failure> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Failure::user(anyhow!(
            "cannot serve HTTP on '{addr}': {e}. Pass another address with --http HOST:PORT"
        ))
    })?;
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| addr.to_string());
    if !quiet {
        for t in sluice_connectors::http::endpoints() {
            eprintln!("Ingest: POST http://{bound}/ingest/{t}");
        }
        for t in sluice_connectors::sse::streams() {
            eprintln!("Events: GET http://{bound}/sse/{t}");
        }
    }
    tracing::info!(address = %bound, "Serving HTTP.");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = sluice_server::serve(listener, shutdown).await {
            tracing::error!(error = %e, "The HTTP server stopped.");
        }
    });
    Ok(stop)
}

/// Runs a planned pipeline with Ctrl-C handling and the progress line.
pub(crate) async fn execute(
    pipeline: Pipeline,
    config: JobConfig,
    checkpoints: Option<CheckpointConfig>,
    show_progress: bool,
) -> Result<JobSummary, Failure> {
    let mut job = Job::new(pipeline.graph, config).map_err(Failure::runtime)?;
    let stop_message = if checkpoints.is_some() {
        "\nStopping: taking a savepoint (Ctrl-C again to abort)."
    } else {
        "\nStopping: draining and flushing sinks (Ctrl-C again to abort)."
    };
    if let Some(c) = checkpoints {
        job = job.with_checkpoints(c);
    }
    let shutdown = job.shutdown_handle();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("{stop_message}");
            shutdown.stop();
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("Aborted.");
                std::process::exit(130);
            }
        }
    });
    let bar = if show_progress {
        progress::spawn(job.metrics())
    } else {
        None
    };
    let result = job.run().await;
    progress::stop(bar);
    result.map_err(|e| match e.kind() {
        ErrorKind::User => Failure {
            code: 1,
            error: anyhow!("the pipeline failed: {e}"),
        },
        _ => Failure::runtime(anyhow!("the pipeline failed: {e}")),
    })
}

/// Default time between checkpoints.
const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);
/// Complete checkpoints kept.
const DEFAULT_RETAINED: usize = 3;

/// The first of `keys` that is SET, parsed; a bad value is a user error naming it.
fn setting<T>(
    pipeline: &Pipeline,
    keys: &[&str],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, Failure> {
    for key in keys {
        if let Some(v) = pipeline.setting(key) {
            return parse(v)
                .map(Some)
                .map_err(|e| Failure::user(anyhow!("SET '{key}' = '{v}': {e}")));
        }
    }
    Ok(None)
}

fn duration_setting(pipeline: &Pipeline, keys: &[&str]) -> Result<Option<Duration>, Failure> {
    setting(pipeline, keys, sluice_types::parse_duration)
}

fn number_setting<T: std::str::FromStr>(
    pipeline: &Pipeline,
    keys: &[&str],
) -> Result<Option<T>, Failure> {
    setting(pipeline, keys, |v| {
        v.trim()
            .parse()
            .map_err(|_| "expected a number".to_string())
    })
}

/// Checkpointing from `--checkpoint-dir`/`--checkpoint-interval`/`--fresh` and the
/// `execution.checkpointing.*` settings; none without a directory.
fn checkpoint_config(
    args: &RunArgs,
    pipeline: &Pipeline,
) -> Result<Option<CheckpointConfig>, Failure> {
    let dir = args.checkpoint_dir.clone().or_else(|| {
        pipeline
            .setting("execution.checkpointing.dir")
            .or_else(|| pipeline.setting("state.checkpoints.dir"))
            .map(PathBuf::from)
    });
    let Some(dir) = dir else {
        if args.fresh {
            return Err(Failure::user(anyhow!(
                "--fresh discards checkpoints, but no checkpoint directory is set: add --checkpoint-dir DIR"
            )));
        }
        return Ok(None);
    };
    let interval = match &args.checkpoint_interval {
        Some(v) => sluice_types::parse_duration(v)
            .map_err(|e| Failure::user(anyhow!("--checkpoint-interval {v}: {e}")))?,
        None => duration_setting(pipeline, &["execution.checkpointing.interval"])?
            .unwrap_or(DEFAULT_CHECKPOINT_INTERVAL),
    };
    if interval.is_zero() {
        return Err(Failure::user(anyhow!(
            "the checkpoint interval must be above zero"
        )));
    }
    let timeout = duration_setting(pipeline, &["execution.checkpointing.timeout"])?
        .unwrap_or(Duration::from_secs(600));
    let retain = number_setting(
        pipeline,
        &[
            "execution.checkpointing.num-retained",
            "state.checkpoints.num-retained",
        ],
    )?
    .unwrap_or(DEFAULT_RETAINED);
    let location = dir.display().to_string();
    let store = CheckpointStore::open(&location, retain)
        .map_err(|e| Failure::user(anyhow!("checkpoint location '{location}': {e}")))?;
    Ok(Some(CheckpointConfig {
        store: Arc::new(store),
        location,
        interval,
        timeout,
        fresh: args.fresh,
    }))
}

/// Flink's `restart-strategy.*` settings. The default is no restarts without
/// checkpoints, and exponential backoff (1 s doubling to 1 min, 10 restarts) with them.
fn restart_strategy(pipeline: &Pipeline, checkpointing: bool) -> Result<RestartStrategy, Failure> {
    let kind = pipeline
        .setting("restart-strategy.type")
        .or_else(|| pipeline.setting("restart-strategy"))
        .map(|k| k.trim().to_ascii_lowercase());
    let exponential = |pipeline: &Pipeline| -> Result<RestartStrategy, Failure> {
        let p = "restart-strategy.exponential-delay.";
        Ok(RestartStrategy::ExponentialDelay {
            attempts: number_setting(pipeline, &[&format!("{p}attempts-before-reset-backoff")])?
                .unwrap_or(10),
            initial: duration_setting(pipeline, &[&format!("{p}initial-backoff")])?
                .unwrap_or(Duration::from_secs(1)),
            max: duration_setting(pipeline, &[&format!("{p}max-backoff")])?
                .unwrap_or(Duration::from_secs(60)),
            multiplier: number_setting(pipeline, &[&format!("{p}backoff-multiplier")])?
                .unwrap_or(2.0),
        })
    };
    match kind.as_deref() {
        None if checkpointing => exponential(pipeline),
        None | Some("none" | "off" | "disable") => Ok(RestartStrategy::None),
        Some("fixed-delay" | "fixeddelay") => Ok(RestartStrategy::FixedDelay {
            attempts: number_setting(pipeline, &["restart-strategy.fixed-delay.attempts"])?
                .unwrap_or(1),
            delay: duration_setting(pipeline, &["restart-strategy.fixed-delay.delay"])?
                .unwrap_or(Duration::from_secs(1)),
        }),
        Some("exponential-delay" | "exponentialdelay") => exponential(pipeline),
        Some(other) => Err(Failure::user(anyhow!(
            "SET 'restart-strategy.type' = '{other}': expected none, fixed-delay or exponential-delay"
        ))),
    }
}

fn print_summary(s: &JobSummary) {
    let secs = s.duration.as_secs_f64().max(1e-6);
    eprintln!(
        "{} in {}: {} rows in ({}/s), {} rows out, {} dead letter{}.",
        if s.stopped { "Stopped" } else { "Finished" },
        sluice_types::format_duration(s.duration),
        s.rows_in,
        progress::human(s.rows_in as f64 / secs),
        s.rows_out,
        s.dead_letters,
        if s.dead_letters == 1 { "" } else { "s" },
    );
    if s.dead_letters > 0 {
        eprintln!(
            "{} record{} could not be read; see {} (one JSON object per record, with the reason).",
            s.dead_letters,
            if s.dead_letters == 1 { "" } else { "s" },
            s.dead_letter_path.display()
        );
    }
    if s.checkpoints > 0 || s.restored_from.is_some() {
        eprintln!(
            "{}{} checkpoint{} taken{}.",
            s.restored_from
                .map(|id| format!("Resumed from checkpoint {id}; "))
                .unwrap_or_default(),
            s.checkpoints,
            if s.checkpoints == 1 { "" } else { "s" },
            if s.restarts > 0 {
                format!(
                    ", {} restart{} after failures",
                    s.restarts,
                    if s.restarts == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            }
        );
    }
    if let Some(id) = s.restored_from
        && s.rows_in == 0
        && s.savepoint.is_none()
    {
        eprintln!(
            "Nothing was left to read after checkpoint {id} (the pipeline had finished); run with --fresh to start over."
        );
    }
    if let Some(id) = s.savepoint {
        eprintln!("Stopped with savepoint {id}: run the same command to resume from it.");
    }
    if s.late_rows > 0 {
        eprintln!(
            "{} late row{} arrived after {} window had fired and {} dropped (keep them with \
             the table option 'scan.watermark.late-rows.table' or SET \
             'table.exec.emit.allow-lateness'; see docs/sql.md).",
            s.late_rows,
            if s.late_rows == 1 { "" } else { "s" },
            if s.late_rows == 1 { "its" } else { "their" },
            if s.late_rows == 1 { "was" } else { "were" },
        );
    }
}
