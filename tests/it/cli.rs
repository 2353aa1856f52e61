//! The binary: golden fixture replay, `check`, `gen`.

use std::process::Command;

use cdcflow::oracle;
use cdcflow::workload::DecimalMode;

use crate::common::*;

fn cdcflow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cdcflow"));
    c.current_dir(root());
    c
}

/// The shipped fixture replays to the reviewed change log, byte for byte, with 1 and 2
/// workers; regenerate with `UPDATE_GOLDEN=1` after a deliberate change and review the diff.
#[test]
fn golden_fixture_replay() {
    let golden = root().join("fixtures/outbound.changes.jsonl");
    let dir = tempfile::tempdir().unwrap();
    for workers in ["1", "2"] {
        let out = dir.path().join(format!("changes-{workers}.jsonl"));
        let o = cdcflow()
            .args([
                "replay",
                "--quiet",
                "--workers",
                workers,
                "--allowed-lateness-ms",
                "3600000",
                "--out",
            ])
            .arg(&out)
            .arg("fixtures/outbound.jsonl")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got = std::fs::read_to_string(&out).unwrap();
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &got).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap();
        assert!(
            got == want,
            "change log with {workers} workers differs from {}",
            golden.display()
        );
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            stdout.contains("units_shipped (") && stdout.contains("warehouse_cost ("),
            "{stdout}"
        );
    }
    // And the golden file itself agrees with the hand-written dashboards.
    let d = outbound();
    let events = decode_lines(&d, &fixture("outbound.jsonl"));
    let tables = oracle::tables_at(d.catalog.tables.len(), &events, None);
    let reference = outbound_reference(&d, &tables);
    let names = cdcflow::sink::Names::of(&d.views);
    let mut docs = std::collections::BTreeMap::new();
    for line in std::fs::read_to_string(&golden).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = (
            v["view"].as_str().unwrap().to_string(),
            v["id"].as_str().unwrap().to_string(),
        );
        match v["op"].as_str().unwrap() {
            "upsert" => docs.insert(key, v["doc"].to_string()),
            _ => docs.remove(&key),
        };
    }
    let mut want = std::collections::BTreeMap::new();
    for ((vi, id), doc) in reference {
        let view = &names.views[vi].0;
        let mut s = String::new();
        names.doc_json(vi, &doc, &mut s);
        let canonical: serde_json::Value = serde_json::from_str(&s).unwrap();
        want.insert((view.clone(), id), canonical.to_string());
    }
    assert!(want.len() > 50);
    assert_eq!(docs, want);
}

#[test]
fn check_prints_every_plan() {
    let o = cdcflow().args(["check"]).output().unwrap();
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    for v in [
        "view courier_orders",
        "view units_shipped",
        "view warehouse_cost",
        "ok: 3 views",
    ] {
        assert!(s.contains(v), "{s}");
    }
}

#[test]
fn gen_is_deterministic_and_replayable() {
    let (a, sa) = workload(30, 99, 10, 0.1, true, DecimalMode::Precise);
    let (b, sb) = workload(30, 99, 10, 0.1, true, DecimalMode::Precise);
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    let (c, _) = workload(30, 100, 10, 0.1, true, DecimalMode::Precise);
    assert_ne!(a, c);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("w.jsonl");
    let o = cdcflow()
        .args([
            "gen",
            "--orders",
            "30",
            "--seed",
            "99",
            "--shuffle",
            "10",
            "--duplicates",
            "0.1",
            "--schemas",
            "on",
            "--decimal",
            "precise",
            "--out",
        ])
        .arg(&f)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(std::fs::read(&f).unwrap(), a);
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains(&format!("--allowed-lateness-ms {}", sa.max_displacement_ms))
    );
}

#[test]
fn usage_errors_exit_2() {
    let o = cdcflow().args(["replay"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = cdcflow()
        .args(["replay", "--workers", "0", "fixtures/outbound.jsonl"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--workers must be at least 1"));
}

/// timely's cluster mode: two processes on this machine, one worker each, give the same change
/// log as one process (process 0 hosts worker 0 and writes it).
#[test]
fn two_process_cluster_matches_the_golden_log() {
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", ports[0], ports[1]);
    let dir = tempfile::tempdir().unwrap();
    let spawn = |p: usize| {
        cdcflow()
            .args([
                "replay",
                "--quiet",
                "--processes",
                "2",
                "--process",
                &p.to_string(),
                "--hosts",
                &hosts,
            ])
            .args(["--allowed-lateness-ms", "3600000", "--out"])
            .arg(dir.path().join(format!("p{p}.jsonl")))
            .arg("fixtures/outbound.jsonl")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let one = spawn(1);
    let zero = spawn(0);
    let (o0, o1) = (
        zero.wait_with_output().unwrap(),
        one.wait_with_output().unwrap(),
    );
    assert!(
        o0.status.success(),
        "{}",
        String::from_utf8_lossy(&o0.stderr)
    );
    assert!(
        o1.status.success(),
        "{}",
        String::from_utf8_lossy(&o1.stderr)
    );
    let got = std::fs::read_to_string(dir.path().join("p0.jsonl")).unwrap();
    assert_eq!(
        got,
        std::fs::read_to_string(root().join("fixtures/outbound.changes.jsonl")).unwrap()
    );
    assert!(
        !dir.path().join("p1.jsonl").exists(),
        "only process 0 writes the change log"
    );
}

/// `replay --out F F` used to truncate the input it was memory-mapping (SIGBUS, and the input
/// left empty). Every output that is the same file as an input (the same path, another spelling
/// of it, a symlink or a hard link to it, a view file) is refused before anything is written.
#[test]
fn regression_output_over_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let original = fixture("outbound.jsonl");
    std::fs::write(&input, &original).unwrap();
    std::os::unix::fs::symlink(&input, dir.path().join("link.jsonl")).unwrap();
    std::fs::hard_link(&input, dir.path().join("hard.jsonl")).unwrap();
    let views = dir.path().join("views");
    std::fs::create_dir(&views).unwrap();
    for f in ["schema.sql", "units_shipped.sql"] {
        std::fs::copy(root().join("dataflows").join(f), views.join(f)).unwrap();
    }
    let refused = |args: &[&str], what: &str| {
        let o = cdcflow()
            .current_dir(dir.path())
            .args(["replay", "--quiet", "--views", "views"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?} must be refused");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("is the same file as") && err.contains(what),
            "{args:?}: {err}"
        );
        assert_eq!(
            std::fs::read(&input).unwrap(),
            original,
            "{args:?}: input intact"
        );
    };
    let abs = input.to_str().unwrap();
    refused(&["--out", "in.jsonl", "in.jsonl"], "--out");
    refused(&["--out", abs, "in.jsonl"], "--out");
    refused(&["--out", "./views/../in.jsonl", "in.jsonl"], "--out");
    refused(&["--out", "link.jsonl", "in.jsonl"], "--out");
    refused(&["--out", "hard.jsonl", "in.jsonl"], "--out");
    refused(&["--out", "new.jsonl", "new.jsonl", "in.jsonl"], "--out"); // an input not yet there
    refused(
        &["--dead-letter", "link.jsonl", "in.jsonl"],
        "--dead-letter",
    );
    refused(
        &["--out", "o.jsonl", "--dead-letter", "o.jsonl", "in.jsonl"],
        "--dead-letter",
    );
    refused(&["--out", "views/schema.sql", "in.jsonl"], "view file");
    assert!(!dir.path().join("new.jsonl").exists());
    // gen: its two outputs may not be one file either.
    let o = cdcflow()
        .current_dir(dir.path())
        .args(["gen", "--orders", "1", "--tx-metadata", "separate"])
        .args(["--tx-markers-out", "link.jsonl", "--out", "in.jsonl"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is the same file as"));
    assert_eq!(std::fs::read(&input).unwrap(), original);
    // Distinct files still work.
    let o = cdcflow()
        .current_dir(dir.path())
        .args([
            "replay",
            "--quiet",
            "--views",
            "views",
            "--allowed-lateness-ms",
            "3600000",
        ])
        .args(["--out", "changes.jsonl", "in.jsonl"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Inputs that are not regular files are read as streams: a pipe through `/dev/stdin`, `-`,
/// and a FIFO give the same change log as the file itself.
#[test]
fn replay_reads_pipes_stdin_and_fifos() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let bytes = fixture("outbound.jsonl");
    let replay_to = |out: &str, input: &str, stdin: Option<&[u8]>| {
        let mut c = cdcflow();
        c.args([
            "replay",
            "--quiet",
            "--allowed-lateness-ms",
            "3600000",
            "--out",
        ])
        .arg(dir.path().join(out))
        .arg(input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = c.spawn().unwrap();
        if let Some(b) = stdin {
            let mut w = child.stdin.take().unwrap();
            let b = b.to_vec();
            std::thread::spawn(move || w.write_all(&b));
        }
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{input}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::read(dir.path().join(out)).unwrap()
    };
    let want = std::fs::read(root().join("fixtures/outbound.changes.jsonl")).unwrap();
    assert_eq!(replay_to("stdin.jsonl", "/dev/stdin", Some(&bytes)), want);
    assert_eq!(replay_to("dash.jsonl", "-", Some(&bytes)), want);
    let fifo = dir.path().join("fifo");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let writer = {
        let (fifo, bytes) = (fifo.clone(), bytes.clone());
        std::thread::spawn(move || std::fs::write(fifo, bytes).unwrap())
    };
    assert_eq!(replay_to("fifo.jsonl", fifo.to_str().unwrap(), None), want);
    writer.join().unwrap();
}

/// `check` shows, per view, the source columns it reads (those only a pushed-down filter reads
/// included), its joins and its group key, before the plan.
#[test]
fn check_lists_columns_joins_and_group_key() {
    let o = cdcflow().args(["check"]).output().unwrap();
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    let view = s
        .split("\n\n")
        .find(|v| v.contains("view units_shipped"))
        .unwrap_or_else(|| panic!("{s}"));
    for want in [
        "  reads: warehouse.shipments s: order_id, warehouse_id, status, shipped_at\n",
        "         orders.order_items i: order_id, item_type, quantity\n",
        "  joins: join orders.order_items i on s.order_id = i.order_id\n",
        "  group key: DATE(s.shipped_at), s.warehouse_id, COLLATE_CI(i.item_type)\n",
        "  plan:\n",
    ] {
        assert!(view.contains(want), "`{want}` missing in\n{view}");
    }
    let cost = s
        .split("\n\n")
        .find(|v| v.contains("view warehouse_cost"))
        .unwrap();
    assert!(
        cost.contains("         join orders.orders o on s.order_id = o.id\n"),
        "{cost}"
    );
}

/// A view `check` refuses names its file, line and column, and nothing is printed as planned.
#[test]
fn check_refuses_a_bad_view_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("dataflows/schema.sql"),
        dir.path().join("schema.sql"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("late.sql"),
        "SELECT s.warehouse_id, COUNT(*) AS n\nFROM warehouse.shipments s\nWHERE s.shiped_at IS NOT NULL\nGROUP BY s.warehouse_id\n",
    )
    .unwrap();
    let o = cdcflow()
        .args(["check", "--views"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    let file = dir.path().join("late.sql");
    assert!(
        err.contains(&format!(
            "error: {}:3:7: unknown column `s.shiped_at`",
            file.display()
        )),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("ok:"));
    // Where there is no position, none is made up (no `:0:0:`).
    let empty = tempfile::tempdir().unwrap();
    let o = cdcflow()
        .args(["check", "--views"])
        .arg(empty.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with(&format!(
            "error: {}: cannot read: ",
            empty.path().join("schema.sql").display()
        )),
        "{err}"
    );
}

/// With stderr not a terminal, `replay --progress` prints plain progress lines there (at least
/// the one at the end, at 100%), never on stdout, which carries the change log with `--out -`;
/// without --progress, and with --quiet, there are none.
#[test]
fn replay_progress_lines_go_to_stderr_only() {
    let run = |flag: Option<&str>| {
        let mut c = cdcflow();
        c.args(["replay", "--allowed-lateness-ms", "3600000", "--out", "-"]);
        if let Some(f) = flag {
            c.arg(f);
        }
        let o = c.arg("fixtures/outbound.jsonl").output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (out, err) = run(Some("--progress"));
    for line in out.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
    }
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    let last = lines
        .last()
        .unwrap_or_else(|| panic!("no progress line:\n{err}"));
    assert!(last.starts_with("progress: 100.0% ("), "{last}");
    for part in [" records, ", " events, ", " events/s", "all times complete"] {
        assert!(last.contains(part), "`{part}` missing in {last}");
    }
    // No terminal control codes in plain lines.
    assert!(!err.contains('\u{1b}'), "{err}");
    let (_, err) = run(None);
    assert!(!err.contains("progress: "), "{err}");
    let (_, err) = run(Some("--quiet"));
    assert!(!err.contains("progress: "), "{err}");
}

/// `gen --progress` without a terminal: plain lines on stderr, ending at all orders; stdout
/// carries only the workload.
#[test]
fn gen_progress_lines_go_to_stderr_only() {
    let o = cdcflow()
        .args(["gen", "--orders", "40", "--progress", "--out", "-"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err
        .lines()
        .rfind(|l| l.starts_with("gen: "))
        .unwrap_or_else(|| panic!("no progress line:\n{err}"));
    assert!(
        last.starts_with("gen: 100.0% (40 of 40 orders), "),
        "{last}"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().all(|l| l.starts_with('{')), "{out}");
    let o = cdcflow()
        .args(["gen", "--orders", "40", "--out", "-"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&o.stderr).contains("gen: "));
}
