//! The `http` source: `sluice run --http ADDR` serves `POST /ingest/<table>`; requests
//! are made by the test over real HTTP (reqwest, and raw TCP for a slow client), and
//! what the pipeline wrote is read back after it stops on SIGINT.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::text;

/// `sluice run --http 127.0.0.1:<port>` on `sql`, waiting until `/healthz` answers.
fn start(dir: &Path, sql: &str, port: u16) -> Child {
    let file = dir.join("pipeline.sql");
    std::fs::write(&file, sql).expect("works in a temp dir");
    start_file(dir, &file, &[], port)
}

/// `sluice run --http 127.0.0.1:<port> <args> <file>`, waiting until `/healthz`
/// answers. The caller waits for the child ([`stop`]).
#[allow(clippy::zombie_processes)]
fn start_file(dir: &Path, file: &Path, args: &[&str], port: u16) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "-q", "--http", &format!("127.0.0.1:{port}")])
        .args(args)
        .arg(file)
        .current_dir(dir)
        .env("SLUICE_LOG", "error")
        .env("INGEST_TOKEN", "tok-123")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sluice starts");
    let started = Instant::now();
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut r = String::new();
            let _ = s.read_to_string(&mut r);
            if r.contains(" 200 ") {
                return child;
            }
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the pipeline as Ctrl-C does (it drains and flushes), and waits for it.
fn stop(mut child: Child) -> String {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let started = Instant::now();
    while child.try_wait().expect("polls").is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the pipeline did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    err
}

struct Reply {
    status: u16,
    body: serde_json::Value,
    headers: reqwest::header::HeaderMap,
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    content_type: &str,
    token: Option<&str>,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut req = client
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    let resp = req.send().await.expect("the server answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        headers,
    }
}

/// A POST to `/ingest/clicks` over raw TCP with the token, `headers` and then `body`
/// (write errors ignored: the server may answer and close before it is all sent);
/// returns what the server answered.
fn raw(port: u16, headers: &str, body: &[&[u8]]) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    let head = format!(
        "POST /ingest/clicks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-123\r\n{headers}\r\n"
    );
    let _ = s.write_all(head.as_bytes());
    for part in body {
        if s.write_all(part).is_err() {
            break;
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("sets");
    let mut r = vec![0; 1024];
    let n = s.read(&mut r).unwrap_or(0);
    String::from_utf8_lossy(&r[..n]).into_owned()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(data).expect("writes");
    z.finish().expect("finishes")
}

/// JSON objects, arrays and NDJSON (plain and gzip) and CSV go in; every hostile body
/// gets its status (401, 403, 400 naming the record and field, 404, 405, 408 for a
/// body that never finishes, 413 for a huge body and a gzip bomb, 415) and never
/// stops the server; exactly the accepted rows reach the sinks.
#[test]
fn ingest_takes_good_bodies_and_refuses_hostile_ones() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let port = crate::free_port();
    let sql = format!(
        "CREATE TABLE clicks (user_id BIGINT, url STRING, ts BIGINT)
           WITH ('connector' = 'http', 'format' = 'json', 'auth.token' = '${{INGEST_TOKEN}}',
                 'ingest.max-body-size' = '1048576', 'ingest.body-timeout' = '1 s',
                 'json.fail-on-missing-field' = 'true');
         CREATE TABLE readings (device STRING, temp DOUBLE)
           WITH ('connector' = 'http', 'format' = 'csv', 'ingest.on-error' = 'dead-letter');
         CREATE TABLE clicks_out (user_id BIGINT, url STRING, ts BIGINT)
           WITH ('connector' = 'filesystem', 'path' = '{out}/clicks', 'format' = 'json');
         CREATE TABLE readings_out (device STRING, temp DOUBLE)
           WITH ('connector' = 'filesystem', 'path' = '{out}/readings', 'format' = 'json');
         INSERT INTO clicks_out SELECT * FROM clicks;
         INSERT INTO readings_out SELECT * FROM readings;",
        out = dir.path().display()
    );
    let child = start(dir.path(), &sql, port);
    let url = format!("http://127.0.0.1:{port}/ingest/clicks");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let slow = std::thread::spawn(move || {
        // A client that announces 100 bytes and sends 10: 408 once the body timeout
        // passes, while other requests go on.
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
        s.write_all(
            b"POST /ingest/clicks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-123\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user_id\"",
        )
        .expect("writes");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("sets");
        let mut r = vec![0; 512];
        let n = s.read(&mut r).unwrap_or(0);
        String::from_utf8_lossy(&r[..n]).into_owned()
    });
    let mut accepted = 0;
    rt.block_on(async {
        let c = reqwest::Client::new();
        let tok = Some("tok-123");
        let ok = |r: &Reply, n: u64| {
            assert_eq!(r.status, 200, "{:?}", r.body);
            assert_eq!(r.body["accepted"].as_u64(), Some(n), "{:?}", r.body);
        };
        // Good bodies.
        let array = r#"[{"user_id": 1, "url": "/a", "ts": 10}, {"user_id": 2, "url": "/b", "ts": 11},
                        {"user_id": 3, "url": "/c", "ts": 12}]"#;
        ok(&post(&c, &url, "application/json", tok, None, array.into()).await, 3);
        let one = r#"{"user_id": 4, "url": "/d", "ts": 13}"#;
        ok(&post(&c, &url, "application/json; charset=utf-8", tok, None, one.into()).await, 1);
        let mut nd = String::new();
        for i in 0..1000 {
            nd.push_str(&format!("{{\"user_id\": {}, \"url\": \"/n\", \"ts\": {i}}}\n", 100 + i));
        }
        ok(&post(&c, &url, "application/x-ndjson", tok, None, nd.clone().into()).await, 1000);
        let gz = gzip(nd.replace("\"/n\"", "\"/z\"").as_bytes());
        ok(&post(&c, &url, "application/x-ndjson", tok, Some("gzip"), gz).await, 1000);
        accepted += 2004;
        // Auth.
        let r = post(&c, &url, "application/json", None, None, one.into()).await;
        assert_eq!(r.status, 401, "{:?}", r.body);
        assert_eq!(r.headers.get("www-authenticate").map(|v| v.to_str().unwrap_or("")), Some("Bearer"));
        assert_eq!(post(&c, &url, "application/json", Some("nope"), None, one.into()).await.status, 403);
        // A bad record: 400 naming it and its field, and nothing of the request taken.
        let bad = r#"[{"user_id": 5, "url": "/e", "ts": 1}, {"user_id": "five", "url": "/f", "ts": 2}]"#;
        let r = post(&c, &url, "application/json", tok, None, bad.into()).await;
        assert_eq!(r.status, 400);
        let e = r.body["error"].as_str().unwrap_or_default().to_string();
        assert!(e.contains("record 1") && e.contains("user_id"), "{e}");
        assert_eq!(r.body["accepted"].as_u64(), Some(0));
        // Truncated, not JSON at all, empty elements, wrong types of body.
        for (body, ct) in [
            (&br#"[{"user_id": 6, "url": "/g""#[..], "application/json"),
            (b"[1,,2]", "application/json"),
            (b"\xff\xfe\x00garbage", "application/json"),
            (b"{\"user_id\": 7", "application/x-ndjson"),
        ] {
            let r = post(&c, &url, ct, tok, None, body.to_vec()).await;
            assert_eq!(r.status, 400, "{:?}: {:?}", String::from_utf8_lossy(body), r.body);
        }
        let r = post(&c, &url, "text/plain", tok, None, one.into()).await;
        assert_eq!(r.status, 415, "{:?}", r.body);
        assert!(r.body["error"].as_str().unwrap_or_default().contains("application/x-ndjson"));
        assert_eq!(post(&c, &url, "application/json", tok, Some("gzip"), b"not gzip".to_vec()).await.status, 400);
        assert_eq!(post(&c, &url, "application/json", tok, Some("br"), one.into()).await.status, 400);
        // Too large: as sent, and once decompressed (a gzip bomb).
        // (As a client that keeps sending would see it: the answer comes before the body.)
        let declared = raw(
            port,
            "Content-Type: application/json\r\nContent-Length: 2097152\r\n",
            &[],
        );
        assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
        let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
        let chunked = raw(
            port,
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
            &vec![chunk.as_bytes(); 32],
        );
        assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
        let bomb = gzip(&vec![b' '; 64 << 20]);
        assert!(bomb.len() < 1 << 20);
        assert_eq!(post(&c, &url, "application/json", tok, Some("gzip"), bomb).await.status, 413);
        // Unknown table, wrong method.
        let r = post(&c, &format!("http://127.0.0.1:{port}/ingest/nope"), "application/json", tok, None, one.into()).await;
        assert_eq!(r.status, 404);
        assert!(r.body["error"].as_str().unwrap_or_default().contains("clicks"), "{:?}", r.body);
        let r = c.get(&url).send().await.expect("answers");
        assert_eq!(r.status().as_u16(), 405);
        // CSV with a bad line, dead-lettered (on-error = dead-letter).
        let csv = "device,temp\nd1,20.5\nd2,not-a-number\nd3,22\n";
        let r = post(&c, &format!("http://127.0.0.1:{port}/ingest/readings"), "text/csv", None, None, csv.into()).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!((r.body["accepted"].as_u64(), r.body["rejected"].as_u64()), (Some(2), Some(1)));
        // The server still takes good requests after all that.
        ok(&post(&c, &url, "application/json", tok, None, r#"{"user_id": 9, "url": "/last", "ts": 99}"#.into()).await, 1);
        accepted += 1;
    });
    let slow = slow.join().expect("the slow client ends");
    assert!(slow.starts_with("HTTP/1.1 408"), "{slow}");
    let err = stop(child);
    let clicks = crate::json_rows(&dir.path().join("clicks"));
    assert_eq!(clicks.len(), accepted, "{err}");
    let mut ids: Vec<i64> = clicks
        .iter()
        .filter_map(|r| r["user_id"].as_i64())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1005, "ids 1-4, 9 and 100-1099");
    assert!(!ids.contains(&5) && !ids.contains(&6) && !ids.contains(&7));
    let readings = crate::json_rows(&dir.path().join("readings"));
    assert_eq!(readings.len(), 2);
    let dead =
        std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).expect("dead letters");
    assert!(dead.contains("not-a-number"), "{dead}");
    assert!(!err.contains("tok-123"), "{err}");
}

/// Mistakes name the option and the fix; a taken port is a clear error.
#[test]
fn http_mistakes_are_explained() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    for (options, want) in [
        ("'format' = 'avro'", "the ingest endpoint takes 'json'"),
        ("'ingest.on-error' = 'skip'", "is not reject or dead-letter"),
        ("'ingest.ack' = 'never'", "is not pipeline or checkpoint"),
        ("'ingest.max-body' = '5'", "unknown option"),
    ] {
        let file = dir.path().join("p.sql");
        std::fs::write(
            &file,
            format!(
                "CREATE TABLE src (k STRING) WITH ('connector' = 'http', {options});
                 CREATE TABLE dst (k STRING) WITH ('connector' = 'blackhole');
                 INSERT INTO dst SELECT k FROM src;"
            ),
        )
        .expect("writes");
        let out = crate::sluice(dir.path(), &["run", file.to_str().expect("utf-8")]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{options}: {stderr}");
        assert!(
            stderr.contains(want),
            "{options}: want '{want}' in {stderr}"
        );
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = taken.local_addr().expect("bound").to_string();
    let file = dir.path().join("p.sql");
    std::fs::write(
        &file,
        "CREATE TABLE src (k STRING) WITH ('connector' = 'http');
         CREATE TABLE dst (k STRING) WITH ('connector' = 'blackhole');
         INSERT INTO dst SELECT k FROM src;",
    )
    .expect("writes");
    let out = crate::sluice(
        dir.path(),
        &["run", "--http", &addr, file.to_str().expect("utf-8")],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot serve HTTP on"), "{stderr}");
}

/// The worked example examples/clickstream_http_sessions.sql: clicks POSTed as NDJSON
/// become one Redis hash per finished session (30-minute gap), with its clicks and
/// distinct pages.
#[test]
fn clickstream_example_sessions_from_http_into_redis() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let port = crate::free_port();
    let example = crate::root().join("examples/clickstream_http_sessions.sql");
    let child = start_file(
        dir.path(),
        &example,
        &[
            "-D",
            "REDIS_URL=redis://127.0.0.1:6379/0",
            "--checkpoint-dir",
            "chk",
            "--checkpoint-interval",
            "500ms",
        ],
        port,
    );
    let base = i64::from(std::process::id()) * 10;
    let (u1, u2, u3, late) = (base + 1, base + 2, base + 3, base + 9);
    let click = |u: i64, url: &str, ts: &str| {
        format!("{{\"user_id\": {u}, \"url\": \"{url}\", \"ts\": \"2024-03-01 {ts}\"}}\n")
    };
    let mut body = String::new();
    for (u, url, ts) in [
        (u1, "/a", "10:00:00"),
        (u2, "/a", "10:00:00"),
        (u3, "/x", "10:01:00"),
        (u1, "/b", "10:05:00"),
        (u1, "/b", "10:10:00"),
        (u2, "/c", "10:20:00"),
        (u1, "/a", "11:00:00"),
    ] {
        body.push_str(&click(u, url, ts));
    }
    // A click much later moves the watermark past every session above.
    let later = click(late, "/z", "12:00:00");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let c = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/ingest/clicks");
        let r = post(
            &c,
            &url,
            "application/x-ndjson",
            Some("tok-123"),
            None,
            body.into(),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let r = post(
            &c,
            &url,
            "application/x-ndjson",
            Some("tok-123"),
            None,
            later.into(),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    });
    let hget = |key: &str| -> Vec<String> {
        let out = Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                "6379",
                "--raw",
                "HMGET",
                key,
                "clicks",
                "pages",
                "session_end",
            ])
            .output()
            .expect("redis-cli runs");
        text(&out).0.lines().map(str::to_string).collect()
    };
    let want = [
        (
            format!("session:{u1}:2024-03-01T10:00:00"),
            ["3", "2", "2024-03-01T10:40:00"],
        ),
        (
            format!("session:{u1}:2024-03-01T11:00:00"),
            ["1", "1", "2024-03-01T11:30:00"],
        ),
        (
            format!("session:{u2}:2024-03-01T10:00:00"),
            ["2", "2", "2024-03-01T10:50:00"],
        ),
        (
            format!("session:{u3}:2024-03-01T10:01:00"),
            ["1", "1", "2024-03-01T10:31:00"],
        ),
    ];
    let started = Instant::now();
    let mut got: Vec<Vec<String>> = Vec::new();
    while started.elapsed() < Duration::from_secs(30) {
        got = want.iter().map(|(k, _)| hget(k)).collect();
        if got.iter().zip(&want).all(|(g, (_, w))| g == w) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let open = Command::new("redis-cli")
        .args(["--raw", "KEYS", &format!("session:{late}:*")])
        .output()
        .expect("redis-cli runs");
    let err = stop(child);
    for (k, _) in &want {
        let _ = Command::new("redis-cli").args(["DEL", k]).output();
    }
    let want_values: Vec<Vec<String>> = want
        .iter()
        .map(|(_, w)| w.iter().map(|s| s.to_string()).collect())
        .collect();
    assert_eq!(got, want_values, "{err}");
    assert_eq!(text(&open).0.trim(), "", "the last session is still open");
}

/// Rows of an `sse` table reach a client connected to `GET /sse/<table>` as they are
/// made: `insert` events for an append-only query, `update` events for an updating one
/// (whose `-U` rows are skipped); a client without the token gets 401, a wrong one 403,
/// an unknown table 404.
#[test]
fn sse_streams_rows_to_connected_clients() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let port = crate::free_port();
    let sql = "CREATE TABLE clicks (user_id BIGINT, url STRING)
                 WITH ('connector' = 'http', 'format' = 'json');
               CREATE TABLE live (user_id BIGINT, url STRING)
                 WITH ('connector' = 'sse', 'auth.token' = '${INGEST_TOKEN}');
               CREATE TABLE per_user (user_id BIGINT, clicks BIGINT, PRIMARY KEY (user_id) NOT ENFORCED)
                 WITH ('connector' = 'sse');
               INSERT INTO live SELECT * FROM clicks;
               INSERT INTO per_user SELECT user_id, COUNT(*) FROM clicks GROUP BY user_id;";
    let child = start(dir.path(), sql, port);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (live, per_user) = rt.block_on(async {
        let c = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let status = |r: reqwest::Response| r.status().as_u16();
        assert_eq!(
            status(
                c.get(format!("{base}/sse/live"))
                    .send()
                    .await
                    .expect("answers")
            ),
            401
        );
        assert_eq!(
            status(
                c.get(format!("{base}/sse/live?token=nope"))
                    .send()
                    .await
                    .expect("answers")
            ),
            403
        );
        assert_eq!(
            status(
                c.get(format!("{base}/sse/nope"))
                    .send()
                    .await
                    .expect("answers")
            ),
            404
        );
        let mut live = c
            .get(format!("{base}/sse/live?token=tok-123"))
            .send()
            .await
            .expect("answers");
        assert_eq!(live.status().as_u16(), 200);
        assert_eq!(
            live.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        let mut per_user = c
            .get(format!("{base}/sse/per_user"))
            .send()
            .await
            .expect("answers");
        let body = |range: std::ops::Range<usize>| {
            let mut b = String::new();
            for i in range {
                b.push_str(&format!("{{\"user_id\": {}, \"url\": \"/p{i}\"}}\n", i % 3));
            }
            b
        };
        let ingest = format!("{base}/ingest/clicks");
        // Reads events until `n` data lines came (or 20 s passed).
        async fn events(r: &mut reqwest::Response, n: usize) -> Vec<(String, String)> {
            let mut text = String::new();
            let mut out = Vec::new();
            let started = Instant::now();
            while out.len() < n && started.elapsed() < Duration::from_secs(20) {
                let Ok(Ok(Some(chunk))) =
                    tokio::time::timeout(Duration::from_secs(5), r.chunk()).await
                else {
                    break;
                };
                text.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = text.find("\n\n") {
                    let block: String = text.drain(..end + 2).collect();
                    let mut kind = String::from("message");
                    let mut data = None;
                    for line in block.lines() {
                        if let Some(k) = line.strip_prefix("event: ") {
                            kind = k.to_string();
                        } else if let Some(d) = line.strip_prefix("data: ") {
                            data = Some(d.to_string());
                        }
                    }
                    if let Some(d) = data {
                        out.push((kind, d));
                    }
                }
            }
            out
        }
        let r = post(
            &c,
            &ingest,
            "application/x-ndjson",
            None,
            None,
            body(0..15).into(),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let mut counts = events(&mut per_user, 3).await;
        let r = post(
            &c,
            &ingest,
            "application/x-ndjson",
            None,
            None,
            body(15..30).into(),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        counts.extend(events(&mut per_user, 3).await);
        (events(&mut live, 30).await, counts)
    });
    let _ = stop(child);
    assert_eq!(live.len(), 30, "{live:?}");
    assert!(live.iter().all(|(k, _)| k == "insert"), "{live:?}");
    let urls: Vec<String> = live
        .iter()
        .map(|(_, d)| {
            serde_json::from_str::<serde_json::Value>(d).expect("JSON")["url"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert!(
        (0..30).all(|i| urls.contains(&format!("/p{i}"))),
        "{urls:?}"
    );
    // The updating query: an insert per user, then updates to the final counts.
    let mut last = std::collections::BTreeMap::new();
    for (k, d) in &per_user {
        assert!(k == "insert" || k == "update", "{k}");
        let v: serde_json::Value = serde_json::from_str(d).expect("JSON");
        last.insert(
            v["user_id"].as_i64().unwrap_or(-1),
            v["clicks"].as_i64().unwrap_or(-1),
        );
    }
    assert_eq!(per_user.len(), 6, "{per_user:?}");
    assert!(
        per_user[..3].iter().all(|(k, _)| k == "insert"),
        "{per_user:?}"
    );
    assert!(
        per_user[3..].iter().all(|(k, _)| k == "update"),
        "{per_user:?}"
    );
    assert_eq!(
        last,
        [(0, 10), (1, 10), (2, 10)].into_iter().collect(),
        "{per_user:?}"
    );
}
