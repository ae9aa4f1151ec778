//! `sluice run` and `sluice explain`.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use sluice_runtime::{Job, JobConfig, JobSummary};
use sluice_sql::{Pipeline, PipelineOptions};
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
    print!("{}", pipeline.explain(args.logical));
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
    let config = JobConfig {
        name: pipeline
            .setting("pipeline.name")
            .map(str::to_string)
            .unwrap_or_else(|| args.plan.file.display().to_string()),
        dead_letter_path: dead_letters,
        ..JobConfig::default()
    };
    let rt = runtime(pipeline.workers)?;
    let summary = rt.block_on(execute(pipeline, config, !args.quiet))?;
    if !args.quiet {
        print_summary(&summary);
    }
    Ok(())
}

/// Runs a planned pipeline with Ctrl-C handling and the progress line.
pub(crate) async fn execute(
    pipeline: Pipeline,
    config: JobConfig,
    show_progress: bool,
) -> Result<JobSummary, Failure> {
    let job = Job::new(pipeline.graph, config).map_err(Failure::runtime)?;
    let shutdown = job.shutdown_handle();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nStopping: draining and flushing sinks (Ctrl-C again to abort).");
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
