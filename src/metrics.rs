//! Counters shared by all workers of a process. Every record that is not applied as a row
//! change is counted here under the reason why.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Live counters (atomics, shared by the workers of one process).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Input records (lines) read.
    pub records: AtomicU64,
    /// Row changes decoded.
    pub events: AtomicU64,
    /// Records that carry no row change (tombstones, transaction markers, key records, schema
    /// changes, heartbeats).
    pub ignored: AtomicU64,
    /// Column values that schema.sql does not declare, ignored (schema drift, lenient).
    pub undeclared_columns: AtomicU64,
    /// Changes whose version was already applied.
    pub duplicates: AtomicU64,
    /// Changes older than the version already applied.
    pub stale: AtomicU64,
    /// Changes that arrived after the frontier passed their time (applied at the frontier).
    pub late: AtomicU64,
    /// Tombstones (versions of deleted keys) dropped once the frontier passed their time by
    /// the tombstone retention.
    pub tombstones_compacted: AtomicU64,
    /// Records rejected and kept in the dead-letter file.
    pub dead_lettered: AtomicU64,
    /// Rows a view could not evaluate (e.g. integer overflow); reported, excluded from the view.
    pub eval_errors: AtomicU64,
    /// Documents upserted.
    pub upserts: AtomicU64,
    /// Documents deleted.
    pub deletes: AtomicU64,
    /// Source transactions made whole (released at one commit time).
    pub transactions: AtomicU64,
    /// Transactions released incomplete (input ended or transaction timeout).
    pub incomplete_transactions: AtomicU64,
    /// A gauge, not in [`MetricsSnapshot`]: completed times handed to the sink and not yet
    /// acknowledged by it.
    pub sink_pending: AtomicU64,
    /// A gauge, not in [`MetricsSnapshot`]: the greatest time the sink acknowledged (0 while
    /// none is).
    pub sink_acknowledged: AtomicU64,
}

/// A point-in-time copy of [`Metrics`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// See [`Metrics::records`].
    pub records: u64,
    /// See [`Metrics::events`].
    pub events: u64,
    /// See [`Metrics::ignored`].
    pub ignored: u64,
    /// See [`Metrics::undeclared_columns`].
    pub undeclared_columns: u64,
    /// See [`Metrics::duplicates`].
    pub duplicates: u64,
    /// See [`Metrics::stale`].
    pub stale: u64,
    /// See [`Metrics::late`].
    pub late: u64,
    /// See [`Metrics::tombstones_compacted`].
    pub tombstones_compacted: u64,
    /// See [`Metrics::dead_lettered`].
    pub dead_lettered: u64,
    /// See [`Metrics::eval_errors`].
    pub eval_errors: u64,
    /// See [`Metrics::upserts`].
    pub upserts: u64,
    /// See [`Metrics::deletes`].
    pub deletes: u64,
    /// See [`Metrics::transactions`].
    pub transactions: u64,
    /// See [`Metrics::incomplete_transactions`].
    pub incomplete_transactions: u64,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }

    /// Copies the counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            records: self.records.load(Relaxed),
            events: self.events.load(Relaxed),
            ignored: self.ignored.load(Relaxed),
            undeclared_columns: self.undeclared_columns.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            stale: self.stale.load(Relaxed),
            late: self.late.load(Relaxed),
            tombstones_compacted: self.tombstones_compacted.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            eval_errors: self.eval_errors.load(Relaxed),
            upserts: self.upserts.load(Relaxed),
            deletes: self.deletes.load(Relaxed),
            transactions: self.transactions.load(Relaxed),
            incomplete_transactions: self.incomplete_transactions.load(Relaxed),
        }
    }
}

impl fmt::Display for MetricsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "records {}, events {}, ignored {}, duplicates {}, stale {}, late {}, dead-lettered {}, \
             evaluation errors {}, upserts {}, deletes {}",
            self.records,
            self.events,
            self.ignored,
            self.duplicates,
            self.stale,
            self.late,
            self.dead_lettered,
            self.eval_errors,
            self.upserts,
            self.deletes
        )?;
        if self.transactions > 0 || self.incomplete_transactions > 0 {
            write!(
                f,
                ", transactions {} ({} incomplete)",
                self.transactions, self.incomplete_transactions
            )?;
        }
        if self.tombstones_compacted > 0 {
            write!(f, ", tombstones compacted {}", self.tombstones_compacted)?;
        }
        if self.undeclared_columns > 0 {
            write!(
                f,
                ", undeclared columns ignored {}",
                self.undeclared_columns
            )?;
        }
        Ok(())
    }
}
