//! Whole-pipeline figures against a real Kafka-protocol broker and an Elasticsearch-API server:
//! events/s from Kafka to Elasticsearch, restart time from a state dir, and the cost of
//! durability, and (with Elasticsearch) freshness at low load: the time from producing a change
//! to its document being readable in Elasticsearch, p50/p99 over single-order transactions.
//! Not a test: it prints numbers.
//!
//! `CDCFLOW_BENCH_KAFKA=127.0.0.1:39092 CDCFLOW_BENCH_ES=http://127.0.0.1:39200 \
//!  CDCFLOW_BENCH_ORDERS=20000 cargo bench --bench kafka` (start the servers with
//! `scripts/services.sh start`). Uses the release binary `target/release/cdcflow`.
//! `CDCFLOW_BENCH_IDLE_EXIT_MS` (default 2000) is how long a run must be idle to exit; raise
//! it above the broker's stalls. `CDCFLOW_BENCH_ONLY=freshness` measures freshness only; `CDCFLOW_BENCH_FRESH_SAMPLES`,
//! `CDCFLOW_BENCH_IDLE_TIMEOUT_MS`, `CDCFLOW_BENCH_FETCH_WAIT_MS` and
//! `CDCFLOW_BENCH_ES_BULK_DELAY_MS` set its parameters.

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
    let root = env!("CARGO_MANIFEST_DIR");
    let bin = format!("{root}/target/release/cdcflow");
    let workers = env_or("CDCFLOW_BENCH_WORKERS", "2");
    let d = Dataflows::load(std::path::Path::new(&format!("{root}/dataflows"))).unwrap();
    let prefix = format!("bench{}", std::process::id());
    if std::env::var("CDCFLOW_BENCH_ONLY").is_ok_and(|v| v == "freshness") {
        let es = es.expect("freshness needs CDCFLOW_BENCH_ES");
        freshness(
            &brokers,
            &es,
            &bin,
            root,
            &d,
            &format!("{prefix}f"),
            &workers,
        );
        return;
    }
    let orders: u64 = env_or("CDCFLOW_BENCH_ORDERS", "20000").parse().unwrap();
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
    create_topics(&brokers, &d, &prefix);
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
    // How long a run must read nothing before it exits (and is timed to the last record):
    // longer than the broker's stalls, or the run ends before it read everything.
    let idle_ms: u64 = env_or("CDCFLOW_BENCH_IDLE_EXIT_MS", "2000")
        .parse()
        .unwrap();
    // librdkafka's longest wait for a fetch to fill; tansu answers a long-polling fetch late.
    let fetch_wait = env_or("CDCFLOW_BENCH_FETCH_WAIT_MS", "500");
    let run = |group: &str, state: Option<&str>, es_prefix: &str| -> (f64, u64) {
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
        .args(["--kafka-option", &format!("fetch.wait.max.ms={fetch_wait}")])
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
        let out = c.stderr(std::process::Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprint!("{stderr}");
        assert!(out.status.success(), "cdcflow run failed");
        let secs = (t.elapsed().as_secs_f64() - idle_ms as f64 / 1000.0).max(0.001);
        // A run that went idle before reading everything (the broker stalled for longer than
        // --exit-when-idle-ms) measured the stall: say so instead of printing a figure.
        let read: u64 = stderr
            .split("summary: records ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        (secs, read)
    };
    let messages = (rows
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count()
        + markers
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count()) as u64;
    let valid = |what: &str, read: u64, want: u64| {
        if read < want {
            println!(
                "{what}: NOT VALID: read {read} of {want} messages before going idle (the broker \
                 stalled longer than --exit-when-idle-ms); the time measured the stall"
            );
            false
        } else {
            true
        }
    };
    let sink = if es.is_some() {
        "Elasticsearch"
    } else {
        "JSON lines"
    };
    let (plain, read) = run("bench-plain", None, &format!("{prefix}-a-"));
    if valid("no state dir", read, messages) {
        println!(
            "Kafka -> {sink}, {workers} workers, fetch.wait.max.ms={fetch_wait}, no state dir: \
             {plain:.2}s, {:.0} events/s",
            stats.events as f64 / plain
        );
    }
    let (durable, read) = run("bench-state", Some("state"), &format!("{prefix}-b-"));
    if valid("--state-dir", read, messages) {
        println!(
            "Kafka -> {sink}, {workers} workers, --state-dir (checkpoint every 10 s and at the \
             end): {durable:.2}s, {:.0} events/s; durability cost {:.1}%",
            stats.events as f64 / durable,
            100.0 * (durable - plain) / plain
        );
        let (restart, _) = run("bench-state", Some("state"), &format!("{prefix}-b-"));
        let size = std::fs::metadata(dir.join("state/checkpoint.bin"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "restart from the state dir ({:.1} MB checkpoint) with nothing new to read: \
             {restart:.2}s",
            size as f64 / 1e6
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(url) = &es {
        freshness(
            &brokers,
            url,
            &bin,
            root,
            &d,
            &format!("{prefix}f"),
            &workers,
        );
    }
}

/// Creates the topics of `prefix` (3 partitions per table, 1 for transaction markers).
fn create_topics(brokers: &str, d: &Dataflows, prefix: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let mut new: Vec<NewTopic> = Vec::new();
    let names: Vec<String> = d
        .catalog
        .tables
        .iter()
        .map(|t| format!("{prefix}.{}.{}", t.db, t.name))
        .collect();
    for n in &names {
        new.push(NewTopic::new(n, 3, TopicReplication::Fixed(1)));
    }
    let tx = format!("{prefix}.transaction");
    new.push(NewTopic::new(&tx, 1, TopicReplication::Fixed(1)));
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
}

/// Freshness at low load: a long-running `run` into Elasticsearch; one order shipped at a time
/// (its item and its shipment, two messages), and the time from producing them to the
/// `units_shipped` document being readable (`GET index/_doc/id`, polled every 2 ms).
fn freshness(
    brokers: &str,
    es: &str,
    bin: &str,
    root: &str,
    d: &Dataflows,
    prefix: &str,
    workers: &str,
) {
    use cdcflow::decode::Row;
    use cdcflow::value::{Decimal, MICROS_PER_DAY, Value, days_from_civil};
    use cdcflow::workload::{DecimalMode, Encoder, Op, RowChange};
    use elasticsearch::Elasticsearch;
    use elasticsearch::http::Method;
    use elasticsearch::http::headers::HeaderMap;
    use elasticsearch::http::transport::Transport;

    let samples: usize = env_or("CDCFLOW_BENCH_FRESH_SAMPLES", "100")
        .parse()
        .unwrap();
    let idle_timeout = env_or("CDCFLOW_BENCH_IDLE_TIMEOUT_MS", "100");
    // librdkafka's longest wait for a fetch to fill (its default is 500 ms).
    let fetch_wait = env_or("CDCFLOW_BENCH_FETCH_WAIT_MS", "500");
    // The Elasticsearch sink's longest wait before a partial `_bulk` (its default is 200 ms).
    let bulk_delay = env_or("CDCFLOW_BENCH_ES_BULK_DELAY_MS", "200");
    create_topics(brokers, d, prefix);
    let index_prefix = format!("{prefix}-");
    let mut child = Command::new(bin)
        .args(["run", "--views", &format!("{root}/dataflows")])
        .args(["--kafka", brokers, "--topics", &format!("{prefix}\\..*")])
        .args(["--group", prefix, "--workers", workers])
        .args(["--idle-timeout-ms", &idle_timeout])
        .args(["--kafka-option", &format!("fetch.wait.max.ms={fetch_wait}")])
        .args(["--elasticsearch", es, "--index-prefix", &index_prefix])
        .args(["--es-bulk-delay-ms", &bulk_delay])
        .args(["--log-interval", "0"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Elasticsearch::new(Transport::single_node(es).unwrap());
    let status = |path: &str| -> u16 {
        rt.block_on(async {
            client
                .send(
                    Method::Get,
                    path,
                    HeaderMap::new(),
                    None::<&()>,
                    None::<&[u8]>,
                    Some(Duration::from_secs(5)),
                )
                .await
                .map_or(0, |r| r.status_code().as_u16())
        })
    };
    let index = format!("{index_prefix}units_shipped");
    let started = Instant::now();
    while status(&format!("/{index}")) != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the index {index} did not appear"
        );
        assert!(child.try_wait().unwrap().is_none(), "cdcflow run exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let items = d.catalog.lookup("orders", "order_items").unwrap();
    let ships = d.catalog.lookup("warehouse", "shipments").unwrap();
    let topic = |t: usize| {
        let t = &d.catalog.tables[t];
        format!("{prefix}.{}.{}", t.db, t.name)
    };
    let mut enc = Encoder::new(&d.catalog, false, DecimalMode::String);
    let first_day = days_from_civil(2030, 1, 1);
    let mut latencies: Vec<f64> = Vec::with_capacity(samples);
    for i in 0..samples {
        let id = i as i64 + 1;
        let day = first_day + i as i64;
        let now = cdcflow::time::now_ms();
        let item = Row::from(vec![
            Value::Int(id),
            Value::Int(id),
            Value::Text("fresh".into()),
            Value::Int(1),
            Value::Dec(Decimal::new(100, 2)),
        ]);
        let ship = Row::from(vec![
            Value::Int(id),
            Value::Int(id),
            Value::Int(1),
            Value::Text("shipped".into()),
            Value::DateTime(day * MICROS_PER_DAY),
        ]);
        let t0 = Instant::now();
        for (n, (table, row)) in [(items, item), (ships, ship)].into_iter().enumerate() {
            let mut line = String::new();
            let change = RowChange {
                table,
                op: Op::Create,
                before: None,
                after: Some(row),
                ts_ms: now,
                file: 1,
                pos: 2 * id as u64 + n as u64,
                row: 0,
            };
            enc.encode(&change, &mut line);
            let key = format!("{id}");
            producer
                .send(BaseRecord::to(&topic(table)).key(&key).payload(&line))
                .unwrap();
        }
        producer.flush(Duration::from_secs(10)).unwrap();
        let date = cdcflow::value::Value::Date(day as i32).to_string();
        let path = format!("/{index}/_doc/{date}%7C1%7Cfresh");
        loop {
            if status(&path) == 200 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "document {path} did not appear"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "freshness, Kafka -> Elasticsearch, {workers} workers, --idle-timeout-ms {idle_timeout}, \
         fetch.wait.max.ms={fetch_wait}, --es-bulk-delay-ms {bulk_delay}, {samples} single-order transactions (produce to document readable): \
         p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        pct(0.5),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
}
