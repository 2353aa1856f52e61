//! The time contract, in one place.
//!
//! - [`Time`] is the differential-dataflow time of every collection: the source commit time in
//!   milliseconds since the epoch (Debezium `source.ts_ms`). All rows of one source transaction
//!   carry the same time, so a transaction is never seen half-applied.
//! - [`Version`] orders the changes of one row: its source position (binlog file sequence, byte
//!   offset, row index within the event), after the server epoch of a live binlog (one more at
//!   each failover to another server, [`crate::source::gtid::Token`]). For each `(table, primary key)` the change with the
//!   greatest version wins, whatever order changes arrive in. The same version again is a
//!   duplicate; a smaller one is stale. Both change nothing and are counted.
//! - Transactions: with transaction metadata (Debezium's `transaction` block and END markers)
//!   every row of one source transaction gets one time, its commit time, and no time passes
//!   until the transaction is complete ([`crate::dataflow::tx`]). Without it, a row's time is
//!   its event's `source.ts_ms`, the start of its statement: rows of one transaction can then
//!   carry different times and a view can show a transaction half-applied.
//! - Watermark rule ([`crate::source::watermark`]): every source partition reports the greatest
//!   commit time it has seen; idle and finished partitions do not hold the frontier. A worker's
//!   input frontier is the minimum over its active partitions minus the allowed lateness; the
//!   engine frontier is the minimum over all workers (timely's progress tracking computes it).
//!   An event whose time is below its worker's frontier is *late*: it is applied at the frontier
//!   instead of its own time (so it is still counted exactly, only its time moves) and counted.
//!   An event whose time is implausibly far ahead (beyond the maximum time skew) is rejected.
//! - A time `t` is complete when the frontier has passed it; only then are the changes of each
//!   view at `t` emitted, consolidated, as upserts and deletes.

use serde::{Deserialize, Serialize};

/// Dataflow time: source commit time in milliseconds since the epoch.
pub type Time = u64;

/// Multiplicity change of a record: +1 insert, -1 retraction.
pub type Diff = isize;

/// Source position of one row change; greater is newer.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Version {
    /// Sequence number of the binlog file (the numeric suffix of `mysql-bin.000003`) in the low
    /// 32 bits; a live binlog's server epoch in the high 32 (0 until a failover).
    pub file: u64,
    /// Byte offset of the event in that file.
    pub pos: u64,
    /// Index of the row within the event.
    pub row: u32,
}

/// The wall clock in milliseconds since the epoch.
pub fn now_ms() -> Time {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Time)
}
