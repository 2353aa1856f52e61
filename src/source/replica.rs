//! A live MySQL/MariaDB server followed as a replica: its binlog as a [`Source`].
//!
//! Transport only, like [`super::binlog`] for saved files: the server streams binlog events
//! (`COM_BINLOG_DUMP`), this module groups them into transactions with the same rules
//! ([`Grouper`]) and yields one [`Record`] per transaction, its events' bytes exactly as they are
//! in the server's binlog file; [`crate::decode::binlog`] decodes them (checksums, table maps
//! against schema.sql, rows, one commit time per transaction), the same decoder as for files.
//!
//! - The connection ([`super::mysql_conn`], the `mysql` crate): TLS by `--mysql-ssl-mode`,
//!   the authentication plugins real servers default to (`caching_sha2_password`,
//!   `client_ed25519`, `mysql_native_password`), the dump command for MariaDB or MySQL (by
//!   file and position, or by GTID), and each event's bytes as the server sent them (the
//!   decoder needs the bytes, their checksums and positions). The few queries at start
//!   (server settings, binlog files) go over a connection of their own.
//! - Checks at start, each refused with the setting to change: binary logging on,
//!   `binlog_format=ROW`, `binlog_row_image=FULL`, `binlog_row_metadata=FULL`, no binlog
//!   compression. Connection failures name the host, port and user.
//! - One partition ([`PARTITION`]), owned by worker 0; other workers own none (their input
//!   closes: the partition set is fixed), the rows are exchanged by key in the dataflow.
//! - Positions: `file sequence << 32 | byte offset` of the transaction's first event; the read
//!   position is the end of the last transaction read, so a resume from the state dir starts
//!   after the last transaction whose changes are durable. A state dir's position wins over
//!   `--start` (said in a log line); a position the server no longer has (purged binlog) is an
//!   error.
//! - Progress: the server is asked for heartbeats (`@master_heartbeat_period`); it sends one
//!   when it had nothing to send for that long, so a heartbeat after the last transaction
//!   means caught up and quiet: the partition is idle and does not hold the frontier.
//! - A lost connection is retried in the background from the end of the last whole
//!   transaction received (a transaction cut off in the middle is read again whole), with a
//!   warning; the partition holds the frontier meanwhile. Errors of the server about the
//!   position (a purged file) or privileges stop the run.
//! - Flavour specifics (MariaDB or MySQL: which variables to check, GTID syntax and how a
//!   GTID start is sent, the session settings of the dump, how a consistent snapshot learns
//!   its position, the server's identity) are in [`Flavor`]; everything else, the connection
//!   of [`super::mysql_conn`] included, is the same code.
//! - `--start snapshot` ([`super::snapshot`]): a consistent snapshot's rows first, on this
//!   thread, in a queue of their own, then the binlog from the snapshot's position.
//! - The partition is named with the server's identity (`binlog@ID`): a state dir's file and
//!   offset are resumed only on the server they were read from. On another server (a failover)
//!   it resumes by the GTID position kept beside them ([`super::gtid`]: MariaDB), with the next
//!   server epoch, or is refused where none was kept (MySQL, older state dirs).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::binlog::{Grouper, HEADER, Step, sequence_of};
use super::gtid::{Gtid, GtidPosition, Token, Tracker};
pub use super::mysql_conn::TlsMode;
use super::mysql_conn::{DumpFrom, EventStream, Session, StreamError};
use super::snapshot::{CHUNK_ROWS, Chunk, SNAPSHOT_POSITION};
use super::{PartitionStatus, Record, Resume, Source, SourceReader};
use crate::decode::binlog::{FileNames, crc_ok, server_file};
use crate::schema::Table;

/// The name of the one partition before the server's identity is added (`binlog@ID`, the key
/// of its position in the state dir); a state dir of an older cdcflow keys it so.
pub const PARTITION: &str = "binlog";

/// The partition of the binlog of the server `identity` (MariaDB's `server_id`, MySQL's
/// `server_uuid`): a state dir's position is only resumed on the server it was read from.
pub fn partition_of(identity: &str) -> String {
    format!("{PARTITION}@{identity}")
}

/// The read position before any is known (after a GTID start, until its first transaction).
pub const UNKNOWN_POSITION: u64 = u64::MAX;

/// Events buffered between the connection thread and the reader.
const CHANNEL_EVENTS: usize = 4096;

/// Snapshot records (of [`CHUNK_ROWS`] rows) queued for the reader: a snapshot is read much
/// faster than it is applied, so its queue is short.
const SNAPSHOT_CHUNKS_QUEUED: usize = 64;

/// Where to start reading when the state dir has no position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// The oldest binlog file the server still has.
    Beginning,
    /// The server's current position (only changes from now on).
    End,
    /// A file and byte offset (`mysql-bin.000003:4`).
    Position {
        /// The binlog file name.
        file: String,
        /// The byte offset of an event in it.
        pos: u32,
    },
    /// A GTID position: MariaDB `domain-server-seq[,..]`, MySQL `uuid:interval[,..]`.
    Gtid(String),
    /// The watched tables' rows as they are now (a consistent snapshot), then the binlog from
    /// that point ([`super::snapshot`]).
    Snapshot,
}

impl std::str::FromStr for Start {
    type Err = String;

    fn from_str(s: &str) -> Result<Start, String> {
        let s = s.trim();
        match s {
            "beginning" => return Ok(Start::Beginning),
            "end" => return Ok(Start::End),
            "snapshot" => return Ok(Start::Snapshot),
            _ => {}
        }
        if is_mariadb_gtid(s) || is_mysql_gtid(s) {
            return Ok(Start::Gtid(s.to_string()));
        }
        if let Some((file, pos)) = s.rsplit_once(':')
            && !file.is_empty()
            && !file.contains(':')
        {
            let pos: u32 = pos
                .parse()
                .map_err(|_| format!("--start {s}: `{pos}` is not a byte offset"))?;
            if pos < 4 {
                return Err(format!("--start {s}: a binlog offset is at least 4"));
            }
            if sequence_of(Path::new(file)).is_none() {
                return Err(format!(
                    "--start {s}: `{file}` is not a binlog file name (BASE.NNNNNN)"
                ));
            }
            return Ok(Start::Position {
                file: file.to_string(),
                pos,
            });
        }
        Err(format!(
            "--start {s}: expected beginning, end, snapshot, FILE:POS (mysql-bin.000003:4), a \
             MariaDB GTID (0-1-42) or a MySQL GTID set (uuid:1-42)"
        ))
    }
}

impl std::fmt::Display for Start {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Start::Beginning => f.write_str("beginning"),
            Start::End => f.write_str("end"),
            Start::Position { file, pos } => write!(f, "{file}:{pos}"),
            Start::Gtid(g) => f.write_str(g),
            Start::Snapshot => f.write_str("snapshot"),
        }
    }
}

/// `domain-server-seq[,domain-server-seq..]`, all numbers.
fn is_mariadb_gtid(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|g| {
            let parts: Vec<&str> = g.trim().split('-').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// `uuid:interval[:interval..][,..]` with intervals `N` or `N-M`.
fn is_mysql_gtid(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|set| {
            let mut parts = set.trim().split(':');
            let uuid = parts.next().unwrap_or("");
            let hex = uuid.bytes().filter(|b| b.is_ascii_hexdigit()).count();
            let intervals: Vec<&str> = parts.collect();
            uuid.len() == 36
                && hex == 32
                && uuid.bytes().filter(|b| *b == b'-').count() == 4
                && !intervals.is_empty()
                && intervals.iter().all(|i| {
                    let n: Vec<&str> = i.split('-').collect();
                    (1..=2).contains(&n.len())
                        && n.iter()
                            .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
                })
        })
}

/// How to reach and follow the server.
#[derive(Clone)]
pub struct ReplicaConfig {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The replication user (`REPLICATION SLAVE, REPLICATION CLIENT, SELECT`).
    pub user: String,
    /// Its password (never logged).
    pub password: String,
    /// This replica's server id: unique among the server's replicas.
    pub server_id: u32,
    /// Where to start without a position in the state dir (`None`: the beginning).
    pub start: Option<Start>,
    /// How often the server sends a heartbeat when it has nothing else to send.
    pub heartbeat: Duration,
    /// How long to wait for the server at start.
    pub connect_timeout: Duration,
    /// TLS (`--mysql-ssl-mode`).
    pub tls: TlsMode,
    /// The CA certificate(s) for `verify-ca` / `verify-identity` (PEM; `--mysql-ssl-ca`).
    pub tls_ca: Option<PathBuf>,
}

impl std::fmt::Debug for ReplicaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("server_id", &self.server_id)
            .field("start", &self.start)
            .field("heartbeat", &self.heartbeat)
            .field("tls", &self.tls)
            .field("tls_ca", &self.tls_ca)
            .finish_non_exhaustive()
    }
}

impl ReplicaConfig {
    /// Parses `mysql://USER[:PASSWORD]@HOST[:PORT]` (user and password percent-decoded; port
    /// 3306 by default; a path, if any, is ignored). Without a password in the URL, `password`
    /// is used (from `CDCFLOW_MYSQL_PASSWORD`).
    pub fn from_url(
        url: &str,
        server_id: u32,
        password: Option<String>,
    ) -> anyhow::Result<ReplicaConfig> {
        let Some(rest) = url
            .strip_prefix("mysql://")
            .or_else(|| url.strip_prefix("mariadb://"))
        else {
            bail!("--mysql must be a URL mysql://USER:PASSWORD@HOST:PORT");
        };
        let rest = rest.split(['/', '?']).next().unwrap_or("");
        let Some((userinfo, hostport)) = rest.rsplit_once('@') else {
            bail!("--mysql needs a user: mysql://USER:PASSWORD@HOST:PORT");
        };
        let (user, pass) = match userinfo.split_once(':') {
            Some((u, p)) => (percent_decode(u)?, Some(percent_decode(p)?)),
            None => (percent_decode(userinfo)?, None),
        };
        if user.is_empty() {
            bail!("--mysql needs a user: mysql://USER:PASSWORD@HOST:PORT");
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port: u16 = p
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--mysql: `{p}` is not a port number"))?;
                (h, port)
            }
            _ => (hostport, 3306),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            bail!("--mysql needs a host: mysql://USER:PASSWORD@HOST:PORT");
        }
        let password = match pass.or(password) {
            Some(p) if !p.is_empty() => p,
            _ => bail!(
                "--mysql: user {user} has no password (in the URL or CDCFLOW_MYSQL_PASSWORD); a \
                 replication user needs one"
            ),
        };
        Ok(ReplicaConfig {
            host: host.to_string(),
            port,
            user,
            password,
            server_id,
            start: None,
            heartbeat: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(10),
            tls: TlsMode::default(),
            tls_ca: None,
        })
    }

    /// `host:port`.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn percent_decode(s: &str) -> anyhow::Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(x) = hex else {
                bail!("--mysql: bad percent-encoding in the user or password");
            };
            out.push(x);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("--mysql: the user or password is not UTF-8")
}

/// The server's flavour: what differs between MariaDB and MySQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// MariaDB (10.5 and later have `binlog_row_metadata`).
    MariaDb,
    /// Oracle MySQL (8.0.1 and later have `binlog_row_metadata`).
    MySql,
}

impl Flavor {
    /// From `SELECT VERSION()`.
    pub fn of(version: &str) -> Flavor {
        if version.to_ascii_lowercase().contains("mariadb") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        }
    }

    /// The server variables checked at start, as `(variable, required value, why)`; a `None`
    /// requirement is read, not checked.
    fn settings(self) -> &'static [(&'static str, Option<&'static str>, &'static str)] {
        const COMMON: [(&str, Option<&str>, &str); 5] = [
            (
                "log_bin",
                Some("1"),
                "binary logging must be on (start the server with log_bin)",
            ),
            ("binlog_format", Some("ROW"), "row events carry the rows"),
            (
                "binlog_row_image",
                Some("FULL"),
                "every column of a changed row is needed",
            ),
            (
                "binlog_row_metadata",
                Some("FULL"),
                "column names, ENUM strings, signedness and primary keys come from it",
            ),
            ("log_bin_basename", None, ""),
        ];
        const CHECKSUM: (&str, Option<&str>, &str) = ("binlog_checksum", None, "");
        const MARIADB: [(&str, Option<&str>, &str); 7] = [
            COMMON[0],
            COMMON[1],
            COMMON[2],
            COMMON[3],
            COMMON[4],
            CHECKSUM,
            (
                "log_bin_compress",
                Some("0"),
                "compressed row events cannot be decoded",
            ),
        ];
        const MYSQL: [(&str, Option<&str>, &str); 8] = [
            COMMON[0],
            COMMON[1],
            COMMON[2],
            COMMON[3],
            COMMON[4],
            CHECKSUM,
            (
                "binlog_transaction_compression",
                Some("0"),
                "compressed transaction payloads cannot be decoded",
            ),
            (
                "binlog_row_value_options",
                Some(""),
                "partial JSON updates cannot be decoded",
            ),
        ];
        match self {
            Flavor::MariaDb => &MARIADB,
            Flavor::MySql => &MYSQL,
        }
    }

    /// Checks a GTID start's syntax for this flavour.
    fn check_gtid(self, gtid: &str) -> anyhow::Result<()> {
        let ok = match self {
            Flavor::MariaDb => is_mariadb_gtid(gtid),
            Flavor::MySql => {
                is_mysql_gtid(gtid)
                    && gtid
                        .split(',')
                        .all(|s| s.trim().parse::<mysql_common::packets::Sid<'_>>().is_ok())
            }
        };
        if !ok {
            bail!(
                "--start {gtid} is not a {} GTID position ({})",
                self.name(),
                match self {
                    Flavor::MariaDb => "domain-server-sequence, e.g. 0-1-42",
                    Flavor::MySql =>
                        "uuid:interval, e.g. 3E11FA47-71CA-11E1-9E33-C80AA9429562:1-42",
                }
            );
        }
        Ok(())
    }

    /// The session settings before the dump command; `gtid`: a GTID start (checked).
    fn dump_session(self, gtid: Option<&str>) -> Vec<String> {
        match (self, gtid) {
            // GTID events and annotations, as a MariaDB replica gets them.
            (Flavor::MariaDb, None) => vec!["SET @mariadb_slave_capability = 4".into()],
            // MariaDB reads a GTID start from the session before a plain dump command.
            (Flavor::MariaDb, Some(g)) => vec![
                "SET @mariadb_slave_capability = 4".into(),
                format!("SET @slave_connect_state = '{g}'"),
                "SET @slave_gtid_strict_mode = 0".into(),
                "SET @slave_gtid_ignore_duplicates = 0".into(),
            ],
            // MySQL takes its GTID set in COM_BINLOG_DUMP_GTID.
            (Flavor::MySql, _) => Vec::new(),
        }
    }

    /// Opens a consistent snapshot on `s` (a transaction that sees the tables as of one
    /// binlog position) and returns that position.
    fn consistent_snapshot(
        self,
        s: &mut Session,
        config: &ReplicaConfig,
    ) -> anyhow::Result<(String, u32)> {
        let server = config.server();
        for q in [
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "SET SESSION time_zone = '+00:00'",
            // Rows wait in a bounded queue while the engine applies them.
            "SET SESSION net_write_timeout = 3600",
        ] {
            s.query(q)?;
        }
        match self {
            Flavor::MariaDb => {
                // InnoDB's consistent snapshot knows its binlog position: no lock needed.
                s.query("START TRANSACTION WITH CONSISTENT SNAPSHOT")?;
                let rows = s.query("SHOW STATUS LIKE 'binlog_snapshot_%'")?;
                let get = |name: &str| {
                    rows.iter()
                        .find(|r| {
                            r.first()
                                .cloned()
                                .flatten()
                                .is_some_and(|n| n.eq_ignore_ascii_case(name))
                        })
                        .and_then(|r| r.get(1).cloned().flatten())
                };
                match (
                    get("binlog_snapshot_file"),
                    get("binlog_snapshot_position").and_then(|p| p.parse().ok()),
                ) {
                    (Some(f), Some(p)) if !f.is_empty() => Ok((f, p)),
                    _ => bail!("MariaDB at {server} gives no binlog position for a snapshot"),
                }
            }
            Flavor::MySql => {
                // Commits wait for the moment the snapshot is opened and its position read.
                s.query("FLUSH TABLES WITH READ LOCK").map_err(|e| {
                    anyhow::anyhow!(
                        "MySQL at {server}: a snapshot needs FLUSH TABLES WITH READ LOCK ({e}): \
                         GRANT RELOAD ON *.* TO the user"
                    )
                })?;
                let opened = s
                    .query("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                    .and_then(|_| current_position(s, self, config));
                s.query("UNLOCK TABLES")?;
                opened
            }
        }
    }

    /// The GTID position of `file:pos` (a transaction boundary), where this flavour's GTID
    /// positions are tracked ([`super::gtid`]: MariaDB's); `None` for MySQL.
    fn gtid_position_at(
        self,
        s: &mut Session,
        file: &str,
        pos: u32,
    ) -> anyhow::Result<Option<GtidPosition>> {
        match self {
            Flavor::MariaDb => {
                let quoted = file.replace('\\', "\\\\").replace('\'', "''");
                let at = s
                    .scalar(&format!("SELECT BINLOG_GTID_POS('{quoted}', {pos})"))?
                    .with_context(|| format!("no GTID position is known for {file}:{pos}"))?;
                GtidPosition::parse(&at)
                    .map(Some)
                    .map_err(|e| anyhow::anyhow!("BINLOG_GTID_POS('{file}', {pos}): {e}"))
            }
            Flavor::MySql => Ok(None),
        }
    }

    /// The variable that names the server among the servers of its replication topology.
    fn identity_variable(self) -> &'static str {
        match self {
            Flavor::MariaDb => "server_id",
            Flavor::MySql => "server_uuid",
        }
    }

    /// The statements that tell the current binlog position, tried in order (MySQL 8.4
    /// removed `SHOW MASTER STATUS`).
    fn status_queries(self) -> &'static [&'static str] {
        match self {
            Flavor::MariaDb => &["SHOW MASTER STATUS"],
            Flavor::MySql => &["SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Flavor::MariaDb => "MariaDB",
            Flavor::MySql => "MySQL",
        }
    }
}

/// A live MySQL/MariaDB server as a source (see the module doc).
pub struct ReplicaSource {
    config: ReplicaConfig,
    flavor: Flavor,
    /// The binlog base name (`mysql-bin`).
    base: String,
    /// The files the server has, with their sizes.
    files: Vec<(String, u64)>,
    /// The partition's name, with the server's identity ([`partition_of`]).
    partition: String,
    /// The tables a `--start snapshot` reads.
    snapshot: Vec<Table>,
    /// The server epoch, decided when the state dir is read ([`Token`]), shared with the
    /// decoder ([`FileNames::Server`]).
    epoch: Arc<AtomicU32>,
}

impl ReplicaSource {
    /// Connects, checks the server's binlog settings and the user's privileges, and returns
    /// the source; no event is read yet.
    pub fn connect(config: ReplicaConfig) -> anyhow::Result<ReplicaSource> {
        let server = config.server();
        let mut s = Session::open(&config, None)?;
        let version = s
            .scalar("SELECT VERSION()")
            .with_context(|| format!("MySQL at {server}: cannot read the server version"))?
            .unwrap_or_default();
        let flavor = Flavor::of(&version);
        let settings = flavor.settings();
        let sql = format!(
            "SELECT {}",
            settings
                .iter()
                .map(|(v, _, _)| format!("@@global.{v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let values = s
            .query(&sql)
            .with_context(|| {
                format!(
                    "{} {version} at {server}: cannot read the binlog settings (binlog_row_metadata \
                     needs MariaDB 10.5+ or MySQL 8.0.1+)",
                    flavor.name()
                )
            })?
            .into_iter()
            .next()
            .unwrap_or_default();
        let mut base = None;
        let mut checksum = String::new();
        for (i, (var, want, why)) in settings.iter().enumerate() {
            let got = values.get(i).cloned().flatten();
            if *var == "log_bin_basename" {
                base = got
                    .as_deref()
                    .and_then(|p| Path::new(p).file_name())
                    .map(|n| n.to_string_lossy().into_owned());
                continue;
            }
            if *var == "binlog_checksum" {
                // Read for the log line; each file's format description says its own.
                checksum = got.unwrap_or_default();
                continue;
            }
            let Some(want) = want else { continue };
            let got_s = got.clone().unwrap_or_default();
            let ok = got_s.eq_ignore_ascii_case(want)
                || (*want == "1" && got_s.eq_ignore_ascii_case("ON"))
                || (*want == "0" && got_s.eq_ignore_ascii_case("OFF"));
            if !ok {
                let shown = match *want {
                    "1" => "ON",
                    "0" => "OFF",
                    "" => "''",
                    w => w,
                };
                bail!(
                    "{} at {server} has {var}={}: set {var}={shown} ({why}); e.g. SET GLOBAL \
                     {var}={shown} and in the server's configuration",
                    flavor.name(),
                    if got_s.is_empty() { "''" } else { &got_s },
                );
            }
        }
        let Some(base) = base else {
            bail!(
                "{} at {server}: binary logging is off (log_bin_basename is not set)",
                flavor.name()
            );
        };
        let files = s
            .query("SHOW BINARY LOGS")
            .map_err(|e| {
                anyhow::anyhow!(
                    "{} at {server}: user {} cannot list the binlog files ({e}): GRANT \
                     REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO the user",
                    flavor.name(),
                    config.user
                )
            })?
            .into_iter()
            .filter_map(|r| {
                let name = r.first().cloned().flatten()?;
                let size = r.get(1).cloned().flatten()?.parse().ok()?;
                Some((name, size))
            })
            .collect();
        let var = flavor.identity_variable();
        let identity = s
            .scalar(&format!("SELECT @@global.{var}"))
            .with_context(|| format!("{} at {server}: cannot read {var}", flavor.name()))?
            .unwrap_or_default();
        tracing::info!(
            server = %server,
            version = %version,
            base = %base,
            binlog_checksum = %checksum,
            identity = %identity,
            "connected to the binlog's server"
        );
        Ok(ReplicaSource {
            config,
            flavor,
            base,
            files,
            partition: partition_of(&identity),
            snapshot: Vec::new(),
            epoch: Arc::default(),
        })
    }

    /// The tables a `--start snapshot` reads (the declared tables the views need).
    pub fn set_snapshot_tables(&mut self, tables: Vec<Table>) {
        self.snapshot = tables;
    }

    /// The partition's name: the key of its position in a state dir.
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The server's flavour.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// How the decoder names this server's binlog files.
    pub fn file_names(&self) -> FileNames {
        FileNames::Server {
            server: self.config.server(),
            base: self.base.clone(),
            epoch: self.epoch.clone(),
        }
    }

    /// Where the stream starts, and the server epoch: the state dir's position (by GTID after
    /// a failover), else `--start`.
    fn start_at(&self, resume: &Resume) -> anyhow::Result<(StartAt, u32)> {
        let server = self.config.server();
        let epoch = match resumed(&self.partition, self.flavor, resume)? {
            Resumed::Position { position: p, epoch } => {
                let (seq, pos) = (p >> 32, (p & 0xffff_ffff) as u32);
                let file = server_file(&self.base, seq);
                if !self.files.iter().any(|(f, _)| *f == file) {
                    bail!(
                        "the state dir resumes at {file}:{pos}, which {server} no longer has (its \
                         binlog files: {}); the binlog was purged or this is another server: \
                         remove the state dir to rebuild the views from --start",
                        self.files
                            .iter()
                            .map(|(f, _)| f.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                if let Some(s) = &self.config.start {
                    tracing::warn!(
                        "--start {s} is ignored: the state dir has a position, resuming at \
                         {file}:{pos}"
                    );
                } else {
                    tracing::info!("resuming at {file}:{pos} (from the state dir)");
                }
                return Ok((StartAt::Known { seq, pos }, epoch));
            }
            Resumed::Gtid { at, epoch, from } => {
                let var = self.flavor.identity_variable();
                match from {
                    Some(old) => tracing::warn!(
                        "the state dir was written following the binlog of the server with {var} \
                         {old}, and {server} has {var} {}: resuming by GTID at `{at}`, the \
                         position the state dir kept (a failover: this server must be of the \
                         same replication topology and have those transactions; its changes are \
                         ordered after all changes read before, server epoch {epoch})",
                        &self.partition[PARTITION.len() + 1..],
                    ),
                    None => tracing::info!("resuming by GTID at `{at}` (from the state dir)"),
                }
                if let Some(s) = &self.config.start {
                    tracing::warn!("--start {s} is ignored: the state dir has a GTID position");
                }
                return Ok((StartAt::Given(Start::Gtid(at.to_string())), epoch));
            }
            Resumed::Fresh { epoch } => epoch,
        };
        let start = self.config.start.clone().unwrap_or(Start::Beginning);
        tracing::info!("starting at {start} (no position in the state dir)");
        match &start {
            Start::Position { file, pos } => {
                let seq = sequence_of(Path::new(file)).expect("checked when parsed");
                if server_file(&self.base, seq) != *file {
                    bail!(
                        "--start {start}: the binlog files of {server} are named {}",
                        server_file(&self.base, seq)
                    );
                }
                Ok((StartAt::Known { seq, pos: *pos }, epoch))
            }
            Start::End => {
                let (file, pos) = self.current_position()?;
                let seq = sequence_of(Path::new(&file)).with_context(|| {
                    format!("{server}: binlog file `{file}` has no sequence number")
                })?;
                Ok((StartAt::Known { seq, pos }, epoch))
            }
            _ => Ok((StartAt::Given(start), epoch)),
        }
    }

    /// The GTID position of `file:pos` where this flavour's are tracked; a failure to read it
    /// is a warning (the run goes on; its state dir cannot follow a failover).
    fn gtid_position(&self, file: &str, pos: u32) -> Option<GtidPosition> {
        if self.flavor != Flavor::MariaDb {
            return None;
        }
        let read = Session::open(&self.config, None)
            .and_then(|mut s| self.flavor.gtid_position_at(&mut s, file, pos));
        match read {
            Ok(at) => at,
            Err(e) => {
                tracing::warn!(
                    "cannot read the GTID position of {file}:{pos} on {} ({e:#}): the state dir \
                     will not be able to follow a failover to another server",
                    self.config.server()
                );
                None
            }
        }
    }

    /// The server's current binlog file and position.
    fn current_position(&self) -> anyhow::Result<(String, u32)> {
        let mut s = Session::open(&self.config, None)?;
        current_position(&mut s, self.flavor, &self.config)
    }
}

/// The server's current binlog file and position, read over `s`.
fn current_position(
    s: &mut Session,
    flavor: Flavor,
    config: &ReplicaConfig,
) -> anyhow::Result<(String, u32)> {
    let server = config.server();
    let mut last = None;
    for q in flavor.status_queries() {
        match s.query(q) {
            Ok(rows) => {
                let row = rows.into_iter().next().unwrap_or_default();
                if let (Some(Some(file)), Some(Some(pos))) = (row.first(), row.get(1))
                    && let Ok(pos) = pos.parse()
                {
                    return Ok((file.clone(), pos));
                }
                bail!("{server}: `{q}` gave no binlog position (is log_bin on?)");
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| anyhow::anyhow!("no query"))
        .context(format!(
            "{server}: cannot read the current binlog position (user {} needs REPLICATION \
             CLIENT)",
            config.user
        )))
}

/// How the state dir's saved position resumes on this server.
#[derive(Debug, PartialEq)]
enum Resumed {
    /// No binlog position saved (none yet, or one not known yet after a GTID start): as
    /// `--start` says, with the saved server epoch.
    Fresh { epoch: u32 },
    /// At a file and offset of this server.
    Position { position: u64, epoch: u32 },
    /// By GTID position: on this server (saved before a GTID start read its first
    /// transaction), or after a failover on another server (`from`: the identity of the server
    /// the state dir was read from), whose changes get the next server epoch.
    Gtid {
        at: GtidPosition,
        epoch: u32,
        from: Option<String>,
    },
}

/// Reads the state dir's position for the binlog of the server whose partition is
/// `partition` ([`partition_of`]): its own position, else (a failover) the GTID position kept
/// for another server's, else an older cdcflow's position without the server's identity.
fn resumed(partition: &str, flavor: Flavor, resume: &Resume) -> anyhow::Result<Resumed> {
    let prefix = format!("{PARTITION}@");
    let other = resume
        .positions
        .keys()
        .find(|k| k.starts_with(&prefix) && *k != partition);
    let (key, failover) = if resume.positions.contains_key(partition) {
        (partition, false)
    } else if let Some(other) = other {
        (other.as_str(), true)
    } else if resume.positions.contains_key(PARTITION) {
        tracing::warn!(
            "the state dir does not say which server it was written for (an older cdcflow): \
             resuming as if it were this one"
        );
        (PARTITION, false)
    } else {
        if let Some(other) = resume.positions.keys().next() {
            bail!(
                "the state dir was written for another source (it has a position for `{other}`, \
                 not for a MySQL binlog): give this run a state dir of its own"
            );
        }
        return Ok(Resumed::Fresh { epoch: 0 });
    };
    let position = resume.positions[key];
    if position == SNAPSHOT_POSITION {
        bail!(
            "the state dir was written during an initial snapshot that did not finish (a \
             restart cannot retract rows deleted since): remove the state dir and start again"
        );
    }
    let token = match resume.tokens.get(key) {
        Some(t) => Token::decode(t).map_err(|e| anyhow::anyhow!("the state dir: {e}"))?,
        None => Token::default(),
    };
    if failover {
        let var = flavor.identity_variable();
        let Some(at) = token.gtid else {
            bail!(
                "the state dir was written following the binlog of the server with {var} {}, \
                 and this server has {var} {}: binlog positions of one server mean nothing on \
                 another, and the state dir kept no GTID position to resume by (`run` keeps one for \
                 MariaDB only; `capture` and an older cdcflow keep none): remove the state dir to rebuild the views \
                 from --start, or point --mysql at the server it was written for",
                &key[prefix.len()..],
                &partition[prefix.len()..],
            );
        };
        let epoch = token
            .epoch
            .checked_add(1)
            .context("too many changes of server")?;
        return Ok(Resumed::Gtid {
            at,
            epoch,
            from: Some(key[prefix.len()..].to_string()),
        });
    }
    Ok(match (position, token.gtid) {
        (UNKNOWN_POSITION, Some(at)) => Resumed::Gtid {
            at,
            epoch: token.epoch,
            from: None,
        },
        (UNKNOWN_POSITION, None) => Resumed::Fresh { epoch: token.epoch },
        (position, _) => Resumed::Position {
            position,
            epoch: token.epoch,
        },
    })
}

/// Where a stream (re)starts.
#[derive(Clone, Debug)]
enum StartAt {
    /// A file sequence and offset on this server.
    Known { seq: u64, pos: u32 },
    /// As the user asked, before any position is known.
    Given(Start),
}

impl Source for ReplicaSource {
    fn reader(
        &self,
        worker: usize,
        _workers: usize,
        resume: &Resume,
    ) -> anyhow::Result<Box<dyn SourceReader>> {
        if worker != 0 {
            return Ok(Box::new(NoPartition));
        }
        let (start, epoch) = self.start_at(resume)?;
        // Before the first record: the decoder puts it into every version.
        self.epoch.store(epoch, Ordering::Release);
        let (tx, rx) = sync_channel(CHANNEL_EVENTS);
        let mut stream = Stream {
            config: self.config.clone(),
            flavor: self.flavor,
            base: self.base.clone(),
            tx,
            restart: start.clone(),
            seq: None,
            grouper: Grouper::default(),
            pending: Vec::new(),
            pending_start: 0,
            pending_gtid: None,
        };
        let server = self.config.server();
        let mut snapshot = None;
        // The GTID position where reading starts, for the checkpoints' tokens.
        let mut gtid_start = match &start {
            StartAt::Given(Start::Gtid(g)) if self.flavor == Flavor::MariaDb => {
                GtidPosition::parse(g).ok()
            }
            _ => None,
        };
        let first = if let StartAt::Given(Start::Snapshot) = start {
            // The snapshot is opened here, so that its errors stop the start; its rows are
            // read on the thread, then the binlog from the snapshot's position.
            let mut session = Session::open(&self.config, None)?;
            let (file, pos) = self
                .flavor
                .consistent_snapshot(&mut session, &self.config)
                .with_context(|| format!("cannot open a snapshot on {server}"))?;
            let seq = sequence_of(Path::new(&file)).with_context(|| {
                format!("{server}: binlog file `{file}` has no sequence number")
            })?;
            let time = session
                .scalar("SELECT UNIX_TIMESTAMP()")?
                .and_then(|t| t.parse::<u64>().ok())
                .context("cannot read the server's time")?
                * 1000;
            stream.restart = StartAt::Known { seq, pos };
            gtid_start = self.gtid_position(&file, pos);
            let (chunks, received) = sync_channel(SNAPSHOT_CHUNKS_QUEUED);
            snapshot = Some(received);
            tracing::info!(
                server = %server,
                at = %format!("{file}:{pos}"),
                tables = self.snapshot.len(),
                "reading a snapshot of the watched tables, then the binlog from its position"
            );
            let tables = self.snapshot.clone();
            std::thread::Builder::new()
                .name("cdcflow-binlog".into())
                .spawn(move || {
                    match stream.snapshot(session, &tables, seq, pos, time, &chunks) {
                        Ok(()) => {
                            // The reader turns to the binlog once this queue is closed.
                            drop(chunks);
                            stream.run(None)
                        }
                        Err(Ended::Fatal(e)) => {
                            let _ = chunks.send(Msg::Fatal(e));
                        }
                        Err(_) => {}
                    }
                })
                .context("cannot start the binlog thread")?;
            SNAPSHOT_POSITION
        } else {
            // The first connection is made here, so that its errors (a purged file, missing
            // privileges) stop the start with a clear message.
            let mut events = stream.open(&start)?;
            let first = stream
                .position_stream(&mut events)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if let StartAt::Known { seq, pos } = stream.restart {
                gtid_start = self.gtid_position(&server_file(&self.base, seq), pos);
            }
            tracing::info!(
                server = %server,
                server_id = self.config.server_id,
                at = %stream.describe_position(),
                "following the binlog"
            );
            std::thread::Builder::new()
                .name("cdcflow-binlog".into())
                .spawn(move || stream.run(Some(events)))
                .context("cannot start the binlog thread")?;
            first
        };
        Ok(Box::new(ReplicaReader {
            partition: self.partition.clone(),
            epoch,
            gtids: gtid_start.map(Tracker::new),
            snapshot,
            rx,
            next: first,
            idle: false,
            server,
            base: self.base.clone(),
        }))
    }

    fn partitions_fixed(&self) -> bool {
        true
    }
}

/// What the connection thread hands the reader.
enum Msg {
    /// A transaction (or a control event) at `position`; the stream goes on at `end` (once
    /// known).
    Record {
        position: u64,
        end: Option<u64>,
        bytes: Vec<u8>,
        /// The transaction's GTID (MariaDB).
        gtid: Option<Gtid>,
    },
    /// The server had nothing to send for a heartbeat period.
    Heartbeat,
    /// The connection was lost; the thread reconnects.
    Lost(String),
    /// The stream cannot go on.
    Fatal(String),
}

/// How a stream ended.
enum Ended {
    /// The reader is gone.
    Closed,
    /// The connection broke: reconnect.
    Lost(String),
    /// The server refused (a purged file, privileges): stop.
    Fatal(String),
}

/// The connection thread's state: the event stream of one server, framed into transactions.
struct Stream {
    config: ReplicaConfig,
    flavor: Flavor,
    base: String,
    tx: SyncSender<Msg>,
    /// Where a new connection starts: the end of the last whole transaction sent.
    restart: StartAt,
    /// The current binlog file's sequence number (known after the first rotate event).
    seq: Option<u64>,
    grouper: Grouper,
    /// The events of the transaction being framed.
    pending: Vec<u8>,
    /// The byte offset of its first event.
    pending_start: u32,
    /// Its GTID (MariaDB's GTID event).
    pending_gtid: Option<Gtid>,
}

const ROTATE: u8 = 4;
const HEARTBEAT: u8 = 27;
const HEARTBEAT_V2: u8 = 41;

impl Stream {
    /// Connects and sends the dump command for `start`.
    fn open(&mut self, start: &StartAt) -> anyhow::Result<EventStream> {
        let server = self.config.server();
        // A connection that stays silent for several heartbeat periods is dead.
        let silent = self.config.heartbeat * 4 + Duration::from_secs(30);
        let mut session = Session::open(&self.config, Some(silent))?;
        let end;
        let file;
        let mut gtid = None;
        let from = match start {
            StartAt::Known { seq, pos } => {
                file = server_file(&self.base, *seq);
                DumpFrom::Position {
                    file: &file,
                    pos: *pos,
                }
            }
            StartAt::Given(Start::Beginning) => DumpFrom::Position { file: "", pos: 4 },
            StartAt::Given(Start::End) => {
                end = current_position(&mut session, self.flavor, &self.config)?;
                DumpFrom::Position {
                    file: &end.0,
                    pos: end.1,
                }
            }
            StartAt::Given(Start::Position { file, pos }) => DumpFrom::Position { file, pos: *pos },
            StartAt::Given(Start::Gtid(g)) => {
                // Empty: a GTID position kept before any transaction had a GTID.
                if !g.is_empty() {
                    self.flavor.check_gtid(g)?;
                }
                gtid = Some(g.as_str());
                match self.flavor {
                    // The session's @slave_connect_state says where.
                    Flavor::MariaDb => DumpFrom::Position { file: "", pos: 4 },
                    Flavor::MySql => DumpFrom::GtidSet(g),
                }
            }
            StartAt::Given(Start::Snapshot) => {
                bail!("the binlog stream starts after the snapshot, at its position")
            }
        };
        let tls = session.tls;
        let settings = self.flavor.dump_session(gtid);
        let events = session
            .binlog(
                &settings,
                self.config.server_id,
                from,
                self.config.heartbeat,
            )
            .map_err(|e| {
                anyhow::anyhow!(
                    "MySQL at {server}: cannot start the binlog stream as user {}: {e:#}",
                    self.config.user
                )
            })?;
        tracing::debug!(server = %server, tls, "binlog connection open");
        Ok(events)
    }

    /// Reads until the stream's file is known (the server's first event is a rotate naming
    /// it); returns the position reading starts at.
    fn position_stream(&mut self, events: &mut EventStream) -> Result<u64, String> {
        let started = Instant::now();
        while self.seq.is_none() {
            if started.elapsed() > self.config.connect_timeout {
                return Err(format!(
                    "MySQL at {}: the binlog stream did not start within {:?}",
                    self.config.server(),
                    self.config.connect_timeout
                ));
            }
            match self.next_event(events) {
                Ok(ev) => match self.handle(&ev) {
                    Ok(()) => {}
                    Err(Ended::Closed) => return Err("closed".into()),
                    Err(Ended::Lost(e) | Ended::Fatal(e)) => return Err(e),
                },
                Err(Ended::Closed) => return Err("closed".into()),
                Err(Ended::Lost(e) | Ended::Fatal(e)) => return Err(e),
            }
        }
        Ok(self.position())
    }

    /// The read position: where the transaction being framed starts (or would start);
    /// [`UNKNOWN_POSITION`] after a GTID start until its first transaction.
    fn position(&self) -> u64 {
        match &self.restart {
            StartAt::Known { seq, pos } => seq << 32 | *pos as u64,
            StartAt::Given(_) => UNKNOWN_POSITION,
        }
    }

    /// The thread: pumps events, reconnecting when the connection is lost.
    fn run(mut self, first: Option<EventStream>) {
        let mut events = first;
        let mut backoff = Duration::from_millis(200);
        loop {
            let ended = match events.take() {
                Some(mut ev) => self.pump(&mut ev),
                None => {
                    let start = self.restart.clone();
                    match self.open(&start) {
                        Ok(mut ev) => {
                            backoff = Duration::from_millis(200);
                            match self.position_stream(&mut ev) {
                                Ok(_) => self.pump(&mut ev),
                                Err(e) => Ended::Lost(e),
                            }
                        }
                        Err(e) => Ended::Lost(format!("{e:#}")),
                    }
                }
            };
            match ended {
                Ended::Closed => return,
                Ended::Fatal(e) => {
                    let _ = self.tx.send(Msg::Fatal(e));
                    return;
                }
                Ended::Lost(e) => {
                    // A transaction cut off is read again whole after the reconnect.
                    self.drop_pending();
                    self.seq = None;
                    let at = self.describe_position();
                    let msg = format!(
                        "binlog stream from {} lost ({e}); reconnecting in {backoff:?} at {at}",
                        self.config.server()
                    );
                    if self.tx.send(Msg::Lost(msg)).is_err() {
                        return;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Reads the snapshot's rows (`session` holds its transaction) and sends them in chunks;
    /// the last chunk ends at the snapshot's position `seq`/`pos`, where the binlog goes on.
    fn snapshot(
        &mut self,
        mut session: Session,
        tables: &[Table],
        seq: u64,
        pos: u32,
        time: u64,
        queue: &SyncSender<Msg>,
    ) -> Result<(), Ended> {
        let server = self.config.server();
        let started = Instant::now();
        let mut total = 0u64;
        let mut pending: Option<Chunk> = None;
        let chunk = |table: String| Chunk {
            table,
            time,
            seq,
            pos: pos as u64,
            rows: Vec::with_capacity(CHUNK_ROWS),
            rejected: Vec::new(),
        };
        for table in tables {
            let mut current = chunk(table.qualified());
            let mut sent = Ok(());
            let read = session.rows(&super::snapshot::select(table), |values| {
                match super::snapshot::row(&values, table) {
                    Ok(row) => current.rows.push(row),
                    // The row as the server sent it, kept with the dead letter.
                    Err(e) => current.rejected.push((e, format!("{values:?}"))),
                }
                total += 1;
                if current.rows.len() + current.rejected.len() == CHUNK_ROWS {
                    let full = std::mem::replace(&mut current, chunk(table.qualified()));
                    if let Some(prev) = pending.replace(full) {
                        sent = send_chunk(queue, prev, None);
                        if sent.is_err() {
                            return Err("closed".into());
                        }
                    }
                }
                Ok(())
            });
            sent?;
            read.map_err(|e| {
                Ended::Fatal(format!(
                    "the snapshot of {} from {server} failed: {e}",
                    table.qualified()
                ))
            })?;
            if !(current.rows.is_empty() && current.rejected.is_empty())
                && let Some(prev) = pending.replace(current)
            {
                send_chunk(queue, prev, None)?;
            }
        }
        drop(session);
        let end = seq << 32 | pos as u64;
        // Without rows the last record is empty: it only says where the binlog goes on.
        let last = pending.unwrap_or_else(|| chunk(String::new()));
        send_chunk(queue, last, Some(end))?;
        tracing::info!(
            rows = total,
            tables = tables.len(),
            secs = started.elapsed().as_secs_f64(),
            "snapshot read; following the binlog from {}:{pos}",
            server_file(&self.base, seq)
        );
        Ok(())
    }

    fn pump(&mut self, events: &mut EventStream) -> Ended {
        loop {
            let ev = match self.next_event(events) {
                Ok(ev) => ev,
                Err(e) => return e,
            };
            if let Err(e) = self.handle(&ev) {
                return e;
            }
        }
    }

    /// Reads the next event.
    fn next_event(&mut self, events: &mut EventStream) -> Result<Vec<u8>, Ended> {
        let server = self.config.server();
        match events.next_event() {
            Ok(ev) => Ok(ev),
            Err(StreamError::Lost(e)) => Err(Ended::Lost(e)),
            Err(StreamError::Invalid(e)) => Err(Ended::Fatal(format!(
                "MySQL at {server}: cannot read the binlog event after {}: {e}",
                self.describe_position()
            ))),
            Err(StreamError::Server { code, message }) => {
                let msg = format!(
                    "MySQL at {server} ended the binlog stream at {}: {message} (error {code})",
                    self.describe_position(),
                );
                // 1236: the position cannot be read (purged file, bad offset); 1227/1045:
                // privileges. Others (server shutdown, a killed connection) are retried.
                if matches!(code, 1236 | 1227 | 1045 | 1044 | 1142) {
                    Err(Ended::Fatal(if code == 1236 && self.gtid_pending() {
                        format!(
                            "{msg}: this server's binlog does not have that GTID position (it \
                             was purged, or this server is not a replica that received \
                             everything the position covers)"
                        )
                    } else if code == 1227 {
                        format!(
                            "{msg}: GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO \
                             the user"
                        )
                    } else {
                        msg
                    }))
                } else {
                    Err(Ended::Lost(msg))
                }
            }
        }
    }

    fn describe_position(&self) -> String {
        match &self.restart {
            StartAt::Known { seq, pos } => format!("{}:{pos}", server_file(&self.base, *seq)),
            StartAt::Given(s) => s.to_string(),
        }
    }

    fn send(&self, msg: Msg) -> Result<(), Ended> {
        self.tx.send(msg).map_err(|_| Ended::Closed)
    }

    /// Frames one event; sends what is complete.
    fn handle(&mut self, ev: &[u8]) -> Result<(), Ended> {
        if ev.len() < HEADER {
            return Err(Ended::Fatal(format!(
                "MySQL at {}: an event of {} bytes in the binlog stream at {}",
                self.config.server(),
                ev.len(),
                self.describe_position()
            )));
        }
        let t = ev[4];
        let len = u32::from_le_bytes([ev[9], ev[10], ev[11], ev[12]]) as usize;
        let log_pos = u32::from_le_bytes([ev[13], ev[14], ev[15], ev[16]]);
        if len != ev.len() {
            return Err(Ended::Fatal(format!(
                "MySQL at {}: an event in the binlog stream at {} says it has {len} bytes but has \
                 {}",
                self.config.server(),
                self.describe_position(),
                ev.len()
            )));
        }
        tracing::trace!(
            event_type = t,
            len,
            log_pos,
            flags = u16::from_le_bytes([ev[17], ev[18]]),
            "binlog event"
        );
        match t {
            HEARTBEAT | HEARTBEAT_V2 => return self.send(Msg::Heartbeat),
            ROTATE => return self.rotate(ev),
            _ => {}
        }
        let Some(seq) = self.seq else {
            // Before the first rotate nothing can be placed; servers send it first.
            return Ok(());
        };
        // Artificial events (log_pos 0: a format description resent at the start of a
        // stream, a GTID list) sit at the current read position.
        let start = if log_pos == 0 {
            None
        } else {
            Some(log_pos.saturating_sub(len as u32))
        };
        match self.grouper.push(ev) {
            Step::Control => {
                if log_pos != 0 && !self.gtid_pending() {
                    self.restart = StartAt::Known { seq, pos: log_pos };
                }
                let end = self.known_position();
                let position = match start {
                    Some(s) => seq << 32 | s as u64,
                    None => end.unwrap_or(seq << 32),
                };
                self.send(Msg::Record {
                    position,
                    end,
                    bytes: ev.to_vec(),
                    gtid: None,
                })
            }
            Step::Continue => {
                if self.pending.is_empty() {
                    self.pending_start = start.unwrap_or(self.offset());
                    self.pending_gtid = None;
                }
                if let Some(g) = Gtid::of_event(ev) {
                    self.pending_gtid = Some(g);
                }
                self.pending.extend_from_slice(ev);
                Ok(())
            }
            Step::End => {
                if self.pending.is_empty() {
                    self.pending_start = start.unwrap_or(self.offset());
                }
                self.pending.extend_from_slice(ev);
                let position = seq << 32 | self.pending_start as u64;
                let end_pos = if log_pos == 0 {
                    self.pending_start + self.pending.len() as u32
                } else {
                    log_pos
                };
                self.restart = StartAt::Known { seq, pos: end_pos };
                let bytes = std::mem::take(&mut self.pending);
                let gtid = self.pending_gtid.take();
                self.send(Msg::Record {
                    position,
                    end: Some(seq << 32 | end_pos as u64),
                    bytes,
                    gtid,
                })
            }
        }
    }

    fn known_position(&self) -> Option<u64> {
        Some(self.position()).filter(|p| *p != UNKNOWN_POSITION)
    }

    /// The byte offset of the read position in its file.
    fn offset(&self) -> u32 {
        (self.known_position().unwrap_or(4) & 0xffff_ffff) as u32
    }

    /// Whether the stream started at a GTID and no whole transaction came yet (until then
    /// a reconnect must start at that GTID again, not at a position).
    fn gtid_pending(&self) -> bool {
        matches!(self.restart, StartAt::Given(Start::Gtid(_)))
    }

    /// Forgets the transaction being framed (it was cut off).
    fn drop_pending(&mut self) {
        self.grouper.reset();
        self.pending.clear();
        self.pending_gtid = None;
    }

    fn rotate(&mut self, ev: &[u8]) -> Result<(), Ended> {
        // Whether a rotate carries a CRC32 depends on the file it is sent for (the server's
        // binlog_checksum when that file was written, or the one it starts), not on today's
        // setting: a trailing CRC is recognised by matching.
        let end = ev.len() - if crc_ok(ev) { 4 } else { 0 };
        let (Some(pos), Some(name)) = (
            ev.get(HEADER..HEADER + 8),
            ev.get(HEADER + 8..end.max(HEADER + 8)),
        ) else {
            return Err(Ended::Fatal(format!(
                "MySQL at {}: malformed rotate event",
                self.config.server()
            )));
        };
        let pos = u64::from_le_bytes(pos.try_into().expect("8 bytes"));
        let name = String::from_utf8_lossy(name).into_owned();
        let Some(seq) = sequence_of(Path::new(&name)) else {
            return Err(Ended::Fatal(format!(
                "MySQL at {}: binlog file `{name}` has no sequence number",
                self.config.server()
            )));
        };
        if !self.pending.is_empty() {
            // A transaction never spans files; a rotate inside one means it was cut off.
            self.drop_pending();
        }
        self.seq = Some(seq);
        match &self.restart {
            // After a GTID start the server may skip ahead of the rotate's position.
            StartAt::Given(Start::Gtid(_)) => {}
            _ => {
                self.restart = StartAt::Known {
                    seq,
                    pos: pos.min(u32::MAX as u64) as u32,
                }
            }
        }
        Ok(())
    }
}

/// Sends a snapshot record; the last one (`end`) says where the binlog goes on.
fn send_chunk(queue: &SyncSender<Msg>, chunk: Chunk, end: Option<u64>) -> Result<(), Ended> {
    queue
        .send(Msg::Record {
            position: SNAPSHOT_POSITION,
            end: Some(end.unwrap_or(SNAPSHOT_POSITION)),
            bytes: chunk.encode(),
            gtid: None,
        })
        .map_err(|_| Ended::Closed)
}

/// Worker 0's reader: drains the connection thread's channel.
struct ReplicaReader {
    partition: String,
    /// The server epoch of this run ([`Token`]).
    epoch: u32,
    /// The GTID position at each boundary not yet committed (MariaDB, when its start was
    /// known).
    gtids: Option<Tracker>,
    /// The snapshot's records, read before `rx` until this queue is closed.
    snapshot: Option<Receiver<Msg>>,
    rx: Receiver<Msg>,
    /// Where the stream goes on after the last record yielded.
    next: u64,
    /// A heartbeat came after the last record: caught up and quiet.
    idle: bool,
    server: String,
    base: String,
}

impl SourceReader for ReplicaReader {
    fn partitions(&self) -> usize {
        1
    }

    fn partition_name(&self, _p: usize) -> String {
        self.partition.clone()
    }

    fn position_unit(&self) -> &'static str {
        "pos"
    }

    fn poll(&mut self, max_records: usize, f: &mut dyn FnMut(Record<'_>)) -> anyhow::Result<()> {
        let mut n = 0;
        while n < max_records {
            let next = match &self.snapshot {
                Some(queue) => match queue.try_recv() {
                    Err(TryRecvError::Disconnected) => {
                        self.snapshot = None;
                        continue;
                    }
                    other => other,
                },
                None => self.rx.try_recv(),
            };
            match next {
                Ok(Msg::Record {
                    position,
                    end,
                    bytes,
                    gtid,
                }) => {
                    if let (Some(t), Some(end), Some(g)) = (&mut self.gtids, end, gtid) {
                        t.read(end, g);
                    }
                    self.idle = false;
                    n += 1;
                    f(Record {
                        partition: 0,
                        position,
                        line: position & 0xffff_ffff,
                        payload: &bytes,
                    });
                    if let Some(end) = end {
                        self.next = end;
                    }
                }
                Ok(Msg::Heartbeat) => self.idle = true,
                Ok(Msg::Lost(e)) => {
                    self.idle = false;
                    tracing::warn!("{e}");
                }
                Ok(Msg::Fatal(e)) => bail!(e),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => bail!(
                    "the binlog stream from {} stopped (at {}:{})",
                    self.server,
                    server_file(&self.base, self.next >> 32),
                    self.next & 0xffff_ffff
                ),
            }
        }
        Ok(())
    }

    fn next_position(&self, _p: usize) -> u64 {
        self.next
    }

    fn status(&self, _p: usize) -> PartitionStatus {
        if self.idle {
            PartitionStatus::Idle
        } else {
            PartitionStatus::Active
        }
    }

    fn commit(&mut self, positions: &[(usize, u64)]) -> anyhow::Result<()> {
        // The positions live in the state dir; the server keeps nothing for a replica.
        if let (Some(t), Some((_, p))) = (&mut self.gtids, positions.first()) {
            t.commit(*p);
        }
        Ok(())
    }

    fn resume_token(&self, _p: usize, position: u64) -> Option<String> {
        Some(
            Token {
                epoch: self.epoch,
                gtid: self.gtids.as_ref().map(|t| t.at(position)),
            }
            .encode(),
        )
    }
}

/// The reader of a worker that owns no partition.
struct NoPartition;

impl SourceReader for NoPartition {
    fn partitions(&self) -> usize {
        0
    }

    fn partition_name(&self, _p: usize) -> String {
        PARTITION.to_string()
    }

    fn position_unit(&self) -> &'static str {
        "pos"
    }

    fn poll(&mut self, _max: usize, _f: &mut dyn FnMut(Record<'_>)) -> anyhow::Result<()> {
        Ok(())
    }

    fn next_position(&self, _p: usize) -> u64 {
        0
    }

    fn status(&self, _p: usize) -> PartitionStatus {
        PartitionStatus::Finished
    }

    fn commit(&mut self, _positions: &[(usize, u64)]) -> anyhow::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resume(entries: &[(&str, u64, Option<&str>)]) -> Resume {
        Resume {
            positions: entries
                .iter()
                .map(|(k, p, _)| (k.to_string(), *p))
                .collect(),
            tokens: entries
                .iter()
                .filter_map(|(k, _, t)| Some((k.to_string(), (*t)?.to_string())))
                .collect(),
        }
    }

    #[test]
    fn a_state_dir_resumes_at_its_position_or_by_gtid_after_a_failover() {
        let me = "binlog@2";
        let maria = Flavor::MariaDb;
        let gtid = |s: &str| GtidPosition::parse(s).unwrap();
        assert_eq!(
            resumed(me, maria, &Resume::default()).unwrap(),
            Resumed::Fresh { epoch: 0 }
        );
        // Its own position, with the epoch it kept (or 0 from an older cdcflow).
        assert_eq!(
            resumed(
                me,
                maria,
                &resume(&[(me, 9 << 32 | 400, Some("epoch=3;gtid=0-1-5"))])
            )
            .unwrap(),
            Resumed::Position {
                position: 9 << 32 | 400,
                epoch: 3
            }
        );
        assert_eq!(
            resumed(me, maria, &resume(&[(me, 7, None)])).unwrap(),
            Resumed::Position {
                position: 7,
                epoch: 0
            }
        );
        // Saved after a GTID start, before its first transaction.
        assert_eq!(
            resumed(
                me,
                maria,
                &resume(&[(me, UNKNOWN_POSITION, Some("epoch=1;gtid=0-1-5"))])
            )
            .unwrap(),
            Resumed::Gtid {
                at: gtid("0-1-5"),
                epoch: 1,
                from: None
            }
        );
        assert_eq!(
            resumed(
                me,
                maria,
                &resume(&[(me, UNKNOWN_POSITION, Some("epoch=1"))])
            )
            .unwrap(),
            Resumed::Fresh { epoch: 1 }
        );
        // Another server's: by its GTID position, one epoch on.
        assert_eq!(
            resumed(
                me,
                maria,
                &resume(&[("binlog@1", 4 << 32 | 9, Some("epoch=0;gtid=0-1-5,1-3-2"))])
            )
            .unwrap(),
            Resumed::Gtid {
                at: gtid("0-1-5,1-3-2"),
                epoch: 1,
                from: Some("1".into())
            }
        );
        // Refused: another server's without a GTID position, one in a snapshot, another
        // source's, a damaged token.
        let no_gtid = resumed(me, maria, &resume(&[("binlog@1", 5, Some("epoch=0"))]))
            .unwrap_err()
            .to_string();
        assert!(
            no_gtid.contains("server with server_id 1")
                && no_gtid.contains("has server_id 2")
                && no_gtid.contains("no GTID position"),
            "{no_gtid}"
        );
        let mysql = resumed("binlog@b", Flavor::MySql, &resume(&[("binlog@a", 5, None)]))
            .unwrap_err()
            .to_string();
        assert!(mysql.contains("server_uuid a"), "{mysql}");
        for (entries, says) in [
            (
                vec![("binlog@1", SNAPSHOT_POSITION, Some("epoch=0;gtid=0-1-5"))],
                "initial snapshot",
            ),
            (vec![(me, SNAPSHOT_POSITION, None)], "initial snapshot"),
            (vec![("orders.json#0", 5, None)], "another source"),
            (vec![(me, 5, Some("epoch=x"))], "bad epoch"),
        ] {
            let e = resumed(me, maria, &resume(&entries))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{e}");
        }
        // An older cdcflow's, without the server's identity.
        assert_eq!(
            resumed(me, maria, &resume(&[(PARTITION, 5, None)])).unwrap(),
            Resumed::Position {
                position: 5,
                epoch: 0
            }
        );
    }

    #[test]
    fn start_positions_parse() {
        assert_eq!("beginning".parse::<Start>(), Ok(Start::Beginning));
        assert_eq!("end".parse::<Start>(), Ok(Start::End));
        assert_eq!(
            "mysql-bin.000003:1234".parse::<Start>(),
            Ok(Start::Position {
                file: "mysql-bin.000003".into(),
                pos: 1234
            })
        );
        assert_eq!(
            "0-1-42,1-2-3".parse::<Start>(),
            Ok(Start::Gtid("0-1-42,1-2-3".into()))
        );
        assert_eq!(
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-42".parse::<Start>(),
            Ok(Start::Gtid(
                "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-42".into()
            ))
        );
        assert!("mysql-bin:12".parse::<Start>().is_err());
        assert!("mysql-bin.000001:2".parse::<Start>().is_err());
        assert!("0-1".parse::<Start>().is_err());
        assert!("soon".parse::<Start>().is_err());
    }

    #[test]
    fn urls_parse_and_hide_the_password() {
        let c = ReplicaConfig::from_url("mysql://repl:p%40ss@127.0.0.1:3307", 7, None).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 3307));
        assert_eq!((c.user.as_str(), c.password.as_str()), ("repl", "p@ss"));
        assert!(!format!("{c:?}").contains("p@ss"));
        let c = ReplicaConfig::from_url("mysql://repl@db", 7, Some("pw".into())).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.password.as_str()),
            ("db", 3306, "pw")
        );
        let e = ReplicaConfig::from_url("mysql://repl@db", 7, None).unwrap_err();
        assert!(e.to_string().contains("no password"), "{e}");
        assert!(ReplicaConfig::from_url("http://x@y", 1, None).is_err());
        assert!(ReplicaConfig::from_url("mysql://db:3306", 1, None).is_err());
    }

    #[test]
    fn tls_modes_and_gtid_sets_parse() {
        for (text, mode) in [
            ("disabled", TlsMode::Disabled),
            ("PREFERRED", TlsMode::Preferred),
            ("required", TlsMode::Required),
            ("verify_ca", TlsMode::VerifyCa),
            ("verify-identity", TlsMode::VerifyIdentity),
        ] {
            assert_eq!(text.parse::<TlsMode>(), Ok(mode));
            assert_eq!(mode.to_string().parse::<TlsMode>(), Ok(mode));
        }
        assert!("on".parse::<TlsMode>().is_err());
        assert_eq!(TlsMode::default(), TlsMode::Preferred);
        let set =
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-42:50,3E11FA47-71CA-11E1-9E33-C80AA9429563:7";
        assert!(Flavor::MySql.check_gtid(set).is_ok());
        assert!(Flavor::MySql.check_gtid("0-1-42").is_err());
        assert!(Flavor::MariaDb.check_gtid("0-1-42,1-1-3").is_ok());
        assert!(Flavor::MariaDb.check_gtid(set).is_err());
    }
}
