//! The `sluice` binary: parses the command line, runs the subcommand, and maps every
//! error to one message and an exit code (0 ok, 1 runtime failure, 2 bad usage or SQL).

mod args;
mod bench;
mod gen_cmd;
mod progress;
mod run;
mod serve;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

/// mimalloc, as DataFusion's own CLI uses: operator state is many small allocations
/// (rows of Top-N, joins, aggregates), where glibc's allocator spent a third of q18's
/// time (see bench/RESULTS.md). Built without transparent huge pages (`no_thp`): with
/// them, identical q7 runs spent 3 s or 10 s in the kernel zeroing and splitting huge
/// pages, by chance; without, 2-4 s every time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A failure with the exit code it maps to.
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) error: anyhow::Error,
}

impl Failure {
    /// Bad usage, bad SQL, bad options: exit 2.
    pub(crate) fn user(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: 2,
            error: error.into(),
        }
    }

    /// The pipeline failed while running: exit 1.
    pub(crate) fn runtime(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: 1,
            error: error.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Explain(a) => run::explain(a),
        Command::Serve(a) => serve::serve(a),
        Command::Gen(a) => gen_cmd::generate(a),
        Command::Bench(a) => bench::bench(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let message = format!("{:#}", f.error);
            eprintln!("error: {}", sluice_types::redact(&message));
            ExitCode::from(f.code)
        }
    }
}

/// Standard error with secrets hidden (see `sluice_types::redact`): log lines are
/// written whole, one `write` each.
struct Redacting(std::io::Stderr);

impl std::io::Write for Redacting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(sluice_types::redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Redacting(std::io::stderr()))
        .with_target(false)
        .try_init();
}
