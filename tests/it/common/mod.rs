//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use cdcflow::decode::debezium::DebeziumDecoder;
use cdcflow::decode::{ChangeEvent, Decoded, Row};
use cdcflow::oracle;
use cdcflow::pipeline::{RunOptions, RunOutcome, replay as run};
use cdcflow::sink::{Change, ViewState};
use cdcflow::source::Input;
use cdcflow::sql::Dataflows;
use cdcflow::time::Time;
use cdcflow::value::{Decimal, MICROS_PER_DAY, Value};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped outbound views.
pub fn outbound() -> Dataflows {
    Dataflows::load(&root().join("dataflows")).expect("shipped dataflows load")
}

/// Plans `views` (`(name, sql)`) over the tables of `schema` (DDL text).
pub fn dataflows(schema: &str, views: &[(&str, &str)]) -> Dataflows {
    let v: Vec<(String, String, String)> = views
        .iter()
        .map(|(n, s)| (format!("{n}.sql"), n.to_string(), s.to_string()))
        .collect();
    Dataflows::from_sources(
        cdcflow::schema::Catalog::parse("schema.sql", schema).unwrap(),
        &v,
    )
    .unwrap()
}

/// Decodes every line (panicking on errors: test inputs are valid).
pub fn decode_lines(d: &Dataflows, bytes: &[u8]) -> Vec<ChangeEvent> {
    let mut dec = DebeziumDecoder::new(d.catalog.clone());
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match dec.decode(line) {
            Ok(Decoded::Events(e)) => out.extend(e),
            Ok(Decoded::Ignored(_) | Decoded::TxEnd(_)) => {}
            Err(e) => panic!("line {}: {e}", i + 1),
        }
    }
    out
}

/// Replays in-memory lines with `workers` workers, keeping the change log.
pub fn replay(d: &Dataflows, bytes: Vec<u8>, workers: usize, lateness: Time) -> RunOutcome {
    replay_inputs(
        d,
        vec![Input::from_bytes("input", bytes)],
        workers,
        lateness,
    )
}

/// Replays several in-memory inputs (partitions).
pub fn replay_inputs(
    d: &Dataflows,
    inputs: Vec<Input>,
    workers: usize,
    lateness: Time,
) -> RunOutcome {
    replay_chunked(d, inputs, workers, lateness, 64)
}

/// Replays with the watermark advancing every `chunk_lines` lines.
pub fn replay_chunked(
    d: &Dataflows,
    inputs: Vec<Input>,
    workers: usize,
    lateness: Time,
    chunk_lines: usize,
) -> RunOutcome {
    let mut opts = RunOptions::new(workers);
    opts.chunk_lines = chunk_lines;
    opts.keep_log = true;
    opts.lateness_ms = lateness;
    run(d, inputs, &opts, None).expect("replay runs")
}

/// Asserts the change log is consistent and minimal against the oracle at every time: the
/// changes at `t` are exactly the difference of the views between the previous time and `t`
/// (upserts only for new or changed documents, deletes only for vanished ones).
pub fn assert_consistent(d: &Dataflows, events: &[ChangeEvent], log: &[Change]) {
    let n = d.catalog.tables.len();
    // Time 0 is the state before any event: only global views (aggregates without GROUP BY)
    // have a document there.
    let times: BTreeSet<Time> = std::iter::once(0)
        .chain(events.iter().map(|e| e.time))
        .collect();
    let mut by_time: BTreeMap<Time, Vec<&Change>> = BTreeMap::new();
    for c in log {
        assert!(
            times.contains(&c.time),
            "change at {} which is no event time: {c:?}",
            c.time
        );
        by_time.entry(c.time).or_default().push(c);
    }
    let mut prev: ViewState = BTreeMap::new();
    for t in times {
        let now = oracle::evaluate_all(&d.views, &oracle::tables_at(n, events, Some(t)));
        let mut expected: Vec<(usize, String, Option<Row>)> = Vec::new();
        for (k, doc) in &now {
            if prev.get(k) != Some(doc) {
                expected.push((k.0, k.1.clone(), Some(doc.clone())));
            }
        }
        for k in prev.keys() {
            if !now.contains_key(k) {
                expected.push((k.0, k.1.clone(), None));
            }
        }
        expected.sort();
        let mut got: Vec<(usize, String, Option<Row>)> = by_time
            .get(&t)
            .map(|v| {
                v.iter()
                    .map(|c| (c.view, c.id.clone(), c.doc.clone()))
                    .collect()
            })
            .unwrap_or_default();
        got.sort();
        assert_eq!(
            got, expected,
            "changes emitted at time {t} differ from the oracle's difference"
        );
        prev = now;
    }
}

/// Row changes that repeat an earlier `(table, key, version)`: what ingest counts as duplicates
/// when nothing is stale.
pub fn duplicate_events(events: &[ChangeEvent]) -> u64 {
    let distinct: BTreeSet<_> = events
        .iter()
        .map(|e| (e.table, &e.key, e.version))
        .collect();
    (events.len() - distinct.len()) as u64
}

/// Applies a change log to get the final state.
pub fn fold_log(log: &[Change]) -> ViewState {
    let mut s = ViewState::new();
    for c in log {
        match &c.doc {
            Some(d) => {
                s.insert((c.view, c.id.clone()), d.clone());
            }
            None => {
                s.remove(&(c.view, c.id.clone()));
            }
        }
    }
    s
}

fn int(v: Value) -> i64 {
    match v {
        Value::Int(i) => i,
        other => panic!("not an int: {other:?}"),
    }
}
fn dec(v: Value) -> Decimal {
    match v {
        Value::Dec(d) => d,
        other => panic!("not a decimal: {other:?}"),
    }
}
fn day(v: Value) -> Value {
    match v {
        Value::DateTime(us) => Value::Date(us.div_euclid(MICROS_PER_DAY) as i32),
        _ => Value::Null,
    }
}
fn text(v: Value) -> String {
    match v {
        Value::Text(t) => t,
        other => panic!("not text: {other:?}"),
    }
}
fn id_of(key: &[Value]) -> String {
    cdcflow::dataflow::emit::document_id(key)
}

/// The three outbound dashboards computed by hand from the final tables, without SQL, plans
/// or the expression evaluator: `(view index, id) -> doc` with views in name order
/// (courier_orders, units_shipped, warehouse_cost).
pub fn outbound_reference(d: &Dataflows, tables: &oracle::Tables) -> ViewState {
    let t = |db: &str, name: &str| &tables[d.catalog.lookup(db, name).unwrap()];
    let (orders, items, ships, couriers, delivs) = (
        t("orders", "orders"),
        t("orders", "order_items"),
        t("warehouse", "shipments"),
        t("logistics", "couriers"),
        t("logistics", "deliveries"),
    );
    let mut items_by_order: HashMap<i64, Vec<&Row>> = HashMap::new();
    for i in items {
        items_by_order.entry(int(i.get(1))).or_default().push(i);
    }
    let order_status: HashMap<i64, String> = orders
        .iter()
        .map(|o| (int(o.get(0)), text(o.get(2))))
        .collect();
    let mut out = ViewState::new();
    // units_shipped
    let mut units: BTreeMap<Vec<Value>, i128> = BTreeMap::new();
    let mut cost: BTreeMap<Vec<Value>, Decimal> = BTreeMap::new();
    for s in ships.iter().filter(|s| text(s.get(3)) == "shipped") {
        for i in items_by_order.get(&int(s.get(1))).into_iter().flatten() {
            let k = vec![day(s.get(4)), s.get(2).clone(), i.get(2).clone()];
            *units.entry(k).or_default() += int(i.get(3)) as i128;
            if order_status
                .get(&int(s.get(1)))
                .is_some_and(|st| *st != "cancelled")
            {
                let line = Decimal::new(int(i.get(3)) as i128, 0)
                    .checked_mul(dec(i.get(4)))
                    .unwrap();
                let k = vec![day(s.get(4)), s.get(2).clone()];
                let e = cost.entry(k).or_insert(Decimal::new(0, 2));
                *e = e.checked_add(line).unwrap();
            }
        }
    }
    for (k, n) in units {
        out.insert(
            (1, id_of(&k)),
            Row::from(vec![
                k[0].clone(),
                k[1].clone(),
                k[2].clone(),
                Value::Dec(Decimal::new(n, 0)),
            ]),
        );
    }
    for (k, c) in cost {
        out.insert(
            (2, id_of(&k)),
            Row::from(vec![k[0].clone(), k[1].clone(), Value::Dec(c)]),
        );
    }
    // courier_orders
    let courier_name: HashMap<i64, Value> =
        couriers.iter().map(|c| (int(c.get(0)), c.get(1))).collect();
    let ship_by_id: HashMap<i64, &Row> = ships.iter().map(|s| (int(s.get(0)), s)).collect();
    let mut co: BTreeMap<Vec<Value>, (BTreeSet<i64>, Decimal)> = BTreeMap::new();
    for dl in delivs {
        let (Some(name), Some(s)) = (
            courier_name.get(&int(dl.get(2))),
            ship_by_id.get(&int(dl.get(1))),
        ) else {
            continue;
        };
        if text(s.get(3)) != "shipped" {
            continue;
        }
        let e = co
            .entry(vec![day(dl.get(4)), (*name).clone()])
            .or_insert((BTreeSet::new(), Decimal::new(0, 2)));
        e.0.insert(int(s.get(1)));
        e.1 = e.1.checked_add(dec(dl.get(3))).unwrap();
    }
    for (k, (orders, c)) in co {
        out.insert(
            (0, id_of(&k)),
            Row::from(vec![
                k[0].clone(),
                k[1].clone(),
                Value::Int(orders.len() as i64),
                Value::Dec(c),
            ]),
        );
    }
    out
}

/// Generated outbound workload bytes.
pub fn workload(
    orders: u64,
    seed: u64,
    shuffle: usize,
    duplicates: f64,
    schemas: bool,
    decimal: cdcflow::workload::DecimalMode,
) -> (Vec<u8>, cdcflow::workload::GenStats) {
    let mut out = Vec::new();
    let stats = cdcflow::workload::generate(
        &cdcflow::workload::GenOptions {
            orders,
            seed,
            shuffle,
            duplicates,
            schemas,
            decimal,
            span_secs: cdcflow::workload::DEFAULT_SPAN_SECS,
            tx_metadata: Default::default(),
        },
        &mut out,
    )
    .unwrap();
    (out, stats)
}

/// Reads a fixture file.
pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(root().join("fixtures").join(rel))
        .unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}
