//! Regression tests, named after the bug they pin (found in review of the first version).

use std::sync::Arc;

use cdcflow::decode::debezium::DebeziumDecoder;
use cdcflow::decode::{Decoded, Row};
use cdcflow::schema::Catalog;
use cdcflow::sql::Dataflows;
use cdcflow::value::{Decimal, Value};
use cdcflow::workload::{DecimalMode, Encoder, Op, RowChange};

use crate::common::*;

fn lines(d: &Dataflows, changes: &[(usize, Op, Option<Row>, Option<Row>)]) -> Vec<u8> {
    let mut out = String::new();
    let mut enc = Encoder::new(&d.catalog, false, DecimalMode::String);
    for (i, (table, op, before, after)) in changes.iter().enumerate() {
        let c = RowChange {
            table: *table,
            op: *op,
            before: before.clone(),
            after: after.clone(),
            ts_ms: 1000 + i as u64,
            file: 1,
            pos: 10 + i as u64,
            row: 0,
        };
        enc.encode(&c, &mut out);
        out.push('\n');
    }
    out.into_bytes()
}

#[test]
fn regression_join_key_types_come_from_the_resolved_sides() {
    // `a.price * 1` is a DECIMAL; the key on the other side an INT. Both must be compared as
    // decimals (MySQL matches 3.00 = 3), not silently never match.
    let d = dataflows(
        "CREATE DATABASE s; CREATE TABLE s.a (id INT PRIMARY KEY, price DECIMAL(8,2) NOT NULL); CREATE TABLE s.b (id INT PRIMARY KEY, name VARCHAR(10) NOT NULL);",
        &[(
            "v",
            "SELECT b.name, COUNT(*) AS n FROM s.a a JOIN s.b b ON a.price * 1 = b.id GROUP BY b.name",
        )],
    );
    let bytes = lines(
        &d,
        &[
            (
                0,
                Op::Create,
                None,
                Some(Row::from(vec![
                    Value::Int(1),
                    Value::Dec(Decimal::new(300, 2)),
                ])),
            ),
            (
                1,
                Op::Create,
                None,
                Some(Row::from(vec![Value::Int(3), Value::Text("three".into())])),
            ),
        ],
    );
    let out = replay(&d, bytes, 1, 0);
    assert_eq!(
        out.state.into_iter().collect::<Vec<_>>(),
        vec![(
            (0, "three".to_string()),
            Row::from(vec![Value::Text("three".into()), Value::Int(1)])
        )]
    );
}

/// A sum beyond the decimal range is refused and counted, never wrapped. The range was 38
/// digits (an i128) when this was found; it is MySQL's 65 digits now, so a 39-digit sum is
/// exact and a 66-digit one is refused.
#[test]
fn regression_sum_beyond_38_digits_is_refused_not_wrapped() {
    let d = dataflows(
        "CREATE DATABASE s; CREATE TABLE s.a (id INT PRIMARY KEY, g INT NOT NULL, x DECIMAL(65,0) NOT NULL);",
        &[("v", "SELECT a.g, SUM(a.x) AS total FROM s.a a GROUP BY a.g")],
    );
    let big = |s: &str, zeros: usize| {
        Value::Dec(Decimal::parse(&format!("{s}{}", "0".repeat(zeros))).unwrap())
    };
    let row = |id: i64, g: i64, x: Value| {
        (
            0,
            Op::Create,
            None,
            Some(Row::from(vec![Value::Int(id), Value::Int(g), x])),
        )
    };
    let bytes = lines(
        &d,
        &[
            // group 1: 9e37 + 9e37 = 1.8e38, beyond an i128, exact
            row(1, 1, big("9", 37)),
            row(2, 1, big("9", 37)),
            // group 2: 6e64 + 6e64 = 1.2e65 has 66 digits: refused and counted
            row(3, 2, big("6", 64)),
            row(4, 2, big("6", 64)),
        ],
    );
    let out = replay(&d, bytes, 1, 0);
    assert_eq!(
        out.state.get(&(0, "1".to_string())),
        Some(&Row::from(vec![Value::Int(1), big("18", 37)]))
    );
    assert_eq!(out.state.get(&(0, "2".to_string())), None);
    assert!(out.metrics.eval_errors > 0, "the overflow is reported");
}

#[test]
fn regression_delete_with_a_stale_before_image_still_deletes() {
    // The before image of a delete holds an ENUM value schema.sql no longer declares: only the
    // primary key of a before image matters, so the delete must apply.
    let d = outbound();
    let couriers = d.catalog.lookup("logistics", "couriers").unwrap();
    let ship = d.catalog.lookup("warehouse", "shipments").unwrap();
    let shipment = |status: &str| {
        Row::from(vec![
            Value::Int(9),
            Value::Int(9),
            Value::Int(1),
            Value::Text(status.into()),
            Value::DateTime(0),
        ])
    };
    let bytes = lines(
        &d,
        &[
            (
                couriers,
                Op::Create,
                None,
                Some(Row::from(vec![Value::Int(1), Value::Text("dhl".into())])),
            ),
            (ship, Op::Create, None, Some(shipment("shipped"))),
            (ship, Op::Delete, Some(shipment("lost")), None),
        ],
    );
    let events = decode_lines(&d, &bytes);
    assert_eq!(events.last().unwrap().row, None, "decoded as a delete");
    assert_eq!(events.last().unwrap().key, vec![Value::Int(9)]);
}

#[test]
fn regression_precise_decimal_of_i128_min_is_refused_without_panic() {
    let d = outbound();
    let mut dec = DebeziumDecoder::new(d.catalog.clone());
    let mut line = String::new();
    let items = d.catalog.lookup("orders", "order_items").unwrap();
    Encoder::new(&d.catalog, true, DecimalMode::Precise).encode(
        &RowChange {
            table: items,
            op: Op::Create,
            before: None,
            after: Some(Row::from(vec![
                Value::Int(1),
                Value::Int(1),
                Value::Text("x".into()),
                Value::Int(1),
                Value::Dec(Decimal::new(5, 2)),
            ])),
            ts_ms: 1,
            file: 1,
            pos: 4,
            row: 0,
        },
        &mut line,
    );
    let bad = line.replacen(
        "\"unit_price\":\"BQ==\"",
        "\"unit_price\":\"gAAAAAAAAAAAAAAAAAAAAA==\"",
        1,
    );
    assert_ne!(bad, line, "the fixture line was rewritten");
    let e = dec.decode(bad.as_bytes()).unwrap_err();
    assert!(e.0.contains("unit_price"), "{e}");
}

#[test]
fn regression_datetime_text_with_multibyte_characters_is_rejected_not_a_panic() {
    let catalog = Catalog::parse(
        "t.sql",
        "CREATE DATABASE a; CREATE TABLE a.t (id INT PRIMARY KEY, ts TIMESTAMP(3));",
    )
    .unwrap();
    let mut dec = DebeziumDecoder::new(Arc::new(catalog));
    let msg = r#"{"before":null,"after":{"id":1,"ts":"2023-01-0é"},"source":{"db":"a","table":"t","file":"b.000001","pos":4,"row":0,"ts_ms":1},"op":"c"}"#;
    let e = dec.decode(msg.as_bytes()).unwrap_err();
    assert!(e.0.contains("not an ISO-8601 date-time"), "{e}");
    assert!(matches!(dec.decode(br#"null"#), Ok(Decoded::Ignored(_))));
}

/// A DATETIME(p) value prints with exactly p fractional digits, as MariaDB prints it:
/// `2026-03-02 10:00:00.000` from a DATETIME(3), `...10:00:00.120000` from a DATETIME(6).
/// The engine dropped `.000` and printed 3 digits for any whole millisecond; now an output
/// column straight from a DATETIME(p) column (group key, MIN/MAX) shows p digits.
#[test]
fn regression_datetime3_keeps_trailing_zeros() {
    let d = dataflows(
        "CREATE DATABASE w; CREATE TABLE w.s (id INT PRIMARY KEY, wh INT NOT NULL, at DATETIME(3) NOT NULL, at6 DATETIME(6) NOT NULL);",
        &[(
            "v",
            "SELECT s.wh, MAX(s.at) AS last, MIN(s.at6) AS first FROM w.s s GROUP BY s.wh",
        )],
    );
    let at = cdcflow::value::parse_datetime("2026-03-02 10:00:00").unwrap();
    let bytes = lines(
        &d,
        &[(
            0,
            Op::Create,
            None,
            Some(Row::from(vec![
                Value::Int(1),
                Value::Int(1),
                Value::DateTime(at),
                Value::DateTime(at + 120_000),
            ])),
        )],
    );
    let out = replay(&d, bytes, 1, 0);
    let names = cdcflow::sink::Names::of(&d.views);
    let (_, doc) = out.state.iter().next().expect("one document");
    let mut json = String::new();
    names.doc_json(0, doc, &mut json);
    assert_eq!(
        json,
        r#"{"wh":1,"last":"2026-03-02 10:00:00.000","first":"2026-03-02 10:00:00.120000"}"#
    );
}

/// Tombstones were kept for ever (memory grew with every key ever deleted). With
/// `--tombstone-retention-ms R` a tombstone is dropped once the frontier passes its delete by
/// more than R, and an event committed more than R behind the frontier is refused, so a stale
/// copy of a deleted row's insert can never bring it back; without it, nothing changes.
#[test]
fn regression_tombstones_are_compacted_after_the_retention_and_never_resurrect() {
    let d = dataflows(
        "CREATE DATABASE s; CREATE TABLE s.a (id INT PRIMARY KEY, g INT NOT NULL);",
        &[("v", "SELECT a.id, a.g FROM s.a a")],
    );
    let row = |id: i64, g: i64| Some(Row::from(vec![Value::Int(id), Value::Int(g)]));
    let change = |op: Op, before, after, ts_ms: u64, pos: u64| RowChange {
        table: 0,
        op,
        before,
        after,
        ts_ms,
        file: 1,
        pos,
        row: 0,
    };
    let mut changes = vec![
        change(Op::Create, None, row(1, 10), 1_000, 10),
        change(Op::Create, None, row(2, 20), 1_500, 15),
        change(Op::Delete, row(1, 10), None, 2_000, 20),
        change(Op::Delete, row(2, 20), None, 2_500, 25),
    ];
    // Time goes on well past the retention (10 s) of the deletes.
    for i in 0..50u64 {
        changes.push(change(
            Op::Create,
            None,
            row(100 + i as i64, 1),
            3_000 + i * 1_000,
            30 + i,
        ));
    }
    // A stale copy of key 1's insert arrives late; key 2 is created again, newer.
    changes.push(change(Op::Create, None, row(1, 10), 1_000, 10));
    changes.push(change(Op::Create, None, row(2, 21), 60_000, 90));
    let mut bytes = String::new();
    let mut enc = Encoder::new(&d.catalog, false, DecimalMode::String);
    for c in &changes {
        enc.encode(c, &mut bytes);
        bytes.push('\n');
    }
    let bytes = bytes.into_bytes();
    for workers in [1, 2] {
        let run = |retention: Option<u64>| {
            let mut opts = cdcflow::pipeline::RunOptions::new(workers);
            opts.chunk_lines = 4;
            opts.tombstone_retention_ms = retention;
            cdcflow::pipeline::replay(
                &d,
                vec![cdcflow::source::Input::from_bytes("input", bytes.clone())],
                &opts,
                None,
            )
            .unwrap()
        };
        let kept = run(None);
        let compacted = run(Some(10_000));
        assert_eq!(kept.metrics.tombstones_compacted, 0);
        assert_eq!(kept.metrics.stale, 1, "the tombstone makes the copy stale");
        assert_eq!(kept.metrics.dead_lettered, 0);
        assert_eq!(
            compacted.metrics.tombstones_compacted, 2,
            "workers {workers}: both deletes forgotten"
        );
        assert_eq!(
            compacted.metrics.dead_lettered, 1,
            "the late copy is refused, not applied"
        );
        assert!(compacted.rejected[0].error.contains("tombstone retention"));
        assert_eq!(
            compacted.state, kept.state,
            "workers {workers}: the same documents"
        );
        assert!(
            !kept.state.contains_key(&(0, "1".to_string())),
            "key 1 stays deleted"
        );
        assert_eq!(kept.state.get(&(0, "2".to_string())), row(2, 21).as_ref());
    }
}
