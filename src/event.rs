//! The types every stage shares: a source row ([`Row`]), one row change ([`ChangeEvent`]),
//! the transaction it belongs to ([`TxTag`], [`TxMarker`]) and one document change of a view
//! ([`Change`]). Formats produce them, the engine consumes and produces them, sinks consume
//! them; none of those layers is imported here.

use serde::{Deserialize, Serialize};

use crate::schema::TableId;
use crate::time::{Time, Version};
use crate::value::Value;

/// A row of values: a table row (one value per declared column, in declaration order), a key, a
/// joined row or a document.
///
/// Its layout is private: every module reads it through these methods, so that it can become a
/// packed byte encoding later without touching them. Ordering, hashing and serde are those of
/// the value list (`#[serde(transparent)]`): checkpoints and worker routing do not depend on the
/// wrapper.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Row(Vec<Value>);

impl Row {
    /// An empty row.
    pub const fn new() -> Row {
        Row(Vec::new())
    }

    /// An empty row with room for `n` values.
    pub fn with_capacity(n: usize) -> Row {
        Row(Vec::with_capacity(n))
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the row has no values.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value at `i`; panics when `i` is out of range (a planning bug, never data).
    pub fn get(&self, i: usize) -> &Value {
        &self.0[i]
    }

    /// The value at `i`, or `None` past the end.
    pub fn try_get(&self, i: usize) -> Option<&Value> {
        self.0.get(i)
    }

    /// The values, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Value> {
        self.0.iter()
    }

    /// Appends a value.
    pub fn push(&mut self, v: Value) {
        self.0.push(v);
    }

    /// `self` followed by `other`.
    pub fn concat(&self, other: &Row) -> Row {
        let mut out = Vec::with_capacity(self.len() + other.len());
        out.extend_from_slice(&self.0);
        out.extend_from_slice(&other.0);
        Row(out)
    }

    /// The values at `columns`, in that order.
    pub fn project(&self, columns: &[usize]) -> Row {
        Row(columns.iter().map(|&c| self.0[c].clone()).collect())
    }

    /// Replaces the value at `i`, returning the old one.
    pub fn replace(&mut self, i: usize, v: Value) -> Value {
        std::mem::replace(&mut self.0[i], v)
    }

    /// Keeps the first `n` values.
    pub fn truncate(&mut self, n: usize) {
        self.0.truncate(n);
    }
}

impl From<Vec<Value>> for Row {
    fn from(values: Vec<Value>) -> Row {
        Row(values)
    }
}

impl PartialEq<Vec<Value>> for Row {
    fn eq(&self, other: &Vec<Value>) -> bool {
        self.0 == *other
    }
}

impl FromIterator<Value> for Row {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Row {
        Row(iter.into_iter().collect())
    }
}

impl IntoIterator for Row {
    type Item = Value;
    type IntoIter = std::vec::IntoIter<Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Row {
    type Item = &'a Value;
    type IntoIter = std::slice::Iter<'a, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Extend<Value> for Row {
    fn extend<I: IntoIterator<Item = Value>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

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
