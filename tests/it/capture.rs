//! `cdcflow capture`: a private MariaDB (scripts/mariadb.sh) runs a scripted workload, `capture`
//! publishes its binlog to a real Kafka-protocol broker (tansu) as Debezium messages, and the
//! topics are read back: every message is checked field for field against what Debezium's MySQL
//! connector writes (the envelope and `source` fields of the real 3.0.1 messages in
//! fixtures/debezium/, the value encodings per column type, schemas on and off) and decoded by
//! the same Debezium decoder as real Debezium output. Also the pipeline MariaDB -> capture ->
//! tansu -> `cdcflow run --kafka` ends equal to MariaDB's own results of the view files, with
//! the capture resent whole or killed midway and resumed, into a change log and into the
//! Elasticsearch-API server.
//!
//! Needs MariaDB and `CDCFLOW_TEST_KAFKA` (scripts/services.sh start); skipped otherwise.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cdcflow::decode::debezium::DebeziumDecoder;
use cdcflow::decode::{Decoded, Row};
use cdcflow::schema::Catalog;
use cdcflow::value::{Decimal, Value};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{Value as Json, json};

use crate::common::{outbound, root};
use crate::kafka::{broker, cdcflow, prefix, regex_escape};
use crate::kafka_faults::Guard;
use crate::live::{Server, assert_equals_mariadb, run_workload};

/// One message read back: key and value as JSON (`None`: no key / a tombstone).
#[derive(Debug)]
struct Msg {
    key: Option<Json>,
    value: Option<Json>,
    raw: Option<Vec<u8>>,
}

/// Every message of partition 0 of `topic`, from the beginning to the high watermark.
fn read_topic(brokers: &str, topic: &str) -> Vec<Msg> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("capture-test-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let started = std::time::Instant::now();
    while (out.len() as i64) < high {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {} of {high} messages of {topic}",
            out.len()
        );
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            out.push(Msg {
                key: m.key().map(|k| serde_json::from_slice(k).unwrap()),
                value: m.payload().map(|v| serde_json::from_slice(v).unwrap()),
                raw: m.payload().map(|v| v.to_vec()),
            });
        }
    }
    out
}

/// Runs `cdcflow capture` until it is caught up and idle.
fn capture(server: &Server, brokers: &str, name: &str, start: &str, extra: &[&str], dir: &Path) {
    let log = dir.join(format!("capture-{name}.log"));
    let mut args = vec![
        "capture",
        "--mysql",
        Box::leak(server.url().into_boxed_str()),
        "--server-id",
        "77",
        "--kafka",
        brokers,
        "--server-name",
        name,
        "--start",
        start,
        "--exit-when-idle-ms",
        "1000",
    ];
    args.extend_from_slice(extra);
    let mut g = Guard::new(cdcflow(&args, &log), &log, "cdcflow capture");
    g.finish(Duration::from_secs(40));
}

const TABLE: &str = "CREATE DATABASE shop;
CREATE TABLE shop.items (
  id INT NOT NULL PRIMARY KEY,
  big BIGINT NOT NULL,
  price DECIMAL(12,2) NOT NULL,
  name VARCHAR(64) NOT NULL,
  state ENUM('new','paid','gone') NOT NULL,
  at DATETIME(3) NOT NULL,
  day DATE NULL,
  note VARCHAR(16) NULL
);";

const WORKLOAD: &str = "SET time_zone = '+00:00';
SET timestamp = 1679581805;
INSERT INTO shop.items VALUES (1, -9007199254740993, 12.50, 'Ünïcødé \"q\"', 'paid',
  '2023-03-23 14:30:05.123', '2023-03-23', 'x');
BEGIN;
INSERT INTO shop.items VALUES (2, 7, -0.05, 'two', 'new', '1970-01-01 00:00:00.001', NULL, NULL);
UPDATE shop.items SET price = 99999999.99, state = 'gone' WHERE id = 1;
COMMIT;
SET timestamp = 1679581806;
UPDATE shop.items SET id = 3 WHERE id = 2;
DELETE FROM shop.items WHERE id = 1;";

fn row1() -> Json {
    json!({"id":1,"big":-9007199254740993_i64,"price":"12.50","name":"Ünïcødé \"q\"",
        "state":"paid","at":1679581805123_i64,"day":19439,"note":"x"})
}

fn row1_after_update() -> Json {
    let mut r = row1();
    r["price"] = json!("99999999.99");
    r["state"] = json!("gone");
    r
}

fn row2(id: i64) -> Json {
    json!({"id":id,"big":7,"price":"-0.05","name":"two","state":"new","at":1,"day":null,"note":null})
}

/// The value's payload (schemas on or off).
fn payload(v: &Json) -> &Json {
    v.get("payload").unwrap_or(v)
}

fn keys(v: &Json) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// The keys of a JSON object's text, in the order they are written.
fn ordered_keys(text: &str) -> Vec<String> {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(k) = m.next_key::<String>()? {
                m.next_value::<serde::de::IgnoredAny>()?;
                out.push(k);
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde::Deserializer::deserialize_map(&mut de, Keys).unwrap()
}

/// The text of member `path` (nested object keys) of a JSON object's text.
fn member(text: &str, path: &[&str]) -> String {
    let mut cur: Box<serde_json::value::RawValue> = serde_json::from_str(text).unwrap();
    for p in path {
        let m: std::collections::HashMap<String, Box<serde_json::value::RawValue>> =
            serde_json::from_str(cur.get()).unwrap();
        cur = m[*p].clone();
    }
    cur.get().to_string()
}

/// The first value message of a real Debezium 3.0.1 fixture with the given `op`.
fn real_debezium(file: &str) -> Json {
    let text = std::fs::read_to_string(root().join("fixtures/debezium").join(file)).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .find(|v| payload(v).get("op").is_some_and(|o| o == "c" || o == "u"))
        .unwrap()
}

#[test]
fn capture_messages_equal_debezium_field_for_field() {
    let Some(brokers) = broker() else { return };
    let Some(server) = Server::start() else {
        return;
    };
    server.sql(TABLE);
    let (file, pos) = server.master_status();
    let start = format!("{file}:{pos}");
    server.sql(WORKLOAD);
    let dir = tempfile::tempdir().unwrap();
    let off = prefix("capoff");
    capture(
        &server,
        &brokers,
        &off,
        &start,
        &["--transaction-metadata"],
        dir.path(),
    );
    let on = prefix("capon");
    capture(
        &server,
        &brokers,
        &on,
        &start,
        &["--schemas", "on", "--decimal-handling-mode", "precise"],
        dir.path(),
    );

    // Schemas off, with transaction metadata.
    let msgs = read_topic(&brokers, &format!("{off}.shop.items"));
    let ops: Vec<Option<String>> = msgs
        .iter()
        .map(|m| {
            m.value
                .as_ref()
                .map(|v| v["op"].as_str().unwrap().to_string())
        })
        .collect();
    let s = |o: &str| Some(o.to_string());
    assert_eq!(
        ops,
        vec![s("c"), s("c"), s("u"), s("d"), None, s("c"), s("d"), None],
        "create, create + update (one transaction), the key change as delete + tombstone + \
         create, a delete + tombstone"
    );
    let v = |i: usize| msgs[i].value.as_ref().unwrap();
    let key = |i: usize| msgs[i].key.clone().unwrap();
    assert_eq!(
        (v(0)["before"].clone(), v(0)["after"].clone()),
        (Json::Null, row1())
    );
    assert_eq!(key(0), json!({"id":1}));
    assert_eq!(v(1)["after"], row2(2));
    assert_eq!(
        (v(2)["before"].clone(), v(2)["after"].clone()),
        (row1(), row1_after_update())
    );
    assert_eq!(
        (v(3)["before"].clone(), v(3)["after"].clone()),
        (row2(2), Json::Null)
    );
    assert_eq!(key(3), json!({"id":2}));
    assert_eq!(key(4), json!({"id":2}), "the tombstone has the deleted key");
    assert_eq!(
        (v(5)["before"].clone(), v(5)["after"].clone()),
        (Json::Null, row2(3))
    );
    assert_eq!(key(5), json!({"id":3}));
    assert_eq!(v(6)["before"], row1_after_update());

    // The envelope and `source` fields, in Debezium 3.0.1's order.
    let real = real_debezium("real-3.0.1-schemas-off.jsonl");
    let real_on = real_debezium("real-3.0.1-schemas-on-with-keys.jsonl");
    let real_line = std::fs::read_to_string(
        root().join("fixtures/debezium/real-3.0.1-schemas-on-with-keys.jsonl"),
    )
    .unwrap()
    .lines()
    .find(|l| l.contains("\"op\":\"c\""))
    .unwrap()
    .to_string();
    let real_payload = member(&real_line, &["payload"]);
    let real_source = member(&real_line, &["payload", "source"]);
    for m in msgs.iter().filter_map(|m| m.raw.as_ref()) {
        let text = std::str::from_utf8(m).unwrap();
        assert_eq!(ordered_keys(text), ordered_keys(&real_payload), "{text}");
        assert_eq!(
            ordered_keys(&member(text, &["source"])),
            ordered_keys(&real_source),
            "{text}"
        );
    }
    for m in msgs.iter().filter_map(|m| m.value.as_ref()) {
        let src = &m["source"];
        assert_eq!(src["connector"], "mysql");
        assert_eq!(src["name"], json!(off));
        assert_eq!(src["snapshot"], "false");
        assert_eq!(
            (src["db"].as_str(), src["table"].as_str()),
            (Some("shop"), Some("items"))
        );
        assert_eq!(src["server_id"], 1);
        assert_eq!(src["file"], json!(file));
        assert!(src["pos"].as_u64().unwrap() > pos);
        assert!(src["version"].as_str().unwrap().starts_with("3.0.1.Final"));
        assert_eq!(src["query"], Json::Null);
        assert_eq!(src["sequence"], Json::Null);
        let gtid = src["gtid"].as_str().unwrap();
        assert!(gtid.starts_with("0-1-"), "MariaDB GTID: {gtid}");
        let ts = src["ts_ms"].as_u64().unwrap();
        assert!(ts == 1679581805000 || ts == 1679581806000, "{ts}");
        assert_eq!(src["ts_us"].as_u64().unwrap(), ts * 1000);
        assert!(
            m["ts_ms"].as_u64().unwrap() > 1_700_000_000_000,
            "processing time"
        );
        let tx = &m["transaction"];
        assert_eq!(tx["id"], json!(gtid), "the transaction id is the GTID");
        assert!(tx["total_order"].as_u64().unwrap() >= 1);
        assert!(tx["data_collection_order"].as_u64().unwrap() >= 1);
    }
    for k in keys(&real) {
        assert!(keys(v(0)).contains(&k), "a real 3.0.1 field {k} is missing");
    }
    // Rows of one row event share the position and count `row`; an update that changes the key
    // is one binlog row: its delete and create share (file, pos, row).
    assert_eq!(v(3)["source"]["pos"], v(5)["source"]["pos"]);
    assert_eq!(v(3)["source"]["row"], v(5)["source"]["row"]);
    assert_eq!(v(1)["transaction"]["id"], v(2)["transaction"]["id"]);
    assert_eq!(v(2)["transaction"]["total_order"], 2);
    // Transaction markers: BEGIN and END per transaction, with counts.
    let markers = read_topic(&brokers, &format!("{off}.transaction"));
    assert_eq!(markers.len(), 8, "{markers:?}");
    let m = |i: usize| markers[i].value.clone().unwrap();
    assert_eq!(m(2)["status"], "BEGIN");
    assert_eq!(m(2)["id"], v(1)["transaction"]["id"]);
    assert_eq!(markers[2].key.clone().unwrap(), json!({"id": m(2)["id"]}));
    assert_eq!(
        m(3),
        json!({"status":"END","id":m(2)["id"],"event_count":2,
            "data_collections":[{"data_collection":"shop.items","event_count":2}],
            "ts_ms":1679581805000_i64})
    );
    assert_eq!(
        m(5)["event_count"],
        2,
        "the key change counts as delete + create"
    );

    // Read back by the Debezium decoder: exact values.
    let catalog = Arc::new(Catalog::parse("test.sql", TABLE).unwrap());
    let decode_all = |msgs: &[Msg]| -> Vec<(Row, Option<Row>, u64)> {
        let mut dec = DebeziumDecoder::new(catalog.clone());
        let mut out = Vec::new();
        for m in msgs {
            let raw = m.raw.as_deref().unwrap_or(b"null");
            match dec.decode(raw).unwrap() {
                Decoded::Events(evs) => {
                    out.extend(evs.into_iter().map(|e| (e.key, e.row, e.version.pos)))
                }
                Decoded::Ignored(_) => {}
                other => panic!("{other:?}"),
            }
        }
        out
    };
    let decoded = decode_all(&msgs);
    let dec = |s: &str| Value::Dec(Decimal::parse(s).unwrap());
    let text = |s: &str| Value::Text(s.into());
    let r1 = vec![
        Value::Int(1),
        Value::Int(-9007199254740993),
        dec("12.50"),
        text("Ünïcødé \"q\""),
        text("paid"),
        Value::DateTime(1679581805123000),
        Value::Date(19439),
        text("x"),
    ];
    let mut r1u = r1.clone();
    r1u[2] = dec("99999999.99");
    r1u[4] = text("gone");
    let r2 = |id: i64| {
        vec![
            Value::Int(id),
            Value::Int(7),
            dec("-0.05"),
            text("two"),
            text("new"),
            Value::DateTime(1000),
            Value::Null,
            Value::Null,
        ]
    };
    let rows: Vec<(Vec<Value>, Option<Vec<Value>>)> = decoded
        .iter()
        .map(|(k, r, _)| (k.iter().collect(), r.as_ref().map(|r| r.iter().collect())))
        .collect();
    assert_eq!(
        rows,
        vec![
            (vec![Value::Int(1)], Some(r1.clone())),
            (vec![Value::Int(2)], Some(r2(2))),
            (vec![Value::Int(1)], Some(r1u.clone())),
            (vec![Value::Int(2)], None),
            (vec![Value::Int(3)], Some(r2(3))),
            (vec![Value::Int(1)], None),
        ]
    );

    // Schemas on, precise decimals: the JsonConverter envelope with Debezium's schema names;
    // the same values decoded.
    let msgs_on = read_topic(&brokers, &format!("{on}.shop.items"));
    assert_eq!(msgs_on.len(), msgs.len());
    let first = msgs_on[0].value.as_ref().unwrap();
    assert_eq!(
        ordered_keys(std::str::from_utf8(msgs_on[0].raw.as_ref().unwrap()).unwrap()),
        vec!["schema", "payload"]
    );
    let schema = &first["schema"];
    assert_eq!(schema["name"], json!(format!("{on}.shop.items.Envelope")));
    let real_fields = |v: &Json, f: &str| -> Json {
        v["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["field"] == f)
            .unwrap()
            .clone()
    };
    assert_eq!(
        real_fields(first, "source"),
        real_fields(&real_on, "source"),
        "the source schema of Debezium 3.0.1"
    );
    assert_eq!(
        real_fields(first, "transaction"),
        real_fields(&real_on, "transaction")
    );
    let after = real_fields(first, "after");
    assert_eq!(after["name"], json!(format!("{on}.shop.items.Value")));
    let field = |f: &str| -> Json {
        after["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["field"] == f)
            .unwrap()
            .clone()
    };
    assert_eq!(
        field("id"),
        json!({"type":"int32","optional":false,"field":"id"})
    );
    assert_eq!(
        field("big"),
        json!({"type":"int64","optional":false,"field":"big"})
    );
    assert_eq!(
        field("price"),
        json!({"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal",
            "version":1,"parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"price"})
    );
    assert_eq!(
        field("name"),
        json!({"type":"string","optional":false,"field":"name"})
    );
    assert_eq!(
        field("state"),
        json!({"type":"string","optional":false,"name":"io.debezium.data.Enum","version":1,
            "parameters":{"allowed":"new,paid,gone"},"field":"state"})
    );
    assert_eq!(
        field("at"),
        json!({"type":"int64","optional":false,"name":"io.debezium.time.Timestamp","version":1,"field":"at"})
    );
    assert_eq!(
        field("day"),
        json!({"type":"int32","optional":true,"name":"io.debezium.time.Date","version":1,"field":"day"})
    );
    assert_eq!(
        field("note"),
        json!({"type":"string","optional":true,"field":"note"})
    );
    assert_eq!(
        payload(first)["after"]["price"],
        json!("BOI="),
        "1250 as precise bytes"
    );
    let key_on = msgs_on[0].key.as_ref().unwrap();
    assert_eq!(key_on["payload"], json!({"id":1}));
    assert_eq!(
        key_on["schema"]["name"],
        json!(format!("{on}.shop.items.Key"))
    );
    assert_eq!(payload(first)["transaction"], Json::Null);
    let decoded_on = decode_all(&msgs_on);
    assert_eq!(decoded_on, decoded, "schemas on decode to the same changes");
}

#[test]
fn capture_into_kafka_then_run_equals_mariadb() {
    let Some(brokers) = broker() else { return };
    let Some((server, start, failed)) = seeded_server(7, 3, 120) else {
        return;
    };
    let d = outbound();
    let dir = tempfile::tempdir().unwrap();
    let name = prefix("cappipe");
    let state = dir.path().join("capture-state");
    let extra = [
        "--transaction-metadata",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let run_capture = || capture(&server, &brokers, &name, &start, &extra, dir.path());
    run_capture();
    assert!(state.join("capture.pos").exists());
    let sent = high_watermark(&brokers, &format!("{name}.orders.orders"));
    assert!(sent > 0);
    // Run again: resumes from the state dir (its position wins over --start), sends nothing.
    run_capture();
    assert_eq!(
        high_watermark(&brokers, &format!("{name}.orders.orders")),
        sent,
        "a resumed capture sends nothing again"
    );
    // Without the state dir everything is sent again, as after a crash before a checkpoint:
    // the decoder drops the copies as duplicates by their (file, pos, row).
    capture(
        &server,
        &brokers,
        &name,
        &start,
        &["--transaction-metadata"],
        dir.path(),
    );
    assert_eq!(
        high_watermark(&brokers, &format!("{name}.orders.orders")),
        2 * sent
    );
    let dead = dir.path().join("dead.jsonl");
    let (out, stderr) = run_from_topics(
        &brokers,
        &name,
        dir.path(),
        &["--dead-letter", dead.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert!(
        !stderr.contains("duplicates 0,"),
        "the copies are duplicates: {stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap_or_default(),
        "",
        "nothing dead-lettered: {stderr}"
    );
    assert_equals_mariadb(&server, &d, &out);
    eprintln!("capture -> tansu -> run equals MariaDB ({failed} statements failed in MariaDB)");
}

/// `cdcflow run --kafka --workers 2` over the topics capture wrote for `name`, with the change
/// log in `DIR/changes.jsonl` and `sinks` added, until idle for 3 s (at most `limit`); asserts
/// that every transaction was complete. The change log's path and the run's stderr.
fn run_from_topics(
    brokers: &str,
    name: &str,
    dir: &Path,
    sinks: &[&str],
    limit: Duration,
) -> (std::path::PathBuf, String) {
    let out = dir.join("changes.jsonl");
    let log = dir.join("run.log");
    let topics = format!("{}\\..*", regex_escape(name));
    let views = root().join("dataflows");
    let mut args = vec![
        "run",
        "--views",
        views.to_str().unwrap(),
        "--kafka",
        brokers,
        "--topics",
        &topics,
        "--group",
        name,
        "--workers",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--exit-when-idle-ms",
        "3000",
    ];
    args.extend_from_slice(sinks);
    let mut g = Guard::new(cdcflow(&args, &log), &log, "cdcflow run --kafka");
    g.finish(limit);
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(stderr.contains("(0 incomplete)"), "{stderr}");
    (out, stderr)
}

/// A private MariaDB with the outbound schema, five couriers, and a seeded workload over `conns`
/// concurrent connections written after the returned binlog position (`FILE:POS`); also the
/// number of statements MariaDB refused (the workload's conflicts). `None`: no MariaDB.
fn seeded_server(seed: u64, conns: u64, transactions: usize) -> Option<(Server, String, usize)> {
    let server = Server::start()?;
    server.reset_schema();
    let (file, pos) = server.master_status();
    server.sql(
        "INSERT INTO logistics.couriers VALUES (1,'DHL'),(2,'UPS'),(3,'FedEx'),(4,'GLS'),(5,'DPD');",
    );
    let failed = run_workload(&server.socket, seed, conns, transactions, 0);
    Some((server, format!("{file}:{pos}"), failed))
}

fn high_watermark(brokers: &str, topic: &str) -> i64 {
    try_high_watermark(brokers, topic).unwrap()
}

/// The high watermark of partition 0 of `topic`, from a new client (one remembers a missing
/// topic for a while, and capture creates a table's topic with its first message).
fn try_high_watermark(brokers: &str, topic: &str) -> rdkafka::error::KafkaResult<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .map(|w| w.1)
}

/// `cdcflow capture` killed (SIGKILL) midway, after it checkpointed a position, and started again
/// from its state dir after more transactions: the messages after that checkpoint are sent
/// twice, the engine drops the copies, and MariaDB -> capture -> tansu -> `run --kafka
/// --workers 2` into the Elasticsearch-API server (and a change log) ends equal to MariaDB's
/// answers.
#[test]
fn capture_killed_midway_resumes_and_elasticsearch_equals_mariadb() {
    let Some(brokers) = broker() else { return };
    let Some(es) = crate::kafka::es_url() else {
        return;
    };
    let Some((server, start, failed)) = seeded_server(11, 4, 300) else {
        return;
    };
    let d = outbound();
    let dir = tempfile::tempdir().unwrap();
    let name = prefix("capkill");
    let state = dir.path().join("capture-state");
    let args = |exit_when_idle: bool| -> Vec<String> {
        let mut a: Vec<String> = [
            "capture",
            &server.url(),
            "--server-id",
            "78",
            "--kafka",
            &brokers,
            "--server-name",
            &name,
            "--start",
            &start,
            "--transaction-metadata",
            "--state-dir",
            state.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.insert(1, "--mysql".into());
        if exit_when_idle {
            a.extend(["--exit-when-idle-ms".into(), "1000".into()]);
        }
        a
    };
    let log = dir.path().join("capture-killed.log");
    let killed = args(false);
    let killed: Vec<&str> = killed.iter().map(String::as_str).collect();
    let mut g = Guard::new(cdcflow(&killed, &log), &log, "cdcflow capture");
    // Killed once a position is checkpointed and some item messages are out, long before the
    // whole binlog is sent.
    let topic = format!("{name}.orders.order_items");
    // The topic does not exist before capture's first message of the table.
    let sent = || try_high_watermark(&brokers, &topic).unwrap_or(0);
    let started = std::time::Instant::now();
    while !(state.join("capture.pos").exists() && sent() >= 20) {
        g.assert_running();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no checkpoint: {}",
            g.log()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    g.kill();
    let at_kill = sent();
    // More transactions while capture is down: the stream goes on after the kill whatever
    // part of the first backlog capture had sent by then (it can send all of it first).
    let failed = failed + run_workload(&server.socket, 12, 2, 100, 0);
    let log = dir.path().join("capture-resumed.log");
    let resumed = args(true);
    let resumed: Vec<&str> = resumed.iter().map(String::as_str).collect();
    let mut g = Guard::new(cdcflow(&resumed, &log), &log, "cdcflow capture");
    g.finish(Duration::from_secs(120));
    let total = high_watermark(&brokers, &topic);
    assert!(
        at_kill > 0 && at_kill < total,
        "killed midway: {at_kill} of {total} messages of {topic} were sent before the kill"
    );

    let index_prefix = format!("{name}-");
    let (out, _) = run_from_topics(
        &brokers,
        &name,
        dir.path(),
        &["--elasticsearch", &es, "--index-prefix", &index_prefix],
        Duration::from_secs(120),
    );
    assert_equals_mariadb(&server, &d, &out);
    let logged = crate::kafka::read_log_json(&d, &out);
    let indexed = crate::kafka::read_indices(&d, &es, &index_prefix);
    crate::kafka::assert_same("Elasticsearch indices vs the change log", &indexed, &logged);
    eprintln!(
        "capture killed after {at_kill} of {total} item messages, resumed; run -> Elasticsearch \
         equals MariaDB ({failed} statements failed in MariaDB)"
    );
}
