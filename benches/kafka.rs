//! Whole-pipeline figures against a real Kafka-protocol broker and an Elasticsearch-API server:
//! events/s from Kafka to Elasticsearch, restart time from a state dir, and the cost of
//! durability. Not a test: it prints numbers.
//!
//! `CDCFLOW_BENCH_KAFKA=127.0.0.1:39092 CDCFLOW_BENCH_ES=http://127.0.0.1:39200 \
//!  CDCFLOW_BENCH_ORDERS=20000 cargo bench --bench kafka` (start the servers with
//! `scripts/services.sh start`). Uses the release binary `target/release/cdcflow`.

use std::process::Command;
use std::time::{Duration, Instant};

use cdcflow::decode::Decoded;
use cdcflow::decode::debezium::DebeziumDecoder;
use cdcflow::sql::Dataflows;
use cdcflow::workload::{GenOptions, TxMetadata};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn env_or(k: &str, d: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| d.to_string())
}

fn main() {
    let Ok(brokers) = std::env::var("CDCFLOW_BENCH_KAFKA") else {
        eprintln!("skipped: set CDCFLOW_BENCH_KAFKA (and CDCFLOW_BENCH_ES) to run this bench");
        return;
    };
    let es = std::env::var("CDCFLOW_BENCH_ES").ok();
    let orders: u64 = env_or("CDCFLOW_BENCH_ORDERS", "20000").parse().unwrap();
    let workers = env_or("CDCFLOW_BENCH_WORKERS", "2");
    let root = env!("CARGO_MANIFEST_DIR");
    let bin = format!("{root}/target/release/cdcflow");
    let d = Dataflows::load(std::path::Path::new(&format!("{root}/dataflows"))).unwrap();
    let (mut rows, mut markers) = (Vec::new(), Vec::new());
    let stats = cdcflow::workload::generate_with_markers(
        &GenOptions {
            orders,
            seed: 7,
            shuffle: 0,
            duplicates: 0.0,
            schemas: false,
            decimal: cdcflow::workload::DecimalMode::String,
            span_secs: 3600,
            tx_metadata: TxMetadata::Separate,
        },
        &mut rows,
        Some(&mut markers),
    )
    .unwrap();
    let prefix = format!("bench{}", std::process::id());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let mut topics: Vec<(String, i32)> = d
        .catalog
        .tables
        .iter()
        .map(|t| (format!("{prefix}.{}.{}", t.db, t.name), 3))
        .collect();
    topics.push((format!("{prefix}.transaction"), 1));
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(n, p)| NewTopic::new(n, *p, TopicReplication::Fixed(1)))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for r in rt
        .block_on(admin.create_topics(&new, &AdminOptions::new()))
        .unwrap()
    {
        r.unwrap();
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let mut dec = DebeziumDecoder::new(d.catalog.clone());
    let started = Instant::now();
    let send = |topic: &str, key: &str, line: &[u8]| loop {
        match producer.send(BaseRecord::to(topic).key(key).payload(line)) {
            Ok(()) => break,
            Err(_) => {
                producer.poll(Duration::from_millis(5));
            }
        }
    };
    for line in rows.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(Decoded::Events(e)) = dec.decode(line) else {
            panic!("decodes")
        };
        let t = &d.catalog.tables[e[0].table];
        send(
            &format!("{prefix}.{}.{}", t.db, t.name),
            &format!("{:?}", e[0].key),
            line,
        );
    }
    for line in markers.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        send(&format!("{prefix}.transaction"), "tx", line);
    }
    producer.flush(Duration::from_secs(600)).unwrap();
    println!(
        "produced {} events in {} transactions ({} messages) in {:.1}s",
        stats.events,
        stats.transactions,
        stats.lines,
        started.elapsed().as_secs_f64()
    );
    let dir = std::env::temp_dir().join(format!("cdcflow-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let idle_ms = 2000u64;
    let run = |group: &str, state: Option<&str>, es_prefix: &str| -> f64 {
        let mut c = Command::new(&bin);
        c.args([
            "run",
            "--views",
            &format!("{root}/dataflows"),
            "--kafka",
            &brokers,
        ])
        .args(["--topics", &format!("{prefix}\\..*"), "--group", group])
        .args([
            "--workers",
            &workers,
            "--exit-when-idle-ms",
            &idle_ms.to_string(),
        ])
        .args(["--idle-timeout-ms", "500"])
        .stdout(std::process::Stdio::null());
        if let Some(s) = state {
            c.args(["--state-dir", &dir.join(s).display().to_string()]);
        }
        match &es {
            Some(url) => {
                c.args(["--elasticsearch", url, "--index-prefix", es_prefix]);
            }
            None => {
                c.args([
                    "--out",
                    &dir.join(format!("{group}.jsonl")).display().to_string(),
                ]);
            }
        }
        let t = Instant::now();
        let status = c.status().unwrap();
        assert!(status.success(), "cdcflow run failed");
        (t.elapsed().as_secs_f64() - idle_ms as f64 / 1000.0).max(0.001)
    };
    let sink = if es.is_some() {
        "Elasticsearch"
    } else {
        "JSON lines"
    };
    let plain = run("bench-plain", None, &format!("{prefix}-a-"));
    println!(
        "Kafka -> {sink}, {workers} workers, no state dir: {plain:.2}s, {:.0} events/s",
        stats.events as f64 / plain
    );
    let durable = run("bench-state", Some("state"), &format!("{prefix}-b-"));
    println!(
        "Kafka -> {sink}, {workers} workers, --state-dir (checkpoint every 10 s and at the end): \
         {durable:.2}s, {:.0} events/s; durability cost {:.1}%",
        stats.events as f64 / durable,
        100.0 * (durable - plain) / plain
    );
    let restart = run("bench-state", Some("state"), &format!("{prefix}-b-"));
    let size = std::fs::metadata(dir.join("state/checkpoint.bin"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "restart from the state dir ({:.1} MB checkpoint) with nothing new to read: {restart:.2}s",
        size as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
}
