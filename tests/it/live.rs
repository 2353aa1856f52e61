//! Following a live MariaDB as a replica (`cdcflow run --mysql`): each test starts a private
//! MariaDB (scripts/mariadb.sh: loopback, its own port and data folder, the binlog flags the
//! source needs) and stops it when it ends, also on failure. A seeded random workload runs over
//! several concurrent connections (inserts, updates that move rows between groups, primary-key
//! changes, deletes and re-creates, rollbacks, multi-statement transactions) while the engine
//! follows with 2 workers as a child process writing JSON lines; once it has caught up with the
//! server's position, every view equals MariaDB's own result of the same view SQL. Also: a
//! SIGKILL midway, resumed from the state dir; refusals of bad settings and credentials.
//!
//! Needs Debian's MariaDB (scripts/test.sh installs it); skipped with a notice without it,
//! except under CI.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cdcflow::sink::Names;
use cdcflow::sql::Dataflows;
use cdcflow::workload::Rng;
use serde_json::value::RawValue;

use crate::common::{outbound, root};
use crate::kafka::cdcflow;
use crate::kafka_faults::{Guard, free_port, wait_until};
use crate::mariadb::{assert_views_match, views_of};

/// A private MariaDB, stopped (by its PID, through scripts/mariadb.sh) when dropped.
pub(crate) struct Server {
    dir: tempfile::TempDir,
    pub(crate) port: u16,
    pub(crate) socket: String,
    /// Serves TLS too (`CDCFLOW_MARIADB_TLS=1`: a test CA, `tls/ca.pem` in its directory).
    tls: bool,
    /// Its `server_id`.
    server_id: u32,
}

impl Server {
    /// Starts one with a replication user `repl`/`pw`; `None` (skipped) without MariaDB.
    pub(crate) fn start() -> Option<Server> {
        Server::start_with(false)
    }

    /// As [`Server::start`], serving TLS too when `tls`.
    pub(crate) fn start_with(tls: bool) -> Option<Server> {
        Server::start_opts(tls, 1)
    }

    /// As [`Server::start_with`], with `server_id`.
    pub(crate) fn start_opts(tls: bool, server_id: u32) -> Option<Server> {
        let installed = Command::new("mariadb")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "MariaDB is not installed: run scripts/test.sh"
            );
            eprintln!("skipped: MariaDB is not installed (scripts/test.sh installs it)");
            return None;
        }
        // A free port can be taken by another test's server before this one binds it: a
        // failed start is tried again on another port, in a fresh directory.
        let mut attempt = 0;
        let (mut server, out) = loop {
            attempt += 1;
            let server = Server {
                dir: tempfile::tempdir().unwrap(),
                port: free_port(),
                socket: String::new(),
                tls,
                server_id,
            };
            let out = server.script("start");
            if out.status.success() || attempt == 3 {
                break (server, out);
            }
            eprintln!(
                "scripts/mariadb.sh start failed (attempt {attempt}), trying again: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        assert!(
            out.status.success(),
            "scripts/mariadb.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server.socket = String::from_utf8(out.stdout).unwrap().trim().to_string();
        server.sql(
            "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'pw';\n\
             GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'repl'@'127.0.0.1';",
        );
        Some(server)
    }

    fn script(&self, what: &str) -> std::process::Output {
        Command::new(root().join("scripts/mariadb.sh"))
            .arg(what)
            .env("CDCFLOW_MARIADB_DIR", self.dir.path())
            .env("CDCFLOW_TEST_MARIADB_PORT", self.port.to_string())
            .env("CDCFLOW_MARIADB_TLS", if self.tls { "1" } else { "0" })
            .env("CDCFLOW_MARIADB_SERVER_ID", self.server_id.to_string())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs SQL as root; tab-separated rows.
    pub(crate) fn sql(&self, sql: &str) -> Vec<Vec<String>> {
        crate::mariadb::mariadb(&self.socket, sql)
    }

    /// The test CA that signed the server's certificate (with TLS).
    pub(crate) fn ca(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    /// `mysql://repl:pw@127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("mysql://repl:pw@127.0.0.1:{}", self.port)
    }

    /// Drops and recreates the databases of dataflows/schema.sql, empty.
    pub(crate) fn reset_schema(&self) {
        let schema = std::fs::read_to_string(root().join("dataflows/schema.sql")).unwrap();
        self.sql(&format!(
            "DROP DATABASE IF EXISTS orders; DROP DATABASE IF EXISTS warehouse; \
             DROP DATABASE IF EXISTS logistics;\n{schema}"
        ));
    }

    /// The server's binlog position (`SHOW MASTER STATUS`): file and offset.
    pub(crate) fn master_status(&self) -> (String, u64) {
        let rows = self.sql("SHOW MASTER STATUS");
        (rows[0][0].clone(), rows[0][1].parse().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let out = self.script("stop");
        if !out.status.success() {
            eprintln!(
                "scripts/mariadb.sh stop: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// `file:pos` as the engine's read-position gauge encodes it.
fn encoded(file: &str, pos: u64) -> u64 {
    let seq: u64 = file.rsplit('.').next().unwrap().parse().unwrap();
    seq << 32 | pos
}

/// One connection's share of the seeded workload, as a SQL script.
fn connection_script(
    seed: u64,
    conn: u64,
    conns: u64,
    transactions: usize,
    pause_ms: u64,
) -> String {
    let mut rng = Rng::new(seed * 1000 + conn);
    let mut sql = String::from("SET time_zone = '+00:00';\n");
    let mut created = 0u64;
    let types = ["book", "toy", "lamp", "mug", "pen"];
    // Names that differ in more than case: which spelling MariaDB shows for a group of
    // case-insensitively equal names is arbitrary (the engine shows the smallest by bytes).
    let names = ["DHL", "UPS", "FedEx", "GLS", "DPD", "Hermes"];
    let id = |c: u64, k: u64| (c + 1) * 1_000_000 + k;
    for _ in 0..transactions {
        if pause_ms > 0 {
            sql.push_str(&format!("DO SLEEP({});\n", pause_ms as f64 / 1000.0));
        }
        let ts = |rng: &mut Rng| {
            format!(
                "'2024-06-0{} {:02}:{:02}:{:02}.{:03}'",
                1 + rng.below(4),
                rng.below(24),
                rng.below(60),
                rng.below(60),
                rng.below(1000)
            )
        };
        // A target order: mostly this connection's own, sometimes another's.
        let target = |rng: &mut Rng| {
            let c = if rng.chance(0.85) {
                conn
            } else {
                rng.below(conns)
            };
            id(c, rng.below(created.max(1)))
        };
        let kind = if created < 5 { 0 } else { rng.below(100) };
        match kind {
            0..=29 => {
                let o = id(conn, created);
                created += 1;
                let status = if rng.chance(0.5) { "placed" } else { "paid" };
                sql.push_str(&format!(
                    "BEGIN;\nINSERT INTO orders.orders VALUES ({o}, {}, '{status}', {});\n",
                    rng.below(50),
                    ts(&mut rng)
                ));
                for j in 0..1 + rng.below(3) {
                    sql.push_str(&format!(
                        "INSERT INTO orders.order_items VALUES ({}, {o}, '{}', {}, {}.{:02});\n",
                        o * 10 + j,
                        types[rng.below(5) as usize],
                        rng.below(7) as i64 - 1,
                        rng.below(200),
                        rng.below(100)
                    ));
                }
                let shipped = rng.chance(0.4);
                let (status, at) = match (shipped, rng.below(2)) {
                    (true, _) => ("shipped", ts(&mut rng)),
                    (false, 0) => ("picking", "NULL".to_string()),
                    (false, _) => ("packed", "NULL".to_string()),
                };
                sql.push_str(&format!(
                    "INSERT INTO warehouse.shipments VALUES ({o}, {o}, {}, '{status}', {at});\n",
                    1 + rng.below(4)
                ));
                if shipped && rng.chance(0.7) {
                    sql.push_str(&format!(
                        "INSERT INTO logistics.deliveries VALUES ({o}, {o}, {}, {}.{:02}, {});\n",
                        1 + rng.below(5),
                        rng.below(30),
                        rng.below(100),
                        ts(&mut rng)
                    ));
                }
                sql.push_str("COMMIT;\n");
            }
            30..=49 => {
                let s = target(&mut rng);
                let at = ts(&mut rng);
                sql.push_str(&format!(
                    "BEGIN;\nUPDATE warehouse.shipments SET status = 'shipped', shipped_at = {at} \
                     WHERE id = {s};\nINSERT INTO logistics.deliveries VALUES ({s}, {s}, {}, \
                     {}.{:02}, {at}) ON DUPLICATE KEY UPDATE courier_id = VALUES(courier_id), \
                     shipping_cost = VALUES(shipping_cost), dispatched_at = VALUES(dispatched_at);\n\
                     UPDATE orders.orders SET status = 'paid' WHERE id = {s} AND status = 'placed';\n\
                     COMMIT;\n",
                    1 + rng.below(5),
                    rng.below(30),
                    rng.below(100),
                ));
            }
            50..=61 => {
                let s = target(&mut rng);
                let stmt = match rng.below(4) {
                    0 => format!(
                        "UPDATE warehouse.shipments SET warehouse_id = {}, shipped_at = {} WHERE id = {s};",
                        1 + rng.below(4),
                        ts(&mut rng)
                    ),
                    1 => format!(
                        "UPDATE orders.order_items SET item_type = '{}', quantity = {} WHERE id = {};",
                        types[rng.below(5) as usize],
                        rng.below(9),
                        s * 10 + rng.below(3)
                    ),
                    2 => format!(
                        "UPDATE logistics.deliveries SET courier_id = {}, shipping_cost = {}.{:02}, \
                         dispatched_at = {} WHERE id = {s};",
                        1 + rng.below(5),
                        rng.below(30),
                        rng.below(100),
                        ts(&mut rng)
                    ),
                    _ => format!(
                        "UPDATE orders.order_items SET order_id = {} WHERE id = {};",
                        target(&mut rng),
                        s * 10 + rng.below(3)
                    ),
                };
                sql.push_str(&stmt);
                sql.push('\n');
            }
            62..=69 => {
                let s = target(&mut rng);
                let stmt = match rng.below(4) {
                    0 => format!("UPDATE orders.orders SET status = 'cancelled' WHERE id = {s};"),
                    1 => format!("UPDATE orders.orders SET status = 'paid' WHERE id = {s};"),
                    2 => format!(
                        "UPDATE warehouse.shipments SET status = 'returned' WHERE id = {s};"
                    ),
                    _ => {
                        format!("UPDATE warehouse.shipments SET status = 'packed' WHERE id = {s};")
                    }
                };
                sql.push_str(&stmt);
                sql.push('\n');
            }
            70..=77 => {
                let s = target(&mut rng);
                let stmt = match rng.below(4) {
                    0 => format!(
                        "DELETE FROM orders.order_items WHERE id = {};",
                        s * 10 + rng.below(3)
                    ),
                    1 => format!("DELETE FROM logistics.deliveries WHERE id = {s};"),
                    2 => format!(
                        "BEGIN;\nDELETE FROM warehouse.shipments WHERE id = {s};\n\
                         DELETE FROM logistics.deliveries WHERE shipment_id = {s};\nCOMMIT;"
                    ),
                    _ => format!(
                        "BEGIN;\nDELETE FROM orders.order_items WHERE order_id = {s};\n\
                         DELETE FROM orders.orders WHERE id = {s};\nCOMMIT;"
                    ),
                };
                sql.push_str(&stmt);
                sql.push('\n');
            }
            78..=84 => {
                // Rolled back: never in the binlog, never in a view.
                let s = target(&mut rng);
                sql.push_str(&format!(
                    "BEGIN;\nINSERT INTO orders.order_items VALUES ({}, {s}, 'ghost', 1000, 999.99);\n\
                     UPDATE warehouse.shipments SET status = 'shipped', shipped_at = {} WHERE id = {s};\n\
                     UPDATE logistics.couriers SET name = 'ghost' WHERE id = 1;\nROLLBACK;\n",
                    9_000_000_000 + conn * 1_000_000 + rng.below(1_000_000),
                    ts(&mut rng)
                ));
            }
            85..=89 => {
                // A primary-key change (a delete plus an insert in the engine).
                let s = target(&mut rng);
                let j = rng.below(3);
                sql.push_str(&format!(
                    "UPDATE orders.order_items SET id = {} WHERE id = {};\n",
                    s * 10 + 5 + j,
                    s * 10 + j
                ));
            }
            90..=92 => {
                sql.push_str(&format!(
                    "UPDATE logistics.couriers SET name = '{}' WHERE id = {};\n",
                    names[rng.below(6) as usize],
                    1 + rng.below(5)
                ));
            }
            93..=96 => {
                // A multi-statement transaction that takes a while, interleaved with the
                // other connections' commits.
                let s = target(&mut rng);
                sql.push_str(&format!(
                    "BEGIN;\nUPDATE warehouse.shipments SET warehouse_id = {}, status = 'shipped', \
                     shipped_at = {} WHERE id = {s};\nDO SLEEP(0.02);\n\
                     UPDATE orders.order_items SET quantity = quantity + 1 WHERE order_id = {s};\n\
                     UPDATE logistics.deliveries SET shipping_cost = shipping_cost + 1.25 WHERE id = {s};\n\
                     COMMIT;\n",
                    1 + rng.below(4),
                    ts(&mut rng)
                ));
            }
            _ => {
                // Re-creates an order that may have been deleted.
                let s = target(&mut rng);
                sql.push_str(&format!(
                    "BEGIN;\nINSERT IGNORE INTO orders.orders VALUES ({s}, 7, 'paid', {});\n\
                     INSERT IGNORE INTO warehouse.shipments VALUES ({s}, {s}, 2, 'shipped', {});\n\
                     INSERT IGNORE INTO orders.order_items VALUES ({}, {s}, 'mug', 3, 4.50);\nCOMMIT;\n",
                    ts(&mut rng),
                    ts(&mut rng),
                    s * 10 + 2
                ));
            }
        }
    }
    sql
}

/// The couriers every workload starts with.
const COURIERS: &str =
    "INSERT INTO logistics.couriers VALUES (1,'DHL'),(2,'UPS'),(3,'FedEx'),(4,'GLS'),(5,'DPD');";

/// Runs the seeded workload over `conns` concurrent connections (`mariadb --force`: a
/// statement that fails, a duplicate key or a deadlock, is reported and the script goes on).
/// Each connection pauses `pause_ms` before each transaction. Returns the number of failed
/// statements.
pub(crate) fn run_workload(
    socket: &str,
    seed: u64,
    conns: u64,
    transactions: usize,
    pause_ms: u64,
) -> usize {
    let handles: Vec<_> = (0..conns)
        .map(|c| {
            let script = connection_script(seed, c, conns, transactions, pause_ms);
            let socket = socket.to_string();
            std::thread::spawn(move || {
                let mut child = Command::new("mariadb")
                    .args(["--no-defaults", "-uroot", "--batch", "--force"])
                    .arg(format!("--socket={socket}"))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(script.as_bytes())
                    .unwrap();
                let out = child.wait_with_output().unwrap();
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .filter(|l| l.starts_with("ERROR"))
                    .count()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}

/// One value of the engine's Prometheus text (`name{labels} value` or `name value`).
fn metric(port: u16, series: &str) -> Option<f64> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Waits until the engine has read up to the server's current position and everything it read
/// is durable in its sinks (its frontier passed the moment it got there).
fn wait_caught_up(server: &Server, engine: &mut Guard, metrics_port: u16, limit: Duration) {
    let (file, pos) = server.master_status();
    let target = encoded(&file, pos) as f64;
    let started = Instant::now();
    wait_until(
        "the engine to read up to the server's position",
        limit,
        || {
            engine.assert_running();
            metric(
                metrics_port,
                &format!(
                    "cdcflow_source_read_position{{partition=\"binlog@{}\"}}",
                    server.server_id
                ),
            )
            .is_some_and(|p| p >= target)
        },
    );
    // Every commit time read is at most now, and a late one was applied at the frontier of
    // its round, which was at most now too.
    let now = cdcflow::time::now_ms() as f64;
    wait_until(
        "the frontier to pass what was read",
        limit.saturating_sub(started.elapsed()),
        || {
            engine.assert_running();
            metric(metrics_port, "cdcflow_frontier_ms").is_some_and(|f| f > now + 1.0)
        },
    );
}

/// The final documents of a JSON-lines change log (appended to across restarts), each as its
/// columns' text the way MariaDB prints them: strings as they are, numbers as written, NULL.
pub(crate) fn log_rows(d: &Dataflows, path: &Path) -> Vec<Vec<Vec<String>>> {
    #[derive(serde::Deserialize)]
    struct Line {
        view: String,
        id: String,
        op: String,
        doc: Option<BTreeMap<String, Box<RawValue>>>,
    }
    let names = Names::of(&d.views);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut state: BTreeMap<(usize, String), Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let l: Line = serde_json::from_str(line).unwrap();
        let vi = names.views.iter().position(|(v, _)| *v == l.view).unwrap();
        if l.op != "upsert" {
            state.remove(&(vi, l.id));
            continue;
        }
        let doc = l.doc.unwrap();
        let row = names.views[vi]
            .1
            .iter()
            .map(|c| {
                let raw = doc[c].get();
                if raw.starts_with('"') {
                    serde_json::from_str::<String>(raw).unwrap()
                } else if raw == "null" {
                    "NULL".to_string()
                } else {
                    raw.to_string()
                }
            })
            .collect();
        state.insert((vi, l.id), row);
    }
    let mut out = vec![Vec::new(); d.views.len()];
    for ((vi, _), row) in state {
        out[vi].push(row);
    }
    out
}

/// Asserts every view of the change log at `out` equals MariaDB's result of its SQL.
pub(crate) fn assert_equals_mariadb(server: &Server, d: &Dataflows, out: &Path) {
    let views = views_of(&root().join("dataflows"));
    let rows = log_rows(d, out);
    let checked = assert_views_match(&server.socket, d, &views, |vi| rows[vi].clone());
    assert!(checked > 10, "only {checked} documents compared");
}

/// An engine following `server` with 2 workers from the server's current position, after the
/// schema's databases were recreated empty; its change log, stderr and dead letters in a
/// directory of its own, its metrics on a port of its own.
struct Follower {
    dir: tempfile::TempDir,
    out: PathBuf,
    port: u16,
    args: Vec<String>,
    engine: Guard,
}

impl Follower {
    fn start(server: &Server, server_id: u32, extra: &[&str]) -> Follower {
        Follower::start_as(server, &server.url(), server_id, extra)
    }

    /// As [`Follower::start`], connecting with `url`.
    fn start_as(server: &Server, url: &str, server_id: u32, extra: &[&str]) -> Follower {
        server.reset_schema();
        let (file, pos) = server.master_status();
        Follower::start_from(server, url, &format!("{file}:{pos}"), server_id, extra)
    }

    /// Follows from `start` (any `--start`), the schema left as it is.
    fn start_from(
        _server: &Server,
        url: &str,
        start: &str,
        server_id: u32,
        extra: &[&str],
    ) -> Follower {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("changes.jsonl");
        let port = free_port();
        let mut args: Vec<String> = [
            "run",
            "--views",
            root().join("dataflows").to_str().unwrap(),
            "--mysql",
            url,
            "--server-id",
            &server_id.to_string(),
            "--start",
            start,
            "--workers",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--metrics",
            &format!("127.0.0.1:{port}"),
            "--dead-letter",
            dir.path().join("dead-letter.jsonl").to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let engine = spawn(&args, &dir.path().join("stderr.log"));
        Follower {
            dir,
            out,
            port,
            args,
            engine,
        }
    }

    /// Starts the engine again (after a crash) with `--start start`.
    fn restart(&mut self, start: &str) {
        let i = self.args.iter().position(|a| a == "--start").unwrap();
        self.args[i + 1] = start.into();
        self.engine = spawn(&self.args, &self.dir.path().join("stderr.log"));
    }

    /// Starts the engine again following the server at `url` (after a failover).
    fn restart_on(&mut self, url: &str, start: &str) {
        let i = self.args.iter().position(|a| a == "--mysql").unwrap();
        self.args[i + 1] = url.into();
        self.restart(start);
    }

    fn dead_letters(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dead-letter.jsonl")).unwrap_or_default()
    }
}

fn spawn(args: &[String], log: &Path) -> Guard {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Guard::new(cdcflow(&a, log), log, "cdcflow run --mysql")
}

#[test]
fn live_replica_equals_mariadb_with_two_workers() {
    let Some(server) = Server::start() else {
        return;
    };
    let d = outbound();
    for seed in [1, 2, 3] {
        let started = Instant::now();
        let mut f = Follower::start(&server, 100 + seed as u32, &[]);
        server.sql(COURIERS);
        let failed = run_workload(&server.socket, seed, 4, 250, 0);
        wait_caught_up(&server, &mut f.engine, f.port, Duration::from_secs(30));
        assert_equals_mariadb(&server, &d, &f.out);
        f.engine.terminate(Duration::from_secs(20));
        let stderr = f.engine.log();
        assert!(!stderr.contains("ERROR"), "{stderr}");
        assert_eq!(f.dead_letters(), "", "nothing dead-lettered: {stderr}");
        eprintln!(
            "seed {seed}: equal to MariaDB after {:.1}s ({failed} statements failed in MariaDB, \
             as deadlocks and duplicate keys do)",
            started.elapsed().as_secs_f64()
        );
    }
}

/// Waits until `f` has caught up with the server, checks every view against MariaDB, stops
/// the engine and checks that its log has no error; returns the log.
fn caught_up_and_equal(server: &Server, d: &Dataflows, f: &mut Follower) -> String {
    wait_caught_up(server, &mut f.engine, f.port, Duration::from_secs(60));
    assert_equals_mariadb(server, d, &f.out);
    f.engine.terminate(Duration::from_secs(20));
    let log = f.engine.log();
    assert!(!log.contains("ERROR"), "{log}");
    log
}

/// The connection real servers ask for: TLS with a verified certificate and a user that
/// authenticates with ed25519 (MariaDB's; MySQL 8's caching_sha2_password takes the same
/// path in the client) and is refused without TLS (`REQUIRE SSL`).
#[test]
fn live_replica_over_verified_tls_with_ed25519_equals_mariadb() {
    let Some(server) = Server::start_with(true) else {
        return;
    };
    server.sql(
        "INSTALL SONAME 'auth_ed25519';\n\
         CREATE USER 'ed'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('s3cret') REQUIRE SSL;\n\
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'ed'@'127.0.0.1';",
    );
    let url = format!("mysql://ed:s3cret@127.0.0.1:{}", server.port);
    let views = root().join("dataflows");
    let ca = server.ca();
    let ca = ca.to_str().unwrap();
    let refused_with = |extra: &[&str]| -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_cdcflow"))
            .args(["run", "--views", views.to_str().unwrap(), "--mysql", &url])
            .args(["--server-id", "310", "--out", "-"])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "cdcflow run {extra:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Without TLS the server refuses the user.
    let err = refused_with(&["--mysql-ssl-mode", "disabled"]);
    assert!(
        err.contains("refused user ed") && err.contains("Access denied"),
        "{err}"
    );
    // The test CA is not among the web roots.
    let err = refused_with(&["--mysql-ssl-mode", "verify-ca"]);
    assert!(
        err.contains("TLS failed") && err.contains("UnknownIssuer"),
        "{err}"
    );
    let err = refused_with(&["--mysql-ssl-mode", "required", "--mysql-ssl-ca", ca]);
    assert!(err.contains("--mysql-ssl-ca is checked only with"), "{err}");
    // The default, preferred, takes the TLS the server offers (the user requires it) without
    // checking the certificate. Once in about ten suite runs this login was refused ("Access
    // denied", error 1045) and not reproduced in 150 direct logins: it is tried up to three
    // times, each failure printed, until the cause is known.
    let preferred = || {
        Command::new(env!("CARGO_BIN_EXE_cdcflow"))
            .args(["run", "--views", views.to_str().unwrap(), "--mysql", &url])
            .args(["--server-id", "312", "--out", "-", "--start", "end"])
            .args(["--exit-when-idle-ms", "300"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let mut out = preferred();
    for attempt in 2..=3 {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() || !err.contains("Access denied") {
            break;
        }
        eprintln!("preferred login refused, attempt {attempt} follows: {err}");
        out = preferred();
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = outbound();
    let extra = ["--mysql-ssl-mode", "verify-identity", "--mysql-ssl-ca", ca];
    let mut f = Follower::start_as(&server, &url, 311, &extra);
    server.sql(COURIERS);
    run_workload(&server.socket, 7, 3, 150, 0);
    let stderr = caught_up_and_equal(&server, &d, &mut f);
    assert_eq!(f.dead_letters(), "", "nothing dead-lettered: {stderr}");
    // The server saw TLS connections from the user (its status counts TLS accepts).
    let accepts = server.sql("SHOW GLOBAL STATUS LIKE 'Ssl_accepts'");
    assert!(accepts[0][1].parse::<u64>().unwrap() >= 2, "{accepts:?}");
}

/// `--start beginning` on a fresh server (its binlog holds the schema's whole history) and
/// `--start GTID` (MariaDB's `@slave_connect_state`: what comes after that GTID) both end
/// equal to MariaDB.
#[test]
fn live_replica_starts_at_the_beginning_or_at_a_gtid() {
    let Some(server) = Server::start() else {
        return;
    };
    let d = outbound();
    server.reset_schema();
    server.sql(COURIERS);
    run_workload(&server.socket, 11, 2, 100, 0);
    let mut f = Follower::start_from(&server, &server.url(), "beginning", 320, &[]);
    caught_up_and_equal(&server, &d, &mut f);

    server.reset_schema();
    let gtid = server.sql("SELECT @@global.gtid_binlog_pos")[0][0].clone();
    assert!(gtid.starts_with("0-1-"), "{gtid}");
    server.sql(COURIERS);
    run_workload(&server.socket, 12, 2, 100, 0);
    let mut f = Follower::start_from(&server, &server.url(), &gtid, 321, &[]);
    caught_up_and_equal(&server, &d, &mut f);
    assert_eq!(f.dead_letters(), "");
}

/// `--start snapshot` on a server whose binlog no longer holds the tables' history (RESET
/// MASTER after loading them): the rows are read from a consistent snapshot, the binlog
/// follows from its position while a workload runs, and after a restart from the state dir
/// (which resumes in the binlog, not with a new snapshot) every view equals MariaDB.
#[test]
fn live_replica_initial_snapshot_then_binlog_equals_mariadb() {
    let Some(server) = Server::start() else {
        return;
    };
    let d = outbound();
    server.reset_schema();
    server.sql(COURIERS);
    run_workload(&server.socket, 21, 3, 150, 0);
    server.sql("RESET MASTER");
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap();
    let extra = [
        "--state-dir",
        state_dir,
        "--checkpoint-interval-secs",
        "0.2",
    ];
    let mut f = Follower::start_from(&server, &server.url(), "snapshot", 330, &extra);
    run_workload(&server.socket, 22, 2, 100, 0);
    let log = caught_up_and_equal(&server, &d, &mut f);
    assert!(
        log.contains("reading a snapshot of the watched tables"),
        "{log}"
    );
    assert!(log.contains("snapshot read; following the binlog"), "{log}");
    // A restart resumes in the binlog (a second snapshot would re-insert every row).
    run_workload(&server.socket, 23, 2, 60, 0);
    f.restart("snapshot");
    let log = caught_up_and_equal(&server, &d, &mut f);
    assert!(
        log.contains("--start snapshot is ignored: the state dir has a position"),
        "{log}"
    );
    assert_eq!(f.dead_letters(), "");
}

/// A snapshot row the decoder cannot take (a zero DATETIME, which MariaDB stores without
/// NO_ZERO_DATE) stops the run naming the table and column, as a bad binlog row does; with
/// --skip-bad-events it is dead-lettered with the row as the server sent it, and counted.
#[test]
fn live_replica_snapshot_row_that_cannot_be_read_stops_or_is_dead_lettered() {
    let Some(server) = Server::start() else {
        return;
    };
    server.reset_schema();
    server.sql(
        "SET SESSION sql_mode = '';\n\
         INSERT INTO orders.orders VALUES (1, 7, 'paid', '2024-06-01 10:00:00'), \
         (2, 8, 'paid', '0000-00-00 00:00:00');",
    );
    let views = root().join("dataflows");
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.jsonl");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cdcflow"))
            .args([
                "run",
                "--views",
                views.to_str().unwrap(),
                "--mysql",
                &server.url(),
            ])
            .args(["--server-id", "340", "--out", "-", "--start", "snapshot"])
            .args([
                "--exit-when-idle-ms",
                "300",
                "--dead-letter",
                dead.to_str().unwrap(),
            ])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("snapshot of orders.orders: placed_at: zero date 0000-00-00")
            && err.contains("--skip-bad-events"),
        "{err}"
    );
    std::fs::remove_file(&dead).unwrap();
    let out = run(&["--skip-bad-events"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("dead-lettered 1"), "{err}");
    let kept = std::fs::read_to_string(&dead).unwrap();
    assert_eq!(kept.lines().count(), 1, "{kept}");
    assert!(
        kept.contains("zero date") && kept.contains("Int(2)"),
        "{kept}"
    );
}

/// Regression: a binlog event larger than the server's max_allowed_packet (16 MB by default;
/// here a 20 MB row of a table no view reads) broke the connection, which reconnected at the
/// same position for ever; the changes after it never arrived.
#[test]
fn regression_a_binlog_event_larger_than_max_allowed_packet_is_read() {
    let Some(server) = Server::start() else {
        return;
    };
    let d = outbound();
    let mut f = Follower::start(&server, 350, &[]);
    // The engine connected with the default; a session opened after raising it writes the row.
    assert_eq!(
        server.sql("SELECT @@global.max_allowed_packet")[0][0],
        "16777216",
        "the server's default"
    );
    server.sql("SET GLOBAL max_allowed_packet = 67108864;");
    server.sql(
        "CREATE DATABASE IF NOT EXISTS other;\n\
         CREATE TABLE other.blobs (id INT PRIMARY KEY, v LONGTEXT);\n\
         INSERT INTO other.blobs VALUES (1, REPEAT('x', 20000000));",
    );
    server.sql("SET GLOBAL max_allowed_packet = 16777216;");
    assert_eq!(
        server.sql("SELECT LENGTH(v) FROM other.blobs")[0][0],
        "20000000"
    );
    server.sql(COURIERS);
    run_workload(&server.socket, 31, 2, 40, 0);
    let log = caught_up_and_equal(&server, &d, &mut f);
    assert!(!log.contains("lost"), "{log}");
}

/// Regression: the stream read rotate events with or without a CRC32 by the server's
/// binlog_checksum at connect time; after `SET GLOBAL binlog_checksum = NONE` (a dynamic
/// setting) the rotate of an older, checksummed file was misread and the run stopped ("binlog
/// file `mysql-bin.000001...` has no sequence number"). Files written with and without
/// checksums are followed in one stream.
#[test]
fn regression_files_written_with_and_without_checksums_are_followed() {
    let Some(server) = Server::start() else {
        return;
    };
    let d = outbound();
    server.reset_schema();
    let (file, pos) = server.master_status();
    server.sql(COURIERS);
    run_workload(&server.socket, 41, 2, 40, 0);
    server.sql("SET GLOBAL binlog_checksum = NONE; FLUSH BINARY LOGS;");
    run_workload(&server.socket, 42, 2, 40, 0);
    server.sql("SET GLOBAL binlog_checksum = CRC32; FLUSH BINARY LOGS;");
    run_workload(&server.socket, 43, 2, 40, 0);
    server.sql("SET GLOBAL binlog_checksum = NONE;");
    let start = format!("{file}:{pos}");
    let mut f = Follower::start_from(&server, &server.url(), &start, 360, &[]);
    let log = caught_up_and_equal(&server, &d, &mut f);
    server.sql("SET GLOBAL binlog_checksum = CRC32;");
    assert_eq!(f.dead_letters(), "", "{log}");
}

/// TRUNCATE (or DROP, RENAME) of a watched table whose rows were applied removes rows
/// without row events: the run stops naming the statement and its position instead of
/// keeping rows MariaDB no longer has. A DROP before any of the table's rows is harmless.
#[test]
fn live_replica_truncate_of_a_watched_table_stops_the_run() {
    let Some(server) = Server::start() else {
        return;
    };
    let mut f = Follower::start(&server, 370, &[]);
    server.sql(
        "DROP TABLE IF EXISTS logistics.deliveries;\n\
         CREATE TABLE logistics.deliveries (id BIGINT NOT NULL PRIMARY KEY, shipment_id BIGINT \
         NOT NULL, courier_id INT NOT NULL, shipping_cost DECIMAL(10,2) NOT NULL, \
         dispatched_at DATETIME(3) NOT NULL);",
    );
    server.sql(COURIERS);
    run_workload(&server.socket, 51, 2, 30, 0);
    server.sql("TRUNCATE TABLE logistics.couriers;");
    wait_until("the engine stops", Duration::from_secs(30), || {
        f.engine.exited()
    });
    let log = f.engine.log();
    assert!(
        log.contains("`TRUNCATE TABLE logistics.couriers` removes the rows of logistics.couriers")
            && log.contains("mysql-bin.")
            && log.contains("--skip-bad-events"),
        "{log}"
    );
    assert!(
        f.dead_letters()
            .contains("TRUNCATE TABLE logistics.couriers")
    );
    // The server's binlog files, replayed with 1 and 2 workers, stop at the same statement
    // (each worker's decoder sees it).
    let saved = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(server.dir.path().join("data")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name.starts_with("mysql-bin.0") {
            std::fs::copy(&p, saved.path().join(name)).unwrap();
        }
    }
    for workers in ["1", "2"] {
        let out = Command::new(env!("CARGO_BIN_EXE_cdcflow"))
            .args([
                "replay",
                "-q",
                "--views",
                root().join("dataflows").to_str().unwrap(),
            ])
            .args(["--workers", workers, "--out", "/dev/null"])
            .arg("--dead-letter")
            .arg(saved.path().join(format!("dead-letter-{workers}.jsonl")))
            .arg(saved.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains("`TRUNCATE TABLE logistics.couriers` removes the rows"),
            "{workers} workers: {err}"
        );
    }
}

/// The same refusal after a restart: the rows of logistics.couriers are in the state dir, not
/// applied by this run's decoder (which did not know them, and let the TRUNCATE through).
#[test]
fn regression_a_truncate_after_a_restart_from_the_state_dir_stops_the_run() {
    let Some(server) = Server::start() else {
        return;
    };
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state");
    let mut f = Follower::start(&server, 371, &["--state-dir", state.to_str().unwrap()]);
    server.sql(COURIERS);
    run_workload(&server.socket, 52, 2, 30, 0);
    let d = outbound();
    caught_up_and_equal(&server, &d, &mut f);
    server.sql("TRUNCATE TABLE logistics.couriers;");
    f.restart("end");
    wait_until("the engine stops", Duration::from_secs(30), || {
        f.engine.exited()
    });
    let log = f.engine.log();
    assert!(
        log.contains("restoring from checkpoint")
            && log.contains(
                "`TRUNCATE TABLE logistics.couriers` removes the rows of logistics.couriers"
            ),
        "{log}"
    );
}

/// XA transactions are refused by name at their XA PREPARE (their rows count only at a later
/// XA COMMIT): the run stops there, or with --skip-bad-events dead-letters them and goes on,
/// and the transactions after them are not swallowed into their group (they were, and the run
/// stopped with "no XID or COMMIT").
#[test]
fn live_replica_xa_transaction_is_refused_and_the_next_ones_are_whole() {
    let Some(server) = Server::start() else {
        return;
    };
    let d = outbound();
    let mut f = Follower::start(&server, 380, &["--skip-bad-events"]);
    let (file, pos) = server.master_status();
    server.sql(COURIERS);
    server.sql(
        "XA START 'x1'; INSERT INTO logistics.couriers VALUES (9, 'XA'); XA END 'x1';\n\
         XA PREPARE 'x1'; XA ROLLBACK 'x1';",
    );
    run_workload(&server.socket, 61, 2, 40, 0);
    caught_up_and_equal(&server, &d, &mut f);
    let dead = f.dead_letters();
    assert!(dead.contains("XA transactions are not supported"), "{dead}");
    assert_eq!(dead.lines().count(), 1, "{dead}");
    let out = Command::new(env!("CARGO_BIN_EXE_cdcflow"))
        .args(["run", "--views", root().join("dataflows").to_str().unwrap()])
        .args(["--mysql", &server.url(), "--server-id", "381", "--out", "-"])
        .args([
            "--start",
            &format!("{file}:{pos}"),
            "--exit-when-idle-ms",
            "300",
        ])
        // Its dead letters in the test's directory, not the working directory's default.
        .arg("--dead-letter")
        .arg(f.dir.path().join("dead-letter-2.jsonl"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("an XA transaction (XA PREPARE)") && err.contains("mysql-bin."),
        "{err}"
    );
}

/// Kills the server side of the engine's binlog connection (its `Binlog Dump` thread).
fn kill_dump_connections(server: &Server) -> usize {
    let ids = server
        .sql("SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'");
    for id in &ids {
        server.sql(&format!("KILL {}", id[0]));
    }
    ids.len()
}

/// An engine following `server` (as [`Follower::start`]) that checkpoints every 0.2 s into a
/// state dir of its own: the directory (removed when dropped), the state dir, the follower.
fn checkpointing(server: &Server, server_id: u32) -> (tempfile::TempDir, PathBuf, Follower) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let f = Follower::start(
        server,
        server_id,
        &[
            "--state-dir",
            state.to_str().unwrap(),
            "--checkpoint-interval-secs",
            "0.2",
        ],
    );
    (dir, state, f)
}

/// Lets `f` checkpoint into `state` and go on reading and writing for a while, then crashes
/// it (SIGKILL) midway.
fn kill_after_a_checkpoint(f: &mut Follower, state: &Path) {
    wait_until("a checkpoint", Duration::from_secs(30), || {
        f.engine.assert_running();
        cdcflow::pipeline::checkpoint::read(state)
            .ok()
            .flatten()
            .is_some()
    });
    std::thread::sleep(Duration::from_millis(700));
    f.engine.kill();
}

#[test]
fn live_replica_sigkill_resumes_from_the_state_dir() {
    let Some(server) = Server::start() else {
        return;
    };
    let d = outbound();
    let (_state_dir, state, mut f) = checkpointing(&server, 200);
    server.sql(COURIERS);
    let socket = server.socket.clone();
    // Paced (4 ms before each transaction) so that it runs through both crashes.
    let workload = std::thread::spawn(move || run_workload(&socket, 7, 4, 600, 4));
    for round in 0..2 {
        kill_after_a_checkpoint(&mut f, &state);
        assert!(
            !workload.is_finished(),
            "the workload should outlast crash {round}: make it longer"
        );
        std::thread::sleep(Duration::from_millis(300));
        // The restart asks for `--start end`; the state dir's position wins.
        f.restart("end");
    }
    // And the connection is lost once: the engine reconnects by itself.
    wait_until("the binlog connection", Duration::from_secs(20), || {
        kill_dump_connections(&server) > 0
    });
    let failed = workload.join().unwrap();
    wait_caught_up(&server, &mut f.engine, f.port, Duration::from_secs(30));
    assert_equals_mariadb(&server, &d, &f.out);
    f.engine.terminate(Duration::from_secs(20));
    let stderr = f.engine.log();
    assert!(stderr.contains("restoring from checkpoint"), "{stderr}");
    assert!(
        stderr.contains("--start end is ignored: the state dir has a position"),
        "{stderr}"
    );
    assert!(stderr.contains("reconnecting in"), "{stderr}");
    for l in stderr.lines().filter(|l| {
        [
            "restoring",
            "resuming",
            "is ignored",
            "reconnecting",
            "summary",
        ]
        .iter()
        .any(|w| l.contains(w))
    }) {
        eprintln!("{l}");
    }
    eprintln!(
        "resumed twice and reconnected once; equal to MariaDB ({failed} statements failed in \
         MariaDB)"
    );
}

/// A failover: the engine follows a primary with a state dir and is killed midway; the
/// primary's replica (a real MariaDB replica by GTID, whose binlog files and offsets are its
/// own) is promoted and written to; the engine, started again against it with the same state
/// dir, resumes by the GTID position the state dir kept beside its binlog position, and every
/// view equals the new primary's own result. The old primary's files are numbered higher, so
/// only the server epoch orders the new primary's changes after those read before. Then the
/// old primary, which lacks the new primary's transactions, is refused.
#[test]
fn live_replica_failover_to_a_promoted_replica_resumes_by_gtid() {
    let Some(primary) = Server::start() else {
        return;
    };
    let replica = Server::start_opts(false, 2).expect("MariaDB is installed");
    primary.sql("FLUSH BINARY LOGS; FLUSH BINARY LOGS; FLUSH BINARY LOGS;");
    // The replica starts from the primary's current GTID position (its users exist already).
    let at = primary.sql("SELECT @@gtid_binlog_pos")[0][0].clone();
    replica.sql(&format!(
        "RESET MASTER; SET GLOBAL gtid_slave_pos = '{at}';\n\
         CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = 'repl', \
         MASTER_PASSWORD = 'pw', MASTER_USE_GTID = slave_pos;\n\
         START SLAVE;",
        primary.port
    ));
    let d = outbound();
    let (_state_dir, state, mut f) = checkpointing(&primary, 400);
    primary.sql(COURIERS);
    let socket = primary.socket.clone();
    let workload = std::thread::spawn(move || run_workload(&socket, 31, 4, 400, 4));
    kill_after_a_checkpoint(&mut f, &state);
    assert!(
        !workload.is_finished(),
        "the workload should outlast the crash: make it longer"
    );
    let failed = workload.join().unwrap();
    // The replica has received everything; it is promoted, and written to: the same
    // connections' ids, so its updates and deletes hit rows the primary wrote.
    let end = primary.sql("SELECT @@gtid_binlog_pos")[0][0].clone();
    let waited = replica.sql(&format!("SELECT MASTER_GTID_WAIT('{end}', 60)"));
    assert_eq!(waited[0][0], "0", "the replica caught up with {end}");
    replica.sql("STOP SLAVE; RESET SLAVE ALL;");
    let (file, _) = replica.master_status();
    assert!(
        file < primary.master_status().0,
        "the replica's binlog files ({file}) are numbered below the primary's"
    );
    let failed_after = run_workload(&replica.socket, 32, 4, 200, 0);
    f.restart_on(&replica.url(), "end");
    let log = caught_up_and_equal(&replica, &d, &mut f);
    assert!(
        log.contains("server with server_id 1, and 127.0.0.1")
            && log.contains("resuming by GTID at")
            && log.contains("server epoch 1"),
        "{log}"
    );
    assert!(log.contains("stale 0"), "{log}");
    eprintln!(
        "followed the failover; equal to the new primary ({failed} and {failed_after} \
         statements failed in MariaDB)"
    );
    // The old primary does not have the new primary's transactions: refused by its server.
    f.restart_on(&primary.url(), "end");
    wait_until(
        "the engine refuses the old primary",
        Duration::from_secs(30),
        || f.engine.exited(),
    );
    let log = f.engine.log();
    assert!(
        log.contains("which is not in the master's binlog")
            && log.contains("does not have that GTID position"),
        "{log}"
    );
}

/// A row event of a table whose definition on the server differs from schema.sql stops the
/// run with the binlog file and position; with --skip-bad-events it is dead-lettered.
#[test]
fn live_replica_mismatched_table_is_an_error_naming_the_position() {
    let Some(server) = Server::start() else {
        return;
    };
    for skip in [false, true] {
        let extra: &[&str] = if skip { &["--skip-bad-events"] } else { &[] };
        let mut f = Follower::start(&server, 600 + skip as u32, extra);
        server.sql(
            "ALTER TABLE logistics.couriers MODIFY name INT NOT NULL;\n\
             INSERT INTO logistics.couriers VALUES (1, 7);",
        );
        if skip {
            wait_until("the dead letter", Duration::from_secs(20), || {
                f.engine.assert_running();
                !f.dead_letters().is_empty()
            });
            f.engine.terminate(Duration::from_secs(20));
        } else {
            wait_until("the engine to stop", Duration::from_secs(20), || {
                f.engine.exited()
            });
        }
        let stderr = f.engine.log();
        let letters = f.dead_letters();
        let want = format!("127.0.0.1:{}/mysql-bin.000001", server.port);
        for text in [&letters, &stderr] {
            assert!(
                text.contains("logistics.couriers.name") && text.contains(&want),
                "{text}"
            );
        }
        assert!(letters.contains("\"pos\""), "{letters}");
    }
}

/// Runs `cdcflow run --mysql URL` expecting it to fail; returns its stderr.
fn refused(url: &str, views: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cdcflow"))
        .args(["run", "--views", views.to_str().unwrap(), "--mysql", url])
        .args(["--server-id", "300", "--out", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "cdcflow run {url} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn live_replica_refuses_bad_settings_and_credentials() {
    let Some(server) = Server::start() else {
        return;
    };
    let views = root().join("dataflows");
    let port = server.port;
    let err = refused(&format!("mysql://repl:wrong@127.0.0.1:{port}"), &views);
    assert!(
        err.contains(&format!("127.0.0.1:{port} refused user repl"))
            && err.contains("Access denied"),
        "{err}"
    );
    let closed = free_port();
    let err = refused(&format!("mysql://repl:pw@127.0.0.1:{closed}"), &views);
    assert!(
        err.contains(&format!("cannot connect to MySQL at 127.0.0.1:{closed}")),
        "{err}"
    );
    // PAM asks the client for its `dialog` plugin, which no MySQL client library but the
    // server's own has.
    server.sql(
        "INSTALL SONAME 'auth_pam';\n\
         CREATE USER 'pam'@'127.0.0.1' IDENTIFIED VIA pam;\n\
         GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'pam'@'127.0.0.1';",
    );
    let err = refused(&format!("mysql://pam:pw@127.0.0.1:{port}"), &views);
    assert!(
        err.contains("user pam authenticates with dialog, which this client does not support"),
        "{err}"
    );
    server.sql("SET GLOBAL binlog_row_metadata = MINIMAL;");
    let err = refused(&server.url(), &views);
    assert!(
        err.contains("binlog_row_metadata=MINIMAL") && err.contains("set binlog_row_metadata=FULL"),
        "{err}"
    );
    server.sql("SET GLOBAL binlog_row_metadata = FULL; SET GLOBAL binlog_format = 'STATEMENT';");
    let err = refused(&server.url(), &views);
    assert!(err.contains("set binlog_format=ROW"), "{err}");
    server.sql("SET GLOBAL binlog_format = 'ROW';");
    // A position the server does not have.
    let out = Command::new(env!("CARGO_BIN_EXE_cdcflow"))
        .args([
            "run",
            "--views",
            views.to_str().unwrap(),
            "--mysql",
            &server.url(),
        ])
        .args([
            "--server-id",
            "301",
            "--out",
            "-",
            "--start",
            "mysql-bin.000077:4",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("mysql-bin.000077") && err.contains("error 1236"),
        "{err}"
    );
}

/// Regression: a transaction committed in the same second as one already emitted (the binlog
/// has whole seconds) arrives behind the frontier of the idle binlog and is applied at it; the
/// idle frontier must then pass that time too, not only the newest commit time (it waited for
/// the next second's transaction, or the idle margin, up to 2 s).
#[test]
fn live_replica_same_second_commit_is_emitted_at_once() {
    let Some(server) = Server::start() else {
        return;
    };
    let mut f = Follower::start(&server, 500, &["--heartbeat-ms", "50"]);
    let (out, port, engine) = (&f.out, f.port, &mut f.engine);
    wait_until("the engine to follow", Duration::from_secs(20), || {
        engine.assert_running();
        metric(port, "cdcflow_frontier_ms").is_some()
    });
    // Early in a second, so that both commits fall in it.
    while cdcflow::time::now_ms() % 1000 > 100 {
        std::thread::sleep(Duration::from_millis(5));
    }
    for i in 0..2u64 {
        let wh = 200_000 + i;
        server.sql(&format!(
            "INSERT INTO orders.order_items VALUES ({i}, {i}, 'probe', 1, 1.00);\n\
             INSERT INTO warehouse.shipments VALUES ({i}, {i}, {wh}, 'shipped', '2024-06-01 10:00:00');"
        ));
        let committed = Instant::now();
        let needle = format!("\"warehouse_id\":{wh},");
        wait_until("the change", Duration::from_secs(10), || {
            engine.assert_running();
            std::fs::read_to_string(out).is_ok_and(|t| t.contains(&needle))
        });
        assert!(
            committed.elapsed() < Duration::from_millis(800),
            "commit {i} took {:?} to be emitted",
            committed.elapsed()
        );
    }
    engine.terminate(Duration::from_secs(20));
}

/// Freshness of the live path at low load: commit in MariaDB to the change in the JSON-lines
/// output, p50/p99 over 100 single-row-group transactions 150 ms apart. Run with
/// `cargo test --test it live_freshness -- --ignored --nocapture`.
#[test]
#[ignore]
fn live_freshness() {
    let Some(server) = Server::start() else {
        return;
    };
    let heartbeat = std::env::var("CDCFLOW_HEARTBEAT_MS").unwrap_or_else(|_| "200".into());
    let mut f = Follower::start(&server, 400, &["--heartbeat-ms", &heartbeat]);
    let (out, engine) = (&f.out, &mut f.engine);
    let mut client = Command::new("mariadb")
        .args([
            "--no-defaults",
            "-uroot",
            "--batch",
            "--skip-column-names",
            "--unbuffered",
        ])
        .arg(format!("--socket={}", server.socket))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let mut stdout = BufReader::new(client.stdout.take().unwrap());
    let mut seen = 0usize;
    let mut latencies = Vec::new();
    std::thread::sleep(Duration::from_secs(1));
    for i in 0..100u64 {
        let wh = 100_000 + i;
        writeln!(
            stdin,
            "BEGIN; INSERT INTO orders.order_items VALUES ({i}, {i}, 'probe', 1, 1.00); \
             INSERT INTO warehouse.shipments VALUES ({i}, {i}, {wh}, 'shipped', \
             '2024-06-01 10:00:00'); COMMIT; SELECT 'ok';"
        )
        .unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ok");
        let committed = Instant::now();
        let needle = format!("\"warehouse_id\":{wh},");
        loop {
            let text = std::fs::read_to_string(out).unwrap_or_default();
            if text[seen.min(text.len())..].contains(&needle) {
                seen = text.len();
                break;
            }
            assert!(
                committed.elapsed() < Duration::from_secs(10),
                "probe {i} never came"
            );
            engine.assert_running();
            std::thread::sleep(Duration::from_micros(500));
        }
        latencies.push(committed.elapsed());
        std::thread::sleep(Duration::from_millis(150));
    }
    drop(stdin);
    let _ = client.wait();
    engine.terminate(Duration::from_secs(20));
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    eprintln!(
        "freshness (commit in MariaDB -> change in the JSON-lines output), heartbeat {heartbeat} ms, \
         2 workers, {} transactions: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        pct(0.5),
        pct(0.99),
        latencies.last().unwrap()
    );
}

/// Regression: a shutdown that arrived while a periodic checkpoint round was starting could
/// stop one worker after that ordinary round while the other started the shutdown's round and
/// waited for it for ever (`run` never exited; about 1 run in 13 with checkpoints every 50 ms).
/// The worker that starts a round now decides whether it is the shutdown's, for all of them.
#[test]
fn regression_a_shutdown_during_a_checkpoint_round_does_not_hang() {
    let Some(server) = Server::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for i in 0..40 {
        let state = dir.path().join(format!("state-{i}"));
        let out = dir.path().join(format!("changes-{i}.jsonl"));
        let log = dir.path().join(format!("run-{i}.log"));
        let args = [
            "run",
            "--mysql",
            &server.url(),
            "--server-id",
            "4242",
            "--start",
            "end",
            "--workers",
            "2",
            "--state-dir",
            state.to_str().unwrap(),
            "--checkpoint-interval-secs",
            "0.05",
            "--exit-when-idle-ms",
            "200",
            "--out",
            out.to_str().unwrap(),
            "--log-interval",
            "0",
        ];
        let mut g = Guard::new(cdcflow(&args, &log), &log, "cdcflow run --mysql");
        g.finish(Duration::from_secs(30));
    }
}

/// Cells the binlog row decoder read wrongly or refused while it was `mysql_cdc`'s, replayed
/// from a real MariaDB's binlog and compared with MariaDB's own values: BINARY/VARBINARY bytes
/// that are not UTF-8 (the whole event was refused), BINARY(n) padding (the row image strips
/// trailing zero bytes), latin1 text that is not UTF-8 (refused), DATETIME(6)/TIMESTAMP(6)/
/// TIME(6) microseconds (cut to milliseconds), negative TIME (refused), BIT(n) (bits
/// reversed), and MEDIUMINT's most negative value (`mysql_common` does not extend its sign).
#[test]
fn regression_binlog_cells_equal_mariadb_for_bytes_latin1_microseconds_and_bits() {
    let Some(server) = Server::start() else {
        return;
    };
    let table = "CREATE TABLE types.t (\n  id INT NOT NULL,\n  b BINARY(4),\n  vb VARBINARY(8),\n  \
                 l VARCHAR(10) CHARACTER SET latin1,\n  m MEDIUMINT,\n  f FLOAT,\n  dt6 DATETIME(6),\n  \
                 ts6 TIMESTAMP(6) NULL,\n  t6 TIME(6),\n  tn TIME(3),\n  bits BIT(12),\n  \
                 PRIMARY KEY (id)\n);\n";
    let views = tempfile::tempdir().unwrap();
    std::fs::write(
        views.path().join("schema.sql"),
        format!("CREATE DATABASE types;\n{table}"),
    )
    .unwrap();
    std::fs::write(
        views.path().join("cells.sql"),
        "SELECT t.id, t.b, t.vb, t.l, t.m, t.f, t.dt6, t.ts6, t.t6, t.tn, t.bits FROM types.t t\n",
    )
    .unwrap();
    // FLOAT: shown with single-precision digits, computed with as the double it is.
    let floats = "SELECT SUM(t.f) AS s, MAX(t.f) AS mx, MIN(t.f) AS mn, COUNT(*) AS n FROM types.t t \
                  WHERE t.f > 0.1 OR t.f < 0";
    std::fs::write(views.path().join("floats.sql"), floats).unwrap();
    server.sql(&format!(
        "SET NAMES utf8mb4; SET time_zone = '+00:00'; RESET MASTER;\n\
         CREATE DATABASE types;\n{table};\n\
         INSERT INTO types.t VALUES\n\
         (1, UNHEX('FF00'), UNHEX('C328FFAA00'), 'café', -8388608, 3.4e38, '2024-06-01 12:34:56.123456',\n\
          '2024-06-01 12:34:56.654321', '-838:59:58.999999', '-12:00:00.500', b'101010101010'),\n\
         (2, 'abcd', '', 'plain', 8388607, 0.1, '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01.000001',\n\
          '00:00:00.000001', '838:59:59', b'1'),\n\
         (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),\n\
         (4, UNHEX('00'), UNHEX('00FF'), 'Ærø', -1, -1.5e-10, '2024-02-29 23:59:59.999999', NULL, '-00:00:00.000001', '00:00:01', b'0');\n\
         UPDATE types.t SET vb = UNHEX('FEFF'), dt6 = '2025-01-01 01:02:03.000009' WHERE id = 2;\n\
         DELETE FROM types.t WHERE id = 3;"
    ));
    let data = server.dir.path().join("data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("mysql-bin.0")
        })
        .collect();
    files.sort();
    let out = views.path().join("changes.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_cdcflow"))
        .args(["replay", "--quiet", "--views"])
        .arg(views.path())
        .arg("--out")
        .arg(&out)
        .args(&files)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d = Dataflows::load(views.path()).unwrap();
    let views_got = log_rows(&d, &out);
    let vi = |name: &str| d.views.iter().position(|v| v.name == name).unwrap();
    let mut got = views_got[vi("cells")].clone();
    got.sort_by_key(|r| r[0].parse::<i64>().unwrap());
    let hex = |c: &str| format!("IF({c} IS NULL, NULL, CONCAT('0x', HEX({c})))");
    let want = server.sql(&format!(
        "SET NAMES utf8mb4; SET time_zone = '+00:00';\n\
         SELECT id, {}, {}, l, m, f, dt6, ts6, t6, tn, bits + 0 FROM types.t ORDER BY id",
        hex("b"),
        hex("vb")
    ));
    assert_eq!(got, want);
    assert_eq!(got[0][1], "0xFF000000", "BINARY(4) is padded");
    let want = server.sql(&format!("{floats};"));
    assert_eq!(views_got[vi("floats")], want);
    assert_eq!(
        want[0][0], "3.3999999521443642e38",
        "MariaDB sums the doubles"
    );
}
