//! Progress output on stderr, never on stdout (stdout carries data with `--out -`):
//!
//! - [`Progress`]: what the pipeline's workers publish about their progress (bytes read of
//!   the total, the acknowledged frontier, consumer lag), beside the counters of
//!   [`crate::metrics::Metrics`];
//! - [`Reporter`]: a thread that shows a [`Sample`] either as a progress bar (indicatif, when
//!   stderr is a terminal) or as a plain line per interval (when it is not: logs, CI);
//! - [`interval_line`]: the line `run` logs once per `--log-interval`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::time::Time;

const UNSET: u64 = u64::MAX;

/// What the workers of a pipeline publish for progress output (shared, updated a few times a
/// second). Values are `None` until first published.
#[derive(Debug)]
pub struct Progress {
    total_bytes: AtomicU64,
    consumed_bytes: AtomicU64,
    frontier: AtomicU64,
    /// Consumer lag in messages, per local worker (the sum of its partitions' lags).
    lags: Mutex<Vec<Option<u64>>>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            total_bytes: AtomicU64::new(UNSET),
            consumed_bytes: AtomicU64::new(UNSET),
            frontier: AtomicU64::new(UNSET),
            lags: Mutex::new(Vec::new()),
        }
    }
}

fn get(a: &AtomicU64) -> Option<u64> {
    match a.load(Relaxed) {
        UNSET => None,
        v => Some(v),
    }
}

impl Progress {
    /// The size of the whole input, when the source knows it.
    pub fn set_total_bytes(&self, total: Option<u64>) {
        self.total_bytes
            .store(total.map_or(UNSET, |t| t.min(UNSET - 1)), Relaxed);
    }

    /// See [`Progress::set_total_bytes`].
    pub fn total_bytes(&self) -> Option<u64> {
        get(&self.total_bytes)
    }

    /// Bytes of the input read so far.
    pub fn set_consumed_bytes(&self, done: u64) {
        self.consumed_bytes.store(done.min(UNSET - 1), Relaxed);
    }

    /// See [`Progress::set_consumed_bytes`].
    pub fn consumed_bytes(&self) -> Option<u64> {
        get(&self.consumed_bytes)
    }

    /// The frontier the sinks acknowledged: every time before it is complete and written;
    /// [`Time::MAX`] once all input is done.
    pub fn set_frontier(&self, t: Time) {
        self.frontier.store(t.min(UNSET - 1), Relaxed);
    }

    /// See [`Progress::set_frontier`] (`UNSET - 1` reads as [`Time::MAX`]).
    pub fn frontier(&self) -> Option<Time> {
        get(&self.frontier).map(|t| if t == UNSET - 1 { Time::MAX } else { t })
    }

    /// Local worker `worker`'s consumer lag (messages behind the end of its partitions), when
    /// its source knows it.
    pub fn set_lag(&self, worker: usize, lag: Option<u64>) {
        let mut l = self.lags.lock().expect("progress lock");
        if l.len() <= worker {
            l.resize(worker + 1, None);
        }
        l[worker] = lag;
    }

    /// The consumer lag of all workers, when some worker's source knows it.
    pub fn lag(&self) -> Option<u64> {
        let l = self.lags.lock().expect("progress lock");
        l.iter().flatten().copied().reduce(|a, b| a + b)
    }

    /// The input was read to its end: everything consumed, every time complete.
    pub fn set_done(&self) {
        if let Some(t) = self.total_bytes() {
            self.set_consumed_bytes(t);
        }
        self.set_frontier(Time::MAX);
    }
}

/// How progress is shown.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Not at all.
    Off,
    /// An indicatif bar on stderr (a terminal).
    Bar,
    /// A plain line on stderr per interval, and one at the end.
    Lines,
}

impl Mode {
    /// A bar when stderr is a terminal, lines when `forced` (`--progress`) and it is not, and
    /// nothing with `quiet` or when neither holds.
    pub fn choose(quiet: bool, forced: bool) -> Mode {
        use std::io::IsTerminal;
        if quiet {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else if forced {
            Mode::Lines
        } else {
            Mode::Off
        }
    }
}

/// What [`Sample::done`] and [`Sample::total`] count.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Input bytes (`replay`).
    Bytes,
    /// Orders generated (`gen`).
    Orders,
}

/// One look at a task in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// How much is done, in the reporter's [`Unit`].
    pub done: Option<u64>,
    /// Of how much, when known.
    pub total: Option<u64>,
    /// Input records read (replay).
    pub records: Option<u64>,
    /// Row changes: decoded (replay) or written (gen).
    pub events: u64,
    /// The acknowledged frontier (replay).
    pub frontier: Option<Time>,
}

/// A sampler of a pipeline run for [`Reporter::start`] with [`Unit::Bytes`]: bytes read of
/// the total, records, events and the frontier.
pub fn replay_sample(
    metrics: Arc<crate::metrics::Metrics>,
    progress: Arc<Progress>,
) -> impl Fn() -> Sample + Send + 'static {
    move || Sample {
        done: progress.consumed_bytes(),
        total: progress.total_bytes(),
        records: Some(metrics.records.load(Relaxed)),
        events: metrics.events.load(Relaxed),
        frontier: progress.frontier(),
    }
}

/// Shows samples on stderr from a thread until [`Reporter::finish`] (or drop).
pub struct Reporter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Reporter {
    /// Starts showing `sample()` as `mode` says: lines every `every`, a bar redrawn a few times
    /// a second. `what` starts each line (`progress`, `gen`). [`Mode::Off`] starts nothing.
    pub fn start(
        mode: Mode,
        what: &'static str,
        unit: Unit,
        every: Duration,
        sample: impl Fn() -> Sample + Send + 'static,
    ) -> Reporter {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = match mode {
            Mode::Off => None,
            Mode::Lines => {
                let stop = stop.clone();
                Some(std::thread::spawn(move || {
                    lines(&stop, what, unit, every, &sample)
                }))
            }
            Mode::Bar => {
                let stop = stop.clone();
                Some(std::thread::spawn(move || bar(&stop, unit, &sample)))
            }
        };
        Reporter { stop, thread }
    }

    /// Stops, after a last line (lines) or with the bar drawn as it ends.
    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// Sleeps up to `d`, waking early when `stop` is set; returns whether it is.
fn nap(stop: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    loop {
        if stop.load(Relaxed) {
            return true;
        }
        let now = Instant::now();
        if now >= until {
            return false;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}

fn lines(stop: &AtomicBool, what: &str, unit: Unit, every: Duration, sample: &dyn Fn() -> Sample) {
    let started = Instant::now();
    let mut rate = Rate::default();
    rate.add(started, sample().events);
    loop {
        let stopping = nap(stop, every);
        let s = sample();
        let now = Instant::now();
        rate.add(now, s.events);
        eprintln!(
            "{what}: {}",
            progress_line(unit, &s, rate.per_sec(), now - started)
        );
        if stopping {
            return;
        }
    }
}

/// Events per second over about the last five seconds (reading is bursty: a round reads a
/// batch, then the dataflow works through it).
#[derive(Default)]
struct Rate {
    window: std::collections::VecDeque<(Instant, u64)>,
}

impl Rate {
    const SPAN: Duration = Duration::from_secs(5);

    fn add(&mut self, at: Instant, events: u64) {
        self.window.push_back((at, events));
        while self.window.len() > 2
            && self
                .window
                .get(1)
                .is_some_and(|(t, _)| at.duration_since(*t) >= Self::SPAN)
        {
            self.window.pop_front();
        }
    }

    fn per_sec(&self) -> f64 {
        match (self.window.front(), self.window.back()) {
            (Some((t0, e0)), Some((t1, e1))) if t1 > t0 => {
                e1.saturating_sub(*e0) as f64 / (*t1 - *t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

fn bar(stop: &AtomicBool, unit: Unit, sample: &dyn Fn() -> Sample) {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let first = sample();
    let pb = ProgressBar::with_draw_target(first.total, ProgressDrawTarget::stderr());
    let amounts = match unit {
        Unit::Bytes => "{bytes}/{total_bytes}",
        Unit::Orders => "{human_pos}/{human_len} orders",
    };
    let template = if first.total.is_some() {
        format!(
            "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{percent:>3}}% {amounts} {{msg}} ETA {{eta}}"
        )
    } else {
        "{spinner} [{elapsed_precise}] {msg}".to_string()
    };
    if let Ok(style) = ProgressStyle::with_template(&template) {
        pb.set_style(style.progress_chars("=> "));
    }
    let mut rate = Rate::default();
    rate.add(Instant::now(), first.events);
    loop {
        let stopping = nap(stop, Duration::from_millis(200));
        let s = sample();
        rate.add(Instant::now(), s.events);
        let rate = rate.per_sec();
        if let Some(d) = s.done {
            pb.set_position(d);
        }
        let mut msg = match (unit, s.records) {
            (Unit::Bytes, Some(r)) => format!("{r} records, {} events", s.events),
            _ => format!("{} events", s.events),
        };
        msg.push_str(&format!(", {} events/s", human_rate(rate)));
        pb.set_message(msg);
        pb.tick();
        if stopping {
            pb.finish();
            return;
        }
    }
}

fn human_rate(r: f64) -> String {
    if r >= 10_000.0 {
        format!("{:.0}k", r / 1000.0)
    } else {
        format!("{r:.0}")
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A UTC time, `YYYY-MM-DD HH:MM:SS UTC`.
pub fn show_time(t: Time) -> String {
    format!(
        "{} UTC",
        crate::value::Value::DateTime((t as i64).saturating_mul(1000))
    )
}

fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// One plain progress line: share done (and ETA from the average rate so far), records,
/// events, `rate` (events/s lately), and the frontier.
pub fn progress_line(unit: Unit, now: &Sample, rate: f64, elapsed: Duration) -> String {
    let mut parts: Vec<String> = Vec::new();
    match (now.done, now.total) {
        (Some(done), Some(total)) => {
            let pct = 100.0 * done as f64 / total.max(1) as f64;
            let amounts = match unit {
                Unit::Bytes => format!("{} of {}", human_bytes(done), human_bytes(total)),
                Unit::Orders => format!("{done} of {total} orders"),
            };
            let mut s = format!("{pct:.1}% ({amounts})");
            if done > 0 && done < total {
                let eta = elapsed.as_secs_f64() * (total - done) as f64 / done as f64;
                s.push_str(&format!(
                    ", ETA {}",
                    show_duration(Duration::from_secs_f64(eta))
                ));
            }
            parts.push(s);
        }
        (Some(done), None) => parts.push(match unit {
            Unit::Bytes => human_bytes(done),
            Unit::Orders => format!("{done} orders"),
        }),
        _ => {}
    }
    if let Some(r) = now.records {
        parts.push(format!("{r} records"));
    }
    parts.push(format!("{} events", now.events));
    parts.push(format!("{rate:.0} events/s"));
    match now.frontier {
        None | Some(0..=1) => {}
        Some(Time::MAX) => parts.push("all times complete".into()),
        Some(f) => parts.push(format!("complete before {}", show_time(f))),
    }
    parts.join(", ")
}

/// `run`'s status line ([`interval_line`]) on stderr once per interval, from a thread, until
/// dropped.
pub struct IntervalLog {
    _reporter: Reporter,
}

impl IntervalLog {
    /// Logs `sample()` every `every`.
    pub fn start(every: Duration, sample: impl Fn() -> Interval + Send + 'static) -> IntervalLog {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut last = (Instant::now(), sample());
                while !nap(&stop, every) {
                    let s = sample();
                    let now = Instant::now();
                    eprintln!(
                        "{}",
                        interval_line(&s, &last.1, (now - last.0).as_secs_f64())
                    );
                    last = (now, s);
                }
            })
        };
        IntervalLog {
            _reporter: Reporter {
                stop,
                thread: Some(thread),
            },
        }
    }
}

/// What `run` logs once per interval.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interval {
    /// Row changes decoded, in all.
    pub events: u64,
    /// Input records read, in all.
    pub records: u64,
    /// The acknowledged frontier.
    pub frontier: Option<Time>,
    /// The wall clock (ms since the epoch).
    pub now_ms: Time,
    /// Consumer lag in messages, when the source knows it.
    pub consumer_lag: Option<u64>,
    /// Completed times handed to the sinks and not yet acknowledged.
    pub sink_pending: u64,
    /// The greatest time the sinks acknowledged.
    pub sink_acknowledged: Option<Time>,
    /// Documents written (upserts and deletes), in all.
    pub documents: u64,
    /// Records rejected to the dead-letter file, in all.
    pub dead_lettered: u64,
    /// Elasticsearch retries, errors and dead-lettered actions, with that sink.
    pub elasticsearch: Option<(u64, u64, u64)>,
}

/// The line `run` logs for the interval from `before` to `now`, `secs` long: events/s over
/// the interval, the frontier and how far it lags the wall clock, consumer lag, and the sinks'
/// state (pending, acknowledged, documents written, retries and errors).
pub fn interval_line(now: &Interval, before: &Interval, secs: f64) -> String {
    let events = now.events.saturating_sub(before.events);
    let mut s = format!(
        "run: {:.0} events/s over {secs:.1}s ({events} events, {} records in all)",
        events as f64 / secs.max(1e-9),
        now.records
    );
    match now.frontier {
        None | Some(0..=1) => s.push_str("; frontier: nothing complete yet"),
        Some(Time::MAX) => s.push_str("; frontier: done"),
        Some(f) => s.push_str(&format!(
            "; frontier {}, lag {}",
            show_time(f),
            show_duration(Duration::from_millis(now.now_ms.saturating_sub(f)))
        )),
    }
    if let Some(l) = now.consumer_lag {
        s.push_str(&format!("; consumer lag {l} messages"));
    }
    s.push_str(&format!(
        "; sink: {} pending, acknowledged {}, {} documents written ({} in the interval)",
        now.sink_pending,
        match now.sink_acknowledged {
            None => "nothing yet".to_string(),
            Some(t) if t == Time::MAX => "all".to_string(),
            Some(t) => format!("up to {}", show_time(t)),
        },
        now.documents,
        now.documents.saturating_sub(before.documents)
    ));
    if let Some((retries, errors, dead)) = now.elasticsearch {
        s.push_str(&format!(
            "; elasticsearch: {retries} retries, {errors} errors, {dead} dead-lettered"
        ));
    }
    s.push_str(&format!("; dead-lettered {}", now.dead_lettered));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_has_share_eta_rate_and_frontier() {
        let now = Sample {
            done: Some(512 * 1024),
            total: Some(2048 * 1024),
            records: Some(1000),
            events: 600,
            frontier: Some(1_772_445_600_000),
        };
        let l = progress_line(Unit::Bytes, &now, 500.0, Duration::from_secs(10));
        assert_eq!(
            l,
            "25.0% (512.0 KiB of 2.0 MiB), ETA 30.0s, 1000 records, 600 events, 500 events/s, \
             complete before 2026-03-02 10:00:00 UTC"
        );
    }

    #[test]
    fn an_interval_line_has_rate_lag_and_sink_state() {
        let before = Interval {
            events: 1000,
            documents: 10,
            ..Interval::default()
        };
        let now = Interval {
            events: 3000,
            records: 3100,
            frontier: Some(1_772_445_600_000),
            now_ms: 1_772_445_602_500,
            consumer_lag: Some(7),
            sink_pending: 2,
            sink_acknowledged: Some(1_772_445_599_000),
            documents: 50,
            dead_lettered: 1,
            elasticsearch: Some((3, 1, 0)),
        };
        assert_eq!(
            interval_line(&now, &before, 10.0),
            "run: 200 events/s over 10.0s (2000 events, 3100 records in all); frontier \
             2026-03-02 10:00:00 UTC, lag 2.5s; consumer lag 7 messages; sink: 2 pending, \
             acknowledged up to 2026-03-02 09:59:59 UTC, 50 documents written (40 in the \
             interval); elasticsearch: 3 retries, 1 errors, 0 dead-lettered; dead-lettered 1"
        );
    }

    #[test]
    fn progress_is_unset_until_published() {
        let p = Progress::default();
        assert_eq!(
            (p.total_bytes(), p.consumed_bytes(), p.frontier(), p.lag()),
            (None, None, None, None)
        );
        p.set_total_bytes(Some(10));
        p.set_lag(1, Some(3));
        p.set_lag(0, Some(4));
        p.set_done();
        assert_eq!(
            (p.consumed_bytes(), p.frontier(), p.lag()),
            (Some(10), Some(Time::MAX), Some(7))
        );
    }
}
