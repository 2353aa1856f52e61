//! The Elasticsearch sink against real servers of the Elasticsearch HTTP API.
//!
//! `CDCFLOW_TEST_ES_URL` names a noida-db server (it presents itself as Elasticsearch 8) and
//! `CDCFLOW_TEST_OPENSEARCH_URL` an osmem-server (OpenSearch API); each test runs against every
//! server given and is skipped, with a note, when none is. Outages and refused requests are made
//! by a small HTTP proxy in this file that sits between the sink and the server. Every test uses
//! its own index prefix and deletes its indices at the end.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cdcflow::decode::Row;
use cdcflow::schema::Catalog;
use cdcflow::sink::elasticsearch::{ElasticsearchSink, EsConfig, EsMetrics};
use cdcflow::sink::{Change, Names, Sink};
use cdcflow::source::DeadLetters;
use cdcflow::sql::expr::Type;
use cdcflow::sql::{Dataflows, ViewPlan};
use cdcflow::time::Time;
use cdcflow::value::{Decimal, Value};
use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::HeaderMap;
use elasticsearch::http::transport::Transport;
use serde_json::{Value as Json, json};

use crate::common::*;

/// The servers to test against: `(name, url)`.
fn servers() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (name, var) in [
        ("noida-db", "CDCFLOW_TEST_ES_URL"),
        ("osmem-server", "CDCFLOW_TEST_OPENSEARCH_URL"),
    ] {
        match std::env::var(var) {
            Ok(u) if !u.is_empty() => out.push((name, u)),
            _ => eprintln!("skipped on {name}: {var} is not set"),
        }
    }
    out
}

fn osmem() -> Option<String> {
    let u = std::env::var("CDCFLOW_TEST_OPENSEARCH_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if u.is_none() {
        eprintln!("skipped: CDCFLOW_TEST_OPENSEARCH_URL is not set (an osmem-server)");
    }
    u
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// An index prefix no other test (or earlier run) uses.
fn prefix(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "it-{tag}-{}-{nanos:x}-{}-",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A plain client for checking what the server holds.
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: Elasticsearch,
}

impl Http {
    pub fn new(url: &str) -> Http {
        Http {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: Elasticsearch::new(Transport::single_node(url).unwrap()),
        }
    }

    fn call(&self, method: Method, path: &str, body: Option<Json>) -> (u16, Json) {
        self.rt.block_on(async {
            let resp = self
                .client
                .send(
                    method,
                    path,
                    HeaderMap::new(),
                    None::<&()>,
                    body.map(|b| b.to_string()),
                    Some(Duration::from_secs(10)),
                )
                .await
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            let status = resp.status_code().as_u16();
            let text = resp.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(Json::Null))
        })
    }

    fn get(&self, path: &str) -> (u16, Json) {
        self.call(Method::Get, path, None)
    }

    fn exists(&self, index: &str) -> bool {
        self.call(Method::Head, &format!("/{index}"), None).0 == 200
    }

    /// Every document behind `index`: id -> `_source`.
    pub fn documents(&self, index: &str) -> BTreeMap<String, Json> {
        self.call(Method::Post, &format!("/{index}/_refresh"), None);
        let (s, j) = self.get(&format!("/{index}/_search?size=1000"));
        assert_eq!(s, 200, "search {index}: {j}");
        let hits = j["hits"]["hits"].as_array().unwrap();
        let docs: BTreeMap<String, Json> = hits
            .iter()
            .map(|h| (h["_id"].as_str().unwrap().to_string(), h["_source"].clone()))
            .collect();
        let (s, c) = self.get(&format!("/{index}/_count"));
        assert_eq!(s, 200, "count {index}: {c}");
        assert_eq!(
            c["count"].as_u64(),
            Some(docs.len() as u64),
            "_count of {index}"
        );
        docs
    }

    /// Indices whose names start with `prefix`.
    fn indices(&self, prefix: &str) -> Vec<String> {
        let (_, j) = self.get(&format!("/_cat/indices/{prefix}*?format=json&h=index"));
        let mut v: Vec<String> = j
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["index"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn cleanup(&self, prefix: &str) {
        for i in self.indices(prefix) {
            self.call(Method::Delete, &format!("/{i}"), None);
        }
    }
}

fn views() -> Vec<ViewPlan> {
    outbound().views
}

/// Views planned from SQL against the shipped schema: `(name, sql)`.
fn planned(views: &[(&str, &str)]) -> Vec<ViewPlan> {
    let catalog = Catalog::load(&root().join("dataflows/schema.sql")).unwrap();
    let sources: Vec<(String, String, String)> = views
        .iter()
        .map(|(n, s)| (format!("{n}.sql"), n.to_string(), s.to_string()))
        .collect();
    Dataflows::from_sources(catalog, &sources).unwrap().views
}

fn config(url: &str, prefix: &str) -> EsConfig {
    let mut c = EsConfig::new(url);
    c.index_prefix = prefix.into();
    c.bulk_max_delay = Duration::from_millis(10);
    c.retry_initial = Duration::from_millis(20);
    c.retry_max = Duration::from_millis(200);
    c.request_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(10);
    c
}

struct Running {
    sink: ElasticsearchSink,
    metrics: Arc<EsMetrics>,
    dead: Arc<Mutex<DeadLetters>>,
}

fn connect(c: EsConfig, views: &[ViewPlan]) -> Running {
    let metrics = Arc::new(EsMetrics::default());
    let dead = Arc::new(Mutex::new(DeadLetters::new(None)));
    let sink = ElasticsearchSink::connect(c, views, dead.clone(), metrics.clone())
        .unwrap_or_else(|e| panic!("connect: {e:#}"));
    Running {
        sink,
        metrics,
        dead,
    }
}

/// A document for `view` with values of its column types, varied by `n`.
fn doc(view: &ViewPlan, n: i64) -> Row {
    view.output
        .iter()
        .map(|c| match c.ty {
            Type::Int => Value::Int(n * 7 - 3),
            Type::Dec { scale: s, .. } => Value::Dec(Decimal::new(n as i128 * 1001 + 7, s)),
            Type::Text => Value::Text(format!("text {n} \"q\" ü")),
            Type::Bytes => Value::Bytes(vec![n as u8, 0xff]),
            Type::Date => Value::Date(20_500 + n as i32),
            Type::DateTime => Value::DateTime(
                1_772_400_000_000_000
                    + n * match n % 3 {
                        0 => 1_000_000,
                        1 => 1_000,
                        _ => 1,
                    },
            ),
            Type::Double => {
                Value::Double(cdcflow::value::F64::new(n as f64 * 0.1 - 1e-7).expect("finite"))
            }
            Type::Time => Value::Time(n * 3_600_000_123 - 86_400_000_000),
            Type::Null => Value::Null,
        })
        .collect()
}

fn upsert(view: usize, time: Time, id: &str, doc: Row) -> Change {
    Change {
        view,
        time,
        id: id.into(),
        doc: Some(doc),
    }
}

fn delete(view: usize, time: Time, id: &str) -> Change {
    Change {
        view,
        time,
        id: id.into(),
        doc: None,
    }
}

/// The expected documents after `times`, per view: id -> JSON.
fn expected(views: &[ViewPlan], times: &[Vec<Change>]) -> Vec<BTreeMap<String, Json>> {
    let names = Names::of(views);
    let mut out = vec![BTreeMap::new(); views.len()];
    for c in times.iter().flatten() {
        match &c.doc {
            Some(d) => {
                let mut s = String::new();
                names.doc_json(c.view, d, &mut s);
                out[c.view].insert(c.id.clone(), serde_json::from_str(&s).unwrap());
            }
            None => {
                out[c.view].remove(&c.id);
            }
        }
    }
    out
}

fn submit_all(sink: &mut ElasticsearchSink, times: &[Vec<Change>]) {
    for changes in times {
        sink.submit(changes[0].time, changes).unwrap();
    }
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Three times of upserts, updates and deletes for views 0 and 1, with awkward ids.
fn three_times(views: &[ViewPlan]) -> Vec<Vec<Change>> {
    let (a, b) = (&views[0], &views[1]);
    vec![
        vec![
            upsert(0, 1_000, "2026-03-02|DHL", doc(a, 1)),
            upsert(0, 1_000, "weird/id ?&#%|\\N", doc(a, 2)),
            upsert(1, 1_000, "2026-03-02|1|gadget", doc(b, 3)),
            upsert(1, 1_000, "ünï|x", doc(b, 4)),
        ],
        vec![
            upsert(0, 2_000, "2026-03-02|DHL", doc(a, 5)),
            delete(0, 2_000, "weird/id ?&#%|\\N"),
            upsert(1, 2_000, "2026-03-03|2|widget", doc(b, 6)),
            delete(1, 2_000, "never-written"),
        ],
        vec![
            upsert(0, 3_000, "weird/id ?&#%|\\N", doc(a, 7)),
            delete(1, 3_000, "ünï|x"),
            upsert(1, 3_000, "2026-03-02|1|gadget", doc(b, 8)),
        ],
    ]
}

fn assert_holds(http: &Http, run: &Running, views: &[ViewPlan], times: &[Vec<Change>]) {
    let want = expected(views, times);
    for (i, idx) in run.sink.indices().iter().enumerate().take(want.len()) {
        assert_eq!(
            http.documents(&idx.alias),
            want[i],
            "documents of {}",
            idx.alias
        );
    }
}

#[test]
fn es_upserts_and_deletes_of_two_views_land_exactly() {
    for (server, url) in servers() {
        let p = prefix("exact");
        let views = views();
        let http = Http::new(&url);
        let mut run = connect(config(&url, &p), &views[..2]);
        let times = three_times(&views);
        assert_eq!(run.sink.acknowledged().unwrap(), None);
        submit_all(&mut run.sink, &times);
        run.sink.flush().unwrap();
        assert_eq!(run.sink.acknowledged().unwrap(), Some(3_000), "{server}");
        assert_holds(&http, &run, &views, &times);
        let m = run.metrics.snapshot();
        assert_eq!((m.docs_indexed, m.deletes), (8, 3), "{server}: {m:?}");
        assert_eq!(
            (m.version_conflicts, m.dead_lettered, m.retries),
            (0, 0, 0),
            "{server}: {m:?}"
        );
        assert!(m.bytes_sent > 0 && m.bulk_requests >= 1);
        // A time without changes is acknowledged too.
        run.sink.submit(4_000, &[]).unwrap();
        run.sink.flush().unwrap();
        assert_eq!(run.sink.acknowledged().unwrap(), Some(4_000));
        drop(run);
        http.cleanup(&p);
    }
}

#[test]
fn es_stale_writes_are_version_conflicts() {
    // osmem-server, like real Elasticsearch, remembers the version of a deleted document;
    // noida-db does not (a stale write after a delete re-creates it there).
    let Some(url) = osmem() else { return };
    let p = prefix("stale");
    let views = views();
    let http = Http::new(&url);
    let v = &views[0];
    let mut newer = connect(config(&url, &p), &views[..1]);
    newer
        .sink
        .submit(
            5_000,
            &[
                upsert(0, 5_000, "a", doc(v, 50)),
                upsert(0, 5_000, "b", doc(v, 51)),
            ],
        )
        .unwrap();
    newer.sink.submit(6_000, &[delete(0, 6_000, "b")]).unwrap();
    newer.sink.flush().unwrap();
    drop(newer);
    // A second writer replays older times (as after a restart from an older checkpoint).
    let mut older = connect(config(&url, &p), &views[..1]);
    older
        .sink
        .submit(
            4_000,
            &[
                upsert(0, 4_000, "a", doc(v, 40)),
                upsert(0, 4_000, "b", doc(v, 41)),
            ],
        )
        .unwrap();
    older.sink.submit(4_500, &[delete(0, 4_500, "a")]).unwrap();
    older.sink.flush().unwrap();
    assert_eq!(older.sink.acknowledged().unwrap(), Some(4_500));
    let m = older.metrics.snapshot();
    assert_eq!(m.version_conflicts, 3, "{m:?}");
    assert_eq!(
        (m.docs_indexed, m.deletes, m.dead_lettered),
        (0, 0, 0),
        "{m:?}"
    );
    let want = expected(&views, &[vec![upsert(0, 5_000, "a", doc(v, 50))]]);
    assert_eq!(http.documents(&older.sink.indices()[0].alias), want[0]);
    drop(older);
    http.cleanup(&p);
}

#[test]
fn es_mapping_is_strict_and_typed() {
    for (server, url) in servers() {
        let p = prefix("mapping");
        let mut views = views();
        views.extend(planned(&[(
            "last_orders",
            "SELECT o.status, MAX(o.placed_at) AS last_placed, COUNT(*) AS n \
             FROM orders.orders o GROUP BY o.status",
        )]));
        let http = Http::new(&url);
        let mut run = connect(config(&url, &p), &views);
        let co = run.sink.indices()[0].clone();
        let (s, j) = http.get(&format!("/{}/_mapping", co.alias));
        assert_eq!(s, 200, "{server}: {j}");
        let m = &j[&co.physical]["mappings"];
        assert_eq!(m["dynamic"], "strict", "{server}: {j}");
        let props = &m["properties"];
        assert_eq!(props["day"]["type"], "date");
        assert_eq!(props["day"]["format"], "yyyy-MM-dd");
        assert_eq!(props["courier"]["type"], "keyword");
        assert_eq!(props["orders"]["type"], "long");
        assert_eq!(props["shipping_cost"]["type"], "scaled_float");
        assert_eq!(
            props["shipping_cost"]["scaling_factor"].as_f64(),
            Some(100.0)
        );
        let lo = run.sink.indices()[3].clone();
        let (_, j) = http.get(&format!("/{}/_mapping", lo.alias));
        let props = &j[&lo.physical]["mappings"]["properties"];
        assert_eq!(props["status"]["type"], "keyword");
        assert_eq!(props["n"]["type"], "long");
        assert_eq!(props["last_placed"]["type"], "date", "{server}: {j}");
        // Date-times with no, 3 and 6 fraction digits are all accepted.
        let v = &views[3];
        let changes: Vec<Change> = (0..3)
            .map(|n| upsert(3, 7_000, &format!("s{n}"), doc(v, 3 + n)))
            .collect();
        let texts: Vec<String> = changes
            .iter()
            .map(|c| c.doc.as_ref().unwrap().get(1).to_string())
            .collect();
        assert!(texts.iter().any(|t| t.len() == 19), "{texts:?}");
        assert!(texts.iter().any(|t| t.len() == 23), "{texts:?}");
        assert!(texts.iter().any(|t| t.len() == 26), "{texts:?}");
        run.sink.submit(7_000, &changes).unwrap();
        run.sink.flush().unwrap();
        let m = run.metrics.snapshot();
        assert_eq!((m.docs_indexed, m.dead_lettered), (3, 0), "{server}: {m:?}");
        let want = expected(&views, &[changes]);
        assert_eq!(http.documents(&lo.alias), want[3]);
        drop(run);
        http.cleanup(&p);
    }
}

/// What the proxy does.
#[derive(Default)]
pub(crate) struct Faults {
    /// Close every connection at once.
    pub(crate) down: bool,
    /// Statuses to answer the next bulk requests with, instead of forwarding them.
    bulk_statuses: VecDeque<u16>,
    /// Answer 413 to a bulk request of more actions than this.
    max_actions: Option<usize>,
    /// Answer 413 to a bulk request whose body contains this.
    refuse_containing: Option<String>,
    /// Bulk requests seen, and how many actions each had.
    bulk_sizes: Vec<usize>,
}

/// An HTTP/1.1 proxy to `upstream`, one request per connection, that injects [`Faults`].
pub(crate) struct Proxy {
    pub(crate) url: String,
    pub(crate) faults: Arc<Mutex<Faults>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Proxy {
    pub(crate) fn start(upstream: &str, faults: Faults) -> Proxy {
        let up = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults = Arc::new(Mutex::new(faults));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (faults.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (f, up) = (f.clone(), up.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &up, &f);
                });
            }
        });
        Proxy {
            url: format!("http://127.0.0.1:{port}"),
            faults,
            stop,
            port,
        }
    }

    pub(crate) fn set(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.faults.lock().unwrap());
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn read_head(s: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Ok((buf, rest));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn serve(mut client: TcpStream, upstream: &str, faults: &Mutex<Faults>) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    if faults.lock().unwrap().down {
        return client.shutdown(Shutdown::Both);
    }
    let (head, mut body) = read_head(&mut client)?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while body.len() < len {
        let mut chunk = vec![0u8; len - body.len()];
        let n = client.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if head.starts_with("POST /_bulk") {
        let text = String::from_utf8_lossy(&body);
        let actions = text
            .lines()
            .filter(|l| l.starts_with("{\"index\"") || l.starts_with("{\"delete\""))
            .count();
        let refuse = {
            let mut f = faults.lock().unwrap();
            f.bulk_sizes.push(actions);
            if f.down {
                return client.shutdown(Shutdown::Both);
            }
            if let Some(s) = f.bulk_statuses.pop_front() {
                Some(s)
            } else if f.max_actions.is_some_and(|m| actions > m)
                || f.refuse_containing
                    .as_ref()
                    .is_some_and(|s| text.contains(s.as_str()))
            {
                Some(413)
            } else {
                None
            }
        };
        if let Some(status) = refuse {
            let b = json!({"error": {"type": "injected", "reason": format!("injected {status}")}, "status": status})
                .to_string();
            write!(
                client,
                "HTTP/1.1 {status} Injected\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                b.len()
            )?;
            return client.shutdown(Shutdown::Both);
        }
    }
    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = String::new();
    for l in head.trim_end().lines() {
        if !l.to_ascii_lowercase().starts_with("connection:") {
            req.push_str(l);
            req.push_str("\r\n");
        }
    }
    req.push_str("connection: close\r\n\r\n");
    up.write_all(req.as_bytes())?;
    up.write_all(&body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    let (rhead, rbody) = match resp.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (
            String::from_utf8_lossy(&resp[..i]).into_owned(),
            &resp[i + 4..],
        ),
        None => (String::from_utf8_lossy(&resp).into_owned(), &[][..]),
    };
    let mut out = String::new();
    for l in rhead.lines() {
        if !l.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str("connection: close\r\n\r\n");
    client.write_all(out.as_bytes())?;
    client.write_all(rbody)?;
    client.shutdown(Shutdown::Both)
}

#[test]
fn es_outage_is_retried_and_acknowledged_only_after_landing() {
    for (server, url) in servers() {
        let p = prefix("outage");
        let views = views();
        let http = Http::new(&url);
        // The server is not reachable yet when the sink starts: connect waits for it.
        let proxy = Proxy::start(
            &url,
            Faults {
                down: true,
                ..Faults::default()
            },
        );
        let faults = proxy.faults.clone();
        let opener = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            faults.lock().unwrap().down = false;
        });
        let started = Instant::now();
        let mut run = connect(config(&proxy.url, &p), &views[..2]);
        assert!(started.elapsed() >= Duration::from_millis(1400), "{server}");
        opener.join().unwrap();
        let times = three_times(&views);
        run.sink.submit(1_000, &times[0]).unwrap();
        run.sink.flush().unwrap();
        assert_eq!(run.sink.acknowledged().unwrap(), Some(1_000));

        // Down mid-way: later times are held, retried, and acknowledged once they land.
        proxy.set(|f| f.down = true);
        run.sink.submit(2_000, &times[1]).unwrap();
        run.sink.submit(3_000, &times[2]).unwrap();
        wait_until("two retries", Duration::from_secs(10), || {
            run.metrics.snapshot().retries >= 2
        });
        assert_eq!(run.sink.acknowledged().unwrap(), Some(1_000), "{server}");
        assert_holds(&http, &run, &views, &times[..1]);
        proxy.set(|f| f.down = false);
        run.sink.flush().unwrap();
        assert_eq!(run.sink.acknowledged().unwrap(), Some(3_000), "{server}");
        assert_holds(&http, &run, &views, &times);
        let m = run.metrics.snapshot();
        assert_eq!(
            (m.docs_indexed, m.deletes, m.dead_lettered),
            (8, 3, 0),
            "{server}: {m:?}"
        );
        drop(run);
        drop(proxy);
        http.cleanup(&p);
    }
}

#[test]
fn es_refused_requests_are_retried_split_or_dead_lettered() {
    for (server, url) in servers() {
        let p = prefix("refused");
        let views = views();
        let http = Http::new(&url);
        let proxy = Proxy::start(
            &url,
            Faults {
                bulk_statuses: [503, 429].into(),
                max_actions: Some(3),
                refuse_containing: Some("HUGE".into()),
                ..Faults::default()
            },
        );
        let mut run = connect(config(&proxy.url, &p), &views[..1]);
        let v = &views[0];
        let mut changes: Vec<Change> = (0..8)
            .map(|n| upsert(0, 1_000, &format!("d{n}"), doc(v, n)))
            .collect();
        // Refused for its size even alone: dead-lettered once it stands alone.
        let mut huge = doc(v, 20);
        huge.replace(1, Value::Text("HUGE".into()));
        changes.push(upsert(0, 1_000, "huge", huge));
        // Refused by the server's mapping (text in a long field): dead-lettered.
        let mut bad = doc(v, 21);
        bad.replace(2, Value::Text("not a number".into()));
        changes.push(upsert(0, 1_000, "bad", bad));
        run.sink.submit(1_000, &changes).unwrap();
        run.sink.flush().unwrap();
        assert_eq!(run.sink.acknowledged().unwrap(), Some(1_000));
        let m = run.metrics.snapshot();
        assert_eq!((m.docs_indexed, m.dead_lettered), (8, 2), "{server}: {m:?}");
        assert_eq!(m.retries, 2, "{server}: {m:?}");
        let sizes = proxy.faults.lock().unwrap().bulk_sizes.clone();
        assert_eq!(&sizes[..3], &[10, 10, 10], "{server}: {sizes:?}");
        assert!(sizes[3..].iter().all(|n| *n <= 5), "{server}: {sizes:?}");
        let dead = run.dead.lock().unwrap();
        let alias = &run.sink.indices()[0].alias;
        assert_eq!(dead.rejected.len(), 2);
        for r in &dead.rejected {
            assert_eq!(r.source, format!("elasticsearch:{alias}"));
            assert_eq!(r.line, 0);
        }
        let huge = dead
            .rejected
            .iter()
            .find(|r| r.record.contains("HUGE"))
            .unwrap();
        assert!(huge.error.contains("413"), "{}", huge.error);
        let bad = dead
            .rejected
            .iter()
            .find(|r| r.record.contains("\"bad\""))
            .unwrap();
        assert!(bad.error.contains("HTTP 400"), "{}", bad.error);
        assert!(bad.record.contains("not a number"));
        drop(dead);
        let want = expected(&views, &[changes[..8].to_vec()]);
        assert_eq!(http.documents(alias), want[0], "{server}");
        drop(run);
        drop(proxy);
        http.cleanup(&p);
    }
}

#[test]
fn es_changed_view_gets_new_index_and_alias_moves() {
    for (server, url) in servers() {
        let p = prefix("moved");
        let http = Http::new(&url);
        let original = views();
        let v1 = &original[1];
        let mut run = connect(config(&url, &p), &original);
        run.sink
            .submit(9_000, &[upsert(1, 9_000, "x", doc(v1, 1))])
            .unwrap();
        run.sink.flush().unwrap();
        let old = run.sink.indices()[1].clone();
        let unchanged = run.sink.indices()[0].clone();
        drop(run);

        // The same view name, another definition.
        let sql = std::fs::read_to_string(root().join("dataflows/units_shipped.sql"))
            .unwrap()
            .replace("'shipped'", "'returned'");
        let changed = planned(&[
            (
                "courier_orders",
                &std::fs::read_to_string(root().join("dataflows/courier_orders.sql")).unwrap(),
            ),
            ("units_shipped", &sql),
        ]);
        let mut run = connect(config(&url, &p), &changed);
        let new = run.sink.indices()[1].clone();
        assert_eq!(new.alias, old.alias);
        assert_ne!(new.physical, old.physical, "{server}");
        assert_eq!(
            run.sink.indices()[0],
            unchanged,
            "an unchanged view keeps its index"
        );
        let (_, j) = http.get(&format!("/_alias/{}", new.alias));
        assert_eq!(
            j.as_object().unwrap().keys().collect::<Vec<_>>(),
            [&new.physical],
            "{server}: {j}"
        );
        assert!(http.exists(&old.physical), "kept without drop_old_indices");
        // An older time than the old index's documents is not blocked by their versions.
        run.sink
            .submit(5_000, &[upsert(1, 5_000, "x", doc(&changed[1], 2))])
            .unwrap();
        run.sink.flush().unwrap();
        assert_eq!(run.metrics.snapshot().docs_indexed, 1);
        let want = expected(
            &changed,
            &[vec![upsert(1, 5_000, "x", doc(&changed[1], 2))]],
        );
        assert_eq!(http.documents(&new.alias), want[1]);
        drop(run);

        let mut c = config(&url, &p);
        c.drop_old_indices = true;
        let run = connect(c, &changed);
        assert!(!http.exists(&old.physical), "{server}: dropped");
        assert!(http.exists(&new.physical));
        drop(run);
        http.cleanup(&p);
    }
}

#[test]
fn es_concrete_index_with_the_alias_name_is_refused() {
    for (server, url) in servers() {
        let p = prefix("concrete");
        let http = Http::new(&url);
        let views = views();
        let alias = format!("{p}{}", views[0].name);
        let (s, j) = http.call(Method::Put, &format!("/{alias}"), Some(json!({})));
        assert_eq!(s, 200, "{j}");
        let err = ElasticsearchSink::connect(
            config(&url, &p),
            &views[..1],
            Arc::new(Mutex::new(DeadLetters::new(None))),
            Arc::new(EsMetrics::default()),
        )
        .err()
        .unwrap_or_else(|| panic!("{server}: connect must refuse"));
        let msg = format!("{err:#}");
        assert!(
            msg.contains("is not an alias") && msg.contains(&format!("DELETE /{alias}")),
            "{msg}"
        );
        http.cleanup(&p);
    }
}

#[test]
fn es_deleted_index_makes_the_sink_give_up() {
    for (server, url) in servers() {
        let p = prefix("deleted");
        let http = Http::new(&url);
        let views = views();
        let mut run = connect(config(&url, &p), &views[..1]);
        let idx = run.sink.indices()[0].clone();
        assert!(idx.aliased, "{server} has aliases");
        let (s, _) = http.call(Method::Delete, &format!("/{}", idx.physical), None);
        assert_eq!(s, 200);
        run.sink
            .submit(1_000, &[upsert(0, 1_000, "a", doc(&views[0], 1))])
            .unwrap();
        let err = run.sink.flush().unwrap_err();
        assert!(format!("{err:#}").contains("is gone"), "{server}: {err:#}");
        assert!(run.sink.acknowledged().is_err());
        assert!(run.sink.submit(2_000, &[]).is_err());
        assert!(
            !http.exists(&idx.alias),
            "{server}: no index was auto-created under the alias"
        );
        drop(run);
        http.cleanup(&p);
    }
}

#[test]
fn es_unreachable_server_fails_connect_naming_the_url() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = EsConfig::new(format!("http://elastic:s3cret@127.0.0.1:{port}"));
    c.connect_timeout = Duration::from_millis(600);
    let started = Instant::now();
    let err = ElasticsearchSink::connect(
        c,
        &views(),
        Arc::new(Mutex::new(DeadLetters::new(None))),
        Arc::new(EsMetrics::default()),
    )
    .err()
    .expect("nothing listens there");
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("http://127.0.0.1:{port}/")), "{msg}");
    assert!(msg.contains("unreachable"), "{msg}");
    assert!(
        !msg.contains("s3cret") && !msg.contains("elastic:"),
        "{msg}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A noida-db server this test starts and stops itself (`CDCFLOW_TEST_NOIDA_BIN` names the
/// binary inside the noida_db package), on a free port with a data directory of its own.
struct Noida {
    bin: String,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<std::process::Child>,
}

impl Noida {
    fn start(&mut self) {
        let child = std::process::Command::new(&self.bin)
            .args(["start", "--data-dir"])
            .arg(self.dir.path())
            .args([
                "--host",
                "127.0.0.1",
                "--only",
                "elasticsearch",
                "--elasticsearch-port",
            ])
            .arg(self.port.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("noida-db starts");
        self.child = Some(child);
        wait_until("noida-db to listen", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
    }

    /// Stops it with SIGTERM (it saves its data) and waits for it to exit.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }
}

impl Drop for Noida {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn es_real_server_restart_loses_nothing() {
    let Ok(bin) = std::env::var("CDCFLOW_TEST_NOIDA_BIN") else {
        eprintln!("skipped: CDCFLOW_TEST_NOIDA_BIN is not set (the noida-db binary)");
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Noida {
        bin,
        dir: tempfile::tempdir().unwrap(),
        port,
        child: None,
    };
    server.start();
    let url = format!("http://127.0.0.1:{port}");
    let views = views();
    let mut run = connect(config(&url, "restart-"), &views[..2]);
    let times = three_times(&views);
    run.sink.submit(1_000, &times[0]).unwrap();
    run.sink.flush().unwrap();
    server.stop();
    run.sink.submit(2_000, &times[1]).unwrap();
    run.sink.submit(3_000, &times[2]).unwrap();
    wait_until("two retries", Duration::from_secs(10), || {
        run.metrics.snapshot().retries >= 2
    });
    assert_eq!(run.sink.acknowledged().unwrap(), Some(1_000));
    server.start();
    run.sink.flush().unwrap();
    assert_eq!(run.sink.acknowledged().unwrap(), Some(3_000));
    assert_holds(&Http::new(&url), &run, &views, &times);
}
