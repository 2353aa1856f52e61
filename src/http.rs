//! Prometheus metrics over HTTP.
//!
//! [`MetricsRegistry`] holds every metric family of a process. The counters of [`Metrics`] stay
//! plain atomics on the hot path: a [`Collector`] reads them at scrape time and exposes each as
//! `cdcflow_<field>_total` (every field of [`crate::metrics::MetricsSnapshot`], so a counter added
//! there is exposed without a change here). Other modules register families of their own through
//! [`MetricsRegistry::counter`], [`MetricsRegistry::gauge_family`] and friends, or use the
//! pipeline-wide families of [`PipelineMetrics`]. Every name is given without the `cdcflow_`
//! prefix, which the registry adds; counters get the `_total` suffix of the exposition format.
//!
//! [`serve_metrics`] serves `GET /metrics` (Prometheus text format 0.0.4) and `GET /` (a short
//! index) on its own thread until the returned [`MetricsServer`] is dropped.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::{Metric, Registry};

use crate::metrics::Metrics;
use crate::time::Time;

/// The prefix of every metric name.
pub const PREFIX: &str = "cdcflow";

/// The `Content-Type` of `GET /metrics`: Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The labels of one series of a family: `(name, value)` pairs, in a fixed order per family.
pub type Labels = Vec<(String, String)>;

/// A family of counters, one per label set.
pub type CounterFamily = Family<Labels, Counter>;

/// A family of gauges, one per label set.
pub type GaugeFamily = Family<Labels, Gauge>;

/// One registered family, kept so that registering the same name again returns the same handle.
#[derive(Clone, Debug)]
enum Handle {
    Counter(Counter),
    Gauge(Gauge),
    CounterFamily(CounterFamily),
    GaugeFamily(GaugeFamily),
    /// The frontier of [`PipelineMetrics`] (its gauges come from a collector).
    Frontier(Arc<AtomicU64>),
    /// Registered with [`MetricsRegistry::register`]: not handed out again.
    Other,
}

impl Handle {
    fn kind(&self) -> &'static str {
        match self {
            Handle::Counter(_) => "counter",
            Handle::Gauge(_) => "gauge",
            Handle::CounterFamily(_) => "counter family",
            Handle::GaugeFamily(_) => "gauge family",
            Handle::Frontier(_) => "frontier collector",
            Handle::Other => "custom metric",
        }
    }
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    handles: HashMap<String, Handle>,
}

/// Every metric family of a process, encoded on each scrape. Shared as `Arc<MetricsRegistry>`.
///
/// Registering a name twice with the same kind returns the first handle (so two instances of a
/// sink share one counter); with another kind, or with an invalid name, it panics: names are
/// constants of the code. Counter names may be given with or without the `_total` suffix.
#[derive(Debug)]
pub struct MetricsRegistry {
    inner: Mutex<Inner>,
}

impl Default for MetricsRegistry {
    fn default() -> Self {
        MetricsRegistry {
            inner: Mutex::new(Inner {
                registry: Registry::with_prefix(PREFIX),
                handles: HashMap::new(),
            }),
        }
    }
}

impl MetricsRegistry {
    /// A registry exposing the counters of `metrics` as `cdcflow_<field>_total`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        let registry = Self::default();
        registry.register_collector(Box::new(CoreCounters(metrics)));
        registry
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while registering leaves nothing half-done worth refusing to scrape.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns the handle registered under `name`, or registers the one `make` builds.
    fn get_or_register(
        &self,
        name: &str,
        help: &str,
        make: impl FnOnce() -> Handle,
        take: impl Fn(&Handle) -> Option<Handle>,
    ) -> Handle {
        check_name(name);
        let mut inner = self.lock();
        if let Some(existing) = inner.handles.get(name) {
            return take(existing).unwrap_or_else(|| {
                panic!(
                    "metric {PREFIX}_{name} is already registered as a {}",
                    existing.kind()
                )
            });
        }
        let handle = make();
        match &handle {
            Handle::Counter(m) => inner.registry.register(name, help, m.clone()),
            Handle::Gauge(m) => inner.registry.register(name, help, m.clone()),
            Handle::CounterFamily(m) => inner.registry.register(name, help, m.clone()),
            Handle::GaugeFamily(m) => inner.registry.register(name, help, m.clone()),
            Handle::Frontier(frontier) => inner
                .registry
                .register_collector(Box::new(FrontierGauges(frontier.clone()))),
            Handle::Other => unreachable!("custom metrics go through `register`"),
        }
        inner.handles.insert(name.to_string(), handle.clone());
        handle
    }

    /// A counter `cdcflow_<name>_total`.
    pub fn counter(&self, name: &str, help: &str) -> Counter {
        let name = name.strip_suffix("_total").unwrap_or(name);
        match self.get_or_register(
            name,
            help,
            || Handle::Counter(Counter::default()),
            |h| matches!(h, Handle::Counter(_)).then(|| h.clone()),
        ) {
            Handle::Counter(c) => c,
            _ => unreachable!(),
        }
    }

    /// A counter for a sink or another module: the same as [`MetricsRegistry::counter`].
    pub fn extra_counter(&self, name: &str, help: &str) -> Counter {
        self.counter(name, help)
    }

    /// A gauge `cdcflow_<name>`.
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        match self.get_or_register(
            name,
            help,
            || Handle::Gauge(Gauge::default()),
            |h| matches!(h, Handle::Gauge(_)).then(|| h.clone()),
        ) {
            Handle::Gauge(g) => g,
            _ => unreachable!(),
        }
    }

    /// A family of counters `cdcflow_<name>_total{...}`; a series appears at its first use.
    pub fn counter_family(&self, name: &str, help: &str) -> CounterFamily {
        let name = name.strip_suffix("_total").unwrap_or(name);
        match self.get_or_register(
            name,
            help,
            || Handle::CounterFamily(CounterFamily::default()),
            |h| matches!(h, Handle::CounterFamily(_)).then(|| h.clone()),
        ) {
            Handle::CounterFamily(f) => f,
            _ => unreachable!(),
        }
    }

    /// A family of gauges `cdcflow_<name>{...}`; a series appears at its first use.
    pub fn gauge_family(&self, name: &str, help: &str) -> GaugeFamily {
        match self.get_or_register(
            name,
            help,
            || Handle::GaugeFamily(GaugeFamily::default()),
            |h| matches!(h, Handle::GaugeFamily(_)).then(|| h.clone()),
        ) {
            Handle::GaugeFamily(f) => f,
            _ => unreachable!(),
        }
    }

    /// Registers any metric of `prometheus-client` (a histogram, a family with typed labels)
    /// under `cdcflow_<name>`. Keep a clone of it to update it.
    ///
    /// # Panics
    /// When `name` is invalid or already registered.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        check_name(name);
        let mut inner = self.lock();
        if let Some(existing) = inner.handles.get(name) {
            panic!(
                "metric {PREFIX}_{name} is already registered as a {}",
                existing.kind()
            );
        }
        inner.registry.register(name, help, metric);
        inner.handles.insert(name.to_string(), Handle::Other);
    }

    /// Registers a collector: it encodes its families (names without the prefix) on each scrape.
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        self.lock().registry.register_collector(collector);
    }

    /// Encodes every family in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.lock().registry)?;
        Ok(out)
    }
}

/// Panics unless `name` is a valid metric name (`[a-zA-Z_][a-zA-Z0-9_]*`).
fn check_name(name: &str) {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    assert!(
        valid,
        "invalid metric name {name:?}: use [a-zA-Z_][a-zA-Z0-9_]*"
    );
}

/// The help text of a counter of [`Metrics`] (its doc comment).
fn core_help(field: &str) -> &'static str {
    match field {
        "records" => "Input records (lines) read.",
        "events" => "Row changes decoded.",
        "ignored" => {
            "Records that carry no row change (tombstones, transaction markers, key records, \
             schema changes, heartbeats)."
        }
        "undeclared_columns" => {
            "Column values that schema.sql does not declare, ignored (schema drift, lenient)."
        }
        "duplicates" => "Changes whose version was already applied.",
        "stale" => "Changes older than the version already applied.",
        "late" => {
            "Changes that arrived after the frontier passed their time (applied at the frontier)."
        }
        "tombstones_compacted" => {
            "Tombstones (versions of deleted keys) dropped after the tombstone retention."
        }
        "dead_lettered" => "Records rejected and kept in the dead-letter file.",
        "eval_errors" => {
            "Rows a view could not evaluate (e.g. integer overflow), excluded from the view."
        }
        "upserts" => "Documents upserted.",
        "deletes" => "Documents deleted.",
        "transactions" => "Source transactions made whole (released at one commit time).",
        "incomplete_transactions" => {
            "Transactions released incomplete (input ended or transaction timeout)."
        }
        _ => "A counter of cdcflow's metrics (see cdcflow::metrics::Metrics).",
    }
}

/// Exposes the atomics of [`Metrics`], read at scrape time.
#[derive(Debug)]
struct CoreCounters(Arc<Metrics>);

impl Collector for CoreCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        // Through serde, so that every field of the snapshot is exposed, also one added later.
        let snapshot = serde_json::to_value(self.0.snapshot()).map_err(|_| fmt::Error)?;
        let fields = snapshot.as_object().ok_or(fmt::Error)?;
        for (field, value) in fields {
            let Some(value) = value.as_u64() else {
                continue;
            };
            let counter = ConstCounter::new(value);
            let metric =
                encoder.encode_descriptor(field, core_help(field), None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

/// "Not reported yet" in [`FrontierGauges`].
const UNSET: u64 = u64::MAX - 1;

/// The frontier and its lag behind the wall clock, computed at scrape time.
#[derive(Debug)]
struct FrontierGauges(Arc<AtomicU64>);

impl Collector for FrontierGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let frontier = self.0.load(Relaxed);
        if frontier == UNSET {
            return Ok(());
        }
        let lag = if frontier == Time::MAX {
            0
        } else {
            let gauge = ConstGauge::new(i64::try_from(frontier).unwrap_or(i64::MAX));
            let metric = encoder.encode_descriptor(
                "frontier_ms",
                "The engine frontier: every source commit time below it is complete (ms since the epoch).",
                None,
                gauge.metric_type(),
            )?;
            gauge.encode(metric)?;
            now_ms().saturating_sub(i64::try_from(frontier).unwrap_or(i64::MAX))
        };
        let gauge = ConstGauge::new(lag);
        let metric = encoder.encode_descriptor(
            "frontier_lag_ms",
            "How far the frontier is behind the wall clock at scrape time (ms; 0 once all input is done).",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn labels<const N: usize>(pairs: [(&str, &str); N]) -> Labels {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The pipeline-wide families that sources, the dataflow and sinks update. Cheap to clone: the
/// clones update the same series.
///
/// - `cdcflow_source_events_total{table, partition}`: row changes read, per table and partition;
/// - `cdcflow_frontier_ms` and `cdcflow_frontier_lag_ms` (the lag computed at scrape time);
/// - `cdcflow_consumer_lag{partition}`: messages behind the end of each source partition;
/// - `cdcflow_source_read_position{partition}`: how far each source partition has been read;
/// - `cdcflow_checkpoint_duration_ms`, `cdcflow_checkpoint_size_bytes`, `cdcflow_checkpoints_total`;
/// - `cdcflow_state_rows{table}`: rows held in the state of each table.
#[derive(Clone, Debug)]
pub struct PipelineMetrics {
    source_events: CounterFamily,
    frontier: Arc<AtomicU64>,
    consumer_lag: GaugeFamily,
    read_position: GaugeFamily,
    checkpoint_duration_ms: Gauge,
    checkpoint_size_bytes: Gauge,
    checkpoints: Counter,
    state_rows: GaugeFamily,
}

impl PipelineMetrics {
    /// Registers the families in `registry`; a second call on the same registry shares them.
    pub fn new(registry: &MetricsRegistry) -> Self {
        let frontier = match registry.get_or_register(
            "frontier_ms",
            "",
            || Handle::Frontier(Arc::new(AtomicU64::new(UNSET))),
            |h| matches!(h, Handle::Frontier(_)).then(|| h.clone()),
        ) {
            Handle::Frontier(f) => f,
            _ => unreachable!(),
        };
        // The collector also writes this one.
        registry
            .lock()
            .handles
            .insert("frontier_lag_ms".to_string(), Handle::Other);
        PipelineMetrics {
            source_events: registry.counter_family(
                "source_events",
                "Row changes read from the sources, per table and source partition.",
            ),
            frontier,
            consumer_lag: registry.gauge_family(
                "consumer_lag",
                "Messages between the consumer's position and the end of each source partition.",
            ),
            read_position: registry.gauge_family(
                "source_read_position",
                "The position each source partition has read up to (Kafka: the next offset; a \
                 live binlog: file sequence * 2^32 + byte offset).",
            ),
            checkpoint_duration_ms: registry.gauge(
                "checkpoint_duration_ms",
                "How long the last checkpoint took (ms).",
            ),
            checkpoint_size_bytes: registry.gauge(
                "checkpoint_size_bytes",
                "The size of the last checkpoint (bytes).",
            ),
            checkpoints: registry.counter("checkpoints", "Checkpoints written."),
            state_rows: registry.gauge_family("state_rows", "Rows held in the state, per table."),
        }
    }

    /// Counts `n` row changes of `table` read from source partition `partition`.
    pub fn events_in(&self, table: &str, partition: &str, n: u64) {
        if n > 0 {
            self.source_events
                .get_or_create(&labels([("table", table), ("partition", partition)]))
                .inc_by(n);
        }
    }

    /// Reports the frontier (ms since the epoch); [`Time::MAX`] once all input is done.
    pub fn set_frontier(&self, ms: Time) {
        // UNSET is reserved; a frontier that close to the end of time reads as done.
        self.frontier
            .store(if ms >= UNSET { Time::MAX } else { ms }, Relaxed);
    }

    /// The frontier last reported: `None` before the first report, [`Time::MAX`] once all
    /// input is done.
    pub fn frontier(&self) -> Option<Time> {
        match self.frontier.load(Relaxed) {
            UNSET => None,
            ms => Some(ms),
        }
    }

    /// Reports how many messages source partition `partition` has beyond the consumer position.
    pub fn set_consumer_lag(&self, partition: &str, n: u64) {
        self.consumer_lag
            .get_or_create(&labels([("partition", partition)]))
            .set(gauge_value(n));
    }

    /// Reports the position source partition `partition` has read up to.
    pub fn set_read_position(&self, partition: &str, position: u64) {
        self.read_position
            .get_or_create(&labels([("partition", partition)]))
            .set(gauge_value(position));
    }

    /// Reports a finished checkpoint: how long it took and its size.
    pub fn set_checkpoint(&self, duration_ms: u64, bytes: u64) {
        self.checkpoint_duration_ms.set(gauge_value(duration_ms));
        self.checkpoint_size_bytes.set(gauge_value(bytes));
        self.checkpoints.inc();
    }

    /// Reports the number of rows the state holds for `table`.
    pub fn set_state_rows(&self, table: &str, n: u64) {
        self.state_rows
            .get_or_create(&labels([("table", table)]))
            .set(gauge_value(n));
    }
}

/// A running server of [`serve_metrics`] or [`serve_router`]; dropping it stops the server.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// The address the server listens on (the actual port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn metrics_page(State(registry): State<Arc<MetricsRegistry>>) -> impl IntoResponse {
    match registry.encode() {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], body),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "error: the metrics could not be encoded\n".to_string(),
        ),
    }
}

async fn index_page() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "cdcflow\n\nGET /metrics  Prometheus metrics (text format 0.0.4)\n",
    )
}

/// Serves `GET /metrics` and `GET /` on `addr` from a thread of its own (a single-threaded tokio
/// runtime) until the returned handle is dropped. Binds before returning: an address that cannot
/// be bound is an error naming it.
pub fn serve_metrics(
    addr: SocketAddr,
    registry: Arc<MetricsRegistry>,
) -> anyhow::Result<MetricsServer> {
    let app = Router::new()
        .route("/", get(index_page))
        .route("/metrics", get(metrics_page))
        .with_state(registry);
    serve_router(addr, "the metrics endpoint", app)
}

/// A router serving only `GET /metrics` from `registry` (to merge into another server).
pub fn metrics_router(registry: Arc<MetricsRegistry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .with_state(registry)
}

/// Serves `app` on `addr` from a thread of its own (a single-threaded tokio runtime) until the
/// returned handle is dropped. Binds before returning: an address that cannot be bound is an
/// error naming it and `what` is served there.
pub fn serve_router(addr: SocketAddr, what: &str, app: Router) -> anyhow::Result<MetricsServer> {
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} for {what}"))?;
    let local = listener
        .local_addr()
        .with_context(|| format!("{what} on {addr}"))?;
    listener
        .set_nonblocking(true)
        .with_context(|| format!("{what} on {addr}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .with_context(|| format!("cannot start the runtime of {what}"))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let name = what.to_string();
    let thread = std::thread::Builder::new()
        .name("cdcflow-http".to_string())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::error!("{name} on {local}: {e}");
                        return;
                    }
                };
                // Dropping the server future at the stop signal closes the listener; the
                // connections still open end with the runtime.
                tokio::select! {
                    result = axum::serve(listener, app).into_future() => {
                        if let Err(e) = result {
                            tracing::error!("{name} on {local}: {e}");
                        }
                    }
                    _ = stopped => {}
                }
            });
        })
        .with_context(|| format!("cannot start the thread of {what}"))?;
    Ok(MetricsServer {
        addr: local,
        stop: Some(stop),
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use super::*;

    /// A raw HTTP/1.1 GET; returns the status line, the headers and the body.
    fn get(addr: SocketAddr, path: &str) -> (String, String, String) {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let (status, headers) = head.split_once("\r\n").unwrap();
        (status.to_string(), headers.to_lowercase(), body.to_string())
    }

    #[test]
    fn scrape_over_tcp() {
        let metrics = Arc::new(Metrics::default());
        let registry = Arc::new(MetricsRegistry::new(metrics.clone()));
        let pipeline = PipelineMetrics::new(&registry);
        let sink_errors =
            registry.extra_counter("sink_es_errors", "Items the sink could not write.");
        Metrics::add(&metrics.records, 7);
        Metrics::add(&metrics.upserts, 3);
        pipeline.events_in("orders", "2", 5);
        pipeline.events_in("orders", "2", 1);
        pipeline.set_consumer_lag("0", 12);
        pipeline.set_checkpoint(250, 4096);
        pipeline.set_state_rows("orders", 40);
        pipeline.set_frontier(1_000);
        sink_errors.inc_by(2);

        let server = serve_metrics("127.0.0.1:0".parse().unwrap(), registry.clone()).unwrap();
        let (status, headers, body) = get(server.local_addr(), "/metrics");
        assert!(status.contains(" 200 "), "{status}");
        assert!(
            headers.contains("content-type: text/plain; version=0.0.4"),
            "{headers}"
        );
        for line in [
            "# TYPE cdcflow_records_total counter",
            "cdcflow_records_total 7",
            "cdcflow_upserts_total 3",
            "cdcflow_deletes_total 0",
            "cdcflow_eval_errors_total 0",
            "cdcflow_source_events_total{table=\"orders\",partition=\"2\"} 6",
            "cdcflow_consumer_lag{partition=\"0\"} 12",
            "cdcflow_checkpoint_duration_ms 250",
            "cdcflow_checkpoint_size_bytes 4096",
            "cdcflow_checkpoints_total 1",
            "cdcflow_state_rows{table=\"orders\"} 40",
            "cdcflow_frontier_ms 1000",
            "cdcflow_sink_es_errors_total 2",
        ] {
            assert!(
                body.lines().any(|l| l == line),
                "no line {line:?} in:\n{body}"
            );
        }
        let lag: i64 = body
            .lines()
            .find_map(|l| l.strip_prefix("cdcflow_frontier_lag_ms "))
            .expect("a frontier lag")
            .parse()
            .unwrap();
        assert!(lag > 1_700_000_000_000, "lag {lag}");

        // Live: a later scrape sees later values.
        Metrics::add(&metrics.records, 1);
        pipeline.set_frontier(Time::MAX);
        let (_, _, body) = get(server.local_addr(), "/metrics");
        assert!(
            body.lines().any(|l| l == "cdcflow_records_total 8"),
            "{body}"
        );
        assert!(
            body.lines().any(|l| l == "cdcflow_frontier_lag_ms 0"),
            "{body}"
        );
        assert!(!body.contains("cdcflow_frontier_ms "), "{body}");

        let (status, _, body) = get(server.local_addr(), "/");
        assert!(
            status.contains(" 200 ") && body.contains("/metrics"),
            "{status} {body}"
        );
        let (status, _, _) = get(server.local_addr(), "/nothing");
        assert!(status.contains(" 404 "), "{status}");

        // Dropping the handle stops the server and frees the port.
        let addr = server.local_addr();
        drop(server);
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn every_core_counter_is_exposed() {
        let registry = MetricsRegistry::new(Arc::new(Metrics::default()));
        let body = registry.encode().unwrap();
        let snapshot = serde_json::to_value(Metrics::default().snapshot()).unwrap();
        for field in snapshot.as_object().unwrap().keys() {
            let line = format!("cdcflow_{field}_total 0");
            assert!(body.lines().any(|l| l == line), "no {line:?} in:\n{body}");
            assert_ne!(core_help(field), core_help("?"), "no help for {field}");
        }
        // No frontier before one is reported.
        assert!(!body.contains("cdcflow_frontier"), "{body}");
    }

    #[test]
    fn same_name_same_handle() {
        let registry = MetricsRegistry::default();
        let a = registry.counter("sink_retries", "Retries.");
        let b = registry.extra_counter("sink_retries_total", "Retries.");
        a.inc();
        b.inc();
        let body = registry.encode().unwrap();
        assert_eq!(
            body.matches("# TYPE cdcflow_sink_retries_total counter")
                .count(),
            1,
            "{body}"
        );
        assert!(
            body.lines().any(|l| l == "cdcflow_sink_retries_total 2"),
            "{body}"
        );
        let one = PipelineMetrics::new(&registry);
        let two = PipelineMetrics::new(&registry);
        one.events_in("t", "0", 1);
        two.events_in("t", "0", 1);
        let body = registry.encode().unwrap();
        assert!(
            body.lines()
                .any(|l| l == "cdcflow_source_events_total{table=\"t\",partition=\"0\"} 2"),
            "{body}"
        );
        two.set_frontier(5);
        let body = registry.encode().unwrap();
        assert_eq!(
            body.matches("# TYPE cdcflow_frontier_ms gauge").count(),
            1,
            "{body}"
        );
        assert!(body.lines().any(|l| l == "cdcflow_frontier_ms 5"), "{body}");
    }

    #[test]
    #[should_panic(expected = "already registered as a counter")]
    fn kind_mismatch_panics() {
        let registry = MetricsRegistry::default();
        registry.counter("x", "x");
        registry.gauge("x", "x");
    }

    #[test]
    fn bind_error_names_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = serve_metrics(addr, Arc::new(MetricsRegistry::default())).unwrap_err();
        assert!(format!("{err:#}").contains(&addr.to_string()), "{err:#}");
    }
}

/// Exposes the Elasticsearch sink's atomics as `cdcflow_es_<field>` (latency and bytes as
/// gauges and counters as they are), read at scrape time.
#[derive(Debug)]
struct EsCounters(Arc<crate::sink::elasticsearch::EsMetrics>);

impl Collector for EsCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let snapshot = serde_json::to_value(self.0.snapshot()).map_err(|_| fmt::Error)?;
        let fields = snapshot.as_object().ok_or(fmt::Error)?;
        for (field, value) in fields {
            let Some(value) = value.as_u64() else {
                continue;
            };
            let name = format!("es_{field}");
            let help = "Elasticsearch sink (see cdcflow::sink::elasticsearch::EsMetrics).";
            if field == "last_batch_latency_us" {
                let gauge = ConstGauge::new(gauge_value(value));
                let metric = encoder.encode_descriptor(&name, help, None, gauge.metric_type())?;
                gauge.encode(metric)?;
            } else {
                let counter = ConstCounter::new(value);
                let metric = encoder.encode_descriptor(&name, help, None, counter.metric_type())?;
                counter.encode(metric)?;
            }
        }
        Ok(())
    }
}

/// The registry of a `run`: the engine's counters, the Elasticsearch sink's, and the
/// pipeline-wide families.
pub fn registry(
    metrics: Arc<Metrics>,
    es: Arc<crate::sink::elasticsearch::EsMetrics>,
) -> Arc<MetricsRegistry> {
    let registry = Arc::new(MetricsRegistry::new(metrics));
    registry.register_collector(Box::new(EsCounters(es)));
    registry
}
