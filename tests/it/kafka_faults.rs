//! `cdcflow run` under faults: Elasticsearch unreachable for a while, the Kafka broker
//! restarted mid-run, a two-process timely cluster, and a corpus of bad records read from Kafka.
//!
//! Needs the services of `scripts/services.sh start` (`CDCFLOW_TEST_KAFKA`, `CDCFLOW_TEST_ES_URL`,
//! `CDCFLOW_TEST_TANSU_BIN`); each test is skipped with a notice when what it needs is not set.
//! The broker-restart test runs a tansu broker of its own (own port, own directory), so that
//! restarting it does not disturb other tests using the shared one.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cdcflow::sql::Dataflows;
use cdcflow::workload::TxMetadata;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value as Json;

use super::elasticsearch::{Faults, Http, Proxy};
use super::kafka::{
    JsonState, as_json, assert_same, broker, cdcflow, create_topics, es_url, expected, lines,
    prefix, produce, read_indices, regex_escape, wait, workload,
};
use crate::common::{outbound, root};

/// A child process killed (SIGKILL) when dropped, so that a failing test leaves nothing behind.
pub(crate) struct Guard {
    child: Option<Child>,
    log: PathBuf,
    what: &'static str,
}

impl Guard {
    pub(crate) fn new(child: Child, log: &Path, what: &'static str) -> Guard {
        Guard {
            child: Some(child),
            log: log.to_path_buf(),
            what,
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics (with its log) if the process has exited.
    pub(crate) fn assert_running(&mut self) {
        if let Some(c) = self.child.as_mut()
            && let Some(status) = c.try_wait().unwrap()
        {
            panic!("{} exited early ({status}):\n{}", self.what, self.log());
        }
    }

    /// Sends SIGTERM and waits (at most `limit`) for a successful exit.
    pub(crate) fn terminate(&mut self, limit: Duration) {
        let child = self.child.take().expect("running");
        sigterm(&child);
        wait(child, limit, &self.log);
    }

    /// Whether the process has exited (it is reaped then).
    pub(crate) fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().unwrap().is_some())
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub(crate) fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        let _ = child.wait();
    }

    /// Waits (at most `limit`) for the process to exit by itself, successfully.
    pub(crate) fn finish(&mut self, limit: Duration) {
        wait(self.child.take().expect("running"), limit, &self.log);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM {}", child.id());
}

/// A port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The final documents of a change log that is still being written: a last line without its
/// newline is left for later.
fn settled_log(d: &Dataflows, path: &Path) -> JsonState {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let names = cdcflow::sink::Names::of(&d.views);
    let mut state = JsonState::new();
    for line in complete.lines() {
        let j: Json = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let view = names
            .views
            .iter()
            .position(|(v, _)| v == j["view"].as_str().unwrap())
            .unwrap();
        let id = j["id"].as_str().unwrap().to_string();
        if j["op"] == "upsert" {
            state.insert((view, id), j["doc"].clone());
        } else {
            state.remove(&(view, id));
        }
    }
    state
}

/// Waits until the change log holds `want`, while `run` keeps running.
fn wait_for_log(run: &mut Guard, d: &Dataflows, out: &Path, want: &JsonState, limit: Duration) {
    let started = Instant::now();
    loop {
        let got = settled_log(d, out);
        if &got == want {
            return;
        }
        run.assert_running();
        if started.elapsed() > limit {
            eprintln!("{}", run.log());
            assert_same("change log (timed out waiting)", &got, want);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The number after `retries: ` in the run's summary (the Elasticsearch sink's metrics).
fn es_retries(stderr: &str) -> u64 {
    let at = stderr
        .rfind("retries: ")
        .unwrap_or_else(|| panic!("no Elasticsearch metrics in the summary:\n{stderr}"));
    stderr[at + 9..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn to_strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn kafka_faults_elasticsearch_down_for_a_while() {
    let Some(brokers) = broker() else { return };
    let Some(es) = es_url() else {
        eprintln!("skipped: CDCFLOW_TEST_ES_URL is not set (scripts/services.sh start)");
        return;
    };
    let d = outbound();
    let p = prefix("esdown");
    let w = workload(300, 21, TxMetadata::Separate);
    create_topics(&brokers, &d, &p);
    let rows: Vec<&[u8]> = lines(&w.rows).collect();
    let markers: Vec<&[u8]> = lines(&w.markers).collect();
    let (half, mhalf) = (rows.len() / 2, markers.len() / 2);
    produce(&brokers, &d, &p, &rows[..half], &markers[..mhalf]);
    // The sink must reach the server at start; the outage comes later, through this proxy.
    let proxy = Proxy::start(&es, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("changes.jsonl");
    let log = dir.path().join("stderr.log");
    let topics = format!("{}\\..*", regex_escape(&p));
    let index_prefix = format!("{}-", p.to_ascii_lowercase());
    let args = [
        "run",
        "--kafka",
        &brokers,
        "--topics",
        &topics,
        "--group",
        &p,
        "--workers",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--idle-timeout-ms",
        "500",
        "--elasticsearch",
        &proxy.url,
        "--index-prefix",
        &index_prefix,
    ];
    let mut run = Guard::new(cdcflow(&args, &log), &log, "cdcflow run");
    wait_until(
        "the first changes in the log",
        Duration::from_secs(60),
        || {
            run.assert_running();
            !settled_log(&d, &out).is_empty()
        },
    );
    // Elasticsearch unreachable for about 3 s while the second half arrives.
    proxy.set(|f| f.down = true);
    let down_at = Instant::now();
    produce(&brokers, &d, &p, &rows[half..], &markers[mhalf..]);
    std::thread::sleep(Duration::from_secs(3).saturating_sub(down_at.elapsed()));
    proxy.set(|f| f.down = false);
    let want = as_json(&d, &expected(&d, &w));
    assert!(!want.is_empty());
    wait_for_log(&mut run, &d, &out, &want, Duration::from_secs(90));
    // SIGTERM finishes the current time and flushes the sinks: everything has landed then.
    run.terminate(Duration::from_secs(60));
    let stderr = run.log();
    assert_same("change log", &settled_log(&d, &out), &want);
    assert_same(
        "indices after the outage",
        &read_indices(&d, &es, &index_prefix),
        &want,
    );
    assert!(
        es_retries(&stderr) > 0,
        "the outage made the sink retry:\n{stderr}"
    );
    assert!(stderr.contains("(0 incomplete)"), "{stderr}");
    Http::new(&es).cleanup(&index_prefix);
}

// ---------------------------------------------------------------------------------------------

/// A tansu broker of this test's own: its own port and directory (sqlite store `tansu.db`
/// there; tansu refuses an absolute sqlite path, hence the working directory).
struct Tansu {
    bin: String,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Tansu {
    fn new(bin: String) -> Tansu {
        Tansu {
            bin,
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            child: None,
        }
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .unwrap();
        let child = Command::new(&self.bin)
            .current_dir(self.dir.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
            ])
            .arg(&url)
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        let port = self.port;
        let log = self.dir.path().join("tansu.log");
        let child = self.child.as_mut().unwrap();
        wait_until("tansu to listen", Duration::from_secs(20), || {
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("tansu exited at start ({status}):\n{log}");
            }
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// SIGTERM, then waits for it to exit (SIGKILL after 10 s).
    fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        sigterm(&c);
        let started = Instant::now();
        while c.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                eprintln!("tansu did not stop in 10 s after SIGTERM; killing it");
                let _ = c.kill();
                let _ = c.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn kafka_faults_broker_restart_resumes() {
    let Some(bin) = std::env::var("CDCFLOW_TEST_TANSU_BIN")
        .ok()
        .filter(|b| !b.is_empty())
    else {
        eprintln!("skipped: CDCFLOW_TEST_TANSU_BIN is not set (scripts/services.sh start)");
        return;
    };
    let mut tansu = Tansu::new(bin);
    tansu.start();
    let brokers = tansu.brokers();
    let d = outbound();
    let p = prefix("brk");
    let w = workload(300, 22, TxMetadata::Separate);
    create_topics(&brokers, &d, &p);
    let rows: Vec<&[u8]> = lines(&w.rows).collect();
    let markers: Vec<&[u8]> = lines(&w.markers).collect();
    let (half, mhalf) = (rows.len() / 2, markers.len() / 2);
    produce(&brokers, &d, &p, &rows[..half], &markers[..mhalf]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("changes.jsonl");
    let log = dir.path().join("stderr.log");
    let topics = format!("{}\\..*", regex_escape(&p));
    let index_prefix = format!("{}-", p.to_ascii_lowercase());
    let es = es_url();
    let mut args = to_strings(&[
        "run",
        "--kafka",
        &brokers,
        "--topics",
        &topics,
        "--group",
        &p,
        "--workers",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--idle-timeout-ms",
        "500",
    ]);
    if let Some(url) = &es {
        args.extend(to_strings(&[
            "--elasticsearch",
            url,
            "--index-prefix",
            &index_prefix,
        ]));
    }
    let mut run = Guard::new(cdcflow(&strs(&args), &log), &log, "cdcflow run");
    wait_until(
        "the first changes in the log",
        Duration::from_secs(60),
        || {
            run.assert_running();
            !settled_log(&d, &out).is_empty()
        },
    );
    // Restart the broker mid-run (same store), then produce the rest.
    tansu.stop();
    std::thread::sleep(Duration::from_millis(1000));
    run.assert_running();
    tansu.start();
    produce(&brokers, &d, &p, &rows[half..], &markers[mhalf..]);
    let want = as_json(&d, &expected(&d, &w));
    assert!(!want.is_empty());
    wait_for_log(&mut run, &d, &out, &want, Duration::from_secs(90));
    run.terminate(Duration::from_secs(60));
    let stderr = run.log();
    assert_same(
        "change log across a broker restart",
        &settled_log(&d, &out),
        &want,
    );
    if let Some(url) = &es {
        assert_same(
            "indices across a broker restart",
            &read_indices(&d, url, &index_prefix),
            &want,
        );
        Http::new(url).cleanup(&index_prefix);
    }
    assert!(stderr.contains("(0 incomplete)"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------

/// Removes ANSI escape sequences (`ESC [ ... letter`) from a log.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The partitions each worker was assigned, from the "assigned Kafka partitions" lines of a
/// log (a worker logs its whole assignment each time it grows: the last line counts).
fn assignments(stderr: &str) -> BTreeMap<usize, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for line in strip_ansi(stderr).lines() {
        if !line.contains("assigned Kafka partitions") {
            continue;
        }
        let worker: usize = line
            .split("worker=")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no worker in `{line}`"));
        let list = line
            .split("partitions=")
            .nth(1)
            .unwrap_or_else(|| panic!("no partitions in `{line}`"));
        // A Debug-printed `Vec<String>` (the names themselves end in `]`).
        let end = list.find("\"]").map_or(2, |i| i + 2);
        let parts: BTreeSet<String> = serde_json::from_str(&list[..end])
            .unwrap_or_else(|e| panic!("partitions in `{line}`: {e}"));
        out.insert(worker, parts);
    }
    out
}

/// Both processes' logs, for failure messages.
fn cluster_logs(runs: &[Guard]) -> String {
    runs.iter()
        .enumerate()
        .map(|(i, r)| format!("--- process {i}:\n{}", r.log()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Panics (with both logs) if a process of the cluster has failed.
fn assert_none_failed(runs: &mut [Guard]) {
    for i in 0..runs.len() {
        let status = runs[i].child.as_mut().and_then(|c| c.try_wait().unwrap());
        if let Some(status) = status
            && !status.success()
        {
            panic!(
                "cluster process {i} failed ({status}):\n{}",
                cluster_logs(runs)
            );
        }
    }
}

/// The arguments of process `i` of a two-process cluster.
fn cluster_args(brokers: &str, p: &str, hosts: &str, i: usize, out: &Path) -> Vec<String> {
    let topics = format!("{}\\..*", regex_escape(p));
    to_strings(&[
        "run",
        "--kafka",
        brokers,
        "--topics",
        &topics,
        "--group",
        p,
        "--workers",
        "2",
        "--processes",
        "2",
        "--process",
        &i.to_string(),
        "--hosts",
        hosts,
        "--out",
        out.to_str().unwrap(),
        "--exit-when-idle-ms",
        "4000",
        "--idle-timeout-ms",
        "500",
    ])
}

/// Two processes of two workers each consume the same topics: every partition is read by
/// exactly one of the four workers, process 0 (worker 0 hosts the sink) writes every view's
/// final state, and both stop by themselves once idle, having agreed on one stop frontier and
/// committed every partition's offset to its end. (Regression: a graceful stop was agreed only
/// within each process, so a cluster never stopped.)
#[test]
fn kafka_faults_cluster_two_processes() {
    let Some(brokers) = broker() else { return };
    let d = outbound();
    let p = prefix("cluster");
    let w = workload(300, 23, TxMetadata::Separate);
    create_topics(&brokers, &d, &p);
    let rows: Vec<&[u8]> = lines(&w.rows).collect();
    let markers: Vec<&[u8]> = lines(&w.markers).collect();
    produce(&brokers, &d, &p, &rows, &markers);
    let dir = tempfile::tempdir().unwrap();
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", free_port(), free_port());
    let outs: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("changes.p{i}.jsonl")))
        .collect();
    let mut runs: Vec<Guard> = (0..2)
        .map(|i| {
            let log = dir.path().join(format!("stderr.p{i}.log"));
            let args = cluster_args(&brokers, &p, &hosts, i, &outs[i]);
            Guard::new(cdcflow(&strs(&args), &log), &log, "cdcflow run")
        })
        .collect();
    // Process 0 (it hosts worker 0, the sink) writes every view's final state.
    let want = as_json(&d, &expected(&d, &w));
    assert!(!want.is_empty());
    let started = Instant::now();
    loop {
        assert_none_failed(&mut runs);
        let got = settled_log(&d, &outs[0]);
        if got == want {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            eprintln!("{}", cluster_logs(&runs));
            assert_same("process 0's change log (timed out waiting)", &got, &want);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        std::fs::metadata(&outs[1]).map_or(true, |m| m.len() == 0),
        "process 1 wrote a change log"
    );
    // Every partition read by exactly one of the 4 workers of the cluster.
    let mut by_worker: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        for (worker, parts) in assignments(&r.log()) {
            assert!(
                worker / 2 == i,
                "process {i} logged worker {worker} (its workers are {} and {})",
                2 * i,
                2 * i + 1
            );
            by_worker.insert(worker, parts);
        }
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (worker, parts) in &by_worker {
        for part in parts {
            if let Some(other) = seen.insert(part.clone(), *worker) {
                panic!("{part} assigned to workers {other} and {worker}");
            }
        }
    }
    let pre = p.as_str();
    let mut want_parts: BTreeSet<String> = d
        .catalog
        .tables
        .iter()
        .flat_map(|t| (0..3).map(move |n| format!("{pre}.{}.{}[{n}]", t.db, t.name)))
        .collect();
    want_parts.insert(format!("{p}.transaction[0]"));
    let got_parts: BTreeSet<String> = seen.keys().cloned().collect();
    assert_eq!(got_parts, want_parts, "assignments {by_worker:?}");
    assert_eq!(
        by_worker.keys().copied().collect::<Vec<_>>(),
        vec![0, 1, 2, 3],
        "every worker of the cluster reads: {by_worker:?}"
    );
    // Both stop by themselves once idle (--exit-when-idle-ms), successfully.
    let started = Instant::now();
    while runs.iter_mut().any(|r| {
        r.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }) {
        assert_none_failed(&mut runs);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the cluster did not stop within 60 s of completing its work:\n{}",
            cluster_logs(&runs)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_none_failed(&mut runs);
    let stderr0 = runs[0].log();
    assert!(
        stderr0.contains("(0 incomplete)"),
        "every transaction completes: {stderr0}"
    );
    // The agreed stop covered everything: the group's offsets are at the end of every partition.
    let mut topics: Vec<(String, i32)> = d
        .catalog
        .tables
        .iter()
        .map(|t| (format!("{p}.{}.{}", t.db, t.name), 3))
        .collect();
    topics.push((format!("{p}.transaction"), 1));
    for (topic, n) in topics {
        for part in 0..n {
            let (committed, end) = committed_and_end(&brokers, &p, &topic, part);
            assert_eq!(committed, end, "group offset of {topic}[{part}]");
        }
    }
}

/// The committed offset of `group` on a topic-partition, and the partition's end offset.
fn committed_and_end(brokers: &str, group: &str, topic: &str, partition: i32) -> (i64, i64) {
    use rdkafka::Offset;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let timeout = Duration::from_secs(10);
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let committed = consumer.committed_offsets(tpl, timeout).unwrap();
    let offset = committed
        .find_partition(topic, partition)
        .map(|e| e.offset())
        .unwrap_or(Offset::Invalid);
    let (_, high) = consumer
        .fetch_watermarks(topic, partition, timeout)
        .unwrap();
    match offset {
        Offset::Offset(o) => (o, high),
        other => panic!("{topic}[{partition}]: no committed offset ({other:?}), end {high}"),
    }
}

/// In a cluster only process 0 writes `--out`; another process given only `--out` has no sink
/// of its own and must still start (it used to stop at once with "no sink").
#[test]
fn kafka_faults_cluster_process_without_a_sink_of_its_own_starts() {
    let Some(brokers) = broker() else { return };
    let p = prefix("nosink");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("changes.jsonl");
    let log = dir.path().join("stderr.log");
    // Process 0 is never started: process 1 waits for it, which is all this test needs.
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", free_port(), free_port());
    let args = cluster_args(&brokers, &p, &hosts, 1, &out);
    let mut run = Guard::new(cdcflow(&strs(&args), &log), &log, "cdcflow run --process 1");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        run.assert_running();
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = run.log();
    assert!(!stderr.contains("no sink"), "{stderr}");
    assert!(!out.exists(), "process 1 does not write --out");
}

// ---------------------------------------------------------------------------------------------

fn create_topic(brokers: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for r in rt
        .block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        .unwrap()
    {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

/// Produces `payloads` in order to partition 0 of `topic` (one request in flight, so the
/// offsets are the positions in `payloads`).
fn produce_raw(brokers: &str, topic: &str, payloads: &[String]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "1")
        .create()
        .unwrap();
    for payload in payloads {
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(0)
                    .key("k")
                    .payload(payload.as_str()),
            )
            .unwrap_or_else(|(e, _)| panic!("produce to {topic}: {e}"));
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// A Debezium create message of `db.table` committed at `ts` (ms).
fn create_row(db: &str, table: &str, after: &str, ts: u64, pos: u64) -> String {
    format!(
        r#"{{"before":null,"after":{after},"source":{{"version":"2.7.3.Final","connector":"mysql","name":"shop","ts_ms":{ts},"snapshot":"false","db":"{db}","sequence":null,"table":"{table}","server_id":1,"gtid":null,"file":"mysql-bin.000001","pos":{pos},"row":0,"thread":7,"query":null}},"transaction":null,"op":"c","ts_ms":{}}}"#,
        ts + 250
    )
}

fn read_jsonl(path: &Path) -> Vec<Json> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn kafka_faults_bad_input_corpus_is_dead_lettered() {
    let Some(brokers) = broker() else { return };
    let d = outbound();
    let p = prefix("bad");
    let topic = format!("{p}.orders.orders");
    create_topic(&brokers, &topic, 1);
    // The corpus (each file: good, bad, good), then good rows that make every view non-empty.
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures/bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    let mut payloads: Vec<String> = Vec::new();
    for f in &files {
        payloads.extend(
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(String::from),
        );
    }
    let corpus_lines = payloads.len();
    let ts = 1_772_409_601_000;
    payloads.push(create_row(
        "orders",
        "orders",
        r#"{"id":1,"customer_id":5,"status":"placed","placed_at":1772409600100}"#,
        ts,
        400,
    ));
    payloads.push(create_row(
        "warehouse",
        "shipments",
        r#"{"id":1,"order_id":1,"warehouse_id":3,"status":"shipped","shipped_at":1772409601000}"#,
        ts,
        500,
    ));
    payloads.push(create_row(
        "logistics",
        "deliveries",
        r#"{"id":1,"shipment_id":1,"courier_id":1,"shipping_cost":"4.20","dispatched_at":1772409601500}"#,
        ts,
        600,
    ));
    produce_raw(&brokers, &topic, &payloads);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("changes.jsonl");
    let dead = dir.path().join("dead.jsonl");
    let log = dir.path().join("stderr.log");
    let topics = regex_escape(&topic);
    let args = [
        "run",
        "--kafka",
        &brokers,
        "--topics",
        &topics,
        "--group",
        &p,
        "--out",
        out.to_str().unwrap(),
        "--dead-letter",
        dead.to_str().unwrap(),
        "--exit-when-idle-ms",
        "3000",
        "--idle-timeout-ms",
        "500",
    ];
    let mut run = Guard::new(cdcflow(&args, &log), &log, "cdcflow run");
    run.finish(Duration::from_secs(60));
    let stderr = run.log();

    // The file replay of the same lines, for its error texts and final state.
    let corpus = dir.path().join("corpus.jsonl");
    std::fs::write(&corpus, payloads.join("\n") + "\n").unwrap();
    let replay_out = dir.path().join("replay.jsonl");
    let replay_dead = dir.path().join("replay.dead.jsonl");
    let o = Command::new(env!("CARGO_BIN_EXE_cdcflow"))
        .args(["replay", "--quiet", "--out"])
        .arg(&replay_out)
        .arg("--dead-letter")
        .arg(&replay_dead)
        .arg(&corpus)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(cdcflow::cli::EXIT_REJECTED as i32),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let got = read_jsonl(&dead);
    let replayed = read_jsonl(&replay_dead);
    assert_eq!(
        replayed.len(),
        files.len(),
        "one bad line per corpus file: {replayed:?}"
    );
    assert_eq!(
        got.len(),
        replayed.len(),
        "dead letters from Kafka {got:?}\nfrom the file replay {replayed:?}\n{stderr}"
    );
    let source = format!("{topic}[0]");
    for (k, r) in got.iter().zip(&replayed) {
        let offset = k["offset"]
            .as_u64()
            .unwrap_or_else(|| panic!("no offset: {k}"));
        assert_eq!(k["source"], source.as_str(), "{k}");
        assert!(k.get("line").is_none(), "{k}");
        assert_eq!(
            k["record"].as_str().unwrap(),
            payloads[offset as usize],
            "the record at offset {offset}"
        );
        assert_eq!(r["line"].as_u64(), Some(offset + 1), "{r}");
        assert_eq!(k["error"], r["error"], "offset {offset}");
        assert_eq!(k["record"], r["record"]);
        assert!(
            stderr.contains(&format!("error: {source} offset {offset}: ")),
            "{stderr}"
        );
    }
    // Line 2 of every corpus file, nothing else.
    let bad: Vec<u64> = got.iter().map(|k| k["offset"].as_u64().unwrap()).collect();
    let want_bad: Vec<u64> = (0..files.len() as u64).map(|i| 3 * i + 1).collect();
    assert_eq!(bad, want_bad, "{files:?}");
    assert_eq!(corpus_lines, 3 * files.len());
    assert!(
        stderr.contains(&format!("rejected: {} record(s)", files.len())),
        "{stderr}"
    );

    // The good rows are applied: the same final state as the file replay, every view in it.
    let want = settled_log(&d, &replay_out);
    let views: BTreeSet<usize> = want.keys().map(|(v, _)| *v).collect();
    assert_eq!(
        views.len(),
        d.views.len(),
        "every view has a document: {want:?}"
    );
    assert_same(
        "change log of the bad corpus",
        &settled_log(&d, &out),
        &want,
    );
}
