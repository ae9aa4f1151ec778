//! `sluice serve` over real HTTP on loopback: submitting, inspecting, stopping,
//! resuming and deleting pipelines through the REST API; pipelines and their state
//! surviving server restarts (SIGTERM and SIGKILL); `/metrics` after a real run; every
//! authentication failure and malformed body; TLS and rate limits; and the read-only
//! API of `sluice run --http`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::jdbc::psql;

const ADMIN: &str = "adm-key-0001";
const SUBMIT: &str = "sub-key-0002";
const READ: &str = "read-key-0003";
const INGEST: &str = "ing-key-0004";

fn sha256(key: &str) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(key.as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha256sum runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a hash")
        .to_string()
}

/// A configuration with the four keys, checkpoints every 300 ms, and `extra` lines.
fn config(dir: &Path, extra: &str) -> PathBuf {
    let pg = if extra.contains("pg_listen") {
        ""
    } else {
        "pg_listen = \"off\"\n"
    };
    let mut text = format!("data_dir = \"data\"\ncheckpoint_interval = \"300ms\"\n{pg}{extra}\n");
    for (name, key, scope) in [
        ("ops", ADMIN, "admin"),
        ("ci", SUBMIT, "submit"),
        ("grafana", READ, "read"),
        ("devices", INGEST, "ingest"),
    ] {
        text.push_str(&format!(
            "[[api_keys]]\nname = \"{name}\"\nscopes = [\"{scope}\"]\nsha256 = \"{}\"\n",
            sha256(key)
        ));
    }
    let path = dir.join("sluice.toml");
    std::fs::write(&path, text).expect("works in a temp dir");
    path
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// `sluice serve --config <config> --listen 127.0.0.1:<port>` in `dir`, once
    /// `/readyz` says ready.
    #[allow(clippy::zombie_processes)]
    fn start(dir: &Path, config: &Path, port: u16, scheme: &str, client: &Client) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir)
            .env("SLUICE_LOG", "error")
            .env("TOKEN_FROM_ENV", "env-secret-value-77")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sluice serve starts");
        let mut server = Server {
            child,
            base: format!("{scheme}://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            if client.call(&server, "GET", "/readyz", None, None).0 == 200 {
                return server;
            }
            if let Some(status) = server.child.try_wait().expect("polls") {
                panic!("sluice serve exited ({status}): {}", server.stderr());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "sluice serve was not ready in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }

    /// SIGTERM (as Kubernetes stops a pod); waits for a clean exit.
    fn terminate(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("polls") {
                let err = self.stderr();
                assert!(status.success(), "sluice serve exited with {status}: {err}");
                return err;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("sluice serve did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: a crash.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where requests go: a server the test started, or just an address.
trait Base {
    fn base(&self) -> &str;
}

impl Base for Server {
    fn base(&self) -> &str {
        &self.base
    }
}

impl Base for str {
    fn base(&self) -> &str {
        self
    }
}

struct Client {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Client {
    fn new(root_cert: Option<&Path>) -> Client {
        let mut b = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(p) = root_cert {
            let pem = std::fs::read(p).expect("reads the CA");
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM CA"));
        }
        Client {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            http: b.build().expect("a client"),
        }
    }

    /// A request with `key` as a bearer token and `body` as JSON text (or raw, with
    /// its content type, when it does not parse); returns status, headers and the body
    /// (JSON when it parses).
    fn call(
        &self,
        server: &(impl Base + ?Sized),
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.rt.block_on(async {
            let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
            let mut req = self.http.request(m, format!("{}{path}", server.base()));
            if let Some(k) = key {
                req = req.header("authorization", format!("Bearer {k}"));
            }
            if let Some((ct, b)) = body {
                if !ct.is_empty() {
                    req = req.header("content-type", ct);
                }
                req = req.body(b);
            }
            match req.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let headers = r.headers().clone();
                    let text = r.text().await.unwrap_or_default();
                    (
                        status,
                        headers,
                        serde_json::from_str(&text).unwrap_or(Value::String(text)),
                    )
                }
                Err(_) => (0, reqwest::header::HeaderMap::new(), Value::Null),
            }
        })
    }

    fn get(&self, s: &Server, path: &str, key: &str) -> (u16, Value) {
        let (st, _, b) = self.call(s, "GET", path, Some(key), None);
        (st, b)
    }

    fn post_json(&self, s: &Server, path: &str, key: &str, body: &Value) -> (u16, Value) {
        let (st, _, b) = self.call(
            s,
            "POST",
            path,
            Some(key),
            Some(("application/json", body.to_string().into_bytes())),
        );
        (st, b)
    }

    /// Polls pipeline `name` until `done` holds for its detail (30 s at most).
    fn wait_for(&self, s: &Server, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let (st, v) = self.get(s, &format!("/api/pipelines/{name}"), READ);
            if st == 200 && done(&v) {
                return v;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{name}: waited 30 s for {what}; last answer {st}: {v}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `k → (count, sum)` in the PostgreSQL table, polled until it equals `want`.
fn wait_for_counts(table: &str, want: &[(&str, i64, i64)]) {
    let want: Vec<String> = want
        .iter()
        .map(|(k, n, s)| format!("{k}|{n}|{s}"))
        .collect();
    let started = Instant::now();
    loop {
        let got: Vec<String> = psql(&format!("SELECT k, n, total FROM {table} ORDER BY k"))
            .lines()
            .map(str::to_string)
            .collect();
        if got == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{table}: want {want:?}, have {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// NDJSON rows `{"k": "a"|"b", "v": i}` for `range`.
fn rows(range: std::ops::Range<i64>) -> Vec<u8> {
    range
        .map(|i| json!({"k": if i % 2 == 0 { "a" } else { "b" }, "v": i}).to_string() + "\n")
        .collect::<String>()
        .into_bytes()
}

fn sums(range: std::ops::Range<i64>) -> (i64, i64, i64, i64) {
    let a: Vec<i64> = range.clone().filter(|i| i % 2 == 0).collect();
    let b: Vec<i64> = range.filter(|i| i % 2 != 0).collect();
    (
        a.len() as i64,
        a.iter().sum(),
        b.len() as i64,
        b.iter().sum(),
    )
}

fn ingest(c: &Client, s: &Server, range: std::ops::Range<i64>) {
    let (st, _, body) = c.call(
        s,
        "POST",
        "/ingest/events",
        Some(INGEST),
        Some(("application/x-ndjson", rows(range))),
    );
    assert_eq!(st, 200, "{body}");
}

/// Submit a pipeline that counts ingested rows per key into PostgreSQL; its counts go
/// on across a SIGTERM restart, a SIGKILL crash, a stop and a resume; the metrics and
/// the detail describe the run; delete refuses a running pipeline.
#[test]
fn pipelines_are_submitted_stopped_resumed_and_survive_restarts() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let table = format!("serve_counts_{}", std::process::id());
    psql(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (k text PRIMARY KEY, n bigint, total bigint)"
    ));
    let cfg = config(dir.path(), "");
    let port = crate::free_port();
    let c = Client::new(None);
    let server = Server::start(dir.path(), &cfg, port, "http", &c);
    let sql = format!(
        "CREATE TABLE events (k STRING, v BIGINT)
           WITH ('connector' = 'http', 'format' = 'json', 'ingest.ack' = 'checkpoint');
         CREATE TABLE counts (k STRING, n BIGINT, total BIGINT, PRIMARY KEY (k) NOT ENFORCED)
           WITH ('connector' = 'jdbc', 'url' = 'jdbc:postgresql://127.0.0.1:5432/test',
                 'table-name' = '{table}', 'username' = 'postgres');
         INSERT INTO counts SELECT k, COUNT(*), SUM(v) FROM events GROUP BY k;"
    );
    let (st, v) = c.post_json(
        &server,
        "/api/pipelines",
        SUBMIT,
        &json!({"name": "counts", "sql": sql}),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["status"], "running", "{v}");
    assert!(
        v["plan"].as_str().is_some_and(|p| p.contains("Dataflow")),
        "{v}"
    );
    ingest(&c, &server, 0..100);
    let (na, sa, nb, sb) = sums(0..100);
    wait_for_counts(&table, &[("a", na, sa), ("b", nb, sb)]);
    let v = c.wait_for(&server, "counts", "a checkpoint", |v| {
        v["checkpoint"]["completed"].as_u64().unwrap_or(0) > 0
    });
    assert_eq!(v["rows_in"], 100, "{v}");
    let ops = v["operators"].as_array().expect("operators");
    assert!(ops.len() >= 2, "{v}");
    assert!(
        ops.iter().any(|o| o["rows_in"].as_u64() == Some(100)),
        "{v}"
    );
    let graph = &v["graph"];
    assert!(
        graph["nodes"].as_array().is_some_and(|n| n.len() >= 2),
        "{v}"
    );
    assert!(
        graph["edges"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["kind"] == "hash")),
        "{v}"
    );
    // The metrics, read as Prometheus would.
    let (st, metrics) = c.get(&server, "/metrics", READ);
    assert_eq!(st, 200);
    let metrics = metrics.as_str().expect("text").to_string();
    for want in [
        "sluice_build_info{version=",
        "sluice_pipeline_up{pipeline=\"counts\"} 1",
        "sluice_source_rows_total{pipeline=\"counts\"} 100",
        "sluice_sink_rows_total{pipeline=\"counts\"}",
        "sluice_checkpoints_failed_total{pipeline=\"counts\"} 0",
        "# TYPE sluice_operator_batch_seconds histogram",
        "sluice_operator_batch_seconds_bucket{pipeline=\"counts\",operator=",
        "le=\"+Inf\"}",
        "sluice_operator_blocked_seconds_total{pipeline=\"counts\",operator=",
        "sluice_operator_bytes_in_total{pipeline=\"counts\",operator=",
        "sluice_operator_bytes_out_total{pipeline=\"counts\",operator=",
        "sluice_operator_input_queue_fill_ratio{pipeline=\"counts\",operator=",
        "sluice_operator_state_bytes{pipeline=\"counts\",operator=",
        "sluice_checkpoint_last_completed_timestamp_seconds{pipeline=\"counts\"}",
    ] {
        assert!(metrics.contains(want), "/metrics lacks {want}:\n{metrics}");
    }
    let values = |name: &str| crate::metric_values(&metrics, name);
    // 100 rows of a BIGINT and a STRING are some kilobytes as Arrow arrays.
    let bytes = values("sluice_operator_bytes_out_total{pipeline=\"counts\"");
    assert!(bytes.iter().any(|b| *b >= 800.0), "{bytes:?}");
    // The aggregate's state: a few keys, some hundreds of bytes in the checkpoint.
    let state = values("sluice_operator_state_bytes{pipeline=\"counts\"");
    assert!(state.iter().any(|b| *b > 0.0), "{state:?}");
    let fill = values("sluice_operator_input_queue_fill_ratio{pipeline=\"counts\"");
    assert!(
        !fill.is_empty() && fill.iter().all(|f| (0.0..=1.0).contains(f)),
        "{fill:?}"
    );
    let value = |name: &str| crate::metric_value(&metrics, name);
    assert!(value("sluice_checkpoints_completed_total{pipeline=\"counts\"}") >= 1.0);
    // Ingest → emit across the hash repartition into the aggregate.
    assert!(value("sluice_latency_seconds_count{pipeline=\"counts\"}") >= 1.0);
    let done = value("sluice_checkpoint_last_completed_timestamp_seconds{pipeline=\"counts\"}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    assert!((now - 120.0..=now + 1.0).contains(&done), "{done} vs {now}");
    // Deleting a running pipeline is refused.
    let (st, _, v) = c.call(
        &server,
        "DELETE",
        "/api/pipelines/counts",
        Some(SUBMIT),
        None,
    );
    assert_eq!(st, 409, "{v}");

    // SIGTERM: a savepoint; the next start resumes it with its counts.
    let err = server.terminate();
    assert!(err.contains("savepoint"), "{err}");
    assert!(
        dir.path()
            .join("data/pipelines/counts/pipeline.json")
            .exists()
    );
    let server = Server::start(dir.path(), &cfg, port, "http", &c);
    let v = c.wait_for(&server, "counts", "running again", |v| {
        v["status"] == "running"
    });
    assert!(v["restored_from"].as_u64().is_some(), "{v}");
    ingest(&c, &server, 100..200);
    let (na, sa, nb, sb) = sums(0..200);
    wait_for_counts(&table, &[("a", na, sa), ("b", nb, sb)]);

    // SIGKILL: the last checkpoint holds every acknowledged row.
    server.kill();
    let server = Server::start(dir.path(), &cfg, port, "http", &c);
    c.wait_for(&server, "counts", "running again", |v| {
        v["status"] == "running"
    });
    ingest(&c, &server, 200..250);
    let (na, sa, nb, sb) = sums(0..250);
    wait_for_counts(&table, &[("a", na, sa), ("b", nb, sb)]);

    // Stop through the API: a savepoint; the ingest endpoint goes away.
    let (st, v) = c.post_json(&server, "/api/pipelines/counts/stop", SUBMIT, &json!({}));
    assert_eq!(st, 202, "{v}");
    let v = c.wait_for(&server, "counts", "stopped", |v| v["status"] == "stopped");
    assert!(v["savepoint"].as_u64().is_some(), "{v}");
    let (st, _, _) = c.call(
        &server,
        "POST",
        "/ingest/events",
        Some(INGEST),
        Some(("application/x-ndjson", rows(0..1))),
    );
    assert_eq!(st, 404);
    let (st, v) = c.post_json(&server, "/api/pipelines/counts/stop", SUBMIT, &json!({}));
    assert_eq!(st, 409, "{v}");
    // It stays stopped across a restart, then resumes from its savepoint.
    server.terminate();
    let server = Server::start(dir.path(), &cfg, port, "http", &c);
    let (_, v) = c.get(&server, "/api/pipelines/counts", READ);
    assert_eq!(v["status"], "stopped", "{v}");
    let (st, v) = c.post_json(&server, "/api/pipelines/counts/resume", SUBMIT, &json!({}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "running", "{v}");
    ingest(&c, &server, 250..300);
    let (na, sa, nb, sb) = sums(0..300);
    wait_for_counts(&table, &[("a", na, sa), ("b", nb, sb)]);
    let (_, list) = c.get(&server, "/api/pipelines", READ);
    assert_eq!(list["pipelines"][0]["name"], "counts", "{list}");

    // Stop and delete: gone from the API and the data directory.
    c.post_json(&server, "/api/pipelines/counts/stop", ADMIN, &json!({}));
    c.wait_for(&server, "counts", "stopped", |v| v["status"] == "stopped");
    let (st, _, v) = c.call(
        &server,
        "DELETE",
        "/api/pipelines/counts",
        Some(ADMIN),
        None,
    );
    assert_eq!(st, 204, "{v}");
    assert_eq!(c.get(&server, "/api/pipelines/counts", READ).0, 404);
    assert!(!dir.path().join("data/pipelines/counts").exists());
    server.terminate();
    psql(&format!("DROP TABLE IF EXISTS {table}"));
}

/// Every endpoint refuses a missing, wrong or under-scoped key (health excepted), and
/// every malformed request gets a clear 4xx; secrets never come back; the OpenAPI
/// document lists every route; the server will not expose itself without keys.
#[test]
fn keys_scopes_and_malformed_requests_are_refused() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let cfg = config(dir.path(), "[limits]\nmax_body_bytes = 65536");
    let port = crate::free_port();
    let c = Client::new(None);
    let s = Server::start(dir.path(), &cfg, port, "http", &c);
    let sql = "CREATE TABLE src (k STRING) WITH ('connector' = 'http', 'auth.token' = '${TOKEN_FROM_ENV}');
               CREATE TABLE dst (k STRING) WITH ('connector' = 'blackhole');
               INSERT INTO dst SELECT k FROM src;";
    let (st, v) = c.post_json(
        &s,
        "/api/pipelines",
        ADMIN,
        &json!({"name": "p1", "sql": sql}),
    );
    assert_eq!(st, 201, "{v}");
    let routes: [(&str, &str); 10] = [
        ("GET", "/api/pipelines"),
        ("POST", "/api/pipelines"),
        ("GET", "/api/pipelines/p1"),
        ("DELETE", "/api/pipelines/p1"),
        ("POST", "/api/pipelines/p1/stop"),
        ("POST", "/api/pipelines/p1/resume"),
        ("GET", "/api/pipelines/p1/dead-letters"),
        ("GET", "/api/openapi.json"),
        ("GET", "/metrics"),
        ("POST", "/ingest/nope"),
    ];
    for (m, path) in routes {
        let (st, h, v) = c.call(&s, m, path, None, None);
        assert_eq!(st, 401, "{m} {path} without a key: {v}");
        assert_eq!(
            h.get("www-authenticate").map(|v| v.as_bytes()),
            Some(&b"Bearer"[..]),
            "{m} {path}"
        );
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains("API key")),
            "{m} {path}: {v}"
        );
        let (st, _, v) = c.call(&s, m, path, Some("not-a-key"), None);
        assert_eq!(st, 401, "{m} {path} with a wrong key: {v}");
    }
    // Guessing keys is slowed down: wrong keys from one address get 429 after a burst.
    let guessed: Vec<u16> = (0..30)
        .map(|i| {
            c.call(
                &s,
                "GET",
                "/api/pipelines",
                Some(&format!("guess-{i}")),
                None,
            )
            .0
        })
        .collect();
    assert!(guessed.contains(&429), "{guessed:?}");
    assert!(
        guessed.iter().all(|st| *st == 401 || *st == 429),
        "{guessed:?}"
    );
    std::thread::sleep(Duration::from_millis(1100));
    // Under-scoped keys.
    for (m, path, key) in [
        ("POST", "/api/pipelines", READ),
        ("POST", "/api/pipelines/p1/stop", READ),
        ("DELETE", "/api/pipelines/p1", INGEST),
        ("GET", "/api/pipelines", INGEST),
        ("GET", "/metrics", INGEST),
        ("POST", "/ingest/nope", READ),
        ("POST", "/ingest/nope", SUBMIT),
    ] {
        let (st, _, v) = c.call(&s, m, path, Some(key), None);
        assert_eq!(st, 403, "{m} {path}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains("scope")),
            "{v}"
        );
    }
    // X-API-Key works too; health needs nothing.
    let st = c.rt.block_on(async {
        c.http
            .get(format!("{}/api/pipelines", s.base))
            .header("x-api-key", READ)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    });
    assert_eq!(st, 200);
    assert_eq!(c.call(&s, "GET", "/healthz", None, None).0, 200);
    assert_eq!(c.call(&s, "GET", "/readyz", None, None).0, 200);
    // A table's own token still opens its endpoint without an API key.
    let (st, _, v) = c.call(
        &s,
        "POST",
        "/ingest/src",
        Some("env-secret-value-77"),
        Some(("application/json", br#"{"k": "x"}"#.to_vec())),
    );
    assert_eq!(st, 200, "{v}");
    // Malformed submissions.
    let huge = vec![b'x'; 70_000];
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "application/json",
            b"not json".to_vec(),
            400,
            "not a valid request",
        ),
        ("application/json", b"".to_vec(), 400, "not a valid request"),
        (
            "application/json",
            vec![0xff, 0xfe, 0x00, 0x01],
            400,
            "not a valid request",
        ),
        (
            "application/json",
            br#"{"name": "x"}"#.to_vec(),
            400,
            "missing field `sql`",
        ),
        (
            "application/json",
            br#"{"name": "x", "sql": "", "nope": 1}"#.to_vec(),
            400,
            "unknown field",
        ),
        (
            "application/json",
            br#"["x"]"#.to_vec(),
            400,
            "not a valid request",
        ),
        (
            "application/json",
            br#"{"name": "../etc", "sql": "SELECT 1"}"#.to_vec(),
            400,
            "bad pipeline name",
        ),
        (
            "application/json",
            br#"{"name": "e", "sql": "  "}"#.to_vec(),
            400,
            "has no SQL",
        ),
        (
            "text/plain",
            br#"{"name": "x", "sql": "x"}"#.to_vec(),
            415,
            "application/json",
        ),
        ("application/json", huge, 413, ""),
        (
            "application/json",
            json!({"name": "p1", "sql": sql}).to_string().into_bytes(),
            409,
            "exists",
        ),
    ];
    for (ct, body, want, text) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let (st, _, v) = c.call(&s, "POST", "/api/pipelines", Some(SUBMIT), Some((ct, body)));
        assert_eq!(st, want, "{shown}: {v}");
        if !text.is_empty() {
            assert!(
                v["error"].as_str().is_some_and(|e| e.contains(text)),
                "{shown}: {v}"
            );
        }
    }
    // SQL that does not plan: the line and column come back for the editor.
    let (st, v) = c.post_json(
        &s,
        "/api/pipelines",
        SUBMIT,
        &json!({"name": "bad", "sql": "CREATE TABLE t (k STRING) WITH ('connector' = 'blackhole');\nINSERT INTO t SELEC k FROM t;"}),
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["line"], 2, "{v}");
    assert!(v["column"].as_u64().is_some(), "{v}");
    assert_eq!(
        c.get(&s, "/api/pipelines/bad", READ).0,
        404,
        "nothing is kept of bad SQL"
    );
    // Statements too large to plan safely are refused; one just under the limit plans
    // (on a runtime thread with room for the recursion), and the server lives on.
    let table = "CREATE TABLE t (a BIGINT) WITH ('connector' = 'http');
                 CREATE TABLE o (a BIGINT) WITH ('connector' = 'blackhole');";
    for (name, insert, want) in [
        (
            "sum-big",
            format!("INSERT INTO o SELECT a{} FROM t", " + 1".repeat(12_000)),
            400,
        ),
        (
            "deep",
            format!(
                "INSERT INTO o SELECT {}a{} FROM t",
                "(".repeat(3_000),
                ")".repeat(3_000)
            ),
            400,
        ),
        (
            "sum-ok",
            format!("INSERT INTO o SELECT a{} FROM t", " + 1".repeat(1_900)),
            201,
        ),
    ] {
        let (st, v) = c.post_json(
            &s,
            "/api/pipelines",
            SUBMIT,
            &json!({"name": name, "sql": format!("{table}\n{insert}"), "start": false}),
        );
        assert_eq!(st, want, "{name}: {v}");
        if want == 400 {
            assert_eq!(v["line"], 3, "{name}: {v}");
        }
    }
    assert_eq!(c.call(&s, "GET", "/healthz", None, None).0, 200);
    // Unknown pipelines and routes.
    for (m, path) in [
        ("GET", "/api/pipelines/none"),
        ("POST", "/api/pipelines/none/stop"),
        ("POST", "/api/pipelines/none/resume"),
        ("DELETE", "/api/pipelines/none"),
        ("GET", "/api/pipelines/none/dead-letters"),
        ("GET", "/api/nothing"),
        ("GET", "/api/pipelines/%2e%2e%2fetc"),
    ] {
        let (st, _, v) = c.call(&s, m, path, Some(ADMIN), None);
        assert_eq!(st, 404, "{m} {path}: {v}");
    }
    let (st, _, _) = c.call(
        &s,
        "GET",
        "/api/pipelines/p1/dead-letters?limit=-1",
        Some(READ),
        None,
    );
    assert_eq!(st, 400);
    // The secret from the environment never comes back.
    let (_, v) = c.get(&s, "/api/pipelines/p1", READ);
    let shown = v.to_string();
    assert!(!shown.contains("env-secret-value-77"), "{shown}");
    // The OpenAPI document describes every route.
    let (st, doc) = c.get(&s, "/api/openapi.json", READ);
    assert_eq!(st, 200);
    for (m, path) in routes {
        let templ = path.replace("/p1", "/{name}").replace("/nope", "/{table}");
        let op = &doc["paths"][&templ][m.to_ascii_lowercase()];
        assert!(op.is_object(), "{m} {templ} is not in the OpenAPI document");
    }
    assert!(doc["paths"]["/sse/{table}"]["get"].is_object());
    // A bounded pipeline finishes, and is recorded as not to be started again.
    let bounded =
        "CREATE TABLE g (a BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '100');
                   CREATE TABLE o (a BIGINT) WITH ('connector' = 'blackhole');
                   INSERT INTO o SELECT a FROM g;";
    let (st, v) = c.post_json(
        &s,
        "/api/pipelines",
        SUBMIT,
        &json!({"name": "once", "sql": bounded}),
    );
    assert_eq!(st, 201, "{v}");
    let v = c.wait_for(&s, "once", "finished", |v| v["status"] == "finished");
    assert_eq!(v["rows_in"], 100, "{v}");
    let started = Instant::now();
    loop {
        let def = std::fs::read_to_string(dir.path().join("data/pipelines/once/pipeline.json"))
            .unwrap_or_default();
        if def.contains("\"running\": false") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{def}");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.terminate();
    // Without keys the server stays on loopback.
    let open = dir.path().join("open.toml");
    std::fs::write(&open, "data_dir = \"data2\"\n").expect("writes");
    let out = crate::sluice(
        dir.path(),
        &[
            "serve",
            "--config",
            open.to_str().expect("utf-8"),
            "--listen",
            "0.0.0.0:0",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", crate::text(&out).1);
    assert!(
        crate::text(&out).1.contains("without API keys"),
        "{}",
        crate::text(&out).1
    );
}

/// TLS from a certificate and key (the API and the PostgreSQL endpoint), and the
/// per-key rate limit.
#[test]
fn tls_and_rate_limits() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    crate::make_certs(dir.path());
    let pg_port = crate::free_port();
    let cfg = config(
        dir.path(),
        &format!(
            "pg_listen = \"127.0.0.1:{pg_port}\"\n[tls]\ncert = \"server.crt\"\nkey = \"server.key\"\n\
             [limits]\nrequests_per_second = 5"
        ),
    );
    let port = crate::free_port();
    let c = Client::new(Some(&dir.path().join("ca.crt")));
    let s = Server::start(dir.path(), &cfg, port, "https", &c);
    assert_eq!(c.get(&s, "/api/pipelines", READ).0, 200);
    // Plain HTTP to the TLS port gets no answer; a client that does not trust the CA
    // is refused.
    let plain = format!("http://127.0.0.1:{port}");
    assert_eq!(c.call(plain.as_str(), "GET", "/healthz", None, None).0, 0);
    let untrusting = Client::new(Some(&dir.path().join("other.crt")));
    assert_eq!(untrusting.call(&s, "GET", "/healthz", None, None).0, 0);
    // Five requests a second per key: a burst of 20 is cut, with Retry-After.
    let mut limited = 0;
    let started = Instant::now();
    for _ in 0..20 {
        let (st, h, _) = c.call(&s, "GET", "/api/pipelines", Some(READ), None);
        if st == 429 {
            limited += 1;
            assert!(h.get("retry-after").is_some());
        }
    }
    // The burst of 5 (one was spent above) plus 5 a second of refill, whatever the
    // machine's speed.
    let allowed = 20 - limited;
    let budget = 5 + (started.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    assert!(
        allowed <= budget,
        "{allowed} of 20 allowed, budget {budget}"
    );
    if started.elapsed() < Duration::from_secs(2) {
        assert!(limited >= 5, "{limited} of 20 limited");
    }
    // Another key has its own budget.
    assert_eq!(c.get(&s, "/api/pipelines", ADMIN).0, 200);
    // The PostgreSQL endpoint speaks TLS with the same certificate, and only TLS:
    // psql verifying it against the CA gets in; against another CA, or without TLS,
    // it is refused.
    let psql = |mode: &str, ca: &str| {
        Command::new("psql")
            .arg(format!(
                "host=localhost port={pg_port} user=dashboard dbname=sluice sslmode={mode} \
                 sslrootcert={}",
                dir.path().join(ca).display()
            ))
            .args(["-At", "-c", "SELECT 1 + 1 AS two"])
            .env("PGPASSWORD", READ)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .expect("psql runs")
    };
    let out = psql("verify-full", "ca.crt");
    assert!(out.status.success(), "{}", crate::text(&out).1);
    assert_eq!(crate::text(&out).0.trim(), "2");
    let out = psql("verify-full", "other.crt");
    assert!(!out.status.success());
    assert!(
        crate::text(&out).1.contains("certificate"),
        "{}",
        crate::text(&out).1
    );
    // Without TLS the password (a key) would cross in the clear: refused.
    let out = psql("disable", "ca.crt");
    assert!(!out.status.success());
    assert!(
        crate::text(&out).1.contains("TLS connections only"),
        "{}",
        crate::text(&out).1
    );
    s.terminate();
}

/// `sluice run --http` shows its one pipeline read-only through the same API, and its
/// metrics: rows stamped with the current time reach the sink with an event time →
/// emit latency of well under a minute; with `--http-config`, behind keys and TLS.
#[test]
fn run_shows_its_pipeline_read_only() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let file = dir.path().join("one.sql");
    std::fs::write(
        &file,
        "CREATE TABLE src (k STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
           WITH ('connector' = 'http');
         CREATE TABLE dst (k STRING, ts TIMESTAMP(3)) WITH ('connector' = 'blackhole');
         INSERT INTO dst SELECT k, ts FROM src;",
    )
    .expect("writes");
    let port = crate::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "-q", "--http", &format!("127.0.0.1:{port}")])
        .arg(&file)
        .current_dir(dir.path())
        .env("SLUICE_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sluice runs");
    crate::wait_for_port(port, &mut child, "sluice run --http");
    let c = Client::new(None);
    let s = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let (st, _, v) = c.call(
        &s,
        "POST",
        "/ingest/src",
        None,
        Some((
            "application/json",
            format!(r#"[{{"k": "a", "ts": {now}}}, {{"k": "b", "ts": {now}}}]"#).into_bytes(),
        )),
    );
    assert_eq!(st, 200, "{v}");
    let started = Instant::now();
    let list = loop {
        let (st, _, list) = c.call(&s, "GET", "/api/pipelines", None, None);
        assert_eq!(st, 200, "{list}");
        if list["pipelines"][0]["rows_in"] == 2 || started.elapsed() > Duration::from_secs(10) {
            break list;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(list["pipelines"][0]["name"], "one", "{list}");
    assert_eq!(list["pipelines"][0]["managed"], false, "{list}");
    assert_eq!(list["pipelines"][0]["rows_in"], 2, "{list}");
    let (st, _, v) = c.call(&s, "POST", "/api/pipelines/one/stop", None, None);
    assert_eq!(st, 409, "{v}");
    let (st, _, v) = c.call(
        &s,
        "POST",
        "/api/pipelines",
        None,
        Some(("application/json", br#"{"name": "x", "sql": "x"}"#.to_vec())),
    );
    assert_eq!(st, 409, "{v}");
    let (st, _, m) = c.call(&s, "GET", "/metrics", None, None);
    assert_eq!(st, 200);
    assert!(
        m.as_str()
            .is_some_and(|m| m.contains("sluice_source_rows_total{pipeline=\"one\"} 2")),
        "{m}"
    );
    let m = m.as_str().unwrap_or_default();
    let value = |name: &str| crate::metric_value(m, name);
    let count = value("sluice_event_time_latency_seconds_count{pipeline=\"one\"}");
    let sum = value("sluice_event_time_latency_seconds_sum{pipeline=\"one\"}");
    assert!(count >= 1.0 && (0.0..60.0).contains(&(sum / count)), "{m}");
    let mut child = s.child;
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    // With --http-config: the keys and TLS of a server configuration.
    crate::make_certs(dir.path());
    let cfg = config(
        dir.path(),
        "[tls]\ncert = \"server.crt\"\nkey = \"server.key\"",
    );
    let port = crate::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            "-q",
            "--http",
            &format!("127.0.0.1:{port}"),
            "--http-config",
        ])
        .arg(&cfg)
        .arg(&file)
        .current_dir(dir.path())
        .env("SLUICE_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sluice runs");
    crate::wait_for_port(port, &mut child, "sluice run --http --http-config");
    let c = Client::new(Some(&dir.path().join("ca.crt")));
    let s = Server {
        child,
        base: format!("https://127.0.0.1:{port}"),
    };
    assert_eq!(c.call(&s, "GET", "/healthz", None, None).0, 200);
    assert_eq!(c.call(&s, "GET", "/api/pipelines", None, None).0, 401);
    assert_eq!(c.get(&s, "/metrics", INGEST).0, 403);
    let (st, list) = c.get(&s, "/api/pipelines", READ);
    assert_eq!(
        (st, &list["pipelines"][0]["name"]),
        (200, &json!("one")),
        "{list}"
    );
    let mut child = s.child;
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// A `view` sink keeps the latest count per page; the API answers by key and as a
/// whole, and psql queries it with SQL over the PostgreSQL protocol (the password is
/// a read key); a server restart keeps it.
#[test]
fn views_answer_over_http_and_the_postgres_protocol() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let pg_port = crate::free_port();
    let cfg = config(dir.path(), &format!("pg_listen = \"127.0.0.1:{pg_port}\""));
    let port = crate::free_port();
    let c = Client::new(None);
    let s = Server::start(dir.path(), &cfg, port, "http", &c);
    let sql = "CREATE TABLE clicks (user_id BIGINT, url STRING) WITH ('connector' = 'http');
               CREATE TABLE per_url (url STRING, n BIGINT, users BIGINT, PRIMARY KEY (url) NOT ENFORCED)
                 WITH ('connector' = 'view');
               INSERT INTO per_url SELECT url, COUNT(*), COUNT(DISTINCT user_id) FROM clicks GROUP BY url;";
    let (st, v) = c.post_json(
        &s,
        "/api/pipelines",
        SUBMIT,
        &json!({"name": "pages", "sql": sql}),
    );
    assert_eq!(st, 201, "{v}");
    let clicks: String = (0..30)
        .map(|i| json!({"user_id": i % 4, "url": format!("/p{}", i % 3)}).to_string() + "\n")
        .collect();
    let (st, _, v) = c.call(
        &s,
        "POST",
        "/ingest/clicks",
        Some(INGEST),
        Some(("application/x-ndjson", clicks.into_bytes())),
    );
    assert_eq!(st, 200, "{v}");
    let started = Instant::now();
    let one = loop {
        let (st, v) = c.get(&s, "/api/views/per_url?url=/p1", READ);
        assert_eq!(st, 200, "{v}");
        if v["rows"][0]["n"] == 10 {
            break v;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(one["rows"][0]["users"], 4, "{one}");
    let (_, all) = c.get(&s, "/api/views/per_url", READ);
    assert_eq!(all["rows"].as_array().map(Vec::len), Some(3), "{all}");
    let (_, none) = c.get(&s, "/api/views/per_url?url=/nothing", READ);
    assert_eq!(none["rows"], json!([]), "{none}");
    let (_, list) = c.get(&s, "/api/views", READ);
    assert_eq!(list["views"][0]["name"], "per_url", "{list}");
    assert_eq!(list["views"][0]["key"], json!(["url"]), "{list}");
    for (path, want) in [
        ("/api/views/nope", 404),
        ("/api/views/per_url?user=1", 400),
        ("/api/views/per_url?limit=x", 400),
    ] {
        assert_eq!(c.get(&s, path, READ).0, want, "{path}");
    }
    assert_eq!(c.get(&s, "/api/views/per_url", INGEST).0, 403);
    // psql, with a read key as the password.
    let psql = |password: &str, sql: &str| {
        Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg_port.to_string(),
                "-U",
                "dashboard",
                "-d",
                "sluice",
                "-At",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .expect("psql runs")
    };
    let out = psql(
        READ,
        "SELECT url, n, users FROM per_url WHERE n >= 10 ORDER BY url",
    );
    assert!(out.status.success(), "{}", crate::text(&out).1);
    assert_eq!(crate::text(&out).0, "/p0|10|4\n/p1|10|4\n/p2|10|4\n");
    let out = psql(READ, "SELECT SUM(n) AS total FROM per_url;");
    assert_eq!(crate::text(&out).0.trim(), "30", "{}", crate::text(&out).1);
    for (password, sql, want) in [
        (INGEST, "SELECT 1", "password"),
        ("wrong", "SELECT 1", "password"),
        (READ, "SELECT nope FROM per_url", "nope"),
        (READ, "DROP TABLE per_url", "not supported"),
        (READ, "CREATE TABLE x (a INT)", "not supported"),
        (READ, "SELEC", "SELEC"),
    ] {
        let out = psql(password, sql);
        assert!(!out.status.success(), "{sql} with {password} succeeded");
        let err = crate::text(&out).1;
        assert!(
            err.to_lowercase().contains(&want.to_lowercase()),
            "{sql}: {err}"
        );
    }
    // The view is in the savepoint SIGTERM takes: after a restart it holds every
    // key again before any new input.
    s.terminate();
    let s = Server::start(dir.path(), &cfg, port, "http", &c);
    let started = Instant::now();
    loop {
        let (st, all) = c.get(&s, "/api/views/per_url", READ);
        if st == 200 && all["rows"].as_array().map(Vec::len) == Some(3) {
            assert_eq!(
                all["rows"][1],
                json!({"url": "/p1", "n": 10, "users": 4}),
                "{all}"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{st} {all}");
        std::thread::sleep(Duration::from_millis(100));
    }
    s.terminate();
}
