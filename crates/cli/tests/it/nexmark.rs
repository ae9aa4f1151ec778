//! The Nexmark suite's files run unchanged (q0, q1, q2, q14, q21, q22 over ddl_gen.sql +
//! ddl_views.sql), and each query's streaming answer equals DataFusion's batch answer
//! over the same events written to a JSON file.

use std::collections::BTreeMap;

use sluice_runtime::{Job, JobConfig};
use sluice_sql::{Pipeline, PipelineOptions, batch_oracle};

use crate::{root, sluice, text};

const QUERIES: [&str; 20] = [
    "q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q9", "q12", "q14", "q15", "q16", "q17", "q18",
    "q19", "q20", "q21", "q22", "q23",
];
/// Queries over processing time: their answer depends on the wall clock, so they are
/// run (and q12's totals checked) but not compared with the batch oracle.
const PROCESSING_TIME: [&str; 1] = ["q12"];
/// Queries whose answer over the test's events may be empty.
const MAY_BE_EMPTY: [&str; 3] = ["q2", "q3", "q14"];
const EVENTS: u64 = 20_000;
/// Events per second of event time in the oracle test: 1 ms apart, so that event-time
/// windows, ordering and ties are meaningful (20 s of event time).
const ORACLE_RATE: &str = "1000";

/// A directory holding `data/side_input.txt` (q13's bounded side input: keys 0..9999
/// with a text value), as the suite expects under `${FLINK_HOME}`.
fn side_input_home() -> std::path::PathBuf {
    let home = std::env::temp_dir().join(format!("sluice-nexmark-home-{}", std::process::id()));
    let data = home.join("data");
    let file = data.join("side_input.txt");
    if !file.exists() {
        std::fs::create_dir_all(&data).expect("temp dir");
        let text: String = (0..10_000).map(|k| format!("{k},value-{k}\n")).collect();
        let tmp = data.join(format!("side_input.{:?}.tmp", std::thread::current().id()));
        std::fs::write(&tmp, text).expect("temp file");
        std::fs::rename(&tmp, &file).expect("temp file");
    }
    home
}

fn suite(file: &str) -> String {
    std::fs::read_to_string(root().join("tests/nexmark").join(file)).expect("suite file")
}

fn defines(extra: &[(&str, String)]) -> BTreeMap<String, String> {
    let mut d: BTreeMap<String, String> = [
        ("TPS", "10000000".to_string()),
        ("EVENTS_NUM", EVENTS.to_string()),
        ("PERSON_PROPORTION", "1".to_string()),
        ("AUCTION_PROPORTION", "3".to_string()),
        ("BID_PROPORTION", "46".to_string()),
        ("NEXMARK_TABLE", "datagen".to_string()),
        ("FLINK_HOME", side_input_home().display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        d.insert(k.to_string(), v.clone());
    }
    d
}

fn options(defines: BTreeMap<String, String>, workers: usize) -> PipelineOptions {
    PipelineOptions {
        file: "nexmark.sql".into(),
        workers: Some(workers),
        default_workers: workers,
        defines,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_queries_run_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    for q in QUERIES {
        // The suite's q20 file creates `discard_sink` but inserts into `nexmark_q20`
        // (it fails on Flink too); the oracle test below runs its query.
        if q == "q20" {
            continue;
        }
        let text = format!(
            "{}\n{}\n{}",
            suite("ddl_gen.sql"),
            suite("ddl_views.sql"),
            suite(&format!("{q}.sql"))
        );
        let pipeline = Pipeline::plan(&text, &options(defines(&[]), 2))
            .await
            .unwrap_or_else(|e| panic!("{q} does not plan: {e}"));
        let config = JobConfig {
            name: q.into(),
            dead_letter_path: dir.path().join("dl.jsonl"),
            ..Default::default()
        };
        let summary = Job::new(pipeline.graph, config)
            .unwrap()
            .run()
            .await
            .unwrap_or_else(|e| panic!("{q} fails: {e}"));
        assert_eq!(summary.rows_in, EVENTS, "{q}");
        assert_eq!(summary.dead_letters, 0, "{q}");
        if !MAY_BE_EMPTY.contains(&q) {
            assert!(summary.rows_out > 0, "{q} wrote nothing");
        }
    }
}

/// Asserts that the streaming answer `got` equals the batch answer `want` (as
/// multisets). With `ranked`, the last column is a ROW_NUMBER over prices (q19): equal
/// prices get their numbers in an unspecified order, so the rows without the number and
/// which price holds each number are compared separately.
fn compare(what: &str, ranked: bool, mut got: Vec<Vec<String>>, mut want: Vec<Vec<String>>) {
    if ranked {
        let split = |rows: &mut Vec<Vec<String>>| {
            let mut ranks: Vec<Vec<String>> = rows
                .iter()
                .map(|r| vec![r[0].clone(), r[2].clone(), r[7].clone()])
                .collect();
            ranks.sort();
            for r in rows.iter_mut() {
                r.truncate(7);
            }
            ranks
        };
        let (a, b) = (split(&mut got), split(&mut want));
        assert!(a == b, "{what}: ranks differ\n{}", difference(&a, &b));
    }
    got.sort();
    want.sort();
    assert!(
        got == want,
        "{what}: streaming ({} rows) and batch ({} rows) answers differ\n{}",
        got.len(),
        want.len(),
        difference(&got, &want)
    );
}

/// The first rows found only on one side (both sorted).
fn difference(got: &[Vec<String>], want: &[Vec<String>]) -> String {
    let mut only_got = Vec::new();
    let mut only_want = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < got.len() || j < want.len() {
        match (got.get(i), want.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                only_got.push(a);
                i += 1;
            }
            (Some(_), Some(b)) => {
                only_want.push(b);
                j += 1;
            }
            (Some(a), None) => {
                only_got.push(a);
                i += 1;
            }
            (None, Some(b)) => {
                only_want.push(b);
                j += 1;
            }
            (None, None) => break,
        }
    }
    format!(
        "{} rows only in the streaming answer, e.g. {:?}\n{} rows only in the batch answer, e.g. {:?}",
        only_got.len(),
        &only_got[..only_got.len().min(3)],
        only_want.len(),
        &only_want[..only_want.len().min(3)]
    )
}

/// The query file as a bare SELECT (its INSERT target removed), results captured.
fn as_select(q: &str) -> String {
    let body = suite(&format!("{q}.sql"));
    let insert = format!("INSERT INTO nexmark_{q}");
    body.replace(&insert, "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_queries_match_the_batch_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.json");
    let out = sluice(
        dir.path(),
        &[
            "gen",
            "nexmark",
            "--table",
            "all",
            "--events",
            &EVENTS.to_string(),
            "--base-time",
            "2024-01-01 00:00:00",
            "--rate",
            ORACLE_RATE,
            "--out",
            events.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let gen_ddl = suite("ddl_gen.sql").replace(
        "'bid.proportion' = '${BID_PROPORTION}'",
        "'bid.proportion' = '${BID_PROPORTION}', 'base-time' = '2024-01-01 00:00:00', \
         'rate.limited' = 'false'",
    );
    for q in QUERIES {
        if PROCESSING_TIME.contains(&q) {
            continue;
        }
        let select = as_select(q);
        let oracle_sql = format!(
            "{}\n{}\n{select}",
            suite("ddl_file.sql"),
            suite("ddl_views.sql")
        );
        let oracle_opts = options(defines(&[("EVENTS_FILE", events.display().to_string())]), 1);
        let want = sluice_testkit::format_batches(
            &batch_oracle(&oracle_sql, &oracle_opts)
                .await
                .unwrap_or_else(|e| panic!("{q} oracle: {e}")),
        );
        assert!(
            !want.is_empty() || MAY_BE_EMPTY.contains(&q),
            "{q}: the oracle found no rows"
        );
        // The same query streaming over the nexmark connector, and over the file.
        let over_connector = format!("{gen_ddl}\n{}\n{select}", suite("ddl_views.sql"));
        for (source, streaming_sql, extra) in [
            ("connector", over_connector, None),
            (
                "file",
                oracle_sql.clone(),
                Some(events.display().to_string()),
            ),
        ] {
            let captured = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let mut d = vec![("TPS", ORACLE_RATE.to_string())];
            if let Some(f) = extra {
                d.push(("EVENTS_FILE", f));
            }
            let mut opts = options(defines(&d), 2);
            opts.capture = Some(captured.clone());
            let pipeline = Pipeline::plan(&streaming_sql, &opts)
                .await
                .unwrap_or_else(|e| panic!("{q} over the {source}: {e}"));
            let config = JobConfig {
                name: q.into(),
                dead_letter_path: dir.path().join("dl.jsonl"),
                ..Default::default()
            };
            Job::new(pipeline.graph, config)
                .unwrap()
                .run()
                .await
                .unwrap_or_else(|e| panic!("{q} over the {source}: {e}"));
            let got = sluice_testkit::format_batches(&captured.lock().unwrap());
            compare(
                &format!("{q} over the {source}"),
                q == "q19",
                got,
                want.clone(),
            );
        }
    }
}

/// q12 (processing-time windows) counts every bid exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_time_windows_count_every_bid() {
    let dir = tempfile::tempdir().unwrap();
    let select = as_select("q12").replace("INSERT INTO discard_sink", "");
    let sql = format!(
        "{}\n{}\n{select}",
        suite("ddl_gen.sql"),
        suite("ddl_views.sql")
    );
    let captured = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut opts = options(defines(&[]), 2);
    opts.capture = Some(captured.clone());
    let pipeline = Pipeline::plan(&sql, &opts).await.unwrap();
    assert!(
        pipeline.explain(false).contains("WindowAggregate"),
        "{}",
        pipeline.explain(false)
    );
    let config = JobConfig {
        name: "q12".into(),
        dead_letter_path: dir.path().join("dl.jsonl"),
        ..Default::default()
    };
    Job::new(pipeline.graph, config)
        .unwrap()
        .run()
        .await
        .unwrap();
    let rows = sluice_testkit::format_batches(&captured.lock().unwrap());
    let counted: u64 = rows.iter().map(|r| r[1].parse::<u64>().unwrap()).sum();
    // 46 of every 50 events are bids.
    assert_eq!(counted, EVENTS / 50 * 46);
}
