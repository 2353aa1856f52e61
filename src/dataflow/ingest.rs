//! Ingest: change events -> one differential collection of `(table, row)`, newest version wins.
//!
//! Contract (see [`crate::time`]): events are exchanged by `(table, key)`, so each key lives on
//! one worker. Events are held until the input frontier passes their time `t`; then the events
//! of `t` are applied per key in version order against the key's newest applied version: a
//! newer version replaces the row (`-old`, `+new` at `t`), the same version is a duplicate and
//! an older one is stale (both counted, nothing emitted). A delete keeps its version as a
//! tombstone, so a stale insert that arrives after it cannot resurrect the row. Late events
//! (time below the sender's frontier) arrive already moved to that frontier by the source.
//!
//! With a tombstone retention `R` ([`IngestOptions`]), a tombstone is dropped once the input
//! frontier passes its time by more than `R` (counted, `tombstones_compacted`), so the state is
//! bounded by the live rows plus the deletes of the last `R`. The driver then refuses events
//! whose commit time is more than `R` behind its frontier (dead letters): an event that could be
//! older than a forgotten delete is never applied. Restored tombstones (from a checkpoint, at
//! [`IngestOptions::restored_time`]) count from the first time after the restore.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::rc::Rc;
use std::sync::Arc;

use differential_dataflow::{AsCollection, Hashable, VecCollection};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::decode::{ChangeEvent, Row};
use crate::metrics::Metrics;
use crate::schema::TableId;
use crate::time::{Diff, Time, Version};

type Out = ((TableId, Row), Time, Diff);

/// The applied state of one worker's keys: `(table, key) -> (newest version, row or tombstone)`.
pub type IngestState = rustc_hash::FxHashMap<(TableId, Row), (Version, Option<Row>)>;

/// Shared with the worker's driver (same thread), which reads it for checkpoints.
pub type IngestHandle = Rc<RefCell<IngestState>>;

/// How ingest keeps tombstones.
#[derive(Clone, Copy, Debug, Default)]
pub struct IngestOptions {
    /// Drop a tombstone once the frontier passes its time by more than this (milliseconds);
    /// `None` keeps tombstones for the life of the state.
    pub tombstone_retention: Option<Time>,
    /// The time restored keys arrive at (their own times are not known).
    pub restored_time: Time,
}

/// Tombstones by the time of their delete: `(table, key, version)`.
type TombstoneIndex = BTreeMap<Time, Vec<(TableId, Row, Version)>>;

/// Applies change events with newest-version-wins and returns the table rows as a collection,
/// and a handle on the applied state. At a moment when the frontier is `F`, the state holds
/// exactly the changes at times `< F` (events at later times wait in the operator).
pub fn ingest<'s>(
    events: StreamVec<'s, Time, ChangeEvent>,
    options: IngestOptions,
    metrics: Arc<Metrics>,
) -> (VecCollection<'s, Time, (TableId, Row)>, IngestHandle) {
    let handle: IngestHandle = Default::default();
    let shared = handle.clone();
    let pact = Exchange::new(|e: &ChangeEvent| (e.table, &e.key).hashed());
    let rows = events.unary_frontier::<CapacityContainerBuilder<Vec<Out>>, _, _, _>(
        pact,
        "Ingest",
        move |_cap, _info| {
            let mut pending: BTreeMap<Time, Vec<ChangeEvent>> = BTreeMap::new();
            let mut held: Option<Capability<Time>> = None;
            let mut ready: Vec<Out> = Vec::new();
            let mut tombstones: TombstoneIndex = BTreeMap::new();
            let mut restored_tombstones: Vec<(TableId, Row, Version)> = Vec::new();
            move |(input, frontier), output| {
                let mut state = shared.borrow_mut();
                input.for_each(|cap, data| {
                    if let Some(t) = cap.least()
                        && held.as_ref().is_none_or(|h| t < h.time())
                    {
                        held = cap.retain_least(0);
                    }
                    for ev in data.drain(..) {
                        pending.entry(ev.time).or_default().push(ev);
                    }
                });
                while let Some(entry) = pending.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (time, mut events) = entry.remove_entry();
                    if time != options.restored_time && !restored_tombstones.is_empty() {
                        // At or after the restored frontier: the latest their deletes can be.
                        tombstones
                            .entry(time)
                            .or_default()
                            .append(&mut restored_tombstones);
                    }
                    // Per key, in version order.
                    events.sort_by(|a, b| {
                        (a.table, &a.key, a.version).cmp(&(b.table, &b.key, b.version))
                    });
                    let (mut dups, mut stale) = (0, 0);
                    let mut i = 0;
                    while i < events.len() {
                        let mut j = i;
                        while j < events.len()
                            && events[j].table == events[i].table
                            && events[j].key == events[i].key
                        {
                            j += 1;
                        }
                        let table = events[i].table;
                        let key = std::mem::take(&mut events[i].key);
                        let entry = state.entry((table, key));
                        let applied = match &entry {
                            Entry::Occupied(o) => Some(o.get().0),
                            Entry::Vacant(_) => None,
                        };
                        // The newest of this time's events for the key, if newer than the
                        // applied version.
                        let mut newest: Option<(Version, Option<Row>)> = None;
                        for ev in &mut events[i..j] {
                            match newest.as_ref().map(|n| n.0).or(applied) {
                                Some(v) if v == ev.version => dups += 1,
                                Some(v) if v > ev.version => stale += 1,
                                _ => newest = Some((ev.version, ev.row.take())),
                            }
                        }
                        if let Some((version, new_row)) = newest {
                            if options.tombstone_retention.is_some() && new_row.is_none() {
                                let k = (table, entry.key().1.clone(), version);
                                if time == options.restored_time {
                                    restored_tombstones.push(k);
                                } else {
                                    tombstones.entry(time).or_default().push(k);
                                }
                            }
                            match entry {
                                Entry::Occupied(mut o) => {
                                    let slot = o.get_mut();
                                    slot.0 = version;
                                    if slot.1 != new_row {
                                        if let Some(old) = std::mem::replace(&mut slot.1, new_row) {
                                            ready.push(((table, old), time, -1));
                                        }
                                        if let Some(new) = &slot.1 {
                                            ready.push(((table, new.clone()), time, 1));
                                        }
                                    }
                                }
                                Entry::Vacant(v) => {
                                    if let Some(new) = &new_row {
                                        ready.push(((table, new.clone()), time, 1));
                                    }
                                    v.insert((version, new_row));
                                }
                            }
                        }
                        i = j;
                    }
                    Metrics::add(&metrics.duplicates, dups);
                    Metrics::add(&metrics.stale, stale);
                }
                if let (Some(r), Some(&f)) =
                    (options.tombstone_retention, frontier.frontier().first())
                {
                    let mut compacted = 0;
                    while let Some(e) = tombstones.first_entry() {
                        if e.key().saturating_add(r) >= f {
                            break;
                        }
                        for (table, key, version) in e.remove() {
                            let k = (table, key);
                            // Still that tombstone (not re-created or deleted again since).
                            if state
                                .get(&k)
                                .is_some_and(|s| s.0 == version && s.1.is_none())
                            {
                                state.remove(&k);
                                compacted += 1;
                            }
                        }
                    }
                    Metrics::add(&metrics.tombstones_compacted, compacted);
                }
                // One message for all completed times: its capability (the held one) is at
                // or before every record's time, as differential collections require.
                if !ready.is_empty() {
                    let cap = held.as_ref().expect("pending events hold a capability");
                    output.session(cap).give_iterator(ready.drain(..));
                }
                match pending.keys().next() {
                    Some(t) => {
                        if let Some(h) = held.as_mut() {
                            h.downgrade(t);
                        }
                    }
                    None => held = None,
                }
            }
        },
    );
    (rows.as_collection(), handle)
}
