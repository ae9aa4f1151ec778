//! A pipeline's `SET` settings that shape its job: checkpointing (Flink's
//! `execution.checkpointing.*`) and the restart strategy (`restart-strategy.*`). Used by
//! `sluice run` and by `sluice serve` alike.

use std::time::Duration;

use sluice_runtime::RestartStrategy;
use sluice_sql::Pipeline;

use crate::{Error, Result};

/// Default time between checkpoints.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);
/// Complete checkpoints kept.
pub const DEFAULT_RETAINED: usize = 3;

/// What the file's `SET`s say about checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointSettings {
    /// `execution.checkpointing.dir` (or `state.checkpoints.dir`).
    pub dir: Option<String>,
    /// `execution.checkpointing.interval`.
    pub interval: Option<Duration>,
    /// `execution.checkpointing.timeout` (default 10 minutes).
    pub timeout: Duration,
    /// `execution.checkpointing.num-retained` (default 3).
    pub retain: usize,
}

/// The first of `keys` that is SET, parsed; a bad value is a user error naming it.
fn setting<T>(
    pipeline: &Pipeline,
    keys: &[&str],
    parse: impl Fn(&str) -> std::result::Result<T, String>,
) -> Result<Option<T>> {
    for key in keys {
        if let Some(v) = pipeline.setting(key) {
            return parse(v)
                .map(Some)
                .map_err(|e| Error::User(format!("SET '{key}' = '{v}': {e}")));
        }
    }
    Ok(None)
}

fn duration_setting(pipeline: &Pipeline, keys: &[&str]) -> Result<Option<Duration>> {
    setting(pipeline, keys, sluice_types::parse_duration)
}

fn number_setting<T: std::str::FromStr>(pipeline: &Pipeline, keys: &[&str]) -> Result<Option<T>> {
    setting(pipeline, keys, |v| {
        v.trim()
            .parse()
            .map_err(|_| "expected a number".to_string())
    })
}

/// The checkpoint settings of `pipeline`.
pub fn checkpoint_settings(pipeline: &Pipeline) -> Result<CheckpointSettings> {
    let interval = duration_setting(pipeline, &["execution.checkpointing.interval"])?;
    if interval.is_some_and(|i| i.is_zero()) {
        return Err(Error::User(
            "SET 'execution.checkpointing.interval': the checkpoint interval must be above zero"
                .into(),
        ));
    }
    Ok(CheckpointSettings {
        dir: pipeline
            .setting("execution.checkpointing.dir")
            .or_else(|| pipeline.setting("state.checkpoints.dir"))
            .map(str::to_string),
        interval,
        timeout: duration_setting(pipeline, &["execution.checkpointing.timeout"])?
            .unwrap_or(Duration::from_secs(600)),
        retain: number_setting(
            pipeline,
            &[
                "execution.checkpointing.num-retained",
                "state.checkpoints.num-retained",
            ],
        )?
        .unwrap_or(DEFAULT_RETAINED),
    })
}

/// Flink's `restart-strategy.*` settings. The default is no restarts without
/// checkpoints, and exponential backoff (1 s doubling to 1 min, 10 restarts) with them.
pub fn restart_strategy(pipeline: &Pipeline, checkpointing: bool) -> Result<RestartStrategy> {
    let kind = pipeline
        .setting("restart-strategy.type")
        .or_else(|| pipeline.setting("restart-strategy"))
        .map(|k| k.trim().to_ascii_lowercase());
    let exponential = |pipeline: &Pipeline| -> Result<RestartStrategy> {
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
        Some(other) => Err(Error::User(format!(
            "SET 'restart-strategy.type' = '{other}': expected none, fixed-delay or exponential-delay"
        ))),
    }
}
