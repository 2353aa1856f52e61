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
    assert_eq!(
        snap[0].row.as_ref().unwrap().get(1),
        Value::Text("Anne".into())
    );
    let Decoded::Events(upd) = &got[1] else {
        panic!()
    };
    assert_eq!(upd.len(), 1, "same key: one upsert");
    assert_eq!(
        upd[0].row.as_ref().unwrap().get(1),
        Value::Text("Sarah".into())
    );
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
    assert_eq!(
        row.get(6),
        Value::Text("LIVING".into()),
        "ENUM as its string"
    );
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
            Some(Row::from(vec![
                Value::Int(1),
                Value::Int(-7),
                Value::Text("näh \"quoted\" \\ tab\t".into()),
                Value::Int(-3),
                d("-1234567890.99"),
            ])),
            10,
        ),
        c(
            1,
            Op::Create,
            None,
            Some(Row::from(vec![
                Value::Int(i64::MAX),
                Value::Int(i64::MIN),
                Value::Text("".into()),
                Value::Int(0),
                d("0.00"),
            ])),
            20,
        ),
        c(
            1,
            Op::Create,
            None,
            Some(Row::from(vec![
                Value::Int(3),
                Value::Int(2),
                Value::Text("x".into()),
                Value::Int(5),
                d("9999999999.99"),
            ])),
            30,
        ),
        c(
            1,
            Op::Create,
            None,
            Some(Row::from(vec![
                Value::Int(4),
                Value::Int(2),
                Value::Text("y".into()),
                Value::Int(5),
                d("-0.01"),
            ])),
            35,
        ),
        c(
            2,
            Op::Create,
            None,
            Some(Row::from(vec![
                Value::Int(9),
                Value::Int(9),
                Value::Int(1),
                Value::Text("picking".into()),
                Value::Null,
            ])),
            40,
        ),
        c(
            2,
            Op::Update,
            Some(Row::from(vec![
                Value::Int(9),
                Value::Int(9),
                Value::Int(1),
                Value::Text("picking".into()),
                Value::Null,
            ])),
            Some(Row::from(vec![
                Value::Int(9),
                Value::Int(9),
                Value::Int(2),
                Value::Text("shipped".into()),
                dt(-86_400_123),
            ])),
            50,
        ),
        c(
            0,
            Op::Create,
            None,
            Some(Row::from(vec![
                Value::Int(5),
                Value::Int(1),
                Value::Text("paid".into()),
                dt(1_772_409_600_999),
            ])),
            55,
        ),
        c(
            4,
            Op::Create,
            None,
            Some(Row::from(vec![
                Value::Int(1),
                Value::Int(9),
                Value::Int(3),
                d("12.50"),
                dt(0),
            ])),
            60,
        ),
        c(
            4,
            Op::Delete,
            Some(Row::from(vec![
                Value::Int(1),
                Value::Int(9),
                Value::Int(3),
                d("12.50"),
                dt(0),
            ])),
            None,
            70,
        ),
        // A primary-key change: delete of the old key, upsert of the new one.
        c(
            1,
            Op::Update,
            Some(Row::from(vec![
                Value::Int(3),
                Value::Int(2),
                Value::Text("x".into()),
                Value::Int(5),
                d("9999999999.99"),
            ])),
            Some(Row::from(vec![
                Value::Int(33),
                Value::Int(2),
                Value::Text("x".into()),
                Value::Int(5),
                d("9999999999.99"),
            ])),
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
    assert_eq!(row.get(1).to_string(), "2023-03-23 14:30:05.123");
    assert_eq!(row.get(2).to_string(), "2023-03-23 14:30:05.123456");
    assert_eq!(row.get(3).to_string(), "2023-03-23");
    assert_eq!(row.get(4).to_string(), "2023-03-23 22:00:10.123456");
}

fn all_types_catalog() -> Arc<Catalog> {
    Arc::new(Catalog::load(&root().join("fixtures/debezium/all_types.sql")).unwrap())
}

fn decode_all(dec: &mut DebeziumDecoder, name: &str) -> Vec<Decoded> {
    let bytes = fixture(&format!("debezium/{name}"));
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| {
            dec.decode(l)
                .unwrap_or_else(|e| panic!("{name}:{}: {e}", i + 1))
        })
        .collect()
}

/// The after row of a decoded message, by column name.
fn after_of(catalog: &Catalog, d: &Decoded) -> std::collections::HashMap<String, Value> {
    let Decoded::Events(e) = d else {
        panic!("{d:?}")
    };
    let t = &catalog.tables[e[0].table];
    let row = e[0].row.as_ref().unwrap();
    t.columns
        .iter()
        .zip(row)
        .map(|(c, v)| (c.name.clone(), v.clone()))
        .collect()
}

fn dbl(x: f64) -> Value {
    Value::Double(cdcflow::value::F64::new(x).unwrap())
}

fn dv(s: &str) -> Value {
    Value::Dec(Decimal::parse(s).unwrap())
}

/// The values every encoding of the first all-types row decodes to.
fn check_first_all_types_row(r: &std::collections::HashMap<String, Value>) {
    let u64max = dv("18446744073709551615");
    assert_eq!(r["id"], dv("1"), "BIGINT UNSIGNED is a decimal of scale 0");
    assert_eq!(r["flag"], Value::Int(1));
    assert_eq!(r["ok"], Value::Int(1), "BOOL from JSON true");
    assert_eq!(r["tiny"], Value::Int(-128));
    assert_eq!(r["small_u"], Value::Int(65535));
    assert_eq!(r["medium"], Value::Int(-8388608));
    assert_eq!(r["qty"], Value::Int(4294967295));
    assert_eq!(r["big"], Value::Int(i64::MIN));
    assert_eq!(r["big_u"], u64max);
    assert_eq!(r["bit1"], Value::Int(1));
    assert_eq!(r["bits"], Value::Int(0xABC), "little-endian Bits");
    assert_eq!(r["bit64"], u64max);
    assert_eq!(r["price"], dv("12.50"));
    assert_eq!(r["wide"], dv("12345678.123456789012345678901234567890"));
    assert_eq!(r["amount_u"], dv("0.0001"));
    assert_eq!(r["num"], dv("99999"));
    assert_eq!(r["fixed_pt"], dv("-123.456"));
    // FLOAT: the single-precision number, as MySQL computes with it.
    assert_eq!(r["ratio"], dbl(1.1f32 as f64));
    assert_eq!(r["score"], dbl(2.5e-7));
    assert_eq!(r["lat"], dbl(40.7127837));
    assert_eq!(r["dp"], dbl(0.0));
    assert_eq!(r["dp"].to_string(), "0", "-0 is normalised");
    assert_eq!(r["code"], Value::Text("ABC-001".into()));
    assert_eq!(r["title"], Value::Text("Ünïcødé \"q\"".into()));
    assert_eq!(r["body"], Value::Text("line1\nline2".into()));
    assert_eq!(r["body_m"], Value::Text("".into()));
    assert_eq!(r["doc"], Value::Text(r#"{"k":[1,2]}"#.into()));
    assert_eq!(r["state"], Value::Text("paid".into()));
    assert_eq!(r["tags"], Value::Text("a,c".into()));
    assert_eq!(r["d"].to_string(), "2023-03-23");
    assert_eq!(r["dt"].to_string(), "2023-03-23 14:30:05");
    assert_eq!(r["dt3"].to_string(), "2023-03-23 14:30:05.123");
    assert_eq!(r["dt6"].to_string(), "2023-03-23 14:30:05.123456");
    assert_eq!(r["ts"].to_string(), "2023-03-23 14:30:05");
    assert_eq!(r["ts6"].to_string(), "2023-03-23 14:30:05.123456");
    assert_eq!(r["t"], Value::Time(-3_020_399_000_000));
    assert_eq!(r["t"].to_string(), "-838:59:59");
    assert_eq!(r["t6"].to_string(), "12:34:56.123456");
    assert_eq!(r["y"], Value::Int(2024));
    assert_eq!(r["bin"], Value::Bytes(vec![0xDE, 0xAD, 0xBE, 0xEF]));
    assert_eq!(r["vbin"], Value::Bytes(vec![0, 1]));
    assert_eq!(r["blob_t"], Value::Null);
    assert_eq!(r["blob_b"], Value::Bytes(b"blob".to_vec()));
    let mut wkb = vec![1, 1, 0, 0, 0];
    wkb.extend(1.0f64.to_le_bytes());
    wkb.extend(2.0f64.to_le_bytes());
    assert_eq!(r["geo"], Value::Bytes(wkb.clone()), "POINT(1 2) as WKB");
    assert_eq!(r["pt"], Value::Bytes(wkb));
    assert_eq!(r["line"], Value::Null);
    assert_eq!(r["created_at"].to_string(), "2023-03-23 14:30:05.123");
}

#[test]
fn every_mysql_type_decodes_exactly_without_schemas() {
    let catalog = all_types_catalog();
    let mut dec = DebeziumDecoder::new(catalog.clone());
    let got = decode_all(&mut dec, "all-types-schemas-off.jsonl");
    check_first_all_types_row(&after_of(&catalog, &got[0]));
    // Flink CDC snapshot read: `file: ""`, `pos: 0`: applied, older than any binlog position.
    let Decoded::Events(snap) = &got[1] else {
        panic!("{:?}", got[1])
    };
    assert_eq!(snap[0].version, Version::default());
    assert_eq!(snap[0].key, vec![dv("7")]);
    assert_eq!(got[2], Decoded::Ignored("heartbeat"));
    assert_eq!(got[3], Decoded::Ignored("schema change"), "legacy form");
    assert_eq!(got[4], Decoded::Ignored("schema change"));
    assert_eq!(
        got[5],
        Decoded::Ignored("schema change"),
        "Flink CDC historyRecord"
    );
    // After the ADD COLUMN the new column is ignored and counted (lenient by default).
    let r = after_of(&catalog, &got[6]);
    assert_eq!(r["name"], Value::Text("eight".into()));
    assert_eq!(
        cdcflow::decode::Decoder::take_undeclared_columns(&mut dec),
        1
    );
}

#[test]
fn every_mysql_type_decodes_exactly_with_schemas_in_precise_and_connect_modes() {
    let catalog = all_types_catalog();
    let mut dec = DebeziumDecoder::new(catalog.clone());
    let got = decode_all(&mut dec, "all-types-schemas-on.jsonl");
    check_first_all_types_row(&after_of(&catalog, &got[0]));
    // time.precision.mode=connect: DATE days, DATETIME and TIME milliseconds.
    let r = after_of(&catalog, &got[1]);
    assert_eq!(r["id"], dv("18446744073709551615"));
    assert_eq!(r["flag"], Value::Int(0));
    assert_eq!(r["ok"], Value::Null);
    assert_eq!(r["bit1"], Value::Int(0));
    assert_eq!(r["d"].to_string(), "1969-12-31");
    assert_eq!(r["dt"].to_string(), "1969-12-31 23:59:59");
    assert_eq!(r["dt3"].to_string(), "9999-12-31 23:59:59.999");
    assert_eq!(r["dt6"].to_string(), "2023-03-23 14:30:05.123");
    assert_eq!(r["t"].to_string(), "23:59:59.999");
    assert_eq!(r["t6"].to_string(), "00:00:00");
    assert_eq!(r["tags"], Value::Text("".into()), "the empty SET");
    assert_eq!(r["wide"], Value::Null);
    assert_eq!(got[2], Decoded::Ignored("key record"), "heartbeat key");
    assert_eq!(got[3], Decoded::Ignored("heartbeat"));
}

fn category_catalog() -> Arc<Catalog> {
    Arc::new(
        Catalog::parse(
            "category.sql",
            "CREATE DATABASE product; CREATE TABLE product.category (id BIGINT NOT NULL PRIMARY KEY, \
             aa VARCHAR(255), b VARCHAR(255), cc VARCHAR(255), dd VARCHAR(255));",
        )
        .unwrap(),
    )
}

#[test]
fn real_schema_change_record_is_ignored_and_a_new_column_does_not_stop_the_table() {
    use cdcflow::decode::Decoder as _;
    use cdcflow::decode::debezium::SchemaDrift;
    let catalog = category_catalog();
    let name = "real-1.9.3-schema-change-then-new-column.jsonl";
    let mut dec = DebeziumDecoder::new(catalog.clone());
    let got = decode_all(&mut dec, name);
    assert_eq!(got[0], Decoded::Ignored("schema change"));
    let r = after_of(&catalog, &got[1]);
    assert_eq!(r["aa"], Value::Text("aa".into()));
    assert_eq!(r["dd"], Value::Text("dd".into()));
    assert_eq!(dec.take_undeclared_columns(), 1, "`e` in `after`");
    assert_eq!(dec.take_undeclared_columns(), 0, "the count resets");
    // Strict: the same update is an error that names the column.
    let mut strict = DebeziumDecoder::with_drift(catalog, SchemaDrift::Strict);
    let line = fixture(&format!("debezium/{name}"));
    let second = line.split(|b| *b == b'\n').nth(1).unwrap();
    let e = strict.decode(second).unwrap_err();
    assert!(e.0.contains("column `e` is not declared"), "{e}");
}

#[test]
fn missing_nullable_columns_are_null_and_missing_not_null_columns_are_errors() {
    use cdcflow::decode::debezium::SchemaDrift;
    let catalog = category_catalog();
    let msg = |after: &str| {
        format!(
            r#"{{"before":null,"after":{after},"source":{{"db":"product","table":"category","file":"binlog.000001","pos":4,"row":0,"ts_ms":1}},"op":"c"}}"#
        )
    };
    let mut dec = DebeziumDecoder::new(catalog.clone());
    let got = dec.decode(msg(r#"{"id":1,"aa":"x"}"#).as_bytes()).unwrap();
    let r = after_of(&catalog, &got);
    assert_eq!(r["aa"], Value::Text("x".into()));
    assert_eq!(r["b"], Value::Null, "a re-serializer dropped the null");
    let e = dec.decode(msg(r#"{"aa":"x"}"#).as_bytes()).unwrap_err();
    assert!(e.0.contains("`id` is missing"), "{e}");
    let mut strict = DebeziumDecoder::with_drift(catalog, SchemaDrift::Strict);
    let e = strict
        .decode(msg(r#"{"id":1,"aa":"x"}"#).as_bytes())
        .unwrap_err();
    assert!(e.0.contains("`b` is missing"), "{e}");
}

/// One schemaless message for `a.t (id INT PRIMARY KEY, v <ty>)` with `v` = `raw`.
fn decode_v(ty: &str, raw: &str) -> Result<Value, String> {
    let catalog = Arc::new(
        Catalog::parse(
            "t.sql",
            &format!("CREATE DATABASE a; CREATE TABLE a.t (id INT PRIMARY KEY, v {ty});"),
        )
        .unwrap(),
    );
    let mut dec = DebeziumDecoder::new(catalog);
    let msg = format!(
        r#"{{"before":null,"after":{{"id":1,"v":{raw}}},"source":{{"db":"a","table":"t","file":"b.000001","pos":4,"row":0,"ts_ms":1}},"op":"c"}}"#
    );
    match dec.decode(msg.as_bytes()) {
        Ok(Decoded::Events(e)) => Ok(e[0].row.as_ref().unwrap().get(1).clone()),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e.0),
    }
}

#[test]
fn decimals_as_json_numbers_keep_every_digit() {
    // decimal.handling.mode=precise with decimal.format=NUMERIC: the raw JSON text, never f64.
    assert_eq!(
        decode_v("DECIMAL(38,10)", "1234567890123456789012345678.0123456789"),
        Ok(dv("1234567890123456789012345678.0123456789"))
    );
    assert_eq!(decode_v("DECIMAL(20,2)", "0.1"), Ok(dv("0.10")));
    assert_eq!(decode_v("DECIMAL(20,2)", "1e2"), Ok(dv("100.00")));
    // Up to MySQL's 65 digits (they were refused beyond 38).
    assert_eq!(
        decode_v("DECIMAL(65,0)", &"9".repeat(65)),
        Ok(dv(&"9".repeat(65)))
    );
    let e = decode_v("DECIMAL(65,0)", &"9".repeat(66)).unwrap_err();
    assert!(e.contains("65"), "{e}");
    let e = decode_v("DECIMAL(50,0)", &"9".repeat(51)).unwrap_err();
    assert!(e.contains("out of range"), "{e}");
    let e = decode_v("DECIMAL(10,2)", "1.234").unwrap_err();
    assert!(e.contains("exactly"), "{e}");
    let e = decode_v("DECIMAL(10,2) UNSIGNED", "\"-1.00\"").unwrap_err();
    assert!(e.contains("negative"), "{e}");
    // decimal.handling.mode=string
    assert_eq!(decode_v("DECIMAL(10,2)", "\"-12.50\""), Ok(dv("-12.50")));
    assert_eq!(decode_v("DECIMAL(10,0)", "\"1234\""), Ok(dv("1234")));
}

#[test]
fn bigint_unsigned_in_every_debezium_mode() {
    let max = dv("18446744073709551615");
    // bigint.unsigned.handling.mode=long wraps values above 2^63-1 to negative int64.
    assert_eq!(decode_v("BIGINT UNSIGNED", "-1"), Ok(max.clone()));
    assert_eq!(
        decode_v("BIGINT UNSIGNED", "18446744073709551615"),
        Ok(max.clone())
    );
    assert_eq!(
        decode_v("BIGINT UNSIGNED", "\"18446744073709551615\""),
        Ok(max.clone())
    );
    // precise without schema: base64 of the two's complement, scale 0.
    assert_eq!(decode_v("BIGINT UNSIGNED", "\"AP//////////\""), Ok(max));
    assert_eq!(decode_v("SERIAL", "5"), Ok(dv("5")));
    assert!(decode_v("BIGINT UNSIGNED", "18446744073709551616").is_err());
}

#[test]
fn times_bits_sets_and_doubles_are_checked() {
    assert_eq!(
        decode_v("TIME(3)", "\"-01:02:03.5\""),
        Ok(Value::Time(-3_723_500_000))
    );
    assert_eq!(
        decode_v("TIME", "3600000000"),
        Ok(Value::Time(3_600_000_000))
    );
    assert!(
        decode_v("TIME", "3020400000000").is_err(),
        "beyond 838:59:59"
    );
    assert_eq!(decode_v("BIT(3)", "\"Bw==\""), Ok(Value::Int(7)));
    assert!(
        decode_v("BIT(3)", "\"CA==\"").is_err(),
        "8 does not fit 3 bits"
    );
    assert!(
        decode_v("SET('a','b')", "\"a,z\"")
            .unwrap_err()
            .contains("`z`")
    );
    assert_eq!(decode_v("DOUBLE", "1.0E300"), Ok(dbl(1e300)));
    assert!(decode_v("DOUBLE", "\"NaN\"").is_err());
    assert_eq!(decode_v("YEAR", "1999"), Ok(Value::Int(1999)));
    assert_eq!(decode_v("TINYINT(1)", "true"), Ok(Value::Int(1)));
    assert!(
        decode_v("INT UNSIGNED", "-1")
            .unwrap_err()
            .contains("negative")
    );
}

#[test]
fn a_column_added_upstream_keeps_the_views_updating() {
    // The same workload, once as is and once with a column schema.sql does not declare in
    // every row image: the views end identical and the extra values are counted.
    let d = outbound();
    let (base, _) = workload(30, 5, 0, 0.0, false, DecimalMode::String);
    let text = String::from_utf8(base.clone()).unwrap();
    let drifted: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let l = if i % 2 == 0 {
                l.replace(r#""after":{"id":"#, r#""after":{"added_later":"x","id":"#)
            } else {
                l.to_string()
            };
            l + "\n"
        })
        .collect();
    let a = replay(&d, base, 1, 0);
    let b = replay(&d, drifted.into_bytes(), 1, 0);
    assert_eq!(a.state, b.state);
    assert!(b.rejected.is_empty(), "{:?}", b.rejected);
    assert!(b.metrics.undeclared_columns > 0);
    assert_eq!(a.metrics.undeclared_columns, 0);
}

#[test]
fn views_over_doubles_and_times_plan_and_sum_of_double_is_a_double() {
    let catalog = || {
        Catalog::parse(
            "s.sql",
            "CREATE DATABASE a; CREATE TABLE a.t (id INT PRIMARY KEY, g INT, x DOUBLE, tm TIME, \
             u BIGINT UNSIGNED);",
        )
        .unwrap()
    };
    let view = |sql: &str| {
        cdcflow::sql::Dataflows::from_sources(
            catalog(),
            &[("v.sql".into(), "v".into(), sql.into())],
        )
    };
    view(
        "SELECT g, MIN(x), MAX(x), COUNT(x), MAX(tm), SUM(u) FROM a.t WHERE x * 2 > 0.5 GROUP BY g",
    )
    .unwrap();
    view("SELECT x, COUNT(*) FROM a.t GROUP BY x").unwrap();
    // SUM and AVG of a double are doubles (exact sums, rounded once: see dataflow::accum).
    let d = view("SELECT g, SUM(x) s, AVG(x) a FROM a.t GROUP BY g").unwrap();
    assert!(
        d.views[0]
            .aggregates
            .iter()
            .all(|a| a.ty == cdcflow::sql::expr::Type::Double),
        "{:?}",
        d.views[0].aggregates
    );
}

fn public_catalog() -> Arc<Catalog> {
    Arc::new(Catalog::load(&root().join("fixtures/debezium/public.sql")).unwrap())
}

/// The one event of a decoded message.
fn only_event(d: &Decoded) -> &cdcflow::event::ChangeEvent {
    let Decoded::Events(e) = d else {
        panic!("{d:?}")
    };
    assert_eq!(e.len(), 1, "{e:?}");
    &e[0]
}

#[test]
fn real_public_messages_decode_to_exact_values() {
    let catalog = public_catalog();
    let text = |s: &str| Value::Text(s.into());
    let dt = |ms: i64| Value::DateTime(ms * 1000);

    // Debezium 2.4.1, schemas off (kohei-kohei/zenn-content): create, update, delete and the
    // delete's tombstone on `playground.items`; DATETIME(3) values are epoch milliseconds.
    let items = catalog.lookup("playground", "items").unwrap();
    let mut dec = DebeziumDecoder::new(catalog.clone());
    let got = decode_all(&mut dec, "public-zenn-2.4.1-schemas-off.jsonl");
    assert_eq!(got.len(), 4);
    let c = only_event(&got[0]);
    assert_eq!(c.table, items);
    assert_eq!(c.key, vec![Value::Int(1)]);
    assert_eq!(
        c.row,
        Some(Row::from(vec![
            Value::Int(1),
            text("Tシャツ"),
            dt(1_702_278_557_988),
            dt(1_702_278_557_988),
        ]))
    );
    assert_eq!(
        c.version,
        Version {
            file: 3,
            pos: 398,
            row: 0
        }
    );
    assert_eq!(c.time, 1_702_278_557_000);
    assert!(c.tx.is_none());
    let row = c.row.as_ref().unwrap();
    assert_eq!(row.get(2).to_string(), "2023-12-11 07:09:17.988");

    let u = only_event(&got[1]);
    assert_eq!(u.table, items);
    assert_eq!(u.key, vec![Value::Int(1)], "same key: one upsert");
    assert_eq!(
        u.row,
        Some(Row::from(vec![
            Value::Int(1),
            text("ロングスリーブTシャツ"),
            dt(1_702_278_557_988),
            dt(1_702_278_563_519),
        ]))
    );
    assert_eq!(
        u.version,
        Version {
            file: 3,
            pos: 748,
            row: 0
        }
    );
    assert_eq!(u.time, 1_702_278_563_000);
    assert_eq!(
        u.row.as_ref().unwrap().get(3).to_string(),
        "2023-12-11 07:09:23.519"
    );

    let d = only_event(&got[2]);
    assert_eq!(d.table, items);
    assert_eq!(d.key, vec![Value::Int(1)]);
    assert_eq!(d.row, None, "a delete");
    assert_eq!(
        d.version,
        Version {
            file: 3,
            pos: 1133,
            row: 0
        }
    );
    assert_eq!(d.time, 1_702_278_569_000);
    assert_eq!(got[3], Decoded::Ignored("tombstone"));

    // Debezium 2.7.3, schemas on (symplesims/symplesims.github.io): a snapshot read of
    // `demosrc.products` with decimal.handling.mode=double and time.precision.mode=connect;
    // SERIAL (BIGINT UNSIGNED) as int64, FLOAT as a Connect float, TIMESTAMP as ZonedTimestamp.
    let products = catalog.lookup("demosrc", "products").unwrap();
    let mut dec = DebeziumDecoder::new(catalog.clone());
    let got = decode_all(&mut dec, "public-msk-2.7.3-schemas-on.jsonl");
    assert_eq!(got.len(), 1);
    let r = only_event(&got[0]);
    assert_eq!(r.table, products);
    assert_eq!(r.key, vec![dv("8")], "SERIAL is a decimal of scale 0");
    // 2025-02-12T10:10:04Z is 1739355004 seconds after the epoch.
    let ts = Value::DateTime(1_739_355_004_000_000);
    assert_eq!(
        r.row,
        Some(Row::from(vec![
            dv("8"),
            text("Coffee Maker"),
            text("Brew the perfect cup of coffee every time"),
            text("Home Appliances"),
            // A FLOAT holds the single-precision number nearest 99.99, which MySQL computes with.
            dbl(99.99f32 as f64),
            text("https://example.com/images/coffeemaker.jpg"),
            ts.clone(),
            ts,
        ]))
    );
    assert_eq!(
        r.version,
        Version {
            file: 2,
            pos: 157,
            row: 0
        }
    );
    assert_eq!(r.time, 1_739_381_500_000);
    assert!(r.tx.is_none());
    assert_eq!(
        r.row.as_ref().unwrap().get(6).to_string(),
        "2025-02-12 10:10:04"
    );
    // Debezium 1.9.7 in RisingWave's connector node, schemas on (risingwavelabs/risingwave):
    // read, create, delete and update of one `test.orders` row. decimal.handling.mode=double,
    // time.precision.mode=connect (TIME and DATETIME as Connect Time/Timestamp milliseconds),
    // DATE as a string (RisingWave's converter), TIMESTAMP as ZonedTimestamp, JSON as a string.
    let orders = catalog.lookup("test", "orders").unwrap();
    let mut dec = DebeziumDecoder::new(catalog.clone());
    let got = decode_all(&mut dec, "public-risingwave-1.9.7-schemas-on.jsonl");
    assert_eq!(got.len(), 4);
    // The row inserted, read by the snapshot, and the `before` of the update.
    let first = Row::from(vec![
        Value::Int(111),
        Value::Int(1),
        Value::Int(-1),
        Value::Int(-1111),
        dbl(-11.11),
        dbl(-111.11111),
        dv("-111.11"),
        text("yes please"),
        Value::Date(-354_285), // 1000-01-01
        Value::Time(0),
        Value::DateTime(0),
        Value::DateTime(1_000_000), // 1970-01-01T00:00:01Z
        text("{\"k1\": \"v1\", \"k2\": 11}"),
    ]);
    let r = only_event(&got[0]);
    assert_eq!(r.table, orders);
    assert_eq!(r.key, vec![Value::Int(111)]);
    assert_eq!(r.row, Some(first.clone()));
    assert_eq!(
        r.version,
        Version {
            file: 3,
            pos: 951,
            row: 0
        }
    );
    assert_eq!(r.time, 1_678_090_651_000);
    assert!(r.tx.is_none());
    let row = r.row.as_ref().unwrap();
    assert_eq!(row.get(8).to_string(), "1000-01-01");
    assert_eq!(row.get(9).to_string(), "00:00:00");
    assert_eq!(row.get(10).to_string(), "1970-01-01 00:00:00");
    assert_eq!(row.get(11).to_string(), "1970-01-01 00:00:01");

    let c = only_event(&got[1]);
    assert_eq!(c.table, orders);
    assert_eq!(c.key, vec![Value::Int(111)]);
    assert_eq!(c.row, Some(first));
    assert_eq!(
        c.version,
        Version {
            file: 3,
            pos: 789,
            row: 0
        }
    );
    assert_eq!(c.time, 1_678_088_861_000);

    let d = only_event(&got[2]);
    assert_eq!(d.table, orders);
    assert_eq!(d.key, vec![Value::Int(111)]);
    assert_eq!(d.row, None, "a delete");
    assert_eq!(
        d.version,
        Version {
            file: 3,
            pos: 1643,
            row: 0
        }
    );
    assert_eq!(d.time, 1_678_090_653_000);

    let u = only_event(&got[3]);
    assert_eq!(u.table, orders);
    assert_eq!(u.key, vec![Value::Int(111)], "same key: one upsert");
    assert_eq!(
        u.row,
        Some(Row::from(vec![
            Value::Int(111),
            Value::Int(0),
            Value::Int(3),
            Value::Int(3333),
            dbl(33.33),
            dbl(333.33333),
            dv("333.33"),
            text("no thanks"),
            Value::Date(2_932_896),                  // 9999-12-31
            Value::Time(86_399_000_000),             // 86399000 ms = 23:59:59
            Value::DateTime(99_999_999_999_000_000), // 5138-11-16 09:46:39
            Value::DateTime(2_146_619_647_000_000),  // 2038-01-09T03:14:07Z
            text("{\"k1\": \"v1_updated\", \"k2\": 33}"),
        ]))
    );
    assert_eq!(
        u.version,
        Version {
            file: 3,
            pos: 1168,
            row: 0
        }
    );
    assert_eq!(u.time, 1_678_089_331_000);
    let row = u.row.as_ref().unwrap();
    assert_eq!(row.get(8).to_string(), "9999-12-31");
    assert_eq!(row.get(9).to_string(), "23:59:59");
    assert_eq!(row.get(10).to_string(), "5138-11-16 09:46:39");
    assert_eq!(row.get(11).to_string(), "2038-01-09 03:14:07");

    // Flink CDC 3.2.0 (Debezium 1.9.8), schemas off (LIMUXUALE0927/Everything_big_data): two
    // snapshot reads of `app_db.orders` whose DECIMAL(10,2) is a precise decimal (base64)
    // without a schema, Flink CDC's default. Debezium encodes the unscaled value at the
    // column's declared scale: AZA= = 0x0190 = 400 -> 4.00, JxA= = 0x2710 = 10000 -> 100.00,
    // the source's INSERTs. (`regression_schemaless_precise_decimals_use_the_declared_scale`)
    let app_orders = catalog.lookup("app_db", "orders").unwrap();
    let mut dec = DebeziumDecoder::new(catalog.clone());
    let got = decode_all(&mut dec, "public-flinkcdc-1.9.8-schemas-off.jsonl");
    assert_eq!(got.len(), 2);
    for (e, id, price) in [(&got[0], 1, "4.00"), (&got[1], 2, "100.00")] {
        let e = only_event(e);
        assert_eq!(e.table, app_orders);
        assert_eq!(e.key, vec![Value::Int(id)]);
        assert_eq!(e.row, Some(Row::from(vec![Value::Int(id), dv(price)])));
        // A Flink CDC snapshot read: version 0, and `source.ts_ms` is 0.
        assert_eq!(
            e.version,
            Version {
                file: 0,
                pos: 0,
                row: 0
            }
        );
        assert_eq!(e.time, 0);
        assert!(e.tx.is_none());
    }
}
