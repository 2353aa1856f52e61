//! Bad input: a clear error naming file and line, the rest still processed, the bad record in
//! the dead-letter file, and an exit status that says records were rejected.

use std::process::Command;

use cdcflow::pipeline::{RunOptions, replay as run};
use cdcflow::source::Input;
use cdcflow::sql::Dataflows;

use crate::common::*;

fn check_case(name: &str, expected: &str) {
    let d = outbound();
    let dir = tempfile::tempdir().unwrap();
    let path = root().join("fixtures/bad").join(format!("{name}.jsonl"));
    let dead = dir.path().join("dead.jsonl");
    let mut opts = RunOptions::new(2);
    opts.dead_letter = Some(dead.clone());
    let out = run(&d, vec![Input::open(&path).unwrap()], &opts, None).unwrap();
    assert_eq!(out.metrics.records, 3, "{name}: every record read");
    assert_eq!(out.metrics.dead_lettered, 1, "{name}: one rejected");
    assert_eq!(out.metrics.events, 2, "{name}: the good records applied");
    let r = &out.rejected[0];
    assert_eq!(r.line, 2, "{name}");
    assert!(
        r.source.ends_with(&format!("{name}.jsonl")),
        "{name}: {}",
        r.source
    );
    assert!(
        r.error.contains(expected),
        "{name}: error `{}` should mention `{expected}`",
        r.error
    );
    let kept = std::fs::read_to_string(&dead).unwrap();
    assert_eq!(kept.lines().count(), 1);
    let rec: serde_json::Value = serde_json::from_str(kept.trim()).unwrap();
    assert_eq!(rec["line"], 2);
    assert_eq!(
        rec["record"].as_str().unwrap(),
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
    );
    assert!(rec["error"].as_str().unwrap().contains(expected));
}

#[test]
fn malformed_json_is_dead_lettered() {
    check_case("malformed_json", "malformed JSON");
}

/// A JSON syntax error names the column in the line (the file and line come with every
/// rejection), not serde's "line 1 column N" of the message alone.
#[test]
fn malformed_json_names_the_column() {
    let d = outbound();
    let line =
        r#"  {"op":"c","source":{"db":"orders","table":"orders","ts_ms":1},"after":{"id":1,}"#;
    let out = run(
        &d,
        vec![Input::from_bytes("bad.jsonl", format!("\n{line}\n"))],
        &RunOptions::new(1),
        None,
    )
    .unwrap();
    let r = &out.rejected[0];
    assert_eq!((r.source.as_str(), r.line), ("bad.jsonl", 2));
    let col = line.find(",}").unwrap() + 2;
    assert!(
        r.error
            .starts_with(&format!("malformed JSON at column {col}: ")),
        "{}",
        r.error
    );
    assert!(!r.error.contains("line 1"), "{}", r.error);
}

#[test]
fn unknown_table_is_dead_lettered() {
    check_case("unknown_table", "unknown table `orders.refunds`");
}

#[test]
fn wrong_column_type_is_dead_lettered() {
    check_case("wrong_type", "column `quantity`");
}

#[test]
fn missing_primary_key_is_dead_lettered() {
    check_case("missing_key", "column `id` is missing");
}

#[test]
fn precise_decimal_without_schema_is_dead_lettered() {
    check_case("precise_without_schema", "enable schemas");
}

#[test]
fn cli_exit_status_and_message_name_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.jsonl");
    let input = root().join("fixtures/bad/wrong_type.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_cdcflow"))
        .current_dir(root())
        .args(["replay", "--quiet", "--workers", "2", "--out"])
        .arg(&out_path)
        .arg(&input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(cdcflow::cli::EXIT_REJECTED as i32),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:2: ", input.display())),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("dead-lettered 1"), "stderr: {stderr}");
    let dead =
        std::fs::read_to_string(format!("{}.dead-letter.jsonl", out_path.display())).unwrap();
    let rec: serde_json::Value = serde_json::from_str(dead.trim()).unwrap();
    assert!(
        rec["record"].as_str().unwrap().contains("\"three\""),
        "{dead}"
    );
    // The good records still produced output.
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("courier_orders (0 documents)"), "{stdout}");
}

#[test]
fn unsupported_sql_is_refused_with_position() {
    let e = Dataflows::load(&root().join("fixtures/bad/views_unsupported")).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("shipped_orders.sql:3:"), "{msg}");
    assert!(
        msg.contains("subquery") && msg.contains("supported:"),
        "{msg}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_cdcflow"))
        .args(["check", "--views"])
        .arg(root().join("fixtures/bad/views_unsupported"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("shipped_orders.sql:3:"));
}

#[test]
fn unknown_column_in_a_view_is_refused_with_position() {
    let e = Dataflows::load(&root().join("fixtures/bad/views_unknown_column")).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("orders_by_state.sql:3:10:"), "{msg}");
    assert!(msg.contains("unknown column `o.state`"), "{msg}");
}
