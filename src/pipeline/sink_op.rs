//! The sink operator: gathers every view's changes on worker 0, hands each completed time to
//! the sink in `(view, id)` order, and holds that time's capability until the sink has
//! acknowledged it. A probe after this operator therefore passes `t` only once every change at
//! times `<= t` is durable: offset commits and checkpoints follow it.
//!
//! The documents restored from a checkpoint appear at [`RESTORED`] time; the sinks hold them
//! already (for views whose definition did not change), so they are only recorded.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::event::Change;
use crate::metrics::Metrics;
use crate::sink::{Recorder, Sink};
use crate::time::Time;

/// The time of documents restored from a checkpoint.
pub const RESTORED: Time = 0;

/// How often unacknowledged times are polled.
const ACK_POLL: Duration = Duration::from_millis(2);

/// Writes all changes through `sink` (taken by worker 0). `resent[view]` says whether a view's
/// restored documents must be written again (its definition changed since the checkpoint).
pub fn write<'s>(
    changes: StreamVec<'s, Time, Change>,
    worker_index: usize,
    sink: Arc<Mutex<Option<Recorder>>>,
    resent: Arc<Vec<bool>>,
    metrics: Arc<Metrics>,
    failure: Arc<Mutex<Option<String>>>,
) -> StreamVec<'s, Time, ()> {
    let scope = changes.scope();
    changes.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Exchange::new(|_: &Change| 0),
        "Sink",
        move |_cap, info| {
            let activator = scope.activator_for(info.address.clone());
            let mut mine: Option<Recorder> = None;
            let mut flushed = false;
            let mut failed = false;
            let mut pending: BTreeMap<Time, (Capability<Time>, Vec<Change>)> = BTreeMap::new();
            let mut unacked: VecDeque<(Time, Capability<Time>)> = VecDeque::new();
            let fail = move |msg: String| {
                let mut f = failure.lock().expect("failure lock");
                if f.is_none() {
                    *f = Some(msg);
                }
            };
            move |(input, frontier), _output| {
                if mine.is_none() && worker_index == 0 {
                    mine = sink.lock().expect("sink lock").take();
                }
                input.for_each(|cap, data| {
                    for change in data.drain(..) {
                        let t = change.time;
                        pending
                            .entry(t)
                            .or_insert_with(|| (cap.delayed(&t, 0), Vec::new()))
                            .1
                            .push(change);
                    }
                });
                if failed {
                    // The engine stops; hold nothing.
                    pending.clear();
                    unacked.clear();
                    return;
                }
                let Some(s) = mine.as_mut() else {
                    pending.clear();
                    return;
                };
                while let Some(entry) = pending.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (time, (cap, mut batch)) = entry.remove_entry();
                    batch.sort_by(|a, b| (a.view, &a.id).cmp(&(b.view, &b.id)));
                    if time == RESTORED {
                        let (again, kept): (Vec<Change>, Vec<Change>) =
                            batch.into_iter().partition(|c| resent[c.view]);
                        s.record(&kept);
                        batch = again;
                        if batch.is_empty() {
                            continue;
                        }
                    }
                    let ups = batch.iter().filter(|c| c.doc.is_some()).count() as u64;
                    Metrics::add(&metrics.upserts, ups);
                    Metrics::add(&metrics.deletes, batch.len() as u64 - ups);
                    if let Err(e) = s.submit(time, &batch) {
                        failed = true;
                        fail(format!("sink failed at time {time}: {e:#}"));
                        return;
                    }
                    unacked.push_back((time, cap));
                    metrics
                        .sink_pending
                        .store(unacked.len() as u64, Ordering::Relaxed);
                }
                if !unacked.is_empty() {
                    match s.acknowledged() {
                        Ok(acked) => {
                            if let Some(a) = acked {
                                metrics.sink_acknowledged.store(a, Ordering::Relaxed);
                            }
                            while unacked
                                .front()
                                .is_some_and(|(t, _)| acked.is_some_and(|a| *t <= a))
                            {
                                unacked.pop_front();
                            }
                            metrics
                                .sink_pending
                                .store(unacked.len() as u64, Ordering::Relaxed);
                        }
                        Err(e) => {
                            failed = true;
                            fail(format!("sink failed: {e:#}"));
                            return;
                        }
                    }
                    if !unacked.is_empty() {
                        activator.activate_after(ACK_POLL);
                    }
                }
                if frontier.is_empty() && pending.is_empty() && unacked.is_empty() && !flushed {
                    flushed = true;
                    if let Err(e) = s.flush() {
                        failed = true;
                        fail(format!("sink failed to flush: {e:#}"));
                    }
                }
            }
        },
    )
}
