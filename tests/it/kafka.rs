//! `cdcflow run` against a real Kafka-protocol broker (tansu) and an Elasticsearch-API server
//! (noida-db): generated workloads produced to 3-partition topics keyed as Debezium keys them,
//! the transaction markers on their own topic; every index and the change log must equal the
//! in-process replay of the same messages (itself checked against the oracle and MariaDB).
//!
//! Needs `CDCFLOW_TEST_KAFKA` (and, for the Elasticsearch checks, `CDCFLOW_TEST_ES_URL`), as
//! `scripts/services.sh start` exports them; skipped with a notice otherwise.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cdcflow::decode::Decoded;
use cdcflow::decode::debezium::DebeziumDecoder;
use cdcflow::sink::{Names, ViewState};
use cdcflow::source::Input;
use cdcflow::sql::Dataflows;
use cdcflow::workload::{GenOptions, TxMetadata};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value as Json;

use crate::common::{outbound, replay_inputs};

pub(crate) fn broker() -> Option<String> {
    match std::env::var("CDCFLOW_TEST_KAFKA") {
        Ok(b) if !b.is_empty() => Some(b),
        _ => {
            eprintln!("skipped: CDCFLOW_TEST_KAFKA is not set (scripts/services.sh start)");
            None
        }
    }
}

pub(crate) fn es_url() -> Option<String> {
    std::env::var("CDCFLOW_TEST_ES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A topic prefix no other test (or earlier run) uses: tansu cannot delete one topic alone.
pub(crate) fn prefix(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!(
        "{tag}{}x{}x{}",
        std::process::id(),
        now % 100_000_000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A generated workload: row messages and, separately, transaction markers.
pub(crate) struct Workload {
    pub(crate) rows: Vec<u8>,
    pub(crate) markers: Vec<u8>,
}

pub(crate) fn workload(orders: u64, seed: u64, meta: TxMetadata) -> Workload {
    let mut rows = Vec::new();
    let mut markers = Vec::new();
    cdcflow::workload::generate_with_markers(
        &GenOptions {
            orders,
            seed,
            shuffle: 0,
            duplicates: 0.0,
            schemas: false,
            decimal: cdcflow::workload::DecimalMode::String,
            span_secs: 3600,
            tx_metadata: meta,
        },
        &mut rows,
        Some(&mut markers),
    )
    .unwrap();
    Workload { rows, markers }
}

pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty())
}

/// Creates the topics of `prefix` (3 partitions per table, 1 for the transaction markers).
pub(crate) fn create_topics(brokers: &str, d: &Dataflows, prefix: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let mut names: Vec<(String, i32)> = d
        .catalog
        .tables
        .iter()
        .map(|t| (format!("{prefix}.{}.{}", t.db, t.name), 3))
        .collect();
    names.push((format!("{prefix}.transaction"), 1));
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|(n, p)| NewTopic::new(n, *p, TopicReplication::Fixed(1)))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = rt
        .block_on(admin.create_topics(&topics, &AdminOptions::new()))
        .unwrap();
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

/// Produces row messages to `<prefix>.<db>.<table>`, keyed by the row's primary key (as
/// Debezium keys them), and markers to `<prefix>.transaction`.
pub(crate) fn produce(
    brokers: &str,
    d: &Dataflows,
    prefix: &str,
    rows: &[&[u8]],
    markers: &[&[u8]],
) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut decoder = DebeziumDecoder::new(d.catalog.clone());
    let send = |topic: &str, key: &str, payload: &[u8]| {
        loop {
            match producer.send(BaseRecord::to(topic).key(key).payload(payload)) {
                Ok(()) => break,
                Err((e, _)) => {
                    assert!(
                        e.to_string().contains("Queue full"),
                        "produce to {topic}: {e}"
                    );
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    };
    for line in rows {
        let Ok(Decoded::Events(evs)) = decoder.decode(line) else {
            panic!("generated rows decode");
        };
        let ev = &evs[0];
        let t = &d.catalog.tables[ev.table];
        let key = format!("{:?}", ev.key);
        send(&format!("{prefix}.{}.{}", t.db, t.name), &key, line);
    }
    for line in markers {
        send(&format!("{prefix}.transaction"), "tx", line);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// The expected final documents: the in-process replay of the same messages.
pub(crate) fn expected(d: &Dataflows, w: &Workload) -> ViewState {
    let inputs = vec![
        Input::from_bytes("rows", w.rows.clone()),
        Input::from_bytes("markers", w.markers.clone()),
    ];
    replay_inputs(d, inputs, 1, 0).state
}

pub(crate) fn cdcflow(args: &[&str], log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cdcflow"))
        .args(args)
        .env("RUST_LOG", "cdcflow=info,warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("cdcflow starts")
}

pub(crate) fn wait(mut child: Child, limit: Duration, log: &Path) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "cdcflow run failed ({status}):\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!(
                "cdcflow run did not finish in {limit:?}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn doc_json(d: &Dataflows, view: usize, doc: &cdcflow::decode::Row) -> Json {
    let names = Names::of(&d.views);
    let mut s = String::new();
    names.doc_json(view, doc, &mut s);
    serde_json::from_str(&s).unwrap()
}

/// Expected state as JSON documents, for comparison with what came back from a log or an index.
pub(crate) fn as_json(d: &Dataflows, state: &ViewState) -> BTreeMap<(usize, String), Json> {
    state
        .iter()
        .map(|((v, id), doc)| ((*v, id.clone()), doc_json(d, *v, doc)))
        .collect()
}

pub(crate) type JsonState = BTreeMap<(usize, String), Json>;

/// Reads a JSON-lines change log (appended to across restarts) into the final documents.
pub(crate) fn read_log_json(d: &Dataflows, path: &Path) -> JsonState {
    let names = Names::of(&d.views);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut state = JsonState::new();
    for line in text.lines() {
        let j: Json = serde_json::from_str(line).unwrap();
        let view = names
            .views
            .iter()
            .position(|(v, _)| v == j["view"].as_str().unwrap())
            .unwrap();
        let id = j["id"].as_str().unwrap().to_string();
        match j["op"].as_str().unwrap() {
            "upsert" => {
                state.insert((view, id), j["doc"].clone());
            }
            _ => {
                state.remove(&(view, id));
            }
        }
    }
    state
}

pub(crate) fn assert_same(what: &str, got: &JsonState, want: &JsonState) {
    if got != want {
        let missing: Vec<_> = want
            .keys()
            .filter(|k| !got.contains_key(*k))
            .take(5)
            .collect();
        let extra: Vec<_> = got
            .keys()
            .filter(|k| !want.contains_key(*k))
            .take(5)
            .collect();
        let differ: Vec<_> = want
            .iter()
            .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
            .take(5)
            .map(|(k, v)| (k, v, &got[k]))
            .collect();
        panic!(
            "{what}: {} documents, want {}; missing {missing:?}; extra {extra:?}; differ {differ:?}",
            got.len(),
            want.len()
        );
    }
}

/// Every index of the views, as JSON documents.
pub(crate) fn read_indices(d: &Dataflows, url: &str, index_prefix: &str) -> JsonState {
    let http = super::elasticsearch::Http::new(url);
    let mut out = JsonState::new();
    for (vi, v) in d.views.iter().enumerate() {
        for (id, doc) in http.documents(&format!("{index_prefix}{}", v.name)) {
            out.insert((vi, id), doc);
        }
    }
    out
}

#[test]
fn kafka_to_elasticsearch_equals_replay_with_two_workers() {
    let Some(brokers) = broker() else { return };
    let d = outbound();
    let p = prefix("e2e");
    let w = workload(300, 11, TxMetadata::Separate);
    create_topics(&brokers, &d, &p);
    let rows: Vec<&[u8]> = lines(&w.rows).collect();
    let markers: Vec<&[u8]> = lines(&w.markers).collect();
    produce(&brokers, &d, &p, &rows, &markers);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("changes.jsonl");
    let log = dir.path().join("stderr.log");
    let topics = format!("{}\\..*", regex_escape(&p));
    let index_prefix = format!("{}-", p.to_ascii_lowercase());
    let mut args = vec![
        "run",
        "--kafka",
        &brokers,
        "--topics",
        &topics,
        "--group",
        &p,
        "--workers",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--exit-when-idle-ms",
        "4000",
        "--idle-timeout-ms",
        "500",
    ];
    let es = es_url();
    if let Some(url) = &es {
        args.extend(["--elasticsearch", url, "--index-prefix", &index_prefix]);
    }
    let child = cdcflow(&args, &log);
    wait(child, Duration::from_secs(120), &log);
    eprintln!("{}", std::fs::read_to_string(&log).unwrap_or_default());
    let want = as_json(&d, &expected(&d, &w));
    assert!(!want.is_empty());
    assert_same("change log", &read_log_json(&d, &out), &want);
    if let Some(url) = &es {
        assert_same("indices", &read_indices(&d, url, &index_prefix), &want);
    }
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        stderr.contains("(0 incomplete)"),
        "every transaction completes: {stderr}"
    );
}

#[test]
fn kafka_sigkill_twice_restarts_from_the_state_dir() {
    let Some(brokers) = broker() else { return };
    let d = outbound();
    let p = prefix("kill");
    let w = workload(600, 12, TxMetadata::Separate);
    create_topics(&brokers, &d, &p);
    let rows: Vec<&[u8]> = lines(&w.rows).collect();
    let markers: Vec<&[u8]> = lines(&w.markers).collect();
    let half = rows.len() / 2;
    // Markers may run ahead of their rows: the transaction waits for them.
    produce(
        &brokers,
        &d,
        &p,
        &rows[..half],
        &markers[..markers.len() / 2],
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("changes.jsonl");
    let topics = format!("{}\\..*", regex_escape(&p));
    let index_prefix = format!("{}-", p.to_ascii_lowercase());
    let es = es_url();
    let args = |exit: bool| -> Vec<String> {
        let mut a: Vec<String> = [
            "run",
            "--kafka",
            &brokers,
            "--topics",
            &topics,
            "--group",
            &p,
            "--workers",
            "2",
            "--state-dir",
            state.to_str().unwrap(),
            "--checkpoint-interval-secs",
            "0.2",
            "--out",
            out.to_str().unwrap(),
            "--idle-timeout-ms",
            "500",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(url) = &es {
            a.extend(["--elasticsearch".into(), url.clone()]);
            a.extend(["--index-prefix".into(), index_prefix.clone()]);
        }
        if exit {
            a.extend(["--exit-when-idle-ms".into(), "4000".into()]);
        }
        a
    };
    let log = dir.path().join("stderr.log");
    for (round, more) in [
        (0, &rows[half..rows.len() * 3 / 4]),
        (1, &rows[rows.len() * 3 / 4..]),
    ] {
        let a = args(false);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let mut child = cdcflow(&a, &log);
        // Let it read, checkpoint and write for a while, then crash it mid-way.
        std::thread::sleep(Duration::from_millis(2500));
        let m = if round == 0 {
            &markers[markers.len() / 2..markers.len() * 3 / 4]
        } else {
            &markers[markers.len() * 3 / 4..]
        };
        produce(&brokers, &d, &p, more, m);
        std::thread::sleep(Duration::from_millis(300));
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
        assert!(
            cdcflow::pipeline::checkpoint::read(&state)
                .unwrap()
                .is_some(),
            "a checkpoint was written before the crash:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    let a = args(true);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let child = cdcflow(&a, &log);
    wait(child, Duration::from_secs(120), &log);
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(stderr.contains("restoring from checkpoint"), "{stderr}");
    let want = as_json(&d, &expected(&d, &w));
    assert_same(
        "change log after two crashes",
        &read_log_json(&d, &out),
        &want,
    );
    if let Some(url) = &es {
        assert_same(
            "indices after two crashes",
            &read_indices(&d, url, &index_prefix),
            &want,
        );
    }
}

pub(crate) fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

/// `run` logs a status line per `--log-interval`: events/s over the interval, the frontier and
/// its lag, consumer lag, and the sink's pending and acknowledged times. Needs
/// `CDCFLOW_TEST_KAFKA`; skipped with a note otherwise.
#[test]
fn run_logs_a_status_line_per_interval() {
    let Some(brokers) = broker() else { return };
    let d = outbound();
    let p = prefix("interval");
    let w = workload(40, 5, TxMetadata::Off);
    create_topics(&brokers, &d, &p);
    let rows: Vec<&[u8]> = lines(&w.rows).collect();
    produce(&brokers, &d, &p, &rows, &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("changes.jsonl");
    let log = dir.path().join("stderr.log");
    let dead = dir.path().join("dead.jsonl");
    let topics = format!("{}\\..*", regex_escape(&p));
    let args = vec![
        "run",
        "--kafka",
        &brokers,
        "--topics",
        &topics,
        "--group",
        &p,
        "--out",
        out.to_str().unwrap(),
        "--dead-letter",
        dead.to_str().unwrap(),
        "--log-interval",
        "0.2",
        "--exit-when-idle-ms",
        "3000",
        "--idle-timeout-ms",
        "500",
    ];
    let child = cdcflow(&args, &log);
    wait(child, Duration::from_secs(120), &log);
    let stderr = std::fs::read_to_string(&log).unwrap();
    let status: Vec<&str> = stderr.lines().filter(|l| l.starts_with("run: ")).collect();
    eprintln!("{}", status.join("\n"));
    // The run lasts at least the 3 s of --exit-when-idle-ms: several 0.2 s intervals.
    assert!(status.len() >= 2, "{stderr}");
    for l in &status {
        for part in [" events/s over ", "; sink: ", " pending, acknowledged "] {
            assert!(l.contains(part), "`{part}` missing in {l}");
        }
    }
    let last = status.last().unwrap();
    assert!(last.contains("; frontier 2026-"), "{last}");
    assert!(last.contains("; consumer lag 0 messages"), "{last}");
    assert!(
        last.contains("; sink: 0 pending, acknowledged up to 2026-"),
        "{last}"
    );
}
