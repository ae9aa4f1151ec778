//! The binary as a user runs it: exit codes, messages, outputs, dead letters.

use std::io::Write;
use std::process::Command;

use crate::{root, sluice, text};

fn write(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write test file");
    p
}

const BID_DDL: &str = "CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, \
    url VARCHAR, date_time TIMESTAMP(3), extra VARCHAR) WITH ('connector' = 'filesystem', \
    'path' = '__PATH__', 'format' = 'json');\n";

fn bid_ddl(path: &std::path::Path) -> String {
    BID_DDL.replace("__PATH__", &path.display().to_string())
}

#[test]
fn readme_example_runs_and_prints_rows() {
    let dir = tempfile::tempdir().unwrap();
    let example = root().join("examples").join("quickstart.sql");
    let out = sluice(dir.path(), &["run", example.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(
        stdout.lines().any(|l| l.contains("+I[")),
        "stdout: {stdout}"
    );
    assert!(stderr.contains("Finished"), "stderr: {stderr}");
}

#[test]
fn print_sink_shows_flink_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = root().join("tests/data/bids.json");
    let sql = bid_ddl(&data)
        + "CREATE TABLE out (auction BIGINT, price BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'print');\n\
           INSERT INTO out SELECT auction, price, date_time FROM bid WHERE bidder = 2000 AND price < 200;";
    let f = write(dir.path(), "p.sql", &sql);
    let out = sluice(
        dir.path(),
        &["run", "-q", "--workers", "1", f.to_str().unwrap()],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout.trim(),
        "+I[1123, 100, 2024-01-01 00:00:00.000]\n+I[1730, 112, 2024-01-01 12:24:24.444]"
    );
}

#[test]
fn bad_sql_exits_2_with_location_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "bad.sql",
        "CREATE TABLE t (a BIGINT) WITH ('connector' = 'print');\nINSERT INTO t\nSELEC a FROM t;\n",
    );
    let out = sluice(dir.path(), &["run", f.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.sql:3:1"), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn user_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "CREATE TABLE t (a BIGINT) WITH ('connector' = 'nope');",
            "unknown connector 'nope'",
        ),
        (
            "CREATE TABLE s (a BIGINT) WITH ('connector' = 'filesystem', 'path' = 'missing.json', 'format' = 'json');\n\
             CREATE TABLE t (a BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO t SELECT a FROM s;",
            "cannot read 'missing.json'",
        ),
        (
            "CREATE TABLE s (a STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '1');\n\
             CREATE TABLE t (a BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO t SELECT a FROM s;",
            "type mismatch",
        ),
        (
            "CREATE TABLE t (a BIGINT) WITH ('connector' = 'print');",
            "nothing to run",
        ),
    ];
    for (sql, expect) in cases {
        let f = write(dir.path(), "e.sql", sql);
        let out = sluice(dir.path(), &["run", f.to_str().unwrap()]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{sql}\n{stderr}");
        assert!(
            stderr.contains(expect),
            "{sql}\nexpected '{expect}' in: {stderr}"
        );
        assert!(stderr.contains("e.sql:"), "no location: {stderr}");
    }
    let out = sluice(dir.path(), &["run", "no-such-file.sql"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn explain_shows_tasks_parallelism_and_edges() {
    let dir = tempfile::tempdir().unwrap();
    let data = root().join("tests/data/bids.json");
    let sql = bid_ddl(&data)
        + "CREATE TABLE out (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');\n\
           CREATE TABLE keyed (auction BIGINT, price BIGINT, PRIMARY KEY (auction) NOT ENFORCED) WITH ('connector' = 'print', 'sink.parallelism' = '3');\n\
           INSERT INTO out SELECT auction, price FROM bid WHERE price > 10;\n\
           INSERT INTO keyed SELECT auction, price FROM bid;";
    let f = write(dir.path(), "x.sql", &sql);
    let out = sluice(
        dir.path(),
        &["explain", "--workers", "2", f.to_str().unwrap()],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for needle in [
        "parallelism 2",
        "Source: bid (filesystem, json)",
        "Filter",
        "FORWARD",
        "HASH[#0]",
        "parallelism 3",
        "Sink: out (blackhole)",
    ] {
        assert!(stdout.contains(needle), "missing '{needle}' in:\n{stdout}");
    }
}

#[test]
fn dead_letters_are_written_counted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data = root().join("tests/data/bad_bids.json");
    let sql = bid_ddl(&data)
        + "CREATE TABLE out (auction BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO out SELECT auction FROM bid;";
    let f = write(dir.path(), "d.sql", &sql);
    let out = sluice(dir.path(), &["run", f.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("3 rows in") && stderr.contains("5 dead letters"),
        "{stderr}"
    );
    let dl =
        std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).expect("dead letter file");
    let letters: Vec<serde_json::Value> = dl
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(letters.len(), 5);
    for l in &letters {
        assert_eq!(l["table"], "bid");
        assert!(
            l["source"]
                .as_str()
                .is_some_and(|s| s.ends_with("bad_bids.json"))
        );
        assert!(l["offset"].as_u64().is_some());
        assert!(l["reason"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(l.get("raw").is_some() || l.get("raw_base64").is_some());
    }
    assert!(
        letters.iter().any(|l| l.get("raw_base64").is_some()),
        "non-UTF-8 kept as base64"
    );
}

#[test]
fn hostile_files_reach_dead_letters_without_crashing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("hostile.json");
    {
        let mut f = std::fs::File::create(&input).unwrap();
        writeln!(f, "{{\"auction\": 1, \"price\": 2}}").unwrap();
        let huge = format!(
            "{{\"auction\": 2, \"extra\": \"{}\"}}",
            "x".repeat(10 << 20)
        );
        writeln!(f, "{huge}").unwrap();
        f.write_all(b"{\"auction\": 3, \"price\"").unwrap();
    }
    let sql = bid_ddl(&input)
        + "CREATE TABLE out (auction BIGINT) WITH ('connector' = 'print');\nINSERT INTO out SELECT auction FROM bid;";
    let f = write(dir.path(), "h.sql", &sql);
    let out = sluice(dir.path(), &["run", "--workers", "1", f.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "+I[1]");
    assert!(stderr.contains("2 dead letters"), "{stderr}");
    let dl = std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).unwrap();
    assert!(
        dl.contains("over the") && dl.contains("\"truncated\":true"),
        "{}",
        &dl[..dl.len().min(300)]
    );
}

#[test]
fn worker_count_does_not_change_results() {
    let dir = tempfile::tempdir().unwrap();
    let data = root().join("tests/data/bids.json");
    let mut outputs = Vec::new();
    for w in ["1", "3"] {
        let sql = bid_ddl(&data)
            + "CREATE TABLE out (auction BIGINT, channel STRING) WITH ('connector' = 'print');\n\
               INSERT INTO out SELECT auction, upper(channel) FROM bid WHERE price > 1000;";
        let f = write(dir.path(), "w.sql", &sql);
        let out = sluice(
            dir.path(),
            &["run", "-q", "--workers", w, f.to_str().unwrap()],
        );
        assert!(out.status.success());
        let mut rows: Vec<String> = text(&out)
            .0
            .lines()
            .map(|l| l.split_once("> ").map(|(_, r)| r).unwrap_or(l).to_string())
            .collect();
        rows.sort();
        outputs.push(rows);
    }
    assert!(!outputs[0].is_empty());
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn gen_nexmark_writes_bids_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = sluice(
        dir.path(),
        &["gen", "nexmark", "--events", "1000", "--out", "bids.json"],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let body = std::fs::read_to_string(dir.path().join("bids.json")).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert!(lines.len() > 800 && lines.len() <= 1000, "{}", lines.len());
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    for k in [
        "auction",
        "bidder",
        "price",
        "channel",
        "url",
        "date_time",
        "extra",
    ] {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
}

/// A slow sink slows the source (bounded channels): after a few seconds against a
/// throttled sink, the source has read only what the sink took plus what fits in the
/// channels, not the millions it could generate. Ctrl-C then stops it cleanly.
#[cfg(unix)]
#[test]
fn backpressure_bounds_the_source_and_ctrl_c_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "CREATE TABLE gen (id BIGINT, payload STRING) WITH ('connector' = 'datagen', \
               'rows-per-second' = '100000000', 'fields.payload.length' = '100');\n\
               CREATE TABLE slow (id BIGINT, payload STRING) WITH ('connector' = 'blackhole', \
               'sink.throttle.rows-per-second' = '20000');\n\
               INSERT INTO slow SELECT id, payload FROM gen;";
    let f = write(dir.path(), "bp.sql", sql);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "--workers", "2", f.to_str().unwrap()])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Stopped"), "{stderr}");
    // "Stopped in 3.02s: 61440 rows in (…), 57344 rows out, 0 dead letters."
    let rows_in = stderr
        .split(" rows in")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    let rows_out = stderr
        .split(" rows out")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    // ~20,000 rows/s for ~3 s; the channels and batches in flight hold at most a few
    // batches of 8,192 rows per subtask.
    assert!(
        rows_out <= 100_000,
        "sink took {rows_out}: not throttled?\n{stderr}"
    );
    assert!(
        rows_in - rows_out <= 16 * 8192,
        "source ran ahead by {}: no backpressure\n{stderr}",
        rows_in - rows_out
    );
}

#[test]
fn readme_tour_pipeline_runs() {
    let out = sluice(
        &root(),
        &["run", "-q", "--workers", "1", "examples/tour.sql"],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("+I["), "{stdout}");
}

/// The IoT example alerts on exactly the anomalies injected into its data: sensor-2
/// twice, sensor-4 and sensor-5 once; the two healthy sensors never.
#[test]
fn iot_anomalies_example_alerts_on_the_injected_anomalies() {
    let out = sluice(
        &root(),
        &["run", "-q", "--workers", "2", "examples/iot_anomalies.sql"],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let alerts: Vec<&str> = stdout.lines().filter(|l| l.contains("+I[")).collect();
    let sensor = |l: &str| {
        l.split("+I[")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap_or("")
            .to_string()
    };
    let mut sensors: Vec<String> = alerts.iter().map(|l| sensor(l)).collect();
    sensors.sort();
    assert_eq!(
        sensors,
        ["sensor-2", "sensor-2", "sensor-4", "sensor-5"],
        "{stdout}"
    );
    for (sensor, window_end) in [
        ("sensor-2", "10:06:15.000"),
        ("sensor-2", "10:06:30.000"),
        ("sensor-4", "10:13:45.000"),
        ("sensor-5", "10:17:45.000"),
    ] {
        assert!(
            alerts
                .iter()
                .any(|l| l.contains(&format!("+I[{sensor}, 2024-03-01 {window_end}"))),
            "no alert for {sensor} at {window_end}:\n{stdout}"
        );
    }
}

/// On a terminal, a progress line (rows in/out, rate) is refreshed on stderr; piped, it
/// is silent (the other tests check stderr holds only the summary).
#[cfg(unix)]
#[test]
fn progress_line_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "CREATE TABLE gen (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '30000');\n\
               CREATE TABLE slow (id BIGINT) WITH ('connector' = 'blackhole', 'sink.throttle.rows-per-second' = '20000');\n\
               INSERT INTO slow SELECT id FROM gen;";
    let f = write(dir.path(), "p.sql", sql);
    // `script` runs the command under a pseudo-terminal.
    let cmd = format!(
        "{} run --workers 1 {}",
        env!("CARGO_BIN_EXE_sluice"),
        f.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(dir.path())
        .output()
        .expect("`script` (util-linux) is installed");
    let all = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("dead letters 0") && all.contains("/s)"),
        "no progress line in: {all}"
    );
    assert!(all.contains("Finished"), "{all}");
}

/// Regression: a fully chained, never-waiting pipeline (unthrottled generator into a
/// blackhole) starved the runtime, so Ctrl-C was never seen.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_busy_unbounded_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let sql = "CREATE TABLE gen (id BIGINT, s STRING) WITH ('connector' = 'datagen', 'rows-per-second' = '1000000000');\n\
               CREATE TABLE bh (id BIGINT, s STRING) WITH ('connector' = 'blackhole');\n\
               INSERT INTO bh SELECT id, s FROM gen;";
    let f = write(dir.path(), "busy.sql", sql);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "--workers", "2", f.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Stopped in"), "{stderr}");
}

/// A source split without data stops holding the watermark back after
/// 'scan.watermark.idle-timeout': with two workers and one file, the second reader is
/// idle, and windows still fire while the (unbounded, monitoring) pipeline runs.
#[cfg(unix)]
#[test]
fn an_idle_split_does_not_hold_back_windows() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(
        input.join("a.csv"),
        "ts,v\n2024-03-01 10:00:00,1\n2024-03-01 10:01:00,2\n2024-03-01 10:20:00,3\n",
    )
    .unwrap();
    let sql = format!(
        "CREATE TABLE ev (ts TIMESTAMP(3), v INT, WATERMARK FOR ts AS ts - INTERVAL '1' MINUTE)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv',
               'source.monitor-interval' = '1 s', 'scan.watermark.idle-timeout' = '200 ms');
         CREATE TABLE out (window_start TIMESTAMP(3), n BIGINT) WITH ('connector' = 'print');
         INSERT INTO out SELECT window_start, COUNT(*)
         FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '5' MINUTE))
         GROUP BY window_start, window_end;",
        input.display()
    );
    let f = write(dir.path(), "idle.sql", &sql);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "--workers", "2", f.to_str().unwrap()])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx.recv_timeout(std::time::Duration::from_secs(20));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let line = line.expect("the 10:00 window fired while the pipeline was running");
    assert!(line.contains("+I[2024-03-01 10:00:00.000, 2]"), "{line}");
}

/// A sink table with PRIMARY KEY gets upsert semantics: the updating query's `-U` rows
/// are gone, each key's last row is its current result, and a key whose rows are all
/// taken back is deleted. Without a key the same query prints the full changelog.
#[test]
fn keyed_sinks_get_upserts() {
    let dir = tempfile::tempdir().unwrap();
    // Several files read in order by one worker, so the aggregate updates keys across
    // batches.
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for (i, rows) in ["a,1\nb,2\n", "a,3\nc,4\n", "a,5\nb,6\n"]
        .iter()
        .enumerate()
    {
        std::fs::write(input.join(format!("part-{i}.csv")), rows).unwrap();
    }
    let query = |key: &str| {
        format!(
            "CREATE TABLE ev (k STRING, v INT) WITH ('connector' = 'filesystem', 'path' = '{}', \
             'format' = 'csv');
             CREATE TABLE out (k STRING, n BIGINT, total INT{key}) WITH ('connector' = 'print');
             INSERT INTO out SELECT k, COUNT(*), SUM(v) FROM ev GROUP BY k;",
            input.display()
        )
    };
    let run = |name: &str, sql: &str| {
        let f = write(dir.path(), name, sql);
        let out = sluice(dir.path(), &["run", "--workers", "1", f.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        stdout.lines().map(str::to_string).collect::<Vec<_>>()
    };
    let plain = run("plain.sql", &query(""));
    assert!(plain.iter().any(|l| l.starts_with("-U[")), "{plain:?}");
    let keyed = run("keyed.sql", &query(", PRIMARY KEY (k) NOT ENFORCED"));
    assert!(!keyed.iter().any(|l| l.starts_with("-U[")), "{keyed:?}");
    // Each key: first +I, then +U rows; the last row per key is the final result.
    let last = |k: &str| {
        keyed
            .iter()
            .rfind(|l| l.contains(&format!("[{k},")))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(last("a"), "+U[a, 3, 9]", "{keyed:?}");
    assert_eq!(last("b"), "+U[b, 2, 8]", "{keyed:?}");
    assert_eq!(last("c"), "+I[c, 1, 4]", "{keyed:?}");
    let explain = sluice(
        dir.path(),
        &["explain", dir.path().join("keyed.sql").to_str().unwrap()],
    );
    let (plan, _) = text(&explain);
    assert!(
        plan.contains("UpsertMaterializer: upsert by PRIMARY KEY (k)"),
        "{plan}"
    );
}

/// `${ENV}` and `${file:…}` fill any option; what they hold never shows in errors,
/// logs or `explain`.
#[test]
fn secrets_from_the_environment_and_files_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("db.txt"), "sekrit_db_4711\n").unwrap();
    let sql = "CREATE TABLE src (k STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '5');
         CREATE TABLE dst (k STRING) WITH ('connector' = 'jdbc',
           'url' = 'jdbc:postgresql://127.0.0.1:5432/${file:db.txt}', 'table-name' = 't',
           'username' = 'postgres', 'password' = '${PG_SECRET_PW}');
         INSERT INTO dst SELECT k FROM src;";
    let f = write(dir.path(), "s.sql", sql);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .current_dir(dir.path())
            .env("SLUICE_LOG", "debug")
            .env("PG_SECRET_PW", "pw-hunter2-0815")
            .output()
            .expect("runs")
    };
    let out = run(&["run", f.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("***"), "{stderr}");
    for secret in ["sekrit_db_4711", "pw-hunter2-0815"] {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "{secret} in {stderr}"
        );
    }
    let out = run(&["explain", f.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(!stdout.contains("sekrit_db_4711") && !stderr.contains("sekrit_db_4711"));
    // A bad value from the environment is reported without the value.
    let sql = "CREATE TABLE src (k STRING) WITH ('connector' = 'kafka', 'topic' = 't',
           'properties.bootstrap.servers' = '127.0.0.1:9092', 'format' = 'json',
           'scan.startup.mode' = '${PG_SECRET_PW}');
         SELECT k FROM src;";
    let f = write(dir.path(), "m.sql", sql);
    let out = run(&["run", f.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("'***' is not one of"), "{stderr}");
    assert!(!stderr.contains("pw-hunter2-0815"), "{stderr}");
    let f = write(
        dir.path(),
        "u.sql",
        "CREATE TABLE src (k STRING) WITH ('connector' = 'datagen', 'x' = '${file:missing.txt}');
         SELECT k FROM src;",
    );
    let out = run(&["run", f.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("${file:missing.txt}, which cannot be read"),
        "{stderr}"
    );
}
