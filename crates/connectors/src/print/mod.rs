//! `'connector' = 'print'`: writes every row to stdout (or stderr) as Flink does:
//! `+I[v1, v2, …]`, prefixed with `<subtask>> ` when the sink runs in parallel and with
//! `print-identifier` when set. At-least-once (after a restart rows may print again).

mod sink;

pub use sink::{PrintConnector, format_rows};
