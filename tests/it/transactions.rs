//! Transactions made whole: with Debezium transaction metadata every row of a transaction is
//! applied at one time, whatever its statements' times, and every emitted time shows whole
//! transactions only. The markers come inline or from their own partition.

use std::collections::HashMap;

use cdcflow::decode::Decoded;
use cdcflow::decode::debezium::DebeziumDecoder;
use cdcflow::event::{ChangeEvent, TxMarker};
use cdcflow::oracle;
use cdcflow::source::Input;
use cdcflow::sql::Dataflows;
use cdcflow::time::Time;
use cdcflow::workload::{GenOptions, TxMetadata};

use crate::common::{assert_consistent, outbound, replay_inputs};

fn generate(orders: u64, seed: u64, meta: TxMetadata) -> (Vec<u8>, Vec<u8>) {
    let (mut rows, mut markers) = (Vec::new(), Vec::new());
    cdcflow::workload::generate_with_markers(
        &GenOptions {
            orders,
            seed,
            shuffle: 0,
            duplicates: 0.0,
            schemas: seed.is_multiple_of(2),
            decimal: cdcflow::workload::DecimalMode::String,
            span_secs: 1800,
            tx_metadata: meta,
        },
        &mut rows,
        Some(&mut markers),
    )
    .unwrap();
    (rows, markers)
}

/// Every row change at its transaction's commit time, computed independently of the engine:
/// in END order, `commit = max(END time, the newest statement time of its rows, the previous
/// commit)`.
fn at_commit_times(d: &Dataflows, inputs: &[&[u8]]) -> (Vec<ChangeEvent>, usize, usize) {
    let mut dec = DebeziumDecoder::new(d.catalog.clone());
    let mut events = Vec::new();
    let mut ends: Vec<TxMarker> = Vec::new();
    for bytes in inputs {
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match dec.decode(line).unwrap() {
                Decoded::Events(e) => events.extend(e),
                Decoded::TxEnd(m) => ends.push(m),
                Decoded::Ignored(_) => {}
            }
        }
    }
    let mut newest: HashMap<String, Time> = HashMap::new();
    let mut spread = 0;
    let mut first: HashMap<String, Time> = HashMap::new();
    for e in &events {
        let id = &e.tx.as_ref().expect("every row is tagged").id;
        let n = newest.entry(id.clone()).or_default();
        *n = (*n).max(e.time);
        let f = first.entry(id.clone()).or_insert(e.time);
        if *f != e.time {
            spread += 1;
        }
    }
    let mut commit: HashMap<String, Time> = HashMap::new();
    let mut prev = 0;
    for m in &ends {
        let c = m.time.max(newest[&m.id]).max(prev);
        prev = c;
        commit.insert(m.id.clone(), c);
    }
    for e in &mut events {
        e.time = commit[&e.tx.as_ref().unwrap().id];
    }
    (events, ends.len(), spread)
}

fn check(meta: TxMetadata, workers: usize, seed: u64) {
    let d = outbound();
    let (rows, markers) = generate(120, seed, meta);
    let mut inputs = vec![Input::from_bytes("rows", rows.clone())];
    let mut all: Vec<&[u8]> = vec![&rows];
    if meta == TxMetadata::Separate {
        inputs.push(Input::from_bytes("transactions", markers.clone()));
        all.push(&markers);
    }
    let (events, transactions, spread) = at_commit_times(&d, &all);
    assert!(
        spread > 100,
        "the workload's transactions span several statement times ({spread} rows differ)"
    );
    // Lateness covering the statement spread: no row is late, so every time is its commit.
    let out = replay_inputs(&d, inputs, workers, 3_600_000);
    assert_eq!(out.metrics.incomplete_transactions, 0);
    assert_eq!(out.metrics.transactions as usize, transactions);
    assert_consistent(&d, &events, out.log.as_ref().unwrap());
    let n = d.catalog.tables.len();
    let want = oracle::evaluate_all(&d.views, &oracle::tables_at(n, &events, None));
    assert_eq!(out.state, want);
}

#[test]
fn transactions_whole_with_inline_markers() {
    check(TxMetadata::Inline, 1, 21);
    check(TxMetadata::Inline, 2, 22);
}

#[test]
fn transactions_whole_with_markers_in_their_own_partition() {
    check(TxMetadata::Separate, 1, 23);
    check(TxMetadata::Separate, 2, 24);
}

/// A transaction whose END never comes is released when the input ends, counted and warned
/// about, never lost.
#[test]
fn transactions_without_end_are_released_at_end_of_input() {
    let d = outbound();
    let (rows, _markers) = generate(40, 25, TxMetadata::Separate);
    let out = replay_inputs(&d, vec![Input::from_bytes("rows", rows.clone())], 2, 0);
    assert!(out.metrics.incomplete_transactions > 0);
    let (events, _, _) = {
        let mut dec = DebeziumDecoder::new(d.catalog.clone());
        let mut ev = Vec::new();
        for line in rows.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Decoded::Events(e) = dec.decode(line).unwrap() {
                ev.extend(e);
            }
        }
        (ev, 0, 0)
    };
    let n = d.catalog.tables.len();
    let want = oracle::evaluate_all(&d.views, &oracle::tables_at(n, &events, None));
    assert_eq!(out.state, want, "every row is applied");
}
