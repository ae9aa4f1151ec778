//! The `websocket` source against a WebSocket server written here (tokio-tungstenite
//! on a loopback port), through the worked example examples/trades_websocket_ohlc.sql.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// Bars by (symbol, minute): open, high, low, close, volume, trades.
type Bars = BTreeMap<(String, usize), (f64, f64, f64, f64, f64, i64)>;

/// Trade `i`: (symbol, price, qty, second of the day from 10:00:00).
fn trade(i: usize) -> (String, f64, f64, usize) {
    let symbol = ["AAA", "BBB", "CCC"][i % 3].to_string();
    let price = 100.0 + ((i * 37) % 101) as f64 / 4.0;
    let qty = (1 + i % 7) as f64;
    (symbol, price, qty, i / 3)
}

/// Runs `server` on a thread of its own (a current-thread runtime) with a listener on
/// a free loopback port; returns the port.
fn serve<F, Fut>(server: F) -> u16
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("bound").port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            listener.set_nonblocking(true).expect("non-blocking");
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            server(listener).await;
        });
    });
    port
}

fn frame(t: &(String, f64, f64, usize)) -> String {
    let (h, m, s) = (10 + t.3 / 3600, (t.3 / 60) % 60, t.3 % 60);
    format!(
        "{{\"symbol\": \"{}\", \"price\": {}, \"qty\": {}, \"ts\": \"2024-03-01 {h:02}:{m:02}:{s:02}\"}}",
        t.0, t.1, t.2
    )
}

/// Trades every second for five minutes, sent over two connections: the first ends
/// abruptly half-way (the source reconnects and subscribes again), the second sends
/// the rest, a frame that is not JSON, and a trade ten minutes later that closes every
/// window. The bars equal those computed here.
#[test]
fn trades_example_makes_ohlc_bars_across_a_reconnect() {
    const N: usize = 900;
    let subscribes: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = subscribes.clone();
    let port = serve(move |listener| async move {
        for conn in 0.. {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                continue;
            };
            // The subscribe message comes first.
            if let Some(Ok(Message::Text(t))) = ws.next().await {
                seen.lock().expect("not poisoned").push(t.to_string());
            }
            let range = if conn == 0 { 0..N / 2 } else { N / 2..N };
            for i in range {
                if ws.send(Message::text(frame(&trade(i)))).await.is_err() {
                    break;
                }
            }
            if conn == 0 {
                // Gone without a close frame.
                drop(ws);
                continue;
            }
            let _ = ws.send(Message::text("not json")).await;
            let _ = ws
                .send(Message::text(frame(&("ZZZ".to_string(), 1.0, 1.0, 600))))
                .await;
            // Keep the connection open until the test ends.
            while let Some(Ok(_)) = ws.next().await {}
        }
    });
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let bars_dir = dir.path().join("bars");
    let example = crate::root().join("examples/trades_websocket_ohlc.sql");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            "-q",
            "--checkpoint-dir",
            "chk",
            "--checkpoint-interval",
            "300ms",
        ])
        .args(["-D", &format!("FEED_URL=ws://127.0.0.1:{port}/ws")])
        .args(["-D", &format!("BARS_PATH={}", bars_dir.display())])
        .arg(&example)
        .current_dir(dir.path())
        .env("SLUICE_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sluice starts");
    // What the bars must be: per symbol and minute, open/high/low/close/volume/count.
    let mut want: Bars = BTreeMap::new();
    for i in 0..N {
        let (sym, p, q, s) = trade(i);
        let e = want.entry((sym, s / 60)).or_insert((p, p, p, p, 0.0, 0));
        e.1 = e.1.max(p);
        e.2 = e.2.min(p);
        e.3 = p;
        e.4 += q;
        e.5 += 1;
    }
    let bars = crate::wait_for_json_rows(&bars_dir, want.len(), Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let mut got: Bars = BTreeMap::new();
    for b in &bars {
        let sym = b["symbol"].as_str().expect("symbol").to_string();
        let start = b["window_start"].as_str().expect("window_start");
        let minute: usize = start[14..16].parse().expect("minute");
        let f = |k: &str| b[k].as_f64().expect("a number");
        got.insert(
            (sym, minute),
            (
                f("open"),
                f("high"),
                f("low"),
                f("close"),
                f("volume"),
                b["trades"].as_i64().expect("trades"),
            ),
        );
    }
    assert_eq!(got, want, "{bars:?}");
    let subscribes = subscribes.lock().expect("not poisoned").clone();
    assert!(
        subscribes.len() >= 2,
        "subscribed again after the reconnect: {subscribes:?}"
    );
    assert!(
        subscribes
            .iter()
            .all(|s| s.contains("\"channel\": \"trades\"")),
        "{subscribes:?}"
    );
    let dead = std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).unwrap_or_default();
    assert!(dead.contains("not json"), "{dead}");
}

/// Mistakes name the option and the fix.
#[test]
fn websocket_mistakes_are_explained() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    for (options, want) in [
        ("'format' = 'json'", "needs option 'url'"),
        (
            "'url' = 'http://x', 'format' = 'json'",
            "is not a ws:// or wss:// URL",
        ),
        ("'url' = 'ws://x'", "needs option 'format'"),
        (
            "'url' = 'ws://x', 'format' = 'json', 'tls.root-cert' = '/etc/hostname'",
            "applies to wss:// URLs",
        ),
        (
            "'url' = 'ws://x', 'format' = 'json', 'headers.Bad Name' = 'v'",
            "is not a header name",
        ),
    ] {
        let file = dir.path().join("p.sql");
        std::fs::write(
            &file,
            format!(
                "CREATE TABLE src (k STRING) WITH ('connector' = 'websocket', {options});
                 CREATE TABLE dst (k STRING) WITH ('connector' = 'blackhole');
                 INSERT INTO dst SELECT k FROM src;"
            ),
        )
        .expect("writes");
        let out = crate::sluice(dir.path(), &["run", file.to_str().expect("utf-8")]);
        let (_, stderr) = crate::text(&out);
        assert_eq!(out.status.code(), Some(2), "{options}: {stderr}");
        assert!(
            stderr.contains(want),
            "{options}: want '{want}' in {stderr}"
        );
    }
}

/// `wss://`: a WebSocket server of the test's own behind TLS (a certificate of the
/// test's CA). Trusting that CA through `tls.root-cert`, the source reads every frame;
/// trusting another CA, it refuses the server, says why in its log and keeps retrying.
#[test]
fn wss_feed_is_read_with_its_root_cert_and_refused_without() {
    const N: usize = 300;
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let acceptor = crate::make_certs_and_acceptor(dir.path());
    let d = dir.path().display().to_string();
    let handshakes: Arc<Mutex<Vec<bool>>> = Arc::default();
    let seen = handshakes.clone();
    let port = serve(move |listener| async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let tls = acceptor.accept(tcp).await;
                seen.lock().expect("not poisoned").push(tls.is_ok());
                let Ok(tls) = tls else { return };
                let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                    return;
                };
                for i in 0..N {
                    let f = format!("{{\"symbol\": \"S{}\", \"n\": {i}}}", i % 3);
                    if ws.send(Message::text(f)).await.is_err() {
                        return;
                    }
                }
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    let sql = |ca: &str, out: &str| {
        let file = dir.path().join(format!("{out}.sql"));
        std::fs::write(
            &file,
            format!(
                "CREATE TABLE feed (symbol STRING, n BIGINT)
                   WITH ('connector' = 'websocket', 'url' = 'wss://127.0.0.1:{port}/feed',
                         'tls.root-cert' = '{d}/{ca}', 'format' = 'json');
                 CREATE TABLE got (symbol STRING, n BIGINT)
                   WITH ('connector' = 'filesystem', 'path' = '{d}/{out}', 'format' = 'json');
                 INSERT INTO got SELECT symbol, n FROM feed;"
            ),
        )
        .expect("writes");
        file
    };
    let start = |file: &std::path::Path, log: std::process::Stdio| {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["run", "-q", "--checkpoint-interval", "300ms"])
            .args(["--checkpoint-dir", "chk"])
            .arg(file)
            .current_dir(dir.path())
            .env("SLUICE_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sluice starts")
    };
    let good = sql("ca.crt", "good");
    let mut child = start(&good, std::process::Stdio::null());
    let rows = crate::wait_for_json_rows(&dir.path().join("good"), N, Duration::from_secs(60));
    let mut ns: Vec<i64> = rows.iter().filter_map(|v| v["n"].as_i64()).collect();
    let _ = child.kill();
    let _ = child.wait();
    ns.sort_unstable();
    assert_eq!(ns, (0..N as i64).collect::<Vec<_>>());
    let before = handshakes.lock().expect("not poisoned").len();
    // Another CA: the handshake fails on the certificate, the log says so, the source
    // retries, and nothing is read.
    let bad = sql("other.crt", "bad");
    let _ = std::fs::remove_dir_all(dir.path().join("chk"));
    let mut child = start(&bad, std::process::Stdio::piped());
    let started = Instant::now();
    while handshakes.lock().expect("not poisoned").len() < before + 2
        && started.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("sluice ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tries = handshakes.lock().expect("not poisoned")[before..].to_vec();
    assert!(tries.len() >= 2, "retried: {tries:?} {stderr}");
    assert!(tries.iter().all(|ok| !ok), "{tries:?}");
    assert!(
        stderr.contains("WebSocket connection failed") && stderr.contains("UnknownIssuer"),
        "{stderr}"
    );
    assert_eq!(
        crate::json_rows(&dir.path().join("bad")),
        Vec::<serde_json::Value>::new()
    );
}
