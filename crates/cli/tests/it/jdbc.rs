//! The `jdbc` sink against the PostgreSQL on 127.0.0.1:5432 (`scripts/test.sh` starts
//! one if none runs): upserts from an updating aggregate with deletes, every type,
//! exactly-once across SIGKILL, and the errors a user meets. Tables are named after the
//! test and the process, so runs do not collide.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::text;

const URL: &str = "jdbc:postgresql://127.0.0.1:5432/test";

/// Runs `sql` with `psql` in the test database; rows as `a|b|c` lines.
pub(crate) fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-Atq",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-c", sql])
        .output()
        .expect("psql runs (scripts/test.sh installs PostgreSQL)");
    assert!(out.status.success(), "{sql}: {}", text(&out).1);
    text(&out).0
}

/// Rows as lines, sorted bytewise (the server's collation sorts otherwise).
fn lines(s: &str) -> Vec<String> {
    let mut l: Vec<String> = s.lines().map(str::to_string).collect();
    l.sort();
    l
}

/// A table name unique to this test process.
fn name(base: &str) -> String {
    format!("{base}_{}", std::process::id())
}

/// `k,v` rows: keys `k0`..`k{keys}` with amounts; keys below `keys / 3` appear once.
fn write_input(dir: &Path, rows: usize, keys: usize) -> std::path::PathBuf {
    let mut csv = String::new();
    for i in 0..rows {
        let k = if i < keys {
            i
        } else {
            keys / 3 + (i * 7) % (keys - keys / 3)
        };
        csv.push_str(&format!("k{k},{}.{:02}\n", i % 90, i % 100));
    }
    let path = dir.join("input.csv");
    std::fs::write(&path, csv).expect("works in a temp dir");
    path
}

/// What the aggregates must leave in the tables: per key (count, sum), and per count
/// the number of keys with it.
fn expected(input: &Path) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(input).expect("written above");
    let mut per_key: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for l in text.lines() {
        let (k, v) = l.split_once(',').expect("k,v");
        let (whole, cents) = v.split_once('.').expect("x.yy");
        let cents: i64 =
            whole.parse::<i64>().expect("int") * 100 + cents.parse::<i64>().expect("int");
        let e = per_key.entry(k.to_string()).or_default();
        e.0 += 1;
        e.1 += cents;
    }
    let mut by_count: BTreeMap<i64, i64> = BTreeMap::new();
    for (n, _) in per_key.values() {
        *by_count.entry(*n).or_default() += 1;
    }
    let mut keys: Vec<String> = per_key
        .iter()
        .map(|(k, (n, c))| format!("{k}|{n}|{}.{:02}", c / 100, c % 100))
        .collect();
    keys.sort();
    let mut counts: Vec<String> = by_count.iter().map(|(n, k)| format!("{n}|{k}")).collect();
    counts.sort();
    (keys, counts)
}

/// Two updating aggregates into two upsert tables; the second one's groups empty out
/// (a count that no key has any more is deleted).
fn pipeline(
    dir: &Path,
    input: &Path,
    per_key: &str,
    per_count: &str,
    extra: &str,
) -> std::path::PathBuf {
    let sql = format!(
        "CREATE TABLE src (k STRING, v DECIMAL(10, 2))
           WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'csv');
         CREATE TABLE per_key (k STRING, n BIGINT, total DECIMAL(20, 2), PRIMARY KEY (k) NOT ENFORCED)
           WITH ('connector' = 'jdbc', 'url' = '{URL}', 'table-name' = '{per_key}',
                 'username' = 'postgres' {extra});
         CREATE TABLE per_count (n BIGINT, keys BIGINT, PRIMARY KEY (n) NOT ENFORCED)
           WITH ('connector' = 'jdbc', 'url' = '{URL}', 'table-name' = '{per_count}',
                 'username' = 'postgres' {extra});
         INSERT INTO per_key SELECT k, COUNT(*), SUM(v) FROM src GROUP BY k;
         INSERT INTO per_count SELECT n, COUNT(*) FROM (SELECT k, COUNT(*) AS n FROM src GROUP BY k) GROUP BY n;",
        input = input.display()
    );
    let file = dir.join("pipeline.sql");
    std::fs::write(&file, sql).expect("works in a temp dir");
    file
}

fn create_tables(per_key: &str, per_count: &str) {
    psql(&format!(
        "DROP TABLE IF EXISTS {per_key}, {per_count}, {per_key}_sluice_staging, {per_count}_sluice_staging;
         CREATE TABLE {per_key} (k text PRIMARY KEY, n bigint NOT NULL, total numeric(20,2));
         CREATE TABLE {per_count} (n bigint PRIMARY KEY, keys bigint)"
    ));
}

fn contents(per_key: &str, per_count: &str) -> (Vec<String>, Vec<String>) {
    (
        lines(&psql(&format!(
            "SELECT k, n, total FROM {per_key} ORDER BY k"
        ))),
        lines(&psql(&format!(
            "SELECT n, keys FROM {per_count} ORDER BY n"
        ))),
    )
}

/// `sluice run` on two workers with checkpoints every `interval`, to the end.
fn run_checkpointed(dir: &Path, sql: &Path, interval: &str) {
    let sql = sql.display().to_string();
    let args = [
        "run",
        "-q",
        "-w",
        "2",
        "--checkpoint-dir",
        "chk",
        "--checkpoint-interval",
    ];
    let out = crate::sluice(dir, &[&args[..], &[interval, &sql]].concat());
    assert!(out.status.success(), "{}", text(&out).1);
}

#[test]
fn updating_aggregates_upsert_and_delete_in_postgres() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let input = write_input(dir.path(), 6_000, 900);
    let (want_keys, want_counts) = expected(&input);
    let (per_key, per_count) = (name("jdbc_up_key"), name("jdbc_up_count"));
    // Without checkpoints rows go straight in, a few at a time.
    create_tables(&per_key, &per_count);
    let sql = pipeline(
        dir.path(),
        &input,
        &per_key,
        &per_count,
        ", 'sink.buffer-flush.max-rows' = '37'",
    );
    let out = crate::sluice(
        dir.path(),
        &["run", "-q", "-w", "2", &sql.display().to_string()],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let (keys, counts) = contents(&per_key, &per_count);
    assert_eq!(keys, want_keys);
    assert_eq!(counts, want_counts);
    // Keys seen again and again passed through counts 2..28, which emptied out: their
    // rows were deleted.
    assert!(!counts.iter().any(|c| c.starts_with("2|")), "{counts:?}");
    // With checkpoints the rows are staged and applied per checkpoint, the same in the end.
    create_tables(&per_key, &per_count);
    run_checkpointed(dir.path(), &sql, "50ms");
    assert_eq!(contents(&per_key, &per_count), (want_keys, want_counts));
    let staged = psql(&format!("SELECT count(*) FROM {per_key}_sluice_staging"));
    assert_eq!(staged.trim(), "0", "the staging table is left empty");
    psql(&format!(
        "DROP TABLE {per_key}, {per_count}, {per_key}_sluice_staging, {per_count}_sluice_staging"
    ));
}

#[test]
fn every_type_arrives_as_written() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let t = name("jdbc_types");
    psql(&format!(
        "DROP TABLE IF EXISTS {t};
         CREATE TABLE {t} (id int PRIMARY KEY, flag boolean, tiny smallint, big bigint, f real,
           d double precision, amount numeric(10,3), day date, tm time, ts timestamp(3),
           ltz timestamptz, s text, extra text DEFAULT 'kept')"
    ));
    let json = [
        r#"{"id":1,"flag":true,"tiny":-7,"big":9007199254740993,"f":1.5,"d":-2.25,"amount":12.345,"day":"2024-02-29","tm":"12:34:56","ts":"2024-01-01 10:00:00.123","ltz":"2024-01-01 10:00:00.500","s":"it's \"quoted\"; DROP TABLE x; -- ünïcödé ✓"}"#,
        r#"{"id":2,"flag":false,"tiny":0,"big":-1,"f":0,"d":1e300,"amount":-0.5,"day":"1970-01-01","tm":"00:00:00","ts":"1999-12-31 23:59:59.999","ltz":"1970-01-01 00:00:00.000","s":""}"#,
        r#"{"id":3}"#,
    ]
    .join("\n");
    std::fs::write(dir.path().join("in.json"), json).expect("works in a temp dir");
    let sql = format!(
        "CREATE TABLE src (id INT, flag BOOLEAN, tiny TINYINT, big BIGINT, f FLOAT, d DOUBLE,
           amount DECIMAL(10, 3), `day` DATE, tm TIME(0), ts TIMESTAMP(3), ltz TIMESTAMP_LTZ(3), s STRING)
         WITH ('connector' = 'filesystem', 'path' = 'in.json', 'format' = 'json');
         CREATE TABLE out (id INT, flag BOOLEAN, tiny TINYINT, big BIGINT, f FLOAT, d DOUBLE,
           amount DECIMAL(10, 3), `day` DATE, tm TIME(0), ts TIMESTAMP(3), ltz TIMESTAMP_LTZ(3), s STRING,
           PRIMARY KEY (id) NOT ENFORCED)
         WITH ('connector' = 'jdbc', 'url' = '{URL}', 'table-name' = '{t}', 'username' = 'postgres');
         INSERT INTO out SELECT id, flag, tiny, big, f, d, amount, `day`, tm, ts, ltz, s FROM src;"
    );
    std::fs::write(dir.path().join("types.sql"), sql).expect("works in a temp dir");
    let out = crate::sluice(dir.path(), &["run", "-q", "types.sql"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let got = psql(&format!(
        "SET TIME ZONE 'UTC'; SELECT id, flag, tiny, big, f, d, amount, day, tm, ts, ltz, s,
           extra FROM {t} ORDER BY id"
    ));
    assert_eq!(
        lines(&got),
        [
            "1|t|-7|9007199254740993|1.5|-2.25|12.345|2024-02-29|12:34:56|2024-01-01 10:00:00.123|2024-01-01 10:00:00.5+00|it's \"quoted\"; DROP TABLE x; -- ünïcödé ✓|kept",
            "2|f|0|-1|0|1e+300|-0.500|1970-01-01|00:00:00|1999-12-31 23:59:59.999|1970-01-01 00:00:00+00||kept",
            "3||||||||||||kept",
        ]
    );
    psql(&format!("DROP TABLE {t}"));
}

/// SIGKILL at random moments into an upsert table and an append table (no key, so a
/// repeated row would show): after the restarts, both hold exactly what an
/// uninterrupted run writes.
#[test]
fn sigkill_leaves_postgres_exactly_as_an_uninterrupted_run() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let input = write_input(dir.path(), 400_000, 20_000);
    let (want_keys, want_counts) = expected(&input);
    let (per_key, per_count) = (name("jdbc_kill_key"), name("jdbc_kill_count"));
    create_tables(&per_key, &per_count);
    // log has no key: appended, a repeated row would stay.
    let log = name("jdbc_kill_log");
    psql(&format!(
        "DROP TABLE IF EXISTS {log}, {log}_sluice_staging; CREATE TABLE {log} (k text, v numeric(10,2))"
    ));
    let sql = pipeline(dir.path(), &input, &per_key, &per_count, "");
    let mut text_sql = std::fs::read_to_string(&sql).expect("written above");
    text_sql.push_str(&format!(
        "CREATE TABLE log (k STRING, v DECIMAL(10, 2))
           WITH ('connector' = 'jdbc', 'url' = '{URL}', 'table-name' = '{log}', 'username' = 'postgres');
         INSERT INTO log SELECT k, v FROM src WHERE v > 80;"
    ));
    std::fs::write(&sql, text_sql).expect("works in a temp dir");
    let mut kills = 0;
    for (i, wait_ms) in [600u64, 400, 400, 500].iter().enumerate() {
        let workers = ["2", "1", "3", "2"][i];
        if crate::run_then_kill(dir.path(), &sql, workers, "100ms", *wait_ms) {
            kills += 1;
        }
    }
    assert!(
        kills >= 2,
        "the input was too small to kill the run mid-way ({kills} kills)"
    );
    run_checkpointed(dir.path(), &sql, "100ms");
    assert_eq!(
        contents(&per_key, &per_count),
        (want_keys, want_counts),
        "after {kills} kills"
    );
    let text = std::fs::read_to_string(&input).expect("written above");
    let mut want_log: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once(','))
        .filter(|(_, v)| v.parse::<f64>().is_ok_and(|v| v > 80.0))
        .map(|(k, v)| format!("{k}|{v}"))
        .collect();
    want_log.sort();
    let got_log = lines(&psql(&format!("SELECT k, v FROM {log} ORDER BY 1, 2")));
    assert_eq!(
        got_log.len(),
        want_log.len(),
        "after {kills} kills: rows lost or repeated"
    );
    assert_eq!(got_log, want_log);
    psql(&format!(
        "DROP TABLE {per_key}, {per_count}, {log}, {per_key}_sluice_staging, \
         {per_count}_sluice_staging, {log}_sluice_staging"
    ));
}

/// Each mistake a user can make gets a message saying what to do.
#[test]
fn mistakes_are_explained() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    std::fs::write(dir.path().join("in.csv"), "a,1\n").expect("works in a temp dir");
    let t = name("jdbc_nokey");
    psql(&format!(
        "DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (k text, n bigint)"
    ));
    let missing = name("jdbc_missing");
    let cases: Vec<(String, &str, Vec<&str>)> = vec![
        (format!("'url' = '{URL}', 'table-name' = '{missing}'"), "PRIMARY KEY (k) NOT ENFORCED",
         vec!["does not exist", "CREATE TABLE"]),
        (format!("'url' = '{URL}', 'table-name' = '{t}'"), "PRIMARY KEY (k) NOT ENFORCED",
         vec!["unique index or primary key on (k)", "ALTER TABLE"]),
        (format!("'url' = '{URL}', 'table-name' = '{t}'"), "wrong BIGINT",
         vec!["column 'wrong' is not in PostgreSQL table"]),
        ("'url' = 'jdbc:mysql://h/db', 'table-name' = 'x'".into(), "", vec!["only PostgreSQL"]),
        ("'table-name' = 'x'".into(), "", vec!["needs option 'url'"]),
        (format!("'url' = '{URL}', 'table-name' = 'x', 'sink.buffer-flush.max-row' = '5'"), "",
         vec!["Did you mean 'sink.buffer-flush.max-rows'"]),
        ("'url' = 'jdbc:postgresql://127.0.0.1:1/test', 'table-name' = 'x', 'sink.max-retries' = '0'".into(),
         "", vec!["cannot connect on PostgreSQL 127.0.0.1:1/test"]),
    ];
    for (options, extra_column, want) in cases {
        let extra = if extra_column.is_empty() {
            String::new()
        } else {
            format!(", {extra_column}")
        };
        let select = if extra_column.starts_with("wrong") {
            "k, n, 1"
        } else {
            "k, n"
        };
        let sql = format!(
            "CREATE TABLE src (k STRING, n BIGINT)
               WITH ('connector' = 'filesystem', 'path' = 'in.csv', 'format' = 'csv');
             CREATE TABLE out (k STRING, n BIGINT{extra}) WITH ('connector' = 'jdbc', {options});
             INSERT INTO out SELECT {select} FROM src;"
        );
        std::fs::write(dir.path().join("bad.sql"), &sql).expect("works in a temp dir");
        let out = crate::sluice(dir.path(), &["run", "-q", "bad.sql"]);
        let (_, err) = text(&out);
        assert!(!out.status.success(), "{sql} succeeded");
        for w in want {
            assert!(err.contains(w), "{sql}\nsaid: {err}\nwant: {w}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
    psql(&format!("DROP TABLE {t}"));
}

/// A PostgreSQL server of this test's own (a throwaway cluster on a free port), which
/// the test can stop and start: the shared one on 5432 must stay up for the others.
/// Runs `sql` with checkpoints every 300 ms; once `table` on `server` has a row, stops
/// the server for 3 s and starts it again. The run must then succeed; returns what it
/// logged (at warn level).
fn run_through_outage(server: &OwnServer, dir: &Path, sql: &str, table: &str) -> String {
    std::fs::write(dir.join("outage.sql"), sql).expect("works in a temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "-q", "-w", "2", "--checkpoint-dir", "chk"])
        .args(["--checkpoint-interval", "300ms", "outage.sql"])
        .current_dir(dir)
        .env("SLUICE_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the sluice binary starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while server.psql(&format!("SELECT count(*) FROM {table}")).trim() == "0" {
        assert!(std::time::Instant::now() < deadline, "no row arrived");
        if child.try_wait().expect("polls").is_some() {
            let out = child.wait_with_output().expect("waits");
            panic!("the run ended before the outage: {}", text(&out).1);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    server.down();
    std::thread::sleep(Duration::from_secs(3));
    server.up();
    let out = child.wait_with_output().expect("waits");
    let (_, err) = text(&out);
    assert!(out.status.success(), "the run failed: {err}");
    err
}

struct OwnServer {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

impl OwnServer {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries (scripts/test.sh installs them)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().expect("works in a temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let server = OwnServer { dir, bin, port };
        if Self::root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(server.dir.path())
                .status()
                .expect("chown runs");
            assert!(ok.success());
        }
        server.as_owner(&["initdb", "-D", "data", "-A", "trust", "-U", "postgres"]);
        server.up();
        server
    }

    /// A server that takes only TLS connections (`hostnossl … reject`), with a
    /// certificate for 127.0.0.1 and localhost signed by a CA of its own; returns the
    /// server, the CA's certificate, and another CA's (which did not sign it).
    fn start_tls() -> (Self, String, String) {
        let server = Self::start();
        let d = server.dir.path();
        crate::make_certs(d);
        for f in ["server.crt", "server.key"] {
            std::fs::copy(d.join(f), d.join("data").join(f)).expect("copies");
        }
        let mut conf = std::fs::read_to_string(d.join("data/postgresql.conf")).expect("reads");
        conf.push_str("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        std::fs::write(d.join("data/postgresql.conf"), conf).expect("writes");
        std::fs::write(
            d.join("data/pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .expect("writes");
        if Self::root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(d)
                .status()
                .expect("chown runs");
            assert!(ok.success());
        }
        let ok = Command::new("chmod")
            .args(["600"])
            .arg(d.join("data/server.key"))
            .status()
            .expect("chmod runs");
        assert!(ok.success());
        server.down();
        server.up();
        let ca = d.join("ca.crt").display().to_string();
        let other = d.join("other.crt").display().to_string();
        (server, ca, other)
    }

    fn root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    }

    /// A server binary, run as the owner of the data directory.
    fn command(&self, binary: &str) -> Command {
        let exe = self.bin.join(binary);
        let mut cmd = if Self::root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.current_dir(self.dir.path());
        cmd
    }

    fn as_owner(&self, args: &[&str]) {
        let out = self
            .command(args[0])
            .args(&args[1..])
            .output()
            .expect("the server binary runs");
        assert!(out.status.success(), "{args:?}: {}", text(&out).1);
    }

    fn up(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.as_owner(&[
            "pg_ctl", "-D", "data", "-l", "log", "-w", "-o", &opts, "start",
        ]);
    }

    /// Stops the server at once, as a crash would (`immediate`: no clean shutdown).
    fn down(&self) {
        self.as_owner(&["pg_ctl", "-D", "data", "-m", "immediate", "-w", "stop"]);
    }

    fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", "postgres", "-Atq", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "{sql}: {}", text(&out).1);
        text(&out).0
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", "data", "-m", "immediate", "stop"])
            .output();
    }
}

/// The database goes away for a few seconds mid-run: the sink retries, then the job
/// restarts from its last checkpoint until the server is back; the tables end up
/// exactly as without the outage (an append table shows any repeat).
#[test]
fn a_database_that_goes_away_loses_and_repeats_nothing() {
    let server = OwnServer::start();
    server.psql(
        "CREATE TABLE seen (id bigint PRIMARY KEY, twice bigint);
         CREATE TABLE log (id bigint, at_least bigint)",
    );
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let url = format!("jdbc:postgresql://127.0.0.1:{}/postgres", server.port);
    let sql = format!(
        "SET 'restart-strategy.exponential-delay.initial-backoff' = '500ms';
         CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '4000',
           'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '24000');
         CREATE TABLE seen (id BIGINT, twice BIGINT, PRIMARY KEY (id) NOT ENFORCED)
           WITH ('connector' = 'jdbc', 'url' = '{url}', 'table-name' = 'seen',
                 'username' = 'postgres', 'sink.max-retries' = '2');
         CREATE TABLE log (id BIGINT, at_least BIGINT)
           WITH ('connector' = 'jdbc', 'url' = '{url}', 'table-name' = 'log', 'username' = 'postgres');
         INSERT INTO seen SELECT id, 2 * id FROM src;
         INSERT INTO log SELECT id, id FROM src WHERE MOD(id, 3) = 0;"
    );
    let err = run_through_outage(&server, dir.path(), &sql, "seen");
    // The outage was noticed and said so.
    assert!(
        err.contains("127.0.0.1"),
        "nothing logged about the outage: {err}"
    );
    assert_eq!(
        server
            .psql("SELECT count(*), sum(id), bool_and(twice = 2 * id) FROM seen")
            .trim(),
        "24000|288012000|t"
    );
    assert_eq!(
        server
            .psql("SELECT count(*), count(DISTINCT id), sum(id) FROM log")
            .trim(),
        "8000|8000|96012000"
    );
}

/// A bounded scan of a PostgreSQL table, whole and in parallel ranges of a column:
/// every row once, every type as stored (a string with a comma, quote and line break;
/// NULLs; timestamps; decimals; booleans).
#[test]
fn a_table_is_scanned_whole_and_in_ranges() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let t = name("jdbc_scan");
    psql(&format!(
        "DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (id bigint PRIMARY KEY, name text, amount numeric(10,2), ok boolean, ts timestamp(3));
         INSERT INTO {t} SELECT g, 'n' || (g % 7), g * 0.25, g % 2 = 0, timestamp '2026-01-01' + g * interval '1 second' FROM generate_series(1, 20000) g;
         INSERT INTO {t} VALUES (0, E'a,\"b\"\\nc', NULL, NULL, NULL)"
    ));
    for (options, workers) in [
        ("", "2"),
        (
            ", 'scan.partition.column' = 'id', 'scan.partition.num' = '5', 'scan.partition.lower-bound' = '1', 'scan.partition.upper-bound' = '19000'",
            "2",
        ),
    ] {
        let sql = dir.path().join("scan.sql");
        std::fs::write(
            &sql,
            format!(
                "CREATE TABLE src (id BIGINT, name STRING, amount DECIMAL(10, 2), ok BOOLEAN, ts TIMESTAMP(3))
                   WITH ('connector' = 'jdbc', 'url' = '{URL}', 'table-name' = '{t}', 'username' = 'postgres' {options});
                 SELECT COUNT(*), SUM(id), SUM(amount), COUNT(ok), SUM(CASE WHEN ok THEN 1 ELSE 0 END), MAX(ts) FROM src;
                 SELECT name, amount IS NULL, ok IS NULL FROM src WHERE id = 0;"
            ),
        )
        .expect("works in a temp dir");
        let out = crate::sluice(
            dir.path(),
            &["run", "-w", workers, sql.to_str().expect("utf-8")],
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stdout
                .contains("[20001, 200010000, 50002500.00, 20000, 10000, 2026-01-01 05:33:20.000]"),
            "{options}: {stdout}"
        );
        assert!(
            stdout.contains("+I[a,\"b\"\nc, true, true]"),
            "{options}: {stdout}"
        );
    }
    psql(&format!("DROP TABLE {t}"));
}

/// A lookup join enriches each order with the customer PostgreSQL holds for its id
/// (INNER, with a condition on the customer; LEFT, with a condition in `ON`), through a
/// cache, with an INT probe key against a BIGINT column; orders of unknown customers
/// match nothing.
#[test]
fn a_lookup_join_enriches_rows_from_postgres() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let t = name("jdbc_lookup");
    psql(&format!(
        "DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (id bigint PRIMARY KEY, name text, tier text, credit numeric(10,2), active boolean);
         INSERT INTO {t} SELECT g, 'c' || g, CASE WHEN g % 3 = 0 THEN 'gold' ELSE 'basic' END, g * 1.5, g % 5 <> 0 FROM generate_series(1, 500) g"
    ));
    let mut csv = String::new();
    for i in 0..3000u64 {
        // Customers 1..=600: those above 500 are unknown.
        csv.push_str(&format!("{i},{},{}\n", 1 + (i * 37) % 600, i % 100));
    }
    let input = dir.path().join("orders.csv");
    std::fs::write(&input, csv).expect("works in a temp dir");
    let sql = dir.path().join("lookup.sql");
    for cache in [
        "",
        ", 'lookup.cache' = 'PARTIAL', 'lookup.partial-cache.max-rows' = '100', 'lookup.partial-cache.expire-after-write' = '1 min'",
    ] {
        std::fs::write(
            &sql,
            format!(
                "CREATE TABLE orders (oid BIGINT, cid INT, amount BIGINT, pt AS PROCTIME())
                   WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'csv');
                 CREATE TABLE customers (id BIGINT, name STRING, tier STRING, credit DECIMAL(10, 2), active BOOLEAN,
                     PRIMARY KEY (id) NOT ENFORCED)
                   WITH ('connector' = 'jdbc', 'url' = '{URL}', 'table-name' = '{t}', 'username' = 'postgres' {cache});
                 SELECT 'inner', o.oid, c.name, c.credit FROM orders AS o
                   JOIN customers FOR SYSTEM_TIME AS OF o.pt AS c ON o.cid = c.id WHERE c.active;
                 SELECT 'left', o.oid, c.name FROM orders AS o
                   LEFT JOIN customers FOR SYSTEM_TIME AS OF o.pt AS c ON o.cid = c.id AND c.tier = 'gold';",
                input = input.display()
            ),
        )
        .expect("works in a temp dir");
        let out = crate::sluice(
            dir.path(),
            &["run", "-w", "2", sql.to_str().expect("utf-8")],
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        let mut want_inner = Vec::new();
        let mut want_left = Vec::new();
        for i in 0..3000u64 {
            let c = 1 + (i * 37) % 600;
            if c <= 500 && c % 5 != 0 {
                let credit = format!("{}.{}0", c * 3 / 2, if c % 2 == 1 { 5 } else { 0 });
                want_inner.push(format!("+I[inner, {i}, c{c}, {credit}]"));
            }
            if c <= 500 && c % 3 == 0 {
                want_left.push(format!("+I[left, {i}, c{c}]"));
            } else {
                want_left.push(format!("+I[left, {i}, null]"));
            }
        }
        let got = lines(&stdout);
        let got_inner: Vec<&String> = got.iter().filter(|l| l.starts_with("+I[inner")).collect();
        let got_left: Vec<&String> = got.iter().filter(|l| l.starts_with("+I[left")).collect();
        want_inner.sort();
        want_left.sort();
        assert_eq!(got_inner, want_inner.iter().collect::<Vec<_>>(), "{cache}");
        assert_eq!(got_left, want_left.iter().collect::<Vec<_>>(), "{cache}");
    }
    // A key that is not a column of the table, and a table that does not exist.
    std::fs::write(
        &sql,
        format!(
            "CREATE TABLE orders (oid BIGINT, cid INT, amount BIGINT, pt AS PROCTIME())
               WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'csv');
             CREATE TABLE customers (id BIGINT, name STRING)
               WITH ('connector' = 'jdbc', 'url' = '{URL}', 'table-name' = '{t}_missing', 'username' = 'postgres',
                     'lookup.max-retries' = '0');
             SELECT o.oid, c.name FROM orders AS o
               JOIN customers FOR SYSTEM_TIME AS OF o.pt AS c ON o.cid = c.id;",
            input = input.display()
        ),
    )
    .expect("works in a temp dir");
    let out = crate::sluice(dir.path(), &["run", sql.to_str().expect("utf-8")]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("{t}_missing")) && stderr.contains("does not exist"),
        "{stderr}"
    );
    psql(&format!("DROP TABLE {t}"));
}

/// A lookup table whose database goes away for 3 s: lookups are retried, then the job
/// restarts from its checkpoint; when the database is back every row is enriched once.
#[test]
fn a_lookup_table_that_goes_away_loses_nothing() {
    let server = OwnServer::start();
    server.psql(
        "CREATE TABLE dim (id bigint PRIMARY KEY, name text);
         INSERT INTO dim SELECT g, 'n' || g FROM generate_series(0, 99) g;
         CREATE TABLE enriched (id bigint PRIMARY KEY, name text)",
    );
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let url = format!("jdbc:postgresql://127.0.0.1:{}/postgres", server.port);
    let sql = format!(
        "SET 'restart-strategy.exponential-delay.initial-backoff' = '500ms';
         CREATE TABLE src (id BIGINT, pt AS PROCTIME()) WITH ('connector' = 'datagen',
           'rows-per-second' = '4000', 'fields.id.kind' = 'sequence', 'fields.id.start' = '1',
           'fields.id.end' = '24000');
         CREATE TABLE dim (id BIGINT, name STRING)
           WITH ('connector' = 'jdbc', 'url' = '{url}', 'table-name' = 'dim',
                 'username' = 'postgres', 'lookup.max-retries' = '2',
                 'lookup.cache' = 'PARTIAL', 'lookup.partial-cache.max-rows' = '10');
         CREATE TABLE enriched (id BIGINT, name STRING, PRIMARY KEY (id) NOT ENFORCED)
           WITH ('connector' = 'jdbc', 'url' = '{url}', 'table-name' = 'enriched',
                 'username' = 'postgres', 'sink.max-retries' = '2');
         INSERT INTO enriched SELECT s.id, d.name FROM src AS s
           JOIN dim FOR SYSTEM_TIME AS OF s.pt AS d ON MOD(s.id, 100) = d.id;"
    );
    let err = run_through_outage(&server, dir.path(), &sql, "enriched");
    assert!(
        err.contains("Lookup failed"),
        "no lookup retry logged: {err}"
    );
    assert_eq!(
        server
            .psql("SELECT count(*), sum(id), bool_and(name = 'n' || (id % 100)) FROM enriched")
            .trim(),
        "24000|288012000|t"
    );
}

/// TLS follows `sslmode` as libpq does, against a server that refuses unencrypted
/// connections: verify-full and verify-ca with the right CA, require and the default
/// (prefer) connect and write; disable is refused by the server; verify-full with another
/// CA fails on the certificate. A lookup table connects the same way.
#[test]
fn tls_to_postgres_follows_sslmode() {
    let (server, ca, other) = OwnServer::start_tls();
    server.psql(
        "CREATE TABLE t (id bigint PRIMARY KEY, mode text);
         CREATE TABLE dim (id bigint PRIMARY KEY, name text);
         INSERT INTO dim SELECT g, 'n' || g FROM generate_series(1, 10) g",
    );
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let run = |query: &str| {
        let url = format!(
            "jdbc:postgresql://127.0.0.1:{}/postgres{query}",
            server.port
        );
        let sql = format!(
            "CREATE TABLE src (id BIGINT, pt AS PROCTIME()) WITH ('connector' = 'datagen',
               'number-of-rows' = '10', 'fields.id.kind' = 'sequence', 'fields.id.start' = '1',
               'fields.id.end' = '10');
             CREATE TABLE dim (id BIGINT, name STRING)
               WITH ('connector' = 'jdbc', 'url' = '{url}', 'table-name' = 'dim',
                     'username' = 'postgres', 'lookup.max-retries' = '0');
             CREATE TABLE t (id BIGINT, mode STRING, PRIMARY KEY (id) NOT ENFORCED)
               WITH ('connector' = 'jdbc', 'url' = '{url}', 'table-name' = 't',
                     'username' = 'postgres', 'sink.max-retries' = '0');
             INSERT INTO t SELECT s.id, d.name FROM src AS s
               JOIN dim FOR SYSTEM_TIME AS OF s.pt AS d ON s.id = d.id;"
        );
        let file = dir.path().join("tls.sql");
        std::fs::write(&file, sql).expect("works in a temp dir");
        crate::sluice(dir.path(), &["run", file.to_str().expect("utf-8")])
    };
    for query in [
        format!("?sslmode=verify-full&sslrootcert={ca}"),
        format!("?sslmode=verify-ca&sslrootcert={ca}"),
        "?sslmode=require".to_string(),
        String::new(),
    ] {
        server.psql("DELETE FROM t");
        let out = run(&query);
        assert!(out.status.success(), "{query}: {}", text(&out).1);
        assert_eq!(
            server.psql("SELECT count(*), min(mode) FROM t").trim(),
            "10|n1",
            "{query}"
        );
    }
    let out = run("?sslmode=disable");
    let err = text(&out).1;
    assert!(!out.status.success());
    assert!(
        err.contains("no encryption") || err.contains("pg_hba"),
        "{err}"
    );
    let out = run(&format!("?sslmode=verify-full&sslrootcert={other}"));
    let err = text(&out).1;
    assert!(!out.status.success());
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}
