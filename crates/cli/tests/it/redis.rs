//! The `redis` sink against the Redis on 127.0.0.1:6379 (`scripts/services/redis.sh`
//! starts one if none runs). Keys are named after the test and the process, so runs
//! do not collide; what Sluice wrote is read back with `redis-cli`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::text;

fn cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "--raw"])
        .args(args)
        .output()
        .expect("redis-cli runs (scripts/services/redis.sh installs Redis)");
    assert!(out.status.success(), "{args:?}: {}", text(&out).1);
    text(&out).0
}

fn prefix(base: &str) -> String {
    format!("{base}{}", std::process::id())
}

fn write_sql(dir: &Path, sql: &str) -> std::path::PathBuf {
    let file = dir.join("pipeline.sql");
    std::fs::write(&file, sql).expect("works in a temp dir");
    file
}

/// `k,v` rows; returns per key (count, sum).
fn input(
    dir: &Path,
    rows: usize,
    keys: usize,
) -> (std::path::PathBuf, BTreeMap<String, (i64, i64)>) {
    let mut csv = String::new();
    let mut want: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for i in 0..rows {
        let k = format!("k{}", (i * 13) % keys);
        let v = (i % 50) as i64;
        csv.push_str(&format!("{k},{v}\n"));
        let e = want.entry(k).or_default();
        e.0 += 1;
        e.1 += v;
    }
    let path = dir.join("in.csv");
    std::fs::write(&path, csv).expect("works in a temp dir");
    (path, want)
}

/// An updating aggregate written as SET (JSON values, with a TTL) and as HSET: each
/// key holds the final row; rows the aggregate deletes leave no key; XADD appends one
/// entry per row.
#[test]
fn set_hset_and_xadd_hold_what_the_pipeline_computed() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let (path, want) = input(dir.path(), 20_000, 300);
    let p = prefix("sl");
    let sql = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE src (k STRING, v BIGINT)
               WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'csv');
             CREATE TABLE as_set (k STRING, n BIGINT, total BIGINT, PRIMARY KEY (k) NOT ENFORCED)
               WITH ('connector' = 'redis', 'url' = 'redis://127.0.0.1:6379/0',
                     'key' = '{p}:set:{{k}}', 'sink.ttl' = '1 h');
             CREATE TABLE as_hash (k STRING, n BIGINT, total BIGINT, PRIMARY KEY (k) NOT ENFORCED)
               WITH ('connector' = 'redis', 'url' = 'redis://127.0.0.1:6379/0',
                     'sink.command' = 'hset', 'key' = '{p}:hash:{{k}}');
             CREATE TABLE per_n (n BIGINT, keys BIGINT, PRIMARY KEY (n) NOT ENFORCED)
               WITH ('connector' = 'redis', 'url' = 'redis://127.0.0.1:6379/0',
                     'sink.command' = 'hset', 'key' = '{p}:n:{{n}}');
             CREATE TABLE log (k STRING, v BIGINT)
               WITH ('connector' = 'redis', 'url' = 'redis://127.0.0.1:6379/0',
                     'sink.command' = 'xadd', 'key' = '{p}:log');
             INSERT INTO as_set SELECT k, COUNT(*), SUM(v) FROM src GROUP BY k;
             INSERT INTO as_hash SELECT k, COUNT(*), SUM(v) FROM src GROUP BY k;
             INSERT INTO per_n SELECT n, COUNT(*) FROM (SELECT k, COUNT(*) AS n FROM src GROUP BY k) GROUP BY n;
             INSERT INTO log SELECT k, v FROM src WHERE v = 7;",
            path = path.display()
        ),
    );
    let out = crate::sluice(
        dir.path(),
        &["run", "-w", "2", sql.to_str().expect("utf-8")],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    for (k, (n, total)) in &want {
        let v = cli(&["GET", &format!("{p}:set:{k}")]);
        assert_eq!(
            v.trim(),
            format!("{{\"k\":\"{k}\",\"n\":{n},\"total\":{total}}}"),
            "{k}"
        );
        let h = cli(&["HGETALL", &format!("{p}:hash:{k}")]);
        let h: Vec<&str> = h.lines().collect();
        assert_eq!(
            h,
            [
                "k",
                k.as_str(),
                "n",
                &n.to_string(),
                "total",
                &total.to_string()
            ]
        );
    }
    let ttl: i64 = cli(&["TTL", &format!("{p}:set:k0")])
        .trim()
        .parse()
        .expect("a number");
    assert!(ttl > 3000 && ttl <= 3600, "{ttl}");
    // Counts that some key had on the way but none has at the end were deleted.
    let mut per_n: BTreeMap<i64, i64> = BTreeMap::new();
    for (n, _) in want.values() {
        *per_n.entry(*n).or_default() += 1;
    }
    let keys = cli(&["--scan", "--pattern", &format!("{p}:n:*")]);
    assert_eq!(keys.lines().count(), per_n.len(), "{keys}");
    for (n, count) in &per_n {
        let got = cli(&["HGET", &format!("{p}:n:{n}"), "keys"]);
        assert_eq!(got.trim(), count.to_string(), "n = {n}");
    }
    let sevens = (0..20_000).filter(|i| i % 50 == 7).count();
    assert_eq!(
        cli(&["XLEN", &format!("{p}:log")]).trim(),
        sevens.to_string()
    );
    let keys = cli(&["--scan", "--pattern", &format!("{p}:*")]);
    for k in keys.lines() {
        cli(&["DEL", k]);
    }
}

/// Each mistake a user can make gets a message saying what to do.
#[test]
fn redis_mistakes_are_explained() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let cases = [
        ("'url' = 'redis://127.0.0.1:6379'", "needs option 'key'"),
        ("'url' = 'http://x', 'key' = 'a'", "is not a Redis URL"),
        (
            "'url' = 'redis://127.0.0.1:6379', 'key' = 'a:{nope}'",
            "'{nope}' names no column",
        ),
        (
            "'url' = 'redis://127.0.0.1:6379', 'key' = 'a', 'sink.command' = 'lpush'",
            "'lpush' is not one of set, hset, xadd, publish",
        ),
        (
            "'url' = 'redis://127.0.0.1:6379', 'key' = 'a', 'sink.command' = 'xadd', 'sink.ttl' = '1 s'",
            "applies to 'set' and 'hset' only",
        ),
        (
            "'url' = 'redis://127.0.0.1:1', 'key' = 'a:{k}'",
            "cannot connect",
        ),
        (
            "'url' = 'redis://127.0.0.1:6379', 'key' = 'a:{k}', 'password' = 'wrong-pass-42'",
            "Redis at",
        ),
        (
            "'url' = 'redis://127.0.0.1:6379', 'key' = 'a:{k}', 'tls.root-cert' = '/etc/hostname'",
            "write the url as rediss://",
        ),
        (
            "'url' = 'rediss://127.0.0.1:6379', 'key' = 'a:{k}', 'tls.root-cert' = '/nonexistent.pem'",
            "cannot read '/nonexistent.pem'",
        ),
        (
            "'url' = 'rediss://127.0.0.1:6379', 'key' = 'a:{k}', 'tls.root-cert' = '/etc/hostname'",
            "holds no PEM certificate",
        ),
    ];
    for (options, want) in cases {
        let sql = write_sql(
            dir.path(),
            &format!(
                "CREATE TABLE src (k STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '3');
                 CREATE TABLE dst (k STRING) WITH ('connector' = 'redis', {options});
                 INSERT INTO dst SELECT k FROM src;"
            ),
        );
        let out = crate::sluice(dir.path(), &["run", sql.to_str().expect("utf-8")]);
        let (_, stderr) = text(&out);
        assert_ne!(out.status.code(), Some(0), "{options}");
        assert!(
            stderr.contains(want),
            "{options}: want '{want}' in {stderr}"
        );
        assert!(!stderr.contains("wrong-pass-42"), "{stderr}");
    }
    // An updating query into xadd is refused at plan time.
    let sql = write_sql(
        dir.path(),
        "CREATE TABLE src (k STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '3');
         CREATE TABLE dst (k STRING, n BIGINT) WITH ('connector' = 'redis',
           'url' = 'redis://127.0.0.1:6379', 'key' = 's', 'sink.command' = 'xadd');
         INSERT INTO dst SELECT k, COUNT(*) FROM src GROUP BY k;",
    );
    let out = crate::sluice(dir.path(), &["run", sql.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
}

/// Adds `n` entries `k`, `v` to `stream` (through `redis-cli`'s pipe mode); returns
/// per key (count, sum).
fn xadd(stream: &str, n: usize, keys: usize) -> BTreeMap<String, (i64, i64)> {
    use std::io::Write as _;
    let mut want: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut cmds = String::new();
    for i in 0..n {
        let k = format!("s{}", (i * 7) % keys);
        let v = (i % 40) as i64;
        cmds.push_str(&format!("XADD {stream} * k {k} v {v}\r\n"));
        let e = want.entry(k).or_default();
        e.0 += 1;
        e.1 += v;
    }
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "--pipe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-cli runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(cmds.as_bytes())
        .expect("written");
    assert!(child.wait().expect("ends").success());
    want
}

/// A Redis stream read through a consumer group, aggregated into hashes, killed with
/// SIGKILL mid-run: every entry counted once, and all acknowledged at the end.
#[test]
fn a_stream_is_read_exactly_once_across_kills() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let p = prefix("st");
    let stream = format!("{p}:events");
    let want = xadd(&stream, 60_000, 200);
    let sql = |bounded: &str| {
        write_sql(
            dir.path(),
            &format!(
                "CREATE TABLE events (k STRING, v BIGINT)
                   WITH ('connector' = 'redis', 'url' = 'redis://127.0.0.1:6379/0',
                         'key' = '{stream}', 'scan.group' = 'g', 'scan.bounded.mode' = '{bounded}');
                 CREATE TABLE per_key (k STRING, n BIGINT, total BIGINT, PRIMARY KEY (k) NOT ENFORCED)
                   WITH ('connector' = 'redis', 'url' = 'redis://127.0.0.1:6379/0',
                         'sink.command' = 'hset', 'key' = '{p}:agg:{{k}}');
                 INSERT INTO per_key SELECT k, COUNT(*), SUM(v) FROM events GROUP BY k;"
            ),
        )
    };
    let file = sql("unbounded");
    let mut kills = 0;
    for (i, wait_ms) in [1200u64, 1800].iter().enumerate() {
        if crate::run_then_kill(dir.path(), &file, ["2", "1"][i], "200ms", *wait_ms) {
            kills += 1;
        }
    }
    assert_eq!(kills, 2, "an unbounded stream runs until killed");
    let file = sql("latest-offset");
    let out = crate::sluice(
        dir.path(),
        &[
            "run",
            "-q",
            "-w",
            "2",
            "--checkpoint-dir",
            "chk",
            "--checkpoint-interval",
            "200ms",
            file.to_str().expect("utf-8"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let mut wrong = Vec::new();
    for (k, (n, total)) in &want {
        let h = cli(&["HMGET", &format!("{p}:agg:{k}"), "n", "total"]);
        let got: Vec<&str> = h.lines().collect();
        if got != [n.to_string().as_str(), total.to_string().as_str()] {
            wrong.push(format!("{k}: want {n}/{total}, got {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "after {kills} kills: {:?}",
        &wrong[..wrong.len().min(5)]
    );
    // Entries are acknowledged as checkpoints complete, the last ones with the final
    // checkpoint of the bounded run.
    let pending = cli(&["XPENDING", &stream, "g"]);
    assert_eq!(
        pending.lines().next(),
        Some("0"),
        "all acknowledged: {pending}"
    );
    let keys = cli(&["--scan", "--pattern", &format!("{p}:*")]);
    for k in keys.lines() {
        cli(&["DEL", k]);
    }
}

/// Lookup joins against keys the `hset` and `set` sinks' shapes: hashes read with
/// HGETALL (INNER) and JSON values read with GET (LEFT); keys Redis does not hold
/// match nothing, and a value that is not JSON matches nothing either.
#[test]
fn a_lookup_join_enriches_rows_from_redis() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let p = prefix("lk");
    for id in 1..=200 {
        cli(&[
            "HSET",
            &format!("{p}:user:{id}"),
            "name",
            &format!("user {id}"),
            "country",
            if id % 2 == 0 { "NL" } else { "DE" },
        ]);
        if id % 4 == 0 {
            cli(&[
                "SET",
                &format!("{p}:pref:{id}"),
                &format!("{{\"id\":{id},\"lang\":\"l{}\"}}", id % 7),
            ]);
        }
    }
    cli(&["SET", &format!("{p}:pref:2"), "not json"]);
    let mut csv = String::new();
    for i in 0..2000u64 {
        csv.push_str(&format!("{i},{}\n", 1 + (i * 13) % 250));
    }
    let input = dir.path().join("orders.csv");
    std::fs::write(&input, csv).expect("works in a temp dir");
    let sql = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE orders (oid BIGINT, uid BIGINT, pt AS PROCTIME())
               WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'csv');
             CREATE TABLE users (id BIGINT, name STRING, country STRING)
               WITH ('connector' = 'redis', 'url' = 'redis://127.0.0.1:6379/0',
                     'key' = '{p}:user:{{id}}', 'lookup.command' = 'hgetall',
                     'lookup.cache.max-rows' = '50');
             CREATE TABLE prefs (id BIGINT, lang STRING, PRIMARY KEY (id) NOT ENFORCED)
               WITH ('connector' = 'redis', 'url' = 'redis://127.0.0.1:6379/0',
                     'key' = '{p}:pref:{{id}}');
             SELECT o.oid, u.name, u.country, pr.lang FROM orders AS o
               JOIN users FOR SYSTEM_TIME AS OF o.pt AS u ON o.uid = u.id
               LEFT JOIN prefs FOR SYSTEM_TIME AS OF o.pt AS pr ON o.uid = pr.id;",
            input = input.display()
        ),
    );
    let out = crate::sluice(
        dir.path(),
        &["run", "-w", "2", sql.to_str().expect("utf-8")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let mut got: Vec<&str> = stdout.lines().filter(|l| l.starts_with("+I")).collect();
    got.sort_unstable();
    let mut want: Vec<String> = Vec::new();
    for i in 0..2000u64 {
        let u = 1 + (i * 13) % 250;
        if u > 200 {
            continue;
        }
        let country = if u % 2 == 0 { "NL" } else { "DE" };
        let lang = if u % 4 == 0 {
            format!("l{}", u % 7)
        } else {
            "null".into()
        };
        want.push(format!("+I[{i}, user {u}, {country}, {lang}]"));
    }
    want.sort_unstable();
    assert_eq!(got, want.iter().map(String::as_str).collect::<Vec<_>>());
    let keys = cli(&["--scan", "--pattern", &format!("{p}:*")]);
    for k in keys.lines() {
        cli(&["DEL", k]);
    }
}

/// A Redis of the test's own that speaks only TLS, with a certificate from a CA of the
/// test's own; stopped when dropped.
struct TlsRedis {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl TlsRedis {
    fn start() -> TlsRedis {
        let dir = tempfile::tempdir().expect("works in a temp dir");
        crate::make_certs(dir.path());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args([
                "--tls-cert-file",
                "server.crt",
                "--tls-key-file",
                "server.key",
            ])
            .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/services/redis.sh installs it)");
        let server = TlsRedis { child, dir, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while server.cli(&["PING"]).trim() != "PONG" {
            assert!(
                std::time::Instant::now() < deadline,
                "TLS Redis did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        server
    }

    fn cli(&self, args: &[&str]) -> String {
        let ca = self.dir.path().join("ca.crt");
        let out = Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "--tls",
                "--cacert",
            ])
            .arg(&ca)
            .arg("--raw")
            .args(args)
            .output()
            .expect("redis-cli runs");
        text(&out).0
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rediss://` with the CA in `tls.root-cert`: a sink writes and a lookup reads through
/// TLS; a CA that did not sign the server's certificate fails the job with the
/// certificate error.
#[test]
fn tls_to_redis() {
    let server = TlsRedis::start();
    for id in 1..=5 {
        server.cli(&["HSET", &format!("u:{id}"), "name", &format!("user {id}")]);
    }
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let run = |ca: &str| {
        let ca = server.dir.path().join(ca).display().to_string();
        let sql = write_sql(
            dir.path(),
            &format!(
                "CREATE TABLE src (id BIGINT, pt AS PROCTIME()) WITH ('connector' = 'datagen',
                   'number-of-rows' = '5', 'fields.id.kind' = 'sequence', 'fields.id.start' = '1',
                   'fields.id.end' = '5');
                 CREATE TABLE users (id BIGINT, name STRING)
                   WITH ('connector' = 'redis', 'url' = 'rediss://127.0.0.1:{port}/0',
                         'tls.root-cert' = '{ca}', 'key' = 'u:{{id}}', 'lookup.command' = 'hgetall',
                         'lookup.max-retries' = '0');
                 CREATE TABLE out (id BIGINT, name STRING, PRIMARY KEY (id) NOT ENFORCED)
                   WITH ('connector' = 'redis', 'url' = 'rediss://127.0.0.1:{port}/0',
                         'tls.root-cert' = '{ca}', 'key' = 'out:{{id}}', 'sink.max-retries' = '0');
                 INSERT INTO out SELECT s.id, u.name FROM src AS s
                   JOIN users FOR SYSTEM_TIME AS OF s.pt AS u ON s.id = u.id;",
                port = server.port
            ),
        );
        crate::sluice(dir.path(), &["run", sql.to_str().expect("utf-8")])
    };
    let out = run("ca.crt");
    assert!(out.status.success(), "{}", text(&out).1);
    for id in 1..=5 {
        assert_eq!(
            server.cli(&["GET", &format!("out:{id}")]).trim(),
            format!("{{\"id\":{id},\"name\":\"user {id}\"}}")
        );
    }
    let out = run("other.crt");
    let err = text(&out).1;
    assert!(!out.status.success());
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}
