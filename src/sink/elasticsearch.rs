//! The Elasticsearch sink: every view is an index, every document change one `_bulk` action,
//! written asynchronously and acknowledged once the server answered for it.
//!
//! # Contract
//!
//! - **Indices.** View `V` is written to the physical index `PREFIX V-FINGERPRINT`, behind the
//!   alias `PREFIX V`, which is what readers query (`GET PREFIX V/_search`). The fingerprint is
//!   the FNV-1a 64 hash (16 hex digits) of the view's plan (its `Display` text) and of the index
//!   mapping: a view whose SQL (or output types) change gets a fresh, empty physical index, so the
//!   external versions of the old documents cannot reject the recomputed ones. At start-up the
//!   physical index is created when missing, then the alias is moved to it in one atomic
//!   `_aliases` request (removed from every index that held it, added to the new one). Old
//!   physical indices (`PREFIX V-` and 16 hex digits) are deleted only with
//!   [`EsConfig::drop_old_indices`]. A concrete index that already bears the alias name is an
//!   error that says what to do. A server without the alias API makes the sink write to the
//!   physical index itself, with a warning (both emulators the tests use, noida-db 0.2.3 and
//!   osmem-server 0.1.6, support `_aliases`, `GET _alias/NAME` and `require_alias`; noida-db
//!   applies alias actions one by one and reports a failed one as `errors: true` in a 200, so the
//!   sink only removes the alias from indices that hold it).
//! - **Mapping.** Explicit and `dynamic: "strict"`: `Int` -> `long`; `Dec(s)` -> `scaled_float`
//!   with `scaling_factor` 10^s for s <= 15 (ES stores `round(value * 10^s)` as a long: exact,
//!   also in aggregations, while the scaled value fits 2^53), `double` beyond; in both cases
//!   `_source` keeps the exact decimal digits cdcflow wrote, so exact values are read from
//!   `_source`, approximate ones from the index. `Date` -> `date` (`yyyy-MM-dd`); `DateTime` ->
//!   `date` accepting what [`crate::value::Value`] prints (`yyyy-MM-dd HH:mm:ss` with no, 3 or 6
//!   fraction digits; the index keeps milliseconds, `_source` the microseconds); `Text`, `Bytes`
//!   (hex text `0x..`) and `Null` -> `keyword`.
//! - **Writes.** `_bulk` `index` actions (the whole document, from [`Names::doc_json`]) and
//!   `delete` actions (a change without a document), both with `version_type=external` and
//!   `version` = the change's time; `_id` = [`Change::id`] (in the JSON body, so any characters
//!   are safe; ES limits ids to 512 bytes). Index actions go through the alias with
//!   `require_alias: true`, so a deleted index is reported instead of being re-created with a
//!   dynamic mapping; deletes go to the physical index (a delete with an external version may
//!   auto-create the index it names, and must not create one under the alias name). One writer
//!   task sends strictly sequential batches, cut by [`EsConfig::bulk_max_docs`],
//!   [`EsConfig::bulk_max_bytes`] and [`EsConfig::bulk_max_delay`], so the writes of one
//!   document are never reordered.
//! - **Outcomes, per item.** 2xx: written. 409 (version conflict): the server already holds a
//!   newer (or the same) version of the document; counted in `version_conflicts`, and a success:
//!   with external versions that is exactly "this write is stale". 404 on a delete: the document
//!   was already gone, a success. Other 4xx (a value the mapping refuses, an id too long): the
//!   item goes to the dead-letter output with the reason and is counted; a success for
//!   acknowledgement (it will never be written). 429 and 5xx: retried. 404 `index_not_found` on
//!   an index action (the index or alias was deleted) and 401/403 on an item: fatal.
//! - **Outcomes, per request.** Connection errors, timeouts, 429 and 5xx: the whole batch is
//!   retried. 413 (and a whole-request 400) halves the batch until the offending action stands
//!   alone, which is then dead-lettered. 401/403 is retried [`EsConfig::auth_failure_limit`]
//!   times in a row, then fatal. Only the items that need it are resent, before anything newer.
//!   Retries back off exponentially from [`EsConfig::retry_initial`] up to
//!   [`EsConfig::retry_max`] and go on for as long as the server stays down: nothing is ever
//!   dropped, and the engine holds its progress (offsets, checkpoints) meanwhile; each retry is
//!   logged as a warning and counted.
//! - **Acknowledgement.** Time `T` is acknowledged once every change of every time `<= T` has an
//!   outcome above (written, conflict, or dead-lettered); with real Elasticsearch that means the
//!   bulk response reported it durable in the translog. [`Sink::acknowledged`] only reads shared
//!   state; [`Sink::submit`] renders the actions and queues them (an unbounded queue: while the
//!   server is down, memory grows with what the engine submits). Once the sink gave up,
//!   `submit`, `acknowledged` and `flush` return the error.
//! - **What real Elasticsearch adds.** It keeps the version of a deleted document only for
//!   `index.gc_deletes` (60 s by default): a stale write arriving later than that after a delete
//!   re-creates the document. The single ordered writer never sends one; only a restart that
//!   replays old times could.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use elasticsearch::http::transport::{
    MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder,
};
use elasticsearch::http::{Method, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;

use crate::sink::{Change, Names, Sink};
use crate::source::DeadLetters;
use crate::sql::ViewPlan;
use crate::sql::expr::Type;
use crate::time::Time;
use crate::value::write_json_str;

/// How the sink authenticates to the server.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum EsAuth {
    /// No credentials (or those of the URL's `user:password@`).
    #[default]
    None,
    /// HTTP basic authentication.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// An API key as its id and secret.
    ApiKey {
        /// Key id.
        id: String,
        /// Key secret.
        key: String,
    },
    /// An API key as Elasticsearch prints it (base64 of `id:secret`).
    EncodedApiKey(String),
    /// A bearer token.
    Bearer(String),
}

impl fmt::Debug for EsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EsAuth::None => "None",
            EsAuth::Basic { .. } => "Basic(..)",
            EsAuth::ApiKey { .. } => "ApiKey(..)",
            EsAuth::EncodedApiKey(_) => "EncodedApiKey(..)",
            EsAuth::Bearer(_) => "Bearer(..)",
        })
    }
}

/// Settings of an [`ElasticsearchSink`].
#[derive(Clone)]
pub struct EsConfig {
    /// Node URLs (`http://host:9200`); several are used round-robin.
    pub urls: Vec<String>,
    /// Prepended to every view name to form its alias (default empty).
    pub index_prefix: String,
    /// Credentials.
    pub auth: EsAuth,
    /// A PEM file of CA certificates to trust (besides the built-in roots).
    pub ca_cert: Option<PathBuf>,
    /// Accept any server certificate (testing only).
    pub tls_skip_verify: bool,
    /// Most actions in one bulk request (default 1000).
    pub bulk_max_docs: usize,
    /// Most body bytes in one bulk request (default 5 MiB).
    pub bulk_max_bytes: usize,
    /// Longest wait for more actions before a partial batch is sent (default 200 ms).
    pub bulk_max_delay: Duration,
    /// Timeout of one request (default 30 s).
    pub request_timeout: Duration,
    /// How long [`ElasticsearchSink::connect`] waits for the server to answer (default 10 s).
    pub connect_timeout: Duration,
    /// First retry delay (default 100 ms); doubled after every failed try.
    pub retry_initial: Duration,
    /// Longest retry delay (default 10 s).
    pub retry_max: Duration,
    /// Consecutive 401/403 answers to a bulk request before the sink gives up (default 3).
    pub auth_failure_limit: u32,
    /// Delete this view's older physical indices once the alias moved (default false).
    pub drop_old_indices: bool,
}

impl EsConfig {
    /// Defaults for one node.
    pub fn new(url: impl Into<String>) -> EsConfig {
        EsConfig {
            urls: vec![url.into()],
            index_prefix: String::new(),
            auth: EsAuth::None,
            ca_cert: None,
            tls_skip_verify: false,
            bulk_max_docs: 1000,
            bulk_max_bytes: 5 << 20,
            bulk_max_delay: Duration::from_millis(200),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(10),
            auth_failure_limit: 3,
            drop_old_indices: false,
        }
    }
}

impl fmt::Debug for EsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EsConfig")
            .field(
                "urls",
                &self.urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .field("index_prefix", &self.index_prefix)
            .field("auth", &self.auth)
            .field("ca_cert", &self.ca_cert)
            .field("tls_skip_verify", &self.tls_skip_verify)
            .field("bulk_max_docs", &self.bulk_max_docs)
            .field("bulk_max_bytes", &self.bulk_max_bytes)
            .field("bulk_max_delay", &self.bulk_max_delay)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry_initial", &self.retry_initial)
            .field("retry_max", &self.retry_max)
            .field("auth_failure_limit", &self.auth_failure_limit)
            .field("drop_old_indices", &self.drop_old_indices)
            .finish()
    }
}

/// Counters of one Elasticsearch sink.
#[derive(Debug, Default)]
pub struct EsMetrics {
    /// Bulk requests sent (every try).
    pub bulk_requests: AtomicU64,
    /// Index actions written.
    pub docs_indexed: AtomicU64,
    /// Delete actions done (including documents already gone).
    pub deletes: AtomicU64,
    /// Actions the server refused as stale (409): counted as written.
    pub version_conflicts: AtomicU64,
    /// Retries (of a whole request, or of its failed items).
    pub retries: AtomicU64,
    /// Actions sent to the dead-letter output.
    pub dead_lettered: AtomicU64,
    /// Failed requests and failed items (retried or not).
    pub errors: AtomicU64,
    /// Duration of the last bulk request, in microseconds.
    pub last_batch_latency_us: AtomicU64,
    /// Bulk body bytes sent (every try).
    pub bytes_sent: AtomicU64,
}

/// A point-in-time copy of [`EsMetrics`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EsMetricsSnapshot {
    /// See [`EsMetrics::bulk_requests`].
    pub bulk_requests: u64,
    /// See [`EsMetrics::docs_indexed`].
    pub docs_indexed: u64,
    /// See [`EsMetrics::deletes`].
    pub deletes: u64,
    /// See [`EsMetrics::version_conflicts`].
    pub version_conflicts: u64,
    /// See [`EsMetrics::retries`].
    pub retries: u64,
    /// See [`EsMetrics::dead_lettered`].
    pub dead_lettered: u64,
    /// See [`EsMetrics::errors`].
    pub errors: u64,
    /// See [`EsMetrics::last_batch_latency_us`].
    pub last_batch_latency_us: u64,
    /// See [`EsMetrics::bytes_sent`].
    pub bytes_sent: u64,
}

impl EsMetrics {
    /// The current values.
    pub fn snapshot(&self) -> EsMetricsSnapshot {
        EsMetricsSnapshot {
            bulk_requests: self.bulk_requests.load(Relaxed),
            docs_indexed: self.docs_indexed.load(Relaxed),
            deletes: self.deletes.load(Relaxed),
            version_conflicts: self.version_conflicts.load(Relaxed),
            retries: self.retries.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            errors: self.errors.load(Relaxed),
            last_batch_latency_us: self.last_batch_latency_us.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
        }
    }
}

/// Where one view is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EsIndex {
    /// The view.
    pub view: String,
    /// The name readers use: `index_prefix + view`.
    pub alias: String,
    /// The index holding the documents: `alias-FINGERPRINT`.
    pub physical: String,
    /// False when the server has no alias API and the sink writes to `physical` directly.
    pub aliased: bool,
}

/// The index mapping of a view (see the module documentation), as JSON text.
pub fn mapping_json(view: &ViewPlan) -> String {
    let mut out = String::from("{\"dynamic\":\"strict\",\"properties\":{");
    for (i, col) in view.output.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(&col.name, &mut out);
        out.push(':');
        out.push_str(&field_mapping(col.ty));
    }
    out.push_str("}}");
    out
}

/// Date-time formats matching `Value::DateTime`'s text (0, 3 or 6 fraction digits).
pub const DATETIME_FORMAT: &str =
    "yyyy-MM-dd HH:mm:ss||yyyy-MM-dd HH:mm:ss.SSS||yyyy-MM-dd HH:mm:ss.SSSSSS";

fn field_mapping(ty: Type) -> String {
    match ty {
        Type::Int => r#"{"type":"long"}"#.into(),
        Type::Dec { shown, .. } if shown <= 15 => {
            format!(
                r#"{{"type":"scaled_float","scaling_factor":{}}}"#,
                10u64.pow(shown as u32)
            )
        }
        Type::Dec { .. } => r#"{"type":"double"}"#.into(),
        Type::Date => r#"{"type":"date","format":"yyyy-MM-dd"}"#.into(),
        Type::DateTime => format!(r#"{{"type":"date","format":"{DATETIME_FORMAT}"}}"#),
        Type::Double => r#"{"type":"double"}"#.into(),
        // `[-]HH:MM:SS[.ffffff]`, possibly beyond 24 hours: not an Elasticsearch date.
        Type::Text | Type::Bytes | Type::Null | Type::Time => r#"{"type":"keyword"}"#.into(),
    }
}

/// The fingerprint of a view's physical index: FNV-1a 64 of its plan and mapping, 16 hex digits.
pub fn fingerprint(view: &ViewPlan, mapping: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let plan = format!("{view}");
    for b in plan.bytes().chain([0u8]).chain(mapping.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// True when `name` is a physical index of `alias`: `alias-` followed by 16 hex digits.
pub fn is_physical_of(name: &str, alias: &str) -> bool {
    name.strip_prefix(alias)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|fp| fp.len() == 16 && fp.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A URL without its `user:password@` part, for messages.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("");
                let _ = u.set_password(None);
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".into(),
    }
}

fn check_prefix(prefix: &str) -> anyhow::Result<()> {
    let bad = prefix
        .chars()
        .find(|c| c.is_ascii_uppercase() || "\\/*?\"<>| ,#:".contains(*c));
    if let Some(c) = bad {
        bail!(
            "index prefix `{prefix}` has `{c}`: Elasticsearch index names are lowercase without \\ / * ? \" < > | , # : or spaces"
        );
    }
    if prefix.starts_with(['-', '_', '+']) {
        bail!("index prefix `{prefix}` must not start with -, _ or +");
    }
    Ok(())
}

/// One rendered bulk action.
struct Item {
    /// The submitted time it is acknowledged with.
    ack_time: Time,
    /// Index of the view.
    view: usize,
    delete: bool,
    /// The action line and (for an index action) the document line, each ending in `\n`.
    lines: String,
}

enum Msg {
    Time(Time, Vec<Item>),
    Flush,
}

#[derive(Default)]
struct AckState {
    acked: Option<Time>,
    fatal: Option<String>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<AckState>,
    cond: Condvar,
}

impl Shared {
    fn fail(&self, msg: String) {
        tracing::error!("elasticsearch sink gave up: {msg}");
        let mut s = self.state.lock().expect("sink state lock");
        s.fatal.get_or_insert(msg);
        self.cond.notify_all();
    }

    fn ack(&self, t: Time) {
        let mut s = self.state.lock().expect("sink state lock");
        s.acked = Some(t);
        self.cond.notify_all();
    }
}

/// Per view: where its actions go.
#[derive(Clone)]
struct Target {
    /// Index actions: the alias (with `require_alias`) or, without alias support, the physical
    /// index.
    index: String,
    /// Delete actions: always the physical index.
    physical: String,
    require_alias: bool,
    /// For dead letters: `elasticsearch:ALIAS`.
    source: String,
}

/// An asynchronous, acknowledging Elasticsearch sink (see the module documentation).
pub struct ElasticsearchSink {
    tx: Option<mpsc::UnboundedSender<Msg>>,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    names: Names,
    targets: Vec<Target>,
    indices: Vec<EsIndex>,
    submitted: Option<Time>,
}

impl ElasticsearchSink {
    /// Connects (waiting up to [`EsConfig::connect_timeout`] for the server), prepares one index
    /// and alias per view, and starts the writer. Rejected actions go to `dead_letters`.
    pub fn connect(
        config: EsConfig,
        views: &[ViewPlan],
        dead_letters: Arc<Mutex<DeadLetters>>,
        metrics: Arc<EsMetrics>,
    ) -> anyhow::Result<ElasticsearchSink> {
        check_prefix(&config.index_prefix)?;
        if config.urls.is_empty() {
            bail!("no Elasticsearch URL given");
        }
        let label = config
            .urls
            .iter()
            .map(|u| redact_url(u))
            .collect::<Vec<_>>()
            .join(", ");
        let client = build_client(&config)
            .with_context(|| format!("cannot set up the Elasticsearch client for {label}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cdcflow-es")
            .enable_all()
            .build()
            .context("cannot start the Elasticsearch sink's runtime")?;
        let indices = runtime.block_on(setup(&client, &config, views, &label))?;
        let targets = indices
            .iter()
            .map(|i| Target {
                index: if i.aliased {
                    i.alias.clone()
                } else {
                    i.physical.clone()
                },
                physical: i.physical.clone(),
                require_alias: i.aliased,
                source: format!("elasticsearch:{}", i.alias),
            })
            .collect::<Vec<_>>();
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            client,
            label,
            bulk_max_docs: config.bulk_max_docs.max(1),
            bulk_max_bytes: config.bulk_max_bytes.max(1),
            bulk_max_delay: config.bulk_max_delay,
            request_timeout: config.request_timeout,
            retry_initial: config.retry_initial.max(Duration::from_millis(1)),
            retry_max: config.retry_max.max(config.retry_initial),
            auth_failure_limit: config.auth_failure_limit.max(1),
            sources: targets.iter().map(|t| t.source.clone()).collect(),
            aliases: indices.iter().map(|i| i.alias.clone()).collect(),
            dead_letters,
            metrics,
            shared: shared.clone(),
            pending: VecDeque::new(),
        };
        let task = runtime.spawn(writer.run(rx));
        let watch = shared.clone();
        runtime.spawn(async move {
            if let Err(e) = task.await
                && e.is_panic()
            {
                watch.fail("the Elasticsearch writer task panicked".into());
            }
        });
        Ok(ElasticsearchSink {
            tx: Some(tx),
            shared,
            runtime: Some(runtime),
            names: Names::of(views),
            targets,
            indices,
            submitted: None,
        })
    }

    /// Where each view (in view order) is written.
    pub fn indices(&self) -> &[EsIndex] {
        &self.indices
    }

    /// The acknowledged time, or the error the writer gave up with.
    fn check(&self) -> anyhow::Result<Option<Time>> {
        let s = self.shared.state.lock().expect("sink state lock");
        if let Some(f) = &s.fatal {
            bail!("elasticsearch sink failed: {f}");
        }
        Ok(s.acked)
    }

    fn render(&self, time: Time, c: &Change) -> Item {
        let t = &self.targets[c.view];
        let mut s = String::with_capacity(160);
        match &c.doc {
            Some(doc) => {
                s.push_str("{\"index\":{\"_index\":");
                write_json_str(&t.index, &mut s);
                s.push_str(",\"_id\":");
                write_json_str(&c.id, &mut s);
                let _ = write!(s, ",\"version\":{},\"version_type\":\"external\"", c.time);
                if t.require_alias {
                    s.push_str(",\"require_alias\":true");
                }
                s.push_str("}}\n");
                self.names.doc_json(c.view, doc, &mut s);
                s.push('\n');
            }
            None => {
                s.push_str("{\"delete\":{\"_index\":");
                write_json_str(&t.physical, &mut s);
                s.push_str(",\"_id\":");
                write_json_str(&c.id, &mut s);
                let _ = writeln!(
                    s,
                    ",\"version\":{},\"version_type\":\"external\"}}}}",
                    c.time
                );
            }
        }
        Item {
            ack_time: time,
            view: c.view,
            delete: c.doc.is_none(),
            lines: s,
        }
    }
}

impl Sink for ElasticsearchSink {
    fn submit(&mut self, time: Time, changes: &[Change]) -> anyhow::Result<()> {
        self.check()?;
        if let Some(s) = self.submitted
            && time < s
        {
            bail!("elasticsearch sink: time {time} submitted after time {s}");
        }
        let items = changes.iter().map(|c| self.render(time, c)).collect();
        let tx = self.tx.as_ref().expect("open until dropped");
        if tx.send(Msg::Time(time, items)).is_err() {
            self.check()?;
            bail!("elasticsearch sink: the writer stopped");
        }
        self.submitted = Some(time);
        Ok(())
    }

    fn acknowledged(&mut self) -> anyhow::Result<Option<Time>> {
        self.check()
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        let Some(target) = self.submitted else {
            self.check()?;
            return Ok(());
        };
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Flush);
        }
        let started = Instant::now();
        let mut s = self.shared.state.lock().expect("sink state lock");
        loop {
            if let Some(f) = &s.fatal {
                bail!("elasticsearch sink failed: {f}");
            }
            if s.acked.is_some_and(|a| a >= target) {
                return Ok(());
            }
            let (next, timeout) = self
                .shared
                .cond
                .wait_timeout(s, Duration::from_secs(10))
                .expect("sink state lock");
            s = next;
            if timeout.timed_out() {
                tracing::warn!(
                    "elasticsearch sink: flush still waiting after {:?} (acknowledged {:?} of {target})",
                    started.elapsed(),
                    s.acked
                );
            }
        }
    }
}

impl Drop for ElasticsearchSink {
    /// Stops the writer; what was not flushed is abandoned (call [`Sink::flush`] first).
    fn drop(&mut self) {
        self.tx = None;
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn build_client(config: &EsConfig) -> anyhow::Result<Elasticsearch> {
    let mut urls = Vec::new();
    let mut url_auth = None;
    for raw in &config.urls {
        let mut u = Url::parse(raw)
            .with_context(|| format!("bad Elasticsearch URL `{}`", redact_url(raw)))?;
        if !u.username().is_empty() {
            let user = percent_decode(u.username());
            let password = percent_decode(u.password().unwrap_or(""));
            url_auth.get_or_insert((user, password));
            let _ = u.set_username("");
            let _ = u.set_password(None);
        }
        urls.push(u);
    }
    let builder = if urls.len() == 1 {
        TransportBuilder::new(SingleNodeConnectionPool::new(urls.remove(0)))
    } else {
        TransportBuilder::new(MultiNodeConnectionPool::round_robin(urls, None))
    };
    let credentials = match &config.auth {
        EsAuth::None => url_auth.map(|(u, p)| Credentials::Basic(u, p)),
        EsAuth::Basic { user, password } => {
            Some(Credentials::Basic(user.clone(), password.clone()))
        }
        EsAuth::ApiKey { id, key } => Some(Credentials::ApiKey(id.clone(), key.clone())),
        EsAuth::EncodedApiKey(k) => Some(Credentials::EncodedApiKey(k.clone())),
        EsAuth::Bearer(t) => Some(Credentials::Bearer(t.clone())),
    };
    let mut builder = builder.timeout(config.request_timeout);
    if let Some(c) = credentials {
        builder = builder.auth(c);
    }
    if config.tls_skip_verify {
        builder = builder.cert_validation(CertificateValidation::None);
    } else if let Some(path) = &config.ca_cert {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the CA certificate file {}", path.display()))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            anyhow!(
                "cannot read the CA certificate file {}: {e}",
                path.display()
            )
        })?;
        builder = builder.cert_validation(CertificateValidation::Full(cert));
    }
    let transport = builder.build().map_err(|e| anyhow!("{e}"))?;
    Ok(Elasticsearch::new(transport))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One HTTP exchange: status and body text.
async fn request(
    client: &Elasticsearch,
    method: Method,
    path: &str,
    body: Option<String>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let resp = client
        .send(
            method,
            path,
            HeaderMap::new(),
            None::<&()>,
            body,
            Some(timeout.max(Duration::from_millis(1))),
        )
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status_code().as_u16();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    Ok((status, text))
}

/// The `type: reason` of an Elasticsearch error body (or the start of the text).
fn error_reason(body: &str) -> String {
    match serde_json::from_str::<Json>(body) {
        Ok(j) => match j.get("error") {
            Some(e) => describe_error(e),
            None => snippet(body),
        },
        Err(_) => snippet(body),
    }
}

fn describe_error(e: &Json) -> String {
    match e {
        Json::String(s) => s.clone(),
        Json::Object(o) => {
            let ty = o.get("type").and_then(Json::as_str).unwrap_or("error");
            let reason = o.get("reason").and_then(Json::as_str).unwrap_or("");
            let mut s = format!("{ty}: {reason}");
            if let Some(c) = o.get("caused_by") {
                s.push_str(" (caused by ");
                s.push_str(&describe_error(c));
                s.push(')');
            }
            s
        }
        other => other.to_string(),
    }
}

fn snippet(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

async fn wait_ready(client: &Elasticsearch, config: &EsConfig, label: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + config.connect_timeout;
    let mut tries = 0u32;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let per_try = left
            .min(config.request_timeout)
            .max(Duration::from_millis(50));
        tries += 1;
        let last =
            match tokio::time::timeout(per_try, request(client, Method::Get, "/", None, per_try))
                .await
            {
                Ok(Ok((200, body))) => {
                    let j: Json = serde_json::from_str(&body).unwrap_or(Json::Null);
                    tracing::info!(
                        "connected to {label}: {} {}",
                        j.pointer("/version/distribution")
                            .and_then(Json::as_str)
                            .unwrap_or("elasticsearch"),
                        j.pointer("/version/number")
                            .and_then(Json::as_str)
                            .unwrap_or("(unknown version)")
                    );
                    return Ok(());
                }
                Ok(Ok((s @ (401 | 403), body))) => bail!(
                    "Elasticsearch at {label} refused the credentials (HTTP {s}): {}",
                    error_reason(&body)
                ),
                Ok(Ok((s, body))) => format!("HTTP {s}: {}", error_reason(&body)),
                Ok(Err(e)) => e,
                Err(_) => format!("no answer within {per_try:?}"),
            };
        if Instant::now() >= deadline {
            bail!(
                "Elasticsearch at {label} is unreachable: no answer within {:?} ({tries} tries; last: {last})",
                config.connect_timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(200).min(left)).await;
    }
}

async fn setup(
    client: &Elasticsearch,
    config: &EsConfig,
    views: &[ViewPlan],
    label: &str,
) -> anyhow::Result<Vec<EsIndex>> {
    wait_ready(client, config, label).await?;
    let mut out = Vec::with_capacity(views.len());
    for v in views {
        out.push(
            prepare_index(client, config, v, label)
                .await
                .with_context(|| format!("view `{}` on Elasticsearch at {label}", v.name))?,
        );
    }
    Ok(out)
}

async fn prepare_index(
    client: &Elasticsearch,
    config: &EsConfig,
    view: &ViewPlan,
    label: &str,
) -> anyhow::Result<EsIndex> {
    let t = config.request_timeout;
    let io = |e: String| anyhow!("request to {label} failed: {e}");
    let mapping = mapping_json(view);
    let alias = format!("{}{}", config.index_prefix, view.name);
    let physical = format!("{alias}-{}", fingerprint(view, &mapping));

    // The physical index: create it, or check that an existing one is ours.
    let (s, _) = request(client, Method::Head, &format!("/{physical}"), None, t)
        .await
        .map_err(io)?;
    match s {
        200 => {
            let (s, body) = request(
                client,
                Method::Get,
                &format!("/{physical}/_mapping"),
                None,
                t,
            )
            .await
            .map_err(io)?;
            let j: Json = serde_json::from_str(&body).unwrap_or(Json::Null);
            let strict = j
                .get(&physical)
                .and_then(|m| m.pointer("/mappings/dynamic"))
                .and_then(Json::as_str)
                == Some("strict");
            if s != 200 || !strict {
                bail!(
                    "index `{physical}` exists but was not created by cdcflow (its mapping is not strict; HTTP {s}): \
                     delete it (DELETE /{physical}) and start again"
                );
            }
        }
        404 => {
            let body = format!("{{\"mappings\":{mapping}}}");
            let (s, resp) = request(client, Method::Put, &format!("/{physical}"), Some(body), t)
                .await
                .map_err(io)?;
            let already = s == 400 && resp.contains("resource_already_exists_exception");
            if !(200..300).contains(&s) && !already {
                bail!(
                    "cannot create index `{physical}` (HTTP {s}): {}",
                    error_reason(&resp)
                );
            }
            tracing::info!("created index {physical} for view {}", view.name);
        }
        401 | 403 => bail!("not allowed to read index `{physical}` (HTTP {s})"),
        s => bail!("cannot check index `{physical}`: HTTP {s}"),
    }

    // The alias: which indices hold it now?
    let (s, body) = request(client, Method::Get, &format!("/_alias/{alias}"), None, t)
        .await
        .map_err(io)?;
    let (holders, alias_api) = match s {
        200 => {
            let j: Json = serde_json::from_str(&body)
                .map_err(|e| anyhow!("unreadable answer to GET /_alias/{alias}: {e}"))?;
            let holders: Vec<String> = j
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            (holders, true)
        }
        404 if body.contains("missing") || body.contains("aliases_not_found") => (Vec::new(), true),
        401 | 403 => bail!("not allowed to read alias `{alias}` (HTTP {s})"),
        _ => (Vec::new(), false),
    };
    if holders.is_empty() {
        let (s, _) = request(client, Method::Head, &format!("/{alias}"), None, t)
            .await
            .map_err(io)?;
        if s == 200 {
            bail!(
                "an index named `{alias}` already exists and is not an alias. cdcflow writes view `{}` to \
                 index `{physical}` and points the alias `{alias}` at it. Delete `{alias}` (DELETE /{alias}) \
                 after saving what it holds, or choose another index prefix, then start again",
                view.name
            );
        }
    }
    let mut aliased = alias_api;
    if alias_api && holders != [physical.clone()] {
        let mut actions: Vec<Json> = holders
            .iter()
            .filter(|h| **h != physical)
            .map(|h| json!({"remove": {"index": h, "alias": alias}}))
            .collect();
        actions.push(json!({"add": {"index": physical, "alias": alias}}));
        let body = json!({ "actions": actions }).to_string();
        let (s, resp) = request(client, Method::Post, "/_aliases", Some(body), t)
            .await
            .map_err(io)?;
        let partial = serde_json::from_str::<Json>(&resp)
            .ok()
            .and_then(|j| j.get("errors").and_then(Json::as_bool))
            .unwrap_or(false);
        match s {
            200..=299 if !partial => tracing::info!(
                "alias {alias} -> {physical} (was on {})",
                if holders.is_empty() {
                    "nothing".to_string()
                } else {
                    holders.join(", ")
                }
            ),
            200..=299 => bail!(
                "moving alias `{alias}` to `{physical}` failed in part: {}",
                snippet(&resp)
            ),
            401 | 403 => bail!(
                "not allowed to move alias `{alias}` (HTTP {s}): {}",
                error_reason(&resp)
            ),
            400 | 404 | 405 | 501 if holders.is_empty() => {
                tracing::warn!(
                    "{label} refused the alias API (HTTP {s}: {}); writing view {} to index {physical} directly",
                    error_reason(&resp),
                    view.name
                );
                aliased = false;
            }
            _ => bail!(
                "cannot point alias `{alias}` at `{physical}` (HTTP {s}): {}",
                error_reason(&resp)
            ),
        }
    } else if !alias_api {
        tracing::warn!(
            "{label} has no alias API (GET /_alias answered HTTP {s}); writing view {} to index {physical} directly",
            view.name
        );
    }

    if config.drop_old_indices {
        let (s, body) = request(
            client,
            Method::Get,
            &format!("/_cat/indices/{alias}-*?format=json&h=index"),
            None,
            t,
        )
        .await
        .map_err(io)?;
        if s == 200 {
            let list: Vec<Json> = serde_json::from_str(&body).unwrap_or_default();
            for name in list
                .iter()
                .filter_map(|e| e.get("index").and_then(Json::as_str))
                .filter(|n| *n != physical && is_physical_of(n, &alias))
            {
                let (s, resp) = request(client, Method::Delete, &format!("/{name}"), None, t)
                    .await
                    .map_err(io)?;
                if (200..300).contains(&s) || s == 404 {
                    tracing::info!("deleted old index {name} of view {}", view.name);
                } else {
                    bail!(
                        "cannot delete old index `{name}` (HTTP {s}): {}",
                        error_reason(&resp)
                    );
                }
            }
        } else if s != 404 {
            bail!(
                "cannot list the indices `{alias}-*` (HTTP {s}): {}",
                error_reason(&body)
            );
        }
    }
    Ok(EsIndex {
        view: view.name.clone(),
        alias,
        physical,
        aliased,
    })
}

#[derive(Deserialize)]
struct BulkResponse {
    items: Vec<std::collections::BTreeMap<String, BulkItem>>,
}

#[derive(Deserialize, Debug, Clone)]
struct BulkItem {
    status: u16,
    #[serde(default)]
    error: Option<Json>,
}

/// What one bulk request came to.
#[derive(Debug)]
enum Outcome {
    /// The server answered for every item, in order.
    Items(Vec<BulkItem>),
    /// Retry the whole request.
    Transient(String),
    /// 401/403.
    Auth(String),
    /// Halve the request (413, or a 400 for the whole request).
    Split(String),
    /// Give up.
    Fatal(String),
}

/// What becomes of one item.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    Indexed,
    Deleted,
    Conflict,
    Retry(String),
    DeadLetter(String),
    Fatal(String),
}

fn item_error(it: &BulkItem) -> String {
    match &it.error {
        Some(e) => format!("HTTP {}: {}", it.status, describe_error(e)),
        None => format!("HTTP {}", it.status),
    }
}

fn error_type(it: &BulkItem) -> Option<&str> {
    it.error.as_ref()?.get("type")?.as_str()
}

fn classify(delete: bool, index: &str, it: &BulkItem) -> Class {
    match it.status {
        200..=299 if delete => Class::Deleted,
        200..=299 => Class::Indexed,
        409 => Class::Conflict,
        404 if error_type(it) == Some("index_not_found_exception") && !delete => {
            Class::Fatal(format!(
                "index `{index}` is gone (deleted while cdcflow runs?): {}; restart cdcflow to rebuild it",
                item_error(it)
            ))
        }
        404 if delete => Class::Deleted,
        401 | 403 => Class::Fatal(format!(
            "not allowed to write to `{index}`: {}",
            item_error(it)
        )),
        429 | 500..=599 => Class::Retry(item_error(it)),
        _ => Class::DeadLetter(item_error(it)),
    }
}

fn read_bulk_response(status: u16, body: &str, expected: usize) -> Outcome {
    match status {
        200..=299 => match serde_json::from_str::<BulkResponse>(body) {
            Ok(r) if r.items.len() == expected => Outcome::Items(
                r.items
                    .into_iter()
                    .map(|m| {
                        m.into_values().next().unwrap_or(BulkItem {
                            status: 500,
                            error: Some(Json::String("empty bulk item".into())),
                        })
                    })
                    .collect(),
            ),
            Ok(r) => Outcome::Transient(format!(
                "bulk response has {} items for {expected} actions",
                r.items.len()
            )),
            Err(e) => {
                Outcome::Transient(format!("unreadable bulk response ({e}): {}", snippet(body)))
            }
        },
        413 => Outcome::Split(format!(
            "HTTP 413 (request too large): {}",
            error_reason(body)
        )),
        400 => Outcome::Split(format!("HTTP 400: {}", error_reason(body))),
        401 | 403 => Outcome::Auth(format!("HTTP {status}: {}", error_reason(body))),
        408 | 429 | 500..=599 => {
            Outcome::Transient(format!("HTTP {status}: {}", error_reason(body)))
        }
        _ => Outcome::Fatal(format!(
            "bulk request answered HTTP {status}: {}",
            error_reason(body)
        )),
    }
}

struct Writer {
    client: Elasticsearch,
    label: String,
    bulk_max_docs: usize,
    bulk_max_bytes: usize,
    bulk_max_delay: Duration,
    request_timeout: Duration,
    retry_initial: Duration,
    retry_max: Duration,
    auth_failure_limit: u32,
    /// Per view: the dead-letter source name.
    sources: Vec<String>,
    /// Per view: its alias, for messages.
    aliases: Vec<String>,
    dead_letters: Arc<Mutex<DeadLetters>>,
    metrics: Arc<EsMetrics>,
    shared: Arc<Shared>,
    /// Submitted times not yet acknowledged, with their actions still outstanding.
    pending: VecDeque<(Time, usize)>,
}

struct Queue {
    items: VecDeque<Item>,
    bytes: usize,
    /// When the oldest queued item arrived.
    since: Option<Instant>,
    flush: bool,
    open: bool,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut q = Queue {
            items: VecDeque::new(),
            bytes: 0,
            since: None,
            flush: false,
            open: true,
        };
        loop {
            if q.items.is_empty() && q.open {
                match rx.recv().await {
                    Some(m) => self.accept(m, &mut q),
                    None => q.open = false,
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(m) => self.accept(m, &mut q),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        q.open = false;
                        break;
                    }
                }
            }
            if q.items.is_empty() {
                q.flush = false;
                if !q.open {
                    return;
                }
                continue;
            }
            let waited = q.since.map_or(Duration::MAX, |s| s.elapsed());
            let ready = q.items.len() >= self.bulk_max_docs
                || q.bytes >= self.bulk_max_bytes
                || waited >= self.bulk_max_delay
                || q.flush
                || !q.open;
            if !ready {
                match tokio::time::timeout(self.bulk_max_delay - waited, rx.recv()).await {
                    Ok(Some(m)) => self.accept(m, &mut q),
                    Ok(None) => q.open = false,
                    Err(_) => {}
                }
                continue;
            }
            let mut batch = Vec::new();
            let mut bytes = 0;
            while let Some(it) = q.items.front() {
                if !batch.is_empty()
                    && (batch.len() >= self.bulk_max_docs
                        || bytes + it.lines.len() > self.bulk_max_bytes)
                {
                    break;
                }
                bytes += it.lines.len();
                batch.push(q.items.pop_front().expect("front exists"));
            }
            q.bytes -= bytes;
            if q.items.is_empty() {
                q.since = None;
            }
            if let Err(msg) = self.write(batch).await {
                self.shared.fail(msg);
                return;
            }
        }
    }

    fn accept(&mut self, m: Msg, q: &mut Queue) {
        match m {
            Msg::Flush => q.flush = true,
            Msg::Time(t, items) => {
                match self.pending.back_mut() {
                    Some((last, n)) if *last == t => *n += items.len(),
                    _ => self.pending.push_back((t, items.len())),
                }
                if items.is_empty() {
                    self.advance();
                }
                for it in items {
                    q.bytes += it.lines.len();
                    q.items.push_back(it);
                }
                if !q.items.is_empty() {
                    q.since.get_or_insert_with(Instant::now);
                }
            }
        }
    }

    /// One action of `time` has its outcome.
    fn complete(&mut self, time: Time) {
        let i = self.pending.partition_point(|(t, _)| *t < time);
        if let Some((t, n)) = self.pending.get_mut(i)
            && *t == time
        {
            *n = n.saturating_sub(1);
        }
        self.advance();
    }

    fn advance(&mut self) {
        let mut acked = None;
        while let Some(&(t, 0)) = self.pending.front() {
            acked = Some(t);
            self.pending.pop_front();
        }
        if let Some(t) = acked {
            self.shared.ack(t);
        }
    }

    async fn backoff(&self, delay: &mut Duration, what: &str, actions: usize) {
        self.metrics.retries.fetch_add(1, Relaxed);
        tracing::warn!(
            "elasticsearch bulk request to {} failed ({what}); retrying {actions} actions in {:?}",
            self.label,
            *delay
        );
        tokio::time::sleep(*delay).await;
        *delay = (*delay * 2).min(self.retry_max);
    }

    fn dead_letter(&self, it: &Item, reason: &str) -> Result<(), String> {
        self.metrics.dead_lettered.fetch_add(1, Relaxed);
        let source = &self.sources[it.view];
        tracing::error!("{source}: action rejected: {reason}");
        self.dead_letters
            .lock()
            .map_err(|_| "dead-letter lock poisoned".to_string())?
            .reject_sink(source, reason, it.lines.trim_end())
            .map_err(|e| format!("cannot keep a rejected action: {e:#}"))
    }

    /// Writes one batch until every action has an outcome; `Err` = give up.
    async fn write(&mut self, batch: Vec<Item>) -> Result<(), String> {
        let mut chunks: VecDeque<Vec<Item>> = VecDeque::from([batch]);
        let mut delay = self.retry_initial;
        let mut auth_failures = 0u32;
        while let Some(chunk) = chunks.pop_front() {
            match self.send(&chunk).await {
                Outcome::Items(results) => {
                    auth_failures = 0;
                    let mut retry = Vec::new();
                    let mut why = None;
                    for (it, res) in chunk.into_iter().zip(results) {
                        match classify(it.delete, &self.aliases[it.view], &res) {
                            Class::Indexed => {
                                self.metrics.docs_indexed.fetch_add(1, Relaxed);
                            }
                            Class::Deleted => {
                                self.metrics.deletes.fetch_add(1, Relaxed);
                            }
                            Class::Conflict => {
                                self.metrics.version_conflicts.fetch_add(1, Relaxed);
                            }
                            Class::DeadLetter(reason) => {
                                self.metrics.errors.fetch_add(1, Relaxed);
                                self.dead_letter(&it, &reason)?;
                            }
                            Class::Retry(reason) => {
                                self.metrics.errors.fetch_add(1, Relaxed);
                                why.get_or_insert(reason);
                                retry.push(it);
                                continue;
                            }
                            Class::Fatal(msg) => {
                                self.metrics.errors.fetch_add(1, Relaxed);
                                return Err(msg);
                            }
                        }
                        self.complete(it.ack_time);
                    }
                    if retry.is_empty() {
                        delay = self.retry_initial;
                    } else {
                        let why = format!(
                            "{} items failed, first: {}",
                            retry.len(),
                            why.unwrap_or_default()
                        );
                        self.backoff(&mut delay, &why, retry.len()).await;
                        chunks.push_front(retry);
                    }
                }
                Outcome::Transient(why) => {
                    self.metrics.errors.fetch_add(1, Relaxed);
                    self.backoff(&mut delay, &why, chunk.len()).await;
                    chunks.push_front(chunk);
                }
                Outcome::Auth(why) => {
                    self.metrics.errors.fetch_add(1, Relaxed);
                    auth_failures += 1;
                    if auth_failures >= self.auth_failure_limit {
                        return Err(format!(
                            "{} refused the credentials {auth_failures} times in a row: {why}",
                            self.label
                        ));
                    }
                    self.backoff(&mut delay, &why, chunk.len()).await;
                    chunks.push_front(chunk);
                }
                Outcome::Split(why) => {
                    self.metrics.errors.fetch_add(1, Relaxed);
                    if chunk.len() == 1 {
                        let it = &chunk[0];
                        self.dead_letter(it, &why)?;
                        self.complete(it.ack_time);
                    } else {
                        tracing::warn!(
                            "elasticsearch bulk request of {} actions refused ({why}); splitting it in halves",
                            chunk.len()
                        );
                        let mut first = chunk;
                        let second = first.split_off(first.len() / 2);
                        chunks.push_front(second);
                        chunks.push_front(first);
                    }
                }
                Outcome::Fatal(why) => {
                    self.metrics.errors.fetch_add(1, Relaxed);
                    return Err(why);
                }
            }
        }
        Ok(())
    }

    async fn send(&self, chunk: &[Item]) -> Outcome {
        let mut body = String::with_capacity(chunk.iter().map(|i| i.lines.len()).sum());
        for it in chunk {
            body.push_str(&it.lines);
        }
        self.metrics.bulk_requests.fetch_add(1, Relaxed);
        self.metrics
            .bytes_sent
            .fetch_add(body.len() as u64, Relaxed);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        let started = Instant::now();
        let sent = self
            .client
            .send(
                Method::Post,
                "/_bulk",
                headers,
                None::<&()>,
                Some(body),
                Some(self.request_timeout),
            )
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return Outcome::Transient(format!("request failed: {e}")),
        };
        let status = resp.status_code().as_u16();
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => return Outcome::Transient(format!("reading the response failed: {e}")),
        };
        self.metrics
            .last_batch_latency_us
            .store(started.elapsed().as_micros() as u64, Relaxed);
        read_bulk_response(status, &text, chunk.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(status: u16, error: Option<Json>) -> BulkItem {
        BulkItem { status, error }
    }

    #[test]
    fn items_are_classified() {
        assert_eq!(classify(false, "v", &item(201, None)), Class::Indexed);
        assert_eq!(classify(true, "v", &item(200, None)), Class::Deleted);
        assert_eq!(classify(false, "v", &item(409, None)), Class::Conflict);
        assert_eq!(classify(true, "v", &item(409, None)), Class::Conflict);
        assert_eq!(classify(true, "v", &item(404, None)), Class::Deleted);
        let gone = json!({"type": "index_not_found_exception", "reason": "no such index [v]"});
        assert!(matches!(
            classify(false, "v", &item(404, Some(gone))),
            Class::Fatal(_)
        ));
        assert!(matches!(
            classify(false, "v", &item(429, None)),
            Class::Retry(_)
        ));
        assert!(matches!(
            classify(false, "v", &item(503, None)),
            Class::Retry(_)
        ));
        let bad = json!({"type": "mapper_parsing_exception", "reason": "failed to parse [n]",
                         "caused_by": {"type": "illegal_argument_exception", "reason": "abc"}});
        match classify(false, "v", &item(400, Some(bad))) {
            Class::DeadLetter(r) => {
                assert!(r.contains("HTTP 400: mapper_parsing_exception: failed to parse [n]"));
                assert!(r.contains("caused by illegal_argument_exception: abc"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(false, "v", &item(403, None)),
            Class::Fatal(_)
        ));
    }

    #[test]
    fn bulk_responses_are_read() {
        let body = r#"{"errors":true,"took":1,"items":[
            {"index":{"_index":"a","_id":"1","status":201}},
            {"index":{"_index":"a","_id":"2","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
            {"delete":{"_index":"a","_id":"3","status":404,"result":"not_found"}}]}"#;
        match read_bulk_response(200, body, 3) {
            Outcome::Items(v) => {
                assert_eq!(
                    v.iter().map(|i| i.status).collect::<Vec<_>>(),
                    [201, 429, 404]
                );
                assert!(matches!(classify(false, "a", &v[1]), Class::Retry(_)));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_bulk_response(200, body, 4),
            Outcome::Transient(_)
        ));
        assert!(matches!(
            read_bulk_response(200, "<html>", 1),
            Outcome::Transient(_)
        ));
        assert!(matches!(read_bulk_response(413, "", 2), Outcome::Split(_)));
        assert!(matches!(
            read_bulk_response(400, "{}", 2),
            Outcome::Split(_)
        ));
        assert!(matches!(
            read_bulk_response(429, "", 2),
            Outcome::Transient(_)
        ));
        assert!(matches!(
            read_bulk_response(502, "", 2),
            Outcome::Transient(_)
        ));
        assert!(matches!(read_bulk_response(401, "", 2), Outcome::Auth(_)));
        assert!(matches!(read_bulk_response(404, "", 2), Outcome::Fatal(_)));
    }

    #[test]
    fn physical_names_and_urls() {
        assert!(is_physical_of("p_v-0123456789abcdef", "p_v"));
        assert!(!is_physical_of("p_v-b-0123456789abcdef", "p_v"));
        assert!(!is_physical_of("p_v-0123", "p_v"));
        assert!(!is_physical_of("p_vx-0123456789abcdef", "p_v"));
        assert_eq!(
            redact_url("https://elastic:s3cret@es.example:9200/"),
            "https://es.example:9200/"
        );
        assert!(!format!("{:?}", EsAuth::Bearer("tok".into())).contains("tok"));
        let mut c = EsConfig::new("http://u:pw@h:1");
        c.auth = EsAuth::Basic {
            user: "u".into(),
            password: "pw2".into(),
        };
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("pw"), "{dbg}");
        assert_eq!(percent_decode("a%40b%"), "a@b%");
        assert!(check_prefix("ok-_1.").is_ok());
        assert!(check_prefix("Bad").is_err());
        assert!(check_prefix("_x").is_err());
    }

    #[test]
    fn field_mappings_follow_types() {
        assert_eq!(field_mapping(Type::Int), r#"{"type":"long"}"#);
        assert_eq!(
            field_mapping(Type::dec(2)),
            r#"{"type":"scaled_float","scaling_factor":100}"#
        );
        assert_eq!(
            field_mapping(Type::dec(0)),
            r#"{"type":"scaled_float","scaling_factor":1}"#
        );
        assert_eq!(
            field_mapping(Type::dec(15)),
            r#"{"type":"scaled_float","scaling_factor":1000000000000000}"#
        );
        assert_eq!(field_mapping(Type::dec(16)), r#"{"type":"double"}"#);
        assert_eq!(
            field_mapping(Type::Date),
            r#"{"type":"date","format":"yyyy-MM-dd"}"#
        );
        for t in [Type::Text, Type::Bytes, Type::Null] {
            assert_eq!(field_mapping(t), r#"{"type":"keyword"}"#);
        }
        let dt: Json = serde_json::from_str(&field_mapping(Type::DateTime)).unwrap();
        assert_eq!(dt["format"], DATETIME_FORMAT);
    }
}
