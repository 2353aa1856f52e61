//! SQL semantics checked against hand-computed results (and the oracle at every time): NULLs in
//! joins, groups and aggregates, LEFT JOIN retractions, HAVING, CASE, COALESCE, IN, BETWEEN.

use cdcflow::decode::Row;
use cdcflow::schema::Catalog;
use cdcflow::sql::Dataflows;
use cdcflow::value::{Decimal, Value};
use cdcflow::workload::{DecimalMode, Encoder, Op, RowChange};

use crate::common::*;

const SCHEMA: &str = "CREATE DATABASE s;
CREATE TABLE s.a (id INT NOT NULL PRIMARY KEY, g VARCHAR(10) NULL, x INT NULL, amt DECIMAL(8,2) NULL, b_id INT NULL);
CREATE TABLE s.b (id INT NOT NULL PRIMARY KEY, name VARCHAR(10) NULL);";

const LEFT_JOIN: &str = "SELECT a.g, b.name, COUNT(*) AS n, COUNT(b.id) AS matched, SUM(a.x) AS sx,
  MIN(a.amt) AS lo, MAX(a.amt) AS hi, AVG(a.amt) AS avg_amt
FROM s.a a LEFT JOIN s.b b ON b.id = a.b_id
GROUP BY a.g, b.name";

const HAVING_CASE: &str =
    "SELECT CASE WHEN a.x > 10 THEN 'big' WHEN a.x IS NULL THEN 'none' ELSE 'small' END AS size,
  COUNT(DISTINCT a.g) AS `groups`, SUM(COALESCE(a.amt, 0)) AS total, COUNT(*) * 10 AS n10
FROM s.a a
WHERE a.g IN ('p', 'q') OR a.x BETWEEN 1 AND 5
GROUP BY size
HAVING COUNT(*) >= 2";

fn views(extra: &[(&str, &str)]) -> Result<Dataflows, cdcflow::schema::SqlError> {
    let catalog = Catalog::parse("schema.sql", SCHEMA).unwrap();
    let v: Vec<(String, String, String)> = extra
        .iter()
        .map(|(n, s)| (format!("{n}.sql"), n.to_string(), s.to_string()))
        .collect();
    Dataflows::from_sources(catalog, &v)
}

fn s(x: &str) -> Value {
    Value::Text(x.into())
}
fn dec(x: &str) -> Value {
    Value::Dec(Decimal::parse(x).unwrap())
}
fn a(id: i64, g: Option<&str>, x: Option<i64>, amt: Option<&str>, b: Option<i64>) -> Row {
    Row::from(vec![
        Value::Int(id),
        g.map_or(Value::Null, s),
        x.map_or(Value::Null, Value::Int),
        amt.map_or(Value::Null, dec),
        b.map_or(Value::Null, Value::Int),
    ])
}

fn scenario(d: &Dataflows) -> Vec<u8> {
    let mut pos = 0;
    let mut ch = |table, op, before: Option<Row>, after: Option<Row>, ts| {
        pos += 10;
        RowChange {
            table,
            op,
            before,
            after,
            ts_ms: ts,
            file: 1,
            pos,
            row: 0,
        }
    };
    let changes = vec![
        ch(
            0,
            Op::Create,
            None,
            Some(a(1, Some("p"), Some(1), Some("1.50"), Some(1))),
            1000,
        ),
        ch(
            0,
            Op::Create,
            None,
            Some(a(2, Some("p"), Some(20), None, Some(2))),
            1000,
        ),
        ch(
            0,
            Op::Create,
            None,
            Some(a(3, None, None, Some("2.25"), None)),
            1000,
        ),
        ch(
            0,
            Op::Create,
            None,
            Some(a(4, Some("q"), Some(3), Some("-1.00"), Some(1))),
            1000,
        ),
        ch(
            0,
            Op::Create,
            None,
            Some(a(5, Some("r"), None, Some("4.00"), Some(3))),
            1000,
        ),
        ch(
            1,
            Op::Create,
            None,
            Some(Row::from(vec![Value::Int(1), s("one")])),
            1000,
        ),
        ch(
            1,
            Op::Create,
            None,
            Some(Row::from(vec![Value::Int(3), Value::Null])),
            1000,
        ),
        // t=2000: row 4 moves from group q to group p.
        ch(
            0,
            Op::Update,
            Some(a(4, Some("q"), Some(3), Some("-1.00"), Some(1))),
            Some(a(4, Some("p"), Some(3), Some("-1.00"), Some(1))),
            2000,
        ),
        // t=3000: b 1 goes away; rows 1 and 4 lose their match.
        ch(
            1,
            Op::Delete,
            Some(Row::from(vec![Value::Int(1), s("one")])),
            None,
            3000,
        ),
    ];
    let mut out = String::new();
    let mut enc = Encoder::new(&d.catalog, false, DecimalMode::String);
    for c in &changes {
        enc.encode(c, &mut out);
        out.push('\n');
    }
    out.into_bytes()
}

#[test]
fn left_join_nulls_and_aggregates_match_hand_computed_results() {
    let d = views(&[("left_join", LEFT_JOIN), ("having_case", HAVING_CASE)]).unwrap();
    let bytes = scenario(&d);
    let events = decode_lines(&d, &bytes);
    for workers in [1, 2] {
        let out = replay(&d, bytes.clone(), workers, 0);
        assert_consistent(&d, &events, out.log.as_ref().unwrap());
        let hv = 0; // having_case sorts first
        let lj = 1;
        let expected = [
            (
                (lj, "\\N|\\N".to_string()),
                vec![
                    Value::Null,
                    Value::Null,
                    Value::Int(1),
                    Value::Int(0),
                    Value::Null,
                    dec("2.25"),
                    dec("2.25"),
                    dec("2.250000"),
                ],
            ),
            (
                (lj, "p|\\N".to_string()),
                vec![
                    s("p"),
                    Value::Null,
                    Value::Int(3),
                    Value::Int(0),
                    dec("24"),
                    dec("-1.00"),
                    dec("1.50"),
                    dec("0.250000"),
                ],
            ),
            (
                (lj, "r|\\N".to_string()),
                vec![
                    s("r"),
                    Value::Null,
                    Value::Int(1),
                    Value::Int(1),
                    Value::Null,
                    dec("4.00"),
                    dec("4.00"),
                    dec("4.000000"),
                ],
            ),
            (
                (hv, "small".to_string()),
                vec![s("small"), Value::Int(1), dec("0.50"), Value::Int(20)],
            ),
        ];
        let got: Vec<_> = out.state.clone().into_iter().collect();
        let mut want: Vec<_> = expected
            .into_iter()
            .map(|(k, v)| (k, Row::from(v)))
            .collect();
        want.sort();
        assert_eq!(got, want, "{workers} workers");
        // The group q existed at t=1000 and is deleted at t=2000.
        let log = out.log.unwrap();
        assert!(
            log.iter()
                .any(|c| c.time == 2000 && c.view == lj && c.id == "q|one" && c.doc.is_none())
        );
        // Output types: SUM of INT is an integer, exact decimals keep their digits.
        let names = cdcflow::sink::Names::of(&d.views);
        let mut line = String::new();
        let c = log
            .iter()
            .find(|c| c.view == lj && c.id == "p|\\N" && c.time == 3000)
            .unwrap();
        names.change_json(c, &mut line);
        assert_eq!(
            line,
            r#"{"view":"left_join","id":"p|\\N","op":"upsert","time":3000,"doc":{"g":"p","name":null,"n":3,"matched":0,"sx":24,"lo":-1.00,"hi":1.50,"avg_amt":0.250000}}"#
        );
    }
}

/// The scenario for the MariaDB oracle: dataflows, schema SQL, view SQL by name, input bytes.
pub fn scenario_for_oracle() -> (
    Dataflows,
    String,
    std::collections::BTreeMap<String, String>,
    Vec<u8>,
) {
    let d = views(&[("left_join", LEFT_JOIN), ("having_case", HAVING_CASE)]).unwrap();
    let bytes = scenario(&d);
    let views = [("left_join", LEFT_JOIN), ("having_case", HAVING_CASE)]
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    (d, SCHEMA.to_string(), views, bytes)
}

fn refused(sql: &str) -> String {
    views(&[("v", sql)]).unwrap_err().to_string()
}

#[test]
fn outside_the_subset_is_refused_with_position_and_what_is_supported() {
    let e = refused("SELECT a.g, COUNT(*) AS n FROM s.a a GROUP BY a.g ORDER BY n");
    assert!(e.starts_with("v.sql:1:") && e.contains("ORDER BY"), "{e}");
    let e = refused("SELECT a.g, a.x, COUNT(*) AS n FROM s.a a GROUP BY a.g");
    assert!(
        e.contains("`a.x` is neither in GROUP BY nor inside an aggregate"),
        "{e}"
    );
    assert!(e.starts_with("v.sql:1:13:"), "{e}");
    let e =
        refused("SELECT a.g, COUNT(*) AS n FROM s.a a JOIN s.b b ON b.id > a.b_id GROUP BY a.g");
    assert!(e.contains("at least one equality"), "{e}");
    let e = refused("SELECT a.g, SUM(a.g) AS n FROM s.a a GROUP BY a.g");
    assert!(e.contains("SUM needs a number"), "{e}");
    let e = refused("SELECT a.g, COUNT(*) AS n FROM s.a a,\n s.b b GROUP BY a.g");
    assert!(e.contains("comma joins are not supported"), "{e}");
    let e = refused("SELECT a.g, SOUNDEX(a.g) AS u, COUNT(*) AS n FROM s.a a GROUP BY a.g");
    assert!(e.contains("function SOUNDEX is not supported"), "{e}");
    let e = refused("SELECT a.g, DATE_FORMAT(a.g, '%Q') AS u FROM s.a a GROUP BY a.g");
    assert!(e.contains("DATE_FORMAT needs a date"), "{e}");
    let e = refused("SELECT a.g, COUNT(*) AS n FROM s.nope a GROUP BY a.g");
    assert!(e.contains("unknown table `s.nope`"), "{e}");
}

#[test]
fn group_by_alias_and_position_are_accepted() {
    let d = views(&[
        (
            "v",
            "SELECT a.g AS grp, COUNT(*) AS n FROM s.a a GROUP BY grp",
        ),
        ("w", "SELECT a.g, COUNT(*) AS n FROM s.a a GROUP BY 1"),
    ])
    .unwrap();
    assert_eq!(d.views.len(), 2);
}
