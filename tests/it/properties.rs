//! Property tests: random change sequences x random arrival orders x duplicated deliveries x
//! 1, 2 and 4 workers, against the oracle.

use cdcflow::decode::Row;
use cdcflow::oracle;
use cdcflow::sql::Dataflows;
use cdcflow::value::{Decimal, Value};
use cdcflow::workload::{DecimalMode, Encoder, Op, RowChange};
use proptest::prelude::*;

use crate::common::*;

/// One random row change: table, key, and whether it deletes; values come from small domains
/// so that updates move rows between groups and keys collide.
#[derive(Clone, Debug)]
struct Step {
    table: usize,
    key: i64,
    delete: bool,
    seed: u64,
    new_tx: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0usize..5,
        1i64..6,
        prop::bool::weighted(0.2),
        any::<u64>(),
        prop::bool::weighted(0.4),
    )
        .prop_map(|(table, key, delete, seed, new_tx)| Step {
            table,
            key,
            delete,
            seed,
            new_tx,
        })
}

const DAY_MS: i64 = 86_400_000;
const BASE_MS: i64 = 1_772_409_600_000; // 2026-03-02

fn row_for(d: &Dataflows, table: usize, key: i64, seed: u64) -> Row {
    let pick = |n: u64, shift: u32| ((seed >> shift) % n) as i64;
    let t = &d.catalog.tables[table];
    let dt = |s: u32| Value::DateTime((BASE_MS + pick(3, s) * DAY_MS + pick(1000, s + 8)) * 1000);
    match (t.db.as_str(), t.name.as_str()) {
        ("orders", "orders") => Row::from(vec![
            Value::Int(key),
            Value::Int(pick(3, 0)),
            Value::Text(["placed", "paid", "cancelled"][pick(3, 4) as usize].into()),
            dt(8),
        ]),
        ("orders", "order_items") => Row::from(vec![
            Value::Int(key),
            Value::Int(1 + pick(5, 0)),
            Value::Text(["book", "toy"][pick(2, 4) as usize].into()),
            Value::Int(pick(7, 8) - 1),
            Value::Dec(Decimal::new(pick(5000, 16) as i128 - 100, 2)),
        ]),
        ("warehouse", "shipments") => Row::from(vec![
            Value::Int(key),
            Value::Int(1 + pick(5, 0)),
            Value::Int(1 + pick(2, 4)),
            Value::Text(["picking", "shipped", "shipped", "returned"][pick(4, 8) as usize].into()),
            if pick(5, 12) == 0 {
                Value::Null
            } else {
                dt(16)
            },
        ]),
        ("logistics", "couriers") => Row::from(vec![
            Value::Int(key),
            Value::Text(["dhl", "ups", "gls"][pick(3, 0) as usize].into()),
        ]),
        ("logistics", "deliveries") => Row::from(vec![
            Value::Int(key),
            Value::Int(1 + pick(5, 0)),
            Value::Int(1 + pick(5, 4)),
            Value::Dec(Decimal::new(pick(4000, 8) as i128, 2)),
            dt(20),
        ]),
        _ => unreachable!(),
    }
}

/// Turns steps into row changes in commit order (times and positions increase).
fn changes(d: &Dataflows, steps: &[Step]) -> Vec<RowChange> {
    let mut current: std::collections::HashMap<(usize, i64), Row> = Default::default();
    let mut out = Vec::new();
    let mut ts = BASE_MS as u64;
    let mut pos = 4u64;
    for s in steps {
        if s.new_tx {
            ts += 1 + s.seed % 3000;
        }
        pos += 100;
        let before = current.get(&(s.table, s.key)).cloned();
        let (op, after) = match (&before, s.delete) {
            (None, true) => continue,
            (Some(_), true) => (Op::Delete, None),
            (None, false) => (Op::Create, Some(row_for(d, s.table, s.key, s.seed))),
            (Some(_), false) => (Op::Update, Some(row_for(d, s.table, s.key, s.seed))),
        };
        match &after {
            Some(a) => current.insert((s.table, s.key), a.clone()),
            None => current.remove(&(s.table, s.key)),
        };
        out.push(RowChange {
            table: s.table,
            op,
            before,
            after,
            ts_ms: ts,
            file: 1 + pos / 5000,
            pos,
            row: 0,
        });
    }
    out
}

/// Encodes each change in a mode chosen per message, permutes, and duplicates some.
fn deliver(
    d: &Dataflows,
    changes: &[RowChange],
    order: &[usize],
    dups: &[usize],
    modes: &[(bool, u8)],
) -> Vec<u8> {
    let mut lines: Vec<String> = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        let (schemas, m) = modes[i % modes.len()];
        let mode = [
            DecimalMode::String,
            DecimalMode::Precise,
            DecimalMode::Double,
        ][m as usize % 3];
        // A precise decimal needs its schema (refused without: see bad_input).
        let schemas = schemas || mode == DecimalMode::Precise;
        let mut s = String::new();
        Encoder::new(&d.catalog, schemas, mode).encode(c, &mut s);
        lines.push(s);
    }
    for &dup in dups {
        if !lines.is_empty() {
            let l = lines[dup % lines.len()].clone();
            lines.push(l);
        }
    }
    let mut idx: Vec<usize> = (0..lines.len()).collect();
    // Apply the permutation given by sorting on random keys.
    idx.sort_by_key(|i| order.get(*i).copied().unwrap_or(*i));
    let mut out = Vec::new();
    for i in idx {
        out.extend_from_slice(lines[i].as_bytes());
        out.push(b'\n');
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any arrival order, duplicates and worker count: with lateness covering the whole input,
    /// the change log at every time equals the oracle's difference, and the end equals the
    /// oracle and the hand-written dashboards.
    #[test]
    fn any_order_any_workers_matches_oracle(
        steps in prop::collection::vec(step(), 1..120),
        order in prop::collection::vec(any::<usize>(), 200),
        dups in prop::collection::vec(any::<usize>(), 0..10),
        modes in prop::collection::vec((any::<bool>(), 0u8..3), 1..4),
        workers in prop::sample::select(vec![1usize, 2, 4]),
    ) {
        let d = outbound();
        let cs = changes(&d, &steps);
        let bytes = deliver(&d, &cs, &order, &dups, &modes);
        let events = decode_lines(&d, &bytes);
        let tables = oracle::tables_at(d.catalog.tables.len(), &events, None);
        let expected = oracle::evaluate_all(&d.views, &tables);
        prop_assert_eq!(&expected, &outbound_reference(&d, &tables));
        let out = replay(&d, bytes, workers, u64::MAX / 2);
        prop_assert_eq!(out.metrics.late, 0);
        prop_assert_eq!(out.metrics.duplicates, duplicate_events(&events));
        prop_assert_eq!(&out.state, &expected);
        assert_consistent(&d, &events, out.log.as_ref().unwrap());
    }

    /// Without lateness, arbitrary arrival orders make events late; the final documents are
    /// still exactly the oracle's, for every worker count.
    #[test]
    fn late_arrivals_still_end_exact(
        steps in prop::collection::vec(step(), 1..120),
        order in prop::collection::vec(any::<usize>(), 200),
        dups in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let d = outbound();
        let cs = changes(&d, &steps);
        let bytes = deliver(&d, &cs, &order, &dups, &[(false, 0)]);
        let events = decode_lines(&d, &bytes);
        let expected = oracle::evaluate_all(&d.views, &oracle::tables_at(d.catalog.tables.len(), &events, None));
        let mut finals = Vec::new();
        for workers in [1, 2, 4] {
            let out = replay(&d, bytes.clone(), workers, 0);
            prop_assert_eq!(&out.state, &expected);
            finals.push(out.state);
        }
    }
}
