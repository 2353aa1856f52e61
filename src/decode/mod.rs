//! Formats: bytes of one message -> [`ChangeEvent`]s checked against the declared schema.
//!
//! Contract: a decoder never panics on input; it returns the events of a message, a reason the
//! message carries no row change (tombstone, transaction marker, key record), or an error that
//! says what is wrong. The caller adds the source position and keeps the raw record.

pub mod debezium;

use serde::{Deserialize, Serialize};

use crate::schema::TableId;
use crate::time::{Time, Version};
use crate::value::Value;

/// A table row: one value per declared column, in declaration order.
pub type Row = Vec<Value>;

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
    /// Source commit time in milliseconds.
    pub time: Time,
}

/// What one message meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Row changes (two for an update that changes the primary key).
    Events(Vec<ChangeEvent>),
    /// A message that carries no row change, and why (counted, not an error).
    Ignored(&'static str),
}
