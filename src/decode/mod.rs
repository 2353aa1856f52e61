//! Formats ([`Decoder`]): bytes of one message -> [`ChangeEvent`]s checked against the declared
//! schema, transaction boundaries, or a reason the message carries nothing.
//!
//! Contract: a decoder never panics on input; it returns the events of a message, a reason the
//! message carries no row change (tombstone, transaction marker, key record, schema change,
//! heartbeat), or an error that
//! says what is wrong. The caller adds the source position and keeps the raw record.

pub mod binlog;
pub mod ddl;
pub mod debezium;
mod row_image;

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

    /// Decodes one message read at `position` of its partition (the source's own encoding of
    /// positions; the binlog source puts the file sequence in the high 32 bits and the byte
    /// offset in the low ones). Decoders that do not need it decode the bytes alone.
    fn decode_at(&mut self, _position: u64, bytes: &[u8]) -> Result<Decoded, DecodeError> {
        self.decode(bytes)
    }

    /// Parts of the messages decoded since the last call that could not be used, each with its
    /// own position and raw bytes (a binlog transaction is one message; one undecodable event of
    /// it is one part). The caller dead-letters and counts them; a `fatal` one stops the run.
    fn take_rejected(&mut self) -> Vec<PartRejected> {
        Vec::new()
    }

    /// The tables that have rows in the state restored from a checkpoint (the binlog decoder
    /// refuses a statement that empties one of them without row events, as it does for the
    /// tables whose rows it applied itself).
    fn restored(&mut self, _tables: &[crate::schema::TableId]) {}
}

/// A part of a message that was rejected (see [`Decoder::take_rejected`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartRejected {
    /// Where it came from (a binlog file).
    pub source: String,
    /// What `line` counts (`"pos"`: a byte offset in the binlog file).
    pub unit: &'static str,
    /// Its position.
    pub line: u64,
    /// What was wrong.
    pub error: String,
    /// The raw bytes (a binlog event).
    pub raw: Vec<u8>,
    /// Going on would give wrong results (and the user did not ask to skip): stop the run.
    pub fatal: bool,
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
