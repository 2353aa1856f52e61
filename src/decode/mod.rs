//! Formats ([`Decoder`]): bytes of one message -> [`ChangeEvent`]s checked against the declared
//! schema, transaction boundaries, or a reason the message carries nothing.
//!
//! Contract: a decoder never panics on input; it returns the events of a message, a reason the
//! message carries no row change (tombstone, transaction marker, key record, schema change,
//! heartbeat), or an error that
//! says what is wrong. The caller adds the source position and keeps the raw record.

pub mod debezium;

pub use crate::event::{ChangeEvent, Row, TxMarker, TxTag};

/// Why a message could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// A format: the bytes of one message -> what they mean. Never panics on input.
pub trait Decoder: Send {
    /// Decodes one message value.
    fn decode(&mut self, bytes: &[u8]) -> Result<Decoded, DecodeError>;

    /// Column values seen since the last call that the declared schema does not have and that
    /// were ignored (schema drift, see [`debezium::SchemaDrift`]); resets the count.
    fn take_undeclared_columns(&mut self) -> u64 {
        0
    }
}

/// What one message meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Row changes (two for an update that changes the primary key).
    Events(Vec<ChangeEvent>),
    /// The END marker of a source transaction.
    TxEnd(TxMarker),
    /// A message that carries no row change, and why (counted, not an error): `"tombstone"`,
    /// `"key record"`, `"transaction BEGIN"`, `"schema change"`, `"heartbeat"`.
    Ignored(&'static str),
}
