//! Golden SQL files under `tests/sql/` (sqllogictest format), each run with its own
//! engine and scratch directory; every query is also checked against the DataFusion
//! batch oracle. `SLUICE_COMPLETE=1` rewrites the expected results.

use crate::root;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_sql_files() {
    let dir = root().join("tests").join("sql");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/sql exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden files in {}", dir.display());
    let complete = std::env::var("SLUICE_COMPLETE").is_ok_and(|v| v == "1");
    let only = std::env::var("SLUICE_GOLDEN").ok();
    let mut failures = Vec::new();
    for f in &files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        if let Err(e) = sluice_testkit::run_golden_file(f, 2, complete).await {
            failures.push(format!("{name}:\n{e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "golden files failed:\n{}",
        failures.join("\n\n")
    );
}
