//! Emit: per completed time, only the documents that changed, then the sink.
//!
//! Contract: once the frontier has passed `t`, the updates of a view at `t` are consolidated;
//! per group key a surviving `+` is an upsert of the new document, a key with only `-` is a
//! delete. A key whose `-old +new` cancel (the same document) emits nothing. The sink operator
//! runs on worker 0, writes each completed time in `(view, id)` order and holds a capability
//! until it has written it, so a probe after it passes `t` only when `t` has been handed to the sink.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use differential_dataflow::VecCollection;
use differential_dataflow::consolidation::consolidate;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::decode::Row;
use crate::metrics::Metrics;
use crate::sink::{Change, Sink};
use crate::time::{Diff, Time};

/// Updates of one view held for one time, with the capability to emit them.
type Pending = (Capability<Time>, Vec<((Row, Row), Diff)>);

/// Turns a view's `(key, doc)` collection into the changes of each completed time.
pub fn emit_changes<'s>(
    view: usize,
    docs: VecCollection<'s, Time, (Row, Row)>,
) -> StreamVec<'s, Time, Change> {
    docs.inner
        .unary_frontier::<CapacityContainerBuilder<Vec<Change>>, _, _, _>(
            Pipeline,
            "EmitChanges",
            move |_cap, _info| {
                let mut pending: BTreeMap<Time, Pending> = BTreeMap::new();
                move |(input, frontier), output| {
                    input.for_each(|cap, data| {
                        for (record, time, diff) in data.drain(..) {
                            pending
                                .entry(time)
                                .or_insert_with(|| (cap.delayed(&time, 0), Vec::new()))
                                .1
                                .push((record, diff));
                        }
                    });
                    while let Some(entry) = pending.first_entry() {
                        if frontier.less_equal(entry.key()) {
                            break;
                        }
                        let (time, (cap, mut updates)) = entry.remove_entry();
                        consolidate(&mut updates);
                        let mut latest: BTreeMap<Row, Option<Row>> = BTreeMap::new();
                        for ((key, doc), diff) in updates {
                            let slot = latest.entry(key).or_insert(None);
                            if diff > 0 {
                                *slot = Some(doc);
                            }
                        }
                        let mut session = output.session(&cap);
                        for (key, doc) in latest {
                            session.give(Change {
                                view,
                                time,
                                id: document_id(&key),
                                doc,
                            });
                        }
                    }
                }
            },
        )
}

/// Collects all changes on worker 0 and writes them to the sink once each time completes.
/// The sink is taken from `sink` by worker 0; other workers only forward.
pub fn write_to_sink<'s>(
    changes: StreamVec<'s, Time, Change>,
    worker_index: usize,
    sink: Arc<Mutex<Option<Box<dyn Sink>>>>,
    metrics: Arc<Metrics>,
    failure: Arc<Mutex<Option<String>>>,
) -> StreamVec<'s, Time, ()> {
    changes.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Exchange::new(|_: &Change| 0),
        "Sink",
        move |_cap, info| {
            let _ = info;
            let mut mine: Option<Box<dyn Sink>> = None;
            let mut flushed = false;
            let mut pending: BTreeMap<Time, (Capability<Time>, Vec<Change>)> = BTreeMap::new();
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
                while let Some(entry) = pending.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (time, (_cap, mut batch)) = entry.remove_entry();
                    batch.sort_by(|a, b| (a.view, &a.id).cmp(&(b.view, &b.id)));
                    let ups = batch.iter().filter(|c| c.doc.is_some()).count() as u64;
                    Metrics::add(&metrics.upserts, ups);
                    Metrics::add(&metrics.deletes, batch.len() as u64 - ups);
                    if let Some(s) = mine.as_mut()
                        && let Err(e) = s.submit(time, &batch)
                    {
                        let mut f = failure.lock().expect("failure lock");
                        if f.is_none() {
                            *f = Some(format!("sink failed at time {time}: {e:#}"));
                        }
                    }
                    // `_cap` drops here: the time is written.
                }
                if frontier.frontier().is_empty() && !flushed {
                    flushed = true;
                    if let Some(Err(e)) = mine.as_mut().map(|s| s.flush()) {
                        let mut f = failure.lock().expect("failure lock");
                        if f.is_none() {
                            *f = Some(format!("sink failed to flush: {e:#}"));
                        }
                    }
                }
            }
        },
    )
}

/// The document id of a group: its GROUP BY values, `|`-separated; `\` escapes `|` and `\`,
/// and NULL is `\N`. Stable across runs and workers.
pub fn document_id(key: &[crate::value::Value]) -> String {
    let mut out = String::new();
    for (i, v) in key.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        if v.is_null() {
            out.push_str("\\N");
            continue;
        }
        for c in v.to_string().chars() {
            if c == '|' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}
