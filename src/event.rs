//! The types every stage shares: a source row ([`Row`]), one row change ([`ChangeEvent`]),
//! the transaction it belongs to ([`TxTag`], [`TxMarker`]) and one document change of a view
//! ([`Change`]). Formats produce them, the engine consumes and produces them, sinks consume
//! them; none of those layers is imported here.

use serde::{Deserialize, Serialize};

use crate::schema::TableId;
use crate::time::{Time, Version};

pub use crate::row::Row;

/// The source transaction a row change belongs to (Debezium's `transaction` block).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxTag {
    /// Transaction id (`file:pos` or a GTID).
    pub id: String,
    /// `db.table` of the change, as Debezium names the data collection.
    pub collection: String,
}

/// One row change of one source table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// The table.
    pub table: TableId,
    /// Primary-key values, in primary-key order.
    pub key: Row,
    /// The row after the change; `None` for a delete.
    pub row: Option<Row>,
    /// Source position: the newest version of a key wins.
    pub version: Version,
    /// Source commit time in milliseconds (for a row of a transaction, provisional until the
    /// transaction is complete: see [`crate::dataflow::tx`]).
    pub time: Time,
    /// The transaction, when the source carries transaction metadata.
    pub tx: Option<Box<TxTag>>,
}

/// A transaction boundary (Debezium BEGIN/END on `<prefix>.transaction` or inline).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxMarker {
    /// Transaction id.
    pub id: String,
    /// The marker's time (`ts_ms`): not monotonic, only a hint for the commit time.
    pub time: Time,
    /// `None` for BEGIN; for END, the number of events per data collection (`db.table`).
    pub end: Option<Vec<(String, u64)>>,
}

/// What the engine receives from a source: a row change or a transaction boundary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// A row change.
    Event(ChangeEvent),
    /// The END of a transaction (BEGIN markers carry nothing the engine needs).
    TxEnd(TxMarker),
}

impl Input {
    /// The (provisional) time of this input.
    pub fn time(&self) -> Time {
        match self {
            Input::Event(e) => e.time,
            Input::TxEnd(m) => m.time,
        }
    }

    /// Sets the (provisional) time.
    pub fn set_time(&mut self, t: Time) {
        match self {
            Input::Event(e) => e.time = t,
            Input::TxEnd(m) => m.time = t,
        }
    }
}

/// One document change of one view at one time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Change {
    /// Index of the view (views are sorted by name).
    pub view: usize,
    /// The time at which the change happened.
    pub time: Time,
    /// Document id (the GROUP BY values).
    pub id: String,
    /// The new document, or `None` when the group is gone.
    pub doc: Option<Row>,
}
