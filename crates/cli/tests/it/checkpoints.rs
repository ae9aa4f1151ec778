//! Checkpoints and exactly-once recovery, as a user meets them: `sluice run` killed with
//! SIGKILL at random moments and started again (on varying worker counts) writes
//! exactly what an uninterrupted run writes; a damaged newest checkpoint is skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::text;

const BASE: i64 = 1_709_287_200; // 2024-03-01 10:00:00 UTC

/// `ms` since the epoch as `YYYY-MM-DD HH:MM:SS.fff` (within March 2024).
fn ts(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let day = secs.div_euclid(86_400) - 19_783;
    assert!((0..31).contains(&day), "{ms}");
    let rem = secs.rem_euclid(86_400);
    format!(
        "2024-03-{:02} {:02}:{:02}:{:02}.{:03}",
        day + 1,
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// Events (`ev`, 10 per second, in 16 groups `g`) and payments (`pay`, 1 per second,
/// each matching exactly one event by `k`) in time-ordered files, as CSV.
fn write_inputs(dir: &Path, events: i64) -> (PathBuf, PathBuf) {
    let ev = dir.join("ev");
    let pay = dir.join("pay");
    std::fs::create_dir_all(&ev).expect("works in a temp dir");
    std::fs::create_dir_all(&pay).expect("works in a temp dir");
    let per_file = 20_000;
    for f in 0..(events + per_file - 1) / per_file {
        let mut text = String::from("ts,g,k,v\n");
        for i in f * per_file..((f + 1) * per_file).min(events) {
            let t = ts(BASE * 1000 + i * 100);
            let (g, k, v) = ((i * 7) % 16, i % 50_000, (i * 13) % 101);
            text.push_str(&format!("{t},g{g},{k},{v}\n"));
        }
        std::fs::write(ev.join(format!("ev-{f:03}.csv")), text).expect("works in a temp dir");
    }
    let payments = events / 10;
    let per_file = 5_000;
    for f in 0..(payments + per_file - 1) / per_file {
        let mut text = String::from("ts,k,amount\n");
        for j in f * per_file..((f + 1) * per_file).min(payments) {
            let t = ts(BASE * 1000 + j * 1000 + 300);
            text.push_str(&format!("{t},{},{}\n", (10 * j) % 50_000, j % 50));
        }
        std::fs::write(pay.join(format!("pay-{f:03}.csv")), text).expect("works in a temp dir");
    }
    (ev, pay)
}

/// A windowed aggregate and an interval join, both into filesystem tables.
fn pipeline(dir: &Path, ev: &Path, pay: &Path, out: &str) -> PathBuf {
    let sql = format!(
        "CREATE TABLE ev (ts TIMESTAMP(3), g STRING, k INT, v INT,
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
         WITH ('connector' = 'filesystem', 'path' = '{ev}', 'format' = 'csv');
         CREATE TABLE pay (ts TIMESTAMP(3), k INT, amount INT,
           WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
         WITH ('connector' = 'filesystem', 'path' = '{pay}', 'format' = 'csv');
         CREATE TABLE per_minute (g STRING, window_start TIMESTAMP(3), n BIGINT, total BIGINT)
         WITH ('connector' = 'filesystem', 'path' = '{out}/per_minute', 'format' = 'json');
         CREATE TABLE matched (ts TIMESTAMP(3), k INT, v INT, amount INT)
         WITH ('connector' = 'filesystem', 'path' = '{out}/matched', 'format' = 'json');
         INSERT INTO per_minute
         SELECT g, window_start, COUNT(*), SUM(v)
         FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
         GROUP BY g, window_start, window_end;
         INSERT INTO matched
         SELECT e.ts, e.k, e.v, p.amount FROM ev AS e JOIN pay AS p
         ON e.k = p.k AND p.ts BETWEEN e.ts - INTERVAL '3' SECOND AND e.ts + INTERVAL '3' SECOND;",
        ev = ev.display(),
        pay = pay.display(),
        out = dir.join(out).display(),
    );
    let file = dir.join(format!("{out}.sql"));
    std::fs::write(&file, sql).expect("works in a temp dir");
    file
}

/// Every visible output line of every table under `dir/out`, sorted.
fn output(dir: &Path, out: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for table in ["per_minute", "matched"] {
        let Ok(entries) = std::fs::read_dir(dir.join(out).join(table)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).expect("works in a temp dir");
            lines.extend(text.lines().map(|l| format!("{table} {l}")));
        }
    }
    lines.sort();
    lines
}

fn start(dir: &Path, sql: &Path, args: &[&str], log: &str) -> Child {
    start_with(dir, sql, args, log, &[])
}

/// `sluice run --quiet SQL ARGS` with the environment `env`; checkpoints go to `chk`
/// unless `args` say where.
fn start_with(dir: &Path, sql: &Path, args: &[&str], log: &str, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("run").arg(sql).arg("--quiet");
    if !args.contains(&"--checkpoint-dir") {
        cmd.args(["--checkpoint-dir", "chk"]);
    }
    cmd.args(args)
        .current_dir(dir)
        .env("SLUICE_LOG", log)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sluice binary starts")
}

/// Waits for a run to end by itself (at most 15 minutes: the 100-kill chaos run's last
/// one is long in a debug build), reading its stderr meanwhile, and checks it succeeded.
fn finish(child: Child) -> String {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(Duration::from_secs(900)) else {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        panic!("the run did not finish");
    };
    let out = out.expect("waits");
    let (_, err) = text(&out);
    assert!(out.status.success(), "the run failed: {err}");
    err
}

/// The answer of an uninterrupted run without checkpoints.
fn reference(dir: &Path, ev: &Path, pay: &Path) -> Vec<String> {
    let sql = pipeline(dir, ev, pay, "reference");
    let out = crate::sluice(dir, &["run", "-q", "-w", "2", &sql.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out).1);
    let lines = output(dir, "reference");
    assert!(lines.len() > 10_000, "{} lines", lines.len());
    lines
}

/// Kills `sluice run` with SIGKILL at random moments (at least `kills` times), each
/// restart on 1, 2 or 3 workers in turn, then lets it finish: the output equals the
/// uninterrupted run's, with no line lost or repeated.
pub(crate) fn chaos(kills: usize, events: i64, seed: u64) {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let (ev, pay) = write_inputs(dir.path(), events);
    let want = reference(dir.path(), &ev, &pay);
    let sql = pipeline(dir.path(), &ev, &pay, "chaos");
    let mut rng = SmallRng::seed_from_u64(seed);
    let workers = ["2", "3", "1"];
    let mut killed = 0;
    let mut runs = 0;
    while killed < kills {
        let w = workers[runs % workers.len()];
        runs += 1;
        let mut child = start(
            dir.path(),
            &sql,
            &["-w", w, "--checkpoint-interval", "100ms"],
            "error",
        );
        // Some kills land during start-up or restore, most after a checkpoint or two.
        let wait = Duration::from_millis(rng.random_range(100..1200));
        std::thread::sleep(wait);
        if child.try_wait().expect("polls").is_some() {
            let out = child.wait_with_output().expect("waits");
            panic!(
                "the run ended before kill {} (make the input bigger): {}",
                killed + 1,
                text(&out).1
            );
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        killed += 1;
    }
    let err = finish(start(
        dir.path(),
        &sql,
        &["-w", "2", "--checkpoint-interval", "100ms"],
        "error",
    ));
    let got = output(dir.path(), "chaos");
    if got != want {
        let missing = want.iter().filter(|l| !got.contains(l)).count();
        panic!(
            "after {killed} kills: {} lines, want {} ({missing} of them missing). {err}",
            got.len(),
            want.len()
        );
    }
    // No hidden in-progress file is left behind either.
    for table in ["per_minute", "matched"] {
        let hidden: Vec<_> = std::fs::read_dir(dir.path().join("chaos").join(table))
            .expect("works in a temp dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(hidden.is_empty(), "left behind: {hidden:?}");
    }
}

#[test]
fn sigkill_at_random_moments_loses_and_repeats_nothing() {
    let kills = std::env::var("SLUICE_CHAOS_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(10);
    // Enough input that ten runs killed within 1.2 s each do not reach its end.
    chaos(kills, 2_000_000.max(kills as i64 * 150_000), 11);
}

/// The names of the complete checkpoints in `chk`, oldest first.
fn complete_checkpoints(chk: &Path) -> Vec<PathBuf> {
    let mut c: Vec<PathBuf> = std::fs::read_dir(chk)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    c.retain(|p| p.join("_manifest.json").exists());
    c.sort();
    c
}

/// Starts a run and kills it with SIGKILL once a checkpoint newer than those in `chk`
/// is complete.
fn kill_after_a_new_checkpoint(dir: &Path, sql: &Path, workers: &str) {
    let chk = dir.join("chk");
    let before = complete_checkpoints(&chk).pop();
    let mut child = start(
        dir,
        sql,
        &["-w", workers, "--checkpoint-interval", "50ms"],
        "error",
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while complete_checkpoints(&chk).pop() <= before {
        assert!(Instant::now() < deadline, "no checkpoint was taken");
        assert!(
            child.try_wait().expect("polls").is_none(),
            "the run ended too soon"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
}

/// A checkpoint taken on 2 workers restores onto 3, and that one's onto 1: the output
/// is the uninterrupted run's.
#[test]
fn restoring_onto_other_worker_counts_gives_the_same_output() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (ev, pay) = write_inputs(dir.path(), 1_000_000);
    let want = reference(dir.path(), &ev, &pay);
    let sql = pipeline(dir.path(), &ev, &pay, "rescaled");
    kill_after_a_new_checkpoint(dir.path(), &sql, "2");
    kill_after_a_new_checkpoint(dir.path(), &sql, "3");
    let err = finish(start(dir.path(), &sql, &["-w", "1"], "info"));
    assert!(err.contains("Resuming from checkpoint"), "{err}");
    assert_eq!(output(dir.path(), "rescaled"), want);
}

/// Damage the newest checkpoint: the run warns and resumes from the one before, undoes
/// what the damaged one had committed, and the output is exact.
#[test]
fn a_damaged_newest_checkpoint_is_skipped_for_the_one_before() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let (ev, pay) = write_inputs(dir.path(), 1_000_000);
    let want = reference(dir.path(), &ev, &pay);
    let sql = pipeline(dir.path(), &ev, &pay, "damaged");
    let mut child = start(
        dir.path(),
        &sql,
        &["-w", "2", "--checkpoint-interval", "50ms"],
        "error",
    );
    let chk = dir.path().join("chk");
    let deadline = Instant::now() + Duration::from_secs(60);
    while complete_checkpoints(&chk).len() < 3 {
        assert!(Instant::now() < deadline, "no checkpoints were taken");
        assert!(
            child.try_wait().expect("works in a temp dir").is_none(),
            "the run ended too soon"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("works in a temp dir");
    child.wait().expect("works in a temp dir");
    let newest = complete_checkpoints(&chk)
        .pop()
        .expect("works in a temp dir");
    let id: u64 = newest
        .file_name()
        .expect("works in a temp dir")
        .to_string_lossy()[4..]
        .parse()
        .expect("works in a temp dir");
    // The window aggregate and the interval join checkpoint incrementally: damage a
    // file of changes that only the newest checkpoint lists.
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(newest.join("_manifest.json")).expect("works in a temp dir"),
    )
    .expect("the manifest parses");
    let own = format!("-c{id:020}.arrow");
    let files = manifest["files"].as_object().expect("a file list");
    let shared: Vec<&String> = files.keys().filter(|n| n.starts_with("shared/")).collect();
    assert!(
        !shared.is_empty(),
        "incremental chains are listed: {:?}",
        files.keys()
    );
    let state = chk.join(
        shared
            .iter()
            .find(|n| n.ends_with(&own))
            .expect("a file of the newest checkpoint's changes"),
    );
    let mut bytes = std::fs::read(&state).expect("works in a temp dir");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&state, bytes).expect("works in a temp dir");

    let err = finish(start(dir.path(), &sql, &["-w", "2"], "warn"));
    assert!(
        err.contains(&format!("checkpoint {id} skipped"))
            && err.contains("does not match its manifest")
            && err.contains("resuming from an older checkpoint"),
        "{err}"
    );
    // What only the skipped checkpoint had committed was removed and written again:
    // the output is exact.
    assert_eq!(output(dir.path(), "damaged"), want);
}

/// State that no longer fits the SQL is refused with a clear message; `--fresh`
/// starts over.
#[test]
fn a_changed_pipeline_is_refused_and_fresh_starts_over() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let (ev, pay) = write_inputs(dir.path(), 20_000);
    let sql = pipeline(dir.path(), &ev, &pay, "first");
    finish(start(dir.path(), &sql, &["-w", "2"], "error"));
    let changed = dir.path().join("changed.sql");
    // The same pipeline without the join: its state has nowhere to go.
    let full = std::fs::read_to_string(&sql).expect("works in a temp dir");
    let text_sql = &full[..full
        .find("INSERT INTO matched")
        .expect("works in a temp dir")];
    std::fs::write(&changed, text_sql).expect("works in a temp dir");
    let out = crate::sluice(
        dir.path(),
        &[
            "run",
            "-q",
            "--checkpoint-dir",
            "chk",
            &changed.display().to_string(),
        ],
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("does not fit this pipeline") && err.contains("--fresh"),
        "{err}"
    );
    let out = crate::sluice(
        dir.path(),
        &[
            "run",
            "-q",
            "--fresh",
            "--checkpoint-dir",
            "chk",
            &changed.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out).1);
}

/// Ctrl-C on a checkpointed, unbounded pipeline takes a savepoint and exits 0; the next
/// run resumes from it (the checkpoint interval comes from SET this time), and every
/// window is written exactly once across the two runs.
#[cfg(unix)]
#[test]
fn ctrl_c_takes_a_savepoint_and_the_next_run_resumes_from_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).expect("works in a temp dir");
    let minutes = |from: i64, to: i64| {
        let mut text = String::from("ts,v\n");
        for m in from..to {
            text.push_str(&format!("{},{m}\n", ts((BASE + m * 60) * 1000)));
        }
        text
    };
    std::fs::write(input.join("a.csv"), minutes(0, 30)).expect("works in a temp dir");
    let sql = format!(
        "SET 'execution.checkpointing.interval' = '100 ms';
         CREATE TABLE ev (ts TIMESTAMP(3), v INT, WATERMARK FOR ts AS ts - INTERVAL '1' MINUTE)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv',
               'source.monitor-interval' = '100 ms', 'scan.watermark.idle-timeout' = '200 ms');
         CREATE TABLE out (window_start TIMESTAMP(3), n BIGINT, total BIGINT)
         WITH ('connector' = 'filesystem', 'path' = 'out', 'format' = 'json');
         INSERT INTO out SELECT window_start, COUNT(*), SUM(v)
         FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '10' MINUTE))
         GROUP BY window_start, window_end;",
        input.display()
    );
    let file = dir.path().join("savepoint.sql");
    std::fs::write(&file, sql).expect("works in a temp dir");
    let visible = |dir: &Path| -> Vec<String> {
        let mut lines: Vec<String> = std::fs::read_dir(dir.join("out"))
            .map(|d| d.flatten().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .flat_map(|e| {
                std::fs::read_to_string(e.path())
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        lines.sort();
        lines
    };
    let run_until = |want: usize| {
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["run", "-w", "2", "--checkpoint-dir", "chk"])
            .arg(&file)
            .current_dir(dir.path())
            .env("SLUICE_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while visible(dir.path()).len() < want {
            assert!(
                Instant::now() < deadline,
                "{want} windows never became visible"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let out = child.wait_with_output().expect("waits");
        let (_, err) = text(&out);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("Stopped with savepoint"), "{err}");
        err
    };
    // Windows 10:00 and 10:10 fire (10:20 waits for later rows).
    run_until(2);
    std::fs::write(input.join("b.csv"), minutes(30, 60)).expect("works in a temp dir");
    let err = run_until(5);
    assert!(err.contains("Resumed from checkpoint"), "{err}");
    let got = visible(dir.path());
    let starts: Vec<&str> = got
        .iter()
        .map(|l| &l[l.find("window_start").unwrap_or(0)..][..40])
        .collect();
    assert_eq!(got.len(), 5, "{got:?}");
    for (i, s) in starts.iter().enumerate() {
        assert!(s.contains(&format!("10:{}0:00", i)), "{got:?}");
    }
    assert!(got.iter().all(|l| l.contains("\"n\":10")), "{got:?}");
}

/// A moto S3 server (`pip install 'moto[server]'`, which scripts/test.sh does) on a
/// free loopback port, stopped when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s3_server(bucket: &str) -> S3Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server runs: scripts/test.sh installs it (pip install 'moto[server]')");
    let server = S3Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let created = crate::http_request(&server.endpoint, "PUT", &format!("/{bucket}"));
    assert!(created.starts_with("HTTP/1.1 200"), "{created}");
    server
}

/// Checkpoints in S3-compatible storage (configured through the standard AWS_*
/// variables): a killed run resumes from there, and the output is exact.
#[test]
fn checkpoints_go_to_s3_compatible_storage() {
    let s3 = s3_server("sluice");
    let env = [
        ("AWS_ENDPOINT_URL", s3.endpoint.clone()),
        ("AWS_ALLOW_HTTP", "true".to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ];
    let dir = tempfile::tempdir().expect("a temp dir");
    let (ev, pay) = write_inputs(dir.path(), 1_000_000);
    let want = reference(dir.path(), &ev, &pay);
    let sql = pipeline(dir.path(), &ev, &pay, "s3");
    let args = [
        "-w",
        "2",
        "--checkpoint-interval",
        "100ms",
        "--checkpoint-dir",
        "s3://sluice/jobs/s3",
    ];
    let mut child = start_with(dir.path(), &sql, &args, "error", &env);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !crate::http_request(&s3.endpoint, "GET", "/sluice?list-type=2&prefix=jobs/s3/")
        .contains("_manifest.json")
    {
        assert!(Instant::now() < deadline, "no checkpoint reached S3");
        assert!(
            child.try_wait().expect("polls").is_none(),
            "the run ended too soon"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let err = finish(start_with(dir.path(), &sql, &args, "info", &env));
    assert!(
        err.contains("Resuming from checkpoint") && err.contains("s3://sluice/jobs/s3"),
        "{err}"
    );
    assert_eq!(output(dir.path(), "s3"), want);
}

/// Bad checkpoint and restart settings are user errors that say what to write.
#[test]
fn bad_checkpoint_settings_are_refused_clearly() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sql = |set: &str| {
        let file = dir.path().join(format!("bad-{}.sql", set.len()));
        std::fs::write(
            &file,
            format!(
                "{set}
                 CREATE TABLE t (x INT) WITH ('connector' = 'datagen', 'number-of-rows' = '5');
                 CREATE TABLE o (x INT) WITH ('connector' = 'blackhole');
                 INSERT INTO o SELECT x FROM t;"
            ),
        )
        .expect("works in a temp dir");
        file.display().to_string()
    };
    let cases = [
        (
            sql("SET 'restart-strategy.type' = 'sometimes';"),
            vec!["--checkpoint-dir", "chk"],
            "expected none, fixed-delay or exponential-delay",
        ),
        (
            sql("SET 'execution.checkpointing.interval' = 'soon';"),
            vec!["--checkpoint-dir", "chk"],
            "SET 'execution.checkpointing.interval' = 'soon'",
        ),
        (
            sql(""),
            vec!["--checkpoint-dir", "chk", "--checkpoint-interval", "0s"],
            "must be above zero",
        ),
        (sql(""), vec!["--fresh"], "no checkpoint directory is set"),
        (
            sql(""),
            vec!["--checkpoint-dir", "gs://bucket/x"],
            "a local directory or to s3://bucket/prefix",
        ),
    ];
    for (file, args, want) in cases {
        let mut all = vec!["run", "-q"];
        all.extend(args.iter().copied());
        all.push(&file);
        let out = crate::sluice(dir.path(), &all);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// Parquet through the filesystem connector: a job writes part files (exactly-once,
/// with checkpoints, rolled at each one), a second job reads them back (SIGKILLed and
/// resumed from its checkpoints, which record the rows read of the file being read)
/// and aggregates; the result equals the aggregate of the input.
#[test]
fn parquet_files_are_written_and_read_back_across_kills() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let mut csv = String::new();
    let mut want: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
    for i in 0..60_000i64 {
        let k = format!("k{}", (i * 31) % 97);
        let v = i % 1000;
        csv.push_str(&format!("{k},{v},{}.5\n", i % 7));
        let e = want.entry(k).or_default();
        e.0 += 1;
        e.1 += v;
    }
    std::fs::write(dir.path().join("in.csv"), csv).expect("works in a temp dir");
    let write = dir.path().join("write.sql");
    std::fs::write(
        &write,
        "CREATE TABLE src (k STRING, v BIGINT, x DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = 'in.csv', 'format' = 'csv');
         CREATE TABLE pq (k STRING, v BIGINT, x DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = 'pq', 'format' = 'parquet',
                 'parquet.compression' = 'zstd');
         INSERT INTO pq SELECT * FROM src;",
    )
    .expect("works in a temp dir");
    let out = crate::sluice(
        dir.path(),
        &[
            "run",
            "-w",
            "2",
            "--checkpoint-dir",
            "chk-w",
            "--checkpoint-interval",
            "50ms",
            write.to_str().expect("utf-8"),
        ],
    );
    assert!(out.status.success(), "{}", crate::text(&out).1);
    let parts: Vec<_> = std::fs::read_dir(dir.path().join("pq"))
        .expect("the sink made the directory")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
        .collect();
    assert!(!parts.is_empty());
    let pg = format!("pq_agg_{}", std::process::id());
    crate::jdbc::psql(&format!(
        "DROP TABLE IF EXISTS {pg}; CREATE TABLE {pg} (k text PRIMARY KEY, n bigint, total bigint)"
    ));
    let read = dir.path().join("read.sql");
    std::fs::write(
        &read,
        format!(
            "CREATE TABLE pq (v BIGINT, k STRING)
               WITH ('connector' = 'filesystem', 'path' = 'pq', 'format' = 'parquet',
                     'source.batch-size' = '500');
             CREATE TABLE agg (k STRING, n BIGINT, total BIGINT, PRIMARY KEY (k) NOT ENFORCED)
               WITH ('connector' = 'jdbc', 'url' = 'jdbc:postgresql://127.0.0.1:5432/test',
                     'table-name' = '{pg}', 'username' = 'postgres');
             INSERT INTO agg SELECT k, COUNT(*), SUM(v) FROM pq GROUP BY k;"
        ),
    )
    .expect("works in a temp dir");
    for wait in [150, 300] {
        crate::run_then_kill(dir.path(), &read, "2", "20ms", wait);
    }
    let out = crate::sluice(
        dir.path(),
        &[
            "run",
            "-w",
            "2",
            "--checkpoint-dir",
            "chk",
            "--checkpoint-interval",
            "20ms",
            read.to_str().expect("utf-8"),
        ],
    );
    assert!(out.status.success(), "{}", crate::text(&out).1);
    let got = crate::jdbc::psql(&format!("SELECT k, n, total FROM {pg}"));
    let got: std::collections::BTreeMap<String, (i64, i64)> = got
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (
                f[0].to_string(),
                (f[1].parse().expect("n"), f[2].parse().expect("total")),
            )
        })
        .collect();
    assert_eq!(got, want);
    crate::jdbc::psql(&format!("DROP TABLE {pg}"));
}
