//! Debezium decoding: real connector messages, and the same events in both schema modes and all
//! three decimal modes decoding to the same values.

use std::sync::Arc;

use cdcflow::decode::debezium::DebeziumDecoder;
use cdcflow::decode::{Decoded, Row};
use cdcflow::schema::Catalog;
use cdcflow::time::Version;
use cdcflow::value::{Decimal, Value};
use cdcflow::workload::{DecimalMode, Encoder, Op, RowChange, outbound_catalog};

use crate::common::*;

fn inventory() -> Arc<Catalog> {
    Arc::new(Catalog::load(&root().join("fixtures/debezium/inventory.sql")).unwrap())
}

fn decode_fixture(name: &str) -> Vec<Decoded> {
    let mut dec = DebeziumDecoder::new(inventory());
    let bytes = fixture(&format!("debezium/{name}"));
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| dec.decode(l).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

#[test]
fn real_schemaless_messages_decode() {
    let got = decode_fixture("real-3.0.1-schemas-off.jsonl");
    let Decoded::Events(snap) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(snap[0].key, vec![Value::Int(1004)]);
    assert_eq!(snap[0].time, 1_731_327_511_000);
    assert_eq!(
        snap[0].version,
        Version {
            file: 3,
            pos: 797,
            row: 0
        }
    );
    assert_eq!(snap[0].row.as_ref().unwrap()[1], Value::Text("Anne".into()));
    let Decoded::Events(upd) = &got[1] else {
        panic!()
    };
    assert_eq!(upd.len(), 1, "same key: one upsert");
    assert_eq!(upd[0].row.as_ref().unwrap()[1], Value::Text("Sarah".into()));
}

#[test]
fn real_messages_with_schemas_and_key_records_decode() {
    let got = decode_fixture("real-3.0.1-schemas-on-with-keys.jsonl");
    assert_eq!(got[0], Decoded::Ignored("key record"));
    assert_eq!(got[2], Decoded::Ignored("key record"));
    let Decoded::Events(addr) = &got[3] else {
        panic!("{got:?}")
    };
    let row = addr[0].row.as_ref().unwrap();
    assert_eq!(row[6], Value::Text("LIVING".into()), "ENUM as its string");
    assert_eq!(
        addr[0].version,
        Version {
            file: 3,
            pos: 544,
            row: 0
        }
    );
}

#[test]
fn legacy_source_block_uses_ts_sec() {
    let got = decode_fixture("real-0.7.4-legacy-schemas-off.jsonl");
    let Decoded::Events(e) = &got[1] else {
        panic!()
    };
    assert_eq!(e[0].key, vec![Value::Int(1002)]);
    assert_eq!(e[0].time, 0);
}

#[test]
fn tombstones_and_transaction_markers_are_ignored() {
    let mut dec = DebeziumDecoder::new(inventory());
    assert_eq!(dec.decode(b"null").unwrap(), Decoded::Ignored("tombstone"));
    assert_eq!(
        dec.decode(br#"{"schema":null,"payload":null}"#).unwrap(),
        Decoded::Ignored("tombstone")
    );
    let begin = br#"{"status":"BEGIN","id":"file=binlog.000003,pos=236","event_count":null,"data_collections":null,"ts_ms":1733763172000}"#;
    assert_eq!(
        dec.decode(begin).unwrap(),
        Decoded::Ignored("transaction BEGIN")
    );
}

#[test]
fn transaction_end_markers_carry_their_counts() {
    let mut dec = DebeziumDecoder::new(inventory());
    // The shape of Debezium's documented END marker (schemas off and on).
    let end = br#"{"status":"END","id":"0e4d5dcd-a33b-11ea-80f1-02010a22a99e:10","ts_ms":1486500577691,"event_count":2,"data_collections":[{"data_collection":"s1.a","event_count":1},{"data_collection":"s2.a","event_count":1}]}"#;
    let want = Decoded::TxEnd(cdcflow::event::TxMarker {
        id: "0e4d5dcd-a33b-11ea-80f1-02010a22a99e:10".into(),
        time: 1486500577691,
        end: Some(vec![("s1.a".into(), 1), ("s2.a".into(), 1)]),
    });
    assert_eq!(dec.decode(end).unwrap(), want);
    let with_schema = format!(
        r#"{{"schema":{{"type":"struct","fields":[{{"type":"string","field":"status"}},{{"type":"string","field":"id"}}],"name":"io.debezium.connector.common.TransactionMetadataValue"}},"payload":{}}}"#,
        std::str::from_utf8(end).unwrap()
    );
    assert_eq!(dec.decode(with_schema.as_bytes()).unwrap(), want);
    let bad = br#"{"status":"END","id":"x","ts_ms":1}"#;
    assert!(dec.decode(bad).unwrap_err().0.contains("data_collections"));
}

/// Edge values of every outbound column type.
fn edge_changes() -> Vec<RowChange> {
    let d = |s: &str| Value::Dec(Decimal::parse(s).unwrap());
    let dt = |ms: i64| Value::DateTime(ms * 1000);
    let c = |table, op, before: Option<Row>, after: Option<Row>, pos| RowChange {
        table,
        op,
        before,
        after,
        ts_ms: 1_772_409_600_123,
        file: 2,
        pos,
        row: 0,
    };
    vec![
        c(
            1,
            Op::Create,
            None,
            Some(vec![
                Value::Int(1),
                Value::Int(-7),
                Value::Text("näh \"quoted\" \\ tab\t".into()),
                Value::Int(-3),
                d("-1234567890.99"),
            ]),
            10,
        ),
        c(
            1,
            Op::Create,
            None,
            Some(vec![
                Value::Int(i64::MAX),
                Value::Int(i64::MIN),
                Value::Text("".into()),
                Value::Int(0),
                d("0.00"),
            ]),
            20,
        ),
        c(
            1,
            Op::Create,
            None,
            Some(vec![
                Value::Int(3),
                Value::Int(2),
                Value::Text("x".into()),
                Value::Int(5),
                d("9999999999.99"),
            ]),
            30,
        ),
        c(
            1,
            Op::Create,
            None,
            Some(vec![
                Value::Int(4),
                Value::Int(2),
                Value::Text("y".into()),
                Value::Int(5),
                d("-0.01"),
            ]),
            35,
        ),
        c(
            2,
            Op::Create,
            None,
            Some(vec![
                Value::Int(9),
                Value::Int(9),
                Value::Int(1),
                Value::Text("picking".into()),
                Value::Null,
            ]),
            40,
        ),
        c(
            2,
            Op::Update,
            Some(vec![
                Value::Int(9),
                Value::Int(9),
                Value::Int(1),
                Value::Text("picking".into()),
                Value::Null,
            ]),
            Some(vec![
                Value::Int(9),
                Value::Int(9),
                Value::Int(2),
                Value::Text("shipped".into()),
                dt(-86_400_123),
            ]),
            50,
        ),
        c(
            0,
            Op::Create,
            None,
            Some(vec![
                Value::Int(5),
                Value::Int(1),
                Value::Text("paid".into()),
                dt(1_772_409_600_999),
            ]),
            55,
        ),
        c(
            4,
            Op::Create,
            None,
            Some(vec![
                Value::Int(1),
                Value::Int(9),
                Value::Int(3),
                d("12.50"),
                dt(0),
            ]),
            60,
        ),
        c(
            4,
            Op::Delete,
            Some(vec![
                Value::Int(1),
                Value::Int(9),
                Value::Int(3),
                d("12.50"),
                dt(0),
            ]),
            None,
            70,
        ),
        // A primary-key change: delete of the old key, upsert of the new one.
        c(
            1,
            Op::Update,
            Some(vec![
                Value::Int(3),
                Value::Int(2),
                Value::Text("x".into()),
                Value::Int(5),
                d("9999999999.99"),
            ]),
            Some(vec![
                Value::Int(33),
                Value::Int(2),
                Value::Text("x".into()),
                Value::Int(5),
                d("9999999999.99"),
            ]),
            80,
        ),
    ]
}

#[test]
fn all_schema_and_decimal_modes_decode_to_the_same_values() {
    let catalog = outbound_catalog();
    let arc = Arc::new(catalog.clone());
    let mut results = Vec::new();
    for schemas in [false, true] {
        for mode in [
            DecimalMode::String,
            DecimalMode::Precise,
            DecimalMode::Double,
        ] {
            if mode == DecimalMode::Precise && !schemas {
                continue; // refused without schema: see bad_input
            }
            let mut enc = Encoder::new(&catalog, schemas, mode);
            let mut dec = DebeziumDecoder::new(arc.clone());
            let mut events = Vec::new();
            for c in edge_changes() {
                let mut line = String::new();
                enc.encode(&c, &mut line);
                match dec.decode(line.as_bytes()) {
                    Ok(Decoded::Events(e)) => events.extend(e),
                    other => panic!("schemas {schemas} {mode:?}: {other:?} for {line}"),
                }
            }
            results.push(((schemas, mode), events));
        }
    }
    let (first_mode, first) = &results[0];
    assert_eq!(first.len(), 11, "the primary-key change is two events");
    assert_eq!(first[9].row, None, "old key deleted");
    assert_eq!(first[9].key, vec![Value::Int(3)]);
    assert_eq!(first[10].key, vec![Value::Int(33)]);
    for (mode, events) in &results[1..] {
        assert_eq!(events, first, "{mode:?} differs from {first_mode:?}");
    }
}

#[test]
fn generated_workloads_decode_identically_in_every_mode() {
    let d = outbound();
    let (base, _) = workload(40, 21, 0, 0.0, false, DecimalMode::String);
    let expected = decode_lines(&d, &base);
    for (schemas, mode) in [
        (true, DecimalMode::String),
        (true, DecimalMode::Precise),
        (true, DecimalMode::Double),
        (false, DecimalMode::Double),
    ] {
        let (bytes, _) = workload(40, 21, 0, 0.0, schemas, mode);
        assert_eq!(
            decode_lines(&d, &bytes),
            expected,
            "schemas {schemas} {mode:?}"
        );
    }
}

#[test]
fn datetime_precision_decides_units_without_schema() {
    let catalog = Catalog::parse("t.sql", "CREATE DATABASE a; CREATE TABLE a.t (id INT PRIMARY KEY, ms DATETIME(3), us DATETIME(6), d DATE, z TIMESTAMP(6));").unwrap();
    let mut dec = DebeziumDecoder::new(Arc::new(catalog));
    let msg = br#"{"before":null,"after":{"id":1,"ms":1679581805123,"us":1679581805123456,"d":19439,"z":"2023-03-23T22:00:10.123456Z"},"source":{"db":"a","table":"t","file":"b.000001","pos":4,"row":0,"ts_ms":1},"op":"c"}"#;
    let Decoded::Events(e) = dec.decode(msg).unwrap() else {
        panic!()
    };
    let row = e[0].row.as_ref().unwrap();
    assert_eq!(row[1].to_string(), "2023-03-23 14:30:05.123");
    assert_eq!(row[2].to_string(), "2023-03-23 14:30:05.123456");
    assert_eq!(row[3].to_string(), "2023-03-23");
    assert_eq!(row[4].to_string(), "2023-03-23 22:00:10.123456");
}
