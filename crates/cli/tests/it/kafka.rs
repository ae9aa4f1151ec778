//! The `kafka` and `upsert-kafka` connectors against a real Kafka-protocol broker:
//! tansu on 127.0.0.1:9092 (`scripts/services/kafka.sh` installs and starts it). Data
//! goes in and comes out through rdkafka, never through Sluice. Topics are named after
//! the test and the process, so runs do not collide.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::text;

const BROKER: &str = "127.0.0.1:9092";

/// A record as read back: key and value, either may be null.
type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Per (key, window start second): (count, sum).
type Windows = BTreeMap<(String, i64), (i64, i64)>;

fn topic(base: &str) -> String {
    format!("{base}-{}", std::process::id())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Creates `name` with `partitions` partitions on `broker`.
fn create_topic(broker: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .create()
        .expect("an admin client");
    let t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let res = runtime()
        .block_on(admin.create_topics([&t], &AdminOptions::new()))
        .expect("CreateTopics answered (scripts/services/kafka.sh starts the broker)");
    for r in res {
        if let Err((t, e)) = r {
            assert!(
                e == rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                "creating {t}: {e}"
            );
        }
    }
}

/// One record to produce: key, value, partition (none: by the key's hash), headers.
#[derive(Clone, Default)]
struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    partition: Option<i32>,
    headers: Vec<(String, Vec<u8>)>,
}

fn produce(broker: &str, topic: &str, records: &[Rec]) {
    produce_with(broker, topic, records, true)
}

/// `produce`, one record per batch unless `batching`. tansu 0.6 answers a fetch from an
/// offset inside a record batch with the next batch (Kafka: the batch holding it, whose
/// earlier records the client skips), so resuming mid-batch after a restore would skip
/// records: input that a test resumes in the middle of is written a record per batch.
fn produce_with(broker: &str, topic: &str, records: &[Rec], batching: bool) {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker)
        .set("linger.ms", "5")
        .set("partitioner", "murmur2_random");
    if !batching {
        config.set("batch.num.messages", "1").set("linger.ms", "0");
    }
    let p: BaseProducer = config.create().expect("a producer");
    for r in records {
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
        if let Some(k) = &r.key {
            rec = rec.key(k.as_slice());
        }
        if let Some(v) = &r.value {
            rec = rec.payload(v.as_slice());
        }
        if let Some(part) = r.partition {
            rec = rec.partition(part);
        }
        if !r.headers.is_empty() {
            let mut h = OwnedHeaders::new();
            for (k, v) in &r.headers {
                h = h.insert(Header {
                    key: k,
                    value: Some(v.as_slice()),
                });
            }
            rec = rec.headers(h);
        }
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(60)).expect("all delivered");
    // tansu 0.6 reports a partition's end offset as the first offset of its last record
    // batch (Kafka: one past the last record), so a read to the end offsets would miss
    // the last batch. Each partition ends with a tombstone in a batch of its own: the
    // end offset then falls just before it, and the Kafka source skips tombstones.
    let md = p
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    for part in md.topics()[0].partitions() {
        let rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).partition(part.id());
        p.send(rec).map_err(|(e, _)| e).expect("queued");
        p.flush(Duration::from_secs(60)).expect("delivered");
    }
}

/// Every record of `topic` as (key, value), partition by partition, in offset order:
/// read from the start until nothing new comes for 3 s (tansu's end offsets are not to
/// be trusted, see `produce`).
fn consume_all(broker: &str, topic: &str) -> Vec<KeyValue> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", "sluice-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .expect("a partition");
    }
    c.assign(&tpl).expect("assigned");
    let mut got: BTreeMap<i32, Vec<KeyValue>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = Instant::now();
    while last.elapsed() < Duration::from_secs(3) {
        assert!(Instant::now() < deadline, "reading {topic} took too long");
        let Some(m) = c.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.expect("a record");
        last = Instant::now();
        got.entry(m.partition())
            .or_default()
            .push((m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec)));
    }
    got.into_values().flatten().collect()
}

fn utf8(b: &Option<Vec<u8>>) -> String {
    b.as_deref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_else(|| "<null>".into())
}

fn write_sql(dir: &Path, sql: &str) -> std::path::PathBuf {
    let file = dir.join("pipeline.sql");
    std::fs::write(&file, sql).expect("works in a temp dir");
    file
}

/// Events (k, v, ts as text, ts in ms) over `keys` keys and 60 s of event time; returns
/// them with what a 10 s tumbling window per key must give: (key, window start second)
/// → (count, sum).
fn events(n: usize, keys: usize) -> (Vec<(String, i64, String, i64)>, Windows) {
    let mut out = Vec::with_capacity(n);
    let mut want: Windows = BTreeMap::new();
    for i in 0..n {
        let k = format!("k{}", (i * 7919) % keys);
        let ms = (i as i64 * 60_000) / n as i64;
        let v = (i % 1000) as i64;
        let ts = format!(
            "2026-01-01 00:{:02}:{:02}.{:03}",
            ms / 60_000,
            (ms / 1000) % 60,
            ms % 1000
        );
        let e = want.entry((k.clone(), (ms / 10_000) * 10)).or_default();
        e.0 += 1;
        e.1 += v;
        out.push((k, v, ts, ms));
    }
    (out, want)
}

/// The events as JSON records `{"k","v","ts"}`, keyed by `{"k"}`.
fn json_events(events: &[(String, i64, String, i64)]) -> Vec<Rec> {
    events
        .iter()
        .map(|(k, v, ts, _)| Rec {
            key: Some(format!("{{\"k\":\"{k}\"}}").into_bytes()),
            value: Some(format!("{{\"k\":\"{k}\",\"v\":{v},\"ts\":\"{ts}\"}}").into_bytes()),
            ..Rec::default()
        })
        .collect()
}

/// The events as Avro datums written by apache-avro (not by Sluice) with the schema
/// Flink derives for `(k STRING, v BIGINT, ts TIMESTAMP(3))`.
fn avro_events(events: &[(String, i64, String, i64)]) -> Vec<Rec> {
    use apache_avro::types::Value;
    let schema = apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"record","namespace":"org.apache.flink.avro.generated",
            "fields":[{"name":"k","type":["null","string"],"default":null},
                      {"name":"v","type":["null","long"],"default":null},
                      {"name":"ts","type":["null",{"type":"long","logicalType":"timestamp-millis"}],"default":null}]}"#,
    )
    .expect("a valid schema");
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .expect("a writer");
    let base = 1_767_225_600_000i64; // 2026-01-01 00:00:00 UTC
    events
        .iter()
        .map(|(k, v, _, ms)| {
            let value = Value::Record(vec![
                (
                    "k".into(),
                    Value::Union(1, Box::new(Value::String(k.clone()))),
                ),
                ("v".into(), Value::Union(1, Box::new(Value::Long(*v)))),
                (
                    "ts".into(),
                    Value::Union(1, Box::new(Value::TimestampMillis(base + ms))),
                ),
            ]);
            Rec {
                key: Some(k.clone().into_bytes()),
                value: Some(writer.write_value_to_vec(value).expect("encodes")),
                ..Rec::default()
            }
        })
        .collect()
}

/// Kafka (JSON, then Avro) → 10 s tumbling window → PostgreSQL upsert equals the
/// aggregate computed here from the same events; malformed records go to the dead
/// letters with their topic/partition and offset.
#[test]
fn kafka_json_and_avro_through_a_window_into_postgres_match_the_oracle() {
    let (events, want) = events(30_000, 40);
    let json_bad: [&[u8]; 3] = [
        b"{\"k\":\"x\",\"v\":",
        b"not json",
        b"{\"k\":\"y\",\"v\":\"seven\",\"ts\":\"2026-01-01 00:00:01\"}",
    ];
    // A truncated datum, a union index out of range, a datum with a byte too many.
    let avro_bad: [&[u8]; 3] = [b"\x02\x06ab", b"\x08\x00", b"\x00\x00\x00\x00"];
    window_into_postgres("json", json_events(&events), &json_bad, &want);
    window_into_postgres("avro", avro_events(&events), &avro_bad, &want);
}

fn window_into_postgres(format: &str, mut recs: Vec<Rec>, bad: &[&[u8]], want: &Windows) {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let t = topic(&format!("win-{format}"));
    create_topic(BROKER, &t, 3);
    for (i, b) in bad.iter().enumerate() {
        recs.insert(
            i * 1000 + 5,
            Rec {
                value: Some(b.to_vec()),
                partition: Some(i as i32),
                ..Rec::default()
            },
        );
    }
    produce(BROKER, &t, &recs);
    let pg = format!("kafka_win_{format}_{}", std::process::id());
    crate::jdbc::psql(&format!(
        "DROP TABLE IF EXISTS {pg}; CREATE TABLE {pg} (k text, ws timestamp, n bigint, total bigint, PRIMARY KEY (k, ws))"
    ));
    let sql = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE src (k STRING, v BIGINT, ts TIMESTAMP(3),
                 part INT METADATA FROM 'partition' VIRTUAL,
                 WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
               WITH ('connector' = 'kafka', 'topic' = '{t}',
                     'properties.bootstrap.servers' = '{BROKER}',
                     'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
                     'format' = '{format}');
             CREATE TABLE out (k STRING, ws TIMESTAMP(3), n BIGINT, total BIGINT, PRIMARY KEY (k, ws) NOT ENFORCED)
               WITH ('connector' = 'jdbc', 'url' = 'jdbc:postgresql://127.0.0.1:5432/test',
                     'table-name' = '{pg}', 'username' = 'postgres');
             INSERT INTO out
             SELECT k, window_start, COUNT(*), SUM(v)
             FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND))
             WHERE part >= 0
             GROUP BY k, window_start, window_end;"
        ),
    );
    let out = crate::sluice(
        dir.path(),
        &["run", "-w", "2", sql.to_str().expect("utf-8")],
    );
    assert!(out.status.success(), "{format}: {}", text(&out).1);
    let got = crate::jdbc::psql(&format!(
        "SELECT k, extract(epoch from ws)::bigint % 3600, n, total FROM {pg} ORDER BY 1, 2"
    ));
    let mut got: Vec<String> = got.lines().map(str::to_string).collect();
    got.sort();
    let mut expected: Vec<String> = want
        .iter()
        .map(|((k, ws), (n, s))| format!("{k}|{ws}|{n}|{s}"))
        .collect();
    expected.sort();
    assert_eq!(got.len(), expected.len(), "{format}");
    assert_eq!(got, expected, "{format}");
    let dl = std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).expect("dead letters");
    assert_eq!(dl.lines().count(), bad.len(), "{format}: {dl}");
    for (i, line) in dl.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON lines");
        assert!(
            v["source"]
                .as_str()
                .is_some_and(|s| s.starts_with(&format!("{t}/"))),
            "{line}"
        );
        assert!(
            v["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{i}: {line}"
        );
    }
    crate::jdbc::psql(&format!("DROP TABLE {pg}"));
}

/// Keys in a key format, every metadata column, headers, and a null value (skipped).
#[test]
fn keys_metadata_and_headers_are_read() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let t = topic("meta");
    create_topic(BROKER, &t, 2);
    let recs = vec![
        Rec {
            key: Some(b"{\"id\":1}".to_vec()),
            value: Some(b"{\"name\":\"a\"}".to_vec()),
            partition: Some(0),
            headers: vec![("trace".into(), b"t-1".to_vec())],
        },
        Rec {
            key: Some(b"{\"id\":2}".to_vec()),
            value: None,
            partition: Some(0),
            headers: vec![],
        },
        Rec {
            key: None,
            value: Some(b"{\"name\":\"c\"}".to_vec()),
            partition: Some(1),
            headers: vec![],
        },
    ];
    produce(BROKER, &t, &recs);
    let sql = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE src (id BIGINT, name STRING,
                 topic STRING METADATA VIRTUAL, part INT METADATA FROM 'partition' VIRTUAL,
                 off BIGINT METADATA FROM 'offset' VIRTUAL,
                 ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp',
                 hs MAP<STRING, BYTES> METADATA FROM 'headers')
               WITH ('connector' = 'kafka', 'topic' = '{t}',
                     'properties.bootstrap.servers' = '{BROKER}',
                     'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
                     'key.format' = 'json', 'key.fields' = 'id',
                     'value.format' = 'json', 'value.fields-include' = 'EXCEPT_KEY');
             SELECT id, name, topic = '{t}', part, off, ts IS NOT NULL,
                    CAST(hs['trace'] AS STRING) FROM src;"
        ),
    );
    let out = crate::sluice(
        dir.path(),
        &["run", "-w", "1", sql.to_str().expect("utf-8")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let mut rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("+I[")).collect();
    rows.sort();
    // A null value (id 2) is skipped; a null key gives a NULL id.
    assert_eq!(
        rows,
        [
            "+I[1, a, true, 0, 0, true, t-1]",
            "+I[null, c, true, 1, 0, true, null]"
        ],
        "{stdout}"
    );
}

/// An updating aggregate into upsert-kafka, killed with SIGKILL mid-run several times:
/// the topic, compacted by key, equals the uninterrupted result.
#[test]
fn upsert_kafka_after_kill_9_compacts_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let (src, dst) = (topic("ups-in"), topic("ups-out"));
    create_topic(BROKER, &src, 2);
    create_topic(BROKER, &dst, 2);
    let n = 100_000usize;
    let mut want: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let recs: Vec<Rec> = (0..n)
        .map(|i| {
            let k = format!("u{}", (i * 31) % 2000);
            let v = (i % 97) as i64;
            let e = want.entry(k.clone()).or_default();
            e.0 += 1;
            e.1 += v;
            Rec {
                value: Some(format!("{{\"k\":\"{k}\",\"v\":{v}}}").into_bytes()),
                partition: Some((i % 2) as i32),
                ..Rec::default()
            }
        })
        .collect();
    let started = Instant::now();
    produce_with(BROKER, &src, &recs, false);
    eprintln!(
        "produced {n} records one per batch in {:?}",
        started.elapsed()
    );
    let sql = |bounded: &str| {
        write_sql(
            dir.path(),
            &format!(
                "CREATE TABLE src (k STRING, v BIGINT)
                   WITH ('connector' = 'kafka', 'topic' = '{src}',
                         'properties.bootstrap.servers' = '{BROKER}',
                         'properties.group.id' = '{src}-g',
                         'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = '{bounded}',
                         'format' = 'json');
                 CREATE TABLE dst (k STRING, n BIGINT, total BIGINT, PRIMARY KEY (k) NOT ENFORCED)
                   WITH ('connector' = 'upsert-kafka', 'topic' = '{dst}',
                         'properties.bootstrap.servers' = '{BROKER}',
                         'key.format' = 'json', 'value.format' = 'json');
                 INSERT INTO dst SELECT k, COUNT(*), SUM(v) FROM src GROUP BY k;"
            ),
        )
    };
    let file = sql("unbounded");
    let mut kills = 0;
    for (i, wait_ms) in [1500u64, 2500, 2000].iter().enumerate() {
        let workers = ["2", "1", "2"][i];
        if crate::run_then_kill(dir.path(), &file, workers, "200ms", *wait_ms) {
            kills += 1;
        }
    }
    assert_eq!(kills, 3, "an unbounded source runs until killed");
    // The last run reads to the end offsets and finishes.
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
    let mut compacted: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in consume_all(BROKER, &dst) {
        let key: serde_json::Value = serde_json::from_str(&utf8(&k)).expect("a JSON key");
        let key = key["k"].as_str().expect("k").to_string();
        match v {
            Some(_) => {
                compacted.insert(key, utf8(&v));
            }
            None => {
                compacted.remove(&key);
            }
        }
    }
    let expected: BTreeMap<String, String> = want
        .iter()
        .map(|(k, (n, s))| (k.clone(), format!("{{\"n\":{n},\"total\":{s}}}")))
        .collect();
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(k, v)| compacted.get(*k) != Some(*v))
        .take(5)
        .map(|(k, v)| format!("{k}: want {v}, got {:?}", compacted.get(k)))
        .collect();
    assert!(wrong.is_empty(), "after {kills} kills: {wrong:?}");
    assert_eq!(compacted.len(), expected.len(), "after {kills} kills");
}

/// The broker stops answering (SIGSTOP) for a few seconds mid-run, then comes back:
/// Kafka → Kafka at-least-once loses nothing (and, without a restart, repeats nothing).
#[test]
fn a_broker_that_stops_answering_loses_nothing() {
    let tansu = std::env::var("HOME")
        .map(|h| format!("{h}/.cache/sluice-tools/bin/tansu"))
        .expect("HOME");
    assert!(
        Path::new(&tansu).exists(),
        "{tansu} is missing: scripts/services/kafka.sh installs it"
    );
    let port = 19_000 + (std::process::id() % 1000) as u16;
    let broker = format!("127.0.0.1:{port}");
    let mut server = Command::new(&tansu)
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://{broker}"),
            "--advertised-listener-url",
            &format!("tcp://{broker}"),
            "--storage-engine",
            "memory://tansu/",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&broker).is_err() {
        assert!(Instant::now() < deadline, "tansu did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let guard = Killer(server.id());
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let (src, dst) = ("outage-in", "outage-out");
    create_topic(&broker, src, 2);
    create_topic(&broker, dst, 2);
    let recs: Vec<Rec> = (0..200_000)
        .map(|i| Rec {
            value: Some(format!("{{\"id\":{i},\"v\":{}}}", i % 13).into_bytes()),
            partition: Some(i % 2),
            ..Rec::default()
        })
        .collect();
    produce(&broker, src, &recs);
    let file = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE src (id BIGINT, v BIGINT)
               WITH ('connector' = 'kafka', 'topic' = '{src}', 'properties.bootstrap.servers' = '{broker}',
                     'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
                     'format' = 'json');
             CREATE TABLE dst (id BIGINT, v BIGINT)
               WITH ('connector' = 'kafka', 'topic' = '{dst}', 'properties.bootstrap.servers' = '{broker}',
                     'format' = 'json', 'sink.delivery-guarantee' = 'at-least-once');
             INSERT INTO dst SELECT id, v * 2 FROM src WHERE v <> 5;"
        ),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            "-w",
            "2",
            "--checkpoint-dir",
            "chk",
            "--checkpoint-interval",
            "300ms",
        ])
        .arg(&file)
        .current_dir(dir.path())
        .env("SLUICE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sluice binary starts");
    std::thread::sleep(Duration::from_millis(600));
    signal(server.id(), "-STOP");
    std::thread::sleep(Duration::from_secs(4));
    signal(server.id(), "-CONT");
    let out = child.wait_with_output().expect("the run ends");
    assert!(out.status.success(), "{}", text(&out).1);
    let mut got: Vec<String> = consume_all(&broker, dst)
        .iter()
        .map(|(_, v)| utf8(v))
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..200_000)
        .filter(|i| i % 13 != 5)
        .map(|i| format!("{{\"id\":{i},\"v\":{}}}", (i % 13) * 2))
        .collect();
    want.sort();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    drop(guard);
    let _ = server.wait();
}

struct Killer(u32);

impl Drop for Killer {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
        signal(self.0, "-KILL");
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

/// tansu has no transactions (`EndTxn`): the exactly-once sink is implemented but not
/// verified against a broker here; this shows that the refusal is reported clearly.
#[test]
fn exactly_once_reports_a_broker_without_transactions() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let (src, dst) = (topic("eo-in"), topic("eo-out"));
    create_topic(BROKER, &src, 1);
    create_topic(BROKER, &dst, 1);
    let recs: Vec<Rec> = (0..1000)
        .map(|i| Rec {
            value: Some(format!("{{\"id\":{i}}}").into_bytes()),
            ..Rec::default()
        })
        .collect();
    produce(BROKER, &src, &recs);
    let file = write_sql(
        dir.path(),
        &format!(
            "SET 'restart-strategy.type' = 'none';
             CREATE TABLE src (id BIGINT)
               WITH ('connector' = 'kafka', 'topic' = '{src}', 'properties.bootstrap.servers' = '{BROKER}',
                     'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
                     'format' = 'json');
             CREATE TABLE dst (id BIGINT)
               WITH ('connector' = 'kafka', 'topic' = '{dst}', 'properties.bootstrap.servers' = '{BROKER}',
                     'format' = 'json', 'sink.delivery-guarantee' = 'exactly-once',
                     'sink.transactional-id-prefix' = '{dst}');
             INSERT INTO dst SELECT id FROM src;"
        ),
    );
    let out = crate::sluice(
        dir.path(),
        &[
            "run",
            "-q",
            "-w",
            "1",
            "--checkpoint-dir",
            "chk",
            "--checkpoint-interval",
            "200ms",
            file.to_str().expect("utf-8"),
        ],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("transaction") && stderr.contains("exactly-once"),
        "{stderr}"
    );
}

/// Each mistake a user can make gets a message saying what to do.
#[test]
fn mistakes_are_explained() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let cases: &[(&str, &str, &str)] = &[
        ("'format' = 'json'", "k STRING", "needs option 'topic'"),
        (
            "'topic' = 'x', 'format' = 'json', 'properties.bootstrap.servers' = '127.0.0.1:9092', 'scan.startup.mode' = 'earliest'",
            "k STRING",
            "'earliest' is not one of earliest-offset",
        ),
        (
            "'topic' = 'x', 'format' = 'json'",
            "k STRING",
            "'properties.bootstrap.servers'",
        ),
        (
            "'topic' = 'x', 'format' = 'json', 'properties.bootstrap.servers' = '127.0.0.1:9092', 'key.fields' = 'k'",
            "k STRING",
            "'key.format'",
        ),
        (
            "'topic' = 'x', 'format' = 'json', 'properties.bootstrap.servers' = '127.0.0.1:9092', 'properties.enable.auto.commit' = 'true'",
            "k STRING",
            "Sluice sets it",
        ),
        (
            "'topic' = 'no-such-topic-anywhere', 'format' = 'json', 'properties.bootstrap.servers' = '127.0.0.1:9092'",
            "k STRING",
            "topic 'no-such-topic-anywhere' does not exist",
        ),
        (
            "'topic' = 'x', 'format' = 'json', 'properties.bootstrap.servers' = '127.0.0.1:9092'",
            "k STRING, o BIGINT METADATA FROM 'offsett'",
            "Kafka has no metadata 'offsett'",
        ),
        (
            "'topic' = 'x', 'format' = 'jsn', 'properties.bootstrap.servers' = '127.0.0.1:9092'",
            "k STRING",
            "unknown format 'jsn'",
        ),
    ];
    for (options, columns, want) in cases {
        let file = write_sql(
            dir.path(),
            &format!(
                "CREATE TABLE src ({columns}) WITH ('connector' = 'kafka', {options});
                 SELECT k FROM src;"
            ),
        );
        let out = crate::sluice(dir.path(), &["run", file.to_str().expect("utf-8")]);
        let (_, stderr) = text(&out);
        assert_ne!(out.status.code(), Some(0), "{options}");
        assert!(
            stderr.contains(want),
            "{options}: want '{want}' in {stderr}"
        );
    }
    let file = write_sql(
        dir.path(),
        "CREATE TABLE src (k STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
         CREATE TABLE dst (k STRING, n BIGINT) WITH ('connector' = 'upsert-kafka', 'topic' = 'x',
            'properties.bootstrap.servers' = '127.0.0.1:9092', 'key.format' = 'json', 'value.format' = 'json');
         INSERT INTO dst SELECT k, COUNT(*) FROM src GROUP BY k;",
    );
    let out = crate::sluice(dir.path(), &["run", file.to_str().expect("utf-8")]);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("needs a PRIMARY KEY"), "{stderr}");
    let file = write_sql(
        dir.path(),
        "CREATE TABLE src (k STRING, o BIGINT METADATA FROM 'offset') WITH ('connector' = 'datagen');
         SELECT k FROM src;",
    );
    let out = crate::sluice(dir.path(), &["run", file.to_str().expect("utf-8")]);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("has no metadata"), "{stderr}");
}

/// Debezium change events (inserts, updates, deletes of a `users` table) from Kafka,
/// aggregated and upserted into PostgreSQL: the result equals the aggregate of the
/// table's final state.
#[test]
fn debezium_changelog_through_an_aggregate_into_postgres() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let t = topic("cdc-users");
    create_topic(BROKER, &t, 2);
    let cities = ["Oslo", "Lima", "Pune", "Kyiv", "Nice"];
    let mut state: BTreeMap<i64, (String, i64)> = BTreeMap::new();
    let mut recs = Vec::new();
    let mut seed = 42u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let image = |id: i64, (city, balance): &(String, i64)| {
        format!("{{\"id\":{id},\"city\":\"{city}\",\"balance\":{balance}}}")
    };
    for _ in 0..20_000 {
        let id = (next() % 2000) as i64;
        let roll = next() % 10;
        let event = match (state.get(&id).cloned(), roll) {
            (None, _) => {
                let row = (
                    cities[(next() % 5) as usize].to_string(),
                    (next() % 1000) as i64,
                );
                let e = format!(
                    "{{\"before\":null,\"after\":{},\"op\":\"c\"}}",
                    image(id, &row)
                );
                state.insert(id, row);
                e
            }
            (Some(old), 0) => {
                state.remove(&id);
                format!(
                    "{{\"before\":{},\"after\":null,\"op\":\"d\"}}",
                    image(id, &old)
                )
            }
            (Some(old), _) => {
                let row = (
                    cities[(next() % 5) as usize].to_string(),
                    (next() % 1000) as i64,
                );
                let e = format!(
                    "{{\"schema\":{{}},\"payload\":{{\"before\":{},\"after\":{},\"op\":\"u\"}}}}",
                    image(id, &old),
                    image(id, &row)
                );
                state.insert(id, row);
                e
            }
        };
        recs.push(Rec {
            key: Some(format!("{{\"id\":{id}}}").into_bytes()),
            value: Some(event.into_bytes()),
            ..Rec::default()
        });
    }
    produce(BROKER, &t, &recs);
    let pg = format!("kafka_cdc_{}", std::process::id());
    crate::jdbc::psql(&format!(
        "DROP TABLE IF EXISTS {pg}; CREATE TABLE {pg} (city text PRIMARY KEY, users bigint, total bigint)"
    ));
    let sql = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE users (id BIGINT, city STRING, balance BIGINT)
               WITH ('connector' = 'kafka', 'topic' = '{t}',
                     'properties.bootstrap.servers' = '{BROKER}',
                     'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
                     'format' = 'debezium-json');
             CREATE TABLE per_city (city STRING, users BIGINT, total BIGINT, PRIMARY KEY (city) NOT ENFORCED)
               WITH ('connector' = 'jdbc', 'url' = 'jdbc:postgresql://127.0.0.1:5432/test',
                     'table-name' = '{pg}', 'username' = 'postgres');
             INSERT INTO per_city SELECT city, COUNT(*), SUM(balance) FROM users GROUP BY city;"
        ),
    );
    let out = crate::sluice(
        dir.path(),
        &["run", "-w", "2", sql.to_str().expect("utf-8")],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let mut want: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (city, balance) in state.values() {
        let e = want.entry(city.clone()).or_default();
        e.0 += 1;
        e.1 += balance;
    }
    let want: Vec<String> = want
        .iter()
        .map(|(c, (n, s))| format!("{c}|{n}|{s}"))
        .collect();
    let got = crate::jdbc::psql(&format!(
        "SELECT city, users, total FROM {pg} ORDER BY city"
    ));
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(got, want);
    crate::jdbc::psql(&format!("DROP TABLE {pg}"));
}

/// Protobuf both ways against protoc: messages protoc encoded from text are read, changed
/// and written to another topic; protoc decodes what Sluice wrote. Records that are not
/// messages go to the dead letters.
#[test]
fn protobuf_messages_from_protoc_are_read_and_written_back() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let d = dir.path();
    std::fs::write(
        d.join("orders.proto"),
        r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
enum Status { NEW = 0; PAID = 1; }
message Order {
  int64 id = 1;
  string customer = 2;
  double amount = 3;
  Status status = 4;
  repeated string tags = 5;
  google.protobuf.Timestamp created = 6;
}
"#,
    )
    .expect("works in a temp dir");
    let protoc = |args: &[&str], input: &[u8]| -> Vec<u8> {
        use std::io::Write;
        let mut child = Command::new("protoc")
            .args(["-I", ".", "-I", "/usr/include"])
            .args(args)
            .current_dir(d)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("protoc runs (scripts/test.sh installs protobuf-compiler)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("writes");
        let out = child.wait_with_output().expect("protoc ends");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    protoc(
        &[
            "--include_imports",
            "--descriptor_set_out=orders.desc",
            "orders.proto",
        ],
        b"",
    );
    let base = 1_767_225_600i64;
    let mut recs = Vec::new();
    for i in 1..=20i64 {
        let text = format!(
            "id: {i} customer: \"c{i}\" amount: {i}.5 status: {} tags: \"a\" tags: \"t{i}\" created {{ seconds: {} nanos: 250000000 }}",
            if i % 2 == 0 { "PAID" } else { "NEW" },
            base + i
        );
        recs.push(Rec {
            value: Some(protoc(
                &["--encode=shop.Order", "orders.proto"],
                text.as_bytes(),
            )),
            ..Rec::default()
        });
    }
    recs.insert(
        5,
        Rec {
            value: Some(b"\xff\xff\xff".to_vec()),
            ..Rec::default()
        },
    );
    recs.insert(
        9,
        Rec {
            value: Some(vec![0x0a, 0x10, b'x']),
            ..Rec::default()
        },
    );
    let (t_in, t_out) = (topic("pb-in"), topic("pb-out"));
    create_topic(BROKER, &t_in, 2);
    create_topic(BROKER, &t_out, 2);
    produce(BROKER, &t_in, &recs);
    let sql = write_sql(
        d,
        &format!(
            "CREATE TABLE src (id BIGINT, customer STRING, amount DOUBLE, status STRING,
                 tags ARRAY<STRING>, created TIMESTAMP(3))
               WITH ('connector' = 'kafka', 'topic' = '{t_in}',
                     'properties.bootstrap.servers' = '{BROKER}',
                     'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
                     'format' = 'protobuf', 'protobuf.descriptor-file' = 'orders.desc',
                     'protobuf.message-name' = 'shop.Order');
             CREATE TABLE dst (id BIGINT, customer STRING, amount DOUBLE, status STRING,
                 tags ARRAY<STRING>, created TIMESTAMP(3))
               WITH ('connector' = 'kafka', 'topic' = '{t_out}',
                     'properties.bootstrap.servers' = '{BROKER}',
                     'format' = 'protobuf', 'protobuf.descriptor-file' = 'orders.desc',
                     'protobuf.message-name' = 'shop.Order');
             INSERT INTO dst
             SELECT id * 10, UPPER(customer), amount * 2, status, tags, created + INTERVAL '1' SECOND
             FROM src;"
        ),
    );
    let out = crate::sluice(d, &["run", "-w", "2", sql.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out).1);
    let dl = std::fs::read_to_string(d.join("dead-letters.jsonl")).expect("dead letters");
    assert_eq!(dl.lines().count(), 2, "{dl}");
    assert!(dl.contains("not a shop.Order message"), "{dl}");
    let mut got: Vec<String> = consume_all(BROKER, &t_out)
        .into_iter()
        .filter_map(|(_, v)| v)
        .map(|v| {
            let t = protoc(&["--decode=shop.Order", "orders.proto"], &v);
            String::from_utf8(t)
                .expect("text")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    got.sort();
    let mut want: Vec<String> = (1..=20i64)
        .map(|i| {
            let status = if i % 2 == 0 { " status: PAID" } else { "" };
            format!(
                "id: {} customer: \"C{i}\" amount: {}{status} tags: \"a\" tags: \"t{i}\" created {{ seconds: {} nanos: 250000000 }}",
                i * 10,
                (i as f64 + 0.5) * 2.0,
                base + i + 1
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
}

/// An upsert-kafka topic read as a changelog: each record replaces its key's row, a
/// tombstone deletes it; copied into PostgreSQL the table equals the topic compacted,
/// and an aggregate over it counts only the live keys.
#[test]
fn an_upsert_topic_is_read_as_a_changelog() {
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let t = topic("ups-src");
    create_topic(BROKER, &t, 2);
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    let recs: Vec<Rec> = (0..3000i64)
        .map(|i| {
            let k = format!("u{}", (i * 37) % 200);
            let value = if i % 7 == 3 {
                want.remove(&k);
                None
            } else {
                want.insert(k.clone(), i);
                Some(format!("{{\"v\":{i}}}").into_bytes())
            };
            Rec {
                key: Some(format!("{{\"k\":\"{k}\"}}").into_bytes()),
                value,
                ..Rec::default()
            }
        })
        .collect();
    produce(BROKER, &t, &recs);
    let (rows, totals) = (
        format!("ups_rows_{}", std::process::id()),
        format!("ups_totals_{}", std::process::id()),
    );
    crate::jdbc::psql(&format!(
        "DROP TABLE IF EXISTS {rows}; CREATE TABLE {rows} (k text PRIMARY KEY, v bigint);
         DROP TABLE IF EXISTS {totals}; CREATE TABLE {totals} (id int PRIMARY KEY, n bigint, total bigint)"
    ));
    let sql = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE u (k STRING, v BIGINT, PRIMARY KEY (k) NOT ENFORCED)
               WITH ('connector' = 'upsert-kafka', 'topic' = '{t}',
                     'properties.bootstrap.servers' = '{BROKER}',
                     'key.format' = 'json', 'value.format' = 'json',
                     'scan.bounded.mode' = 'latest-offset');
             CREATE TABLE r (k STRING, v BIGINT, PRIMARY KEY (k) NOT ENFORCED)
               WITH ('connector' = 'jdbc', 'url' = 'jdbc:postgresql://127.0.0.1:5432/test',
                     'table-name' = '{rows}', 'username' = 'postgres');
             CREATE TABLE s (id INT, n BIGINT, total BIGINT, PRIMARY KEY (id) NOT ENFORCED)
               WITH ('connector' = 'jdbc', 'url' = 'jdbc:postgresql://127.0.0.1:5432/test',
                     'table-name' = '{totals}', 'username' = 'postgres');
             INSERT INTO r SELECT k, v FROM u;
             INSERT INTO s SELECT 1, COUNT(*), SUM(v) FROM u;"
        ),
    );
    let out = crate::sluice(
        dir.path(),
        &["run", "-w", "2", sql.to_str().expect("utf-8")],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let got: BTreeMap<String, i64> = crate::jdbc::psql(&format!("SELECT k, v FROM {rows}"))
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('|')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        crate::jdbc::psql(&format!("SELECT n, total FROM {totals}")).trim(),
        format!("{}|{}", want.len(), want.values().sum::<i64>())
    );
    crate::jdbc::psql(&format!("DROP TABLE {rows}; DROP TABLE {totals}"));
}

/// Consumer lag in `/metrics`: a pipeline whose sink cannot keep up (a webhook whose
/// server takes connections and never answers) falls behind a topic that gets 20,000
/// records, and `sluice_source_lag_records` says by how much while the source waits.
#[test]
fn consumer_lag_is_exported() {
    let t = topic("lag");
    create_topic(BROKER, &t, 1);
    // Takes connections and keeps them open without a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let silent_port = silent.local_addr().expect("bound").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().flatten() {
            held.push(c);
        }
    });
    let dir = tempfile::tempdir().expect("works in a temp dir");
    let sql = write_sql(
        dir.path(),
        &format!(
            "CREATE TABLE events (k STRING, v BIGINT)
               WITH ('connector' = 'kafka', 'topic' = '{t}', 'properties.bootstrap.servers' = '{BROKER}',
                     'scan.startup.mode' = 'earliest-offset', 'format' = 'json');
             CREATE TABLE hook (k STRING, v BIGINT)
               WITH ('connector' = 'webhook', 'url' = 'http://127.0.0.1:{silent_port}/x',
                     'sink.request-timeout' = '60 s', 'sink.max-retries' = '0',
                     'sink.max-concurrent-requests' = '1');
             INSERT INTO hook SELECT k, v FROM events;"
        ),
    );
    let port = crate::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            "-q",
            "-w",
            "1",
            "--http",
            &format!("127.0.0.1:{port}"),
        ])
        .arg(&sql)
        .current_dir(dir.path())
        .env("SLUICE_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sluice starts");
    crate::wait_for_port(port, &mut child, "sluice run --http");
    let recs: Vec<Rec> = (0..20_000)
        .map(|i| Rec {
            value: Some(format!("{{\"k\": \"k{i}\", \"v\": {i}}}").into_bytes()),
            partition: Some(0),
            ..Rec::default()
        })
        .collect();
    // One record per batch: tansu's end of a partition is the first offset of its
    // last batch (see kafka.md).
    produce_with(BROKER, &t, &recs, false);
    let lag = || -> Option<f64> {
        let m = crate::http_request(&format!("http://127.0.0.1:{port}"), "GET", "/metrics");
        crate::metric_values(
            &m,
            "sluice_source_lag_records{pipeline=\"pipeline\",table=\"events\"}",
        )
        .first()
        .copied()
    };
    let started = Instant::now();
    let mut seen = lag();
    while seen.is_none_or(|l| l < 11_000.0) && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
        seen = lag();
    }
    let _ = child.kill();
    let _ = child.wait();
    let seen = seen.expect("sluice_source_lag_records is exported");
    // The source (chained to the sink) hands on one batch of at most 8,192 rows and
    // waits on its first request.
    assert!(
        (11_000.0..=20_000.0).contains(&seen),
        "lag {seen} of 20,000 records"
    );
}
