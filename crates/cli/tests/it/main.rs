//! The CLI crate's one integration-test binary: golden SQL files, the binary's
//! behaviour as a user sees it (exit codes, messages, dead letters), and the Nexmark
//! queries against the batch oracle.

mod checkpoints;
mod cli;
mod event_time;
mod golden;
mod jdbc;
mod kafka;
mod nexmark;
mod redis;

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the built `sluice` binary in `dir` with `args`.
pub(crate) fn sluice(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env("SLUICE_LOG", "error")
        .output()
        .expect("the sluice binary runs")
}

/// The repository root.
pub(crate) fn root() -> PathBuf {
    sluice_testkit::repo_root()
}

/// stdout and stderr as text.
pub(crate) fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
