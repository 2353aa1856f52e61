//! The pipeline: wires a [`Source`] and a [`Decoder`] into the engine ([`crate::dataflow`]) and
//! the engine into a [`Sink`]; owns the per-worker driver loop, the watermark, progress output,
//! offset commits, checkpoints and shutdown.
//!
//! Per worker, each round: read a bounded batch from the partitions the worker owns, decode it,
//! check each event's time (too far ahead: rejected; behind the worker's input frontier: moved
//! to it and counted late), hand the events to the dataflow, advance the input frontier by the
//! watermark, and step the dataflow. Backpressure: before the next round the worker waits until
//! the previous round's frontier has been acknowledged by the sinks, except while transactions
//! wait for input (their END or rows may be in what is not read yet).
//!
//! Progress follows acknowledgement: the probe sits after the sink operator ([`sink_op`]), and
//! only positions whose records are reflected in acknowledged output (or in a checkpoint) are
//! committed to the source. Checkpoints ([`checkpoint`]) freeze every worker's input frontier,
//! wait until the sinks acknowledged everything below the lowest one, then save every worker's
//! applied state and resume positions in one atomic file.

pub mod checkpoint;
pub mod sink_op;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::vec::UnorderedInput;
use timely::dataflow::operators::vec::{Broadcast, Input as _};
use timely::dataflow::operators::{Inspect, Probe};

use crate::dataflow::tx::{TxOptions, TxState};
use crate::dataflow::{self, ingest::IngestHandle};
use crate::decode::debezium::{DebeziumDecoder, SchemaDrift};
use crate::decode::{Decoded, Decoder};
use crate::event::{ChangeEvent, Input as EngineInput};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::progress::{Progress, Reporter};
use crate::schema::Catalog;
use crate::sink::{Change, Recorded, Recorder, Sink, ViewState};
use crate::source::watermark::Watermark;
use crate::source::{DeadLetters, FileSource, Input, Positions, Rejected, Source, SourceReader};
use crate::sql::Dataflows;
use crate::time::{Time, now_ms};

/// Lines a worker scans from each input per round by default (it decodes its share of them).
pub const CHUNK_LINES: usize = 16 * 1024;

/// Default maximum time skew: one day.
pub const DEFAULT_MAX_TIME_SKEW_MS: Time = 86_400_000;

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

    /// True in cluster mode (more than one process).
    pub fn is_cluster(&self) -> bool {
        self.hosts.len() > 1
    }

    /// The timely configuration.
    pub fn timely_config(&self) -> timely::Config {
        let communication = if self.is_cluster() {
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

/// Durable state options.
#[derive(Clone, Debug)]
pub struct StateOptions {
    /// The state directory.
    pub dir: PathBuf,
    /// How often a checkpoint is taken.
    pub interval: Duration,
}

/// Options of a pipeline run.
pub struct RunOptions {
    /// Worker layout.
    pub workers: Workers,
    /// Allowed lateness in milliseconds: how far behind each partition's newest commit time the
    /// frontier is held.
    pub lateness_ms: Time,
    /// An event committed more than this after its partition's newest time (or, for a
    /// partition's first event or an idle one, after the wall clock) is rejected.
    pub max_time_skew_ms: Time,
    /// Drop tombstones once the frontier passes their time by more than this, and reject
    /// events committed more than this behind the frontier ([`crate::dataflow::ingest`]);
    /// `None`: tombstones are kept for the life of the state.
    pub tombstone_retention_ms: Option<Time>,
    /// Print a progress line to stderr about once a second, and one at the end.
    pub progress: bool,
    /// Where the workers publish their progress (bytes read, frontier, consumer lag) for a
    /// reporter of the caller's ([`crate::progress::Reporter`]); `None`: only for `progress`.
    pub progress_state: Option<Arc<Progress>>,
    /// Keep every emitted change in memory (tests).
    pub keep_log: bool,
    /// Dead-letter file for rejected records.
    pub dead_letter: Option<PathBuf>,
    /// Records scanned from each partition per round.
    pub chunk_lines: usize,
    /// How long a caught-up partition stays quiet before it stops holding the frontier
    /// (sources that go idle: Kafka).
    pub idle_timeout: Duration,
    /// Release an incomplete transaction after this long (`None`: only at the end of input).
    pub tx_timeout: Option<Duration>,
    /// Durable state; `None` keeps no state (a restart starts from the beginning).
    pub state: Option<StateOptions>,
    /// Set to stop gracefully: finish the current time, flush, checkpoint, return.
    pub shutdown: Option<Arc<AtomicBool>>,
    /// How often positions are committed to the source.
    pub commit_interval: Duration,
    /// Pipeline-wide metric families (frontier, consumer lag, checkpoints, state rows).
    pub pipeline_metrics: Option<crate::http::PipelineMetrics>,
    /// How events whose columns differ from schema.sql are decoded ([`replay`]'s decoder;
    /// [`run`] takes its decoder from the caller, see [`debezium_with`]).
    pub schema_drift: SchemaDrift,
}

impl RunOptions {
    /// Defaults: `n` local workers, no lateness, quiet, no log, no dead-letter file.
    pub fn new(n: usize) -> RunOptions {
        RunOptions {
            workers: Workers::local(n),
            lateness_ms: 0,
            max_time_skew_ms: DEFAULT_MAX_TIME_SKEW_MS,
            tombstone_retention_ms: None,
            progress: false,
            progress_state: None,
            keep_log: false,
            dead_letter: None,
            chunk_lines: CHUNK_LINES,
            idle_timeout: Duration::from_secs(2),
            tx_timeout: None,
            state: None,
            shutdown: None,
            commit_interval: Duration::from_secs(1),
            pipeline_metrics: None,
            schema_drift: SchemaDrift::default(),
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// Final documents of every view: `(view index, id) -> doc`.
    pub state: ViewState,
    /// Every change, when `keep_log` was set.
    pub log: Option<Vec<Change>>,
    /// Counters.
    pub metrics: MetricsSnapshot,
    /// Rejected records.
    pub rejected: Vec<Rejected>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// Whether the run stopped on request (shutdown) rather than at the end of its input.
    pub stopped: bool,
}

/// Makes a decoder for each worker.
pub type DecoderFactory = Arc<dyn Fn(Arc<Catalog>) -> Box<dyn Decoder> + Send + Sync>;

/// The Debezium JSON decoder (lenient about schema drift).
pub fn debezium() -> DecoderFactory {
    debezium_with(SchemaDrift::default())
}

/// The Debezium JSON decoder with a schema-drift policy.
pub fn debezium_with(drift: SchemaDrift) -> DecoderFactory {
    Arc::new(move |catalog| Box::new(DebeziumDecoder::with_drift(catalog, drift)))
}

/// The Debezium JSON decoder for the views of `dataflows`. A run that keeps no state decodes
/// only the columns the views read (and the primary keys); one that `keeps_state` decodes
/// whole rows, so that a view changed before a restart is recomputed from every column.
pub fn debezium_for(
    dataflows: &Dataflows,
    drift: SchemaDrift,
    keeps_state: bool,
) -> DecoderFactory {
    if keeps_state {
        return debezium_with(drift);
    }
    let read = Arc::new(dataflows.read_columns());
    Arc::new(move |catalog| {
        Box::new(DebeziumDecoder::with_drift(catalog, drift).reading(read.clone()))
    })
}

/// Replays `inputs` (Debezium JSON lines) to their end through the views of `dataflows`.
pub fn replay(
    dataflows: &Dataflows,
    inputs: Vec<Input>,
    options: &RunOptions,
    sink: Option<Box<dyn Sink>>,
) -> anyhow::Result<RunOutcome> {
    run(
        dataflows,
        Arc::new(FileSource::new(inputs)),
        debezium_for(dataflows, options.schema_drift, options.state.is_some()),
        options,
        sink,
        Arc::new(Metrics::default()),
    )
}

/// The binlog decoder ([`crate::decode::binlog`]): `files` names binlog files by sequence
/// number; `skip_bad`: undecodable events are dead-lettered and skipped instead of stopping.
pub fn binlog_decoder(
    files: std::collections::BTreeMap<u64, String>,
    skip_bad: bool,
) -> DecoderFactory {
    let files = Arc::new(files);
    Arc::new(move |catalog| {
        Box::new(crate::decode::binlog::BinlogDecoder::new(
            catalog,
            files.clone(),
            skip_bad,
        ))
    })
}

/// The binlog decoder for the views of `dataflows` (declared tables no view needs are
/// skipped), naming files by `names`; `skip_bad` as in [`binlog_decoder`].
pub fn binlog_decoder_for(
    dataflows: &Dataflows,
    names: crate::decode::binlog::FileNames,
    skip_bad: bool,
) -> DecoderFactory {
    let used = dataflows.used_tables();
    Arc::new(move |catalog| {
        Box::new(crate::decode::binlog::BinlogDecoder::with_names(
            catalog,
            names.clone(),
            Some(&used),
            skip_bad,
        ))
    })
}

/// Replays saved binlog files (sorted by sequence) to their end through the views of
/// `dataflows`; `skip_bad` as in [`binlog_decoder`].
pub fn replay_binlog(
    dataflows: &Dataflows,
    files: Vec<crate::source::binlog::BinlogFile>,
    skip_bad: bool,
    options: &RunOptions,
    sink: Option<Box<dyn Sink>>,
) -> anyhow::Result<RunOutcome> {
    let source = crate::source::binlog::BinlogSource::new(files)?;
    let decoder = binlog_decoder(source.file_names(), skip_bad);
    run(
        dataflows,
        Arc::new(source),
        decoder,
        options,
        sink,
        Arc::new(Metrics::default()),
    )
}

/// Shared between the workers of this process for checkpoints and shutdown.
struct Coordinator {
    workers: usize,
    round: Mutex<Round>,
}

#[derive(Default)]
struct Round {
    /// A checkpoint (or the final one of a shutdown) is under way.
    active: bool,
    /// Each worker's frozen input frontier.
    frozen: Vec<Option<Time>>,
    /// Each worker's contribution.
    parts: Vec<Option<checkpoint::Part>>,
    /// The round under way is the last one of a shutdown. Decided by the worker that starts
    /// the round, so that every worker stops after the same round (each worker reading the
    /// shutdown flag for itself could stop after an earlier, ordinary checkpoint round and
    /// leave the others waiting for it in the next one).
    stop: bool,
    /// Whether the round that completed last was a shutdown's.
    last_stop: bool,
    /// Incremented when a round completes.
    completed: u64,
    /// Error of the round, if writing failed.
    error: Option<String>,
}

/// Runs `source` through the views of `dataflows` until its input ends or `options.shutdown`
/// is set, writing every completed time to `sink`.
pub fn run(
    dataflows: &Dataflows,
    source: Arc<dyn Source>,
    decoder: DecoderFactory,
    options: &RunOptions,
    sink: Option<Box<dyn Sink>>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<RunOutcome> {
    let started = Instant::now();
    if options.state.is_some() && options.workers.is_cluster() {
        bail!(
            "--state-dir is not supported in cluster mode yet (use one process with --workers N)"
        );
    }
    let schema_print = checkpoint::fingerprint(
        &dataflows
            .catalog
            .tables
            .iter()
            .map(|t| format!("{} {:?} {:?}\n", t.qualified(), t.columns, t.primary_key))
            .collect::<String>(),
    );
    let view_prints: Vec<(String, String)> = dataflows
        .views
        .iter()
        .map(|v| (v.name.clone(), checkpoint::fingerprint(&v.to_string())))
        .collect();
    let restored = match &options.state {
        Some(s) => checkpoint::read(&s.dir)?,
        None => None,
    };
    if let Some(c) = &restored
        && c.schema != schema_print
    {
        bail!(
            "the state dir {} was written for a different schema.sql; remove it to rebuild \
             from the sources",
            options.state.as_ref().expect("state").dir.display()
        );
    }
    let resent: Vec<bool> = view_prints
        .iter()
        .map(|v| match &restored {
            None => true,
            Some(c) => !c.views.contains(v),
        })
        .collect();
    let resume: crate::source::Resume = restored.as_ref().map(|c| c.resume()).unwrap_or_default();
    let tx_state = Arc::new(Mutex::new(match &restored {
        Some(c) => {
            let mut t = c.tx.clone();
            t.done.retain(|(_, commit)| *commit < c.frontier);
            t
        }
        None => TxState::default(),
    }));
    if let Some(c) = &restored {
        tracing::info!(
            frontier = c.frontier,
            keys = c.keys(),
            partitions = resume.positions.len(),
            "restoring from checkpoint"
        );
    }
    let restored = Arc::new(restored);

    let (recorder, recorded) = Recorder::new(sink, options.keep_log);
    let sink = Arc::new(Mutex::new(Some(recorder)));
    let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let dead_path = options.dead_letter.clone().map(|p| {
        if options.workers.is_cluster() {
            PathBuf::from(format!("{}.p{}", p.display(), options.workers.process))
        } else {
            p
        }
    });
    let dead = Arc::new(Mutex::new(DeadLetters::new(dead_path)));
    let dataflows = Arc::new(dataflows.clone());
    let collections: Arc<std::collections::HashSet<String>> = Arc::new(
        dataflows
            .catalog
            .tables
            .iter()
            .map(|t| t.qualified().to_ascii_lowercase())
            .collect(),
    );
    let tx_options = TxOptions {
        collections,
        timeout: options.tx_timeout,
    };
    let coordinator = Arc::new(Coordinator {
        workers: options.workers.threads,
        round: Mutex::new(Round {
            frozen: vec![None; options.workers.threads],
            parts: vec![None; options.workers.threads],
            ..Default::default()
        }),
    });
    let settings = Settings {
        lateness: options.lateness_ms,
        skew: options.max_time_skew_ms,
        tombstone_retention: options.tombstone_retention_ms,
        chunk: options.chunk_lines.max(1),
        progress: {
            let p = options.progress_state.clone().unwrap_or_default();
            p.set_total_bytes(source.total_bytes());
            p
        },
        idle: options.idle_timeout,
        state: options.state.clone(),
        shutdown: options
            .shutdown
            .clone()
            .unwrap_or_else(|| Arc::new(AtomicBool::new(false))),
        commit_interval: options.commit_interval,
        total_bytes: source.total_bytes(),
        schema_print,
        view_prints,
        pipeline_metrics: options.pipeline_metrics.clone(),
        table_names: dataflows
            .catalog
            .tables
            .iter()
            .map(|t| t.qualified())
            .collect(),
        table_ids: dataflows
            .catalog
            .tables
            .iter()
            .enumerate()
            .map(|(i, t)| (t.qualified(), i))
            .collect(),
    };
    let resent = Arc::new(resent);
    let stopped = Arc::new(AtomicBool::new(false));
    let settings_progress = settings.progress.clone();
    let reporter = Reporter::start(
        if options.progress {
            crate::progress::Mode::Lines
        } else {
            crate::progress::Mode::Off
        },
        "progress",
        crate::progress::Unit::Bytes,
        Duration::from_secs(1),
        crate::progress::replay_sample(metrics.clone(), settings.progress.clone()),
    );

    let (m, fl, dl, st) = (
        metrics.clone(),
        failure.clone(),
        dead.clone(),
        stopped.clone(),
    );
    let ingest_options = dataflow::ingest::IngestOptions {
        tombstone_retention: options.tombstone_retention_ms,
        restored_time: sink_op::RESTORED,
    };
    let guards = timely::execute(options.workers.timely_config(), move |worker| {
        let index = worker.index();
        let peers = worker.peers();
        let probe: ProbeHandle<Time> = ProbeHandle::new();
        let (input, cap, ingest) = worker.dataflow::<Time, _, _>(|scope| {
            let ((input, cap), stream) = scope.new_unordered_input::<EngineInput>();
            let engine = dataflow::build(
                stream,
                &dataflows,
                tx_options.clone(),
                tx_state.clone(),
                ingest_options,
                m.clone(),
            );
            sink_op::write(
                engine.changes,
                index,
                sink.clone(),
                resent.clone(),
                m.clone(),
                fl.clone(),
            )
            .probe_with(&probe);
            (input, cap, engine.ingest)
        });
        // In cluster mode a graceful stop is agreed by every worker of every process: each
        // announces the input frontier it froze at to all others, and all of them wait for
        // the lowest (a stop frontier agreed only within one process would wait for the
        // frozen capabilities of the other processes for ever).
        let cluster_stop = (peers > coordinator.workers).then(|| {
            let announced = Rc::new(RefCell::new(vec![None; peers]));
            let seen = announced.clone();
            let input = worker.dataflow::<u64, _, _>(move |scope| {
                let (input, stream) = scope.new_input::<(usize, Time)>();
                stream
                    .broadcast()
                    .inspect(move |(w, t): &(usize, Time)| seen.borrow_mut()[*w] = Some(*t));
                input
            });
            ClusterStop {
                input: Some(input),
                announced,
            }
        });
        let result = (|| -> anyhow::Result<()> {
            let fail = |e: anyhow::Error| {
                // The other workers stop at their next check instead of waiting for this one.
                fl.lock()
                    .expect("failure lock")
                    .get_or_insert_with(|| format!("{e:#}"));
                e
            };
            let reader = source.reader(index, peers, &resume).map_err(fail)?;
            let mut driver = Driver {
                index,
                peers,
                local: index % coordinator.workers,
                settings: &settings,
                metrics: &m,
                failure: &fl,
                dead: &dl,
                reader,
                decoder: decoder(dataflows.catalog.clone()),
                watermark: if source.partitions_fixed() {
                    Watermark::new(0, settings.lateness)
                        .with_idle_margin(settings.idle.as_millis() as Time)
                } else {
                    Watermark::open(settings.lateness, settings.idle.as_millis() as Time)
                },
                tracked: Vec::new(),
                input,
                cap: Some(cap),
                probe: &probe,
                ingest,
                tx_state: &tx_state,
                coordinator: &coordinator,
                cluster_stop,
                batch: Vec::new(),
            };
            driver.restore(restored.as_ref().as_ref());
            let stop = driver.drive(worker).map_err(fail)?;
            if stop {
                st.store(true, Ordering::SeqCst);
            }
            Ok(())
        })();
        // Whatever happened, leave no dataflow behind (a held capability would hang shutdown).
        for id in worker.installed_dataflows() {
            worker.drop_dataflow(id);
        }
        result
    })
    .map_err(|e| anyhow::anyhow!("cannot start workers: {e}"))?;
    let mut first_error = None;
    for r in guards.join() {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(anyhow::anyhow!("a worker failed: {e}"));
            }
        }
    }
    if let Some(msg) = failure.lock().expect("failure lock").take() {
        bail!(msg);
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if !stopped.load(Ordering::SeqCst) {
        settings_progress.set_done();
    }
    reporter.finish();
    let mut dead = dead.lock().expect("dead-letter lock");
    dead.flush().context("cannot write the dead-letter file")?;
    let recorded: Recorded = std::mem::take(&mut *recorded.lock().expect("recorder lock"));
    Ok(RunOutcome {
        state: recorded.state,
        log: recorded.log,
        metrics: metrics.snapshot(),
        rejected: std::mem::take(&mut dead.rejected),
        elapsed: started.elapsed(),
        stopped: stopped.load(Ordering::SeqCst),
    })
}

/// Settings every worker's driver shares.
struct Settings {
    lateness: Time,
    skew: Time,
    tombstone_retention: Option<Time>,
    chunk: usize,
    /// Published for progress output.
    progress: Arc<Progress>,
    idle: Duration,
    state: Option<StateOptions>,
    shutdown: Arc<AtomicBool>,
    commit_interval: Duration,
    total_bytes: Option<u64>,
    schema_print: String,
    view_prints: Vec<(String, String)>,
    pipeline_metrics: Option<crate::http::PipelineMetrics>,
    /// `db.table` of each table id, and back.
    table_names: Vec<String>,
    table_ids: std::collections::HashMap<String, usize>,
}

/// Where the records of a partition that are not yet reflected in acknowledged output begin:
/// per provisional time, the smallest position read at that time.
#[derive(Default)]
struct Tracked {
    by_time: BTreeMap<Time, u64>,
}

type InputHandle =
    timely::dataflow::operators::vec::unordered_input::UnorderedHandle<Time, EngineInput>;

/// One worker's driver loop.
struct Driver<'a> {
    index: usize,
    peers: usize,
    /// Index among this process's workers.
    local: usize,
    settings: &'a Settings,
    metrics: &'a Arc<Metrics>,
    failure: &'a Arc<Mutex<Option<String>>>,
    dead: &'a Arc<Mutex<DeadLetters>>,
    reader: Box<dyn SourceReader>,
    decoder: Box<dyn Decoder>,
    watermark: Watermark,
    tracked: Vec<Tracked>,
    input: InputHandle,
    cap: Option<timely::dataflow::operators::ActivateCapability<Time>>,
    probe: &'a ProbeHandle<Time>,
    ingest: IngestHandle,
    tx_state: &'a Arc<Mutex<TxState>>,
    coordinator: &'a Arc<Coordinator>,
    /// The cross-process stop agreement, in cluster mode.
    cluster_stop: Option<ClusterStop>,
    batch: Vec<EngineInput>,
}

/// One worker's side of a cluster-wide graceful stop: the input it announces its frozen
/// frontier on (taken when announced), and the frontiers announced by every worker so far.
struct ClusterStop {
    input: Option<timely::dataflow::InputHandleVec<u64, (usize, Time)>>,
    announced: Rc<RefCell<Vec<Option<Time>>>>,
}

impl Driver<'_> {
    /// Gives this worker's share of the restored keys at [`sink_op::RESTORED`] time and moves
    /// the input frontier to the checkpoint's.
    fn restore(&mut self, restored: Option<&checkpoint::Checkpoint>) {
        let Some(c) = restored else { return };
        let Some(cap) = self.cap.as_mut() else { return };
        let ids = &self.settings.table_ids;
        // The tables with rows: a statement that empties one of them is refused.
        let mut with_rows = std::collections::BTreeSet::new();
        {
            let mut handle = self.input.activate();
            let mut session = handle.session(&*cap);
            let mut n = 0usize;
            for part in &c.parts {
                for (table, key, version, row) in &part.keys {
                    n += 1;
                    let Some(table) = ids.get(table).copied() else {
                        continue;
                    };
                    if row.is_some() {
                        with_rows.insert(table);
                    }
                    if n % self.peers != self.index {
                        continue;
                    }
                    session.give(EngineInput::Event(ChangeEvent {
                        table,
                        key: key.clone(),
                        row: row.clone(),
                        version: *version,
                        time: sink_op::RESTORED,
                        tx: None,
                    }));
                }
            }
        }
        self.decoder
            .restored(&with_rows.into_iter().collect::<Vec<_>>());
        cap.downgrade(&c.frontier.max(sink_op::RESTORED + 1));
    }

    /// The loop. Returns `true` when it stopped on request (shutdown) rather than at the end
    /// of its input.
    fn drive(&mut self, worker: &mut timely::worker::Worker) -> anyhow::Result<bool> {
        let mut previous: Time = self.cap.as_ref().map_or(0, |c| *c.time());
        let mut last_publish: Option<Instant> = None;
        let mut last_commit = Instant::now();
        let mut last_checkpoint = Instant::now();
        loop {
            self.check_failure()?;
            let stopping = self.settings.shutdown.load(Ordering::Relaxed);
            if self.cluster_stop.is_some() && (stopping || self.peer_stopping()) {
                self.cluster_stop_round(worker)?;
                return Ok(true);
            }
            let due = self
                .settings
                .state
                .as_ref()
                .is_some_and(|s| last_checkpoint.elapsed() >= s.interval);
            if self.local == 0 && (due || stopping) {
                let mut r = self.coordinator.round.lock().expect("round");
                r.active = true;
                r.stop |= stopping;
            }
            if self.coordinator.round.lock().expect("round").active {
                // A checkpoint, or the last round of a shutdown (which also saves the state
                // when there is a state dir).
                let stop = self.checkpoint_round(worker)?;
                last_checkpoint = Instant::now();
                if stop {
                    return Ok(true);
                }
                continue;
            }
            let Some(cap_time) = self.cap.as_ref().map(|c| *c.time()) else {
                if self.probe.done() {
                    break;
                }
                // This worker's input is closed but others' is not (it owns no partition of a
                // live binlog, or its files ended first): keep stepping, and keep taking part
                // in checkpoint and shutdown rounds.
                worker.step_or_park(Some(Duration::from_millis(5)));
                continue;
            };
            let read = self.read_round(cap_time)?;
            if !self.batch.is_empty() {
                let cap = self.cap.as_ref().expect("held");
                let mut handle = self.input.activate();
                let mut session = handle.session(cap);
                for ev in self.batch.drain(..) {
                    session.give(ev);
                }
            }
            match self.watermark.frontier() {
                None => self.cap = None,
                Some(t) if t > cap_time => self.cap.as_mut().expect("held").downgrade(&t),
                Some(_) => {}
            }
            // Keep at most about two rounds in flight: wait until the previous round is
            // acknowledged, unless transactions wait for input that is not read yet.
            let wait_for = previous.min(cap_time);
            let mut stalled = Instant::now();
            let mut last_seen = self.probe_frontier();
            while self.probe.less_than(&wait_for) {
                worker.step_or_park(Some(Duration::from_millis(1)));
                self.check_failure()?;
                let now = self.probe_frontier();
                if now != last_seen {
                    last_seen = now;
                    stalled = Instant::now();
                }
                let waiting = self.tx_state.lock().expect("tx lock").waiting > 0;
                if (waiting && stalled.elapsed() >= Duration::from_millis(20))
                    || self.settings.shutdown.load(Ordering::Relaxed)
                    || self.peer_stopping()
                    || self.coordinator.round.lock().expect("round").active
                {
                    break;
                }
            }
            previous = cap_time;
            if read == 0 {
                worker.step_or_park(Some(Duration::from_millis(5)));
            } else {
                worker.step();
            }
            if last_commit.elapsed() >= self.settings.commit_interval
                && self.settings.state.is_none()
            {
                last_commit = Instant::now();
                let frontier = self.probe_frontier().unwrap_or(Time::MAX);
                let positions = self.resume_positions(frontier);
                self.reader.commit(&positions)?;
            }
            if let Some(pm) = &self.settings.pipeline_metrics {
                if self.index == 0 {
                    pm.set_frontier(self.probe_frontier().unwrap_or(Time::MAX));
                }
                for p in 0..self.reader.partitions() {
                    let name = self.reader.partition_name(p);
                    if let Some(lag) = self.reader.lag(p) {
                        pm.set_consumer_lag(&name, lag);
                    }
                    pm.set_read_position(&name, self.reader.next_position(p));
                }
            }
            if last_publish.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                last_publish = Some(Instant::now());
                self.publish_progress();
            }
        }
        // The input is closed: let everything complete.
        while !self.probe.done() {
            worker.step_or_park(Some(Duration::from_millis(1)));
            self.check_failure()?;
            if self.peer_stopping() {
                // Another worker stops the cluster: take part, or it waits for this one.
                self.cluster_stop_round(worker)?;
                return Ok(true);
            }
            if last_publish.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                last_publish = Some(Instant::now());
                self.publish_progress();
            }
        }
        if self.settings.state.is_some() {
            let positions = self.resume_positions(Time::MAX);
            self.reader.commit(&positions)?;
        }
        Ok(false)
    }

    /// Whether another worker of the cluster announced a graceful stop.
    fn peer_stopping(&self) -> bool {
        self.cluster_stop
            .as_ref()
            .is_some_and(|c| c.announced.borrow().iter().any(Option::is_some))
    }

    /// A graceful stop in cluster mode: announces this worker's frozen input frontier to every
    /// worker, waits for all announcements, then for the sinks to acknowledge everything below
    /// the lowest, and commits the positions that frontier covers. Nothing at or after it is
    /// applied or committed: a restart reads it again.
    fn cluster_stop_round(&mut self, worker: &mut timely::worker::Worker) -> anyhow::Result<()> {
        let my_cap = self.cap_time();
        let announced = {
            let stop = self.cluster_stop.as_mut().expect("cluster mode");
            if let Some(mut input) = stop.input.take() {
                input.send((self.index, my_cap));
                // Closing flushes the announcement and releases the input.
                input.close();
            }
            stop.announced.clone()
        };
        let frontier = loop {
            let f = {
                let a = announced.borrow();
                a.iter()
                    .all(Option::is_some)
                    .then(|| a.iter().flatten().min().copied())
                    .flatten()
            };
            if let Some(f) = f {
                break f;
            }
            worker.step_or_park(Some(Duration::from_millis(1)));
            self.check_failure()?;
        };
        tracing::info!(frontier, "cluster stop agreed");
        self.wait_acknowledged(worker, frontier)?;
        let positions = self.resume_positions(frontier);
        self.reader.commit(&positions)?;
        Ok(())
    }

    fn cap_time(&self) -> Time {
        self.cap.as_ref().map_or(Time::MAX, |c| *c.time())
    }

    fn probe_frontier(&self) -> Option<Time> {
        self.probe.with_frontier(|f| f.as_option().copied())
    }

    fn check_failure(&self) -> anyhow::Result<()> {
        if let Some(msg) = self.failure.lock().expect("failure lock").clone() {
            bail!(msg);
        }
        Ok(())
    }

    /// Steps until everything below `t` is acknowledged by the sinks.
    fn wait_acknowledged(
        &mut self,
        worker: &mut timely::worker::Worker,
        t: Time,
    ) -> anyhow::Result<()> {
        while self.probe.less_than(&t) {
            worker.step_or_park(Some(Duration::from_millis(1)));
            self.check_failure()?;
        }
        Ok(())
    }

    /// Reads one round: up to `chunk` records of each partition. Returns the number read.
    fn read_round(&mut self, cap_time: Time) -> anyhow::Result<usize> {
        let settings = self.settings;
        let unit = self.reader.position_unit();
        let track = settings.state.is_some() || settings.total_bytes.is_none();
        let now = now_ms();
        let (mut records, mut ignored, mut late, mut events) = (0u64, 0u64, 0u64, 0u64);
        let dead_before = self.metrics.dead_lettered.load(Ordering::Relaxed);
        let mut undeclared = 0u64;
        let mut reject_error: Option<anyhow::Error> = None;
        let mut fatal: Option<String> = None;
        let count_tables = settings.pipeline_metrics.is_some();
        let mut per_table: std::collections::HashMap<(usize, usize), u64> = Default::default();
        let names: Vec<String> = (0..self.reader.partitions())
            .map(|p| self.reader.partition_name(p))
            .collect();
        let mut names = names;
        {
            let Driver {
                reader,
                decoder,
                watermark,
                tracked,
                batch,
                dead,
                metrics,
                ..
            } = self;
            let dead = &**dead;
            reader.poll(settings.chunk, &mut |rec| {
                records += 1;
                if rec.partition >= names.len() {
                    names.resize_with(rec.partition + 1, String::new);
                }
                let decoded = decoder.decode_at(rec.position, rec.payload);
                undeclared += decoder.take_undeclared_columns();
                for part in decoder.take_rejected() {
                    metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = dead.lock().expect("dead-letter lock").reject_raw(
                        &part.source,
                        part.unit,
                        part.line,
                        &part.error,
                        &part.raw,
                    ) {
                        reject_error.get_or_insert(e);
                    }
                    if part.fatal {
                        fatal.get_or_insert(format!(
                            "{} {} {}: {}",
                            part.source, part.unit, part.line, part.error
                        ));
                    }
                }
                let mut reject = |error: &str| {
                    metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    let name = if names[rec.partition].is_empty() {
                        format!("partition {}", rec.partition)
                    } else {
                        names[rec.partition].clone()
                    };
                    if let Err(e) = dead.lock().expect("dead-letter lock").reject_at(
                        source_name(&name),
                        unit,
                        rec.line,
                        error,
                        rec.payload,
                    ) {
                        reject_error.get_or_insert(e);
                    }
                };
                let decoded = match decoded {
                    Ok(d) => d,
                    Err(e) => {
                        reject(&e.0);
                        return;
                    }
                };
                let mut inputs: Vec<EngineInput> = match decoded {
                    Decoded::Events(evs) => evs.into_iter().map(EngineInput::Event).collect(),
                    Decoded::TxEnd(m) => vec![EngineInput::TxEnd(m)],
                    Decoded::Ignored(_) => {
                        ignored += 1;
                        return;
                    }
                };
                if inputs.is_empty() {
                    ignored += 1;
                    return;
                }
                // Implausible commit times are rejected before they can drag the frontier:
                // beyond the skew after both the partition's newest time and the wall clock. A
                // backlog may jump ahead of its partition by days (a table quiet over a
                // weekend) and stays; a time in the future does not.
                let t = inputs[0].time();
                let reference = watermark
                    .newest(rec.partition)
                    .or(watermark.newest_overall())
                    .unwrap_or(0)
                    .max(now);
                if t > reference.saturating_add(settings.skew) {
                    reject(&format!(
                        "commit time {t} is more than the maximum time skew ({} ms) after the \
                         partition's newest time {reference}",
                        settings.skew
                    ));
                    return;
                }
                // With a tombstone retention, a record older than the frontier by more than it
                // could predate a delete whose tombstone is gone: refused, never applied.
                if let Some(r) = settings.tombstone_retention
                    && t.saturating_add(r) < cap_time
                {
                    reject(&format!(
                        "commit time {t} is more than the tombstone retention ({r} ms) behind \
                         the frontier {cap_time}: the delete of its key may be forgotten, so \
                         it is refused rather than applied (raise --tombstone-retention-ms)"
                    ));
                    return;
                }
                // A late record is applied at the frontier: that is the time an idle
                // partition's frontier must pass ("everything seen is complete").
                watermark.observe(rec.partition, t.max(cap_time));
                for i in &mut inputs {
                    if i.time() < cap_time {
                        i.set_time(cap_time);
                        if matches!(i, EngineInput::Event(_)) {
                            late += 1;
                        }
                    }
                    if let EngineInput::Event(e) = i {
                        events += 1;
                        if count_tables {
                            *per_table.entry((e.table, rec.partition)).or_default() += 1;
                        }
                    }
                }
                if track {
                    if rec.partition >= tracked.len() {
                        tracked.resize_with(rec.partition + 1, Tracked::default);
                    }
                    let t = inputs
                        .iter()
                        .map(EngineInput::time)
                        .min()
                        .unwrap_or(cap_time);
                    let slot = tracked[rec.partition]
                        .by_time
                        .entry(t)
                        .or_insert(rec.position);
                    *slot = (*slot).min(rec.position);
                }
                batch.extend(inputs);
            })?;
        }
        if let Some(e) = reject_error {
            return Err(e);
        }
        if self.metrics.dead_lettered.load(Ordering::Relaxed) != dead_before {
            // A service runs for long: what was rejected is in the file now, not at the end.
            self.dead
                .lock()
                .expect("dead-letter lock")
                .flush()
                .context("cannot write the dead-letter file")?;
        }
        if let Some(msg) = fatal {
            // Every worker stops at its next check.
            let _ = self.dead.lock().expect("dead-letter lock").flush();
            self.failure
                .lock()
                .expect("failure lock")
                .get_or_insert(msg.clone());
            bail!(msg);
        }
        for p in 0..self.reader.partitions() {
            self.watermark.set_status(p, self.reader.status(p));
        }
        if let Some(pm) = &settings.pipeline_metrics {
            for ((table, p), n) in per_table {
                pm.events_in(
                    &settings.table_names[table],
                    &self.reader.partition_name(p),
                    n,
                );
            }
        }
        let m = self.metrics;
        Metrics::add(&m.records, records);
        Metrics::add(&m.ignored, ignored);
        Metrics::add(&m.undeclared_columns, undeclared);
        Metrics::add(&m.late, late);
        Metrics::add(&m.events, events);
        Ok(records as usize)
    }

    /// Resume positions of this worker's partitions, given that everything below `frontier`
    /// is acknowledged: the smallest position of a record at a time at or after the frontier
    /// (or the oldest provisional time of a transaction still in flight), else the read
    /// position. Prunes what is no longer needed.
    fn resume_positions(&mut self, frontier: Time) -> Vec<(usize, u64)> {
        let floor = {
            let mut tx = self.tx_state.lock().expect("tx lock");
            tx.floor(frontier).map_or(frontier, |f| f.min(frontier))
        };
        let mut out = Vec::new();
        for p in 0..self.reader.partitions() {
            let read = self.reader.next_position(p);
            let pos = match self.tracked.get_mut(p) {
                Some(t) => {
                    t.by_time = t.by_time.split_off(&floor);
                    t.by_time.values().min().copied().unwrap_or(read).min(read)
                }
                None => read,
            };
            out.push((p, pos));
        }
        out
    }

    /// Takes part in a checkpoint round. Returns whether it was the last round of a shutdown.
    fn checkpoint_round(&mut self, worker: &mut timely::worker::Worker) -> anyhow::Result<bool> {
        let me = self.local;
        let my_cap = self.cap_time();
        let round_no = {
            let mut r = self.coordinator.round.lock().expect("round");
            r.frozen[me] = Some(my_cap);
            r.completed
        };
        // Wait until every worker is frozen, then until the sinks acknowledged everything
        // below the lowest frozen frontier.
        let frontier = loop {
            let f = {
                let r = self.coordinator.round.lock().expect("round");
                if r.completed != round_no {
                    return Ok(r.last_stop);
                }
                if r.frozen.iter().all(Option::is_some) {
                    r.frozen.iter().flatten().min().copied()
                } else {
                    None
                }
            };
            if let Some(f) = f {
                break f;
            }
            worker.step_or_park(Some(Duration::from_millis(1)));
            self.check_failure()?;
        };
        self.wait_acknowledged(worker, frontier)?;
        // Everything below `frontier` is applied and acknowledged, nothing at or after it is
        // applied: save this worker's share.
        let started = Instant::now();
        let names = &self.settings.table_names;
        let keys: Vec<checkpoint::KeyState> = if self.settings.state.is_none() {
            Vec::new()
        } else {
            self.ingest
                .borrow()
                .iter()
                .map(|((table, key), (version, row))| {
                    (names[*table].clone(), key.clone(), *version, row.clone())
                })
                .collect()
        };
        let resume = self.resume_positions(frontier);
        let tokens: crate::source::Tokens = resume
            .iter()
            .filter_map(|&(p, pos)| {
                let token = self.reader.resume_token(p, pos)?;
                Some((self.reader.partition_name(p), token))
            })
            .collect();
        let positions: Positions = resume
            .into_iter()
            .map(|(p, pos)| (self.reader.partition_name(p), pos))
            .collect();
        {
            let mut r = self.coordinator.round.lock().expect("round");
            r.parts[me] = Some(checkpoint::Part {
                keys,
                positions: positions.clone(),
                tokens,
            });
        }
        if me == 0 {
            // Wait for every part, write, and complete the round.
            loop {
                let ready = {
                    let r = self.coordinator.round.lock().expect("round");
                    r.parts.iter().all(Option::is_some)
                };
                if ready {
                    break;
                }
                worker.step_or_park(Some(Duration::from_millis(1)));
                self.check_failure()?;
            }
            let parts: Vec<checkpoint::Part> = {
                let mut r = self.coordinator.round.lock().expect("round");
                r.parts
                    .iter_mut()
                    .map(|p| p.take().expect("ready"))
                    .collect()
            };
            let tx = {
                let t = self.tx_state.lock().expect("tx lock");
                let mut c = t.clone();
                c.done.retain(|(_, commit)| *commit < frontier);
                c.in_flight.clear();
                c
            };
            let c = checkpoint::Checkpoint {
                frontier,
                schema: self.settings.schema_print.clone(),
                views: self.settings.view_prints.clone(),
                parts,
                tx,
            };
            let result = match &self.settings.state {
                Some(state) => checkpoint::write(&state.dir, &c).map(Some),
                None => Ok(None),
            };
            let mut r = self.coordinator.round.lock().expect("round");
            match result {
                Ok(None) => {}
                Ok(Some(bytes)) => {
                    if let Some(pm) = &self.settings.pipeline_metrics {
                        pm.set_checkpoint(started.elapsed().as_millis() as u64, bytes);
                        let mut rows: BTreeMap<&str, u64> = BTreeMap::new();
                        for part in &c.parts {
                            for k in &part.keys {
                                if k.3.is_some() {
                                    *rows.entry(k.0.as_str()).or_default() += 1;
                                }
                            }
                        }
                        for (t, n) in rows {
                            pm.set_state_rows(t, n);
                        }
                    }
                    tracing::info!(
                        frontier,
                        keys = c.keys(),
                        bytes,
                        ms = started.elapsed().as_millis() as u64,
                        "checkpoint written"
                    );
                }
                Err(e) => r.error = Some(format!("{e:#}")),
            }
            r.active = false;
            r.last_stop = std::mem::take(&mut r.stop);
            r.frozen.iter_mut().for_each(|f| *f = None);
            r.completed += 1;
        } else {
            // Wait for worker 0 to write.
            loop {
                if self.coordinator.round.lock().expect("round").completed != round_no {
                    break;
                }
                worker.step_or_park(Some(Duration::from_millis(1)));
                self.check_failure()?;
            }
        }
        let stop = self.coordinator.round.lock().expect("round").last_stop;
        if let Some(e) = self.coordinator.round.lock().expect("round").error.clone() {
            bail!("cannot write checkpoint: {e}");
        }
        let committed: Vec<(usize, u64)> = (0..self.reader.partitions())
            .filter_map(|p| {
                positions
                    .get(&self.reader.partition_name(p))
                    .map(|pos| (p, *pos))
            })
            .collect();
        self.reader.commit(&committed)?;
        Ok(stop)
    }

    /// Publishes this worker's progress for progress output: bytes read and the frontier
    /// (worker 0), consumer lag (every worker).
    fn publish_progress(&self) {
        let p = &self.settings.progress;
        if self.index == 0 {
            if let Some(b) = self.reader.consumed_bytes() {
                p.set_consumed_bytes(b);
            }
            p.set_frontier(self.probe_frontier().unwrap_or(Time::MAX));
        }
        let lag = (0..self.reader.partitions())
            .filter_map(|q| self.reader.lag(q))
            .reduce(|a, b| a + b);
        p.set_lag(self.local, lag);
    }
}

/// The source of a partition name, for dead letters: the file of a file stripe, as is otherwise.
fn source_name(partition: &str) -> &str {
    match partition.rfind('#') {
        Some(i) if partition[i + 1..].contains('/') => &partition[..i],
        _ => partition,
    }
}
