//! `sluice run` and `sluice explain`.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use std::sync::Arc;

use sluice_runtime::{CheckpointConfig, Job, JobConfig, JobSummary};
use sluice_sql::{Pipeline, PipelineOptions};
use sluice_state::CheckpointStore;
use sluice_types::ErrorKind;

use crate::Failure;
use crate::args::{ExplainArgs, PlanArgs, RunArgs};
use crate::progress;

/// Stack of each runtime thread: planning a large (but allowed) statement recurses
/// deeply, more so in a debug build. Reserved, not used, until needed.
const THREAD_STACK: usize = 64 << 20;

/// Builds a tokio runtime with `threads` workers.
pub(crate) fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_stack_size(THREAD_STACK)
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

/// [`plan`] on a runtime thread (with its larger stack), not the caller's.
async fn plan_on_worker(args: PlanArgs) -> Result<Pipeline, Failure> {
    tokio::spawn(async move { plan(&args).await })
        .await
        .map_err(|e| Failure::runtime(anyhow!("planning stopped: {e}")))?
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
    let pipeline = rt.block_on(plan_on_worker(args.plan.clone()))?;
    print!("{}", sluice_types::redact(&pipeline.explain(args.logical)));
    Ok(())
}

/// `sluice run`.
pub(crate) fn run(args: RunArgs) -> Result<(), Failure> {
    let planner = runtime(1)?;
    let pipeline = planner.block_on(plan_on_worker(args.plan.clone()))?;
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
        restart: sluice_server::settings::restart_strategy(&pipeline, checkpoints.is_some())
            .map_err(server_failure)?,
        ..JobConfig::default()
    };
    let http_config = match &args.http_config {
        Some(path) => sluice_server::ServerConfig::load(path).map_err(server_failure)?,
        None => sluice_server::ServerConfig::default(),
    };
    let rt = runtime(pipeline.workers)?;
    let http = args.http.clone().or_else(|| {
        (!sluice_connectors::http::endpoints().is_empty()
            || !sluice_connectors::sse::streams().is_empty()
            || args.http_config.is_some())
        .then(|| DEFAULT_HTTP.to_string())
    });
    let quiet = args.quiet;
    let sql = read_sql(&args.plan.file)?;
    let summary = rt.block_on(async move {
        let show = match &http {
            Some(addr) => {
                let manager = sluice_server::Manager::new(sluice_server::ManagerSettings {
                    data_dir: None,
                    checkpoint_dir: None,
                    checkpoint_interval: sluice_server::settings::DEFAULT_CHECKPOINT_INTERVAL,
                });
                let stop = start_server(addr, quiet, manager.clone(), &http_config).await?;
                Some((manager, stop))
            }
            None => None,
        };
        let summary = execute(
            pipeline,
            config,
            checkpoints,
            !quiet,
            show.as_ref().map(|(m, _)| (m.clone(), sql)),
        )
        .await;
        if let Some((_, stop)) = show {
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

/// Binds `addr` and serves the ingest endpoints, the live streams and the read-only
/// API of the one pipeline there until the returned sender fires; `config` gives the
/// API keys, TLS and limits.
async fn start_server(
    addr: &str,
    quiet: bool,
    manager: Arc<sluice_server::Manager>,
    config: &sluice_server::ServerConfig,
) -> Result<tokio::sync::oneshot::Sender<()>, Failure> {
    let tls = config.tls_acceptor().map_err(server_failure)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
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
            eprintln!("Ingest: POST {scheme}://{bound}/ingest/{t}");
        }
        for t in sluice_connectors::sse::streams() {
            eprintln!("Events: GET {scheme}://{bound}/sse/{t}");
        }
        eprintln!(
            "API: GET {scheme}://{bound}/api/pipelines, metrics: GET {scheme}://{bound}/metrics"
        );
    }
    tracing::info!(address = %bound, "Serving HTTP.");
    if config.api_keys.is_empty() && listener.local_addr().is_ok_and(|a| !a.ip().is_loopback()) {
        eprintln!(
            "Warning: {bound} is reachable from the network and sluice run has no API keys: \
             the pipeline's read-only API, metrics and live tail are open to anyone who can reach it \
             (ingest and sse tables check their own auth.token). Give API keys with --http-config to close them."
        );
    }
    let router = sluice_server::router(
        sluice_server::AppState::new(manager, config),
        config.max_body_bytes,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = sluice_server::serve(listener, router, tls, shutdown).await {
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
    show: Option<(Arc<sluice_server::Manager>, String)>,
) -> Result<JobSummary, Failure> {
    let shown = show.map(|(manager, sql)| {
        manager.show_run(
            &config.name,
            &sql,
            &pipeline,
            checkpoints.as_ref().map(|c| c.location.clone()),
            config.dead_letter_path.clone(),
        )
    });
    let mut job = Job::new(pipeline.graph, config).map_err(Failure::runtime)?;
    if let Some(entry) = &shown {
        entry.attach(job.metrics());
    }
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
    if let Some(entry) = &shown {
        entry.finished(&result);
    }
    progress::stop(bar);
    result.map_err(|e| match e.kind() {
        ErrorKind::User => Failure {
            code: 1,
            error: anyhow!("the pipeline failed: {e}"),
        },
        _ => Failure::runtime(anyhow!("the pipeline failed: {e}")),
    })
}

/// A server-crate error as an exit code: 2 for the user's mistakes, 1 otherwise.
pub(crate) fn server_failure(e: sluice_server::Error) -> Failure {
    match e.kind() {
        ErrorKind::User => Failure::user(anyhow!(e)),
        _ => Failure::runtime(anyhow!(e)),
    }
}

/// Checkpointing from `--checkpoint-dir`/`--checkpoint-interval`/`--fresh` and the
/// `execution.checkpointing.*` settings; none without a directory.
fn checkpoint_config(
    args: &RunArgs,
    pipeline: &Pipeline,
) -> Result<Option<CheckpointConfig>, Failure> {
    let set = sluice_server::settings::checkpoint_settings(pipeline).map_err(server_failure)?;
    let dir = args
        .checkpoint_dir
        .as_ref()
        .map(|d| d.display().to_string())
        .or(set.dir);
    let Some(location) = dir else {
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
        None => set
            .interval
            .unwrap_or(sluice_server::settings::DEFAULT_CHECKPOINT_INTERVAL),
    };
    if interval.is_zero() {
        return Err(Failure::user(anyhow!(
            "the checkpoint interval must be above zero"
        )));
    }
    let store = CheckpointStore::open(&location, set.retain)
        .map_err(|e| Failure::user(anyhow!("checkpoint location '{location}': {e}")))?;
    Ok(Some(CheckpointConfig {
        store: Arc::new(store),
        location,
        interval,
        timeout: set.timeout,
        fresh: args.fresh,
    }))
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
