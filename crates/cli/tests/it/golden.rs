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

/// Every ```sql example in the user docs plans (DDL checked, INSERTs planned and
/// lowered as far as the example's inputs exist).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doc_examples_plan() {
    let mut files = vec![root().join("README.md")];
    for dir in ["docs", "docs/connectors"] {
        for e in std::fs::read_dir(root().join(dir))
            .expect("docs exist")
            .flatten()
        {
            if e.path().extension().is_some_and(|x| x == "md") {
                files.push(e.path());
            }
        }
    }
    let mut checked = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for block in text.split("```sql").skip(1) {
            let sql = block.split("```").next().unwrap_or("");
            // Examples that read files name paths that need not exist here: check their
            // DDL only; the others run through planning and lowering.
            let has_paths = sql.contains("'path'");
            let opts = sluice_sql::PipelineOptions {
                file: f.display().to_string(),
                workers: Some(1),
                default_workers: 1,
                allow_empty: true,
                // Secrets the examples name (`${NAME}`), given as `-D NAME=…` would.
                defines: [
                    ("INCIDENT_TOKEN".to_string(), "example".to_string()),
                    ("INGEST_TOKEN".to_string(), "example".to_string()),
                    ("FEED_TOKEN".to_string(), "example".to_string()),
                    ("DASHBOARD_TOKEN".to_string(), "example".to_string()),
                ]
                .into(),
                ..Default::default()
            };
            let to_plan = if has_paths {
                sql.split(';')
                    .filter(|s| !s.trim_start().to_uppercase().starts_with("INSERT"))
                    .collect::<Vec<_>>()
                    .join(";")
            } else {
                sql.to_string()
            };
            let res = sluice_sql::Pipeline::plan(&to_plan, &opts).await;
            assert!(
                res.is_ok(),
                "{}: example does not plan: {}\n{sql}",
                f.display(),
                res.err().map(|e| e.to_string()).unwrap_or_default()
            );
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} examples found");
}
