//! MariaDB as the oracle: load the final source tables into a real MariaDB, run the very same
//! view files there, and compare with the engine's final documents.
//!
//! `scripts/test.sh` starts a private MariaDB and sets `CDCFLOW_TEST_MARIADB_SOCKET`. Without it
//! the test fails under CI (`CI` set) and is skipped with a note elsewhere.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use cdcflow::decode::Row;
use cdcflow::oracle;
use cdcflow::schema::ColumnType;
use cdcflow::sql::Dataflows;
use cdcflow::value::Value;
use cdcflow::workload::DecimalMode;

use crate::common::*;

/// The tests share one server and the same database names: one test uses it at a time.
static SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the shared server for the rest of a test.
pub(crate) fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    SERVER.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn socket() -> Option<String> {
    match std::env::var("CDCFLOW_TEST_MARIADB_SOCKET") {
        Ok(s) => Some(s),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CDCFLOW_TEST_MARIADB_SOCKET is not set: run scripts/test.sh")
        }
        Err(_) => {
            eprintln!("skipped: no MariaDB (run scripts/test.sh to start one)");
            None
        }
    }
}

/// The `mariadb` client on `socket`, in batch mode (tab-separated rows, no column names), with
/// its stdin, stdout and stderr piped.
pub(crate) fn client(socket: &str) -> std::process::Child {
    Command::new("mariadb")
        .args([
            "--no-defaults",
            "-uroot",
            "--batch",
            "--raw",
            "--skip-column-names",
        ])
        .arg(format!("--socket={socket}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mariadb client runs")
}

/// Runs SQL in the `mariadb` client; returns tab-separated rows.
pub(crate) fn mariadb(socket: &str, sql: &str) -> Vec<Vec<String>> {
    let mut child = client(socket);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "mariadb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

pub(crate) fn sql_literal(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Int(i) => i.to_string(),
        Value::Dec(d) => d.to_string(),
        Value::Double(x) => x.to_string(),
        Value::Text(t) => format!("'{}'", t.replace('\\', "\\\\").replace('\'', "''")),
        other => format!("'{other}'"),
    }
}

/// Recreates the databases of `catalog`, runs `schema_sql` and loads `tables` into MariaDB.
pub(crate) fn load_tables(
    socket: &str,
    catalog: &cdcflow::schema::Catalog,
    schema_sql: &str,
    tables: &oracle::Tables,
) {
    let mut setup = String::new();
    let mut dbs: Vec<&str> = catalog.tables.iter().map(|t| t.db.as_str()).collect();
    dbs.dedup();
    for db in &dbs {
        setup.push_str(&format!("DROP DATABASE IF EXISTS `{db}`;\n"));
    }
    setup.push_str(schema_sql);
    setup.push('\n');
    for (ti, rows) in tables.iter().enumerate() {
        let t = &catalog.tables[ti];
        for chunk in rows.chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|r| {
                    format!(
                        "({})",
                        r.iter()
                            .map(|v| sql_literal(&v))
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                })
                .collect();
            setup.push_str(&format!(
                "INSERT INTO {}.{} VALUES {};\n",
                t.db,
                t.name,
                values.join(",")
            ));
        }
        assert!(
            t.columns.iter().all(|c| !matches!(c.ty, ColumnType::Bytes)),
            "bytes columns are not loaded by this test"
        );
    }
    mariadb(socket, &setup);
}

/// Loads `tables` into MariaDB (after recreating the databases of `schema_sql`), runs every view
/// of `d` there and asserts MariaDB's rows equal the documents of `state`.
fn assert_mariadb_agrees(
    socket: &str,
    d: &Dataflows,
    schema_sql: &str,
    view_sql: &BTreeMap<String, String>,
    tables: &oracle::Tables,
    state: &cdcflow::sink::ViewState,
) {
    load_tables(socket, &d.catalog, schema_sql, tables);
    let checked = assert_views_match(socket, d, view_sql, |vi| {
        state
            .range((vi, String::new())..(vi + 1, String::new()))
            .map(|(_, doc): (_, &Row)| doc.iter().map(|v| v.to_string()).collect())
            .collect()
    });
    assert!(checked > 0, "nothing compared");
}

/// Runs every view of `d` (its SQL in `view_sql`) in MariaDB over the tables it has now and
/// asserts its rows equal `got(view index)`: the engine's documents, each column as MariaDB
/// prints it (`mariadb --batch --raw`), in any order. Returns the number of rows compared.
pub(crate) fn assert_views_match(
    socket: &str,
    d: &Dataflows,
    view_sql: &BTreeMap<String, String>,
    mut got: impl FnMut(usize) -> Vec<Vec<String>>,
) -> usize {
    let mut checked = 0;
    for (vi, view) in d.views.iter().enumerate() {
        let mut want = mariadb(socket, &view_sql[&view.name]);
        let mut rows = got(vi);
        want.sort();
        rows.sort();
        assert_eq!(rows, want, "view {} differs from MariaDB", view.name);
        checked += rows.len();
    }
    checked
}

pub(crate) fn views_of(dir: &std::path::Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql") && !p.ends_with("schema.sql"))
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

/// The shipped views, unchanged, in MariaDB over the final tables of generated workloads
/// (shuffled, duplicated, late) agree with the engine's final documents.
#[test]
fn shipped_views_agree_with_mariadb() {
    let Some(sock) = socket() else { return };
    let _server = exclusive();
    let d = outbound();
    let schema = std::fs::read_to_string(root().join("dataflows/schema.sql")).unwrap();
    let views = views_of(&root().join("dataflows"));
    for (orders, seed, shuffle, dups) in [(300, 1, 0, 0.0), (300, 2, 50, 0.1)] {
        let (bytes, _) = workload(orders, seed, shuffle, dups, false, DecimalMode::String);
        let events = decode_lines(&d, &bytes);
        let tables = oracle::tables_at(d.catalog.tables.len(), &events, None);
        for workers in [1, 2] {
            let out = replay(&d, bytes.clone(), workers, 0);
            assert_mariadb_agrees(&sock, &d, &schema, &views, &tables, &out.state);
        }
    }
}

/// The SQL-semantics views (LEFT JOIN with NULLs, HAVING, CASE, COALESCE, IN, BETWEEN, AVG)
/// agree with MariaDB on the hand-made scenario of `sql_semantics`.
#[test]
fn sql_semantics_views_agree_with_mariadb() {
    let Some(sock) = socket() else { return };
    let _server = exclusive();
    let (d, schema, views, bytes) = crate::sql_semantics::scenario_for_oracle();
    let events = decode_lines(&d, &bytes);
    let tables = oracle::tables_at(d.catalog.tables.len(), &events, None);
    let out = replay(&d, bytes, 2, 0);
    assert_mariadb_agrees(&sock, &d, &schema, &views, &tables, &out.state);
}
