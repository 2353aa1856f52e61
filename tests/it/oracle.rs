//! The engine against the oracle and the hand-written reference on generated workloads.

use cdcflow::oracle;
use cdcflow::workload::DecimalMode;

use crate::common::*;

/// Every completed time matches the oracle's difference, and the end matches both the oracle
/// and the hand-written dashboards, for 1, 2 and 4 workers.
#[test]
fn generated_workload_matches_oracle_at_every_time() {
    let d = outbound();
    let (bytes, stats) = workload(60, 11, 0, 0.0, false, DecimalMode::String);
    assert!(stats.events > 400, "workload too small: {stats:?}");
    let events = decode_lines(&d, &bytes);
    let final_tables = oracle::tables_at(d.catalog.tables.len(), &events, None);
    let expected = oracle::evaluate_all(&d.views, &final_tables);
    assert_eq!(
        expected,
        outbound_reference(&d, &final_tables),
        "oracle disagrees with the hand-written dashboards"
    );
    assert!(
        expected.len() > 20,
        "too few documents to be a meaningful check: {}",
        expected.len()
    );
    for workers in [1, 2, 4] {
        let out = replay(&d, bytes.clone(), workers, 0);
        assert_eq!(out.metrics.late, 0);
        assert_eq!(out.state, expected, "final state with {workers} workers");
        let log = out.log.expect("log kept");
        assert_eq!(fold_log(&log), expected);
        assert_consistent(&d, &events, &log);
    }
}

/// Out-of-order delivery within the allowed lateness, plus duplicated deliveries: the same
/// changes at the same times as in commit order.
#[test]
fn shuffled_and_duplicated_delivery_gives_the_same_change_log() {
    let d = outbound();
    let (ordered, _) = workload(60, 5, 0, 0.0, false, DecimalMode::String);
    let (shuffled, stats) = workload(60, 5, 40, 0.2, true, DecimalMode::Precise);
    assert!(stats.lines > stats.events, "duplicates were generated");
    assert!(stats.max_displacement_ms > 0, "lines were shuffled");
    let base = replay(&d, ordered, 1, 0);
    for workers in [1, 2, 4] {
        let out = replay(&d, shuffled.clone(), workers, stats.max_displacement_ms);
        assert_eq!(out.metrics.late, 0, "lateness covers the shuffle");
        assert_eq!(
            out.metrics.duplicates,
            duplicate_events(&decode_lines(&d, &shuffled))
        );
        assert!(out.metrics.duplicates >= stats.lines - stats.events);
        assert_eq!(out.state, base.state);
        assert_eq!(
            out.log, base.log,
            "identical change log with {workers} workers"
        );
    }
}

/// With no allowed lateness, shuffled events are late: applied at the frontier, counted, and
/// the final state is still exact.
#[test]
fn late_events_are_counted_and_the_end_state_is_exact() {
    let d = outbound();
    let (shuffled, stats) = workload(80, 9, 200, 0.1, false, DecimalMode::Double);
    let events = decode_lines(&d, &shuffled);
    let expected = oracle::evaluate_all(
        &d.views,
        &oracle::tables_at(d.catalog.tables.len(), &events, None),
    );
    for workers in [1, 2] {
        let out = replay(&d, shuffled.clone(), workers, 0);
        assert!(
            out.metrics.late > 0,
            "expected late events with lateness 0 and shuffle {}",
            stats.max_displacement_ms
        );
        assert_eq!(out.state, expected);
    }
}

/// Several inputs are several partitions: the frontier is their minimum, so splitting the
/// workload by table into separate files changes nothing.
#[test]
fn inputs_split_by_table_are_partitions_with_one_frontier() {
    let d = outbound();
    let (bytes, _) = workload(50, 3, 0, 0.0, false, DecimalMode::String);
    let base = replay(&d, bytes.clone(), 1, 0);
    let mut parts: Vec<Vec<u8>> = vec![Vec::new(); 3];
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let s = std::str::from_utf8(line).unwrap();
        let p = if s.contains("\"db\":\"orders\"") {
            0
        } else if s.contains("\"db\":\"warehouse\"") {
            1
        } else {
            2
        };
        parts[p].extend_from_slice(line);
        parts[p].push(b'\n');
    }
    let inputs = parts
        .into_iter()
        .enumerate()
        .map(|(i, b)| cdcflow::source::Input::from_bytes(format!("part{i}"), b))
        .collect();
    let out = replay_inputs(&d, inputs, 2, 0);
    assert_eq!(out.metrics.late, 0);
    assert_eq!(out.log, base.log);
}
