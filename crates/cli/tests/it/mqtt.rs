//! The `mqtt` connector against Mosquitto. Each test starts a broker of its own on a
//! free loopback port (Debian's `mosquitto`, installed by `scripts/services/mqtt.sh`),
//! configured to let a session hold any number of messages in flight; messages are
//! published and read back by the test itself with rumqttc, independently of Sluice.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use crate::text;

/// A Mosquitto of the test's own, stopped when dropped.
struct Broker {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Broker {
    /// A broker on a free port; with `persistent`, it saves sessions and messages to
    /// its directory when stopped, and [`restart`](Self::restart) brings them back.
    fn start(persistent: bool) -> Broker {
        let dir = tempfile::tempdir().expect("works in a temp dir");
        let port = crate::free_port();
        let persistence = if persistent {
            format!(
                "persistence true\npersistence_location {}/\n",
                dir.path().display()
            )
        } else {
            "persistence false\n".to_string()
        };
        std::fs::write(
            dir.path().join("mosquitto.conf"),
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\n{persistence}\
                 max_inflight_messages 0\nmax_queued_messages 0\nlog_dest stderr\n\
                 log_type error\nuser {}\n",
                std::env::var("USER").unwrap_or_else(|_| "root".into())
            ),
        )
        .expect("writes");
        let child = Self::spawn(dir.path(), port);
        Broker { child, port, dir }
    }

    fn spawn(dir: &Path, port: u16) -> Child {
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(dir.join("mosquitto.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto runs (scripts/services/mqtt.sh installs it)");
        crate::wait_for_port(port, &mut child, "mosquitto");
        child
    }

    /// Stops the broker (SIGTERM: it saves its state) and starts it again on the same
    /// port after `down`.
    fn restart(&mut self, down: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::thread::sleep(down);
        self.child = Self::spawn(self.dir.path(), self.port);
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn write_sql(dir: &Path, sql: &str) -> std::path::PathBuf {
    let file = dir.join("pipeline.sql");
    std::fs::write(&file, sql).expect("works in a temp dir");
    file
}

/// Polls `eventloop` in the background, counting the broker's PUBACKs in `acks`.
fn drive(mut eventloop: rumqttc::EventLoop, acks: Arc<AtomicUsize>) {
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acks.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
}

/// Publishes `messages` at QoS 1 and waits for the broker to acknowledge them all.
async fn publish(port: u16, messages: Vec<(String, String)>) {
    let mut o = MqttOptions::new(
        format!("test-pub-{}", std::process::id()),
        "127.0.0.1",
        port,
    );
    o.set_inflight(500).set_max_packet_size(1 << 20, 1 << 20);
    let (client, eventloop) = AsyncClient::new(o, 1000);
    let acks = Arc::new(AtomicUsize::new(0));
    drive(eventloop, acks.clone());
    let n = messages.len();
    for (topic, body) in messages {
        client
            .publish(topic, QoS::AtLeastOnce, false, body)
            .await
            .expect("queued");
    }
    let started = Instant::now();
    while acks.load(Ordering::Relaxed) < n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the broker acknowledged too little"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.disconnect().await.expect("disconnects");
}

/// Opens the persistent session `client_id` subscribed to `filter` at QoS 1 and leaves
/// it, so the broker keeps what is published for it until the pipeline connects.
async fn open_session(port: u16, client_id: &str, filter: &str) {
    let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_clean_session(false);
    let (client, mut eventloop) = AsyncClient::new(o, 10);
    client
        .subscribe(filter, QoS::AtLeastOnce)
        .await
        .expect("queued");
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = eventloop.poll().await.expect("connects") {
            break;
        }
    }
    client.disconnect().await.expect("disconnects");
    let _ = tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await;
}

/// Messages (topic, payload) and what they add up to per device (count, sum).
type Readings = (Vec<(String, String)>, BTreeMap<String, (i64, i64)>);

/// Sensor readings on `<p>/sensors/<device>`; returns per device (count, sum).
fn readings(p: &str, range: std::ops::Range<usize>) -> Readings {
    let mut msgs = Vec::new();
    let mut want: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for i in range {
        let d = format!("d{}", i % 40);
        let v = (i % 100) as i64;
        msgs.push((format!("{p}/sensors/{d}"), format!("{{\"v\": {v}}}")));
        let e = want.entry(d).or_default();
        e.0 += 1;
        e.1 += v;
    }
    (msgs, want)
}

fn redis_hash(key: &str) -> Vec<String> {
    let out = Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "6379",
            "--raw",
            "HMGET",
            key,
            "n",
            "total",
        ])
        .output()
        .expect("redis-cli runs");
    text(&out).0.lines().map(str::to_string).collect()
}

/// QoS 1 messages aggregated per device into Redis while the pipeline is SIGKILLed
/// twice: messages not acknowledged before a kill come again and are counted once,
/// so the totals equal the input's.
#[test]
fn qos1_messages_are_counted_once_across_kills() {
    let broker = Broker::start(false);
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let p = format!("mq{}", std::process::id());
    let rt = runtime();
    rt.block_on(open_session(
        broker.port,
        "sluice-readings",
        &format!("{p}/sensors/+"),
    ));
    let (first, mut want) = readings(&p, 0..20_000);
    rt.block_on(publish(broker.port, first));
    let sql = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE readings (v BIGINT, topic STRING METADATA)
               WITH ('connector' = 'mqtt', 'url' = '{}', 'topic' = '{p}/sensors/+',
                     'qos' = '1', 'format' = 'json');
             CREATE TABLE per_device (device STRING, n BIGINT, total BIGINT,
                                      PRIMARY KEY (device) NOT ENFORCED)
               WITH ('connector' = 'redis', 'url' = 'redis://127.0.0.1:6379/0',
                     'sink.command' = 'hset', 'key' = '{p}:{{device}}');
             INSERT INTO per_device
             SELECT SPLIT_PART(topic, '/', 3), COUNT(*), SUM(v) FROM readings
             GROUP BY SPLIT_PART(topic, '/', 3);",
            broker.url()
        ),
    );
    let mut kills = 0;
    for (i, wait_ms) in [1500u64, 1800].iter().enumerate() {
        if crate::run_then_kill(dir.path(), &sql, ["1", "2"][i], "300ms", *wait_ms) {
            kills += 1;
        }
        // More readings arrive while the pipeline is down; the session keeps them.
        let (more, w) = readings(&p, 20_000 + i * 5_000..25_000 + i * 5_000);
        for (k, (n, s)) in w {
            let e = want.entry(k).or_default();
            e.0 += n;
            e.1 += s;
        }
        rt.block_on(publish(broker.port, more));
    }
    assert_eq!(kills, 2, "an MQTT source runs until killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            "-q",
            "-w",
            "2",
            "--checkpoint-dir",
            "chk",
            "--checkpoint-interval",
            "300ms",
        ])
        .arg(&sql)
        .current_dir(dir.path())
        .env("SLUICE_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sluice starts");
    let wrong = |want: &BTreeMap<String, (i64, i64)>| -> Vec<String> {
        want.iter()
            .filter_map(|(d, (n, total))| {
                let got = redis_hash(&format!("{p}:{d}"));
                (got != [n.to_string(), total.to_string()])
                    .then(|| format!("{d}: want {n}/{total}, got {got:?}"))
            })
            .collect()
    };
    let started = Instant::now();
    let mut bad = wrong(&want);
    while !bad.is_empty() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(300));
        bad = wrong(&want);
    }
    // Still right a little later (nothing counted twice after catching up).
    std::thread::sleep(Duration::from_millis(800));
    let later = wrong(&want);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        bad.is_empty(),
        "after {kills} kills: {:?}",
        &bad[..bad.len().min(5)]
    );
    assert!(
        later.is_empty(),
        "after {kills} kills: {:?}",
        &later[..later.len().min(5)]
    );
    for d in want.keys() {
        let _ = Command::new("redis-cli")
            .args(["DEL", &format!("{p}:{d}")])
            .output();
    }
}

/// The broker stops for two seconds mid-run (with messages delivered to the pipeline
/// but not yet acknowledged, the checkpoint interval being long) and comes back with
/// its saved sessions: it delivers those messages again, the source skips them, and
/// the totals equal the input's.
#[test]
fn a_broker_restart_mid_run_repeats_nothing() {
    let mut broker = Broker::start(true);
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let p = format!("mr{}", std::process::id());
    let rt = runtime();
    rt.block_on(open_session(
        broker.port,
        "sluice-readings",
        &format!("{p}/sensors/+"),
    ));
    let (first, mut want) = readings(&p, 0..10_000);
    rt.block_on(publish(broker.port, first));
    let sql = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE readings (v BIGINT, topic STRING METADATA)
               WITH ('connector' = 'mqtt', 'url' = '{}', 'topic' = '{p}/sensors/+',
                     'format' = 'json');
             CREATE TABLE per_device (device STRING, n BIGINT, total BIGINT,
                                      PRIMARY KEY (device) NOT ENFORCED)
               WITH ('connector' = 'redis', 'url' = 'redis://127.0.0.1:6379/0',
                     'sink.command' = 'hset', 'key' = '{p}:{{device}}');
             INSERT INTO per_device
             SELECT SPLIT_PART(topic, '/', 3), COUNT(*), SUM(v) FROM readings
             GROUP BY SPLIT_PART(topic, '/', 3);",
            broker.url()
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            "-q",
            "--checkpoint-dir",
            "chk",
            "--checkpoint-interval",
            "4s",
        ])
        .arg(&sql)
        .current_dir(dir.path())
        .env("SLUICE_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sluice starts");
    std::thread::sleep(Duration::from_millis(1500));
    broker.restart(Duration::from_secs(2));
    let (more, w) = readings(&p, 10_000..15_000);
    for (k, (n, s)) in w {
        let e = want.entry(k).or_default();
        e.0 += n;
        e.1 += s;
    }
    rt.block_on(publish(broker.port, more));
    let wrong = || -> Vec<String> {
        want.iter()
            .filter_map(|(d, (n, total))| {
                let got = redis_hash(&format!("{p}:{d}"));
                (got != [n.to_string(), total.to_string()])
                    .then(|| format!("{d}: want {n}/{total}, got {got:?}"))
            })
            .collect()
    };
    let started = Instant::now();
    let mut bad = wrong();
    while !bad.is_empty() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(300));
        bad = wrong();
    }
    std::thread::sleep(Duration::from_millis(800));
    let later = wrong();
    let _ = child.kill();
    let _ = child.wait();
    assert!(bad.is_empty(), "{:?}", &bad[..bad.len().min(5)]);
    assert!(later.is_empty(), "{:?}", &later[..later.len().min(5)]);
    for d in want.keys() {
        let _ = Command::new("redis-cli")
            .args(["DEL", &format!("{p}:{d}")])
            .output();
    }
}

/// MQTT 5 in, MQTT 3.1.1 out: user properties and the topic arrive as metadata, QoS 2
/// subscriptions work, and the sink publishes each row to a topic built from it at
/// QoS 1; a payload that is not JSON becomes a dead letter.
#[test]
fn mqtt5_properties_in_and_rows_out() {
    let broker = Broker::start(false);
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let p = format!("m5{}", std::process::id());
    let sql = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE readings (device STRING, temp DOUBLE,
                                    topic STRING METADATA,
                                    qos INT METADATA,
                                    props MAP<STRING, STRING> METADATA FROM 'properties')
               WITH ('connector' = 'mqtt', 'url' = '{url}', 'topic' = '{p}/in/#',
                     'qos' = '2', 'mqtt.version' = '5', 'format' = 'json');
             CREATE TABLE alerts (device STRING, temp DOUBLE, site STRING, topic STRING, qos INT)
               WITH ('connector' = 'mqtt', 'url' = '{url}', 'topic' = '{p}/alerts/{{device}}',
                     'qos' = '1', 'format' = 'json');
             INSERT INTO alerts SELECT device, temp, props['site'], topic, qos FROM readings
             WHERE temp > 30;",
            url = broker.url()
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            "-q",
            "-w",
            "2",
            "--checkpoint-dir",
            "chk",
            "--checkpoint-interval",
            "300ms",
        ])
        .arg(&sql)
        .current_dir(dir.path())
        .env("SLUICE_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sluice starts");
    let rt = runtime();
    let got = rt.block_on(async {
        use rumqttc::v5::mqttbytes::v5::PublishProperties;
        use rumqttc::v5::{AsyncClient as C5, Event as E5, MqttOptions as O5};
        // The test's subscriber to the alerts.
        let mut o = MqttOptions::new("test-sub", "127.0.0.1", broker.port);
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (sub, mut sub_loop) = AsyncClient::new(o, 100);
        sub.subscribe(format!("{p}/alerts/+"), QoS::AtLeastOnce)
            .await
            .expect("queued");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match sub_loop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(m))) => {
                        let _ =
                            tx.send((m.topic, String::from_utf8_lossy(&m.payload).into_owned()));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        // The publisher of the readings (MQTT 5, with user properties).
        let (pubc, mut pub_loop) = C5::new(O5::new("test-pub5", "127.0.0.1", broker.port), 1000);
        tokio::spawn(async move {
            loop {
                if let Err(_) | Ok(E5::Outgoing(rumqttc::Outgoing::Disconnect)) =
                    pub_loop.poll().await
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        let props = |site: &str| PublishProperties {
            user_properties: vec![("site".into(), site.into())],
            ..Default::default()
        };
        // Probe until the pipeline is subscribed (its session is new).
        let started = Instant::now();
        loop {
            pubc.publish_with_properties(
                format!("{p}/in/probe"),
                rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                false,
                "{\"device\": \"probe\", \"temp\": 99}",
                props("probe"),
            )
            .await
            .expect("queued");
            if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the pipeline never subscribed"
            );
        }
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(800), rx.recv()).await {}
        for i in 0..1000 {
            let body = format!("{{\"device\": \"d{}\", \"temp\": {}}}", i % 5, i % 40);
            pubc.publish_with_properties(
                format!("{p}/in/x/d{}", i % 5),
                rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
                false,
                body,
                props(&format!("s{}", i % 3)),
            )
            .await
            .expect("queued");
        }
        pubc.publish(
            format!("{p}/in/bad"),
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            "oops",
        )
        .await
        .expect("queued");
        let mut got = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(4), rx.recv()).await {
            got.push(m);
        }
        got
    });
    let _ = child.kill();
    let _ = child.wait();
    let want = (0..1000).filter(|i| i % 40 > 30).count();
    assert_eq!(got.len(), want, "{:?}", &got[..got.len().min(3)]);
    for (topic, body) in &got {
        let row: serde_json::Value = serde_json::from_str(body).expect("JSON");
        let device = row["device"].as_str().expect("device");
        assert_eq!(topic, &format!("{p}/alerts/{device}"));
        assert_eq!(
            row["topic"].as_str(),
            Some(format!("{p}/in/x/{device}").as_str())
        );
        assert_eq!(row["qos"].as_i64(), Some(2), "{body}");
        assert!(
            row["site"].as_str().is_some_and(|s| s.starts_with('s')),
            "{body}"
        );
    }
    let dead = std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).unwrap_or_default();
    assert!(dead.contains("oops"), "{dead}");
}

/// Mistakes name the option and the fix.
#[test]
fn mqtt_mistakes_are_explained() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let cases = [
        (
            "src",
            "'url' = 'mqtt://127.0.0.1:1883', 'format' = 'json'",
            "needs option 'topic'",
        ),
        (
            "src",
            "'url' = 'http://x', 'topic' = 'a', 'format' = 'json'",
            "is not mqtt:// or mqtts://",
        ),
        (
            "src",
            "'url' = 'mqtt://127.0.0.1:1883', 'topic' = 'a/#/b', 'format' = 'json'",
            "'#' must be a whole level",
        ),
        (
            "src",
            "'url' = 'mqtt://127.0.0.1:1883', 'topic' = 'a', 'qos' = '3', 'format' = 'json'",
            "is not 0, 1 or 2",
        ),
        (
            "src",
            "'url' = 'mqtt://127.0.0.1:1883', 'topic' = 'a', 'format' = 'json', 'tls.root-cert' = '/etc/hostname'",
            "write the url as mqtts://",
        ),
        (
            "dst",
            "'url' = 'mqtt://127.0.0.1:1883', 'topic' = 'a/+', 'format' = 'json'",
            "no + or #",
        ),
        (
            "dst",
            "'url' = 'mqtt://127.0.0.1:1883', 'topic' = 'a', 'format' = 'json', 'sink.delivery-guarantee' = 'exactly-once'",
            "MQTT cannot deduplicate",
        ),
        (
            "dst",
            "'url' = 'mqtt://127.0.0.1:1883', 'topic' = 'a', 'format' = 'json', 'qos' = '0', 'sink.delivery-guarantee' = 'at-least-once'",
            "set 'qos' to 1 or 2",
        ),
    ];
    for (which, options, want) in cases {
        let (src, dst) = if which == "src" {
            (
                format!("'connector' = 'mqtt', {options}"),
                "'connector' = 'blackhole'".to_string(),
            )
        } else {
            (
                "'connector' = 'datagen', 'number-of-rows' = '3'".to_string(),
                format!("'connector' = 'mqtt', {options}"),
            )
        };
        let sql = write_sql(
            dir.path(),
            &format!(
                "CREATE TABLE src (k STRING) WITH ({src});
                 CREATE TABLE dst (k STRING) WITH ({dst});
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

/// The worked example examples/iot_mqtt_webhook.sql: the readings of
/// examples/data/sensor_readings.csv published over MQTT give exactly the four injected
/// anomalies as webhook calls (the first call is refused with 503 and retried).
#[test]
fn iot_example_alerts_from_mqtt_to_a_webhook() {
    let broker = Broker::start(false);
    let hook =
        crate::webhook::Server::start(Box::new(
            |n, _| {
                if n == 0 { (503, vec![]) } else { (200, vec![]) }
            },
        ));
    let rt = runtime();
    rt.block_on(open_session(
        broker.port,
        "sluice-iot-alerts",
        "sensors/+/reading",
    ));
    let csv = std::fs::read_to_string(crate::root().join("examples/data/sensor_readings.csv"))
        .expect("the example's data");
    let mut messages = Vec::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        messages.push((
            format!("sensors/{}/reading", f[0]),
            format!(
                "{{\"ts\": \"{}\", \"temperature\": {}, \"humidity\": {}}}",
                f[1], f[2], f[3]
            ),
        ));
    }
    rt.block_on(publish(broker.port, messages));
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let example = crate::root().join("examples/iot_mqtt_webhook.sql");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            "-q",
            "--checkpoint-dir",
            "chk",
            "--checkpoint-interval",
            "500ms",
        ])
        .args(["-D", &format!("MQTT_URL={}", broker.url())])
        .args(["-D", &format!("ALERT_URL={}", hook.url("/alerts"))])
        .arg(&example)
        .current_dir(dir.path())
        .env("SLUICE_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sluice starts");
    let started = Instant::now();
    while hook.requests("/alerts").len() < 5 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    let _ = child.kill();
    let _ = child.wait();
    let calls = hook.requests("/alerts");
    assert_eq!(calls.len(), 5, "{calls:?}");
    let mut sensors: Vec<String> = calls[1..]
        .iter()
        .map(|c| {
            let v: serde_json::Value =
                serde_json::from_str(&c.body).expect("the template makes JSON");
            let title = v["title"].as_str().expect("a title").to_string();
            title.split(':').next().unwrap_or_default().to_string()
        })
        .collect();
    sensors.sort();
    assert_eq!(
        sensors,
        ["sensor-2", "sensor-2", "sensor-4", "sensor-5"],
        "{calls:?}"
    );
}

/// TLS and a login: a broker of the test's own listening with TLS only (a test CA's
/// certificate) and refusing anonymous clients; the sink connects over `mqtts://`,
/// trusting the CA from `tls.root-cert`, as a user with a password, and every row
/// arrives at a `mosquitto_sub` that logs in the same way; the source, connecting the
/// same way, reads every message `mosquitto_pub` sent.
#[test]
fn mqtts_with_a_login_delivers_every_row() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    crate::make_certs(dir.path());
    let d = dir.path().display().to_string();
    let passwd = dir.path().join("passwd");
    let out = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwd)
        .args(["sensor-gw", "pa55-word"])
        .output()
        .expect("mosquitto_passwd runs");
    assert!(out.status.success(), "{}", text(&out).1);
    let port = crate::free_port();
    std::fs::write(
        dir.path().join("mosquitto.conf"),
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {d}/passwd\n\
             cafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\n\
             persistence false\nlog_dest stderr\nlog_type error\nuser {}\n",
            std::env::var("USER").unwrap_or_else(|_| "root".into())
        ),
    )
    .expect("writes");
    let mut broker = Command::new("mosquitto")
        .arg("-c")
        .arg(dir.path().join("mosquitto.conf"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mosquitto runs");
    crate::wait_for_port(port, &mut broker, "mosquitto");
    let sub = Command::new("mosquitto_sub")
        .args(["-h", "localhost", "-p", &port.to_string(), "--cafile"])
        .arg(dir.path().join("ca.crt"))
        .args([
            "-u",
            "sensor-gw",
            "-P",
            "pa55-word",
            "-q",
            "1",
            "-t",
            "secure/#",
            "-C",
            "200",
            "-W",
            "30",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub runs");
    std::thread::sleep(Duration::from_millis(500));
    let sql = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '200',
               'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '200');
             CREATE TABLE dst (id BIGINT)
               WITH ('connector' = 'mqtt', 'url' = 'mqtts://localhost:{port}', 'topic' = 'secure/{{id}}',
                     'tls.root-cert' = '{d}/ca.crt', 'username' = 'sensor-gw',
                     'password' = 'pa55-word', 'qos' = '1', 'format' = 'json');
             INSERT INTO dst SELECT id FROM src;"
        ),
    );
    let run = crate::sluice(dir.path(), &["run", "-q", sql.to_str().expect("utf-8")]);
    let got = sub.wait_with_output().expect("mosquitto_sub ends");
    // The source over the same listener and login: the persistent session
    // `tls-source` is opened first (so the broker keeps what comes for it), 100 QoS 1
    // messages are published into it with mosquitto_pub, then a pipeline reads them.
    let login = |tool: &str| {
        let mut c = Command::new(tool);
        c.args(["-h", "localhost", "-p", &port.to_string(), "--cafile"])
            .arg(dir.path().join("ca.crt"))
            .args(["-u", "sensor-gw", "-P", "pa55-word", "-q", "1"]);
        c
    };
    let session = login("mosquitto_sub")
        .args(["-c", "-i", "tls-source", "-t", "readings/#", "-W", "1"])
        .output()
        .expect("mosquitto_sub runs");
    assert!(!text(&session).1.contains("rror"), "{}", text(&session).1);
    let mut publisher = login("mosquitto_pub")
        .args(["-t", "readings/r", "-l"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_pub runs");
    {
        use std::io::Write;
        let mut stdin = publisher.stdin.take().expect("piped");
        for i in 1..=100 {
            writeln!(stdin, "{{\"id\": {i}}}").expect("writes");
        }
    }
    assert!(publisher.wait().expect("mosquitto_pub ends").success());
    let source = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE readings (id BIGINT)
               WITH ('connector' = 'mqtt', 'url' = 'mqtts://localhost:{port}', 'topic' = 'readings/#',
                     'client-id' = 'tls-source', 'qos' = '1', 'tls.root-cert' = '{d}/ca.crt',
                     'username' = 'sensor-gw', 'password' = 'pa55-word', 'format' = 'json');
             CREATE TABLE got (id BIGINT)
               WITH ('connector' = 'filesystem', 'path' = '{d}/got', 'format' = 'json');
             INSERT INTO got SELECT id FROM readings;"
        ),
    );
    let mut reader = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "-q", "--checkpoint-dir", "chk"])
        .args(["--checkpoint-interval", "300ms"])
        .arg(&source)
        .current_dir(dir.path())
        .env("SLUICE_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sluice starts");
    let read = crate::wait_for_json_rows(&dir.path().join("got"), 100, Duration::from_secs(30));
    let _ = reader.kill();
    let _ = reader.wait();
    let _ = broker.kill();
    let _ = broker.wait();
    let mut read: Vec<i64> = read.iter().filter_map(|r| r["id"].as_i64()).collect();
    read.sort_unstable();
    assert_eq!(read, (1..=100).collect::<Vec<_>>());
    assert!(run.status.success(), "{}", text(&run).1);
    assert!(!text(&run).1.contains("pa55-word"));
    let (stdout, stderr) = text(&got);
    let mut ids: Vec<i64> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("JSON")["id"]
                .as_i64()
                .expect("id")
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=200).collect::<Vec<_>>(), "{stderr}");
}
