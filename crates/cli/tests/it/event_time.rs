//! Event time end to end: late rows dropped and counted, sent to a side-output table,
//! or folded into fired windows with allowed lateness; results independent of the
//! worker count and of any shuffle of the input within the watermark bound.

use std::sync::{Arc, Mutex};

use sluice_runtime::{Job, JobConfig, JobSummary};
use sluice_sql::{Pipeline, PipelineOptions};
use sluice_types::arrow::record_batch::RecordBatch;

/// Runs `sql` with `workers`; returns the captured SELECT results (a changelog applied)
/// and the job summary.
async fn run(sql: &str, workers: usize, dir: &std::path::Path) -> (Vec<String>, JobSummary) {
    let captured: Arc<Mutex<Vec<RecordBatch>>> = Arc::new(Mutex::new(Vec::new()));
    let opts = PipelineOptions {
        file: "test.sql".into(),
        workers: Some(workers),
        default_workers: workers,
        capture: Some(captured.clone()),
        ..Default::default()
    };
    let pipeline = Pipeline::plan(sql, &opts)
        .await
        .unwrap_or_else(|e| panic!("does not plan: {e}\n{sql}"));
    let config = JobConfig {
        name: "t".into(),
        dead_letter_path: dir.join("dl.jsonl"),
        ..Default::default()
    };
    let summary = Job::new(pipeline.graph, config)
        .expect("a valid graph")
        .run()
        .await
        .unwrap_or_else(|e| panic!("fails: {e}"));
    let mut rows: Vec<String> =
        sluice_testkit::format_batches(&captured.lock().expect("not poisoned"))
            .into_iter()
            .map(|r| r.join(" "))
            .collect();
    rows.sort();
    (rows, summary)
}

/// Three files read in order by one worker, one batch each: the watermark (1 minute
/// behind the largest time seen) moves between them.
fn write_events(dir: &std::path::Path) -> std::path::PathBuf {
    let input = dir.join("events");
    std::fs::create_dir_all(&input).expect("temp dir");
    let files = [
        "ts,k,v\n2024-03-01 10:00:10,a,1\n2024-03-01 10:01:00,a,2\n2024-03-01 10:04:00,b,3\n",
        // 10:02 is behind this split's watermark (10:03) but its window is still open.
        "ts,k,v\n2024-03-01 10:06:30,a,4\n2024-03-01 10:02:00,a,5\n",
        // The watermark is 10:05:30: the window [10:00, 10:05) has fired; 10:03 is late.
        "ts,k,v\n2024-03-01 10:03:00,a,6\n2024-03-01 10:12:00,b,7\n",
    ];
    for (i, f) in files.iter().enumerate() {
        std::fs::write(input.join(format!("part-{i}.csv")), f).expect("temp file");
    }
    input
}

fn ddl(input: &std::path::Path, extra: &str) -> String {
    format!(
        "CREATE TABLE ev (ts TIMESTAMP(3), k STRING, v INT,
           WATERMARK FOR ts AS ts - INTERVAL '1' MINUTE)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'{extra});",
        input.display()
    )
}

const WINDOWS: &str = "SELECT k, window_start, COUNT(*) AS n, SUM(v) AS total
    FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '5' MINUTE))
    GROUP BY k, window_start, window_end;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_rows_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_events(dir.path());
    let (rows, summary) = run(&format!("{}\n{WINDOWS}", ddl(&input, "")), 1, dir.path()).await;
    assert_eq!(
        rows,
        [
            "a 2024-03-01 10:00:00.000 3 8",
            "a 2024-03-01 10:05:00.000 1 4",
            "b 2024-03-01 10:00:00.000 1 3",
            "b 2024-03-01 10:10:00.000 1 7",
        ]
    );
    assert_eq!(
        summary.late_rows, 1,
        "the 10:03 row came after its window fired"
    );
    assert_eq!(summary.rows_in, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_lateness_updates_fired_windows() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_events(dir.path());
    let sql = format!(
        "SET 'table.exec.emit.allow-lateness' = '10 min';\n{}\n{WINDOWS}",
        ddl(&input, "")
    );
    let (rows, summary) = run(&sql, 1, dir.path()).await;
    assert_eq!(
        rows,
        [
            "a 2024-03-01 10:00:00.000 4 14",
            "a 2024-03-01 10:05:00.000 1 4",
            "b 2024-03-01 10:00:00.000 1 3",
            "b 2024-03-01 10:10:00.000 1 7",
        ]
    );
    assert_eq!(summary.late_rows, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_rows_go_to_a_side_output_table() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_events(dir.path());
    let late_dir = dir.path().join("late");
    let sql = format!(
        "{}
         CREATE TABLE late_ev (ts TIMESTAMP(3), k STRING, v INT)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         {WINDOWS}",
        ddl(&input, ", 'scan.watermark.late-rows.table' = 'late_ev'"),
        late_dir.display()
    );
    let (rows, summary) = run(&sql, 1, dir.path()).await;
    // Judged against the split's own watermark, 10:02 and 10:03 are both late.
    assert_eq!(
        rows,
        [
            "a 2024-03-01 10:00:00.000 2 3",
            "a 2024-03-01 10:05:00.000 1 4",
            "b 2024-03-01 10:00:00.000 1 3",
            "b 2024-03-01 10:10:00.000 1 7",
        ]
    );
    assert_eq!(summary.late_rows, 0);
    let mut late: Vec<String> = std::fs::read_dir(&late_dir)
        .unwrap()
        .flatten()
        .flat_map(|f| {
            std::fs::read_to_string(f.path())
                .unwrap()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    late.sort();
    assert_eq!(late, ["2024-03-01 10:02:00,a,5", "2024-03-01 10:03:00,a,6"]);
}

/// Events one second apart over 8 keys, in `files` files read in name order; with
/// `shuffle`, rows are permuted within blocks of 20 (20 s), less than the watermark's
/// 30 s bound, so no row is late and every result must be the same.
fn write_shuffled(dir: &std::path::Path, seed: u64, shuffle: bool) -> std::path::PathBuf {
    use rand::seq::SliceRandom;
    use rand::{SeedableRng, rngs::SmallRng};
    let input = dir.join(format!("events-{seed}-{shuffle}"));
    std::fs::create_dir_all(&input).expect("temp dir");
    let mut rng = SmallRng::seed_from_u64(seed);
    let base = 1_709_287_200i64; // 2024-03-01 10:00:00 UTC
    let mut rows: Vec<String> = (0..2000i64)
        .map(|i| {
            let t = datafusion_ts(base + i);
            format!("{t},k{},{}", (i * 7 + seed as i64) % 8, (i * 13) % 101)
        })
        .collect();
    if shuffle {
        for block in rows.chunks_mut(20) {
            block.shuffle(&mut rng);
        }
    }
    for (i, chunk) in rows.chunks(200).enumerate() {
        let mut text = String::from("ts,k,v\n");
        for r in chunk {
            text.push_str(r);
            text.push('\n');
        }
        std::fs::write(input.join(format!("part-{i:02}.csv")), text).expect("temp file");
    }
    input
}

/// `secs` since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
fn datafusion_ts(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // 2024-03-01 is day 19783 since the epoch; the events stay within that day.
    assert_eq!(days, 19_783);
    format!(
        "2024-03-01 {:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffles_within_the_bound_and_worker_counts_give_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let query = |input: &std::path::Path| {
        format!(
            "CREATE TABLE ev (ts TIMESTAMP(3), k STRING, v INT,
               WATERMARK FOR ts AS ts - INTERVAL '30' SECOND)
             WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
             SELECT k, window_start, COUNT(*), SUM(v), MIN(v), MAX(v)
             FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
             GROUP BY k, window_start, window_end;
             SELECT window_start, window_end, COUNT(DISTINCT k), AVG(v)
             FROM TABLE(HOP(TABLE ev, DESCRIPTOR(ts), INTERVAL '30' SECOND, INTERVAL '2' MINUTE))
             GROUP BY window_start, window_end;",
            input.display()
        )
    };
    for seed in [1u64, 7, 42] {
        let ordered = write_shuffled(dir.path(), seed, false);
        let (want, s) = run(&query(&ordered), 1, dir.path()).await;
        assert_eq!(s.late_rows, 0);
        assert!(want.len() > 100, "{} rows", want.len());
        let shuffled = write_shuffled(dir.path(), seed, true);
        for workers in [1, 2, 3] {
            let (got, s) = run(&query(&shuffled), workers, dir.path()).await;
            assert_eq!(s.late_rows, 0, "seed {seed}, {workers} workers");
            assert_eq!(got, want, "seed {seed}, {workers} workers");
        }
    }
}

/// A temporal join over many batches: the rates change every 37 s per key while orders
/// stream by, so probe rows wait for the watermark and old versions leave the state
/// mid-stream. The answer is the batch oracle's for any shuffle within the bound and
/// any worker count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporal_joins_match_the_oracle_for_shuffles_and_worker_counts() {
    let dir = tempfile::tempdir().unwrap();
    let base = 1_709_287_200i64;
    let rates = dir.path().join("rates");
    std::fs::create_dir_all(&rates).unwrap();
    // Versions of keys k0..k7 at distinct times (no two versions of a key share one).
    let versions: Vec<String> = (0..60i64)
        .map(|i| {
            format!(
                "{},k{},{}",
                datafusion_ts(base - 300 + i * 41),
                (i * 3) % 8,
                100 + i
            )
        })
        .collect();
    for (i, chunk) in versions.chunks(10).enumerate() {
        let text = format!("ts,k,rate\n{}\n", chunk.join("\n"));
        std::fs::write(rates.join(format!("part-{i:02}.csv")), text).unwrap();
    }
    let query = |orders: &std::path::Path| {
        format!(
            "CREATE TABLE ev (ts TIMESTAMP(3), k STRING, v INT,
               WATERMARK FOR ts AS ts - INTERVAL '30' SECOND)
             WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
             CREATE TABLE rates (ts TIMESTAMP(3), k STRING, rate INT,
               WATERMARK FOR ts AS ts - INTERVAL '30' SECOND, PRIMARY KEY (k) NOT ENFORCED)
             WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
             SELECT e.ts, e.k, e.v, r.rate, r.ts
             FROM ev AS e LEFT JOIN rates FOR SYSTEM_TIME AS OF e.ts AS r ON e.k = r.k;",
            orders.display(),
            rates.display()
        )
    };
    let ordered = write_shuffled(dir.path(), 3, false);
    let opts = PipelineOptions {
        file: "test.sql".into(),
        ..Default::default()
    };
    let oracle = sluice_sql::batch_oracle(&query(&ordered), &opts)
        .await
        .expect("the oracle runs");
    let mut want: Vec<String> = sluice_testkit::format_batches(&oracle)
        .into_iter()
        .map(|r| r.join(" "))
        .collect();
    want.sort();
    assert_eq!(want.len(), 2000);
    let unmatched = want.iter().filter(|r| r.ends_with("NULL NULL")).count();
    assert!(unmatched < 20, "{unmatched} orders without a rate");
    let shuffled = write_shuffled(dir.path(), 3, true);
    for (input, workers) in [(&ordered, 1), (&shuffled, 1), (&shuffled, 3)] {
        let (got, s) = run(&query(input), workers, dir.path()).await;
        assert_eq!(s.late_rows, 0);
        assert_eq!(got, want, "{workers} workers, {}", input.display());
    }
}
