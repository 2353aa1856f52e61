//! The engine, pure: inputs (row changes and transaction markers) at source times in, the
//! changed documents of every view at each completed time out. It knows nothing of files,
//! topics, formats or sinks: [`crate::pipeline`] drives it.
//!
//! `inputs -> tx (transactions whole) -> ingest (newest version wins) -> one collection per
//! table -> views (render) -> emit (changes per completed time)`.

pub mod accum;
pub mod emit;
pub mod ingest;
pub mod render;
pub mod row_spine;
pub mod tx;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use differential_dataflow::AsCollection;
use differential_dataflow::VecCollection;
use timely::dataflow::StreamVec;
use timely::dataflow::operators::Concatenate;
use timely::dataflow::operators::vec::Partition;

use crate::event::{Change, Input, Row};
use crate::metrics::Metrics;
use crate::schema::TableId;
use crate::sql::Dataflows;
use crate::time::Time;

/// What [`build`] returns.
pub struct Engine<'s> {
    /// The changes of every view, per completed time (each worker emits its share).
    pub changes: StreamVec<'s, Time, Change>,
    /// The worker's applied ingest state (for checkpoints).
    pub ingest: ingest::IngestHandle,
}

/// Builds the engine over `inputs` in the current dataflow.
pub fn build<'s>(
    inputs: StreamVec<'s, Time, Input>,
    dataflows: &Dataflows,
    tx_options: tx::TxOptions,
    tx_state: Arc<Mutex<tx::TxState>>,
    ingest_options: ingest::IngestOptions,
    metrics: Arc<Metrics>,
) -> Engine<'s> {
    let scope = inputs.scope();
    let events = tx::assemble(inputs, tx_options, tx_state, metrics.clone());
    let (rows, ingest) = ingest::ingest(events, ingest_options, metrics.clone());
    let used: BTreeSet<TableId> = dataflows.used_tables();
    // Route each row to its table's collection (moved, not cloned per table).
    let parts = rows.inner.partition(
        dataflows.catalog.tables.len() as u64,
        |((t, row), time, diff)| (t as u64, (row, time, diff)),
    );
    let tables: Vec<Option<VecCollection<'_, Time, Row>>> = parts
        .into_iter()
        .enumerate()
        .map(|(t, s)| used.contains(&t).then(|| s.as_collection()))
        .collect();
    let mut shared = render::Shared::new(&dataflows.views);
    let streams: Vec<_> = dataflows
        .views
        .iter()
        .enumerate()
        .map(|(vi, plan)| {
            let docs = render::render_view(plan, &tables, &mut shared, metrics.clone());
            emit::emit_changes(vi, docs)
        })
        .collect();
    Engine {
        changes: scope.concatenate(streams),
        ingest,
    }
}
