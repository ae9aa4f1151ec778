//! The web UI end to end in headless Chromium, driven over the Chrome DevTools
//! protocol: load the page, submit SQL with a mistake and see the error at its line,
//! submit a working pipeline, post rows and see them arrive in the tail, the charts and
//! the dataflow; screenshots go to `test-artifacts/` at the repository root.
//! `scripts/test.sh` installs Debian's `chromium` when it is missing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Chromium, headless, with DevTools on a free port; returns it and the port.
fn chromium(profile: &Path) -> (Child, u16) {
    let bin = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new("sh")
                .args(["-c", &format!("command -v {b}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromium is installed (scripts/test.sh installs Debian's chromium)");
    let mut child = Command::new(bin)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1400,1800",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let started = Instant::now();
    let port = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            panic!("chromium exited before DevTools listened");
        };
        if let Some(rest) = line.split("ws://127.0.0.1:").nth(1) {
            break rest
                .split('/')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("a DevTools port");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "chromium did not start"
        );
    };
    // Keep draining its stderr so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, port)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One page, driven by DevTools commands.
struct Page {
    ws: Socket,
    next: u64,
}

impl Page {
    async fn open(port: u16) -> Page {
        let text = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .expect("DevTools answers")
            .text()
            .await
            .expect("a body");
        let targets: Value = serde_json::from_str(&text).expect("JSON");
        let url = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_string();
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connects to the page");
        let mut p = Page { ws, next: 0 };
        p.call("Page.enable", json!({})).await;
        p.call("Runtime.enable", json!({})).await;
        p
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.ws
            .send(Message::text(
                json!({"id": id, "method": method, "params": params}).to_string(),
            ))
            .await
            .expect("sends");
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .expect("DevTools answers in 30 s")
                .expect("the page is open")
                .expect("a message");
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(&t).expect("JSON");
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `js` in the page; its value.
    async fn eval(&mut self, js: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{js}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until `js` is true (30 s at most), doing `meanwhile` between tries.
    async fn wait(&mut self, what: &str, js: &str, mut meanwhile: impl FnMut()) {
        let started = Instant::now();
        while self.eval(js).await != Value::Bool(true) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the page never showed {what}; it shows: {}",
                self.eval("document.body.innerText").await
            );
            meanwhile();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn screenshot(&mut self, name: &str) -> PathBuf {
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("image data"))
            .expect("base64");
        let dir = crate::root().join("test-artifacts");
        std::fs::create_dir_all(&dir).expect("creates test-artifacts");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("writes the screenshot");
        path
    }
}

/// Posts two clicks to `/ingest/clicks` over plain TCP (the page's runtime is busy).
fn post_clicks(port: u16) {
    use std::io::{Read, Write};
    let body = r#"[{"user_id": 7, "url": "/checkout"}, {"user_id": 8, "url": "/home"}]"#;
    if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
        let _ = write!(
            s,
            "POST /ingest/clicks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
    }
}

#[test]
fn the_ui_submits_a_pipeline_and_shows_its_rows_arriving() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let port = crate::free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "serve",
            "--data-dir",
            "data",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .current_dir(dir.path())
        .env("SLUICE_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sluice serve starts");
    crate::wait_for_port(port, &mut server, "sluice serve");
    let base = format!("http://127.0.0.1:{port}");
    let (mut browser, devtools) = chromium(&dir.path().join("profile"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let shots = rt.block_on(async {
        let mut page = Page::open(devtools).await;
        page.call("Page.navigate", json!({"url": format!("{base}/#/new")})).await;
        page.wait("the editor", "!!document.getElementById('sql')", || {}).await;
        // A mistake on line 3: the error names it and the gutter marks it.
        let bad = "CREATE TABLE clicks (user_id BIGINT, url STRING) WITH ('connector' = 'http');\n\
                   CREATE TABLE seen (user_id BIGINT, url STRING) WITH ('connector' = 'blackhole');\n\
                   INSERT INTO seen SELEC user_id, url FROM clicks;";
        let fill = |name: &str, sql: &str| {
            format!(
                "(() => {{
                   document.getElementById('name').value = {};
                   const a = document.getElementById('sql'); a.value = {};
                   a.dispatchEvent(new Event('input'));
                   document.getElementById('submit').click(); return true;
                 }})()",
                json!(name),
                json!(sql)
            )
        };
        page.eval(&fill("ui-demo", bad)).await;
        page.wait(
            "the SQL error at line 3",
            "document.getElementById('sql-error').textContent.startsWith('line 3') \
             && document.querySelector('.gutter .err')?.textContent === '3'",
            || {},
        )
        .await;
        let error_shot = page.screenshot("ui-sql-error.png").await;
        let good = bad.replace("SELEC ", "SELECT ");
        page.eval(&fill("ui-demo", &good)).await;
        page.wait(
            "the pipeline page",
            "location.hash === '#/p/ui-demo' && !!document.querySelector('#dataflow .node')",
            || {},
        )
        .await;
        // Tail the sink, then send rows until they show.
        page.eval(
            "(() => {
               const n = [...document.querySelectorAll('#dataflow .node')].pop();
               n.dispatchEvent(new MouseEvent('click', {bubbles: true})); return true;
             })()",
        )
        .await;
        page.wait("the tail started", "document.getElementById('tail-note').textContent.startsWith('Tailing')", || {}).await;
        let client = || post_clicks(port);
        page.wait(
            "rows in the tail",
            "[...document.querySelectorAll('#tail td')].some(td => td.textContent === '/checkout')",
            &client,
        )
        .await;
        page.wait(
            "the counts and the chart",
            "document.querySelector('[data-status]')?.dataset.status === 'running' \
             && !!document.querySelector('.uplot') \
             && [...document.querySelectorAll('.card')].some(c => c.textContent.endsWith('Rows in') && c.textContent !== '0Rows in')",
            client,
        )
        .await;
        let pipeline_shot = page.screenshot("ui-pipeline.png").await;
        page.call("Page.navigate", json!({"url": format!("{base}/#/")})).await;
        page.wait(
            "the pipeline list",
            "document.querySelector('#pipelines tr[data-name=\"ui-demo\"] [data-status]')?.dataset.status === 'running'",
            || {},
        )
        .await;
        let list_shot = page.screenshot("ui-list.png").await;
        [error_shot, pipeline_shot, list_shot]
    });
    for s in &shots {
        let len = std::fs::metadata(s).map(|m| m.len()).unwrap_or(0);
        assert!(len > 10_000, "{} is only {len} bytes", s.display());
        eprintln!("screenshot: {}", s.display());
    }
    let _ = browser.kill();
    let _ = browser.wait();
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();
}
