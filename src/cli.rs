//! Command-line interface: flags parsed once (clap derive, with environment fallbacks), then
//! validated into the engine's options. `main.rs` only calls [`main_with_args`].

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use std::sync::Arc;

use crate::dashboard::Dashboard;
use crate::dashboard::server::HttpAccess;
use crate::decode::debezium::SchemaDrift;
use crate::pipeline::{self, RunOptions, Workers};
use crate::sink::{JsonlSink, Names, Sink, ViewState};
use crate::source::Input;
use crate::sql::Dataflows;
use crate::workload::{DecimalMode, GenOptions};

/// Exit status when the run completed but some records were rejected (dead-lettered) or rows
/// could not be evaluated.
pub const EXIT_REJECTED: u8 = 3;

/// cdcflow: exact incremental SQL views over MySQL change events (Debezium JSON), on timely and
/// differential dataflow.
#[derive(Debug, Parser)]
#[command(name = "cdcflow", version, about, long_about = None, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the pipeline as a service: read Debezium topics from Kafka (--kafka) or follow a
    /// MySQL/MariaDB server's binlog as a replica (--mysql), maintain the views, and write the
    /// changed documents to the sinks until SIGTERM/SIGINT (which finishes the current time,
    /// flushes, checkpoints and exits 0).
    Run(Box<RunArgs>),
    /// Replay Debezium JSON-lines files (one message value per line) to the end through the
    /// views; write the change log and print each view's final state.
    Replay(ReplayArgs),
    /// Validate dataflows/schema.sql and the views, and print each view's plan.
    Check(CheckArgs),
    /// Write a seeded outbound workload (orders, items, shipments, couriers, deliveries) as
    /// Debezium JSON lines.
    Gen(GenArgs),
    /// Follow a MySQL/MariaDB server's binlog as a replica and publish Debezium-compatible
    /// messages to Kafka (topics `<NAME>.<db>.<table>`, created when missing; with
    /// --transaction-metadata also `<NAME>.transaction`), so that no Kafka Connect is needed.
    /// Delivery is at least once: the binlog position is checkpointed in --state-dir only
    /// after the brokers acknowledged everything before it; cdcflow's decoder drops re-sent
    /// messages as duplicates by their (file, pos, row).
    Capture(Box<CaptureArgs>),
}

#[derive(Debug, Args)]
struct CaptureArgs {
    /// The server: `mysql://USER:PASSWORD@HOST:PORT` (the password may instead come from
    /// CDCFLOW_MYSQL_PASSWORD); the same requirements as `run --mysql`.
    #[arg(
        long,
        env = "CDCFLOW_MYSQL",
        hide_env_values = true,
        value_name = "URL"
    )]
    mysql: String,
    /// This replica's server id, unique among the server's replicas.
    #[arg(long, env = "CDCFLOW_SERVER_ID", value_name = "N")]
    server_id: u32,
    /// Kafka brokers, `host:port[,host:port..]`.
    #[arg(long, env = "CDCFLOW_KAFKA", value_name = "BROKERS")]
    kafka: String,
    /// Extra librdkafka setting `KEY=VALUE` (TLS, SASL); repeatable.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    kafka_options: Vec<String>,
    /// Debezium's topic prefix (`topic.prefix`, formerly `database.server.name`): topics are
    /// `<NAME>.<db>.<table>` and `source.name` is NAME.
    #[arg(long, value_name = "NAME")]
    server_name: String,
    /// JsonConverter `schemas.enable`: `on` wraps keys and values in {"schema":..,"payload":..}.
    #[arg(long, default_value = "off", value_parser = ["on", "off"])]
    schemas: String,
    /// Debezium's `provide.transaction.metadata`: a `transaction` block in every row message
    /// and BEGIN/END markers on `<NAME>.transaction`.
    #[arg(long)]
    transaction_metadata: bool,
    /// Debezium's `decimal.handling.mode` (`precise` needs --schemas on to be read back: the
    /// scale is in the schema).
    #[arg(long, value_enum, default_value_t = DecimalMode::String)]
    decimal_handling_mode: DecimalMode,
    /// Where to start when the state dir has no position: `beginning`, `end`, `FILE:POS` or a
    /// GTID (as for `run --mysql`).
    #[arg(long, value_name = "beginning|end|FILE:POS|GTID")]
    start: Option<crate::source::replica::Start>,
    /// The binlog position, checkpointed after the brokers acknowledged what precedes it.
    #[arg(long, env = "CDCFLOW_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Partitions of the topics this creates.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// The server sends a heartbeat after this long without events (idleness).
    #[arg(long, default_value_t = 200)]
    heartbeat_ms: u64,
    #[command(flatten)]
    mysql_tls: MysqlTls,
    /// Exit 0 once caught up with the server and quiet for this long. For tests and batch jobs.
    #[arg(long, value_name = "MS")]
    exit_when_idle_ms: Option<u64>,
}

/// Worker layout flags, shared by commands that run the engine.
#[derive(Debug, Args)]
struct WorkerArgs {
    /// Worker threads per process.
    #[arg(short = 'w', long, default_value_t = 1, env = "CDCFLOW_WORKERS")]
    workers: usize,
    /// Number of processes in a timely cluster (each runs --workers threads).
    #[arg(long, default_value_t = 1)]
    processes: usize,
    /// This process's index in the cluster (0-based).
    #[arg(long, default_value_t = 0)]
    process: usize,
    /// Comma-separated host:port of every process, in process order (cluster mode).
    #[arg(long, value_delimiter = ',')]
    hosts: Vec<String>,
}

impl WorkerArgs {
    fn validate(&self) -> anyhow::Result<Workers> {
        if self.workers == 0 {
            bail!("--workers must be at least 1");
        }
        if self.processes > 1 {
            if self.hosts.len() != self.processes {
                bail!(
                    "--processes {} needs --hosts with {} host:port entries (got {})",
                    self.processes,
                    self.processes,
                    self.hosts.len()
                );
            }
            if self.process >= self.processes {
                bail!(
                    "--process {} must be below --processes {}",
                    self.process,
                    self.processes
                );
            }
        } else if !self.hosts.is_empty() && self.hosts.len() != 1 {
            bail!(
                "--hosts lists {} processes but --processes is 1",
                self.hosts.len()
            );
        }
        Ok(Workers {
            threads: self.workers,
            process: self.process,
            hosts: if self.processes > 1 {
                self.hosts.clone()
            } else {
                Vec::new()
            },
        })
    }
}

/// Time flags, shared by commands that run the engine.
#[derive(Debug, Args)]
struct TimeArgs {
    /// Allowed lateness in milliseconds: the frontier trails each input's newest commit time by
    /// this much. Events older than the frontier are applied at the frontier and counted as late.
    #[arg(long, default_value_t = 0, env = "CDCFLOW_ALLOWED_LATENESS_MS")]
    allowed_lateness_ms: u64,
    /// An event committed more than this many milliseconds after its partition's newest commit
    /// time is rejected (dead-lettered) instead of dragging the frontier ahead.
    #[arg(long, default_value_t = pipeline::DEFAULT_MAX_TIME_SKEW_MS, env = "CDCFLOW_MAX_TIME_SKEW_MS")]
    max_time_skew_ms: u64,
    /// Forget a deleted key's version (its tombstone) once the frontier passes the delete by
    /// this many milliseconds, so the state is bounded by the live rows and the recent
    /// deletes; events committed more than this behind the frontier are then rejected
    /// (dead-lettered), since they could predate a forgotten delete. Unset: tombstones are
    /// kept for the life of the state.
    #[arg(long, env = "CDCFLOW_TOMBSTONE_RETENTION_MS", value_name = "MS")]
    tombstone_retention_ms: Option<u64>,
}

/// Decoding flags, shared by commands that run the engine.
#[derive(Debug, Args)]
struct DecodeArgs {
    /// Events whose columns differ from schema.sql: `lenient` ignores (and counts, metric
    /// `undeclared_columns`) columns schema.sql does not declare and reads missing nullable
    /// columns as NULL; `strict` rejects such events (dead letter). A missing NOT NULL column
    /// is always rejected.
    #[arg(
        long,
        default_value = "lenient",
        env = "CDCFLOW_SCHEMA_DRIFT",
        value_name = "strict|lenient"
    )]
    schema_drift: SchemaDrift,
}

/// Dashboard flags, shared by `run` and `replay`.
#[derive(Debug, Args)]
struct HttpArgs {
    /// Serve the live dashboard (the views' current documents as tables and charts, CSV, a
    /// JSON API and `/metrics`) at `http://ADDR/`, e.g. 127.0.0.1:8080. Any address but
    /// loopback needs --http-token.
    #[arg(long, env = "CDCFLOW_HTTP", value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// The token the dashboard requires (`Authorization: Bearer TOKEN` or `?token=TOKEN`).
    #[arg(
        long,
        env = "CDCFLOW_HTTP_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    http_token: Option<String>,
}

impl HttpArgs {
    /// Checks the access rule before anything runs.
    fn access(&self) -> anyhow::Result<Option<(std::net::SocketAddr, HttpAccess)>> {
        match self.http {
            None if self.http_token.is_some() => bail!("--http-token needs --http ADDR"),
            None => Ok(None),
            Some(addr) => Ok(Some((
                addr,
                HttpAccess::for_addr(addr, self.http_token.clone())?,
            ))),
        }
    }
}

/// Starts the dashboard server when asked for, printing its address.
fn start_dashboard(
    access: Option<(std::net::SocketAddr, HttpAccess)>,
    dashboard: &Option<Arc<Dashboard>>,
    registry: &Arc<crate::http::MetricsRegistry>,
) -> anyhow::Result<Option<crate::http::MetricsServer>> {
    let (Some((addr, access)), Some(dashboard)) = (access, dashboard) else {
        return Ok(None);
    };
    let with_token = access.token.is_some();
    let server =
        crate::dashboard::server::serve(addr, access, dashboard.clone(), registry.clone())?;
    eprintln!(
        "dashboard: http://{}/{}",
        server.local_addr(),
        if with_token { "?token=..." } else { "" }
    );
    Ok(Some(server))
}

#[derive(Debug, Args)]
struct ReplayArgs {
    #[command(flatten)]
    workers: WorkerArgs,
    /// Directory with schema.sql and one NAME.sql per view.
    #[arg(long, default_value = "dataflows", env = "CDCFLOW_VIEWS")]
    views: PathBuf,
    /// Write the JSON-lines change log here (`-` for stdout; then the final-state tables are not printed).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where rejected records go (default: OUT with `.dead-letter.jsonl` appended, or
    /// `dead-letter.jsonl` without --out). Created only when a record is rejected.
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    #[command(flatten)]
    time: TimeArgs,
    #[command(flatten)]
    decode: DecodeArgs,
    /// No progress output on stderr.
    #[arg(short, long, conflicts_with = "progress")]
    quiet: bool,
    /// Progress on stderr even when stderr is not a terminal: a plain line about once a second
    /// and one at the end (on a terminal, a progress bar is drawn without this flag).
    #[arg(long)]
    progress: bool,
    /// Binlog inputs: dead-letter events that cannot be decoded (CRC mismatch, truncated,
    /// unknown or compressed types, values that cannot be read, table maps that do not match
    /// schema.sql) and go on, instead of stopping with the first (going on gives views without
    /// those rows).
    #[arg(long)]
    skip_bad_events: bool,
    /// With --http: keeps serving after the end of the input until SIGINT/SIGTERM.
    #[command(flatten)]
    http: HttpArgs,
    /// Debezium JSON-lines files; each is one source partition. Pipes, FIFOs and `/dev/stdin`
    /// are read as streams; `-` is stdin. Or MySQL/MariaDB binlog files (they start with the
    /// binlog magic bytes) and directories of them, replayed in file-sequence order as one
    /// stream (all inputs must then be binlogs).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    workers: WorkerArgs,
    /// Settings from a TOML file: keys are the long option names (`kafka = "host:9092"`,
    /// `workers = 2`, `kafka-option = ["security.protocol=SSL"]`); command-line options win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Kafka brokers, `host:port[,host:port..]`.
    #[arg(
        long,
        env = "CDCFLOW_KAFKA",
        value_name = "BROKERS",
        required_unless_present = "mysql",
        conflicts_with = "mysql"
    )]
    kafka: Option<String>,
    /// Topics to read: a regex that must match the whole topic name (Debezium names them
    /// `<prefix>.<db>.<table>`, and its transaction markers `<prefix>.transaction`).
    #[arg(
        long,
        env = "CDCFLOW_TOPICS",
        value_name = "REGEX",
        required_unless_present = "mysql",
        conflicts_with = "mysql"
    )]
    topics: Option<String>,
    /// Follow a MySQL/MariaDB server's binlog as a replica instead of reading Kafka:
    /// `mysql://USER:PASSWORD@HOST:PORT` (the password may instead come from
    /// CDCFLOW_MYSQL_PASSWORD). The server needs log_bin, binlog_format=ROW,
    /// binlog_row_image=FULL and binlog_row_metadata=FULL; the user REPLICATION SLAVE,
    /// REPLICATION CLIENT and SELECT; it may authenticate with caching_sha2_password,
    /// mysql_native_password or ed25519, over TLS (--mysql-ssl-mode).
    #[arg(
        long,
        env = "CDCFLOW_MYSQL",
        hide_env_values = true,
        value_name = "URL",
        requires = "server_id"
    )]
    mysql: Option<String>,
    /// With --mysql: this replica's server id, unique among the server's replicas.
    #[arg(long, env = "CDCFLOW_SERVER_ID", value_name = "N")]
    server_id: Option<u32>,
    /// With --mysql, where to start when the state dir has no position: `beginning` (the
    /// oldest binlog the server has; the views are exact only if it holds the tables' whole
    /// history), `snapshot` (the watched tables' rows as they are now, read consistently, then
    /// the binlog from that point), `end` (changes from now on), `FILE:POS` or a GTID (MariaDB
    /// `0-1-42`, MySQL `uuid:1-42`). A position in the state dir wins (said in a log line).
    #[arg(
        long,
        env = "CDCFLOW_START",
        value_name = "beginning|snapshot|end|FILE:POS|GTID"
    )]
    start: Option<crate::source::replica::Start>,
    /// With --mysql: the server sends a heartbeat after this long without events; one after
    /// the last transaction marks the binlog caught up, which lets the frontier pass it.
    #[arg(long, default_value_t = 200, env = "CDCFLOW_HEARTBEAT_MS")]
    heartbeat_ms: u64,
    #[command(flatten)]
    mysql_tls: MysqlTls,
    /// With --mysql: dead-letter binlog events that cannot be decoded and go on, instead of
    /// stopping with the first (going on gives views without those rows).
    #[arg(long)]
    skip_bad_events: bool,
    /// Consumer group the safe offsets are committed to.
    #[arg(long, default_value = "cdcflow", env = "CDCFLOW_GROUP")]
    group: String,
    /// Extra librdkafka setting `KEY=VALUE` (TLS: `security.protocol=SSL`,
    /// `ssl.ca.location=..`; SASL: `sasl.mechanism=SCRAM-SHA-512`, `sasl.username=..`,
    /// `sasl.password=..`); repeatable. Values are never logged.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    kafka_options: Vec<String>,
    /// Directory with schema.sql and one NAME.sql per view.
    #[arg(long, default_value = "dataflows", env = "CDCFLOW_VIEWS")]
    views: PathBuf,
    /// Durable state: the current row of every source key, positions and pending
    /// transactions, checkpointed atomically. Without it a restart reads the topics from the
    /// beginning.
    #[arg(long, env = "CDCFLOW_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Seconds between checkpoints (with --state-dir); one is also taken at shutdown.
    #[arg(long, default_value_t = 10.0, env = "CDCFLOW_CHECKPOINT_INTERVAL_SECS")]
    checkpoint_interval_secs: f64,
    /// Write the JSON-lines change log here (`-` for stdout); appended to when it exists.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where rejected records go (default: `dead-letter.jsonl` in the state dir, or in the
    /// current directory).
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    #[command(flatten)]
    time: TimeArgs,
    #[command(flatten)]
    decode: DecodeArgs,
    /// A caught-up partition quiet for this long no longer holds the frontier.
    #[arg(long, default_value_t = 2000, env = "CDCFLOW_IDLE_TIMEOUT_MS")]
    idle_timeout_ms: u64,
    /// A transaction still incomplete after this long is released as it is (with a warning).
    #[arg(long, default_value_t = 60_000, env = "CDCFLOW_TRANSACTION_TIMEOUT_MS")]
    transaction_timeout_ms: u64,
    /// Stop gracefully (as on SIGTERM) once no record has been read for this long after the
    /// first one (or for ten times as long when none came at all). For tests and batch jobs.
    #[arg(long, value_name = "MS")]
    exit_when_idle_ms: Option<u64>,
    /// Progress on stderr about once a second.
    #[arg(long)]
    progress: bool,
    /// Seconds between the status lines on stderr (events/s over the interval, frontier lag,
    /// consumer lag, the sinks' pending and acknowledged times, retries and errors); 0: none.
    #[arg(
        long,
        default_value_t = 10.0,
        env = "CDCFLOW_LOG_INTERVAL_SECS",
        value_name = "SECS"
    )]
    log_interval: f64,
    #[command(flatten)]
    es: EsArgs,
    /// Serve Prometheus metrics at `ADDR/metrics` (e.g. 127.0.0.1:9464).
    #[arg(long, env = "CDCFLOW_METRICS", value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    #[command(flatten)]
    http: HttpArgs,
}

/// Elasticsearch sink flags.
#[derive(Debug, Args)]
struct EsArgs {
    /// Write each view to Elasticsearch (8.x API) at this URL; repeatable for several nodes.
    #[arg(
        long = "elasticsearch",
        env = "CDCFLOW_ELASTICSEARCH",
        value_name = "URL"
    )]
    elasticsearch: Vec<String>,
    /// Prefix of every index (alias) name: the alias of view V is PREFIX + V.
    #[arg(long, default_value = "", env = "CDCFLOW_INDEX_PREFIX")]
    index_prefix: String,
    /// Basic-auth user (the password from CDCFLOW_ES_PASSWORD or --es-password).
    #[arg(long, env = "CDCFLOW_ES_USER")]
    es_user: Option<String>,
    /// Basic-auth password.
    #[arg(long, env = "CDCFLOW_ES_PASSWORD", hide_env_values = true)]
    es_password: Option<String>,
    /// API key (base64 `id:key`, as Elasticsearch prints it).
    #[arg(long, env = "CDCFLOW_ES_API_KEY", hide_env_values = true)]
    es_api_key: Option<String>,
    /// PEM file of the CA that signed the server's certificate.
    #[arg(long)]
    es_ca_cert: Option<PathBuf>,
    /// Do not verify the server's TLS certificate (tests only).
    #[arg(long)]
    es_insecure: bool,
    /// Documents per `_bulk` request at most.
    #[arg(long, default_value_t = 1000)]
    es_bulk_docs: usize,
    /// Bytes per `_bulk` request at most.
    #[arg(long, default_value_t = 5 << 20)]
    es_bulk_bytes: usize,
    /// Longest wait before a partial `_bulk` request is sent, in milliseconds.
    #[arg(long, default_value_t = 200)]
    es_bulk_delay_ms: u64,
    /// Delete physical indices of older view definitions once the alias has moved.
    #[arg(long)]
    es_drop_old_indices: bool,
}

impl EsArgs {
    fn config(&self) -> anyhow::Result<Option<crate::sink::elasticsearch::EsConfig>> {
        use crate::sink::elasticsearch::{EsAuth, EsConfig};
        let Some(first) = self.elasticsearch.first() else {
            return Ok(None);
        };
        let mut c = EsConfig::new(first.clone());
        c.urls = self.elasticsearch.clone();
        c.index_prefix = self.index_prefix.clone();
        c.auth = match (&self.es_user, &self.es_password, &self.es_api_key) {
            (_, _, Some(key)) => EsAuth::EncodedApiKey(key.clone()),
            (Some(u), Some(p), None) => EsAuth::Basic {
                user: u.clone(),
                password: p.clone(),
            },
            (Some(_), None, None) => {
                bail!("--es-user needs --es-password (or CDCFLOW_ES_PASSWORD)")
            }
            _ => EsAuth::None,
        };
        c.ca_cert = self.es_ca_cert.clone();
        c.tls_skip_verify = self.es_insecure;
        c.bulk_max_docs = self.es_bulk_docs.max(1);
        c.bulk_max_bytes = self.es_bulk_bytes.max(1024);
        c.bulk_max_delay = std::time::Duration::from_millis(self.es_bulk_delay_ms);
        c.drop_old_indices = self.es_drop_old_indices;
        Ok(Some(c))
    }
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Directory with schema.sql and one NAME.sql per view.
    #[arg(long, default_value = "dataflows", env = "CDCFLOW_VIEWS")]
    views: PathBuf,
}

#[derive(Debug, Args)]
struct GenArgs {
    /// Number of orders (about 10 row changes each).
    #[arg(long)]
    orders: u64,
    /// Random seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Deliver lines out of order, each at most this many lines from its commit-order position.
    #[arg(long, default_value_t = 0)]
    shuffle: usize,
    /// Probability (0..1) that a message is delivered twice.
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Debezium JsonConverter `schemas.enable`.
    #[arg(long, value_enum, default_value_t = OnOff::Off)]
    schemas: OnOff,
    /// Debezium `decimal.handling.mode`.
    #[arg(long, value_enum, default_value_t = DecimalMode::String)]
    decimal: DecimalMode,
    /// Commit-time span of the workload in seconds (commit times have second resolution, as in
    /// the MySQL binlog): a shorter span packs more transactions into each second.
    #[arg(long, default_value_t = crate::workload::DEFAULT_SPAN_SECS)]
    span_secs: u64,
    /// Debezium transaction metadata: rows carry `transaction` blocks and their statement's
    /// time (a second apart within a transaction), and BEGIN/END markers are written inline or,
    /// with `separate`, to --tx-markers-out (Debezium's `<prefix>.transaction` topic).
    #[arg(long, value_enum, default_value_t = TxMetaArg::Off)]
    tx_metadata: TxMetaArg,
    /// Where transaction markers go with `--tx-metadata separate`.
    #[arg(long, required_if_eq("tx_metadata", "separate"))]
    tx_markers_out: Option<PathBuf>,
    /// No progress output on stderr.
    #[arg(short, long, conflicts_with = "progress")]
    quiet: bool,
    /// Progress on stderr even when stderr is not a terminal: a plain line about once a second
    /// and one at the end (on a terminal, a progress bar is drawn without this flag).
    #[arg(long)]
    progress: bool,
    /// Output file (`-` for stdout).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TxMetaArg {
    Off,
    Inline,
    Separate,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

/// Parses arguments, runs the command and returns the process exit status.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let args = match with_config_file(args.into_iter().collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    let result = match cli.command {
        Command::Run(a) => run(*a),
        Command::Replay(a) => replay(a),
        Command::Check(a) => check(a),
        Command::Gen(a) => gen_cmd(a),
        Command::Capture(a) => capture(*a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// TLS of the MySQL connection (`run --mysql`, `capture`).
#[derive(clap::Args, Debug, Clone)]
struct MysqlTls {
    /// TLS to the server: `disabled`, `preferred` (TLS when the server offers it, its
    /// certificate unchecked, else plain TCP), `required` (TLS or fail, certificate
    /// unchecked), `verify-ca` (the certificate must chain to --mysql-ssl-ca) or
    /// `verify-identity` (and name the host).
    #[arg(
        long,
        default_value = "preferred",
        env = "CDCFLOW_MYSQL_SSL_MODE",
        value_name = "MODE"
    )]
    mysql_ssl_mode: crate::source::replica::TlsMode,
    /// The CA certificate(s) (PEM) that verify-ca / verify-identity check the server's
    /// certificate against (without it: the bundled web roots).
    #[arg(long, env = "CDCFLOW_MYSQL_SSL_CA", value_name = "PEM")]
    mysql_ssl_ca: Option<PathBuf>,
}

impl MysqlTls {
    fn apply(&self, c: &mut crate::source::replica::ReplicaConfig) -> anyhow::Result<()> {
        use crate::source::replica::TlsMode;
        if let Some(ca) = &self.mysql_ssl_ca {
            if !matches!(
                self.mysql_ssl_mode,
                TlsMode::VerifyCa | TlsMode::VerifyIdentity
            ) {
                bail!(
                    "--mysql-ssl-ca is checked only with --mysql-ssl-mode verify-ca or \
                     verify-identity (not {})",
                    self.mysql_ssl_mode
                );
            }
            std::fs::metadata(ca)
                .with_context(|| format!("--mysql-ssl-ca {}: cannot read it", ca.display()))?;
        }
        c.tls = self.mysql_ssl_mode;
        c.tls_ca = self.mysql_ssl_ca.clone();
        Ok(())
    }
}

/// Inserts the settings of `run --config FILE` (TOML) as options before the command line's own,
/// so the command line wins.
fn with_config_file(args: Vec<std::ffi::OsString>) -> anyhow::Result<Vec<std::ffi::OsString>> {
    let Some(run_at) = args.iter().position(|a| a == "run") else {
        return Ok(args);
    };
    let mut file = None;
    for (i, a) in args.iter().enumerate().skip(run_at + 1) {
        let s = a.to_string_lossy();
        if s == "--config" {
            file = args.get(i + 1).map(PathBuf::from);
        } else if let Some(v) = s.strip_prefix("--config=") {
            file = Some(PathBuf::from(v));
        }
    }
    let Some(file) = file else { return Ok(args) };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read config file {}", file.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("invalid config file {}", file.display()))?;
    let mut inserted: Vec<std::ffi::OsString> = Vec::new();
    for (key, value) in table {
        if key == "config" {
            continue;
        }
        let flag = format!("--{}", key.replace('_', "-"));
        let scalar = |v: &toml::Value| -> anyhow::Result<Option<String>> {
            Ok(match v {
                toml::Value::String(s) => Some(s.clone()),
                toml::Value::Integer(i) => Some(i.to_string()),
                toml::Value::Float(f) => Some(f.to_string()),
                toml::Value::Boolean(_) => None,
                other => bail!(
                    "{}: `{key}` has an unsupported value {other}",
                    file.display()
                ),
            })
        };
        match &value {
            toml::Value::Boolean(true) => inserted.push(flag.into()),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => {
                for item in items {
                    if let Some(v) = scalar(item)? {
                        inserted.push(flag.clone().into());
                        inserted.push(v.into());
                    }
                }
            }
            v => {
                if let Some(v) = scalar(v)? {
                    inserted.push(flag.into());
                    inserted.push(v.into());
                }
            }
        }
    }
    let mut out = args[..=run_at].to_vec();
    out.extend(inserted);
    out.extend_from_slice(&args[run_at + 1..]);
    Ok(out)
}

/// What identifies a file for [`refuse_same_files`]: its device and inode when it exists as a
/// regular file (hard links and symlinks to it agree), else its canonical path (a file not yet
/// created: the canonical parent directory joined with its name).
#[derive(Debug, PartialEq, Eq)]
enum FileIdentity {
    Inode(u64, u64),
    Path(PathBuf),
}

fn file_identity(p: &Path) -> Option<FileIdentity> {
    use std::os::unix::fs::MetadataExt;
    if p.as_os_str() == "-" {
        return None; // stdin / stdout
    }
    match std::fs::metadata(p) {
        // Only regular files: a terminal or pipe may be both stdin and stdout.
        Ok(m) if m.is_file() => Some(FileIdentity::Inode(m.dev(), m.ino())),
        Ok(_) => None,
        Err(_) => {
            let name = p.file_name()?;
            let parent = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let dir = std::fs::canonicalize(parent).ok()?;
            Some(FileIdentity::Path(dir.join(name)))
        }
    }
}

/// Refuses, before anything is opened for writing, an output that is the same file as an input
/// (or as another output): writing it would truncate what is being read.
fn refuse_same_files(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> anyhow::Result<()> {
    let ids: Vec<(&str, &Path, Option<FileIdentity>)> = inputs
        .iter()
        .chain(outputs)
        .map(|(what, p)| (*what, *p, file_identity(p)))
        .collect();
    for (oi, (what, p, id)) in ids.iter().enumerate().skip(inputs.len()) {
        let Some(id) = id else { continue };
        if let Some((other, q, _)) = ids[..oi].iter().find(|(_, _, o)| o.as_ref() == Some(id)) {
            bail!(
                "{what} {} is the same file as {other} {}: refusing to overwrite it",
                p.display(),
                q.display()
            );
        }
    }
    Ok(())
}

/// The files of a views directory (`schema.sql` and the views): inputs that no output may be.
fn view_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn load(views: &Path) -> anyhow::Result<Dataflows> {
    Dataflows::load(views).map_err(|e| anyhow::anyhow!("{e}"))
}

fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let d = load(&a.views)?;
    println!(
        "schema: {} tables ({})",
        d.catalog.tables.len(),
        d.catalog.names()
    );
    for v in &d.views {
        print!("{}", describe_view(v));
    }
    println!("ok: {} views", d.views.len());
    Ok(ExitCode::SUCCESS)
}

/// What `check` prints for a view: the source columns it reads, its joins, its group key
/// (what identifies a document), then its plan.
pub fn describe_view(v: &crate::sql::ViewPlan) -> String {
    use crate::sql::plan::show;
    use std::fmt::Write as _;
    let mut out = format!("view {}\n", v.name);
    let mut joined: Vec<String> = Vec::new();
    let mut joins: Vec<String> = Vec::new();
    for (i, src) in v.sources.iter().enumerate() {
        let names: Vec<&str> = src
            .read_columns()
            .iter()
            .filter_map(|c| src.table_columns.get(*c).map(String::as_str))
            .collect();
        let _ = writeln!(
            out,
            "  {} {} {}: {}",
            if i == 0 { "reads:" } else { "      " },
            src.table_name,
            src.alias,
            names.join(", ")
        );
        let own = src.qualified_columns();
        if i > 0 {
            let j = &v.joins[i - 1];
            joins.push(format!(
                "{} {} {} on {}",
                j.kind.keyword(),
                src.table_name,
                src.alias,
                j.condition(&joined, &own)
            ));
        }
        joined.extend(own);
    }
    if joins.is_empty() {
        out.push_str("  joins: none\n");
    }
    for (i, j) in joins.iter().enumerate() {
        let _ = writeln!(out, "  {} {j}", if i == 0 { "joins:" } else { "      " });
    }
    let group: Vec<String> = v.group_by.iter().map(|e| show(e, &joined)).collect();
    if v.global {
        out.push_str("  group key: none (one document over all rows)\n");
    } else if v.id_width < v.group_by.len() || v.aggregates.is_empty() {
        let _ = writeln!(
            out,
            "  group key: none (one document per row, id {})",
            group[..v.id_width.min(group.len())].join(", ")
        );
    } else {
        let _ = writeln!(out, "  group key: {}", group.join(", "));
    }
    out.push_str("  plan:\n");
    for line in v.to_string().lines().skip(1) {
        let _ = writeln!(out, "  {line}");
    }
    out.push('\n');
    out
}

fn replay(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    let workers = a.workers.validate()?;
    let dataflows = load(&a.views)?;
    let names = Names::of(&dataflows.views);
    let to_stdout = a.out.as_deref() == Some(Path::new("-"));
    let dead_letter = a.dead_letter.clone().unwrap_or_else(|| match &a.out {
        Some(p) if !to_stdout => PathBuf::from(format!("{}.dead-letter.jsonl", p.display())),
        _ => PathBuf::from("dead-letter.jsonl"),
    });
    let views = view_files(&a.views);
    let ins: Vec<(&str, &Path)> = a
        .inputs
        .iter()
        .map(|p| ("input", p.as_path()))
        .chain(views.iter().map(|p| ("view file", p.as_path())))
        .collect();
    let mut outs: Vec<(&str, &Path)> = vec![("--dead-letter", dead_letter.as_path())];
    if let Some(p) = &a.out {
        outs.insert(0, ("--out", p.as_path()));
    }
    refuse_same_files(&ins, &outs)?;
    if a.inputs.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        bail!("`-` (stdin) can be given as an input only once");
    }
    let is_binlog = |p: &PathBuf| {
        // Only regular files are sniffed: reading a pipe's first bytes would consume them.
        p.as_os_str() != "-"
            && (p.is_dir() || (p.is_file() && crate::source::binlog::is_binlog_file(p)))
    };
    let binlogs = a.inputs.iter().filter(|p| is_binlog(p)).count();
    if binlogs > 0 && binlogs < a.inputs.len() {
        bail!(
            "the inputs mix binlog files (or directories) and JSON lines: replay them separately"
        );
    }
    let mut inputs = Vec::new();
    if binlogs == 0 {
        for p in &a.inputs {
            inputs.push(if p.as_os_str() == "-" {
                Input::stdin()?
            } else {
                Input::open(p)?
            });
        }
    } else if a.skip_bad_events {
        eprintln!(
            "note: --skip-bad-events: undecodable binlog events are dead-lettered and skipped"
        );
    }
    // In a cluster only process 0 (it hosts worker 0, the sink) writes the change log.
    let sink: Option<Box<dyn Sink>> = match &a.out {
        None => None,
        Some(_) if a.workers.process != 0 => None,
        Some(_) if to_stdout => Some(Box::new(JsonlSink::new(
            BufWriter::new(std::io::stdout()),
            names.clone(),
        ))),
        Some(p) => {
            let f = File::create(p).with_context(|| format!("cannot create {}", p.display()))?;
            Some(Box::new(JsonlSink::new(BufWriter::new(f), names.clone())))
        }
    };
    // The dashboard runs where the sink runs: on process 0 (it hosts worker 0).
    let http = if a.workers.process == 0 {
        a.http.access()?
    } else {
        a.http.access()?;
        None
    };
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let registry = Arc::new(crate::http::MetricsRegistry::new(metrics.clone()));
    let pipeline_metrics = crate::http::PipelineMetrics::new(&registry);
    let dashboard = http
        .as_ref()
        .map(|_| Dashboard::new(&dataflows.views, Some(pipeline_metrics.clone())));
    let sink = with_dashboard(sink, &dashboard);
    let shutdown = match &dashboard {
        Some(_) => Some(stop_on_signals()?),
        None => None,
    };
    let server = start_dashboard(http, &dashboard, &registry)?;
    let progress = Arc::new(crate::progress::Progress::default());
    let options = RunOptions {
        workers,
        lateness_ms: a.time.allowed_lateness_ms,
        max_time_skew_ms: a.time.max_time_skew_ms,
        tombstone_retention_ms: a.time.tombstone_retention_ms,
        progress_state: Some(progress.clone()),
        dead_letter: Some(dead_letter.clone()),
        schema_drift: a.decode.schema_drift,
        shutdown: shutdown.clone(),
        pipeline_metrics: dashboard.as_ref().map(|_| pipeline_metrics.clone()),
        ..RunOptions::new(1)
    };
    // Only process 0 shows progress (its worker 0 publishes it).
    let reporter = crate::progress::Reporter::start(
        if a.workers.process == 0 {
            crate::progress::Mode::choose(a.quiet, a.progress)
        } else {
            crate::progress::Mode::Off
        },
        "progress",
        crate::progress::Unit::Bytes,
        std::time::Duration::from_secs(1),
        crate::progress::replay_sample(metrics.clone(), progress),
    );
    let outcome = if binlogs > 0 {
        let files = crate::source::binlog::open_files(&a.inputs)?;
        let source = crate::source::binlog::BinlogSource::new(files)?;
        let decoder = pipeline::binlog_decoder(source.file_names(), a.skip_bad_events);
        pipeline::run(
            &dataflows,
            Arc::new(source),
            decoder,
            &options,
            sink,
            metrics.clone(),
        )
    } else {
        pipeline::run(
            &dataflows,
            Arc::new(crate::source::FileSource::new(inputs)),
            pipeline::debezium_for(&dataflows, options.schema_drift, options.state.is_some()),
            &options,
            sink,
            metrics.clone(),
        )
    };
    reporter.finish();
    let outcome = outcome?;
    if !outcome.stopped {
        pipeline_metrics.set_frontier(crate::time::Time::MAX);
    }
    if let Some(d) = &dashboard {
        d.touch();
    }
    if !to_stdout && a.workers.process == 0 {
        let mut out = std::io::stdout().lock();
        print_state(&mut out, &names, &outcome.state)?;
        out.flush()?;
    }
    let m = &outcome.metrics;
    let secs = outcome.elapsed.as_secs_f64();
    eprintln!(
        "summary: {m}; {:.2}s, {:.0} events/s with {} worker(s)",
        secs,
        m.events as f64 / secs.max(1e-9),
        a.workers.workers * a.workers.processes
    );
    if m.dead_lettered > 0 || m.eval_errors > 0 {
        if m.dead_lettered > 0 {
            eprintln!(
                "rejected: {} record(s) kept in {}",
                m.dead_lettered,
                dead_letter.display()
            );
        }
        if m.eval_errors > 0 {
            eprintln!(
                "rejected: {} row(s) could not be evaluated by a view (see warnings above)",
                m.eval_errors
            );
        }
    }
    let code = if m.dead_lettered > 0 || m.eval_errors > 0 {
        ExitCode::from(EXIT_REJECTED)
    } else {
        ExitCode::SUCCESS
    };
    if let (Some(server), Some(stop)) = (&server, &shutdown)
        && !outcome.stopped
    {
        eprintln!(
            "replay done; serving the dashboard at http://{}/ until interrupted (Ctrl-C)",
            server.local_addr()
        );
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    Ok(code)
}

/// `sink` and the dashboard's sink as one.
fn with_dashboard(
    sink: Option<Box<dyn Sink>>,
    dashboard: &Option<Arc<Dashboard>>,
) -> Option<Box<dyn Sink>> {
    match (sink, dashboard) {
        (sink, None) => sink,
        (None, Some(d)) => Some(Box::new(d.sink())),
        (Some(s), Some(d)) => Some(Box::new(crate::sink::Fanout::new(vec![
            s,
            Box::new(d.sink()),
        ]))),
    }
}

/// A flag that SIGTERM and SIGINT set; a second signal exits at once.
fn stop_on_signals() -> anyhow::Result<Arc<std::sync::atomic::AtomicBool>> {
    let shutdown = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, shutdown.clone())
            .context("cannot install signal handlers")?;
        signal_hook::flag::register(sig, shutdown.clone())
            .context("cannot install signal handlers")?;
    }
    Ok(shutdown)
}

fn capture(a: CaptureArgs) -> anyhow::Result<ExitCode> {
    use std::time::Duration;

    let password = std::env::var("CDCFLOW_MYSQL_PASSWORD").ok();
    let mut replica =
        crate::source::replica::ReplicaConfig::from_url(&a.mysql, a.server_id, password)?;
    replica.start = a.start.clone();
    if replica.start == Some(crate::source::replica::Start::Snapshot) {
        bail!(
            "capture --start snapshot is not implemented (capture publishes what the binlog \
             holds): start at beginning, end, FILE:POS or a GTID"
        );
    }
    replica.heartbeat = Duration::from_millis(a.heartbeat_ms.max(1));
    a.mysql_tls.apply(&mut replica)?;
    let mut kafka_options = Vec::new();
    for o in &a.kafka_options {
        match o.split_once('=') {
            Some((k, v)) => kafka_options.push((k.trim().to_string(), v.to_string())),
            None => bail!(
                "--kafka-option `{}` is not KEY=VALUE",
                o.split('=').next().unwrap_or("")
            ),
        }
    }
    if a.partitions < 1 {
        bail!("--partitions must be at least 1");
    }
    let config = crate::capture::CaptureConfig {
        replica,
        brokers: a.kafka.clone(),
        kafka_options,
        server_name: a.server_name.clone(),
        schemas: a.schemas == "on",
        transaction_metadata: a.transaction_metadata,
        decimal: a.decimal_handling_mode,
        state_dir: a.state_dir.clone(),
        partitions: a.partitions,
        exit_when_idle: a.exit_when_idle_ms.map(Duration::from_millis),
    };
    crate::capture::run(config, stop_on_signals()?)?;
    Ok(ExitCode::SUCCESS)
}

fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let workers = a.workers.validate()?;
    let http = a.http.access()?;
    let dataflows = load(&a.views)?;
    let names = Names::of(&dataflows.views);
    let replica = match &a.mysql {
        Some(url) => {
            let server_id = a.server_id.context("--mysql needs --server-id N")?;
            let password = std::env::var("CDCFLOW_MYSQL_PASSWORD").ok();
            let mut c = crate::source::replica::ReplicaConfig::from_url(url, server_id, password)?;
            c.start = a.start.clone();
            c.heartbeat = Duration::from_millis(a.heartbeat_ms.max(1));
            a.mysql_tls.apply(&mut c)?;
            Some(c)
        }
        None => None,
    };
    let kafka = match (&a.kafka, &a.topics) {
        (Some(brokers), Some(topics)) => {
            let mut kafka = crate::source::kafka::KafkaConfig::new(brokers, topics);
            kafka.group = a.group.clone();
            kafka.idle_timeout = Duration::from_millis(a.idle_timeout_ms);
            for o in &a.kafka_options {
                match o.split_once('=') {
                    Some((k, v)) => kafka.options.push((k.trim().to_string(), v.to_string())),
                    None => bail!(
                        "--kafka-option `{}` is not KEY=VALUE",
                        o.split('=').next().unwrap_or("")
                    ),
                }
            }
            Some(kafka)
        }
        _ if replica.is_some() => None,
        _ => bail!("give --kafka BROKERS with --topics REGEX, or --mysql URL"),
    };
    if replica.is_none()
        && (a.start.is_some()
            || a.server_id.is_some()
            || a.skip_bad_events
            || a.mysql_tls.mysql_ssl_ca.is_some())
    {
        bail!("--start, --server-id, --skip-bad-events and --mysql-ssl-ca are options of --mysql");
    }
    if a.state_dir.is_none() {
        let note = if replica.is_some() {
            "no --state-dir: a restart reads the binlog again from --start"
        } else {
            "no --state-dir: reading the topics from their earliest offsets"
        };
        tracing::warn!("{note}");
        eprintln!("note: {note}");
    }
    let dead_letter = a.dead_letter.clone().unwrap_or_else(|| match &a.state_dir {
        Some(d) => d.join("dead-letter.jsonl"),
        None => PathBuf::from("dead-letter.jsonl"),
    });
    {
        let sink_dead_letter = dead_letter.with_extension("sink.jsonl");
        let views = view_files(&a.views);
        let mut ins: Vec<(&str, &Path)> =
            views.iter().map(|p| ("view file", p.as_path())).collect();
        if let Some(c) = &a.config {
            ins.push(("--config", c.as_path()));
        }
        if let Some(c) = &a.es.es_ca_cert {
            ins.push(("--es-ca-cert", c.as_path()));
        }
        let mut outs: Vec<(&str, &Path)> = vec![
            ("--dead-letter", dead_letter.as_path()),
            ("the sink's dead-letter file", sink_dead_letter.as_path()),
        ];
        if let Some(p) = &a.out {
            outs.insert(0, ("--out", p.as_path()));
        }
        refuse_same_files(&ins, &outs)?;
    }
    if let Some(d) = &a.state_dir {
        std::fs::create_dir_all(d)
            .with_context(|| format!("cannot create state dir {}", d.display()))?;
    }
    let dead = Arc::new(Mutex::new(crate::source::DeadLetters::new(Some(
        dead_letter.with_extension("sink.jsonl"),
    ))));
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let (source, decoder): (Arc<dyn crate::source::Source>, pipeline::DecoderFactory) =
        match (kafka, replica) {
            (Some(kafka), _) => (
                Arc::new(crate::source::kafka::KafkaSource::connect(kafka)?),
                pipeline::debezium_for(&dataflows, a.decode.schema_drift, a.state_dir.is_some()),
            ),
            (None, Some(replica)) => {
                let mut source = crate::source::replica::ReplicaSource::connect(replica)?;
                source.set_snapshot_tables(
                    dataflows
                        .used_tables()
                        .into_iter()
                        .map(|t| dataflows.catalog.tables[t].clone())
                        .collect(),
                );
                let decoder = pipeline::binlog_decoder_for(
                    &dataflows,
                    source.file_names(),
                    a.skip_bad_events,
                );
                (Arc::new(source), decoder)
            }
            (None, None) => unreachable!("checked above"),
        };
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let es_metrics = Arc::new(crate::sink::elasticsearch::EsMetrics::default());
    if let Some(es) = a.es.config()? {
        sinks.push(Box::new(
            crate::sink::elasticsearch::ElasticsearchSink::connect(
                es,
                &dataflows.views,
                dead.clone(),
                es_metrics.clone(),
            )?,
        ));
    }
    match &a.out {
        None => {}
        Some(_) if a.workers.process != 0 => {}
        Some(p) if p.as_os_str() == "-" => sinks.push(Box::new(JsonlSink::new(
            BufWriter::new(std::io::stdout()),
            names.clone(),
        ))),
        Some(p) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?;
            sinks.push(Box::new(JsonlSink::new(BufWriter::new(f), names.clone())));
        }
    }
    let registry = crate::http::registry(metrics.clone(), es_metrics.clone());
    let pipeline_metrics = crate::http::PipelineMetrics::new(&registry);
    // The dashboard runs where the sink runs: on process 0 (it hosts worker 0).
    let dashboard = match &http {
        Some(_) if a.workers.process == 0 => Some(Dashboard::new(
            &dataflows.views,
            Some(pipeline_metrics.clone()),
        )),
        _ => None,
    };
    if let Some(d) = &dashboard {
        sinks.push(Box::new(d.sink()));
    }
    if sinks.is_empty() && a.out.is_none() && http.is_none() {
        bail!("no sink: give --elasticsearch URL, --out PATH|- and/or --http ADDR");
    }
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, shutdown.clone())
            .context("cannot install signal handlers")?;
        signal_hook::flag::register(sig, shutdown.clone())
            .context("cannot install signal handlers")?;
    }
    let _metrics_server = match a.metrics {
        Some(addr) => {
            let server = crate::http::serve_metrics(addr, registry.clone())?;
            eprintln!("metrics: http://{}/metrics", server.local_addr());
            Some(server)
        }
        None => None,
    };
    let _dashboard_server = start_dashboard(http, &dashboard, &registry)?;
    if let Some(ms) = a.exit_when_idle_ms {
        let (m, s) = (metrics.clone(), shutdown.clone());
        std::thread::spawn(move || {
            let mut last = (0, std::time::Instant::now());
            loop {
                std::thread::sleep(Duration::from_millis(50));
                let n = m.records.load(Ordering::Relaxed);
                let quiet = if n == 0 { ms.saturating_mul(10) } else { ms };
                if n != last.0 {
                    last = (n, std::time::Instant::now());
                } else if last.1.elapsed() >= Duration::from_millis(quiet) {
                    s.store(true, Ordering::SeqCst);
                    return;
                }
            }
        });
    }
    let progress = Arc::new(crate::progress::Progress::default());
    let interval_log = if a.log_interval > 0.0 && a.log_interval.is_finite() {
        let (m, p, es) = (metrics.clone(), progress.clone(), es_metrics.clone());
        let with_es = !a.es.elasticsearch.is_empty();
        let sample = move || {
            let es = with_es.then(|| {
                let s = es.snapshot();
                (s.retries, s.errors, s.dead_lettered)
            });
            crate::progress::Interval {
                events: m.events.load(Ordering::Relaxed),
                records: m.records.load(Ordering::Relaxed),
                frontier: p.frontier(),
                now_ms: crate::time::now_ms(),
                consumer_lag: p.lag(),
                sink_pending: m.sink_pending.load(Ordering::Relaxed),
                sink_acknowledged: match m.sink_acknowledged.load(Ordering::Relaxed) {
                    0 => None,
                    t => Some(t),
                },
                documents: m.upserts.load(Ordering::Relaxed) + m.deletes.load(Ordering::Relaxed),
                dead_lettered: m.dead_lettered.load(Ordering::Relaxed),
                elasticsearch: es,
            }
        };
        Some(crate::progress::IntervalLog::start(
            Duration::from_secs_f64(a.log_interval.max(0.05)),
            sample,
        ))
    } else {
        None
    };
    let options = RunOptions {
        workers,
        lateness_ms: a.time.allowed_lateness_ms,
        max_time_skew_ms: a.time.max_time_skew_ms,
        tombstone_retention_ms: a.time.tombstone_retention_ms,
        progress: a.progress,
        progress_state: Some(progress),
        dead_letter: Some(dead_letter.clone()),
        idle_timeout: Duration::from_millis(a.idle_timeout_ms),
        tx_timeout: Some(Duration::from_millis(a.transaction_timeout_ms)),
        state: a.state_dir.clone().map(|dir| pipeline::StateOptions {
            dir,
            interval: Duration::from_secs_f64(a.checkpoint_interval_secs.max(0.05)),
        }),
        shutdown: Some(shutdown.clone()),
        pipeline_metrics: Some(pipeline_metrics),
        ..RunOptions::new(1)
    };
    let outcome = pipeline::run(
        &dataflows,
        source,
        decoder,
        &options,
        Some(Box::new(crate::sink::Fanout::new(sinks))),
        metrics.clone(),
    );
    drop(interval_log);
    let outcome = outcome?;
    let m = &outcome.metrics;
    eprintln!(
        "summary: {m}; {:.2}s; elasticsearch: {:?}",
        outcome.elapsed.as_secs_f64(),
        es_metrics.snapshot()
    );
    if m.dead_lettered > 0 {
        eprintln!(
            "rejected: {} record(s) kept in {}",
            m.dead_lettered,
            dead_letter.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints each view's documents as an aligned table.
pub fn print_state(out: &mut impl Write, names: &Names, state: &ViewState) -> std::io::Result<()> {
    for (vi, (view, cols)) in names.views.iter().enumerate() {
        let rows: Vec<Vec<String>> = state
            .range((vi, String::new())..(vi + 1, String::new()))
            .map(|(_, doc)| doc.iter().map(|v| v.to_string()).collect())
            .collect();
        writeln!(out, "{view} ({} documents)", rows.len())?;
        let mut widths: Vec<usize> = cols.iter().map(|c| c.chars().count()).collect();
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        writeln!(out, "  {}", line(cols))?;
        writeln!(
            out,
            "  {}",
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  ")
        )?;
        for r in &rows {
            writeln!(out, "  {}", line(r))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn gen_cmd(a: GenArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&a.duplicates) {
        bail!("--duplicates must be a probability between 0 and 1");
    }
    let opts = GenOptions {
        orders: a.orders,
        seed: a.seed,
        shuffle: a.shuffle,
        duplicates: a.duplicates,
        schemas: a.schemas == OnOff::On,
        decimal: a.decimal,
        span_secs: a.span_secs,
        tx_metadata: match a.tx_metadata {
            TxMetaArg::Off => crate::workload::TxMetadata::Off,
            TxMetaArg::Inline => crate::workload::TxMetadata::Inline,
            TxMetaArg::Separate => crate::workload::TxMetadata::Separate,
        },
    };
    {
        let mut outs: Vec<(&str, &Path)> = vec![("--out", a.out.as_path())];
        if let Some(m) = &a.tx_markers_out {
            outs.push(("--tx-markers-out", m.as_path()));
        }
        refuse_same_files(&[], &outs)?;
    }
    let mut markers = match &a.tx_markers_out {
        Some(p) => Some(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => None,
    };
    let started = std::time::Instant::now();
    let progress = Arc::new(crate::workload::GenProgress::default());
    let reporter = {
        let (p, total) = (progress.clone(), a.orders);
        crate::progress::Reporter::start(
            crate::progress::Mode::choose(a.quiet, a.progress),
            "gen",
            crate::progress::Unit::Orders,
            std::time::Duration::from_secs(1),
            move || crate::progress::Sample {
                done: Some(p.orders.load(std::sync::atomic::Ordering::Relaxed)),
                total: Some(total),
                events: p.events.load(std::sync::atomic::Ordering::Relaxed),
                ..Default::default()
            },
        )
    };
    let generated = (|| -> anyhow::Result<crate::workload::GenStats> {
        let mut w: BufWriter<Box<dyn Write>> = if a.out.as_os_str() == "-" {
            BufWriter::new(Box::new(std::io::stdout().lock()))
        } else {
            let f = File::create(&a.out)
                .with_context(|| format!("cannot create {}", a.out.display()))?;
            BufWriter::with_capacity(1 << 20, Box::new(f))
        };
        let stats = crate::workload::generate_with_progress(
            &opts,
            &mut w,
            markers.as_mut().map(|m| m as &mut dyn Write),
            Some(&progress),
        )?;
        w.flush()?;
        if let Some(m) = markers.as_mut() {
            m.flush()?;
        }
        Ok(stats)
    })();
    reporter.finish();
    let stats = generated?;
    eprintln!(
        "generated {} events in {} transactions as {} lines in {:.2}s; replay with --allowed-lateness-ms {} for no late events",
        stats.events,
        stats.transactions,
        stats.lines,
        started.elapsed().as_secs_f64(),
        stats.max_displacement_ms
    );
    Ok(ExitCode::SUCCESS)
}
