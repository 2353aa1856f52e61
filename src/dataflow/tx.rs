//! Transactions made whole: every row of one source transaction gets one time, its commit time,
//! and no time passes until the transaction is complete.
//!
//! Contract: rows that carry a transaction tag ([`TxTag`], from Debezium's `transaction` block)
//! and END markers ([`TxMarker`]) are gathered on worker 0 (one place sees a transaction whole,
//! whichever partitions its rows and markers came from). A transaction is **complete** once its
//! END marker has arrived and, for every data collection the END lists that is a declared table,
//! as many distinct row changes (by version) have arrived as the END counts. Complete
//! transactions are released in the order their END markers arrived (the commit order of the
//! source), each at
//! `commit = max(END time, its rows' newest time, the previous transaction's commit time)`,
//! so commit times never go backwards. The operator holds its capability at the oldest
//! provisional time it buffers, so the frontier cannot pass a transaction that is not complete.
//!
//! A transaction that stays incomplete (a row rejected by the decoder, a marker partition that
//! is not consumed) is released as it is when the input ends, or after the transaction timeout
//! (wall clock), with a warning and a count in `incomplete_transactions`. Rows of a transaction
//! that was already released (redelivered duplicates) pass through at their own time; ingest
//! drops them as duplicates. Rows without a tag pass through untouched, on their own worker.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Map, Partition};
use timely::dataflow::operators::{Capability, Concatenate};

use crate::event::{ChangeEvent, Input};
use crate::metrics::Metrics;
use crate::time::{Time, Version};

/// How many released transaction ids are remembered (to recognise redelivered rows).
const DONE_MEMORY: usize = 100_000;

/// The part of the assembler's state that outlives a restart, and what the checkpointing driver
/// needs to know about transactions released but not yet emitted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TxState {
    /// Commit time of the last released transaction.
    pub last_commit: Time,
    /// Recently released transactions: `(id, commit time)`, oldest first.
    pub done: VecDeque<(String, Time)>,
    /// Released transactions whose commit time may not have been emitted yet:
    /// commit time -> the oldest provisional time of their inputs (rows and END marker).
    #[serde(skip)]
    pub in_flight: BTreeMap<Time, Time>,
    /// Transactions waiting to complete now (the driver keeps reading while there are some,
    /// even when the frontier does not move: their END or rows may still be unread).
    #[serde(skip)]
    pub waiting: usize,
}

impl TxState {
    /// The oldest provisional time of any transaction released at a commit time `>= frontier`:
    /// records read at or after it may still be needed to rebuild what is not yet emitted.
    pub fn floor(&mut self, frontier: Time) -> Option<Time> {
        // Transactions emitted below the frontier are no longer in flight.
        let keep = self.in_flight.split_off(&frontier);
        self.in_flight = keep;
        self.in_flight.values().min().copied()
    }
}

/// Options of the assembler.
#[derive(Clone, Debug)]
pub struct TxOptions {
    /// `db.table` names of the declared tables (lower case): only their counts are awaited.
    pub collections: Arc<HashSet<String>>,
    /// Release an incomplete transaction after this long without completing.
    pub timeout: Option<Duration>,
}

#[derive(Default)]
struct Pending {
    rows: Vec<ChangeEvent>,
    /// Row changes seen, by (collection, version, whether a row is left): an update that
    /// changes the primary key is two changes of one version (a delete and a create), and
    /// Debezium's END counts both.
    versions: HashSet<(String, Version, bool)>,
    counts: HashMap<String, u64>,
    end: Option<(Time, Vec<(String, u64)>)>,
    /// The oldest provisional time among its rows and marker.
    min_time: Option<Time>,
    since: Option<Instant>,
}

impl Pending {
    fn note_time(&mut self, t: Time) {
        self.min_time = Some(self.min_time.map_or(t, |m| m.min(t)));
        self.since.get_or_insert_with(Instant::now);
    }

    fn complete(&self, collections: &HashSet<String>) -> bool {
        match &self.end {
            None => false,
            Some((_, counts)) => counts.iter().all(|(c, n)| {
                let c = c.to_ascii_lowercase();
                !collections.contains(&c) || self.counts.get(&c).copied().unwrap_or(0) >= *n
            }),
        }
    }
}

/// Assigns transaction commit times; returns every row change at its final time.
pub fn assemble<'s>(
    inputs: StreamVec<'s, Time, Input>,
    options: TxOptions,
    shared: Arc<Mutex<TxState>>,
    metrics: Arc<Metrics>,
) -> StreamVec<'s, Time, ChangeEvent> {
    let scope = inputs.scope();
    let mut parts = inputs.partition(2, |i| match i {
        Input::Event(ref e) if e.tx.is_none() => (0, i),
        other => (1, other),
    });
    let tagged = parts.pop().expect("two parts");
    let plain = parts.pop().expect("two parts").map(|i| match i {
        Input::Event(e) => e,
        Input::TxEnd(_) => unreachable!("markers are routed to the assembler"),
    });
    let assembled = tagged.unary_frontier::<CapacityContainerBuilder<Vec<ChangeEvent>>, _, _, _>(
        Exchange::new(|_: &Input| 0),
        "Transactions",
        move |_cap, info| {
            let activator = scope.activator_for(info.address.clone());
            let mut pending: HashMap<String, Pending> = HashMap::new();
            let mut ends: VecDeque<String> = VecDeque::new();
            let mut held: Option<Capability<Time>> = None;
            let mut done_set: HashSet<String> = shared
                .lock()
                .expect("tx lock")
                .done
                .iter()
                .map(|(id, _)| id.clone())
                .collect();
            move |(input, frontier), output| {
                let mut passthrough: Vec<ChangeEvent> = Vec::new();
                input.for_each(|cap, data| {
                    if let Some(t) = cap.least()
                        && held.as_ref().is_none_or(|h| t < h.time())
                    {
                        held = cap.retain_least(0);
                    }
                    for item in data.drain(..) {
                        match item {
                            Input::Event(ev) => {
                                let tag = ev.tx.as_ref().expect("tagged");
                                if done_set.contains(&tag.id) {
                                    passthrough.push(ev);
                                    continue;
                                }
                                let collection = tag.collection.to_ascii_lowercase();
                                let p = pending.entry(tag.id.clone()).or_default();
                                p.note_time(ev.time);
                                if p.versions.insert((
                                    collection.clone(),
                                    ev.version,
                                    ev.row.is_some(),
                                )) {
                                    *p.counts.entry(collection).or_default() += 1;
                                }
                                p.rows.push(ev);
                            }
                            Input::TxEnd(m) => {
                                if done_set.contains(&m.id) {
                                    continue;
                                }
                                let p = pending.entry(m.id.clone()).or_default();
                                p.note_time(m.time);
                                if p.end.is_none() {
                                    p.end = Some((m.time, m.end.unwrap_or_default()));
                                    ends.push_back(m.id);
                                }
                            }
                        }
                    }
                });
                let Some(cap) = held.as_mut() else {
                    return;
                };
                if !passthrough.is_empty() {
                    output.session(&*cap).give_iterator(passthrough.drain(..));
                }
                let input_done = frontier.is_empty();
                let mut state = shared.lock().expect("tx lock");
                // Release complete transactions in END order; an incomplete one blocks those
                // behind it until it completes or times out.
                while let Some(id) = ends.front() {
                    let p = pending.get(id).expect("ends are pending");
                    let timed_out = options
                        .timeout
                        .is_some_and(|t| p.since.is_some_and(|s| s.elapsed() >= t));
                    let complete = p.complete(&options.collections);
                    if !complete && !input_done && !timed_out {
                        break;
                    }
                    let id = ends.pop_front().expect("front");
                    let p = pending.remove(&id).expect("pending");
                    if !complete {
                        warn_incomplete(&metrics, &id, &p);
                    }
                    release(id, p, cap, output, &mut state, &mut done_set, &metrics);
                }
                // Transactions whose END never came.
                let stale: Vec<String> = pending
                    .iter()
                    .filter(|(_, p)| {
                        p.end.is_none()
                            && (input_done
                                || options
                                    .timeout
                                    .is_some_and(|t| p.since.is_some_and(|s| s.elapsed() >= t)))
                    })
                    .map(|(id, _)| id.clone())
                    .collect();
                let mut stale: Vec<(Time, String)> = stale
                    .into_iter()
                    .map(|id| (pending[&id].min_time.unwrap_or(0), id))
                    .collect();
                stale.sort();
                for (_, id) in stale {
                    let p = pending.remove(&id).expect("pending");
                    warn_incomplete(&metrics, &id, &p);
                    release(id, p, cap, output, &mut state, &mut done_set, &metrics);
                }
                state.waiting = pending.len();
                drop(state);
                match pending.values().filter_map(|p| p.min_time).min() {
                    Some(t) => {
                        let t = t.max(*cap.time());
                        cap.downgrade(&t);
                        if let Some(timeout) = options.timeout {
                            activator.activate_after(timeout.min(Duration::from_secs(1)));
                        }
                    }
                    None => held = None,
                }
            }
        },
    );
    scope.concatenate([plain, assembled])
}

fn warn_incomplete(metrics: &Metrics, id: &str, p: &Pending) {
    let n = metrics
        .incomplete_transactions
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if n < 20 {
        let counts: BTreeMap<&String, &u64> = p.counts.iter().collect();
        tracing::warn!(
            transaction = id,
            end_seen = p.end.is_some(),
            expected = ?p.end.as_ref().map(|e| &e.1),
            seen = ?counts,
            "transaction released incomplete (input ended or transaction timeout)"
        );
    }
}

fn release(
    id: String,
    mut p: Pending,
    cap: &Capability<Time>,
    output: &mut timely::dataflow::operators::generic::OutputBuilderSession<
        '_,
        Time,
        CapacityContainerBuilder<Vec<ChangeEvent>>,
    >,
    state: &mut TxState,
    done_set: &mut HashSet<String>,
    metrics: &Metrics,
) {
    let newest_row = p.rows.iter().map(|r| r.time).max().unwrap_or(0);
    let end_time = p.end.as_ref().map_or(0, |e| e.0);
    let commit = end_time
        .max(newest_row)
        .max(state.last_commit)
        .max(*cap.time());
    state.last_commit = commit;
    metrics
        .transactions
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let floor = p.min_time.unwrap_or(commit);
    let entry = state.in_flight.entry(commit).or_insert(floor);
    *entry = (*entry).min(floor);
    state.done.push_back((id.clone(), commit));
    done_set.insert(id);
    while state.done.len() > DONE_MEMORY {
        if let Some((old, _)) = state.done.pop_front() {
            done_set.remove(&old);
        }
    }
    for r in &mut p.rows {
        r.time = commit;
    }
    output.session(cap).give_iterator(p.rows.drain(..));
}
