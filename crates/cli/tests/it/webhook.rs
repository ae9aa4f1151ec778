//! The `webhook` sink against an HTTP server written here (std only, on a loopback
//! port): it answers as each test scripts it and records every request.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::text;

/// One request the server got.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) path: String,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: String,
}

/// How the server answers request number `n` (from 0, per path): status and headers.
pub(crate) type Answer =
    dyn Fn(usize, &Request) -> (u16, Vec<(&'static str, String)>) + Send + Sync;

pub(crate) struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    tls: bool,
}

impl Server {
    pub(crate) fn start(answer: Box<Answer>) -> Server {
        Server::start_with(answer, None)
    }

    /// An HTTPS server: TLS with `config` in front of every connection (a failed
    /// handshake closes it).
    pub(crate) fn start_with(
        answer: Box<Answer>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("bound").port();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let answer: Arc<Answer> = Arc::from(answer);
        let seen = requests.clone();
        let secure = tls.is_some();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (seen, answer, tls) = (seen.clone(), answer.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve(stream, &seen, answer.as_ref()),
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        let tls = rustls::StreamOwned::new(conn, stream);
                        serve(tls, &seen, answer.as_ref());
                    }
                });
            }
        });
        Server {
            port,
            requests,
            tls: secure,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn requests(&self, path: &str) -> Vec<Request> {
        self.requests
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

/// Answers the requests of one keep-alive connection.
fn serve(stream: impl Read + Write, seen: &Mutex<Vec<Request>>, answer: &Answer) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Request {
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        let n = {
            let mut s = seen.lock().expect("not poisoned");
            let n = s.iter().filter(|r| r.path == request.path).count();
            s.push(request.clone());
            n
        };
        let (status, extra) = answer(n, &request);
        let mut response = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n");
        for (k, v) in extra {
            response.push_str(&format!("{k}: {v}\r\n"));
        }
        response.push_str("\r\nok");
        let writer = reader.get_mut();
        if writer.write_all(response.as_bytes()).is_err() || writer.flush().is_err() {
            return;
        }
    }
}

fn write_file(dir: &Path, name: &str, content: &str) -> std::path::PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, content).expect("works in a temp dir");
    file
}

/// Sensor rows `id,device,temp`; device names carry a quote and a backslash.
fn input(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut csv = String::new();
    for i in 0..n {
        csv.push_str(&format!("{i},\"d\"\"{}\\x\",{}\n", i % 4, 80 + i % 20));
    }
    write_file(dir, "in.csv", &csv)
}

/// Every row arrives once per sink, through 503s, a 429 with Retry-After and a bearer
/// token from the environment: one request per row, JSON arrays of 25 rows, and a
/// body template whose values are escaped for JSON.
#[test]
fn webhook_delivers_every_row_through_failures() {
    let server = Server::start(Box::new(|n, r| match (r.path.as_str(), n) {
        ("/rows", 0..=2) => (503, vec![]),
        ("/rows", 5) => (429, vec![("retry-after", "1".to_string())]),
        ("/batch", 1) => (500, vec![]),
        _ => (200, vec![]),
    }));
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let path = input(dir.path(), 60).display().to_string();
    let retry = "'sink.max-retries' = '5', 'sink.retry.initial-backoff' = '20 ms'";
    let sql = write_file(
        dir.path(),
        "pipeline.sql",
        &format!(
            "CREATE TABLE readings (id BIGINT, device STRING, temp INT)
               WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'csv');
             CREATE TABLE per_row (id BIGINT, device STRING, temp INT)
               WITH ('connector' = 'webhook', 'url' = '{}', {retry},
                     'headers.Authorization' = 'Bearer ${{WEBHOOK_TOKEN}}');
             CREATE TABLE batched (id BIGINT, temp INT)
               WITH ('connector' = 'webhook', 'url' = '{}', {retry},
                     'sink.batch.max-rows' = '25', 'method' = 'PUT');
             CREATE TABLE alerts (device STRING, temp INT)
               WITH ('connector' = 'webhook', 'url' = '{}', {retry},
                     'body.template' = '{{\"text\": \"{{{{device}}}} is at {{{{temp}}}}\"}}');
             INSERT INTO per_row SELECT * FROM readings;
             INSERT INTO batched SELECT id, temp FROM readings;
             INSERT INTO alerts SELECT device, temp FROM readings WHERE temp >= 98;",
            server.url("/rows"),
            server.url("/batch"),
            server.url("/alerts"),
        ),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "-q", "-w", "2", sql.to_str().expect("utf-8")])
        .current_dir(dir.path())
        .env("SLUICE_LOG", "error")
        .env("WEBHOOK_TOKEN", "s3cret-token")
        .output()
        .expect("sluice runs");
    assert!(out.status.success(), "{}", text(&out).1);
    // One accepted request per row (failed attempts are not accepted).
    let rows = server.requests("/rows");
    let mut ids: Vec<i64> = Vec::new();
    for (n, r) in rows.iter().enumerate() {
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some("Bearer s3cret-token")
        );
        assert_eq!(
            r.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        if matches!(n, 0..=2 | 5) {
            continue;
        }
        let row: serde_json::Value = serde_json::from_str(&r.body).expect("a JSON row");
        let id = row["id"].as_i64().expect("id");
        assert_eq!(
            row["device"].as_str(),
            Some(format!("d\"{}\\x", id % 4).as_str())
        );
        ids.push(id);
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..60).collect::<Vec<_>>(), "every row once");
    assert_eq!(rows.len(), 64, "60 rows and 4 refused attempts");
    // Batches of at most 25 rows as JSON arrays; the refused one came again.
    let mut ids: Vec<i64> = Vec::new();
    for (n, r) in server.requests("/batch").iter().enumerate() {
        let arr: Vec<serde_json::Value> = serde_json::from_str(&r.body).expect("a JSON array");
        assert!(!arr.is_empty() && arr.len() <= 25, "{}", arr.len());
        if n != 1 {
            ids.extend(arr.iter().map(|v| v["id"].as_i64().expect("id")));
        }
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..60).collect::<Vec<_>>(), "every row once");
    // The template, valid JSON with the values escaped.
    let alerts = server.requests("/alerts");
    assert_eq!(alerts.len(), 6, "temps 98 and 99 of 60 rows");
    for r in alerts {
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("valid JSON");
        let t = v["text"].as_str().expect("text");
        assert!(
            t.starts_with("d\"") && (t.ends_with("is at 98") || t.ends_with("is at 99")),
            "{t}"
        );
    }
    // The secret never shows in what Sluice prints.
    assert!(!text(&out).1.contains("s3cret-token"));
}

/// A server that keeps failing: each row is retried, then dead-lettered with the
/// reason and its body; after three failed rows the circuit opens and the rest go to
/// the dead letters without a request. A 400 is not retried. The pipeline succeeds.
#[test]
fn webhook_dead_letters_after_the_last_retry_and_opens_the_circuit() {
    let server = Server::start(Box::new(|_, r| match r.path.as_str() {
        "/bad" => (400, vec![]),
        "/moved" => (301, vec![("location", "/elsewhere".to_string())]),
        "/elsewhere" => (200, vec![]),
        _ => (500, vec![]),
    }));
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let path = input(dir.path(), 20).display().to_string();
    let sql = write_file(
        dir.path(),
        "pipeline.sql",
        &format!(
            "CREATE TABLE readings (id BIGINT, device STRING, temp INT)
               WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'csv');
             CREATE TABLE down (id BIGINT)
               WITH ('connector' = 'webhook', 'url' = '{}', 'sink.max-retries' = '2',
                     'sink.retry.initial-backoff' = '10 ms', 'sink.max-concurrent-requests' = '1',
                     'sink.circuit-breaker.failures' = '3', 'sink.circuit-breaker.reset' = '10 min',
                     'sink.parallelism' = '1');
             CREATE TABLE bad (id BIGINT)
               WITH ('connector' = 'webhook', 'url' = '{}', 'sink.parallelism' = '1');
             CREATE TABLE moved (id BIGINT)
               WITH ('connector' = 'webhook', 'url' = '{}', 'sink.parallelism' = '1');
             INSERT INTO down SELECT id FROM readings;
             INSERT INTO bad SELECT id FROM readings WHERE id < 5;
             INSERT INTO moved SELECT id FROM readings WHERE id = 0;",
            server.url("/down"),
            server.url("/bad"),
            server.url("/moved"),
        ),
    );
    let out = crate::sluice(dir.path(), &["run", "-q", sql.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(
        server.requests("/down").len(),
        9,
        "3 rows × 3 attempts, then the circuit is open"
    );
    assert_eq!(server.requests("/bad").len(), 5, "a 400 is not retried");
    let dead =
        std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).expect("dead letters");
    let letters: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    let of = |t: &str| {
        letters
            .iter()
            .filter(|l| l["table"] == t)
            .collect::<Vec<_>>()
    };
    let down = of("down");
    assert_eq!(down.len(), 20, "{dead}");
    let retried = down
        .iter()
        .filter(|l| {
            l["reason"]
                .as_str()
                .is_some_and(|r| r.contains("HTTP 500") && r.contains("after 3 attempts"))
        })
        .count();
    let open = down
        .iter()
        .filter(|l| l["reason"].as_str().is_some_and(|r| r.contains("circuit")))
        .count();
    assert_eq!((retried, open), (3, 17), "{dead}");
    assert!(
        down.iter()
            .all(|l| l["raw"].as_str().is_some_and(|r| r.starts_with("{\"id\":"))),
        "{dead}"
    );
    // A redirect is not followed (it would become a GET without the body).
    assert!(server.requests("/elsewhere").is_empty());
    let moved = of("moved");
    assert_eq!(moved.len(), 1, "{dead}");
    assert!(
        moved[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("redirects to /elsewhere")),
        "{dead}"
    );
    let bad = of("bad");
    assert_eq!(bad.len(), 5);
    assert!(bad.iter().all(|l| {
        l["reason"]
            .as_str()
            .is_some_and(|r| r.contains("HTTP 400") && r.contains("not retried"))
    }));
}

/// `https://`: a server of the test's own behind TLS (a certificate of the test's CA).
/// The sink that trusts that CA through `tls.root-cert` delivers every row; the one
/// that trusts only the system's roots never gets past the handshake, and its rows
/// are dead-lettered with the certificate named as the reason.
#[test]
fn webhook_over_https_trusts_its_root_cert_only() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let acceptor = crate::make_certs_and_acceptor(dir.path());
    let server = Server::start_with(
        Box::new(|_, _| (200, vec![])),
        Some(acceptor.config().clone()),
    );
    let path = input(dir.path(), 30).display().to_string();
    let ca = dir.path().join("ca.crt").display().to_string();
    let sql = write_file(
        dir.path(),
        "pipeline.sql",
        &format!(
            "CREATE TABLE readings (id BIGINT, device STRING, temp INT)
               WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'csv');
             CREATE TABLE trusted (id BIGINT, temp INT)
               WITH ('connector' = 'webhook', 'url' = '{}', 'tls.root-cert' = '{ca}');
             CREATE TABLE untrusted (id BIGINT)
               WITH ('connector' = 'webhook', 'url' = '{}', 'sink.max-retries' = '1',
                     'sink.retry.initial-backoff' = '10 ms');
             INSERT INTO trusted SELECT id, temp FROM readings;
             INSERT INTO untrusted SELECT id FROM readings WHERE id < 3;",
            server.url("/trusted"),
            server.url("/untrusted"),
        ),
    );
    let out = crate::sluice(dir.path(), &["run", "-q", sql.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out).1);
    let mut ids: Vec<i64> = server
        .requests("/trusted")
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.body).expect("JSON")["id"]
                .as_i64()
                .expect("id")
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..30).collect::<Vec<_>>());
    assert!(server.requests("/untrusted").is_empty());
    let dead =
        std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).expect("dead letters");
    let reasons: Vec<String> = dead
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON lines"))
        .filter(|l| l["table"] == "untrusted")
        .map(|l| l["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(reasons.len(), 3, "{dead}");
    assert!(
        reasons
            .iter()
            .all(|r| r.contains("certificate") || r.contains("UnknownIssuer")),
        "{dead}"
    );
}

/// Mistakes name the option and the fix.
#[test]
fn webhook_mistakes_are_explained() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let cases = [
        ("'format' = 'json'", "needs option 'url'"),
        ("'url' = 'ftp://x'", "is not an http:// or https:// URL"),
        (
            "'url' = 'http://x', 'method' = 'GET'",
            "is not POST, PUT or PATCH",
        ),
        (
            "'url' = 'http://x', 'headers.Bad Name' = 'v'",
            "is not a header name",
        ),
        (
            "'url' = 'http://x', 'body.template' = '{{nope}}'",
            "names no column",
        ),
        (
            "'url' = 'http://x', 'body.template' = '{{k}}', 'sink.batch.max-rows' = '5'",
            "one request per row",
        ),
        (
            "'url' = 'http://x', 'tls.root-cert' = '/etc/hostname'",
            "applies to https:// URLs",
        ),
        ("'url' = 'http://x', 'sink.retries' = '3'", "unknown option"),
    ];
    for (options, want) in cases {
        let sql = write_file(
            dir.path(),
            "p.sql",
            &format!(
                "CREATE TABLE src (k STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '3');
                 CREATE TABLE dst (k STRING) WITH ('connector' = 'webhook', {options});
                 INSERT INTO dst SELECT k FROM src;"
            ),
        );
        let out = crate::sluice(dir.path(), &["run", sql.to_str().expect("utf-8")]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{options}: {stderr}");
        assert!(
            stderr.contains(want),
            "{options}: want '{want}' in {stderr}"
        );
    }
}
