//! The `nats` connector against the NATS server (JetStream enabled) on 127.0.0.1:4222
//! (`scripts/services/nats.sh` starts one if none runs). Streams and subjects are named
//! after the test and the process; messages are published and read back by the test
//! itself with async-nats, independently of Sluice.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;

use crate::text;

const URL: &str = "nats://127.0.0.1:4222";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn prefix(base: &str) -> String {
    format!("{base}{}", std::process::id())
}

fn write_sql(dir: &Path, sql: &str) -> std::path::PathBuf {
    let file = dir.join("pipeline.sql");
    std::fs::write(&file, sql).expect("works in a temp dir");
    file
}

async fn client() -> async_nats::Client {
    async_nats::connect(URL)
        .await
        .expect("NATS runs on 127.0.0.1:4222 (scripts/services/nats.sh starts it)")
}

/// A memory stream `name` over `subjects`, created afresh.
async fn fresh_stream(js: &jetstream::Context, name: &str, subjects: &str) {
    let _ = js.delete_stream(name).await;
    js.create_stream(jetstream::stream::Config {
        name: name.to_string(),
        subjects: vec![subjects.to_string()],
        storage: jetstream::stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .expect("stream created");
}

/// Publishes `{"k": …, "v": i}` for `i` in `range` on `<subject>.a` (even) and `.b`
/// (odd) through JetStream, waiting for every acknowledgement.
async fn publish(js: &jetstream::Context, subject: &str, range: std::ops::Range<usize>) {
    let mut acks = Vec::new();
    for i in range {
        let s = format!("{subject}.{}", if i % 2 == 0 { "a" } else { "b" });
        let body = format!("{{\"k\": \"k{}\", \"v\": {i}}}", i % 50);
        acks.push(js.publish(s, body.into()).await.expect("published"));
        if acks.len() >= 2000 {
            for a in acks.drain(..) {
                a.await.expect("stored");
            }
        }
    }
    for a in acks {
        a.await.expect("stored");
    }
}

/// Every message of `stream`, in order: (subject, payload).
async fn read_stream(js: &jetstream::Context, stream: &str) -> Vec<(String, String)> {
    let mut s = js.get_stream(stream).await.expect("stream exists");
    let n = s.info().await.expect("info").state.messages as usize;
    let consumer: jetstream::consumer::Consumer<pull::Config> = s
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("messages arrive")
            .expect("open")
            .expect("a message");
        out.push((
            m.subject.to_string(),
            String::from_utf8_lossy(&m.payload).into_owned(),
        ));
    }
    out
}

/// A JetStream stream read by two splits (two subject filters), transformed, and
/// written to another stream with exactly-once delivery, SIGKILLed twice mid-run: the
/// output holds each input message's row exactly once, and the consumers acknowledged
/// everything at the end.
#[test]
fn jetstream_to_jetstream_is_exactly_once_across_kills() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let p = prefix("sl");
    let (input, output) = (format!("{p}_in"), format!("{p}_out"));
    let rt = runtime();
    let js = rt.block_on(async {
        let js = jetstream::new(client().await);
        fresh_stream(&js, &input, &format!("{p}.in.>")).await;
        fresh_stream(&js, &output, &format!("{p}.out.>")).await;
        publish(&js, &format!("{p}.in"), 0..30_000).await;
        js
    });
    let sql = |bounded: &str| {
        write_sql(
            dir.path(),
            &format!(
                "CREATE TABLE events (k STRING, v BIGINT,
                                      subj STRING METADATA FROM 'subject',
                                      seq BIGINT METADATA FROM 'sequence')
                   WITH ('connector' = 'nats', 'url' = '{URL}', 'stream' = '{input}',
                         'subject' = '{p}.in.a, {p}.in.b', 'format' = 'json',
                         'scan.bounded.mode' = '{bounded}');
                 CREATE TABLE out (seq BIGINT, k STRING, v2 BIGINT, subj STRING)
                   WITH ('connector' = 'nats', 'url' = '{URL}', 'stream' = '{output}',
                         'subject' = '{p}.out.{{k}}', 'format' = 'json',
                         'sink.delivery-guarantee' = 'exactly-once');
                 INSERT INTO out SELECT seq, k, v * 2, subj FROM events WHERE v % 3 <> 0;"
            ),
        )
    };
    let file = sql("unbounded");
    let mut kills = 0;
    for (i, wait_ms) in [1500u64, 2000].iter().enumerate() {
        if crate::run_then_kill(dir.path(), &file, ["2", "1"][i], "300ms", *wait_ms) {
            kills += 1;
        }
        // More input arrives while the pipeline is down.
        rt.block_on(publish(
            &js,
            &format!("{p}.in"),
            30_000 + i * 10_000..40_000 + i * 10_000,
        ));
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
            "300ms",
            file.to_str().expect("utf-8"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let got = rt.block_on(read_stream(&js, &output));
    // Input message i has stream sequence i + 1.
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    for (subject, body) in &got {
        let row: serde_json::Value = serde_json::from_str(body).expect("JSON rows");
        let seq = row["seq"].as_i64().expect("seq");
        let i = seq - 1;
        assert_eq!(row["v2"].as_i64(), Some(2 * i), "{body}");
        assert_eq!(row["k"].as_str(), Some(format!("k{}", i % 50).as_str()));
        let want_subject = format!("{p}.in.{}", if i % 2 == 0 { "a" } else { "b" });
        assert_eq!(row["subj"].as_str(), Some(want_subject.as_str()), "{body}");
        assert_eq!(subject, &format!("{p}.out.k{}", i % 50));
        *seen.entry(seq).or_default() += 1;
    }
    let want: Vec<i64> = (0..50_000i64)
        .filter(|i| i % 3 != 0)
        .map(|i| i + 1)
        .collect();
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(dups.is_empty(), "after {kills} kills, duplicates: {dups:?}");
    let missing: Vec<_> = want
        .iter()
        .filter(|s| !seen.contains_key(s))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "after {kills} kills, missing: {missing:?}"
    );
    assert_eq!(seen.len(), want.len());
    // Both consumers acknowledged everything: the last checkpoint's messages too.
    rt.block_on(async {
        let s = js.get_stream(&input).await.expect("stream");
        for c in ["sluice-events-0", "sluice-events-1"] {
            let info = s
                .consumer_info(c)
                .await
                .expect("the durable consumer exists");
            assert_eq!(info.num_ack_pending, 0, "{c}: {info:?}");
            assert!(info.ack_floor.stream_sequence >= 49_999, "{c}: {info:?}");
        }
        js.delete_stream(&input).await.expect("deleted");
        js.delete_stream(&output).await.expect("deleted");
    });
}

/// Core NATS: a pipeline subscribed in a queue group reads what is published while it
/// runs and publishes rows to subjects built from them; headers arrive as metadata.
#[test]
fn core_nats_subjects_in_and_out() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let p = prefix("core");
    let sql = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE readings (device STRING, temp DOUBLE,
                                    subj STRING METADATA FROM 'subject',
                                    hdrs MAP<STRING, STRING> METADATA FROM 'headers')
               WITH ('connector' = 'nats', 'url' = '{URL}', 'subject' = '{p}.in.>',
                     'format' = 'json');
             CREATE TABLE alerts (device STRING, temp DOUBLE, subj STRING, site STRING)
               WITH ('connector' = 'nats', 'url' = '{URL}', 'subject' = '{p}.alerts.{{device}}',
                     'format' = 'json');
             INSERT INTO alerts SELECT device, temp, subj, hdrs['site'] FROM readings WHERE temp > 30;"
        ),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "-q", sql.to_str().expect("utf-8")])
        .current_dir(dir.path())
        .env("SLUICE_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sluice starts");
    let rt = runtime();
    let got = rt.block_on(async {
        let c = client().await;
        let mut alerts = c
            .subscribe(format!("{p}.alerts.>"))
            .await
            .expect("subscribed");
        c.flush().await.expect("flushed");
        // Probe until the pipeline is subscribed (core NATS keeps nothing for later).
        let started = Instant::now();
        loop {
            let mut h = async_nats::HeaderMap::new();
            h.insert("site", "probe");
            c.publish_with_headers(
                format!("{p}.in.probe"),
                h,
                "{\"device\": \"probe\", \"temp\": 99}".into(),
            )
            .await
            .expect("published");
            c.flush().await.expect("flushed");
            if let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(200), alerts.next()).await
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the pipeline never subscribed"
            );
        }
        // Drain the probes still in flight.
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(500), alerts.next()).await
        {}
        for i in 0..2000 {
            let mut h = async_nats::HeaderMap::new();
            h.insert("site", format!("s{}", i % 3).as_str());
            let body = format!("{{\"device\": \"d{}\", \"temp\": {}}}", i % 7, i % 40);
            c.publish_with_headers(format!("{p}.in.d{}", i % 7), h, body.into())
                .await
                .expect("published");
        }
        c.publish(format!("{p}.in.bad"), "not json".into())
            .await
            .expect("published");
        // No device: its alert's subject would be `<p>.alerts.`, which cannot be.
        c.publish(format!("{p}.in.nodevice"), "{\"temp\": 99}".into())
            .await
            .expect("published");
        c.flush().await.expect("flushed");
        let mut got = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(3), alerts.next()).await {
            got.push((
                m.subject.to_string(),
                String::from_utf8_lossy(&m.payload).into_owned(),
            ));
        }
        got
    });
    let _ = child.kill();
    let _ = child.wait();
    let want = (0..2000).filter(|i| i % 40 > 30).count();
    assert_eq!(got.len(), want, "{:?}", &got[..got.len().min(3)]);
    for (subject, body) in &got {
        let row: serde_json::Value = serde_json::from_str(body).expect("JSON");
        let device = row["device"].as_str().expect("device");
        assert_eq!(subject, &format!("{p}.alerts.{device}"));
        assert_eq!(
            row["subj"].as_str(),
            Some(format!("{p}.in.{device}").as_str())
        );
        assert!(
            row["site"].as_str().is_some_and(|s| s.starts_with('s')),
            "{body}"
        );
    }
    // The bad message went to the dead letters.
    let dead = std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).unwrap_or_default();
    assert!(
        dead.contains("not json") || dead.contains("bm90IGpzb24"),
        "{dead}"
    );
    assert!(dead.contains("an empty token"), "{dead}");
}

/// Mistakes name the option and the fix; a stream that does not exist fails the run
/// with the server's answer.
#[test]
fn nats_mistakes_are_explained() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let sources = [
        (
            "'url' = 'nats://127.0.0.1:4222', 'format' = 'json'",
            "needs option 'subject'",
        ),
        (
            "'url' = 'http://x', 'subject' = 'a', 'format' = 'json'",
            "is not a NATS URL",
        ),
        (
            "'url' = 'nats://127.0.0.1:4222', 'subject' = 'a.{k}', 'format' = 'json'",
            "not {column}",
        ),
        (
            "'url' = 'nats://127.0.0.1:4222', 'subject' = 'a', 'format' = 'json', 'scan.bounded.mode' = 'latest-offset'",
            "name a JetStream 'stream'",
        ),
        (
            "'url' = 'nats://127.0.0.1:4222', 'subject' = 'a', 'stream' = 'NO_SUCH_STREAM_X', 'format' = 'json'",
            "JetStream stream 'NO_SUCH_STREAM_X' cannot be read",
        ),
        (
            "'url' = 'nats://127.0.0.1:1', 'subject' = 'a', 'format' = 'json'",
            "cannot connect to NATS",
        ),
    ];
    for (options, want) in sources {
        let sql = write_sql(
            dir.path(),
            &format!(
                "CREATE TABLE src (k STRING) WITH ('connector' = 'nats', {options});
                 CREATE TABLE dst (k STRING) WITH ('connector' = 'blackhole');
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
    }
    let sinks = [
        (
            "'url' = 'nats://127.0.0.1:4222', 'subject' = 'a.*', 'format' = 'json'",
            "no wildcards",
        ),
        (
            "'url' = 'nats://127.0.0.1:4222', 'subject' = 'a', 'format' = 'json', 'sink.delivery-guarantee' = 'exactly-once'",
            "exactly-once needs JetStream",
        ),
        (
            "'url' = 'nats://127.0.0.1:4222', 'subject' = 'a.{nope}', 'format' = 'json'",
            "names no column",
        ),
    ];
    for (options, want) in sinks {
        let sql = write_sql(
            dir.path(),
            &format!(
                "CREATE TABLE src (k STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '3');
                 CREATE TABLE dst (k STRING) WITH ('connector' = 'nats', {options});
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
    }
}

/// A NATS server of the test's own on a free port, taking TLS connections only with
/// the certificate `make_certs` wrote in `d`, and the login options `auth`.
fn tls_server(d: &str, auth: &[&str]) -> (std::process::Child, u16) {
    let port = crate::free_port();
    let mut server = std::process::Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "--tls"])
        .args([
            "--tlscert",
            &format!("{d}/server.crt"),
            "--tlskey",
            &format!("{d}/server.key"),
        ])
        .args(auth)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nats-server runs");
    crate::wait_for_port(port, &mut server, "nats-server");
    (server, port)
}

/// TLS and a login: a NATS server of the test's own that takes TLS connections only
/// (a test CA's certificate) and one user; the sink connects over `tls://`, trusting the
/// CA from `tls.root-cert`, with the user's password, and every row arrives at a
/// subscriber that logs in the same way.
#[test]
fn tls_with_a_login_delivers_every_row() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    crate::make_certs(dir.path());
    let d = dir.path().display().to_string();
    let (mut server, port) = tls_server(&d, &["--user", "pipeline", "--pass", "n4ts-secret"]);
    let url = format!("tls://localhost:{port}");
    let rt = runtime();
    let sub = rt.block_on(async {
        let c = async_nats::ConnectOptions::new()
            .user_and_password("pipeline".into(), "n4ts-secret".into())
            .add_root_certificates(dir.path().join("ca.crt"))
            .require_tls(true)
            .connect(url.as_str())
            .await
            .expect("the test connects over TLS");
        let s = c.subscribe("secure.>").await.expect("subscribed");
        c.flush().await.expect("flushed");
        (c, s)
    });
    let sql = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '200',
               'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '200');
             CREATE TABLE dst (id BIGINT)
               WITH ('connector' = 'nats', 'url' = '{url}', 'subject' = 'secure.{{id}}',
                     'tls.root-cert' = '{d}/ca.crt', 'username' = 'pipeline',
                     'password' = 'n4ts-secret', 'sink.delivery-guarantee' = 'at-least-once',
                     'format' = 'json');
             INSERT INTO dst SELECT id FROM src;"
        ),
    );
    let run = crate::sluice(dir.path(), &["run", "-q", sql.to_str().expect("utf-8")]);
    let ids = rt.block_on(async move {
        let (_client, mut sub) = sub;
        let mut ids = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(3), sub.next()).await {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).expect("JSON");
            ids.push(v["id"].as_i64().expect("id"));
            if ids.len() == 200 {
                break;
            }
        }
        ids
    });
    // A wrong password is refused with the server's answer.
    let bad = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
             CREATE TABLE dst (id BIGINT)
               WITH ('connector' = 'nats', 'url' = '{url}', 'subject' = 'secure.x',
                     'tls.root-cert' = '{d}/ca.crt', 'username' = 'pipeline',
                     'password' = 'wrong-one', 'format' = 'json');
             INSERT INTO dst SELECT id FROM src;"
        ),
    );
    let refused = crate::sluice(dir.path(), &["run", "-q", bad.to_str().expect("utf-8")]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(run.status.success(), "{}", text(&run).1);
    let mut ids = ids;
    ids.sort_unstable();
    assert_eq!(ids, (1..=200).collect::<Vec<_>>());
    assert_ne!(refused.status.code(), Some(0));
    let err = text(&refused).1;
    assert!(err.contains("cannot connect to NATS"), "{err}");
    assert!(
        !err.contains("wrong-one") && !text(&run).1.contains("n4ts-secret"),
        "{err}"
    );
}

/// A token over TLS, for the source too: a NATS server of the test's own taking TLS
/// connections with one token; a pipeline reads a core subject and writes another, both
/// over `tls://` with `token`, and every message published comes out once.
#[test]
fn tls_with_a_token_reads_and_writes() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    crate::make_certs(dir.path());
    let d = dir.path().display().to_string();
    let (mut server, port) = tls_server(&d, &["--auth", "t0ken-for-sluice"]);
    let url = format!("tls://localhost:{port}");
    let sql = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE readings (id BIGINT)
               WITH ('connector' = 'nats', 'url' = '{url}', 'subject' = 'in.>',
                     'tls.root-cert' = '{d}/ca.crt', 'token' = 't0ken-for-sluice',
                     'format' = 'json');
             CREATE TABLE copies (id BIGINT)
               WITH ('connector' = 'nats', 'url' = '{url}', 'subject' = 'out.{{id}}',
                     'tls.root-cert' = '{d}/ca.crt', 'token' = 't0ken-for-sluice',
                     'format' = 'json');
             INSERT INTO copies SELECT id FROM readings;"
        ),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "-q", sql.to_str().expect("utf-8")])
        .current_dir(dir.path())
        .env("SLUICE_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sluice starts");
    let rt = runtime();
    let ids = rt.block_on(async {
        let c = async_nats::ConnectOptions::with_token("t0ken-for-sluice".into())
            .add_root_certificates(dir.path().join("ca.crt"))
            .require_tls(true)
            .connect(url.as_str())
            .await
            .expect("the test connects over TLS");
        let mut out = c.subscribe("out.>").await.expect("subscribed");
        c.flush().await.expect("flushed");
        // Probe (id 0) until the pipeline is subscribed: core NATS keeps nothing.
        let started = Instant::now();
        loop {
            c.publish("in.probe", "{\"id\": 0}".into())
                .await
                .expect("published");
            c.flush().await.expect("flushed");
            if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), out.next()).await
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the pipeline never subscribed"
            );
        }
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(500), out.next()).await {
        }
        for i in 1..=500 {
            c.publish(format!("in.r{}", i % 5), format!("{{\"id\": {i}}}").into())
                .await
                .expect("published");
        }
        c.flush().await.expect("flushed");
        let mut ids = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(3), out.next()).await {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).expect("JSON");
            assert_eq!(m.subject.to_string(), format!("out.{}", v["id"]));
            // A late echo of a probe is not one of the messages.
            if v["id"] != 0 {
                ids.push(v["id"].as_i64().expect("id"));
            }
        }
        ids
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = server.kill();
    let _ = server.wait();
    let mut ids = ids;
    ids.sort_unstable();
    assert_eq!(ids, (1..=500).collect::<Vec<_>>());
}
