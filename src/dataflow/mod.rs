//! The engine: timely workers, each reading its share of the inputs into one dataflow
//! (ingest -> views -> emit -> sink), driven by the watermark.

pub mod accum;
pub mod emit;
pub mod ingest;
pub mod render;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use differential_dataflow::AsCollection;
use differential_dataflow::VecCollection;
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::vec::{Partition, UnorderedInput};
use timely::dataflow::operators::{Concatenate, Probe};

use crate::decode::debezium::DebeziumDecoder;
use crate::decode::{ChangeEvent, Decoded, Row};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::schema::TableId;
use crate::sink::{Recorded, Recorder, Sink, ViewState};
use crate::source::{DeadLetters, Input, LineCursor, Rejected};
use crate::sql::Dataflows;
use crate::time::{Time, Watermark};

/// Lines a worker scans from each input per round by default (it decodes its share of them).
pub const CHUNK_LINES: usize = 16 * 1024;

/// How the workers are laid out: threads in this process, and optionally a timely cluster.
#[derive(Clone, Debug)]
pub struct Workers {
    /// Worker threads per process.
    pub threads: usize,
    /// This process's index in the cluster.
    pub process: usize,
    /// `host:port` of every process; empty or one entry for a single process.
    pub hosts: Vec<String>,
}

impl Workers {
    /// `n` worker threads in this process.
    pub fn local(n: usize) -> Workers {
        Workers {
            threads: n.max(1),
            process: 0,
            hosts: Vec::new(),
        }
    }

    /// The timely configuration.
    pub fn timely_config(&self) -> timely::Config {
        let communication = if self.hosts.len() > 1 {
            timely::CommunicationConfig::Cluster {
                threads: self.threads,
                process: self.process,
                addresses: self.hosts.clone(),
                report: false,
                zerocopy: false,
            }
        } else if self.threads > 1 {
            timely::CommunicationConfig::Process(self.threads)
        } else {
            timely::CommunicationConfig::Thread
        };
        let mut config = timely::Config {
            communication,
            worker: timely::WorkerConfig::default(),
        };
        differential_dataflow::configure(
            &mut config.worker,
            &differential_dataflow::Config::default().idle_merge_effort(Some(1000)),
        );
        config
    }
}

/// Options of a replay run.
pub struct RunOptions {
    /// Worker layout.
    pub workers: Workers,
    /// Allowed lateness in milliseconds: how far behind each partition's newest commit time the
    /// frontier is held.
    pub lateness_ms: Time,
    /// Print progress to stderr about once a second.
    pub progress: bool,
    /// Keep every emitted change in memory (tests).
    pub keep_log: bool,
    /// Dead-letter file for rejected records.
    pub dead_letter: Option<PathBuf>,
    /// Lines scanned from each input per round: the granularity at which the watermark advances.
    pub chunk_lines: usize,
}

impl RunOptions {
    /// Defaults: `n` local workers, no lateness, quiet, no log, no dead-letter file.
    pub fn new(n: usize) -> RunOptions {
        RunOptions {
            workers: Workers::local(n),
            lateness_ms: 0,
            progress: false,
            keep_log: false,
            dead_letter: None,
            chunk_lines: CHUNK_LINES,
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// Final documents of every view: `(view index, id) -> doc`.
    pub state: ViewState,
    /// Every change, when `keep_log` was set.
    pub log: Option<Vec<crate::sink::Change>>,
    /// Counters.
    pub metrics: MetricsSnapshot,
    /// Rejected records.
    pub rejected: Vec<Rejected>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

/// Replays `inputs` through the views of `dataflows` to the end of the input, writing every
/// completed time to `sink`.
pub fn run(
    dataflows: &Dataflows,
    inputs: Vec<Input>,
    options: &RunOptions,
    sink: Option<Box<dyn Sink>>,
) -> anyhow::Result<RunOutcome> {
    let started = Instant::now();
    let (recorder, recorded) = Recorder::new(sink, options.keep_log);
    let sink: Arc<Mutex<Option<Box<dyn Sink>>>> = Arc::new(Mutex::new(Some(Box::new(recorder))));
    let metrics = Arc::new(Metrics::default());
    let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let dead_path = options.dead_letter.clone().map(|p| {
        if options.workers.hosts.len() > 1 {
            PathBuf::from(format!("{}.p{}", p.display(), options.workers.process))
        } else {
            p
        }
    });
    let dead = Arc::new(Mutex::new(DeadLetters::new(dead_path)));
    let dataflows = Arc::new(dataflows.clone());
    let inputs = Arc::new(inputs);
    let total_bytes: usize = inputs.iter().map(|i| i.bytes().len()).sum();
    let lateness = options.lateness_ms;
    let progress = options.progress;
    let chunk_lines = options.chunk_lines.max(1);

    let (m, f, d) = (metrics.clone(), failure.clone(), dead.clone());
    let guards = timely::execute(options.workers.timely_config(), move |worker| {
        let index = worker.index();
        let peers = worker.peers();
        let probe: ProbeHandle<Time> = ProbeHandle::new();
        let views = dataflows.views.clone();
        let catalog = dataflows.catalog.clone();
        let (metrics, failure, dead) = (m.clone(), f.clone(), d.clone());
        let (mut input, cap) = worker.dataflow::<Time, _, _>(|scope| {
            let ((input, cap), events) = scope.new_unordered_input::<ChangeEvent>();
            let rows = ingest::ingest(events, metrics.clone());
            let used: BTreeSet<TableId> = views
                .iter()
                .flat_map(|v| v.sources.iter().map(|s| s.table))
                .collect();
            // Route each row to its table's collection (moved, not cloned per table).
            let parts = rows
                .inner
                .partition(catalog.tables.len() as u64, |((t, row), time, diff)| {
                    (t as u64, (row, time, diff))
                });
            let tables: Vec<Option<VecCollection<'_, Time, Row>>> = parts
                .into_iter()
                .enumerate()
                .map(|(t, s)| used.contains(&t).then(|| s.as_collection()))
                .collect();
            let streams: Vec<_> = views
                .iter()
                .enumerate()
                .map(|(vi, plan)| {
                    emit::emit_changes(vi, render::render_view(plan, &tables, metrics.clone()))
                })
                .collect();
            let all = scope.concatenate(streams);
            emit::write_to_sink(all, index, sink.clone(), metrics.clone(), failure.clone())
                .probe_with(&probe);
            (input, cap)
        });

        let mut cursors: Vec<LineCursor> = inputs.iter().cloned().map(LineCursor::new).collect();
        let mut watermark = Watermark::new(cursors.len(), lateness);
        for (p, c) in cursors.iter().enumerate() {
            if c.done {
                watermark.finish(p);
            }
        }
        let mut decoder = DebeziumDecoder::new(catalog.clone());
        let mut cap = Some(cap);
        let mut batch: Vec<ChangeEvent> = Vec::new();
        let mut previous: Time = 0;
        let mut last_report = Instant::now();
        let mut reject_error: Option<anyhow::Error> = None;
        while let Some(c) = cap.as_mut() {
            let cap_time = *c.time();
            let (mut records, mut ignored, mut late) = (0u64, 0u64, 0u64);
            for (p, cursor) in cursors.iter_mut().enumerate() {
                if cursor.done {
                    continue;
                }
                let name = cursor.input().name.clone();
                cursor.read_chunk(chunk_lines, index % peers, peers, |line, bytes| {
                    records += 1;
                    match decoder.decode(bytes) {
                        Ok(Decoded::Events(events)) => {
                            for mut ev in events {
                                watermark.observe(p, ev.time);
                                if ev.time < cap_time {
                                    ev.time = cap_time;
                                    late += 1;
                                }
                                batch.push(ev);
                            }
                        }
                        Ok(Decoded::Ignored(_) | Decoded::TxEnd(_)) => ignored += 1,
                        Err(e) => {
                            metrics
                                .dead_lettered
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if let Err(e) = dead
                                .lock()
                                .expect("dead-letter lock")
                                .reject(&name, line, &e.0, bytes)
                            {
                                reject_error.get_or_insert(e);
                            }
                        }
                    }
                });
                if cursor.done {
                    watermark.finish(p);
                }
            }
            Metrics::add(&metrics.records, records);
            Metrics::add(&metrics.ignored, ignored);
            Metrics::add(&metrics.late, late);
            Metrics::add(&metrics.events, batch.len() as u64);
            if !batch.is_empty() {
                let mut handle = input.activate();
                let mut session = handle.session(c);
                for ev in batch.drain(..) {
                    session.give(ev);
                }
            }
            match watermark.frontier() {
                None => cap = None,
                Some(t) if t > cap_time => c.downgrade(&t),
                Some(_) => {}
            }
            // Keep at most about two rounds in flight: wait until the previous round is emitted.
            let wait_for = previous.min(cap_time);
            worker.step_while(|| probe.less_than(&wait_for));
            previous = cap_time;
            if progress && index == 0 && last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                let done: usize = cursors.iter().map(|c| c.position()).sum();
                let s = metrics.snapshot();
                let secs = started.elapsed().as_secs_f64();
                eprintln!(
                    "progress: {:.1}% of input, {} records, {} events, {:.0} events/s, complete before {} UTC",
                    100.0 * done as f64 / total_bytes.max(1) as f64,
                    s.records,
                    s.events,
                    s.events as f64 / secs.max(1e-9),
                    crate::value::Value::DateTime(wait_for as i64 * 1000)
                );
            }
            if reject_error.is_some() {
                break;
            }
        }
        drop(cap);
        worker.step_while(|| !probe.done());
        reject_error.map_or(Ok(()), Err)
    })
    .map_err(|e| anyhow::anyhow!("cannot start workers: {e}"))?;
    for r in guards.join() {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => bail!("a worker failed: {e}"),
        }
    }
    if let Some(msg) = failure.lock().expect("failure lock").take() {
        bail!(msg);
    }
    let mut dead = dead.lock().expect("dead-letter lock");
    dead.flush().context("cannot write the dead-letter file")?;
    let recorded: Recorded = std::mem::take(&mut *recorded.lock().expect("recorder lock"));
    Ok(RunOutcome {
        state: recorded.state,
        log: recorded.log,
        metrics: metrics.snapshot(),
        rejected: std::mem::take(&mut dead.rejected),
        elapsed: started.elapsed(),
    })
}
