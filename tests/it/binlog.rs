//! The binlog source: saved binlog files from a real MariaDB (fixtures/binlog/<scenario>/, made by
//! scripts/binlog-fixture.sh) replayed with 1 and 2 workers equal MariaDB's own results of the
//! shipped views (saved next to the files); every emitted time is a commit time and the change
//! log is consistent with the oracle at every time; broken files stop the run with the file and
//! position, or are dead-lettered with --skip-bad-events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cdcflow::decode::{Decoded, Decoder};
use cdcflow::event::ChangeEvent;
use cdcflow::pipeline::{RunOptions, RunOutcome, binlog_decoder, replay_binlog};
use cdcflow::source::Source;
use cdcflow::source::binlog::{BinlogSource, open_files};
use cdcflow::sql::Dataflows;

use crate::common::*;

fn scenario_dir(name: &str) -> PathBuf {
    root().join("fixtures/binlog").join(name)
}

fn replay_dir(d: &Dataflows, dir: &Path, workers: usize, skip: bool) -> anyhow::Result<RunOutcome> {
    let files = open_files(&[dir.to_path_buf()])?;
    let mut opts = RunOptions::new(workers);
    opts.keep_log = true;
    opts.chunk_lines = 3;
    replay_binlog(d, files, skip, &opts, None)
}

/// MariaDB's saved results: view name -> sorted rows.
fn expected(dir: &Path) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir.join("expected")).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let mut rows: Vec<Vec<String>> = text
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect();
        rows.sort();
        out.insert(p.file_stem().unwrap().to_string_lossy().into_owned(), rows);
    }
    out
}

fn assert_matches(d: &Dataflows, out: &RunOutcome, want: &BTreeMap<String, Vec<Vec<String>>>) {
    assert_eq!(want.len(), d.views.len(), "one expected file per view");
    for (vi, v) in d.views.iter().enumerate() {
        let mut got: Vec<Vec<String>> = out
            .state
            .range((vi, String::new())..(vi + 1, String::new()))
            .map(|(_, doc)| doc.iter().map(|x| x.to_string()).collect())
            .collect();
        got.sort();
        assert_eq!(got, want[&v.name], "view {} differs from MariaDB", v.name);
    }
}

/// Every row change of the files, decoded in order (one worker's view of the whole stream).
fn decode_all(d: &Dataflows, dir: &Path) -> Vec<ChangeEvent> {
    let source = BinlogSource::new(open_files(&[dir.to_path_buf()]).unwrap()).unwrap();
    let mut dec: Box<dyn Decoder> = binlog_decoder(source.file_names(), false)(d.catalog.clone());
    let mut reader = source.reader(0, 1, &Default::default()).unwrap();
    let mut events = Vec::new();
    while reader.status(0) != cdcflow::source::PartitionStatus::Finished {
        reader
            .poll(100, &mut |rec| {
                if let Decoded::Events(evs) = dec.decode_at(rec.position, rec.payload).unwrap() {
                    events.extend(evs);
                }
                assert!(
                    dec.take_rejected().is_empty(),
                    "the fixture decodes cleanly"
                );
            })
            .unwrap();
    }
    events
}

/// Statement times inside transactions of outbound_cases.sql that are not commit times.
const NOT_COMMIT_TIMES: [u64; 5] = [1717236010, 1717236013, 1717236200, 1717236901, 1717236905];

#[test]
fn binlog_outbound_cases_match_mariadb() {
    let d = outbound();
    let dir = scenario_dir("outbound_cases");
    let want = expected(&dir);
    let events = decode_all(&d, &dir);
    // The rolled-back transaction is not in the binlog; the unwatched table is skipped.
    assert!(
        events
            .iter()
            .all(|e| e.key.get(0).to_string() != "3" || e.table != 0)
    );
    assert!(!events.is_empty());
    // Every row of a transaction carries its commit time.
    for e in &events {
        assert!(
            !NOT_COMMIT_TIMES.contains(&(e.time / 1000)),
            "a row at a statement time, not its commit time: {e:?}"
        );
    }
    let first_tx: Vec<&ChangeEvent> = events.iter().filter(|e| e.time == 1717236015000).collect();
    assert_eq!(
        first_tx.len(),
        4,
        "order 1's transaction: 1 order, 2 items, 1 shipment"
    );
    // A primary-key change is a delete plus an insert with the same version.
    let items = d.catalog.lookup("orders", "order_items").unwrap();
    let pk_change: Vec<&ChangeEvent> = events
        .iter()
        .filter(|e| e.table == items && e.time == 1717236600000)
        .collect();
    assert_eq!(pk_change.len(), 2);
    assert!(pk_change[0].row.is_none() && pk_change[1].row.is_some());
    assert_eq!(pk_change[0].version, pk_change[1].version);
    for workers in [1, 2] {
        let out = replay_dir(&d, &dir, workers, false).unwrap();
        assert_eq!(out.metrics.dead_lettered, 0);
        assert_matches(&d, &out, &want);
        assert_consistent(&d, &events, out.log.as_ref().unwrap());
    }
}

/// The large generated scenario (`scripts/gen-binlog-scenario.py` through
/// `scripts/binlog-fixture.sh`, over 100,000 row events, committed gzipped): every event decodes,
/// and the replay with 1 and 2 workers equals MariaDB's results of the shipped views.
#[test]
fn binlog_large_generated_matches_mariadb() {
    let d = outbound();
    let src = scenario_dir("large_generated");
    let tmp = tempfile::tempdir().unwrap();
    let mut unpacked = 0;
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".gz") {
            let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap());
            let mut out = std::fs::File::create(tmp.path().join(stem)).unwrap();
            std::io::copy(&mut gz, &mut out).unwrap();
            unpacked += 1;
        }
    }
    assert!(unpacked > 0, "no binlog files in {}", src.display());
    let want = expected(&src);
    let events = decode_all(&d, tmp.path());
    assert!(events.len() >= 100_000, "{} row changes", events.len());
    for workers in [1, 2] {
        let files = open_files(&[tmp.path().to_path_buf()]).unwrap();
        let out = replay_binlog(&d, files, false, &RunOptions::new(workers), None).unwrap();
        assert_eq!(out.metrics.dead_lettered, 0);
        assert_eq!(out.metrics.events, events.len() as u64);
        assert_matches(&d, &out, &want);
    }
}

/// A copy of the fixture's files in a fresh directory, with `edit` applied to the last file.
fn broken_copy(name: &str, edit: impl Fn(&mut Vec<u8>)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let files = open_files(&[scenario_dir("outbound_cases")]).unwrap();
    let last = files.last().unwrap().input.name.clone();
    for f in &files {
        let mut bytes = f.input.bytes().to_vec();
        if f.input.name == last {
            edit(&mut bytes);
        }
        let file_name = Path::new(&f.input.name).file_name().unwrap().to_owned();
        std::fs::write(tmp.path().join(file_name), bytes).unwrap();
    }
    let _ = name;
    tmp
}

/// Regression: a binlog file copied from a running server's datadir (the file it is still
/// writing) has the in-use flag set in its format description, whose checksum the server
/// computed with the flag clear; that event was rejected as a CRC32 mismatch, and the events
/// after it were then read as if they carried no CRC (garbage table-map metadata).
#[test]
fn regression_a_binlog_file_still_in_use_replays_equal_to_mariadb() {
    let d = outbound();
    // The format description is the first event, after the 4-byte magic; its flags are the
    // last two bytes of its 19-byte header.
    let tmp = broken_copy("in-use", |b| b[4 + 17] |= 0x01);
    let want = expected(&scenario_dir("outbound_cases"));
    for workers in [1, 2] {
        let out = replay_dir(&d, tmp.path(), workers, false).unwrap();
        assert_eq!(out.metrics.dead_lettered, 0);
        assert_matches(&d, &out, &want);
    }
    // Any other change of the format description still fails its checksum.
    let tmp = broken_copy("fde", |b| b[4 + 17] |= 0x02);
    let err = replay_dir(&d, tmp.path(), 1, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("CRC32 mismatch") && err.contains("pos 4"),
        "{err}"
    );
}

#[test]
fn binlog_crc_mismatch_stops_or_is_dead_lettered() {
    let d = outbound();
    // Flip one byte in the middle of the last file: some event's CRC32 no longer matches.
    let tmp = broken_copy("crc", |b| {
        let i = b.len() / 2;
        b[i] ^= 0x55;
    });
    let err = replay_dir(&d, tmp.path(), 1, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("CRC32 mismatch"), "{err}");
    assert!(
        err.contains("mysql-bin.000") && err.contains("pos "),
        "{err}"
    );
    assert!(err.contains("--skip-bad-events"), "{err}");
    let out = replay_dir(&d, tmp.path(), 2, true).unwrap();
    assert!(out.metrics.dead_lettered >= 1);
    assert!(
        out.rejected
            .iter()
            .all(|r| r.error.contains("CRC32 mismatch"))
    );
}

#[test]
fn binlog_truncated_file_is_an_error() {
    let d = outbound();
    // Cut the last file in the middle of an event.
    let tmp = broken_copy("truncated", |b| {
        let n = b.len() - 30;
        b.truncate(n);
    });
    let err = replay_dir(&d, tmp.path(), 1, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated file"), "{err}");
    let out = replay_dir(&d, tmp.path(), 1, true).unwrap();
    assert_eq!(out.metrics.dead_lettered, 1);
    assert!(out.rejected[0].error.contains("truncated file"));
}

#[test]
fn binlog_schema_mismatch_names_the_column() {
    // schema.sql declares a column the binlog does not have.
    let schema = std::fs::read_to_string(root().join("dataflows/schema.sql"))
        .unwrap()
        .replace(
            "name VARCHAR(64) NOT NULL",
            "name VARCHAR(64) NOT NULL,\n  phone VARCHAR(20) NULL",
        );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("schema.sql"), schema).unwrap();
    for v in ["courier_orders", "units_shipped", "warehouse_cost"] {
        std::fs::copy(
            root().join(format!("dataflows/{v}.sql")),
            tmp.path().join(format!("{v}.sql")),
        )
        .unwrap();
    }
    let d = Dataflows::load(tmp.path()).unwrap();
    let err = replay_dir(&d, &scenario_dir("outbound_cases"), 1, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("logistics.couriers.phone"), "{err}");
}

/// With a MariaDB available (scripts/test.sh), the fixture is made again from its scenario SQL
/// by scripts/binlog-fixture.sh: MariaDB's results equal the committed ones, and the new files
/// replay to them too.
#[test]
fn binlog_fixture_regenerates_live() {
    if crate::mariadb::socket().is_none() {
        return;
    }
    let d = outbound();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("outbound_cases");
    let status = std::process::Command::new(root().join("scripts/binlog-fixture.sh"))
        .arg(root().join("fixtures/binlog/scenarios/outbound_cases.sql"))
        .arg(&out_dir)
        .status()
        .unwrap();
    assert!(status.success());
    let want = expected(&scenario_dir("outbound_cases"));
    assert_eq!(expected(&out_dir), want, "MariaDB's results changed");
    let out = replay_dir(&d, &out_dir, 2, false).unwrap();
    assert_matches(&d, &out, &want);
}

/// A binlog written with binlog_row_metadata=MINIMAL (fixtures/binlog/minimal_metadata, from
/// scripts/binlog-fixture.sh) is refused, naming the server setting, the file and the position.
#[test]
fn binlog_without_full_metadata_is_refused() {
    let d = outbound();
    let err = replay_dir(&d, &scenario_dir("minimal_metadata"), 1, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("binlog_row_metadata=FULL"), "{err}");
    assert!(err.contains("mysql-bin.000002 pos "), "{err}");
    let out = replay_dir(&d, &scenario_dir("minimal_metadata"), 1, true).unwrap();
    assert_eq!(out.metrics.dead_lettered, 2, "{:?}", out.rejected);
}
