//! The CLI crate's one integration-test binary: golden SQL files, the binary's
//! behaviour as a user sees it (exit codes, messages, dead letters), and the Nexmark
//! queries against the batch oracle.

mod checkpoints;
mod cli;
mod event_time;
mod golden;
mod http;
mod jdbc;
mod kafka;
mod mqtt;
mod nats;
mod nexmark;
mod redis;
mod serve;
mod ui;
mod webhook;
mod websocket;

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the built `sluice` binary in `dir` with `args`.
pub(crate) fn sluice(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env("SLUICE_LOG", "error")
        .output()
        .expect("the sluice binary runs")
}

/// Runs `sluice run -q -w <workers>` on `sql` in `dir` with checkpoints into `chk`
/// every `interval`, and SIGKILLs it after `wait_ms`; true when it was killed (still
/// running then).
pub(crate) fn run_then_kill(
    dir: &std::path::Path,
    sql: &std::path::Path,
    workers: &str,
    interval: &str,
    wait_ms: u64,
) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "-q", "-w", workers, "--checkpoint-dir", "chk"])
        .args(["--checkpoint-interval", interval])
        .arg(sql)
        .current_dir(dir)
        .env("SLUICE_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the sluice binary starts");
    std::thread::sleep(std::time::Duration::from_millis(wait_ms));
    let running = child.try_wait().expect("polls").is_none();
    if running {
        child.kill().expect("SIGKILL");
    }
    child.wait().expect("reaped");
    running
}

/// Writes test certificates into `dir` with openssl: a CA (`ca.crt`), a server
/// certificate it signs for 127.0.0.1 and localhost (`server.crt`, `server.key`), and
/// another CA that signs nothing (`other.crt`).
pub(crate) fn make_certs(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out).1);
    };
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("writes");
    for ca in ["ca", "other"] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=sluice test {ca}"),
        ]);
    }
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

/// [`make_certs`] in `dir`, and a TLS acceptor with its server certificate.
pub(crate) fn make_certs_and_acceptor(dir: &std::path::Path) -> sluice_server::TlsAcceptor {
    make_certs(dir);
    sluice_server::tls_acceptor(&sluice_server::config::TlsFiles {
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    })
    .expect("the test certificate loads")
}

/// A loopback port nothing listens on (right now).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("bound")
        .port()
}

/// Waits until `child` (a server the test started, called `what`) listens on
/// 127.0.0.1:`port`; after 10 s it is killed and the test fails.
pub(crate) fn wait_for_port(port: u16, child: &mut std::process::Child, what: &str) {
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not start on port {port}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Every JSON row in the committed part files under `dir` (a filesystem sink's
/// directory; names starting with a dot are files in progress).
pub(crate) fn json_rows(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
    }
    out
}

/// The rows under `dir` (see [`json_rows`]) once there are `n` of them, or what there
/// is after `limit`.
pub(crate) fn wait_for_json_rows(
    dir: &std::path::Path,
    n: usize,
    limit: std::time::Duration,
) -> Vec<serde_json::Value> {
    let started = std::time::Instant::now();
    let mut rows = json_rows(dir);
    while rows.len() < n && started.elapsed() < limit {
        std::thread::sleep(std::time::Duration::from_millis(200));
        rows = json_rows(dir);
    }
    rows
}

/// One HTTP/1.1 request without a body to `endpoint` (`http://host:port`); returns
/// the whole response as text (empty when the connection fails).
pub(crate) fn http_request(endpoint: &str, method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://");
    let Ok(mut conn) = std::net::TcpStream::connect(host) else {
        return String::new();
    };
    let _ = write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = conn.read_to_string(&mut out);
    out
}

/// The values of the samples in Prometheus text `metrics` whose line starts with
/// `prefix` (a metric name and the start of its labels).
pub(crate) fn metric_values(metrics: &str, prefix: &str) -> Vec<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

/// The first of [`metric_values`], or -1 when there is none.
pub(crate) fn metric_value(metrics: &str, prefix: &str) -> f64 {
    metric_values(metrics, prefix)
        .first()
        .copied()
        .unwrap_or(-1.0)
}

/// The repository root.
pub(crate) fn root() -> PathBuf {
    sluice_testkit::repo_root()
}

/// stdout and stderr as text.
pub(crate) fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
