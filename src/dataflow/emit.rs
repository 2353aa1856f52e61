//! Emit: per completed time, only the documents that changed, then the sink.
//!
//! Contract: once the frontier has passed `t`, the updates of a view at `t` are consolidated;
//! per group key a surviving `+` is an upsert of the new document, a key with only `-` is a
//! delete. A key whose `-old +new` cancel (the same document) emits nothing. Where the changes
//! go is not this module's concern (see `pipeline::sink_op`).

use std::collections::BTreeMap;

use differential_dataflow::VecCollection;
use differential_dataflow::consolidation::consolidate;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::event::{Change, Row};
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

/// The document id of a group: its GROUP BY values, `|`-separated; `\` escapes `|` and `\`,
/// and NULL is `\N`; the one document of a view without GROUP BY is `all`. Stable across runs
/// and workers.
pub fn document_id<V: std::borrow::Borrow<crate::value::Value>>(
    key: impl IntoIterator<Item = V>,
) -> String {
    let mut out = String::new();
    let mut key = key.into_iter().peekable();
    if key.peek().is_none() {
        return "all".into();
    }
    for (i, v) in key.enumerate() {
        let v = v.borrow();
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
